//! Typed errors of the I/O shell. A [`FsError`] is a failed file-system
//! operation that keeps what was done, on which path, and the cause as the
//! kernel gave it: the errno survives every hand-over (a commit that fails
//! for a full disk says `No space left on device` to the client and in the
//! log, not a generic kind rebuilt on the way).
//!
//! Owns no policy: who sees which part of an error (a client is not shown
//! the server's own paths) is decided where the error is reported.

use std::fmt;
use std::io;

use nix::errno::Errno;

/// A failed file-system operation: what was done, on which path, and why.
/// Displays as `open /backup/laptop/x: Permission denied`.
#[derive(Debug)]
pub struct FsError {
    /// The operation (`open`, `mkdir`, `rename`, ...).
    pub op: &'static str,
    /// The path as a person would write it.
    pub path: String,
    /// The cause: an errno where the kernel gave one.
    pub error: io::Error,
}

impl FsError {
    /// Builds an error from an errno.
    pub fn errno(op: &'static str, path: String, e: Errno) -> FsError {
        FsError {
            op,
            path,
            error: io::Error::from_raw_os_error(e as i32),
        }
    }

    /// Builds an error from an `io::Error` (which keeps its errno, if any).
    pub fn io(op: &'static str, path: String, error: io::Error) -> FsError {
        FsError { op, path, error }
    }

    /// A request that makes no sense for this path (a bad name, the root
    /// where a parent is needed), with `why` as the cause.
    pub fn invalid(op: &'static str, path: String, why: impl fmt::Display) -> FsError {
        FsError {
            op,
            path,
            error: io::Error::new(io::ErrorKind::InvalidInput, why.to_string()),
        }
    }

    /// Something found on disk that the operation cannot handle (a socket
    /// where a file was expected), with `why` as the cause.
    pub fn other(op: &'static str, path: String, why: impl fmt::Display) -> FsError {
        FsError {
            op,
            path,
            error: io::Error::other(why.to_string()),
        }
    }

    /// The errno, if the cause was one.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.error.raw_os_error()
    }

    /// The cause in words (`No space left on device`), without the
    /// operation or the path.
    pub fn cause(&self) -> String {
        super::describe(&self.error)
    }

    /// The operation and the cause (`open: Permission denied`), for a
    /// message that names the path itself.
    pub fn short(&self) -> String {
        format!("{}: {}", self.op, self.cause())
    }
}

/// A copy keeps the errno (`io::Error` itself cannot be cloned): one cause
/// reported for each entry of a batch that it failed.
impl Clone for FsError {
    fn clone(&self) -> FsError {
        let error = match self.error.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(self.error.kind(), self.error.to_string()),
        };
        FsError {
            op: self.op,
            path: self.path.clone(),
            error,
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path, self.cause())
    }
}

impl std::error::Error for FsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_operation_path_and_cause() {
        let e = FsError::errno("open", "/backup/laptop/x".into(), Errno::EACCES);
        assert_eq!(e.to_string(), "open /backup/laptop/x: Permission denied");
        assert_eq!(e.raw_os_error(), Some(Errno::EACCES as i32));
        let e = FsError::other("list", "/b/s".into(), "not a regular file");
        assert_eq!(e.to_string(), "list /b/s: not a regular file");
    }

    #[test]
    fn a_copy_keeps_the_errno() {
        let e = FsError::errno("syncfs", "/backup/laptop".into(), Errno::ENOSPC);
        let c = e.clone();
        assert_eq!(c.raw_os_error(), Some(Errno::ENOSPC as i32));
        assert_eq!(c.cause(), "No space left on device");
        assert_eq!(c.to_string(), e.to_string());
        let e = FsError::invalid("open", "/b".into(), "the root has no parent");
        let c = e.clone();
        assert_eq!(c.error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(c.to_string(), "open /b: the root has no parent");
    }
}
