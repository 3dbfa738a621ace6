//! Moving file bodies between a socket and a file without copying them
//! through user space: [`BodySender`] serves a file with `sendfile`,
//! [`BodyReceiver`] takes one in with `splice` (socket → pipe → file).
//!
//! The crc32c that the protocol puts after every body has to cover bytes the
//! program never sees. Both sides compute it by reading back, from the page
//! cache, exactly the range just moved (`pread` into a scratch buffer), in the
//! same step that moved it: no second pass over the file, no extra disk I/O,
//! and the checksum is ready when the last byte is. A sender whose file
//! changes under it is caught twice: the re-read range no longer matches what
//! was sent (the receiver's crc disagrees), and the file's size or mtime
//! differs at the end (the sender marks the body as not ok).
//!
//! Both pumps stop after a byte budget so one fast transfer cannot starve
//! the other connections of the loop; the caller remembers that the socket
//! is still ready (edge-triggered readiness is not re-reported). The budget
//! is exact (no system call asks for more than is left of it), so the
//! client's `--bwlimit` can hand its allowance in as the budget.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag, SpliceFFlags};
use nix::sys::stat;

use super::holes;
use crate::proto::{Extent, Layout};

/// Size asked for each pipe (the default `/proc/sys/fs/pipe-max-size`).
pub const PIPE_SIZE: usize = 1 << 20;
/// Largest single sendfile/splice request.
const CHUNK: usize = 1 << 20;
/// Received bytes handed to background writeback at a time.
const WRITEBACK_STEP: u64 = 8 << 20;
/// Scratch buffer for crc read-back and discarding.
const SCRATCH: usize = 256 * 1024;
/// A body (or what is left of one) up to this size is read with `read`
/// and written from memory, its crc32c taken on the bytes in hand: for a
/// small file two splices and a read-back cost more than the copy.
pub const SMALL_BODY: u64 = 64 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; SCRATCH]);
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// crc32c of `len` bytes of `file` from `offset`, continuing from `crc`.
/// Reads the page cache the transfer just filled.
pub fn crc_range(file: &impl AsFd, mut offset: u64, mut len: u64, mut crc: u32) -> io::Result<u32> {
    SCRATCH_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        while len > 0 {
            let want = len.min(buf.len() as u64) as usize;
            let n = match nix::sys::uio::pread(file, &mut buf[..want], offset as i64) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while being read",
                    ))
                }
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(errno_io(e)),
            };
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            offset += n as u64;
            len -= n as u64;
        }
        Ok(crc)
    })
}

/// What one pump call achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Body bytes moved by this call.
    pub moved: u64,
    /// The socket has nothing more right now (wait for readiness).
    pub would_block: bool,
}

/// A non-blocking pipe used as the splice buffer between socket and file.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes spliced in and not yet spliced out.
    pending: usize,
}

impl Pipe {
    /// A new pipe, enlarged to [`PIPE_SIZE`] where the system allows.
    pub fn new() -> io::Result<Pipe> {
        let (read, write) =
            nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(errno_io)?;
        // Larger pipes mean fewer splice calls; failure just keeps 64 KiB.
        let _ = fcntl::fcntl(
            write.as_raw_fd(),
            fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32),
        );
        Ok(Pipe {
            read,
            write,
            pending: 0,
        })
    }

    /// Throws away whatever is still in the pipe (after a failed write).
    fn drain(&mut self) {
        SCRATCH_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            while self.pending > 0 {
                let want = self.pending.min(buf.len());
                match nix::unistd::read(self.read.as_raw_fd(), &mut buf[..want]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.pending -= n,
                }
            }
        });
        self.pending = 0;
    }
}

/// Receives one body of a known length into a file (or discards it when the
/// file failed), computing its crc32c. A sparse body's bytes go to their
/// extents, the holes between them are never written (a fresh file has
/// them unallocated), and the crc32c counts them as the zeros they read as.
pub struct BodyReceiver {
    remaining: u64,
    /// Where the next body byte goes in the file.
    offset: u64,
    crc: u32,
    error: Option<io::Error>,
    /// Bytes before this were handed to the disk with `sync_file_range`.
    written_back: u64,
    /// A sparse body: the extents still to fill (the first one being
    /// filled), and the file's size, up to which the crc32c goes on over
    /// the trailing hole once the last byte is in. Boxed: a receiver lives
    /// in every receiving connection's state.
    sparse: Option<Box<(std::collections::VecDeque<Extent>, u64)>>,
    /// A body held in memory instead of written (see [`Self::held`]).
    held: Option<Vec<u8>>,
}

impl BodyReceiver {
    /// Expects `size` body bytes.
    pub fn new(size: u64) -> BodyReceiver {
        BodyReceiver::at(size, 0, 0)
    }

    /// Expects `size` body bytes that go at `offset` in the file, after
    /// bytes whose crc32c is `crc` (a resumed transfer).
    pub fn at(size: u64, offset: u64, crc: u32) -> BodyReceiver {
        BodyReceiver {
            remaining: size,
            offset,
            crc,
            error: None,
            written_back: offset,
            sparse: None,
            held: None,
        }
    }

    /// Expects a dense body of `size` bytes (at most [`SMALL_BODY`]) to
    /// keep in memory, not write anywhere: a small file the server's
    /// writer threads create whole ([`Self::take_held`]).
    pub fn held(size: u64) -> BodyReceiver {
        let mut r = BodyReceiver::new(size);
        r.held = Some(Vec::with_capacity(
            usize::try_from(size.min(SMALL_BODY)).unwrap_or(0),
        ));
        r
    }

    /// The bytes of a held body ([`Self::held`]), once.
    pub fn take_held(&mut self) -> Option<Vec<u8>> {
        self.held.take()
    }

    /// Expects the body of a file of `size` bytes sent from `offset`
    /// (after bytes whose crc32c is `crc`) with `layout`.
    pub fn placed(layout: &Layout, size: u64, offset: u64, crc: u32) -> BodyReceiver {
        let mut r = BodyReceiver::at(layout.body_len(size, offset), offset, crc);
        if let Layout::Sparse(extents) = layout {
            r.sparse = Some(Box::new((extents.iter().copied().collect(), size)));
            r.next_run();
        }
        r
    }

    /// Body bytes that go to the file from [`Self::received`] on, in one
    /// run: all that is left of a dense body, or of the current extent.
    /// At the start of an extent the crc32c takes the hole before it; at
    /// the end of a sparse body, the hole after the last extent.
    fn next_run(&mut self) -> u64 {
        match self.sparse.as_deref_mut() {
            Some((extents, size)) => {
                holes::next_run(extents, *size, &mut self.offset, &mut self.crc)
            }
            None => self.remaining,
        }
    }

    /// Body bytes still to come.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// True when every byte has arrived.
    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }

    /// crc32c of the bytes written so far.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// How far into the file the body has come: the offset of its next
    /// byte (holes passed included).
    pub fn received(&self) -> u64 {
        self.offset
    }

    /// The first error writing the file, if any (the rest of the body was
    /// then read and dropped to keep the stream in step).
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// True when writing failed: the body is being discarded.
    pub fn has_failed(&self) -> bool {
        self.error.is_some()
    }

    fn fail(&mut self, e: io::Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Takes body bytes that were already read into the connection's buffer
    /// together with the frame before them. Returns how many it used.
    pub fn feed(&mut self, file: Option<&OwnedFd>, data: &[u8]) -> usize {
        let mut used = 0;
        while used < data.len() && self.remaining > 0 {
            match self.feed_run(file, &data[used..]) {
                // Cannot happen (a layout's extents add up to its body):
                // stop rather than spin.
                0 => break,
                n => used += n,
            }
        }
        used
    }

    /// [`Self::feed`] within one run.
    fn feed_run(&mut self, file: Option<&OwnedFd>, data: &[u8]) -> usize {
        let run = self.next_run().min(self.remaining);
        let n = data.len().min(run.min(usize::MAX as u64) as usize);
        let data = &data[..n];
        if let Some(held) = self.held.as_mut() {
            held.extend_from_slice(data);
        } else if let (Some(file), false) = (file, self.has_failed()) {
            let mut done = 0;
            while done < n {
                match nix::sys::uio::pwrite(file, &data[done..], (self.offset + done as u64) as i64)
                {
                    Ok(w) => done += w,
                    Err(Errno::EINTR) => {}
                    Err(e) => {
                        self.fail(errno_io(e));
                        break;
                    }
                }
            }
        }
        self.crc = crc32c::crc32c_append(self.crc, data);
        self.offset += n as u64;
        self.remaining -= n as u64;
        self.next_run();
        n
    }

    /// Moves body bytes from the socket to the file until the body is
    /// complete, the socket would block, or `budget` bytes were moved (never
    /// more). An error is the socket's (the connection is lost); EOF is
    /// `UnexpectedEof`. File errors are kept (see [`Self::take_error`]).
    pub fn pump(
        &mut self,
        sock: &impl AsFd,
        file: Option<&OwnedFd>,
        pipe: &mut Pipe,
        budget: u64,
    ) -> io::Result<Progress> {
        let mut progress = Progress::default();
        while self.remaining > 0 && progress.moved < budget {
            // What the pipe holds goes to one run: never more than its rest.
            let run = self.next_run().min(self.remaining);
            if run == 0 {
                // Cannot happen (a layout's extents add up to its body).
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a body longer than its extents",
                ));
            }
            // Never past the budget: a rate limit's budget is exact.
            let want = run
                .saturating_sub(pipe.pending as u64)
                .min(CHUNK as u64)
                .min(budget - progress.moved) as usize;
            if want > 0 {
                match fcntl::splice(
                    sock,
                    None,
                    &pipe.write,
                    None,
                    want,
                    SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE,
                ) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed in a file body",
                        ))
                    }
                    Ok(n) => pipe.pending += n,
                    Err(Errno::EINTR) => continue,
                    Err(Errno::EAGAIN) if pipe.pending == 0 => {
                        progress.would_block = true;
                        return Ok(progress);
                    }
                    Err(Errno::EAGAIN) => progress.would_block = true,
                    Err(e) => return Err(errno_io(e)),
                }
            }
            let n = pipe.pending;
            self.drain_pipe(file, pipe);
            self.remaining -= n as u64;
            self.next_run();
            progress.moved += n as u64;
            if progress.would_block {
                return Ok(progress);
            }
        }
        Ok(progress)
    }

    /// Starts writing the received bytes to disk in the background, every
    /// few MiB, so the `syncfs` that makes a batch durable finds little left
    /// to do instead of a whole large file (it does not wait, and the
    /// page-cache copy used for the crc read-back stays).
    fn start_writeback(&mut self, file: &OwnedFd, upto: u64) {
        if upto < self.written_back + WRITEBACK_STEP {
            return;
        }
        let (Ok(off), Ok(len)) = (
            i64::try_from(self.written_back),
            i64::try_from(upto - self.written_back),
        ) else {
            return;
        };
        // SAFETY: plain syscall on an fd we own; no memory is passed. A
        // failure only means the final sync does the work.
        unsafe {
            nix::libc::sync_file_range(
                file.as_raw_fd(),
                off,
                len,
                nix::libc::SYNC_FILE_RANGE_WRITE,
            );
        }
        self.written_back = upto;
    }

    /// Splices everything in the pipe into the file and checksums it.
    fn drain_pipe(&mut self, file: Option<&OwnedFd>, pipe: &mut Pipe) {
        let start = self.offset;
        let total = pipe.pending;
        match (file, self.has_failed()) {
            (Some(file), false) => {
                let mut off = self.offset as i64;
                while pipe.pending > 0 {
                    match fcntl::splice(
                        &pipe.read,
                        None,
                        file,
                        Some(&mut off),
                        pipe.pending,
                        SpliceFFlags::SPLICE_F_MOVE,
                    ) {
                        Ok(0) => {
                            self.fail(io::Error::new(io::ErrorKind::WriteZero, "write returned 0"));
                            break;
                        }
                        Ok(n) => pipe.pending -= n,
                        Err(Errno::EINTR) => {}
                        Err(e) => {
                            self.fail(errno_io(e));
                            break;
                        }
                    }
                }
                if !self.has_failed() {
                    match crc_range(file, start, total as u64, self.crc) {
                        Ok(c) => self.crc = c,
                        Err(e) => self.fail(e),
                    }
                    self.start_writeback(file, start + total as u64);
                }
                pipe.drain();
            }
            _ => pipe.drain(),
        }
        self.offset += total as u64;
    }
}

/// One step of receiving a body: first the bytes that were already read
/// into `inbuf` with the frame before them, then straight from the socket
/// through `pipe` (created on first use), or, when at most [`SMALL_BODY`]
/// is left, with one `read` into memory. Clears `readable` when the socket
/// has nothing more. Returns the body bytes moved.
pub fn receive_step(
    recv: &mut BodyReceiver,
    inbuf: &mut crate::io::inbuf::InBuf,
    sock: &impl AsFd,
    file: Option<&OwnedFd>,
    pipe: &mut Option<Pipe>,
    readable: &mut bool,
    budget: u64,
) -> io::Result<u64> {
    let mut moved = 0;
    if !inbuf.is_empty() && !recv.is_done() {
        let n = recv.feed(file, inbuf);
        inbuf.consume(n);
        moved += n as u64;
    }
    let small = recv.remaining() <= SMALL_BODY || recv.held.is_some();
    if !recv.is_done() && inbuf.is_empty() && *readable && small {
        let want = recv.remaining().min(budget.saturating_sub(moved));
        moved += read_small(recv, sock, file, readable, want)?;
    } else if !recv.is_done() && inbuf.is_empty() && *readable {
        let pipe = match pipe {
            Some(p) => p,
            None => pipe.insert(Pipe::new()?),
        };
        let p = recv.pump(sock, file, pipe, budget)?;
        moved += p.moved;
        *readable &= !p.would_block;
    }
    Ok(moved)
}

/// Reads up to `want` body bytes (never more than the body has left: the
/// frames after it are the frame reader's) into the scratch buffer and
/// feeds them to `recv`: one `read` instead of a splice into the pipe,
/// one out of it and a read-back for the crc32c.
fn read_small(
    recv: &mut BodyReceiver,
    sock: &impl AsFd,
    file: Option<&OwnedFd>,
    readable: &mut bool,
    want: u64,
) -> io::Result<u64> {
    SCRATCH_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        let want = usize::try_from(want).unwrap_or(usize::MAX).min(buf.len());
        let Some(space) = buf.get_mut(..want).filter(|b| !b.is_empty()) else {
            return Ok(0);
        };
        loop {
            match nix::unistd::read(sock.as_fd().as_raw_fd(), space) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed in a file body",
                    ))
                }
                Ok(n) => {
                    let data = space.get(..n).unwrap_or_default();
                    return Ok(recv.feed(file, data) as u64);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    *readable = false;
                    return Ok(0);
                }
                Err(e) => return Err(errno_io(e)),
            }
        }
    })
}

/// The size and mtime a file had when its sending began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: i64,
    mtime: (i64, i64),
}

fn stamp(file: &OwnedFd) -> io::Result<(Stamp, i64)> {
    let st = stat::fstat(file.as_raw_fd()).map_err(errno_io)?;
    Ok(stamp_of(&st))
}

fn stamp_of(st: &stat::FileStat) -> (Stamp, i64) {
    let stamp = Stamp {
        size: st.st_size,
        mtime: (st.st_mtime, st.st_mtime_nsec),
    };
    (stamp, st.st_blocks)
}

/// Sends one file body of an announced length with `sendfile`, computing
/// its crc32c. A file with holes is sent as its extents of data
/// ([`Self::layout`] goes in its header); the crc32c still covers the
/// whole file, the holes as zeros.
pub struct BodySender {
    file: OwnedFd,
    size: u64,
    /// Where the next byte comes from in the file.
    offset: u64,
    crc: u32,
    before: Stamp,
    changed: bool,
    /// The layout announced, and for a sparse one the extents still to
    /// send (the first one being sent).
    layout: Layout,
    extents: std::collections::VecDeque<Extent>,
    /// Body bytes still to send, and sent.
    left: u64,
    sent: u64,
    /// The crc32c recorded when the file was stored, to check the bytes
    /// sent against.
    recorded: Option<u32>,
    /// A delta's: the whole file's crc32c, which its reader computed (the
    /// body is only its literal runs).
    whole: Option<u32>,
}

impl BodySender {
    /// Prepares to send `size` bytes of `file` (as announced in the header).
    pub fn new(file: OwnedFd, size: u64) -> io::Result<BodySender> {
        BodySender::from_offset(file, size, 0)
    }

    /// Prepares to send bytes `offset..size` of `file`, the receiver having
    /// the rest. The crc32c still covers the whole file: the bytes before
    /// `offset` are read once here to start it.
    pub fn from_offset(file: OwnedFd, size: u64, offset: u64) -> io::Result<BodySender> {
        let (before, blocks) = stamp(&file)?;
        let crc = crc_range(&file, 0, offset.min(size), 0)?;
        BodySender::begin(file, size, offset, crc, before, blocks)
    }

    /// Like [`Self::from_offset`], with `st`, the `fstat` of `file` its
    /// opener just made (one call fewer per file: small files are sent
    /// by the thousand). A change after `st` is still caught at the end.
    pub fn from_offset_stat(
        file: OwnedFd,
        size: u64,
        offset: u64,
        st: &stat::FileStat,
    ) -> io::Result<BodySender> {
        let (before, blocks) = stamp_of(st);
        let crc = crc_range(&file, 0, offset.min(size), 0)?;
        BodySender::begin(file, size, offset, crc, before, blocks)
    }

    /// Like [`Self::from_offset`], with the crc32c of bytes `0..offset`
    /// already computed (the server does that on a worker thread: it can
    /// be gigabytes).
    pub fn with_prefix_crc(
        file: OwnedFd,
        size: u64,
        offset: u64,
        crc: u32,
    ) -> io::Result<BodySender> {
        let (before, blocks) = stamp(&file)?;
        BodySender::begin(file, size, offset, crc, before, blocks)
    }

    /// Prepares to send only the bytes of `layout`'s extents (a delta's
    /// literal runs, [`crate::proto::delta_layout`]) of `file`, whose
    /// `fstat` was `st`; `whole_crc` is the whole file's crc32c, from the
    /// match that chose the runs and read every byte: it is what
    /// [`Self::finish`] and [`Self::damage`] speak of.
    pub fn for_delta(
        file: OwnedFd,
        size: u64,
        layout: Layout,
        st: &stat::FileStat,
        whole_crc: u32,
    ) -> BodySender {
        let (before, _) = stamp_of(st);
        let mut tx = BodySender::with_layout(file, size, 0, 0, before, layout);
        tx.whole = Some(whole_crc);
        tx
    }

    fn begin(
        file: OwnedFd,
        size: u64,
        offset: u64,
        crc: u32,
        before: Stamp,
        blocks: i64,
    ) -> io::Result<BodySender> {
        let offset = offset.min(size);
        let layout = if holes::may_have_holes(before.size, blocks) {
            holes::layout(&file, offset, size)?
        } else {
            Layout::Dense
        };
        Ok(BodySender::with_layout(
            file, size, offset, crc, before, layout,
        ))
    }

    fn with_layout(
        file: OwnedFd,
        size: u64,
        offset: u64,
        crc: u32,
        before: Stamp,
        layout: Layout,
    ) -> BodySender {
        let extents = match &layout {
            Layout::Dense => std::collections::VecDeque::new(),
            Layout::Sparse(e) => e.iter().copied().collect(),
        };
        let mut tx = BodySender {
            left: layout.body_len(size, offset),
            file,
            size,
            offset,
            crc,
            before,
            changed: false,
            layout,
            extents,
            sent: 0,
            recorded: None,
            whole: None,
        };
        tx.next_run();
        tx
    }

    /// Where the body's bytes come from: the header must say so.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Bytes to send from [`Self::offset`] on in one run: all that is left
    /// of a dense body, or of the current extent. Like
    /// [`BodyReceiver::next_run`], it counts the holes it passes into the
    /// crc32c.
    fn next_run(&mut self) -> u64 {
        if !self.layout.is_sparse() {
            return self.left;
        }
        holes::next_run(
            &mut self.extents,
            self.size,
            &mut self.offset,
            &mut self.crc,
        )
    }

    /// The whole file must have crc32c `crc` (recorded when it was
    /// stored); otherwise [`Self::finish`] says the body is not good.
    pub fn expect_crc(&mut self, crc: u32) {
        self.recorded = Some(crc);
    }

    /// After the body: `Some((recorded, read))` when the bytes sent differ
    /// from what was recorded when the file was stored (bit rot).
    pub fn damage(&self) -> Option<(u32, u32)> {
        let recorded = self.recorded?;
        let read = self.whole.unwrap_or(self.crc);
        (!self.changed && self.is_done() && recorded != read).then_some((recorded, read))
    }

    /// True when all announced bytes went out.
    pub fn is_done(&self) -> bool {
        self.left == 0
    }

    /// True when the file gave fewer bytes than announced (it shrank, or
    /// a read-back failed): the body was padded with zeros, so it is no
    /// copy of the file at all, unlike one that only grew or was rewritten.
    pub fn shrank(&self) -> bool {
        self.changed
    }

    /// Body bytes sent so far (a sparse file's holes are not sent).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Sends until done, would-block or `budget` (never more). If the file shrank, the
    /// rest is padded with zeros (the stream must carry exactly the announced
    /// length) and the body is marked changed.
    pub fn pump(&mut self, sock: &impl AsFd, budget: u64) -> io::Result<Progress> {
        let mut progress = Progress::default();
        while self.left > 0 && progress.moved < budget {
            let run = self.next_run().min(self.left);
            // Never past the budget: a rate limit's budget is exact.
            let want = run.min(CHUNK as u64).min(budget - progress.moved) as usize;
            let start = self.offset;
            let r = if self.changed {
                SCRATCH_BUF.with(|buf| {
                    let mut buf = buf.borrow_mut();
                    let n = want.min(buf.len());
                    buf[..n].fill(0);
                    nix::unistd::write(sock, &buf[..n])
                })
            } else {
                let mut off = self.offset as i64;
                nix::sys::sendfile::sendfile(sock, &self.file, Some(&mut off), want)
            };
            match r {
                Ok(0) if !self.changed => {
                    self.changed = true;
                    continue;
                }
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "connection closed",
                    ))
                }
                Ok(n) => {
                    if !self.changed {
                        match crc_range(&self.file, start, n as u64, self.crc) {
                            Ok(c) => self.crc = c,
                            Err(_) => self.changed = true,
                        }
                    }
                    self.offset += n as u64;
                    self.left -= n as u64;
                    self.sent += n as u64;
                    progress.moved += n as u64;
                    self.next_run();
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    progress.would_block = true;
                    return Ok(progress);
                }
                Err(e) => return Err(errno_io(e)),
            }
        }
        Ok(progress)
    }

    /// The crc32c of what was sent and whether it is good: the file as it
    /// was when sending began (same size and mtime now, never shrank) and,
    /// when a crc32c was recorded for it, matching that.
    pub fn finish(&self) -> (u32, bool) {
        let same = !self.changed
            && stamp(&self.file)
                .map(|(s, _)| s == self.before)
                .unwrap_or(false);
        (
            self.whole.unwrap_or(self.crc),
            same && self.damage().is_none(),
        )
    }
}

#[cfg(test)]
mod tests;
