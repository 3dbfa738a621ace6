//! [`StoredFile`]: the one way to open and read a stored file. The
//! restore stream, verify, the crc32c of a resumed transfer's kept bytes
//! and (later) the web interface and delta's basis all read through it, so
//! how the bytes are kept (plain today; compressed, or as a delta, later)
//! is decided here and nowhere else.
//!
//! A stored file is opened confined beneath its namespace, never through a
//! symlink, and described by its open descriptor (`fstat` of what will be
//! read, not of the name, which may change meanwhile).
//!
//! Must not write: staging owns every change to a tree.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::stat;

use super::beneath::{Beneath, Shown};
use super::namespace::Namespace;
use super::xattr;
use crate::io::error::FsError;
use crate::io::transfer::{crc_range, BodySender};
use crate::io::{kind_of, meta_of};
use crate::proto::xattrs::Xattrs;
use crate::proto::{EntryKind, Meta, WirePath};
use crate::store::modes;
use crate::store::record::Recorded;

/// An open stored file (see the module docs).
pub struct StoredFile {
    fd: OwnedFd,
    kind: Option<EntryKind>,
    size: u64,
    meta: Meta,
    shown: Shown,
    /// The owner's and group's names on the client, if recorded (boxed:
    /// most files have none, and a file travels in worker jobs).
    names: Option<Box<OwnerNames>>,
    /// The digest of the client's extended attributes kept on it, 0 for
    /// none (see [`Self::xattrs`]), and `(st_dev, st_ino)` when it has
    /// several names (`st_nlink` > 1), in one box: most files have
    /// neither, and a file travels in worker jobs.
    extra: Option<Box<Extra>>,
}

/// What few stored files have: see [`StoredFile::xattrs`] and
/// [`StoredFile::linked`].
#[derive(Debug, Clone, Copy, Default)]
struct Extra {
    xattrs: u64,
    linked: Option<(u64, u64)>,
}

/// The names of an owner and a group, where known.
type OwnerNames = (Option<Vec<u8>>, Option<Vec<u8>>);

impl Namespace {
    /// Opens the stored file at `path` for reading.
    pub fn open_stored(&self, path: &WirePath) -> Result<StoredFile, FsError> {
        StoredFile::open(&self.tree, path)
    }
}

/// Its descriptor, for `sendfile` and `pread` of its bytes (the web
/// interface's downloads).
impl AsFd for StoredFile {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl StoredFile {
    /// Opens `path` beneath `tree` and describes what was opened.
    pub(super) fn open(tree: &Beneath, path: &WirePath) -> Result<StoredFile, FsError> {
        let fd = tree.open_file(path)?;
        StoredFile::describe(fd, tree.shown(path))
    }

    /// The bytes a transfer kept in a partial, `len` of them, read as a
    /// stored file is (a partial is always plain).
    pub(super) fn kept(fd: OwnedFd, len: u64, meta: Meta, shown: Shown) -> StoredFile {
        StoredFile {
            fd,
            kind: Some(EntryKind::File),
            size: len,
            meta,
            shown,
            names: None,
            extra: None,
        }
    }

    fn describe(fd: OwnedFd, shown: Shown) -> Result<StoredFile, FsError> {
        let st =
            stat::fstat(fd.as_raw_fd()).map_err(|e| FsError::errno("stat", shown.text(), e))?;
        let mut meta = meta_of(&st);
        // The real mode and owner, when those on disk are not, and the
        // digest of its attributes (see `crate::store::modes`): looked for
        // only where the sticky bit says (names of a store written before
        // the namespace kept a table of them are read from there too).
        let rec = modes::may_have_record(meta.mode)
            .then(|| xattr::meta(fd.as_fd()))
            .flatten();
        meta.mode = modes::real(meta.mode, rec.as_ref().map(|r| r.mode));
        let mut names = None;
        let xattrs = rec.as_ref().map_or(0, |r| r.xattrs);
        if let Some(r) = rec {
            meta.uid = r.uid.unwrap_or(meta.uid);
            meta.gid = r.gid.unwrap_or(meta.gid);
            if r.user.is_some() || r.group.is_some() {
                names = Some(Box::new((r.user, r.group)));
            }
        }
        let linked = (st.st_nlink > 1).then_some((st.st_dev, st.st_ino));
        let extra = (xattrs != 0 || linked.is_some()).then(|| Box::new(Extra { xattrs, linked }));
        Ok(StoredFile {
            kind: kind_of(&st),
            size: st.st_size.max(0) as u64,
            meta,
            fd,
            shown,
            names,
            extra,
        })
    }

    /// Whether what was opened is a regular file (a name can change
    /// between the `lstat` that chose it and the open).
    pub fn is_file(&self) -> bool {
        self.kind == Some(EntryKind::File)
    }

    /// Its `(st_dev, st_ino)` when it has other names (`st_nlink` > 1
    /// when opened), else `None`.
    pub fn linked(&self) -> Option<(u64, u64)> {
        self.extra.as_ref().and_then(|e| e.linked)
    }

    /// Its size when opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Its real mode and owner (see [`crate::store::modes`]) and mtime
    /// when opened.
    pub fn meta(&self) -> Meta {
        self.meta
    }

    /// The names of its owner and group on the client, where recorded.
    pub fn owner_names(&self) -> OwnerNames {
        self.names.as_deref().cloned().unwrap_or_default()
    }

    /// The digest its record gives its kept attributes (0: none).
    fn xattr_digest(&self) -> u64 {
        self.extra.as_ref().map_or(0, |e| e.xattrs)
    }

    /// The client's extended attributes kept on it (prefix stripped),
    /// read only when its record says it has some.
    pub fn xattrs(&self) -> Result<Option<Xattrs>, FsError> {
        if self.xattr_digest() == 0 {
            return Ok(None);
        }
        xattr::stored_xattrs(self.fd.as_fd())
            .map_err(|e| FsError::errno("getxattr", self.shown.text(), e))
    }

    /// Why its kept extended attributes are not the set its record's
    /// digest names (changed or removed by hand, or damaged), if they are
    /// not: `verify` checks them beside the contents.
    pub fn xattr_damage(&self) -> Option<String> {
        let recorded = self.xattr_digest();
        if recorded == 0 {
            return None;
        }
        match self.xattrs() {
            Err(e) => Some(format!("extended attributes: {}", e.short())),
            Ok(set) => {
                let now = set.map_or(0, |s| s.digest());
                (now != recorded).then(|| {
                    format!(
                        "extended attributes changed: digest was {recorded:016x}, is now {now:016x}"
                    )
                })
            }
        }
    }

    /// Its path as a person would write it, for the log.
    pub fn shown(&self) -> String {
        self.shown.text()
    }

    /// The checksum recorded when it was stored, if any (a file placed by
    /// hand, or on a file system without user xattrs, has none).
    pub fn recorded(&self) -> Result<Option<Recorded>, FsError> {
        xattr::recorded(self.fd.as_fd())
            .map_err(|e| FsError::errno("getxattr", self.shown.text(), e))
    }

    /// The recorded crc32c of the whole file, if one was recorded for its
    /// present size.
    pub fn recorded_crc(&self) -> Option<u32> {
        self.recorded()
            .ok()
            .flatten()
            .and_then(|r| r.crc_for(self.size))
    }

    /// crc32c of `len` bytes from `offset`, continuing from `crc`.
    pub fn crc(&self, offset: u64, len: u64, crc: u32) -> Result<u32, FsError> {
        crc_range(&self.fd, offset, len, crc).map_err(|e| FsError::io("read", self.shown.text(), e))
    }

    /// A second handle (its own descriptor), for a worker thread.
    pub fn try_clone(&self) -> Result<StoredFile, FsError> {
        Ok(StoredFile {
            fd: self
                .fd
                .try_clone()
                .map_err(|e| FsError::io("dup", self.shown.text(), e))?,
            kind: self.kind,
            size: self.size,
            meta: self.meta,
            shown: self.shown.clone(),
            names: self.names.clone(),
            extra: self.extra.clone(),
        })
    }

    /// Reads the file once against `sig`, the signature of the client's
    /// copy ([`crate::io::delta_match::match_file`]), from `from` (what
    /// the client holds of it already): the runs the client can take from
    /// its copy (none when nothing is worth it), and the crc32c of the
    /// whole file; `None` when the file could not be read whole.
    /// `stopped` is asked now and then: true ends the read (an
    /// `Interrupted` error).
    pub fn matched(
        &self,
        sig: &crate::delta::Signature,
        from: u64,
        stopped: &dyn Fn() -> bool,
    ) -> std::io::Result<Option<crate::io::delta_match::Matched>> {
        crate::io::delta_match::match_file(self.fd.as_fd(), (from, self.size), sig, 1, || {
            if stopped() {
                Err(std::io::Error::from(std::io::ErrorKind::Interrupted))
            } else {
                Ok(())
            }
        })
    }

    /// Hands the file to a `sendfile` sender of only the bytes of
    /// `layout` (a delta's literal runs), `crc` being the whole file's
    /// (from [`Self::matched`]); checked against the recorded crc32c like
    /// [`Self::sender`].
    pub fn delta_sender(
        self,
        layout: crate::proto::Layout,
        crc: u32,
    ) -> Result<BodySender, FsError> {
        let recorded = self.recorded_crc();
        let st = nix::sys::stat::fstat(self.fd.as_raw_fd())
            .map_err(|e| FsError::errno("stat", self.shown.text(), e))?;
        let mut tx = BodySender::for_delta(self.fd, self.size, layout, &st, crc);
        if let Some(crc) = recorded {
            tx.expect_crc(crc);
        }
        Ok(tx)
    }

    /// Hands the file to a `sendfile` sender for bytes `offset..size`, the
    /// bytes before `offset` having crc32c `prefix_crc`. The sender checks
    /// what it sends against the recorded crc32c, so a file that rotted on
    /// disk is not sent as good.
    pub fn sender(self, offset: u64, prefix_crc: u32) -> Result<BodySender, FsError> {
        let recorded = self.recorded_crc();
        let mut tx = BodySender::with_prefix_crc(self.fd, self.size, offset, prefix_crc)
            .map_err(|e| FsError::io("stat", self.shown.text(), e))?;
        if let Some(crc) = recorded {
            tx.expect_crc(crc);
        }
        Ok(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::WirePath;

    #[test]
    fn opens_confined_and_describes_the_open_file() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"hello").unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        std::os::unix::fs::symlink("f", t.path().join("l")).unwrap();
        let ns = Namespace::open_dir(t.path()).unwrap();
        let f = ns
            .open_stored(&WirePath::new(b"f".to_vec()).unwrap())
            .unwrap();
        assert!(f.is_file());
        assert_eq!(f.size(), 5);
        assert_eq!(f.crc(0, 5, 0).unwrap(), crc32c::crc32c(b"hello"));
        assert_eq!(
            f.crc(2, 3, f.crc(0, 2, 0).unwrap()).unwrap(),
            crc32c::crc32c(b"hello")
        );
        assert_eq!(f.try_clone().unwrap().size(), 5);
        let d = ns
            .open_stored(&WirePath::new(b"d".to_vec()).unwrap())
            .unwrap();
        assert!(!d.is_file());
        assert!(ns
            .open_stored(&WirePath::new(b"l".to_vec()).unwrap())
            .is_err());
        let e = f.crc(0, 6, 0).unwrap_err();
        assert_eq!(e.op, "read");
    }

    #[test]
    fn the_recorded_crc_speaks_only_for_the_present_size() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"abc").unwrap();
        let file = std::fs::File::open(t.path().join("f")).unwrap();
        let ns = Namespace::open_dir(t.path()).unwrap();
        let path = WirePath::new(b"f".to_vec()).unwrap();
        assert_eq!(ns.open_stored(&path).unwrap().recorded_crc(), None);
        let r = Recorded { crc: 7, size: 3 };
        if !xattr::record(file.as_fd(), r).unwrap() {
            return; // No user xattrs where the test runs.
        }
        let f = ns.open_stored(&path).unwrap();
        assert_eq!(f.recorded().unwrap(), Some(r));
        assert_eq!(f.recorded_crc(), Some(7));
        xattr::record(file.as_fd(), Recorded { crc: 7, size: 4 }).unwrap();
        assert_eq!(ns.open_stored(&path).unwrap().recorded_crc(), None);
    }
}
