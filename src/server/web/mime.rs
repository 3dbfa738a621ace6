//! What a download says about its bytes: `Content-Type` by the name's
//! extension, and `Content-Disposition` (RFC 6266, with RFC 8187's
//! `filename*` for names beyond ASCII).
//!
//! A backup holds files of any user; the server's origin holds the pages
//! and their login. So nothing from the store may ever run as active
//! content in that origin: HTML, XHTML, SVG, XML and JavaScript are served
//! as `text/plain`, and the connection sends every file with
//! `X-Content-Type-Options: nosniff` (so no browser guesses them back into
//! HTML) and, for downloads, `Content-Disposition: attachment`.
//!
//! Text types carry no `charset`: a stored file's bytes are whatever the
//! client's file held (Latin-1, UTF-16, anything); naming a charset would
//! be a guess the server cannot make, and a wrong one garbles more than
//! none. Pure: names in, strings out.

/// The type of anything the table does not know.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Extension (lower case) to type. Active types are mapped to
/// `text/plain` on purpose (see the module docs).
const TABLE: &[(&str, &str)] = &[
    // Active content in a browser: shown as text, never rendered.
    ("htm", "text/plain"),
    ("html", "text/plain"),
    ("js", "text/plain"),
    ("mjs", "text/plain"),
    ("shtml", "text/plain"),
    ("svg", "text/plain"),
    ("svgz", OCTET_STREAM),
    ("xht", "text/plain"),
    ("xhtml", "text/plain"),
    ("xml", "text/plain"),
    ("xsl", "text/plain"),
    // Text.
    ("c", "text/plain"),
    ("conf", "text/plain"),
    ("cpp", "text/plain"),
    ("css", "text/css"),
    ("csv", "text/csv"),
    ("go", "text/plain"),
    ("h", "text/plain"),
    ("ini", "text/plain"),
    ("json", "application/json"),
    ("log", "text/plain"),
    ("md", "text/markdown"),
    ("py", "text/plain"),
    ("rs", "text/plain"),
    ("sh", "text/plain"),
    ("toml", "text/plain"),
    ("tsv", "text/tab-separated-values"),
    ("txt", "text/plain"),
    ("yaml", "text/plain"),
    ("yml", "text/plain"),
    // Images.
    ("avif", "image/avif"),
    ("bmp", "image/bmp"),
    ("gif", "image/gif"),
    ("ico", "image/vnd.microsoft.icon"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("png", "image/png"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("webp", "image/webp"),
    // Documents.
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("epub", "application/epub+zip"),
    ("odp", "application/vnd.oasis.opendocument.presentation"),
    ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ("odt", "application/vnd.oasis.opendocument.text"),
    ("pdf", "application/pdf"),
    ("rtf", "application/rtf"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    // Archives and packages.
    ("7z", "application/x-7z-compressed"),
    ("bz2", "application/x-bzip2"),
    ("deb", "application/vnd.debian.binary-package"),
    ("gz", "application/gzip"),
    ("img", OCTET_STREAM),
    ("iso", "application/x-iso9660-image"),
    ("jar", "application/java-archive"),
    ("rar", "application/vnd.rar"),
    ("rpm", "application/x-rpm"),
    ("tar", "application/x-tar"),
    ("tgz", "application/gzip"),
    ("xz", "application/x-xz"),
    ("zip", "application/zip"),
    ("zst", "application/zstd"),
    // Audio.
    ("aac", "audio/aac"),
    ("flac", "audio/flac"),
    ("m4a", "audio/mp4"),
    ("mid", "audio/midi"),
    ("mp3", "audio/mpeg"),
    ("oga", "audio/ogg"),
    ("ogg", "audio/ogg"),
    ("opus", "audio/ogg"),
    ("wav", "audio/wav"),
    // Video.
    ("avi", "video/x-msvideo"),
    ("m4v", "video/mp4"),
    ("mkv", "video/x-matroska"),
    ("mov", "video/quicktime"),
    ("mp4", "video/mp4"),
    ("mpeg", "video/mpeg"),
    ("mpg", "video/mpeg"),
    ("ogv", "video/ogg"),
    ("webm", "video/webm"),
    // Fonts and code for the web (inert when not loaded by a page).
    ("otf", "font/otf"),
    ("ttf", "font/ttf"),
    ("wasm", "application/wasm"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
];

/// The longest extension in [`TABLE`]: longer ones cannot match.
const MAX_EXT: usize = 8;

/// The `Content-Type` of a stored file named `name` (its last path
/// component), by extension, case-insensitively; [`OCTET_STREAM`] when
/// unknown, when the name has no extension, or when it is a dot file
/// with nothing before the dot (`.bashrc`).
pub fn content_type(name: &[u8]) -> &'static str {
    let Some(dot) = name.iter().rposition(|&b| b == b'.') else {
        return OCTET_STREAM;
    };
    if dot == 0 {
        return OCTET_STREAM;
    }
    let ext = name.get(dot + 1..).unwrap_or_default();
    if ext.is_empty() || ext.len() > MAX_EXT {
        return OCTET_STREAM;
    }
    TABLE
        .iter()
        .find(|(e, _)| e.as_bytes().eq_ignore_ascii_case(ext))
        .map_or(OCTET_STREAM, |&(_, t)| t)
}

/// Bytes that stand for themselves in RFC 8187's `value-chars`
/// (`attr-char`): letters, digits and `!#$&+-.^_`|~`.
fn is_attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

/// Bytes kept in the quoted ASCII `filename=`: printable ASCII but `"` and
/// `\` (which would need quoting that some browsers mis-read) and `%`
/// (which some browsers percent-decode, RFC 6266 appendix D).
fn is_fallback_char(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && !matches!(b, b'"' | b'\\' | b'%')
}

/// The `Content-Disposition` value that makes a browser save `name` (the
/// last component; `download` if empty): `attachment;
/// filename="ascii-fallback"` and, when the name is not plain ASCII,
/// `filename*=UTF-8''percent-encoded` (RFC 6266 section 4.3, RFC 8187).
/// In the fallback every byte outside printable ASCII, and `"`, `\` and
/// `%`, becomes `_`; the extended form encodes the name's UTF-8 (bytes that
/// are not UTF-8 become U+FFFD first, since the form declares UTF-8). The
/// result is printable ASCII without CR, LF or a stray `"`, whatever the
/// name: it cannot end or add a header.
pub fn disposition(name: &[u8]) -> String {
    let name = if name.is_empty() {
        &b"download"[..]
    } else {
        name
    };
    let fallback: String = name
        .iter()
        .map(|&b| {
            if is_fallback_char(b) {
                char::from(b)
            } else {
                '_'
            }
        })
        .collect();
    let mut out = format!("attachment; filename=\"{fallback}\"");
    if fallback.as_bytes() != name {
        out.push_str("; filename*=UTF-8''");
        for b in String::from_utf8_lossy(name).bytes() {
            if is_attr_char(b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
