//! The web tests' helpers: a server with `--http`, curl runs parsed into
//! status, headers and body, a raw HTTP/1.1 connection that reads
//! responses one by one (for pipelining and exact targets), percent
//! encoding of store paths, and the few HTML scans the tests need (links,
//! the CSRF input). Nothing here asserts on the server's behaviour except
//! where a helper says so.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

/// The bound on one curl run (`--max-time`).
pub const CURL_MAX: &str = "20";
/// How long a raw connection waits for the server.
pub const RAW_WAIT: Duration = Duration::from_secs(10);

/// `rsb-server -a 127.0.0.1 -p 0 -d ROOT --http 127.0.0.1:0 EXTRA...`.
pub fn web_server(extra: &[&str]) -> Server {
    let mut args = vec!["--http", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Backs `path` up as client `name`; panics unless it succeeds.
pub fn backup(srv: &Server, name: &str, path: &Path) -> Output {
    let o = srv.client_as(name, argv!["backup", path]).run();
    o.ok();
    o
}

/// One HTTP response: status, headers in order, body, and the raw head.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// The head as received, status line to the blank line included.
    pub head: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Every header called `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// The header `name`, panicking with the whole head when it is absent.
    pub fn must(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header in\n{}", self.show()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The head and the start of the body, for failure messages.
    pub fn show(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let cut: String = body.chars().take(1500).collect();
        format!(
            "{}[{} body bytes] {cut}",
            String::from_utf8_lossy(&self.head),
            self.body.len()
        )
    }
    /// Panics unless the status is `code`.
    pub fn status_is(&self, code: u16) -> &Self {
        assert_eq!(self.status, code, "unexpected status\n{}", self.show());
        self
    }
}

/// Parses one head (`HTTP/1.1 206 Partial Content\r\nName: v\r\n...\r\n\r\n`).
pub fn parse_head(head: &[u8]) -> (u16, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((n, v)) => (n.to_string(), v.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();
    (status, headers)
}

/// Runs `curl -sS --max-time 20 -D HEADFILE -o BODYFILE ARGS...` and parses
/// the last head curl saw (after any `100 Continue`). Panics when curl
/// itself fails (exit status), showing what it said.
pub fn curl(args: &[&str]) -> Resp {
    let tmp = scratch();
    let (hf, bf) = (tmp.join("head"), tmp.join("body"));
    let o = Command::new("curl")
        .args(["-sS", "--max-time", CURL_MAX, "-D"])
        .arg(&hf)
        .arg("-o")
        .arg(&bf)
        .args(args)
        .output()
        .expect("run curl (is it installed?)");
    assert!(
        o.status.success(),
        "curl {args:?} failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let heads = fs::read(&hf).unwrap_or_default();
    let body = fs::read(&bf).unwrap_or_default();
    let last = last_head(&heads);
    if last.is_empty() {
        return Resp {
            status: 0,
            head: Vec::new(),
            headers: Vec::new(),
            body,
        };
    }
    let (status, headers) = parse_head(&last);
    Resp {
        status,
        head: last,
        headers,
        body,
    }
}

/// The last head of a `-D` file holding one or more.
fn last_head(heads: &[u8]) -> Vec<u8> {
    let mut starts = Vec::new();
    let mut i = 0;
    while let Some(at) = find(&heads[i..], b"HTTP/") {
        let at = i + at;
        if at == 0 || heads[..at].ends_with(b"\r\n\r\n") {
            starts.push(at);
        }
        i = at + 5;
    }
    match starts.last() {
        Some(&s) => heads[s..].to_vec(),
        None => Vec::new(),
    }
}

/// `http://127.0.0.1:PORT` + `path`.
pub fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// Percent-encodes every byte outside RFC 3986's unreserved set.
pub fn enc(seg: &[u8]) -> String {
    let mut s = String::new();
    for &b in seg {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// An absolute path, each segment percent-encoded, `/` kept.
pub fn enc_path(p: &Path) -> String {
    p.as_os_str()
        .as_bytes()
        .split(|&b| b == b'/')
        .map(enc)
        .collect::<Vec<_>>()
        .join("/")
}

/// `/files/NAME/abs/path` (percent-encoded).
pub fn file_url(name: &str, abs: &Path) -> String {
    format!("/files/{}{}", enc(name.as_bytes()), enc_path(abs))
}

/// `/browse/NAME/abs/path/` (percent-encoded, trailing slash).
pub fn dir_url(name: &str, abs: &Path) -> String {
    format!("/browse/{}{}/", enc(name.as_bytes()), enc_path(abs))
}

/// Decodes `%XX` escapes (and nothing else) into bytes.
pub fn dec(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Undoes HTML's character references in an attribute value (the named
/// ones a page uses, and numeric ones).
pub fn unescape_html(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let ent = &rest[1..end];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                u32::from_str_radix(&ent[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every `href="..."` of a page, HTML-unescaped.
pub fn hrefs(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for quote in ['"', '\''] {
        let pat = format!("href={quote}");
        let mut rest = html;
        while let Some(at) = rest.find(&pat) {
            rest = &rest[at + pat.len()..];
            if let Some(end) = rest.find(quote) {
                out.push(unescape_html(&rest[..end]));
                rest = &rest[end..];
            }
        }
    }
    out
}

/// The value of the first `<input ... name="csrf" ... value="...">`.
pub fn csrf_of(html: &str) -> Option<String> {
    let mut rest = html;
    while let Some(at) = rest.find("<input") {
        rest = &rest[at..];
        let end = rest.find('>')?;
        let tag = &rest[..end];
        if tag.contains("name=\"csrf\"") {
            let v = &tag[tag.find("value=\"")? + "value=\"".len()..];
            return Some(unescape_html(&v[..v.find('"')?]));
        }
        rest = &rest[end..];
    }
    None
}

/// The `rsb_session=VALUE` pair of a response's `Set-Cookie`.
pub fn session_cookie(r: &Resp) -> Option<String> {
    r.all("set-cookie")
        .into_iter()
        .find(|v| v.starts_with("rsb_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

/// A raw HTTP/1.1 connection: what the test writes goes out as it is; each
/// [`WebConn::response`] reads exactly one response (its head, then
/// `Content-Length` bytes unless it has no body).
pub struct WebConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl WebConn {
    pub fn connect(port: u16) -> WebConn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the web port");
        stream.set_read_timeout(Some(RAW_WAIT)).unwrap();
        stream.set_write_timeout(Some(RAW_WAIT)).unwrap();
        WebConn {
            stream,
            buf: Vec::new(),
        }
    }
    pub fn send(&mut self, bytes: &[u8]) -> &mut Self {
        self.stream.write_all(bytes).expect("write a request");
        self
    }
    /// `GET TARGET HTTP/1.1` with Host and `extra` header lines.
    pub fn get(&mut self, target: &[u8], extra: &str) -> &mut Self {
        let mut r = b"GET ".to_vec();
        r.extend_from_slice(target);
        r.extend_from_slice(format!(" HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n").as_bytes());
        self.send(&r)
    }
    /// Reads more into the buffer; false at EOF.
    fn fill(&mut self, deadline: Instant) -> bool {
        assert!(
            Instant::now() < deadline,
            "no complete response within {RAW_WAIT:?}; so far {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) => panic!(
                "reading a response: {e}; so far {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }
    /// The next response; `head_only` for the answer to a HEAD.
    pub fn response(&mut self, head_only: bool) -> Resp {
        let deadline = Instant::now() + RAW_WAIT;
        let head_len = loop {
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            if !self.fill(deadline) {
                panic!(
                    "the server closed before a whole head; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let head: Vec<u8> = self.buf.drain(..head_len).collect();
        let (status, headers) = parse_head(&head);
        let r = Resp {
            status,
            head: head.clone(),
            headers,
            body: Vec::new(),
        };
        let len: usize = if head_only || status == 304 || status == 204 || status / 100 == 1 {
            0
        } else {
            r.header("content-length")
                .map(|v| v.parse().expect("a numeric Content-Length"))
                .unwrap_or_else(|| panic!("no Content-Length in\n{}", r.show()))
        };
        while self.buf.len() < len {
            if !self.fill(deadline) {
                panic!(
                    "the server closed after {} of {len} body bytes",
                    self.buf.len()
                );
            }
        }
        let body = self.buf.drain(..len).collect();
        Resp { body, ..r }
    }
    /// True when the server closes the connection (EOF) within the wait,
    /// with nothing more sent.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0)) && self.buf.is_empty()
    }
}

/// One request on a fresh raw connection, its response.
pub fn raw_get(port: u16, target: &[u8], extra: &str) -> Resp {
    let mut c = WebConn::connect(port);
    c.get(target, &format!("{extra}Connection: close\r\n"));
    c.response(false)
}

/// The helpers themselves, against canned bytes and a canned listener, so
/// that a failure of the web tests is the server's and not theirs.
mod selftest {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    #[test]
    fn the_helpers_parse_what_they_should() {
        assert_eq!(dec("/a%20b/%FF%2f%zz"), b"/a b/\xff/%zz");
        assert_eq!(enc(b"a b/\xff~"), "a%20b%2F%FF~");
        assert_eq!(enc_path(&bpath(b"/x y/\xfe")), "/x%20y/%FE");
        let html = r#"<a href="/files/t/a%22b?at=%401&amp;x=1">x</a><input type="hidden" name="csrf" value="tok&amp;1">"#;
        assert_eq!(hrefs(html), vec!["/files/t/a%22b?at=%401&x=1".to_string()]);
        assert_eq!(csrf_of(html).as_deref(), Some("tok&1"));
        assert_eq!(unescape_html("&lt;&#x41;&#66;&quot;&bogus"), "<AB\"&bogus");
        let heads = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 303 See Other\r\nLocation: /\r\n\r\n";
        let (st, h) = parse_head(&last_head(heads));
        assert_eq!((st, h), (303, vec![("Location".into(), "/".into())]));
    }

    #[test]
    fn curl_and_a_raw_connection_read_canned_answers() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = thread::spawn(move || {
            for _ in 0..2 {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = Vec::new();
                let mut b = [0u8; 4096];
                // Two requests (the raw one pipelines two), or one (curl).
                while buf.windows(4).filter(|w| w == b"\r\n\r\n").count() < 1 {
                    let n = s.read(&mut b).unwrap();
                    buf.extend_from_slice(&b[..n]);
                }
                let a = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-5/10\r\nContent-Length: 4\r\n\r\n2345";
                s.write_all(a).unwrap();
                s.write_all(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n")
                    .unwrap();
            }
        });
        let r = curl(&[&url(port, "/x")]);
        r.status_is(206);
        assert_eq!(r.body, b"2345");
        assert_eq!(r.must("content-range"), "bytes 2-5/10");
        let mut c = WebConn::connect(port);
        c.get(b"/a", "").get(b"/b", "");
        assert_eq!(c.response(false).body, b"2345");
        let r = c.response(false);
        assert_eq!((r.status, r.must("etag")), (304, "\"x\""));
        t.join().unwrap();
    }
}
