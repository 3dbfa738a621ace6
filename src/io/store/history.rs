//! Keeping what a commit replaces: the moves into a namespace's history
//! (layout and names: [`crate::store::history`]) and the repair of a
//! batch a dead process left pending.
//!
//! A commit that replaces an entry first puts the old one into its
//! pending batch, then the new one in its place, and publishes the batch
//! (one rename) once every entry is in place, before its final sync:
//!
//! * a file, symlink or special file is hard-linked into the batch
//!   (`linkat`, one call, no data copied), then the new entry is renamed
//!   over it: the name holds the old or the new version at every instant,
//!   and the old inode lives on in the batch;
//! * a directory (replaced by a file or link) is renamed into the batch,
//!   then the new entry is renamed into the free name.
//!
//! After a crash, [`recover`] walks each pending batch of a dead process
//! before the namespace's first commit of this run: an entry whose path
//! still holds the same inode was never replaced (its link is dropped); a
//! directory whose path is empty was moved but its replacement never
//! arrived (it is moved back); anything else was replaced, and stays. The
//! batch is then published under its own time. So each path has either
//! its old version current and no new history entry, or the new one with
//! the old in history, never neither and never both twice.
//!
//! Commits of one namespace keep their history one at a time
//! ([`lock`]): two interleaved commits of one path would otherwise both
//! keep the older version and neither the one between.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags};
use nix::sys::stat;
use nix::unistd;

use super::beneath::{entries_at, open_dir_at, open_or_make_dir, os, Beneath};
use super::tmp;
use crate::io::error::FsError;
use crate::proto::WirePath;
use crate::store::history::{
    batch_name, index_bytes, parse_pending, pending_name, HISTORY_DIR, INDEX_NAME,
};

/// Mode of the directories made to hold kept entries.
const HOLDER_MODE: u32 = 0o700;

/// Directories of a batch a keeper holds open, from the batch's own down
/// ([`Keeper::holder`]): a path deeper than that is opened from the
/// deepest one each time it is not the last one kept into.
const CHAIN: usize = 32;

/// The history directory of a namespace, as a path beneath it.
pub(super) fn history_root() -> WirePath {
    // HISTORY_DIR is one valid name: this cannot fail.
    WirePath::new(HISTORY_DIR.to_vec()).unwrap_or_else(|_| WirePath::root())
}

/// The batch of one commit: made on the first entry it keeps.
pub(super) struct Keeper {
    /// Whether the namespace keeps history at all (the server's store).
    enabled: bool,
    /// The pending batch's path beneath the namespace and the name it is
    /// published under, once made.
    pending: Option<(WirePath, Vec<u8>)>,
    /// The batch's directories open from its own down to the one last
    /// kept into (at most [`CHAIN`]), each with its name (the batch's own
    /// with none): deletions in sibling directories make each holder
    /// with one `mkdirat` beneath the parent they share.
    chain: Vec<(Vec<u8>, OwnedFd)>,
    /// The directory last kept into when it is deeper than the chain.
    deep: Option<(WirePath, OwnedFd)>,
    /// Directories of the batch made or written, for the fsync mode.
    written: HashSet<WirePath>,
    /// The paths of the entries kept, for the batch's index.
    kept: Vec<WirePath>,
}

impl Keeper {
    /// A keeper for one commit; a disabled one keeps nothing.
    pub(super) fn new(enabled: bool) -> Keeper {
        Keeper {
            enabled,
            pending: None,
            chain: Vec::new(),
            deep: None,
            written: HashSet::new(),
            kept: Vec::new(),
        }
    }

    /// Whether it keeps anything.
    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }

    /// How many entries it kept.
    pub(super) fn kept(&self) -> u64 {
        self.kept.len() as u64
    }

    /// Notes that the entry `name` of `parent` was kept.
    fn note(&mut self, parent: &WirePath, name: &[u8]) {
        if let Ok(p) = parent.join(name) {
            self.kept.push(p);
        }
    }

    /// Forgets the note of `name` of `parent` (its keeping was undone).
    fn unnote(&mut self, parent: &WirePath, name: &[u8]) {
        if let Ok(p) = parent.join(name) {
            if let Some(i) = self.kept.iter().rposition(|k| *k == p) {
                self.kept.remove(i);
            }
        }
    }

    /// The batch's directory for entries of `parent`, made as needed.
    fn holder(&mut self, tree: &Beneath, parent: &WirePath) -> Result<RawFd, Errno> {
        if self.pending.is_none() {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
            let batch = batch_name(secs, now.subsec_nanos());
            let pending = history_root()
                .join(&pending_name(tmp::salt(), &batch))
                .map_err(|_| Errno::ENAMETOOLONG)?;
            self.pending = Some((pending, batch));
        }
        let Some((pending, _)) = &self.pending else {
            return Err(Errno::EINVAL);
        };
        let path = join_all(pending, parent)?;
        let comps: Vec<&[u8]> = parent.components().collect();
        let in_chain = comps.len() < CHAIN;
        if !in_chain {
            if let Some((p, fd)) = &self.deep {
                if *p == path {
                    return Ok(fd.as_raw_fd());
                }
            }
        }
        if self.chain.is_empty() {
            let root = self.make_holder(tree, pending)?;
            self.chain.push((Vec::new(), root));
        }
        // What the chain shares with the path: its batch directory (the
        // first) and the components that are the same.
        let shared = 1 + self.chain[1..]
            .iter()
            .zip(&comps)
            .take_while(|((name, _), comp)| name.as_slice() == **comp)
            .count();
        let reached = if in_chain { comps.len() + 1 } else { CHAIN };
        if shared == reached && self.chain.len() == reached && in_chain {
            return Ok(self.chain[shared - 1].1.as_raw_fd());
        }
        self.chain.truncate(shared);
        for comp in &comps[shared - 1..reached - 1] {
            let Some((_, at)) = self.chain.last() else {
                return Err(Errno::EINVAL);
            };
            let fd = open_or_make_holder(at.as_raw_fd(), comp)?;
            self.chain.push((comp.to_vec(), fd));
        }
        let raw = if in_chain {
            self.deep = None;
            self.chain.last().map(|(_, fd)| fd.as_raw_fd())
        } else {
            let mut cur: Option<OwnedFd> = None;
            for comp in &comps[CHAIN - 1..] {
                let at = match (&cur, self.chain.last()) {
                    (Some(fd), _) | (None, Some((_, fd))) => fd.as_raw_fd(),
                    (None, None) => return Err(Errno::EINVAL),
                };
                cur = Some(open_or_make_holder(at, comp)?);
            }
            let raw = cur.as_ref().map(|fd| fd.as_raw_fd());
            self.deep = cur.map(|fd| (path.clone(), fd));
            raw
        };
        let mut cur = Some(path);
        while let Some(p) = cur {
            cur = p.parent();
            if !self.written.insert(p) {
                break;
            }
        }
        raw.ok_or(Errno::EINVAL)
    }

    /// Makes (and opens) the batch directory `path`; the first one of a
    /// namespace makes the history directory too, and gives the
    /// namespace's root its mtime back (it is a backed-up directory).
    fn make_holder(&self, tree: &Beneath, path: &WirePath) -> Result<OwnedFd, Errno> {
        let errno = |e: FsError| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw);
        let first = match tree.dir(&history_root()) {
            Ok(_) => None,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => {
                stat::fstat(tree.root_fd()).ok()
            }
            Err(e) => return Err(errno(e)),
        };
        let fd = tree.dir_create(path, HOLDER_MODE).map_err(errno)?;
        if let Some(st) = first {
            let mtime = nix::sys::time::TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
            let omit = nix::sys::time::TimeSpec::new(0, nix::libc::UTIME_OMIT);
            let _ = stat::futimens(tree.root_fd(), &omit, &mtime);
        }
        Ok(fd)
    }

    /// Drops the link [`Keeper::link`] made for `name` of `parent`, its
    /// replacement having failed.
    pub(super) fn drop_link(&mut self, tree: &Beneath, parent: &WirePath, name: &[u8]) {
        if let Ok(holder) = self.holder(tree, parent) {
            if unistd::unlinkat(Some(holder), os(name), unistd::UnlinkatFlags::NoRemoveDir).is_ok()
            {
                self.unnote(parent, name);
            }
        }
    }

    /// Keeps the file, symlink or special file `name` of `dir` (the
    /// directory `parent`) by linking it into the batch; nothing there is
    /// no error.
    pub(super) fn link(
        &mut self,
        tree: &Beneath,
        dir: RawFd,
        parent: &WirePath,
        name: &[u8],
    ) -> Result<(), Errno> {
        if !self.enabled {
            return Ok(());
        }
        let holder = self.holder(tree, parent)?;
        match unistd::linkat(
            Some(dir),
            os(name),
            Some(holder),
            os(name),
            AtFlags::empty(),
        ) {
            Ok(()) => {
                self.note(parent, name);
                test_history_delay();
                Ok(())
            }
            // Nothing there; or this batch kept a version of that path
            // already (the older one: it stays).
            Err(Errno::ENOENT | Errno::EEXIST) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Keeps the directory `name` of `dir` by moving it into the batch;
    /// [`Keeper::put_back`] undoes it.
    pub(super) fn take(
        &mut self,
        tree: &Beneath,
        dir: RawFd,
        parent: &WirePath,
        name: &[u8],
    ) -> Result<(), Errno> {
        let holder = self.holder(tree, parent)?;
        fcntl::renameat(Some(dir), os(name), Some(holder), os(name))?;
        self.note(parent, name);
        test_history_delay();
        Ok(())
    }

    /// Moves a directory [`Keeper::take`] kept back to its name, its
    /// replacement having failed.
    pub(super) fn put_back(
        &mut self,
        tree: &Beneath,
        dir: RawFd,
        parent: &WirePath,
        name: &[u8],
    ) -> Result<(), Errno> {
        let holder = self.holder(tree, parent)?;
        fcntl::renameat(Some(holder), os(name), Some(dir), os(name))?;
        self.unnote(parent, name);
        Ok(())
    }

    /// Publishes the batch under its time (or removes it when it kept
    /// nothing); in the fsync mode its directories are fsynced first.
    pub(super) fn publish(&mut self, tree: &Beneath, fsync: bool) -> Result<(), FsError> {
        self.chain.clear();
        self.deep = None;
        let Some((pending, batch)) = self.pending.take() else {
            return Ok(());
        };
        let written = std::mem::take(&mut self.written);
        let shown = || tree.show(&pending);
        let kept = std::mem::take(&mut self.kept);
        if kept.is_empty() {
            // Only holders were made (the entries were gone): remove them.
            if let Ok((dir, name)) = tree.parent(&pending) {
                let _ = super::beneath::remove_tree(dir.as_raw_fd(), name, 0);
            }
            return Ok(());
        }
        let at = tree.dir(&pending)?;
        write_index(at.as_raw_fd(), &kept, fsync)
            .map_err(|e| FsError::errno("write", shown(), e))?;
        if fsync {
            for p in &written {
                let fd = tree.dir(p)?;
                unistd::fsync(fd.as_raw_fd())
                    .map_err(|e| FsError::errno("fsync", tree.show(p), e))?;
            }
        }
        let root = tree.dir(&history_root())?;
        publish_as(root.as_raw_fd(), &pending, &batch)
            .map_err(|e| FsError::errno("rename", shown(), e))?;
        if fsync {
            unistd::fsync(root.as_raw_fd()).map_err(|e| FsError::errno("fsync", shown(), e))?;
        }
        Ok(())
    }
}

/// Replaces the index of the published batch `at` with one of `kept`: a
/// new file, synced, renamed over the old one, so a reader (or a crash)
/// sees the old index or the new one whole.
pub(super) fn replace_index<'a>(
    at: RawFd,
    kept: impl IntoIterator<Item = &'a WirePath>,
) -> Result<(), Errno> {
    let kept: Vec<WirePath> = kept.into_iter().cloned().collect();
    write_index_as(at, NEW_INDEX, &kept, true)?;
    fcntl::renameat(Some(at), os(NEW_INDEX), Some(at), os(INDEX_NAME))?;
    unistd::fsync(at)
}

/// Where [`replace_index`] writes the new index first.
const NEW_INDEX: &[u8] = b".rsb-tmp.index.new";

/// Writes the index of the entries `kept` into the batch directory `at`
/// (replacing one a dead process may have begun).
fn write_index(at: RawFd, kept: &[WirePath], fsync: bool) -> Result<(), Errno> {
    write_index_as(at, INDEX_NAME, kept, fsync)
}

/// Writes the index of `kept` as `name` in the batch directory `at`.
fn write_index_as(at: RawFd, name: &[u8], kept: &[WirePath], fsync: bool) -> Result<(), Errno> {
    let bytes = index_bytes(kept);
    let fd = fcntl::openat(
        Some(at),
        os(name),
        fcntl::OFlag::O_CREAT
            | fcntl::OFlag::O_TRUNC
            | fcntl::OFlag::O_WRONLY
            | fcntl::OFlag::O_CLOEXEC
            | fcntl::OFlag::O_NOFOLLOW,
        stat::Mode::from_bits_truncate(0o600),
    )?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut done = 0;
    while let Some(rest) = bytes.get(done..).filter(|r| !r.is_empty()) {
        match unistd::write(&fd, rest) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    if fsync {
        unistd::fsync(fd.as_raw_fd())?;
    }
    Ok(())
}

/// Renames the pending batch (its last component) in `root` to `batch`, or
/// to a later nanosecond if a batch of that time exists already.
fn publish_as(root: RawFd, pending: &WirePath, batch: &[u8]) -> Result<(), Errno> {
    let from = pending.file_name().ok_or(Errno::EINVAL)?;
    let (secs, nanos) = crate::store::history::parse_batch_name(batch).ok_or(Errno::EINVAL)?;
    let mut at = (secs, nanos);
    for _ in 0..64 {
        let name = batch_name(at.0, at.1);
        match fcntl::renameat2(
            Some(root),
            os(from),
            Some(root),
            os(&name),
            fcntl::RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => return Ok(()),
            Err(Errno::EEXIST | Errno::ENOTEMPTY) => {
                at = if at.1 >= 999_999_999 {
                    (at.0 + 1, 0)
                } else {
                    (at.0, at.1 + 1)
                };
            }
            // No RENAME_NOREPLACE here: the names are unique enough.
            Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
                return fcntl::renameat(Some(root), os(from), Some(root), os(&name));
            }
            Err(e) => return Err(e),
        }
    }
    Err(Errno::EEXIST)
}

/// Opens the batch directory `name` of `at`, made first when it is not
/// there ([`open_or_make_dir`]).
fn open_or_make_holder(at: RawFd, name: &[u8]) -> Result<OwnedFd, Errno> {
    open_or_make_dir(at, name, stat::Mode::from_bits_truncate(HOLDER_MODE)).map_err(|(_, e)| e)
}

/// `base` followed by every component of `rel`.
fn join_all(base: &WirePath, rel: &WirePath) -> Result<WirePath, Errno> {
    let mut p = base.clone();
    for c in rel.components() {
        p = p.join(c).map_err(|_| Errno::ENAMETOOLONG)?;
    }
    Ok(p)
}

/// The namespace's identity, for the locks and the once-only repair.
fn identity(tree: &Beneath) -> (u64, u64) {
    stat::fstat(tree.root_fd()).map_or((0, 0), |st| (st.st_dev, st.st_ino))
}

/// The lock that keeps one namespace's commits from keeping history at
/// the same time.
pub(super) fn lock(tree: &Beneath) -> Arc<Mutex<()>> {
    /// One lock per namespace, by its root's identity.
    type Locks = Mutex<HashMap<(u64, u64), Arc<Mutex<()>>>>;
    static LOCKS: OnceLock<Locks> = OnceLock::new();
    let locks = LOCKS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = locks.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(map.entry(identity(tree)).or_default())
}

/// Repairs the pending batches of dead processes in this namespace, the
/// first time this process asks for it (call it before the first commit
/// keeps anything). Returns how many batches it published.
pub(super) fn recover_once(tree: &Beneath) -> u64 {
    static DONE: OnceLock<Mutex<HashSet<(u64, u64)>>> = OnceLock::new();
    let done = DONE.get_or_init(|| Mutex::new(HashSet::new()));
    let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
    if !done.insert(identity(tree)) {
        return 0;
    }
    match recover(tree) {
        Ok(n) => n,
        Err(e) => {
            log::warn!("{}: {}", e.path, e.error);
            0
        }
    }
}

/// See the module's docs; returns how many batches it published.
pub fn recover(tree: &Beneath) -> Result<u64, FsError> {
    let root_path = history_root();
    let root = match tree.dir(&root_path) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => return Ok(0),
        Err(e) => return Err(e),
    };
    let shown = |p: &WirePath| tree.show(p);
    let entries =
        entries_at(root.as_raw_fd()).map_err(|e| FsError::errno("read", shown(&root_path), e))?;
    let mut published = 0;
    for (name, _) in entries {
        let Some((salt, batch)) = parse_pending(&name) else {
            continue;
        };
        if salt == tmp::salt() {
            continue;
        }
        let batch = batch.to_vec();
        let pending = root_path
            .join(&name)
            .map_err(|e| FsError::invalid("open", shown(&root_path), e))?;
        let fd = open_dir_at(root.as_raw_fd(), &name)
            .map_err(|e| FsError::errno("open", shown(&pending), e))?;
        let mut left = Vec::new();
        repair(tree, fd.as_raw_fd(), &WirePath::root(), 0, &mut left)
            .map_err(|e| FsError::errno("repair", shown(&pending), e))?;
        if left.is_empty() {
            super::beneath::remove_tree(root.as_raw_fd(), &name, 0)
                .map_err(|e| FsError::errno("remove", shown(&pending), e))?;
            continue;
        }
        write_index(fd.as_raw_fd(), &left, true)
            .map_err(|e| FsError::errno("write", shown(&pending), e))?;
        publish_as(root.as_raw_fd(), &pending, &batch)
            .map_err(|e| FsError::errno("rename", shown(&pending), e))?;
        log::info!(
            "{}: {} entries of a commit cut short kept in history",
            shown(&pending),
            left.len()
        );
        published += 1;
    }
    Ok(published)
}

/// Puts right the pending directory `held` (the entries kept from the
/// tree's directory `path`); the paths of the kept entries that stay are
/// added to `left`.
fn repair(
    tree: &Beneath,
    held: RawFd,
    path: &WirePath,
    depth: usize,
    left: &mut Vec<WirePath>,
) -> Result<(), Errno> {
    if depth > 4096 {
        return Err(Errno::ELOOP);
    }
    let current = tree.dir(path).ok();
    for (name, _) in entries_at(held)? {
        if depth == 0 && name == INDEX_NAME {
            // A dead commit's index, half written or not: made anew.
            unistd::unlinkat(Some(held), os(&name), unistd::UnlinkatFlags::NoRemoveDir)?;
            continue;
        }
        let here = path.join(&name).map_err(|_| Errno::ENAMETOOLONG)?;
        let kept = stat::fstatat(Some(held), os(&name), AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let now = current.as_ref().and_then(|d| {
            stat::fstatat(Some(d.as_raw_fd()), os(&name), AtFlags::AT_SYMLINK_NOFOLLOW).ok()
        });
        let is_dir = |st: &stat::FileStat| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR;
        match now {
            // Never replaced: the link goes, the current entry stays.
            Some(now)
                if !is_dir(&kept) && (now.st_dev, now.st_ino) == (kept.st_dev, kept.st_ino) =>
            {
                unistd::unlinkat(Some(held), os(&name), unistd::UnlinkatFlags::NoRemoveDir)?;
            }
            // A holder of kept entries below (the tree has a directory
            // there): repaired in turn, removed if nothing stays in it.
            Some(now) if is_dir(&kept) && is_dir(&now) => {
                let sub = open_dir_at(held, &name)?;
                let before = left.len();
                repair(tree, sub.as_raw_fd(), &here, depth + 1, left)?;
                if left.len() == before {
                    unistd::unlinkat(Some(held), os(&name), unistd::UnlinkatFlags::RemoveDir)?;
                }
            }
            // Replaced: it stays in history.
            Some(_) => left.push(here),
            // A directory moved out whose replacement never came: back.
            None => match &current {
                Some(d) if is_dir(&kept) => {
                    fcntl::renameat(Some(held), os(&name), Some(d.as_raw_fd()), os(&name))?;
                }
                // Its directory is gone too (nothing in the tree to put
                // it back into): it stays, rather than being lost.
                _ => left.push(here),
            },
        }
    }
    Ok(())
}

/// `RSB_TEST_HISTORY_DELAY_MS`: a pause after each entry a commit keeps,
/// so the fault tests can kill the server at many points of such a
/// commit.
fn test_history_delay() {
    static DELAY: OnceLock<Option<std::time::Duration>> = OnceLock::new();
    let d = DELAY.get_or_init(|| {
        std::env::var("RSB_TEST_HISTORY_DELAY_MS")
            .ok()?
            .parse()
            .ok()
            .map(std::time::Duration::from_millis)
    });
    if let Some(d) = d {
        std::thread::sleep(*d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wp(s: &str) -> WirePath {
        WirePath::new(s.as_bytes().to_vec()).unwrap()
    }

    /// Entries kept from directories in every order (siblings, back up
    /// to an earlier branch, the root, paths deeper than the chain of
    /// open directories, the same deep one twice) all land at their own
    /// path in the published batch, and its index names each once.
    #[test]
    fn kept_entries_land_at_their_paths_whatever_the_order_and_depth() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("ns");
        let deep: Vec<String> = (0..CHAIN + 8).map(|i| format!("l{i}")).collect();
        let deep = deep.join("/");
        let deep_sib = format!("{}/other", &deep[..deep.rfind('/').unwrap()]);
        let files = [
            "a/b/c/f1".to_string(),
            "a/b/d/f2".to_string(),
            "a/b/c/f3".to_string(),
            "x/f4".to_string(),
            "f5".to_string(),
            format!("{deep}/g1"),
            format!("{deep}/g2"),
            format!("{deep_sib}/g3"),
            format!("{deep}/g4"),
            "a/b/d/f6".to_string(),
        ];
        for f in &files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, f.as_bytes()).unwrap();
        }
        let tree = Beneath::open_root(&root, false).unwrap();
        let mut keeper = Keeper::new(true);
        for f in &files {
            let path = wp(f);
            let parent = path.parent().unwrap();
            let dir = tree.dir(&parent).unwrap();
            keeper
                .take(&tree, dir.as_raw_fd(), &parent, path.file_name().unwrap())
                .unwrap();
            assert!(!root.join(f).exists(), "{f} left the tree");
            assert!(keeper.chain.len() <= CHAIN);
        }
        keeper.publish(&tree, false).unwrap();
        let history = root.join(std::str::from_utf8(HISTORY_DIR).unwrap());
        let batches: Vec<_> = std::fs::read_dir(&history)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(batches.len(), 1, "{batches:?}");
        for f in &files {
            let kept = std::fs::read(batches[0].join(f)).unwrap();
            assert_eq!(kept, f.as_bytes(), "{f}");
        }
        let index = std::fs::read(batches[0].join(std::str::from_utf8(INDEX_NAME).unwrap()));
        let mut listed = crate::store::history::parse_index(&index.unwrap()).unwrap();
        listed.sort();
        let mut want: Vec<WirePath> = files.iter().map(|f| wp(f)).collect();
        want.sort();
        assert_eq!(listed, want);
        let mode = std::fs::metadata(batches[0].join("a/b/d")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o7777,
            HOLDER_MODE
        );
    }
}
