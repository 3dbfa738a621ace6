//! The sender's side of a delta transfer (see [`crate::delta`]): reading
//! a new file once against the receiver's signature ([`match_file`]): the
//! runs to copy and the whole file's crc32c. A large file is read in
//! parts of whole blocks on several threads ([`match_parts`]): BLAKE3 of
//! every block is the cost, and the client has nothing else to do then.
//! Reads with `pread` only: no file position is relied on.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::delta::{Copies, CopyList, Matcher, Signature};

/// Bytes read at a time.
const MATCH_READ: usize = 1 << 20;
/// How often a long match looks up (interrupts, keepalives).
const LOOK_UP: Duration = Duration::from_millis(250);

/// A delta to send, and the whole new file's crc32c.
#[derive(Debug)]
pub struct Matched {
    /// The runs and what is left to send.
    pub copies: Copies,
    /// crc32c of the whole file as read.
    pub crc: u32,
}

/// Files shorter than this are matched on one thread.
const PARTS_MIN: u64 = 64 << 20;
/// At most this many threads match one file.
const PARTS_MAX: usize = 4;

/// How many parts, each on its own thread, [`match_file`] should match a
/// file of `size` bytes in on this machine: one per core up to
/// [`PARTS_MAX`], each of at least half of [`PARTS_MIN`]; one for a file
/// under [`PARTS_MIN`]. The client's choice: the hashing is CPU-bound
/// (BLAKE3 of every block) and the client has nothing else to do
/// meanwhile; the server's workers match on one thread each.
#[must_use]
pub fn match_parts(size: u64) -> usize {
    if size < PARTS_MIN {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_size = usize::try_from(size / (PARTS_MIN / 2)).unwrap_or(usize::MAX);
    cores.min(PARTS_MAX).min(by_size).max(1)
}

/// What one part of a file matched to: its runs and its crc32c.
struct Part {
    list: CopyList,
    crc: u32,
    len: u64,
}

/// Matches bytes `from..to` of `file` against `sig`. `Ok(None)`: a read
/// failed or came short (the file changed: the body's check catches it),
/// or `stop` was set. `look_up` runs every [`LOOK_UP`]; its `Err` sets
/// `stop` and is returned.
fn match_part<E: Send>(
    file: BorrowedFd<'_>,
    (from, to): (u64, u64),
    sig: &Signature,
    stop: &AtomicBool,
    look_up: &mut dyn FnMut() -> Result<(), E>,
) -> Result<Option<Part>, E> {
    let Ok(mut matcher) = Matcher::starting_at(sig, from) else {
        return Ok(None);
    };
    let mut list = CopyList::starting_at(sig, from);
    let mut ops = Vec::new();
    let mut buf = vec![0u8; MATCH_READ.min((to - from) as usize)];
    let mut crc = 0u32;
    let mut at = from;
    let mut looked = Instant::now();
    while at < to {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let want = (to - at).min(MATCH_READ as u64) as usize;
        let n = match nix::sys::uio::pread(file, &mut buf[..want], at as i64) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => n,
        };
        let bytes = &buf[..n];
        crc = crc32c::crc32c_append(crc, bytes);
        matcher.feed(bytes, &mut ops);
        ops.drain(..).for_each(|op| list.push(&op));
        at += n as u64;
        if looked.elapsed() >= LOOK_UP {
            if let Err(e) = look_up() {
                stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
            looked = Instant::now();
        }
    }
    matcher.finish(&mut ops);
    ops.drain(..).for_each(|op| list.push(&op));
    Ok(Some(Part {
        list,
        crc,
        len: to - from,
    }))
}

/// Reads bytes `from..size` of the `size` bytes of `file` against `sig`
/// (the bytes before `from` the receiver kept from a cut transfer: they
/// are only read for the whole file's crc32c), in `parts` pieces of
/// whole blocks on as many threads ([`match_parts`]; each part looks for
/// every block of the basis, runs across a seam are joined, and only a
/// basis block the seam cuts in two goes as literal bytes; with no thread
/// to be had, on this one alone).
/// `Ok(None)`: send it whole (the signature is unusable, or the file
/// ended early: it changed, which the body's check catches). A match
/// with no runs: nothing of the old version is worth taking (none of it
/// is in the file, or more than [`crate::proto::delta_copy_budget`]
/// would be): the crc32c is still the file's. `look_up` runs on the calling thread every
/// [`LOOK_UP`] while the parts are read (a large file on a slow disk
/// takes minutes): an `Err` from it stops every part.
pub fn match_file<E: Send>(
    file: BorrowedFd<'_>,
    (from, size): (u64, u64),
    sig: &Signature,
    parts: usize,
    mut look_up: impl FnMut() -> Result<(), E>,
) -> Result<Option<Matched>, E> {
    let from = from.min(size);
    let Some(kept_crc) = crc_kept(file, from, &mut look_up)? else {
        return Ok(None);
    };
    // Part boundaries on whole blocks, so that aligned blocks stay whole.
    let block = u64::from(sig.block);
    let first = from / block;
    let blocks = size.div_ceil(block) - first;
    let parts = (parts.max(1) as u64).min(blocks.max(1));
    let bounds: Vec<(u64, u64)> = (0..parts)
        .map(|k| {
            let start = ((first + blocks * k / parts) * block).clamp(from, size);
            let end = ((first + blocks * (k + 1) / parts) * block).min(size);
            (start, end)
        })
        .collect();
    let stop = AtomicBool::new(false);
    let matched = std::thread::scope(|scope| {
        let mut helpers = Vec::with_capacity(bounds.len() - 1);
        for &b in &bounds[1..] {
            let stop = &stop;
            let spawned = std::thread::Builder::new()
                .name("rsb-match".into())
                .spawn_scoped(scope, move || {
                    match_part(file, b, sig, stop, &mut || Ok::<(), E>(()))
                });
            match spawned {
                Ok(h) => helpers.push(h),
                Err(_) => {
                    // No thread to be had: all on this one instead.
                    stop.store(true, Ordering::Relaxed);
                    return Ok(None);
                }
            }
        }
        let first = match_part(file, bounds[0], sig, &stop, &mut look_up);
        if !matches!(first, Ok(Some(_))) {
            // Failed or stopped: the other parts are of no use.
            stop.store(true, Ordering::Relaxed);
        }
        let Some(mut first) = first? else {
            return Ok(Some(None));
        };
        // The calling thread keeps looking up while the others finish.
        while !helpers.iter().all(|h| h.is_finished()) {
            if let Err(e) = look_up() {
                stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for h in helpers {
            let Ok(Ok(Some(next))) = h.join() else {
                return Ok(Some(None));
            };
            first.list.append(next.list);
            first.crc = crc32c::crc32c_combine(first.crc, next.crc, next.len as usize);
            first.len += next.len;
        }
        Ok(Some(Some(first)))
    })?;
    let matched = match matched {
        Some(m) => m,
        None if parts > 1 => return match_file(file, (from, size), sig, 1, look_up),
        None => None,
    };
    let Some(rest) = matched else {
        return Ok(None);
    };
    let copies = rest
        .list
        .finish(size - from, crate::proto::MAX_DELTA_COPIES as usize);
    let useful =
        copies.reused > 0 && copies.reused <= crate::proto::delta_copy_budget(sig.file_len);
    let copies = if useful {
        copies
    } else {
        Copies {
            copies: Vec::new(),
            literal: size - from,
            reused: 0,
        }
    };
    Ok(Some(Matched {
        copies,
        crc: crc32c::crc32c_combine(kept_crc, rest.crc, rest.len as usize),
    }))
}

/// The crc32c of the first `len` bytes of `file` (the part a resumed
/// delta does not send), read on this thread with `look_up` every
/// [`LOOK_UP`]. `Ok(None)`: a read failed or came short.
fn crc_kept<E>(
    file: BorrowedFd<'_>,
    len: u64,
    look_up: &mut impl FnMut() -> Result<(), E>,
) -> Result<Option<u32>, E> {
    let mut buf = vec![0u8; MATCH_READ.min(len as usize)];
    let (mut crc, mut at) = (0u32, 0u64);
    let mut looked = Instant::now();
    while at < len {
        let want = (len - at).min(MATCH_READ as u64) as usize;
        match nix::sys::uio::pread(file, &mut buf[..want], at as i64) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => {
                crc = crc32c::crc32c_append(crc, &buf[..n]);
                at += n as u64;
            }
        }
        if looked.elapsed() >= LOOK_UP {
            look_up()?;
            looked = Instant::now();
        }
    }
    Ok(Some(crc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::Signer;
    use crate::proto::CopyRange;
    use std::fs::File;
    use std::os::fd::AsFd;

    const MIB: u64 = 1 << 20;

    fn file_with(dir: &std::path::Path, name: &str, bytes: &[u8]) -> File {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        File::open(p).unwrap()
    }

    /// `ranges` of `basis` in place, zeros elsewhere (then the literal runs
    /// are laid over them).
    fn expected(basis: &[u8], ranges: &[CopyRange]) -> Vec<u8> {
        let mut want = Vec::new();
        for r in ranges {
            let (s, d, l) = (r.src as usize, r.dst as usize, r.len as usize);
            if want.len() < d + l {
                want.resize(d + l, 0);
            }
            want[d..d + l].copy_from_slice(&basis[s..s + l]);
        }
        want
    }

    /// A file matched in 1 to 4 parts on as many threads rebuilds the same
    /// file with the same crc32c; an unchanged one is one run whatever the
    /// parts; a look-up that fails stops every part.
    #[test]
    fn matching_in_parts_on_threads_gives_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let old = crate::delta::tests::noise(8, 3 * MIB as usize + 5);
        let mut new = old.clone();
        new[100_000..100_100].fill(1);
        new.splice(1_600_000..1_600_000, [2u8; 777]);
        new[2_500_000..2_600_000].fill(3);
        let f = file_with(dir.path(), "new", &new);
        let same = file_with(dir.path(), "old", &old);
        let mut s = Signer::new(4096).unwrap();
        s.feed(&old);
        let sig = s.finish();
        let len = new.len() as u64;
        for parts in 1..=4 {
            let m = match_file(f.as_fd(), (0, len), &sig, parts, || Ok::<(), ()>(()))
                .unwrap()
                .unwrap();
            assert_eq!(m.crc, crc32c::crc32c(&new), "{parts}");
            assert!(
                m.copies.literal <= 100 + 777 + 100_000 + 8 * 4096,
                "{parts}: {m:?}"
            );
            let mut got = expected(&old, &m.copies.copies);
            got.resize(new.len(), 0);
            if let crate::proto::Layout::Sparse(ext) =
                crate::proto::delta_layout(len, 0, &m.copies.copies)
            {
                for e in ext {
                    let (o, l) = (e.offset as usize, e.len as usize);
                    got[o..o + l].copy_from_slice(&new[o..o + l]);
                }
            }
            assert!(got == new, "{parts} parts: rebuilt file differs");
            let m = match_file(same.as_fd(), (0, old.len() as u64), &sig, parts, || {
                Ok::<(), ()>(())
            })
            .unwrap()
            .unwrap();
            assert_eq!(m.copies.copies.len(), 1, "{parts}");
            assert_eq!(m.copies.literal, 0);
        }
    }

    /// Issue 14: a cut delta resumes from an offset anywhere in the file
    /// (not on a block): the runs and the literal bytes cover the rest
    /// only and rebuild it, the crc32c is still the whole file's, and
    /// the kept part is neither matched nor counted.
    #[test]
    fn matching_from_an_offset_covers_the_rest_and_the_whole_crc() {
        let dir = tempfile::tempdir().unwrap();
        let old = crate::delta::tests::noise(9, 2 * MIB as usize);
        let mut new = old.clone();
        new[100_000..100_100].fill(1);
        new[1_500_000..1_510_000].fill(2);
        let f = file_with(dir.path(), "new", &new);
        let mut s = Signer::new(4096).unwrap();
        s.feed(&old);
        let sig = s.finish();
        let len = new.len() as u64;
        for (from, parts) in [(0, 1), (4096, 1), (700_001, 1), (700_001, 3), (len - 10, 2)] {
            let m = match_file(f.as_fd(), (from, len), &sig, parts, || Ok::<(), ()>(()))
                .unwrap()
                .unwrap();
            assert_eq!(m.crc, crc32c::crc32c(&new), "{from}");
            assert_eq!(m.copies.literal + m.copies.reused, len - from, "{from}");
            // Nothing worth taking from the last 10 bytes: no runs.
            assert_eq!(m.copies.copies.is_empty(), from > len - 4096, "{from}");
            assert!(m.copies.copies.iter().all(|c| c.dst >= from), "{from}");
            let mut got = expected(&old, &m.copies.copies);
            got.resize(new.len(), 0);
            if let crate::proto::Layout::Sparse(ext) =
                crate::proto::delta_layout(len, from, &m.copies.copies)
            {
                for e in ext {
                    let (o, l) = (e.offset as usize, e.len as usize);
                    got[o..o + l].copy_from_slice(&new[o..o + l]);
                }
            }
            assert!(got[from as usize..] == new[from as usize..], "{from}");
            // The 10,000 changed bytes past 700,001, the block the offset
            // cuts, and a block each side of a change at most.
            if from == 700_001 {
                assert!(m.copies.literal <= 10_000 + 5 * 4096, "{m:?}");
            }
        }
    }
}
