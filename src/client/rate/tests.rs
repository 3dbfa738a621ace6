//! The bucket under a virtual clock: what it hands out, when it says to
//! come back, and (property) that a hungry consumer stays within 10% of the
//! rate over every 10 s window and does not fall far below it either.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::testing::clock::Clock;

fn t0() -> Instant {
    Clock::new().now()
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn rates_parse_with_binary_suffixes() {
    assert_eq!(parse_rate("1"), Ok(1));
    assert_eq!(parse_rate("1000"), Ok(1000));
    assert_eq!(parse_rate("500K"), Ok(500 << 10));
    assert_eq!(parse_rate("500k"), Ok(500 << 10));
    assert_eq!(parse_rate("5M"), Ok(5 << 20));
    assert_eq!(parse_rate("2G"), Ok(2 << 30));
    assert_eq!(parse_rate("17179869183G"), Ok(17_179_869_183 << 30));
    for bad in [
        "",
        "K",
        "0",
        "0M",
        "-5M",
        "+5",
        "5MB",
        "5KiB",
        "1.5M",
        "5 M",
        " 5",
        "x",
        "5T",
        "17179869184G",
        "99999999999999999999",
    ] {
        let e = parse_rate(bad).expect_err(bad);
        assert!(e.contains(&format!("'{bad}'")), "{bad}: {e}");
    }
    assert!(parse_rate("0").unwrap_err().contains("more than 0"));
}

#[test]
fn the_burst_and_the_quantum_follow_the_rate() {
    let now = t0();
    let b = Bucket::new(5 << 20, now);
    assert_eq!((b.burst(), b.quantum()), ((5 << 20) / 10, (5 << 20) / 50));
    let b = Bucket::new(100 << 10, now);
    assert_eq!((b.burst(), b.quantum()), (50 << 10, 4 << 10));
    let b = Bucket::new(1 << 20, now);
    assert_eq!((b.burst(), b.quantum()), (104_857, (1 << 20) / 50));
    let b = Bucket::new(4 << 10, now);
    assert_eq!((b.burst(), b.quantum()), (2 << 10, 1 << 10));
    let b = Bucket::new(1, now);
    assert_eq!((b.burst(), b.quantum()), (1, 1));
    let b = Bucket::new(0, now);
    assert_eq!(
        b.rate(),
        1,
        "a zero rate is one byte a second, never a stall"
    );
}

#[test]
fn a_full_bucket_hands_out_its_burst_then_waits_for_a_quantum() {
    let now = t0();
    let mut b = Bucket::new(5 << 20, now);
    assert_eq!(b.allowance(now), 512 << 10);
    assert_eq!(b.ready_at(now), None);
    b.spent(now, 512 << 10);
    assert_eq!(b.allowance(now), 0);
    // A quantum of 5 MiB/s / 50 is (just under, rounded down) 20 ms away.
    let at = b.ready_at(now).expect("empty");
    assert!(at - now <= 20 * MS && at - now > 19 * MS, "{:?}", at - now);
    assert_eq!(b.allowance(at - Duration::from_nanos(1)), 0, "not early");
    assert_eq!(b.allowance(at), (5 << 20) / 50);
    assert_eq!(b.ready_at(at), None);
    // Left alone, it fills to its burst and no further.
    assert_eq!(b.allowance(now + Duration::from_secs(60)), 512 << 10);
}

#[test]
fn part_of_an_allowance_spent_leaves_the_rest_or_nothing_below_a_quantum() {
    let now = t0();
    let mut b = Bucket::new(5 << 20, now);
    b.spent(now, 100 << 10);
    assert_eq!(b.allowance(now), 412 << 10);
    // Less than a quantum left: nothing until the quantum is back.
    b.spent(now, 400 << 10);
    assert_eq!(b.allowance(now), 0);
    let at = b.ready_at(now).expect("below a quantum");
    assert!(at > now && at - now < 20 * MS, "{:?}", at - now);
    assert!(b.allowance(at) >= b.quantum());
}

#[test]
fn spending_more_than_the_allowance_is_a_debt_paid_first() {
    let now = t0();
    let mut b = Bucket::new(1 << 20, now);
    b.spent(now, b.burst() + (1 << 20));
    // One second of rate pays the extra MiB; the quantum takes 20 ms more.
    let at = b.ready_at(now).expect("in debt");
    let d = at - now;
    assert!(
        d > Duration::from_secs(1) + 19 * MS && d <= Duration::from_secs(1) + 20 * MS,
        "{d:?}"
    );
    assert_eq!(b.allowance(now + Duration::from_secs(1)), 0);
}

#[test]
fn an_earlier_now_counts_as_no_time_passed() {
    let now = t0() + Duration::from_secs(10);
    let mut b = Bucket::new(1 << 20, now);
    b.spent(now, b.burst());
    let earlier = now - Duration::from_secs(5);
    assert_eq!(b.allowance(earlier), 0);
    assert_eq!(b.ready_at(earlier), b.ready_at(now));
    b.spent(earlier, 0);
    let at = b.ready_at(now).expect("empty");
    assert!(
        at - now > 19 * MS && at - now <= 20 * MS,
        "its time did not go back"
    );
}

/// Drives a consumer that always wants more, moving `chunks[i]` bytes at
/// most per try (a socket that takes less than offered) and sometimes
/// arriving late (a loop busy elsewhere), for `secs` virtual seconds.
/// Returns (time since start, bytes) of every move.
fn hungry(rate: u64, secs: u64, chunks: &[u64], lateness: &[u64]) -> Vec<(Duration, u64)> {
    let clock = Clock::new();
    let start = clock.now();
    let mut b = Bucket::new(rate, start);
    let mut moves = Vec::new();
    let end = Duration::from_secs(secs);
    let mut i = 0usize;
    while clock.elapsed() < end {
        let now = clock.now();
        let a = b.allowance(now);
        if a == 0 {
            let at = b.ready_at(now).expect("an empty bucket names a time");
            assert!(at > now, "a wake-up in the past would spin");
            let late = lateness[i % lateness.len()];
            clock.advance(at - now + Duration::from_micros(late));
        } else {
            let cap = chunks[i % chunks.len()];
            let n = a.min(cap);
            b.spent(now, n);
            moves.push((clock.elapsed(), n));
            if n == cap {
                // A partial send: the consumer comes back at once.
                clock.advance(Duration::from_micros(1));
            }
        }
        i += 1;
    }
    moves
}

/// The most moved in any window of `window`, and the least in any such
/// window that ends by `end` (a maximum ends at a move; a minimum ends just
/// before one).
fn window_extremes(moves: &[(Duration, u64)], window: Duration, end: Duration) -> (u64, u64) {
    let (mut most, mut least) = (0, u64::MAX);
    let (mut lo, mut sum) = (0, 0u64);
    for &(t, n) in moves {
        while moves[lo].0 + window <= t {
            sum -= moves[lo].1;
            lo += 1;
        }
        if t >= window && t <= end {
            least = least.min(sum);
        }
        sum += n;
        most = most.max(sum);
    }
    (most, least)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_10s_window_stays_within_10_percent(
        rate in prop_oneof![1u64..100, 100u64..(1 << 20), (1u64 << 20)..(1 << 30)],
        // What the socket takes per try, in thousandths of a second's rate.
        permille in proptest::collection::vec(1u64..2000, 1..8),
        lateness in proptest::collection::vec(0u64..5_000, 1..8),
    ) {
        let chunks: Vec<u64> = permille.iter().map(|p| (rate * p / 1000).max(1)).collect();
        let secs = 40;
        let moves = hungry(rate, secs, &chunks, &lateness);
        let window = Duration::from_secs(10);
        let ten = rate as f64 * 10.0;
        let (most, least) =
            window_extremes(&moves, window, Duration::from_secs(secs));
        prop_assert!(most as f64 <= ten * 1.1, "rate {rate}: {most} in 10 s");
        // Nor is the hungry consumer held far below it, late as it may be.
        prop_assert!(least as f64 >= ten * 0.9, "rate {rate}: only {least} in 10 s");
    }
}

#[test]
fn a_hungry_consumer_at_5m_wakes_about_50_times_a_second() {
    let rate = 5 << 20;
    let moves = hungry(rate, 10, &[u64::MAX], &[0]);
    let total: u64 = moves.iter().map(|m| m.1).sum();
    assert!(
        (499..=502).contains(&moves.len()),
        "{} moves in 10 s",
        moves.len()
    );
    let expect = rate * 10 + (512 << 10);
    assert!(
        total.abs_diff(expect) <= (5 << 20) / 50,
        "{total} vs {expect}"
    );
}
