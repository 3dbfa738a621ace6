//! The client's command reader driven through piped stdin (no terminal, so no
//! prompt), and the `ls` and `help` output.

#[macro_use]
mod common;

use std::fs;

use common::*;

/// Lines of a script, each ending in `\n`.
fn script(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn piped_session_runs_every_command_without_a_prompt() {
    let srv = Server::start(&[]);
    let s = scratch();
    let cwd = s.path();
    small_tree(&s.join("my dir"), 1);
    small_tree(&s.join("a"), 2);
    small_tree(&s.join("b"), 3);
    small_tree(&s.join("rel file dir"), 4);
    small_tree(&s.join("after quit"), 5);
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    let (c, d) = (cwd.display(), dest.display());
    let input = script(&[
        &format!("{c}/my dir"),
        "backup a b",
        "",
        "   ",
        "  rel file dir  ",
        "ls",
        &format!("ls {c}"),
        &format!("restore {c}/a {d}"),
        "help",
        "quit",
        &format!("{c}/after quit"),
    ]);
    let o = srv.client(argv![]).cwd(cwd).stdin(input).run();
    o.ok();
    assert!(
        !o.out().contains("rsb> ") && !o.err().contains("rsb> "),
        "prompt printed without a terminal\n{o}"
    );
    for name in ["my dir", "a", "b", "rel file dir"] {
        assert_same_tree(&s.join(name), &srv.store(NAME, &s.join(name)));
    }
    assert!(
        !srv.store(NAME, &s.join("after quit")).exists(),
        "a command after quit ran"
    );
    assert_same_tree(&s.join("a"), &dest.join("a"));
    // `ls` of the namespace root shows the first component of the tempdir.
    let top = cwd
        .components()
        .nth(1)
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    assert!(
        o.out()
            .lines()
            .any(|l| l.starts_with('d') && l.ends_with(&format!(" {top}"))),
        "ls lacks {top}\n{o}"
    );
    for name in ["my dir", "a", "b", "rel file dir"] {
        assert!(
            o.out()
                .lines()
                .any(|l| l.starts_with('d') && l.ends_with(&format!(" {name}"))),
            "ls lacks {name}\n{o}"
        );
    }
    let all = o.out() + &o.err();
    for word in ["backup", "restore", "ls", "help", "quit"] {
        assert!(all.contains(word), "help does not mention {word}\n{o}");
    }
}

#[test]
fn quotes_and_backslashes_at_the_prompt() {
    let srv = Server::start(&[]);
    let s = scratch();
    for (i, n) in ["q one", "q two", "q three", "it's"].iter().enumerate() {
        small_tree(&s.join(n), i as u64);
    }
    let input = script(&[r#"backup 'q one' "q two" q\ three "it's""#]);
    srv.client(argv![]).cwd(s.path()).stdin(input).run().ok();
    for n in ["q one", "q two", "q three", "it's"] {
        assert_same_tree(&s.join(n), &srv.store(NAME, &s.join(n)));
    }
}

#[test]
fn a_bad_line_is_reported_and_the_session_goes_on() {
    let srv = Server::start(&[]);
    let s = scratch();
    small_tree(&s.join("good"), 1);
    let input = script(&["frobnicate --now", "restore", "backup good", "quit"]);
    let o = srv.client(argv![]).cwd(s.path()).stdin(input).run();
    o.code_is(1);
    o.err_has("frobnicate");
    assert_same_tree(&s.join("good"), &srv.store(NAME, &s.join("good")));
}

#[test]
fn end_of_input_ends_the_session() {
    let srv = Server::start(&[]);
    let s = scratch();
    small_tree(&s.join("x"), 1);
    // No quit, no final newline.
    let o = srv.client(argv![]).cwd(s.path()).stdin("backup x").run();
    o.ok();
    assert_same_tree(&s.join("x"), &srv.store(NAME, &s.join("x")));
    // Empty input: nothing to do, exit 0.
    srv.client(argv![]).stdin("").run().ok();
}

#[test]
fn exit_also_ends_the_session() {
    let srv = Server::start(&[]);
    let s = scratch();
    small_tree(&s.join("y"), 1);
    let o = srv
        .client(argv![])
        .cwd(s.path())
        .stdin(script(&["exit", "backup y"]))
        .run();
    o.ok();
    assert!(
        !srv.store(NAME, &s.join("y")).exists(),
        "a command after exit ran"
    );
}

#[test]
fn help_one_shot() {
    let srv = Server::start(&[]);
    let o = srv.client(argv!["help"]).run();
    o.ok();
    for word in ["backup", "restore", "ls", "quit"] {
        o.out_has(word);
    }
}

/// Splits an `ls` line into its 4 leading fields and the name.
fn fields(line: &str) -> (Vec<&str>, &str) {
    let mut rest = line;
    let mut f = Vec::new();
    for _ in 0..4 {
        rest = rest.trim_start();
        let end = rest.find(' ').unwrap_or(rest.len());
        f.push(&rest[..end]);
        rest = &rest[end..];
    }
    (f, rest.strip_prefix(' ').unwrap_or(rest))
}

#[test]
fn ls_looks_like_ls_dash_l() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let t = (1_000_000_000, 5); // 2001-09-09 01:46:40 UTC
    let mut tree = Tree::new(&src, 0o755, t);
    tree.file("f.txt", &random_bytes(1, 1234), 0o644, t)
        .file("secret", b"s", 0o600, t)
        .dir("d", 0o755, t)
        .link("l", "f.txt", t)
        .file("new\nline", b"", 0o644, t)
        .file(b"bad\xff", b"", 0o644, t)
        .finish();
    srv.client(argv!["backup", src]).run().ok();
    let o = srv.client(argv!["ls", src]).run();
    o.ok();
    let out = o.out();
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 6, "one line per entry expected\n{o}");
    let find = |name: &str| {
        lines
            .iter()
            .map(|l| fields(l))
            .find(|(_, n)| *n == name)
            .unwrap_or_else(|| panic!("no entry named {name:?}\n{o}"))
    };
    let (f, _) = find("f.txt");
    assert_eq!(f, ["-rw-r--r--", "1234", "2001-09-09", "01:46"], "{o}");
    assert_eq!(find("secret").0[0], "-rw-------");
    assert_eq!(find("d").0[0], "drwxr-xr-x");
    assert_eq!(find("l -> f.txt").0[0], "lrwxrwxrwx");
    find(r"new\x0aline");
    assert!(
        lines
            .iter()
            .any(|l| l.to_ascii_lowercase().ends_with(r" bad\xff")),
        "{o}"
    );
    assert!(!out.contains("new\nline"), "raw newline in a name printed");

    // ls of one file shows that file.
    let o = srv.client(argv!["ls", src.join("f.txt")]).run();
    o.ok();
    assert!(
        o.out()
            .lines()
            .any(|l| l.starts_with("-rw-r--r--") && l.contains("1234")),
        "{o}"
    );
}

#[test]
fn ls_of_a_missing_path_fails_naming_it() {
    let srv = Server::start(&[]);
    let o = srv.client(argv!["ls", "/no/such/path"]).run();
    o.code_is(1);
    o.err_has("/no/such/path");
    // The empty namespace itself lists fine (nothing in it).
    srv.client(argv!["ls"]).run().ok();
}

#[test]
fn a_mistyped_one_shot_command_is_unknown_and_backs_up_nothing() {
    let srv = Server::start(&[]);
    let s = scratch();
    small_tree(&s.join("a"), 1);
    small_tree(&s.join("b"), 2);
    let o = srv.client(argv!["restor", s.join("a"), s.join("b")]).run();
    o.code_is(2);
    o.err_has(
        "unknown command 'restor' (did you mean restore?); use 'backup PATH' to back up a path",
    );
    for n in ["a", "b"] {
        assert!(
            !srv.store(NAME, &s.join(n)).exists(),
            "{n} was backed up\n{o}"
        );
    }
    // No suggestion for a word that is no command's typo.
    let o = srv.client(argv!["clear"]).cwd(s.path()).run();
    o.code_is(2);
    o.err_has("unknown command 'clear'; use 'backup PATH'");
}

#[test]
fn an_existing_path_as_the_first_word_is_still_a_backup() {
    let srv = Server::start(&[]);
    let s = scratch();
    // Even one spelled like a typo of a command.
    small_tree(&s.join("lss"), 1);
    small_tree(&s.join("two words"), 2);
    small_tree(&s.join("c"), 3);
    srv.client(argv!["lss", "c"]).cwd(s.path()).run().ok();
    let input = script(&["two words", "backup restor-not-there-but-explicit", "quit"]);
    let o = srv.client(argv![]).cwd(s.path()).stdin(input).run();
    // The explicit form tries whatever it is given: a missing path fails.
    o.code_is(1);
    o.err_has("restor-not-there-but-explicit");
    for n in ["lss", "c", "two words"] {
        assert_same_tree(&s.join(n), &srv.store(NAME, &s.join(n)));
    }
}

#[test]
fn mistyped_prompt_commands_and_escape_sequences_are_unknown_not_paths() {
    let srv = Server::start(&[]);
    let s = scratch();
    small_tree(&s.join("a"), 1);
    small_tree(&s.join("good"), 2);
    let input = script(&["lss", "clear", "\x1b[A", "restor a", "backup good", "quit"]);
    let o = srv.client(argv![]).cwd(s.path()).stdin(input).run();
    o.code_is(1);
    o.err_has("unknown command 'lss' (did you mean ls?)");
    o.err_has("unknown command 'clear'; use 'backup PATH' to back up a path");
    o.err_has("unknown command '\\x1b[A'");
    o.err_has("unknown command 'restor' (did you mean restore?)");
    assert!(
        !srv.store(NAME, &s.join("a")).exists(),
        "a was backed up\n{o}"
    );
    assert_same_tree(&s.join("good"), &srv.store(NAME, &s.join("good")));
    // The session went on after each error line: one per bad line.
    assert_eq!(o.err().matches("unknown command").count(), 4, "{o}");
}

/// A pseudo-terminal: the client's stdin is its slave side, so the client
/// is interactive; the test types into the master side.
struct Pty {
    master: fs::File,
    slave: fs::File,
}

fn pty() -> Pty {
    use nix::libc;
    use std::os::fd::FromRawFd;
    // SAFETY: plain libc calls; each result is checked before use, and the
    // descriptors returned are owned by the Files made from them.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt");
        let master = fs::File::from_raw_fd(m);
        assert_eq!(libc::grantpt(m), 0, "grantpt");
        assert_eq!(libc::unlockpt(m), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_str()
            .unwrap()
            .to_string();
        let slave = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .unwrap();
        Pty { master, slave }
    }
}

use std::os::unix::fs::OpenOptionsExt;

#[test]
fn escape_sequences_typed_at_a_terminal_never_become_paths() {
    use std::io::{Read, Write};
    let srv = Server::start(&[]);
    let s = scratch();
    // Directories named like what arrow keys send: backed up if they were
    // taken as paths.
    for n in ["\x1b[A", "\x1bOB", "lsx"] {
        small_tree(&s.join(n), 1);
    }
    small_tree(&s.join("good"), 2);
    let Pty { mut master, slave } = pty();
    let mut run = srv.client(argv![]).cwd(s.path()).stdin_file(slave).spawn();
    // Up arrow alone, an application-mode down arrow, a left arrow inside a
    // word, then a real command.
    master
        .write_all(b"\x1b[A\n\x1bOB\nls\x1b[Dx\nbackup good\nquit\n")
        .unwrap();
    // Drain the echo so the terminal never blocks the client, until it ends.
    let drain = std::thread::spawn(move || {
        let mut sink = [0u8; 4096];
        while matches!(master.read(&mut sink), Ok(n) if n > 0) {}
    });
    let deadline = std::time::Instant::now() + CLIENT_TIMEOUT;
    while !run.has_exited() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let o = run.wait(std::time::Duration::from_secs(5));
    drop(drain);
    o.ok();
    o.out_has("rsb> ");
    o.err_has("line ignored: it holds terminal escape sequences");
    assert_eq!(o.err().matches("line ignored").count(), 1, "{o}");
    for n in ["\x1b[A", "\x1bOB", "lsx"] {
        assert!(
            !srv.store(NAME, &s.join(n)).exists(),
            "{n:?} was backed up\n{o}"
        );
    }
    assert_same_tree(&s.join("good"), &srv.store(NAME, &s.join("good")));
}
