//! The stored version of a changed file as the basis of a delta: finding
//! the files of a manifest that can go as deltas, their signatures (from
//! the signature cache, else read once and cached: see
//! [`super::sigcache`]), and opening a basis again when its delta arrives.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use log::debug;
use nix::sys::stat::{self, FileStat};

use super::namespace::Namespace;
use super::sigcache::signature_of;
use super::stage::{Incoming, Stager};
use crate::io::delta_io::{copy_ranges, fs_block, sign_file_until};
use crate::io::error::FsError;
use crate::io::kind_of;
use crate::proto::{self, EntryKind, ManifestEntry, Meta, WirePath};
use nix::errno::Errno;

/// A stored version smaller than this is no basis: its few blocks save
/// too little to be worth a signature.
pub const BASIS_MIN: u64 = 64 * 1024;

impl Namespace {
    /// Whether the manifest entry `e` (needed whole) can go as a delta:
    /// a file of at least [`crate::delta::DELTA_MIN`] bytes whose stored
    /// version is a regular file of at least [`BASIS_MIN`].
    pub fn is_delta_candidate(&self, e: &ManifestEntry) -> bool {
        e.kind == EntryKind::File
            && e.size >= crate::delta::DELTA_MIN
            && self.tree.lstat(&e.path).is_ok_and(|st| {
                kind_of(&st) == Some(EntryKind::File) && st.st_size.max(0) as u64 >= BASIS_MIN
            })
    }

    /// The encoded signatures of the stored versions of `files` (entry
    /// index, path), as many as fit [`proto::MAX_NEED_SIGNATURES`]; a file
    /// that cannot be read, or whose signature would not fit, is left out
    /// (it goes whole). Reads every basis not in the cache: a worker's job.
    pub fn signatures(&self, files: &[(u32, WirePath)]) -> Vec<(u32, Vec<u8>)> {
        let cache = match self.sig_cache(true) {
            Ok(c) => Some(c),
            Err(e) => {
                debug!("signature cache: {e}");
                None
            }
        };
        let mut room = proto::MAX_NEED_SIGNATURES;
        let mut out = Vec::new();
        for (index, path) in files {
            let Ok(fd) = self.tree.open_file(path) else {
                continue;
            };
            let Ok(st) = stat::fstat(fd.as_raw_fd()) else {
                continue;
            };
            if kind_of(&st) != Some(EntryKind::File) {
                continue;
            }
            match signature_of(cache.as_ref(), fd.as_fd(), &st) {
                Ok(sig) => {
                    let bytes = sig.encode();
                    if bytes.len() <= room && bytes.len() <= proto::MAX_SIGNATURE as usize {
                        room -= bytes.len();
                        out.push((*index, bytes));
                    }
                }
                Err(e) => debug!("{}: signature: {e}", self.show(path)),
            }
        }
        out
    }

    /// Opens the stored version of `path` that a delta of it was matched
    /// against: a regular file of `size` bytes, else an error saying it
    /// changed (the client then sends the file whole).
    pub fn open_basis(&self, path: &WirePath, size: u64) -> Result<(OwnedFd, FileStat), FsError> {
        let fd = self.tree.open_file(path)?;
        let st =
            stat::fstat(fd.as_raw_fd()).map_err(|e| FsError::errno("stat", self.show(path), e))?;
        if kind_of(&st) != Some(EntryKind::File) || st.st_size.max(0) as u64 != size {
            return Err(FsError::io(
                "delta",
                self.show(path),
                std::io::Error::other(BASIS_CHANGED),
            ));
        }
        Ok((fd, st))
    }
}

impl Namespace {
    /// The signature of the regular file at `path` (a restore's
    /// destination: the client's own copy of a file it is offered), when
    /// it is a regular file of at least [`BASIS_MIN`] bytes: its size and
    /// the encoded signature. Reads the whole file.
    ///
    /// `look_up` runs after every MiB read (a large file on a slow disk
    /// takes minutes to sign): its first `Err` stops the signing and is
    /// returned.
    pub fn basis_signature<E>(
        &self,
        path: &WirePath,
        look_up: impl FnMut() -> Result<(), E>,
    ) -> Result<Option<(u64, Vec<u8>)>, E> {
        let Ok(fd) = self.tree.open_file(path) else {
            return Ok(None);
        };
        let Ok(st) = stat::fstat(fd.as_raw_fd()) else {
            return Ok(None);
        };
        let len = st.st_size.max(0) as u64;
        if kind_of(&st) != Some(EntryKind::File) || len < BASIS_MIN {
            return Ok(None);
        }
        let block = crate::delta::block_size(len, fs_block(fd.as_fd()));
        let Ok(sig) = sign_file_until(fd.as_fd(), len, block, look_up)? else {
            return Ok(None);
        };
        Ok((sig.encoded_len() <= proto::MAX_SIGNATURE as usize).then(|| (len, sig.encode())))
    }
}

/// Why a delta was refused: its stored version is not the one signed.
pub const BASIS_CHANGED: &str = "the stored version changed since its signature was sent";

impl Stager {
    /// Stages a delta and fills in its runs from the file now at `path`
    /// (which must be `basis` bytes long), there and then: a restore's,
    /// whose destination holds the basis. The body then goes into the
    /// runs between ([`Incoming::layout`]).
    pub fn begin_delta_from(
        &mut self,
        id: u32,
        path: &WirePath,
        meta: Meta,
        size: u64,
        from: (u64, &[proto::CopyRange]),
    ) -> Result<(), FsError> {
        let (basis, _) = self.tree().open_basis(path, from.0)?;
        let shown = self.tree().show(path);
        let inc = self.begin_delta(id, path, meta, size)?;
        inc.layout = proto::delta_layout(size, from.1);
        let Some(out) = inc.file.as_ref() else {
            return Err(FsError::invalid("create", shown, "no staging file"));
        };
        let copied = nix::unistd::ftruncate(out, size as i64)
            .map_err(std::io::Error::from)
            .and_then(|()| copy_ranges(basis.as_fd(), out.as_fd(), from.1));
        if let Err(e) = copied {
            self.abort_file();
            return Err(FsError::io("delta", shown, e));
        }
        Ok(())
    }

    /// Stages a file that arrives as a delta: like [`Self::begin_file`],
    /// but never as a partial (its copies land before the literal bytes
    /// between them, so what is on disk is no prefix of the file).
    pub fn begin_delta(
        &mut self,
        id: u32,
        path: &WirePath,
        meta: Meta,
        size: u64,
    ) -> Result<&mut Incoming, FsError> {
        let keep = std::mem::replace(&mut self.opts.keep_partials, false);
        let res = self.begin_file(id, path, meta, size).map(|_| ());
        self.opts.keep_partials = keep;
        res?;
        let shown = self.tree().show(path);
        let inc = self
            .incoming
            .as_mut()
            .ok_or_else(|| FsError::io("create", shown, Errno::EBADF.into()))?;
        inc.delta = true;
        Ok(inc)
    }
}
