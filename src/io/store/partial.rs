//! Partials on disk: the bodies of large files kept from interrupted
//! transfers, found by name ([`crate::store::names::partial_name`]) in the
//! file's directory. How much of one counts and which files get one are
//! [`crate::store::resume`]'s rules; this file does the system calls:
//! measuring a partial, reopening it to continue, removing the partials of
//! older versions.
//!
//! A partial is written by one connection at a time: the one holding an
//! exclusive `flock` on it ([`claim`]), taken before anything is written
//! and held until the body is complete (then it is renamed to a name of
//! its own, see [`super::Stager::finish_file`]) or abandoned. Another
//! connection (or another server process on the same root) that finds it
//! locked stages its copy under a fresh name instead, and never removes,
//! truncates or resumes a locked partial: two backups of one file at once
//! each commit their own whole copy.
//!
//! Must not decide whether a stager keeps partials: [`super::Stager`]
//! asks here only when its options say so.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, Mode};
use nix::unistd::{self, UnlinkatFlags};

use super::beneath::{entries_at, os, Beneath};
use crate::io::error::FsError;
use crate::io::kind_of;
use crate::proto::path::is_tmp_name;
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
    let kept = resume::kept(kind_of(&st) == Some(EntryKind::File), st.st_size, size)?;
    // A partial another connection is writing is not there to resume.
    let tmp = names::partial_name(name, size, meta);
    match open_locked(parent.as_raw_fd(), &tmp, OFlag::O_RDONLY) {
        Ok(Some(_)) => Some(kept),
        _ => None,
    }
}

/// Whether the open `fd` is still the file named `name` in `dir`.
fn names_it(dir: RawFd, name: &[u8], fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    let held = stat::fstat(fd.as_raw_fd())?;
    match stat::fstatat(Some(dir), os(name), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(st.st_dev == held.st_dev && st.st_ino == held.st_ino),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Opens `name` in `dir` with `flags` and takes an exclusive lock on it
/// without waiting: `Ok(None)` when another holder has it locked. The
/// lock is taken on what was opened and then checked to be still what the
/// name holds (its holder may have renamed or removed it meanwhile), a few
/// times at most.
fn open_locked(dir: RawFd, name: &[u8], flags: OFlag) -> Result<Option<OwnedFd>, Errno> {
    for _ in 0..4 {
        let fd = fcntl::openat(
            Some(dir),
            os(name),
            flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK,
            Mode::from_bits_truncate(0o600),
        )?;
        // SAFETY: fd was just returned by openat and is owned by nobody else.
        let file = unsafe { OwnedFd::from_raw_fd(fd) };
        if kind_of(&stat::fstat(file.as_raw_fd())?) != Some(EntryKind::File) {
            // Put there by other means: not a partial of ours.
            return Err(Errno::EINVAL);
        }
        // SAFETY: flock on a descriptor we own; no pointers involved.
        let rc =
            unsafe { nix::libc::flock(file.as_raw_fd(), nix::libc::LOCK_EX | nix::libc::LOCK_NB) };
        if rc != 0 {
            return match Errno::last() {
                Errno::EWOULDBLOCK => Ok(None),
                e => Err(e),
            };
        }
        if names_it(dir, name, file.as_fd())? {
            return Ok(Some(file));
        }
        // Renamed or removed between our open and our lock: look again.
    }
    Err(Errno::EAGAIN)
}

/// What [`claim`] found.
pub enum Claim {
    /// The partial, open for writing and locked by us until the
    /// descriptor closes.
    Ours(OwnedFd),
    /// Another connection is writing it.
    Busy,
}

/// Opens the partial `tmp` in `parent` for writing and locks it, creating
/// it if `create`. Nothing is cut or written here.
pub fn claim(parent: RawFd, tmp: &[u8], create: bool) -> Result<Claim, Errno> {
    let flags = if create {
        OFlag::O_RDWR | OFlag::O_CREAT
    } else {
        OFlag::O_RDWR
    };
    Ok(match open_locked(parent, tmp, flags)? {
        Some(fd) => Claim::Ours(fd),
        None => Claim::Busy,
    })
}

/// Moves our locked partial `tmp` (open as `fd`) in `dir` to the name
/// `to`, checking first that the name still holds the file we wrote.
pub fn hand_over(dir: RawFd, tmp: &[u8], fd: BorrowedFd<'_>, to: &[u8]) -> Result<(), Errno> {
    if !names_it(dir, tmp, fd)? {
        return Err(Errno::ESTALE);
    }
    fcntl::renameat(Some(dir), os(tmp), Some(dir), os(to))
}

/// Reopens the partial `tmp` in `parent` to continue at `offset`, locked
/// (see [`claim`]): bytes past it are cut. A partial shorter than
/// `offset` is as good as none; one another connection is writing cannot
/// be resumed (`EBUSY`).
pub fn reopen(parent: RawFd, tmp: &[u8], offset: u64, shown: &str) -> Result<OwnedFd, FsError> {
    let fail = |e| FsError::errno("resume", shown.to_string(), e);
    let file = match claim(parent, tmp, false).map_err(fail)? {
        Claim::Ours(fd) => fd,
        Claim::Busy => return Err(fail(Errno::EBUSY)),
    };
    let st = stat::fstat(file.as_raw_fd()).map_err(fail)?;
    if u64::try_from(st.st_size).unwrap_or(0) < offset {
        return Err(fail(Errno::ENOENT));
    }
    let off = i64::try_from(offset).map_err(|_| fail(Errno::EFBIG))?;
    unistd::ftruncate(&file, off).map_err(fail)?;
    Ok(file)
}

/// Removes the partials of the other versions of file `name` in `dir`
/// (all but `ours`), except those another connection is writing.
pub fn remove_others(dir: RawFd, name: &[u8], ours: &[u8]) {
    let prefix = names::partials_prefix(name);
    for (n, _) in entries_at(dir).unwrap_or_default() {
        if n.starts_with(&prefix) && n != ours {
            remove_unlocked(dir, &n);
        }
    }
}

/// Removes the partial `name` in `dir` unless another connection holds
/// it; true if it was removed.
pub fn remove_unlocked(dir: RawFd, name: &[u8]) -> bool {
    // The lock is held across the unlink: whoever locks it next finds the
    // name gone and does not write into the removed file.
    match open_locked(dir, name, OFlag::O_RDONLY) {
        Ok(Some(_held)) => {
            unistd::unlinkat(Some(dir), os(name), UnlinkatFlags::NoRemoveDir).is_ok()
        }
        _ => false,
    }
}

/// Removes `name` in `dir` if it is a partial that expired (see
/// [`resume::expired`]) and that nobody holds; true if it was removed.
/// The sweep calls this for every hidden name it meets.
pub fn remove_if_expired(dir: RawFd, name: &[u8]) -> bool {
    if !name.starts_with(names::PART_PREFIX) {
        return false;
    }
    let Ok(st) = stat::fstatat(Some(dir), os(name), AtFlags::AT_SYMLINK_NOFOLLOW) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    kind_of(&st) == Some(EntryKind::File)
        && resume::expired(st.st_mtime, now)
        && remove_unlocked(dir, name)
}

/// Directories [`reclaim`] visits at most.
const RECLAIM_DIRS: usize = 1_000_000;
/// How long one [`reclaim`] walks at most: it runs on the server's loop,
/// which serves nobody else meanwhile.
const RECLAIM_TIME: std::time::Duration = std::time::Duration::from_millis(100);
/// After a walk that freed nothing, no other walk starts for this long, in
/// any namespace of the process (every connection to a full disk would
/// walk again otherwise; a namespace with partials waits that long too).
const RECLAIM_QUIET: std::time::Duration = std::time::Duration::from_secs(60);
/// When the last walk that freed nothing ended.
static FRUITLESS: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

/// Frees at least `need` bytes, if it can, by removing the partials under
/// `tree` that nobody holds, least recently written first (a full disk
/// gives up kept parts of interrupted transfers before it fails a
/// backup). Returns the bytes freed.
/// A walk takes at most [`RECLAIM_TIME`], and none starts within
/// [`RECLAIM_QUIET`] of one that freed nothing.
pub fn reclaim(tree: &Beneath, need: u64) -> u64 {
    let started = std::time::Instant::now();
    let quiet = FRUITLESS
        .lock()
        .ok()
        .and_then(|t| *t)
        .is_some_and(|t| started.saturating_duration_since(t) < RECLAIM_QUIET);
    if quiet {
        return 0;
    }
    let freed = walk_and_reclaim(tree, need, started);
    if let Ok(mut t) = FRUITLESS.lock() {
        *t = (freed == 0).then(std::time::Instant::now);
    }
    freed
}

fn walk_and_reclaim(tree: &Beneath, need: u64, started: std::time::Instant) -> u64 {
    let mut found: Vec<(i64, WirePath, Vec<u8>, u64)> = Vec::new();
    let mut todo = vec![WirePath::root()];
    let mut visited = 0;
    while let Some(dir) = todo.pop() {
        visited += 1;
        if visited > RECLAIM_DIRS || started.elapsed() > RECLAIM_TIME {
            break;
        }
        let Ok(fd) = tree.dir(&dir) else { continue };
        for (name, kind) in entries_at(fd.as_raw_fd()).unwrap_or_default() {
            if name.starts_with(names::PART_PREFIX) {
                if let Ok(st) = stat::fstatat(
                    Some(fd.as_raw_fd()),
                    os(&name),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                ) {
                    let size = u64::try_from(st.st_blocks).unwrap_or(0) * 512;
                    found.push((st.st_mtime, dir.clone(), name, size));
                }
            } else if kind == Some(nix::dir::Type::Directory) && !is_tmp_name(&name) {
                if let Ok(sub) = dir.join(&name) {
                    todo.push(sub);
                }
            }
        }
    }
    found.sort_by_key(|(mtime, ..)| *mtime);
    let mut freed = 0;
    for (_, dir, name, size) in found {
        if freed >= need {
            break;
        }
        if let Ok(fd) = tree.dir(&dir) {
            if remove_unlocked(fd.as_raw_fd(), &name) {
                freed += size;
            }
        }
    }
    freed
}

#[cfg(test)]
mod tests {
    use super::super::stage::tests::{meta, wp, write_all};
    use super::super::{Namespace, StageOptions, Stager};
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    /// Issue 9 item 1: two connections receiving the same version of a
    /// large file shared one partial; the second truncated or removed the
    /// first one's, and the first commit renamed whatever was there.
    #[test]
    fn a_partial_being_written_is_never_touched_by_another_stager() {
        let t = tempfile::tempdir().unwrap();
        let size = resume::RESUME_MIN;
        let keep = StageOptions {
            keep_partials: true,
            ..StageOptions::default()
        };
        let m = meta(0o644, 5);
        let a_body = vec![b'a'; size as usize];
        let b_body = vec![b'b'; size as usize];
        let mut a = Stager::new(Namespace::open_dir(t.path()).unwrap(), keep);
        let mut b = Stager::new(Namespace::open_dir(t.path()).unwrap(), keep);
        // An older version's partial that nobody holds goes; the one being
        // written stays.
        let mut c = Stager::new(Namespace::open_dir(t.path()).unwrap(), keep);
        let old = c.begin_file(9, &wp("big"), meta(0o644, 4), size).unwrap();
        write_all(&old.file, &a_body[..10]);
        drop(c);
        let inc = a.begin_file(1, &wp("big"), m, size).unwrap();
        write_all(&inc.file, &a_body[..(size / 2) as usize]);
        let partials = || {
            std::fs::read_dir(t.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.starts_with(".rsb-tmp.part."))
                .collect::<Vec<_>>()
        };
        assert_eq!(partials().len(), 1, "{:?}", partials());
        // Another stager sees no partial to resume while it is written,
        // cannot resume it, and stages its own copy under another name.
        assert_eq!(b.partial_len(&wp("big"), size, &m), None);
        let e = b
            .resume_file(2, &wp("big"), m, size, size / 2)
            .err()
            .unwrap();
        assert_eq!(e.raw_os_error(), Some(nix::libc::EBUSY));
        let inc = b.begin_file(2, &wp("big"), m, size).unwrap();
        write_all(&inc.file, &b_body);
        assert_eq!(partials().len(), 1);
        let held = &partials()[0];
        assert_eq!(
            std::fs::metadata(t.path().join(held)).unwrap().len(),
            size / 2,
            "the other stager changed the partial being written"
        );
        b.finish_file(crc32c::crc32c(&b_body)).unwrap();
        let inc = a.incoming().unwrap();
        write_all(&inc.file, &a_body[(size / 2) as usize..]);
        a.finish_file(crc32c::crc32c(&a_body)).unwrap();
        // Both commit their own whole copy; the last commit wins.
        assert!(b.commit().failures.is_empty());
        assert_eq!(std::fs::read(t.path().join("big")).unwrap(), b_body);
        assert!(a.commit().failures.is_empty());
        assert_eq!(std::fs::read(t.path().join("big")).unwrap(), a_body);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
        // A file at a staged name that is not the one staged is never
        // renamed into place.
        let mut d = Stager::new(Namespace::open_dir(t.path()).unwrap(), keep);
        let inc = d.begin_file(3, &wp("big"), meta(0o644, 6), size).unwrap();
        write_all(&inc.file, &b_body);
        d.finish_file(0).unwrap();
        let staged = t.path().join(std::ffi::OsStr::from_bytes(&d.staged[0].tmp));
        std::fs::write(t.path().join("intruder"), b"intruder").unwrap();
        std::fs::rename(t.path().join("intruder"), &staged).unwrap();
        let r = d.commit();
        assert_eq!(r.failures.len(), 1);
        assert_eq!(std::fs::read(t.path().join("big")).unwrap(), a_body);
    }
}
