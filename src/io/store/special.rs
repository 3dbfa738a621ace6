//! FIFOs, sockets and device nodes in a stored tree. Made with `mknodat`
//! wherever the process may (any process for a FIFO or socket, root for a
//! device); a device a server not running as root cannot make is kept as a
//! *metadata-only stand-in*: an empty regular file with the sticky bit of
//! [`modes::RECORDED`] and a metadata record (`user.rsb.meta`, see
//! [`crate::store::record`]) that names its kind and device number
//! (`v1 mode=0660 kind=blk rdev=8:1`). Every reader asks [`resolve`] (or
//! [`Namespace::stored_kind`]) what a stored entry is, so listings,
//! restores, verify and the manifest check treat a stand-in as the device
//! it stands for, never as a file.
//!
//! Must not decide where or when entries are staged ([`super::Stager`]
//! does); only makes the inode under the name it is given.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::{self, FchmodatFlags, FileStat, Mode};
use nix::unistd::{self, UnlinkatFlags};

use super::beneath::os;
use super::namespace::Namespace;
use super::xattr;
use crate::io::{kind_of, rdev_of, sflag_of};
use crate::proto::owners::UNKNOWN_ID;
use crate::proto::{EntryKind, WirePath};
use crate::store::modes;
use crate::store::record::MetaRecord;

/// What a stored entry really is, which `lstat` described as `st`, and
/// its metadata record if that had to be read to say so or is known
/// (`Some(None)`: there is none; a real FIFO, socket or device never has
/// one, and is never looked into, since even reading an attribute by
/// name may open it where there is no `/proc`). An empty regular file with the sticky bit of
/// [`modes::RECORDED`] whose record names a special kind is the
/// metadata-only stand-in of that special: its kind and device number are
/// the record's. `record` reads the record by name; it is asked only for
/// such an empty file.
pub(super) fn resolve(
    st: &FileStat,
    record: impl FnOnce() -> Option<MetaRecord>,
) -> (Option<EntryKind>, u64, Option<Option<MetaRecord>>) {
    let kind = kind_of(st);
    if kind == Some(EntryKind::File) && st.st_size == 0 && modes::may_have_record(st.st_mode) {
        let rec = record();
        if let Some((k, rdev)) = rec.as_ref().and_then(|r| r.special) {
            return (Some(k), rdev, Some(rec));
        }
        return (kind, 0, Some(rec));
    }
    if kind.is_some_and(|k| k.is_special()) {
        return (kind, rdev_of(st), Some(None));
    }
    (kind, rdev_of(st), None)
}

impl Namespace {
    /// What the stored entry at `path` really is, which `lstat` just
    /// described as `st`, and its device number: a metadata-only stand-in
    /// is the special it stands for (see [`resolve`]).
    pub fn stored_kind(&self, path: &WirePath, st: &FileStat) -> (Option<EntryKind>, u64) {
        let (kind, rdev, _) = resolve(st, || {
            self.tree
                .parent(path)
                .ok()
                .and_then(|(dir, name)| xattr::meta_at(dir.as_raw_fd(), name))
        });
        (kind, rdev)
    }
}

/// Why a special could not be made under its temporary name.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum MakeError {
    /// A device, and this process may not make one (not root).
    NeedsRoot,
    /// A stand-in was needed, and the file system keeps no user extended
    /// attributes to hold its record.
    NoXattrs,
    /// The system call that failed, and why.
    Sys(&'static str, Errno),
}

/// The message a user reads for a device that needs root to be made.
pub const NEEDS_ROOT: &str = "cannot create device node (needs root)";

impl std::fmt::Display for MakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MakeError::NeedsRoot => f.write_str(NEEDS_ROOT),
            MakeError::NoXattrs => f.write_str(
                "cannot keep a device node: the file system has no user extended attributes",
            ),
            MakeError::Sys(_, e) => f.write_str(e.desc()),
        }
    }
}

/// What a device's stand-in records beside its kind and number.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct StandIn {
    /// The real owner and group, when the store keeps owners.
    pub(super) owner: Option<(u32, u32)>,
}

/// Makes the special `kind` (device number `rdev`) as `tmp` in `dir`,
/// with permission bits `mode`; a device that needs root becomes a
/// stand-in when `stand_in` is given (a store that keeps records; the
/// stand-in's record takes its owner), else fails with
/// [`MakeError::NeedsRoot`]. `fsync`: the stand-in's record is made
/// durable through its own descriptor (the fsync mode of commits). True
/// when a stand-in was made.
pub(super) fn make(
    dir: RawFd,
    tmp: &[u8],
    kind: EntryKind,
    rdev: u64,
    mode: u32,
    stand_in: Option<StandIn>,
    fsync: bool,
) -> Result<bool, MakeError> {
    let sflag = sflag_of(kind).ok_or(MakeError::Sys("mknod", Errno::EINVAL))?;
    let rdev = if kind.is_device() { rdev } else { 0 };
    match stat::mknodat(
        Some(dir),
        os(tmp),
        sflag,
        Mode::from_bits_truncate(0o600),
        rdev,
    ) {
        Ok(()) => {}
        Err(Errno::EPERM) if kind.is_device() && stand_in.is_some() => {
            let owner = stand_in.and_then(|s| s.owner);
            return make_stand_in(dir, tmp, kind, rdev, mode, owner, fsync).map(|()| true);
        }
        Err(Errno::EPERM) if kind.is_device() => return Err(MakeError::NeedsRoot),
        Err(e) => return Err(MakeError::Sys("mknod", e)),
    }
    // By name: opening a FIFO would wait for a writer, a device would
    // reach the driver. The name is this process's fresh one.
    if let Err(e) = stat::fchmodat(
        Some(dir),
        os(tmp),
        Mode::from_bits_truncate(mode & 0o7777),
        FchmodatFlags::FollowSymlink,
    ) {
        let _ = unistd::unlinkat(Some(dir), os(tmp), UnlinkatFlags::NoRemoveDir);
        return Err(MakeError::Sys("chmod", e));
    }
    Ok(false)
}

/// The metadata-only stand-in of a device: an empty file, its record set
/// before its mode (which may deny the owner writing). `owner`: the real
/// owner and group, recorded where they are not this process's own (the
/// stand-in's on disk).
fn make_stand_in(
    dir: RawFd,
    tmp: &[u8],
    kind: EntryKind,
    rdev: u64,
    mode: u32,
    owner: Option<(u32, u32)>,
    fsync: bool,
) -> Result<(), MakeError> {
    let fd = fcntl::openat(
        Some(dir),
        os(tmp),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| MakeError::Sys("create", e))?;
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let fail = |e: MakeError| {
        let _ = unistd::unlinkat(Some(dir), os(tmp), UnlinkatFlags::NoRemoveDir);
        e
    };
    let real = mode & 0o7777;
    let differs = |v: u32, own: u32| (v != UNKNOWN_ID && v != own).then_some(v);
    let record = MetaRecord {
        mode: real,
        special: Some((kind, rdev)),
        uid: owner.and_then(|(u, _)| differs(u, unistd::geteuid().as_raw())),
        gid: owner.and_then(|(_, g)| differs(g, unistd::getegid().as_raw())),
        ..Default::default()
    };
    match xattr::set_meta(fd.as_fd(), Some(record)) {
        Ok(true) => {}
        Ok(false) => return Err(fail(MakeError::NoXattrs)),
        Err(e) => return Err(fail(MakeError::Sys("setxattr", e))),
    }
    let disk = modes::on_disk(real, EntryKind::File, false) | modes::RECORDED;
    stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(disk))
        .map_err(|e| fail(MakeError::Sys("chmod", e)))?;
    if fsync {
        unistd::fsync(fd.as_raw_fd()).map_err(|e| fail(MakeError::Sys("fsync", e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    fn dir(t: &tempfile::TempDir) -> std::fs::File {
        std::fs::File::open(t.path()).unwrap()
    }

    #[test]
    fn fifos_and_sockets_are_made_by_anyone_with_their_mode() {
        let t = tempfile::tempdir().unwrap();
        let d = dir(&t);
        for (name, kind) in [("p", EntryKind::Fifo), ("s", EntryKind::Socket)] {
            let made = make(
                d.as_raw_fd(),
                name.as_bytes(),
                kind,
                0,
                0o4751,
                Some(StandIn::default()),
                false,
            );
            assert_eq!(made, Ok(false));
            let md = std::fs::symlink_metadata(t.path().join(name)).unwrap();
            assert_eq!(md.mode() & 0o7777, 0o4751);
            let ft = md.file_type();
            assert!(ft.is_fifo() || ft.is_socket());
        }
    }

    #[test]
    fn a_device_is_a_node_as_root_and_a_stand_in_or_a_refusal_otherwise() {
        let t = tempfile::tempdir().unwrap();
        let d = dir(&t);
        let rdev = crate::proto::make_dev(1, 3);
        let root = unistd::geteuid().is_root();
        let made = make(
            d.as_raw_fd(),
            b"c",
            EntryKind::CharDev,
            rdev,
            0o640,
            Some(StandIn::default()),
            false,
        );
        let st = stat::lstat(&t.path().join("c")).unwrap();
        let (kind, got, rec) = resolve(&st, || xattr::meta_at(d.as_raw_fd(), b"c"));
        assert_eq!((kind, got), (Some(EntryKind::CharDev), rdev));
        if root {
            assert_eq!(made, Ok(false));
            // A real node is never looked into.
            assert_eq!(rec, Some(None));
            assert_eq!(st.st_mode & 0o7777, 0o640);
        } else {
            match made {
                Ok(true) => {
                    assert_eq!(st.st_size, 0);
                    assert_eq!(st.st_mode & 0o7777, 0o1640);
                }
                // No user xattrs where the test runs.
                Err(MakeError::NoXattrs) => return,
                other => panic!("{other:?}"),
            }
            let refused = make(
                d.as_raw_fd(),
                b"b",
                EntryKind::BlockDev,
                7,
                0o600,
                None,
                false,
            );
            assert_eq!(refused, Err(MakeError::NeedsRoot));
            assert_eq!(
                MakeError::NeedsRoot.to_string(),
                "cannot create device node (needs root)"
            );
        }
    }

    #[test]
    fn an_empty_recorded_file_without_a_kind_stays_a_file() {
        let t = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(t.path().join("f")).unwrap();
        stat::fchmod(f.as_raw_fd(), Mode::from_bits_truncate(0o1644)).unwrap();
        let st = stat::fstat(f.as_raw_fd()).unwrap();
        let plain = MetaRecord {
            mode: 0o444,
            special: None,
            ..Default::default()
        };
        let (kind, rdev, rec) = resolve(&st, || Some(plain.clone()));
        assert_eq!(
            (kind, rdev, rec),
            (Some(EntryKind::File), 0, Some(Some(plain)))
        );
        // Without the sticky bit the record is never read.
        stat::fchmod(f.as_raw_fd(), Mode::from_bits_truncate(0o644)).unwrap();
        let st = stat::fstat(f.as_raw_fd()).unwrap();
        let (kind, _, rec) = resolve(&st, || panic!("read"));
        assert_eq!((kind, rec), (Some(EntryKind::File), None));
    }
}
