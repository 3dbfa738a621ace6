//! Driving one backup-protocol connection: writing its session's output,
//! reading frames, receiving file bodies, within the turn's budget.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use log::warn;

use super::conn::Conn;
use super::exec::run_commands;
use super::stream::{produce, Stream, STREAM_HIGH_WATER};
use crate::io::sandbox::Beneath;
use crate::io::transfer::{receive_step, BodyReceiver};
use crate::io::worker::Workers;
use crate::proto;

/// Bytes one connection may move per turn before others get theirs.
pub(super) const BUDGET: u64 = 8 << 20;
/// A connection yields after this long in one turn even within its byte
/// budget: writing to a file can block when the disk is slow (dirty-page
/// throttling), and bytes alone would not bound the others' wait.
pub(super) const TURN_SLICE: Duration = Duration::from_millis(10);
/// Body bytes moved per step, between two looks at the clock.
pub(super) const STEP_BYTES: u64 = 1 << 20;
/// Bytes read from a socket at a time for frames.
pub(super) const READ_CHUNK: usize = 64 * 1024;
/// What one command or streamed entry counts against [`BUDGET`]: about
/// what moving that many bytes costs, so 512 of them make a turn.
pub(super) const ENTRY_COST: u64 = 16 * 1024;
thread_local! {
    /// The loop's one read buffer (see `read_some`).
    static READ_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_CHUNK]);
}

/// Drives one connection as far as its sockets allow, within the budget.
/// `Ok(true)`: more work is ready (budget used up). `Err`: close it.
pub(super) fn drive(
    c: &mut Conn,
    root: &Beneath,
    read_only: bool,
    workers: &Workers,
    now: Instant,
) -> Result<bool, String> {
    // Work done this turn: body bytes moved, plus a charge per command and
    // per streamed entry, so that metadata-only work yields too.
    let mut spent: u64 = 0;
    let started = Instant::now();
    loop {
        let mut progress = false;
        if c.session.is_closing() {
            c.closing_since.get_or_insert(now);
            c.stream = None;
            // The error frame can only go out at a frame boundary; in the
            // middle of a body there is nothing to do but close.
            if c.send.is_some() {
                return Err(c.session.error().unwrap_or("closed").to_string());
            }
        }
        if flush(c)? {
            progress = true;
            c.session.handle_activity(now);
        }
        if c.session.poll_transmit().is_empty() && c.writable {
            if let Some((id, tx)) = c.send.as_mut() {
                let p = tx
                    .pump(&c.sock, BUDGET.saturating_sub(spent).min(STEP_BYTES))
                    .map_err(|e| format!("send: {e}"))?;
                spent += p.moved;
                if p.moved > 0 {
                    c.session.handle_activity(now);
                }
                c.writable &= !p.would_block;
                progress |= p.moved > 0;
                if tx.is_done() {
                    let (crc, ok) = tx.finish();
                    if let Some((recorded, read)) = tx.damage() {
                        warn!(
                            "{}: restore: a stored file no longer matches its checksum (crc32c {recorded:08x} recorded, {read:08x} read): not sent as good; verify names it",
                            c.session.name().unwrap_or("?")
                        );
                    }
                    if let Some(Stream::Restore(r)) = c.stream.as_mut() {
                        r.stats.bytes += tx.sent();
                    }
                    c.session.send_file_end(*id, crc, ok);
                    c.send = None;
                    progress = true;
                }
            }
        }
        if c.send.is_none()
            && c.offered.is_none()
            && !c.waiting
            && c.stream.is_some()
            && c.session.poll_transmit().len() < STREAM_HIGH_WATER
        {
            let entries = produce(c);
            spent += entries * ENTRY_COST;
            progress |= entries > 0;
        }
        if c.session.is_closing() && c.session.poll_transmit().is_empty() {
            return Err(c.session.error().unwrap_or("closed").to_string());
        }
        if !c.waiting {
            // Commands that waited behind a job go first: a file's
            // BeginFile must run before its body is received.
            let cost = run_commands(c, root, read_only, workers);
            progress |= cost > 0;
            spent += cost;
        }
        if c.waiting {
            // Only output moves until the workers are done.
        } else if let Some(size) = c.session.wants_body() {
            progress |= receive_body(c, size, now, &mut spent)?;
        } else if c.session.wants_input() {
            let n = c.session.handle_input(now, &c.inbuf);
            if n > 0 {
                c.inbuf.drain(..n);
                progress = true;
            }
            // A malformed frame consumes nothing but queues an error frame
            // that must still go out (regression: the connection hung).
            progress |= c.session.is_closing();
            spent += run_commands(c, root, read_only, workers);
            if n == 0 && !c.waiting && c.session.wants_input() && c.readable {
                progress |= read_some(c)?;
            }
        }
        if c.inbuf.is_empty() && c.inbuf.capacity() > 0 {
            c.inbuf = Vec::new();
        }
        if !progress {
            return Ok(false);
        }
        if spent >= BUDGET || started.elapsed() >= TURN_SLICE {
            return Ok(true);
        }
    }
}

/// Writes queued frames. Returns whether anything was written.
pub(super) fn flush(c: &mut Conn) -> Result<bool, String> {
    let mut wrote = false;
    while c.writable && !c.session.poll_transmit().is_empty() {
        match (&c.sock).write(c.session.poll_transmit()) {
            Ok(0) => return Err("connection closed".into()),
            Ok(n) => {
                c.session.consume_transmit(n);
                wrote = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.writable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    Ok(wrote)
}

/// Reads frame bytes. `Err` on EOF or a socket error.
pub(super) fn read_some(c: &mut Conn) -> Result<bool, String> {
    if c.inbuf.len() >= proto::MAX_PAYLOAD as usize + proto::HEADER_LEN + READ_CHUNK {
        return Ok(false);
    }
    // Read into one buffer shared by all connections and keep only what
    // is left over: an idle connection then holds no read buffer at all.
    READ_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        match (&c.sock).read(&mut buf[..]) {
            Ok(0) => Err(if c.session.name().is_some() {
                "closed by client".into()
            } else {
                "closed before hello".into()
            }),
            Ok(n) => {
                c.inbuf.extend_from_slice(&buf[..n]);
                Ok(true)
            }
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock => {
                    c.readable = false;
                    Ok(false)
                }
                io::ErrorKind::Interrupted => Ok(true),
                _ => Err(format!("read: {}", crate::io::describe(&e))),
            },
        }
    })
}

pub(super) fn receive_body(
    c: &mut Conn,
    size: u64,
    now: Instant,
    moved: &mut u64,
) -> Result<bool, String> {
    let incoming = c.store.as_mut().and_then(|s| s.incoming());
    // A resumed body continues the kept bytes: at their end, with their crc.
    let (offset, crc) = incoming.as_ref().map_or((0, 0), |i| (i.offset, i.crc));
    let recv = c
        .recv
        .get_or_insert_with(|| BodyReceiver::at(size, offset, crc));
    let file = incoming.map(|i| &i.file);
    let n = receive_step(
        recv,
        &mut c.inbuf,
        &c.sock,
        file,
        &mut c.pipe,
        &mut c.readable,
        BUDGET.saturating_sub(*moved).min(STEP_BYTES),
    )
    .map_err(|e| format!("receive: {e}"))?;
    *moved += n;
    if n > 0 {
        c.session.handle_activity(now);
    }
    if recv.is_done() {
        if let Some(mut r) = c.recv.take() {
            c.last_body = Some((r.crc(), r.take_error()));
            c.batch.bytes += size;
        }

        c.session.handle_body_done(now);
        return Ok(true);
    }
    Ok(n > 0)
}
