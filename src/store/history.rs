//! The names of a namespace's history: where the versions a backup
//! replaced are kept, and how a batch of them is named. Pure: names and
//! times in, names and times out; the moves are `io/store/history.rs`'s.
//!
//! Layout, beneath a client's namespace `DIR/<name>/`:
//!
//! * `.rsb-tmp.history/` ([`HISTORY_DIR`]): in the wire's reserved space,
//!   so no client path can ever name it, no listing or restore of the
//!   current tree shows it, and it cannot meet another client's name
//!   (it is inside this client's namespace). The sweep never enters it.
//! * `.rsb-tmp.history/<TIME>/` ([`batch_name`], UTC with nanoseconds,
//!   `2026-12-02T21:40:05.123456789Z`: sorted by name is sorted by time):
//!   one directory per commit that replaced something. Beneath it, at
//!   their own paths, the entries that stopped being current at TIME, as
//!   they were stored (content, mode, owner, attributes, the crc32c
//!   record; a file of several names keeps them as links of one inode),
//!   with the directories above them made owner-only to hold them.
//! * `.rsb-tmp.history/<TIME>/.rsb-tmp.index` ([`INDEX_NAME`]): the
//!   paths of the entries the batch keeps, one per line ([`index_bytes`]),
//!   so a reader tells a kept directory from one made only to hold kept
//!   entries below it without guessing. Reserved name: no client path's
//!   first component can be it.
//! * `.rsb-tmp.history/pending.<salt>.<TIME>/` ([`pending_name`]): a batch
//!   being committed by the process of that salt. The commit renames it to
//!   `<TIME>` when its entries are in place; a process that died before
//!   that leaves it to the next run, which puts it right (see
//!   `io/store/history.rs`) before it commits anything in the namespace.

use crate::calendar::{civil_from_days, days_from_civil, days_in_month};
use crate::proto::path::TMP_PREFIX;
use crate::proto::WirePath;

/// The history directory's name at the root of a namespace.
pub const HISTORY_DIR: &[u8] = b".rsb-tmp.history";

/// The index of a batch, at its root.
pub const INDEX_NAME: &[u8] = b".rsb-tmp.index";

/// The first line of an index: its format.
const INDEX_HEADER: &[u8] = b"rsb history index 1\n";

/// The index of a batch keeping `paths`: a header line, then one line per
/// path with `\` written `\\` and a newline `\n` (every other byte as it
/// is), so any file name survives.
pub fn index_bytes<'a>(paths: impl IntoIterator<Item = &'a WirePath>) -> Vec<u8> {
    let mut out = INDEX_HEADER.to_vec();
    for p in paths {
        for &c in p.as_bytes() {
            match c {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                _ => out.push(c),
            }
        }
        out.push(b'\n');
    }
    out
}

/// The paths of an index made by [`index_bytes`]; `None` when it is not
/// one (another format, a torn write: a last line without its newline).
pub fn parse_index(bytes: &[u8]) -> Option<Vec<WirePath>> {
    let body = bytes.strip_prefix(INDEX_HEADER)?;
    if !body.is_empty() && body.last() != Some(&b'\n') {
        return None;
    }
    let mut paths = Vec::new();
    for line in body.split(|&c| c == b'\n') {
        if line.is_empty() {
            continue;
        }
        let mut raw = Vec::with_capacity(line.len());
        let mut it = line.iter();
        while let Some(&c) = it.next() {
            raw.push(match c {
                b'\\' => match it.next() {
                    Some(b'\\') => b'\\',
                    Some(b'n') => b'\n',
                    _ => return None,
                },
                c => c,
            });
        }
        paths.push(WirePath::new(raw).ok()?);
    }
    Some(paths)
}

/// What every pending batch's name starts with.
const PENDING: &[u8] = b"pending.";

/// The name of the batch committed at `secs.nanos` (UTC).
pub fn batch_name(secs: i64, nanos: u32) -> Vec<u8> {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        nanos.min(999_999_999)
    )
    .into_bytes()
}

/// The time of a batch named by [`batch_name`]; `None` for any other
/// name.
pub fn parse_batch_name(name: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(name).ok()?;
    let b = s.as_bytes();
    // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
    if b.len() != 30 {
        return None;
    }
    let seps = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (29, b'Z'),
    ];
    if seps.iter().any(|&(i, c)| b.get(i) != Some(&c)) {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = s.get(from..to)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let nanos = u32::try_from(num(20, 29)?).ok()?;
    let (Ok(year), Ok(month), Ok(day)) = (i32::try_from(y), u8::try_from(m), u8::try_from(d))
    else {
        return None;
    };
    if !(1..=12).contains(&m)
        || d < 1
        || day > days_in_month(year, month)
        || hh > 23
        || mm > 59
        || ss > 59
    {
        return None;
    }
    let secs = days_from_civil(y, month, day) * 86_400 + hh * 3600 + mm * 60 + ss;
    Some((secs, nanos))
}

/// The name of the pending batch of the process with `salt` that will be
/// published as `batch`.
pub fn pending_name(salt: u64, batch: &[u8]) -> Vec<u8> {
    let mut n = PENDING.to_vec();
    n.extend_from_slice(format!("{salt:x}.").as_bytes());
    n.extend_from_slice(batch);
    n
}

/// The salt and the batch name of a pending batch's name.
pub fn parse_pending(name: &[u8]) -> Option<(u64, &[u8])> {
    let rest = name.strip_prefix(PENDING)?;
    let dot = rest.iter().position(|&c| c == b'.')?;
    let (salt, batch) = (rest.get(..dot)?, rest.get(dot + 1..)?);
    let salt = u64::from_str_radix(std::str::from_utf8(salt).ok()?, 16).ok()?;
    parse_batch_name(batch)?;
    Some((salt, batch))
}

/// True for the history directory's name: the one hidden name at a
/// namespace's root that holds versions (never a leftover).
pub fn is_history_dir(name: &[u8]) -> bool {
    name == HISTORY_DIR
}

/// The history directory is in the wire's reserved space.
const _: () = assert!(HISTORY_DIR.len() > TMP_PREFIX.len());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::path::is_tmp_name;

    #[test]
    fn batch_names_round_trip_and_sort_by_time() {
        assert_eq!(batch_name(0, 0), b"1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            batch_name(1_764_711_605, 123_456_789),
            b"2025-12-02T21:40:05.123456789Z"
        );
        // 2024-02-29 (a leap day) and the last second of a year.
        let leap = days_from_civil(2024, 2, 29) * 86_400 + 86_399;
        assert_eq!(batch_name(leap, 5), b"2024-02-29T23:59:59.000000005Z");
        let mut last = 0;
        for secs in [0, 59, 3_599, 86_399, 951_782_400, leap, 4_102_444_799] {
            for nanos in [0, 1, 999_999_999] {
                let n = batch_name(secs, nanos);
                assert_eq!(parse_batch_name(&n), Some((secs, nanos)), "{n:?}");
                assert!(n.as_slice() > batch_name(last, 0).as_slice() || secs == 0);
            }
            last = secs;
        }
    }

    #[test]
    fn only_batch_names_parse() {
        for bad in [
            &b""[..],
            b"2026-13-01T00:00:00.000000000Z",
            b"2026-02-29T00:00:00.000000000Z",
            b"2026-01-01T24:00:00.000000000Z",
            b"2026-01-01T00:60:00.000000000Z",
            b"2026-01-01T00:00:00.000000000",
            b"2026-01-01 00:00:00.000000000Z",
            b"2026-01-01T00:00:00.00000000aZ",
            b"+026-01-01T00:00:00.000000000Z",
            b"pending.1f.2026-01-01T00:00:00.000000000Z",
        ] {
            assert_eq!(
                parse_batch_name(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn pending_names_carry_their_salt_and_batch() {
        let batch = batch_name(1_000_000_000, 42);
        let p = pending_name(0x1f, &batch);
        assert_eq!(parse_pending(&p), Some((0x1f, batch.as_slice())));
        assert_eq!(parse_pending(&batch), None);
        assert_eq!(parse_pending(b"pending.zz.2026"), None);
        assert_eq!(parse_pending(b"pending.1f.junk"), None);
    }

    #[test]
    fn indexes_round_trip_any_name_and_refuse_torn_ones() {
        let paths: Vec<WirePath> = [
            &b"home/ann/a.txt"[..],
            b"odd\\name\nwith/line",
            b"x\\n",
            b"\xff\x01",
        ]
        .iter()
        .map(|p| WirePath::new(p.to_vec()).unwrap())
        .collect();
        let bytes = index_bytes(&paths);
        assert_eq!(parse_index(&bytes), Some(paths.clone()));
        assert_eq!(parse_index(&index_bytes(&[])), Some(Vec::new()));
        assert_eq!(parse_index(&bytes[..bytes.len() - 1]), None);
        assert_eq!(parse_index(b"rsb history index 2\n"), None);
        assert_eq!(parse_index(b"rsb history index 1\nbad\\q\n"), None);
        assert_eq!(parse_index(b"rsb history index 1\n/abs\n"), None);
        assert!(is_tmp_name(INDEX_NAME));
    }

    #[test]
    fn the_history_directory_is_reserved_and_never_stale() {
        assert!(is_tmp_name(HISTORY_DIR));
        assert!(is_history_dir(HISTORY_DIR));
        assert!(!crate::store::names::is_stale_tmp(HISTORY_DIR, 1));
    }
}
