//! The server's pure half: one connection's protocol decisions, split by
//! concern. Nothing here touches a socket, a file, a clock or a thread;
//! the event loop that drives it lives in [`crate::io::server`].
//!
//! * [`session`]: the state machine, its inputs (`handle_*`), outputs
//!   (`poll_*`) and predicates, with one child module per protocol phase
//!   (each an `impl ServerSession` block, so a phase may use the session's
//!   private state without the two files importing each other):
//!   [`session::handshake`] (hello, challenge, proof, welcome),
//!   [`session::receive`] (batch limits, reserved names, the body verdict),
//!   [`session::stream`] (list, restore and verify answers, the offer
//!   policy);
//! * [`command`]: [`command::Command`] out to the shell, and the typed
//!   [`command::Completion`] that comes back;
//! * [`peers`]: connections per address and failed-login backoff;
//! * [`plans`]: the plans that configure agents, their file format;
//! * [`status`]: what every client is doing and did, for the dashboard
//!   and `/metrics`;
//! * [`web`]: the web interface's requests, answers and pages.

pub mod command;
pub mod peers;
pub mod plans;
pub mod session;
pub mod status;
pub mod web;
