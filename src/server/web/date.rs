//! HTTP dates (RFC 9110 section 5.6.7): IMF-fixdate out (`Last-Modified`,
//! `Date`), and in (`If-Modified-Since`, `If-Unmodified-Since`,
//! `If-Range`) the three forms a recipient must accept: IMF-fixdate,
//! RFC 850 and asctime. All in UTC ("GMT"), whole seconds.
//!
//! Pure: the calendar is [`crate::calendar`]'s; a two-digit RFC 850 year
//! needs the server's clock, which the caller hands in
//! ([`parse_http_date_at`]).

use crate::calendar::{days_from_civil, days_in_month, CivilTime};

/// The first second an HTTP date can show: 0000-01-01T00:00:00Z (the
/// year has four digits).
pub const MIN_SECS: i64 = -62_167_219_200;

/// The last second an HTTP date can show: 9999-12-31T23:59:59Z.
pub const MAX_SECS: i64 = 253_402_300_799;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `secs` since the epoch as an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37
/// GMT`. Times outside what four digits of year can show are clamped to
/// [`MIN_SECS`] or [`MAX_SECS`] (a file's mtime can be anything; the
/// header must stay well-formed).
pub fn format_http_date(secs: i64) -> String {
    let secs = secs.clamp(MIN_SECS, MAX_SECS);
    // Within the clamp the year is 0 to 9999: from_utc cannot fail.
    let c = CivilTime::from_utc(secs).unwrap_or(CivilTime {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    });
    let day = DAYS
        .get(usize::from(c.weekday()).wrapping_sub(1))
        .unwrap_or(&"Mon");
    let month = MONTHS
        .get(usize::from(c.month).wrapping_sub(1))
        .unwrap_or(&"Jan");
    format!(
        "{day}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
        c.day, c.year, c.hour, c.minute, c.second
    )
}

/// Parses an HTTP date in any of its three forms; a two-digit RFC 850 year
/// is 1970 to 2069 (the POSIX `%y` pivot). Use [`parse_http_date_at`]
/// where the server's clock is at hand: it applies RFC 9110's rule.
/// `None` for anything else (dates are case-sensitive; the weekday must be
/// a day's name but is not checked against the date, as most servers do).
pub fn parse_http_date(s: &str) -> Option<i64> {
    parse(s, &|yy| if yy >= 70 { 1900 + yy } else { 2000 + yy })
}

/// [`parse_http_date`] with RFC 9110's rule for a two-digit year: the
/// year of those last two digits that is not more than 50 years after
/// `now` (the server's clock, seconds since the epoch).
pub fn parse_http_date_at(s: &str, now: i64) -> Option<i64> {
    let this_year = CivilTime::from_utc(now.clamp(MIN_SECS, MAX_SECS))
        .map(|c| i64::from(c.year))
        .unwrap_or(1970);
    parse(s, &|yy| {
        // The latest year ending in yy that is at most this year + 50.
        let limit = this_year + 50;
        limit - (limit - yy).rem_euclid(100)
    })
}

fn parse(s: &str, century: &dyn Fn(i64) -> i64) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() == 29 && b.get(3) == Some(&b',') {
        imf_fixdate(b)
    } else if b.len() == 24 && b.get(3) == Some(&b' ') {
        asctime(b)
    } else {
        rfc850(b, century)
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn imf_fixdate(b: &[u8]) -> Option<i64> {
    let mut p = Cursor(b);
    p.name(&DAYS)?;
    p.lit(b", ")?;
    let day = p.digits(2)?;
    p.lit(b" ")?;
    let month = p.name(&MONTHS)?;
    p.lit(b" ")?;
    let year = p.digits(4)?;
    p.lit(b" ")?;
    let t = p.time()?;
    p.lit(b" GMT")?;
    p.end()?;
    secs(year, month, day, t)
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`
fn rfc850(b: &[u8], century: &dyn Fn(i64) -> i64) -> Option<i64> {
    let mut p = Cursor(b);
    p.name(&LONG_DAYS)?;
    p.lit(b", ")?;
    let day = p.digits(2)?;
    p.lit(b"-")?;
    let month = p.name(&MONTHS)?;
    p.lit(b"-")?;
    let yy = p.digits(2)?;
    p.lit(b" ")?;
    let t = p.time()?;
    p.lit(b" GMT")?;
    p.end()?;
    secs(century(yy), month, day, t)
}

/// `Sun Nov  6 08:49:37 1994` (the day is two digits or a space and one).
fn asctime(b: &[u8]) -> Option<i64> {
    let mut p = Cursor(b);
    p.name(&DAYS)?;
    p.lit(b" ")?;
    let month = p.name(&MONTHS)?;
    p.lit(b" ")?;
    let day = if p.0.first() == Some(&b' ') {
        p.lit(b" ")?;
        p.digits(1)?
    } else {
        p.digits(2)?
    };
    p.lit(b" ")?;
    let t = p.time()?;
    p.lit(b" ")?;
    let year = p.digits(4)?;
    p.end()?;
    secs(year, month, day, t)
}

/// The epoch seconds of a checked date. A second of 60 (a leap second,
/// which RFC 9110's grammar allows) is the first second of the next
/// minute: POSIX time has no leap seconds.
fn secs(year: i64, month: usize, day: i64, (h, m, s): (i64, i64, i64)) -> Option<i64> {
    let month = u8::try_from(month + 1).ok()?;
    let year32 = i32::try_from(year).ok()?;
    if day < 1 || day > i64::from(days_in_month(year32, month)) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let day = u8::try_from(day).ok()?;
    Some(days_from_civil(year, month, day) * 86_400 + h * 3_600 + m * 60 + s)
}

/// A cursor over the date's bytes.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        self.0 = self.0.strip_prefix(lit)?;
        Some(())
    }

    /// The index of the name of `names` the input begins with.
    fn name(&mut self, names: &[&str]) -> Option<usize> {
        let i = names
            .iter()
            .position(|n| self.0.starts_with(n.as_bytes()))?;
        let len = names.get(i)?.len();
        self.0 = self.0.get(len..)?;
        Some(i)
    }

    fn digits(&mut self, n: usize) -> Option<i64> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        if !head.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.0 = rest;
        Some(
            head.iter()
                .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0')),
        )
    }

    /// `HH:MM:SS`
    fn time(&mut self) -> Option<(i64, i64, i64)> {
        let h = self.digits(2)?;
        self.lit(b":")?;
        let m = self.digits(2)?;
        self.lit(b":")?;
        let s = self.digits(2)?;
        Some((h, m, s))
    }

    fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

#[cfg(test)]
mod tests;
