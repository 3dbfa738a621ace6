//! The receiver's block signatures of its basis file: a streaming
//! [`Signer`] and the exact binary encoding used for a side file and for the
//! wire.
//!
//! Encoding, big endian: [`SIG_VERSION`] (1 byte), file_len (u64), block
//! (u32), count (u32), then count entries of weak (u32) and strong (32
//! bytes, BLAKE3 of the block). [`Signature::decode`] refuses an unknown
//! version, a block that is not a power of two in
//! [`MIN_BLOCK`]..=[`MAX_BLOCK`], a count other than ceil(file_len / block),
//! a short input and trailing bytes.

use super::rolling::Rollsum;
use super::{Error, MAX_BLOCK, MIN_BLOCK};

/// The first byte of an encoded signature: format version 1.
pub const SIG_VERSION: u8 = 0xd1;
/// Bytes before the first entry.
pub const HEADER_LEN: usize = 1 + 8 + 4 + 4;
/// Bytes of one entry.
pub const ENTRY_LEN: usize = 4 + 32;

/// The signature of one block of the basis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSig {
    /// The rolling checksum ([`Rollsum`]) of the block.
    pub weak: u32,
    /// BLAKE3 of the block, all 32 bytes: it alone decides a match.
    pub strong: [u8; 32],
}

impl BlockSig {
    /// The signature of `block`'s bytes.
    pub fn of(block: &[u8]) -> BlockSig {
        BlockSig {
            weak: Rollsum::of(block).digest(),
            strong: *blake3::hash(block).as_bytes(),
        }
    }
}

/// The signatures of a basis file cut into `block`-byte blocks; the last
/// block is short when `file_len % block != 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The basis's length.
    pub file_len: u64,
    /// The block size, a power of two.
    pub block: u32,
    /// One entry per block, in file order.
    pub blocks: Vec<BlockSig>,
}

impl Signature {
    /// Bytes of [`Signature::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.blocks.len() * ENTRY_LEN
    }

    /// The exact binary form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(SIG_VERSION);
        out.extend_from_slice(&self.file_len.to_be_bytes());
        out.extend_from_slice(&self.block.to_be_bytes());
        // 2^32 blocks of 1 MiB are 4 PiB: a larger file's count saturates
        // and decode refuses it.
        let count = u32::try_from(self.blocks.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for b in &self.blocks {
            out.extend_from_slice(&b.weak.to_be_bytes());
            out.extend_from_slice(&b.strong);
        }
        out
    }

    /// Parses a whole encoded signature; see the module docs for what it
    /// refuses.
    pub fn decode(bytes: &[u8]) -> Result<Signature, Error> {
        let mut r = Reader(bytes);
        let version = r.u8("version")?;
        if version != SIG_VERSION {
            return Err(Error::BadVersion(version));
        }
        let file_len = r.u64("file_len")?;
        let block = r.u32("block")?;
        if !is_valid_block(block) {
            return Err(Error::BadBlock(block));
        }
        let count = r.u32("count")?;
        if u64::from(count) != file_len.div_ceil(u64::from(block)) {
            return Err(Error::CountMismatch {
                file_len,
                block,
                count: u64::from(count),
            });
        }
        // The count is checked against the bytes present before any
        // allocation, so a hostile count costs nothing.
        let need = (count as usize)
            .checked_mul(ENTRY_LEN)
            .ok_or(Error::Truncated("entries"))?;
        if r.0.len() < need {
            return Err(Error::Truncated("entries"));
        }
        let mut blocks = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let weak = r.u32("weak")?;
            let strong = r.take::<32>("strong")?;
            blocks.push(BlockSig { weak, strong });
        }
        if !r.0.is_empty() {
            return Err(Error::Trailing(r.0.len()));
        }
        Ok(Signature {
            file_len,
            block,
            blocks,
        })
    }

    /// Blocks a basis of `file_len` bytes has in `block`-byte blocks.
    pub fn block_count(file_len: u64, block: u32) -> u64 {
        file_len.div_ceil(u64::from(block.max(1)))
    }

    /// Length of the last block when it is short, else 0.
    pub fn short_tail(&self) -> u32 {
        (self.file_len % u64::from(self.block.max(1))) as u32
    }
}

/// True when `block` is a power of two in [`MIN_BLOCK`]..=[`MAX_BLOCK`].
pub fn is_valid_block(block: u32) -> bool {
    block.is_power_of_two() && (MIN_BLOCK..=MAX_BLOCK).contains(&block)
}

/// A cursor that never panics.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(Error::Truncated(what))?;
        self.0 = rest;
        Ok(*head)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.take::<1>(what)?[0])
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.take(what)?))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.take(what)?))
    }
}

/// Builds a [`Signature`] from a basis's bytes fed in any chunking. Holds
/// at most one block.
#[derive(Debug)]
pub struct Signer {
    block: u32,
    buf: Vec<u8>,
    len: u64,
    blocks: Vec<BlockSig>,
}

impl Signer {
    /// A signer cutting `block`-byte blocks (see [`super::block_size`]).
    pub fn new(block: u32) -> Result<Signer, Error> {
        if !is_valid_block(block) {
            return Err(Error::BadBlock(block));
        }
        Ok(Signer::with_any_block(block))
    }

    /// A signer with blocks smaller than [`MIN_BLOCK`], so that test files
    /// have many blocks.
    #[cfg(test)]
    pub(crate) fn small(block: u32) -> Signer {
        assert!(block.is_power_of_two() && block <= MAX_BLOCK);
        Signer::with_any_block(block)
    }

    fn with_any_block(block: u32) -> Signer {
        Signer {
            block,
            buf: Vec::with_capacity(block as usize),
            len: 0,
            blocks: Vec::new(),
        }
    }

    /// Consumes the next bytes of the basis.
    pub fn feed(&mut self, mut data: &[u8]) {
        let block = self.block as usize;
        self.len += data.len() as u64;
        if !self.buf.is_empty() {
            let n = (block - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() < block {
                return;
            }
            self.blocks.push(BlockSig::of(&self.buf));
            self.buf.clear();
        }
        let mut chunks = data.chunks_exact(block);
        for c in &mut chunks {
            self.blocks.push(BlockSig::of(c));
        }
        self.buf.extend_from_slice(chunks.remainder());
    }

    /// The signature of everything fed.
    pub fn finish(mut self) -> Signature {
        if !self.buf.is_empty() {
            self.blocks.push(BlockSig::of(&self.buf));
        }
        Signature {
            file_len: self.len,
            block: self.block,
            blocks: self.blocks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n as u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect()
    }

    #[test]
    fn chunking_does_not_change_the_signature() {
        let d = data(4096 * 5 + 123);
        let mut whole = Signer::new(4096).unwrap();
        whole.feed(&d);
        let whole = whole.finish();
        assert_eq!(whole.blocks.len(), 6);
        assert_eq!(whole.short_tail(), 123);
        assert_eq!(whole.blocks[5], BlockSig::of(&d[4096 * 5..]));
        for step in [1, 7, 4095, 4096, 4097, 10_000] {
            let mut s = Signer::new(4096).unwrap();
            for c in d.chunks(step) {
                s.feed(c);
            }
            assert_eq!(s.finish(), whole, "step {step}");
        }
        let empty = Signer::new(4096).unwrap().finish();
        assert_eq!((empty.file_len, empty.blocks.len()), (0, 0));
    }

    #[test]
    fn encoding_round_trips() {
        for n in [0, 1, 4096, 4097, 40_000] {
            let mut s = Signer::new(8192).unwrap();
            s.feed(&data(n));
            let sig = s.finish();
            let enc = sig.encode();
            assert_eq!(enc.len(), sig.encoded_len());
            assert_eq!(Signature::decode(&enc), Ok(sig));
        }
    }

    #[test]
    fn decode_refuses_what_no_receiver_sends() {
        let mut s = Signer::new(4096).unwrap();
        s.feed(&data(10_000));
        let enc = s.finish().encode();
        let mut bad = enc.clone();
        bad[0] = 0xd2;
        assert_eq!(Signature::decode(&bad), Err(Error::BadVersion(0xd2)));
        for cut in 0..enc.len() {
            assert!(
                matches!(Signature::decode(&enc[..cut]), Err(Error::Truncated(_))),
                "cut at {cut}"
            );
        }
        let mut long = enc.clone();
        long.push(0);
        assert_eq!(Signature::decode(&long), Err(Error::Trailing(1)));
        for block in [0u32, 1, 2048, 4095, 12288, 1 << 21, u32::MAX] {
            let mut b = enc.clone();
            b[9..13].copy_from_slice(&block.to_be_bytes());
            assert_eq!(Signature::decode(&b), Err(Error::BadBlock(block)));
        }
        // 10,000 bytes are 3 blocks; claim 2 and 4 (with the bytes to match).
        for count in [2u32, 4, u32::MAX] {
            let mut b = enc.clone();
            b[13..17].copy_from_slice(&count.to_be_bytes());
            if count == 4 {
                b.extend_from_slice(&[0; ENTRY_LEN]);
            }
            assert!(matches!(
                Signature::decode(&b),
                Err(Error::CountMismatch { .. })
            ));
        }
        // A huge file_len with a matching huge count and no entries.
        let mut b = enc[..HEADER_LEN].to_vec();
        b[1..9].copy_from_slice(&(u64::from(u32::MAX) * 4096).to_be_bytes());
        b[13..17].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(Signature::decode(&b), Err(Error::Truncated("entries")));
        assert!(Signer::new(2048).is_err() && Signer::new(1 << 21).is_err());
    }
}
