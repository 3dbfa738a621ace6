//! Verify: re-read every stored file under a path and compare it with the
//! crc32c recorded when it was stored ([`crate::store::record`] says what a
//! mismatch means). Runs on a worker thread, never in the event loop: it
//! reads whole files. Reports what it found in pieces, so a client hears
//! progress and a closed connection or a stopping server ends it early.
//!
//! Must not change anything it reads.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::namespace::Namespace;
use super::stored::StoredFile;
use crate::proto::{EntryKind, WirePath};
use crate::server::session::VerifyCounts;
use crate::store::history::{parse_batch_name, HISTORY_DIR};

/// Most damaged files a verify names one by one; the counts cover the rest.
pub const MAX_NAMED: usize = 1000;
/// How often a verify reports how far it got (keeps the client informed
/// and the connection alive).
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// Directory levels a verify descends at most.
const MAX_DEPTH: usize = 4096;
/// Bytes read between two looks at whether to stop.
const PIECE: u64 = 16 << 20;

/// Where a verify reports: newly found damaged files (path and cause), the
/// counts so far, and whether it is complete. Returns false to stop.
pub type Report<'a> = dyn FnMut(Vec<(WirePath, String)>, VerifyCounts, bool) -> bool + 'a;

impl Namespace {
    /// Walks the tree under `path` and checks each regular file, calling
    /// `report` with what it found at most every `PROGRESS_EVERY` and
    /// once at the end (`finished`). Stops early if `report` returns false
    /// (the connection closed or the server is stopping).
    pub fn verify(&self, path: WirePath, report: &mut Report<'_>) {
        let mut counts = VerifyCounts::default();
        let mut damaged: Vec<(WirePath, String)> = Vec::new();
        let mut named = 0usize;
        let mut last = Instant::now();
        // The current tree first, then each version of it in history
        // (oldest batch first), checked the same way.
        let mut todo: VecDeque<(WirePath, usize)> = VecDeque::from([(path.clone(), 0)]);
        todo.extend(self.history_roots(&path).into_iter().map(|p| (p, 1)));
        let in_history = |p: &WirePath| p.components().next() == Some(HISTORY_DIR);
        while let Some((p, depth)) = todo.pop_front() {
            let problem = match self.lstat(&p) {
                Err(e) if depth == 0 && e.raw_os_error() == Some(nix::libc::ENOENT) => {
                    // Nothing to verify is not damage.
                    damaged.push((p, "not on the server".to_string()));
                    continue;
                }
                // Retention removed it meanwhile.
                Err(e) if in_history(&p) && e.raw_os_error() == Some(nix::libc::ENOENT) => {
                    continue;
                }
                Err(e) => Some(e.short()),
                // A metadata-only stand-in is the special it stands for.
                Ok(st) => match self.stored_kind(&p, &st).0 {
                    Some(EntryKind::File) => {
                        // Progress goes out between the pieces of a large
                        // file too: reading one can take longer than the
                        // client waits without news.
                        let mut tick = |c: &VerifyCounts| {
                            if last.elapsed() < PROGRESS_EVERY {
                                return true;
                            }
                            last = Instant::now();
                            report(Vec::new(), *c, false)
                        };
                        match self.check_file(&p, &mut counts, &mut tick) {
                            Some(Outcome::Stopped) => return,
                            Some(Outcome::Damaged(why)) => Some(why),
                            Some(Outcome::Unchecked) => {
                                // Counted as unchecked, not damaged, but
                                // named: nothing vouches for its bytes.
                                if named < MAX_NAMED {
                                    named += 1;
                                    damaged.push((p.clone(), UNCHECKED.to_string()));
                                }
                                None
                            }
                            None => None,
                        }
                    }
                    Some(EntryKind::Dir) if depth < MAX_DEPTH => match self.read_dir(&p) {
                        Ok(names) => {
                            // Depth first, in name order, so reports come
                            // in the order `ls -R` would show them.
                            let children: Vec<_> = names
                                .iter()
                                .filter_map(|n| p.join(n).ok())
                                .map(|c| (c, depth + 1))
                                .collect();
                            for c in children.into_iter().rev() {
                                todo.push_front(c);
                            }
                            None
                        }
                        Err(e) => Some(e.short()),
                    },
                    Some(EntryKind::Dir) => Some("too deep".to_string()),
                    // Links and specials are stored as what they are (or
                    // as their record): nothing to read.
                    Some(
                        EntryKind::Symlink
                        | EntryKind::Fifo
                        | EntryKind::Socket
                        | EntryKind::CharDev
                        | EntryKind::BlockDev
                        | EntryKind::HardLink,
                    )
                    | None => None,
                },
            };
            if let Some(why) = problem {
                counts.damaged += 1;
                if named < MAX_NAMED {
                    named += 1;
                    damaged.push((p, why));
                }
            }
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                if !report(std::mem::take(&mut damaged), counts, false) {
                    return;
                }
            }
        }
        report(damaged, counts, true);
    }

    /// Where the published batches of this namespace's history hold `path`
    /// (or, for the root, each whole batch), oldest first.
    fn history_roots(&self, path: &WirePath) -> Vec<WirePath> {
        let Ok(root) = WirePath::new(HISTORY_DIR.to_vec()) else {
            return Vec::new();
        };
        let Ok(mut names) = self.read_dir(&root) else {
            return Vec::new();
        };
        names.retain(|n| parse_batch_name(n).is_some());
        names.sort();
        names
            .iter()
            .filter_map(|n| root.join(n).and_then(|b| b.join_path(path)).ok())
            .filter(|p| self.lstat(p).is_ok())
            .collect()
    }

    /// Reads one stored file and compares it with its recorded crc32c, in
    /// pieces, calling `tick` between them (false: stop).
    fn check_file(
        &self,
        p: &WirePath,
        counts: &mut VerifyCounts,
        tick: &mut dyn FnMut(&VerifyCounts) -> bool,
    ) -> Option<Outcome> {
        let damaged = |why: String| Some(Outcome::Damaged(why));
        let file = match StoredFile::open(&self.tree, p) {
            Ok(f) => f,
            Err(e) => return damaged(e.short()),
        };
        let recorded = match file.recorded() {
            Ok(r) => r,
            Err(e) => return damaged(e.short()),
        };
        let size = file.size();
        counts.files += 1;
        let mut crc = 0;
        let mut at = 0;
        while at < size {
            if !tick(counts) {
                return Some(Outcome::Stopped);
            }
            let n = (size - at).min(PIECE);
            crc = match file.crc(at, n, crc) {
                Ok(c) => c,
                Err(e) => return damaged(e.short()),
            };
            at += n;
            counts.bytes += n;
        }
        let Some(r) = recorded else {
            counts.unchecked += 1;
            return Some(Outcome::Unchecked);
        };
        r.damage(size, crc)
            .or_else(|| file.xattr_damage())
            .and_then(damaged)
    }
}

/// What checking one file found, when it is not simply good.
enum Outcome {
    /// Why the file is damaged or unreadable.
    Damaged(String),
    /// The verify was called off in the middle of the file.
    Stopped,
    /// It was read, but no checksum was recorded for it.
    Unchecked,
}

/// What a verify says of a file without a checksum record.
const UNCHECKED: &str = "no checksum recorded";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::store::xattr;
    use crate::store::record::Recorded;
    use std::os::fd::AsFd;

    fn run(ns: &Namespace, path: &str) -> (Vec<(WirePath, String)>, VerifyCounts) {
        let mut all = Vec::new();
        let mut last = VerifyCounts::default();
        let mut done = false;
        ns.verify(
            WirePath::new(path.as_bytes().to_vec()).unwrap(),
            &mut |d, c, finished| {
                all.extend(d);
                last = c;
                done = finished;
                true
            },
        );
        assert!(done);
        (all, last)
    }

    #[test]
    fn names_damage_and_counts_unchecked_files() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        for (name, body) in [
            ("d/good", &b"good"[..]),
            ("d/bad", b"bad!"),
            ("d/bare", b"x"),
        ] {
            std::fs::write(t.path().join(name), body).unwrap();
        }
        let record = |name: &str, r: Recorded| {
            let f = std::fs::File::open(t.path().join(name)).unwrap();
            xattr::record(f.as_fd(), r).unwrap()
        };
        let good = Recorded {
            crc: crc32c::crc32c(b"good"),
            size: 4,
        };
        if !record("d/good", good) {
            return; // No user xattrs where the test runs.
        }
        record(
            "d/bad",
            Recorded {
                crc: crc32c::crc32c(b"bad?"),
                size: 4,
            },
        );
        let ns = Namespace::open_dir(t.path()).unwrap();
        let (damaged, c) = run(&ns, "d");
        assert_eq!(
            damaged,
            [
                (
                    WirePath::new(b"d/bad".to_vec()).unwrap(),
                    format!(
                        "content changed: crc32c was {:08x}, is now {:08x}",
                        crc32c::crc32c(b"bad?"),
                        crc32c::crc32c(b"bad!")
                    )
                ),
                (
                    WirePath::new(b"d/bare".to_vec()).unwrap(),
                    UNCHECKED.to_string()
                ),
            ]
        );
        assert_eq!((c.files, c.bytes, c.damaged, c.unchecked), (3, 9, 1, 1));
        let (damaged, c) = run(&ns, "nothing");
        assert_eq!(damaged[0].1, "not on the server");
        assert_eq!((c.files, c.damaged), (0, 0));
    }

    #[test]
    fn a_verify_beside_a_sweep_of_the_same_namespace_never_reports_zero_files() {
        let t = tempfile::tempdir().unwrap();
        for i in 0..400 {
            std::fs::write(
                t.path().join(format!("file-with-a-longer-name-{i:04}")),
                b"x",
            )
            .unwrap();
        }
        let ns = Namespace::open_dir(t.path()).unwrap();
        // The server's sweeper and a verify each get a clone of the
        // namespace and read its top directory at the same time; bounded.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        for round in 0..40 {
            let sweeper = ns.try_clone().unwrap();
            let sweep = std::thread::spawn(move || {
                for _ in 0..5 {
                    sweeper.sweep(&WirePath::root(), true, &|| false);
                }
            });
            for _ in 0..5 {
                let (_, c) = run(&ns.try_clone().unwrap(), "");
                assert_eq!(c.files, 400, "round {round}");
            }
            sweep.join().unwrap();
            if std::time::Instant::now() > deadline {
                break;
            }
        }
    }
}
