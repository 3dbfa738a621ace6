//! Room on the disk for what a stager writes: the free space looked at
//! now and then, and kept partials given up before a full disk fails a
//! backup ([`Stager::make_room`]). Part of [`super`], split off for
//! length.

use std::os::fd::{BorrowedFd, RawFd};

use super::{partial, Stager};
use crate::proto::WirePath;

/// How long a look at the free space stands for `make_room` (other
/// writers share the file system).
const ROOM_STALE: std::time::Duration = std::time::Duration::from_secs(1);

impl Stager {
    /// When the file system holding `dir` has less than `need` bytes free
    /// for us, removes partials nobody holds (oldest first, see
    /// [`partial::reclaim`]): a full disk gives up kept parts of cut
    /// transfers before it fails a backup. Tried once per stager when it
    /// frees nothing, so a disk that stays full is not searched again and
    /// again. The free space is not asked for each file (a `statvfs`
    /// per small file was a tenth of the server's system calls): after
    /// one, half of what was free may be staged, for at most
    /// [`ROOM_STALE`], before the next.
    pub(super) fn make_room(&mut self, dir: RawFd, need: u64) {
        if need == 0 || !self.opts.keep_partials || self.reclaim_failed {
            return;
        }
        let now = std::time::Instant::now();
        let (room, at) = self.room;
        if need <= room && at.is_some_and(|t| now.saturating_duration_since(t) < ROOM_STALE) {
            self.room.0 = room - need;
            return;
        }
        // SAFETY: dir is an open descriptor borrowed for the call.
        let dir = unsafe { BorrowedFd::borrow_raw(dir) };
        let Ok(vfs) = nix::sys::statvfs::fstatvfs(dir) else {
            return;
        };
        let free = vfs.blocks_available().saturating_mul(vfs.fragment_size());
        if free >= need {
            self.room = ((free - need) / 2, Some(now));
            return;
        }
        self.room = (0, None);
        let freed = partial::reclaim(&self.ns.tree, need - free);
        if freed > 0 {
            log::info!(
                "{}: disk full: removed {freed} bytes of kept partial transfers",
                self.ns.tree.show(&WirePath::root())
            );
        } else {
            self.reclaim_failed = true;
        }
    }
}
