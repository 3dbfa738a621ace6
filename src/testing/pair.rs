//! Sessions wired together in memory: a [`Pair`] is one connection (a
//! server end and a client end), a [`Net`] several on one clock. Driving
//! them is bounded: after a set number of steps that still made progress,
//! the drive stops and says so ([`NotQuiescent`]) rather than spin.

use std::fmt;

use super::client::ClientEnd;
use super::clock::Clock;
use super::server::ServerEnd;
use crate::client::session::ClientAuth;
use crate::proto;
use crate::server::session::SessionConfig;

/// Steps [`Pair::drive`] and [`Net::drive`] take at most.
pub const MAX_STEPS: usize = 10_000;

/// A drive ran out of steps while something still moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotQuiescent {
    /// The steps taken.
    pub steps: usize,
    /// What was still going on, for the failure message.
    pub state: String,
}

impl fmt::Display for NotQuiescent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not quiet after {} steps: {}", self.steps, self.state)
    }
}

impl std::error::Error for NotQuiescent {}

/// One connection: a server session (with its fake shell) and a client
/// session, byte for byte, on a shared [`Clock`].
pub struct Pair {
    /// The time both ends read.
    pub clock: Clock,
    /// The server's end.
    pub server: ServerEnd,
    /// The client's end.
    pub client: ClientEnd,
    /// Bytes moved each way per step (`usize::MAX`: all there are), to
    /// cut the streams into pieces as a network does.
    pub mtu: usize,
    /// The server hung up and the client was told.
    closed: bool,
}

impl Pair {
    /// A connection on a clock of its own: a server with `config` (and an
    /// all-zero challenge) and a client called `name` without a secret.
    pub fn new(config: SessionConfig, name: &str) -> Pair {
        Pair::on(&Clock::new(), config, [0; proto::NONCE_LEN], name, None)
    }

    /// A connection on `clock`, opened at its current time.
    pub fn on(
        clock: &Clock,
        config: SessionConfig,
        nonce: [u8; proto::NONCE_LEN],
        name: &str,
        auth: Option<ClientAuth>,
    ) -> Pair {
        let now = clock.now();
        Pair {
            clock: clock.clone(),
            server: ServerEnd::new(config, now, nonce),
            client: ClientEnd::new(name, auth, now),
            mtu: usize::MAX,
            closed: false,
        }
    }

    /// True once the server hung up.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// One step: bytes moved each way (at most [`Self::mtu`]), then each
    /// end stepped, then the hang-up delivered once the server closed and
    /// its last bytes were read. True when anything happened.
    pub fn step(&mut self) -> bool {
        let now = self.clock.now();
        let mut progress = carry(&mut self.client.outbox, &mut self.server.inbox, self.mtu);
        progress |= carry(&mut self.server.outbox, &mut self.client.inbox, self.mtu);
        progress |= self.server.step(now);
        progress |= self.client.step(now);
        let s = &self.server;
        if !self.closed
            && s.session.is_closing()
            && s.session.poll_transmit().is_empty()
            && s.outbox.is_empty()
            && (self.client.inbox.is_empty() || self.client.session.is_closed())
        {
            self.closed = true;
            self.client.handle_eof(now);
            progress = true;
        }
        progress
    }

    /// Steps until nothing moves, at most [`MAX_STEPS`] times; returns the
    /// steps that made progress.
    pub fn drive(&mut self) -> Result<usize, NotQuiescent> {
        self.drive_for(MAX_STEPS)
    }

    /// Steps until nothing moves, at most `max_steps` times.
    pub fn drive_for(&mut self, max_steps: usize) -> Result<usize, NotQuiescent> {
        for steps in 0..max_steps {
            if !self.step() {
                return Ok(steps);
            }
        }
        Err(NotQuiescent {
            steps: max_steps,
            state: self.describe(),
        })
    }

    fn describe(&self) -> String {
        format!(
            "server closing {} streaming {} body {:?}, {} bytes to the server, {} to the client",
            self.server.session.is_closing(),
            self.server.session.is_streaming(),
            self.server.session.wants_body(),
            self.client.outbox.len() + self.server.inbox.len(),
            self.server.outbox.len() + self.client.inbox.len(),
        )
    }
}

/// Moves at most `mtu` bytes from `from` to `to`; true when any moved.
fn carry(from: &mut Vec<u8>, to: &mut Vec<u8>, mtu: usize) -> bool {
    let n = from.len().min(mtu);
    to.extend(from.drain(..n));
    n > 0
}

/// Several connections on one clock: one server process's sessions, say,
/// each with its client.
#[derive(Default)]
pub struct Net {
    /// The time every connection reads.
    pub clock: Clock,
    /// The connections, in the order they were made.
    pub pairs: Vec<Pair>,
}

impl Net {
    /// No connections yet.
    pub fn new() -> Net {
        Net::default()
    }

    /// Opens one more connection on the net's clock (see [`Pair::on`]);
    /// returns its index in [`Self::pairs`].
    pub fn connect(&mut self, config: SessionConfig, name: &str) -> usize {
        let pair = Pair::on(&self.clock, config, [0; proto::NONCE_LEN], name, None);
        self.pairs.push(pair);
        self.pairs.len() - 1
    }

    /// One step of every connection, in order; true when any moved.
    pub fn step(&mut self) -> bool {
        self.pairs.iter_mut().fold(false, |p, pair| pair.step() | p)
    }

    /// Steps until nothing moves, at most [`MAX_STEPS`] times.
    pub fn drive(&mut self) -> Result<usize, NotQuiescent> {
        self.drive_for(MAX_STEPS)
    }

    /// Steps until nothing moves, at most `max_steps` times.
    pub fn drive_for(&mut self, max_steps: usize) -> Result<usize, NotQuiescent> {
        for steps in 0..max_steps {
            if !self.step() {
                return Ok(steps);
            }
        }
        let state = self
            .pairs
            .iter()
            .enumerate()
            .map(|(i, p)| format!("[{i}] {}", p.describe()))
            .collect::<Vec<_>>()
            .join("; ");
        Err(NotQuiescent {
            steps: max_steps,
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::frames::{meta, wp};
    use super::super::shell::{RestoreEntry, VerifyBatch};
    use super::*;
    use crate::client::session::Event;
    use crate::proto::{EntryKind, ErrorCode, ManifestEntry, WirePath};
    use crate::server::command::Command;

    #[test]
    fn a_backup_is_stored_at_its_commit() {
        let mut pair = Pair::new(SessionConfig::default(), "laptop");
        pair.client.session.send_dir(wp("d"), meta());
        pair.client.send_file(wp("d/f"), meta(), b"hello");
        pair.drive().expect("quiet");
        assert!(
            pair.server.shell.stored.is_empty(),
            "nothing before the commit"
        );
        let commit = pair.client.session.send_commit();
        pair.drive().expect("quiet");
        assert_eq!(
            pair.server.shell.stored.get(&wp("d/f")),
            Some(&b"hello".to_vec())
        );
        assert!(pair
            .client
            .events
            .contains(&Event::Welcome { read_only: false }));
        assert!(pair
            .client
            .events
            .contains(&Event::Committed { id: commit }));
    }

    #[test]
    fn a_damaged_body_is_refused_by_the_verdict() {
        let mut pair = Pair::new(SessionConfig::default(), "laptop");
        let id = pair
            .client
            .session
            .send_file(wp("f"), meta(), 3, crate::proto::Layout::Dense);
        pair.drive().expect("quiet");
        pair.client.outbox.extend_from_slice(b"abc");
        pair.client.session.send_file_end(id, 0xdead, true);
        pair.client.session.send_commit();
        pair.drive().expect("quiet");
        assert!(pair.server.shell.stored.is_empty());
        assert!(pair.client.events.iter().any(|e| matches!(
            e,
            Event::Failed { id: i, message, .. } if *i == id && message.starts_with("crc32c mismatch")
        )));
    }

    #[test]
    fn a_backup_resumes_from_the_part_the_store_kept() {
        let mut pair = Pair::new(SessionConfig::default(), "laptop");
        let whole: Vec<u8> = (0..100u8).collect();
        pair.server
            .shell
            .partials
            .insert(wp("big"), whole[..40].to_vec());
        let m = pair.client.session.send_manifest(vec![ManifestEntry {
            kind: EntryKind::File,
            path: wp("big"),
            meta: meta(),
            size: 100,
            target: vec![],
            rdev: 0,
            xattrs: 0,
        }]);
        pair.drive().expect("quiet");
        assert!(pair.client.events.iter().any(|e| matches!(
            e,
            Event::Need { id, resume, .. } if *id == m && resume[..] == [(0, 40)]
        )));
        pair.client.send_file_from(wp("big"), meta(), &whole, 40);
        pair.client.session.send_commit();
        pair.drive().expect("quiet");
        assert_eq!(pair.server.shell.stored.get(&wp("big")), Some(&whole));
    }

    #[test]
    fn small_pieces_change_nothing() {
        let run = |mtu: usize| {
            let mut pair = Pair::new(SessionConfig::default(), "laptop");
            pair.mtu = mtu;
            pair.server.shell.restore = vec![
                RestoreEntry::Symlink {
                    path: wp("l"),
                    target: b"t".to_vec(),
                    meta: meta(),
                },
                RestoreEntry::File {
                    path: wp("f"),
                    meta: meta(),
                    body: b"body".to_vec(),
                },
            ];
            pair.client.send_file(wp("x"), meta(), b"12345");
            pair.client.session.send_commit();
            pair.client
                .session
                .send_restore(crate::proto::WirePath::root());
            pair.drive().expect("quiet");
            (
                pair.client.events,
                pair.client.bodies,
                pair.server.shell.commands,
            )
        };
        let whole = run(usize::MAX);
        assert_eq!(run(1), whole);
        assert_eq!(run(7), whole);
    }

    /// The id an event answers, if it answers a request.
    fn answers(e: &Event) -> Option<u32> {
        match e {
            Event::Failed { id, .. }
            | Event::Need { id, .. }
            | Event::Committed { id }
            | Event::ListEntry { id, .. }
            | Event::Dir { id, .. }
            | Event::Symlink { id, .. }
            | Event::Link { id, .. }
            | Event::File { id, .. }
            | Event::Offer { id, .. }
            | Event::FileEnd { id, .. }
            | Event::Done { id }
            | Event::Progress { id, .. }
            | Event::Verified { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Regression (issue 9 item 10): a request pipelined behind a restore
    /// of a tree holding a file of 1 MiB or more arrived while the offer of
    /// that file waited for its `Want` and closed the connection
    /// ("unexpected frame kind"). Every request kind, behind every streamed
    /// answer, over a small and a large tree, in one piece and cut small.
    #[test]
    fn requests_pipelined_behind_a_restore_of_a_large_file_are_answered_in_order() {
        use crate::proto::ListItem;
        use crate::server::session::VerifyCounts;
        use crate::store::resume::RESUME_MIN;
        let big: Vec<u8> = (0..RESUME_MIN + 3).map(|i| (i % 251) as u8).collect();
        let backed: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
        let trees: [(&str, u64); 2] = [("small", 5), ("large", big.len() as u64)];
        let streams = ["list", "restore", "verify"];
        let pipelined = ["list", "restore", "verify", "manifest", "backup"];
        let mut combos = 0;
        for (tree, size) in trees {
            for first in streams {
                for second in pipelined {
                    for mtu in [usize::MAX, 1000] {
                        let what = format!("{second} behind {first} of the {tree} tree, mtu {mtu}");
                        let mut pair = Pair::new(SessionConfig::default(), "laptop");
                        pair.mtu = mtu;
                        let body = if tree == "large" {
                            big.clone()
                        } else {
                            b"small".to_vec()
                        };
                        pair.server.shell.restore = vec![
                            RestoreEntry::File {
                                path: wp("f"),
                                meta: meta(),
                                body: body.clone(),
                            },
                            RestoreEntry::Dir {
                                path: WirePath::root(),
                                meta: meta(),
                            },
                        ];
                        pair.server.shell.listing = vec![ListItem {
                            kind: EntryKind::File,
                            name: b"f".to_vec(),
                            meta: meta(),
                            size,
                            target: vec![],
                            rdev: 0,
                        }];
                        pair.server.shell.verify = vec![VerifyBatch {
                            damaged: vec![],
                            counts: VerifyCounts {
                                files: 1,
                                bytes: size,
                                ..VerifyCounts::default()
                            },
                        }];
                        let send = |pair: &mut Pair, kind: &str| -> u32 {
                            let c = &mut pair.client;
                            match kind {
                                "list" => c.session.send_list(WirePath::root()),
                                "restore" => c.session.send_restore(WirePath::root()),
                                "verify" => c.session.send_verify(WirePath::root()),
                                "manifest" => c.session.send_manifest(vec![ManifestEntry {
                                    kind: EntryKind::File,
                                    path: wp("new"),
                                    meta: meta(),
                                    size: backed.len() as u64,
                                    target: vec![],
                                    rdev: 0,
                                    xattrs: 0,
                                }]),
                                _ => {
                                    c.session.send_dir(wp("d"), meta());
                                    c.send_file(wp("d/new"), meta(), &backed);
                                    c.session.send_commit()
                                }
                            }
                        };
                        let a = send(&mut pair, first);
                        let b = send(&mut pair, second);
                        pair.drive().unwrap_or_else(|e| panic!("{what}: {e}"));
                        assert!(!pair.is_closed(), "{what}: closed");
                        assert!(
                            pair.client.session.error().is_none(),
                            "{what}: {:?}",
                            pair.client.session.error()
                        );
                        let ev = &pair.client.events;
                        let end = |id: u32| {
                            ev.iter().position(|e| {
                                matches!(e, Event::Done { id: d } | Event::Verified { id: d, .. }
                                    | Event::Committed { id: d } | Event::Need { id: d, .. } if *d == id)
                            })
                        };
                        let a_end =
                            end(a).unwrap_or_else(|| panic!("{what}: first never ended: {ev:?}"));
                        let b_end =
                            end(b).unwrap_or_else(|| panic!("{what}: second never ended: {ev:?}"));
                        let b_first = ev.iter().position(|e| answers(e) == Some(b));
                        assert!(
                            b_first.is_some_and(|i| i > a_end) && b_end > a_end,
                            "{what}: out of order: {ev:?}"
                        );
                        let restores =
                            usize::from(first == "restore") + usize::from(second == "restore");
                        assert_eq!(
                            pair.client.bodies,
                            vec![body.clone(); restores],
                            "{what}: bodies"
                        );
                        if second == "backup" {
                            assert_eq!(
                                pair.server.shell.stored.get(&wp("d/new")),
                                Some(&backed),
                                "{what}"
                            );
                        }
                        combos += 1;
                    }
                }
            }
        }
        assert_eq!(combos, 2 * 3 * 5 * 2);
    }

    #[test]
    fn a_drive_stops_when_out_of_steps() {
        let mut pair = Pair::new(SessionConfig::default(), "laptop");
        pair.client.session.send_commit();
        let e = pair.drive_for(1).expect_err("the conversation takes more");
        assert_eq!(e.steps, 1);
        assert!(pair.drive().is_ok());
    }

    #[test]
    fn three_idle_connections_time_out_on_one_clock() {
        let config = SessionConfig {
            idle_timeout: Some(Duration::from_secs(5)),
            ..SessionConfig::default()
        };
        let mut net = Net::new();
        for name in ["a", "b", "c"] {
            net.connect(config.clone(), name);
        }
        net.drive().expect("quiet");
        net.clock.advance(Duration::from_secs(4));
        net.drive().expect("quiet");
        assert!(net.pairs.iter().all(|p| !p.is_closed()));
        net.clock.advance(Duration::from_secs(1));
        net.drive().expect("quiet");
        for p in &net.pairs {
            assert!(p.is_closed());
            assert!(p.client.events.iter().any(|e| matches!(
                e,
                Event::Refused {
                    code: ErrorCode::Timeout,
                    ..
                }
            )));
            assert_eq!(p.server.shell.commands.last(), Some(&Command::Abort));
        }
    }

    #[test]
    fn a_client_gives_up_on_a_server_that_never_answers_on_the_virtual_clock() {
        use crate::client::event::SessionError;
        use crate::client::session::NO_PROGRESS_TIMEOUT;
        let config = SessionConfig {
            idle_timeout: None,
            ..SessionConfig::default()
        };
        let mut pair = Pair::new(config, "laptop");
        // A commit that never comes back (a hung disk on the server).
        pair.server.shell.script = Some(Box::new(|c| {
            matches!(c, Command::Commit { .. }).then(Vec::new)
        }));
        pair.client.session.send_commit();
        pair.drive().expect("quiet");
        pair.clock
            .advance(NO_PROGRESS_TIMEOUT - Duration::from_secs(1));
        pair.drive().expect("quiet");
        assert!(!pair.client.session.is_closed());
        pair.clock.advance(Duration::from_secs(1));
        pair.drive().expect("quiet");
        assert!(pair.client.session.is_closed());
        assert!(matches!(
            pair.client.session.error(),
            Some(SessionError::NoProgress(_))
        ));
    }
}
