//! The vocabulary between the server session and the I/O shell: the
//! [`Command`]s the session emits (work for the shell, imperative) and the
//! [`Completion`]s the shell reports back (what happened, past tense).
//!
//! Only types live here: no decision is made in this file, and nothing in it
//! touches a socket, a file or a clock. The rules of who may send what and
//! when are in [`super::session`]; the decisions the shell asks for while
//! carrying a command out are in [`super::session::receive`] and
//! [`super::session::stream`].

use crate::proto::{
    CopyRange, EntryKind, Layout, ListItem, ManifestEntry, Meta, Time, VersionItem, WirePath,
};

/// Work for the I/O shell, in the order it must be done (drain
/// [`super::session::ServerSession::poll_command`] after every input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Open (creating it if needed) the client's namespace directory; on
    /// failure report [`Completion::NamespaceFailed`].
    OpenNamespace {
        /// The validated client name.
        name: String,
    },
    /// Make `path` a directory; its meta is applied at the next commit.
    Mkdir {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
    },
    /// Stage a symlink.
    Symlink {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
        /// Link target, stored verbatim.
        target: Vec<u8>,
        /// Mtime (mode ignored).
        meta: Meta,
    },
    /// Stage a FIFO, socket or device node.
    Special {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
        /// Which special kind.
        kind: EntryKind,
        /// Device number of a device, else 0.
        rdev: u64,
        /// Mode and mtime.
        meta: Meta,
    },
    /// Stage a hard link to a stored regular file, made at the commit.
    Link {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
        /// The stored file it names, beneath the namespace.
        target: WirePath,
        /// The file's mtime (the target must still have it).
        meta: Meta,
        /// The file's size (the target must still have it).
        size: u64,
    },
    /// Give the stored entry `path` (which must be a `kind`, of `size`)
    /// the metadata `meta`, in place, at the commit.
    Update {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
        /// [`EntryKind::File`] or [`EntryKind::Symlink`].
        kind: EntryKind,
        /// Mode, mtime, owner and group.
        meta: Meta,
        /// Its size (a link's target length).
        size: u64,
    },
    /// Create the temporary file for a body of `size` bytes that follows.
    BeginFile {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the whole file.
        size: u64,
        /// The body starts here: the store keeps bytes `0..offset` from an
        /// interrupted transfer (0: a fresh transfer).
        offset: u64,
        /// Where the body's bytes go (holes of a sparse file are not sent;
        /// for a delta, the runs between its copies).
        layout: Layout,
        /// A `FileDelta`: the runs to copy from the stored version first.
        delta: Option<Box<FromBasis>>,
    },
    /// The body is complete: keep the file or discard it, as
    /// [`super::session::receive::body_verdict`] decides from these fields and what
    /// the shell staged; a discarded file is reported with
    /// [`Completion::Failed`].
    EndFile {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
        /// The sender's crc32c.
        crc: u32,
        /// The sender's status.
        ok: bool,
        /// What the shell reported of the body it moved
        /// ([`Completion::BodyReceived`]); `None` when the body was empty,
        /// so nothing was moved.
        received: Option<Received>,
    },
    /// At the next commit, move every entry of the stored directory `path`
    /// whose name is not in `keep` (the client no longer has it) into
    /// history; a failure is a [`Completion::Failed`] for `id`.
    Delete {
        /// Request id of the `Closed`.
        id: u32,
        /// The directory.
        path: WirePath,
        /// The names the client has there.
        keep: Names,
    },
    /// Sync, rename staged entries into place, sync; then
    /// [`Completion::Committed`].
    Commit {
        /// Request id.
        id: u32,
    },
    /// Send the listing of `path` ([`Completion::Listed`] for each entry,
    /// then [`Completion::Done`]).
    List {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
        /// List the tree as it was then (an `At` came first); `None`: now.
        at: Option<Time>,
    },
    /// Send every version of `path` ([`Completion::Version`] for each,
    /// newest first, then [`Completion::Done`]).
    Versions {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
    },
    /// Send the tree at `path`: [`Completion::RestoredDir`],
    /// [`Completion::RestoredSymlink`], [`Completion::RestoredLink`],
    /// [`Completion::RestoredFile`] (then
    /// its body and [`Completion::FileSent`]) or [`Completion::Offered`]
    /// (see [`super::session::stream::plan_file`]), then [`Completion::Done`].
    Restore {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
        /// Restore the tree as it was then (an `At` came first); `None`:
        /// now.
        at: Option<Time>,
    },
    /// Compare the entries with the store; answer with
    /// [`Completion::Checked`].
    Check {
        /// Request id of the `Manifest`.
        id: u32,
        /// What the client has.
        entries: Vec<ManifestEntry>,
    },
    /// Send the offered file of the restore `id` from `offset` on
    /// ([`Completion::Resumed`], the body, [`Completion::FileSent`]); see
    /// [`super::session::stream::plan_resume`] for what must be read first.
    SendFrom {
        /// The `Restore` request.
        id: u32,
        /// Bytes the client already holds.
        offset: u64,
    },
    /// Send the offered file of the restore `id` from `offset` (what the
    /// client holds of it already) as a delta against the client's copy,
    /// whose encoded signature `sig` is (the shell decodes it; one that
    /// does not decode, or that nothing matches, gets the whole file from
    /// `offset`): [`Completion::RestoredDelta`], the literal body,
    /// [`Completion::FileSent`].
    SendDelta {
        /// The `Restore` request.
        id: u32,
        /// The client's signature, as it sent it.
        sig: Vec<u8>,
        /// Bytes the client already holds.
        offset: u64,
    },
    /// Send nothing of the offered file of the restore `id` (the client
    /// has it, or refuses it) and go on with the next entry.
    SkipOffer {
        /// The `Restore` request.
        id: u32,
    },
    /// Re-read the stored files under `path` and compare each with its
    /// recorded crc32c ([`Completion::Failed`] for each damaged one,
    /// [`Completion::VerifyProgress`] meanwhile, then
    /// [`Completion::Verified`]). Changes nothing.
    Verify {
        /// Request id.
        id: u32,
        /// Path beneath the namespace.
        path: WirePath,
    },
    /// Keep the names of a `Names` frame for the records of the entries
    /// that follow (see [`crate::proto::owners`]).
    LearnNames {
        /// (uid, user name) pairs.
        users: Vec<(u32, Vec<u8>)>,
        /// (gid, group name) pairs.
        groups: Vec<(u32, Vec<u8>)>,
    },
    /// Keep the extended attributes of an `Xattrs` frame for the file or
    /// directory at `path`, which comes next.
    Xattrs {
        /// The entry's path.
        path: WirePath,
        /// Its attributes.
        attrs: crate::proto::xattrs::Xattrs,
    },
    /// Drop everything staged and not committed (the connection is ending).
    Abort,
    /// The connection is an agent of `name`: look its plan up and report
    /// it with [`Completion::Plan`] (the answer to an `Agent`).
    FollowPlan {
        /// The client's name (the one it authenticated as, with secrets).
        name: String,
    },
}

/// The part of a `FileDelta` the shell needs besides the file's header:
/// the size the stored version must have and the runs taken from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromBasis {
    /// Size of the stored version the client matched against.
    pub basis: u64,
    /// Runs of the new file taken from it, ascending and apart.
    pub copies: Vec<CopyRange>,
}

/// What a `Verify` found, for its `Verified` answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyCounts {
    /// Files read.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Files that no longer match their crc32c, or could not be read.
    pub damaged: u64,
    /// Files with no recorded crc32c.
    pub unchecked: u64,
}

/// What the shell reports back to the session: the outcome of a
/// [`Command`], the end of a body it moved, or one piece of an answer it
/// streams on the session's behalf. The one way into the session from the
/// shell ([`super::session::ServerSession::handle_completion`]), so every
/// such input has a name, and a harness can script them.
///
/// Pieces of a streamed answer (`Listed` to `Done`) are completions too,
/// not a second door: they finish the `List`, `Restore` or `Verify` command
/// piece by piece, in order, and a harness drives them the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The plan [`Command::FollowPlan`] asked for: one block of the plans
    /// file, empty for none.
    Plan {
        /// The block's text.
        text: Vec<u8>,
    },
    /// [`Command::OpenNamespace`] failed: the connection ends with this
    /// message.
    NamespaceFailed {
        /// What the client is told.
        message: String,
    },
    /// A command, or one entry of a streamed answer, failed for `path`; the
    /// client is told and the connection goes on.
    Failed {
        /// The request id.
        id: u32,
        /// The path concerned.
        path: WirePath,
        /// What the client is told.
        message: String,
    },
    /// The shell moved the whole body announced by the last `File` (see
    /// [`super::session::ServerSession::wants_body`]).
    BodyReceived(Received),
    /// The answer to [`Command::Check`].
    Checked {
        /// The `Manifest`'s id.
        id: u32,
        /// Bit `i` set: entry `i` is needed.
        bits: Vec<u8>,
        /// Bit `i` set: only entry `i`'s metadata is needed.
        meta: Vec<u8>,
        /// Needed files the store holds a part of: (entry index, offset).
        resume: Vec<(u32, u64)>,
        /// Needed files the store holds an older version of, ascending:
        /// (entry index, that version's encoded signature).
        delta: Vec<(u32, Vec<u8>)>,
    },
    /// [`Command::Commit`] is done: everything before it is durable.
    Committed {
        /// The commit's id.
        id: u32,
    },
    /// One entry of a `List` answer.
    Listed {
        /// The `List` request.
        id: u32,
        /// The entry.
        item: ListItem,
    },
    /// The extended attributes of the restored entry that comes next (a
    /// file, an offer or a directory at `path`): an `Xattrs` frame.
    Xattrs {
        /// Id of the `Restore`.
        id: u32,
        /// Path of the entry.
        path: WirePath,
        /// Its attributes.
        attrs: crate::proto::xattrs::Xattrs,
    },
    /// In a restore, before the entry with `meta`: the names its owner
    /// and group were stored with; the session sends a `Names` frame for
    /// the ids it has not named yet on this connection.
    OwnerNames {
        /// The entry's meta (its ids).
        meta: Meta,
        /// The owner's recorded name.
        user: Option<Vec<u8>>,
        /// The group's recorded name.
        group: Option<Vec<u8>>,
    },
    /// A restored directory (sent after its contents).
    RestoredDir {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
    },
    /// A restored symlink.
    RestoredSymlink {
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
    RestoredSpecial {
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
    /// A restored file's header: once it is sent, the shell sends exactly
    /// `size` body bytes itself and then reports [`Completion::FileSent`].
    RestoredFile {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the file.
        size: u64,
        /// Where its body goes (the holes of a sparse file are not sent).
        layout: Layout,
    },
    /// A later name of a restored file with several names, sent as a
    /// `Link` to the name that went out whole
    /// ([`super::session::stream::LinkMemo`]); no body.
    RestoredLink {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// The first name, relative to the restored path.
        target: WirePath,
        /// Mode and mtime (the file's: one inode).
        meta: Meta,
        /// Size of the file.
        size: u64,
    },
    /// A large restored file is offered instead
    /// ([`super::session::stream::plan_file`]); the restore pauses until the
    /// client's `Want` turns into [`Command::SendFrom`].
    Offered {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the file.
        size: u64,
    },
    /// The header of an offered file, sent from `offset` on after
    /// [`Command::SendFrom`]: the shell sends bytes `offset..size` and then
    /// reports [`Completion::FileSent`].
    Resumed {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the whole file.
        size: u64,
        /// Where the body starts.
        offset: u64,
        /// Where its body goes (the holes of a sparse file are not sent).
        layout: Layout,
    },
    /// The header of an offered file sent as a delta after
    /// [`Command::SendDelta`]: the shell sends the literal runs and then
    /// reports [`Completion::FileSent`] with the whole file's crc32c.
    RestoredDelta {
        /// The `Restore` request.
        id: u32,
        /// Path relative to the restored path.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the whole file.
        size: u64,
        /// Size of the client's copy the runs come from.
        basis: u64,
        /// Bytes the client already holds (the runs and the body cover
        /// the rest).
        offset: u64,
        /// The runs.
        copies: Vec<CopyRange>,
    },
    /// A restored body was sent.
    FileSent {
        /// The `Restore` request.
        id: u32,
        /// crc32c of the whole file as read while sending.
        crc: u32,
        /// False when the file changed or failed while being sent.
        ok: bool,
    },
    /// How far the `Verify` with this id got.
    VerifyProgress {
        /// The `Verify` request.
        id: u32,
        /// Files read so far.
        files: u64,
        /// Bytes read so far.
        bytes: u64,
    },
    /// The `Verify` with this id is complete.
    Verified {
        /// The `Verify` request.
        id: u32,
        /// What it found.
        counts: VerifyCounts,
    },
    /// One version, in the answer to a `Versions`.
    Version {
        /// The `Versions` request.
        id: u32,
        /// The version.
        item: VersionItem,
    },
    /// The `List`, `Restore` or `Versions` with this id is complete.
    Done {
        /// The request.
        id: u32,
    },
}

/// What the shell measured of a body it moved into the store (reported
/// with [`Completion::BodyReceived`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// crc32c of the whole file: the bytes kept from an interrupted
    /// transfer, then the bytes received.
    pub crc: u32,
    /// Why writing the body failed, in words, if it did. The bytes were
    /// still read off the socket, so the stream stays in step.
    pub write_error: Option<String>,
}

/// The names a client has in one directory, each ended by a NUL; a name
/// may be there more than once (a directory walked twice in one session).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Names(Vec<u8>);

impl Names {
    /// Adds a name (never empty, never with a NUL or a `/`: a wire path's
    /// component).
    pub fn push(&mut self, name: &[u8]) {
        self.0.extend_from_slice(name);
        self.0.push(0);
    }

    /// The names, in the order they came.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|&b| b == 0).take_while(|n| !n.is_empty())
    }

    /// The names sorted, for lookups by binary search.
    #[must_use]
    pub fn sorted(&self) -> Vec<&[u8]> {
        let mut v: Vec<&[u8]> = self.iter().collect();
        v.sort_unstable();
        v
    }

    /// Bytes held.
    #[must_use]
    pub fn cost(&self) -> usize {
        self.0.len()
    }

    /// True when it holds no name.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
