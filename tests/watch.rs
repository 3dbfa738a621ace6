//! Issue 12, watch mode: `rsb-client HOST PORT watch --delay SECS DIR...`
//! backs DIR up, then keeps the server's copy the same as DIR as it changes
//! (creations, changes, deletions, renames, new trees, modes and times),
//! survives its server going away, and ends on SIGTERM with status 0 and
//! nothing half-sent on the server. Each test waits for the store to match
//! the source, with a bound.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

/// Waits until the store's copy of `src` is `src` exactly, or panics with
/// the differences and the client's output so far.
fn until_same(srv: &Server, src: &Path, limit: Duration, client: Running) -> Running {
    let stored = srv.store(NAME, src);
    if eventually(limit, || tree_diff(src, &stored, &[]).is_empty()) {
        return client;
    }
    let diff = tree_diff(src, &stored, &[]);
    let out = client.kill9();
    panic!(
        "the store never caught up: {diff:#?}\n{out}\nserver:\n{}",
        srv.log()
    );
}

/// `rsb-client -n t 127.0.0.1 PORT watch --delay 0.3 DIR`, running.
fn watch(srv: &Server, dir: &Path) -> Running {
    srv.client_opts(&["-v"], argv!["watch", "--delay", "0.3", dir])
        .timeout(Duration::from_secs(120))
        .spawn()
}

/// Stops a watch with SIGTERM: it must end by itself, status 0, with its
/// summary.
fn stop(client: Running) -> Output {
    client.signal(Signal::SIGTERM);
    let out = client.wait(Duration::from_secs(20));
    out.ok();
    assert!(
        out.err().lines().any(|l| l.starts_with("watch: ")),
        "no summary\n{out}"
    );
    out
}

#[test]
fn every_kind_of_change_reaches_the_server() {
    let srv = Server::start(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    let mut t = Tree::new(&src, 0o755, (1_600_000_000, 0));
    t.dir("a", 0o755, (1_600_000_000, 0))
        .dir("b", 0o755, (1_600_000_000, 0))
        .file("a/keep", b"keep", 0o644, (1_600_000_000, 0))
        .file("a/change", b"old", 0o644, (1_600_000_000, 0))
        .file("a/delete", b"gone soon", 0o644, (1_600_000_000, 0))
        .file("a/rename", b"renamed within", 0o644, (1_600_000_000, 0))
        .file("a/move", b"moved across", 0o644, (1_600_000_000, 0))
        .file("b/mode", b"mode", 0o644, (1_600_000_000, 0))
        .file("b/times", b"times", 0o644, (1_600_000_000, 0))
        .finish();
    let client = watch(&srv, &src);
    let client = until_same(&srv, &src, Duration::from_secs(20), client);

    fs::write(src.join("a/change"), b"new content").unwrap();
    fs::write(src.join("created"), b"created").unwrap();
    fs::remove_file(src.join("a/delete")).unwrap();
    fs::rename(src.join("a/rename"), src.join("a/renamed")).unwrap();
    fs::rename(src.join("a/move"), src.join("b/moved")).unwrap();
    fs::set_permissions(src.join("b/mode"), fs::Permissions::from_mode(0o600)).unwrap();
    set_mtime(&src.join("b/times"), (1_500_000_000, 5));
    // A new tree made and filled at once: most of it is written before its
    // watches can be set up.
    fs::create_dir_all(src.join("new/x/y/z")).unwrap();
    for (i, d) in ["new", "new/x", "new/x/y", "new/x/y/z"].iter().enumerate() {
        for j in 0..20 {
            fs::write(src.join(d).join(format!("f{j}")), format!("{i}-{j}")).unwrap();
        }
    }
    // A directory renamed whole, then written into under its new name.
    fs::rename(src.join("new/x"), src.join("new/x2")).unwrap();
    fs::write(src.join("new/x2/y/late"), b"late").unwrap();
    let client = until_same(&srv, &src, Duration::from_secs(20), client);

    // What was deleted or renamed away is in history (new/x was renamed
    // before the server ever had it: nothing of it to keep).
    let ns = srv.ns(NAME);
    let kept: Vec<String> = batches(&ns).iter().flat_map(|b| index_of(b)).collect();
    for gone in ["a/delete", "a/rename", "a/move"] {
        let p = src.join(gone);
        let p = p.to_string_lossy();
        assert!(
            kept.iter()
                .any(|k| k.trim_start_matches('/') == p.trim_start_matches('/')),
            "{gone} not kept in history: {kept:#?}"
        );
    }
    // Deleting a whole subtree.
    fs::remove_dir_all(src.join("new/x2")).unwrap();
    let client = until_same(&srv, &src, Duration::from_secs(20), client);
    let out = stop(client);
    assert!(
        out.err()
            .lines()
            .any(|l| l.starts_with("rsb-client: watching ")),
        "{out}"
    );
    assert!(!out.err().contains("failed: "), "{out}");
    assert_healthy(&srv);
}

#[test]
fn a_file_being_rewritten_is_sent_once_it_settles_and_never_half_written() {
    let srv = Server::start(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    fs::create_dir(&src).unwrap();
    let file = src.join("busy");
    // Each version is 64 KiB of one byte value: a half-written one has two.
    let version = |v: u8| vec![b'a' + v % 26; 64 << 10];
    fs::write(&file, version(0)).unwrap();
    let client = srv
        .client(argv!["watch", "--delay", "1", &src])
        .timeout(Duration::from_secs(120))
        .spawn();
    let client = until_same(&srv, &src, Duration::from_secs(20), client);
    let stored = srv.store(NAME, &file);
    let whole = |p: &Path| {
        fs::read(p).map_or(true, |b| {
            b.len() == 64 << 10 && b.iter().all(|&c| c == b[0])
        })
    };
    // Rewritten in place, in pieces, ten times a second for five seconds.
    let start = Instant::now();
    let mut v = 1u8;
    while start.elapsed() < Duration::from_secs(5) {
        let body = version(v);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&file)
            .unwrap();
        for chunk in body.chunks(8 << 10) {
            std::io::Write::write_all(&mut f, chunk).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(f);
        assert!(whole(&stored), "the store holds a half-written version");
        v += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let last = version(v - 1);
    assert!(
        eventually(Duration::from_secs(4), || fs::read(&stored).ok().as_ref()
            == Some(&last)),
        "the settled version never arrived"
    );
    // Every version the server kept is whole too.
    for b in batches(&srv.ns(NAME)) {
        let kept = b.join(file.strip_prefix("/").unwrap());
        assert!(whole(&kept), "{kept:?} is half-written");
    }
    stop(client);
}

#[test]
fn the_server_killed_and_restarted_while_changes_keep_coming() {
    let tmp = scratch();
    let root = tmp.join("root");
    let src = tmp.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("first"), b"1").unwrap();
    let srv = Server::start_at(&root, &[]);
    let port = srv.port();
    let client = watch(&srv, &src);
    let client = until_same(&srv, &src, Duration::from_secs(20), client);
    drop(srv); // killed
    for i in 0..30 {
        fs::write(src.join(format!("while-away-{i}")), format!("{i}")).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    fs::remove_file(src.join("first")).unwrap();
    // Away for a few backoff rounds.
    std::thread::sleep(Duration::from_secs(3));
    let mut client = client;
    assert!(
        !client.has_exited(),
        "the watch ended when its server went away"
    );
    let srv = Server::start_on(&root, port, &[]);
    fs::write(src.join("after"), b"after").unwrap();
    let client = until_same(&srv, &src, Duration::from_secs(40), client);
    let out = stop(client);
    out.err_has("trying again in");
}

#[test]
fn sigterm_mid_batch_leaves_nothing_half_sent() {
    let srv = Server::start(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("small"), b"small").unwrap();
    let client = watch(&srv, &src);
    let client = until_same(&srv, &src, Duration::from_secs(20), client);
    // A big file: its batch takes a while; SIGTERM lands during it.
    write_big(&src.join("big"), 512, 7);
    let stored = srv.store(NAME, &src.join("big"));
    let partial_seen = eventually(Duration::from_secs(10), || {
        find_tmp(&srv.ns(NAME))
            .iter()
            .any(|p| is_partial(p) || p.exists())
            && !stored.exists()
    });
    client.signal(Signal::SIGTERM);
    let out = client.wait(Duration::from_secs(20));
    out.ok();
    // The big file is either whole on the server or not there at all.
    if stored.exists() {
        assert!(
            same_content(&src.join("big"), &stored),
            "half a file stored"
        );
    } else {
        assert!(partial_seen, "SIGTERM did not land mid-batch\n{out}");
    }
    assert_healthy(&srv);
}

#[test]
fn a_path_that_cannot_be_watched_is_a_usage_error() {
    let srv = Server::start(&[]);
    let tmp = scratch();
    fs::write(tmp.join("file"), b"x").unwrap();
    srv.client(argv!["watch", tmp.join("file")])
        .run()
        .code_is(2)
        .err_has("not a directory");
    srv.client(argv!["watch", tmp.join("missing")])
        .run()
        .code_is(2);
    srv.client(argv!["watch", "--delay", "soon", tmp.path()])
        .run()
        .code_is(2)
        .err_has("bad duration");
}

#[test]
fn a_refused_secret_ends_the_watch_at_once() {
    let srv = Server::start_with_secrets("other:sesame\n", &[]);
    let tmp = scratch();
    let out = srv
        .client(argv!["watch", tmp.path()])
        .timeout(Duration::from_secs(20))
        .run();
    out.code_is(2);
    assert!(out.elapsed < Duration::from_secs(10), "{out}");
}

#[test]
fn a_watch_started_while_the_server_is_away_waits_for_it() {
    let tmp = scratch();
    let root = tmp.join("root");
    let src = tmp.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let port = port_of_a_server_gone(&root);
    let mut client = Cmd::client();
    client
        .args([
            "-n",
            NAME,
            "127.0.0.1",
            &port.to_string(),
            "watch",
            "--delay",
            "0.3",
        ])
        .arg(&src)
        .timeout(Duration::from_secs(120));
    let mut client = client.spawn();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !client.has_exited(),
        "the watch gave up on a server that is away"
    );
    let srv = Server::start_on(&root, port, &[]);
    let client = until_same(&srv, &src, Duration::from_secs(30), client);
    stop(client);
}

#[test]
fn quit_at_the_prompt_ends_a_watch_after_its_first_backup() {
    let srv = Server::start(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let mut input = b"watch --delay 0.3 ".to_vec();
    input.extend_from_slice(src.as_os_str().as_encoded_bytes());
    input.extend_from_slice(b"\nls\nquit\nbackup /nonexistent-never-run\n");
    let out = srv.client(argv![]).stdin(input).run();
    out.ok().err_has("a watch is running");
    assert!(out.err().lines().any(|l| l.starts_with("watch: ")), "{out}");
    assert!(
        !out.err().contains("nonexistent"),
        "went on after quit\n{out}"
    );
    assert_same_tree(&src, &srv.store(NAME, &src));
}

/// A change no event reports (a write through a shared mapping: inotify
/// does not see those) is found by the periodic rescan.
#[test]
fn a_rescan_finds_what_no_event_said() {
    use std::os::fd::AsRawFd;
    let srv = Server::start(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    fs::create_dir(&src).unwrap();
    let file = src.join("mapped");
    fs::write(&file, vec![b'a'; 4096]).unwrap();
    let client = srv
        .client(argv!["watch", "--delay", "0.3", "--rescan", "2", &src])
        .timeout(Duration::from_secs(120))
        .spawn();
    let client = until_same(&srv, &src, Duration::from_secs(20), client);
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&file)
        .unwrap();
    // SAFETY: a fresh shared mapping of 4096 bytes of an open file, written
    // and unmapped here; nothing else maps it.
    unsafe {
        let p = nix::libc::mmap(
            std::ptr::null_mut(),
            4096,
            nix::libc::PROT_READ | nix::libc::PROT_WRITE,
            nix::libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(p, nix::libc::MAP_FAILED);
        std::ptr::write_bytes(p.cast::<u8>(), b'b', 4096);
        assert_eq!(nix::libc::msync(p, 4096, nix::libc::MS_SYNC), 0);
        nix::libc::munmap(p, 4096);
    }
    drop(f);
    // Make sure the mtime moved (a mapping's write may update it late).
    set_mtime(&file, (1_700_000_000, 1));
    let client = until_same(&srv, &src, Duration::from_secs(15), client);
    stop(client);
}

/// Excluded names are not sent, not watched, and not deleted on the server
/// when a directory's listing is sent again.
#[test]
fn excluded_entries_are_neither_watched_nor_sent() {
    let srv = Server::start(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    fs::create_dir_all(src.join("cache/deep")).unwrap();
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/keep"), b"keep").unwrap();
    fs::write(src.join("d/gone"), b"gone").unwrap();
    let client = srv
        .client_opts(
            &["-x", "*.tmp"],
            argv!["watch", "--delay", "0.3", "--exclude", "cache/", &src],
        )
        .timeout(Duration::from_secs(120))
        .spawn();
    let stored = srv.store(NAME, &src);
    assert!(eventually(Duration::from_secs(20), || stored
        .join("d/gone")
        .exists()));
    fs::write(src.join("d/a.tmp"), b"scratch").unwrap();
    fs::write(src.join("cache/deep/x"), b"cached").unwrap();
    fs::create_dir(src.join("cache/new")).unwrap();
    fs::remove_file(src.join("d/gone")).unwrap();
    fs::write(src.join("d/new"), b"new").unwrap();
    assert!(eventually(Duration::from_secs(20), || !stored
        .join("d/gone")
        .exists()
        && stored.join("d/new").exists()));
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        !stored.join("d/a.tmp").exists(),
        "an excluded file was sent"
    );
    assert!(
        !stored.join("cache").exists(),
        "an excluded directory was sent"
    );
    let out = stop(client);
    // src and d: the excluded cache (and what is in it) is not watched.
    assert!(
        out.err().contains("watching ") && out.err().contains(": 2 directories"),
        "{out}"
    );
}

/// A watched directory deleted and made again is watched again within
/// seconds, and what is written into it reaches the server.
#[test]
fn a_root_deleted_and_made_again_is_watched_again() {
    let srv = Server::start(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("first"), b"1").unwrap();
    let client = watch(&srv, &src);
    let client = until_same(&srv, &src, Duration::from_secs(20), client);
    fs::remove_dir_all(&src).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    fs::create_dir_all(src.join("new")).unwrap();
    fs::write(src.join("new/x"), b"x").unwrap();
    fs::write(src.join("top"), b"top").unwrap();
    let client = until_same(&srv, &src, Duration::from_secs(20), client);
    fs::write(src.join("later"), b"later").unwrap();
    let client = until_same(&srv, &src, Duration::from_secs(20), client);
    let out = stop(client);
    out.err_has("is back: watching it again");
}

/// A batch in which the server failed a file (its disk full) is tried
/// again: once there is room, the file arrives without another change.
#[test]
fn a_change_the_server_could_not_store_is_tried_again() {
    let tmp = scratch();
    let disk = match Tmpfs::mount(&tmp.join("disk"), "4m") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let root = tmp.join("disk/root");
    let srv = Server::start_at(&root, &[]);
    let src = tmp.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("small"), b"small").unwrap();
    let client = watch(&srv, &src);
    let client = until_same(&srv, &src, Duration::from_secs(20), client);
    let filler = tmp.join("disk/filler");
    // Fill the disk to about 1 MiB free, then write 2 MiB.
    let mut free = 4usize << 20;
    let mut f = fs::File::create(&filler).unwrap();
    let chunk = vec![7u8; 64 << 10];
    while free > (1 << 20) {
        if std::io::Write::write_all(&mut f, &chunk).is_err() {
            break;
        }
        free -= chunk.len();
    }
    drop(f);
    write_big(&src.join("big"), 2, 3);
    let stored = srv.store(NAME, &src.join("big"));
    std::thread::sleep(Duration::from_secs(2));
    assert!(!stored.exists(), "stored although the disk was full");
    fs::remove_file(&filler).unwrap();
    let client = until_same(&srv, &src, Duration::from_secs(30), client);
    let out = stop(client);
    out.err_has("No space left on device");
    drop(disk);
}
