//! The op stream: its encoding (frames to be) and the receiver's
//! [`Assembler`], which turns ops into I/O commands on the staging file
//! after checking everything a hostile sender could send.
//!
//! Encoding, big endian: a copy is tag 1, first block (u32), count (u32); a
//! literal is tag 2, length (u32, 1..=[`LITERAL_MAX`]), the bytes.

use super::signature::Signature;
use super::{Error, LITERAL_MAX};

/// Tag of [`Op::Copy`].
pub const TAG_COPY: u8 = 1;
/// Tag of [`Op::Literal`].
pub const TAG_LITERAL: u8 = 2;
/// Bytes of an encoded copy, and of a literal's header.
pub const COPY_LEN: usize = 9;
/// Bytes of a literal's header.
pub const LITERAL_HEADER_LEN: usize = 5;

/// One instruction from the sender to the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `count` blocks of the basis from block `block` on, in order.
    Copy {
        /// First block.
        block: u32,
        /// Blocks, at least 1.
        count: u32,
    },
    /// Bytes of the new file, 1..=[`LITERAL_MAX`] of them.
    Literal(Vec<u8>),
}

/// Appends `op`'s encoding to `out`.
pub fn encode_op(op: &Op, out: &mut Vec<u8>) {
    match op {
        Op::Copy { block, count } => {
            out.push(TAG_COPY);
            out.extend_from_slice(&block.to_be_bytes());
            out.extend_from_slice(&count.to_be_bytes());
        }
        Op::Literal(bytes) => {
            out.push(TAG_LITERAL);
            // The matcher never makes a literal over LITERAL_MAX; a caller's
            // longer one saturates and the receiver refuses it.
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

/// Result of [`decode_op`].
#[derive(Debug, PartialEq, Eq)]
pub enum DecodedOp {
    /// Not enough bytes yet for a whole op.
    Partial,
    /// One op, and how many bytes of the input it used.
    Op(Op, usize),
}

/// Decodes the op at the front of `buf`. Incomplete input is
/// [`DecodedOp::Partial`]; an unknown tag, an empty or oversized literal
/// is an error as soon as its header is seen.
pub fn decode_op(buf: &[u8]) -> Result<DecodedOp, Error> {
    let Some((&tag, rest)) = buf.split_first() else {
        return Ok(DecodedOp::Partial);
    };
    match tag {
        TAG_COPY => {
            let Some(f) = rest.first_chunk::<8>() else {
                return Ok(DecodedOp::Partial);
            };
            let block = u32::from_be_bytes([f[0], f[1], f[2], f[3]]);
            let count = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
            Ok(DecodedOp::Op(Op::Copy { block, count }, COPY_LEN))
        }
        TAG_LITERAL => {
            let Some(l) = rest.first_chunk::<4>() else {
                return Ok(DecodedOp::Partial);
            };
            let len = u32::from_be_bytes(*l) as usize;
            if len == 0 {
                return Err(Error::EmptyLiteral);
            }
            if len > LITERAL_MAX {
                return Err(Error::LiteralTooLong(len as u64));
            }
            match rest.get(4..4 + len) {
                Some(bytes) => Ok(DecodedOp::Op(
                    Op::Literal(bytes.to_vec()),
                    LITERAL_HEADER_LEN + len,
                )),
                None => Ok(DecodedOp::Partial),
            }
        }
        t => Err(Error::UnknownTag(t)),
    }
}

/// An I/O command on the staging file, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Copy `len` bytes of the basis at `src` to the staging file at `dst`
    /// (copy_file_range: extents may be shared).
    CopyRange {
        /// Offset in the basis.
        src: u64,
        /// Offset in the staging file.
        dst: u64,
        /// Bytes.
        len: u64,
    },
    /// Write `bytes` to the staging file at `dst`.
    Write {
        /// Offset in the staging file.
        dst: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
}

/// The receiver's side: checks ops in order against the basis and the
/// target length and turns them into [`Action`]s, adjacent copies merged.
#[derive(Debug)]
pub struct Assembler {
    basis_len: u64,
    block: u64,
    blocks: u64,
    target: u64,
    written: u64,
    pending: Option<(u64, u64, u64)>,
}

impl Assembler {
    /// An assembler building a `target_len`-byte file from a
    /// `basis_len`-byte basis cut in `block`-byte blocks (a power of two:
    /// the receiver's own signature's).
    pub fn new(basis_len: u64, block: u32, target_len: u64) -> Result<Assembler, Error> {
        if !block.is_power_of_two() {
            return Err(Error::BadBlock(block));
        }
        Ok(Assembler {
            basis_len,
            block: u64::from(block),
            blocks: Signature::block_count(basis_len, block),
            target: target_len,
            written: 0,
            pending: None,
        })
    }

    /// Bytes of the target the ops so far produce.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Takes the next op; appends the actions it completes to `out`.
    pub fn handle_op(&mut self, op: Op, out: &mut Vec<Action>) -> Result<(), Error> {
        match op {
            Op::Copy { block, count } => self.copy(block, count, out),
            Op::Literal(bytes) => {
                if bytes.is_empty() {
                    return Err(Error::EmptyLiteral);
                }
                if bytes.len() > LITERAL_MAX {
                    return Err(Error::LiteralTooLong(bytes.len() as u64));
                }
                let dst = self.written;
                self.advance(bytes.len() as u64)?;
                self.flush(out);
                out.push(Action::Write { dst, bytes });
                Ok(())
            }
        }
    }

    /// Ends the op stream: the last actions, or an error when the ops fell
    /// short of the target.
    pub fn finish(mut self, out: &mut Vec<Action>) -> Result<(), Error> {
        self.flush(out);
        if self.written != self.target {
            return Err(Error::ShortOfTarget {
                written: self.written,
                target: self.target,
            });
        }
        Ok(())
    }

    fn copy(&mut self, block: u32, count: u32, out: &mut Vec<Action>) -> Result<(), Error> {
        if count == 0 {
            return Err(Error::ZeroCount);
        }
        let end = u64::from(block) + u64::from(count);
        if end > self.blocks {
            return Err(Error::BlockOutOfRange {
                block,
                count,
                blocks: self.blocks,
            });
        }
        let src = u64::from(block)
            .checked_mul(self.block)
            .ok_or(Error::Overflow)?;
        let src_end = end
            .checked_mul(self.block)
            .ok_or(Error::Overflow)?
            .min(self.basis_len);
        let len = src_end - src;
        let dst = self.written;
        self.advance(len)?;
        let short_last = end == self.blocks && !self.basis_len.is_multiple_of(self.block);
        if short_last && self.written != self.target {
            return Err(Error::ShortBlockNotAtEnd { dst });
        }
        match self.pending.as_mut() {
            Some((p_src, _, p_len)) if *p_src + *p_len == src => *p_len += len,
            _ => {
                self.flush(out);
                self.pending = Some((src, dst, len));
            }
        }
        Ok(())
    }

    /// Moves the output end by `len`, within the target.
    fn advance(&mut self, len: u64) -> Result<(), Error> {
        let end = self.written.checked_add(len).ok_or(Error::Overflow)?;
        if end > self.target {
            return Err(Error::PastTarget {
                end,
                target: self.target,
            });
        }
        self.written = end;
        Ok(())
    }

    fn flush(&mut self, out: &mut Vec<Action>) {
        if let Some((src, dst, len)) = self.pending.take() {
            out.push(Action::CopyRange { src, dst, len });
        }
    }
}
