//! Escaping and URL building for the pages: the one place where a name
//! (any bytes) becomes text a browser shows, and where a path becomes a
//! link. Every page goes through here; nothing here knows a page's layout.
//!
//! Must not: decide what a page shows, or trust that a name is UTF-8,
//! printable or free of markup.

use crate::proto::Time;

/// `s` with `& < > " '` replaced by entities, fit for text and for a
/// quoted attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A file name (any bytes but `/` and NUL) as HTML text: see [`visible`],
/// then [`escape`].
pub fn escape_bytes(name: &[u8]) -> String {
    escape(&visible(name))
}

/// A file name as plain text that cannot forge a line or reorder what
/// follows it: invalid UTF-8 as `\xNN` per byte, control characters as
/// `\n`, `\r`, `\t` or `\xNN`, a backslash as `\\` (so `a\nb` typed with a
/// backslash and `a` LF `b` look different), and the characters that move
/// text without showing (bidi overrides and isolates, line and paragraph
/// separators, C1 controls, the byte-order mark) as `\u{XXXX}`.
pub fn visible(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_visible(&mut out, c);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn push_visible(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if is_invisible(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        c => out.push(c),
    }
}

/// Characters that change how the text around them shows without showing
/// themselves: a file name holding one could pass for another name.
fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x80..=0x9f          // C1 controls (NEL among them)
        | 0x061c             // Arabic letter mark
        | 0x200b..=0x200f    // zero-width space, joiners, LRM, RLM
        | 0x2028 | 0x2029    // line and paragraph separators
        | 0x202a..=0x202e    // bidi embeddings and overrides
        | 0x2060..=0x2064    // word joiner, invisible operators
        | 0x2066..=0x2069    // bidi isolates
        | 0xfeff             // byte-order mark
        | 0xfff9..=0xfffb) // interlinear annotation
}

/// `bytes` percent-encoded: every byte outside RFC 3986's unreserved set
/// (`A-Z a-z 0-9 - . _ ~`) as `%XX` (upper-case hex), `/` included.
pub fn encode_segment(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `/`-separated path with each segment percent-encoded
/// ([`encode_segment`]) and the `/`s kept.
pub fn encode_path(path: &[u8]) -> String {
    let segments: Vec<String> = path.split(|b| *b == b'/').map(encode_segment).collect();
    segments.join("/")
}

/// A time as `?at=` takes it from a link: `@SECS.NANOS` with nine digits
/// of nanoseconds, exact (a relative TIME such as `7d` would drift).
pub fn at_value(t: Time) -> String {
    format!("@{}.{:09}", t.secs, t.nanos)
}

/// The query parameters a link carries on, in a fixed order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query {
    /// `at=@S.N` (browsing the past).
    pub at: Option<Time>,
    /// `sort=` and `order=` (only when not the default).
    pub sort: Option<super::model::Sort>,
    /// `format=tar`.
    pub tar: bool,
}

impl Query {
    /// A query of `at` alone.
    pub fn at(at: Option<Time>) -> Query {
        Query {
            at,
            sort: None,
            tar: false,
        }
    }

    /// `?a=b&c=d`, or empty when there is nothing to carry.
    pub fn render(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if self.tar {
            parts.push("format=tar".to_string());
        }
        if let Some(t) = self.at {
            // `@` is allowed in a query (RFC 3986 pchar); encoded anyway so
            // the value survives any decoder.
            parts.push(format!("at={}", encode_segment(at_value(t).as_bytes())));
        }
        if let Some(s) = self.sort {
            parts.push(format!("sort={}", sort_key(s.by)));
            parts.push(format!(
                "order={}",
                if s.descending { "desc" } else { "asc" }
            ));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// The `sort=` word of a key.
pub fn sort_key(by: super::model::SortBy) -> &'static str {
    use super::model::SortBy;
    match by {
        SortBy::Name => "name",
        SortBy::Size => "size",
        SortBy::Mtime => "mtime",
        SortBy::Kind => "kind",
    }
}

fn prefixed(root: &str, name: &str, path: &[u8]) -> String {
    let mut url = format!("/{root}/{}/", encode_segment(name.as_bytes()));
    url.push_str(&encode_path(path));
    url
}

/// `/browse/<name>/<path>/`: a directory's listing (the namespace's root
/// when `path` is empty), with `q`.
pub fn browse_dir_url(name: &str, path: &[u8], q: &Query) -> String {
    let mut url = prefixed("browse", name, path);
    if !path.is_empty() {
        url.push('/');
    }
    url.push_str(&q.render());
    url
}

/// `/browse/<name>/<path>`: a file's versions page, with `q`.
pub fn browse_file_url(name: &str, path: &[u8], q: &Query) -> String {
    let mut url = prefixed("browse", name, path);
    url.push_str(&q.render());
    url
}

/// `/files/<name>/<path>`: a file's download, with `q`.
pub fn file_url(name: &str, path: &[u8], q: &Query) -> String {
    let mut url = prefixed("files", name, path);
    url.push_str(&q.render());
    url
}

/// `/files/<name>/<path>/?format=tar`: a directory as a tar stream (the
/// namespace's root when `path` is empty), at `at` if given.
pub fn tar_url(name: &str, path: &[u8], at: Option<Time>) -> String {
    let mut url = prefixed("files", name, path);
    if !path.is_empty() {
        url.push('/');
    }
    url.push_str(
        &Query {
            at,
            sort: None,
            tar: true,
        }
        .render(),
    );
    url
}

/// `/plans/<name>`: where a client's plan form posts.
pub fn plan_url(name: &str) -> String {
    format!("/plans/{}", encode_segment(name.as_bytes()))
}

/// `path` joined with one more segment.
pub fn child(path: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = path.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// The directory holding `path` (empty for a top-level name).
pub fn parent(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => path.get(..i).unwrap_or_default(),
        None => &[],
    }
}

/// A link: `<a href="URL">TEXT</a>`, the URL escaped as an attribute and
/// `text` already HTML.
pub fn link(url: &str, text_html: &str) -> String {
    format!("<a href=\"{}\">{text_html}</a>", escape(url))
}

#[cfg(test)]
pub(crate) mod tests;
