//! Downloads: `GET`/`HEAD /files/NAME/PATH[?at=TIME]`. A stored file is
//! opened through the store (never through a symlink), described by its
//! open descriptor, and answered as the pure range rules say (200, 206,
//! multipart, 304, 412, 416); its body goes out with sendfile. A directory
//! with `?format=tar` is a tar stream (`tarball.rs`).
//!
//! Integrity: a whole file with a recorded crc32c is checked as it goes
//! (`body.rs` holds its last byte back). A range cannot be checked by
//! itself, so the first range of such a file waits for a worker to read
//! the whole file and compare it with the record; the verdict is kept for
//! that file (device, inode, size, mtime), so a player's many ranges or a
//! resumed download pay for it once. A file known to be damaged is
//! answered 500, never as good. One check of a file is in flight at a
//! time, whoever asks: the others wait for its result, and at most
//! [`MAX_CHECKS`] files are checked at once (beyond, a range of an
//! unchecked file is answered 503 with `Retry-After`); see
//! [`crate::server::web::checks`]. A waiting answer has the stall deadline
//! (`-t`) of any other.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::rc::Rc;

use log::error;

use super::answer::{Asked, Headers};
use super::body::FileRange;
use super::tarball::TarStream;
use super::WebConn;
use crate::io::server::Env;
use crate::io::store::StoredFile;
use crate::io::worker::{Done, Job, Ticket};
use crate::proto::EntryKind;
use crate::server::web::checks::{Joined, MAX_CHECKS};
use crate::server::web::date::format_http_date;
use crate::server::web::html;
use crate::server::web::mime::{content_type, disposition};
use crate::server::web::range::{self, Answer, Validators};
use crate::server::web::request::Method;
use crate::server::web::route::Query;

/// Verdicts kept at most (then forgotten all at once: a cache, not a
/// record).
const MAX_VERDICTS: usize = 4096;

/// Identifies a file's content for a verdict: device, inode, size, mtime.
pub(in crate::io::server) type FileId = (u64, u64, u64, i64, i64);

/// The whole-file checks in flight: by file and recorded crc32c, waited
/// for by connections.
pub(in crate::io::server) type Checks = crate::server::web::checks::Checks<(FileId, u32), Ticket>;

/// The slab key of a check's ticket: no connection's (a slab never grows
/// that far), so the loop tells a check's result from a connection's.
const CHECK_KEY: usize = usize::MAX;

/// Seconds a range refused at the cap is told to wait.
const CHECK_RETRY_SECS: u32 = 5;

/// The ticket is a web check's, not a connection's.
pub(in crate::io::server) fn is_check(t: Ticket) -> bool {
    t.key == CHECK_KEY
}

/// The check `t` came back: keeps the verdict, and returns each waiting
/// connection with the result to hand it (those closed meanwhile are not
/// found by the loop and so dropped).
pub(in crate::io::server) fn check_done(
    env: &Env,
    t: Ticket,
    result: io::Result<u32>,
) -> Vec<(Ticket, Done)> {
    let Some(web) = env.web.as_ref() else {
        return Vec::new();
    };
    let Some(((id, recorded), waiters)) = web.checks.borrow_mut().finish(t.generation) else {
        return Vec::new();
    };
    if let Ok(crc) = &result {
        let mut v = web.verdicts.borrow_mut();
        if v.len() >= MAX_VERDICTS {
            v.clear();
        }
        v.insert(id, *crc == recorded);
    }
    waiters
        .into_iter()
        .map(|w| {
            let each = match &result {
                Ok(crc) => Ok(*crc),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            (
                w,
                Done::Crc {
                    ticket: w,
                    result: each,
                },
            )
        })
        .collect()
}

/// A range answer waiting for the whole file's check.
pub(super) struct Pending {
    file: Rc<StoredFile>,
    recorded: u32,
    answer: Answer,
    headers: Headers,
    kind: &'static str,
}

impl WebConn {
    /// Answers a download.
    pub(super) fn download(
        &mut self,
        env: &Env,
        asked: &Asked<'_>,
        name: &str,
        segments: &[Vec<u8>],
        tar: bool,
        q: &Query,
    ) {
        let Some((view, path, at)) = self.open_view(env, asked, name, segments, q) else {
            return;
        };
        let Some(phys) = view.phys(&path) else {
            return self.error_answer(404, &super::pages::missing(&path, at.as_ref()));
        };
        let st = match view.ns.lstat(&phys) {
            Ok(st) => st,
            Err(_) => return self.error_answer(404, &super::pages::missing(&path, at.as_ref())),
        };
        // The stored kind: a device kept as a metadata-only stand-in is a
        // device here, not the empty file on disk.
        let kind = view.ns.list_item(&phys, b"", &st).map(|i| i.kind).ok();
        match kind {
            Some(EntryKind::Dir) => {
                if !tar {
                    let keep = super::pages::keep_query(at.as_ref());
                    let to = format!(
                        "/browse/{name}/{}{}{keep}",
                        html::encode_path(path.as_bytes()),
                        if path.is_root() { "" } else { "/" }
                    );
                    return self.redirect(&to);
                }
                let base = path
                    .as_bytes()
                    .rsplit(|b| *b == b'/')
                    .next()
                    .filter(|b| !b.is_empty())
                    .map_or_else(|| name.as_bytes().to_vec(), <[u8]>::to_vec);
                let mut archive = base.clone();
                archive.extend_from_slice(b".tar");
                let h: Headers = vec![
                    ("Content-Type", "application/x-tar".to_string()),
                    ("Content-Disposition", disposition(&archive)),
                    ("X-Content-Type-Options", "nosniff".to_string()),
                    ("Cache-Control", "no-store".to_string()),
                ];
                if matches!(asked.req.method, Method::Head) {
                    let head = self.head(200, &h, None);
                    self.out.push_bytes(head);
                    self.close_after = true;
                    return;
                }
                // The length is not known before the walk: the stream
                // ends the connection (HTTP/1.1 without chunking, the
                // simplest framing every tar reader takes).
                self.close_after = true;
                let head = self.head(200, &h, None);
                self.out.push_bytes(head);
                self.tar = Some(Box::new(TarStream::new(view, path, phys, base)));
            }
            Some(EntryKind::File | EntryKind::HardLink) => {
                let file = match view.ns.open_stored(&phys) {
                    Ok(f) if f.is_file() => f,
                    Ok(_) => return self.error_answer(404, "not a regular file"),
                    Err(e) => return self.error_answer(404, &e.short()),
                };
                self.send_file(env, asked, file, path.as_bytes());
            }
            Some(EntryKind::Symlink) => self.error_answer(
                404,
                "a symbolic link: the server never follows one (its target is on the listing)",
            ),
            _ => self.error_answer(404, "not a regular file (a device, FIFO or socket)"),
        }
    }

    /// Answers with `file`, as the request's preconditions and range say.
    fn send_file(&mut self, env: &Env, asked: &Asked<'_>, file: StoredFile, path: &[u8]) {
        let Some(web) = env.web.as_ref() else {
            return;
        };
        let size = file.size();
        let meta = file.meta();
        let (dev, ino) = nix::sys::stat::fstat(file.as_fd().as_raw_fd())
            .map_or((0, 0), |st| (st.st_dev, st.st_ino));
        let recorded = file.recorded_crc();
        let id: FileId = (dev, ino, size, meta.mtime.secs, meta.mtime.nanos as i64);
        let v = Validators {
            etag: range::etag(
                size,
                meta.mtime.secs,
                meta.mtime.nanos,
                recorded.unwrap_or(0),
                ino,
            ),
            mtime: meta.mtime.secs,
            size,
            now: asked.wall.secs,
        };
        let name = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
        let kind = content_type(name);
        let h: Headers = vec![
            ("Last-Modified", format_http_date(meta.mtime.secs)),
            ("ETag", v.etag.clone()),
            ("Accept-Ranges", "bytes".to_string()),
            ("Content-Disposition", disposition(name)),
            ("X-Content-Type-Options", "nosniff".to_string()),
            ("Cache-Control", "private, no-cache".to_string()),
        ];
        let answer = range::answer(&asked.req.method, asked.req, &v);
        if recorded.is_some() && web.verdicts.borrow().get(&id) == Some(&false) {
            return self.damaged(path);
        }
        let file = Rc::new(file);
        let ranged = matches!(answer, Answer::Partial(_) | Answer::Multi(_));
        let head_only = matches!(asked.req.method, Method::Head);
        // A HEAD sends no byte of the file: nothing to check first.
        if let (true, Some(rec), false) = (ranged, recorded, head_only) {
            if web.verdicts.borrow().get(&id) != Some(&true) {
                // The whole file is checked first, on a worker, once
                // however many ask.
                let joined = web.checks.borrow_mut().join((id, rec), self.ticket);
                match joined {
                    Joined::Waiting => {}
                    Joined::Full => return self.checks_full(),
                    Joined::Start(n) => {
                        if let Err((status, why)) = self.start_check(env, &file, size, n) {
                            // Nobody else waits for a check just begun.
                            web.checks.borrow_mut().finish(n);
                            return self.error_answer(status, &why);
                        }
                    }
                }
                self.pending = Some(Box::new(Pending {
                    file,
                    recorded: rec,
                    answer,
                    headers: h,
                    kind,
                }));
                return;
            }
        }
        self.answer_file(file, answer, h, kind, recorded, head_only);
    }

    /// Submits the check numbered `n` of `file` to the workers.
    fn start_check(
        &mut self,
        env: &Env,
        file: &StoredFile,
        size: u64,
        n: u64,
    ) -> Result<(), (u16, String)> {
        let copy = file.try_clone().map_err(|e| (500, e.short()))?;
        let job = Job::Crc {
            ticket: Ticket {
                key: CHECK_KEY,
                generation: n,
            },
            file: copy,
            len: size,
        };
        if env.workers.submit(job).is_err() {
            return Err((503, "the server is stopping".to_string()));
        }
        env.status.borrow_mut().counters.web_crc_checks += 1;
        Ok(())
    }

    /// A range of an unchecked file while [`MAX_CHECKS`] checks are under
    /// way: 503, try again soon.
    fn checks_full(&mut self) {
        let body = super::answer::error_body(
            503,
            "Service Unavailable",
            &format!(
                "{MAX_CHECKS} stored files are being checked whole before ranges of them are sent: try again in {CHECK_RETRY_SECS} s"
            ),
        );
        self.respond(
            503,
            vec![("Retry-After", CHECK_RETRY_SECS.to_string())],
            body,
            true,
        );
    }

    /// A worker's check of a pending range answer's file came back.
    pub(super) fn finish_pending(&mut self, p: Pending, result: io::Result<u32>) {
        let good = match result {
            Ok(crc) => crc == p.recorded,
            Err(e) => {
                error!("{}: download: cannot read the stored file: {e}", self.peer);
                return self.error_answer(500, &format!("cannot read the file: {e}"));
            }
        };
        // The verdict is kept by `check_done`, once for every waiter.
        if !good {
            return self.damaged(b"");
        }
        self.answer_file(p.file, p.answer, p.headers, p.kind, None, false);
    }

    fn damaged(&mut self, path: &[u8]) {
        error!(
            "{}: refused a download of a damaged file {}: its bytes no longer match the crc32c recorded when it was stored",
            self.peer,
            crate::proto::path::escape(path)
        );
        self.error_answer(
            500,
            "the stored file is damaged: its bytes no longer match the checksum recorded when it was stored (run verify)",
        );
    }

    /// Queues the answer the range rules chose.
    fn answer_file(
        &mut self,
        file: Rc<StoredFile>,
        answer: Answer,
        mut h: Headers,
        kind: &'static str,
        recorded: Option<u32>,
        head_only: bool,
    ) {
        let size = file.size();
        match answer {
            Answer::Full => {
                h.push(("Content-Type", kind.to_string()));
                let head = self.head(200, &h, Some(size));
                self.out.push_bytes(head);
                if !head_only {
                    self.out.push_file(FileRange::whole(file, recorded));
                }
            }
            Answer::Partial(r) => {
                h.push(("Content-Type", kind.to_string()));
                h.push(("Content-Range", range::content_range(r, size)));
                let head = self.head(206, &h, Some(r.len()));
                self.out.push_bytes(head);
                self.out
                    .push_file(FileRange::new(file, r.start, r.start + r.len()));
            }
            Answer::Multi(rs) => {
                let boundary = range::boundary(self.ticket.generation ^ size);
                let total = range::multipart_len(&boundary, kind, &rs, size);
                h.push((
                    "Content-Type",
                    format!("multipart/byteranges; boundary={boundary}"),
                ));
                let head = self.head(206, &h, Some(total));
                self.out.push_bytes(head);
                for r in &rs {
                    let part = range::multipart_part_head(&boundary, kind, *r, size);
                    self.out.push_bytes(part.into_bytes());
                    self.out
                        .push_file(FileRange::new(file.clone(), r.start, r.start + r.len()));
                }
                self.out
                    .push_bytes(range::multipart_tail(&boundary).into_bytes());
            }
            Answer::NotModified => {
                let head = self.head(304, &h, None);
                self.out.push_bytes(head);
            }
            Answer::PreconditionFailed => {
                let body =
                    super::answer::error_body(412, "Precondition Failed", "the file changed");
                self.respond_body(412, h, body, false);
            }
            Answer::Unsatisfiable => {
                h.push(("Content-Range", range::unsatisfied_range(size)));
                let body = super::answer::error_body(
                    416,
                    "Range Not Satisfiable",
                    "the range is past the end of the file",
                );
                self.respond_body(416, h, body, false);
            }
        }
    }
}
