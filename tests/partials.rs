//! Partials, the kept parts of cut transfers, are reclaimed: they expire
//! seven days after their last write (the sweep removes them), and a full
//! disk gives them up before it fails a backup.

#[macro_use]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

/// The partial's name the server gives file `name` of `size` bytes and
/// mtime `t` (`.rsb-tmp.part.<fnv64 of the name>.<size>.<secs>.<nanos>`).
fn partial_name(name: &str, size: u64, t: T) -> String {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
        (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
    });
    format!(".rsb-tmp.part.{h:016x}.{size}.{}.{}", t.0, t.1)
}

fn days_ago(d: i64) -> T {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (now.as_secs() as i64 - d * 86_400, 0)
}

/// Leaves a partial of `len` bytes in `dir` (made if missing), last
/// written at `written`.
fn leave_partial(dir: &Path, name: &str, size: u64, t: T, body: &[u8], written: T) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let p = dir.join(partial_name(name, size, t));
    fs::write(&p, body).unwrap();
    set_mtime(&p, written);
    p
}

fn wait_gone(p: &Path) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if !p.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Issue 9 item 5: a cut transfer of a file the client no longer has left
/// its partial hidden for good.
#[test]
fn an_expired_partial_is_swept_and_a_fresh_one_is_kept_and_resumed() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let t = (1_600_000_000, 1);
    let body = random_bytes(7, 3 << 20);
    fs::write(src.join("big.bin"), &body).unwrap();
    set_mtime(&src.join("big.bin"), t);
    let stored = srv.store(NAME, &src);
    let size = body.len() as u64;
    let half = &body[..(1 << 20) + 17];
    let fresh = leave_partial(&stored, "big.bin", size, t, half, days_ago(0));
    let junk = random_bytes(8, 2 << 20);
    let expired = leave_partial(&stored, "gone.bin", size, t, &junk, days_ago(8));
    let recent = leave_partial(&stored, "away.bin", size, t, &junk, days_ago(6));

    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert!(
        srv.log()
            .contains(&format!("resuming at byte {} of {size}", half.len())),
        "{}",
        srv.log()
    );
    assert_eq!(fs::read(stored.join("big.bin")).unwrap(), body);
    assert!(!fresh.exists(), "a complete partial is committed, not kept");
    assert!(wait_gone(&expired), "the expired partial is still there");
    assert!(recent.exists(), "a partial written 6 days ago was removed");
}

/// A tmpfs of `size` mounted on `dir` for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).into_owned());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Issue 9 item 5: leftover partials made a later backup fail with
/// ENOSPC; a full disk now gives up partials nobody is writing first.
#[test]
fn a_full_disk_gives_up_leftover_partials_before_it_fails_a_backup() {
    let s = scratch();
    let root = s.join("m");
    let _fs = match Tmpfs::mount(&root, "8m") {
        Ok(fs) => fs,
        Err(why) => {
            // CI runs as root, where mounting works; say so if it does not.
            eprintln!("no tmpfs ({why}): test skipped");
            return;
        }
    };
    let srv = Server::start_at(&root, &[]);
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    let t = (1_600_000_000, 1);
    let body = random_bytes(3, 4 << 20);
    fs::write(src.join("new.bin"), &body).unwrap();
    set_mtime(&src.join("new.bin"), t);
    // A cut transfer of a file the client no longer has: 5 MiB, recent.
    let stored = srv.store(NAME, &src);
    let left = leave_partial(
        &stored,
        "gone.bin",
        6 << 20,
        t,
        &random_bytes(4, 5 << 20),
        days_ago(1),
    );
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert_eq!(fs::read(stored.join("new.bin")).unwrap(), body);
    assert!(!left.exists());
    assert!(srv.log().contains("disk full: removed"), "{}", srv.log());
}
