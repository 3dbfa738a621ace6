//! The server's I/O shell. [`Server::start`] opens what the server needs
//! before it says it is listening (signal handlers, the backup root, the
//! listening socket); [`Server::run`] hands them to one `EventLoop`
//! (`event_loop.rs`) that serves until SIGINT or SIGTERM.
//!
//! The loop holds connections by kind (`conn.rs`: today the backup
//! protocol, `rsb_conn/`); what a backup connection does with its
//! session's commands is in `rsb_conn/exec.rs` (the store),
//! `rsb_conn/stream.rs` (listings and restores) and `rsb_conn/jobs.rs`
//! (the worker pool). Nothing here decides a
//! protocol matter: the pure [`crate::server`] session does, and every
//! syscall it needs is made here.

mod conn;
mod event_loop;
mod plans;
mod rsb_conn;
pub(crate) mod tls;
mod web_conn;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use log::warn;
use signal_hook_mio::v1_0::Signals;

use super::error::FsError;
use super::net;
use super::store::Store;
use super::worker::Workers;
use crate::server::peers::PeerLimits;
use crate::server::session::SessionConfig;
use crate::server::status::Status;
use event_loop::EventLoop;
use plans::PlanBook;
use tls::Tls;

/// What the server was told to do.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The backup root.
    pub root: PathBuf,
    /// `--address`: listen there only (`None`: every interface).
    pub addr: Option<IpAddr>,
    /// `--port` (0: any free port).
    pub port: u16,
    /// `--max-clients`.
    pub max_clients: usize,
    /// `--max-per-address`: connections one address may hold (0: no
    /// limit).
    pub max_per_address: usize,
    /// Settings for every session.
    pub session: SessionConfig,
    /// `--keep`: the retention policy the pruner applies to history.
    pub keep: crate::store::retention::Keep,
    /// `--http`: the web interface, if asked for.
    pub web: Option<WebConfig>,
}

/// What `--http` and the options that go with it say.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// The address in `--http ADDR:PORT` (`None`: `--address`'s, or
    /// 127.0.0.1 when that is unset too).
    pub addr: Option<IpAddr>,
    /// The port (0: any free one).
    pub port: u16,
    /// `--admin` names: they see every namespace and edit plans.
    pub admins: Vec<String>,
    /// `--http-host` names: without `--secrets`, the `Host`s answered
    /// besides IP addresses and `localhost`.
    pub hosts: Vec<String>,
    /// `--tls-cert` and `--tls-key`.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// `--http-max`: web connections open at once at most.
    pub max_connections: usize,
}

impl WebConfig {
    /// The address the web interface listens on.
    pub fn ip(&self, server: Option<IpAddr>) -> IpAddr {
        self.addr
            .or(server)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

/// Why the server could not start, or its loop stopped. A client's
/// misbehaviour is never one of these: it ends only its connection.
#[derive(Debug)]
pub enum ServerError {
    /// The signal handlers could not be installed.
    Signals(io::Error),
    /// The backup root could not be opened or created.
    Root(FsError),
    /// The listening socket could not be made.
    Listen {
        /// `--address`, if given.
        addr: Option<IpAddr>,
        /// `--port`.
        port: u16,
        /// Why.
        error: io::Error,
    },
    /// The web interface's TLS certificate could not be loaded or made.
    Tls(String),
    /// The plans file could not be read.
    Plans(FsError),
    /// A step of setting up or running the loop failed.
    Loop {
        /// Which (`poll`, `waker`, `workers`, ...).
        op: &'static str,
        /// Why.
        error: io::Error,
    },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Signals(e) => write!(f, "signals: {e}"),
            ServerError::Root(e) => write!(f, "backup root: {e}"),
            ServerError::Listen { addr, port, error } => {
                let shown = addr.map_or_else(|| "*".to_string(), |a| a.to_string());
                write!(f, "cannot listen on {shown}:{port}: {error}")
            }
            ServerError::Loop { op, error } => write!(f, "{op}: {error}"),
            ServerError::Tls(e) => write!(f, "tls: {e}"),
            ServerError::Plans(e) => write!(f, "plans: {e}"),
        }
    }
}

impl std::error::Error for ServerError {}

/// What every connection's commands reach besides their own state.
pub(in crate::io::server) struct Env {
    /// The server's options.
    pub(super) config: ServerConfig,
    /// The backup root; each client's namespace is a directory in it.
    pub(super) root: Store,
    /// The pool that commits and verifies off the loop.
    pub(super) workers: Workers,
    /// What every client is doing and did (the dashboard, `/metrics`).
    pub(super) status: RefCell<Status>,
    /// `DIR/.rsb-plans`: what each client's agent runs. Here rather than
    /// on the loop alone because an agent's `Agent` is answered from it
    /// at once, by its connection's commands, and the web interface's
    /// plan changes are written through it; the loop reloads it and
    /// tells the agents of changes ([`EventLoop`]'s `plans_changed`).
    pub(super) plans: RefCell<PlanBook>,
    /// The web interface, when `--http` was given.
    pub(super) web: Option<WebEnv>,
    /// What connections asked the loop to do after this turn.
    pub(super) actions: RefCell<Vec<LoopAction>>,
}

/// What a connection asks of the whole loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoopAction {
    /// A plan changed: every agent hears its own again.
    PlansChanged,
}

/// The web interface's settings and shared state.
pub(super) struct WebEnv {
    /// Where it listens.
    pub(super) addr: SocketAddr,
    /// That address is a loopback one.
    pub(super) loopback: bool,
    /// `--admin` names.
    pub(super) admins: Vec<String>,
    /// `--http-host` names.
    pub(super) hosts: Vec<String>,
    /// TLS, when the page is served over it.
    pub(super) tls: Option<Arc<Tls>>,
    /// Keys the CSRF tokens; drawn at every start.
    pub(super) csrf_key: [u8; 32],
    /// Failed logins per address (and their backoff).
    pub(super) peers: RefCell<PeerLimits<IpAddr>>,
    /// Files checked whole against their crc32c: good or damaged.
    pub(super) verdicts: RefCell<HashMap<web_conn::FileId, bool>>,
    /// Each namespace's history as last read, with the stamp of its
    /// history directory then (read again when the stamp changes).
    pub(super) histories: RefCell<HashMap<String, web_conn::CachedHistory>>,
    /// Those checks in flight, and the range answers waiting for each.
    pub(super) checks: RefCell<web_conn::Checks>,
    /// `--http-max`.
    pub(super) max_connections: usize,
}

/// A server that has everything open and is ready to serve.
pub struct Server {
    config: ServerConfig,
    root: Store,
    listener: std::net::TcpListener,
    signals: Signals,
    /// The web interface's socket and TLS, when `--http` was given.
    web: Option<(std::net::TcpListener, Option<Arc<Tls>>)>,
}

impl Server {
    /// Raises the open-file limit (warning when it is below what
    /// `--max-clients` busy clients need), installs the signal handlers,
    /// opens (creating it if missing) the backup root and binds the
    /// listening socket, in that order.
    pub fn start(config: ServerConfig) -> Result<Server, ServerError> {
        let fds = net::raise_fd_limit();
        // A busy connection holds its socket, a pipe (two fds), the file
        // being moved, its namespace and a directory: six descriptors.
        // A web connection holds its socket and, while it sends, a file.
        let web = config.web.as_ref().map_or(0, |w| w.max_connections as u64);
        let wanted = (config.max_clients as u64)
            .saturating_mul(6)
            .saturating_add(web.saturating_mul(2))
            .saturating_add(32);
        if let Some(n) = fds.filter(|n| *n < wanted) {
            warn!(
                "the open-file limit ({n}) is below what {} busy clients need (about {wanted}); raise it (ulimit -n) or lower -c",
                config.max_clients
            );
        }
        let signals = super::signals::install().map_err(ServerError::Signals)?;
        let root = Store::open(&config.root).map_err(ServerError::Root)?;
        let mut config = config;
        // Told to every client, whose walk then skips the store.
        config.session.store = root.identity();
        let listener =
            net::listen(config.addr, config.port).map_err(|error| ServerError::Listen {
                addr: config.addr,
                port: config.port,
                error,
            })?;
        let web = match &config.web {
            None => None,
            Some(w) => Some(open_web(&config, w)?),
        };
        Ok(Server {
            config,
            root,
            listener,
            signals,
            web,
        })
    }

    /// Where the web interface listens, and whether through TLS.
    pub fn web_addr(&self) -> Option<(SocketAddr, bool)> {
        let (l, tls) = self.web.as_ref()?;
        l.local_addr().ok().map(|a| (a, tls.is_some()))
    }

    /// The SHA-256 fingerprint of the web interface's certificate.
    pub fn web_fingerprint(&self) -> Option<String> {
        let (_, tls) = self.web.as_ref()?;
        tls.as_ref().map(|t| t.fingerprint().to_string())
    }

    /// The address the server listens on (the real port when `--port 0`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The options it runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Serves until SIGINT or SIGTERM and the shutdown that follows.
    pub fn run(self) -> Result<(), ServerError> {
        EventLoop::new(
            self.config,
            self.root,
            self.listener,
            self.signals,
            self.web,
        )?
        .run()
    }
}

/// Binds the web interface's socket and sets up its TLS: the files given,
/// or, with `--secrets` on an address other than loopback (Basic
/// credentials would cross the network in the clear), a self-signed
/// certificate the server makes once under the root.
fn open_web(
    config: &ServerConfig,
    w: &WebConfig,
) -> Result<(std::net::TcpListener, Option<Arc<Tls>>), ServerError> {
    let ip = w.ip(config.addr);
    let tls = match &w.tls_files {
        Some((cert, key)) => {
            Some(Tls::load(cert, key).map_err(|e| ServerError::Tls(e.to_string()))?)
        }
        None if config.session.secrets.is_some() && !ip.is_loopback() => {
            let mut names = vec!["localhost".to_string()];
            if !ip.is_unspecified() {
                names.push(ip.to_string());
            }
            if let Ok(h) = nix::unistd::gethostname() {
                if let Some(h) = h.to_str().filter(|h| !h.is_empty()) {
                    names.push(h.to_string());
                }
            }
            Some(
                Tls::self_signed(&config.root, &names)
                    .map_err(|e| ServerError::Tls(e.to_string()))?,
            )
        }
        None => None,
    };
    let listener = net::listen(Some(ip), w.port).map_err(|error| ServerError::Listen {
        addr: Some(ip),
        port: w.port,
        error,
    })?;
    Ok((listener, tls.map(Arc::new)))
}

/// What a connection's deadline turned out to mean when it came due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// The deadline moved later (or went): arm it again.
    NotYet,
    /// The session took the timeout; drive the connection.
    Fired,
    /// The peer never took its last frames: close without waiting.
    Abandon,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start-up failures read as the binary printed them before the
    /// loop became an object (`rsb-server: ERROR: ...`).
    #[test]
    fn start_errors_keep_their_messages() {
        let refused = || io::Error::from_raw_os_error(nix::libc::EADDRINUSE);
        let any = ServerError::Listen {
            addr: None,
            port: 5000,
            error: refused(),
        };
        assert_eq!(
            any.to_string(),
            format!("cannot listen on *:5000: {}", refused())
        );
        let one = ServerError::Listen {
            addr: Some("::1".parse().unwrap()),
            port: 7,
            error: refused(),
        };
        assert!(one.to_string().starts_with("cannot listen on ::1:7: "));
        let poll = ServerError::Loop {
            op: "register listener",
            error: refused(),
        };
        assert!(poll.to_string().starts_with("register listener: "));
        assert!(ServerError::Signals(refused())
            .to_string()
            .starts_with("signals: "));
    }
}
