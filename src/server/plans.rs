//! Plans: what an administrator asks each client's `agent` to protect and
//! how (paths, excludes, `watch` or `every`, a bandwidth limit), the plain
//! text they are kept in (`DIR/.rsb-plans`, and one block of it is a plan
//! on the wire), and the dashboard form's conversions. Pure: the file is
//! read and written by `crate::io::server::plans` (atomically), parsed and
//! formatted here; nothing here touches a file.
//!
//! # The format
//! ```text
//! # comments and blank lines are ignored
//! [laptop]                  a block: the plan of the client named laptop
//! path /home/ann            a path to protect, absolute (repeatable)
//! exclude *.tmp             an exclude pattern, as -x takes it (repeatable)
//! watch 2s                  back up each change once quiet this long, or:
//! every 1h                  a whole backup of the paths at this period
//! bwlimit 10M               optional: at most this many bytes a second
//! ```
//! A value is the rest of the line after the keyword and its spaces, up to
//! a `#` that follows a space (a comment) and without trailing spaces. A
//! value that has spaces at its ends, a `#`, starts with `"`, or holds
//! bytes that are not printable UTF-8 is written in double quotes, with
//! `\"`, `\\` and `\xNN` (any byte) as escapes; the formatter does so, so a
//! path of any bytes survives [`format`] then [`parse`] unchanged.
//! Durations are `500ms`, `30s`, `15m`, `2h`, `1d` (a bare number is
//! seconds); a `watch` delay is at least 10 ms, an `every` period at least
//! 1 s and whole seconds. RATE is `--bwlimit`'s (`500K`, `10M`, `1G`).
//!
//! A block with an error is left out whole and reported (its line and the
//! cause); the other blocks are kept.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::client::exclude::Excludes;
use crate::client::rate::parse_rate;
use crate::client::schedule::{parse_duration, MIN_DELAY, MIN_PERIOD};
use crate::server::web::model::PlanForm;

/// Most paths in one plan.
pub const MAX_PATHS: usize = 256;
/// Most exclude patterns in one plan.
pub const MAX_EXCLUDES: usize = 256;
/// Longest text of one plan's block: it must fit one `Plan` frame.
pub const MAX_PLAN_TEXT: usize = 60 * 1024;
/// Most plans a file may hold (its size is bounded by them).
pub const MAX_PLANS: usize = 10_000;

/// The comment the server writes at the top of the file.
pub const HEADER: &str = "\
# rsb plans: one block per client name, run by `rsb-client -n NAME HOST agent`.
# Edited from the dashboard or by hand: the server reads this file again when
# it changes. When the server writes it (a plan set from the dashboard), it
# writes it whole and comments like these of your own are not kept.
#
#   [NAME]            a client name; then, for it:
#   path PATH         a path to protect, absolute (one line each)
#   exclude PATTERN   an exclude pattern, as rsb-client -x takes it
#   watch DELAY       back up each change once quiet DELAY (500ms, 2s), or
#   every PERIOD      a whole backup every PERIOD (30s, 15m, 2h, 1d)
#   bwlimit RATE      optional: at most RATE bytes a second (500K, 10M)
#
# A value with spaces at its ends, a '#' or bytes that are not printable
# UTF-8 is written in double quotes with \\\", \\\\ and \\xNN escapes.
";

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

/// Why a plan (a block of the file, a plan from the wire, a form) was
/// refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// A line of the text: its number (from 1), the block it is in, the
    /// cause.
    Line {
        /// Line number, from 1.
        line: usize,
        /// The block's name, when inside one.
        block: Option<String>,
        /// What is wrong.
        cause: String,
    },
    /// A field of a plan or a form: which, and the cause.
    Field {
        /// `paths`, `excludes`, `schedule`, `interval`, `bwlimit`, `plan`.
        field: &'static str,
        /// What is wrong.
        cause: String,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::Line {
                line,
                block: Some(b),
                cause,
            } => write!(f, "line {line} (plan [{b}]): {cause}"),
            PlanError::Line {
                line,
                block: None,
                cause,
            } => write!(f, "line {line}: {cause}"),
            PlanError::Field { field, cause } => write!(f, "{field}: {cause}"),
        }
    }
}

impl std::error::Error for PlanError {}

fn field(field: &'static str, cause: impl Into<String>) -> PlanError {
    PlanError::Field {
        field,
        cause: cause.into(),
    }
}

impl Plan {
    /// Checks every rule of a plan: 1 to [`MAX_PATHS`] absolute paths
    /// (no NUL, at most 4,096 bytes), at most [`MAX_EXCLUDES`] patterns the
    /// client's exclude parser accepts, a watch delay of at least 10 ms or
    /// a period of at least 1 s, a rate above 0, and a text that fits a
    /// frame ([`MAX_PLAN_TEXT`]).
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.paths.is_empty() {
            return Err(field("paths", "a plan needs at least one path"));
        }
        if self.paths.len() > MAX_PATHS {
            return Err(field(
                "paths",
                format!("{} paths: at most {MAX_PATHS}", self.paths.len()),
            ));
        }
        for p in &self.paths {
            let shown = crate::proto::path::escape(p);
            if !p.starts_with(b"/") {
                return Err(field("paths", format!("'{shown}' is not absolute")));
            }
            if p.contains(&0) {
                return Err(field("paths", format!("'{shown}' holds a NUL byte")));
            }
            if p.len() > crate::proto::MAX_PATH {
                return Err(field(
                    "paths",
                    format!(
                        "a path of {} bytes: at most {}",
                        p.len(),
                        crate::proto::MAX_PATH
                    ),
                ));
            }
        }
        if self.excludes.len() > MAX_EXCLUDES {
            return Err(field(
                "excludes",
                format!("{} patterns: at most {MAX_EXCLUDES}", self.excludes.len()),
            ));
        }
        Excludes::new(&self.excludes).map_err(|e| field("excludes", e.to_string()))?;
        match self.schedule {
            Schedule::Watch { delay_ms } => {
                if u128::from(delay_ms) < MIN_DELAY.as_millis() {
                    return Err(field("interval", "a watch delay is at least 10ms"));
                }
            }
            Schedule::Every { secs } => {
                if secs < MIN_PERIOD.as_secs() {
                    return Err(field("interval", "a period is at least 1s"));
                }
            }
        }
        if self.bwlimit == Some(0) {
            return Err(field("bwlimit", "must be more than 0 bytes per second"));
        }
        let n = format_block("", self).len();
        if n > MAX_PLAN_TEXT {
            return Err(field(
                "plan",
                format!("{n} bytes of text: at most {MAX_PLAN_TEXT}"),
            ));
        }
        Ok(())
    }

    /// The plan in words, for a log line: `watch 2s, 2 paths, 1 exclude`.
    pub fn summary(&self) -> String {
        let sched = match self.schedule {
            Schedule::Watch { delay_ms } => format!("watch {}", format_delay(delay_ms)),
            Schedule::Every { secs } => format!("every {}", format_period(secs)),
        };
        let paths: Vec<String> = self
            .paths
            .iter()
            .map(|p| crate::proto::path::escape(p))
            .collect();
        let mut s = format!("{sched} {}", paths.join(" "));
        if !self.excludes.is_empty() {
            s.push_str(&format!(" (excluding {})", self.excludes.join(" ")));
        }
        if let Some(r) = self.bwlimit {
            s.push_str(&format!(", bwlimit {}", format_rate(r)));
        }
        s
    }
}

// ---- values -------------------------------------------------------------

/// True when `v` must be quoted to be read back as it is.
fn needs_quotes(v: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(v) else {
        return true;
    };
    s.is_empty()
        || s.starts_with(|c: char| c.is_whitespace() || c == '"')
        || s.ends_with(char::is_whitespace)
        || s.contains('#')
        || s.chars().any(char::is_control)
}

/// A value as the file writes it: bare, or quoted with escapes.
pub fn quote(v: &[u8]) -> String {
    if !needs_quotes(v) {
        return String::from_utf8_lossy(v).into_owned();
    }
    let mut out = String::from("\"");
    for chunk in v.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// Reads a value (see the module's format): quoted with its escapes, or
/// bare up to a comment; what follows a quoted value may only be a comment.
pub fn unquote(text: &[u8]) -> Result<Vec<u8>, String> {
    let t = text.trim_ascii();
    let Some(rest) = t.strip_prefix(b"\"") else {
        let end = t
            .windows(2)
            .position(|w| w[0].is_ascii_whitespace() && w[1] == b'#')
            .unwrap_or(t.len());
        let v = t.get(..end).unwrap_or_default().trim_ascii_end();
        return Ok(v.to_vec());
    };
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        match rest.get(i) {
            None => return Err("a quoted value without its closing '\"'".into()),
            Some(b'"') => break,
            Some(b'\\') => match rest.get(i + 1) {
                Some(b'"') => out.push(b'"'),
                Some(b'\\') => out.push(b'\\'),
                Some(b'x') => {
                    let hex = rest
                        .get(i + 2..i + 4)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or("'\\x' not followed by two hex digits")?;
                    out.push(hex);
                    i += 2;
                }
                _ => return Err("an unknown escape (use \\\", \\\\ or \\xNN)".into()),
            },
            Some(&b) => {
                out.push(b);
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    let after = rest.get(i + 1..).unwrap_or_default().trim_ascii_start();
    if !after.is_empty() && !after.starts_with(b"#") {
        return Err("text after a quoted value".into());
    }
    Ok(out)
}

/// A watch delay as written: `500ms`, `2s`.
pub fn format_delay(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A period as written: `1d`, `2h`, `15m`, `30s`.
pub fn format_period(secs: u64) -> String {
    match secs {
        s if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        s if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        s if s.is_multiple_of(60) => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A rate as `--bwlimit` takes it: `10M`, `500K`, `1000`.
pub fn format_rate(rate: u64) -> String {
    match rate {
        r if r.is_multiple_of(1 << 30) => format!("{}G", r >> 30),
        r if r.is_multiple_of(1 << 20) => format!("{}M", r >> 20),
        r if r.is_multiple_of(1 << 10) => format!("{}K", r >> 10),
        r => r.to_string(),
    }
}

/// A duration as typed, in whole milliseconds: `500ms` or anything
/// [`parse_duration`] reads.
fn parse_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if let Some(n) = t.strip_suffix("ms") {
        return match n.parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(ms),
            _ => Err(format!("bad duration '{t}': use a whole number before ms")),
        };
    }
    let d: Duration = parse_duration(t)?;
    // Rounded: 0.01 in binary is a hair under 10 ms.
    Ok((d.as_secs_f64() * 1000.0).round() as u64)
}

/// The schedule of `watch DELAY` or `every PERIOD`, floors checked.
pub fn parse_schedule(kind: &str, interval: &str) -> Result<Schedule, String> {
    let ms = parse_ms(interval)?;
    match kind {
        "watch" => {
            if u128::from(ms) < MIN_DELAY.as_millis() {
                return Err(format!(
                    "watch delay '{interval}' is too short: at least 10ms"
                ));
            }
            Ok(Schedule::Watch { delay_ms: ms })
        }
        "every" => {
            if u128::from(ms) < MIN_PERIOD.as_millis() {
                return Err(format!("period '{interval}' is too short: at least 1s"));
            }
            if !ms.is_multiple_of(1000) {
                return Err(format!(
                    "period '{interval}' is not a whole number of seconds"
                ));
            }
            Ok(Schedule::Every { secs: ms / 1000 })
        }
        other => Err(format!("schedule '{other}': use watch or every")),
    }
}

// ---- the file -----------------------------------------------------------

/// The text of one plan's block: `[name]`, then its lines.
pub fn format_block(name: &str, plan: &Plan) -> String {
    let mut out = format!("[{name}]\n");
    for p in &plan.paths {
        out.push_str(&format!("path {}\n", quote(p)));
    }
    for x in &plan.excludes {
        out.push_str(&format!("exclude {}\n", quote(x.as_bytes())));
    }
    match plan.schedule {
        Schedule::Watch { delay_ms } => {
            out.push_str(&format!("watch {}\n", format_delay(delay_ms)))
        }
        Schedule::Every { secs } => out.push_str(&format!("every {}\n", format_period(secs))),
    }
    if let Some(r) = plan.bwlimit {
        out.push_str(&format!("bwlimit {}\n", format_rate(r)));
    }
    out
}

/// The whole file: [`HEADER`], then every plan's block, a blank line
/// between blocks.
pub fn format(plans: &BTreeMap<String, Plan>) -> String {
    let mut out = String::from(HEADER);
    for (name, plan) in plans {
        out.push('\n');
        out.push_str(&format_block(name, plan));
    }
    out
}

/// A block being read.
struct Block {
    name: String,
    line: usize,
    paths: Vec<Vec<u8>>,
    excludes: Vec<String>,
    schedule: Option<Schedule>,
    bwlimit: Option<u64>,
    /// The first error in it: the block is dropped.
    error: Option<PlanError>,
}

impl Block {
    fn new(name: String, line: usize) -> Block {
        Block {
            name,
            line,
            paths: Vec::new(),
            excludes: Vec::new(),
            schedule: None,
            bwlimit: None,
            error: None,
        }
    }

    /// One `keyword value` line of the block.
    fn take(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        let text = || std::str::from_utf8(value).map_err(|_| "not UTF-8".to_string());
        match key {
            b"path" => {
                if self.paths.len() >= MAX_PATHS {
                    return Err(format!("more than {MAX_PATHS} paths"));
                }
                self.paths.push(value.to_vec());
            }
            b"exclude" => {
                if self.excludes.len() >= MAX_EXCLUDES {
                    return Err(format!("more than {MAX_EXCLUDES} excludes"));
                }
                self.excludes.push(text()?.to_string());
            }
            b"watch" | b"every" => {
                if self.schedule.is_some() {
                    return Err("a second watch or every".into());
                }
                let kind = if key == b"watch" { "watch" } else { "every" };
                self.schedule = Some(parse_schedule(kind, text()?)?);
            }
            b"bwlimit" => {
                if self.bwlimit.is_some() {
                    return Err("a second bwlimit".into());
                }
                self.bwlimit = Some(parse_rate(text()?)?);
            }
            other => {
                return Err(format!(
                    "unknown keyword '{}' (path, exclude, watch, every, bwlimit)",
                    crate::proto::path::escape(other)
                ))
            }
        }
        Ok(())
    }

    /// The plan, checked, or the error that drops it.
    fn finish(self) -> Result<(String, Plan), PlanError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let at = |cause: String| PlanError::Line {
            line: self.line,
            block: Some(self.name.clone()),
            cause,
        };
        let Some(schedule) = self.schedule else {
            return Err(at("no watch or every line".into()));
        };
        let plan = Plan {
            paths: self.paths,
            excludes: self.excludes,
            schedule,
            bwlimit: self.bwlimit,
        };
        plan.validate().map_err(|e| at(e.to_string()))?;
        Ok((self.name, plan))
    }
}

/// Ends a block: its plan goes in `plans`, or its error in `errors`.
fn end(b: Block, plans: &mut BTreeMap<String, Plan>, errors: &mut Vec<PlanError>) {
    let (name, line) = (b.name.clone(), b.line);
    match b.finish() {
        Ok(_) if plans.contains_key(&name) => errors.push(PlanError::Line {
            line,
            block: Some(name),
            cause: "a second plan of this name (the first is kept)".into(),
        }),
        Ok(_) if plans.len() >= MAX_PLANS => errors.push(PlanError::Line {
            line,
            block: Some(name),
            cause: format!("more than {MAX_PLANS} plans"),
        }),
        Ok((name, plan)) => {
            plans.insert(name, plan);
        }
        Err(e) => errors.push(e),
    }
}

/// Reads plans text (the file, or one block from the wire): the plans of
/// every good block, and an error for each bad one (its line and cause;
/// a bad block is left out whole, the others are kept). A name given twice
/// keeps its first block.
pub fn parse(text: &[u8]) -> (BTreeMap<String, Plan>, Vec<PlanError>) {
    let mut plans = BTreeMap::new();
    let mut errors = Vec::new();
    let mut block: Option<Block> = None;
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let l = raw.strip_suffix(b"\r").unwrap_or(raw).trim_ascii();
        if l.is_empty() || l.starts_with(b"#") {
            continue;
        }
        if let Some(head) = l.strip_prefix(b"[") {
            if let Some(b) = block.take() {
                end(b, &mut plans, &mut errors);
            }
            let name = head
                .iter()
                .position(|&b| b == b']')
                .and_then(|e| head.get(..e).zip(head.get(e + 1..)))
                .filter(|(_, rest)| {
                    let rest = rest.trim_ascii();
                    rest.is_empty() || rest.starts_with(b"#")
                })
                .and_then(|(n, _)| std::str::from_utf8(n).ok());
            let mut b = Block::new(name.unwrap_or_default().to_string(), line);
            match name {
                Some(n) if crate::proto::is_valid_client_name(n) => {}
                Some(n) => {
                    b.error = Some(PlanError::Line {
                        line,
                        block: None,
                        cause: format!(
                            "'{}' is not a client name (1 to 64 of A-Z a-z 0-9 . _ -)",
                            crate::proto::path::escape(n.as_bytes())
                        ),
                    })
                }
                None => {
                    b.error = Some(PlanError::Line {
                        line,
                        block: None,
                        cause: "a block header is [NAME]".into(),
                    })
                }
            }
            block = Some(b);
            continue;
        }
        let Some(b) = block.as_mut() else {
            errors.push(PlanError::Line {
                line,
                block: None,
                cause: "a line before the first [NAME]".into(),
            });
            continue;
        };
        if b.error.is_some() {
            continue;
        }
        let split = l
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(l.len());
        let (key, value) = l.split_at(split);
        let r = unquote(value).and_then(|v| b.take(key, &v));
        if let Err(cause) = r {
            b.error = Some(PlanError::Line {
                line,
                block: Some(b.name.clone()),
                cause,
            });
        }
    }
    if let Some(b) = block.take() {
        end(b, &mut plans, &mut errors);
    }
    (plans, errors)
}

/// One plan's block (the text of a `Plan` frame): its name and plan, or
/// the first error; more than one block is an error too.
pub fn parse_block(text: &[u8]) -> Result<(String, Plan), PlanError> {
    let (plans, mut errors) = parse(text);
    if !errors.is_empty() {
        return Err(errors.swap_remove(0));
    }
    let mut it = plans.into_iter();
    match (it.next(), it.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(field("plan", "no [NAME] block")),
        (Some(_), Some(_)) => Err(field("plan", "more than one block")),
    }
}

// ---- the dashboard's form -----------------------------------------------

/// The form showing `plan`: one path and one pattern a line (quoted as in
/// the file where needed), the schedule's word and interval, the rate.
pub fn to_form(plan: &Plan) -> PlanForm {
    let lines = |v: Vec<String>| v.join("\n");
    let (schedule, interval) = match plan.schedule {
        Schedule::Watch { delay_ms } => ("watch", format_delay(delay_ms)),
        Schedule::Every { secs } => ("every", format_period(secs)),
    };
    PlanForm {
        paths: lines(plan.paths.iter().map(|p| quote(p)).collect()),
        excludes: lines(plan.excludes.iter().map(|x| quote(x.as_bytes())).collect()),
        schedule: schedule.to_string(),
        interval,
        bwlimit: plan.bwlimit.map(format_rate).unwrap_or_default(),
    }
}

/// Most bytes of one line of a form's text area.
const MAX_FORM_LINE: usize = 4 * crate::proto::MAX_PATH;

/// The non-blank lines of a text area, each read as a value.
fn form_lines(what: &'static str, text: &str, most: usize) -> Result<Vec<Vec<u8>>, PlanError> {
    let mut out = Vec::new();
    for l in text.lines() {
        if l.trim().is_empty() {
            continue;
        }
        if out.len() >= most {
            return Err(field(what, format!("more than {most} lines")));
        }
        if l.len() > MAX_FORM_LINE {
            return Err(field(what, format!("a line of {} bytes", l.len())));
        }
        out.push(unquote(l.as_bytes()).map_err(|e| field(what, e))?);
    }
    Ok(out)
}

/// The plan a submitted form describes, checked ([`Plan::validate`]); the
/// error names the field.
pub fn from_form(form: &PlanForm) -> Result<Plan, PlanError> {
    let paths = form_lines("paths", &form.paths, MAX_PATHS)?;
    let excludes = form_lines("excludes", &form.excludes, MAX_EXCLUDES)?
        .into_iter()
        .map(|x| String::from_utf8(x).map_err(|_| field("excludes", "a pattern is not UTF-8")))
        .collect::<Result<Vec<_>, _>>()?;
    let kind = form.schedule.trim();
    if kind != "watch" && kind != "every" {
        return Err(field("schedule", format!("'{kind}': use watch or every")));
    }
    let schedule = parse_schedule(kind, &form.interval).map_err(|e| field("interval", e))?;
    let rate = form.bwlimit.trim();
    let bwlimit = if rate.is_empty() {
        None
    } else {
        Some(parse_rate(rate).map_err(|e| field("bwlimit", e))?)
    };
    let plan = Plan {
        paths,
        excludes,
        schedule,
        bwlimit,
    };
    plan.validate()?;
    Ok(plan)
}

#[cfg(test)]
mod tests;
