//! Frame builders and decoders for tests: valid values made short, and the
//! bytes a session sent turned back into frames (and bodies).

use crate::proto::{self, codec, Decoded, Frame, Meta, Time, WirePath};

/// A wire path from a string known to be valid (panics otherwise).
pub fn wp(s: &str) -> WirePath {
    WirePath::new(s.as_bytes().to_vec()).expect("test path")
}

/// Ordinary metadata: mode 0644, a fixed mtime, owner 1000:100.
pub fn meta() -> Meta {
    Meta {
        mode: 0o644,
        mtime: Time { secs: 1, nanos: 2 },
        uid: 1000,
        gid: 100,
    }
}

/// The frames, encoded back to back.
pub fn bytes(frames: &[Frame]) -> Vec<u8> {
    let mut v = Vec::new();
    for f in frames {
        codec::encode(f, &mut v);
    }
    v
}

/// A client's `Hello` as `name`, without a nonce.
pub fn hello(name: &str) -> Frame {
    Frame::Hello {
        version: proto::VERSION,
        name: name.into(),
        flags: 0,
        nonce: vec![],
    }
}

/// A server's `Welcome` with `flags`, without a proof.
pub fn welcome(flags: u32) -> Frame {
    Frame::Welcome {
        version: proto::VERSION,
        flags,
        proof: vec![],
        store: (0, 0),
    }
}

/// One piece of what a server sent: a frame, or the raw body after a
/// `File` or `FileFrom` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A frame.
    Frame(Frame),
    /// A file body.
    Body(Vec<u8>),
}

/// Decodes every whole frame (and the body after each file header) at the
/// front of `buf` and removes them; a partial piece stays. Panics on bytes
/// that are not a valid frame.
pub fn take_pieces(buf: &mut Vec<u8>) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut off = 0;
    loop {
        let rest = &buf[off..];
        let (frame, n) = match codec::decode(rest) {
            Ok(Decoded::Frame(f, n)) => (f, n),
            Ok(Decoded::Partial) => break,
            Err(e) => panic!("a malformed frame: {e}: {rest:?}"),
        };
        let body = match &frame {
            Frame::File { size, .. } => *size,
            Frame::FileFrom { size, offset, .. } => size - offset,
            _ => 0,
        } as usize;
        if rest.len() < n + body {
            break;
        }
        pieces.push(Piece::Frame(frame));
        if body > 0 {
            pieces.push(Piece::Body(rest[n..n + body].to_vec()));
        }
        off += n + body;
    }
    buf.drain(..off);
    pieces
}

/// Only the frames of [`take_pieces`].
pub fn frames_of(pieces: &[Piece]) -> Vec<Frame> {
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Frame(f) => Some(f.clone()),
            Piece::Body(_) => None,
        })
        .collect()
}
