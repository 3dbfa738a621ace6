//! `rsb-client`: options -> validated [`Config`] -> [`run`] -> exit status.
//! Everything after the options (the connection, the prompt, the commands)
//! is in [`rsb::io::client`].

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

use getopts::{Options, ParsingStyle};

use rsb::args::{self, WithValue};
use rsb::client::ui;
use rsb::exit;
use rsb::io::client::{self, conn::Remote, Config, PROG};

const USAGE: &str =
    "usage: rsb-client [-oqvhV] [-n NAME] [-k FILE] [-x PATTERN]... [--exclude-from FILE]... [--numeric-ids] [--every DURATION] [--bwlimit RATE] HOST[:PORT] [PORT] [COMMAND [ARG...]]";

/// The options that take a value, for [`args::scan`].
const WITH_VALUE: [WithValue; 6] = [
    WithValue {
        short: b'n',
        long: "name",
    },
    WithValue {
        short: b'k',
        long: "secret-file",
    },
    WithValue {
        short: args::LONG_ONLY,
        long: "every",
    },
    WithValue {
        short: args::LONG_ONLY,
        long: "bwlimit",
    },
    WithValue {
        short: b'x',
        long: "exclude",
    },
    WithValue {
        short: args::LONG_ONLY,
        long: "exclude-from",
    },
];

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
    o.optmulti(
        "x",
        "exclude",
        "leave out what PATTERN matches (repeatable; see rsb(1))",
        "PATTERN",
    );
    o.optmulti(
        "",
        "exclude-from",
        "the patterns of FILE, one a line (# comments)",
        "FILE",
    );
    o.optflag(
        "",
        "numeric-ids",
        "restore owners and groups by number, not by name",
    );
    o.optflag(
        "o",
        "one-file-system",
        "backup: do not descend into other file systems",
    );
    o.optopt(
        "",
        "every",
        "run the command again at this period (30s, 15m, 2h, 1d) until stopped",
        "DURATION",
    );
    o.optopt(
        "",
        "bwlimit",
        "file bodies sent and received at most RATE bytes a second (K, M, G: 1024, 1024^2, 1024^3)",
        "RATE",
    );
    o.optflag("v", "verbose", "print debug messages");
    o.optflag("q", "quiet", "no progress line and no summary");
    o.optflag("h", "help", "print this help and exit");
    o.optflag("V", "version", "print the version and exit");
    o
}

/// A usage error: the message, the usage line, status 2.
fn usage_error(msg: &str) -> ExitCode {
    eprintln!("{PROG}: {msg}");
    eprintln!("{USAGE}");
    ExitCode::from(exit::USAGE as u8)
}

/// Any other error before running: the message, status 2.
fn fail(msg: &str) -> ExitCode {
    eprintln!("{PROG}: {msg}");
    ExitCode::from(exit::USAGE as u8)
}

fn parse() -> Result<Config, ExitCode> {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    // getopts refuses any argument that is not UTF-8, so it sees only the
    // options (HOST and the command's paths stay bytes), and the secret
    // file's name is taken as given (regression: a one-shot command with a
    // non-UTF-8 path was "Unrecognized option", exit 2).
    let scanned = args::scan(&argv, &WITH_VALUE, true);
    let (option_args, free) = argv.split_at(scanned.options_end.min(argv.len()));
    let opts = options();
    let m = opts
        .parse(args::lossy(option_args))
        .map_err(|e| usage_error(&e.to_string()))?;
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
    let bwlimit = match m.opt_str("bwlimit") {
        Some(text) => Some(
            rsb::client::rate::parse_rate(&text)
                .map_err(|e| usage_error(&format!("--bwlimit: {e}")))?,
        ),
        None => None,
    };
    let file = m
        .opt_present("k")
        .then(|| scanned.value(b'k').map(PathBuf::from))
        .flatten();
    let key = match file.or_else(|| std::env::var_os("RSB_SECRET_FILE").map(PathBuf::from)) {
        Some(f) => Some(client::read_key(&f).map_err(|e| fail(&e))?),
        None => None,
    };
    let name = match m.opt_str("n") {
        Some(n) => n,
        None => client::host_name().map_err(|e| usage_error(&e))?,
    };
    if !rsb::proto::is_valid_client_name(&name) {
        let shown = rsb::proto::path::escape(name.as_bytes());
        return Err(fail(&format!(
            "invalid name '{shown}': use 1 to 64 of A-Z a-z 0-9 . _ - (not . or ..)"
        )));
    }
    let every = match m.opt_str("every") {
        Some(text) => Some(
            rsb::client::schedule::parse_at_least(
                "--every",
                &text,
                rsb::client::schedule::MIN_PERIOD,
            )
            .map_err(|e| usage_error(&e))?,
        ),
        None => None,
    };
    let excludes = excludes(&scanned)?;
    let mut free = free.iter().cloned();
    let host = free.next().ok_or_else(|| usage_error("no HOST given"))?;
    let host = host
        .into_string()
        .map_err(|_| usage_error("HOST is not valid UTF-8"))?;
    let mut command: Vec<OsString> = free.collect();
    let mut separate = None;
    if let Some(first) = command.first() {
        let b = first.as_bytes();
        if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
            separate = Some(first.to_string_lossy().into_owned());
            command.remove(0);
        }
    }
    // HOST, HOST PORT, HOST:PORT, [V6ADDR]:PORT, [V6ADDR] or a bare IPv6.
    let (host, port) =
        rsb::client::remote::parse(&host, separate.as_deref()).map_err(|e| usage_error(&e))?;
    let remote = Remote {
        host,
        port,
        name,
        key,
    };
    Ok(Config {
        remote,
        quiet: m.opt_present("q"),
        verbose: m.opt_present("v"),
        one_file_system: m.opt_present("o"),
        command,
        numeric_ids: m.opt_present("numeric-ids"),
        every,
        bwlimit,
        excludes,
    })
}

/// The patterns of `-x` and of each `--exclude-from FILE` (taken as
/// bytes from the scan: a pattern need not be UTF-8), checked. A file
/// that cannot be read or a bad pattern: status 2.
fn excludes(scanned: &args::Scanned) -> Result<Vec<Vec<u8>>, ExitCode> {
    let mut patterns = Vec::new();
    for (long, value) in &scanned.long_values {
        match *long {
            "exclude" => patterns.push(value.as_bytes().to_vec()),
            "exclude-from" => {
                let text = std::fs::read(value).map_err(|e| {
                    let file = PathBuf::from(value);
                    fail(&format!(
                        "--exclude-from {}: {}",
                        file.display(),
                        rsb::io::describe(&e)
                    ))
                })?;
                patterns.extend(rsb::client::exclude::parse_list(&text));
            }
            _ => {}
        }
    }
    rsb::client::exclude::Excludes::new(&patterns).map_err(|e| usage_error(&e.to_string()))?;
    Ok(patterns)
}

fn main() -> ExitCode {
    let config = match parse() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let level = if config.quiet {
        log::LevelFilter::Error
    } else if config.verbose {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Warn
    };
    rsb::io::log::init(PROG, level);
    match client::run(config) {
        Ok(status) => ExitCode::from(status as u8),
        Err(e) => usage_error(&e.0),
    }
}
