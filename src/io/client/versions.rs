//! The `versions` command: prints every version the server holds of a
//! path, newest first (for a directory also the entries history keeps
//! beneath it that are no longer current), then how many and the bytes
//! history holds for the path. Must not decide anything about history:
//! the server resolves it ([`crate::store::past`]); this only prints.

use super::list::print_out;
use std::path::Path;

use super::error::NetError;
use super::event_loop::Link;
use super::report::{show, Reporter};
use super::walk::wire_path;
use crate::client::session::Event;
use crate::client::ui::{format_version_line, format_versions_summary};
use crate::io::clock::local_civil;

/// Prints the versions of `path` on stdout. A path the server never held
/// is a failure (exit status 1), as for `ls`.
pub fn versions(link: &mut Link<'_>, path: &Path, rep: &mut Reporter) -> Result<(), NetError> {
    let wire = match wire_path(path) {
        Ok(w) => w,
        Err(e) => {
            rep.fail(&show(path), &e);
            return Ok(());
        }
    };
    link.session().send_versions(wire);
    let mut out = String::new();
    let (mut count, mut held) = (0u64, 0u64);
    loop {
        link.step(None)?;
        while let Some(ev) = link.session().poll_event() {
            match ev {
                Event::Version { item, .. } => {
                    count += 1;
                    held = item.held;
                    out.push_str(&format_version_line(&item, &local_civil));
                    out.push('\n');
                    if out.len() > 64 * 1024 {
                        print_out(&mut out);
                    }
                }
                Event::Failed { path, message, .. } => rep.fail(&path.to_string(), &message),
                Event::Done { .. } => {
                    if count > 0 {
                        out.push_str(&format_versions_summary(count, held));
                        out.push('\n');
                    }
                    print_out(&mut out);
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
