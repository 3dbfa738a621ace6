//! The delta engine, pure: how a changed file whose previous version the
//! receiver holds travels as copies of the receiver's blocks and literal
//! bytes. No file, socket, thread or clock: bytes in, signatures, ops and
//! I/O commands out. The shell reads the basis, moves the frames and
//! carries out the [`Action`]s (copy_file_range for kept blocks).
//!
//! # The exchange
//! 1. The receiver (the server for a backup, the client for a restore)
//!    signs its basis with a [`Signer`]: fixed blocks of [`block_size`]
//!    bytes, aligned to the file system's block so that copied blocks can
//!    share extents, each with a weak [`Rollsum`] and a BLAKE3 hash.
//! 2. The sender runs a [`Matcher`] over the new file against that
//!    [`Signature`]: [`Op::Copy`] for runs of basis blocks found (also at
//!    shifted offsets: the window rolls byte by byte where nothing
//!    matches), [`Op::Literal`] of at most [`LITERAL_MAX`] bytes for the
//!    rest.
//! 3. The receiver's [`Assembler`] validates each op against the basis
//!    and the target length and yields [`Action`]s on its staging file.
//!
//! Files under [`DELTA_MIN`] are sent whole: their signature and the round
//! trip cost more than they save.
//!
//! # Guarantees
//! * Correctness: for every basis, new file, block size and chunking,
//!   applying the actions to the basis gives the new file (property tests
//!   in `tests.rs`). A block is copied only when its full 32-byte BLAKE3
//!   equals the window's; the weak sum only chooses candidates, so a weak
//!   collision costs time, never a wrong byte. The whole file's checksum,
//!   checked by the shell before commit as for any transfer, is the second
//!   line: a wrong basis (changed under the receiver) fails it.
//! * Hostile input: [`Signature::decode`], [`decode_op`] and the
//!   [`Assembler`] refuse with a typed [`Error`] every malformed or out of
//!   range value; offsets use checked arithmetic; nothing panics.
//! * Bounds: the matcher holds the lookup (a few dozen bytes per basis
//!   block) plus O(block + 64 KiB), whatever the new file's length; an
//!   unchanged file is one BLAKE3 pass with no rolling.
//!
//! # What rolling gains
//! Measured by `tests::rolling_gain_on_insertion` (256 KiB basis, 4 KiB
//! blocks, 100 bytes inserted at the start): aligned-only matching sends
//! the whole file as literals (262,244 bytes: every block is shifted);
//! rolling sends 100 literal bytes and copies all 64 blocks, a 2,622x
//! smaller delta. 100 bytes inserted at offset 100,000: rolling 4,196
//! literal bytes (the insertion and the block it falls in), aligned-only
//! 163,940 (everything after it). An in-place overwrite costs the same
//! either way (the test checks they are equal).
//!
//! # Speed
//! `crate::io::delta_bench::throughput` (ignored; `cargo test --release --lib
//! io::delta_bench::throughput -- --ignored --nocapture`), 256 MiB in 16 KiB
//! blocks on a shared 2-core machine (numbers vary ±40 % with its load):
//! BLAKE3 alone 1.5-3.3 GB/s, rollsum alone 1.6-3.1 GB/s, signing
//! 0.9-1.7 GB/s (both per block), matching an unchanged file 1.1-3.1 GB/s
//! (BLAKE3 only: no rolling), with 1 MiB overwritten or inserted
//! 0.9-2.7 GB/s. BLAKE3 dominates; the signer also pays the rollsum.

mod block;
mod copies;
mod error;
mod matcher;
mod ops;
mod rolling;
mod signature;

pub use block::block_size;
pub use copies::{Copies, CopyList, Resigner};
pub use error::Error;
pub use matcher::{MatchStats, Matcher};
pub use ops::{
    decode_op, encode_op, Action, Assembler, DecodedOp, Op, COPY_LEN, LITERAL_HEADER_LEN, TAG_COPY,
    TAG_LITERAL,
};
pub use rolling::Rollsum;
pub use signature::{
    is_valid_block, BlockSig, Signature, Signer, ENTRY_LEN, HEADER_LEN, SIG_VERSION,
};

/// Files smaller than this are sent whole.
pub const DELTA_MIN: u64 = 256 * 1024;
/// The smallest block size of a signature.
pub const MIN_BLOCK: u32 = 4096;
/// The largest block size of a signature.
pub const MAX_BLOCK: u32 = 1 << 20;
/// The most bytes one literal op carries.
pub const LITERAL_MAX: usize = 64 * 1024;

#[cfg(test)]
pub(crate) mod tests;
