//! The backup planner, pure: which local entries go out, in what order, in
//! which manifests, and when a `Commit` is due. The driver
//! (`io/client/backup.rs`) walks the disk, opens files and moves bytes; every
//! decision about what that means is taken here, from plain values.
//!
//! Three stages, all pipelined:
//! 1. [`Order`] turns the walks into the order the protocol wants: every
//!    directory after its contents (so the server can give it its mtime
//!    once nothing more is written into it).
//! 2. Entries go out in `Manifest` frames ([`Manifest`]: at most
//!    [`MANIFEST_ENTRIES`] entries or [`MANIFEST_BYTES`] bytes each, at most
//!    [`MANIFESTS_IN_FLIGHT`] unanswered); the server answers each with a
//!    bitmap of what it needs ([`Plan::handle_need`]).
//! 3. Needed entries are sent ([`Plan::next`]); a directory also when
//!    anything inside it was sent, since that changed its mtime on the
//!    server. A `Commit` follows every [`COMMIT_EVERY`] entries (or
//!    [`COMMIT_PATH_BYTES`] of paths, or [`COMMIT_BYTES`] of bodies, or
//!    [`COMMIT_CLOSED`] directories' `Closed`) and at the end, with at most
//!    [`COMMITS_IN_FLIGHT`] in flight. An entry counts as done when the
//!    commit after it is confirmed without a `Failed` for it.
//!
//! Nothing here touches the file system, the network or a clock.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;

use crate::delta::Signature;
use crate::proto::bits::NeedBits;
use crate::proto::xattrs::Xattrs;
use crate::proto::{EntryKind, ManifestEntry, Meta, WirePath};

/// Entries between two commits (below [`crate::proto::MAX_BATCH`], so the
/// server never has to refuse a batch).
pub const COMMIT_EVERY: u32 = 1024;

/// Bytes of paths between two commits: half of
/// [`crate::proto::MAX_BATCH_PATH_BYTES`], leaving room for the directories
/// closed in one go after it is reached.
pub const COMMIT_PATH_BYTES: usize = crate::proto::MAX_BATCH_PATH_BYTES / 2;

/// Body bytes after which a batch is committed, whatever its length (both
/// directions): a finished body is no longer a resumable partial (it is
/// renamed to its connection's own name, so that no concurrent backup can
/// touch it), so a kill -9 before the commit makes a re-run send it again;
/// this bounds that to 64 MiB, at the cost of one commit per 64 MiB.
pub const COMMIT_BYTES: u64 = 64 << 20;

/// `Closed` frames after which the first batch is committed, whatever
/// else it holds: the server lists each of those directories at the
/// commit to find what the client no longer has, so an unchanged tree
/// (whose batches hold nothing else) has them listed by the commit
/// workers while the walk goes on, not all at once at the end. A commit
/// that changes nothing costs a round trip and no `syncfs`; one that
/// deletes costs a `syncfs`, so the count doubles after each commit it
/// triggers, up to [`COMMIT_CLOSED_MAX`]: a run deleting in each of
/// 10,000 directories makes 14 such commits, not 312.
pub const COMMIT_CLOSED: u32 = 32;

/// The most `Closed` frames a batch waits for ([`COMMIT_CLOSED`]).
pub const COMMIT_CLOSED_MAX: u32 = 1024;

/// Commits sent and not yet confirmed, at most: one being made durable
/// while the next batch is sent.
pub const COMMITS_IN_FLIGHT: usize = 2;

/// Output queued before the client stops queueing more: bounds memory,
/// and keeps a `Commit` from waiting behind megabytes of frames.
pub const HIGH_WATER: usize = 256 * 1024;

/// Manifests sent and not yet answered, at most.
pub const MANIFESTS_IN_FLIGHT: usize = 4;

/// Times a file is read and sent when it keeps changing while it is read
/// (its size or mtime at the end of its body is not what it was at the
/// start): the first read and two more. The last copy read is then stored:
/// its crc32c covers exactly the bytes sent, so for a log that is only
/// appended to it is a valid prefix, as tar and rsync keep too.
pub const READS_OF_A_CHANGING_FILE: u32 = 3;

/// Entries in one manifest, at most.
pub const MANIFEST_ENTRIES: usize = 512;

/// Encoded bytes of one manifest, at most (below the frame limit).
pub const MANIFEST_BYTES: usize = 48 * 1024;

/// One local file, directory or symlink, ready to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEntry {
    /// The absolute local path.
    pub local: PathBuf,
    /// The local path without its leading `/`: where it lands on the server.
    pub wire: WirePath,
    /// File, directory or symlink.
    pub kind: EntryKind,
    /// Permission bits and mtime (with nanoseconds) from `lstat`.
    pub meta: Meta,
    /// Size in bytes for files, 0 otherwise.
    pub size: u64,
    /// The link target for symlinks, empty otherwise.
    pub target: Vec<u8>,
    /// The device number of a device, 0 otherwise.
    pub rdev: u64,
    /// `(st_dev, st_ino)` of a regular file with more than one name (a
    /// hard link), `None` otherwise.
    pub inode: Option<(u64, u64)>,
    /// The extended attributes of a file or directory, `None` for none
    /// (boxed: most entries have none, and a walk holds many entries).
    pub xattrs: Option<Box<Xattrs>>,
}

impl LocalEntry {
    /// The digest of its extended attributes a manifest carries.
    pub fn xattr_digest(&self) -> u64 {
        self.xattrs.as_ref().map_or(0, |x| x.digest())
    }
}

/// Hard-link groups a backup run remembers, at most: past them, further
/// names of new inodes are sent as plain files.
pub const MAX_LINK_GROUPS: usize = 100_000;

/// True when `p` lies strictly inside directory `dir`.
pub fn contains(dir: &WirePath, p: &WirePath) -> bool {
    let (d, p_bytes) = (dir.as_bytes(), p.as_bytes());
    dir.is_root() && !p.is_root()
        || p_bytes.len() > d.len() && p_bytes.starts_with(d) && p_bytes.get(d.len()) == Some(&b'/')
}

/// What the walk said of a directory it closed: whether it read it whole,
/// and the names in it that its excludes left out (the server keeps what
/// it holds under them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walked {
    /// Read whole: the server deletes what it holds there and lacks.
    pub whole: bool,
    /// Names left out there, for the `Closed`'s keep list.
    pub keep: Vec<Vec<u8>>,
}

/// What [`Order::place`] made of an entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Placed {
    /// Send it now; directories it closed follow it ([`Order::pop_closed`]).
    Ready(LocalEntry),
    /// A directory: it comes once its contents have.
    Held,
    /// Under a name the store reserves (`.rsb-tmp.`): skipped, with its
    /// contents, which the walk still yields.
    Reserved(LocalEntry),
}

/// The walks of all paths, reordered so that a directory comes after
/// everything in it. Fed one walk at a time, in pre-order.
#[derive(Debug, Default)]
pub struct Order {
    /// Directories whose contents are still coming, innermost last, with
    /// what their walk said when it closed them ([`Order::handle_walked_dir`]).
    open_dirs: Vec<(LocalEntry, Option<Walked>)>,
    /// Directories closed and ready to go out.
    closed: VecDeque<(LocalEntry, Option<Walked>)>,
    /// Walked directories just handed out, and what their walk said: their
    /// entries and everything beneath them are placed, so their `Closed`
    /// may follow the manifest being filled.
    walked: Vec<(WirePath, Walked)>,
    /// The first name of each hard-linked inode this run placed (at most
    /// [`MAX_LINK_GROUPS`]).
    first_names: HashMap<(u64, u64), WirePath>,
}

impl Order {
    /// An empty order.
    pub fn new() -> Order {
        Order::default()
    }

    /// The next entry of the current walk. Directories that cannot contain
    /// it are closed first (see [`Self::pop_closed`]).
    pub fn place(&mut self, e: LocalEntry) -> Placed {
        // Checked on every component: the walk still enters such a
        // directory, and its contents must not be sent either.
        if e.wire.is_reserved() {
            return Placed::Reserved(e);
        }
        while self
            .open_dirs
            .last()
            .is_some_and(|(d, _)| !contains(&d.wire, &e.wire))
        {
            if let Some(d) = self.open_dirs.pop() {
                self.closed.push_back(d);
            }
        }
        if e.kind == EntryKind::Dir {
            self.open_dirs.push((e, None));
            return Placed::Held;
        }
        Placed::Ready(self.link_or_file(e))
    }

    /// A later name of an inode this run already placed becomes a
    /// [`EntryKind::HardLink`] to the first name (its wire path as the
    /// target); the first name is remembered while there is room.
    fn link_or_file(&mut self, mut e: LocalEntry) -> LocalEntry {
        let Some(ino) = e.inode.filter(|_| e.kind == EntryKind::File) else {
            return e;
        };
        match self.first_names.get(&ino) {
            Some(first) if *first != e.wire => {
                e.kind = EntryKind::HardLink;
                e.target = first.as_bytes().to_vec();
            }
            Some(_) => {}
            None if self.first_names.len() < MAX_LINK_GROUPS => {
                self.first_names.insert(ino, e.wire.clone());
            }
            None => e.inode = None,
        }
        e
    }

    /// The current walk ended: every directory still open is complete.
    pub fn end_walk(&mut self) {
        while let Some(d) = self.open_dirs.pop() {
            self.closed.push_back(d);
        }
    }

    /// The walk closed directory `wire` (it is still open here: the
    /// entry that closes it has not come yet), saying `walked`. Tied to
    /// this walk's entry of it, not to its path: another walk's entry of
    /// the same directory (an ancestor) does not carry it.
    pub fn handle_walked_dir(&mut self, wire: &WirePath, walked: Walked) {
        if let Some((_, flag)) = self
            .open_dirs
            .iter_mut()
            .rev()
            .find(|(d, _)| d.wire == *wire)
        {
            *flag = Some(walked);
        }
    }

    /// A directory whose contents have all been placed.
    pub fn pop_closed(&mut self) -> Option<LocalEntry> {
        let (d, flag) = self.closed.pop_front()?;
        if let Some(walked) = flag {
            self.walked.push((d.wire.clone(), walked));
        }
        Some(d)
    }

    /// The walked directories handed out by [`Self::pop_closed`] since the
    /// last call, for [`Plan::handle_closed`].
    pub fn take_walked(&mut self) -> Vec<(WirePath, Walked)> {
        std::mem::take(&mut self.walked)
    }
}

/// One manifest being filled.
#[derive(Debug, Default)]
pub struct Manifest {
    entries: Vec<LocalEntry>,
    bytes: usize,
}

impl Manifest {
    /// An empty manifest.
    pub fn new() -> Manifest {
        Manifest::default()
    }

    /// True once it holds [`MANIFEST_ENTRIES`] entries or about
    /// [`MANIFEST_BYTES`] bytes.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.entries.len() >= MANIFEST_ENTRIES || self.bytes >= MANIFEST_BYTES
    }

    /// True when it holds nothing (a manifest is never sent empty).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an entry.
    pub fn push(&mut self, e: LocalEntry) {
        // An over-estimate of its encoded size: kind, sizes, meta, lengths.
        self.bytes += 48 + e.wire.as_bytes().len() + e.target.len();
        self.entries.push(e);
    }

    /// The entries as the frame carries them.
    pub fn frame_entries(&self) -> Vec<ManifestEntry> {
        self.entries
            .iter()
            .map(|e| ManifestEntry {
                kind: e.kind,
                path: e.wire.clone(),
                meta: e.meta,
                size: e.size,
                target: e.target.clone(),
                rdev: e.rdev,
                xattrs: e.xattr_digest(),
            })
            .collect()
    }
}

/// What the driver is to do next, from [`Plan::next`].
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send a `Commit` now: the batch is full.
    Commit,
    /// Send this entry; a file from byte `resume_at` on when the server
    /// kept that much of this version (see [`resume_offset`]).
    Send {
        /// The entry.
        entry: LocalEntry,
        /// The server's kept prefix, 0 for none.
        resume_at: u64,
        /// How many times it was read before (it changed each time): give
        /// it back to [`Plan::handle_changed`] if it changes again.
        reads: u32,
        /// The signature of the version the server holds: the file may
        /// go as a delta against it ([`Plan::handle_sent_delta`]).
        basis: Option<Box<Signature>>,
    },
    /// Send only this entry's metadata, as an `Update` (the server stores
    /// its content: same size and mtime, or same link target): no body.
    /// A later name of a file goes as the file it is stored as.
    Update {
        /// The entry.
        entry: LocalEntry,
    },
    /// Send a `Closed` for this directory: its entry has gone (or was not
    /// needed), and with it everything beneath it.
    Closed {
        /// The directory.
        path: WirePath,
        /// The walk read it whole: the server deletes what it lacks.
        whole: bool,
        /// Names its excludes left out: the server keeps them.
        keep: Vec<Vec<u8>>,
    },
    /// Nothing to send until an answer comes.
    Wait,
}

/// What a confirmed commit made durable.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// Regular files now stored.
    pub files: u64,
    /// Symlinks now stored.
    pub links: u64,
    /// FIFOs, sockets and device nodes now stored.
    pub specials: u64,
    /// Files and symlinks whose metadata alone was sent and is now
    /// stored (`Update`s; not counted as files or symlinks).
    pub updated: u64,
    /// Their body bytes sent (of a delta, its literal bytes).
    pub bytes: u64,
    /// Bytes the server took from the versions it held (deltas).
    pub reused: u64,
    /// Of those files, the ones stored as last read although they kept
    /// changing ([`Plan::handle_changed`]).
    pub changed: u64,
    /// It was the final commit: the backup is over.
    pub finished: bool,
}

/// An entry sent and not yet confirmed.
#[derive(Debug)]
struct Sent {
    path: WirePath,
    kind: EntryKind,
    size: u64,
    /// Stored as last read although it kept changing.
    changed: bool,
    /// Only its metadata was sent (an `Update`): the entry, to send whole
    /// if the server fails the update.
    update: Option<Box<LocalEntry>>,
    /// It went as a delta: the entry, to send whole if the server fails
    /// it (its stored version changed), and the bytes taken from that.
    delta: Option<(Box<LocalEntry>, u64)>,
}

/// What to do with a file whose body was sent and which changed while it
/// was read, from [`Plan::handle_changed`].
#[derive(Debug, PartialEq, Eq)]
pub enum Changed {
    /// End its body as not good (the server drops it); it is queued to be
    /// read and sent again.
    Retry,
    /// End its body as good: the last copy read is stored. Its crc32c covers
    /// the bytes sent, so the server's check holds.
    Keep,
    /// End its body as not good: it shrank, so what was sent is padded and
    /// no copy of it; the server's failure names it.
    Fail,
}

/// One entry the server needs (directories: maybe, see `Plan::dirty`).
#[derive(Debug)]
struct Queued {
    entry: LocalEntry,
    needed: bool,
    /// Only its metadata is needed (the server's `meta` bit).
    meta_only: bool,
    resume_at: u64,
    reads: u32,
    basis: Option<Box<Signature>>,
}

/// The state of one backup between the walk and the server's answers.
#[derive(Debug, Default)]
pub struct Plan {
    /// Every walk has ended: no more manifests.
    walked: bool,
    /// Manifests sent, with their entries, oldest first.
    asked: VecDeque<(u32, Vec<LocalEntry>)>,
    /// Entries the server needs, in sending order, with the offset to
    /// resume a file at.
    to_send: VecDeque<Queued>,
    /// Ids of bodies ended as not good to be sent again: the server's
    /// failure for them is expected and not the user's concern.
    retried: HashSet<u32>,
    /// Directories something was sent into.
    dirty: HashSet<WirePath>,
    /// First names of hard-linked files sent in this run: their later
    /// names are sent too (the file has a new inode on the server).
    linked_sent: HashSet<WirePath>,
    /// Entries sent and not yet confirmed, by id.
    sent: BTreeMap<u32, Sent>,
    /// Entries in the batch since the last commit.
    batch_entries: u32,
    /// Bytes of their paths (the server bounds both).
    batch_path_bytes: usize,
    /// Body bytes sent in the batch ([`COMMIT_BYTES`]).
    batch_body_bytes: u64,
    /// `Closed` frames sent in the batch ([`COMMIT_CLOSED`]).
    batch_closed: u32,
    /// The `Closed` frames that fill a batch now, 0 before the first
    /// commit they fill (then [`COMMIT_CLOSED`]).
    closed_limit: u32,
    /// The id of the last commit, once sent.
    final_commit: Option<u32>,
    /// Body bytes of the files the server asked for so far (the progress
    /// line's total).
    needed_bytes: u64,
    /// Directories whose walk is over, and what it said of them: their
    /// `Closed` follows their entry.
    closed: HashMap<WirePath, Walked>,
    /// The `Closed` of the directory entry just sent.
    closing: Option<(WirePath, Walked)>,
}

impl Plan {
    /// A backup about to start.
    pub fn new() -> Plan {
        Plan::default()
    }

    /// True when another manifest may be filled and sent: the walk is not
    /// over, no body is on its way (the session would hold the manifest
    /// back until its `FileEnd`, so asking now gains nothing), and entries
    /// waiting in manifests, in the send queue and in `queued` bytes of
    /// output stay bounded.
    #[must_use]
    pub fn wants_manifest(&self, queued: usize, sending_body: bool) -> bool {
        !self.walked
            && !sending_body
            && self.asked.len() < MANIFESTS_IN_FLIGHT
            && self.to_send.len() < 2 * MANIFEST_ENTRIES
            && queued < HIGH_WATER
    }

    /// Every walk has ended.
    pub fn handle_walked(&mut self) {
        self.walked = true;
    }

    /// The walk of directory `path` is over and its entry is in the
    /// manifest being filled ([`Order::take_walked`]), after everything
    /// beneath it: its `Closed` goes after that manifest, once its entry
    /// is reached in the send queue.
    pub fn handle_closed(&mut self, path: WirePath, walked: Walked) {
        if !path.is_reserved() {
            self.closed.insert(path, walked);
        }
    }

    /// The manifest `m` went out with this id.
    pub fn handle_asked(&mut self, id: u32, m: Manifest) {
        self.asked.push_back((id, m.entries));
    }

    /// The server's answer to the oldest manifest (the session checked the
    /// order and sizes): bit `i` of `bits` set means entry `i` is needed,
    /// of `meta` that only its metadata is (the session refused a bit set
    /// in both; here the content would win), `resume` gives a file's kept
    /// prefix. Returns how many entries were unchanged (never opened,
    /// never sent).
    pub fn handle_need(
        &mut self,
        bits: &[u8],
        meta: &[u8],
        resume: &[(u32, u64)],
        delta: Vec<(u32, Signature)>,
    ) -> u64 {
        let Some((_, entries)) = self.asked.pop_front() else {
            return 0;
        };
        let mut delta = delta.into_iter().peekable();
        let mut unchanged = 0;
        for (i, e) in entries.into_iter().enumerate() {
            let needed = NeedBits::bit(bits, i);
            let meta_only = !needed && NeedBits::bit(meta, i);
            // An unneeded link still waits in the queue: it goes when its
            // target is sent (see `next`).
            if !needed && !meta_only && e.kind != EntryKind::Dir && e.kind != EntryKind::HardLink {
                unchanged += 1;
                continue;
            }
            let at = resume
                .iter()
                .find(|&&(r, _)| r as usize == i)
                .map_or(0, |&(_, off)| off);
            if needed && e.kind == EntryKind::File {
                self.needed_bytes += e.size.saturating_sub(at);
            }
            // The session checked the list ascending and among `bits`.
            while delta.next_if(|(d, _)| (*d as usize) < i).is_some() {}
            let basis = delta
                .next_if(|(d, _)| *d as usize == i)
                .filter(|_| needed && e.kind == EntryKind::File)
                .map(|(_, sig)| Box::new(sig));
            self.to_send.push_back(Queued {
                entry: e,
                needed,
                meta_only,
                resume_at: at,
                reads: 0,
                basis,
            });
        }
        unchanged
    }

    /// Body bytes of the files the server asked for so far (it grows as
    /// the walk goes on): what the progress line knows of the total.
    pub fn needed_bytes(&self) -> u64 {
        self.needed_bytes
    }

    /// What to do next, when no body is on its way and output is below
    /// [`HIGH_WATER`]. `commits_in_flight` is the session's count.
    pub fn next(&mut self, commits_in_flight: usize) -> Next {
        if self.is_batch_full() {
            if commits_in_flight >= COMMITS_IN_FLIGHT {
                return Next::Wait;
            }
            if self.batch_closed >= self.closed_limit() {
                self.closed_limit = (self.closed_limit() * 2).min(COMMIT_CLOSED_MAX);
            }
            self.batch_entries = 0;
            self.batch_path_bytes = 0;
            self.batch_body_bytes = 0;
            self.batch_closed = 0;
            return Next::Commit;
        }
        if let Some((path, Walked { whole, keep })) = self.closing.take() {
            return Next::Closed { path, whole, keep };
        }
        while let Some(Queued {
            entry: e,
            needed,
            meta_only,
            resume_at,
            reads,
            basis,
        }) = self.to_send.pop_front()
        {
            // An unneeded directory goes only when something was sent into
            // it: that changed its mtime on the server.
            let relinked = e.kind == EntryKind::HardLink
                && WirePath::new(e.target.clone()).is_ok_and(|t| self.linked_sent.contains(&t));
            let dirty = e.kind == EntryKind::Dir && self.dirty.remove(&e.wire);
            if e.kind == EntryKind::Dir {
                // Everything beneath it went before it.
                self.closing = self.closed.remove_entry(&e.wire);
            }
            if meta_only && !relinked && !dirty && has_update(e.kind) {
                // The stored entry changes in place: its directory does
                // not (a chmod or chown changes no directory's mtime).
                return Next::Update { entry: e };
            }
            // A directory, FIFO, socket or device whose metadata alone
            // differs goes whole: its frame has no body either.
            if !(needed || meta_only || relinked || dirty) {
                if let Some((path, Walked { whole, keep })) = self.closing.take() {
                    return Next::Closed { path, whole, keep };
                }
                continue;
            }
            if e.kind == EntryKind::File && e.inode.is_some() {
                self.linked_sent.insert(e.wire.clone());
            }
            if let Some(parent) = e.wire.parent() {
                self.dirty.insert(parent);
            }
            return Next::Send {
                entry: e,
                resume_at,
                reads,
                basis,
            };
        }
        Next::Wait
    }

    /// The entry `path` went out with this id and `size` body bytes.
    pub fn handle_sent(&mut self, id: u32, path: WirePath, kind: EntryKind, size: u64) {
        self.sent_entry(id, path, kind, size, None);
    }

    /// The file `entry` went out with this id as a delta: `literal` body
    /// bytes, `reused` taken from the server's version. If the server
    /// fails it, it is sent whole after that commit.
    pub fn handle_sent_delta(&mut self, id: u32, entry: LocalEntry, literal: u64, reused: u64) {
        let path = entry.wire.clone();
        self.sent_entry(id, path, EntryKind::File, literal, None);
        if let Some(s) = self.sent.get_mut(&id) {
            s.delta = Some((Box::new(entry), reused));
        }
    }

    /// The `Closed` of directory `path` went out with this id: counted in
    /// the batch like an entry, its failure named like one.
    pub fn handle_sent_closed(&mut self, id: u32, path: WirePath) {
        self.batch_closed += 1;
        self.sent_entry(id, path, EntryKind::Dir, 0, None);
    }

    /// The metadata of `entry` went out as an `Update` with this id; it
    /// is answered and counted in the batch as any entry.
    pub fn handle_updated(&mut self, id: u32, entry: LocalEntry) {
        let (path, kind) = (entry.wire.clone(), entry.kind);
        self.sent_entry(id, path, kind, 0, Some(Box::new(entry)));
    }

    fn sent_entry(
        &mut self,
        id: u32,
        path: WirePath,
        kind: EntryKind,
        size: u64,
        update: Option<Box<LocalEntry>>,
    ) {
        self.batch_entries += 1;
        self.batch_path_bytes += path.as_bytes().len();
        self.batch_body_bytes = self.batch_body_bytes.saturating_add(size);
        self.sent.insert(
            id,
            Sent {
                path,
                kind,
                size,
                changed: false,
                update,
                delta: None,
            },
        );
    }

    /// The body of file `id` (`entry`, read `reads` times before) was sent,
    /// and the file changed while it was read; `shrank`: it gave fewer bytes
    /// than announced. Up to [`READS_OF_A_CHANGING_FILE`] reads it is sent
    /// again, right away (before the directory holding it); then the last
    /// copy read is kept, unless it shrank.
    pub fn handle_changed(
        &mut self,
        id: u32,
        entry: LocalEntry,
        reads: u32,
        shrank: bool,
    ) -> Changed {
        let reads = reads + 1;
        if reads < READS_OF_A_CHANGING_FILE {
            self.sent.remove(&id);
            self.retried.insert(id);
            self.to_send.push_front(Queued {
                entry,
                needed: true,
                meta_only: false,
                resume_at: 0,
                reads,
                basis: None,
            });
            return Changed::Retry;
        }
        if shrank {
            return Changed::Fail;
        }
        if let Some(s) = self.sent.get_mut(&id) {
            s.changed = true;
        }
        Changed::Keep
    }

    /// True when the final `Commit` is due: everything walked, answered
    /// and sent, and no body on its way.
    #[must_use]
    pub fn wants_final_commit(&self, sending_body: bool) -> bool {
        self.walked
            && self.asked.is_empty()
            && self.to_send.is_empty()
            && self.closing.is_none()
            && !sending_body
            && self.final_commit.is_none()
    }

    /// The final commit went out with this id.
    pub fn handle_final_commit(&mut self, id: u32) {
        self.final_commit = Some(id);
    }

    /// The server failed entry `id`; returns the path to name: the one sent
    /// under that id, else the server's. `None` for a body ended as not good
    /// to be sent again ([`Changed::Retry`]): that failure was expected.
    ///
    /// A failed `Update` (the stored entry was removed or changed between
    /// the manifest and the commit) is not reported: the entry is queued
    /// to be sent whole, in a batch of its own after the commit it was
    /// in (a final commit already sent is then not the final one).
    pub fn handle_failed(&mut self, id: u32, path: &WirePath) -> Option<String> {
        if self.retried.remove(&id) {
            return None;
        }
        match self.sent.remove(&id) {
            Some(Sent {
                update: Some(entry),
                ..
            })
            | Some(Sent {
                delta: Some((entry, _)),
                ..
            }) => {
                if entry.kind == EntryKind::File {
                    self.needed_bytes += entry.size;
                }
                self.to_send.push_back(Queued {
                    entry: *entry,
                    needed: true,
                    meta_only: false,
                    resume_at: 0,
                    reads: 0,
                    basis: None,
                });
                self.final_commit = None;
                None
            }
            Some(s) => Some(s.path.to_string()),
            None => Some(path.to_string()),
        }
    }

    /// The commit `id` was confirmed: every entry sent before it and not
    /// failed is stored.
    pub fn handle_committed(&mut self, id: u32) -> Committed {
        let mut done = Committed {
            finished: self.final_commit == Some(id),
            ..Committed::default()
        };
        let ids: Vec<u32> = self.sent.range(..id).map(|(k, _)| *k).collect();
        for k in ids {
            if let Some(s) = self.sent.remove(&k) {
                if s.update.is_some() {
                    done.updated += 1;
                    continue;
                }
                match s.kind {
                    EntryKind::File | EntryKind::HardLink => done.files += 1,
                    EntryKind::Symlink => done.links += 1,
                    EntryKind::Fifo
                    | EntryKind::Socket
                    | EntryKind::CharDev
                    | EntryKind::BlockDev => done.specials += 1,
                    EntryKind::Dir => {}
                }
                done.changed += u64::from(s.changed);
                done.bytes += s.size;
                done.reused += s.delta.map_or(0, |(_, r)| r);
            }
        }
        // The server answered everything before the commit.
        self.retried.retain(|&r| r >= id);
        done
    }

    fn is_batch_full(&self) -> bool {
        self.batch_entries >= COMMIT_EVERY
            || self.batch_path_bytes >= COMMIT_PATH_BYTES
            || self.batch_body_bytes >= COMMIT_BYTES
            || self.batch_closed >= self.closed_limit()
    }

    /// The `Closed` frames that fill the batch being sent.
    fn closed_limit(&self) -> u32 {
        if self.closed_limit == 0 {
            COMMIT_CLOSED
        } else {
            self.closed_limit
        }
    }
}

/// Whether an entry of `kind` whose metadata alone differs goes as an
/// `Update`: a file (and another name of one) or a symlink. Every other
/// kind has no body to save, and goes whole.
pub fn has_update(kind: EntryKind) -> bool {
    matches!(
        kind,
        EntryKind::File | EntryKind::HardLink | EntryKind::Symlink
    )
}

/// The kind an `Update` of `kind` names: a later name of a file is stored
/// as the file it is.
pub fn update_kind(kind: EntryKind) -> EntryKind {
    match kind {
        EntryKind::HardLink => EntryKind::File,
        k => k,
    }
}

/// Where to resume a file the server kept `resume_at` bytes of: only into
/// the version the server saw in the manifest (`e`); a file changed since
/// (its open `meta` and `size` differ) goes from the start.
pub fn resume_offset(e: &LocalEntry, meta: Meta, size: u64, resume_at: u64) -> u64 {
    if meta == e.meta && size == e.size {
        resume_at
    } else {
        0
    }
}

#[cfg(test)]
mod tests;
