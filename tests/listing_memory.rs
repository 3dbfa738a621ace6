//! Listings and restores of a huge directory by clients that never read:
//! the server's memory stays bounded and other clients stay served.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;
use rsb::proto::Frame;

/// Entries in the directory, and the length of their names.
const ENTRIES: usize = 100_000;
const NAME_LEN: usize = 200;
/// Connections that ask for it and never read.
const READERS: usize = 32;

/// Regression (issue 9 item 7): each `ls`/restore read the whole directory
/// into memory, so 32 connections listing 100,000 long names and never
/// reading cost the server about 800 MB. Now the directory is read a chunk
/// at a time, and no further while the client does not read.
#[test]
fn listings_of_a_huge_directory_by_clients_that_never_read_keep_server_memory_bounded() {
    let srv = Server::start(&[]);
    // A first connection makes the namespace; the directory is put there
    // by hand (a backup of it would take far longer).
    Raw::hello(srv.port(), NAME);
    let big = srv.ns(NAME).join("big");
    fs::create_dir_all(&big).unwrap();
    let made = Instant::now();
    let stem = "x".repeat(NAME_LEN - 6);
    for i in 0..ENTRIES {
        fs::File::create(big.join(format!("{stem}{i:06}"))).unwrap();
        assert!(
            made.elapsed() < Duration::from_secs(120),
            "creating the directory"
        );
    }
    let small = srv.ns(NAME).join("small");
    fs::create_dir_all(&small).unwrap();
    fs::write(small.join("f"), b"x").unwrap();

    let before = vm_rss_kib(srv.pid());
    let mut held = Vec::new();
    for i in 0..READERS {
        let mut r = Raw::hello(srv.port(), NAME);
        let path = wpath("big");
        r.send(&if i % 4 == 3 {
            Frame::Restore { id: 1, path }
        } else {
            Frame::List { id: 1, path }
        });
        held.push(r);
    }
    // Let the server do all it will for them (it stops once their socket
    // buffers are full), then measure.
    std::thread::sleep(Duration::from_secs(2));
    let after = vm_rss_kib(srv.pid());
    let grown_mib = after.saturating_sub(before) / 1024;
    eprintln!("server VmRSS {before} KiB before, {after} KiB with {READERS} stalled listings");
    assert!(
        grown_mib < 64,
        "the server grew by {grown_mib} MiB for {READERS} stalled listings"
    );

    // Another client is served at once, meanwhile.
    let t = Instant::now();
    let o = srv
        .client(["ls", "/small"])
        .timeout(Duration::from_secs(10))
        .run();
    o.ok();
    assert!(o.out().contains(" f"), "{}", o.out());
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "ls took {:?} beside the stalled listings",
        t.elapsed()
    );
    drop(held);
}

/// `ls` prints a listing sorted by name, though the server sends it in
/// directory order.
#[test]
fn ls_prints_a_large_directory_sorted_by_name() {
    let srv = Server::start(&[]);
    Raw::hello(srv.port(), NAME);
    let d = srv.ns(NAME).join("d");
    fs::create_dir_all(&d).unwrap();
    let mut names: Vec<String> = (0..3000)
        .map(|i| format!("{:x}", i * 7919 % 3001))
        .collect();
    for n in &names {
        fs::write(d.join(n), b"").unwrap();
    }
    let o = srv.client(["ls", "/d"]).run();
    o.ok();
    let shown: Vec<String> = o
        .out()
        .lines()
        .filter_map(|l| l.rsplit(' ').next().map(str::to_string))
        .collect();
    names.sort();
    assert_eq!(shown, names);
}
