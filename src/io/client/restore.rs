//! The `restore` command's shell: receives a tree from the server and writes
//! it like `cp -a`, into DEST/basename when DEST is a directory, else as
//! DEST ([`crate::client::restore::target`]).
//!
//! The server is not trusted: every path it sends is a validated relative
//! [`WirePath`], mapped beneath the destination by the pure rules of
//! [`crate::client::restore`] (which also refuse an entry at or beneath a
//! symlink sent earlier in the same restore) and written through a
//! [`Stager`] over a [`Namespace`], so `..`, absolute names and symlinks
//! (already in DEST or sent earlier) cannot lead a write outside the
//! destination. Files are received under temporary names, checked against
//! the server's crc32c, and renamed into place in synced batches, exactly as
//! the server stores backups.

use std::path::Path;

use super::error::NetError;
use super::event_loop::Link;
use super::report::{show, Reporter};
use super::walk::{absolute, wire_path};
use crate::client::restore::{self, Links, Target};
use crate::client::session::Event;
use crate::io::describe;
use crate::io::store::{Namespace, StageOptions, Stager};
use crate::io::transfer::BodyReceiver;
use crate::proto::{EntryKind, WirePath};

/// The target of restoring `source` into `dest`, looking at the disk.
fn target(source: &WirePath, dest: &Path) -> Result<Target, String> {
    let dest = absolute(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    restore::target(source, &dest, |p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_dir())
    })
}

/// Restores `source` (a path as it was backed up) into `dest`.
pub fn restore(
    link: &mut Link<'_>,
    source: &Path,
    dest: &Path,
    rep: &mut Reporter,
) -> Result<(), NetError> {
    let shown_src = source.display().to_string();
    let wire = match wire_path(source) {
        Ok(w) => w,
        Err(e) => {
            rep.fail(&shown_src, &e);
            return Ok(());
        }
    };
    let t = match target(&wire, dest) {
        Ok(t) => t,
        Err(e) => {
            rep.fail(&show(dest), &e);
            return Ok(());
        }
    };
    let tree = match Namespace::open_dir(&t.dir) {
        Ok(b) => b,
        Err(e) => {
            rep.fail(&show(&t.dir), &e.to_string());
            return Ok(());
        }
    };
    // What a killed restore left behind: its temporary files beside and
    // under the target (partials stay, to be resumed).
    if let Some(parent) = t.prefix.parent() {
        tree.sweep(&parent, false, &|| false);
    }
    tree.sweep(&t.prefix, true, &|| false);
    // Large files keep what arrived when a restore is interrupted, hidden
    // in DEST, and the next restore of them resumes there.
    let opts = StageOptions {
        keep_partials: true,
        // Owners are not restored: no set-user-ID or set-group-ID bit for
        // whoever restores (GNU cp's rule).
        clear_setid: true,
        ..StageOptions::default()
    };
    let mut stager = Stager::new(tree, opts);
    let id = link.session().send_restore(wire.clone());
    let mut recv: Option<BodyReceiver> = None;
    let mut moved = 0u64;
    // The path and size of the file whose body is arriving.
    let mut current: Option<(WirePath, u64)> = None;
    // The symlinks sent so far in this restore, where they were put.
    let mut links = Links::new();
    let show = |stager: &Stager, p: &WirePath| stager.tree().show(p);
    loop {
        if let Some(size) = link.session().wants_body() {
            let incoming = stager.incoming();
            // A resumed body continues the kept bytes: at their end, with
            // their crc.
            let (offset, crc) = incoming.as_ref().map_or((0, 0), |i| (i.offset, i.crc));
            let r = recv.get_or_insert_with(|| BodyReceiver::at(size, offset, crc));
            let file = incoming.map(|i| &i.file);
            moved += link.receive(r, file)?;
            if r.is_done() {
                link.session().handle_body_done();
            }
        } else {
            link.step(None)?;
        }
        while let Some(ev) = link.session().poll_event() {
            match ev {
                Event::Dir { path, meta, .. } => {
                    let Some(p) = map(&t.prefix, &path, EntryKind::Dir, &links, rep, &stager)
                    else {
                        continue;
                    };
                    if let Err(e) = stager.mkdir(&p, meta) {
                        rep.fail(&e.path, &describe(&e.error));
                    }
                }
                Event::Symlink {
                    path, target, meta, ..
                } => {
                    let Some(p) = map(&t.prefix, &path, EntryKind::Symlink, &links, rep, &stager)
                    else {
                        continue;
                    };
                    match stager.symlink(id, &p, &target, meta) {
                        Ok(()) => {
                            rep.counts.files += 1;
                            links.insert(p);
                        }
                        Err(e) => rep.fail(&e.path, &describe(&e.error)),
                    }
                }
                Event::Offer {
                    id,
                    path,
                    meta,
                    size,
                } => {
                    // How much of this version of the file an interrupted
                    // restore left behind. A bad path is reported by the
                    // `File` that follows, not twice.
                    let held = restore::offer_path(&t.prefix, &path, &links)
                        .and_then(|p| stager.partial_len(&p, size, &meta))
                        .unwrap_or(0);
                    link.session().send_want(id, held);
                }
                Event::File {
                    path,
                    meta,
                    size,
                    offset,
                    ..
                } => {
                    recv = None;
                    current = None;
                    let Some(p) = map(&t.prefix, &path, EntryKind::File, &links, rep, &stager)
                    else {
                        continue;
                    };
                    let started = if offset > 0 {
                        stager.resume_file(id, &p, meta, size, offset).map(|_| ())
                    } else {
                        stager.begin_file(id, &p, meta, size).map(|_| ())
                    };
                    match started {
                        Ok(()) => current = Some((p, size - offset.min(size))),
                        Err(e) => rep.fail(&e.path, &describe(&e.error)),
                    }
                }
                Event::FileEnd { crc, ok, .. } => {
                    let body = recv.take();
                    let Some((p, size)) = current.take() else {
                        continue;
                    };
                    let (got, err) = match body {
                        Some(mut r) => (r.crc(), r.take_error()),
                        // No body moved: the crc is that of what was kept.
                        None => (stager.incoming().map_or(0, |i| i.crc), None),
                    };
                    match restore::body_problem(crc, ok, got, err.map(|e| describe(&e))) {
                        Some(msg) => {
                            stager.abort_file();
                            rep.fail(&show(&stager, &p), &msg);
                        }
                        None => match stager.finish_file(crc) {
                            Ok(()) => {
                                rep.counts.files += 1;
                                rep.counts.bytes += size;
                            }
                            Err(e) => rep.fail(&e.path, &describe(&e.error)),
                        },
                    }
                }
                Event::Failed { path, message, .. } => {
                    rep.fail(&path.to_string(), &format!("server: {message}"))
                }
                Event::Done { .. } => {
                    commit(&mut stager, rep);
                    warn_setid(stager.setid_cleared());
                    return Ok(());
                }
                Event::Refused { code, message } => return Err(link.refused(code, &message)),
                Event::Welcome { .. }
                | Event::Committed { .. }
                | Event::ListEntry { .. }
                | Event::Need { .. }
                | Event::Verified { .. }
                | Event::Progress { .. } => {}
            }
            if restore::wants_commit(stager.pending(), current.is_some()) {
                commit(&mut stager, rep);
            }
        }
        if link.session().is_closed() {
            return Err(link.broken());
        }
        rep.progress(moved, None);
    }
}

/// The local path (beneath the target directory) of a restored entry of
/// `kind`, or `None` (reported) when [`restore::map`] refuses it.
fn map(
    prefix: &WirePath,
    rel: &WirePath,
    kind: EntryKind,
    links: &Links,
    rep: &mut Reporter,
    stager: &Stager,
) -> Option<WirePath> {
    match restore::map(prefix, rel, kind, links) {
        Ok(p) => Some(p),
        Err(refusal) => {
            let (path, cause) = refusal.message(prefix, |p| stager.tree().show(p));
            rep.fail(&path, &cause);
            None
        }
    }
}

/// Says once how many entries lost a set-user-ID or set-group-ID bit.
fn warn_setid(n: u64) {
    if n > 0 {
        eprintln!("rsb-client: warning: set-user-ID and set-group-ID bits cleared on {n} restored entries (owners are not restored)");
    }
}

fn commit(stager: &mut Stager, rep: &mut Reporter) {
    for f in stager.commit().failures {
        rep.fail(
            &f.error.path,
            &format!("{} failed: {}", f.error.op, f.error.cause()),
        );
    }
}
