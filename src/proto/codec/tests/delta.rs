//! The delta frames' codec tests (issue 14): hostile runs, offsets,
//! signature pieces and delta lists are refused before anything is built.

use super::*;

/// A hostile delta is refused before anything is done with it: runs out
/// of order or overlapping, empty, past the new file or the basis, too
/// many; signature pieces empty, longer than announced or too large; a
/// `Need`'s delta list not ascending.
#[test]
fn bad_deltas_and_signatures_rejected() {
    let from = |size: u64, basis: u64, offset: u64, copies: Vec<(u64, u64, u64)>| {
        to_vec(&Frame::FileDelta {
            id: 1,
            path: path("f"),
            meta: meta(),
            size,
            basis,
            offset,
            copies: copies
                .into_iter()
                .map(|(dst, src, len)| CopyRange { dst, src, len })
                .collect(),
        })
    };
    let delta = |size, basis, copies| from(size, basis, 0, copies);
    let bad = DecodeError::Invalid("copy");
    assert!(decode(&delta(100, 100, vec![(0, 0, 10), (10, 10, 90)])).is_ok());
    // From an offset: the runs lie past it, and it lies inside the file.
    assert!(decode(&from(100, 100, 10, vec![(10, 0, 10)])).is_ok());
    assert!(decode(&from(100, 100, 100, vec![])).is_ok());
    assert_eq!(
        decode(&from(100, 100, 11, vec![(10, 0, 10)])),
        Err(bad.clone())
    );
    assert_eq!(
        decode(&from(100, 100, 101, vec![])),
        Err(DecodeError::Invalid("offset"))
    );
    assert_eq!(decode(&delta(100, 100, vec![(0, 0, 0)])), Err(bad.clone()));
    assert_eq!(
        decode(&delta(100, 100, vec![(0, 0, 10), (9, 0, 10)])),
        Err(bad.clone())
    );
    assert_eq!(
        decode(&delta(100, 100, vec![(20, 0, 10), (0, 0, 10)])),
        Err(bad.clone())
    );
    assert_eq!(
        decode(&delta(100, 100, vec![(95, 0, 10)])),
        Err(bad.clone())
    );
    assert_eq!(decode(&delta(100, 50, vec![(0, 45, 10)])), Err(bad.clone()));
    assert_eq!(
        decode(&delta(u64::MAX, u64::MAX, vec![(u64::MAX - 1, 0, 5)])),
        Err(bad.clone())
    );
    assert_eq!(
        decode(&delta(u64::MAX, u64::MAX, vec![(0, u64::MAX - 1, 5)])),
        Err(bad)
    );
    let many: Vec<(u64, u64, u64)> = (0..=u64::from(MAX_DELTA_COPIES))
        .map(|i| (i, 0, 1))
        .collect();
    // Past the frame limit or the count limit: refused either way.
    assert!(decode(&delta(1 << 20, 1, many)).is_err());
    let sig = |total: u32, chunk: Vec<u8>| {
        to_vec(&Frame::Signature {
            id: 1,
            index: 0,
            total,
            chunk,
        })
    };
    let bad = DecodeError::Invalid("chunk");
    assert!(decode(&sig(3, vec![1, 2, 3])).is_ok());
    assert_eq!(decode(&sig(3, vec![])), Err(bad.clone()));
    assert_eq!(decode(&sig(2, vec![1, 2, 3])), Err(bad.clone()));
    assert_eq!(decode(&sig(MAX_SIGNATURE + 1, vec![1])), Err(bad));
    let need = to_vec(&Frame::Need {
        id: 1,
        bits: vec![0xff],
        meta: vec![0],
        resume: vec![],
        delta: vec![3, 3],
    });
    assert_eq!(decode(&need), Err(DecodeError::Invalid("index")));
}
