//! How a staged entry gets its metadata: owner (given, recorded or kept),
//! then its extended attributes (after `chown`, which clears a file
//! capability; before `chmod`, since a mode without owner write makes
//! `user.*` attributes unwritable for a restorer that is not root), then
//! the mode on disk and the `user.rsb.meta` record
//! ([`StageOptions::apply_mode`]). Part of [`super`], split off for
//! length; it writes only through the descriptor it is given.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{self, UtimensatFlags};
use nix::unistd;

use super::super::beneath::os;
use super::super::xattr::{self, XattrPlace};
use super::made::Made;
use super::{is_root, omit, set_disk_mode, timespec, StageOptions, Stager};
use crate::proto::owners::UNKNOWN_ID;
use crate::proto::xattrs::Xattrs;
use crate::proto::{EntryKind, Meta};
use crate::store::modes;
use crate::store::record::MetaRecord;

/// What applying an entry's metadata had to leave out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(in crate::io::store) struct Applied {
    /// A set-user-ID or set-group-ID bit was cleared.
    pub(in crate::io::store) setid_cleared: bool,
    /// The owner could not be given ([`StageOptions::set_owners`]).
    pub(in crate::io::store) owner_kept: bool,
    /// Extended attributes a restore could not set or remove.
    pub(in crate::io::store) xattrs_refused: u32,
}

/// What becomes of an entry's extended attributes as its metadata is
/// applied.
#[derive(Debug, Clone, Copy)]
pub(in crate::io::store) enum XattrStep<'a> {
    /// Already on it (a directory gets them when it is made): only their
    /// digest goes into the record.
    Written(u64),
    /// To be given exactly `set`; `stale`: it may hold others to remove.
    Write {
        /// The attributes, `None` for none.
        set: Option<&'a Xattrs>,
        /// Whether it existed before (a partial, a directory).
        stale: bool,
    },
}

impl XattrStep<'_> {
    /// Nothing to write and nothing recorded: a fresh entry without any.
    pub(in crate::io::store) const NONE: XattrStep<'static> = XattrStep::Written(0);

    fn digest(&self) -> u64 {
        match self {
            XattrStep::Written(d) => *d,
            XattrStep::Write { set, .. } => set.map_or(0, Xattrs::digest),
        }
    }
}

/// `fchown` of the open `fd`, or `fchownat(AT_SYMLINK_NOFOLLOW)` of `name`
/// in it when `name` is given (a link); [`UNKNOWN_ID`] leaves an id as it
/// is.
pub(in crate::io::store) fn chown(
    fd: RawFd,
    name: Option<&[u8]>,
    uid: u32,
    gid: u32,
) -> Result<(), Errno> {
    let id = |v: u32| (v != UNKNOWN_ID).then_some(v);
    let (uid, gid) = (
        id(uid).map(unistd::Uid::from_raw),
        id(gid).map(unistd::Gid::from_raw),
    );
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    match name {
        None => unistd::fchown(fd, uid, gid),
        Some(n) => unistd::fchownat(Some(fd), os(n), uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW),
    }
}

/// [`chown`] for a restore: `Ok(false)` when refused (the group alone is
/// then tried, a group the restorer is in being its to give).
pub(in crate::io::store) fn chown_if_allowed(
    fd: RawFd,
    name: Option<&[u8]>,
    uid: u32,
    gid: u32,
) -> Result<bool, Errno> {
    match chown(fd, name, uid, gid) {
        Ok(()) => Ok(true),
        Err(Errno::EPERM) => {
            let _ = chown(fd, name, UNKNOWN_ID, gid);
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

impl StageOptions {
    /// Gives the open file or directory `fd` its real mode `mode`, or with
    /// [`StageOptions::fake_super`] the mode [`modes::on_disk`] says, the
    /// real one then going into its metadata record (set before the mode,
    /// which may deny the owner writing; a stale one removed). True when
    /// [`StageOptions::clear_setid`] took a set-id bit away. The error
    /// names the failed operation.
    ///
    /// The owner first, since `chown` clears set-id bits: with
    /// [`StageOptions::keep_owners`] a root server gives the entry its
    /// owner, one that is not root records it where it differs from the
    /// entry's on disk (and sets [`modes::RECORDED`]; the names go into
    /// the namespace's table at the commit, not here); with
    /// [`StageOptions::set_owners`] a restore gives what it may.
    pub(in crate::io::store) fn apply_mode(
        &self,
        fd: BorrowedFd<'_>,
        kind: EntryKind,
        meta: &Meta,
        xattrs: XattrStep<'_>,
    ) -> Result<Applied, (&'static str, Errno)> {
        self.apply(fd, (kind, meta), xattrs, kind == EntryKind::Dir, None)
    }

    /// [`Self::apply_mode`] of a fresh file that was `made` with a known
    /// mode and owner (see [`super::made`]): a `chown` or `chmod` that
    /// would change nothing is left out.
    pub(in crate::io::store) fn apply_mode_made(
        &self,
        fd: BorrowedFd<'_>,
        meta: &Meta,
        xattrs: XattrStep<'_>,
        made: Option<Made>,
    ) -> Result<Applied, (&'static str, Errno)> {
        self.apply(fd, (EntryKind::File, meta), xattrs, false, made)
    }

    /// [`Self::apply_mode`] of an entry that may have a record already
    /// (`existing`: a stored directory, or a stored file updated in
    /// place): a record no longer needed is removed, not left stale.
    pub(in crate::io::store) fn apply_mode_to(
        &self,
        fd: BorrowedFd<'_>,
        kind: EntryKind,
        meta: &Meta,
        xattrs: XattrStep<'_>,
        existing: bool,
    ) -> Result<Applied, (&'static str, Errno)> {
        self.apply(fd, (kind, meta), xattrs, existing, None)
    }

    fn apply(
        &self,
        fd: BorrowedFd<'_>,
        (kind, meta): (EntryKind, &Meta),
        xattrs: XattrStep<'_>,
        existing: bool,
        made: Option<Made>,
    ) -> Result<Applied, (&'static str, Errno)> {
        let mut real = meta.mode & 0o7777;
        let mut applied = Applied::default();
        // What the file was made with already needs no call.
        let owned = made.is_some_and(|m| m.owns(meta));
        let chmod = |fd, mode| match made {
            Some(m) if m.has_mode(mode) => Ok(()),
            _ => set_disk_mode(fd, mode),
        };
        if self.set_owners && !owned {
            applied.owner_kept = !chown_if_allowed(fd.as_raw_fd(), None, meta.uid, meta.gid)
                .map_err(|e| ("chown", e))?;
        }
        if let XattrStep::Write { set, stale } = xattrs {
            let place = if self.fake_super {
                XattrPlace::Stored
            } else {
                XattrPlace::Native
            };
            applied.xattrs_refused = xattr::apply_xattrs(fd, set, place, stale)?;
        }
        if self.clear_setid || applied.owner_kept {
            (real, applied.setid_cleared) = modes::without_owner(real);
        }
        let disk = if self.fake_super {
            let mut record = MetaRecord {
                xattrs: xattrs.digest(),
                ..MetaRecord::mode(real)
            };
            if self.keep_owners {
                if is_root() {
                    if !owned {
                        chown(fd.as_raw_fd(), None, meta.uid, meta.gid)
                            .map_err(|e| ("chown", e))?;
                    }
                } else {
                    let (uid, gid) = match made {
                        Some(m) => (m.uid, m.gid),
                        None => {
                            let st = stat::fstat(fd.as_raw_fd()).map_err(|e| ("stat", e))?;
                            (st.st_uid, st.st_gid)
                        }
                    };
                    let differs = |v: u32, disk: u32| (v != UNKNOWN_ID && v != disk).then_some(v);
                    record.uid = differs(meta.uid, uid);
                    record.gid = differs(meta.gid, gid);
                }
            }
            let mut disk = modes::on_disk(real, kind, is_root());
            // The sticky bit says where a reader must look for the record:
            // an owner on disk that is not the real one, or attributes.
            let owner_recorded = record.uid.is_some() || record.gid.is_some();
            let marked = owner_recorded || record.xattrs != 0;
            let needed = disk != real || marked;
            if marked {
                disk |= modes::RECORDED;
            }
            // A fresh file has no record to remove.
            if needed || existing {
                match xattr::set_meta(fd, needed.then_some(record)) {
                    Ok(true) => {}
                    // Without user xattrs the real mode cannot be kept
                    // apart: the entry gets it on disk.
                    Ok(false) => return chmod(fd, real).map(|()| applied),
                    Err(e) => return Err(("setxattr", e)),
                }
            }
            disk
        } else {
            real
        };
        chmod(fd, disk).map(|()| applied)
    }
}

impl Stager {
    /// Gives `name` in `parent` (a link or a special, never opened) the
    /// owner of `meta` where this stager gives owners by name (a restore:
    /// what it may; a root server), and its mtime. The error names the
    /// failed operation.
    pub(in crate::io::store) fn stamp_by_name(
        &self,
        parent: RawFd,
        name: &[u8],
        meta: &Meta,
    ) -> Result<(), (&'static str, Errno)> {
        if self.opts.set_owners {
            let ok = chown_if_allowed(parent, Some(name), meta.uid, meta.gid)
                .map_err(|e| ("chown", e))?;
            self.count(Applied {
                owner_kept: !ok,
                ..Applied::default()
            });
        } else if self.opts.keep_owners && self.opts.fake_super && is_root() {
            chown(parent, Some(name), meta.uid, meta.gid).map_err(|e| ("chown", e))?;
        }
        Self::mtime_by_name(parent, name, meta)
    }

    /// Gives `name` in `parent` the mtime of `meta`, no link followed.
    pub(in crate::io::store) fn mtime_by_name(
        parent: RawFd,
        name: &[u8],
        meta: &Meta,
    ) -> Result<(), (&'static str, Errno)> {
        stat::utimensat(
            Some(parent),
            os(name),
            &omit(),
            &timespec(meta),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| ("utimes", e))
    }
}
