//! Sweeping the leftovers of processes killed before they could clean up:
//! their temporary files, links and directory trees (`.rsb-tmp.<salt>.<n>`
//! with a salt not this process's, see
//! [`crate::store::names::is_stale_tmp`]). Run by the server on a
//! namespace the first time it is opened in a run (on a thread of its
//! own), and by the client on a restore's destination.
//!
//! A stale temporary directory is either a new directory that was being
//! built to replace a file or link (its commit never swapped it in, so the
//! old entry is still in place) or, after the swap, the old entry itself
//! (the complete new one is in place): either way the entry under its
//! real name is a complete version, and the temporary one can go (see
//! [`super::Stager`]'s commit). Must not remove a partial (kept to
//! resume) or a previous version moved aside as `.rsb-tmp.old.*` (on a
//! file system without `RENAME_EXCHANGE`, a crash may leave it as the
//! only copy), and must not follow a link.

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

use super::beneath::{entries_at, remove_tree};
use super::namespace::Namespace;
use super::{partial, tmp};
use crate::io::kind_of;
use crate::proto::path::is_tmp_name;
use crate::proto::{EntryKind, WirePath};
use nix::fcntl::AtFlags;
use nix::sys::stat;
use nix::sys::time::TimeSpec;

/// Directories one sweep visits at most: bounded like every walk.
const MAX_DIRS: u64 = 10_000_000;

impl Namespace {
    /// Removes, under `path` (and below it if `recursive`), the stale
    /// temporary entries, giving each directory it touched its
    /// modification time back. Returns how many it removed; stops early
    /// when `stopped` says so.
    pub fn sweep(&self, path: &WirePath, recursive: bool, stopped: &dyn Fn() -> bool) -> u64 {
        let tree = &self.tree;
        let mut removed = 0;
        let mut todo = vec![path.clone()];
        let mut budget = MAX_DIRS;
        while let Some(dir) = todo.pop() {
            budget = budget.saturating_sub(1);
            if budget == 0 || stopped() {
                break;
            }
            let Ok(fd) = tree.dir(&dir) else { continue };
            let Ok(entries) = entries_at(fd.as_raw_fd()) else {
                continue;
            };
            let before = stat::fstat(fd.as_raw_fd()).ok();
            let mut changed = false;
            for (name, kind) in entries {
                if tmp::is_stale(&name) {
                    if remove_tree(fd.as_raw_fd(), &name, 0).is_ok() {
                        removed += 1;
                        changed = true;
                    }
                    continue;
                }
                if is_tmp_name(&name) {
                    // Expired partials go too (issue 9 item 5).
                    if partial::remove_if_expired(fd.as_raw_fd(), &name) {
                        (removed, changed) = (removed + 1, true);
                    }
                    continue;
                }
                let is_dir = match kind {
                    Some(t) => t == nix::dir::Type::Directory,
                    None => stat::fstatat(
                        Some(fd.as_raw_fd()),
                        OsStr::from_bytes(&name),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .is_ok_and(|st| kind_of(&st) == Some(EntryKind::Dir)),
                };
                if is_dir && recursive {
                    if let Ok(sub) = dir.join(&name) {
                        todo.push(sub);
                    }
                }
            }
            if let (true, Some(st)) = (changed, before) {
                let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
                // atime is left alone: only the mtime is part of a backup.
                let omit = TimeSpec::new(0, nix::libc::UTIME_OMIT);
                let _ = stat::futimens(fd.as_raw_fd(), &omit, &mtime);
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::UtimensatFlags;
    use std::os::unix::fs::MetadataExt;

    fn wp(s: &str) -> WirePath {
        WirePath::new(s.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn sweep_removes_stale_entries_only_and_keeps_directory_times() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("d/e")).unwrap();
        for p in [
            "d/.rsb-tmp.1f.1",
            "d/e/.rsb-tmp.2a.7",
            "d/keep",
            "d/.rsb-tmp.old.1f.2",
        ] {
            std::fs::write(root.join(p), b"x").unwrap();
        }
        std::fs::write(root.join("d/.rsb-tmp.part.0.1.2.3"), b"x").unwrap();
        // A dead process's unfinished directory tree, read-only inside.
        std::fs::create_dir_all(root.join("d/.rsb-tmp.3b.1/a/b")).unwrap();
        std::fs::write(root.join("d/.rsb-tmp.3b.1/a/b/f"), b"x").unwrap();
        std::fs::set_permissions(
            root.join("d/.rsb-tmp.3b.1/a"),
            std::os::unix::fs::PermissionsExt::from_mode(0o500),
        )
        .unwrap();
        std::os::unix::fs::symlink("/nowhere", root.join("d/.rsb-tmp.4c.2")).unwrap();
        let ours = tmp::fresh_tmp();
        std::fs::write(root.join("d").join(OsStr::from_bytes(&ours)), b"x").unwrap();
        let t = TimeSpec::new(1_500_000_000, 7);
        for d in ["d", "d/e"] {
            stat::utimensat(None, &root.join(d), &t, &t, UtimensatFlags::NoFollowSymlink).unwrap();
        }
        let tree = Namespace::open_dir(root).unwrap();
        assert_eq!(tree.sweep(&wp("d"), true, &|| false), 4);
        let mut left: Vec<String> = std::fs::read_dir(root.join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![
            ".rsb-tmp.old.1f.2".to_string(),
            ".rsb-tmp.part.0.1.2.3".into(),
            String::from_utf8(ours).unwrap(),
            "e".into(),
            "keep".into(),
        ];
        want.sort();
        assert_eq!(left, want);
        assert_eq!(std::fs::read_dir(root.join("d/e")).unwrap().count(), 0);
        for d in ["d", "d/e"] {
            let md = std::fs::metadata(root.join(d)).unwrap();
            assert_eq!((md.mtime(), md.mtime_nsec()), (1_500_000_000, 7), "{d}");
        }
    }
}
