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
//! the server stores backups: each batch committed on a thread of its own
//! while the next one is received ([`Committer`]). A hard link the server
//! sends (`Link`) is made only to a file this restore wrote or kept
//! ([`restore::map_link`]), at the commit, after the batch's files are in
//! place ([`Stager::link`]).

use std::path::{Path, PathBuf};

use nix::sys::stat::FileStat;

use super::committer::Committer;
use super::error::NetError;
use super::event_loop::Link;
use super::marker::{self, Marked};
use super::owners::Accounts;
use super::report::{show, Reporter};
use super::walk::{absolute, wire_path};
use crate::client::owners;
use crate::client::restore::{self, Links, Local, Target, Written};
use crate::client::session::Event;
use crate::io::store::{Namespace, StageOptions, Stager, WriterPool};
use crate::io::transfer::BodyReceiver;
use crate::io::{describe, kind_of, meta_of};
use crate::proto::owners::Book;
use crate::proto::xattrs::Xattrs;
use crate::proto::{EntryKind, Meta, Time, WirePath};

/// The target of restoring `source` into `dest`, looking at the disk.
fn target(source: &WirePath, dest: &Path) -> Result<Target, String> {
    let dest = absolute(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let value = restore::marker(source);
    restore::target(
        source,
        &dest,
        |p| std::fs::metadata(p).is_ok_and(|m| m.is_dir()),
        |p| marker::is_marked(p, &value),
    )
}

/// What stands at `p` beneath the destination, for [`restore::replace`].
fn local_at(stager: &Stager, p: &WirePath) -> Local {
    local_of(stager, p, stager.tree().lstat(p).ok().as_ref())
}

/// What stands at `p`, whose `lstat` is `st` (`None`: nothing).
fn local_of(stager: &Stager, p: &WirePath, st: Option<&FileStat>) -> Local {
    match st {
        Some(st) if kind_of(st) == Some(EntryKind::Dir) => match stager.tree().read_dir(p) {
            Ok(names) if names.is_empty() => Local::EmptyDir,
            // Unreadable: its contents are unknown, so it counts as full.
            _ => Local::FullDir,
        },
        Some(_) => Local::NonDir,
        None => Local::Missing,
    }
}

/// True when the regular file whose `lstat` is `st` is the version of
/// `size` bytes and `meta` the server is about to send
/// ([`restore::unchanged`]).
fn unchanged(st: Option<&FileStat>, size: u64, meta: &Meta) -> bool {
    let local = st
        .filter(|st| kind_of(st) == Some(EntryKind::File))
        .map(|st| (u64::try_from(st.st_size).unwrap_or(u64::MAX), meta_of(st)));
    restore::unchanged(local, size, meta, nix::unistd::geteuid().is_root())
}

/// How a restore goes, as the command and the options say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// A file or link may replace a local directory with contents (see
    /// [`restore::replace`]).
    pub force: bool,
    /// `--numeric-ids`: owners and groups by number, never by name.
    pub numeric: bool,
    /// `--at TIME`: the tree as it was then; `None`: as it is now.
    pub at: Option<Time>,
}

/// What a restore may replace, and who restored entries belong to here:
/// the names the server sent, this machine's accounts, and whether to map
/// by name at all.
struct Rules {
    /// [`Options::force`].
    force: bool,
    book: Book,
    accounts: Accounts,
    numeric: bool,
    /// [`Options::at`].
    at: Option<Time>,
}

impl Rules {
    /// `meta` with this machine's ids (see [`owners::local_meta`]).
    fn local(&self, meta: Meta) -> Meta {
        owners::local_meta(
            meta,
            &self.book,
            self.numeric,
            |n| self.accounts.uid_of(n),
            |n| self.accounts.gid_of(n),
        )
    }
}

/// Whether a restored file may replace what stands at `p` (else reported)
/// and whether that is already this version, from one `lstat`.
fn file_at(
    stager: &Stager,
    prefix: &WirePath,
    p: &WirePath,
    force: bool,
    size: u64,
    meta: &Meta,
    rep: &mut Reporter,
) -> (bool, bool) {
    let st = stager.tree().lstat(p).ok();
    let local = local_of(stager, p, st.as_ref());
    if !replace_ok(stager, prefix, p, EntryKind::File, local, force, rep) {
        return (false, false);
    }
    (true, unchanged(st.as_ref(), size, meta))
}

/// The top directory of a restored tree, marked while the restore is
/// unfinished (see [`marker`]).
struct Top {
    /// Its local path; `None` when the restore writes into DEST itself
    /// (the namespace root), which is never nested.
    path: Option<PathBuf>,
    value: Vec<u8>,
    marked: Marked,
}

impl Top {
    fn new(t: &Target, source: &WirePath) -> Top {
        let path = t.prefix.file_name().map(|n| {
            use std::os::unix::ffi::OsStrExt;
            t.dir.join(std::ffi::OsStr::from_bytes(n))
        });
        Top {
            path,
            value: restore::marker(source),
            marked: Marked::NotYet,
        }
    }

    /// An entry of `kind` goes to `p`: when that makes the top a
    /// directory, it is marked before anything is written into it.
    fn entry(&mut self, prefix: &WirePath, p: &WirePath, kind: EntryKind) {
        if self.marked != Marked::NotYet || (p == prefix && kind != EntryKind::Dir) {
            return;
        }
        if let Some(path) = &self.path {
            self.marked = marker::mark(path, &self.value);
        }
    }

    /// The restore finished with nothing failed: the mark goes.
    fn finished(&self) {
        if let (Some(path), Marked::Yes) = (&self.path, self.marked) {
            marker::clear(path);
        }
    }
}

/// Restores `source` (a path as it was backed up) into `dest`, as `opts`
/// say. Owners and groups are given where the restorer may (root: all;
/// anyone else: its own uid and its groups), mapped by name where the
/// server sent one that exists here; the entries that keep the
/// restorer's ownership are counted and said once.
///
/// A local file that is already the server's version (same size, mode
/// and mtime) is not written again, and a large one is not even sent
/// (`Skip`). When the restore is cut (a lost connection, a signal), what
/// was received whole is committed, not thrown away
/// ([`restore::commit_when_ended`]); the top directory
/// keeps its mark, so running the same restore again converges.
pub fn restore(
    link: &mut Link<'_>,
    source: &Path,
    dest: &Path,
    opts: Options,
    rep: &mut Reporter,
) -> Result<(), NetError> {
    let force = opts.force;
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
    let stage = StageOptions {
        keep_partials: true,
        // An entry whose owner cannot be given loses its set-user-ID and
        // set-group-ID bits (GNU cp's rule).
        set_owners: true,
        ..StageOptions::default()
    };
    // Small files are written by threads of their own, as on the server
    // (`store/stage/deferred.rs`); without them, here. Declared before the
    // stager: its threads outlive every commit.
    let writers = WriterPool::start(crate::io::worker::WRITERS).ok();
    let mut stager = Stager::new(tree, stage);
    if let Some(w) = &writers {
        stager.set_writer(w.writer());
    }
    let mut top = Top::new(&t, &wire);
    let failed_before = rep.counts.failed;
    let mut rules = Rules {
        force,
        book: Book::new(),
        accounts: Accounts::new(),
        numeric: opts.numeric,
        at: opts.at,
    };
    let mut committer = Committer::new();
    let res = receive(
        link,
        &wire,
        &t,
        (&mut stager, &mut committer),
        &mut top,
        &mut rules,
        rep,
    );
    // Done or cut: what arrived whole is made durable and visible, with
    // the directory modes and times that came (the rest come with a
    // re-run); from a server that broke the protocol, nothing more is.
    // Either way the batch being committed is waited for.
    if restore::commit_when_ended(matches!(res, Err(NetError::Protocol { .. }))) {
        committer.commit(&mut stager, rep);
    }
    committer.wait(&mut stager, rep);
    // Counted as modes are applied, which for directories is at the commit.
    if let Some(notice) = owners::kept_notice(stager.owners_kept()) {
        eprintln!("rsb-client: warning: {notice}");
    }
    if let Some(notice) = restore::xattrs_notice(stager.xattrs_refused()) {
        eprintln!("rsb-client: warning: {notice}");
    }
    if res.is_ok() && rep.counts.failed == failed_before {
        top.finished();
    }
    res
}

/// Receives the restore of `wire` into the target `t` until its `Done`.
fn receive(
    link: &mut Link<'_>,
    wire: &WirePath,
    t: &Target,
    (stager, committer): (&mut Stager, &mut Committer),
    top: &mut Top,
    rules: &mut Rules,
    rep: &mut Reporter,
) -> Result<(), NetError> {
    let force = rules.force;
    let id = match rules.at {
        Some(at) => link.session().send_restore_at(wire.clone(), at),
        None => link.session().send_restore(wire.clone()),
    };
    let mut recv: Option<BodyReceiver> = None;
    let mut moved = 0u64;
    // The path, body length and size of the file whose body is arriving.
    let mut current: Option<(WirePath, u64, u64)> = None;
    // The server path of the offer answered with a `Want`: the `File` that
    // follows for that path was checked at its offer. Any other `File` is
    // checked as it comes.
    let mut answered: Option<WirePath> = None;
    // Body bytes received whole since the last commit.
    let mut batch_bytes = 0u64;
    // The symlinks sent so far in this restore, where they were put.
    let mut links = Links::new();
    // The extended attributes of the file or directory that comes next,
    // by its server path: an offered file's come before its offer and
    // are used by the `File` that follows it.
    let mut xattrs: Option<(WirePath, Xattrs)> = None;
    // The regular files written or kept so far: a `Link`'s only targets.
    let mut written = Written::new();
    let show = |stager: &Stager, p: &WirePath| stager.tree().show(p);
    loop {
        if let Some(size) = link.session().wants_body() {
            let incoming = stager.incoming();
            // A resumed body continues the kept bytes: at their end, with
            // their crc.
            let r = recv.get_or_insert_with(|| {
                incoming.as_ref().map_or(BodyReceiver::new(size), |i| {
                    if i.holds_body() {
                        BodyReceiver::held(size)
                    } else {
                        BodyReceiver::placed(&i.layout, i.size, i.offset, i.crc)
                    }
                })
            });
            let file = incoming.and_then(|i| i.file.as_ref());
            let got = link.receive(r, file);
            // What a cut delta keeps as its partial.
            if !r.has_failed() {
                stager.delta_written(r.received());
            }
            moved += got?;
            if r.is_done() {
                if let Some(body) = r.take_held() {
                    if let Some(i) = stager.incoming() {
                        i.give_body(body);
                    }
                }
                link.session().handle_body_done();
            }
        } else {
            link.step(None)?;
        }
        while let Some(ev) = link.session().poll_event() {
            // Attributes are for the entry right after them (or the file
            // its offer announced).
            let attrs = match &ev {
                Event::Xattrs { .. } | Event::Names { .. } => None,
                Event::Offer { path, .. } => {
                    xattrs = xattrs.take().filter(|(p, _)| p == path);
                    None
                }
                Event::Dir { path, .. } | Event::File { path, .. } => {
                    xattrs.take().filter(|(p, _)| p == path).map(|(_, a)| a)
                }
                _ => {
                    xattrs = None;
                    None
                }
            };
            match ev {
                Event::Names { users, groups } => rules.book.learn(users, groups),
                Event::Xattrs { path, attrs, .. } => xattrs = Some((path, attrs)),
                Event::Dir { path, meta, .. } => {
                    let meta = rules.local(meta);
                    let Some(p) = map(&t.prefix, &path, EntryKind::Dir, &links, rep, stager) else {
                        continue;
                    };
                    top.entry(&t.prefix, &p, EntryKind::Dir);
                    if let Some(a) = attrs {
                        stager.set_xattrs(p.clone(), a);
                    }
                    written.remove(&p);
                    if let Err(e) = stager.mkdir(&p, meta) {
                        rep.fail(&e.path, &describe(&e.error));
                    }
                }
                Event::Symlink {
                    path, target, meta, ..
                } => {
                    let meta = rules.local(meta);
                    let Some(p) = map(&t.prefix, &path, EntryKind::Symlink, &links, rep, stager)
                    else {
                        continue;
                    };
                    top.entry(&t.prefix, &p, EntryKind::Symlink);
                    written.remove(&p);
                    if !may_replace(stager, &t.prefix, &p, EntryKind::Symlink, force, rep) {
                        continue;
                    }
                    match stager.symlink(id, &p, &target, meta) {
                        Ok(()) => {
                            rep.counts.links += 1;
                            links.insert(p);
                        }
                        Err(e) => rep.fail(&e.path, &describe(&e.error)),
                    }
                }
                Event::Special {
                    path,
                    kind,
                    rdev,
                    meta,
                    ..
                } => {
                    let Some(p) = map(&t.prefix, &path, kind, &links, rep, stager) else {
                        continue;
                    };
                    top.entry(&t.prefix, &p, kind);
                    written.remove(&p);
                    if !may_replace(stager, &t.prefix, &p, kind, force, rep) {
                        continue;
                    }
                    match stager.special(id, &p, kind, rdev, meta) {
                        Ok(()) => rep.counts.specials += 1,
                        Err(e) => {
                            if e.cause() == crate::io::store::NEEDS_ROOT {
                                rep.counts.needs_root += 1;
                            }
                            rep.fail(&e.path, &describe(&e.error));
                        }
                    }
                }
                Event::Offer {
                    id,
                    path,
                    meta,
                    size,
                } => {
                    let meta = rules.local(meta);
                    // Refused (and named now), or already here: not sent.
                    // Else: how much of this version of the file an
                    // interrupted restore left behind.
                    let Some(p) = map(&t.prefix, &path, EntryKind::File, &links, rep, stager)
                    else {
                        link.session().send_skip(id);
                        continue;
                    };
                    top.entry(&t.prefix, &p, EntryKind::File);
                    written.remove(&p);
                    let (may, same) = file_at(stager, &t.prefix, &p, force, size, &meta, rep);
                    if !may {
                        link.session().send_skip(id);
                    } else if same {
                        rep.counts.skipped += 1;
                        let set = xattrs.as_ref().filter(|(s, _)| *s == path).map(|(_, a)| a);
                        stager.align_xattrs(&p, set);
                        written.insert(p, size, true);
                        link.session().send_skip(id);
                    } else {
                        let held = stager.partial_len(&p, size, &meta).unwrap_or(0);
                        // The copy here, of another version, can be the
                        // basis of a delta (from what a cut restore left
                        // of the file, if it did). Signing it reads it
                        // whole: an interrupt stops that, and keepalives
                        // hold the server meanwhile.
                        let basis = if size >= crate::delta::DELTA_MIN {
                            let mut quiet = std::time::Instant::now();
                            stager
                                .tree()
                                .basis_signature(&p, || link.keep_alive(&mut quiet))?
                        } else {
                            None
                        };
                        match basis {
                            Some((len, sig)) => {
                                link.session().send_want_delta(id, (len, held), &sig)
                            }
                            None => link.session().send_want(id, held),
                        }
                        answered = Some(path);
                    }
                }
                Event::File {
                    path,
                    meta,
                    size,
                    offset,
                    layout,
                    delta,
                    ..
                } => {
                    let meta = rules.local(meta);
                    recv = None;
                    current = None;
                    let offered = answered.take().is_some_and(|a| a == path);
                    let Some(p) = map(&t.prefix, &path, EntryKind::File, &links, rep, stager)
                    else {
                        continue;
                    };
                    top.entry(&t.prefix, &p, EntryKind::File);
                    if !offered {
                        written.remove(&p);
                        let (may, same) = file_at(stager, &t.prefix, &p, force, size, &meta, rep);
                        if !may {
                            continue;
                        }
                        if same {
                            // Already here: the body is received and dropped;
                            // the attributes are made the stored ones.
                            rep.counts.skipped += 1;
                            stager.align_xattrs(&p, attrs.as_ref());
                            written.insert(p, size, true);
                            continue;
                        }
                    }
                    let body = layout.body_len(size, offset);
                    if let Some(a) = attrs {
                        stager.set_xattrs(p.clone(), a);
                    }
                    let started = match delta.as_deref() {
                        Some((basis, copies)) => {
                            stager.begin_delta_from(id, &p, meta, (offset, size), (*basis, copies))
                        }
                        None if offset > 0 => stager
                            .resume_file(id, &p, meta, size, offset)
                            .map(|inc| inc.layout = layout),
                        None => stager.begin_body(id, &p, meta, size, layout).map(|_| ()),
                    };
                    match started {
                        Ok(()) => {
                            if delta.is_some() {
                                rep.counts.reused += size - offset - body;
                            }
                            rep.current(&show(stager, &p));
                            current = Some((p, body, size));
                        }
                        Err(e) => rep.fail(&e.path, &describe(&e.error)),
                    }
                }
                Event::Link {
                    id,
                    path,
                    target,
                    meta,
                    size,
                } => {
                    let meta = rules.local(meta);
                    let (p, to) = match restore::map_link(
                        &t.prefix, &path, &target, size, &links, &written,
                    ) {
                        Ok(both) => both,
                        Err(refusal) => {
                            let (path, cause) =
                                refusal.message(&t.prefix, |p| stager.tree().show(p));
                            rep.fail(&path, &cause);
                            continue;
                        }
                    };
                    top.entry(&t.prefix, &p, EntryKind::File);
                    written.remove(&p);
                    if written.kept(&to) && same_inode(stager, &p, &to) {
                        // Already another name of the file kept (a
                        // re-run). A target written in this run is linked
                        // at the commit, once it is in place.
                        rep.counts.skipped += 1;
                        continue;
                    }
                    if !may_replace(stager, &t.prefix, &p, EntryKind::File, force, rep) {
                        continue;
                    }
                    // Made at the commit, once the target is in place; a
                    // name of the file restored, with no bytes of its own.
                    match stager.link(id, &p, &to, meta, size) {
                        Ok(()) => {
                            rep.current(&show(stager, &p));
                            rep.counts.files += 1;
                        }
                        Err(e) => rep.fail(&e.path, &describe(&e.error)),
                    }
                }
                Event::FileEnd { crc, ok, .. } => {
                    let body = recv.take();
                    let Some((p, size, whole)) = current.take() else {
                        continue;
                    };
                    let (got, err) = match body {
                        Some(mut r) => (r.crc(), r.take_error()),
                        // No body moved: the crc is that of what was kept.
                        None => (stager.incoming().map_or(0, |i| i.crc), None),
                    };
                    // A delta's body is only its literal runs: the crc is
                    // that of the whole result, read back.
                    let (got, err) = match stager.incoming().filter(|i| i.delta) {
                        Some(i) => match crc_of_staged(i) {
                            Ok(crc) => (crc, err),
                            Err(e) => (got, err.or(Some(e))),
                        },
                        None => (got, err),
                    };
                    match restore::body_problem(crc, ok, got, err.map(|e| describe(&e))) {
                        Some(msg) => {
                            stager.abort_file();
                            rep.fail(&show(stager, &p), &msg);
                        }
                        None => match stager.finish_file(crc) {
                            Ok(()) => {
                                rep.counts.files += 1;
                                rep.counts.bytes += size;
                                batch_bytes = batch_bytes.saturating_add(size);
                                written.insert(p, whole, false);
                            }
                            Err(e) => rep.fail(&e.path, &describe(&e.error)),
                        },
                    }
                }
                Event::Failed { path, message, .. } => {
                    if answered.as_ref() == Some(&path) {
                        // The offered file will not come.
                        answered = None;
                    }
                    rep.fail(&path.to_string(), &format!("server: {message}"))
                }
                Event::Done { .. } => return Ok(()),
                Event::Refused { code, message } => return Err(link.refused(code, &message)),
                Event::Welcome { .. }
                | Event::Committed { .. }
                | Event::ListEntry { .. }
                | Event::Version { .. }
                | Event::Plan { .. }
                | Event::Need { .. }
                | Event::Verified { .. }
                | Event::Progress { .. } => {}
            }
            if restore::wants_commit(stager.pending(), batch_bytes, current.is_some()) {
                committer.commit(stager, rep);
                batch_bytes = 0;
            }
        }
        if link.session().is_closed() {
            return Err(link.broken());
        }
        rep.progress(moved, None);
    }
}

/// The crc32c of a staged file, read back whole.
fn crc_of_staged(i: &crate::io::store::Incoming) -> std::io::Result<u32> {
    match i.file.as_ref() {
        Some(f) => crate::io::transfer::crc_range(f, 0, i.size, 0),
        None => Ok(0),
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

/// True when a restored `kind` may replace what stands at `p`; else the
/// refusal is reported (the body, if any, is then received and dropped).
fn may_replace(
    stager: &Stager,
    prefix: &WirePath,
    p: &WirePath,
    kind: EntryKind,
    force: bool,
    rep: &mut Reporter,
) -> bool {
    replace_ok(stager, prefix, p, kind, local_at(stager, p), force, rep)
}

/// [`may_replace`] with what stands at `p` already looked at.
fn replace_ok(
    stager: &Stager,
    prefix: &WirePath,
    p: &WirePath,
    kind: EntryKind,
    local: Local,
    force: bool,
    rep: &mut Reporter,
) -> bool {
    match restore::replace(p, kind, local, force) {
        Ok(()) => true,
        Err(refusal) => {
            let (path, cause) = refusal.message(prefix, |p| stager.tree().show(p));
            rep.fail(&path, &cause);
            false
        }
    }
}

/// True when `p` and `to` beneath the destination are one regular file
/// already (neither followed if a symlink).
fn same_inode(stager: &Stager, p: &WirePath, to: &WirePath) -> bool {
    let (Ok(a), Ok(b)) = (stager.tree().lstat(p), stager.tree().lstat(to)) else {
        return false;
    };
    kind_of(&a) == Some(EntryKind::File) && (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
}
