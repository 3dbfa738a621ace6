//! An interrupted large backup or restore resumes where it stopped: after
//! the client is killed, after the server is killed and restarted, and never
//! into a partial whose source changed meanwhile. The summary's byte count shows
//! what was really sent, and the result is verified like a fresh copy.

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

const MIB: usize = 200;

/// Stops `run` (SIGSTOP) as soon as a partial in `dir` holds some bytes:
/// the transfer is then certainly cut off in the middle of a body.
fn stop_when_partial(mut run: Running, dir: &Path, what: &str) -> Running {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if has_partial_with_bytes(dir) {
            run.signal(Signal::SIGSTOP);
            thread::sleep(Duration::from_millis(100));
            return run;
        }
        assert!(
            !run.has_exited(),
            "the {what} finished before it could be interrupted\n{}",
            run.default_wait()
        );
        assert!(Instant::now() < deadline, "no partial appeared in {dir:?}");
        thread::sleep(Duration::from_micros(500));
    }
}

/// Starts a backup of `file` and stops it in the middle of the body.
fn start_and_stop(srv: &Server, file: &Path) -> Running {
    let run = srv
        .client(argv!["backup", file])
        .timeout(Duration::from_secs(60))
        .spawn();
    stop_when_partial(run, srv.store(NAME, file).parent().unwrap(), "backup")
}

/// A backup (`cmd`) or restore that must have resumed: it sent some but not
/// all of the file, the copy equals the source, and no temporary is left.
fn assert_resumed(o: &Output, cmd: &str, file: &Path, copy: &Path, dir: &Path) {
    o.ok();
    let moved = summary_bytes(&o.err(), cmd).unwrap();
    assert!(
        moved > 0 && moved < total(),
        "moved {moved} of {} bytes: not resumed\n{o}",
        total()
    );
    assert!(same_content(file, copy));
    assert!(find_tmp(dir).is_empty(), "left: {:?}", find_tmp(dir));
}

/// A big file (seed `seed`) backed up to `srv`, and an empty destination
/// directory beside it.
fn backed_up_big(srv: &Server, seed: u64) -> (Scratch, PathBuf, PathBuf) {
    let s = scratch();
    let file = s.join("big.bin");
    write_big(&file, MIB, seed);
    srv.client(argv!["backup", file])
        .timeout(Duration::from_secs(60))
        .run()
        .ok();
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    (s, file, dest)
}

fn total() -> u64 {
    (MIB as u64) << 20
}

#[test]
fn a_backup_cut_off_by_killing_the_client_resumes() {
    let srv = Server::start(&[]);
    let s = scratch();
    let file = s.join("big.bin");
    write_big(&file, MIB, 1);
    start_and_stop(&srv, &file).kill9();
    // The partial survives, hidden; nothing is visible under the final name.
    let stored = srv.store(NAME, &file);
    thread::sleep(Duration::from_millis(200));
    assert!(!stored.exists());
    let o = srv
        .client(argv!["backup", file])
        .timeout(Duration::from_secs(60))
        .run();
    assert_resumed(&o, "backup", &file, &stored, srv.root());
}

#[test]
fn a_backup_cut_off_by_killing_the_server_resumes_after_a_restart() {
    let mut srv = Server::start(&[]);
    let s = scratch();
    let file = s.join("big.bin");
    write_big(&file, MIB, 2);
    let run = start_and_stop(&srv, &file);
    srv.signal(Signal::SIGKILL);
    let _ = srv.wait_exit(Duration::from_secs(5));
    drop(run);
    let root = srv.root().to_path_buf();
    let srv2 = Server::start_at(&root, &[]);
    let o = srv2
        .client(argv!["backup", file])
        .timeout(Duration::from_secs(60))
        .run();
    assert_resumed(&o, "backup", &file, &srv2.store(NAME, &file), &root);
}

#[test]
fn a_partial_whose_source_changed_is_discarded_not_resumed() {
    let srv = Server::start(&[]);
    let s = scratch();
    let file = s.join("big.bin");
    write_big(&file, MIB, 3);
    start_and_stop(&srv, &file).kill9();
    thread::sleep(Duration::from_millis(200));
    // Same size, other bytes and mtime.
    write_big(&file, MIB, 4);
    set_mtime(&file, (1_700_000_000, 5));
    let o = srv
        .client(argv!["backup", file])
        .timeout(Duration::from_secs(60))
        .run();
    o.ok();
    assert_summary_bytes(&o, "backup", total());
    assert!(same_content(&file, &srv.store(NAME, &file)));
    assert!(
        find_tmp(srv.root()).is_empty(),
        "stale partial left: {:?}",
        find_tmp(srv.root())
    );
}

/// Starts a restore of `file` into `dest` and stops it in the middle of
/// the body.
fn start_restore_and_stop(srv: &Server, file: &Path, dest: &Path) -> Running {
    let run = srv
        .client(argv!["restore", file, dest])
        .timeout(Duration::from_secs(60))
        .spawn();
    stop_when_partial(run, dest, "restore")
}

#[test]
fn a_restore_cut_off_by_killing_the_client_resumes() {
    let srv = Server::start(&[]);
    let (_s, file, dest) = backed_up_big(&srv, 5);
    start_restore_and_stop(&srv, &file, &dest).kill9();
    assert!(!dest.join("big.bin").exists(), "a partial file is visible");
    let o = srv
        .client(argv!["restore", file, dest])
        .timeout(Duration::from_secs(60))
        .run();
    assert_resumed(&o, "restore", &file, &dest.join("big.bin"), &dest);
}

#[test]
fn a_restore_cut_off_by_killing_the_server_resumes_after_a_restart() {
    let mut srv = Server::start(&[]);
    let (_s, file, dest) = backed_up_big(&srv, 6);
    let run = start_restore_and_stop(&srv, &file, &dest);
    srv.signal(Signal::SIGKILL);
    let _ = srv.wait_exit(Duration::from_secs(5));
    drop(run);
    let srv2 = Server::start_at(srv.root(), &[]);
    let o = srv2
        .client(argv!["restore", file, dest])
        .timeout(Duration::from_secs(60))
        .run();
    assert_resumed(&o, "restore", &file, &dest.join("big.bin"), &dest);
}

#[test]
fn a_restore_partial_of_an_older_version_is_discarded() {
    let srv = Server::start(&[]);
    let (_s, file, dest) = backed_up_big(&srv, 7);
    start_restore_and_stop(&srv, &file, &dest).kill9();
    // The server's copy changes before the restore is tried again.
    write_big(&file, MIB, 8);
    set_mtime(&file, (1_700_000_000, 9));
    srv.client(argv!["backup", file])
        .timeout(Duration::from_secs(60))
        .run()
        .ok();
    let o = srv
        .client(argv!["restore", file, dest])
        .timeout(Duration::from_secs(60))
        .run();
    o.ok();
    assert_summary_bytes(&o, "restore", total());
    assert!(same_content(&file, &dest.join("big.bin")));
    assert!(
        find_tmp(&dest).is_empty(),
        "stale partial left: {:?}",
        find_tmp(&dest)
    );
}
