//! The options a [`super::Stager`] is made with: what kind of tree it
//! writes (the server's store or a restore's destination) and so what it
//! keeps beside each entry. Only the flags: their effects live where each
//! step is done.

/// How a stager writes; fixed when it is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageOptions {
    /// Large files being received survive the end of the connection, to be
    /// resumed (the server's store and the client's restore alike).
    pub keep_partials: bool,
    /// Apply the mode and mtime of the tree's own root directory.
    pub keep_root_meta: bool,
    /// Record each file's crc32c beside it (the server's store; see
    /// [`crate::store::record`]).
    pub record_checksums: bool,
    /// [`Stager::resume_file`] leaves the crc32c of the kept bytes to the
    /// caller ([`Incoming::prefix_pending`]): the server has a worker read
    /// them, not its event loop.
    pub defer_prefix_crc: bool,
    /// Keep each entry's real mode in its metadata record where the mode
    /// on disk differs, and store with the owner access a server that is
    /// not root needs (the server's store; see [`crate::store::modes`]).
    pub fake_super: bool,
    /// Clear the set-user-ID and set-group-ID bits (a restore that does
    /// not give entries their owners back), counting each entry
    /// ([`Stager::setid_cleared`]).
    pub clear_setid: bool,
    /// Keep each entry's owner and group (the server's store): as root on
    /// the stored entry itself, else in its metadata record; the names
    /// the client sent ([`Stager::learn_names`]) go into the record.
    pub keep_owners: bool,
    /// Give each entry the owner and group in its meta (a restore, ids
    /// already mapped to this machine's): where that is refused (not
    /// root), the entry keeps the restorer's and loses its set-id bits,
    /// and is counted ([`Stager::owners_kept`]).
    pub set_owners: bool,
    /// Keep every entry a commit replaces in the namespace's history
    /// (the server's store; see [`crate::store::history`]).
    pub keep_history: bool,
}
