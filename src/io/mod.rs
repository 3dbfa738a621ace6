//! The I/O shell: every syscall of the program lives below this module. The
//! protocol sessions never see a socket or a file; the loops here feed them
//! bytes and completions and carry out what they ask for.

pub mod client;
pub mod log;
pub mod sandbox;
pub mod server_loop;
pub mod stage;
pub mod transfer;
pub mod walk;

/// An I/O error as a person reads it: `No space left on device`, without
/// Rust's ` (os error 28)` suffix.
pub fn describe(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

/// What kind of entry an `lstat` describes; `None` for sockets, fifos and
/// devices, which rsb does not store.
pub fn kind_of(st: &nix::sys::stat::FileStat) -> Option<crate::proto::EntryKind> {
    use crate::proto::EntryKind;
    use nix::sys::stat::SFlag;
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => Some(EntryKind::File),
        SFlag::S_IFDIR => Some(EntryKind::Dir),
        SFlag::S_IFLNK => Some(EntryKind::Symlink),
        _ => None,
    }
}

/// The mode bits and mtime of an `lstat`, as the protocol carries them.
pub fn meta_of(st: &nix::sys::stat::FileStat) -> crate::proto::Meta {
    crate::proto::Meta {
        mode: st.st_mode & 0o7777,
        mtime: crate::proto::Time {
            secs: st.st_mtime,
            nanos: st.st_mtime_nsec.clamp(0, 999_999_999) as u32,
        },
    }
}
