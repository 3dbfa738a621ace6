//! Target `decode`: the frame decoder on arbitrary bytes.

use rsb::proto::{codec, Decoded, Frame, HEADER_LEN};

/// Decodes frames from `data` back to back (skipping a byte after an
/// error, to reach frames further on). Checks: `decode` never panics; a
/// `Partial` really lacks bytes; every decoded frame re-encodes to exactly
/// the bytes it came from (the one exception: an unknown error code reads
/// as `Internal`), decodes again to itself, and its strict prefixes are
/// `Partial`.
pub fn decode(data: &[u8]) {
    let mut off = 0;
    while off < data.len() {
        let rest = &data[off..];
        match codec::decode(rest) {
            Ok(Decoded::Partial) => {
                let whole = rest
                    .get(1..HEADER_LEN)
                    .map(|l| HEADER_LEN + u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize);
                assert!(
                    whole.is_none_or(|w| rest.len() < w),
                    "Partial, yet the whole frame is there"
                );
                break;
            }
            Ok(Decoded::Frame(f, n)) => {
                assert!(
                    n >= HEADER_LEN && n <= rest.len(),
                    "used {n} of {}",
                    rest.len()
                );
                check_round_trip(&f, &rest[..n]);
                off += n;
            }
            Err(_) => off += 1,
        }
    }
}

fn check_round_trip(f: &Frame, wire: &[u8]) {
    let enc = codec::to_vec(f);
    assert_eq!(
        enc.len(),
        wire.len(),
        "re-encoding changed the length of {f:?}"
    );
    if let Frame::Error { .. } = f {
        // The code is the two bytes after the header.
        assert_eq!(enc[..HEADER_LEN], wire[..HEADER_LEN]);
        assert_eq!(enc[HEADER_LEN + 2..], wire[HEADER_LEN + 2..], "{f:?}");
    } else {
        assert_eq!(enc, wire, "re-encoding changed the bytes of {f:?}");
    }
    assert_eq!(
        codec::decode(&enc),
        Ok(Decoded::Frame(f.clone(), enc.len())),
        "decode(encode(f)) != f"
    );
    for cut in [
        0,
        1,
        HEADER_LEN - 1,
        HEADER_LEN,
        enc.len() / 2,
        enc.len() - 1,
    ] {
        if let Some(prefix) = enc.get(..cut.min(enc.len() - 1)) {
            assert_eq!(
                codec::decode(prefix),
                Ok(Decoded::Partial),
                "prefix {cut} of {f:?}"
            );
        }
    }
}
