//! The pages and the protocol edges: the start-up line (before
//! `listening on`), the dashboard (names, version, the session cookie),
//! `/status.json`, `/metrics` in Prometheus text format with the families
//! the issue names, a listing with a download link per file and a tar link
//! per directory, sorting, and the error statuses (404 unknown name or
//! path, 405 other methods, 431 an oversized head, 413 an oversized body).

use std::fs;
use std::time::Duration;

use super::http::*;
use crate::common::*;

#[test]
fn the_web_line_comes_before_listening_and_http_port_alone_is_loopback() {
    let srv = web_server(&[]);
    let log = srv.log();
    let web = log
        .find("web interface on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("{log}"));
    let listening = log.find("listening on").unwrap();
    assert!(
        web < listening,
        "the web line comes after listening:\n{log}"
    );
    assert_ne!(srv.web_port(), srv.port());
    // `--http PORT` alone binds -a's address (127.0.0.1 here).
    let srv2 = Server::start(&["--http", "0"]);
    assert!(
        srv2.log().contains("web interface on http://127.0.0.1:"),
        "{}",
        srv2.log()
    );
    curl(&[&url(srv2.web_port(), "/")]).status_is(200);
}

#[test]
fn the_dashboard_status_and_metrics() {
    let srv = web_server(&[]);
    let port = srv.web_port();
    let tmp = scratch();
    let src = tmp.join("src");
    small_tree(&src, 3);
    backup(&srv, "dashbox", &src);

    let r = curl(&[&url(port, "/")]);
    r.status_is(200);
    assert!(r.must("content-type").starts_with("text/html"));
    let html = r.text();
    assert!(html.contains("dashbox"), "{}", r.show());
    assert!(
        html.contains(env!("CARGO_PKG_VERSION")),
        "no server version\n{}",
        r.show()
    );
    assert!(
        session_cookie(&r).is_some(),
        "no rsb_session cookie\n{}",
        r.show()
    );
    // The client's name links to its browse page.
    assert!(
        hrefs(&html)
            .iter()
            .any(|h| h.starts_with("/browse/dashbox")),
        "{}",
        r.show()
    );
    // Nothing comes from elsewhere: every link, script and style is ours.
    for h in hrefs(&html) {
        assert!(
            !h.starts_with("http:") && !h.starts_with("https:") && !h.starts_with("//"),
            "{h}"
        );
    }

    let r = curl(&[&url(port, "/status.json")]);
    r.status_is(200);
    assert!(
        r.must("content-type").starts_with("application/json"),
        "{}",
        r.show()
    );
    assert!(r.text().contains("\"dashbox\""), "{}", r.show());
    let t = r.text();
    assert!(t.trim_start().starts_with('{') && t.trim_end().ends_with('}'));

    let r = curl(&[&url(port, "/metrics")]);
    r.status_is(200);
    let ct = r.must("content-type");
    assert!(
        ct.starts_with("text/plain") && ct.contains("version=0.0.4"),
        "{ct:?}"
    );
    let m = r.text();
    for family in [
        "rsb_connections{kind=\"rsb\"}",
        "rsb_connections{kind=\"web\"}",
        "rsb_received_bytes_total",
        "rsb_sent_bytes_total{kind=",
        "rsb_backups_total{result=",
        "rsb_http_responses_total{code=\"200\"}",
        "rsb_commit_duration_seconds_bucket{le=",
        "rsb_loop_turn_duration_seconds_bucket{le=\"+Inf\"}",
    ] {
        assert!(m.contains(family), "/metrics lacks {family}\n{m}");
    }
    for l in m.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let v = l.rsplit(' ').next().unwrap();
        assert!(
            v.parse::<f64>().is_ok() || v == "+Inf",
            "not a sample line: {l:?}"
        );
    }
    // A namespace's space may be measured after the backup, not at once.
    let store = "rsb_store_bytes{name=\"dashbox\",part=\"current\"}";
    assert!(
        eventually(Duration::from_secs(10), || curl(&[&url(port, "/metrics")])
            .text()
            .contains(store)),
        "/metrics never shows {store}"
    );
    // The received bytes count the backup's (70,000 + a few).
    let received: f64 = m
        .lines()
        .find(|l| l.starts_with("rsb_received_bytes_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(received >= 70_000.0, "rsb_received_bytes_total {received}");
}

#[test]
fn a_listing_links_downloads_and_tars_and_sorts() {
    let srv = web_server(&[]);
    let port = srv.web_port();
    let tmp = scratch();
    let src = tmp.join("src");
    let mut t = Tree::new(&src, 0o755, (1_600_000_000, 0));
    t.file("a_small", b"1", 0o644, (1_600_000_300, 0))
        .file("b_big", &[7u8; 300], 0o644, (1_600_000_100, 0))
        .file("c_mid", &[8u8; 50], 0o644, (1_600_000_200, 0))
        .dir("d_dir", 0o755, (1_600_000_400, 0))
        .file("d_dir/inner", b"in\n", 0o644, (1_600_000_401, 0))
        .finish();
    backup(&srv, NAME, &src);

    let page = curl(&[&url(port, &dir_url(NAME, &src))]);
    page.status_is(200);
    let links = hrefs(&page.text());
    for f in ["a_small", "b_big", "c_mid"] {
        let want = file_url(NAME, &src.join(f));
        assert!(
            links.iter().any(|l| l == &want),
            "no download link {want}\n{links:#?}"
        );
    }
    let tar = format!("{}/?format=tar", file_url(NAME, &src.join("d_dir")));
    assert!(
        links.iter().any(|l| l == &tar),
        "no tar link {tar}\n{links:#?}"
    );
    let sub = dir_url(NAME, &src.join("d_dir"));
    assert!(
        links.iter().any(|l| l == &sub),
        "no link into {sub}\n{links:#?}"
    );
    // Breadcrumbs: the parent directory is a link.
    let parent = dir_url(NAME, &tmp.join(""));
    let parent = parent.trim_end_matches('/');
    assert!(
        links.iter().any(|l| l.trim_end_matches('/') == parent),
        "no breadcrumb to {parent}\n{links:#?}"
    );

    let order = |q: &str| -> Vec<&'static str> {
        let r = curl(&[&format!("{}?{q}", url(port, &dir_url(NAME, &src)))]);
        r.status_is(200);
        let t = r.text();
        let mut v: Vec<(usize, &'static str)> = ["a_small", "b_big", "c_mid"]
            .into_iter()
            .map(|n| {
                (
                    t.find(&format!(">{n}<"))
                        .unwrap_or_else(|| panic!("{n} not shown as a cell\n{}", r.show())),
                    n,
                )
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, n)| n).collect()
    };
    assert_eq!(order("sort=size&order=desc"), ["b_big", "c_mid", "a_small"]);
    assert_eq!(order("sort=size&order=asc"), ["a_small", "c_mid", "b_big"]);
    assert_eq!(order("sort=name&order=desc"), ["c_mid", "b_big", "a_small"]);
    assert_eq!(order("sort=mtime&order=asc"), ["b_big", "c_mid", "a_small"]);
}

#[test]
fn errors_have_their_statuses() {
    let srv = web_server(&[]);
    let port = srv.web_port();
    let tmp = scratch();
    let src = tmp.join("src");
    small_tree(&src, 4);
    backup(&srv, NAME, &src);

    for p in [
        "/no-such-page".to_string(),
        "/browse/nosuchname/".to_string(),
        "/files/nosuchname/etc/hosts".to_string(),
        file_url(NAME, &src.join("nope.txt")),
        dir_url(NAME, &src.join("nodir")),
    ] {
        let r = curl(&[&url(port, &p)]);
        assert_eq!(r.status, 404, "{p}\n{}", r.show());
    }
    for m in ["DELETE", "PUT", "PATCH"] {
        let r = curl(&["-X", m, &url(port, &file_url(NAME, &src.join("a.txt")))]);
        assert_eq!(r.status, 405, "{m}\n{}", r.show());
        assert!(
            r.header("allow").is_some(),
            "a 405 without Allow\n{}",
            r.show()
        );
    }
    // A head over 16 KiB: 431; the connection is ended, the server lives.
    let mut c = WebConn::connect(port);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let _ = std::io::Write::write_all(&mut c.stream, big.as_bytes());
    let r = c.response(false);
    assert_eq!(r.status, 431, "{}", r.show());
    // Too many headers: 431 too.
    let mut many = String::from("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let mut c = WebConn::connect(port);
    c.send(many.as_bytes());
    assert_eq!(c.response(false).status, 431);
    // A body too big for a form: 413, without reading it all.
    let mut c = WebConn::connect(port);
    c.send(
        b"POST /plans HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n\r\n",
    );
    let r = c.response(false);
    assert_eq!(r.status, 413, "{}", r.show());
    // A request that is not HTTP: 400.
    let mut c = WebConn::connect(port);
    c.send(b"HELLO THERE\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.status, 400, "{}", r.show());
    // And the server still answers.
    curl(&[&url(port, "/")]).status_is(200);
}

#[test]
fn the_space_of_a_namespace_counts_its_history() {
    let store = scratch();
    let root = store.join("root");
    let srv = Server::start_at(&root, &["--http", "127.0.0.1:0"]);
    let tmp = scratch();
    let src = tmp.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("big"), vec![1u8; 300_000]).unwrap();
    backup(&srv, "spacey", &src);
    fs::write(src.join("big"), vec![2u8; 300_000]).unwrap();
    backup(&srv, "spacey", &src);
    // Measured 2 s after a start: restart so these backups are measured.
    drop(srv);
    let srv = Server::start_at(&root, &["--http", "127.0.0.1:0"]);
    let port = srv.web_port();
    let sample = |part: &str| -> Option<f64> {
        let m = curl(&[&url(port, "/metrics")]).text();
        let key = format!("rsb_store_bytes{{name=\"spacey\",part=\"{part}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.parse().ok())
    };
    assert!(
        eventually(Duration::from_secs(10), || sample("current").is_some()),
        "never measured"
    );
    let current = sample("current").unwrap();
    let history = sample("history").unwrap();
    // 300,000 bytes each (blocks of 4 KiB: at least that, rounded up).
    assert!(current >= 300_000.0, "current {current}");
    assert!(history >= 300_000.0, "history {history}");
    assert!(!srv.log().contains("retention: open"), "{}", srv.log());
}
