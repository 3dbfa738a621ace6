//! The server's I/O shell: one event loop ([`event_loop`]) that owns the
//! poll, the listener, the signals, the worker pool and every connection;
//! [`run`] starts it. The connection kinds live in [`conn`]; what a backup
//! connection does with its session's commands in [`exec`], [`stream`] and
//! [`jobs`]. Nothing here decides protocol matters: the pure
//! [`crate::server`] session does.
//!
//! Readiness is edge-triggered: a connection is registered once for reading
//! and writing, and the loop remembers in `readable`/`writable` that a socket
//! may still have data until a call returns `WouldBlock`. A connection that
//! uses up its per-wakeup budget is put on the `ready` list and driven again
//! on the next turn, after the others had theirs, so one fast client cannot
//! starve the rest and no edge is lost.

mod conn;
mod event_loop;
mod exec;
mod jobs;
mod rsb_conn;
mod stream;

use std::path::PathBuf;

use mio::net::TcpListener;
use mio::{Interest, Poll};
use signal_hook_mio::v1_0::Signals;

use super::sandbox::Beneath;
use super::worker::Workers;
use crate::server::session::SessionConfig;
use event_loop::{serve, LISTENER, SIGNALS, WAKER, WORKERS};

/// What the server was told to do.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The backup root.
    pub root: PathBuf,
    /// `--max-clients`.
    pub max_clients: usize,
    /// Settings for every session.
    pub session: SessionConfig,
}

/// Opens (creating it if missing) the backup root.
pub fn open_root(config: &ServerConfig) -> Result<Beneath, String> {
    Beneath::open_root(&config.root, true).map_err(|e| e.to_string())
}

/// Runs the server until SIGINT or SIGTERM. Errors are fatal start-up or
/// loop failures; a client's misbehaviour never ends the loop.
pub fn run(
    config: ServerConfig,
    root: Beneath,
    listener: std::net::TcpListener,
    mut signals: Signals,
) -> Result<(), String> {
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut listener = TcpListener::from_std(listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(|e| format!("register listener: {e}"))?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(|e| format!("register signals: {e}"))?;

    let waker = mio::Waker::new(poll.registry(), WAKER).map_err(|e| format!("waker: {e}"))?;
    let workers = Workers::start(WORKERS, waker).map_err(|e| format!("workers: {e}"))?;
    let result = serve(
        &config,
        &root,
        &mut poll,
        &mut listener,
        &mut signals,
        &workers,
    );
    // A commit under way is finished, never cut off.
    workers.shutdown();
    result
}
