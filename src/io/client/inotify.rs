//! Watch mode's eyes: one inotify descriptor watching every directory of the
//! watched trees, and what its events mean as changes for the pure
//! [`Debouncer`]. A source of the client's one loop
//! ([`super::event_loop`]): the loop polls the descriptor and calls
//! [`Watcher::drain`] whenever it is readable, also while a batch is being
//! sent, so the kernel's queue does not fill during a long transfer.
//!
//! Each watched directory is a [`Node`]: its parent's watch and its own name
//! (a root holds its whole path), so a renamed directory's subtree follows
//! it by one update, and memory per directory is a few dozen bytes plus its
//! name. What the events mean:
//! - a name created, written, closed after writing, or whose attributes
//!   changed: that entry ([`Change::Entry`]);
//! - a directory created or moved in: its watches are set up at once (its
//!   subdirectories too), then the whole of it is backed up
//!   ([`Change::Tree`]), which also finds what was written into it before
//!   its watch existed;
//! - a name deleted or moved away: its directory's listing
//!   ([`Change::Listing`]), read whole, so the server moves what is gone into
//!   history; a directory moved away keeps its watch only if it was moved
//!   within the watched trees (its new name re-adds it), else the watch is
//!   dropped;
//! - the kernel's queue overflowed (`IN_Q_OVERFLOW`): every root is
//!   rescanned; no watch left (`ENOSPC`): the directory that could not be
//!   watched is rescanned now and by every periodic rescan, with a warning
//!   naming `fs.inotify.max_user_watches`.
//!
//! Excluded entries are never watched and their events ignored; neither is
//! the store of a server on this machine (its writes would feed back).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use nix::sys::stat::Mode;

use crate::client::watch::{Change, Debouncer, Noted};

/// Reads of the descriptor per [`Watcher::drain`] at most (4 KiB each);
/// past it the loop comes back without waiting.
const READS_PER_DRAIN: usize = 1024;

/// What a watched directory reports.
fn dir_mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
        | AddWatchFlags::IN_DONT_FOLLOW
        // Events of a name unlinked while open are not reported (nix has no
        // constant for it).
        | AddWatchFlags::from_bits_retain(nix::libc::IN_EXCL_UNLINK)
}

/// One watched directory.
#[derive(Debug)]
struct Node {
    /// The watch of the directory holding it; `None` for a root.
    parent: Option<WatchDescriptor>,
    /// Its name in its parent; a root's whole path.
    name: Box<[u8]>,
    /// Its inode number, to tell whether a moved directory is still where
    /// its path says.
    ino: u64,
    /// The watched root it is under.
    root: u32,
    /// The set-up round that last saw it (a rescan drops the unseen).
    round: u32,
}

/// Says whether an entry is left out: `(root index, absolute path, is a
/// directory)`.
pub type Excluded = Box<dyn Fn(usize, &[u8], bool) -> bool>;

/// Directories watched, and the first problem met, by [`Watcher::watch_root`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SetUp {
    /// Directories watched (new or already watched).
    pub dirs: u64,
}

/// The watches of every root, their nodes, and the changes they saw.
pub struct Watcher {
    fd: Inotify,
    nodes: HashMap<WatchDescriptor, Node>,
    /// The changes seen, for the driver to take in batches.
    pub debouncer: Debouncer,
    /// Each root's own watch; `None` while the root is gone.
    root_watch: Vec<Option<WatchDescriptor>>,
    excluded: Excluded,
    /// `(st_dev, st_ino)` of a directory never watched (a local server's
    /// store), and whether to stay on each root's file system.
    store: Option<(u64, u64)>,
    one_file_system: bool,
    round: u32,
    /// Out of watches since the last successful set-up (one warning).
    exhausted: bool,
    /// The last drain stopped before the descriptor was empty.
    more: bool,
}

impl Watcher {
    /// A watcher for `roots` (absolute paths) with nothing watched yet.
    pub fn new(
        debouncer: Debouncer,
        excluded: Excluded,
        store: Option<(u64, u64)>,
        one_file_system: bool,
    ) -> Result<Watcher, String> {
        let fd = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| format!("inotify: {}", e.desc()))?;
        let n = debouncer.roots().len();
        Ok(Watcher {
            fd,
            nodes: HashMap::new(),
            debouncer,
            root_watch: vec![None; n],
            excluded,
            store,
            one_file_system,
            round: 0,
            exhausted: false,
            more: false,
        })
    }

    /// The descriptor, for the loop's poll.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_fd().as_raw_fd()
    }

    /// Directories watched now.
    pub fn watched(&self) -> usize {
        self.nodes.len()
    }

    /// The root `root` has its watch (it exists and is a directory).
    pub fn is_watching(&self, root: usize) -> bool {
        self.root_watch.get(root).is_some_and(Option::is_some)
    }

    /// Learns where the store of a server on this machine is (known only
    /// once connected): its watches, if any, are dropped by the next
    /// set-up. True when it was not known before.
    pub fn learn_store(&mut self, store: Option<(u64, u64)>) -> bool {
        let new = store.is_some() && self.store != store;
        if new {
            self.store = store;
        }
        new
    }

    /// The last drain left events in the descriptor: drain again before
    /// waiting.
    pub fn has_more(&self) -> bool {
        self.more
    }

    /// Sets up (or refreshes) the watches of root `root` and every
    /// directory beneath it; watches of that root not seen again are
    /// dropped (a rescan's clean-up).
    pub fn watch_root(&mut self, root: usize, now: Instant) -> SetUp {
        self.round = self.round.wrapping_add(1);
        // Warned again if still out of watches.
        self.exhausted = false;
        let Some(path) = self.debouncer.roots().get(root).cloned() else {
            return SetUp::default();
        };
        let root_dev = nix::sys::stat::lstat(OsStr::from_bytes(&path))
            .ok()
            .map(|st| st.st_dev);
        let wd = self.watch_tree(
            root,
            PathBuf::from(OsString::from_vec(path)),
            None,
            root_dev,
            now,
        );
        if let Some(slot) = self.root_watch.get_mut(root) {
            *slot = wd;
        }
        let round = self.round;
        let stale: Vec<WatchDescriptor> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.root as usize == root && n.round != round)
            .map(|(wd, _)| *wd)
            .collect();
        for wd in stale {
            self.forget(wd);
        }
        SetUp {
            dirs: self
                .nodes
                .values()
                .filter(|n| n.root as usize == root)
                .count() as u64,
        }
    }

    /// Watches `dir` and the directories beneath it (depth first, by path);
    /// returns `dir`'s own watch.
    fn watch_tree(
        &mut self,
        root: usize,
        dir: PathBuf,
        parent: Option<WatchDescriptor>,
        root_dev: Option<u64>,
        now: Instant,
    ) -> Option<WatchDescriptor> {
        let top = self.watch_one(root, &dir, parent, None, now)?;
        let mut stack: Vec<(PathBuf, WatchDescriptor)> = vec![(dir, top)];
        while let Some((path, wd)) = stack.pop() {
            for (name, ino) in self.subdirs(root, &path, root_dev) {
                let child = path.join(OsStr::from_bytes(&name));
                if let Some(cwd) = self.watch_one(root, &child, Some(wd), Some(ino), now) {
                    stack.push((child, cwd));
                }
            }
        }
        Some(top)
    }

    /// One `inotify_add_watch`, and its node (a directory watched already
    /// keeps its watch and takes its new place). `ino`: its inode number
    /// as its directory's listing gave it (else it is looked up).
    fn watch_one(
        &mut self,
        root: usize,
        dir: &Path,
        parent: Option<WatchDescriptor>,
        ino: Option<u64>,
        now: Instant,
    ) -> Option<WatchDescriptor> {
        let wd = match self.fd.add_watch(dir, dir_mask()) {
            Ok(wd) => wd,
            Err(Errno::ENOSPC) => {
                self.out_of_watches(root, dir, now);
                return None;
            }
            // Gone already, or replaced by something else: its parent's
            // events say so.
            Err(Errno::ENOENT | Errno::ENOTDIR) => return None,
            Err(e) => {
                log::warn!(
                    "watch: cannot watch {}: {}; its changes are found by the rescans",
                    dir.display(),
                    e.desc()
                );
                return None;
            }
        };
        let ino = ino.unwrap_or_else(|| nix::sys::stat::lstat(dir).map_or(0, |s| s.st_ino));
        let name: Box<[u8]> = match parent {
            None => dir.as_os_str().as_bytes().into(),
            Some(_) => dir
                .file_name()
                .map_or_else(|| Box::from(&b""[..]), |n| n.as_bytes().into()),
        };
        self.nodes.insert(
            wd,
            Node {
                parent,
                name,
                ino,
                root: u32::try_from(root).unwrap_or(u32::MAX),
                round: self.round,
            },
        );
        Some(wd)
    }

    /// The subdirectories of `dir` to watch: not excluded, not the store,
    /// not on another file system with `-o`.
    fn subdirs(&self, root: usize, dir: &Path, root_dev: Option<u64>) -> Vec<(Vec<u8>, u64)> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let Ok(mut d) = Dir::open(dir, flags, Mode::empty()) else {
            return Vec::new();
        };
        let fd = d.as_raw_fd();
        let check_dev = self.store.is_some() || self.one_file_system;
        let mut out = Vec::new();
        for entry in d.iter().flatten() {
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let is_dir = match entry.file_type() {
                Some(Type::Directory) => true,
                Some(_) => false,
                None => nix::sys::stat::fstatat(Some(fd), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|s| s.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR),
            };
            if !is_dir {
                continue;
            }
            let mut full = dir.as_os_str().as_bytes().to_vec();
            full.push(b'/');
            full.extend_from_slice(name);
            if (self.excluded)(root, &full, true) {
                continue;
            }
            if check_dev {
                let Ok(st) = nix::sys::stat::fstatat(Some(fd), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                else {
                    continue;
                };
                if self.store == Some((st.st_dev, st.st_ino)) {
                    continue;
                }
                if self.one_file_system && root_dev.is_some_and(|d| d != st.st_dev) {
                    continue;
                }
            }
            out.push((name.to_vec(), entry.ino()));
        }
        out
    }

    /// No watch left: the directory is rescanned instead, and the user is
    /// told (once until watches can be made again) what to raise.
    fn out_of_watches(&mut self, root: usize, dir: &Path, now: Instant) {
        if !self.exhausted {
            self.exhausted = true;
            log::warn!(
                "watch: cannot watch {}: no inotify watch left (fs.inotify.max_user_watches is {}, {} in use here); \
                 what is not watched is found by rescans: raise it with `sysctl fs.inotify.max_user_watches=N`",
                dir.display(),
                read_proc("/proc/sys/fs/inotify/max_user_watches"),
                self.nodes.len()
            );
        }
        self.debouncer
            .note(root, dir.as_os_str().as_bytes(), Change::Tree, now);
    }

    /// Drops a watch and its node.
    fn forget(&mut self, wd: WatchDescriptor) {
        if self.nodes.remove(&wd).is_some() {
            let _ = self.fd.rm_watch(wd);
        }
        for slot in &mut self.root_watch {
            if *slot == Some(wd) {
                *slot = None;
            }
        }
    }

    /// Drops every watch whose chain of parents is broken (beneath a
    /// directory that left the watched trees): one pass over the nodes.
    fn forget_orphans(&mut self) {
        let orphans: Vec<WatchDescriptor> = self
            .nodes
            .keys()
            .filter(|wd| self.path_of(**wd).is_none())
            .copied()
            .collect();
        for wd in orphans {
            self.forget(wd);
        }
    }

    /// Looks again for each root that is gone (deleted, moved away, or
    /// never there): one that is a directory again is watched and backed
    /// up whole. True if any root is still gone.
    pub fn revive_roots(&mut self, now: Instant) -> bool {
        let mut gone = false;
        for r in 0..self.root_watch.len() {
            if self.is_watching(r) {
                continue;
            }
            let back = self.debouncer.roots().get(r).is_some_and(|p| {
                nix::sys::stat::lstat(OsStr::from_bytes(p))
                    .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR)
            });
            if back {
                self.watch_root(r, now);
            }
            if self.is_watching(r) {
                log::warn!(
                    "watch: {} is back: watching it again",
                    String::from_utf8_lossy(self.debouncer.roots().get(r).map_or(&[][..], |v| v))
                );
                self.debouncer.rescan(r, now);
            } else {
                gone = true;
            }
        }
        gone
    }

    /// The path of a watched directory; `None` when its chain of parents
    /// is broken (an ancestor was dropped: it is no longer watched).
    fn path_of(&self, wd: WatchDescriptor) -> Option<Vec<u8>> {
        let mut names: Vec<&[u8]> = Vec::new();
        let mut at = wd;
        for _ in 0..4096 {
            let node = self.nodes.get(&at)?;
            names.push(&node.name);
            match node.parent {
                Some(p) => at = p,
                None => {
                    let mut path = Vec::new();
                    for (i, n) in names.iter().rev().enumerate() {
                        if i > 0 && path.last() != Some(&b'/') {
                            path.push(b'/');
                        }
                        path.extend_from_slice(n);
                    }
                    return Some(path);
                }
            }
        }
        None
    }

    /// Reads the events waiting and notes what they mean. Stops after
    /// [`READS_PER_DRAIN`] reads ([`Self::has_more`] then says so).
    pub fn drain(&mut self, now: Instant) {
        self.more = false;
        for _ in 0..READS_PER_DRAIN {
            match self.fd.read_events() {
                Ok(events) if events.is_empty() => return,
                Ok(events) => {
                    for ev in events {
                        self.handle(ev, now);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(e) => {
                    log::warn!("watch: reading inotify events: {}", e.desc());
                    return;
                }
            }
        }
        self.more = true;
    }

    /// What one event means.
    fn handle(&mut self, ev: InotifyEvent, now: Instant) {
        let m = ev.mask;
        if m.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            log::warn!(
                "watch: the kernel's queue of file events overflowed (fs.inotify.max_queued_events is {}): \
                 rescanning everything watched",
                read_proc("/proc/sys/fs/inotify/max_queued_events")
            );
            // The events lost may have made or renamed directories: the
            // watches are set up again (a known directory keeps its watch
            // and takes its current name), then everything is rescanned.
            for r in 0..self.root_watch.len() {
                self.watch_root(r, now);
                self.debouncer.rescan(r, now);
            }
            return;
        }
        let Some(node) = self.nodes.get(&ev.wd) else {
            return;
        };
        let root = node.root as usize;
        let ino = node.ino;
        let is_root = node.parent.is_none();
        if m.contains(AddWatchFlags::IN_IGNORED) {
            // The kernel dropped the watch (the directory is gone).
            self.nodes.remove(&ev.wd);
            if is_root {
                self.root_gone(root);
            }
            return;
        }
        let Some(dir) = self.path_of(ev.wd) else {
            // Under a directory that left the watched trees.
            self.forget(ev.wd);
            return;
        };
        match ev.name {
            Some(name) => self.handle_child(root, ev.wd, dir, name.as_bytes(), m, now),
            None => {
                if m.contains(AddWatchFlags::IN_ATTRIB) {
                    self.note(root, &dir, Change::Entry, now);
                }
                if m.contains(AddWatchFlags::IN_MOVE_SELF) {
                    // Moved within the watched trees, its new name re-added
                    // it before this event came; anywhere else it is no
                    // longer where its path says.
                    let here = nix::sys::stat::lstat(OsStr::from_bytes(&dir))
                        .is_ok_and(|st| st.st_ino == ino);
                    if !here {
                        self.forget(ev.wd);
                        if is_root {
                            self.root_gone(root);
                        } else {
                            // Its subtree left with it.
                            self.forget_orphans();
                        }
                    }
                }
                if m.contains(AddWatchFlags::IN_DELETE_SELF) && is_root {
                    self.root_gone(root);
                }
            }
        }
    }

    /// An event about the entry `name` in the watched directory `dir`.
    fn handle_child(
        &mut self,
        root: usize,
        wd: WatchDescriptor,
        mut dir: Vec<u8>,
        name: &[u8],
        m: AddWatchFlags,
        now: Instant,
    ) {
        let is_dir = m.contains(AddWatchFlags::IN_ISDIR);
        let dir_len = dir.len();
        if dir.last() != Some(&b'/') {
            dir.push(b'/');
        }
        dir.extend_from_slice(name);
        let path = dir;
        if (self.excluded)(root, &path, is_dir) {
            return;
        }
        let parent_dir = &path[..dir_len];
        if m.intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM) {
            let parent_dir = parent_dir.to_vec();
            self.note(root, &parent_dir, Change::Listing, now);
        }
        if m.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO) && is_dir {
            // Watched before it is read: what is written into it from now
            // on is an event, what was before is found by its walk.
            let local = PathBuf::from(OsString::from_vec(path.clone()));
            let root_dev = self.root_dev(root);
            self.watch_tree(root, local, Some(wd), root_dev, now);
            self.note(root, &path, Change::Tree, now);
            return;
        }
        if m.intersects(
            AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_MODIFY
                | AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_ATTRIB,
        ) {
            self.note(root, &path, Change::Entry, now);
        }
    }

    /// The device of root `root`, with `-o` (else not needed).
    fn root_dev(&self, root: usize) -> Option<u64> {
        if !self.one_file_system {
            return None;
        }
        let path = self.debouncer.roots().get(root)?;
        nix::sys::stat::lstat(OsStr::from_bytes(path))
            .ok()
            .map(|s| s.st_dev)
    }

    fn note(&mut self, root: usize, path: &[u8], change: Change, now: Instant) {
        if self.debouncer.note(root, path, change, now) == Noted::Collapsed {
            let shown = self
                .debouncer
                .roots()
                .get(root)
                .map(|r| String::from_utf8_lossy(r).into_owned())
                .unwrap_or_default();
            log::warn!("watch: too many changes pending under {shown}: it is rescanned whole");
        }
    }

    /// A watched root was deleted or moved away: its watches go; the server
    /// keeps its last backup; the rescans look for it again.
    fn root_gone(&mut self, root: usize) {
        if let Some(Some(wd)) = self.root_watch.get(root).copied() {
            self.forget(wd);
        }
        if let Some(slot) = self.root_watch.get_mut(root) {
            *slot = None;
        }
        let stale: Vec<WatchDescriptor> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.root as usize == root)
            .map(|(wd, _)| *wd)
            .collect();
        for wd in stale {
            self.forget(wd);
        }
        let shown = self
            .debouncer
            .roots()
            .get(root)
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .unwrap_or_default();
        log::warn!(
            "watch: {shown} is gone (the server keeps its last backup); watching it again once it is back (looked for every few seconds)"
        );
    }
}

/// A number in a `/proc` file, or `?`.
fn read_proc(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests;
