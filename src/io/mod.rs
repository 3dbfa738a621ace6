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
