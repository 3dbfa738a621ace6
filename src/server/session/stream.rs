//! Streamed answers: `List`, `Restore` and `Verify`, which the shell
//! produces piece by piece on the session's behalf, and the restore's
//! offers of large files (`Offer`, the client's `Want`, `FileFrom`).
//!
//! The policy of a restore stream is decided here, not in the shell: which
//! files are offered rather than sent ([`plan_file`]), what must be read
//! before an offered file is sent from the client's offset
//! ([`plan_resume`]). Which recorded checksum a sent file is held to is
//! the store's rule (`crate::store::record`), and which later name of a
//! stored file with several names goes out as a `Link` to the first
//! ([`LinkMemo`]). Pure: it must not touch a socket, a file or a clock.

use std::collections::HashMap;

use super::{ServerSession, State};
use crate::proto::{
    ErrorCode, Frame, Meta, Time, WirePath, MAX_RESTORE_LINKS, MAX_RESTORE_LINK_GROUPS,
};
use crate::server::command::{Command, VerifyCounts};
use crate::store::resume;

/// How a restored file goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilePlan {
    /// At once and whole: `File`, the body, `FileEnd`.
    Send,
    /// `Offer` first; the client's `Want` says from where
    /// ([`Command::SendFrom`]).
    Offer,
}

/// Decides how a restored regular file of `size` bytes goes out: a file
/// large enough for the client to keep a partial of it
/// ([`resume::is_resumable`]) may be held in part from an interrupted
/// restore, so it is offered first.
#[must_use]
pub fn plan_file(size: u64) -> FilePlan {
    if resume::is_resumable(size) {
        FilePlan::Offer
    } else {
        FilePlan::Send
    }
}

/// What comes before an offered file is sent from the client's offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumePlan {
    /// The client holds nothing: send from the start, the crc32c starting
    /// from nothing.
    FromStart,
    /// The client holds the first `len` bytes: they are not sent, but the
    /// `FileEnd` crc32c covers the whole file, so they are read for it
    /// first (off the loop: they can be gigabytes), then the rest is sent.
    ReadKept {
        /// Bytes the client holds, from the start of the file.
        len: u64,
    },
}

/// Decides what comes before sending an offered file from `offset` (the
/// session has checked that `offset` is at most the file's size).
#[must_use]
pub fn plan_resume(offset: u64) -> ResumePlan {
    if offset == 0 {
        ResumePlan::FromStart
    } else {
        ResumePlan::ReadKept { len: offset }
    }
}

/// A stored file's identity, `(st_dev, st_ino)`.
pub type Inode = (u64, u64);

/// The hard links of one restore: the stored files with several names
/// (`st_nlink` > 1) it sent, by inode, with the path (relative to the
/// restored path, as entries' paths are) of the name that went out
/// whole. A later name of such a file goes out as a `Link` to that name.
///
/// A name is remembered only once it was sent whole (a good `FileEnd`),
/// or offered and skipped by the client (which skips a file it holds
/// complete, or one it refuses; it refuses a `Link` to a name it did not
/// write or keep, so a later name of a refused file fails there, named).
/// So a `Link` never names a file not yet sent, a file sent bad or one
/// that failed. Only the first [`MAX_RESTORE_LINKS`] regular files of a
/// restore can be remembered, the client's bound on the files it
/// remembers, and at most [`MAX_RESTORE_LINK_GROUPS`] of them: past
/// either, later names go out as files of their own.
#[derive(Debug, Default)]
pub struct LinkMemo {
    first: HashMap<Inode, WirePath>,
    /// `File` and `Offer` headers decided so far.
    files: usize,
    /// The file going out now, remembered once it went out whole.
    candidate: Option<(Inode, WirePath)>,
}

impl LinkMemo {
    /// Nothing sent yet.
    #[must_use]
    pub fn new() -> LinkMemo {
        LinkMemo::default()
    }

    /// A stored regular file is about to go out at `rel`; `inode` is its
    /// identity when it has several names (`None`: one name). Returns the
    /// earlier name to send it as a `Link` to, or `None`: it goes out as
    /// a file (`File` or `Offer`), and [`Self::sent`] says how that went.
    pub fn file(&mut self, rel: &WirePath, inode: Option<Inode>) -> Option<WirePath> {
        if let Some(first) = inode.and_then(|i| self.first.get(&i)) {
            self.candidate = None;
            return Some(first.clone());
        }
        let index = self.files;
        self.files = self.files.saturating_add(1);
        // The restored path itself (a restore of one file) has no other
        // name in the stream.
        self.candidate = inode
            .filter(|_| index < MAX_RESTORE_LINKS && !rel.is_root())
            .map(|i| (i, rel.clone()));
        None
    }

    /// The file of the last [`Self::file`] ended: `whole` when its body
    /// went out good or the client skipped its offer, false when the copy
    /// sent was bad.
    pub fn sent(&mut self, whole: bool) {
        if let Some((inode, rel)) = self.candidate.take() {
            if whole && self.first.len() < MAX_RESTORE_LINK_GROUPS {
                self.first.insert(inode, rel);
            }
        }
    }

    /// How many files are remembered.
    #[must_use]
    pub fn remembered(&self) -> usize {
        self.first.len()
    }
}

impl ServerSession {
    /// Starts the streamed answer to request `id` (`List`, `Restore`,
    /// `Verify`): true when the shell is to produce it. A reserved path is
    /// refused here, and the answer ended at once with `end`.
    fn start_stream(&mut self, id: u32, path: &WirePath, end: fn(&mut Self, u32)) -> bool {
        if !self.check_id(id) {
            return false;
        }
        if self.refuse_reserved(id, path) {
            end(self, id);
            return false;
        }
        self.state = State::Streaming { id };
        true
    }

    fn refuse_done(&mut self, id: u32) {
        self.push(&Frame::Done { id });
    }

    fn refuse_verified(&mut self, id: u32) {
        self.push_verified(id, VerifyCounts::default());
    }

    /// `List` (of the tree at `at`, after an `At`): the shell streams the
    /// listing.
    pub(super) fn handle_list(&mut self, id: u32, path: WirePath, at: Option<Time>) {
        if self.start_stream(id, &path, Self::refuse_done) {
            self.commands.push_back(Command::List { id, path, at });
        }
    }

    /// `Restore` (of the tree at `at`, after an `At`): the shell streams
    /// the tree.
    pub(super) fn handle_restore(&mut self, id: u32, path: WirePath, at: Option<Time>) {
        if self.start_stream(id, &path, Self::refuse_done) {
            self.commands.push_back(Command::Restore { id, path, at });
        }
    }

    /// `Versions`: the shell reads the history and answers.
    pub(super) fn handle_versions(&mut self, id: u32, path: WirePath) {
        if self.start_stream(id, &path, Self::refuse_done) {
            self.commands.push_back(Command::Versions { id, path });
        }
    }

    /// `Verify`: the shell checks the files and streams its progress.
    pub(super) fn handle_verify(&mut self, id: u32, path: WirePath) {
        if self.start_stream(id, &path, Self::refuse_verified) {
            self.commands.push_back(Command::Verify { id, path });
        }
    }

    /// Offers a large restored file: frames may be read meanwhile, for the
    /// client's `Want`.
    pub(super) fn push_offer(&mut self, id: u32, path: WirePath, meta: Meta, size: u64) {
        self.push(&Frame::Offer {
            id,
            path,
            meta,
            size,
        });
        self.offer = Some((id, size));
    }

    /// The client's `Want`, while streaming: it must answer the offer that
    /// is open, with an offset within the file.
    pub(super) fn handle_want(&mut self, id: u32, offset: u64) {
        let sig = self.offer_sig.take();
        match (self.offer, sig) {
            (Some((want, size)), Some(sig))
                if want == id && offset <= size && sig.0 as usize == sig.1.len() =>
            {
                self.offer = None;
                self.commands.push_back(Command::SendDelta {
                    id,
                    sig: sig.1,
                    offset,
                });
            }
            (Some((want, size)), None) if want == id && offset <= size => {
                self.offer = None;
                self.commands.push_back(Command::SendFrom { id, offset });
            }
            _ => self.fail(
                ErrorCode::Unexpected,
                format!("unexpected want for request {id}"),
            ),
        }
    }

    /// The client's `Skip`, while streaming: it answers the open offer by
    /// wanting none of the file.
    pub(super) fn handle_skip(&mut self, id: u32) {
        self.offer_sig = None;
        match self.offer {
            Some((want, _)) if want == id => {
                self.offer = None;
                self.commands.push_back(Command::SkipOffer { id });
            }
            _ => self.fail(
                ErrorCode::Unexpected,
                format!("unexpected skip for request {id}"),
            ),
        }
    }

    /// `Verified` ends a `Verify`'s stream.
    pub(super) fn push_verified(&mut self, id: u32, c: VerifyCounts) {
        self.push(&Frame::Verified {
            id,
            files: c.files,
            bytes: c.bytes,
            damaged: c.damaged,
            unchecked: c.unchecked,
        });
        self.end_stream(id);
    }

    /// `Done` ends a `List`'s or `Restore`'s stream.
    pub(super) fn push_done(&mut self, id: u32) {
        self.push(&Frame::Done { id });
        self.end_stream(id);
    }

    fn end_stream(&mut self, id: u32) {
        if self.state == (State::Streaming { id }) {
            self.state = State::Ready;
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Instant;

    use super::*;
    use crate::proto::{EntryKind, ListItem};
    use crate::server::command::Completion;
    use crate::server::session::SessionConfig;
    use crate::testing::frames::{bytes, hello, meta, wp};
    use crate::testing::server::{drain_commands, sent_frames, welcomed};
    use crate::testing::{Pair, RestoreEntry};

    #[test]
    fn large_files_are_offered_small_ones_sent() {
        assert_eq!(plan_file(0), FilePlan::Send);
        assert_eq!(plan_file(resume::RESUME_MIN - 1), FilePlan::Send);
        assert_eq!(plan_file(resume::RESUME_MIN), FilePlan::Offer);
        assert_eq!(plan_file(u64::MAX), FilePlan::Offer);
    }

    #[test]
    fn a_resume_reads_the_kept_bytes_first() {
        assert_eq!(plan_resume(0), ResumePlan::FromStart);
        assert_eq!(plan_resume(5), ResumePlan::ReadKept { len: 5 });
    }

    #[test]
    fn a_later_name_links_to_the_first_once_it_went_out_whole() {
        let mut m = LinkMemo::new();
        // One name only: never remembered.
        assert_eq!(m.file(&wp("solo"), None), None);
        m.sent(true);
        // The first name goes out as a file; until it ended well, a later
        // name goes out as a file too.
        assert_eq!(m.file(&wp("a/one"), Some((1, 7))), None);
        assert_eq!(m.remembered(), 0);
        m.sent(true);
        assert_eq!(m.remembered(), 1);
        assert_eq!(m.file(&wp("a/two"), Some((1, 7))), Some(wp("a/one")));
        assert_eq!(m.file(&wp("b/three"), Some((1, 7))), Some(wp("a/one")));
        // Another device, same inode number: another file.
        assert_eq!(m.file(&wp("c/x"), Some((2, 7))), None);
        m.sent(true);
        assert_eq!(m.file(&wp("c/y"), Some((2, 7))), Some(wp("c/x")));
        // A name whose copy went out bad is not a target: the next name
        // goes whole and becomes the first.
        assert_eq!(m.file(&wp("d/bad"), Some((1, 9))), None);
        m.sent(false);
        assert_eq!(m.file(&wp("d/good"), Some((1, 9))), None);
        m.sent(true);
        assert_eq!(m.file(&wp("d/later"), Some((1, 9))), Some(wp("d/good")));
        // A file that failed before its end (no `sent`) is forgotten by
        // the next file decided.
        assert_eq!(m.file(&wp("e/failed"), Some((1, 10))), None);
        assert_eq!(m.file(&wp("e/other"), None), None);
        m.sent(true);
        assert_eq!(m.file(&wp("e/again"), Some((1, 10))), None);
        // The restored path itself is never a target.
        let mut m = LinkMemo::new();
        assert_eq!(m.file(&WirePath::root(), Some((1, 1))), None);
        m.sent(true);
        assert_eq!(m.remembered(), 0);
    }

    #[test]
    fn only_the_first_files_of_a_restore_are_remembered() {
        let mut m = LinkMemo::new();
        for i in 0..MAX_RESTORE_LINKS as u64 - 1 {
            assert_eq!(m.file(&wp(&format!("f{i}")), None), None);
            m.sent(true);
        }
        // The last file that can be remembered, then one past the bound.
        assert_eq!(m.file(&wp("last"), Some((1, 1))), None);
        m.sent(true);
        assert_eq!(m.file(&wp("past"), Some((1, 2))), None);
        m.sent(true);
        assert_eq!(m.remembered(), 1);
        assert_eq!(m.file(&wp("last2"), Some((1, 1))), Some(wp("last")));
        // A later name of the file past the bound goes as a file.
        assert_eq!(m.file(&wp("past2"), Some((1, 2))), None);
        m.sent(true);
        assert_eq!(m.remembered(), 1);
    }

    #[test]
    fn at_most_the_bound_of_link_groups_is_remembered() {
        let mut m = LinkMemo::new();
        for i in 0..MAX_RESTORE_LINK_GROUPS as u64 {
            assert_eq!(m.file(&wp(&format!("f{i}")), Some((1, i))), None);
            m.sent(true);
        }
        assert_eq!(m.remembered(), MAX_RESTORE_LINK_GROUPS);
        // One more group: its first name is not remembered, so its later
        // names go as files; the groups remembered still link.
        assert_eq!(m.file(&wp("more"), Some((2, 0))), None);
        m.sent(true);
        assert_eq!(m.file(&wp("more2"), Some((2, 0))), None);
        m.sent(true);
        assert_eq!(m.file(&wp("again"), Some((1, 7))), Some(wp("f7")));
        assert_eq!(m.remembered(), MAX_RESTORE_LINK_GROUPS);
    }

    #[test]
    fn one_byte_at_a_time() {
        let now = Instant::now();
        let mut s = ServerSession::new(SessionConfig::default(), now, [0; 32]);
        let b = bytes(&[
            hello("a"),
            Frame::List {
                id: 1,
                path: WirePath::root(),
            },
        ]);
        let mut pending = Vec::new();
        for byte in b {
            pending.push(byte);
            let n = s.handle_input(now, &pending);
            pending.drain(..n);
        }
        assert!(pending.is_empty());
        assert_eq!(
            drain_commands(&mut s),
            vec![
                Command::OpenNamespace { name: "a".into() },
                Command::List {
                    id: 1,
                    path: WirePath::root(),
                    at: None,
                }
            ]
        );
        assert!(s.is_streaming());
        s.handle_completion(Completion::Listed {
            id: 1,
            item: ListItem {
                kind: EntryKind::File,
                name: b"f".to_vec(),
                meta: meta(),
                size: 3,
                target: vec![],
                rdev: 0,
            },
        });
        s.handle_completion(Completion::Done { id: 1 });
        assert!(!s.is_streaming());
        let out = sent_frames(&mut s);
        assert!(matches!(
            out[..],
            [
                Frame::Welcome { .. },
                Frame::ListEntry { id: 1, .. },
                Frame::Done { id: 1 }
            ]
        ));
    }

    /// Issue 11: an `At` applies to the `List` or `Restore` right after
    /// it, once; `Versions` streams; an `At` before anything else (a
    /// second `At` too) ends the connection with an error.
    #[test]
    fn an_at_applies_to_the_next_list_or_restore_only() {
        let now = Instant::now();
        let t = crate::proto::Time { secs: 7, nanos: 9 };
        let at = Frame::At { secs: 7, nanos: 9 };
        let mut s = welcomed(SessionConfig::default(), now);
        let b = bytes(&[
            at.clone(),
            Frame::List {
                id: 1,
                path: wp("a"),
            },
        ]);
        assert_eq!(s.handle_input(now, &b), b.len());
        let want = Command::List {
            id: 1,
            path: wp("a"),
            at: Some(t),
        };
        assert_eq!(drain_commands(&mut s), vec![want]);
        s.handle_completion(Completion::Done { id: 1 });
        // The next listing is of now again.
        let b = bytes(&[Frame::List {
            id: 2,
            path: wp("a"),
        }]);
        s.handle_input(now, &b);
        let want = Command::List {
            id: 2,
            path: wp("a"),
            at: None,
        };
        assert_eq!(drain_commands(&mut s), vec![want]);
        s.handle_completion(Completion::Done { id: 2 });
        let b = bytes(&[
            at.clone(),
            Frame::Restore {
                id: 3,
                path: wp("a"),
            },
        ]);
        s.handle_input(now, &b);
        let want = Command::Restore {
            id: 3,
            path: wp("a"),
            at: Some(t),
        };
        assert_eq!(drain_commands(&mut s), vec![want]);
        s.handle_completion(Completion::Done { id: 3 });
        let b = bytes(&[Frame::Versions {
            id: 4,
            path: wp("a"),
        }]);
        s.handle_input(now, &b);
        assert_eq!(
            drain_commands(&mut s),
            vec![Command::Versions {
                id: 4,
                path: wp("a")
            }]
        );
        assert!(s.is_streaming());
        s.handle_completion(Completion::Done { id: 4 });
        sent_frames(&mut s);
        for next in [
            at.clone(),
            Frame::Versions {
                id: 5,
                path: wp("a"),
            },
            Frame::Commit { id: 5 },
        ] {
            let mut s = welcomed(SessionConfig::default(), now);
            s.handle_input(now, &bytes(&[at.clone(), next.clone()]));
            assert_eq!(drain_commands(&mut s), vec![Command::Abort], "{next:?}");
            assert!(
                matches!(sent_frames(&mut s)[..], [.., Frame::Error { .. }]),
                "{next:?}"
            );
        }
    }

    /// A session streaming a restore (request 1) whose offer of `big`, 10
    /// bytes, waits for the client's answer.
    pub(in crate::server::session) fn offering(now: Instant) -> ServerSession {
        let mut s = welcomed(SessionConfig::default(), now);
        let b = bytes(&[Frame::Restore {
            id: 1,
            path: WirePath::root(),
        }]);
        assert_eq!(s.handle_input(now, &b), b.len());
        drain_commands(&mut s);
        s.handle_completion(Completion::Offered {
            id: 1,
            path: wp("big"),
            meta: meta(),
            size: 10,
        });
        s
    }

    #[test]
    fn a_want_must_answer_the_open_offer() {
        let now = Instant::now();
        for (want, closes) in [
            (Frame::Want { id: 1, offset: 4 }, false),
            (Frame::Want { id: 1, offset: 11 }, true),
            (Frame::Want { id: 2, offset: 0 }, true),
        ] {
            let mut s = welcomed(SessionConfig::default(), now);
            s.handle_input(
                now,
                &bytes(&[Frame::Restore {
                    id: 1,
                    path: WirePath::root(),
                }]),
            );
            drain_commands(&mut s);
            assert!(!s.wants_input(), "no frames while streaming");
            s.handle_completion(Completion::Offered {
                id: 1,
                path: wp("big"),
                meta: meta(),
                size: 10,
            });
            assert!(s.is_offering() && s.wants_input());
            s.handle_input(now, &bytes(&[want]));
            assert_eq!(s.is_closing(), closes);
            if !closes {
                assert_eq!(
                    drain_commands(&mut s),
                    vec![Command::SendFrom { id: 1, offset: 4 }]
                );
                assert!(!s.is_offering() && !s.wants_input());
            }
        }
    }

    #[test]
    fn a_skip_answers_the_open_offer_and_nothing_of_the_file_is_sent() {
        let now = Instant::now();
        for (skip, closes) in [
            (Frame::Skip { id: 1 }, false),
            (Frame::Skip { id: 2 }, true),
        ] {
            let mut s = offering(now);
            s.handle_input(now, &bytes(&[skip]));
            assert_eq!(s.is_closing(), closes);
            if !closes {
                assert_eq!(drain_commands(&mut s), vec![Command::SkipOffer { id: 1 }]);
                assert!(!s.is_offering() && s.is_streaming());
            }
        }
        // No offer open: a skip is a protocol error.
        let mut s = welcomed(SessionConfig::default(), now);
        s.handle_input(
            now,
            &bytes(&[Frame::Restore {
                id: 1,
                path: WirePath::root(),
            }]),
        );
        drain_commands(&mut s);
        s.handle_input(now, &bytes(&[Frame::Skip { id: 1 }]));
        assert!(drain_commands(&mut s).is_empty());
    }

    #[test]
    fn a_skip_behind_pipelined_requests_still_answers_the_offer() {
        let now = Instant::now();
        let mut s = offering(now);
        let list = bytes(&[Frame::List {
            id: 2,
            path: WirePath::root(),
        }]);
        let mut input = list.clone();
        input.extend_from_slice(&bytes(&[Frame::Skip { id: 1 }]));
        assert_eq!(s.handle_input(now, &input), input.len());
        assert!(!s.is_closing());
        assert_eq!(drain_commands(&mut s), vec![Command::SkipOffer { id: 1 }]);
        s.handle_completion(Completion::Done { id: 1 });
        assert_eq!(s.take_read_ahead(), Some(list));
    }

    #[test]
    fn requests_read_behind_an_offer_are_bounded_and_come_back_in_order() {
        use crate::server::session::MAX_READ_AHEAD;
        let now = Instant::now();
        // A list and a file with its body, then the want: the want is
        // answered, the rest comes back once the stream ended.
        let mut s = offering(now);
        let want = bytes(&[Frame::Want { id: 1, offset: 0 }]);
        let mut input = bytes(&[
            Frame::List {
                id: 2,
                path: WirePath::root(),
            },
            Frame::File {
                id: 3,
                path: wp("f"),
                meta: meta(),
                size: want.len() as u64,
                layout: Default::default(),
            },
        ]);
        // The body holds the bytes of a want: it is a body all the same.
        input.extend_from_slice(&want);
        let ahead = input.clone();
        input.extend_from_slice(&want);
        assert_eq!(s.handle_input(now, &input), input.len());
        assert_eq!(
            drain_commands(&mut s),
            vec![Command::SendFrom { id: 1, offset: 0 }]
        );
        assert_eq!(s.take_read_ahead(), None, "not before the stream ended");
        s.handle_completion(Completion::Done { id: 1 });
        let back = s.take_read_ahead().expect("read ahead");
        assert_eq!(back, ahead);
        assert_eq!(s.take_read_ahead(), None);

        // More than the bound before the want closes the connection.
        let mut s = offering(now);
        let list = bytes(&[Frame::List {
            id: 2,
            path: WirePath::root(),
        }]);
        let mut id = 2;
        let mut sent = 0;
        while sent <= MAX_READ_AHEAD && !s.is_closing() {
            let f = bytes(&[Frame::List {
                id,
                path: WirePath::root(),
            }]);
            s.handle_input(now, &f);
            id += 1;
            sent += list.len();
        }
        assert!(s.is_closing());
        assert!(s
            .error()
            .is_some_and(|e| e.contains("pipelined behind an offer")));
    }

    #[test]
    fn a_restored_link_reaches_the_client_as_a_link_event_with_no_body() {
        let mut pair = Pair::new(SessionConfig::default(), "laptop");
        pair.server.shell.restore = vec![
            RestoreEntry::File {
                path: wp("a/one"),
                meta: meta(),
                body: b"abc".to_vec(),
            },
            RestoreEntry::Link {
                path: wp("b/two"),
                target: wp("a/one"),
                meta: meta(),
                size: 3,
            },
            RestoreEntry::Dir {
                path: WirePath::root(),
                meta: meta(),
            },
        ];
        let id = pair.client.session.send_restore(WirePath::root());
        pair.drive().expect("quiescent");
        assert!(pair.client.session.error().is_none());
        assert_eq!(pair.client.bodies, vec![b"abc".to_vec()]);
        assert!(pair
            .client
            .events
            .contains(&crate::client::session::Event::Link {
                id,
                path: wp("b/two"),
                target: wp("a/one"),
                meta: meta(),
                size: 3,
            }));
    }

    #[test]
    fn a_restore_resumes_an_offered_file_from_the_clients_offset() {
        let mut pair = Pair::new(SessionConfig::default(), "laptop");
        let big: Vec<u8> = (0..resume::RESUME_MIN + 10).map(|i| i as u8).collect();
        pair.server.shell.restore = vec![
            RestoreEntry::File {
                path: wp("small"),
                meta: meta(),
                body: b"abc".to_vec(),
            },
            RestoreEntry::File {
                path: wp("big"),
                meta: meta(),
                body: big.clone(),
            },
            RestoreEntry::Dir {
                path: WirePath::root(),
                meta: meta(),
            },
        ];
        pair.client.wants.insert(wp("big"), 7);
        let id = pair.client.session.send_restore(WirePath::root());
        pair.drive().expect("quiescent");
        assert!(pair
            .server
            .shell
            .commands
            .contains(&Command::SendFrom { id, offset: 7 }));
        assert_eq!(pair.client.bodies, vec![b"abc".to_vec(), big[7..].to_vec()]);
        assert!(pair
            .client
            .events
            .iter()
            .any(|e| matches!(e, crate::client::session::Event::Done { id: d } if *d == id)));
        assert!(pair.client.session.error().is_none());
    }
}
