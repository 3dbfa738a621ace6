//! Processes under test: the real `rsb-server` (started on an ephemeral
//! port, its log collected, killed on drop), client commands with piped
//! stdin and a timeout, and the summary lines they print. Every wait is
//! bounded.

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::*;

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

    /// [`Server::start_on`] with extra environment variables (`port` 0:
    /// an ephemeral one).
    pub fn start_on_with_env(
        root: &Path,
        port: u16,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        Server::spawn(root, args, None, port, env)
    }

    /// Starts a server whose files may grow to `bytes` at most
    /// (RLIMIT_FSIZE): writing more fails with EFBIG, as on a full disk.
    pub fn start_with_file_size_limit(args: &[&str], bytes: u64) -> Server {
        let base = scratch();
        let mut s = Server::spawn(&base.join("root"), args, Some(bytes), 0, &[]);
        s.base = Some(base);
        s
    }

    /// Starts a server running as user and group `id` (not root), on a
    /// fresh root `BASE/root` made for and owned by that user.
    pub fn start_as_user(id: u32, args: &[&str]) -> Server {
        use std::os::unix::fs::PermissionsExt;
        let base = scratch();
        let root = base.join("root");
        fs::create_dir(&root).unwrap();
        std::os::unix::fs::chown(&root, Some(id), Some(id)).unwrap();
        fs::set_permissions(base.path(), fs::Permissions::from_mode(0o711)).unwrap();
        let mut s = Server::spawn_as(&root, args, None, 0, &[], Some(id));
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
        Server::spawn_as(root, args, fsize, port, env, None)
    }

    fn spawn_as(
        root: &Path,
        args: &[&str],
        fsize: Option<u64>,
        port: u16,
        env: &[(&str, &str)],
        user: Option<u32>,
    ) -> Server {
        use std::os::unix::process::CommandExt;

        let mut cmd = Command::new(SERVER);
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-d"])
            .arg(root)
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(id) = user {
            use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
            // SAFETY: setgroups, setgid and setuid are async-signal-safe;
            // nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    setgroups(&[]).map_err(std::io::Error::from)?;
                    setgid(Gid::from_raw(id)).map_err(std::io::Error::from)?;
                    setuid(Uid::from_raw(id)).map_err(std::io::Error::from)
                });
            }
        }
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
    /// The web interface's port, from the log line `web interface on
    /// http[s]://ADDR:PORT/` (printed before `listening on`, so it is in the
    /// log once a start returned). Panics when the server has no `--http`.
    pub fn web_port(&self) -> u16 {
        let log = self.log();
        log.lines()
            .find_map(parse_web_interface)
            .unwrap_or_else(|| {
                panic!("no `web interface on http://ADDR:PORT/` line in the log:\n{log}")
            })
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
    /// Whether the server's log says `s`, waiting up to 5 s for it: the
    /// server may log a commit after the client heard of it, and its
    /// stderr is read by another thread.
    pub fn log_has(&self, s: &str) -> bool {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            if self.log().contains(s) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
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

    /// [`Server::client`] run as user and group 65534 with no other
    /// groups (`setpriv`): a restorer that is not root. Needs root.
    pub fn client_as_nobody<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Cmd::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            CLIENT,
            "-n",
            NAME,
            "127.0.0.1",
        ])
        .arg(self.port.to_string())
        .args(args);
        c
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

/// Port from a line containing `web interface on http://ADDR:PORT/` (or
/// `https://`; ADDR may be `[v6]`).
pub fn parse_web_interface(line: &str) -> Option<u16> {
    let rest = &line[line.find("web interface on ")? + "web interface on ".len()..];
    let rest = rest
        .strip_prefix("http://")
        .or_else(|| rest.strip_prefix("https://"))?;
    let addr = rest.split(|c: char| c == '/' || c.is_whitespace()).next()?;
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
    /// Panics unless it succeeded and its summary says a backup sent no
    /// file (`backup: 0 files sent, ...`).
    pub fn sent_nothing(&self) -> &Self {
        self.ok();
        assert!(
            self.err()
                .lines()
                .any(|l| l.starts_with("backup: 0 files sent")),
            "sent something\n{self}"
        );
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
    /// A file as stdin instead (a terminal, for prompt tests).
    stdin_file: Option<std::fs::File>,
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
            stdin_file: None,
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
    /// `file` as stdin (e.g. the slave side of a pseudo-terminal).
    pub fn stdin_file(&mut self, file: std::fs::File) -> &mut Self {
        self.stdin_file = Some(file);
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
    /// Runs the process as user and group `id`, with no other groups (a
    /// client that is not root; the tests run as root).
    pub fn as_user(&mut self, id: u32) -> &mut Self {
        use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
        use std::os::unix::process::CommandExt;
        // SAFETY: setgroups, setgid and setuid are async-signal-safe;
        // nothing else runs between fork and exec.
        unsafe {
            self.cmd.pre_exec(move || {
                setgroups(&[]).map_err(std::io::Error::from)?;
                setgid(Gid::from_raw(id)).map_err(std::io::Error::from)?;
                setuid(Uid::from_raw(id)).map_err(std::io::Error::from)
            });
        }
        self
    }

    /// Starts the process without waiting.
    pub fn spawn(&mut self) -> Running {
        self.cmd
            .stdin(match (self.stdin_file.take(), &self.stdin) {
                (Some(f), _) => Stdio::from(f),
                (None, Some(_)) => Stdio::piped(),
                (None, None) => Stdio::null(),
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
            if matches!(w[1].trim_end_matches(','), "bytes" | "byte") {
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

/// The resident set size of process `pid`, in KiB (`VmRSS` of
/// `/proc/PID/status`).
pub fn vm_rss_kib(pid: Pid) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// Waits up to `limit` for `cond`, looking every 20 ms; true if it came.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A port nobody listens on now, where a server on `root` was: a server
/// is started there to learn one, then killed (clients that start while
/// their server is away; [`Server::start_on`] brings it back).
pub fn port_of_a_server_gone(root: &Path) -> u16 {
    Server::start_at(root, &[]).port()
}
