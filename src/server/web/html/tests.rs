use super::*;
use crate::server::web::model::{Sort, SortBy};

/// Percent-decodes a URL path or query value (the test's own decoder,
/// strict: a `%` must be followed by two hex digits).
pub(crate) fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn escape_replaces_the_five_characters() {
    assert_eq!(
        escape("<script>alert('x') & \"y\"</script>"),
        "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
    );
    assert_eq!(escape("plain é"), "plain é");
}

#[test]
fn visible_shows_controls_invalid_bytes_and_bidi() {
    assert_eq!(visible(b"a\r\nSet-Cookie: x"), "a\\r\\nSet-Cookie: x");
    assert_eq!(visible(b"bad\xff\xfe"), "bad\\xff\\xfe");
    assert_eq!(visible(b"\x1b[31mred\x7f"), "\\x1b[31mred\\x7f");
    assert_eq!(
        visible("evil\u{202e}txt.exe".as_bytes()),
        "evil\\u{202e}txt.exe"
    );
    assert_eq!(
        visible("a\u{2028}b\u{85}c".as_bytes()),
        "a\\u{2028}b\\u{0085}c"
    );
    assert_eq!(visible(b"back\\slash\ttab"), "back\\\\slash\\ttab");
    // Valid UTF-8 beside an invalid byte stays as it is.
    assert_eq!(visible("é\u{e9}".as_bytes()), "éé");
    assert_eq!(visible(b"\xc3\xa9\xc3"), "é\\xc3");
}

#[test]
fn escape_bytes_escapes_after_making_visible() {
    assert_eq!(
        escape_bytes(b"<script>alert(1)</script>"),
        "&lt;script&gt;alert(1)&lt;/script&gt;"
    );
    assert_eq!(escape_bytes(b"\"onmouseover=x"), "&quot;onmouseover=x");
    assert_eq!(escape_bytes(b"x\n<b>\xff"), "x\\n&lt;b&gt;\\xff");
}

#[test]
fn encode_segment_keeps_only_unreserved() {
    assert_eq!(encode_segment(b"aZ09-._~"), "aZ09-._~");
    assert_eq!(
        encode_segment(b"a b/c?d#e%f&g"),
        "a%20b%2Fc%3Fd%23e%25f%26g"
    );
    assert_eq!(encode_segment(b"\xff\x00\r\n"), "%FF%00%0D%0A");
    assert_eq!(encode_segment("é".as_bytes()), "%C3%A9");
    for b in 0..=255u8 {
        assert_eq!(decode(&encode_segment(&[b])), vec![b]);
    }
}

#[test]
fn encode_path_keeps_the_separators() {
    assert_eq!(encode_path(b"a b/c%d/e"), "a%20b/c%25d/e");
    assert_eq!(encode_path(b""), "");
}

#[test]
fn urls_have_the_documented_shapes() {
    let t = Time {
        secs: 1_700_000_000,
        nanos: 5,
    };
    let none = Query::default();
    assert_eq!(browse_dir_url("laptop", b"", &none), "/browse/laptop/");
    assert_eq!(
        browse_dir_url("laptop", b"a b/c", &none),
        "/browse/laptop/a%20b/c/"
    );
    assert_eq!(
        browse_file_url("laptop", b"a/f.txt", &none),
        "/browse/laptop/a/f.txt"
    );
    assert_eq!(
        file_url("laptop", b"a/f.txt", &Query::at(Some(t))),
        "/files/laptop/a/f.txt?at=%401700000000.000000005"
    );
    assert_eq!(tar_url("laptop", b"", None), "/files/laptop/?format=tar");
    assert_eq!(
        tar_url("laptop", b"d", Some(t)),
        "/files/laptop/d/?format=tar&at=%401700000000.000000005"
    );
    let q = Query {
        at: None,
        sort: Some(Sort {
            by: SortBy::Mtime,
            descending: true,
        }),
        tar: false,
    };
    assert_eq!(
        browse_dir_url("n", b"x", &q),
        "/browse/n/x/?sort=mtime&order=desc"
    );
    assert_eq!(plan_url("my.host-1"), "/plans/my.host-1");
    assert_eq!(at_value(Time { secs: -3, nanos: 0 }), "@-3.000000000");
}

#[test]
fn a_link_escapes_its_url() {
    assert_eq!(link("/x?a=1&b=2", "t"), "<a href=\"/x?a=1&amp;b=2\">t</a>");
}

#[test]
fn child_and_parent() {
    assert_eq!(child(b"", b"a"), b"a");
    assert_eq!(child(b"a", b"b"), b"a/b");
    assert_eq!(parent(b"a/b/c"), b"a/b");
    assert_eq!(parent(b"a"), b"");
}
