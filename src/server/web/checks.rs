//! The whole-file checks that range answers wait for, in flight: one per
//! file, whoever asks, with the list of answers waiting for it, and at
//! most a few at a time across the server.
//!
//! A range of a file cannot be checked by itself, so its first range
//! waits for a worker to read the whole file (see the shell's
//! `web_conn/files.rs`). Without this, every connection asking for a range
//! of one unchecked file would queue its own read of the whole file; with
//! it, the first starts the check, the others join its waiters, and one
//! result answers them all. A request beyond [`Checks`]'s cap while the cap
//! is reached is refused (the shell answers 503 with `Retry-After`), so a
//! crowd of big files cannot fill the workers' queue the verifies share.
//!
//! Waiters are whatever the shell names a connection by; one that went
//! away meanwhile is just a name nobody answers to when the result comes
//! back (the shell looks each up and skips those gone).

use std::collections::HashMap;
use std::hash::Hash;

/// Whole-file checks in flight at most across the server.
pub const MAX_CHECKS: usize = 4;

/// What asking for a check came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// No check of that file was under way: start one, numbered so (the
    /// result names it back to [`Checks::finish`]).
    Start(u64),
    /// One is under way: wait for its result.
    Waiting,
    /// The cap is reached: refuse for now.
    Full,
}

/// One check in flight: its file and who waits for it.
#[derive(Debug)]
struct InFlight<K, W> {
    key: K,
    waiters: Vec<W>,
}

/// The checks in flight (see the module docs): keyed by the file's
/// identity `K`, waited for by `W`s.
#[derive(Debug)]
pub struct Checks<K, W> {
    cap: usize,
    next: u64,
    by_number: HashMap<u64, InFlight<K, W>>,
    by_key: HashMap<K, u64>,
}

impl<K: Eq + Hash + Clone, W: PartialEq> Checks<K, W> {
    /// None in flight; at most `cap` at a time.
    pub fn new(cap: usize) -> Checks<K, W> {
        Checks {
            cap,
            next: 1,
            by_number: HashMap::new(),
            by_key: HashMap::new(),
        }
    }

    /// `waiter` wants the check of the file `key`.
    pub fn join(&mut self, key: K, waiter: W) -> Joined {
        if let Some(n) = self.by_key.get(&key) {
            if let Some(f) = self.by_number.get_mut(n) {
                if !f.waiters.contains(&waiter) {
                    f.waiters.push(waiter);
                }
                return Joined::Waiting;
            }
        }
        if self.by_number.len() >= self.cap {
            return Joined::Full;
        }
        let n = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        self.by_key.insert(key.clone(), n);
        self.by_number.insert(
            n,
            InFlight {
                key,
                waiters: vec![waiter],
            },
        );
        Joined::Start(n)
    }

    /// The check numbered `n` came back (or could not be started): its
    /// file and everyone who waited for it, in the order they asked.
    /// `None` for a number not in flight.
    pub fn finish(&mut self, n: u64) -> Option<(K, Vec<W>)> {
        let f = self.by_number.remove(&n)?;
        self.by_key.remove(&f.key);
        Some((f.key, f.waiters))
    }

    /// Checks in flight now.
    pub fn len(&self) -> usize {
        self.by_number.len()
    }

    /// None in flight.
    pub fn is_empty(&self) -> bool {
        self.by_number.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_check_answers_every_waiter_of_a_file() {
        let mut c: Checks<&str, u32> = Checks::new(MAX_CHECKS);
        let Joined::Start(n) = c.join("big", 1) else {
            panic!("the first asks for a start");
        };
        assert_eq!(c.join("big", 2), Joined::Waiting);
        assert_eq!(c.join("big", 3), Joined::Waiting);
        // The same waiter twice is answered once.
        assert_eq!(c.join("big", 3), Joined::Waiting);
        assert_eq!(c.len(), 1);
        assert_eq!(c.finish(n), Some(("big", vec![1, 2, 3])));
        assert!(c.is_empty());
        // Done: a result of the same number again is nobody's.
        assert_eq!(c.finish(n), None);
        // The next ask of that file starts a new check, numbered anew.
        match c.join("big", 4) {
            Joined::Start(m) => assert_ne!(m, n),
            other => panic!("expected a start, got {other:?}"),
        }
    }

    #[test]
    fn the_cap_refuses_new_files_but_not_joiners() {
        let mut c: Checks<u32, u32> = Checks::new(2);
        let Joined::Start(a) = c.join(10, 1) else {
            panic!("start");
        };
        assert!(matches!(c.join(20, 2), Joined::Start(_)));
        assert_eq!(c.join(30, 3), Joined::Full);
        // A file already being checked still takes waiters at the cap.
        assert_eq!(c.join(10, 4), Joined::Waiting);
        assert_eq!(c.finish(a), Some((10, vec![1, 4])));
        // Room again.
        assert!(matches!(c.join(30, 3), Joined::Start(_)));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_waiter_that_left_is_just_a_name_in_the_result() {
        // The shell drops a waiter whose connection closed when it finds
        // no connection of that name; the structure itself keeps the
        // name and the others are answered all the same.
        let mut c: Checks<u8, (usize, u64)> = Checks::new(1);
        let Joined::Start(n) = c.join(7, (3, 100)) else {
            panic!("start");
        };
        assert_eq!(c.join(7, (4, 101)), Joined::Waiting);
        let (_, w) = c.finish(n).unwrap();
        assert_eq!(w, vec![(3, 100), (4, 101)]);
        assert_eq!(c.finish(n + 1), None);
    }
}
