//! The bitmap a `Need` frame carries: bit `i` (bit `i % 8` of byte `i / 8`)
//! set means entry `i` of the manifest is needed. One type, so the server
//! that builds it and the client that reads it agree on the bit order in
//! one place. Pure: no I/O; bits beyond the bytes read as clear, and
//! setting one beyond them does nothing (a peer's short bitmap never
//! panics anything).

/// A `Need` bitmap (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NeedBits(Vec<u8>);

impl NeedBits {
    /// A bitmap for `len` entries, none of them needed.
    pub fn new(len: usize) -> NeedBits {
        NeedBits(vec![0; len.div_ceil(8)])
    }

    /// A bitmap for `len` entries, every one of them needed (what a server
    /// with nothing stored answers).
    pub fn all(len: usize) -> NeedBits {
        NeedBits(vec![0xff; len.div_ceil(8)])
    }

    /// The bitmap as it came off the wire.
    pub fn from_bytes(bytes: Vec<u8>) -> NeedBits {
        NeedBits(bytes)
    }

    /// Marks entry `i` as needed; an index past the bitmap is ignored.
    pub fn set(&mut self, i: usize) {
        if let Some(b) = self.0.get_mut(i / 8) {
            *b |= 1 << (i % 8);
        }
    }

    /// Whether entry `i` is needed (false past the bitmap).
    pub fn get(&self, i: usize) -> bool {
        NeedBits::bit(&self.0, i)
    }

    /// Bit `i` of a bitmap still held as raw bytes (the client's session
    /// hands them over as the frame carried them).
    pub fn bit(bytes: &[u8], i: usize) -> bool {
        bytes.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    /// How many bits are set. Counts every byte, as the server's log line
    /// always did, so a bitmap from [`NeedBits::all`] counts its padding.
    pub fn count(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// The bytes, for the frame.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, for the frame, without a copy.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_numbered_low_bit_first() {
        let mut b = NeedBits::new(10);
        assert_eq!(b.as_bytes(), &[0, 0]);
        b.set(0);
        b.set(3);
        b.set(9);
        assert_eq!(b.as_bytes(), &[0b0000_1001, 0b0000_0010]);
        for i in 0..10 {
            assert_eq!(b.get(i), [0, 3, 9].contains(&i), "{i}");
        }
        assert_eq!(b.count(), 3);
        assert_eq!(NeedBits::from_bytes(b.clone().into_bytes()), b);
    }

    #[test]
    fn out_of_range_is_clear_and_ignored() {
        let mut b = NeedBits::new(3);
        b.set(8);
        b.set(1000);
        assert_eq!(b.as_bytes(), &[0]);
        assert!(!b.get(8) && !b.get(usize::MAX));
        assert!(!NeedBits::bit(&[], 0));
        assert!(NeedBits::new(0).as_bytes().is_empty());
    }

    #[test]
    fn all_sets_whole_bytes() {
        let b = NeedBits::all(9);
        assert_eq!(b.as_bytes(), &[0xff, 0xff]);
        assert!((0..9).all(|i| b.get(i)));
        assert_eq!(b.count(), 16);
        assert!(NeedBits::bit(&[0x80], 7));
    }
}
