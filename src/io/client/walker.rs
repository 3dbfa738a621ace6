//! The walks of a backup, run on a thread of their own so that the
//! system calls of the walk (`fstatat`, `listxattrat`, `getdents`: most
//! of the time of a backup of an unchanged tree) overlap with the loop's
//! planning, encoding and sending, on another core.
//!
//! The thread only walks; what it finds reaches the loop in batches
//! through a bounded channel, so it runs at most a few batches ahead
//! (memory bounded) and stops as soon as the loop drops the [`Walker`]
//! (a lost connection). It decides nothing, reports nothing and touches
//! no connection. If no thread can be started, the same walks run inline.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::walk::{walk_root, Root, Walk, WalkItem, WalkOptions};

/// What the walks yield, in order.
#[derive(Debug)]
pub enum Step {
    /// The next item of the current path's walk.
    Item(WalkItem),
    /// The current path's walk is done; the next path's follows.
    EndWalk,
}

/// Items sent to the loop at once (the first batch is smaller, so the
/// first manifest leaves early).
const BATCH: usize = 256;
const FIRST_BATCH: usize = 16;

/// Batches in the channel at most.
const BATCHES_AHEAD: usize = 4;

/// The walks of the paths of one `backup`, one after the other.
#[derive(Debug)]
pub enum Walker {
    /// On a thread.
    Thread {
        /// Batches from the thread; the last one ends with `None`.
        rx: Receiver<Vec<Option<Step>>>,
        /// The batch being read.
        batch: std::vec::IntoIter<Option<Step>>,
        /// The thread said it was done (or it is gone).
        finished: bool,
        /// The thread, never joined: dropping `rx` stops it.
        thread: std::thread::JoinHandle<()>,
    },
    /// Inline, when no thread could be started.
    Inline {
        /// The walks still to run.
        walks: std::vec::IntoIter<Walk>,
        /// The walk running (boxed: a walk is far larger than a thread's
        /// handle).
        current: Option<Box<Walk>>,
    },
}

impl Walker {
    /// Starts the walks of `paths`.
    pub fn new(paths: &[Root], opts: WalkOptions) -> Walker {
        let (tx, rx) = sync_channel(BATCHES_AHEAD);
        let owned = paths.to_vec();
        let theirs = opts.clone();
        let spawned = std::thread::Builder::new()
            .name("walk".into())
            .spawn(move || run(&owned, &theirs, &tx));
        match spawned {
            Ok(thread) => Walker::Thread {
                rx,
                batch: Vec::new().into_iter(),
                finished: false,
                thread,
            },
            Err(e) => {
                log::warn!("walking in the loop: no thread for the walk ({e})");
                let mut walks = walks_of(paths, &opts);
                let current = walks.next().map(Box::new);
                Walker::Inline { walks, current }
            }
        }
    }
}

impl Iterator for Walker {
    type Item = Step;

    /// The next step, `None` when every walk is done.
    fn next(&mut self) -> Option<Step> {
        match self {
            Walker::Thread {
                rx,
                batch,
                finished,
                ..
            } => loop {
                if let Some(step) = batch.next() {
                    return match step {
                        Some(step) => Some(step),
                        None => {
                            *finished = true;
                            None
                        }
                    };
                }
                if *finished {
                    return None;
                }
                match rx.recv() {
                    Ok(b) => *batch = b.into_iter(),
                    Err(_) => {
                        // The thread is gone without saying it was done:
                        // it panicked. What it walked no further is not
                        // backed up, and is said to be.
                        *finished = true;
                        return Some(Step::Item(WalkItem::Error {
                            path: std::path::PathBuf::from("/"),
                            error: std::io::Error::other("the walk stopped unexpectedly"),
                        }));
                    }
                }
            },
            Walker::Inline { walks, current } => {
                let walk = current.as_mut()?;
                match walk.next() {
                    Some(item) => Some(Step::Item(item)),
                    None => {
                        *current = walks.next().map(Box::new);
                        Some(Step::EndWalk)
                    }
                }
            }
        }
    }
}

fn walks_of(paths: &[Root], opts: &WalkOptions) -> std::vec::IntoIter<Walk> {
    paths
        .iter()
        .map(|p| walk_root(p, opts.clone()))
        .collect::<Vec<_>>()
        .into_iter()
}

/// The thread: every walk in batches, then `None`; returns early when
/// the loop hung up.
fn run(paths: &[Root], opts: &WalkOptions, tx: &SyncSender<Vec<Option<Step>>>) {
    let mut batch = Vec::with_capacity(FIRST_BATCH);
    let mut size = FIRST_BATCH;
    for walk in walks_of(paths, opts) {
        for item in walk.map(Step::Item).chain(std::iter::once(Step::EndWalk)) {
            batch.push(Some(item));
            if batch.len() >= size {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if tx.send(full).is_err() {
                    return;
                }
                size = BATCH;
            }
        }
    }
    batch.push(None);
    // The loop may have hung up already: nothing to tell it then.
    let _ = tx.send(batch);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step of a walker, rendered.
    fn steps(w: Walker) -> Vec<String> {
        w.map(|s| match s {
            Step::Item(WalkItem::Entry(e)) => e.local.display().to_string(),
            Step::Item(other) => format!("{other:?}"),
            Step::EndWalk => "end".into(),
        })
        .collect()
    }

    #[test]
    fn the_thread_yields_what_the_walks_yield_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::create_dir(&a).expect("mkdir");
        std::fs::create_dir(&b).expect("mkdir");
        // More than a batch, so that several cross the channel.
        for i in 0..(BATCH + FIRST_BATCH + 3) {
            std::fs::write(a.join(format!("f{i:04}")), b"x").expect("write");
        }
        std::fs::write(b.join("only"), b"y").expect("write");
        let paths: Vec<Root> = [a.clone(), b.clone(), dir.path().join("missing")]
            .into_iter()
            .map(Root::tree)
            .collect();
        let opts = WalkOptions::default();
        let threaded = steps(Walker::new(&paths, opts.clone()));
        let mut walks = walks_of(&paths, &opts);
        let current = walks.next().map(Box::new);
        let inline = steps(Walker::Inline { walks, current });
        assert_eq!(threaded, inline);
        let files = threaded.iter().filter(|s| s.contains("/a/f")).count();
        assert_eq!(files, BATCH + FIRST_BATCH + 3);
        assert!(threaded.iter().any(|s| s.contains("missing")));
        assert_eq!(threaded.iter().filter(|s| *s == "end").count(), 3);
        assert!(threaded.contains(&b.join("only").display().to_string()));
    }

    #[test]
    fn dropping_the_walker_stops_the_thread() {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 0..(BATCH * (BATCHES_AHEAD + 3)) {
            std::fs::write(dir.path().join(format!("f{i:05}")), b"").expect("write");
        }
        let mut w = Walker::new(&[Root::tree(dir.path())], WalkOptions::default());
        assert!(w.next().is_some());
        let Walker::Thread { rx, thread, .. } = w else {
            panic!("no walk thread");
        };
        // Give the thread time to fill the channel and block on it.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            !thread.is_finished(),
            "the walk ran on although nobody read"
        );
        drop(rx);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !thread.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(thread.is_finished(), "the walk thread outlived its walker");
    }
}
