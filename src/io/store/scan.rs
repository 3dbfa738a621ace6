//! Reading what a namespace holds without opening a file: the check of a
//! backup's manifest (which entries the server needs, which partials it can
//! resume), the entries of a listing, and directories read a bounded chunk
//! at a time ([`DirCursor`]). Only `lstat` and `readlink`: an unchanged
//! file is never opened, so its inode and ctime stay as they were. Whether
//! an entry is unchanged is [`crate::store::compare`]'s rule; the mode of
//! an entry is its real one, from its metadata record when it has one
//! (read by name, nothing opened; see [`crate::store::modes`]), and so is
//! the kind and device number of a device kept as a metadata-only
//! stand-in ([`super::special`]).
//!
//! Must not write anything.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{self, FileStat, Mode};
use nix::unistd::{lseek, Whence};

use super::fresh::FreshDirs;
use super::namespace::Namespace;
use super::special::resolve;
use super::stage::Stager;
use super::xattr;
use crate::io::error::FsError;
use crate::io::{kind_of, meta_of};
use crate::proto::bits::NeedBits;
use crate::proto::owners::UNKNOWN_ID;
use crate::proto::path::is_tmp_name;
use crate::proto::xattrs::Xattrs;
use crate::proto::{EntryKind, ListItem, ManifestEntry, Meta, WirePath};
use crate::store::compare::{self, StoredStat, Verdict};
use crate::store::modes;
use crate::store::record::MetaRecord;

/// What a manifest check found: the `Need` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Which entries the server needs whole.
    pub need: NeedBits,
    /// Which entries the server needs only the metadata of (an `Update`);
    /// never one of `need`.
    pub meta: NeedBits,
    /// Needed files of which a partial holds the first bytes: (entry
    /// index, bytes held).
    pub resume: Vec<(u32, u64)>,
    /// Needed files, not in `resume`, that can go as deltas against the
    /// stored version (see [`Namespace::is_delta_candidate`]): (entry
    /// index, path), for a worker to sign.
    pub delta: Vec<(u32, WirePath)>,
}

/// The comparison's view of an `lstat` of `name` in `dir`, and the
/// record read on the way (see [`resolve`]).
fn stored_stat(dir: RawFd, name: &[u8], st: &FileStat) -> (StoredStat, Option<Option<MetaRecord>>) {
    let (kind, rdev, rec) = resolve(st, || xattr::meta_at(dir, name));
    let stat = StoredStat {
        kind,
        meta: disk_meta(st),
        size: st.st_size,
        rdev,
    };
    (stat, rec)
}

/// The metadata `lstat` says of a stored entry, the owner of a link kept
/// by a server that is not root unknown: the server's own, not the one
/// the client sent, which only a root server can give a link.
fn disk_meta(st: &FileStat) -> Meta {
    let mut meta = meta_of(st);
    // A server that is not root cannot record the owner of a link or of a
    // real FIFO, socket or device (no user attributes there): unknown.
    if kind_of(st).is_some_and(|k| k == EntryKind::Symlink || k.is_special())
        && !super::stage::is_root()
    {
        (meta.uid, meta.gid) = (UNKNOWN_ID, UNKNOWN_ID);
    }
    meta
}

/// `meta` (from [`disk_meta`]) with what `record` says: the real mode,
/// owner and group.
fn with_record(mut meta: Meta, record: Option<&MetaRecord>) -> Meta {
    if let Some(r) = record {
        meta.mode = modes::real(meta.mode, Some(r.mode));
        meta.uid = r.uid.unwrap_or(meta.uid);
        meta.gid = r.gid.unwrap_or(meta.gid);
    }
    meta.mode &= 0o7777;
    meta
}

impl Namespace {
    /// Which manifest entries differ from what is stored (see
    /// [`compare::verdict`]): the first bitmap those to send whole
    /// (missing, of another type, size, mtime or link target), the second
    /// those of which only the metadata differs (mode, owner, group).
    /// Files are only `lstat`ed, never opened. `fresh` knows of
    /// directories found missing earlier: a name it has never been asked
    /// about there is needed without an `lstat` (a lookup that misses
    /// costs most in a large directory being filled).
    pub(super) fn need_with(
        &self,
        entries: &[ManifestEntry],
        mut fresh: Option<&mut FreshDirs>,
    ) -> (NeedBits, NeedBits) {
        let mut bits = NeedBits::new(entries.len());
        let mut meta = NeedBits::new(entries.len());
        // Entries come grouped by directory: open each parent once, not
        // once per entry. Nothing is written meanwhile, so the fd stays
        // right.
        let mut parent: Option<(WirePath, Option<OwnedFd>)> = None;
        for (i, e) in entries.iter().enumerate() {
            let (Some(dir_path), Some(name)) = (e.path.parent(), e.path.file_name()) else {
                // The namespace root itself: never a file or link, and a
                // directory that exists; its metadata is not kept.
                continue;
            };
            if parent.as_ref().map(|(p, _)| p) != Some(&dir_path) {
                let fd = self.tree.dir(&dir_path);
                if let (Err(e), Some(f)) = (&fd, fresh.as_deref_mut()) {
                    if e.raw_os_error() == Some(nix::libc::ENOENT) {
                        f.missing(&dir_path);
                    }
                }
                parent = Some((dir_path.clone(), fd.ok()));
            }
            if fresh
                .as_deref_mut()
                .is_some_and(|f| f.unseen(&dir_path, name))
            {
                bits.set(i);
                continue;
            }
            let dir = parent
                .as_ref()
                .and_then(|(_, fd)| fd.as_ref())
                .map(|fd| fd.as_raw_fd());
            let name = OsStr::from_bytes(name);
            let verdict = dir.map_or(Verdict::Content, |dir| {
                match stat::fstatat(Some(dir), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) => {
                        let (stored, rec) = stored_stat(dir, name.as_bytes(), &st);
                        compare::verdict(
                            e,
                            &stored,
                            || {
                                nix::fcntl::readlinkat(Some(dir), name)
                                    .ok()
                                    .map(|t| t.as_bytes().to_vec())
                            },
                            || rec.unwrap_or_else(|| xattr::meta_at(dir, name.as_bytes())),
                        )
                    }
                    Err(_) => Verdict::Content,
                }
            });
            match verdict {
                Verdict::Content => bits.set(i),
                _ if e.kind == EntryKind::HardLink && !self.same_inode(&e.path, &e.target) => {
                    bits.set(i)
                }
                Verdict::MetaOnly => meta.set(i),
                Verdict::Same => {}
            }
        }
        (bits, meta)
    }

    /// Whether the stored `path` is the same inode as the stored file at
    /// `target` (a wire path in this namespace): another name of it.
    fn same_inode(&self, path: &WirePath, target: &[u8]) -> bool {
        let Ok(target) = WirePath::new(target.to_vec()) else {
            return false;
        };
        match (self.tree.lstat(path), self.tree.lstat(&target)) {
            (Ok(a), Ok(b)) => {
                kind_of(&b) == Some(EntryKind::File) && (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
            }
            _ => false,
        }
    }

    /// The listing entry for `path` (shown as `name`), which `lstat` just
    /// described as `st`.
    pub fn list_item(
        &self,
        path: &WirePath,
        name: &[u8],
        st: &FileStat,
    ) -> Result<ListItem, FsError> {
        let (kind, rdev) = self.stored_kind(path, st);
        let kind =
            kind.ok_or_else(|| FsError::other("list", self.show(path), "unknown file type"))?;
        let target = if kind == EntryKind::Symlink {
            self.readlink(path)?
        } else {
            Vec::new()
        };
        let size = match kind {
            EntryKind::File | EntryKind::HardLink | EntryKind::Dir => st.st_size.max(0) as u64,
            EntryKind::Symlink => target.len() as u64,
            EntryKind::Fifo | EntryKind::Socket | EntryKind::CharDev | EntryKind::BlockDev => 0,
        };
        Ok(ListItem {
            kind,
            name: name.to_vec(),
            meta: self.stored_meta(path, st),
            size,
            target,
            rdev,
        })
    }

    /// The real mode, mtime and owner of the stored entry at `path`,
    /// which `lstat` just described as `st`: mode and owner from its
    /// metadata record when it has one (see [`crate::store::modes`]).
    pub fn stored_meta(&self, path: &WirePath, st: &FileStat) -> Meta {
        let meta = disk_meta(st);
        if !modes::may_have_record(meta.mode) {
            return meta;
        }
        with_record(meta, self.record(path, st).as_ref())
    }

    /// [`Self::stored_meta`] and the owner's names recorded with it (a
    /// store written before names went into the namespace's table), for a
    /// restore: the record is read only where the sticky bit says.
    /// With them, the digest of the client's extended attributes kept
    /// on it (0: none; [`Self::stored_xattrs`] reads them).
    pub fn stored_owner(
        &self,
        path: &WirePath,
        st: &FileStat,
    ) -> (Meta, Option<Vec<u8>>, Option<Vec<u8>>, u64) {
        let disk = disk_meta(st);
        let r = modes::may_have_record(disk.mode)
            .then(|| self.record(path, st))
            .flatten();
        let meta = with_record(disk, r.as_ref());
        let (user, group, xattrs) = r.map(|r| (r.user, r.group, r.xattrs)).unwrap_or_default();
        (meta, user, group, xattrs)
    }

    /// The client's extended attributes kept on the stored directory at
    /// `path` (prefix stripped), `None` for none.
    pub fn stored_xattrs(&self, path: &WirePath) -> Result<Option<Xattrs>, FsError> {
        let fd = self.tree.dir(path)?;
        xattr::stored_xattrs(fd.as_fd())
            .map_err(|e| FsError::errno("getxattr", self.tree.show(path), e))
    }

    /// The metadata record of the stored file or directory at `path`.
    fn record(&self, path: &WirePath, st: &FileStat) -> Option<MetaRecord> {
        if !matches!(kind_of(st), Some(EntryKind::File | EntryKind::Dir)) {
            return None;
        }
        self.tree
            .parent(path)
            .ok()
            .and_then(|(dir, name)| xattr::meta_at(dir.as_raw_fd(), name))
    }
}

/// Bytes of directory entries one [`DirCursor::next_chunk`] reads: with
/// names of up to 255 bytes, 60 to 600 of them.
pub const DIR_CHUNK_BYTES: usize = 16 * 1024;

/// One name read from a directory, and the cookie (`d_off`) at which the
/// directory continues after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirName {
    /// The entry's name.
    pub name: Vec<u8>,
    /// Where reading resumes after this entry ([`Namespace::dir_cursor`]).
    pub next: i64,
}

/// A directory being read a bounded chunk at a time, in the order the file
/// system returns its entries (not sorted: sorting needs every name at
/// once). It has its own open file description, so no other reader of the
/// directory moves its position; it can be closed and opened again where
/// it stopped, from the cookie of the last name taken.
#[derive(Debug)]
pub struct DirCursor {
    fd: OwnedFd,
    end: bool,
}

impl DirCursor {
    /// Opens the directory `dir` anew (`openat(dir, ".")`, not a dup, which
    /// would share the read position) at cookie `at` (0: the start).
    fn open(dir: RawFd, at: i64) -> Result<DirCursor, Errno> {
        let fd = nix::fcntl::openat(
            Some(dir),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // SAFETY: `fd` was just returned by a successful openat and is
        // owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        if at != 0 {
            lseek(fd.as_raw_fd(), at, Whence::SeekSet)?;
        }
        Ok(DirCursor { fd, end: false })
    }

    /// The next names, at most [`DIR_CHUNK_BYTES`] of directory entries'
    /// worth, without `.`, `..` and temporary names; `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<DirName>>, Errno> {
        let mut buf = vec![0u8; DIR_CHUNK_BYTES];
        while !self.end {
            // SAFETY: the kernel writes at most `buf.len()` bytes into
            // `buf`, which lives across the call.
            let n = unsafe {
                nix::libc::syscall(
                    nix::libc::SYS_getdents64,
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            let n = usize::try_from(Errno::result(n)?).unwrap_or(0);
            if n == 0 {
                self.end = true;
                break;
            }
            let names = parse_dirents(buf.get(..n).unwrap_or_default());
            if !names.is_empty() {
                return Ok(Some(names));
            }
        }
        Ok(None)
    }
}

/// The names in a buffer of `linux_dirent64` records (ino u64, off i64,
/// reclen u16, type u8, NUL-terminated name), without `.`, `..` and
/// temporary names. A record that does not fit ends the parse.
fn parse_dirents(mut buf: &[u8]) -> Vec<DirName> {
    let mut out = Vec::new();
    while let (Some(off), Some(len)) = (buf.get(8..16), buf.get(16..18)) {
        let next = i64::from_ne_bytes(off.try_into().unwrap_or_default());
        let reclen = usize::from(u16::from_ne_bytes(len.try_into().unwrap_or_default()));
        let (Some(rec), Some(rest)) = (buf.get(..reclen), buf.get(reclen..)) else {
            break;
        };
        if reclen < 19 {
            break;
        }
        let raw = rec.get(19..).unwrap_or_default();
        let name = raw.split(|&b| b == 0).next().unwrap_or_default();
        if !name.is_empty() && name != b"." && name != b".." && !is_tmp_name(name) {
            out.push(DirName {
                name: name.to_vec(),
                next,
            });
        }
        buf = rest;
    }
    out
}

impl Namespace {
    /// Reads the directory `path` a chunk at a time, from cookie `at` (0:
    /// the start; else a [`DirName::next`] it returned before).
    pub fn dir_cursor(&self, path: &WirePath, at: i64) -> Result<DirCursor, FsError> {
        let dir = self.tree.dir(path)?;
        DirCursor::open(dir.as_raw_fd(), at)
            .map_err(|e| FsError::errno("readdir", self.show(path), e))
    }
}

impl Stager {
    /// Answers a backup's manifest: which entries are needed, and how much
    /// of each needed file a partial already holds.
    pub fn check(&self, entries: &[ManifestEntry]) -> Checked {
        let (need, meta) = self
            .tree()
            .need_with(entries, Some(&mut *self.fresh.borrow_mut()));
        let resume: Vec<(u32, u64)> = entries
            .iter()
            .enumerate()
            .filter(|(i, e)| e.kind == EntryKind::File && need.get(*i))
            .filter_map(|(i, e)| {
                Some((
                    u32::try_from(i).ok()?,
                    self.partial_len(&e.path, e.size, &e.meta)?,
                ))
            })
            .collect();
        let delta = entries
            .iter()
            .enumerate()
            .filter(|(i, _)| need.get(*i))
            .filter_map(|(i, e)| Some((u32::try_from(i).ok()?, e)))
            .filter(|(_, e)| self.tree().is_delta_candidate(e))
            .map(|(i, e)| (i, e.path.clone()))
            .collect();
        Checked {
            need,
            meta,
            resume,
            delta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::store::Store;

    /// Issue 9 item 17: every manifest entry cost a lookup that misses in
    /// a large directory being filled. One in a directory this stager
    /// found missing, never asked about before, is needed at once; one
    /// asked about before is looked at as always.
    #[test]
    fn a_name_never_asked_about_in_a_directory_found_missing_is_needed_without_a_lookup() {
        use crate::io::store::stage::tests::{meta, stager, wp};
        let t = tempfile::tempdir().unwrap();
        let entry = |p: &str| ManifestEntry {
            kind: EntryKind::File,
            path: wp(p),
            meta: meta(0o644, 1000),
            size: 0,
            target: Vec::new(),
            rdev: 0,
            xattrs: 0,
        };
        let store = |s: &mut Stager, p: &str| {
            s.begin_file(1, &wp(p), meta(0o644, 1000), 0).unwrap();
            s.finish_file(0).unwrap();
            assert!(s.commit().failures.is_empty());
        };
        let mut ours = stager(t.path());
        assert!(ours.check(&[entry("d/a")]).need.get(0), "d is missing");
        store(&mut ours, "d/a");
        // Another connection stores d/b meanwhile, as the manifest says.
        store(&mut stager(t.path()), "d/b");
        let c = ours.check(&[entry("d/a"), entry("d/b")]);
        assert!(!c.need.get(0), "asked about before: looked at, unchanged");
        assert!(c.need.get(1), "never asked about: needed without a look");
        // A stager that found d there looks at every name.
        let c = stager(t.path()).check(&[entry("d/a"), entry("d/b")]);
        assert_eq!((c.need.get(0), c.need.get(1)), (false, false));
    }

    /// Regression (issue 9 item 7): a directory was read whole into memory
    /// for each listing or restore. A cursor reads it a bounded chunk at a
    /// time, through its own file description, and resumes from a cookie.
    #[test]
    fn a_large_directory_is_read_in_bounded_chunks_and_resumes_from_a_cookie() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("root")).unwrap();
        let ns = store.namespace("a").unwrap();
        let dir = t.path().join("root/a/d");
        std::fs::create_dir(&dir).unwrap();
        let long = "n".repeat(200);
        let mut want: Vec<Vec<u8>> = (0..2000)
            .map(|i| format!("{long}{i:05}").into_bytes())
            .collect();
        for n in &want {
            std::fs::write(dir.join(OsStr::from_bytes(n)), b"").unwrap();
        }
        std::fs::write(dir.join(".rsb-tmp.hidden"), b"").unwrap();
        let d = WirePath::new(b"d".to_vec()).unwrap();
        let mut c = ns.dir_cursor(&d, 0).unwrap();
        // A second reader of the same directory does not move the first.
        let mut other = ns.dir_cursor(&d, 0).unwrap();
        let mut got = Vec::new();
        let mut chunks = 0;
        let mut half = None;
        while let Some(chunk) = c.next_chunk().unwrap() {
            assert!(other.next_chunk().unwrap().is_some() || chunks > 0);
            let bytes: usize = chunk.iter().map(|n| n.name.len()).sum();
            assert!(bytes <= DIR_CHUNK_BYTES, "{bytes} bytes in one chunk");
            assert!(chunk.len() < 100, "{} names in one chunk", chunk.len());
            chunks += 1;
            got.extend(chunk.iter().map(|n| n.name.clone()));
            if half.is_none() && got.len() >= 1000 {
                half = chunk.last().map(|n| (got.len(), n.next));
            }
        }
        assert!(chunks >= 20, "{chunks} chunks");
        let mut sorted = got.clone();
        sorted.sort();
        want.sort();
        assert_eq!(sorted, want, "every name once, no hidden name");
        // Opened again at a cookie, it goes on after that name.
        let (taken, at) = half.unwrap();
        let mut again = ns.dir_cursor(&d, at).unwrap();
        let mut rest = Vec::new();
        while let Some(chunk) = again.next_chunk().unwrap() {
            rest.extend(chunk.into_iter().map(|n| n.name));
        }
        assert_eq!(rest, got[taken..]);
    }

    #[test]
    fn dirent_records_that_do_not_fit_end_the_parse() {
        let mut rec = vec![0u8; 24];
        rec[8..16].copy_from_slice(&7i64.to_ne_bytes());
        rec[16..18].copy_from_slice(&24u16.to_ne_bytes());
        rec[19..22].copy_from_slice(b"abc");
        let names = parse_dirents(&rec);
        assert_eq!(
            names,
            vec![DirName {
                name: b"abc".to_vec(),
                next: 7
            }]
        );
        let mut bad = rec.clone();
        bad[16..18].copy_from_slice(&400u16.to_ne_bytes());
        assert!(parse_dirents(&bad).is_empty());
        bad[16..18].copy_from_slice(&0u16.to_ne_bytes());
        assert!(parse_dirents(&bad).is_empty());
        assert!(parse_dirents(&rec[..10]).is_empty());
    }
}
