//! The delta engine end to end, in memory: sign a basis, match a new file,
//! encode and decode the ops, assemble them, apply the actions to the
//! basis, and compare with the new file. Property tests over random files,
//! edits, block sizes and chunkings; the receiver's refusals of hostile
//! ops. (Its timed benchmark is `crate::io::delta_bench`: a pure ring reads
//! no clock.)

use super::*;
use proptest::prelude::*;

/// Deterministic bytes from a seed (xorshift64*).
pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A basis of one of three kinds: noise, a short unit repeated, or noise
/// with earlier stretches copied forward (content that recurs at other
/// offsets, the case weak collisions and duplicate blocks come from).
fn basis(kind: u8, seed: u64, len: usize) -> Vec<u8> {
    match kind % 3 {
        0 => noise(seed, len),
        1 => {
            let unit = noise(seed, 1 + (seed as usize % 5000));
            unit.iter().copied().cycle().take(len).collect()
        }
        _ => {
            let mut b = noise(seed, len);
            let mut x = seed;
            for _ in 0..(len / 4096) {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let n = (x >> 40) as usize % 9000;
                if len > 2 * n + 1 {
                    let from = (x >> 8) as usize % (len - n);
                    let to = (x >> 20) as usize % (len - n);
                    b.copy_within(from..from + n, to);
                }
            }
            b
        }
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Insert {
        at: u32,
        len: u16,
        seed: u64,
    },
    Delete {
        at: u32,
        len: u16,
    },
    Overwrite {
        at: u32,
        len: u16,
        seed: u64,
    },
    Truncate {
        at: u32,
    },
    Grow {
        len: u32,
        seed: u64,
    },
    /// Moves `blocks` blocks (of the test's block size) elsewhere.
    Move {
        from: u32,
        to: u32,
        blocks: u8,
    },
}

fn apply_edit(f: &mut Vec<u8>, e: &Edit, block: usize) {
    let pos = |at: u32, len: usize| at as usize % (len + 1);
    match *e {
        Edit::Insert { at, len, seed } => {
            let p = pos(at, f.len());
            f.splice(p..p, noise(seed, len as usize));
        }
        Edit::Delete { at, len } => {
            let p = pos(at, f.len());
            let end = (p + len as usize).min(f.len());
            f.drain(p..end);
        }
        Edit::Overwrite { at, len, seed } => {
            let p = pos(at, f.len());
            let end = (p + len as usize).min(f.len());
            f[p..end].copy_from_slice(&noise(seed, end - p));
        }
        Edit::Truncate { at } => f.truncate(pos(at, f.len())),
        Edit::Grow { len, seed } => f.extend(noise(seed, len as usize % 70_000)),
        Edit::Move { from, to, blocks } => {
            let n = (blocks as usize * block).min(f.len());
            let p = pos(from, f.len() - n);
            let piece: Vec<u8> = f.drain(p..p + n).collect();
            let q = pos(to, f.len());
            f.splice(q..q, piece);
        }
    }
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<u32>(), 1u16..5000, any::<u64>()).prop_map(|(at, len, seed)| Edit::Insert {
            at,
            len,
            seed
        }),
        (any::<u32>(), 1u16..20000).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<u32>(), 1u16..20000, any::<u64>()).prop_map(|(at, len, seed)| Edit::Overwrite {
            at,
            len,
            seed
        }),
        any::<u32>().prop_map(|at| Edit::Truncate { at }),
        (any::<u32>(), any::<u64>()).prop_map(|(len, seed)| Edit::Grow { len, seed }),
        (any::<u32>(), any::<u32>(), 1u8..8).prop_map(|(from, to, blocks)| Edit::Move {
            from,
            to,
            blocks
        }),
    ]
}

fn arb_block() -> impl Strategy<Value = u32> {
    prop_oneof![Just(32u32), Just(256), Just(1024), Just(4096), Just(8192)]
}

/// Feeds `data` in pieces whose sizes cycle through `chunks`.
fn chunked(data: &[u8], chunks: &[usize], mut f: impl FnMut(&[u8])) {
    let mut rest = data;
    for &c in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = c.clamp(1, rest.len());
        f(&rest[..n]);
        rest = &rest[n..];
    }
}

fn sign(basis: &[u8], block: u32, chunks: &[usize]) -> Signature {
    let mut s = Signer::small(block);
    chunked(basis, chunks, |c| s.feed(c));
    s.finish()
}

fn delta(m: Matcher, block: u32, new: &[u8], chunks: &[usize]) -> (Vec<Op>, MatchStats) {
    let mut m = m;
    let mut ops = Vec::new();
    let mut peak = 0;
    chunked(new, chunks, |c| {
        m.feed(c, &mut ops);
        peak = peak.max(m.buffered());
    });
    // The buffer stays O(block + 64 KiB) (capacity may double its length).
    let step = (block as usize).max(64 * 1024);
    assert!(
        peak <= 2 * (3 * step + LITERAL_MAX),
        "buffer grew to {peak}"
    );
    let stats = m.finish(&mut ops);
    (ops, stats)
}

/// The receiver's side: decode the encoded stream (fed in the given
/// chunking), assemble, apply to the basis.
fn rebuild(ops: &[Op], basis: &[u8], block: u32, target: u64) -> Result<Vec<u8>, Error> {
    let mut wire = Vec::new();
    for op in ops {
        encode_op(op, &mut wire);
    }
    let mut decoded = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        match decode_op(&wire[at..])? {
            DecodedOp::Op(op, n) => {
                decoded.push(op);
                at += n;
            }
            DecodedOp::Partial => panic!("a whole stream decoded as partial"),
        }
    }
    assert_eq!(decoded, ops);
    let mut asm = Assembler::new(basis.len() as u64, block, target)?;
    let mut actions = Vec::new();
    for op in decoded {
        asm.handle_op(op, &mut actions)?;
    }
    asm.finish(&mut actions)?;
    Ok(apply(&actions, basis))
}

/// Carries out actions as the shell will, checking they are in order.
fn apply(actions: &[Action], basis: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        match a {
            Action::CopyRange { src, dst, len } => {
                assert_eq!(*dst, out.len() as u64);
                out.extend_from_slice(&basis[*src as usize..(*src + *len) as usize]);
                if let Some(Action::CopyRange { src: s2, .. }) = actions.get(i + 1) {
                    assert_ne!(*s2, src + len, "adjacent copies not merged");
                }
            }
            Action::Write { dst, bytes } => {
                assert_eq!(*dst, out.len() as u64);
                out.extend_from_slice(bytes);
            }
        }
    }
    out
}

/// The op stream's own invariants.
fn check_ops(ops: &[Op], stats: MatchStats, new_len: usize) {
    let mut lit = 0u64;
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Literal(b) => {
                assert!(!b.is_empty() && b.len() <= LITERAL_MAX);
                lit += b.len() as u64;
            }
            Op::Copy { block, count } => {
                assert!(*count > 0);
                if let Some(Op::Copy { block: b2, .. }) = ops.get(i + 1) {
                    assert_ne!(*b2, block + count, "consecutive copies not coalesced");
                }
            }
        }
    }
    assert_eq!(lit, stats.literal_bytes);
    assert_eq!(stats.literal_bytes + stats.copied_bytes, new_len as u64);
}

fn arb_chunks() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        Just(vec![usize::MAX]),
        proptest::collection::vec(1usize..70_000, 1..6),
        proptest::collection::vec(1usize..64, 1..4),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn rebuilding_always_gives_the_new_file(
        kind in any::<u8>(),
        seed in any::<u64>(),
        len in prop_oneof![0usize..5000, 0usize..300_000],
        block in arb_block(),
        edits in proptest::collection::vec(arb_edit(), 0..6),
        sig_chunks in arb_chunks(),
        new_chunks in arb_chunks(),
    ) {
        let old = basis(kind, seed, len);
        let mut new = old.clone();
        for e in &edits {
            apply_edit(&mut new, e, block as usize);
        }
        let sig = sign(&old, block, &sig_chunks);
        prop_assert_eq!(&sig, &sign(&old, block, &[usize::MAX]));
        let (ops, stats) = delta(Matcher::new(&sig).unwrap(), block, &new, &new_chunks);
        check_ops(&ops, stats, new.len());
        let got = rebuild(&ops, &old, block, new.len() as u64).unwrap();
        prop_assert!(got == new, "rebuilt file differs from the new file");
    }

    #[test]
    fn an_unchanged_file_is_one_copy(
        kind in any::<u8>(),
        seed in any::<u64>(),
        len in 0usize..300_000,
        block in arb_block(),
        chunks in arb_chunks(),
    ) {
        let old = basis(kind, seed, len);
        let sig = sign(&old, block, &[usize::MAX]);
        let (ops, stats) = delta(Matcher::new(&sig).unwrap(), block, &old, &chunks);
        prop_assert_eq!(stats.literal_bytes, 0);
        let n = sig.blocks.len() as u32;
        let want = if n == 0 { vec![] } else { vec![Op::Copy { block: 0, count: n }] };
        prop_assert_eq!(ops, want);
    }

    #[test]
    fn an_overwrite_in_place_costs_at_most_k_plus_two_blocks(
        kind in any::<u8>(),
        seed in any::<u64>(),
        len in 1usize..300_000,
        block in arb_block(),
        at in any::<u32>(),
        k in 1u16..20000,
        chunks in arb_chunks(),
    ) {
        let old = basis(kind, seed, len);
        let mut new = old.clone();
        apply_edit(&mut new, &Edit::Overwrite { at, len: k, seed: !seed }, block as usize);
        let sig = sign(&old, block, &[usize::MAX]);
        let (ops, stats) = delta(Matcher::new(&sig).unwrap(), block, &new, &chunks);
        prop_assert!(stats.literal_bytes <= u64::from(k) + 2 * u64::from(block),
            "literal {} for k {} block {}", stats.literal_bytes, k, block);
        prop_assert!(rebuild(&ops, &old, block, new.len() as u64).unwrap() == new);
    }

    #[test]
    fn an_insertion_at_the_start_costs_at_most_k_plus_a_block(
        kind in any::<u8>(),
        seed in any::<u64>(),
        len in 1usize..300_000,
        block in arb_block(),
        k in 1u16..5000,
        chunks in arb_chunks(),
    ) {
        let old = basis(kind, seed, len);
        let mut new = old.clone();
        apply_edit(&mut new, &Edit::Insert { at: 0, len: k, seed: !seed }, block as usize);
        let sig = sign(&old, block, &[usize::MAX]);
        let (ops, stats) = delta(Matcher::new(&sig).unwrap(), block, &new, &chunks);
        prop_assert!(stats.literal_bytes <= u64::from(k) + u64::from(block),
            "literal {} for k {} block {}", stats.literal_bytes, k, block);
        prop_assert!(rebuild(&ops, &old, block, new.len() as u64).unwrap() == new);
    }

    #[test]
    fn the_receiver_never_panics_on_any_op_stream(
        basis_len in 0u64..100_000,
        target in 0u64..100_000,
        ops in proptest::collection::vec(
            prop_oneof![
                (any::<u32>(), any::<u32>()).prop_map(|(block, count)| Op::Copy { block, count }),
                (0u32..40, 0u32..5).prop_map(|(block, count)| Op::Copy { block, count }),
                (0usize..9000).prop_map(|n| Op::Literal(vec![7; n])),
            ],
            0..20,
        ),
    ) {
        let mut asm = Assembler::new(basis_len, 4096, target).unwrap();
        let mut actions = Vec::new();
        let mut ok = true;
        for op in ops {
            if asm.handle_op(op, &mut actions).is_err() {
                ok = false;
                break;
            }
        }
        if ok && asm.finish(&mut actions).is_ok() {
            // Whatever was accepted stays inside the basis and the target.
            let mut end = 0;
            for a in &actions {
                match a {
                    Action::CopyRange { src, dst, len } => {
                        prop_assert!(src + len <= basis_len && *dst == end);
                        end += len;
                    }
                    Action::Write { dst, bytes } => {
                        prop_assert!(*dst == end);
                        end += bytes.len() as u64;
                    }
                }
            }
            prop_assert_eq!(end, target);
        }
    }

    #[test]
    fn decode_op_never_panics_and_prefixes_are_partial(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        block in any::<u32>(),
        count in any::<u32>(),
        lit in proptest::collection::vec(any::<u8>(), 1..300),
    ) {
        let _ = decode_op(&bytes);
        for op in [Op::Copy { block, count }, Op::Literal(lit)] {
            let mut enc = Vec::new();
            encode_op(&op, &mut enc);
            for cut in 0..enc.len() {
                prop_assert_eq!(decode_op(&enc[..cut]), Ok(DecodedOp::Partial));
            }
            enc.push(0xff);
            prop_assert_eq!(decode_op(&enc), Ok(DecodedOp::Op(op, enc.len() - 1)));
        }
    }
}

/// A 10,000-byte basis in 4 KiB blocks: blocks 0 and 1 full, block 2 of
/// 1,808 bytes.
fn asm(target: u64) -> Assembler {
    Assembler::new(10_000, 4096, target).unwrap()
}

#[test]
fn the_assembler_refuses_hostile_ops() {
    let mut a = Vec::new();
    let copy = |block, count| Op::Copy { block, count };
    assert_eq!(
        asm(100).handle_op(copy(0, 0), &mut a),
        Err(Error::ZeroCount)
    );
    let out_of_range = Err(Error::BlockOutOfRange {
        block: 3,
        count: 1,
        blocks: 3,
    });
    assert_eq!(asm(100_000).handle_op(copy(3, 1), &mut a), out_of_range);
    for (b, c) in [(2, 2), (u32::MAX, u32::MAX), (1, u32::MAX), (u32::MAX, 1)] {
        assert!(matches!(
            asm(1 << 40).handle_op(copy(b, c), &mut a),
            Err(Error::BlockOutOfRange { .. })
        ));
    }
    // The short last block, not at the end.
    assert_eq!(
        asm(20_000).handle_op(copy(2, 1), &mut a),
        Err(Error::ShortBlockNotAtEnd { dst: 0 })
    );
    assert_eq!(
        asm(20_000).handle_op(copy(1, 2), &mut a),
        Err(Error::ShortBlockNotAtEnd { dst: 0 })
    );
    // Past the target, by a copy and by a literal, and after the end.
    assert_eq!(
        asm(4095).handle_op(copy(0, 1), &mut a),
        Err(Error::PastTarget {
            end: 4096,
            target: 4095
        })
    );
    let mut x = asm(10);
    x.handle_op(Op::Literal(vec![1; 10]), &mut a).unwrap();
    assert!(matches!(
        x.handle_op(Op::Literal(vec![1]), &mut a),
        Err(Error::PastTarget { end: 11, .. })
    ));
    let mut x = asm(1808);
    x.handle_op(copy(2, 1), &mut a).unwrap();
    assert!(matches!(
        x.handle_op(copy(0, 1), &mut a),
        Err(Error::PastTarget { .. })
    ));
    // Empty and oversized literals.
    assert_eq!(
        asm(10).handle_op(Op::Literal(vec![]), &mut a),
        Err(Error::EmptyLiteral)
    );
    assert_eq!(
        asm(1 << 20).handle_op(Op::Literal(vec![0; LITERAL_MAX + 1]), &mut a),
        Err(Error::LiteralTooLong(LITERAL_MAX as u64 + 1))
    );
    // Ending short.
    let mut x = asm(5000);
    x.handle_op(copy(0, 1), &mut a).unwrap();
    assert_eq!(
        x.finish(&mut a),
        Err(Error::ShortOfTarget {
            written: 4096,
            target: 5000
        })
    );
    assert!(Assembler::new(10, 3000, 10).is_err());
    // Offsets that overflow: a huge basis, a copy past 2^64 of output.
    let mut x = Assembler::new(u64::MAX, 1 << 20, u64::MAX).unwrap();
    x.handle_op(copy(0, u32::MAX), &mut a).unwrap();
    for _ in 0..4095 {
        x.handle_op(copy(0, u32::MAX), &mut a).unwrap();
    }
    assert_eq!(x.handle_op(copy(0, u32::MAX), &mut a), Err(Error::Overflow));
    // Every refusal reads as a sentence.
    assert_eq!(
        Error::ShortBlockNotAtEnd { dst: 4096 }.to_string(),
        "delta copy of the short last block at offset 4096 does not end the file"
    );
}

#[test]
fn the_assembler_merges_adjacent_copies_and_ends_exactly() {
    let mut a = Vec::new();
    let mut x = asm(4096 * 2 + 1808 + 3);
    x.handle_op(Op::Copy { block: 0, count: 1 }, &mut a)
        .unwrap();
    x.handle_op(Op::Copy { block: 1, count: 1 }, &mut a)
        .unwrap();
    x.handle_op(Op::Literal(vec![9; 3]), &mut a).unwrap();
    x.handle_op(Op::Copy { block: 2, count: 1 }, &mut a)
        .unwrap();
    x.finish(&mut a).unwrap();
    assert_eq!(
        a,
        vec![
            Action::CopyRange {
                src: 0,
                dst: 0,
                len: 8192
            },
            Action::Write {
                dst: 8192,
                bytes: vec![9; 3]
            },
            Action::CopyRange {
                src: 8192,
                dst: 8195,
                len: 1808
            },
        ]
    );
    // A copy of the same block twice is two ranges (the source jumps back).
    let mut a = Vec::new();
    let mut x = asm(8192);
    x.handle_op(Op::Copy { block: 0, count: 1 }, &mut a)
        .unwrap();
    x.handle_op(Op::Copy { block: 0, count: 1 }, &mut a)
        .unwrap();
    x.finish(&mut a).unwrap();
    assert_eq!(a.len(), 2);
    // An empty target from an empty stream.
    asm(0).finish(&mut Vec::new()).unwrap();
}

#[test]
fn decode_op_refuses_unknown_empty_and_oversized() {
    assert_eq!(decode_op(&[3]), Err(Error::UnknownTag(3)));
    assert_eq!(decode_op(&[0, 1, 2]), Err(Error::UnknownTag(0)));
    assert_eq!(decode_op(&[2, 0, 0, 0, 0]), Err(Error::EmptyLiteral));
    assert_eq!(
        decode_op(&[2, 0, 1, 0, 1]),
        Err(Error::LiteralTooLong(65537))
    );
    assert_eq!(decode_op(&[2, 0, 1, 0, 0]), Ok(DecodedOp::Partial));
    assert_eq!(decode_op(&[]), Ok(DecodedOp::Partial));
}

#[test]
fn a_short_last_block_matches_only_at_the_end() {
    let old = noise(1, 4096 * 3 + 100);
    let sig = sign(&old, 4096, &[usize::MAX]);
    let tail = &old[4096 * 3..];
    // The tail at the start of a new file, then noise: not copied.
    let mut new = tail.to_vec();
    new.extend(noise(2, 5000));
    let (ops, stats) = delta(Matcher::new(&sig).unwrap(), 4096, &new, &[usize::MAX]);
    assert_eq!(stats.copied_bytes, 0);
    assert_eq!(rebuild(&ops, &old, 4096, new.len() as u64).unwrap(), new);
    // Noise, then the tail at the end: copied.
    let mut new = noise(3, 777);
    new.extend_from_slice(tail);
    let (ops, stats) = delta(Matcher::new(&sig).unwrap(), 4096, &new, &[5]);
    assert_eq!(stats.copied_bytes, 100);
    assert_eq!(ops.last(), Some(&Op::Copy { block: 3, count: 1 }));
    // The tail's bytes plus one: not the tail.
    let mut new = old.clone();
    new.push(0);
    let (ops, stats) = delta(Matcher::new(&sig).unwrap(), 4096, &new, &[usize::MAX]);
    assert_eq!(stats.literal_bytes, 101);
    assert_eq!(rebuild(&ops, &old, 4096, new.len() as u64).unwrap(), new);
}

#[test]
fn the_matcher_refuses_an_inconsistent_signature() {
    let mut sig = sign(&noise(4, 9000), 4096, &[usize::MAX]);
    sig.blocks.pop();
    assert!(matches!(
        Matcher::new(&sig),
        Err(Error::CountMismatch { .. })
    ));
    sig.block = 3000;
    assert_eq!(Matcher::new(&sig).err(), Some(Error::BadBlock(3000)));
}

/// Literal bytes for a new file against a basis, rolling or aligned-only.
fn literal_cost(old: &[u8], new: &[u8], block: u32, rolling: bool) -> MatchStats {
    let sig = sign(old, block, &[usize::MAX]);
    let m = if rolling {
        Matcher::new(&sig).unwrap()
    } else {
        Matcher::aligned_only(&sig)
    };
    let (ops, stats) = delta(m, block, new, &[65536]);
    assert_eq!(rebuild(&ops, old, block, new.len() as u64).unwrap(), new);
    stats
}

/// The numbers in the module docs' "What rolling gains".
#[test]
fn rolling_gain_on_insertion() {
    let old = noise(5, 256 * 1024);
    let mut new = noise(6, 100);
    new.extend_from_slice(&old);
    let rolling = literal_cost(&old, &new, 4096, true);
    let aligned = literal_cost(&old, &new, 4096, false);
    println!("insertion of 100 B at the start of 256 KiB, 4 KiB blocks: rolling {rolling:?}, aligned-only {aligned:?}");
    assert_eq!(rolling.literal_bytes, 100);
    assert_eq!(aligned.literal_bytes, new.len() as u64);
    // In the middle: aligned-only loses everything after the insertion.
    let mut new = old[..100_000].to_vec();
    new.extend(noise(7, 100));
    new.extend_from_slice(&old[100_000..]);
    let rolling = literal_cost(&old, &new, 4096, true);
    let aligned = literal_cost(&old, &new, 4096, false);
    println!("insertion of 100 B at 100,000: rolling {rolling:?}, aligned-only {aligned:?}");
    assert!(rolling.literal_bytes <= 100 + 4096);
    assert!(aligned.literal_bytes >= 262_144 - 100_000);
    // In place, both find the same blocks.
    let mut new = old.clone();
    new[50_000..50_100].copy_from_slice(&noise(8, 100));
    assert_eq!(
        literal_cost(&old, &new, 4096, true),
        literal_cost(&old, &new, 4096, false)
    );
}
