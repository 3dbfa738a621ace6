//! The receiving half of a backup, as the session sees it: the batch limits,
//! the names a client may not write, the requests that stage entries
//! (`Dir`, `Symlink`, `File`/`FileFrom` and their `FileEnd`, `Manifest`,
//! `Commit`), and the verdict on a received body.
//!
//! Pure: the shell moves the bytes and stages the files; this file decides
//! what is refused, and [`body_verdict`] decides whether a body the shell
//! received is kept. It must not touch a socket, a file or a clock.

use super::{ServerSession, State};
use crate::proto::{self, EntryKind, ErrorCode, Layout, ManifestEntry, Meta, WirePath};
use crate::server::command::{Command, FromBasis, Received};

/// What the shell staged for the file whose `EndFile` it carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staged {
    /// Size of the whole file.
    pub size: u64,
    /// Bytes kept from an interrupted transfer (the body started here).
    pub offset: u64,
    /// crc32c of the kept bytes.
    pub kept_crc: u32,
}

/// Whether a received file is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Good: keep it, recording the sender's crc32c.
    Keep,
    /// Bad: discard it and tell the client why.
    Discard(String),
}

/// Decides whether the file staged as `staged` is kept, given the sender's
/// `FileEnd` (`crc`, `ok`) and what the shell `received` of its body
/// (`None`: nothing was moved).
#[must_use]
pub fn body_verdict(crc: u32, ok: bool, received: Option<Received>, staged: Staged) -> Verdict {
    // An empty body never reaches the receiver: the crc32c is that of what
    // was kept.
    let body = received.or_else(|| {
        (staged.size == staged.offset).then_some(Received {
            crc: staged.kept_crc,
            write_error: None,
        })
    });
    match body {
        None => Verdict::Discard("internal error: no body".to_string()),
        Some(Received {
            write_error: Some(e),
            ..
        }) => Verdict::Discard(format!("write: {e}")),
        Some(_) if !ok => Verdict::Discard("the file changed while it was being sent".to_string()),
        Some(Received { crc: got, .. }) if got != crc => Verdict::Discard(format!(
            "crc32c mismatch (sent {crc:08x}, received {got:08x})"
        )),
        Some(_) => Verdict::Keep,
    }
}

/// Why a write to `path` is refused, if it is: a read-only server takes
/// none, and no client may write a name reserved for temporary files.
#[must_use]
pub fn write_refusal(read_only: bool, path: &WirePath) -> Option<&'static str> {
    if read_only {
        return Some("server is read-only");
    }
    reserved_refusal(path)
}

/// Why `path` is refused for any request, if it is: names beginning with
/// `.rsb-tmp.` belong to the store's staging and partials.
#[must_use]
pub fn reserved_refusal(path: &WirePath) -> Option<&'static str> {
    path.is_reserved()
        .then_some(crate::proto::path::RESERVED_MESSAGE)
}

/// The entries staged since the last `Commit`. The shell keeps every staged
/// path until the commit, so both their count and the bytes of their paths
/// are bounded.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Batch {
    entries: u32,
    path_bytes: usize,
}

impl Batch {
    /// Counts one more entry; the message is the protocol error past the
    /// limits.
    fn count(&mut self, path: &WirePath) -> Result<(), String> {
        self.entries = self.entries.saturating_add(1);
        self.path_bytes = self.path_bytes.saturating_add(path.as_bytes().len());
        if self.entries > proto::MAX_BATCH || self.path_bytes > proto::MAX_BATCH_PATH_BYTES {
            return Err(format!(
                "more than {} entries or {} bytes of paths without a commit",
                proto::MAX_BATCH,
                proto::MAX_BATCH_PATH_BYTES
            ));
        }
        Ok(())
    }
}

impl ServerSession {
    /// Counts an entry toward the batch limits; false (and closing) past
    /// them.
    pub(super) fn count_entry(&mut self, path: &WirePath) -> bool {
        match self.batch.count(path) {
            Ok(()) => true,
            Err(message) => {
                self.fail(ErrorCode::Unexpected, message);
                false
            }
        }
    }

    /// Refuses (with `Failed`) a write on a read-only server or to a name
    /// reserved for temporary files. True when refused.
    pub(super) fn refuse_write(&mut self, id: u32, path: &WirePath) -> bool {
        match write_refusal(self.config.read_only, path) {
            Some(why) => {
                self.push_failed(id, path.clone(), why.into());
                true
            }
            None => false,
        }
    }

    /// Refuses (with `Failed`) a request for a reserved name. True when
    /// refused.
    pub(super) fn refuse_reserved(&mut self, id: u32, path: &WirePath) -> bool {
        match reserved_refusal(path) {
            Some(why) => {
                self.push_failed(id, path.clone(), why.into());
                true
            }
            None => false,
        }
    }

    /// `Dir`: staged by the shell, its meta applied at the commit.
    pub(super) fn handle_dir(&mut self, id: u32, path: WirePath, meta: Meta) {
        if self.check_id(id) && self.count_entry(&path) && !self.refuse_write(id, &path) {
            self.commands.push_back(Command::Mkdir { id, path, meta });
        }
    }

    /// `Symlink`: never the namespace root.
    pub(super) fn handle_symlink(&mut self, id: u32, path: WirePath, target: Vec<u8>, meta: Meta) {
        if !(self.check_id(id) && self.count_entry(&path)) || self.refuse_write(id, &path) {
            return;
        }
        if path.is_root() {
            self.push_failed(id, path, "the namespace root cannot be a symlink".into());
        } else {
            self.commands.push_back(Command::Symlink {
                id,
                path,
                target,
                meta,
            });
        }
    }

    /// `Special`: a FIFO, socket or device; never the namespace root.
    pub(super) fn handle_special(
        &mut self,
        id: u32,
        path: WirePath,
        kind: EntryKind,
        rdev: u64,
        meta: Meta,
    ) {
        if !(self.check_id(id) && self.count_entry(&path)) || self.refuse_write(id, &path) {
            return;
        }
        if path.is_root() {
            self.push_failed(id, path, "the namespace root must be a directory".into());
        } else {
            self.commands.push_back(Command::Special {
                id,
                path,
                kind,
                rdev,
                meta,
            });
        }
    }

    /// `Link`: another name of a stored regular file; never the namespace
    /// root, never a link to itself (the codec refuses that).
    pub(super) fn handle_link(
        &mut self,
        id: u32,
        path: WirePath,
        target: WirePath,
        meta: Meta,
        size: u64,
    ) {
        if !(self.check_id(id) && self.count_entry(&path)) || self.refuse_write(id, &path) {
            return;
        }
        if path.is_root() {
            self.push_failed(id, path, "the namespace root must be a directory".into());
        } else if let Some(why) = reserved_refusal(&target) {
            // A temporary name (a partial another connection writes) is
            // no file to give a second name.
            self.push_failed(id, path, format!("link target: {why}"));
        } else {
            self.commands.push_back(Command::Link {
                id,
                path,
                target,
                meta,
                size,
            });
        }
    }

    /// `Update`: the metadata of a stored file or link, applied in place at
    /// the commit; counted in the batch like a link (no body), refused as
    /// any write is, never the namespace root.
    pub(super) fn handle_update(
        &mut self,
        id: u32,
        path: WirePath,
        kind: EntryKind,
        meta: Meta,
        size: u64,
    ) {
        if !(self.check_id(id) && self.count_entry(&path)) || self.refuse_write(id, &path) {
            return;
        }
        if path.is_root() {
            self.push_failed(id, path, "the namespace root is a directory".into());
        } else {
            self.commands.push_back(Command::Update {
                id,
                path,
                kind,
                meta,
                size,
            });
        }
    }

    /// A file header: `size` bytes in all, the body carrying `offset..size`.
    /// A refused file's body is still read (and dropped by the shell), so
    /// the stream stays in step.
    pub(super) fn handle_file(
        &mut self,
        id: u32,
        path: WirePath,
        meta: Meta,
        size: u64,
        offset: u64,
        layout: Layout,
    ) {
        self.begin_file(id, path, meta, size, offset, layout, None);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn begin_file(
        &mut self,
        id: u32,
        path: WirePath,
        meta: Meta,
        size: u64,
        offset: u64,
        layout: Layout,
        delta: Option<Box<FromBasis>>,
    ) {
        if !(self.check_id(id) && self.count_entry(&path)) {
            return;
        }
        let mut accepted = !self.refuse_write(id, &path);
        if accepted && path.is_root() {
            self.push_failed(
                id,
                path.clone(),
                "the namespace root cannot be a file".into(),
            );
            accepted = false;
        }
        // The codec guarantees offset <= size and extents inside it.
        let body = layout.body_len(size, offset);
        let sparse = layout.is_sparse();
        if accepted {
            self.commands.push_back(Command::BeginFile {
                id,
                path: path.clone(),
                meta,
                size,
                offset,
                layout,
                delta,
            });
        }
        // A sparse body of no bytes still goes through the shell: its
        // crc32c is that of the holes it leaves (a delta's layout is
        // sparse: the shell reads the whole result back for its crc32c).
        self.state = if body == 0 && !sparse {
            // Nothing to move: go straight to waiting for FileEnd.
            State::AwaitFileEnd {
                id,
                path,
                accepted,
                received: None,
            }
        } else {
            State::Body {
                id,
                path,
                size: body,
                accepted,
            }
        };
    }

    /// The shell moved the body: its `FileEnd` must come next.
    pub(super) fn handle_body_received(&mut self, received: Received) {
        if let State::Body {
            id, path, accepted, ..
        } = std::mem::replace(&mut self.state, State::Ready)
        {
            self.state = State::AwaitFileEnd {
                id,
                path,
                accepted,
                received: Some(received),
            };
        }
    }

    /// The `FileEnd` after a body (the state is `AwaitFileEnd`).
    pub(super) fn handle_file_end(&mut self, id: u32, crc: u32, ok: bool) {
        let State::AwaitFileEnd {
            id: want,
            path,
            accepted,
            received,
        } = std::mem::replace(&mut self.state, State::Ready)
        else {
            return;
        };
        if id != want {
            self.fail(
                ErrorCode::Unexpected,
                format!("file end for id {id}, expected {want}"),
            );
        } else if accepted {
            self.commands.push_back(Command::EndFile {
                id,
                path,
                crc,
                ok,
                received,
            });
        }
    }

    /// `Manifest`: the shell compares it with the store.
    pub(super) fn handle_manifest(&mut self, id: u32, entries: Vec<ManifestEntry>) {
        if self.check_id(id) {
            self.note_listed(&entries);
            self.commands.push_back(Command::Check { id, entries });
        }
    }

    /// `Commit`: the batch limits start again.
    pub(super) fn handle_commit(&mut self, id: u32) {
        if self.check_id(id) {
            self.batch = Batch::default();
            self.listed_committed();
            self.commands.push_back(Command::Commit { id });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::proto::Frame;
    use crate::server::command::Completion;
    use crate::server::session::SessionConfig;
    use crate::testing::frames::{bytes, hello, meta, wp};
    use crate::testing::server::{drain_commands, sent_frames, welcomed};

    fn staged(size: u64, offset: u64, kept_crc: u32) -> Staged {
        Staged {
            size,
            offset,
            kept_crc,
        }
    }

    fn received(crc: u32) -> Option<Received> {
        Some(Received {
            crc,
            write_error: None,
        })
    }

    #[test]
    fn a_body_is_kept_when_its_crc_matches_and_the_sender_read_it_whole() {
        assert_eq!(
            body_verdict(7, true, received(7), staged(5, 0, 0)),
            Verdict::Keep
        );
        assert_eq!(
            body_verdict(7, true, received(8), staged(5, 0, 0)),
            Verdict::Discard("crc32c mismatch (sent 00000007, received 00000008)".into())
        );
        assert_eq!(
            body_verdict(7, false, received(7), staged(5, 0, 0)),
            Verdict::Discard("the file changed while it was being sent".into())
        );
    }

    #[test]
    fn a_write_error_discards_the_body_whatever_the_crc() {
        let r = Some(Received {
            crc: 7,
            write_error: Some("No space left on device".into()),
        });
        assert_eq!(
            body_verdict(7, false, r, staged(5, 0, 0)),
            Verdict::Discard("write: No space left on device".into())
        );
    }

    #[test]
    fn an_empty_body_is_checked_against_the_kept_bytes() {
        // Nothing left to send of a resumed file: the kept part is it.
        assert_eq!(body_verdict(9, true, None, staged(5, 5, 9)), Verdict::Keep);
        assert_eq!(
            body_verdict(9, true, None, staged(0, 0, 0)),
            Verdict::Discard("crc32c mismatch (sent 00000009, received 00000000)".into())
        );
        // A body that should have come and did not.
        assert_eq!(
            body_verdict(9, true, None, staged(5, 0, 0)),
            Verdict::Discard("internal error: no body".into())
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(write_refusal(true, &wp("a")), Some("server is read-only"));
        assert_eq!(write_refusal(false, &wp("a")), None);
        assert!(write_refusal(false, &wp("a/.rsb-tmp.1")).is_some());
        assert!(reserved_refusal(&wp(".rsb-tmp.x/f")).is_some());
        assert_eq!(reserved_refusal(&WirePath::root()), None);
    }

    #[test]
    fn handshake_then_pipelined_backup() {
        let now = Instant::now();
        let mut s = welcomed(SessionConfig::default(), now);
        let b = bytes(&[
            Frame::Dir {
                id: 1,
                path: wp("home"),
                meta: meta(),
            },
            Frame::Symlink {
                id: 2,
                path: wp("home/l"),
                target: b"x".to_vec(),
                meta: meta(),
            },
            Frame::File {
                id: 3,
                path: wp("home/f"),
                meta: meta(),
                size: 5,
                layout: Default::default(),
            },
        ]);
        let mut all = b.clone();
        all.extend_from_slice(b"hello");
        let used = s.handle_input(now, &all);
        assert_eq!(used, b.len(), "stops at the body");
        assert_eq!(s.wants_body(), Some(5));
        assert!(!s.wants_input());
        let cmds = drain_commands(&mut s);
        assert_eq!(cmds.len(), 3);
        assert!(matches!(
            &cmds[2],
            Command::BeginFile { id: 3, size: 5, .. }
        ));
        s.handle_completion(Completion::BodyReceived(Received {
            crc: 7,
            write_error: None,
        }));
        let b = bytes(&[
            Frame::FileEnd {
                id: 3,
                crc: 7,
                ok: true,
            },
            Frame::Commit { id: 4 },
        ]);
        assert_eq!(s.handle_input(now, &b), b.len());
        assert_eq!(
            drain_commands(&mut s),
            vec![
                Command::EndFile {
                    id: 3,
                    path: wp("home/f"),
                    crc: 7,
                    ok: true,
                    received: received(7),
                },
                Command::Commit { id: 4 }
            ]
        );
        s.handle_completion(Completion::Committed { id: 4 });
        assert_eq!(sent_frames(&mut s), vec![Frame::Committed { id: 4 }]);
    }

    #[test]
    fn read_only_refuses_writes_but_still_skips_bodies() {
        let now = Instant::now();
        let mut s = ServerSession::new(
            SessionConfig {
                read_only: true,
                ..SessionConfig::default()
            },
            now,
            [0; 32],
        );
        s.handle_input(now, &bytes(&[hello("a")]));
        drain_commands(&mut s);
        sent_frames(&mut s);
        let b = bytes(&[Frame::File {
            id: 1,
            path: wp("f"),
            meta: meta(),
            size: 3,
            layout: Default::default(),
        }]);
        s.handle_input(now, &b);
        assert_eq!(s.wants_body(), Some(3));
        s.handle_completion(Completion::BodyReceived(Received {
            crc: 0,
            write_error: None,
        }));
        s.handle_input(
            now,
            &bytes(&[
                Frame::FileEnd {
                    id: 1,
                    crc: 0,
                    ok: true,
                },
                Frame::Dir {
                    id: 2,
                    path: wp("d"),
                    meta: meta(),
                },
            ]),
        );
        assert!(drain_commands(&mut s).is_empty());
        let out = sent_frames(&mut s);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(
            |f| matches!(f, Frame::Failed { message, .. } if message == "server is read-only")
        ));
    }

    #[test]
    fn batch_limit_is_enforced() {
        let now = Instant::now();
        let mut s = welcomed(SessionConfig::default(), now);
        let frames: Vec<Frame> = (1..=proto::MAX_BATCH + 1)
            .map(|id| Frame::Dir {
                id,
                path: wp("d"),
                meta: meta(),
            })
            .collect();
        s.handle_input(now, &bytes(&frames));
        assert!(s.is_closing());
    }

    #[test]
    fn batch_path_bytes_are_bounded() {
        let now = Instant::now();
        let mut s = welcomed(SessionConfig::default(), now);
        let long = "d/".repeat(1000) + "x";
        let n = proto::MAX_BATCH_PATH_BYTES / long.len() + 1;
        let frames: Vec<Frame> = (1..=n as u32)
            .map(|id| Frame::Dir {
                id,
                path: wp(&long),
                meta: meta(),
            })
            .collect();
        s.handle_input(now, &bytes(&frames));
        assert!(s.is_closing());
        // A commit in time resets the count.
        let mut s = welcomed(SessionConfig::default(), now);
        let half = n as u32 / 2;
        let mut frames: Vec<Frame> = (1..=half)
            .map(|id| Frame::Dir {
                id,
                path: wp(&long),
                meta: meta(),
            })
            .collect();
        frames.push(Frame::Commit { id: half + 1 });
        frames.extend((half + 2..=n as u32 + 1).map(|id| Frame::Dir {
            id,
            path: wp(&long),
            meta: meta(),
        }));
        s.handle_input(now, &bytes(&frames));
        assert!(!s.is_closing());
    }

    #[test]
    fn reserved_temporary_names_are_refused() {
        let now = Instant::now();
        let mut s = welcomed(SessionConfig::default(), now);
        let b = bytes(&[
            Frame::Dir {
                id: 1,
                path: wp("a/.rsb-tmp.1.2"),
                meta: meta(),
            },
            Frame::File {
                id: 2,
                path: wp(".rsb-tmp.x/f"),
                meta: meta(),
                size: 0,
                layout: Default::default(),
            },
            Frame::FileEnd {
                id: 2,
                crc: 0,
                ok: true,
            },
            Frame::List {
                id: 3,
                path: wp(".rsb-tmp.y"),
            },
            Frame::Restore {
                id: 4,
                path: wp("b/.rsb-tmp.z"),
            },
        ]);
        assert_eq!(s.handle_input(now, &b), b.len());
        assert!(drain_commands(&mut s).is_empty());
        let out = sent_frames(&mut s);
        assert_eq!(
            out.iter()
                .filter(|f| matches!(f, Frame::Failed { .. }))
                .count(),
            4,
            "{out:?}"
        );
        assert!(!s.is_closing() && !s.is_streaming());
    }

    #[test]
    fn root_cannot_become_a_file_or_link() {
        let now = Instant::now();
        let mut s = welcomed(SessionConfig::default(), now);
        s.handle_input(
            now,
            &bytes(&[
                Frame::File {
                    id: 1,
                    path: WirePath::root(),
                    meta: meta(),
                    size: 0,
                    layout: Default::default(),
                },
                Frame::FileEnd {
                    id: 1,
                    crc: 0,
                    ok: true,
                },
            ]),
        );
        assert!(drain_commands(&mut s).is_empty());
        assert!(matches!(
            sent_frames(&mut s)[..],
            [Frame::Failed { id: 1, .. }]
        ));
        assert!(!s.is_closing());
    }

    #[test]
    fn a_special_is_staged_and_never_the_root() {
        let now = Instant::now();
        let mut s = welcomed(SessionConfig::default(), now);
        let special = |id, path| Frame::Special {
            id,
            path,
            kind: EntryKind::BlockDev,
            rdev: 0x700,
            meta: meta(),
        };
        s.handle_input(
            now,
            &bytes(&[special(1, WirePath::root()), special(2, wp("dev/loop0"))]),
        );
        assert!(matches!(
            &drain_commands(&mut s)[..],
            [Command::Special {
                id: 2,
                kind: EntryKind::BlockDev,
                rdev: 0x700,
                ..
            }]
        ));
        assert!(matches!(
            sent_frames(&mut s)[..],
            [Frame::Failed { id: 1, .. }]
        ));
        assert!(!s.is_closing());
    }

    /// A partial another connection is writing is no file to link to.
    #[test]
    fn a_link_to_a_reserved_temporary_name_is_refused() {
        let now = Instant::now();
        let mut s = welcomed(SessionConfig::default(), now);
        s.handle_input(
            now,
            &bytes(&[Frame::Link {
                id: 1,
                path: wp("b/g"),
                target: wp("a/.rsb-tmp.part.f"),
                meta: meta(),
                size: 3,
            }]),
        );
        assert!(drain_commands(&mut s).is_empty());
        let sent = sent_frames(&mut s);
        assert!(
            matches!(&sent[..], [Frame::Failed { id: 1, message, .. }] if message.contains("link target")),
            "{sent:?}"
        );
        assert!(!s.is_closing());
    }

    #[test]
    fn a_link_is_staged_and_never_the_root() {
        let now = Instant::now();
        let mut s = welcomed(SessionConfig::default(), now);
        let link = |id, path| Frame::Link {
            id,
            path,
            target: wp("a/f"),
            meta: meta(),
            size: 3,
        };
        s.handle_input(
            now,
            &bytes(&[link(1, WirePath::root()), link(2, wp("b/g"))]),
        );
        let cmds = drain_commands(&mut s);
        assert!(
            matches!(
                &cmds[..],
                [Command::Link { id: 2, path, target, size: 3, .. }]
                    if *path == wp("b/g") && *target == wp("a/f")
            ),
            "{cmds:?}"
        );
        assert!(matches!(
            sent_frames(&mut s)[..],
            [Frame::Failed { id: 1, .. }]
        ));
        assert!(!s.is_closing());
    }

    fn update(id: u32, path: WirePath) -> Frame {
        Frame::Update {
            id,
            path,
            kind: EntryKind::File,
            meta: meta(),
            size: 2 << 20,
        }
    }

    /// Issue 10: an `Update` is staged with its fields; the root and
    /// reserved names are refused with `Failed`, the connection goes on.
    #[test]
    fn an_update_is_staged_and_never_the_root_or_a_reserved_name() {
        let now = Instant::now();
        let mut s = welcomed(SessionConfig::default(), now);
        s.handle_input(
            now,
            &bytes(&[
                update(1, WirePath::root()),
                update(2, wp("a/.rsb-tmp.part.f")),
                update(3, wp("a/f")),
                Frame::Commit { id: 4 },
            ]),
        );
        let cmds = drain_commands(&mut s);
        assert!(
            matches!(
                &cmds[..],
                [
                    Command::Update { id: 3, path, kind: EntryKind::File, size, .. },
                    Command::Commit { id: 4 },
                ] if *path == wp("a/f") && *size == 2 << 20
            ),
            "{cmds:?}"
        );
        let sent = sent_frames(&mut s);
        assert!(
            matches!(
                &sent[..],
                [Frame::Failed { id: 1, .. }, Frame::Failed { id: 2, .. }]
            ),
            "{sent:?}"
        );
        assert!(!s.is_closing());
    }

    /// A read-only server refuses an `Update` as any write, by name.
    #[test]
    fn a_read_only_server_refuses_updates() {
        let now = Instant::now();
        let config = SessionConfig {
            read_only: true,
            ..SessionConfig::default()
        };
        let mut s = ServerSession::new(config, now, [0; 32]);
        s.handle_input(now, &bytes(&[hello("a")]));
        drain_commands(&mut s);
        sent_frames(&mut s);
        s.handle_input(now, &bytes(&[update(1, wp("a/f"))]));
        assert!(drain_commands(&mut s).is_empty());
        let sent = sent_frames(&mut s);
        assert!(
            matches!(&sent[..], [Frame::Failed { id: 1, path, message }]
                if message == "server is read-only" && *path == wp("a/f")),
            "{sent:?}"
        );
        assert!(!s.is_closing());
    }

    /// Updates count against the batch limits as links do: one past
    /// [`proto::MAX_BATCH`] without a commit ends the connection, a commit
    /// in time resets the count.
    #[test]
    fn updates_count_against_the_batch_limit() {
        let now = Instant::now();
        let mut s = welcomed(SessionConfig::default(), now);
        let frames: Vec<Frame> = (1..=proto::MAX_BATCH + 1)
            .map(|id| update(id, wp("f")))
            .collect();
        s.handle_input(now, &bytes(&frames));
        assert!(s.is_closing());
        let mut s = welcomed(SessionConfig::default(), now);
        let mut frames: Vec<Frame> = (1..=proto::MAX_BATCH)
            .map(|id| update(id, wp("f")))
            .collect();
        frames.push(Frame::Commit {
            id: proto::MAX_BATCH + 1,
        });
        frames.push(update(proto::MAX_BATCH + 2, wp("f")));
        s.handle_input(now, &bytes(&frames));
        assert!(!s.is_closing());
        // Path bytes too.
        let mut s = welcomed(SessionConfig::default(), now);
        let long = "d/".repeat(1000) + "x";
        let n = proto::MAX_BATCH_PATH_BYTES / long.len() + 1;
        let frames: Vec<Frame> = (1..=n as u32).map(|id| update(id, wp(&long))).collect();
        s.handle_input(now, &bytes(&frames));
        assert!(s.is_closing());
    }

    /// Issue 10: an entry's attributes are kept for it, and must come
    /// right before it; a read-only server keeps none.
    #[test]
    fn xattrs_go_with_the_entry_that_follows_them() {
        let now = Instant::now();
        let attrs =
            crate::proto::xattrs::Xattrs::from_pairs(vec![(b"user.a".to_vec(), b"1".to_vec())])
                .expect("valid");
        let xattrs = |id, path| Frame::Xattrs {
            id,
            path,
            attrs: attrs.clone(),
        };
        let mut s = welcomed(SessionConfig::default(), now);
        s.handle_input(
            now,
            &bytes(&[
                xattrs(1, wp("d")),
                Frame::Dir {
                    id: 1,
                    path: wp("d"),
                    meta: meta(),
                },
            ]),
        );
        let cmds = drain_commands(&mut s);
        assert!(
            matches!(&cmds[..], [Command::Xattrs { path, .. }, Command::Mkdir { id: 1, .. }] if *path == wp("d")),
            "{cmds:?}"
        );
        assert!(!s.is_closing());

        // Anything else next (another id, another kind) breaks the protocol.
        for next in [
            Frame::Dir {
                id: 3,
                path: wp("d"),
                meta: meta(),
            },
            Frame::Symlink {
                id: 2,
                path: wp("d"),
                target: b"t".to_vec(),
                meta: meta(),
            },
            Frame::Commit { id: 2 },
        ] {
            let mut s = welcomed(SessionConfig::default(), now);
            s.handle_input(now, &bytes(&[xattrs(2, wp("d")), next]));
            assert!(s.is_closing(), "accepted");
            assert!(s
                .error()
                .is_some_and(|e| e.contains("not followed by its file or directory")));
        }

        // Read-only: nothing is kept, the entry is refused as ever.
        let cfg = SessionConfig {
            read_only: true,
            ..SessionConfig::default()
        };
        let mut s = ServerSession::new(cfg, now, [0; 32]);
        s.handle_input(now, &bytes(&[hello("a")]));
        drain_commands(&mut s);
        sent_frames(&mut s);
        s.handle_input(
            now,
            &bytes(&[
                xattrs(1, wp("d")),
                Frame::Dir {
                    id: 1,
                    path: wp("d"),
                    meta: meta(),
                },
            ]),
        );
        assert!(drain_commands(&mut s).is_empty());
        assert!(!s.is_closing());
    }
}
