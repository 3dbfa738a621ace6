//! Authentication end to end: `rsb-server --secrets FILE` and
//! `rsb-client -k FILE` / `RSB_SECRET_FILE` on 127.0.0.1. The secrets file
//! must be private and well formed; a good secret works like no
//! authentication at all; a wrong secret, an unknown name and no secret fail
//! alike (exit 2, "authentication failed for NAME", nothing stored, the
//! peer logged); a replayed handshake fails; the secret never crosses the
//! wire; the client refuses a server that cannot prove it knows the secret
//! (fake servers here are threads speaking raw frames); a client
//! authenticated as one name never reaches another's namespace.

#[macro_use]
mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use rsb::auth::Key;
use rsb::proto::codec::to_vec;
use rsb::proto::{decode, Decoded, ErrorCode, Frame, NONCE_LEN, VERSION, WELCOME_AUTHENTICATED};

const ALICE_SECRET: &str = "alice-s3cr3t-7Qz9-horse-battery";
const BOB_SECRET: &str = "bob's own secret, with spaces";
const SECRETS: &str = "# who may connect\n\nalice:alice-s3cr3t-7Qz9-horse-battery\r\n  \nbob:bob's own secret, with spaces\n";
/// How long a raw peer waits for the server.
const WAIT: Duration = Duration::from_secs(10);

fn secured() -> Server {
    Server::start_with_secrets(SECRETS, &[])
}

/// `DIR/<file>` holding `content`, mode 0600.
fn secret_file(dir: &Scratch, file: &str, content: &str) -> PathBuf {
    write_private(&dir.join(file), content)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// True when `frames` (re-encoded) or `bodies` hold `needle`.
fn leaks(frames: &[Frame], bodies: &[u8], needle: &[u8]) -> bool {
    let wire: Vec<u8> = frames.iter().flat_map(to_vec).collect();
    contains(&wire, needle) || contains(bodies, needle)
}

/// Names directly under `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {dir:?}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Every path under `dir` with its size and mtime, for "untouched" checks.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let m = fs::symlink_metadata(&d).unwrap();
        out.push((d.clone(), m.len(), m.mtime(), m.mtime_nsec()));
        if m.is_dir() {
            for e in fs::read_dir(&d).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

/// Exit 2 with "authentication failed for NAME" on stderr, and nothing
/// about which part was wrong.
fn assert_auth_refused(o: &Output, name: &str) {
    o.code_is(2)
        .err_has(&format!("authentication failed for {name}"));
    for leak in ["unknown name", "wrong secret", "not listed", "no such"] {
        assert!(!o.err().contains(leak), "stderr says {leak:?}\n{o}");
    }
}

/// Waits for the server's log line for a failed authentication of `name`,
/// which must carry the peer's address; returns the line.
fn logged_failure(srv: &Server, name: &str) -> String {
    let what = format!("authentication failed for {name} (");
    let find = || {
        srv.log()
            .lines()
            .find(|l| l.contains(&what))
            .map(str::to_owned)
    };
    assert!(
        wait_until(Duration::from_secs(5), || find().is_some()),
        "no `{what}` in the server log:\n{}",
        srv.log()
    );
    let line = find().unwrap();
    assert!(
        line.contains("127.0.0.1:"),
        "the failure is logged without the peer address: {line:?}"
    );
    line
}

// ---------------------------------------------------------------- the secrets file

fn server_with_secrets_file(file: &Path) -> (Scratch, Output) {
    let s = scratch();
    let o = Cmd::server()
        .args(["-a", "127.0.0.1", "-p", "0", "-d"])
        .arg(s.join("root"))
        .arg("-k")
        .arg(file)
        .timeout(Duration::from_secs(10))
        .run();
    (s, o)
}

#[test]
fn a_secrets_file_open_to_group_or_others_is_refused_at_start() {
    let s = scratch();
    for mode in [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o666] {
        let file = write_private(&s.join(format!("secrets.{mode:o}")), SECRETS);
        chmod(&file, mode);
        let (base, o) = server_with_secrets_file(&file);
        o.code_is(2)
            .err_has("group or others")
            .err_has(&file.to_string_lossy())
            .err_has(&format!("{mode:04o}"));
        assert!(!o.err().contains("listening"), "mode {mode:o}\n{o}");
        assert!(
            !base.join("root").exists(),
            "mode {mode:o}: the root was created anyway"
        );
    }
    // Owner-only files are fine, read-only ones too.
    for mode in [0o600, 0o400] {
        let file = write_private(&s.join(format!("ok.{mode:o}")), SECRETS);
        chmod(&file, mode);
        let srv = Server::start(&["-k", file.to_str().unwrap()]);
        srv.client_keyed(
            "alice",
            &secret_file(&s, &format!("alice.{mode:o}"), ALICE_SECRET),
            ["ls"],
        )
        .run()
        .ok();
        srv.stop();
    }
}

#[test]
fn a_malformed_secrets_file_is_refused_naming_the_line() {
    let s = scratch();
    for (i, (text, want)) in [
        ("alice\n", "line 1: expected name:secret"),
        (
            "# c\n\nok:1\nbad name:x\n",
            "line 4: invalid client name 'bad name'",
        ),
        ("ok:1\r\nempty:\r\n", "line 2: empty secret for empty"),
        ("a:1\n# again\na:2\n", "line 3: a is listed twice"),
        ("../x:1\n", "line 1: invalid client name '../x'"),
        ("ok:1\n:nameless\n", "line 2: invalid client name ''"),
        ("# only comments\n\n", "no name:secret lines"),
        ("", "no name:secret lines"),
    ]
    .into_iter()
    .enumerate()
    {
        let file = write_private(&s.join(format!("bad.{i}")), text);
        let (base, o) = server_with_secrets_file(&file);
        o.code_is(2).err_has(&file.to_string_lossy()).err_has(want);
        assert!(!o.err().contains("listening"), "{text:?}\n{o}");
        assert!(!base.join("root").exists(), "{text:?}: root created");
    }
    let (_, o) = server_with_secrets_file(&s.join("missing"));
    o.code_is(2).err_has(&s.join("missing").to_string_lossy());
}

#[test]
fn without_secrets_the_server_warns_and_with_them_it_does_not() {
    let open = Server::start(&[]);
    // Logged right after the "listening" line the harness waits for.
    let warned = |l: &str| {
        l.contains("WARN")
            && l.contains("anyone who can reach this port can read and write")
            && l.contains(&*open.root().to_string_lossy())
    };
    assert!(
        wait_until(Duration::from_secs(5), || open.log().lines().any(warned)),
        "no warning about the open server:\n{}",
        open.log()
    );
    open.stop();

    let srv = secured();
    // The warning, if any, would come before this line.
    assert!(
        wait_until(Duration::from_secs(5), || srv
            .log()
            .contains("authentication required for 2 names")),
        "{}",
        srv.log()
    );
    let log = srv.log();
    assert!(
        !log.contains("anyone who can reach") && !log.contains("no authentication"),
        "warned although --secrets is given:\n{log}"
    );
    // Secrets are never logged.
    assert!(!log.contains(ALICE_SECRET) && !log.contains(BOB_SECRET));
}

// ---------------------------------------------------------------- good and bad secrets

#[test]
fn a_good_secret_backs_up_lists_and_restores_bit_for_bit() {
    let srv = secured();
    let s = scratch();
    let key = secret_file(&s, "alice.key", &format!("{ALICE_SECRET}\n"));
    let src = s.join("src");
    let tree = awkward_tree(&src);

    let o = srv.client_keyed("alice", &key, argv!["backup", src]).run();
    o.ok();
    assert_summary_bytes(&o, "backup", tree.bytes);
    assert_same_tree(&src, &srv.store("alice", &src));

    srv.client_keyed("alice", &key, argv!["ls", src])
        .run()
        .ok()
        .out_has("big.bin")
        .out_has("name with spaces.txt");

    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    let o = srv
        .client_keyed("alice", &key, argv!["restore", src, dest])
        .run();
    o.ok();
    assert_summary_bytes(&o, "restore", tree.bytes);
    assert_same_tree(&src, &dest.join("src"));
    assert_eq!(names(srv.root()), ["alice"]);
}

#[test]
fn wrong_secret_unknown_name_and_no_secret_fail_alike() {
    let srv = secured();
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 3);
    let wrong = secret_file(&s, "wrong.key", "not-the-secret\n");
    let alices = secret_file(&s, "alice.key", ALICE_SECRET);

    let wrong_secret = srv
        .client_keyed("alice", &wrong, argv!["backup", src])
        .run();
    assert_auth_refused(&wrong_secret, "alice");
    let unknown = srv
        .client_keyed("carol", &wrong, argv!["backup", src])
        .run();
    assert_auth_refused(&unknown, "carol");
    // Nothing tells an unknown name from a known one with a wrong secret.
    assert_eq!(
        wrong_secret.err().replace("alice", "NAME"),
        unknown.err().replace("carol", "NAME"),
        "the refusals differ"
    );
    assert_eq!(wrong_secret.stdout, unknown.stdout);
    // A real secret under another name, known or not, is no better.
    let as_bob = srv.client_keyed("bob", &alices, argv!["backup", src]).run();
    assert_auth_refused(&as_bob, "bob");
    assert_eq!(
        as_bob.err().replace("bob", "NAME"),
        unknown.err().replace("carol", "NAME")
    );
    let as_carol = srv.client_keyed("carol", &alices, argv!["ls"]).run();
    assert_auth_refused(&as_carol, "carol");
    // No secret at all: the same failure, with a hint about -k.
    let none = srv.client_as("alice", argv!["backup", src]).run();
    assert_auth_refused(&none, "alice");
    none.err_has("-k FILE");
    // The prompt gives up the same way.
    let prompt = srv
        .client_keyed("alice", &wrong, argv![])
        .stdin(format!("backup {}\nls\nquit\n", src.display()))
        .run();
    assert_auth_refused(&prompt, "alice");

    for o in [&wrong_secret, &unknown, &as_bob, &none, &prompt] {
        assert_eq!(
            o.err().matches("authentication failed").count(),
            1,
            "one message, once\n{o}"
        );
        assert!(!o.err().contains("not-the-secret") && !o.err().contains(ALICE_SECRET));
    }
    // Nothing was created for any of them, not even a namespace.
    assert_eq!(names(srv.root()), Vec::<String>::new());
    // The server says who failed, from where, and why.
    assert!(logged_failure(&srv, "alice").contains("127.0.0.1"));
    assert!(logged_failure(&srv, "carol").contains("unknown name"));
    assert!(logged_failure(&srv, "bob").contains("wrong secret"));
    assert!(
        !srv.log().contains("not-the-secret") && !srv.log().contains(ALICE_SECRET),
        "a secret in the log"
    );
}

/// The same refusals seen on the wire: one `Error` frame, identical for a
/// wrong MAC, an unknown name and an empty proof, then the close.
#[test]
fn every_failed_proof_gets_the_same_frame() {
    let srv = secured();
    let nc = [7u8; NONCE_LEN];
    let mut seen = Vec::new();
    for (name, secret) in [
        ("alice", Some("wrong")),
        ("carol", Some("wrong")),
        ("carol", Some(ALICE_SECRET)),
        ("bob", Some(ALICE_SECRET)),
        ("alice", None),
    ] {
        let (mut raw, ns) = Raw::challenged(srv.port(), name, &nc);
        assert_eq!(ns.len(), NONCE_LEN);
        let mac = secret.map_or_else(Vec::new, |s| {
            Key::from_secret(s.as_bytes())
                .client_proof(name, &nc, &ns)
                .to_vec()
        });
        raw.send(&Frame::Proof { mac });
        let frames = raw.expect_closed(WAIT);
        assert_eq!(
            frames,
            [Frame::Error {
                code: ErrorCode::Auth,
                message: format!("authentication failed for {name}"),
            }],
            "{name} with {secret:?}"
        );
        seen.push(ns);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "the server reused a challenge");
    assert_eq!(names(srv.root()), Vec::<String>::new());
}

/// A client that skips the proof and asks for something is closed without
/// an answer to its request.
#[test]
fn requests_before_the_proof_are_refused() {
    let srv = secured();
    // Bob has something to lose.
    let s = scratch();
    let bsrc = s.join("b");
    small_tree(&bsrc, 9);
    srv.client_keyed(
        "bob",
        &secret_file(&s, "bob.key", BOB_SECRET),
        argv!["backup", bsrc],
    )
    .run()
    .ok();
    for req in [
        to_vec(&Frame::List {
            id: 1,
            path: wpath(""),
        }),
        to_vec(&Frame::Restore {
            id: 1,
            path: wpath(""),
        }),
        raw_dir(1, b"x"),
        file_frames(1, "x", b"data", None, true),
        to_vec(&Frame::Commit { id: 1 }),
        to_vec(&hello("bob")),
    ] {
        let (mut raw, _) = Raw::challenged(srv.port(), "bob", &[3; NONCE_LEN]);
        raw.send_raw(&req).unwrap();
        let frames = raw.expect_closed(WAIT);
        assert!(
            matches!(
                &frames[..],
                [Frame::Error {
                    code: ErrorCode::Unexpected,
                    ..
                }]
            ),
            "{frames:?}"
        );
    }
    assert_same_tree(&bsrc, &srv.store("bob", &bsrc));
    assert_eq!(names(srv.root()), ["bob"]);
}

#[test]
fn rsb_secret_file_is_read_and_k_overrides_it() {
    let srv = secured();
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 4);
    let good = secret_file(&s, "good.key", &format!("{ALICE_SECRET}\n"));
    let wrong = secret_file(&s, "wrong.key", "nope\n");
    let run = |env: &Path, k: Option<&Path>| {
        let mut c = Cmd::client();
        c.env("RSB_SECRET_FILE", env);
        if let Some(k) = k {
            c.arg("-k").arg(k);
        }
        c.args(["-n", "alice", "127.0.0.1"])
            .arg(srv.port().to_string())
            .args(argv!["backup", src]);
        c.run()
    };
    run(&good, None).ok();
    assert_same_tree(&src, &srv.store("alice", &src));
    assert_auth_refused(&run(&wrong, None), "alice");
    run(&wrong, Some(&good)).ok();
    assert_auth_refused(&run(&good, Some(&wrong)), "alice");
    // A missing RSB_SECRET_FILE is an error, not "no secret".
    run(&s.join("absent"), None)
        .code_is(2)
        .err_has(&s.join("absent").to_string_lossy());
}

#[test]
fn the_secret_is_the_first_line_without_its_line_ending() {
    let srv = Server::start_with_secrets("alice:pw 1\n", &[]);
    let s = scratch();
    for (i, text) in ["pw 1\n", "pw 1\r\n", "pw 1", "pw 1\nsecond line ignored\n"]
        .into_iter()
        .enumerate()
    {
        let key = secret_file(&s, &format!("ok.{i}"), text);
        srv.client_keyed("alice", &key, ["ls"]).run().ok();
    }
    // Whitespace inside the line is part of the secret.
    for (i, text) in ["pw 1 \n", " pw 1\n", "pw  1\n", "pw 1\r\r\n"]
        .into_iter()
        .enumerate()
    {
        let key = secret_file(&s, &format!("other.{i}"), text);
        assert_auth_refused(&srv.client_keyed("alice", &key, ["ls"]).run(), "alice");
    }
    // An empty first line is refused before connecting.
    let failures = || srv.log().matches("authentication failed").count();
    assert!(
        wait_until(Duration::from_secs(5), || failures() == 4),
        "{}",
        srv.log()
    );
    for (i, text) in ["\npw 1\n", "", "\r\n", "\n"].into_iter().enumerate() {
        let key = secret_file(&s, &format!("empty.{i}"), text);
        srv.client_keyed("alice", &key, ["ls"])
            .run()
            .code_is(2)
            .err_has("first line is empty")
            .err_has(&key.to_string_lossy());
    }
    // A secret file others can read is refused too, as ssh does with keys.
    let open = secret_file(&s, "open.key", "pw 1\n");
    chmod(&open, 0o644);
    srv.client_keyed("alice", &open, ["ls"])
        .run()
        .code_is(2)
        .err_has("group or others");
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        failures(),
        4,
        "a client with an unusable secret file still connected"
    );
}

// ---------------------------------------------------------------- replays

#[test]
fn a_replayed_handshake_is_refused() {
    let srv = secured();
    let nc = random_bytes(99, NONCE_LEN);
    let key = Key::from_secret(ALICE_SECRET.as_bytes());

    // A good handshake, recorded byte for byte.
    let (mut first, ns1) = Raw::challenged(srv.port(), "alice", &nc);
    let proof = to_vec(&Frame::Proof {
        mac: key.client_proof("alice", &nc, &ns1).to_vec(),
    });
    let hello = to_vec(&Frame::Hello {
        version: VERSION,
        name: "alice".into(),
        flags: 0,
        nonce: nc.clone(),
    });
    first.send_raw(&proof).unwrap();
    match first.expect_frame(WAIT) {
        Frame::Welcome { flags, proof, .. } => {
            assert_ne!(flags & WELCOME_AUTHENTICATED, 0);
            assert!(key.is_server_proof(&proof, "alice", &nc, &ns1));
        }
        f => panic!("the recorded handshake itself failed: {f:?}"),
    }
    drop(first);

    // The same bytes again, all at once, on a new connection.
    let mut again = Raw::connect(srv.port());
    again.send_raw(&[hello, proof.clone()].concat()).unwrap();
    let frames = again.expect_closed(WAIT);
    let [Frame::Challenge { nonce: ns2 }, Frame::Error { code, message }] = &frames[..] else {
        panic!("replay not refused: {frames:?}");
    };
    assert_ne!(ns2, &ns1, "the server repeated its challenge");
    assert_eq!(*code, ErrorCode::Auth);
    assert_eq!(message, "authentication failed for alice");

    // Or the recorded proof after a new challenge.
    let (mut third, ns3) = Raw::challenged(srv.port(), "alice", &nc);
    assert_ne!(ns3, ns1);
    third.send_raw(&proof).unwrap();
    assert!(matches!(
        &third.expect_closed(WAIT)[..],
        [Frame::Error {
            code: ErrorCode::Auth,
            ..
        }]
    ));
    assert!(logged_failure(&srv, "alice").contains("wrong secret"));
    assert!(
        wait_until(Duration::from_secs(5), || srv
            .log()
            .matches("authentication failed")
            .count()
            == 2),
        "two failures expected:\n{}",
        srv.log()
    );
}

#[test]
fn a_handshake_left_unfinished_is_closed_by_the_deadline() {
    let srv = secured();
    let start = Instant::now();
    let (mut raw, _) = Raw::challenged(srv.port(), "alice", &[1; NONCE_LEN]);
    let frames = raw.expect_closed(Duration::from_secs(12));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took <= Duration::from_secs(10),
        "closed after {took:?} (the hello timeout is 5 s)"
    );
    assert!(
        matches!(
            &frames[..],
            [] | [Frame::Error {
                code: ErrorCode::Timeout,
                ..
            }]
        ),
        "{frames:?}"
    );
    // The server goes on serving.
    let s = scratch();
    let key = secret_file(&s, "alice.key", ALICE_SECRET);
    srv.client_keyed("alice", &key, ["ls"]).run().ok();
}

// ---------------------------------------------------------------- fake servers and taps

/// Frames read one by one from a socket, every byte kept.
struct Capture {
    s: TcpStream,
    all: Vec<u8>,
    pos: usize,
}

impl Capture {
    /// The next frame, or `None` at EOF, on a timeout or on garbage.
    fn next(&mut self) -> Option<Frame> {
        loop {
            match decode(&self.all[self.pos..]) {
                Ok(Decoded::Frame(f, n)) => {
                    self.pos += n;
                    return Some(f);
                }
                Ok(Decoded::Partial) => {}
                Err(_) => return None,
            }
            let mut tmp = [0u8; 65536];
            match self.s.read(&mut tmp) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.all.extend_from_slice(&tmp[..n]),
            }
        }
    }
}

/// Accepts one connection within 20 s.
fn accept(l: &TcpListener) -> TcpStream {
    l.set_nonblocking(true).unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                return s;
            }
            Err(_) if Instant::now() < end => thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("nobody connected within 20 s: {e}"),
        }
    }
}

/// A one-connection fake server on 127.0.0.1. After the client's `Hello`
/// it sends a `Challenge` (when `challenge`) and waits for the `Proof`,
/// then sends what `welcome(client nonce, server nonce, client mac)`
/// returns. It closes at the first frame after that (a request) or when
/// the client does, and returns every byte the client sent.
fn fake_server(
    challenge: bool,
    welcome: impl FnOnce(&[u8], &[u8], &[u8]) -> Frame + Send + 'static,
) -> (u16, JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let s = accept(&l);
        let mut c = Capture {
            s,
            all: Vec::new(),
            pos: 0,
        };
        let Some(Frame::Hello { nonce: nc, .. }) = c.next() else {
            return c.all;
        };
        let ns = [0x5a; NONCE_LEN];
        let mut mac = Vec::new();
        if challenge {
            c.s.write_all(&to_vec(&Frame::Challenge { nonce: ns.to_vec() }))
                .unwrap();
            match c.next() {
                Some(Frame::Proof { mac: m }) => mac = m,
                _ => return c.all,
            }
        }
        let _ = c.s.write_all(&to_vec(&welcome(&nc, &ns, &mac)));
        let _ = c.next();
        c.all
    });
    (port, h)
}

/// Decodes every frame the client sent.
fn frames_of(mut b: &[u8]) -> Vec<Frame> {
    let mut v = Vec::new();
    while let Ok(Decoded::Frame(f, n)) = decode(b) {
        v.push(f);
        b = &b[n..];
    }
    assert!(b.is_empty(), "undecodable bytes from the client: {b:?}");
    v
}

fn welcome(flags: u32, proof: Vec<u8>) -> Frame {
    Frame::Welcome {
        version: VERSION,
        flags,
        proof,
        store: (0, 0),
    }
}

#[test]
fn the_client_refuses_a_server_that_cannot_prove_the_secret() {
    let s = scratch();
    let key = secret_file(&s, "alice.key", &format!("{ALICE_SECRET}\n"));
    let src = s.join("src");
    small_tree(&src, 5);
    let alice = || Key::from_secret(ALICE_SECRET.as_bytes());
    type Forge = Box<dyn FnOnce(&[u8], &[u8], &[u8]) -> Frame + Send>;
    let cases: Vec<(&str, Forge)> = vec![
        (
            "random proof",
            Box::new(|_, _, _| welcome(WELCOME_AUTHENTICATED, random_bytes(1, 32))),
        ),
        ("no proof", Box::new(|_, _, _| welcome(0, vec![]))),
        (
            "flag without proof",
            Box::new(|_, _, _| welcome(WELCOME_AUTHENTICATED, vec![])),
        ),
        (
            "the client's own proof sent back",
            Box::new(|_, _, mac| welcome(WELCOME_AUTHENTICATED, mac.to_vec())),
        ),
        (
            "another secret",
            Box::new(|nc, ns, _| {
                let k = Key::from_secret(b"a guess");
                welcome(
                    WELCOME_AUTHENTICATED,
                    k.server_proof("alice", nc, ns).to_vec(),
                )
            }),
        ),
        (
            "nonces swapped",
            Box::new(move |nc, ns, _| {
                welcome(
                    WELCOME_AUTHENTICATED,
                    alice().server_proof("alice", ns, nc).to_vec(),
                )
            }),
        ),
        (
            "another name",
            Box::new(move |nc, ns, _| {
                welcome(
                    WELCOME_AUTHENTICATED,
                    alice().server_proof("bob", nc, ns).to_vec(),
                )
            }),
        ),
        (
            "a good proof that is too long",
            Box::new(move |nc, ns, _| {
                let mut p = alice().server_proof("alice", nc, ns).to_vec();
                p.push(0);
                welcome(WELCOME_AUTHENTICATED, p)
            }),
        ),
    ];
    for (what, forge) in cases {
        let (port, h) = fake_server(true, forge);
        let o = keyed_client(port, "alice", &key, argv!["backup", src]).run();
        let sent = h.join().unwrap();
        assert_auth_refused(&o, "alice");
        o.err_has("the server does not know the secret");
        let frames = frames_of(&sent);
        assert!(
            matches!(&frames[..], [Frame::Hello { .. }, Frame::Proof { .. }]),
            "{what}: the client sent more than Hello and Proof: {frames:?}"
        );
        assert!(!contains(&sent, ALICE_SECRET.as_bytes()), "{what}");
    }

    // The control: the real proof gets the client going (here, its List).
    let (port, h) = fake_server(true, move |nc, ns, _| {
        welcome(
            WELCOME_AUTHENTICATED,
            alice().server_proof("alice", nc, ns).to_vec(),
        )
    });
    let o = keyed_client(port, "alice", &key, ["ls"]).run();
    let frames = frames_of(&h.join().unwrap());
    assert!(
        matches!(
            &frames[..],
            [Frame::Hello { .. }, Frame::Proof { .. }, Frame::List { .. }]
        ),
        "the control failed: {frames:?}\n{o}"
    );
    assert!(!o.err().contains("authentication failed"), "{o}");
}

#[test]
fn a_client_with_a_secret_refuses_a_server_without_secrets() {
    let s = scratch();
    let key = secret_file(&s, "alice.key", ALICE_SECRET);
    let src = s.join("src");
    small_tree(&src, 6);

    // The real server, run without --secrets.
    let srv = Server::start(&[]);
    let o = srv.client_keyed("alice", &key, argv!["backup", src]).run();
    assert_auth_refused(&o, "alice");
    o.err_has("the server did not authenticate itself");
    assert!(
        !srv.store("alice", &src).exists(),
        "the backup went to a server that did not authenticate itself"
    );

    // Fake servers that welcome without a challenge, with or without a
    // made-up proof: the client sends nothing after its Hello.
    for flags in [0, WELCOME_AUTHENTICATED] {
        let (port, h) = fake_server(false, move |_, _, _| welcome(flags, random_bytes(2, 32)));
        let o = keyed_client(port, "alice", &key, argv!["backup", src]).run();
        assert_auth_refused(&o, "alice");
        o.err_has("the server did not authenticate itself");
        let frames = frames_of(&h.join().unwrap());
        assert!(
            matches!(&frames[..], [Frame::Hello { .. }]),
            "flags {flags}: the client sent {frames:?}"
        );
    }
}

/// What the client sent, and what the server sent.
type Both = (Vec<u8>, Vec<u8>);

/// A forwarding proxy for one connection, 127.0.0.1:PORT to the server on
/// `to`; returns what the client sent and what the server sent.
fn tap(to: u16) -> (u16, JoinHandle<Both>) {
    fn pump(mut from: TcpStream, mut to: TcpStream) -> Vec<u8> {
        let mut seen = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        seen
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // The client opens one connection per backup: each is relayed in turn,
    // until none comes for a second after the last.
    let h = thread::spawn(move || {
        let (mut up, mut down) = (Vec::new(), Vec::new());
        let mut client = accept(&l);
        loop {
            let server = TcpStream::connect(("127.0.0.1", to)).unwrap();
            server
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let back = thread::spawn(move || pump(s2, c2));
            up.extend(pump(client, server));
            down.extend(back.join().unwrap());
            let end = Instant::now() + Duration::from_secs(1);
            client = loop {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                        break s;
                    }
                    Err(_) if Instant::now() < end => thread::sleep(Duration::from_millis(10)),
                    Err(_) => return (up, down),
                }
            };
        }
    });
    (port, h)
}

#[test]
fn the_secret_never_crosses_the_wire() {
    let srv = secured();
    let s = scratch();
    let key = secret_file(&s, "alice.key", &format!("{ALICE_SECRET}\n"));
    let src = s.join("src");
    small_tree(&src, 7);
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();

    let (port, h) = tap(srv.port());
    let o = keyed_client(port, "alice", &key, argv![])
        .stdin(format!(
            "backup {0}\nls {0}\nrestore {0} {1}\nquit\n",
            src.display(),
            dest.display()
        ))
        .run();
    o.ok();
    let (up, down) = h.join().unwrap();
    assert_same_tree(&src, &dest.join("src"));
    assert!(
        contains(&up, b"alice") && up.len() > 70_000,
        "tap saw too little"
    );
    for (dir, bytes) in [("client to server", &up), ("server to client", &down)] {
        assert!(
            !contains(bytes, ALICE_SECRET.as_bytes()),
            "the secret went {dir}"
        );
        // Nor any 8-byte piece of it.
        for piece in ALICE_SECRET.as_bytes().windows(8) {
            assert!(!contains(bytes, piece), "part of the secret went {dir}");
        }
    }
    assert!(!o.err().contains(ALICE_SECRET));
    assert!(!srv.log().contains(ALICE_SECRET));
}

// ---------------------------------------------------------------- namespaces

#[test]
fn a_client_authenticated_as_alice_never_reaches_bobs_namespace() {
    let srv = secured();
    let s = scratch();
    let alice_key = secret_file(&s, "alice.key", ALICE_SECRET);
    let bob_key = secret_file(&s, "bob.key", BOB_SECRET);

    // Bob's backup, with names and bytes nobody else should see.
    let bsrc = s.join("bobs");
    let mut t = Tree::new(&bsrc, 0o755, (1_600_000_000, 0));
    t.file(
        "diary-of-bob.txt",
        b"BOB-PRIVATE-BYTES",
        0o644,
        (1_600_000_001, 0),
    )
    .finish();
    srv.client_keyed("bob", &bob_key, argv!["backup", bsrc])
        .run()
        .ok();
    assert_same_tree(&bsrc, &srv.store("bob", &bsrc));
    let before = snapshot(&srv.ns("bob"));

    // Alice's own tree, so that her namespace exists.
    let asrc = s.join("alices");
    small_tree(&asrc, 8);
    srv.client_keyed("alice", &alice_key, argv!["backup", asrc])
        .run()
        .ok();

    // Through the real client: `..` never leaves her namespace.
    let bstore = srv.store("bob", &bsrc);
    let rel_to_bob = format!("../bob{}", bsrc.display());
    for (i, p) in [
        "../bob".to_string(),
        "/../bob".to_string(),
        "..".to_string(),
        "/..".to_string(),
        rel_to_bob.clone(),
        format!("/../..{}", bstore.display()),
        bsrc.display().to_string(),
    ]
    .into_iter()
    .enumerate()
    {
        let o = srv
            .client_keyed("alice", &alice_key, argv!["ls", p])
            .cwd(s.path())
            .run();
        assert!(matches!(o.code(), Some(0 | 1)), "ls {p}\n{o}");
        assert!(
            !o.out().contains("diary-of-bob"),
            "ls {p} showed bob's files\n{o}"
        );
        let dest = s.join(format!("dest-{i}"));
        fs::create_dir_all(&dest).unwrap();
        let o = srv
            .client_keyed("alice", &alice_key, argv!["restore", p, dest])
            .cwd(s.path())
            .run();
        assert!(matches!(o.code(), Some(0 | 1)), "restore {p}\n{o}");
        let mut found = false;
        let mut stack = vec![dest.clone()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                found |= e.file_name().to_string_lossy().contains("diary-of-bob");
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                }
            }
        }
        assert!(!found, "restore {p} brought back bob's files");
    }
    // Naming herself bob does not work with her secret.
    assert_auth_refused(&srv.client_keyed("bob", &alice_key, ["ls"]).run(), "bob");

    // Hand-made frames: `..` paths, and a symlink pointing at bob.
    let id_frames: Vec<(u32, Vec<u8>)> = vec![
        (1, raw_list(1, b"../bob")),
        (1, raw_list(1, b"/../bob")),
        (1, raw_restore(1, b"../bob")),
        (1, raw_restore(1, b"..")),
        (
            2,
            [raw_dir(1, b"../bob/evil"), to_vec(&Frame::Commit { id: 2 })].concat(),
        ),
        (
            2,
            [
                raw_file(1, b"../bob/evil.txt", 4),
                b"EVIL".to_vec(),
                to_vec(&Frame::FileEnd {
                    id: 1,
                    crc: crc32c::crc32c(b"EVIL"),
                    ok: true,
                }),
                to_vec(&Frame::Commit { id: 2 }),
            ]
            .concat(),
        ),
    ];
    for (id, bytes) in id_frames {
        let mut raw = Raw::authenticated(srv.port(), "alice", ALICE_SECRET.as_bytes());
        let (frames, bodies) = raw.exchange(&bytes, id, WAIT);
        assert!(
            !leaks(&frames, &bodies, b"diary-of-bob") && !leaks(&frames, &bodies, b"BOB-PRIVATE"),
            "bob's data sent to alice: {frames:?}"
        );
    }
    let mut raw = Raw::authenticated(srv.port(), "alice", ALICE_SECRET.as_bytes());
    let mut link = to_vec(&Frame::Symlink {
        id: 1,
        path: wpath("esc"),
        target: b"../bob".to_vec(),
        meta: meta(0o777),
    });
    link.extend(to_vec(&Frame::Symlink {
        id: 2,
        path: wpath("abs"),
        target: srv.ns("bob").to_str().unwrap().as_bytes().to_vec(),
        meta: meta(0o777),
    }));
    link.extend(to_vec(&Frame::Commit { id: 3 }));
    let (frames, _) = raw.exchange(&link, 3, WAIT);
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Frame::Committed { id: 3 })),
        "{frames:?}"
    );
    let inside = format!("{}", bsrc.display())
        .trim_start_matches('/')
        .to_string();
    let mut id = 4;
    for top in ["esc", "abs"] {
        for p in [
            top.to_string(),
            format!("{top}/{inside}"),
            format!("{top}/{inside}/diary-of-bob.txt"),
        ] {
            for req in [
                to_vec(&Frame::List {
                    id,
                    path: wpath(&p),
                }),
                to_vec(&Frame::Restore {
                    id,
                    path: wpath(&p),
                }),
            ] {
                let (frames, bodies) = raw.exchange(&req, id, WAIT);
                assert!(
                    !leaks(&frames, &bodies, b"diary-of-bob")
                        && !leaks(&frames, &bodies, b"BOB-PRIVATE"),
                    "{p}: bob's data sent to alice through a symlink: {frames:?}"
                );
                id += 1;
            }
        }
    }

    // Bob's namespace is exactly as he left it.
    assert_eq!(snapshot(&srv.ns("bob")), before, "bob's namespace changed");
    assert_same_tree(&bsrc, &srv.store("bob", &bsrc));
    assert_eq!(names(srv.root()), ["alice", "bob"]);
}
