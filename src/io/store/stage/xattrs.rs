//! A staged entry's extended attributes: the set an `Xattrs` frame
//! announced for the entry that follows, a directory's given when it is
//! made (only its digest waits for the commit), and a restore's alignment
//! of a file it leaves as it is. Part of [`super`], split off for length;
//! the system calls are [`super::super::xattr`]'s.

use std::os::fd::{AsFd, AsRawFd};

use super::{Applied, Stager};
use crate::io::error::FsError;
use crate::proto::xattrs::Xattrs;
use crate::proto::WirePath;

impl Stager {
    /// How many extended attributes a restore could not set or remove
    /// (not permitted, or not supported where it writes).
    pub fn xattrs_refused(&self) -> u64 {
        u64::from(self.left_out.get()[2])
    }

    /// Keeps `attrs` for the entry at `path` that comes next (a file or a
    /// directory); any other entry drops them.
    pub fn set_xattrs(&mut self, path: WirePath, attrs: Xattrs) {
        self.xattrs = Some((path, Box::new(attrs)));
    }

    /// The attributes kept for `path`, if they are for it.
    pub(in crate::io::store) fn take_xattrs(&mut self, path: &WirePath) -> Option<Box<Xattrs>> {
        self.xattrs
            .take()
            .filter(|(p, _)| p == path)
            .map(|(_, x)| x)
    }

    /// Gives the file already at `path`, which a restore leaves as it is
    /// (the same size, mtime and mode as the one sent), exactly the
    /// attributes `set`, where they differ: a restore brings back its
    /// attributes even when its content is already there. What cannot be
    /// set is counted as [`Self::xattrs_refused`].
    pub fn align_xattrs(&mut self, path: &WirePath, set: Option<&Xattrs>) {
        let Ok(fd) = self.ns.tree.open_file(path) else {
            // Unreadable here: its attributes cannot be compared either.
            self.count(Applied {
                xattrs_refused: u32::from(set.is_some()),
                ..Applied::default()
            });
            return;
        };
        let on = crate::io::xattrs::On::Fd(fd.as_raw_fd());
        // rsb's own markers are not the file's: left out on both sides.
        fn theirs(x: Option<&Xattrs>) -> impl Iterator<Item = &(Vec<u8>, Vec<u8>)> {
            x.map_or(&[][..], Xattrs::pairs)
                .iter()
                .filter(|(n, _)| !n.starts_with(b"user.rsb."))
        }
        let have = crate::io::xattrs::read_all(on).ok().flatten();
        if theirs(have.as_ref()).eq(theirs(set)) {
            return;
        }
        let refused =
            super::xattr::apply_xattrs(fd.as_fd(), set, super::xattr::XattrPlace::Native, true)
                .unwrap_or(1);
        self.count(Applied {
            xattrs_refused: refused,
            ..Applied::default()
        });
    }

    /// Gives the directory at `path` exactly the attributes `set` now,
    /// removing others it has: its contents came before it, and only the
    /// digest is held until the commit (a batch of directories would
    /// otherwise hold up to 56 KiB each). A directory with none that
    /// cannot have had some (`had` false) is left alone, at no syscall.
    pub(in crate::io::store) fn dir_xattrs(
        &mut self,
        path: &WirePath,
        set: Option<&Xattrs>,
        had: bool,
    ) -> Result<u64, FsError> {
        if set.is_none() && !had {
            return Ok(0);
        }
        let fd = self.dir(path)?;
        let place = if self.opts.fake_super {
            super::xattr::XattrPlace::Stored
        } else {
            super::xattr::XattrPlace::Native
        };
        // Native attributes (a default ACL, a security label) reach files
        // made in the directory afterwards: the files already sent are
        // made first (see `deferred`).
        let changes = || {
            set.is_some()
                || crate::io::xattrs::names(crate::io::xattrs::On::Fd(fd.as_raw_fd()))
                    .map_or(true, |n| !n.is_empty())
        };
        if !self.opts.fake_super && self.writer.is_some() && changes() {
            self.wait_writes();
        }
        let refused = super::xattr::apply_xattrs(fd.as_fd(), set, place, had)
            .map_err(|(op, e)| FsError::errno(op, self.ns.tree.show(path), e))?;
        self.count(Applied {
            xattrs_refused: refused,
            ..Applied::default()
        });
        Ok(set.map_or(0, Xattrs::digest))
    }
}
