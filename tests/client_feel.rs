//! What the client tells its user (issue 9, items 14 and 15): summaries
//! that count what really happened, the progress line, Ctrl-C at the
//! prompt, a quiet reconnect after the server's idle timeout, the forms of
//! the remote address, and failures collapsed by cause.

#[macro_use]
mod common;

use std::fs;

use common::*;

/// The last summary line of `cmd` in `stderr`.
fn summary(stderr: &str, cmd: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|l| l.starts_with(&format!("{cmd}:")))
        .unwrap_or_else(|| panic!("no {cmd} summary in:\n{stderr}"))
        .to_string()
}

#[test]
fn skipped_separates_unchanged_from_unsupported_entries() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let mut tree = small_tree(&src, 1);
    // A FIFO is an entry now (issue 10); a reserved name is what is left
    // out and counted.
    tree.fifo("pipe");
    tree.file(".rsb-tmp.mine", b"x", 0o644, (1_600_000_000, 0));
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    let first = summary(&o.err(), "backup");
    assert!(
        first.contains(" and 1 special file sent, 0 unchanged, 1 not supported, 0 failed"),
        "{first}"
    );
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    let again = summary(&o.err(), "backup");
    let expect = format!(
        "backup: 0 files sent, {} unchanged, 1 not supported, 0 failed, 0 bytes",
        tree.files + 1 // and the symlink and the FIFO, less the reserved file
    );
    assert!(again.starts_with(&expect), "{again}\nwanted {expect}");
}

/// The `N files` (regular files) of a summary line.
fn files_of(line: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| matches!(w.trim_end_matches(','), "files" | "file"))
        .unwrap_or_else(|| panic!("no file count in {line}"));
    words[i - 1].parse().unwrap()
}

#[test]
fn backup_and_verify_count_symlinks_the_same_way() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let mut tree = small_tree(&src, 2);
    tree.link("l2", "nowhere", (1_600_000_009, 9));
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    let b = summary(&o.err(), "backup");
    assert!(b.contains(" and 2 symlinks sent,"), "{b}");
    let o = srv.client(argv!["verify", src]).run();
    o.ok();
    let v = summary(&o.err(), "verify");
    assert_eq!(files_of(&b), tree.files as u64, "{b}");
    assert_eq!(files_of(&b), files_of(&v), "backup: {b}\nverify: {v}");
    let dest = s.join("back");
    fs::create_dir(&dest).unwrap();
    let o = srv.client(argv!["restore", src, dest]).run();
    o.ok();
    let r = summary(&o.err(), "restore");
    assert_eq!(files_of(&r), files_of(&v), "restore: {r}\nverify: {v}");
    assert!(r.contains(" and 2 symlinks received,"), "{r}");
}

/// A temporary file with some bytes in it under `dir`: a body is arriving.
fn receiving(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let m = e.metadata().ok()?;
        let tmp = e.file_name().as_bytes().starts_with(b".rsb-tmp.");
        (tmp && m.is_file() && m.len() > 0).then_some(m.len())
    })
}

#[test]
fn an_interrupted_backup_summary_counts_the_bytes_that_moved() {
    use nix::sys::signal::Signal;
    use std::time::{Duration, Instant};
    let srv = Server::start(&[]);
    let s = scratch();
    fs::create_dir(s.join("data")).unwrap();
    let big = s.join("data/big.bin");
    write_big(&big, 256, 5);
    let mut run = srv
        .client(argv!["backup", big])
        .timeout(Duration::from_secs(60))
        .spawn();
    let dir = srv.store(NAME, &s.join("data"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        if let Some(n) = receiving(&dir) {
            run.signal(Signal::SIGSTOP);
            std::thread::sleep(Duration::from_millis(100));
            break receiving(&dir).unwrap_or(n);
        }
        assert!(!run.has_exited(), "finished before it could be interrupted");
        assert!(Instant::now() < deadline, "no body arrived within 20 s");
        std::thread::sleep(Duration::from_micros(500));
    };
    assert!(seen < 200 << 20, "almost done ({seen} bytes): cannot test");
    run.signal(Signal::SIGINT);
    run.signal(Signal::SIGCONT);
    let o = run.wait(Duration::from_secs(20));
    o.code_is(130);
    let line = summary(&o.err(), "backup");
    let moved = summary_bytes(&o.err(), "backup").unwrap();
    assert!(moved >= seen, "{line}: the server had {seen} bytes");
    assert!(line.starts_with("backup: 0 files sent"), "{line}");
}

#[test]
fn host_colon_port_is_accepted_as_the_remote() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 3);
    let hp = format!("127.0.0.1:{}", srv.port());
    Cmd::client()
        .args(argv!["-n", NAME, hp, "backup", src])
        .run()
        .ok();
    assert_same_tree(&src, &srv.store(NAME, &src));
    // The same port again is fine; another one is a usage error.
    Cmd::client()
        .args(argv!["-n", NAME, hp, srv.port().to_string(), "ls"])
        .run()
        .ok();
    let o = Cmd::client().args(argv!["-n", NAME, hp, "1", "ls"]).run();
    o.code_is(2).err_has("two ports given");
}

#[test]
fn bracketed_v6_with_a_port_is_accepted_as_the_remote() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let base = scratch();
    let mut child = Command::new(SERVER)
        .args(["-a", "::1", "-p", "0", "-d"])
        .arg(base.join("root"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut port = None;
    for _ in 0..20 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        port = parse_listening(&line);
        if port.is_some() {
            break;
        }
    }
    let port = port.expect("the server did not say where it listens");
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 4);
    let o = Cmd::client()
        .args(argv!["-n", NAME, format!("[::1]:{port}"), "backup", src])
        .run();
    let _ = child.kill();
    let _ = child.wait();
    o.ok();
    let stored = base
        .join("root")
        .join(NAME)
        .join(src.strip_prefix("/").unwrap());
    assert_same_tree(&src, &stored);
}

/// A prompt session fed line by line, with a pause before each line.
fn paced_session(srv: &Server, lines: &[(&str, std::time::Duration)]) -> (i32, String) {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(CLIENT)
        .args(["-n", NAME, "127.0.0.1", &srv.port().to_string()])
        .env_remove("RSB_SECRET_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for (line, pause) in lines {
        std::thread::sleep(*pause);
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    drop(stdin);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), err)
}

#[test]
fn the_first_command_after_an_idle_timeout_is_not_lost() {
    use std::time::Duration;
    let srv = Server::start(&["-t", "1"]);
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 6);
    let shown = src.display().to_string();
    let backup = format!("backup {shown}");
    let (code, err) = paced_session(
        &srv,
        &[
            ("ls", Duration::ZERO),
            // The server closes the idle connection after 1 s.
            (&backup, Duration::from_millis(2500)),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("backup: 2 files and 1 symlink sent"), "{err}");
    assert_same_tree(&src, &srv.store(NAME, &src));
}

/// A client at a prompt on a terminal (a pty made by util-linux `script`),
/// fed through script's stdin; everything it prints comes back merged.
/// script runs the client through `$SHELL -c`; `exec` makes the client the
/// pty's only process, so a Ctrl-C reaches it alone (dash, /bin/sh on
/// Debian, would otherwise die of the SIGINT itself and script would report
/// 130 for a client that went on).
struct Terminal {
    child: std::process::Child,
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Terminal {
    /// `None` when `script` is missing.
    fn start(client_args: &str) -> Option<Terminal> {
        use std::io::Read;
        use std::process::{Command, Stdio};
        let child = Command::new("script")
            .args([
                "-qefc",
                &format!("exec {CLIENT} {client_args}"),
                "/dev/null",
            ])
            .env_remove("RSB_SECRET_FILE")
            .env("COLUMNS", "60")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cannot run script(1): {e}; skipped");
                return None;
            }
        };
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut so = child.stdout.take().unwrap();
        let o2 = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = so.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o2.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Some(Terminal { child, out })
    }

    fn type_in(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Waits (bounded) until the screen contains `what`.
    fn wait_for(&self, what: &str, timeout: std::time::Duration) -> bool {
        wait_until(timeout, || self.screen().contains(what))
    }

    /// The exit status, waiting at most `timeout`.
    fn wait(&mut self, timeout: std::time::Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

#[test]
fn ctrl_c_during_a_transfer_at_the_prompt_returns_to_the_prompt() {
    use std::time::{Duration, Instant};
    let srv = Server::start(&[]);
    let s = scratch();
    fs::create_dir(s.join("data")).unwrap();
    let big = s.join("data/big.bin");
    write_big(&big, 256, 8);
    let Some(mut term) = Terminal::start(&format!("-n {NAME} 127.0.0.1 {}", srv.port())) else {
        return;
    };
    assert!(term.wait_for("rsb> ", Duration::from_secs(10)), "no prompt");
    term.type_in(format!("backup {}\n", big.display()).as_bytes());
    let dir = srv.store(NAME, &s.join("data"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiving(&dir).is_none() {
        assert!(
            Instant::now() < deadline,
            "no body arrived\n{}",
            term.screen()
        );
        std::thread::sleep(Duration::from_micros(500));
    }
    term.type_in(b"\x03");
    assert!(
        term.wait_for("rsb-client: interrupted", Duration::from_secs(10)),
        "{}",
        term.screen()
    );
    // Back at the prompt, on a new connection: the next command runs.
    std::thread::sleep(Duration::from_millis(300));
    term.type_in(format!("ls {}\n", s.join("data").display()).as_bytes());
    assert!(
        term.wait_for("ls: ", Duration::from_secs(10)),
        "the prompt did not come back\n{}",
        term.screen()
    );
    let screen = term.screen();
    term.type_in(b"quit\n");
    let code = term.wait(Duration::from_secs(10));
    // Nothing of the interrupted file was committed.
    assert!(
        !srv.store(NAME, &big).exists(),
        "a partial file was committed"
    );
    let after = screen.split("rsb-client: interrupted").nth(1).unwrap();
    assert!(after.contains("rsb> "), "{screen}");
    assert!(after.contains("ls: 0 entries"), "{screen}");
    assert_eq!(
        code,
        Some(1),
        "the interrupted command counts as failed\n{screen}"
    );
}

#[test]
fn ctrl_c_one_shot_still_ends_the_client() {
    use std::time::{Duration, Instant};
    let srv = Server::start(&[]);
    let s = scratch();
    fs::create_dir(s.join("data")).unwrap();
    let big = s.join("data/big.bin");
    write_big(&big, 256, 9);
    let Some(mut term) = Terminal::start(&format!(
        "-n {NAME} 127.0.0.1 {} backup {}",
        srv.port(),
        big.display()
    )) else {
        return;
    };
    let dir = srv.store(NAME, &s.join("data"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiving(&dir).is_none() {
        assert!(
            Instant::now() < deadline,
            "no body arrived\n{}",
            term.screen()
        );
        std::thread::sleep(Duration::from_micros(500));
    }
    term.type_in(b"\x03");
    let code = term.wait(Duration::from_secs(10));
    assert_eq!(code, Some(130), "{}", term.screen());
}

#[test]
fn a_full_disk_does_not_flood_the_client_with_one_line_per_file() {
    // Files over the server's RLIMIT_FSIZE fail with EFBIG, as on a full
    // disk: one cause for every file.
    let srv = Server::start_with_file_size_limit(&[], 64 << 10);
    let s = scratch();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let n = 40;
    for i in 0..n {
        fs::write(src.join(format!("f{i:02}")), random_bytes(i, 100_000)).unwrap();
    }
    let o = srv.client(argv!["backup", src]).run();
    o.code_is(1);
    let err = o.err();
    let named = err.lines().filter(|l| l.contains("/src/f")).count();
    assert!(named <= 3, "{named} files named:\n{err}");
    let more = err
        .lines()
        .find(|l| l.contains("... and ") && l.contains(" more files: "))
        .unwrap_or_else(|| panic!("no collapsed line:\n{err}"));
    let counted: usize = more.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert_eq!(named + counted, n as usize, "{err}");
    assert!(
        summary(&err, "backup").contains(&format!(", {n} failed,")),
        "{err}"
    );
}

#[test]
fn the_progress_line_shows_the_total_percentage_eta_and_current_file() {
    use nix::sys::signal::Signal;
    use std::time::{Duration, Instant};
    let srv = Server::start(&[]);
    let s = scratch();
    fs::create_dir(s.join("data")).unwrap();
    let big = s.join("data/big.bin");
    write_big(&big, 256, 10);
    let Some(mut term) = Terminal::start(&format!(
        "-n {NAME} 127.0.0.1 {} backup {}",
        srv.port(),
        big.display()
    )) else {
        return;
    };
    // Hold the transfer up (the server stopped) so that it lasts long
    // enough for the line to be drawn.
    let dir = srv.store(NAME, &s.join("data"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiving(&dir).is_none() {
        assert!(
            Instant::now() < deadline,
            "no body arrived\n{}",
            term.screen()
        );
        std::thread::sleep(Duration::from_micros(500));
    }
    srv.signal(Signal::SIGSTOP);
    std::thread::sleep(Duration::from_millis(1600));
    srv.signal(Signal::SIGCONT);
    let code = term.wait(Duration::from_secs(30));
    let screen = term.screen();
    assert_eq!(code, Some(0), "{screen}");
    let lines: Vec<&str> = screen
        .split('\r')
        .filter(|l| l.contains(" / 256.0 MiB"))
        .collect();
    assert!(!lines.is_empty(), "no progress line:\n{screen:?}");
    for l in &lines {
        let text = l.trim_end_matches("\x1b[K");
        assert!(
            text.chars().count() < 80,
            "wider than the terminal: {text:?}"
        );
        assert!(text.contains('%') && text.contains("ETA "), "{text:?}");
    }
    assert!(
        lines.iter().any(|l| l.contains("big.bin")),
        "no current file: {lines:?}"
    );
    // The summary ends up on a clean line.
    assert!(screen.contains("\r\x1b[Kbackup: 1 file sent"), "{screen:?}");
}
