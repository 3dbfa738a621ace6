//! Watch mode's measuring tools, for `scripts/watch-bench.sh` (which starts
//! the server and the watching client; this program only writes files,
//! watches the store and reads `/proc`). Three subcommands:
//!
//! ```text
//! cargo bench --bench watchbench -- latency --tree DIR --store DIR
//!     [--rate 100] [--count 3000] [--dirs 10] [--wait 30]
//! cargo bench --bench watchbench -- tree DIR --dirs N
//! cargo bench --bench watchbench -- proc PID
//! ```
//!
//! - `latency`: writes `--count` distinct files of 1-16 KiB of pseudo-random
//!   bytes at `--rate` files a second into `DIR/dNN` (the `--dirs`
//!   directories must exist in the watched tree and, already backed up, in
//!   the store), timestamping each close, while it watches the store's
//!   copies of those directories with inotify and timestamps each file's
//!   arrival under its final name (`IN_MOVED_TO` or `IN_CREATE` of a name
//!   without the leading `.` of the server's hidden names). Both stamps are
//!   `Instant`s (CLOCK_MONOTONIC) of this one process. A directory created
//!   in the store is watched too and its files counted at once. Once every
//!   file arrived, or `--wait` seconds after the last close, it compares
//!   every stored file with what was written and prints `key=value` lines:
//!   the latency percentiles in milliseconds, how many arrived, how many
//!   differ. Exit status 1 when a file did not arrive or differs.
//! - `tree`: makes exactly N directories under DIR (groups of 1,000:
//!   `gNNN/dNNNN`), for the idle and memory cases.
//! - `proc`: one line of a process's figures from `/proc`: CPU time
//!   (utime+stime of the whole process in ms, and the scheduler's run time
//!   of its live threads in ns), context switches summed over its threads,
//!   VmRSS, RssAnon, Pss, threads, and the watches of its inotify
//!   descriptors (lines `inotify wd:` of their fdinfo).
//!
//! Every wait is bounded: the writer by its count, the arrival loop by
//! `--wait` (at most an hour). Without arguments (as a bare `cargo bench`
//! runs every bench) it prints its usage and exits 0. It must not start or
//! stop servers or clients: that is the script's.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

const PROG: &str = "watchbench";
const USAGE: &str = "usage: cargo bench --bench watchbench -- latency --tree DIR --store DIR \
[--rate N] [--count N] [--dirs N] [--wait SECS]
       cargo bench --bench watchbench -- tree DIR --dirs N
       cargo bench --bench watchbench -- proc PID";

/// Exit statuses.
const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// Bounds on the arguments, so a typo cannot run for ever or fill a disk.
const MAX_RATE: u64 = 10_000;
const MAX_COUNT: u64 = 1_000_000;
const MAX_DIRS: u64 = 100;
const MAX_WAIT_SECS: u64 = 3600;
const MAX_TREE_DIRS: u64 = 1_000_000;
/// Directories per group of `tree`.
const GROUP: u64 = 1000;
/// Smallest and largest file written by `latency`.
const MIN_SIZE: usize = 1024;
const MAX_SIZE: usize = 16 * 1024;

/// The arguments of `latency`.
struct Latency {
    tree: PathBuf,
    store: PathBuf,
    rate: u64,
    count: u64,
    dirs: u64,
    wait: Duration,
}

/// What the command line asks for.
enum Cmd {
    Latency(Latency),
    Tree { dir: PathBuf, dirs: u64 },
    Proc(u32),
    Usage,
}

/// Splits `--flag value` / `--flag=value` pairs; the rest are positional.
fn flags(args: &[String]) -> Result<(HashMap<String, String>, Vec<String>), String> {
    let mut named = HashMap::new();
    let mut plain = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(f) = a.strip_prefix("--") {
            let (k, v) = match f.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (
                    f.to_string(),
                    it.next()
                        .cloned()
                        .ok_or_else(|| format!("--{f} needs a value"))?,
                ),
            };
            named.insert(k, v);
        } else {
            plain.push(a.clone());
        }
    }
    Ok((named, plain))
}

/// A number flag within `1..=max`, or `default`.
fn number(
    named: &mut HashMap<String, String>,
    key: &str,
    default: u64,
    max: u64,
) -> Result<u64, String> {
    match named.remove(key) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("--{key}: '{v}' is not a number from 1 to {max}")),
        },
    }
}

fn parse(args: &[String]) -> Result<Cmd, String> {
    // cargo passes `--bench` to every harness = false bench it runs.
    let args: Vec<String> = args.iter().filter(|a| *a != "--bench").cloned().collect();
    let Some((sub, rest)) = args.split_first() else {
        return Ok(Cmd::Usage);
    };
    if sub == "-h" || sub == "--help" {
        return Ok(Cmd::Usage);
    }
    let (mut named, plain) = flags(rest)?;
    let cmd = match sub.as_str() {
        "latency" => {
            if !plain.is_empty() {
                return Err(format!("latency: unexpected '{}'", plain.join(" ")));
            }
            let tree = named
                .remove("tree")
                .ok_or("latency: --tree DIR is needed")?;
            let store = named
                .remove("store")
                .ok_or("latency: --store DIR is needed")?;
            Cmd::Latency(Latency {
                tree: tree.into(),
                store: store.into(),
                rate: number(&mut named, "rate", 100, MAX_RATE)?,
                count: number(&mut named, "count", 3000, MAX_COUNT)?,
                dirs: number(&mut named, "dirs", 10, MAX_DIRS)?,
                wait: Duration::from_secs(number(&mut named, "wait", 30, MAX_WAIT_SECS)?),
            })
        }
        "tree" => {
            let [dir] = plain.as_slice() else {
                return Err("tree: one DIR".into());
            };
            let dirs = number(&mut named, "dirs", 0, MAX_TREE_DIRS)?;
            if dirs == 0 {
                return Err("tree: --dirs N is needed".into());
            }
            Cmd::Tree {
                dir: dir.into(),
                dirs,
            }
        }
        "proc" => {
            let [pid] = plain.as_slice() else {
                return Err("proc: one PID".into());
            };
            Cmd::Proc(
                pid.parse()
                    .map_err(|_| format!("proc: '{pid}' is not a pid"))?,
            )
        }
        other => return Err(format!("unknown subcommand '{other}'")),
    };
    if let Some(k) = named.keys().next() {
        return Err(format!("unknown argument '--{k}'"));
    }
    Ok(cmd)
}

// ------------------------------------------------------------------ latency

/// xorshift64*: file contents and sizes, the same for every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The relative path of file `i`.
fn rel_path(i: u64, dirs: u64) -> String {
    format!("d{:02}/w{i:07}", i % dirs)
}

/// File `i`'s index from its name (`w0000123`).
fn index_of(name: &[u8]) -> Option<u64> {
    let digits = name.strip_prefix(b"w")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// One file written: when it was closed, and how late against its slot.
struct Closed {
    index: u64,
    at: Instant,
    behind: Duration,
}

/// Writes the files at the rate, one per slot, and sends each close.
fn writer(
    tree: PathBuf,
    rate: u64,
    count: u64,
    dirs: u64,
    tx: mpsc::Sender<Closed>,
) -> io::Result<u64> {
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = vec![0u8; MAX_SIZE];
    let mut written = 0u64;
    let start = Instant::now();
    for i in 0..count {
        let slot = start + period * u32::try_from(i).unwrap_or(u32::MAX);
        let now = Instant::now();
        if slot > now {
            thread::sleep(slot - now);
        }
        let size = MIN_SIZE + (rng.next() as usize) % (MAX_SIZE - MIN_SIZE + 1);
        let data = &mut buf[..size];
        rng.fill(data);
        let path = tree.join(rel_path(i, dirs));
        let mut f = fs::File::create(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", path.display())))?;
        f.write_all(data)?;
        drop(f);
        let at = Instant::now();
        let behind = at.saturating_duration_since(slot);
        written += 1;
        if tx
            .send(Closed {
                index: i,
                at,
                behind,
            })
            .is_err()
        {
            break;
        }
    }
    Ok(written)
}

/// The store side: an inotify descriptor on the store's directories.
struct Arrivals {
    fd: Inotify,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    /// First arrival of each file under its final name.
    first: HashMap<u64, Instant>,
    /// Arrivals of a name already arrived (sent again).
    again: u64,
    /// Files first seen by reading a new directory (their stamp is late).
    by_scan: u64,
}

fn store_mask() -> AddWatchFlags {
    AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CREATE | AddWatchFlags::IN_ONLYDIR
}

impl Arrivals {
    fn watch(&mut self, dir: &Path) -> Result<(), String> {
        let wd = self
            .fd
            .add_watch(dir, store_mask())
            .map_err(|e| format!("inotify_add_watch {}: {}", dir.display(), e.desc()))?;
        self.dirs.insert(wd, dir.to_path_buf());
        Ok(())
    }

    fn arrived(&mut self, name: &[u8], at: Instant) {
        // The server's hidden names (`.rsb-tmp.*` and the like) start with '.'.
        if name.first() == Some(&b'.') {
            return;
        }
        if let Some(i) = index_of(name) {
            match self.first.entry(i) {
                std::collections::hash_map::Entry::Occupied(_) => self.again += 1,
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(at);
                }
            }
        }
    }

    /// Reads every event waiting.
    fn drain(&mut self) -> Result<(), String> {
        loop {
            let events = match self.fd.read_events() {
                Ok(ev) => ev,
                Err(Errno::EAGAIN) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(format!("read inotify: {}", e.desc())),
            };
            if events.is_empty() {
                return Ok(());
            }
            let at = Instant::now();
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    return Err("the store watch's queue overflowed".into());
                }
                let Some(name) = ev.name else { continue };
                let name = name.as_bytes().to_vec();
                if ev.mask.contains(AddWatchFlags::IN_ISDIR) {
                    if name.first() == Some(&b'.') {
                        continue;
                    }
                    let Some(parent) = self.dirs.get(&ev.wd).cloned() else {
                        continue;
                    };
                    let dir = parent.join(OsStr::from_bytes(&name));
                    self.watch(&dir)?;
                    // What arrived before the watch: seen now.
                    for e in fs::read_dir(&dir)
                        .map_err(|e| format!("{}: {e}", dir.display()))?
                        .flatten()
                    {
                        let before = self.first.len();
                        self.arrived(e.file_name().as_bytes(), at);
                        self.by_scan += (self.first.len() - before) as u64;
                    }
                } else {
                    self.arrived(&name, at);
                }
            }
        }
    }
}

/// The value at quantile `q` of sorted `v` (nearest rank).
fn quantile(v: &[Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v.get(rank - 1).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn latency(o: &Latency) -> Result<bool, String> {
    let fd = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .map_err(|e| format!("inotify_init: {}", e.desc()))?;
    let mut arr = Arrivals {
        fd,
        dirs: HashMap::new(),
        first: HashMap::new(),
        again: 0,
        by_scan: 0,
    };
    for d in 0..o.dirs {
        let name = format!("d{d:02}");
        let src = o.tree.join(&name);
        if !src.is_dir() {
            return Err(format!(
                "{} is not a directory (make the directories before the watch starts)",
                src.display()
            ));
        }
        let dst = o.store.join(&name);
        if !dst.is_dir() {
            return Err(format!(
                "{} is not a directory (the first backup has not stored it)",
                dst.display()
            ));
        }
        arr.watch(&dst)?;
    }
    let mut poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
    let raw = arr.fd.as_fd().as_raw_fd();
    poll.registry()
        .register(&mut SourceFd(&raw), Token(0), Interest::READABLE)
        .map_err(|e| format!("epoll_ctl: {e}"))?;
    let mut events = Events::with_capacity(8);

    let (tx, rx) = mpsc::channel();
    let (tree, rate, count, dirs) = (o.tree.clone(), o.rate, o.count, o.dirs);
    let w = thread::spawn(move || writer(tree, rate, count, dirs, tx));
    let started = Instant::now();
    // The writer's time plus the wait, plus slack for a slow writer.
    let write_time = Duration::from_secs_f64(count as f64 / rate as f64);
    let hard_end = started + write_time * 2 + o.wait + Duration::from_secs(10);
    let mut closed: HashMap<u64, (Instant, Duration)> = HashMap::with_capacity(count as usize);
    let mut last_close: Option<Instant> = None;
    let mut writer_done = false;
    loop {
        let now = Instant::now();
        loop {
            match rx.try_recv() {
                Ok(c) => {
                    closed.insert(c.index, (c.at, c.behind));
                    last_close = Some(c.at);
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    writer_done = true;
                    break;
                }
            }
        }
        if writer_done && (0..count).all(|i| arr.first.contains_key(&i)) {
            break;
        }
        let end = match (writer_done, last_close) {
            (true, Some(l)) => (l + o.wait).min(hard_end),
            _ => hard_end,
        };
        if now >= end {
            break;
        }
        let timeout = (end - now).min(Duration::from_millis(100));
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("epoll_wait: {e}")),
        }
        if !events.is_empty() {
            arr.drain()?;
        }
    }
    let _ = arr.drain();
    let written = match w.join() {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => return Err(format!("writer: {e}")),
        Err(_) => return Err("writer: the thread panicked".into()),
    };

    let mut lat = Vec::with_capacity(count as usize);
    let mut early = 0u64;
    let mut behind_max = Duration::ZERO;
    for i in 0..written {
        let Some(&(close, behind)) = closed.get(&i) else {
            continue;
        };
        behind_max = behind_max.max(behind);
        if let Some(&at) = arr.first.get(&i) {
            match at.checked_duration_since(close) {
                Some(d) => lat.push(d),
                None => early += 1,
            }
        }
    }
    lat.sort();
    // What the store holds, against what was written.
    let mut differ = 0u64;
    for i in 0..written {
        let rel = rel_path(i, o.dirs);
        let (a, b) = (fs::read(o.tree.join(&rel)), fs::read(o.store.join(&rel)));
        match (a, b) {
            (Ok(a), Ok(b)) if a == b => {}
            _ => differ += 1,
        }
    }
    let arrived = lat.len() as u64;
    let mean = if lat.is_empty() {
        Duration::ZERO
    } else {
        lat.iter().sum::<Duration>() / u32::try_from(lat.len()).unwrap_or(u32::MAX)
    };
    println!("files={written}");
    println!("arrived={arrived}");
    println!("arrived_before_close={early}");
    println!("arrived_again={}", arr.again);
    println!("found_by_scan={}", arr.by_scan);
    println!("differ={differ}");
    println!("min_ms={}", ms(lat.first().copied().unwrap_or_default()));
    println!("p50_ms={}", ms(quantile(&lat, 0.50)));
    println!("p90_ms={}", ms(quantile(&lat, 0.90)));
    println!("p99_ms={}", ms(quantile(&lat, 0.99)));
    println!("max_ms={}", ms(lat.last().copied().unwrap_or_default()));
    println!("mean_ms={}", ms(mean));
    println!("writer_behind_max_ms={}", ms(behind_max));
    println!(
        "write_secs={:.2}",
        last_close.map_or(0.0, |l| (l - started).as_secs_f64())
    );
    Ok(arrived == count && written == count && differ == 0 && early == 0)
}

// ------------------------------------------------------------------ tree

fn tree(dir: &Path, dirs: u64) -> Result<bool, String> {
    let mk = |p: &Path| fs::create_dir_all(p).map_err(|e| format!("mkdir {}: {e}", p.display()));
    mk(dir)?;
    for i in 0..dirs {
        let g = dir.join(format!("g{:03}", i / GROUP));
        if i % GROUP == 0 {
            mk(&g)?;
        } else {
            mk(&g.join(format!("d{:04}", i % GROUP)))?;
        }
    }
    println!("dirs={dirs}");
    Ok(true)
}

// ------------------------------------------------------------------ proc

/// `key: value kB` lines of a /proc file, as numbers.
fn kv(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100)
}

fn proc_line(pid: u32) -> Result<bool, String> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    let read = |p: &Path| fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let stat = read(&base.join("stat"))?;
    // Fields after the command name, which may hold spaces: state is the
    // 3rd field, utime the 14th, stime the 15th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let hz = clock_ticks();
    let cpu_ms = (tick(11) + tick(12)) * 1000 / hz;
    let (mut run_ns, mut vol, mut invol, mut threads) = (0u64, 0u64, 0u64, 0u64);
    for t in fs::read_dir(base.join("task"))
        .map_err(|e| format!("{}/task: {e}", base.display()))?
        .flatten()
    {
        threads += 1;
        if let Ok(s) = fs::read_to_string(t.path().join("schedstat")) {
            run_ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
        if let Ok(s) = fs::read_to_string(t.path().join("status")) {
            vol += kv(&s, "voluntary_ctxt_switches").unwrap_or(0);
            invol += kv(&s, "nonvoluntary_ctxt_switches").unwrap_or(0);
        }
    }
    let status = read(&base.join("status"))?;
    let rollup = fs::read_to_string(base.join("smaps_rollup")).unwrap_or_default();
    let mut watches = 0u64;
    for fd in fs::read_dir(base.join("fd"))
        .map_err(|e| format!("{}/fd: {e}", base.display()))?
        .flatten()
    {
        let is_inotify =
            fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:inotify");
        if is_inotify {
            if let Ok(info) = fs::read_to_string(base.join("fdinfo").join(fd.file_name())) {
                watches += info
                    .lines()
                    .filter(|l| l.starts_with("inotify wd:"))
                    .count() as u64;
            }
        }
    }
    println!(
        "cpu_ms={cpu_ms} run_ns={run_ns} vol_cs={vol} invol_cs={invol} rss_kb={} anon_kb={} pss_kb={} threads={threads} watches={watches}",
        kv(&status, "VmRSS").unwrap_or(0),
        kv(&status, "RssAnon").unwrap_or(0),
        kv(&rollup, "Pss").unwrap_or(0),
    );
    Ok(true)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{PROG}: {e}\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let r = match cmd {
        Cmd::Usage => {
            println!("{USAGE}");
            Ok(true)
        }
        Cmd::Latency(o) => latency(&o),
        Cmd::Tree { dir, dirs } => tree(&dir, dirs),
        Cmd::Proc(pid) => proc_line(pid),
    };
    match r {
        Ok(true) => ExitCode::from(EXIT_OK),
        Ok(false) => ExitCode::from(EXIT_FAILED),
        Err(e) => {
            eprintln!("{PROG}: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
