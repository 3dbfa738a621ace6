//! A virtual clock: time moves only when the test says so, and every
//! session of a test reads the same one.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Virtual time shared by every holder of a clone: [`Clock::advance`] on
/// one moves them all.
#[derive(Debug, Clone)]
pub struct Clock {
    origin: Instant,
    elapsed: Rc<Cell<Duration>>,
}

impl Clock {
    /// A clock at zero. Its origin is read from the real clock once, since
    /// an `Instant` can be made no other way; it never moves by itself.
    pub fn new() -> Clock {
        Clock {
            origin: Instant::now(),
            elapsed: Rc::new(Cell::new(Duration::ZERO)),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.origin + self.elapsed.get()
    }

    /// Time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        self.elapsed.get()
    }

    /// Moves the time on by `d`, for every clone.
    pub fn advance(&self, d: Duration) {
        self.elapsed.set(self.elapsed.get() + d);
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_time() {
        let a = Clock::new();
        let b = a.clone();
        let t0 = a.now();
        b.advance(Duration::from_secs(3));
        assert_eq!(a.now(), t0 + Duration::from_secs(3));
        assert_eq!(a.elapsed(), Duration::from_secs(3));
    }
}
