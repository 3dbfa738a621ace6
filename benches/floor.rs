//! The raw creation floor of a tree of small files, for `scripts/bench.sh`:
//! how fast this machine's file system takes the same files when nothing
//! else is done (no protocol, no checksum, no metadata beyond the bytes).
//!
//! ```text
//! cargo bench --bench floor -- --src DIR --dst DIR [--threads N] [--sync none|syncfs|fsync]
//! ```
//!
//! It reads every directory and regular file under `--src` into memory
//! first (untimed), then, timed, makes `--dst` (which must not exist), each
//! directory with `mkdir`, and each file with
//! `open(O_CREAT|O_EXCL|O_WRONLY)`, `write`, `close`. With `--threads N` the
//! top-level directories are dealt round-robin to N threads, each of which
//! makes its directories and their files (the root's own files go to the
//! first thread). `--sync syncfs` adds one `syncfs` of the destination's file
//! system once every thread is done (what rsb pays before it reports a
//! backup done); `--sync fsync` fsyncs every file before its close. It
//! prints one line of `key=value`: files, dirs, bytes, threads, sync,
//! `create_us` (until the last close) and `total_us` (until the sync
//! returned; equal to `create_us` with `--sync none`). Exit status 0 done,
//! 1 a step failed, 2 bad usage.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

const PROG: &str = "floor";
const USAGE: &str = "usage: floor --src DIR --dst DIR [--threads N] [--sync none|syncfs|fsync]";

#[derive(Clone, Copy, PartialEq)]
enum Sync {
    None,
    Syncfs,
    Fsync,
}

struct Opts {
    src: PathBuf,
    dst: PathBuf,
    threads: usize,
    sync: Sync,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let (mut src, mut dst, mut threads, mut sync) = (None, None, 1usize, Sync::None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--src" => src = Some(PathBuf::from(val()?)),
            "--dst" => dst = Some(PathBuf::from(val()?)),
            "--threads" => {
                threads = val()?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--threads needs a positive integer")?
            }
            "--sync" => {
                sync = match val()?.as_str() {
                    "none" => Sync::None,
                    "syncfs" => Sync::Syncfs,
                    "fsync" => Sync::Fsync,
                    v => return Err(format!("--sync: none, syncfs or fsync, not '{v}'")),
                }
            }
            // cargo bench passes --bench to a harness = false target.
            "--bench" => {}
            _ => return Err(format!("unknown argument '{a}'")),
        }
    }
    Ok(Opts {
        src: src.ok_or("--src is needed")?,
        dst: dst.ok_or("--dst is needed")?,
        threads,
        sync,
    })
}

/// One directory to make, relative to the destination, and its files.
struct Dir {
    rel: PathBuf,
    files: Vec<(PathBuf, Vec<u8>)>,
}

/// Every directory under `root` (depth first, parents before children) with
/// the contents of its regular files; other kinds of entry are left out.
fn load(root: &Path, rel: &Path, out: &mut Vec<Dir>) -> io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(root.join(rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    let at = out.len();
    out.push(Dir {
        rel: rel.to_path_buf(),
        files: Vec::new(),
    });
    let mut subdirs = Vec::new();
    for name in names {
        let r = rel.join(&name);
        let meta = fs::symlink_metadata(root.join(&r))?;
        if meta.is_dir() {
            subdirs.push(r);
        } else if meta.is_file() {
            out[at].files.push((r.clone(), fs::read(root.join(&r))?));
        }
    }
    for d in subdirs {
        load(root, &d, out)?;
    }
    Ok(())
}

/// Makes `dirs` (already ordered parents first) under `dst` and their files.
fn create(dst: &Path, dirs: &[&Dir], sync: Sync) -> io::Result<()> {
    for d in dirs {
        if !d.rel.as_os_str().is_empty() {
            fs::create_dir(dst.join(&d.rel))?;
        }
        for (rel, data) in &d.files {
            let path = dst.join(rel);
            // O_WRONLY | O_CREAT | O_EXCL (and O_CLOEXEC, as std always adds).
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            f.write_all(data)?;
            if sync == Sync::Fsync {
                f.sync_all()?;
            }
        }
    }
    Ok(())
}

fn run(o: &Opts) -> Result<String, String> {
    let mut dirs = Vec::new();
    load(&o.src, Path::new(""), &mut dirs).map_err(|e| format!("{}: {e}", o.src.display()))?;
    let files: usize = dirs.iter().map(|d| d.files.len()).sum();
    let bytes: usize = dirs
        .iter()
        .flat_map(|d| d.files.iter().map(|f| f.1.len()))
        .sum();
    // Deal the top-level directories (each with everything below it) to
    // the threads; the root's own files go to the first one.
    let mut shares: Vec<Vec<&Dir>> = (0..o.threads).map(|_| Vec::new()).collect();
    let mut top = 0usize;
    for d in &dirs {
        let depth = d.rel.components().count();
        if depth == 1 {
            top += 1;
        }
        let share = if depth == 0 { 0 } else { (top - 1) % o.threads };
        shares[share].push(d);
    }
    let dst = &o.dst;
    let t0 = Instant::now();
    fs::create_dir(dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    let result: io::Result<()> = std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .iter()
            .map(|share| s.spawn(move || create(dst, share, o.sync)))
            .collect();
        let mut first = Ok(());
        for h in handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a thread panicked")));
            if first.is_ok() {
                first = r;
            }
        }
        first
    });
    result.map_err(|e| format!("{}: {e}", dst.display()))?;
    let t1 = Instant::now();
    if o.sync == Sync::Syncfs {
        let d = File::open(dst).map_err(|e| format!("{}: {e}", dst.display()))?;
        nix::unistd::syncfs(d.as_raw_fd()).map_err(|e| format!("syncfs: {e}"))?;
    }
    let t2 = Instant::now();
    let sync = match o.sync {
        Sync::None => "none",
        Sync::Syncfs => "syncfs",
        Sync::Fsync => "fsync",
    };
    Ok(format!(
        "files={files} dirs={} bytes={bytes} threads={} sync={sync} create_us={} total_us={}",
        dirs.len() - 1,
        o.threads,
        (t1 - t0).as_micros(),
        (t2 - t0).as_micros()
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{PROG}: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{PROG}: {e}");
            ExitCode::from(1)
        }
    }
}
