//! Small files written by writer threads ([`WriterPool`]), not by the
//! loop that receives them: the server's event loop, or a restoring
//! client's. Ten thousand small files are ten thousand
//! `openat(O_CREAT)`, `write`, `fsetxattr` (the checksum record) and
//! `futimens` calls; made in the server's loop they were most of its time
//! (about 80% of a core in a push), with the client and the other core
//! waiting for it. A stager given a writer ([`Stager::set_writer`]) keeps
//! the body of a fresh file of
//! at most [`HELD_MAX`] bytes in memory as it arrives (the loop checksums
//! it on the bytes in hand), and when it is verified hands the whole file
//! to a writer thread as a [`WriteJob`]: create under the temporary name
//! chosen in the loop, write, record, mode, mtime (and fsync, in the fsync
//! mode). The entry is staged at once; the commit waits for the batch's
//! writes before anything is made durable, and a file whose write failed
//! is one of its failures ([`Stager::settle_writes`]), never renamed.
//!
//! Everything else stays as it was: directories, links, deltas, resumable
//! (large) files, partials, empty files, the first fresh file of a stager
//! (whose `fstat` checks the mode prediction of [`super::made`]), files on
//! a disk with little room (a full disk fails each file as it comes, as
//! before) and every file when the writers hold [`IN_FLIGHT_MAX`] bytes
//! already. An abort ([`Stager::abort`]) marks the batch's writes
//! aborted: a write not yet started is not made, one under way removes
//! its file when it ends.
//!
//! A restore gives a directory its native attributes when the
//! directory's entry comes, right after its last file: a default ACL
//! set then would be inherited by a file still queued (its mode masked,
//! an access ACL of its own), so before a directory's attributes are
//! set the restore waits for the writes handed out so far
//! ([`Stager::wait_writes`]); the server keeps attributes as records,
//! which nothing inherits, and never waits. Part of [`super`], split off
//! for length.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SendError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::{self, Mode};
use nix::unistd::{self, UnlinkatFlags};

use super::super::beneath::{os, Shown};
use super::made::Made;
use super::{omit, timespec, Applied, FsError, Incoming, StageOptions, Staged, Stager, XattrStep};
use crate::proto::xattrs::Xattrs;
use crate::proto::{EntryKind, Meta, WirePath};
use crate::store::record::Recorded;

/// The largest file whose body is held in memory and written by a writer
/// thread: one the loop reads with a plain `read` anyway.
pub const HELD_MAX: u64 = crate::io::transfer::SMALL_BODY;

/// The bytes every stager's writes may hold in memory at once, together;
/// past it a file is written where it is finished, in the loop.
pub const IN_FLIGHT_MAX: u64 = 32 << 20;

/// A stager holds bodies only where this much room is left on the disk
/// (see `Stager::make_room`, whose room is half of what was free: 256 MiB
/// free): near a full disk every file is written, and fails, as it
/// arrives.
const ROOM_MIN: u64 = 128 << 20;

/// Body bytes handed to writers and not yet written.
static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);

/// What the writer threads are sent.
pub enum WriterMsg {
    /// A file to write.
    Write(Box<WriteJob>),
    /// The thread that takes this ends (the server stops).
    Stop,
}

/// Where a stager sends its [`WriteJob`]s.
pub type Writer = Sender<WriterMsg>;

/// What a held file will be created with, decided in the loop.
pub(in crate::io::store) struct Held {
    /// The directory it goes into (the stager's open parent).
    dir: Arc<OwnedFd>,
    /// The mode it is created with, and what the prediction says it then
    /// has (see [`super::made`]).
    mode: Mode,
    made: Option<Made>,
}

/// One small file to create, write and give its metadata, whole, on a
/// writer thread (see the module's text).
pub struct WriteJob {
    writes: Arc<Writes>,
    path: WirePath,
    dir: Arc<OwnedFd>,
    tmp: Vec<u8>,
    mode: Mode,
    made: Option<Made>,
    body: Vec<u8>,
    meta: Meta,
    crc: u32,
    xattrs: Option<Box<Xattrs>>,
    opts: StageOptions,
    fsync: bool,
    shown: Shown,
}

/// The writes of one batch: how many are under way, which failed, and
/// what their metadata left out.
#[derive(Default)]
pub(in crate::io::store) struct Writes {
    state: Mutex<WritesState>,
    settled: Condvar,
}

/// A write that failed: its file's path, name, and why.
type Failed = (WirePath, Vec<u8>, FsError);

#[derive(Default)]
struct WritesState {
    pending: usize,
    /// The path and the name of each file whose write failed (a final
    /// name repeats across directories, a restore's request id across
    /// entries), and why.
    failed: Vec<Failed>,
    /// What their metadata left out, added up as [`Stager`] counts it.
    left_out: [u32; 3],
    aborted: bool,
}

impl Writes {
    fn lock(&self) -> MutexGuard<'_, WritesState> {
        // A writer that panicked left the counts as they were.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until no write is under way.
    fn idle(&self) -> MutexGuard<'_, WritesState> {
        let mut st = self.lock();
        while st.pending > 0 {
            st = self.settled.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st
    }

    /// Waits until no write is under way; the failures stay.
    pub(super) fn wait(&self) {
        drop(self.idle());
    }

    /// Waits until no write is under way; the failures and what the
    /// metadata left out, taken.
    fn settle(&self) -> (Vec<Failed>, [u32; 3]) {
        let mut st = self.idle();
        (
            std::mem::take(&mut st.failed),
            std::mem::take(&mut st.left_out),
        )
    }

    /// No write not yet started is made; those under way remove their
    /// files when they end.
    fn abort(&self) {
        self.lock().aborted = true;
    }
}

impl Drop for WriteJob {
    /// The write is over, run or not (a job dropped unrun, or a writer
    /// that panicked, never leaves its commit waiting; its file, not
    /// made, fails at the commit's rename).
    fn drop(&mut self) {
        let mut st = self.writes.lock();
        st.pending = st.pending.saturating_sub(1);
        if st.pending == 0 {
            self.writes.settled.notify_all();
        }
        drop(st);
        IN_FLIGHT.fetch_sub(self.body.len() as u64, Ordering::Relaxed);
    }
}

impl WriteJob {
    /// Writes the file (unless its batch was aborted meanwhile) and tells
    /// its batch how it went (and, dropped, that it is over). Runs on a
    /// writer thread, or in the loop when no writer takes it.
    pub fn run(self) {
        let skip = self.writes.lock().aborted;
        let res = if skip { None } else { Some(self.write()) };
        let mut st = self.writes.lock();
        match res {
            None => {}
            Some(Ok(_) | Err((true, _))) if st.aborted => self.remove(),
            Some(Ok(a)) => {
                let n = &mut st.left_out;
                n[0] = n[0].saturating_add(u32::from(a.setid_cleared));
                n[1] = n[1].saturating_add(u32::from(a.owner_kept));
                n[2] = n[2].saturating_add(a.xattrs_refused);
            }
            Some(Err((made, e))) => {
                if made {
                    self.remove();
                }
                st.failed.push((self.path.clone(), self.tmp.clone(), e));
            }
        }
    }

    fn remove(&self) {
        let _ = unistd::unlinkat(
            Some(self.dir.as_raw_fd()),
            os(&self.tmp),
            UnlinkatFlags::NoRemoveDir,
        );
    }

    /// Creates the file and gives it everything; the error says whether
    /// the file was made (and so is to be removed).
    fn write(&self) -> Result<Applied, (bool, FsError)> {
        let fail = |op, e| (true, FsError::errno(op, self.shown.text(), e));
        let fd = fcntl::openat(
            Some(self.dir.as_raw_fd()),
            os(&self.tmp),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            self.mode,
        )
        .map_err(|e| (false, FsError::errno("create", self.shown.text(), e)))?;
        // SAFETY: fd was just returned by openat and is owned by nobody else.
        let file = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut done = 0;
        while done < self.body.len() {
            match unistd::write(&file, self.body.get(done..).unwrap_or_default()) {
                Ok(0) => return Err(fail("write", Errno::EIO)),
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(fail("write", e)),
            }
        }
        let crc = self.opts.record_checksums.then_some(Recorded {
            crc: self.crc,
            size: self.body.len() as u64,
        });
        let xattrs = XattrStep::Write {
            set: self.xattrs.as_deref(),
            stale: !self.opts.fake_super,
        };
        seal(
            &file,
            &self.opts,
            crc,
            xattrs,
            &self.meta,
            self.made,
            self.fsync,
            &self.shown,
        )
        .map_err(|e| (true, e))
    }
}

/// Gives a fresh or complete file its checksum record (`crc`), extended
/// attributes, mode (`made`: what it was created with, see
/// [`super::made`]) and mtime, and fsyncs it when `fsync`: the end of every
/// file body, in the loop ([`Stager::finish_file`]) or on a writer.
/// The attributes come first: a file whose mode denies its owner writing
/// refuses them afterwards.
#[allow(clippy::too_many_arguments)]
pub(super) fn seal(
    file: &OwnedFd,
    opts: &StageOptions,
    crc: Option<Recorded>,
    xattrs: XattrStep<'_>,
    meta: &Meta,
    made: Option<Made>,
    fsync: bool,
    shown: &Shown,
) -> Result<Applied, FsError> {
    if let Some(r) = crc {
        match super::super::xattr::record(file.as_fd(), r) {
            Ok(true) => {}
            Ok(false) => super::warn_no_xattrs(shown),
            Err(e) => return Err(FsError::errno("setxattr", shown.text(), e)),
        }
    }
    let applied = opts
        .apply_mode_made(file.as_fd(), meta, xattrs, made)
        .map_err(|(op, e)| FsError::errno(op, shown.text(), e))?;
    stat::futimens(file.as_raw_fd(), &omit(), &timespec(meta))
        .map_err(|e| FsError::errno("utimes", shown.text(), e))?;
    if fsync {
        // Here, through the descriptor that wrote it: reopened at the
        // commit, a file of mode 0000 or 0200 could not be read.
        unistd::fsync(file.as_raw_fd()).map_err(|e| FsError::errno("fsync", shown.text(), e))?;
        super::super::durable::count_fsync();
    }
    Ok(applied)
}

impl Stager {
    /// Has the small fresh files of this stager written by the threads
    /// behind `writer` (see the module's text).
    pub fn set_writer(&mut self, writer: Writer) {
        self.writer = Some(writer);
    }

    /// Whether the fresh file of `size` bytes about to be made in the
    /// open parent is held instead ([`Held`]), with `mode` and `made`
    /// from [`Self::to_make`]: `None` when it is made now.
    pub(super) fn hold(&self, size: u64, mode: Mode, made: Option<Made>) -> Option<Box<Held>> {
        let held = self.writer.is_some()
            && size > 0
            && size <= HELD_MAX
            && (self.made_ok.is_some() || made.is_none())
            && self.room.0 >= ROOM_MIN
            && IN_FLIGHT.load(Ordering::Relaxed) < IN_FLIGHT_MAX;
        let dir = self.parent.as_ref().map(|(_, fd)| fd.clone())?;
        held.then(|| Box::new(Held { dir, mode, made }))
    }

    /// Stages the verified held file `inc` (crc32c `crc`) and hands it to
    /// a writer (see the module's text); written here, in the loop, when
    /// no writer takes it or the writers hold enough already. `Err` when
    /// its body is not all there (the shell did not give it whole).
    pub(super) fn finish_held(
        &mut self,
        mut inc: Incoming,
        held: Held,
        crc: u32,
    ) -> Result<(), FsError> {
        let body = inc.body.take().unwrap_or_default();
        if body.len() as u64 != inc.size {
            return Err(FsError::invalid(
                "write",
                inc.shown.text(),
                "the body was not received whole",
            ));
        }
        self.staged.push(Staged {
            id: inc.id,
            path: inc.path.clone(),
            tmp: inc.tmp.clone(),
            kind: EntryKind::File,
            meta: inc.meta,
            size: inc.size,
            inode: None,
        });
        self.writes.lock().pending += 1;
        let before = IN_FLIGHT.fetch_add(body.len() as u64, Ordering::Relaxed);
        let job = Box::new(WriteJob {
            writes: self.writes.clone(),
            path: inc.path,
            dir: held.dir,
            tmp: inc.tmp,
            mode: held.mode,
            made: held.made,
            body,
            meta: inc.meta,
            crc,
            xattrs: inc.xattrs.take(),
            opts: self.opts,
            fsync: self.fsyncs(),
            shown: inc.shown,
        });
        let back = match &self.writer {
            Some(w) if before < IN_FLIGHT_MAX => match w.send(WriterMsg::Write(job)) {
                Ok(()) => return Ok(()),
                // No writer left (the server stops): written here.
                Err(SendError(msg)) => msg,
            },
            _ => WriterMsg::Write(job),
        };
        if let WriterMsg::Write(job) = back {
            job.run();
        }
        Ok(())
    }

    /// Waits for this batch's writes (see the module's text); each file
    /// whose write failed leaves `staged` for `failures`.
    pub(in crate::io::store) fn settle_writes(
        &self,
        staged: &mut Vec<Staged>,
        failures: &mut Vec<super::super::CommitFailure>,
    ) {
        let (failed, left_out) = self.writes.settle();
        self.add_left_out(left_out);
        for (path, tmp, error) in failed {
            if let Some(i) = staged.iter().position(|s| s.path == path && s.tmp == tmp) {
                let s = staged.remove(i);
                failures.push(super::super::CommitFailure {
                    id: s.id,
                    path: s.path,
                    error,
                });
            }
        }
    }

    /// Waits until every file handed to a writer so far is made (their
    /// failures stay for the commit): a restore calls it before it gives
    /// a directory native attributes (see [`Stager::dir_xattrs`]), which a
    /// file created afterwards could inherit.
    pub(super) fn wait_writes(&self) {
        // A directory's last files can be in the batch handed over.
        self.handed_writes.wait();
        self.writes.wait();
    }

    /// Marks this batch's writes aborted and starts a new batch's; the
    /// aborted batch's, to wait for.
    pub(super) fn abort_writes(&mut self) -> Arc<Writes> {
        self.writes.abort();
        std::mem::take(&mut self.writes)
    }
}

impl Incoming {
    /// Whether its body is to be held in memory, not written to a file
    /// (see [`deferred`]): the shell receives it with
    /// [`crate::io::transfer::BodyReceiver::held`].
    pub fn holds_body(&self) -> bool {
        self.held.is_some()
    }

    /// The held body, whole, once it came in.
    pub fn give_body(&mut self, body: Vec<u8>) {
        self.body = Some(body);
    }
}

/// Writer threads, and where stagers send them files
/// ([`Stager::set_writer`]): the server's, for every connection, and a
/// restoring client's. Dropping the pool lets every file sent so far be
/// written and waits for the threads; a stager that sends one after that
/// writes it itself.
pub struct WriterPool {
    tx: Writer,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl WriterPool {
    /// Starts `n` writer threads (`rsb-write-N`).
    pub fn start(n: usize) -> std::io::Result<WriterPool> {
        let (tx, rx) = std::sync::mpsc::channel::<WriterMsg>();
        let rx = Arc::new(Mutex::new(rx));
        let mut pool = WriterPool {
            tx,
            threads: Vec::new(),
        };
        for i in 0..n {
            let rx = rx.clone();
            // On failure the threads started so far are stopped (drop).
            pool.threads.push(
                std::thread::Builder::new()
                    .name(format!("rsb-write-{i}"))
                    .spawn(move || writer_thread(&rx))?,
            );
        }
        Ok(pool)
    }

    /// Where to send files to these threads.
    pub fn writer(&self) -> Writer {
        self.tx.clone()
    }
}

impl Drop for WriterPool {
    fn drop(&mut self) {
        // Each thread ends at a stop, after the files sent before it.
        for _ in &self.threads {
            let _ = self.tx.send(WriterMsg::Stop);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A writer thread: writes the files it is sent until told to stop.
fn writer_thread(jobs: &Mutex<std::sync::mpsc::Receiver<WriterMsg>>) {
    loop {
        // The lock is held only while waiting for a job, never while one
        // runs, so the other writers pick up the next one meanwhile.
        let msg = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match msg {
            Ok(WriterMsg::Write(job)) => job.run(),
            Ok(WriterMsg::Stop) | Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::path::Path;
    use std::sync::mpsc::{self, Receiver};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;

    use super::super::tests::{meta, wp, write_all};
    use super::*;
    use crate::io::store::Namespace;
    use crate::proto::Layout;

    type Queue = Arc<Mutex<Receiver<WriterMsg>>>;

    /// A stager as the server makes one, sending to `writer`.
    fn server_stager(dir: &Path, writer: Writer) -> Stager {
        let opts = StageOptions {
            keep_partials: true,
            record_checksums: true,
            fake_super: true,
            keep_owners: true,
            ..StageOptions::default()
        };
        let mut s = Stager::new(Namespace::open_dir(dir).unwrap(), opts);
        s.set_writer(writer);
        s
    }

    fn writer() -> (Writer, Queue) {
        let (tx, rx) = mpsc::channel();
        (tx, Arc::new(Mutex::new(rx)))
    }

    fn start(q: &Queue) -> JoinHandle<()> {
        let q = q.clone();
        std::thread::spawn(move || writer_thread(&q))
    }

    fn stop(w: &Writer, t: JoinHandle<()>) {
        w.send(WriterMsg::Stop).unwrap();
        t.join().unwrap();
    }

    fn body(i: u32) -> Vec<u8> {
        (0..1000 + i * 37).map(|b| (b * 7 + i) as u8).collect()
    }

    /// Stages `path` with `body` as the server's shell does; whether it
    /// was held.
    fn stage(s: &mut Stager, id: u32, path: &str, data: &[u8]) -> bool {
        let m = meta(0o640, 1_000 + i64::from(id));
        let inc = s
            .begin_body(id, &wp(path), m, data.len() as u64, Layout::Dense)
            .unwrap();
        let held = inc.holds_body();
        if held {
            assert!(inc.file.is_none(), "a held file has no descriptor");
            inc.give_body(data.to_vec());
        } else {
            write_all(&inc.file, data);
        }
        s.finish_file(crc32c::crc32c(data)).unwrap();
        held
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn held_files_are_written_by_a_writer_and_committed_whole() {
        let t = tempfile::tempdir().unwrap();
        let (w, q) = writer();
        let thread = start(&q);
        let mut s = server_stager(t.path(), w.clone());
        let held: Vec<bool> = (1..=40)
            .map(|i| stage(&mut s, i, &format!("d{}/f{i}", i % 2), &body(i)))
            .collect();
        // The first fresh file is made in place: its fstat checks what
        // new files are made with; every later one is held.
        assert_eq!(held.iter().filter(|h| !**h).count(), 1, "{held:?}");
        assert!(!held[0]);
        let report = s.commit();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(report.committed.len(), 40);
        for i in 1..=40u32 {
            let p = t.path().join(format!("d{}/f{i}", i % 2));
            assert_eq!(std::fs::read(&p).unwrap(), body(i), "{}", p.display());
            let f = std::fs::File::open(&p).unwrap();
            let st = nix::sys::stat::fstat(f.as_raw_fd()).unwrap();
            assert_eq!(st.st_mtime, 1_000 + i64::from(i));
            assert_eq!(st.st_mtime_nsec, 123_456_789);
            let r = super::super::super::xattr::recorded(f.as_fd()).unwrap();
            if let Some(r) = r {
                assert_eq!(
                    (r.crc, r.size),
                    (crc32c::crc32c(&body(i)), body(i).len() as u64)
                );
            }
        }
        for d in ["d0", "d1"] {
            let tmp = names(&t.path().join(d));
            assert!(!tmp.iter().any(|n| n.starts_with(".rsb-tmp")), "{tmp:?}");
            assert_eq!(tmp.len(), 20);
        }
        stop(&w, thread);
    }

    #[test]
    fn a_held_write_that_fails_is_a_failure_of_the_commit_alone() {
        let t = tempfile::tempdir().unwrap();
        // Stored directories (new ones would be built hidden).
        std::fs::create_dir(t.path().join("a")).unwrap();
        std::fs::create_dir(t.path().join("b")).unwrap();
        let (w, q) = writer();
        let mut s = server_stager(t.path(), w.clone());
        assert!(!stage(&mut s, 1, "a/first", &body(1)));
        assert!(stage(&mut s, 2, "a/kept", &body(2)));
        assert!(stage(&mut s, 3, "b/lost", &body(3)));
        assert!(stage(&mut s, 4, "b/lost2", &body(4)));
        // The writer has not run: b holds no name yet, and goes.
        std::fs::remove_dir(t.path().join("b")).unwrap();
        let thread = start(&q);
        let report = s.commit();
        let mut failed: Vec<_> = report
            .failures
            .iter()
            .map(|f| (f.id, f.path.to_string()))
            .collect();
        failed.sort();
        assert_eq!(
            failed,
            vec![(3, "/b/lost".to_string()), (4, "/b/lost2".to_string())]
        );
        for f in &report.failures {
            assert_eq!(
                f.error.raw_os_error(),
                Some(nix::libc::ENOENT),
                "{}",
                f.error
            );
        }
        assert_eq!(std::fs::read(t.path().join("a/first")).unwrap(), body(1));
        assert_eq!(std::fs::read(t.path().join("a/kept")).unwrap(), body(2));
        assert_eq!(names(&t.path().join("a")), vec!["first", "kept"]);
        assert!(!t.path().join("b").exists());
        stop(&w, thread);
    }

    #[test]
    fn an_abort_leaves_no_file_of_a_write_done_or_queued() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        std::fs::write(t.path().join("d/f2"), b"old").unwrap();
        let (w, q) = writer();
        let thread = start(&q);
        let mut s = server_stager(t.path(), w.clone());
        assert!(!stage(&mut s, 1, "d/f1", &body(1)));
        for i in 2..=10 {
            assert!(stage(&mut s, i, &format!("d/f{i}"), &body(i)));
        }
        // Written, under their temporary names.
        let _ = s.writes.settle();
        stop(&w, thread);
        assert_eq!(names(&t.path().join("d")).len(), 11);
        // Queued, with no writer to take them yet.
        for i in 11..=20 {
            assert!(stage(&mut s, i, &format!("d/f{i}"), &body(i)));
        }
        s.abort();
        let thread = start(&q);
        stop(&w, thread);
        assert_eq!(names(&t.path().join("d")), vec!["f2"]);
        assert_eq!(std::fs::read(t.path().join("d/f2")).unwrap(), b"old");
        // The stager goes on with a batch of its own.
        let thread = start(&q);
        assert!(stage(&mut s, 21, "d/f21", &body(21)));
        assert!(s.commit().failures.is_empty());
        assert_eq!(names(&t.path().join("d")), vec!["f2", "f21"]);
        stop(&w, thread);
    }
}
