//! Work a backup connection hands to the worker pool, and the results it
//! takes back: commits, verifies, and the crc32c of a resumed transfer's
//! kept bytes (either direction; it can be gigabytes). While a job is out
//! the connection is in [`State::Waiting`] and only its output moves. Does
//! no disk work itself except a commit when no worker is left.

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use log::{debug, info, warn};

use super::exec::answer_empty;
use super::stream::{Outgoing, Resuming};
use super::{RsbConn, State, Wait};
use crate::io::store::CommitReport;
use crate::io::worker::{Done, Job, Workers};
use crate::proto::WirePath;
use crate::server::session::stream::{plan_resume, ResumePlan};
use crate::server::session::{Command, Completion};

impl RsbConn {
    /// Hands the batch to a worker to commit. The batch goes in a stager
    /// of its own ([`Stager::take_batch`]) and the connection goes on
    /// reading the next batch into its stager meanwhile: the commit's
    /// `syncfs` and renames overlap the next bodies. A second `Commit`
    /// while one is out waits for it ([`Wait::CommitNext`]): a
    /// connection's commits land in order, one at a time.
    ///
    /// [`Stager::take_batch`]: crate::io::store::Stager::take_batch
    pub(in crate::io::server) fn commit(&mut self, id: u32, workers: &Workers) {
        // A 1 MiB pipe per idle connection would pin memory and use up the
        // per-user pipe quota with many clients: it lives for one batch of
        // bodies.
        self.pipe = None;
        if self.committing.is_some() {
            self.state = State::Waiting(Wait::CommitNext(id));
            return;
        }
        let Some(store) = self.store.as_mut() else {
            answer_empty(Command::Commit { id }, &mut self.session);
            return;
        };
        let batch = match store.take_batch() {
            Ok(Some(batch)) => batch,
            Ok(None) => return self.commit_whole(id, workers),
            Err(e) => {
                debug!("{}: commit: {e}: committing in place", self.label());
                return self.commit_whole(id, workers);
            }
        };
        debug!("{}: committing {} entries", self.label(), batch.pending());
        let job = Job::Commit {
            ticket: self.ticket,
            id,
            store: batch,
        };
        match workers.submit(job) {
            Ok(()) => self.committing = Some((id, std::mem::take(&mut self.batch))),
            Err(Job::Commit { mut store, .. }) => {
                // No worker left (cannot happen while the loop runs):
                // commit here rather than lose the batch.
                let report = store.commit();
                if let Some(s) = self.store.as_mut() {
                    s.after_batch(&store);
                }
                let batch = std::mem::take(&mut self.batch);
                self.committed(id, report, batch);
            }
            Err(_) => {}
        }
    }

    /// Hands the connection's stager itself to a worker to commit: the
    /// connection reads nothing until it is back.
    fn commit_whole(&mut self, id: u32, workers: &Workers) {
        let Some(store) = self.store.take() else {
            answer_empty(Command::Commit { id }, &mut self.session);
            return;
        };
        debug!("{}: committing {} entries", self.label(), store.pending());
        let job = Job::Commit {
            ticket: self.ticket,
            id,
            store,
        };
        match workers.submit(job) {
            Ok(()) => self.state = State::Waiting(Wait::Commit),
            Err(Job::Commit { mut store, .. }) => {
                let report = store.commit();
                self.store = Some(store);
                let batch = std::mem::take(&mut self.batch);
                self.committed(id, report, batch);
            }
            Err(_) => {}
        }
    }

    /// Hands a verify of `path` to a worker.
    pub(in crate::io::server) fn verify(&mut self, id: u32, path: WirePath, workers: &Workers) {
        let Some(store) = self.store.as_ref() else {
            answer_empty(Command::Verify { id, path }, &mut self.session);
            return;
        };
        info!("{}: verify {path}", self.label());
        let tree = match store.tree().try_clone() {
            Ok(t) => t,
            Err(e) => {
                self.session.handle_completion(Completion::Failed {
                    id,
                    path,
                    message: e.short(),
                });
                self.session.handle_completion(Completion::Verified {
                    id,
                    counts: Default::default(),
                });
                return;
            }
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let job = Job::Verify {
            ticket: self.ticket,
            id,
            tree,
            path,
            cancel: cancel.clone(),
        };
        if workers.submit(job).is_ok() {
            self.state = State::Waiting(Wait::Verify(cancel));
        } else {
            self.session.handle_completion(Completion::Verified {
                id,
                counts: Default::default(),
            });
        }
    }

    /// The client's `Skip` for the offered file: it is dropped unsent and
    /// the walk goes on.
    pub(in crate::io::server) fn skip_offer(&mut self) {
        if let State::Restoring(r) = &mut self.state {
            if matches!(r.out, Outgoing::Offered(_)) {
                r.out = Outgoing::Walking;
                // The client holds it complete (or refused it, and then
                // refuses links to it too): a later name may link to it.
                r.walk.links.sent(true);
            }
        }
    }

    /// The client's `Want` for the offered file of restore `id`: send it
    /// from `offset`, after a worker read the crc32c of the bytes before.
    pub(in crate::io::server) fn send_from(&mut self, id: u32, offset: u64, workers: &Workers) {
        let mut restore = match std::mem::replace(&mut self.state, State::Idle) {
            State::Restoring(r) => r,
            other => {
                self.state = other;
                return;
            }
        };
        let o = match std::mem::replace(&mut restore.out, Outgoing::Walking) {
            Outgoing::Offered(o) => o,
            other => {
                restore.out = other;
                self.state = State::Restoring(restore);
                return;
            }
        };
        let len = match plan_resume(offset) {
            ResumePlan::FromStart => {
                self.state = State::Restoring(restore);
                self.start_send(id, o, 0, Ok(0));
                return;
            }
            ResumePlan::ReadKept { len } => len,
        };
        // The bytes the client holds are read once for the crc32c, on a
        // worker: they can be gigabytes.
        let job = o.file.try_clone().map(|file| Job::Crc {
            ticket: self.ticket,
            file,
            len,
        });
        match job.map(|j| workers.submit(j)) {
            Ok(Ok(())) => {
                self.state = State::Waiting(Wait::ResumedSend(Box::new(Resuming {
                    restore,
                    offered: o,
                    id,
                    offset,
                })));
            }
            Ok(Err(_)) => {
                self.state = State::Restoring(restore);
                self.start_send(
                    id,
                    o,
                    offset,
                    Err(io::Error::other("the server is stopping")),
                );
            }
            Err(e) => {
                self.state = State::Restoring(restore);
                self.start_send(id, o, offset, Err(e.error));
            }
        }
    }

    /// A resumed backup's kept bytes are read for their crc32c on a worker;
    /// the body waits (the connection reads nothing) until that is done.
    pub(in crate::io::server) fn defer_prefix_crc(&mut self, workers: &Workers) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let Some(inc) = store.incoming().filter(|i| i.prefix_pending) else {
            return;
        };
        let (id, path, len) = (inc.id, inc.path.clone(), inc.offset);
        let job = inc.kept().map(|file| Job::Crc {
            ticket: self.ticket,
            file,
            len,
        });
        match job.map(|j| workers.submit(j)) {
            Ok(Ok(())) => self.state = State::Waiting(Wait::ResumedBody),
            Ok(Err(_)) | Err(_) => {
                // Keep the partial: a later transfer can still resume it.
                store.abort_file();
                self.batch.failed += 1;
                self.session.handle_completion(Completion::Failed {
                    id,
                    path,
                    message: "resume: cannot read the kept part".into(),
                });
            }
        }
    }

    /// Takes a result from the workers (the loop matched its ticket).
    pub(in crate::io::server) fn handle_done(&mut self, done: Done, now: Instant) {
        // The time spent waiting for the disk is not idle time (regression:
        // a 40 s commit under -t 30 was answered, then timed out at once).
        self.session.handle_activity(now);
        let done = match done {
            Done::Committed {
                id,
                store,
                report,
                elapsed,
                ..
            } if self.committing.is_some_and(|(out, _)| out == id) => {
                // The batch committed beside the connection's stager: the
                // connection's state is not the commit's.
                debug!(
                    "{}: commit took {:.1} ms",
                    self.label(),
                    elapsed.as_secs_f64() * 1e3
                );
                if let Some(s) = self.store.as_mut() {
                    s.after_batch(&store);
                }
                let batch = self.committing.take().map(|(_, b)| b).unwrap_or_default();
                self.committed(id, report, batch);
                // A `Commit` behind it never runs once the session closes:
                // the close grace starts now.
                if let State::Closing { job, .. } = &mut self.state {
                    if matches!(job, Some(Wait::CommitNext(_))) {
                        *job = None;
                    }
                }
                return;
            }
            other => other,
        };
        let closing = match self.state {
            State::Closing { since, .. } => Some(since),
            _ => None,
        };
        let job = self.take_job();
        match done {
            Done::Committed {
                id,
                store,
                report,
                elapsed,
                ..
            } => {
                debug!(
                    "{}: commit took {:.1} ms",
                    self.label(),
                    elapsed.as_secs_f64() * 1e3
                );
                self.store = Some(store);
                let batch = std::mem::take(&mut self.batch);
                self.committed(id, report, batch);
            }
            Done::Crc { result, .. } => match job {
                Some(Wait::ResumedSend(r)) => {
                    let Resuming {
                        restore,
                        offered,
                        id,
                        offset,
                    } = *r;
                    self.state = State::Restoring(restore);
                    self.start_send(id, offered, offset, result);
                    // Closed meanwhile: a body that started goes nowhere
                    // (the next drive closes); otherwise back to closing.
                    if let Some(since) = closing.filter(|_| !self.is_sending()) {
                        self.state = State::Closing { since, job: None };
                    }
                }
                _ => self.prefix_crc_done(result),
            },
            Done::Signed { sigs, .. } => match job {
                Some(Wait::Sign(unsigned)) => self.signed(*unsigned, sigs),
                Some(other) => self.put_job(other),
                None => {}
            },
            Done::Copied { result, .. } => self.copied(result),
            Done::Matched { result, .. } => match job {
                Some(Wait::DeltaSend(d)) => {
                    self.delta_matched(*d, result);
                    if let Some(since) = closing.filter(|_| !self.is_sending()) {
                        self.state = State::Closing { since, job: None };
                    }
                }
                Some(other) => self.put_job(other),
                None => {}
            },
            Done::DeltaChecked { result, .. } => match job {
                Some(Wait::DeltaCrc(write_error)) => self.delta_checked(result, *write_error),
                Some(other) => self.put_job(other),
                None => {}
            },
            Done::Verifying {
                id,
                damaged,
                counts,
                finished,
                ..
            } => {
                for (path, why) in damaged {
                    warn!("{}: verify: {}: {why}", self.label(), path);
                    self.session.handle_completion(Completion::Failed {
                        id,
                        path,
                        message: why,
                    });
                }
                if !finished {
                    self.session.handle_completion(Completion::VerifyProgress {
                        id,
                        files: counts.files,
                        bytes: counts.bytes,
                    });
                    if let Some(job) = job {
                        self.put_job(job);
                    }
                } else {
                    info!(
                        "{}: verified {} files, {} bytes: {} damaged, {} without a checksum",
                        self.label(),
                        counts.files,
                        counts.bytes,
                        counts.damaged,
                        counts.unchecked
                    );
                    self.session
                        .handle_completion(Completion::Verified { id, counts });
                }
            }
            // Not a connection's: the loop takes it before.
            Done::Space { .. } => {
                if let Some(job) = job {
                    self.put_job(job);
                }
            }
        }
    }

    /// The job out, if any; the connection no longer waits for it.
    fn take_job(&mut self) -> Option<Wait> {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Waiting(job) => Some(job),
            State::Closing { since, job } => {
                self.state = State::Closing { since, job: None };
                job
            }
            other => {
                self.state = other;
                None
            }
        }
    }

    /// The job is still out (a verify reported progress).
    fn put_job(&mut self, job: Wait) {
        self.state = match std::mem::replace(&mut self.state, State::Idle) {
            State::Closing { since, .. } => State::Closing {
                since,
                job: Some(job),
            },
            _ => State::Waiting(job),
        };
    }

    /// The crc32c of a resumed backup's kept bytes is back.
    fn prefix_crc_done(&mut self, result: io::Result<u32>) {
        let who = self.label();
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let Some(inc) = store.incoming() else {
            return;
        };
        match result {
            Ok(crc) => {
                inc.crc = crc;
                inc.prefix_pending = false;
            }
            Err(e) => {
                let (id, path) = (inc.id, inc.path.clone());
                warn!("{who}: {path}: resume: {}", crate::io::describe(&e));
                store.abort_file();
                self.batch.failed += 1;
                self.session.handle_completion(Completion::Failed {
                    id,
                    path,
                    message: format!("resume: {}", crate::io::describe(&e)),
                });
            }
        }
    }

    /// Reports a finished commit of the batch counted in `batch` to the
    /// client and the log.
    pub(in crate::io::server) fn committed(
        &mut self,
        id: u32,
        report: CommitReport,
        mut batch: super::Stats,
    ) {
        let who = self.label();
        for f in report.failures {
            let line = format!("{who}: commit: {}", f.error);
            self.log_repeat(log::Level::Error, f.error.short(), &line);
            batch.failed += 1;
            self.session.handle_completion(Completion::Failed {
                id: f.id,
                path: f.path,
                message: f.error.short(),
            });
        }
        let history = match (report.kept, report.deleted) {
            (0, 0) => String::new(),
            (kept, deleted) => format!("; history: {kept} replaced, {deleted} deleted"),
        };
        info!(
            "{who}: backup committed: {} entries, {} bytes, {} failed{history}",
            batch.entries, batch.bytes, batch.failed
        );
        self.total.entries += batch.entries;
        self.total.bytes += batch.bytes;
        self.total.failed += batch.failed;
        self.session.handle_completion(Completion::Committed { id });
    }
}
