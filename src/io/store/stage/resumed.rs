//! A stager's side of resuming a cut transfer: how much a partial of a
//! file holds, reopening it to continue, and reading what it kept.

use nix::errno::Errno;

use super::{Incoming, Stager};
use crate::io::error::FsError;
use crate::io::store::partial;
use crate::io::store::stored::StoredFile;
use crate::proto::{Meta, WirePath};
use crate::store::names;

impl Incoming {
    /// The bytes kept from an interrupted transfer (before `offset`), to
    /// read for their crc32c on a worker; its own descriptor.
    pub fn kept(&self) -> Result<StoredFile, FsError> {
        let fd = self
            .file
            .as_ref()
            .ok_or_else(|| {
                FsError::io("dup", self.shown.text(), std::io::Error::from(Errno::EBADF))
            })?
            .try_clone()
            .map_err(|e| FsError::io("dup", self.shown.text(), e))?;
        Ok(StoredFile::kept(
            fd,
            self.offset,
            self.meta,
            self.shown.clone(),
        ))
    }
}

impl Stager {
    /// How many bytes of `path` (a file of `size` bytes and mtime `meta`)
    /// a partial from an interrupted transfer holds, if any.
    pub fn partial_len(&self, path: &WirePath, size: u64, meta: &Meta) -> Option<u64> {
        if !self.opts.keep_partials {
            return None;
        }
        partial::kept_len(&self.ns.tree, path, size, meta)
    }

    /// Reopens the partial of `path` to continue at `offset`: bytes past it
    /// are cut, and the crc32c of the bytes before it is computed (one read
    /// of what is kept, unless [`StageOptions::defer_prefix_crc`] leaves
    /// that to the caller) so the whole file is verified as a fresh one is.
    pub fn resume_file(
        &mut self,
        id: u32,
        path: &WirePath,
        meta: Meta,
        size: u64,
        offset: u64,
    ) -> Result<&mut Incoming, FsError> {
        self.abort_file();
        let xattrs = self.take_xattrs(path);
        let parent = self.parent_for_write(path)?;
        let name = path.file_name().unwrap_or_default();
        let tmp = names::partial_name(name, size, &meta);
        let shown = self.ns.tree.show(path);
        if !self.opts.keep_partials {
            return Err(FsError::errno("resume", shown, Errno::ENOENT));
        }
        let file = partial::reopen(parent, &tmp, offset, &shown)?;
        // Ours is locked now: room is never made by removing it.
        self.make_room(parent, size.saturating_sub(offset));
        let defer = self.opts.defer_prefix_crc;
        let crc = if defer {
            0
        } else {
            // The kept bytes are read as any stored file is.
            let fd = file
                .try_clone()
                .map_err(|e| FsError::io("resume", shown.clone(), e))?;
            StoredFile::kept(fd, offset, meta, self.ns.tree.shown(path))
                .crc(0, offset, 0)
                .map_err(|e| FsError::io("resume", shown.clone(), e.error))?
        };
        Ok(self.incoming.insert(Incoming {
            file: Some(file),
            tmp,
            partial: true,
            offset,
            crc,
            prefix_pending: defer && offset > 0,
            xattrs,
            ..self.incoming_of(id, path, meta, size, None)
        }))
    }
}
