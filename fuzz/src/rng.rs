//! A tiny deterministic generator: the harnesses draw chunk sizes, clock
//! steps and the simulated shell's choices from it, seeded by a byte of
//! the fuzz input, so every input replays exactly.

/// xorshift64*.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded by `seed` (any value, zero included).
    pub fn new(seed: u8) -> Rng {
        Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(seed).wrapping_mul(0x1000_0000_01b3))
    }

    /// The next value.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// The length of the next chunk of input, as a socket read might
    /// return it: often tiny, sometimes large.
    pub fn chunk_len(&mut self) -> usize {
        (1 + match self.below(4) {
            0 => 0,
            1 => self.below(8),
            2 => self.below(64),
            _ => self.below(1024),
        }) as usize
    }
}
