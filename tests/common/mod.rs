//! End-to-end test harness: starts the real `rsb-server` and `rsb-client`
//! binaries on 127.0.0.1, builds awkward trees on disk, compares trees bit for
//! bit (type, content, mode, mtime in ns, link target) and speaks raw frames to
//! a server for hostile tests; one file per concern (processes, trees, raw
//! frames, a fake server), all re-exported here.
//!
//! Every wait here is bounded: a process that hangs is killed and the test
//! fails with whatever it printed, instead of hanging CI.

#![allow(dead_code)]

mod fake_server;
mod frames;
mod history;
mod procs;
mod trees;

// Not every test binary uses every concern.
#[allow(unused_imports)]
pub use fake_server::*;
#[allow(unused_imports)]
pub use frames::*;
#[allow(unused_imports)]
pub use history::*;
pub use procs::*;
pub use trees::*;

use std::time::Duration;

pub const SERVER: &str = env!("CARGO_BIN_EXE_rsb-server");
pub const CLIENT: &str = env!("CARGO_BIN_EXE_rsb-client");
/// The namespace most tests back up into.
pub const NAME: &str = "t";
/// Default bound on one client run.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// `argv!["backup", &path, ...]`: a `Vec<OsString>` from anything that is
/// `AsRef<OsStr>` (str, String, Path, PathBuf, OsStr).
macro_rules! argv {
    () => {
        ::std::vec::Vec::<::std::ffi::OsString>::new()
    };
    ($($x:expr),+ $(,)?) => {
        vec![$(::std::ffi::OsString::from(::std::convert::AsRef::<::std::ffi::OsStr>::as_ref(&$x))),*]
    };
}
