//! Watch mode's debouncer: what changed, under which watched root, and when
//! each change is quiet enough to be backed up. Pure: the inotify layer
//! (`io/client/inotify.rs`) turns events into [`Debouncer::note`]s, the
//! watch driver (`io/client/watch.rs`) asks for the next [`Debouncer::deadline`]
//! and, once it passes, for the batch of [`Debouncer::take_due`]. Time comes in
//! as `now`; nothing here reads a clock, a file or a descriptor.
//!
//! A path is due once it has been quiet for the delay (every new event on
//! it starts the wait again, so a file still being written waits), or once it
//! has been pending for [`Limits::max_hold`] whatever happens (a file appended
//! to for ever is still backed up now and then). A change noted while its
//! batch is being sent is simply pending again: that file is sent once more.
//!
//! Changes are of three depths ([`Change`]); a batch never sends what another
//! target of the same batch sends too: a tree covers everything beneath it, a
//! directory's listing covers its own entry and the entries directly in it.
//!
//! Memory is bounded ([`Limits`]): past the bound, every change pending under
//! the root of the path being noted is replaced by one rescan of that root
//! (the normal incremental backup finds what changed), and [`Noted::Collapsed`]
//! tells the caller to say so.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How deep the backup of a changed path goes. Ordered: a deeper change
/// includes a shallower one of the same path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// The entry itself: content or metadata of a file, a link, or a
    /// directory's own mode and times.
    Entry,
    /// A directory's listing: its entry and every entry directly in it,
    /// read whole, so that what is gone from it is deleted on the server.
    Listing,
    /// The path and everything beneath it (a new or moved-in directory, a
    /// rescan).
    Tree,
}

/// One path to back up in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The watched root it is under (its index).
    pub root: usize,
    /// The absolute local path, bytes.
    pub path: Vec<u8>,
    /// How deep.
    pub change: Change,
}

/// The debouncer's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Quiet time after a path's last event before it is due.
    pub delay: Duration,
    /// A path pending this long is due however busy it still is.
    pub max_hold: Duration,
    /// Paths pending at most; past it a root is collapsed to a rescan.
    pub max_paths: usize,
    /// Bytes of pending paths at most, likewise.
    pub max_bytes: usize,
}

impl Limits {
    /// The bounds for `delay`: a path is held at most 30 times the delay
    /// (at least a minute), 100,000 paths or 16 MiB of them are pending at
    /// most.
    pub fn for_delay(delay: Duration) -> Limits {
        Limits {
            delay,
            max_hold: (delay * 30).max(Duration::from_secs(60)),
            max_paths: 100_000,
            max_bytes: 16 << 20,
        }
    }
}

/// What a [`Debouncer::note`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// The change is pending.
    Kept,
    /// The bound was passed: the root's pending changes became one rescan
    /// of the whole root.
    Collapsed,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    root: usize,
    change: Change,
    /// The first event since the path was last taken.
    first: Instant,
    /// The latest event.
    last: Instant,
}

/// The pending changes of every watched root.
#[derive(Debug)]
pub struct Debouncer {
    limits: Limits,
    roots: Vec<Vec<u8>>,
    pending: HashMap<Vec<u8>, Pending>,
    /// Bytes of the paths in `pending`.
    bytes: usize,
    /// No path is due before this (a lower bound: a path's deadline only
    /// moves later, so it is exact after [`Self::take_due`] and early at
    /// worst in between).
    earliest: Option<Instant>,
}

impl Debouncer {
    /// A debouncer for the watched `roots` (absolute paths, bytes), with
    /// nothing pending.
    pub fn new(roots: Vec<Vec<u8>>, limits: Limits) -> Debouncer {
        Debouncer {
            limits,
            roots,
            pending: HashMap::new(),
            bytes: 0,
            earliest: None,
        }
    }

    /// The watched roots, by index.
    pub fn roots(&self) -> &[Vec<u8>] {
        &self.roots
    }

    /// Paths pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Nothing pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Notes a change of `path` (under root `root`) seen at `now`.
    pub fn note(&mut self, root: usize, path: &[u8], change: Change, now: Instant) -> Noted {
        self.add(root, path, change, now, now)
    }

    /// Asks for a backup of the whole of root `root`, due at once (the
    /// first backup, a rescan, a queue overflow).
    pub fn rescan(&mut self, root: usize, now: Instant) {
        let Some(path) = self.roots.get(root).cloned() else {
            return;
        };
        // The rescan covers whatever is pending under the root.
        self.collapse(root, now, true);
        self.add(root, &path, Change::Tree, now, self.due_now(now));
    }

    /// Gives back targets whose batch could not be sent (the connection was
    /// lost): they are due again at once, with whatever was noted since.
    pub fn put_back(&mut self, targets: Vec<Target>, now: Instant) {
        let at = self.due_now(now);
        for t in targets {
            let _ = self.add(t.root, &t.path, t.change, now, at);
        }
    }

    /// The time at which the next path may be due; `None` when nothing is
    /// pending.
    pub fn deadline(&self) -> Option<Instant> {
        self.earliest
    }

    /// Takes every path due at `now`, without what another target of the
    /// batch already covers, in path order.
    pub fn take_due(&mut self, now: Instant) -> Vec<Target> {
        if self.earliest.is_none_or(|e| e > now) {
            return Vec::new();
        }
        let limits = self.limits;
        let due: Vec<Vec<u8>> = self
            .pending
            .iter()
            .filter(|(_, p)| deadline_of(p, &limits) <= now)
            .map(|(path, _)| path.clone())
            .collect();
        let mut batch: HashMap<Vec<u8>, (usize, Change)> = HashMap::with_capacity(due.len());
        for path in due {
            if let Some(p) = self.pending.remove(&path) {
                self.bytes = self.bytes.saturating_sub(path.len());
                batch.insert(path, (p.root, p.change));
            }
        }
        self.earliest = self
            .pending
            .values()
            .map(|p| deadline_of(p, &self.limits))
            .min();
        let mut out: Vec<Target> = batch
            .iter()
            .filter(|(path, (_, change))| !covered(&batch, path, *change))
            .map(|(path, &(root, change))| Target {
                root,
                path: path.clone(),
                change,
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// A `last` that makes a path due at `now`.
    fn due_now(&self, now: Instant) -> Instant {
        now.checked_sub(self.limits.delay).unwrap_or(now)
    }

    fn add(
        &mut self,
        root: usize,
        path: &[u8],
        change: Change,
        now: Instant,
        last: Instant,
    ) -> Noted {
        let full = self.pending.len() >= self.limits.max_paths
            || self.bytes + path.len() > self.limits.max_bytes;
        let noted = match self.pending.get_mut(path) {
            Some(p) => {
                p.change = p.change.max(change);
                // A change due at once stays so; any other moves the wait on.
                p.last = if last < now {
                    p.last.min(last)
                } else {
                    p.last.max(last)
                };
                Noted::Kept
            }
            None if full => {
                self.collapse(root, now, true);
                if self.pending.len() >= self.limits.max_paths || self.bytes > self.limits.max_bytes
                {
                    // The other roots fill the bound: they are rescanned too.
                    for r in 0..self.roots.len() {
                        self.collapse(r, now, false);
                    }
                }
                Noted::Collapsed
            }
            None => {
                self.bytes += path.len();
                self.pending.insert(
                    path.to_vec(),
                    Pending {
                        root,
                        change,
                        first: now,
                        last,
                    },
                );
                Noted::Kept
            }
        };
        self.bump_earliest(last);
        noted
    }

    /// Makes the earliest deadline no later than that of a path last
    /// noted at `last`.
    fn bump_earliest(&mut self, last: Instant) {
        let at = last + self.limits.delay;
        self.earliest = Some(self.earliest.map_or(at, |e| e.min(at)));
    }

    /// Replaces everything pending under root `root` by one rescan of it
    /// (made even when nothing of it was pending if `always`).
    fn collapse(&mut self, root: usize, now: Instant, always: bool) {
        let Some(root_path) = self.roots.get(root).cloned() else {
            return;
        };
        let mut first = None::<Instant>;
        self.pending.retain(|_, p| {
            if p.root == root {
                first = Some(first.map_or(p.first, |f| f.min(p.first)));
                false
            } else {
                true
            }
        });
        if first.is_some() || always {
            self.pending.insert(
                root_path,
                Pending {
                    root,
                    change: Change::Tree,
                    first: first.unwrap_or(now),
                    last: now,
                },
            );
        }
        self.bytes = self.pending.keys().map(Vec::len).sum();
    }
}

/// When a pending path is due.
fn deadline_of(p: &Pending, limits: &Limits) -> Instant {
    (p.last + limits.delay).min(p.first + limits.max_hold)
}

/// The directory holding `path` (`/a/b` -> `/a`, `/a` -> `/`); `None` for
/// `/` and for a path without a `/`.
pub fn parent(path: &[u8]) -> Option<&[u8]> {
    let at = path.iter().rposition(|&b| b == b'/')?;
    match at {
        0 if path.len() > 1 => Some(&path[..1]),
        0 => None,
        at => Some(&path[..at]),
    }
}

/// True when another target of `batch` backs up `path` already: a tree
/// above it, or, for an entry, its parent's listing or its own listing.
fn covered(batch: &HashMap<Vec<u8>, (usize, Change)>, path: &[u8], change: Change) -> bool {
    let mut up = parent(path);
    let mut first = true;
    while let Some(dir) = up {
        match batch.get(dir).map(|&(_, c)| c) {
            Some(Change::Tree) => return true,
            Some(Change::Listing) if first && change == Change::Entry => return true,
            _ => {}
        }
        first = false;
        up = parent(dir);
    }
    false
}

#[cfg(test)]
mod tests;
