//! The I/O shell: every syscall of the program lives below this module. The
//! protocol sessions never see a socket or a file; the loops here feed them
//! bytes and completions and carry out what they ask for.

pub mod client;
pub mod log;
pub mod sandbox;
pub mod server_loop;
pub mod stage;
pub mod transfer;
pub mod walk;
