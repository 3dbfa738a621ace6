//! Helpers for the unit tests of the protocol and the sessions.

use super::{codec, Frame, Meta, Time, WirePath};

/// A wire path from a string known to be valid.
pub fn wp(s: &str) -> WirePath {
    WirePath::new(s.as_bytes().to_vec()).expect("test path")
}

/// Ordinary metadata: mode 0644, a fixed mtime.
pub fn meta() -> Meta {
    Meta {
        mode: 0o644,
        mtime: Time { secs: 1, nanos: 2 },
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
