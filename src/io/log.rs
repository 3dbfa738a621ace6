//! Logging set-up shared by both programs: env_logger writing
//! `prog: LEVEL: message` lines to stderr, with `-v`/`-q` choosing the
//! default level and `RUST_LOG` overriding it.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;

/// Warnings and errors kept for the web dashboard's "recent errors".
const RECENT: usize = 20;

/// The last [`RECENT`] warnings and errors, newest last: (epoch seconds,
/// line).
static RECENT_LINES: Mutex<VecDeque<(i64, String)>> = Mutex::new(VecDeque::new());

/// The warnings and errors logged most recently, newest first.
pub fn recent() -> Vec<(i64, String)> {
    RECENT_LINES
        .lock()
        .map(|q| q.iter().rev().cloned().collect())
        .unwrap_or_default()
}

fn remember(level: log::Level, text: String) {
    if level > log::Level::Warn {
        return;
    }
    if let Ok(mut q) = RECENT_LINES.lock() {
        if q.len() >= RECENT {
            q.pop_front();
        }
        q.push_back((super::clock::now_secs(), format!("{level}: {text}")));
    }
}

/// Initializes the global logger for program `prog`.
pub fn init(prog: &'static str, default: log::LevelFilter) {
    let mut b = env_logger::Builder::new();
    b.filter_level(default);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.format(move |buf, rec| {
        if rec.level() <= log::Level::Warn {
            remember(rec.level(), rec.args().to_string());
        }
        writeln!(buf, "{prog}: {}: {}", rec.level(), rec.args())
    });
    b.target(env_logger::Target::Stderr);
    let _ = b.try_init();
}
