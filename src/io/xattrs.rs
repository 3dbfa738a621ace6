//! The extended-attribute system calls, for both sides: list, read, set
//! and remove the attributes of an open descriptor, or of a path without
//! following a symlink (`l*xattr`). The client's walk reads files it has
//! not opened; the store and a restore work on descriptors they hold.
//!
//! Every list or value is read with a size probe first and read again
//! when it grew in between (`ERANGE`), a bounded number of times.

use std::ffi::{CString, OsStr};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::libc;

use crate::proto::xattrs::{XattrError, Xattrs, MAX_XATTR_BYTES};

/// What the calls work on.
#[derive(Debug, Clone, Copy)]
pub enum On<'a> {
    /// An open file or directory.
    Fd(RawFd),
    /// A path, never followed if it is a symlink.
    Path(&'a std::ffi::CStr),
}

/// How many times a list or a value that keeps growing is read again.
const RETRIES: usize = 4;

/// Largest list of names or single value read (Linux's `XATTR_LIST_MAX`
/// and `XATTR_SIZE_MAX` are both 64 KiB).
const READ_MAX: usize = 64 * 1024;

/// Reads with `call(buf, len)` into a buffer sized by a first probe
/// (`call(null, 0)`), again if it grew meanwhile.
fn read_sized(mut call: impl FnMut(*mut libc::c_void, usize) -> isize) -> Result<Vec<u8>, Errno> {
    for _ in 0..RETRIES {
        let n = call(std::ptr::null_mut(), 0);
        if n < 0 {
            return Err(Errno::last());
        }
        let len = (n as usize).min(READ_MAX);
        let mut buf = vec![0u8; len];
        if len == 0 {
            return Ok(buf);
        }
        let got = call(buf.as_mut_ptr().cast(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        match Errno::last() {
            Errno::ERANGE => continue,
            e => return Err(e),
        }
    }
    Err(Errno::ERANGE)
}

/// The names of `on`'s attributes, as the kernel lists them (only those
/// the caller may see: `trusted.*` for root alone).
pub fn names(on: On<'_>) -> Result<Vec<Vec<u8>>, Errno> {
    let list = read_sized(|buf, len| match on {
        // SAFETY: buf is null with len 0, or a live buffer of len bytes.
        On::Fd(fd) => unsafe { libc::flistxattr(fd, buf.cast(), len) },
        // SAFETY: the path is NUL-terminated; buf as above.
        On::Path(p) => unsafe { libc::llistxattr(p.as_ptr(), buf.cast(), len) },
    })?;
    Ok(split_names(&list))
}

/// The names of a list the kernel returns (each NUL-terminated).
fn split_names(list: &[u8]) -> Vec<Vec<u8>> {
    list.split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// The value of `name` on `on`; `Ok(None)` when it is gone (removed
/// since it was listed).
pub fn get(on: On<'_>, name: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
    let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
    let r = read_sized(|buf, len| match on {
        // SAFETY: name is NUL-terminated; buf is null or a live buffer.
        On::Fd(fd) => unsafe { libc::fgetxattr(fd, name.as_ptr(), buf, len) },
        // SAFETY: as above, and the path is NUL-terminated.
        On::Path(p) => unsafe { libc::lgetxattr(p.as_ptr(), name.as_ptr(), buf, len) },
    });
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Errno::ENODATA) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets `name` to `value` on `on`.
pub fn set(on: On<'_>, name: &[u8], value: &[u8]) -> Result<(), Errno> {
    let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
    let rc = match on {
        // SAFETY: name is NUL-terminated; value is a live buffer.
        On::Fd(fd) => unsafe {
            libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0)
        },
        // SAFETY: as above, and the path is NUL-terminated.
        On::Path(p) => unsafe {
            libc::lsetxattr(
                p.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        },
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Removes `name` from `on`; one already gone is no error.
pub fn remove(on: On<'_>, name: &[u8]) -> Result<(), Errno> {
    let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
    let rc = match on {
        // SAFETY: name is NUL-terminated.
        On::Fd(fd) => unsafe { libc::fremovexattr(fd, name.as_ptr()) },
        // SAFETY: as above, and the path is NUL-terminated.
        On::Path(p) => unsafe { libc::lremovexattr(p.as_ptr(), name.as_ptr()) },
    };
    match rc {
        0 => Ok(()),
        _ => match Errno::last() {
            Errno::ENODATA => Ok(()),
            e => Err(e),
        },
    }
}

/// Why a local file's attributes could not all be read.
#[derive(Debug)]
pub enum ReadError {
    /// A system call failed.
    Os(&'static str, Errno),
    /// The set is past the wire's bounds (it is not sent in part).
    Bounds(XattrError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Os(op, e) => write!(f, "{op}: {}", e.desc()),
            ReadError::Bounds(e) => write!(f, "{e}: none of them kept"),
        }
    }
}

/// Every attribute of the file or directory at `path` (not followed), as
/// the wire carries them; `Ok(None)` when it has none or its file system
/// keeps none.
pub fn read_path(path: &Path) -> Result<Option<Xattrs>, ReadError> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| ReadError::Os("listxattr", Errno::EINVAL))?;
    read_all(On::Path(&c))
}

/// Every attribute of `name` in the open directory `dir` (not
/// followed), whose whole path is `path`. The list comes from
/// `listxattrat` (Linux 6.13) relative to `dir`, so that the kernel
/// resolves one component instead of the whole path: a walk asks this of
/// every file, and on a tree without attributes the list is all it asks.
/// The values, when there are any, are read through `path`; so is the
/// list on a kernel without the call.
pub fn read_at(dir: RawFd, name: &OsStr, path: &Path) -> Result<Option<Xattrs>, ReadError> {
    let Ok(c) = CString::new(name.as_bytes()) else {
        return Err(ReadError::Os("listxattr", Errno::EINVAL));
    };
    let Some(list) = names_at(dir, &c) else {
        return read_path(path);
    };
    let list = match list {
        Ok(l) => l,
        Err(Errno::ENOTSUP) => return Ok(None),
        Err(e) => return Err(ReadError::Os("listxattr", e)),
    };
    if list.is_empty() {
        return Ok(None);
    }
    let p = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| ReadError::Os("getxattr", Errno::EINVAL))?;
    read_values(On::Path(&p), list)
}

/// `listxattrat`'s number where rsb knows it (the same in the generic
/// table and on x86_64); elsewhere every list goes through the path.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYS_LISTXATTRAT: Option<libc::c_long> = Some(465);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYS_LISTXATTRAT: Option<libc::c_long> = None;

/// Cleared the first time the kernel says it has no `listxattrat`.
static HAS_LISTXATTRAT: AtomicBool = AtomicBool::new(true);

/// The names of the attributes of `name` in `dir`, not followed; `None`
/// when this kernel has no `listxattrat` (`ENOSYS`: before Linux 6.13).
fn names_at(dir: RawFd, name: &std::ffi::CStr) -> Option<Result<Vec<Vec<u8>>, Errno>> {
    let nr = SYS_LISTXATTRAT?;
    if !HAS_LISTXATTRAT.load(Ordering::Relaxed) {
        return None;
    }
    let list = read_sized(|buf, len| {
        // SAFETY: dir is an open descriptor, name is NUL-terminated, buf
        // is null with len 0 or a live buffer of len bytes; the call
        // (dfd, path, at_flags, list, size) keeps none of them.
        let r = unsafe {
            libc::syscall(
                nr,
                dir,
                name.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW as libc::c_uint,
                buf,
                len,
            )
        };
        r as isize
    });
    match list {
        Err(Errno::ENOSYS) => {
            HAS_LISTXATTRAT.store(false, Ordering::Relaxed);
            None
        }
        Err(e) => Some(Err(e)),
        Ok(list) => Some(Ok(split_names(&list))),
    }
}

/// Every attribute of `on` (see [`read_path`]).
pub fn read_all(on: On<'_>) -> Result<Option<Xattrs>, ReadError> {
    let list = match names(on) {
        Ok(l) => l,
        Err(Errno::ENOTSUP) => return Ok(None),
        Err(e) => return Err(ReadError::Os("listxattr", e)),
    };
    if list.is_empty() {
        return Ok(None);
    }
    read_values(on, list)
}

/// The values of the attributes named in `list`, read from `on`, as one
/// set within the wire's bounds.
fn read_values(on: On<'_>, list: Vec<Vec<u8>>) -> Result<Option<Xattrs>, ReadError> {
    let mut pairs = Vec::with_capacity(list.len());
    let mut bytes = 0usize;
    for name in list {
        let Some(value) = get(on, &name).map_err(|e| ReadError::Os("getxattr", e))? else {
            continue;
        };
        bytes = bytes.saturating_add(name.len() + value.len());
        if bytes > MAX_XATTR_BYTES {
            return Err(ReadError::Bounds(XattrError::TooLarge(bytes)));
        }
        pairs.push((name, value));
    }
    if pairs.is_empty() {
        return Ok(None);
    }
    Xattrs::from_pairs(pairs)
        .map(Some)
        .map_err(ReadError::Bounds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn read_at_finds_what_read_path_finds_and_follows_no_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").expect("write");
        let c = CString::new(file.as_os_str().as_bytes()).expect("path");
        if let Err(e) = set(On::Path(&c), b"user.a", b"1") {
            eprintln!("skipped: this file system keeps no user attributes ({e})");
            return;
        }
        set(On::Path(&c), b"user.b", b"two").expect("set");
        std::os::unix::fs::symlink("f", dir.path().join("l")).expect("symlink");
        let d = std::fs::File::open(dir.path()).expect("open dir");
        let fd = d.as_raw_fd();
        let at = read_at(fd, OsStr::new("f"), &file).expect("read_at");
        let by_path = read_path(&file).expect("read_path");
        assert_eq!(at, by_path);
        let pairs = at.expect("some attributes");
        assert_eq!(pairs.digest(), by_path.expect("some").digest());
        // The symlink's own (none), not its target's.
        let link = dir.path().join("l");
        assert_eq!(read_at(fd, OsStr::new("l"), &link).expect("link"), None);
        // A name that is gone is the error a walk reports as vanished.
        match read_at(fd, OsStr::new("gone"), &dir.path().join("gone")) {
            Err(ReadError::Os(_, Errno::ENOENT)) => {}
            other => panic!("{other:?}"),
        }
    }
}
