//! Sparse files: where a file's data lies (`lseek` with `SEEK_DATA` and
//! `SEEK_HOLE`), so that holes are neither sent nor allocated, and the
//! crc32c of the zeros a hole reads as, computed without reading them.
//!
//! A file is looked at only when its allocated size (`st_blocks`) is below
//! its length: every dense file costs nothing here.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::unistd::{lseek, Whence};

use crate::proto::{Extent, Layout, MAX_EXTENTS};

/// True when a file of `size` bytes with `blocks` 512-byte blocks
/// allocated may have holes worth looking for.
pub fn may_have_holes(size: i64, blocks: i64) -> bool {
    blocks.saturating_mul(512) < size
}

/// Where the data of bytes `from..size` of `file` lies: [`Layout::Dense`]
/// when all of it is data (or the file system cannot tell), else the
/// extents of data, in order, inside `from..size`. Past [`MAX_EXTENTS`]
/// extents the last one reaches the end: the rest is sent dense.
pub fn layout(file: &impl AsFd, from: u64, size: u64) -> io::Result<Layout> {
    let fd = file.as_fd().as_raw_fd();
    let mut extents: Vec<Extent> = Vec::new();
    let mut pos = from;
    while pos < size {
        let data = match lseek(fd, offset(pos)?, Whence::SeekData) {
            Ok(d) => d as u64,
            // No data after pos: the rest is a hole.
            Err(Errno::ENXIO) => break,
            // No SEEK_DATA here: take it all as data.
            Err(Errno::EINVAL | Errno::EOPNOTSUPP) => return Ok(Layout::Dense),
            Err(e) => return Err(io::Error::from_raw_os_error(e as i32)),
        };
        if data >= size {
            break;
        }
        let hole = match lseek(fd, offset(data)?, Whence::SeekHole) {
            Ok(h) => (h as u64).min(size),
            Err(Errno::ENXIO) => size,
            Err(e) => return Err(io::Error::from_raw_os_error(e as i32)),
        };
        if hole <= data {
            // A file that changed under us: the end check of the transfer
            // catches it; send the rest as data.
            extents.push(Extent {
                offset: data,
                len: size - data,
            });
            break;
        }
        if extents.len() as u32 + 1 == MAX_EXTENTS {
            extents.push(Extent {
                offset: data,
                len: size - data,
            });
            break;
        }
        extents.push(Extent {
            offset: data,
            len: hole - data,
        });
        pos = hole;
    }
    Ok(match extents.as_slice() {
        [only] if only.offset == from && only.offset + only.len == size => Layout::Dense,
        [] if from >= size => Layout::Dense,
        _ => Layout::Sparse(extents),
    })
}

/// The bytes a sparse body moves next from file offset `offset` in one
/// run: what is left of the first of `extents` (those already passed are
/// dropped). Passing a hole moves `offset` over it and continues `crc`
/// over its zeros; after the last extent, up to the file's `size`, and 0
/// is returned. Sender and receiver both walk a layout with it.
pub fn next_run(
    extents: &mut std::collections::VecDeque<Extent>,
    size: u64,
    offset: &mut u64,
    crc: &mut u32,
) -> u64 {
    while let Some(e) = extents.front() {
        let end = e.offset.saturating_add(e.len);
        if *offset < end {
            if *offset < e.offset {
                *crc = crc_zeros(*crc, e.offset - *offset);
                *offset = e.offset;
            }
            return end - *offset;
        }
        extents.pop_front();
    }
    if *offset < size {
        *crc = crc_zeros(*crc, size - *offset);
        *offset = size;
    }
    0
}

fn offset(pos: u64) -> io::Result<i64> {
    i64::try_from(pos).map_err(|_| io::Error::from_raw_os_error(nix::libc::EOVERFLOW))
}

/// `crc` continued over `n` zero bytes, in O(log n) steps: a 4 GiB hole
/// costs no reading.
pub fn crc_zeros(crc: u32, n: u64) -> u32 {
    if n == 0 {
        return crc;
    }
    // ZEROS[k]: crc32c of 2^k zero bytes.
    static ZEROS: OnceLock<[u32; 64]> = OnceLock::new();
    let zeros = ZEROS.get_or_init(|| {
        let mut t = [0u32; 64];
        t[0] = crc32c::crc32c(&[0]);
        for k in 1..64 {
            t[k] = crc32c::crc32c_combine(t[k - 1], t[k - 1], 1usize << (k - 1));
        }
        t
    });
    let mut out = crc;
    for (k, z) in zeros.iter().enumerate() {
        if n & (1u64 << k) != 0 {
            out = crc32c::crc32c_combine(out, *z, 1usize << k);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn zeros_crc_matches_reading_them() {
        for (start, n) in [
            (0u32, 0u64),
            (0, 1),
            (7, 4095),
            (0x1234_5678, 65536),
            (1, 1_000_003),
        ] {
            let zeros = vec![0u8; n as usize];
            assert_eq!(
                crc_zeros(start, n),
                crc32c::crc32c_append(start, &zeros),
                "{start:x} {n}"
            );
        }
    }

    /// A file with holes at both ends and in the middle, if the file
    /// system here makes holes (tmpfs and ext4 do).
    fn holey(dir: &std::path::Path) -> (std::fs::File, u64) {
        let p = dir.join("h");
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        let mib = 1u64 << 20;
        for at in [mib, 3 * mib] {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&vec![7u8; 65536]).unwrap();
        }
        f.set_len(5 * mib).unwrap();
        (f, 5 * mib)
    }

    #[test]
    fn the_layout_finds_the_data_between_holes() {
        let t = tempfile::tempdir().unwrap();
        let (f, size) = holey(t.path());
        let md = f.metadata().unwrap();
        if !may_have_holes(md.size() as i64, md.blocks() as i64) {
            eprintln!("this file system made no holes; skipped");
            return;
        }
        let mib = 1u64 << 20;
        let Layout::Sparse(ext) = layout(&f, 0, size).unwrap() else {
            panic!("dense");
        };
        // Block-aligned runs covering the written bytes, nothing else.
        assert_eq!(ext.len(), 2, "{ext:?}");
        assert!(ext[0].offset <= mib && ext[0].offset + ext[0].len >= mib + 65536);
        assert!(ext[1].offset <= 3 * mib && ext[1].offset + ext[1].len >= 3 * mib + 65536);
        assert!(
            ext[1].offset + ext[1].len < size,
            "the trailing hole is not data"
        );
        // From an offset inside the first run: it starts there.
        let Layout::Sparse(ext) = layout(&f, mib + 100, size).unwrap() else {
            panic!("dense");
        };
        assert_eq!(ext[0].offset, mib + 100);
        // A dense file is dense.
        let mut d = std::fs::File::create(t.path().join("d")).unwrap();
        d.write_all(&[1u8; 10000]).unwrap();
        assert_eq!(layout(&d, 0, 10000).unwrap(), Layout::Dense);
        // All hole: no extents.
        let e = std::fs::File::create(t.path().join("e")).unwrap();
        e.set_len(size).unwrap();
        assert_eq!(layout(&e, 0, size).unwrap(), Layout::Sparse(Vec::new()));
    }
}
