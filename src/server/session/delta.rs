//! The server session's part in delta transfer (see [`crate::delta`]):
//! a `Need` and the signatures behind it, a backup's `FileDelta` (its
//! budget checked before anything is staged), and in a restore the
//! signature of the client's copy that comes before its `Want`.

use super::{ServerSession, State};
use crate::proto::{self, ErrorCode, Frame, Meta, WirePath};
use crate::server::command::FromBasis;

impl ServerSession {
    /// A `Need`, then the signatures of its `delta` entries, each in
    /// chunks that fit a frame (the shell kept their sum within
    /// [`proto::MAX_NEED_SIGNATURES`]; one past it, or past
    /// [`proto::MAX_SIGNATURE`], is dropped here and its file goes whole).
    pub(super) fn push_need(
        &mut self,
        id: u32,
        bits: Vec<u8>,
        meta: Vec<u8>,
        resume: Vec<(u32, u64)>,
        sigs: Vec<(u32, Vec<u8>)>,
    ) {
        let mut room = proto::MAX_NEED_SIGNATURES;
        let mut last = None;
        let sigs: Vec<(u32, Vec<u8>)> = sigs
            .into_iter()
            .filter(|(i, sig)| {
                let fits = !sig.is_empty()
                    && sig.len() <= proto::MAX_SIGNATURE as usize
                    && sig.len() <= room
                    && last.is_none_or(|l| l < *i);
                if fits {
                    room -= sig.len();
                    last = Some(*i);
                }
                fits
            })
            .collect();
        self.push(&Frame::Need {
            id,
            bits,
            meta,
            resume,
            delta: sigs.iter().map(|(i, _)| *i).collect(),
        });
        for (index, sig) in sigs {
            // The filter above kept every length within u32.
            let total = sig.len() as u32;
            for chunk in sig.chunks(proto::SIGNATURE_CHUNK) {
                self.push(&Frame::Signature {
                    id,
                    index,
                    total,
                    chunk: chunk.to_vec(),
                });
            }
        }
    }

    /// A `FileDelta`: a file whose `copies` come from the stored version
    /// (which must be `basis` bytes long); the body carries the rest of
    /// it from `offset` (the bytes before are the partial's the `Need`
    /// announced; the shell checks that it still holds them).
    pub(super) fn handle_file_delta(
        &mut self,
        id: u32,
        path: WirePath,
        meta: Meta,
        size: u64,
        (basis, offset): (u64, u64),
        copies: Vec<proto::CopyRange>,
    ) {
        let layout = proto::delta_layout(size, offset, &copies);
        let copied = copies.iter().fold(0u64, |n, c| n.saturating_add(c.len));
        if copied > proto::delta_copy_budget(basis) {
            // Refused like any write: the body is read and dropped.
            if self.check_id(id) && self.count_entry(&path) {
                self.push_failed(
                    id,
                    path.clone(),
                    format!(
                        "a delta may copy at most 4 times its basis ({copied} bytes of {basis})"
                    ),
                );
                self.state = State::Body {
                    id,
                    path,
                    size: layout.body_len(size, offset),
                    accepted: false,
                };
            }
            return;
        }
        let delta = Box::new(FromBasis { basis, copies });
        self.begin_file(id, path, meta, size, offset, layout, Some(delta));
    }

    /// A piece of the signature of the client's copy of the offered file
    /// (index 0, the offer's id, whole before its `Want`, at most
    /// [`proto::MAX_SIGNATURE`] bytes): the `Want` then asks for a delta.
    pub(super) fn handle_offer_signature(&mut self, id: u32, index: u32, total: u32, chunk: &[u8]) {
        let open = self.offer.is_some_and(|(o, _)| o == id) && index == 0;
        let sig = self
            .offer_sig
            .get_or_insert_with(|| Box::new((total, Vec::new())));
        if !open || sig.0 != total || sig.1.len() + chunk.len() > total as usize {
            self.offer_sig = None;
            return self.fail(
                ErrorCode::Unexpected,
                format!("unexpected signature piece for request {id}"),
            );
        }
        sig.1.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::proto::Layout;
    use crate::server::command::{Command, Completion, Received};
    use crate::server::session::stream::tests::offering;
    use crate::server::session::SessionConfig;
    use crate::testing::frames::{bytes, meta, wp};
    use crate::testing::server::{drain_commands, sent_frames, welcomed};

    /// Issue 14: a `FileDelta` goes to the shell with its runs and the
    /// layout of its literal body; one that would copy more than its
    /// basis's budget is refused like a write (its body read and dropped,
    /// the connection goes on).
    #[test]
    fn a_delta_is_staged_with_its_runs_and_an_amplifying_one_refused() {
        let now = Instant::now();
        let delta = |id, size, copies: Vec<(u64, u64, u64)>| Frame::FileDelta {
            id,
            path: wp("vm.img"),
            meta: meta(),
            size,
            basis: 1 << 20,
            offset: 0,
            copies: copies
                .into_iter()
                .map(|(dst, src, len)| proto::CopyRange { dst, src, len })
                .collect(),
        };
        let mut s = welcomed(SessionConfig::default(), now);
        s.handle_input(
            now,
            &bytes(&[delta(1, 3 << 20, vec![(1 << 20, 0, 1 << 20)])]),
        );
        let cmds = drain_commands(&mut s);
        assert!(
            matches!(&cmds[..], [Command::BeginFile { id: 1, size, layout: Layout::Sparse(e), delta: Some(d), .. }]
                if *size == 3 << 20 && e.len() == 2 && d.copies.len() == 1 && d.basis == 1 << 20),
            "{cmds:?}"
        );
        assert_eq!(s.wants_body(), Some(2 << 20), "the literal bytes only");

        // 64 runs of the whole 1 MiB basis: 64 MiB is within the floor of
        // the budget; 65 are past it.
        let runs = |n: u64| (0..n).map(|k| (k << 20, 0, 1 << 20)).collect::<Vec<_>>();
        let mut s = welcomed(SessionConfig::default(), now);
        s.handle_input(now, &bytes(&[delta(1, 64 << 20, runs(64))]));
        assert!(matches!(
            &drain_commands(&mut s)[..],
            [Command::BeginFile { .. }]
        ));
        let mut s = welcomed(SessionConfig::default(), now);
        s.handle_input(now, &bytes(&[delta(1, 65 << 20, runs(65))]));
        assert!(drain_commands(&mut s).is_empty());
        assert_eq!(s.wants_body(), Some(0));
        s.handle_completion(Completion::BodyReceived(Received {
            crc: 0,
            write_error: None,
        }));
        s.handle_input(
            now,
            &bytes(&[Frame::FileEnd {
                id: 1,
                crc: 0,
                ok: true,
            }]),
        );
        assert!(!s.is_closing());
        assert!(drain_commands(&mut s).is_empty());
        assert!(sent_frames(&mut s).iter().any(
            |f| matches!(f, Frame::Failed { message, .. } if message.contains("4 times its basis"))
        ));
    }

    /// Issue 14: a delta that resumes a cut one goes to the shell from
    /// its offset: its body is the literal bytes past it.
    #[test]
    fn a_delta_from_an_offset_is_staged_from_there() {
        let now = Instant::now();
        let mut s = welcomed(SessionConfig::default(), now);
        let frame = Frame::FileDelta {
            id: 1,
            path: wp("vm.img"),
            meta: meta(),
            size: 4 << 20,
            basis: 4 << 20,
            offset: (1 << 20) + 5,
            copies: vec![proto::CopyRange {
                dst: 2 << 20,
                src: 2 << 20,
                len: 1 << 20,
            }],
        };
        s.handle_input(now, &bytes(&[frame]));
        let cmds = drain_commands(&mut s);
        assert!(
            matches!(&cmds[..], [Command::BeginFile { id: 1, offset, layout: Layout::Sparse(e), delta: Some(_), .. }]
                if *offset == (1 << 20) + 5 && e.len() == 2 && e[0].offset == *offset),
            "{cmds:?}"
        );
        assert_eq!(s.wants_body(), Some((1 << 20) - 5 + (1 << 20)));
    }

    /// Issue 14: the client's signature of its own copy comes in pieces
    /// before its `Want` (read ahead while the offer is open, as the
    /// `Want` is): the `Want` from 0 then asks for a delta with the whole
    /// signature, from its offset (what a cut restore left the client of
    /// the file). A piece for another request, of another announced
    /// length, past that length, or a `Want` before the last piece, or
    /// from past the file's end, ends the session.
    #[test]
    fn a_signature_before_a_want_asks_for_a_delta() {
        let now = Instant::now();
        let piece = |id: u32, total: u32, chunk: &[u8]| Frame::Signature {
            id,
            index: 0,
            total,
            chunk: chunk.to_vec(),
        };
        let want = |offset| Frame::Want { id: 1, offset };
        let mut s = offering(now);
        s.handle_input(
            now,
            &bytes(&[piece(1, 5, b"abc"), piece(1, 5, b"de"), want(0)]),
        );
        assert!(!s.is_closing());
        assert_eq!(
            drain_commands(&mut s),
            vec![Command::SendDelta {
                id: 1,
                sig: b"abcde".to_vec(),
                offset: 0,
            }]
        );
        let mut s = offering(now);
        s.handle_input(now, &bytes(&[piece(1, 5, b"abcde"), want(3)]));
        assert_eq!(
            drain_commands(&mut s),
            vec![Command::SendDelta {
                id: 1,
                sig: b"abcde".to_vec(),
                offset: 3,
            }]
        );
        for bad in [
            vec![piece(2, 5, b"abcde"), want(0)],
            vec![piece(1, 5, b"abc"), piece(1, 6, b"de"), want(0)],
            vec![piece(1, 5, b"abc"), piece(1, 5, b"def")],
            vec![piece(1, 5, b"abc"), want(0)],
            vec![piece(1, 5, b"abcde"), want(11)],
        ] {
            let mut s = offering(now);
            s.handle_input(now, &bytes(&bad));
            assert!(s.is_closing(), "{bad:?}");
        }
        // A Skip after pieces forgets them: the next offer starts afresh.
        let mut s = offering(now);
        s.handle_input(now, &bytes(&[piece(1, 5, b"abc"), Frame::Skip { id: 1 }]));
        assert!(!s.is_closing());
        assert_eq!(drain_commands(&mut s), vec![Command::SkipOffer { id: 1 }]);
    }

    /// While the client signs its copy (minutes for a large file on a
    /// slow disk) it says it is alive with empty `Names` every 30 s: they
    /// hold the open offer past the idle timeout (300 s) and change
    /// nothing of it. Without them the offer times out.
    #[test]
    fn keepalives_while_the_client_signs_hold_the_offer_open() {
        let now = Instant::now();
        let mut s = offering(now);
        let alive = Frame::Names {
            users: Vec::new(),
            groups: Vec::new(),
        };
        let mut t = now;
        for _ in 0..12 {
            t += Duration::from_secs(30);
            s.handle_input(t, &bytes(std::slice::from_ref(&alive)));
            s.handle_timeout(t);
            assert!(!s.is_closing());
        }
        let sig = Frame::Signature {
            id: 1,
            index: 0,
            total: 3,
            chunk: b"sig".to_vec(),
        };
        s.handle_input(t, &bytes(&[sig, Frame::Want { id: 1, offset: 0 }]));
        let cmds = drain_commands(&mut s);
        let (last, before) = cmds.split_last().unwrap();
        assert_eq!(
            last,
            &Command::SendDelta {
                id: 1,
                sig: b"sig".to_vec(),
                offset: 0,
            }
        );
        assert!(
            before
                .iter()
                .all(|c| matches!(c, Command::LearnNames { users, groups } if users.is_empty() && groups.is_empty())),
            "{before:?}"
        );
        let mut s = offering(now);
        s.handle_timeout(now + Duration::from_secs(301));
        assert!(s.is_closing());
    }
}
