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
//! Memory is bounded by the depth of the tree times the width of one
//! directory, never by the size of the whole tree.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::libc;
use nix::sys::stat::{FileStat, Mode};

use crate::client::ui::LocalTime;
use crate::proto::xattrs::Xattrs;
use crate::proto::{EntryKind, Meta, Time, WirePath};

/// Why an entry of a file type Linux does not have is not backed up.
const NOT_SUPPORTED: &str = "unknown file type";

/// Directories a walk keeps open at once, the outermost; deeper ones are
/// read and their entries looked at by path, so that a deep tree never
/// takes the descriptors the files being sent need.
const MAX_OPEN_DIRS: usize = 32;

/// Why the server's store is not backed up.
pub const STORE_EXCLUDED: &str = "the server's store: not backed up into itself";

/// What a walk leaves out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkOptions {
    /// `--one-file-system`: do not descend into directories on another
    /// device than the walk's root.
    pub one_file_system: bool,
    /// `(st_dev, st_ino)` of a directory never entered nor yielded (the
    /// store of a server on this machine).
    pub exclude: Option<(u64, u64)>,
}

pub use crate::client::plan::LocalEntry;

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
    /// entries was yielded as an entry (none failed, was of an unknown
    /// type, or was the store's own), so what the server holds there and
    /// the walk did not yield is gone. A directory that could not be
    /// opened gives no `Closed` at all.
    Closed {
        /// The directory's path on the server.
        wire: WirePath,
        /// It was read whole.
        whole: bool,
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
}

/// One directory being walked: its remaining children, sorted.
#[derive(Debug)]
struct Frame {
    local: PathBuf,
    wire: WirePath,
    names: std::vec::IntoIter<OsString>,
    /// The directory, open, for its children's calls; `None` past
    /// [`MAX_OPEN_DIRS`] or when no descriptor was left (`EMFILE`): they
    /// go by path.
    dir: Option<Dir>,
    /// Its listing was complete and no child failed so far.
    whole: bool,
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
    Walk {
        start: Some(root.to_path_buf()),
        queue: VecDeque::new(),
        open: None,
        stack: Vec::new(),
        opts,
        root_dev: None,
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
            let Some(name) = frame.names.next() else {
                let frame = self.stack.pop()?;
                return Some(WalkItem::Closed {
                    wire: frame.wire,
                    whole: frame.whole,
                });
            };
            let local = frame.local.join(&name);
            let at = match &frame.dir {
                Some(dir) => At::Name(dir.as_raw_fd(), &name),
                None => At::Path,
            };
            let item = match frame.wire.join(name.as_bytes()) {
                Ok(wire) => self.visit(local, wire, at),
                Err(e) => invalid(local, e),
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
            Err(error) => return self.queue.push_back(error_item(root, error)),
        };
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
        let item = self.entry(root, wire, &md, At::Path);
        self.queue.push_back(item);
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
        self.stack.push(Frame {
            local,
            wire,
            names: names.into_iter(),
            dir,
            whole,
        });
    }

    /// `lstat`s one path below the root.
    fn visit(&mut self, local: PathBuf, wire: WirePath, at: At<'_>) -> WalkItem {
        match lstat(at, &local) {
            Ok(md) => self.entry(local, wire, &md, at),
            Err(error) => gone_or_error(local, error),
        }
    }

    /// Classifies a path by its `lstat` result; directories are remembered to
    /// be opened next, which makes the walk pre-order.
    fn entry(&mut self, local: PathBuf, wire: WirePath, md: &FileStat, at: At<'_>) -> WalkItem {
        let Some(kind) = crate::io::kind_of_mode(md.st_mode) else {
            return WalkItem::Skipped {
                path: local,
                reason: NOT_SUPPORTED.to_string(),
            };
        };
        let (size, target) = match kind {
            EntryKind::File => (u64::try_from(md.st_size).unwrap_or(0), Vec::new()),
            EntryKind::Dir => {
                if self.opts.exclude == Some((md.st_dev, md.st_ino)) {
                    return WalkItem::Excluded { path: local };
                }
                // Another file system's root is an entry, its contents are
                // not (`--one-file-system`).
                if !self.opts.one_file_system || self.root_dev.is_none_or(|d| d == md.st_dev) {
                    self.open = Some((local.clone(), wire.clone()));
                }
                (0, Vec::new())
            }
            EntryKind::Symlink => match readlink(at, &local) {
                Ok(target) => (0, target.into_vec()),
                Err(error) => return gone_or_error(local, error),
            },
            _ => (0, Vec::new()),
        };
        let xattrs = if crate::proto::codec::has_xattrs(kind) {
            self.xattrs(at, &local)
        } else {
            None
        };
        WalkItem::Entry(LocalEntry {
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
        })
    }
}

impl Walk {
    /// The extended attributes of the file or directory at `local`; a set
    /// that cannot be read or sent is reported right after the entry
    /// (queued), and the entry goes without.
    fn xattrs(&mut self, at: At<'_>, local: &Path) -> Option<Box<Xattrs>> {
        let read = match at {
            At::Name(dir, name) => crate::io::xattrs::read_at(dir, name, local),
            At::Path => crate::io::xattrs::read_path(local),
        };
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
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    use std::time::{Duration, SystemTime};

    /// Walks and renders each item as a short string relative to `base`.
    fn render(root: &Path, base: &Path) -> Vec<String> {
        walk(root)
            .filter(|item| !matches!(item, WalkItem::Closed { .. }))
            .map(|item| match item {
                WalkItem::Entry(e) => {
                    let rel = e.local.strip_prefix(base).unwrap_or(&e.local);
                    let kind = match e.kind {
                        EntryKind::File => "file",
                        EntryKind::Dir => "dir",
                        EntryKind::Symlink => "link",
                        EntryKind::Fifo => "fifo",
                        EntryKind::Socket => "socket",
                        EntryKind::CharDev => "chr",
                        EntryKind::BlockDev => "blk",
                        EntryKind::HardLink => "hardlink",
                    };
                    format!("{kind} {}", rel.display())
                }
                WalkItem::Excluded { path } => {
                    format!(
                        "excluded {}",
                        path.strip_prefix(base).unwrap_or(&path).display()
                    )
                }
                WalkItem::Skipped { path, .. } => {
                    format!(
                        "skip {}",
                        path.strip_prefix(base).unwrap_or(&path).display()
                    )
                }
                WalkItem::Vanished { path } => {
                    format!(
                        "vanished {}",
                        path.strip_prefix(base).unwrap_or(&path).display()
                    )
                }
                WalkItem::Error { path, error } => {
                    format!(
                        "error {} {:?}",
                        path.strip_prefix(base).unwrap_or(&path).display(),
                        error.kind()
                    )
                }
                WalkItem::Closed { wire, whole } => format!("closed {wire} {whole}"),
            })
            .collect()
    }

    /// Each directory opened is closed after everything beneath it,
    /// whole unless an entry of it was left out; the walk's ancestors and
    /// a file given as the root are never closed.
    #[test]
    fn directories_are_closed_after_their_contents_and_say_if_read_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("r");
        fs::create_dir_all(root.join("a/inner")).unwrap();
        fs::create_dir_all(root.join("b/store")).unwrap();
        fs::write(root.join("a/inner/f"), b"x").unwrap();
        fs::write(root.join("b/g"), b"y").unwrap();
        let store = fs::metadata(root.join("b/store")).unwrap();
        let opts = WalkOptions {
            exclude: Some((store.dev(), store.ino())),
            ..WalkOptions::default()
        };
        let wire = |p: &Path| WirePath::from_local(p.as_os_str().as_bytes()).unwrap();
        let items: Vec<String> = walk_with(&root, opts)
            .filter_map(|item| match item {
                WalkItem::Entry(e) if e.local.starts_with(&root) => Some(format!(
                    "entry {}",
                    e.local.strip_prefix(&root).unwrap().display()
                )),
                WalkItem::Closed { wire: w, whole } => {
                    let rel = w.as_bytes().strip_prefix(wire(&root).as_bytes()).unwrap();
                    Some(format!(
                        "closed {}{} {whole}",
                        "r",
                        String::from_utf8_lossy(rel)
                    ))
                }
                WalkItem::Excluded { .. } => Some("excluded".into()),
                _ => None,
            })
            .collect();
        assert_eq!(
            items,
            [
                "entry ",
                "entry a",
                "entry a/inner",
                "entry a/inner/f",
                "closed r/a/inner true",
                "closed r/a true",
                "entry b",
                "entry b/g",
                "excluded",
                "closed r/b false",
                "closed r true",
            ]
        );
        let file: Vec<String> = walk(&root.join("b/g"))
            .filter(|i| matches!(i, WalkItem::Closed { .. }))
            .map(|_| "closed".to_string())
            .collect();
        assert!(file.is_empty(), "a file closes nothing: {file:?}");
    }

    fn entries(root: &Path) -> Vec<LocalEntry> {
        walk(root)
            .filter_map(|item| match item {
                WalkItem::Entry(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("root");
        fs::create_dir_all(r.join("b/y")).unwrap();
        fs::write(r.join("a"), b"hello").unwrap();
        fs::write(r.join("b/z"), b"").unwrap();
        fs::write(r.join("B"), b"upper").unwrap();
        symlink("b", r.join("c")).unwrap();
        nix::unistd::mkfifo(&r.join("f"), Mode::from_bits_truncate(0o644)).unwrap();
        dir
    }

    #[test]
    fn order_is_sorted_pre_order() {
        let dir = tree();
        let base = dir.path();
        let items = render(&base.join("root"), base);
        let ancestors = base.components().count() - 1;
        assert!(
            items[..ancestors].iter().all(|s| s.starts_with("dir ")),
            "{items:?}"
        );
        assert_eq!(
            items[ancestors..],
            [
                "dir root",
                "file root/B",
                "file root/a",
                "dir root/b",
                "dir root/b/y",
                "file root/b/z",
                "link root/c",
                "fifo root/f"
            ]
        );
    }

    #[test]
    fn ancestors_come_first_with_wire_paths() {
        let dir = tree();
        let root = dir.path().join("root");
        let all = entries(&root);
        let mut expect = PathBuf::from("/");
        let comps: Vec<_> = root.components().skip(1).collect();
        for (entry, comp) in all.iter().zip(&comps) {
            expect.push(comp);
            assert_eq!(entry.local, expect);
            assert_eq!(entry.kind, EntryKind::Dir);
            assert_eq!(entry.wire.as_bytes(), &expect.as_os_str().as_bytes()[1..]);
        }
        let root_entry = &all[comps.len() - 1];
        assert_eq!(root_entry.local, root);
        let a = all.iter().find(|e| e.local == root.join("a")).unwrap();
        assert_eq!(a.size, 5);
        assert_eq!(
            a.wire.as_bytes(),
            root.join("a")
                .as_os_str()
                .as_bytes()
                .strip_prefix(b"/")
                .unwrap()
        );
    }

    #[test]
    fn symlinks_are_not_followed() {
        let dir = tree();
        let root = dir.path().join("root");
        let all = entries(&root);
        let c = all.iter().find(|e| e.local == root.join("c")).unwrap();
        assert_eq!(
            (c.kind, c.target.as_slice(), c.size),
            (EntryKind::Symlink, &b"b"[..], 0)
        );
        let below_c =
            |e: &LocalEntry| e.local.starts_with(root.join("c")) && e.local != root.join("c");
        assert!(!all.iter().any(below_c));

        // A symlink as the root is one entry, after its ancestors.
        let items = render(&root.join("c"), dir.path());
        assert_eq!(items.last().map(String::as_str), Some("link root/c"));
        assert_eq!(items.iter().filter(|s| s.contains("root/b")).count(), 0);
    }

    #[test]
    fn fifos_sockets_and_devices_are_entries() {
        let dir = tree();
        let r = dir.path().join("root");
        let _sock = std::os::unix::net::UnixListener::bind(r.join("s")).unwrap();
        let fifo = r.join("f");
        match walk(&fifo).last() {
            Some(WalkItem::Entry(e)) => {
                assert_eq!(
                    (e.local, e.kind, e.size, e.rdev),
                    (fifo, EntryKind::Fifo, 0, 0)
                );
                assert_eq!(e.meta.mode & 0o777, 0o644 & !umask());
            }
            other => panic!("{other:?}"),
        }
        let s = entries(&r).into_iter().find(|e| e.local == r.join("s"));
        assert_eq!(s.map(|e| e.kind), Some(EntryKind::Socket));
        // /dev/null is a character device 1,3 on every Linux.
        match walk(Path::new("/dev/null")).last() {
            Some(WalkItem::Entry(e)) => {
                assert_eq!(
                    (e.kind, e.rdev),
                    (EntryKind::CharDev, crate::proto::make_dev(1, 3))
                )
            }
            other => panic!("{other:?}"),
        }
    }

    fn umask() -> u32 {
        let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
        nix::sys::stat::umask(old);
        old.bits()
    }

    #[test]
    fn the_store_is_left_out_with_its_contents() {
        let dir = tree();
        let r = dir.path().join("root");
        let md = fs::metadata(r.join("b")).unwrap();
        let opts = WalkOptions {
            exclude: Some((md.dev(), md.ino())),
            ..WalkOptions::default()
        };
        let items: Vec<String> = walk_with(&r, opts)
            .map(|i| match i {
                WalkItem::Entry(e) => e.local.display().to_string(),
                WalkItem::Excluded { path } => format!("excluded {}", path.display()),
                other => format!("{other:?}"),
            })
            .filter(|s| s.contains("root/"))
            .collect();
        assert!(items.contains(&format!("excluded {}", r.join("b").display())));
        assert!(!items.iter().any(|s| s.contains("root/b/")), "{items:?}");
        assert!(items.contains(&r.join("a").display().to_string()));
    }

    #[test]
    fn missing_root_is_one_error() {
        let dir = tempfile::tempdir().unwrap();
        for missing in [dir.path().join("nope"), dir.path().join("no/such/dir")] {
            let items: Vec<_> = walk(&missing).collect();
            assert_eq!(items.len(), 1);
            match &items[0] {
                WalkItem::Error { path, error } => {
                    assert_eq!(path, &missing);
                    assert_eq!(error.kind(), io::ErrorKind::NotFound);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_entry_removed_after_its_directory_was_listed_has_vanished() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("r");
        fs::create_dir_all(r.join("b")).unwrap();
        fs::write(r.join("a"), b"").unwrap();
        fs::write(r.join("c"), b"").unwrap();
        let mut w = walk(&r);
        // Up to `a`: r is listed by then.
        let mut seen = Vec::new();
        for item in w.by_ref() {
            let done = matches!(&item, WalkItem::Entry(e) if e.local == r.join("a"));
            seen.push(item);
            if done {
                break;
            }
        }
        fs::remove_dir(r.join("b")).unwrap();
        fs::remove_file(r.join("c")).unwrap();
        let rest: Vec<String> = w
            .filter(|item| !matches!(item, WalkItem::Closed { .. }))
            .map(|item| match item {
                WalkItem::Vanished { path } => format!("vanished {}", path.display()),
                other => format!("{other:?}"),
            })
            .collect();
        let show = |n: &str| format!("vanished {}", r.join(n).display());
        assert_eq!(rest, [show("b"), show("c")]);
        // A missing root is still an error: the user named it.
        assert!(matches!(
            walk(&r.join("b")).next(),
            Some(WalkItem::Error { .. })
        ));
    }

    #[test]
    fn nanosecond_mtimes_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t");
        fs::write(&file, b"x").unwrap();
        let when = SystemTime::UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(when)
            .unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o4751)).unwrap();
        let e = entries(&file).pop().unwrap();
        assert_eq!(e.local, file);
        assert_eq!(
            e.meta.mtime,
            Time {
                secs: 1_600_000_000,
                nanos: 123_456_789
            }
        );
        assert_eq!(e.meta.mode, 0o4751);
    }

    #[test]
    fn unreadable_dir_is_an_error_and_the_walk_goes_on() {
        if nix::unistd::geteuid().is_root() {
            return; // root reads every directory
        }
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("r");
        fs::create_dir_all(r.join("locked")).unwrap();
        fs::write(r.join("locked/x"), b"").unwrap();
        fs::write(r.join("z"), b"").unwrap();
        fs::set_permissions(r.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        let items = render(&r, dir.path());
        fs::set_permissions(r.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
        let n = items.len();
        assert_eq!(
            items[n - 3..],
            [
                "dir r/locked",
                "error r/locked PermissionDenied",
                "file r/z"
            ]
        );
    }

    #[test]
    fn too_long_wire_path_is_invalid_input() {
        let dir = tempfile::tempdir().unwrap();
        let name = "n".repeat(200);
        // Built with mkdirat below an open directory, since the whole path
        // is longer than PATH_MAX.
        let mut fd = fs::File::open(dir.path()).unwrap();
        for _ in 0..21 {
            nix::sys::stat::mkdirat(
                Some(std::os::fd::AsRawFd::as_raw_fd(&fd)),
                name.as_str(),
                Mode::S_IRWXU,
            )
            .unwrap();
            let next = nix::fcntl::openat(
                Some(std::os::fd::AsRawFd::as_raw_fd(&fd)),
                name.as_str(),
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
                Mode::empty(),
            )
            .unwrap();
            // SAFETY: openat just returned this descriptor and nothing else owns it.
            fd = unsafe { std::os::fd::FromRawFd::from_raw_fd(next) };
        }
        let items: Vec<_> = walk(&dir.path().join(&name)).collect();
        let errors: Vec<_> = items
            .iter()
            .filter_map(|i| match i {
                WalkItem::Error { error, .. } => Some(error),
                _ => None,
            })
            .collect();
        assert_eq!(errors.len(), 1, "{items:?}");
        assert_eq!(errors[0].kind(), io::ErrorKind::InvalidInput);
        assert_eq!(errors[0].to_string(), "path is too long");
    }

    #[test]
    fn absolute_is_lexical() {
        let abs = |s: &str| absolute(Path::new(s)).unwrap();
        assert_eq!(abs("/a/b/../c"), Path::new("/a/c"));
        assert_eq!(abs("/a/./b//c/"), Path::new("/a/b/c"));
        assert_eq!(abs("/.."), Path::new("/"));
        assert_eq!(abs("/"), Path::new("/"));
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(abs("x/y"), cwd.join("x/y"));
        assert_eq!(abs("."), cwd);
        assert_eq!(abs("x/.."), cwd);
        assert!(absolute(Path::new("")).is_err());
    }

    #[test]
    fn slash_root_yields_no_ancestors() {
        let first = walk(Path::new("/")).next();
        match first {
            Some(WalkItem::Entry(e)) => {
                assert_eq!(e.local, Path::new("/"));
                assert!(e.wire.is_root());
                assert_eq!(e.kind, EntryKind::Dir);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn utc_fallback_and_local_time() {
        let t = utc_time(0);
        assert_eq!((t.year, t.month, t.day, t.hour, t.min), (1970, 1, 1, 0, 0));
        let t = utc_time(1_795_239_180); // 2026-11-21 05:33:00 UTC
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.min),
            (2026, 11, 21, 5, 33)
        );
        let t = utc_time(-1);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.min),
            (1969, 12, 31, 23, 59)
        );
        let t = utc_time(951_782_400); // 2000-02-29
        assert_eq!((t.year, t.month, t.day), (2000, 2, 29));
        let local = local_time(1_795_239_180);
        assert!((1..=12).contains(&local.month) && (1..=31).contains(&local.day));
        assert!(local.hour < 24 && local.min < 60);
    }
}
