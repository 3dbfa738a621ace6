//! One backup-protocol connection: its socket, its pure [`ServerSession`],
//! its buffers and readiness, and an explicit [`State`] for what the shell
//! is doing on its behalf. [`RsbConn::drive`] moves it as far as its socket
//! allows within the turn's budget: writing the session's output, reading
//! frames, receiving file bodies. Its child modules are further `impl
//! RsbConn` blocks, one per kind of work: carrying out the session's
//! commands ([`exec`]), streaming answers ([`stream`]), worker jobs
//! ([`jobs`]). Decides nothing about the protocol: the session does.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::TcpStream;
use mio::Registry;

mod delta;
mod exec;
mod jobs;
mod past;
mod stream;

use super::{Env, Expiry};
use crate::io::store::Stager;
use crate::io::transfer::{receive_step, BodyReceiver, Pipe};
use crate::io::worker::Ticket;
use crate::proto;
use crate::server::session::{Completion, Received, ServerSession};
use crate::server::status::ConnView;
use crate::server::web::model::LastRun;
use stream::{ListStream, Outgoing, Restore, Resuming, STREAM_HIGH_WATER};

/// Bytes one connection may move per turn before others get theirs.
pub(super) const BUDGET: u64 = 8 << 20;
/// A connection yields after this long in one turn even within its byte
/// budget: writing to a file can block when the disk is slow (dirty-page
/// throttling), and bytes alone would not bound the others' wait.
pub(super) const TURN_SLICE: Duration = Duration::from_millis(10);
/// Body bytes moved per step, between two looks at the clock.
pub(super) const STEP_BYTES: u64 = 1 << 20;
/// Bytes read from a socket at a time for frames.
const READ_CHUNK: usize = 64 * 1024;
/// What one command or streamed entry counts against [`BUDGET`]: about
/// what moving that many bytes costs, so 512 of them make a turn.
pub(super) const ENTRY_COST: u64 = 16 * 1024;
/// How long a closing connection may take to accept its error frame.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
thread_local! {
    /// The loop's one read buffer (see `read_some`).
    static READ_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_CHUNK]);
}

/// What the shell is doing for a connection. One phase at a time: the
/// session never asks for a body while it streams an answer, nor for
/// anything while a job is out. Large per-phase data is boxed, so an idle
/// connection stays small.
pub(super) enum State {
    /// Nothing under way: frames are parsed and commands carried out.
    Idle,
    /// A file body is arriving (the session `wants_body`). Once it is
    /// in, what was measured of it goes to the session
    /// ([`Completion::BodyReceived`]), which hands it back with the file's
    /// `EndFile`: the shell keeps nothing between the two. Boxed: the
    /// state's size is every idle connection's.
    Receiving(Box<BodyReceiver>),
    /// Answering a `List`.
    Listing(Box<ListStream>),
    /// Answering a `Restore`.
    Restoring(Box<Restore>),
    /// A job is with the workers: only output moves until it is back.
    Waiting(Wait),
    /// The session ended: its last frames go out, then the connection
    /// closes, [`CLOSE_GRACE`] after `since` at the latest. A job still out
    /// is taken back all the same (a commit is complete and is logged), and
    /// the grace only runs once it is.
    Closing {
        /// When the session was first seen closing.
        since: Instant,
        /// The job still with the workers, if any.
        job: Option<Wait>,
    },
}

/// Which job a connection waits for.
pub(super) enum Wait {
    /// A commit: the stager is with the worker.
    Commit,
    /// A `Commit` (this id) that came while the batch before was still
    /// being committed on a worker: commits land in order, so it waits
    /// for that one, and nothing is read meanwhile.
    CommitNext(u32),
    /// A verify; set the flag to stop it (the connection closed).
    Verify(Arc<AtomicBool>),
    /// The crc32c of a resumed backup's kept bytes: the body waits.
    ResumedBody,
    /// The crc32c of the bytes a resumed restore's client holds: the
    /// restore waits, paused at that file.
    ResumedSend(Box<Resuming>),
    /// The signatures of a manifest's changed files: its `Need` waits.
    Sign(Box<delta::Unsigned>),
    /// A delta's runs being copied from the stored version: its body waits.
    DeltaCopy,
    /// A delta's result being read back for its crc32c (with the body's
    /// write error, if any): its verdict waits.
    DeltaCrc(Box<Option<String>>),
    /// A restore's offered file being matched against the client's
    /// signature: the restore waits, paused at that file.
    DeltaSend(Box<delta::Sending>),
}

/// One connection speaking the backup protocol.
pub(super) struct RsbConn {
    pub(super) sock: TcpStream,
    pub(super) peer: SocketAddr,
    /// This connection, for results coming back from the workers.
    pub(super) ticket: Ticket,
    /// The deadline this connection has in the loop's timer heap.
    pub(super) armed: Option<Instant>,
    pub(super) session: ServerSession,
    pub(super) inbuf: crate::io::inbuf::InBuf,
    /// The client's namespace; `None` before the `Hello`, for a namespace a
    /// read-only server does not have, and while a commit has it. Boxed:
    /// it travels to a commit worker and back, and an idle connection stays small.
    pub(super) store: Option<Box<Stager>>,
    /// Lives for one batch of bodies (see `commit`).
    pub(super) pipe: Option<Pipe>,
    pub(super) state: State,
    /// The socket may have more to read: no read has said `WouldBlock`
    /// since the last readable edge.
    pub(super) readable: bool,
    /// The same for writing.
    pub(super) writable: bool,
    pub(super) batch: Stats,
    pub(super) total: Stats,
    /// The first failure of the batch that said the disk is full: the
    /// batch's later entries fail with it at once (see `exec.rs`).
    pub(super) full: Option<Box<crate::io::error::FsError>>,
    /// The last warning logged, and how many identical ones followed it
    /// unlogged (`exec.rs`, `log_repeat`).
    pub(super) repeats: Option<Box<(String, u64)>>,
    /// Bytes read from and written to the socket, all told (`/metrics`).
    pub(super) moved: (u64, u64),
    /// Bytes of `moved` the status has counted already.
    pub(super) counted: (u64, u64),
    /// The delta being received, for the signature cache.
    pub(super) delta: Option<Box<delta::Note>>,
    /// The batch a worker is committing while the next one is staged in
    /// `store` (`jobs.rs`, `commit`): its `Commit`'s id and its counters.
    pub(super) committing: Option<(u32, Stats)>,
}

impl RsbConn {
    /// A connection just accepted; it may be readable and writable at once.
    pub(super) fn new(
        sock: TcpStream,
        peer: SocketAddr,
        ticket: Ticket,
        session: ServerSession,
    ) -> RsbConn {
        RsbConn {
            sock,
            peer,
            ticket,
            armed: None,
            session,
            inbuf: Default::default(),
            store: None,
            pipe: None,
            state: State::Idle,
            readable: true,
            writable: true,
            batch: Stats::default(),
            total: Stats::default(),
            full: None,
            repeats: None,
            moved: (0, 0),
            counted: (0, 0),
            delta: None,
            committing: None,
        }
    }

    /// What it is doing, for the dashboard.
    pub(super) fn view(&self) -> ConnView {
        let backing_up = self.batch.entries + self.total.entries > 0
            || self.committing.is_some()
            || self.store.as_ref().is_some_and(|s| s.pending() > 0);
        let what = match &self.state {
            State::Listing(_) => "list",
            State::Restoring(_) => "restore",
            State::Waiting(Wait::Verify(_)) => "verify",
            State::Receiving(_) | State::Waiting(Wait::Commit | Wait::CommitNext(_)) => "backup",
            _ if self.session.is_agent() => "agent",
            _ if backing_up => "backup",
            _ => "idle",
        };
        ConnView {
            name: self.session.name().map(str::to_string),
            what,
            files: self.total.entries + self.batch.entries,
            bytes: self.total.bytes + self.batch.bytes,
            agent: self.session.is_agent(),
        }
    }

    /// The bytes moved since the last call: (in, out).
    pub(super) fn take_moved(&mut self) -> (u64, u64) {
        let d = (self.moved.0 - self.counted.0, self.moved.1 - self.counted.1);
        self.counted = self.moved;
        d
    }

    /// How its backup ended, if it made one: what was stored, and an
    /// error when a batch was never committed.
    pub(super) fn last_run(&self, ended: crate::proto::Time, reason: &str) -> Option<LastRun> {
        let t = self.total;
        let mut b = self.batch;
        if let Some((_, out)) = self.committing {
            // Its commit's result comes to nobody: not known to be stored.
            b.entries += out.entries;
            b.failed += out.failed;
        }
        if t.entries + b.entries + t.failed + b.failed == 0 {
            return None;
        }
        Some(LastRun {
            ended,
            files: t.entries,
            bytes: t.bytes,
            failed: t.failed,
            error: (b.entries > 0).then(|| format!("ended before its last commit: {reason}")),
        })
    }

    /// The client's name and address, for the log.
    pub(super) fn label(&self) -> String {
        match self.session.name() {
            Some(n) => format!("{n} ({})", self.peer),
            None => self.peer.to_string(),
        }
    }

    /// The client's name, or `?` before its `Hello`.
    pub(super) fn who(&self) -> String {
        self.session.name().unwrap_or("?").to_string()
    }

    /// True while a job of this connection's is with the workers: nothing
    /// else is read or done for it until the result is back.
    pub(super) fn is_waiting(&self) -> bool {
        matches!(
            self.state,
            State::Waiting(_) | State::Closing { job: Some(_), .. }
        )
    }

    /// When the loop must look at this connection again: the session's
    /// own deadline, or the end of the close grace. None while a job is
    /// out, a commit included: a connection waiting for the disk is not
    /// idle.
    pub(super) fn deadline(&self) -> Option<Instant> {
        if self.committing.is_some() && !matches!(self.state, State::Closing { .. }) {
            return None;
        }
        match &self.state {
            State::Waiting(_) | State::Closing { job: Some(_), .. } => None,
            State::Closing { since, .. } => since.checked_add(CLOSE_GRACE),
            _ => self.session.poll_timeout(),
        }
    }

    /// The deadline came due (it may since have moved later).
    pub(super) fn handle_deadline(&mut self, now: Instant) -> Expiry {
        if self.is_waiting()
            || (self.committing.is_some() && !matches!(self.state, State::Closing { .. }))
        {
            return Expiry::NotYet;
        }
        if let State::Closing { since, .. } = self.state {
            // The peer never took its error frame.
            return match since.checked_add(CLOSE_GRACE) {
                Some(t) if t <= now => Expiry::Abandon,
                _ => Expiry::NotYet,
            };
        }
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
            return Expiry::Fired;
        }
        Expiry::NotYet
    }

    /// Takes a readiness event.
    pub(super) fn handle_readiness(&mut self, readable: bool, writable: bool) {
        self.readable |= readable;
        self.writable |= writable;
    }

    /// Why a closing session ends the connection.
    fn closed_reason(&self) -> String {
        self.session.error().unwrap_or("closed").to_string()
    }

    /// Once the session is closing, nothing more is produced: the error
    /// frame goes out and the connection ends. `Err`: close at once.
    fn enter_closing(&mut self, now: Instant) -> Result<(), String> {
        if matches!(self.state, State::Closing { .. }) {
            return Ok(());
        }
        // The error frame can only go out at a frame boundary; in the
        // middle of a body there is nothing to do but close.
        if self.is_sending() {
            return Err(self.closed_reason());
        }
        self.state = match std::mem::replace(&mut self.state, State::Idle) {
            State::Waiting(job) => State::Closing {
                since: now,
                job: Some(job),
            },
            _ => State::Closing {
                since: now,
                job: None,
            },
        };
        Ok(())
    }

    /// True while a restored file's body is going out.
    pub(super) fn is_sending(&self) -> bool {
        matches!(&self.state, State::Restoring(r) if matches!(r.out, Outgoing::Sending(_)))
    }

    /// True while a listing or restore has entries to produce (not paused
    /// at a body, an offer or a job).
    fn is_producing(&self) -> bool {
        match &self.state {
            State::Listing(_) => true,
            State::Restoring(r) => matches!(r.out, Outgoing::Walking),
            _ => false,
        }
    }

    /// Drives the connection as far as its socket allows, within the
    /// budget. `Ok(true)`: more work is ready (budget used up). `Err`:
    /// close it.
    pub(super) fn drive(&mut self, env: &Env, now: Instant) -> Result<bool, String> {
        // Work done this turn: body bytes moved, plus a charge per command
        // and per streamed entry, so that metadata-only work yields too.
        let mut spent: u64 = 0;
        let started = Instant::now();
        loop {
            let mut progress = false;
            if self.session.is_closing() {
                self.enter_closing(now)?;
            }
            if self.committing.is_none() {
                if let State::Waiting(Wait::CommitNext(id)) = self.state {
                    // The batch before is in: this one's turn.
                    self.state = State::Idle;
                    self.commit(id, &env.workers);
                    progress = true;
                }
            }
            if self.flush()? {
                progress = true;
                self.session.handle_activity(now);
            }
            if self.session.poll_transmit().is_empty() && self.writable {
                progress |= self.pump_body(now, &mut spent)?;
            }
            if self.is_producing() && self.session.poll_transmit().len() < STREAM_HIGH_WATER {
                let entries = self.produce();
                spent += entries * ENTRY_COST;
                progress |= entries > 0;
            }
            if self.session.is_closing() && self.session.poll_transmit().is_empty() {
                return Err(self.closed_reason());
            }
            if !self.is_waiting() {
                // Commands that waited behind a job go first: a file's
                // BeginFile must run before its body is received.
                let cost = self.run_commands(env);
                progress |= cost > 0;
                spent += cost;
            }
            if let Some(ahead) = self.session.take_read_ahead() {
                // Requests read behind an offer go first, in their order.
                self.inbuf.prepend(ahead);
                progress = true;
            }
            if self.is_waiting() {
                // Only output moves until the workers are done.
            } else if let Some(size) = self.session.wants_body() {
                progress |= self.receive_body(size, env, now, &mut spent)?;
            } else if self.session.wants_input() {
                let n = self.session.handle_input(now, &self.inbuf);
                if n > 0 {
                    self.inbuf.consume(n);
                    progress = true;
                }
                // A malformed frame consumes nothing but queues an error
                // frame that must still go out (regression: the connection
                // hung).
                progress |= self.session.is_closing();
                spent += self.run_commands(env);
                if n == 0 && !self.is_waiting() && self.session.wants_input() && self.readable {
                    progress |= self.read_some()?;
                }
            }
            self.inbuf.release();
            if !progress {
                return Ok(false);
            }
            if spent >= BUDGET || started.elapsed() >= TURN_SLICE {
                return Ok(true);
            }
        }
    }

    /// Writes queued frames. Returns whether anything was written.
    fn flush(&mut self) -> Result<bool, String> {
        let mut wrote = false;
        while self.writable && !self.session.poll_transmit().is_empty() {
            match (&self.sock).write(self.session.poll_transmit()) {
                Ok(0) => return Err("connection closed".into()),
                Ok(n) => {
                    self.session.handle_sent(n);
                    self.moved.1 += n as u64;
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        Ok(wrote)
    }

    /// Reads frame bytes. `Err` on EOF or a socket error.
    fn read_some(&mut self) -> Result<bool, String> {
        if self.inbuf.len() >= proto::MAX_PAYLOAD as usize + proto::HEADER_LEN + READ_CHUNK {
            return Ok(false);
        }
        // Read into one buffer shared by all connections and keep only what
        // is left over: an idle connection then holds no read buffer at all.
        READ_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            match (&self.sock).read(&mut buf[..]) {
                Ok(0) => Err(if self.session.name().is_some() {
                    "closed by client".into()
                } else {
                    "closed before hello".into()
                }),
                Ok(n) => {
                    self.moved.0 += n as u64;
                    self.inbuf
                        .extend_from_slice(buf.get(..n).unwrap_or_default());
                    Ok(true)
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => {
                        self.readable = false;
                        Ok(false)
                    }
                    io::ErrorKind::Interrupted => Ok(true),
                    _ => Err(format!("read: {}", crate::io::describe(&e))),
                },
            }
        })
    }

    /// Moves body bytes of the file being received (`size` still to come
    /// when it started) from the socket to its file.
    fn receive_body(
        &mut self,
        size: u64,
        env: &Env,
        now: Instant,
        moved: &mut u64,
    ) -> Result<bool, String> {
        let incoming = self.store.as_mut().and_then(|s| s.incoming());
        if !matches!(self.state, State::Receiving(_)) {
            // A resumed body continues the kept bytes: at their end, with
            // their crc.
            let recv = incoming.as_ref().map_or(BodyReceiver::new(size), |i| {
                if i.holds_body() {
                    BodyReceiver::held(size)
                } else {
                    BodyReceiver::placed(&i.layout, i.size, i.offset, i.crc)
                }
            });
            self.state = State::Receiving(Box::new(recv));
        }
        let State::Receiving(recv) = &mut self.state else {
            return Ok(false);
        };
        let file = incoming.and_then(|i| i.file.as_ref());
        let n = receive_step(
            recv,
            &mut self.inbuf,
            &self.sock,
            file,
            &mut self.pipe,
            &mut self.readable,
            BUDGET.saturating_sub(*moved).min(STEP_BYTES),
        )
        .map_err(|e| format!("receive: {e}"))?;
        *moved += n;
        self.moved.0 += n;
        if n > 0 {
            self.session.handle_activity(now);
        }
        if recv.is_done() {
            if let Some(body) = recv.take_held() {
                if let Some(i) = self.store.as_mut().and_then(|s| s.incoming()) {
                    i.give_body(body);
                }
            }
            let received = Received {
                crc: recv.crc(),
                write_error: recv.take_error().map(|e| crate::io::describe(&e)),
            };
            self.state = State::Idle;
            self.batch.bytes += size;
            if !self.check_delta(received.clone(), &env.workers) {
                self.session
                    .handle_completion(Completion::BodyReceived(received));
            }
            return Ok(true);
        }
        Ok(n > 0)
    }

    /// Ends the connection: drops what it staged and stops its verify.
    pub(super) fn close(mut self, registry: &Registry, reason: &str, log_auth: bool) {
        self.flush_repeats();
        let _ = registry.deregister(&mut self.sock);
        if let Some(s) = self.store.as_mut() {
            // A delta cut while its body came in keeps what came.
            if let State::Receiving(recv) = &self.state {
                if !recv.has_failed() {
                    s.delta_written(recv.received());
                }
            }
            s.abort();
        }
        if let State::Waiting(Wait::Verify(cancel))
        | State::Closing {
            job: Some(Wait::Verify(cancel)),
            ..
        } = &self.state
        {
            cancel.store(true, Ordering::Relaxed);
        }
        let t = self.total;
        if let Some((name, why)) = self.session.auth_failure() {
            if log_auth {
                warn!("{}: authentication failed for {name} ({why})", self.peer);
            }
        } else if self.session.name().is_some() {
            info!(
                "{}: disconnected: {reason} ({} entries, {} bytes, {} failed)",
                self.label(),
                t.entries,
                t.bytes,
                t.failed
            );
        } else {
            debug!("{}: disconnected: {reason}", self.label());
        }
    }
}

/// Counters for the log line of a commit or a connection.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Stats {
    pub(super) entries: u64,
    pub(super) bytes: u64,
    pub(super) failed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1,000 idle connections must stay small (tests/scale.rs measures the
    /// process): the state of an idle one is a tag, and the per-phase data
    /// is boxed or small.
    #[test]
    fn an_idle_connection_stays_small() {
        use std::mem::size_of;
        assert!(
            size_of::<State>() <= 48,
            "State: {} bytes",
            size_of::<State>()
        );
        assert!(size_of::<Wait>() <= 16, "Wait: {} bytes", size_of::<Wait>());
        assert!(
            size_of::<RsbConn>() <= 1024,
            "RsbConn: {} bytes",
            size_of::<RsbConn>()
        );
    }
}
