//! The rsb wire protocol: frame types, their byte encoding, and the rules for
//! paths that cross the wire. Pure code: nothing here touches a socket, a file
//! or a clock.
//!
//! # Protocol, version 7
//!
//! A connection is one TCP stream. Everything on it is a *frame*, except the
//! body of a file, which follows its `File` frame as raw bytes.
//!
//! ```text
//! frame   = kind:u8  length:u32  payload[length]        (big endian)
//! ```
//!
//! `length` is at most [`MAX_PAYLOAD`]; a larger value is a protocol error
//! and ends the connection. Payload fields are encoded as:
//!
//! ```text
//! u8 u16 u32 u64 i64     fixed width, big endian
//! bytes                  len:u32 data[len]   (len bounded by the frame)
//! time                   secs:i64 nanos:u32 (nanos < 1_000_000_000)
//! path                   bytes, a relative path (see `path`)
//! meta                   mode:u32 mtime:time uid:u32 gid:u32
//! names                  count:u32 (id:u32 name:bytes)[count]
//! ```
//!
//! Every entry's `meta` carries its numeric owner and group
//! (`0xffffffff`, [`owners::UNKNOWN_ID`]: not known, e.g. a symlink kept by
//! a server that is not root; a receiver leaves such an owner as it is).
//!
//! A payload must be consumed exactly: trailing bytes are an error.
//!
//! ## Handshake
//! The client's first frame is `Hello` (magic `RSB\0`, version, client name,
//! flags = 0, and a nonce: [`NONCE_LEN`] fresh random bytes, or empty from a
//! client without a secret). A server without `--secrets` answers `Welcome`
//! (version, flags, empty proof, store identity) or `Error` (code,
//! message) and closes. The store identity is `st_dev:u64 st_ino:u64` of
//! the server's backup root (`-d DIR`; `0 0` when unknown): a client on
//! the same machine that meets that directory in its walk skips it, so a
//! store inside the backed-up tree is never backed up into itself.
//!
//! A server with `--secrets` answers `Hello` with `Challenge` (its own
//! fresh nonce). The client answers `Proof`: a MAC, keyed by its secret, of
//! both nonces and its name (see [`crate::auth`]; empty when it has no
//! secret). If the MAC is right the server answers `Welcome` with flag
//! [`WELCOME_AUTHENTICATED`] and its own proof over the same values, which
//! the client checks before it sends anything else; otherwise `Error`
//! (`Auth`, "authentication failed for NAME"), the same whether the name is
//! unknown or the MAC wrong. The secret never crosses the wire, and a
//! recorded handshake is worthless: the other side's nonce is new each
//! time. A client with a secret refuses a server that does not prove it
//! knows the secret too. A peer that receives flags it does not know
//! refuses the connection.
//!
//! ## Requests
//! After `Welcome` the client sends requests, each carrying an id (`u32`,
//! strictly increasing). It never waits for one reply before sending the next
//! request (pipelining); the server handles requests strictly in order.
//! While a `Restore` waits for the `Want` answering one of its `Offer`s,
//! the server reads on to find it: requests pipelined before the `Want`
//! (with their file bodies) are kept, at most 256 KiB of them
//! ([`crate::server::session::MAX_READ_AHEAD`]; more is a protocol
//! error), and handled in order once the restore ended.
//!
//! * `Manifest` (id, entries: kind, path, meta, size, link target, for
//!   a device only its device number `rdev:u64`, and for a file or a
//!   directory only the digest of its extended attributes `xattrs:u64`,
//!   0 for none, see [`xattrs::digest`]): what the client is about
//!   to back up, in the order it will send it. The server compares each
//!   entry with what it stores (by type, size, mode, owner, group and mtime
//!   to the nanosecond, link target, device number and xattr digest; it never opens a
//!   file to do so) and answers `Need` (id, `bits`: a bitmap of the
//!   entries it needs whole, `meta`: a bitmap of the same length, bit `i`
//!   of byte `i / 8` too, of the entries it needs only the metadata of,
//!   then the resume list below). The client then sends only those, and a
//!   directory also when anything inside it was sent (that changed its
//!   mtime on the server). A client may have several manifests in flight;
//!   they are answered in order. A `Need` whose bitmaps are not both
//!   `ceil(n / 8)` bytes for a manifest of `n` entries, or that sets an
//!   entry's bit in both, is a protocol error.
//! * An entry is needed as metadata only when the stored one has the same
//!   content (a regular file, or a later name of one, of the same size and
//!   mtime; a symlink of the same target) and another mode, owner or
//!   group (a symlink: or mtime), or for a file other extended attributes
//!   (an `Update` then follows an `Xattrs` frame with the new set). The client answers with `Update` (id,
//!   path, kind: 1 file or 3 symlink, a later name of a file being the
//!   file it is stored as, meta, size: the file's size or the link
//!   target's length; no body; kind 37): "the entry at path is the one you
//!   hold, with this metadata now". It counts in the batch as an entry and
//!   is answered like one. At the commit, with the batch's other entries,
//!   the server applies the metadata to the stored entry in place (looked
//!   up beneath the namespace, no link followed): it must be of the
//!   `Update`'s kind (else `Failed` names the path and both kinds) and
//!   size, a file also of its mtime (else `Failed`: changed since the
//!   manifest), and it must exist (else `Failed`: not stored). A client
//!   whose `Update` failed sends the entry whole after that commit. A file of several names is one inode: all of
//!   them change. Directories and specials are never needed as metadata
//!   only: their frames carry no body, and a stored directory is not
//!   re-made by its `Dir` (its metadata is applied in place).
//! * `Closed` (id, path, whole:u8 0 or 1, keep: count:u32 name:bytes[count];
//!   kind 38; version 3, `keep` since version 4): the client's
//!   walk of the directory `path` is over, after the manifests naming every
//!   entry of it. Whole (1): it listed the directory and looked at every
//!   entry, so the entries the server holds there that none of the
//!   connection's manifests named and `keep` does not list are deleted at
//!   the commit (moved into history, reserved `.rsb-tmp.` names never).
//!   `keep` names entries the client has there and left out (its exclude
//!   patterns): whatever the server holds under them stays. Each is a
//!   name component (1 to 255 bytes, no `/` or NUL, not `.` or `..`), and
//!   only a whole `Closed` has any (else a protocol error); a client whose
//!   names would not fit the frame sends the `Closed` not whole. Not whole
//!   (0): nothing is deleted there. It counts in the batch as an entry; a
//!   failure is a `Failed` for its id. The server holds at most 32 MiB of
//!   manifest and keep names (and their directories' paths) per connection
//!   for this; past that a whole `Closed` fails (deletions not applied),
//!   for the rest of the connection when manifest names were lost, for
//!   that directory alone when its keep names did not fit.
//! * `Need` also lists (entry index, offset) for needed files of which the
//!   server kept the first `offset` bytes from an interrupted transfer (files
//!   of 1 MiB or more, kept under a name made of the file's name, size and
//!   mtime). The client sends such a file as `FileFrom` (the `File` fields
//!   plus `offset`) followed by bytes `offset..size`; the crc32c in
//!   `FileEnd` covers the whole file.
//! * `Need` ends with a delta list (version 6): count:u32 and that many
//!   entry indices, strictly ascending, each a file the `Need` needs
//!   whole (its `bits` bit set; a peer that sees another is broken) and
//!   of which the server holds an older version. Right after the `Need`
//!   come, for each in order, `Signature` frames (id: the manifest's,
//!   index, total:u32, chunk:bytes; kind 44): the version's block
//!   signature ([`crate::delta::Signature`]'s encoding, `total` bytes,
//!   at most [`MAX_SIGNATURE`]) in chunks of at most
//!   [`SIGNATURE_CHUNK`], non-empty, each signature whole before the
//!   next, at most [`MAX_NEED_SIGNATURES`] bytes after one `Need`; any
//!   other frame before the last piece is a protocol error, and the
//!   `Need` counts as answered once it is in. The server offers this
//!   for needed files of at least [`crate::delta::DELTA_MIN`] bytes whose
//!   stored version is a regular file of at least 64 KiB, also those it
//!   has a partial of (the entry is then in both lists: version 7); the
//!   signature comes from its cache (see
//!   [`crate::store::names::SIGS_DIR`]) or is made on a worker.
//! * A client may send such a file as `FileDelta` (id, path, meta,
//!   size, basis:u64, offset:u64, copies: count:u32 (dst:u64 src:u64
//!   len:u64)[count]; kind 45, version 6, `offset` since version 7)
//!   instead of `File`: the bytes before `offset` (0, or the offset the
//!   `Need`'s resume list gave the entry) are the server's partial's;
//!   the runs `copies` (at most [`MAX_DELTA_COPIES`], ascending and apart
//!   in the new file, each non-empty, inside `offset..size`, and inside
//!   `0..basis` of the stored version, which must be `basis` bytes long)
//!   are taken from the stored version; the body that follows is every
//!   other byte of `offset..size`, in order (the extents of
//!   [`frame::delta_layout`]), and `FileEnd` carries the crc32c of the
//!   whole new file. The runs take at most [`delta_copy_budget`] bytes
//!   from the basis (else `Failed`, the body read and dropped). The
//!   server copies the runs (`copy_file_range`, so they share extents on
//!   XFS and btrfs), writes the body between them, reads the result back
//!   and keeps it only if that crc32c matches, like any file; the stored
//!   version goes into history whole at the commit. A `FileDelta` whose
//!   stored version is gone or of another size, whose partial is gone or
//!   shorter than `offset`, or whose result does not match, fails with
//!   `Failed`; the client then sends the file whole after that commit.
//! * A delta of a file of 1 MiB or more cut while its body comes in
//!   (client gone, network down) leaves the server a partial, as a cut
//!   `File` does: the bytes from the file's start up to the body's
//!   furthest byte received (its runs before there were copied first),
//!   under the partial's name. The next backup of that version offers it
//!   in the resume list with the signature: the client matches from
//!   there and sends a `FileDelta` from that offset (or a `FileFrom`).
//! * A client busy reading a large file before its `FileDelta` (a match
//!   takes as long as reading the file) sends an empty `Names` at least
//!   every 30 s, so that the server's idle timeout does not end it.
//! * Entry kinds (a `u8`): 1 file, 2 directory, 3 symlink, 4 FIFO,
//!   5 socket, 6 character device, 7 block device, 8 hard link (a
//!   manifest-only kind: a later name of a regular file whose first name
//!   the same run listed; its link target is that name's wire path). A device number is
//!   `st_rdev` as Linux's `makedev` encodes it (major and minor split by
//!   [`frame::dev_major`] and [`frame::dev_minor`]); it is on the wire
//!   only for kinds 6 and 7 (in `Manifest` and `ListEntry` entries, after
//!   the link target) and is 0 for every other kind.
//! * Backup entries: `Dir`, `Symlink`, `Special` (id, path, kind 4 to 7,
//!   rdev:u64, which is 0 for a FIFO or socket, meta: a FIFO, socket or
//!   device node, no body), and `File` followed by exactly `size`
//!   body bytes and then `FileEnd` (crc32c of the body, and a status byte:
//!   0 = the bytes are the file, 1 = the sender's file changed or failed while
//!   it was sent, discard it). `Link` (id, path, target: a wire path,
//!   meta, size; no body; kind 36): another name of the regular file at
//!   `target`, which the same run already sent or stores; in a restore the
//!   target is relative to the restored path like the entry's own path.
//!   The decoder refuses an empty target and one equal to the path. The
//!   server makes a backup `Link` at the commit, after the batch's other
//!   entries are in place: the stored target must be a regular file (no
//!   symlink followed, inside the namespace) of the link's size and mtime,
//!   else `Failed` names the link and its target; the link is made under a
//!   temporary name and renamed over the final name. A client sends
//!   the later names of a regular file with several names (`st_nlink` > 1)
//!   as `Link`s to the first name it listed in the run (at most 100,000
//!   groups a run; past that, as files), also when the manifest check
//!   found the link unchanged but its target was sent in this run. *A
//!   manifest check finds a kind 8 entry never unchanged yet (its `Link`,
//!   no body, is sent each run).* The server stages every entry under a hidden
//!   temporary name; a failure is reported with `Failed` (id, path, message).
//! * `File` and `FileFrom` end with the body's layout: `0` (dense: the
//!   body is bytes `offset..size`), or `1`, a count (at most
//!   [`MAX_EXTENTS`]) and that many (offset:u64, len:u64) extents, ascending,
//!   apart, non-empty and inside `offset..size`: the body is the bytes of
//!   the extents, in order, and every other byte is a hole that reads as
//!   zero (a sparse file: the sender found its holes with `SEEK_HOLE`).
//!   The receiver writes each extent where it belongs and leaves the holes
//!   unwritten, so they stay holes; the crc32c in `FileEnd` covers the
//!   whole file, holes as zeros. A sparse body of no bytes still has its
//!   `FileEnd` checked against the zeros.
//! * Directories come *after* their contents (post-order), so the receiver
//!   sets a directory's mode and mtime when nothing more will be written
//!   into it. A receiver creates missing parent directories itself, with
//!   owner-only permissions until their own entry arrives, and replaces a
//!   file or symlink that stands where a directory is needed (it never
//!   follows one).
//! * At most [`MAX_BATCH`] entries, with at most [`MAX_BATCH_PATH_BYTES`]
//!   bytes of paths, may be sent between two commits.
//! * `Commit`: make every entry sent before it durable and visible. The
//!   server syncs the staged data, renames each staged entry over its final
//!   name, applies directory metadata, syncs again and answers `Committed`
//!   with the same id. Entries before a `Commit` that got no `Failed` are
//!   stored once `Committed` arrives.
//! * `List` (id, path): answered with `ListEntry` frames (id, kind, name,
//!   meta, size, link target, and a device's number) and `Done`. A device
//!   a server not running as root keeps as a metadata-only entry is listed,
//!   restored and compared as the device it stands for.
//! * `Restore` (id, path): answered with the same `Dir`/`Symlink`/`Special`/`File`
//!   (+ body + `FileEnd`)/`Link` frames a backup uses, carrying the request's id,
//!   with paths relative to the restored path (the empty path is the restored
//!   path itself), directories after their contents, then `Done`. Entries that cannot be read are
//!   reported with `Failed` and skipped.
//! * Hard links in a restore: a stored regular file with several names
//!   (`st_nlink` > 1) goes out whole under the first of its names the walk
//!   meets; each later name of it in the restored tree goes as `Link`
//!   (target: that first name, relative to the restored path; meta and
//!   size: the file's), never before the first name was sent whole (its
//!   good `FileEnd`) or offered and skipped by the client. Only the first
//!   [`MAX_RESTORE_LINKS`] regular files (`File` or `Offer`) of a restore
//!   can be link targets, and a server remembers at most
//!   [`MAX_RESTORE_LINK_GROUPS`] of them; later names of other files go
//!   as files of their own. A client makes a `Link` only to a regular file it wrote or kept
//!   (its `Skip`, or a body dropped as already there) in the same
//!   restore, of the link's size, remembering the first
//!   [`MAX_RESTORE_LINKS`] of them (so every target a server may name);
//!   any other `Link` (its target a local file it did not write, a
//!   directory, a name of another size) is refused as that entry's
//!   failure. It links at its next commit, under a temporary name renamed
//!   over the final one, and leaves a name that already is that inode.
//!
//! * `Offer` (id, path, mode, mtime, size): in a restore, a file of 1 MiB
//!   or more is offered before it is sent. The client answers `Want` (id,
//!   offset: the bytes it holds from an interrupted restore, 0 for none),
//!   and the server sends `FileFrom` from there; or it answers `Skip` (id):
//!   it has this version already (same size, mode and mtime, rsync's quick
//!   check) or refuses it, and the server sends nothing of it and goes on
//!   with the next entry.
//!
//! * `Verify` (id, path): the server re-reads every stored file under the
//!   path and compares it with the crc32c recorded when it was stored
//!   (never changing anything), reports each damaged or unreadable file
//!   with `Failed` and how far it got with `Progress` (id, files, bytes;
//!   about twice a second), and ends with `Verified` (id, counts).
//!
//! * `Xattrs` (id, path, count:u32 (name:bytes value:bytes)[count]): sent
//!   by whoever sends entries, right before the `File`, `FileFrom` or
//!   `Dir` (in a restore also the `Offer`) of the same id and path, with
//!   that entry's extended attributes; any other frame next is a protocol
//!   error. An entry without one has none. Names sorted, each once, 1 to
//!   244 bytes without NUL in `user.`, `security.`, `trusted.` or
//!   `system.`; at most 256 of them and 56 KiB of names and values
//!   together ([`xattrs`]).
//! * `Names` (users: names, groups: names): sent by whoever sends entries
//!   (the client in a backup, the server in a restore), before the first
//!   entry that uses an id it has not named yet on this connection; ids
//!   the sender has no name for are not listed. A name is 1 to 255 bytes
//!   without NUL, not necessarily UTF-8. A receiver keeps at most
//!   [`owners::MAX_NAMES`] user and as many group names per connection and
//!   ignores further ones; see [`owners`]. A restore maps an owner by name
//!   where the name exists on the restoring machine, else keeps the
//!   number.
//!
//! * `At` (secs:u64 as i64, nanos:u32): the `List` or `Restore` right
//!   after it is answered as the tree was at that time (see
//!   [`crate::store::past`]): the same frames, entries deleted since
//!   there, entries created since not, each in the version current then.
//!   Any other frame after `At` (a second `At` too) is a protocol error.
//!   A path that did not exist then gets `Failed` ("no such path at
//!   TIME") and `Done`.
//! * `Versions` (id, path): every version the server holds of the path,
//!   newest first, and for a directory the entries history keeps beneath
//!   it that are no longer current, each with its versions: one
//!   `Version` (id, path, kind:u8, size:u64, mode, mtime, uid, gid,
//!   stored:time, until:time (zero: current), held:u64) each, then
//!   `Done`. `held` is the bytes history holds for the asked path (the
//!   distinct kept inodes beneath it), the same in every one.
//!
//! ## Agents (version 5)
//! * `Agent` (id; kind 42): this connection follows the plan the server
//!   holds for the client's name (with `--secrets`, the name it proved).
//!   The server answers at once with `Plan` (text: bytes; kind 43), the
//!   plan as one block of the plans file (see [`crate::server::plans`]),
//!   empty when there is none, and sends another `Plan` each time that
//!   plan changes (to another plan, or to none). Once a connection sent
//!   `Agent`, any other request on it is a protocol error: backups go on
//!   connections of their own.
//! * Keepalive: an agent sends `Agent` again (a new id) every
//!   [`AGENT_PING`]; each is answered with the current `Plan` (the same
//!   text, which the agent ignores). The server's idle timeout for an
//!   agent connection is at least [`AGENT_IDLE`] (three pings), so an
//!   agent that vanished is closed and one that is alive is kept whatever
//!   `--idle-timeout` says; the client learns of a vanished server by
//!   TCP keepalive and by a ping that gets no answer.
//!
//! A request that fails as a whole (missing path, read-only server) gets
//! `Failed`, followed by `Done` for `List` and `Restore`. A protocol
//! violation gets `Error` and the connection is closed.

pub mod bits;
pub mod codec;
pub mod frame;
pub mod kind;
pub mod owners;
pub mod path;
pub mod xattrs;

pub use codec::{decode, encode, DecodeError, Decoded};
pub use frame::{
    delta_layout, dev_major, dev_minor, make_dev, CopyRange, EntryKind, ErrorCode, Extent, Frame,
    Layout, ListItem, ManifestEntry, Meta, Time, VersionItem,
};
pub use kind::Kind;
pub use path::{PathError, WirePath};

/// How often an agent sends `Agent` again as a keepalive.
pub const AGENT_PING: std::time::Duration = std::time::Duration::from_secs(60);
/// The server closes an agent connection silent for this long (the idle
/// timeout of an agent, whatever `--idle-timeout` is, unless that is off).
pub const AGENT_IDLE: std::time::Duration = std::time::Duration::from_secs(180);

/// Protocol version spoken by this build.
pub const VERSION: u16 = 7;
/// First four bytes of the `Hello` payload.
pub const MAGIC: [u8; 4] = *b"RSB\0";
/// Largest frame payload either side accepts.
pub const MAX_PAYLOAD: u32 = 64 * 1024;
/// Size of the frame header (kind + length).
pub const HEADER_LEN: usize = 5;
/// Longest path accepted on the wire (Linux PATH_MAX).
pub const MAX_PATH: usize = 4096;
/// Most extents in a sparse layout (16 bytes each, so a `File` frame
/// with the longest path still fits [`MAX_PAYLOAD`]); a sender with more
/// sends the rest of the file dense.
pub const MAX_EXTENTS: u32 = 2048;
/// Most copied runs in one `FileDelta` (24 bytes each, so the frame
/// with the longest path fits [`MAX_PAYLOAD`]); a sender with more
/// sends the shortest runs between literal bytes as literal bytes.
pub const MAX_DELTA_COPIES: u32 = 1024;
/// Longest encoded signature of one file (a file's blocks grow with it,
/// so this holds a file of about 400 GiB); a file whose signature is
/// longer is sent whole.
pub const MAX_SIGNATURE: u32 = 16 << 20;
/// Most bytes of signatures the server sends after one `Need`: the
/// client holds them until it sent those files (a few manifests in
/// flight), so this bounds its memory; the files past it go whole.
pub const MAX_NEED_SIGNATURES: usize = 16 << 20;
/// The most bytes one `FileDelta` may take from its basis: four times the
/// basis, and at least 64 MiB. A delta is a few frames on the wire, and
/// its runs may repeat a block of the basis: without a bound a small
/// basis could make the receiver write terabytes. A sender past it sends
/// the file whole; a receiver fails the entry.
#[must_use]
pub fn delta_copy_budget(basis: u64) -> u64 {
    basis.saturating_mul(4).max(64 << 20)
}

/// Longest signature chunk in one `Signature` frame.
pub const SIGNATURE_CHUNK: usize = 60 * 1024;

/// Longest single name component (Linux NAME_MAX).
pub const MAX_NAME: usize = 255;
/// Longest message in `Error`/`Failed` frames; longer ones are cut.
pub const MAX_MESSAGE: usize = 1024;
/// Most entries a client may send between two `Commit`s; the server holds
/// per-entry state until the commit, so this bounds its memory.
pub const MAX_BATCH: u32 = 4096;
/// Most bytes of paths a client may send between two `Commit`s.
pub const MAX_BATCH_PATH_BYTES: usize = 1 << 20;
/// Length of the random nonces of the authentication handshake.
pub const NONCE_LEN: usize = 32;
/// Longest nonce or MAC either side accepts.
pub const MAX_TOKEN: usize = 64;
/// `Welcome` flag: the server refuses writes.
pub const WELCOME_READ_ONLY: u32 = 1;
/// `Welcome` flag: the client was authenticated; `proof` is the server's.
pub const WELCOME_AUTHENTICATED: u32 = 2;
/// Longest client name.
pub const MAX_CLIENT_NAME: usize = 64;
/// A restore's bound on hard links: the server sends a later name of a
/// stored file as a `Link` only to one of the first this many regular
/// files (`File` or `Offer`) of the restore, and a client remembers at
/// most this many files it wrote or kept in one restore, the only
/// targets it accepts. Counting the same stream, both agree: a `Link`
/// from a well-behaved server always names a file the client remembers.
pub const MAX_RESTORE_LINKS: usize = 1 << 20;

/// Most files with several names a server remembers the first name of in
/// one restore (its memory: a path each); later names of further files
/// go out as files of their own.
pub const MAX_RESTORE_LINK_GROUPS: usize = 65_536;

/// Names beginning so are the server's own files beside the namespaces
/// (`DIR/.rsb-plans`, `DIR/.rsb-status`, `DIR/.rsb-tls/`): no client may
/// take one.
pub const RESERVED_NAME_PREFIX: &str = ".rsb-";

/// Checks a client name: 1 to 64 of `[A-Za-z0-9._-]`, not `.` or `..`,
/// not beginning with [`RESERVED_NAME_PREFIX`].
pub fn is_valid_client_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(RESERVED_NAME_PREFIX)
        && name.len() <= MAX_CLIENT_NAME
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names() {
        assert!(is_valid_client_name("laptop"));
        assert!(is_valid_client_name("a.b_c-9"));
        assert!(is_valid_client_name(&"x".repeat(64)));
        assert!(!is_valid_client_name(&"x".repeat(65)));
        assert!(!is_valid_client_name(""));
        assert!(!is_valid_client_name("."));
        assert!(!is_valid_client_name(".."));
        assert!(!is_valid_client_name("a/b"));
        assert!(!is_valid_client_name("a b"));
        assert!(!is_valid_client_name("é"));
        assert!(!is_valid_client_name(".rsb-plans"));
        assert!(is_valid_client_name(".rsb"));
    }
}
