//! What a web connection writes: a queue of [`Chunk`]s (bytes in memory,
//! or a range of an open file) drained to the socket as far as it takes
//! them, through the connection's [`Transport`]. On a plain connection a
//! file range goes out with `sendfile`: its bytes never enter user space.
//! Through TLS they cannot: they are read (`pread`) into the loop's scratch
//! buffer and encrypted.
//!
//! A file whose crc32c was recorded when it was stored and that is sent
//! whole (a 200, or a tar member) is checked as it goes: each range sent
//! is read back from the page cache into the running crc32c (as restores
//! do), and the last byte is held back until the crc32c of everything
//! before it and of that byte matches the record. A damaged file then
//! ends the connection one byte short: the client sees a transfer cut
//! off (curl: "transfer closed with 1 bytes remaining"), never a complete
//! body of the wrong bytes. A range of such a file is only answered once a
//! worker has checked the whole file (`files.rs`).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::rc::Rc;

use mio::net::TcpStream;
use nix::errno::Errno;

use crate::io::server::tls::TlsSession;
use crate::io::store::StoredFile;
use crate::io::transfer::crc_range;

/// Largest single write or sendfile request.
const STEP: usize = 1 << 20;
/// Scratch for bodies read through TLS.
const TLS_READ: usize = 64 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; TLS_READ]);
}

/// The socket's layer: nothing, or TLS.
pub(in crate::io::server) enum Transport {
    /// Bytes as they are; file ranges with sendfile.
    Plain,
    /// rustls between the socket and the bytes.
    Tls(Box<TlsSession>),
}

/// One piece of an answer.
pub(super) enum Chunk {
    /// Bytes in memory, and how many went out already.
    Bytes(Vec<u8>, usize),
    /// A range of a file.
    File(FileRange),
}

/// A range of an open file, as it goes out.
pub(super) struct FileRange {
    pub(super) file: Rc<StoredFile>,
    /// The next byte to send.
    pub(super) offset: u64,
    /// One past the last byte to send.
    pub(super) end: u64,
    /// The whole file is being sent and its crc32c was recorded: the
    /// crc32c of what was sent so far, and what it must come to.
    pub(super) check: Option<(u32, u32)>,
}

impl FileRange {
    /// `offset..end` of `file`, unchecked.
    pub(super) fn new(file: Rc<StoredFile>, offset: u64, end: u64) -> FileRange {
        FileRange {
            file,
            offset,
            end,
            check: None,
        }
    }

    /// The whole of `file`, checked against `recorded` when there is one.
    pub(super) fn whole(file: Rc<StoredFile>, recorded: Option<u32>) -> FileRange {
        let end = file.size();
        FileRange {
            file,
            offset: 0,
            end,
            check: recorded.map(|c| (0, c)),
        }
    }
}

/// Why the queue stopped.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Drained {
    /// Everything queued went out.
    Empty,
    /// The socket (or TLS's buffer) is full.
    Blocked,
    /// The turn's budget is spent.
    Budget,
}

/// Why writing failed: the connection ends.
#[derive(Debug)]
pub(super) enum SendError {
    /// The socket failed or closed.
    Io(io::Error),
    /// A file's bytes no longer match its recorded crc32c (what it found).
    Damaged(String),
}

/// An answer's chunks, and the bytes written.
#[derive(Default)]
pub(super) struct Out {
    queue: VecDeque<Chunk>,
    /// Bytes written to the socket (plaintext through TLS), all told.
    pub(super) sent: u64,
}

impl Out {
    /// Appends bytes.
    pub(super) fn push_bytes(&mut self, b: Vec<u8>) {
        if b.is_empty() {
            return;
        }
        self.queue.push_back(Chunk::Bytes(b, 0));
    }

    /// Appends a file range.
    pub(super) fn push_file(&mut self, r: FileRange) {
        if r.offset < r.end {
            self.queue.push_back(Chunk::File(r));
        }
    }

    /// True when nothing is left to write.
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Chunks waiting (a producer tops the queue up below a few).
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Writes what the socket takes, at most `budget` bytes.
    pub(super) fn drain(
        &mut self,
        sock: &TcpStream,
        transport: &mut Transport,
        budget: u64,
    ) -> Result<(Drained, u64), SendError> {
        let mut moved: u64 = 0;
        while let Some(front) = self.queue.front_mut() {
            if moved >= budget {
                return Ok((Drained::Budget, moved));
            }
            let room = (budget - moved).min(STEP as u64) as usize;
            let n = match front {
                Chunk::Bytes(b, done) => {
                    let rest = b.get(*done..).unwrap_or_default();
                    let want = rest.get(..room.min(rest.len())).unwrap_or_default();
                    match write_bytes(sock, transport, want)? {
                        0 => return Ok((Drained::Blocked, moved)),
                        n => {
                            *done += n;
                            if *done >= b.len() {
                                self.queue.pop_front();
                            }
                            n
                        }
                    }
                }
                Chunk::File(r) => match send_range(sock, transport, r, room)? {
                    0 if r.offset < r.end => return Ok((Drained::Blocked, moved)),
                    n => {
                        if r.offset >= r.end {
                            self.queue.pop_front();
                        }
                        n
                    }
                },
            };
            moved += n as u64;
            self.sent += n as u64;
        }
        Ok((Drained::Empty, moved))
    }
}

/// Writes bytes; 0 when the socket takes none now.
fn write_bytes(sock: &TcpStream, t: &mut Transport, data: &[u8]) -> Result<usize, SendError> {
    if data.is_empty() {
        return Ok(0);
    }
    match t {
        Transport::Plain => loop {
            match (&*sock).write(data) {
                Ok(0) => {
                    return Err(SendError::Io(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "connection closed",
                    )))
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SendError::Io(e)),
            }
        },
        Transport::Tls(tls) => {
            let mut s = sock;
            tls.flush(&mut s).map_err(SendError::Io)?;
            let n = tls.write_plain(data).map_err(SendError::Io)?;
            tls.flush(&mut s).map_err(SendError::Io)?;
            Ok(n)
        }
    }
}

/// Sends up to `room` bytes of a file range; 0 when the socket takes none.
fn send_range(
    sock: &TcpStream,
    t: &mut Transport,
    r: &mut FileRange,
    room: usize,
) -> Result<usize, SendError> {
    let mut want = (r.end - r.offset).min(room as u64);
    // Held back: the last byte of a checked file goes out only once the
    // crc32c of the whole file matched.
    if let Some((crc, recorded)) = r.check {
        if r.offset + 1 == r.end {
            let crc = crc_range(&*r.file, r.offset, 1, crc)
                .map_err(|e| SendError::Damaged(format!("read: {e}")))?;
            if crc != recorded {
                return Err(SendError::Damaged(format!(
                    "content changed: crc32c was {recorded:08x}, is now {crc:08x}"
                )));
            }
            r.check = None;
        } else {
            want = want.min(r.end - r.offset - 1);
        }
    }
    let start = r.offset;
    let n = match t {
        Transport::Plain => loop {
            let mut off = r.offset as i64;
            match nix::sys::sendfile::sendfile(sock, r.file.as_fd(), Some(&mut off), want as usize)
            {
                Ok(0) => {
                    return Err(SendError::Damaged(
                        "the file shrank while it was sent".into(),
                    ))
                }
                Ok(n) => break n,
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Ok(0),
                Err(e) => return Err(SendError::Io(io::Error::from(e))),
            }
        },
        Transport::Tls(tls) => {
            let mut s = sock;
            tls.flush(&mut s).map_err(SendError::Io)?;
            let n = SCRATCH.with(|buf| -> Result<usize, SendError> {
                let mut buf = buf.borrow_mut();
                let len = (want as usize).min(buf.len());
                let got = loop {
                    match nix::sys::uio::pread(r.file.as_fd(), &mut buf[..len], r.offset as i64) {
                        Ok(0) => {
                            return Err(SendError::Damaged(
                                "the file shrank while it was sent".into(),
                            ))
                        }
                        Ok(n) => break n,
                        Err(Errno::EINTR) => {}
                        Err(e) => return Err(SendError::Io(io::Error::from(e))),
                    }
                };
                let taken = tls.write_plain(&buf[..got]).map_err(SendError::Io)?;
                if let Some((crc, _)) = r.check.as_mut() {
                    *crc = crc32c::crc32c_append(*crc, buf.get(..taken).unwrap_or_default());
                }
                Ok(taken)
            })?;
            tls.flush(&mut s).map_err(SendError::Io)?;
            r.offset += n as u64;
            return Ok(n);
        }
    };
    if let Some((crc, _)) = r.check.as_mut() {
        *crc = crc_range(&*r.file, start, n as u64, *crc)
            .map_err(|e| SendError::Damaged(format!("read: {e}")))?;
    }
    r.offset += n as u64;
    Ok(n)
}

/// What [`read_into`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Got {
    /// The peer closed.
    Closed,
    /// Request bytes appended to the buffer (plaintext, through TLS).
    Bytes(usize),
    /// Nothing more to read now.
    Nothing,
    /// Records of a TLS handshake still under way came in, no request
    /// bytes yet: a start of the request as far as its clock goes.
    Handshake,
}

/// Reads what the socket has into `buf` (at most `max` bytes in all).
pub(super) fn read_into(
    sock: &TcpStream,
    t: &mut Transport,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Got> {
    if buf.len() >= max {
        return Ok(Got::Nothing);
    }
    match t {
        Transport::Plain => {
            let room = (max - buf.len()).min(16 * 1024);
            let mut tmp = [0u8; 16 * 1024];
            loop {
                match (&*sock).read(&mut tmp[..room]) {
                    Ok(0) => return Ok(Got::Closed),
                    Ok(n) => {
                        buf.extend_from_slice(tmp.get(..n).unwrap_or_default());
                        return Ok(Got::Bytes(n));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Got::Nothing),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Transport::Tls(tls) => {
            let mut s = sock;
            let before = buf.len();
            let p = tls.read_plain(&mut s, buf, max)?;
            tls.flush(&mut s)?;
            let read = buf.len() - before;
            Ok(if p.eof && read == 0 {
                Got::Closed
            } else if read > 0 {
                Got::Bytes(read)
            } else if p.received > 0 && tls.is_handshaking() {
                Got::Handshake
            } else {
                Got::Nothing
            })
        }
    }
}
