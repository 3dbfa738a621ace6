use super::*;

#[test]
fn common_types_by_extension() {
    for (name, t) in [
        (&b"a.txt"[..], "text/plain"),
        (b"style.css", "text/css"),
        (b"data.json", "application/json"),
        (b"photo.JPG", "image/jpeg"),
        (b"photo.jpeg", "image/jpeg"),
        (b"x.png", "image/png"),
        (b"x.gif", "image/gif"),
        (b"x.webp", "image/webp"),
        (b"favicon.ico", "image/vnd.microsoft.icon"),
        (b"doc.Pdf", "application/pdf"),
        (b"a.zip", "application/zip"),
        (b"a.tar.gz", "application/gzip"),
        (b"a.tgz", "application/gzip"),
        (b"a.tar", "application/x-tar"),
        (b"a.tar.xz", "application/x-xz"),
        (b"a.tar.zst", "application/zstd"),
        (b"a.bz2", "application/x-bzip2"),
        (b"a.7z", "application/x-7z-compressed"),
        (b"s.mp3", "audio/mpeg"),
        (b"s.ogg", "audio/ogg"),
        (b"s.wav", "audio/wav"),
        (b"s.flac", "audio/flac"),
        (b"v.mp4", "video/mp4"),
        (b"v.webm", "video/webm"),
        (b"v.mkv", "video/x-matroska"),
        (b"v.avi", "video/x-msvideo"),
        (b"v.MOV", "video/quicktime"),
        (b"t.csv", "text/csv"),
        (b"README.md", "text/markdown"),
        (b"debian.iso", "application/x-iso9660-image"),
        (b"disk.img", OCTET_STREAM),
        (b"p.deb", "application/vnd.debian.binary-package"),
        (b"p.rpm", "application/x-rpm"),
        (b"m.wasm", "application/wasm"),
        (b"f.woff", "font/woff"),
        (b"f.woff2", "font/woff2"),
    ] {
        assert_eq!(content_type(name), t, "{}", String::from_utf8_lossy(name));
    }
}

#[test]
fn active_content_is_never_served_as_such() {
    for name in [
        &b"index.html"[..],
        b"INDEX.HTM",
        b"a.xhtml",
        b"a.svg",
        b"a.SVG",
        b"a.xml",
        b"app.js",
        b"app.mjs",
        b"a.shtml",
        b"a.xsl",
    ] {
        assert_eq!(content_type(name), "text/plain", "{name:?}");
    }
    assert_eq!(content_type(b"a.svgz"), OCTET_STREAM);
    // No type in the table is one a browser renders as a document with
    // scripts.
    for (_, t) in TABLE {
        assert!(
            !t.contains("html") && !t.contains("svg") && !t.ends_with("xml"),
            "{t}"
        );
        assert!(!t.contains("javascript") && !t.contains("charset"), "{t}");
    }
}

#[test]
fn unknown_and_odd_names_are_octet_stream() {
    for name in [
        &b""[..],
        b"Makefile",
        b".bashrc",
        b".txt",
        b"a.",
        b"a.unknown",
        b"a.txt.",
        b"a.\xff",
        b"a.txt\0",
        b"a.verylongextension",
        b"a.t\xc3\xa9xt",
    ] {
        assert_eq!(content_type(name), OCTET_STREAM, "{name:?}");
    }
}

#[test]
fn the_last_extension_counts() {
    assert_eq!(content_type(b"a.html.txt"), "text/plain");
    assert_eq!(content_type(b"a.txt.zip"), "application/zip");
    assert_eq!(content_type(b"..png"), "image/png");
}

#[test]
fn plain_ascii_names_get_one_filename() {
    assert_eq!(
        disposition(b"report.pdf"),
        "attachment; filename=\"report.pdf\""
    );
    assert_eq!(
        disposition(b"a b (1).txt"),
        "attachment; filename=\"a b (1).txt\""
    );
    assert_eq!(disposition(b""), "attachment; filename=\"download\"");
}

#[test]
fn other_names_get_a_fallback_and_an_extended_filename() {
    assert_eq!(
        disposition("été.txt".as_bytes()),
        "attachment; filename=\"__t__.txt\"; filename*=UTF-8''%C3%A9t%C3%A9.txt"
    );
    assert_eq!(
        disposition(b"a\"b.txt"),
        "attachment; filename=\"a_b.txt\"; filename*=UTF-8''a%22b.txt"
    );
    assert_eq!(
        disposition(b"100%.txt"),
        "attachment; filename=\"100_.txt\"; filename*=UTF-8''100%25.txt"
    );
    assert_eq!(
        disposition(b"x\r\nSet-Cookie: a=b"),
        "attachment; filename=\"x__Set-Cookie: a=b\"; filename*=UTF-8''x%0D%0ASet-Cookie%3A%20a%3Db"
    );
    // Bytes that are not UTF-8 become U+FFFD (EF BF BD).
    assert_eq!(
        disposition(b"\xffa"),
        "attachment; filename=\"_a\"; filename*=UTF-8''%EF%BF%BDa"
    );
    assert_eq!(
        disposition(b"a\\b;c"),
        "attachment; filename=\"a_b;c\"; filename*=UTF-8''a%5Cb%3Bc"
    );
}

#[test]
fn no_name_can_break_the_header() {
    // Every single byte, and every pair with a hostile byte.
    let mut names: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    for b in 0..=255u8 {
        names.push(vec![b'"', b, b'\r', b'\n', b'\\', b]);
    }
    for name in names {
        let d = disposition(&name);
        assert!(d.bytes().all(|b| (0x20..0x7f).contains(&b)), "{d:?}");
        // Exactly the two quotes around the fallback.
        assert_eq!(d.matches('"').count(), 2, "{d:?}");
        let ext = d.split("filename*=UTF-8''").nth(1).unwrap_or("");
        assert!(
            ext.bytes()
                .all(|b| is_attr_char(b) || b == b'%' || b.is_ascii_hexdigit()),
            "{d:?}"
        );
    }
}
