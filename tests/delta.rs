//! Delta transfer of backups (issue 14): a changed large file whose older
//! version the server holds crosses the wire as the bytes that changed;
//! the server copies the rest from that version. Checked as users see
//! it: the summary's `N bytes` (literal bytes) and `M reused`, the stored
//! bytes against the source, the old version whole in history, a restore
//! bit for bit; and the ways it can go wrong: the stored version changed
//! under the server (its cached signature is stale), a file system
//! without copy_file_range, a client killed in the middle, a hostile
//! `FileDelta`.

#[macro_use]
mod common;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use common::*;

const MIB: u64 = 1 << 20;

/// Overwrites `len` bytes of `p` at `at` with a pattern, in place.
fn overwrite(p: &Path, at: u64, len: usize, byte: u8) {
    let mut f = fs::OpenOptions::new().write(true).open(p).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&vec![byte; len]).unwrap();
}

/// The `M reused` figure of the last `cmd` summary, if any.
fn summary_reused(stderr: &str, cmd: &str) -> Option<u64> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains(&format!("{cmd}:")))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1] == "reused")
        .and_then(|w| w[0].parse().ok())
}

/// Every regular file under `dir`, however deep.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

/// Backs `file` up, which must succeed.
fn backup_ok(srv: &Server, file: &Path) -> Output {
    let o = srv
        .client(argv!["backup", file])
        .timeout(Duration::from_secs(60))
        .run();
    o.ok();
    o
}

/// A 16 MiB file backed up whole, and a copy of that version.
fn backed_up(srv: &Server, mib: usize, seed: u64) -> (Scratch, PathBuf, PathBuf) {
    let s = scratch();
    let file = s.join("vm.img");
    write_big(&file, mib, seed);
    let o = backup_ok(srv, &file);
    assert_summary_bytes(&o, "backup", mib as u64 * MIB);
    assert_eq!(summary_reused(&o.err(), "backup"), None, "{o}");
    let old = s.join("old.img");
    fs::copy(&file, &old).unwrap();
    (s, file, old)
}

#[test]
fn a_changed_large_file_sends_only_what_changed_and_keeps_the_old_version() {
    let srv = Server::start(&[]);
    let (s, file, old) = backed_up(&srv, 16, 1);
    // 3 places overwritten, 100 KiB appended.
    overwrite(&file, 100, 1000, 1);
    overwrite(&file, 7 * MIB + 5, 50_000, 2);
    overwrite(&file, 15 * MIB, 4096, 3);
    fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(&random_bytes(9, 100 * 1024))
        .unwrap();
    let o = backup_ok(&srv, &file);
    let sent = summary_bytes(&o.err(), "backup").unwrap();
    let reused = summary_reused(&o.err(), "backup").expect("a `reused` figure");
    let size = fs::metadata(&file).unwrap().len();
    assert_eq!(sent + reused, size, "{o}");
    // Blocks of 4 KiB: each change costs at most two blocks beyond itself.
    assert!(
        sent <= 1000 + 50_000 + 4096 + 100 * 1024 + 6 * 4096,
        "sent {sent} bytes\n{o}"
    );
    let stored = srv.store(NAME, &file);
    assert!(
        same_content(&file, &stored),
        "the stored file is the new one"
    );
    // The old version is in history, whole.
    let history = srv.ns(NAME).join(".rsb-tmp.history");
    assert!(
        files_under(&history).iter().any(|p| same_content(p, &old)),
        "the old version is kept whole in history"
    );
    // A restore gives the new bytes back.
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    srv.client(argv!["restore", file, dest])
        .timeout(Duration::from_secs(60))
        .run()
        .ok();
    assert!(same_content(&file, &dest.join("vm.img")));
    // Everything rsync compares: bytes, mode, owner, times, attributes.
    let diff = rsync_diff_with(&["-aHAXn"], s.path(), &dest);
    let diff: Vec<&str> = diff.lines().filter(|l| l.ends_with(" vm.img")).collect();
    assert!(diff.is_empty(), "rsync finds vm.img differs: {diff:?}");
    // Unchanged now: nothing sent, nothing reused.
    let o = srv.client(argv!["backup", file]).run();
    o.ok();
    assert_summary_bytes(&o, "backup", 0);
    assert!(
        find_tmp(srv.root()).is_empty(),
        "{:?}",
        find_tmp(srv.root())
    );
}

#[test]
fn the_signature_of_a_delta_result_is_cached_for_the_next_delta() {
    let srv = Server::start(&[]);
    let (_s, file, _) = backed_up(&srv, 8, 2);
    let sigs = srv.ns(NAME).join(".rsb-tmp.sigs");
    for round in 0..3u8 {
        overwrite(&file, u64::from(round) * MIB + 17, 100, round + 10);
        let o = srv.client(argv!["backup", file]).run();
        o.ok();
        assert!(
            summary_bytes(&o.err(), "backup").unwrap() <= 2 * 4096,
            "{o}"
        );
        assert!(same_content(&file, &srv.store(NAME, &file)));
        // The first delta signed the stored version; each delta's result
        // is signed as it is read back.
        assert_eq!(fs::read_dir(&sigs).unwrap().count(), usize::from(round) + 2);
    }
}

/// The stored version was changed behind the server's back with its size
/// and mtime put back: the cached signature no longer describes it, the
/// delta's result fails its crc32c, the client sends the file whole after
/// that commit, and the stale signature is forgotten.
#[test]
fn a_delta_against_a_stored_version_that_changed_is_sent_again_whole() {
    let srv = Server::start(&[]);
    let (_s, file, _) = backed_up(&srv, 8, 3);
    overwrite(&file, 3 * MIB, 100, 4);
    srv.client(argv!["backup", file]).run().ok();
    let stored = srv.store(NAME, &file);
    let st = fs::metadata(&stored).unwrap();
    let mtime = (
        std::os::unix::fs::MetadataExt::mtime(&st),
        std::os::unix::fs::MetadataExt::mtime_nsec(&st) as u32,
    );
    overwrite(&stored, 5 * MIB, 8192, 0xee);
    set_mtime(&stored, mtime);
    overwrite(&file, 6 * MIB, 100, 5);
    let o = srv.client(argv!["backup", file]).run();
    o.ok();
    assert!(
        same_content(&file, &stored),
        "the stored file is the source's"
    );
    let sent = summary_bytes(&o.err(), "backup").unwrap();
    assert!(
        sent >= 8 * MIB,
        "sent whole after the failed delta: {sent}\n{o}"
    );
    assert!(o.err().contains("0 failed"), "{o}");
    assert!(
        srv.log_has("crc32c mismatch"),
        "the server says why: {}",
        srv.log()
    );
}

#[test]
fn without_copy_file_range_the_runs_are_read_and_written() {
    let srv = Server::start_with_env(
        &[],
        &[("RSB_TEST_NO_COPY_RANGE", "1"), ("RUST_LOG", "debug")],
    );
    let (_s, file, _) = backed_up(&srv, 8, 4);
    overwrite(&file, 2 * MIB, 3000, 6);
    let o = srv.client(argv!["backup", file]).run();
    o.ok();
    assert!(summary_reused(&o.err(), "backup").unwrap() > 7 * MIB, "{o}");
    assert!(same_content(&file, &srv.store(NAME, &file)));
    assert!(srv.log_has("(read and written)"), "{}", srv.log());
}

/// The offset of the last "resuming a delta at byte N of SIZE" the
/// server logged.
fn delta_resumed_at(log: &str) -> Option<u64> {
    let at = log.rfind("resuming a delta at byte ")? + "resuming a delta at byte ".len();
    log[at..].split_whitespace().next()?.parse().ok()
}

/// A client killed while a delta's literal bytes are on their way: the
/// stored version stays as it was, and the server keeps what came of the
/// new one (its runs up to there copied, its literal bytes received) as a
/// partial. The next backup resumes the delta there: it sends only the
/// literal bytes past that point, stores the new bytes exactly, and
/// leaves nothing behind.
#[test]
fn a_delta_cut_off_by_killing_the_client_resumes_where_it_stopped() {
    let srv = Server::start(&[]);
    let (_s, file, old) = backed_up(&srv, 32, 5);
    // 4 MiB of changes in 64 KiB pieces, sent at 1 MiB/s: four seconds.
    for k in 0..64u64 {
        overwrite(&file, k * 512 * 1024, 64 * 1024, 7);
    }
    let seen_before = srv.log().matches("disconnected:").count();
    let mut run = srv
        .client_opts(&["--bwlimit", "1M"], argv!["backup", file])
        .timeout(Duration::from_secs(60))
        .spawn();
    // Matching 32 MiB takes well under a second; then the body crawls.
    thread::sleep(Duration::from_millis(2500));
    assert!(!run.has_exited(), "the backup ended before it was cut");
    run.kill9();
    let stored = srv.store(NAME, &file);
    // A resumable file is written under its partial's name from the
    // start: only once the server has logged the disconnection has it cut
    // the file to what came (regression: a loaded machine showed the
    // partial before that, still empty: "kept 0 bytes").
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while srv.log().matches("disconnected:").count() <= seen_before
        && std::time::Instant::now() < end
    {
        thread::sleep(Duration::from_millis(50));
    }
    let kept = partial_under(srv.root()).expect("the cut delta's partial");
    let kept_len = fs::metadata(&kept).unwrap().len();
    // About 1.5 MiB of literal bytes had come in 2.5 s, at most 4 MiB.
    assert!(
        kept_len > MIB && kept_len < 32 * MIB,
        "kept {kept_len} bytes"
    );
    let want = fs::read(&file).unwrap();
    assert!(
        fs::read(&kept).unwrap()[..] == want[..kept_len as usize],
        "the partial is the new file's first {kept_len} bytes"
    );
    assert!(
        same_content(&old, &stored),
        "the stored version is untouched"
    );
    let o = backup_ok(&srv, &file);
    let at = delta_resumed_at(&srv.log()).unwrap_or_else(|| panic!("{}", srv.log()));
    assert_eq!(at, kept_len, "resumed where the partial ends");
    let sent = summary_bytes(&o.err(), "backup").unwrap();
    let reused = summary_reused(&o.err(), "backup").expect("a delta again");
    assert_eq!(sent + reused, 32 * MIB - at, "{o}");
    eprintln!("resumed at {at}: {sent} bytes sent, {reused} reused");
    // Only the changes past the resume point, and the block it cuts.
    let changed_after = changed_past(at);
    assert!(
        sent < 4 * MIB && sent <= changed_after + 2 * 8192,
        "sent {sent} of {changed_after} changed bytes past {at}\n{o}"
    );
    assert!(same_content(&file, &stored));
    assert!(
        find_tmp(srv.root()).is_empty(),
        "{:?}",
        find_tmp(srv.root())
    );
}

/// Restore (issue 14: both directions): the copy the destination holds
/// of an older version is the basis; the server sends what differs, the
/// client copies the rest from its copy, and the result is the stored
/// version in everything rsync compares.
#[test]
fn a_restore_over_an_older_copy_receives_only_what_changed() {
    let srv = Server::start(&[]);
    let (s, file, _) = backed_up(&srv, 16, 6);
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    let restore = || {
        let o = srv
            .client(argv!["restore", file, dest])
            .timeout(Duration::from_secs(60))
            .run();
        o.ok();
        o
    };
    let o = restore();
    assert_summary_bytes(&o, "restore", 16 * MIB);
    overwrite(&file, 9 * MIB + 3, 20_000, 8);
    srv.client(argv!["backup", file]).run().ok();
    let o = restore();
    let got = summary_bytes(&o.err(), "restore").unwrap();
    assert!(got <= 20_000 + 2 * 4096, "received {got} bytes\n{o}");
    assert_eq!(
        summary_reused(&o.err(), "restore"),
        Some(16 * MIB - got),
        "{o}"
    );
    assert!(same_content(&file, &dest.join("vm.img")));
    let diff = rsync_diff_with(&["-aHAXn"], s.path(), &dest);
    let diff: Vec<&str> = diff.lines().filter(|l| l.ends_with(" vm.img")).collect();
    assert!(diff.is_empty(), "rsync finds vm.img differs: {diff:?}");
    assert!(find_tmp(&dest).is_empty(), "{:?}", find_tmp(&dest));
}

/// The partial (`.rsb-tmp.part.*`) under `dir`, if there is one.
fn partial_under(dir: &Path) -> Option<PathBuf> {
    find_tmp(dir).into_iter().find(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".rsb-tmp.part."))
    })
}

/// The changed bytes past `at` of 64 pieces of 64 KiB, one every 512
/// KiB (aligned on the 8 KiB blocks of a 32 MiB file).
fn changed_past(at: u64) -> u64 {
    (0..64u64)
        .map(|k| k * 512 * 1024)
        .filter(|&s| s + 64 * 1024 > at)
        .map(|s| s + 64 * 1024 - s.max(at))
        .sum()
}

/// A restore over an older copy interrupted while the delta's literal
/// bytes come in: the client keeps what came (the runs up to there
/// copied from its copy, the literal bytes received) as the file's
/// partial in DEST, its copy untouched. The next restore sends the
/// signature of that copy with a `Want` from the partial's end: the
/// server matches from there and sends only the changes past it.
#[test]
fn an_interrupted_restore_delta_resumes_where_it_stopped() {
    let srv = Server::start(&[]);
    let (s, file, old) = backed_up(&srv, 32, 10);
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    fs::copy(&old, dest.join("vm.img")).unwrap();
    // Another version for the quick check too: a copy made in the same
    // clock tick as the changes below would have their mtime.
    set_mtime(&dest.join("vm.img"), (1_600_000_000, 0));
    for k in 0..64u64 {
        overwrite(&file, k * 512 * 1024, 64 * 1024, 9);
    }
    backup_ok(&srv, &file);
    let mut run = srv
        .client_opts(&["--bwlimit", "1M"], argv!["restore", file, dest])
        .timeout(Duration::from_secs(60))
        .spawn();
    thread::sleep(Duration::from_millis(2500));
    assert!(!run.has_exited(), "the restore ended before it was cut");
    run.signal(nix::sys::signal::Signal::SIGINT);
    run.wait(Duration::from_secs(30)).code_is(130);
    let kept = partial_under(&dest).expect("the cut delta's partial");
    let at = fs::metadata(&kept).unwrap().len();
    assert!(at > MIB && at < 32 * MIB, "kept {at} bytes");
    let want = fs::read(&file).unwrap();
    assert!(
        fs::read(&kept).unwrap()[..] == want[..at as usize],
        "the partial is the new file's first {at} bytes"
    );
    assert!(
        same_content(&old, &dest.join("vm.img")),
        "the copy is untouched"
    );
    let o = srv
        .client(argv!["restore", file, dest])
        .timeout(Duration::from_secs(60))
        .run();
    o.ok();
    let got = summary_bytes(&o.err(), "restore").unwrap();
    let reused = summary_reused(&o.err(), "restore").expect("a delta again");
    eprintln!("restore resumed at {at}: {got} bytes received, {reused} reused");
    assert_eq!(got + reused, 32 * MIB - at, "{o}");
    assert!(
        got < 4 * MIB && got <= changed_past(at) + 2 * 8192,
        "received {got} of {} changed bytes past {at}\n{o}",
        changed_past(at)
    );
    assert!(same_content(&file, &dest.join("vm.img")));
    assert!(find_tmp(&dest).is_empty(), "{:?}", find_tmp(&dest));
}

/// A destination file with nothing in common with the stored one: the
/// signature finds no block, the whole file comes, and it is right.
#[test]
fn a_restore_over_an_unrelated_file_receives_it_whole() {
    let srv = Server::start(&[]);
    let (s, file, _) = backed_up(&srv, 4, 7);
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    write_big(&dest.join("vm.img"), 3, 99);
    let o = srv
        .client(argv!["restore", file, dest])
        .timeout(Duration::from_secs(60))
        .run();
    o.ok();
    assert_summary_bytes(&o, "restore", 4 * MIB);
    assert_eq!(summary_reused(&o.err(), "restore"), None, "{o}");
    assert!(same_content(&file, &dest.join("vm.img")));
}

/// Unmounts and detaches a loop device, whatever the test did.
struct LoopMount {
    dev: String,
    mnt: Option<PathBuf>,
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        if let Some(m) = &self.mnt {
            let _ = std::process::Command::new("umount").arg(m).status();
        }
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.dev])
            .status();
    }
}

fn sh(cmd: &mut std::process::Command) -> Result<String, String> {
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// A server whose store is on XFS with reflink: the new version of a file
/// sent as a delta shares its unchanged extents with the old one in
/// history (`filefrag -v` says `shared`), so history costs only the
/// changed blocks. Skips without root, `mkfs.xfs` or a loop device.
#[test]
fn on_xfs_the_new_version_shares_its_extents_with_the_old_one() {
    use std::process::Command;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to mount an XFS image");
        return;
    }
    if sh(Command::new("mkfs.xfs").arg("-V")).is_err() {
        eprintln!("skipped: no mkfs.xfs (apt-get install xfsprogs)");
        return;
    }
    let s = scratch();
    let img = s.join("xfs.img");
    // mkfs.xfs refuses file systems under 300 MB; the image is sparse.
    fs::File::create(&img).unwrap().set_len(400 * MIB).unwrap();
    sh(Command::new("mkfs.xfs")
        .args(["-q", "-m", "reflink=1"])
        .arg(&img))
    .unwrap();
    let dev = match sh(Command::new("losetup").args(["--find", "--show"]).arg(&img)) {
        Ok(d) => d.trim().to_string(),
        Err(e) => {
            eprintln!("skipped: no loop device: {e}");
            return;
        }
    };
    let mut guard = LoopMount { dev, mnt: None };
    let mnt = s.join("mnt");
    fs::create_dir(&mnt).unwrap();
    if let Err(e) = sh(Command::new("mount").arg(&guard.dev).arg(&mnt)) {
        eprintln!("skipped: cannot mount XFS: {e}");
        return;
    }
    guard.mnt = Some(mnt.clone());
    let root = mnt.join("root");
    fs::create_dir(&root).unwrap();
    let srv = Server::start_at(&root, &[]);
    let file = s.join("vm.img");
    write_big(&file, 32, 8);
    srv.client(argv!["backup", file]).run().ok();
    overwrite(&file, 16 * MIB + 10, 100, 9);
    let o = srv.client(argv!["backup", file]).run();
    o.ok();
    assert!(
        summary_reused(&o.err(), "backup").unwrap() > 31 * MIB,
        "{o}"
    );
    let stored = srv.store(NAME, &file);
    assert!(same_content(&file, &stored));
    let frag = sh(Command::new("filefrag").arg("-v").arg(&stored)).unwrap();
    let extents: Vec<&str> = frag
        .lines()
        .filter(|l| {
            l.trim_start()
                .split(':')
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .collect();
    let shared = extents.iter().filter(|l| l.contains("shared")).count();
    assert!(
        shared >= 2 && shared < extents.len(),
        "the unchanged extents shared, the changed block not:\n{frag}"
    );
    drop(srv);
}

/// A restore's client signs its own copy before it asks for a delta
/// against it, which reads that copy whole: seconds for a large disk
/// image. An interrupt meanwhile ends the restore at once (exit 130), not
/// once the whole copy was read, and leaves the copy as it was.
#[test]
fn an_interrupt_while_the_client_signs_its_copy_ends_the_restore_at_once() {
    const SIZE: u64 = 8 << 30;
    let srv = Server::start(&[]);
    let s = scratch();
    let file = s.join("disk.img");
    let f = fs::File::create(&file).unwrap();
    f.set_len(SIZE).unwrap();
    drop(f);
    overwrite(&file, 1 << 30, 4096, 1);
    srv.client(argv!["backup", file])
        .timeout(Duration::from_secs(120))
        .run()
        .ok();
    // The destination's copy: another version of the same size (sparse,
    // like the stored one): a basis to sign, 8 GiB of reads.
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    let copy = dest.join("disk.img");
    let f = fs::File::create(&copy).unwrap();
    f.set_len(SIZE).unwrap();
    drop(f);
    overwrite(&copy, 0, 4096, 2);
    let mut run = srv
        .client(argv!["restore", file, dest])
        .timeout(Duration::from_secs(120))
        .spawn();
    // Signing: the client has read a few hundred MiB of its copy.
    let read = |pid: i32| -> u64 {
        fs::read_to_string(format!("/proc/{pid}/io"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("rchar: ").map(|v| v.trim().parse().ok()))
                    .flatten()
            })
            .unwrap_or(0)
    };
    let pid = run.pid().as_raw();
    assert!(
        wait_until(Duration::from_secs(60), || read(pid) >= 256 << 20
            || run.has_exited()),
        "the client never read its copy"
    );
    assert!(
        !run.has_exited(),
        "the restore ended before it was interrupted"
    );
    let at = read(pid);
    assert!(at < SIZE / 2, "{at} bytes read already: cannot test");
    let sent = std::time::Instant::now();
    run.signal(nix::sys::signal::Signal::SIGINT);
    let o = run.wait(Duration::from_secs(60));
    let took = sent.elapsed();
    o.code_is(130);
    assert!(
        took < Duration::from_secs(1),
        "{took:?} from SIGINT to exit (it read {at} of {SIZE} bytes by then)\n{o}"
    );
    let mut head = vec![0u8; 4096];
    use std::io::Read;
    fs::File::open(&copy)
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    assert!(head.iter().all(|&b| b == 2), "the copy was written to");
    assert_eq!(fs::metadata(&copy).unwrap().len(), SIZE);
    assert!(find_tmp(&dest).is_empty(), "{:?}", find_tmp(&dest));
}

/// A file of 64 MiB or more is matched on several threads, each over a
/// part of whole blocks: a change across the seam between two parts, and
/// others, still give the new file exactly, with only about the changes
/// sent.
#[test]
fn a_large_file_matched_on_several_threads_is_stored_exactly() {
    let srv = Server::start(&[]);
    let (_s, file, _) = backed_up(&srv, 96, 9);
    // Around the middle (a seam for 2 or 4 parts), a quarter and the end.
    for at in [48 * MIB - 3000, 24 * MIB + 5, 96 * MIB - 100] {
        overwrite(&file, at, 6000.min((96 * MIB - at) as usize), 3);
    }
    let o = backup_ok(&srv, &file);
    let sent = summary_bytes(&o.err(), "backup").unwrap();
    // Block size for 96 MiB is 16 KiB: each change costs at most 2 blocks
    // more, the one the seam cuts one more.
    assert!(sent <= 6000 + 6000 + 100 + 8 * 16384, "sent {sent}\n{o}");
    assert_eq!(
        summary_reused(&o.err(), "backup"),
        Some(96 * MIB - sent),
        "{o}"
    );
    assert!(same_content(&file, &srv.store(NAME, &file)));
}
