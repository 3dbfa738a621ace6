//! Tests of the TLS layer: a real rustls client (in a thread, blocking)
//! against a [`TlsSession`] over a non-blocking mio socket driven the way
//! the web connection drives it; the certificate files; openssl as the
//! outside judge of fingerprints and key formats.

use super::*;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

const MIB: usize = 1024 * 1024;

/// Bytes that do not repeat on any short period, so a lost or doubled
/// record shows.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The server's side of one connection: the session over a non-blocking
/// mio socket and a Poll that waits for its (edge-triggered) readiness.
struct Side {
    sock: mio::net::TcpStream,
    session: TlsSession,
    poll: Poll,
    events: Events,
    deadline: Instant,
}

impl Side {
    fn wait(&mut self) {
        assert!(Instant::now() < self.deadline, "the test took too long");
        self.poll
            .poll(&mut self.events, Some(Duration::from_millis(50)))
            .unwrap();
    }

    /// One read_plain into `out` (at most `max`) and a flush; what it said.
    fn read_some(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<Progress> {
        let p = self.session.read_plain(&mut self.sock, out, max)?;
        if p.wants_write {
            self.session.flush(&mut self.sock)?;
        }
        Ok(p)
    }

    /// Reads until `n` plaintext bytes or the peer's end.
    fn read_until(&mut self, n: usize) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        loop {
            let p = self.read_some(&mut out, 64 * 1024).unwrap();
            if out.len() >= n || p.eof {
                return (out, p.eof);
            }
            if !p.more {
                self.wait();
            }
        }
    }

    fn handshake(&mut self) {
        let mut scratch = Vec::new();
        while self.session.is_handshaking() {
            let p = self.read_some(&mut scratch, 1024).unwrap();
            assert!(!p.eof, "the client left during the handshake");
            if self.session.is_handshaking() {
                self.wait();
            }
        }
        self.session.flush(&mut self.sock).unwrap();
        assert!(scratch.is_empty(), "data taken for the handshake's");
    }

    /// Sends `data` the way the body loop does: offer, flush, wait for
    /// writable when the session takes nothing.
    fn send_all(&mut self, data: &[u8]) {
        self.handshake();
        let mut sent = 0;
        loop {
            let took = self.session.write_plain(&data[sent..]).unwrap();
            sent += took;
            let flushed = self.session.flush(&mut self.sock).unwrap();
            if sent == data.len() && flushed {
                return;
            }
            if !flushed {
                self.wait();
            }
        }
    }
}

/// A TCP pair on loopback: the server's end non-blocking under mio, the
/// client's end blocking.
fn tcp_pair() -> (mio::net::TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    (mio::net::TcpStream::from_std(server), client)
}

fn side(tls: &Tls, mut sock: mio::net::TcpStream) -> Side {
    let poll = Poll::new().unwrap();
    poll.registry()
        .register(&mut sock, Token(0), Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    Side {
        sock,
        session: tls.session().unwrap(),
        poll,
        events: Events::with_capacity(8),
        deadline: Instant::now() + Duration::from_secs(60),
    }
}

/// A server certificate made in a fresh folder, and a client
/// configuration that trusts it (and asks for http/1.1 by ALPN).
fn server_and_client() -> (tempfile::TempDir, Tls, Arc<ClientConfig>) {
    let dir = tempfile::tempdir().unwrap();
    let names = ["127.0.0.1".to_string(), "localhost".to_string()];
    let tls = Tls::self_signed(dir.path(), &names).unwrap();
    let client = client_config(&dir.path().join(".rsb-tls/cert.pem"), None);
    (dir, tls, client)
}

fn client_config(cert: &Path, suite: Option<rustls::SupportedCipherSuite>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(cert).unwrap())
        .unwrap();
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(suite) = suite {
        provider.cipher_suites = vec![suite];
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

fn client(
    config: &Arc<ClientConfig>,
    sock: TcpStream,
    name: &str,
) -> StreamOwned<ClientConnection, TcpStream> {
    let name = ServerName::try_from(name.to_string()).unwrap();
    StreamOwned::new(ClientConnection::new(config.clone(), name).unwrap(), sock)
}

#[test]
fn handshake_then_4_mib_each_way_byte_exact() {
    let (_dir, tls, config) = server_and_client();
    let (server_sock, client_sock) = tcp_pair();
    let request = pattern(4 * MIB, 1);
    let answer = pattern(4 * MIB, 2);
    let (req, ans) = (request.clone(), answer.len());
    let peer = thread::spawn(move || {
        let mut c = client(&config, client_sock, "localhost");
        c.write_all(&req).unwrap();
        c.flush().unwrap();
        let mut got = vec![0; ans];
        c.read_exact(&mut got).unwrap();
        let alpn = c.conn.alpn_protocol().map(|p| p.to_vec());
        (got, alpn)
    });
    let mut s = side(&tls, server_sock);
    let (got, eof) = s.read_until(request.len());
    assert!(!eof);
    assert!(got == request, "the request arrived changed");
    assert!(!s.session.is_handshaking());
    assert_eq!(s.session.alpn_protocol(), Some(&b"http/1.1"[..]));
    s.send_all(&answer);
    let (got, alpn) = peer.join().unwrap();
    assert!(got == answer, "the answer arrived changed");
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
}

#[test]
fn an_ip_address_name_is_in_the_certificate() {
    let (_dir, tls, config) = server_and_client();
    let (server_sock, client_sock) = tcp_pair();
    let peer = thread::spawn(move || {
        let mut c = client(&config, client_sock, "127.0.0.1");
        c.write_all(b"ping").unwrap();
        let mut got = [0; 4];
        c.read_exact(&mut got).unwrap();
        got
    });
    let mut s = side(&tls, server_sock);
    assert_eq!(s.read_until(4).0, b"ping");
    s.send_all(b"pong");
    assert_eq!(&peer.join().unwrap(), b"pong");
}

#[test]
fn read_plain_stops_at_max_and_says_more() {
    let (_dir, tls, config) = server_and_client();
    let (server_sock, client_sock) = tcp_pair();
    let request = pattern(100_000, 3);
    let req = request.clone();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let mut c = client(&config, client_sock, "localhost");
        c.write_all(&req).unwrap();
        c.flush().unwrap();
        // Keeps the connection open until the server has read it all.
        let _ = done_rx.recv();
    });
    let mut s = side(&tls, server_sock);
    let mut out = Vec::new();
    let mut saw_more = false;
    while out.len() < request.len() {
        let before = out.len();
        let p = s.read_some(&mut out, 1000).unwrap();
        assert!(p.read <= 1000 && p.read == out.len() - before);
        assert!(!p.eof);
        saw_more |= p.more;
        if !p.more {
            s.wait();
        }
    }
    assert!(saw_more, "a read stopped at max must say more");
    assert!(out == request);
    done_tx.send(()).unwrap();
    peer.join().unwrap();
}

#[test]
fn a_slow_reader_makes_write_plain_take_less_and_loses_nothing() {
    let (_dir, tls, config) = server_and_client();
    let (server_sock, client_sock) = tcp_pair();
    // Small kernel buffers, so the session's own bound is what shows.
    socket2::SockRef::from(&server_sock)
        .set_send_buffer_size(16 * 1024)
        .unwrap();
    socket2::SockRef::from(&client_sock)
        .set_recv_buffer_size(16 * 1024)
        .unwrap();
    let answer = pattern(16 * MIB, 4);
    let len = answer.len();
    let (ready_tx, ready_rx) = mpsc::channel();
    let peer = thread::spawn(move || {
        let mut c = client(&config, client_sock, "localhost");
        while c.conn.is_handshaking() {
            c.conn.complete_io(&mut c.sock).unwrap();
        }
        ready_tx.send(()).unwrap();
        // Not reading for a while, then reading slowly.
        thread::sleep(Duration::from_millis(600));
        let mut got = Vec::with_capacity(len);
        let mut buf = vec![0; 16 * 1024];
        while got.len() < len {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "the server ended early");
            got.extend_from_slice(&buf[..n]);
            if got.len() % MIB < n {
                thread::sleep(Duration::from_millis(5));
            }
        }
        got
    });
    let mut s = side(&tls, server_sock);
    s.handshake();
    ready_rx.recv().unwrap();
    // While the client does not read: the session takes a bounded amount.
    let mut sent = 0;
    let mut short = false;
    let pause = Instant::now() + Duration::from_millis(300);
    while Instant::now() < pause {
        let offer = &answer[sent..(sent + 64 * 1024).min(len)];
        let took = s.session.write_plain(offer).unwrap();
        short |= took < offer.len();
        sent += took;
        s.session.flush(&mut s.sock).unwrap();
        if took < offer.len() {
            s.wait();
        }
    }
    assert!(
        short,
        "write_plain took everything from a peer that reads nothing"
    );
    assert!(
        sent < SEND_BUFFER + MIB,
        "{sent} bytes taken while the peer read nothing"
    );
    s.send_all(&answer[sent..]);
    let got = peer.join().unwrap();
    assert_eq!(got.len(), len);
    assert!(got == answer, "the answer arrived changed");
}

#[test]
fn a_plain_http_request_is_an_error_of_that_connection_only() {
    let (_dir, tls, config) = server_and_client();
    let (server_sock, mut raw) = tcp_pair();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut s = side(&tls, server_sock);
    let mut out = Vec::new();
    let err = loop {
        match s.session.read_plain(&mut s.sock, &mut out, 4096) {
            Ok(p) => {
                assert!(!p.eof, "garbage taken as a clean end");
                s.wait();
            }
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(out.is_empty());
    // The last gasp: a TLS alert record (content type 21) reached the peer.
    let mut first = [0; 1];
    raw.read_exact(&mut first).unwrap();
    assert_eq!(first[0], 21);
    // The same configuration still serves the next connection.
    let (server_sock, client_sock) = tcp_pair();
    let peer = thread::spawn(move || {
        let mut c = client(&config, client_sock, "localhost");
        c.write_all(b"ok").unwrap();
        c.flush().unwrap();
        thread::sleep(Duration::from_millis(200));
    });
    let mut s = side(&tls, server_sock);
    assert_eq!(s.read_until(2).0, b"ok");
    peer.join().unwrap();
}

#[test]
fn a_truncated_client_hello_then_tcp_end_is_an_end_not_a_hang() {
    let (_dir, tls, _config) = server_and_client();
    let (server_sock, mut raw) = tcp_pair();
    // A handshake record header that promises 512 bytes, then 3 of them.
    raw.write_all(&[22, 3, 1, 2, 0, 1, 0, 1]).unwrap();
    raw.shutdown(Shutdown::Write).unwrap();
    let mut s = side(&tls, server_sock);
    let mut out = Vec::new();
    loop {
        match s.session.read_plain(&mut s.sock, &mut out, 4096) {
            Ok(p) if p.eof => break,
            Ok(_) => s.wait(),
            // rustls may also call a cut handshake an error: either ends it.
            Err(_) => break,
        }
    }
    assert!(out.is_empty());
}

#[test]
fn close_notify_is_eof_after_the_data() {
    let (_dir, tls, config) = server_and_client();
    let (server_sock, client_sock) = tcp_pair();
    let peer = thread::spawn(move || {
        let mut c = client(&config, client_sock, "localhost");
        c.write_all(b"hello").unwrap();
        c.conn.send_close_notify();
        c.flush().unwrap();
        thread::sleep(Duration::from_millis(200));
    });
    let mut s = side(&tls, server_sock);
    let (got, eof) = s.read_until(usize::MAX);
    assert_eq!(got, b"hello");
    assert!(eof);
    // Later calls keep saying so.
    let p = s.read_some(&mut Vec::new(), 100).unwrap();
    assert!(p.eof && p.read == 0);
    s.session.send_close_notify();
    assert!(s.session.wants_write());
    assert!(s.session.flush(&mut s.sock).unwrap());
    peer.join().unwrap();
}

#[test]
fn a_tcp_end_without_close_notify_is_eof_too() {
    let (_dir, tls, config) = server_and_client();
    let (server_sock, client_sock) = tcp_pair();
    let peer = thread::spawn(move || {
        let mut c = client(&config, client_sock, "localhost");
        c.write_all(b"cut").unwrap();
        c.flush().unwrap();
        c.sock.shutdown(Shutdown::Write).unwrap();
        thread::sleep(Duration::from_millis(200));
    });
    let mut s = side(&tls, server_sock);
    let (got, eof) = s.read_until(usize::MAX);
    assert_eq!(got, b"cut");
    assert!(eof);
    peer.join().unwrap();
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o777
}

#[test]
fn self_signed_is_made_once_then_reused() {
    let dir = tempfile::tempdir().unwrap();
    let names = vec![
        "0.0.0.0".to_string(),
        "127.0.0.1".to_string(),
        "[::1]".to_string(),
        "localhost".to_string(),
        "localhost".to_string(),
    ];
    let first = Tls::self_signed(dir.path(), &names).unwrap();
    let tls_dir = dir.path().join(".rsb-tls");
    let (cert, key) = (tls_dir.join("cert.pem"), tls_dir.join("key.pem"));
    assert_eq!(mode(&tls_dir), 0o700);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&cert), 0o644);
    let cert_pem = fs::read(&cert).unwrap();
    let key_pem = fs::read(&key).unwrap();
    assert!(cert_pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
    assert!(key_pem.starts_with(b"-----BEGIN PRIVATE KEY-----"));
    // No temporary file is left beside them.
    let mut left: Vec<_> = fs::read_dir(&tls_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["cert.pem", "key.pem"]);
    let fp = first.fingerprint();
    assert_eq!(fp.len(), 32 * 3 - 1);
    assert!(fp.split(':').all(|h| h.len() == 2
        && h.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())));
    let again = Tls::self_signed(dir.path(), &["other".to_string()]).unwrap();
    assert_eq!(again.fingerprint(), fp);
    assert_eq!(fs::read(&cert).unwrap(), cert_pem);
    assert_eq!(fs::read(&key).unwrap(), key_pem);
    if let Some(text) = openssl(&["x509", "-noout", "-ext", "subjectAltName", "-in"], &cert) {
        assert!(text.contains("DNS:localhost"), "{text}");
        assert!(text.contains("IP Address:127.0.0.1"), "{text}");
        assert!(text.contains("IP Address:0:0:0:0:0:0:0:1"), "{text}");
        assert!(!text.contains("0.0.0.0"), "{text}");
        assert_eq!(text.matches("DNS:localhost").count(), 1, "{text}");
    }
}

#[test]
fn a_half_made_pair_is_made_again_and_a_damaged_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["localhost".to_string()];
    let first = Tls::self_signed(dir.path(), &names).unwrap();
    let cert = dir.path().join(".rsb-tls/cert.pem");
    fs::remove_file(&cert).unwrap();
    let second = Tls::self_signed(dir.path(), &names).unwrap();
    assert_ne!(second.fingerprint(), first.fingerprint());
    fs::write(&cert, "not a certificate\n").unwrap();
    let err = Tls::self_signed(dir.path(), &names)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("read {}: no certificate in the file", cert.display())
    );
}

#[test]
fn a_symlink_in_place_of_the_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(".rsb-tls")).unwrap();
    let err = Tls::self_signed(dir.path(), &["localhost".to_string()]).unwrap_err();
    assert!(err.to_string().ends_with(".rsb-tls: not a folder"), "{err}");
    assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

/// openssl's output for `args` then `file`, or None when openssl is
/// missing.
fn openssl(args: &[&str], file: &Path) -> Option<String> {
    let out = Command::new("openssl").args(args).arg(file).output().ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn run(dir: &Path, args: &[&str]) -> bool {
    match Command::new("openssl").current_dir(dir).args(args).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            true
        }
        Err(_) => false,
    }
}

const SUBJECT: [&str; 6] = [
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost",
    // openssl makes a CA by default, which webpki refuses as a server's.
    "-addext",
    "basicConstraints=critical,CA:FALSE",
];

#[test]
fn load_reads_openssl_keys_of_every_kind_with_its_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // PKCS#8 RSA, as `openssl req -newkey` writes it.
    let mut req = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
    ];
    req.extend(["-keyout", "rsa8.key", "-out", "rsa8.pem"]);
    req.extend(SUBJECT);
    if !run(d, &req) {
        eprintln!("openssl is missing: test skipped");
        return;
    }
    // SEC1 EC ("EC PRIVATE KEY") and PKCS#1 RSA ("RSA PRIVATE KEY").
    assert!(run(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ec.key"
        ]
    ));
    assert!(run(
        d,
        &["genrsa", "-traditional", "-out", "rsa1.key", "2048"]
    ));
    for key in ["ec", "rsa1"] {
        let mut req = vec!["req", "-x509", "-new", "-days", "2"];
        let (k, c) = (format!("{key}.key"), format!("{key}.pem"));
        req.extend(["-key", &k, "-out", &c]);
        req.extend(SUBJECT);
        assert!(run(d, &req));
    }
    let ec = fs::read_to_string(d.join("ec.key")).unwrap();
    assert!(ec.contains("BEGIN EC PRIVATE KEY"));
    let rsa1 = fs::read_to_string(d.join("rsa1.key")).unwrap();
    assert!(rsa1.contains("BEGIN RSA PRIVATE KEY"));
    for name in ["rsa8", "ec", "rsa1"] {
        let cert = d.join(format!("{name}.pem"));
        let tls = Tls::load(&cert, &d.join(format!("{name}.key"))).unwrap();
        let text = openssl(&["x509", "-noout", "-fingerprint", "-sha256", "-in"], &cert).unwrap();
        // `sha256 Fingerprint=AB:...` (OpenSSL 3) or `SHA256 Fingerprint=`.
        let theirs = text.trim().rsplit('=').next().unwrap();
        assert_eq!(tls.fingerprint(), theirs, "{name}");
    }
    // And a loaded certificate serves a handshake.
    let tls = Tls::load(&d.join("ec.pem"), &d.join("ec.key")).unwrap();
    let config = client_config(&d.join("ec.pem"), None);
    let (server_sock, client_sock) = tcp_pair();
    let peer = thread::spawn(move || {
        let mut c = client(&config, client_sock, "localhost");
        c.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut got = [0; 2];
        c.read_exact(&mut got).unwrap();
        got
    });
    let mut s = side(&tls, server_sock);
    assert_eq!(s.read_until(18).0, b"GET / HTTP/1.1\r\n\r\n");
    s.send_all(b"ok");
    assert_eq!(&peer.join().unwrap(), b"ok");
    // A key that is not the certificate's is refused, naming both files.
    let err = Tls::load(&d.join("ec.pem"), &d.join("rsa1.key"))
        .unwrap_err()
        .to_string();
    let start = format!(
        "use certificate {} with key {}: ",
        d.join("ec.pem").display(),
        d.join("rsa1.key").display()
    );
    assert!(err.starts_with(&start), "{err}");
}

#[test]
fn load_errors_name_the_file_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    Tls::self_signed(d, &["localhost".to_string()]).unwrap();
    let cert = d.join(".rsb-tls/cert.pem");
    let missing = d.join("missing.pem");
    let err = Tls::load(&missing, &cert).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("read {}: No such file or directory", missing.display())
    );
    // A certificate where the key should be.
    let err = Tls::load(&cert, &cert).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "read {}: no private key in the file (PKCS#8, RSA or EC PEM expected)",
            cert.display()
        )
    );
    let key = d.join(".rsb-tls/key.pem");
    let err = Tls::load(&key, &key).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("read {}: no certificate in the file", key.display())
    );
}

/// Measures what TLS costs a download: 1 GiB of a file read (pread) in
/// 256 KiB pieces and sent through a TlsSession on loopback into a rustls
/// client that discards it, once per TLS 1.3 cipher suite, beside the same
/// file sent with sendfile to a plain socket.
/// `cargo test --release --lib io::server::tls::tests::bench -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_1_gib_download() {
    use std::os::unix::fs::FileExt;
    const SIZE: usize = 1024 * MIB;
    let (dir, tls, _) = server_and_client();
    let path = dir.path().join("big");
    {
        let block = pattern(MIB, 9);
        let mut f = fs::File::create(&path).unwrap();
        for _ in 0..SIZE / MIB {
            f.write_all(&block).unwrap();
        }
        f.sync_all().unwrap();
    }
    let file = fs::File::open(&path).unwrap();
    let mut warm = vec![0; MIB];
    for i in 0..SIZE / MIB {
        file.read_exact_at(&mut warm, (i * MIB) as u64).unwrap();
    }
    let cert = dir.path().join(".rsb-tls/cert.pem");
    let suites = rustls::crypto::ring::default_provider().cipher_suites;
    for suite in suites.into_iter().filter(|s| s.tls13().is_some()) {
        let config = client_config(&cert, Some(suite));
        let (server_sock, client_sock) = tcp_pair();
        let peer = thread::spawn(move || {
            let mut c = client(&config, client_sock, "localhost");
            let mut buf = vec![0; 256 * 1024];
            let mut total = 0;
            while total < SIZE {
                let n = c.read(&mut buf).unwrap();
                assert!(n > 0);
                total += n;
            }
            total
        });
        let mut s = side(&tls, server_sock);
        s.handshake();
        let (start, cpu) = (Instant::now(), thread_cpu());
        let mut buf = vec![0; 256 * 1024];
        let (mut offset, mut filled, mut taken) = (0usize, 0usize, 0usize);
        while offset < SIZE || s.session.wants_write() {
            if taken == filled && offset < SIZE {
                filled = file.read_at(&mut buf, offset as u64).unwrap();
                offset += filled;
                taken = 0;
            }
            let took = s.session.write_plain(&buf[taken..filled]).unwrap();
            taken += took;
            let flushed = s.session.flush(&mut s.sock).unwrap();
            if !flushed && took == 0 {
                s.wait();
            }
        }
        assert_eq!(peer.join().unwrap(), SIZE);
        let (secs, cpu) = (start.elapsed().as_secs_f64(), thread_cpu() - cpu);
        println!(
            "bench: TLS {:?}: 1 GiB in {secs:.2} s, {:.0} MiB/s; sender's CPU {cpu:.2} s, {:.0} MiB per CPU second",
            suite.suite(),
            SIZE as f64 / MIB as f64 / secs,
            SIZE as f64 / MIB as f64 / cpu
        );
    }
    // The same file with sendfile to a plain socket, for comparison.
    let (server_sock, mut client_sock) = tcp_pair();
    let peer = thread::spawn(move || {
        let mut buf = vec![0; 256 * 1024];
        let mut total = 0;
        while total < SIZE {
            let n = client_sock.read(&mut buf).unwrap();
            assert!(n > 0);
            total += n;
        }
        total
    });
    let mut s = side(&tls, server_sock);
    let (start, cpu) = (Instant::now(), thread_cpu());
    let mut offset: i64 = 0;
    while (offset as usize) < SIZE {
        let left = SIZE - offset as usize;
        match nix::sys::sendfile::sendfile(&s.sock, &file, Some(&mut offset), left) {
            Ok(_) => {}
            Err(nix::errno::Errno::EAGAIN) => s.wait(),
            Err(e) => panic!("sendfile: {e}"),
        }
    }
    assert_eq!(peer.join().unwrap(), SIZE);
    let (secs, cpu) = (start.elapsed().as_secs_f64(), thread_cpu() - cpu);
    println!(
        "bench: plain sendfile: 1 GiB in {secs:.2} s, {:.0} MiB/s; sender's CPU {cpu:.2} s",
        SIZE as f64 / MIB as f64 / secs
    );
}

/// CPU seconds (user and system) this thread has used.
fn thread_cpu() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    let u = getrusage(UsageWho::RUSAGE_THREAD).unwrap();
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    secs(u.user_time()) + secs(u.system_time())
}
