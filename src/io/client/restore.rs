//! The `restore` command: receives a tree from the server and writes it like
//! `cp -a`, into DEST/basename when DEST is a directory, else as DEST.
//!
//! The server is not trusted: every path it sends is a validated relative
//! [`WirePath`], mapped beneath the destination and written through a
//! [`Stager`] over a [`Beneath`], so `..`, absolute names and symlinks
//! (already in DEST or sent earlier) cannot lead a write outside the
//! destination. An entry at or beneath a symlink the server sent earlier in
//! the same restore is refused outright: no real tree holds both, so only a
//! broken or malicious server sends that (rsync's CVE-2024-12087 had this
//! shape). Files are received under temporary names, checked against the
//! server's crc32c, and renamed into place in synced batches, exactly as
//! the server stores backups.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::conn::{Conn, ConnError};
use super::report::{show, Reporter};
use super::walk::{absolute, wire_path};
use super::COMMIT_EVERY;
use crate::client::session::Event;
use crate::io::describe;
use crate::io::sandbox::Beneath;
use crate::io::stage::{sweep, Stager};
use crate::io::transfer::BodyReceiver;
use crate::proto::WirePath;

/// Where restored entries go: a directory to confine writes to, and the name
/// inside it that the restored path becomes (none: the directory itself).
struct Target {
    dir: std::path::PathBuf,
    prefix: WirePath,
}

fn target(source: &WirePath, dest: &Path) -> Result<Target, String> {
    let dest = absolute(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let shown = dest.display().to_string();
    match std::fs::metadata(&dest) {
        Ok(md) if md.is_dir() => {
            let prefix = match source.file_name() {
                Some(name) => WirePath::root()
                    .join(name)
                    .map_err(|e| format!("{shown}: {e}"))?,
                None => WirePath::root(),
            };
            Ok(Target { dir: dest, prefix })
        }
        Ok(_) | Err(_) => {
            let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
                return Err(format!("{shown}: not a usable destination"));
            };
            if !parent.is_dir() {
                return Err(format!(
                    "{}: {}",
                    parent.display(),
                    io::Error::from(io::ErrorKind::NotFound)
                ));
            }
            let prefix = WirePath::root()
                .join(name.as_bytes())
                .map_err(|e| format!("{shown}: {e}"))?;
            Ok(Target {
                dir: parent.to_path_buf(),
                prefix,
            })
        }
    }
}

/// Restores `source` (a path as it was backed up) into `dest`.
pub fn restore(
    conn: &mut Conn,
    source: &Path,
    dest: &Path,
    rep: &mut Reporter,
) -> Result<(), ConnError> {
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
    let tree = match Beneath::open_root(&t.dir, false) {
        Ok(b) => b,
        Err(e) => {
            rep.fail(&show(&t.dir), &e.to_string());
            return Ok(());
        }
    };
    // What a killed restore left behind: its temporary files beside and
    // under the target (partials stay, to be resumed).
    if let Some(parent) = t.prefix.parent() {
        sweep(&tree, &parent, false, &|| false);
    }
    sweep(&tree, &t.prefix, true, &|| false);
    let mut stager = Stager::new(tree);
    // Large files keep what arrived when a restore is interrupted, hidden
    // in DEST, and the next restore of them resumes there.
    stager.keep_partials = true;
    let id = conn.session.send_restore(wire.clone());
    let mut recv: Option<BodyReceiver> = None;
    let mut moved = 0u64;
    // The path and size of the file whose body is arriving.
    let mut current: Option<(WirePath, u64)> = None;
    // The symlinks sent so far in this restore, where they were put.
    let mut links: HashSet<WirePath> = HashSet::new();
    let show = |stager: &Stager, p: &WirePath| stager.tree().show(p);
    loop {
        if let Some(size) = conn.session.wants_body() {
            let incoming = stager.incoming();
            // A resumed body continues the kept bytes: at their end, with
            // their crc.
            let (offset, crc) = incoming.as_ref().map_or((0, 0), |i| (i.offset, i.crc));
            let r = recv.get_or_insert_with(|| BodyReceiver::at(size, offset, crc));
            let file = incoming.map(|i| &i.file);
            moved += conn.receive(r, file)?;
            if r.is_done() {
                conn.session.handle_body_done();
            }
        } else {
            conn.step(None)?;
        }
        while let Some(ev) = conn.session.poll_event() {
            match ev {
                Event::Dir { path, meta, .. } => {
                    let Some(p) = map(&t.prefix, &path, &links, rep, &stager) else {
                        continue;
                    };
                    if let Err(e) = stager.mkdir(&p, meta) {
                        rep.fail(&e.path, &describe(&e.error));
                    }
                }
                Event::Symlink {
                    path, target, meta, ..
                } => {
                    let Some(p) = map(&t.prefix, &path, &links, rep, &stager) else {
                        continue;
                    };
                    if p.is_root() {
                        rep.fail(
                            &show(&stager, &p),
                            "the server sent a link where the destination directory is",
                        );
                        continue;
                    }
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
                    let held = t
                        .prefix
                        .join_path(&path)
                        .ok()
                        .filter(|p| under_link(p, &links).is_none())
                        .and_then(|p| stager.partial_len(&p, size, &meta))
                        .unwrap_or(0);
                    conn.session.send_want(id, held);
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
                    let Some(p) = map(&t.prefix, &path, &links, rep, &stager) else {
                        continue;
                    };
                    if p.is_root() {
                        rep.fail(
                            &show(&stager, &p),
                            "the server sent a file where the destination directory is",
                        );
                        continue;
                    }
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
                    let problem = if let Some(e) = err {
                        Some(format!("write: {}", describe(&e)))
                    } else if !ok {
                        Some("the server did not send a good copy: it changed while it was sent, or it is damaged (see verify)".to_string())
                    } else if got != crc {
                        Some(format!(
                            "crc32c mismatch (sent {crc:08x}, received {got:08x})"
                        ))
                    } else {
                        None
                    };
                    match problem {
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
                    return Ok(());
                }
                Event::Refused { code, message } => return Err(conn.refused(code, &message)),
                Event::Welcome { .. }
                | Event::Committed { .. }
                | Event::ListEntry { .. }
                | Event::Need { .. }
                | Event::Verified { .. }
                | Event::Progress { .. } => {}
            }
            if stager.pending() >= COMMIT_EVERY as usize && current.is_none() {
                commit(&mut stager, rep);
            }
        }
        if conn.session.is_closed() {
            return Err(conn.broken());
        }
        rep.progress(moved, None);
    }
}

/// The local path (beneath the target directory) of a restored entry, or
/// `None` (reported) when the server's path is unusable: not a valid path
/// beneath the target, or at or beneath a symlink it sent earlier.
fn map(
    prefix: &WirePath,
    rel: &WirePath,
    links: &HashSet<WirePath>,
    rep: &mut Reporter,
    stager: &Stager,
) -> Option<WirePath> {
    let p = match prefix.join_path(rel) {
        Ok(p) => p,
        Err(e) => {
            rep.fail(
                &stager.tree().show(prefix),
                &format!(
                    "{}: {e}",
                    OsStr::from_bytes(rel.as_bytes()).to_string_lossy()
                ),
            );
            return None;
        }
    };
    if let Some(link) = under_link(&p, links) {
        let how = if link == p { "over" } else { "beneath" };
        rep.fail(
            &stager.tree().show(&p),
            &format!(
                "refused: the server sent this {how} the symlink {} it sent earlier in this restore",
                stager.tree().show(&link)
            ),
        );
        return None;
    }
    Some(p)
}

/// The symlink in `links` that `p` is, or is beneath.
fn under_link(p: &WirePath, links: &HashSet<WirePath>) -> Option<WirePath> {
    if links.is_empty() {
        return None;
    }
    let mut cur = Some(p.clone());
    while let Some(c) = cur.filter(|c| !c.is_root()) {
        if links.contains(&c) {
            return Some(c);
        }
        cur = c.parent();
    }
    None
}

fn commit(stager: &mut Stager, rep: &mut Reporter) {
    for f in stager.commit() {
        rep.fail(
            &f.error.path,
            &format!("{} failed: {}", f.error.op, f.error.error),
        );
    }
}
