//! How a commit makes its batch durable. `syncfs` flushes the whole file
//! system at once (two calls per commit whatever the batch holds), but on
//! FUSE and network file systems (GlusterFS, ceph-fuse, MooseFS, sshfs...)
//! it returns 0 without flushing anything. There a commit instead fsyncs
//! each staged file before its rename and every directory it changed
//! after the renames, as POSIX promises on any file system.
//!
//! [`Sync::Auto`] (the default) picks `syncfs` only on a file system known
//! to flush through it (`fstatfs` `f_type` on an allow-list: ext2/3/4,
//! xfs, btrfs, tmpfs, f2fs, zfs, jfs, reiserfs, bcachefs, ramfs), and
//! `fsync` everywhere else; `rsb-server --sync` forces either. One setting
//! per process, read at each commit.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};

use nix::sys::statfs;

/// How commits make their batches durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// `syncfs` where the file system is known to honour it, else `fsync`.
    Auto,
    /// `fsync` of each staged file and each changed directory.
    Fsync,
    /// `syncfs` of the whole file system, before and after the renames.
    Syncfs,
}

impl Sync {
    /// Parses `auto`, `fsync` or `syncfs`.
    pub fn parse(s: &str) -> Option<Sync> {
        match s {
            "auto" => Some(Sync::Auto),
            "fsync" => Some(Sync::Fsync),
            "syncfs" => Some(Sync::Syncfs),
            _ => None,
        }
    }
}

static MODE: AtomicU8 = AtomicU8::new(0);

/// Sets how every later commit of this process makes its batch durable.
pub fn set_sync(mode: Sync) {
    let v = match mode {
        Sync::Auto => 0,
        Sync::Fsync => 1,
        Sync::Syncfs => 2,
    };
    MODE.store(v, Ordering::Relaxed);
}

/// The file system types whose `syncfs` is known to write everything
/// back (the `f_type` magic numbers of `statfs(2)`).
const SYNCFS_WORKS: [i64; 12] = [
    0xEF53,      // ext2, ext3, ext4
    0x5846_5342, // xfs
    0x9123_683E, // btrfs
    0x0102_1994, // tmpfs
    0xF2F5_2010, // f2fs
    0x2FC1_2FC1, // zfs
    0x3153_464A, // jfs
    0x5265_4973, // reiserfs
    0xCA45_1A4E, // bcachefs
    0x8584_58F6, // ramfs
    0x0000_4D44, // vfat
    0x5346_544E, // ntfs
];

/// True if commits on the file system of `fd` are to use `syncfs`.
pub fn use_syncfs(fd: RawFd) -> bool {
    match MODE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            // SAFETY: `fd` is an open descriptor for the call's duration.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            statfs::fstatfs(fd).is_ok_and(|s| {
                #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
                let t = s.filesystem_type().0 as i64;
                SYNCFS_WORKS.contains(&t)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_modes_only() {
        assert_eq!(Sync::parse("auto"), Some(Sync::Auto));
        assert_eq!(Sync::parse("fsync"), Some(Sync::Fsync));
        assert_eq!(Sync::parse("syncfs"), Some(Sync::Syncfs));
        assert_eq!(Sync::parse("Fsync"), None);
    }
}
