//! Logging set-up shared by both programs: env_logger writing
//! `prog: LEVEL: message` lines to stderr, with `-v`/`-q` choosing the
//! default level and `RUST_LOG` overriding it.

use std::io::Write;

/// Initializes the global logger for program `prog`.
pub fn init(prog: &'static str, default: log::LevelFilter) {
    let mut b = env_logger::Builder::new();
    b.filter_level(default);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.format(move |buf, rec| writeln!(buf, "{prog}: {}: {}", rec.level(), rec.args()));
    b.target(env_logger::Target::Stderr);
    let _ = b.try_init();
}
