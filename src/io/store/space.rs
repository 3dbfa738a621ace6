//! The space a namespace takes: the bytes allocated to its current tree
//! and to its history, and how many entries the current tree has, for the
//! dashboard and `/metrics`. A walk of the whole namespace with `lstat`
//! only, on a thread of its own (see `crate::io::worker`), never in the
//! loop; a file with several names counts once.
//!
//! Must not change anything, nor open a file.

use std::collections::HashSet;

use super::namespace::Namespace;
use crate::io::kind_of;
use crate::proto::path::is_tmp_name;
use crate::proto::{EntryKind, WirePath};
use crate::store::history::HISTORY_DIR;

/// Directory levels walked at most.
const MAX_DEPTH: usize = 4096;

/// What [`Namespace::measure`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Measured {
    /// Bytes allocated to the current tree.
    pub current: u64,
    /// Entries in the current tree.
    pub entries: u64,
    /// Bytes allocated to history.
    pub history: u64,
}

impl Namespace {
    /// Walks the namespace (see the module docs); `None` when `stop` said
    /// to stop first.
    pub fn measure(&self, stop: &dyn Fn() -> bool) -> Option<Measured> {
        let mut m = Measured::default();
        let mut seen: HashSet<(u64, u64)> = HashSet::new();
        let mut stack = vec![(WirePath::root(), 0usize, false)];
        while let Some((dir, depth, history)) = stack.pop() {
            if stop() {
                return None;
            }
            // History lives under a reserved (temporary-looking) name, and
            // its batches too: read the names unfiltered and skip the
            // server's other hidden work by hand below.
            for name in self.read_dir_all(&dir).unwrap_or_default() {
                let in_history = history || (dir.is_root() && name == HISTORY_DIR);
                if !in_history && is_tmp_name(&name) {
                    // Staging and other hidden work of the server.
                    continue;
                }
                let Ok(p) = dir.join(&name) else {
                    continue;
                };
                let Ok(st) = self.lstat(&p) else {
                    continue;
                };
                if !in_history {
                    m.entries += 1;
                }
                let bytes = (st.st_blocks.max(0) as u64).saturating_mul(512);
                let counted = st.st_nlink <= 1 || seen.insert((st.st_dev, st.st_ino));
                if counted {
                    if in_history {
                        m.history = m.history.saturating_add(bytes);
                    } else {
                        m.current = m.current.saturating_add(bytes);
                    }
                }
                if kind_of(&st) == Some(EntryKind::Dir) && depth < MAX_DEPTH {
                    stack.push((p, depth + 1, in_history));
                }
            }
        }
        Some(m)
    }
}
