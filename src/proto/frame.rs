//! The frames of protocol version 2 as Rust values. See the module docs of
//! [`crate::proto`] for their order and meaning; [`super::codec`] turns them
//! into bytes and back.

use super::WirePath;

/// A file time: seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Time {
    /// Seconds since the epoch (may be negative).
    pub secs: i64,
    /// Nanoseconds, below 1_000_000_000.
    pub nanos: u32,
}

/// Mode bits, modification time and owner carried with every entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// Modification time.
    pub mtime: Time,
    /// Numeric owner, or [`super::owners::UNKNOWN_ID`] when the sender
    /// does not know it (a link stored by a server that is not root).
    pub uid: u32,
    /// Numeric group, or [`super::owners::UNKNOWN_ID`].
    pub gid: u32,
}

/// One run of a sparse file's data: `len` bytes from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Where the run starts in the file.
    pub offset: u64,
    /// Its length, at least 1.
    pub len: u64,
}

/// One run of a delta's new file taken from the receiver's basis: `len`
/// bytes of the basis from `src`, at `dst` in the new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyRange {
    /// Where the run goes in the new file.
    pub dst: u64,
    /// Where it is in the basis.
    pub src: u64,
    /// Its length, at least 1.
    pub len: u64,
}

/// The body layout of a delta of a file of `size` bytes whose `copies`
/// come from the basis, sent from `offset` (the bytes before it are the
/// receiver's already): the runs of `offset..size` between and around the
/// copies, which the body carries in order.
#[must_use]
pub fn delta_layout(size: u64, offset: u64, copies: &[CopyRange]) -> Layout {
    let mut extents = Vec::with_capacity(copies.len() + 1);
    let mut at = offset;
    for c in copies {
        if c.dst > at {
            extents.push(Extent {
                offset: at,
                len: c.dst - at,
            });
        }
        at = c.dst.saturating_add(c.len);
    }
    if size > at {
        extents.push(Extent {
            offset: at,
            len: size - at,
        });
    }
    Layout::Sparse(extents)
}

/// Where the body of a `File` or `FileFrom` goes in the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Layout {
    /// Every byte from the body's start to the end of the file, in order.
    #[default]
    Dense,
    /// The bytes of these extents only, in order (ascending, apart, inside
    /// the part of the file being sent); every other byte of that part is
    /// a hole and reads as zero.
    Sparse(Vec<Extent>),
}

impl Layout {
    /// The body's length for a file of `size` bytes sent from `offset`.
    #[must_use]
    pub fn body_len(&self, size: u64, offset: u64) -> u64 {
        match self {
            Layout::Dense => size.saturating_sub(offset),
            Layout::Sparse(extents) => extents.iter().fold(0u64, |n, e| n.saturating_add(e.len)),
        }
    }

    /// True for [`Layout::Sparse`].
    #[must_use]
    pub fn is_sparse(&self) -> bool {
        matches!(self, Layout::Sparse(_))
    }
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EntryKind {
    /// A regular file.
    #[default]
    File = 1,
    /// A directory.
    Dir = 2,
    /// A symbolic link.
    Symlink = 3,
    /// A named pipe (FIFO).
    Fifo = 4,
    /// A Unix domain socket (the file; nothing listens on it).
    Socket = 5,
    /// A character device node.
    CharDev = 6,
    /// A block device node.
    BlockDev = 7,
    /// A later name of a regular file whose first name this backup run
    /// already listed (a hard link): manifest-only, its `target` is the
    /// first name's wire path; sent as a `Link` frame, no body.
    HardLink = 8,
}

impl EntryKind {
    /// Decodes the wire value.
    pub fn from_u8(v: u8) -> Option<EntryKind> {
        match v {
            1 => Some(EntryKind::File),
            2 => Some(EntryKind::Dir),
            3 => Some(EntryKind::Symlink),
            4 => Some(EntryKind::Fifo),
            5 => Some(EntryKind::Socket),
            6 => Some(EntryKind::CharDev),
            7 => Some(EntryKind::BlockDev),
            8 => Some(EntryKind::HardLink),
            _ => None,
        }
    }

    /// A FIFO, socket or device: sent as a `Special` frame, no body.
    pub fn is_special(self) -> bool {
        matches!(
            self,
            EntryKind::Fifo | EntryKind::Socket | EntryKind::CharDev | EntryKind::BlockDev
        )
    }

    /// A character or block device: the kinds that carry a device number.
    pub fn is_device(self) -> bool {
        matches!(self, EntryKind::CharDev | EntryKind::BlockDev)
    }
}

/// A device number as `stat`'s `st_rdev` holds it (glibc's encoding:
/// `makedev`), split into its major and minor halves.
pub fn dev_major(rdev: u64) -> u64 {
    ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff)
}

/// The minor half of a device number (see [`dev_major`]).
pub fn dev_minor(rdev: u64) -> u64 {
    ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff)
}

/// The device number of `major` and `minor` (glibc's `makedev`).
pub fn make_dev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0x0000_0fff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0x0000_00ff)
}

/// Why the server refused or ended a connection (`Error` frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The peer sent bytes that are not a valid frame.
    Malformed = 1,
    /// A valid frame at the wrong time.
    Unexpected = 2,
    /// The peer speaks another protocol version.
    Version = 3,
    /// The server has `--max-clients` connections already.
    Busy = 4,
    /// The client name is not acceptable.
    BadName = 5,
    /// Authentication failed.
    Auth = 6,
    /// The connection was idle too long.
    Timeout = 7,
    /// The server is shutting down.
    Shutdown = 8,
    /// The server hit a local fault it cannot recover from.
    Internal = 9,
}

impl ErrorCode {
    /// Decodes the wire value; unknown codes map to `Internal`.
    pub fn from_u16(v: u16) -> ErrorCode {
        match v {
            1 => ErrorCode::Malformed,
            2 => ErrorCode::Unexpected,
            3 => ErrorCode::Version,
            4 => ErrorCode::Busy,
            5 => ErrorCode::BadName,
            6 => ErrorCode::Auth,
            7 => ErrorCode::Timeout,
            8 => ErrorCode::Shutdown,
            _ => ErrorCode::Internal,
        }
    }
}

/// One entry of a `List` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    /// What the entry is.
    pub kind: EntryKind,
    /// The name (one component), or the empty name when the listed path is
    /// itself not a directory.
    pub name: Vec<u8>,
    /// Mode and mtime.
    pub meta: Meta,
    /// Size in bytes (files), 0 otherwise.
    pub size: u64,
    /// Link target (symlinks), empty otherwise.
    pub target: Vec<u8>,
    /// Device number (`st_rdev`, see [`make_dev`]) of a device; 0 for
    /// every other kind (and not on the wire for them).
    pub rdev: u64,
}

/// One version of a path, in the answer to `Versions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionItem {
    /// The path the version is of (the asked path, or an entry history
    /// keeps beneath it that is no longer current).
    pub path: WirePath,
    /// What it is.
    pub kind: EntryKind,
    /// Size in bytes (files; a link's target length), 0 otherwise.
    pub size: u64,
    /// Mode, mtime, owner and group.
    pub meta: Meta,
    /// When it was stored (its inode's birth time, see the man page).
    pub stored: Time,
    /// When it stopped being current; zero while it is current.
    pub until: Time,
    /// The bytes history holds for the asked path (the sizes of the
    /// distinct kept inodes beneath it): the same in every `Version` of
    /// one answer.
    pub held: u64,
}

/// One entry of a `Manifest`: what the client has at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// What the entry is.
    pub kind: EntryKind,
    /// Path beneath the namespace.
    pub path: WirePath,
    /// Mode and mtime.
    pub meta: Meta,
    /// Size in bytes (files), 0 otherwise.
    pub size: u64,
    /// Link target (symlinks), empty otherwise.
    pub target: Vec<u8>,
    /// Device number (`st_rdev`, see [`make_dev`]) of a device; 0 for
    /// every other kind (and not on the wire for them).
    pub rdev: u64,
    /// The [`super::xattrs::digest`] of a file's or directory's extended
    /// attributes, 0 for none (and not on the wire for other kinds).
    pub xattrs: u64,
}

/// A frame. Each variant is one kind in the table of [`super::kind`],
/// under the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Client's first frame.
    Hello {
        /// Protocol version the client speaks.
        version: u16,
        /// The client's namespace on the server.
        name: String,
        /// No bits are defined: 0.
        flags: u32,
        /// The client's fresh random challenge ([`super::NONCE_LEN`] bytes),
        /// or empty from a client that has no secret.
        nonce: Vec<u8>,
    },
    /// Server (with `--secrets`): its fresh random challenge; the client
    /// answers `Proof`.
    Challenge {
        /// [`super::NONCE_LEN`] random bytes.
        nonce: Vec<u8>,
    },
    /// Client: proof that it knows its name's secret (see
    /// [`crate::auth`]), or empty when it has none.
    Proof {
        /// The MAC, [`crate::auth::MAC_LEN`] bytes, or empty.
        mac: Vec<u8>,
    },
    /// Server's answer to an acceptable `Hello` (and `Proof`).
    Welcome {
        /// Protocol version the server speaks.
        version: u16,
        /// Bit 0 ([`super::WELCOME_READ_ONLY`]): the server is read-only.
        /// Bit 1 ([`super::WELCOME_AUTHENTICATED`]): the client was
        /// authenticated, and `proof` is the server's own proof.
        flags: u32,
        /// The server's proof that it knows the client's secret, or empty.
        proof: Vec<u8>,
        /// `(st_dev, st_ino)` of the server's backup root (`-d DIR`), so a
        /// client on the same machine never backs the store up into
        /// itself; `(0, 0)` when unknown.
        store: (u64, u64),
    },
    /// A fatal error; the sender closes the connection after it.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// Human-readable explanation.
        message: String,
    },
    /// A directory entry (backup or restore).
    Dir {
        /// Request id.
        id: u32,
        /// Where the directory lives.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
    },
    /// A symbolic link entry (backup or restore).
    Symlink {
        /// Request id.
        id: u32,
        /// Where the link lives.
        path: WirePath,
        /// Raw link target; never interpreted by the receiver.
        target: Vec<u8>,
        /// Mode and mtime (mode is ignored on Linux).
        meta: Meta,
    },
    /// A FIFO, socket or device node entry (backup or restore).
    Special {
        /// Request id.
        id: u32,
        /// Where it lives.
        path: WirePath,
        /// [`EntryKind::Fifo`], `Socket`, `CharDev` or `BlockDev`.
        kind: EntryKind,
        /// Device number of a device (see [`make_dev`]); 0 for a FIFO or
        /// socket.
        rdev: u64,
        /// Mode and mtime.
        meta: Meta,
    },
    /// A hard link (backup or restore): another name of the regular file
    /// at `target`, which the same run or restore already sent. In a
    /// backup `target` is the full wire path in the namespace, in a
    /// restore it is relative to the restored path, as entry paths are.
    Link {
        /// Request id.
        id: u32,
        /// Where the new name lives.
        path: WirePath,
        /// The name it links to.
        target: WirePath,
        /// The file's mode and mtime (those of the target: one inode).
        meta: Meta,
        /// The file's size (the receiver checks the target still has it).
        size: u64,
    },
    /// Client: the `List` or `Restore` that follows at once is answered
    /// as the tree was at this time (UTC); anything else next is a
    /// protocol error.
    At {
        /// Seconds since the epoch.
        secs: i64,
        /// Nanoseconds, below 1,000,000,000.
        nanos: u32,
    },
    /// Client: every version of `path` the server holds; answered by a
    /// `Version` for each, newest first, then `Done` (or `Failed` and
    /// `Done`).
    Versions {
        /// Request id.
        id: u32,
        /// The path.
        path: WirePath,
    },
    /// Client: this connection follows the plan of the client's name:
    /// answered at once by a `Plan`, and by another each time the plan
    /// changes. Sent again as a keepalive (see [`crate::proto`]).
    Agent {
        /// Request id.
        id: u32,
    },
    /// Server: the plan of the client's name, as the text of one block of
    /// the plans file ([`crate::server::plans`]); empty: no plan.
    Plan {
        /// The block's text.
        text: Vec<u8>,
    },
    /// Server: one version, in the answer to `Versions`.
    Version {
        /// Id of the `Versions`.
        id: u32,
        /// The version.
        item: VersionItem,
    },
    /// Client, in a backup: the entry at `path` is the one the server
    /// stores (same content), with this metadata now; no body. Answers a
    /// `Need` whose `meta` bit is set for the entry.
    Update {
        /// Request id.
        id: u32,
        /// Where the stored entry lives.
        path: WirePath,
        /// What it is: [`EntryKind::File`] or [`EntryKind::Symlink`] (the
        /// stored entry must be that).
        kind: EntryKind,
        /// Its mode, mtime, owner and group now.
        meta: Meta,
        /// Its size (a link's target length): the stored one must be it.
        size: u64,
    },
    /// Client, in a backup: the walk of directory `path` is over; every
    /// entry beneath it was in a manifest before. `whole`: it listed the
    /// directory completely and read every entry of it, so the entries
    /// the server holds in that directory that none of this connection's
    /// manifests named, and that are not in `keep`, are gone from the
    /// client: at the commit they leave the current tree for history. Not
    /// whole: nothing is deleted there.
    Closed {
        /// Request id.
        id: u32,
        /// The directory.
        path: WirePath,
        /// It was read completely.
        whole: bool,
        /// Names the client has in the directory and did not send (its
        /// excludes left them out): the server keeps what it holds under
        /// them. Only with `whole`; each a valid name component.
        keep: Vec<Vec<u8>>,
    },
    /// A regular file entry; its body follows as raw bytes: `size` of
    /// them, or for a sparse layout the bytes of its extents.
    File {
        /// Request id.
        id: u32,
        /// Where the file lives.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the file.
        size: u64,
        /// Where the body's bytes go ([`Layout::body_len`] of them).
        layout: Layout,
    },
    /// Ends the body of the preceding `File`.
    FileEnd {
        /// Request id of the `File`.
        id: u32,
        /// crc32c of the body bytes.
        crc: u32,
        /// False when the sender's file changed or failed while being sent;
        /// the receiver then discards the body.
        ok: bool,
    },
    /// Client: make everything sent so far durable and visible.
    Commit {
        /// Request id.
        id: u32,
    },
    /// Server: everything before the `Commit` with this id is durable.
    Committed {
        /// Id of the `Commit`.
        id: u32,
    },
    /// One request or entry failed; the connection goes on.
    Failed {
        /// Request id.
        id: u32,
        /// The path concerned (may be the root).
        path: WirePath,
        /// Why.
        message: String,
    },
    /// Client: list a path.
    List {
        /// Request id.
        id: u32,
        /// What to list.
        path: WirePath,
    },
    /// Server: one listed entry.
    ListEntry {
        /// Request id of the `List`.
        id: u32,
        /// The entry.
        item: ListItem,
    },
    /// Client: send back a path.
    Restore {
        /// Request id.
        id: u32,
        /// What to restore.
        path: WirePath,
    },
    /// Server: the `List` or `Restore` with this id is complete.
    Done {
        /// Request id.
        id: u32,
    },
    /// Client: what it is about to back up; the server answers `Need`.
    Manifest {
        /// Request id.
        id: u32,
        /// The entries, in the order the client will send them.
        entries: Vec<ManifestEntry>,
    },
    /// Server: which entries of the `Manifest` with this id it needs.
    Need {
        /// Id of the `Manifest`.
        id: u32,
        /// Bit `i` (bit `i % 8` of byte `i / 8`) set: entry `i` is needed.
        bits: Vec<u8>,
        /// The same layout: entry `i` is needed as metadata only (its
        /// content is the stored one); the client sends an `Update`. Never
        /// set where `bits` is.
        meta: Vec<u8>,
        /// Needed files of which the server holds the first `offset` bytes
        /// from an interrupted transfer: (entry index, offset). The client
        /// sends those with `FileFrom`.
        resume: Vec<(u32, u64)>,
        /// Needed files the server holds an older version of, ascending:
        /// their `Signature`s follow this frame, in this order. The
        /// client may send each as a `FileDelta` against that version.
        delta: Vec<u32>,
    },
    /// Server, right after a `Need`: a piece of the block signature
    /// ([`crate::delta::Signature`]'s encoding) of the stored version of
    /// the entry `index` of the manifest `id`.
    Signature {
        /// Id of the `Manifest`.
        id: u32,
        /// The entry, one of the `Need`'s `delta` list.
        index: u32,
        /// Bytes of the whole encoded signature.
        total: u32,
        /// The next bytes of it.
        chunk: Vec<u8>,
    },
    /// Client: a file sent as a delta against the version the server
    /// holds (a `Need`'s `delta` entry): `copies` come from that version,
    /// and the body carries every other byte, in order (the extents of
    /// [`delta_layout`]); `FileEnd` follows with the whole new file's
    /// crc32c.
    FileDelta {
        /// Request id.
        id: u32,
        /// Where the file lives.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the new file.
        size: u64,
        /// Size of the version the copies come from (the signature's).
        basis: u64,
        /// Bytes before this are the receiver's already, kept from a cut
        /// transfer of the same version (a `Need`'s resume entry; 0 for
        /// none): the copies and the body cover `offset..size` only.
        offset: u64,
        /// Runs taken from it, ascending and apart, inside `offset..size`.
        copies: Vec<CopyRange>,
    },
    /// Server, in a restore: a large file is next; the client answers `Want`
    /// with how much of it it already holds, and the server goes on with
    /// `FileFrom` from there.
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
    /// Client: the answer to an `Offer`: send the file from `offset` on.
    Want {
        /// The `Restore` request.
        id: u32,
        /// Bytes the client already holds (0: none); at most the size.
        offset: u64,
    },
    /// Like `File`, but the body holds only bytes `offset..size`: the
    /// receiver has the rest from an interrupted transfer. The `FileEnd`
    /// crc32c still covers the whole file.
    FileFrom {
        /// Request id.
        id: u32,
        /// Where the file lives.
        path: WirePath,
        /// Mode and mtime.
        meta: Meta,
        /// Size of the whole file.
        size: u64,
        /// Where the body starts; at most `size`.
        offset: u64,
        /// Where the body's bytes go, all at or after `offset`.
        layout: Layout,
    },
    /// Client: the other answer to an `Offer`: send nothing of this file
    /// (the client already has this version of it, or refuses it); the
    /// server goes on with the next entry.
    Skip {
        /// The `Restore` request.
        id: u32,
    },
    /// Client: re-read the stored files under a path and compare them with
    /// the crc32c recorded when they were stored.
    Verify {
        /// Request id.
        id: u32,
        /// What to verify (the empty path: the whole namespace).
        path: WirePath,
    },
    /// Server: how far a `Verify` got (sent about twice a second while it
    /// runs, so the client can show progress and knows the server works).
    Progress {
        /// Id of the `Verify`.
        id: u32,
        /// Files read so far.
        files: u64,
        /// Bytes read so far.
        bytes: u64,
    },
    /// Either side, before the first entry that uses an id it has not
    /// named yet on this connection: the names of user and group ids (ids
    /// the sender has no name for are not listed). See
    /// [`super::owners`].
    Names {
        /// (uid, user name) pairs; a name is 1 to
        /// [`super::owners::MAX_OWNER_NAME`] bytes, no NUL.
        users: Vec<(u32, Vec<u8>)>,
        /// (gid, group name) pairs, names bounded the same way.
        groups: Vec<(u32, Vec<u8>)>,
    },
    /// Either side, right before the entry frame of the same id and path:
    /// that entry's extended attributes (see [`super::xattrs`]). An entry
    /// without one has none.
    Xattrs {
        /// Id of the entry it belongs to.
        id: u32,
        /// Path of that entry.
        path: WirePath,
        /// The attributes, sorted by name and bounded.
        attrs: super::xattrs::Xattrs,
    },
    /// Server: the `Verify` with this id is complete. Each damaged or
    /// unreadable file was reported before it with `Failed`.
    Verified {
        /// Id of the `Verify`.
        id: u32,
        /// Files whose bytes were read.
        files: u64,
        /// Bytes read.
        bytes: u64,
        /// Files whose bytes no longer match their recorded crc32c, or that
        /// could not be read.
        damaged: u64,
        /// Files with no recorded crc32c (stored by hand, or on a file
        /// system without extended attributes).
        unchecked: u64,
    },
}
