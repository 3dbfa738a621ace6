//! The namespace's table of owner names on disk ([`NAMES_FILE`], its
//! format [`crate::store::accounts`]): read once by a restore, merged and
//! rewritten by a batch's commit when the client named an id it lacks or
//! renamed one. Written under a temporary name and renamed over the old
//! table before the batch is reported durable, so a crash leaves the old
//! table or the new one, whole.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::fcntl::{self, OFlag};
use nix::sys::stat::Mode;
use nix::unistd;

use super::beneath::os;
use super::namespace::Namespace;
use super::stage::Stager;
use super::tmp;
use crate::io::error::FsError;
use crate::proto::owners::Book;
use crate::proto::WirePath;
use crate::store::accounts::{decode, encode, MAX_NAMES_FILE, NAMES_FILE};

impl Namespace {
    /// The owner names this namespace keeps (none when it has no table,
    /// or one that cannot be read: a restore then maps owners by number).
    pub fn owner_names(&self) -> Book {
        let root = self.tree.root_fd();
        let Ok(fd) = fcntl::openat(
            Some(root),
            os(NAMES_FILE),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return Book::new();
        };
        // SAFETY: fd was just returned by openat and is owned by nobody else.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut text = Vec::new();
        if let Err(e) = file.take(MAX_NAMES_FILE as u64).read_to_end(&mut text) {
            log::warn!(
                "{}: cannot read the owner names: {e}",
                self.tree.show_in(&WirePath::root(), NAMES_FILE)
            );
            return Book::new();
        }
        decode(&text)
    }
}

impl Stager {
    /// Merges the names the client sent into the namespace's table and
    /// rewrites it when that added or changed one (`fsync`: the file is
    /// synced here, and the root is to be synced with the batch's
    /// directories). True when it was rewritten.
    pub(super) fn save_names(&mut self, fsync: bool) -> Result<bool, FsError> {
        let table = self
            .saved_names
            .get_or_insert_with(|| Box::new(self.ns.owner_names()));
        if !table.absorb(&self.names) {
            return Ok(false);
        }
        // Something to add: to the table as it is on disk now, which
        // another connection of this namespace may have rewritten since
        // it was read, so that its names are kept too.
        let mut fresh = self.ns.owner_names();
        fresh.absorb(&self.names);
        let text = encode(&fresh);
        self.saved_names = Some(Box::new(fresh));
        let root = self.ns.tree.root_fd();
        let shown = || self.ns.tree.show_in(&WirePath::root(), NAMES_FILE);
        let fail = |op, e| FsError::errno(op, shown(), e);
        let tmp = tmp::fresh_tmp();
        let fd = fcntl::openat(
            Some(root),
            os(&tmp),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| fail("create", e))?;
        // SAFETY: fd was just returned by openat and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let written = (|| {
            let mut at = 0;
            while at < text.len() {
                match unistd::write(&fd, &text[at..]) {
                    Ok(0) => return Err(("write", nix::errno::Errno::EIO)),
                    Ok(n) => at += n,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(("write", e)),
                }
            }
            if fsync {
                unistd::fsync(fd.as_raw_fd()).map_err(|e| ("fsync", e))?;
            }
            fcntl::renameat(Some(root), os(&tmp), Some(root), os(NAMES_FILE))
                .map_err(|e| ("rename", e))
        })();
        if let Err((op, e)) = written {
            let _ = unistd::unlinkat(Some(root), os(&tmp), unistd::UnlinkatFlags::NoRemoveDir);
            // The names the table lacks stay heard: the next commit tries
            // again.
            self.saved_names = None;
            return Err(fail(op, e));
        }
        Ok(true)
    }
}
