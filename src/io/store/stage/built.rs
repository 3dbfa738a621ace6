//! Directories built under a temporary name and put in place whole at the
//! commit: a *stand-in*, which replaces a file or link standing where a
//! directory must be (swapped in with `RENAME_EXCHANGE`), and a *new
//! directory*, one that did not exist (renamed in with
//! `RENAME_NOREPLACE`, see `commit/publish.rs`). Until then nothing
//! inside either is visible, so a file or link staged inside is made at
//! its final name ([`Stager::staging_name`]) instead of under a temporary
//! one renamed at the commit: a first backup, or a restore into an empty
//! destination, costs one rename per new directory at the top of what is
//! new instead of one per entry (on ext4 a rename is about four linear
//! searches of a directory that meanwhile holds twice the names). A crash
//! before the commit leaves the whole new tree under its temporary name,
//! for the sweep.
//!
//! Only the outermost new directory has a temporary name; the directories
//! made inside it have their own. A batch handed to a commit
//! ([`Stager::take_batch`]) takes its directories along. The next batch,
//! staged while that commit runs, builds a new directory of its own where
//! the one before is not in yet, and its commit merges it in (see
//! `commit/publish.rs`): only its own batch ever writes into a directory
//! being built, so nothing arrives there after a merge emptied it. A
//! stand-in the commit has not swapped in yet is reached through its
//! temporary name instead ([`Stager::hand_over`]), staging there under
//! temporary names as anywhere visible: a swap keeps the directory, and a
//! stand-in of the next batch would swap out the one before it, entries
//! and all. A
//! resumable file about to start inside a new directory makes that
//! directory visible first ([`Stager::reveal`]): its partial must outlive a
//! killed connection and a killed server, which remove or sweep whatever
//! is under a temporary name. Two connections making the same new
//! directory at once both build one; the second commit merges its tree
//! into the first's. Part of [`super`], split off for length.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, RenameFlags};
use nix::sys::stat::{self, Mode};

use super::super::beneath::{open_dir_at, os};
use super::super::tmp;
use super::{remove_tree, FsError, Stager};
use crate::proto::WirePath;

/// Stand-ins of handed batches a stager remembers, at most.
const HANDED_MAX: usize = 64;

/// A directory being built under the temporary name `tmp` in `parent`
/// for `name` (see the module's text).
#[derive(Clone)]
pub(in crate::io::store) struct Displaced {
    pub(in crate::io::store) parent: WirePath,
    pub(in crate::io::store) name: Vec<u8>,
    pub(in crate::io::store) tmp: Vec<u8>,
    /// A new directory, renamed in; otherwise a stand-in, swapped in.
    pub(in crate::io::store) new: bool,
}

impl Displaced {
    /// The path it will have.
    pub(in crate::io::store) fn path(&self) -> WirePath {
        self.parent.join(&self.name).unwrap_or_default()
    }

    /// Whether `path` is this directory or beneath it.
    pub(in crate::io::store) fn holds(&self, path: &WirePath) -> bool {
        under(path, &self.path())
    }
}

/// Whether `path` is `top` or beneath it.
pub(in crate::io::store) fn under(path: &WirePath, top: &WirePath) -> bool {
    let (p, t) = (path.as_bytes(), top.as_bytes());
    t.is_empty() || p == t || (p.starts_with(t) && p.get(t.len()) == Some(&b'/'))
}

impl Stager {
    /// Creates the directories of `path` that are missing (owner-only), one
    /// component at a time without following links. The first missing one
    /// is a new directory built under a temporary name, and those below it
    /// are made inside it; a file or link where a directory must be stays
    /// until the commit (see [`Self::stand_in`]).
    pub(super) fn make_parent(&mut self, path: &WirePath) -> Result<OwnedFd, FsError> {
        let mut cur = self.ns.tree.dir(&WirePath::root())?;
        let mut sofar = WirePath::root();
        // Beneath a directory being built: what is missing is made there.
        let mut hidden = false;
        for comp in path.components() {
            let here = sofar
                .join(comp)
                .map_err(|e| FsError::invalid("open", self.ns.tree.show(path), e))?;
            let dir = cur.as_raw_fd();
            let shown = |e| FsError::errno("open", self.ns.tree.show(&here), e);
            let next = match self.stand_in_of(&here) {
                Some(d) => {
                    hidden = true;
                    open_dir_at(dir, &d.tmp).map_err(shown)?
                }
                None => match open_dir_at(dir, comp) {
                    Ok(fd) => fd,
                    Err(Errno::ENOTDIR) => match self.through_handed(dir, &here) {
                        Some(fd) => fd,
                        None => {
                            hidden = true;
                            self.stand_in(dir, &sofar, comp, false)?
                        }
                    },
                    Err(Errno::ENOENT) => match self.through_handed(dir, &here) {
                        Some(fd) => fd,
                        None if hidden => {
                            self.mkdir_in(dir, &here, comp)?;
                            self.in_place.insert(here.clone());
                            open_dir_at(dir, comp).map_err(shown)?
                        }
                        None => {
                            hidden = true;
                            self.stand_in(dir, &sofar, comp, true)?
                        }
                    },
                    Err(e) => return Err(shown(e)),
                },
            };
            cur = next;
            sofar = here;
        }
        Ok(cur)
    }

    /// The directory being built for `path`, if any.
    pub(super) fn stand_in_of(&self, path: &WirePath) -> Option<&Displaced> {
        self.displaced.iter().find(|d| {
            path.parent().as_ref() == Some(&d.parent) && path.file_name() == Some(&d.name[..])
        })
    }

    /// Whether `dir`, a directory path, is inside one being built (what is
    /// made there is not visible before the commit).
    pub(super) fn hidden(&self, dir: &WirePath) -> bool {
        self.displaced.iter().any(|d| d.holds(dir))
    }

    /// The name to make the entry `path` under, in the directory last
    /// opened for writing (`hidden`: whether it is inside one being built):
    /// its own where that directory is being built and nothing of this
    /// batch took the name yet (`in_place`), a fresh temporary one anywhere
    /// else. Of the stager's fields, so that the caller's other borrows
    /// stay.
    pub(super) fn staging_name(
        in_place: &mut HashSet<WirePath>,
        hidden: bool,
        path: &WirePath,
    ) -> Vec<u8> {
        match path.file_name() {
            Some(name) if hidden && in_place.insert(path.clone()) => name.to_vec(),
            _ => tmp::fresh_tmp(),
        }
    }

    /// A stand-in an earlier batch built, handed to a commit that may not
    /// have swapped it in yet (see the module's text): `here` in `dir`
    /// opened through its temporary name, or through its own once the
    /// commit put it there. `None` when it is neither.
    fn through_handed(&self, dir: RawFd, here: &WirePath) -> Option<OwnedFd> {
        let d = self.handed.iter().find(|d| d.path() == *here)?;
        open_dir_at(dir, &d.tmp)
            .or_else(|_| open_dir_at(dir, &d.name))
            .ok()
    }

    /// Opens the directory `path` as this stager sees it: beneath a
    /// directory being built where one is, through the temporary name of
    /// a stand-in an earlier batch built where its commit has not swapped
    /// it in yet, and the tree's own directory elsewhere.
    pub(in crate::io::store) fn dir(&self, path: &WirePath) -> Result<OwnedFd, FsError> {
        if let Some(res) = self.dir_beneath(&self.displaced, path) {
            return res;
        }
        self.visible_dir(path)
    }

    /// [`Self::dir`] of a directory not inside one this batch builds: the
    /// tree's own, or through the temporary name of a stand-in an earlier
    /// batch built and handed to a commit that has not swapped it in yet.
    pub(super) fn visible_dir(&self, path: &WirePath) -> Result<OwnedFd, FsError> {
        match self.ns.tree.dir(path) {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENOENT | nix::libc::ENOTDIR)
                ) =>
            {
                match self.dir_beneath(&self.handed, path) {
                    Some(Ok(fd)) => Ok(fd),
                    // Renamed in meanwhile.
                    Some(Err(_)) => self.ns.tree.dir(path),
                    None => Err(e),
                }
            }
            res => res,
        }
    }

    /// `path` opened beneath the one of `built` that holds it, if any.
    fn dir_beneath(
        &self,
        built: &[Displaced],
        path: &WirePath,
    ) -> Option<Result<OwnedFd, FsError>> {
        let comps: Vec<&[u8]> = path.components().collect();
        for d in built {
            let top: Vec<&[u8]> = d.parent.components().chain([&d.name[..]]).collect();
            let Some(rest) = comps.strip_prefix(&top[..]) else {
                continue;
            };
            let open = |fd: &OwnedFd, name: &[u8]| {
                open_dir_at(fd.as_raw_fd(), name)
                    .map_err(|e| FsError::errno("open", self.ns.tree.show(path), e))
            };
            // The parent is never inside `built`'s own (the outermost is
            // found first), but can be inside an earlier batch's.
            let res = self.visible_dir(&d.parent).and_then(|p| {
                let mut cur = open(&p, &d.tmp)?;
                for comp in rest {
                    cur = open(&cur, comp)?;
                }
                Ok(cur)
            });
            return Some(res);
        }
        None
    }

    /// Builds a directory for `name` in `dir` (the directory `parent`)
    /// under a temporary name and returns it open: a new directory (`new`),
    /// or one that is to replace a file or link there, which the commit
    /// swaps with it in one `renameat2(RENAME_EXCHANGE)`. Until then the
    /// previous version stays in place, so a crash anywhere leaves either
    /// it or the complete new directory under `name`, never an empty
    /// stand-in (what is under the temporary name is swept as any dead
    /// process's).
    pub(super) fn stand_in(
        &mut self,
        dir: RawFd,
        parent: &WirePath,
        name: &[u8],
        new: bool,
    ) -> Result<OwnedFd, FsError> {
        let tmp = tmp::fresh_tmp();
        let shown = || self.ns.tree.show_in(parent, name);
        stat::mkdirat(Some(dir), os(&tmp), Mode::from_bits_truncate(0o700))
            .map_err(|e| FsError::errno("mkdir", shown(), e))?;
        let fd = open_dir_at(dir, &tmp).map_err(|e| FsError::errno("open", shown(), e))?;
        self.displaced.push(Displaced {
            parent: parent.clone(),
            name: name.to_vec(),
            tmp,
            new,
        });
        Ok(fd)
    }

    /// Makes the new directory that holds the directory `path` visible now
    /// (see the module's text): the entries staged inside at their final
    /// names move to temporary ones, renamed at the commit as anywhere
    /// else, and the directory takes its name. False when `path` is not in
    /// a new directory, or it stays hidden (it is inside a stand-in, or
    /// something failed: another connection made the same directory
    /// meanwhile, say), with what was moved still in order.
    pub(super) fn reveal(&mut self, path: &WirePath) -> bool {
        let Some(i) = self.displaced.iter().position(|d| d.new && d.holds(path)) else {
            return false;
        };
        // Files handed to writers are made first.
        self.wait_writes();
        let top = self.displaced[i].path();
        self.parent = None;
        for k in 0..self.staged.len() {
            let s = &self.staged[k];
            if !s.in_place() || !under(&s.path, &top) {
                continue;
            }
            let (Some(pp), Some(name)) = (s.path.parent(), s.path.file_name()) else {
                continue;
            };
            let Ok(dir) = self.dir(&pp) else {
                return false;
            };
            let tmp = tmp::fresh_tmp();
            let dir = Some(dir.as_raw_fd());
            match fcntl::renameat2(dir, os(name), dir, os(&tmp), RenameFlags::RENAME_NOREPLACE) {
                // A write that failed left no file: its name is not ours to
                // remove once the directory is visible (the commit finds
                // nothing to rename and reports it).
                Ok(()) | Err(Errno::ENOENT) => self.staged[k].tmp = tmp,
                Err(_) => return false,
            }
        }
        let d = &self.displaced[i];
        let Ok(parent) = self.visible_dir(&d.parent) else {
            return false;
        };
        let p = Some(parent.as_raw_fd());
        if fcntl::renameat2(p, os(&d.tmp), p, os(&d.name), RenameFlags::RENAME_NOREPLACE).is_err() {
            return false;
        }
        self.displaced.remove(i);
        !self.hidden(path)
    }

    /// Whether `path` is a stand-in an earlier batch built, handed to a
    /// commit that may not have swapped it in yet: a directory already.
    pub(super) fn handed_stand_in(&self, path: &WirePath) -> bool {
        self.handed.iter().any(|d| !d.new && d.path() == *path)
    }

    /// Keeps, for the next batch, the stand-ins the batch just handed to a
    /// commit builds (see the module's text), and forgets those the
    /// commits swapped in (or gave up) since.
    pub(super) fn hand_over(&mut self, built: &[Displaced]) {
        let gone = |d: &Displaced| {
            self.visible_dir(&d.parent).is_ok_and(|p| {
                stat::fstatat(
                    Some(p.as_raw_fd()),
                    os(&d.tmp),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .is_err_and(|e| e == Errno::ENOENT)
            })
        };
        let gone: Vec<bool> = self.handed.iter().map(gone).collect();
        let mut k = 0;
        self.handed.retain(|_| {
            k += 1;
            !gone.get(k - 1).copied().unwrap_or(false)
        });
        // Bounded: the oldest, whose commits are long done, go first
        // (never the batch's just handed).
        let old = self.handed.len();
        self.handed.extend(built.iter().filter(|d| !d.new).cloned());
        let extra = self.handed.len().saturating_sub(HANDED_MAX).min(old);
        self.handed.drain(..extra);
        self.in_place.clear();
    }

    /// Removes every directory being built: the entries they were to
    /// replace never moved.
    pub(in crate::io::store) fn restore_displaced(&mut self) {
        self.parent = None;
        self.in_place.clear();
        for d in std::mem::take(&mut self.displaced) {
            let Ok(dir) = self.visible_dir(&d.parent) else {
                continue;
            };
            if let Err(e) = remove_tree(dir.as_raw_fd(), &d.tmp, 0) {
                log::warn!(
                    "{}: cannot remove the unfinished new directory: {}",
                    self.ns.tree.show_in(&d.parent, &d.name),
                    e.desc()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::tests::{meta, stager, wp, write_all};
    use super::super::{Namespace, StageOptions, Stager};
    use crate::proto::xattrs::Xattrs;

    /// Every name beneath `dir`, relative, sorted.
    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
                if p.is_dir() && !p.is_symlink() {
                    todo.push(p);
                }
            }
        }
        out.sort();
        out
    }

    fn file(s: &mut Stager, path: &str, data: &[u8]) {
        let inc = s
            .begin_file(1, &wp(path), meta(0o640, 1000), data.len() as u64)
            .unwrap();
        write_all(&inc.file, data);
        s.finish_file(crc32c::crc32c(data)).unwrap();
    }

    #[test]
    fn a_new_directory_is_built_whole_and_appears_at_the_commit() {
        let t = tempfile::tempdir().unwrap();
        let mut s = stager(t.path());
        file(&mut s, "a/b/f1", b"one");
        file(&mut s, "a/b/f2", b"two");
        file(&mut s, "a/g", b"three");
        s.symlink(4, &wp("a/l"), b"g", meta(0o777, 1000)).unwrap();
        s.mkdir(&wp("a/b"), meta(0o755, 2000)).unwrap();
        s.mkdir(&wp("a"), meta(0o750, 3000)).unwrap();
        // Before the commit: one hidden directory, everything inside it at
        // its final name (nothing to rename but the directory).
        let before = tree(t.path());
        assert_eq!(before.len(), 6, "{before:?}");
        let top = &before[0];
        assert!(top.starts_with(".rsb-tmp."), "{before:?}");
        for name in ["b", "b/f1", "b/f2", "g", "l"] {
            assert!(
                before.contains(&format!("{top}/{name}")),
                "{name}: {before:?}"
            );
        }
        let report = s.commit();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(report.committed.len(), 6);
        assert_eq!(
            tree(t.path()),
            ["a", "a/b", "a/b/f1", "a/b/f2", "a/g", "a/l"]
        );
        assert_eq!(std::fs::read(t.path().join("a/b/f2")).unwrap(), b"two");
        assert_eq!(
            std::fs::read_link(t.path().join("a/l")).unwrap(),
            Path::new("g")
        );
        use std::os::unix::fs::MetadataExt;
        let a = std::fs::metadata(t.path().join("a")).unwrap();
        assert_eq!((a.mode() & 0o7777, a.mtime()), (0o750, 3000));
        let f = std::fs::metadata(t.path().join("a/g")).unwrap();
        assert_eq!((f.mode() & 0o7777, f.mtime()), (0o640, 1000));
    }

    #[test]
    fn an_abort_leaves_nothing_of_a_new_directory() {
        let t = tempfile::tempdir().unwrap();
        let mut s = stager(t.path());
        file(&mut s, "a/b/f1", b"one");
        s.mkdir(&wp("a/b"), meta(0o755, 2000)).unwrap();
        s.abort();
        assert!(tree(t.path()).is_empty(), "{:?}", tree(t.path()));
    }

    /// Two connections of one client make the same new directory at once:
    /// the second commit merges its tree into the first's, the later
    /// version of a name both sent winning, as with any two commits.
    #[test]
    fn the_same_new_directory_from_two_connections_is_merged() {
        let t = tempfile::tempdir().unwrap();
        let mut one = stager(t.path());
        let mut two = stager(t.path());
        file(&mut one, "a/x", b"x");
        file(&mut one, "a/both", b"one's");
        file(&mut one, "a/d/only1", b"1");
        file(&mut two, "a/y", b"y");
        file(&mut two, "a/both", b"two's");
        file(&mut two, "a/d/only2", b"2");
        file(&mut two, "a/e/z", b"z");
        two.mkdir(&wp("a"), meta(0o755, 5000)).unwrap();
        assert!(one.commit().failures.is_empty());
        let report = two.commit();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(
            tree(t.path()),
            [
                "a",
                "a/both",
                "a/d",
                "a/d/only1",
                "a/d/only2",
                "a/e",
                "a/e/z",
                "a/x",
                "a/y"
            ]
        );
        assert_eq!(std::fs::read(t.path().join("a/both")).unwrap(), b"two's");
        use std::os::unix::fs::MetadataExt;
        let a = std::fs::metadata(t.path().join("a")).unwrap();
        assert_eq!((a.mode() & 0o7777, a.mtime()), (0o755, 5000));
    }

    /// A batch handed to a commit takes its new directory along; the next
    /// batch, staged before that commit, builds its own, merged in by its
    /// commit: nothing is lost, the directory's attributes (given with
    /// its entry, in the second batch) included, whichever commit runs
    /// first.
    #[test]
    fn a_new_directory_in_two_batches_is_merged_whole() {
        for late in [false, true] {
            let t = tempfile::tempdir().unwrap();
            let mut s = stager(t.path());
            file(&mut s, "a/b/f1", b"one");
            let mut batch = s.take_batch().unwrap().unwrap();
            file(&mut s, "a/b/f2", b"two");
            let set = Xattrs::from_pairs(vec![(b"user.test".to_vec(), b"1".to_vec())]).unwrap();
            s.set_xattrs(wp("a/b"), set);
            s.mkdir(&wp("a/b"), meta(0o755, 2000)).unwrap();
            s.mkdir(&wp("a"), meta(0o755, 3000)).unwrap();
            if late {
                // More of the next batch after the first is in.
                assert!(batch.commit().failures.is_empty());
            }
            // A new directory inside the one not in yet: built there,
            // reached through it (its entry opens it again).
            file(&mut s, "a/c/f3", b"three");
            s.mkdir(&wp("a/c"), meta(0o755, 4000)).unwrap();
            if !late {
                assert!(batch.commit().failures.is_empty());
            }
            let report = s.commit();
            assert!(report.failures.is_empty(), "{late}: {:?}", report.failures);
            assert_eq!(
                tree(t.path()),
                ["a", "a/b", "a/b/f1", "a/b/f2", "a/c", "a/c/f3"],
                "{late}"
            );
            let on = t.path().join("a/b");
            assert_eq!(
                crate::io::xattrs::read_path(&on)
                    .unwrap()
                    .map(|x| x.pairs().to_vec()),
                Some(vec![(b"user.test".to_vec(), b"1".to_vec())]),
                "{late}"
            );
        }
    }

    /// The same for a stand-in: a directory replacing a stored file, its
    /// entries in two batches. The second batch must not build a stand-in
    /// of its own, which would swap the first one's out, entries and all.
    #[test]
    fn the_next_batch_reaches_a_stand_in_its_commit_has_not_swapped_in() {
        for late in [false, true] {
            let t = tempfile::tempdir().unwrap();
            std::fs::write(t.path().join("a"), b"a file").unwrap();
            let mut s = stager(t.path());
            file(&mut s, "a/f1", b"one");
            let mut batch = s.take_batch().unwrap().unwrap();
            if late {
                assert!(batch.commit().failures.is_empty());
            }
            file(&mut s, "a/f2", b"two");
            s.mkdir(&wp("a"), meta(0o755, 3000)).unwrap();
            if !late {
                assert!(batch.commit().failures.is_empty());
            }
            let report = s.commit();
            assert!(report.failures.is_empty(), "{late}: {:?}", report.failures);
            assert_eq!(tree(t.path()), ["a", "a/f1", "a/f2"], "{late}");
        }
    }

    /// A stand-in whose swap fails takes what was put in place inside it
    /// along: those entries are failures of the commit, never reported
    /// committed (the client sends them again), and the stored file stays.
    #[test]
    fn entries_inside_a_stand_in_that_cannot_go_in_are_failures() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        std::fs::write(&a, b"a file").unwrap();
        let mut s = stager(t.path());
        file(&mut s, "a/f1", b"one");
        s.symlink(2, &wp("a/l"), b"f1", meta(0o777, 1000)).unwrap();
        s.mkdir(&wp("a"), meta(0o755, 3000)).unwrap();
        // An immutable file is renamed over by no one, root included.
        let chattr = |flag: &str| {
            std::process::Command::new("chattr")
                .arg(flag)
                .arg(&a)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !chattr("+i") {
            eprintln!("skipped: chattr +i needs root and a file system with the flag");
            return;
        }
        let report = s.commit();
        assert!(chattr("-i"));
        assert!(
            report
                .committed
                .iter()
                .all(|c| !super::under(&c.path, &wp("a"))),
            "{:?}",
            report.committed
        );
        let mut failed: Vec<(u32, String)> = report
            .failures
            .iter()
            .map(|f| (f.id, f.path.to_string()))
            .collect();
        failed.sort();
        failed.dedup();
        assert_eq!(
            failed,
            [
                (0, "/a".to_string()),
                (1, "/a/f1".into()),
                (2, "/a/l".into())
            ]
        );
        assert_eq!(tree(t.path()), ["a"]);
        assert_eq!(std::fs::read(&a).unwrap(), b"a file");
    }

    /// A resumable file makes its new directory visible before its
    /// partial is made there (a killed server would sweep it otherwise);
    /// the entries staged inside at their final names get temporary ones.
    #[test]
    fn a_resumable_file_makes_its_new_directory_visible_first() {
        let t = tempfile::tempdir().unwrap();
        let opts = StageOptions {
            keep_partials: true,
            ..StageOptions::default()
        };
        let mut s = Stager::new(Namespace::open_dir(t.path()).unwrap(), opts);
        file(&mut s, "a/small", b"small");
        assert!(!t.path().join("a").exists());
        let big = vec![7u8; crate::store::resume::RESUME_MIN as usize];
        let inc = s
            .begin_file(2, &wp("a/big"), meta(0o600, 1000), big.len() as u64)
            .unwrap();
        write_all(&inc.file, &big[..1000]);
        let now = tree(t.path());
        assert_eq!(now.len(), 3, "{now:?}");
        assert_eq!(now[0], "a");
        assert!(
            now.iter().all(|n| n == "a" || n.starts_with("a/.rsb-")),
            "{now:?}"
        );
        write_all(&s.incoming().unwrap().file, &big[1000..]);
        s.finish_file(crc32c::crc32c(&big)).unwrap();
        let report = s.commit();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(tree(t.path()), ["a", "a/big", "a/small"]);
        assert_eq!(std::fs::read(t.path().join("a/small")).unwrap(), b"small");
    }
}
