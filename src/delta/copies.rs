//! From ops to the copy list of a `FileDelta`: the sender runs the
//! [`super::Matcher`] over the whole new file and turns its ops into runs
//! of the basis (`CopyRange`s, adjacent runs merged), the literal bytes
//! being everything between them. A list longer than a frame holds
//! ([`crate::proto::MAX_DELTA_COPIES`]) keeps its longest runs: the
//! shortest go as literal bytes instead.

use super::ops::Op;
use super::signature::{BlockSig, Signature};
use crate::proto::CopyRange;

/// The runs found so far in a new file.
#[derive(Debug)]
pub struct CopyList {
    block: u64,
    basis_len: u64,
    /// Offset in the new file of the next op.
    at: u64,
    copies: Vec<CopyRange>,
}

/// A finished copy list and what it leaves to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copies {
    /// Runs of the basis, ascending and apart.
    pub copies: Vec<CopyRange>,
    /// Bytes of the new file not in them: the body.
    pub literal: u64,
    /// Bytes in them.
    pub reused: u64,
}

impl CopyList {
    /// A list for a file matched against `sig`.
    #[must_use]
    pub fn new(sig: &Signature) -> CopyList {
        CopyList {
            block: u64::from(sig.block),
            basis_len: sig.file_len,
            at: 0,
            copies: Vec::new(),
        }
    }

    /// A list for the part of a new file from `offset` on, matched by a
    /// [`super::Matcher::starting_at`] the same offset: [`Self::append`]
    /// joins it to the list of the part before.
    #[must_use]
    pub fn starting_at(sig: &Signature, offset: u64) -> CopyList {
        CopyList {
            at: offset,
            ..CopyList::new(sig)
        }
    }

    /// Joins the list of the part that follows this one (which must start
    /// where this one ends): a run across the seam becomes one run.
    pub fn append(&mut self, next: CopyList) {
        debug_assert_eq!(self.block, next.block);
        let mut runs = next.copies.into_iter();
        if let (Some(last), Some(first)) = (self.copies.last_mut(), runs.as_slice().first()) {
            if last.dst + last.len == first.dst && last.src + last.len == first.src {
                last.len += first.len;
                runs.next();
            }
        }
        self.copies.extend(runs);
        self.at = next.at;
    }

    /// Takes the matcher's next op.
    pub fn push(&mut self, op: &Op) {
        match op {
            Op::Literal(bytes) => self.at = self.at.saturating_add(bytes.len() as u64),
            Op::Copy { block, count } => {
                let src = u64::from(*block).saturating_mul(self.block);
                // The basis's short last block is shorter than a block.
                let len = u64::from(*count)
                    .saturating_mul(self.block)
                    .min(self.basis_len.saturating_sub(src));
                if len == 0 {
                    return;
                }
                let dst = self.at;
                self.at = self.at.saturating_add(len);
                if let Some(last) = self.copies.last_mut() {
                    if last.dst + last.len == dst && last.src + last.len == src {
                        last.len += len;
                        return;
                    }
                }
                self.copies.push(CopyRange { dst, src, len });
            }
        }
    }

    /// The list for `size` bytes sent (a new file of `size` bytes, or the
    /// part of one from where a resumed delta starts), at most `max` runs:
    /// past that, the shortest runs are dropped (sent as literal bytes).
    #[must_use]
    pub fn finish(self, size: u64, max: usize) -> Copies {
        let mut copies = self.copies;
        if copies.len() > max {
            let mut lens: Vec<u64> = copies.iter().map(|c| c.len).collect();
            lens.sort_unstable();
            // Keep runs longer than the cut, and of those equal to it only
            // as many as still fit.
            let cut = lens[copies.len() - max];
            let mut equal_room = max - lens.iter().filter(|&&l| l > cut).count();
            copies.retain(|c| {
                if c.len > cut {
                    true
                } else if c.len == cut && equal_room > 0 {
                    equal_room -= 1;
                    true
                } else {
                    false
                }
            });
        }
        let reused: u64 = copies.iter().map(|c| c.len).sum();
        Copies {
            copies,
            literal: size.saturating_sub(reused),
            reused,
        }
    }
}

/// The signature blocks of a delta's result that need no hashing: a
/// block of the new file lying whole inside one copied run, at a place of
/// the basis where a block of the basis starts and of the same length, is
/// that basis block, and so is its signature entry. Asked for the new
/// file's blocks in order.
#[derive(Debug)]
pub struct Resigner<'a> {
    basis: &'a Signature,
    copies: &'a [CopyRange],
    at: usize,
}

impl<'a> Resigner<'a> {
    /// For a result built from `copies` of the basis signed as `basis`.
    #[must_use]
    pub fn new(basis: &'a Signature, copies: &'a [CopyRange]) -> Resigner<'a> {
        Resigner {
            basis,
            copies,
            at: 0,
        }
    }

    /// The signature of the new file's block `start..start + len` when the
    /// basis has it, else `None` (it must be hashed). `start` must not go
    /// back between calls.
    pub fn known(&mut self, start: u64, len: u64) -> Option<BlockSig> {
        let block = u64::from(self.basis.block);
        while self
            .copies
            .get(self.at)
            .is_some_and(|c| c.dst.saturating_add(c.len) <= start)
        {
            self.at += 1;
        }
        let c = self.copies.get(self.at)?;
        if c.dst > start || start.saturating_add(len) > c.dst.saturating_add(c.len) {
            return None;
        }
        let src = c.src + (start - c.dst);
        if !src.is_multiple_of(block) {
            return None;
        }
        let j = src / block;
        let basis_len = block.min(self.basis.file_len.saturating_sub(src));
        (basis_len == len)
            .then(|| usize::try_from(j).ok())
            .flatten()
            .and_then(|j| self.basis.blocks.get(j).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::{Matcher, Signer};
    use crate::proto::delta_layout;

    fn sig_of(basis: &[u8], block: u32) -> Signature {
        let mut s = Signer::new(block).unwrap();
        s.feed(basis);
        s.finish()
    }

    /// Applies a copy list to `basis`, taking the literal runs from `new`:
    /// what the receiver builds.
    fn rebuild(basis: &[u8], new: &[u8], c: &Copies) -> Vec<u8> {
        let mut out = vec![0u8; new.len()];
        for r in &c.copies {
            let (d, s, l) = (r.dst as usize, r.src as usize, r.len as usize);
            out[d..d + l].copy_from_slice(&basis[s..s + l]);
        }
        if let crate::proto::Layout::Sparse(ext) = delta_layout(new.len() as u64, 0, &c.copies) {
            for e in ext {
                let (o, l) = (e.offset as usize, e.len as usize);
                out[o..o + l].copy_from_slice(&new[o..o + l]);
            }
        }
        out
    }

    /// The copy list of `part`, the bytes of a new file from `from` on.
    fn list_of(sig: &Signature, part: &[u8], from: u64) -> CopyList {
        let mut m = Matcher::starting_at(sig, from).unwrap();
        let mut list = CopyList::starting_at(sig, from);
        let mut ops = Vec::new();
        for chunk in part.chunks(1000) {
            m.feed(chunk, &mut ops);
            ops.drain(..).for_each(|op| list.push(&op));
        }
        m.finish(&mut ops);
        ops.drain(..).for_each(|op| list.push(&op));
        list
    }

    fn copies(basis: &[u8], new: &[u8], block: u32, max: usize) -> Copies {
        let sig = sig_of(basis, block);
        list_of(&sig, new, 0).finish(new.len() as u64, max)
    }

    /// The signature made from the basis's where the blocks are the
    /// basis's, and hashed elsewhere, is the signature of the result.
    #[test]
    fn a_result_signed_from_its_basis_is_signed_right() {
        let basis = crate::delta::tests::noise(4, 500_000);
        let mut new = basis.clone();
        new[100_000..100_010].fill(1);
        new.splice(300_000..300_000, [2u8; 5000]);
        new.extend_from_slice(&[3u8; 777]);
        let sig = sig_of(&basis, 4096);
        let c = copies(&basis, &new, 4096, 1024);
        let mut r = Resigner::new(&sig, &c.copies);
        let (mut reused, mut blocks) = (0, Vec::new());
        for (k, chunk) in new.chunks(4096).enumerate() {
            let start = k as u64 * 4096;
            match r.known(start, chunk.len() as u64) {
                Some(b) => {
                    reused += 1;
                    blocks.push(b);
                }
                None => blocks.push(crate::delta::BlockSig::of(chunk)),
            }
        }
        let want = sig_of(&new, 4096);
        assert_eq!(blocks, want.blocks);
        // Before the insertion the blocks line up; after it they do not.
        assert!(reused >= 70 && reused < want.blocks.len(), "{reused}");
    }

    /// A file matched in parts (a matcher and a list for each, from
    /// block-aligned offsets) and the lists appended: the same file
    /// rebuilt, an unchanged one still one run across every seam.
    #[test]
    fn parts_matched_apart_and_appended_rebuild_the_file() {
        let basis = crate::delta::tests::noise(5, 700_000);
        let mut new = basis.clone();
        new[10_000..10_050].fill(9);
        new.splice(400_000..400_000, [4u8; 3000]);
        new[450_000..460_000].fill(8);
        new.truncate(690_000);
        let sig = sig_of(&basis, 4096);
        let by_parts = |bytes: &[u8], cuts: &[usize]| {
            let mut whole: Option<CopyList> = None;
            let mut from = 0;
            for &to in cuts.iter().chain([bytes.len()].iter()) {
                let list = list_of(&sig, &bytes[from..to], from as u64);
                match whole.as_mut() {
                    Some(w) => w.append(list),
                    None => whole = Some(list),
                }
                from = to;
            }
            whole.unwrap().finish(bytes.len() as u64, 1024)
        };
        for cuts in [&[][..], &[4096 * 40], &[4096 * 30, 4096 * 100, 4096 * 101]] {
            let c = by_parts(&new, cuts);
            assert_eq!(rebuild(&basis, &new, &c), new, "{cuts:?}");
            assert!(
                c.literal <= 50 + 3000 + 10_000 + 6 * 4096,
                "{cuts:?}: {}",
                c.literal
            );
            let same = by_parts(&basis, cuts);
            assert_eq!(
                same.copies,
                [CopyRange {
                    dst: 0,
                    src: 0,
                    len: 700_000
                }],
                "{cuts:?}"
            );
        }
    }

    #[test]
    fn an_unchanged_file_is_one_run_with_its_short_tail() {
        let basis = crate::delta::tests::noise(1, 100_000);
        let c = copies(&basis, &basis, 4096, 1024);
        assert_eq!(
            c.copies,
            [CopyRange {
                dst: 0,
                src: 0,
                len: 100_000
            }]
        );
        assert_eq!((c.literal, c.reused), (0, 100_000));
    }

    #[test]
    fn edits_rebuild_exactly_and_only_the_changes_are_literal() {
        let basis = crate::delta::tests::noise(2, 300_000);
        let mut new = basis.clone();
        new[50_000..50_100].fill(7);
        new.splice(200_000..200_000, [1u8; 333]);
        new.truncate(290_000);
        let c = copies(&basis, &new, 4096, 1024);
        assert_eq!(rebuild(&basis, &new, &c), new);
        assert!(c.literal <= 100 + 333 + 4 * 4096, "{} literal", c.literal);
        assert_eq!(c.literal + c.reused, new.len() as u64);
    }

    #[test]
    fn past_the_limit_the_shortest_runs_go_as_literal_bytes() {
        let basis = crate::delta::tests::noise(3, 1_000_000);
        let mut new = basis.clone();
        // A change every 10 blocks, the runs between of two lengths.
        for (k, at) in (0..1_000_000).step_by(10 * 4096).enumerate() {
            new[at] ^= 0xff;
            if k % 2 == 0 && at + 20_000 < new.len() {
                new[at + 20_000] ^= 0xff;
            }
        }
        let all = copies(&basis, &new, 4096, usize::MAX);
        assert!(all.copies.len() > 10, "{} runs", all.copies.len());
        let cut = copies(&basis, &new, 4096, 5);
        assert_eq!(cut.copies.len(), 5);
        let mut lens: Vec<u64> = all.copies.iter().map(|c| c.len).collect();
        lens.sort_unstable_by(|a, b| b.cmp(a));
        let kept: u64 = lens[..5].iter().sum();
        assert_eq!(cut.reused, kept, "the five longest runs are kept");
        assert_eq!(rebuild(&basis, &new, &cut), new);
        assert!(cut
            .copies
            .windows(2)
            .all(|w| w[0].dst + w[0].len <= w[1].dst));
    }
}
