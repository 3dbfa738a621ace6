//! The long-running commands: `watch` (back up, then back up each change
//! once it is quiet) and `--every` (repeat a command at a period). Both run
//! in the client's one loop ([`super::event_loop`]) and never end because
//! the server is away: what could not be sent stays pending (watch) or the
//! run is tried again (every), after a backoff of 1 s doubling to 60 s with
//! jitter ([`crate::client::schedule::Backoff`]). They end on SIGINT or
//! SIGTERM (a batch in flight is abandoned: the connection is dropped before
//! its commit, so the server keeps nothing of it), and at once, with status
//! 2, when the server refuses the client's name or secret.
//!
//! What changed and when it is due is the pure debouncer's
//! ([`crate::client::watch`]); what the kernel says changed is
//! [`super::inotify`]'s; this file turns due changes into the roots of a
//! normal incremental backup ([`super::backup::backup`]) and reports.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::backup;
use super::conn::Remote;
use super::error::NetError;
use super::event_loop::EventLoop;
use super::inotify::{Excluded, Watcher};
use super::report::{Counts, Reporter};
use super::walk::{self, Depth, Root, WalkOptions};
use crate::client::schedule::Backoff;
use crate::client::ui;
use crate::client::watch::{parent, Change, Debouncer, Limits, Target};

/// How a watch runs.
pub struct WatchOptions {
    /// Quiet time before a change is sent.
    pub delay: Duration,
    /// Period of the full rescans.
    pub rescan: Duration,
    /// What the walks leave out.
    pub walk: WalkOptions,
    /// `-q`.
    pub quiet: bool,
}

/// True for an error that waiting will not mend: the server refused the
/// client's secret, name or protocol, or the loop itself failed.
pub fn is_fatal(e: &NetError) -> bool {
    e.is_fatal()
}

/// A number for the backoff's jitter.
pub fn random() -> u32 {
    crate::io::random_bytes()
        .map(|b: [u8; 16]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

/// The summary line of a long-running command's totals.
pub fn print_totals(verb: &'static str, c: &Counts, elapsed: Duration) {
    eprintln!("{}", ui::format_summary(&c.summary(verb, "sent", elapsed)));
}

/// The local paths of a batch, as walk roots: a path gone since its event
/// becomes its directory's listing (so the server deletes it), a listing or
/// tree of what is no longer a directory becomes an entry, duplicates go.
fn roots_of(batch: &[Target], roots: &[Vec<u8>]) -> Vec<Root> {
    let mut out: Vec<(Vec<u8>, Depth, usize)> = Vec::with_capacity(batch.len());
    for t in batch {
        let Some(root) = roots.get(t.root) else {
            continue;
        };
        match nix::sys::stat::lstat(OsStr::from_bytes(&t.path)) {
            Ok(st) => {
                let is_dir = st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR;
                let depth = match (t.change, is_dir) {
                    (Change::Tree, true) => Depth::Tree,
                    (Change::Listing, true) => Depth::Listing,
                    _ => Depth::Entry,
                };
                out.push((t.path.clone(), depth, t.root));
            }
            Err(_) if &t.path == root => {}
            Err(_) => {
                // Gone: its directory says so, if that is watched.
                if let Some(dir) = parent(&t.path) {
                    if under(dir, root) {
                        out.push((dir.to_vec(), Depth::Listing, t.root));
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then(depth_rank(b.1).cmp(&depth_rank(a.1))));
    out.dedup_by(|later, first| later.0 == first.0);
    out.into_iter()
        .map(|(path, depth, root)| Root {
            path: PathBuf::from(OsStr::from_bytes(&path)),
            depth,
            optional: true,
            // Patterns are relative to the directory the user named.
            base: roots.get(root).map(|r| PathBuf::from(OsStr::from_bytes(r))),
        })
        .collect()
}

/// Deeper walks first.
fn depth_rank(d: Depth) -> u8 {
    match d {
        Depth::Tree => 2,
        Depth::Listing => 1,
        Depth::Entry => 0,
    }
}

/// `path` is `root` or beneath it.
fn under(path: &[u8], root: &[u8]) -> bool {
    path == root
        || (path.starts_with(root) && (root.ends_with(b"/") || path.get(root.len()) == Some(&b'/')))
}

/// What ended a watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// SIGINT or SIGTERM.
    Signal,
    /// `quit` (or `exit`) typed at the prompt.
    Quit,
    /// An agent's plan connection brought news (another plan): the agent
    /// starts what it says.
    Plan,
}

/// Runs `watch` on `paths` until a signal, or `quit` at the prompt:
/// returns the counts of all its batches and what stopped it. `Err` only
/// for a fatal refusal ([`is_fatal`]) or a path that cannot be watched (a
/// usage error, as a message).
pub fn watch(
    lp: &mut EventLoop,
    remote: &Remote,
    paths: &[PathBuf],
    opts: &WatchOptions,
) -> Result<(Counts, Stopped), WatchError> {
    let started = Instant::now();
    let mut roots: Vec<Vec<u8>> = Vec::new();
    for p in paths {
        let abs =
            walk::absolute(p).map_err(|e| WatchError::Usage(format!("{}: {e}", p.display())))?;
        match nix::sys::stat::lstat(&abs) {
            Ok(st) if st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR => {}
            Ok(_) => {
                return Err(WatchError::Usage(format!(
                    "watch: {}: not a directory (watch the directory holding it; back up single files with backup)",
                    p.display()
                )))
            }
            Err(e) => {
                return Err(WatchError::Usage(format!(
                    "watch: {}: {}",
                    p.display(),
                    e.desc()
                )))
            }
        }
        roots.push(abs.as_os_str().as_bytes().to_vec());
    }
    let debouncer = Debouncer::new(roots.clone(), Limits::for_delay(opts.delay));
    // What the walks leave out is never watched, and its events are
    // ignored: the same patterns, relative to the same root.
    let excluded: Excluded = match opts.walk.patterns.clone() {
        None => Box::new(|_, _, _| false),
        Some(ex) => {
            let bases = roots.clone();
            Box::new(move |root, path: &[u8], is_dir| {
                let Some(base) = bases.get(root) else {
                    return false;
                };
                match path.strip_prefix(base.as_slice()) {
                    Some(rel) => {
                        let rel = rel.strip_prefix(b"/").unwrap_or(rel);
                        !rel.is_empty() && ex.excluded(rel, is_dir)
                    }
                    None => false,
                }
            })
        }
    };
    // The store of a server on this machine is never watched: its writes
    // would come back as changes. Known once connected; a server that is
    // away now is looked for again at the first batch.
    let store = lp.link(remote).ok().and_then(|l| l.local_store());
    let mut watcher = Watcher::new(debouncer, excluded, store, opts.walk.one_file_system)
        .map_err(WatchError::Usage)?;
    let now = Instant::now();
    for (i, root) in roots.iter().enumerate() {
        let t = Instant::now();
        let set = watcher.watch_root(i, now);
        if !opts.quiet {
            eprintln!(
                "{}: watching {}: {} (set up in {:.3} s)",
                super::PROG,
                String::from_utf8_lossy(root),
                ui::count(set.dirs, "directory", "directories"),
                t.elapsed().as_secs_f64()
            );
        }
        // The first backup: everything, incrementally.
        watcher.debouncer.rescan(i, now);
    }
    lp.start_watching(watcher).map_err(WatchError::Net)?;
    let r = run(lp, remote, &roots, opts);
    lp.stop_watching();
    let (total, stopped) = r?;
    if !opts.quiet {
        print_totals("watch", &total, started.elapsed());
    }
    Ok((total, stopped))
}

/// Why a watch could not go on.
#[derive(Debug)]
pub enum WatchError {
    /// A path that cannot be watched, or no inotify: exit 2.
    Usage(String),
    /// A fatal refusal of the server.
    Net(NetError),
}

/// The watch's loop, once its watches are set up.
fn run(
    lp: &mut EventLoop,
    remote: &Remote,
    roots: &[Vec<u8>],
    opts: &WatchOptions,
) -> Result<(Counts, Stopped), WatchError> {
    let mut total = Counts::default();
    let mut backoff = Backoff::new();
    let mut retry_at: Option<Instant> = None;
    let mut next_rescan = Instant::now() + opts.rescan;
    // Once the first path is due, the batch waits a little longer (a
    // quarter of the delay, at most 250 ms) for the paths falling due just
    // after it: under a steady stream of changes, one batch per file would
    // cost a connection, a walk thread and a commit for each (measured by
    // scripts/watch-bench.sh: 2,112 of 2,435 batches held one file).
    let gather = (opts.delay / 4).min(Duration::from_millis(250));
    // A root that is gone is looked for this often (only while one is).
    let look_again = opts.delay.max(Duration::from_secs(2));
    let mut next_look: Option<Instant> = None;
    let mut retries = Retries::default();
    loop {
        if lp.interrupted() {
            return Ok((total, Stopped::Signal));
        }
        // Between batches: a batch in flight is finished first.
        if lp.plan_news() {
            return Ok((total, Stopped::Plan));
        }
        let now = Instant::now();
        if next_look.is_some_and(|t| t <= now) {
            next_look = None;
        }
        if next_look.is_none() {
            if let Some(w) = lp.watcher() {
                if w.revive_roots(now) {
                    next_look = Some(now + look_again);
                }
            }
        }
        let again = retries.take_due(now);
        if !again.is_empty() {
            if let Some(w) = lp.watcher() {
                w.debouncer.put_back(again, now);
            }
        }
        if now >= next_rescan {
            next_rescan = now + opts.rescan;
            if let Some(w) = lp.watcher() {
                for i in 0..roots.len() {
                    w.watch_root(i, now);
                    w.debouncer.rescan(i, now);
                }
            }
        }
        let may_send = retry_at.is_none_or(|t| t <= now);
        let batch = match (may_send, lp.watcher()) {
            (true, Some(w)) if w.debouncer.deadline().is_some_and(|d| d + gather <= now) => {
                w.debouncer.take_due(now)
            }
            _ => Vec::new(),
        };
        if !batch.is_empty() {
            let walk_roots = roots_of(&batch, roots);
            for r in &walk_roots {
                log::debug!("watch: batch: {:?} {}", r.depth, r.path.display());
            }
            let mut rep = Reporter::new(opts.quiet, false);
            lp.take_moved();
            let r = if walk_roots.is_empty() {
                Ok(())
            } else {
                lp.link(remote)
                    .map(|mut link| {
                        let store = link.local_store();
                        let r = backup::backup(&mut link, &walk_roots, opts.walk.clone(), &mut rep);
                        (r, store)
                    })
                    .and_then(|(r, store)| {
                        // A server on this machine that was away at the start:
                        // its store is not watched from now on.
                        if let Some(w) = lp.watcher() {
                            if w.learn_store(store) {
                                for i in 0..roots.len() {
                                    w.watch_root(i, Instant::now());
                                }
                            }
                        }
                        r
                    })
            };
            rep.counts.moved = lp.take_moved();
            // One connection per batch: the server's noted names of one
            // batch must not keep an entry another batch finds deleted
            // (see the `backup` command in `super`).
            lp.disconnect();
            match r {
                Ok(()) => {
                    backoff.succeeded();
                    retry_at = None;
                    if !walk_roots.is_empty() {
                        rep.finish("batch", "sent");
                    }
                    total += &rep.counts;
                    if rep.counts.failed > 0 {
                        retries.failed(batch, Instant::now());
                    } else {
                        retries.succeeded(&batch);
                    }
                }
                Err(NetError::Interrupted) => {
                    // Abandoned before its commit: the server drops it,
                    // and the summary counts nothing of it.
                    lp.disconnect();
                    rep.flush_repeats();
                    return Ok((total, Stopped::Signal));
                }
                Err(e) if is_fatal(&e) => {
                    lp.disconnect();
                    return Err(WatchError::Net(e));
                }
                Err(e) => {
                    lp.disconnect();
                    rep.flush_repeats();
                    let wait = backoff.failed(random());
                    let now = Instant::now();
                    retry_at = Some(now + wait);
                    if let Some(w) = lp.watcher() {
                        w.debouncer.put_back(batch, now);
                        log::warn!(
                            "{e}; trying again in {:.1} s ({} pending)",
                            wait.as_secs_f64(),
                            ui::count(w.debouncer.len() as u64, "change", "changes")
                        );
                    }
                }
            }
            continue;
        }
        // At the prompt, only `quit` is read while a watch runs (read when
        // no batch is due: a script's `quit` comes after the first backup).
        let due_now = lp
            .watcher()
            .and_then(|w| w.debouncer.deadline())
            .is_some_and(|d| d <= now && retry_at.is_none_or(|r| r <= now));
        while let Some(line) = if due_now { None } else { lp.try_line() } {
            let word = line.trim_ascii();
            if word == b"quit" || word == b"exit" {
                return Ok((total, Stopped::Quit));
            }
            if !word.is_empty() && !word.starts_with(b"#") {
                eprintln!(
                    "{}: a watch is running: type quit (or press Ctrl-C) to stop it",
                    super::PROG
                );
            }
        }
        let due = lp
            .watcher()
            .and_then(|w| w.debouncer.deadline())
            .map(|d| d + gather);
        let until = [
            due.map(|d| retry_at.map_or(d, |r| d.max(r))),
            Some(next_rescan),
            next_look,
            retries.next(),
        ]
        .into_iter()
        .flatten()
        .min();
        match lp.wait_until(until) {
            Ok(()) => {}
            Err(NetError::Interrupted) => return Ok((total, Stopped::Signal)),
            Err(e) => return Err(WatchError::Net(e)),
        }
    }
}

/// The changes of batches in which files failed (a full disk on the
/// server, a file that could not be read), tried again after 5, 10, 20,
/// 40 and 80 s while they keep failing; then the rescans find them.
#[derive(Default)]
struct Retries {
    /// Failed tries per path.
    tries: HashMap<Vec<u8>, u32>,
    /// Targets waiting for their next try.
    waiting: Vec<(Instant, Target)>,
}

/// Tries of a failing change, at most.
const FAILED_TRIES: u32 = 5;
/// Paths kept for those tries, at most (past it the rescans find them).
const FAILED_PATHS: usize = 100_000;

impl Retries {
    /// A batch in which files failed: each of its targets waits for its
    /// next try, or, past [`FAILED_TRIES`], is left to the rescans.
    fn failed(&mut self, batch: Vec<Target>, now: Instant) {
        if self.tries.len() + batch.len() > FAILED_PATHS {
            log::warn!("watch: too many failed changes held: they wait for the next rescan");
            self.tries.clear();
            self.waiting.clear();
            return;
        }
        for t in batch {
            let n = self.tries.entry(t.path.clone()).or_insert(0);
            *n += 1;
            if *n > FAILED_TRIES {
                self.tries.remove(&t.path);
                continue;
            }
            let wait = Duration::from_secs(5u64 << (*n - 1));
            self.waiting.push((now + wait, t));
        }
    }

    /// A batch in which nothing failed: its paths start afresh.
    fn succeeded(&mut self, batch: &[Target]) {
        if !self.tries.is_empty() {
            for t in batch {
                self.tries.remove(&t.path);
            }
        }
    }

    /// The targets whose try is due at `now`.
    fn take_due(&mut self, now: Instant) -> Vec<Target> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.waiting = later;
        due.into_iter().map(|(_, t)| t).collect()
    }

    /// When the next try is due.
    fn next(&self) -> Option<Instant> {
        self.waiting.iter().map(|(at, _)| *at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_changes_are_tried_again_five_times_then_left_to_the_rescans() {
        let t0 = Instant::now();
        let target = || Target {
            root: 0,
            path: b"/w/f".to_vec(),
            change: Change::Entry,
        };
        let mut r = Retries::default();
        let mut at = t0;
        for wait in [5, 10, 20, 40, 80] {
            r.failed(vec![target()], at);
            assert_eq!(r.next(), Some(at + Duration::from_secs(wait)));
            assert!(r.take_due(at).is_empty());
            at += Duration::from_secs(wait);
            assert_eq!(r.take_due(at), vec![target()]);
        }
        r.failed(vec![target()], at);
        assert_eq!(r.next(), None, "a sixth failure is left to the rescans");
        // A success starts the count afresh.
        let mut r = Retries::default();
        r.failed(vec![target()], t0);
        r.take_due(t0 + Duration::from_secs(5));
        r.succeeded(&[target()]);
        r.failed(vec![target()], t0);
        assert_eq!(r.next(), Some(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn paths_under_a_root() {
        assert!(under(b"/a/b", b"/a"));
        assert!(under(b"/a", b"/a"));
        assert!(!under(b"/ab", b"/a"));
        assert!(under(b"/x", b"/"));
    }
}
