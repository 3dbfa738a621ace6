//! The I/O shell: every syscall of the program lives below this module. The
//! protocol sessions never see a socket or a file; the loops here feed them
//! bytes and completions and carry out what they ask for.

pub mod client;
pub mod clock;
#[cfg(test)]
mod delta_bench;
pub mod delta_io;
pub mod delta_match;
pub mod error;
pub mod holes;
pub mod inbuf;
pub mod log;
pub mod net;
pub mod server;
pub mod signals;
pub mod store;
pub mod timers;
pub mod transfer;
pub mod worker;
pub mod xattrs;

/// An I/O error as a person reads it: `No space left on device`, without
/// Rust's ` (os error 28)` suffix.
pub fn describe(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

/// What kind of entry an `lstat` describes; `None` for a file type Linux
/// does not have (none of its seven is left out).
pub fn kind_of(st: &nix::sys::stat::FileStat) -> Option<crate::proto::EntryKind> {
    kind_of_mode(st.st_mode)
}

/// [`kind_of`] from the `st_mode` alone.
pub fn kind_of_mode(mode: u32) -> Option<crate::proto::EntryKind> {
    use crate::proto::EntryKind;
    use nix::sys::stat::SFlag;
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => Some(EntryKind::File),
        SFlag::S_IFDIR => Some(EntryKind::Dir),
        SFlag::S_IFLNK => Some(EntryKind::Symlink),
        SFlag::S_IFIFO => Some(EntryKind::Fifo),
        SFlag::S_IFSOCK => Some(EntryKind::Socket),
        SFlag::S_IFCHR => Some(EntryKind::CharDev),
        SFlag::S_IFBLK => Some(EntryKind::BlockDev),
        _ => None,
    }
}

/// The file-type bits `mknod` takes for a special `kind` (`None` for a
/// file, directory or link, which are made otherwise).
pub fn sflag_of(kind: crate::proto::EntryKind) -> Option<nix::sys::stat::SFlag> {
    use crate::proto::EntryKind;
    use nix::sys::stat::SFlag;
    match kind {
        EntryKind::Fifo => Some(SFlag::S_IFIFO),
        EntryKind::Socket => Some(SFlag::S_IFSOCK),
        EntryKind::CharDev => Some(SFlag::S_IFCHR),
        EntryKind::BlockDev => Some(SFlag::S_IFBLK),
        EntryKind::File | EntryKind::Dir | EntryKind::Symlink | EntryKind::HardLink => None,
    }
}

/// The device number of an `lstat` of a device; 0 for any other kind.
pub fn rdev_of(st: &nix::sys::stat::FileStat) -> u64 {
    if kind_of(st).is_some_and(|k| k.is_device()) {
        st.st_rdev
    } else {
        0
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
        uid: st.st_uid,
        gid: st.st_gid,
    }
}

/// `N` bytes from the kernel's random source (getrandom(2)), for the nonces
/// and keys of the authentication handshake.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    let mut filled = 0;
    while filled < N {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe `rest`, which lives for
        // the call; getrandom writes at most that many bytes.
        let n = unsafe { nix::libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
            continue;
        }
        filled += n as usize;
    }
    Ok(buf)
}

/// Reads a file of secrets, refusing one that group or others may read or
/// write (like sshd with a private key).
pub fn read_private_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {}", describe(&e)))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{shown}: readable or writable by group or others (mode {mode:04o}); chmod 600 {shown}"
        ));
    }
    std::fs::read(path).map_err(|e| format!("{shown}: {}", describe(&e)))
}
