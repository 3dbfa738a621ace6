//! The request target: a path of percent-decoded segments and a query.
//!
//! The path is split on its literal `/` *before* any `%XX` is decoded, so
//! `%2f` can never become a separator; then every segment is decoded into
//! raw bytes (a stored name is any bytes but `/` and NUL, so `%ff` is
//! fine) and refused if it could name anything but one entry of one
//! directory: a decoded `/` or NUL, `.` or `..` (spelt plainly or as
//! `%2e%2e`), an empty segment (`//`). [`wire_path`] then applies exactly
//! the rule of the backup protocol ([`WirePath`]), reserved names
//! included, so the web and the wire cannot disagree on what a path is.
//!
//! This module only reads the target's bytes: which page or file the
//! segments name is [`super::route`]'s; percent-*encoding* (for links) is
//! [`super::html`]'s.

use std::fmt;

use super::request::{parse_form, percent_decode, FormError};
use crate::proto::{PathError, WirePath};

/// A parsed request target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// The path's segments, percent-decoded, none empty, `.` or `..`, none
    /// holding `/` or NUL. `/` has none.
    pub segments: Vec<Vec<u8>>,
    /// The path ends with `/` (a directory's URL); true for `/`.
    pub trailing_slash: bool,
    /// The query's `name=value` pairs, in order, decoded like a form.
    pub query: Vec<(String, String)>,
}

/// Why a target was refused (each is answered 400, but for
/// [`TargetError::Reserved`], which names nothing that exists: 404).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    /// `*` (asterisk-form, only for `OPTIONS *`, which rsb does not serve).
    Asterisk,
    /// Neither `/...` nor `http://host/...` (authority-form, relative).
    NotOrigin,
    /// A `#` fragment: clients never send one.
    Fragment,
    /// A space, control byte or DEL, unescaped.
    BadByte,
    /// A `%` without two hexadecimal digits after it.
    BadEscape,
    /// A segment that decodes to something holding `/` (`%2f`).
    EncodedSlash,
    /// A segment that decodes to something holding NUL (`%00`).
    Nul,
    /// A `.` or `..` segment (plain or escaped).
    DotSegment,
    /// An empty segment (`//`, `/a//b`).
    EmptySegment,
    /// The query is not a valid form encoding.
    Query(FormError),
    /// The path breaks the wire's rule (too long, a name too long).
    Path(PathError),
    /// A name reserved for the store's own files (`.rsb-tmp.`).
    Reserved,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Asterisk => f.write_str("the '*' target is not served"),
            TargetError::NotOrigin => f.write_str("the target must begin with '/'"),
            TargetError::Fragment => f.write_str("the target has a '#' fragment"),
            TargetError::BadByte => f.write_str("the target has a space or control byte"),
            TargetError::BadEscape => {
                f.write_str("the target has a '%' not followed by two hexadecimal digits")
            }
            TargetError::EncodedSlash => f.write_str("a path segment holds an encoded '/'"),
            TargetError::Nul => f.write_str("a path segment holds a NUL byte"),
            TargetError::DotSegment => f.write_str("a path segment is '.' or '..'"),
            TargetError::EmptySegment => f.write_str("the path has an empty segment"),
            TargetError::Query(e) => write!(f, "the query: {e}"),
            TargetError::Path(e) => write!(f, "the path: {e}"),
            TargetError::Reserved => f.write_str(crate::proto::path::RESERVED_MESSAGE),
        }
    }
}

/// Parses a raw request target (see the module docs). Origin-form
/// (`/path?query`) is the rule; absolute-form (`http://host/path`, which
/// a proxy-aware client may send and RFC 9112 section 3.2.2 says a server
/// must accept) is taken for its path, its authority ignored as the
/// `Host` header is: rsb serves one site.
pub fn parse_target(raw: &[u8]) -> Result<Target, TargetError> {
    if raw == b"*" {
        return Err(TargetError::Asterisk);
    }
    if raw.contains(&b'#') {
        return Err(TargetError::Fragment);
    }
    if raw.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(TargetError::BadByte);
    }
    let (raw, absolute) = origin_part(raw)?;
    let (path, query) = match raw.iter().position(|&b| b == b'?') {
        Some(q) => {
            let (path, rest) = raw.split_at(q);
            (path, rest.get(1..).unwrap_or_default())
        }
        None => (raw, &b""[..]),
    };
    let path = match path.strip_prefix(b"/") {
        Some(p) => p,
        None if absolute && path.is_empty() => path,
        None => return Err(TargetError::NotOrigin),
    };
    let mut segments = Vec::new();
    let trailing_slash = path.is_empty() || path.ends_with(b"/");
    if !path.is_empty() {
        // "/a/" is the segment "a" and a trailing slash; "//" is an empty
        // segment, like "/a//b".
        let path = path.strip_suffix(b"/").unwrap_or(path);
        for seg in path.split(|&b| b == b'/') {
            segments.push(segment(seg)?);
        }
    }
    let query = parse_form(query).map_err(TargetError::Query)?;
    Ok(Target {
        segments,
        trailing_slash,
        query,
    })
}

/// The origin-form part of an absolute-form target, or the target itself,
/// and whether it was absolute-form (where an empty path means `/`).
fn origin_part(raw: &[u8]) -> Result<(&[u8], bool), TargetError> {
    if raw.first() == Some(&b'/') {
        return Ok((raw, false));
    }
    let rest = strip_prefix_ignore_case(raw, b"http://")
        .or_else(|| strip_prefix_ignore_case(raw, b"https://"))
        .ok_or(TargetError::NotOrigin)?;
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() || authority.contains(&b'@') {
        // userinfo in a request target is deprecated (RFC 9110 section
        // 4.2.4) and only ever a trick.
        return Err(TargetError::NotOrigin);
    }
    Ok((path, true))
}

fn strip_prefix_ignore_case<'a>(raw: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = raw.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        raw.get(prefix.len()..)
    } else {
        None
    }
}

/// One raw segment, decoded and checked.
fn segment(raw: &[u8]) -> Result<Vec<u8>, TargetError> {
    if raw.is_empty() {
        return Err(TargetError::EmptySegment);
    }
    let seg = percent_decode(raw, false).ok_or(TargetError::BadEscape)?;
    if seg.contains(&b'/') {
        return Err(TargetError::EncodedSlash);
    }
    if seg.contains(&0) {
        return Err(TargetError::Nul);
    }
    if seg == b"." || seg == b".." {
        return Err(TargetError::DotSegment);
    }
    Ok(seg)
}

/// The segments as a wire path, by the wire's own rule ([`WirePath::new`]:
/// length bounds, no `.`, `..`, NUL or empty name) and with no reserved
/// name in it ([`WirePath::is_reserved`]), as a request on the wire would
/// be refused. No segments: the root.
pub fn wire_path(segments: &[Vec<u8>]) -> Result<WirePath, TargetError> {
    if segments.iter().any(|s| s.contains(&b'/')) {
        return Err(TargetError::EncodedSlash);
    }
    // One empty segment would join to the empty path, the root.
    if segments.iter().any(|s| s.is_empty()) {
        return Err(TargetError::EmptySegment);
    }
    let path = WirePath::new(segments.join(&b'/')).map_err(TargetError::Path)?;
    if path.is_reserved() {
        return Err(TargetError::Reserved);
    }
    Ok(path)
}

#[cfg(test)]
mod tests;
