//! The pure half of what the client tells its user while a command runs:
//! failures collapsed by cause ([`Repeats`]: a full disk names a few files,
//! then one line for the rest) and the progress line's pace ([`Pace`]: when
//! to draw, and the rate and time left, from times passed in).

use std::collections::HashMap;
use std::time::Duration;

/// Files named per identical cause before the rest are only counted.
pub const NAMED_PER_CAUSE: u64 = 3;
/// Distinct causes remembered; past that every failure is printed (each
/// one is then different anyway) and memory stays bounded.
const CAUSES: usize = 1024;

/// Failures of one command, counted by cause.
#[derive(Debug, Default)]
pub struct Repeats {
    by_cause: HashMap<String, u64>,
    /// Causes in the order they first came, for the closing lines.
    order: Vec<String>,
}

impl Repeats {
    /// Counts a failure with `cause`; true when it is to be printed (one
    /// of the first [`NAMED_PER_CAUSE`] with that cause).
    pub fn admit(&mut self, cause: &str) -> bool {
        if let Some(n) = self.by_cause.get_mut(cause) {
            *n += 1;
            return *n <= NAMED_PER_CAUSE;
        }
        if self.order.len() < CAUSES {
            self.by_cause.insert(cause.to_string(), 1);
            self.order.push(cause.to_string());
        }
        true
    }

    /// The lines for the failures not printed, one per cause, e.g.
    /// `... and 987 more files: No space left on device`; forgets them.
    pub fn drain(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for cause in self.order.drain(..) {
            let n = self.by_cause.remove(&cause).unwrap_or(0);
            if n > NAMED_PER_CAUSE {
                let more = crate::client::ui::count(n - NAMED_PER_CAUSE, "more file", "more files");
                lines.push(format!("... and {more}: {cause}"));
            }
        }
        self.by_cause.clear();
        lines
    }
}

/// When a progress line is drawn, and the numbers it shows, from the time
/// since the command started.
#[derive(Debug, Default)]
pub struct Pace {
    last_draw: Option<Duration>,
}

/// No progress line before this: short commands print only the summary.
pub const FIRST_DRAW: Duration = Duration::from_secs(1);
/// At most this often.
pub const REDRAW: Duration = Duration::from_millis(250);

impl Pace {
    /// True when a line is due at `elapsed` (and then records the draw).
    pub fn due(&mut self, elapsed: Duration) -> bool {
        if elapsed < FIRST_DRAW || self.last_draw.is_some_and(|t| elapsed < t + REDRAW) {
            return false;
        }
        self.last_draw = Some(elapsed);
        true
    }

    /// True once a line was drawn (and so must be cleared).
    pub fn drawn(&self) -> bool {
        self.last_draw.is_some()
    }

    /// Forgets the drawn line (it was cleared); the next one is due at
    /// once.
    pub fn cleared(&mut self) {
        self.last_draw = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_names_a_few_files_and_counts_the_rest() {
        let mut r = Repeats::default();
        let enospc = "server: No space left on device";
        let printed = (0..990).filter(|_| r.admit(enospc)).count() as u64;
        assert_eq!(printed, NAMED_PER_CAUSE);
        assert!(r.admit("Permission denied"), "another cause is named");
        assert_eq!(
            r.drain(),
            vec!["... and 987 more files: server: No space left on device".to_string()]
        );
        assert!(r.drain().is_empty(), "drained");
        assert!(r.admit(enospc), "a new command starts afresh");
    }

    #[test]
    fn one_more_is_singular_and_few_failures_need_no_line() {
        let mut r = Repeats::default();
        for _ in 0..NAMED_PER_CAUSE {
            assert!(r.admit("x"));
        }
        assert!(r.drain().is_empty());
        for _ in 0..=NAMED_PER_CAUSE {
            r.admit("x");
        }
        assert_eq!(r.drain(), vec!["... and 1 more file: x".to_string()]);
    }

    #[test]
    fn distinct_causes_stay_bounded() {
        let mut r = Repeats::default();
        for i in 0..(CAUSES + 10) {
            assert!(r.admit(&format!("cause {i}")));
        }
        assert_eq!(r.order.len(), CAUSES);
        assert!(r.drain().is_empty());
    }

    #[test]
    fn the_line_waits_a_second_then_redraws_four_times_a_second() {
        let ms = Duration::from_millis;
        let mut p = Pace::default();
        assert!(!p.due(ms(999)));
        assert!(!p.drawn());
        assert!(p.due(ms(1000)));
        assert!(!p.due(ms(1249)));
        assert!(p.due(ms(1250)));
        assert!(p.drawn());
        p.cleared();
        assert!(p.due(ms(1300)), "after a clear the line comes back at once");
    }
}
