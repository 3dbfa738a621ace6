//! The web interface over TLS, end to end: a certificate made by openssl
//! and given with `--tls-cert`/`--tls-key` serves downloads and ranges
//! byte-exact to curl, is the one openssl's `s_client` sees, and a plain
//! HTTP request to the TLS port gets no page; with `--secrets` on a
//! wildcard address the server makes its own certificate once under
//! `DIR/.rsb-tls` (key 0600), logs the fingerprint the wire shows, and
//! keeps it across a restart; bad certificate or key files stop the start
//! with a message naming the file; garbage and stalled handshakes neither
//! stop the server nor hold a connection past the head timeout.
//!
//! openssl is the outside judge of certificates and fingerprints; curl
//! (OpenSSL-backed) the HTTPS client. Only 127.0.0.1 is ever connected to.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::http::*;
use crate::common::*;

/// How long a stalled handshake may stay open: the head timeout (10 s)
/// plus the linger after the answer (2 s) and slack for a loaded machine.
const STALL_BOUND: Duration = Duration::from_secs(16);

/// `openssl ARGS...`, bounded; panics unless it succeeds. Its stdout.
fn openssl(args: &[&str]) -> String {
    let o = Cmd::new("openssl")
        .args(args)
        .timeout(Duration::from_secs(30))
        .run();
    o.ok();
    o.out()
}

/// A web server with `--tls-cert`/`--tls-key` from [`make_cert`]: the
/// certificates' directory (kept while the server runs), the certificate
/// and the server.
fn tls_server(name: &str) -> (Scratch, PathBuf, Server) {
    let certs = scratch();
    let (crt, key) = make_cert(certs.path(), name);
    let srv = web_server(&[
        "--tls-cert",
        crt.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    (certs, crt, srv)
}

/// A self-signed RSA certificate for localhost and 127.0.0.1 and its
/// key, made by openssl in `dir`: `(dir/NAME.crt, dir/NAME.key)`.
fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-days",
        "2",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
    (crt, key)
}

/// `AB:CD:...` from openssl's `... Fingerprint=AB:CD:...` line.
fn parse_openssl_fingerprint(out: &str) -> String {
    out.lines()
        .find_map(|l| l.split_once("Fingerprint=").map(|(_, f)| f.trim()))
        .unwrap_or_else(|| panic!("no fingerprint in openssl's output {out:?}"))
        .to_uppercase()
}

/// The SHA-256 fingerprint of the PEM certificate file `crt`, per openssl.
fn file_fingerprint(crt: &Path) -> String {
    parse_openssl_fingerprint(&openssl(&[
        "x509",
        "-in",
        crt.to_str().unwrap(),
        "-noout",
        "-fingerprint",
        "-sha256",
    ]))
}

/// The SHA-256 fingerprint of the certificate served on 127.0.0.1:PORT:
/// `openssl s_client -connect ... -showcerts </dev/null | openssl x509
/// -noout -fingerprint -sha256` (x509 takes the first, the server's own).
fn served_fingerprint(port: u16) -> String {
    let o = Cmd::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-showcerts"])
        .timeout(Duration::from_secs(30))
        .run();
    assert!(
        o.out().contains("-----BEGIN CERTIFICATE-----"),
        "s_client saw no certificate\n{o}"
    );
    let x = Cmd::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(o.stdout.clone())
        .timeout(Duration::from_secs(30))
        .run();
    x.ok();
    parse_openssl_fingerprint(&x.out())
}

/// Every fingerprint of the log's `TLS certificate SHA-256 fingerprint F`
/// lines.
fn logged_fingerprints(log: &str) -> Vec<String> {
    const TAG: &str = "TLS certificate SHA-256 fingerprint ";
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find(TAG)? + TAG.len()..];
            rest.split_whitespace().next().map(str::to_string)
        })
        .collect()
}

/// `https://127.0.0.1:PORT` + `path`.
fn surl(port: u16, path: &str) -> String {
    format!("https://127.0.0.1:{port}{path}")
}

/// A tree holding one file of `len` random bytes; its path and bytes.
fn one_file(dir: &Path, len: usize, seed: u64) -> (PathBuf, Vec<u8>) {
    let data = random_bytes(seed, len);
    Tree::new(dir, 0o755, (1_600_000_000, 0))
        .file("blob.bin", &data, 0o644, (1_600_000_001, 0))
        .finish();
    (dir.join("blob.bin"), data)
}

/// What a raw connection gets until the server closes it (EOF or a
/// reset), and how long after `since` that was; panics when it is still
/// open `bound` after `since`.
fn read_until_closed(s: &mut TcpStream, since: Instant, bound: Duration) -> (Vec<u8>, Duration) {
    let t0 = since;
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 16384];
    loop {
        match s.read(&mut b) {
            Ok(0) => return (got, t0.elapsed()),
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            // A reset is a close too.
            Err(_) => return (got, t0.elapsed()),
        }
        assert!(
            t0.elapsed() < bound,
            "the server kept the connection open for {bound:?}; it sent {} bytes",
            got.len()
        );
    }
}

/// The first TLS record a real client (rustls) sends: its ClientHello.
fn client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    assert_eq!(hello.first(), Some(&0x16), "not a handshake record");
    hello
}

#[test]
fn a_given_certificate_serves_downloads_and_ranges_over_tls() {
    let (_certs, crt, srv) = tls_server("given");
    let port = srv.web_port();
    let log = srv.log();
    assert!(
        log.contains(&format!("web interface on https://127.0.0.1:{port}/")),
        "no https line in the log:\n{log}"
    );

    // 3 MiB and an odd tail: not a multiple of a TLS record (16 KiB).
    let tmp = scratch();
    let len = 3 * 1024 * 1024 + 12_345;
    let (file, data) = one_file(&tmp.join("src"), len, 77);
    backup(&srv, NAME, &tmp.join("src"));
    let target = file_url(NAME, &file);

    let r = curl(&["-k", &surl(port, &target)]);
    r.status_is(200);
    assert_eq!(r.body.len(), len, "length over TLS");
    assert!(r.body == data, "the bytes over TLS differ from the file");
    assert_eq!(r.must("content-length"), len.to_string());

    // A range inside, and one to the end.
    let r = curl(&["-k", "-r", "1000000-1099999", &surl(port, &target)]);
    r.status_is(206);
    assert_eq!(
        r.must("content-range"),
        format!("bytes 1000000-1099999/{len}")
    );
    assert!(r.body == data[1_000_000..1_100_000], "the range's bytes");
    let r = curl(&["-k", "-H", "Range: bytes=-5000", &surl(port, &target)]);
    r.status_is(206);
    assert!(r.body == data[len - 5000..], "the suffix range's bytes");

    // The certificate checks out for a verifying client too (curl with
    // the certificate as its only authority, by name).
    let r = curl(&[
        "--cacert",
        crt.to_str().unwrap(),
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        &format!("https://localhost:{port}{target}"),
    ]);
    r.status_is(200);
    assert!(r.body == data, "the bytes to a verifying client");

    // The certificate on the wire is the one given; the log says so too.
    let given = file_fingerprint(&crt);
    assert_eq!(served_fingerprint(port), given);
    assert_eq!(logged_fingerprints(&srv.log()), vec![given.clone()]);

    // Plain HTTP to the TLS port: curl gets no HTTP answer.
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "/dev/null", "-w"])
        .arg("%{http_code}")
        .arg(url(port, "/"))
        .output()
        .expect("run curl");
    let code = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        !o.status.success() && (code.is_empty() || code == "000"),
        "plain HTTP to the TLS port got an answer: {} {code:?} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    // The same from a raw socket: no `HTTP/` in what comes back, and the
    // connection ends promptly.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (got, took) = read_until_closed(&mut s, Instant::now(), Duration::from_secs(10));
    assert!(
        !contains(&got, b"HTTP/"),
        "plain HTTP got {:?}",
        String::from_utf8_lossy(&got)
    );
    eprintln!(
        "plain HTTP to the TLS port: {} bytes back, closed after {took:?}",
        got.len()
    );
    // And the server still serves.
    let r = curl(&["-k", "-r", "0-9", &surl(port, &target)]);
    r.status_is(206);
    assert_eq!(r.body, &data[..10]);
    let r = curl(&["-k", &surl(port, "/status.json")]);
    r.status_is(200);
}

const WHO: &str = "tlsbox";
const SECRET: &str = "tls-s3cr3t-correct-horse";

/// Starts `rsb-server -k SECRETS --http 0.0.0.0:0` on `root`.
fn wildcard_server(root: &Path, secrets: &Path) -> Server {
    Server::start_at(
        root,
        &["-k", secrets.to_str().unwrap(), "--http", "0.0.0.0:0"],
    )
}

#[test]
fn secrets_on_a_wildcard_address_make_a_certificate_once() {
    let base = scratch();
    let root = base.join("root");
    let secrets = write_private(&base.join("secrets"), format!("{WHO}:{SECRET}\n"));
    let client_key = write_private(&base.join("client.key"), format!("{SECRET}\n"));

    let srv = wildcard_server(&root, &secrets);
    let port = srv.web_port();
    let log = srv.log();
    assert!(
        log.contains(&format!("web interface on https://0.0.0.0:{port}/")),
        "TLS was not turned on for --secrets on 0.0.0.0:\n{log}"
    );
    assert!(
        log.contains("made a self-signed certificate"),
        "no line about the certificate made:\n{log}"
    );

    // The pair under DIR/.rsb-tls: the folder and the key private.
    let dir = root.join(".rsb-tls");
    let (crt, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&dir), 0o700, "{dir:?}");
    assert_eq!(mode(&key), 0o600, "{key:?}");
    assert!(fs::read_to_string(&key)
        .unwrap()
        .contains("PRIVATE KEY-----"));
    let made = fs::read(&crt).unwrap();

    // One fingerprint, the same in the log, in the file and on the wire.
    let logged = logged_fingerprints(&log);
    assert_eq!(logged.len(), 1, "{log}");
    assert_eq!(logged[0], file_fingerprint(&crt));
    assert_eq!(served_fingerprint(port), logged[0]);

    // Authenticated downloads over it; none without credentials.
    let tmp = scratch();
    let (file, data) = one_file(&tmp.join("src"), 200_000 + 17, 5);
    srv.client_keyed(WHO, &client_key, argv!["backup", tmp.join("src")])
        .run()
        .ok();
    let target = surl(port, &file_url(WHO, &file));
    let r = curl(&["-k", "-u", &format!("{WHO}:{SECRET}"), &target]);
    r.status_is(200);
    assert!(r.body == data, "the bytes over TLS with credentials");
    let r = curl(&["-k", &target]);
    r.status_is(401);
    assert!(r.must("www-authenticate").starts_with("Basic"));
    assert!(!contains(&r.body, &data[..64]), "bytes without credentials");
    let r = curl(&["-k", "-u", &format!("{WHO}:wrong"), &target]);
    r.status_is(401);
    srv.stop();

    // Restarted on the same root: the same certificate, not a new one.
    let srv = wildcard_server(&root, &secrets);
    let log = srv.log();
    assert!(
        !log.contains("made a self-signed certificate"),
        "a second certificate was made:\n{log}"
    );
    assert_eq!(logged_fingerprints(&log), logged, "{log}");
    assert_eq!(fs::read(&crt).unwrap(), made, "cert.pem changed");
    assert_eq!(served_fingerprint(srv.web_port()), logged[0]);
    let r = curl(&[
        "-k",
        "-u",
        &format!("{WHO}:{SECRET}"),
        &surl(srv.web_port(), &file_url(WHO, &file)),
    ]);
    r.status_is(200);
    assert!(r.body == data);
}

#[test]
fn a_certificate_without_its_key_is_a_usage_error() {
    let base = scratch();
    let root = base.join("root");
    let secrets = write_private(&base.join("secrets"), format!("{WHO}:{SECRET}\n"));
    let (crt, key) = make_cert(base.path(), "half");
    for (opt, file) in [("--tls-cert", &crt), ("--tls-key", &key)] {
        let o = Cmd::server()
            .args(["-a", "127.0.0.1", "-p", "0", "-d"])
            .arg(&root)
            .args(["-k", secrets.to_str().unwrap(), "--http", "0.0.0.0:0"])
            .arg(opt)
            .arg(file)
            .run();
        o.code_is(2).err_has("--tls-cert and --tls-key go together");
        assert!(!o.err().contains("panicked"), "{o}");
        assert!(!o.err().contains("listening on"), "it started anyway\n{o}");
        assert!(
            !root.join(".rsb-tls").exists(),
            "{opt} alone made a certificate"
        );
    }
}

/// `rsb-server ... --http 127.0.0.1:0 --tls-cert CRT --tls-key KEY`, run
/// to its end (it must not start).
fn refused(root: &Path, crt: &Path, key: &Path) -> Output {
    let o = Cmd::server()
        .args(["-a", "127.0.0.1", "-p", "0", "-d"])
        .arg(root)
        .args(["--http", "127.0.0.1:0", "--tls-cert"])
        .arg(crt)
        .arg("--tls-key")
        .arg(key)
        .timeout(Duration::from_secs(10))
        .run();
    assert!(!o.err().contains("panicked"), "{o}");
    assert!(!o.err().contains("listening on"), "it started anyway\n{o}");
    o
}

#[test]
fn a_bad_certificate_or_key_stops_the_start_naming_the_file() {
    let base = scratch();
    let root = base.join("root");
    let (crt, key) = make_cert(base.path(), "good");
    let (_other_crt, other_key) = make_cert(base.path(), "other");
    let show = |p: &Path| p.display().to_string();

    // Not PEM at all.
    let junk = base.join("junk.pem");
    fs::write(&junk, b"this is not a certificate\n").unwrap();
    let o = refused(&root, &junk, &key);
    o.code_is(1).err_has(&show(&junk)).err_has("no certificate");
    // A DER certificate (openssl's other form): not PEM either.
    let der = base.join("good.der");
    openssl(&[
        "x509",
        "-in",
        crt.to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        der.to_str().unwrap(),
    ]);
    let o = refused(&root, &der, &key);
    o.code_is(1).err_has(&show(&der));
    // The certificate where the key should be: no key in that file.
    let o = refused(&root, &crt, &crt);
    o.code_is(1).err_has(&show(&crt)).err_has("no private key");
    // A missing file.
    let gone = base.join("gone.pem");
    let o = refused(&root, &crt, &gone);
    o.code_is(1).err_has(&show(&gone));
    // A key that is not the certificate's: both files named.
    let o = refused(&root, &crt, &other_key);
    o.code_is(1).err_has(&show(&crt)).err_has(&show(&other_key));
    eprintln!("a mismatched key: {}", o.err().trim());
    // And the good pair starts (the refusals were about the files).
    let srv = Server::start_at(
        &root,
        &[
            "--http",
            "127.0.0.1:0",
            "--tls-cert",
            crt.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    curl(&["-k", &surl(srv.web_port(), "/status.json")]).status_is(200);
}

#[test]
fn garbage_and_stalled_handshakes_leave_the_server_serving() {
    let (_certs, _crt, srv) = tls_server("hs");
    let port = srv.web_port();
    let ok = || {
        curl(&["-k", &surl(port, "/status.json")]).status_is(200);
    };

    // Garbage instead of a ClientHello: closed promptly.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&random_bytes(3, 300)).unwrap();
    let (_, took) = read_until_closed(&mut s, Instant::now(), Duration::from_secs(10));
    eprintln!("garbage: closed after {took:?}");
    ok();
    // A handshake record header that promises far more than it carries,
    // then a record claiming 16 MiB: each refused or closed.
    for bytes in [
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0x01][..],
        &[0x16, 0x03, 0x03, 0x40, 0x01, 0x01, 0x00, 0x00, 0x01][..],
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(bytes).unwrap();
        drop(s);
        ok();
    }

    // Stalls: half a ClientHello; a whole one and then nothing after the
    // server's answer; a connection that ends in the middle.
    let hello = client_hello();
    let stalled_at = Instant::now();
    let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
    half.write_all(&hello[..hello.len() / 2]).unwrap();
    let mut whole = TcpStream::connect(("127.0.0.1", port)).unwrap();
    whole.write_all(&hello).unwrap();
    let mut first = [0u8; 5];
    whole
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    whole
        .read_exact(&mut first)
        .expect("the server's first flight");
    assert_eq!(first[0], 0x16, "the server did not answer the ClientHello");
    let mut cut = TcpStream::connect(("127.0.0.1", port)).unwrap();
    cut.write_all(&hello[..40]).unwrap();
    drop(cut);
    // Meanwhile others are served, at once.
    let t0 = Instant::now();
    ok();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

    // The stalled ones are closed by the head timeout, not held.
    let (_, half_took) = read_until_closed(&mut half, stalled_at, STALL_BOUND);
    let (_, whole_took) = read_until_closed(&mut whole, stalled_at, STALL_BOUND);
    eprintln!("stalled handshakes closed after {half_took:?} (half a hello), {whole_took:?} (after the server's flight)");
    ok();
    assert!(srv.log().contains("listening on"));
}
