//! A fake server on 127.0.0.1 that welcomes a client and answers its
//! requests with scripted frames, for hostile-server tests.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::{self};
use std::time::Duration;

use rsb::proto::codec::to_vec;
use rsb::proto::{decode, Decoded, Frame};

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
            store: (0, 0),
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
