//! The signals the server handles, as a `mio` source. Installs handlers;
//! what a signal means is decided by the loop that reads them.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGXFSZ};
use signal_hook_mio::v1_0::Signals;

/// Installs the handlers for SIGINT, SIGTERM, SIGHUP and SIGXFSZ. Done
/// before the server says it is listening, so that no signal finds the
/// default action: SIGHUP would kill the process, and so would SIGXFSZ
/// when a file reaches RLIMIT_FSIZE, where a write failing with EFBIG
/// (reported to that one client) is what is wanted.
pub fn install() -> std::io::Result<Signals> {
    Signals::new([SIGINT, SIGTERM, SIGHUP, SIGXFSZ])
}
