//! Per-address limits, as a pure bookkeeper the server's loop consults:
//! how many connections one address holds (`--max-per-address`), a
//! back-off for an address whose clients keep failing to authenticate, and
//! a log of both that says one line per burst, not one per try. Pure: it is
//! given the time, and returns what to log.

use std::collections::HashMap;
use std::fmt::Display;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Failed authentications an address may have before it waits; those of a
/// burst are also the ones logged in full.
pub const FREE_FAILURES: u32 = 10;
/// The first wait after that; each further failure doubles it.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Failures are forgotten after this long without one.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);
/// A burst of refusals or failures ends after this long without one; its
/// count is then logged.
pub const BURST_QUIET: Duration = Duration::from_secs(5);
/// A burst that goes on is counted in the log this often.
pub const BURST_REPORT: Duration = Duration::from_secs(60);
/// Addresses tracked at most: beyond this, idle ones are forgotten, and
/// when none is idle, the one with no open connection that was heard from
/// longest ago (a hard bound, however many addresses fail).
const MAX_TRACKED: usize = 65_536;

/// The answer to a new connection from an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Served. `log`: the first event of a burst is logged in full.
    Yes,
    /// Refused: the address has this many connections already.
    TooMany {
        /// Its open connections.
        open: usize,
        /// Log this refusal (the first of a burst).
        log: bool,
    },
    /// Refused: the address failed to authenticate too often; it may come
    /// back after `wait`.
    Backoff {
        /// How long it still waits.
        wait: Duration,
        /// Log this refusal (the first of a burst).
        log: bool,
    },
}

/// How a connection ended, as far as authentication goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// It never got to a proof (or the server has no secrets).
    None,
    /// It was welcomed.
    Passed,
    /// Its proof failed.
    Failed,
}

#[derive(Debug, Default)]
struct Burst {
    since: Option<Instant>,
    last: Option<Instant>,
    reported: Option<Instant>,
    /// Counted since the last report, and of those, logged in full.
    failures: u64,
    refused: u64,
    logged_failures: u64,
    logged_refused: u64,
    /// Over the whole burst.
    total_failures: u64,
    total_refused: u64,
}

#[derive(Debug, Default)]
struct Peer {
    open: usize,
    failures: u32,
    last_failure: Option<Instant>,
    blocked_until: Option<Instant>,
    burst: Burst,
}

impl Peer {
    fn is_idle(&self, now: Instant) -> bool {
        self.open == 0
            && self.burst.since.is_none()
            && self.blocked_until.is_none_or(|t| t <= now)
            && (self.failures == 0
                || self
                    .last_failure
                    .is_none_or(|t| now.saturating_duration_since(t) >= FORGET_AFTER))
    }

    /// Counts an event in the burst; true when it is to be logged in full:
    /// the first [`FREE_FAILURES`] failures and the first refusal of a
    /// burst.
    fn note(&mut self, now: Instant, failure: bool) -> bool {
        let b = &mut self.burst;
        if b.since.is_none() {
            b.since = Some(now);
            b.reported = Some(now);
        }
        b.last = Some(now);
        if failure {
            b.failures += 1;
            b.total_failures += 1;
            let log = b.total_failures <= u64::from(FREE_FAILURES);
            b.logged_failures += u64::from(log);
            log
        } else {
            b.refused += 1;
            b.total_refused += 1;
            let log = b.total_refused == 1;
            b.logged_refused += u64::from(log);
            log
        }
    }
}

/// The per-address bookkeeping of one server; `A` is the address (the
/// shell's IP address type: this ring names no network type).
#[derive(Debug)]
pub struct PeerLimits<A> {
    /// Connections one address may hold (0: no limit).
    max_per_address: usize,
    peers: HashMap<A, Peer>,
    /// Nothing is due before this, neither a report nor the forgetting of
    /// failures (a lower bound: [`Self::poll_reports`] scans the table only
    /// once it has passed).
    earliest: Option<Instant>,
    /// [`MAX_TRACKED`], smaller in tests.
    max_tracked: usize,
}

impl<A: Copy + Eq + Hash + Display> PeerLimits<A> {
    /// Limits with `max_per_address` connections per address (0: none).
    pub fn new(max_per_address: usize) -> PeerLimits<A> {
        PeerLimits {
            max_per_address,
            peers: HashMap::new(),
            earliest: None,
            max_tracked: MAX_TRACKED,
        }
    }

    /// Makes room for a new address when the table is full.
    fn make_room(&mut self, ip: A, now: Instant) {
        if self.peers.contains_key(&ip) || self.peers.len() < self.max_tracked {
            return;
        }
        self.peers.retain(|_, p| !p.is_idle(now));
        if self.peers.len() < self.max_tracked {
            return;
        }
        let oldest = self
            .peers
            .iter()
            .filter(|(_, p)| p.open == 0)
            .min_by_key(|(_, p)| p.burst.last.max(p.last_failure))
            .map(|(a, _)| *a);
        if let Some(a) = oldest {
            self.peers.remove(&a);
        }
    }

    /// Counts an event of `ip`'s burst (see [`Peer::note`]) and keeps
    /// [`Self::earliest`] a lower bound of the reports due.
    fn note(&mut self, ip: A, now: Instant, failure: bool) -> bool {
        let p = self.peers.entry(ip).or_default();
        let log = p.note(now, failure);
        if let Some(due) = report_due(&p.burst) {
            self.earliest = Some(self.earliest.map_or(due, |e| e.min(due)));
        }
        log
    }

    /// A connection from `ip` arrives: served (and counted open) or
    /// refused.
    pub fn admit(&mut self, ip: A, now: Instant) -> Admit {
        self.make_room(ip, now);
        let max = self.max_per_address;
        let p = self.peers.entry(ip).or_default();
        if let Some(wait) = p
            .blocked_until
            .map(|t| t.saturating_duration_since(now))
            .filter(|w| !w.is_zero())
        {
            let log = self.note(ip, now, false);
            return Admit::Backoff { wait, log };
        }
        if max > 0 && p.open >= max {
            let open = p.open;
            let log = self.note(ip, now, false);
            return Admit::TooMany { open, log };
        }
        p.open += 1;
        Admit::Yes
    }

    /// A connection from `ip` was refused for another reason (the server
    /// is full): counted in its burst; true when it is to be logged in
    /// full (the first of a burst).
    pub fn refused(&mut self, ip: A, now: Instant) -> bool {
        self.make_room(ip, now);
        self.note(ip, now, false)
    }

    /// A connection from `ip` that was admitted closed. Returns whether
    /// its failed authentication is to be logged in full (the first of a
    /// burst); the rest are counted in [`Self::poll_reports`].
    pub fn closed(&mut self, ip: A, now: Instant, auth: AuthOutcome) -> bool {
        let Some(p) = self.peers.get_mut(&ip) else {
            return auth == AuthOutcome::Failed;
        };
        p.open = p.open.saturating_sub(1);
        let log = match auth {
            // A success does not wipe the failures: one address may hold
            // several names, and a client that knows its own secret could
            // otherwise guess at another's (an admin's) without end, with
            // a good login between every few guesses. Failures are
            // forgotten only after FORGET_AFTER without one.
            AuthOutcome::None | AuthOutcome::Passed => false,
            AuthOutcome::Failed => {
                if p.last_failure
                    .is_some_and(|t| now.saturating_duration_since(t) >= FORGET_AFTER)
                {
                    p.failures = 0;
                }
                p.failures = p.failures.saturating_add(1);
                p.last_failure = Some(now);
                if let Some(over) = p.failures.checked_sub(FREE_FAILURES + 1) {
                    let wait = FIRST_BACKOFF
                        .saturating_mul(1u32 << over.min(6))
                        .min(MAX_BACKOFF);
                    p.blocked_until = now.checked_add(wait);
                }
                let log = p.note(now, true);
                if let Some(due) = next_due(p) {
                    self.earliest = Some(self.earliest.map_or(due, |e| e.min(due)));
                }
                log
            }
        };
        if p.is_idle(now) {
            self.peers.remove(&ip);
        }
        log
    }

    /// When [`Self::poll_reports`] has something to say or forget next.
    pub fn next_report(&self) -> Option<Instant> {
        self.earliest
    }

    /// The bursts that ended (quiet for [`BURST_QUIET`]) or went on for
    /// [`BURST_REPORT`] since they were last counted: one line each, for
    /// those with more than their first event (which was logged in full).
    pub fn poll_reports(&mut self, now: Instant) -> Vec<String> {
        let mut lines = Vec::new();
        if self.earliest.is_none_or(|e| e > now) {
            return lines;
        }
        for (ip, p) in &mut self.peers {
            let b = &mut p.burst;
            let Some(due) = report_due(b) else { continue };
            if due > now {
                continue;
            }
            let since = b.reported.or(b.since).unwrap_or(now);
            let secs = now.saturating_duration_since(since).as_secs().max(1);
            let ended = b
                .last
                .is_some_and(|l| now.saturating_duration_since(l) >= BURST_QUIET);
            // Those logged in full are not counted again.
            let failures = b.failures.saturating_sub(b.logged_failures);
            let refused = b.refused.saturating_sub(b.logged_refused);
            let mut parts = Vec::new();
            if failures > 0 {
                parts.push(format!("{failures} more failed authentications"));
            }
            if refused > 0 {
                parts.push(format!("{refused} more refused connections"));
            }
            if !parts.is_empty() {
                lines.push(format!(
                    "{ip}: {} in the last {secs} s",
                    parts.join(" and ")
                ));
            }
            if ended {
                *b = Burst::default();
            } else {
                b.reported = Some(now);
                b.failures = 0;
                b.refused = 0;
                b.logged_failures = 0;
                b.logged_refused = 0;
            }
        }
        self.peers.retain(|_, p| !p.is_idle(now));
        self.earliest = self.peers.values().filter_map(next_due).min();
        lines.sort();
        lines
    }

    /// Addresses tracked (for tests: the map must not grow without bound).
    pub fn tracked(&self) -> usize {
        self.peers.len()
    }
}

/// When `p` next needs [`PeerLimits::poll_reports`]: its burst's report,
/// or the time its failures are forgotten.
fn next_due(p: &Peer) -> Option<Instant> {
    let forget = p.last_failure.and_then(|t| t.checked_add(FORGET_AFTER));
    [report_due(&p.burst), forget].into_iter().flatten().min()
}

/// When a burst is next to be counted: at its end, or a report period
/// after it was last counted.
fn report_due(b: &Burst) -> Option<Instant> {
    let end = b.last?.checked_add(BURST_QUIET)?;
    let period = b.reported?.checked_add(BURST_REPORT)?;
    Some(end.min(period))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_is_capped_while_another_is_served() {
        let t0 = Instant::now();
        let mut l = PeerLimits::new(2);
        let (a, b) = (ip("127.0.0.2"), ip("127.0.0.3"));
        assert_eq!(l.admit(a, t0), Admit::Yes);
        assert_eq!(l.admit(a, t0), Admit::Yes);
        assert_eq!(l.admit(a, t0), Admit::TooMany { open: 2, log: true });
        assert_eq!(
            l.admit(a, t0),
            Admit::TooMany {
                open: 2,
                log: false
            }
        );
        assert_eq!(l.admit(b, t0), Admit::Yes);
        l.closed(a, t0, AuthOutcome::None);
        assert_eq!(l.admit(a, t0), Admit::Yes);
        // One line counts the refusals not logged one by one.
        assert!(l.poll_reports(t0).is_empty());
        let later = t0 + BURST_QUIET;
        assert_eq!(l.next_report(), Some(later));
        assert_eq!(
            l.poll_reports(later),
            vec!["127.0.0.2: 1 more refused connections in the last 5 s".to_string()]
        );
        assert_eq!(l.next_report(), None);
    }

    #[test]
    fn failed_authentications_back_off_and_are_logged_once_per_burst() {
        let t0 = Instant::now();
        let mut l = PeerLimits::new(0);
        let a = ip("10.0.0.1");
        let mut logged = 0;
        let mut t = t0;
        let mut refused = 0;
        for _ in 0..1000 {
            match l.admit(a, t) {
                Admit::Yes => logged += usize::from(l.closed(a, t, AuthOutcome::Failed)),
                Admit::Backoff { .. } => refused += 1,
                other => panic!("{other:?}"),
            }
            t += Duration::from_millis(1);
        }
        assert_eq!(logged, FREE_FAILURES as usize, "the free tries in full");
        // Three free failures, then one after each wait: the fourth at
        // once, then none within the first second.
        assert_eq!(refused, 1000 - FREE_FAILURES as usize - 1);
        let lines = l.poll_reports(t + BURST_QUIET);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("10.0.0.1: 1 more failed authentications and 988 more refused connections in the last"),
            "{lines:?}"
        );
        // The wait doubles, up to its cap, and a good proof ends it.
        let mut t = t + BURST_QUIET;
        let mut waits = Vec::new();
        for _ in 0..10 {
            match l.admit(a, t) {
                Admit::Backoff { wait, .. } => t += wait,
                Admit::Yes => {
                    l.closed(a, t, AuthOutcome::Failed);
                    if let Admit::Backoff { wait, .. } = l.admit(a, t) {
                        waits.push(wait);
                        t += wait;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(waits.windows(2).all(|w| w[1] >= w[0]), "{waits:?}");
        assert!(waits.iter().all(|w| *w <= MAX_BACKOFF));
        assert!(waits.contains(&MAX_BACKOFF), "{waits:?}");
        while l.admit(a, t) != Admit::Yes {
            t += Duration::from_secs(1);
        }
        l.closed(a, t, AuthOutcome::Passed);
        assert_eq!(l.admit(a, t), Admit::Yes);
        l.closed(a, t, AuthOutcome::Passed);
    }

    #[test]
    fn a_good_login_between_guesses_does_not_reset_the_backoff() {
        let mut t = Instant::now();
        let mut l = PeerLimits::new(0);
        let a = ip("10.0.0.7");
        let mut refused = 0;
        for _ in 0..(FREE_FAILURES * 4) {
            // A guess at another name's secret, then a good login of its own.
            for outcome in [AuthOutcome::Failed, AuthOutcome::Passed] {
                match l.admit(a, t) {
                    Admit::Yes => l.closed(a, t, outcome),
                    Admit::Backoff { .. } => {
                        refused += 1;
                        false
                    }
                    other => panic!("{other:?}"),
                };
            }
            t += Duration::from_millis(10);
        }
        assert!(refused > 0, "the guesses went on without a wait");
    }

    #[test]
    fn addresses_are_forgotten() {
        let t0 = Instant::now();
        let mut l = PeerLimits::new(4);
        for i in 0..100u8 {
            let a = IpAddr::from([10, 0, 1, i]);
            assert_eq!(l.admit(a, t0), Admit::Yes);
            l.closed(a, t0, AuthOutcome::None);
        }
        assert_eq!(l.tracked(), 0);
        let a = ip("10.0.0.9");
        assert_eq!(l.admit(a, t0), Admit::Yes);
        l.closed(a, t0, AuthOutcome::Failed);
        l.poll_reports(t0 + BURST_QUIET);
        assert_eq!(l.tracked(), 1, "its failure is remembered");
        l.poll_reports(t0 + FORGET_AFTER);
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn the_table_stays_bounded_however_many_addresses_fail() {
        let t0 = Instant::now();
        let mut l = PeerLimits::new(4);
        l.max_tracked = 100;
        for i in 0..1000u32 {
            let a = IpAddr::from(std::net::Ipv6Addr::from(u128::from(i) + 1));
            let now = t0 + Duration::from_millis(u64::from(i));
            assert_eq!(l.admit(a, now), Admit::Yes);
            l.closed(a, now, AuthOutcome::Failed);
            assert!(l.tracked() <= 100, "{} tracked", l.tracked());
        }
        // Nothing is due before the earliest report, and the reports come.
        let later = t0 + Duration::from_secs(3600);
        assert!(!l.poll_reports(later).is_empty() || l.tracked() == 0);
        assert!(l.poll_reports(t0).is_empty());
    }
}
