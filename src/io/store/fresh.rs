//! What a backup's manifest checks found missing, so that the names
//! asked about in a directory being filled need no lookup that misses
//! (see [`FreshDirs`]; used by `scan.rs`, kept by each `Stager`).
//!
//! Must not touch the file system.

use std::collections::{HashMap, HashSet};

use crate::proto::WirePath;

/// Directories a manifest check of one stager found missing, each with
/// the names asked about in it since. Nothing stood there then, so
/// whatever stands at a name never asked about can only come from another
/// connection: needing it again without a look is safe (it is sent once
/// more); a name asked about before is looked at (a second backup of the
/// tree on the same connection skips what is unchanged). Bounded: past
/// [`FRESH_BYTES`] it forgets everything and every name is looked at.
#[derive(Debug, Default)]
pub(super) struct FreshDirs {
    dirs: HashMap<WirePath, HashSet<Vec<u8>>>,
    bytes: usize,
}

/// The memory [`FreshDirs`] may take, counted as [`FRESH_COST`] bytes per
/// name or directory on top of its length.
const FRESH_BYTES: usize = 8 << 20;
const FRESH_COST: usize = 48;

impl FreshDirs {
    fn charge(&mut self, len: usize) -> bool {
        self.bytes = self.bytes.saturating_add(len + FRESH_COST);
        if self.bytes > FRESH_BYTES {
            self.dirs.clear();
            self.bytes = 0;
            return false;
        }
        true
    }

    /// `dir` does not exist.
    pub(super) fn missing(&mut self, dir: &WirePath) {
        if !self.dirs.contains_key(dir) && self.charge(dir.as_bytes().len()) {
            self.dirs.insert(dir.clone(), HashSet::new());
        }
    }

    /// True when `name` in `dir` is needed without a look (see above); it
    /// is remembered as asked about.
    pub(super) fn unseen(&mut self, dir: &WirePath, name: &[u8]) -> bool {
        if self.dirs.get(dir).is_none_or(|n| n.contains(name)) || !self.charge(name.len()) {
            return false;
        }
        self.dirs
            .get_mut(dir)
            .is_some_and(|n| n.insert(name.to_vec()))
    }
}
