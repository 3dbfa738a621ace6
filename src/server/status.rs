//! The server's record of what every client is doing and did, for the
//! dashboard, `/status.json` and `/metrics`: connections by name and what
//! each is doing, each name's last backup, recent errors, the counters and
//! latency histograms, and the space each namespace holds. Pure: the loop
//! tells it what happened (with the wall-clock time) and asks for the
//! page models.
//!
//! Memory is bounded: one entry per connection open now, one per client
//! name that ever backed up (names are what the secrets file or the store
//! allows), and at most [`MAX_ERRORS`] errors.

use std::collections::{BTreeMap, VecDeque};

use super::web::model::{
    Activity, ClientRow, Histogram, LastRun, LoggedError, Metrics, Space, LATENCY_BOUNDS,
};
use crate::proto::Time;

/// Recent errors kept for the dashboard.
pub const MAX_ERRORS: usize = 20;

/// A connection, as the status knows it: its slab key and generation.
pub type ConnKey = (usize, u64);

/// What one backup-protocol connection is doing, as the loop sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnView {
    /// The client's name (none before its `Hello`).
    pub name: Option<String>,
    /// `backup`, `restore`, `list`, `verify`, `agent`, `idle`...
    pub what: &'static str,
    /// Files so far.
    pub files: u64,
    /// Bytes so far.
    pub bytes: u64,
    /// An agent following its plan.
    pub agent: bool,
}

#[derive(Debug, Clone)]
struct Open {
    view: ConnView,
    /// When its current activity began.
    since: Time,
}

/// Counters since the start.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Backup-protocol connections accepted.
    pub rsb_accepted: u64,
    /// Web connections accepted.
    pub web_accepted: u64,
    /// Web connections open now.
    pub web_open: u64,
    /// Bytes read from backup-protocol sockets.
    pub bytes_in: u64,
    /// Bytes written to backup-protocol sockets.
    pub bytes_out: u64,
    /// Bytes written to web sockets.
    pub web_bytes_out: u64,
    /// Backups that ended well.
    pub backups: u64,
    /// Backups with failed files or an error.
    pub backup_failures: u64,
    /// Files committed.
    pub files_committed: u64,
    /// Failed logins.
    pub auth_failures: u64,
    /// Whole-file checks the web interface started.
    pub web_crc_checks: u64,
    /// HTTP answers by status.
    pub http: BTreeMap<u16, u64>,
}

/// The record (see the module docs).
#[derive(Debug, Clone)]
pub struct Status {
    started: Time,
    open: BTreeMap<ConnKey, Open>,
    last: BTreeMap<String, LastRun>,
    space: BTreeMap<String, Space>,
    errors: VecDeque<LoggedError>,
    /// The counters, for the loop to add to.
    pub counters: Counters,
    commit: Histogram,
    turn: Histogram,
}

impl Status {
    /// Nothing yet; the server started at `started`.
    pub fn new(started: Time) -> Status {
        Status {
            started,
            open: BTreeMap::new(),
            last: BTreeMap::new(),
            space: BTreeMap::new(),
            errors: VecDeque::new(),
            counters: Counters::default(),
            commit: Histogram::new(LATENCY_BOUNDS),
            turn: Histogram::new(LATENCY_BOUNDS),
        }
    }

    /// When the server started.
    pub fn started(&self) -> Time {
        self.started
    }

    /// The connection `key` is (now) doing what `view` says.
    pub fn handle_conn(&mut self, key: ConnKey, view: ConnView, now: Time) {
        match self.open.get_mut(&key) {
            Some(o) => {
                if o.view.what != view.what {
                    o.since = now;
                }
                o.view = view;
            }
            None => {
                self.open.insert(key, Open { view, since: now });
            }
        }
    }

    /// The connection `key` closed. `backup`: it was a backup, which ended
    /// so (files stored, bytes, failed files, the error that ended it).
    pub fn handle_closed(&mut self, key: ConnKey, backup: Option<LastRun>) {
        let open = self.open.remove(&key);
        let (Some(run), Some(name)) = (backup, open.and_then(|o| o.view.name)) else {
            return;
        };
        if run.failed > 0 || run.error.is_some() {
            self.counters.backup_failures += 1;
        } else {
            self.counters.backups += 1;
        }
        self.last.insert(name, run);
    }

    /// The last backups read back from where the shell keeps them.
    pub fn restore_last(&mut self, last: BTreeMap<String, LastRun>) {
        self.last = last;
    }

    /// Every name's last backup (what the shell keeps on disk).
    pub fn last_runs(&self) -> &BTreeMap<String, LastRun> {
        &self.last
    }

    /// An error was logged.
    pub fn handle_error(&mut self, at: Time, text: String) {
        if self.errors.len() >= MAX_ERRORS {
            self.errors.pop_back();
        }
        self.errors.push_front(LoggedError { at, text });
    }

    /// A commit took `secs` and stored `files`.
    pub fn handle_commit(&mut self, secs: f64, files: u64) {
        self.commit.observe(secs);
        self.counters.files_committed += files;
    }

    /// A loop turn took `secs`.
    pub fn handle_turn(&mut self, secs: f64) {
        self.turn.observe(secs);
    }

    /// An HTTP answer went out with `status`.
    pub fn handle_http(&mut self, status: u16) {
        *self.counters.http.entry(status).or_insert(0) += 1;
    }

    /// The space a namespace holds was measured.
    pub fn handle_space(&mut self, name: &str, space: Space) {
        self.space.insert(name.to_string(), space);
    }

    /// The dashboard's rows for `names` (the namespaces the viewer may
    /// see, plus every name connected now or with a plan when `all`).
    pub fn rows(&self, names: &[String], all: bool) -> Vec<ClientRow> {
        let mut rows: BTreeMap<&str, ClientRow> = BTreeMap::new();
        for n in names {
            rows.entry(n).or_insert_with(|| row(n));
        }
        for o in self.open.values() {
            let Some(name) = o.view.name.as_deref() else {
                continue;
            };
            if !all && !names.iter().any(|n| n == name) {
                continue;
            }
            let r = rows.entry(name).or_insert_with(|| row(name));
            r.connections += 1;
            r.agent |= o.view.agent;
            r.activity.push(Activity {
                what: o.view.what.to_string(),
                since: o.since,
                files: o.view.files,
                bytes: o.view.bytes,
            });
        }
        for (name, r) in rows.iter_mut() {
            r.last = self.last.get(*name).cloned();
            r.space = self.space.get(*name).copied();
        }
        rows.into_values().collect()
    }

    /// The recent errors, newest first.
    pub fn errors(&self) -> Vec<LoggedError> {
        self.errors.iter().cloned().collect()
    }

    /// What `/metrics` shows, with the connections open now.
    pub fn metrics(&self, now: Time) -> Metrics {
        let c = &self.counters;
        Metrics {
            uptime_secs: now.secs.saturating_sub(self.started.secs).max(0) as u64,
            rsb_connections: self.open.len() as u64,
            web_connections: c.web_open,
            rsb_accepted: c.rsb_accepted,
            web_accepted: c.web_accepted,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            web_bytes_out: c.web_bytes_out,
            backups: c.backups,
            backup_failures: c.backup_failures,
            files_committed: c.files_committed,
            http_responses: c.http.iter().map(|(k, v)| (*k, *v)).collect(),
            auth_failures: c.auth_failures,
            web_crc_checks: c.web_crc_checks,
            commit_latency: self.commit.clone(),
            loop_turn: self.turn.clone(),
            space: self.space.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }
}

/// The first line of `DIR/.rsb-status`, the last backups kept across
/// restarts.
const LAST_HEADER: &str = "# rsb: the last backup of each client (rewritten by the server)";

/// The last backups as the server keeps them on disk: one line per name,
/// `NAME SECS NANOS FILES BYTES FAILED [ERROR]`, the error with its
/// control characters escaped.
pub fn format_last(last: &BTreeMap<String, LastRun>) -> String {
    let mut s = String::from(LAST_HEADER);
    s.push('\n');
    for (name, r) in last {
        s.push_str(&format!(
            "{name} {} {} {} {} {}",
            r.ended.secs, r.ended.nanos, r.files, r.bytes, r.failed
        ));
        if let Some(e) = &r.error {
            s.push(' ');
            s.extend(e.chars().map(|c| if c.is_control() { ' ' } else { c }));
        }
        s.push('\n');
    }
    s
}

/// Reads what [`format_last`] wrote; lines it cannot read are left out.
pub fn parse_last(text: &str) -> BTreeMap<String, LastRun> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.splitn(7, ' ');
        let (Some(name), Some(secs), Some(nanos), Some(files), Some(bytes), Some(failed)) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if !crate::proto::is_valid_client_name(name) {
            continue;
        }
        let (Ok(secs), Ok(nanos), Ok(files), Ok(bytes), Ok(failed)) = (
            secs.parse(),
            nanos.parse::<u32>(),
            files.parse(),
            bytes.parse(),
            failed.parse(),
        ) else {
            continue;
        };
        if nanos >= 1_000_000_000 {
            continue;
        }
        out.insert(
            name.to_string(),
            LastRun {
                ended: Time { secs, nanos },
                files,
                bytes,
                failed,
                error: f.next().map(str::to_string),
            },
        );
    }
    out
}

fn row(name: &str) -> ClientRow {
    ClientRow {
        name: name.to_string(),
        ..ClientRow::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Time {
        Time { secs, nanos: 0 }
    }

    fn view(name: &str, what: &'static str, files: u64) -> ConnView {
        ConnView {
            name: Some(name.into()),
            what,
            files,
            bytes: files * 10,
            agent: what == "agent",
        }
    }

    #[test]
    fn a_backup_shows_live_then_as_the_last_run() {
        let mut s = Status::new(t(100));
        s.handle_conn((1, 1), view("laptop", "backup", 3), t(110));
        s.handle_conn((1, 1), view("laptop", "backup", 7), t(111));
        let rows = s.rows(&[], true);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].connections, 1);
        assert_eq!(rows[0].activity[0].files, 7);
        // The activity began at its first sight, not at its last update.
        assert_eq!(rows[0].activity[0].since, t(110));
        let run = LastRun {
            ended: t(120),
            files: 7,
            bytes: 70,
            failed: 0,
            error: None,
        };
        s.handle_closed((1, 1), Some(run.clone()));
        let rows = s.rows(&["laptop".into()], false);
        assert_eq!(rows[0].connections, 0);
        assert_eq!(rows[0].last, Some(run));
        assert_eq!(s.metrics(t(130)).backups, 1);
        assert_eq!(s.metrics(t(130)).uptime_secs, 30);
    }

    #[test]
    fn a_failed_backup_counts_as_a_failure_and_a_restore_as_no_backup() {
        let mut s = Status::new(t(0));
        s.handle_conn((1, 1), view("a", "backup", 1), t(1));
        s.handle_closed(
            (1, 1),
            Some(LastRun {
                failed: 1,
                ..LastRun::default()
            }),
        );
        s.handle_conn((2, 2), view("a", "restore", 1), t(1));
        s.handle_closed((2, 2), None);
        let m = s.metrics(t(2));
        assert_eq!((m.backups, m.backup_failures), (0, 1));
        assert_eq!(s.last_runs()["a"].failed, 1);
    }

    #[test]
    fn a_viewer_sees_only_the_names_given_unless_all() {
        let mut s = Status::new(t(0));
        s.handle_conn((1, 1), view("a", "agent", 0), t(1));
        s.handle_conn((2, 1), view("b", "backup", 0), t(1));
        let mine = s.rows(&["a".into()], false);
        assert_eq!(mine.len(), 1);
        assert!(mine[0].agent);
        assert_eq!(s.rows(&[], true).len(), 2);
    }

    #[test]
    fn errors_are_bounded_newest_first() {
        let mut s = Status::new(t(0));
        for i in 0..(MAX_ERRORS as i64 + 5) {
            s.handle_error(t(i), format!("e{i}"));
        }
        let e = s.errors();
        assert_eq!(e.len(), MAX_ERRORS);
        assert_eq!(e[0].text, format!("e{}", MAX_ERRORS + 4));
    }

    #[test]
    fn last_runs_round_trip_through_their_file() {
        let mut last = BTreeMap::new();
        last.insert(
            "laptop".to_string(),
            LastRun {
                ended: Time {
                    secs: 1_764_000_000,
                    nanos: 5,
                },
                files: 3,
                bytes: 4096,
                failed: 0,
                error: None,
            },
        );
        last.insert(
            "nas".to_string(),
            LastRun {
                error: Some("ended before its last commit: closed\nby peer".into()),
                failed: 2,
                ..LastRun::default()
            },
        );
        let text = format_last(&last);
        let back = parse_last(&text);
        assert_eq!(back["laptop"], last["laptop"]);
        assert_eq!(
            back["nas"].error.as_deref(),
            Some("ended before its last commit: closed by peer")
        );
        assert!(parse_last("bad line\n.rsb-x 1 2 3 4 5\nx 1 2000000000 0 0 0\n").is_empty());
    }

    #[test]
    fn histograms_count_into_their_buckets() {
        let mut s = Status::new(t(0));
        s.handle_commit(0.003, 5);
        s.handle_commit(20.0, 1);
        let m = s.metrics(t(0));
        assert_eq!(m.commit_latency.count(), 2);
        assert_eq!(m.files_committed, 6);
        assert_eq!(m.commit_latency.counts.last(), Some(&1));
    }
}
