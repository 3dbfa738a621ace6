//! Retention on disk: which old versions a namespace's history holds
//! (every published batch's index), the pure policy's verdict on each
//! path's versions ([`crate::store::retention`]), and the removal of the
//! rest. Run by the server's pruner thread (at start, then hourly) and by
//! `rsb-server --prune`; never in the event loop.
//!
//! A version is one entry of one batch's index (`.rsb-tmp.history/<TIME>/P`,
//! TIME being when it stopped being current); a kept directory is one
//! version of its path, everything below it included. The current tree is
//! never read, so the current version of a path is never a candidate.
//!
//! Removal order, for a crash at any point: the entry goes first, then the
//! batch's index is replaced (a new file renamed over the old one), then
//! the holders it leaves empty; a batch left with no entry goes whole. So
//! an index may name an entry that is gone (readers treat it as removed),
//! never hide one that is there.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat;
use nix::unistd::{self, UnlinkatFlags};

use super::beneath::{entries_at, open_dir_at, os, remove_tree};
use super::history::{history_root, replace_index};
use super::Namespace;
use crate::calendar::CivilTime;
use crate::io::error::FsError;
use crate::proto::WirePath;
use crate::store::history::{parse_batch_name, parse_index, INDEX_NAME};
use crate::store::retention::{decide, Keep, Version};

/// One version removed (or, in a dry run, that would be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Its path beneath the namespace.
    pub path: WirePath,
    /// Its batch: when it stopped being current (epoch seconds, nanos).
    pub until: (i64, u32),
    /// The name of its batch.
    pub batch: Vec<u8>,
    /// The bytes of its files (a file of several names counts its size
    /// shared among them).
    pub bytes: u64,
    /// How many entries it held (itself and everything below it).
    pub entries: u64,
}

/// What one pass over a namespace did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Versions removed (or that would be).
    pub versions: u64,
    /// Entries they held.
    pub entries: u64,
    /// Bytes of their files.
    pub bytes: u64,
    /// Batches left empty and removed.
    pub batches: u64,
    /// Versions the pass left in history.
    pub kept: u64,
}

/// One published batch: its name, time and index.
struct Batch {
    name: Vec<u8>,
    time: (i64, u32),
    paths: Vec<WirePath>,
}

impl super::Store {
    /// [`Namespace::prune_history`] of every namespace beneath the root,
    /// one after another; `each` hears the namespace's name with each
    /// removal. A namespace that cannot be read is logged and skipped.
    /// Returns the totals and how many namespaces were gone through.
    pub fn prune_all(
        &self,
        keep: &Keep,
        now: i64,
        local: &dyn Fn(i64) -> CivilTime,
        dry_run: bool,
        stopped: &dyn Fn() -> bool,
        each: &mut dyn FnMut(&str, &Removal),
    ) -> Result<(Pruned, u64), FsError> {
        let mut total = Pruned::default();
        let mut seen = 0;
        for name in self.namespaces()? {
            if stopped() {
                break;
            }
            let ns = match self.existing_namespace(&name) {
                Ok(ns) => ns,
                Err(e) => {
                    log::warn!("retention: {e}");
                    continue;
                }
            };
            seen += 1;
            match ns.prune_history(keep, now, local, dry_run, stopped, &mut |r| each(&name, r)) {
                Ok(p) => {
                    total.versions += p.versions;
                    total.entries += p.entries;
                    total.bytes += p.bytes;
                    total.batches += p.batches;
                    total.kept += p.kept;
                }
                Err(e) => log::warn!("retention: {e}"),
            }
        }
        Ok((total, seen))
    }
}

impl Namespace {
    /// Applies `keep` to the history of this namespace: every path's old
    /// versions are judged together (`local` gives each version's local
    /// calendar time, `now` bounds `within=`), and each one the policy does
    /// not keep is removed, or only reported when `dry_run`. `each` hears
    /// of every removal as it is made; `stopped` is asked between batches
    /// (a server shutting down). A batch whose index cannot be read is
    /// left alone and reported in the log.
    pub fn prune_history(
        &self,
        keep: &Keep,
        now: i64,
        local: &dyn Fn(i64) -> CivilTime,
        dry_run: bool,
        stopped: &dyn Fn() -> bool,
        each: &mut dyn FnMut(&Removal),
    ) -> Result<Pruned, FsError> {
        let mut out = Pruned::default();
        let batches = self.batches()?;
        // Every path's versions, oldest first: (batch index, version).
        let mut by_path: BTreeMap<&WirePath, Vec<usize>> = BTreeMap::new();
        for (i, b) in batches.iter().enumerate() {
            for p in &b.paths {
                by_path.entry(p).or_default().push(i);
            }
        }
        let mut doomed: Vec<Vec<&WirePath>> = vec![Vec::new(); batches.len()];
        for (path, at) in &by_path {
            let versions: Vec<Version> = at
                .iter()
                .filter_map(|&i| batches.get(i))
                .map(|b| Version {
                    time: b.time.0,
                    civil: local(b.time.0),
                })
                .collect();
            for (&i, kept) in at.iter().zip(decide(keep, &versions, now)) {
                if kept {
                    out.kept += 1;
                } else if let Some(d) = doomed.get_mut(i) {
                    d.push(path);
                }
            }
        }
        if batches.is_empty() {
            // No history yet (maybe no history directory either).
            return Ok(out);
        }
        let root = self.tree.dir(&history_root())?;
        for (b, gone) in batches.iter().zip(&doomed) {
            if gone.is_empty() {
                continue;
            }
            if stopped() {
                break;
            }
            let batch_path = history_root()
                .join(&b.name)
                .map_err(|e| FsError::invalid("open", self.show(&history_root()), e))?;
            let shown = || self.show(&batch_path);
            let fd = open_dir_at(root.as_raw_fd(), &b.name)
                .map_err(|e| FsError::errno("open", shown(), e))?;
            for &p in gone {
                let (entries, bytes) = measure_path(fd.as_raw_fd(), p);
                if !dry_run {
                    remove_path(fd.as_raw_fd(), p)
                        .map_err(|e| FsError::errno("remove", self.show_in_batch(&b.name, p), e))?;
                }
                let r = Removal {
                    path: p.clone(),
                    until: b.time,
                    batch: b.name.clone(),
                    bytes,
                    entries,
                };
                out.versions += 1;
                out.entries += entries;
                out.bytes += bytes;
                each(&r);
            }
            let left: Vec<&WirePath> = b.paths.iter().filter(|p| !gone.contains(p)).collect();
            if left.is_empty() {
                out.batches += 1;
            }
            if dry_run {
                continue;
            }
            if left.is_empty() {
                remove_tree(root.as_raw_fd(), &b.name, 0)
                    .map_err(|e| FsError::errno("remove", shown(), e))?;
                continue;
            }
            replace_index(fd.as_raw_fd(), left.iter().copied())
                .map_err(|e| FsError::errno("write", shown(), e))?;
            for &p in gone {
                remove_empty_holders(fd.as_raw_fd(), p, &left);
            }
        }
        Ok(out)
    }

    /// The published batches, oldest first, with their indexes; a batch
    /// without a readable index is skipped (and logged): what it holds
    /// cannot be told from holders, so nothing of it is removed.
    fn batches(&self) -> Result<Vec<Batch>, FsError> {
        let root = match self.tree.dir(&history_root()) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let entries = entries_at(root.as_raw_fd())
            .map_err(|e| FsError::errno("read", self.show(&history_root()), e))?;
        let mut out = Vec::new();
        for (name, _) in entries {
            let Some(time) = parse_batch_name(&name) else {
                continue;
            };
            match read_index(root.as_raw_fd(), &name) {
                Some(paths) => out.push(Batch { name, time, paths }),
                None => log::warn!(
                    "{}: no readable index: left out of retention",
                    self.show_in_batch(&name, &WirePath::root())
                ),
            }
        }
        out.sort_by_key(|b| b.time);
        Ok(out)
    }

    /// A path of a batch, for messages.
    fn show_in_batch(&self, batch: &[u8], p: &WirePath) -> String {
        match history_root().join(batch).and_then(|b| b.join_path(p)) {
            Ok(full) => self.show(&full),
            Err(_) => self.show(&history_root()),
        }
    }
}

/// The index of batch `name` in the history directory `root`.
fn read_index(root: RawFd, name: &[u8]) -> Option<Vec<WirePath>> {
    let dir = open_dir_at(root, name).ok()?;
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        os(INDEX_NAME),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NOFOLLOW,
        stat::Mode::empty(),
    )
    .ok()?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(buf.get(..n)?),
            Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
        // An index is one line per kept entry: 64 MiB is millions.
        if bytes.len() > 64 << 20 {
            return None;
        }
    }
    parse_index(&bytes)
}

/// The directory holding `p` inside the batch `batch`, opened, and `p`'s
/// name; `None` when it is gone.
fn open_parent(batch: RawFd, p: &WirePath) -> Option<(std::os::fd::OwnedFd, Vec<u8>)> {
    let name = p.file_name()?.to_vec();
    let mut cur = super::beneath::reopen_dir(batch).ok()?;
    if let Some(parent) = p.parent() {
        for c in parent.components() {
            cur = open_dir_at(cur.as_raw_fd(), c).ok()?;
        }
    }
    Some((cur, name))
}

/// Removes the entry `p` of a batch (a whole tree for a directory); gone
/// already is no error.
fn remove_path(batch: RawFd, p: &WirePath) -> Result<(), Errno> {
    match open_parent(batch, p) {
        Some((dir, name)) => remove_tree(dir.as_raw_fd(), &name, 0),
        None => Ok(()),
    }
}

/// How many entries the batch's `p` holds and the bytes of their files.
fn measure_path(batch: RawFd, p: &WirePath) -> (u64, u64) {
    match open_parent(batch, p) {
        Some((dir, name)) => measure(dir.as_raw_fd(), &name, 0),
        None => (0, 0),
    }
}

/// Entries and bytes of `name` in `dir` and below: each regular file
/// counts its size divided among its names, so the names of one file
/// removed together count it once.
fn measure(dir: RawFd, name: &[u8], depth: usize) -> (u64, u64) {
    let Ok(st) = stat::fstatat(Some(dir), os(name), AtFlags::AT_SYMLINK_NOFOLLOW) else {
        return (0, 0);
    };
    match st.st_mode & nix::libc::S_IFMT {
        nix::libc::S_IFREG => {
            let size = u64::try_from(st.st_size).unwrap_or(0);
            // nlink_t is u64 here and u32 on some targets.
            #[allow(clippy::unnecessary_cast)]
            let names = (st.st_nlink as u64).max(1);
            (1, size / names)
        }
        nix::libc::S_IFDIR if depth < 4096 => {
            let Ok(sub) = open_dir_at(dir, name) else {
                return (1, 0);
            };
            let mut total = (1, 0);
            for (n, _) in entries_at(sub.as_raw_fd()).unwrap_or_default() {
                let (e, b) = measure(sub.as_raw_fd(), &n, depth + 1);
                total = (total.0 + e, total.1 + b);
            }
            total
        }
        _ => (1, 0),
    }
}

/// Removes the holders above the removed entry `p` that are now empty, up
/// to the batch's root; never a directory the index still keeps.
fn remove_empty_holders(batch: RawFd, p: &WirePath, left: &[&WirePath]) {
    let mut cur = p.parent();
    while let Some(dir) = cur.filter(|d| !d.is_root()) {
        if left.contains(&&dir) {
            return;
        }
        let Some((parent, name)) = open_parent(batch, &dir) else {
            return;
        };
        // ENOTEMPTY: something else is kept below it; the walk stops.
        if unistd::unlinkat(
            Some(parent.as_raw_fd()),
            os(&name),
            UnlinkatFlags::RemoveDir,
        )
        .is_err()
        {
            return;
        }
        cur = dir.parent();
    }
}
