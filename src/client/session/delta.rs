//! The client session's part in delta transfer (see [`crate::delta`]):
//! the signatures that follow a `Need`, assembled before the `Need` is an
//! event; a backup's `FileDelta` header; a restore's `Want` with the
//! signature of the local copy; the keepalive of a long match.

use super::{ClientSession, Event};
use crate::delta::Signature;
use crate::proto::{self, Frame, Meta, WirePath};

/// A `Need` held until the signatures of its `delta` entries are in.
pub(super) struct Signing {
    pub(super) id: u32,
    pub(super) bits: Vec<u8>,
    pub(super) meta: Vec<u8>,
    pub(super) resume: Vec<(u32, u64)>,
    /// The entries still to come, in order (reversed: the next is last).
    pub(super) todo: Vec<u32>,
    /// Signatures complete so far.
    pub(super) done: Vec<(u32, Signature)>,
    /// The bytes of the one arriving, and its announced length.
    pub(super) buf: Vec<u8>,
    pub(super) total: u32,
    /// Signature bytes of this `Need` so far.
    pub(super) bytes: usize,
}

impl ClientSession {
    /// A `Need` the session checked: an event now, or once the
    /// signatures of its `delta` entries are in.
    pub(super) fn accept_need(
        &mut self,
        id: u32,
        bits: Vec<u8>,
        meta: Vec<u8>,
        resume: Vec<(u32, u64)>,
        mut delta: Vec<u32>,
    ) {
        if delta.is_empty() {
            return self.events.push_back(Event::Need {
                id,
                bits,
                meta,
                resume,
                delta: Vec::new(),
            });
        }
        delta.reverse();
        self.signing = Some(Box::new(Signing {
            id,
            bits,
            meta,
            resume,
            todo: delta,
            done: Vec::new(),
            buf: Vec::new(),
            total: 0,
            bytes: 0,
        }));
    }

    /// Queues the header of a file sent as a delta against the server's
    /// version of `basis` bytes, from `offset` (0, or what the `Need`
    /// said the server kept of it): `copies` come from that version, and
    /// the driver then moves the other bytes of `offset..size` (the
    /// extents of [`proto::delta_layout`]) and [`Self::send_file_end`]
    /// with the whole file's crc32c. Returns its id.
    pub fn send_file_delta(
        &mut self,
        path: WirePath,
        meta: Meta,
        size: u64,
        (basis, offset): (u64, u64),
        copies: Vec<proto::CopyRange>,
    ) -> u32 {
        let id = self.entry_id(&path);
        self.push(&Frame::FileDelta {
            id,
            path,
            meta,
            size,
            basis,
            offset,
            copies,
        });
        id
    }

    /// Answers the current `Offer` with the signature of the local file
    /// it replaces (`sig`, encoded, of a file of `basis` bytes) and a
    /// `Want` from `offset` (what a cut restore left of the file): the
    /// server may send a `FileDelta` against that file from there (or
    /// the rest whole, as for any `Want`).
    pub fn send_want_delta(&mut self, id: u32, (basis, offset): (u64, u64), sig: &[u8]) {
        let total = u32::try_from(sig.len()).unwrap_or(u32::MAX);
        if sig.is_empty() || total > proto::MAX_SIGNATURE {
            return self.send_want(id, offset);
        }
        for chunk in sig.chunks(proto::SIGNATURE_CHUNK) {
            self.push(&Frame::Signature {
                id,
                index: 0,
                total,
                chunk: chunk.to_vec(),
            });
        }
        self.send_want(id, offset);
        self.signed = Some(basis);
    }

    /// Queues a frame that only says the client is alive (an empty
    /// `Names`), for a long pause between frames: the matching of a
    /// large file before its `FileDelta`. Not while a body is owed.
    pub fn send_keepalive(&mut self) {
        if !self.body_owed {
            self.push(&Frame::Names {
                users: Vec::new(),
                groups: Vec::new(),
            });
        }
    }

    /// The frames right after a `Need` with a `delta` list: the
    /// signatures of those entries, in order, each whole before the next,
    /// at most [`proto::MAX_NEED_SIGNATURES`] bytes of them. Anything else
    /// is a protocol error. Once all are in, the `Need` is an event.
    pub(super) fn handle_signature(&mut self, f: Frame) {
        let Some(s) = self.signing.as_mut() else {
            return;
        };
        let Frame::Signature {
            id,
            index,
            total,
            chunk,
        } = f
        else {
            let (id, kind) = (s.id, f.kind());
            return self.broken_protocol(format!(
                "expected the signatures of manifest {id}'s answer, got frame kind {kind}"
            ));
        };
        let fresh = s.buf.is_empty();
        let fits = id == s.id
            && s.todo.last() == Some(&index)
            && (fresh || total == s.total)
            && s.buf.len() + chunk.len() <= total as usize
            && s.bytes + chunk.len() <= proto::MAX_NEED_SIGNATURES;
        if !fits {
            return self.broken_protocol(format!(
                "unexpected signature piece for entry {index} of manifest {id}"
            ));
        }
        s.total = total;
        s.bytes += chunk.len();
        s.buf.extend_from_slice(&chunk);
        if s.buf.len() < total as usize {
            return;
        }
        let sig = match Signature::decode(&s.buf) {
            Ok(sig) => sig,
            Err(e) => {
                return self.broken_protocol(format!(
                    "bad signature for entry {index} of manifest {id}: {e}"
                ))
            }
        };
        s.buf = Vec::new();
        s.todo.pop();
        s.done.push((index, sig));
        if s.todo.is_empty() {
            if let Some(s) = self.signing.take() {
                let s = *s;
                self.events.push_back(Event::Need {
                    id: s.id,
                    bits: s.bits,
                    meta: s.meta,
                    resume: s.resume,
                    delta: s.done,
                });
            }
        }
    }
}
