//! The fuzz harnesses for rsb's pure protocol code. Each `pub fn` here is
//! one cargo-fuzz target (`fuzz_targets/<name>.rs` only calls it): it takes
//! arbitrary bytes, drives the code under test, and panics when an
//! invariant breaks. Nothing here touches a socket, a file or a clock: the
//! sessions run on a virtual clock and a simulated I/O shell.
//!
//! Run them with `scripts/fuzz.sh`; `seeds` builds the starting corpus in
//! `fuzz/seeds/<target>/`. The input of every crash found and fixed is kept
//! there too, as `crash-<what was wrong>`, and `cargo test` (in `fuzz/`)
//! replays every seed through its harness.

mod client;
mod decode;
mod rng;
mod secrets;
pub mod seeds;
mod server;

pub use client::client_session;
pub use decode::decode;
pub use secrets::secrets;
pub use server::server_session;

use rsb::proto::{codec, Decoded, Frame};

/// Decodes every whole frame at the front of `buf` and removes it; panics
/// on bytes that are not a valid frame. `who` names the sender.
fn drain_frames(buf: &mut Vec<u8>, who: &str) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut off = 0;
    loop {
        match codec::decode(&buf[off..]) {
            Ok(Decoded::Frame(f, n)) => {
                frames.push(f);
                off += n;
            }
            Ok(Decoded::Partial) => break,
            Err(e) => panic!("{who} sent a malformed frame: {e}: {:?}", &buf[off..]),
        }
    }
    buf.drain(..off);
    frames
}
