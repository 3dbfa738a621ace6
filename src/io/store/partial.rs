//! Partials on disk: the bodies of large files kept from interrupted
//! transfers, found by name ([`crate::store::names::partial_name`]) in the
//! file's directory. How much of one counts and which files get one are
//! [`crate::store::resume`]'s rules; this file does the system calls:
//! measuring a partial, reopening it to continue, removing the partials of
//! older versions.
//!
//! Must not decide whether a stager keeps partials: [`super::Stager`]
//! asks here only when its options say so.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, Mode};
use nix::unistd::{self, UnlinkatFlags};

use super::beneath::{entries_at, os, Beneath};
use crate::io::error::FsError;
use crate::io::kind_of;
use crate::proto::{EntryKind, Meta, WirePath};
use crate::store::{names, resume};

/// How many bytes of `path` (a file of `size` bytes and mtime `meta`) a
/// partial from an interrupted transfer holds, if any.
pub fn kept_len(tree: &Beneath, path: &WirePath, size: u64, meta: &Meta) -> Option<u64> {
    if !resume::is_resumable(size) {
        return None;
    }
    let (parent, name) = tree.parent(path).ok()?;
    let st = stat::fstatat(
        Some(parent.as_raw_fd()),
        os(&names::partial_name(name, size, meta)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ok()?;
    resume::kept(kind_of(&st) == Some(EntryKind::File), st.st_size, size)
}

/// Reopens the partial `tmp` in `parent` to continue at `offset`: bytes
/// past it are cut. A partial shorter than `offset` is as good as none.
pub fn reopen(parent: RawFd, tmp: &[u8], offset: u64, shown: &str) -> Result<OwnedFd, FsError> {
    let fail = |e| FsError::errno("resume", shown.to_string(), e);
    let fd = fcntl::openat(
        Some(parent),
        os(tmp),
        OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(fail)?;
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = stat::fstat(file.as_raw_fd()).map_err(fail)?;
    if u64::try_from(st.st_size).unwrap_or(0) < offset {
        return Err(fail(Errno::ENOENT));
    }
    let off = i64::try_from(offset).map_err(|_| fail(Errno::EFBIG))?;
    unistd::ftruncate(&file, off).map_err(fail)?;
    Ok(file)
}

/// Removes the partials of every version of file `name` in `dir`.
pub fn remove_all(dir: RawFd, name: &[u8]) {
    let prefix = names::partials_prefix(name);
    for (n, _) in entries_at(dir).unwrap_or_default() {
        if n.starts_with(&prefix) {
            let _ = unistd::unlinkat(Some(dir), os(&n), UnlinkatFlags::NoRemoveDir);
        }
    }
}
