//! Work handed to the worker pool, and its results taken back: commits,
//! verifies, and the crc32c of a resumed transfer's kept bytes.

use std::io;
use std::time::Instant;

use log::{debug, error, info, warn};
use slab::Slab;

use super::conn::{Conn, ConnId};
use super::exec::client_message;
use super::stream::start_send;
use crate::io::stage::CommitFailure;
use crate::io::worker::{Done, Job, Workers};

/// Takes a result from the workers back to its connection; returns the
/// connection to drive, if it is still there.
pub(super) fn finish_job(conns: &mut Slab<Conn>, done: Done, now: Instant) -> Option<ConnId> {
    let ticket = match &done {
        Done::Committed { ticket, .. }
        | Done::Verifying { ticket, .. }
        | Done::Crc { ticket, .. } => *ticket,
    };
    let c = conns.get_mut(ticket.key).filter(|c| c.ticket == ticket)?;
    // The time spent waiting for the disk is not idle time (regression: a
    // 40 s commit under -t 30 was answered, then timed out at once).
    c.session.handle_activity(now);
    match done {
        Done::Committed {
            id,
            store,
            failures,
            elapsed,
            ..
        } => {
            debug!(
                "{}: commit took {:.1} ms",
                c.label(),
                elapsed.as_secs_f64() * 1e3
            );
            c.store = Some(*store);
            c.waiting = false;
            committed(c, id, failures);
        }
        Done::Crc { result, .. } => {
            c.waiting = false;
            prefix_crc_done(c, result);
        }
        Done::Verifying {
            id,
            damaged,
            counts,
            finished,
            ..
        } => {
            for (path, why) in damaged {
                warn!("{}: verify: {}: {why}", c.label(), path);
                c.session.handle_failed(id, path, why);
            }
            if !finished {
                c.session.send_progress(id, counts.files, counts.bytes);
            }
            if finished {
                info!(
                    "{}: verified {} files, {} bytes: {} damaged, {} without a checksum",
                    c.label(),
                    counts.files,
                    counts.bytes,
                    counts.damaged,
                    counts.unchecked
                );
                c.session.send_verified(id, counts);
                c.waiting = false;
            }
        }
    }
    Some(ConnId(ticket.key))
}

/// A resumed backup's kept bytes are read for their crc32c on a worker;
/// the body waits (the connection reads nothing) until that is done.
pub(super) fn defer_prefix_crc(c: &mut Conn, workers: &Workers) {
    let Some(store) = c.store.as_mut() else {
        return;
    };
    let Some(inc) = store.incoming().filter(|i| i.prefix_pending) else {
        return;
    };
    let (id, path, len) = (inc.id, inc.path.clone(), inc.offset);
    let job = inc.file.try_clone().map(|file| Job::Crc {
        ticket: c.ticket,
        file,
        len,
    });
    match job.map(|j| workers.submit(j)) {
        Ok(Ok(())) => c.waiting = true,
        Ok(Err(_)) | Err(_) => {
            // Keep the partial: a later transfer can still resume it.
            store.abort_file();
            c.batch.failed += 1;
            c.session
                .handle_failed(id, path, "resume: cannot read the kept part".into());
        }
    }
}

/// The crc32c of a resumed transfer's kept bytes is back.
pub(super) fn prefix_crc_done(c: &mut Conn, result: io::Result<u32>) {
    if let Some((id, o, offset)) = c.resuming.take() {
        start_send(c, id, o, offset, result);
        return;
    }
    let who = c.label();
    let Some(store) = c.store.as_mut() else {
        return;
    };
    let Some(inc) = store.incoming() else {
        return;
    };
    match result {
        Ok(crc) => {
            inc.crc = crc;
            inc.prefix_pending = false;
        }
        Err(e) => {
            let (id, path) = (inc.id, inc.path.clone());
            warn!("{who}: {path}: resume: {}", crate::io::describe(&e));
            store.abort_file();
            c.batch.failed += 1;
            c.session
                .handle_failed(id, path, format!("resume: {}", crate::io::describe(&e)));
        }
    }
}

/// Reports a finished commit to the client and the log.
pub(super) fn committed(c: &mut Conn, id: u32, failures: Vec<CommitFailure>) {
    let who = c.label();
    for f in failures {
        error!("{who}: commit: {}", f.error);
        c.batch.failed += 1;
        c.session
            .handle_failed(f.id, f.path, client_message(&f.error));
    }
    let batch = std::mem::take(&mut c.batch);
    info!(
        "{who}: backup committed: {} entries, {} bytes, {} failed",
        batch.entries, batch.bytes, batch.failed
    );
    c.total.entries += batch.entries;
    c.total.bytes += batch.bytes;
    c.total.failed += batch.failed;
    c.session.handle_committed(id);
}
