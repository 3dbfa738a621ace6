//! One client must never stall the others or hold the server's resources
//! forever, and the client must stop cleanly when told to. Each test here
//! is the regression test of a defect found in review.

#[macro_use]
mod common;

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;
use rsb::proto::{Frame, Meta, Time, WirePath};

fn wp(s: &str) -> WirePath {
    WirePath::new(s.as_bytes().to_vec()).unwrap()
}

fn m() -> Meta {
    Meta {
        mode: 0o755,
        mtime: Time {
            secs: 1_600_000_000,
            nanos: 0,
        },
        uid: 0,
        gid: 0,
    }
}

#[test]
fn a_flood_of_metadata_does_not_stall_other_clients() {
    let srv = Server::start(&[]);
    let port = srv.port();
    let flood = thread::spawn(move || {
        let mut raw = Raw::hello(port, "flood");
        let mut id = 1;
        let end = Instant::now() + Duration::from_secs(8);
        // Bounded: at most 1,000 rounds of 4,000 directory entries and a
        // commit, for at most 8 s: far more than the server does in that time.
        for _ in 0..1000 {
            if Instant::now() >= end {
                break;
            }
            let mut b = Vec::new();
            for i in 0..4000 {
                b.extend(rsb::proto::codec::to_vec(&Frame::Dir {
                    id,
                    path: wp(&format!("d{i}")),
                    meta: m(),
                }));
                id += 1;
            }
            b.extend(rsb::proto::codec::to_vec(&Frame::Commit { id }));
            id += 1;
            if raw.send_raw(&b).is_err() {
                break;
            }
        }
    });
    thread::sleep(Duration::from_millis(200));
    for _ in 0..3 {
        let t = Instant::now();
        srv.client(argv!["ls"])
            .timeout(Duration::from_secs(10))
            .run()
            .ok();
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "ls took {:?} during the flood",
            t.elapsed()
        );
    }
    flood.join().unwrap();
}

#[test]
fn a_client_that_never_reads_is_dropped_after_the_idle_timeout() {
    let srv = Server::start(&["-t", "1"]);
    let s = scratch();
    let big = s.join("big.bin");
    write_big(&big, 40, 7);
    srv.client(argv!["backup", big]).run().ok();
    let mut raw = Raw::hello(srv.port(), NAME);
    let path = WirePath::from_local(big.to_str().unwrap().as_bytes()).unwrap();
    raw.send(&Frame::Restore { id: 1, path });
    // Never read: the server's socket buffer fills, the restore stalls.
    let dropped = wait_until(Duration::from_secs(15), || {
        srv.log().contains("peer does not read") || srv.log().contains("idle timeout")
    });
    assert!(dropped, "the server kept a stalled reader\n{}", srv.log());
    assert!(
        wait_until(Duration::from_secs(10), || srv
            .log()
            .matches("disconnected")
            .count()
            >= 2),
        "{}",
        srv.log()
    );
    srv.client(argv!["ls"]).run().ok();
    drop(raw);
}

#[test]
fn interrupting_a_restore_leaves_no_temporary_files() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..200 {
        fs::write(src.join(format!("f{i:03}")), random_bytes(i, 2000)).unwrap();
    }
    write_big(&src.join("zz.bin"), 300, 3);
    srv.client(argv!["backup", src]).run().ok();
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    let run = srv.client(argv!["restore", src, dest]).spawn();
    let started = wait_until(Duration::from_secs(20), || !find_tmp(&dest).is_empty());
    assert!(started, "the restore never began");
    run.signal(Signal::SIGINT);
    let o = run.wait(Duration::from_secs(20));
    o.code_is(130).err_has("interrupted");
    // Only the hidden partial of the big file may stay, to be resumed.
    assert!(
        find_stray_tmp(&dest).is_empty(),
        "temporary files left: {:?}",
        find_stray_tmp(&dest)
    );
}

#[test]
fn a_very_deep_tree_round_trips() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    let mut deep = src.clone();
    for _ in 0..1200 {
        deep.push("a");
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("f"), b"deep\n").unwrap();
    srv.client(argv!["backup", src]).run().ok();
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    srv.client(argv!["restore", src, dest]).run().ok();
    assert_eq!(
        fs::read(dest.join(deep.strip_prefix(s.path()).unwrap()).join("f")).unwrap(),
        b"deep\n"
    );
}

#[test]
fn an_absurd_idle_timeout_is_refused() {
    let o = Cmd::server()
        .args(argv![
            "-d",
            scratch().join("r"),
            "-t",
            "18446744073709551615"
        ])
        .run();
    o.code_is(2).err_has("-t");
}

#[test]
fn the_root_is_created_with_its_parents() {
    let s = scratch();
    let root = s.join("a/b/c");
    let srv = Server::start_at(&root, &[]);
    assert!(root.is_dir());
    srv.client(argv!["ls"]).run().ok();
}

#[test]
fn a_read_only_server_creates_nothing_and_lists_an_empty_namespace() {
    let srv = Server::start(&["-r"]);
    srv.client(argv!["ls"]).run().ok();
    srv.client(argv!["restore", "/etc", scratch().path()])
        .run()
        .code_is(1)
        .err_has("not on the server");
    assert_eq!(
        fs::read_dir(srv.root()).unwrap().count(),
        0,
        "a namespace was created"
    );
}
