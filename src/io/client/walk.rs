//! The client's walk of a local tree: turns a path the user typed into the
//! ordered stream of entries a backup sends (ancestors, the path itself, then
//! its contents depth-first), with each entry's kind, metadata and wire path.
//! Also the one local-time conversion the client's `ls` needs.
//!
//! Every file type is an entry: regular files, directories, symlinks, and
//! FIFOs, sockets and devices (with their device number). With
//! [`WalkOptions::one_file_system`] it does not descend into a directory on
//! another device than the path it started from (the directory itself is
//! still an entry, as with `rsync -x`); a directory that is the server's
//! store ([`WalkOptions::exclude`]) is left out with its contents.
//!
//! Exclude patterns ([`WalkOptions::patterns`], the rules in
//! [`crate::client::exclude`]) are matched against each entry's path
//! relative to the walk's base (its root unless [`Root::base`] says
//! otherwise). An excluded entry is neither yielded nor looked at further
//! (a name excluded whatever its type is not even `lstat`ed), an excluded
//! directory is not opened, and its directory's [`WalkItem::Closed`] lists
//! the excluded names, so that the server keeps what it holds under them.
//! The root and its ancestors are never excluded.
//!
//! The extended attributes of files and directories (ACLs and
//! capabilities among them) are read with the entry (`llistxattr`, then
//! `lgetxattr` for each); a set past the wire's bounds
//! ([`crate::proto::xattrs`]) or one that cannot be read leaves the entry
//! without any and is reported right after it as an error (exit 1), so
//! the content is still backed up and nobody believes the attributes
//! were. Symlinks, FIFOs, sockets and devices keep none.
//!
//! It only reads (`lstat`, `readdir`, `readlink`, the attributes); it never follows a symlink,
//! never opens file contents and never decides what to send: the planner
//! (`client/plan.rs`) does. Entries below a directory are looked at
//! through that directory's descriptor (`fstatat`, `readlinkat`,
//! `listxattrat`), so the kernel resolves one name per call rather than
//! the whole path: on an unchanged tree the walk is most of a backup's
//! time, and path lookups were most of the walk.
//! In a directory of [`ahead::AHEAD_MIN`] names or more, a helper thread
//! makes those calls for the names from the back while the walk goes from
//! the front ([`ahead`]): the same items in the same order, the calls of
//! one directory on two cores.
//! Memory is bounded by the depth of the tree times the width of one
//! directory, never by the size of the whole tree.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::libc;
use nix::sys::stat::{FileStat, Mode};

use crate::client::exclude::Excludes;
use crate::client::ui::LocalTime;
use crate::proto::xattrs::Xattrs;
use crate::proto::{EntryKind, Meta, Time, WirePath};

mod ahead;
use ahead::{Ahead, Looked, Skip, Take, AHEAD_MIN};

/// What reading an entry's extended attributes gave.
type XattrRead = Result<Option<Xattrs>, crate::io::xattrs::ReadError>;

/// Why an entry of a file type Linux does not have is not backed up.
const NOT_SUPPORTED: &str = "unknown file type";

/// Directories a walk keeps open at once, the outermost; deeper ones are
/// read and their entries looked at by path, so that a deep tree never
/// takes the descriptors the files being sent need. (The helper holds a
/// descriptor of its own for each of them it shares: twice this at most.)
const MAX_OPEN_DIRS: usize = 32;

/// Why the server's store is not backed up.
pub const STORE_EXCLUDED: &str = "the server's store: not backed up into itself";

/// What a walk leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkOptions {
    /// `--one-file-system`: do not descend into directories on another
    /// device than the walk's root.
    pub one_file_system: bool,
    /// `(st_dev, st_ino)` of a directory never entered nor yielded (the
    /// store of a server on this machine).
    pub exclude: Option<(u64, u64)>,
    /// Exclude patterns (`-x`, `--exclude-from`, `backup --exclude`);
    /// `None` or empty: nothing is left out by name.
    pub patterns: Option<Arc<Excludes>>,
    /// Walk without the helper thread ([`ahead`]): the same items, every
    /// call on the walk's own thread (tests and `benches/walkbench.rs`
    /// compare the two).
    pub alone: bool,
}

pub use crate::client::plan::LocalEntry;

/// How far below its root a walk goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Depth {
    /// The root and everything beneath it.
    #[default]
    Tree,
    /// The root and the entries directly in it, not what is below those:
    /// a directory's listing (which, read whole, also says what in it is
    /// gone), for watch mode's changed directories.
    Listing,
    /// The root's entry alone (a changed file, or a directory's own
    /// metadata).
    Entry,
}

/// One path a backup walks, and how deep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// The local path, absolute or relative to the current directory.
    pub path: PathBuf,
    /// How far below it.
    pub depth: Depth,
    /// A root that is gone when the walk starts is nothing at all rather
    /// than an error (watch mode: made and removed again before its batch;
    /// its directory's listing says it is gone).
    pub optional: bool,
    /// What exclude patterns are matched relative to: `None`, the path
    /// itself; watch mode walks a changed directory below the root the
    /// user named and matches relative to that root (`Root { path:
    /// /home/ann/a/b, base: Some(/home/ann) }` matches `a/b/x`). A base
    /// that is not the path or above it counts as `None`.
    pub base: Option<PathBuf>,
}

impl Root {
    /// `path` and everything beneath it.
    pub fn tree(path: impl Into<PathBuf>) -> Root {
        Root {
            path: path.into(),
            depth: Depth::Tree,
            optional: false,
            base: None,
        }
    }
}

/// What the walk found next.
#[derive(Debug)]
pub enum WalkItem {
    /// An entry to back up.
    Entry(LocalEntry),
    /// The server's store ([`WalkOptions::exclude`]): left out with its
    /// contents, a note rather than a warning.
    Excluded {
        /// The local path.
        path: PathBuf,
    },
    /// A file of a type rsb does not know, left out.
    Skipped {
        /// The local path.
        path: PathBuf,
        /// Why, for the warning.
        reason: String,
    },
    /// An entry below the root that was listed in its directory and is
    /// gone when looked at (ENOENT): removed while the walk ran. A warning,
    /// not a failure.
    Vanished {
        /// The local path.
        path: PathBuf,
    },
    /// A path that could not be read; the walk goes on with the rest.
    Error {
        /// The local path.
        path: PathBuf,
        /// The cause.
        error: io::Error,
    },
    /// The walk of a directory it opened is over: every entry beneath it
    /// came before. `whole`: its listing was complete and each of its
    /// entries was yielded as an entry or excluded by a pattern (none
    /// failed, was of an unknown type, or was the store's own), so what
    /// the server holds there, the walk did not yield and `keep` does not
    /// name is gone. A directory that could not be opened gives no
    /// `Closed` at all.
    Closed {
        /// The directory's path on the server.
        wire: WirePath,
        /// It was read whole.
        whole: bool,
        /// The names in it the patterns excluded (empty when not whole).
        keep: Vec<Vec<u8>>,
    },
}

/// A lazy depth-first walk; see [`walk`].
#[derive(Debug)]
pub struct Walk {
    /// The path as given, until the first call to `next`.
    start: Option<PathBuf>,
    /// Items decided ahead of time (ancestors, the root, errors).
    queue: VecDeque<WalkItem>,
    /// A directory just yielded whose children are to be read next.
    open: Option<(PathBuf, WirePath)>,
    /// The directories being walked, innermost last.
    stack: Vec<Frame>,
    /// What it leaves out.
    opts: WalkOptions,
    /// The device of the root, once `lstat`ed.
    root_dev: Option<u64>,
    /// How far below the root it goes.
    depth: Depth,
    /// A missing root yields nothing.
    optional: bool,
    /// What patterns are matched relative to ([`Root::base`]).
    base: Option<PathBuf>,
    /// Where in an entry's wire path the path relative to the base
    /// starts (past the base's own and its `/`).
    rel_start: usize,
    /// The helper that looks at a wide directory's names from the back
    /// ([`ahead`]), started with the first such directory.
    ahead: Helper,
    /// Names the helper looked at (the tests read it).
    looked_ahead: u64,
}

/// The walk's helper, once it is needed.
#[derive(Debug)]
enum Helper {
    NotYet,
    /// One core, or no thread to be had.
    Off,
    On(Ahead),
}

/// One directory being walked: its children, sorted, and how far it got.
#[derive(Debug)]
struct Frame {
    local: PathBuf,
    wire: WirePath,
    names: Arc<[OsString]>,
    /// The next child.
    pos: usize,
    /// Its id with the helper, when it shares its names with it.
    job: Option<u64>,
    /// What the helper found for the names after `pos`, taken already.
    ready: VecDeque<Option<Looked>>,
    /// The directory, open, for its children's calls; `None` past
    /// [`MAX_OPEN_DIRS`] or when no descriptor was left (`EMFILE`): they
    /// go by path.
    dir: Option<Dir>,
    /// Its listing was complete and no child failed so far.
    whole: bool,
    /// The names of its children the patterns excluded.
    excluded: Vec<Vec<u8>>,
}

/// How an entry is reached for the calls after its `lstat`.
#[derive(Debug, Clone, Copy)]
enum At<'a> {
    /// By its name in the open directory being walked.
    Name(RawFd, &'a OsStr),
    /// By its whole path.
    Path,
}

/// Walks `root`, which is made absolute against the current directory by
/// [`absolute`] (lexically: symlinks are not resolved).
///
/// Yields one `Dir` entry for each ancestor directory from the top (`/home`,
/// `/home/ann` for `/home/ann/x`; not `/` itself), then `root`, then its
/// contents depth-first in pre-order, each directory's children sorted by
/// name bytes. Symlinks are never followed; a symlink given as `root` is an
/// entry of its own. Sockets, fifos and devices are entries (with their
/// device number); [`walk_with`] says what else to leave out.
/// A path that cannot be read is a [`WalkItem::Error`] and the walk goes on;
/// a missing `root` is a single error. A name that makes the wire path invalid
/// (too long) is an error of kind [`io::ErrorKind::InvalidInput`].
pub fn walk(root: &Path) -> Walk {
    walk_with(root, WalkOptions::default())
}

/// [`walk`], leaving out what `opts` says.
pub fn walk_with(root: &Path, opts: WalkOptions) -> Walk {
    walk_root(&Root::tree(root), opts)
}

/// [`walk_with`], going only as deep as `root` says: with
/// [`Depth::Listing`] the root directory is opened (and closed, `whole`
/// or not) but none of its subdirectories; with [`Depth::Entry`] nothing
/// is opened.
pub fn walk_root(root: &Root, opts: WalkOptions) -> Walk {
    Walk {
        start: Some(root.path.clone()),
        queue: VecDeque::new(),
        open: None,
        stack: Vec::new(),
        opts,
        root_dev: None,
        depth: root.depth,
        optional: root.optional,
        base: root.base.clone(),
        rel_start: 0,
        ahead: Helper::NotYet,
        looked_ahead: 0,
    }
}

impl Iterator for Walk {
    type Item = WalkItem;

    fn next(&mut self) -> Option<WalkItem> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            if let Some(root) = self.start.take() {
                self.begin(&root);
                continue;
            }
            if let Some((local, wire)) = self.open.take() {
                self.open_dir(local, wire);
                continue;
            }
            let frame = self.stack.last_mut()?;
            let names = Arc::clone(&frame.names);
            let Some(name) = names.get(frame.pos) else {
                let frame = self.stack.pop()?;
                if let (Some(id), Helper::On(ahead)) = (frame.job, &self.ahead) {
                    ahead.finish(id);
                }
                return Some(WalkItem::Closed {
                    wire: frame.wire,
                    whole: frame.whole,
                    keep: if frame.whole {
                        frame.excluded
                    } else {
                        Vec::new()
                    },
                });
            };
            frame.pos += 1;
            // Taken from the helper in order, excluded names too.
            let looked = match (frame.job, &self.ahead) {
                (Some(id), Helper::On(ahead)) => match ahead.take(id, &mut frame.ready) {
                    Take::Found(looked) => {
                        self.looked_ahead += 1;
                        looked
                    }
                    Take::Yours => None,
                },
                _ => None,
            };
            let local = frame.local.join(name);
            let at = match &frame.dir {
                Some(dir) => At::Name(dir.as_raw_fd(), name),
                None => At::Path,
            };
            let item = match frame.wire.join(name.as_bytes()) {
                // Excluded whatever it is: not even looked at.
                Ok(wire) if self.is_excluded(&wire, false) => None,
                Ok(wire) => self.visit(local, wire, at, looked),
                Err(e) => Some(invalid(local, e)),
            };
            let Some(item) = item else {
                if let Some(f) = self.stack.last_mut() {
                    f.excluded.push(name.as_bytes().to_vec());
                }
                continue;
            };
            // A child that is not sent might still be stored: its
            // directory deletes nothing.
            if matches!(
                item,
                WalkItem::Error { .. } | WalkItem::Skipped { .. } | WalkItem::Excluded { .. }
            ) {
                if let Some(f) = self.stack.last_mut() {
                    f.whole = false;
                }
            }
            return Some(item);
        }
    }
}

impl Walk {
    /// Queues the ancestors and the root.
    fn begin(&mut self, root: &Path) {
        let root = match absolute(root) {
            Ok(root) => root,
            Err(error) => return self.queue.push_back(error_item(root.to_path_buf(), error)),
        };
        let wire = match WirePath::from_local(root.as_os_str().as_bytes()) {
            Ok(wire) => wire,
            Err(e) => return self.queue.push_back(invalid(root, e)),
        };
        // The root first, so that a missing path is one error rather than
        // one per missing ancestor.
        let md = match lstat(At::Path, &root) {
            Ok(md) => md,
            Err(error) if self.optional && error.kind() == io::ErrorKind::NotFound => return,
            Err(error) => return self.queue.push_back(error_item(root, error)),
        };
        self.rel_start = self.rel_start_of(&wire);
        let mut ancestor = PathBuf::from("/");
        let mut ancestor_wire = WirePath::root();
        let names: Vec<&[u8]> = wire.components().collect();
        for name in names.iter().take(names.len().saturating_sub(1)) {
            ancestor.push(std::ffi::OsStr::from_bytes(name));
            ancestor_wire = match ancestor_wire.join(name) {
                Ok(w) => w,
                Err(e) => return self.queue.push_back(invalid(ancestor, e)),
            };
            // stat, not lstat: an ancestor that is a symlink (`/home` ->
            // `/usr/home`) still has to be a directory on the server, or the
            // root could not be stored below it.
            let item = match stat(&ancestor) {
                // A path inside the server's own store (watch mode may see
                // its writes): nothing of it is backed up.
                Ok(md) if self.opts.exclude == Some((md.st_dev, md.st_ino)) => {
                    self.queue.clear();
                    return self.queue.push_back(WalkItem::Excluded { path: ancestor });
                }
                Ok(md) if md.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                    WalkItem::Entry(LocalEntry {
                        xattrs: self.xattrs(At::Path, &ancestor),
                        local: ancestor.clone(),
                        wire: ancestor_wire.clone(),
                        kind: EntryKind::Dir,
                        meta: meta_from(&md),
                        size: 0,
                        target: Vec::new(),
                        rdev: 0,
                        inode: None,
                    })
                }
                Ok(_) => error_item(
                    ancestor.clone(),
                    io::Error::from(io::ErrorKind::NotADirectory),
                ),
                Err(error) => error_item(ancestor.clone(), error),
            };
            self.queue.push_back(item);
        }
        self.root_dev = Some(md.st_dev);
        if let Some(item) = self.entry(root, wire, &md, At::Path, None) {
            self.queue.push_back(item);
        }
    }

    /// Where the path relative to the base starts in the wire path of an
    /// entry beneath `root` (the root's own wire path).
    fn rel_start_of(&self, root: &WirePath) -> usize {
        let root = root.as_bytes();
        let base = self
            .base
            .as_deref()
            .and_then(|b| wire_path(b).ok())
            .map(|b| b.as_bytes().to_vec())
            .filter(|b| {
                b.is_empty()
                    || root == b.as_slice()
                    || root.starts_with(b) && root.get(b.len()) == Some(&b'/')
            });
        match base.as_deref().unwrap_or(root) {
            [] => 0,
            b => b.len() + 1,
        }
    }

    /// True when the patterns exclude the entry at `wire` (below the
    /// root: the root is never excluded), a directory when `is_dir`.
    fn is_excluded(&self, wire: &WirePath, is_dir: bool) -> bool {
        match &self.opts.patterns {
            Some(patterns) if !self.stack.is_empty() => {
                excluded_below(patterns, wire, self.rel_start, is_dir)
            }
            _ => false,
        }
    }

    /// Reads a directory's names, sorted, and pushes them as a frame that
    /// keeps the directory open (the outer [`MAX_OPEN_DIRS`] levels).
    fn open_dir(&mut self, local: PathBuf, wire: WirePath) {
        let mut names = Vec::new();
        let mut dir = None;
        let mut whole = true;
        if self.stack.len() < MAX_OPEN_DIRS {
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            match Dir::open(local.as_path(), flags, Mode::empty()) {
                Ok(mut d) => {
                    for entry in d.iter() {
                        match entry {
                            Ok(entry) => {
                                let name = entry.file_name().to_bytes();
                                if name != b"." && name != b".." {
                                    names.push(OsString::from_vec(name.to_vec()));
                                }
                            }
                            Err(e) => {
                                // Keep what was read: a partial listing beats none.
                                self.queue.push_back(error_item(local.clone(), e.into()));
                                whole = false;
                                break;
                            }
                        }
                    }
                    dir = Some(d);
                }
                // Out of descriptors: this level by path.
                Err(Errno::EMFILE | Errno::ENFILE) => {}
                Err(e) => return self.queue.push_back(gone_or_error(local, e.into())),
            }
        }
        if dir.is_none() {
            let entries = match fs::read_dir(&local) {
                Ok(entries) => entries,
                Err(error) => return self.queue.push_back(gone_or_error(local, error)),
            };
            for entry in entries {
                match entry {
                    Ok(entry) => names.push(entry.file_name()),
                    Err(error) => {
                        self.queue.push_back(error_item(local.clone(), error));
                        whole = false;
                        break;
                    }
                }
            }
        }
        names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let names: Arc<[OsString]> = names.into();
        let job = self.share(&names, dir.as_ref(), &local, &wire);
        self.stack.push(Frame {
            local,
            wire,
            names,
            pos: 0,
            job,
            ready: VecDeque::new(),
            dir,
            whole,
            excluded: Vec::new(),
        });
    }

    /// Shares a wide directory's names with the helper (started with the
    /// first one); its id with it, or `None` when the walk looks alone.
    fn share(
        &mut self,
        names: &Arc<[OsString]>,
        dir: Option<&Dir>,
        local: &Path,
        wire: &WirePath,
    ) -> Option<u64> {
        if names.len() < AHEAD_MIN {
            return None;
        }
        if let Helper::NotYet = self.ahead {
            self.ahead = if self.opts.alone {
                Helper::Off
            } else {
                Ahead::start().map_or(Helper::Off, Helper::On)
            };
        }
        let Helper::On(ahead) = &self.ahead else {
            return None;
        };
        // The helper's own descriptor of the directory: the frame's closes
        // when the walk leaves it, the helper may still be looking. Opened
        // anew, not a dup: a dup shares the open file, whose reference
        // count every call through it takes, and two cores taking turns at
        // one counter cost more than the calls.
        let dir = match dir {
            Some(d) => {
                let fd = nix::fcntl::openat(
                    Some(d.as_raw_fd()),
                    ".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .ok()?;
                // SAFETY: fd was just returned by openat and belongs to nobody else.
                Some(unsafe { OwnedFd::from_raw_fd(fd) })
            }
            None => None,
        };
        let skip = self.opts.patterns.as_ref().map(|patterns| {
            Arc::new(Skip {
                patterns: Arc::clone(patterns),
                wire: wire.clone(),
                rel_start: self.rel_start,
            })
        });
        Some(ahead.share(Arc::clone(names), dir, local, skip))
    }

    /// `lstat`s one path below the root (unless the helper did: `looked`);
    /// `None` when it is a directory the patterns exclude.
    fn visit(
        &mut self,
        local: PathBuf,
        wire: WirePath,
        at: At<'_>,
        looked: Option<Looked>,
    ) -> Option<WalkItem> {
        let (md, xattrs) = match looked {
            Some(l) => (l.md, l.xattrs),
            None => (lstat(at, &local), None),
        };
        match md {
            Ok(md) => self.entry(local, wire, &md, at, xattrs),
            Err(error) => Some(gone_or_error(local, error)),
        }
    }

    /// Classifies a path by its `lstat` result; directories are remembered to
    /// be opened next, which makes the walk pre-order. `None`: a directory
    /// the patterns exclude (its attributes are not even read). `xattrs`:
    /// its attributes when the helper read them already.
    fn entry(
        &mut self,
        local: PathBuf,
        wire: WirePath,
        md: &FileStat,
        at: At<'_>,
        xattrs: Option<XattrRead>,
    ) -> Option<WalkItem> {
        let Some(kind) = crate::io::kind_of_mode(md.st_mode) else {
            return Some(WalkItem::Skipped {
                path: local,
                reason: NOT_SUPPORTED.to_string(),
            });
        };
        let (size, target) = match kind {
            EntryKind::File => (u64::try_from(md.st_size).unwrap_or(0), Vec::new()),
            EntryKind::Dir => {
                if self.is_excluded(&wire, true) {
                    return None;
                }
                if self.opts.exclude == Some((md.st_dev, md.st_ino)) {
                    return Some(WalkItem::Excluded { path: local });
                }
                // Another file system's root is an entry, its contents are
                // not (`--one-file-system`).
                let deep_enough = match self.depth {
                    Depth::Tree => true,
                    // The root is looked at with nothing open yet.
                    Depth::Listing => self.stack.is_empty(),
                    Depth::Entry => false,
                };
                let same_fs =
                    !self.opts.one_file_system || self.root_dev.is_none_or(|d| d == md.st_dev);
                if deep_enough && same_fs {
                    self.open = Some((local.clone(), wire.clone()));
                }
                (0, Vec::new())
            }
            EntryKind::Symlink => match readlink(at, &local) {
                Ok(target) => (0, target.into_vec()),
                Err(error) => return Some(gone_or_error(local, error)),
            },
            _ => (0, Vec::new()),
        };
        let xattrs = if crate::proto::codec::has_xattrs(kind) {
            let read = xattrs.unwrap_or_else(|| read_xattrs(at, &local));
            self.kept_xattrs(&local, read)
        } else {
            None
        };
        Some(WalkItem::Entry(LocalEntry {
            xattrs,
            local,
            wire,
            kind,
            meta: meta_from(md),
            size,
            target,
            rdev: if kind.is_device() { md.st_rdev } else { 0 },
            // A file of several names: the planner sends it once a run.
            inode: (kind == EntryKind::File && md.st_nlink > 1).then_some((md.st_dev, md.st_ino)),
        }))
    }
}

impl Walk {
    /// The extended attributes of the file or directory at `local`; a set
    /// that cannot be read or sent is reported right after the entry
    /// (queued), and the entry goes without.
    fn xattrs(&mut self, at: At<'_>, local: &Path) -> Option<Box<Xattrs>> {
        let read = read_xattrs(at, local);
        self.kept_xattrs(local, read)
    }

    /// What [`Walk::xattrs`] keeps of what was read.
    fn kept_xattrs(&mut self, local: &Path, read: XattrRead) -> Option<Box<Xattrs>> {
        match read {
            Ok(x) => x.map(Box::new),
            Err(e) => {
                self.queue.push_back(WalkItem::Error {
                    path: local.to_path_buf(),
                    error: io::Error::other(format!("extended attributes not kept: {e}")),
                });
                None
            }
        }
    }
}

/// True when `patterns` exclude the entry at `wire` (a directory when
/// `is_dir`), matched on its path past `rel_start` (the base's); an empty
/// rest (the base itself) is never excluded. The walk's rule, and its
/// helper's.
fn excluded_below(patterns: &Excludes, wire: &WirePath, rel_start: usize, is_dir: bool) -> bool {
    match wire.as_bytes().get(rel_start..) {
        Some(rel) if !rel.is_empty() => patterns.excluded(rel, is_dir),
        _ => false,
    }
}

/// Reads the extended attributes of an entry, by its name in its
/// directory or by its path.
fn read_xattrs(at: At<'_>, local: &Path) -> XattrRead {
    match at {
        At::Name(dir, name) => crate::io::xattrs::read_at(dir, name, local),
        At::Path => crate::io::xattrs::read_path(local),
    }
}

/// `lstat` of an entry, by its name in its directory or by its path.
fn lstat(at: At<'_>, path: &Path) -> io::Result<FileStat> {
    let st = match at {
        At::Name(dir, name) => {
            nix::sys::stat::fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        }
        At::Path => nix::sys::stat::lstat(path),
    };
    st.map_err(io::Error::from)
}

/// `stat` of a path: symlinks followed.
fn stat(path: &Path) -> io::Result<FileStat> {
    nix::sys::stat::stat(path).map_err(io::Error::from)
}

/// A symlink's target, by its name in its directory or by its path.
fn readlink(at: At<'_>, path: &Path) -> io::Result<OsString> {
    let target = match at {
        At::Name(dir, name) => nix::fcntl::readlinkat(Some(dir), name),
        At::Path => nix::fcntl::readlink(path),
    };
    target.map_err(io::Error::from)
}

fn error_item(path: PathBuf, error: io::Error) -> WalkItem {
    WalkItem::Error { path, error }
}

/// An entry already seen (listed, or `lstat`ed) that is now missing has
/// vanished; any other error is one.
fn gone_or_error(path: PathBuf, error: io::Error) -> WalkItem {
    if error.kind() == io::ErrorKind::NotFound {
        WalkItem::Vanished { path }
    } else {
        error_item(path, error)
    }
}

/// A path the wire cannot carry.
fn invalid(path: PathBuf, e: crate::proto::PathError) -> WalkItem {
    error_item(
        path,
        io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
    )
}

/// True when `path` names something on the local disk (`lstat`: a dangling
/// symlink exists too). Decides whether a first word that is not a command
/// is a path to back up.
pub fn exists(path: &std::ffi::OsStr) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// The path on the server of local `path` (made [`absolute`] first), or
/// why it has none.
pub fn wire_path(path: &Path) -> Result<WirePath, String> {
    let abs = absolute(path).map_err(|e| e.to_string())?;
    WirePath::from_local(abs.as_os_str().as_bytes()).map_err(|e| e.to_string())
}

/// Makes `path` absolute against the current directory and resolves `.` and
/// `..` lexically (`/a/b/../c` is `/a/c`, `/..` is `/`), without looking at
/// the file system, so symlinks stay what they are. A trailing `/` is dropped.
/// An empty path is an error.
pub fn absolute(path: &Path) -> io::Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
    }
    let joined;
    let path = if path.is_absolute() {
        path
    } else {
        joined = std::env::current_dir()?.join(path);
        &joined
    };
    let mut out = PathBuf::from("/");
    for comp in path.components() {
        match comp {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// Converts seconds since the epoch to local calendar time with
/// `localtime_r` (honouring `TZ`); falls back to UTC if that fails.
pub fn local_time(secs: i64) -> LocalTime {
    // time_t is i64 on the 64-bit Linux targets rsb is built for.
    let t: libc::time_t = secs;
    // SAFETY: an all-zero `tm` is a valid value (integers and a null
    // `tm_zone` pointer), and localtime_r only writes into it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals for the whole call;
    // localtime_r is the reentrant variant and keeps neither.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        // EOVERFLOW: the year does not fit in an int.
        return utc_time(secs);
    }
    LocalTime {
        year: i64::from(tm.tm_year) + 1900,
        month: u32::try_from(tm.tm_mon + 1).unwrap_or(1),
        day: u32::try_from(tm.tm_mday).unwrap_or(1),
        hour: u32::try_from(tm.tm_hour).unwrap_or(0),
        min: u32::try_from(tm.tm_min).unwrap_or(0),
    }
}

/// UTC calendar time from epoch seconds (H. Hinnant's `civil_from_days`).
fn utc_time(secs: i64) -> LocalTime {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // All of these are small and non-negative by construction.
    let small = |v: i64| u32::try_from(v).unwrap_or(0);
    LocalTime {
        year,
        month: small(month),
        day: small(day),
        hour: small(of_day / 3600),
        min: small(of_day / 60 % 60),
    }
}

/// The wire metadata of an `lstat` result: mode bits `& 0o7777`, the
/// mtime with nanoseconds, the numeric owner and group.
pub fn meta_from(md: &FileStat) -> Meta {
    let nanos = u32::try_from(md.st_mtime_nsec).unwrap_or(0);
    Meta {
        mode: md.st_mode & 0o7777,
        mtime: Time {
            secs: md.st_mtime,
            nanos: if nanos < 1_000_000_000 { nanos } else { 0 },
        },
        uid: md.st_uid,
        gid: md.st_gid,
    }
}

#[cfg(test)]
mod tests;
