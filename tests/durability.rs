//! A commit is durable on every file system: with `--sync fsync` the
//! server fsyncs each staged file and each directory it changed and never
//! relies on `syncfs` (which FUSE and network file systems accept without
//! flushing anything); with `--sync syncfs` it flushes the file system.
//! Checked on the system calls themselves, under `strace`.

#[macro_use]
mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// The fsync and syncfs calls the server makes during one backup of
/// `tree` (20 files in 5 directories), or None without strace.
fn calls_during_a_backup(mode: &str) -> Option<(usize, usize)> {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("strace is not installed: skipped");
        return None;
    }
    let srv = Server::start(&["--sync", mode]);
    let s = scratch();
    let src = s.join("src");
    let mut t = Tree::new(&src, 0o755, (1_600_000_000, 0));
    for d in 0..4 {
        t.dir(format!("d{d}"), 0o755, (1_600_000_000, 0));
        for f in 0..5 {
            t.file(format!("d{d}/f{f}"), b"data", 0o644, (1_600_000_000, 0));
        }
    }
    t.finish();
    let out = s.join("trace");
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=fsync,syncfs", "-o"])
        .arg(&out)
        .arg("-p")
        .arg(srv.pid().to_string())
        .spawn()
        .expect("strace");
    // strace writes nothing until a call is made: give it time to attach
    // to every thread.
    std::thread::sleep(Duration::from_millis(700));
    srv.client(argv!["backup", src]).run().ok();
    std::thread::sleep(Duration::from_millis(200));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(strace.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let _ = strace.wait();
    let trace = std::fs::read_to_string(&out).unwrap_or_default();
    let count = |call: &str| trace.lines().filter(|l| l.contains(call)).count();
    let fsyncs = count(" fsync(");
    let syncfs = count(" syncfs(");
    srv.stop();
    Some((fsyncs, syncfs))
}

#[test]
fn the_fsync_mode_never_trusts_syncfs_and_syncs_each_file_and_directory() {
    let Some((fsyncs, syncfs)) = calls_during_a_backup("fsync") else {
        return;
    };
    // 20 files; the tree's root, its 4 directories and their ancestors.
    assert!(fsyncs >= 20 + 5, "{fsyncs} fsync calls");
    assert_eq!(syncfs, 0);
    let Some((fsyncs, syncfs)) = calls_during_a_backup("syncfs") else {
        return;
    };
    assert_eq!(fsyncs, 0);
    assert!(syncfs >= 2, "{syncfs} syncfs calls");
}

#[test]
fn an_unknown_sync_mode_is_a_usage_error() {
    let o = Cmd::server()
        .args(["-d", "/nonexistent", "--sync", "maybe"])
        .run();
    o.code_is(2).err_has("--sync");
}
