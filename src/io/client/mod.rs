//! The client's I/O: one connection driven by its own small mio loop
//! ([`conn`]), and one driver per command ([`backup`], [`restore`],
//! [`list`], [`verify`]) that feeds the pure [`crate::client::session`] and carries out
//! what the server's answers mean on the local disk. What the user sees on
//! stderr (errors, progress, summary) goes through [`report`].

pub mod backup;
pub mod conn;
pub mod list;
pub mod report;
pub mod restore;
pub mod verify;
pub mod walk;
