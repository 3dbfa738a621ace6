//! Streaming answers for one backup connection: a listing, and a restore
//! walked depth first with its file bodies sent by sendfile (large ones
//! offered first, as the pure [`plan_file`] says, so an interrupted
//! restore can resume; a later name of a file with several names goes as
//! a `Link` to the first, as the pure [`LinkMemo`] says). Reads the store
//! only through the
//! namespace and [`StoredFile`]; writes nothing to it.

use std::collections::VecDeque;
use std::io;
use std::time::Instant;

use log::{debug, info, warn};

use super::exec::cause;
use super::Stats;
use super::{RsbConn, State, BUDGET, STEP_BYTES};
use crate::io::error::FsError;
use crate::io::store::{DirCursor, DirName, History, Namespace, Past, StoredFile};
use crate::io::transfer::BodySender;
use crate::proto::owners::Book;
use crate::proto::{EntryKind, Meta, Time, WirePath};
use crate::server::session::stream::{plan_file, FilePlan, LinkMemo};
use crate::server::session::{Completion, ServerSession};
use crate::store::past::{children_at, Loc};

/// Entries one `produce` call stats and queues at most.
const ENTRIES_PER_CALL: u64 = 256;
/// Output queued before the loop stops producing listing/restore frames.
pub(in crate::io::server) const STREAM_HIGH_WATER: usize = 64 * 1024;

/// A listing being sent: the directory read a chunk at a time, and the
/// names of the chunk still to stat.
pub(in crate::io::server) struct ListStream {
    pub(in crate::io::server) id: u32,
    pub(in crate::io::server) dir: WirePath,
    pub(in crate::io::server) cursor: DirCursor,
    pub(in crate::io::server) names: VecDeque<DirName>,
}

/// Directories of a restore's walk that keep their cursor open: the
/// deepest ones. Those above are closed and opened again where they
/// stopped, so a deep tree holds no more descriptors or names than this.
const OPEN_LEVELS: usize = 4;

/// One directory of a restore's walk: its path (relative to the restored
/// path), its own metadata (sent after its contents), the cookie after the
/// last name taken from it, and while it is among the deepest
/// [`OPEN_LEVELS`], its cursor and the rest of the chunk read.
pub(in crate::io::server) struct Level {
    pub(in crate::io::server) path: WirePath,
    pub(in crate::io::server) meta: Meta,
    /// The names its owner and group were stored with.
    pub(in crate::io::server) names: (Option<Vec<u8>>, Option<Vec<u8>>),
    /// The digest of its extended attributes (0: none), read again when
    /// it is sent, after its contents.
    pub(in crate::io::server) xattrs: u64,
    pub(in crate::io::server) at: i64,
    pub(in crate::io::server) open: Option<Box<(DirCursor, VecDeque<DirName>)>>,
    /// In a restore of the past: where this directory's version is
    /// stored, and its entries then still to send (with where each is).
    pub(in crate::io::server) then: Option<Box<(Loc, VecDeque<PastName>)>>,
}

/// One entry of a directory as it was, in a restore of the past: its name
/// and where its version then is stored.
pub(in crate::io::server) type PastName = (Vec<u8>, Loc);

/// A restore of the tree as it was at `at`: the history it reads.
pub(in crate::io::server) struct Then {
    pub(in crate::io::server) at: Time,
    pub(in crate::io::server) history: History,
    /// Where the restored path's version is stored.
    pub(in crate::io::server) top: Loc,
}

/// A restore being sent: a depth-first walk, one [`Level`] per directory
/// being sent.
pub(in crate::io::server) struct RestoreStream {
    pub(in crate::io::server) id: u32,
    pub(in crate::io::server) base: WirePath,
    pub(in crate::io::server) started: bool,
    pub(in crate::io::server) stack: Vec<Level>,
    pub(in crate::io::server) stats: Stats,
    /// The files with several names sent so far, for the later names.
    pub(in crate::io::server) links: LinkMemo,
    /// The namespace's owner names, read once when the restore starts.
    pub(in crate::io::server) names: Box<Book>,
    /// A restore of the past: the history it reads.
    pub(in crate::io::server) then: Option<Box<Then>>,
}

/// A restore under way: the walk, and what it is sending.
pub(in crate::io::server) struct Restore {
    pub(in crate::io::server) walk: RestoreStream,
    pub(in crate::io::server) out: Outgoing,
}

/// Where a restore stands between two entries.
pub(in crate::io::server) enum Outgoing {
    /// Walking the tree: the next entry is produced when output has room.
    Walking,
    /// A file body is going out; the walk resumes after its `FileEnd`.
    Sending(BodySender),
    /// A large file was offered; the client's `Want` says from where.
    Offered(Offered),
}

/// A restore paused while a worker reads the crc32c of the `offset` bytes
/// of an offered file the client already holds.
pub(in crate::io::server) struct Resuming {
    pub(in crate::io::server) restore: Box<Restore>,
    pub(in crate::io::server) offered: Offered,
    pub(in crate::io::server) id: u32,
    pub(in crate::io::server) offset: u64,
}

/// A large restored file offered to the client, waiting for its `Want`.
pub(in crate::io::server) struct Offered {
    pub(in crate::io::server) file: StoredFile,
    pub(in crate::io::server) rel: WirePath,
}

/// What a restored entry leaves for the loop to do.
pub(in crate::io::server) enum Pending {
    /// Send this body now.
    Send(BodySender),
    /// Wait for the client's `Want`, then send from its offset.
    Offer(Offered),
}

impl RsbConn {
    /// Starts the answer to a `List` of the directory `dir`, read through
    /// `cursor`.
    pub(in crate::io::server) fn start_listing(
        &mut self,
        id: u32,
        dir: WirePath,
        cursor: DirCursor,
    ) {
        self.state = State::Listing(Box::new(ListStream {
            id,
            dir,
            cursor,
            names: VecDeque::new(),
        }));
    }

    /// Starts the answer to a `Restore` of `base` (as it was at `then`'s
    /// time, if given).
    pub(in crate::io::server) fn start_restore(
        &mut self,
        id: u32,
        base: WirePath,
        then: Option<Box<Then>>,
    ) {
        let names = Box::new(
            self.store
                .as_ref()
                .map(|s| s.tree().owner_names())
                .unwrap_or_default(),
        );
        self.state = State::Restoring(Box::new(Restore {
            walk: RestoreStream {
                id,
                base,
                started: false,
                stack: Vec::new(),
                stats: Stats::default(),
                links: LinkMemo::new(),
                names,
                then,
            },
            out: Outgoing::Walking,
        }));
    }

    /// Queues more listing or restore frames, at most [`ENTRIES_PER_CALL`].
    /// Returns how many entries it handled (0: nothing to do).
    pub(in crate::io::server) fn produce(&mut self) -> u64 {
        let Some(store) = self.store.as_ref() else {
            return 0;
        };
        let tree = store.tree();
        let (count, finished) = match &mut self.state {
            State::Listing(l) => produce_list(l, tree, &mut self.session),
            State::Restoring(r) => produce_restore(r, tree, &mut self.session),
            _ => return 0,
        };
        if finished {
            self.state = State::Idle;
        }
        count
    }

    /// Sends body bytes of the restored file going out, within the turn's
    /// budget; at its end, its `FileEnd`. Returns whether anything moved.
    pub(in crate::io::server) fn pump_body(
        &mut self,
        now: Instant,
        spent: &mut u64,
    ) -> Result<bool, String> {
        let State::Restoring(r) = &mut self.state else {
            return Ok(false);
        };
        let Outgoing::Sending(tx) = &mut r.out else {
            return Ok(false);
        };
        let p = tx
            .pump(&self.sock, BUDGET.saturating_sub(*spent).min(STEP_BYTES))
            .map_err(|e| format!("send: {e}"))?;
        *spent += p.moved;
        self.moved.1 += p.moved;
        if p.moved > 0 {
            self.session.handle_activity(now);
        }
        self.writable &= !p.would_block;
        let mut progress = p.moved > 0;
        if tx.is_done() {
            file_sent(tx, &mut r.walk, &mut self.session);
            r.out = Outgoing::Walking;
            progress = true;
        }
        Ok(progress)
    }

    /// Starts sending the offered file `o` from `offset`, the bytes before
    /// it having crc32c `prefix` (or failed to be read).
    pub(in crate::io::server) fn start_send(
        &mut self,
        id: u32,
        o: Offered,
        offset: u64,
        prefix: io::Result<u32>,
    ) {
        let (meta, size, shown) = (o.file.meta(), o.file.size(), o.file.shown());
        match prefix.and_then(|crc| o.file.sender(offset, crc).map_err(|e| e.error)) {
            Ok(tx) => {
                if offset > 0 {
                    debug!(
                        "{}: resuming restore of {shown} at byte {offset}",
                        self.label(),
                    );
                }
                self.session.handle_completion(Completion::Resumed {
                    id,
                    path: o.rel,
                    meta,
                    size,
                    offset,
                    layout: tx.layout().clone(),
                });
                if let State::Restoring(r) = &mut self.state {
                    r.out = Outgoing::Sending(tx);
                }
            }
            Err(e) => {
                warn!("{}: {shown}: {}", self.label(), crate::io::describe(&e));
                self.session.handle_completion(Completion::Failed {
                    id,
                    path: o.rel,
                    message: format!("read: {}", crate::io::describe(&e)),
                });
            }
        }
    }
}

/// Queues listing entries, reading the directory on a chunk at a time
/// (only while output has room: a client that does not read makes the
/// server read no further); true when the listing is complete.
fn produce_list(l: &mut ListStream, tree: &Namespace, session: &mut ServerSession) -> (u64, bool) {
    let mut count: u64 = 0;
    while session.poll_transmit().len() < STREAM_HIGH_WATER && count < ENTRIES_PER_CALL {
        count += 1;
        let Some(entry) = l.names.pop_front() else {
            match l.cursor.next_chunk() {
                Ok(Some(chunk)) => {
                    l.names = chunk.into();
                    continue;
                }
                Ok(None) => {}
                Err(e) => session.handle_completion(Completion::Failed {
                    id: l.id,
                    path: l.dir.clone(),
                    message: FsError::errno("readdir", tree.show(&l.dir), e).short(),
                }),
            }
            session.handle_completion(Completion::Done { id: l.id });
            return (count, true);
        };
        let Ok(path) = l.dir.join(&entry.name) else {
            continue;
        };
        // Entries that vanish between readdir and stat are simply gone.
        if let Ok(st) = tree.lstat(&path) {
            if let Ok(item) = tree.list_item(&path, &entry.name, &st) {
                session.handle_completion(Completion::Listed { id: l.id, item });
            }
        }
    }
    (count, false)
}

/// The next name of the deepest directory of the walk, its cursor opened
/// again where it stopped if it was closed: `Ok(None)` at its end.
fn next_name(
    w: &mut RestoreStream,
    tree: &Namespace,
) -> Result<Option<(WirePath, Vec<u8>, Loc)>, FsError> {
    let base = w.base.clone();
    let Some(level) = w.stack.last_mut() else {
        return Ok(None);
    };
    if let Some(then) = level.then.as_mut() {
        return Ok(then
            .1
            .pop_front()
            .map(|(name, loc)| (level.path.clone(), name, loc)));
    }
    if level.open.is_none() {
        let full = base
            .join_path(&level.path)
            .map_err(|e| FsError::invalid("restore", tree.show(&base), e))?;
        level.open = Some(Box::new((
            tree.dir_cursor(&full, level.at)?,
            VecDeque::new(),
        )));
    }
    let Some(open) = level.open.as_mut() else {
        return Ok(None);
    };
    loop {
        if let Some(entry) = open.1.pop_front() {
            level.at = entry.next;
            return Ok(Some((level.path.clone(), entry.name, Loc::Current)));
        }
        match open.0.next_chunk() {
            Ok(Some(chunk)) => open.1 = chunk.into(),
            Ok(None) => return Ok(None),
            Err(e) => {
                let full = base.join_path(&level.path).unwrap_or_else(|_| base.clone());
                return Err(FsError::errno("readdir", tree.show(&full), e));
            }
        }
    }
}

/// Ends the restored file `tx` has sent whole: its `FileEnd`, with
/// whether the copy is good.
fn file_sent(tx: &BodySender, walk: &mut RestoreStream, session: &mut ServerSession) {
    let (crc, ok) = tx.finish();
    if let Some((recorded, read)) = tx.damage() {
        warn!(
            "{}: restore: a stored file no longer matches its checksum (crc32c {recorded:08x} recorded, {read:08x} read): not sent as good; verify names it",
            session.name().unwrap_or("?")
        );
    }
    walk.stats.bytes += tx.sent();
    walk.links.sent(ok);
    session.handle_completion(Completion::FileSent {
        id: walk.id,
        crc,
        ok,
    });
}

/// Walks the restore on, up to the next body or offer; true when the
/// restore is complete.
fn produce_restore(r: &mut Restore, tree: &Namespace, session: &mut ServerSession) -> (u64, bool) {
    let mut count: u64 = 0;
    while matches!(r.out, Outgoing::Walking)
        && session.poll_transmit().len() < STREAM_HIGH_WATER
        && count < ENTRIES_PER_CALL
    {
        count += 1;
        let w = &mut r.walk;
        let (rel, loc) = if !w.started {
            w.started = true;
            (
                WirePath::root(),
                w.then.as_ref().map_or(Loc::Current, |t| t.top),
            )
        } else {
            if w.stack.is_empty() {
                let who = session.name().unwrap_or("?").to_string();
                info!(
                    "{who}: restore {} sent: {} entries, {} bytes, {} failed",
                    w.base, w.stats.entries, w.stats.bytes, w.stats.failed
                );
                session.handle_completion(Completion::Done { id: w.id });
                return (count + 1, true);
            }
            match next_name(w, tree) {
                Ok(Some((dir, name, loc))) => match dir.join(&name) {
                    Ok(p) => (p, loc),
                    Err(_) => continue,
                },
                end => {
                    if let Err(e) = end {
                        // The rest of this directory cannot be read: said
                        // once, and the walk goes on above it.
                        w.stats.failed += 1;
                        let shown = w.stack.last().map_or_else(
                            || w.base.clone(),
                            |l| w.base.join_path(&l.path).unwrap_or_else(|_| w.base.clone()),
                        );
                        session.handle_completion(Completion::Failed {
                            id: w.id,
                            path: shown,
                            message: e.short(),
                        });
                    }
                    if let Some(level) = w.stack.pop() {
                        if level.xattrs != 0 {
                            let loc = level.then.as_ref().map_or(Loc::Current, |t| t.0);
                            send_dir_xattrs(tree, w, &level.path, loc, session);
                        }
                        let (user, group) = names_of(&w.names, &level.meta, level.names);
                        session.handle_completion(Completion::OwnerNames {
                            meta: level.meta,
                            user,
                            group,
                        });
                        session.handle_completion(Completion::RestoredDir {
                            id: w.id,
                            path: level.path,
                            meta: level.meta,
                        });
                    }
                    continue;
                }
            }
        };
        match restore_entry(tree, w, &rel, loc, session) {
            // No body (an empty file): it ends at once, and the walk goes
            // on, its frames going out with the next ones in one write.
            Ok(Some(Pending::Send(tx))) if tx.is_done() => file_sent(&tx, &mut r.walk, session),
            Ok(Some(Pending::Send(tx))) => r.out = Outgoing::Sending(tx),
            Ok(Some(Pending::Offer(o))) => r.out = Outgoing::Offered(o),
            Ok(None) => {}
            Err(e) => {
                w.stats.failed += 1;
                let shown = w.base.join_path(&rel).unwrap_or_else(|_| rel.clone());
                let msg = if rel.is_root() { cause(&e) } else { e.short() };
                session.handle_completion(Completion::Failed {
                    id: w.id,
                    path: shown,
                    message: msg,
                });
            }
        }
    }
    (count, false)
}

/// The names of `meta`'s owner and group for a restore: the namespace's
/// table's, else those `recorded` with the entry (a store written before
/// the table).
fn names_of(
    table: &Book,
    meta: &Meta,
    recorded: (Option<Vec<u8>>, Option<Vec<u8>>),
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    (
        table.user(meta.uid).map(<[u8]>::to_vec).or(recorded.0),
        table.group(meta.gid).map(<[u8]>::to_vec).or(recorded.1),
    )
}

/// Sends the extended attributes of the restored directory `rel` before
/// its header; if they cannot be read, that is reported and the directory
/// still goes out.
fn send_dir_xattrs(
    tree: &Namespace,
    r: &mut RestoreStream,
    rel: &WirePath,
    loc: Loc,
    session: &mut ServerSession,
) {
    let read = source(tree, r, rel, loc).and_then(|full| tree.stored_xattrs(&full));
    match read {
        Ok(Some(attrs)) => session.handle_completion(Completion::Xattrs {
            id: r.id,
            path: rel.clone(),
            attrs,
        }),
        Ok(None) => {}
        Err(e) => {
            r.stats.failed += 1;
            session.handle_completion(Completion::Failed {
                id: r.id,
                path: r.base.join_path(rel).unwrap_or_else(|_| rel.clone()),
                message: format!("extended attributes: {}", e.short()),
            });
        }
    }
}

/// Where the restored entry `rel` is read from: beneath the restored
/// path in the current tree, or in a restore of the past, the version of
/// it stored in `loc`.
fn source(
    tree: &Namespace,
    r: &RestoreStream,
    rel: &WirePath,
    loc: Loc,
) -> Result<WirePath, FsError> {
    let full = r
        .base
        .join_path(rel)
        .map_err(|e| FsError::invalid("restore", tree.show(&r.base), e))?;
    let Some(then) = r.then.as_ref() else {
        return Ok(full);
    };
    let past = Past {
        tree,
        history: &then.history,
    };
    past.phys(loc, &full)
        .ok_or_else(|| FsError::other("restore", tree.show(&full), "not in history"))
}

/// Sends the header of one restored entry (its version stored in `loc`);
/// a file also gets its sender.
fn restore_entry(
    tree: &Namespace,
    r: &mut RestoreStream,
    rel: &WirePath,
    loc: Loc,
    session: &mut ServerSession,
) -> Result<Option<Pending>, FsError> {
    let full = source(tree, r, rel, loc)?;
    let st = tree.lstat(&full)?;
    let other = || FsError::other("restore", tree.show(&full), "unknown file type");
    // A device kept as a metadata-only stand-in goes out as that device.
    let (kind, rdev) = tree.stored_kind(&full, &st);
    let kind = kind.ok_or_else(other)?;
    r.stats.entries += 1;
    match kind {
        EntryKind::Dir => {
            let (open, then) = match r.then.as_ref() {
                None => (
                    Some(Box::new((tree.dir_cursor(&full, 0)?, VecDeque::new()))),
                    None,
                ),
                Some(t) => {
                    let logical = r
                        .base
                        .join_path(rel)
                        .map_err(|e| FsError::invalid("restore", tree.show(&r.base), e))?;
                    let past = Past {
                        tree,
                        history: &t.history,
                    };
                    let entries = children_at(&past, t.at, &logical);
                    (None, Some(Box::new((loc, entries.into()))))
                }
            };
            let (meta, user, group, xattrs) = tree.stored_owner(&full, &st);
            r.stack.push(Level {
                path: rel.clone(),
                meta,
                names: (user, group),
                xattrs,
                at: 0,
                open,
                then,
            });
            // Only the deepest directories keep theirs open.
            if let Some(above) = r
                .stack
                .len()
                .checked_sub(OPEN_LEVELS + 1)
                .and_then(|i| r.stack.get_mut(i))
            {
                above.open = None;
            }
            Ok(None)
        }
        EntryKind::Symlink => {
            let target = tree.readlink(&full)?;
            let meta = tree.stored_meta(&full, &st);
            let (user, group) = names_of(&r.names, &meta, (None, None));
            session.handle_completion(Completion::OwnerNames { meta, user, group });
            session.handle_completion(Completion::RestoredSymlink {
                id: r.id,
                path: rel.clone(),
                target,
                meta,
            });
            Ok(None)
        }
        EntryKind::Fifo | EntryKind::Socket | EntryKind::CharDev | EntryKind::BlockDev => {
            let meta = tree.stored_meta(&full, &st);
            let (user, group) = names_of(&r.names, &meta, (None, None));
            session.handle_completion(Completion::OwnerNames { meta, user, group });
            session.handle_completion(Completion::RestoredSpecial {
                id: r.id,
                path: rel.clone(),
                kind,
                rdev,
                meta,
            });
            Ok(None)
        }
        // The store's own kinds never include a manifest-only link.
        EntryKind::HardLink => Err(other()),
        EntryKind::File => {
            // What is sent is what was opened, not what the name says now.
            let file = tree.open_stored(&full)?;
            if !file.is_file() {
                return Err(other());
            }
            let (meta, size) = (file.meta(), file.size());
            let (user, group) = names_of(&r.names, &meta, file.owner_names());
            session.handle_completion(Completion::OwnerNames { meta, user, group });
            if let Some(target) = r.links.file(rel, file.linked()) {
                // Another name of a file this restore sent whole: no body.
                session.handle_completion(Completion::RestoredLink {
                    id: r.id,
                    path: rel.clone(),
                    target,
                    meta,
                    size,
                });
                return Ok(None);
            }
            // A link carries none: its inode's came with the first name.
            if let Some(attrs) = file.xattrs()? {
                session.handle_completion(Completion::Xattrs {
                    id: r.id,
                    path: rel.clone(),
                    attrs,
                });
            }
            if plan_file(size) == FilePlan::Offer {
                // Large: the client may hold part of it from an earlier,
                // interrupted restore. Ask before sending.
                session.handle_completion(Completion::Offered {
                    id: r.id,
                    path: rel.clone(),
                    meta,
                    size,
                });
                return Ok(Some(Pending::Offer(Offered {
                    file,
                    rel: rel.clone(),
                })));
            }
            let tx = file.sender(0, 0)?;
            session.handle_completion(Completion::RestoredFile {
                id: r.id,
                path: rel.clone(),
                meta,
                size,
                layout: tx.layout().clone(),
            });
            Ok(Some(Pending::Send(tx)))
        }
    }
}
