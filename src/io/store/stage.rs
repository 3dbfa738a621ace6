//! Atomic writes into a confined tree. A [`Stager`] creates every incoming
//! file, symlink and special file under a hidden temporary name (`.rsb-tmp.*`) in its
//! target directory (or at its final name inside a new directory, itself
//! under a temporary name: see [`built`]), and makes a batch visible only
//! in [`Stager::commit`]: `syncfs`, rename each new directory and each
//! other staged entry over its final name, apply directory modes and
//! times (deepest first, after their children changed them), and `syncfs`
//! again. Whatever happens before a commit — a crc mismatch, a
//! dropped connection, a kill — the previous version of every file stays
//! as it was; dropping a `Stager` removes its temporary files.
//!
//! Each entry's metadata (mode, mtime, owner) is applied before it is made
//! visible, as its [`StageOptions`] say: the server's store keeps owners
//! (on disk as root, in the metadata record otherwise, with the names the
//! client sent), a restore gives them where it may.
//!
//! Used by the server for backups (confined to the client's namespace) and by
//! the client for restores (confined to the destination), each with its
//! [`StageOptions`], fixed when the stager is made. This file stages and
//! aborts; the commit and its [`super::CommitReport`] are `commit.rs`'s.
//!
//! Must not read stored files for anyone else (that is
//! [`super::StoredFile`]'s job) and must not decide what the hidden names
//! look like ([`crate::store::names`] does).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag};
use nix::sys::stat::{self, Mode};
use nix::sys::time::TimeSpec;
use nix::unistd::{self, UnlinkatFlags};

pub(super) use super::beneath::remove_tree;
use super::beneath::{os, Shown};
use super::namespace::Namespace;
use super::{partial, special, tmp, xattr};
use crate::io::error::FsError;
use crate::io::kind_of;
use crate::proto::owners::Book;
use crate::proto::xattrs::Xattrs;
use crate::proto::{EntryKind, Layout, Meta, WirePath};
use crate::store::record::Recorded;
use crate::store::resume;
use crate::store::{modes, names};

pub(super) fn timespec(m: &Meta) -> TimeSpec {
    TimeSpec::new(m.mtime.secs, i64::from(m.mtime.nanos))
}

/// `atime` is left alone: only the modification time is part of a backup.
pub(super) fn omit() -> TimeSpec {
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
    /// The temporary file, open for writing; `None` for an empty file,
    /// which gets no inode before the commit (see `commit::create_empty`).
    pub file: Option<OwnedFd>,
    /// Where the body starts (bytes before it were kept from an
    /// interrupted transfer).
    pub offset: u64,
    /// crc32c of the bytes before `offset`.
    pub crc: u32,
    /// `crc` is still to be computed (see
    /// [`StageOptions::defer_prefix_crc`]); no body byte may be received
    /// until it is.
    pub prefix_pending: bool,
    /// Where the body's bytes go, as its header said (the shell sets it):
    /// a sparse file is given its full size when its body is in, so the
    /// hole at its end exists too.
    pub layout: Layout,
    /// A delta ([`Stager::begin_delta`]): its crc32c is read back whole.
    pub delta: bool,
    /// A delta's bytes known to be in the file from its start (see
    /// [`Stager::delta_written`]): kept as a partial if it is cut.
    pub(super) written: Option<u64>,
    /// Its extended attributes, given at [`Stager::finish_file`].
    xattrs: Option<Box<Xattrs>>,
    /// The mode and owner a fresh file was created with (see [`made`]).
    pub(super) made: Option<made::Made>,
    /// A small fresh file not created yet: its body is held in memory and
    /// a writer thread makes it whole (see [`deferred`]).
    pub(super) held: Option<Box<deferred::Held>>,
    /// The held body, once it came in ([`Incoming::give_body`]).
    pub(super) body: Option<Vec<u8>>,
    pub(super) tmp: Vec<u8>,
    /// `path` as a person would write it.
    pub(super) shown: Shown,
    /// Kept, not removed, when the connection ends before the body does.
    pub(super) partial: bool,
}

/// A file or link waiting under its temporary name for the commit (or at
/// its final name inside a directory being built, see [`built`]).
pub(super) struct Staged {
    pub(super) id: u32,
    pub(super) path: WirePath,
    /// Empty for an empty file, which has no name until the commit.
    pub(super) tmp: Vec<u8>,
    pub(super) kind: EntryKind,
    pub(super) meta: Meta,
    pub(super) size: u64,
    /// The device and inode of a file that was a partial (a name others
    /// could reach), checked before the commit renames it; `None` for a
    /// file staged under a fresh name and for a link.
    pub(super) inode: Option<(u64, u64)>,
}

impl Staged {
    /// Whether it was made at its final name, inside a directory being
    /// built (see [`built`]): the commit renames nothing. Temporary names
    /// are reserved: a path never ends in one.
    pub(super) fn in_place(&self) -> bool {
        !self.tmp.is_empty() && self.path.file_name() == Some(&self.tmp[..])
    }
}

/// A hard link waiting for the commit: made there, after the batch's
/// other entries are in place, from the stored `target` (see
/// [`Stager::link`]).
pub(super) struct PendingLink {
    pub(super) id: u32,
    pub(super) path: WirePath,
    pub(super) target: WirePath,
    /// The file's mtime and size: the stored target must still have them.
    pub(super) meta: Meta,
    pub(super) size: u64,
}

/// The new metadata of a stored entry, applied in place at the commit
/// (see [`Stager::update`]).
pub(super) struct PendingUpdate {
    pub(super) id: u32,
    pub(super) path: WirePath,
    /// What the stored entry must be: a file or a symlink.
    pub(super) kind: EntryKind,
    pub(super) meta: Meta,
    /// What the stored entry's size (a link's target length) must be.
    pub(super) size: u64,
    /// A file's extended attributes now (`None`: none), made the stored
    /// set at the commit.
    pub(super) xattrs: Option<Box<Xattrs>>,
}

mod apply;
mod batch;
mod built;
mod deferred;
mod made;
mod options;
mod pending;
mod resumed;
mod room;
mod xattrs;
pub(super) use apply::{Applied, XattrStep};
pub(super) use built::{under, Displaced};
pub use deferred::{Writer, WriterMsg, WriterPool};
pub use options::StageOptions;
pub(super) use pending::PendingDelete;

/// Logs, once per process, that the file system keeps no user extended
/// attributes (seen at `shown`): checksums are not recorded.
fn warn_no_xattrs(shown: &Shown) {
    if !NO_XATTR_WARNED.swap(true, Ordering::Relaxed) {
        log::warn!("{}: the file system keeps no user extended attributes: checksums are not recorded, verify cannot check files", shown.text());
    }
}

/// Whether the directory `dir` has a default ACL (one that cannot be read
/// counts as one: the prediction of [`made`] is then not made there).
fn has_default_acl(dir: RawFd) -> bool {
    match crate::io::xattrs::get(crate::io::xattrs::On::Fd(dir), b"system.posix_acl_default") {
        Ok(v) => v.is_some_and(|v| !v.is_empty()),
        Err(Errno::ENOTSUP | Errno::ENODATA) => false,
        Err(_) => true,
    }
}

/// Whether this process runs as root (it can read and write whatever the
/// modes say, and give entries any owner).
pub(super) fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| unistd::geteuid().is_root())
}

/// Stages entries beneath one tree and commits them in batches.
pub struct Stager {
    pub(super) ns: Namespace,
    pub(super) opts: StageOptions,
    pub(super) staged: Vec<Staged>,
    /// Hard links to make at the commit, in the order they came.
    pub(super) links: Vec<PendingLink>,
    /// Metadata to apply to stored entries at the commit.
    pub(super) updates: Vec<PendingUpdate>,
    /// Directories to give their metadata at the commit, with the digest
    /// of the attributes they were given when made.
    pub(super) dirs: Vec<(WirePath, Meta, u64)>,
    /// Directories read whole by the client, to delete absent entries of.
    pub(super) deletes: Vec<PendingDelete>,
    pub(super) incoming: Option<Incoming>,
    /// The extended attributes of the entry that comes next (an `Xattrs`
    /// frame goes right before it), for that path only.
    pub(super) xattrs: Option<(WirePath, Box<Xattrs>)>,
    pub(super) displaced: Vec<Displaced>,
    /// Stand-ins built by batches handed to a commit, perhaps not swapped
    /// in yet (see [`built`]).
    handed: Vec<Displaced>,
    /// The entries and directories of this batch made at their final
    /// names inside a directory being built (see [`built`]).
    pub(super) in_place: std::collections::HashSet<WirePath>,
    /// The directory the last entry went into, kept open (shared with
    /// the writes of the files held for it, see [`deferred`]).
    pub(super) parent: Option<(WirePath, std::sync::Arc<OwnedFd>)>,
    /// Whether that directory is inside one being built.
    parent_hidden: bool,
    /// Directories written into since the last commit, with the mtime each
    /// had first: an abort gives it back (creating and removing temporary
    /// files changed it).
    pub(super) touched: Vec<(WirePath, TimeSpec)>,
    /// Set-id bits cleared, owners not given, attributes a restore could
    /// not set (`u32`s: a connection's state stays small).
    pub(super) left_out: std::cell::Cell<[u32; 3]>,
    /// The owner names the client sent ([`StageOptions::keep_owners`]),
    /// and the namespace's table of them once read (see `names_file`).
    pub(super) names: Book,
    pub(super) saved_names: Option<Box<Book>>,
    /// A search for partials to free room found none (see `make_room`).
    reclaim_failed: bool,
    /// Bytes that may be staged before the free space is looked at again,
    /// and when it was (see `make_room`).
    room: (u64, Option<std::time::Instant>),
    /// Whether commits use fsync rather than `syncfs` (decided once, by
    /// [`super::durable::use_syncfs`]): each file is then fsynced when its
    /// body is complete, through the descriptor that wrote it.
    fsync_files: std::cell::OnceCell<bool>,
    /// What manifest checks found missing (see [`super::fresh::FreshDirs`]).
    pub(super) fresh: std::cell::RefCell<super::fresh::FreshDirs>,
    /// Whether fresh files come out as [`made`] predicts (`None`: not
    /// seen yet).
    made_ok: Option<bool>,
    /// The group of the directory the last entry went into; `u32::MAX`
    /// when what a new file there gets cannot be predicted (a default
    /// ACL, which replaces the umask and gives files its entries).
    parent_gid: u32,
    /// Where held files are sent to be written (see [`deferred`]; the
    /// server's stagers only).
    writer: Option<Writer>,
    /// The writes of this batch's held files.
    pub(super) writes: std::sync::Arc<deferred::Writes>,
    /// Those of the batch last handed to a commit (a restore waits for
    /// them too, see [`deferred`]).
    pub(super) handed_writes: std::sync::Arc<deferred::Writes>,
}

impl Stager {
    /// A stager writing beneath `ns`, as `opts` says.
    pub fn new(ns: Namespace, opts: StageOptions) -> Stager {
        Stager {
            ns,
            opts,
            staged: Vec::new(),
            links: Vec::new(),
            updates: Vec::new(),
            dirs: Vec::new(),
            deletes: Vec::new(),
            incoming: None,
            xattrs: None,
            displaced: Vec::new(),
            handed: Vec::new(),
            in_place: Default::default(),
            parent: None,
            parent_hidden: false,
            touched: Vec::new(),
            left_out: std::cell::Cell::new([0, 0, 0]),
            names: Book::new(),
            saved_names: None,
            reclaim_failed: false,
            room: (0, None),
            fsync_files: std::cell::OnceCell::new(),
            fresh: Default::default(),
            made_ok: None,
            parent_gid: u32::MAX,
            writer: None,
            writes: Default::default(),
            handed_writes: Default::default(),
        }
    }

    /// How many entries lost a set-id bit ([`StageOptions::clear_setid`]).
    pub fn setid_cleared(&self) -> u64 {
        u64::from(self.left_out.get()[0])
    }

    /// How many entries kept the restorer's owner ([`StageOptions::set_owners`]).
    pub fn owners_kept(&self) -> u64 {
        u64::from(self.left_out.get()[1])
    }

    /// Takes in the pairs of a `Names` frame, for the records of the
    /// entries that follow ([`StageOptions::keep_owners`]).
    pub fn learn_names(&mut self, users: Vec<(u32, Vec<u8>)>, groups: Vec<(u32, Vec<u8>)>) {
        self.names.learn(users, groups);
    }

    /// The confining tree, to read.
    pub fn tree(&self) -> &Namespace {
        &self.ns
    }

    /// Number of entries waiting for a commit.
    pub fn pending(&self) -> usize {
        self.staged.len()
            + self.dirs.len()
            + self.links.len()
            + self.updates.len()
            + self.deletes.len()
    }

    /// Opens the directory that will hold `path`, creating missing
    /// directories (owner-only until their own entry arrives), replacing a
    /// file or link in the way, and making it writable by its owner. The
    /// last one is kept open: entries arrive grouped by directory.
    fn parent_for_write(&mut self, path: &WirePath) -> Result<RawFd, FsError> {
        let parent = path.parent().ok_or_else(|| {
            FsError::invalid("open", self.ns.tree.show(path), "the root has no parent")
        })?;
        if let Some((p, fd)) = &self.parent {
            if *p == parent {
                return Ok(fd.as_raw_fd());
            }
        }
        self.parent = None;
        let fd = match self.dir(&parent) {
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
            .map_err(|e| FsError::errno("stat", self.ns.tree.show(&parent), e))?;
        self.parent_gid = if has_default_acl(fd.as_raw_fd()) {
            u32::MAX
        } else {
            st.st_gid
        };
        // One being built is removed whole by an abort.
        self.parent_hidden = self.hidden(&parent);
        if !self.parent_hidden && !self.touched.iter().any(|(p, _)| *p == parent) {
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
            .map_err(|e| FsError::errno("chmod", self.ns.tree.show(&parent), e))?;
        }
        let raw = fd.as_raw_fd();
        self.parent = Some((parent, std::sync::Arc::new(fd)));
        Ok(raw)
    }

    /// Makes `path` a directory (creating it, or replacing a non-directory
    /// there) and applies `meta` to it at the commit. Directories arrive
    /// after their contents, so nothing is written into them afterwards.
    pub fn mkdir(&mut self, path: &WirePath, meta: Meta) -> Result<(), FsError> {
        let xattrs = self.take_xattrs(path);
        if path.is_root() {
            if self.opts.keep_root_meta {
                let digest = self.dir_xattrs(path, xattrs.as_deref(), true)?;
                self.dirs.push((path.clone(), meta, digest));
            }
            return Ok(());
        }
        let parent = self.parent_for_write(path)?;
        let Some(name) = path.file_name() else {
            return Ok(());
        };
        // Whether the directory there may hold attributes of its own: in a
        // store, only one whose sticky bit says it has a record (a new one,
        // made now or a stand-in made empty, has none); in a restore, any
        // (a new one inherits the default ACL of the directory it is in).
        let native = !self.opts.fake_super;
        let may_have = |st: &nix::sys::stat::FileStat| native || modes::may_have_record(st.st_mode);
        let existing = match stat::fstatat(Some(parent), os(name), AtFlags::AT_SYMLINK_NOFOLLOW) {
            _ if self.stand_in_of(path).is_some() || self.handed_stand_in(path) => true,
            Ok(st) if kind_of(&st) == Some(EntryKind::Dir) => may_have(&st),
            Ok(_) => {
                // A file or link is in the way: the new backup says this is a
                // directory now.
                let dir_path = path.parent().unwrap_or_default();
                self.stand_in(parent, &dir_path, name, false)?;
                false
            }
            Err(Errno::ENOENT) => {
                self.mkdir_in(parent, path, name)?;
                false
            }
            Err(e) => return Err(FsError::errno("stat", self.ns.tree.show(path), e)),
        };
        let had = native || existing;
        let digest = self.dir_xattrs(path, xattrs.as_deref(), had)?;
        self.dirs.push((path.clone(), meta, digest));
        Ok(())
    }

    fn mkdir_in(&self, parent: RawFd, path: &WirePath, name: &[u8]) -> Result<(), FsError> {
        match stat::mkdirat(Some(parent), os(name), Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(FsError::errno("mkdir", self.ns.tree.show(path), e)),
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
        let mut tmp = Self::staging_name(&mut self.in_place, self.parent_hidden, path);
        let mut made = unistd::symlinkat(os(target), Some(parent), os(&tmp));
        if made == Err(Errno::EEXIST) {
            // Its own name was taken after all: a temporary one, renamed.
            tmp = tmp::fresh_tmp();
            made = unistd::symlinkat(os(target), Some(parent), os(&tmp));
        }
        made.map_err(|e| FsError::errno("symlink", self.ns.tree.show(path), e))?;
        let size = target.len() as u64;
        self.stage_by_name(
            id,
            path,
            (parent, tmp),
            (EntryKind::Symlink, size),
            meta,
            true,
        )
    }

    /// Stages a hard link: `path` becomes another name of the stored
    /// regular file `target` at the commit, once the batch's other entries
    /// are in place (the target may be in the same batch). Its directory
    /// is made now, as for any entry; nothing else is written until the
    /// commit checks that the target is a file of `meta`'s mtime and of
    /// `size` bytes.
    pub fn link(
        &mut self,
        id: u32,
        path: &WirePath,
        target: &WirePath,
        meta: Meta,
        size: u64,
    ) -> Result<(), FsError> {
        if target.is_root() || target == path {
            return Err(FsError::invalid(
                "link",
                self.ns.tree.show(path),
                "a link needs another file as its target",
            ));
        }
        self.parent_for_write(path)?;
        self.links.push(PendingLink {
            id,
            path: path.clone(),
            target: target.clone(),
            meta,
            size,
        });
        Ok(())
    }

    /// Gives the entry just made as `tmp` in `parent` (a link or a special,
    /// never opened: a FIFO would wait for a writer) its owner when `owned`
    /// and its mtime, by name, and stages it for the commit; on failure
    /// `tmp` is removed. The owner is set by a restore (what it may) and by
    /// a root server (one that is not root cannot record it: Linux keeps no
    /// user attribute on a link, a FIFO or a socket). `size`: what the
    /// commit reports (a link's target length).
    fn stage_by_name(
        &mut self,
        id: u32,
        path: &WirePath,
        (parent, tmp): (RawFd, Vec<u8>),
        (kind, size): (EntryKind, u64),
        meta: Meta,
        owned: bool,
    ) -> Result<(), FsError> {
        let fail = |op, e| {
            let _ = unistd::unlinkat(Some(parent), os(&tmp), UnlinkatFlags::NoRemoveDir);
            FsError::errno(op, self.ns.tree.show(path), e)
        };
        let res = if owned {
            self.stamp_by_name(parent, &tmp, &meta)
        } else {
            Self::mtime_by_name(parent, &tmp, &meta)
        };
        res.map_err(|(op, e)| fail(op, e))?;
        self.staged.push(Staged {
            id,
            path: path.clone(),
            tmp,
            kind,
            meta,
            size,
            inode: None,
        });
        Ok(())
    }

    /// Creates a FIFO, socket or device node (`rdev`) under a temporary
    /// name, with its mode and mtime, to be renamed over `path` at the
    /// commit like a link. A device this process may not make (it is not
    /// root) becomes, with [`StageOptions::fake_super`] (the server's
    /// store), a metadata-only stand-in (see [`super::special`]); elsewhere
    /// (a restore) it fails with [`super::NEEDS_ROOT`].
    pub fn special(
        &mut self,
        id: u32,
        path: &WirePath,
        kind: EntryKind,
        rdev: u64,
        meta: Meta,
    ) -> Result<(), FsError> {
        let parent = self.parent_for_write(path)?;
        let tmp = tmp::fresh_tmp();
        let (mut mode, mut cleared) = (meta.mode & 0o7777, false);
        if self.opts.clear_setid {
            (mode, cleared) = modes::without_owner(mode);
        }
        let fsync = self.opts.fake_super && self.fsyncs();
        let stand_in = self.opts.fake_super.then_some(special::StandIn {
            owner: self.opts.keep_owners.then_some((meta.uid, meta.gid)),
        });
        let stand_in = special::make(parent, &tmp, kind, rdev, mode, stand_in, fsync).map_err(
            |e| match e {
                special::MakeError::Sys(op, errno) => {
                    FsError::errno(op, self.ns.tree.show(path), errno)
                }
                e => FsError::other("mknod", self.ns.tree.show(path), e),
            },
        )?;
        self.count(Applied {
            setid_cleared: cleared,
            ..Applied::default()
        });
        // A stand-in's owner is in its record.
        self.stage_by_name(id, path, (parent, tmp), (kind, 0), meta, !stand_in)
    }

    /// Creates the temporary file that the body of `path` is written to.
    /// A large file on a stager that keeps partials gets a name derived
    /// from its path, size and mtime, so that a transfer cut off anywhere
    /// (client or server killed, network gone) can resume into it later;
    /// older partials of the same name are removed. A partial another
    /// connection is writing is left alone: this copy goes to a fresh name
    /// of its own (see [`partial`]).
    pub fn begin_file(
        &mut self,
        id: u32,
        path: &WirePath,
        meta: Meta,
        size: u64,
    ) -> Result<&mut Incoming, FsError> {
        self.begin(id, path, meta, size, false)
    }

    /// [`Self::begin_file`] of a body sent with `layout`: a small dense
    /// one may be held in memory and written by a writer thread (see
    /// [`deferred`]; the shell asks [`Incoming::holds_body`]).
    pub fn begin_body(
        &mut self,
        id: u32,
        path: &WirePath,
        meta: Meta,
        size: u64,
        layout: Layout,
    ) -> Result<&mut Incoming, FsError> {
        let inc = self.begin(id, path, meta, size, !layout.is_sparse())?;
        inc.layout = layout;
        Ok(inc)
    }

    fn begin(
        &mut self,
        id: u32,
        path: &WirePath,
        meta: Meta,
        size: u64,
        may_hold: bool,
    ) -> Result<&mut Incoming, FsError> {
        self.abort_file();
        let xattrs = self.take_xattrs(path);
        let mut parent = self.parent_for_write(path)?;
        let resumable = self.opts.keep_partials && resume::is_resumable(size);
        if resumable && self.parent_hidden {
            // Its partial must be where a later run finds it (see `built`).
            // Whatever became of it, the directory is opened again: the
            // one held may have been closed.
            self.reveal(&path.parent().unwrap_or_default());
            parent = self.parent_for_write(path)?;
        }
        self.make_room(parent, size);
        let name = path.file_name().unwrap_or_default();
        let fail = |e| FsError::errno("create", self.ns.tree.show(path), e);
        let mut claimed = None;
        if resumable && !self.parent_hidden {
            let tmp = names::partial_name(name, size, &meta);
            if let partial::Claim::Ours(fd) = partial::claim(parent, &tmp, true).map_err(fail)? {
                partial::remove_others(parent, name, &tmp);
                unistd::ftruncate(&fd, 0).map_err(fail)?;
                claimed = Some((tmp, fd));
            }
        }
        let partial = claimed.is_some();
        let mut made = None;
        let (tmp, file) = match claimed {
            Some((tmp, fd)) => (tmp, Some(fd)),
            // An empty file gets no name and no inode until the commit
            // makes it whole in one go (see `commit::create_empty`), unless
            // it has attributes to be given through a descriptor.
            None if size == 0 && xattrs.is_none() => (Vec::new(), None),
            None => {
                let mut tmp = Self::staging_name(&mut self.in_place, self.parent_hidden, path);
                let (mode, predicted) = self.to_make(&meta, self.parent_gid);
                let held = may_hold.then(|| self.hold(size, mode, predicted)).flatten();
                if held.is_some() {
                    // Made on a writer thread once its body is in.
                    return Ok(self.incoming.insert(Incoming {
                        tmp,
                        xattrs,
                        ..self.incoming_of(id, path, meta, size, held)
                    }));
                }
                let create = |tmp: &[u8]| {
                    fcntl::openat(
                        Some(parent),
                        os(tmp),
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_RDWR
                            | OFlag::O_CLOEXEC
                            | OFlag::O_NOFOLLOW,
                        mode,
                    )
                };
                let mut fd = create(&tmp);
                if fd == Err(Errno::EEXIST) && Some(&tmp[..]) == path.file_name() {
                    // Its own name was taken after all: a temporary one.
                    tmp = tmp::fresh_tmp();
                    fd = create(&tmp);
                }
                let fd = fd.map_err(fail)?;
                // SAFETY: fd was just returned by openat and is owned by nobody else.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                made = self.check_made(&fd, predicted);
                (tmp, Some(fd))
            }
        };
        Ok(self.incoming.insert(Incoming {
            file,
            tmp,
            partial,
            made,
            xattrs,
            ..self.incoming_of(id, path, meta, size, None)
        }))
    }

    /// A fresh, dense [`Incoming`] for `path` with no file, name or
    /// attributes yet, `held` as [`Self::hold`] decided.
    fn incoming_of(
        &self,
        id: u32,
        path: &WirePath,
        meta: Meta,
        size: u64,
        held: Option<Box<deferred::Held>>,
    ) -> Incoming {
        Incoming {
            id,
            path: path.clone(),
            meta,
            size,
            file: None,
            tmp: Vec::new(),
            shown: self.ns.tree.shown(path),
            partial: false,
            offset: 0,
            crc: 0,
            prefix_pending: false,
            layout: Layout::Dense,
            delta: false,
            written: None,
            xattrs: None,
            made: None,
            held,
            body: None,
        }
    }

    /// The file being received, if any.
    pub fn incoming(&mut self) -> Option<&mut Incoming> {
        self.incoming.as_mut()
    }

    /// Ends the file being received, whose whole body was verified to have
    /// crc32c `crc`: sets its mode and mtime, records the crc32c if asked
    /// to, and stages it for the commit. On failure the file is removed.
    pub fn finish_file(&mut self, crc: u32) -> Result<(), FsError> {
        let Some(mut inc) = self.incoming.take() else {
            return Ok(());
        };
        if let Some(held) = inc.held.take() {
            return self.finish_held(inc, *held, crc);
        }
        let shown = &inc.shown;
        let res = (|| {
            let Some(file) = inc.file.as_ref() else {
                return Ok((Vec::new(), None));
            };
            let fd = file.as_raw_fd();
            if inc.layout.is_sparse() {
                // The body wrote the extents only: the trailing hole.
                let size = i64::try_from(inc.size).unwrap_or(i64::MAX);
                unistd::ftruncate(file, size)
                    .map_err(|e| FsError::errno("truncate", shown.text(), e))?;
            }
            let record = self.opts.record_checksums.then_some(Recorded {
                crc,
                size: inc.size,
            });
            // A partial may hold attributes of an earlier attempt, and a
            // restored file those it inherits (a default ACL where it is).
            let xattrs = XattrStep::Write {
                set: inc.xattrs.as_deref(),
                stale: inc.partial || !self.opts.fake_super,
            };
            let fsync = self.fsyncs();
            let applied = deferred::seal(
                file, &self.opts, record, xattrs, &inc.meta, inc.made, fsync, shown,
            )?;
            self.count(applied);
            if !inc.partial {
                // A fresh name made with O_EXCL: nobody else writes it.
                return Ok((inc.tmp.clone(), None));
            }
            let st = stat::fstat(fd).map_err(|e| FsError::errno("stat", shown.text(), e))?;
            // A complete partial is nothing to resume any more: it moves,
            // still locked, to a name of this stager's own, so that nobody
            // else can touch what the commit will rename.
            let own = tmp::fresh_tmp();
            // Through the stand-in when the file is inside a directory that
            // replaces a file or link: the real path leads to the old one.
            let dir = self.dir(&inc.path.parent().unwrap_or_default())?;
            partial::hand_over(dir.as_raw_fd(), &inc.tmp, file.as_fd(), &own)
                .map_err(|e| FsError::errno("rename", shown.text(), e))?;
            Ok((own, Some((st.st_dev, st.st_ino))))
        })();
        match res {
            Ok((tmp, inode)) => {
                self.staged.push(Staged {
                    id: inc.id,
                    path: inc.path,
                    tmp,
                    kind: EntryKind::File,
                    meta: inc.meta,
                    size: inc.size,
                    inode,
                });
                Ok(())
            }
            Err(e) => {
                self.remove_tmp(&inc.path, &inc.tmp);
                Err(e)
            }
        }
    }

    /// True when commits use fsync of each file and directory, not
    /// `syncfs` (see [`super::durable::use_syncfs`]).
    pub(super) fn fsyncs(&self) -> bool {
        *self
            .fsync_files
            .get_or_init(|| !super::durable::use_syncfs(self.ns.tree.root_fd()))
    }

    /// Gives the open file or directory `fd` its real mode `mode` (see
    /// [`StageOptions::apply_mode`]), counting a set-id bit cleared.
    pub(super) fn set_mode(
        &self,
        fd: BorrowedFd<'_>,
        kind: EntryKind,
        meta: &Meta,
        xattrs: XattrStep<'_>,
    ) -> Result<(), (&'static str, Errno)> {
        let applied = self.opts.apply_mode(fd, kind, meta, xattrs)?;
        self.count(applied);
        Ok(())
    }

    /// Counts set-id bits cleared (see [`StageOptions::clear_setid`]) and
    /// owners not given ([`StageOptions::set_owners`]).
    pub(super) fn count(&self, a: Applied) {
        let [setid, owners, xattrs] = self.left_out.get();
        self.left_out.set([
            setid.saturating_add(u32::from(a.setid_cleared)),
            owners.saturating_add(u32::from(a.owner_kept)),
            xattrs.saturating_add(a.xattrs_refused),
        ]);
    }

    /// Whether the staged entry `s`, in the directory `dir`, is still the
    /// file this stager wrote (the commit renames nothing else).
    pub(super) fn still_staged(dir: RawFd, s: &Staged) -> bool {
        let Some((dev, ino)) = s.inode else {
            return true;
        };
        stat::fstatat(Some(dir), os(&s.tmp), AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| st.st_dev == dev && st.st_ino == ino)
    }

    /// Removes the file being received, if any.
    pub fn abort_file(&mut self) {
        // A held file has no name on disk yet.
        if let Some(inc) = self.incoming.take().filter(|i| i.held.is_none()) {
            self.remove_tmp(&inc.path, &inc.tmp);
            self.in_place.remove(&inc.path);
        }
    }

    pub(super) fn remove_tmp(&self, path: &WirePath, tmp: &[u8]) {
        if tmp.is_empty() {
            return;
        }
        if let Some(Ok(parent)) = path.parent().map(|p| self.dir(&p)) {
            let _ = unistd::unlinkat(
                Some(parent.as_raw_fd()),
                os(tmp),
                UnlinkatFlags::NoRemoveDir,
            );
        }
    }

    pub(super) fn sync(&self) -> Result<(), FsError> {
        super::durable::syncfs_shared(self.ns.tree.root_fd())
            .map_err(|e| FsError::errno("syncfs", self.ns.tree.show(&WirePath::root()), e))
    }

    /// Removes every temporary file and stand-in directory without
    /// committing anything.
    pub fn abort(&mut self) {
        // Held files being written remove themselves (see `deferred`),
        // before the directories being built that they may be in go.
        let writes = self.abort_writes();
        if !self.displaced.is_empty() {
            writes.wait();
        }
        // A partial body stays where a later transfer can resume it.
        if let Some(inc) = self.incoming.take() {
            if inc.delta {
                self.keep_delta(inc);
            } else if !inc.partial && inc.held.is_none() {
                self.remove_tmp(&inc.path, &inc.tmp);
            }
        }
        for s in std::mem::take(&mut self.staged) {
            self.remove_tmp(&s.path, &s.tmp);
        }
        self.dirs.clear();
        self.links.clear();
        self.updates.clear();
        self.deletes.clear();
        self.restore_displaced();
        // Deepest first, as at a commit.
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (path, mtime) in touched {
            if let Ok(fd) = self.ns.tree.dir(&path) {
                let _ = stat::futimens(fd.as_raw_fd(), &omit(), &mtime);
            }
        }
    }
}

fn set_disk_mode(fd: BorrowedFd<'_>, mode: u32) -> Result<(), (&'static str, Errno)> {
    stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode)).map_err(|e| ("chmod", e))
}

impl Drop for Stager {
    fn drop(&mut self) {
        self.abort();
    }
}

#[cfg(test)]
pub(super) mod tests;
