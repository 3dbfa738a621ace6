//! The weak rolling checksum: librsync's "rollsum", two 16-bit sums of the
//! window's bytes each offset by 31 (so runs of zeros still move the sums),
//! rolled one byte in and one out in O(1).

/// librsync's offset: a byte b counts as b + 31.
const CHAR_OFFSET: u32 = 31;

/// A rolling checksum over a window of bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollsum {
    count: u32,
    s1: u32,
    s2: u32,
}

impl Rollsum {
    /// The empty window.
    pub fn new() -> Rollsum {
        Rollsum::default()
    }

    /// The checksum of `window`.
    pub fn of(window: &[u8]) -> Rollsum {
        let mut r = Rollsum::new();
        r.update(window);
        r
    }

    /// Appends `bytes` to the window.
    pub fn update(&mut self, bytes: &[u8]) {
        // In closed form, so that the loop has no carried dependency and
        // vectorizes: byte i of n adds (n - i) times to s2, and s1 (the
        // sum before) n times.
        let n = bytes.len() as u32;
        let (mut sum, mut weighted) = (0u32, 0u32);
        for (i, &b) in bytes.iter().enumerate() {
            sum = sum.wrapping_add(u32::from(b));
            weighted = weighted.wrapping_add(n.wrapping_sub(i as u32).wrapping_mul(u32::from(b)));
        }
        let mut s2 = self
            .s2
            .wrapping_add(self.s1.wrapping_mul(n))
            .wrapping_add(weighted);
        let mut s1 = self.s1.wrapping_add(sum);
        // The offsets: n * 31 to s1, 31 * n(n+1)/2 to s2.
        s1 = s1.wrapping_add(n.wrapping_mul(CHAR_OFFSET));
        let tri = (u64::from(n) * (u64::from(n) + 1) / 2) as u32;
        s2 = s2.wrapping_add(tri.wrapping_mul(CHAR_OFFSET));
        self.s1 = s1;
        self.s2 = s2;
        self.count = self.count.wrapping_add(n);
    }

    /// Slides the window one byte: `out` leaves at the front, `inb` enters
    /// at the back.
    pub fn rotate(&mut self, out: u8, inb: u8) {
        let out = u32::from(out) + CHAR_OFFSET;
        let inb = u32::from(inb) + CHAR_OFFSET;
        self.s1 = self.s1.wrapping_add(inb).wrapping_sub(out);
        self.s2 = self
            .s2
            .wrapping_add(self.s1)
            .wrapping_sub(self.count.wrapping_mul(out));
    }

    /// Appends one byte at the back.
    pub fn roll_in(&mut self, inb: u8) {
        self.s1 = self.s1.wrapping_add(u32::from(inb) + CHAR_OFFSET);
        self.s2 = self.s2.wrapping_add(self.s1);
        self.count = self.count.wrapping_add(1);
    }

    /// Removes one byte from the front.
    pub fn roll_out(&mut self, out: u8) {
        let out = u32::from(out) + CHAR_OFFSET;
        self.s1 = self.s1.wrapping_sub(out);
        self.s2 = self.s2.wrapping_sub(self.count.wrapping_mul(out));
        self.count = self.count.wrapping_sub(1);
    }

    /// The 32-bit digest: s2's low half over s1's.
    pub fn digest(&self) -> u32 {
        (self.s2 << 16) | (self.s1 & 0xffff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, byte by byte.
    fn naive(w: &[u8]) -> u32 {
        let (mut s1, mut s2) = (0u32, 0u32);
        for &b in w {
            s1 = s1.wrapping_add(u32::from(b) + CHAR_OFFSET);
            s2 = s2.wrapping_add(s1);
        }
        (s2 << 16) | (s1 & 0xffff)
    }

    #[test]
    fn update_matches_the_definition() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for len in [0, 1, 2, 31, 4096, 10_000] {
            assert_eq!(Rollsum::of(&data[..len]).digest(), naive(&data[..len]));
        }
        let mut r = Rollsum::new();
        r.update(&data[..100]);
        r.update(&data[100..4096]);
        assert_eq!(r, Rollsum::of(&data[..4096]));
        assert_ne!(
            Rollsum::of(&[0; 64]).digest(),
            Rollsum::of(&[0; 65]).digest()
        );
    }

    proptest! {
        #[test]
        fn rolling_equals_recomputing(
            data in proptest::collection::vec(any::<u8>(), 1..3000),
            window in 1usize..600,
        ) {
            let window = window.min(data.len());
            let mut r = Rollsum::of(&data[..window]);
            for start in 1..=data.len() - window {
                r.rotate(data[start - 1], data[start + window - 1]);
                prop_assert_eq!(r.digest(), naive(&data[start..start + window]));
            }
            // Shrinking from the front and growing at the back agree too.
            let mut g = Rollsum::new();
            for &b in &data {
                g.roll_in(b);
            }
            for start in 1..data.len() {
                g.roll_out(data[start - 1]);
                prop_assert_eq!(g.digest(), naive(&data[start..]));
            }
        }
    }
}
