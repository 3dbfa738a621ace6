//! The block size of a signature, chosen from the file's length and the
//! file system's block so that kept blocks stay extent-aligned.
//!
//! A power of two at least sqrt(file_len) (rsync's rule: signature and
//! literal cost grow alike), at least max([`MIN_BLOCK`], fs block), at most
//! [`MAX_BLOCK`]. An entry costs 36 bytes on the wire
//! ([`super::signature::ENTRY_LEN`]), the header 17:
//!
//! | file     | block   | blocks  | signature        |
//! |----------|---------|---------|------------------|
//! | 256 KiB  | 4 KiB   | 64      | 2,321 B (0.9 %)  |
//! | 1 GiB    | 32 KiB  | 32,768  | 1.13 MiB (0.11 %)|
//! | 64 GiB   | 256 KiB | 262,144 | 9.0 MiB (0.014 %)|
//!
//! Beyond 1 TiB the block stays at 1 MiB and the signature grows linearly
//! (36 B per MiB).

use super::{MAX_BLOCK, MIN_BLOCK};

/// The block size for a file of `file_len` bytes on a file system whose
/// block is `fs_block` bytes (a power of two, or 0 when unknown; any other
/// value is ignored).
pub fn block_size(file_len: u64, fs_block: u32) -> u32 {
    let floor = if fs_block.is_power_of_two() {
        fs_block.clamp(MIN_BLOCK, MAX_BLOCK)
    } else {
        MIN_BLOCK
    };
    let root = ceil_sqrt(file_len);
    // root <= 2^32, so its next power of two fits in a u64.
    let want = root.next_power_of_two();
    let capped = want.min(u64::from(MAX_BLOCK)) as u32;
    capped.max(floor)
}

/// The least r with r * r >= n.
fn ceil_sqrt(n: u64) -> u64 {
    let r = n.isqrt();
    if r * r == n {
        r
    } else {
        r + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_square_root_within_bounds() {
        assert_eq!(block_size(0, 0), 4096);
        assert_eq!(block_size(256 * 1024, 0), 4096);
        assert_eq!(block_size(1 << 30, 0), 32 * 1024);
        assert_eq!(block_size((1 << 30) + 1, 0), 64 * 1024);
        assert_eq!(block_size(64 << 30, 0), 256 * 1024);
        assert_eq!(block_size(1 << 40, 0), 1 << 20);
        assert_eq!(block_size(u64::MAX, 0), 1 << 20);
    }

    #[test]
    fn the_fs_block_is_a_floor_and_odd_values_are_ignored() {
        assert_eq!(block_size(256 * 1024, 65536), 65536);
        assert_eq!(block_size(256 * 1024, 512), 4096);
        assert_eq!(block_size(256 * 1024, 12345), 4096);
        assert_eq!(block_size(256 * 1024, 1 << 31), 1 << 20);
    }

    #[test]
    fn every_size_is_a_power_of_two_in_bounds() {
        let mut len = 1u64;
        while len < u64::MAX / 3 {
            for fs in [0, 1, 4096, 8192, 1 << 20, 1 << 25, 3] {
                let b = block_size(len, fs);
                assert!(b.is_power_of_two(), "{len} {fs} -> {b}");
                assert!((MIN_BLOCK..=MAX_BLOCK).contains(&b));
                if fs.is_power_of_two() {
                    assert_eq!(b % fs.min(MAX_BLOCK), 0);
                }
                if u64::from(b) < u64::from(MAX_BLOCK) {
                    assert!(u64::from(b) * u64::from(b) >= len);
                }
            }
            len = len * 3 + 1;
        }
    }

    #[test]
    fn documented_signature_sizes() {
        use crate::delta::signature::{ENTRY_LEN, HEADER_LEN};
        let size = |len: u64| {
            let b = u64::from(block_size(len, 0));
            HEADER_LEN as u64 + len.div_ceil(b) * ENTRY_LEN as u64
        };
        assert_eq!(size(256 << 10), 2_321);
        assert_eq!(size(1 << 30), 17 + 32_768 * 36);
        assert_eq!(size(64 << 30), 17 + 262_144 * 36);
    }
}
