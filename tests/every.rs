//! Issue 12, `--every DURATION`: the one-shot command runs again at that
//! period, each run starting a period after the start of the one before,
//! never overlapping; the client survives its server going away and ends
//! on SIGTERM with status 0.

#[macro_use]
mod common;

use std::fs;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

#[test]
fn each_run_picks_up_the_changes_since_the_last() {
    let srv = Server::start(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"one").unwrap();
    let client = srv
        .client_opts(&["--every", "1s"], argv!["backup", &src])
        .timeout(Duration::from_secs(60))
        .spawn();
    let stored = srv.store(NAME, &src.join("f"));
    assert!(eventually(Duration::from_secs(10), || fs::read(&stored)
        .is_ok_and(|b| b == b"one")));
    fs::write(src.join("f"), b"two!").unwrap();
    fs::write(src.join("g"), b"new").unwrap();
    assert!(
        eventually(Duration::from_secs(10), || tree_diff(
            &src,
            &srv.store(NAME, &src),
            &[]
        )
        .is_empty()),
        "the next run did not pick up the change"
    );
    client.signal(Signal::SIGTERM);
    let out = client.wait(Duration::from_secs(20));
    out.ok();
    let runs = out
        .err()
        .lines()
        .filter(|l| l.starts_with("backup: "))
        .count();
    assert!(runs >= 2, "{out}");
}

#[test]
fn runs_never_overlap_and_a_late_run_is_one_run() {
    // The first run takes about 3 s (a 6 MiB file at 2 MiB/s), three
    // periods of 1 s: the next run starts when it ends, once, and the runs
    // after it keep the period.
    let srv = Server::start(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    fs::create_dir(&src).unwrap();
    write_big(&src.join("big"), 6, 1);
    let client = srv
        .client_opts(&["--every", "1s", "--bwlimit", "2M"], argv!["backup", &src])
        .timeout(Duration::from_secs(60))
        .spawn();
    std::thread::sleep(Duration::from_secs(6));
    client.signal(Signal::SIGTERM);
    let out = client.wait(Duration::from_secs(20));
    out.ok();
    // Each run's summary ends `... in 1.52s (...)`: its duration.
    let took: Vec<f64> = out
        .err()
        .lines()
        .filter(|l| l.starts_with("backup: "))
        .filter_map(|l| {
            let (_, rest) = l.rsplit_once(" in ")?;
            rest.split('s').next()?.parse().ok()
        })
        .collect();
    assert!(took.len() >= 3, "{out}");
    assert!(
        took[0] >= 1.2,
        "the first run was not slowed down: {took:?}\n{out}"
    );
    assert!(took[1..].iter().all(|&t| t < 0.5), "{took:?}");
    // One after the other: together they fit in the time the client ran;
    // after the slow run, one run at once and then one per period (about
    // four in the 3 s left), not one for each missed period too.
    let total: f64 = took.iter().sum();
    assert!(
        total <= out.elapsed.as_secs_f64() + 0.1,
        "{took:?} in {:?}",
        out.elapsed
    );
    assert!(took.len() <= 6, "a burst of runs: {took:?}");
    fs::read(srv.store(NAME, &src.join("big"))).expect("stored");
}

#[test]
fn the_server_away_means_a_retry_not_an_exit() {
    let tmp = scratch();
    let root = tmp.join("root");
    let src = tmp.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let port = port_of_a_server_gone(&root);
    let mut c = Cmd::client();
    c.args([
        "--every",
        "1m",
        "-n",
        NAME,
        "127.0.0.1",
        &port.to_string(),
        "backup",
    ])
    .arg(&src)
    .timeout(Duration::from_secs(60));
    let mut client = c.spawn();
    std::thread::sleep(Duration::from_secs(2));
    assert!(!client.has_exited(), "gave up on a server that is away");
    let srv = Server::start_on(&root, port, &[]);
    assert!(
        eventually(Duration::from_secs(20), || tree_diff(
            &src,
            &srv.store(NAME, &src),
            &[]
        )
        .is_empty()),
        "the run never went through"
    );
    client.signal(Signal::SIGTERM);
    let out = client.wait(Duration::from_secs(20));
    out.ok().err_has("trying again in");
}

#[test]
fn bad_every_options_are_usage_errors() {
    let srv = Server::start(&[]);
    for (opts, args, msg) in [
        (vec!["--every", "soon"], argv!["ls"], "bad duration"),
        (vec!["--every", "0s"], argv!["ls"], "bad duration"),
        (vec!["--every", "0.001"], argv!["ls"], "too short"),
        (
            vec!["--every", "1m"],
            argv!["watch", "/tmp"],
            "--every repeats a command",
        ),
        (vec!["--every", "1m"], argv![], "--every needs a command"),
    ] {
        srv.client_opts(&opts, args).run().code_is(2).err_has(msg);
    }
}
