//! The client's walk alone, with and without its helper thread
//! (`src/io/client/walk/ahead.rs`): what the walk of an unchanged backup
//! costs the client when the server is on another machine and the
//! client's cores are its own.
//!
//! ```text
//! cargo bench --bench walkbench -- DIR [ROUNDS]
//! ```
//!
//! Walks DIR (every entry `lstat`ed and its extended attributes read, as
//! a backup's walk does; nothing sent) ROUNDS times each way (default 11),
//! alternating, the first round of each untimed, and prints one line of
//! `key=value`: the entries walked, the median time of each way in
//! microseconds, and how many names the helper looked at in its last
//! round. Exit status 0 done, 1 the walk failed, 2 bad usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use rsb::io::client::walk::{walk_with, WalkItem, WalkOptions};

fn walk_once(dir: &Path, alone: bool) -> Result<(u64, u128), String> {
    let opts = WalkOptions {
        alone,
        ..WalkOptions::default()
    };
    let t = Instant::now();
    let mut entries = 0;
    for item in walk_with(dir, opts) {
        match item {
            WalkItem::Entry(_) => entries += 1,
            WalkItem::Error { path, error } => {
                return Err(format!("{}: {error}", path.display()));
            }
            _ => {}
        }
    }
    Ok((entries, t.elapsed().as_micros()))
}

fn median(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (Some(dir), rounds) = (args.first(), args.get(1)) else {
        eprintln!("usage: walkbench DIR [ROUNDS]");
        return ExitCode::from(2);
    };
    let Ok(rounds) = rounds.map_or(Ok(11), |r| r.parse::<usize>()) else {
        eprintln!("walkbench: ROUNDS: not a number");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    let (mut alone, mut helped) = (Vec::new(), Vec::new());
    let mut entries = 0;
    for round in 0..=rounds {
        for way in [true, false] {
            match walk_once(&dir, way) {
                Ok((n, us)) if round > 0 => {
                    entries = n;
                    if way {
                        alone.push(us)
                    } else {
                        helped.push(us)
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("walkbench: {e}");
                    return ExitCode::from(1);
                }
            }
        }
    }
    let (a, h) = (median(alone), median(helped));
    println!(
        "entries={entries} rounds={rounds} alone_us={a} helped_us={h} speedup={:.2}",
        a as f64 / h.max(1) as f64
    );
    ExitCode::SUCCESS
}
