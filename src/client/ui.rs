//! The client's user interface as pure functions: parsing prompt lines and
//! one-shot arguments into [`Command`]s, and formatting what the user sees
//! (`ls -l`-like lines, the end-of-command summary, the progress line).
//!
//! Nothing here does I/O or reads a clock: times and durations come in as
//! parameters, so every function is tested with plain values. Printing,
//! terminal detection and local-time conversion belong to the I/O ring.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::Duration;

use crate::calendar::CivilTime;
use crate::client::input::unknown_command;
use crate::client::when::WhenError;
use crate::proto::path::escape;
use crate::proto::{dev_major, dev_minor, EntryKind, ListItem, Time, VersionItem};

/// One command of the client, at the prompt or from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Back up each local path, recursively.
    Backup {
        /// The local paths.
        paths: Vec<OsString>,
        /// `--exclude PATTERN`s of this command (checked), added to the
        /// client's own (`-x`, `--exclude-from`).
        excludes: Vec<Vec<u8>>,
    },
    /// Copy `path` back from the server into `dest` (default `.`).
    Restore {
        /// The source path as it was backed up.
        path: OsString,
        /// Where to put it; `None` means the current directory.
        dest: Option<OsString>,
        /// `--force`: a file or link of the backup may replace a local
        /// directory that has contents (else that entry is refused).
        force: bool,
        /// `--at TIME`: the tree as it was then (TIME as typed, read by
        /// [`crate::client::when::parse_time`] in the I/O ring, which has
        /// the clock and the local zone).
        at: Option<String>,
    },
    /// List the server's copy of a path (default: the namespace root).
    Ls {
        /// The path; `None`: the namespace root.
        path: Option<OsString>,
        /// `--at TIME`: the listing as it was then (TIME as typed).
        at: Option<String>,
    },
    /// Every version the server holds of a path, newest first.
    Versions(OsString),
    /// Have the server re-read its copy of a path (default: everything)
    /// and report files whose bytes no longer match their crc32c.
    Verify(Option<OsString>),
    /// Back up each path, then keep watching them and back up each
    /// change once it has been quiet for `delay`; rescan everything every
    /// `rescan`.
    Watch {
        /// The directories to watch.
        paths: Vec<OsString>,
        /// `--delay SECS`: quiet time before a change is sent (default 2 s).
        delay: std::time::Duration,
        /// `--rescan SECS`: period of the full rescans (default an hour).
        rescan: std::time::Duration,
        /// `--exclude PATTERN`s of this command, checked (added to the
        /// client's own).
        excludes: Vec<Vec<u8>>,
    },
    /// Run the plan the server holds for this client's name, and follow
    /// its changes, until stopped (one-shot only: `HOST [PORT] agent`).
    Agent,
    /// Show [`HELP`].
    Help,
    /// End the session.
    Quit,
}

/// The command list shown by `help`, one command per line, without a
/// trailing newline.
pub const HELP: &str = "\
backup PATH...       back up local files or directories (recursively)
backup --exclude PAT ...  the same, leaving out what PAT matches (repeatable)
PATH                 back up an existing path (at the prompt: the whole line)
restore PATH [DEST]  copy PATH back from the server into DEST (default .)
restore --force ...  the same, letting a file replace a local directory with contents
restore --at TIME    the same, from the tree as it was at TIME
ls [PATH]            list what the server holds (default: everything)
ls --at TIME [PATH]  the listing as it was at TIME (TIME: YYYY-MM-DD[THH:MM[:SS]], @SECS, 7d)
versions PATH        every version the server holds of PATH, newest first
watch [--delay SECS] [--rescan SECS] [--exclude PAT]... DIR...
                     back up DIR..., then every change within seconds, until stopped
verify [PATH]        have the server re-read its copy and report damaged files
agent                (command line only) run the plan the server holds for this name
help                 show this list
quit, exit           end the session";

/// Parses one prompt line (bytes, without the newline). `Ok(None)` for blank
/// lines and lines starting with `#`.
///
/// The first word (words are separated by whitespace and may use `'...'`,
/// `"..."` and backslash escapes) is matched against `backup`, `restore`,
/// `ls`, `versions`, `verify`, `help`, `quit` and `exit`. A line whose first word is not
/// a command is a backup only when it names an existing local path (`exists`
/// says, `lstat` in the I/O ring): the whole line trimmed of surrounding
/// ASCII whitespace is one path taken literally (so `/home/ann/my thesis`
/// works), unless the line starts with a quote, in which case each word is
/// a path and the first must exist. Anything else is an unknown command
/// (regression: `lss`, `clear` and an arrow key's escape sequence were
/// backed up as paths).
pub fn parse_line(line: &[u8], exists: &dyn Fn(&OsStr) -> bool) -> Result<Option<Command>, String> {
    let line = line.trim_ascii();
    if line.is_empty() || line.starts_with(b"#") {
        return Ok(None);
    }
    let quoted = matches!(line.first(), Some(b'\'' | b'"'));
    // Tokenizing only up to the first word decides whether the line is a
    // command; a path like `it's here` must not fail on its lone quote.
    let mut words = Words { rest: line };
    let first = match words.next() {
        Some(Ok(word)) => Some(word),
        Some(Err(e)) if quoted => return Err(e),
        _ => None,
    };
    if let Some(verb) = first.as_deref().and_then(command_word) {
        let args = words.collect::<Result<Vec<_>, _>>()?;
        let args = args.into_iter().map(OsString::from_vec).collect();
        return build(verb, args).map(Some);
    }
    if quoted {
        let paths = tokenize(line)?;
        let paths: Vec<OsString> = paths.into_iter().map(OsString::from_vec).collect();
        return match paths.first() {
            Some(p) if exists(p) => build(Verb::Backup, paths).map(Some),
            _ => Err(unknown_command(first.as_deref().unwrap_or_default())),
        };
    }
    if exists(OsStr::from_bytes(line)) {
        return Ok(Some(Command::Backup {
            paths: vec![OsString::from_vec(line.to_vec())],
            excludes: Vec::new(),
        }));
    }
    // The word as typed, up to the first blank, when it did not tokenize.
    let word = first.unwrap_or_else(|| {
        let end = line.iter().position(u8::is_ascii_whitespace);
        line.get(..end.unwrap_or(line.len()))
            .unwrap_or(line)
            .to_vec()
    });
    Err(unknown_command(&word))
}

/// Parses a one-shot command from the command line (already split into
/// words, no tokenizing). The first argument is a command word; otherwise,
/// when it is an existing local path (`exists`), every argument is a path to
/// back up; otherwise it is an unknown command (regression: `restor /a /b`
/// backed up both trees).
pub fn parse_args(args: &[OsString], exists: &dyn Fn(&OsStr) -> bool) -> Result<Command, String> {
    let Some((first, rest)) = args.split_first() else {
        return Err("no command given".to_string());
    };
    match command_word(first.as_bytes()) {
        Some(verb) => build(verb, rest.to_vec()),
        None if !first.is_empty() && exists(first) => build(Verb::Backup, args.to_vec()),
        None => Err(unknown_command(first.as_bytes())),
    }
}

/// Takes the leading `--exclude PATTERN` words off a command's arguments
/// (also written `--exclude=PATTERN` or `-x PATTERN`, repeatable, a `--`
/// ending them), for `backup` and `watch`: the patterns, each checked
/// ([`crate::client::exclude`]), and the arguments after them. A pattern
/// missing or invalid is the error, with `usage` after it.
pub fn take_excludes(
    args: Vec<OsString>,
    usage: &str,
) -> Result<(Vec<Vec<u8>>, Vec<OsString>), String> {
    let mut patterns = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(word) = args.peek() {
        let word = word.as_bytes();
        if word == b"--" {
            args.next();
            break;
        }
        if let Some(attached) = word.strip_prefix(b"--exclude=") {
            patterns.push(attached.to_vec());
            args.next();
        } else if word == b"--exclude" || word == b"-x" {
            let option = String::from_utf8_lossy(word).into_owned();
            args.next();
            let pattern = args
                .next()
                .ok_or_else(|| format!("{option} needs a PATTERN; {usage}"))?;
            patterns.push(pattern.into_vec());
        } else {
            break;
        }
    }
    crate::client::exclude::Excludes::new(&patterns).map_err(|e| format!("{e}; {usage}"))?;
    Ok((patterns, args.collect()))
}

/// A local time already broken down into calendar fields, so formatting
/// stays pure (the I/O ring converts with `localtime_r`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalTime {
    /// The year, e.g. 2026.
    pub year: i64,
    /// The month, 1 to 12.
    pub month: u32,
    /// The day of the month, 1 to 31.
    pub day: u32,
    /// The hour, 0 to 23.
    pub hour: u32,
    /// The minute, 0 to 59.
    pub min: u32,
}

/// Formats one entry like `ls -l`: `MODE SIZE YYYY-MM-DD HH:MM NAME`, with
/// ` -> TARGET` for symlinks, e.g. `-rw-r--r--       1234 2026-11-21 05:33 a.txt`;
/// a device shows `MAJOR, MINOR` in place of the size (`crw-rw-rw-       1, 3 ...`).
/// `t` is the entry's mtime in local time. Names and targets are escaped so
/// a newline in a name cannot forge a line.
pub fn format_list_line(item: &ListItem, t: LocalTime) -> String {
    let mut line = format!(
        "{} {:>10} {:04}-{:02}-{:02} {:02}:{:02} {}",
        mode_string(item.kind, item.meta.mode),
        if item.kind.is_device() {
            format!("{}, {}", dev_major(item.rdev), dev_minor(item.rdev))
        } else {
            item.size.to_string()
        },
        t.year,
        t.month,
        t.day,
        t.hour,
        t.min,
        escape(&item.name),
    );
    if item.kind == EntryKind::Symlink {
        line.push_str(" -> ");
        line.push_str(&escape(&item.target));
    }
    line
}

/// A local time with its seconds, `YYYY-MM-DD HH:MM:SS` (the form of
/// `ls`'s mtimes, to the second).
pub fn format_civil(t: CivilTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// One line of `versions`: type and mode (as `ls` shows them), stored-at
/// time, the time it stopped being current or `current`, size, mtime and
/// path, e.g.
/// `-rw-r--r-- 2026-12-01 10:00:00 2026-12-02 09:00:00       1234 2026-11-30 18:02:11 /home/ann/a.txt`.
/// `local` gives each time (epoch seconds) in local time.
pub fn format_version_line(item: &VersionItem, local: &dyn Fn(i64) -> CivilTime) -> String {
    let until = if item.until == Time::default() {
        format!("{:<19}", "current")
    } else {
        format_civil(local(item.until.secs))
    };
    format!(
        "{} {} {until} {:>10} {} {}",
        mode_string(item.kind, item.meta.mode),
        format_civil(local(item.stored.secs)),
        item.size,
        format_civil(local(item.meta.mtime.secs)),
        item.path,
    )
}

/// The last line of `versions`: `3 versions, 2048 bytes in history` (the
/// bytes history holds for the path: each kept inode beneath it once).
pub fn format_versions_summary(versions: u64, held: u64) -> String {
    format!(
        "{}, {} in history",
        count(versions, "version", "versions"),
        count(held, "byte", "bytes")
    )
}

/// What one command did, for its summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The command: `"backup"` or `"restore"`.
    pub verb: &'static str,
    /// What happened to the files: `"sent"` or `"received"`.
    pub noun: &'static str,
    /// Regular files transferred (symlinks are `links`, as `verify`
    /// counts regular files only).
    pub files: u64,
    /// Symlinks transferred.
    pub links: u64,
    /// FIFOs, sockets and device nodes transferred.
    pub specials: u64,
    /// Entries not transferred because the other side already had them.
    pub unchanged: u64,
    /// Entries of which only the metadata was transferred (a backup's
    /// `Update`s: a `chmod` or `chown` of unchanged content).
    pub updated: u64,
    /// Entries not transferred because rsb does not store their kind (a
    /// file type Linux does not have) or their name is reserved.
    pub unsupported: u64,
    /// Entries that failed.
    pub failed: u64,
    /// File-content bytes that crossed the wire, also those of files that
    /// failed or were never committed (an interrupted transfer).
    pub bytes: u64,
    /// Files stored as last read although they kept changing while read.
    pub changed: u64,
    /// Entries that vanished before they could be sent.
    pub vanished: u64,
    /// Bytes of delta-sent files that did not cross the wire: the other
    /// side took them from the version it held.
    pub reused: u64,
    /// Wall time of the command.
    pub elapsed: Duration,
}

/// The one-line summary, e.g.
/// `backup: 12 files sent, 3 unchanged, 2 updated, 1 not supported, 0 failed, 5242897 bytes in 0.42s (11.9 MiB/s)`
/// (`updated` and `not supported` only when there are some).
/// The byte count is exact, so scripts can parse it; the rate is for people.
/// Files sent as deltas add `, M reused` after it: the bytes taken from
/// the version the other side held, which did not cross the wire.
/// Files that changed while read or vanished are counted after `failed`
/// when there are any (`1 changed while read, 2 vanished`).
pub fn format_summary(s: &Summary) -> String {
    let mut warned = String::new();
    if s.changed > 0 {
        warned.push_str(&format!(", {} changed while read", s.changed));
    }
    if s.vanished > 0 {
        warned.push_str(&format!(", {} vanished", s.vanished));
    }
    let unsupported = match s.unsupported {
        0 => String::new(),
        n => format!(", {n} not supported"),
    };
    let updated = match s.updated {
        0 => String::new(),
        n => format!(", {n} updated"),
    };
    let links = match (s.links, s.specials) {
        (0, 0) => String::new(),
        (n, 0) => format!(" and {}", count(n, "symlink", "symlinks")),
        (0, m) => format!(" and {}", count(m, "special file", "special files")),
        (n, m) => format!(
            ", {} and {}",
            count(n, "symlink", "symlinks"),
            count(m, "special file", "special files")
        ),
    };
    let reused = match s.reused {
        0 => String::new(),
        n => format!(", {n} reused"),
    };
    format!(
        "{}: {}{links} {}, {} unchanged{updated}{unsupported}, {} failed{warned}, {}{reused} in {} ({}/s)",
        s.verb,
        count(s.files, "file", "files"),
        s.noun,
        s.unchanged,
        s.failed,
        count(s.bytes, "byte", "bytes"),
        format_elapsed(s.elapsed),
        human_bytes(rate(s.bytes, s.elapsed)),
    )
}

/// The summary of a `verify`, e.g. `verify: 3 files, 1.2 MiB read, 0 damaged,
/// 1 without a checksum, in 0.05s`.
pub fn format_verify_summary(
    files: u64,
    bytes: u64,
    damaged: u64,
    unchecked: u64,
    elapsed: Duration,
) -> String {
    format!(
        "verify: {}, {} read, {damaged} damaged, {unchecked} without a checksum, in {:.2}s",
        count(files, "file", "files"),
        human_bytes(bytes),
        elapsed.as_secs_f64()
    )
}

/// The summary of an `ls`, e.g. `ls: 12 entries, 0 failed, in 0.01s`.
pub fn format_list_summary(entries: u64, failed: u64, elapsed: Duration) -> String {
    format!(
        "ls: {}, {failed} failed, in {:.2}s",
        count(entries, "entry", "entries"),
        elapsed.as_secs_f64()
    )
}

/// `n` and the noun, singular for exactly one: `1 file`, `0 files`,
/// `2 files`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// What the progress line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress<'a> {
    /// File body bytes moved so far.
    pub done: u64,
    /// The bytes to move, as far as known (a backup: what the server asked
    /// for so far); `None` when unknown (a restore, a verify).
    pub total: Option<u64>,
    /// Time since the command started.
    pub elapsed: Duration,
    /// The file being moved, escaped, or empty.
    pub current: &'a str,
}

/// One progress line for a terminal `width` columns wide: starts with `\r`,
/// ends with `ESC[K` (clear to the end of the line), no newline, at most
/// `width - 1` characters in between (so it never wraps), e.g.
/// `  512.0 MiB / 1.0 GiB  50%  64.0 MiB/s  ETA 0:08  /home/ann/big.iso`.
/// Without a total: the bytes, the rate and the file. A file name that does
/// not fit loses its start (`...ann/big.iso`).
pub fn format_progress(p: &Progress<'_>, width: usize) -> String {
    let per_sec = rate(p.done, p.elapsed);
    let mut line = match p.total {
        Some(total) => {
            let eta = match total.saturating_sub(p.done) {
                0 => "0:00".to_string(),
                _ if per_sec == 0 => "-:--".to_string(),
                left => format_eta(left.div_ceil(per_sec)),
            };
            let pct = match total {
                0 => 100,
                t => (u128::from(p.done.min(t)) * 100 / u128::from(t)) as u64,
            };
            format!(
                "{:>11} / {}  {pct:>3}%  {}/s  ETA {eta}",
                human_bytes(p.done),
                human_bytes(total),
                human_bytes(per_sec),
            )
        }
        None => format!("{:>11}  {}/s", human_bytes(p.done), human_bytes(per_sec)),
    };
    let room = width.saturating_sub(1).max(20);
    if !p.current.is_empty() {
        let used = line.chars().count() + 2;
        let name_len = p.current.chars().count();
        if used + name_len <= room {
            line.push_str("  ");
            line.push_str(p.current);
        } else if used + 4 <= room {
            let keep = room - used - 3;
            let tail: String = p.current.chars().skip(name_len - keep).collect();
            line.push_str("  ...");
            line.push_str(&tail);
        }
    }
    let line: String = line.chars().take(room).collect();
    format!("\r{line}\x1b[K")
}

/// A byte count for people: `512 B`, `1.5 KiB`, `11.9 MiB`, `1.0 GiB`, ...
/// (binary units, one decimal above bytes).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    // Move up before rounding would print `1024.0` of the smaller unit.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The command a word names, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Backup,
    Restore,
    Ls,
    Versions,
    Verify,
    Watch,
    Agent,
    Help,
    Quit,
    Exit,
}

/// The default quiet time of `watch`.
pub const WATCH_DELAY: std::time::Duration = std::time::Duration::from_secs(2);
/// The default period of `watch`'s full rescans.
pub const WATCH_RESCAN: std::time::Duration = std::time::Duration::from_secs(3600);

fn command_word(word: &[u8]) -> Option<Verb> {
    match word {
        b"backup" => Some(Verb::Backup),
        b"restore" => Some(Verb::Restore),
        b"ls" => Some(Verb::Ls),
        b"versions" => Some(Verb::Versions),
        b"verify" => Some(Verb::Verify),
        b"watch" => Some(Verb::Watch),
        b"agent" => Some(Verb::Agent),
        b"help" => Some(Verb::Help),
        b"quit" => Some(Verb::Quit),
        b"exit" => Some(Verb::Exit),
        _ => None,
    }
}

/// Checks the argument count of `verb` and builds the command.
fn build(verb: Verb, args: Vec<OsString>) -> Result<Command, String> {
    let usage = match verb {
        Verb::Backup => "usage: backup [--exclude PATTERN]... PATH...",
        Verb::Restore => "usage: restore [--force] [--at TIME] PATH [DEST]",
        Verb::Ls => "usage: ls [--at TIME] [PATH]",
        Verb::Versions => "usage: versions PATH",
        Verb::Verify => "usage: verify [PATH]",
        Verb::Watch => "usage: watch [--delay SECS] [--rescan SECS] [--exclude PATTERN]... DIR...",
        Verb::Agent => "usage: agent",
        Verb::Help => "usage: help",
        Verb::Quit => "usage: quit",
        Verb::Exit => "usage: exit",
    };
    let (excludes, args) = match verb {
        Verb::Backup => take_excludes(args, usage)?,
        _ => (Vec::new(), args),
    };
    if args.iter().any(|a| a.is_empty()) {
        return Err(format!("empty path; {usage}"));
    }
    let mut args = args.into_iter().peekable();
    // `restore [--force] [--at TIME] [--] PATH [DEST]` (the options in
    // either order), `ls [--at TIME] [--] [PATH]`.
    let (mut force, mut at) = (false, None);
    if matches!(verb, Verb::Restore | Verb::Ls) {
        loop {
            if verb == Verb::Restore && !force && args.next_if(|a| a == "--force").is_some() {
                force = true;
            } else if at.is_none() && args.next_if(|a| a == "--at").is_some() {
                let time = args
                    .next()
                    .ok_or_else(|| format!("--at needs a TIME; {usage}"))?;
                let time = time
                    .into_string()
                    .map_err(|t| WhenError::Form(t.to_string_lossy().into_owned()).to_string())?;
                at = Some(time);
            } else {
                break;
            }
        }
        args.next_if(|a| a == "--");
    }
    // `watch [--delay SECS] [--rescan SECS] [--exclude PATTERN]... [--] DIR...`,
    // the options in any order.
    let (mut delay, mut rescan) = (None, None);
    let mut excludes = excludes;
    if verb == Verb::Watch {
        loop {
            if let Some(p) = args.next_if(|a| a.as_bytes().starts_with(b"--exclude=")) {
                excludes.push(p.as_bytes().get(10..).unwrap_or_default().to_vec());
                continue;
            }
            if let Some(option) = args.next_if(|a| a == "--exclude" || a == "-x") {
                let p = args.next().ok_or_else(|| {
                    format!("{} needs a PATTERN; {usage}", option.to_string_lossy())
                })?;
                excludes.push(p.into_vec());
                continue;
            }
            use crate::client::schedule::{parse_at_least, MIN_DELAY, MIN_PERIOD};
            let (slot, option, min) =
                if delay.is_none() && args.next_if(|a| a == "--delay").is_some() {
                    (&mut delay, "--delay", MIN_DELAY)
                } else if rescan.is_none() && args.next_if(|a| a == "--rescan").is_some() {
                    (&mut rescan, "--rescan", MIN_PERIOD)
                } else {
                    break;
                };
            let text = args
                .next()
                .ok_or_else(|| format!("{option} needs SECS; {usage}"))?;
            *slot = Some(parse_at_least(option, &text.to_string_lossy(), min)?);
        }
        args.next_if(|a| a == "--");
        crate::client::exclude::Excludes::new(&excludes).map_err(|e| format!("{e}; {usage}"))?;
    }
    let command = match (verb, args.len()) {
        (Verb::Backup, 1..) => Command::Backup {
            paths: args.collect(),
            excludes,
        },
        (Verb::Restore, 1 | 2) => match args.next() {
            Some(path) => Command::Restore {
                path,
                dest: args.next(),
                force,
                at,
            },
            None => return Err(usage.to_string()),
        },
        (Verb::Ls, 0 | 1) => Command::Ls {
            path: args.next(),
            at,
        },
        (Verb::Versions, 1) => match args.next() {
            Some(path) => Command::Versions(path),
            None => return Err(usage.to_string()),
        },
        (Verb::Verify, 0 | 1) => Command::Verify(args.next()),
        (Verb::Watch, 1..) => Command::Watch {
            paths: args.collect(),
            delay: delay.unwrap_or(WATCH_DELAY),
            rescan: rescan.unwrap_or(WATCH_RESCAN),
            excludes,
        },
        (Verb::Agent, 0) => Command::Agent,
        (Verb::Help, 0) => Command::Help,
        (Verb::Quit | Verb::Exit, 0) => Command::Quit,
        _ => return Err(usage.to_string()),
    };
    Ok(command)
}

/// Splits a whole line into words.
fn tokenize(line: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    Words { rest: line }.collect()
}

/// Shell-like words: separated by ASCII whitespace; `'...'` is literal;
/// inside `"..."` a backslash escapes only `"` and `\`; outside quotes a
/// backslash escapes any byte.
struct Words<'a> {
    rest: &'a [u8],
}

impl Iterator for Words<'_> {
    type Item = Result<Vec<u8>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.rest.iter().position(|b| !b.is_ascii_whitespace())?;
        let mut bytes = self.rest.get(start..).unwrap_or_default().iter();
        let mut word = Vec::new();
        let result = loop {
            let Some(&b) = bytes.next() else {
                break Ok(word);
            };
            match b {
                b if b.is_ascii_whitespace() => break Ok(word),
                b'\'' => loop {
                    match bytes.next() {
                        Some(b'\'') => break,
                        Some(&c) => word.push(c),
                        None => return self.fail("unbalanced ' quote"),
                    }
                },
                b'"' => loop {
                    match bytes.next() {
                        Some(b'"') => break,
                        Some(b'\\') => match bytes.as_slice().first() {
                            Some(&c @ (b'"' | b'\\')) => {
                                word.push(c);
                                bytes.next();
                            }
                            _ => word.push(b'\\'),
                        },
                        Some(&c) => word.push(c),
                        None => return self.fail("unbalanced \" quote"),
                    }
                },
                b'\\' => match bytes.next() {
                    Some(&c) => word.push(c),
                    None => return self.fail("backslash at the end of the line"),
                },
                c => word.push(c),
            }
        };
        self.rest = bytes.as_slice();
        Some(result)
    }
}

impl Words<'_> {
    /// Ends the iteration with an error.
    fn fail(&mut self, message: &str) -> Option<Result<Vec<u8>, String>> {
        self.rest = &[];
        Some(Err(message.to_string()))
    }
}

/// `ls -l`'s mode column: type letter, then rwx for user, group and other,
/// with setuid/setgid/sticky shown as `s`/`S`/`t`/`T` in the x position.
fn mode_string(kind: EntryKind, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(match kind {
        // A hard-linked name is shown as the file it is.
        EntryKind::File | EntryKind::HardLink => '-',
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::Fifo => 'p',
        EntryKind::Socket => 's',
        EntryKind::CharDev => 'c',
        EntryKind::BlockDev => 'b',
    });
    let special = [(0o4000, 's', 'S'), (0o2000, 's', 'S'), (0o1000, 't', 'T')];
    for (i, (bit, on, off)) in special.into_iter().enumerate() {
        let rwx = (mode >> (6 - 3 * i)) & 0o7;
        s.push(if rwx & 0o4 != 0 { 'r' } else { '-' });
        s.push(if rwx & 0o2 != 0 { 'w' } else { '-' });
        s.push(match (rwx & 0o1 != 0, mode & bit != 0) {
            (true, true) => on,
            (false, true) => off,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// Bytes per second, 0 when no time has passed.
fn rate(bytes: u64, elapsed: Duration) -> u64 {
    let nanos = elapsed.as_nanos();
    if nanos == 0 {
        return 0;
    }
    let per_sec = u128::from(bytes) * 1_000_000_000 / nanos;
    u64::try_from(per_sec).unwrap_or(u64::MAX)
}

/// `0.42s` below a minute, `1m05s` below an hour, `2h03m04s` above.
fn format_elapsed(d: Duration) -> String {
    // Rounded before choosing the form, so 59.999 s is `1m00s`, not `60.00s`.
    let centis = (d.as_nanos() + 5_000_000) / 10_000_000;
    if centis < 6000 {
        return format!("{}.{:02}s", centis / 100, centis % 100);
    }
    let secs = (d.as_nanos() + 500_000_000) / 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h == 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{h}h{m:02}m{s:02}s")
    }
}

/// `M:SS`, or `H:MM:SS` from an hour on.
fn format_eta(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h == 0 {
        format!("{m}:{s:02}")
    } else {
        format!("{h}:{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests;
