//! End-to-end test harness: starts the real `rsb-server` and `rsb-client`
//! binaries on 127.0.0.1, builds awkward trees on disk, compares trees bit for
//! bit (type, content, mode, mtime in ns, link target) and speaks raw frames to
//! a server for hostile tests.
//!
//! Every wait here is bounded: a process that hangs is killed and the test
//! fails with whatever it printed, instead of hanging CI.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::stat::{utimensat, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::Pid;
use rsb::proto::codec::to_vec;
use rsb::proto::{decode, Decoded, Frame, Meta, Time, WirePath};

pub const SERVER: &str = env!("CARGO_BIN_EXE_rsb-server");
pub const CLIENT: &str = env!("CARGO_BIN_EXE_rsb-client");
/// The namespace most tests back up into.
pub const NAME: &str = "t";
/// Default bound on one client run.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- scratch dirs

/// A temporary directory with its canonical path (the client may resolve
/// symlinks in its cwd, so tests always work with canonical paths).
pub struct Scratch {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Scratch {
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

pub fn scratch() -> Scratch {
    let dir = tempfile::Builder::new()
        .prefix("rsb-test.")
        .tempdir()
        .expect("tempdir");
    let path = fs::canonicalize(dir.path()).expect("canonicalize tempdir");
    Scratch { _dir: dir, path }
}

/// `b"..."` or `"..."` as a path, for names that are not UTF-8.
pub fn bpath(b: impl AsRef<[u8]>) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(b.as_ref()))
}

// ---------------------------------------------------------------- server

/// A running `rsb-server`, killed on drop. Its stderr is collected in a
/// thread; [`Server::log`] returns everything printed so far.
pub struct Server {
    child: Child,
    port: u16,
    root: PathBuf,
    log: Arc<Mutex<String>>,
    base: Option<Scratch>,
    /// Where the secrets file of [`Server::start_with_secrets`] lives.
    secrets: Option<Scratch>,
}

impl Server {
    /// Starts a server on a fresh root `BASE/root` (not yet existing, so the
    /// server creates it). `BASE` holds nothing else: see [`Server::base`].
    pub fn start(args: &[&str]) -> Server {
        let base = scratch();
        let mut s = Server::start_at(&base.join("root"), args);
        s.base = Some(base);
        s
    }

    /// Starts a server on `root`, which the caller owns.
    pub fn start_at(root: &Path, args: &[&str]) -> Server {
        Server::spawn(root, args, None, 0, &[])
    }

    /// Starts a server with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let base = scratch();
        let mut s = Server::spawn(&base.join("root"), args, None, 0, env);
        s.base = Some(base);
        s
    }

    /// Starts a server on `root`, which the caller owns, listening on
    /// `port`: restarts a killed server where its clients expect it.
    pub fn start_on(root: &Path, port: u16, args: &[&str]) -> Server {
        Server::spawn(root, args, None, port, &[])
    }

    /// Starts a server whose files may grow to `bytes` at most
    /// (RLIMIT_FSIZE): writing more fails with EFBIG, as on a full disk.
    pub fn start_with_file_size_limit(args: &[&str], bytes: u64) -> Server {
        let base = scratch();
        let mut s = Server::spawn(&base.join("root"), args, Some(bytes), 0, &[]);
        s.base = Some(base);
        s
    }

    fn spawn(
        root: &Path,
        args: &[&str],
        fsize: Option<u64>,
        port: u16,
        env: &[(&str, &str)],
    ) -> Server {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(SERVER);
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-d"])
            .arg(root)
            .args(args)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(limit) = fsize {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs
            // between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    nix::sys::resource::setrlimit(
                        nix::sys::resource::Resource::RLIMIT_FSIZE,
                        limit,
                        limit,
                    )
                    .map_err(std::io::Error::from)
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn rsb-server");
        let stderr = child.stderr.take().expect("server stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = log.clone();
        thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut tx = Some(tx);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let s = String::from_utf8_lossy(&line).into_owned();
                log2.lock().unwrap().push_str(&s);
                if let Some(port) = parse_listening(&s) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(port) => Server {
                child,
                port,
                root: root.to_path_buf(),
                log,
                base: None,
                secrets: None,
            },
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                thread::sleep(Duration::from_millis(50));
                panic!(
                    "rsb-server did not print `listening on 127.0.0.1:PORT` within 10 s (status {:?}); stderr:\n{}",
                    status,
                    log.lock().unwrap()
                );
            }
        }
    }

    /// Starts a server with `--secrets FILE`, FILE (mode 0600, outside
    /// [`Server::base`]) holding `secrets` (`name:secret` lines).
    pub fn start_with_secrets(secrets: &str, args: &[&str]) -> Server {
        let dir = scratch();
        let file = write_private(&dir.join("secrets"), secrets);
        let mut all = vec!["-k", file.to_str().expect("UTF-8 temp path")];
        all.extend_from_slice(args);
        let mut s = Server::start(&all);
        s.secrets = Some(dir);
        s
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The directory holding the root (only for [`Server::start`]).
    pub fn base(&self) -> &Path {
        self.base
            .as_ref()
            .expect("server started with start_at has no base")
            .path()
    }
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }
    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).expect("signal server");
    }
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
    /// Waits for the server to exit; `None` if it is still running at the
    /// deadline.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
    /// SIGTERM and wait up to 5 s; panics if it does not exit 0.
    pub fn stop(mut self) {
        self.signal(Signal::SIGTERM);
        match self.wait_exit(Duration::from_secs(5)) {
            Some(st) if st.code() == Some(0) => {}
            other => panic!(
                "server did not exit 0 within 5 s of SIGTERM: {other:?}; log:\n{}",
                self.log()
            ),
        }
    }

    /// `ROOT/<name>`.
    pub fn ns(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    /// Where the server keeps the local absolute path `abs` of client `name`.
    pub fn store(&self, name: &str, abs: &Path) -> PathBuf {
        assert!(abs.is_absolute(), "{abs:?} is not absolute");
        self.ns(name).join(abs.strip_prefix("/").unwrap())
    }

    /// A client command `rsb-client -n NAME 127.0.0.1 PORT ARGS...`.
    pub fn client<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.client_as(NAME, args)
    }

    /// `rsb-client OPTS... -n NAME 127.0.0.1 PORT ARGS...`: options must
    /// come before HOST (after it, `-q` would be a path to back up).
    pub fn client_opts<I, S>(&self, opts: &[&str], args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Cmd::client();
        c.args(opts)
            .args(["-n", NAME, "127.0.0.1"])
            .arg(self.port.to_string())
            .args(args);
        c
    }

    /// `rsb-client -k SECRET_FILE -n NAME 127.0.0.1 PORT ARGS...`.
    pub fn client_keyed<I, S>(&self, name: &str, secret_file: &Path, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        keyed_client(self.port, name, secret_file, args)
    }

    /// Same as [`Server::client`] with another namespace.
    pub fn client_as<I, S>(&self, name: &str, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Cmd::client();
        c.args(["-n", name, "127.0.0.1"])
            .arg(self.port.to_string())
            .args(args);
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "---- rsb-server log (port {}) ----\n{}---- end of log ----",
                self.port,
                self.log()
            );
        }
    }
}

/// Port from a line containing `listening on ADDR:PORT` (ADDR may be `[v6]`).
pub fn parse_listening(line: &str) -> Option<u16> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let addr = rest.split(|c: char| c.is_whitespace() || c == ',').next()?;
    addr.rsplit(':').next()?.parse().ok()
}

/// `rsb-client -k SECRET_FILE -n NAME 127.0.0.1 PORT ARGS...`, for any
/// listener on 127.0.0.1 (a fake server, a proxy).
pub fn keyed_client<I, S>(port: u16, name: &str, secret_file: &Path, args: I) -> Cmd
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Cmd::client();
    c.arg("-k")
        .arg(secret_file)
        .args(["-n", name, "127.0.0.1"])
        .arg(port.to_string())
        .args(args);
    c
}

/// Writes `content` to a new file `p` with mode 0600 (rsb refuses secret
/// files that group or others can read) and returns `p`.
pub fn write_private(p: &Path, content: impl AsRef<[u8]>) -> PathBuf {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .unwrap_or_else(|e| panic!("create {p:?}: {e}"));
    f.write_all(content.as_ref())
        .unwrap_or_else(|e| panic!("write {p:?}: {e}"));
    // The umask cannot add bits, but make the mode explicit anyway.
    chmod(p, 0o600);
    p.to_path_buf()
}

// ---------------------------------------------------------------- processes

/// What a finished process printed and how it ended.
pub struct Output {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// Panics, showing everything, unless the exit code is `code`.
    pub fn code_is(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "unexpected exit status\n{self}");
        self
    }
    pub fn ok(&self) -> &Self {
        self.code_is(0)
    }
    /// Panics unless stderr contains `s`.
    pub fn err_has(&self, s: &str) -> &Self {
        assert!(self.err().contains(s), "stderr lacks {s:?}\n{self}");
        self
    }
    /// Panics unless stdout contains `s`.
    pub fn out_has(&self, s: &str) -> &Self {
        assert!(self.out().contains(s), "stdout lacks {s:?}\n{self}");
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "command: {}\nstatus: {} after {:.2?}\n--- stdout ---\n{}--- stderr ---\n{}--- end ---",
            self.what,
            self.status,
            self.elapsed,
            self.out(),
            self.err()
        )
    }
}

/// A command to run with piped stdin/stdout/stderr and a timeout.
pub struct Cmd {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    what: String,
}

impl Cmd {
    /// `rsb-client` with no arguments, TZ=UTC, no RSB_SECRET_FILE/RUST_LOG.
    pub fn client() -> Cmd {
        Cmd::new(CLIENT)
    }
    /// `rsb-server` with no arguments (for option tests that do not listen).
    pub fn server() -> Cmd {
        Cmd::new(SERVER)
    }
    pub fn new(prog: &str) -> Cmd {
        let mut cmd = Command::new(prog);
        cmd.env("TZ", "UTC")
            .env_remove("RSB_SECRET_FILE")
            .env_remove("RUST_LOG");
        Cmd {
            cmd,
            stdin: None,
            timeout: CLIENT_TIMEOUT,
            what: prog.rsplit('/').next().unwrap().to_string(),
        }
    }
    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Self {
        self.what.push(' ');
        self.what.push_str(&format!("{:?}", a.as_ref()));
        self.cmd.arg(a);
        self
    }
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }
    /// Bytes fed to stdin (then closed). Without this, stdin is /dev/null.
    pub fn stdin(&mut self, input: impl AsRef<[u8]>) -> &mut Self {
        self.stdin = Some(input.as_ref().to_vec());
        self
    }
    pub fn cwd(&mut self, dir: &Path) -> &mut Self {
        self.cmd.current_dir(dir);
        self
    }
    pub fn env(&mut self, k: &str, v: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(k, v);
        self
    }
    pub fn timeout(&mut self, t: Duration) -> &mut Self {
        self.timeout = t;
        self
    }

    /// Starts the process without waiting.
    pub fn spawn(&mut self) -> Running {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.what));
        if let Some(input) = self.stdin.clone() {
            let mut w = child.stdin.take().unwrap();
            // The child may exit without reading everything: ignore EPIPE.
            thread::spawn(move || {
                let _ = w.write_all(&input);
            });
        }
        let out = reader(child.stdout.take().unwrap());
        let err = reader(child.stderr.take().unwrap());
        Running {
            child: Some(child),
            out: Some(out),
            err: Some(err),
            start: Instant::now(),
            timeout: self.timeout,
            what: self.what.clone(),
        }
    }

    /// Runs to completion; a process still running at the timeout is killed
    /// and the test fails.
    pub fn run(&mut self) -> Output {
        let t = self.timeout;
        self.spawn().wait(t)
    }
}

fn reader(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// A process started by [`Cmd::spawn`]; killed on drop.
pub struct Running {
    child: Option<Child>,
    out: Option<JoinHandle<Vec<u8>>>,
    err: Option<JoinHandle<Vec<u8>>>,
    start: Instant,
    timeout: Duration,
    what: String,
}

impl Running {
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }
    pub fn signal(&self, sig: Signal) {
        kill(self.pid(), sig).expect("signal child");
    }
    /// True once the process has exited (it is reaped then).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.as_mut().unwrap().try_wait(), Ok(None))
    }
    /// Waits up to `timeout`; on timeout kills the process and panics with
    /// its output so far.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let end = Instant::now() + timeout;
        let mut child = self.child.take().unwrap();
        let (status, timed_out) = loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                break (st, false);
            }
            if Instant::now() >= end {
                let _ = child.kill();
                break (child.wait().expect("wait"), true);
            }
            thread::sleep(Duration::from_millis(5));
        };
        let o = Output {
            what: self.what.clone(),
            status,
            stdout: self.out.take().unwrap().join().unwrap_or_default(),
            stderr: self.err.take().unwrap().join().unwrap_or_default(),
            elapsed: self.start.elapsed(),
        };
        assert!(!timed_out, "timed out after {timeout:?}, killed\n{o}");
        o
    }
    /// Kills with SIGKILL and collects the output.
    pub fn kill9(self) -> Output {
        self.signal(Signal::SIGKILL);
        self.wait(Duration::from_secs(5))
    }
    pub fn default_wait(self) -> Output {
        let t = self.timeout;
        self.wait(t)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The byte count of the last summary line of `cmd` (`backup`/`restore`):
/// the integer right before the word `bytes`.
pub fn summary_bytes(stderr: &str, cmd: &str) -> Option<u64> {
    let tag = format!("{cmd}:");
    for line in stderr.lines().rev() {
        let Some(at) = line.find(&tag) else { continue };
        let words: Vec<&str> = line[at + tag.len()..].split_whitespace().collect();
        for w in words.windows(2) {
            if w[1].trim_end_matches(',') == "bytes" {
                if let Ok(n) = w[0].parse() {
                    return Some(n);
                }
            }
        }
    }
    None
}

/// Panics unless the summary of `cmd` in `o`'s stderr reports exactly `n` bytes.
pub fn assert_summary_bytes(o: &Output, cmd: &str, n: u64) {
    assert_eq!(
        summary_bytes(&o.err(), cmd),
        Some(n),
        "summary line `{cmd}: ... {n} bytes` expected\n{o}"
    );
}

// ---------------------------------------------------------------- trees

/// A time in the past with nanoseconds: `(secs, nanos)`.
pub type T = (i64, u32);

/// Sets the mtime (and atime) of `p` without following a symlink.
pub fn set_mtime(p: &Path, t: T) {
    let ts = TimeSpec::new(t.0, t.1 as _);
    utimensat(None, p, &ts, &ts, UtimensatFlags::NoFollowSymlink)
        .unwrap_or_else(|e| panic!("utimensat {p:?}: {e}"));
}

pub fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {p:?}: {e}"));
}

/// Deterministic pseudo-random bytes (xorshift64).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Writes `mib` MiB of incompressible data fast: one random MiB, stamped with
/// the chunk number so no two chunks are equal.
pub fn write_big(p: &Path, mib: usize, seed: u64) {
    let mut buf = random_bytes(seed, 1 << 20);
    let mut f =
        io::BufWriter::with_capacity(1 << 20, fs::File::create(p).expect("create big file"));
    for i in 0..mib {
        buf[..8].copy_from_slice(&(i as u64 ^ seed).to_le_bytes());
        f.write_all(&buf).expect("write big file");
    }
    f.into_inner().unwrap().sync_all().ok();
}

/// Builds a tree under `root`; directories get their mode and mtime in
/// [`Tree::finish`], deepest first, so creating children does not disturb them.
pub struct Tree {
    pub root: PathBuf,
    dirs: Vec<(PathBuf, u32, T)>,
    /// Sum of the sizes of the regular files written.
    pub bytes: u64,
    /// Number of regular files written.
    pub files: usize,
}

impl Tree {
    /// Creates `root` (mode and mtime applied by `finish`).
    pub fn new(root: &Path, mode: u32, t: T) -> Tree {
        fs::create_dir_all(root).expect("create tree root");
        Tree {
            root: root.to_path_buf(),
            dirs: vec![(root.to_path_buf(), mode, t)],
            bytes: 0,
            files: 0,
        }
    }
    pub fn path(&self, rel: impl AsRef<[u8]>) -> PathBuf {
        self.root.join(bpath(rel))
    }
    pub fn dir(&mut self, rel: impl AsRef<[u8]>, mode: u32, t: T) -> &mut Self {
        let p = self.path(rel);
        fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {p:?}: {e}"));
        self.dirs.push((p, mode, t));
        self
    }
    pub fn file(&mut self, rel: impl AsRef<[u8]>, content: &[u8], mode: u32, t: T) -> &mut Self {
        let p = self.path(rel);
        fs::write(&p, content).unwrap_or_else(|e| panic!("write {p:?}: {e}"));
        chmod(&p, mode);
        set_mtime(&p, t);
        self.bytes += content.len() as u64;
        self.files += 1;
        self
    }
    pub fn link(&mut self, rel: impl AsRef<[u8]>, target: impl AsRef<[u8]>, t: T) -> &mut Self {
        let p = self.path(rel);
        std::os::unix::fs::symlink(bpath(target), &p)
            .unwrap_or_else(|e| panic!("symlink {p:?}: {e}"));
        set_mtime(&p, t);
        self
    }
    pub fn fifo(&mut self, rel: impl AsRef<[u8]>) -> &mut Self {
        let p = self.path(rel);
        nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o644))
            .unwrap_or_else(|e| panic!("mkfifo {p:?}: {e}"));
        self
    }
    /// Applies directory modes and mtimes, deepest first.
    pub fn finish(&mut self) -> &mut Self {
        let mut dirs = self.dirs.clone();
        dirs.sort_by_key(|(p, _, _)| std::cmp::Reverse(p.components().count()));
        for (p, mode, t) in dirs {
            chmod(&p, mode);
            set_mtime(&p, t);
        }
        self
    }
}

/// A small ordinary tree: `root/{a.txt, sub/b.bin, sub/l -> ../a.txt}`.
pub fn small_tree(root: &Path, seed: u64) -> Tree {
    let mut t = Tree::new(root, 0o755, (1_600_000_000, 1));
    t.file(
        "a.txt",
        format!("hello {seed}\n").as_bytes(),
        0o644,
        (1_600_000_001, 2),
    )
    .dir("sub", 0o750, (1_600_000_002, 3))
    .file(
        "sub/b.bin",
        &random_bytes(seed, 70_000),
        0o600,
        (1_600_000_003, 4),
    )
    .link("sub/l", "../a.txt", (1_600_000_004, 5))
    .finish();
    t
}

/// The awkward tree of the round-trip tests (no fifo; add one if wanted).
pub fn awkward_tree(root: &Path) -> Tree {
    let t0: T = (1_000_000_000, 123_456_789);
    let mut t = Tree::new(root, 0o755, t0);
    t.dir("empty dir", 0o700, (1_100_000_000, 1))
        .file("empty", b"", 0o644, (1_100_000_001, 999_999_999))
        .file("zero.0600", b"", 0o600, (1_100_000_002, 0))
        .file(
            "big.bin",
            &random_bytes(42, 5 << 20),
            0o644,
            (1_200_000_000, 500_000_001),
        )
        .file(
            "name with spaces.txt",
            b"spaces\n",
            0o644,
            (1_200_000_001, 7),
        )
        .file("tab\there", b"tab\n", 0o644, (1_200_000_002, 8))
        .file(
            "üñí çødé 日本.txt",
            "ünïcode\n".as_bytes(),
            0o644,
            (1_200_000_003, 9),
        )
        .file("new\nline", b"newline\n", 0o644, (1_200_000_004, 10))
        .file(
            b"bad\xff\xfename",
            b"not utf-8\n",
            0o644,
            (1_200_000_005, 11),
        )
        .file("back\\slash", b"backslash\n", 0o644, (1_200_000_006, 12))
        .file("-dash", b"dash\n", 0o644, (1_200_000_007, 13))
        .file(
            &[b'n'; 255][..],
            b"longest name\n",
            0o644,
            (1_200_000_008, 14),
        )
        .file(
            "exec.sh",
            b"#!/bin/sh\necho hi\n",
            0o755,
            (1_200_000_009, 15),
        )
        .file("setgid", b"sgid\n", 0o2750, (1_200_000_010, 16))
        .file("old", b"before 1970\n", 0o444, (-86_400 * 365, 250_000_000))
        .file("future", b"after 2038\n", 0o644, (2_208_988_800, 1))
        .dir("nested", 0o755, (1_300_000_000, 100))
        .dir("nested/a", 0o711, (1_300_000_001, 101))
        .dir("nested/a/b", 0o755, (1_300_000_002, 102))
        .dir("nested/a/b/c", 0o755, (1_300_000_003, 103))
        .file(
            "nested/a/b/c/deep.txt",
            b"deep\n",
            0o400,
            (1_300_000_004, 104),
        )
        .dir("nested/ro", 0o555, (1_300_000_005, 105))
        .file(
            "nested/ro/inside",
            b"inside a read-only dir\n",
            0o644,
            (1_300_000_006, 106),
        )
        .dir("sticky", 0o1777, (1_300_000_007, 107))
        .link("link_rel", "nested/a/b/c/deep.txt", (1_400_000_000, 200))
        .link("link_dangling", "does/not/exist", (1_400_000_001, 201))
        .link(
            "link_abs",
            "/nonexistent/absolute target",
            (1_400_000_002, 202),
        )
        .link("link_dir", "nested", (1_400_000_003, 203))
        .link("nested/a/link_up", "../../empty", (1_400_000_004, 204))
        .finish();
    t
}

fn kind_of(ft: &fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_fifo() {
        "fifo"
    } else {
        "special"
    }
}

/// True if the two files have the same bytes (streamed, for big files).
pub fn same_content(a: &Path, b: &Path) -> bool {
    let (Ok(fa), Ok(fb)) = (fs::File::open(a), fs::File::open(b)) else {
        return false;
    };
    let (mut ra, mut rb) = (
        BufReader::with_capacity(1 << 20, fa),
        BufReader::with_capacity(1 << 20, fb),
    );
    loop {
        let (ba, bb) = match (ra.fill_buf(), rb.fill_buf()) {
            (Ok(x), Ok(y)) => (x, y),
            _ => return false,
        };
        if ba.is_empty() || bb.is_empty() {
            return ba.is_empty() && bb.is_empty();
        }
        let n = ba.len().min(bb.len());
        if ba[..n] != bb[..n] {
            return false;
        }
        ra.consume(n);
        rb.consume(n);
    }
}

/// Differences between tree `a` and tree `b` (type, content, mode, mtime in
/// ns, link target, entries), ignoring the paths of `a` listed in `skip`
/// (relative to `a`).
pub fn tree_diff(a: &Path, b: &Path, skip: &[&Path]) -> Vec<String> {
    let mut diffs = Vec::new();
    diff_rec(a, b, Path::new(""), skip, &mut diffs);
    diffs
}

fn diff_rec(a: &Path, b: &Path, rel: &Path, skip: &[&Path], out: &mut Vec<String>) {
    // `x.join("")` appends a slash, which would follow a symlink `x`.
    let (pa, pb) = if rel.as_os_str().is_empty() {
        (a.to_path_buf(), b.to_path_buf())
    } else {
        (a.join(rel), b.join(rel))
    };
    let show = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let (ma, mb) = match (fs::symlink_metadata(&pa), fs::symlink_metadata(&pb)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) => return out.push(format!("{show:?}: cannot stat in a: {e}")),
        (_, Err(e)) => return out.push(format!("{show:?}: missing in b: {e}")),
    };
    let (ka, kb) = (kind_of(&ma.file_type()), kind_of(&mb.file_type()));
    if ka != kb {
        return out.push(format!("{show:?}: {ka} in a, {kb} in b"));
    }
    if ka != "symlink" && ma.mode() & 0o7777 != mb.mode() & 0o7777 {
        out.push(format!(
            "{show:?}: mode {:o} in a, {:o} in b",
            ma.mode() & 0o7777,
            mb.mode() & 0o7777
        ));
    }
    if (ma.mtime(), ma.mtime_nsec()) != (mb.mtime(), mb.mtime_nsec()) {
        out.push(format!(
            "{show:?} ({ka}): mtime {}.{:09} in a, {}.{:09} in b",
            ma.mtime(),
            ma.mtime_nsec(),
            mb.mtime(),
            mb.mtime_nsec()
        ));
    }
    match ka {
        "file" => {
            if ma.len() != mb.len() {
                out.push(format!(
                    "{show:?}: size {} in a, {} in b",
                    ma.len(),
                    mb.len()
                ));
            } else if !same_content(&pa, &pb) {
                out.push(format!("{show:?}: content differs"));
            }
        }
        "symlink" => {
            let (ta, tb) = (fs::read_link(&pa).ok(), fs::read_link(&pb).ok());
            if ta != tb {
                out.push(format!("{show:?}: link target {ta:?} in a, {tb:?} in b"));
            }
        }
        "dir" => {
            let names = |p: &Path| -> Vec<OsString> {
                let mut v: Vec<OsString> = fs::read_dir(p)
                    .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
                    .unwrap_or_default();
                v.sort();
                v
            };
            let na: Vec<OsString> = names(&pa)
                .into_iter()
                .filter(|n| !skip.contains(&rel.join(n).as_path()))
                .collect();
            let nb = names(&pb);
            for n in &na {
                if !nb.contains(n) {
                    out.push(format!("{:?}: missing in b", rel.join(n)));
                }
            }
            for n in &nb {
                if !na.contains(n) {
                    out.push(format!("{:?}: extra in b", rel.join(n)));
                }
            }
            for n in na.iter().filter(|n| nb.contains(n)) {
                diff_rec(a, b, &rel.join(n), skip, out);
            }
        }
        _ => {}
    }
}

/// Panics listing every difference between trees `a` and `b`.
pub fn assert_same_tree(a: &Path, b: &Path) {
    assert_same_tree_except(a, b, &[]);
}

/// [`assert_same_tree`] ignoring the listed paths of `a` (relative to `a`).
pub fn assert_same_tree_except(a: &Path, b: &Path, skip: &[&Path]) {
    let d = tree_diff(a, b, skip);
    assert!(
        d.is_empty(),
        "trees differ: a={a:?} b={b:?}\n  {}",
        d.join("\n  ")
    );
}

/// Every path under `dir` (not following symlinks) whose name starts with
/// `.rsb-tmp.`.
pub fn find_tmp(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_name().as_bytes().starts_with(b".rsb-tmp.") {
                found.push(p.clone());
            }
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            }
        }
    }
    found
}

/// True for the partial of a large file that the server keeps, hidden,
/// so that an interrupted transfer can resume (`.rsb-tmp.part.*`).
pub fn is_partial(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.as_bytes().starts_with(b".rsb-tmp.part."))
}

/// `.rsb-tmp.*` files under `dir` other than resumable partials.
pub fn find_stray_tmp(dir: &Path) -> Vec<PathBuf> {
    find_tmp(dir)
        .into_iter()
        .filter(|p| !is_partial(p))
        .collect()
}

/// Waits up to 5 s for every `.rsb-tmp.*` under the server root to go away,
/// except the hidden partials kept for resuming large files.
pub fn assert_no_tmp_soon(srv: &Server) {
    let root = srv.root().to_path_buf();
    if !wait_until(Duration::from_secs(5), || find_stray_tmp(&root).is_empty()) {
        panic!(
            "temporary files left in the store: {:?}",
            find_stray_tmp(&root)
        );
    }
}

/// Panics unless the directory holding the server root holds only `root`.
pub fn assert_only_root(srv: &Server) {
    let mut names: Vec<OsString> = fs::read_dir(srv.base())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![OsString::from("root")],
        "something was created next to the server root"
    );
}

/// Backs up a fresh small tree with the real client and checks the store:
/// proves the server is alive and sane.
pub fn assert_healthy(srv: &Server) {
    let s = scratch();
    let src = s.join("healthy");
    small_tree(&src, 7);
    srv.client(["backup".as_ref(), src.as_os_str()]).run().ok();
    assert_same_tree(&src, &srv.store(NAME, &src));
}

// ---------------------------------------------------------------- raw frames

/// A raw TCP connection to a server, speaking frames by hand.
pub struct Raw {
    pub s: TcpStream,
    buf: Vec<u8>,
}

/// One result of [`Raw::recv`].
#[derive(Debug)]
pub enum Recv {
    Frame(Frame),
    /// EOF or connection reset.
    Closed,
    Timeout,
    /// The server sent bytes that do not decode.
    Garbage(String),
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5))
            .expect("connect");
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_nodelay(true).unwrap();
        Raw { s, buf: Vec::new() }
    }

    /// Connects, sends a valid `Hello` for `name` and expects `Welcome`.
    pub fn hello(port: u16, name: &str) -> Raw {
        let mut r = Raw::connect(port);
        r.send(&hello(name));
        match r.recv(Duration::from_secs(5)) {
            Recv::Frame(Frame::Welcome { .. }) => r,
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    /// Connects and says `Hello` as `name` with client nonce `nc` to a
    /// server with `--secrets`; returns the connection and the server's
    /// nonce from its `Challenge`.
    pub fn challenged(port: u16, name: &str, nc: &[u8]) -> (Raw, Vec<u8>) {
        let mut r = Raw::connect(port);
        r.send(&Frame::Hello {
            version: rsb::proto::VERSION,
            name: name.to_string(),
            flags: 0,
            nonce: nc.to_vec(),
        });
        match r.recv(Duration::from_secs(5)) {
            Recv::Frame(Frame::Challenge { nonce }) => (r, nonce),
            other => panic!("expected Challenge, got {other:?}"),
        }
    }

    /// Authenticates as `name` with `secret` (fresh nonce), checks the
    /// server's proof in its `Welcome` and returns the connection.
    pub fn authenticated(port: u16, name: &str, secret: &[u8]) -> Raw {
        let nc = random_bytes(port as u64 ^ 0xa5a5, rsb::proto::NONCE_LEN);
        let (mut r, ns) = Raw::challenged(port, name, &nc);
        let key = rsb::auth::Key::from_secret(secret);
        r.send(&Frame::Proof {
            mac: key.client_proof(name, &nc, &ns).to_vec(),
        });
        match r.recv(Duration::from_secs(5)) {
            Recv::Frame(Frame::Welcome { flags, proof, .. }) => {
                assert_ne!(flags & rsb::proto::WELCOME_AUTHENTICATED, 0);
                assert!(
                    key.is_server_proof(&proof, name, &nc, &ns),
                    "the server's proof does not check out"
                );
                r
            }
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    /// Sends `bytes` and collects the answers until `Committed`/`Done`
    /// with `id`, or the close; body bytes after `File`/`FileFrom` frames
    /// are collected too.
    pub fn exchange(&mut self, bytes: &[u8], id: u32, timeout: Duration) -> (Vec<Frame>, Vec<u8>) {
        let _ = self.send_raw(bytes);
        let (mut frames, mut bodies) = (Vec::new(), Vec::new());
        loop {
            match self.recv(timeout) {
                Recv::Frame(f) => {
                    let end =
                        matches!(f, Frame::Committed { id: i } | Frame::Done { id: i } if i == id);
                    let body = match f {
                        Frame::File { size, .. } => size,
                        Frame::FileFrom { size, offset, .. } => size.saturating_sub(offset),
                        _ => 0,
                    };
                    if body > 0 {
                        bodies.extend(self.recv_body(body as usize, timeout).unwrap_or_default());
                    }
                    frames.push(f);
                    if end {
                        return (frames, bodies);
                    }
                }
                Recv::Closed => return (frames, bodies),
                other => panic!("waiting for {id}: {other:?} after {frames:?}"),
            }
        }
    }

    pub fn send(&mut self, f: &Frame) {
        self.s.write_all(&to_vec(f)).expect("send frame");
    }
    /// Sends bytes, ignoring errors (the server may already have closed).
    pub fn send_raw(&mut self, b: &[u8]) -> io::Result<()> {
        self.s.write_all(b)
    }
    /// Half-closes the sending side.
    pub fn shutdown_write(&self) {
        let _ = self.s.shutdown(Shutdown::Write);
    }

    fn fill(&mut self, deadline: Instant) -> Option<Recv> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Some(Recv::Timeout);
        }
        self.s.set_read_timeout(Some(left)).unwrap();
        let mut tmp = [0u8; 65536];
        match self.s.read(&mut tmp) {
            Ok(0) => Some(Recv::Closed),
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                None
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Some(Recv::Timeout)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
            Err(_) => Some(Recv::Closed),
        }
    }

    /// The next frame, or why there is none.
    pub fn recv(&mut self, timeout: Duration) -> Recv {
        let deadline = Instant::now() + timeout;
        loop {
            match decode(&self.buf) {
                Ok(Decoded::Frame(f, n)) => {
                    self.buf.drain(..n);
                    return Recv::Frame(f);
                }
                Ok(Decoded::Partial) => {}
                Err(e) => return Recv::Garbage(e.to_string()),
            }
            if let Some(r) = self.fill(deadline) {
                return r;
            }
        }
    }

    /// Exactly `n` raw body bytes (after a `File` frame).
    pub fn recv_body(&mut self, n: usize, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        while self.buf.len() < n {
            if self.fill(deadline).is_some() {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// The next frame; panics on anything else.
    pub fn expect_frame(&mut self, timeout: Duration) -> Frame {
        match self.recv(timeout) {
            Recv::Frame(f) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Reads until the server closes; returns the frames it sent first.
    /// Panics if the connection is still open after `timeout`.
    pub fn expect_closed(&mut self, timeout: Duration) -> Vec<Frame> {
        let deadline = Instant::now() + timeout;
        let mut frames = Vec::new();
        loop {
            match self.recv(deadline.saturating_duration_since(Instant::now())) {
                Recv::Frame(f) => frames.push(f),
                Recv::Closed => return frames,
                Recv::Timeout => {
                    panic!("server did not close the connection within {timeout:?}; got {frames:?}")
                }
                // A server answering nonsense is still wrong, but keep reading
                // until it closes so the report shows the first problem.
                Recv::Garbage(e) => panic!("server sent undecodable bytes ({e}) after {frames:?}"),
            }
        }
    }
}

pub fn hello(name: &str) -> Frame {
    Frame::Hello {
        version: rsb::proto::VERSION,
        name: name.to_string(),
        flags: 0,
        nonce: vec![],
    }
}

pub fn meta(mode: u32) -> Meta {
    Meta {
        mode,
        mtime: Time {
            secs: 1_500_000_000,
            nanos: 42,
        },
    }
}

pub fn wpath(p: &str) -> WirePath {
    WirePath::new(p.as_bytes().to_vec()).expect("valid wire path")
}

/// `kind len:u32 payload`, by hand.
pub fn raw_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A `bytes` field: `len:u32 data`.
pub fn enc_bytes(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

/// A `meta` field: `mode:u32 secs:i64 nanos:u32` (mtime as in [`meta`]).
pub fn enc_meta(mode: u32) -> Vec<u8> {
    let m = meta(mode);
    [
        m.mode.to_be_bytes().to_vec(),
        m.mtime.secs.to_be_bytes().to_vec(),
        m.mtime.nanos.to_be_bytes().to_vec(),
    ]
    .concat()
}

/// Hand-encoded frames carrying any path bytes (the codec refuses bad ones).
pub fn raw_dir(id: u32, path: &[u8]) -> Vec<u8> {
    raw_frame(
        10,
        &[id.to_be_bytes().to_vec(), enc_bytes(path), enc_meta(0o755)].concat(),
    )
}
pub fn raw_symlink(id: u32, path: &[u8], target: &[u8]) -> Vec<u8> {
    raw_frame(
        11,
        &[
            id.to_be_bytes().to_vec(),
            enc_bytes(path),
            enc_bytes(target),
            enc_meta(0o777),
        ]
        .concat(),
    )
}
pub fn raw_file(id: u32, path: &[u8], size: u64) -> Vec<u8> {
    raw_frame(
        12,
        &[
            id.to_be_bytes().to_vec(),
            enc_bytes(path),
            enc_meta(0o644),
            size.to_be_bytes().to_vec(),
        ]
        .concat(),
    )
}
pub fn raw_list(id: u32, path: &[u8]) -> Vec<u8> {
    raw_frame(20, &[id.to_be_bytes().to_vec(), enc_bytes(path)].concat())
}
pub fn raw_restore(id: u32, path: &[u8]) -> Vec<u8> {
    raw_frame(22, &[id.to_be_bytes().to_vec(), enc_bytes(path)].concat())
}
/// A `Hello` with any magic, version, name and flags.
pub fn raw_hello(magic: &[u8; 4], version: u16, name: &[u8], flags: u32) -> Vec<u8> {
    raw_frame(
        1,
        &[
            magic.to_vec(),
            version.to_be_bytes().to_vec(),
            enc_bytes(name),
            flags.to_be_bytes().to_vec(),
            enc_bytes(b""),
        ]
        .concat(),
    )
}

/// `File` + body + `FileEnd` (with the right crc unless `crc` is given).
pub fn file_frames(id: u32, path: &str, body: &[u8], crc: Option<u32>, ok: bool) -> Vec<u8> {
    let mut v = to_vec(&Frame::File {
        id,
        path: wpath(path),
        meta: meta(0o644),
        size: body.len() as u64,
    });
    v.extend_from_slice(body);
    v.extend_from_slice(&to_vec(&Frame::FileEnd {
        id,
        crc: crc.unwrap_or_else(|| crc32c::crc32c(body)),
        ok,
    }));
    v
}

/// `argv!["backup", &path, ...]`: a `Vec<OsString>` from anything that is
/// `AsRef<OsStr>` (str, String, Path, PathBuf, OsStr).
macro_rules! argv {
    () => {
        ::std::vec::Vec::<::std::ffi::OsString>::new()
    };
    ($($x:expr),+ $(,)?) => {
        vec![$(::std::ffi::OsString::from(::std::convert::AsRef::<::std::ffi::OsStr>::as_ref(&$x))),*]
    };
}

// ---------------------------------------------------------------- fake server

/// Reads frames until one satisfies `want`; returns it.
pub fn read_until(
    s: &mut std::net::TcpStream,
    buf: &mut Vec<u8>,
    want: impl Fn(&Frame) -> bool,
) -> Frame {
    loop {
        if let Ok(Decoded::Frame(f, n)) = decode(buf) {
            buf.drain(..n);
            if want(&f) {
                return f;
            }
            continue;
        }
        let mut tmp = [0u8; 4096];
        let n = s.read(&mut tmp).expect("read from client");
        assert!(n > 0, "client closed early");
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// A one-connection fake server on 127.0.0.1 (for hostile-server tests): welcomes the client, waits for its
/// `Restore`, then sends what `script` builds for that request id.
pub fn fake_restore_server(
    script: impl FnOnce(u32) -> Vec<u8> + Send + 'static,
) -> (u16, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        read_until(&mut s, &mut buf, |f| matches!(f, Frame::Hello { .. }));
        s.write_all(&to_vec(&Frame::Welcome {
            version: rsb::proto::VERSION,
            flags: 0,
            proof: vec![],
        }))
        .unwrap();
        let id = match read_until(&mut s, &mut buf, |f| matches!(f, Frame::Restore { .. })) {
            Frame::Restore { id, .. } => id,
            _ => unreachable!(),
        };
        let _ = s.write_all(&script(id));
        // Let the client finish reading before the socket closes.
        let mut sink = [0u8; 1024];
        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
    });
    (port, h)
}
