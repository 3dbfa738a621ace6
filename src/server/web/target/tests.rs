use super::*;

fn t(raw: &[u8]) -> Target {
    parse_target(raw).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(raw)))
}

fn err(raw: &[u8]) -> TargetError {
    match parse_target(raw) {
        Err(e) => e,
        Ok(t) => panic!("{:?} accepted: {t:?}", String::from_utf8_lossy(raw)),
    }
}

fn segs(list: &[&[u8]]) -> Vec<Vec<u8>> {
    list.iter().map(|s| s.to_vec()).collect()
}

#[test]
fn root_and_plain_paths() {
    assert_eq!(
        t(b"/"),
        Target {
            segments: vec![],
            trailing_slash: true,
            query: vec![]
        }
    );
    let x = t(b"/browse/laptop/home/ann/");
    assert_eq!(x.segments, segs(&[b"browse", b"laptop", b"home", b"ann"]));
    assert!(x.trailing_slash);
    let x = t(b"/files/laptop/a.txt");
    assert_eq!(x.segments, segs(&[b"files", b"laptop", b"a.txt"]));
    assert!(!x.trailing_slash);
}

#[test]
fn segments_are_percent_decoded_after_splitting() {
    let x = t(b"/files/a%20b/%C3%A9t%C3%A9/x+y/%ff%FE/100%25");
    assert_eq!(
        x.segments,
        segs(&[
            b"files",
            b"a b",
            "été".as_bytes(),
            b"x+y",
            b"\xff\xfe",
            b"100%"
        ])
    );
    // Unreserved and sub-delims plain, as a browser sends them.
    let x = t(b"/a-b._~!$&'()*,;=:@");
    assert_eq!(x.segments, segs(&[b"a-b._~!$&'()*,;=:@"]));
    // Raw UTF-8 (some clients do not escape it).
    assert_eq!(t("/é".as_bytes()).segments, segs(&["é".as_bytes()]));
    // Dots that are not exactly . or .. are names.
    assert_eq!(
        t(b"/.../..a/.b/%2e%2e%2e").segments,
        segs(&[b"...", b"..a", b".b", b"..."])
    );
}

#[test]
fn every_escaped_byte_but_slash_and_nul_is_a_name_byte() {
    for b in 1..=255u8 {
        if b == b'/' {
            continue;
        }
        let raw = format!("/x%{b:02X}y");
        assert_eq!(t(raw.as_bytes()).segments, vec![vec![b'x', b, b'y']]);
    }
}

#[test]
fn hostile_targets_are_refused() {
    assert_eq!(err(b"/files/%2e%2e/etc"), TargetError::DotSegment);
    assert_eq!(err(b"/files/%2E%2E"), TargetError::DotSegment);
    assert_eq!(err(b"/files/.%2e/x"), TargetError::DotSegment);
    assert_eq!(err(b"/files/../x"), TargetError::DotSegment);
    assert_eq!(err(b"/files/.."), TargetError::DotSegment);
    assert_eq!(err(b"/files/./x"), TargetError::DotSegment);
    assert_eq!(err(b"/files/%2e/x"), TargetError::DotSegment);
    assert_eq!(err(b"/files/a%2Fb"), TargetError::EncodedSlash);
    assert_eq!(err(b"/files/a%2fb"), TargetError::EncodedSlash);
    assert_eq!(err(b"/files/%2f..%2f"), TargetError::EncodedSlash);
    assert_eq!(err(b"/files/a%00b"), TargetError::Nul);
    assert_eq!(err(b"//"), TargetError::EmptySegment);
    assert_eq!(err(b"//etc/passwd"), TargetError::EmptySegment);
    assert_eq!(err(b"/a//b"), TargetError::EmptySegment);
    assert_eq!(err(b"/a//"), TargetError::EmptySegment);
    assert_eq!(err(b"/a%"), TargetError::BadEscape);
    assert_eq!(err(b"/a%4"), TargetError::BadEscape);
    assert_eq!(err(b"/a%zz"), TargetError::BadEscape);
    assert_eq!(err(b"/a#frag"), TargetError::Fragment);
    assert_eq!(err(b"/a b"), TargetError::BadByte);
    assert_eq!(err(b"/a\tb"), TargetError::BadByte);
    assert_eq!(err(b"/a\x7f"), TargetError::BadByte);
    assert_eq!(err(b"/a\r\nX: y"), TargetError::BadByte);
    assert_eq!(err(b"*"), TargetError::Asterisk);
    assert_eq!(err(b""), TargetError::NotOrigin);
    assert_eq!(err(b"files/a"), TargetError::NotOrigin);
    assert_eq!(err(b"host:80"), TargetError::NotOrigin);
    assert_eq!(err(b"\\etc"), TargetError::NotOrigin);
    // Backslashes are name bytes on Unix, not separators.
    assert_eq!(t(b"/a\\..\\b").segments, segs(&[b"a\\..\\b"]));
}

#[test]
fn absolute_form_is_taken_for_its_path() {
    let x = t(b"http://backup:8080/files/a?at=1");
    assert_eq!(x.segments, segs(&[b"files", b"a"]));
    assert_eq!(x.query, vec![("at".into(), "1".into())]);
    assert!(t(b"HTTPS://h").trailing_slash);
    assert!(t(b"http://h").segments.is_empty());
    let x = t(b"http://h?x=1");
    assert!(x.segments.is_empty() && x.trailing_slash);
    assert_eq!(x.query, vec![("x".into(), "1".into())]);
    assert_eq!(err(b"http://"), TargetError::NotOrigin);
    assert_eq!(err(b"http:///a"), TargetError::NotOrigin);
    assert_eq!(err(b"http://u:p@h/a"), TargetError::NotOrigin);
    assert_eq!(err(b"ftp://h/a"), TargetError::NotOrigin);
    assert_eq!(err(b"http://h/%2e%2e/x"), TargetError::DotSegment);
}

#[test]
fn queries() {
    let x = t(b"/browse/a/?at=2024-01-01+10%3A00&sort=size&desc");
    assert_eq!(
        x.query,
        vec![
            ("at".into(), "2024-01-01 10:00".into()),
            ("sort".into(), "size".into()),
            ("desc".into(), String::new())
        ]
    );
    assert!(x.trailing_slash);
    // `/` and `?` in a query are plain characters.
    assert_eq!(t(b"/?a=/x?y").query, vec![("a".into(), "/x?y".into())]);
    assert_eq!(t(b"/?").query, vec![]);
    assert_eq!(err(b"/?a=%ff"), TargetError::Query(FormError::NotUtf8));
    assert_eq!(err(b"/?a=%f"), TargetError::Query(FormError::BadEscape));
    let many = format!("/?{}", vec!["a=b"; 65].join("&"));
    assert_eq!(
        err(many.as_bytes()),
        TargetError::Query(FormError::TooManyFields)
    );
}

#[test]
fn wire_paths_follow_the_wire_rule() {
    assert!(wire_path(&[]).unwrap().is_root());
    let p = wire_path(&segs(&[b"home", b"ann", b"\xff x"])).unwrap();
    assert_eq!(p.as_bytes(), b"home/ann/\xff x");
    assert_eq!(
        wire_path(&segs(&[b"a", b".rsb-tmp.1"])),
        Err(TargetError::Reserved)
    );
    assert_eq!(
        wire_path(&segs(&[b".rsb-tmp.history", b"x"])),
        Err(TargetError::Reserved)
    );
    // Names that merely look alike are fine.
    assert!(wire_path(&segs(&[b".rsb-tmpx"])).is_ok());
    assert_eq!(
        wire_path(&[vec![b'n'; 256]]),
        Err(TargetError::Path(PathError::NameTooLong))
    );
    let long: Vec<Vec<u8>> = (0..2100).map(|_| b"ab".to_vec()).collect();
    assert_eq!(wire_path(&long), Err(TargetError::Path(PathError::TooLong)));
    // Segments built by hand get the same checks.
    assert_eq!(
        wire_path(&segs(&[b"a", b".."])),
        Err(TargetError::Path(PathError::DotDot))
    );
    assert_eq!(wire_path(&segs(&[b"a/b"])), Err(TargetError::EncodedSlash));
    assert_eq!(
        wire_path(&segs(&[b"a\0"])),
        Err(TargetError::Path(PathError::Nul))
    );
    assert_eq!(wire_path(&segs(&[b""])), Err(TargetError::EmptySegment));
}

#[test]
fn parsed_targets_become_wire_paths() {
    let x = t(b"/%2Ehidden/a%0Ab");
    assert_eq!(wire_path(&x.segments).unwrap().as_bytes(), b".hidden/a\nb");
}

#[test]
fn overlong_input_is_bounded_work() {
    let long = format!("/{}", "a/".repeat(8000));
    let x = t(long.as_bytes());
    assert_eq!(x.segments.len(), 8000);
    assert!(x.trailing_slash);
    assert!(matches!(
        wire_path(&x.segments),
        Err(TargetError::Path(PathError::TooLong))
    ));
}

#[test]
fn errors_read_as_sentences() {
    assert_eq!(
        TargetError::EncodedSlash.to_string(),
        "a path segment holds an encoded '/'"
    );
    assert_eq!(
        TargetError::Query(FormError::NotUtf8).to_string(),
        "the query: a form field that is not UTF-8"
    );
    assert!(TargetError::Reserved.to_string().contains(".rsb-tmp."));
}
