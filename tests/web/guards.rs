//! Defects an independent review found, each pinned by the request that
//! showed it: a foreign `Host` (DNS rebinding) refused without
//! `--secrets`; error answers to HEAD without a body (the next pipelined
//! response must not be read as one); plans not written over a
//! hand-edited file with errors; a peer that keeps sending after a
//! `Connection: close` answer does not hold up the loop.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::http::*;
use crate::common::*;

/// `METHOD TARGET` with exactly `headers` (no Host unless given), on a
/// fresh connection that the server closes after it.
fn with_headers(port: u16, method: &str, target: &str, headers: &[&str]) -> Resp {
    let mut c = WebConn::connect(port);
    let mut req = format!("{method} {target} HTTP/1.1\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("Connection: close\r\n\r\n");
    c.send(req.as_bytes());
    c.response(method == "HEAD")
}

#[test]
fn a_foreign_host_is_refused_without_secrets() {
    let srv = web_server(&["--http-host", "backup.lan"]);
    let port = srv.web_port();
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("secret.txt"), b"private bytes").unwrap();
    backup(&srv, "laptop", src.path());
    let file = file_url("laptop", &src.path().join("secret.txt"));

    // What a page of evil.example re-pointed at this server would send.
    for target in ["/", file.as_str(), "/status.json", "/metrics"] {
        let r = with_headers(port, "GET", target, &["Host: evil.example:8080"]);
        assert_eq!(r.status, 403, "{target}\n{}", r.show());
        assert!(!contains(&r.body, b"private bytes"));
        assert!(r.text().contains("--http-host"), "{}", r.show());
        assert!(r.header("set-cookie").is_none(), "{}", r.show());
    }
    let before = fs::read_to_string(srv.root().join(".rsb-plans")).unwrap_or_default();
    let body = "name=laptop&paths=%2Froot%2F.ssh&schedule=every&interval=1m&csrf=x";
    let mut c = WebConn::connect(port);
    c.send(
        format!(
            "POST /plans HTTP/1.1\r\nHost: evil.example:8080\r\nOrigin: http://evil.example:8080\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let r = c.response(false);
    assert_eq!(r.status, 403, "{}", r.show());
    let after = fs::read_to_string(srv.root().join(".rsb-plans")).unwrap_or_default();
    assert_eq!(before, after, "the plans file changed");

    // Addresses, localhost and the --http-host name are answered.
    for host in [
        format!("127.0.0.1:{port}"),
        "localhost".to_string(),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
        format!("backup.lan:{port}"),
        "Backup.LAN.".to_string(),
    ] {
        let r = with_headers(port, "GET", &file, &[&format!("Host: {host}")]);
        assert_eq!(r.status, 200, "Host: {host}\n{}", r.show());
        assert_eq!(r.body, b"private bytes");
    }
    // Look-alikes are not.
    for host in [
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "backup.lan.evil",
    ] {
        let r = with_headers(port, "GET", "/", &[&format!("Host: {host}")]);
        assert_eq!(r.status, 403, "Host: {host}\n{}", r.show());
    }
    assert!(srv.log().contains("web interface on"));
}

#[test]
fn with_secrets_a_host_name_is_left_to_the_credentials() {
    let srv = Server::start_with_secrets(
        "laptop:s3cret-laptop-0123456789\n",
        &["--http", "127.0.0.1:0"],
    );
    let port = srv.web_port();
    // A browser never sends this origin's credentials to evil.example, so
    // without them it gets 401; with them (a person typed them there),
    // the page.
    let r = with_headers(port, "GET", "/", &["Host: nas.example"]);
    assert_eq!(r.status, 401, "{}", r.show());
    let auth = format!(
        "Authorization: Basic {}",
        b64("laptop:s3cret-laptop-0123456789")
    );
    let r = with_headers(port, "GET", "/", &["Host: nas.example", &auth]);
    assert_eq!(r.status, 200, "{}", r.show());
}

fn b64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn error_answers_to_head_have_no_body() {
    let srv = web_server(&[]);
    let port = srv.web_port();
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("f.txt"), b"0123456789").unwrap();
    backup(&srv, "laptop", src.path());
    let file = file_url("laptop", &src.path().join("f.txt"));
    let missing = file_url("laptop", &src.path().join("nothing"));
    // Pipelined on one connection: each error head, then the CSS whole. A
    // body after an error head would be read as the next response.
    let mut c = WebConn::connect(port);
    let mut req = String::new();
    for (target, extra) in [
        (missing.as_str(), ""),
        (file.as_str(), "If-Match: \"nope\"\r\n"),
        (file.as_str(), "Range: bytes=50-60\r\n"),
        ("/no/such/page", ""),
        ("/browse/nobody/", ""),
    ] {
        req.push_str(&format!(
            "HEAD {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n"
        ));
    }
    req.push_str("GET /static/style.css HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    c.send(req.as_bytes());
    // A HEAD ignores Range (RFC 9110 14.2), so the third is a plain 200 head.
    for want in [404, 412, 200, 404, 404] {
        let r = c.response(true);
        assert_eq!(r.status, want, "{}", r.show());
        assert!(r.header("content-length").is_some(), "{}", r.show());
    }
    let css = c.response(false);
    assert_eq!(css.status, 200, "{}", css.show());
    assert!(css.must("content-type").starts_with("text/css"));
    assert!(c.closed(), "bytes left after the last response");
}

#[test]
fn plans_are_not_written_over_a_hand_edited_file_with_errors() {
    let srv = web_server(&[]);
    let port = srv.web_port();
    let file = srv.root().join(".rsb-plans");
    let text = "[laptop]\npath /home\nevery 1h\n\n[server2]\npath /etc\nevry 1h\n";
    fs::write(&file, text).unwrap();
    let r = curl(&[&url(port, "/")]);
    r.status_is(200);
    let cookie = session_cookie(&r).expect("a session cookie");
    let csrf = csrf_of(&r.text()).expect("a csrf token");
    let post = |csrf: &str| {
        curl(&[
            "-H",
            "Expect:",
            "-H",
            &format!("Cookie: {cookie}"),
            "-H",
            &format!("Origin: http://127.0.0.1:{port}"),
            "--data-urlencode",
            "name=desk",
            "--data-urlencode",
            "paths=/srv",
            "--data-urlencode",
            "schedule=every",
            "--data-urlencode",
            "interval=1h",
            "--data-urlencode",
            &format!("csrf={csrf}"),
            &url(port, "/plans"),
        ])
    };
    let r = post(&csrf);
    assert_eq!(r.status, 409, "{}", r.show());
    assert!(r.text().contains("fix it by hand"), "{}", r.show());
    assert_eq!(fs::read_to_string(&file).unwrap(), text, "the file changed");
    // Fixed by hand: the same POST now saves, keeping server2.
    fs::write(&file, text.replace("evry", "every")).unwrap();
    let r = post(&csrf);
    assert_eq!(r.status, 303, "{}", r.show());
    let back = fs::read_to_string(&file).unwrap();
    assert!(
        back.contains("[server2]") && back.contains("[desk]") && back.contains("[laptop]"),
        "{back}"
    );
}

#[test]
fn a_peer_sending_after_its_last_answer_does_not_hold_the_loop() {
    let srv = web_server(&[]);
    let port = srv.web_port();
    // Three peers: a request with Connection: close, then 64 MiB each as
    // fast as they can (bounded in bytes and time).
    let mut floods = Vec::new();
    for _ in 0..3 {
        floods.push(std::thread::spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"GET /static/style.css HTTP/1.0\r\n\r\n")
                .unwrap();
            let chunk = vec![b'x'; 1 << 20];
            let end = Instant::now() + Duration::from_secs(6);
            for _ in 0..64 {
                if Instant::now() > end || s.write_all(&chunk).is_err() {
                    break;
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(300));
    // Meanwhile every other request is answered at once.
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        let r = raw_get(port, b"/static/style.css", "");
        assert_eq!(r.status, 200);
        worst = worst.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    for f in floods {
        f.join().unwrap();
    }
    assert!(
        worst < Duration::from_millis(300),
        "a request took {worst:?}"
    );
    assert!(!srv.log().contains("a loop turn took"), "{}", srv.log());
}
