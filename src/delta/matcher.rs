//! The sender's side: the new file's bytes, fed in any chunking, against
//! the receiver's [`Signature`] of its basis, become an [`Op`] stream of
//! copies of basis blocks and literal bytes.
//!
//! At each window position the matcher first tries the cheap predictions
//! (the block after the last one copied, which follows shifted runs, and
//! the block at the same index as an aligned position, the in-place edit),
//! then the weak lookup; the strong hash alone decides a match. No match:
//! the window rolls one byte. A match jumps a whole block, so an unchanged
//! file costs one BLAKE3 pass and no rolling. The basis's short last block
//! matches only the new file's last bytes, with exactly its length.
//!
//! Memory besides the lookup: the window, one pending literal (at most
//! [`LITERAL_MAX`]) and at most two steps of input of max(block, 64 KiB)
//! each, whatever the file's length.

use std::collections::HashMap;

use super::ops::Op;
use super::rolling::Rollsum;
use super::signature::{BlockSig, Signature};
use super::{Error, LITERAL_MAX, MAX_BLOCK};

/// Distinct strong hashes kept per weak checksum: a hostile signature
/// whose blocks all share one weak value cannot make every byte cost
/// thousands of comparisons. A dropped candidate costs a match, never
/// correctness.
const MAX_CANDIDATES: usize = 16;
/// Bits of the weak pre-filter (2^16 bits, 8 KiB), checked before the map.
const FILTER_BITS: u32 = 16;

/// What a match produced so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchStats {
    /// Bytes sent as literals.
    pub literal_bytes: u64,
    /// Bytes the receiver copies from its basis.
    pub copied_bytes: u64,
}

/// Matches a new file against a basis's signature.
#[derive(Debug)]
pub struct Matcher {
    block: usize,
    /// Blocks of full length (the short last block is not among them).
    full: u32,
    /// Length of the basis's short last block, or 0.
    tail_len: usize,
    sigs: Vec<BlockSig>,
    lookup: HashMap<u32, Vec<u32>>,
    filter: Vec<u64>,
    /// Bytes not yet decided: `buf[lit..start]` the pending literal,
    /// `buf[start..start + block]` the window.
    buf: Vec<u8>,
    /// Offset in the new file of `buf[0]`.
    base: u64,
    start: usize,
    lit: usize,
    /// The window's weak checksum, once computed.
    sum: Option<Rollsum>,
    /// The window at `start` was tested and did not match.
    checked: bool,
    /// The block after the last one copied.
    follow: Option<u32>,
    pending: Option<(u32, u32)>,
    stats: MatchStats,
    /// False only in tests: fixed blocks at aligned offsets, no rolling,
    /// to measure what rolling gains.
    rolling: bool,
}

impl Matcher {
    /// A matcher for `sig`. Refuses a signature whose block is not a power
    /// of two up to [`MAX_BLOCK`] or whose entry count does not fit its
    /// length ([`Signature::decode`] also enforces the lower bound).
    pub fn new(sig: &Signature) -> Result<Matcher, Error> {
        if !sig.block.is_power_of_two() || sig.block > MAX_BLOCK {
            return Err(Error::BadBlock(sig.block));
        }
        let count = Signature::block_count(sig.file_len, sig.block);
        if count != sig.blocks.len() as u64 || count > u64::from(u32::MAX) {
            return Err(Error::CountMismatch {
                file_len: sig.file_len,
                block: sig.block,
                count: sig.blocks.len() as u64,
            });
        }
        let tail_len = sig.short_tail() as usize;
        let full = (count - u64::from(tail_len > 0)) as u32;
        let mut lookup: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut filter = vec![0u64; 1 << (FILTER_BITS - 6)];
        for (i, b) in sig.blocks.iter().enumerate().take(full as usize) {
            let cands = lookup.entry(b.weak).or_default();
            let dup = cands
                .iter()
                .any(|&c| sig.blocks[c as usize].strong == b.strong);
            if !dup && cands.len() < MAX_CANDIDATES {
                cands.push(i as u32);
            }
            let bit = filter_bit(b.weak);
            filter[bit / 64] |= 1 << (bit % 64);
        }
        Ok(Matcher {
            block: sig.block as usize,
            full,
            tail_len,
            sigs: sig.blocks.clone(),
            lookup,
            filter,
            buf: Vec::new(),
            base: 0,
            start: 0,
            lit: 0,
            sum: None,
            checked: false,
            follow: None,
            pending: None,
            stats: MatchStats::default(),
            rolling: true,
        })
    }

    /// A matcher for the part of the new file from `offset` on (a file
    /// matched in parts, each on its own thread): the same-index
    /// prediction counts from there. Ops start at `offset`.
    pub fn starting_at(sig: &Signature, offset: u64) -> Result<Matcher, Error> {
        let mut m = Matcher::new(sig)?;
        m.base = offset;
        Ok(m)
    }

    /// A matcher that only compares whole blocks at aligned offsets.
    #[cfg(test)]
    pub(crate) fn aligned_only(sig: &Signature) -> Matcher {
        let mut m = Matcher::new(sig).expect("valid signature");
        m.rolling = false;
        m
    }

    /// Consumes the new file's next bytes, appending decided ops to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Op>) {
        let step = self.block.max(64 * 1024);
        while !data.is_empty() {
            // Dropping emitted bytes only once a step's worth has gathered
            // keeps tiny feeds from moving the buffer on every call.
            if self.lit >= step {
                self.compact();
            }
            let n = step.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.process(out);
        }
    }

    /// Ends the new file: appends the last ops to `out`.
    pub fn finish(mut self, out: &mut Vec<Op>) -> MatchStats {
        self.process(out);
        let end = self.buf.len();
        if self.tail_len > 0 && end - self.start >= self.tail_len {
            let from = end - self.tail_len;
            let last = self.sigs.len() - 1;
            let t = &self.buf[from..];
            let want = &self.sigs[last];
            if Rollsum::of(t).digest() == want.weak && *blake3::hash(t).as_bytes() == want.strong {
                self.start = from;
                self.copy(last as u32, self.tail_len, out);
            }
        }
        self.start = end;
        self.flush_literal(0, out);
        if let Some((block, count)) = self.pending.take() {
            out.push(Op::Copy { block, count });
        }
        self.stats
    }

    /// Bytes the matcher's buffer holds room for (tests check the bound).
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    /// What was matched so far.
    pub fn stats(&self) -> MatchStats {
        self.stats
    }

    /// Drops the bytes already emitted.
    fn compact(&mut self) {
        if self.lit > 0 {
            self.buf.drain(..self.lit);
            self.base += self.lit as u64;
            self.start -= self.lit;
            self.lit = 0;
        }
    }

    /// Tests every whole window in the buffer.
    fn process(&mut self, out: &mut Vec<Op>) {
        let block = self.block;
        while self.buf.len() - self.start >= block {
            if self.checked {
                if !self.rolling {
                    self.start += block;
                    self.sum = None;
                    self.checked = false;
                    self.flush_literal(LITERAL_MAX, out);
                    continue;
                }
                if self.buf.len() - self.start == block {
                    break; // the next byte has not come yet
                }
                let (out_b, in_b) = (self.buf[self.start], self.buf[self.start + block]);
                if let Some(s) = self.sum.as_mut() {
                    s.rotate(out_b, in_b);
                }
                self.start += 1;
                self.checked = false;
                self.flush_literal(LITERAL_MAX, out);
            }
            match self.test_window() {
                Some(idx) => self.copy(idx, block, out),
                None => self.checked = true,
            }
        }
    }

    /// The block the window at `start` equals, if any.
    fn test_window(&mut self) -> Option<u32> {
        let w = &self.buf[self.start..self.start + self.block];
        let pos = self.base + self.start as u64;
        let aligned = pos
            .is_multiple_of(self.block as u64)
            .then(|| pos / self.block as u64)
            .filter(|&i| i < u64::from(self.full))
            .map(|i| i as u32);
        let follow = self.follow.filter(|&i| i < self.full);
        let mut strong: Option<[u8; 32]> = None;
        let mut hash = |w: &[u8]| *strong.get_or_insert_with(|| *blake3::hash(w).as_bytes());
        for cand in [follow, aligned.filter(|&a| Some(a) != follow)]
            .into_iter()
            .flatten()
        {
            let sig = &self.sigs[cand as usize];
            if self.sum.is_some_and(|s| s.digest() != sig.weak) {
                continue;
            }
            if hash(w) == sig.strong {
                return Some(cand);
            }
        }
        let weak = self.sum.get_or_insert_with(|| Rollsum::of(w)).digest();
        let bit = filter_bit(weak);
        if self.filter[bit / 64] & (1 << (bit % 64)) == 0 {
            return None;
        }
        let cands = self.lookup.get(&weak)?;
        let h = hash(w);
        cands
            .iter()
            .copied()
            .find(|&c| self.sigs[c as usize].strong == h)
    }

    /// Emits the pending literal and a copy of basis block `idx`, which
    /// the `len` bytes at `start` equal.
    fn copy(&mut self, idx: u32, len: usize, out: &mut Vec<Op>) {
        self.flush_literal(0, out);
        match self.pending.as_mut() {
            Some((first, count)) if *first + *count == idx => *count += 1,
            _ => {
                if let Some((block, count)) = self.pending.replace((idx, 1)) {
                    out.push(Op::Copy { block, count });
                }
            }
        }
        self.stats.copied_bytes += len as u64;
        self.start += len;
        self.lit = self.start;
        self.sum = None;
        self.checked = false;
        self.follow = idx.checked_add(1);
    }

    /// Emits the pending literal `buf[lit..start]` in ops of at most
    /// [`LITERAL_MAX`] bytes, until fewer than `keep_below` remain (0: all).
    fn flush_literal(&mut self, keep_below: usize, out: &mut Vec<Op>) {
        while self.start > self.lit && self.start - self.lit >= keep_below {
            if let Some((block, count)) = self.pending.take() {
                out.push(Op::Copy { block, count });
            }
            let n = (self.start - self.lit).min(LITERAL_MAX);
            out.push(Op::Literal(self.buf[self.lit..self.lit + n].to_vec()));
            self.stats.literal_bytes += n as u64;
            self.lit += n;
        }
    }
}

/// The pre-filter bit of a weak checksum: both sums mixed.
fn filter_bit(weak: u32) -> usize {
    ((weak ^ (weak >> 16)) & ((1 << FILTER_BITS) - 1)) as usize
}
