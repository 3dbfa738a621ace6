//! Carrying out a backup session's commands against the client's
//! namespace through the store ([`crate::io::store`]: a [`Stager`] on the
//! namespace): opening it, staging entries, keeping or discarding received
//! bodies as the pure [`body_verdict`] says, answering manifests, and
//! starting listings and restores. Commits, verifies and resumed prefixes
//! go to the workers ([`super::jobs`]); streamed answers are produced in
//! [`super::stream`]. What to do is the session's decision; this file only
//! does it and reports back.

use log::{debug, error, info, warn};

use super::{RsbConn, ENTRY_COST};
use crate::io::error::FsError;
use crate::io::kind_of;
use crate::io::server::Env;
use crate::io::store::{StageOptions, Stager};
use crate::io::worker::Workers;
use crate::proto::bits::NeedBits;
use crate::proto::{EntryKind, Layout, Meta, WirePath};
use crate::server::command::Received;
use crate::server::session::receive::{body_verdict, Staged, Verdict};
use crate::server::session::{Command, Completion, ServerSession};

impl RsbConn {
    /// Carries out the session's commands; returns their cost against the
    /// turn's budget. Stops at a command that hands a job to the workers:
    /// the commands behind it wait for it.
    pub(in crate::io::server) fn run_commands(&mut self, env: &Env) -> u64 {
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
                Command::LearnNames { users, groups } => {
                    if let Some(s) = self.store.as_mut() {
                        s.learn_names(users, groups);
                    }
                }
                Command::Xattrs { path, attrs } => {
                    if let Some(s) = self.store.as_mut() {
                        s.set_xattrs(path, attrs);
                    }
                }
                Command::SendFrom { id, offset } => self.send_from(id, offset, &env.workers),
                Command::SendDelta { id, sig, offset } => {
                    self.send_delta(id, &sig, offset, &env.workers)
                }
                Command::SkipOffer { .. } => self.skip_offer(),
                cmd @ Command::BeginFile { .. } => {
                    self.dispatch(cmd, &env.workers);
                    self.defer_prefix_crc(&env.workers);
                }
                Command::Commit { id } => {
                    // The batch ends here: a full disk is tried again by the
                    // next one, and the repeats of this one are counted.
                    self.full = None;
                    self.flush_repeats();
                    self.commit(id, &env.workers)
                }
                Command::Verify { id, path } => self.verify(id, path, &env.workers),
                Command::FollowPlan { name } => {
                    debug!("{}: agent of {name}: plan sent", self.peer);
                    let text = env.plans.borrow().text_of(&name);
                    self.session.handle_completion(Completion::Plan { text });
                }
                cmd => self.dispatch(cmd, &env.workers),
            }
        }
        cost
    }

    fn open_namespace(&mut self, name: &str, env: &Env) {
        let read_only = env.config.session.read_only;
        // A read-only server creates nothing, not even a namespace.
        let ns = if read_only {
            env.root.existing_namespace(name)
        } else {
            env.root.namespace(name)
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
                let opts = StageOptions {
                    keep_partials: true,
                    record_checksums: true,
                    defer_prefix_crc: true,
                    fake_super: true,
                    keep_owners: true,
                    keep_history: true,
                    ..StageOptions::default()
                };
                let mut store = Stager::new(ns, opts);
                if let Some(w) = env.workers.writer() {
                    store.set_writer(w);
                }
                self.store = Some(Box::new(store));
            }
            Err(e) if read_only && e.raw_os_error() == Some(nix::libc::ENOENT) => {
                info!(
                    "{}: client {name} connected (nothing stored yet)",
                    self.peer
                );
            }
            Err(e) => {
                error!("{}: namespace {name}: {e}", self.peer);
                self.session.handle_completion(Completion::NamespaceFailed {
                    message: format!("cannot open namespace: {}", e.short()),
                });
            }
        }
    }

    /// Carries out a command against the namespace, or answers it as for
    /// an empty one when there is none.
    pub(in crate::io::server) fn dispatch(&mut self, cmd: Command, workers: &Workers) {
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
            } => self.stage_entry(id, path, |s, p| s.symlink(id, p, &target, meta)),
            Command::Special {
                id,
                path,
                kind,
                rdev,
                meta,
            } => self.stage_entry(id, path, |s, p| s.special(id, p, kind, rdev, meta)),
            Command::Link {
                id,
                path,
                target,
                meta,
                size,
            } => self.stage_entry(id, path, |s, p| s.link(id, p, &target, meta, size)),
            Command::Update {
                id,
                path,
                kind,
                meta,
                size,
            } => self.stage_entry(id, path, |s, p| s.update(id, p, kind, meta, size)),
            Command::BeginFile {
                id,
                path,
                meta,
                size,
                offset,
                layout,
                delta: None,
            } => self.begin_file(id, path, meta, size, offset, layout),
            Command::BeginFile {
                id,
                path,
                meta,
                size,
                offset,
                delta: Some(delta),
                ..
            } => self.begin_delta(id, path, meta, (offset, size), *delta, workers),
            Command::EndFile {
                id,
                path,
                crc,
                ok,
                received,
            } => self.end_file(id, path, crc, ok, received),
            Command::List { id, path, at: None } => self.list(id, path),
            Command::List {
                id,
                path,
                at: Some(at),
            } => self.list_at(id, path, at),
            Command::Restore { id, path, at: None } => {
                info!("{}: restore {path} (from {})", self.who(), self.peer);
                self.start_restore(id, path, None);
            }
            Command::Restore {
                id,
                path,
                at: Some(at),
            } => self.restore_at(id, path, at),
            Command::Versions { id, path } => self.versions(id, path),
            Command::Check { id, entries } => self.check(id, &entries, workers),
            Command::Delete { id, path, keep } => {
                if let Some(store) = self.store.as_mut() {
                    store.delete_absent(id, path, keep);
                }
            }
            Command::OpenNamespace { .. }
            | Command::Abort
            | Command::LearnNames { .. }
            | Command::Xattrs { .. }
            | Command::SendFrom { .. }
            | Command::SendDelta { .. }
            | Command::SkipOffer { .. }
            | Command::Commit { .. }
            | Command::FollowPlan { .. }
            | Command::Verify { .. } => {}
        }
    }

    /// A command for request `id` failed: count it and tell the client.
    pub(super) fn fail(&mut self, id: u32, path: WirePath, msg: String) {
        self.batch.failed += 1;
        self.session.handle_completion(Completion::Failed {
            id,
            path,
            message: msg,
        });
    }

    /// Reports a failed staging step to the log (collapsed with the same
    /// failure before it) and the client. A full disk ends the batch: its
    /// later entries fail at once with this cause ([`Self::batch_is_full`]).
    pub(super) fn staging_failed(&mut self, id: u32, path: WirePath, e: &FsError) {
        let line = format!("{}: {e}", self.who());
        self.log_repeat(log::Level::Warn, e.short(), &line);
        if is_full(e.raw_os_error()) && self.full.is_none() {
            self.full = Some(Box::new(e.clone()));
        }
        self.fail(id, path, e.short());
    }

    /// True when the batch already ran out of space: the entry `path` fails
    /// with the same cause without touching the disk.
    pub(super) fn batch_is_full(&mut self, id: u32, path: &WirePath) -> bool {
        let Some(e) = self.full.as_ref().map(|e| e.short()) else {
            return false;
        };
        self.batch.entries += 1;
        let line = format!(
            "{}: {path}: {e} (not tried: the batch ran out of space)",
            self.who()
        );
        self.log_repeat(log::Level::Warn, e.clone(), &line);
        self.fail(id, path.clone(), e);
        true
    }

    /// Logs `line` as a warning unless it repeats the failure `key` of the
    /// last one, which is then only counted: "N more like it" follows when
    /// another failure comes, the batch ends or the connection closes.
    pub(in crate::io::server) fn log_repeat(&mut self, level: log::Level, key: String, line: &str) {
        if let Some(r) = self.repeats.as_mut().filter(|r| r.0 == key) {
            r.1 += 1;
            return;
        }
        self.flush_repeats();
        log::log!(level, "{line}");
        self.repeats = Some(Box::new((key, 0)));
    }

    /// Logs how many failures repeated the last one logged.
    pub(in crate::io::server) fn flush_repeats(&mut self) {
        if let Some(r) = self.repeats.take() {
            if r.1 > 0 {
                warn!("{}: {} more like it ({})", self.who(), r.1, r.0);
            }
        }
    }

    fn mkdir(&mut self, id: u32, path: WirePath, meta: Meta) {
        // A directory that is stored already takes no space: its mode and
        // mtime are still applied (a failed file inside it changed them).
        let stored = || {
            self.store.as_ref().is_some_and(|s| {
                s.tree()
                    .lstat(&path)
                    .is_ok_and(|st| kind_of(&st) == Some(EntryKind::Dir))
            })
        };
        if self.full.is_some() && !stored() && self.batch_is_full(id, &path) {
            return;
        }
        let Some(store) = self.store.as_mut() else {
            return;
        };
        self.batch.entries += 1;
        if let Err(e) = store.mkdir(&path, meta) {
            self.staging_failed(id, path, &e);
        }
    }

    /// Stages an entry without a body (a link, a special, a hard link)
    /// with `stage`, unless the batch is full or there is no store; a
    /// failure is reported for `path`.
    fn stage_entry(
        &mut self,
        id: u32,
        path: WirePath,
        stage: impl FnOnce(&mut Stager, &WirePath) -> Result<(), FsError>,
    ) {
        if self.store.is_none() || self.batch_is_full(id, &path) {
            return;
        }
        let Some(store) = self.store.as_mut() else {
            return;
        };
        self.batch.entries += 1;
        if let Err(e) = stage(store, &path) {
            self.staging_failed(id, path, &e);
        }
    }

    pub(super) fn begin_file(
        &mut self,
        id: u32,
        path: WirePath,
        meta: Meta,
        size: u64,
        offset: u64,
        layout: Layout,
    ) {
        // Its body is still read, and dropped, as for any failed file.
        if self.store.is_none() || self.batch_is_full(id, &path) {
            return;
        }
        self.batch.entries += 1;
        let who = self.who();
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let res = if offset > 0 {
            info!("{who}: {path}: resuming at byte {offset} of {size}");
            store
                .resume_file(id, &path, meta, size, offset)
                .map(|inc| inc.layout = layout)
        } else {
            store.begin_body(id, &path, meta, size, layout).map(|_| ())
        };
        if let Err(e) = res {
            self.staging_failed(id, path, &e);
        }
    }

    fn end_file(
        &mut self,
        id: u32,
        path: WirePath,
        crc: u32,
        ok: bool,
        received: Option<Received>,
    ) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let Some(staged) = store.incoming().map(|i| Staged {
            size: i.size,
            offset: i.offset,
            kept_crc: i.crc,
        }) else {
            // BeginFile failed and was reported already.
            return;
        };
        let full = received
            .as_ref()
            .and_then(|r| r.write_error.as_deref())
            .and_then(full_errno);
        let verdict = body_verdict(crc, ok, received, staged);
        self.delta_verdict(verdict == Verdict::Keep);
        let Some(store) = self.store.as_mut() else {
            return;
        };
        match verdict {
            Verdict::Discard(msg) => {
                store.abort_file();
                if let Some(code) = full.filter(|_| self.full.is_none()) {
                    let shown = store.tree().show(&path);
                    self.full = Some(Box::new(FsError::io(
                        "write",
                        shown,
                        std::io::Error::from_raw_os_error(code),
                    )));
                }
                let line = format!("{}: {path}: {msg}", self.who());
                self.log_repeat(log::Level::Warn, msg.clone(), &line);
                self.fail(id, path, msg);
            }
            Verdict::Keep => {
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
            Ok(st) if kind_of(&st) == Some(EntryKind::Dir) => match tree.dir_cursor(&path, 0) {
                Ok(cursor) => self.start_listing(id, path, cursor),
                Err(e) => {
                    self.fail(id, path, e.short());
                    self.session.handle_completion(Completion::Done { id });
                }
            },
            Ok(st) => {
                match tree.list_item(&path, b"", &st) {
                    Ok(item) => self
                        .session
                        .handle_completion(Completion::Listed { id, item }),
                    Err(e) => self.fail(id, path, e.short()),
                }
                self.session.handle_completion(Completion::Done { id });
            }
            Err(e) => {
                self.fail(id, path, cause(&e));
                self.session.handle_completion(Completion::Done { id });
            }
        }
    }

    fn check(&mut self, id: u32, entries: &[crate::proto::ManifestEntry], workers: &Workers) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let mut checked = store.check(entries);
        let metadata = checked.meta.count();
        let unchanged = entries
            .len()
            .saturating_sub(checked.need.count())
            .saturating_sub(metadata);
        debug!(
            "{}: manifest of {} entries, {unchanged} unchanged, {metadata} metadata only",
            self.who(),
            entries.len()
        );
        let files = std::mem::take(&mut checked.delta);
        let (bits, meta) = (checked.need.into_bytes(), checked.meta.into_bytes());
        self.sign(id, bits, meta, checked.resume, files, workers);
    }
}

/// Answers for a namespace that does not exist on a read-only server: it
/// holds nothing. (Writes never get here: the session refuses them.)
pub(in crate::io::server) fn answer_empty(cmd: Command, session: &mut ServerSession) {
    match cmd {
        // Listing the empty root is an empty listing.
        Command::List { id, path, at: None } if path.is_root() => {
            session.handle_completion(Completion::Done { id })
        }
        Command::List { id, path, .. }
        | Command::Restore { id, path, .. }
        | Command::Versions { id, path } => {
            session.handle_completion(Completion::Failed {
                id,
                path,
                message: "not on the server".into(),
            });
            session.handle_completion(Completion::Done { id });
        }
        Command::Commit { id } => session.handle_completion(Completion::Committed { id }),
        Command::Verify { id, .. } => session.handle_completion(Completion::Verified {
            id,
            counts: Default::default(),
        }),
        Command::Check { id, entries } => session.handle_completion(Completion::Checked {
            id,
            bits: NeedBits::all(entries.len()).into_bytes(),
            meta: NeedBits::new(entries.len()).into_bytes(),
            resume: Vec::new(),
            delta: Vec::new(),
        }),
        _ => {}
    }
}

/// ENOSPC and EDQUOT: no room for anything more in this batch.
fn is_full(errno: Option<i32>) -> bool {
    matches!(errno, Some(nix::libc::ENOSPC | nix::libc::EDQUOT))
}

/// The errno of a body's write error (as [`crate::io::describe`] put it)
/// when it says the disk is full.
fn full_errno(described: &str) -> Option<i32> {
    [nix::libc::ENOSPC, nix::libc::EDQUOT]
        .into_iter()
        .find(|&code| described == crate::io::describe(&std::io::Error::from_raw_os_error(code)))
}

/// A missing path reads better as just the cause.
pub(in crate::io::server) fn cause(e: &FsError) -> String {
    if e.raw_os_error() == Some(nix::libc::ENOENT) {
        "not on the server".to_string()
    } else {
        e.short()
    }
}
