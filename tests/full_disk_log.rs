//! A full disk on the server: one log line per burst of identical failures,
//! and a batch that ends at the first ENOSPC, its other entries failing at
//! once with the same cause.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use rsb::proto::codec::to_vec;
use rsb::proto::Frame;

const WAIT: Duration = Duration::from_secs(10);
const ENTRIES: u32 = 150;

/// A tmpfs mounted over `dir`; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, opts: &str) -> Result<Tmpfs, String> {
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A batch of `ENTRIES` directories and as many small files, then its
/// commit (id `commit`).
fn batch(first: u32, tag: &str) -> (Vec<u8>, u32) {
    let mut b = Vec::new();
    let mut id = first;
    for i in 0..ENTRIES {
        b.extend(to_vec(&Frame::Dir {
            id,
            path: wpath(&format!("{tag}/d{i:03}")),
            meta: meta(0o755),
        }));
        id += 1;
        b.extend(file_frames(
            id,
            &format!("{tag}/f{i:03}"),
            b"0123456789",
            None,
            true,
        ));
        id += 1;
    }
    b.extend(to_vec(&Frame::Commit { id }));
    (b, id)
}

/// Regression (issue 9 item 15): a full disk flooded the server log with
/// the same failure for every entry (the same mkdir failure 298 times),
/// each entry trying the disk again. Now the first ENOSPC ends the batch:
/// its other entries fail at once with the same cause, and the log says it
/// once, then "N more like it".
#[test]
fn a_full_disk_is_logged_once_per_batch_and_ends_the_batch_at_the_first_enospc() {
    let st = scratch();
    let root = st.join("root");
    // Few inodes: creating any file or directory fails with ENOSPC once
    // they are used up.
    let disk = match Tmpfs::mount(&root, "size=8m,nr_inodes=1024") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: cannot mount a tmpfs ({why})");
            return;
        }
    };
    let srv = Server::start_at(&root, &[]);
    let mut raw = Raw::hello(srv.port(), NAME);
    // Use up the inodes.
    let fill = root.join("fill");
    fs::create_dir(&fill).unwrap();
    let mut made = 0;
    while made < 3000 && fs::write(fill.join(format!("{made}")), b"").is_ok() {
        made += 1;
    }
    assert!(made < 3000, "the tmpfs never filled up");

    let (bytes, commit) = batch(1, "full");
    let (frames, _) = raw.exchange(&bytes, commit, WAIT);
    assert!(
        matches!(frames.last(), Some(Frame::Committed { id }) if *id == commit),
        "{frames:?}"
    );
    let failed: Vec<&String> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Failed { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 2 * ENTRIES as usize, "every entry fails");
    assert!(
        failed.iter().all(|m| *m == failed[0]),
        "one cause for all: {failed:?}"
    );
    assert!(
        failed[0].contains("No space left on device"),
        "{}",
        failed[0]
    );
    // The log: the failure once, then how many more were like it.
    let enospc = || {
        srv.log()
            .lines()
            .filter(|l| l.contains("No space left on device"))
            .count()
    };
    assert!(
        wait_until(WAIT, || srv
            .log()
            .contains(&format!("{} more like it", 2 * ENTRIES - 1))),
        "{}",
        srv.log()
    );
    assert_eq!(enospc(), 2, "{}", srv.log());

    // Room again: the next batch is tried afresh and stored.
    fs::remove_dir_all(&fill).unwrap();
    let (bytes, commit) = batch(commit + 1, "room");
    let (frames, _) = raw.exchange(&bytes, commit, WAIT);
    let failed = frames
        .iter()
        .filter(|f| matches!(f, Frame::Failed { .. }))
        .count();
    assert_eq!(failed, 0, "{:?}", frames.first());
    assert_eq!(
        fs::read(srv.ns(NAME).join("room/f007")).unwrap(),
        b"0123456789"
    );
    drop(raw);
    drop(srv);
    drop(disk);
}
