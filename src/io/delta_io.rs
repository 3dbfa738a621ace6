//! The system calls of a delta transfer (see [`crate::delta`]): signing a
//! basis file ([`sign_file`], [`crc_and_sign`]), the file system's block
//! the signature's blocks align to ([`fs_block`]), and placing the kept
//! ranges of the basis into the staging file ([`copy_ranges`]) with
//! `copy_file_range`, which shares extents where the file system can
//! (XFS with reflink, btrfs) instead of writing the bytes again. The
//! sender's side, reading a new file against a signature, is
//! [`super::delta_match`].
//!
//! Knows nothing of the wire, the store's names or the cache of
//! signatures (`io/store/sigcache.rs`); every function takes borrowed
//! descriptors and uses explicit offsets (`pread`, `pwrite`,
//! `copy_file_range` with offsets), so no file position is relied on. The
//! hole search (`lseek` with `SEEK_DATA`) moves the basis's position.

use std::io;
use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::stat;
use nix::unistd::{lseek, Whence};

use crate::delta::{BlockSig, Signature, Signer};

pub use crate::proto::CopyRange;

/// What [`copy_ranges`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyReport {
    /// Bytes of data copied (holes not counted).
    pub bytes: u64,
    /// Bytes of the ranges that were holes in the basis, left holes.
    pub holes: u64,
    /// `copy_file_range` was turned off, or failed as unsupported here:
    /// the bytes from then on went through `pread`/`pwrite`.
    pub fallback: bool,
}

/// Largest single `copy_file_range` request: a bounded time in the kernel
/// per call, and the step at which its bytes are handed to the disk
/// ([`write_behind`]).
const COPY_CHUNK: u64 = 8 << 20;
/// Buffer of the `pread`/`pwrite` fallback and of the signing reads.
const BUF: usize = 1 << 20;
/// The environment variable that turns `copy_file_range` off (tests of the
/// fallback, file systems where it misbehaves).
pub const NO_COPY_RANGE_ENV: &str = "RSB_TEST_NO_COPY_RANGE";

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn basis_short() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "basis shorter than the delta says",
    )
}

/// `pos` as an `off_t`; past `i64::MAX` is `EOVERFLOW`.
fn off(pos: u64) -> io::Result<i64> {
    i64::try_from(pos).map_err(|_| errno_io(Errno::EOVERFLOW))
}

/// True when [`NO_COPY_RANGE_ENV`] is `1`; read once per process.
fn copy_range_disabled() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os(NO_COPY_RANGE_ENV).is_some_and(|v| v == "1"))
}

/// Copies each range of `basis` into `out` (a fresh staging file, already
/// ftruncate'd to its final size by the caller or not: it does not depend
/// on it, and a range that ends in a hole extends `out` to its end), with
/// `copy_file_range` (shares extents on XFS/btrfs), in calls of at most
/// 8 MiB, looping on short copies. Ranges are done in the order given;
/// an empty range is skipped. Parts of a range that are holes in the basis
/// (`SEEK_DATA`/`SEEK_HOLE`) are skipped and stay holes in `out` (counted
/// in `holes`), provided `out` had none of its bytes written there.
///
/// When `copy_file_range` answers `EXDEV`, `EOPNOTSUPP`, `ENOSYS` or
/// `EINVAL` (not possible between these two files, or not in this
/// kernel), or when [`NO_COPY_RANGE_ENV`] is `1`, the rest is copied with
/// `pread`/`pwrite` through a 1 MiB buffer and `fallback` is set; any
/// other errno is the answer. A range reaching past the basis's current
/// end, or a basis that shrinks while it is copied, is an
/// [`io::ErrorKind::UnexpectedEof`] error ("basis shorter than the delta
/// says": it changed underneath). Other errors are the system call's
/// errno (`ENOSPC` stays `ENOSPC`: the caller checks `raw_os_error`).
pub fn copy_ranges(
    basis: BorrowedFd<'_>,
    out: BorrowedFd<'_>,
    ranges: &[CopyRange],
) -> io::Result<CopyReport> {
    copy_ranges_with(basis, out, ranges, copy_range_disabled())
}

/// [`copy_ranges`] with the fallback forced or not, whatever the
/// environment says (tests set it per call: the environment is shared by
/// every test thread).
fn copy_ranges_with(
    basis: BorrowedFd<'_>,
    out: BorrowedFd<'_>,
    ranges: &[CopyRange],
    force_fallback: bool,
) -> io::Result<CopyReport> {
    let size = stat::fstat(basis.as_raw_fd()).map_err(errno_io)?.st_size as u64;
    for r in ranges {
        let end = r.src.checked_add(r.len).ok_or_else(basis_short)?;
        if end > size {
            return Err(basis_short());
        }
        off(end)?;
        off(r
            .dst
            .checked_add(r.len)
            .ok_or_else(|| errno_io(Errno::EOVERFLOW))?)?;
    }
    let mut c = Copier {
        basis,
        out,
        report: CopyReport {
            fallback: force_fallback,
            ..CopyReport::default()
        },
        buf: Vec::new(),
        seek_data: true,
    };
    for r in ranges.iter().filter(|r| r.len > 0) {
        c.range(r)?;
    }
    Ok(c.report)
}

/// The state of one [`copy_ranges`] call.
struct Copier<'a> {
    basis: BorrowedFd<'a>,
    out: BorrowedFd<'a>,
    report: CopyReport,
    /// The fallback's buffer, made when first needed.
    buf: Vec<u8>,
    /// False once the basis's file system said it cannot find holes.
    seek_data: bool,
}

impl Copier<'_> {
    /// One range, data extent by data extent.
    fn range(&mut self, r: &CopyRange) -> io::Result<()> {
        let end = r.src + r.len;
        let mut pos = r.src;
        let mut copied_to = r.src;
        while pos < end {
            let (data, hole) = self.next_data(pos, end)?;
            self.report.holes += data - pos;
            if data < hole {
                self.copy(data, r.dst + (data - r.src), hole - data)?;
                self.report.bytes += hole - data;
                copied_to = hole;
            }
            pos = hole;
        }
        if copied_to < end {
            // A trailing hole wrote nothing: the range's end must still
            // exist in `out`, so that it reads as zeros whatever the
            // caller does next (never shrunk: a later range may be there).
            let out_end = r.dst + r.len;
            let st = stat::fstat(self.out.as_raw_fd()).map_err(errno_io)?;
            if (st.st_size as u64) < out_end {
                nix::unistd::ftruncate(self.out, off(out_end)?).map_err(errno_io)?;
            }
        }
        Ok(())
    }

    /// The first data extent at or after `pos`, cut at `end`, as
    /// `(start, end)`; `(end, end)` when the rest is a hole.
    fn next_data(&mut self, pos: u64, end: u64) -> io::Result<(u64, u64)> {
        if !self.seek_data {
            return Ok((pos, end));
        }
        let fd = self.basis.as_raw_fd();
        let data = match lseek(fd, off(pos)?, Whence::SeekData) {
            Ok(d) => (d as u64).min(end),
            // No data after pos: the rest is a hole (or the basis shrank,
            // which the copy of a later range or the crc catches).
            Err(Errno::ENXIO) => return Ok((end, end)),
            Err(Errno::EINVAL | Errno::EOPNOTSUPP) => {
                self.seek_data = false;
                return Ok((pos, end));
            }
            Err(e) => return Err(errno_io(e)),
        };
        if data >= end {
            return Ok((end, end));
        }
        let hole = match lseek(fd, off(data)?, Whence::SeekHole) {
            Ok(h) => (h as u64).clamp(data, end),
            Err(Errno::ENXIO) => end,
            Err(e) => return Err(errno_io(e)),
        };
        // A hole right at `data` means the file changed between the two
        // calls: copy the rest as data, the copy meets the truth.
        Ok((data, if hole == data { end } else { hole }))
    }

    /// `len` bytes from basis offset `src` to out offset `dst`.
    fn copy(&mut self, mut src: u64, mut dst: u64, mut len: u64) -> io::Result<()> {
        while len > 0 && !self.report.fallback {
            let mut off_in = off(src)?;
            let mut off_out = off(dst)?;
            let want = len.min(COPY_CHUNK) as usize;
            match nix::fcntl::copy_file_range(
                self.basis,
                Some(&mut off_in),
                self.out,
                Some(&mut off_out),
                want,
            ) {
                Ok(0) => return Err(basis_short()),
                Ok(n) => {
                    let n = n as u64;
                    write_behind(self.out, dst, n);
                    (src, dst, len) = (src + n, dst + n, len - n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EXDEV | Errno::EOPNOTSUPP | Errno::ENOSYS | Errno::EINVAL) => {
                    self.report.fallback = true;
                }
                Err(e) => return Err(errno_io(e)),
            }
        }
        if len > 0 {
            self.copy_by_hand(src, dst, len)?;
        }
        Ok(())
    }

    /// The fallback: `pread` into the buffer, `pwrite` out of it.
    fn copy_by_hand(&mut self, mut src: u64, mut dst: u64, mut len: u64) -> io::Result<()> {
        if self.buf.is_empty() {
            self.buf = vec![0; BUF];
        }
        while len > 0 {
            let want = len.min(BUF as u64) as usize;
            let n = match nix::sys::uio::pread(self.basis, &mut self.buf[..want], off(src)?) {
                Ok(0) => return Err(basis_short()),
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(errno_io(e)),
            };
            let mut done = 0;
            while done < n {
                match nix::sys::uio::pwrite(self.out, &self.buf[done..n], off(dst + done as u64)?) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(w) => done += w,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(errno_io(e)),
                }
            }
            let n = n as u64;
            write_behind(self.out, dst, n);
            (src, dst, len) = (src + n, dst + n, len - n);
        }
        Ok(())
    }
}

/// Starts writing `len` bytes of `out` from `at` to disk in the
/// background, as the body receiver does: without it a copy of a large
/// file leaves gigabytes dirty, the copy itself is throttled in bursts
/// (and so is every write in the process meanwhile) and the commit's sync
/// finds all of it still to do. A failure only leaves the work to the
/// sync.
fn write_behind(out: BorrowedFd<'_>, at: u64, len: u64) {
    let (Ok(at), Ok(len)) = (i64::try_from(at), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain system call on a descriptor the caller holds; no
    // memory is passed.
    unsafe {
        nix::libc::sync_file_range(out.as_raw_fd(), at, len, nix::libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Feeds the first `len` bytes of `fd` to `each`, in `pread`s of at most
/// 1 MiB; a file shorter than `len` is an `UnexpectedEof` error.
fn read_all(fd: BorrowedFd<'_>, len: u64, mut each: impl FnMut(&[u8])) -> io::Result<()> {
    read_until(fd, len, |b| {
        each(b);
        ControlFlow::Continue(())
    })
}

/// [`read_all`] that stops, with `Ok`, as soon as `each` breaks.
fn read_until(
    fd: BorrowedFd<'_>,
    len: u64,
    mut each: impl FnMut(&[u8]) -> ControlFlow<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; len.min(BUF as u64) as usize];
    let mut pos = 0u64;
    while pos < len {
        let want = (len - pos).min(BUF as u64) as usize;
        match nix::sys::uio::pread(fd, &mut buf[..want], off(pos)?) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than its size while it was signed",
                ))
            }
            Ok(n) => {
                if each(&buf[..n]).is_break() {
                    return Ok(());
                }
                pos += n as u64;
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(errno_io(e)),
        }
    }
    Ok(())
}

fn signer(block: u32) -> io::Result<Signer> {
    Signer::new(block).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
}

/// The signature of the first `len` bytes of `fd`, blocks of `block` (a
/// valid block size: [`crate::delta::is_valid_block`], else `InvalidInput`), read with
/// `pread` in 1 MiB chunks. A file shorter than `len` is an
/// `UnexpectedEof` error.
pub fn sign_file(fd: BorrowedFd<'_>, len: u64, block: u32) -> io::Result<Signature> {
    let mut s = signer(block)?;
    read_all(fd, len, |b| s.feed(b))?;
    Ok(s.finish())
}

/// [`sign_file`] for a loop that must stay responsive while a large file
/// is read (a restore's client signing its copy: interrupts, keepalives):
/// `look_up` runs after every read of at most 1 MiB, and its first `Err`
/// stops the signing and is returned. `Ok(Err)`: as [`sign_file`].
pub fn sign_file_until<E>(
    fd: BorrowedFd<'_>,
    len: u64,
    block: u32,
    mut look_up: impl FnMut() -> Result<(), E>,
) -> Result<io::Result<Signature>, E> {
    let mut s = match signer(block) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let mut stopped = None;
    let read = read_until(fd, len, |b| {
        s.feed(b);
        match look_up() {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                stopped = Some(e);
                ControlFlow::Break(())
            }
        }
    });
    match stopped {
        Some(e) => Err(e),
        None => Ok(read.map(|()| s.finish())),
    }
}

/// One pass over the first `len` bytes of `fd`: its crc32c (as
/// [`crate::io::transfer::crc_range`] computes it from 0) and, when
/// `block` is `Some`, its signature. A file shorter than `len` is an
/// `UnexpectedEof` error.
pub fn crc_and_sign(
    fd: BorrowedFd<'_>,
    len: u64,
    block: Option<u32>,
) -> io::Result<(u32, Option<Signature>)> {
    let mut s = block.map(signer).transpose()?;
    let mut crc = 0u32;
    read_all(fd, len, |b| {
        crc = crc32c::crc32c_append(crc, b);
        if let Some(s) = s.as_mut() {
            s.feed(b);
        }
    })?;
    Ok((crc, s.map(Signer::finish)))
}

/// Like [`crc_and_sign`] for a delta's result: its crc32c, and its
/// signature in blocks of `block`, where `known` gives the entry of each
/// block the basis already signed ([`crate::delta::Resigner`]: asked for
/// the blocks in order, `(start, len)`) and only the others are hashed.
/// Of a result that differs from its basis in a few places, that is a
/// read for the crc32c and a few blocks of BLAKE3.
pub fn crc_and_resign(
    fd: BorrowedFd<'_>,
    len: u64,
    block: u32,
    mut known: impl FnMut(u64, u64) -> Option<BlockSig>,
) -> io::Result<(u32, Signature)> {
    if !crate::delta::is_valid_block(block) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad block size",
        ));
    }
    let b = block as usize;
    let mut blocks = Vec::with_capacity(Signature::block_count(len, block) as usize);
    let mut crc = 0u32;
    let mut cur: Vec<u8> = Vec::with_capacity(b);
    let mut start = 0u64;
    let mut one = |bytes: &[u8], start: &mut u64, blocks: &mut Vec<BlockSig>| {
        let n = bytes.len() as u64;
        blocks.push(known(*start, n).unwrap_or_else(|| BlockSig::of(bytes)));
        *start += n;
    };
    read_all(fd, len, |mut chunk| {
        crc = crc32c::crc32c_append(crc, chunk);
        if !cur.is_empty() {
            let take = (b - cur.len()).min(chunk.len());
            cur.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if cur.len() == b {
                one(&cur, &mut start, &mut blocks);
                cur.clear();
            }
        }
        while chunk.len() >= b {
            one(&chunk[..b], &mut start, &mut blocks);
            chunk = &chunk[b..];
        }
        cur.extend_from_slice(chunk);
    })?;
    if !cur.is_empty() {
        one(&cur, &mut start, &mut blocks);
    }
    Ok((
        crc,
        Signature {
            file_len: len,
            block,
            blocks,
        },
    ))
}

/// The file system's block size for `fd` (`fstatvfs`'s `f_bsize`, or 4096
/// when unknown or absurd), to give [`crate::delta::block_size`]: copied
/// blocks aligned to it can share extents.
pub fn fs_block(fd: BorrowedFd<'_>) -> u32 {
    match nix::sys::statvfs::fstatvfs(fd) {
        Ok(v) => match u32::try_from(v.block_size()) {
            Ok(b) if b > 0 => b,
            _ => 4096,
        },
        Err(_) => 4096,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, OpenOptions};
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileExt, MetadataExt};
    use std::process::Command;

    const MIB: u64 = 1 << 20;

    /// Bytes that compress to nothing and repeat nowhere (xorshift).
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn file_with(dir: &std::path::Path, name: &str, bytes: &[u8]) -> File {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        File::open(p).unwrap()
    }

    fn fresh(dir: &std::path::Path, name: &str) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.join(name))
            .unwrap()
    }

    /// What applying `ranges` to `basis` gives, by hand.
    fn expected(basis: &[u8], ranges: &[CopyRange]) -> Vec<u8> {
        // An empty range is skipped: it does not make `out` longer.
        let end = ranges
            .iter()
            .filter(|r| r.len > 0)
            .map(|r| r.dst + r.len)
            .max()
            .unwrap_or(0);
        let mut want = vec![0u8; end as usize];
        for r in ranges.iter().filter(|r| r.len > 0) {
            let (s, d, l) = (r.src as usize, r.dst as usize, r.len as usize);
            want[d..d + l].copy_from_slice(&basis[s..s + l]);
        }
        want
    }

    /// Aligned, unaligned, adjacent, empty and end-of-basis ranges, out of
    /// order, into a staging file not truncated beforehand.
    fn some_ranges(size: u64) -> Vec<CopyRange> {
        let r = |dst, src, len| CopyRange { dst, src, len };
        vec![
            r(0, 2 * MIB, MIB),
            r(MIB, 12_345, 70_001),
            // Adjacent to the one before, in both files.
            r(MIB + 70_001, 12_345 + 70_001, 4096),
            // Empty: skipped.
            r(5 * MIB, 0, 0),
            r(3 * MIB, size - 10, 10),
            r(2 * MIB, 0, 4097),
        ]
    }

    #[test]
    fn copies_ranges_byte_exact_with_and_without_copy_file_range() {
        let dir = tempfile::tempdir().unwrap();
        let basis = noise(3 * MIB as usize, 7);
        let b = file_with(dir.path(), "basis", &basis);
        let ranges = some_ranges(basis.len() as u64);
        let want = expected(&basis, &ranges);
        for force in [false, true] {
            let out = fresh(dir.path(), &format!("out-{force}"));
            let rep = copy_ranges_with(b.as_fd(), out.as_fd(), &ranges, force).unwrap();
            let bytes: u64 = ranges.iter().map(|r| r.len).sum();
            // /tmp is one local file system: copy_file_range works there.
            assert_eq!(
                rep,
                CopyReport {
                    bytes,
                    holes: 0,
                    fallback: force
                }
            );
            let got = std::fs::read(dir.path().join(format!("out-{force}"))).unwrap();
            assert!(got == want, "force {force}: bytes differ");
        }
        // Nothing to do is fine.
        let out = fresh(dir.path(), "none");
        let rep = copy_ranges_with(b.as_fd(), out.as_fd(), &[], false).unwrap();
        assert_eq!(rep, CopyReport::default());
    }

    #[test]
    fn holes_of_the_basis_stay_holes() {
        let dir = tempfile::tempdir().unwrap();
        let size = 8 * MIB;
        let p = dir.path().join("sparse");
        let f = File::create(&p).unwrap();
        f.set_len(size).unwrap();
        let data = noise(64 * 1024, 3);
        f.write_all_at(&data, MIB).unwrap();
        f.write_all_at(&data, 6 * MIB).unwrap();
        f.sync_all().unwrap();
        let basis = std::fs::read(&p).unwrap();
        let b = File::open(&p).unwrap();
        // The whole file, and a range that starts and ends in holes.
        let ranges = [
            CopyRange {
                dst: 0,
                src: 0,
                len: size,
            },
            CopyRange {
                dst: size,
                src: MIB / 2,
                len: MIB,
            },
        ];
        let want = expected(&basis, &ranges);
        for force in [false, true] {
            let name = format!("out-{force}");
            let out = fresh(dir.path(), &name);
            let rep = copy_ranges_with(b.as_fd(), out.as_fd(), &ranges, force).unwrap();
            assert_eq!(rep.bytes, 3 * data.len() as u64, "force {force}");
            assert_eq!(rep.holes, size + MIB - rep.bytes);
            out.sync_all().unwrap();
            let meta = out.metadata().unwrap();
            assert_eq!(meta.len(), size + MIB);
            assert!(
                meta.blocks() * 512 <= 1024 * 1024,
                "force {force}: {} bytes allocated",
                meta.blocks() * 512
            );
            assert!(std::fs::read(dir.path().join(&name)).unwrap() == want);
        }
    }

    #[test]
    fn a_range_past_the_basis_is_unexpected_eof() {
        let dir = tempfile::tempdir().unwrap();
        let b = file_with(dir.path(), "basis", &noise(100_000, 1));
        let out = fresh(dir.path(), "out");
        for (src, len) in [(99_990, 11), (100_000, 1), (u64::MAX, 2), (0, u64::MAX)] {
            let r = [CopyRange { dst: 0, src, len }];
            let e = copy_ranges_with(b.as_fd(), out.as_fd(), &r, false).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{src} {len}");
            assert_eq!(e.to_string(), "basis shorter than the delta says");
        }
        // Checked before anything is written.
        assert_eq!(out.metadata().unwrap().len(), 0);
    }

    /// The only test that sets the variable, and the only caller of the
    /// public entry, which reads it once.
    #[test]
    fn the_environment_forces_the_fallback() {
        std::env::set_var(NO_COPY_RANGE_ENV, "1");
        let dir = tempfile::tempdir().unwrap();
        let basis = noise(3 * MIB as usize, 11);
        let b = file_with(dir.path(), "basis", &basis);
        let ranges = some_ranges(basis.len() as u64);
        let out = fresh(dir.path(), "out");
        let rep = copy_ranges(b.as_fd(), out.as_fd(), &ranges).unwrap();
        std::env::remove_var(NO_COPY_RANGE_ENV);
        assert!(rep.fallback);
        assert!(std::fs::read(dir.path().join("out")).unwrap() == expected(&basis, &ranges));
    }

    #[test]
    fn signing_a_file_equals_the_pure_signer() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = noise(3 * MIB as usize + 123, 5);
        let f = file_with(dir.path(), "f", &bytes);
        for block in [4096u32, 65536, 1 << 20] {
            let mut s = Signer::new(block).unwrap();
            s.feed(&bytes);
            let want = s.finish();
            let len = bytes.len() as u64;
            assert_eq!(sign_file(f.as_fd(), len, block).unwrap(), want);
            let (crc, sig) = crc_and_sign(f.as_fd(), len, Some(block)).unwrap();
            assert_eq!(crc, crc32c::crc32c(&bytes));
            assert_eq!(sig, Some(want));
        }
        assert_eq!(
            crc_and_sign(f.as_fd(), 1000, None).unwrap(),
            (crc32c::crc32c(&bytes[..1000]), None)
        );
        assert_eq!(crc_and_sign(f.as_fd(), 0, None).unwrap(), (0, None));
        let too_long = bytes.len() as u64 + 1;
        for e in [
            sign_file(f.as_fd(), too_long, 4096).unwrap_err(),
            crc_and_sign(f.as_fd(), too_long, None).unwrap_err(),
        ] {
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        }
        let e = sign_file(f.as_fd(), 10, 1000).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let b = fs_block(f.as_fd());
        assert!(b.is_power_of_two() && b >= 512, "{b}");
    }

    /// A signing that looks up after every read: the same signature when
    /// nothing stops it, and stopped by the first `Err` with nothing read
    /// past the MiB it was in.
    #[test]
    fn signing_until_a_look_up_fails_stops_there() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = noise(5 * MIB as usize + 7, 6);
        let f = file_with(dir.path(), "f", &bytes);
        let len = bytes.len() as u64;
        let mut calls = 0;
        let sig = sign_file_until(f.as_fd(), len, 4096, || {
            calls += 1;
            Ok::<(), ()>(())
        });
        assert_eq!(
            sig.unwrap().unwrap(),
            sign_file(f.as_fd(), len, 4096).unwrap()
        );
        assert_eq!(calls, 6, "one look-up per MiB read");
        let mut calls = 0;
        let stopped = sign_file_until(f.as_fd(), len, 4096, || {
            calls += 1;
            if calls == 2 {
                Err("interrupted")
            } else {
                Ok(())
            }
        });
        assert_eq!(stopped.unwrap_err(), "interrupted");
        assert_eq!(calls, 2, "no read after the look-up failed");
        let short = sign_file_until(f.as_fd(), len + 1, 4096, || Ok::<(), ()>(()));
        assert_eq!(
            short.unwrap().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    /// Unmounts and detaches the loop device, whatever the test did.
    struct LoopMount {
        dev: String,
        mnt: Option<std::path::PathBuf>,
    }

    impl Drop for LoopMount {
        fn drop(&mut self) {
            if let Some(m) = &self.mnt {
                let _ = Command::new("umount").arg(m).status();
            }
            let _ = Command::new("losetup").args(["-d", &self.dev]).status();
        }
    }

    fn run(cmd: &mut Command) -> Result<String, String> {
        match cmd.output() {
            Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// On XFS with reflink a copied aligned range shares its extents with
    /// the basis: the point of copy_file_range over pread/pwrite.
    #[test]
    fn copied_blocks_share_extents_on_xfs() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to mount an XFS image");
            return;
        }
        if run(Command::new("mkfs.xfs").arg("-V")).is_err() {
            eprintln!("skipped: no mkfs.xfs (apt-get install xfsprogs)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("xfs.img");
        // mkfs.xfs refuses file systems under 300 MB; the image is sparse.
        File::create(&img).unwrap().set_len(320 * MIB).unwrap();
        run(Command::new("mkfs.xfs")
            .args(["-q", "-m", "reflink=1"])
            .arg(&img))
        .unwrap();
        let dev = match run(Command::new("losetup").args(["--find", "--show"]).arg(&img)) {
            Ok(d) => d.trim().to_string(),
            Err(e) => {
                eprintln!("skipped: no loop device: {e}");
                return;
            }
        };
        let mut guard = LoopMount { dev, mnt: None };
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        if let Err(e) = run(Command::new("mount").arg(&guard.dev).arg(&mnt)) {
            eprintln!("skipped: cannot mount XFS: {e}");
            return;
        }
        guard.mnt = Some(mnt.clone());
        let basis = noise(32 * MIB as usize, 9);
        let b = file_with(&mnt, "basis", &basis);
        b.sync_all().unwrap();
        let out = fresh(&mnt, "out");
        let r = [CopyRange {
            dst: 0,
            src: 8 * MIB,
            len: 16 * MIB,
        }];
        let rep = copy_ranges_with(b.as_fd(), out.as_fd(), &r, false).unwrap();
        assert_eq!(
            rep,
            CopyReport {
                bytes: 16 * MIB,
                holes: 0,
                fallback: false
            }
        );
        assert_eq!(fs_block(out.as_fd()), 4096);
        out.sync_all().unwrap();
        assert!(std::fs::read(mnt.join("out")).unwrap() == expected(&basis, &r));
        let frag = match run(Command::new("filefrag").arg("-v").arg(mnt.join("out"))) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("extents not checked: filefrag: {e}");
                return;
            }
        };
        // Extent lines start with their index, "   0:".
        let extents: Vec<&str> = frag
            .lines()
            .filter(|l| {
                l.trim_start()
                    .split(':')
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .collect();
        assert!(!extents.is_empty(), "{frag}");
        assert!(extents.iter().all(|l| l.contains("shared")), "{frag}");
        let _ = std::io::stderr().write_all(format!("xfs reflink: {frag}").as_bytes());
    }

    /// A result signed with the basis's help equals one signed whole, and
    /// its crc32c is the file's.
    #[test]
    fn a_result_resigned_from_its_basis_equals_one_signed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = noise(3 * MIB as usize + 1234, 5);
        let f = file_with(dir.path(), "f", &bytes);
        let whole = sign_file(f.as_fd(), bytes.len() as u64, 65536).unwrap();
        // Every other block "known" (from the whole signature itself).
        let mut asked = Vec::new();
        let (crc, sig) = crc_and_resign(f.as_fd(), bytes.len() as u64, 65536, |start, len| {
            asked.push((start, len));
            let k = (start / 65536) as usize;
            k.is_multiple_of(2).then(|| whole.blocks[k])
        })
        .unwrap();
        assert_eq!(sig, whole);
        assert_eq!(crc, crc32c::crc32c(&bytes));
        assert_eq!(asked.len(), whole.blocks.len());
        assert_eq!(asked.last(), Some(&(3 * MIB / 65536 * 65536, 1234)));
        assert!(crc_and_resign(f.as_fd(), bytes.len() as u64, 1000, |_, _| None).is_err());
    }
}
