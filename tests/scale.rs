//! One server process holds 1,000 connected clients at once, and a real
//! backup among them completes; the server's memory stays bounded.
//! (Timings belong to scripts/bench.sh; this checks correctness only.)

#[macro_use]
mod common;

use std::fs;
use std::time::Duration;

use common::*;

const CLIENTS: usize = 1000;

fn vm_rss_kib(pid: nix::unistd::Pid) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

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

    let srv = Server::start(&["-c", "2000"]);
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
