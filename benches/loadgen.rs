//! Load generator for the product's "1,000 clients connected at once to one
//! server process, each backing up" promise. It opens N connections to a
//! running `rsb-server`, waits until every one of them is welcomed (so all N
//! are connected at the same time), then has each send one backup (a `File`
//! of `--size` pseudo-random bytes, `FileEnd`, `Commit`) and waits for every
//! `Committed`. With `--pid` it reads the server's memory from `/proc` before
//! connecting, once all are connected and idle, and at the end.
//!
//! ```text
//! target/release/rsb-server -a 127.0.0.1 -p 0 -d /tmp/lg-root &
//! cargo bench --bench loadgen -- --port PORT [--clients 1000] [--size 4096]
//!     [--timeout 60] [--name-prefix load] [--addr 127.0.0.1|::1] [--pid PID]
//! ```
//!
//! Guard rails, so it cannot be aimed elsewhere or run away: it talks only to
//! 127.0.0.1 or ::1, opens at most 5,000 connections, and gives up after
//! `--timeout` seconds in all, reporting what finished. Client `i` uses the
//! namespace `{prefix}{i}` and stores `loadgen/file.bin` there.
//!
//! Shape: one thread, one `mio::Poll`, a `slab::Slab` of non-blocking
//! connections, edge-triggered (read and write until `WouldBlock`), like the
//! server itself, so what is measured is the server and not the generator's
//! threads. Bodies are generated chunk by chunk as the socket takes them, so
//! the generator holds at most one chunk per connection.
//!
//! Without arguments (as `cargo bench` runs every bench) it prints its usage
//! and exits 0: there is no server to load.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use rsb::proto::codec::{decode, encode};
use rsb::proto::{is_valid_client_name, Decoded, Frame, Meta, Time, WirePath, VERSION};
use slab::Slab;

const PROG: &str = "loadgen";
const USAGE: &str =
    "usage: cargo bench --bench loadgen -- --port PORT [--clients N] [--size BYTES] \
[--timeout SECS] [--name-prefix PREFIX] [--addr 127.0.0.1|::1] [--pid SERVER_PID]";

/// Most connections one run may open.
const MAX_CLIENTS: usize = 5000;
/// Largest body per client (1 GiB): N of them land on the server's disk.
const MAX_SIZE: u64 = 1 << 30;
/// Longest run accepted (one hour).
const MAX_TIMEOUT_SECS: u64 = 3600;
/// Body bytes generated per refill of a connection's output buffer.
const CHUNK: usize = 16 * 1024;
/// Where each client's file lands in its namespace.
const BACKUP_PATH: &[u8] = b"loadgen/file.bin";
/// Descriptors kept free beyond one per connection (stdio, epoll, /proc).
const SPARE_FDS: u64 = 32;
/// How many failure messages the summary shows.
const SHOWN_FAILURES: usize = 5;

/// Exit statuses.
const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// The validated command line.
struct Opts {
    addr: SocketAddr,
    clients: usize,
    size: u64,
    timeout: Duration,
    prefix: String,
    pid: Option<u32>,
}

/// What the command line asks for.
enum Parsed {
    Run(Opts),
    /// Print the usage and exit 0 (`--help`, or no arguments at all).
    Usage,
}

fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut port: Option<u16> = None;
    let mut ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut clients = 1000usize;
    let mut size = 4096u64;
    let mut timeout = 60u64;
    let mut prefix = String::from("load");
    let mut pid = None;
    let mut saw_any = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        // cargo passes `--bench` to every harness = false bench it runs.
        if arg == "--bench" {
            continue;
        }
        saw_any = true;
        if arg == "-h" || arg == "--help" {
            return Ok(Parsed::Usage);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let known = [
            "--port",
            "--clients",
            "--size",
            "--timeout",
            "--name-prefix",
            "--addr",
            "--pid",
        ];
        if !known.contains(&flag) {
            return Err(format!("unknown argument '{arg}'"));
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))?,
        };
        let number = |max: u64| -> Result<u64, String> {
            match value.parse::<u64>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(format!("{flag}: '{value}' is not a number from 0 to {max}")),
            }
        };
        match flag {
            "--port" => match number(u64::from(u16::MAX))? {
                0 => return Err("--port: the server's port, not 0".into()),
                p => port = u16::try_from(p).ok(),
            },
            "--clients" => match number(MAX_CLIENTS as u64)? {
                0 => return Err("--clients: at least 1".into()),
                n => clients = n as usize,
            },
            "--size" => size = number(MAX_SIZE)?,
            "--timeout" => match number(MAX_TIMEOUT_SECS)? {
                0 => return Err("--timeout: at least 1 second".into()),
                t => timeout = t,
            },
            "--name-prefix" => prefix = value,
            "--addr" => {
                let a = value.trim_start_matches('[').trim_end_matches(']');
                ip = match a.parse::<IpAddr>() {
                    Ok(ip) if is_allowed(ip) => ip,
                    _ => {
                        return Err(format!(
                            "--addr: refusing '{value}': only 127.0.0.1 and ::1 may be loaded"
                        ))
                    }
                };
            }
            "--pid" => match value.parse::<u32>() {
                Ok(p) if p > 0 => pid = Some(p),
                _ => return Err(format!("--pid: '{value}' is not a process id")),
            },
            _ => unreachable!("flag checked against the known list"),
        }
    }
    if !saw_any {
        return Ok(Parsed::Usage);
    }
    let Some(port) = port else {
        return Err("--port is required".into());
    };
    // The longest name is the one with the most digits.
    let longest = format!("{prefix}{}", clients - 1);
    if !is_valid_client_name(&format!("{prefix}0")) || !is_valid_client_name(&longest) {
        return Err(format!(
            "--name-prefix: '{longest}' is not a valid client name (1 to 64 of [A-Za-z0-9._-])"
        ));
    }
    let addr = SocketAddr::new(ip, port);
    if !is_allowed(addr.ip()) {
        return Err(format!("refusing {addr}: only 127.0.0.1 and ::1"));
    }
    Ok(Parsed::Run(Opts {
        addr,
        clients,
        size,
        timeout: Duration::from_secs(timeout),
        prefix,
        pid,
    }))
}

/// The only addresses this generator will connect to.
fn is_allowed(ip: IpAddr) -> bool {
    ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)
}

/// Raises the soft open-file limit to the hard one and returns the limit in
/// force.
fn raise_fd_limit() -> io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Ok(hard);
    }
    Ok(soft)
}

/// Where a client is in its one backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// TCP connect in progress; `Hello` is queued.
    Connecting,
    /// `Hello` sent (or being sent), waiting for `Welcome`.
    AwaitWelcome,
    /// Welcomed; idle until every client is.
    Welcomed,
    /// `File` header and body going out.
    Sending,
    /// `FileEnd` and `Commit` queued or sent, waiting for `Committed`.
    AwaitCommitted,
    /// Done; the connection stays open until the end of the run.
    Committed,
}

/// What one readiness event did to a client.
enum Step {
    Idle,
    Welcomed,
    Committed,
    Failed(String),
}

/// One connection and its backup.
struct Client {
    index: usize,
    stream: TcpStream,
    phase: Phase,
    out: Vec<u8>,
    out_pos: usize,
    input: Vec<u8>,
    body_left: u64,
    rng: u64,
    crc: u32,
    next_id: u32,
    file_id: u32,
    commit_id: u32,
}

impl Client {
    fn new(index: usize, stream: TcpStream, name: String) -> Client {
        let mut out = Vec::new();
        encode(
            &Frame::Hello {
                version: VERSION,
                name,
                flags: 0,
                nonce: Vec::new(),
            },
            &mut out,
        );
        Client {
            index,
            stream,
            phase: Phase::Connecting,
            out,
            out_pos: 0,
            input: Vec::new(),
            body_left: 0,
            rng: seed(index),
            crc: 0,
            next_id: 1,
            file_id: 0,
            commit_id: 0,
        }
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Queues the `File` header; the body, `FileEnd` and `Commit` follow as
    /// the socket drains (see [`Client::refill`]).
    fn start_backup(&mut self, size: u64, meta: Meta, path: &WirePath) {
        self.file_id = self.take_id();
        self.commit_id = self.take_id();
        encode(
            &Frame::File {
                id: self.file_id,
                path: path.clone(),
                meta,
                size,
                layout: Default::default(),
            },
            &mut self.out,
        );
        self.body_left = size;
        self.phase = Phase::Sending;
    }

    /// Handles a readiness event (or a kick after queuing output).
    fn handle_event(&mut self) -> Step {
        if self.phase == Phase::Connecting {
            match self.stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return Step::Failed(format!("connect: {e}")),
            }
            match self.stream.peer_addr() {
                Ok(_) => self.phase = Phase::AwaitWelcome,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Step::Idle,
                Err(e) => return Step::Failed(format!("connect: {e}")),
            }
        }
        if let Err(e) = self.flush() {
            return Step::Failed(format!("write: {e}"));
        }
        self.read_frames()
    }

    /// Writes until the socket would block or nothing is left to send.
    fn flush(&mut self) -> io::Result<()> {
        loop {
            if self.out_pos == self.out.len() {
                self.out.clear();
                self.out_pos = 0;
                if !self.refill() {
                    return Ok(());
                }
            }
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Puts the next piece of the backup into the (empty) output buffer:
    /// a chunk of body, or, once the body is out, `FileEnd` and `Commit`.
    /// False when there is nothing more to send.
    fn refill(&mut self) -> bool {
        if self.phase != Phase::Sending {
            return false;
        }
        if self.body_left > 0 {
            let n = self.body_left.min(CHUNK as u64) as usize;
            self.out.resize(n, 0);
            for word in self.out.chunks_mut(8) {
                let bytes = xorshift(&mut self.rng).to_le_bytes();
                word.copy_from_slice(&bytes[..word.len()]);
            }
            self.crc = crc32c::crc32c_append(self.crc, &self.out);
            self.body_left -= n as u64;
            return true;
        }
        encode(
            &Frame::FileEnd {
                id: self.file_id,
                crc: self.crc,
                ok: true,
            },
            &mut self.out,
        );
        encode(&Frame::Commit { id: self.commit_id }, &mut self.out);
        self.phase = Phase::AwaitCommitted;
        true
    }

    /// Reads until the socket would block and acts on every whole frame.
    fn read_frames(&mut self) -> Step {
        let mut buf = [0u8; 4096];
        let mut eof = false;
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Step::Failed(format!("read: {e}")),
            }
        }
        let mut step = Step::Idle;
        loop {
            match decode(&self.input) {
                Ok(Decoded::Partial) => break,
                Ok(Decoded::Frame(frame, used)) => {
                    self.input.drain(..used);
                    match self.on_frame(frame) {
                        Step::Idle => {}
                        Step::Failed(m) => return Step::Failed(m),
                        s => step = s,
                    }
                }
                Err(e) => return Step::Failed(format!("bad frame from the server: {e}")),
            }
        }
        if eof && self.phase != Phase::Committed {
            return Step::Failed(format!(
                "the server closed the connection (client in phase {:?})",
                self.phase
            ));
        }
        step
    }

    fn on_frame(&mut self, frame: Frame) -> Step {
        match (self.phase, frame) {
            (Phase::AwaitWelcome, Frame::Welcome { version, .. }) => {
                if version != VERSION {
                    return Step::Failed(format!("server speaks version {version}"));
                }
                self.phase = Phase::Welcomed;
                Step::Welcomed
            }
            (Phase::AwaitCommitted, Frame::Committed { id }) if id == self.commit_id => {
                self.phase = Phase::Committed;
                // Nothing more to send or receive: give the buffers back.
                self.out = Vec::new();
                self.input = Vec::new();
                Step::Committed
            }
            (_, Frame::Failed { id, path, message }) => {
                Step::Failed(format!("Failed (id {id}) {path}: {message}"))
            }
            (_, Frame::Error { code, message }) => {
                Step::Failed(format!("Error {code:?}: {message}"))
            }
            (phase, frame) => Step::Failed(format!(
                "unexpected frame kind {} in phase {phase:?}",
                frame.kind()
            )),
        }
    }
}

/// A per-client xorshift seed (splitmix64 of the index, never zero).
fn seed(index: usize) -> u64 {
    let mut z = (index as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    if z == 0 {
        0x2545_f491_4f6c_dd1d
    } else {
        z
    }
}

/// xorshift64: cheap bytes that do not compress or deduplicate.
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Counts over the whole run.
#[derive(Default)]
struct Tally {
    welcomed: usize,
    committed: usize,
    failures: Vec<(usize, String)>,
    last_welcome: Option<Instant>,
    last_commit: Option<Instant>,
}

impl Tally {
    fn fail(&mut self, index: usize, message: String) {
        self.failures.push((index, message));
    }
}

/// The event loop: runs until `done` holds or the deadline passes. Returns
/// false on the deadline.
fn drive(
    poll: &mut Poll,
    events: &mut Events,
    clients: &mut Slab<Client>,
    tally: &mut Tally,
    deadline: Instant,
    done: impl Fn(&Tally) -> bool,
) -> io::Result<bool> {
    loop {
        if done(tally) {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        match poll.poll(events, Some(deadline - now)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            let key = event.token().0;
            let Some(client) = clients.get_mut(key) else {
                continue;
            };
            let step = client.handle_event();
            settle(poll, clients, tally, key, step);
        }
    }
}

/// Books the outcome of one step; a failed client is closed.
fn settle(poll: &Poll, clients: &mut Slab<Client>, tally: &mut Tally, key: usize, step: Step) {
    match step {
        Step::Idle => {}
        Step::Welcomed => {
            tally.welcomed += 1;
            tally.last_welcome = Some(Instant::now());
        }
        Step::Committed => {
            tally.committed += 1;
            tally.last_commit = Some(Instant::now());
        }
        Step::Failed(message) => {
            let mut client = clients.remove(key);
            let _ = poll.registry().deregister(&mut client.stream);
            tally.fail(client.index, message);
        }
    }
}

/// The server's memory as `/proc/PID/status` states it, in KiB.
#[derive(Clone, Copy)]
struct Mem {
    rss_kib: u64,
    hwm_kib: u64,
}

fn read_mem(pid: u32) -> Result<Mem, String> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))?;
    let field = |name: &str| -> Result<u64, String> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("{path}: no {name} line"))
    };
    Ok(Mem {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

fn show_mem(label: &str, mem: &Option<Result<Mem, String>>) {
    match mem {
        None => {}
        Some(Ok(m)) => println!(
            "server memory {label}: VmRSS {} KiB, VmHWM {} KiB",
            m.rss_kib, m.hwm_kib
        ),
        Some(Err(e)) => println!("server memory {label}: {e}"),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn run(opts: &Opts) -> io::Result<bool> {
    let limit = raise_fd_limit()?;
    let needed = opts.clients as u64 + SPARE_FDS;
    if limit < needed {
        return Err(io::Error::other(format!(
            "the open-file limit ({limit}) is below the {needed} descriptors {} clients need; raise the hard limit or lower --clients",
            opts.clients
        )));
    }
    let started = Instant::now();
    let deadline = started + opts.timeout;
    let mtime = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let meta = Meta {
        mode: 0o644,
        mtime: Time {
            secs: mtime.as_secs() as i64,
            nanos: mtime.subsec_nanos(),
        },
        uid: 0,
        gid: 0,
    };
    let path = WirePath::new(BACKUP_PATH.to_vec())
        .map_err(|e| io::Error::other(format!("backup path: {e}")))?;

    println!(
        "{PROG}: {} clients -> {}, {} body bytes each, namespaces {}0..{}{}, timeout {} s",
        opts.clients,
        opts.addr,
        opts.size,
        opts.prefix,
        opts.prefix,
        opts.clients - 1,
        opts.timeout.as_secs()
    );
    let mem_before = opts.pid.map(read_mem);
    show_mem("before connecting", &mem_before);

    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut clients: Slab<Client> = Slab::with_capacity(opts.clients);
    let mut tally = Tally::default();

    // Phase 1: every connection opened and welcomed.
    let connect_start = Instant::now();
    for i in 0..opts.clients {
        let mut stream = match TcpStream::connect(opts.addr) {
            Ok(s) => s,
            Err(e) => {
                tally.fail(i, format!("connect: {e}"));
                continue;
            }
        };
        let entry = clients.vacant_entry();
        let token = Token(entry.key());
        if let Err(e) =
            poll.registry()
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            tally.fail(i, format!("register: {e}"));
            continue;
        }
        entry.insert(Client::new(i, stream, format!("{}{i}", opts.prefix)));
    }
    let n = opts.clients;
    let all_connected = drive(
        &mut poll,
        &mut events,
        &mut clients,
        &mut tally,
        deadline,
        |t| t.welcomed + t.failures.len() >= n,
    )?;
    let connect_time = tally.last_welcome.map(|t| t - connect_start);
    match (all_connected, connect_time) {
        (true, Some(d)) => println!(
            "connected: {}/{n} welcomed at once after {} ({} failed)",
            tally.welcomed,
            secs(d),
            tally.failures.len()
        ),
        (true, None) => println!("connected: none of {n} welcomed"),
        (false, _) => println!(
            "connected: timed out after {}: {}/{n} welcomed, {} failed, {} not welcomed yet",
            secs(opts.timeout),
            tally.welcomed,
            tally.failures.len(),
            n - tally.welcomed - tally.failures.len()
        ),
    }
    let connected = tally.welcomed;
    let mem_idle = opts.pid.map(read_mem);
    show_mem(&format!("with {connected} idle connections"), &mem_idle);
    if let (Some(Ok(before)), Some(Ok(idle))) = (&mem_before, &mem_idle) {
        if connected > 0 {
            let grown = idle.rss_kib.saturating_sub(before.rss_kib) * 1024;
            println!(
                "per connection: ({} - {}) KiB / {connected} = {} bytes",
                idle.rss_kib,
                before.rss_kib,
                grown / connected as u64
            );
        }
    }

    // Phase 2: every welcomed client backs up one file.
    let mut finished = false;
    let mut backup_start = None;
    if all_connected && connected > 0 {
        let start = Instant::now();
        backup_start = Some(start);
        let keys: Vec<usize> = clients.iter().map(|(k, _)| k).collect();
        for key in keys {
            let Some(client) = clients.get_mut(key) else {
                continue;
            };
            client.start_backup(opts.size, meta, &path);
            // The writable edge was spent on Hello: write now, and the next
            // edge comes once the socket has room again.
            let step = client.handle_event();
            settle(&poll, &mut clients, &mut tally, key, step);
        }
        finished = drive(
            &mut poll,
            &mut events,
            &mut clients,
            &mut tally,
            deadline,
            |t| t.committed + t.failures.len() >= n,
        )?;
    }
    let mem_end = opts.pid.map(read_mem);

    // Summary.
    println!("--- summary ---");
    println!("clients:        {n}");
    match (all_connected, connect_time) {
        (true, Some(d)) => println!(
            "connected-all:  {} ({connected} connected at once)",
            secs(d)
        ),
        _ => println!("connected-all:  not reached ({connected}/{n} welcomed)"),
    }
    match (backup_start, tally.last_commit) {
        (Some(s), Some(e)) if finished => {
            let wall = e - s;
            let bytes = opts.size * tally.committed as u64;
            println!(
                "backup wall:    {} (first File to last Committed), {:.1} MiB/s of bodies, {:.0} commits/s",
                secs(wall),
                bytes as f64 / wall.as_secs_f64().max(1e-9) / (1 << 20) as f64,
                tally.committed as f64 / wall.as_secs_f64().max(1e-9)
            );
        }
        (Some(_), _) => println!(
            "backup wall:    timed out after {} in all",
            secs(opts.timeout)
        ),
        (None, _) => println!("backup wall:    not started"),
    }
    let unfinished = n - tally.committed - tally.failures.len();
    println!("successes:      {}", tally.committed);
    println!("failures:       {}", tally.failures.len());
    if unfinished > 0 {
        let mut phases = String::new();
        for phase in [
            Phase::Connecting,
            Phase::AwaitWelcome,
            Phase::Welcomed,
            Phase::Sending,
            Phase::AwaitCommitted,
        ] {
            let count = clients.iter().filter(|(_, c)| c.phase == phase).count();
            if count > 0 {
                let _ = write!(phases, " {phase:?}={count}");
            }
        }
        println!("unfinished:     {unfinished} (timed out:{phases})");
    }
    tally.failures.sort_by_key(|(i, _)| *i);
    for (i, message) in tally.failures.iter().take(SHOWN_FAILURES) {
        println!("  {}{i}: {message}", opts.prefix);
    }
    if tally.failures.len() > SHOWN_FAILURES {
        println!("  ... and {} more", tally.failures.len() - SHOWN_FAILURES);
    }
    show_mem("before connecting", &mem_before);
    show_mem("idle (all connected)", &mem_idle);
    show_mem("active (at the end)", &mem_end);
    println!("run time:       {}", secs(started.elapsed()));
    Ok(tally.failures.is_empty() && unfinished == 0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Usage) => {
            println!("{USAGE}");
            return ExitCode::from(EXIT_OK);
        }
        Err(e) => {
            eprintln!("{PROG}: {e}\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(&opts) {
        Ok(true) => ExitCode::from(EXIT_OK),
        Ok(false) => ExitCode::from(EXIT_FAILED),
        Err(e) => {
            eprintln!("{PROG}: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
