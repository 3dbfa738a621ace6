//! The client's pure half: its protocol session ([`session`], with the
//! values it hands out in [`event`]), the backup planner ([`plan`]) and
//! the exclude patterns a walk leaves out ([`exclude`]), the
//! restore's path rules ([`restore`]) and owner mapping ([`owners`]), the server's address as written
//! ([`remote`]), failures collapsed by cause and the progress line's pace
//! ([`report`]) and its user interface ([`ui`], with [`input`] for typed
//! input that is no command), and the TIME and DURATION arguments with
//! their calendar arithmetic ([`when`]), and `--bwlimit`'s token bucket
//! ([`rate`]). No sockets, files, clocks or threads: its
//! I/O (connection, loop, walk, restore writes) lives in
//! [`crate::io::client`].

pub mod event;
pub mod exclude;
pub mod input;
pub mod owners;
pub mod plan;
pub mod rate;
pub mod remote;
pub mod report;
pub mod restore;
pub mod schedule;
pub mod session;
pub mod ui;
pub mod watch;
pub mod when;
