use super::*;
use crate::proto::{EntryKind, Time};
use crate::server::web::model::{
    Activity, ClientRow, Dashboard, FileVersions, LastRun, ListEntry, Listing, LoggedError,
    PlanForm, Sort, SortBy, Space, VersionRow,
};

const NOW: Time = Time {
    secs: 1_700_000_000,
    nanos: 0,
};

fn ago(secs: i64) -> Time {
    Time {
        secs: NOW.secs - secs,
        nanos: 0,
    }
}

/// The hostile names of the brief, as bytes (a name holds no `/`, so
/// `<script>alert(1)</script>` is a path of two names; see
/// `a_hostile_directory_path_is_escaped_in_title_crumbs_and_links`).
const HOSTILE: [&[u8]; 6] = [
    b"<script>alert(1)",
    b"\"onmouseover=alert(1) x=\"",
    b"a\r\nSet-Cookie: x",
    b"bad\xff.txt",
    "evil\u{202e}txt.exe".as_bytes(),
    b"it's & <b>bold",
];

fn admin() -> Viewer {
    Viewer {
        name: Some("root<admin>".to_string()),
        sees_all: true,
        edits_plans: true,
        csrf: Some("tok\"en<1>".to_string()),
    }
}

fn reader() -> Viewer {
    Viewer {
        name: Some("laptop".to_string()),
        sees_all: false,
        edits_plans: false,
        csrf: None,
    }
}

fn plan() -> PlanForm {
    PlanForm {
        paths: "/home/ann\n/etc/</textarea><script>x</script>".to_string(),
        excludes: "*.tmp\n\"quoted\"".to_string(),
        schedule: "every".to_string(),
        interval: "1h".to_string(),
        bwlimit: "10M".to_string(),
    }
}

pub(crate) fn dash(clients: Vec<ClientRow>) -> Dashboard {
    Dashboard {
        version: "0.1.0".to_string(),
        now: NOW,
        uptime_secs: 3 * 3600 + 300,
        root: "/srv/backup".to_string(),
        free_bytes: Some(40 << 30),
        total_bytes: Some(100 << 30),
        options: vec![
            ("auth".to_string(), "--secrets /etc/rsb/secrets".to_string()),
            ("keep".to_string(), "within=7d daily=30".to_string()),
        ],
        clients,
        errors: vec![LoggedError {
            at: ago(120),
            text: "laptop: open <script>alert(1)</script>: \x1b[31m\r\nPermission denied"
                .to_string(),
        }],
    }
}

/// A client with a finished backup, one running now, and one with none yet.
pub(crate) fn clients() -> Vec<ClientRow> {
    vec![
        ClientRow {
            name: "laptop".to_string(),
            last: Some(LastRun {
                ended: ago(300),
                files: 1200,
                bytes: 5 << 20,
                failed: 0,
                error: None,
            }),
            connections: 2,
            activity: vec![
                Activity {
                    what: "backup".to_string(),
                    since: ago(90),
                    files: 42,
                    bytes: 3 << 20,
                },
                Activity {
                    what: "idle".to_string(),
                    since: ago(10),
                    files: 0,
                    bytes: 0,
                },
            ],
            plan: Some(plan()),
            agent: true,
            space: Some(Space {
                current: 7 << 30,
                history: 300 << 20,
                entries: 81_234,
                measured: ago(600),
            }),
        },
        ClientRow {
            name: "nas.home-2".to_string(),
            last: Some(LastRun {
                ended: ago(2 * 86_400),
                files: 10,
                bytes: 100,
                failed: 3,
                error: Some("connection lost <b>\n".to_string()),
            }),
            ..ClientRow::default()
        },
        ClientRow {
            name: "new_box".to_string(),
            ..ClientRow::default()
        },
    ]
}

fn entry(name: &[u8], kind: EntryKind, size: u64, mtime: i64) -> ListEntry {
    ListEntry {
        name: name.to_vec(),
        kind,
        size,
        mtime: ago(mtime),
        mode: if kind == EntryKind::Dir { 0o755 } else { 0o644 },
        target: None,
    }
}

fn listing_of(path: &[u8], at: Option<(String, Time)>) -> Listing {
    let mut entries = vec![
        entry(b"docs", EntryKind::Dir, 0, 50),
        entry(b"report.pdf", EntryKind::File, 2_400_000, 3000),
        entry(b"a b%2F..", EntryKind::File, 1, 10),
    ];
    for (i, h) in HOSTILE.iter().enumerate() {
        let kind = if i % 2 == 0 {
            EntryKind::File
        } else {
            EntryKind::Dir
        };
        entries.push(entry(h, kind, 10 * i as u64, 100 * i as i64));
    }
    let mut link = entry(b"latest", EntryKind::Symlink, 0, 5);
    link.target = Some(b"<script>../x\n".to_vec());
    entries.push(link);
    let sort = Sort::default();
    sort_entries(&mut entries, sort);
    Listing {
        name: "laptop".to_string(),
        path: path.to_vec(),
        at,
        entries,
        sort,
        omitted: 3,
        cut_at: None,
    }
}

fn versions_of(path: &[u8]) -> FileVersions {
    FileVersions {
        name: "laptop".to_string(),
        path: path.to_vec(),
        versions: vec![
            VersionRow {
                stored: Time {
                    secs: NOW.secs - 100,
                    nanos: 123_456_789,
                },
                until: None,
                kind: EntryKind::File,
                size: 2048,
                mtime: ago(200),
            },
            VersionRow {
                stored: ago(86_400),
                until: Some(Time {
                    secs: NOW.secs - 100,
                    nanos: 123_456_789,
                }),
                kind: EntryKind::File,
                size: 1000,
                mtime: ago(90_000),
            },
        ],
    }
}

/// Undoes the five entities [`escape`] writes.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Every `href` and `action` of a page, unescaped.
fn urls(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "action=\"", "src=\""] {
        let mut rest = page;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').unwrap();
            out.push(unescape(&rest[..end]));
            rest = &rest[end..];
        }
    }
    out
}

/// A URL's path, percent-decoded, and its query.
fn split_url(url: &str) -> (Vec<u8>, &str) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    (crate::server::web::html::tests::decode(path), query)
}

/// Every tag's attributes are `name="value"` or bare names: an `=` outside
/// quotes is always followed by `"`, and no `<` hides in a tag.
fn assert_well_quoted(page: &str) {
    let mut rest = page;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let bytes = rest.as_bytes();
        let mut in_quote = false;
        let mut j = 0;
        loop {
            let c = bytes[j];
            if c == b'"' {
                in_quote = !in_quote;
            } else if !in_quote {
                if c == b'>' {
                    break;
                }
                assert_ne!(
                    c,
                    b'<',
                    "a '<' inside a tag: {}",
                    &rest[..j.min(rest.len())]
                );
                if c == b'=' {
                    assert_eq!(
                        bytes[j + 1],
                        b'"',
                        "unquoted attribute: {}",
                        &rest[..j + 10]
                    );
                }
            } else {
                assert_ne!(c, b'<', "a '<' in an attribute value");
            }
            j += 1;
        }
        rest = &rest[j..];
    }
}

/// No hostile name came through as markup, a raw control or a bidi
/// override, and each shows in its visible form.
fn assert_no_injection(page: &str) {
    assert_well_quoted(page);
    assert!(!page.contains("<script>"), "raw <script>");
    assert!(
        !page.contains("</script>alert") && !page.contains("<b>"),
        "raw markup"
    );
    assert!(!page.contains("\"onmouseover"), "attribute breakout");
    assert!(
        !page.contains('\r') && !page.contains('\x1b'),
        "raw control"
    );
    assert!(!page.contains('\u{202e}'), "raw bidi override");
    assert!(!page.contains("\nSet-Cookie"), "a forged line");
    let scripts = page.matches("<script").count();
    assert!(scripts <= 1, "only the live script's tag");
    if scripts == 1 {
        assert!(page.contains("<script src=\"/static/live.js\" defer></script>"));
    }
    // No inline style or handler (the CSP forbids them).
    assert!(!page.contains(" style="), "inline style");
    assert!(
        !page.contains(" onclick=") && !page.contains(" onload="),
        "inline handler"
    );
}

#[test]
fn a_listing_escapes_every_hostile_name() {
    let page = listing(&listing_of(b"home/ann", None), &admin());
    assert_no_injection(&page);
    assert!(page.contains(">&lt;script&gt;alert(1)</a>"));
    assert!(page.contains("&quot;onmouseover=alert(1) x=&quot;"));
    assert!(page.contains("a\\r\\nSet-Cookie: x"));
    assert!(page.contains("bad\\xff.txt"));
    assert!(page.contains("evil\\u{202e}txt.exe"));
    assert!(page.contains("it&#39;s &amp; &lt;b&gt;bold"));
    assert!(page.contains("→ &lt;script&gt;../x\\n"));
    assert!(page.contains("signed in as root&lt;admin&gt;"));
    assert!(page.contains("3 more entries are not shown."));
    assert!(!page.contains("holds more than"));
}

#[test]
fn a_cut_listing_says_it_was_cut() {
    let mut l = listing_of(b"big", None);
    l.omitted = 0;
    l.cut_at = Some(10_000);
    let page = listing(&l, &admin());
    assert!(page.contains(
        "The directory holds more than 10000 entries: only the first 10000 the file system gave were read, sorted among themselves"
    ));
    assert!(
        !page.contains("more entries are not shown"),
        "no count of the others"
    );
}

#[test]
fn every_link_of_a_listing_decodes_back_to_its_path() {
    let dir: &[u8] = b"home/ann \xfe";
    let page = listing(&listing_of(dir, None), &admin());
    let links = urls(&page);
    let mut seen_entries = 0;
    for url in &links {
        let (path, query) = split_url(url);
        if url == "/" || url.starts_with("/static/") || url.starts_with("data:") {
            continue;
        }
        let (route, rest) = if let Some(r) = path.strip_prefix(b"/browse/laptop/") {
            ("browse", r)
        } else if let Some(r) = path.strip_prefix(b"/files/laptop/") {
            ("files", r)
        } else {
            panic!("a link outside the namespace: {url}");
        };
        let trimmed = rest.strip_suffix(b"/").unwrap_or(rest);
        let is_ancestor = trimmed.is_empty() || dir.starts_with(trimmed);
        let entry = trimmed
            .strip_prefix(dir)
            .and_then(|r| r.strip_prefix(b"/"))
            .filter(|name| {
                listing_of(dir, None)
                    .entries
                    .iter()
                    .any(|e| e.name == *name)
            });
        assert!(
            is_ancestor || entry.is_some(),
            "{url} decodes to {:?}",
            String::from_utf8_lossy(rest)
        );
        if entry.is_some() {
            seen_entries += 1;
        }
        if route == "files" && (rest.is_empty() || rest.ends_with(b"/")) {
            assert_eq!(query, "format=tar", "{url}");
        }
    }
    // Each of the 10 entries has a name link, 9 a download or tar link.
    assert_eq!(seen_entries, 19, "{links:#?}");
    // The percent-encoded forms are in the page, `/` in a name included.
    assert!(page.contains("/browse/laptop/home/ann%20%FE/a%20b%252F..\""));
    assert!(page.contains("/browse/laptop/home/ann%20%FE/bad%FF.txt/\""));
    assert!(page.contains("/files/laptop/home/ann%20%FE/bad%FF.txt/?format=tar\""));
    assert!(page.contains("/files/laptop/home/ann%20%FE/%3Cscript%3Ealert%281%29\""));
    assert!(page.contains("/files/laptop/home/ann%20%FE/?format=tar\""));
}

#[test]
fn a_hostile_directory_path_is_escaped_in_title_crumbs_and_links() {
    let path: &[u8] = b"x/<script>alert(1)</script>/\"onmouseover=a\r\nb";
    let page = listing(&listing_of(path, None), &admin());
    assert_no_injection(&page);
    assert!(page.contains(
        "<title>laptop:x/&lt;script&gt;alert(1)&lt;/script&gt;/&quot;onmouseover=a\\r\\nb · rsb</title>"
    ));
    assert!(page.contains(
        "<a href=\"/browse/laptop/x/%3Cscript%3Ealert%281%29%3C/\">&lt;script&gt;alert(1)&lt;</a>"
    ));
    assert!(page.contains("/files/laptop/x/%3Cscript%3Ealert%281%29%3C/script%3E/%22onmouseover%3Da%0D%0Ab/?format=tar\""));
    let page = versions(&versions_of(path), &admin());
    assert_no_injection(&page);
}

#[test]
fn breadcrumbs_link_every_ancestor() {
    let page = listing(&listing_of(b"a/b/c", None), &reader());
    let nav = &page[page.find("<nav").unwrap()..page.find("</nav>").unwrap()];
    assert_eq!(
        urls(nav),
        [
            "/",
            "/browse/laptop/",
            "/browse/laptop/a/",
            "/browse/laptop/a/b/"
        ]
    );
    assert!(nav.ends_with("<span>c</span>"));
    let root = listing(&listing_of(b"", None), &reader());
    let nav = &root[root.find("<nav").unwrap()..root.find("</nav>").unwrap()];
    assert_eq!(urls(nav), ["/"]);
    assert!(root.contains("/files/laptop/?format=tar"));
}

#[test]
fn browsing_the_past_keeps_at_in_every_link() {
    let at = Time {
        secs: 1_690_000_000,
        nanos: 5,
    };
    let page = listing(
        &listing_of(b"home", Some(("7d".to_string(), at))),
        &reader(),
    );
    assert!(page.contains(
        "As it was at <time datetime=\"2023-07-22T04:26:40Z\">2023-07-22 04:26:40 UTC</time>"
    ));
    assert!(page.contains("<code>at=7d</code>"));
    for url in urls(&page) {
        let (path, query) = split_url(&url);
        if url == "/" || url.starts_with("/static/") || url.starts_with("data:") {
            continue;
        }
        if url.contains("sort=") && !url.contains("at=") {
            panic!("a sort link lost at: {url}");
        }
        if query.contains("at=") {
            assert!(query.contains("at=%401690000000.000000005"), "{url}");
        } else {
            // The one link out of the past: the same directory now.
            assert_eq!(path, b"/browse/laptop/home/", "{url}");
        }
    }
}

#[test]
fn column_headers_sort_and_mark_the_current_one() {
    let mut l = listing_of(b"d", None);
    l.sort = Sort {
        by: SortBy::Size,
        descending: false,
    };
    let page = listing(&l, &reader());
    assert!(page.contains(
        "<th class=\"num\" aria-sort=\"ascending\" data-sort=\"size\"><a class=\"current\" href=\"/browse/laptop/d/?sort=size&amp;order=desc\">Size ▲</a></th>"
    ));
    assert!(page.contains("href=\"/browse/laptop/d/?sort=name&amp;order=asc\">Name</a>"));
    // A directory's link keeps the sort.
    assert!(page.contains("href=\"/browse/laptop/d/docs/?sort=size&amp;order=asc\""));
}

#[test]
fn sorting_is_stable_with_directories_first_by_name() {
    let mut e = vec![
        entry(b"b", EntryKind::File, 5, 1),
        entry(b"z", EntryKind::Dir, 0, 3),
        entry(b"a", EntryKind::File, 5, 2),
        entry(b"c", EntryKind::Symlink, 1, 4),
        entry(b"m", EntryKind::Dir, 0, 5),
    ];
    let names = |e: &[ListEntry]| -> Vec<String> {
        e.iter()
            .map(|x| String::from_utf8_lossy(&x.name).into_owned())
            .collect()
    };
    let by = |by, descending| Sort { by, descending };
    sort_entries(&mut e, by(SortBy::Name, false));
    assert_eq!(names(&e), ["m", "z", "a", "b", "c"]);
    sort_entries(&mut e, by(SortBy::Name, true));
    assert_eq!(names(&e), ["z", "m", "c", "b", "a"]);
    sort_entries(&mut e, by(SortBy::Size, false));
    assert_eq!(names(&e), ["m", "z", "c", "a", "b"]);
    sort_entries(&mut e, by(SortBy::Size, true));
    assert_eq!(names(&e), ["b", "a", "c", "z", "m"]);
    sort_entries(&mut e, by(SortBy::Mtime, true));
    assert_eq!(names(&e), ["b", "a", "z", "c", "m"]);
    sort_entries(&mut e, by(SortBy::Kind, false));
    assert_eq!(names(&e), ["m", "z", "a", "b", "c"]);
    // Stable: equal keys keep their order (names differ, so use bytes
    // that compare equal only by key: none here; same name twice).
    let mut same = vec![
        entry(b"x", EntryKind::File, 1, 1),
        entry(b"x", EntryKind::File, 1, 2),
    ];
    sort_entries(&mut same, by(SortBy::Size, false));
    assert_eq!(same[0].mtime, ago(1));
}

#[test]
fn a_versions_page_links_each_version_and_its_directory_then() {
    let path: &[u8] = b"docs/<b>\n.txt";
    let page = versions(&versions_of(path), &admin());
    assert_no_injection(&page);
    assert!(page.contains("&lt;b&gt;\\n.txt"));
    let links = urls(&page);
    let downloads: Vec<&String> = links.iter().filter(|u| u.starts_with("/files/")).collect();
    assert_eq!(
        downloads,
        [
            "/files/laptop/docs/%3Cb%3E%0A.txt",
            "/files/laptop/docs/%3Cb%3E%0A.txt?at=%401699999900.123456789",
            "/files/laptop/docs/%3Cb%3E%0A.txt?at=%401699913600.000000000",
        ]
    );
    for d in &downloads {
        assert_eq!(
            split_url(d).0,
            [b"/files/laptop/".as_slice(), path].concat()
        );
    }
    assert!(links.contains(&"/browse/laptop/docs/?at=%401699999900.123456789".to_string()));
    assert!(links.contains(&"/browse/laptop/docs/?at=%401699913600.000000000".to_string()));
    assert!(page.contains("<span class=\"current\">current</span>"));
}

#[test]
fn the_dashboard_escapes_names_plans_and_errors() {
    let page = dashboard(&dash(clients()), &admin());
    assert_no_injection(&page);
    // The textarea cannot be closed from inside, and keeps its first line.
    assert!(page.contains(
        "<textarea name=\"paths\" rows=\"3\" spellcheck=\"false\">\n/home/ann\n/etc/&lt;/textarea&gt;&lt;script&gt;x&lt;/script&gt;</textarea>"
    ));
    assert!(page.contains("&quot;quoted&quot;"));
    assert!(page.contains("value=\"tok&quot;en&lt;1&gt;\""));
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;: \\x1b[31m\\r\\nPermission denied")
    );
    assert!(page.contains("failed: connection lost &lt;b&gt;\\n"));
}

#[test]
fn the_dashboard_shows_clients_with_live_cells() {
    let page = dashboard(&dash(clients()), &admin());
    assert!(page.contains(
        "<tr id=\"client-laptop\" data-client=\"laptop\" data-state=\"ok\" data-busy=\"1\">"
    ));
    assert!(page.contains("<a href=\"/browse/laptop/\">laptop</a>"));
    assert!(page.contains("<span id=\"c-laptop-last\">2023-11-14 22:08:20 UTC</span>"));
    assert!(page.contains("<span id=\"c-laptop-ago\">(5 min ago)</span>"));
    assert!(page.contains("<span id=\"c-laptop-bytes\">5.0 MiB</span>"));
    assert!(page.contains("<span id=\"c-laptop-connected\">yes (2)</span>"));
    assert!(page.contains(
        "<span id=\"c-laptop-activity\">backup for 1 min: 42 files, 3.0 MiB; idle</span>"
    ));
    assert!(page.contains("<span id=\"c-laptop-agent\">connected</span>"));
    assert!(page.contains(
        "<span id=\"c-laptop-space\">7.0 GiB current, 300.0 MiB history, 81234 entries</span>"
    ));
    // A client with failures, and one that never backed up.
    assert!(page.contains("data-client=\"nas.home-2\" data-state=\"failed\" data-busy=\"0\""));
    assert!(page.contains("<tr id=\"client-new_box\" data-client=\"new_box\" data-state=\"none\""));
    assert!(page.contains("<span id=\"c-new_box-last\">never</span>"));
    assert!(page.contains("<span id=\"c-new_box-result\">no backup yet</span>"));
    assert!(page.contains("<span id=\"c-new_box-connected\">no</span>"));
    // The server block.
    assert!(page.contains("<span id=\"uptime\">3 h 5 min</span>"));
    assert!(page.contains("40.0 GiB free of 100.0 GiB (40%)"));
    assert!(page.contains("<dt>keep</dt><dd>within=7d daily=30</dd>"));
}

#[test]
fn an_admin_gets_plan_forms_and_a_reader_text() {
    let d = dash(clients());
    let page = dashboard(&d, &admin());
    assert!(page.contains("<form method=\"post\" action=\"/plans/laptop\" class=\"plan-form\"><input type=\"hidden\" name=\"csrf\" value=\"tok&quot;en&lt;1&gt;\">"));
    assert!(page.contains("<option value=\"every\" selected>"));
    assert!(page.contains("<input name=\"interval\" value=\"1h\""));
    assert!(page.contains("<input name=\"bwlimit\" value=\"10M\""));
    assert!(page.contains("<input type=\"hidden\" name=\"delete\" value=\"1\">"));
    assert!(page.contains("<form method=\"post\" action=\"/plans\" class=\"plan-form\">"));
    assert!(page.contains("<input name=\"name\" value=\"\" required"));
    // Only clients with a plan get a delete button; new_box gets an empty form.
    assert_eq!(page.matches("name=\"delete\"").count(), 1);
    assert_eq!(page.matches("name=\"csrf\"").count(), 5);
    for url in urls(&page) {
        if url.starts_with("/plans") {
            assert!(url == "/plans" || split_url(&url).0.starts_with(b"/plans/"));
        }
    }

    let page = dashboard(&d, &reader());
    assert_no_injection(&page);
    assert!(!page.contains("<form"));
    assert!(!page.contains("name=\"csrf\""));
    assert!(
        page.contains("<li><code>/etc/&lt;/textarea&gt;&lt;script&gt;x&lt;/script&gt;</code></li>")
    );
    // A client name sees neither the server's root nor its error log.
    assert!(!page.contains("/srv/backup"));
    assert!(!page.contains("Recent errors"));
    assert!(page.contains("signed in as laptop"));

    // edits_plans without a token: no form (it could not be sent).
    let mut no_token = admin();
    no_token.csrf = None;
    assert!(!dashboard(&d, &no_token).contains("<form"));
}

#[test]
fn the_dashboard_with_no_client() {
    let page = dashboard(&dash(Vec::new()), &admin());
    assert_no_injection(&page);
    assert!(page.contains("No client has backed up here yet."));
    assert!(!page.contains("<table"));
    assert!(page.contains("A plan for a new client"));
    assert_eq!(
        status_json(&dash(Vec::new())),
        "{\"uptime\":\"3 h 5 min\",\"clients\":[]}"
    );
}

#[test]
fn status_json_carries_the_live_cells_escaped() {
    let mut c = clients();
    c[0].activity[0].what = "backup</script><b>\u{2028}\x01".to_string();
    let json = status_json(&dash(c));
    assert!(!json.contains('<') && !json.contains('>') && !json.contains('\u{2028}'));
    assert!(json.contains("\"name\":\"laptop\",\"state\":\"ok\",\"busy\":true,\"cells\":{\"last\":\"2023-11-14 22:08:20 UTC\",\"ago\":\"(5 min ago)\""));
    assert!(json.contains("\"activity\":\"backup\\u003c/script\\u003e\\u003cb\\u003e\\\\u{2028}\\\\x01 for 1 min: 42 files, 3.0 MiB; idle\""));
    assert!(json.contains("\"result\":\"failed: connection lost \\u003cb\\u003e\\\\n\""));
    assert!(json.contains("\"name\":\"new_box\",\"state\":\"none\",\"busy\":false"));
    for key in [
        "last",
        "ago",
        "files",
        "bytes",
        "result",
        "connected",
        "activity",
        "agent",
        "space",
    ] {
        assert_eq!(json.matches(&format!("\"{key}\":")).count(), 3, "{key}");
    }
    assert_eq!(
        home::json_string("a\"\\\n\u{7f}&"),
        "\"a\\\"\\\\\\u000a\\u007f\\u0026\""
    );
}

#[test]
fn the_script_reads_what_status_json_writes() {
    for needle in [
        "status.uptime",
        "status.clients",
        "c.name",
        "c.state",
        "c.busy",
        "c.cells",
        "\"c-\"",
        "\"client-\"",
        "textContent",
        "/status.json",
        "2000",
    ] {
        assert!(LIVE_JS.contains(needle), "{needle}");
    }
    assert!(!LIVE_JS.contains("innerHTML"));
    for id in ["id=\"live\"", "id=\"uptime\"", "id=\"live-note\""] {
        assert!(dashboard(&dash(clients()), &admin()).contains(id), "{id}");
    }
    assert!(
        !STYLE_CSS.contains("url(") && !STYLE_CSS.contains("@import"),
        "no external resource"
    );
}

#[test]
fn an_error_page_escapes_its_texts() {
    let page = error_page(404, "Not found", "no file /a/<script>alert(1)</script>");
    assert_no_injection(&page);
    assert!(page.contains("<title>404 Not found · rsb</title>"));
    assert!(page.contains("<h1>404 Not found</h1>"));
    assert!(page.contains("no file /a/&lt;script&gt;alert(1)&lt;/script&gt;"));
}
