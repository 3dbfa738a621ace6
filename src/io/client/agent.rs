//! `rsb-client [-n NAME] HOST [PORT] agent`: runs the plan the server
//! holds for the client's name and follows its changes without a restart.
//! The plan connection is a [`PlanSource`] of the client's one loop
//! ([`super::plan_conn`]); this file runs whatever plan it heard of last
//! with the machinery of `watch` ([`super::watch::watch`]) or of `--every`
//! (a whole incremental backup per period). When another plan comes, the
//! watch or the run in progress ends between batches and the new plan
//! starts, with one `agent: plan changed: ...` line. A server that is away
//! changes nothing: the plan last heard of keeps running (its backups
//! retry as watch's do) while the plan connection is made again.
//!
//! What a plan says and how its text reads is [`crate::server::plans`]'s.
//! This file decides nothing about the protocol (the session does).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backup;
use super::conn::Remote;
use super::error::NetError;
use super::event_loop::{EventLoop, PLAN};
use super::plan_conn::{News, PlanSource};
use super::report::Reporter;
use super::walk::{self, WalkOptions};
use super::watch::{self, Stopped, WatchError, WatchOptions};
use crate::client::exclude::Excludes;
use crate::client::schedule::{Backoff, Every};
use crate::exit;
use crate::server::plans::{self, Plan, Schedule};

/// How the agent was started (the client's own options).
pub struct AgentOptions {
    /// `-q`.
    pub quiet: bool,
    /// `-o`.
    pub one_file_system: bool,
    /// `-x` and `--exclude-from`: added to every plan's excludes.
    pub excludes: Vec<Vec<u8>>,
    /// `--bwlimit`: used when the plan sets none.
    pub bwlimit: Option<u64>,
}

/// What ended a plan's run.
enum Ended {
    /// News came: act on it.
    News,
    /// SIGINT or SIGTERM (or `quit`): the agent ends, status 0.
    Stopped,
}

/// Runs the agent until SIGINT or SIGTERM (status 0), or a fatal refusal
/// (status 2). Returns the exit status.
pub fn run(lp: &mut EventLoop, remote: &Remote, opts: &AgentOptions) -> i32 {
    lp.start_agent(PlanSource::new(remote.clone(), PLAN));
    let name = remote.name.clone();
    let say = |line: String| {
        if !opts.quiet {
            eprintln!("{}: {line}", super::PROG);
        }
    };
    let mut plan: Option<Plan> = None;
    // The plan cannot run (a path that cannot be watched): wait for
    // another.
    let mut stuck = false;
    let mut heard = false;
    let status = loop {
        if lp.interrupted() {
            break exit::OK;
        }
        match lp.plan().and_then(PlanSource::take_news) {
            Some(News::Fatal(e)) => {
                eprintln!("{}: {e}", super::PROG);
                break exit::USAGE;
            }
            Some(News::Plan(text)) => {
                stuck = false;
                let next = if text.is_empty() {
                    None
                } else {
                    match plans::parse_block(&text) {
                        Ok((_, p)) => Some(p),
                        Err(e) => {
                            log::error!("agent: the server's plan for {name} does not read: {e}");
                            stuck = true;
                            plan.clone()
                        }
                    }
                };
                match (&plan, &next) {
                    (_, _) if stuck => {}
                    (None, None) if !heard => {
                        say(format!("agent: no plan for {name} yet; waiting"))
                    }
                    (Some(_), None) => say(format!(
                        "agent: plan removed: {name} is no longer protected; waiting for a plan"
                    )),
                    (None, Some(p)) => say(format!("agent: plan: {}", p.summary())),
                    (Some(_), Some(p)) => say(format!("agent: plan changed: {}", p.summary())),
                    (None, None) => {}
                }
                heard = true;
                if !stuck {
                    plan = next;
                }
                if let Some(p) = &plan {
                    lp.set_bwlimit(p.bwlimit.or(opts.bwlimit));
                }
            }
            None => {}
        }
        let running = match (&plan, stuck) {
            (Some(p), false) => Some(p.clone()),
            _ => None,
        };
        let Some(p) = running else {
            match lp.wait_until(None) {
                Ok(()) => continue,
                Err(NetError::Interrupted) => break exit::OK,
                Err(e) => {
                    eprintln!("{}: {e}", super::PROG);
                    break exit::USAGE;
                }
            }
        };
        match run_plan(lp, remote, &p, opts) {
            Ok(Ended::News) => {}
            Ok(Ended::Stopped) => break exit::OK,
            Err(RunError::Cannot(m)) => {
                log::error!("agent: the plan cannot run: {m}; waiting for another plan");
                stuck = true;
            }
            Err(RunError::Fatal(e)) => {
                eprintln!("{}: {e}", super::PROG);
                break exit::USAGE;
            }
        }
    };
    lp.take_interrupt();
    status
}

/// Why a plan's run ended other than by news or a signal.
enum RunError {
    /// It cannot run as it is (a path that is not a directory, bad
    /// patterns): wait for another plan.
    Cannot(String),
    /// The server refused the client for good.
    Fatal(NetError),
}

/// Runs `plan` until news, a signal, or an error that waiting will not
/// mend.
fn run_plan(
    lp: &mut EventLoop,
    remote: &Remote,
    plan: &Plan,
    opts: &AgentOptions,
) -> Result<Ended, RunError> {
    let all = opts
        .excludes
        .iter()
        .cloned()
        .chain(plan.excludes.iter().map(|x| x.as_bytes().to_vec()));
    let ex = Excludes::new(all).map_err(|e| RunError::Cannot(e.to_string()))?;
    let walk = WalkOptions {
        one_file_system: opts.one_file_system,
        patterns: (!ex.is_empty()).then(|| Arc::new(ex)),
        ..Default::default()
    };
    let paths: Vec<PathBuf> = plan
        .paths
        .iter()
        .map(|p| PathBuf::from(OsStr::from_bytes(p)))
        .collect();
    match plan.schedule {
        Schedule::Watch { delay_ms } => {
            let wopts = WatchOptions {
                delay: Duration::from_millis(delay_ms),
                rescan: crate::client::ui::WATCH_RESCAN,
                walk,
                quiet: opts.quiet,
            };
            match watch::watch(lp, remote, &paths, &wopts) {
                Ok((_, Stopped::Plan)) => Ok(Ended::News),
                Ok((_, Stopped::Signal | Stopped::Quit)) => Ok(Ended::Stopped),
                Err(WatchError::Usage(m)) => Err(RunError::Cannot(m)),
                Err(WatchError::Net(e)) => Err(RunError::Fatal(e)),
            }
        }
        Schedule::Every { secs } => {
            every(lp, remote, &paths, walk, Duration::from_secs(secs), opts)
        }
    }
}

/// `--every`'s loop for a plan: a whole incremental backup of `paths`
/// each `period` (from the start of the one before, never overlapping, a
/// missed run at once and only one), tried again with the backoff when
/// the server is away; it ends between runs when news comes.
fn every(
    lp: &mut EventLoop,
    remote: &Remote,
    paths: &[PathBuf],
    walk: WalkOptions,
    period: Duration,
    opts: &AgentOptions,
) -> Result<Ended, RunError> {
    let mut every = Every::new(period);
    let mut backoff = Backoff::new();
    // A run that lost its server is tried again then (whatever wakes the
    // loop before: the plan connection's traffic does).
    let mut retry_at: Option<Instant> = None;
    let roots: Vec<walk::Root> = paths.iter().cloned().map(walk::Root::tree).collect();
    loop {
        if lp.interrupted() {
            return Ok(Ended::Stopped);
        }
        if lp.plan_news() {
            return Ok(Ended::News);
        }
        let now = crate::io::clock::boottime();
        let due = every.due_at(now);
        let run_now = match retry_at {
            Some(t) => t <= Instant::now(),
            None => due <= now,
        };
        let until = if run_now {
            if retry_at.is_none() {
                every.started(now);
            }
            let mut rep = Reporter::new(opts.quiet, false);
            lp.take_moved();
            let r = lp
                .link(remote)
                .and_then(|mut link| backup::backup(&mut link, &roots, walk.clone(), &mut rep));
            // One connection per backup (see the `backup` command).
            lp.disconnect();
            rep.counts.moved = lp.take_moved();
            match r {
                Ok(()) => {
                    rep.finish("backup", "sent");
                    retry_at = None;
                    backoff.succeeded();
                    continue;
                }
                Err(NetError::Interrupted) => return Ok(Ended::Stopped),
                Err(e) if watch::is_fatal(&e) => return Err(RunError::Fatal(e)),
                Err(e) => {
                    rep.flush_repeats();
                    let wait = backoff.failed(watch::random());
                    log::warn!("{e}; trying again in {:.1} s", wait.as_secs_f64());
                    let at = Instant::now() + wait;
                    retry_at = Some(at);
                    at
                }
            }
        } else if let Some(t) = retry_at {
            t
        } else {
            // At most a minute at a time: the loop's timers do not count a
            // suspend, the schedule's clock does.
            Instant::now() + (due - now).min(Duration::from_secs(60))
        };
        match lp.wait_until(Some(until)) {
            Ok(()) => {}
            Err(NetError::Interrupted) => return Ok(Ended::Stopped),
            Err(e) => return Err(RunError::Fatal(e)),
        }
    }
}
