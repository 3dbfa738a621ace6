//! The stored version of a changed file as the basis of a delta: finding
//! the files of a manifest that can go as deltas, their signatures (from
//! the signature cache, else read once and cached: see
//! [`super::sigcache`]), and opening a basis again when its delta arrives.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use log::debug;
use nix::sys::stat::{self, FileStat};

use super::beneath::os;
use super::namespace::Namespace;
use super::partial;
use super::sigcache::signature_of;
use super::stage::{Incoming, Stager};
use crate::io::delta_io::{copy_ranges, fs_block, sign_file_until};
use crate::io::error::FsError;
use crate::io::kind_of;
use crate::proto::{self, EntryKind, ManifestEntry, Meta, WirePath};
use crate::store::{names, resume};
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
    /// whose destination holds the basis; from `offset` in the partial a
    /// cut restore left, if not 0. The body then goes into the runs
    /// between ([`Incoming::layout`]).
    pub fn begin_delta_from(
        &mut self,
        id: u32,
        path: &WirePath,
        meta: Meta,
        (offset, size): (u64, u64),
        from: (u64, &[proto::CopyRange]),
    ) -> Result<(), FsError> {
        let (basis, _) = self.tree().open_basis(path, from.0)?;
        let shown = self.tree().show(path);
        let inc = if offset > 0 {
            self.resume_delta(id, path, meta, size, offset)?
        } else {
            self.begin_delta(id, path, meta, size)?
        };
        inc.layout = proto::delta_layout(size, offset, from.1);
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
    /// but under a fresh name, never as a partial (its copies land before
    /// the literal bytes between them, so what is on disk is no prefix of
    /// the file); the prefix known written becomes one if it is cut (see
    /// [`Self::delta_written`]).
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
        self.staged_delta("create", path)
    }

    /// The file just staged for `path`, marked a delta.
    fn staged_delta(
        &mut self,
        op: &'static str,
        path: &WirePath,
    ) -> Result<&mut Incoming, FsError> {
        let shown = self.tree().show(path);
        let inc = self
            .incoming
            .as_mut()
            .ok_or_else(|| FsError::io(op, shown, Errno::EBADF.into()))?;
        inc.delta = true;
        Ok(inc)
    }

    /// Stages a delta that continues the partial of `path` from `offset`
    /// (a cut delta, or a cut whole transfer, of the same version): the
    /// bytes past `offset` are cut, and the whole result is read back for
    /// its crc32c as for any delta (so the kept bytes' own crc32c is not
    /// computed here).
    pub fn resume_delta(
        &mut self,
        id: u32,
        path: &WirePath,
        meta: Meta,
        size: u64,
        offset: u64,
    ) -> Result<&mut Incoming, FsError> {
        let defer = std::mem::replace(&mut self.opts.defer_prefix_crc, true);
        let res = self.resume_file(id, path, meta, size, offset).map(|_| ());
        self.opts.defer_prefix_crc = defer;
        res?;
        let inc = self.staged_delta("resume", path)?;
        inc.prefix_pending = false;
        Ok(inc)
    }

    /// Bytes `0..upto` of the delta being received are in its file: its
    /// copies are done and its body came this far. If the connection ends
    /// before the rest, they are kept as the file's partial (see
    /// [`Self::abort`]).
    pub fn delta_written(&mut self, upto: u64) {
        if let Some(inc) = self.incoming.as_mut().filter(|i| i.delta) {
            inc.written = Some(upto.min(inc.size));
        }
    }

    /// A delta cut before its end: the prefix known written (see
    /// [`Self::delta_written`]) becomes the file's partial, cut there, on
    /// a stager that keeps partials, for a file large enough to resume;
    /// anything else is removed (a copy may still be being written into
    /// it: nothing past the known prefix is trusted). A partial another
    /// connection holds is left alone, and this one removed.
    pub(super) fn keep_delta(&mut self, inc: Incoming) {
        let kept = inc
            .written
            .filter(|&n| n > 0 && self.opts.keep_partials && resume::is_resumable(inc.size));
        let (Some(kept), Some(file), Some(name)) = (kept, inc.file.as_ref(), inc.path.file_name())
        else {
            return self.remove_tmp(&inc.path, &inc.tmp);
        };
        let parent = inc.path.parent().map(|p| self.dir(&p));
        let Some(Ok(parent)) = parent else {
            return self.remove_tmp(&inc.path, &inc.tmp);
        };
        let cut = i64::try_from(kept)
            .ok()
            .is_some_and(|n| nix::unistd::ftruncate(file, n).is_ok());
        if !cut {
            return self.remove_tmp(&inc.path, &inc.tmp);
        }
        if inc.partial {
            // Under its partial's name already, and locked by us.
            return debug!("{}: kept {kept} bytes of a cut delta", inc.path);
        }
        let dir = parent.as_raw_fd();
        let ours = names::partial_name(name, inc.size, &inc.meta);
        let renamed = match partial::claim(dir, &ours, true) {
            // Held until the rename replaced what it locked.
            Ok(partial::Claim::Ours(_held)) => {
                nix::fcntl::renameat(Some(dir), os(&inc.tmp), Some(dir), os(&ours)).is_ok()
            }
            _ => false,
        };
        if renamed {
            partial::remove_others(dir, name, &ours);
            debug!("{}: kept {kept} bytes of a cut delta", inc.path);
        } else {
            self.remove_tmp(&inc.path, &inc.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::super::stage::tests::{meta, wp};
    use super::super::stage::StageOptions;
    use super::*;

    fn keeping(dir: &std::path::Path) -> Stager {
        let opts = StageOptions {
            keep_partials: true,
            ..StageOptions::default()
        };
        Stager::new(Namespace::open_dir(dir).unwrap(), opts)
    }

    /// What a delta's copies and body leave in its file: `data` at
    /// `at`, the file `size` bytes long (the copy job sets the length).
    fn put(inc: &Incoming, at: u64, data: &[u8], size: u64) {
        let fd = inc.file.as_ref().unwrap();
        nix::unistd::ftruncate(fd, size as i64).unwrap();
        nix::sys::uio::pwrite(fd, data, at as i64).unwrap();
    }

    fn tmp_names(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".rsb-tmp."))
            .collect()
    }

    /// Issue 14: a delta cut while its body came in leaves the bytes known
    /// written from its start as the file's partial (cut there: the runs
    /// copied past it and the holes between them are not kept), which
    /// the next delta of that version resumes from; a resumed delta cut
    /// before anything was known written, one that never said what was
    /// written, a file too small to resume, and a stager that keeps no
    /// partials leave nothing.
    #[test]
    fn a_cut_delta_keeps_what_was_written_from_its_start_as_a_partial() {
        let t = tempfile::tempdir().unwrap();
        let size = 3 * resume::RESUME_MIN;
        let m = meta(0o600, 5);
        let new: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let upto = resume::RESUME_MIN + 5;
        {
            let mut s = keeping(t.path());
            let inc = s.begin_delta(1, &wp("big"), m, size).unwrap();
            assert!(inc.delta && !inc.partial);
            // A run copied at the end, the body in up to `upto`.
            put(inc, 2 * resume::RESUME_MIN, &new[2 << 20..], size);
            put(inc, 0, &new[..upto as usize], size);
            s.delta_written(upto);
        }
        let mut s = keeping(t.path());
        assert_eq!(s.partial_len(&wp("big"), size, &m), Some(upto));
        let names = tmp_names(t.path());
        assert_eq!(names.len(), 1, "{names:?}");
        let kept = std::fs::read(t.path().join(&names[0])).unwrap();
        assert!(kept == new[..upto as usize], "the prefix, and only it");

        // Resumed from there, cut again further on: the partial grows.
        let inc = s.resume_delta(2, &wp("big"), m, size, upto).unwrap();
        assert!(inc.delta && inc.partial && !inc.prefix_pending);
        assert_eq!(inc.offset, upto);
        put(inc, upto, &new[upto as usize..(2 << 20)], size);
        s.delta_written(2 << 20);
        drop(s);
        let mut s = keeping(t.path());
        assert_eq!(s.partial_len(&wp("big"), size, &m), Some(2 << 20));

        // Resumed, and cut while its runs were being copied: nothing past
        // the partial can be trusted any more, and it goes.
        let inc = s.resume_delta(3, &wp("big"), m, size, 2 << 20).unwrap();
        put(inc, 2 << 20, &[9; 100], size);
        drop(s);
        assert!(tmp_names(t.path()).is_empty());

        // Never said what was written, too small, or no partials kept.
        let mut s = keeping(t.path());
        let inc = s.begin_delta(4, &wp("big"), m, size).unwrap();
        put(inc, 0, &new, size);
        drop(s);
        let mut s = keeping(t.path());
        let small = resume::RESUME_MIN - 1;
        let inc = s.begin_delta(5, &wp("small"), m, small).unwrap();
        put(inc, 0, &new[..small as usize], small);
        s.delta_written(small);
        drop(s);
        let mut s = Stager::new(
            Namespace::open_dir(t.path()).unwrap(),
            StageOptions::default(),
        );
        let inc = s.begin_delta(6, &wp("big"), m, size).unwrap();
        put(inc, 0, &new, size);
        s.delta_written(size);
        drop(s);
        assert!(tmp_names(t.path()).is_empty(), "{:?}", tmp_names(t.path()));

        // A partial of that version that another connection is writing
        // is left to it: this delta's bytes go.
        let dir = std::fs::File::open(t.path()).unwrap();
        let theirs = names::partial_name(b"big", size, &m);
        let partial::Claim::Ours(_held) = partial::claim(dir.as_raw_fd(), &theirs, true).unwrap()
        else {
            panic!("not locked yet")
        };
        let mut s = keeping(t.path());
        let inc = s.begin_delta(7, &wp("big"), m, size).unwrap();
        put(inc, 0, &new[..upto as usize], size);
        s.delta_written(upto);
        drop(s);
        assert_eq!(tmp_names(t.path()).len(), 1);
        assert_eq!(
            std::fs::metadata(t.path().join(os_str(&theirs)))
                .unwrap()
                .len(),
            0
        );

        // A delta from an offset the partial does not reach fails.
        drop(_held);
        let mut s = keeping(t.path());
        let e = s.resume_delta(8, &wp("big"), m, size, 5).err().unwrap();
        assert_eq!(e.raw_os_error(), Some(nix::libc::ENOENT), "{e:?}");
    }

    fn os_str(b: &[u8]) -> &std::ffi::OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}
