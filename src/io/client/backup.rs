//! The `backup` command: walks local paths and sends the server only what
//! it does not have.
//!
//! Three stages, all pipelined:
//! 1. [`Order`] turns the walks into the order the protocol wants: every
//!    directory after its contents.
//! 2. Entries go out in `Manifest` frames (a few hundred each, at most
//!    [`MANIFESTS_IN_FLIGHT`] unanswered); the server answers each with a
//!    bitmap of what it needs, comparing type, size, mode, mtime and link
//!    target, without opening anything.
//! 3. Needed entries are sent (files with their bodies); a directory also
//!    when anything inside it was sent, since that changed its mtime on the
//!    server. A `Commit` follows every [`COMMIT_EVERY`] entries and at the
//!    end, with at most two in flight. An entry counts as done when the
//!    commit after it is confirmed without a `Failed` for it.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::{self, OFlag};
use nix::sys::stat::{self, Mode};

use super::conn::{Conn, ConnError};
use super::report::{show, Reporter};
use super::walk::{walk, LocalEntry, Walk, WalkItem};
use super::{COMMIT_EVERY, COMMIT_PATH_BYTES};
use crate::client::session::Event;
use crate::io::transfer::BodySender;
use crate::io::{describe, kind_of, meta_of};
use crate::proto::{EntryKind, ManifestEntry, Meta, WirePath};

/// Output queued before the client stops queueing more.
const HIGH_WATER: usize = 256 * 1024;
/// Manifests sent and not yet answered, at most.
pub const MANIFESTS_IN_FLIGHT: usize = 4;
/// Entries in one manifest, at most.
const MANIFEST_ENTRIES: usize = 512;
/// Encoded bytes of one manifest, at most (below the frame limit).
const MANIFEST_BYTES: usize = 48 * 1024;

/// The walks of all paths, reordered so that a directory comes after
/// everything in it.
struct Order {
    walks: std::vec::IntoIter<Walk>,
    walker: Option<Walk>,
    /// Directories whose contents are still coming.
    open_dirs: Vec<LocalEntry>,
    /// Directories closed and ready to go out.
    closed: VecDeque<LocalEntry>,
}

impl Order {
    fn new(paths: &[PathBuf]) -> Order {
        let mut walks = paths
            .iter()
            .map(|p| walk(p))
            .collect::<Vec<_>>()
            .into_iter();
        let walker = walks.next();
        Order {
            walks,
            walker,
            open_dirs: Vec::new(),
            closed: VecDeque::new(),
        }
    }

    /// The next entry in sending order; skips and errors are reported.
    fn next(&mut self, rep: &mut Reporter) -> Option<LocalEntry> {
        loop {
            if let Some(d) = self.closed.pop_front() {
                return Some(d);
            }
            let walker = self.walker.as_mut()?;
            let Some(item) = walker.next() else {
                // This path is done: close its directories, go to the next.
                while let Some(d) = self.open_dirs.pop() {
                    self.closed.push_back(d);
                }
                self.walker = self.walks.next();
                continue;
            };
            let e = match item {
                WalkItem::Skipped { path, reason } => {
                    rep.skip(&show(&path), &reason);
                    continue;
                }
                WalkItem::Error { path, error } => {
                    rep.fail(&show(&path), &describe(&error));
                    continue;
                }
                WalkItem::Entry(e) => e,
            };
            // Checked on every component: the walk still enters such a
            // directory, and its contents must not be sent either.
            if e.wire.is_reserved() {
                rep.skip(
                    &show(&e.local),
                    "names starting with .rsb-tmp. are reserved",
                );
                continue;
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
                continue;
            }
            return Some(e);
        }
    }
}

struct Sent {
    path: WirePath,
    kind: EntryKind,
    size: u64,
}

/// Entries sent and not yet confirmed, and the size of the current batch
/// (the server bounds both its entries and the bytes of their paths).
#[derive(Default)]
struct Batch {
    sent: BTreeMap<u32, Sent>,
    entries: u32,
    path_bytes: usize,
}

impl Batch {
    fn record(&mut self, id: u32, path: WirePath, kind: EntryKind, size: u64) {
        self.entries += 1;
        self.path_bytes += path.as_bytes().len();
        self.sent.insert(id, Sent { path, kind, size });
    }

    fn is_full(&self) -> bool {
        self.entries >= COMMIT_EVERY || self.path_bytes >= COMMIT_PATH_BYTES
    }
}

fn manifest_entry(e: &LocalEntry) -> ManifestEntry {
    ManifestEntry {
        kind: e.kind,
        path: e.wire.clone(),
        meta: e.meta,
        size: e.size,
        target: e.target.clone(),
    }
}

fn open_file(e: &LocalEntry) -> Result<(OwnedFd, Meta, u64), String> {
    let fd = fcntl::open(
        &e.local,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| e.desc().to_string())?;
    // SAFETY: fd was just returned by open and belongs to nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // What is sent is what the open file says, not what the walk saw.
    let st = stat::fstat(fd.as_raw_fd()).map_err(|e| e.desc().to_string())?;
    if kind_of(&st) != Some(EntryKind::File) {
        return Err("changed into something other than a regular file".into());
    }
    let meta = meta_of(&st);
    Ok((fd, meta, st.st_size.max(0) as u64))
}

/// Backs up `paths` (absolute or relative to the current directory).
/// File-level problems are reported and counted; `Err` means the
/// connection was lost.
pub fn backup(conn: &mut Conn, paths: &[PathBuf], rep: &mut Reporter) -> Result<(), ConnError> {
    if conn.read_only {
        for p in paths {
            rep.fail(&show(p), "server is read-only");
        }
        return Ok(());
    }
    let mut order = Order::new(paths);
    let mut order_done = false;
    // Manifests sent, with their entries, oldest first.
    let mut asked: VecDeque<(u32, Vec<LocalEntry>)> = VecDeque::new();
    // Entries the server needs (directories: maybe), in sending order.
    // With the offset to resume a file at (0: from the start).
    let mut to_send: VecDeque<(LocalEntry, bool, u64)> = VecDeque::new();
    // Directories something was sent into.
    let mut dirty: HashSet<WirePath> = HashSet::new();
    let mut batch = Batch::default();
    let mut current: Option<(u32, BodySender)> = None;
    let mut final_commit: Option<u32> = None;
    let mut bytes_moved = 0u64;
    loop {
        // Ask about more entries.
        // Bounded: entries wait in `asked` or `to_send`, a few manifests' worth.
        // Not while a body is on its way: the session would only hold the
        // manifest back until the body's FileEnd (it never lets a frame in
        // between a header and its body), so asking now gains nothing.
        while !order_done
            && current.is_none()
            && asked.len() < MANIFESTS_IN_FLIGHT
            && to_send.len() < 2 * MANIFEST_ENTRIES
            && conn.session.poll_transmit().len() < HIGH_WATER
        {
            let mut entries = Vec::new();
            let mut bytes = 0;
            while entries.len() < MANIFEST_ENTRIES && bytes < MANIFEST_BYTES {
                let Some(e) = order.next(rep) else {
                    order_done = true;
                    break;
                };
                bytes += 40 + e.wire.as_bytes().len() + e.target.len();
                entries.push(e);
            }
            if !entries.is_empty() {
                let id = conn
                    .session
                    .send_manifest(entries.iter().map(manifest_entry).collect());
                asked.push_back((id, entries));
            }
        }
        // Send what the server needs.
        while current.is_none() && conn.session.poll_transmit().len() < HIGH_WATER {
            if batch.is_full() {
                if conn.session.commits_in_flight() >= 2 {
                    break;
                }
                conn.session.send_commit();
                batch.entries = 0;
                batch.path_bytes = 0;
            }
            let Some((e, needed, resume_at)) = to_send.pop_front() else {
                break;
            };
            let send = needed || (e.kind == EntryKind::Dir && dirty.remove(&e.wire));
            if !send {
                continue;
            }
            if let Some(parent) = e.wire.parent() {
                dirty.insert(parent);
            }
            let (id, size) = match e.kind {
                EntryKind::Dir => (conn.session.send_dir(e.wire.clone(), e.meta), 0),
                EntryKind::Symlink => (
                    conn.session
                        .send_symlink(e.wire.clone(), e.target.clone(), e.meta),
                    0,
                ),
                EntryKind::File => match open_file(&e) {
                    Ok((fd, meta, size)) => {
                        // Resume only into the version the server saw in the
                        // manifest; a file changed since goes from the start.
                        let offset = if meta == e.meta && size == e.size {
                            resume_at
                        } else {
                            0
                        };
                        match BodySender::from_offset(fd, size, offset) {
                            Ok(tx) => {
                                let id = if offset > 0 {
                                    conn.session
                                        .send_file_from(e.wire.clone(), meta, size, offset)
                                } else {
                                    conn.session.send_file(e.wire.clone(), meta, size)
                                };
                                current = Some((id, tx));
                                (id, size.saturating_sub(offset))
                            }
                            Err(err) => {
                                rep.fail(&show(&e.local), &describe(&err));
                                continue;
                            }
                        }
                    }
                    Err(cause) => {
                        rep.fail(&show(&e.local), &cause);
                        continue;
                    }
                },
            };
            batch.record(id, e.wire, e.kind, size);
        }
        if order_done
            && asked.is_empty()
            && to_send.is_empty()
            && current.is_none()
            && final_commit.is_none()
        {
            final_commit = Some(conn.session.send_commit());
        }

        let moved = conn.step(current.as_mut().map(|(_, tx)| tx))?;
        bytes_moved += moved;
        if let Some((id, tx)) = current.as_ref() {
            if tx.is_done() {
                let (crc, ok) = tx.finish();
                conn.session.send_file_end(*id, crc, ok);
                current = None;
            }
        }

        while let Some(ev) = conn.session.poll_event() {
            match ev {
                Event::Need { id, bits, resume } => {
                    // The session checked that answers come in order.
                    let Some((_, entries)) = asked.pop_front() else {
                        continue;
                    };
                    let _ = id;
                    for (i, e) in entries.into_iter().enumerate() {
                        let needed = bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
                        if !needed && e.kind != EntryKind::Dir {
                            // Unchanged: never opened, never sent.
                            rep.counts.skipped += 1;
                            continue;
                        }
                        let at = resume
                            .iter()
                            .find(|&&(r, _)| r as usize == i)
                            .map_or(0, |&(_, off)| off);
                        to_send.push_back((e, needed, at));
                    }
                }
                Event::Failed { id, path, message } => {
                    let shown = batch
                        .sent
                        .remove(&id)
                        .map_or_else(|| path.to_string(), |s| s.path.to_string());
                    rep.fail(&shown, &format!("server: {message}"));
                }
                Event::Committed { id } => {
                    let done: Vec<u32> = batch.sent.range(..id).map(|(k, _)| *k).collect();
                    for k in done {
                        if let Some(s) = batch.sent.remove(&k) {
                            if s.kind != EntryKind::Dir {
                                rep.counts.files += 1;
                                rep.counts.bytes += s.size;
                            }
                        }
                    }
                    if final_commit == Some(id) {
                        return Ok(());
                    }
                }
                Event::Refused { code, message } => return Err(conn.refused(code, &message)),
                _ => {}
            }
        }
        if conn.session.is_closed() {
            return Err(conn.broken());
        }
        rep.progress(bytes_moved, None);
    }
}

/// True when `p` lies strictly inside directory `dir`.
fn contains(dir: &WirePath, p: &WirePath) -> bool {
    dir.is_root() && !p.is_root()
        || p.as_bytes().len() > dir.as_bytes().len()
            && p.as_bytes().starts_with(dir.as_bytes())
            && p.as_bytes()[dir.as_bytes().len()] == b'/'
}
