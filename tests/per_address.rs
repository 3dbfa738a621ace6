//! Per-address limits: one address cannot take every connection slot, and
//! an address that keeps failing to authenticate waits, and is logged once
//! per burst. Loopback source addresses 127.0.0.2, .3 stand for other
//! machines.

#[macro_use]
#[allow(unused_macros)]
mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::*;
use rsb::proto::{ErrorCode, Frame, NONCE_LEN, VERSION};

const WAIT: Duration = Duration::from_secs(5);
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

fn hello_from(src: Ipv4Addr, port: u16) -> (Raw, Frame) {
    let mut r = Raw::connect_from(src, port);
    let _ = r.send_raw(&rsb::proto::codec::to_vec(&hello(NAME)));
    let f = match r.recv(WAIT) {
        Recv::Frame(f) => f,
        other => panic!("from {src}: {other:?}"),
    };
    (r, f)
}

/// Regression (issue 9 item 8): there was no per-address limit, so one
/// address holding connections (80 reconnect loops) let almost no other
/// client in at `-c 64`. Now it gets at most `--max-per-address` of them.
#[test]
fn one_address_cannot_take_every_connection_slot() {
    let srv = Server::start(&["-c", "16", "--max-per-address", "4"]);
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..16 {
        match hello_from(ATTACKER, srv.port()) {
            (r, Frame::Welcome { .. }) => held.push(r),
            (_, Frame::Error { code, message }) => {
                assert_eq!(code, ErrorCode::Busy);
                assert!(
                    message.contains("4 connections from 127.0.0.2"),
                    "{message}"
                );
                refused += 1;
            }
            (_, f) => panic!("{f:?}"),
        }
    }
    assert_eq!((held.len(), refused), (4, 12));
    // Other addresses are served meanwhile: another machine, and a real
    // client from 127.0.0.1.
    let (_r, f) = hello_from(OTHER, srv.port());
    assert!(matches!(f, Frame::Welcome { .. }), "{f:?}");
    srv.client(["ls"]).timeout(WAIT).run().ok();
    // Refusals are logged once per burst, then counted.
    let log = srv.log();
    assert_eq!(
        log.matches("refused: server busy (4 connections from 127.0.0.2")
            .count(),
        1,
        "{log}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || srv
            .log()
            .contains("127.0.0.2: 11 more refused connections in the last")),
        "{}",
        srv.log()
    );
    // A freed slot is the address's again.
    held.pop();
    assert!(wait_until(WAIT, || matches!(
        hello_from(ATTACKER, srv.port()).1,
        Frame::Welcome { .. }
    )));
}

/// Regression (issue 9 item 8): every failed proof wrote a log line
/// (7,000 to 10,000 a second) and was checked at once however many came
/// before. Now an address that keeps failing waits longer and longer, and
/// its failures are counted in one line per burst.
#[test]
fn failed_authentications_from_one_address_back_off_and_are_logged_once_per_burst() {
    let srv = Server::start_with_secrets("alice:right secret\n", &[]);
    let (mut failed, mut backed_off) = (0, 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) && failed + backed_off < 2000 {
        let mut r = Raw::connect_from(ATTACKER, srv.port());
        let _ = r.send_raw(&rsb::proto::codec::to_vec(&Frame::Hello {
            version: VERSION,
            name: "alice".into(),
            flags: 0,
            nonce: vec![7; NONCE_LEN],
        }));
        match r.recv(WAIT) {
            Recv::Frame(Frame::Challenge { .. }) => {
                let _ = r.send_raw(&rsb::proto::codec::to_vec(&Frame::Proof {
                    mac: vec![0; 32],
                }));
                match r.recv(WAIT) {
                    Recv::Frame(Frame::Error {
                        code: ErrorCode::Auth,
                        ..
                    }) => failed += 1,
                    other => panic!("{other:?}"),
                }
            }
            Recv::Frame(Frame::Error {
                code: ErrorCode::Busy,
                message,
            }) => {
                assert!(
                    message.contains("too many failed authentications from 127.0.0.2"),
                    "{message}"
                );
                backed_off += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    // Ten free tries, then one after 1 s, then after 2 s more.
    assert!((11..=13).contains(&failed), "{failed} proofs checked");
    assert!(backed_off > 0);
    // Another address is not held up by it.
    let key = rsb::auth::Key::from_secret(b"right secret");
    let mut r = Raw::connect_from(OTHER, srv.port());
    let nc = vec![3; NONCE_LEN];
    r.send(&Frame::Hello {
        version: VERSION,
        name: "alice".into(),
        flags: 0,
        nonce: nc.clone(),
    });
    let Recv::Frame(Frame::Challenge { nonce: ns }) = r.recv(WAIT) else {
        panic!("no challenge")
    };
    r.send(&Frame::Proof {
        mac: key.client_proof("alice", &nc, &ns).to_vec(),
    });
    assert!(matches!(r.recv(WAIT), Recv::Frame(Frame::Welcome { .. })));
    // The free tries in full, the rest counted once the burst is over.
    let log = srv.log();
    assert_eq!(
        log.matches("authentication failed for alice").count(),
        10,
        "{log}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let log = srv.log();
            log.contains(&format!(
                "127.0.0.2: {} more failed authentications and {} more refused connections in the last",
                failed - 10,
                backed_off - 1
            ))
        }),
        "{}",
        srv.log()
    );
    assert!(srv.log().lines().count() < 30, "{}", srv.log());
}
