//! One HTTP/1.x request head, parsed and bounded: the request line and the
//! headers rsb acts on, with the framing rules that keep a connection from
//! being smuggled (RFC 9112 sections 2 to 6); the bodies of the forms rsb
//! receives (`application/x-www-form-urlencoded`); one cookie out of a
//! `Cookie` header; and the percent-decoding that [`super::target`] shares.
//!
//! The syntax is `httparse`'s (a hand-written parser is where request
//! smuggling lives); this module adds the semantics: which headers may
//! appear once only, what `Content-Length` and `Transfer-Encoding` mean for
//! the framing, and keep-alive. It reads only the bytes it is given: it
//! never touches a socket and never decides what a request gets (that is
//! [`super::route`] and [`super::range`]).
//!
//! Every [`Parsed::Bad`] must end the connection after its answer: once a
//! head is refused, where the next request would begin is unknown.

use std::fmt;

/// Longest request head (request line, headers and the blank line): a
/// buffer this long that still holds no complete head is refused (431).
pub const MAX_HEAD: usize = 16 * 1024;

/// Most header lines in one head (431 beyond).
pub const MAX_HEADERS: usize = 64;

/// Most fields in one form body or one query string.
pub const MAX_FIELDS: usize = 64;

/// A request method. Methods are case-sensitive (RFC 9110 section 9.1):
/// `get` is not `GET`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Method {
    /// `GET`.
    #[default]
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// Any other token (answered 405 or 501 by the router).
    Other(String),
}

impl Method {
    fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            other => Method::Other(other.to_string()),
        }
    }

    /// Whether the method only reads (GET or HEAD): the methods that get a
    /// 304 rather than a 412 from a failed `If-None-Match`.
    pub fn is_get_or_head(&self) -> bool {
        matches!(self, Method::Get | Method::Head)
    }
}

/// A parsed request head: the request line and the headers rsb acts on.
/// Header values are kept as sent (lossily as UTF-8: values are compared
/// and parsed, never echoed into an answer).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target, raw, as sent (see [`super::target`]).
    pub target: Vec<u8>,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// `Host` (required by HTTP/1.1; may be empty).
    pub host: Option<String>,
    /// `Range`, raw (parsed by [`super::range`]).
    pub range: Option<String>,
    /// `If-Range`, raw.
    pub if_range: Option<String>,
    /// `If-None-Match`, raw; several headers are joined with `, `.
    pub if_none_match: Option<String>,
    /// `If-Modified-Since`, raw.
    pub if_modified_since: Option<String>,
    /// `If-Match`, raw; several headers are joined with `, `.
    pub if_match: Option<String>,
    /// `If-Unmodified-Since`, raw.
    pub if_unmodified_since: Option<String>,
    /// `Authorization`, raw.
    pub authorization: Option<String>,
    /// `Origin`, raw.
    pub origin: Option<String>,
    /// `Referer`, raw.
    pub referer: Option<String>,
    /// `Cookie`; several headers are joined with `; ` (see [`cookie`]).
    pub cookie: Option<String>,
    /// `Content-Type`, raw.
    pub content_type: Option<String>,
    /// `Content-Length`: the body's length (`None`: no body).
    pub content_length: Option<u64>,
    /// `Expect: 100-continue` was sent: the client waits for a `100
    /// Continue` (or the final answer) before it sends the body.
    pub expect_continue: bool,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
}

/// A head that is refused: the status to answer and why, in words fit for
/// a log line and a plain-text body. The connection closes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRequest {
    /// 400, 411, 417, 431, 501 or 505.
    pub status: u16,
    /// Why (a fixed text: nothing of the request is echoed).
    pub reason: &'static str,
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

/// What a buffer holds.
// The Complete variant is large (a Request), but a Parsed lives for one
// match right after the parse: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not yet a whole head: read more, then parse the whole buffer again.
    Partial,
    /// A whole head of `head_len` bytes; the body (if any) and any
    /// pipelined request follow it in the buffer.
    Complete {
        /// The request.
        request: Request,
        /// Bytes of the head, the blank line included.
        head_len: usize,
    },
    /// Refused: answer `status` and close.
    Bad(BadRequest),
}

const fn bad(status: u16, reason: &'static str) -> Parsed {
    Parsed::Bad(BadRequest { status, reason })
}

/// Parses the request head at the start of `buf` (see [`Parsed`]). At most
/// [`MAX_HEAD`] bytes are looked at, so a peer that trickles bytes costs
/// at most that much work per read.
pub fn parse_head(buf: &[u8]) -> Parsed {
    let window = buf.get(..MAX_HEAD).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if window.len() >= MAX_HEAD => {
            return bad(431, "request head too large")
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return bad(431, "too many header fields"),
        Err(httparse::Error::Version) => return version_refusal(window),
        Err(_) => return bad(400, "malformed request head"),
    };
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return bad(400, "malformed request line");
    };
    let mut request = Request {
        method: Method::from_token(method),
        target: path.as_bytes().to_vec(),
        minor,
        keep_alive: minor >= 1,
        ..Request::default()
    };
    if let Err(refusal) = apply_headers(&mut request, req.headers) {
        return Parsed::Bad(refusal);
    }
    if minor >= 1 && request.host.is_none() {
        // RFC 9112 section 3.2: a server MUST answer 400.
        return bad(400, "HTTP/1.1 request without Host");
    }
    Parsed::Complete { request, head_len }
}

/// httparse knows HTTP/1.0 and 1.1 only: a later version gets 505, any
/// other text where the version belongs 400.
fn version_refusal(buf: &[u8]) -> Parsed {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = buf.get(start..).unwrap_or_default();
    let line = line
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let version = line.split(|&b| b == b' ').nth(2).unwrap_or_default();
    let later = match version.strip_prefix(b"HTTP/") {
        Some([major, rest @ ..]) if (b'2'..=b'9').contains(major) => {
            rest.first().is_none_or(|&b| b == b'.')
        }
        Some([b'1', b'.', minor, ..]) => (b'2'..=b'9').contains(minor),
        _ => false,
    };
    if later {
        bad(505, "HTTP version not supported (HTTP/1.0 and 1.1 are)")
    } else {
        bad(400, "malformed HTTP version")
    }
}

/// Which of the headers rsb reads a header name is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    Host,
    Range,
    IfRange,
    IfNoneMatch,
    IfModifiedSince,
    IfMatch,
    IfUnmodifiedSince,
    Authorization,
    Origin,
    Referer,
    Cookie,
    ContentType,
    ContentLength,
    TransferEncoding,
    Connection,
    Expect,
}

const KNOWN: &[(&str, Known)] = &[
    ("host", Known::Host),
    ("range", Known::Range),
    ("if-range", Known::IfRange),
    ("if-none-match", Known::IfNoneMatch),
    ("if-modified-since", Known::IfModifiedSince),
    ("if-match", Known::IfMatch),
    ("if-unmodified-since", Known::IfUnmodifiedSince),
    ("authorization", Known::Authorization),
    ("origin", Known::Origin),
    ("referer", Known::Referer),
    ("cookie", Known::Cookie),
    ("content-type", Known::ContentType),
    ("content-length", Known::ContentLength),
    ("transfer-encoding", Known::TransferEncoding),
    ("connection", Known::Connection),
    ("expect", Known::Expect),
];

fn known(name: &str) -> Option<Known> {
    KNOWN
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, k)| k)
}

/// Sets a header that may appear once: a second one is refused, since two
/// parsers along the way could each pick a different one.
fn set_once(slot: &mut Option<String>, value: String) -> Result<(), BadRequest> {
    if slot.is_some() {
        return Err(BadRequest {
            status: 400,
            reason: "a header that must be single appears twice",
        });
    }
    *slot = Some(value);
    Ok(())
}

/// Joins a list header's lines (RFC 9110 section 5.3: the same as one line
/// with the values separated by commas).
fn append(slot: &mut Option<String>, value: String, separator: &str) {
    match slot {
        Some(v) => {
            v.push_str(separator);
            v.push_str(&value);
        }
        None => *slot = Some(value),
    }
}

fn apply_headers(r: &mut Request, headers: &[httparse::Header<'_>]) -> Result<(), BadRequest> {
    let mut connection: Option<String> = None;
    let mut transfer_encoding: Option<String> = None;
    let mut expect: Option<String> = None;
    for h in headers {
        let Some(which) = known(h.name) else {
            continue;
        };
        // httparse has already refused CR, LF and other controls but TAB;
        // bytes above 0x7f become U+FFFD, harmless since nothing is echoed.
        let value = String::from_utf8_lossy(h.value)
            .trim_matches([' ', '\t'])
            .to_string();
        match which {
            Known::Host => set_once(&mut r.host, value)?,
            Known::Range => set_once(&mut r.range, value)?,
            Known::IfRange => set_once(&mut r.if_range, value)?,
            Known::IfNoneMatch => append(&mut r.if_none_match, value, ", "),
            Known::IfModifiedSince => set_once(&mut r.if_modified_since, value)?,
            Known::IfMatch => append(&mut r.if_match, value, ", "),
            Known::IfUnmodifiedSince => set_once(&mut r.if_unmodified_since, value)?,
            Known::Authorization => set_once(&mut r.authorization, value)?,
            Known::Origin => set_once(&mut r.origin, value)?,
            Known::Referer => set_once(&mut r.referer, value)?,
            Known::Cookie => append(&mut r.cookie, value, "; "),
            Known::ContentType => set_once(&mut r.content_type, value)?,
            Known::ContentLength => {
                let n = content_length(&value)?;
                if r.content_length.is_some_and(|m| m != n) {
                    return Err(BadRequest {
                        status: 400,
                        reason: "differing Content-Length headers",
                    });
                }
                r.content_length = Some(n);
            }
            Known::TransferEncoding => append(&mut transfer_encoding, value, ", "),
            Known::Connection => append(&mut connection, value, ", "),
            Known::Expect => append(&mut expect, value, ", "),
        }
    }
    if let Some(host) = &r.host {
        if !host.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BadRequest {
                status: 400,
                reason: "invalid Host",
            });
        }
    }
    if let Some(te) = transfer_encoding {
        return Err(transfer_encoding_refusal(&te));
    }
    if let Some(expect) = expect {
        if !expect.eq_ignore_ascii_case("100-continue") {
            return Err(BadRequest {
                status: 417,
                reason: "only Expect: 100-continue is understood",
            });
        }
        r.expect_continue = true;
    }
    if let Some(tokens) = connection {
        let has = |t: &str| {
            tokens
                .split(',')
                .any(|x| x.trim_matches([' ', '\t']).eq_ignore_ascii_case(t))
        };
        if has("close") {
            r.keep_alive = false;
        } else if has("keep-alive") {
            r.keep_alive = true;
        }
    }
    Ok(())
}

/// rsb accepts no request body with a transfer coding: its only bodies are
/// small forms, which every client sends with a length. A body that is
/// only `chunked` gets 411 Length Required (the client may send it again
/// with a `Content-Length`); any other coding is not understood, 501
/// (RFC 9112 section 6.1). Either way the connection closes, since the
/// body's end cannot be found: that is what keeps a `Transfer-Encoding`
/// beside a `Content-Length` from smuggling a request.
fn transfer_encoding_refusal(te: &str) -> BadRequest {
    let only_chunked = te
        .split(',')
        .map(|c| c.trim_matches([' ', '\t']))
        .filter(|c| !c.is_empty())
        .all(|c| c.eq_ignore_ascii_case("chunked"));
    if only_chunked && !te.trim().is_empty() {
        BadRequest {
            status: 411,
            reason: "chunked request bodies are not accepted: send a Content-Length",
        }
    } else {
        BadRequest {
            status: 501,
            reason: "request transfer codings are not accepted",
        }
    }
}

/// A `Content-Length` value: digits only, or a list of equal ones (RFC
/// 9110 section 8.6 allows a recipient to take `5, 5` as `5`).
fn content_length(value: &str) -> Result<u64, BadRequest> {
    const BAD: BadRequest = BadRequest {
        status: 400,
        reason: "invalid Content-Length",
    };
    let mut found: Option<u64> = None;
    for item in value.split(',') {
        let item = item.trim_matches([' ', '\t']);
        if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BAD);
        }
        let n: u64 = item.parse().map_err(|_| BAD)?;
        if found.is_some_and(|m| m != n) {
            return Err(BAD);
        }
        found = Some(n);
    }
    found.ok_or(BAD)
}

/// Why a form body or a query string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// More than [`MAX_FIELDS`] fields.
    TooManyFields,
    /// A `%` not followed by two hexadecimal digits.
    BadEscape,
    /// A name or value that does not decode to UTF-8.
    NotUtf8,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::TooManyFields => write!(f, "more than {MAX_FIELDS} form fields"),
            FormError::BadEscape => f.write_str("a '%' not followed by two hexadecimal digits"),
            FormError::NotUtf8 => f.write_str("a form field that is not UTF-8"),
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `raw` into bytes: every `%XX` (either case) is the byte
/// XX, any other byte stands for itself, and with `plus_is_space` a `+` is
/// a space (forms and queries; never in a path, where `+` is a name's own
/// character). `None` for a `%` without two hexadecimal digits after it.
pub fn percent_decode(raw: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(hex)?;
                let lo = raw.get(i + 2).copied().and_then(hex)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Parses an `application/x-www-form-urlencoded` body (or a query string):
/// `name=value` pairs separated by `&`, `+` for a space, `%XX` escapes,
/// in order. Empty pairs (`a=1&&b=2`) are skipped; a pair without `=` has
/// an empty value. Names and values must decode to UTF-8 (the forms hold
/// text; paths travel in the target, as bytes).
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    let mut fields = Vec::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        if fields.len() == MAX_FIELDS {
            return Err(FormError::TooManyFields);
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => {
                let (name, rest) = pair.split_at(eq);
                (name, rest.get(1..).unwrap_or_default())
            }
            None => (pair, &b""[..]),
        };
        let text = |raw: &[u8]| {
            let bytes = percent_decode(raw, true).ok_or(FormError::BadEscape)?;
            String::from_utf8(bytes).map_err(|_| FormError::NotUtf8)
        };
        fields.push((text(name)?, text(value)?));
    }
    Ok(fields)
}

/// The value of the cookie `name` in a `Cookie` header (`a=1; b=2`), the
/// first one if several have that name; surrounding double quotes are
/// taken off (RFC 6265 section 4.1.1 allows them). Names are
/// case-sensitive.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (n, v) = pair.split_once('=')?;
        if n.trim_matches([' ', '\t']) != name {
            return None;
        }
        let v = v.trim_matches([' ', '\t']);
        Some(
            v.strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v),
        )
    })
}

#[cfg(test)]
mod tests;
