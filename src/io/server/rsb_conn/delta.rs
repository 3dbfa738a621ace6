//! A backup connection's side of delta transfer (see [`crate::delta`]):
//! signing the stored versions of a manifest's changed files before its
//! `Need` goes out, copying a `FileDelta`'s runs from the stored version
//! into its staging file before the literal bytes arrive, and reading the
//! result back whole for its crc32c once they did. Each is a worker job
//! (gigabytes of reading or copying): the connection waits, the loop
//! does not.

use log::{debug, warn};

use std::os::fd::{AsFd, AsRawFd};

use super::stream::{Offered, Outgoing, Restore};
use super::{RsbConn, State, Wait};
use crate::delta::Signature;
use crate::io::delta_io::fs_block;
use crate::io::error::FsError;
use crate::io::store::sigcache::SigKey;
use crate::io::worker::{Job, Workers};
use crate::proto::{Meta, WirePath};
use crate::server::command::{FromBasis, Received};
use crate::server::session::Completion;

/// What the connection keeps of the delta being received, for the
/// signature cache: the stored version's key (forgotten if the result
/// fails its crc32c: the cached signature may not be that file's) and,
/// once read back, the new version's signature (cached if it is kept).
pub(in crate::io::server) struct Note {
    basis: SigKey,
    copies: Vec<crate::proto::CopyRange>,
    sig: Option<Signature>,
}

/// A restore paused at an offered file while a worker matches it
/// against the client's signature.
pub(in crate::io::server) struct Sending {
    restore: Box<Restore>,
    offered: Offered,
    id: u32,
    basis: u64,
    /// What the client holds of the file already.
    offset: u64,
}

/// A `Need` waiting for its signatures.
pub(in crate::io::server) struct Unsigned {
    id: u32,
    bits: Vec<u8>,
    meta: Vec<u8>,
    resume: Vec<(u32, u64)>,
}

impl RsbConn {
    /// Answers a manifest: at once when no needed file can go as a delta,
    /// else once a worker signed their stored versions.
    pub(super) fn sign(
        &mut self,
        id: u32,
        bits: Vec<u8>,
        meta: Vec<u8>,
        resume: Vec<(u32, u64)>,
        files: Vec<(u32, WirePath)>,
        workers: &Workers,
    ) {
        let tree = match self.store.as_ref().map(|s| s.tree().try_clone()) {
            Some(Ok(tree)) if !files.is_empty() => tree,
            _ => {
                return self.signed(
                    Unsigned {
                        id,
                        bits,
                        meta,
                        resume,
                    },
                    Vec::new(),
                )
            }
        };
        let job = Job::Sign {
            ticket: self.ticket,
            tree,
            files,
        };
        let unsigned = Box::new(Unsigned {
            id,
            bits,
            meta,
            resume,
        });
        match workers.submit(job) {
            Ok(()) => self.state = State::Waiting(Wait::Sign(unsigned)),
            Err(_) => self.signed(*unsigned, Vec::new()),
        }
    }

    /// The signatures are back: the `Need` goes out with them.
    pub(super) fn signed(&mut self, u: Unsigned, sigs: Vec<(u32, Vec<u8>)>) {
        if !sigs.is_empty() {
            debug!(
                "{}: manifest {}: {} signatures",
                self.who(),
                u.id,
                sigs.len()
            );
        }
        self.session.handle_completion(Completion::Checked {
            id: u.id,
            bits: u.bits,
            meta: u.meta,
            resume: u.resume,
            delta: sigs,
        });
    }

    /// A `FileDelta`: stages the file (under a fresh name, or from
    /// `offset` in the partial a cut transfer left), opens the stored
    /// version it was matched against and hands the copies to a worker;
    /// the body is received once they are done.
    pub(super) fn begin_delta(
        &mut self,
        id: u32,
        path: WirePath,
        meta: Meta,
        (offset, size): (u64, u64),
        delta: FromBasis,
        workers: &Workers,
    ) {
        let layout = crate::proto::delta_layout(size, offset, &delta.copies);
        if self.store.is_none() || self.batch_is_full(id, &path) {
            return;
        }
        self.batch.entries += 1;
        let who = self.who();
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let shown = store.tree().show(&path);
        let staged = if offset > 0 {
            log::info!("{who}: {path}: resuming a delta at byte {offset} of {size}");
            store.resume_delta(id, &path, meta, size, offset)
        } else {
            store.begin_delta(id, &path, meta, size)
        };
        let staged = staged.and_then(|inc| {
            inc.layout = layout;
            inc.file
                .as_ref()
                .ok_or_else(|| FsError::invalid("create", shown.clone(), "no staging file"))?
                .try_clone()
                .map_err(|e| FsError::io("dup", shown.clone(), e))
        });
        let mut key = None;
        let copies = delta.copies.clone();
        let job = staged.and_then(|out| {
            let (basis, st) = store.tree().open_basis(&path, delta.basis)?;
            key = Some(SigKey::of(&st));
            Ok(Job::Copy {
                ticket: self.ticket,
                basis,
                out,
                size,
                ranges: delta.copies,
            })
        });
        let res = job.map(|job| workers.submit(job).is_ok());
        self.delta = key.map(|basis| {
            Box::new(Note {
                basis,
                copies,
                sig: None,
            })
        });
        match res {
            Ok(true) => self.state = State::Waiting(Wait::DeltaCopy),
            Ok(false) => {
                store.abort_file();
                self.fail(id, path, "no worker left to copy the delta".into());
            }
            Err(e) => {
                store.abort_file();
                self.staging_failed(id, path, &e);
            }
        }
    }

    /// The copies are in the staging file (or failed: the file is dropped,
    /// its body read and discarded).
    pub(super) fn copied(&mut self, result: std::io::Result<crate::io::delta_io::CopyReport>) {
        let who = self.who();
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let Some(inc) = store.incoming() else {
            return;
        };
        let (id, path) = (inc.id, inc.path.clone());
        match result {
            Ok(r) => debug!(
                "{who}: {path}: {} bytes copied from the stored version{}",
                r.bytes,
                if r.fallback {
                    " (read and written)"
                } else {
                    ""
                }
            ),
            Err(e) => {
                let e = FsError::io("delta", store.tree().show(&path), e);
                store.abort_file();
                self.staging_failed(id, path, &e);
            }
        }
    }

    /// A delta's literal bytes are in: a worker reads the whole file back
    /// for its crc32c, which [`Self::delta_checked`] hands to the session.
    /// Returns false when the file is no delta (the caller reports it).
    pub(super) fn check_delta(&mut self, received: Received, workers: &Workers) -> bool {
        let Some(inc) = self
            .store
            .as_mut()
            .and_then(|s| s.incoming())
            .filter(|i| i.delta)
        else {
            return false;
        };
        let (size, path) = (inc.size, inc.path.clone());
        // The blocks the basis signed need no hashing again.
        let note = self.delta.as_deref();
        let copies = note.map(|n| n.copies.clone()).unwrap_or_default();
        let basis = note.and_then(|n| {
            let cache = self.store.as_ref()?.tree().sig_cache(false).ok()?;
            Some(Box::new((cache, n.basis)))
        });
        let ticket = self.ticket;
        let job = self
            .store
            .as_mut()
            .and_then(|s| s.incoming())
            .and_then(|i| i.file.as_ref())
            .map(|f| f.try_clone())
            .map(|file| {
                file.map(|file| {
                    let block = crate::delta::block_size(size, fs_block(file.as_fd()));
                    Job::CheckDelta {
                        ticket,
                        file,
                        len: size,
                        block: Some(block),
                        basis,
                        copies,
                    }
                })
            });
        match job.map(|j| j.map(|j| workers.submit(j))) {
            Some(Ok(Ok(()))) => {
                self.state = State::Waiting(Wait::DeltaCrc(Box::new(received.write_error)));
            }
            _ => {
                warn!("{}: {path}: cannot read the delta back", self.who());
                self.session
                    .handle_completion(Completion::BodyReceived(Received {
                        crc: received.crc,
                        write_error: Some("cannot read the file back".into()),
                    }));
            }
        }
        true
    }

    /// The crc32c of a delta's whole result: it stands for the body's in
    /// the session's verdict (the client's `FileEnd` covers the file).
    pub(super) fn delta_checked(
        &mut self,
        result: std::io::Result<(u32, Option<Signature>)>,
        write_error: Option<String>,
    ) {
        let received = match result {
            Ok((crc, sig)) => {
                if let Some(note) = self.delta.as_mut() {
                    note.sig = sig;
                }
                Received { crc, write_error }
            }
            Err(e) => Received {
                crc: 0,
                write_error: write_error.or_else(|| Some(crate::io::describe(&e))),
            },
        };
        self.session
            .handle_completion(Completion::BodyReceived(received));
    }
}

impl RsbConn {
    /// The verdict on a delta, before the stager keeps or drops it: a
    /// kept one's signature goes into the cache under the key the file
    /// will have once committed (its inode, size and mtime); a dropped
    /// one's basis signature leaves it (it may not be that file's).
    pub(super) fn delta_verdict(&mut self, keep: bool) {
        let Some(note) = self.delta.take() else {
            return;
        };
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let Ok(cache) = store.tree().sig_cache(true) else {
            return;
        };
        // The note is this file's only if the file is a delta (a failed
        // one may have left a note behind).
        let Some(inc) = store.incoming().filter(|i| i.delta) else {
            return;
        };
        if !keep {
            cache.forget(&note.basis);
            return;
        }
        let (Some(sig), Some(file)) = (note.sig, inc.file.as_ref()) else {
            return;
        };
        if let Ok(st) = nix::sys::stat::fstat(file.as_raw_fd()) {
            let mut key = SigKey::of(&st);
            key.mtime = (inc.meta.mtime.secs, inc.meta.mtime.nanos);
            if let Err(e) = cache.store(&key, &sig) {
                debug!("{}: signature cache: {e}", inc.path);
            }
        }
    }
}

impl RsbConn {
    /// The client's `Want` from `offset` came with the signature of its
    /// copy of the offered file: a worker reads the stored file against
    /// it. A signature that does not decode gets the whole file from
    /// `offset`.
    pub(super) fn send_delta(&mut self, id: u32, sig: &[u8], offset: u64, workers: &Workers) {
        let Ok(sig) = Signature::decode(sig) else {
            debug!("{}: restore: a signature that does not decode", self.who());
            return self.send_from(id, offset, workers);
        };
        let mut restore = match std::mem::replace(&mut self.state, State::Idle) {
            State::Restoring(r) => r,
            other => {
                self.state = other;
                return;
            }
        };
        let offered = match std::mem::replace(&mut restore.out, Outgoing::Walking) {
            Outgoing::Offered(o) => o,
            other => {
                restore.out = other;
                self.state = State::Restoring(restore);
                return;
            }
        };
        let basis = sig.file_len;
        let job = offered.file.try_clone().map(|file| Job::MatchStored {
            ticket: self.ticket,
            file,
            sig: Box::new((sig, offset)),
        });
        match job.map(|j| workers.submit(j)) {
            Ok(Ok(())) => {
                self.state = State::Waiting(Wait::DeltaSend(Box::new(Sending {
                    restore,
                    offered,
                    id,
                    basis,
                    offset,
                })));
            }
            _ => {
                restore.out = Outgoing::Offered(offered);
                self.state = State::Restoring(restore);
                self.send_from(id, offset, workers);
            }
        }
    }

    /// The offered file was read against the client's signature: its
    /// delta goes out, or the whole file when nothing matched (from the
    /// client's offset: a delta of no runs, its crc32c the whole file's
    /// from this read).
    pub(super) fn delta_matched(
        &mut self,
        s: Sending,
        result: std::io::Result<Option<crate::io::delta_match::Matched>>,
    ) {
        let Sending {
            restore,
            offered,
            id,
            basis,
            offset,
        } = s;
        self.state = State::Restoring(restore);
        let m = match result {
            Ok(Some(m)) if offset > 0 || !m.copies.copies.is_empty() => m,
            Ok(_) if offset == 0 => return self.start_send(id, offered, 0, Ok(0)),
            Ok(_) => {
                let e = std::io::Error::other("the file could not be read whole");
                return self.start_send(id, offered, 0, Err(e));
            }
            Err(e) => return self.start_send(id, offered, 0, Err(e)),
        };
        let (meta, size, path) = (offered.file.meta(), offered.file.size(), offered.rel);
        let layout = crate::proto::delta_layout(size, offset, &m.copies.copies);
        match offered.file.delta_sender(layout, m.crc) {
            Ok(tx) => {
                debug!(
                    "{}: restore of {path} as a delta from byte {offset}: {} bytes to send, {} reused",
                    self.who(),
                    m.copies.literal,
                    m.copies.reused
                );
                self.session.handle_completion(Completion::RestoredDelta {
                    id,
                    path,
                    meta,
                    size,
                    basis,
                    offset,
                    copies: m.copies.copies,
                });
                if let State::Restoring(r) = &mut self.state {
                    r.out = Outgoing::Sending(tx);
                }
            }
            Err(e) => {
                warn!("{}: {e}", self.who());
                self.session.handle_completion(Completion::Failed {
                    id,
                    path,
                    message: e.short(),
                });
            }
        }
    }
}
