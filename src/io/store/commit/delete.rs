//! Deletions at the commit: a directory the client read whole
//! ([`Stager::delete_absent`]) loses every stored entry whose name the
//! client no longer has. Each such entry is moved, whole and in one
//! rename, into the commit's history batch (a deleted directory of 10,000
//! files is one rename), so nothing a backup deletes is destroyed; the
//! batch's index names it, and a crash before the batch is published is
//! put right by the history's repair like any replaced entry.
//!
//! The directory gets its mtime back afterwards (removing a name changes
//! it): it is a backed-up entry, and the next run must find it unchanged.
//! Names the store reserves (`.rsb-tmp.*`: staging files of other
//! connections, partials, the history itself) are never touched.
//!
//! Must not decide which names the client has: the session's manifests
//! did (`server/session/closed.rs`).

use std::collections::BTreeSet;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::stat;
use nix::sys::time::TimeSpec;

use super::super::beneath::entries_at;
use super::super::history::Keeper;
use super::super::stage::{omit, PendingDelete, Stager};
use super::CommitFailure;
use crate::io::error::FsError;
use crate::proto::path::is_tmp_name;
use crate::proto::WirePath;
use crate::server::command::Names;

impl Stager {
    /// At the commit, every entry of the stored directory `path` whose
    /// name is not in `keep` leaves the tree for history. A stager that
    /// keeps no history (a restore's) never deletes.
    pub fn delete_absent(&mut self, id: u32, path: WirePath, keep: Names) {
        if self.opts.keep_history {
            self.deletes.push(PendingDelete { id, path, keep });
        }
    }

    /// Carries out the deletions of a commit into `keeper`'s batch; the
    /// directories changed are added to `changed` (the fsync mode syncs
    /// them). Returns how many entries left the tree.
    pub(super) fn apply_deletes(
        &mut self,
        deletes: Vec<PendingDelete>,
        keeper: &mut Keeper,
        changed: &mut BTreeSet<WirePath>,
        failures: &mut Vec<CommitFailure>,
    ) -> u64 {
        let mut deleted = 0;
        for d in deletes {
            match self.delete_in(&d, keeper, failures) {
                Ok(0) => {}
                Ok(n) => {
                    deleted += n;
                    changed.insert(d.path);
                }
                Err(error) => failures.push(CommitFailure {
                    id: d.id,
                    path: d.path,
                    error,
                }),
            }
        }
        deleted
    }

    /// The deletions in one directory; a directory that is not there (or
    /// not a directory) any more has nothing to delete.
    fn delete_in(
        &self,
        d: &PendingDelete,
        keeper: &mut Keeper,
        failures: &mut Vec<CommitFailure>,
    ) -> Result<u64, FsError> {
        let tree = &self.ns.tree;
        let dir = match tree.dir(&d.path) {
            Ok(fd) => fd,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENOENT | nix::libc::ENOTDIR | nix::libc::ELOOP)
                ) =>
            {
                return Ok(0)
            }
            Err(e) => return Err(e),
        };
        let fd = dir.as_raw_fd();
        let before = stat::fstat(fd).map_err(|e| FsError::errno("stat", tree.show(&d.path), e))?;
        let names = entries_at(fd).map_err(|e| FsError::errno("readdir", tree.show(&d.path), e))?;
        let keep = d.keep.sorted();
        let mut moved = 0;
        for (name, _) in names {
            if is_tmp_name(&name) || keep.binary_search(&name.as_slice()).is_ok() {
                continue;
            }
            match keeper.take(tree, fd, &d.path, &name) {
                Ok(()) => moved += 1,
                // Gone meanwhile: nothing to keep.
                Err(Errno::ENOENT) => {}
                Err(e) => failures.push(CommitFailure {
                    id: d.id,
                    path: d.path.join(&name).unwrap_or_else(|_| d.path.clone()),
                    error: FsError::errno("rename", tree.show_in(&d.path, &name), e),
                }),
            }
        }
        if moved > 0 {
            let mtime = TimeSpec::new(before.st_mtime, before.st_mtime_nsec);
            if let Err(e) = stat::futimens(fd, &omit(), &mtime) {
                failures.push(CommitFailure {
                    id: d.id,
                    path: d.path.clone(),
                    error: FsError::errno("utimes", tree.show(&d.path), e),
                });
            }
        }
        Ok(moved)
    }
}
