//! The shared test harness for the pure ring: sessions wired together in
//! memory, byte for byte, on a virtual clock, with a bounded drive (after
//! quinn-proto's `tests/util.rs` `Pair` and str0m's test harness).
//!
//! * [`clock`]: [`Clock`], the virtual time every session of a test shares;
//! * [`frames`]: frame builders and decoders;
//! * [`server`]: [`ServerEnd`], a server session with its [`FakeShell`]
//!   and its bytes in and out, usable alone with raw frames;
//! * [`shell`]: [`FakeShell`], a scripted stand-in for the server's I/O
//!   shell (namespace, staging, commits, listings, restores, verifies);
//! * [`client`]: [`ClientEnd`], a client session with its bytes in and out
//!   (every call into the client session is in that one file), and the
//!   helpers its unit tests use on a bare session;
//! * [`pair`]: [`Pair`] (one connection) and [`Net`] (several on one
//!   clock, for scenarios such as sync groups), driven until quiet or for
//!   at most a given number of steps ([`NotQuiescent`]).
//!
//! Compiled into the library (not only under `cfg(test)`) so that unit
//! tests anywhere in `src/`, and integration tests or fuzz harnesses that
//! want sessions without sockets, can share it (today the unit tests of
//! both sessions and of the client's planner and restore rules use it).
//! Nothing in
//! it touches a socket, a file or a thread; the clock's origin is the one
//! real time it reads. Its helpers panic on what a test must not see (a
//! malformed frame, say): that is their job.

pub mod client;
pub mod clock;
pub mod frames;
pub mod pair;
pub mod server;
pub mod shell;

pub use client::ClientEnd;
pub use clock::Clock;
pub use pair::{Net, NotQuiescent, Pair};
pub use server::ServerEnd;
pub use shell::{Answer, FakeShell, RestoreEntry, VerifyBatch};
