//! Disk work that can take seconds, off the event loop: commits (which wait
//! for `syncfs`: flushing a large file to a real disk takes seconds) and
//! verifies (which read whole files). The loop hands a [`Job`] to a small
//! pool of threads and goes on serving every other connection; the
//! connection that asked for it waits, reading nothing more, until the
//! [`Done`] comes back through a channel and a `mio::Waker` wakes the loop.
//!
//! A job owns everything it touches (the connection's [`Stager`], or its
//! own handle on the namespace or the file), so the loop and the workers
//! share no state. A result for a connection that closed meanwhile is
//! dropped: the commit it carries is complete and durable all the same.
//!
//! Commits and reads (verifies, the crc of a resumed prefix) have queues
//! and threads of their own: however many verifies run, a commit never
//! waits for a thread behind them. Small files are written by threads of
//! their own too ([`WRITERS`], see `store/stage/deferred.rs`): a stager
//! sends them there itself, and its commit waits for them; they never
//! wait for anything but the disk.
//!
//! Only the pool lives here: what a job does is the store's
//! ([`Stager::commit`], [`Namespace::verify`], [`StoredFile::crc`],
//! [`Namespace::sweep`]).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::Waker;

use super::delta_io::{copy_ranges, crc_and_resign, crc_and_sign, CopyReport};
use super::delta_match::Matched;
use super::store::sigcache::{SigCache, SigKey};
use super::store::{CommitReport, Namespace, Stager, Store, StoredFile, Writer, WriterPool};
use crate::delta::Signature;
use crate::proto::{CopyRange, WirePath};
use crate::server::session::VerifyCounts;
use crate::store::retention::Keep;

/// Which connection a job belongs to: its slab key and a generation that
/// tells it apart from a later connection given the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Slab key.
    pub key: usize,
    /// Unique per connection.
    pub generation: u64,
}

/// Work for the pool.
pub enum Job {
    /// Commit a batch: [`Stager::commit`].
    Commit {
        /// Whose.
        ticket: Ticket,
        /// The `Commit` request.
        id: u32,
        /// The connection's stager, handed back in [`Done::Committed`].
        store: Box<Stager>,
    },
    /// The crc32c of the first `len` bytes of `file`: what a resumed
    /// transfer keeps (it can be gigabytes).
    Crc {
        /// Whose.
        ticket: Ticket,
        /// The file (its own descriptor): a stored file a restore resumes,
        /// or the partial a backup resumes into.
        file: StoredFile,
        /// Bytes to read.
        len: u64,
    },
    /// The signatures of the stored versions of a manifest's changed
    /// files ([`Namespace::signatures`]): the `Need` waits for them.
    Sign {
        /// Whose.
        ticket: Ticket,
        /// The namespace (its own descriptor).
        tree: Namespace,
        /// (entry index, path) of each file.
        files: Vec<(u32, WirePath)>,
    },
    /// Copy the runs of a delta from its basis into its staging file,
    /// first giving that file its full size (`copy_ranges`): the body
    /// waits.
    Copy {
        /// Whose.
        ticket: Ticket,
        /// The stored version.
        basis: OwnedFd,
        /// The staging file (its own descriptor).
        out: OwnedFd,
        /// The new file's size.
        size: u64,
        /// The runs.
        ranges: Vec<CopyRange>,
    },
    /// Read a delta's result back whole: its crc32c and, for the cache,
    /// its signature in blocks of `block`, the blocks its basis signed
    /// (found in `cache` under `basis`) taken from there, not hashed.
    CheckDelta {
        /// Whose.
        ticket: Ticket,
        /// The staging file (its own descriptor).
        file: OwnedFd,
        /// Its size.
        len: u64,
        /// The signature's block size, if it is to be signed.
        block: Option<u32>,
        /// The namespace's signature cache and the basis's key in it.
        basis: Option<Box<(SigCache, SigKey)>>,
        /// The runs copied from the basis.
        copies: Vec<CopyRange>,
    },
    /// Read a stored file a restore offers against the signature of the
    /// client's copy ([`StoredFile::matched`]): the file waits.
    MatchStored {
        /// Whose.
        ticket: Ticket,
        /// The stored file (its own descriptor).
        file: StoredFile,
        /// The client's signature, and the bytes it holds already (the
        /// file is matched from there).
        sig: Box<(Signature, u64)>,
    },
    /// Re-read every stored file under `path` and compare it with its
    /// recorded crc32c.
    Verify {
        /// Whose.
        ticket: Ticket,
        /// The `Verify` request.
        id: u32,
        /// The namespace (its own descriptor).
        tree: Namespace,
        /// Where to start.
        path: WirePath,
        /// Set when the connection closed: stop reading.
        cancel: Arc<AtomicBool>,
    },
}

/// A result, or a verify's progress.
pub enum Done {
    /// A commit finished.
    Committed {
        /// Whose.
        ticket: Ticket,
        /// The `Commit` request.
        id: u32,
        /// The stager, back.
        store: Box<Stager>,
        /// What was committed and what failed.
        report: CommitReport,
        /// How long it took.
        elapsed: Duration,
    },
    /// The crc32c of a kept prefix, or why it could not be read.
    Crc {
        /// Whose.
        ticket: Ticket,
        /// The result.
        result: io::Result<u32>,
    },
    /// The signatures a [`Job::Sign`] made: (entry index, encoded).
    Signed {
        /// Whose.
        ticket: Ticket,
        /// The ones it could make, in order.
        sigs: Vec<(u32, Vec<u8>)>,
    },
    /// A [`Job::CheckDelta`] is done: the crc32c and the signature.
    DeltaChecked {
        /// Whose.
        ticket: Ticket,
        /// What it read, or why it could not.
        result: io::Result<(u32, Option<Signature>)>,
    },
    /// A [`Job::MatchStored`] is done.
    Matched {
        /// Whose.
        ticket: Ticket,
        /// The runs and the crc32c, `None` when nothing matched, or why
        /// the file could not be read.
        result: io::Result<Option<Matched>>,
    },
    /// A [`Job::Copy`] is done.
    Copied {
        /// Whose.
        ticket: Ticket,
        /// What it copied, or why it could not.
        result: io::Result<CopyReport>,
    },
    /// The space one namespace takes (from the measuring thread).
    Space {
        /// The namespace.
        name: String,
        /// What it takes.
        measured: super::store::Measured,
        /// When it was measured (epoch seconds).
        at: i64,
    },
    /// Damaged files found so far, and the counts so far.
    Verifying {
        /// Whose.
        ticket: Ticket,
        /// The `Verify` request.
        id: u32,
        /// Newly found damaged files: path and cause.
        damaged: Vec<(WirePath, String)>,
        /// Counts so far.
        counts: VerifyCounts,
        /// The verify is complete.
        finished: bool,
    },
}

/// The pool: job queues in, results out.
pub struct Workers {
    /// Set at shutdown: long jobs (verifies) stop early; commits finish.
    stop: Arc<AtomicBool>,
    /// Commits only.
    jobs: Option<Sender<Job>>,
    /// Verifies and crcs: they read for as long as the data takes.
    reads: Option<Sender<Job>>,
    /// The threads that write small files (see [`Self::writer`]).
    writers: Option<WriterPool>,
    done: Receiver<Done>,
    /// Namespaces swept in this run, and when.
    swept: std::cell::RefCell<HashMap<String, Instant>>,
    /// Sweeps go to their own thread: a walk of a whole namespace must not
    /// hold up the commits queued behind it.
    sweeps: Option<Sender<(String, Namespace)>>,
    threads: Vec<JoinHandle<()>>,
    /// For threads started later (the space measurer) to report through.
    done_tx: Sender<Done>,
    waker: Arc<Waker>,
}

/// Threads that write small files (see [`Workers::writer`]): two, so one
/// file system call that blocks does not stop every small file behind it.
pub const WRITERS: usize = 2;

/// How often the space of every namespace is measured again.
pub const MEASURE_EVERY: Duration = Duration::from_secs(15 * 60);

/// A namespace opened this long after its last sweep is swept again.
pub const RESWEEP: Duration = Duration::from_secs(24 * 3600);

impl Workers {
    /// Starts `n` threads for commits and `n` for reads that wake the
    /// loop through `waker` after each result.
    pub fn start(n: usize, waker: Waker) -> io::Result<Workers> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (read_tx, read_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let read_rx = Arc::new(Mutex::new(read_rx));
        let waker = Arc::new(waker);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let (sweep_tx, sweep_rx) = mpsc::channel::<(String, Namespace)>();
        let sweep_stop = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("rsb-sweep".into())
                .spawn(move || sweeper(&sweep_rx, &sweep_stop))?,
        );
        let writers = WriterPool::start(WRITERS)?;
        for (kind, rx) in [("commit", &job_rx), ("read", &read_rx)] {
            for i in 0..n.max(1) {
                let (jobs, done, waker) = (rx.clone(), done_tx.clone(), waker.clone());
                let stop = stop.clone();
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("rsb-{kind}-{i}"))
                        .spawn(move || work(&jobs, &done, &waker, &stop))?,
                );
            }
        }
        Ok(Workers {
            stop,
            jobs: Some(job_tx),
            reads: Some(read_tx),
            writers: Some(writers),
            done: done_rx,
            swept: std::cell::RefCell::new(HashMap::new()),
            sweeps: Some(sweep_tx),
            threads,
            done_tx,
            waker,
        })
    }

    /// Starts the thread that measures the space of every namespace of
    /// `store` (see [`Namespace::measure`]) a few seconds after the start,
    /// then every [`MEASURE_EVERY`], reporting each as a [`Done::Space`].
    pub fn start_measurer(&mut self, store: Store) -> io::Result<()> {
        let stop = self.stop.clone();
        let (done, waker) = (self.done_tx.clone(), self.waker.clone());
        self.threads.push(
            std::thread::Builder::new()
                .name("rsb-space".into())
                .spawn(move || measurer(&store, &done, &waker, &stop))?,
        );
        Ok(())
    }

    /// Starts the thread that applies the retention policy `keep` to every
    /// namespace of `store`: once now, then every [`PRUNE_EVERY`], until the
    /// server stops (a pass under way stops at its next batch). It logs
    /// what each pass removed.
    pub fn start_pruner(&mut self, store: Store, keep: Keep) -> io::Result<()> {
        let stop = self.stop.clone();
        self.threads.push(
            std::thread::Builder::new()
                .name("rsb-prune".into())
                .spawn(move || pruner(&store, &keep, &stop))?,
        );
        Ok(())
    }

    /// Queues a job. A job that cannot be queued (no worker is left) is
    /// handed back.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        let queue = match job {
            Job::Commit { .. } => &self.jobs,
            Job::Crc { .. }
            | Job::Verify { .. }
            | Job::Sign { .. }
            | Job::Copy { .. }
            | Job::CheckDelta { .. }
            | Job::MatchStored { .. } => &self.reads,
        };
        match queue {
            Some(tx) => tx.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }

    /// Sweeps the namespace `name` in the background, the first time it
    /// is opened in this run (its temporary files are this process's from
    /// then on), and again when it is opened [`RESWEEP`] or more after its
    /// last sweep, so that partials expire on a server that never restarts.
    pub fn sweep_once(&self, name: &str, tree: Namespace) {
        let now = Instant::now();
        let due = match self.swept.borrow_mut().entry(name.to_string()) {
            Entry::Vacant(v) => {
                v.insert(now);
                true
            }
            Entry::Occupied(mut o) if now.saturating_duration_since(*o.get()) >= RESWEEP => {
                o.insert(now);
                true
            }
            Entry::Occupied(_) => false,
        };
        if due {
            if let Some(tx) = &self.sweeps {
                let _ = tx.send((name.to_string(), tree));
            }
        }
    }

    /// Where a stager sends its small files to be written
    /// ([`Stager::set_writer`]).
    pub fn writer(&self) -> Option<Writer> {
        self.writers.as_ref().map(WriterPool::writer)
    }

    /// The next result, if one is ready.
    pub fn poll_done(&self) -> Option<Done> {
        self.done.try_recv().ok()
    }

    /// Lets queued jobs finish and waits for the threads: a commit under
    /// way is completed, never cut off.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs = None;
        self.reads = None;
        self.sweeps = None;
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
        // Last: a commit finishing above may wait for its small files.
        self.writers = None;
    }
}

/// `RSB_TEST_COMMIT_DELAY_MS`: makes every commit that much slower, as
/// on a slow disk, so tests can check that nothing else waits for it
/// (the server's commits and a restoring client's).
pub(crate) fn test_commit_delay() -> Option<Duration> {
    static DELAY: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        std::env::var("RSB_TEST_COMMIT_DELAY_MS")
            .ok()?
            .parse()
            .ok()
            .map(Duration::from_millis)
    })
}

/// `RSB_TEST_VERIFY_DELAY_MS`: makes every verify hold its thread that
/// much longer, as a verify of a big tree would, so tests can check that
/// no commit waits for it.
fn test_verify_delay() -> Option<Duration> {
    static DELAY: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        std::env::var("RSB_TEST_VERIFY_DELAY_MS")
            .ok()?
            .parse()
            .ok()
            .map(Duration::from_millis)
    })
}

/// `RSB_TEST_CRC_DELAY_MS`: makes every prefix or whole-file crc32c hold
/// its thread that much longer, as reading a big file would, so tests can
/// have many range requests wait for one check at once.
fn test_crc_delay() -> Option<Duration> {
    static DELAY: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        std::env::var("RSB_TEST_CRC_DELAY_MS")
            .ok()?
            .parse()
            .ok()
            .map(Duration::from_millis)
    })
}

/// How often the retention policy runs.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The pruner thread (see [`Workers::start_pruner`]).
fn pruner(store: &Store, keep: &Keep, stop: &AtomicBool) {
    let stopped = || stop.load(Ordering::Relaxed);
    let every = test_prune_every().unwrap_or(PRUNE_EVERY);
    while !stopped() {
        let mut removed: HashMap<String, (u64, u64, u64)> = HashMap::new();
        let now = super::clock::now_secs();
        let res = store.prune_all(
            keep,
            now,
            &super::clock::local_civil,
            false,
            &stopped,
            &mut |ns, r| {
                log::debug!(
                    "{ns}: retention removed {} of {}",
                    r.path,
                    String::from_utf8_lossy(&r.batch)
                );
                let e = removed.entry(ns.to_string()).or_default();
                *e = (e.0 + 1, e.1 + r.entries, e.2 + r.bytes);
            },
        );
        if let Err(e) = res {
            log::warn!("retention: {e}");
        }
        let mut names: Vec<_> = removed.into_iter().collect();
        names.sort();
        for (ns, (versions, entries, bytes)) in names {
            log::info!("{ns}: retention removed {versions} versions from history ({entries} entries, {bytes} bytes)");
        }
        let until = Instant::now() + every;
        while !stopped() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn measurer(store: &Store, done: &Sender<Done>, waker: &Waker, stop: &AtomicBool) {
    let stopped = || stop.load(Ordering::Relaxed);
    let mut wait = Duration::from_secs(2);
    loop {
        let until = Instant::now() + wait;
        while !stopped() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        if stopped() {
            return;
        }
        for name in store.namespaces().unwrap_or_default() {
            let Ok(ns) = store.existing_namespace(&name) else {
                continue;
            };
            let Some(measured) = ns.measure(&stopped) else {
                return;
            };
            let at = super::clock::now_secs();
            if done.send(Done::Space { name, measured, at }).is_err() {
                return;
            }
            let _ = waker.wake();
        }
        wait = MEASURE_EVERY;
    }
}

/// `RSB_TEST_PRUNE_EVERY_MS`: runs retention that often instead of
/// hourly, so tests can watch a running server apply it.
fn test_prune_every() -> Option<Duration> {
    std::env::var("RSB_TEST_PRUNE_EVERY_MS")
        .ok()?
        .parse()
        .ok()
        .map(Duration::from_millis)
}

/// The sweeper thread: one namespace after another, until the server
/// stops (a sweep under way stops at its next directory).
fn sweeper(sweeps: &Receiver<(String, Namespace)>, stop: &AtomicBool) {
    while let Ok((name, tree)) = sweeps.recv() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let kept = tree.recover_history();
        if kept > 0 {
            log::info!("{name}: {kept} history batches of an earlier run put right");
        }
        let stopped = || stop.load(Ordering::Relaxed);
        let n = tree.sweep(&WirePath::root(), true, &stopped);
        if n > 0 {
            log::info!("{name}: removed {n} temporary files left by an earlier run");
        }
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, done: &Sender<Done>, waker: &Waker, stop: &AtomicBool) {
    loop {
        // The lock is held only while waiting for a job, never while one
        // runs, so the other threads pick up the next job meanwhile.
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return;
        };
        match job {
            Job::Commit {
                ticket,
                id,
                mut store,
            } => {
                let start = Instant::now();
                if let Some(d) = test_commit_delay() {
                    std::thread::sleep(d);
                }
                let report = store.commit();
                let r = Done::Committed {
                    ticket,
                    id,
                    store,
                    report,
                    elapsed: start.elapsed(),
                };
                if done.send(r).is_err() {
                    return;
                }
                let _ = waker.wake();
            }
            Job::Crc { ticket, file, len } => {
                if let Some(d) = test_crc_delay() {
                    std::thread::sleep(d);
                }
                let result = file.crc(0, len, 0).map_err(|e| e.error);
                if done.send(Done::Crc { ticket, result }).is_err() {
                    return;
                }
                let _ = waker.wake();
            }
            Job::Sign {
                ticket,
                tree,
                files,
            } => {
                let sigs = tree.signatures(&files);
                if done.send(Done::Signed { ticket, sigs }).is_err() {
                    return;
                }
                let _ = waker.wake();
            }
            Job::MatchStored { ticket, file, sig } => {
                let result = file.matched(&sig.0, sig.1, &|| stop.load(Ordering::Relaxed));
                if done.send(Done::Matched { ticket, result }).is_err() {
                    return;
                }
                let _ = waker.wake();
            }
            Job::CheckDelta {
                ticket,
                file,
                len,
                block,
                basis,
                copies,
            } => {
                let known = basis
                    .and_then(|b| b.0.load(&b.1))
                    .filter(|sig| block == Some(sig.block));
                let result = match (known, block) {
                    (Some(sig), Some(block)) => {
                        let mut r = crate::delta::Resigner::new(&sig, &copies);
                        crc_and_resign(file.as_fd(), len, block, |s, l| r.known(s, l))
                            .map(|(crc, sig)| (crc, Some(sig)))
                    }
                    _ => crc_and_sign(file.as_fd(), len, block),
                };
                if done.send(Done::DeltaChecked { ticket, result }).is_err() {
                    return;
                }
                let _ = waker.wake();
            }
            Job::Copy {
                ticket,
                basis,
                out,
                size,
                ranges,
            } => {
                let result = nix::unistd::ftruncate(&out, size as i64)
                    .map_err(io::Error::from)
                    .and_then(|()| copy_ranges(basis.as_fd(), out.as_fd(), &ranges));
                if done.send(Done::Copied { ticket, result }).is_err() {
                    return;
                }
                let _ = waker.wake();
            }
            Job::Verify {
                ticket,
                id,
                tree,
                path,
                cancel,
            } => {
                let stopped = || stop.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed);
                if let Some(d) = test_verify_delay() {
                    std::thread::sleep(d);
                }
                let mut report = |damaged, counts, finished| {
                    if stopped() {
                        return false;
                    }
                    let ok = done
                        .send(Done::Verifying {
                            ticket,
                            id,
                            damaged,
                            counts,
                            finished,
                        })
                        .is_ok();
                    let _ = waker.wake();
                    ok
                };
                tree.verify(path, &mut report);
            }
        }
    }
}
