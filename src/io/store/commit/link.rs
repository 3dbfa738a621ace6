//! A hard link made at a commit (see [`Stager::link`]): after the batch's
//! other entries are in place, from a stored target checked first.

use std::os::fd::AsRawFd;

use nix::fcntl::AtFlags;
use nix::sys::stat;
use nix::unistd::{self, UnlinkatFlags};

use super::super::beneath::os;
use super::super::stage::{remove_tree, PendingLink, Stager};
use super::super::tmp;
use super::put_entry;
use crate::io::error::FsError;
use crate::io::store::history::Keeper;

impl Stager {
    /// Makes the hard link `l` at a commit: the stored target must be a
    /// regular file (never a symlink: looked up beneath the namespace with
    /// no link followed) of the link's size and mtime, so a target that
    /// failed or changed is never linked to; it is linked to a temporary
    /// name in the link's directory and renamed over the final name.
    pub(super) fn make_link(&self, l: &PendingLink, keeper: &mut Keeper) -> Result<(), FsError> {
        let show = || {
            format!(
                "{} (a link to {})",
                self.ns.tree.show(&l.path),
                self.ns.tree.show(&l.target)
            )
        };
        let (Some(tp), Some(tname), Some(lp), Some(lname)) = (
            l.target.parent(),
            l.target.file_name(),
            l.path.parent(),
            l.path.file_name(),
        ) else {
            return Err(FsError::invalid("link", show(), "no name"));
        };
        let tdir = self.dir(&tp)?;
        let st = stat::fstatat(
            Some(tdir.as_raw_fd()),
            os(tname),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| FsError::errno("link", show(), e))?;
        let is_file = st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG;
        let same = u64::try_from(st.st_size).is_ok_and(|n| n == l.size)
            && st.st_mtime == l.meta.mtime.secs
            && st.st_mtime_nsec == i64::from(l.meta.mtime.nanos);
        if !is_file || !same {
            return Err(FsError::other(
                "link",
                show(),
                "the stored target is not that file (it failed or changed)",
            ));
        }
        let ldir = self.dir(&lp)?;
        let ldir = ldir.as_raw_fd();
        // Already that file: nothing to do (a rename between two names of
        // one inode does nothing and would leave the temporary name).
        if let Ok(cur) = stat::fstatat(Some(ldir), os(lname), AtFlags::AT_SYMLINK_NOFOLLOW) {
            if (cur.st_dev, cur.st_ino) == (st.st_dev, st.st_ino) {
                return Ok(());
            }
        }
        let tmp = tmp::fresh_tmp();
        unistd::linkat(
            Some(tdir.as_raw_fd()),
            os(tname),
            Some(ldir),
            os(&tmp),
            AtFlags::empty(),
        )
        .map_err(|e| FsError::errno("link", show(), e))?;
        // A directory that stands where the link goes goes, as when a
        // file replaces one.
        let res = put_entry(keeper, &self.ns.tree, ldir, &lp, &tmp, lname).map(|old| {
            if let Some(old) = old {
                let _ = remove_tree(ldir, &old, 0);
            }
        });
        res.map_err(|e| {
            let _ = unistd::unlinkat(Some(ldir), os(&tmp), UnlinkatFlags::NoRemoveDir);
            FsError::errno("rename", show(), e)
        })
    }
}
