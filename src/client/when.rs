//! The TIME of `ls --at TIME` and `restore --at TIME`, and the DURATION of
//! an age, of retention's `within=` and of a schedule's `--every` (issue 11,
//! issue 12): parsing them, and the Gregorian calendar arithmetic that needs
//! (leap years, days in a month, ISO weeks).
//!
//! Pure: no clock read, no time zone database, no libc. The caller hands in
//! the time it calls now and the conversion of a local date and time to
//! epoch seconds (the shell's `mktime`), so every answer here is a function
//! of its arguments and is tested with a fake zone and a fixed now.
//!
//! The forms of TIME, all without signs, spaces or trailing characters:
//! * `YYYY-MM-DD`: 00:00:00 local time at the start of that day (the start,
//!   not the end: "the tree as it was on the morning of the 3rd");
//! * `YYYY-MM-DDTHH:MM` and `YYYY-MM-DDTHH:MM:SS`: local time, `T` only (a
//!   space would split the argument in a shell; no `Z`, no offset);
//! * `@EPOCHSECONDS`: decimal seconds since 1970 UTC, 0 to 2^62;
//! * an age, `N` and one unit (`s`, `m`, `h`, `d`, `w`): now minus N units;
//!   `0d` is now. A day is 86,400 seconds and a week 7 of them, whatever
//!   the clocks of the local zone do meanwhile. Composite ages (`1h30m`)
//!   are refused.

use std::fmt;

pub use crate::calendar::{
    days_in_month, is_leap_year, parse_duration, CivilTime, DurationError, Span, Unit,
    DURATION_FORMS, MAX_SECS,
};
use crate::calendar::{decimal, Decimal};

/// The accepted forms of TIME, named by every [`WhenError`].
pub const FORMS: &str = "TIME must be YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (local time), \
@EPOCHSECONDS or an age such as 90m, 36h, 7d, 2w";

/// A TIME that could not be read. Every message names the accepted forms
/// ([`FORMS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhenError {
    /// None of the forms (the text as given).
    Form(String),
    /// A date or time whose field is out of range: month 13, day 0,
    /// February 29 of a common year, hour 24, minute or second 60.
    Field {
        /// The text as given.
        input: String,
        /// Which field, and why, such as `2026-02 has 28 days`.
        reason: String,
    },
    /// An `@EPOCHSECONDS` or an age beyond 2^62 seconds, or an age reaching
    /// back beyond what an `i64` holds.
    TooLarge(String),
    /// A local date and time that the local zone skips (a daylight saving
    /// gap) or cannot represent.
    NotLocal(String),
}

impl fmt::Display for WhenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WhenError::Form(s) => write!(f, "'{}': {FORMS}", s.escape_debug()),
            WhenError::Field { input, reason } => {
                write!(f, "'{}': {reason}; {FORMS}", input.escape_debug())
            }
            WhenError::TooLarge(s) => write!(
                f,
                "'{}': too far away (at most 2^62 seconds); {FORMS}",
                s.escape_debug()
            ),
            WhenError::NotLocal(s) => write!(
                f,
                "'{}': no such time in the local time zone (its clocks skip it); {FORMS}",
                s.escape_debug()
            ),
        }
    }
}

/// The epoch seconds of TIME `s` (see the module's header for its forms).
///
/// `now_secs` is the time an age counts back from. `local` converts a
/// valid local date and time to epoch seconds, or returns `None` when the
/// local zone has no such time (a daylight saving gap: `mktime` moves such
/// a time instead of failing, so the shell compares the fields of the
/// result back). A time the zone has twice (the hour after clocks go back)
/// is whichever of the two `local` returns.
pub fn parse_time(
    s: &str,
    now_secs: i64,
    local: &dyn Fn(CivilTime) -> Option<i64>,
) -> Result<i64, WhenError> {
    let b = s.as_bytes();
    if let Some(digits) = b.strip_prefix(b"@") {
        return match decimal(digits) {
            Decimal::Value(n) if n <= MAX_SECS => Ok(n as i64),
            Decimal::Value(_) | Decimal::TooLarge => Err(WhenError::TooLarge(s.to_string())),
            Decimal::NotDigits => Err(WhenError::Form(s.to_string())),
        };
    }
    if b.len() >= 5 && b.get(4) == Some(&b'-') {
        let civil = date_time(s)?;
        return local(civil).ok_or_else(|| WhenError::NotLocal(s.to_string()));
    }
    let age = parse_duration(s).map_err(|e| match e {
        DurationError::Form(_) => WhenError::Form(s.to_string()),
        DurationError::TooLarge(_) => WhenError::TooLarge(s.to_string()),
    })?;
    // age <= 2^62, so it is an i64; only the subtraction can overflow.
    now_secs
        .checked_sub(age as i64)
        .ok_or_else(|| WhenError::TooLarge(s.to_string()))
}

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS`, every field
/// its exact number of digits and in range.
fn date_time(s: &str) -> Result<CivilTime, WhenError> {
    let b = s.as_bytes();
    let form = || WhenError::Form(s.to_string());
    // The separators each form has, by position.
    let seps: &[(usize, u8)] = match b.len() {
        10 => &[(4, b'-'), (7, b'-')],
        16 => &[(4, b'-'), (7, b'-'), (10, b'T'), (13, b':')],
        19 => &[(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')],
        _ => return Err(form()),
    };
    for (i, &c) in b.iter().enumerate() {
        let ok = match seps.iter().find(|(at, _)| *at == i) {
            Some(&(_, sep)) => c == sep,
            None => c.is_ascii_digit(),
        };
        if !ok {
            return Err(form());
        }
    }
    // Every other byte is a digit now, so each field reads.
    let field = |from: usize, to: usize| match b.get(from..to).map(decimal) {
        Some(Decimal::Value(n)) => Ok(n),
        _ => Err(form()),
    };
    let year = field(0, 4)? as i32;
    let month = field(5, 7)? as u8;
    let day = field(8, 10)? as u8;
    let (hour, minute) = if b.len() > 10 {
        (field(11, 13)? as u8, field(14, 16)? as u8)
    } else {
        (0, 0)
    };
    let second = if b.len() > 16 {
        field(17, 19)? as u8
    } else {
        0
    };
    let bad = |reason: String| {
        Err(WhenError::Field {
            input: s.to_string(),
            reason,
        })
    };
    if !(1..=12).contains(&month) {
        return bad(format!("month {month:02} is not 01 to 12"));
    }
    let days = days_in_month(year, month);
    if day == 0 || day > days {
        return bad(format!(
            "{year:04}-{month:02} has no day {day:02} (it has {days} days)"
        ));
    }
    if hour > 23 {
        return bad(format!("hour {hour:02} is not 00 to 23"));
    }
    if minute > 59 {
        return bad(format!("minute {minute:02} is not 00 to 59"));
    }
    if second > 59 {
        return bad(format!("second {second:02} is not 00 to 59"));
    }
    Ok(CivilTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-05-01T12:00:00Z.
    const NOW: i64 = 1_777_636_800;

    /// A fake zone one hour east of UTC whose clocks skip 2026-03-29
    /// 02:00 to 02:59 (a daylight saving gap, kept simple: no offset
    /// change after it).
    fn utc_plus_1(c: CivilTime) -> Option<i64> {
        let gap = (c.year, c.month, c.day, c.hour) == (2026, 3, 29, 2);
        (!gap).then(|| c.utc_secs() - 3_600)
    }

    fn at(s: &str) -> Result<i64, WhenError> {
        parse_time(s, NOW, &utc_plus_1)
    }

    fn ok(s: &str) -> i64 {
        at(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn dates_are_local_midnight_at_the_start_of_the_day() {
        assert_eq!(ok("2026-01-01"), 1_767_225_600 - 3_600);
        assert_eq!(ok("2024-02-29"), 1_709_164_800 - 3_600);
        assert_eq!(ok("2000-03-01"), 951_868_800 - 3_600);
        assert_eq!(ok("1970-01-01"), -3_600);
        assert_eq!(
            ok("2026-03-29"),
            ok("2026-03-28") + 86_400,
            "midnight is no gap"
        );
    }

    #[test]
    fn date_times_are_local_with_or_without_seconds() {
        assert_eq!(ok("2026-05-01T13:00"), NOW);
        assert_eq!(ok("2026-05-01T13:00:00"), NOW);
        assert_eq!(ok("2026-05-01T13:00:01"), NOW + 1);
        assert_eq!(ok("2027-01-01T00:59:59"), 1_798_761_599, "23:59:59Z");
        assert_eq!(ok("2026-12-31T23:59:59"), 1_798_761_599 - 3_600);
        assert_eq!(ok("2026-12-31T23:59"), 1_798_761_599 - 3_600 - 59);
    }

    #[test]
    fn epoch_seconds_are_non_negative_and_at_most_2_62() {
        assert_eq!(ok("@0"), 0);
        assert_eq!(ok("@1777636800"), NOW);
        assert_eq!(ok("@007"), 7);
        assert_eq!(ok("@4611686018427387904"), 1 << 62);
        for s in [
            "@4611686018427387905",
            "@9223372036854775808",
            "@99999999999999999999999",
        ] {
            assert_eq!(at(s), Err(WhenError::TooLarge(s.to_string())), "{s}");
        }
        for s in [
            "@", "@-1", "@+1", "@1.5", "@ 1", "@1 ", "@1e3", "@0x10", "@@1", "@7d",
        ] {
            assert_eq!(at(s), Err(WhenError::Form(s.to_string())), "{s}");
        }
    }

    #[test]
    fn ages_count_back_from_now() {
        assert_eq!(ok("90m"), NOW - 90 * 60);
        assert_eq!(ok("36h"), NOW - 36 * 3_600);
        assert_eq!(ok("7d"), NOW - 7 * 86_400);
        assert_eq!(ok("2w"), NOW - 14 * 86_400);
        assert_eq!(ok("45s"), NOW - 45);
        assert_eq!(ok("0d"), NOW, "an age of 0 is now");
        assert_eq!(ok("0s"), NOW);
        assert_eq!(ok("007d"), NOW - 7 * 86_400);
        assert_eq!(ok("4611686018427387904s"), NOW - (1 << 62));
        assert_eq!(
            parse_time("1s", 0, &utc_plus_1),
            Ok(-1),
            "before 1970 is a time"
        );
    }

    #[test]
    fn ages_beyond_range_are_too_large() {
        for s in [
            "4611686018427387905s",
            "7625142226236w",
            "18446744073709551615s",
            "18446744073709551616s",
            "99999999999999999999999d",
        ] {
            assert_eq!(at(s), Err(WhenError::TooLarge(s.to_string())), "{s}");
        }
        // Within 2^62 but reaching back beyond an i64.
        assert_eq!(
            parse_time("2m", i64::MIN + 60, &utc_plus_1),
            Err(WhenError::TooLarge("2m".to_string()))
        );
        assert_eq!(parse_time("1m", i64::MIN + 60, &utc_plus_1), Ok(i64::MIN));
    }

    #[test]
    fn calendar_fields_are_checked_exactly() {
        for s in [
            "2024-02-29",
            "2000-02-29",
            "2026-02-28",
            "2026-01-31",
            "2026-04-30",
            "2026-12-31T23:59:59",
            "2026-06-15T00:00:00",
            "0000-01-01",
            "9999-12-31T23:59:59",
        ] {
            assert!(at(s).is_ok(), "{s}: {:?}", at(s));
        }
        for (s, reason) in [
            ("2026-02-29", "2026-02 has no day 29 (it has 28 days)"),
            ("1900-02-29", "1900-02 has no day 29 (it has 28 days)"),
            ("2024-02-30", "2024-02 has no day 30 (it has 29 days)"),
            ("2026-04-31", "2026-04 has no day 31 (it has 30 days)"),
            ("2026-01-32", "2026-01 has no day 32 (it has 31 days)"),
            ("2026-01-00", "2026-01 has no day 00 (it has 31 days)"),
            ("2026-13-01", "month 13 is not 01 to 12"),
            ("2026-00-10", "month 00 is not 01 to 12"),
            ("2026-01-01T24:00", "hour 24 is not 00 to 23"),
            ("2026-01-01T99:00:00", "hour 99 is not 00 to 23"),
            ("2026-01-01T23:60", "minute 60 is not 00 to 59"),
            ("2026-01-01T23:59:60", "second 60 is not 00 to 59"),
        ] {
            let want = WhenError::Field {
                input: s.to_string(),
                reason: reason.to_string(),
            };
            assert_eq!(at(s), Err(want), "{s}");
        }
    }

    #[test]
    fn other_shapes_are_refused_naming_the_forms() {
        for s in [
            "",
            "d",
            "7",
            "7x",
            "7D",
            "1h30m",
            "1.5h",
            "-7d",
            "+7d",
            " 7d",
            "7d ",
            "7 d",
            "now",
            "2026-1-1",
            "2026-01-1",
            "2026-1-01",
            "26-01-01",
            "20260101",
            "2026/01/01",
            "2026-01-01Z",
            "2026-01-01T00:00Z",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00+01:00",
            "2026-01-01T00:00:00.5",
            "2026-01-01 00:00",
            "2026-01-01t00:00",
            "2026-01-01T0:00",
            "2026-01-01T00",
            "2026-01-01T",
            "2026-01-01T00:00:",
            "2026-01-01T00:00:0",
            "+2026-01-01",
            "-2026-01-01",
            "12026-01-01",
            " 2026-01-01",
            "2026-01-01 ",
            "2026-01-01\n",
            "２０２６-01-01",
            "2026-０1-01",
            "7ｄ",
        ] {
            let err = at(s).expect_err(s);
            assert_eq!(err, WhenError::Form(s.to_string()), "{s}");
            assert!(err.to_string().ends_with(FORMS), "{err}");
        }
    }

    #[test]
    fn a_time_the_zone_skips_does_not_exist_locally() {
        for s in [
            "2026-03-29T02:00",
            "2026-03-29T02:30:15",
            "2026-03-29T02:59:59",
        ] {
            assert_eq!(at(s), Err(WhenError::NotLocal(s.to_string())), "{s}");
        }
        assert_eq!(ok("2026-03-29T03:00") - ok("2026-03-29T01:59:59"), 3_601);
    }

    #[test]
    fn messages_name_the_input_and_the_forms() {
        assert_eq!(
            FORMS,
            "TIME must be YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (local time), @EPOCHSECONDS \
             or an age such as 90m, 36h, 7d, 2w"
        );
        for s in [
            "7x",
            "2026-02-30",
            "@99999999999999999999",
            "2026-03-29T02:30",
            "a\u{7}b",
        ] {
            let msg = at(s).expect_err(s).to_string();
            assert!(msg.ends_with(FORMS), "{msg}");
            assert!(
                msg.starts_with(&format!("'{}': ", s.escape_debug())),
                "{msg}"
            );
        }
        assert_eq!(
            at("2026-02-30").expect_err("no such day").to_string(),
            format!("'2026-02-30': 2026-02 has no day 30 (it has 28 days); {FORMS}")
        );
        assert_eq!(
            at("a\u{7}b").expect_err("bell").to_string(),
            format!("'a\\u{{7}}b': {FORMS}")
        );
    }

    #[test]
    fn durations_are_one_number_and_one_unit() {
        for (s, secs) in [
            ("30s", 30),
            ("15m", 900),
            ("2h", 7_200),
            ("1d", 86_400),
            ("2w", 1_209_600),
            ("0s", 0),
            ("0100m", 6_000),
            ("4611686018427387904s", 1 << 62),
            ("7625142226235w", 7_625_142_226_235 * 604_800),
        ] {
            assert_eq!(parse_duration(s), Ok(secs), "{s}");
        }
        for s in [
            "", "s", "30", "30S", "30sec", "1h30m", "-1s", "+1s", " 1s", "1s ", "1.5h", "1y",
        ] {
            assert_eq!(
                parse_duration(s),
                Err(DurationError::Form(s.to_string())),
                "{s}"
            );
        }
        for s in [
            "4611686018427387905s",
            "7625142226236w",
            "99999999999999999999s",
        ] {
            assert_eq!(
                parse_duration(s),
                Err(DurationError::TooLarge(s.to_string())),
                "{s}"
            );
        }
        let msg = parse_duration("7x").expect_err("7x").to_string();
        assert_eq!(msg, format!("'7x': {DURATION_FORMS}"));
    }

    #[test]
    fn spans_print_back_in_their_own_unit() {
        for (s, printed) in [
            ("7d", "7d"),
            ("1w", "1w"),
            ("007d", "7d"),
            ("90m", "90m"),
            ("0s", "0s"),
        ] {
            let span = Span::parse(s).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(span.to_string(), printed);
            assert_eq!(Span::parse(printed), Ok(span));
        }
        let week = Span {
            count: 1,
            unit: Unit::Week,
        };
        assert_eq!(
            week.secs(),
            Span {
                count: 7,
                unit: Unit::Day
            }
            .secs()
        );
        assert_ne!(
            week,
            Span {
                count: 7,
                unit: Unit::Day
            }
        );
        let huge = Span {
            count: u64::MAX,
            unit: Unit::Week,
        };
        assert_eq!(huge.secs(), u64::MAX, "saturates, never panics");
    }

    #[test]
    fn leap_years_and_month_lengths() {
        for (year, leap) in [
            (2024, true),
            (2026, false),
            (2000, true),
            (1900, false),
            (2100, false),
            (0, true),
            (-4, true),
        ] {
            assert_eq!(is_leap_year(year), leap, "{year}");
        }
        let lengths: Vec<u8> = (0..=13).map(|m| days_in_month(2026, m)).collect();
        assert_eq!(
            lengths,
            [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 0]
        );
        assert_eq!(days_in_month(2024, 2), 29);
    }

    fn date(year: i32, month: u8, day: u8) -> CivilTime {
        CivilTime {
            year,
            month,
            day,
            hour: 12,
            minute: 0,
            second: 0,
        }
    }

    #[test]
    fn iso_weeks_follow_the_first_thursday() {
        // Checked against date(1) +%G-W%V-%u.
        for ((y, m, d), week, weekday) in [
            ((2026, 1, 1), (2026, 1), 4),
            ((2021, 1, 3), (2020, 53), 7),
            ((2024, 12, 30), (2025, 1), 1),
            ((2008, 12, 29), (2009, 1), 1),
            ((2010, 1, 3), (2009, 53), 7),
            ((2020, 12, 31), (2020, 53), 4),
            ((2027, 1, 1), (2026, 53), 5),
            ((2026, 12, 28), (2026, 53), 1),
            ((1970, 1, 1), (1970, 1), 4),
        ] {
            let c = date(y, m, d);
            assert_eq!(c.iso_week(), week, "{c:?}");
            assert_eq!(c.weekday(), weekday, "{c:?}");
        }
    }

    #[test]
    fn utc_fields_round_trip_through_seconds() {
        for secs in (-800_000_000_000i64..800_000_000_000).step_by(9_876_543_211) {
            let c = CivilTime::from_utc(secs).unwrap_or_else(|| panic!("{secs}"));
            assert!(c.is_valid(), "{c:?}");
            assert_eq!(c.utc_secs(), secs, "{c:?}");
        }
        assert_eq!(
            CivilTime::from_utc(-1),
            Some(CivilTime {
                year: 1969,
                month: 12,
                day: 31,
                hour: 23,
                minute: 59,
                second: 59
            })
        );
        assert_eq!(
            CivilTime::from_utc(1_798_761_599).map(|c| c.year),
            Some(2026)
        );
        assert_eq!(CivilTime::from_utc(i64::MAX), None, "year beyond i32");
        assert_eq!(CivilTime::from_utc(i64::MIN), None);
        let odd = CivilTime {
            year: i32::MAX,
            month: 200,
            day: 255,
            hour: 255,
            minute: 255,
            second: 255,
        };
        assert!(!odd.is_valid());
        let _ = (odd.utc_secs(), odd.iso_week(), odd.weekday());
    }
}
