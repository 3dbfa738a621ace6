//! The wall clock and the local time zone, for the parts of the program
//! whose pure rules take times as arguments (retention's calendar buckets,
//! TIME arguments): `SystemTime::now` and `localtime_r` live here.

use crate::calendar::CivilTime;

/// Seconds since the epoch now (0 if the clock is before 1970).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
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
}
