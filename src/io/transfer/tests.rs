//! The body movers' tests, over socket pairs and temporary files.

use super::*;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;

fn data(n: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

fn rw_file(p: &std::path::Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(p)
        .unwrap()
}

#[test]
fn send_and_receive_a_body_through_a_socket_pair() {
    let t = tempfile::tempdir().unwrap();
    let body = data(3 * 1024 * 1024 + 17);
    std::fs::write(t.path().join("src"), &body).unwrap();
    let src: OwnedFd = std::fs::File::open(t.path().join("src")).unwrap().into();
    let dst: OwnedFd = rw_file(&t.path().join("dst")).into();
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let mut tx = BodySender::new(src, body.len() as u64).unwrap();
    let mut rx = BodyReceiver::new(body.len() as u64);
    let mut pipe = Pipe::new().unwrap();
    // Some bytes arrive in the frame buffer first.
    let first = rx.feed(Some(&dst), &body[..10]);
    assert_eq!(first, 10);
    let mut skip = 10u64;
    // Drain the first 10 bytes on the sending side by sending them to a sink.
    let mut rounds = 0;
    while !rx.is_done() {
        rounds += 1;
        assert!(rounds < 100_000);
        if !tx.is_done() {
            tx.pump(&a, 1 << 20).unwrap();
        }
        if skip > 0 {
            let mut sink = vec![0u8; skip as usize];
            if let Ok(n) = (&b).read(&mut sink) {
                skip -= n as u64;
            }
            continue;
        }
        rx.pump(&b, Some(&dst), &mut pipe, 1 << 20).unwrap();
    }
    let (crc, ok) = tx.finish();
    assert!(ok);
    assert_eq!(crc, crc32c::crc32c(&body));
    assert_eq!(rx.crc(), crc);
    assert_eq!(std::fs::read(t.path().join("dst")).unwrap(), body);
    assert!(rx.take_error().is_none());
}

/// Moves `tx`'s body to `rx` (feeding the first `fed` bytes from a
/// buffer, as the frame reader does), bounded.
fn move_body(tx: &mut BodySender, rx: &mut BodyReceiver, dst: &OwnedFd, fed: usize) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let mut pipe = Pipe::new().unwrap();
    let mut fed = fed;
    let mut rounds = 0;
    while !rx.is_done() {
        rounds += 1;
        assert!(rounds < 100_000);
        if !tx.is_done() {
            tx.pump(&a, 1 << 20).unwrap();
        }
        if fed > 0 {
            let mut buf = vec![0u8; fed];
            if let Ok(n) = (&b).read(&mut buf) {
                assert_eq!(rx.feed(Some(dst), &buf[..n]), n);
                fed -= n;
            }
            continue;
        }
        rx.pump(&b, Some(dst), &mut pipe, 1 << 20).unwrap();
    }
}

#[test]
fn a_sparse_body_carries_only_its_data_and_the_crc_covers_the_holes() {
    let t = tempfile::tempdir().unwrap();
    let mib = 1u64 << 20;
    let size = 9 * mib;
    // Holes at both ends and between the two runs of data.
    let mut want = vec![0u8; size as usize];
    {
        let f = rw_file(&t.path().join("src"));
        for (at, len) in [(2 * mib, 70_000u64), (5 * mib, mib + 3)] {
            let d = data(len as usize);
            nix::sys::uio::pwrite(&f, &d, at as i64).unwrap();
            want[at as usize..(at + len) as usize].copy_from_slice(&d);
        }
        f.set_len(size).unwrap();
    }
    let open = || -> OwnedFd { std::fs::File::open(t.path().join("src")).unwrap().into() };
    let mut tx = BodySender::new(open(), size).unwrap();
    let layout = tx.layout().clone();
    if !layout.is_sparse() {
        eprintln!("no holes on this file system; skipped");
        return;
    }
    let body = layout.body_len(size, 0);
    assert!(body < 3 * mib, "only the data is sent: {body}");
    let dst: OwnedFd = rw_file(&t.path().join("dst")).into();
    let mut rx = BodyReceiver::placed(&layout, size, 0, 0);
    move_body(&mut tx, &mut rx, &dst, 100);
    assert_eq!(tx.sent(), body);
    let (crc, ok) = tx.finish();
    assert!(ok);
    assert_eq!(
        crc,
        crc32c::crc32c(&want),
        "the sender's crc covers the holes"
    );
    assert_eq!(rx.crc(), crc, "and so does the receiver's");
    nix::unistd::ftruncate(&dst, size as i64).unwrap();
    assert_eq!(std::fs::read(t.path().join("dst")).unwrap(), want);
    let blocks = std::fs::metadata(t.path().join("dst")).unwrap().blocks();
    assert!(blocks * 512 <= 3 * mib, "holes stay holes: {blocks} blocks");

    // Resumed at 3 MiB (inside the first hole after the first run):
    // only the second run is sent, the crc still covers everything.
    let kept = 3 * mib;
    let mut tx = BodySender::from_offset(open(), size, kept).unwrap();
    let layout = tx.layout().clone();
    // The second run, rounded to the file system's blocks.
    let body = layout.body_len(size, kept);
    assert!((mib + 3..mib + 3 + 65536).contains(&body), "{body}");
    let prefix = crc_range(&dst, 0, kept, 0).unwrap();
    let mut rx = BodyReceiver::placed(&layout, size, kept, prefix);
    move_body(&mut tx, &mut rx, &dst, 0);
    assert_eq!(tx.finish(), (crc, true));
    assert_eq!(rx.crc(), crc);

    // All hole: no body at all, the crc of the zeros.
    let e = rw_file(&t.path().join("empty"));
    e.set_len(size).unwrap();
    let tx = BodySender::new(e.into(), size).unwrap();
    assert_eq!(tx.layout(), &Layout::Sparse(Vec::new()));
    assert!(tx.is_done());
    assert_eq!(tx.finish().0, crc32c::crc32c(&vec![0u8; size as usize]));
    let rx = BodyReceiver::placed(tx.layout(), size, 0, 0);
    assert!(rx.is_done());
    assert_eq!(rx.crc(), tx.finish().0);
}

/// Receives `rx`'s whole body from `sock` into `dst` with `receive_step`
/// under `budget` per step (bounded in steps, a short sleep when the socket
/// has nothing yet); true when it went through a pipe.
fn receive_all(rx: &mut BodyReceiver, sock: &UnixStream, dst: &OwnedFd, budget: u64) -> bool {
    let (mut inbuf, mut pipe, mut readable) = (crate::io::inbuf::InBuf::default(), None, true);
    let mut rounds = 0;
    while !rx.is_done() {
        rounds += 1;
        assert!(rounds < 100_000);
        receive_step(
            rx,
            &mut inbuf,
            sock,
            Some(dst),
            &mut pipe,
            &mut readable,
            budget,
        )
        .unwrap();
        if !readable {
            std::thread::sleep(std::time::Duration::from_millis(1));
            readable = true;
        }
    }
    pipe.is_some()
}

#[test]
fn a_small_body_is_read_without_a_pipe_and_the_frames_after_it_stay() {
    let t = tempfile::tempdir().unwrap();
    for len in [1, 12 * 1024 + 5, SMALL_BODY as usize] {
        let body = data(len);
        let (mut a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        a.write_all(&body).unwrap();
        a.write_all(b"next frame").unwrap();
        let dst: OwnedFd = rw_file(&t.path().join("dst")).into();
        let mut rx = BodyReceiver::new(body.len() as u64);
        // A budget that splits it, as a rate limit's does.
        let piped = receive_all(&mut rx, &b, &dst, 5000);
        assert!(!piped, "{len}: no pipe for a small body");
        assert_eq!(rx.crc(), crc32c::crc32c(&body), "{len}");
        assert_eq!(std::fs::read(t.path().join("dst")).unwrap(), body, "{len}");
        let mut rest = [0u8; 10];
        (&b).read_exact(&mut rest).unwrap();
        assert_eq!(
            &rest, b"next frame",
            "{len}: the next frame is left in the socket"
        );
    }
    // Past SMALL_BODY the body goes through the pipe; its last
    // SMALL_BODY bytes by read. The crc32c covers both in order.
    let body = data(SMALL_BODY as usize * 3 + 7);
    let (mut a, b) = UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    let dst: OwnedFd = rw_file(&t.path().join("big")).into();
    let mut rx = BodyReceiver::new(body.len() as u64);
    let writer = std::thread::spawn(move || a.write_all(&body).map(|_| body));
    let piped = receive_all(&mut rx, &b, &dst, 1 << 20);
    let body = writer.join().unwrap().unwrap();
    assert!(piped);
    assert_eq!(rx.crc(), crc32c::crc32c(&body));
    assert_eq!(std::fs::read(t.path().join("big")).unwrap(), body);
}

#[test]
fn receiver_reports_eof_mid_body() {
    let (mut a, b) = UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    a.write_all(b"abc").unwrap();
    drop(a);
    let t = tempfile::tempdir().unwrap();
    let dst: OwnedFd = std::fs::File::create(t.path().join("dst")).unwrap().into();
    let mut rx = BodyReceiver::new(10);
    let mut pipe = Pipe::new().unwrap();
    let err = rx.pump(&b, Some(&dst), &mut pipe, 1 << 20).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn shrunk_file_is_padded_and_marked_changed() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("src"), b"hello").unwrap();
    let src: OwnedFd = std::fs::File::open(t.path().join("src")).unwrap().into();
    let (a, mut b) = UnixStream::pair().unwrap();
    let mut tx = BodySender::new(src, 8).unwrap();
    tx.pump(&a, 1 << 20).unwrap();
    assert!(tx.is_done());
    assert!(!tx.finish().1);
    let mut got = [0u8; 8];
    b.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello\0\0\0");
}
