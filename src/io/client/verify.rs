//! The `verify` command: asks the server to re-read its copy of a path and
//! names every stored file whose bytes no longer match the crc32c recorded
//! when it was stored.

use std::path::Path;

use super::conn::{Conn, ConnError};
use super::report::{show, Reporter};
use super::walk::wire_path;
use crate::client::session::Event;
use crate::proto::WirePath;

/// Verifies `path` (the whole namespace when `None`). Damaged files count
/// as failures (exit status 1).
pub fn verify(conn: &mut Conn, path: Option<&Path>, rep: &mut Reporter) -> Result<(), ConnError> {
    let wire = match path {
        None => WirePath::root(),
        Some(p) => match wire_path(p) {
            Ok(w) => w,
            Err(e) => {
                rep.fail(&show(p), &e);
                return Ok(());
            }
        },
    };
    conn.session.send_verify(wire);
    let mut named = 0u64;
    loop {
        conn.step(None)?;
        while let Some(ev) = conn.session.poll_event() {
            match ev {
                Event::Failed { path, message, .. } => {
                    named += 1;
                    rep.fail(&path.to_string(), &message);
                }
                Event::Progress { bytes, .. } => rep.progress(bytes, None),
                Event::Verified {
                    files,
                    bytes,
                    damaged,
                    unchecked,
                    ..
                } => {
                    // The server names a bounded number of files; the
                    // count covers them all.
                    if damaged > named {
                        rep.fail(
                            "verify",
                            &format!("{} more damaged files not named", damaged - named),
                        );
                        rep.counts.failed += damaged - named - 1;
                    }
                    rep.finish_verify(files, bytes, damaged, unchecked);
                    return Ok(());
                }
                Event::Refused { code, message } => return Err(conn.refused(code, &message)),
                _ => {}
            }
        }
        if conn.session.is_closed() {
            return Err(conn.broken());
        }
    }
}
