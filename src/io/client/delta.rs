//! The client's half of a backup delta: reading a changed file once
//! against the signature of the version the server holds, to find which
//! runs the server can copy from that version, and the crc32c of the whole
//! new file on the way (the `FileEnd` of a delta covers the file, not the
//! body). The literal runs are then sent like any body, with `sendfile`.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::error::NetError;
use crate::delta::{Copies, CopyList, Matcher, Signature};

/// Bytes read at a time.
const READ: usize = 1 << 20;
/// How often a long match looks up (interrupts, keepalives).
const LOOK_UP: Duration = Duration::from_millis(250);

/// A delta to send, and the whole new file's crc32c.
#[derive(Debug)]
pub struct Matched {
    /// The runs and what is left to send.
    pub copies: Copies,
    /// crc32c of the whole file as read.
    pub crc: u32,
}

/// Reads the `size` bytes of `file` against `sig`. `Ok(None)`: send it
/// whole (nothing of the old version is in it, the signature is unusable,
/// or the file ended early: it changed, which the body's check catches).
/// `look_up` runs every [`LOOK_UP`] while it reads (a large file on a slow
/// disk takes minutes): an `Err` from it stops the match.
pub fn match_file(
    file: &OwnedFd,
    size: u64,
    sig: &Signature,
    mut look_up: impl FnMut() -> Result<(), NetError>,
) -> Result<Option<Matched>, NetError> {
    let Ok(mut matcher) = Matcher::new(sig) else {
        return Ok(None);
    };
    let mut list = CopyList::new(sig);
    let mut ops = Vec::new();
    let mut buf = vec![0u8; READ];
    let mut crc = 0u32;
    let mut at = 0u64;
    let mut looked = Instant::now();
    while at < size {
        let want = (size - at).min(READ as u64) as usize;
        let n = match nix::sys::uio::pread(file, &mut buf[..want], at as i64) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => n,
        };
        let bytes = &buf[..n];
        crc = crc32c::crc32c_append(crc, bytes);
        matcher.feed(bytes, &mut ops);
        ops.drain(..).for_each(|op| list.push(&op));
        at += n as u64;
        if looked.elapsed() >= LOOK_UP {
            look_up()?;
            looked = Instant::now();
        }
    }
    matcher.finish(&mut ops);
    ops.drain(..).for_each(|op| list.push(&op));
    let copies = list.finish(size, crate::proto::MAX_DELTA_COPIES as usize);
    Ok((copies.reused > 0).then_some(Matched { copies, crc }))
}
