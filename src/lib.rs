//! rsb: remote system backup.
//!
//! The crate is built in three rings (see the README's architecture section):
//!
//! * [`proto`]: the wire protocol (frames, codec, wire paths) — pure.
//! * [`server`] (split by concern) and [`client::session`]: per-connection
//!   protocol state machines — pure: bytes and completions in, bytes and
//!   commands out.
//! * [`store`]: the store's rules (hidden names, what is unchanged, the
//!   checksum record) — pure.
//! * [`testing`]: the in-memory harness for the pure ring: sessions wired
//!   together byte for byte on a virtual clock, a fake shell, a bounded
//!   drive.
//! * [`io`]: every syscall: the mio event loops, the sandboxed store,
//!   sendfile/splice transfers, the local tree walk, signals.
//!
//! The binaries in `src/bin/` parse options, build a config, run, and map the
//! outcome to an exit status from [`exit`].

pub mod auth;
pub mod client;
pub mod exit;
pub mod io;
pub mod proto;
pub mod server;
pub mod store;
pub mod testing;
