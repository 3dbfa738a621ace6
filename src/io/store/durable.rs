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
//! per process, read at each commit. A `syncfs` is shared by the commits
//! waiting for one together ([`syncfs_shared`]: group commit).

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};

use nix::errno::Errno;
use nix::sys::{stat, statfs};
use nix::unistd;

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

/// The `syncfs` calls of one file system: how many were started and how
/// many ended, the result of the last one, and whether one is running.
#[derive(Default)]
struct Flushes {
    started: u64,
    ended: u64,
    last: Option<Errno>,
    running: bool,
}

/// Every file system's [`Flushes`], by device number.
static FLUSHES: Mutex<BTreeMap<u64, Flushes>> = Mutex::new(BTreeMap::new());
static FLUSHED: Condvar = Condvar::new();

/// `syncfs` of the file system of `fd`, shared by the commits waiting
/// together (group commit): a caller is done once a `syncfs` that STARTED
/// after it arrived (so after its data was written) has ended, whoever
/// made the call. While one runs, every newcomer waits for it to end and
/// then one of them starts the next, which serves them all: concurrent
/// clients wait for one flush, not for one flush each in turn.
pub fn syncfs_shared(fd: RawFd) -> Result<(), Errno> {
    let dev = stat::fstat(fd)?.st_dev;
    let lock = || FLUSHES.lock().unwrap_or_else(|e| e.into_inner());
    let mut all = lock();
    let need = all.entry(dev).or_default().started + 1;
    loop {
        let f = all.entry(dev).or_default();
        if f.ended >= need {
            return f.last.map_or(Ok(()), Err);
        }
        if !f.running {
            f.running = true;
            f.started += 1;
            let n = f.started;
            drop(all);
            let r = unistd::syncfs(fd);
            count_syncfs();
            all = lock();
            let f = all.entry(dev).or_default();
            f.running = false;
            f.ended = n;
            f.last = r.err();
            FLUSHED.notify_all();
            return r;
        }
        all = FLUSHED.wait(all).unwrap_or_else(|e| e.into_inner());
    }
}

#[cfg(test)]
static SYNCFS_CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn count_syncfs() {
    #[cfg(test)]
    SYNCFS_CALLS.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
thread_local! {
    /// The fsync calls of this thread's commits, for the tests.
    pub(super) static FSYNCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts an fsync of a commit (for the tests).
pub(super) fn count_fsync() {
    #[cfg(test)]
    FSYNCS.with(|n| n.set(n.get() + 1));
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

    #[test]
    fn commits_waiting_together_share_a_syncfs() {
        let t = tempfile::tempdir().unwrap();
        let dir = std::fs::File::open(t.path()).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
        let before = SYNCFS_CALLS.load(Ordering::Relaxed);
        // 16 threads at once, 5 times each: 80 flushes asked for, far fewer
        // made, and every caller returns only after one that started after
        // it arrived.
        let threads: Vec<_> = (0..16)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        syncfs_shared(fd).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let made = SYNCFS_CALLS.load(Ordering::Relaxed) - before;
        // (Other tests' commits may share them too.)
        assert!((1..80).contains(&made), "{made} syncfs calls");
        // Alone, each call makes its own.
        let before = SYNCFS_CALLS.load(Ordering::Relaxed);
        syncfs_shared(fd).unwrap();
        syncfs_shared(fd).unwrap();
        assert!(SYNCFS_CALLS.load(Ordering::Relaxed) - before >= 2);
    }
}
