//! The `ls` command: prints the server's listing like `ls -l` (of the
//! tree now, or as it was at a time: the server resolves the past).

use std::path::Path;

use super::error::NetError;
use super::event_loop::Link;
use super::report::{show, Reporter};
use super::walk::{local_time, wire_path};
use crate::client::session::Event;
use crate::client::ui::format_list_line;
use crate::proto::{Time, WirePath};

/// Lists `path` (the namespace root when `None`) on stdout, as it was at
/// `at` when given.
pub fn list(
    link: &mut Link<'_>,
    path: Option<&Path>,
    at: Option<Time>,
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
    let mut out = String::new();
    let mut lines: Vec<(Vec<u8>, String)> = Vec::new();
    let mut entries = 0u64;
    match at {
        Some(at) => link.session().send_list_at(wire.clone(), at),
        None => link.session().send_list(wire.clone()),
    };
    loop {
        link.step(None)?;
        while let Some(ev) = link.session().poll_event() {
            match ev {
                Event::ListEntry { mut item, .. } => {
                    if item.name.is_empty() {
                        item.name = wire.to_string().into_bytes();
                    }
                    entries += 1;
                    // The server lists in its directory's order: sorted
                    // here, by name, for display.
                    let line = format_list_line(&item, local_time(item.meta.mtime.secs));
                    lines.push((item.name, line));
                }
                Event::Failed { path, message, .. } => rep.fail(&path.to_string(), &message),
                Event::Done { .. } => {
                    lines.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                    for (_, line) in lines.drain(..) {
                        out.push_str(&line);
                        out.push('\n');
                        if out.len() > 64 * 1024 {
                            print_out(&mut out);
                        }
                    }
                    print_out(&mut out);
                    rep.finish_list(entries);
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

/// Writes what was gathered to stdout and empties it.
pub(super) fn print_out(out: &mut String) {
    use std::io::Write;
    let mut so = std::io::stdout().lock();
    let _ = so.write_all(out.as_bytes());
    let _ = so.flush();
    out.clear();
}
