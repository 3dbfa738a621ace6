//! What the client session hands its driver: the [`Event`]s of the server's
//! answers, and the [`SessionError`] that ended a session. Plain values, no
//! behaviour: the session (`session.rs`) decides when each is produced.

use std::fmt;
use std::time::Duration;

use crate::proto::{EntryKind, ErrorCode, Layout, ListItem, Meta, VersionItem, WirePath};

/// What the server said, for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake succeeded.
    Welcome {
        /// The server refuses writes.
        read_only: bool,
    },
    /// The server ended the connection with an `Error`.
    Refused {
        /// Why.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
    /// A request or entry failed on the server.
    Failed {
        /// Id of the request or entry.
        id: u32,
        /// Server-side path concerned.
        path: WirePath,
        /// The cause.
        message: String,
    },
    /// The server's answer to a `Manifest`.
    Need {
        /// The manifest's id.
        id: u32,
        /// Bit `i` set: entry `i` is needed.
        bits: Vec<u8>,
        /// Bit `i` set: only entry `i`'s metadata is needed (an `Update`);
        /// never set where `bits` is (the session checked).
        meta: Vec<u8>,
        /// (entry index, offset): send that file from `offset` on.
        resume: Vec<(u32, u64)>,
        /// (entry index, signature of the version the server holds):
        /// that file may go as a `FileDelta` against it.
        delta: Vec<(u32, crate::delta::Signature)>,
    },
    /// Everything before the `Commit` with this id is durable.
    Committed {
        /// The commit's id.
        id: u32,
    },
    /// One entry of a listing.
    ListEntry {
        /// The `List` request.
        id: u32,
        /// The entry.
        item: ListItem,
    },
    /// The plan of the client's name, on an agent connection (the answer
    /// to `Agent`, and each change): one block of the plans file, empty
    /// for none.
    Plan {
        /// The block's text.
        text: Vec<u8>,
    },
    /// One version of a path, in the answer to `Versions` (newest first).
    Version {
        /// The `Versions` request.
        id: u32,
        /// The version.
        item: VersionItem,
    },
    /// A restored directory.
    Dir {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
    },
    /// A restored symlink.
    Symlink {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Link target, verbatim.
        target: Vec<u8>,
        /// Mtime.
        meta: Meta,
    },
    /// A restored FIFO, socket or device node.
    Special {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Which special kind.
        kind: EntryKind,
        /// Device number of a device, else 0.
        rdev: u64,
        /// Mode and mtime.
        meta: Meta,
    },
    /// A restored hard link: another name of the file the same restore
    /// sent at `target`; no body.
    Link {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// The file's earlier name, relative to the restored path.
        target: WirePath,
        /// Mode and mtime (the file's).
        meta: Meta,
        /// Size of the file.
        size: u64,
    },
    /// A restored file; its `size` body bytes follow (see
    /// `ClientSession::wants_body`).
    File {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the whole file.
        size: u64,
        /// The body carries bytes `offset..size` (0: the whole file).
        offset: u64,
        /// Where the body's bytes go (a sparse file's holes are not sent;
        /// a delta's, the runs between its copies).
        layout: Layout,
        /// A delta against the local file the `Want` signed: that file's
        /// size, and the runs to take from it.
        delta: Option<Box<(u64, Vec<crate::proto::CopyRange>)>>,
    },
    /// A restored file of which the client may hold a part: answer with
    /// `ClientSession::send_want`; a `File` event with the offset follows.
    Offer {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the file.
        size: u64,
    },
    /// The body of the last `File` ended.
    FileEnd {
        /// The `Restore` request.
        id: u32,
        /// The server's crc32c.
        crc: u32,
        /// The server read a stable file.
        ok: bool,
    },
    /// The `List` or `Restore` with this id is complete.
    Done {
        /// The request.
        id: u32,
    },
    /// How far the server's `Verify` got.
    Progress {
        /// The request.
        id: u32,
        /// Files read so far.
        files: u64,
        /// Bytes read so far.
        bytes: u64,
    },
    /// The `Verify` with this id is complete (damaged files came before
    /// it as `Failed`).
    Verified {
        /// The request.
        id: u32,
        /// Files read.
        files: u64,
        /// Bytes read.
        bytes: u64,
        /// Files damaged or unreadable.
        damaged: u64,
        /// Files without a recorded crc32c.
        unchecked: u64,
    },
    /// In a restore: the extended attributes of the file or directory at
    /// `path` that comes next (after its offer, for an offered file).
    Xattrs {
        /// Id of the restore.
        id: u32,
        /// The entry's path as the server sent it.
        path: WirePath,
        /// Its attributes.
        attrs: crate::proto::xattrs::Xattrs,
    },
    /// In a restore: the names of owner and group ids of the entries that
    /// follow.
    Names {
        /// (uid, user name) pairs.
        users: Vec<(u32, Vec<u8>)>,
        /// (gid, group name) pairs.
        groups: Vec<(u32, Vec<u8>)>,
    },
}

/// Why a session ended. `Display` gives the message the user sees after
/// the server's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The server ended the connection with an `Error` frame.
    Refused {
        /// Why, in the protocol's terms.
        code: ErrorCode,
        /// The server's message, verbatim.
        message: String,
    },
    /// The server did not prove that it knows the client's secret (or did
    /// not try): it may not be the server the user meant.
    AuthFailed(String),
    /// The server broke the protocol: a malformed frame, a frame out of
    /// place, an answer to nothing, another protocol version.
    Protocol(String),
    /// The connection closed before the session was done.
    Closed,
    /// The handshake got no answer in time (the session's `HELLO_TIMEOUT`).
    HelloTimeout,
    /// A request saw nothing move either way for this long (the session's
    /// `NO_PROGRESS_TIMEOUT`).
    NoProgress(Duration),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Refused { message, .. } => f.write_str(message),
            SessionError::AuthFailed(m) | SessionError::Protocol(m) => f.write_str(m),
            SessionError::Closed => f.write_str("connection closed by the server"),
            SessionError::HelloTimeout => f.write_str("no answer from the server"),
            SessionError::NoProgress(t) => {
                write!(f, "no progress for {} seconds: giving up", t.as_secs())
            }
        }
    }
}
