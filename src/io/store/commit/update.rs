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
use super::super::stage::{omit, timespec, PendingUpdate, Stager, XattrStep};
use super::super::xattr;
use crate::io::error::FsError;
use crate::proto::xattrs::Xattrs;
use crate::proto::{EntryKind, Meta, WirePath};

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
    /// stored" when it is gone (the client then sends it whole).
    pub(super) fn apply_update(&self, u: &PendingUpdate) -> Result<(), FsError> {
        let shown = || self.ns.tree.show(&u.path);
        let (Some(dp), Some(name)) = (u.path.parent(), u.path.file_name()) else {
            return Err(FsError::invalid("update", shown(), "no name"));
        };
        let gone = || FsError::other("update", shown(), "not stored (removed since the manifest)");
        let dir = match self.dir(&dp) {
            Ok(dir) => dir,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENOENT | nix::libc::ENOTDIR)
                ) =>
            {
                return Err(gone())
            }
            Err(e) => return Err(e),
        };
        let dir = dir.as_raw_fd();
        let st = match stat::fstatat(Some(dir), os(name), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Err(gone()),
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
            .apply_mode_to(
                fd.as_fd(),
                EntryKind::File,
                &u.meta,
                XattrStep::Write {
                    set: u.xattrs.as_deref(),
                    stale: true,
                },
                true,
            )
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

/// Most bytes of extended attributes the updates of one batch hold until
/// its commit; an update past it fails, and the client sends that file
/// whole instead (its attributes then go on its staged copy).
const UPDATE_XATTR_BYTES: usize = 1 << 20;

impl Stager {
    /// Stages new metadata for the stored `path`, a `kind` (file or
    /// symlink) of `size` bytes whose content is unchanged: at the commit,
    /// with the batch, the stored entry itself gets `meta` (owner, record,
    /// mode, mtime; see [`Self::apply_update`]). Nothing is written, and
    /// no directory made or touched, before then.
    pub fn update(
        &mut self,
        id: u32,
        path: &WirePath,
        kind: EntryKind,
        meta: Meta,
        size: u64,
    ) -> Result<(), FsError> {
        let xattrs = self.take_xattrs(path);
        if path.is_root() || !matches!(kind, EntryKind::File | EntryKind::Symlink) {
            return Err(FsError::invalid(
                "update",
                self.ns.tree.show(path),
                "only a stored file or symlink is updated in place",
            ));
        }
        let bytes = |x: &Option<Box<Xattrs>>| {
            x.as_ref().map_or(0, |x| {
                x.pairs()
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>()
            })
        };
        let held: usize = self.updates.iter().map(|u| bytes(&u.xattrs)).sum();
        if held.saturating_add(bytes(&xattrs)) > UPDATE_XATTR_BYTES {
            return Err(FsError::other(
                "update",
                self.ns.tree.show(path),
                "too many extended attributes in one batch of updates",
            ));
        }
        self.updates.push(PendingUpdate {
            id,
            path: path.clone(),
            kind,
            meta,
            size,
            xattrs,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::io::store::namespace::Namespace;
    use crate::io::store::stage::tests::{meta, wp, write_all};
    use crate::io::store::StageOptions;
    use crate::proto::{ManifestEntry, Meta};

    /// A stager with the server's options.
    fn server(dir: &std::path::Path) -> Stager {
        let opts = StageOptions {
            record_checksums: true,
            fake_super: true,
            keep_owners: true,
            ..StageOptions::default()
        };
        Stager::new(Namespace::open_dir(dir).unwrap(), opts)
    }

    fn store_file(s: &mut Stager, p: &str, m: Meta, data: &[u8]) {
        let inc = s.begin_file(1, &wp(p), m, data.len() as u64).unwrap();
        write_all(&inc.file, data);
        s.finish_file(crc32c::crc32c(data)).unwrap();
        assert!(s.commit().failures.is_empty());
    }

    fn file_entry(p: &str, m: Meta, size: u64) -> ManifestEntry {
        ManifestEntry {
            kind: EntryKind::File,
            path: wp(p),
            meta: m,
            size,
            target: Vec::new(),
            rdev: 0,
            xattrs: 0,
        }
    }

    fn crc_of(path: &std::path::Path) -> Option<crate::store::record::Recorded> {
        let f = std::fs::File::open(path).unwrap();
        xattr::recorded(f.as_fd()).unwrap()
    }

    /// Issue 10: a chmod of a stored file is applied in place at the
    /// commit: the same inode, content and checksum record, the new mode,
    /// and the next manifest check finds it the same.
    #[test]
    fn an_update_changes_the_stored_file_in_place_at_the_commit() {
        let t = tempfile::tempdir().unwrap();
        let mut s = server(t.path());
        let old = meta(0o644, 1000);
        store_file(&mut s, "d/f", old, b"content");
        let path = t.path().join("d/f");
        let (ino, crc) = (std::fs::metadata(&path).unwrap().ino(), crc_of(&path));
        assert!(crc.is_some());
        let new = Meta { mode: 0o444, ..old };
        let c = s.check(&[file_entry("d/f", new, 7)]);
        assert!(!c.need.get(0) && c.meta.get(0), "metadata only");
        s.update(2, &wp("d/f"), EntryKind::File, new, 7).unwrap();
        assert_eq!(s.pending(), 1);
        // Nothing changes before the commit.
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        let r = s.commit();
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        assert_eq!(r.committed.len(), 1);
        let md = std::fs::metadata(&path).unwrap();
        assert_eq!(md.ino(), ino, "in place");
        assert_eq!(std::fs::read(&path).unwrap(), b"content");
        assert_eq!(crc_of(&path), crc, "the checksum record stays");
        assert_eq!(md.mtime(), 1000);
        let c = s.check(&[file_entry("d/f", new, 7)]);
        assert!(!c.need.get(0) && !c.meta.get(0), "the same now");
        // And back: a record no longer needed goes.
        s.update(3, &wp("d/f"), EntryKind::File, old, 7).unwrap();
        assert!(s.commit().failures.is_empty());
        let c = s.check(&[file_entry("d/f", old, 7)]);
        assert!(!c.need.get(0) && !c.meta.get(0));
    }

    /// The stored entry must be what the update says: another kind, size
    /// or mtime, or none, fails naming the path (and both kinds).
    #[test]
    fn an_update_of_another_kind_size_or_a_missing_entry_fails() {
        let t = tempfile::tempdir().unwrap();
        let mut s = server(t.path());
        let m = meta(0o644, 1000);
        store_file(&mut s, "f", m, b"abc");
        std::os::unix::fs::symlink("f", t.path().join("l")).unwrap();
        s.update(1, &wp("f"), EntryKind::Symlink, m, 3).unwrap();
        s.update(2, &wp("l"), EntryKind::File, m, 1).unwrap();
        s.update(3, &wp("gone"), EntryKind::File, m, 3).unwrap();
        s.update(4, &wp("f"), EntryKind::File, m, 4).unwrap();
        let later = Meta {
            mtime: crate::proto::Time { secs: 5, nanos: 0 },
            ..m
        };
        s.update(5, &wp("f"), EntryKind::File, later, 3).unwrap();
        s.update(6, &wp("no/dir"), EntryKind::File, m, 3).unwrap();
        let r = s.commit();
        let msgs: Vec<(u32, String)> = r
            .failures
            .iter()
            .map(|f| (f.id, f.error.to_string()))
            .collect();
        assert_eq!(msgs.len(), 6, "{msgs:?}");
        assert!(msgs[0]
            .1
            .contains("the stored entry is a regular file, the update is for a symlink"));
        assert!(msgs[0].1.contains('f'));
        assert!(msgs[1]
            .1
            .contains("the stored entry is a symlink, the update is for a regular file"));
        assert!(msgs[2].1.contains("not stored"), "{}", msgs[2].1);
        assert!(msgs[3].1.contains("changed since the manifest"));
        assert!(msgs[4].1.contains("changed since the manifest"));
        assert!(
            msgs[5].1.contains("no/dir") && msgs[5].1.contains("not stored"),
            "{}",
            msgs[5].1
        );
        assert_eq!(std::fs::read(t.path().join("f")).unwrap(), b"abc");
        // Only files and symlinks are updated in place.
        assert!(s.update(7, &wp("d"), EntryKind::Dir, m, 0).is_err());
        assert!(s
            .update(7, &crate::proto::WirePath::root(), EntryKind::File, m, 0)
            .is_err());
    }

    /// A stored file of several names is one inode: an update through one
    /// name changes them all, and the store keeps one inode.
    #[test]
    fn an_update_of_a_hard_linked_file_changes_every_name() {
        let t = tempfile::tempdir().unwrap();
        let mut s = server(t.path());
        let m = meta(0o644, 1000);
        store_file(&mut s, "a/first", m, b"shared");
        s.link(2, &wp("b/second"), &wp("a/first"), m, 6).unwrap();
        assert!(s.commit().failures.is_empty());
        let new = Meta { mode: 0o600, ..m };
        s.update(3, &wp("b/second"), EntryKind::File, new, 6)
            .unwrap();
        assert!(s.commit().failures.is_empty());
        let (a, b) = (
            std::fs::metadata(t.path().join("a/first")).unwrap(),
            std::fs::metadata(t.path().join("b/second")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino());
        assert_eq!(a.nlink(), 2);
        let c = s.check(&[file_entry("a/first", new, 6)]);
        assert!(!c.need.get(0) && !c.meta.get(0));
    }

    /// A symlink's update gives it its mtime (and owner, as root) by
    /// name, never following it.
    #[test]
    fn an_update_of_a_symlink_sets_its_mtime_without_following_it() {
        let t = tempfile::tempdir().unwrap();
        let mut s = server(t.path());
        let m = meta(0o644, 1000);
        store_file(&mut s, "f", m, b"abc");
        std::os::unix::fs::symlink("f", t.path().join("l")).unwrap();
        let lm = meta(0o777, 4242);
        s.update(1, &wp("l"), EntryKind::Symlink, lm, 1).unwrap();
        let r = s.commit();
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        let l = std::fs::symlink_metadata(t.path().join("l")).unwrap();
        assert_eq!(l.mtime(), 4242);
        assert_eq!(std::fs::metadata(t.path().join("f")).unwrap().mtime(), 1000);
    }
}
