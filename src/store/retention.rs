//! Retention: the policy of `rsb-server --keep SPEC` (issue 11), which of
//! one path's old versions stay in history. It owns the SPEC grammar, the
//! default policy, and the decision over a list of versions with the
//! reasons behind it (for `--prune --dry-run` and the log).
//!
//! Pure: it never lists, stats or removes a version, and never reads the
//! clock or the time zone. The shell hands it each version's time and that
//! time's local calendar fields (`localtime_r`) and removes what it is told
//! to. The current version of a path is never an input, so it is never
//! removed.
//!
//! The rules are restic's `forget --keep-*` (restic's
//! `internal/restic/snapshot_policy.go` and `doc/060_forget.rst`), applied to
//! versions instead of snapshots; a version is kept when any rule keeps it:
//! * `last=N`: the N newest versions;
//! * `hourly=N`, `daily=N`, `weekly=N`, `monthly=N`, `yearly=N`: the newest
//!   version of each of the N most recent local hours (days, ISO weeks,
//!   months, years) that hold a version: buckets without a version are not
//!   counted, so a file that rarely changes keeps a long history. As restic
//!   does since 0.17, a rule whose N is not used up when it reaches the
//!   oldest version keeps that one too ("oldest daily"), so a young history
//!   keeps its beginning;
//! * `within=DURATION`: every version less than DURATION older than the
//!   newest version of the path that is not in the future (restic measures
//!   from its latest snapshot too). Not from now: a client that stops
//!   backing up (stolen, dead, retired) must not see its last week of
//!   history eaten an hour at a time by a server that keeps pruning. Since
//!   that newest version is no later than now, this keeps everything
//!   measuring from now would, and more. A version exactly DURATION older
//!   is not kept (restic's strict "after");
//! * `all`: nothing is removed.
//!
//! A version's time is when it stopped being current (its "replaced at" or
//! "deleted at" time): the moment from which it is history.

use std::fmt;

use crate::calendar::{CivilTime, DurationError, Span, Unit};

/// The policy without a `--keep`, as a spec: every version of the 7 days
/// before the path's newest one, and the newest version of each of the 30
/// most recent days, 26 weeks, 24 months and 10 years that hold one. So
/// nothing younger than 7 days is ever removed, and beyond those 7 days a
/// path keeps at most 90 versions (30 + 26 + 24 + 10).
pub const DEFAULT_SPEC: &str = "daily=30,weekly=26,monthly=24,yearly=10,within=7d";

/// The grammar of SPEC, named by every [`KeepError`].
pub const SPEC_FORMS: &str = "SPEC must be all, or a comma list of last=N, hourly=N, daily=N, \
weekly=N, monthly=N, yearly=N and within=DURATION (such as 7d), each at most once, N from 1";

/// A counted rule: `last=N` and the calendar buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// `last=N`: the N newest versions.
    Last = 0,
    /// `hourly=N`: by local hour.
    Hourly = 1,
    /// `daily=N`: by local day.
    Daily = 2,
    /// `weekly=N`: by ISO week (Monday to Sunday, local).
    Weekly = 3,
    /// `monthly=N`: by local month.
    Monthly = 4,
    /// `yearly=N`: by local year.
    Yearly = 5,
}

/// The counted rules, in the order a spec is printed.
pub const RULES: [Rule; 6] = [
    Rule::Last,
    Rule::Hourly,
    Rule::Daily,
    Rule::Weekly,
    Rule::Monthly,
    Rule::Yearly,
];

impl Rule {
    /// The rule's key in a spec.
    pub fn key(self) -> &'static str {
        match self {
            Rule::Last => "last",
            Rule::Hourly => "hourly",
            Rule::Daily => "daily",
            Rule::Weekly => "weekly",
            Rule::Monthly => "monthly",
            Rule::Yearly => "yearly",
        }
    }

    /// The bucket of the version at position `nr` (newest first) with local
    /// fields `c`: two versions in one bucket compete for one place.
    fn bucket(self, c: &CivilTime, nr: usize) -> i64 {
        let (y, m, d, h) = (
            i64::from(c.year),
            i64::from(c.month),
            i64::from(c.day),
            i64::from(c.hour),
        );
        match self {
            // Every version is its own bucket.
            Rule::Last => nr as i64,
            Rule::Hourly => ((y * 100 + m) * 100 + d) * 100 + h,
            Rule::Daily => (y * 100 + m) * 100 + d,
            Rule::Weekly => {
                let (iso_year, week) = c.iso_week();
                iso_year * 100 + i64::from(week)
            }
            Rule::Monthly => y * 100 + m,
            Rule::Yearly => y,
        }
    }
}

/// A parsed `--keep` spec. Built only by [`parse_keep`], [`default_keep`]
/// and [`Keep::ALL`], so it always has a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Keep {
    /// `all`.
    all: bool,
    /// N of each counted rule, by [`Rule`] discriminant; 0 is a rule not
    /// given (a spec refuses N = 0).
    counts: [u32; 6],
    /// `within=`, never 0 seconds.
    within: Option<Span>,
}

impl Keep {
    /// `--keep all`: nothing is removed.
    pub const ALL: Keep = Keep {
        all: true,
        counts: [0; 6],
        within: None,
    };

    /// The policy of [`DEFAULT_SPEC`].
    pub const DEFAULT: Keep = Keep {
        all: false,
        counts: [0, 0, 30, 26, 24, 10],
        within: Some(Span {
            count: 7,
            unit: Unit::Day,
        }),
    };

    /// Whether the spec is `all` (a prune has nothing to look at).
    pub fn is_all(&self) -> bool {
        self.all
    }

    /// N of a counted rule, or `None` when the spec does not give it.
    pub fn count(&self, rule: Rule) -> Option<u32> {
        self.counts.get(rule as usize).copied().filter(|&n| n != 0)
    }

    /// The span of `within=`, if given.
    pub fn within(&self) -> Option<Span> {
        self.within
    }
}

/// The policy when the server is given no `--keep` ([`DEFAULT_SPEC`]).
pub fn default_keep() -> Keep {
    Keep::DEFAULT
}

impl fmt::Display for Keep {
    /// The spec in its canonical form (rules in [`RULES`] order, then
    /// `within`), which [`parse_keep`] reads back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.all {
            return f.write_str("all");
        }
        let mut sep = "";
        for rule in RULES {
            if let Some(n) = self.count(rule) {
                write!(f, "{sep}{}={n}", rule.key())?;
                sep = ",";
            }
        }
        if let Some(span) = self.within {
            write!(f, "{sep}within={span}")?;
        }
        Ok(())
    }
}

/// A `--keep` spec that could not be read. Every message names the
/// grammar ([`SPEC_FORMS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepError {
    /// The spec is empty.
    Empty,
    /// An item that is no known `key=value` (the item as given; empty for
    /// two commas in a row or one at an end).
    Unknown(String),
    /// `all` beside other rules.
    AllWithOthers,
    /// A rule given twice.
    Twice(&'static str),
    /// An N that is no decimal number from 1 to 4,294,967,295.
    BadCount {
        /// The rule's key.
        key: &'static str,
        /// The value as given.
        value: String,
    },
    /// `within=` with a duration that cannot be read.
    BadWithin(DurationError),
    /// `within=` of 0 seconds (`within=0d`): leave it out instead.
    ZeroWithin(String),
}

impl fmt::Display for KeepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepError::Empty => write!(f, "the spec is empty; {SPEC_FORMS}"),
            KeepError::Unknown(item) if item.is_empty() => {
                write!(f, "an empty rule (a comma too many); {SPEC_FORMS}")
            }
            KeepError::Unknown(item) => {
                write!(f, "'{}': no such rule; {SPEC_FORMS}", item.escape_debug())
            }
            KeepError::AllWithOthers => {
                write!(f, "'all' keeps everything and takes no other rule; {SPEC_FORMS}")
            }
            KeepError::Twice(key) => write!(f, "'{key}' is given twice; {SPEC_FORMS}"),
            KeepError::BadCount { key, value } => write!(
                f,
                "'{key}={}': N must be a whole number from 1 to {} (leave a rule out to not use it); {SPEC_FORMS}",
                value.escape_debug(),
                u32::MAX
            ),
            KeepError::BadWithin(e) => write!(f, "within: {e}"),
            KeepError::ZeroWithin(value) => write!(
                f,
                "'within={}': a duration above 0 (leave within out to not use it); {SPEC_FORMS}",
                value.escape_debug()
            ),
        }
    }
}

/// The policy of a `--keep` SPEC: `all`, or a comma list of `last=N`,
/// `hourly=N`, `daily=N`, `weekly=N`, `monthly=N`, `yearly=N` and
/// `within=DURATION`, each at most once, in any order, N from 1 (restic's 0
/// for "unset" is refused: it reads as "keep none"). No spaces, no empty
/// items, keys in lower case.
pub fn parse_keep(s: &str) -> Result<Keep, KeepError> {
    if s == "all" {
        return Ok(Keep::ALL);
    }
    if s.is_empty() {
        return Err(KeepError::Empty);
    }
    let mut keep = Keep {
        all: false,
        counts: [0; 6],
        within: None,
    };
    for item in s.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            return Err(if item == "all" {
                KeepError::AllWithOthers
            } else {
                KeepError::Unknown(item.to_string())
            });
        };
        if key == "within" {
            if keep.within.is_some() {
                return Err(KeepError::Twice("within"));
            }
            let span = Span::parse(value).map_err(KeepError::BadWithin)?;
            if span.secs() == 0 {
                return Err(KeepError::ZeroWithin(value.to_string()));
            }
            keep.within = Some(span);
            continue;
        }
        let Some(rule) = RULES.into_iter().find(|r| r.key() == key) else {
            return Err(KeepError::Unknown(item.to_string()));
        };
        let Some(slot) = keep.counts.get_mut(rule as usize) else {
            return Err(KeepError::Unknown(item.to_string()));
        };
        if *slot != 0 {
            return Err(KeepError::Twice(rule.key()));
        }
        *slot = count(value).ok_or_else(|| KeepError::BadCount {
            key: rule.key(),
            value: value.to_string(),
        })?;
    }
    Ok(keep)
}

/// N of `key=N`: decimal digits only, 1 to `u32::MAX`.
fn count(value: &str) -> Option<u32> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<u32>().ok().filter(|&n| n != 0)
}

/// One old version of a path, as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// When it stopped being current (replaced or deleted), epoch seconds.
    pub time: i64,
    /// `time` in the server's local calendar (`localtime_r`): the hour,
    /// day, week, month and year buckets are local, as restic's are.
    pub civil: CivilTime,
}

/// Why a version is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The spec is `all`.
    All,
    /// Within `within=` of the newest version.
    Within,
    /// A counted rule: one of the N newest, or the newest of its bucket.
    Rule(Rule),
    /// A counted rule not used up at the oldest version, which it keeps
    /// although a newer version holds its bucket.
    Oldest(Rule),
}

impl Reason {
    /// Every reason, in the order [`Reasons`] lists them.
    const EVERY: [Reason; 14] = [
        Reason::All,
        Reason::Within,
        Reason::Rule(Rule::Last),
        Reason::Rule(Rule::Hourly),
        Reason::Rule(Rule::Daily),
        Reason::Rule(Rule::Weekly),
        Reason::Rule(Rule::Monthly),
        Reason::Rule(Rule::Yearly),
        Reason::Oldest(Rule::Last),
        Reason::Oldest(Rule::Hourly),
        Reason::Oldest(Rule::Daily),
        Reason::Oldest(Rule::Weekly),
        Reason::Oldest(Rule::Monthly),
        Reason::Oldest(Rule::Yearly),
    ];

    /// The reason's bit in a [`Reasons`].
    fn bit(self) -> u16 {
        match self {
            Reason::All => 1,
            Reason::Within => 1 << 1,
            Reason::Rule(r) => 1 << (2 + r as u16),
            Reason::Oldest(r) => 1 << (8 + r as u16),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::All => f.write_str("all"),
            Reason::Within => f.write_str("within"),
            Reason::Rule(r) => f.write_str(r.key()),
            Reason::Oldest(r) => write!(f, "oldest {}", r.key()),
        }
    }
}

/// The reasons that keep one version; none is a version to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Reasons(u16);

impl Reasons {
    /// Whether any rule keeps the version.
    pub fn is_kept(self) -> bool {
        self.0 != 0
    }

    /// Whether `reason` is among them.
    pub fn contains(self, reason: Reason) -> bool {
        self.0 & reason.bit() != 0
    }

    /// Each reason, in a fixed order (all, within, the rules, the oldest).
    pub fn iter(self) -> impl Iterator<Item = Reason> {
        Reason::EVERY.into_iter().filter(move |r| self.contains(*r))
    }

    /// `reason` added.
    fn insert(&mut self, reason: Reason) {
        self.0 |= reason.bit();
    }
}

impl fmt::Display for Reasons {
    /// `daily, weekly`, or `none` for a version to remove.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.is_kept() {
            return f.write_str("none");
        }
        let mut sep = "";
        for r in self.iter() {
            write!(f, "{sep}{r}")?;
            sep = ", ";
        }
        Ok(())
    }
}

/// Whether each of `versions` (one path's old versions, in any order) is
/// kept under `keep`: `true` to keep, in the order of `versions`. See
/// [`explain`] for the rules and for why.
pub fn decide(keep: &Keep, versions: &[Version], now: i64) -> Vec<bool> {
    explain(keep, versions, now)
        .into_iter()
        .map(Reasons::is_kept)
        .collect()
}

/// The reasons that keep each of `versions` (one path's old versions, in
/// any order), in the order of `versions`; an empty [`Reasons`] is a
/// version to remove.
///
/// The versions are taken newest first; of two with the same time, the one
/// later in `versions` counts as the newer (a history listed oldest first
/// stays in its order). `now` only bounds the reference of `within`: the
/// newest version not after `now` (versions in the future, from a clock
/// set wrong, are kept by `within` and never its reference).
pub fn explain(keep: &Keep, versions: &[Version], now: i64) -> Vec<Reasons> {
    let mut all = Reasons::default();
    all.insert(Reason::All);
    // A keep without any rule cannot be built; it would keep everything,
    // as restic does with an empty policy.
    if keep.all || (keep.counts == [0; 6] && keep.within.is_none()) {
        return vec![all; versions.len()];
    }
    let mut order: Vec<(usize, &Version)> = versions.iter().enumerate().collect();
    order.sort_by(|(i, a), (j, b)| b.time.cmp(&a.time).then(j.cmp(i)));

    let reference = versions
        .iter()
        .map(|v| v.time)
        .filter(|&t| t <= now)
        .max()
        .unwrap_or(now);
    // within <= 2^62 s when parsed; saturating for one built by hand.
    let cutoff = keep
        .within
        .map(|span| reference.saturating_sub(i64::try_from(span.secs()).unwrap_or(i64::MAX)));

    let mut left = keep.counts;
    let mut last: [Option<i64>; 6] = [None; 6];
    let oldest = order.len().saturating_sub(1);
    let mut out: Vec<(usize, Reasons)> = Vec::with_capacity(order.len());
    for (nr, (i, v)) in order.into_iter().enumerate() {
        let mut why = Reasons::default();
        if cutoff.is_some_and(|c| v.time > c) {
            why.insert(Reason::Within);
        }
        for ((rule, left), last) in RULES.into_iter().zip(&mut left).zip(&mut last) {
            if *left == 0 {
                continue;
            }
            let bucket = rule.bucket(&v.civil, nr);
            if *last != Some(bucket) {
                why.insert(Reason::Rule(rule));
            } else if nr == oldest {
                why.insert(Reason::Oldest(rule));
            } else {
                continue;
            }
            *last = Some(bucket);
            *left -= 1;
        }
        out.push((i, why));
    }
    out.sort_by_key(|&(i, _)| i);
    out.into_iter().map(|(_, why)| why).collect()
}

#[cfg(test)]
mod tests;
