//! The signature cache: the block signatures ([`Signature`]) of stored
//! files, kept so that the server answers a delta request for a large
//! changed file without reading its old version again. Lives in the
//! namespace as `DIR/NAME/.rsb-tmp.sigs/` ([`SIGS_DIR`], mode 0700), one
//! file per stored inode version, named
//! `<ino>-<size>-<mtime_secs>-<mtime_nanos>` in decimal (a negative
//! mtime keeps its sign: `12-4096--5-0`), holding
//! [`Signature::encode`]'s bytes.
//!
//! A cache, never the truth: a file that does not decode, or whose length
//! is not its name's, is a miss and is removed; a file changed in place
//! with its size and mtime put back still matches its name, and the
//! delta built on the stale signature fails the whole file's crc32c, after
//! which the caller [`SigCache::forget`]s it. Nothing is fsynced: a torn
//! file fails decoding. Bounded by [`MAX_FILES`] and [`MAX_BYTES`]: a
//! store that passes either removes the least recently stored or used
//! entries (oldest mtime: a hit touches it) until under 90 % of both.
//!
//! Opened through [`Namespace::sig_cache`] (or [`SigCache::open`] on a
//! namespace's root directory). The directory's name is in the wire's
//! reserved space, so no client path names it, no listing, restore,
//! deletion, history or measure of the tree enters it (its bytes are not
//! in the dashboard's numbers), and the sweep leaves it alone; its own temporary files
//! (`.rsb-tmp.<salt>.<n>`, renamed over an entry's name when complete)
//! left by a dead process are removed by the next trim here.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, FileStat, Mode};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, UnlinkatFlags};

use super::beneath::{entries_at, open_dir_at, os};
use super::namespace::Namespace;
use super::tmp;
use crate::delta::{block_size, Signature};
use crate::io::delta_io::{fs_block, sign_file};
use crate::io::{describe, kind_of};
use crate::proto::path::TMP_PREFIX;
use crate::proto::EntryKind;
use crate::store::names::SIGS_DIR;

/// Entries the cache holds at most.
pub const MAX_FILES: u64 = 10_000;
/// Bytes the cache's entries hold at most: the signatures of about 7 TiB
/// of files at the largest block (36 bytes per MiB), of 230 GiB at 32 KiB.
pub const MAX_BYTES: u64 = 256 << 20;

/// Which stored inode version a signature is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SigKey {
    /// Its inode number.
    pub ino: u64,
    /// Its length.
    pub size: u64,
    /// Its mtime: seconds and nanoseconds.
    pub mtime: (i64, u32),
}

impl SigKey {
    /// The key of the file `st` describes.
    pub fn of(st: &FileStat) -> SigKey {
        SigKey {
            ino: st.st_ino,
            size: st.st_size.max(0) as u64,
            mtime: (st.st_mtime, st.st_mtime_nsec.clamp(0, 999_999_999) as u32),
        }
    }

    /// Its entry's name in the cache directory.
    fn name(&self) -> String {
        let (secs, nanos) = self.mtime;
        format!("{}-{}-{secs}-{nanos}", self.ino, self.size)
    }
}

/// One namespace's signature cache.
pub struct SigCache {
    dir: OwnedFd,
    /// The directory's (st_dev, st_ino): which tally is its.
    id: (u64, u64),
    max_files: u64,
    max_bytes: u64,
}

/// What a cache directory holds, as far as this process knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    files: u64,
    bytes: u64,
}

/// The tallies of the cache directories this process stored into, by
/// directory: counted by a scan at the first store, then by each store
/// (every [`SigCache`] of one directory shares one), so a store lists the
/// directory only when the count says a bound is passed. Overcounts (a
/// store over an existing name, a forget, an entry removed by hand) only
/// make that scan come early; what another process stores is counted at
/// the next scan.
static TALLIES: Mutex<BTreeMap<(u64, u64), Tally>> = Mutex::new(BTreeMap::new());

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn own(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful openat and is owned
    // by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

impl SigCache {
    /// Opens (creating it if `create`, mode 0700) the cache directory
    /// beneath the namespace root directory `ns_root`, never through a
    /// symlink (one planted there is `ENOTDIR`).
    pub fn open(ns_root: BorrowedFd<'_>, create: bool) -> io::Result<SigCache> {
        SigCache::open_with_limits(ns_root, create, MAX_FILES, MAX_BYTES)
    }

    /// [`SigCache::open`] with other bounds (tests).
    fn open_with_limits(
        ns_root: BorrowedFd<'_>,
        create: bool,
        max_files: u64,
        max_bytes: u64,
    ) -> io::Result<SigCache> {
        let root = ns_root.as_raw_fd();
        if create {
            match stat::mkdirat(Some(root), os(SIGS_DIR), Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(errno_io(e)),
            }
        }
        let dir = open_dir_at(root, SIGS_DIR).map_err(errno_io)?;
        let st = stat::fstat(dir.as_raw_fd()).map_err(errno_io)?;
        Ok(SigCache {
            dir,
            id: (st.st_dev, st.st_ino),
            max_files,
            max_bytes,
        })
    }

    /// The cached signature for `key` if any and valid (it decodes and its
    /// `file_len` is `key.size`); an invalid entry is removed. A hit
    /// touches the entry's mtime, so the trim keeps it longer.
    pub fn load(&self, key: &SigKey) -> Option<Signature> {
        let name = key.name();
        let dir = self.dir.as_raw_fd();
        // O_NONBLOCK: a FIFO put there by hand must not hang the worker.
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
        let fd = match fcntl::openat(Some(dir), name.as_str(), flags, Mode::empty()) {
            Ok(fd) => own(fd),
            Err(Errno::ENOENT) => return None,
            Err(_) => {
                self.remove(&name);
                return None;
            }
        };
        let sig = self
            .read_entry(fd.as_fd())
            .filter(|s| s.file_len == key.size);
        match &sig {
            Some(_) => {
                let omit = TimeSpec::new(0, nix::libc::UTIME_OMIT);
                let now = TimeSpec::new(0, nix::libc::UTIME_NOW);
                let _ = stat::futimens(fd.as_raw_fd(), &omit, &now);
            }
            None => self.remove(&name),
        }
        sig
    }

    /// The signature in the open entry `fd`, if it is a regular file
    /// within the byte bound that decodes.
    fn read_entry(&self, fd: BorrowedFd<'_>) -> Option<Signature> {
        let st = stat::fstat(fd.as_raw_fd()).ok()?;
        let len = u64::try_from(st.st_size).ok()?;
        if kind_of(&st) != Some(EntryKind::File) || len > self.max_bytes {
            return None;
        }
        let mut buf = vec![0u8; len as usize];
        let mut got = 0;
        while got < buf.len() {
            match nix::sys::uio::pread(fd, &mut buf[got..], got as i64) {
                Ok(0) => return None,
                Ok(n) => got += n,
                Err(Errno::EINTR) => {}
                Err(_) => return None,
            }
        }
        Signature::decode(&buf).ok()
    }

    /// Stores `sig` as `key`'s: written to a temporary name in the cache
    /// directory and renamed over the key's name (no fsync: a cache; a
    /// torn file fails decoding). Then, when the tally says a bound is
    /// passed, trims the cache (see the module docs). A signature larger
    /// than 90 % of the byte bound is not kept (it would push out all the
    /// others): `Ok` without storing. A signature of another length than
    /// `key.size` is `InvalidInput`.
    pub fn store(&self, key: &SigKey, sig: &Signature) -> io::Result<()> {
        if sig.file_len != key.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "signature of {} bytes for a file of {}",
                    sig.file_len, key.size
                ),
            ));
        }
        let bytes = sig.encode();
        let len = bytes.len() as u64;
        if len > self.max_bytes / 10 * 9 {
            return Ok(());
        }
        let dir = self.dir.as_raw_fd();
        let tmp = tmp::fresh_tmp();
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        let fd = own(
            fcntl::openat(Some(dir), os(&tmp), flags, Mode::from_bits_truncate(0o600))
                .map_err(errno_io)?,
        );
        let written = write_all(fd.as_fd(), &bytes);
        drop(fd);
        let placed = written.and_then(|()| {
            fcntl::renameat(Some(dir), os(&tmp), Some(dir), key.name().as_str()).map_err(errno_io)
        });
        if let Err(e) = placed {
            self.remove_name(&tmp);
            return Err(e);
        }
        self.count(len)
    }

    /// Drops `key`'s entry (a delta built on it failed its crc: the file
    /// changed without its key changing).
    pub fn forget(&self, key: &SigKey) {
        self.remove(&key.name());
    }

    fn remove(&self, name: &str) {
        self.remove_name(name.as_bytes());
    }

    fn remove_name(&self, name: &[u8]) {
        let _ = unistd::unlinkat(
            Some(self.dir.as_raw_fd()),
            os(name),
            UnlinkatFlags::NoRemoveDir,
        );
    }

    /// Counts a stored entry of `len` bytes in the directory's tally and
    /// trims the directory when the tally is new or past a bound.
    fn count(&self, len: u64) -> io::Result<()> {
        let over = {
            let mut tallies = TALLIES.lock().unwrap_or_else(|p| p.into_inner());
            tallies.get_mut(&self.id).map(|t| {
                t.files = t.files.saturating_add(1);
                t.bytes = t.bytes.saturating_add(len);
                t.files > self.max_files || t.bytes > self.max_bytes
            })
        };
        if over == Some(false) {
            return Ok(());
        }
        // Listed outside the lock: other namespaces' stores go on meanwhile.
        let t = self.trim()?;
        let mut tallies = TALLIES.lock().unwrap_or_else(|p| p.into_inner());
        tallies.insert(self.id, t);
        Ok(())
    }

    /// Lists the directory; removes dead processes' temporary files and,
    /// when the entries pass a bound, the oldest (by mtime) until under
    /// 90 % of both. Returns what is left.
    fn trim(&self) -> io::Result<Tally> {
        let dir = self.dir.as_raw_fd();
        let mut entries: Vec<((i64, i64), u64, Vec<u8>)> = Vec::new();
        for (name, _) in entries_at(dir).map_err(errno_io)? {
            if name.starts_with(TMP_PREFIX) {
                if tmp::is_stale(&name) {
                    self.remove_name(&name);
                }
                continue;
            }
            let Ok(st) = stat::fstatat(Some(dir), os(&name), AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            if kind_of(&st) == Some(EntryKind::File) {
                let size = st.st_size.max(0) as u64;
                entries.push(((st.st_mtime, st.st_mtime_nsec), size, name));
            }
        }
        let mut t = Tally {
            files: entries.len() as u64,
            bytes: entries.iter().map(|e| e.1).sum(),
        };
        if t.files <= self.max_files && t.bytes <= self.max_bytes {
            return Ok(t);
        }
        let (keep_files, keep_bytes) = (self.max_files / 10 * 9, self.max_bytes / 10 * 9);
        entries.sort_unstable();
        for (_, size, name) in entries {
            if t.files <= keep_files && t.bytes <= keep_bytes {
                break;
            }
            self.remove_name(&name);
            t.files -= 1;
            t.bytes -= size;
        }
        Ok(t)
    }
}

impl Namespace {
    /// This namespace's signature cache ([`SigCache::open`] beneath its
    /// root): the one way from outside the store to it, since a namespace
    /// never hands out its directory.
    pub fn sig_cache(&self, create: bool) -> io::Result<SigCache> {
        SigCache::open(self.tree.root_dir(), create)
    }
}

fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match unistd::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(errno_io(e)),
        }
    }
    Ok(())
}

/// Load or compute: the signature of the regular file `fd` (whose stat
/// is `st`), from the cache, else computed with [`sign_file`] at
/// [`block_size`]`(st.size, `[`fs_block`]`(fd))` and stored, unless the
/// file changed while it was read (its key would name other bytes).
/// Store errors are only logged at debug: the signature is good anyway.
pub fn signature_of(
    cache: Option<&SigCache>,
    fd: BorrowedFd<'_>,
    st: &FileStat,
) -> io::Result<Signature> {
    let key = SigKey::of(st);
    if let Some(sig) = cache.and_then(|c| c.load(&key)) {
        return Ok(sig);
    }
    let sig = sign_file(fd, key.size, block_size(key.size, fs_block(fd)))?;
    if let Some(c) = cache {
        let same = stat::fstat(fd.as_raw_fd()).is_ok_and(|now| SigKey::of(&now) == key);
        if same {
            if let Err(e) = c.store(&key, &sig) {
                log::debug!("signature cache: store {}: {}", key.name(), describe(&e));
            }
        }
    }
    Ok(sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::Signer;
    use std::fs::File;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    fn sig_of(bytes: &[u8]) -> Signature {
        let mut s = Signer::new(4096).unwrap();
        s.feed(bytes);
        s.finish()
    }

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
    }

    fn key(ino: u64, size: u64) -> SigKey {
        SigKey {
            ino,
            size,
            mtime: (1_700_000_000, 5),
        }
    }

    fn entry(root: &Path, k: &SigKey) -> PathBuf {
        root.join(".rsb-tmp.sigs").join(k.name())
    }

    fn open(root: &Path) -> SigCache {
        SigCache::open(File::open(root).unwrap().as_fd(), true).unwrap()
    }

    #[test]
    fn stores_and_loads_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let missing = SigCache::open(File::open(root).unwrap().as_fd(), false);
        assert_eq!(missing.err().and_then(|e| e.raw_os_error()), Some(2));
        let c = open(root);
        let meta = std::fs::metadata(root.join(".rsb-tmp.sigs")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        let b = bytes(10_000, 1);
        let (k, sig) = (key(42, 10_000), sig_of(&b));
        assert_eq!(c.load(&k), None);
        c.store(&k, &sig).unwrap();
        assert!(entry(root, &k).ends_with("42-10000-1700000000-5"));
        assert_eq!(c.load(&k), Some(sig.clone()));
        // Another handle on the same directory sees it.
        assert_eq!(open(root).load(&k), Some(sig.clone()));
        // Another version of the inode is another key.
        for other in [
            key(42, 10_001),
            key(43, 10_000),
            SigKey {
                mtime: (1_700_000_000, 6),
                ..k
            },
        ] {
            assert_eq!(c.load(&other), None);
        }
        let e = c.store(&key(42, 9_999), &sig).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let neg = SigKey {
            mtime: (-5, 0),
            ..k
        };
        assert_eq!(neg.name(), "42-10000--5-0");
        c.forget(&k);
        assert_eq!(c.load(&k), None);
        assert!(!entry(root, &k).exists());
    }

    #[test]
    fn a_bad_entry_is_a_miss_and_goes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let c = open(root);
        let k = key(7, 10_000);
        let good = sig_of(&bytes(10_000, 2)).encode();
        for bad in [
            b"garbage".to_vec(),
            good[..good.len() - 1].to_vec(),
            // Valid, but of a file of another length than its name says.
            sig_of(&bytes(9_000, 2)).encode(),
        ] {
            std::fs::write(entry(root, &k), &bad).unwrap();
            assert_eq!(c.load(&k), None);
            assert!(!entry(root, &k).exists());
        }
        std::os::unix::fs::symlink("/etc/passwd", entry(root, &k)).unwrap();
        assert_eq!(c.load(&k), None);
        assert!(std::fs::symlink_metadata(entry(root, &k)).is_err());
    }

    fn set_mtime(p: &Path, secs: i64) {
        let t = TimeSpec::new(secs, 0);
        stat::utimensat(None, p, &t, &t, stat::UtimensatFlags::NoFollowSymlink).unwrap();
    }

    #[test]
    fn the_least_recently_used_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let c = SigCache::open_with_limits(File::open(root).unwrap().as_fd(), true, 10, 1 << 30)
            .unwrap();
        // A dead process's temporary file goes at the first trim; one of
        // this process's stays.
        let dead = root.join(".rsb-tmp.sigs/.rsb-tmp.1f.3");
        let ours = root
            .join(".rsb-tmp.sigs")
            .join(String::from_utf8(tmp::fresh_tmp()).unwrap());
        for p in [&dead, &ours] {
            std::fs::write(p, b"x").unwrap();
        }
        let sig = sig_of(&bytes(5000, 3));
        let keys: Vec<SigKey> = (0..11).map(|i| key(i, 5000)).collect();
        for (i, k) in keys[..10].iter().enumerate() {
            c.store(k, &sig).unwrap();
            set_mtime(&entry(root, k), 1_000 + i as i64);
        }
        assert!(!dead.exists() && ours.exists());
        // Used now: the newest.
        assert!(c.load(&keys[0]).is_some());
        c.store(&keys[10], &sig).unwrap();
        let left: Vec<bool> = keys.iter().map(|k| entry(root, k).exists()).collect();
        // 11 > 10: trimmed to 9, the two least recently used gone.
        let mut want = vec![true; 11];
        want[1] = false;
        want[2] = false;
        assert_eq!(left, want);
    }

    #[test]
    fn the_byte_bound_holds_too() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let sig = sig_of(&bytes(40_000, 4));
        let len = sig.encoded_len() as u64;
        let c = SigCache::open_with_limits(File::open(root).unwrap().as_fd(), true, 1000, 5 * len)
            .unwrap();
        for i in 0..6 {
            c.store(&key(i, 40_000), &sig).unwrap();
            set_mtime(&entry(root, &key(i, 40_000)), 1_000 + i as i64);
        }
        // Six passed five entries' bytes; 90 % of that holds four.
        let left: Vec<u64> = (0..6)
            .filter(|&i| entry(root, &key(i, 40_000)).exists())
            .collect();
        assert_eq!(left, [2, 3, 4, 5]);
        // One signature larger than 90 % of the bound is not kept.
        let big = sig_of(&bytes(200_000, 4));
        c.store(&key(99, 200_000), &big).unwrap();
        assert!(!entry(root, &key(99, 200_000)).exists());
    }

    #[test]
    fn a_symlink_in_its_place_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("elsewhere", root.join(".rsb-tmp.sigs")).unwrap();
        for create in [true, false] {
            let r = SigCache::open(File::open(root).unwrap().as_fd(), create);
            assert_eq!(
                r.err().and_then(|e| e.raw_os_error()),
                Some(nix::libc::ENOTDIR)
            );
        }
        assert_eq!(
            std::fs::read_dir(root.join("elsewhere")).unwrap().count(),
            0
        );
    }

    /// The rest of the store leaves the cache alone: the sweep (even of a
    /// name inside that looks stale), listings, the space measure.
    #[test]
    fn the_store_never_lists_sweeps_or_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a"), b"x").unwrap();
        let ns = Namespace::open_dir(root).unwrap();
        let c = ns.sig_cache(true).unwrap();
        let k = key(1, 10_000);
        c.store(&k, &sig_of(&bytes(10_000, 6))).unwrap();
        let odd = root.join(".rsb-tmp.sigs/.rsb-tmp.2a.7");
        std::fs::write(&odd, b"x").unwrap();
        let all = crate::proto::WirePath::root();
        assert_eq!(ns.sweep(&all, true, &|| false), 0);
        assert!(entry(root, &k).exists() && odd.exists());
        assert_eq!(ns.read_dir(&all).unwrap(), [b"a".to_vec()]);
        let m = ns.measure(&|| false).unwrap();
        assert_eq!((m.entries, m.history), (1, 0));
    }

    #[test]
    fn signature_of_signs_once_then_reads_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let c = open(root);
        let data = bytes(300_000, 5);
        let p = root.join("f");
        std::fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();
        let st = stat::fstat(f.as_raw_fd()).unwrap();
        let mut s = Signer::new(block_size(300_000, fs_block(f.as_fd()))).unwrap();
        s.feed(&data);
        let want = s.finish();
        assert_eq!(signature_of(None, f.as_fd(), &st).unwrap(), want);
        assert!(!entry(root, &SigKey::of(&st)).exists());
        assert_eq!(signature_of(Some(&c), f.as_fd(), &st).unwrap(), want);
        let k = SigKey::of(&st);
        assert!(entry(root, &k).exists());
        // The second answer comes from the cache, not the file: put a
        // different (valid) signature there and get it back.
        let mut other = Signer::new(1 << 20).unwrap();
        other.feed(&data);
        let other = other.finish();
        std::fs::write(entry(root, &k), other.encode()).unwrap();
        assert_eq!(signature_of(Some(&c), f.as_fd(), &st).unwrap(), other);
    }
}
