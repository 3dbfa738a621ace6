//! What the client tells its user on stderr: one line per failed file,
//! warnings for skipped files, the live progress line on a terminal, and the
//! summary at the end of each command.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::client::report::{Pace, Repeats};
use crate::client::ui::{self, Progress, Summary};
use crate::proto::path::escape;

/// A local path for a message, escaped like names from the server.
pub fn show(p: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    escape(p.as_os_str().as_bytes())
}

/// Counters of one command.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Regular files fully done.
    pub files: u64,
    /// Symlinks done.
    pub links: u64,
    /// FIFOs, sockets and device nodes done.
    pub specials: u64,
    /// Entries whose metadata alone was sent and stored (a backup's
    /// `Update`s).
    pub updated: u64,
    /// Device nodes a restore could not make (not root).
    pub needs_root: u64,
    /// Entries not sent because the other side already had them
    /// (unchanged).
    pub skipped: u64,
    /// Entries skipped because rsb does not store them (a file type
    /// Linux does not have, reserved names).
    pub unsupported: u64,
    /// Entries that failed.
    pub failed: u64,
    /// File-content bytes of the files done.
    pub bytes: u64,
    /// Files stored as last read although they kept changing while read
    /// (also counted in `files`).
    pub changed: u64,
    /// Entries that vanished between the walk and their sending.
    pub vanished: u64,
    /// File-content bytes that crossed the wire, done or not (what the
    /// summary shows: an interrupted transfer moved them too).
    pub moved: u64,
    /// Bytes of files stored as deltas that the server took from the
    /// versions it held.
    pub reused: u64,
}

impl Counts {
    /// The summary line's figures: `verb` and `noun` (`"backup"`,
    /// `"sent"`), these counts, and the time it took.
    pub fn summary(&self, verb: &'static str, noun: &'static str, elapsed: Duration) -> Summary {
        Summary {
            verb,
            noun,
            files: self.files,
            links: self.links,
            specials: self.specials,
            unchanged: self.skipped,
            updated: self.updated,
            unsupported: self.unsupported,
            failed: self.failed,
            bytes: self.moved,
            changed: self.changed,
            vanished: self.vanished,
            reused: self.reused,
            elapsed,
        }
    }
}

impl std::ops::AddAssign<&Counts> for Counts {
    /// Adds another command's counts (a long-running command's totals).
    fn add_assign(&mut self, c: &Counts) {
        self.files += c.files;
        self.links += c.links;
        self.specials += c.specials;
        self.updated += c.updated;
        self.needs_root += c.needs_root;
        self.skipped += c.skipped;
        self.unsupported += c.unsupported;
        self.failed += c.failed;
        self.bytes += c.bytes;
        self.changed += c.changed;
        self.vanished += c.vanished;
        self.moved += c.moved;
        self.reused += c.reused;
    }
}

/// Prints for one command and keeps its counters.
pub struct Reporter {
    quiet: bool,
    progress: bool,
    start: Instant,
    pace: Pace,
    /// The file being moved, for the progress line.
    current: String,
    /// Failures by cause: a few named per cause, the rest counted.
    repeats: Repeats,
    /// The command's counters.
    pub counts: Counts,
}

impl Reporter {
    /// A reporter for a command starting now. `progress`: stderr is a
    /// terminal and a live line is wanted.
    pub fn new(quiet: bool, progress: bool) -> Reporter {
        Reporter {
            quiet,
            progress: progress && !quiet,
            start: Instant::now(),
            pace: Pace::default(),
            current: String::new(),
            repeats: Repeats::default(),
            counts: Counts::default(),
        }
    }

    fn clear_progress(&mut self) {
        if self.pace.drawn() {
            self.pace.cleared();
            eprint!("\r\x1b[K");
        }
    }

    /// A file failed: printed whatever `-q` says, but only the first few
    /// with the same cause (the rest are counted, and one line at the end
    /// says how many: see [`Self::flush_repeats`]). The cause may come from
    /// the server: control characters in it are escaped so that it cannot
    /// play tricks with the terminal.
    pub fn fail(&mut self, path: &str, cause: &str) {
        let cause = escape(cause.as_bytes());
        if self.repeats.admit(&cause) {
            self.clear_progress();
            eprintln!("rsb-client: {path}: {cause}");
        }
        self.counts.failed += 1;
    }

    /// A damaged file found by `verify`: always named, even when many
    /// share a cause (which files to restore again is the point).
    pub fn damaged(&mut self, path: &str, cause: &str) {
        self.clear_progress();
        eprintln!("rsb-client: {path}: {}", escape(cause.as_bytes()));
        self.counts.failed += 1;
    }

    /// An entry vanished before it could be sent: a warning, printed
    /// whatever `-q` says, since it sets the exit status.
    pub fn vanished(&mut self, path: &str) {
        self.clear_progress();
        eprintln!("rsb-client: {path}: vanished before it could be sent");
        self.counts.vanished += 1;
    }

    /// A file kept changing while it was read `reads` times; the last copy
    /// read is being stored (counted once its commit is confirmed).
    pub fn changed(&mut self, path: &str, reads: u32) {
        self.clear_progress();
        eprintln!("rsb-client: {path}: changed while read ({reads} times): stored as last read");
    }

    /// Prints the failures not named, one line per cause, e.g.
    /// `rsb-client: ... and 987 more files: No space left on device`.
    pub fn flush_repeats(&mut self) {
        let lines = self.repeats.drain();
        if !lines.is_empty() {
            self.clear_progress();
        }
        for line in lines {
            eprintln!("rsb-client: {line}");
        }
    }

    /// An entry left out on purpose, not counted (the server's own store):
    /// one line, unless `-q`.
    pub fn note(&mut self, path: &str, why: &str) {
        self.clear_progress();
        if !self.quiet {
            eprintln!("rsb-client: {path}: skipped: {why}");
        }
    }

    /// An entry rsb does not store was skipped (counted as not
    /// supported).
    pub fn skip(&mut self, path: &str, reason: &str) {
        self.clear_progress();
        if !self.quiet {
            eprintln!("rsb-client: {path}: skipped: {reason}");
        }
        self.counts.unsupported += 1;
    }

    /// The file now being moved, for the progress line.
    pub fn current(&mut self, name: &str) {
        if self.progress {
            self.current.clear();
            self.current.push_str(name);
        }
    }

    /// Redraws the progress line (at most 4 times a second, after 1 s):
    /// `done` bytes of `total` (as far as known), the rate, the time left
    /// and the current file, cut to the terminal's width.
    pub fn progress(&mut self, done: u64, total: Option<u64>) {
        if !self.progress {
            return;
        }
        let elapsed = self.start.elapsed();
        if !self.pace.due(elapsed) {
            return;
        }
        let p = Progress {
            done,
            total,
            elapsed,
            current: &self.current,
        };
        eprint!("{}", ui::format_progress(&p, terminal_width()));
        let _ = std::io::stderr().flush();
    }

    /// Ends the command: clears the progress line and prints the summary.
    pub fn finish(&mut self, verb: &'static str, noun: &'static str) {
        self.flush_repeats();
        self.clear_progress();
        let c = self.counts;
        if c.needs_root > 0 {
            // Each was named (or counted) as it failed; one line says why,
            // whatever `-q` says: it sets the exit status.
            eprintln!(
                "rsb-client: {} not created: {}",
                ui::count(c.needs_root, "device node", "device nodes"),
                crate::io::store::NEEDS_ROOT
            );
        }
        if self.quiet {
            return;
        }
        eprintln!(
            "{}",
            ui::format_summary(&c.summary(verb, noun, self.start.elapsed()))
        );
    }

    /// Ends a listing: `ls: N entries, F failed, in 0.01s`.
    pub fn finish_list(&mut self, entries: u64) {
        self.flush_repeats();
        self.clear_progress();
        if !self.quiet {
            eprintln!(
                "{}",
                ui::format_list_summary(entries, self.counts.failed, self.start.elapsed())
            );
        }
    }

    /// The summary of a `verify`.
    pub fn finish_verify(&mut self, files: u64, bytes: u64, damaged: u64, unchecked: u64) {
        self.flush_repeats();
        self.clear_progress();
        if !self.quiet {
            eprintln!(
                "{}",
                ui::format_verify_summary(files, bytes, damaged, unchecked, self.start.elapsed())
            );
        }
    }
}

nix::ioctl_read_bad!(tiocgwinsz, nix::libc::TIOCGWINSZ, nix::libc::winsize);

/// The width of the terminal on stderr, 80 when it does not say.
fn terminal_width() -> usize {
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct it is given.
    match unsafe { tiocgwinsz(2, &mut ws) } {
        Ok(_) if ws.ws_col > 0 => usize::from(ws.ws_col),
        _ => 80,
    }
}
