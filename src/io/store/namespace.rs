//! The two handles everything outside the store holds: a [`Store`] (the
//! server's backup root, which opens a client's namespace by name) and a
//! [`Namespace`] (one confined tree: a client's namespace on the server, a
//! restore's destination on the client). What a namespace can do is
//! spread over the files of its concern, each adding methods: reading
//! stored files (`stored.rs`), the manifest check and listings
//! (`scan.rs`), verify (`verify.rs`), sweeping leftovers (`sweep.rs`);
//! writing goes through a [`super::Stager`] built on one.
//!
//! Must not hand out the confining directory itself: every path goes
//! through [`Beneath`], so nothing outside the store can resolve a peer's
//! path any other way.

use std::path::Path;

use nix::sys::stat::FileStat;

use super::beneath::Beneath;
use crate::io::error::FsError;
use crate::proto::WirePath;

/// The backup root: one namespace per client name beneath it.
pub struct Store {
    root: Beneath,
}

impl Store {
    /// Opens (creating it with mode 0700 if missing) the backup root, a
    /// path the administrator gave (symlinks in it are followed).
    pub fn open(path: &Path) -> Result<Store, FsError> {
        Ok(Store {
            root: Beneath::open_root(path, true)?,
        })
    }

    /// `(st_dev, st_ino)` of the backup root, `(0, 0)` if it cannot be
    /// read.
    pub fn identity(&self) -> (u64, u64) {
        nix::sys::stat::fstat(self.root.root_fd()).map_or((0, 0), |st| (st.st_dev, st.st_ino))
    }

    /// Free and total bytes of the root's file system (for an
    /// unprivileged writer: `f_bavail`).
    pub fn space(&self) -> Option<(u64, u64)> {
        let st = nix::sys::statvfs::fstatvfs(self.root.root_dir()).ok()?;
        let unit = st.fragment_size() as u64;
        Some((
            (st.blocks_available() as u64).saturating_mul(unit),
            (st.blocks() as u64).saturating_mul(unit),
        ))
    }

    /// Opens the namespace of client `name`, creating it (owner-only) if
    /// missing; a symlink in its place is refused.
    pub fn namespace(&self, name: &str) -> Result<Namespace, FsError> {
        Ok(Namespace {
            tree: self.root.child(name.as_bytes(), 0o700)?,
        })
    }

    /// The names of the namespaces beneath the root (directories whose
    /// names are valid client names), sorted.
    pub fn namespaces(&self) -> Result<Vec<String>, FsError> {
        let shown = || self.root.show(&crate::proto::WirePath::root());
        let entries = super::beneath::entries_at(self.root.root_fd())
            .map_err(|e| FsError::errno("read", shown(), e))?;
        let mut names: Vec<String> = entries
            .into_iter()
            .filter_map(|(n, _)| String::from_utf8(n).ok())
            .filter(|n| crate::proto::is_valid_client_name(n))
            .filter(|n| self.existing_namespace(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Opens the namespace of client `name` if it exists (a read-only
    /// server creates nothing).
    pub fn existing_namespace(&self, name: &str) -> Result<Namespace, FsError> {
        Ok(Namespace {
            tree: self.root.existing_child(name.as_bytes())?,
        })
    }
}

/// One confined tree (see the module docs).
pub struct Namespace {
    pub(super) tree: Beneath,
}

impl Namespace {
    /// Confines to the existing directory `path`, given by the local user
    /// (a restore's destination; symlinks in `path` itself are followed).
    pub fn open_dir(path: &Path) -> Result<Namespace, FsError> {
        Ok(Namespace {
            tree: Beneath::open_root(path, false)?,
        })
    }

    /// A second handle on the same tree (its own descriptor), for a worker
    /// thread.
    pub fn try_clone(&self) -> Result<Namespace, FsError> {
        Ok(Namespace {
            tree: self.tree.try_clone()?,
        })
    }

    /// `path` as a person would write it, for messages and the log.
    pub fn show(&self, path: &WirePath) -> String {
        self.tree.show(path)
    }

    /// `lstat` of `path` (the tree itself for the root).
    pub fn lstat(&self, path: &WirePath) -> Result<FileStat, FsError> {
        self.tree.lstat(path)
    }

    /// The names in directory `path`, sorted bytewise, without hidden
    /// names.
    pub fn read_dir(&self, path: &WirePath) -> Result<Vec<Vec<u8>>, FsError> {
        self.tree.read_dir(path)
    }

    /// The names in directory `path`, sorted bytewise, hidden names
    /// included (history's among them).
    pub fn read_dir_all(&self, path: &WirePath) -> Result<Vec<Vec<u8>>, FsError> {
        self.tree.read_dir_all(path)
    }

    /// The target of the symlink at `path`.
    pub fn readlink(&self, path: &WirePath) -> Result<Vec<u8>, FsError> {
        self.tree.readlink(path)
    }

    /// Puts right the history batches a dead process left pending in this
    /// namespace (once per process: later calls do nothing); returns how
    /// many it published. The server runs it when a namespace is first
    /// opened, and every commit that keeps history runs it first.
    pub fn recover_history(&self) -> u64 {
        super::history::recover_once(&self.tree)
    }
}
