//! What a download answers: the preconditions of RFC 9110 section 13 in the
//! order of section 13.2.2, then byte ranges (section 14): 200, 206 (one
//! range or `multipart/byteranges`), 304, 412 or 416; and the strings those
//! answers carry (`ETag`, `Content-Range`, the multipart heads and their
//! exact length, known before the first byte is sent).
//!
//! Pure: the connection hands in the request and the file's validators
//! (its size, mtime and entity tag, and the server's clock) and sends what
//! the [`Answer`] says, file bytes with sendfile. Choices where the RFC
//! leaves one, each tested:
//! * a Range that is not valid syntax, or of a unit other than `bytes`, is
//!   ignored (200), as section 14.2 asks;
//! * more than [`MAX_RANGES`] ranges, or ranges that overlap, are ignored
//!   (200): section 14.2 lets a server ignore "abusive" sets, and overlap
//!   is the abuse that makes one request send a file many times. Touching
//!   ranges (`0-4,5-9`) are not abuse and are served as asked;
//! * ranges that cannot be satisfied are dropped from a set that has
//!   others; a set of none but them is 416;
//! * a range covering the whole file is still 206 (the client asked for a
//!   range; a 200 would also be right);
//! * an empty file: `-n` (n > 0) is satisfiable by section 14.1.1 but a 206
//!   cannot show an empty range, so it gets the whole (empty) file, 200;
//!   any `a-` or `a-b` is 416 (`bytes */0`);
//! * an `If-Range` date matches only a strong Last-Modified (section
//!   8.8.2.2: at least one second before now) exactly; an entity tag only
//!   by strong comparison; a weak tag or an invalid value never: 200.

use super::date::parse_http_date_at;
use super::request::{Method, Request};

/// Most ranges one request may ask for and get a 206.
pub const MAX_RANGES: usize = 8;

/// What identifies the file being answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// Its strong entity tag, with its quotes (see [`etag`]).
    pub etag: String,
    /// Its modification time, seconds since the epoch (Last-Modified).
    pub mtime: i64,
    /// Its size in bytes.
    pub size: u64,
    /// The server's clock, seconds since the epoch: an `If-Modified-Since`
    /// later than now is ignored, a Last-Modified within a second of now
    /// is weak, and an RFC 850 date's century depends on it.
    pub now: i64,
}

/// The strong entity tag of a stored file, quotes included: a function of
/// everything that identifies its content (size, mtime to the nanosecond,
/// recorded crc32c, inode). A file replaced in the store gets a new inode,
/// hence a new tag, even with the same bytes: a needless refetch at worst,
/// never a wrong resume.
pub fn etag(size: u64, mtime_secs: i64, mtime_nanos: u32, crc: u32, ino: u64) -> String {
    format!("\"{size:x}-{mtime_secs:x}.{mtime_nanos:x}-{crc:08x}-{ino:x}\"")
}

/// Bytes `start` to `end` of a file, both included (`start <= end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte.
    pub start: u64,
    /// The last byte (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// How many bytes.
    #[allow(clippy::len_without_is_empty)] // a range is never empty
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start).saturating_add(1)
    }
}

/// What a GET or HEAD of a file answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200: the whole file.
    Full,
    /// 206 with `Content-Range`: one range.
    Partial(ByteRange),
    /// 206 `multipart/byteranges`: these ranges, in the order asked.
    Multi(Vec<ByteRange>),
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
    /// 416 Range Not Satisfiable, with [`unsatisfied_range`].
    Unsatisfiable,
}

/// Decides the answer, in the order of RFC 9110 section 13.2.2:
/// 1. `If-Match` (strong comparison; `*` matches: the file exists), false:
///    412; without it, `If-Unmodified-Since` (a valid date) older than the
///    file: 412;
/// 2. `If-None-Match` (weak comparison; `*`), true: 304 for GET and HEAD,
///    412 otherwise; without it, for GET and HEAD, `If-Modified-Since` (a
///    valid date not in the future) not older than the file: 304;
/// 3. for GET only, `Range`, unless an `If-Range` is false (see the
///    module docs for each choice).
pub fn answer(method: &Method, req: &Request, v: &Validators) -> Answer {
    if let Some(im) = &req.if_match {
        let ok = match tags(im) {
            Some(Tags::Any) => true,
            Some(Tags::List(list)) => list.iter().any(|t| strong_eq(t, &v.etag)),
            None => false,
        };
        if !ok {
            return Answer::PreconditionFailed;
        }
    } else if let Some(ius) = &req.if_unmodified_since {
        if parse_http_date_at(ius, v.now).is_some_and(|d| v.mtime > d) {
            return Answer::PreconditionFailed;
        }
    }
    if let Some(inm) = &req.if_none_match {
        let matched = match tags(inm) {
            Some(Tags::Any) => true,
            Some(Tags::List(list)) => list.iter().any(|t| weak_eq(t, &v.etag)),
            // Not a valid list: nothing matched, so the condition holds.
            None => false,
        };
        if matched {
            return if method.is_get_or_head() {
                Answer::NotModified
            } else {
                Answer::PreconditionFailed
            };
        }
    } else if method.is_get_or_head() {
        if let Some(ims) = &req.if_modified_since {
            let since = parse_http_date_at(ims, v.now).filter(|&d| d <= v.now);
            if since.is_some_and(|d| v.mtime <= d) {
                return Answer::NotModified;
            }
        }
    }
    if *method != Method::Get {
        return Answer::Full;
    }
    let Some(range) = &req.range else {
        return Answer::Full;
    };
    if let Some(ir) = &req.if_range {
        if !if_range_holds(ir, v) {
            return Answer::Full;
        }
    }
    ranges(range, v.size)
}

/// An entity tag as sent: weak or not, and its opaque part with quotes.
#[derive(Debug, PartialEq, Eq)]
struct Tag<'a> {
    weak: bool,
    opaque: &'a str,
}

enum Tags<'a> {
    Any,
    List(Vec<Tag<'a>>),
}

/// Parses `*` or a list of entity tags (`"a", W/"b"`, empty elements
/// allowed); `None` if not valid. A comma may sit inside the quotes.
fn tags(s: &str) -> Option<Tags<'_>> {
    let s = s.trim_matches([' ', '\t']);
    if s == "*" {
        return Some(Tags::Any);
    }
    let mut list = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (tag, after) = one_tag(rest)?;
        list.push(tag);
        rest = after.trim_start_matches([' ', '\t']);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return None;
        }
    }
    if list.is_empty() {
        None
    } else {
        Some(Tags::List(list))
    }
}

/// One entity tag at the start of `s`, and what follows it.
fn one_tag(s: &str) -> Option<(Tag<'_>, &str)> {
    let (weak, body) = match s.strip_prefix("W/") {
        Some(b) => (true, b),
        None => (false, s),
    };
    let inner = body.strip_prefix('"')?;
    let close = inner.find('"')?;
    // etagc: visible ASCII but `"`, or obs-text.
    let ok = inner
        .get(..close)?
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80);
    if !ok {
        return None;
    }
    let opaque = body.get(..close + 2)?;
    Some((Tag { weak, opaque }, body.get(close + 2..)?))
}

/// The server's own tag, parsed (it is strong by construction; a weak one
/// would never pass a strong comparison).
fn own(etag: &str) -> Tag<'_> {
    match etag.strip_prefix("W/") {
        Some(opaque) => Tag { weak: true, opaque },
        None => Tag {
            weak: false,
            opaque: etag,
        },
    }
}

fn strong_eq(t: &Tag<'_>, etag: &str) -> bool {
    let o = own(etag);
    !t.weak && !o.weak && t.opaque == o.opaque
}

fn weak_eq(t: &Tag<'_>, etag: &str) -> bool {
    t.opaque == own(etag).opaque
}

fn if_range_holds(value: &str, v: &Validators) -> bool {
    let value = value.trim_matches([' ', '\t']);
    if value.starts_with("W/") {
        return false;
    }
    if value.starts_with('"') {
        return match one_tag(value) {
            Some((tag, "")) => strong_eq(&tag, &v.etag),
            _ => false,
        };
    }
    parse_http_date_at(value, v.now).is_some_and(|d| d == v.mtime && v.mtime < v.now)
}

/// One range-spec as sent.
enum Spec {
    /// `first-last` or `first-` (last: `None`).
    From(u64, Option<u64>),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// A decimal number; one too large for a u64 is u64::MAX, which means the
/// same thing for every position in a file (past its end) and every
/// length (all of it). `None` for anything but digits.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

fn spec(s: &str) -> Option<Spec> {
    let (first, last) = s.split_once('-')?;
    if first.is_empty() {
        return Some(Spec::Suffix(number(last)?));
    }
    let first = number(first)?;
    if last.is_empty() {
        return Some(Spec::From(first, None));
    }
    let last = number(last)?;
    (first <= last).then_some(Spec::From(first, Some(last)))
}

/// Parses a `Range` value against a file of `size` bytes.
fn ranges(value: &str, size: u64) -> Answer {
    let Some((unit, set)) = value.split_once('=') else {
        return Answer::Full;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return Answer::Full;
    }
    let mut specs = Vec::new();
    for item in set.split(',') {
        let item = item.trim_matches([' ', '\t']);
        if item.is_empty() {
            continue;
        }
        if specs.len() == MAX_RANGES {
            return Answer::Full;
        }
        let Some(s) = spec(item) else {
            return Answer::Full;
        };
        specs.push(s);
    }
    if specs.is_empty() {
        return Answer::Full;
    }
    let mut out = Vec::with_capacity(specs.len());
    let mut empty_suffix = false;
    for s in specs {
        match s {
            Spec::From(first, last) if first < size => out.push(ByteRange {
                start: first,
                end: last.map_or(size - 1, |l| l.min(size - 1)),
            }),
            Spec::Suffix(n) if n > 0 && size > 0 => out.push(ByteRange {
                start: size - n.min(size),
                end: size - 1,
            }),
            Spec::Suffix(n) if n > 0 => empty_suffix = true,
            _ => {}
        }
    }
    if out.is_empty() {
        return if empty_suffix {
            Answer::Full
        } else {
            Answer::Unsatisfiable
        };
    }
    let mut sorted = out.clone();
    sorted.sort_by_key(|r| r.start);
    if sorted
        .windows(2)
        .any(|w| matches!(w, [a, b] if b.start <= a.end))
    {
        return Answer::Full;
    }
    match <[ByteRange; 1]>::try_from(out) {
        Ok([one]) => Answer::Partial(one),
        Err(several) => Answer::Multi(several),
    }
}

/// `Content-Range` of a 206: `bytes 2-5/10`.
pub fn content_range(r: ByteRange, size: u64) -> String {
    format!("bytes {}-{}/{size}", r.start, r.end)
}

/// `Content-Range` of a 416: `bytes */10`.
pub fn unsatisfied_range(size: u64) -> String {
    format!("bytes */{size}")
}

/// A multipart boundary from `seed` (any number the connection has: a
/// counter, the clock): mixed (splitmix64) so that boundaries are not
/// guessable from one another, 30 characters of `[a-z0-9-]`. A file
/// holding the boundary could confuse the client's split; with 64 mixed
/// bits that takes a file made for this very response.
pub fn boundary(seed: u64) -> String {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("rsb-byteranges-{z:016x}")
}

/// The `Content-Type` of a multipart answer.
pub fn multipart_content_type(boundary: &str) -> String {
    format!("multipart/byteranges; boundary={boundary}")
}

/// What precedes the bytes of one part: the delimiter (with the CRLF that
/// belongs to it, so the first part's is an empty preamble), the part's
/// `Content-Type` and `Content-Range`, the blank line.
pub fn multipart_part_head(boundary: &str, content_type: &str, r: ByteRange, size: u64) -> String {
    format!(
        "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
        content_range(r, size)
    )
}

/// What follows the last part: the close delimiter.
pub fn multipart_tail(boundary: &str) -> String {
    format!("\r\n--{boundary}--\r\n")
}

/// The exact `Content-Length` of a multipart answer: every part's head and
/// bytes, and the tail.
pub fn multipart_len(boundary: &str, content_type: &str, ranges: &[ByteRange], size: u64) -> u64 {
    let parts = ranges.iter().fold(0u64, |acc, &r| {
        let head = multipart_part_head(boundary, content_type, r, size).len() as u64;
        acc.saturating_add(head).saturating_add(r.len())
    });
    parts.saturating_add(multipart_tail(boundary).len() as u64)
}

#[cfg(test)]
mod tests;
