//! The Gregorian calendar and durations, shared by both sides: the local
//! date and time of a TIME argument or of a retention bucket
//! ([`CivilTime`]: leap years, days in a month, ISO weeks), the days
//! between a date and the epoch, and the DURATION of an age, of
//! retention's `within=` and of a schedule's `--every` ([`Span`]).
//!
//! Pure: no clock read, no time zone database, no libc; the shell hands in
//! local times (`localtime_r`) and the caller its own now.

use std::fmt;

/// The accepted form of a DURATION, named by every [`DurationError`].
pub const DURATION_FORMS: &str =
    "DURATION must be a whole number and one unit, s, m, h, d or w (such as 30s, 15m, 2h, 1d, 2w)";

/// The largest number of seconds an `@EPOCHSECONDS` or a duration may
/// stand for (2^62): far beyond any real date, and small enough that
/// adding or subtracting two of them never overflows an `i64`.
pub const MAX_SECS: u64 = 1 << 62;

/// A date and time of day as a wall clock shows it, without a zone: local
/// time when it comes from the user or from the shell's `localtime_r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CivilTime {
    /// The year (proleptic Gregorian; `YYYY` in TIME is 0000 to 9999).
    pub year: i32,
    /// The month, 1 to 12.
    pub month: u8,
    /// The day of the month, 1 to 28, 29, 30 or 31.
    pub day: u8,
    /// The hour, 0 to 23.
    pub hour: u8,
    /// The minute, 0 to 59.
    pub minute: u8,
    /// The second, 0 to 59 (no leap second).
    pub second: u8,
}

impl CivilTime {
    /// Whether every field is in range: month 1 to 12, a day the month has
    /// (February 29 only in a leap year), hour 0 to 23, minute and second 0
    /// to 59.
    pub fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour <= 23
            && self.minute <= 59
            && self.second <= 59
    }

    /// The UTC calendar time of `secs` since the epoch, or `None` when its
    /// year does not fit an `i32`. A fake local zone in tests is this with
    /// an offset added; the shell uses `localtime_r` instead.
    pub fn from_utc(secs: i64) -> Option<CivilTime> {
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        // rem is 0..86_400, so every field below fits its type.
        Some(CivilTime {
            year: i32::try_from(year).ok()?,
            month,
            day,
            hour: (rem / 3_600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        })
    }

    /// The epoch seconds of these fields read as UTC (no zone). Fields out
    /// of range are carried arithmetically (day 32 is the next month's
    /// first), never a panic; check [`CivilTime::is_valid`] first.
    pub fn utc_secs(&self) -> i64 {
        // |days| < 2^31 * 366, so the products stay far inside an i64.
        days_from_civil(i64::from(self.year), self.month, self.day) * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The ISO weekday of the date: 1 is Monday, 7 is Sunday.
    pub fn weekday(&self) -> u8 {
        weekday(days_from_civil(i64::from(self.year), self.month, self.day))
    }

    /// The ISO 8601 week of the date, `(week-numbering year, week 1 to 53)`:
    /// weeks run Monday to Sunday, and week 1 is the one holding the year's
    /// first Thursday, so December 29 may be in week 1 of the next year and
    /// January 3 in week 52 or 53 of the last.
    pub fn iso_week(&self) -> (i64, u8) {
        let days = days_from_civil(i64::from(self.year), self.month, self.day);
        // The Thursday of the same Monday-to-Sunday week decides the year.
        let thursday = days - i64::from(weekday(days)) + 4;
        let (iso_year, _, _) = civil_from_days(thursday);
        let week = (thursday - days_from_civil(iso_year, 1, 1)) / 7 + 1;
        (iso_year, week as u8)
    }
}

/// Whether `year` has a February 29 (Gregorian: every fourth year, but not
/// centuries unless divisible by 400).
pub fn is_leap_year(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The number of days of `month` (1 to 12) in `year`; 0 for a month out of
/// range.
pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`, which counts from March so February's length is
/// last).
pub fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of `days` since 1970-01-01
/// (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The ISO weekday (1 Monday to 7 Sunday) of `days` since 1970-01-01, a
/// Thursday.
fn weekday(days: i64) -> u8 {
    ((days + 3).rem_euclid(7) + 1) as u8
}

/// The unit of a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// `s`: one second.
    Second,
    /// `m`: 60 seconds.
    Minute,
    /// `h`: 3,600 seconds.
    Hour,
    /// `d`: 86,400 seconds (not a calendar day: a day with a clock change
    /// has 23 or 25 hours on the wall).
    Day,
    /// `w`: 7 days of 86,400 seconds.
    Week,
}

impl Unit {
    /// The seconds in one unit.
    pub fn secs(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3_600,
            Unit::Day => 86_400,
            Unit::Week => 604_800,
        }
    }

    /// The letter that writes the unit.
    pub fn letter(self) -> char {
        match self {
            Unit::Second => 's',
            Unit::Minute => 'm',
            Unit::Hour => 'h',
            Unit::Day => 'd',
            Unit::Week => 'w',
        }
    }

    /// The unit its letter writes.
    fn of_letter(b: u8) -> Option<Unit> {
        match b {
            b's' => Some(Unit::Second),
            b'm' => Some(Unit::Minute),
            b'h' => Some(Unit::Hour),
            b'd' => Some(Unit::Day),
            b'w' => Some(Unit::Week),
            _ => None,
        }
    }
}

/// A duration as written, `7d` or `36h`: kept in its own unit so that a
/// spec printed back reads as the user wrote it (`7d`, not `1w`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// How many units.
    pub count: u64,
    /// Which unit.
    pub unit: Unit,
}

impl Span {
    /// A DURATION: decimal digits (leading zeros allowed) and one unit
    /// letter, nothing else; `0s` is accepted (an age of 0 is now: a caller
    /// for which 0 means nothing refuses it itself). At most 2^62 seconds.
    pub fn parse(s: &str) -> Result<Span, DurationError> {
        let form = || DurationError::Form(s.to_string());
        let (&letter, digits) = s.as_bytes().split_last().ok_or_else(form)?;
        let unit = Unit::of_letter(letter).ok_or_else(form)?;
        let count = match decimal(digits) {
            Decimal::Value(n) => n,
            Decimal::NotDigits => return Err(form()),
            Decimal::TooLarge => return Err(DurationError::TooLarge(s.to_string())),
        };
        match count.checked_mul(unit.secs()) {
            Some(secs) if secs <= MAX_SECS => Ok(Span { count, unit }),
            _ => Err(DurationError::TooLarge(s.to_string())),
        }
    }

    /// The seconds this span stands for (saturating, for a span built by
    /// hand beyond what [`Span::parse`] accepts).
    pub fn secs(&self) -> u64 {
        self.count.saturating_mul(self.unit.secs())
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.count, self.unit.letter())
    }
}

/// The seconds of a DURATION such as `30s`, `15m`, `2h`, `1d` or `2w`
/// (see [`Span::parse`]): the age of TIME, retention's `within=` and a
/// schedule's `--every`.
pub fn parse_duration(s: &str) -> Result<u64, DurationError> {
    Span::parse(s).map(|span| span.secs())
}

/// A DURATION that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Not digits and one unit letter (the text as given).
    Form(String),
    /// More than 2^62 seconds.
    TooLarge(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Form(s) => write!(f, "'{}': {DURATION_FORMS}", s.escape_debug()),
            DurationError::TooLarge(s) => write!(
                f,
                "'{}': too long (at most 2^62 seconds); {DURATION_FORMS}",
                s.escape_debug()
            ),
        }
    }
}

/// What a run of bytes says as a decimal number.
pub(crate) enum Decimal {
    /// Digits only, worth this much.
    Value(u64),
    /// Empty, or a byte that is no ASCII digit (a sign, a space, a letter).
    NotDigits,
    /// Digits only, beyond a `u64`.
    TooLarge,
}

/// The unsigned decimal number `b` writes.
pub(crate) fn decimal(b: &[u8]) -> Decimal {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return Decimal::NotDigits;
    }
    let value = b.iter().try_fold(0u64, |n, &c| {
        n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    });
    match value {
        Some(n) => Decimal::Value(n),
        None => Decimal::TooLarge,
    }
}
