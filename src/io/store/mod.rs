//! The store: the one API through which the server's loop, its workers,
//! the client's restore and (later) the web interface touch a stored tree.
//!
//! * [`Store`] is the server's backup root; it opens a client's
//!   [`Namespace`] by name. A namespace is one confined tree (on the client,
//!   a restore's destination): every path is resolved beneath it without
//!   following a symlink (`beneath.rs`, private here).
//! * Reading: [`StoredFile`] is the only way to open and read a stored file
//!   (restore, verify, the kept bytes of a resumed transfer), so how bytes
//!   are kept can change in one place; the manifest check and listings
//!   (`scan.rs`) only `lstat` and `readlink`; FIFOs, sockets and devices,
//!   and the metadata-only stand-in of a device, are `special.rs`'s; [`Namespace::verify`] re-reads files
//!   against their checksum record (`xattr.rs`).
//! * Writing: a [`Stager`], with [`StageOptions`] fixed when it is made,
//!   stages entries under hidden names and commits them in batches; a
//!   commit returns a [`CommitReport`] of what it put in place and what
//!   failed (each failure keeping its errno, see [`crate::io::error`]).
//!   Partials of interrupted transfers (`partial.rs`) and the sweep of
//!   dead processes' leftovers ([`Namespace::sweep`]) belong here too.
//!
//! The rules these apply (what hidden names mean, when an entry is
//! unchanged, what a checksum record says) are pure and live in
//! [`crate::store`]. The files here do the system calls, and depend on
//! each other one way only (each uses only files listed before it):
//! `beneath`, `xattr`, `tmp`, `durable`, `namespace`, `special`, `stored`, `partial`,
//! `sweep`, `verify`, `stage`, `commit`, `scan`, `past` (history read
//! as the pure [`crate::store::past`] rules ask), `space` (what a
//! namespace takes, for the dashboard), `sigcache` (block signatures of
//! stored files, for delta transfer) and `basis` (the stored version of a
//! changed file as a delta's basis). This file only re-exports.

mod basis;
mod beneath;
mod commit;
mod durable;
mod fresh;
mod history;
mod names_file;
mod namespace;
mod partial;
mod past;
mod prune;
mod scan;
pub mod sigcache;
mod space;
mod special;
mod stage;
mod stored;
mod sweep;
mod tmp;
mod verify;
mod xattr;

pub use basis::BASIS_CHANGED;
pub use commit::{CommitFailure, CommitReport, Committed};
pub use durable::{set_sync, Sync};
pub use namespace::{Namespace, Store};
pub use past::{History, HistoryStamp, Past, Versions};
pub use prune::{Pruned, Removal};
pub use scan::{Checked, DirCursor, DirName, DIR_CHUNK_BYTES};
pub use space::Measured;
pub use special::NEEDS_ROOT;
pub use stage::{Incoming, StageOptions, Stager, Writer, WriterMsg, WriterPool};
pub use stored::StoredFile;
pub use verify::{Report, MAX_NAMED};
