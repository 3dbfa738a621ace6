//! `--bwlimit RATE`: a 20 MiB file backed up, then restored, at 5 MiB/s
//! takes the client 4 s, within 10% (unlimited, it takes well under a
//! second on loopback, so the lower bound fails a limit that is ignored),
//! and still arrives whole: verified and committed on the server, the same
//! bytes back. A RATE that is not one is exit 2 before anything connects.

#[macro_use]
mod common;

use std::fs;
use std::time::Duration;

use common::*;

const MIB: u64 = 1 << 20;

/// 20 MiB at 5 MiB/s: 4 s. The bucket starts full (100 ms worth), which
/// the 10% leaves room for, as it does for connecting and the commit.
fn assert_paced(o: &Output) {
    let low = Duration::from_millis(3600);
    let high = Duration::from_millis(4400);
    eprintln!("{}: {:.2?}", o.what, o.elapsed);
    assert!(
        o.elapsed >= low && o.elapsed <= high,
        "20 MiB at 5 MiB/s took {:.2?}, not 4 s +- 10%\n{o}",
        o.elapsed
    );
}

#[test]
fn a_20_mib_backup_and_restore_at_5m_take_4_seconds() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let big = src.join("big");
    write_big(&big, 20, 12);
    assert_eq!(fs::metadata(&big).unwrap().len(), 20 * MIB);

    let o = srv
        .client_opts(&["--bwlimit", "5M"], argv!["backup", src])
        .run();
    o.ok().err_has("backup: 1 file sent");
    assert_paced(&o);
    // Verified (the crc matched) and committed: the stored copy is whole.
    assert!(
        same_content(&big, &srv.store(NAME, &big)),
        "stored copy differs"
    );
    assert_no_tmp_soon(&srv);

    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    let o = srv
        .client_opts(&["--bwlimit=5M"], argv!["restore", big, dest])
        .run();
    o.ok().err_has("restore: 1 file received");
    assert_paced(&o);
    assert!(
        same_content(&big, &dest.join("big")),
        "restored copy differs"
    );
}

#[test]
fn without_a_limit_the_same_backup_is_far_faster() {
    // The other test's lower bound means something only if an unlimited
    // transfer is well under it on this machine.
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    write_big(&src.join("big"), 20, 13);
    let o = srv.client(argv!["backup", src]).run();
    o.ok().err_has("backup: 1 file sent");
    assert!(
        o.elapsed < Duration::from_secs(2),
        "unlimited took {:.2?}\n{o}",
        o.elapsed
    );
}

#[test]
fn a_bad_rate_is_exit_2_before_connecting() {
    // Port 1: nothing listens there, so only the RATE can be the error.
    for bad in [
        "0",
        "0K",
        "5X",
        "5MB",
        "1.5M",
        "-1",
        "",
        "K",
        "99999999999G",
    ] {
        let o = Cmd::client()
            .args(["--bwlimit", bad, "-n", NAME, "127.0.0.1", "1", "ls"])
            .run();
        o.code_is(2)
            .err_has("--bwlimit: bad RATE")
            .err_has(&format!("'{bad}'"));
        assert!(!o.err().contains("connect"), "{o}");
    }
    let o = Cmd::client().args(["--bwlimit"]).run();
    o.code_is(2).err_has("bwlimit");
}
