//! `rsb-server`: options → validated config → run → exit status.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use getopts::Options;
use log::{error, info, warn};

use rsb::args::{self, WithValue};
use rsb::auth::Secrets;
use rsb::exit;
use rsb::io::server::{Server, ServerConfig, WebConfig};
use rsb::server::session::SessionConfig;

const PROG: &str = "rsb-server";
/// Longest idle timeout accepted (one year); 0 disables it.
const MAX_IDLE_SECS: u64 = 365 * 24 * 3600;
const USAGE: &str =
    "usage: rsb-server [-rqvhV] [-a ADDR] [-p PORT] [-c N] [-t SECS] [-k FILE] [--max-per-address N] [--sync MODE] [--keep SPEC]\n                  [--http [ADDR:]PORT [--admin NAME]... [--tls-cert FILE --tls-key FILE] [--http-host NAME]... [--http-max N]] -d DIR\n       rsb-server -d DIR [--keep SPEC] --prune [--dry-run]";

struct Args {
    config: ServerConfig,
    level: log::LevelFilter,
    /// `--prune` (with `--dry-run`: `Some(true)`): apply retention once and
    /// exit instead of serving.
    prune: Option<bool>,
}

/// The options that take a value, for [`args::scan`].
const WITH_VALUE: [WithValue; 6] = [
    WithValue {
        short: b'a',
        long: "address",
    },
    WithValue {
        short: b'p',
        long: "port",
    },
    WithValue {
        short: b'd',
        long: "dir",
    },
    WithValue {
        short: b'c',
        long: "max-clients",
    },
    WithValue {
        short: b'k',
        long: "secrets",
    },
    WithValue {
        short: b't',
        long: "idle-timeout",
    },
];

fn options() -> Options {
    let mut o = Options::new();
    o.optopt(
        "a",
        "address",
        "listen on ADDR (default: all interfaces)",
        "ADDR",
    );
    o.optopt(
        "p",
        "port",
        "listen on PORT (default 5000; 0 picks a free port)",
        "PORT",
    );
    o.optopt(
        "d",
        "dir",
        "backup root, created if missing (required)",
        "DIR",
    );
    o.optopt(
        "c",
        "max-clients",
        "refuse connections beyond N with \"server busy\" (default 1024)",
        "N",
    );
    o.optopt(
        "",
        "max-per-address",
        "refuse connections from one address beyond N (default: a quarter of -c, at least 16; 0 = no limit)",
        "N",
    );
    o.optopt(
        "k",
        "secrets",
        "name:secret lines; every client must prove it knows its secret",
        "FILE",
    );
    o.optflag(
        "r",
        "read-only",
        "refuse every backup; ls and restore still work",
    );
    o.optopt(
        "t",
        "idle-timeout",
        "close connections idle for SECS seconds (default 300, 0 = never)",
        "SECS",
    );
    o.optopt(
        "",
        "sync",
        "make commits durable by fsync of each file and directory, by syncfs, or auto (default: syncfs where the file system is known to honour it)",
        "fsync|syncfs|auto",
    );
    o.optopt(
        "",
        "keep",
        "which old versions history keeps (default: daily=30,weekly=26,monthly=24,yearly=10,within=7d)",
        "SPEC",
    );
    o.optflag(
        "",
        "prune",
        "apply --keep to the whole root once, print what it removes, and exit",
    );
    o.optflag(
        "",
        "dry-run",
        "with --prune: print what would be removed, remove nothing",
    );
    o.optopt(
        "",
        "http",
        "serve the web interface on PORT (ADDR: --address's, or 127.0.0.1)",
        "[ADDR:]PORT",
    );
    o.optmulti(
        "",
        "admin",
        "with --secrets: NAME sees every namespace on the web and edits plans",
        "NAME",
    );
    o.optopt(
        "",
        "tls-cert",
        "the web interface's TLS certificate chain (PEM)",
        "FILE",
    );
    o.optopt("", "tls-key", "its private key (PEM)", "FILE");
    o.optmulti(
        "",
        "http-host",
        "without --secrets: a host name the web interface answers to besides addresses and localhost",
        "NAME",
    );
    o.optopt(
        "",
        "http-max",
        "web connections open at once at most (default 1024)",
        "N",
    );
    o.optflag("v", "verbose", "log debug messages");
    o.optflag("q", "quiet", "log errors only");
    o.optflag("h", "help", "print this help and exit");
    o.optflag("V", "version", "print the version and exit");
    o
}

enum Parsed {
    Run(Box<Args>),
    Exit(ExitCode),
}

fn usage_error(msg: &str) -> Parsed {
    eprintln!("{PROG}: {msg}");
    eprintln!("{USAGE}");
    Parsed::Exit(ExitCode::from(exit::USAGE as u8))
}

fn parse() -> Parsed {
    // args_os: std::env::args() panics on an argument that is not UTF-8.
    // getopts checks a lossy copy; -d and -k, which are paths, are taken
    // from the bytes as given.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let scanned = args::scan(&argv, &WITH_VALUE, false);
    let path_of = |short: u8| scanned.value(short).map(PathBuf::from);
    let opts = options();
    let m = match opts.parse(args::lossy(&argv)) {
        Ok(m) => m,
        Err(e) => return usage_error(&e.to_string()),
    };
    if m.opt_present("h") {
        print!("{}", opts.usage(USAGE));
        return Parsed::Exit(ExitCode::SUCCESS);
    }
    if m.opt_present("V") {
        println!("{PROG} {}", env!("CARGO_PKG_VERSION"));
        return Parsed::Exit(ExitCode::SUCCESS);
    }
    if !m.free.is_empty() {
        return usage_error(&format!("unexpected argument '{}'", m.free[0]));
    }
    let secrets = match m.opt_present("k").then(|| path_of(b'k')).flatten() {
        None => None,
        Some(f) => match load_secrets(&f) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                eprintln!("{PROG}: --secrets {e}");
                return Parsed::Exit(ExitCode::from(exit::USAGE as u8));
            }
        },
    };
    let Some(dir) = m.opt_present("d").then(|| path_of(b'd')).flatten() else {
        return usage_error("the backup root is required (-d DIR)");
    };
    if dir.as_os_str().is_empty() {
        return usage_error("-d: empty directory name");
    }
    let addr = match m.opt_str("a") {
        None => None,
        Some(a) => match a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => Some(ip),
            Err(_) => return usage_error(&format!("-a: '{a}' is not an IP address")),
        },
    };
    let port = match m.opt_str("p").map(|p| p.parse::<u16>()) {
        None => 5000,
        Some(Ok(p)) => p,
        Some(Err(_)) => return usage_error("-p: the port must be a number from 0 to 65535"),
    };
    let max_clients = match m.opt_str("c").map(|c| c.parse::<usize>()) {
        None => 1024,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return usage_error("-c: the client limit must be a whole number of at least 1"),
    };
    let max_per_address = match m.opt_str("max-per-address").map(|c| c.parse::<usize>()) {
        None => (max_clients / 4).max(16),
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return usage_error("--max-per-address: the limit must be a whole number (0: none)")
        }
    };
    let idle = match m.opt_str("t").map(|t| t.parse::<u64>()) {
        None => Some(Duration::from_secs(300)),
        Some(Ok(0)) => None,
        Some(Ok(n)) if n <= MAX_IDLE_SECS => Some(Duration::from_secs(n)),
        Some(Ok(_)) => {
            return usage_error(&format!(
                "-t: at most {MAX_IDLE_SECS} seconds (one year); 0 means never"
            ))
        }
        Some(Err(_)) => {
            return usage_error("-t: the idle timeout must be a whole number of seconds")
        }
    };
    match m.opt_str("sync").map(|s| rsb::io::store::Sync::parse(&s)) {
        None => {}
        Some(Some(mode)) => rsb::io::store::set_sync(mode),
        Some(None) => return usage_error("--sync: fsync, syncfs or auto"),
    }
    let keep = match m.opt_str("keep") {
        None => rsb::store::retention::default_keep(),
        Some(spec) => match rsb::store::retention::parse_keep(&spec) {
            Ok(k) => k,
            Err(e) => return usage_error(&format!("--keep: {e}")),
        },
    };
    let prune = match (m.opt_present("prune"), m.opt_present("dry-run")) {
        (true, dry) => Some(dry),
        (false, true) => return usage_error("--dry-run goes with --prune"),
        (false, false) => None,
    };
    let web = match parse_web(&m, secrets.is_some()) {
        Ok(w) => w,
        Err(e) => return usage_error(&e),
    };
    let level = if m.opt_present("q") {
        log::LevelFilter::Error
    } else if m.opt_present("v") {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    Parsed::Run(Box::new(Args {
        level,
        prune,
        config: ServerConfig {
            root: dir,
            addr,
            port,
            max_clients,
            max_per_address,
            session: SessionConfig {
                read_only: m.opt_present("r"),
                idle_timeout: idle,
                secrets,
                ..SessionConfig::default()
            },
            keep,
            web,
        },
    }))
}

/// `--http [ADDR:]PORT` and the options that only go with it.
fn parse_web(m: &getopts::Matches, secrets: bool) -> Result<Option<WebConfig>, String> {
    let admins = m.opt_strs("admin");
    for a in &admins {
        if !rsb::proto::is_valid_client_name(a) {
            return Err(format!(
                "--admin: '{}' is not a client name",
                a.escape_debug()
            ));
        }
    }
    let hosts = m.opt_strs("http-host");
    for h in &hosts {
        let ok = !h.is_empty()
            && h.len() <= 253
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !ok {
            return Err(format!(
                "--http-host: '{}' is not a host name",
                h.escape_debug()
            ));
        }
    }
    let tls_files = match (m.opt_str("tls-cert"), m.opt_str("tls-key")) {
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    let max = match m.opt_str("http-max").map(|n| n.parse::<usize>()) {
        None => 1024,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return Err("--http-max: a whole number of at least 1".into()),
    };
    let Some(spec) = m.opt_str("http") else {
        if !admins.is_empty()
            || tls_files.is_some()
            || m.opt_present("http-max")
            || !hosts.is_empty()
        {
            return Err(
                "--admin, --tls-cert, --tls-key, --http-host and --http-max go with --http".into(),
            );
        }
        return Ok(None);
    };
    if !admins.is_empty() && !secrets {
        return Err("--admin needs --secrets (names log in with their secret)".into());
    }
    let (addr, port) = match spec.rsplit_once(':') {
        None => (None, spec.as_str()),
        Some((a, p)) => {
            let a = a.trim_start_matches('[').trim_end_matches(']');
            match a.parse::<IpAddr>() {
                Ok(ip) => (Some(ip), p),
                Err(_) => return Err(format!("--http: '{a}' is not an IP address")),
            }
        }
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("--http: '{port}' is not a port (0 to 65535)"))?;
    Ok(Some(WebConfig {
        addr,
        port,
        admins,
        hosts,
        tls_files,
        max_connections: max,
    }))
}

/// Reads and parses `--secrets FILE`.
fn load_secrets(path: &Path) -> Result<Secrets, String> {
    let text = rsb::io::read_private_file(path)?;
    let decoy = rsb::io::random_bytes().map_err(|e| format!("getrandom: {e}"))?;
    let secrets = Secrets::parse(&text, decoy).map_err(|e| format!("{}: {e}", path.display()))?;
    if secrets.is_empty() {
        return Err(format!("{}: no name:secret lines", path.display()));
    }
    Ok(secrets)
}

fn main() -> ExitCode {
    let args = match parse() {
        Parsed::Run(a) => a,
        Parsed::Exit(code) => return code,
    };
    rsb::io::log::init(PROG, args.level);
    if let Some(dry_run) = args.prune {
        return prune(&args.config, dry_run);
    }
    let server = match Server::start(args.config) {
        Ok(s) => s,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(exit::PARTIAL as u8);
        }
    };
    announce(&server, args.level);
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::from(exit::PARTIAL as u8)
        }
    }
}

/// `--prune [--dry-run]`: retention over the whole root, once; one line
/// per version removed (or that would be) on stdout, then the totals.
fn prune(config: &ServerConfig, dry_run: bool) -> ExitCode {
    if !config.root.is_dir() {
        eprintln!(
            "{PROG}: --prune: {}: no such directory",
            config.root.display()
        );
        return ExitCode::from(exit::USAGE as u8);
    }
    let store = match rsb::io::store::Store::open(&config.root) {
        Ok(s) => s,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(exit::PARTIAL as u8);
        }
    };
    let verb = if dry_run { "would remove" } else { "removed" };
    let now = rsb::io::clock::now_secs();
    let local = rsb::io::clock::local_civil;
    let res = store.prune_all(
        &config.keep,
        now,
        &local,
        dry_run,
        &|| false,
        &mut |ns, r| {
            println!(
                "{verb} {ns}:{} (current until {}), {} entries, {} bytes",
                r.path,
                String::from_utf8_lossy(&r.batch),
                r.entries,
                r.bytes
            );
        },
    );
    match res {
        Ok((p, namespaces)) => {
            println!(
                "prune: {verb} {} versions ({} entries, {} bytes) from {namespaces} namespaces; {} versions kept (--keep {})",
                p.versions, p.entries, p.bytes, p.kept, config.keep
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e}");
            ExitCode::from(exit::PARTIAL as u8)
        }
    }
}

/// Says where the server listens and how it is set up.
fn announce(server: &Server, level: log::LevelFilter) {
    let config = server.config();
    let local = server
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    if let Some((addr, tls)) = server.web_addr() {
        let scheme = if tls { "https" } else { "http" };
        // Printed even with -q, before the line below, which tests wait
        // for: the web port is known once the server says it listens.
        if level < log::LevelFilter::Info {
            eprintln!("{PROG}: web interface on {scheme}://{addr}/");
        } else {
            info!("web interface on {scheme}://{addr}/");
        }
        if let Some(f) = server.web_fingerprint() {
            info!("TLS certificate SHA-256 fingerprint {f}");
        }
        if config.session.secrets.is_none() {
            let plans = if addr.ip().is_loopback() {
                "plans can be changed by anyone on this machine"
            } else {
                "nobody can change plans (that needs a loopback address, or --secrets and --admin)"
            };
            warn!(
                "web interface without --secrets: anyone who can reach {addr} can browse and download every namespace; {plans}"
            );
        }
    }
    // Printed even with -q: scripts and tests read the real port from it.
    if level < log::LevelFilter::Info {
        eprintln!(
            "{PROG}: listening on {local}, root {}",
            config.root.display()
        );
    } else {
        info!("listening on {local}, root {}", config.root.display());
    }
    match &config.session.secrets {
        Some(s) => info!(
            "authentication required for {} name{}",
            s.len(),
            if s.len() == 1 { "" } else { "s" }
        ),
        None => warn!(
            "no authentication (--secrets): anyone who can reach this port can read and write {}",
            config.root.display()
        ),
    }
    if config.session.read_only {
        info!("read-only: backups will be refused");
    } else {
        info!(
            "history: replaced and deleted entries kept (--keep {})",
            config.keep
        );
    }
}
