//! What the pages and `/metrics` show: plain data the shell fills in (from
//! the loop's status, the store and the plans) and [`super::pages`] and
//! [`super::metrics`] render. Names and paths stay bytes here: escaping is
//! the renderer's job, done once, at the last moment.

use crate::proto::{EntryKind, Time};

/// Who is looking at a page, and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The client name they logged in as (`None`: no `--secrets`, nobody
    /// logs in).
    pub name: Option<String>,
    /// They see every namespace (an `--admin` name, or no `--secrets`).
    pub sees_all: bool,
    /// They may change plans (an `--admin` name, or no `--secrets` and the
    /// web port bound to loopback).
    pub edits_plans: bool,
    /// The CSRF token every form they get must carry back (`None` when
    /// they may change nothing).
    pub csrf: Option<String>,
}

/// The dashboard, `/`.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    /// rsb's version.
    pub version: String,
    /// The time the page was made (for "3 min ago").
    pub now: Time,
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// The backup root, as shown in logs.
    pub root: String,
    /// Free and total bytes of the root's file system, if known.
    pub free_bytes: Option<u64>,
    /// The same.
    pub total_bytes: Option<u64>,
    /// The options in force, as (name, value): auth, read-only, limits,
    /// keep rules, the web address.
    pub options: Vec<(String, String)>,
    /// Every client the viewer may see, by name.
    pub clients: Vec<ClientRow>,
    /// The most recent errors, newest first.
    pub errors: Vec<LoggedError>,
}

/// One client on the dashboard.
#[derive(Debug, Clone, Default)]
pub struct ClientRow {
    /// Its name (a valid client name: ASCII letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// Its last finished backup, if any.
    pub last: Option<LastRun>,
    /// Connections it holds now.
    pub connections: u32,
    /// What those connections are doing.
    pub activity: Vec<Activity>,
    /// Its plan, as the form edits it (`None`: no plan).
    pub plan: Option<PlanForm>,
    /// Whether an agent of it is connected and following its plan.
    pub agent: bool,
    /// Bytes it holds, if measured yet.
    pub space: Option<Space>,
}

/// A finished backup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastRun {
    /// When it ended.
    pub ended: Time,
    /// Files stored.
    pub files: u64,
    /// Content bytes received.
    pub bytes: u64,
    /// Files that failed.
    pub failed: u64,
    /// `None`: it ended well; else why not ("connection lost", ...).
    pub error: Option<String>,
}

/// What one connection of a client is doing now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// `backup`, `restore`, `list`, `verify`, `versions`, `agent` or `idle`.
    pub what: String,
    /// Since when.
    pub since: Time,
    /// Files done so far.
    pub files: u64,
    /// Bytes moved so far.
    pub bytes: u64,
}

/// A client's plan as the dashboard's form shows and sends it: every
/// field is text as typed (the plans module parses and checks it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanForm {
    /// Paths to protect, one per line.
    pub paths: String,
    /// Exclude patterns, one per line.
    pub excludes: String,
    /// `watch` or `every`.
    pub schedule: String,
    /// For `watch`: the delay (`2s`); for `every`: the period (`1h`).
    pub interval: String,
    /// Bandwidth limit (`10M`), empty for none.
    pub bwlimit: String,
}

/// Bytes a namespace holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Space {
    /// In the current tree.
    pub current: u64,
    /// In history.
    pub history: u64,
    /// Entries in the current tree.
    pub entries: u64,
    /// When it was measured.
    pub measured: Time,
}

/// An error the server logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedError {
    /// When.
    pub at: Time,
    /// The log line.
    pub text: String,
}

/// How a listing is sorted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortBy {
    /// By name (bytes), directories first.
    #[default]
    Name,
    /// By size.
    Size,
    /// By modification time.
    Mtime,
    /// By type, then name.
    Kind,
}

/// A listing's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sort {
    /// The key.
    pub by: SortBy,
    /// Largest (or last) first.
    pub descending: bool,
}

/// A directory listing, `/browse/<name>/<path>/`.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The client name.
    pub name: String,
    /// The directory's path beneath the namespace (empty: its root),
    /// without a leading or trailing `/`.
    pub path: Vec<u8>,
    /// `?at=` as given, and the time it means (browsing the past).
    pub at: Option<(String, Time)>,
    /// Its entries, in the order to show.
    pub entries: Vec<ListEntry>,
    /// That order.
    pub sort: Sort,
    /// Entries left out because the directory holds more than a page shows.
    pub omitted: u64,
    /// The directory was read only up to the entries shown, this many: it
    /// holds more, not counted (`omitted` is 0), and those shown are the
    /// first the file system gave, sorted among themselves.
    pub cut_at: Option<u64>,
}

/// One entry of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListEntry {
    /// Its name (any bytes but `/` and NUL).
    pub name: Vec<u8>,
    /// Its type.
    pub kind: EntryKind,
    /// Size in bytes (files; 0 for the rest).
    pub size: u64,
    /// Modification time.
    pub mtime: Time,
    /// Permission bits.
    pub mode: u32,
    /// A symlink's target.
    pub target: Option<Vec<u8>>,
}

/// A file's page: its versions, `/browse/<name>/<path>` of a non-directory.
#[derive(Debug, Clone, Default)]
pub struct FileVersions {
    /// The client name.
    pub name: String,
    /// Its path beneath the namespace.
    pub path: Vec<u8>,
    /// Its versions, newest first (the current one, if it exists, first).
    pub versions: Vec<VersionRow>,
}

/// One version of a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionRow {
    /// When the server stored it.
    pub stored: Time,
    /// When it stopped being current (`None`: it is the current one).
    pub until: Option<Time>,
    /// Its type.
    pub kind: EntryKind,
    /// Its size.
    pub size: u64,
    /// Its modification time.
    pub mtime: Time,
}

/// A histogram of durations, in the buckets `/metrics` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Upper bounds in seconds, ascending (`+Inf` is implied).
    pub bounds: &'static [f64],
    /// Observations per bucket, not cumulative: one more than `bounds`
    /// (the last counts those above every bound).
    pub counts: Vec<u64>,
    /// Sum of every observation, in seconds.
    pub sum: f64,
}

/// Bounds fit for both a loop turn (sub-millisecond) and a commit (seconds).
pub const LATENCY_BOUNDS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0,
];

impl Histogram {
    /// Empty, with `bounds`.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    /// Counts one observation of `secs`.
    pub fn observe(&mut self, secs: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += secs;
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Everything `/metrics` shows.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Seconds since the server started.
    pub uptime_secs: u64,
    /// Backup-protocol connections open now.
    pub rsb_connections: u64,
    /// Web connections open now.
    pub web_connections: u64,
    /// Backup-protocol connections accepted since the start.
    pub rsb_accepted: u64,
    /// Web connections accepted since the start.
    pub web_accepted: u64,
    /// Bytes read from backup-protocol sockets.
    pub bytes_in: u64,
    /// Bytes written to backup-protocol sockets.
    pub bytes_out: u64,
    /// Bytes written to web sockets.
    pub web_bytes_out: u64,
    /// Backups that ended well.
    pub backups: u64,
    /// Backups that ended with failed files or an error.
    pub backup_failures: u64,
    /// Files committed.
    pub files_committed: u64,
    /// HTTP answers by status code, ascending.
    pub http_responses: Vec<(u16, u64)>,
    /// Failed logins (backup protocol and web).
    pub auth_failures: u64,
    /// Whole-file checks the web interface started for range answers.
    pub web_crc_checks: u64,
    /// How long commits took.
    pub commit_latency: Histogram,
    /// How long loop turns took.
    pub loop_turn: Histogram,
    /// Bytes each namespace holds, by name (measured ones only).
    pub space: Vec<(String, Space)>,
}
