//! `--bwlimit RATE`: the text of a RATE ([`parse_rate`]) and the token
//! bucket that paces file bodies to it ([`Bucket`]: how many bytes may move
//! now, and when the next ones may).
//!
//! Pure: it reads no clock. Every call takes `now`, and the I/O shell
//! (`io::client::conn` and the loop's `Timer::Rate`) supplies it, so the
//! tests drive it with a virtual clock.
//!
//! Why the numbers: over any window of T seconds a hungry consumer moves at
//! most `burst + rate * T` bytes (what the bucket held when the window
//! opened, plus what accrued in it). The burst is at most half a second's
//! worth of RATE (or 100 ms, when that is more than 64 KiB), so a 10 s
//! window stays within 5% of `rate * 10 s`; a RATE of 1 or 2 bytes a second
//! still needs one whole byte of burst, 10% at worst. Bytes are handed out
//! in quanta (about 20 ms of RATE, at least 4 KiB, at most half the burst): an
//! empty bucket says "not before `ready_at`" until a quantum has accrued,
//! so a throttled transfer wakes at most about 50 times a second (fewer at
//! low rates) instead of once per byte.

use std::time::{Duration, Instant};

/// Nanoseconds in a second: the bucket counts in billionths of a byte, so
/// a rate accrues exactly per nanosecond with integer arithmetic.
const NANOS: u128 = 1_000_000_000;
/// The burst is at least this much (unless that is more than half a
/// second's worth), so one wake-up moves a useful amount.
const MIN_BURST: u64 = 64 << 10;
/// The smallest quantum (unless the burst is smaller).
const MIN_QUANTUM: u64 = 4 << 10;

/// Reads a RATE in bytes per second: a whole number, optionally followed by
/// `K`, `M` or `G` (either case; powers of 1024). Zero, anything else, and
/// a rate past 2^64 are refused with a message naming the text.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("bad RATE '{text}': use bytes per second, a whole number with an optional K, M or G (1024, 1024^2, 1024^3), e.g. 500K or 5M")
    };
    let (digits, shift) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 10),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 20),
        Some(b'g' | b'G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let rate = n.checked_mul(1 << shift).ok_or_else(bad)?;
    if rate == 0 {
        return Err(format!(
            "bad RATE '{text}': must be more than 0 bytes per second"
        ));
    }
    Ok(rate)
}

/// A token bucket: `rate` bytes a second accrue, up to the burst; moving
/// bytes spends them. Starts full.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: u64,
    burst: u64,
    quantum: u64,
    /// What the bucket held at `at`, in billionths of a byte. Negative when
    /// more was spent than it held (the debt is paid back before anything
    /// else moves, so the long-run rate holds even then).
    level: i128,
    at: Instant,
}

impl Bucket {
    /// A full bucket for `rate` bytes per second (at least 1), at `now`.
    pub fn new(rate: u64, now: Instant) -> Bucket {
        let rate = rate.max(1);
        let burst = (rate / 10).max(MIN_BURST.min(rate / 2)).max(1);
        // At most half the burst: a wake-up a little late loses nothing.
        let quantum = (rate / 50).max(MIN_QUANTUM).min((burst / 2).max(1));
        Bucket {
            rate,
            burst,
            quantum,
            level: i128::from(burst) * NANOS as i128,
            at: now,
        }
    }

    /// Bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// The most the bucket holds: the most that moves at once after a pause.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// The least an empty bucket hands out once it refills.
    pub fn quantum(&self) -> u64 {
        self.quantum
    }

    /// The level at `now` (an earlier `now` than the last call counts as
    /// no time passed).
    fn level_at(&self, now: Instant) -> i128 {
        let elapsed = now.saturating_duration_since(self.at).as_nanos();
        let cap = i128::from(self.burst) * NANOS as i128;
        let gained = elapsed.saturating_mul(u128::from(self.rate));
        let gained = i128::try_from(gained).unwrap_or(i128::MAX);
        self.level.saturating_add(gained).min(cap)
    }

    /// The bytes that may move at `now`: all the bucket holds once that is
    /// at least a quantum, else 0.
    pub fn allowance(&self, now: Instant) -> u64 {
        let level = self.level_at(now);
        let quantum = i128::from(self.quantum) * NANOS as i128;
        if level < quantum {
            return 0;
        }
        u64::try_from(level / NANOS as i128).unwrap_or(u64::MAX)
    }

    /// `n` bytes moved at `now` (more than [`Self::allowance`] leaves a
    /// debt that delays what follows).
    pub fn spent(&mut self, now: Instant, n: u64) {
        let level = self.level_at(now);
        self.level = level.saturating_sub(i128::from(n) * NANOS as i128);
        self.at = self.at.max(now);
    }

    /// When bytes may move again: `None` when they may at `now`, else the
    /// instant the bucket holds a quantum again.
    pub fn ready_at(&self, now: Instant) -> Option<Instant> {
        if self.allowance(now) > 0 {
            return None;
        }
        let quantum = i128::from(self.quantum) * NANOS as i128;
        let missing = u128::try_from(quantum - self.level_at(now)).unwrap_or(0);
        // Rounded up: waking a nanosecond early would find it still empty.
        let rate = u128::from(self.rate);
        let wait = missing.div_ceil(rate);
        let wait = Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX));
        Some(now.max(self.at) + wait)
    }
}

#[cfg(test)]
mod tests;
