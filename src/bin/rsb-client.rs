//! `rsb-client`: options → connection → commands (one-shot or from stdin)
//! → exit status.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use getopts::{Options, ParsingStyle};
use signal_hook::consts::{SIGINT, SIGTERM};

use rsb::auth::Key;
use rsb::client::ui::{self, Command};
use rsb::exit;
use rsb::io::client::conn::{Conn, ConnError};
use rsb::io::client::report::Reporter;
use rsb::io::client::{backup, list, restore, verify};

const PROG: &str = "rsb-client";
const USAGE: &str = "usage: rsb-client [-qvhV] [-n NAME] [-k FILE] HOST [PORT] [COMMAND [ARG...]]";

struct Args {
    host: String,
    port: u16,
    name: String,
    /// The key from `-k FILE` or `RSB_SECRET_FILE`.
    key: Option<Key>,
    quiet: bool,
    command: Vec<OsString>,
}

fn options() -> Options {
    let mut o = Options::new();
    o.parsing_style(ParsingStyle::StopAtFirstFree);
    o.optopt(
        "n",
        "name",
        "namespace on the server (default: the host name)",
        "NAME",
    );
    o.optopt(
        "k",
        "secret-file",
        "first line: this name's secret (default: $RSB_SECRET_FILE)",
        "FILE",
    );
    o.optflag("v", "verbose", "print debug messages");
    o.optflag("q", "quiet", "no progress line and no summary");
    o.optflag("h", "help", "print this help and exit");
    o.optflag("V", "version", "print the version and exit");
    o
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("{PROG}: {msg}");
    eprintln!("{USAGE}");
    ExitCode::from(exit::USAGE as u8)
}

fn default_name() -> Result<String, String> {
    let h = nix::unistd::gethostname().map_err(|e| format!("cannot read the host name: {e}"))?;
    h.into_string()
        .map_err(|_| "the host name is not valid UTF-8: use -n NAME".to_string())
}

fn parse() -> Result<Args, ExitCode> {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    let opts = options();
    let m = opts.parse(&argv).map_err(|e| usage_error(&e.to_string()))?;
    if m.opt_present("h") {
        print!("{}", opts.usage(USAGE));
        println!(
            "\nCommands (at the rsb> prompt, or after HOST [PORT]):\n{}",
            ui::HELP
        );
        return Err(ExitCode::SUCCESS);
    }
    if m.opt_present("V") {
        println!("{PROG} {}", env!("CARGO_PKG_VERSION"));
        return Err(ExitCode::SUCCESS);
    }
    let secret_file = m
        .opt_str("k")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("RSB_SECRET_FILE").map(PathBuf::from));
    let key = match secret_file {
        None => None,
        Some(f) => {
            let text = rsb::io::read_private_file(&f).map_err(|e| {
                eprintln!("{PROG}: secret file {e}");
                ExitCode::from(exit::USAGE as u8)
            })?;
            let Some(secret) = rsb::auth::client_secret(&text) else {
                eprintln!(
                    "{PROG}: secret file {}: the first line is empty",
                    f.display()
                );
                return Err(ExitCode::from(exit::USAGE as u8));
            };
            Some(Key::from_secret(secret))
        }
    };
    let name = match m.opt_str("n") {
        Some(n) => n,
        None => default_name().map_err(|e| usage_error(&e))?,
    };
    if !rsb::proto::is_valid_client_name(&name) {
        eprintln!(
            "{PROG}: invalid name '{}': use 1 to 64 of A-Z a-z 0-9 . _ - (not . or ..)",
            rsb::proto::path::escape(name.as_bytes())
        );
        return Err(ExitCode::from(exit::USAGE as u8));
    }
    // getopts hands free arguments back as Strings; re-read them as bytes
    // from argv so that non-UTF-8 file names survive.
    let free_start = argv.len() - m.free.len();
    let mut free = argv[free_start..].iter().cloned();
    let Some(host) = free.next() else {
        return Err(usage_error("no HOST given"));
    };
    let host = host
        .into_string()
        .map_err(|_| usage_error("HOST is not valid UTF-8"))?;
    let mut rest: Vec<OsString> = free.collect();
    let mut port = 5000;
    if let Some(first) = rest.first() {
        let b = first.as_bytes();
        if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
            port = first
                .to_str()
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| usage_error("PORT must be a number from 1 to 65535"))?;
            rest.remove(0);
        }
    }
    Ok(Args {
        host,
        port,
        name,
        key,
        quiet: m.opt_present("q"),
        command: rest,
    })
}

/// The client's state across commands.
struct Client {
    args: Args,
    conn: Option<Conn>,
    progress: bool,
    /// Worst outcome so far.
    status: i32,
    /// Set by SIGINT/SIGTERM while a command runs.
    interrupted: Arc<AtomicBool>,
    /// Clear while a command runs: then SIGINT/SIGTERM only set
    /// `interrupted`, so the command can remove its temporary files; set
    /// otherwise (at the prompt), when they terminate the client at once.
    idle: Arc<AtomicBool>,
}

impl Client {
    fn connection(&mut self) -> Result<&mut Conn, ConnError> {
        if self.conn.as_ref().is_some_and(|c| c.session.is_closed()) {
            self.conn = None;
        }
        match self.conn {
            Some(ref mut c) => Ok(c),
            None => Ok(self.conn.insert(Conn::open(
                &self.args.host,
                self.args.port,
                &self.args.name,
                self.args.key.as_ref(),
                self.interrupted.clone(),
            )?)),
        }
    }

    /// Runs one command with SIGINT/SIGTERM turned into a clean stop.
    fn run(&mut self, cmd: Command) -> Result<(), ConnError> {
        self.idle.store(false, Ordering::SeqCst);
        let r = self.run_inner(cmd);
        self.idle.store(true, Ordering::SeqCst);
        r
    }

    /// Runs one command. `Err` only when the connection failed.
    fn run_inner(&mut self, cmd: Command) -> Result<(), ConnError> {
        let (quiet, progress) = (self.args.quiet, self.progress);
        let mut rep = Reporter::new(quiet, progress);
        let res = match cmd {
            Command::Help => {
                println!("{}", ui::HELP);
                return Ok(());
            }
            Command::Quit => return Ok(()),
            Command::Backup(paths) => {
                let paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
                let conn = self.connection()?;
                let r = backup::backup(conn, &paths, &mut rep);
                rep.finish("backup", "sent");
                r
            }
            Command::Restore { path, dest } => {
                let dest = dest.map_or_else(|| PathBuf::from("."), PathBuf::from);
                let conn = self.connection()?;
                let r = restore::restore(conn, &PathBuf::from(path), &dest, &mut rep);
                rep.finish("restore", "received");
                r
            }
            Command::Ls(path) => {
                let conn = self.connection()?;
                list::list(conn, path.map(PathBuf::from).as_deref(), &mut rep)
            }
            Command::Verify(path) => {
                let conn = self.connection()?;
                verify::verify(conn, path.map(PathBuf::from).as_deref(), &mut rep)
            }
        };
        if rep.counts.failed > 0 {
            self.status = self.status.max(exit::PARTIAL);
        }
        if res.is_err() {
            self.conn = None;
        }
        res
    }
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let level = if args.quiet {
        log::LevelFilter::Error
    } else if std::env::args().any(|a| a == "-v" || a == "--verbose") {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    };
    rsb::io::log::init(PROG, level);
    let progress = nix::unistd::isatty(2).unwrap_or(false);
    let one_shot = !args.command.is_empty();
    let command = args.command.clone();
    let interrupted = Arc::new(AtomicBool::new(false));
    let idle = Arc::new(AtomicBool::new(true));
    for sig in [SIGINT, SIGTERM] {
        // The default action first (it only acts while idle), then the flag.
        let ok = signal_hook::flag::register_conditional_default(sig, idle.clone())
            .and_then(|_| signal_hook::flag::register(sig, interrupted.clone()));
        if let Err(e) = ok {
            eprintln!("{PROG}: cannot handle signals: {e}");
            return ExitCode::from(exit::USAGE as u8);
        }
    }
    let mut client = Client {
        args,
        conn: None,
        progress,
        status: exit::OK,
        interrupted: interrupted.clone(),
        idle,
    };
    // Connect first: a wrong host or port fails at once, with status 2.
    if let Err(e) = client.connection() {
        eprintln!("{PROG}: {e}");
        return ExitCode::from(exit::USAGE as u8);
    }
    if one_shot {
        let cmd = match ui::parse_args(&command) {
            Ok(c) => c,
            Err(e) => return usage_error(&e),
        };
        let r = client.run(cmd);
        if interrupted.load(Ordering::SeqCst) {
            eprintln!("{PROG}: interrupted");
            return ExitCode::from(exit::INTERRUPTED as u8);
        }
        if let Err(e) = r {
            eprintln!("{PROG}: {e}");
            return ExitCode::from(exit::USAGE as u8);
        }
        return ExitCode::from(client.status as u8);
    }
    let interactive = nix::unistd::isatty(0).unwrap_or(false);
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = Vec::new();
    loop {
        if interactive {
            print!("rsb> ");
            let _ = std::io::stdout().flush();
        }
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("{PROG}: stdin: {e}");
                client.status = client.status.max(exit::USAGE);
                break;
            }
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let cmd = match ui::parse_line(&line) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("{PROG}: {e}");
                client.status = client.status.max(exit::PARTIAL);
                continue;
            }
        };
        if cmd == Command::Quit {
            break;
        }
        let r = client.run(cmd);
        if interrupted.load(Ordering::SeqCst) {
            eprintln!("{PROG}: interrupted");
            return ExitCode::from(exit::INTERRUPTED as u8);
        }
        if let Err(e) = r {
            eprintln!("{PROG}: {e}");
            client.status = exit::USAGE;
            // Try to go on: the next command reconnects.
            if client.connection().is_err() {
                break;
            }
        }
    }
    if interactive {
        println!();
    }
    ExitCode::from(client.status as u8)
}
