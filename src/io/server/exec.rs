//! Carrying out a session's commands against the client's namespace:
//! opening it, staging entries, judging bodies, answering manifests,
//! starting listings and restores, and handing commits and verifies to the
//! workers.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

use log::{debug, error, info, warn};
use nix::sys::stat;

use super::conn::{Conn, Stats};
use super::jobs::{committed, defer_prefix_crc};
use super::rsb_conn::ENTRY_COST;
use super::stream::{list_item, start_send, ListStream, RestoreStream, Stream};
use crate::io::sandbox::{Beneath, FsError};
use crate::io::stage::Stager;
use crate::io::worker::{Job, Workers};
use crate::io::{kind_of, meta_of};
use crate::proto::{EntryKind, WirePath};
use crate::server::session::{Command, ServerSession};

/// The message a client sees for a failed operation: the operation and the
/// cause, without the server's own paths.
pub(super) fn client_message(e: &FsError) -> String {
    format!("{}: {}", e.op, crate::io::describe(&e.error))
}

/// Carries out the session's commands; returns their cost against the
/// turn's budget (a commit, which syncs the file system, uses it all).
pub(super) fn run_commands(
    c: &mut Conn,
    root: &Beneath,
    read_only: bool,
    workers: &Workers,
) -> u64 {
    let mut cost = 0;
    // After a job goes to the workers, the commands behind it wait for it.
    while !c.waiting {
        let Some(cmd) = c.session.poll_command() else {
            break;
        };
        cost += ENTRY_COST;
        match cmd {
            Command::OpenNamespace { name } => {
                // A read-only server creates nothing, not even a namespace.
                let ns = if read_only {
                    root.existing_child(name.as_bytes())
                } else {
                    root.child(name.as_bytes(), 0o700)
                };
                match ns {
                    Ok(ns) => {
                        info!("{}: client {name} connected", c.peer);
                        // Temporary files a killed server left in this
                        // namespace go, in the background, once per run.
                        if !read_only {
                            if let Ok(tree) = ns.try_clone() {
                                workers.sweep_once(&name, tree);
                            }
                        }
                        let mut store = Stager::new(ns);
                        store.keep_partials = true;
                        store.record_checksums = true;
                        store.defer_prefix_crc = true;
                        c.store = Some(store);
                    }
                    Err(e) if read_only && e.raw_os_error() == Some(nix::libc::ENOENT) => {
                        info!("{}: client {name} connected (nothing stored yet)", c.peer);
                    }
                    Err(e) => {
                        error!("{}: namespace {name}: {e}", c.peer);
                        c.session.handle_namespace_failed(format!(
                            "cannot open namespace: {}",
                            client_message(&e)
                        ));
                    }
                }
            }
            Command::Abort => {
                if let Some(s) = c.store.as_mut() {
                    s.abort();
                }
            }
            Command::SendFrom { id, offset } => {
                let Some(o) = c.offered.take() else { continue };
                if offset == 0 {
                    start_send(c, id, o, 0, Ok(0));
                    continue;
                }
                // The bytes the client holds are read once for the crc32c,
                // on a worker: they can be gigabytes.
                let job = o.fd.try_clone().map(|file| Job::Crc {
                    ticket: c.ticket,
                    file,
                    len: offset,
                });
                match job.map(|j| workers.submit(j)) {
                    Ok(Ok(())) => {
                        c.resuming = Some((id, o, offset));
                        c.waiting = true;
                    }
                    Ok(Err(_)) => start_send(
                        c,
                        id,
                        o,
                        offset,
                        Err(io::Error::other("the server is stopping")),
                    ),
                    Err(e) => start_send(c, id, o, offset, Err(e)),
                }
            }
            cmd @ Command::BeginFile { .. } => {
                dispatch(c, cmd);
                defer_prefix_crc(c, workers);
            }
            Command::Commit { id } => {
                // A 1 MiB pipe per idle connection would pin memory and use
                // up the per-user pipe quota with many clients: it lives for
                // one batch of bodies.
                c.pipe = None;
                let Some(store) = c.store.take() else {
                    answer_empty(cmd, &mut c.session);
                    continue;
                };
                debug!("{}: committing {} entries", c.label(), store.pending());
                let job = Job::Commit {
                    ticket: c.ticket,
                    id,
                    store: Box::new(store),
                };
                match workers.submit(job) {
                    Ok(()) => c.waiting = true,
                    Err(Job::Commit { mut store, .. }) => {
                        // No worker left (cannot happen while the loop
                        // runs): commit here rather than lose the batch.
                        let failures = store.commit();
                        c.store = Some(*store);
                        committed(c, id, failures);
                    }
                    Err(_) => {}
                }
            }
            Command::Verify { id, path } => {
                let Some(store) = c.store.as_ref() else {
                    answer_empty(Command::Verify { id, path }, &mut c.session);
                    continue;
                };
                info!("{}: verify {path}", c.label());
                let tree = match store.tree().try_clone() {
                    Ok(t) => t,
                    Err(e) => {
                        c.session.handle_failed(id, path, client_message(&e));
                        c.session.send_verified(id, Default::default());
                        continue;
                    }
                };
                let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                c.cancel = Some(cancel.clone());
                let job = Job::Verify {
                    ticket: c.ticket,
                    id,
                    tree,
                    path,
                    cancel,
                };
                if workers.submit(job).is_ok() {
                    c.waiting = true;
                } else {
                    c.session.send_verified(id, Default::default());
                }
            }
            cmd => dispatch(c, cmd),
        }
    }
    cost
}

pub(super) fn dispatch(c: &mut Conn, cmd: Command) {
    match c.store.as_mut() {
        Some(store) => execute(
            cmd,
            store,
            &mut c.session,
            &mut c.stream,
            &mut c.last_body,
            &mut c.batch,
            &c.peer,
        ),
        None => answer_empty(cmd, &mut c.session),
    }
}

/// Answers for a namespace that does not exist on a read-only server: it
/// holds nothing. (Writes never get here: the session refuses them.)
pub(super) fn answer_empty(cmd: Command, session: &mut ServerSession) {
    match cmd {
        // Listing the empty root is an empty listing.
        Command::List { id, path } if path.is_root() => session.send_done(id),
        Command::List { id, path } | Command::Restore { id, path } => {
            session.handle_failed(id, path, "not on the server".into());
            session.send_done(id);
        }
        Command::Commit { id } => session.handle_committed(id),
        Command::Verify { id, .. } => session.send_verified(id, Default::default()),
        Command::Check { id, entries } => {
            session.handle_need(id, vec![0xff; entries.len().div_ceil(8)], Vec::new())
        }
        _ => {}
    }
}

pub(super) fn execute(
    cmd: Command,
    store: &mut Stager,
    session: &mut ServerSession,
    stream: &mut Option<Stream>,
    last_body: &mut Option<(u32, Option<io::Error>)>,
    batch: &mut Stats,
    peer: &SocketAddr,
) {
    let who = session.name().unwrap_or("?").to_string();
    let fail =
        |session: &mut ServerSession, id: u32, path: WirePath, msg: String, batch: &mut Stats| {
            batch.failed += 1;
            session.handle_failed(id, path, msg);
        };
    match cmd {
        Command::Mkdir { id, path, meta } => {
            batch.entries += 1;
            if let Err(e) = store.mkdir(&path, meta) {
                warn!("{who}: {e}");
                fail(session, id, path, client_message(&e), batch);
            }
        }
        Command::Symlink {
            id,
            path,
            target,
            meta,
        } => {
            batch.entries += 1;
            if let Err(e) = store.symlink(id, &path, &target, meta) {
                warn!("{who}: {e}");
                fail(session, id, path, client_message(&e), batch);
            }
        }
        Command::BeginFile {
            id,
            path,
            meta,
            size,
            offset,
        } => {
            batch.entries += 1;
            *last_body = None;
            let res = if offset > 0 {
                info!("{who}: {path}: resuming at byte {offset} of {size}");
                store.resume_file(id, &path, meta, size, offset).map(|_| ())
            } else {
                store.begin_file(id, &path, meta, size).map(|_| ())
            };
            if let Err(e) = res {
                warn!("{who}: {e}");
                fail(session, id, path, client_message(&e), batch);
            }
        }
        Command::EndFile { id, path, crc, ok } => {
            let Some((size, offset, prefix_crc)) =
                store.incoming().map(|i| (i.size, i.offset, i.crc))
            else {
                // BeginFile failed and was reported already.
                return;
            };
            // An empty body never reaches the receiver: the crc32c is that
            // of what was kept.
            let body = last_body
                .take()
                .or((size == offset).then_some((prefix_crc, None)));
            let problem = match body {
                None => Some("internal error: no body".to_string()),
                Some((_, Some(err))) => Some(format!("write: {}", crate::io::describe(&err))),
                Some(_) if !ok => Some("the file changed while it was being sent".to_string()),
                Some((got, None)) if got != crc => Some(format!(
                    "crc32c mismatch (sent {crc:08x}, received {got:08x})"
                )),
                Some(_) => None,
            };
            match problem {
                Some(msg) => {
                    store.abort_file();
                    warn!("{who}: {path}: {msg}");
                    fail(session, id, path, msg, batch);
                }
                None => {
                    if let Err(e) = store.finish_file(crc) {
                        warn!("{who}: {e}");
                        fail(session, id, path, client_message(&e), batch);
                    }
                }
            }
        }
        Command::List { id, path } => {
            info!("{who}: ls {path}");
            match store.tree().lstat(&path) {
                Ok(st) if kind_of(&st) == Some(EntryKind::Dir) => {
                    match store.tree().read_dir(&path) {
                        Ok(names) => {
                            *stream = Some(Stream::List(ListStream {
                                id,
                                dir: path,
                                names: names.into(),
                            }))
                        }
                        Err(e) => {
                            fail(session, id, path, client_message(&e), batch);
                            session.send_done(id);
                        }
                    }
                }
                Ok(st) => {
                    match list_item(store.tree(), &path, b"", &st) {
                        Ok(item) => session.send_list_entry(id, item),
                        Err(e) => fail(session, id, path, client_message(&e), batch),
                    }
                    session.send_done(id);
                }
                Err(e) => {
                    fail(session, id, path, cause(&e), batch);
                    session.send_done(id);
                }
            }
        }
        Command::Restore { id, path } => {
            info!("{who}: restore {path} (from {peer})");
            *stream = Some(Stream::Restore(RestoreStream {
                id,
                base: path,
                started: false,
                stack: Vec::new(),
                stats: Stats::default(),
            }));
        }
        Command::Check { id, entries } => {
            let bits = need(store.tree(), &entries);
            let resume: Vec<(u32, u64)> = entries
                .iter()
                .enumerate()
                .filter(|(i, e)| {
                    e.kind == EntryKind::File
                        && bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
                })
                .filter_map(|(i, e)| {
                    Some((
                        u32::try_from(i).ok()?,
                        store.partial_len(&e.path, e.size, &e.meta)?,
                    ))
                })
                .collect();
            let unchanged =
                entries.len() - bits.iter().map(|b| b.count_ones() as usize).sum::<usize>();
            debug!(
                "{who}: manifest of {} entries, {unchanged} unchanged",
                entries.len()
            );
            session.handle_need(id, bits, resume);
        }
        Command::OpenNamespace { .. }
        | Command::Abort
        | Command::SendFrom { .. }
        | Command::Commit { .. }
        | Command::Verify { .. } => {}
    }
}

/// Which manifest entries differ from the store: anything missing, of
/// another type, or with another size, mode, mtime or link target. Files
/// are only `lstat`ed, never opened.
pub(super) fn need(tree: &Beneath, entries: &[crate::proto::ManifestEntry]) -> Vec<u8> {
    let mut bits = vec![0u8; entries.len().div_ceil(8)];
    // Entries come grouped by directory: open each parent once, not once
    // per entry. Nothing is written meanwhile, so the fd stays right.
    let mut parent: Option<(WirePath, Option<std::os::fd::OwnedFd>)> = None;
    for (i, e) in entries.iter().enumerate() {
        let (Some(dir_path), Some(name)) = (e.path.parent(), e.path.file_name()) else {
            // The namespace root itself: never a file or link, and a
            // directory that exists; its metadata is not kept.
            continue;
        };
        if parent.as_ref().map(|(p, _)| p) != Some(&dir_path) {
            let fd = tree.dir(&dir_path).ok();
            parent = Some((dir_path, fd));
        }
        let dir = parent
            .as_ref()
            .and_then(|(_, fd)| fd.as_ref())
            .map(|fd| fd.as_raw_fd());
        let name = std::ffi::OsStr::from_bytes(name);
        let same = dir.is_some_and(|dir| {
            match stat::fstatat(Some(dir), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => {
                    kind_of(&st) == Some(e.kind)
                        && meta_of(&st) == e.meta
                        && match e.kind {
                            EntryKind::File => u64::try_from(st.st_size).is_ok_and(|n| n == e.size),
                            EntryKind::Symlink => nix::fcntl::readlinkat(Some(dir), name)
                                .is_ok_and(|t| t.as_bytes() == e.target.as_slice()),
                            EntryKind::Dir => true,
                        }
                }
                Err(_) => false,
            }
        });
        if !same {
            if let Some(b) = bits.get_mut(i / 8) {
                *b |= 1 << (i % 8);
            }
        }
    }
    bits
}

/// A missing path reads better as just the cause.
pub(super) fn cause(e: &FsError) -> String {
    if e.raw_os_error() == Some(nix::libc::ENOENT) {
        "not on the server".to_string()
    } else {
        client_message(e)
    }
}
