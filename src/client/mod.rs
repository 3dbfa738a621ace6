//! The client: its protocol session (pure) and its command-line interface
//! helpers (pure). Its I/O loop lives in [`crate::io`].

pub mod ui;
