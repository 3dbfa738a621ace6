//! The delta ring's one error type. Every variant but [`Error::BadBlock`]
//! from a local caller is the peer's fault: a signature or an op stream
//! that no honest peer sends. Nothing here panics on hostile input.

use std::fmt;

use super::{LITERAL_MAX, MAX_BLOCK, MIN_BLOCK};

/// Why a signature or an op stream was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A signature does not start with [`super::signature::SIG_VERSION`].
    BadVersion(u8),
    /// The input ended inside a field (a whole signature was expected).
    Truncated(&'static str),
    /// Bytes left over after the last entry of a signature.
    Trailing(usize),
    /// A block size that is not a power of two within bounds.
    BadBlock(u32),
    /// A signature whose entry count is not ceil(file_len / block).
    CountMismatch {
        /// The file length the signature states.
        file_len: u64,
        /// Its block size.
        block: u32,
        /// The count it carries.
        count: u64,
    },
    /// An op tag that names no op.
    UnknownTag(u8),
    /// A literal op longer than [`LITERAL_MAX`].
    LiteralTooLong(u64),
    /// A literal op with no bytes (the matcher never sends one).
    EmptyLiteral,
    /// A copy of zero blocks.
    ZeroCount,
    /// A copy naming blocks the basis does not have.
    BlockOutOfRange {
        /// First block named.
        block: u32,
        /// Blocks named.
        count: u32,
        /// Blocks the basis has.
        blocks: u64,
    },
    /// A copy of the basis's short last block that does not end the file.
    ShortBlockNotAtEnd {
        /// Where the copy would have been written.
        dst: u64,
    },
    /// An op that would write past the target length.
    PastTarget {
        /// Where the op's output would end.
        end: u64,
        /// The target length.
        target: u64,
    },
    /// The op stream ended before the target length was reached.
    ShortOfTarget {
        /// Bytes produced.
        written: u64,
        /// The target length.
        target: u64,
    },
    /// An offset or length does not fit in 64 bits.
    Overflow,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadVersion(v) => write!(f, "delta signature of unknown version {v:#04x}"),
            Error::Truncated(what) => write!(f, "delta signature truncated in {what}"),
            Error::Trailing(n) => write!(f, "{n} trailing bytes after delta signature"),
            Error::BadBlock(b) => write!(
                f,
                "delta block size {b} is not a power of two in {MIN_BLOCK}..={MAX_BLOCK}"
            ),
            Error::CountMismatch {
                file_len,
                block,
                count,
            } => write!(
                f,
                "delta signature of a {file_len}-byte file in {block}-byte blocks has {count} entries"
            ),
            Error::UnknownTag(t) => write!(f, "unknown delta op tag {t}"),
            Error::LiteralTooLong(n) => {
                write!(f, "delta literal of {n} bytes exceeds the {LITERAL_MAX}-byte limit")
            }
            Error::EmptyLiteral => f.write_str("empty delta literal"),
            Error::ZeroCount => f.write_str("delta copy of zero blocks"),
            Error::BlockOutOfRange {
                block,
                count,
                blocks,
            } => write!(
                f,
                "delta copy of blocks {block}+{count} out of range (the basis has {blocks})"
            ),
            Error::ShortBlockNotAtEnd { dst } => write!(
                f,
                "delta copy of the short last block at offset {dst} does not end the file"
            ),
            Error::PastTarget { end, target } => write!(
                f,
                "delta op ends at offset {end}, past the {target}-byte target"
            ),
            Error::ShortOfTarget { written, target } => write!(
                f,
                "delta ended after {written} of {target} bytes"
            ),
            Error::Overflow => f.write_str("delta offset overflows"),
        }
    }
}

impl std::error::Error for Error {}
