//! Atomic writes into a confined tree. A [`Stager`] creates every incoming
//! file and symlink under a hidden temporary name (`.rsb-tmp.*`) in its
//! target directory, and makes a batch visible only in [`Stager::commit`]:
//! `syncfs`, rename each staged entry over its final name, apply directory
//! modes and times (deepest first, after their children changed them), and
//! `syncfs` again. Whatever happens before a commit — a crc mismatch, a
//! dropped connection, a kill — the previous version of every file stays
//! as it was; dropping a `Stager` removes its temporary files.
//!
//! Used by the server for backups (confined to the client's namespace) and by
//! the client for restores (confined to the destination).

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, UnlinkatFlags};

use super::checksum::{self, Recorded};
use super::kind_of;
use super::sandbox::{entries_at, open_dir_at, Beneath, FsError};
use crate::proto::{EntryKind, Meta, WirePath};

/// Names starting with this are temporary files; listings never show them.
pub use crate::proto::path::TMP_PREFIX;

/// Distinguishes the temporary names of all stagers of this process.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

pub use crate::proto::path::is_tmp_name;

fn timespec(m: &Meta) -> TimeSpec {
    TimeSpec::new(m.mtime.secs, i64::from(m.mtime.nanos))
}

/// `atime` is left alone: only the modification time is part of a backup.
fn omit() -> TimeSpec {
    TimeSpec::new(0, nix::libc::UTIME_OMIT)
}

/// Set once a missing xattr support was logged.
static NO_XATTR_WARNED: AtomicBool = AtomicBool::new(false);

/// A file being received.
pub struct Incoming {
    /// Request id the file arrived with.
    pub id: u32,
    /// Final path.
    pub path: WirePath,
    /// Mode and mtime to give it.
    pub meta: Meta,
    /// Announced size.
    pub size: u64,
    /// The temporary file, open for writing.
    pub file: OwnedFd,
    /// Where the body starts (bytes before it were kept from an
    /// interrupted transfer).
    pub offset: u64,
    /// crc32c of the bytes before `offset`.
    pub crc: u32,
    /// `crc` is still to be computed (see [`Stager::defer_prefix_crc`]);
    /// no body byte may be received until it is.
    pub prefix_pending: bool,
    tmp: Vec<u8>,
    /// Kept, not removed, when the connection ends before the body does.
    partial: bool,
}

/// A non-directory moved aside for a directory (see [`Stager::displace`]).
struct Displaced {
    parent: WirePath,
    name: Vec<u8>,
    tmp: Vec<u8>,
}

struct Staged {
    id: u32,
    path: WirePath,
    tmp: Vec<u8>,
}

/// One failure of a commit: which entry, and why.
pub struct CommitFailure {
    /// Request id of the entry.
    pub id: u32,
    /// Its path.
    pub path: WirePath,
    /// The cause.
    pub error: FsError,
}

/// Stages entries beneath one tree and commits them in batches.
pub struct Stager {
    tree: Beneath,
    staged: Vec<Staged>,
    dirs: Vec<(WirePath, Meta)>,
    incoming: Option<Incoming>,
    displaced: Vec<Displaced>,
    /// The directory the last entry went into, kept open.
    parent: Option<(WirePath, OwnedFd)>,
    /// Directories written into since the last commit, with the mtime each
    /// had first: an abort gives it back (creating and removing temporary
    /// files changed it).
    touched: Vec<(WirePath, TimeSpec)>,
    /// Whether large files being received survive the end of the
    /// connection, to be resumed (the server's store; not a restore).
    pub keep_partials: bool,
    /// Whether to apply the mode and mtime of the tree's own root directory.
    pub keep_root_meta: bool,
    /// Whether to record each file's crc32c beside it (the server's store;
    /// see [`super::checksum`]).
    pub record_checksums: bool,
    /// Whether [`Stager::resume_file`] leaves the crc32c of the kept bytes
    /// to the caller ([`Incoming::prefix_pending`]): the server has a
    /// worker read them, not its event loop.
    pub defer_prefix_crc: bool,
}

impl Stager {
    /// A stager writing beneath `tree`.
    pub fn new(tree: Beneath) -> Stager {
        Stager {
            tree,
            staged: Vec::new(),
            dirs: Vec::new(),
            incoming: None,
            displaced: Vec::new(),
            parent: None,
            touched: Vec::new(),
            keep_partials: false,
            keep_root_meta: false,
            record_checksums: false,
            defer_prefix_crc: false,
        }
    }

    /// The confining tree.
    pub fn tree(&self) -> &Beneath {
        &self.tree
    }

    /// Number of entries waiting for a commit.
    pub fn pending(&self) -> usize {
        self.staged.len() + self.dirs.len()
    }

    /// A fresh temporary name, `.rsb-tmp.<salt>.<n>`; [`sweep`] removes
    /// those of other (dead) processes.
    fn tmp_name() -> Vec<u8> {
        let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
        format!(".rsb-tmp.{:x}.{n}", salt()).into_bytes()
    }

    /// A fresh name for a displaced previous version, `.rsb-tmp.old.*`:
    /// never swept, since after a crash it may be the only copy.
    fn old_name() -> Vec<u8> {
        let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
        format!(".rsb-tmp.old.{:x}.{n}", salt()).into_bytes()
    }

    /// Opens the directory that will hold `path`, creating missing
    /// directories (owner-only until their own entry arrives), replacing a
    /// file or link in the way, and making it writable by its owner. The
    /// last one is kept open: entries arrive grouped by directory.
    fn parent_for_write(&mut self, path: &WirePath) -> Result<RawFd, FsError> {
        let parent = path.parent().ok_or_else(|| {
            FsError::invalid("open", self.tree.show(path), "the root has no parent")
        })?;
        if let Some((p, fd)) = &self.parent {
            if *p == parent {
                return Ok(fd.as_raw_fd());
            }
        }
        self.parent = None;
        let fd = match self.tree.dir(&parent) {
            Ok(fd) => fd,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENOENT) | Some(nix::libc::ENOTDIR)
                ) =>
            {
                self.make_parent(&parent)?
            }
            Err(e) => return Err(e),
        };
        let st = stat::fstat(fd.as_raw_fd())
            .map_err(|e| FsError::errno("stat", self.tree.show(&parent), e))?;
        if !self.touched.iter().any(|(p, _)| *p == parent) {
            self.touched
                .push((parent.clone(), TimeSpec::new(st.st_mtime, st.st_mtime_nsec)));
        }
        if st.st_mode & 0o300 != 0o300 {
            // A read-only directory from an earlier backup; its own entry,
            // which comes after its contents, sets the mode back.
            stat::fchmod(
                fd.as_raw_fd(),
                Mode::from_bits_truncate((st.st_mode | 0o700) & 0o7777),
            )
            .map_err(|e| FsError::errno("chmod", self.tree.show(&parent), e))?;
        }
        let raw = fd.as_raw_fd();
        self.parent = Some((parent, fd));
        Ok(raw)
    }

    /// Creates the directories of `path` that are missing (owner-only), one
    /// component at a time without following links. A file or link where a
    /// directory must be is displaced, not deleted (see [`Self::displace`]).
    fn make_parent(&mut self, path: &WirePath) -> Result<OwnedFd, FsError> {
        let mut cur = self.tree.dir(&WirePath::root())?;
        let mut sofar = WirePath::root();
        for comp in path.components() {
            let here = sofar
                .join(comp)
                .map_err(|e| FsError::invalid("open", self.tree.show(path), e))?;
            let dir = cur.as_raw_fd();
            let next = match open_dir_at(dir, comp) {
                Ok(fd) => fd,
                Err(e @ (Errno::ENOENT | Errno::ENOTDIR)) => {
                    if e == Errno::ENOTDIR {
                        self.displace(dir, &sofar, comp)?;
                    }
                    self.mkdir_in(dir, &here, comp)?;
                    open_dir_at(dir, comp)
                        .map_err(|e| FsError::errno("open", self.tree.show(&here), e))?
                }
                Err(e) => return Err(FsError::errno("open", self.tree.show(&here), e)),
            };
            cur = next;
            sofar = here;
        }
        Ok(cur)
    }

    /// Moves the non-directory `name` in `dir` (the directory `parent`)
    /// aside under a temporary name, so a directory can take its place. It
    /// is deleted once the commit is durable, and put back by an abort:
    /// until then the previous version is not lost.
    fn displace(&mut self, dir: RawFd, parent: &WirePath, name: &[u8]) -> Result<(), FsError> {
        let tmp = Self::old_name();
        let shown = self.tree.show_in(parent, name);
        fcntl::renameat(Some(dir), os(name), Some(dir), os(&tmp))
            .map_err(|e| FsError::errno("rename", shown, e))?;
        self.displaced.push(Displaced {
            parent: parent.clone(),
            name: name.to_vec(),
            tmp,
        });
        Ok(())
    }

    /// Makes `path` a directory (creating it, or replacing a non-directory
    /// there) and applies `meta` to it at the commit. Directories arrive
    /// after their contents, so nothing is written into them afterwards.
    pub fn mkdir(&mut self, path: &WirePath, meta: Meta) -> Result<(), FsError> {
        if path.is_root() {
            if self.keep_root_meta {
                self.dirs.push((path.clone(), meta));
            }
            return Ok(());
        }
        let parent = self.parent_for_write(path)?;
        let Some(name) = path.file_name() else {
            return Ok(());
        };
        match stat::fstatat(Some(parent), os(name), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if kind_of(&st) == Some(EntryKind::Dir) => {}
            Ok(_) => {
                // A file or link is in the way: the new backup says this is a
                // directory now.
                let dir_path = path.parent().unwrap_or_default();
                self.displace(parent, &dir_path, name)?;
                self.mkdir_in(parent, path, name)?;
            }
            Err(Errno::ENOENT) => self.mkdir_in(parent, path, name)?,
            Err(e) => return Err(FsError::errno("stat", self.tree.show(path), e)),
        }
        self.dirs.push((path.clone(), meta));
        Ok(())
    }

    fn mkdir_in(&self, parent: RawFd, path: &WirePath, name: &[u8]) -> Result<(), FsError> {
        match stat::mkdirat(Some(parent), os(name), Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(FsError::errno("mkdir", self.tree.show(path), e)),
        }
    }

    /// Creates a symlink to `target` under a temporary name, to be renamed
    /// over `path` at the commit.
    pub fn symlink(
        &mut self,
        id: u32,
        path: &WirePath,
        target: &[u8],
        meta: Meta,
    ) -> Result<(), FsError> {
        let parent = self.parent_for_write(path)?;
        let tmp = Self::tmp_name();
        unistd::symlinkat(os(target), Some(parent), os(&tmp))
            .map_err(|e| FsError::errno("symlink", self.tree.show(path), e))?;
        // A link's mtime is kept too; its mode has no meaning on Linux.
        if let Err(e) = stat::utimensat(
            Some(parent),
            os(&tmp),
            &omit(),
            &timespec(&meta),
            UtimensatFlags::NoFollowSymlink,
        ) {
            let _ = unistd::unlinkat(Some(parent), os(&tmp), UnlinkatFlags::NoRemoveDir);
            return Err(FsError::errno("utimes", self.tree.show(path), e));
        }
        self.staged.push(Staged {
            id,
            path: path.clone(),
            tmp,
        });
        Ok(())
    }

    /// Creates the temporary file that the body of `path` is written to.
    /// A large file on a stager that keeps partials gets a name derived
    /// from its path, size and mtime, so that a transfer cut off anywhere
    /// (client or server killed, network gone) can resume into it later;
    /// older partials of the same name are removed.
    pub fn begin_file(
        &mut self,
        id: u32,
        path: &WirePath,
        meta: Meta,
        size: u64,
    ) -> Result<&mut Incoming, FsError> {
        self.abort_file();
        let parent = self.parent_for_write(path)?;
        let name = path.file_name().unwrap_or_default();
        let partial = self.keep_partials && size >= RESUME_MIN;
        let (tmp, flags) = if partial {
            remove_partials(parent, name);
            (
                partial_name(name, size, &meta),
                OFlag::O_CREAT | OFlag::O_TRUNC,
            )
        } else {
            (Self::tmp_name(), OFlag::O_CREAT | OFlag::O_EXCL)
        };
        let fd = fcntl::openat(
            Some(parent),
            os(&tmp),
            flags | OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| FsError::errno("create", self.tree.show(path), e))?;
        // SAFETY: fd was just returned by openat and is owned by nobody else.
        let file = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(self.incoming.insert(Incoming {
            id,
            path: path.clone(),
            meta,
            size,
            file,
            tmp,
            partial,
            offset: 0,
            crc: 0,
            prefix_pending: false,
        }))
    }

    /// How many bytes of `path` (a file of `size` bytes and mtime `meta`)
    /// a partial from an interrupted transfer holds, if any.
    pub fn partial_len(&self, path: &WirePath, size: u64, meta: &Meta) -> Option<u64> {
        if !self.keep_partials || size < RESUME_MIN {
            return None;
        }
        let (parent, name) = self.tree.parent(path).ok()?;
        let st = stat::fstatat(
            Some(parent.as_raw_fd()),
            os(&partial_name(name, size, meta)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ok()?;
        let is_file = kind_of(&st) == Some(EntryKind::File);
        let len = u64::try_from(st.st_size).ok()?;
        (is_file && len > 0 && len <= size).then_some(len)
    }

    /// Reopens the partial of `path` to continue at `offset`: bytes past it
    /// are cut, and the crc32c of the bytes before it is computed (one read
    /// of what is kept) so the whole file is verified as a fresh one is.
    pub fn resume_file(
        &mut self,
        id: u32,
        path: &WirePath,
        meta: Meta,
        size: u64,
        offset: u64,
    ) -> Result<&mut Incoming, FsError> {
        self.abort_file();
        let parent = self.parent_for_write(path)?;
        let name = path.file_name().unwrap_or_default();
        let tmp = partial_name(name, size, &meta);
        let shown = self.tree.show(path);
        let fd = fcntl::openat(
            Some(parent),
            os(&tmp),
            OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| FsError::errno("resume", shown.clone(), e))?;
        // SAFETY: fd was just returned by openat and is owned by nobody else.
        let file = unsafe { OwnedFd::from_raw_fd(fd) };
        let st = stat::fstat(file.as_raw_fd())
            .map_err(|e| FsError::errno("resume", shown.clone(), e))?;
        if !self.keep_partials || u64::try_from(st.st_size).unwrap_or(0) < offset {
            return Err(FsError::errno("resume", shown, Errno::ENOENT));
        }
        let off = i64::try_from(offset)
            .map_err(|_| FsError::errno("resume", shown.clone(), Errno::EFBIG))?;
        unistd::ftruncate(&file, off).map_err(|e| FsError::errno("resume", shown.clone(), e))?;
        let crc = if self.defer_prefix_crc {
            0
        } else {
            super::transfer::crc_range(&file, 0, offset, 0).map_err(|error| FsError {
                op: "resume",
                path: shown,
                error,
            })?
        };
        Ok(self.incoming.insert(Incoming {
            id,
            path: path.clone(),
            meta,
            size,
            file,
            tmp,
            partial: true,
            offset,
            crc,
            prefix_pending: self.defer_prefix_crc && offset > 0,
        }))
    }

    /// The file being received, if any.
    pub fn incoming(&mut self) -> Option<&mut Incoming> {
        self.incoming.as_mut()
    }

    /// Ends the file being received, whose whole body was verified to have
    /// crc32c `crc`: sets its mode and mtime, records the crc32c if asked
    /// to, and stages it for the commit. On failure the file is removed.
    pub fn finish_file(&mut self, crc: u32) -> Result<(), FsError> {
        let Some(inc) = self.incoming.take() else {
            return Ok(());
        };
        let shown = self.tree.show(&inc.path);
        let fd = inc.file.as_raw_fd();
        let record = self.record_checksums;
        let res = stat::fchmod(fd, Mode::from_bits_truncate(inc.meta.mode & 0o7777))
            .map_err(|e| FsError::errno("chmod", shown.clone(), e))
            .and_then(|()| {
                if !record {
                    return Ok(());
                }
                let r = Recorded {
                    crc,
                    size: inc.size,
                };
                match checksum::record(inc.file.as_fd(), r) {
                    Ok(true) => Ok(()),
                    Ok(false) => {
                        if !NO_XATTR_WARNED.swap(true, Ordering::Relaxed) {
                            log::warn!("{shown}: the file system keeps no user extended attributes: checksums are not recorded, verify cannot check files");
                        }
                        Ok(())
                    }
                    Err(e) => Err(FsError::errno("setxattr", shown.clone(), e)),
                }
            })
            .and_then(|()| {
                stat::futimens(fd, &omit(), &timespec(&inc.meta))
                    .map_err(|e| FsError::errno("utimes", shown, e))
            });
        match res {
            Ok(()) => {
                self.staged.push(Staged {
                    id: inc.id,
                    path: inc.path,
                    tmp: inc.tmp,
                });
                Ok(())
            }
            Err(e) => {
                self.remove_tmp(&inc.path, &inc.tmp);
                Err(e)
            }
        }
    }

    /// Removes the file being received, if any.
    pub fn abort_file(&mut self) {
        if let Some(inc) = self.incoming.take() {
            self.remove_tmp(&inc.path, &inc.tmp);
        }
    }

    fn remove_tmp(&self, path: &WirePath, tmp: &[u8]) {
        if let Ok((parent, _)) = self.tree.parent(path) {
            let _ = unistd::unlinkat(
                Some(parent.as_raw_fd()),
                os(tmp),
                UnlinkatFlags::NoRemoveDir,
            );
        }
    }

    fn sync(&self) -> Result<(), FsError> {
        unistd::syncfs(self.tree.root_fd())
            .map_err(|e| FsError::errno("syncfs", self.tree.show(&WirePath::root()), e))
    }

    /// Makes every staged entry durable and visible. Returns the entries
    /// that could not be committed; the others are in place and on disk.
    pub fn commit(&mut self) -> Vec<CommitFailure> {
        let mut failures = Vec::new();
        self.parent = None;
        self.touched.clear();
        let staged = std::mem::take(&mut self.staged);
        let mut dirs = std::mem::take(&mut self.dirs);
        if staged.is_empty() && dirs.is_empty() {
            return failures;
        }
        if !staged.is_empty() {
            if let Err(e) = self.sync() {
                for s in staged {
                    self.remove_tmp(&s.path, &s.tmp);
                    failures.push(CommitFailure {
                        id: s.id,
                        path: s.path,
                        error: FsError {
                            op: e.op,
                            path: e.path.clone(),
                            error: std::io::Error::from(e.error.kind()),
                        },
                    });
                }
                self.restore_displaced();
                return failures;
            }
        }
        let mut parent_path: Option<WirePath> = None;
        let mut parent_fd: Option<OwnedFd> = None;
        for s in staged {
            let Some(pp) = s.path.parent() else { continue };
            if parent_path.as_ref() != Some(&pp) {
                parent_fd = None;
                match self.tree.dir(&pp) {
                    Ok(fd) => parent_fd = Some(fd),
                    Err(error) => {
                        failures.push(CommitFailure {
                            id: s.id,
                            path: s.path,
                            error,
                        });
                        parent_path = None;
                        continue;
                    }
                }
                parent_path = Some(pp);
            }
            let Some(dir) = parent_fd.as_ref() else {
                continue;
            };
            let Some(name) = s.path.file_name() else {
                continue;
            };
            let dir = dir.as_raw_fd();
            let mut res = fcntl::renameat(Some(dir), os(&s.tmp), Some(dir), os(name));
            if matches!(res, Err(Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST)) {
                // A directory stands where the new file or link goes: move
                // it aside (removed below, once the new entry is in place).
                let pp = s.path.parent().unwrap_or_default();
                res = self
                    .displace(dir, &pp, name)
                    .and_then(|()| {
                        let r = fcntl::renameat(Some(dir), os(&s.tmp), Some(dir), os(name));
                        if r.is_err() {
                            if let Some(d) = self.displaced.pop() {
                                let _ =
                                    fcntl::renameat(Some(dir), os(&d.tmp), Some(dir), os(&d.name));
                            }
                        }
                        r.map_err(|e| FsError::errno("rename", self.tree.show(&s.path), e))
                    })
                    .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw));
            }
            if let Err(e) = res {
                let _ = unistd::unlinkat(Some(dir), os(&s.tmp), UnlinkatFlags::NoRemoveDir);
                failures.push(CommitFailure {
                    id: s.id,
                    path: s.path.clone(),
                    error: FsError::errno("rename", self.tree.show(&s.path), e),
                });
            }
        }
        // The new entries are in place and their data is durable: the old
        // versions they displaced go now, before directory times are set
        // (removing a name changes its directory's mtime), and the final
        // sync makes both durable together.
        for d in std::mem::take(&mut self.displaced) {
            if let Ok(dir) = self.tree.dir(&d.parent) {
                if let Err(e) = remove_tree(dir.as_raw_fd(), &d.tmp, Remove::All, 0) {
                    log::warn!(
                        "{}: cannot remove the replaced entry: {}",
                        self.tree.show_in(&d.parent, &d.name),
                        e.desc()
                    );
                }
            }
        }
        // Deepest first: setting a child's mtime changes nothing above it,
        // but creating it did, so parents are stamped last.
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (path, meta) in dirs {
            let res = self.tree.dir(&path).and_then(|fd| {
                stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(meta.mode & 0o7777))
                    .map_err(|e| FsError::errno("chmod", self.tree.show(&path), e))?;
                stat::futimens(fd.as_raw_fd(), &omit(), &timespec(&meta))
                    .map_err(|e| FsError::errno("utimes", self.tree.show(&path), e))
            });
            if let Err(error) = res {
                failures.push(CommitFailure { id: 0, path, error });
            }
        }
        if let Err(error) = self.sync() {
            failures.push(CommitFailure {
                id: 0,
                path: WirePath::root(),
                error,
            });
        }
        failures
    }

    /// Puts every displaced entry back where it was, removing the (empty)
    /// directories made in its place. An entry whose place holds anything
    /// else stays under its hidden name, never deleted.
    fn restore_displaced(&mut self) {
        self.parent = None;
        for d in std::mem::take(&mut self.displaced).into_iter().rev() {
            let Ok(dir) = self.tree.dir(&d.parent) else {
                continue;
            };
            let dir = dir.as_raw_fd();
            if remove_tree(dir, &d.name, Remove::EmptyDirs, 0).is_ok() {
                let _ = fcntl::renameat(Some(dir), os(&d.tmp), Some(dir), os(&d.name));
            } else {
                log::warn!(
                    "{}: previous version kept as {}",
                    self.tree.show_in(&d.parent, &d.name),
                    String::from_utf8_lossy(&d.tmp)
                );
            }
        }
    }

    /// Removes every temporary file without committing anything, and puts
    /// back what was displaced.
    pub fn abort(&mut self) {
        // A partial body stays where a later transfer can resume it.
        if let Some(inc) = self.incoming.take() {
            if !inc.partial {
                self.remove_tmp(&inc.path, &inc.tmp);
            }
        }
        for s in std::mem::take(&mut self.staged) {
            self.remove_tmp(&s.path, &s.tmp);
        }
        self.dirs.clear();
        self.restore_displaced();
        // Deepest first, as at a commit.
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (path, mtime) in touched {
            if let Ok(fd) = self.tree.dir(&path) {
                let _ = stat::futimens(fd.as_raw_fd(), &omit(), &mtime);
            }
        }
    }
}

/// Distinguishes this process's temporary names from those of other
/// processes. The pid alone is not enough: in a container a restarted
/// server may get the same pid as its killed predecessor, so the start
/// time of the process is in too.
fn salt() -> u64 {
    static SALT: OnceLock<u64> = OnceLock::new();
    *SALT.get_or_init(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ (u64::from(std::process::id()) << 32)
    })
}

/// True for a temporary entry another process made and can no longer
/// need: `.rsb-tmp.<salt>.<n>` with a salt not ours (its process died, or
/// it is an earlier run). Partials (`.rsb-tmp.part.*`, kept to resume) and
/// displaced previous versions (`.rsb-tmp.old.*`) are not stale.
pub fn is_stale_tmp(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(TMP_PREFIX) else {
        return false;
    };
    let mut parts = rest.split(|&b| b == b'.');
    let (Some(s), Some(n), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let hex = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
    };
    !n.is_empty() && n.iter().all(u8::is_ascii_digit) && hex(s).is_some_and(|s| s != salt())
}

/// Removes, under `path`, the temporary files and links that processes
/// killed before they could clean up left behind ([`is_stale_tmp`]),
/// giving each directory it touched its modification time back. Never
/// removes a directory and never follows a link. Returns how many it
/// removed; stops early when `stopped` says so. Run by the server on a
/// namespace the first time it is opened in a run, and by the client on a
/// restore's destination.
pub fn sweep(tree: &Beneath, path: &WirePath, recursive: bool, stopped: &dyn Fn() -> bool) -> u64 {
    let mut removed = 0;
    let mut todo = vec![path.clone()];
    // Bounded like every walk: at most this many directories.
    let mut budget: u64 = 10_000_000;
    while let Some(dir) = todo.pop() {
        budget = budget.saturating_sub(1);
        if budget == 0 || stopped() {
            break;
        }
        let Ok(fd) = tree.dir(&dir) else { continue };
        let Ok(entries) = entries_at(fd.as_raw_fd()) else {
            continue;
        };
        let before = stat::fstat(fd.as_raw_fd()).ok();
        let mut changed = false;
        for (name, kind) in entries {
            if is_stale_tmp(&name) {
                if unistd::unlinkat(Some(fd.as_raw_fd()), os(&name), UnlinkatFlags::NoRemoveDir)
                    .is_ok()
                {
                    removed += 1;
                    changed = true;
                }
                continue;
            }
            if crate::proto::path::is_tmp_name(&name) {
                continue;
            }
            let is_dir = match kind {
                Some(t) => t == nix::dir::Type::Directory,
                None => stat::fstatat(
                    Some(fd.as_raw_fd()),
                    os(&name),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .is_ok_and(|st| kind_of(&st) == Some(EntryKind::Dir)),
            };
            if is_dir && recursive {
                if let Ok(sub) = dir.join(&name) {
                    todo.push(sub);
                }
            }
        }
        if let (true, Some(st)) = (changed, before) {
            let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
            let _ = stat::futimens(fd.as_raw_fd(), &omit(), &mtime);
        }
    }
    removed
}

/// Files at least this large keep their partial body across an
/// interrupted transfer; smaller ones are simply sent again.
pub const RESUME_MIN: u64 = 1 << 20;

/// FNV-1a: a stable 64-bit hash of a name, for partial file names.
fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The name of the partial of file `name` with this size and mtime: the
/// stamp is part of it, so a partial of an older version never matches.
fn partial_name(name: &[u8], size: u64, meta: &Meta) -> Vec<u8> {
    format!(
        ".rsb-tmp.part.{:016x}.{size}.{}.{}",
        fnv64(name),
        meta.mtime.secs,
        meta.mtime.nanos
    )
    .into_bytes()
}

/// Removes the partials of every version of file `name` in `dir`.
fn remove_partials(dir: RawFd, name: &[u8]) {
    let prefix = format!(".rsb-tmp.part.{:016x}.", fnv64(name)).into_bytes();
    for (n, _) in entries_at(dir).unwrap_or_default() {
        if n.starts_with(&prefix) {
            let _ = unistd::unlinkat(Some(dir), os(&n), UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// Which entries [`remove_tree`] may remove.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Remove {
    /// Everything: files, links, whole directory trees (a directory that a
    /// backup replaced by a file).
    All,
    /// Only directories with nothing but directories inside (what an
    /// aborted batch leaves where it displaced a file); anything else stops
    /// the removal with `ENOTEMPTY`.
    EmptyDirs,
}

/// Removes `name` in `dir` and what is below it, never following a link.
fn remove_tree(dir: RawFd, name: &[u8], what: Remove, depth: usize) -> Result<(), Errno> {
    if depth > 4096 {
        return Err(Errno::ELOOP);
    }
    let flag = if what == Remove::All {
        UnlinkatFlags::NoRemoveDir
    } else {
        UnlinkatFlags::RemoveDir
    };
    match unistd::unlinkat(Some(dir), os(name), flag) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) if what == Remove::All => {}
        Err(Errno::ENOTEMPTY | Errno::EEXIST) if what == Remove::EmptyDirs => {}
        Err(e) => return Err(e),
    }
    let sub = open_dir_at(dir, name)?;
    if what == Remove::All {
        // Owner-only modes from an earlier backup must not stop the removal.
        let _ = stat::fchmod(sub.as_raw_fd(), Mode::from_bits_truncate(0o700));
    }
    for (n, t) in entries_at(sub.as_raw_fd())? {
        if what == Remove::EmptyDirs && t != Some(nix::dir::Type::Directory) {
            return Err(Errno::ENOTEMPTY);
        }
        remove_tree(sub.as_raw_fd(), &n, what, depth + 1)?;
    }
    unistd::unlinkat(Some(dir), os(name), UnlinkatFlags::RemoveDir)
}

impl Drop for Stager {
    fn drop(&mut self) {
        self.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Time;
    use std::os::unix::fs::MetadataExt;

    fn wp(s: &str) -> WirePath {
        WirePath::new(s.as_bytes().to_vec()).unwrap()
    }

    fn meta(mode: u32, secs: i64) -> Meta {
        Meta {
            mode,
            mtime: Time {
                secs,
                nanos: 123_456_789,
            },
        }
    }

    fn write_all(fd: &OwnedFd, data: &[u8]) {
        nix::unistd::write(fd, data).unwrap();
    }

    #[test]
    fn nothing_visible_before_commit_and_nothing_left_after_drop() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"old").unwrap();
        {
            let mut s = Stager::new(Beneath::open_root(t.path(), false).unwrap());
            let inc = s.begin_file(1, &wp("f"), meta(0o640, 1000), 3).unwrap();
            write_all(&inc.file, b"new");
            s.finish_file(0).unwrap();
            assert_eq!(std::fs::read(t.path().join("f")).unwrap(), b"old");
        }
        assert_eq!(std::fs::read(t.path().join("f")).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn commit_renames_and_sets_metadata() {
        let t = tempfile::tempdir().unwrap();
        let mut s = Stager::new(Beneath::open_root(t.path(), false).unwrap());
        s.mkdir(&wp("d"), meta(0o555, 2000)).unwrap();
        let inc = s.begin_file(2, &wp("d/f"), meta(0o604, 1000), 3).unwrap();
        write_all(&inc.file, b"abc");
        s.finish_file(0).unwrap();
        s.symlink(3, &wp("d/l"), b"../nowhere", meta(0o777, 3000))
            .unwrap();
        assert!(s.commit().is_empty());
        let f = std::fs::symlink_metadata(t.path().join("d/f")).unwrap();
        assert_eq!(
            (f.mode() & 0o7777, f.mtime(), f.mtime_nsec()),
            (0o604, 1000, 123_456_789)
        );
        let l = std::fs::symlink_metadata(t.path().join("d/l")).unwrap();
        assert!(l.file_type().is_symlink());
        assert_eq!(l.mtime(), 3000);
        assert_eq!(
            std::fs::read_link(t.path().join("d/l")).unwrap(),
            std::path::Path::new("../nowhere")
        );
        let d = std::fs::symlink_metadata(t.path().join("d")).unwrap();
        assert_eq!((d.mode() & 0o7777, d.mtime()), (0o555, 2000));
        // A second backup into the read-only directory still works.
        let mut s = Stager::new(Beneath::open_root(t.path(), false).unwrap());
        s.mkdir(&wp("d"), meta(0o555, 2000)).unwrap();
        let inc = s.begin_file(4, &wp("d/g"), meta(0o600, 1), 1).unwrap();
        write_all(&inc.file, b"x");
        s.finish_file(0).unwrap();
        assert!(s.commit().is_empty());
        assert_eq!(std::fs::read(t.path().join("d/g")).unwrap(), b"x");
        std::fs::set_permissions(
            t.path().join("d"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }

    #[test]
    fn aborted_file_leaves_old_version() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"old").unwrap();
        let mut s = Stager::new(Beneath::open_root(t.path(), false).unwrap());
        let inc = s.begin_file(1, &wp("f"), meta(0o600, 1), 3).unwrap();
        write_all(&inc.file, b"ne");
        s.abort_file();
        assert!(s.commit().is_empty());
        assert_eq!(std::fs::read(t.path().join("f")).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_file_or_link_replaces_a_directory_tree_at_the_commit() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("x/y/z")).unwrap();
        std::fs::write(t.path().join("x/y/z/f"), b"old").unwrap();
        std::fs::create_dir_all(t.path().join("l/m")).unwrap();
        // A read-only directory inside must not stop the removal.
        std::fs::set_permissions(
            t.path().join("x/y"),
            std::os::unix::fs::PermissionsExt::from_mode(0o500),
        )
        .unwrap();
        let mut s = Stager::new(Beneath::open_root(t.path(), false).unwrap());
        let inc = s.begin_file(9, &wp("x"), meta(0o600, 1), 3).unwrap();
        write_all(&inc.file, b"new");
        s.finish_file(0).unwrap();
        s.symlink(10, &wp("l"), b"target", meta(0o777, 1)).unwrap();
        // Before the commit the old trees are intact.
        assert!(t.path().join("x/y/z/f").is_file());
        assert!(s.commit().is_empty());
        assert_eq!(std::fs::read(t.path().join("x")).unwrap(), b"new");
        assert!(std::fs::symlink_metadata(t.path().join("l"))
            .unwrap()
            .file_type()
            .is_symlink());
        let mut names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["l", "x"]);
    }

    #[test]
    fn never_writes_through_a_stored_symlink() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("d")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("e")).unwrap();
        let mut s = Stager::new(Beneath::open_root(&root, false).unwrap());
        // Entries under a stored link replace the link with a directory...
        s.begin_file(1, &wp("d/f"), meta(0o600, 1), 0).unwrap();
        s.finish_file(0).unwrap();
        s.symlink(2, &wp("d/l"), b"x", meta(0o600, 1)).unwrap();
        // ...and so does a directory entry where the link is.
        s.mkdir(&wp("e"), meta(0o755, 1)).unwrap();
        assert!(s.commit().is_empty());
        assert!(std::fs::symlink_metadata(root.join("d")).unwrap().is_dir());
        assert!(std::fs::symlink_metadata(root.join("e")).unwrap().is_dir());
        assert!(std::fs::symlink_metadata(root.join("d/f"))
            .unwrap()
            .is_file());
        // Nothing was ever written through either link.
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn a_file_becoming_a_directory_keeps_the_file_until_the_commit() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("x"), b"old file").unwrap();
        std::fs::write(t.path().join("y"), b"old y").unwrap();
        let names = |t: &tempfile::TempDir| {
            let mut v: Vec<_> = std::fs::read_dir(t.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        // Aborted: both come back, nothing else is left.
        {
            let mut s = Stager::new(Beneath::open_root(t.path(), false).unwrap());
            let inc = s.begin_file(1, &wp("x/a/b"), meta(0o600, 1), 1).unwrap();
            write_all(&inc.file, b"n");
            s.finish_file(0).unwrap();
            s.mkdir(&wp("x/a"), meta(0o755, 1)).unwrap();
            s.mkdir(&wp("x"), meta(0o755, 1)).unwrap();
            s.mkdir(&wp("y"), meta(0o755, 1)).unwrap();
            assert!(t.path().join("x").is_dir());
        }
        assert_eq!(std::fs::read(t.path().join("x")).unwrap(), b"old file");
        assert_eq!(std::fs::read(t.path().join("y")).unwrap(), b"old y");
        assert_eq!(names(&t), ["x", "y"]);
        // Committed: the directories replace them and the old files go.
        let mut s = Stager::new(Beneath::open_root(t.path(), false).unwrap());
        let inc = s.begin_file(1, &wp("x/a"), meta(0o600, 1), 1).unwrap();
        write_all(&inc.file, b"n");
        s.finish_file(0).unwrap();
        s.mkdir(&wp("x"), meta(0o755, 1)).unwrap();
        s.mkdir(&wp("y"), meta(0o755, 1)).unwrap();
        assert!(s.commit().is_empty());
        assert_eq!(std::fs::read(t.path().join("x/a")).unwrap(), b"n");
        assert!(t.path().join("y").is_dir());
        assert_eq!(names(&t), ["x", "y"]);
    }

    #[test]
    fn temporary_names_are_unique_and_hidden() {
        let a = Stager::tmp_name();
        let b = Stager::tmp_name();
        assert_ne!(a, b);
        assert!(is_tmp_name(&a) && is_tmp_name(&b));
    }

    #[test]
    fn only_other_processes_plain_temporary_names_are_stale() {
        let ours = String::from_utf8(Stager::tmp_name()).unwrap();
        assert!(!is_stale_tmp(ours.as_bytes()));
        assert!(!is_stale_tmp(&Stager::old_name()));
        assert!(is_stale_tmp(b".rsb-tmp.1f.3"));
        for keep in [
            &b".rsb-tmp.part.00ff.10.1.2"[..],
            b".rsb-tmp.old.1f.3",
            b".rsb-tmp.1f.",
            b".rsb-tmp.1f.3.4",
            b".rsb-tmp.zz.3",
            b"rsb-tmp.1f.3",
            b"a.txt",
        ] {
            assert!(!is_stale_tmp(keep), "{}", String::from_utf8_lossy(keep));
        }
    }

    #[test]
    fn sweep_removes_stale_files_only_and_keeps_directory_times() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("d/e")).unwrap();
        for p in [
            "d/.rsb-tmp.1f.1",
            "d/e/.rsb-tmp.2a.7",
            "d/keep",
            "d/.rsb-tmp.old.1f.2",
        ] {
            std::fs::write(root.join(p), b"x").unwrap();
        }
        std::fs::write(root.join("d/.rsb-tmp.part.0.1.2.3"), b"x").unwrap();
        std::fs::create_dir(root.join("d/.rsb-tmp.3b.1")).unwrap();
        std::os::unix::fs::symlink("/nowhere", root.join("d/.rsb-tmp.4c.2")).unwrap();
        let ours = Stager::tmp_name();
        std::fs::write(root.join("d").join(os(&ours)), b"x").unwrap();
        let t = TimeSpec::new(1_500_000_000, 7);
        for d in ["d", "d/e"] {
            stat::utimensat(None, &root.join(d), &t, &t, UtimensatFlags::NoFollowSymlink).unwrap();
        }
        let tree = Beneath::open_root(root, false).unwrap();
        assert_eq!(sweep(&tree, &wp("d"), true, &|| false), 3);
        let mut left: Vec<String> = std::fs::read_dir(root.join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![
            ".rsb-tmp.3b.1".to_string(),
            ".rsb-tmp.old.1f.2".into(),
            ".rsb-tmp.part.0.1.2.3".into(),
            String::from_utf8(ours).unwrap(),
            "e".into(),
            "keep".into(),
        ];
        want.sort();
        assert_eq!(left, want);
        assert_eq!(std::fs::read_dir(root.join("d/e")).unwrap().count(), 0);
        for d in ["d", "d/e"] {
            let md = std::fs::metadata(root.join(d)).unwrap();
            assert_eq!((md.mtime(), md.mtime_nsec()), (1_500_000_000, 7), "{d}");
        }
    }
}
