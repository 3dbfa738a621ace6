//! Putting a batch's new directories in place (see `stage/built.rs`):
//! each, built under a temporary name with its entries at their final
//! names inside, takes its name in one `renameat2(RENAME_NOREPLACE)`.
//! Where a directory of that name appeared meanwhile (the batch before
//! this one built it too, another connection of the same client made it),
//! the new tree is merged into it entry by entry: an entry whose name is
//! free moves as it is (a directory with everything in it), a directory
//! into a directory of the same name goes on inside and, when the batch
//! holds that directory's entry, gives it exactly the extended attributes
//! the entry set on the one being built; anything else is put in place as
//! a staged entry is (what
//! it replaces kept in history); what is left is removed. Only the merged
//! batch ever wrote into what is merged, and its writes are done.

use std::os::fd::{AsRawFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, RenameFlags};
use nix::sys::stat;

use super::super::beneath::{entries_at, open_dir_at, os, remove_tree};
use super::super::history::Keeper;
use super::super::tmp;
use super::keep::{put_dir, put_entry};
use super::{CommitFailure, Stager};
use crate::io::error::FsError;
use crate::io::xattrs;
use crate::proto::path::is_tmp_name;
use crate::proto::{Meta, WirePath};
use crate::store::record::XATTR_PREFIX;

/// Where a merge stops going deeper.
const DEPTH_MAX: usize = 4096;

/// An entry that did not get in place, and why.
pub(super) type Missed = (WirePath, FsError);

impl Stager {
    /// Puts every new directory of the batch in place (see the module's
    /// text), leaving its stand-ins for later; what did not get in is
    /// returned (an entry staged inside it is a failure, not committed).
    pub(super) fn publish_new(
        &mut self,
        keeper: &mut Keeper,
        olds: &mut Vec<(WirePath, Vec<u8>)>,
        failures: &mut Vec<CommitFailure>,
        dirs: &[(WirePath, Meta, u64)],
    ) -> Vec<Missed> {
        let mut missed = Vec::new();
        let (new, stand_ins): (Vec<_>, Vec<_>) = std::mem::take(&mut self.displaced)
            .into_iter()
            .partition(|d| d.new);
        self.displaced = stand_ins;
        for d in new {
            let path = d.path();
            // Never inside another directory being built: its parent is
            // in the tree.
            let dir = match self.ns.tree.dir(&d.parent) {
                Ok(dir) => dir,
                Err(error) => {
                    missed.push((path, error));
                    continue;
                }
            };
            let dir = dir.as_raw_fd();
            let ours = Some(dir);
            let res = match fcntl::renameat2(
                ours,
                os(&d.tmp),
                ours,
                os(&d.name),
                RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => continue,
                Err(Errno::EEXIST) => Ok(()),
                // A file system without RENAME_NOREPLACE: look first.
                Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
                    match stat::fstatat(ours, os(&d.name), AtFlags::AT_SYMLINK_NOFOLLOW) {
                        Err(Errno::ENOENT) => {
                            match fcntl::renameat(ours, os(&d.tmp), ours, os(&d.name)) {
                                Ok(()) => continue,
                                Err(e) => Err(e),
                            }
                        }
                        _ => Ok(()),
                    }
                }
                Err(e) => Err(e),
            };
            let show = |e| FsError::errno("rename", self.ns.tree.show(&path), e);
            let merged = res.and_then(|()| {
                let from = open_dir_at(dir, &d.tmp)?;
                let into = open_dir_at(dir, &d.name)?;
                let mut m = Merge {
                    stager: self,
                    dirs,
                    keeper: &mut *keeper,
                    olds: &mut *olds,
                    missed: &mut missed,
                };
                m.attributes(from.as_raw_fd(), into.as_raw_fd(), &path);
                m.merge(from.as_raw_fd(), into.as_raw_fd(), &path, 0);
                Ok(())
            });
            match merged {
                Ok(()) => {}
                // A file or link stands there (put in by another
                // connection meanwhile): the directory takes its place as
                // a stand-in would.
                Err(Errno::ENOTDIR) => {
                    let r = put_dir(keeper, &self.ns.tree, dir, &d.parent, &d.tmp, &d.name);
                    match r {
                        Ok(old) => olds.extend(old.map(|o| (d.parent.clone(), o))),
                        Err(e) => missed.push((path.clone(), show(e))),
                    }
                }
                Err(e) => missed.push((path.clone(), show(e))),
            }
            // What did not go in (and, merged, the emptied directories).
            let _ = remove_tree(dir, &d.tmp, 0);
        }
        for (path, error) in &missed {
            failures.push(CommitFailure {
                id: 0,
                path: path.clone(),
                error: error.clone(),
            });
        }
        missed
    }
}

/// One merge of a new tree into the directory of its name.
struct Merge<'a> {
    stager: &'a Stager,
    /// The directories whose entries the batch holds.
    dirs: &'a [(WirePath, Meta, u64)],
    keeper: &'a mut Keeper,
    olds: &'a mut Vec<(WirePath, Vec<u8>)>,
    missed: &'a mut Vec<Missed>,
}

impl Merge<'_> {
    /// Gives the directory `into` (the tree's `path`) exactly the extended
    /// attributes of `from`, merged into it, when the batch holds the
    /// directory's entry: that entry set them on `from` (otherwise `from`
    /// has only what it inherited when it was made, and `into` keeps its
    /// own). Only the attributes a directory's entry sets: in a store the
    /// client's (`user.rsb.x.*`, not rsb's own records), in a restore all
    /// but rsb's markers.
    fn attributes(&self, from: RawFd, into: RawFd, path: &WirePath) {
        if !self.dirs.iter().any(|(p, _, _)| p == path) {
            return;
        }
        let stored = self.stager.opts.fake_super;
        let ours = |n: &[u8]| {
            if stored {
                n.starts_with(XATTR_PREFIX)
            } else {
                !n.starts_with(b"user.rsb.")
            }
        };
        let Ok(set) = xattrs::read_all(xattrs::On::Fd(from)) else {
            return;
        };
        let pairs = set.as_ref().map_or(&[][..], |s| s.pairs());
        let warn = |e: Errno| {
            // The entries are in: only the directory lacks it.
            log::warn!(
                "{}: extended attributes not merged: {}",
                self.stager.ns.tree.show(path),
                e.desc()
            );
        };
        for name in xattrs::names(xattrs::On::Fd(into)).unwrap_or_default() {
            if ours(&name) && !pairs.iter().any(|(n, _)| *n == name) {
                if let Err(e) = xattrs::remove(xattrs::On::Fd(into), &name) {
                    warn(e);
                }
            }
        }
        for (name, value) in pairs.iter().filter(|(n, _)| ours(n)) {
            if let Err(e) = xattrs::set(xattrs::On::Fd(into), name, value) {
                warn(e);
            }
        }
    }

    /// Moves every entry of `from` into `into` (the tree's directory
    /// `path`): where nothing of the name is, as it is; a directory into a
    /// directory, entry by entry; anything else in the place of what is
    /// there, as a staged entry.
    fn merge(&mut self, from: RawFd, into: RawFd, path: &WirePath, depth: usize) {
        let stager = self.stager;
        let tree = &stager.ns.tree;
        let entries = match entries_at(from) {
            Ok(e) => e,
            Err(e) => {
                let error = FsError::errno("read directory", tree.show(path), e);
                self.missed.push((path.clone(), error));
                return;
            }
        };
        for (name, _) in entries {
            let Ok(here) = path.join(&name) else { continue };
            let miss = |e| (here.clone(), FsError::errno("rename", tree.show(&here), e));
            let (f, i) = (Some(from), Some(into));
            match fcntl::renameat2(f, os(&name), i, os(&name), RenameFlags::RENAME_NOREPLACE) {
                Ok(()) => continue,
                Err(Errno::EEXIST) => {}
                Err(e) => {
                    self.missed.push(miss(e));
                    continue;
                }
            }
            if is_tmp_name(&name) {
                // A hidden name both have: a partial, say. Ours goes.
                let _ = remove_tree(from, &name, 0);
                continue;
            }
            let is_dir = |fd| {
                stat::fstatat(Some(fd), os(&name), AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR)
            };
            let mine = is_dir(from);
            if mine && is_dir(into) && depth < DEPTH_MAX {
                match (open_dir_at(from, &name), open_dir_at(into, &name)) {
                    (Ok(a), Ok(b)) => {
                        self.attributes(a.as_raw_fd(), b.as_raw_fd(), &here);
                        self.merge(a.as_raw_fd(), b.as_raw_fd(), &here, depth + 1);
                    }
                    (Err(e), _) | (_, Err(e)) => self.missed.push(miss(e)),
                }
                continue;
            }
            // Moved beside the entry it replaces, then put in its place.
            let tmp = tmp::fresh_tmp();
            if let Err(e) =
                fcntl::renameat2(f, os(&name), i, os(&tmp), RenameFlags::RENAME_NOREPLACE)
            {
                self.missed.push(miss(e));
                continue;
            }
            let put = if mine {
                put_dir(self.keeper, tree, into, path, &tmp, &name)
            } else {
                put_entry(self.keeper, tree, into, path, &tmp, &name)
            };
            match put {
                Ok(old) => self.olds.extend(old.map(|o| (path.clone(), o))),
                Err(e) => {
                    let _ = remove_tree(into, &tmp, 0);
                    self.missed.push(miss(e));
                }
            }
        }
    }
}
