//! Plans through the page: `POST /plans` and `POST /plans/<name>` with the
//! session cookie and CSRF token taken from `GET /` and a matching
//! `Origin` → 303 to `/` and the plan in `DIR/.rsb-plans`; without the
//! token, with another session's or with a foreign Origin → 403 and the
//! file untouched; a bad plan → 400 naming why; `delete=1` removes it.
//! And an agent (`rsb-client -n NAME HOST PORT agent`) follows a plan
//! changed through the page within seconds.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::http::*;
use crate::common::*;

/// A session: its cookie pair and the page's CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

fn session(port: u16) -> Session {
    let r = curl(&[&url(port, "/")]);
    r.status_is(200);
    let cookie = session_cookie(&r)
        .unwrap_or_else(|| panic!("GET / set no rsb_session cookie\n{}", r.show()));
    let csrf = csrf_of(&r.text())
        .unwrap_or_else(|| panic!("no hidden csrf input in the dashboard\n{}", r.show()));
    assert!(!csrf.is_empty());
    Session { cookie, csrf }
}

/// POSTs `fields` (url-encoded by curl) to `path` with `headers`.
fn post(port: u16, path: &str, headers: &[String], fields: &[(&str, &str)]) -> Resp {
    let mut args: Vec<String> = vec!["-H".into(), "Expect:".into()];
    for h in headers {
        args.push("-H".into());
        args.push(h.clone());
    }
    for (k, v) in fields {
        args.push("--data-urlencode".into());
        args.push(format!("{k}={v}"));
    }
    args.push(url(port, path));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(&a)
}

/// The headers of a good POST: the cookie and our own Origin.
fn good(port: u16, s: &Session) -> Vec<String> {
    vec![
        format!("Cookie: {}", s.cookie),
        format!("Origin: http://127.0.0.1:{port}"),
    ]
}

fn plans_file(srv: &Server) -> String {
    fs::read_to_string(srv.root().join(".rsb-plans")).unwrap_or_default()
}

fn plan_fields<'a>(name: &'a str, paths: &'a str, csrf: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("paths", paths),
        ("excludes", "*.tmp\ncache/"),
        ("schedule", "every"),
        ("interval", "1h"),
        ("bwlimit", "10M"),
        ("csrf", csrf),
    ]
}

#[test]
fn a_plan_is_saved_only_with_the_token_and_our_origin() {
    let srv = web_server(&[]);
    let port = srv.web_port();
    let s = session(port);

    // Refused: no token, a wrong token, a foreign Origin, no cookie.
    let fields_no_token: Vec<_> = plan_fields("planbox", "/srv/data", "")
        .into_iter()
        .filter(|(k, _)| *k != "csrf")
        .collect();
    let r = post(port, "/plans", &good(port, &s), &fields_no_token);
    assert_eq!(r.status, 403, "no token\n{}", r.show());
    let r = post(
        port,
        "/plans",
        &good(port, &s),
        &plan_fields("planbox", "/srv/data", "forged"),
    );
    assert_eq!(r.status, 403, "a wrong token\n{}", r.show());
    let foreign = vec![
        format!("Cookie: {}", s.cookie),
        "Origin: http://evil.example".to_string(),
    ];
    let r = post(
        port,
        "/plans",
        &foreign,
        &plan_fields("planbox", "/srv/data", &s.csrf),
    );
    assert_eq!(r.status, 403, "a foreign Origin\n{}", r.show());
    let r = post(
        port,
        "/plans",
        &[format!("Origin: http://127.0.0.1:{port}")],
        &plan_fields("planbox", "/srv/data", &s.csrf),
    );
    assert_eq!(r.status, 403, "no session cookie\n{}", r.show());
    // Another session's token does not fit this session's cookie.
    let other = session(port);
    if other.csrf != s.csrf {
        let r = post(
            port,
            "/plans",
            &good(port, &s),
            &plan_fields("planbox", "/srv/data", &other.csrf),
        );
        assert_eq!(r.status, 403, "another session's token\n{}", r.show());
    }
    assert!(
        !plans_file(&srv).contains("planbox"),
        "a refused POST wrote a plan"
    );

    // Accepted: 303 to `/`, and the file holds it.
    let r = post(
        port,
        "/plans",
        &good(port, &s),
        &plan_fields("planbox", "/srv/data\n/etc", &s.csrf),
    );
    assert_eq!(r.status, 303, "{}", r.show());
    assert_eq!(r.must("location"), "/");
    let text = plans_file(&srv);
    for want in ["planbox", "/srv/data", "/etc", "*.tmp", "cache/"] {
        assert!(text.contains(want), ".rsb-plans lacks {want:?}:\n{text}");
    }
    // The dashboard shows it.
    let page = curl(&[&url(port, "/")]);
    assert!(page.text().contains("planbox") && page.text().contains("/srv/data"));

    // A bad plan: 400 with a reason, and the old plan kept.
    let s = session(port);
    for (paths, interval) in [("relative/path", "1h"), ("/ok", "soon"), ("", "1h")] {
        let mut f = plan_fields("planbox", paths, &s.csrf);
        f.retain(|(k, _)| *k != "interval");
        f.push(("interval", interval));
        let r = post(port, "/plans/planbox", &good(port, &s), &f);
        assert_eq!(
            r.status,
            400,
            "paths {paths:?} interval {interval:?}\n{}",
            r.show()
        );
        assert!(!r.body.is_empty(), "a 400 without a reason");
    }
    assert!(
        plans_file(&srv).contains("/srv/data"),
        "a bad plan replaced a good one"
    );

    // Changed through /plans/<name>, then deleted.
    let mut f = plan_fields("planbox", "/home/ann", &s.csrf);
    f.retain(|(k, _)| *k != "name");
    let r = post(port, "/plans/planbox", &good(port, &s), &f);
    assert_eq!(r.status, 303, "{}", r.show());
    let text = plans_file(&srv);
    assert!(
        text.contains("/home/ann") && !text.contains("/srv/data"),
        "{text}"
    );
    let r = post(
        port,
        "/plans/planbox",
        &good(port, &s),
        &[("delete", "1"), ("csrf", &s.csrf)],
    );
    assert_eq!(r.status, 303, "{}", r.show());
    assert!(
        !plans_file(&srv).contains("planbox"),
        "{}",
        plans_file(&srv)
    );
    // A GET is no way to change a plan.
    let r = curl(&[&url(port, "/plans/planbox")]);
    assert!(matches!(r.status, 404 | 405), "{}", r.show());
}

/// Waits up to `limit` for the store to hold `file` of `name` with `bytes`.
fn arrives(srv: &Server, name: &str, file: &Path, bytes: &[u8], limit: Duration) -> bool {
    eventually(limit, || {
        fs::read(srv.store(name, file))
            .map(|b| b == bytes)
            .unwrap_or(false)
    })
}

#[test]
fn an_agent_follows_a_plan_changed_through_the_page() {
    const AGENT: &str = "agentbox";
    let srv = web_server(&[]);
    let port = srv.web_port();
    let tmp = scratch();
    let (one, two) = (tmp.join("one"), tmp.join("two"));
    let mut t = Tree::new(&one, 0o755, (1_600_000_000, 0));
    t.file("first.txt", b"first plan\n", 0o644, (1_600_000_001, 0))
        .finish();
    let mut t = Tree::new(&two, 0o755, (1_600_000_000, 0));
    t.file("second.txt", b"second plan\n", 0o644, (1_600_000_002, 0))
        .finish();

    let s = session(port);
    let watch_plan = |paths: &str| -> Vec<(String, String)> {
        [
            ("name", AGENT),
            ("paths", paths),
            ("excludes", ""),
            ("schedule", "watch"),
            ("interval", "1s"),
            ("bwlimit", ""),
            ("csrf", &s.csrf),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let send = |path: &str, fields: Vec<(String, String)>| -> Resp {
        let f: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        post(port, path, &good(port, &s), &f)
    };
    let one_s = one.to_str().unwrap().to_string();
    let r = send("/plans", watch_plan(&one_s));
    assert_eq!(r.status, 303, "{}", r.show());

    let agent = srv
        .client_as(AGENT, argv!["agent"])
        .timeout(Duration::from_secs(120))
        .spawn();
    if !arrives(
        &srv,
        AGENT,
        &one.join("first.txt"),
        b"first plan\n",
        Duration::from_secs(20),
    ) {
        let out = agent.kill9();
        panic!(
            "the agent did not back up its plan's path\n{out}\n{}",
            srv.log()
        );
    }
    // A change in the watched tree follows (it is a watch plan).
    fs::write(one.join("later.txt"), b"watched\n").unwrap();
    if !arrives(
        &srv,
        AGENT,
        &one.join("later.txt"),
        b"watched\n",
        Duration::from_secs(15),
    ) {
        let out = agent.kill9();
        panic!("the agent does not watch its plan's path\n{out}");
    }

    // The plan changes through the page: the agent follows within seconds.
    let two_s = two.to_str().unwrap().to_string();
    let mut f = watch_plan(&two_s);
    f.retain(|(k, _)| k != "name");
    let t0 = Instant::now();
    let r = send(&format!("/plans/{AGENT}"), f);
    assert_eq!(r.status, 303, "{}", r.show());
    if !arrives(
        &srv,
        AGENT,
        &two.join("second.txt"),
        b"second plan\n",
        Duration::from_secs(15),
    ) {
        let out = agent.kill9();
        panic!(
            "the agent did not follow the new plan\n{out}\n{}",
            srv.log()
        );
    }
    let followed = t0.elapsed();
    eprintln!("the agent followed the new plan in {followed:?}");
    assert!(followed < Duration::from_secs(10), "{followed:?}");
    // The old path is no longer watched.
    fs::write(one.join("after.txt"), b"not watched any more\n").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !srv.store(AGENT, &one.join("after.txt")).exists(),
        "the agent still watches the old plan's path"
    );
    // The dashboard says an agent is connected for it.
    let page = curl(&[&url(port, "/")]);
    assert!(page.text().contains(AGENT));
    let out = agent.kill9();
    assert!(
        out.err().contains("plan"),
        "the agent never mentioned its plan\n{out}"
    );
}
