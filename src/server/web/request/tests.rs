use super::*;

fn complete(buf: &[u8]) -> (Request, usize) {
    match parse_head(buf) {
        Parsed::Complete { request, head_len } => (request, head_len),
        other => panic!("not complete: {other:?}"),
    }
}

fn status(buf: &[u8]) -> u16 {
    match parse_head(buf) {
        Parsed::Bad(b) => b.status,
        other => panic!("not refused: {other:?}"),
    }
}

const FULL: &[u8] = b"GET /files/laptop/etc/hosts?at=2024-01-01 HTTP/1.1\r\n\
Host: backup:8080\r\n\
Range: bytes=0-99\r\n\
If-Range: \"abc\"\r\n\
If-None-Match: \"x\"\r\n\
If-None-Match: W/\"y\"\r\n\
If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
If-Match: *\r\n\
If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
Authorization: Basic bGFwdG9wOnM=\r\n\
Origin: http://backup:8080\r\n\
Referer: http://backup:8080/\r\n\
Cookie: a=1\r\n\
Cookie: csrf=tok\r\n\
Content-Type: text/plain\r\n\
X-Other: ignored\r\n\
\r\n";

#[test]
fn parses_every_header_rsb_reads() {
    let (r, n) = complete(FULL);
    assert_eq!(n, FULL.len());
    assert_eq!(r.method, Method::Get);
    assert_eq!(r.target, b"/files/laptop/etc/hosts?at=2024-01-01");
    assert_eq!(r.minor, 1);
    assert_eq!(r.host.as_deref(), Some("backup:8080"));
    assert_eq!(r.range.as_deref(), Some("bytes=0-99"));
    assert_eq!(r.if_range.as_deref(), Some("\"abc\""));
    assert_eq!(r.if_none_match.as_deref(), Some("\"x\", W/\"y\""));
    assert_eq!(
        r.if_modified_since.as_deref(),
        Some("Sun, 06 Nov 1994 08:49:37 GMT")
    );
    assert_eq!(r.if_match.as_deref(), Some("*"));
    assert!(r.if_unmodified_since.is_some());
    assert_eq!(r.authorization.as_deref(), Some("Basic bGFwdG9wOnM="));
    assert_eq!(r.origin.as_deref(), Some("http://backup:8080"));
    assert_eq!(r.referer.as_deref(), Some("http://backup:8080/"));
    assert_eq!(r.cookie.as_deref(), Some("a=1; csrf=tok"));
    assert_eq!(r.content_type.as_deref(), Some("text/plain"));
    assert_eq!(r.content_length, None);
    assert!(!r.expect_continue);
    assert!(r.keep_alive);
}

#[test]
fn every_prefix_is_partial_then_complete() {
    for n in 0..FULL.len() {
        assert_eq!(parse_head(&FULL[..n]), Parsed::Partial, "prefix {n}");
    }
    let (_, len) = complete(FULL);
    assert_eq!(len, FULL.len());
}

#[test]
fn pipelined_requests_and_bodies_are_left_after_the_head() {
    let two = b"POST /plans HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\na=bGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let (r, n) = complete(two);
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.content_length, Some(3));
    assert_eq!(&two[n..n + 3], b"a=b");
    let (r2, n2) = complete(&two[n + 3..]);
    assert_eq!(r2.method, Method::Get);
    assert_eq!(n + 3 + n2, two.len());
}

#[test]
fn header_names_are_case_insensitive_and_values_trimmed() {
    let (r, _) = complete(b"HEAD / HTTP/1.1\r\nhOsT:   h  \r\nRANGE:bytes=1-\t\r\n\r\n");
    assert_eq!(r.method, Method::Head);
    assert_eq!(r.host.as_deref(), Some("h"));
    assert_eq!(r.range.as_deref(), Some("bytes=1-"));
}

#[test]
fn methods_are_case_sensitive() {
    let (r, _) = complete(b"get / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.method, Method::Other("get".into()));
    let (r, _) = complete(b"DELETE / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.method, Method::Other("DELETE".into()));
    assert!(Method::Head.is_get_or_head());
    assert!(!Method::Post.is_get_or_head());
}

#[test]
fn leading_blank_lines_are_skipped() {
    let buf = b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let (r, n) = complete(buf);
    assert_eq!(r.target, b"/");
    assert_eq!(n, buf.len());
}

#[test]
fn keep_alive_follows_version_and_connection_tokens() {
    let ka = |head: &[u8]| complete(head).0.keep_alive;
    assert!(ka(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n"
    ));
    assert!(!ka(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: foo,keep-alive\r\n\r\n"));
    // Not a token: a substring does not count.
    assert!(!ka(b"GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n"));
}

#[test]
fn http_1_0_needs_no_host_but_1_1_does() {
    let (r, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.minor, 0);
    assert_eq!(r.host, None);
    assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400);
    let (r, _) = complete(b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
    assert_eq!(r.host.as_deref(), Some(""));
    assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
}

#[test]
fn single_headers_twice_are_refused() {
    for name in [
        "Host",
        "Authorization",
        "Range",
        "If-Range",
        "If-Modified-Since",
        "If-Unmodified-Since",
        "Origin",
        "Referer",
        "Content-Type",
    ] {
        let head = format!("GET / HTTP/1.1\r\nHost: h\r\n{name}: a\r\n{name}: a\r\n\r\n");
        let head = head.replacen("Host: h\r\nHost: a\r\nHost: a", "Host: a\r\nHost: a", 1);
        assert_eq!(status(head.as_bytes()), 400, "{name}");
    }
}

#[test]
fn content_length_rules() {
    let cl = |v: &str| parse_head(format!("POST / HTTP/1.1\r\nHost: h\r\n{v}\r\n\r\n").as_bytes());
    let len = |v: &str| match cl(v) {
        Parsed::Complete { request, .. } => request.content_length,
        other => panic!("{other:?}"),
    };
    assert_eq!(len("Content-Length: 0"), Some(0));
    assert_eq!(len("Content-Length: 42"), Some(42));
    assert_eq!(len("Content-Length: 7\r\nContent-Length: 7"), Some(7));
    assert_eq!(len("Content-Length: 7, 7"), Some(7));
    assert_eq!(len("Content-Length: 18446744073709551615"), Some(u64::MAX));
    for v in [
        "Content-Length: 7\r\nContent-Length: 8",
        "Content-Length: 7, 8",
        "Content-Length: -1",
        "Content-Length: +1",
        "Content-Length: 0x10",
        "Content-Length: 1 2",
        "Content-Length: ",
        "Content-Length: 1,",
        "Content-Length: 18446744073709551616",
    ] {
        assert!(
            matches!(cl(v), Parsed::Bad(BadRequest { status: 400, .. })),
            "{v}"
        );
    }
}

#[test]
fn transfer_encodings_are_refused() {
    let te = |v: &str| status(format!("POST / HTTP/1.1\r\nHost: h\r\n{v}\r\n\r\n").as_bytes());
    assert_eq!(te("Transfer-Encoding: chunked"), 411);
    assert_eq!(te("Transfer-Encoding: Chunked"), 411);
    assert_eq!(te("Transfer-Encoding: gzip, chunked"), 501);
    assert_eq!(te("Transfer-Encoding: gzip"), 501);
    assert_eq!(te("Transfer-Encoding: "), 501);
    // The smuggling classic: both framings at once.
    assert_eq!(te("Content-Length: 4\r\nTransfer-Encoding: chunked"), 411);
    assert_eq!(
        status(b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        411
    );
}

#[test]
fn expect_continue_is_reported_and_others_refused() {
    let (r, _) = complete(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\nExpect: 100-Continue\r\n\r\n",
    );
    assert!(r.expect_continue);
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n"),
        417
    );
}

#[test]
fn versions() {
    assert_eq!(status(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
    assert_eq!(status(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
    assert_eq!(status(b"GET / HTTP/3\r\n\r\n"), 505);
    assert_eq!(status(b"GET / HTTP/1.2\r\nHost: h\r\n\r\n"), 505);
    assert_eq!(status(b"GET / HTTP/x.1\r\n\r\n"), 400);
    assert_eq!(status(b"GET / FTP/1.1\r\n\r\n"), 400);
    assert_eq!(status(b"GET /\r\n\r\n"), 400);
}

#[test]
fn malformed_heads_are_400() {
    for head in [
        &b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHo st: h\r\n\r\n",
        b"GET / HTTP/1.1\r\n Host: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\x01\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        assert_eq!(status(head), 400, "{:?}", String::from_utf8_lossy(head));
    }
}

#[test]
fn bare_lf_line_ends_are_accepted() {
    // RFC 9112 section 2.2: a recipient MAY take a bare LF as a line end.
    let (r, n) = complete(b"GET / HTTP/1.1\nHost: h\n\n");
    assert_eq!(r.host.as_deref(), Some("h"));
    assert_eq!(n, 24);
}

#[test]
fn header_values_beyond_ascii_are_kept_lossily() {
    let (r, _) = complete(b"GET / HTTP/1.1\r\nHost: h\r\nReferer: http://h/\xe9\xff\r\n\r\n");
    assert_eq!(r.referer.as_deref(), Some("http://h/\u{fffd}\u{fffd}"));
}

#[test]
fn heads_are_bounded() {
    let mut big = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
    big.resize(MAX_HEAD, b'a');
    assert_eq!(status(&big), 431);
    big.resize(MAX_HEAD + 1000, b'a');
    assert_eq!(status(&big), 431);
    // One byte short is still worth waiting for.
    big.truncate(MAX_HEAD - 1);
    assert_eq!(parse_head(&big), Parsed::Partial);
    // A complete head of exactly MAX_HEAD bytes is fine.
    let mut exact = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
    exact.resize(MAX_HEAD - 4, b'a');
    exact.extend_from_slice(b"\r\n\r\n");
    assert_eq!(complete(&exact).1, MAX_HEAD);

    let mut many = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..MAX_HEADERS - 1 {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    let mut ok = many.clone();
    ok.extend_from_slice(b"\r\n");
    assert!(matches!(parse_head(&ok), Parsed::Complete { .. }));
    many.extend_from_slice(b"X-last: v\r\n\r\n");
    assert_eq!(status(&many), 431);
}

#[test]
fn one_byte_at_a_time() {
    let buf =
        b"POST /plan/laptop HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
    let mut acc = Vec::new();
    for (i, &b) in buf.iter().enumerate() {
        acc.push(b);
        let p = parse_head(&acc);
        if i + 1 < buf.len() {
            assert_eq!(p, Parsed::Partial, "at {i}");
        } else {
            let Parsed::Complete { request, head_len } = p else {
                panic!("{p:?}")
            };
            assert_eq!(head_len, buf.len());
            assert!(!request.keep_alive);
            assert_eq!(request.content_length, Some(5));
        }
    }
}

#[test]
fn bad_request_displays_status_and_reason() {
    let b = BadRequest {
        status: 431,
        reason: "request head too large",
    };
    assert_eq!(b.to_string(), "431 request head too large");
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode(b"a%20b+c", false).unwrap(), b"a b+c");
    assert_eq!(percent_decode(b"a%20b+c", true).unwrap(), b"a b c");
    assert_eq!(
        percent_decode(b"%2f%2F%00%ff%FE", false).unwrap(),
        b"//\0\xff\xfe"
    );
    assert_eq!(percent_decode(b"", false).unwrap(), b"");
    for bad in [&b"%"[..], b"%2", b"%g0", b"%0g", b"a%", b"%%20"] {
        assert_eq!(percent_decode(bad, false), None, "{bad:?}");
    }
    // Every byte's escape decodes to it, in both cases of hex digit.
    for b in 0..=255u8 {
        assert_eq!(
            percent_decode(format!("%{b:02x}").as_bytes(), true).unwrap(),
            [b]
        );
        assert_eq!(
            percent_decode(format!("%{b:02X}").as_bytes(), true).unwrap(),
            [b]
        );
    }
}

#[test]
fn forms() {
    let f = parse_form(b"paths=%2Fhome%0A%2Fetc&schedule=every&interval=1h&bwlimit=&x").unwrap();
    assert_eq!(
        f,
        vec![
            ("paths".into(), "/home\n/etc".into()),
            ("schedule".into(), "every".into()),
            ("interval".into(), "1h".into()),
            ("bwlimit".into(), String::new()),
            ("x".into(), String::new()),
        ]
    );
    assert_eq!(
        parse_form(b"a=1+2%2B3&&b=%C3%A9=").unwrap(),
        vec![("a".into(), "1 2+3".into()), ("b".into(), "é=".into())]
    );
    assert_eq!(parse_form(b"").unwrap(), vec![]);
    assert_eq!(parse_form(b"a=%zz"), Err(FormError::BadEscape));
    assert_eq!(parse_form(b"a=%ff"), Err(FormError::NotUtf8));
    assert_eq!(parse_form(b"%ff=1"), Err(FormError::NotUtf8));
    let many = vec!["k=v"; MAX_FIELDS].join("&");
    assert_eq!(parse_form(many.as_bytes()).unwrap().len(), MAX_FIELDS);
    let more = format!("{many}&k=v");
    assert_eq!(parse_form(more.as_bytes()), Err(FormError::TooManyFields));
    assert!(FormError::TooManyFields.to_string().contains("64"));
}

#[test]
fn cookies() {
    let h = "a=1; csrf=tok;b=\"q\" ; empty=; csrf=second";
    assert_eq!(cookie(h, "a"), Some("1"));
    assert_eq!(cookie(h, "csrf"), Some("tok"));
    assert_eq!(cookie(h, "b"), Some("q"));
    assert_eq!(cookie(h, "empty"), Some(""));
    assert_eq!(cookie(h, "A"), None);
    assert_eq!(cookie(h, "cs"), None);
    assert_eq!(cookie("", "a"), None);
    assert_eq!(cookie("novalue", "novalue"), None);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any bytes: an answer within bounds, never a panic; a complete
        /// head never claims more than the buffer or MAX_HEAD.
        #[test]
        fn any_bytes_are_partial_complete_or_refused(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
            match parse_head(&buf) {
                Parsed::Complete { head_len, .. } => {
                    prop_assert!(head_len <= buf.len() && head_len <= MAX_HEAD)
                }
                Parsed::Bad(b) => prop_assert!([400, 411, 417, 431, 501, 505].contains(&b.status)),
                Parsed::Partial => prop_assert!(buf.len() < MAX_HEAD),
            }
        }

        /// A valid head with arbitrary (valid) header values after it
        /// parses whole, split anywhere: every prefix is Partial.
        #[test]
        fn generated_heads_split_anywhere(
            value in "[ -~]{0,40}",
            name in "[A-Za-z][A-Za-z0-9-]{0,20}",
        ) {
            let head = format!("GET /x HTTP/1.1\r\nHost: h\r\nX-{name}: {value}\r\n\r\n");
            let b = head.as_bytes();
            for n in 0..b.len() {
                prop_assert_eq!(parse_head(&b[..n]), Parsed::Partial);
            }
            let whole = matches!(parse_head(b), Parsed::Complete { head_len, .. } if head_len == b.len());
            prop_assert!(whole);
        }

        #[test]
        fn forms_decode_what_was_encoded(
            pairs in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,12}"), 0..10),
        ) {
            let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
            let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
            let got = parse_form(body.join("&").as_bytes()).unwrap();
            // Pairs with an empty encoding ("=") are kept: only "" is skipped.
            prop_assert_eq!(got, pairs);
        }
    }
}
