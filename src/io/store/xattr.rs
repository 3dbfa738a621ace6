//! The extended attribute that holds the crc32c the server keeps beside
//! every stored file, for `verify` and for the restore's check of what it
//! sends. Its format and meaning are [`Recorded`]'s; this file only sets
//! and reads the attribute.
//!
//! It lives in an extended attribute of the file itself,
//! `user.rsb.crc32c`, set on the temporary file before the commit renames
//! it into place. So a file and its checksum appear together, atomically,
//! move and vanish together, and need no index that a crash could leave out
//! of step with the files. `cp -a`, `rsync -X` and `tar --xattrs` keep it.
//! A file system without user extended attributes simply stores files
//! without one; `verify` counts them as unchecked.
//!
//! The value is text, readable with `getfattr -n user.rsb.crc32c FILE`:
//! `v1 crc32c=1a2b3c4d size=12345`.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

use crate::store::record::Recorded;

/// The attribute's name.
const NAME: &[u8] = b"user.rsb.crc32c\0";

/// Records `r` on the open file. `Ok(false)`: the file system keeps no
/// user extended attributes (nothing recorded, not an error).
pub fn record(fd: BorrowedFd<'_>, r: Recorded) -> Result<bool, Errno> {
    let value = r.encode();
    // SAFETY: NAME is NUL-terminated; the value pointer and length describe
    // a live buffer; the fd is open for the duration of the call.
    let rc = unsafe {
        nix::libc::fsetxattr(
            fd.as_raw_fd(),
            NAME.as_ptr().cast(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    match Errno::last() {
        Errno::ENOTSUP => Ok(false),
        e => Err(e),
    }
}

/// What was recorded on the open file, if anything (an attribute that is
/// not ours to read counts as nothing).
pub fn recorded(fd: BorrowedFd<'_>) -> Result<Option<Recorded>, Errno> {
    let mut buf = [0u8; 64];
    // SAFETY: NAME is NUL-terminated; the buffer pointer and length describe
    // `buf`, which outlives the call.
    let n = unsafe {
        nix::libc::fgetxattr(
            fd.as_raw_fd(),
            NAME.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return match Errno::last() {
            Errno::ENODATA | Errno::ENOTSUP | Errno::ERANGE => Ok(None),
            e => Err(e),
        };
    }
    Ok(buf.get(..n as usize).and_then(Recorded::decode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn recorded_on_a_file_and_read_back() {
        let f = tempfile::tempfile().unwrap();
        let r = Recorded { crc: 7, size: 3 };
        match record(f.as_fd(), r) {
            Ok(true) => assert_eq!(recorded(f.as_fd()), Ok(Some(r))),
            // No user xattrs where the test runs: nothing to check.
            Ok(false) => assert_eq!(recorded(f.as_fd()), Ok(None)),
            Err(e) => panic!("{e}"),
        }
    }
}
