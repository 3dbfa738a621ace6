//! Streaming answers: a listing, and a restore walked depth first with
//! its file bodies sent by sendfile (large ones offered first, so an
//! interrupted restore can resume).

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;

use log::{debug, info, warn};
use nix::sys::stat;

use super::conn::{Conn, Stats};
use super::exec::{cause, client_message};
use crate::io::kind_of;
use crate::io::meta_of;
use crate::io::sandbox::{Beneath, FsError};
use crate::io::stage::RESUME_MIN;
use crate::io::transfer::BodySender;
use crate::proto::{EntryKind, Frame, ListItem, Meta, WirePath};
use crate::server::session::ServerSession;

/// Entries one `produce` call stats and queues at most.
pub(super) const ENTRIES_PER_CALL: u64 = 256;
/// Output queued before the loop stops producing listing/restore frames.
pub(super) const STREAM_HIGH_WATER: usize = 64 * 1024;

/// A listing being sent: the names still to stat.
pub(super) struct ListStream {
    pub(super) id: u32,
    pub(super) dir: WirePath,
    pub(super) names: VecDeque<Vec<u8>>,
}

/// A restore being sent: a depth-first walk with one name list per level.
pub(super) struct RestoreStream {
    pub(super) id: u32,
    pub(super) base: WirePath,
    pub(super) started: bool,
    /// Directories being sent: path, names still to send, and the
    /// directory's own metadata, sent after its contents.
    pub(super) stack: Vec<(WirePath, VecDeque<Vec<u8>>, Meta)>,
    pub(super) stats: Stats,
}

pub(super) enum Stream {
    List(ListStream),
    Restore(RestoreStream),
}

/// A large restored file offered to the client, waiting for its `Want`.
pub(super) struct Offered {
    pub(super) fd: std::os::fd::OwnedFd,
    pub(super) rel: WirePath,
    pub(super) meta: Meta,
    pub(super) size: u64,
    pub(super) shown: String,
}

/// What a restored entry leaves for the loop to do.
pub(super) enum Pending {
    /// Send this body now.
    Send(BodySender),
    /// Wait for the client's `Want`, then send from its offset.
    Offer(Offered),
}

/// Starts sending the offered file `o` from `offset`, the bytes before
/// it having crc32c `prefix` (or failed to be read).
pub(super) fn start_send(c: &mut Conn, id: u32, o: Offered, offset: u64, prefix: io::Result<u32>) {
    let recorded = recorded_crc(&o.fd, o.size);
    match prefix.and_then(|crc| BodySender::with_prefix_crc(o.fd, o.size, offset, crc)) {
        Ok(mut tx) => {
            if let Some(crc) = recorded {
                tx.expect_crc(crc);
            }
            if offset > 0 {
                debug!(
                    "{}: resuming restore of {} at byte {offset}",
                    c.label(),
                    o.shown
                );
            }
            c.session.send_entry(&Frame::FileFrom {
                id,
                path: o.rel,
                meta: o.meta,
                size: o.size,
                offset,
            });
            c.send = Some((id, tx));
        }
        Err(e) => {
            warn!("{}: {}: {}", c.label(), o.shown, crate::io::describe(&e));
            c.session
                .handle_failed(id, o.rel, format!("read: {}", crate::io::describe(&e)));
        }
    }
}

/// The crc32c recorded for a stored file of this size, if any.
pub(super) fn recorded_crc(fd: &std::os::fd::OwnedFd, size: u64) -> Option<u32> {
    use std::os::fd::AsFd;
    crate::io::checksum::recorded(fd.as_fd())
        .ok()
        .flatten()
        .filter(|r| r.size == size)
        .map(|r| r.crc)
}

pub(super) fn list_item(
    tree: &Beneath,
    path: &WirePath,
    name: &[u8],
    st: &stat::FileStat,
) -> Result<ListItem, FsError> {
    let kind = kind_of(st).ok_or_else(|| FsError {
        op: "list",
        path: tree.show(path),
        error: io::Error::other("not a regular file, directory or symlink"),
    })?;
    let target = if kind == EntryKind::Symlink {
        tree.readlink(path)?
    } else {
        Vec::new()
    };
    let size = match kind {
        EntryKind::File => st.st_size.max(0) as u64,
        EntryKind::Symlink => target.len() as u64,
        EntryKind::Dir => st.st_size.max(0) as u64,
    };
    Ok(ListItem {
        kind,
        name: name.to_vec(),
        meta: meta_of(st),
        size,
        target,
    })
}

/// Queues more listing or restore frames, at most [`ENTRIES_PER_CALL`].
/// Returns how many entries it handled (0: nothing to do).
pub(super) fn produce(c: &mut Conn) -> u64 {
    let Some(store) = c.store.as_ref() else {
        return 0;
    };
    let tree = store.tree();
    let Some(stream) = c.stream.as_mut() else {
        return 0;
    };
    let mut count: u64 = 0;
    match stream {
        Stream::List(l) => {
            while c.session.poll_transmit().len() < STREAM_HIGH_WATER && count < ENTRIES_PER_CALL {
                let Some(name) = l.names.pop_front() else {
                    c.session.send_done(l.id);
                    c.stream = None;
                    return count + 1;
                };
                count += 1;
                let Ok(path) = l.dir.join(&name) else {
                    continue;
                };
                // Entries that vanish between readdir and stat are simply gone.
                if let Ok(st) = tree.lstat(&path) {
                    if let Ok(item) = list_item(tree, &path, &name, &st) {
                        c.session.send_list_entry(l.id, item);
                    }
                }
            }
        }
        Stream::Restore(r) => {
            while c.send.is_none()
                && c.offered.is_none()
                && c.session.poll_transmit().len() < STREAM_HIGH_WATER
                && count < ENTRIES_PER_CALL
            {
                count += 1;
                let rel = if !r.started {
                    r.started = true;
                    WirePath::root()
                } else {
                    let Some((dir, names, _)) = r.stack.last_mut() else {
                        let who = c.session.name().unwrap_or("?").to_string();
                        info!(
                            "{who}: restore {} sent: {} entries, {} bytes, {} failed",
                            r.base, r.stats.entries, r.stats.bytes, r.stats.failed
                        );
                        c.session.send_done(r.id);
                        c.stream = None;
                        return count + 1;
                    };
                    match names.pop_front() {
                        Some(name) => match dir.join(&name) {
                            Ok(p) => p,
                            Err(_) => continue,
                        },
                        None => {
                            if let Some((dir, _, meta)) = r.stack.pop() {
                                c.session.send_entry(&Frame::Dir {
                                    id: r.id,
                                    path: dir,
                                    meta,
                                });
                            }
                            continue;
                        }
                    }
                };
                match restore_entry(tree, r, &rel, &mut c.session) {
                    Ok(Some(Pending::Send(tx))) => c.send = Some((r.id, tx)),
                    Ok(Some(Pending::Offer(o))) => c.offered = Some(o),
                    Ok(None) => {}
                    Err(e) => {
                        r.stats.failed += 1;
                        let shown = r.base.join_path(&rel).unwrap_or_else(|_| rel.clone());
                        let msg = if rel.is_root() {
                            cause(&e)
                        } else {
                            client_message(&e)
                        };
                        c.session.handle_failed(r.id, shown, msg);
                    }
                }
            }
        }
    }
    count
}

/// Sends the header of one restored entry; a file also gets its sender.
pub(super) fn restore_entry(
    tree: &Beneath,
    r: &mut RestoreStream,
    rel: &WirePath,
    session: &mut ServerSession,
) -> Result<Option<Pending>, FsError> {
    let full = r
        .base
        .join_path(rel)
        .map_err(|e| FsError::invalid("restore", tree.show(&r.base), e))?;
    let st = tree.lstat(&full)?;
    let other = || FsError {
        op: "restore",
        path: tree.show(&full),
        error: io::Error::other("not a regular file, directory or symlink"),
    };
    let kind = kind_of(&st).ok_or_else(other)?;
    r.stats.entries += 1;
    match kind {
        EntryKind::Dir => {
            let names = tree.read_dir(&full)?;
            r.stack.push((rel.clone(), names.into(), meta_of(&st)));
            Ok(None)
        }
        EntryKind::Symlink => {
            let target = tree.readlink(&full)?;
            session.send_entry(&Frame::Symlink {
                id: r.id,
                path: rel.clone(),
                target,
                meta: meta_of(&st),
            });
            Ok(None)
        }
        EntryKind::File => {
            let fd = tree.open_file(&full)?;
            // Stat the open file, not the name: this is what will be sent.
            let st = stat::fstat(fd.as_raw_fd())
                .map_err(|e| FsError::errno("stat", tree.show(&full), e))?;
            if kind_of(&st) != Some(EntryKind::File) {
                return Err(other());
            }
            let size = st.st_size.max(0) as u64;
            if size >= RESUME_MIN {
                // Large: the client may hold part of it from an earlier,
                // interrupted restore. Ask before sending.
                session.send_offer(r.id, rel.clone(), meta_of(&st), size);
                return Ok(Some(Pending::Offer(Offered {
                    fd,
                    rel: rel.clone(),
                    meta: meta_of(&st),
                    size,
                    shown: tree.show(&full),
                })));
            }
            let recorded = recorded_crc(&fd, size);
            let mut tx = BodySender::new(fd, size).map_err(|error| FsError {
                op: "stat",
                path: tree.show(&full),
                error,
            })?;
            if let Some(crc) = recorded {
                tx.expect_crc(crc);
            }
            session.send_entry(&Frame::File {
                id: r.id,
                path: rel.clone(),
                meta: meta_of(&st),
                size,
            });
            Ok(Some(Pending::Send(tx)))
        }
    }
}
