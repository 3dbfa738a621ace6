//! A scripted fake of the server's I/O shell: it carries out a server
//! session's [`Command`]s against an in-memory store and answers with
//! [`Completion`]s, as the real shell in `src/io/` does against the disk.
//!
//! By default every command succeeds: the namespace opens, entries are
//! staged, a body is kept when [`body_verdict`] says so and stored at the
//! next commit, a manifest needs everything (resuming the files it holds a
//! part of), `List` answers [`FakeShell::listing`], `Restore` streams
//! [`FakeShell::restore`] (offering large files as [`plan_file`] decides),
//! `Verify` reports [`FakeShell::verify`] (by default: nothing read,
//! nothing wrong). A test changes that by setting the fields,
//! or overrides any command's answer with [`FakeShell::script`].

use std::collections::{BTreeMap, VecDeque};

use crate::proto::bits::NeedBits;
use crate::proto::{EntryKind, Layout, ListItem, Meta, WirePath};
use crate::server::command::Received;
use crate::server::command::{Command, Completion, VerifyCounts};
use crate::server::session::receive::{body_verdict, Staged, Verdict};
use crate::server::session::stream::{plan_file, FilePlan};

/// One step of the shell's answer to a command, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Report this to the session.
    Complete(Completion),
    /// Send these raw bytes to the peer, after what the session queued so
    /// far (a restored file's body after its header).
    Body(Vec<u8>),
}

/// One entry of a scripted restore, in sending order (a directory after
/// its contents, as the real shell sends it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreEntry {
    /// A directory.
    Dir {
        /// Path relative to the restored path.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
    },
    /// A symlink.
    Symlink {
        /// Path relative to the restored path.
        path: WirePath,
        /// Its target.
        target: Vec<u8>,
        /// Mtime.
        meta: Meta,
    },
    /// A later name of a file sent earlier (a hard link).
    Link {
        /// Path relative to the restored path.
        path: WirePath,
        /// The earlier name.
        target: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the file.
        size: u64,
    },
    /// A regular file and its bytes.
    File {
        /// Path relative to the restored path.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// The whole file.
        body: Vec<u8>,
    },
}

/// One batch of a scripted verify, as the real shell's verify job reports
/// it: the damaged files it found, then how far it got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyBatch {
    /// Files found damaged in this batch, and why (a `Failed` each).
    pub damaged: Vec<(WirePath, String)>,
    /// The running totals after it: `VerifyProgress` for every batch but
    /// the last, whose totals are the `Verified` result.
    pub counts: VerifyCounts,
}

/// A test's own answer to a command: `Some` replaces the default one.
pub type Script = Box<dyn FnMut(&Command) -> Option<Vec<Answer>>>;

/// The file being received: its header, and its bytes so far (the kept
/// part first, for a resumed transfer).
#[derive(Debug)]
struct Incoming {
    size: u64,
    offset: u64,
    data: Vec<u8>,
}

/// A restore being streamed: the entries still to send, and the file
/// offered and waiting for the client's `Want`.
#[derive(Debug)]
struct Cursor {
    id: u32,
    entries: VecDeque<RestoreEntry>,
    offered: Option<(WirePath, Meta, Vec<u8>)>,
}

/// The scripted shell (see the module docs).
#[derive(Default)]
pub struct FakeShell {
    /// Every command carried out, in order.
    pub commands: Vec<Command>,
    /// Consulted first for every command.
    pub script: Option<Script>,
    /// `OpenNamespace` fails with this message.
    pub namespace_error: Option<String>,
    /// The next body received failed to be written, with this cause.
    pub write_error: Option<String>,
    /// What a `List` answers, whatever its path.
    pub listing: Vec<ListItem>,
    /// What a `Restore` streams, whatever its path.
    pub restore: Vec<RestoreEntry>,
    /// What a `Verify` reports, whatever its path, batch by batch (none:
    /// `Verified` with zero counts at once).
    pub verify: Vec<VerifyBatch>,
    /// Committed files: path and bytes.
    pub stored: BTreeMap<WirePath, Vec<u8>>,
    /// Parts kept from interrupted transfers: path and bytes. A manifest
    /// listing such a file is answered with a resume from their length.
    pub partials: BTreeMap<WirePath, Vec<u8>>,
    /// Plans by client name, as `Plan` frames carry them: what a
    /// `FollowPlan` answers.
    pub plans: BTreeMap<String, Vec<u8>>,
    /// Files kept and not yet committed.
    staged: Vec<(WirePath, Vec<u8>)>,
    incoming: Option<Incoming>,
    cursor: Option<Cursor>,
}

impl FakeShell {
    /// A shell that answers every command with success.
    pub fn new() -> FakeShell {
        FakeShell::default()
    }

    /// Carries out `cmd`; returns what to tell the session and send.
    pub fn carry_out(&mut self, cmd: Command) -> Vec<Answer> {
        self.commands.push(cmd.clone());
        if let Some(script) = self.script.as_mut() {
            if let Some(answers) = script(&cmd) {
                return answers;
            }
        }
        let done = |c: Completion| vec![Answer::Complete(c)];
        match cmd {
            Command::OpenNamespace { .. } => match self.namespace_error.take() {
                Some(message) => done(Completion::NamespaceFailed { message }),
                None => Vec::new(),
            },
            Command::Mkdir { .. }
            | Command::Symlink { .. }
            | Command::LearnNames { .. }
            | Command::Xattrs { .. }
            | Command::Special { .. }
            | Command::Link { .. }
            | Command::Update { .. }
            | Command::Delete { .. } => Vec::new(),
            Command::BeginFile {
                path, size, offset, ..
            } => {
                let mut data = self.partials.get(&path).cloned().unwrap_or_default();
                data.resize(offset as usize, 0);
                self.incoming = Some(Incoming { size, offset, data });
                Vec::new()
            }
            Command::EndFile {
                id,
                path,
                crc,
                ok,
                received,
            } => {
                let Some(inc) = self.incoming.take() else {
                    return Vec::new();
                };
                let kept = inc.data.get(..inc.offset as usize).unwrap_or_default();
                let staged = Staged {
                    size: inc.size,
                    offset: inc.offset,
                    kept_crc: crc32c::crc32c(kept),
                };
                match body_verdict(crc, ok, received, staged) {
                    Verdict::Keep => {
                        self.partials.remove(&path);
                        self.staged.push((path, inc.data));
                        Vec::new()
                    }
                    Verdict::Discard(message) => done(Completion::Failed { id, path, message }),
                }
            }
            Command::FollowPlan { name } => done(Completion::Plan {
                text: self.plans.get(&name).cloned().unwrap_or_default(),
            }),
            Command::Commit { id } => {
                self.stored.extend(self.staged.drain(..));
                done(Completion::Committed { id })
            }
            Command::Check { id, entries } => {
                let resume = entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.kind == EntryKind::File)
                    .filter_map(|(i, e)| {
                        let kept = self.partials.get(&e.path)?.len() as u64;
                        (kept > 0 && kept < e.size).then_some((i as u32, kept))
                    })
                    .collect();
                done(Completion::Checked {
                    id,
                    bits: NeedBits::all(entries.len()).into_bytes(),
                    meta: NeedBits::new(entries.len()).into_bytes(),
                    resume,
                    delta: Vec::new(),
                })
            }
            Command::List { id, .. } => {
                let mut answers: Vec<Answer> = self
                    .listing
                    .iter()
                    .map(|item| {
                        Answer::Complete(Completion::Listed {
                            id,
                            item: item.clone(),
                        })
                    })
                    .collect();
                answers.push(Answer::Complete(Completion::Done { id }));
                answers
            }
            // A fake store has no history: no versions.
            Command::Versions { id, .. } => vec![Answer::Complete(Completion::Done { id })],
            Command::Restore { id, .. } => {
                self.cursor = Some(Cursor {
                    id,
                    entries: self.restore.clone().into(),
                    offered: None,
                });
                self.produce()
            }
            // The fake sends the whole file for a delta too.
            Command::SendDelta { id, offset, .. } => {
                self.carry_out(Command::SendFrom { id, offset })
            }
            Command::SendFrom { id, offset } => {
                let Some((path, meta, body)) = self.cursor.as_mut().and_then(|c| c.offered.take())
                else {
                    return Vec::new();
                };
                let mut answers = vec![
                    Answer::Complete(Completion::Resumed {
                        id,
                        path,
                        meta,
                        size: body.len() as u64,
                        offset,
                        layout: Layout::Dense,
                    }),
                    Answer::Body(body.get(offset as usize..).unwrap_or_default().to_vec()),
                    Answer::Complete(Completion::FileSent {
                        id,
                        crc: crc32c::crc32c(&body),
                        ok: true,
                    }),
                ];
                answers.extend(self.produce());
                answers
            }
            Command::Verify { id, .. } => self.verify_answers(id),
            Command::SkipOffer { .. } => {
                if let Some(c) = self.cursor.as_mut() {
                    c.offered = None;
                }
                self.produce()
            }
            Command::Abort => {
                self.incoming = None;
                self.staged.clear();
                Vec::new()
            }
        }
    }

    /// The body of the file being received arrived: stores it and says
    /// what was received.
    pub fn receive_body(&mut self, body: &[u8]) -> Received {
        let write_error = self.write_error.take();
        let crc = match self.incoming.as_mut() {
            Some(inc) => {
                inc.data.extend_from_slice(body);
                crc32c::crc32c(&inc.data)
            }
            // Refused or failed to stage: read and dropped.
            None => crc32c::crc32c(body),
        };
        Received { crc, write_error }
    }

    /// The answers to the `Verify` `id`: each batch's failures, then its
    /// progress, the last batch's totals as the result.
    fn verify_answers(&self, id: u32) -> Vec<Answer> {
        let mut answers = Vec::new();
        let last = self.verify.len().saturating_sub(1);
        for (i, batch) in self.verify.iter().enumerate() {
            for (path, message) in &batch.damaged {
                answers.push(Answer::Complete(Completion::Failed {
                    id,
                    path: path.clone(),
                    message: message.clone(),
                }));
            }
            if i < last {
                answers.push(Answer::Complete(Completion::VerifyProgress {
                    id,
                    files: batch.counts.files,
                    bytes: batch.counts.bytes,
                }));
            }
        }
        let counts = self.verify.last().map(|b| b.counts).unwrap_or_default();
        answers.push(Answer::Complete(Completion::Verified { id, counts }));
        answers
    }

    /// Streams restore entries until the next offer or the end.
    fn produce(&mut self) -> Vec<Answer> {
        let Some(cur) = self.cursor.as_mut() else {
            return Vec::new();
        };
        let id = cur.id;
        let mut answers = Vec::new();
        while let Some(entry) = cur.entries.pop_front() {
            let completion = match entry {
                RestoreEntry::Dir { path, meta } => Completion::RestoredDir { id, path, meta },
                RestoreEntry::Symlink { path, target, meta } => Completion::RestoredSymlink {
                    id,
                    path,
                    target,
                    meta,
                },
                RestoreEntry::Link {
                    path,
                    target,
                    meta,
                    size,
                } => Completion::RestoredLink {
                    id,
                    path,
                    target,
                    meta,
                    size,
                },
                RestoreEntry::File { path, meta, body } => {
                    let size = body.len() as u64;
                    if plan_file(size) == FilePlan::Offer {
                        answers.push(Answer::Complete(Completion::Offered {
                            id,
                            path: path.clone(),
                            meta,
                            size,
                        }));
                        cur.offered = Some((path, meta, body));
                        return answers;
                    }
                    let crc = crc32c::crc32c(&body);
                    answers.push(Answer::Complete(Completion::RestoredFile {
                        id,
                        path,
                        meta,
                        size,
                        layout: Layout::Dense,
                    }));
                    answers.push(Answer::Body(body));
                    Completion::FileSent { id, crc, ok: true }
                }
            };
            answers.push(Answer::Complete(completion));
        }
        answers.push(Answer::Complete(Completion::Done { id }));
        self.cursor = None;
        answers
    }
}
