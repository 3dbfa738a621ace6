//! The `backup` command: walks local paths and streams them to the server,
//! pipelined. Entries go out without waiting for any answer; a `Commit`
//! follows every [`COMMIT_EVERY`] entries and at the end, and at most two
//! commits are in flight, which bounds what both sides hold. An entry is
//! counted as done when the commit after it is confirmed without a
//! `Failed` for it.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::{self, OFlag};
use nix::sys::stat::{self, Mode, SFlag};

use super::conn::{Conn, ConnError};
use super::report::{show, Reporter};
use super::{COMMIT_EVERY, COMMIT_PATH_BYTES};
use crate::client::session::Event;
use crate::io::describe;
use crate::io::transfer::BodySender;
use crate::io::walk::{walk, LocalEntry, WalkItem};
use crate::proto::{EntryKind, Meta, Time, WirePath};

/// Output queued before the walk pauses.
const HIGH_WATER: usize = 256 * 1024;

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
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
        return Err("changed into something other than a regular file".into());
    }
    let meta = Meta {
        mode: st.st_mode & 0o7777,
        mtime: Time {
            secs: st.st_mtime,
            nanos: st.st_mtime_nsec.clamp(0, 999_999_999) as u32,
        },
    };
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
    let mut walks = paths
        .iter()
        .map(|p| walk(p))
        .collect::<Vec<_>>()
        .into_iter();
    let mut walker = walks.next();
    let mut walk_done = walker.is_none();
    // Directories whose contents are still being sent (see the protocol:
    // a directory goes out after everything in it).
    let mut open_dirs: Vec<LocalEntry> = Vec::new();
    let mut batch = Batch::default();
    let mut current: Option<(u32, BodySender)> = None;
    let mut final_commit: Option<u32> = None;
    let mut bytes_moved = 0u64;
    loop {
        // Queue more entries while the pipe is not too full.
        while !walk_done && current.is_none() && conn.session.poll_transmit().len() < HIGH_WATER {
            if batch.is_full() {
                if conn.session.commits_in_flight() >= 2 {
                    break;
                }
                conn.session.send_commit();
                batch.entries = 0;
                batch.path_bytes = 0;
            }
            let Some(item) = walker.as_mut().and_then(|w| w.next()) else {
                // This path is done: close its directories, go to the next.
                while let Some(d) = open_dirs.pop() {
                    close_dir(conn, &mut batch, d);
                }
                walker = walks.next();
                walk_done = walker.is_none();
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
            while open_dirs
                .last()
                .is_some_and(|d| !contains(&d.wire, &e.wire))
            {
                if let Some(d) = open_dirs.pop() {
                    close_dir(conn, &mut batch, d);
                }
            }
            let (id, size) = match e.kind {
                EntryKind::Dir => {
                    open_dirs.push(e);
                    continue;
                }
                EntryKind::Symlink => (
                    conn.session
                        .send_symlink(e.wire.clone(), e.target.clone(), e.meta),
                    0,
                ),
                EntryKind::File => match open_file(&e) {
                    Ok((fd, meta, size)) => match BodySender::new(fd, size) {
                        Ok(tx) => {
                            let id = conn.session.send_file(e.wire.clone(), meta, size);
                            current = Some((id, tx));
                            (id, size)
                        }
                        Err(err) => {
                            rep.fail(&show(&e.local), &describe(&err));
                            continue;
                        }
                    },
                    Err(cause) => {
                        rep.fail(&show(&e.local), &cause);
                        continue;
                    }
                },
            };
            batch.record(id, e.wire, e.kind, size);
        }
        if walk_done && current.is_none() && final_commit.is_none() {
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

/// Sends the entry of a directory whose contents are all sent, committing
/// first when the batch is full (a deep tree closes many at once).
fn close_dir(conn: &mut Conn, batch: &mut Batch, d: LocalEntry) {
    if batch.is_full() {
        conn.session.send_commit();
        batch.entries = 0;
        batch.path_bytes = 0;
    }
    let id = conn.session.send_dir(d.wire.clone(), d.meta);
    batch.record(id, d.wire, EntryKind::Dir, 0);
}

/// True when `p` lies strictly inside directory `dir`.
fn contains(dir: &WirePath, p: &WirePath) -> bool {
    dir.is_root() && !p.is_root()
        || p.as_bytes().len() > dir.as_bytes().len()
            && p.as_bytes().starts_with(dir.as_bytes())
            && p.as_bytes()[dir.as_bytes().len()] == b'/'
}
