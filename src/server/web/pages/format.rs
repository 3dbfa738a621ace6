//! How the pages write numbers, times and modes for people: `1.5 KiB`,
//! `2024-05-01 12:34:56 UTC`, `5 min ago`, `drwxr-xr-x`. Plain text: the
//! callers escape it. Must not: read a clock (now is given).

use crate::calendar::civil_from_days;
use crate::proto::{EntryKind, Time};

/// A byte count with binary units, one decimal above bytes: `512 B`,
/// `1.5 KiB`, `11.9 MiB`.
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
    format!("{value:.1} {}", UNITS.get(unit).unwrap_or(&"EiB"))
}

/// A time in UTC, to the second: `2024-05-01 12:34:56 UTC`.
pub fn utc(t: Time) -> String {
    let days = t.secs.div_euclid(86_400);
    let rem = t.secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The same as an HTML `datetime` value (ISO 8601): `2024-05-01T12:34:56Z`.
pub fn iso(t: Time) -> String {
    let days = t.secs.div_euclid(86_400);
    let rem = t.secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A span of seconds, in its two largest units: `45 s`, `5 min`,
/// `3 h 12 min`, `2 d 4 h`.
pub fn span(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// How long before `now` `t` was: `just now`, `5 min ago`, `3 h ago`
/// (`in the future` for a clock that went back).
pub fn ago(now: Time, t: Time) -> String {
    if t > now {
        return "in the future".to_string();
    }
    let secs = u64::try_from(now.secs.saturating_sub(t.secs)).unwrap_or(u64::MAX);
    if secs < 10 {
        "just now".to_string()
    } else {
        format!("{} ago", span(secs))
    }
}

/// Seconds from `t` to `now`, 0 when `t` is later.
pub fn since(now: Time, t: Time) -> u64 {
    u64::try_from(now.secs.saturating_sub(t.secs)).unwrap_or(0)
}

/// The one-word type of an entry.
pub fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::Fifo => "fifo",
        EntryKind::Socket => "socket",
        EntryKind::CharDev => "char dev",
        EntryKind::BlockDev => "block dev",
        EntryKind::HardLink => "hard link",
    }
}

/// `ls -l`'s mode column: the type letter and the nine permission bits
/// with setuid, setgid and sticky shown as `ls` shows them.
pub fn mode_string(kind: EntryKind, mode: u32) -> String {
    let first = match kind {
        EntryKind::File | EntryKind::HardLink => '-',
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::Fifo => 'p',
        EntryKind::Socket => 's',
        EntryKind::CharDev => 'c',
        EntryKind::BlockDev => 'b',
    };
    let mut s = String::with_capacity(10);
    s.push(first);
    // (read bit, write bit, exec bit, special bit, letter when both, alone)
    let triads = [
        (0o400, 0o200, 0o100, 0o4000, 's', 'S'),
        (0o040, 0o020, 0o010, 0o2000, 's', 'S'),
        (0o004, 0o002, 0o001, 0o1000, 't', 'T'),
    ];
    for (r, w, x, special, both, alone) in triads {
        s.push(if mode & r != 0 { 'r' } else { '-' });
        s.push(if mode & w != 0 { 'w' } else { '-' });
        s.push(match (mode & x != 0, mode & special != 0) {
            (true, true) => both,
            (false, true) => alone,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_times_and_modes_read_like_ls() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
        let t = Time {
            secs: 1_700_000_000,
            nanos: 7,
        };
        assert_eq!(utc(t), "2023-11-14 22:13:20 UTC");
        assert_eq!(iso(t), "2023-11-14T22:13:20Z");
        assert_eq!(iso(Time { secs: -1, nanos: 0 }), "1969-12-31T23:59:59Z");
        let later = |s: i64| Time {
            secs: 1_700_000_000 + s,
            nanos: 0,
        };
        assert_eq!(ago(later(3), t), "just now");
        assert_eq!(ago(later(45), t), "45 s ago");
        assert_eq!(ago(later(300), t), "5 min ago");
        assert_eq!(ago(later(3 * 3600 + 120), t), "3 h 2 min ago");
        assert_eq!(ago(later(2 * 86_400 + 4 * 3600), t), "2 d 4 h ago");
        assert_eq!(ago(later(-5), t), "in the future");
        assert_eq!(span(7200), "2 h");
        assert_eq!(mode_string(EntryKind::Dir, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(EntryKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(EntryKind::File, 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_string(EntryKind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(EntryKind::Symlink, 0o777), "lrwxrwxrwx");
    }
}
