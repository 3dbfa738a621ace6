//! The only door to a tree whose paths come from a peer, private to the
//! store (everything else reaches a tree through [`super::Namespace`]). A
//! [`Beneath`] holds an open directory; every path it is given is a
//! validated [`WirePath`] and is resolved *beneath* that directory without
//! following any symlink: `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)` where the kernel has it, an `O_NOFOLLOW` walk one
//! component at a time from the directory fd otherwise. Final components
//! are then operated on with `*at` calls relative to the resolved parent,
//! again without following links. The server's store and the client's
//! restore both go through here, so neither a hostile client nor a hostile
//! server can make the other side touch anything outside its tree.
//!
//! Knows nothing of staging or of what the names mean; hidden names are
//! left out of listings by the protocol's own rule
//! ([`crate::proto::path::is_tmp_name`]).

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::{self, Mode};
use nix::unistd::{self, UnlinkatFlags};

use crate::io::error::FsError;
use crate::proto::path::{escape, is_tmp_name};
use crate::proto::WirePath;

/// A directory that paths from the network are confined to.
pub struct Beneath {
    root: OwnedFd,
    /// Its local path, shared by every [`Shown`] made of a path beneath it.
    display: Arc<PathBuf>,
}

/// A path beneath a tree, for messages: kept as its two parts and put
/// together only when a message needs it, since most opens and stagings
/// never fail (joining and escaping for every file of a large restore
/// showed in its instruction count).
#[derive(Debug, Clone)]
pub struct Shown {
    root: Arc<PathBuf>,
    path: WirePath,
}

impl Shown {
    /// The path as a person would write it (see [`Beneath::show`]).
    pub fn text(&self) -> String {
        show(&self.root, &self.path)
    }
}

/// `path` beneath `root` as a person would write it.
fn show(root: &Path, path: &WirePath) -> String {
    if path.is_root() {
        return root.display().to_string();
    }
    format!(
        "{}/{}",
        root.display().to_string().trim_end_matches('/'),
        escape(path.as_bytes())
    )
}

/// Set once openat2 answered ENOSYS, so later calls go straight to the walk.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open call and is owned
    // by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A name from the wire as the `OsStr` the system calls take.
pub(super) fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_RDONLY)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOFOLLOW);

impl Beneath {
    /// Opens (creating it with mode 0700 if missing) a directory given by the
    /// local administrator or user. Symlinks in `path` itself are followed:
    /// it is trusted input, unlike everything resolved beneath it.
    pub fn open_root(path: &Path, create: bool) -> Result<Beneath, FsError> {
        let shown = path.display().to_string();
        if create {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|error| FsError::io("mkdir", shown.clone(), error))?;
        }
        let fd = fcntl::open(
            path,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| FsError::errno("open", shown.clone(), e))?;
        Ok(Beneath {
            root: own(fd),
            display: Arc::new(path.to_path_buf()),
        })
    }

    /// A second handle on the same tree (its own open file description),
    /// for a worker thread.
    pub fn try_clone(&self) -> Result<Beneath, FsError> {
        Ok(Beneath {
            root: self
                .dup_root()
                .map_err(|e| FsError::errno("open", self.display.display().to_string(), e))?,
            display: self.display.clone(),
        })
    }

    /// Opens (creating it if missing) the directory `name` directly inside
    /// this one, refusing a symlink there, and confines to it.
    pub fn child(&self, name: &[u8], mode: u32) -> Result<Beneath, FsError> {
        let path =
            WirePath::new(name.to_vec()).map_err(|e| FsError::invalid("open", escape(name), e))?;
        let fd = self.dir_create(&path, mode)?;
        Ok(Beneath {
            root: fd,
            display: Arc::new(self.display.join(os(name))),
        })
    }

    /// Opens the existing directory `name` directly inside this one (never
    /// a symlink) and confines to it.
    pub fn existing_child(&self, name: &[u8]) -> Result<Beneath, FsError> {
        let path =
            WirePath::new(name.to_vec()).map_err(|e| FsError::invalid("open", escape(name), e))?;
        let fd = self.dir(&path)?;
        Ok(Beneath {
            root: fd,
            display: Arc::new(self.display.join(os(name))),
        })
    }

    /// The raw fd of the confining directory (for `syncfs`).
    pub fn root_fd(&self) -> RawFd {
        self.root.as_raw_fd()
    }

    /// The confining directory, borrowed (for `fstatvfs`).
    pub fn root_dir(&self) -> std::os::fd::BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// `path` as a person would write it: the root's local path joined with it.
    pub fn show(&self, path: &WirePath) -> String {
        show(&self.display, path)
    }

    /// [`Self::show`] of `path`, put together only if it is ever shown.
    pub fn shown(&self, path: &WirePath) -> Shown {
        Shown {
            root: Arc::clone(&self.display),
            path: path.clone(),
        }
    }

    /// `name` inside directory `dir` (itself shown as `dir_shown`).
    pub fn show_in(&self, dir: &WirePath, name: &[u8]) -> String {
        match dir.join(name) {
            Ok(p) => self.show(&p),
            Err(_) => format!("{}/{}", self.show(dir), escape(name)),
        }
    }

    /// Opens the existing directory `path` beneath the root.
    pub fn dir(&self, path: &WirePath) -> Result<OwnedFd, FsError> {
        self.open_beneath(path, DIR_FLAGS)
            .map_err(|e| FsError::errno("open", self.show(path), e))
    }

    /// Opens the directory `path`, creating missing components with `mode`.
    /// An existing component that is not a directory (a file, or a symlink,
    /// which is never followed) is an error.
    pub fn dir_create(&self, path: &WirePath, mode: u32) -> Result<OwnedFd, FsError> {
        match self.open_beneath(path, DIR_FLAGS) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(FsError::errno("open", self.show(path), e)),
        }
        let mode = Mode::from_bits_truncate(mode & 0o7777);
        let mut cur = self
            .dup_root()
            .map_err(|e| FsError::errno("open", self.show(&WirePath::root()), e))?;
        let mut sofar = WirePath::root();
        for comp in path.components() {
            sofar = sofar
                .join(comp)
                .map_err(|e| FsError::invalid("open", self.show(path), e))?;
            cur = open_or_make_dir(cur.as_raw_fd(), comp, mode)
                .map_err(|(op, e)| FsError::errno(op, self.show(&sofar), e))?;
        }
        Ok(cur)
    }

    /// Opens the parent directory of `path` (which must not be the root) and
    /// returns it with the last component.
    pub fn parent<'p>(&self, path: &'p WirePath) -> Result<(OwnedFd, &'p [u8]), FsError> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(FsError::invalid(
                "open",
                self.show(path),
                "the root has no parent",
            ));
        };
        Ok((self.dir(&parent)?, name))
    }

    /// Opens an existing regular file beneath the root for reading.
    pub fn open_file(&self, path: &WirePath) -> Result<OwnedFd, FsError> {
        self.open_beneath(
            path,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK,
        )
        .map_err(|e| FsError::errno("open", self.show(path), e))
    }

    /// `lstat` of `path` beneath the root (the root itself for the empty path).
    pub fn lstat(&self, path: &WirePath) -> Result<stat::FileStat, FsError> {
        if path.is_root() {
            return stat::fstat(self.root.as_raw_fd())
                .map_err(|e| FsError::errno("stat", self.show(path), e));
        }
        let (dir, name) = self.parent(path)?;
        stat::fstatat(
            Some(dir.as_raw_fd()),
            os(name),
            fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| FsError::errno("stat", self.show(path), e))
    }

    /// The names in directory `path`, sorted bytewise, without `.`, `..`
    /// and temporary names.
    pub fn read_dir(&self, path: &WirePath) -> Result<Vec<Vec<u8>>, FsError> {
        let fd = self.dir(path)?;
        let mut names: Vec<Vec<u8>> = entries_at(fd.as_raw_fd())
            .map_err(|e| FsError::errno("readdir", self.show(path), e))?
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !is_tmp_name(n))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The names in directory `path`, sorted bytewise, without `.` and
    /// `..` but with temporary names.
    pub fn read_dir_all(&self, path: &WirePath) -> Result<Vec<Vec<u8>>, FsError> {
        let fd = self.dir(path)?;
        let mut names: Vec<Vec<u8>> = entries_at(fd.as_raw_fd())
            .map_err(|e| FsError::errno("readdir", self.show(path), e))?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        names.sort();
        Ok(names)
    }

    /// The target of the symlink at `path`.
    pub fn readlink(&self, path: &WirePath) -> Result<Vec<u8>, FsError> {
        let (dir, name) = self.parent(path)?;
        fcntl::readlinkat(Some(dir.as_raw_fd()), os(name))
            .map(|t| t.as_bytes().to_vec())
            .map_err(|e| FsError::errno("readlink", self.show(path), e))
    }

    /// The root opened again: its own open file description, never a
    /// `dup` (see [`reopen_dir`]).
    fn dup_root(&self) -> Result<OwnedFd, Errno> {
        reopen_dir(self.root.as_raw_fd())
    }

    fn open_beneath(&self, path: &WirePath, flags: OFlag) -> Result<OwnedFd, Errno> {
        if path.is_root() {
            return if flags.contains(OFlag::O_DIRECTORY) {
                self.dup_root()
            } else {
                Err(Errno::EISDIR)
            };
        }
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            let how = fcntl::OpenHow::new().flags(flags).resolve(
                fcntl::ResolveFlag::RESOLVE_BENEATH
                    | fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS
                    | fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
            match fcntl::openat2(self.root.as_raw_fd(), os(path.as_bytes()), how) {
                Ok(fd) => return Ok(own(fd)),
                Err(Errno::ENOSYS) | Err(Errno::EPERM) if !self.openat2_works() => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                }
                // RESOLVE_NO_SYMLINKS reports any symlink on the way as ELOOP.
                Err(e) => return Err(not_dir(e)),
            }
        }
        self.walk_open(path, flags)
    }

    /// Distinguishes "no openat2 here" (old kernel, seccomp) from a genuine
    /// EPERM on the path by opening the root itself.
    fn openat2_works(&self) -> bool {
        let how = fcntl::OpenHow::new()
            .flags(DIR_FLAGS)
            .resolve(fcntl::ResolveFlag::RESOLVE_BENEATH);
        match fcntl::openat2(self.root.as_raw_fd(), ".", how) {
            Ok(fd) => {
                drop(own(fd));
                true
            }
            Err(_) => false,
        }
    }

    /// The fallback: one `openat(O_NOFOLLOW)` per component, each relative to
    /// the directory fd of the one before, so no symlink and no `..` (already
    /// refused by [`WirePath`]) can lead out.
    fn walk_open(&self, path: &WirePath, flags: OFlag) -> Result<OwnedFd, Errno> {
        let comps: Vec<&[u8]> = path.components().collect();
        let mut cur = self.dup_root()?;
        for (i, comp) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            let f = if last {
                flags | OFlag::O_NOFOLLOW
            } else {
                DIR_FLAGS
            };
            cur = own(
                fcntl::openat(Some(cur.as_raw_fd()), os(comp), f, Mode::empty())
                    .map_err(not_dir)?,
            );
        }
        Ok(cur)
    }
}

/// Opens the directory `name` inside the directory `dir`, never following
/// a symlink: a link (or a file) there is `ENOTDIR`.
pub fn open_dir_at(dir: RawFd, name: &[u8]) -> Result<OwnedFd, Errno> {
    fcntl::openat(Some(dir), os(name), DIR_FLAGS, Mode::empty())
        .map(own)
        .map_err(not_dir)
}

/// Opens the directory `name` of `dir`, made with `mode` first when it is
/// not there (made meanwhile by someone else is fine). An entry there that
/// is not a directory (a symlink is never followed) is an error; the error
/// names the call that failed (`mkdir` or `open`).
pub fn open_or_make_dir(
    dir: RawFd,
    name: &[u8],
    mode: Mode,
) -> Result<OwnedFd, (&'static str, Errno)> {
    match open_dir_at(dir, name) {
        Err(Errno::ENOENT) => {
            match stat::mkdirat(Some(dir), os(name), mode) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(("mkdir", e)),
            }
            open_dir_at(dir, name).map_err(|e| ("open", e))
        }
        r => r.map_err(|e| ("open", e)),
    }
}

/// A name in a directory and its type, where the file system reports it.
pub type DirEntry = (Vec<u8>, Option<nix::dir::Type>);

/// The directory `dir` opened again (`openat(dir, ".")`): a descriptor
/// with its own open file description, so its read position is its own.
/// A `dup` would share one position with every other duplicate, and two
/// readers of one directory at once (the sweeper and a verify) would each
/// see only part of it, or nothing.
pub fn reopen_dir(dir: RawFd) -> Result<OwnedFd, Errno> {
    fcntl::openat(
        Some(dir),
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(own)
}

/// The names in the open directory `dir` (without `.` and `..`) with their
/// types where the file system reports them. Reads through a descriptor of
/// its own ([`reopen_dir`]), so `dir` stays open and usable and no other
/// reader of it moves this one's position.
pub fn entries_at(dir: RawFd) -> Result<Vec<DirEntry>, Errno> {
    let fd = reopen_dir(dir)?.into_raw_fd();
    // Dir::from_fd owns the descriptor from here on, closing it even on failure.
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push((n.to_vec(), e.file_type()));
        }
    }
    Ok(out)
}

/// Removes `name` in `dir` and, for a directory, everything below it,
/// never following a link; owner-only modes from an earlier backup do not
/// stop it. For an entry a newer version replaced, and for the temporary
/// trees of a stager that did not commit.
pub fn remove_tree(dir: RawFd, name: &[u8], depth: usize) -> Result<(), Errno> {
    if depth > 4096 {
        return Err(Errno::ELOOP);
    }
    match unistd::unlinkat(Some(dir), os(name), UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(e),
    }
    let sub = open_dir_at(dir, name)?;
    let _ = stat::fchmod(sub.as_raw_fd(), Mode::from_bits_truncate(0o700));
    for (n, _) in entries_at(sub.as_raw_fd())? {
        remove_tree(sub.as_raw_fd(), &n, depth + 1)?;
    }
    unistd::unlinkat(Some(dir), os(name), UnlinkatFlags::RemoveDir)
}

/// A symlink met where a directory was needed is reported as "Not a
/// directory" rather than the kernel's puzzling "Too many levels of symbolic
/// links".
fn not_dir(e: Errno) -> Errno {
    if e == Errno::ELOOP {
        Errno::ENOTDIR
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wp(s: &str) -> WirePath {
        WirePath::new(s.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn creates_and_opens_beneath() {
        let t = tempfile::tempdir().unwrap();
        let b = Beneath::open_root(&t.path().join("root"), true).unwrap();
        let ns = b.child(b"ns", 0o700).unwrap();
        ns.dir_create(&wp("a/b/c"), 0o755).unwrap();
        assert!(t.path().join("root/ns/a/b/c").is_dir());
        ns.dir(&wp("a/b")).unwrap();
        assert_eq!(
            ns.dir(&wp("zz")).unwrap_err().raw_os_error(),
            Some(libc_enoent())
        );
    }

    fn libc_enoent() -> i32 {
        Errno::ENOENT as i32
    }

    #[test]
    fn never_follows_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let b = Beneath::open_root(&t.path().join("root"), true).unwrap();
        std::os::unix::fs::symlink(&outside, t.path().join("root/link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("root/file")).unwrap();
        assert!(b.dir(&wp("link")).is_err());
        assert!(b.dir_create(&wp("link/x"), 0o755).is_err());
        assert!(b.open_file(&wp("file")).is_err());
        assert!(b.open_file(&wp("link/x")).is_err());
        assert!(b.child(b"link", 0o700).is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        // The walk fallback refuses them too.
        assert!(b.walk_open(&wp("link"), DIR_FLAGS).is_err());
        assert!(b.walk_open(&wp("link/x"), DIR_FLAGS).is_err());
        assert!(b.walk_open(&wp("file"), OFlag::O_RDONLY).is_err());
    }

    #[test]
    fn two_readers_of_one_directory_at_once_each_see_every_entry() {
        let t = tempfile::tempdir().unwrap();
        for i in 0..2000 {
            std::fs::write(t.path().join(format!("a-long-enough-name-{i:05}")), b"").unwrap();
        }
        let b = Beneath::open_root(t.path(), false).unwrap();
        let clone = b.try_clone().unwrap();
        for other in [&b, &clone] {
            // One reader (the sweeper) is half-way through the root...
            let first = other.dir(&WirePath::root()).unwrap();
            let mut d = nix::dir::Dir::from_fd(first.into_raw_fd()).unwrap();
            let mut it = d.iter();
            for _ in 0..100 {
                it.next().unwrap().unwrap();
            }
            // ...when another (a verify) reads it, through the same handle
            // or a clone of it, and through a descriptor already open.
            let fd = b.dir(&WirePath::root()).unwrap();
            assert_eq!(entries_at(fd.as_raw_fd()).unwrap().len(), 2000);
            assert_eq!(entries_at(fd.as_raw_fd()).unwrap().len(), 2000);
            assert_eq!(b.read_dir(&WirePath::root()).unwrap().len(), 2000);
            // The first reader goes on from where it was, and sees the rest.
            assert_eq!(it.count(), 2002 - 100);
        }
        // Interleaved entry by entry through one descriptor's readers.
        let fd = b.dir(&WirePath::root()).unwrap();
        let mut r1 =
            nix::dir::Dir::from_fd(reopen_dir(fd.as_raw_fd()).unwrap().into_raw_fd()).unwrap();
        let mut r2 =
            nix::dir::Dir::from_fd(reopen_dir(fd.as_raw_fd()).unwrap().into_raw_fd()).unwrap();
        let (mut i1, mut i2) = (r1.iter(), r2.iter());
        let mut n = (0, 0);
        loop {
            let a = i1.next().is_some();
            let c = i2.next().is_some();
            n.0 += usize::from(a);
            n.1 += usize::from(c);
            if !a && !c {
                break;
            }
        }
        assert_eq!(n, (2002, 2002));
    }

    #[test]
    fn shows_paths_for_messages() {
        let t = tempfile::tempdir().unwrap();
        let b = Beneath::open_root(t.path(), false).unwrap();
        assert_eq!(
            b.show(&wp("a/b\nc")),
            format!("{}/a/b\\x0ac", t.path().display())
        );
    }
}
