//! Backups of one file by two clients of the same name at once (a cron run
//! overlapping a manual one): each either commits its own whole copy or
//! fails cleanly; the last complete commit wins, never a mix, and what is
//! stored always carries its checksum.

#[macro_use]
mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;

/// The checksum record of a stored file, as `getfattr` would print it.
fn record_of(p: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut buf = [0u8; 128];
    // SAFETY: both strings are NUL-terminated; the buffer outlives the call.
    let n = unsafe {
        nix::libc::lgetxattr(
            c.as_ptr(),
            c"user.rsb.crc32c".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| String::from_utf8_lossy(&buf[..n as usize]).into_owned())
}

/// Writes version `v` of the file at `p` under a new name and renames it
/// over the old one, so a client reading the old version reads it whole.
fn put_version(p: &Path, v: u64) -> Vec<u8> {
    // Beside the backed-up directory, not in it.
    let tmp = p.parent().unwrap().with_extension("next");
    write_big(&tmp, 5, v);
    set_mtime(&tmp, (1_600_000_000 + v as i64, 7));
    fs::rename(&tmp, p).unwrap();
    fs::read(p).unwrap()
}

/// Issue 9 item 1: the partial's name depended only on the file's name,
/// size and mtime, so the second connection removed, truncated or resumed
/// the first one's partial, and the first commit renamed whatever was
/// there: a truncated or zero-filled file, without a checksum, exit 0.
#[test]
fn two_backups_of_one_large_file_at_once_never_commit_a_mix() {
    // A slow commit keeps a staged copy waiting while the other
    // connection receives the same file.
    let srv = Server::start_with_env(&[], &[("RSB_TEST_COMMIT_DELAY_MS", "40")]);
    let s = scratch();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let file = src.join("big.bin");
    let stored = srv.store(NAME, &file);
    let mut versions: Vec<Vec<u8>> = Vec::new();
    let mut both_ok = 0;
    let mut failed = Vec::new();
    for round in 0..12u64 {
        let v = round * 2 + 1;
        versions.push(put_version(&file, v));
        let a = srv.client(argv!["backup", src]).spawn();
        // Staggered starts: the second connection arrives while the first
        // one is anywhere from its manifest to its commit.
        std::thread::sleep(Duration::from_millis(round % 4 * 15));
        if round % 3 == 2 {
            // The file is rewritten while the first backup runs.
            versions.push(put_version(&file, v + 1));
        }
        let b = srv.client(argv!["backup", src]).spawn();
        let (a, b) = (a.wait(CLIENT_TIMEOUT), b.wait(CLIENT_TIMEOUT));
        let body = fs::read(&stored).unwrap_or_default();
        let which = versions.iter().position(|x| *x == body);
        assert!(
            which.is_some(),
            "round {round}: the stored file ({} bytes) is none of the versions\n{a}\n{b}",
            body.len()
        );
        let rec = format!(
            "v1 crc32c={:08x} size={}",
            crc32c::crc32c(&body),
            body.len()
        );
        assert_eq!(
            record_of(&stored).as_deref(),
            Some(rec.as_str()),
            "round {round}: the stored file does not carry its checksum\n{a}\n{b}"
        );
        // Each backup either committed or failed cleanly, and in this
        // round only the versions written in it can be stored.
        let fresh = if round % 3 == 2 { 2 } else { 1 };
        assert!(
            which.unwrap() + fresh >= versions.len(),
            "round {round}: an older version is stored\n{a}\n{b}"
        );
        for o in [&a, &b] {
            assert!(matches!(o.code(), Some(0) | Some(1)), "{o}");
        }
        if a.code() == Some(0) && b.code() == Some(0) {
            both_ok += 1;
        } else {
            failed.push(format!("round {round}:\n{a}\n{b}"));
        }
        let o = srv.client(argv!["verify"]).run();
        o.ok();
    }
    // A backup that overlaps another need not fail at all.
    assert_eq!(both_ok, 12, "{}", failed.join("\n"));
    assert!(find_stray_tmp(srv.root()).is_empty(), "{}", srv.log());
}
