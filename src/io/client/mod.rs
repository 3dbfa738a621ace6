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

/// Entries between two commits (below [`crate::proto::MAX_BATCH`], so the
/// server never has to refuse a batch).
pub const COMMIT_EVERY: u32 = 1024;

/// Bytes of paths between two commits: half of
/// [`crate::proto::MAX_BATCH_PATH_BYTES`], leaving room for the directories
/// closed in one go after it is reached.
pub const COMMIT_PATH_BYTES: usize = crate::proto::MAX_BATCH_PATH_BYTES / 2;
