//! Bad usage, failures and refusals: exit codes and messages of both binaries.

#[macro_use]
mod common;

use std::fs;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use rsb::proto::{ErrorCode, Frame};

// ---------------------------------------------------------------- server usage

#[test]
fn server_bad_usage_exits_2_with_usage() {
    let s = scratch();
    let dir = s.join("root");
    let d = dir.to_str().unwrap();
    for args in [
        vec!["--bogus", "-d", d],
        vec!["-x", "-d", d],
        vec![],
        vec!["-p", "1234"],
        vec!["-d", d, "-p", "99999"],
        vec!["-d", d, "-p", "port"],
        vec!["-d", d, "-c", "many"],
        vec!["-d", d, "-t", "-1"],
        vec!["-d", d, "extra-argument"],
    ] {
        let o = Cmd::server()
            .args(&args)
            .timeout(Duration::from_secs(5))
            .run();
        o.code_is(2).err_has("rsb-server: ").err_has("usage:");
        assert!(!dir.exists(), "{args:?} created the root anyway");
    }
}

#[test]
fn server_help_and_version() {
    let o = Cmd::server()
        .arg("-h")
        .timeout(Duration::from_secs(5))
        .run();
    o.ok();
    assert!(o.out().to_lowercase().contains("usage"), "{o}");
    o.out_has("--dir")
        .out_has("--read-only")
        .out_has("--max-clients")
        .out_has("--idle-timeout");
    let o = Cmd::server()
        .arg("--help")
        .timeout(Duration::from_secs(5))
        .run();
    o.ok();
    let o = Cmd::server()
        .arg("-V")
        .timeout(Duration::from_secs(5))
        .run();
    o.ok();
    assert_eq!(o.out().trim(), "rsb-server 0.1.0", "{o}");
    let o = Cmd::server()
        .arg("--version")
        .timeout(Duration::from_secs(5))
        .run();
    assert_eq!(o.out().trim(), "rsb-server 0.1.0", "{o}");
}

#[test]
fn server_that_cannot_bind_exits_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let s = scratch();
    let o = Cmd::server()
        .args(argv!["-a", "127.0.0.1", "-p", port, "-d", s.join("root")])
        .timeout(Duration::from_secs(5))
        .run();
    o.code_is(1).err_has("rsb-server: ");
}

#[test]
fn server_that_cannot_create_its_root_exits_1() {
    let s = scratch();
    fs::write(s.join("file"), "not a dir").unwrap();
    let o = Cmd::server()
        .args(argv![
            "-a",
            "127.0.0.1",
            "-p",
            "0",
            "-d",
            s.join("file/root")
        ])
        .timeout(Duration::from_secs(5))
        .run();
    o.code_is(1).err_has("file/root");
}

// ---------------------------------------------------------------- client usage

#[test]
fn client_bad_usage_exits_2() {
    let srv = Server::start(&[]);
    let port = srv.port().to_string();
    for args in [
        argv!["--bogus", "127.0.0.1", port],
        argv![],
        argv!["-n"],
        argv!["127.0.0.1", "99999", "ls"],
        argv!["-n", NAME, "127.0.0.1", port, "restore"],
    ] {
        let o = Cmd::client()
            .args(&args)
            .timeout(Duration::from_secs(10))
            .run();
        o.code_is(2).err_has("rsb-client");
    }
}

#[test]
fn client_help_and_version() {
    let o = Cmd::client()
        .arg("-h")
        .timeout(Duration::from_secs(5))
        .run();
    o.ok();
    assert!(o.out().to_lowercase().contains("usage"), "{o}");
    o.out_has("--name");
    let o = Cmd::client()
        .arg("-V")
        .timeout(Duration::from_secs(5))
        .run();
    o.ok();
    assert_eq!(o.out().trim(), "rsb-client 0.1.0", "{o}");
}

#[test]
fn invalid_client_names_exit_2() {
    let srv = Server::start(&[]);
    let long = "x".repeat(65);
    for name in [
        "../x",
        "",
        "..",
        ".",
        "a/b",
        long.as_str(),
        "a b",
        "é",
        "/abs",
    ] {
        let o = srv
            .client_as(name, argv!["ls"])
            .timeout(Duration::from_secs(10))
            .run();
        o.code_is(2).err_has("invalid name");
    }
    // Nothing was created for them, inside or next to the root.
    assert_only_root(&srv);
    let created: Vec<_> = fs::read_dir(srv.root())
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        created.is_empty(),
        "namespaces created for invalid names: {created:?}"
    );
    // 64 characters is fine.
    let ok = "y".repeat(64);
    srv.client_as(&ok, argv!["ls"]).run().ok();
}

#[test]
fn closed_port_exits_2_quickly() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let o = Cmd::client()
        .args(argv!["-n", NAME, "127.0.0.1", port.to_string(), "ls"])
        .timeout(Duration::from_secs(12))
        .run();
    o.code_is(2).err_has("cannot connect");
    assert!(o.elapsed < Duration::from_secs(10), "took {:?}", o.elapsed);
}

// ---------------------------------------------------------------- failures

#[test]
fn missing_local_file_is_named_and_exits_1() {
    let srv = Server::start(&[]);
    let s = scratch();
    let good = s.join("good");
    small_tree(&good, 1);
    let missing = s.join("no such file");
    let o = srv.client(argv!["backup", missing, good]).run();
    o.code_is(1).err_has(&missing.to_string_lossy());
    // The rest of the command still happened.
    assert_same_tree(&good, &srv.store(NAME, &good));
}

#[test]
fn unreadable_file_is_named_and_the_rest_is_stored() {
    // Root reads everything regardless of mode, so make the failure another
    // way: a file that vanishes is indistinguishable from missing; use a
    // directory we cannot list only when not root.
    if nix::unistd::geteuid().is_root() {
        eprintln!("running as root: mode 000 does not stop reads; skipped");
        return;
    }
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 2);
    fs::write(src.join("locked"), "x").unwrap();
    chmod(&src.join("locked"), 0o000);
    let o = srv.client(argv!["backup", src]).run();
    o.code_is(1).err_has(&src.join("locked").to_string_lossy());
    assert!(srv.store(NAME, &src.join("a.txt")).exists());
}

#[test]
fn restore_of_a_path_not_on_the_server_exits_1() {
    let srv = Server::start(&[]);
    let s = scratch();
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    let o = srv.client(argv!["restore", "/never/backed/up", dest]).run();
    o.code_is(1).err_has("/never/backed/up");
    assert!(
        fs::read_dir(&dest).unwrap().next().is_none(),
        "restore created something"
    );
}

#[test]
fn read_only_server_refuses_backup_but_lists_and_restores() {
    let base = scratch();
    let root = base.join("root");
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 3);
    {
        let srv = Server::start_at(&root, &[]);
        srv.client(argv!["backup", src]).run().ok();
        srv.stop();
    }
    let srv = Server::start_at(&root, &["-r"]);
    let other = s.join("other");
    small_tree(&other, 4);
    let o = srv.client(argv!["backup", other]).run();
    o.code_is(1).err_has("read-only");
    assert!(
        !srv.store(NAME, &other).exists(),
        "read-only server stored a backup"
    );
    srv.client(argv!["ls", src]).run().ok().out_has("a.txt");
    let dest = s.join("dest");
    srv.client(argv!["restore", src, dest]).run().ok();
    assert_same_tree(&src, &dest);
    // Welcome says read-only (flag bit 0).
    let mut raw = Raw::connect(srv.port());
    raw.send(&hello(NAME));
    match raw.expect_frame(Duration::from_secs(5)) {
        Frame::Welcome { flags, .. } => assert_eq!(flags & 1, 1, "read-only bit not set"),
        f => panic!("expected Welcome, got {f:?}"),
    }
}

#[test]
fn max_clients_turns_the_next_client_away_as_busy() {
    let srv = Server::start(&["-c", "1"]);
    let held = Raw::hello(srv.port(), "holder");
    let o = srv
        .client(argv!["ls"])
        .timeout(Duration::from_secs(10))
        .run();
    o.code_is(2).err_has("server busy");
    drop(held);
    // Once the slot is free, clients are served again.
    let served = wait_until(Duration::from_secs(5), || {
        srv.client(argv!["ls"])
            .timeout(Duration::from_secs(5))
            .run()
            .code()
            == Some(0)
    });
    assert!(
        served,
        "server still refuses after the held connection closed"
    );
}

#[test]
fn idle_connection_is_closed_after_the_timeout() {
    let srv = Server::start(&["-t", "1"]);
    let mut raw = Raw::hello(srv.port(), NAME);
    let start = Instant::now();
    let frames = raw.expect_closed(Duration::from_secs(6));
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "closed too early: {:?}",
        start.elapsed()
    );
    for f in &frames {
        assert!(
            matches!(
                f,
                Frame::Error {
                    code: ErrorCode::Timeout,
                    ..
                }
            ),
            "unexpected frame {f:?}"
        );
    }
    assert_healthy(&srv);
}

#[test]
fn connection_without_hello_is_closed_within_10s() {
    let srv = Server::start(&[]);
    let mut silent = Raw::connect(srv.port());
    let mut slow = Raw::connect(srv.port());
    slow.send_raw(&common::raw_hello(b"RSB\0", rsb::proto::VERSION, NAME.as_bytes(), 0)[..3])
        .unwrap();
    let start = Instant::now();
    silent.expect_closed(Duration::from_secs(13));
    slow.expect_closed(Duration::from_secs(13).saturating_sub(start.elapsed()));
    assert_healthy(&srv);
}
