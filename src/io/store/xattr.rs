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
//!
//! Beside it, `user.rsb.meta` holds the real mode and owner of an entry
//! stored with others on disk, and the owner's names
//! ([`MetaRecord`], see [`crate::store::modes`]), set the same way before
//! the entry is made visible.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::Mode;

use super::beneath::os;
use crate::io::xattrs::{self, On};
use crate::proto::xattrs::Xattrs;
use crate::store::record::{client_xattr_name, stored_xattr_name, MetaRecord, Recorded};

/// The real-mode attribute's name.
const META: &[u8] = b"user.rsb.meta\0";

/// Longest metadata record read: a mode, two ids and two names of 255
/// bytes each written `%XX` fit.
const RECORD_MAX: usize = 2048;

/// Sets (`Some`) or removes (`None`) the real-mode record of the open
/// file or directory. `Ok(false)`: the file system keeps no user extended
/// attributes.
pub fn set_meta(fd: BorrowedFd<'_>, r: Option<MetaRecord>) -> Result<bool, Errno> {
    let rc = match &r {
        Some(r) => {
            let value = r.encode();
            // SAFETY: META is NUL-terminated; the value pointer and length
            // describe a live buffer; the fd is open for the call.
            unsafe {
                nix::libc::fsetxattr(
                    fd.as_raw_fd(),
                    META.as_ptr().cast(),
                    value.as_ptr().cast(),
                    value.len(),
                    0,
                )
            }
        }
        // SAFETY: META is NUL-terminated; the fd is open for the call.
        None => unsafe { nix::libc::fremovexattr(fd.as_raw_fd(), META.as_ptr().cast()) },
    };
    if rc == 0 {
        return Ok(true);
    }
    match Errno::last() {
        Errno::ENODATA if r.is_none() => Ok(true),
        Errno::ENOTSUP => Ok(false),
        e => Err(e),
    }
}

/// The real-mode record of the open file or directory, if any.
pub fn meta(fd: BorrowedFd<'_>) -> Option<MetaRecord> {
    let mut buf = [0u8; RECORD_MAX];
    // SAFETY: META is NUL-terminated; the buffer outlives the call.
    let n = unsafe {
        nix::libc::fgetxattr(
            fd.as_raw_fd(),
            META.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    buf.get(..n).and_then(MetaRecord::decode)
}

/// Whether `/proc/self/fd` can name a descriptor's directory.
fn have_proc() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| std::path::Path::new("/proc/self/fd").is_dir())
}

/// The real-mode record of `name` in the directory `dir`, never following
/// a link: `lgetxattr` of `/proc/self/fd/DIR/NAME` (one call, nothing
/// opened), or an open of the entry where there is no `/proc`.
pub fn meta_at(dir: RawFd, name: &[u8]) -> Option<MetaRecord> {
    if have_proc() {
        let mut path = format!("/proc/self/fd/{dir}/").into_bytes();
        path.extend_from_slice(name);
        path.push(0);
        let mut buf = [0u8; RECORD_MAX];
        // SAFETY: both strings are NUL-terminated (a name holds no NUL);
        // the buffer outlives the call.
        let n = unsafe {
            nix::libc::lgetxattr(
                path.as_ptr().cast(),
                META.as_ptr().cast(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let n = usize::try_from(n).ok()?;
        return buf.get(..n).and_then(MetaRecord::decode);
    }
    let fd = fcntl::openat(
        Some(dir),
        os(name),
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    meta(std::os::fd::AsFd::as_fd(&fd))
}

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

    #[test]
    fn the_real_mode_is_recorded_read_back_by_name_and_removed() {
        let t = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(t.path().join("f")).unwrap();
        let dir = std::fs::File::open(t.path()).unwrap();
        let r = MetaRecord {
            uid: Some(1000),
            gid: Some(u32::MAX - 1),
            user: Some(vec![0xff; 255]),
            group: Some(vec![b'%'; 255]),
            ..MetaRecord::mode(0o444)
        };
        if !set_meta(f.as_fd(), Some(r.clone())).unwrap() {
            return; // No user xattrs where the test runs.
        }
        assert_eq!(meta(f.as_fd()), Some(r.clone()));
        assert_eq!(meta_at(dir.as_raw_fd(), b"f"), Some(r));
        assert!(set_meta(f.as_fd(), None).unwrap());
        assert!(set_meta(f.as_fd(), None).unwrap());
        assert_eq!(meta(f.as_fd()), None);
        assert_eq!(meta_at(dir.as_raw_fd(), b"f"), None);
        assert_eq!(meta_at(dir.as_raw_fd(), b"missing"), None);
    }
}

/// Where an entry's extended attributes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XattrPlace {
    /// Into a store: each under [`XATTR_PREFIX`], never taking effect
    /// there (a capability or an ACL of a client's grants nothing on the
    /// server); any failure fails the entry.
    Stored,
    /// Onto a restored entry, under their own names; what the restorer
    /// may not set is counted, not fatal.
    Native,
}

/// Gives the open `fd` exactly the attributes `set` (none for `None`) in
/// `place`. With `stale`, attributes it had that `set` lacks are removed
/// first (a directory or partial that existed before); a fresh file has
/// none to look for. Natively, `user.rsb.*` (the restore's own markers)
/// are never removed, and the restore's marker is never set from a
/// server's set; one the file has and the set lacks that cannot be
/// removed (a label the system gives every file) is left, and not
/// counted. `Ok(n)`: `n` attributes of `set` could not be set natively.
pub fn apply_xattrs(
    fd: BorrowedFd<'_>,
    set: Option<&Xattrs>,
    place: XattrPlace,
    stale: bool,
) -> Result<u32, (&'static str, Errno)> {
    let on = On::Fd(fd.as_raw_fd());
    let mut refused = 0u32;
    let native = place == XattrPlace::Native;
    let has = |name: &[u8]| set.is_some_and(|s| s.get(name).is_some());
    if stale {
        let names = match xattrs::names(on) {
            Ok(n) => n,
            Err(Errno::ENOTSUP) => Vec::new(),
            Err(e) if native => {
                log::debug!("listxattr: {}", e.desc());
                refused += 1;
                Vec::new()
            }
            Err(e) => return Err(("listxattr", e)),
        };
        for name in names {
            let gone = if native {
                !name.starts_with(b"user.rsb.") && !has(&name)
            } else {
                client_xattr_name(&name).is_some_and(|c| !has(c))
            };
            if !gone {
                continue;
            }
            match xattrs::remove(on, &name) {
                Ok(()) => {}
                Err(e) if native => log::debug!(
                    "removexattr {}: {}",
                    String::from_utf8_lossy(&name),
                    e.desc()
                ),
                Err(e) => return Err(("removexattr", e)),
            }
        }
    }
    let marker = crate::client::restore::MARKER
        .strip_suffix(b"\0")
        .unwrap_or_default();
    for (name, value) in set.map(Xattrs::pairs).unwrap_or_default() {
        if native && name.as_slice() == marker {
            continue;
        }
        let r = if native {
            xattrs::set(on, name, value)
        } else {
            xattrs::set(on, &stored_xattr_name(name), value)
        };
        match r {
            Ok(()) => {}
            Err(e) if native => {
                log::debug!("setxattr {}: {}", String::from_utf8_lossy(name), e.desc());
                refused += 1;
            }
            Err(e) => return Err(("setxattr", e)),
        }
    }
    Ok(refused)
}

/// The client's attributes kept on the stored `fd` (prefix stripped),
/// `None` for none. Read only where the entry's record says it has some.
pub fn stored_xattrs(fd: BorrowedFd<'_>) -> Result<Option<Xattrs>, Errno> {
    let on = On::Fd(fd.as_raw_fd());
    let mut pairs = Vec::new();
    for name in xattrs::names(on)? {
        let Some(client) = client_xattr_name(&name) else {
            continue;
        };
        if let Some(value) = xattrs::get(on, &name)? {
            pairs.push((client.to_vec(), value));
        }
    }
    if pairs.is_empty() {
        return Ok(None);
    }
    // What a store holds was checked when it came in; a set edited by
    // hand past the bounds is not sent.
    Xattrs::from_pairs(pairs)
        .map(Some)
        .map_err(|_| Errno::E2BIG)
}
