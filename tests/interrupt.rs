//! Interrupted transfers and signals: a client killed mid-file leaves the old
//! version intact and no temporary file; the server exits 0 on SIGTERM/SIGINT
//! without leaving partial files, and ignores SIGHUP.

#[macro_use]
mod common;

use std::fs;
use std::net::TcpStream;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

/// Size of the new version: large enough that the transfer cannot finish
/// between our noticing its temp file and stopping the client.
const BIG_MIB: usize = 256;
const OLD_T: T = (1_500_000_000, 111_111_111);

struct Setup {
    srv: Server,
    s: Scratch,
    big: PathBuf,
    old: Vec<u8>,
}

/// A server holding a 1 MiB old version of `data/big.bin`; locally the file
/// has since become `BIG_MIB` MiB.
fn setup() -> Setup {
    let srv = Server::start(&[]);
    let s = scratch();
    fs::create_dir(s.join("data")).unwrap();
    let big = s.join("data/big.bin");
    let old = random_bytes(77, 1 << 20);
    fs::write(&big, &old).unwrap();
    set_mtime(&big, OLD_T);
    srv.client(argv!["backup", big]).run().ok();
    assert_eq!(fs::read(srv.store(NAME, &big)).unwrap(), old);
    write_big(&big, BIG_MIB, 99);
    set_mtime(&big, (1_600_000_000, 2));
    Setup { srv, s, big, old }
}

impl Setup {
    fn stored(&self) -> PathBuf {
        self.srv.store(NAME, &self.big)
    }
    /// The old version is in the store, bytes and mtime.
    fn assert_old_intact(&self) {
        let p = self.stored();
        assert!(fs::read(&p).unwrap() == self.old, "old version damaged");
        let m = fs::metadata(&p).unwrap();
        assert_eq!(
            (m.mtime(), m.mtime_nsec() as u32),
            (OLD_T.0, OLD_T.1),
            "old version's mtime changed"
        );
    }
}

/// Starts backing up the big file and stops (SIGSTOP) the client as soon as
/// the server has received some of the new body into a temporary file next
/// to the old version, so the transfer is frozen mid-file.
fn start_and_freeze(st: &Setup) -> Running {
    let mut run = st
        .srv
        .client(argv!["backup", st.big])
        .timeout(Duration::from_secs(60))
        .spawn();
    let store_dir = st.stored().parent().unwrap().to_path_buf();
    let total = (BIG_MIB as u64) << 20;
    let deadline = Instant::now() + Duration::from_secs(15);
    // A regular temp file with some bytes in it: the body is flowing.
    let receiving = || {
        fs::read_dir(&store_dir).ok()?.flatten().find_map(|e| {
            let m = e.metadata().ok()?;
            let tmp = e.file_name().as_bytes().starts_with(b".rsb-tmp.");
            (tmp && m.is_file() && m.len() > 0).then(|| e.path())
        })
    };
    loop {
        if let Some(tmp) = receiving() {
            run.signal(Signal::SIGSTOP);
            thread::sleep(Duration::from_millis(150));
            let size = fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0);
            assert!(
                size < total - (32 << 20),
                "the transfer was almost done ({size} of {total} bytes) when the client was stopped \
                 (or the temp file is preallocated): cannot test an interruption"
            );
            return run;
        }
        if run.has_exited() {
            panic!(
                "client finished before a partial temp file was seen\n{}",
                run.default_wait()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no partial temp file appeared in {store_dir:?} within 15 s"
        );
        thread::sleep(Duration::from_micros(500));
    }
}

#[test]
fn kill_9_of_the_client_mid_file_keeps_the_old_version() {
    let st = setup();
    let run = start_and_freeze(&st);
    let dir = st.big.parent().unwrap();

    // While the transfer hangs: ls and restore see the old version only.
    let o = st.srv.client(argv!["ls", dir]).run();
    o.ok();
    assert!(!o.out().contains(".rsb-tmp"), "ls shows a temp file\n{o}");
    assert!(
        o.out()
            .lines()
            .any(|l| l.contains(" 1048576 ") && l.ends_with(" big.bin")),
        "{o}"
    );
    let dest = st.s.join("dest");
    st.srv.client(argv!["restore", dir, dest]).run().ok();
    assert!(
        find_tmp(&dest).is_empty(),
        "restore brought back a temp file"
    );
    assert!(
        fs::read(dest.join("big.bin")).unwrap() == st.old,
        "restore during a transfer got the wrong bytes"
    );
    st.assert_old_intact();

    run.kill9();
    assert_no_tmp_soon(&st.srv);
    st.assert_old_intact();
    let o = st.srv.client(argv!["ls", dir]).run();
    assert!(!o.out().contains(".rsb-tmp"), "{o}");

    // A new run completes and replaces it.
    st.srv
        .client_opts(&["-q"], argv!["backup", st.big])
        .timeout(Duration::from_secs(60))
        .run()
        .ok();
    assert!(
        same_content(&st.big, &st.stored()),
        "new version not stored"
    );
}

#[test]
fn sigterm_during_a_transfer_exits_0_and_leaves_no_partial_file() {
    let mut st = setup();
    let run = start_and_freeze(&st);
    st.srv.signal(Signal::SIGTERM);
    let status = st.srv.wait_exit(Duration::from_secs(5));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "server did not exit 0 within 5 s: {status:?}"
    );
    // At most the hidden partial of the big file, kept to resume it.
    let left = find_stray_tmp(st.srv.root());
    assert!(left.is_empty(), "temp files left after SIGTERM: {left:?}");
    assert!(find_tmp(st.srv.root()).len() <= 1);
    st.assert_old_intact();
    drop(run);
}

fn signal_exits_0(sig: Signal) {
    let mut srv = Server::start(&[]);
    let mut idle = Raw::hello(srv.port(), NAME);
    let port = srv.port();
    let start = Instant::now();
    srv.signal(sig);
    let status = srv.wait_exit(Duration::from_secs(5));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{sig:?}: no exit 0 within 5 s: {status:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{sig:?}: slow exit {:?}",
        start.elapsed()
    );
    // The idle client was closed (maybe after an Error), nobody listens.
    idle.expect_closed(Duration::from_secs(2));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still accepting after {sig:?}"
    );
}

#[test]
fn sigterm_exits_0_quickly() {
    signal_exits_0(Signal::SIGTERM);
}

#[test]
fn sigint_exits_0_quickly() {
    signal_exits_0(Signal::SIGINT);
}

#[test]
fn sighup_is_ignored() {
    let mut srv = Server::start(&[]);
    srv.signal(Signal::SIGHUP);
    thread::sleep(Duration::from_millis(300));
    assert!(srv.is_alive(), "server died of SIGHUP");
    assert_healthy(&srv);
    srv.stop();
}
