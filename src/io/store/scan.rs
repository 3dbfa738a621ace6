//! Reading what a namespace holds without opening a file: the check of a
//! backup's manifest (which entries the server needs, which partials it can
//! resume) and the entries of a listing. Only `lstat` and `readlink`: an
//! unchanged file is never opened, so its inode and ctime stay as they
//! were. Whether an entry is unchanged is [`crate::store::compare`]'s rule;
//! the mode of an entry is its real one, from its metadata record when it
//! has one (read by name, nothing opened; see [`crate::store::modes`]).
//!
//! Must not write anything.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::sys::stat::{self, FileStat};

use super::namespace::Namespace;
use super::stage::Stager;
use super::xattr;
use crate::io::error::FsError;
use crate::io::{kind_of, meta_of};
use crate::proto::bits::NeedBits;
use crate::proto::{EntryKind, ListItem, ManifestEntry, Meta, WirePath};
use crate::store::compare::{self, StoredStat};
use crate::store::modes;

/// What a manifest check found: the `Need` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Which entries the server needs.
    pub need: NeedBits,
    /// Needed files of which a partial holds the first bytes: (entry
    /// index, bytes held).
    pub resume: Vec<(u32, u64)>,
}

/// The comparison's view of an `lstat`.
fn stored_stat(st: &FileStat) -> StoredStat {
    StoredStat {
        kind: kind_of(st),
        meta: meta_of(st),
        size: st.st_size,
    }
}

impl Namespace {
    /// Which manifest entries differ from what is stored: anything
    /// missing, of another type, or with another size, mode, mtime or link
    /// target. Files are only `lstat`ed, never opened.
    pub fn need(&self, entries: &[ManifestEntry]) -> NeedBits {
        let mut bits = NeedBits::new(entries.len());
        // Entries come grouped by directory: open each parent once, not
        // once per entry. Nothing is written meanwhile, so the fd stays
        // right.
        let mut parent: Option<(WirePath, Option<OwnedFd>)> = None;
        for (i, e) in entries.iter().enumerate() {
            let (Some(dir_path), Some(name)) = (e.path.parent(), e.path.file_name()) else {
                // The namespace root itself: never a file or link, and a
                // directory that exists; its metadata is not kept.
                continue;
            };
            if parent.as_ref().map(|(p, _)| p) != Some(&dir_path) {
                let fd = self.tree.dir(&dir_path).ok();
                parent = Some((dir_path, fd));
            }
            let dir = parent
                .as_ref()
                .and_then(|(_, fd)| fd.as_ref())
                .map(|fd| fd.as_raw_fd());
            let name = OsStr::from_bytes(name);
            let same = dir.is_some_and(|dir| {
                match stat::fstatat(Some(dir), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) => compare::unchanged(
                        e,
                        &stored_stat(&st),
                        || {
                            nix::fcntl::readlinkat(Some(dir), name)
                                .ok()
                                .map(|t| t.as_bytes().to_vec())
                        },
                        || xattr::meta_at(dir, name.as_bytes()).map(|r| r.mode),
                    ),
                    Err(_) => false,
                }
            });
            if !same {
                bits.set(i);
            }
        }
        bits
    }

    /// The listing entry for `path` (shown as `name`), which `lstat` just
    /// described as `st`.
    pub fn list_item(
        &self,
        path: &WirePath,
        name: &[u8],
        st: &FileStat,
    ) -> Result<ListItem, FsError> {
        let kind = kind_of(st).ok_or_else(|| {
            FsError::other(
                "list",
                self.show(path),
                "not a regular file, directory or symlink",
            )
        })?;
        let target = if kind == EntryKind::Symlink {
            self.readlink(path)?
        } else {
            Vec::new()
        };
        let size = match kind {
            EntryKind::File => st.st_size.max(0) as u64,
            EntryKind::Symlink => target.len() as u64,
            EntryKind::Dir => st.st_size.max(0) as u64,
        };
        Ok(ListItem {
            kind,
            name: name.to_vec(),
            meta: self.stored_meta(path, st),
            size,
            target,
        })
    }

    /// The real mode and mtime of the stored entry at `path`, which
    /// `lstat` just described as `st`: the mode from its metadata record
    /// when it has one (see [`crate::store::modes`]).
    pub fn stored_meta(&self, path: &WirePath, st: &FileStat) -> Meta {
        let mut meta = meta_of(st);
        if matches!(kind_of(st), Some(EntryKind::File | EntryKind::Dir)) {
            let recorded = self
                .tree
                .parent(path)
                .ok()
                .and_then(|(dir, name)| xattr::meta_at(dir.as_raw_fd(), name));
            meta.mode = modes::real(meta.mode, recorded.map(|r| r.mode));
        }
        meta
    }
}

impl Stager {
    /// Answers a backup's manifest: which entries are needed, and how much
    /// of each needed file a partial already holds.
    pub fn check(&self, entries: &[ManifestEntry]) -> Checked {
        let need = self.tree().need(entries);
        let resume = entries
            .iter()
            .enumerate()
            .filter(|(i, e)| e.kind == EntryKind::File && need.get(*i))
            .filter_map(|(i, e)| {
                Some((
                    u32::try_from(i).ok()?,
                    self.partial_len(&e.path, e.size, &e.meta)?,
                ))
            })
            .collect();
        Checked { need, resume }
    }
}
