//! What a stager holds for the commit besides staged entries: the
//! directories whose absent entries it deletes.

use crate::proto::WirePath;
use crate::server::command::Names;

/// A directory to delete absent entries from at the commit.
#[derive(Debug)]
pub(in crate::io::store) struct PendingDelete {
    /// Request id of the client's `Closed`.
    pub(in crate::io::store) id: u32,
    /// The directory.
    pub(in crate::io::store) path: WirePath,
    /// The names the client has in it.
    pub(in crate::io::store) keep: Names,
}
