//! Hostile names backed up, then listed and downloaded: markup
//! (`<script>alert(1)</script>` as a directory and a file, `<img onerror>`),
//! quotes (`a"b'c`, `"onmouseover=...`), CR/LF with a header in it, invalid
//! UTF-8 and a bidi override. The listing must hold no markup or attribute
//! from a name (a structural scan of its tags), and each name's download
//! link must give its bytes with a head in which nothing was injected.

use std::path::Path;

use super::http::*;
use crate::common::*;

/// The hostile names (each a file directly under SRC but the first, which
/// is `SRC/<script>alert(1)</` + `script>`, a slash being no name byte).
const NAMES: &[&[u8]] = &[
    b"<img src=x onerror=alert(1)>",
    b"a\"b'c",
    b"\"onmouseover=alert(1) x=\"",
    b"a\r\nSet-Cookie: x=1",
    b"x\r\n\r\n<h1>body",
    b"\xff\xfe",
    "\u{202e}txt.exe".as_bytes(),
    b"tab\there & amp;",
];

fn content(i: usize) -> Vec<u8> {
    format!("content of hostile name #{i}\n").into_bytes()
}

/// The source tree: every name of [`NAMES`] plus the `<script>` path.
fn hostile_tree(src: &Path) {
    let mut t = Tree::new(src, 0o755, (1_600_000_000, 0));
    for (i, n) in NAMES.iter().enumerate() {
        t.file(n, &content(i), 0o644, (1_600_000_000 + i as i64, 0));
    }
    t.dir("<script>alert(1)<", 0o755, (1_600_000_100, 0))
        .file(
            "<script>alert(1)</script>",
            b"script file\n",
            0o644,
            (1_600_000_101, 0),
        )
        .finish();
}

/// Scans the tags of `html`: every attribute value is quoted and followed
/// by a space, `/` or `>` (a name that closed its quote would leave
/// something else); no `on*` handler, no `<img>`, every `<script>` loads a
/// file (`src=`) and holds nothing. Returns the problems found.
fn tag_problems(html: &str) -> Vec<String> {
    let b = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if html[i..].starts_with("!--") {
            match html[i..].find("-->") {
                Some(e) => i += e + 3,
                None => {
                    out.push("an unclosed comment".into());
                    break;
                }
            }
            continue;
        }
        let name_end = html[i..]
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .map(|e| i + e)
            .unwrap_or(b.len());
        let name = html[i..name_end].to_ascii_lowercase();
        if name.is_empty() && !html[i..].starts_with('/') {
            out.push(format!("a bare `<` at {start}"));
        }
        i = name_end;
        // Attributes up to the tag's `>`.
        let mut has_src = false;
        loop {
            while i < b.len() && (b[i] as char).is_whitespace() {
                i += 1;
            }
            if i >= b.len() {
                out.push(format!("an unclosed <{name}>"));
                return out;
            }
            if b[i] == b'>' {
                i += 1;
                break;
            }
            if b[i] == b'/' {
                i += 1;
                continue;
            }
            let an_end = html[i..]
                .find(|c: char| c.is_whitespace() || c == '=' || c == '>')
                .map(|e| i + e)
                .unwrap_or(b.len());
            let attr = html[i..an_end].to_ascii_lowercase();
            if attr.starts_with("on") {
                out.push(format!("an event handler {attr:?} on <{name}>"));
            }
            if attr.contains('"') || attr.contains('\'') || attr.contains('<') {
                out.push(format!(
                    "a quote or `<` in an attribute name {attr:?} of <{name}>"
                ));
            }
            if attr == "src" {
                has_src = true;
            }
            i = an_end;
            if i < b.len() && b[i] == b'=' {
                i += 1;
                let q = b.get(i).copied().unwrap_or(b' ');
                if q != b'"' && q != b'\'' {
                    out.push(format!("an unquoted value of {attr:?} on <{name}>"));
                    while i < b.len() && !(b[i] as char).is_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    continue;
                }
                match html[i + 1..].find(q as char) {
                    Some(e) => i = i + 1 + e + 1,
                    None => {
                        out.push(format!("an unclosed value of {attr:?}"));
                        return out;
                    }
                }
                let next = b.get(i).copied().unwrap_or(b'>');
                if !(next as char).is_whitespace() && next != b'>' && next != b'/' {
                    out.push(format!(
                        "something right after the value of {attr:?} on <{name}>: {:?}",
                        &html[i..(i + 20).min(html.len())]
                    ));
                }
            }
        }
        match name.as_str() {
            "img" | "iframe" | "object" | "embed" | "svg" => {
                out.push(format!("a <{name}> tag at {start}"))
            }
            "script" if !has_src || !html[i..].starts_with("</script>") => {
                out.push(format!("an inline <script> at {start}"));
            }
            _ => {}
        }
    }
    out
}

#[test]
fn hostile_names_are_escaped_in_the_listing_and_download_cleanly() {
    let srv = web_server(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    hostile_tree(&src);
    backup(&srv, NAME, &src);
    let port = srv.web_port();

    let page = curl(&[&url(port, &dir_url(NAME, &src))]);
    page.status_is(200);
    assert!(page.must("content-type").starts_with("text/html"));
    let html = std::str::from_utf8(&page.body)
        .unwrap_or_else(|e| panic!("the listing is not UTF-8 ({e}): raw name bytes in it"));
    for raw in [
        "<script>alert",
        "<img",
        "a\"b'c",
        "\"onmouseover",
        "\r\nSet-Cookie",
        "\r\n\r\n<h1>",
        "\u{202e}",
    ] {
        assert!(
            !html.contains(raw),
            "the listing holds {raw:?} raw\n{}",
            page.show()
        );
    }
    let problems = tag_problems(html);
    assert!(problems.is_empty(), "{problems:#?}\n{}", page.show());
    // The escaped names are shown (the visible part of each).
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{}",
        page.show()
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;"),
        "{}",
        page.show()
    );

    // Every name has a download link that decodes to its path.
    let links = hrefs(html);
    let prefix = file_url(NAME, &src);
    for (i, n) in NAMES.iter().enumerate() {
        let mut want = dec(&prefix);
        want.push(b'/');
        want.extend_from_slice(n);
        let link = links
            .iter()
            .find(|l| dec(l.split('?').next().unwrap()) == want)
            .unwrap_or_else(|| {
                panic!(
                    "no download link for {:?} among {links:#?}",
                    String::from_utf8_lossy(n)
                )
            });
        let r = raw_get(port, link.as_bytes(), "");
        assert_eq!(r.status, 200, "{link}\n{}", r.show());
        assert_eq!(r.body, content(i), "{link}");
        clean_head(&r);
        // The same file through our own encoding of its name.
        let r = raw_get(port, file_url(NAME, &src.join(bpath(n))).as_bytes(), "");
        r.status_is(200);
        assert_eq!(r.body, content(i));
    }
    // The <script> directory is a listing of its own, escaped too.
    let sub = curl(&[&url(port, &dir_url(NAME, &src.join("<script>alert(1)<")))]);
    sub.status_is(200);
    assert!(!sub.text().contains("<script>alert"), "{}", sub.show());
    assert!(tag_problems(&sub.text()).is_empty());
    let r = curl(&[&url(
        port,
        &file_url(NAME, &src.join("<script>alert(1)</script>")),
    )]);
    r.status_is(200);
    assert_eq!(r.body, b"script file\n");
    assert!(
        r.must("content-type").starts_with("text/plain")
            || r.must("content-type") == "application/octet-stream"
    );
}

/// The head has only well-formed lines, ends every line with CRLF, names
/// no header a file name made, and its Content-Disposition carries no CR,
/// LF or raw non-ASCII byte.
fn clean_head(r: &Resp) {
    let head = &r.head;
    for (i, &b) in head.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && head[i - 1] == b'\r', "a bare LF in\n{}", r.show());
        }
        if b == b'\r' {
            assert_eq!(head.get(i + 1), Some(&b'\n'), "a bare CR in\n{}", r.show());
        }
        assert!(b < 0x80, "a raw non-ASCII byte in the head\n{}", r.show());
    }
    let count = |name: &str| r.all(name).len();
    assert_eq!(count("content-disposition"), 1, "{}", r.show());
    assert_eq!(count("content-length"), 1, "{}", r.show());
    for (n, v) in &r.headers {
        assert!(
            !n.is_empty() && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'),
            "a header line that is no header: {n:?}: {v:?}\n{}",
            r.show()
        );
        assert!(
            !(n.eq_ignore_ascii_case("set-cookie") && v.starts_with("x=1")),
            "a header was injected\n{}",
            r.show()
        );
        assert!(!n.starts_with("HTTP"), "a second status line\n{}", r.show());
    }
    assert!(r.must("content-disposition").starts_with("attachment"));
}

#[test]
fn the_tag_scan_finds_what_a_name_could_inject() {
    let good = r#"<!DOCTYPE html><html><head><link rel="stylesheet" href="/static/style.css"><script src="/static/live.js"></script></head><body><a href="/x?a=1&amp;b=2" title='it&#39;s'>&lt;script&gt;</a><br/><input type="hidden" name="csrf" value="t"></body></html>"#;
    assert_eq!(tag_problems(good), Vec::<String>::new());
    for bad in [
        r#"<a href="/x"onmouseover=alert(1)>x</a>"#,
        r#"<a href="/x" onmouseover="alert(1)">x</a>"#,
        r#"<td><img src=x onerror=alert(1)></td>"#,
        r#"<td><script>alert(1)</script></td>"#,
        r#"<a title="a"b'c">x</a>"#,
        r#"<a href=/x>x</a>"#,
    ] {
        assert!(!tag_problems(bad).is_empty(), "missed {bad}");
    }
}
