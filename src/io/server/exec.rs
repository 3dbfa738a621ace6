//! Carrying out a backup session's commands against the client's
//! namespace: opening it, staging entries, judging received bodies,
//! answering manifests, and starting listings and restores. Commits,
//! verifies and resumed prefixes go to the workers ([`super::jobs`]);
//! streamed answers are produced in [`super::stream`]. What to do is the
//! session's decision; this file only does it and reports back.

use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

use log::{debug, error, info, warn};
use nix::sys::stat;

use super::rsb_conn::{RsbConn, ENTRY_COST};
use super::stream::list_item;
use super::Env;
use crate::io::sandbox::{Beneath, FsError};
use crate::io::stage::Stager;
use crate::io::{kind_of, meta_of};
use crate::proto::{EntryKind, Meta, WirePath};
use crate::server::session::{Command, ServerSession};

/// The message a client sees for a failed operation: the operation and the
/// cause, without the server's own paths.
pub(super) fn client_message(e: &FsError) -> String {
    format!("{}: {}", e.op, crate::io::describe(&e.error))
}

impl RsbConn {
    /// Carries out the session's commands; returns their cost against the
    /// turn's budget. Stops at a command that hands a job to the workers:
    /// the commands behind it wait for it.
    pub(super) fn run_commands(&mut self, env: &Env) -> u64 {
        let mut cost = 0;
        while !self.is_waiting() {
            let Some(cmd) = self.session.poll_command() else {
                break;
            };
            cost += ENTRY_COST;
            match cmd {
                Command::OpenNamespace { name } => self.open_namespace(&name, env),
                Command::Abort => {
                    if let Some(s) = self.store.as_mut() {
                        s.abort();
                    }
                }
                Command::SendFrom { id, offset } => self.send_from(id, offset, &env.workers),
                cmd @ Command::BeginFile { .. } => {
                    self.dispatch(cmd);
                    self.defer_prefix_crc(&env.workers);
                }
                Command::Commit { id } => self.commit(id, &env.workers),
                Command::Verify { id, path } => self.verify(id, path, &env.workers),
                cmd => self.dispatch(cmd),
            }
        }
        cost
    }

    fn open_namespace(&mut self, name: &str, env: &Env) {
        let read_only = env.config.session.read_only;
        // A read-only server creates nothing, not even a namespace.
        let ns = if read_only {
            env.root.existing_child(name.as_bytes())
        } else {
            env.root.child(name.as_bytes(), 0o700)
        };
        match ns {
            Ok(ns) => {
                info!("{}: client {name} connected", self.peer);
                // Temporary files a killed server left in this namespace
                // go, in the background, once per run.
                if !read_only {
                    if let Ok(tree) = ns.try_clone() {
                        env.workers.sweep_once(name, tree);
                    }
                }
                let mut store = Stager::new(ns);
                store.keep_partials = true;
                store.record_checksums = true;
                store.defer_prefix_crc = true;
                self.store = Some(store);
            }
            Err(e) if read_only && e.raw_os_error() == Some(nix::libc::ENOENT) => {
                info!(
                    "{}: client {name} connected (nothing stored yet)",
                    self.peer
                );
            }
            Err(e) => {
                error!("{}: namespace {name}: {e}", self.peer);
                self.session.handle_namespace_failed(format!(
                    "cannot open namespace: {}",
                    client_message(&e)
                ));
            }
        }
    }

    /// Carries out a command against the namespace, or answers it as for
    /// an empty one when there is none.
    pub(super) fn dispatch(&mut self, cmd: Command) {
        if self.store.is_none() {
            answer_empty(cmd, &mut self.session);
            return;
        }
        match cmd {
            Command::Mkdir { id, path, meta } => self.mkdir(id, path, meta),
            Command::Symlink {
                id,
                path,
                target,
                meta,
            } => self.symlink(id, path, &target, meta),
            Command::BeginFile {
                id,
                path,
                meta,
                size,
                offset,
            } => self.begin_file(id, path, meta, size, offset),
            Command::EndFile { id, path, crc, ok } => self.end_file(id, path, crc, ok),
            Command::List { id, path } => self.list(id, path),
            Command::Restore { id, path } => {
                info!("{}: restore {path} (from {})", self.who(), self.peer);
                self.start_restore(id, path);
            }
            Command::Check { id, entries } => self.check(id, &entries),
            Command::OpenNamespace { .. }
            | Command::Abort
            | Command::SendFrom { .. }
            | Command::Commit { .. }
            | Command::Verify { .. } => {}
        }
    }

    /// A command for request `id` failed: count it and tell the client.
    fn fail(&mut self, id: u32, path: WirePath, msg: String) {
        self.batch.failed += 1;
        self.session.handle_failed(id, path, msg);
    }

    /// Reports a failed staging step to the log and the client.
    fn staging_failed(&mut self, id: u32, path: WirePath, e: &FsError) {
        warn!("{}: {e}", self.who());
        self.fail(id, path, client_message(e));
    }

    fn mkdir(&mut self, id: u32, path: WirePath, meta: Meta) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        self.batch.entries += 1;
        if let Err(e) = store.mkdir(&path, meta) {
            self.staging_failed(id, path, &e);
        }
    }

    fn symlink(&mut self, id: u32, path: WirePath, target: &[u8], meta: Meta) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        self.batch.entries += 1;
        if let Err(e) = store.symlink(id, &path, target, meta) {
            self.staging_failed(id, path, &e);
        }
    }

    fn begin_file(&mut self, id: u32, path: WirePath, meta: Meta, size: u64, offset: u64) {
        self.batch.entries += 1;
        self.forget_body();
        let who = self.who();
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let res = if offset > 0 {
            info!("{who}: {path}: resuming at byte {offset} of {size}");
            store.resume_file(id, &path, meta, size, offset).map(|_| ())
        } else {
            store.begin_file(id, &path, meta, size).map(|_| ())
        };
        if let Err(e) = res {
            self.staging_failed(id, path, &e);
        }
    }

    fn end_file(&mut self, id: u32, path: WirePath, crc: u32, ok: bool) {
        let Some((size, offset, prefix_crc)) = self
            .store
            .as_mut()
            .and_then(|s| s.incoming())
            .map(|i| (i.size, i.offset, i.crc))
        else {
            // BeginFile failed and was reported already.
            return;
        };
        // An empty body never reaches the receiver: the crc32c is that of
        // what was kept.
        let body = self
            .take_body()
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
        let Some(store) = self.store.as_mut() else {
            return;
        };
        match problem {
            Some(msg) => {
                store.abort_file();
                warn!("{}: {path}: {msg}", self.who());
                self.fail(id, path, msg);
            }
            None => {
                if let Err(e) = store.finish_file(crc) {
                    self.staging_failed(id, path, &e);
                }
            }
        }
    }

    fn list(&mut self, id: u32, path: WirePath) {
        info!("{}: ls {path}", self.who());
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let tree = store.tree();
        match tree.lstat(&path) {
            Ok(st) if kind_of(&st) == Some(EntryKind::Dir) => match tree.read_dir(&path) {
                Ok(names) => self.start_listing(id, path, names),
                Err(e) => {
                    self.fail(id, path, client_message(&e));
                    self.session.send_done(id);
                }
            },
            Ok(st) => {
                match list_item(tree, &path, b"", &st) {
                    Ok(item) => self.session.send_list_entry(id, item),
                    Err(e) => self.fail(id, path, client_message(&e)),
                }
                self.session.send_done(id);
            }
            Err(e) => {
                self.fail(id, path, cause(&e));
                self.session.send_done(id);
            }
        }
    }

    fn check(&mut self, id: u32, entries: &[crate::proto::ManifestEntry]) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let bits = need(store.tree(), entries);
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
        let unchanged = entries.len() - bits.iter().map(|b| b.count_ones() as usize).sum::<usize>();
        debug!(
            "{}: manifest of {} entries, {unchanged} unchanged",
            self.who(),
            entries.len()
        );
        self.session.handle_need(id, bits, resume);
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

/// Which manifest entries differ from the store: anything missing, of
/// another type, or with another size, mode, mtime or link target. Files
/// are only `lstat`ed, never opened.
fn need(tree: &Beneath, entries: &[crate::proto::ManifestEntry]) -> Vec<u8> {
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
