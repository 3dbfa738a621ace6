//! What a fresh file is created with, so that its metadata costs no call
//! that changes nothing: it is created with the mode it will have on disk
//! where that mode is a plain one (owner read and write, no set-id or
//! sticky bit, nothing the umask takes), and it belongs to whoever made
//! it, so the `fchmod` and the `fchown` that would give it what it has
//! already are left out ([`StageOptions::apply_mode_made`]). Small files
//! arrive by the thousand: these were two of the server's nine calls per
//! file.
//!
//! The prediction (the process's ids, the group of a directory of that
//! group, the umask) is checked once per stager, against an `fstat` of
//! its first fresh file: a file system that gives new files other
//! owners or modes (squashing, `gid=` mount options) turns it off for
//! that stager. Part of [`super`], split off for length.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::OnceLock;

use nix::sys::stat::{self, Mode};
use nix::unistd;

use super::{is_root, Stager};
use crate::proto::owners::UNKNOWN_ID;
use crate::proto::{EntryKind, Meta};
use crate::store::modes;

/// The mode and owner a fresh file was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::io::store) struct Made {
    /// Its mode (`None`: not known, the umask could not be read).
    pub(in crate::io::store) mode: Option<u32>,
    /// Its owner and group.
    pub(in crate::io::store) uid: u32,
    /// Its group.
    pub(in crate::io::store) gid: u32,
}

impl Made {
    /// Whether it has the owner and group `meta` asks for already
    /// ([`UNKNOWN_ID`] asks for none).
    pub(in crate::io::store) fn owns(&self, meta: &Meta) -> bool {
        (meta.uid == UNKNOWN_ID || meta.uid == self.uid)
            && (meta.gid == UNKNOWN_ID || meta.gid == self.gid)
    }

    /// Whether it has the mode `mode` on disk already.
    pub(in crate::io::store) fn has_mode(&self, mode: u32) -> bool {
        self.mode == Some(mode & 0o7777)
    }
}

/// This process's umask, read once from `/proc/self/status` (reading it
/// with `umask(2)` means setting it, which races with other threads).
fn umask() -> Option<u32> {
    static UMASK: OnceLock<Option<u32>> = OnceLock::new();
    *UMASK.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
        u32::from_str_radix(line.trim(), 8).ok()
    })
}

/// This process's effective user and group, read once (the server never
/// changes them; each is a system call).
fn ids() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| (unistd::geteuid().as_raw(), unistd::getegid().as_raw()))
}

impl Stager {
    /// The mode to create a fresh file of `meta` with, and what it will
    /// then have if the prediction holds (`None`: it is not trusted here,
    /// see [`Self::check_made`]). `parent_gid`: the group of the directory
    /// it is made in.
    pub(super) fn to_make(&self, meta: &Meta, parent_gid: u32) -> (Mode, Option<Made>) {
        let real = meta.mode & 0o7777;
        let disk = if self.opts.fake_super {
            modes::on_disk(real, EntryKind::File, is_root())
        } else {
            real
        };
        let mask = umask();
        let plain = |m: u32| m & 0o7000 == 0 && m & 0o600 == 0o600;
        let mode = match mask {
            Some(u) if plain(disk) && disk & u == 0 => disk,
            _ => 0o600,
        };
        let (uid, gid) = ids();
        // A new file takes the directory's group or the process's, as the
        // directory's set-group-ID bit and the mount say: where the two
        // agree, either way.
        let made = (self.made_ok != Some(false) && parent_gid == gid).then_some(Made {
            mode: mask.map(|_| mode),
            uid,
            gid,
        });
        (Mode::from_bits_truncate(mode), made)
    }

    /// What the fresh file `fd` was made with: `made` as predicted, after
    /// the first file of this stager showed (one `fstat`) that the file
    /// system gives new files what the prediction says; that file's own
    /// mode and owner otherwise.
    pub(super) fn check_made(&mut self, fd: &OwnedFd, made: Option<Made>) -> Option<Made> {
        if self.made_ok.is_some() || made.is_none() {
            return made;
        }
        let st = stat::fstat(fd.as_raw_fd()).ok()?;
        let actual = Made {
            mode: Some(st.st_mode & 0o7777),
            uid: st.st_uid,
            gid: st.st_gid,
        };
        self.made_ok = Some(made.is_some_and(|m| m == actual));
        Some(actual)
    }
}
