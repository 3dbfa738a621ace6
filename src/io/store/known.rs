//! What this process last saw of stored entries when it checked a
//! manifest, kept for as long as the kernel reports no change there, so the
//! check of an unchanged re-run answers from memory instead of an `lstat`
//! per entry (issue 14: the server's `fstatat` of each of 10,000 unchanged
//! files was a third of the CPU such a run took).
//!
//! Each stored directory whose entries a check looked at is watched (one
//! inotify descriptor for the process). Any event there forgets what was
//! seen in it: an entry created, removed, renamed in or out, written,
//! truncated, or its mode, owner, times or extended attributes changed
//! (`IN_ATTRIB`, which the metadata records rsb keeps in attributes raise
//! too), the directory itself moved or removed. The kernel queues an event
//! before the call that caused it returns, and every check reads the queue
//! empty first, so a change that was complete before a check began is
//! never answered from memory, whoever made it: this server's commits,
//! another process, an administrator's hand. A directory is also known by
//! its inode: one that another took the place of (an ancestor renamed, a
//! new tree published there) is looked at again.
//!
//! What is never kept: directories' own entries (an entry created inside a
//! subdirectory changes its mtime and tells only the subdirectory's
//! watchers), files with more than one name (a write through a name in
//! another directory reports there), and anything on a file system other
//! than ext2/3/4, XFS, btrfs, tmpfs and F2FS (on a network or FUSE file
//! system the changes of other machines raise no event here). The queue
//! overflowing forgets everything. Bounds: [`MAX_DIRS`] directories (each
//! a watch) and [`MAX_ENTRIES`] entries in all, the least recently checked
//! directory forgotten first.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::{Mutex, MutexGuard, OnceLock};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::sys::stat::{self, FileStat};

use crate::io::kind_of;
use crate::proto::{EntryKind, WirePath};
use crate::store::compare::StoredStat;
use crate::store::record::MetaRecord;

/// Directories known at most (each one inotify watch).
pub(super) const MAX_DIRS: usize = 2048;

/// Entries known at most, all directories together (about 150 bytes each).
pub(super) const MAX_ENTRIES: usize = 131_072;

/// Reads of the queue per drain at most (4 KiB each); past it everything
/// is forgotten, as after an overflow.
const MAX_READS: usize = 256;

/// Directories entered between two tries for an inotify descriptor when
/// none was had.
const RETRY_TICKS: u64 = 1024;

/// What a check saw of one stored entry: its `lstat` as the comparison
/// reads it, and what it read besides (the metadata record, a link's
/// target) when it needed them.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) stat: StoredStat,
    /// The record, when it was read (`Some(None)`: there is none); boxed,
    /// since most files have none to read.
    pub(super) rec: Option<Box<Option<MetaRecord>>>,
    /// A link's target, when it was read.
    pub(super) target: Option<Option<Vec<u8>>>,
}

/// One known directory.
struct Dir {
    /// Its device and inode.
    ino: (u64, u64),
    wd: WatchDescriptor,
    names: HashMap<Vec<u8>, Seen>,
    /// When a check last looked here (the known's tick).
    used: u64,
}

/// Everything this process knows (see the module docs).
pub(super) struct Known {
    /// `None`: inotify is not to be had; nothing is kept.
    inotify: Option<Inotify>,
    /// By namespace (its root's device and inode) and path.
    dirs: HashMap<((u64, u64), WirePath), Dir>,
    by_wd: HashMap<WatchDescriptor, ((u64, u64), WirePath)>,
    /// The directory last entered, whose entries are being checked.
    current: Option<((u64, u64), WirePath)>,
    entries: usize,
    tick: u64,
    /// When to try for an inotify descriptor again, after none was had.
    retry_at: u64,
}

/// The process's one [`Known`], locked.
pub(super) fn lock() -> MutexGuard<'static, Known> {
    static KNOWN: OnceLock<Mutex<Known>> = OnceLock::new();
    KNOWN
        .get_or_init(|| Mutex::new(Known::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// A nonblocking inotify descriptor, if the process can have one.
fn new_inotify() -> Option<Inotify> {
    Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()
}

/// Whether the file system of `fd` reports every change as an inotify
/// event: local ones, where every writer goes through this kernel.
fn reports_changes(fd: BorrowedFd<'_>) -> bool {
    use nix::sys::statfs::{
        BTRFS_SUPER_MAGIC, EXT4_SUPER_MAGIC, F2FS_SUPER_MAGIC, TMPFS_MAGIC, XFS_SUPER_MAGIC,
    };
    // ext2 and ext3 report ext4's magic number (one driver, one number).
    const LOCAL: [nix::sys::statfs::FsType; 5] = [
        EXT4_SUPER_MAGIC,
        XFS_SUPER_MAGIC,
        BTRFS_SUPER_MAGIC,
        TMPFS_MAGIC,
        F2FS_SUPER_MAGIC,
    ];
    nix::sys::statfs::fstatfs(fd).is_ok_and(|s| LOCAL.contains(&s.filesystem_type()))
}

impl Known {
    fn new() -> Known {
        Known {
            inotify: new_inotify(),
            dirs: HashMap::new(),
            by_wd: HashMap::new(),
            current: None,
            entries: 0,
            tick: 0,
            retry_at: 0,
        }
    }

    /// Reads every queued event and forgets the directories they concern
    /// (everything, when the queue overflowed or will not empty).
    pub(super) fn drain(&mut self) {
        for _ in 0..MAX_READS {
            let Some(ino) = self.inotify.as_ref() else {
                return;
            };
            match ino.read_events() {
                Ok(events) => {
                    for e in events {
                        if e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                            self.forget_all();
                            return;
                        }
                        let gone = e.mask.contains(AddWatchFlags::IN_IGNORED);
                        self.forget(e.wd, !gone);
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(_) => break,
            }
        }
        self.forget_all();
    }

    /// Forgets the directory of `wd`, removing its watch when `unwatch`
    /// (its later events, already queued, find nothing to forget).
    fn forget(&mut self, wd: WatchDescriptor, unwatch: bool) {
        let Some(key) = self.by_wd.remove(&wd) else {
            return;
        };
        if self.current.as_ref() == Some(&key) {
            self.current = None;
        }
        if let Some(d) = self.dirs.remove(&key) {
            self.entries = self.entries.saturating_sub(d.names.len());
        }
        if unwatch {
            if let Some(ino) = self.inotify.as_ref() {
                let _ = ino.rm_watch(wd);
            }
        }
    }

    /// Forgets everything, watches and queue included.
    fn forget_all(&mut self) {
        self.current = None;
        self.dirs.clear();
        self.by_wd.clear();
        self.entries = 0;
        // A new descriptor: the old one's watches and queued events go
        // with it.
        self.inotify = new_inotify();
    }

    /// Begins the entries of the stored directory `path` of namespace `ns`,
    /// open as `fd`: true when what is seen there can be kept (it is
    /// watched, the same inode as before if it was known).
    pub(super) fn enter(&mut self, ns: (u64, u64), path: &WirePath, fd: BorrowedFd<'_>) -> bool {
        self.current = None;
        self.tick += 1;
        if self.inotify.is_none() {
            // None to be had last time (descriptors or instances used
            // up): asked again now and then.
            if self.tick < self.retry_at {
                return false;
            }
            self.inotify = new_inotify();
            if self.inotify.is_none() {
                self.retry_at = self.tick + RETRY_TICKS;
                return false;
            }
        }
        let Ok(st) = stat::fstat(fd.as_raw_fd()) else {
            return false;
        };
        let key = (ns, path.clone());
        let ino = (st.st_dev, st.st_ino);
        if let Some(d) = self.dirs.get_mut(&key) {
            if d.ino == ino {
                d.used = self.tick;
                self.current = Some(key);
                return true;
            }
            let wd = d.wd;
            self.forget(wd, true);
        }
        if !reports_changes(fd) {
            return false;
        }
        if self.dirs.len() >= MAX_DIRS {
            self.evict();
        }
        let mask = AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        // The directory open here, not a path another may swap meanwhile.
        let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let Some(inotify) = self.inotify.as_ref() else {
            return false;
        };
        let Ok(wd) = inotify.add_watch(proc.as_str(), mask) else {
            return false;
        };
        if let Some(old) = self.by_wd.get(&wd).cloned() {
            // The same inode under another name (moved since): one entry.
            if let Some(d) = self.dirs.remove(&old) {
                self.entries = self.entries.saturating_sub(d.names.len());
            }
        }
        self.by_wd.insert(wd, key.clone());
        self.current = Some(key.clone());
        self.dirs.insert(
            key,
            Dir {
                ino,
                wd,
                names: HashMap::new(),
                used: self.tick,
            },
        );
        true
    }

    /// Forgets the least recently checked directory.
    fn evict(&mut self) {
        let oldest = self.dirs.values().min_by_key(|d| d.used).map(|d| d.wd);
        if let Some(wd) = oldest {
            self.forget(wd, true);
        }
    }

    /// What was seen of `name` in the directory last entered, if known.
    pub(super) fn seen(&mut self, name: &[u8]) -> Option<&Seen> {
        let seen = self.dirs.get(self.current.as_ref()?)?.names.get(name)?;
        Some(seen)
    }

    /// Keeps what a check just saw of `name` (`lstat` said `st`) in the
    /// directory it entered, if such an entry may be kept.
    pub(super) fn keep(&mut self, name: &[u8], st: &FileStat, seen: Seen) {
        if kind_of(st) == Some(EntryKind::Dir) || st.st_nlink != 1 || self.current.is_none() {
            return;
        }
        while self.entries >= MAX_ENTRIES && !self.dirs.is_empty() {
            self.evict();
        }
        let Some(d) = self.current.as_ref().and_then(|k| self.dirs.get_mut(k)) else {
            return;
        };
        if d.names.insert(name.to_vec(), seen).is_none() {
            self.entries += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use crate::io::store::stage::tests::{meta, stager, wp};
    use crate::io::store::Stager;
    use crate::proto::{EntryKind, ManifestEntry, Meta};

    fn entry(path: &str, meta: Meta, size: u64) -> ManifestEntry {
        ManifestEntry {
            kind: EntryKind::File,
            path: wp(path),
            meta,
            size,
            target: Vec::new(),
            rdev: 0,
            xattrs: 0,
        }
    }

    fn store(s: &mut Stager, path: &str, data: &[u8]) {
        let inc = s
            .begin_file(1, &wp(path), meta(0o644, 1000), data.len() as u64)
            .unwrap();
        crate::io::store::stage::tests::write_all(&inc.file, data);
        s.finish_file(crc32c::crc32c(data)).unwrap();
        assert!(s.commit().failures.is_empty());
    }

    /// Whether the file system of `dir` is one whose entries are kept (the
    /// tests that count what was answered from memory need it).
    fn kept_on(dir: &std::path::Path) -> bool {
        let d = std::fs::File::open(dir).unwrap();
        let ok = super::reports_changes(std::os::fd::AsFd::as_fd(&d));
        if !ok {
            eprintln!(
                "skipped: {} is on a file system whose changes raise no inotify event",
                dir.display()
            );
        }
        ok
    }

    /// (needed whole, needed for metadata, answered from memory) of each
    /// of `entries`' check.
    fn check(s: &Stager, entries: &[ManifestEntry]) -> (Vec<bool>, Vec<bool>, usize) {
        let c = s.check(entries);
        let n = entries.len();
        (
            (0..n).map(|i| c.need.get(i)).collect(),
            (0..n).map(|i| c.meta.get(i)).collect(),
            c.known,
        )
    }

    /// The check of an unchanged re-run answers from memory; any change
    /// in the directory, made by anyone, is looked at again.
    #[test]
    fn a_second_check_answers_from_memory_until_anything_changes_there() {
        let t = tempfile::tempdir().unwrap();
        if !kept_on(t.path()) {
            return;
        }
        let mut s = stager(t.path());
        store(&mut s, "d/a", b"aaa");
        store(&mut s, "d/b", b"bbbb");
        let entries = [
            entry("d/a", meta(0o644, 1000), 3),
            entry("d/b", meta(0o644, 1000), 4),
        ];
        let none = vec![false, false];
        assert_eq!(check(&s, &entries), (none.clone(), none.clone(), 0));
        assert_eq!(check(&s, &entries), (none.clone(), none.clone(), 2));
        // Another connection's stager answers from the same memory.
        assert_eq!(
            check(&stager(t.path()), &entries),
            (none.clone(), none.clone(), 2)
        );
        // A mode changed by hand: seen at once, everything looked at again.
        let a = t.path().join("d/a");
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(check(&s, &entries), (none.clone(), vec![true, false], 0));
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(check(&s, &entries), (none.clone(), none.clone(), 0));
        assert_eq!(check(&s, &entries), (none.clone(), none.clone(), 2));
        // Written in place, its mtime put back: the size tells.
        std::fs::write(&a, b"aaaaa").unwrap();
        let f = std::fs::File::options().write(true).open(&a).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::new(1000, 123_456_789))
            .unwrap();
        drop(f);
        assert_eq!(check(&s, &entries), (vec![true, false], none.clone(), 0));
        // Removed, and a name added beside: looked at again.
        std::fs::write(&a, b"aaa").unwrap();
        assert_eq!(check(&s, &entries).2, 0);
        std::fs::remove_file(t.path().join("d/b")).unwrap();
        assert_eq!(check(&s, &entries), (vec![true, true], none.clone(), 0));
    }

    /// A directory another took the place of (its parent renamed away and
    /// a new one made) raises no event of its own: known by its inode, it
    /// is looked at again.
    #[test]
    fn a_directory_that_another_replaced_is_looked_at_again() {
        let t = tempfile::tempdir().unwrap();
        if !kept_on(t.path()) {
            return;
        }
        let mut s = stager(t.path());
        store(&mut s, "p/d/f", b"old");
        let entries = [entry("p/d/f", meta(0o644, 1000), 3)];
        check(&s, &entries);
        assert_eq!(check(&s, &entries).2, 1);
        std::fs::rename(t.path().join("p"), t.path().join("q")).unwrap();
        std::fs::create_dir_all(t.path().join("p/d")).unwrap();
        std::fs::write(t.path().join("p/d/f"), b"new one").unwrap();
        assert_eq!(check(&s, &entries), (vec![true], vec![false], 0));
    }

    /// A file with another name elsewhere can be written through that
    /// name, which reports to that directory only: never answered from
    /// memory. Directories' own entries neither.
    #[test]
    fn files_with_two_names_and_directories_are_always_looked_at() {
        let t = tempfile::tempdir().unwrap();
        if !kept_on(t.path()) {
            return;
        }
        let mut s = stager(t.path());
        store(&mut s, "d/f", b"ffff");
        store(&mut s, "d/sub/g", b"g");
        std::fs::create_dir(t.path().join("e")).unwrap();
        std::fs::hard_link(t.path().join("d/f"), t.path().join("e/f")).unwrap();
        let sub = nix::sys::stat::lstat(&t.path().join("d/sub")).unwrap();
        let mut dir = entry("d/sub", crate::io::meta_of(&sub), 0);
        dir.kind = EntryKind::Dir;
        let entries = [entry("d/f", meta(0o644, 1000), 4), dir];
        check(&s, &entries);
        let (need, _, known) = check(&s, &entries);
        assert_eq!((need[0], known), (false, 0));
    }
}
