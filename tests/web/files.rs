//! Downloads, `GET|HEAD /files/<name>/<path>`, checked with curl against
//! a 10-byte file `0123456789` (golden tests in the manner of rclone's):
//! the headers of a whole answer; single ranges (206 with the right
//! Content-Range and bytes); unsatisfiable ones (416 `bytes */10`);
//! If-Range, If-None-Match and If-Modified-Since in RFC 9110's order; HEAD
//! (headers, no body byte on the wire); multipart/byteranges parsed part
//! by part, and abusive sets answered whole; `curl -C -` finishing a cut
//! download to identical bytes; `?at=` and the versions page giving an
//! older version's bytes.

use std::fs;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::http::*;
use crate::common::*;

const TEN: &[u8] = b"0123456789";
/// The ten-byte file's mtime: 2020-09-13 12:26:41.5 UTC (the half second
/// checks that Last-Modified's whole seconds are what preconditions
/// compare).
const TEN_MTIME: T = (1_600_000_001, 500_000_000);
const TEN_DATE: &str = "Sun, 13 Sep 2020 12:26:41 GMT";

/// A server holding `SRC/ten.txt` (and `SRC/big.bin`, 1 MiB + 123
/// bytes of random data) for client `t`; returns the server, the scratch
/// dir and the ten-byte file's URL.
fn ten_byte_server() -> (Server, Scratch, String) {
    let srv = web_server(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    let mut t = Tree::new(&src, 0o755, (1_600_000_000, 0));
    t.file("ten.txt", TEN, 0o644, TEN_MTIME)
        .file(
            "big.bin",
            &random_bytes(42, (1 << 20) + 123),
            0o600,
            (1_600_000_100, 0),
        )
        .finish();
    backup(&srv, NAME, &src);
    let u = url(srv.web_port(), &file_url(NAME, &src.join("ten.txt")));
    (srv, tmp, u)
}

/// `curl URL -H "Range: SPEC"`.
fn ranged(u: &str, spec: &str) -> Resp {
    curl(&["-H", &format!("Range: bytes={spec}"), u])
}

#[test]
fn a_whole_download_carries_every_header() {
    let (_srv, _tmp, u) = ten_byte_server();
    let r = curl(&[&u]);
    r.status_is(200);
    assert_eq!(r.body, TEN, "{}", r.show());
    assert_eq!(r.must("content-length"), "10");
    assert_eq!(r.must("accept-ranges"), "bytes");
    assert_eq!(r.must("last-modified"), TEN_DATE);
    assert_eq!(r.must("x-content-type-options"), "nosniff");
    assert!(
        r.must("content-type").starts_with("text/plain"),
        "{}",
        r.show()
    );
    let cd = r.must("content-disposition");
    assert!(
        cd.starts_with("attachment") && cd.contains("ten.txt"),
        "{cd:?}"
    );
    let etag = r.must("etag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "not a strong ETag: {etag:?}"
    );
    // The same file gives the same validator.
    assert_eq!(curl(&[&u]).must("etag"), etag);
}

#[test]
fn single_ranges_are_answered_206_with_their_bytes() {
    let (_srv, _tmp, u) = ten_byte_server();
    for (spec, bytes, range) in [
        ("2-5", &b"2345"[..], "bytes 2-5/10"),
        ("0-6", b"0123456", "bytes 0-6/10"),
        ("3-", b"3456789", "bytes 3-9/10"),
        ("-3", b"789", "bytes 7-9/10"),
        ("9-9", b"9", "bytes 9-9/10"),
        // A last byte past the end is clipped to the size.
        ("5-20", b"56789", "bytes 5-9/10"),
    ] {
        let r = ranged(&u, spec);
        assert_eq!(r.status, 206, "bytes={spec}\n{}", r.show());
        assert_eq!(r.body, bytes, "bytes={spec}\n{}", r.show());
        assert_eq!(r.must("content-range"), range, "bytes={spec}");
        assert_eq!(
            r.must("content-length"),
            bytes.len().to_string(),
            "bytes={spec}"
        );
    }
    // A suffix longer than the file is the whole file, as a range.
    let r = ranged(&u, "-20");
    assert!(matches!(r.status, 200 | 206), "{}", r.show());
    assert_eq!(r.body, TEN);
}

#[test]
fn ranges_past_the_end_are_416_with_the_size() {
    let (_srv, _tmp, u) = ten_byte_server();
    for spec in ["10-", "20-30", "10-10"] {
        let r = ranged(&u, spec);
        assert_eq!(r.status, 416, "bytes={spec}\n{}", r.show());
        assert_eq!(r.must("content-range"), "bytes */10", "bytes={spec}");
        assert!(!contains(&r.body, TEN), "bytes={spec}: the file came");
    }
    // An invalid range is ignored (RFC 9110 14.2): the whole file.
    let r = ranged(&u, "5-2");
    r.status_is(200);
    assert_eq!(r.body, TEN);
}

#[test]
fn preconditions_follow_rfc_9110() {
    let (_srv, _tmp, u) = ten_byte_server();
    let etag = curl(&[&u]).must("etag").to_string();

    // If-Range with the current ETag: the range; with a stale one: all.
    let r = curl(&[
        "-H",
        "Range: bytes=2-5",
        "-H",
        &format!("If-Range: {etag}"),
        &u,
    ]);
    r.status_is(206);
    assert_eq!(r.body, b"2345");
    let r = curl(&["-H", "Range: bytes=2-5", "-H", "If-Range: \"stale-0\"", &u]);
    r.status_is(200);
    assert_eq!(r.body, TEN);
    // ... and with the exact Last-Modified date the range, an older date all.
    let r = curl(&[
        "-H",
        "Range: bytes=2-5",
        "-H",
        &format!("If-Range: {TEN_DATE}"),
        &u,
    ]);
    r.status_is(206);
    assert_eq!(r.body, b"2345");
    let r = curl(&[
        "-H",
        "Range: bytes=2-5",
        "-H",
        "If-Range: Sat, 12 Sep 2020 12:26:41 GMT",
        &u,
    ]);
    r.status_is(200);

    // If-None-Match with the ETag (alone, in a list, or `*`): 304, no body.
    for inm in [etag.clone(), format!("\"other\", {etag}"), "*".to_string()] {
        let r = curl(&["-H", &format!("If-None-Match: {inm}"), &u]);
        assert_eq!(r.status, 304, "If-None-Match: {inm}\n{}", r.show());
        assert!(r.body.is_empty());
        assert_eq!(r.must("etag"), etag);
    }
    let r = curl(&["-H", "If-None-Match: \"other\"", &u]);
    r.status_is(200);

    // If-Modified-Since at or after Last-Modified (whole seconds): 304.
    for ims in [TEN_DATE, "Mon, 14 Sep 2020 00:00:00 GMT"] {
        let r = curl(&["-H", &format!("If-Modified-Since: {ims}"), &u]);
        assert_eq!(r.status, 304, "If-Modified-Since: {ims}\n{}", r.show());
        assert!(r.body.is_empty());
    }
    let r = curl(&["-H", "If-Modified-Since: Sun, 13 Sep 2020 12:26:40 GMT", &u]);
    r.status_is(200);
    assert_eq!(r.body, TEN);
    // If-None-Match that fails wins over an If-Modified-Since that holds.
    let r = curl(&[
        "-H",
        "If-None-Match: \"other\"",
        "-H",
        &format!("If-Modified-Since: {TEN_DATE}"),
        &u,
    ]);
    r.status_is(200);
}

#[test]
fn head_sends_the_headers_and_not_one_body_byte() {
    let (srv, tmp, u) = ten_byte_server();
    let r = curl(&["-I", &u]);
    r.status_is(200);
    assert_eq!(r.must("content-length"), "10");
    assert_eq!(r.must("accept-ranges"), "bytes");
    assert!(r.header("etag").is_some() && r.header("last-modified").is_some());

    // On the wire: HEAD then GET pipelined; the GET's status line must come
    // right after the HEAD's blank line.
    let target = file_url(NAME, &tmp.join("src/ten.txt"));
    let mut c = WebConn::connect(srv.web_port());
    let mut req = format!("HEAD {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes();
    req.extend_from_slice(
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=0-1\r\n\r\n").as_bytes(),
    );
    c.send(&req);
    let head = c.response(true);
    head.status_is(200);
    assert_eq!(head.must("content-length"), "10");
    let get = c.response(false);
    get.status_is(206);
    assert_eq!(get.body, b"01");
}

/// The parts of a multipart/byteranges body: (Content-Range, bytes).
fn parts(r: &Resp) -> Vec<(String, Vec<u8>)> {
    let ct = r.must("content-type");
    assert!(ct.starts_with("multipart/byteranges"), "{}", r.show());
    let boundary = ct
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .unwrap_or_else(|| panic!("no boundary in {ct:?}"))
        .trim_matches('"')
        .to_string();
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    let mut rest = &r.body[..];
    loop {
        let at = find(rest, delim.as_bytes())
            .unwrap_or_else(|| panic!("a delimiter is missing in\n{}", r.show()));
        rest = &rest[at + delim.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").expect("a part's head");
        let (_, headers) = parse_head(&[b"HTTP/1.1 200 x", &rest[..head_end + 4]].concat());
        let range = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-range"))
            .map(|(_, v)| v.clone())
            .expect("a part without Content-Range");
        let span = range
            .strip_prefix("bytes ")
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        let (a, b) = span.split_once('-').unwrap();
        let len = b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1;
        let body_at = head_end + 4;
        out.push((range, rest[body_at..body_at + len].to_vec()));
        rest = &rest[body_at + len..];
    }
    out
}

#[test]
fn several_ranges_are_multipart_and_abusive_sets_whole() {
    let (_srv, _tmp, u) = ten_byte_server();
    let r = ranged(&u, "0-1,5-6");
    r.status_is(206);
    assert_eq!(
        r.must("content-length"),
        r.body.len().to_string(),
        "Content-Length is not the body's length"
    );
    assert_eq!(
        parts(&r),
        vec![
            ("bytes 0-1/10".to_string(), b"01".to_vec()),
            ("bytes 5-6/10".to_string(), b"56".to_vec()),
        ]
    );
    // Overlapping ranges, or more than 8: the whole file, once.
    for spec in [
        "0-5,3-8",
        "0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8",
        "0-9,0-9,0-9",
    ] {
        let r = ranged(&u, spec);
        assert_eq!(r.status, 200, "bytes={spec}\n{}", r.show());
        assert_eq!(r.body, TEN, "bytes={spec}");
    }
}

#[test]
fn curl_resumes_a_cut_download_to_identical_bytes() {
    let (srv, tmp, _) = ten_byte_server();
    let src = tmp.join("src/big.bin");
    let u = url(srv.web_port(), &file_url(NAME, &src));
    let out = tmp.join("download");
    // Cut halfway: what a broken transfer leaves, fetched from the server.
    let half = curl(&["-r", "0-524287", &u]);
    half.status_is(206);
    assert_eq!(half.body.len(), 524_288);
    fs::write(&out, &half.body).unwrap();
    let o = std::process::Command::new("curl")
        .args(["-sS", "--max-time", CURL_MAX, "-C", "-", "-o"])
        .arg(&out)
        .arg(&u)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "curl -C -: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let cmp = std::process::Command::new("cmp")
        .arg(&src)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        cmp.status.success(),
        "the resumed download differs: {}",
        String::from_utf8_lossy(&cmp.stdout)
    );
    // A cut at an odd offset of a real download (`head -c` of what curl
    // fetched whole: a rate limit does not cut a 1 MiB transfer on
    // loopback reliably, the socket buffers hold it), then resumed.
    let cut = tmp.join("cut");
    let whole = curl(&[&u]);
    whole.status_is(200);
    fs::write(&cut, &whole.body[..333_331]).unwrap();
    let got = 333_331;
    let o = std::process::Command::new("curl")
        .args(["-sS", "--max-time", CURL_MAX, "-C", "-", "-o"])
        .arg(&cut)
        .arg(&u)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        same_content(&src, &cut),
        "resumed after {got} bytes: differs"
    );
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A server with two backups of `SRC`: first `doc.txt` = "version one"
/// and `gone.txt`; then `doc.txt` = "version two, longer" and no
/// `gone.txt`. Returns the server, the scratch dir, SRC and a time (whole
/// seconds) between the two backups.
fn two_versions() -> (Server, Scratch, PathBuf, u64) {
    let srv = web_server(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    let mut t = Tree::new(&src, 0o755, (1_600_000_000, 0));
    t.file("doc.txt", b"version one\n", 0o644, (1_600_000_010, 0))
        .file("gone.txt", b"deleted later\n", 0o644, (1_600_000_020, 0))
        .finish();
    backup(&srv, NAME, &src);
    // Whole seconds apart, so `@SECS` falls strictly between the backups.
    thread::sleep(Duration::from_millis(1100));
    let between = now_secs();
    thread::sleep(Duration::from_millis(1100));
    fs::write(src.join("doc.txt"), b"version two, longer\n").unwrap();
    set_mtime(&src.join("doc.txt"), (1_600_000_030, 0));
    fs::remove_file(src.join("gone.txt")).unwrap();
    backup(&srv, NAME, &src);
    (srv, tmp, src, between)
}

#[test]
fn at_gives_the_older_version_and_browses_the_past() {
    let (srv, _tmp, src, between) = two_versions();
    let port = srv.web_port();
    let doc = url(port, &file_url(NAME, &src.join("doc.txt")));
    let r = curl(&[&doc]);
    r.status_is(200);
    assert_eq!(r.body, b"version two, longer\n");
    let r = curl(&[&format!("{doc}?at=%40{between}")]);
    r.status_is(200);
    assert_eq!(r.body, b"version one\n", "{}", r.show());
    assert_eq!(r.must("content-length"), "12");
    // A range of the old version.
    let r = curl(&["-H", "Range: bytes=0-6", &format!("{doc}?at=%40{between}")]);
    r.status_is(206);
    assert_eq!(r.body, b"version");
    // A file deleted since is there in the past, and not now.
    let gone = url(port, &file_url(NAME, &src.join("gone.txt")));
    curl(&[&gone]).status_is(404);
    let r = curl(&[&format!("{gone}?at=%40{between}")]);
    r.status_is(200);
    assert_eq!(r.body, b"deleted later\n");
    // The listing of the past shows it; today's does not.
    let dir = url(port, &dir_url(NAME, &src));
    let now = curl(&[&dir]);
    now.status_is(200);
    assert!(now.text().contains("doc.txt") && !now.text().contains("gone.txt"));
    let then = curl(&[&format!("{dir}?at=%40{between}")]);
    then.status_is(200);
    assert!(then.text().contains("gone.txt"), "{}", then.show());
    // A bad TIME is refused, not taken for now.
    let r = curl(&[&format!("{doc}?at=yesterday-ish")]);
    r.status_is(400);
}

#[test]
fn the_versions_page_links_every_version() {
    let (srv, _tmp, src, _) = two_versions();
    let port = srv.web_port();
    let page = curl(&[&url(
        port,
        &format!("/browse/{NAME}{}", enc_path(&src.join("doc.txt"))),
    )]);
    page.status_is(200);
    assert!(page.must("content-type").starts_with("text/html"));
    let want = file_url(NAME, &src.join("doc.txt"));
    let links: Vec<String> = hrefs(&page.text())
        .into_iter()
        .filter(|h| h.starts_with(&format!("{want}?at=")))
        .collect();
    assert!(!links.is_empty(), "no `{want}?at=` link\n{}", page.show());
    let mut got = Vec::new();
    for l in &links {
        let r = curl(&[&url(port, l)]);
        assert_eq!(r.status, 200, "{l}\n{}", r.show());
        got.push(r.body);
    }
    assert!(
        got.iter().any(|b| b == b"version one\n"),
        "no link gives the first version: {links:?}"
    );
    // A page for a path that never existed is 404.
    let r = curl(&[&url(
        port,
        &format!("/browse/{NAME}{}", enc_path(&src.join("never.txt"))),
    )]);
    r.status_is(404);
}

#[test]
fn the_multipart_parser_reads_canned_parts() {
    let body = b"\r\n--B1\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01\r\n--B1\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-6/10\r\n\r\n56\r\n--B1--\r\n";
    let r = Resp {
        status: 206,
        head: Vec::new(),
        headers: vec![(
            "Content-Type".into(),
            "multipart/byteranges; boundary=B1".into(),
        )],
        body: body.to_vec(),
    };
    assert_eq!(
        parts(&r),
        vec![
            ("bytes 0-1/10".to_string(), b"01".to_vec()),
            ("bytes 5-6/10".to_string(), b"56".to_vec()),
        ]
    );
}
