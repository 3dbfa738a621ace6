//! Files that change or vanish while a backup runs: a file that keeps
//! growing is stored as the last copy read (a valid prefix, with a crc32c
//! that covers exactly what was stored), a file removed between the walk and
//! its sending is a warning, and both end the client with status 24, which
//! any failure outranks.

#[macro_use]
mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rsb::proto::codec::to_vec;
use rsb::proto::{decode, Decoded, Frame};

/// The status for files that changed while read or vanished.
const SOURCE_CHANGED: i32 = 24;

/// A one-connection proxy on 127.0.0.1 to the server at `port` that passes
/// the client's bytes on at about 32 MiB/s, so that sending a file of
/// several MiB takes long enough for a writer to change it every time.
fn throttled_proxy(port: u16) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        let Ok((client, _)) = l.accept() else { return };
        let server = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let (mut s_read, mut c_write) = (server, client);
        thread::spawn(move || {
            let _ = std::io::copy(&mut s_read, &mut c_write);
            let _ = c_write.shutdown(std::net::Shutdown::Write);
        });
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = c_read.read(&mut buf) {
            if n == 0 || s_write.write_all(&buf[..n]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(2));
        }
        let _ = s_write.shutdown(std::net::Shutdown::Write);
    });
    proxy_port
}

/// Appends a line to `path` every millisecond until `stop` is set; at most
/// 60 s and 60,000 lines (under 4 MiB) whatever happens.
fn appender(path: &Path, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(60);
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) && Instant::now() < end && n < 60_000 {
            writeln!(f, "{n:08} another line of a log that keeps growing").unwrap();
            n += 1;
            thread::sleep(Duration::from_millis(1));
        }
        n
    })
}

#[test]
fn a_file_that_keeps_growing_is_stored_as_a_verified_prefix_with_status_24() {
    let srv = Server::start(&[]);
    let s = scratch();
    let log = s.join("app.log");
    write_big(&log, 16, 7);
    let initial = fs::metadata(&log).unwrap().len();
    let port = throttled_proxy(srv.port());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = appender(&log, stop.clone());
    let o = Cmd::client()
        .args(["-n", NAME, "127.0.0.1", &port.to_string(), "backup"])
        .arg(&log)
        .timeout(Duration::from_secs(60))
        .run();
    stop.store(true, Ordering::Relaxed);
    let lines = writer.join().unwrap();
    assert!(lines > 0, "the writer never wrote");
    o.code_is(SOURCE_CHANGED);
    o.err_has("app.log: changed while read (3 times): stored as last read");
    o.err_has(", 0 failed, 1 changed while read,");
    let stored = fs::read(srv.store(NAME, &log)).unwrap();
    let now = fs::read(&log).unwrap();
    assert!(
        stored.len() as u64 > initial,
        "stored {} bytes, the file had {initial} before the backup\n{o}",
        stored.len()
    );
    assert!(
        now.starts_with(&stored),
        "the stored copy is not a prefix\n{o}"
    );
    // The server's crc32c covers exactly what it stored.
    let v = srv.client(argv!["verify"]).run();
    v.ok();
    v.err_has(" 0 damaged, 0 without a checksum");
    // Once it stops changing, the next backup stores it whole, status 0.
    srv.client(argv!["backup", &log]).run().ok();
    assert_eq!(fs::read(srv.store(NAME, &log)).unwrap(), now);
}

/// Reads from `s` into `buf` until it holds `n` bytes; false at EOF.
fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> bool {
    while buf.len() < n {
        let mut tmp = [0u8; 65536];
        match s.read(&mut tmp) {
            Ok(0) | Err(_) => return false,
            Ok(k) => buf.extend_from_slice(&tmp[..k]),
        }
    }
    true
}

/// A fake backup server for one connection: it needs every entry of every
/// manifest, calls `on_manifest` before answering the first one (the test
/// removes a file there: after the client's walk, before its sending),
/// swallows bodies, fails the file entries whose path ends in `fail`, and
/// confirms every commit.
fn fake_backup_server(
    on_manifest: impl FnOnce() + Send + 'static,
    fail: Option<&'static str>,
) -> (u16, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut on_manifest = Some(on_manifest);
        let mut buf = Vec::new();
        loop {
            let (f, used) = match decode(&buf) {
                Ok(Decoded::Frame(f, used)) => (f, used),
                Ok(Decoded::Partial) => {
                    let want = buf.len() + 1;
                    if !fill(&mut s, &mut buf, want) {
                        return;
                    }
                    continue;
                }
                Err(e) => panic!("bad frame from the client: {e}"),
            };
            buf.drain(..used);
            let answer = match f {
                Frame::Hello { .. } => Some(Frame::Welcome {
                    version: rsb::proto::VERSION,
                    flags: 0,
                    proof: vec![],
                    store: (0, 0),
                }),
                Frame::Manifest { id, entries } => {
                    if let Some(cb) = on_manifest.take() {
                        cb();
                    }
                    Some(Frame::Need {
                        id,
                        bits: vec![0xff; entries.len().div_ceil(8)],
                        meta: vec![0; entries.len().div_ceil(8)],
                        resume: vec![],
                        delta: vec![],
                    })
                }
                Frame::File { id, path, size, .. } => {
                    let size = size as usize;
                    assert!(fill(&mut s, &mut buf, size), "body cut short");
                    buf.drain(..size);
                    let failed = fail.filter(|f| path.as_bytes().ends_with(f.as_bytes()));
                    failed.map(|_| Frame::Failed {
                        id,
                        path,
                        message: "injected failure".into(),
                    })
                }
                Frame::Commit { id } => Some(Frame::Committed { id }),
                _ => None,
            };
            if let Some(a) = answer {
                if s.write_all(&to_vec(&a)).is_err() {
                    return;
                }
            }
        }
    });
    (port, h)
}

/// `d` with `gone`, `kept` and `bad`, and the client's run against a fake
/// server that removes `gone` after the walk and fails `fail`.
fn backup_while_one_vanishes(fail: Option<&'static str>) -> Output {
    let s = scratch();
    let d = s.join("d");
    fs::create_dir(&d).unwrap();
    for n in ["bad", "gone", "kept"] {
        fs::write(d.join(n), random_bytes(3, 1000)).unwrap();
    }
    let gone = d.join("gone");
    let (port, server) = fake_backup_server(move || fs::remove_file(gone).unwrap(), fail);
    let o = Cmd::client()
        .args(["-n", NAME, "127.0.0.1", &port.to_string(), "backup"])
        .arg(&d)
        .run();
    server.join().unwrap();
    assert!(!d.join("gone").exists());
    o
}

#[test]
fn a_file_removed_between_the_walk_and_its_sending_is_a_warning_with_status_24() {
    let o = backup_while_one_vanishes(None);
    o.code_is(SOURCE_CHANGED);
    o.err_has("/d/gone: vanished before it could be sent");
    o.err_has("backup: 2 files sent, 0 unchanged, 0 failed, 1 vanished, 2000 bytes");
}

#[test]
fn a_failed_file_outranks_a_vanished_one_in_the_exit_status() {
    let o = backup_while_one_vanishes(Some("/bad"));
    o.code_is(1);
    o.err_has("/d/bad: server: injected failure");
    o.err_has("/d/gone: vanished before it could be sent");
    o.err_has(", 1 failed, 1 vanished,");
}
