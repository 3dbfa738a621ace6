//! Raw frames: a TCP connection to a server speaking frames by hand, and
//! encoders for frames the codec itself would refuse to build.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use rsb::proto::codec::to_vec;
use rsb::proto::{decode, Decoded, Frame, Meta, Time, WirePath};

use super::*;

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

    /// Connects from the loopback source address `src` (127.x.y.z), to
    /// show per-address limits on one machine.
    pub fn connect_from(src: std::net::Ipv4Addr, port: u16) -> Raw {
        use socket2::{Domain, Socket, Type};
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        sock.bind(&std::net::SocketAddr::from((src, 0)).into())
            .expect("bind source");
        sock.connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)).into(),
            Duration::from_secs(5),
        )
        .expect("connect");
        let s: TcpStream = sock.into();
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
        uid: 0,
        gid: 0,
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
        m.uid.to_be_bytes().to_vec(),
        m.gid.to_be_bytes().to_vec(),
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
            // Layout: dense.
            vec![0],
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
        layout: Default::default(),
    });
    v.extend_from_slice(body);
    v.extend_from_slice(&to_vec(&Frame::FileEnd {
        id,
        crc: crc.unwrap_or_else(|| crc32c::crc32c(body)),
        ok,
    }));
    v
}
