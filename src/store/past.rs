//! The past of a namespace, as the history layout of [`super::history`]
//! records it: which stored entry is the version of a path at a time, what
//! a directory held then, and every version a path has. Pure: the reads
//! (a stat, a directory's names) come through [`Holdings`], implemented
//! over the disk by `io/store/past.rs` and in memory by the tests, so the
//! rules are property-tested against a simulated history.
//!
//! Must not read the disk, a clock or a pending batch: a reader sees
//! published batches only, each with its index.
//!
//! The model:
//! * A version of path P lives in the current tree or in a batch B that
//!   holds P: P is there on disk and P or one of its ancestors is in B's
//!   index (a directory on the way to kept entries that is not in the index
//!   is a holder, not a version). Its "until" is B's time (or current), its
//!   "stored-at" the birth time of the stored inode.
//! * The version of P at time T is the one in the earliest batch after T
//!   that holds P, if it was stored at or before T; if no batch after T
//!   holds P, the current entry if it was stored at or before T; otherwise
//!   P did not exist at T.
//! * A directory D at T held every name under D in the current tree or in
//!   a batch after T that has D on disk (kept or holder), each resolved
//!   on its own as above.

use crate::proto::{Time, WirePath};

/// Where one version of a path is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Loc {
    /// The current tree.
    Current,
    /// The batch of this index in [`Holdings::batches`].
    Batch(usize),
}

/// One published batch as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchIndex {
    /// When its entries stopped being current.
    pub time: Time,
    /// The paths its index lists: the entries it keeps.
    pub kept: Vec<WirePath>,
}

/// The reads the rules need. `batches` are sorted by time, oldest first.
pub trait Holdings {
    /// The published batches, oldest first.
    fn batches(&self) -> &[BatchIndex];
    /// The stored-at time of what is at `path` in `loc`, `None` when
    /// nothing is there.
    fn stored_at(&self, loc: Loc, path: &WirePath) -> Option<Time>;
    /// The names in the directory `dir` in `loc` (empty when it is no
    /// directory there), hidden names left out.
    fn names(&self, loc: Loc, dir: &WirePath) -> Vec<Vec<u8>>;
}

/// True when `anc` is `path` or one of its ancestors (the root is every
/// path's ancestor).
pub fn is_within(path: &WirePath, anc: &WirePath) -> bool {
    let (p, a) = (path.as_bytes(), anc.as_bytes());
    a.is_empty() || p == a || (p.starts_with(a) && p.get(a.len()) == Some(&b'/'))
}

/// True when the batch's index keeps `path` or one of its ancestors: an
/// entry found at `path` in it is a version.
pub fn covers(batch: &BatchIndex, path: &WirePath) -> bool {
    batch.kept.iter().any(|k| is_within(path, k))
}

/// True when the batch may have `dir` on disk: its index keeps `dir`, an
/// ancestor, or something beneath it (then `dir` is a holder there).
pub fn touches(batch: &BatchIndex, dir: &WirePath) -> bool {
    batch
        .kept
        .iter()
        .any(|k| is_within(dir, k) || is_within(k, dir))
}

/// The batches after `t`, oldest first, with their indexes.
fn after(h: &impl Holdings, t: Time) -> impl Iterator<Item = (usize, &BatchIndex)> {
    h.batches()
        .iter()
        .enumerate()
        .filter(move |(_, b)| b.time > t)
}

/// Where the version of `path` current at `t` is stored, `None` when
/// `path` did not exist at `t`. The earliest batch after `t` that covers
/// `path` decides: it keeps everything `path` was just before its time,
/// so `path` absent there did not exist then (nor at `t`, or an earlier
/// batch would hold the version that was deleted meanwhile).
pub fn version_at(h: &impl Holdings, t: Time, path: &WirePath) -> Option<Loc> {
    let (loc, stored) = match after(h, t).find(|(_, b)| covers(b, path)) {
        Some((i, _)) => (Loc::Batch(i), h.stored_at(Loc::Batch(i), path)?),
        None => (Loc::Current, h.stored_at(Loc::Current, path)?),
    };
    (stored <= t).then_some(loc)
}

/// The entries of directory `dir` at `t`, sorted by name, each with where
/// its version then is stored. The caller has found `dir` a directory at
/// `t` (see [`version_at`]).
pub fn children_at(h: &impl Holdings, t: Time, dir: &WirePath) -> Vec<(Vec<u8>, Loc)> {
    let mut names = h.names(Loc::Current, dir);
    for (i, _) in after(h, t).filter(|(_, b)| touches(b, dir)) {
        names.extend(h.names(Loc::Batch(i), dir));
    }
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| {
            let p = dir.join(&n).ok()?;
            version_at(h, t, &p).map(|loc| (n, loc))
        })
        .collect()
}

/// Every version of `path` the store holds, newest first: the current
/// entry if there is one, then each batch that holds it, latest first.
pub fn versions_of(h: &impl Holdings, path: &WirePath) -> Vec<Loc> {
    let mut out = Vec::new();
    if h.stored_at(Loc::Current, path).is_some() {
        out.push(Loc::Current);
    }
    for (i, b) in h.batches().iter().enumerate().rev() {
        if covers(b, path) && h.stored_at(Loc::Batch(i), path).is_some() {
            out.push(Loc::Batch(i));
        }
    }
    out
}

/// The entries history keeps strictly beneath `dir` that are not in the
/// current tree (deleted, or beneath a directory that was replaced): every
/// version found on disk beneath `dir` in a batch (holders left out),
/// sorted and each once, at most `limit` of them.
pub fn gone_beneath(h: &impl Holdings, dir: &WirePath, limit: usize) -> Vec<WirePath> {
    let mut out: Vec<WirePath> = Vec::new();
    for (i, b) in h.batches().iter().enumerate() {
        if !touches(b, dir) {
            continue;
        }
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for name in h.names(Loc::Batch(i), &d) {
                let Ok(p) = d.join(&name) else {
                    continue;
                };
                if out.len() >= limit {
                    break;
                }
                if covers(b, &p) && h.stored_at(Loc::Current, &p).is_none() {
                    out.push(p.clone());
                }
                stack.push(p);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
