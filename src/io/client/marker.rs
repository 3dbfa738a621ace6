//! The mark of an unfinished restore: an extended attribute
//! ([`crate::client::restore::MARKER`]) on the top directory a restore
//! writes, set before anything is written into it and removed once the
//! restore finished with nothing failed. A re-run of the same restore into
//! the same destination recognises its own unfinished target by it
//! ([`crate::client::restore::target`]) and converges instead of nesting
//! a second copy inside the first. A file system without user extended
//! attributes just keeps no mark.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::{self, Mode};

use crate::client::restore::MARKER;

/// Opens the directory `path` itself, never through a symlink.
fn open_dir(path: &Path) -> Result<OwnedFd, Errno> {
    let fd = fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: fd was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What a mark attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// The directory carries the mark now (made first if it was missing).
    Yes,
    /// Something other than a directory is there (the restore replaces it;
    /// try again once it did).
    NotYet,
    /// The file system keeps no such mark, or it cannot be set: give up.
    Never,
}

/// Marks `path` (created owner-only if missing) with `value`.
pub fn mark(path: &Path, value: &[u8]) -> Marked {
    let fd = match open_dir(path) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => {
            match stat::mkdirat(None, path, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(_) => return Marked::Never,
            }
            match open_dir(path) {
                Ok(fd) => fd,
                Err(_) => return Marked::NotYet,
            }
        }
        Err(Errno::ENOTDIR | Errno::ELOOP) => return Marked::NotYet,
        Err(_) => return Marked::Never,
    };
    // SAFETY: MARKER is NUL-terminated; the value pointer and length
    // describe a live buffer; the fd is open for the duration of the call.
    let rc = unsafe {
        nix::libc::fsetxattr(
            fd.as_raw_fd(),
            MARKER.as_ptr().cast(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Marked::Yes
    } else {
        Marked::Never
    }
}

/// True when the directory `path` (not a symlink to one) carries exactly
/// the mark `value`.
pub fn is_marked(path: &Path, value: &[u8]) -> bool {
    let Ok(fd) = open_dir(path) else {
        return false;
    };
    let mut buf = vec![0u8; value.len() + 1];
    // SAFETY: MARKER is NUL-terminated; the buffer pointer and length
    // describe `buf`, which outlives the call.
    let n = unsafe {
        nix::libc::fgetxattr(
            fd.as_raw_fd(),
            MARKER.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    usize::try_from(n).is_ok_and(|n| buf.get(..n) == Some(value))
}

/// Removes the mark from the directory `path`, if it carries one.
pub fn clear(path: &Path) {
    if let Ok(fd) = open_dir(path) {
        // SAFETY: MARKER is NUL-terminated; the fd is open for the call.
        let _ = unsafe { nix::libc::fremovexattr(fd.as_raw_fd(), MARKER.as_ptr().cast()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_set_read_and_cleared_on_the_directory_itself() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join("r");
        let got = mark(&top, b"v1 path=/a");
        assert!(top.is_dir());
        if got == Marked::Never {
            return; // no user xattrs where the test runs
        }
        assert_eq!(got, Marked::Yes);
        assert!(is_marked(&top, b"v1 path=/a"));
        assert!(!is_marked(&top, b"v1 path=/b"));
        assert!(!is_marked(&top, b"v1 path=/a/longer"));
        // Never through a symlink.
        let link = t.path().join("l");
        std::os::unix::fs::symlink(&top, &link).unwrap();
        assert!(!is_marked(&link, b"v1 path=/a"));
        assert_eq!(mark(&link, b"x"), Marked::NotYet);
        clear(&top);
        assert!(!is_marked(&top, b"v1 path=/a"));
    }
}
