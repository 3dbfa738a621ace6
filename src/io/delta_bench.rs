//! The delta engine's throughput, timed: signing, the rolling checksum and
//! BLAKE3 alone, and matching 256 MiB unchanged, overwritten and shifted.
//! Here and not in `src/delta` because it reads the clock (the pure rings
//! do not). Ignored by default: it is a measurement, not a check.

use crate::delta::tests::noise;
use crate::delta::Rollsum;
use crate::delta::{block_size, Matcher, Signer};

/// `cargo test --release --lib io::delta_bench::throughput -- --ignored --nocapture`
#[test]
#[ignore]
fn throughput() {
    use std::time::Instant;
    const LEN: usize = 256 << 20;
    let old = noise(9, LEN);
    let block = block_size(LEN as u64, 4096);
    let mbs = |t: Instant| LEN as f64 / 1e6 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    let raw = blake3::hash(&old);
    println!("blake3 alone (one thread): {:.0} MB/s", mbs(t));

    let t = Instant::now();
    let weak = old
        .chunks(block as usize)
        .fold(0u32, |a, c| a ^ Rollsum::of(c).digest());
    println!("rollsum alone: {:.0} MB/s ({weak:#x})", mbs(t));

    let t = Instant::now();
    let mut s = Signer::new(block).unwrap();
    for c in old.chunks(1 << 20) {
        s.feed(c);
    }
    let sig = s.finish();
    println!(
        "sign 256 MiB in {block}-byte blocks: {:.0} MB/s ({} entries, {} bytes encoded)",
        mbs(t),
        sig.blocks.len(),
        sig.encoded_len()
    );

    // (offset, bytes, inserted: true puts them before the chunk there)
    let run = |name: &str, changed: Option<(usize, Vec<u8>, bool)>| {
        let t = Instant::now();
        let mut m = Matcher::new(&sig).unwrap();
        let mut ops = Vec::new();
        let mut op_count = 0;
        for (i, c) in old.chunks(1 << 20).enumerate() {
            match &changed {
                Some((at, bytes, insert)) if *at == i << 20 => {
                    m.feed(bytes, &mut ops);
                    if *insert {
                        m.feed(c, &mut ops);
                    }
                }
                _ => m.feed(c, &mut ops),
            }
            op_count += ops.len();
            ops.clear();
        }
        let stats = m.finish(&mut ops);
        op_count += ops.len();
        println!(
            "match 256 MiB {name}: {:.0} MB/s, {} ops, {} literal bytes, {} copied",
            mbs(t),
            op_count,
            stats.literal_bytes,
            stats.copied_bytes
        );
        stats
    };
    let same = run("unchanged", None);
    assert_eq!(same.literal_bytes, 0);
    let changed = run(
        "with 1 MiB overwritten",
        Some((100 << 20, noise(10, 1 << 20), false)),
    );
    assert!(changed.literal_bytes <= (1 << 20) + 2 * u64::from(block));
    let shifted = run(
        "with 1 MiB + 1 B inserted (the rest shifted)",
        Some((100 << 20, noise(11, (1 << 20) + 1), true)),
    );
    assert!(shifted.literal_bytes <= (1 << 20) + 1 + u64::from(block));

    let t = Instant::now();
    let raw2 = blake3::hash(&old);
    println!("blake3 alone again: {:.0} MB/s", mbs(t));
    assert_eq!(raw, raw2);
}
