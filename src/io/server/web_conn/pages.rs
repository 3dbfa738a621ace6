//! The pages' data, gathered from the store, the loop's status and the
//! plans: the dashboard, `/metrics`, a directory listing (now or at a
//! time) and a file's versions. Reads the store only through its API
//! (`Store`, `Namespace`, `Past`), never through a path of its own; the
//! rendering is [`crate::server::web::pages`]'s.

use std::rc::Rc;

use log::warn;

use super::answer::Asked;
use super::WebConn;
use crate::io::kind_of;
use crate::io::server::Env;
use crate::io::store::{History, HistoryStamp, Namespace, Past};
use crate::proto::path::is_tmp_name;
use crate::proto::{EntryKind, Time, WirePath};
use crate::server::web::model::{Dashboard, FileVersions, ListEntry, Listing, VersionRow, Viewer};
use crate::server::web::route::Query;
use crate::server::web::{html, metrics, pages, target};
use crate::store::past::{children_at, version_at};

/// `?at=` as given and the time it names.
pub(super) type At = (String, Time);

/// Entries a listing shows at most (the rest are counted).
const MAX_LISTED: usize = 10_000;

/// How a listing was bounded.
pub(super) enum Cut {
    /// Read whole: this many entries beyond the cap are left out.
    Counted(u64),
    /// Read only up to the cap, this many: there are more, not counted.
    At(u64),
}

/// Where a read looks: the current tree, or the tree as it was at a time.
pub(super) struct View {
    pub(super) ns: Namespace,
    pub(super) past: Option<(Rc<History>, Time)>,
}

/// A namespace's history as read, and its directory's stamp then.
pub(in crate::io::server) type CachedHistory = (HistoryStamp, Rc<History>);

/// The history of the namespace `name` (open as `ns`): the one read last
/// while its directory's stamp is unchanged, else read again (reading
/// 1,000 batch indexes takes about 10 ms, too long for every `?at=`).
fn history_of(env: &Env, name: &str, ns: &Namespace) -> Rc<History> {
    let (Some(web), Some(stamp)) = (env.web.as_ref(), ns.history_stamp()) else {
        return Rc::new(ns.history());
    };
    if let Some((s, h)) = web.histories.borrow().get(name) {
        if *s == stamp {
            return h.clone();
        }
    }
    let h = Rc::new(ns.history());
    // Read again after the read: a batch published meanwhile makes the
    // stamps differ, and the history is not kept.
    if ns.history_stamp() == Some(stamp) {
        web.histories
            .borrow_mut()
            .insert(name.to_string(), (stamp, h.clone()));
    }
    h
}

impl View {
    /// Where `path`'s entry is stored (`None`: there was none then).
    pub(super) fn phys(&self, path: &WirePath) -> Option<WirePath> {
        match &self.past {
            None => Some(path.clone()),
            Some((h, t)) => {
                let past = Past {
                    tree: &self.ns,
                    history: h,
                };
                version_at(&past, *t, path).and_then(|loc| past.phys(loc, path))
            }
        }
    }

    /// The first `max` entries of the directory `path` (stored at
    /// `phys`), sorted by name, and whether there were more. The current
    /// tree is read a chunk at a time and no further than `max` + 1 names
    /// (the file system's order: those kept are its first); the tree at a
    /// time is gathered whole, as history needs every batch's names.
    pub(super) fn first_children(
        &self,
        path: &WirePath,
        phys: &WirePath,
        max: usize,
    ) -> (Vec<(Vec<u8>, WirePath)>, Cut) {
        if self.past.is_some() {
            let mut all = self.children(path, phys);
            let omitted = all.len().saturating_sub(max) as u64;
            all.truncate(max);
            return (all, Cut::Counted(omitted));
        }
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut more = false;
        if let Ok(mut cursor) = self.ns.dir_cursor(phys, 0) {
            'read: while let Ok(Some(chunk)) = cursor.next_chunk() {
                for d in chunk {
                    if names.len() >= max {
                        more = true;
                        break 'read;
                    }
                    names.push(d.name);
                }
            }
        }
        names.sort_unstable();
        let kept = names
            .into_iter()
            .filter_map(|n| phys.join(&n).ok().map(|p| (n, p)))
            .collect();
        (
            kept,
            if more {
                Cut::At(max as u64)
            } else {
                Cut::Counted(0)
            },
        )
    }

    /// The entries of the directory `path` (stored at `phys`): each name
    /// and where its entry is stored. The server's own hidden names are
    /// never shown.
    pub(super) fn children(&self, path: &WirePath, phys: &WirePath) -> Vec<(Vec<u8>, WirePath)> {
        match &self.past {
            None => self
                .ns
                .read_dir(phys)
                .unwrap_or_default()
                .into_iter()
                .filter(|n| !is_tmp_name(n))
                .filter_map(|n| phys.join(&n).ok().map(|p| (n, p)))
                .collect(),
            Some((h, t)) => {
                let past = Past {
                    tree: &self.ns,
                    history: h,
                };
                children_at(&past, *t, path)
                    .into_iter()
                    .filter(|(n, _)| !is_tmp_name(n))
                    .filter_map(|(n, loc)| {
                        let p = path.join(&n).ok()?;
                        past.phys(loc, &p).map(|ph| (n, ph))
                    })
                    .collect()
            }
        }
    }
}

impl WebConn {
    /// The dashboard's data for `viewer`.
    pub(super) fn dashboard(&self, env: &Env, viewer: &Viewer, wall: Time) -> Dashboard {
        let mut names = env.root.namespaces().unwrap_or_default();
        let plans = env.plans.borrow();
        for n in plans.names() {
            if !names.iter().any(|m| m == n) {
                names.push(n.to_string());
            }
        }
        names.retain(|n| crate::server::web::auth::may_see(viewer, n));
        names.sort();
        let status = env.status.borrow();
        let mut clients = status.rows(&names, viewer.sees_all);
        for c in &mut clients {
            c.plan = plans.get(&c.name).map(crate::server::plans::to_form);
        }
        let (free, total) = env.root.space().unzip();
        let errors = if viewer.sees_all {
            crate::io::log::recent()
                .into_iter()
                .map(|(secs, text)| crate::server::web::model::LoggedError {
                    at: Time { secs, nanos: 0 },
                    text,
                })
                .collect()
        } else {
            Vec::new()
        };
        Dashboard {
            version: env!("CARGO_PKG_VERSION").to_string(),
            now: wall,
            uptime_secs: wall.secs.saturating_sub(status.started().secs).max(0) as u64,
            root: env.config.root.display().to_string(),
            free_bytes: free,
            total_bytes: total,
            options: if viewer.sees_all {
                options(env)
            } else {
                Vec::new()
            },
            clients,
            errors,
        }
    }

    /// `/metrics` for `viewer` (a client name sees its own namespace's
    /// space only).
    pub(super) fn metrics_text(&self, env: &Env, viewer: &Viewer, wall: Time) -> String {
        let mut m = env.status.borrow().metrics(wall);
        m.space
            .retain(|(n, _)| crate::server::web::auth::may_see(viewer, n));
        metrics::render(&m)
    }

    /// `/browse/NAME/PATH[/]`: a listing, a file's versions, or a redirect
    /// between the two forms of a target.
    pub(super) fn browse(
        &mut self,
        env: &Env,
        asked: &Asked<'_>,
        name: &str,
        segments: &[Vec<u8>],
        dir: bool,
        q: &Query,
    ) {
        let Some((view, path, at)) = self.open_view(env, asked, name, segments, q) else {
            return;
        };
        let Some(phys) = view.phys(&path) else {
            return self.error_answer(404, &missing(&path, at.as_ref()));
        };
        let st = match view.ns.lstat(&phys) {
            Ok(st) => st,
            Err(_) => return self.error_answer(404, &missing(&path, at.as_ref())),
        };
        let is_dir = kind_of(&st) == Some(EntryKind::Dir);
        let base = format!("/browse/{name}/{}", html::encode_path(path.as_bytes()));
        let keep = keep_query(at.as_ref());
        if is_dir && !dir {
            return self.redirect(&format!("{base}/{keep}"));
        }
        if !is_dir && dir {
            return self.redirect(&format!("{}{keep}", base.trim_end_matches('/')));
        }
        if is_dir {
            let mut entries = Vec::new();
            let (children, cut) = view.first_children(&path, &phys, MAX_LISTED);
            for (n, p) in children {
                let Ok(st) = view.ns.lstat(&p) else {
                    continue;
                };
                let Ok(item) = view.ns.list_item(&p, &n, &st) else {
                    continue;
                };
                entries.push(ListEntry {
                    name: n,
                    kind: item.kind,
                    size: if item.kind == EntryKind::Dir {
                        0
                    } else {
                        item.size
                    },
                    mtime: item.meta.mtime,
                    mode: item.meta.mode,
                    target: (item.kind == EntryKind::Symlink).then_some(item.target),
                });
            }
            pages::sort_entries(&mut entries, q.sort);
            let l = Listing {
                name: name.to_string(),
                path: path.as_bytes().to_vec(),
                at,
                entries,
                sort: q.sort,
                omitted: match cut {
                    Cut::Counted(n) => n,
                    Cut::At(_) => 0,
                },
                cut_at: match cut {
                    Cut::Counted(_) => None,
                    Cut::At(n) => Some(n),
                },
            };
            let html = pages::listing(&l, &asked.viewer);
            self.page(asked, 200, "text/html; charset=utf-8", html.into_bytes());
        } else {
            let history = history_of(env, name, &view.ns);
            let past = Past {
                tree: &view.ns,
                history: &history,
            };
            let found = past.versions(&path);
            let versions = found
                .items
                .into_iter()
                .filter(|v| v.path == path)
                .map(|v| VersionRow {
                    stored: v.stored,
                    until: (v.until != Time::default()).then_some(v.until),
                    kind: v.kind,
                    size: v.size,
                    mtime: v.meta.mtime,
                })
                .collect();
            let f = FileVersions {
                name: name.to_string(),
                path: path.as_bytes().to_vec(),
                versions,
            };
            let html = pages::versions(&f, &asked.viewer);
            self.page(asked, 200, "text/html; charset=utf-8", html.into_bytes());
        }
    }

    /// The namespace `name` (it must exist), read now or at `?at=`, and
    /// the path asked; `None` when an error was answered.
    pub(super) fn open_view(
        &mut self,
        env: &Env,
        asked: &Asked<'_>,
        name: &str,
        segments: &[Vec<u8>],
        q: &Query,
    ) -> Option<(View, WirePath, Option<At>)> {
        let path = match target::wire_path(segments) {
            Ok(p) => p,
            Err(e) => {
                self.error_answer(400, &format!("bad path: {e}"));
                return None;
            }
        };
        let ns = match env.root.existing_namespace(name) {
            Ok(ns) => ns,
            Err(_) => {
                self.error_answer(404, "no such client");
                return None;
            }
        };
        let at = match q.at.as_deref().map(|s| parse_at(s, asked.wall.secs)) {
            None => None,
            Some(Ok(t)) => q.at.clone().map(|s| (s, t)),
            Some(Err(e)) => {
                self.error_answer(400, &format!("at: {e}"));
                return None;
            }
        };
        let past = at.as_ref().map(|(_, t)| (history_of(env, name, &ns), *t));
        Some((View { ns, past }, path, at))
    }

    /// A 301 to `location` (a path of this server).
    pub(super) fn redirect(&mut self, location: &str) {
        self.respond_body(
            301,
            vec![("Location", location.to_string())],
            Vec::new(),
            false,
        );
    }
}

/// `?at=` of a link that keeps browsing the same time.
pub(super) fn keep_query(at: Option<&(String, Time)>) -> String {
    match at {
        Some((_, t)) => format!("?at=@{}.{:09}", t.secs, t.nanos),
        None => String::new(),
    }
}

/// "no such path" (at a time, when browsing the past).
pub(super) fn missing(path: &WirePath, at: Option<&(String, Time)>) -> String {
    match at {
        Some((_, t)) => {
            let name = crate::store::history::batch_name(t.secs, t.nanos);
            format!("no such path at {}: {path}", String::from_utf8_lossy(&name))
        }
        None => format!("no such path: {path}"),
    }
}

/// `?at=`: `@SECS.NANOS` (the pages' own links) or any TIME the client
/// takes (`2026-12-01`, `2026-12-01T10:00`, `@EPOCH`, `3d`).
pub(super) fn parse_at(s: &str, now: i64) -> Result<Time, String> {
    if let Some((secs, nanos)) = s.strip_prefix('@').and_then(|r| r.split_once('.')) {
        let secs: i64 = secs
            .parse()
            .map_err(|_| format!("'{}': bad seconds", s.escape_debug()))?;
        if nanos.len() != 9 || !nanos.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "'{}': nine digits of nanoseconds after the dot",
                s.escape_debug()
            ));
        }
        let nanos: u32 = nanos.parse().map_err(|_| "bad nanoseconds".to_string())?;
        return Ok(Time { secs, nanos });
    }
    crate::client::when::parse_time(s, now, &crate::io::clock::local_secs)
        // As the client's `ls --at` takes it.
        .map(|secs| Time { secs, nanos: 0 })
        .map_err(|e| {
            warn!("bad ?at= {e}");
            e.to_string()
        })
}

/// The options in force, for the dashboard.
fn options(env: &Env) -> Vec<(String, String)> {
    let c = &env.config;
    let mut o = vec![(
        "Authentication".to_string(),
        match &c.session.secrets {
            Some(s) => format!("--secrets ({} names)", s.len()),
            None => "none (anyone who reaches the ports can read the backups)".to_string(),
        },
    )];
    if let Some(web) = env.web.as_ref() {
        o.push((
            "Web".to_string(),
            format!(
                "{}{}",
                web.addr,
                if web.tls.is_some() { " (TLS)" } else { "" }
            ),
        ));
        if !web.admins.is_empty() {
            o.push(("Admins".to_string(), web.admins.join(", ")));
        }
    }
    o.push((
        "Read-only".to_string(),
        if c.session.read_only { "yes" } else { "no" }.to_string(),
    ));
    o.push(("Max clients".to_string(), c.max_clients.to_string()));
    o.push(("Max per address".to_string(), c.max_per_address.to_string()));
    o.push((
        "Idle timeout".to_string(),
        c.session
            .idle_timeout
            .map_or("never".to_string(), |d| format!("{} s", d.as_secs())),
    ));
    o.push(("Keep".to_string(), c.keep.to_string()));
    o
}
