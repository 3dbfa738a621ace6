//! rsb: remote system backup.
//!
//! # The rings
//! Folders decide, [`io`] does (the README's architecture section maps every
//! file):
//!
//! * pure, deciding: [`proto`] (frames, the kind table, codec, wire paths),
//!   [`server`] (one connection's session and the vocabulary it speaks with
//!   its shell), [`client`] (the client's session, the backup planner, the
//!   restore's rules, parsing prompt lines and formatting what the user
//!   sees), [`delta`] (signatures, the rolling matcher, the op stream),
//!   [`store`] (what hidden names mean, when
//!   an entry is unchanged, the checksum record) and [`auth`]. Bytes, time
//!   and completions in; bytes, commands and deadlines out. No socket, file,
//!   clock read or thread: `scripts/purity.sh` checks it.
//! * [`io`], doing: every system call: one mio event loop per process, the
//!   store on disk (the one API every reader and writer of a stored tree
//!   goes through), sendfile/splice transfers, the worker pool, the local
//!   walk, signals, timers.
//! * the binaries in `src/bin/`: options, a validated config, run, and an
//!   exit status from [`exit`].
//!
//! [`testing`] wires the pure sessions together in memory on a virtual
//! clock, for the tests of the pure ring.
//!
//! # The mirror rule
//! Each pure folder has its namesake under `io/` holding its system calls:
//! [`server`] is driven by [`io::server`], [`client`] by [`io::client`],
//! [`store`]'s rules are applied by [`io::store`]. A decision found in the
//! shell belongs in the pure folder beside it, where it can be tested
//! without a disk or a socket.
//!
//! # The drain contract
//! A driver feeds a session its inputs (`handle_*`: bytes read, bytes
//! written, typed completions of the commands it carried out, timeouts) and
//! then drains every output (`poll_*`) before it waits again: commands to
//! carry out, bytes to send, events, and last the next deadline, which it
//! arms. An output left undrained is work the session believes is under
//! way; a deadline not armed is a timeout that never fires.

pub mod args;
pub mod auth;
pub mod calendar;
pub mod client;
pub mod delta;
pub mod exit;
pub mod io;
pub mod proto;
pub mod server;
pub mod store;
pub mod testing;
