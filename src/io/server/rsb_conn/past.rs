//! The answers about the past for one backup connection: a listing of a
//! directory as it was at a time, the start of a restore of the tree then
//! (walked by `stream.rs` like today's), and the versions of a path.
//! Reads the store only through the namespace's history
//! ([`crate::io::store::Past`]); the rules are [`crate::store::past`]'s.
//!
//! A listing and the versions of a path are read at once, in the loop:
//! bounded by what one directory (or one path's history) holds, not
//! streamed in chunks like today's listing.

use log::info;

use super::exec::cause;
use super::stream::Then;
use super::RsbConn;
use crate::io::kind_of;
use crate::io::store::Past;
use crate::proto::{EntryKind, Time, WirePath};
use crate::server::session::Completion;
use crate::store::history::batch_name;
use crate::store::past::{children_at, version_at};

/// Why a path is missing from the tree at `at`: "no such path at TIME".
pub(in crate::io::server) fn missing_at(at: Time) -> String {
    let name = batch_name(at.secs, at.nanos);
    let shown = String::from_utf8_lossy(&name);
    // 2026-12-02T21:40:05.000000000Z reads as 2026-12-02T21:40:05Z.
    let shown = shown.replace(".000000000Z", "Z");
    format!("no such path at {shown}")
}

impl RsbConn {
    /// Lists `path` as it was at `at`: its entries then (or the entry
    /// itself when it was no directory), then `Done`.
    pub(super) fn list_at(&mut self, id: u32, path: WirePath, at: Time) {
        info!("{}: ls --at {} {path}", self.who(), at.secs);
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let tree = store.tree();
        let history = tree.history();
        let past = Past {
            tree,
            history: &history,
        };
        let mut listed = Vec::new();
        let mut failed = None;
        match version_at(&past, at, &path).and_then(|loc| past.phys(loc, &path)) {
            None => failed = Some(missing_at(at)),
            Some(phys) => match tree.lstat(&phys) {
                Err(e) => failed = Some(cause(&e)),
                Ok(st) if kind_of(&st) == Some(EntryKind::Dir) => {
                    for (name, loc) in children_at(&past, at, &path) {
                        let Some(p) = path.join(&name).ok().and_then(|p| past.phys(loc, &p)) else {
                            continue;
                        };
                        // Entries that vanish meanwhile are simply gone.
                        if let Ok(st) = tree.lstat(&p) {
                            if let Ok(item) = tree.list_item(&p, &name, &st) {
                                listed.push(item);
                            }
                        }
                    }
                }
                Ok(st) => match tree.list_item(&phys, b"", &st) {
                    Ok(item) => listed.push(item),
                    Err(e) => failed = Some(e.short()),
                },
            },
        }
        for item in listed {
            self.session
                .handle_completion(Completion::Listed { id, item });
        }
        if let Some(message) = failed {
            self.session
                .handle_completion(Completion::Failed { id, path, message });
        }
        self.session.handle_completion(Completion::Done { id });
    }

    /// Starts the restore of `path` as it was at `at`; a path that did
    /// not exist then fails at once.
    pub(super) fn restore_at(&mut self, id: u32, path: WirePath, at: Time) {
        info!(
            "{}: restore --at {} {path} (from {})",
            self.who(),
            at.secs,
            self.peer
        );
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let tree = store.tree();
        let history = tree.history();
        let top = version_at(
            &Past {
                tree,
                history: &history,
            },
            at,
            &path,
        );
        match top {
            Some(top) => self.start_restore(id, path, Some(Box::new(Then { at, history, top }))),
            None => {
                self.session.handle_completion(Completion::Failed {
                    id,
                    path,
                    message: missing_at(at),
                });
                self.session.handle_completion(Completion::Done { id });
            }
        }
    }

    /// Answers `Versions` of `path`: each version, newest first, then
    /// `Done`; a path history never held and that is not current fails.
    pub(super) fn versions(&mut self, id: u32, path: WirePath) {
        info!("{}: versions {path}", self.who());
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let tree = store.tree();
        let history = tree.history();
        let found = Past {
            tree,
            history: &history,
        }
        .versions(&path);
        if found.items.is_empty() {
            self.session.handle_completion(Completion::Failed {
                id,
                path: path.clone(),
                message: "not on the server, nor in its history".into(),
            });
        }
        if found.unreadable > 0 {
            self.session.handle_completion(Completion::Failed {
                id,
                path,
                message: format!("{} versions could not be read", found.unreadable),
            });
        }
        for item in found.items {
            self.session
                .handle_completion(Completion::Version { id, item });
        }
        self.session.handle_completion(Completion::Done { id });
    }
}
