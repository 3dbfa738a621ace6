//! A batch handed over to be committed while the next one is staged: the
//! server's connection commits on a worker and goes on reading the
//! client's next entries into its own stager meanwhile, so the commit's
//! `syncfs` and renames overlap the next batch's bodies instead of
//! stopping the connection (10,000 small files: ten commits of about
//! 45 ms each, a third of the push, with both cores otherwise idle). A
//! batch of small files only: one holding a large file is committed
//! before the next body, as before ([`Stager::take_batch`]).
//!
//! The batch's stager is the connection's as a second connection of the
//! same client name would have it: the same namespace (through a
//! descriptor of its own), options and owner names, with the staged
//! entries, links, updates, directories and deletions of the batch. The
//! connection's stager keeps what it learned of the directories and the
//! file system (the manifest checks' missing directories, the mode
//! prediction, the free space). Commits of one connection still land in
//! order: a second `Commit` waits for the first (`rsb_conn/jobs.rs`).
//! A restoring client does the same on a thread of its own
//! (`io/client/committer.rs`).
//! Part of [`super`], split off for length.

use super::{FsError, Stager};
use crate::store::resume::RESUME_MIN;

impl Stager {
    /// The staged batch in a stager of its own, to commit while this one
    /// stages the next batch (see the module's text); this one is left
    /// with nothing pending. `None`, and the batch is committed as it
    /// stands before anything more is received, when it holds a large
    /// file (one of [`RESUME_MIN`] or more, which a cut transfer resumes):
    /// a kill while the next body arrives then still finds it in place,
    /// and the re-run resumes the next file instead of sending this one
    /// again; also while a body is coming in or an entry's attributes
    /// wait for it (the session never commits then). `Err` when the
    /// namespace cannot be opened again (no descriptor left): the batch
    /// is committed as it stands too.
    pub fn take_batch(&mut self) -> Result<Option<Box<Stager>>, FsError> {
        let large = self.staged.iter().any(|s| s.size >= RESUME_MIN);
        if large || self.incoming.is_some() || self.xattrs.is_some() {
            return Ok(None);
        }
        let mut batch = Stager::new(self.ns.try_clone()?, self.opts);
        batch.staged = std::mem::take(&mut self.staged);
        batch.links = std::mem::take(&mut self.links);
        batch.updates = std::mem::take(&mut self.updates);
        batch.dirs = std::mem::take(&mut self.dirs);
        batch.deletes = std::mem::take(&mut self.deletes);
        batch.displaced = std::mem::take(&mut self.displaced);
        // The next batch reaches its new directories until they are in.
        self.hand_over(&batch.displaced);
        batch.touched = std::mem::take(&mut self.touched);
        batch.names = self.names.clone();
        batch.saved_names = self.saved_names.clone();
        batch.fsync_files = self.fsync_files.clone();
        // Its held files' writes go with it; the next batch's are new.
        batch.writes = std::mem::take(&mut self.writes);
        self.handed_writes = batch.writes.clone();
        // The commit may move a directory this one holds open into
        // history (a type change): the next entry opens its own again.
        self.parent = None;
        Ok(Some(Box::new(batch)))
    }

    /// Takes back from a committed batch's stager ([`Stager::take_batch`])
    /// the owner-name table its commit saved, so that the next commit
    /// does not write the same names again, and what its commit counted
    /// as left out (a restore's notices at the end).
    pub fn after_batch(&mut self, batch: &Stager) {
        if batch.saved_names.is_some() {
            self.saved_names = batch.saved_names.clone();
        }
        self.add_left_out(batch.left_out.get());
    }

    /// Adds counts of what was left out (see [`Stager::count`]) to this
    /// stager's.
    pub(super) fn add_left_out(&self, counts: [u32; 3]) {
        let mut mine = self.left_out.get();
        for (m, b) in mine.iter_mut().zip(counts) {
            *m = m.saturating_add(b);
        }
        self.left_out.set(mine);
    }
}
