//! One server process holds 1,000 connected clients at once, and a real
//! backup among them completes; the server's memory stays bounded.
//! (Timings belong to scripts/bench.sh; this checks correctness only.)

#[macro_use]
mod common;

use std::time::Duration;

use common::*;

const CLIENTS: usize = 1000;

#[test]
fn a_thousand_connected_clients_and_a_real_backup_among_them() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    // This process holds 1,000 sockets too.
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if hard < (CLIENTS as u64) + 200 {
        eprintln!(
            "skipped: the open-file limit ({hard}) is below {}",
            CLIENTS + 200
        );
        return;
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard.max(soft), hard).unwrap();

    // Every connection comes from 127.0.0.1: no per-address limit.
    let srv = Server::start(&["-c", "2000", "--max-per-address", "0"]);
    let before = vm_rss_kib(srv.pid());
    let conns: Vec<Raw> = (0..CLIENTS)
        .map(|i| Raw::hello(srv.port(), &format!("idle{i}")))
        .collect();
    let idle = vm_rss_kib(srv.pid());

    let s = scratch();
    let src = s.join("src");
    let tree = small_tree(&src, 11);
    let o = srv
        .client(argv!["backup", src])
        .timeout(Duration::from_secs(30))
        .run();
    o.ok();
    assert_summary_bytes(&o, "backup", tree.bytes);
    assert_same_tree(&src, &srv.store(NAME, &src));

    // Every idle client is still connected and served.
    for (i, mut c) in conns.into_iter().enumerate().step_by(97) {
        c.send(&rsb::proto::Frame::List {
            id: 1,
            path: rsb::proto::WirePath::root(),
        });
        match c.recv(Duration::from_secs(5)) {
            Recv::Frame(rsb::proto::Frame::Done { id: 1 }) => {}
            other => panic!("client {i}: {other:?}"),
        }
    }
    let per_conn = (idle.saturating_sub(before) * 1024) / CLIENTS as u64;
    eprintln!("server RSS: {before} KiB before, {idle} KiB with {CLIENTS} idle clients: {per_conn} bytes each");
    // A connection at rest holds no buffers: about 1.5 KiB measured; the
    // bound leaves room for allocator noise.
    assert!(per_conn < 16 * 1024, "{per_conn} bytes per idle connection");
}

/// 500 idle connections and a few that trickle a frame one byte at a time
/// do not keep a real backup from finishing promptly.
#[test]
fn idle_and_trickling_clients_do_not_hold_up_a_backup() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::Instant;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if hard < 800 {
        eprintln!("skipped: the open-file limit ({hard}) is below 800");
        return;
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard.max(soft), hard).unwrap();
    let srv = Server::start(&["--max-per-address", "0"]);
    let idle: Vec<Raw> = (0..500)
        .map(|i| Raw::hello(srv.port(), &format!("idle{i}")))
        .collect();
    let before = vm_rss_kib(srv.pid());
    // Five clients trickle one byte a second (bounded: 3 s each): two in
    // their Hello, three in a request after it.
    let port = srv.port();
    let trickle: Vec<_> = (0..5)
        .map(|i| {
            std::thread::spawn(move || {
                let name = format!("slow{i}");
                let (mut s, bytes) = if i < 2 {
                    let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
                        return;
                    };
                    (s, rsb::proto::codec::to_vec(&hello(&name)))
                } else {
                    let raw = Raw::hello(port, &name);
                    let list = rsb::proto::codec::to_vec(&rsb::proto::Frame::List {
                        id: 1,
                        path: rsb::proto::WirePath::root(),
                    });
                    (raw.s, list)
                };
                let end = Instant::now() + Duration::from_secs(3);
                for b in bytes {
                    if Instant::now() >= end || s.write_all(&[b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        })
        .collect();
    let s = scratch();
    let src = s.join("src");
    let tree = small_tree(&src, 12);
    let t = Instant::now();
    let o = srv
        .client(argv!["backup", src])
        .timeout(Duration::from_secs(20))
        .run();
    o.ok();
    assert_summary_bytes(&o, "backup", tree.bytes);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the backup took {:?}",
        t.elapsed()
    );
    let during = vm_rss_kib(srv.pid());
    for h in trickle {
        h.join().unwrap();
    }
    drop(idle);
    // What the backup and the stalled frames cost stays small: no
    // buffer grows with time.
    assert!(
        during < before + 16 * 1024,
        "server RSS grew from {before} KiB to {during} KiB"
    );
}
