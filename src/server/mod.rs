//! The server's pure half: one connection's protocol decisions, split by
//! concern. Nothing here touches a socket, a file, a clock or a thread;
//! the event loop that drives it lives in [`crate::io::server`].
//!
//! * [`session`]: the state machine, its inputs (`handle_*`), outputs
//!   (`poll_*`) and predicates;
//! * [`command`]: [`command::Command`] out to the shell, and the typed
//!   [`command::Completion`] that comes back;
//! * [`handshake`]: hello, challenge, proof, welcome;
//! * [`receive`]: batch limits, reserved names, the body verdict;
//! * [`stream`]: list, restore and verify answers, and the offer policy.

pub mod command;
pub mod handshake;
pub mod receive;
pub mod session;
pub mod stream;
