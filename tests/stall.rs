//! The loop never waits for the disk: a commit (which syncs the file
//! system, seconds for a large file on a real disk) runs on a worker
//! thread while the loop goes on serving everybody else.
//!
//! `RSB_TEST_COMMIT_DELAY_MS` makes every commit of the server under test
//! that much slower, like a slow disk would.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::*;

const DELAY_MS: u64 = 3000;

#[test]
fn a_slow_commit_does_not_stall_other_clients() {
    let srv = Server::start_with_env(&["-v"], &[("RSB_TEST_COMMIT_DELAY_MS", "3000")]);
    let s = scratch();
    let big = s.join("big");
    std::fs::create_dir_all(&big).unwrap();
    write_big(&big.join("f"), 8, 1);
    let t0 = Instant::now();
    let mut slow = srv.client_as("slow", argv!["backup", big]).spawn();
    // Wait until the slow client's data is in and its commit is under way.
    let committing = |log: &str| {
        log.lines()
            .any(|l| l.contains("slow (127.0.0.1") && l.contains(": committing "))
    };
    assert!(
        wait_until(Duration::from_secs(10), || committing(&srv.log())),
        "{}",
        srv.log()
    );

    // Meanwhile another client lists, prompt after prompt.
    let mut longest = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        srv.client_as("quick", argv!["ls"]).run().ok();
        longest = longest.max(t.elapsed());
    }
    let still_committing = !slow.has_exited() && !srv.log().contains("backup committed");
    assert!(
        longest < Duration::from_millis(1000),
        "an ls took {longest:?} while another client's commit was being made durable"
    );
    assert!(
        still_committing,
        "the slow commit ended before the other client was done: the test proves nothing"
    );
    let slow = slow.default_wait();
    slow.ok();
    let slow_took = t0.elapsed();
    assert!(
        slow_took >= Duration::from_millis(DELAY_MS),
        "the commit was not slowed down ({slow_took:?}): the test proves nothing"
    );
    // Two commits at once run side by side, not one after the other.
    let small = s.join("small");
    small_tree(&small, 1);
    let t = Instant::now();
    let a = srv.client_as("a", argv!["backup", small]).spawn();
    let b = srv.client_as("b", argv!["backup", small]).spawn();
    a.default_wait().ok();
    b.default_wait().ok();
    assert!(
        t.elapsed() < Duration::from_millis(2 * DELAY_MS),
        "two commits took {:?}: they waited for each other",
        t.elapsed()
    );
}

/// Four clients verify in a loop, each verify holding a worker thread for
/// 1.5 s (`RSB_TEST_VERIFY_DELAY_MS`, as a verify of a big tree would);
/// another client's backups (a commit each) still finish quickly: commits
/// never queue behind verifies.
#[test]
fn commits_never_wait_behind_verifies() {
    let srv = Server::start_with_env(&[], &[("RSB_TEST_VERIFY_DELAY_MS", "1500")]);
    let s = scratch();
    let small = s.join("small");
    small_tree(&small, 1);
    for n in 0..4 {
        srv.client_as(&format!("v{n}"), argv!["backup", small])
            .run()
            .ok();
    }
    let t = Instant::now();
    srv.client_as("v0", argv!["verify"]).run().ok();
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "the verify was not slowed down: the test proves nothing"
    );
    // Four verifies at once, each in a loop of two.
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let port = srv.port();
    let loops: Vec<_> = (0..4)
        .map(|n| {
            let finished = finished.clone();
            std::thread::spawn(move || {
                for _ in 0..2 {
                    let mut c = Cmd::client();
                    c.args(["-q", "-n", &format!("v{n}"), "127.0.0.1"])
                        .arg(port.to_string())
                        .arg("verify")
                        .timeout(Duration::from_secs(30));
                    c.run().ok();
                    finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut longest = Duration::ZERO;
    for k in 0..3 {
        let t = Instant::now();
        std::fs::write(small.join("a.txt"), format!("round {k}\n")).unwrap();
        srv.client_as("busy", argv!["backup", small]).run().ok();
        longest = longest.max(t.elapsed());
    }
    let done_before = finished.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        longest < Duration::from_millis(1000),
        "a backup took {longest:?} while four verifies ran"
    );
    assert_eq!(
        done_before, 0,
        "a verify ended before the backups: the test proves nothing"
    );
    for l in loops {
        l.join().unwrap();
    }
    assert_eq!(finished.load(std::sync::atomic::Ordering::SeqCst), 8);
}

/// The number of temporary (staged) and final names directly in `dir`.
/// Before its first commit a new directory is built hidden (under a
/// `.rsb-tmp.*` name in the nearest directory that exists), and every
/// file in what is built counts as staged.
fn staged_and_stored(dir: &std::path::Path) -> (usize, usize) {
    use std::os::unix::ffi::OsStrExt;
    if !dir.exists() {
        let mut up = dir;
        while !up.exists() {
            up = up.parent().unwrap();
        }
        let staged = std::fs::read_dir(up)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().as_bytes().starts_with(b".rsb-tmp.") && e.path().is_dir())
            .map(|e| files_beneath(&e.path()))
            .sum();
        return (staged, 0);
    }
    let (mut staged, mut stored) = (0, 0);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().as_bytes().starts_with(b".rsb-tmp.") {
            staged += 1;
        } else {
            stored += 1;
        }
    }
    (staged, stored)
}

/// The files beneath `dir`, at any depth.
fn files_beneath(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => files_beneath(&e.path()),
            _ => 1,
        })
        .sum()
}

/// Waits (at most `within`) until more than one batch (1,024 files) is
/// staged in `dir` while none is committed: the second batch arrived
/// while the first was being committed. `Err` with the most files seen
/// staged before the first commit was done.
fn wait_overlap(dir: &std::path::Path, within: Duration) -> Result<(), usize> {
    let mut most = 0;
    let overlapped = wait_until(within, || {
        let (staged, committed) = staged_and_stored(dir);
        if committed == 0 {
            most = most.max(staged);
        }
        committed == 0 && staged > 1024
    });
    if overlapped {
        Ok(())
    } else {
        Err(most)
    }
}

/// A tree of 2,500 small files of `size` bytes in one directory: three
/// batches of the client's (a commit every 1,024 entries).
fn many_files(dir: &std::path::Path, size: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..2500 {
        let mut body = format!("file {i}\n").into_bytes();
        body.resize(size.max(body.len()), b'.');
        std::fs::write(dir.join(format!("f{i:04}")), body).unwrap();
    }
}

/// A connection reads its next batch while its last commit is made
/// durable: with every commit slowed to 1.5 s, more than the first
/// batch's 1,024 files are staged before any is committed (a server that
/// waited for each commit holds exactly 1,024 then). The backup then ends
/// whole, every file in place, nothing temporary left.
#[test]
fn the_next_batch_is_staged_while_a_commit_is_made_durable() {
    let srv = Server::start_with_env(&[], &[("RSB_TEST_COMMIT_DELAY_MS", "1500")]);
    let s = scratch();
    let src = s.join("many");
    many_files(&src, 10);
    let stored = srv.store("many", &src);
    let client = srv.client_as("many", argv!["backup", src]).spawn();
    if let Err(most) = wait_overlap(&stored, Duration::from_secs(20)) {
        panic!("at most {most} files were staged before the first commit was done");
    }
    client.default_wait().ok();
    assert_same_tree(&src, &stored);
    assert!(find_stray_tmp(&srv.ns("many")).is_empty());
}

/// A client that dies while its batch is committed beside the next one
/// (slowed to 256 KiB/s, so that it is still sending the second batch):
/// the batch out lands whole, each file with its contents, the part of
/// the next one staged meanwhile is removed, nothing temporary stays,
/// and the next run sends the rest.
#[test]
fn a_client_killed_while_its_commit_is_out_leaves_whole_batches_only() {
    let srv = Server::start_with_env(&[], &[("RSB_TEST_COMMIT_DELAY_MS", "1500")]);
    let s = scratch();
    let src = s.join("many");
    many_files(&src, 1024);
    let stored = srv.store(NAME, &src);
    let client = srv
        .client_opts(&["--bwlimit", "256K"], argv!["backup", src])
        .spawn();
    assert!(
        wait_overlap(&stored, Duration::from_secs(30)).is_ok(),
        "the second batch was never staged: the test proves nothing"
    );
    client.kill9();
    // The commit out finishes; the staging of the dead connection goes.
    let settled = wait_until(Duration::from_secs(20), || {
        let (staged, committed) = staged_and_stored(&stored);
        staged == 0 && committed > 0
    });
    let (_, committed) = staged_and_stored(&stored);
    assert!(
        settled && (1000..=1024).contains(&committed),
        "after the kill: {:?} (staged, stored), want the first batch alone",
        staged_and_stored(&stored)
    );
    for e in std::fs::read_dir(&stored).unwrap().flatten() {
        let name = e.file_name();
        assert_eq!(
            std::fs::read(e.path()).unwrap(),
            std::fs::read(src.join(&name)).unwrap(),
            "{name:?}"
        );
    }
    assert!(find_stray_tmp(&srv.ns(NAME)).is_empty());
    srv.client(argv!["backup", src]).run().ok();
    assert_same_tree(&src, &stored);
}

/// A restoring client does the same on a thread of its own: with its
/// commits slowed to 1.5 s, more than the first batch is staged in DEST
/// before any file is in place, and the restore ends whole.
#[test]
fn a_restore_receives_its_next_batch_while_a_commit_is_made_durable() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("many");
    many_files(&src, 10);
    srv.client(argv!["backup", src]).run().ok();
    let dest = s.join("dest");
    std::fs::create_dir(&dest).unwrap();
    let client = srv
        .client(argv!["restore", src, dest])
        .env("RSB_TEST_COMMIT_DELAY_MS", "1500")
        .spawn();
    let into = dest.join("many");
    if let Err(most) = wait_overlap(&into, Duration::from_secs(20)) {
        panic!("at most {most} files were staged before the restore's first commit was done");
    }
    client.default_wait().ok();
    assert_same_tree(&src, &into);
    assert!(find_stray_tmp(&dest).is_empty());
}
