//! When long-running clients act: the period of `--every`, the backoff of
//! a client whose server is away, and the durations users type for them.
//! Pure: times come in as a [`Duration`] since a fixed start (the I/O ring
//! uses `CLOCK_BOOTTIME`, which keeps counting through a suspend, so a run
//! missed while the machine slept is seen as missed the moment it wakes);
//! randomness comes in as a number.

use std::time::Duration;

/// The shortest period of `--every` and `--rescan`: shorter ones would
/// only hammer the server.
pub const MIN_PERIOD: Duration = Duration::from_secs(1);

/// The shortest quiet time of `watch --delay`.
pub const MIN_DELAY: Duration = Duration::from_millis(10);

/// [`parse_duration`], refusing anything shorter than `min` with a message
/// naming the option.
pub fn parse_at_least(option: &str, text: &str, min: Duration) -> Result<Duration, String> {
    let d = parse_duration(text).map_err(|e| format!("{option}: {e}"))?;
    if d < min {
        return Err(format!(
            "{option}: '{text}' is too short: at least {} s",
            min.as_secs_f64()
        ));
    }
    Ok(d)
}

/// Reads a duration as users type it: a number (decimals allowed) with an
/// optional unit `s`, `m`, `h` or `d` (`30s`, `15m`, `2h`, `1d`, `0.5`); a
/// bare number is seconds. Zero, negative, empty or absurd (over 100
/// years) values are errors naming the forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("bad duration '{text}': use a number with s, m, h or d (30s, 15m, 2h, 1d)");
    let t = text.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        Some(_) => (t, 's'),
        None => return Err(bad()),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86_400.0,
        _ => return Err(bad()),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 100.0 * 365.0 * 86_400.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The schedule of `--every PERIOD`: each run starts a period after the
/// start of the one before; a run never overlaps the one before (the
/// caller runs them one after the other), and however many periods went by
/// during a long run, a suspend or an outage, the one missed run is due at
/// once, and only one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every {
    period: Duration,
    /// When the next run is due; `None` before the first, which is due at
    /// once.
    next: Option<Duration>,
}

impl Every {
    /// A schedule of one run per `period`, the first due at once.
    pub fn new(period: Duration) -> Every {
        Every { period, next: None }
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// A run starts at `now`: the next one is due a period later.
    pub fn started(&mut self, now: Duration) {
        self.next = Some(now + self.period);
    }

    /// When the next run is due (`now` or earlier: at once).
    pub fn due_at(&self, now: Duration) -> Duration {
        self.next.unwrap_or(now)
    }

    /// The next run is due at `now`.
    pub fn is_due(&self, now: Duration) -> bool {
        self.due_at(now) <= now
    }
}

/// The wait before the next try to reach a server that is away: 1 s,
/// doubling to at most 60 s, each stretched by up to a quarter at random
/// (so that the clients of a restarted server do not all come back at
/// once), and back to 1 s after a success.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    failures: u32,
}

/// The first wait.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

impl Backoff {
    /// A backoff with no failure yet.
    pub fn new() -> Backoff {
        Backoff::default()
    }

    /// One more failure: the wait before the next try. `random` is any
    /// number (it picks the stretch).
    pub fn failed(&mut self, random: u32) -> Duration {
        let base = BACKOFF_FIRST.saturating_mul(1u32 << self.failures.min(6));
        self.failures = self.failures.saturating_add(1);
        let base = base.min(BACKOFF_MAX);
        let stretch = base.mul_f64(f64::from(random % 1024) / 4096.0);
        (base + stretch).min(BACKOFF_MAX)
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A success: the next failure waits the first wait again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn durations_as_users_type_them() {
        for (text, secs) in [
            ("30s", 30.0),
            ("15m", 900.0),
            ("2h", 7200.0),
            ("1d", 86_400.0),
            ("5", 5.0),
            ("0.5", 0.5),
            ("1.5m", 90.0),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs_f64(secs)),
                "{text}"
            );
        }
        for text in [
            "",
            "0",
            "0s",
            "-1m",
            "m",
            "1w",
            "1 m",
            "1e3",
            "abc",
            "1..2s",
            "99999999d",
        ] {
            let e = parse_duration(text).expect_err(text);
            assert!(e.contains("30s, 15m, 2h, 1d"), "{e}");
        }
    }

    #[test]
    fn periods_have_a_floor() {
        assert_eq!(parse_at_least("--every", "1s", MIN_PERIOD), Ok(S));
        let e = parse_at_least("--every", "0.0000000001", MIN_PERIOD).unwrap_err();
        assert!(e.contains("too short"), "{e}");
        assert!(parse_at_least("--delay", "0.005", MIN_DELAY).is_err());
        assert!(parse_at_least("--delay", "0.3", MIN_DELAY).is_ok());
    }

    #[test]
    fn each_run_starts_a_period_after_the_last_start() {
        let mut e = Every::new(15 * 60 * S);
        let t0 = 1000 * S;
        assert!(e.is_due(t0), "the first run is due at once");
        e.started(t0);
        // A run of 40 s: the next one still starts 15 min after t0.
        assert!(!e.is_due(t0 + 40 * S));
        assert_eq!(e.due_at(t0 + 40 * S), t0 + 900 * S);
        assert!(e.is_due(t0 + 900 * S));
    }

    #[test]
    fn a_slow_run_or_a_suspend_makes_one_run_due_at_once() {
        let mut e = Every::new(60 * S);
        e.started(Duration::ZERO);
        // The run took 5 minutes (or the machine slept through 5 periods).
        let now = 300 * S;
        assert!(e.is_due(now));
        e.started(now);
        // Only one: the next is a period after this start.
        assert!(!e.is_due(now + S));
        assert_eq!(e.due_at(now + S), 360 * S);
    }

    #[test]
    fn backoff_doubles_to_a_minute_with_jitter_and_resets() {
        let mut b = Backoff::new();
        let waits: Vec<Duration> = (0..10).map(|_| b.failed(0)).collect();
        assert_eq!(
            waits,
            [1, 2, 4, 8, 16, 32, 60, 60, 60, 60].map(|s| s * S).to_vec()
        );
        let mut b = Backoff::new();
        for (i, base) in [1u64, 2, 4, 8, 16, 32].into_iter().enumerate() {
            let w = b.failed(1023);
            let base = Duration::from_secs(base);
            assert!(w > base && w <= base + base / 4, "{i}: {w:?}");
        }
        assert!(b.failed(u32::MAX) <= BACKOFF_MAX);
        b.succeeded();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.failed(0), S);
    }
}
