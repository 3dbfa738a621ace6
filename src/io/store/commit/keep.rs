//! Putting a staged entry in place where another stands: keeping the old
//! one in the namespace's history (see [`super::super::history`]: it is
//! linked, a file, link or special file, or moved, a directory, into the
//! commit's batch first, then the new one takes the name), or, where no
//! history is kept (a restore), swapping a type change in one exchange.

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, RenameFlags};

use super::super::tmp;
use nix::sys::stat;

use super::super::beneath::{os, Beneath};
use super::super::history::Keeper;
use crate::proto::WirePath;

/// Renames `tmp` of `dir` (the tree's directory `parent`) to `name`,
/// keeping the entry that stood there.
fn put_keeping(
    keeper: &mut Keeper,
    tree: &Beneath,
    dir: RawFd,
    parent: &WirePath,
    tmp: &[u8],
    name: &[u8],
) -> Result<(), Errno> {
    // Most entries are new: one call puts them in place and tells.
    match fcntl::renameat2(
        Some(dir),
        os(tmp),
        Some(dir),
        os(name),
        RenameFlags::RENAME_NOREPLACE,
    ) {
        Ok(()) => return Ok(()),
        Err(Errno::EEXIST) => {}
        // A file system without RENAME_NOREPLACE: look first.
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {}
        Err(e) => return Err(e),
    }
    let old = match stat::fstatat(Some(dir), os(name), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return fcntl::renameat(Some(dir), os(tmp), Some(dir), os(name)),
        Err(e) => return Err(e),
    };
    if old.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR {
        keeper.take(tree, dir, parent, name)?;
        if let Err(e) = fcntl::renameat(Some(dir), os(tmp), Some(dir), os(name)) {
            if let Err(back) = keeper.put_back(tree, dir, parent, name) {
                log::warn!(
                    "{}: left in history after a failed replacement: {}",
                    tree.show_in(parent, name),
                    back.desc()
                );
            }
            return Err(e);
        }
        return Ok(());
    }
    keeper.link(tree, dir, parent, name)?;
    fcntl::renameat(Some(dir), os(tmp), Some(dir), os(name)).inspect_err(|_| {
        keeper.drop_link(tree, parent, name);
    })
}

/// Puts the staged file, link or special file `tmp` of `dir` (the tree's
/// directory `parent`) in the place of `name`: what stood there is kept
/// in history where history is kept, and a directory there is swapped out
/// where it is not; says where a swapped-out entry went (to be removed
/// once everything new is in place).
pub(super) fn put_entry(
    keeper: &mut Keeper,
    tree: &Beneath,
    dir: RawFd,
    parent: &WirePath,
    tmp: &[u8],
    name: &[u8],
) -> Result<Option<Vec<u8>>, Errno> {
    if keeper.enabled() {
        return put_keeping(keeper, tree, dir, parent, tmp, name).map(|()| None);
    }
    match fcntl::renameat(Some(dir), os(tmp), Some(dir), os(name)) {
        Ok(()) => Ok(None),
        // A directory stands where the new file or link goes: they swap,
        // and the old tree goes below, once every new entry is in place.
        Err(Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST) => swap(dir, tmp, name),
        Err(e) => Err(e),
    }
}

/// Puts the directory `tmp` of `dir` (the tree's directory `parent`) in
/// the place of the file or link `name`, which is kept first; says where
/// the old entry went, as [`swap`] does.
pub(super) fn put_dir(
    keeper: &mut Keeper,
    tree: &Beneath,
    dir: RawFd,
    parent: &WirePath,
    tmp: &[u8],
    name: &[u8],
) -> Result<Option<Vec<u8>>, Errno> {
    keeper.link(tree, dir, parent, name)?;
    swap(dir, tmp, name)
}

/// Puts the entry `tmp` in `dir` in the place of `name`, of another type,
/// and says where the old entry went. One `renameat2(RENAME_EXCHANGE)`
/// where the file system has it: `name` holds the old or the new entry at
/// every instant, and the old one ends under `tmp`, a name the sweep of a
/// later run removes. Elsewhere two renames, the old entry moved aside
/// under `.rsb-tmp.old.*` first: a crash between them leaves that, never
/// swept, as the only copy.
pub(super) fn swap(dir: RawFd, tmp: &[u8], name: &[u8]) -> Result<Option<Vec<u8>>, Errno> {
    match fcntl::renameat2(
        Some(dir),
        os(tmp),
        Some(dir),
        os(name),
        RenameFlags::RENAME_EXCHANGE,
    ) {
        Ok(()) => {
            test_swap_delay();
            Ok(Some(tmp.to_vec()))
        }
        // Nothing is there any more: the new entry just goes in.
        Err(Errno::ENOENT) => {
            fcntl::renameat(Some(dir), os(tmp), Some(dir), os(name)).map(|()| None)
        }
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
            let old = tmp::fresh_old();
            fcntl::renameat(Some(dir), os(name), Some(dir), os(&old))?;
            if let Err(e) = fcntl::renameat(Some(dir), os(tmp), Some(dir), os(name)) {
                let _ = fcntl::renameat(Some(dir), os(&old), Some(dir), os(name));
                return Err(e);
            }
            test_swap_delay();
            Ok(Some(old))
        }
        Err(e) => Err(e),
    }
}

/// `RSB_TEST_SWAP_DELAY_MS`: a pause after each type change a commit puts
/// in place, so the fault tests can kill a process at many points of such
/// a commit (server and restoring client alike).
fn test_swap_delay() {
    static DELAY: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    let d = DELAY.get_or_init(|| {
        std::env::var("RSB_TEST_SWAP_DELAY_MS")
            .ok()?
            .parse()
            .ok()
            .map(std::time::Duration::from_millis)
    });
    if let Some(d) = d {
        std::thread::sleep(*d);
    }
}
