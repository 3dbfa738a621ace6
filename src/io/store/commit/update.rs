//! New metadata for a stored entry whose content is unchanged (see
//! [`Stager::update`]), applied in place at a commit: the same steps a new
//! file or link gets (owner, record, mode, then mtime), on the stored
//! entry itself, looked up beneath the namespace with no link followed.
//! A file with several names is one inode: all of them change, as they
//! did on the client.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, FileStat, Mode};

use super::super::beneath::os;
use super::super::durable::count_fsync;
use super::super::special::resolve;
use super::super::stage::{omit, timespec, PendingUpdate, Stager};
use super::super::xattr;
use crate::io::error::FsError;
use crate::proto::EntryKind;

/// How a failure names a kind: "a regular file", "a directory"...
fn a_kind(kind: Option<EntryKind>) -> &'static str {
    match kind {
        Some(EntryKind::File | EntryKind::HardLink) => "a regular file",
        Some(EntryKind::Dir) => "a directory",
        Some(EntryKind::Symlink) => "a symlink",
        Some(EntryKind::Fifo) => "a FIFO",
        Some(EntryKind::Socket) => "a socket",
        Some(EntryKind::CharDev) => "a character device",
        Some(EntryKind::BlockDev) => "a block device",
        None => "of a kind rsb does not store",
    }
}

impl Stager {
    /// Applies the update `u`: the stored entry must be of `u`'s kind and
    /// size (a file also of its mtime: its content is judged by both),
    /// else the update fails naming the path and both kinds, or "not
    /// stored" when it is gone (the next backup then sends it whole).
    pub(super) fn apply_update(&self, u: &PendingUpdate) -> Result<(), FsError> {
        let shown = || self.ns.tree.show(&u.path);
        let (Some(dp), Some(name)) = (u.path.parent(), u.path.file_name()) else {
            return Err(FsError::invalid("update", shown(), "no name"));
        };
        let dir = self.dir(&dp)?;
        let dir = dir.as_raw_fd();
        let st = match stat::fstatat(Some(dir), os(name), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT | Errno::ENOTDIR) => {
                return Err(FsError::other(
                    "update",
                    shown(),
                    "not stored (removed since the manifest); the next backup sends it whole",
                ))
            }
            Err(e) => return Err(FsError::errno("update", shown(), e)),
        };
        let (kind, _, _) = resolve(&st, || xattr::meta_at(dir, name));
        if kind != Some(u.kind) {
            return Err(FsError::other(
                "update",
                shown(),
                format!(
                    "the stored entry is {}, the update is for {}",
                    a_kind(kind),
                    a_kind(Some(u.kind))
                ),
            ));
        }
        let same_size = u64::try_from(st.st_size).is_ok_and(|n| n == u.size);
        let same_mtime = |st: &FileStat| {
            st.st_mtime == u.meta.mtime.secs && st.st_mtime_nsec == i64::from(u.meta.mtime.nanos)
        };
        let changed = || {
            FsError::other(
                "update",
                shown(),
                "the stored entry changed since the manifest",
            )
        };
        if !same_size || u.kind == EntryKind::File && !same_mtime(&st) {
            return Err(changed());
        }
        if u.kind == EntryKind::Symlink {
            return self
                .stamp_by_name(dir, name, &u.meta)
                .map_err(|(op, e)| FsError::errno(op, shown(), e));
        }
        // A regular file (never a device or FIFO: checked above), opened
        // with no link followed, and checked to be the inode looked at.
        let fd = fcntl::openat(
            Some(dir),
            os(name),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| FsError::errno("open", shown(), e))?;
        // SAFETY: fd was just returned by openat and belongs to nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let now = stat::fstat(fd.as_raw_fd()).map_err(|e| FsError::errno("stat", shown(), e))?;
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) || !same_mtime(&now) {
            return Err(changed());
        }
        let applied = self
            .opts
            .apply_mode_to(fd.as_fd(), EntryKind::File, &u.meta, &self.names, true)
            .map_err(|(op, e)| FsError::errno(op, shown(), e))?;
        self.count(applied);
        stat::futimens(fd.as_raw_fd(), &omit(), &timespec(&u.meta))
            .map_err(|e| FsError::errno("utimes", shown(), e))?;
        if self.fsyncs() {
            nix::unistd::fsync(fd.as_raw_fd()).map_err(|e| FsError::errno("fsync", shown(), e))?;
            count_fsync();
        }
        Ok(())
    }
}
