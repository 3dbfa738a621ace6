//! A restore's commits on a thread of their own: while one batch is made
//! durable and put in place (a `syncfs` and a rename per file), the
//! restore goes on receiving the next one into its stager, as the
//! server does for a backup (`store/stage/batch.rs`). One batch out at a
//! time, in order: the next commit waits for the one before, and so does
//! the end of the restore, which reports every failure.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;

use super::report::Reporter;
use crate::io::store::{CommitReport, Stager};

/// A batch handed over, and what its commit did.
type Committed = (Box<Stager>, CommitReport);

/// The commit thread of one restore, and the batch it has, if any.
pub struct Committer {
    /// `None` when the thread could not be made: commits are then made
    /// in place.
    to: Option<Sender<Box<Stager>>>,
    from: Option<Receiver<Committed>>,
    thread: Option<JoinHandle<()>>,
    /// A batch is with the thread.
    out: bool,
}

impl Committer {
    /// A committer with its thread (or, when no thread can be made, one
    /// that commits in place).
    pub fn new() -> Committer {
        let (to, batches) = channel::<Box<Stager>>();
        let (done, from) = channel::<Committed>();
        let thread = std::thread::Builder::new()
            .name("rsb-commit".into())
            .spawn(move || {
                for mut batch in batches {
                    if let Some(d) = crate::io::worker::test_commit_delay() {
                        std::thread::sleep(d);
                    }
                    let report = batch.commit();
                    if done.send((batch, report)).is_err() {
                        return;
                    }
                }
            })
            .ok();
        let (to, from) = match thread {
            Some(_) => (Some(to), Some(from)),
            None => (None, None),
        };
        Committer {
            to,
            from,
            thread,
            out: false,
        }
    }

    /// Commits what `stager` staged: on the thread, once the batch before
    /// is in (its failures reported), while the caller receives the next
    /// one; in place when there is no thread or the batch cannot be taken
    /// from the stager.
    pub fn commit(&mut self, stager: &mut Stager, rep: &mut Reporter) {
        self.wait(stager, rep);
        if let Some(to) = &self.to {
            if let Ok(Some(batch)) = stager.take_batch() {
                match to.send(batch) {
                    Ok(()) => self.out = true,
                    // The thread is gone: the batch is committed here.
                    Err(back) => {
                        let mut batch = back.0;
                        let report = batch.commit();
                        stager.after_batch(&batch);
                        report_failures(report, rep);
                    }
                }
                return;
            }
        }
        report_failures(stager.commit(), rep);
    }

    /// Waits for the batch with the thread, if any, and reports its
    /// failures.
    pub fn wait(&mut self, stager: &mut Stager, rep: &mut Reporter) {
        if !std::mem::take(&mut self.out) {
            return;
        }
        match self.from.as_ref().map(Receiver::recv) {
            Some(Ok((batch, report))) => {
                stager.after_batch(&batch);
                report_failures(report, rep);
            }
            _ => rep.fail(
                "commit",
                "the commit thread ended before the batch was in place",
            ),
        }
    }
}

impl Default for Committer {
    fn default() -> Committer {
        Committer::new()
    }
}

impl Drop for Committer {
    /// Ends the thread once it has committed what it has.
    fn drop(&mut self) {
        self.to = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Each entry a commit could not put in place, to the user.
fn report_failures(report: CommitReport, rep: &mut Reporter) {
    for f in report.failures {
        rep.fail(
            &f.error.path,
            &format!("{} failed: {}", f.error.op, f.error.cause()),
        );
    }
}
