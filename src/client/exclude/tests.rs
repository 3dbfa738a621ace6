//! The exclude rules as a table of cases, the errors, the bound on
//! matching steps, and the automaton against a backtracking reference.

use super::*;
use proptest::prelude::*;

/// (pattern, relative path, is a directory, excluded)
const TABLE: &[(&str, &str, bool, bool)] = &[
    // A name pattern, at any depth.
    ("*.tmp", "a.tmp", false, true),
    ("*.tmp", "x/y/a.tmp", false, true),
    ("*.tmp", "a.tmp.keep", false, false),
    ("*.tmp", ".tmp", false, true),
    ("*.tmp", "dir.tmp/inner", false, false),
    ("*.tmp", "dir.tmp", true, true),
    ("core", "core", false, true),
    ("core", "src/core", true, true),
    ("core", "src/core.c", false, false),
    ("core", "score", false, false),
    // `?`
    ("?.c", "a.c", false, true),
    ("?.c", "ab.c", false, false),
    ("?.c", "d/x.c", false, true),
    ("a?b", "a/b", false, false),
    // `*` never crosses a `/`.
    ("a*b", "a/b", false, false),
    ("src/*.o", "src/a.o", false, true),
    ("src/*.o", "src/sub/a.o", false, false),
    ("src/*.o", "lib/src/a.o", false, false),
    ("*", "anything", false, true),
    ("*/*", "a/b", false, true),
    ("*/*", "a/b/c", false, false),
    // Classes.
    ("[abc].txt", "b.txt", false, true),
    ("[abc].txt", "d.txt", false, false),
    ("[a-c]x", "bx", false, true),
    ("[a-c]x", "dx", false, false),
    ("[!a-c]x", "dx", false, true),
    ("[!a-c]x", "ax", false, false),
    ("[^a-c]x", "dx", false, true),
    ("[]x]y", "]y", false, true),
    ("[]x]y", "xy", false, true),
    ("[!]]y", "]y", false, false),
    ("[a-]z", "-z", false, true),
    ("[-a]z", "-z", false, true),
    ("a[/]b", "a/b", false, false),
    ("a[!x]b", "a/b", false, false),
    ("[\\]]", "]", false, true),
    ("file[0-9][0-9]", "file42", false, true),
    ("file[0-9][0-9]", "file4x", false, false),
    // `**`
    ("**/x", "x", false, true),
    ("**/x", "a/b/x", false, true),
    ("**/x", "ax", false, false),
    ("a/**/b", "a/b", false, true),
    ("a/**/b", "a/x/y/b", false, true),
    ("a/**/b", "a/xb", false, false),
    ("a/**", "a/x/y", false, true),
    ("a/**", "a", true, false),
    ("**", "x/y/z", false, true),
    ("/a**z", "a/b/z", false, true),
    ("a**z", "a/b/z", false, false),
    ("a**z", "x/abz", false, true),
    ("/x/**/*.log", "x/l/m/n.log", false, true),
    ("/x/**/*.log", "y/x/n.log", false, false),
    // Anchoring and whole paths.
    ("/top/only", "top/only", false, true),
    ("/top/only", "a/top/only", false, false),
    ("/build", "build", true, true),
    ("/build", "src/build", true, false),
    ("top/only", "a/top/only", false, false),
    ("//build", "build", true, true),
    // Directories only.
    ("cache/", "cache", true, true),
    ("cache/", "cache", false, false),
    ("cache/", "a/b/cache", true, true),
    ("/cache/", "a/cache", true, false),
    ("a/*/", "a/b", true, true),
    ("a/*/", "a/b", false, false),
    ("a/**/", "a/b/c", true, true),
    ("cache//", "x/cache", true, true),
    // Escapes.
    ("\\*", "*", false, true),
    ("\\*", "a", false, false),
    ("a\\?", "a?", false, true),
    ("a\\?", "ab", false, false),
    ("\\[x]", "[x]", false, true),
    ("a\\\\", "a\\", false, true),
    ("x\\/", "x", true, false),
    // Bytes that are not UTF-8, names with spaces, hidden names.
    ("*.bak", "r\u{e9}sum\u{e9}.bak", false, true),
    ("my *", "my thesis", false, true),
    (".*", ".git", true, true),
    (".*", "a.git", true, false),
];

#[test]
fn the_table() {
    assert!(TABLE.len() >= 40);
    for &(pattern, path, is_dir, want) in TABLE {
        let ex = Excludes::new([pattern]).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        assert_eq!(
            ex.excluded(path.as_bytes(), is_dir),
            want,
            "pattern {pattern:?} path {path:?} dir {is_dir}"
        );
    }
}

#[test]
fn raw_bytes_match_as_bytes() {
    let ex = Excludes::new([&b"\xff?"[..], b"[\x80-\x9f]z"]).unwrap();
    assert!(ex.excluded(b"d/\xffx", false));
    assert!(!ex.excluded(b"\xff/", false));
    assert!(ex.excluded(b"\x85z", false));
    assert!(!ex.excluded(b"\xa0z", false));
}

#[test]
fn several_patterns_any_one_excludes() {
    let ex = Excludes::new(["*.tmp", "cache/", "/top/only"]).unwrap();
    assert!(ex.excluded(b"a/b.tmp", false));
    assert!(ex.excluded(b"x/cache", true));
    assert!(!ex.excluded(b"x/cache", false));
    assert!(ex.excluded(b"top/only", false));
    assert!(!ex.excluded(b"x/top/only", false));
    assert!(!ex.excluded(b"keep.txt", false));
    assert!(Excludes::new(Vec::<Vec<u8>>::new()).unwrap().is_empty());
    assert!(!Excludes::default().excluded(b"a", true));
}

#[test]
fn beneath_an_excluded_directory() {
    let ex = Excludes::new(["cache/", "/a/b"]).unwrap();
    assert!(ex.excluded_beneath(b"x/cache/y/z", false));
    assert!(ex.excluded_beneath(b"a/b/c", false));
    assert!(!ex.excluded(b"a/b/c", false));
    assert!(
        !ex.excluded_beneath(b"x/cache", false),
        "a file named cache"
    );
    assert!(!ex.excluded_beneath(b"x/y", true));
    assert!(
        !ex.excluded_beneath(b"", true),
        "the root is never excluded"
    );
}

#[test]
fn invalid_patterns_are_refused_with_a_message() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "empty exclude pattern"),
        (b"/", "exclude pattern '/' has nothing to match"),
        (b"///", "exclude pattern '///' has nothing to match"),
        (b"a[bc", "exclude pattern 'a[bc': '[' without a closing ']'"),
        (b"[", "'[' without a closing ']'"),
        (b"[]", "'[' without a closing ']'"),
        (b"[!]", "'[' without a closing ']'"),
        (b"[a\\", "'[' without a closing ']'"),
        (b"[z-a]", "a range's first byte comes after its last"),
        (b"ab\\", "ends with a lone backslash"),
    ];
    for (p, msg) in cases {
        let e = Excludes::new([p]).expect_err(&String::from_utf8_lossy(p));
        assert!(e.to_string().contains(msg), "{e} lacks {msg}");
    }
    let long = vec![b'a'; MAX_PATTERN + 1];
    assert_eq!(
        Excludes::new([&long]),
        Err(PatternError::TooLong(MAX_PATTERN + 1))
    );
    assert!(Excludes::new([vec![b'a'; MAX_PATTERN]]).is_ok());
    // The first bad one of several.
    assert_eq!(
        Excludes::new(["ok", "[x", ""]),
        Err(PatternError::UnterminatedClass(b"[x".to_vec()))
    );
}

#[test]
fn many_stars_match_in_linear_steps() {
    let p = compile(b"*a*a*a*a*a*a*a*a*b").unwrap();
    let name = vec![b'a'; 100_000];
    let mut steps = 0;
    assert!(!run(&p.tokens, &name, &mut steps));
    let bound = (name.len() as u64 + 1) * (p.tokens.len() as u64 + 1);
    assert!(steps <= bound, "{steps} steps > {bound}");
    let mut with_b = name.clone();
    with_b.push(b'b');
    let mut steps = 0;
    assert!(run(&p.tokens, &with_b, &mut steps));
    assert!(steps <= bound + p.tokens.len() as u64 + 1);
    // Globstars too, and a pattern too long for the stack's states.
    let p = compile(&b"**a".repeat(200)).unwrap();
    let mut steps = 0;
    assert!(!run(&p.tokens, &[b'a'; 199], &mut steps));
    assert!(run(&p.tokens, &[b'a'; 200], &mut 0));
    assert!(steps <= 200 * (p.tokens.len() as u64 + 1));
}

#[test]
fn exclude_from_lists() {
    let text = b"# comment\n*.tmp\n\n   \ncache/\r\n  #not a comment\nname with space \n";
    assert_eq!(
        parse_list(text),
        [
            &b"*.tmp"[..],
            b"cache/",
            b"  #not a comment",
            b"name with space "
        ]
    );
    assert!(parse_list(b"").is_empty());
    assert_eq!(parse_list(b"last"), [b"last"]);
}

/// Matching by backtracking, exponential but plainly right.
fn reference(tokens: &[Token], text: &[u8]) -> bool {
    let Some((t, rest)) = tokens.split_first() else {
        return text.is_empty();
    };
    let one = |ok: bool| ok && reference(rest, text.get(1..).unwrap_or_default());
    match t {
        Token::Byte(b) => one(text.first() == Some(b)),
        Token::Any => one(text.first().is_some_and(|&c| c != b'/')),
        Token::Class(set) => one(text.first().is_some_and(|&c| in_class(set, c))),
        Token::Star => (0..=text.len())
            .take_while(|&k| k == 0 || text[k - 1] != b'/')
            .any(|k| reference(rest, &text[k..])),
        Token::Globstar => (0..=text.len()).any(|k| reference(rest, &text[k..])),
        // `**/`: no directory, or the `Dirs` after it.
        Token::MaybeDirs => reference(rest, text) || reference(&rest[1..], text),
        Token::Dirs => (1..=text.len()).any(|k| text[k - 1] == b'/' && reference(rest, &text[k..])),
    }
}

fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a", "b", "/", "*", "?", "**", "**/", "[ab]", "[!a]", "\\*",
    ])
}

proptest! {
    #[test]
    fn the_automaton_agrees_with_backtracking(
        pieces in prop::collection::vec(piece(), 1..7),
        text in prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'/', b'*']), 0..10),
    ) {
        let pattern = pieces.concat();
        if let Ok(p) = compile(pattern.as_bytes()) {
            prop_assert_eq!(matches(&p.tokens, &text), reference(&p.tokens, &text));
        }
    }

    #[test]
    fn a_literal_name_matches_itself_alone(
        name in "[a-z.]{1,12}",
        other in "[a-z.]{1,12}",
        dir in "[a-z]{1,5}",
    ) {
        let ex = Excludes::new([&name]).unwrap();
        prop_assert!(ex.excluded(name.as_bytes(), false));
        let deep = format!("{dir}/{name}");
        prop_assert!(ex.excluded(deep.as_bytes(), true));
        prop_assert_eq!(ex.excluded(other.as_bytes(), false), other == name);
    }
}
