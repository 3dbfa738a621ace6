//! The store's rules, pure: what the hidden names in a stored tree mean
//! ([`names`]), whether a manifest entry is what is stored ([`compare`]),
//! the checksum record kept beside each file and what a re-read of the file
//! says about it, and the record of a real mode ([`record`]), the mode an
//! entry gets on disk ([`modes`]), which transfers resume ([`resume`]), and
//! which old versions of a path history keeps ([`retention`]).
//!
//! Nothing here touches the file system, a clock or a thread: the system
//! calls that apply these rules live in [`crate::io::store`], which hands
//! them plain values (a stat, a name, a crc) and acts on the answer. So a
//! rule is tested on its own, and a coming feature (history, retention,
//! cold compression) adds its policy here and its syscalls there.

pub mod accounts;
pub mod compare;
pub mod history;
pub mod modes;
pub mod names;
pub mod past;
pub mod record;
pub mod resume;
pub mod retention;
