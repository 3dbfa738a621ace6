//! The wall clock and the local time zone, for the parts of the program
//! whose pure rules take times as arguments (retention's calendar buckets,
//! TIME arguments): `SystemTime::now`, `localtime_r` and `mktime` live
//! here.

use crate::calendar::CivilTime;

/// Seconds since the epoch now (0 if the clock is before 1970).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The wall-clock time now, to the nanosecond.
pub fn now_time() -> crate::proto::Time {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    crate::proto::Time {
        secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos(),
    }
}

/// The local calendar time of `secs` since the epoch (`localtime_r`,
/// honouring `TZ`); UTC when the zone cannot say, and the epoch for a
/// year past an `i32`.
pub fn local_civil(secs: i64) -> CivilTime {
    let t: nix::libc::time_t = secs;
    // SAFETY: an all-zero `tm` is a valid value (integers and a null
    // `tm_zone` pointer), and localtime_r only writes into it.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals for the whole call;
    // localtime_r is the reentrant variant and keeps neither.
    let ok = !unsafe { nix::libc::localtime_r(&t, &mut tm) }.is_null();
    let field = |v: i32| u8::try_from(v).ok();
    let local = ok
        .then(|| {
            Some(CivilTime {
                year: tm.tm_year.checked_add(1900)?,
                month: field(tm.tm_mon + 1)?,
                day: field(tm.tm_mday)?,
                hour: field(tm.tm_hour)?,
                minute: field(tm.tm_min)?,
                // A leap second (60) is the last second of its minute.
                second: field(tm.tm_sec.min(59))?,
            })
        })
        .flatten();
    local
        .or_else(|| CivilTime::from_utc(secs))
        .or_else(|| CivilTime::from_utc(0))
        .unwrap_or(CivilTime {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        })
}

/// The epoch seconds of a local calendar time (`mktime`, honouring `TZ`,
/// the zone deciding whether daylight saving time is in force), `None`
/// when the local zone has no such time: `mktime` moves a time in a
/// daylight saving gap instead of failing, so the result's fields are
/// compared back. The `local` of [`crate::client::when::parse_time`].
pub fn local_secs(c: CivilTime) -> Option<i64> {
    // SAFETY: an all-zero `tm` is a valid value (integers and a null
    // `tm_zone` pointer).
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = c.year.checked_sub(1900)?;
    tm.tm_mon = i32::from(c.month) - 1;
    tm.tm_mday = i32::from(c.day);
    tm.tm_hour = i32::from(c.hour);
    tm.tm_min = i32::from(c.minute);
    tm.tm_sec = i32::from(c.second);
    tm.tm_isdst = -1;
    // SAFETY: `tm` is a live local for the whole call; mktime normalises
    // it in place and keeps no pointer to it.
    let t = unsafe { nix::libc::mktime(&mut tm) };
    // A failure (-1) is also 23:59:59 on 1969-12-31 UTC: comparing the
    // fields back tells them apart too.
    (local_civil(t) == c).then_some(t)
}

/// Time since boot, counting a suspend (`CLOCK_BOOTTIME`): the clock of
/// `--every`, so that a run missed while the machine slept is due the
/// moment it wakes. Falls back to `CLOCK_MONOTONIC`.
pub fn boottime() -> std::time::Duration {
    use nix::time::{clock_gettime, ClockId};
    let t = clock_gettime(ClockId::CLOCK_BOOTTIME)
        .or_else(|_| clock_gettime(ClockId::CLOCK_MONOTONIC))
        .map(|t| (t.tv_sec(), t.tv_nsec()))
        .unwrap_or((0, 0));
    std::time::Duration::new(
        u64::try_from(t.0).unwrap_or(0),
        u32::try_from(t.1).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_is_always_a_valid_calendar_time() {
        for secs in [0, 951_782_400, 1_764_711_605, -86_400, i64::MAX] {
            assert!(local_civil(secs).is_valid(), "{secs}");
        }
        assert!(now_secs() > 1_700_000_000);
    }

    #[test]
    fn mktime_is_the_inverse_of_localtime() {
        for secs in [0, 951_782_400, 1_764_711_605, 86_399] {
            assert_eq!(local_secs(local_civil(secs)), Some(secs), "{secs}");
        }
    }
}
