//! Plans: what an administrator asks each client's `agent` to protect and
//! how (paths, excludes, `watch` or `every`, a bandwidth limit), and the
//! plain text file the server keeps them in (`DIR/.rsb-plans`). Pure: the
//! file is read and written by `crate::io::server` (atomically), parsed and
//! formatted here.
//!
//! (The format, its parser and the form conversions are written by the
//! plans work; the types below are what the rest of the server uses.)

/// How an agent runs its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// `watch --delay`: back up each change once it has been quiet this
    /// many milliseconds.
    Watch {
        /// The quiet period.
        delay_ms: u64,
    },
    /// `--every`: a whole backup of the paths every this many seconds.
    Every {
        /// The period.
        secs: u64,
    },
}

/// One client's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Absolute paths on the client, in order.
    pub paths: Vec<Vec<u8>>,
    /// Exclude patterns, as `--exclude` takes them.
    pub excludes: Vec<String>,
    /// Watch or every.
    pub schedule: Schedule,
    /// `--bwlimit` in bytes per second (`None`: unlimited).
    pub bwlimit: Option<u64>,
}
