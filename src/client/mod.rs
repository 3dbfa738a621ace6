//! The client: its protocol session and its user-interface helpers, both
//! pure. Its I/O (connection, walk, restore writes) lives in [`crate::io`].

pub mod session;
pub mod ui;
