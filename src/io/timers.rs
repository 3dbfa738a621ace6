//! A deadline heap for an event loop: which owner's timer comes due next,
//! without looking at every owner each turn. Owns only instants and keys;
//! it never reads the clock (the loop passes `now`) and knows nothing of
//! what a deadline means.
//!
//! Invalidation is lazy. An owner that wants an earlier deadline arms a new
//! entry and remembers it; an entry it no longer wants (a later one it
//! superseded, or one of an owner that is gone) stays in the heap until it
//! reaches the top, where the caller's `is_current` test drops it. A
//! deadline that moves later (every bit of traffic moves an idle timeout)
//! needs no new entry at all: the old one fires early, the owner finds its
//! deadline not yet reached and arms it again. So a busy owner adds nothing
//! per turn, and stale entries are bounded by [`Timers::compact`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Deadlines of many owners, each named by a key `K`, earliest first.
#[derive(Debug)]
pub struct Timers<K> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord + Copy> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
        }
    }
}

impl<K: Ord + Copy> Timers<K> {
    /// An empty heap.
    pub fn new() -> Timers<K> {
        Timers::default()
    }

    /// Adds a deadline `at` for `key`. Entries armed earlier for the same
    /// key stay; the caller's `is_current` decides which one counts.
    pub fn arm(&mut self, at: Instant, key: K) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest deadline that still counts, dropping stale entries on
    /// the way (so the loop does not wake up for them).
    pub fn next_deadline(
        &mut self,
        mut is_current: impl FnMut(Instant, K) -> bool,
    ) -> Option<Instant> {
        while let Some(Reverse((at, key))) = self.heap.peek().copied() {
            if is_current(at, key) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns the earliest entry if it is due at `now`; stale
    /// or not, that is for the caller to tell.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Entries held, stale ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Drops every stale entry now, when they outnumber `live` owners (at
    /// most one current entry each) by far: owners that come and go faster
    /// than their timeouts expire would otherwise grow the heap without
    /// bound.
    pub fn compact(&mut self, live: usize, mut is_current: impl FnMut(Instant, K) -> bool) {
        if self.heap.len() > live.saturating_mul(2).saturating_add(64) {
            self.heap.retain(|Reverse((at, key))| is_current(*at, *key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn entries_come_due_earliest_first_and_only_when_due() {
        let t0 = Instant::now();
        let mut t = Timers::new();
        t.arm(at(t0, 30), 3);
        t.arm(at(t0, 10), 1);
        t.arm(at(t0, 20), 2);
        assert_eq!(t.next_deadline(|_, _| true), Some(at(t0, 10)));
        assert_eq!(t.pop_due(at(t0, 5)), None);
        assert_eq!(t.pop_due(at(t0, 20)), Some((at(t0, 10), 1)));
        assert_eq!(t.pop_due(at(t0, 20)), Some((at(t0, 20), 2)));
        assert_eq!(t.pop_due(at(t0, 20)), None);
        assert_eq!(t.len(), 1);
        assert_eq!(t.pop_due(at(t0, 1000)), Some((at(t0, 30), 3)));
        assert!(t.is_empty());
        assert_eq!(t.next_deadline(|_, _| true), None);
    }

    #[test]
    fn stale_entries_do_not_set_the_next_deadline() {
        let t0 = Instant::now();
        let mut t = Timers::new();
        // Owner 1 armed 10 ms, then moved to 5 ms; owner 2 is gone.
        let armed: HashMap<u32, Instant> = [(1, at(t0, 5))].into();
        t.arm(at(t0, 10), 1);
        t.arm(at(t0, 5), 1);
        t.arm(at(t0, 1), 2);
        let current = |when: Instant, k: u32| armed.get(&k) == Some(&when);
        assert_eq!(t.next_deadline(current), Some(at(t0, 5)));
        // The gone owner's entry was dropped; the superseded one waits.
        assert_eq!(t.len(), 2);
        assert_eq!(t.pop_due(at(t0, 5)), Some((at(t0, 5), 1)));
        assert_eq!(t.next_deadline(|_, _| false), None);
        assert!(t.is_empty());
    }

    #[test]
    fn ties_are_all_returned() {
        let t0 = Instant::now();
        let mut t = Timers::new();
        for k in 0..5u32 {
            t.arm(t0, k);
        }
        let mut got: Vec<u32> = std::iter::from_fn(|| t.pop_due(t0).map(|(_, k)| k)).collect();
        got.sort();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn compact_bounds_the_stale_entries() {
        let t0 = Instant::now();
        let mut t = Timers::new();
        // 1,000 owners came and went; one is live.
        for k in 0..1000u32 {
            t.arm(at(t0, 300_000), k);
        }
        t.compact(1, |_, k| k == 7);
        assert_eq!(t.len(), 1);
        assert_eq!(t.pop_due(at(t0, 300_000)), Some((at(t0, 300_000), 7)));
        // Few stale entries are left alone: compaction is not per turn.
        for k in 0..10u32 {
            t.arm(t0, k);
        }
        t.compact(1, |_, _| false);
        assert_eq!(t.len(), 10);
    }

    /// The owner protocol the server loop follows, against a scan of every
    /// owner: arm only when the wanted deadline is earlier than the armed
    /// one, re-check on firing. Every deadline fires at the same turn as it
    /// would with a scan.
    #[test]
    fn lazy_rearming_fires_like_a_scan() {
        let t0 = Instant::now();
        let mut t = Timers::new();
        // Per owner: the deadline wanted now, and the armed entry.
        let mut want: Vec<Option<Instant>> = vec![None; 8];
        let mut armed: Vec<Option<Instant>> = vec![None; 8];
        let mut seed = 0x2545_f491_u64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for turn in 0..2000u64 {
            let now = at(t0, turn);
            // Some owners change their deadline, either way, or drop it.
            for _ in 0..3 {
                let k = rnd(8) as usize;
                want[k] = match rnd(4) {
                    0 => None,
                    _ => Some(at(t0, turn + 1 + rnd(50))),
                };
                if let Some(w) = want[k] {
                    if armed[k].is_none_or(|a| a > w) {
                        armed[k] = Some(w);
                        t.arm(w, k);
                    }
                }
            }
            let scan: Vec<usize> = (0..8)
                .filter(|&k| want[k].is_some_and(|w| w <= now))
                .collect();
            let mut fired = Vec::new();
            while let Some((when, k)) = t.pop_due(now) {
                if armed[k] != Some(when) {
                    continue;
                }
                armed[k] = None;
                match want[k] {
                    Some(w) if w <= now => {
                        fired.push(k);
                        want[k] = None;
                    }
                    Some(w) => {
                        armed[k] = Some(w);
                        t.arm(w, k);
                    }
                    None => {}
                }
            }
            fired.sort();
            assert_eq!(fired, scan, "turn {turn}");
            let live = armed.iter().filter(|a| a.is_some()).count();
            t.compact(live, |when, k| armed[k] == Some(when));
            assert!(t.len() <= 2 * 8 + 64);
        }
    }
}
