//! The commit of a staged batch: `syncfs` (the staged data is durable),
//! rename each new directory in (`publish.rs`: built whole under a
//! temporary name, its entries at their final names inside) and every
//! other staged file and link over its final name, remove what
//! they displaced, apply directory modes and times deepest first, `syncfs`
//! again. Returns a [`CommitReport`]: what is now in place (enough for a
//! history or a sync group to learn what changed) and every failure, each
//! with the errno the kernel gave (a full disk says "No space left on
//! device" for each file it failed).
//!
//! A type change never shows a half-made entry, even after a kill -9: a
//! directory that replaces a file or link is built under a temporary name
//! beside it (its entries staged inside), and a file or link that replaces
//! a directory is staged as any other; at the commit the two are swapped
//! in one `renameat2(RENAME_EXCHANGE)`, after the entries inside the new
//! directory are in place, and the old entry, now under the temporary
//! name, is removed. So the real name holds the complete old or the
//! complete new version at every instant, and what a crash leaves under a
//! temporary name is never the only copy: the sweep of the next run (the
//! server's at start, the client's in a restore destination) removes it.
//! No marker or journal is needed, since there is nothing to put back.
//! Where the file system lacks `RENAME_EXCHANGE` (some FUSE and network
//! file systems) the old entry is renamed aside as `.rsb-tmp.old.*` just
//! before the new one goes in; a crash between those two renames leaves it
//! there, hidden and never swept.
//!
//! Must not stage anything: entries come from [`Stager`]'s staging calls.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, Mode};
use nix::unistd::{self, UnlinkatFlags};

use super::beneath::os;
use super::durable::count_fsync;
use super::stage::{omit, remove_tree, timespec, Applied, StageOptions, Staged, Stager, XattrStep};
use super::{history, tmp, xattr};
use crate::io::error::FsError;
use crate::proto::{EntryKind, Meta, WirePath};
use crate::store::record::Recorded;

mod delete;
mod keep;
mod link;
mod publish;
mod update;
use keep::{put_dir, put_entry};

/// An entry a commit put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Request id of the entry (0: a directory).
    pub id: u32,
    /// Its path beneath the tree.
    pub path: WirePath,
    /// File, directory or link.
    pub kind: EntryKind,
    /// The mode and mtime it was given.
    pub meta: Meta,
    /// A file's size, a link's target length; 0 for a directory.
    pub size: u64,
}

impl Committed {
    /// The staged file or link `s`, now in place.
    fn of(s: Staged) -> Committed {
        Committed {
            id: s.id,
            path: s.path,
            kind: s.kind,
            meta: s.meta,
            size: s.size,
        }
    }
}

/// One failure of a commit: which entry, and why.
#[derive(Debug)]
pub struct CommitFailure {
    /// Request id of the entry (0: a directory, or the whole batch).
    pub id: u32,
    /// Its path.
    pub path: WirePath,
    /// The cause, with its errno.
    pub error: FsError,
}

/// What a commit did: every entry now in place (files and links in the
/// order they were staged, then directories deepest first) and every
/// failure. When the final `syncfs` fails, the entries are in place but
/// perhaps not durable: that shows as a failure for the root.
#[derive(Debug, Default)]
pub struct CommitReport {
    /// What is now in place. Today only the tests read it; it is what
    /// history (the replaced versions), sync groups
    /// (the changes to pass on) and the web dashboard will learn a commit's
    /// effect from, without a second look at the disk.
    pub committed: Vec<Committed>,
    /// What could not be committed.
    pub failures: Vec<CommitFailure>,
    /// How many replaced entries went into history.
    pub kept: u64,
    /// How many entries the client no longer has went into history.
    pub deleted: u64,
}

impl Stager {
    /// Makes every staged entry durable and visible, and reports what is
    /// now in place and what could not be committed (see
    /// [`CommitReport`]).
    pub fn commit(&mut self) -> CommitReport {
        let mut report = CommitReport::default();
        let CommitReport {
            committed,
            failures,
            kept,
            deleted,
        } = &mut report;
        self.parent = None;
        self.touched.clear();
        self.in_place.clear();
        let mut staged = std::mem::take(&mut self.staged);
        // The held files first: each is written, or one of the failures.
        self.settle_writes(&mut staged, failures);
        let mut dirs = std::mem::take(&mut self.dirs);
        let links = std::mem::take(&mut self.links);
        let updates = std::mem::take(&mut self.updates);
        let deletes = std::mem::take(&mut self.deletes);
        let only_deletes =
            staged.is_empty() && dirs.is_empty() && links.is_empty() && updates.is_empty();
        if only_deletes && deletes.is_empty() {
            return report;
        }
        let syncfs = !self.fsyncs();
        // Every directory whose entries or metadata the commit changes,
        // with its ancestors (new directories are entries of theirs): what
        // the fsync mode makes durable after the renames.
        let mut changed: BTreeSet<WirePath> = BTreeSet::new();
        if !syncfs {
            let parents = staged
                .iter()
                .filter_map(|s| s.path.parent())
                .chain(links.iter().filter_map(|l| l.path.parent()))
                .chain(updates.iter().filter_map(|u| u.path.parent()));
            let stand_ins = self.displaced.iter().map(|d| d.parent.clone());
            let made = dirs.iter().map(|(p, _, _)| p.clone());
            for p in parents.chain(stand_ins).chain(made) {
                let mut cur = Some(p);
                while let Some(p) = cur {
                    cur = p.parent();
                    if !changed.insert(p) {
                        break;
                    }
                }
            }
        }
        if !staged.is_empty() || !self.displaced.is_empty() {
            // In the fsync mode each file was fsynced when its body was
            // complete ([`Stager::finish_file`]); links and directories are
            // their directories' entries, fsynced after the renames.
            let res = if syncfs { self.sync() } else { Ok(()) };
            if let Err(e) = res {
                // Every entry fails for the same cause, errno and all (a
                // full disk says so for each file).
                for s in staged {
                    self.remove_tmp(&s.path, &s.tmp);
                    failures.push(CommitFailure {
                        id: s.id,
                        path: s.path,
                        error: e.clone(),
                    });
                }
                self.restore_displaced();
                return report;
            }
        }
        // What the new entries replace goes into history (the server's
        // store): a dead process's batch put right first, and one commit
        // of this namespace keeping at a time.
        let mut keeper = history::Keeper::new(self.opts.keep_history);
        let lock = keeper.enabled().then(|| {
            history::recover_once(&self.ns.tree);
            history::lock(&self.ns.tree)
        });
        let _keeping = lock
            .as_ref()
            .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()));
        // Where each replaced entry went (its directory and its hidden name
        // now), to be removed once every new entry is in place.
        let mut olds: Vec<(WirePath, Vec<u8>)> = Vec::new();
        let mut parent_path: Option<WirePath> = None;
        let mut parent_fd: Option<OwnedFd> = None;
        // New directories first: the entries made inside are in place
        // with them, and those staged there under temporary names are
        // renamed below as anywhere else.
        let missed = self.publish_new(&mut keeper, &mut olds, failures, &dirs);
        let mut made = self.make_empties(&staged, !syncfs);
        for (i, mut s) in staged.into_iter().enumerate() {
            if s.in_place() {
                match missed.iter().find(|(p, _)| super::stage::under(&s.path, p)) {
                    Some((_, error)) => failures.push(CommitFailure {
                        id: s.id,
                        path: s.path,
                        error: error.clone(),
                    }),
                    None => committed.push(Committed::of(s)),
                }
                continue;
            }
            let early = made.results.get_mut(i).and_then(Option::take);
            let (dir, early) = match early.and_then(|(d, r)| Some((made.dirs.get(d)?, r))) {
                Some((dir, r)) => (dir.as_raw_fd(), Some(r)),
                None => {
                    let Some(pp) = s.path.parent() else { continue };
                    if parent_path.as_ref() != Some(&pp) {
                        parent_fd = None;
                        match self.dir(&pp) {
                            Ok(fd) => parent_fd = Some(fd),
                            Err(error) => {
                                failures.push(CommitFailure {
                                    id: s.id,
                                    path: s.path,
                                    error,
                                });
                                parent_path = None;
                                continue;
                            }
                        }
                        parent_path = Some(pp);
                    }
                    let Some(dir) = parent_fd.as_ref() else {
                        continue;
                    };
                    (dir.as_raw_fd(), None)
                }
            };
            let Some(name) = s.path.file_name() else {
                continue;
            };
            if s.tmp.is_empty() {
                // An empty file: made whole, then linked in where nothing
                // stands yet; else it gets a name to rename like the rest.
                let res =
                    early.unwrap_or_else(|| create_empty(&self.opts, dir, name, &s.meta, !syncfs));
                match res {
                    Ok((None, applied)) => {
                        self.count(applied);
                        committed.push(Committed::of(s));
                        continue;
                    }
                    Ok((Some(tmp), applied)) => {
                        self.count(applied);
                        s.tmp = tmp;
                    }
                    Err((op, e)) => {
                        failures.push(CommitFailure {
                            id: s.id,
                            error: FsError::errno(op, self.ns.tree.show(&s.path), e),
                            path: s.path,
                        });
                        continue;
                    }
                }
            }
            if !Stager::still_staged(dir, &s) {
                // Not the file this stager wrote: never rename it.
                failures.push(CommitFailure {
                    id: s.id,
                    error: FsError::errno("rename", self.ns.tree.show(&s.path), Errno::ESTALE),
                    path: s.path,
                });
                continue;
            }
            let parent = s.path.parent().unwrap_or_default();
            let res = put_entry(&mut keeper, &self.ns.tree, dir, &parent, &s.tmp, name)
                .map(|old| olds.extend(old.map(|old| (parent.clone(), old))));
            match res {
                Ok(()) => committed.push(Committed::of(s)),
                Err(e) => {
                    let _ = unistd::unlinkat(Some(dir), os(&s.tmp), UnlinkatFlags::NoRemoveDir);
                    failures.push(CommitFailure {
                        id: s.id,
                        error: FsError::errno("rename", self.ns.tree.show(&s.path), e),
                        path: s.path,
                    });
                }
            }
        }
        // Every stand-in, its entries now in place inside it, takes the
        // place of the file or link there (the file or link kept first).
        for d in std::mem::take(&mut self.displaced) {
            let path = d.path();
            let res = self.ns.tree.dir(&d.parent).and_then(|dir| {
                let dir = dir.as_raw_fd();
                put_dir(&mut keeper, &self.ns.tree, dir, &d.parent, &d.tmp, &d.name)
                    .map(|old| olds.extend(old.map(|old| (d.parent.clone(), old))))
                    .map_err(|e| {
                        let _ = remove_tree(dir, &d.tmp, 0);
                        FsError::errno("rename", self.ns.tree.show(&path), e)
                    })
            });
            if let Err(error) = res {
                // What was put in place inside it went with it.
                committed.retain(|c| {
                    let lost = super::stage::under(&c.path, &path);
                    if lost {
                        failures.push(CommitFailure {
                            id: c.id,
                            path: c.path.clone(),
                            error: error.clone(),
                        });
                    }
                    !lost
                });
                failures.push(CommitFailure { id: 0, path, error });
            }
        }
        // Hard links last: their targets are in place now, whether this
        // batch sent them or an earlier one did.
        for l in links {
            match self.make_link(&l, &mut keeper) {
                Ok(()) => committed.push(Committed {
                    id: l.id,
                    path: l.path,
                    kind: EntryKind::File,
                    meta: l.meta,
                    size: l.size,
                }),
                Err(error) => failures.push(CommitFailure {
                    id: l.id,
                    path: l.path,
                    error,
                }),
            }
        }
        // Metadata of stored entries, in place: after the links, so an
        // update of a name linked in this batch changes the linked inode.
        for u in updates {
            match self.apply_update(&u) {
                Ok(()) => committed.push(Committed {
                    id: u.id,
                    path: u.path,
                    kind: u.kind,
                    meta: u.meta,
                    size: u.size,
                }),
                Err(error) => failures.push(CommitFailure {
                    id: u.id,
                    path: u.path,
                    error,
                }),
            }
        }
        // The new entries are in place and their data is durable: the old
        // versions they replaced go now, before directory times are set
        // (removing a name changes its directory's mtime), and the final
        // sync makes both durable together. A crash before this leaves them
        // under temporary names, for the next run's sweep.
        for (parent, old) in olds {
            if let Ok(dir) = self.ns.tree.dir(&parent) {
                if let Err(e) = remove_tree(dir.as_raw_fd(), &old, 0) {
                    log::warn!(
                        "{}: cannot remove the replaced entry: {}",
                        self.ns.tree.show_in(&parent, &old),
                        e.desc()
                    );
                }
            }
        }
        // What the client no longer has goes into the same batch, once
        // everything new is in place (a name sent in this batch is never
        // among it: the client named it in a manifest).
        *deleted = self.apply_deletes(deletes, &mut keeper, &mut changed, failures);
        // The batch of what the new entries replaced takes its name (a
        // crash before this leaves it pending, for the next run's repair).
        *kept = keeper.kept().saturating_sub(*deleted);
        if let Err(e) = keeper.publish(&self.ns.tree, !syncfs) {
            log::warn!("{}: history batch not published: {}", e.path, e.cause());
        }
        drop(_keeping);
        if only_deletes && *deleted == 0 {
            // An unchanged run's directories: nothing to make durable.
            return report;
        }
        // Deepest first: setting a child's mtime changes nothing above it,
        // but creating it did, so parents are stamped last.
        dirs.sort_by_key(|(p, _, _)| std::cmp::Reverse(p.components().count()));
        for (path, meta, xattrs) in dirs {
            let res = self.ns.tree.dir(&path).and_then(|fd| {
                self.set_mode(
                    fd.as_fd(),
                    EntryKind::Dir,
                    &meta,
                    XattrStep::Written(xattrs),
                )
                .map_err(|(op, e)| FsError::errno(op, self.ns.tree.show(&path), e))?;
                stat::futimens(fd.as_raw_fd(), &omit(), &timespec(&meta))
                    .map_err(|e| FsError::errno("utimes", self.ns.tree.show(&path), e))
            });
            match res {
                Ok(()) => committed.push(Committed {
                    id: 0,
                    path,
                    kind: EntryKind::Dir,
                    meta,
                    size: 0,
                }),
                Err(error) => failures.push(CommitFailure { id: 0, path, error }),
            }
        }
        // The names the client sent, in the namespace's table, durable
        // with the batch (a failure there fails no entry: the next
        // commit writes them).
        if self.opts.keep_owners && self.opts.fake_super {
            match self.save_names(!syncfs) {
                Ok(true) => {
                    changed.insert(WirePath::root());
                }
                Ok(false) => {}
                Err(e) => log::warn!("{}: {}", e.path, e.error),
            }
        }
        let res = if syncfs {
            self.sync()
        } else {
            self.fsync_dirs(&changed)
        };
        if let Err(error) = res {
            failures.push(CommitFailure {
                id: 0,
                path: WirePath::root(),
                error,
            });
        }
        report
    }
}

/// What [`create_empty`] returns: in place (`None`) or made under a
/// temporary name to rename, and what its metadata left out.
type EmptyResult = Result<(Option<Vec<u8>>, Applied), (&'static str, Errno)>;

/// Empty files of one directory in a row, at least, that the commit makes
/// on several threads at once: most of the time an empty file costs goes
/// to its inode (allocation, record, mode, times), which threads do side
/// by side; only the link into the directory takes the directory's lock.
/// On a fresh ext4, 100,000 empty files in one directory took 4.3 s on
/// one thread and 2.7 s on two.
const MAKE_TOGETHER: usize = 32;

/// Threads that make empty files at once, at most.
const MAKERS: usize = 4;

/// Empty files made ahead of the commit's renames (see
/// [`Stager::make_empties`]).
struct Made {
    /// The directories they were made in.
    dirs: Vec<OwnedFd>,
    /// By staged index: the directory (an index into `dirs`) and what
    /// [`create_empty`] returned; `None` for an entry left to the renames.
    results: Vec<Option<(usize, EmptyResult)>>,
}

impl Stager {
    /// Makes the empty files of each run of at least [`MAKE_TOGETHER`]
    /// staged entries of one directory, split between threads. Anything
    /// not made here (a thread that could not start, a directory that
    /// cannot be opened, a short run) the renames make one by one, as
    /// before; the result is the same either way.
    fn make_empties(&self, staged: &[Staged], fsync: bool) -> Made {
        let mut made = Made {
            dirs: Vec::new(),
            results: (0..staged.len()).map(|_| None).collect(),
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAKERS));
        if threads < 2 {
            return made;
        }
        let mut start = 0;
        while let Some(first) = staged.get(start) {
            let parent = first.path.parent();
            let len = staged[start..]
                .iter()
                .take_while(|s| s.path.parent() == parent)
                .count();
            let run: Vec<(usize, &[u8], &Meta)> = (start..start + len)
                .filter_map(|k| {
                    let s = staged.get(k)?;
                    Some((k, s.path.file_name().filter(|_| s.tmp.is_empty())?, &s.meta))
                })
                .collect();
            start += len;
            if run.len() < MAKE_TOGETHER {
                continue;
            }
            let Some(Ok(dir)) = parent.map(|p| self.dir(&p)) else {
                continue;
            };
            let raw = dir.as_raw_fd();
            let d = made.dirs.len();
            made.dirs.push(dir);
            let opts = &self.opts;
            std::thread::scope(|scope| {
                let makers: Vec<_> = run
                    .chunks(run.len().div_ceil(threads))
                    .filter_map(|chunk| {
                        std::thread::Builder::new()
                            .name("rsb-empties".into())
                            .spawn_scoped(scope, move || {
                                chunk
                                    .iter()
                                    .map(|&(k, name, meta)| {
                                        (k, create_empty(opts, raw, name, meta, fsync))
                                    })
                                    .collect::<Vec<_>>()
                            })
                            .ok()
                    })
                    .collect();
                for maker in makers {
                    for (k, r) in maker.join().unwrap_or_default() {
                        if let Some(slot) = made.results.get_mut(k) {
                            *slot = Some((d, r));
                        }
                    }
                }
            });
        }
        made
    }
}

/// Makes the empty file `name` in `dir` with its mode, mtime and (on
/// the server) its checksum record, as an unnamed `O_TMPFILE` that is
/// linked in only when whole: one directory entry added, none renamed
/// or removed, so a crash shows it complete or not at all. `fsync`
/// syncs it first (the fsync mode). `Ok(None)`: it is in place.
/// `Ok(Some(tmp))`: something stands at `name`, or the file system
/// cannot link an unnamed file (no `O_TMPFILE`, no `/proc`); the file
/// was made whole under the temporary name `tmp` instead, for the
/// caller to rename over `name` as any staged file. The [`Applied`]: what
/// its metadata had to leave out (a set-id bit, its owner). A free function, not a
/// method: the commit makes many at once on several threads.
fn create_empty(
    opts: &StageOptions,
    dir: RawFd,
    name: &[u8],
    meta: &Meta,
    fsync: bool,
) -> EmptyResult {
    let flags = OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(0o600);
    let mut cleared = Applied::default();
    let mut finish = |fd: &OwnedFd| -> Result<(), (&'static str, Errno)> {
        if opts.record_checksums {
            let r = Recorded { crc: 0, size: 0 };
            xattr::record(fd.as_fd(), r).map_err(|e| ("setxattr", e))?;
        }
        cleared = opts.apply_mode(fd.as_fd(), EntryKind::File, meta, XattrStep::NONE)?;
        stat::futimens(fd.as_raw_fd(), &omit(), &timespec(meta)).map_err(|e| ("utimes", e))?;
        if fsync {
            unistd::fsync(fd.as_raw_fd()).map_err(|e| ("fsync", e))?;
            count_fsync();
        }
        Ok(())
    };
    if let Ok(fd) = fcntl::openat(Some(dir), ".", flags | OFlag::O_TMPFILE, mode) {
        // SAFETY: fd was just returned by openat and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        finish(&fd)?;
        let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let link = |to: &[u8]| {
            unistd::linkat(
                None,
                std::ffi::OsStr::new(&proc),
                Some(dir),
                os(to),
                AtFlags::AT_SYMLINK_FOLLOW,
            )
        };
        match link(name) {
            Ok(()) => return Ok((None, cleared)),
            Err(Errno::EEXIST) => {
                let tmp = tmp::fresh_tmp();
                if link(&tmp).is_ok() {
                    return Ok((Some(tmp), cleared));
                }
            }
            Err(_) => {}
        }
    }
    let tmp = tmp::fresh_tmp();
    let fd = fcntl::openat(
        Some(dir),
        os(&tmp),
        flags | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
        mode,
    )
    .map_err(|e| ("create", e))?;
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if let Err(e) = finish(&fd) {
        let _ = unistd::unlinkat(Some(dir), os(&tmp), UnlinkatFlags::NoRemoveDir);
        return Err(e);
    }
    Ok((Some(tmp), cleared))
}

impl Stager {
    /// The fsync mode after the renames: every changed directory.
    fn fsync_dirs(&self, dirs: &BTreeSet<WirePath>) -> Result<(), FsError> {
        for p in dirs.iter().rev() {
            match self.ns.tree.dir(p) {
                Ok(fd) => unistd::fsync(fd.as_raw_fd())
                    .map_err(|e| FsError::errno("fsync", self.ns.tree.show(p), e))?,
                // A directory gone meanwhile has nothing left to keep.
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => continue,
                Err(e) => return Err(e),
            }
            count_fsync();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::store::stage::tests::{meta, stager, wp, write_all};
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn commit_renames_and_sets_metadata() {
        let t = tempfile::tempdir().unwrap();
        let mut s = stager(t.path());
        s.mkdir(&wp("d"), meta(0o555, 2000)).unwrap();
        let inc = s.begin_file(2, &wp("d/f"), meta(0o604, 1000), 3).unwrap();
        write_all(&inc.file, b"abc");
        s.finish_file(0).unwrap();
        s.symlink(3, &wp("d/l"), b"../nowhere", meta(0o777, 3000))
            .unwrap();
        assert!(s.commit().failures.is_empty());
        let f = std::fs::symlink_metadata(t.path().join("d/f")).unwrap();
        assert_eq!(
            (f.mode() & 0o7777, f.mtime(), f.mtime_nsec()),
            (0o604, 1000, 123_456_789)
        );
        let l = std::fs::symlink_metadata(t.path().join("d/l")).unwrap();
        assert!(l.file_type().is_symlink());
        assert_eq!(l.mtime(), 3000);
        assert_eq!(
            std::fs::read_link(t.path().join("d/l")).unwrap(),
            std::path::Path::new("../nowhere")
        );
        let d = std::fs::symlink_metadata(t.path().join("d")).unwrap();
        assert_eq!((d.mode() & 0o7777, d.mtime()), (0o555, 2000));
        // A second backup into the read-only directory still works.
        let mut s = stager(t.path());
        s.mkdir(&wp("d"), meta(0o555, 2000)).unwrap();
        let inc = s.begin_file(4, &wp("d/g"), meta(0o600, 1), 1).unwrap();
        write_all(&inc.file, b"x");
        s.finish_file(0).unwrap();
        assert!(s.commit().failures.is_empty());
        assert_eq!(std::fs::read(t.path().join("d/g")).unwrap(), b"x");
        std::fs::set_permissions(
            t.path().join("d"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }

    #[test]
    fn a_file_or_link_replaces_a_directory_tree_at_the_commit() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("x/y/z")).unwrap();
        std::fs::write(t.path().join("x/y/z/f"), b"old").unwrap();
        std::fs::create_dir_all(t.path().join("l/m")).unwrap();
        // A read-only directory inside must not stop the removal.
        std::fs::set_permissions(
            t.path().join("x/y"),
            std::os::unix::fs::PermissionsExt::from_mode(0o500),
        )
        .unwrap();
        let mut s = stager(t.path());
        let inc = s.begin_file(9, &wp("x"), meta(0o600, 1), 3).unwrap();
        write_all(&inc.file, b"new");
        s.finish_file(0).unwrap();
        s.symlink(10, &wp("l"), b"target", meta(0o777, 1)).unwrap();
        // Before the commit the old trees are intact.
        assert!(t.path().join("x/y/z/f").is_file());
        assert!(s.commit().failures.is_empty());
        assert_eq!(std::fs::read(t.path().join("x")).unwrap(), b"new");
        assert!(std::fs::symlink_metadata(t.path().join("l"))
            .unwrap()
            .file_type()
            .is_symlink());
        let mut names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["l", "x"]);
    }

    /// The names in `dir`, sorted.
    #[test]
    fn an_empty_file_has_no_temporary_name_and_appears_only_whole_at_the_commit() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("old"), b"previous").unwrap();
        std::fs::create_dir_all(t.path().join("was_dir/sub")).unwrap();
        let mut s = stager(t.path());
        for (id, name) in [(1, "new"), (2, "old"), (3, "was_dir")] {
            s.begin_file(id, &wp(name), meta(0o640, 1000), 0).unwrap();
            s.finish_file(0).unwrap();
        }
        // Staged, nothing of them is in the directory yet: no temporary
        // name to rename in a large directory, the old versions as they were.
        assert_eq!(names(t.path()), ["old", "was_dir"]);
        assert_eq!(std::fs::read(t.path().join("old")).unwrap(), b"previous");
        let r = s.commit();
        assert!(r.failures.is_empty());
        assert_eq!(r.committed.len(), 3);
        assert_eq!(names(t.path()), ["new", "old", "was_dir"]);
        for name in ["new", "old", "was_dir"] {
            let m = std::fs::symlink_metadata(t.path().join(name)).unwrap();
            assert!(m.is_file(), "{name}");
            assert_eq!(
                (m.len(), m.mode() & 0o7777, m.mtime(), m.mtime_nsec()),
                (0, 0o640, 1000, 123_456_789),
                "{name}"
            );
        }
        // One dropped before its commit leaves nothing behind.
        let mut s = stager(t.path());
        s.begin_file(4, &wp("never"), meta(0o600, 1), 0).unwrap();
        s.finish_file(0).unwrap();
        drop(s);
        assert_eq!(names(t.path()), ["new", "old", "was_dir"]);
    }

    #[test]
    fn empty_files_made_on_several_threads_are_whole_and_counted() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        // Some names taken already (a file, a directory): those go in by
        // rename, the rest by link, all in one run of one directory.
        std::fs::write(t.path().join("d/e007"), b"old").unwrap();
        std::fs::create_dir_all(t.path().join("d/e042/sub")).unwrap();
        let opts = StageOptions {
            clear_setid: true,
            ..StageOptions::default()
        };
        let mut s = Stager::new(
            crate::io::store::Namespace::open_dir(t.path()).unwrap(),
            opts,
        );
        let n = (MAKE_TOGETHER * 4) as u32;
        let mode = |i: u32| {
            if i.is_multiple_of(10) {
                0o4755
            } else {
                0o600 + i % 0o100
            }
        };
        for i in 0..n {
            let path = wp(&format!("d/e{i:03}"));
            s.begin_file(i + 1, &path, meta(mode(i), 1000 + i64::from(i)), 0)
                .unwrap();
            s.finish_file(0).unwrap();
        }
        let r = s.commit();
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        // In staged order, as a commit on one thread reports them.
        let paths: Vec<_> = r.committed.iter().map(|c| c.path.to_string()).collect();
        let want: Vec<_> = (0..n).map(|i| format!("/d/e{i:03}")).collect();
        assert_eq!(paths, want);
        for i in 0..n {
            let m = std::fs::symlink_metadata(t.path().join(format!("d/e{i:03}"))).unwrap();
            assert!(m.is_file(), "e{i:03}");
            assert_eq!(
                (m.len(), m.mode() & 0o7777, m.mtime()),
                (0, mode(i) & 0o777, 1000 + i64::from(i)),
                "e{i:03}"
            );
        }
        assert_eq!(
            names(&t.path().join("d")).len(),
            n as usize,
            "nothing else left"
        );
        // Every set-id bit cleared on any thread is counted once.
        assert_eq!(s.setid_cleared(), u64::from(n.div_ceil(10)));
    }

    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_crash_during_a_type_change_never_hides_the_previous_version() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"old file").unwrap();
        std::os::unix::fs::symlink("old target", t.path().join("l")).unwrap();
        std::fs::create_dir_all(t.path().join("d/e")).unwrap();
        std::fs::write(t.path().join("d/e/g"), b"old g").unwrap();
        let mut s = stager(t.path());
        let inc = s.begin_file(1, &wp("f/a"), meta(0o600, 1), 1).unwrap();
        write_all(&inc.file, b"n");
        s.finish_file(0).unwrap();
        s.mkdir(&wp("f"), meta(0o755, 1)).unwrap();
        s.mkdir(&wp("l"), meta(0o755, 1)).unwrap();
        let inc = s.begin_file(2, &wp("d"), meta(0o600, 1), 3).unwrap();
        write_all(&inc.file, b"new");
        s.finish_file(0).unwrap();
        // Killed before the commit: every previous version is in place...
        std::mem::forget(s);
        assert_eq!(std::fs::read(t.path().join("f")).unwrap(), b"old file");
        assert_eq!(
            std::fs::read_link(t.path().join("l")).unwrap(),
            std::path::Path::new("old target")
        );
        assert_eq!(std::fs::read(t.path().join("d/e/g")).unwrap(), b"old g");
        // ...and all that is left beside them is a dead process's
        // temporary entries, which the next run sweeps.
        let left = names(t.path());
        assert_eq!(left.len(), 6, "{left:?}");
        for n in left
            .iter()
            .filter(|n| !["d", "f", "l"].contains(&n.as_str()))
        {
            assert!(
                crate::store::names::is_stale_tmp(n.as_bytes(), tmp::salt() ^ 1),
                "{n}"
            );
        }
        // Committed: the new versions replace them and nothing else stays.
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"old file").unwrap();
        std::os::unix::fs::symlink("old target", t.path().join("l")).unwrap();
        let mut s = stager(t.path());
        let inc = s.begin_file(1, &wp("f/a"), meta(0o600, 1), 1).unwrap();
        write_all(&inc.file, b"n");
        s.finish_file(0).unwrap();
        s.mkdir(&wp("f"), meta(0o750, 5)).unwrap();
        s.mkdir(&wp("l"), meta(0o755, 1)).unwrap();
        let r = s.commit();
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        assert_eq!(std::fs::read(t.path().join("f/a")).unwrap(), b"n");
        let f = std::fs::metadata(t.path().join("f")).unwrap();
        assert_eq!((f.mode() & 0o7777, f.mtime()), (0o750, 5));
        assert!(t.path().join("l").is_dir());
        assert_eq!(names(t.path()), ["f", "l"]);
    }

    #[test]
    fn the_fsync_mode_syncs_each_file_and_each_changed_directory() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("old/deep")).unwrap();
        super::super::durable::set_sync(super::super::durable::Sync::Fsync);
        let before = super::super::durable::FSYNCS.with(|n| n.get());
        let mut s = stager(t.path());
        for (id, p) in [(1, "a"), (2, "d/b"), (3, "d/e/c"), (4, "old/deep/f")] {
            let inc = s.begin_file(id, &wp(p), meta(0o600, 1), 1).unwrap();
            write_all(&inc.file, b"x");
            s.finish_file(0).unwrap();
        }
        s.symlink(5, &wp("d/l"), b"a", meta(0o777, 1)).unwrap();
        s.mkdir(&wp("d/e"), meta(0o755, 1)).unwrap();
        s.mkdir(&wp("d"), meta(0o755, 1)).unwrap();
        let r = s.commit();
        super::super::durable::set_sync(super::super::durable::Sync::Auto);
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        // Four files, then the root, d, d/e, old and old/deep.
        assert_eq!(
            super::super::durable::FSYNCS.with(|n| n.get()) - before,
            4 + 5
        );
        assert_eq!(std::fs::read(t.path().join("d/e/c")).unwrap(), b"x");
    }

    #[test]
    fn a_link_names_the_file_its_batch_stored_or_fails_naming_both() {
        let t = tempfile::tempdir().unwrap();
        let mut s = stager(t.path());
        // The link comes before its target's batch entry is in place, and
        // in another directory.
        let inc = s.begin_file(1, &wp("a/f"), meta(0o640, 10), 3).unwrap();
        write_all(&inc.file, b"abc");
        s.finish_file(crc32c::crc32c(b"abc")).unwrap();
        s.link(2, &wp("b/g"), &wp("a/f"), meta(0o640, 10), 3)
            .unwrap();
        // A wrong size (the target changed or failed), a symlink target,
        // a missing one.
        s.link(3, &wp("b/stale"), &wp("a/f"), meta(0o640, 10), 4)
            .unwrap();
        s.symlink(4, &wp("a/sl"), b"f", meta(0o777, 10)).unwrap();
        s.link(5, &wp("b/via"), &wp("a/sl"), meta(0o640, 10), 1)
            .unwrap();
        s.link(6, &wp("b/none"), &wp("a/missing"), meta(0o640, 10), 3)
            .unwrap();
        assert!(s
            .link(7, &wp("b/self"), &wp("b/self"), meta(0o640, 10), 3)
            .is_err());
        let r = s.commit();
        let failed: Vec<u32> = r.failures.iter().map(|f| f.id).collect();
        assert_eq!(failed, [3, 5, 6]);
        let why = r.failures[0].error.to_string();
        assert!(why.contains("b/stale") && why.contains("a/f"), "{why}");
        let f = std::fs::symlink_metadata(t.path().join("a/f")).unwrap();
        let g = std::fs::symlink_metadata(t.path().join("b/g")).unwrap();
        assert_eq!((g.ino(), g.nlink()), (f.ino(), 2));
        for n in ["b/stale", "b/via", "b/none"] {
            assert!(!t.path().join(n).exists(), "{n}");
        }
        // No temporary names are left; a link over an existing file of
        // another inode replaces it.
        assert_eq!(names(&t.path().join("b")), ["g"]);
        std::fs::write(t.path().join("b/h"), b"old").unwrap();
        let mut s = stager(t.path());
        s.link(8, &wp("b/h"), &wp("a/f"), meta(0o640, 10), 3)
            .unwrap();
        assert!(s.commit().failures.is_empty());
        let h = std::fs::symlink_metadata(t.path().join("b/h")).unwrap();
        assert_eq!((h.ino(), h.nlink()), (f.ino(), 3));
    }

    #[test]
    fn commit_reports_what_it_put_in_place() {
        let t = tempfile::tempdir().unwrap();
        let mut s = stager(t.path());
        let inc = s.begin_file(1, &wp("d/f"), meta(0o600, 10), 3).unwrap();
        write_all(&inc.file, b"abc");
        s.finish_file(crc32c::crc32c(b"abc")).unwrap();
        s.symlink(2, &wp("d/l"), b"f", meta(0o777, 11)).unwrap();
        s.mkdir(&wp("d/e"), meta(0o755, 12)).unwrap();
        s.mkdir(&wp("d"), meta(0o755, 13)).unwrap();
        let r = s.commit();
        assert!(r.failures.is_empty());
        let got: Vec<_> = r
            .committed
            .iter()
            .map(|c| (c.path.clone(), c.kind, c.meta, c.size))
            .collect();
        assert_eq!(
            got,
            [
                (wp("d/f"), EntryKind::File, meta(0o600, 10), 3),
                (wp("d/l"), EntryKind::Symlink, meta(0o777, 11), 1),
                (wp("d/e"), EntryKind::Dir, meta(0o755, 12), 0),
                (wp("d"), EntryKind::Dir, meta(0o755, 13), 0),
            ]
        );
        // Nothing staged: nothing to report.
        let r = s.commit();
        assert!(r.committed.is_empty() && r.failures.is_empty());
    }

    #[test]
    fn a_failure_keeps_its_errno_and_the_rest_is_committed() {
        let t = tempfile::tempdir().unwrap();
        // A stored directory (a new one would be built hidden).
        std::fs::create_dir(t.path().join("x")).unwrap();
        let mut s = stager(t.path());
        let inc = s.begin_file(7, &wp("x/f"), meta(0o600, 1), 1).unwrap();
        write_all(&inc.file, b"x");
        s.finish_file(0).unwrap();
        let inc = s.begin_file(8, &wp("g"), meta(0o600, 1), 1).unwrap();
        write_all(&inc.file, b"g");
        s.finish_file(0).unwrap();
        // The directory goes before the commit: its entry cannot be put in
        // place, and says why.
        std::fs::remove_dir_all(t.path().join("x")).unwrap();
        let r = s.commit();
        assert_eq!(r.failures.len(), 1);
        let f = &r.failures[0];
        assert_eq!((f.id, &f.path), (7, &wp("x/f")));
        assert_eq!(f.error.raw_os_error(), Some(nix::libc::ENOENT));
        assert_eq!(
            f.error.to_string(),
            format!("open {}/x: No such file or directory", t.path().display())
        );
        assert_eq!(r.committed.len(), 1);
        assert_eq!(r.committed[0].path, wp("g"));
        assert_eq!(std::fs::read(t.path().join("g")).unwrap(), b"g");
    }
}
