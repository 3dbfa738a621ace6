//! The `backup` command's shell: walks the local paths, opens the files the
//! planner ([`crate::client::plan`]) says to send, and moves their bodies.
//! Which entries go, in what order, in which manifests, and when to commit
//! is decided there; this file only does the I/O and reports.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::fcntl::{self, OFlag};
use nix::sys::stat::{self, Mode};

use super::error::NetError;
use super::event_loop::Link;
use super::owners::Accounts;
use super::report::{show, Reporter};
use super::walk::{Root, WalkItem, WalkOptions, STORE_EXCLUDED};
use super::walker::{Step, Walker};
use crate::client::plan::{self, Changed, LocalEntry, Manifest, Next, Order, Placed, Plan, Walked};
use crate::client::session::Event;
use crate::io::delta_match::{match_file, match_parts};
use crate::io::transfer::{BodySender, SMALL_BODY};
use crate::io::{describe, kind_of, meta_of};
use crate::proto::{EntryKind, Layout, Meta};

/// The walks of all paths, one after the other, through an [`Order`].
struct Walks {
    walker: Walker,
    order: Order,
    /// Walked directories placed since the planner last heard.
    closed: Vec<(crate::proto::WirePath, Walked)>,
}

impl Walks {
    fn new(paths: &[Root], opts: WalkOptions) -> Walks {
        Walks {
            walker: Walker::new(paths, opts),
            order: Order::new(),
            closed: Vec::new(),
        }
    }

    /// The next entry in sending order; skips and errors are reported.
    fn next(&mut self, rep: &mut Reporter) -> Option<LocalEntry> {
        loop {
            if let Some(d) = self.order.pop_closed() {
                self.closed.extend(self.order.take_walked());
                return Some(d);
            }
            let item = match self.walker.next()? {
                Step::Item(item) => item,
                Step::EndWalk => {
                    // This path is done: close its directories.
                    self.order.end_walk();
                    continue;
                }
            };
            match item {
                WalkItem::Skipped { path, reason } => rep.skip(&show(&path), &reason),
                WalkItem::Excluded { path } => rep.note(&show(&path), STORE_EXCLUDED),
                WalkItem::Error { path, error } => rep.fail(&show(&path), &describe(&error)),
                WalkItem::Vanished { path } => rep.vanished(&show(&path)),
                WalkItem::Closed { wire, whole, keep } => {
                    self.order.handle_walked_dir(&wire, Walked { whole, keep })
                }
                WalkItem::Entry(e) => match self.order.place(e) {
                    Placed::Ready(e) => return Some(e),
                    Placed::Held => {}
                    Placed::Reserved(e) => {
                        rep.skip(&show(&e.local), crate::proto::path::RESERVED_MESSAGE)
                    }
                },
            }
        }
    }
}

/// The crc32c of no bytes.
const EMPTY_CRC: u32 = 0;

/// Why a file to send could not be opened.
enum OpenError {
    /// It is gone since the walk saw it (ENOENT): a warning, not a failure.
    Vanished,
    /// Anything else.
    Failed(String),
}

fn open_file(e: &LocalEntry) -> Result<(OwnedFd, Meta, u64, stat::FileStat), OpenError> {
    let fd = fcntl::open(
        &e.local,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ENOENT => OpenError::Vanished,
        e => OpenError::Failed(e.desc().to_string()),
    })?;
    // SAFETY: fd was just returned by open and belongs to nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // What is sent is what the open file says, not what the walk saw.
    let st = stat::fstat(fd.as_raw_fd()).map_err(|e| OpenError::Failed(e.desc().to_string()))?;
    if kind_of(&st) != Some(EntryKind::File) {
        return Err(OpenError::Failed(
            "changed into something other than a regular file".into(),
        ));
    }
    let meta = meta_of(&st);
    Ok((fd, meta, st.st_size.max(0) as u64, st))
}

/// The whole of the small dense file `fd` (`size` bytes, as its `fstat`
/// `st` said), read in one go: `None` when it has holes, gave fewer or
/// more bytes, or changed meanwhile (its size or mtime), for the
/// [`BodySender`] to send, which handles all of those.
fn read_small(fd: &OwnedFd, size: u64, st: &stat::FileStat) -> Option<Vec<u8>> {
    if crate::io::holes::may_have_holes(st.st_size, st.st_blocks) {
        return None;
    }
    let len = usize::try_from(size).ok()?;
    // One byte more: a file that grew since says so.
    let mut buf = vec![0u8; len + 1];
    let mut got = 0;
    // Usually one call: it gives the `size` bytes there are, or all of
    // `buf` when the file grew.
    loop {
        match nix::sys::uio::pread(fd, buf.get_mut(got..)?, i64::try_from(got).ok()?) {
            Ok(n) => {
                got += n;
                if n == 0 || got >= len {
                    break;
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
    let after = stat::fstat(fd.as_raw_fd()).ok()?;
    let same = (after.st_size, after.st_mtime, after.st_mtime_nsec)
        == (st.st_size, st.st_mtime, st.st_mtime_nsec);
    if got != len || !same {
        return None;
    }
    buf.truncate(len);
    Some(buf)
}

/// Queues the names of `meta`'s owner and group, if this connection has
/// not named them yet (see [`crate::proto::owners`]).
fn name_owners(link: &mut Link<'_>, meta: &Meta, accounts: &Accounts) {
    link.session()
        .name_owners(meta, |u| accounts.user_name(u), |g| accounts.group_name(g));
}

/// Backs up `paths` (absolute or relative to the current directory, each
/// as deep as its [`Root`] says), leaving out what `opts` says and never
/// descending into the store of a server on this machine. File-level
/// problems are reported and counted; `Err` means the connection was lost.
pub fn backup(
    link: &mut Link<'_>,
    paths: &[Root],
    mut opts: WalkOptions,
    rep: &mut Reporter,
) -> Result<(), NetError> {
    if link.read_only() {
        for p in paths {
            rep.fail(&show(&p.path), "server is read-only");
        }
        return Ok(());
    }
    opts.exclude = link.local_store();
    let mut walks = Walks::new(paths, opts);
    let mut plan = Plan::new();
    let accounts = Accounts::new();
    // The body on its way: its id, its sender, the entry and how many
    // times it was read before (for a file that changed while read).
    let mut current: Option<(u32, BodySender, LocalEntry, u32)> = None;
    let mut bytes_moved = 0u64;
    // When the connection last moved: a long match sends keepalives.
    let mut quiet = std::time::Instant::now();
    loop {
        // Ask about more entries.
        while plan.wants_manifest(link.session().poll_transmit().len(), current.is_some()) {
            let mut m = Manifest::new();
            while !m.is_full() {
                let Some(e) = walks.next(rep) else {
                    plan.handle_walked();
                    break;
                };
                m.push(e);
            }
            // Before the manifest holding their entries is answered.
            for (wire, walked) in walks.closed.drain(..) {
                plan.handle_closed(wire, walked);
            }
            if !m.is_empty() {
                let id = link.session().send_manifest(m.frame_entries());
                plan.handle_asked(id, m);
                // Out at once, not after the next ones are filled: the
                // server looks at this one while the walk goes on.
                link.flush()?;
            }
        }
        // Send what the server needs.
        while current.is_none() && link.session().poll_transmit().len() < plan::HIGH_WATER {
            let (e, resume_at, reads, basis) = match plan.next(link.session().commits_in_flight()) {
                Next::Wait => break,
                Next::Commit => {
                    link.session().send_commit();
                    continue;
                }
                Next::Closed { path, whole, keep } => {
                    let id = link.session().send_closed(path.clone(), whole, keep);
                    plan.handle_sent_closed(id, path);
                    continue;
                }
                Next::Update { entry: e } => {
                    // The server stores this content: its metadata only.
                    name_owners(link, &e.meta, &accounts);
                    let size = if e.kind == EntryKind::Symlink {
                        e.target.len() as u64
                    } else {
                        e.size
                    };
                    // A file's attributes, the set it has now: the server
                    // makes the stored set that one.
                    link.session().attach_xattrs(e.xattrs.clone());
                    let id = link.session().send_update(
                        e.wire.clone(),
                        plan::update_kind(e.kind),
                        e.meta,
                        size,
                    );
                    plan.handle_updated(id, e);
                    continue;
                }
                Next::Send {
                    entry,
                    resume_at,
                    reads,
                    basis,
                } => (entry, resume_at, reads, basis),
            };
            let (id, size) = match e.kind {
                EntryKind::Dir => {
                    name_owners(link, &e.meta, &accounts);
                    link.session().attach_xattrs(e.xattrs.clone());
                    (link.session().send_dir(e.wire.clone(), e.meta), 0)
                }
                EntryKind::Symlink => {
                    name_owners(link, &e.meta, &accounts);
                    let id = link
                        .session()
                        .send_symlink(e.wire.clone(), e.target.clone(), e.meta);
                    (id, 0)
                }
                EntryKind::Fifo | EntryKind::Socket | EntryKind::CharDev | EntryKind::BlockDev => {
                    name_owners(link, &e.meta, &accounts);
                    let id = link
                        .session()
                        .send_special(e.wire.clone(), e.kind, e.rdev, e.meta);
                    (id, 0)
                }
                // A file the walk saw empty has nothing to read: what the
                // walk's lstat said is what is sent (3 syscalls fewer per
                // file, which is most of the client's work for a directory
                // of empty files). Content written since is newer than
                // this backup: its mtime makes the next one send it.
                EntryKind::File if e.size == 0 => {
                    name_owners(link, &e.meta, &accounts);
                    link.session().attach_xattrs(e.xattrs.clone());
                    let id = link
                        .session()
                        .send_file(e.wire.clone(), e.meta, 0, Layout::Dense);
                    link.session().send_file_end(id, EMPTY_CRC, true);
                    (id, 0)
                }
                // Another name of a file this run listed first: no body.
                EntryKind::HardLink => match crate::proto::WirePath::new(e.target.clone()) {
                    Ok(target) => {
                        name_owners(link, &e.meta, &accounts);
                        let id = link
                            .session()
                            .send_link(e.wire.clone(), target, e.meta, e.size);
                        (id, 0)
                    }
                    Err(_) => continue,
                },
                EntryKind::File => match open_file(&e) {
                    Ok((_, meta, 0, _)) => {
                        // Nothing to read, nothing to check after: the
                        // header and its end go out with the frames
                        // around them, in the same writes.
                        name_owners(link, &meta, &accounts);
                        link.session().attach_xattrs(e.xattrs.clone());
                        let id = link
                            .session()
                            .send_file(e.wire.clone(), meta, 0, Layout::Dense);
                        link.session().send_file_end(id, EMPTY_CRC, true);
                        (id, 0)
                    }
                    Ok((fd, meta, size, st)) => {
                        let offset = plan::resume_offset(&e, meta, size, resume_at);
                        // A cut delta resumes as a delta from what the
                        // server kept of it.
                        let matched = match basis.as_deref() {
                            Some(sig) if size >= crate::delta::DELTA_MIN => {
                                rep.current(&show(&e.local));
                                let parts = match_parts(size - offset);
                                match_file(fd.as_fd(), (offset, size), sig, parts, || {
                                    link.keep_alive(&mut quiet)
                                })?
                                .filter(|m| !m.copies.copies.is_empty())
                                .map(|m| (m, sig.file_len))
                            }
                            _ => None,
                        };
                        if let Some((m, basis_len)) = matched {
                            let layout = crate::proto::delta_layout(size, offset, &m.copies.copies);
                            let tx = BodySender::for_delta(fd, size, layout, &st, m.crc);
                            name_owners(link, &meta, &accounts);
                            link.session().attach_xattrs(e.xattrs.clone());
                            let (literal, reused) = (m.copies.literal, m.copies.reused);
                            let id = link.session().send_file_delta(
                                e.wire.clone(),
                                meta,
                                size,
                                (basis_len, offset),
                                m.copies.copies,
                            );
                            log::debug!(
                                "{}: delta from byte {offset}: {literal} bytes to send, {reused} reused",
                                show(&e.local)
                            );
                            current = Some((id, tx, e.clone(), reads));
                            plan.handle_sent_delta(id, e, literal, reused);
                            continue;
                        }
                        // A small file goes with the frames around it, read
                        // whole into memory: one read instead of a sendfile
                        // and a read-back, and many files per write.
                        // Under --bwlimit every body is paced by the step.
                        if offset == 0 && size <= SMALL_BODY && !link.bwlimited() {
                            if let Some(body) = read_small(&fd, size, &st) {
                                name_owners(link, &meta, &accounts);
                                link.session().attach_xattrs(e.xattrs.clone());
                                let id = link.session().send_file(
                                    e.wire.clone(),
                                    meta,
                                    size,
                                    Layout::Dense,
                                );
                                link.session().send_body(&body);
                                link.session()
                                    .send_file_end(id, crc32c::crc32c(&body), true);
                                link.queued_body(size);
                                bytes_moved += size;
                                plan.handle_sent(id, e.wire, e.kind, size);
                                continue;
                            }
                        }
                        match BodySender::from_offset_stat(fd, size, offset, &st) {
                            Ok(tx) => {
                                let layout = tx.layout().clone();
                                let body = layout.body_len(size, offset);
                                name_owners(link, &meta, &accounts);
                                link.session().attach_xattrs(e.xattrs.clone());
                                let id = if offset > 0 {
                                    link.session().send_file_from(
                                        e.wire.clone(),
                                        meta,
                                        size,
                                        offset,
                                        layout,
                                    )
                                } else {
                                    link.session().send_file(e.wire.clone(), meta, size, layout)
                                };
                                current = Some((id, tx, e.clone(), reads));
                                rep.current(&show(&e.local));
                                (id, body)
                            }
                            Err(err) => {
                                rep.fail(&show(&e.local), &describe(&err));
                                continue;
                            }
                        }
                    }
                    Err(OpenError::Vanished) => {
                        rep.vanished(&show(&e.local));
                        continue;
                    }
                    Err(OpenError::Failed(cause)) => {
                        rep.fail(&show(&e.local), &cause);
                        continue;
                    }
                },
            };
            plan.handle_sent(id, e.wire, e.kind, size);
        }
        if plan.wants_final_commit(current.is_some()) {
            let id = link.session().send_commit();
            plan.handle_final_commit(id);
        }

        let moved = link.step(current.as_mut().map(|(_, tx, _, _)| tx))?;
        bytes_moved += moved;
        quiet = std::time::Instant::now();
        if current.as_ref().is_some_and(|(_, tx, _, _)| tx.is_done()) {
            if let Some((id, tx, entry, reads)) = current.take() {
                let (crc, mut ok) = tx.finish();
                if !ok {
                    let shown = show(&entry.local);
                    match plan.handle_changed(id, entry, reads, tx.shrank()) {
                        Changed::Retry => log::debug!(
                            "{shown}: changed while read; reading it again ({} of {})",
                            reads + 2,
                            plan::READS_OF_A_CHANGING_FILE
                        ),
                        Changed::Keep => {
                            rep.changed(&shown, plan::READS_OF_A_CHANGING_FILE);
                            ok = true;
                        }
                        Changed::Fail => {}
                    }
                }
                link.session().send_file_end(id, crc, ok);
            }
        }

        while let Some(ev) = link.session().poll_event() {
            match ev {
                Event::Need {
                    bits,
                    meta,
                    resume,
                    delta,
                    ..
                } => {
                    rep.counts.skipped += plan.handle_need(&bits, &meta, &resume, delta);
                }
                Event::Failed { id, path, message } => {
                    if let Some(shown) = plan.handle_failed(id, &path) {
                        rep.fail(&shown, &format!("server: {message}"));
                    }
                }
                Event::Committed { id } => {
                    let done = plan.handle_committed(id);
                    rep.counts.files += done.files;
                    rep.counts.links += done.links;
                    rep.counts.specials += done.specials;
                    rep.counts.updated += done.updated;
                    rep.counts.bytes += done.bytes;
                    rep.counts.reused += done.reused;
                    rep.counts.changed += done.changed;
                    if done.finished {
                        return Ok(());
                    }
                }
                Event::Refused { code, message } => return Err(link.refused(code, &message)),
                _ => {}
            }
        }
        if link.session().is_closed() {
            return Err(link.broken());
        }
        rep.progress(bytes_moved, Some(plan.needed_bytes()));
    }
}
