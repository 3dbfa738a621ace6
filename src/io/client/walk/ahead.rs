//! A second pair of hands for the walk. While the walk takes a directory's
//! names from the front, a helper thread looks at them from the back: the
//! `lstat` and the extended attributes, the two calls per entry that are
//! most of an unchanged backup's time (the rest of the client's work and
//! the server's both wait on them). The calls of one directory then run
//! on two cores.
//!
//! Everything else stays with the walk: it takes the names in order,
//! uses what the helper found for a name it reaches, and looks at a name
//! itself when the helper has not taken it yet, so it never waits for
//! work nobody started (only, at most once per run of the helper, for the
//! few names, [`CLAIM`] at most, the helper is in the middle of). What the walk yields, and in
//! which order, does not change; a name is looked at once, by one of the
//! two, a few microseconds earlier than the walk alone would have.
//!
//! Only directories of [`AHEAD_MIN`] names or more are shared, and the
//! helper looks at most [`WINDOW`] names past the walk's position (one
//! result per name in the window: memory stays bounded by the tree's
//! depth). The innermost directory goes first, since the walk needs its
//! names before the rest of its parent's. On one core, or without a
//! thread, there is no helper and the walk looks at every name itself.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use nix::sys::stat::FileStat;

use super::{excluded_below, lstat, read_xattrs, At, XattrRead};
use crate::client::exclude::Excludes;
use crate::proto::WirePath;

/// Names a directory needs for the helper to take part.
pub const AHEAD_MIN: usize = 32;

/// Names past the walk's position the helper may look at.
const WINDOW: usize = 256;

/// Unclaimed names in the window before the walk wakes an idle helper (a
/// wake-up per name would cost more than the name).
const WAKE_AFTER: usize = WINDOW / 4;

/// Names the helper takes, and gives back, under one lock.
const CLAIM: usize = 8;

/// How often a walk waiting for the helper checks that it is still there.
const HELPER_GONE_CHECK: std::time::Duration = std::time::Duration::from_millis(200);

/// What a name was found to be: the `lstat`, and the extended attributes
/// when its kind keeps them (`None`: not read, the walk reads them if it
/// needs them).
#[derive(Debug)]
pub struct Looked {
    pub md: io::Result<FileStat>,
    pub xattrs: Option<XattrRead>,
}

/// The names of a directory the patterns exclude, as the walk decides it
/// (so the helper does not look at what the walk would not).
#[derive(Debug)]
pub struct Skip {
    pub patterns: Arc<Excludes>,
    /// The directory's wire path.
    pub wire: WirePath,
    /// Where the path relative to the patterns' base starts.
    pub rel_start: usize,
}

impl Skip {
    fn excluded(&self, name: &OsStr, is_dir: bool) -> bool {
        use std::os::unix::ffi::OsStrExt;
        self.wire
            .join(name.as_bytes())
            .is_ok_and(|w| excluded_below(&self.patterns, &w, self.rel_start, is_dir))
    }
}

/// One name's place in the window.
#[derive(Debug)]
enum Slot {
    /// Nobody took it: the walk looks at it itself when it gets there.
    Free,
    /// The helper is looking at it.
    Looking,
    /// The helper looked (`None`: a name the patterns exclude, not looked at).
    Done(Option<Looked>),
}

/// A directory shared with the helper.
#[derive(Debug)]
struct Job {
    id: u64,
    names: Arc<[OsString]>,
    /// A descriptor of the directory (its own, opened anew), or `None`: by path.
    dir: Option<Arc<OwnedFd>>,
    local: Arc<Path>,
    skip: Option<Arc<Skip>>,
    /// The next name the walk takes.
    base: usize,
    /// The helper's run goes down from `next` (exclusive) to `floor`.
    next: usize,
    floor: usize,
    /// One past the highest name the helper ever took.
    high: usize,
    /// `slots[k]` is name `base + k`; at most [`WINDOW`].
    slots: VecDeque<Slot>,
}

impl Job {
    fn end(&self) -> usize {
        self.base + self.slots.len()
    }

    /// The helper takes the highest free name of its run; a run ends where
    /// it meets the walk, and the next one starts at the window's end.
    fn claim(&mut self) -> Option<usize> {
        if self.next <= self.floor.max(self.base) {
            let end = self.end();
            if self.high >= end {
                return None;
            }
            self.floor = self.high.max(self.base);
            self.next = end;
            self.high = end;
        }
        if self.next <= self.floor.max(self.base) {
            return None;
        }
        let j = self.next - 1;
        let slot = self.slots.get_mut(j - self.base)?;
        if !matches!(slot, Slot::Free) {
            return None;
        }
        *slot = Slot::Looking;
        self.next = j;
        Some(j)
    }

    /// The helper's result for name `j` (`Free`: it gives the name back).
    fn put(&mut self, j: usize, result: Slot) {
        if let Some(slot) = j.checked_sub(self.base).and_then(|k| self.slots.get_mut(k)) {
            *slot = result;
        }
    }

    /// Moves the walk past its name; true when the window grew by enough
    /// unclaimed names to wake an idle helper.
    fn advance(&mut self) -> bool {
        self.slots.pop_front();
        self.base += 1;
        if self.end() < self.names.len() {
            self.slots.push_back(Slot::Free);
        }
        self.end() >= self.high + WAKE_AFTER
    }
}

#[derive(Debug, Default)]
struct Shared {
    /// Innermost last.
    jobs: Vec<Job>,
    /// The helper waits for work.
    idle: bool,
    /// The walk waits for the helper.
    waiting: bool,
    /// The walk is gone: the helper ends.
    gone: bool,
    last_id: u64,
}

#[derive(Debug, Default)]
struct State {
    shared: Mutex<Shared>,
    /// The helper waits on it.
    work: Condvar,
    /// The walk waits on it.
    done: Condvar,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A helper that panicked mid-look left nothing half-written that
        // matters: every slot is whole.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the walk asked for one of its names.
pub enum Take {
    /// Nobody looked: the walk looks itself.
    Yours,
    /// The helper looked (`None`: excluded, not looked at).
    Found(Option<Looked>),
}

/// The walk's end of the helper; dropping it ends the helper.
#[derive(Debug)]
pub struct Ahead {
    state: Arc<State>,
}

impl Ahead {
    /// A helper on a thread of its own, or `None` on one core or when no
    /// thread can be had.
    pub fn start() -> Option<Ahead> {
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            return None;
        }
        let state = Arc::new(State::default());
        let theirs = Arc::clone(&state);
        match std::thread::Builder::new()
            .name("walk-ahead".into())
            .spawn(move || help(&theirs))
        {
            Ok(_) => Some(Ahead { state }),
            Err(e) => {
                log::debug!("walking alone: no thread to look ahead ({e})");
                None
            }
        }
    }

    /// Shares a directory's sorted `names` (read through `dir`, or by path
    /// below `local`); its id for [`Ahead::take`] and [`Ahead::finish`].
    pub fn share(
        &self,
        names: Arc<[OsString]>,
        dir: Option<OwnedFd>,
        local: &Path,
        skip: Option<Arc<Skip>>,
    ) -> u64 {
        let mut g = self.state.lock();
        g.last_id += 1;
        let id = g.last_id;
        let width = names.len().min(WINDOW);
        g.jobs.push(Job {
            id,
            names,
            dir: dir.map(Arc::new),
            local: Arc::from(local),
            skip,
            base: 0,
            next: 0,
            floor: 0,
            high: 0,
            slots: (0..width).map(|_| Slot::Free).collect(),
        });
        if g.idle {
            self.state.work.notify_one();
        }
        id
    }

    /// The walk takes the next name of directory `id` (names are taken in
    /// order, each once, excluded ones too). `ready` holds what the helper
    /// found for the names after it, taken under the same lock: the next
    /// takes come from there without one.
    pub fn take(&self, id: u64, ready: &mut VecDeque<Option<Looked>>) -> Take {
        if let Some(looked) = ready.pop_front() {
            return Take::Found(looked);
        }
        let mut g = self.state.lock();
        loop {
            let Some(job) = g.jobs.iter_mut().rev().find(|j| j.id == id) else {
                return Take::Yours;
            };
            let taken = match job.slots.front_mut() {
                None | Some(Slot::Free) => Take::Yours,
                Some(Slot::Looking) if Arc::strong_count(&self.state) == 1 => {
                    // The helper is gone in the middle of a look (a panic
                    // outside the look itself): the name is the walk's.
                    Take::Yours
                }
                Some(Slot::Looking) => {
                    g.waiting = true;
                    g = match self.state.done.wait_timeout(g, HELPER_GONE_CHECK) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    };
                    g.waiting = false;
                    continue;
                }
                Some(Slot::Done(_)) => {
                    let mut wake = false;
                    while let Some(Slot::Done(_)) = job.slots.front() {
                        if let Some(Slot::Done(looked)) = job
                            .slots
                            .front_mut()
                            .map(|s| std::mem::replace(s, Slot::Free))
                        {
                            ready.push_back(looked);
                        }
                        wake |= job.advance();
                    }
                    if wake && g.idle {
                        self.state.work.notify_one();
                    }
                    return ready.pop_front().map_or(Take::Yours, Take::Found);
                }
            };
            let wake = job.advance();
            if wake && g.idle {
                self.state.work.notify_one();
            }
            return taken;
        }
    }

    /// The walk is done with directory `id`.
    pub fn finish(&self, id: u64) {
        self.state.lock().jobs.retain(|j| j.id != id);
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.state.lock().gone = true;
        self.state.work.notify_one();
    }
}

/// The helper: looks at the highest free name of the innermost directory
/// that has one, until the walk is gone.
fn help(state: &State) {
    loop {
        let mut g = state.lock();
        let mut claimed = Vec::with_capacity(CLAIM);
        let (id, names, dir, local, skip) = loop {
            if g.gone {
                return;
            }
            let picked = g.jobs.iter_mut().rev().find_map(|job| {
                let first = job.claim()?;
                Some((job, first))
            });
            if let Some((job, first)) = picked {
                claimed.push(first);
                while claimed.len() < CLAIM {
                    match job.claim() {
                        Some(j) => claimed.push(j),
                        None => break,
                    }
                }
                break (
                    job.id,
                    Arc::clone(&job.names),
                    job.dir.clone(),
                    Arc::clone(&job.local),
                    job.skip.clone(),
                );
            }
            g.idle = true;
            g = state.work.wait(g).unwrap_or_else(|p| p.into_inner());
            g.idle = false;
        };
        drop(g);
        // A look that panicked (a bug) gives the name back to the walk
        // rather than leave it waiting for it.
        let looked: Vec<(usize, Slot)> = claimed
            .iter()
            .map(|&j| {
                let l = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    names
                        .get(j)
                        .and_then(|name| look(dir.as_deref(), &local, name, skip.as_deref()))
                }));
                (j, l.map_or(Slot::Free, Slot::Done))
            })
            .collect();
        let mut g = state.lock();
        if let Some(job) = g.jobs.iter_mut().rev().find(|job| job.id == id) {
            for (j, slot) in looked {
                job.put(j, slot);
            }
        }
        if g.waiting {
            state.done.notify_one();
        }
    }
}

/// Looks at `name` in `local` (through `dir` when open) as the walk would:
/// `None` for a name the patterns exclude whatever it is; a directory the
/// patterns exclude is `lstat`ed but its attributes are not read.
fn look(
    dir: Option<&OwnedFd>,
    local: &Path,
    name: &OsString,
    skip: Option<&Skip>,
) -> Option<Looked> {
    if skip.is_some_and(|s| s.excluded(name, false)) {
        return None;
    }
    let path: PathBuf = local.join(name);
    let at = match dir {
        Some(fd) => At::Name(fd.as_raw_fd(), name),
        None => At::Path,
    };
    let md = lstat(at, &path);
    let xattrs = match &md {
        Ok(md) => match crate::io::kind_of_mode(md.st_mode) {
            Some(kind) if crate::proto::codec::has_xattrs(kind) => {
                let excluded_dir = kind == crate::proto::EntryKind::Dir
                    && skip.is_some_and(|s| s.excluded(name, true));
                (!excluded_dir).then(|| read_xattrs(at, &path))
            }
            _ => None,
        },
        Err(_) => None,
    };
    Some(Looked { md, xattrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(n: usize) -> Job {
        Job {
            id: 1,
            names: (0..n).map(|i| OsString::from(format!("n{i}"))).collect(),
            dir: None,
            local: Arc::from(Path::new("/")),
            skip: None,
            base: 0,
            next: 0,
            floor: 0,
            high: 0,
            slots: (0..n.min(WINDOW)).map(|_| Slot::Free).collect(),
        }
    }

    fn found() -> Option<Looked> {
        Some(Looked {
            md: Err(io::Error::from(io::ErrorKind::NotFound)),
            xattrs: None,
        })
    }

    /// Takes name `base` as the walk does: true when the helper had it.
    fn walk_takes(j: &mut Job) -> bool {
        let helped = match j.slots.front_mut() {
            Some(Slot::Done(_)) => true,
            Some(Slot::Free) | None => false,
            Some(Slot::Looking) => panic!("the walk would wait for name {}", j.base),
        };
        j.advance();
        helped
    }

    #[test]
    fn the_helper_goes_down_from_the_top_and_stops_where_it_meets_the_walk() {
        let mut j = job(10);
        // The walk takes 0 and 1 itself, the helper 9 down to 5.
        assert!(!walk_takes(&mut j));
        assert!(!walk_takes(&mut j));
        for want in (5..10).rev() {
            assert_eq!(j.claim(), Some(want));
            j.put(want, Slot::Done(found()));
        }
        // The walk takes 2, 3, 4 itself: free, the helper did not take them.
        for _ in 2..5 {
            assert!(!walk_takes(&mut j));
        }
        // The helper's run has met the walk: nothing more to take.
        assert_eq!(j.claim(), None);
        for _ in 5..10 {
            assert!(walk_takes(&mut j));
        }
        assert_eq!(j.claim(), None);
        assert_eq!(j.base, 10);
        assert!(j.slots.is_empty());
    }

    #[test]
    fn every_name_is_looked_at_once_by_one_of_the_two_in_a_directory_wider_than_the_window() {
        let n = WINDOW * 3 + 17;
        let mut j = job(n);
        let mut by_helper = vec![false; n];
        let mut by_walk = vec![false; n];
        // The helper runs two claims per name the walk takes, so it gets
        // ahead, runs into the window's end and starts new runs.
        while j.base < n {
            for _ in 0..2 {
                if let Some(k) = j.claim() {
                    assert!(!by_helper[k] && !by_walk[k], "name {k} taken twice");
                    by_helper[k] = true;
                    j.put(k, Slot::Done(found()));
                }
            }
            let k = j.base;
            assert!(k < j.end() || j.slots.is_empty());
            if !walk_takes(&mut j) {
                assert!(
                    !by_helper[k],
                    "name {k}: the helper had it, the walk did not see it"
                );
                by_walk[k] = true;
            }
            assert!(j.slots.len() <= WINDOW);
        }
        for k in 0..n {
            assert!(
                by_helper[k] != by_walk[k],
                "name {k}: helper {} walk {}",
                by_helper[k],
                by_walk[k]
            );
        }
        assert!(by_helper.iter().filter(|h| **h).count() > n / 2);
        assert_eq!(j.claim(), None);
    }

    #[test]
    fn the_helper_never_takes_a_name_the_walk_passed() {
        let mut j = job(40);
        for _ in 0..30 {
            walk_takes(&mut j);
        }
        let mut taken = Vec::new();
        while let Some(k) = j.claim() {
            taken.push(k);
            j.put(k, Slot::Done(found()));
        }
        assert_eq!(taken, (30..40).rev().collect::<Vec<_>>());
    }

    #[test]
    fn on_a_thread_every_name_comes_back_in_order_and_a_dropped_walk_ends_the_helper() {
        let Some(ahead) = Ahead::start() else {
            eprintln!("skipped: one core, no helper");
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let n = WINDOW * 2 + 5;
        let names: Arc<[OsString]> = (0..n)
            .map(|i| OsString::from(format!("f{i:04}")))
            .collect::<Vec<_>>()
            .into();
        for (i, name) in names.iter().enumerate() {
            std::fs::write(tmp.path().join(name), vec![0u8; i]).unwrap();
        }
        let dir = std::fs::File::open(tmp.path()).unwrap();
        let id = ahead.share(
            Arc::clone(&names),
            Some(OwnedFd::from(dir)),
            tmp.path(),
            None,
        );
        let mut found = 0;
        let mut ready = VecDeque::new();
        for i in 0..n {
            // A walk slower than the helper (as one that also builds and
            // sends entries is), so the helper has names to take.
            std::thread::sleep(std::time::Duration::from_micros(100));
            match ahead.take(id, &mut ready) {
                Take::Found(Some(l)) => {
                    assert_eq!(l.md.unwrap().st_size, i as i64, "name {i}");
                    found += 1;
                }
                Take::Found(None) => panic!("name {i}: nothing excludes it"),
                Take::Yours => {}
            }
        }
        ahead.finish(id);
        eprintln!("{found} of {n} looked at by the helper");
        assert!(found > 0, "the helper looked at nothing");
        // A walk that stops in the middle of a wide directory: dropping it
        // ends the helper, whatever it was doing.
        let dir = std::fs::File::open(tmp.path()).unwrap();
        let id = ahead.share(names, Some(OwnedFd::from(dir)), tmp.path(), None);
        let mut ready = VecDeque::new();
        for _ in 0..3 {
            let _ = ahead.take(id, &mut ready);
        }
        let state = Arc::clone(&ahead.state);
        drop(ahead);
        let t0 = std::time::Instant::now();
        while Arc::strong_count(&state) > 1 {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "the helper did not end"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn a_walk_waiting_for_a_helper_that_is_gone_looks_itself() {
        // A name left `Looking` by a helper that died outside its look.
        let state = Arc::new(State::default());
        let mut j = job(3);
        assert_eq!(j.claim(), Some(2));
        assert_eq!(j.claim(), Some(1));
        assert_eq!(j.claim(), Some(0));
        state.lock().jobs.push(j);
        let ahead = Ahead { state };
        let mut ready = VecDeque::new();
        for _ in 0..3 {
            assert!(matches!(ahead.take(1, &mut ready), Take::Yours));
        }
    }
}
