//! The client's I/O. [`run`] is the whole client after option parsing: it
//! connects, runs one command from the command line or the prompt's
//! commands from stdin, reconnects after a lost connection, and returns the
//! exit status.
//!
//! Below it: the process's one loop ([`event_loop`]: the poll, the server
//! connection [`conn`], timers, signals), one driver per command
//! ([`backup`], [`restore`], [`list`], [`verify`], [`versions`]) that feeds the pure
//! [`crate::client`] ring and carries out what the server's answers mean on
//! the local disk, the local walk ([`walk`]), this machine's users and
//! groups ([`owners`]), and what the user sees on
//! stderr ([`report`]). Typed connection errors are in [`error`].

pub mod agent;
pub mod backup;
pub mod committer;
pub mod conn;
pub mod error;
pub mod event_loop;
pub mod inotify;
pub mod list;
pub mod marker;
pub mod owners;
pub mod plan_conn;
pub mod report;
pub mod restore;
pub mod verify;
pub mod versions;
pub mod walk;
pub mod walker;
pub mod watch;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::Key;
use crate::client::exclude::Excludes;
use crate::client::ui::{self, Command};
use crate::exit;
use crate::proto::Time;
use conn::Remote;
use error::NetError;
use event_loop::EventLoop;
use report::Reporter;

/// The program's name, at the start of every message it prints.
pub const PROG: &str = "rsb-client";

/// Everything the client needs to run, validated.
pub struct Config {
    /// The server and the client's name and key.
    pub remote: Remote,
    /// `-q`: no progress line, no summaries, errors only.
    pub quiet: bool,
    /// `-v`: debug messages too.
    pub verbose: bool,
    /// `-o`: a backup does not descend into other file systems.
    pub one_file_system: bool,
    /// A one-shot command (`HOST [PORT] COMMAND...`); empty: read commands
    /// from stdin, with a prompt on a terminal.
    pub command: Vec<OsString>,
    /// `--numeric-ids`: a restore gives entries the owner and group
    /// numbers stored, never mapping them by name.
    pub numeric_ids: bool,
    /// `--every DURATION`: the one-shot command runs again at this period
    /// until a signal.
    pub every: Option<std::time::Duration>,
    /// `--bwlimit RATE`: file bodies sent and received at most this many
    /// bytes a second; `None`: unlimited.
    pub bwlimit: Option<u64>,
    /// `-x PATTERN` and the patterns of `--exclude-from FILE`, checked:
    /// every walk leaves out what they match (a command adds its own).
    pub excludes: Vec<Vec<u8>>,
}

/// Why [`run`] could not: a one-shot command that does not parse. The
/// binary prints it with its usage line (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

/// The key of the secret in the first line of `file`, which group and
/// others must not be able to read or write.
pub fn read_key(file: &Path) -> Result<Key, String> {
    let text = crate::io::read_private_file(file).map_err(|e| format!("secret file {e}"))?;
    let secret = crate::auth::client_secret(&text)
        .ok_or_else(|| format!("secret file {}: the first line is empty", file.display()))?;
    Ok(Key::from_secret(secret))
}

/// The host name: the client's name unless `-n` says otherwise.
pub fn host_name() -> Result<String, String> {
    let h = nix::unistd::gethostname().map_err(|e| format!("cannot read the host name: {e}"))?;
    h.into_string()
        .map_err(|_| "the host name is not valid UTF-8: use -n NAME".to_string())
}

/// Runs the client: connects first (a wrong host or port fails at once,
/// with status 2), then the one-shot command or the prompt's commands.
/// Returns the exit status ([`crate::exit`]).
pub fn run(config: Config) -> Result<i32, UsageError> {
    let mut lp = match EventLoop::new() {
        Ok(lp) => lp,
        Err(e) => {
            eprintln!("{PROG}: {e}");
            return Ok(exit::USAGE);
        }
    };
    lp.set_bwlimit(config.bwlimit);
    let mut client = Client {
        progress: nix::unistd::isatty(2).unwrap_or(false),
        config,
        lp,
        status: exit::OK,
        ending: false,
        busy: false,
    };
    let cmd = if client.config.command.is_empty() {
        if client.config.every.is_some() {
            return Err(UsageError(
                "--every needs a command to repeat (HOST [PORT] COMMAND...)".into(),
            ));
        }
        None
    } else {
        let cmd = ui::parse_args(&client.config.command, &walk::exists).map_err(UsageError)?;
        // A TIME that cannot be read is a usage error, before anything is
        // asked of the server.
        if let Some(text) = time_arg(&cmd) {
            time_of(text).map_err(UsageError)?;
        }
        if client.config.every.is_some() && cmd == Command::Agent {
            return Err(UsageError(
                "--every repeats a command; agent runs the plan the server holds (its schedule is the plan's)"
                    .into(),
            ));
        }
        if client.config.every.is_some() && matches!(cmd, Command::Watch { .. }) {
            return Err(UsageError(
                "--every repeats a command; watch runs until stopped (its rescans are --rescan)"
                    .into(),
            ));
        }
        Some(cmd)
    };
    // Connect first: a wrong host or port fails at once. A long-running
    // client (watch, --every) only fails for what waiting will not mend.
    let long_running = client.config.every.is_some()
        || matches!(cmd, Some(Command::Watch { .. } | Command::Agent));
    if let Err(e) = client.lp.link(&client.config.remote) {
        eprintln!("{PROG}: {e}");
        if !long_running || watch::is_fatal(&e) {
            return Ok(exit::USAGE);
        }
    }
    match cmd {
        None => Ok(client.prompt()),
        Some(cmd) if client.config.every.is_some() => Ok(client.every(cmd)),
        Some(Command::Agent) => Ok(client.agent()),
        Some(cmd) => Ok(match client.command(cmd) {
            Ok(()) => client.status,
            Err(e) => {
                eprintln!("{PROG}: {e}");
                e.exit_status()
            }
        }),
    }
}

/// The TIME of a command's `--at`, as typed.
fn time_arg(cmd: &Command) -> Option<&str> {
    match cmd {
        Command::Ls { at, .. } | Command::Restore { at, .. } => at.as_deref(),
        _ => None,
    }
}

/// The time TIME names ([`crate::client::when::parse_time`] with this
/// machine's clock and local zone), or when.rs's message.
fn time_of(text: &str) -> Result<Time, String> {
    let now = crate::io::clock::now_secs();
    crate::client::when::parse_time(text, now, &crate::io::clock::local_secs)
        .map(|secs| Time { secs, nanos: 0 })
        .map_err(|e| e.to_string())
}

/// The client's state across commands.
struct Client {
    config: Config,
    lp: EventLoop,
    /// stderr is a terminal: draw a progress line.
    progress: bool,
    /// Worst outcome so far.
    status: i32,
    /// SIGTERM stopped a watch: the client ends.
    ending: bool,
    /// A long-running loop (`--every`) runs the commands: between them
    /// SIGINT and SIGTERM stop it cleanly rather than kill the process.
    busy: bool,
}

impl Client {
    /// Reads and runs commands until end of input, `quit`, an interrupt,
    /// or a connection that cannot be made again.
    fn prompt(&mut self) -> i32 {
        let interactive = nix::unistd::isatty(0).unwrap_or(false);
        loop {
            if interactive {
                print!("rsb> ");
                let _ = std::io::stdout().flush();
            }
            let mut line = match self.lp.read_line() {
                Ok(line) if line.is_empty() => break,
                Ok(line) => line,
                Err(e) => {
                    eprintln!("{PROG}: stdin: {e}");
                    self.status = exit::worse(self.status, exit::USAGE);
                    break;
                }
            };
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if interactive {
                let (typed, junk) = crate::client::input::strip_terminal_codes(&line);
                if junk && !typed.trim_ascii().is_empty() {
                    eprintln!("{PROG}: line ignored: it holds terminal escape sequences or control characters (arrow keys do not edit here)");
                }
                if junk {
                    continue;
                }
            }
            let cmd = match ui::parse_line(&line, &walk::exists) {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    eprintln!("{PROG}: {e}");
                    self.status = exit::worse(self.status, exit::PARTIAL);
                    continue;
                }
            };
            if cmd == Command::Quit {
                break;
            }
            let r = self.command(cmd);
            if self.ending {
                break;
            }
            match r {
                Ok(()) => {}
                // Ctrl-C at a terminal abandons the command (its connection
                // was dropped, so the server keeps nothing uncommitted) and
                // the prompt goes on; a script's session ends.
                Err(e @ NetError::Interrupted) if interactive && self.lp.clear_interrupted() => {
                    eprintln!("{PROG}: {e}");
                    self.lp.disconnect();
                    self.status = exit::worse(self.status, exit::PARTIAL);
                }
                Err(e @ NetError::Interrupted) => {
                    eprintln!("{PROG}: {e}");
                    return e.exit_status();
                }
                Err(e) => {
                    eprintln!("{PROG}: {e}");
                    self.status = e.exit_status();
                    // Try to go on: the next command reconnects.
                    if self.lp.link(&self.config.remote).is_err() {
                        break;
                    }
                }
            }
        }
        if interactive {
            println!();
        }
        self.status
    }

    /// Runs `cmd` at the period of `--every` until SIGINT or SIGTERM (then
    /// status 0): each run starts a period after the start of the one
    /// before (at once after a run that took longer, or a suspend: one run,
    /// not one per missed period); a run that lost its server is tried
    /// again after a backoff; a fatal refusal ends the client (status 2).
    fn every(&mut self, cmd: Command) -> i32 {
        let Some(period) = self.config.every else {
            return exit::USAGE;
        };
        self.busy = true;
        let mut every = crate::client::schedule::Every::new(period);
        let mut backoff = crate::client::schedule::Backoff::new();
        let mut retrying = false;
        loop {
            self.lp.set_idle(false);
            let now = crate::io::clock::boottime();
            let due = every.due_at(now);
            if retrying || due <= now {
                if !retrying {
                    every.started(now);
                }
                match self.command(cmd.clone()) {
                    Ok(()) => {
                        retrying = false;
                        backoff.succeeded();
                    }
                    Err(NetError::Interrupted) => break,
                    Err(e) if watch::is_fatal(&e) => {
                        eprintln!("{PROG}: {e}");
                        return exit::USAGE;
                    }
                    Err(e) => {
                        let wait = backoff.failed(watch::random());
                        eprintln!("{PROG}: {e}; trying again in {:.1} s", wait.as_secs_f64());
                        retrying = true;
                        self.lp.set_idle(false);
                        if self.lp.wait_until(Some(Instant::now() + wait)).is_err() {
                            break;
                        }
                    }
                }
                continue;
            }
            // At most a minute at a time: the loop's timers do not count a
            // suspend, the schedule's clock does.
            let wait = (due - now).min(Duration::from_secs(60));
            if self.lp.wait_until(Some(Instant::now() + wait)).is_err() {
                break;
            }
        }
        self.lp.take_interrupt();
        self.busy = false;
        self.lp.set_idle(true);
        exit::OK
    }

    /// Runs `agent` until SIGINT or SIGTERM (status 0) or a fatal refusal
    /// (status 2).
    fn agent(&mut self) -> i32 {
        self.busy = true;
        self.lp.set_idle(false);
        let opts = agent::AgentOptions {
            quiet: self.config.quiet,
            one_file_system: self.config.one_file_system,
            excludes: self.config.excludes.clone(),
            bwlimit: self.config.bwlimit,
        };
        let status = agent::run(&mut self.lp, &self.config.remote, &opts);
        self.busy = false;
        self.lp.set_idle(true);
        status
    }

    /// Runs `watch` until SIGINT or SIGTERM. A usage problem (a path that
    /// is not a directory) is an error line and status 2; a fatal refusal
    /// is the command's error.
    fn watch(
        &mut self,
        paths: Vec<OsString>,
        delay: Duration,
        rescan: Duration,
        excludes: Vec<Vec<u8>>,
    ) -> Result<(), NetError> {
        let paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
        let patterns = match self.patterns(&excludes) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{PROG}: {e}");
                self.status = exit::worse(self.status, exit::USAGE);
                return Ok(());
            }
        };
        let opts = watch::WatchOptions {
            delay,
            rescan,
            walk: walk::WalkOptions {
                one_file_system: self.config.one_file_system,
                patterns,
                ..Default::default()
            },
            quiet: self.config.quiet,
        };
        let r = watch::watch(&mut self.lp, &self.config.remote, &paths, &opts);
        // A signal ended it: that is how a watch ends, status 0. SIGTERM
        // ends the client too, and so does SIGINT unless a person at a
        // terminal gets the prompt back.
        if let Some(terminated) = self.lp.take_interrupt() {
            self.ending |= terminated || !nix::unistd::isatty(0).unwrap_or(false);
        }
        match r {
            // Files that failed were named as they failed (and tried
            // again); a watch that was stopped ends with status 0, so that
            // a service manager sees a clean stop.
            Ok((_, stopped)) => {
                self.ending |= stopped == watch::Stopped::Quit;
                Ok(())
            }
            Err(watch::WatchError::Usage(m)) => {
                eprintln!("{PROG}: {m}");
                self.status = exit::worse(self.status, exit::USAGE);
                Ok(())
            }
            Err(watch::WatchError::Net(e)) => Err(e),
        }
    }

    /// Runs one command with SIGINT/SIGTERM turned into a clean stop. A
    /// signal that arrived during it makes it [`NetError::Interrupted`],
    /// whatever else happened.
    fn command(&mut self, cmd: Command) -> Result<(), NetError> {
        self.lp.set_idle(false);
        let r = self.command_inner(cmd);
        self.lp.set_idle(!self.busy);
        if self.lp.interrupted() {
            return Err(NetError::Interrupted);
        }
        r
    }

    /// The client's exclude patterns and a command's `more`, compiled;
    /// `None` for none. Both were checked when parsed.
    fn patterns(
        &self,
        more: &[Vec<u8>],
    ) -> Result<Option<Arc<Excludes>>, crate::client::exclude::PatternError> {
        let all = self.config.excludes.iter().chain(more);
        let ex = Excludes::new(all)?;
        Ok((!ex.is_empty()).then(|| Arc::new(ex)))
    }

    /// Runs one command. `Err` only when the connection failed.
    fn command_inner(&mut self, cmd: Command) -> Result<(), NetError> {
        let mut rep = Reporter::new(self.config.quiet, self.progress);
        self.lp.take_moved();
        let at = match time_arg(&cmd).map(time_of) {
            None => None,
            Some(Ok(t)) => Some(t),
            // At the prompt an error line, and the prompt goes on.
            Some(Err(e)) => {
                eprintln!("{PROG}: {e}");
                self.status = exit::worse(self.status, exit::PARTIAL);
                return Ok(());
            }
        };
        let remote = &self.config.remote;
        let res = match cmd {
            Command::Help => {
                println!("{}", ui::HELP);
                return Ok(());
            }
            Command::Quit => return Ok(()),
            Command::Agent => {
                // At the prompt: it would never give the prompt back.
                eprintln!("{PROG}: agent runs as a command of its own: rsb-client [-n NAME] HOST [PORT] agent");
                self.status = exit::worse(self.status, exit::PARTIAL);
                return Ok(());
            }
            Command::Watch {
                paths,
                delay,
                rescan,
                excludes,
            } => return self.watch(paths, delay, rescan, excludes),
            Command::Backup { paths, excludes } => {
                let paths: Vec<walk::Root> = paths.into_iter().map(walk::Root::tree).collect();
                let patterns = match self.patterns(&excludes) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("{PROG}: {e}");
                        self.status = exit::worse(self.status, exit::PARTIAL);
                        return Ok(());
                    }
                };
                let opts = walk::WalkOptions {
                    one_file_system: self.config.one_file_system,
                    patterns,
                    ..Default::default()
                };
                let mut link = self.lp.link(remote)?;
                let r = backup::backup(&mut link, &paths, opts, &mut rep);
                // The server notes the names of every manifest per
                // directory until a `Closed` of that directory takes them;
                // the directories above a backed-up path are never closed,
                // so a later backup on this connection would find those
                // names still noted and keep an entry deleted since. One
                // connection per backup.
                self.lp.disconnect();
                rep.counts.moved = self.lp.take_moved();
                rep.finish("backup", "sent");
                r
            }
            Command::Restore {
                path, dest, force, ..
            } => {
                let dest = dest.map_or_else(|| PathBuf::from("."), PathBuf::from);
                let mut link = self.lp.link(remote)?;
                let numeric = self.config.numeric_ids;
                let r = restore::restore(
                    &mut link,
                    &PathBuf::from(path),
                    &dest,
                    restore::Options { force, numeric, at },
                    &mut rep,
                );
                rep.counts.moved = self.lp.take_moved();
                rep.finish("restore", "received");
                r
            }
            Command::Ls { path, .. } => {
                let mut link = self.lp.link(remote)?;
                list::list(&mut link, path.map(PathBuf::from).as_deref(), at, &mut rep)
            }
            Command::Versions(path) => {
                let mut link = self.lp.link(remote)?;
                versions::versions(&mut link, Path::new(&path), &mut rep)
            }
            Command::Verify(path) => {
                let mut link = self.lp.link(remote)?;
                verify::verify(&mut link, path.map(PathBuf::from).as_deref(), &mut rep)
            }
        };
        // A command cut off before its summary still says what it hid.
        rep.flush_repeats();
        if rep.counts.failed > 0 {
            self.status = exit::worse(self.status, exit::PARTIAL);
        }
        if rep.counts.changed + rep.counts.vanished > 0 {
            self.status = exit::worse(self.status, exit::SOURCE_CHANGED);
        }
        if res.is_err() {
            self.lp.disconnect();
        }
        res
    }
}
