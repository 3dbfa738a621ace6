//! The server: its per-connection protocol session (pure). The event loop
//! that drives it lives in [`crate::io::server_loop`].

pub mod session;
