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
//!    [`COMMIT_PATH_BYTES`] of paths, or [`COMMIT_BYTES`] of bodies) and at the end, with at most
//!    [`COMMITS_IN_FLIGHT`] in flight. An entry counts as done when the
//!    commit after it is confirmed without a `Failed` for it.
//!
//! Nothing here touches the file system, the network or a clock.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::PathBuf;

use crate::proto::bits::NeedBits;
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
}

/// True when `p` lies strictly inside directory `dir`.
pub fn contains(dir: &WirePath, p: &WirePath) -> bool {
    let (d, p_bytes) = (dir.as_bytes(), p.as_bytes());
    dir.is_root() && !p.is_root()
        || p_bytes.len() > d.len() && p_bytes.starts_with(d) && p_bytes.get(d.len()) == Some(&b'/')
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
    /// Directories whose contents are still coming, innermost last.
    open_dirs: Vec<LocalEntry>,
    /// Directories closed and ready to go out.
    closed: VecDeque<LocalEntry>,
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
            .is_some_and(|d| !contains(&d.wire, &e.wire))
        {
            if let Some(d) = self.open_dirs.pop() {
                self.closed.push_back(d);
            }
        }
        if e.kind == EntryKind::Dir {
            self.open_dirs.push(e);
            return Placed::Held;
        }
        Placed::Ready(e)
    }

    /// The current walk ended: every directory still open is complete.
    pub fn end_walk(&mut self) {
        while let Some(d) = self.open_dirs.pop() {
            self.closed.push_back(d);
        }
    }

    /// A directory whose contents have all been placed.
    pub fn pop_closed(&mut self) -> Option<LocalEntry> {
        self.closed.pop_front()
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
        self.bytes += 40 + e.wire.as_bytes().len() + e.target.len();
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
    /// Their body bytes sent.
    pub bytes: u64,
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
    resume_at: u64,
    reads: u32,
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
    /// Entries sent and not yet confirmed, by id.
    sent: BTreeMap<u32, Sent>,
    /// Entries in the batch since the last commit.
    batch_entries: u32,
    /// Bytes of their paths (the server bounds both).
    batch_path_bytes: usize,
    /// Body bytes sent in the batch ([`COMMIT_BYTES`]).
    batch_body_bytes: u64,
    /// The id of the last commit, once sent.
    final_commit: Option<u32>,
    /// Body bytes of the files the server asked for so far (the progress
    /// line's total).
    needed_bytes: u64,
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

    /// The manifest `m` went out with this id.
    pub fn handle_asked(&mut self, id: u32, m: Manifest) {
        self.asked.push_back((id, m.entries));
    }

    /// The server's answer to the oldest manifest (the session checked the
    /// order and sizes): bit `i` set means entry `i` is needed, `resume`
    /// gives a file's kept prefix. Returns how many entries were unchanged
    /// (never opened, never sent).
    pub fn handle_need(&mut self, bits: &[u8], resume: &[(u32, u64)]) -> u64 {
        let Some((_, entries)) = self.asked.pop_front() else {
            return 0;
        };
        let mut unchanged = 0;
        for (i, e) in entries.into_iter().enumerate() {
            let needed = NeedBits::bit(bits, i);
            if !needed && e.kind != EntryKind::Dir {
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
            self.to_send.push_back(Queued {
                entry: e,
                needed,
                resume_at: at,
                reads: 0,
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
            self.batch_entries = 0;
            self.batch_path_bytes = 0;
            self.batch_body_bytes = 0;
            return Next::Commit;
        }
        while let Some(Queued {
            entry: e,
            needed,
            resume_at,
            reads,
        }) = self.to_send.pop_front()
        {
            // An unneeded directory goes only when something was sent into
            // it: that changed its mtime on the server.
            if !(needed || e.kind == EntryKind::Dir && self.dirty.remove(&e.wire)) {
                continue;
            }
            if let Some(parent) = e.wire.parent() {
                self.dirty.insert(parent);
            }
            return Next::Send {
                entry: e,
                resume_at,
                reads,
            };
        }
        Next::Wait
    }

    /// The entry `path` went out with this id and `size` body bytes.
    pub fn handle_sent(&mut self, id: u32, path: WirePath, kind: EntryKind, size: u64) {
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
                resume_at: 0,
                reads,
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
    pub fn handle_failed(&mut self, id: u32, path: &WirePath) -> Option<String> {
        if self.retried.remove(&id) {
            return None;
        }
        Some(
            self.sent
                .remove(&id)
                .map_or_else(|| path.to_string(), |s| s.path.to_string()),
        )
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
mod tests {
    use super::*;
    use crate::testing::frames::{meta, wp};

    fn entry(kind: EntryKind, p: &str) -> LocalEntry {
        LocalEntry {
            local: PathBuf::from(format!("/{p}")),
            wire: wp(p),
            kind,
            meta: meta(),
            size: if kind == EntryKind::File { 10 } else { 0 },
            target: Vec::new(),
            rdev: 0,
        }
    }

    /// A wire path as written in these tests, without the leading `/` of
    /// its `Display`.
    fn name(p: &WirePath) -> String {
        String::from_utf8_lossy(p.as_bytes()).into_owned()
    }

    /// A valid path of 3,818 bytes.
    fn long_path() -> String {
        vec!["x".repeat(200); 19].join("/")
    }

    fn dir(p: &str) -> LocalEntry {
        entry(EntryKind::Dir, p)
    }

    fn file(p: &str) -> LocalEntry {
        entry(EntryKind::File, p)
    }

    /// Runs walks (pre-order lists) through an [`Order`] as the driver does.
    fn ordered(walks: &[Vec<LocalEntry>]) -> (Vec<String>, Vec<String>) {
        let mut order = Order::new();
        let (mut out, mut reserved) = (Vec::new(), Vec::new());
        for w in walks {
            for e in w.iter().cloned() {
                while let Some(d) = order.pop_closed() {
                    out.push(name(&d.wire));
                }
                match order.place(e) {
                    Placed::Ready(e) => out.push(name(&e.wire)),
                    Placed::Held => {}
                    Placed::Reserved(e) => reserved.push(name(&e.wire)),
                }
            }
            order.end_walk();
            while let Some(d) = order.pop_closed() {
                out.push(name(&d.wire));
            }
        }
        (out, reserved)
    }

    #[test]
    fn directories_come_after_their_contents() {
        let walk = vec![
            dir("a"),
            file("a/f1"),
            dir("a/sub"),
            file("a/sub/f2"),
            file("a/f3"),
        ];
        let (out, _) = ordered(&[walk, vec![dir("b"), file("b/x")]]);
        // A directory closed by an entry goes right after that entry.
        assert_eq!(out, ["a/f1", "a/sub/f2", "a/f3", "a/sub", "a", "b/x", "b"]);
        for (i, p) in out.iter().enumerate() {
            for later in &out[i + 1..] {
                assert!(
                    !contains(&wp(p), &wp(later)),
                    "{later} after its directory {p}"
                );
            }
        }
    }

    #[test]
    fn reserved_names_and_their_contents_are_not_placed() {
        let walk = vec![
            dir("a"),
            dir("a/.rsb-tmp.x"),
            file("a/.rsb-tmp.x/f"),
            file("a/g"),
        ];
        let (out, reserved) = ordered(&[walk]);
        assert_eq!(out, ["a/g", "a"]);
        assert_eq!(reserved, ["a/.rsb-tmp.x", "a/.rsb-tmp.x/f"]);
    }

    #[test]
    fn contains_is_strict_and_by_component() {
        assert!(contains(&WirePath::root(), &wp("a")));
        assert!(!contains(&WirePath::root(), &WirePath::root()));
        assert!(contains(&wp("a"), &wp("a/b")));
        assert!(!contains(&wp("a"), &wp("a")));
        assert!(!contains(&wp("a"), &wp("ab")));
        assert!(!contains(&wp("a/b"), &wp("a")));
    }

    #[test]
    fn a_manifest_is_bounded_by_entries_and_bytes() {
        let mut m = Manifest::new();
        assert!(m.is_empty());
        for i in 0..MANIFEST_ENTRIES {
            assert!(!m.is_full());
            m.push(file(&format!("f{i}")));
        }
        assert!(m.is_full());
        let mut m = Manifest::new();
        let long = long_path();
        while !m.is_full() {
            m.push(file(&long));
        }
        assert!(m.frame_entries().len() < MANIFEST_ENTRIES);
        assert_eq!(m.frame_entries()[0].path, wp(&long));
        assert_eq!(m.frame_entries()[0].size, 10);
    }

    #[test]
    fn manifests_in_flight_and_output_are_bounded() {
        let mut p = Plan::new();
        assert!(p.wants_manifest(0, false));
        assert!(!p.wants_manifest(0, true), "not while a body is on its way");
        assert!(!p.wants_manifest(HIGH_WATER, false));
        for id in 0..MANIFESTS_IN_FLIGHT as u32 {
            let mut m = Manifest::new();
            m.push(file("f"));
            p.handle_asked(id, m);
        }
        assert!(!p.wants_manifest(0, false));
        p.handle_need(&[1], &[]);
        assert!(p.wants_manifest(0, false));
        p.handle_walked();
        assert!(!p.wants_manifest(0, false));
    }

    /// A plan with one manifest of these entries asked and answered.
    fn answered(entries: Vec<LocalEntry>, bits: &[u8], resume: &[(u32, u64)]) -> (Plan, u64) {
        let mut p = Plan::new();
        let mut m = Manifest::new();
        for e in entries {
            m.push(e);
        }
        p.handle_asked(7, m);
        p.handle_walked();
        let unchanged = p.handle_need(bits, resume);
        (p, unchanged)
    }

    /// Drains [`Plan::next`], recording each entry as sent.
    fn drain(p: &mut Plan) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut id = 100;
        loop {
            match p.next(0) {
                Next::Send {
                    entry, resume_at, ..
                } => {
                    out.push((name(&entry.wire), resume_at));
                    id += 1;
                    p.handle_sent(id, entry.wire, entry.kind, entry.size);
                }
                Next::Commit => out.push(("COMMIT".into(), 0)),
                Next::Wait => return out,
            }
        }
    }

    #[test]
    fn the_need_answer_picks_entries_and_resume_offsets() {
        // Entries 0 (d/f) and 2 (d/h) needed, 1 (d/g) unchanged, 3 (d) not.
        let entries = vec![file("d/f"), file("d/g"), file("d/h"), dir("d")];
        let (mut p, unchanged) = answered(entries, &[0b0101], &[(2, 4)]);
        assert_eq!(unchanged, 1);
        assert!(!p.wants_final_commit(false), "entries still to send");
        // d goes too: something was sent into it.
        assert_eq!(
            drain(&mut p),
            [("d/f".into(), 0), ("d/h".into(), 4), ("d".into(), 0)]
        );
        assert!(p.wants_final_commit(false));
        assert!(
            !p.wants_final_commit(true),
            "not while a body is on its way"
        );
    }

    #[test]
    fn an_unchanged_directory_with_unchanged_contents_is_not_sent() {
        let entries = vec![file("d/f"), dir("d"), file("e/g"), dir("e")];
        let (mut p, unchanged) = answered(entries, &[0b0100], &[]);
        assert_eq!(unchanged, 1);
        assert_eq!(drain(&mut p), [("e/g".into(), 0), ("e".into(), 0)]);
    }

    #[test]
    fn a_sent_directory_dirties_its_parent() {
        let entries = vec![file("a/b/f"), dir("a/b"), dir("a"), dir("z")];
        let (mut p, _) = answered(entries, &[0b0001], &[]);
        let sent: Vec<String> = drain(&mut p).into_iter().map(|(s, _)| s).collect();
        assert_eq!(sent, ["a/b/f", "a/b", "a"]);
    }

    #[test]
    fn a_commit_follows_every_commit_every_entries() {
        let n = COMMIT_EVERY as usize + 3;
        let entries: Vec<LocalEntry> = (0..n).map(|i| file(&format!("f{i}"))).collect();
        let mut p = Plan::new();
        // The manifest limit does not matter to the planner itself.
        let mut m = Manifest::new();
        for e in entries {
            m.push(e);
        }
        p.handle_asked(1, m);
        p.handle_need(&vec![0xff; n.div_ceil(8)], &[]);
        let out = drain(&mut p);
        let commits: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, (s, _))| s == "COMMIT")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(commits, [COMMIT_EVERY as usize]);
        assert_eq!(out.len(), n + 1);
    }

    #[test]
    fn a_full_batch_waits_for_a_commit_slot() {
        let mut p = Plan::new();
        for i in 0..COMMIT_EVERY {
            p.handle_sent(i + 1, wp("f"), EntryKind::File, 1);
        }
        assert_eq!(p.next(COMMITS_IN_FLIGHT), Next::Wait);
        assert_eq!(p.next(COMMITS_IN_FLIGHT - 1), Next::Commit);
        assert_eq!(p.next(COMMITS_IN_FLIGHT), Next::Wait, "nothing queued");
    }

    #[test]
    fn body_bytes_also_fill_a_batch() {
        let mut p = Plan::new();
        assert_eq!(p.next(0), Next::Wait);
        p.handle_sent(1, wp("a"), EntryKind::File, COMMIT_BYTES - 1);
        assert_eq!(p.next(0), Next::Wait);
        p.handle_sent(2, wp("b"), EntryKind::File, 1);
        assert_eq!(p.next(0), Next::Commit, "64 MiB of bodies commit at once");
        assert_eq!(p.next(0), Next::Wait, "the count starts again");
    }

    #[test]
    fn path_bytes_also_fill_a_batch() {
        let mut p = Plan::new();
        let long = wp(&long_path());
        let mut i = 0;
        while p.next(0) != Next::Commit {
            i += 1;
            p.handle_sent(i, long.clone(), EntryKind::File, 1);
        }
        assert_eq!(
            i as usize,
            COMMIT_PATH_BYTES.div_ceil(long.as_bytes().len())
        );
    }

    #[test]
    fn commits_count_what_they_made_durable() {
        let mut p = Plan::new();
        p.handle_sent(1, wp("d/f"), EntryKind::File, 5);
        p.handle_sent(2, wp("d/l"), EntryKind::Symlink, 0);
        p.handle_sent(3, wp("d/g"), EntryKind::File, 7);
        p.handle_sent(4, wp("d"), EntryKind::Dir, 0);
        assert_eq!(p.handle_failed(3, &wp("server/path")).unwrap(), "/d/g");
        assert_eq!(
            p.handle_failed(9, &wp("server/path")).unwrap(),
            "/server/path"
        );
        p.handle_final_commit(5);
        assert_eq!(
            p.handle_committed(5),
            Committed {
                files: 1,
                links: 1,
                specials: 0,
                bytes: 5,
                changed: 0,
                finished: true
            }
        );
        assert_eq!(p.handle_committed(6), Committed::default());
    }

    #[test]
    fn the_progress_total_is_what_the_server_asked_for() {
        let mut p = Plan::new();
        let mut m = Manifest::new();
        let (mut a, mut b) = (file("a"), file("b"));
        a.size = 10;
        b.size = 100;
        m.push(a);
        m.push(b);
        m.push(entry(EntryKind::Dir, "d"));
        p.handle_asked(1, m);
        // Only `b` (and the directory) needed, 40 bytes of it kept.
        p.handle_need(&[0b110], &[(1, 40)]);
        assert_eq!(p.needed_bytes(), 60);
    }

    #[test]
    fn resume_only_into_the_version_the_server_saw() {
        let e = file("f");
        assert_eq!(resume_offset(&e, e.meta, e.size, 4), 4);
        assert_eq!(resume_offset(&e, e.meta, e.size + 1, 4), 0);
        let mut other = e.meta;
        other.mode = 0o600;
        assert_eq!(resume_offset(&e, other, e.size, 4), 0);
    }

    #[test]
    fn a_file_that_keeps_changing_is_read_three_times_then_kept_as_last_read() {
        let (mut p, _) = answered(vec![file("d/log"), dir("d")], &[0b11], &[]);
        let mut id = 10;
        let mut verdicts = Vec::new();
        loop {
            let (entry, reads) = match p.next(0) {
                Next::Send { entry, reads, .. } if entry.kind == EntryKind::File => (entry, reads),
                Next::Send { entry, .. } => {
                    // The directory goes only after the file's last read.
                    assert_eq!(name(&entry.wire), "d");
                    id += 1;
                    p.handle_sent(id, entry.wire, entry.kind, 0);
                    break;
                }
                other => panic!("{other:?}"),
            };
            id += 1;
            p.handle_sent(id, entry.wire.clone(), entry.kind, entry.size);
            verdicts.push(p.handle_changed(id, entry, reads, false));
        }
        assert_eq!(verdicts, [Changed::Retry, Changed::Retry, Changed::Keep]);
        assert_eq!(verdicts.len() as u32, READS_OF_A_CHANGING_FILE);
        // The server drops the two bodies ended as not good: expected.
        assert_eq!(p.handle_failed(11, &wp("d/log")), None);
        assert_eq!(p.handle_failed(12, &wp("d/log")), None);
        assert!(p.wants_final_commit(false));
        p.handle_final_commit(20);
        assert_eq!(
            p.handle_committed(20),
            Committed {
                files: 1,
                links: 0,
                specials: 0,
                bytes: 10,
                changed: 1,
                finished: true
            }
        );
        // A later failure of the same id is a real one.
        assert!(p.handle_failed(11, &wp("d/log")).is_some());
    }

    #[test]
    fn a_file_that_keeps_shrinking_fails() {
        let (mut p, _) = answered(vec![file("f")], &[0b1], &[]);
        let mut last = None;
        for id in 1..=READS_OF_A_CHANGING_FILE {
            let Next::Send { entry, reads, .. } = p.next(0) else {
                panic!("nothing to send");
            };
            assert_eq!(reads, id - 1);
            p.handle_sent(id, entry.wire.clone(), entry.kind, entry.size);
            last = Some(p.handle_changed(id, entry, reads, true));
        }
        assert_eq!(last, Some(Changed::Fail));
        assert_eq!(p.next(0), Next::Wait);
        assert_eq!(p.handle_failed(3, &wp("f")).as_deref(), Some("/f"));
    }
}
