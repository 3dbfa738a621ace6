//! The `verify` command: asks the server to re-read its copy of a path and
//! names every stored file whose bytes no longer match the crc32c recorded
//! when it was stored.

use std::path::Path;

use super::error::NetError;
use super::event_loop::Link;
use super::report::{show, Reporter};
use super::walk::wire_path;
use crate::client::session::Event;
use crate::client::ui;
use crate::proto::WirePath;

/// Verifies `path` (the whole namespace when `None`). Damaged files count
/// as failures (exit status 1).
pub fn verify(
    link: &mut Link<'_>,
    path: Option<&Path>,
    rep: &mut Reporter,
) -> Result<(), NetError> {
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
    link.session().send_verify(wire);
    let mut named = 0u64;
    loop {
        link.step(None)?;
        while let Some(ev) = link.session().poll_event() {
            match ev {
                Event::Failed { path, message, .. } => {
                    named += 1;
                    rep.damaged(&path.to_string(), &message);
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
                            &format!(
                                "{} not named",
                                ui::count(
                                    damaged - named,
                                    "more damaged file",
                                    "more damaged files"
                                )
                            ),
                        );
                        rep.counts.failed += damaged - named - 1;
                    }
                    rep.finish_verify(files, bytes, damaged, unchecked);
                    return Ok(());
                }
                Event::Refused { code, message } => return Err(link.refused(code, &message)),
                _ => {}
            }
        }
        if link.session().is_closed() {
            return Err(link.broken());
        }
    }
}
