//! The client's one event loop: an [`EventLoop`] per process, owning the mio
//! `Poll` and every source the client waits on: the server connection
//! ([`Conn`], token [`SERVER`]), the signals ([`SIGNALS`]) and the timers
//! (deadlines the session or a driver asks for). Connecting blocks (the
//! name lookup, then at most `CONNECT_TIMEOUT` per address); after that the
//! one place the client waits on the network is `Link::wait`.
//!
//! The loop is split in two so a command can hold the connection and still
//! wait: a [`Reactor`] (poll, signals, timers, readiness seen per token) and
//! the sources that own their descriptors (today the server connection).
//! A command borrows both as a [`Link`]. Another source (an inotify
//! descriptor for watch mode) joins as one more token and field: the
//! reactor already records readiness for any token, so a wait for the
//! server never loses another source's edge.
//!
//! Signals: SIGINT and SIGTERM while the client waits for its user (the
//! loop is idle) terminate the process at once, by their default action;
//! during a command they only mark it interrupted, so the command stops at
//! its next wait and removes what it had not committed. What follows (the
//! end of a one-shot client, or back to an interactive prompt) is decided
//! in [`super::run`].
//! SIGPIPE stays ignored (Rust's runtime does so before `main`), so a
//! write to a closed socket is an `EPIPE` error, not death.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use super::conn::{Conn, Remote, Stepped};
use super::error::NetError;
use super::inotify::Watcher;
use super::plan_conn::PlanSource;
use crate::client::rate::Bucket;
use crate::client::session::{ClientSession, Event};
use crate::io::transfer::{BodyReceiver, BodySender};
use crate::proto::ErrorCode;

/// The signal pipe's token.
pub const SIGNALS: Token = Token(0);
/// The server connection's token.
pub const SERVER: Token = Token(1);
/// Watch mode's inotify descriptor.
pub const INOTIFY: Token = Token(2);
/// The prompt's lines, read by a thread ([`Lines`]).
pub const STDIN: Token = Token(3);
/// An agent's plan connection ([`PlanSource`]).
pub const PLAN: Token = Token(4);
/// Tokens in use; the next source takes this one.
const TOKENS: usize = 5;

/// The prompt's input: a thread reads stdin line by line (a blocking read,
/// so stdin's own flags are never changed) and hands each line to the loop
/// through a channel, waking it; so a long-running command at the prompt
/// (watch) still hears `quit`.
struct Lines {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    /// The thread said end of input (or an error, already handed on).
    done: bool,
}

impl Lines {
    fn start(registry: &Registry) -> Result<Lines, String> {
        let waker = mio::Waker::new(registry, STDIN).map_err(|e| format!("poll: {e}"))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                use std::io::BufRead;
                let stdin = std::io::stdin();
                let mut input = stdin.lock();
                loop {
                    let mut line = Vec::new();
                    let r = input.read_until(b'\n', &mut line);
                    let end = !matches!(r, Ok(n) if n > 0);
                    let sent = tx.send(r.map(|_| line));
                    let _ = waker.wake();
                    if end || sent.is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| format!("no thread for the prompt: {e}"))?;
        Ok(Lines { rx, done: false })
    }
}

/// A wait wakes at least this often, so a command can redraw its progress
/// line.
const TICK: Duration = Duration::from_millis(200);

/// The loop's timers: each names who asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// The session's deadline ([`ClientSession::poll_timeout`]).
    Session,
    /// The driver's redraw tick.
    Tick,
    /// A long-running command's own deadline (the next batch of watch
    /// mode, a reconnection, the next run of `--every`).
    Driver,
    /// `--bwlimit`: the bucket holds bytes to move again
    /// ([`Bucket::ready_at`]); set only after a step it held back.
    Rate,
    /// An agent's plan connection: its keepalive, its handshake's or its
    /// ping's deadline, or its reconnection ([`PlanSource::deadline`]).
    Plan,
}

/// Deadlines by [`Timer`]; a handful at most, so a small vector.
#[derive(Debug, Default)]
pub struct NamedTimers {
    at: Vec<(Timer, Instant)>,
}

impl NamedTimers {
    /// Sets (or moves) `timer` to `at`; `None` clears it.
    pub fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.at.retain(|(t, _)| *t != timer);
        if let Some(at) = at {
            self.at.push((timer, at));
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().map(|(_, at)| *at).min()
    }

    /// True (and cleared) when `timer` is due at `now`.
    pub fn take_due(&mut self, timer: Timer, now: Instant) -> bool {
        let due = self.at.iter().any(|&(t, at)| t == timer && at <= now);
        if due {
            self.set(timer, None);
        }
        due
    }
}

/// Readiness of one source seen by the loop and not yet handed to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ready {
    /// Readable, closed for reading, or in error.
    pub readable: bool,
    /// Writable, closed for writing, or in error.
    pub writable: bool,
}

impl Ready {
    /// Any readiness at all.
    pub fn any(self) -> bool {
        self.readable || self.writable
    }
}

/// The waiting half of the loop: the poll, the signals, the timers, and the
/// readiness seen per token.
pub struct Reactor {
    poll: Poll,
    events: Events,
    signals: Signals,
    /// Set while no command runs: SIGINT/SIGTERM then take their default
    /// action (terminate) instead of interrupting.
    idle: Arc<AtomicBool>,
    interrupted: bool,
    /// The interrupt was (or included) SIGTERM.
    terminated: bool,
    /// Deadlines asked for.
    pub timers: NamedTimers,
    ready: [Ready; TOKENS],
    /// File body bytes that crossed the wire (either way) since the last
    /// [`EventLoop::take_moved`].
    moved: u64,
    /// `--bwlimit`'s bucket: one per process, so it paces every command and
    /// every connection alike (a reconnect does not refill it).
    rate: Option<Bucket>,
}

impl Reactor {
    /// The reactor, or why not, as a message.
    fn new() -> Result<Reactor, String> {
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let idle = Arc::new(AtomicBool::new(true));
        let signals = (|| {
            for sig in [SIGINT, SIGTERM] {
                // Registered before the pipe's handler, so at the prompt the
                // default action runs first (it only acts while idle).
                signal_hook::flag::register_conditional_default(sig, idle.clone())?;
            }
            let mut signals = Signals::new([SIGINT, SIGTERM])?;
            poll.registry()
                .register(&mut signals, SIGNALS, Interest::READABLE)?;
            Ok::<_, io::Error>(signals)
        })()
        .map_err(|e| format!("cannot handle signals: {e}"))?;
        Ok(Reactor {
            poll,
            events: Events::with_capacity(8),
            signals,
            idle,
            interrupted: false,
            terminated: false,
            timers: NamedTimers::default(),
            ready: [Ready::default(); TOKENS],
            moved: 0,
            rate: None,
        })
    }

    /// Where sources register.
    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// True once SIGINT or SIGTERM arrived during a command (read without
    /// waiting: a signal caught just after the last wait counts too).
    pub fn interrupted(&mut self) -> bool {
        for sig in self.signals.pending() {
            self.interrupted = true;
            self.terminated |= sig == SIGTERM;
        }
        self.interrupted
    }

    /// Waits for readiness on any source, a signal, or the earliest timer
    /// (forever when no timer is set), and records what it saw.
    pub fn turn(&mut self, now: Instant) -> Result<(), NetError> {
        let timeout = self.timers.next().map(|t| t.saturating_duration_since(now));
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(NetError::Local(format!("poll: {e}"))),
        }
        let mut signalled = false;
        for ev in self.events.iter() {
            if ev.token() == SIGNALS {
                signalled = true;
                continue;
            }
            if let Some(r) = self.ready.get_mut(ev.token().0) {
                r.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
                r.writable |= ev.is_writable() || ev.is_write_closed() || ev.is_error();
            }
        }
        if signalled {
            self.interrupted();
        }
        Ok(())
    }

    /// The readiness seen for `token` since the last call.
    pub fn take_ready(&mut self, token: Token) -> Ready {
        self.ready
            .get_mut(token.0)
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

/// The client's one loop: the reactor and the sources it waits on.
pub struct EventLoop {
    reactor: Reactor,
    server: Option<Conn>,
    /// Watch mode's watcher, while a watch runs.
    watcher: Option<Watcher>,
    /// The prompt's lines, once the prompt reads them.
    lines: Option<Lines>,
    /// An agent's plan connection, while `agent` runs.
    plan: Option<PlanSource>,
}

impl EventLoop {
    /// A loop with signals handled and no connection yet. Idle: SIGINT and
    /// SIGTERM terminate until [`Self::set_idle`] says a command runs.
    pub fn new() -> Result<EventLoop, String> {
        Ok(EventLoop {
            reactor: Reactor::new()?,
            server: None,
            watcher: None,
            lines: None,
            plan: None,
        })
    }

    /// The next line typed at the prompt, waiting for it: `Ok(line)` with
    /// its newline if it had one, an empty line at the end of input.
    pub fn read_line(&mut self) -> io::Result<Vec<u8>> {
        if self.lines.is_none() {
            let lines = Lines::start(self.reactor.registry()).map_err(io::Error::other)?;
            self.lines = Some(lines);
        }
        match self.lines.as_mut() {
            Some(l) if !l.done => match l.rx.recv() {
                Ok(Ok(line)) if !line.is_empty() => Ok(line),
                Ok(r) => {
                    l.done = true;
                    r
                }
                Err(_) => {
                    l.done = true;
                    Ok(Vec::new())
                }
            },
            _ => Ok(Vec::new()),
        }
    }

    /// A line typed at the prompt while a long-running command runs, if
    /// one came (without waiting); `None` also once input ended, or when
    /// no prompt reads stdin.
    pub fn try_line(&mut self) -> Option<Vec<u8>> {
        self.reactor.take_ready(STDIN);
        let l = self.lines.as_mut().filter(|l| !l.done)?;
        match l.rx.try_recv() {
            Ok(Ok(line)) if !line.is_empty() => Some(line),
            Ok(_) | Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                l.done = true;
                None
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => None,
        }
    }

    /// Makes `watcher` a source of the loop: from now on every wait, also
    /// a command's, reads its events.
    pub fn start_watching(&mut self, watcher: Watcher) -> Result<(), NetError> {
        let fd = watcher.raw_fd();
        self.reactor
            .registry()
            .register(&mut SourceFd(&fd), INOTIFY, Interest::READABLE)
            .map_err(|e| NetError::Local(format!("poll: {e}")))?;
        // Events may be waiting already: the first wait reads them.
        self.reactor.ready[INOTIFY.0].readable = true;
        self.watcher = Some(watcher);
        Ok(())
    }

    /// Makes `plan` a source of the loop: from now on every wait, a
    /// command's too, reads what its connection brings.
    pub fn start_agent(&mut self, plan: PlanSource) {
        self.reactor.take_ready(PLAN);
        self.plan = Some(plan);
    }

    /// The agent's plan connection, while `agent` runs.
    pub fn plan(&mut self) -> Option<&mut PlanSource> {
        self.plan.as_mut()
    }

    /// True when the agent's plan connection brought news (another plan,
    /// or a refusal): a watch or a run of `--every` ends between batches
    /// so the agent can act on it.
    pub fn plan_news(&self) -> bool {
        self.plan.as_ref().is_some_and(PlanSource::has_news)
    }

    /// The watcher, while a watch runs.
    pub fn watcher(&mut self) -> Option<&mut Watcher> {
        self.watcher.as_mut()
    }

    /// Ends watching: the watcher leaves the loop (and is dropped, which
    /// closes its descriptor and every watch).
    pub fn stop_watching(&mut self) {
        if let Some(w) = self.watcher.take() {
            let fd = w.raw_fd();
            let _ = self.reactor.registry().deregister(&mut SourceFd(&fd));
        }
        self.reactor.take_ready(INOTIFY);
    }

    /// Waits, with no command running, for the watcher's events, a signal,
    /// or `until` (forever when `None` and nothing else is due), and reads
    /// the watcher's events. [`NetError::Interrupted`] after SIGINT or
    /// SIGTERM.
    pub fn wait_until(&mut self, until: Option<Instant>) -> Result<(), NetError> {
        if self.reactor.interrupted() {
            return Err(NetError::Interrupted);
        }
        let now = Instant::now();
        let more = self.watcher.as_ref().is_some_and(Watcher::has_more);
        let until = if more { Some(now) } else { until };
        self.reactor.timers.set(Timer::Session, None);
        self.reactor.timers.set(Timer::Tick, None);
        self.reactor.timers.set(Timer::Driver, until);
        let plan_at = self.plan.as_ref().and_then(|p| p.deadline(true));
        self.reactor.timers.set(Timer::Plan, plan_at);
        self.reactor.turn(now)?;
        self.reactor.timers.set(Timer::Driver, None);
        self.reactor.timers.set(Timer::Plan, None);
        drain_watcher(&mut self.reactor, self.watcher.as_mut(), more);
        // No command runs: the plan connection may be made again here.
        let ready = self.reactor.take_ready(PLAN);
        if let Some(p) = self.plan.as_mut() {
            p.drive(
                self.reactor.registry(),
                ready.readable,
                ready.writable,
                true,
            );
        }
        if self.reactor.interrupted() {
            return Err(NetError::Interrupted);
        }
        Ok(())
    }

    /// Whether a command runs (`false`) or the client waits for its user.
    pub fn set_idle(&self, idle: bool) {
        self.reactor.idle.store(idle, Ordering::SeqCst);
    }

    /// True once SIGINT or SIGTERM arrived during a command.
    pub fn interrupted(&mut self) -> bool {
        self.reactor.interrupted()
    }

    /// Forgets a SIGINT once it was handled (at the prompt, which goes on
    /// with the next command). False, and nothing forgotten, when SIGTERM
    /// came too: that one ends the client.
    pub fn clear_interrupted(&mut self) -> bool {
        self.reactor.interrupted();
        if self.reactor.terminated {
            return false;
        }
        self.reactor.interrupted = false;
        true
    }

    /// Forgets SIGINT and SIGTERM once a long-running command stopped for
    /// them; `Some(true)` when SIGTERM came (the client ends), `Some(false)`
    /// for SIGINT alone, `None` when no signal came.
    pub fn take_interrupt(&mut self) -> Option<bool> {
        self.reactor.interrupted();
        let r = self.reactor.interrupted.then_some(self.reactor.terminated);
        self.reactor.interrupted = false;
        self.reactor.terminated = false;
        r
    }

    /// Caps file bodies, sent and received, to `rate` bytes a second
    /// (`--bwlimit`); `None`: as fast as they go.
    pub fn set_bwlimit(&mut self, rate: Option<u64>) {
        self.reactor.rate = rate.map(|r| Bucket::new(r, Instant::now()));
    }

    /// The file body bytes sent or received since the last call: what
    /// really crossed the wire, whether or not the command finished.
    pub fn take_moved(&mut self) -> u64 {
        std::mem::take(&mut self.reactor.moved)
    }

    /// The connection to `remote` with the reactor, for a command: the open
    /// one while its session lives, else a new one, welcomed. A connection
    /// the server closed while the client was idle (its idle timeout, a
    /// restart) is noticed here, before the command is sent on it, and
    /// replaced quietly; a failure to connect again is the command's error.
    pub fn link(&mut self, remote: &Remote) -> Result<Link<'_>, NetError> {
        if let Some(c) = self.server.as_mut() {
            // Nothing is expected between commands but the server's
            // goodbye (an `Error` frame, then EOF): read it without waiting.
            c.mark_ready(true, false);
            if c.step(Instant::now(), None, None).is_err() || c.session.is_closed() {
                log::debug!("{}: the idle connection was closed: reconnecting", c.shown);
                self.disconnect();
            }
        }
        if self.server.is_none() {
            self.connect(remote)?;
        }
        match self.server.as_mut() {
            Some(conn) => Ok(Link {
                conn,
                reactor: &mut self.reactor,
                watcher: self.watcher.as_mut(),
                plan: self.plan.as_mut(),
            }),
            None => Err(NetError::Lost {
                server: remote.shown(),
                cause: "connection lost".into(),
            }),
        }
    }

    /// Drops the connection (the next [`Self::link`] opens a new one).
    pub fn disconnect(&mut self) {
        if let Some(mut c) = self.server.take() {
            c.deregister(self.reactor.registry());
        }
        self.reactor.take_ready(SERVER);
    }

    /// Connects, registers the socket and drives the handshake to the
    /// server's welcome (or its refusal, or the session's hello timeout).
    fn connect(&mut self, remote: &Remote) -> Result<(), NetError> {
        let mut conn = Conn::connect(remote)?;
        conn.register(self.reactor.registry(), SERVER)?;
        self.reactor.take_ready(SERVER);
        let conn = self.server.insert(conn);
        let r = Link {
            conn,
            reactor: &mut self.reactor,
            watcher: self.watcher.as_mut(),
            plan: self.plan.as_mut(),
        }
        .await_welcome();
        if r.is_err() {
            self.disconnect();
        }
        r
    }
}

/// How long long work may keep the connection silent before a keepalive
/// ([`Link::keep_alive`]).
const KEEPALIVE: Duration = Duration::from_secs(30);

/// A command's hold on the loop: the server connection, and the reactor to
/// wait in when nothing moves.
pub struct Link<'a> {
    conn: &'a mut Conn,
    reactor: &'a mut Reactor,
    /// Watch mode's watcher: its events are read at every wait.
    watcher: Option<&'a mut Watcher>,
    /// An agent's plan connection: read at every wait too (never made
    /// again within a command: that waits for the agent's next idle wait).
    plan: Option<&'a mut PlanSource>,
}

impl Link<'_> {
    /// The protocol session.
    pub fn session(&mut self) -> &mut ClientSession {
        &mut self.conn.session
    }

    /// The server refuses writes.
    pub fn read_only(&self) -> bool {
        self.conn.read_only
    }

    /// `(st_dev, st_ino)` of the server's backup root when the server runs
    /// on this machine (a device and inode number from another machine
    /// could match a directory here by chance); `None` otherwise.
    pub fn local_store(&self) -> Option<(u64, u64)> {
        let id = self.conn.session.store_identity();
        (id != (0, 0) && self.conn.is_local()).then_some(id)
    }

    /// The error for an `Error` frame from the server.
    pub fn refused(&self, code: ErrorCode, message: &str) -> NetError {
        self.conn.refused(code, message)
    }

    /// The error for a session that ended.
    pub fn broken(&self) -> NetError {
        self.conn.broken()
    }

    /// True once SIGINT or SIGTERM arrived (read without waiting): for
    /// work that runs long between steps.
    pub fn interrupted(&mut self) -> bool {
        self.reactor.interrupted()
    }

    /// Between pieces of long work without steps (matching or signing a
    /// large file): stops at an interrupt, and says the client is alive
    /// when nothing was sent for [`KEEPALIVE`] since `quiet` (the server's
    /// idle timeout counts traffic). Cheap enough for every MiB read.
    pub fn keep_alive(&mut self, quiet: &mut Instant) -> Result<(), NetError> {
        if self.interrupted() {
            return Err(NetError::Interrupted);
        }
        if quiet.elapsed() >= KEEPALIVE {
            self.session().send_keepalive();
            self.step(None)?;
            *quiet = Instant::now();
        }
        Ok(())
    }

    /// True under `--bwlimit`: every body goes through the pacing of
    /// [`Link::step`], none with the frames.
    pub fn bwlimited(&self) -> bool {
        self.reactor.rate.is_some()
    }

    /// Counts `n` body bytes queued with the frames (a small file's, read
    /// into memory) among those [`EventLoop::take_moved`] reports: counted
    /// when queued, at most the queue's [`crate::client::plan::HIGH_WATER`]
    /// ahead of the wire.
    pub fn queued_body(&mut self, n: u64) {
        self.reactor.moved += n;
    }

    /// Writes the frames queued so far, as far as the socket takes them
    /// now; never waits (the next [`Link::step`] writes the rest).
    pub fn flush(&mut self) -> Result<(), NetError> {
        self.conn.flush(Instant::now()).map(|_| ())
    }

    /// Moves what can move (frames, then `body` bytes, then answers) and
    /// waits for the loop when nothing could. Returns the body bytes sent.
    pub fn step(&mut self, mut body: Option<&mut BodySender>) -> Result<u64, NetError> {
        let s = self.conn.step(
            Instant::now(),
            body.as_deref_mut(),
            self.reactor.rate.as_mut(),
        )?;
        self.reactor.moved += s.body;
        if !s.progress && body.is_none_or(|b| !b.is_done()) {
            self.wait(s.throttled)?;
        }
        Ok(s.body)
    }

    /// Receives body bytes of a restored file into `file` (or drops them),
    /// waiting when nothing moved. Returns the bytes received.
    pub fn receive(
        &mut self,
        recv: &mut BodyReceiver,
        file: Option<&std::os::fd::OwnedFd>,
    ) -> Result<u64, NetError> {
        let s: Stepped =
            self.conn
                .receive(Instant::now(), recv, file, self.reactor.rate.as_mut())?;
        self.reactor.moved += s.body;
        if !s.progress && !recv.is_done() {
            self.wait(s.throttled)?;
        }
        Ok(s.body)
    }

    /// The one wait of the client: until the socket is ready, a signal, the
    /// session's deadline, the redraw tick or, when `throttled` (the last
    /// step held body bytes back for `--bwlimit`), the bucket's refill. A
    /// due deadline reaches the session only when the socket stayed quiet:
    /// bytes waiting to be read are progress, however late the loop looks
    /// at them (the handshake's absolute deadline is also checked after
    /// every step, see `Self::await_welcome`).
    ///
    /// Throttled, a readiness edge that comes before the refill (more of a
    /// restore arriving) is recorded and waited past, so the step after
    /// the wait has bytes to move instead of finding the bucket empty
    /// again: the client wakes about once per quantum, not per packet.
    fn wait(&mut self, throttled: bool) -> Result<(), NetError> {
        if self.reactor.interrupted() {
            return Err(NetError::Interrupted);
        }
        let now = Instant::now();
        let more = self.watcher.as_deref().is_some_and(Watcher::has_more);
        let refill = match (&self.reactor.rate, throttled) {
            (Some(bucket), true) => bucket.ready_at(now),
            _ => None,
        };
        let timers = &mut self.reactor.timers;
        timers.set(Timer::Session, self.conn.session.poll_timeout());
        timers.set(
            Timer::Tick,
            Some(now + if more { Duration::ZERO } else { TICK }),
        );
        timers.set(Timer::Rate, refill);
        timers.set(
            Timer::Plan,
            self.plan.as_deref().and_then(|p| p.deadline(false)),
        );
        self.reactor.turn(now)?;
        drain_watcher(self.reactor, self.watcher.as_deref_mut(), more);
        let ready = self.reactor.take_ready(PLAN);
        if let Some(p) = self.plan.as_deref_mut() {
            p.drive(
                self.reactor.registry(),
                ready.readable,
                ready.writable,
                false,
            );
        }
        if refill.is_some() {
            // Only a due timer (the refill, the tick, the session's) or a
            // signal ends a throttled wait; the watcher is read meanwhile.
            while !self.reactor.interrupted() {
                let now = Instant::now();
                if self.reactor.timers.next().is_some_and(|t| t <= now) {
                    break;
                }
                self.reactor.turn(now)?;
                drain_watcher(self.reactor, self.watcher.as_deref_mut(), false);
            }
            self.reactor.timers.set(Timer::Rate, None);
        }
        if self.reactor.interrupted() {
            return Err(NetError::Interrupted);
        }
        let ready = self.reactor.take_ready(SERVER);
        self.conn.mark_ready(ready.readable, ready.writable);
        let now = Instant::now();
        if self.reactor.timers.take_due(Timer::Session, now) && !ready.any() {
            self.conn.session.handle_timeout(now);
        }
        Ok(())
    }

    /// Drives the handshake until the server's welcome.
    fn await_welcome(&mut self) -> Result<(), NetError> {
        loop {
            self.step(None)?;
            match self.conn.session.poll_event() {
                Some(Event::Welcome { read_only }) => {
                    self.conn.read_only = read_only;
                    return Ok(());
                }
                Some(Event::Refused { code, message }) => return Err(self.refused(code, &message)),
                Some(_) => {
                    return Err(NetError::Protocol {
                        server: self.conn.shown.clone(),
                        message: "protocol error during handshake".into(),
                    })
                }
                None if self.conn.session.is_closed() => return Err(self.broken()),
                None => {}
            }
            // The handshake's deadline holds even while bytes trickle in.
            self.conn.session.handle_timeout(Instant::now());
            if self.conn.session.is_closed() {
                return Err(self.broken());
            }
        }
    }
}

/// Reads the watcher's events if its descriptor became readable (or a
/// drain stopped short: `more`).
fn drain_watcher(reactor: &mut Reactor, watcher: Option<&mut Watcher>, more: bool) {
    let ready = reactor.take_ready(INOTIFY);
    if let Some(w) = watcher {
        if ready.readable || more {
            w.drain(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_by_name_and_the_earliest_leads() {
        let t0 = Instant::now();
        let mut t = NamedTimers::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Tick, Some(t0 + Duration::from_secs(2)));
        t.set(Timer::Session, Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        t.set(Timer::Session, Some(t0 + Duration::from_secs(3)));
        assert_eq!(
            t.next(),
            Some(t0 + Duration::from_secs(2)),
            "moved, not added"
        );
        assert!(!t.take_due(Timer::Session, t0 + Duration::from_secs(2)));
        assert!(t.take_due(Timer::Tick, t0 + Duration::from_secs(2)));
        assert!(
            !t.take_due(Timer::Tick, t0 + Duration::from_secs(2)),
            "cleared"
        );
        t.set(Timer::Session, None);
        assert_eq!(t.next(), None);
    }
}
