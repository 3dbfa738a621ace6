//! An agent's plan connection ([`PlanSource`]): one more source of the
//! client's one loop, read at every wait (a watch's and a backup's too).
//! It says `Agent`, keeps the connection alive with a ping every
//! [`crate::proto::AGENT_PING`] (one unanswered for [`PING_ANSWER`] means
//! the server is gone), and when the connection is lost makes it again
//! with the backoff of [`crate::client::schedule::Backoff`], only when
//! the loop says no command runs (connecting blocks, at most
//! `CONNECT_TIMEOUT` per address). It keeps the latest plan text the
//! server sent; what to do with it is [`super::agent`]'s. It owns no poll
//! and decides nothing about the protocol (the session does).

use std::time::{Duration, Instant};

use mio::{Registry, Token};

use super::conn::{Conn, Remote};
use super::error::NetError;
use crate::client::schedule::Backoff;
use crate::client::session::Event;

/// A keepalive unanswered this long: the plan connection is given up
/// (and made again).
pub const PING_ANSWER: Duration = Duration::from_secs(30);
/// Most frame steps of the plan connection per wait (a server that floods
/// it cannot hold the loop).
const STEPS: usize = 64;

/// What the plan connection brought.
#[derive(Debug)]
pub enum News {
    /// The plan of the client's name now: one block's text, empty for none.
    Plan(Vec<u8>),
    /// The server refused the client for good (its secret, its name, its
    /// version): the agent ends with status 2.
    Fatal(NetError),
}

/// The agent's plan connection (see the module's docs).
pub struct PlanSource {
    remote: Remote,
    /// The loop's token for its socket.
    token: Token,
    conn: Option<Conn>,
    /// Welcomed, and the `Agent` sent.
    following: bool,
    backoff: Backoff,
    /// When to connect again, while there is no connection.
    connect_at: Option<Instant>,
    /// When the next keepalive goes out.
    next_ping: Option<Instant>,
    /// An `Agent` sent and not yet answered, since then.
    ping_sent: Option<Instant>,
    /// The latest plan text the server sent.
    latest: Option<Vec<u8>>,
    /// The text the agent last took ([`Self::take_news`]).
    taken: Option<Vec<u8>>,
    fatal: Option<NetError>,
}

impl PlanSource {
    /// A plan connection to `remote`, registered under `token`, made at
    /// the first wait.
    pub fn new(remote: Remote, token: Token) -> PlanSource {
        PlanSource {
            remote,
            token,
            conn: None,
            following: false,
            backoff: Backoff::new(),
            connect_at: Some(Instant::now()),
            next_ping: None,
            ping_sent: None,
            latest: None,
            taken: None,
            fatal: None,
        }
    }

    /// True when there is news for the agent: a plan other than the one
    /// it runs, or a fatal refusal.
    pub fn has_news(&self) -> bool {
        self.fatal.is_some() || (self.latest.is_some() && self.latest != self.taken)
    }

    /// The news, taken: the agent runs that plan from now on.
    pub fn take_news(&mut self) -> Option<News> {
        if let Some(e) = self.fatal.take() {
            return Some(News::Fatal(e));
        }
        if !self.has_news() {
            return None;
        }
        self.taken.clone_from(&self.latest);
        self.latest.clone().map(News::Plan)
    }

    /// When the loop must drive it next: its handshake's deadline, the next
    /// keepalive, the end of an unanswered ping's wait and, when
    /// `may_connect` (no command runs), the next connection attempt.
    pub fn deadline(&self, may_connect: bool) -> Option<Instant> {
        let hello = self.conn.as_ref().and_then(|c| c.session.poll_timeout());
        [
            hello,
            self.next_ping.filter(|_| self.conn.is_some()),
            self.ping_sent.map(|t| t + PING_ANSWER),
            self.connect_at
                .filter(|_| may_connect && self.fatal.is_none()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Moves the plan connection on: reads what came, sends the keepalive
    /// when due, and (when `may_connect`) connects again once the backoff
    /// is over. Never waits but for a connect.
    /// `readable`/`writable`: the readiness the loop saw for the token.
    pub fn drive(
        &mut self,
        registry: &Registry,
        readable: bool,
        writable: bool,
        may_connect: bool,
    ) {
        let now = Instant::now();
        if self.conn.is_none() {
            let due = self.connect_at.is_some_and(|t| t <= now);
            if !(may_connect && due && self.fatal.is_none()) {
                return;
            }
            match Conn::connect(&self.remote) {
                Ok(mut c) => match c.register(registry, self.token) {
                    Ok(()) => {
                        log::debug!("agent: plan connection to {} made", c.shown);
                        self.conn = Some(c);
                        self.connect_at = None;
                    }
                    Err(e) => return self.lost(registry, e),
                },
                Err(e) if e.is_fatal() => {
                    self.fatal = Some(e);
                    return;
                }
                Err(e) => return self.lost(registry, e),
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        conn.mark_ready(readable, writable);
        if conn.session.poll_timeout().is_some_and(|t| t <= now) {
            conn.session.handle_timeout(now);
        }
        if self.ping_sent.is_some_and(|t| now >= t + PING_ANSWER) {
            let e = NetError::Lost {
                server: conn.shown.clone(),
                cause: format!("no answer to a keepalive in {} s", PING_ANSWER.as_secs()),
            };
            return self.lost(registry, e);
        }
        if self.following && self.next_ping.is_some_and(|t| t <= now) {
            conn.session.send_agent();
            self.ping_sent.get_or_insert(now);
            self.next_ping = Some(now + crate::proto::AGENT_PING);
        }
        for _ in 0..STEPS {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let stepped = match conn.step(now, None, None) {
                Ok(s) => s,
                Err(e) => return self.lost(registry, e),
            };
            while let Some(ev) = conn.session.poll_event() {
                match ev {
                    Event::Welcome { .. } => {
                        self.following = true;
                        conn.session.send_agent();
                        self.ping_sent = Some(now);
                        self.next_ping = Some(now + crate::proto::AGENT_PING);
                    }
                    Event::Plan { text } => {
                        self.ping_sent = None;
                        self.backoff.succeeded();
                        self.latest = Some(text);
                    }
                    Event::Refused { code, message } => {
                        let e = conn.refused(code, &message);
                        if e.is_fatal() {
                            self.drop_conn(registry);
                            self.fatal = Some(e);
                            return;
                        }
                        return self.lost(registry, e);
                    }
                    _ => {}
                }
            }
            if conn.session.is_closed() {
                let e = conn.broken();
                if e.is_fatal() {
                    self.drop_conn(registry);
                    self.fatal = Some(e);
                    return;
                }
                return self.lost(registry, e);
            }
            if !stepped.progress {
                return;
            }
        }
    }

    fn drop_conn(&mut self, registry: &Registry) {
        if let Some(mut c) = self.conn.take() {
            c.deregister(registry);
        }
        self.following = false;
        self.ping_sent = None;
        self.next_ping = None;
    }

    /// The connection is gone (or could not be made): the plan heard last
    /// keeps running, and the next attempt waits for the backoff.
    fn lost(&mut self, registry: &Registry, e: NetError) {
        self.drop_conn(registry);
        let wait = self.backoff.failed(random());
        self.connect_at = Some(Instant::now() + wait);
        log::warn!(
            "agent: plan connection: {e}; keeping the current plan, trying again in {:.1} s",
            wait.as_secs_f64()
        );
    }
}

/// A number for the backoff's jitter.
fn random() -> u32 {
    crate::io::random_bytes()
        .map(|b: [u8; 4]| u32::from_le_bytes(b))
        .unwrap_or(0)
}
