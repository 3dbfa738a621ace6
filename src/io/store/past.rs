//! Reading a namespace's history: the published batches and their indexes
//! ([`History`], loaded once per request), the stored-at time of an entry
//! (`statx` birth time), and the [`Holdings`] the pure rules of
//! [`crate::store::past`] decide on. Everything goes through the
//! namespace's `Beneath`, like every other read; a batch's entry at path P
//! is the namespace's `.rsb-tmp.history/<TIME>/P`.
//!
//! Must not write anything, nor read a pending batch (`pending.*`: not
//! published) or show a batch's index as an entry.

use std::collections::HashSet;
use std::io::Read;
use std::os::fd::AsRawFd;

use super::beneath::os;
use super::namespace::Namespace;
use crate::io::error::FsError;
use crate::io::kind_of;
use crate::proto::{EntryKind, Time, VersionItem, WirePath};
use crate::store::history::{parse_batch_name, parse_index, HISTORY_DIR, INDEX_NAME};
use crate::store::past::{self, BatchIndex, Holdings, Loc};

/// An index longer than this is not read (a batch of a million entries
/// has an index of some tens of MiB at most).
const MAX_INDEX: u64 = 256 << 20;

/// Entries gone from beneath a directory that one `versions` names at
/// most (each is a frame of the answer, built at once in the loop).
const MAX_GONE: usize = 100_000;

/// Directories a history walk descends at most (a kept directory's
/// subtree, for the bytes it holds).
const MAX_DEPTH: usize = 4096;

/// The published batches of one namespace, oldest first.
#[derive(Debug, Default)]
pub struct History {
    batches: Vec<BatchIndex>,
    /// Each batch's directory, `.rsb-tmp.history/<TIME>`.
    dirs: Vec<WirePath>,
}

/// What `versions` found: each version, newest first (the path's own,
/// then those of the entries gone beneath it), and the bytes history holds
/// for the path.
#[derive(Debug, Default)]
pub struct Versions {
    /// The versions, with `held` filled in.
    pub items: Vec<VersionItem>,
    /// Versions whose entry could not be read (a stat failed meanwhile).
    pub unreadable: u64,
}

/// What changes when a batch is published into or pruned from a
/// namespace's history: its directory's inode, mtime, ctime (seconds and
/// nanoseconds) and link count (one more per batch directory).
pub type HistoryStamp = (u64, i64, i64, i64, i64, u64);

impl Namespace {
    /// The stamp of the history directory (`None`: there is none, or it
    /// cannot be looked at): equal stamps, the same batches.
    pub fn history_stamp(&self) -> Option<HistoryStamp> {
        let st = self.tree.lstat(&history_root()).ok()?;
        Some((
            st.st_ino,
            st.st_mtime,
            st.st_mtime_nsec,
            st.st_ctime,
            st.st_ctime_nsec,
            st.st_nlink,
        ))
    }

    /// The namespace's published history (empty when it has none). A
    /// batch whose index cannot be read is left out, and logged.
    pub fn history(&self) -> History {
        let root = history_root();
        let Ok(names) = self.tree.read_dir(&root) else {
            return History::default();
        };
        let mut found: Vec<(Time, WirePath, Vec<WirePath>)> = Vec::new();
        for name in names {
            let Some((secs, nanos)) = parse_batch_name(&name) else {
                continue;
            };
            let Ok(dir) = root.join(&name) else {
                continue;
            };
            match self.read_index(&dir) {
                Ok(mut kept) => {
                    kept.sort_unstable();
                    found.push((Time { secs, nanos }, dir, kept));
                }
                Err(e) => log::warn!("history: {e}: batch left out of the past"),
            }
        }
        found.sort_unstable_by_key(|a| a.0);
        let mut h = History::default();
        for (time, dir, kept) in found {
            h.batches.push(BatchIndex { time, kept });
            h.dirs.push(dir);
        }
        h
    }

    fn read_index(&self, dir: &WirePath) -> Result<Vec<WirePath>, FsError> {
        let path = dir
            .join(INDEX_NAME)
            .map_err(|e| FsError::invalid("open", self.show(dir), e))?;
        let fd = self.tree.open_file(&path)?;
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .take(MAX_INDEX)
            .read_to_end(&mut bytes)
            .map_err(|e| FsError::other("read", self.show(&path), e))?;
        parse_index(&bytes).ok_or_else(|| FsError::other("read", self.show(&path), "not an index"))
    }

    /// The birth time of the entry at `path` (the root for the empty
    /// path), `None` when there is none. Where the file system records no
    /// birth time, the entry's ctime stands in for a current one and its
    /// mtime for one in history (a link into history changes the ctime).
    fn stored_at(&self, path: &WirePath, in_history: bool) -> Option<Time> {
        let (dir, name) = if path.is_root() {
            (None, &b""[..])
        } else {
            let (dir, name) = self.tree.parent(path).ok()?;
            (Some(dir), name)
        };
        let c = std::ffi::CString::new(os(name).as_encoded_bytes()).ok()?;
        let fd = dir.as_ref().map_or(self.tree.root_fd(), |d| d.as_raw_fd());
        let mut flags = nix::libc::AT_SYMLINK_NOFOLLOW;
        if path.is_root() {
            flags |= nix::libc::AT_EMPTY_PATH;
        }
        // SAFETY: an all-zero statx is a valid value (plain integers).
        let mut stx: nix::libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a NUL-terminated string and `stx` a live local for
        // the whole call; `fd` is a directory descriptor we hold open.
        let r = unsafe {
            nix::libc::statx(
                fd,
                c.as_ptr(),
                flags,
                nix::libc::STATX_BASIC_STATS | nix::libc::STATX_BTIME,
                &mut stx,
            )
        };
        if r != 0 {
            return None;
        }
        let t = if stx.stx_mask & nix::libc::STATX_BTIME != 0 {
            stx.stx_btime
        } else if in_history {
            stx.stx_mtime
        } else {
            stx.stx_ctime
        };
        Some(Time {
            secs: t.tv_sec,
            nanos: t.tv_nsec.min(999_999_999),
        })
    }
}

/// `.rsb-tmp.history` as a path beneath the namespace.
fn history_root() -> WirePath {
    WirePath::new(HISTORY_DIR.to_vec()).unwrap_or_default()
}

/// A [`History`] read through its namespace: the [`Holdings`] of the pure
/// rules.
pub struct Past<'a> {
    /// The namespace.
    pub tree: &'a Namespace,
    /// Its history.
    pub history: &'a History,
}

impl Holdings for Past<'_> {
    fn batches(&self) -> &[BatchIndex] {
        &self.history.batches
    }

    fn stored_at(&self, loc: Loc, path: &WirePath) -> Option<Time> {
        let phys = self.phys(loc, path)?;
        self.tree.stored_at(&phys, loc != Loc::Current)
    }

    fn names(&self, loc: Loc, dir: &WirePath) -> Vec<Vec<u8>> {
        self.phys(loc, dir)
            .and_then(|p| self.tree.read_dir(&p).ok())
            .unwrap_or_default()
    }
}

impl Past<'_> {
    /// Where the version of `path` in `loc` is beneath the namespace.
    pub fn phys(&self, loc: Loc, path: &WirePath) -> Option<WirePath> {
        match loc {
            Loc::Current => Some(path.clone()),
            Loc::Batch(i) => self.history.dirs.get(i)?.join_path(path).ok(),
        }
    }

    /// Every version of `path` and of the entries gone beneath it (see
    /// [`past::versions_of`], [`past::gone_beneath`]), newest first for
    /// each path, with the bytes history holds for `path`.
    pub fn versions(&self, path: &WirePath) -> Versions {
        let mut out = Versions::default();
        let mut paths = vec![path.clone()];
        paths.extend(past::gone_beneath(self, path, MAX_GONE));
        for p in &paths {
            for loc in past::versions_of(self, p) {
                match self.item(loc, p) {
                    Some(item) => out.items.push(item),
                    None => out.unreadable += 1,
                }
            }
        }
        let held = self.held(path);
        for item in &mut out.items {
            item.held = held;
        }
        out
    }

    /// The version of `path` stored in `loc`, as a `Version` frame says it.
    fn item(&self, loc: Loc, path: &WirePath) -> Option<VersionItem> {
        let phys = self.phys(loc, path)?;
        let st = self.tree.lstat(&phys).ok()?;
        let listed = self.tree.list_item(&phys, b"", &st).ok()?;
        let until = match loc {
            Loc::Current => Time::default(),
            Loc::Batch(i) => self.history.batches.get(i)?.time,
        };
        Some(VersionItem {
            path: path.clone(),
            kind: listed.kind,
            size: if listed.kind == EntryKind::Dir {
                0
            } else {
                listed.size
            },
            meta: listed.meta,
            stored: self.tree.stored_at(&phys, loc != Loc::Current)?,
            until,
            held: 0,
        })
    }

    /// The bytes history holds for `path`: the sizes of the distinct
    /// files it keeps at or beneath `path`, in every batch.
    fn held(&self, path: &WirePath) -> u64 {
        let mut seen: HashSet<(u64, u64)> = HashSet::new();
        let mut total: u64 = 0;
        for (i, b) in self.history.batches.iter().enumerate() {
            let tops: Vec<&WirePath> = if past::covers(b, path) {
                vec![path]
            } else {
                b.kept.iter().filter(|k| past::is_within(k, path)).collect()
            };
            for top in tops {
                let Some(phys) = self.phys(Loc::Batch(i), top) else {
                    continue;
                };
                let mut stack = vec![(phys, 0usize)];
                while let Some((p, depth)) = stack.pop() {
                    let Ok(st) = self.tree.lstat(&p) else {
                        continue;
                    };
                    match kind_of(&st) {
                        Some(EntryKind::File) if seen.insert((st.st_dev, st.st_ino)) => {
                            total = total.saturating_add(st.st_size.max(0) as u64);
                        }
                        Some(EntryKind::Dir) if depth < MAX_DEPTH => {
                            for n in self.tree.read_dir(&p).unwrap_or_default() {
                                if let Ok(c) = p.join(&n) {
                                    stack.push((c, depth + 1));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use crate::io::store::Store;
    use crate::proto::WirePath;
    use crate::store::history::{batch_name, index_bytes, HISTORY_DIR, INDEX_NAME};

    /// How long reading a history of 1,000 batches takes (the web pages
    /// read it on every `?at=` and versions request). Prints the time;
    /// run with `--nocapture` to see it.
    #[test]
    fn a_history_of_a_thousand_batches_is_read_whole() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("root")).unwrap();
        let ns = store.namespace("a").unwrap();
        let hist = t
            .path()
            .join("root/a")
            .join(std::str::from_utf8(HISTORY_DIR).unwrap());
        std::fs::create_dir_all(&hist).unwrap();
        let kept: Vec<WirePath> = (0..20)
            .map(|i| WirePath::new(format!("home/ann/file{i:02}.txt").into_bytes()).unwrap())
            .collect();
        let index = index_bytes(&kept);
        for b in 0..1000i64 {
            let name = batch_name(1_700_000_000 + b * 3600, 0);
            let dir = hist.join(std::str::from_utf8(&name).unwrap());
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join(std::str::from_utf8(INDEX_NAME).unwrap()), &index).unwrap();
        }
        let mut best = std::time::Duration::MAX;
        for _ in 0..5 {
            let start = std::time::Instant::now();
            let h = ns.history();
            best = best.min(start.elapsed());
            assert_eq!(h.batches.len(), 1000);
            assert_eq!(h.batches[0].kept.len(), 20);
        }
        println!("history of 1000 batches (20 paths each): best of 5 {best:?}");
    }
}
