//! Browsing a namespace: a directory's listing (`/browse/<name>/<path>/`)
//! with breadcrumbs, sortable columns and download links, and a file's
//! versions page (`/browse/<name>/<path>`). Every link keeps `?at=` when
//! browsing the past.
//!
//! Must not: read the store, or sort anything but what it is given.

use std::cmp::Ordering;
use std::fmt::Write;

use super::format::{human_bytes, iso, kind_name, mode_string, utc};
use super::page;
use crate::proto::{EntryKind, Time};
use crate::server::web::html::{
    at_value, browse_dir_url, browse_file_url, child, escape, escape_bytes, file_url, link, parent,
    sort_key, tar_url, Query,
};
use crate::server::web::model::{FileVersions, ListEntry, Listing, Sort, SortBy, Viewer};

/// Where a type sorts under [`SortBy::Kind`] (directories first, as
/// everywhere).
fn kind_rank(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::Dir => 0,
        EntryKind::File => 1,
        EntryKind::HardLink => 2,
        EntryKind::Symlink => 3,
        EntryKind::Fifo => 4,
        EntryKind::Socket => 5,
        EntryKind::CharDev => 6,
        EntryKind::BlockDev => 7,
    }
}

/// Sorts `entries` by `sort`, stably, names breaking ties. For
/// [`SortBy::Name`] directories come first in either order; the other
/// keys reverse wholly when descending.
pub fn sort_entries(entries: &mut [ListEntry], sort: Sort) {
    let flip = |o: Ordering| if sort.descending { o.reverse() } else { o };
    entries.sort_by(|a, b| match sort.by {
        SortBy::Name => {
            let dir = |e: &ListEntry| e.kind != EntryKind::Dir;
            dir(a).cmp(&dir(b)).then_with(|| flip(a.name.cmp(&b.name)))
        }
        SortBy::Size => flip(a.size.cmp(&b.size).then_with(|| a.name.cmp(&b.name))),
        SortBy::Mtime => flip(a.mtime.cmp(&b.mtime).then_with(|| a.name.cmp(&b.name))),
        SortBy::Kind => flip(
            kind_rank(a.kind)
                .cmp(&kind_rank(b.kind))
                .then_with(|| a.name.cmp(&b.name)),
        ),
    });
}

/// The breadcrumbs of `path`: the dashboard, the namespace's root, and
/// every ancestor as a link; the last segment as text unless
/// `last_is_link`.
fn crumbs(name: &str, path: &[u8], q: &Query, last_is_link: bool) -> String {
    let mut parts = vec![link("/", "dashboard")];
    let segments: Vec<&[u8]> = if path.is_empty() {
        Vec::new()
    } else {
        path.split(|b| *b == b'/').collect()
    };
    let root_text = escape_bytes(name.as_bytes());
    if segments.is_empty() && !last_is_link {
        parts.push(format!("<span>{root_text}</span>"));
    } else {
        parts.push(link(&browse_dir_url(name, b"", q), &root_text));
    }
    let mut so_far: Vec<u8> = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        so_far = child(&so_far, seg);
        let text = escape_bytes(seg);
        if i + 1 == segments.len() && !last_is_link {
            parts.push(format!("<span>{text}</span>"));
        } else {
            parts.push(link(&browse_dir_url(name, &so_far, q), &text));
        }
    }
    format!(
        "<nav class=\"crumbs\" aria-label=\"Breadcrumbs\">{}</nav>\n",
        parts.join("<span class=\"sep\">/</span>")
    )
}

/// The note at the top of a page of the past.
fn past_note(at: &(String, Time), current_url: &str) -> String {
    format!(
        "<p class=\"past\">As it was at <time datetime=\"{}\">{}</time> \
(<code>at={}</code>). {}</p>\n",
        iso(at.1),
        escape(&utc(at.1)),
        escape_bytes(at.0.as_bytes()),
        link(current_url, "See it as it is now")
    )
}

/// The path as the page's title shows it: `/a/b`.
fn shown_path(path: &[u8]) -> String {
    format!("/{}", escape_bytes(path))
}

/// A directory's listing for `viewer`.
pub fn listing(l: &Listing, viewer: &Viewer) -> String {
    let at = l.at.as_ref().map(|a| a.1);
    let sort = (l.sort != Sort::default()).then_some(l.sort);
    let keep = Query {
        at,
        sort,
        tar: false,
    };
    let mut b = crumbs(&l.name, &l.path, &Query::at(at), false);
    let _ = writeln!(
        b,
        "<h1><span class=\"ns\">{}</span> <code>{}</code></h1>",
        escape_bytes(l.name.as_bytes()),
        shown_path(&l.path)
    );
    if let Some(a) = &l.at {
        b.push_str(&past_note(
            a,
            &browse_dir_url(
                &l.name,
                &l.path,
                &Query {
                    at: None,
                    sort,
                    tar: false,
                },
            ),
        ));
    }
    let _ = writeln!(
        b,
        "<p class=\"actions\">{}</p>",
        link(
            &tar_url(&l.name, &l.path, at),
            "Download this directory as tar"
        )
    );
    if l.entries.is_empty() {
        b.push_str("<p class=\"empty\">This directory is empty.</p>\n");
    } else {
        b.push_str("<div class=\"wrap\"><table class=\"grid listing\">\n<thead><tr>");
        for (by, label, class) in [
            (SortBy::Kind, "Type", ""),
            (SortBy::Name, "Name", ""),
            (SortBy::Size, "Size", " class=\"num\""),
            (SortBy::Mtime, "Modified", ""),
        ] {
            b.push_str(&sort_header(l, by, label, class, at));
        }
        b.push_str("<th>Mode</th><th>Download</th></tr></thead>\n<tbody>\n");
        for e in &l.entries {
            entry_row(&mut b, l, e, &keep);
        }
        b.push_str("</tbody></table></div>\n");
    }
    if let Some(n) = l.cut_at {
        let _ = writeln!(
            b,
            "<p class=\"note\">The directory holds more than {n} entries: only the first {n} the file system gave were read, sorted among themselves; the others are not shown.</p>",
        );
    }
    if l.omitted > 0 {
        let _ = writeln!(
            b,
            "<p class=\"note\">{} more {} not shown.</p>",
            l.omitted,
            if l.omitted == 1 {
                "entry is"
            } else {
                "entries are"
            }
        );
    }
    let title = format!("{}:{}", l.name, crate::server::web::html::visible(&l.path));
    page(&title, Some(viewer), &b, false)
}

/// A column header: a link that sorts by it (the other way when it is the
/// current one, which is marked).
fn sort_header(l: &Listing, by: SortBy, label: &str, class: &str, at: Option<Time>) -> String {
    let current = l.sort.by == by;
    let next = Sort {
        by,
        descending: current && !l.sort.descending,
    };
    let url = browse_dir_url(
        &l.name,
        &l.path,
        &Query {
            at,
            sort: Some(next),
            tar: false,
        },
    );
    if current {
        let (aria, arrow) = if l.sort.descending {
            ("descending", "▼")
        } else {
            ("ascending", "▲")
        };
        format!(
            "<th{class} aria-sort=\"{aria}\" data-sort=\"{}\"><a class=\"current\" href=\"{}\">{label} {arrow}</a></th>",
            sort_key(by),
            escape(&url)
        )
    } else {
        format!(
            "<th{class} data-sort=\"{}\"><a href=\"{}\">{label}</a></th>",
            sort_key(by),
            escape(&url)
        )
    }
}

fn entry_row(b: &mut String, l: &Listing, e: &ListEntry, keep: &Query) {
    let path = child(&l.path, &e.name);
    let name_html = escape_bytes(&e.name);
    let at_only = Query::at(keep.at);
    let (name_cell, download) = match e.kind {
        EntryKind::Dir => (
            link(
                &browse_dir_url(&l.name, &path, keep),
                &format!("{name_html}/"),
            ),
            link(&tar_url(&l.name, &path, keep.at), "tar"),
        ),
        EntryKind::File | EntryKind::HardLink => (
            link(&browse_file_url(&l.name, &path, &at_only), &name_html),
            link(&file_url(&l.name, &path, &at_only), "download"),
        ),
        _ => {
            let mut cell = link(&browse_file_url(&l.name, &path, &at_only), &name_html);
            if let Some(t) = &e.target {
                let _ = write!(cell, " <span class=\"target\">→ {}</span>", escape_bytes(t));
            }
            (cell, String::new())
        }
    };
    let size = if e.kind == EntryKind::Dir {
        "—".to_string()
    } else {
        format!(
            "<span title=\"{} bytes\">{}</span>",
            e.size,
            escape(&human_bytes(e.size))
        )
    };
    let _ = writeln!(
        b,
        "<tr data-kind=\"{}\"><td class=\"kind\">{}</td><td class=\"name\">{name_cell}</td>\
<td class=\"num\">{size}</td><td><time datetime=\"{}\">{}</time></td><td><code>{}</code></td><td>{download}</td></tr>",
        kind_name(e.kind).replace(' ', "-"),
        kind_name(e.kind),
        iso(e.mtime),
        escape(&utc(e.mtime)),
        mode_string(e.kind, e.mode)
    );
}

/// A file's versions page for `viewer`.
pub fn versions(f: &FileVersions, viewer: &Viewer) -> String {
    let mut b = crumbs(&f.name, &f.path, &Query::default(), false);
    let _ = writeln!(
        b,
        "<h1><span class=\"ns\">{}</span> <code>{}</code></h1>",
        escape_bytes(f.name.as_bytes()),
        shown_path(&f.path)
    );
    let dir = parent(&f.path);
    let current = f.versions.first().filter(|v| v.until.is_none());
    if let Some(v) = current {
        let mut actions = vec![link(
            &browse_dir_url(&f.name, dir, &Query::default()),
            "Its directory",
        )];
        if v.kind == EntryKind::File || v.kind == EntryKind::HardLink {
            actions.insert(
                0,
                link(
                    &file_url(&f.name, &f.path, &Query::default()),
                    "Download the current version",
                ),
            );
        }
        let _ = writeln!(b, "<p class=\"actions\">{}</p>", actions.join(" · "));
    } else {
        b.push_str("<p class=\"note\">This file is not in the current tree; its past versions are below.</p>\n");
    }
    if f.versions.is_empty() {
        b.push_str("<p class=\"empty\">No version of this file is stored.</p>\n");
    } else {
        b.push_str(
            "<div class=\"wrap\"><table class=\"grid versions\">\n<thead><tr><th>Stored</th>\
<th>Until</th><th>Type</th><th class=\"num\">Size</th><th>Modified</th><th>Download</th>\
<th>Directory</th></tr></thead>\n<tbody>\n",
        );
        for v in &f.versions {
            let then = Query::at(Some(v.stored));
            let until = match v.until {
                None => "<span class=\"current\">current</span>".to_string(),
                Some(t) => format!("<time datetime=\"{}\">{}</time>", iso(t), escape(&utc(t))),
            };
            let download = if matches!(v.kind, EntryKind::File | EntryKind::HardLink) {
                link(&file_url(&f.name, &f.path, &then), "download")
            } else {
                String::new()
            };
            let _ = writeln!(
                b,
                "<tr data-at=\"{}\"><td><time datetime=\"{}\">{}</time></td><td>{until}</td><td>{}</td>\
<td class=\"num\"><span title=\"{} bytes\">{}</span></td><td><time datetime=\"{}\">{}</time></td>\
<td>{download}</td><td>{}</td></tr>",
                escape(&at_value(v.stored)),
                iso(v.stored),
                escape(&utc(v.stored)),
                kind_name(v.kind),
                v.size,
                escape(&human_bytes(v.size)),
                iso(v.mtime),
                escape(&utc(v.mtime)),
                link(&browse_dir_url(&f.name, dir, &then), "as it was then"),
            );
        }
        b.push_str("</tbody></table></div>\n");
    }
    let title = format!("{}:{}", f.name, crate::server::web::html::visible(&f.path));
    page(&title, Some(viewer), &b, false)
}
