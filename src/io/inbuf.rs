//! Bytes read from a socket and not yet consumed. Consuming moves a start
//! index instead of the bytes behind it: a read of 64 KiB holding many
//! small frames and file bodies is taken apart piece by piece, and moving
//! the rest to the front after each piece (`Vec::drain`) cost a copy of
//! up to the whole buffer per piece, an eighth of the server loop's time
//! in a push of small files (`perf`). The live bytes move to the front only
//! when the consumed part is at least as long, so each byte moves at most
//! once on average.

/// See the module docs.
#[derive(Debug, Default)]
pub struct InBuf {
    buf: Vec<u8>,
    /// Where the live bytes start in `buf`.
    start: usize,
}

impl std::ops::Deref for InBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

impl InBuf {
    /// Drops the first `n` live bytes (all of them if there are fewer).
    pub fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Moves the live bytes to the front when the consumed part is at
    /// least as long as they are.
    fn compact(&mut self) {
        if self.start > 0 && self.start >= self.buf.len() - self.start {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Appends `data` after the live bytes.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// `n` bytes of room after the live bytes, to read into; then
    /// [`Self::filled`] says how many of them hold data.
    pub fn room(&mut self, n: usize) -> &mut [u8] {
        self.compact();
        let len = self.buf.len();
        self.buf.resize(len + n, 0);
        self.buf.get_mut(len..).unwrap_or_default()
    }

    /// Keeps `n` bytes of the room [`Self::room`] gave (`room_len` bytes):
    /// the rest goes.
    pub fn filled(&mut self, room_len: usize, n: usize) {
        let len = self.buf.len().saturating_sub(room_len);
        self.buf.truncate(len + n.min(room_len));
    }

    /// Puts `ahead` (bytes read earlier and handed back) before the live
    /// bytes.
    pub fn prepend(&mut self, mut ahead: Vec<u8>) {
        ahead.extend_from_slice(self);
        self.buf = ahead;
        self.start = 0;
    }

    /// Gives the memory back when nothing is live: an idle connection
    /// holds no buffer.
    pub fn release(&mut self) {
        if self.is_empty() && self.buf.capacity() > 0 {
            self.buf = Vec::new();
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::InBuf;

    #[test]
    fn consumed_bytes_are_gone_and_the_rest_stays_in_order() {
        let mut b = InBuf::default();
        b.extend_from_slice(b"abcdef");
        b.consume(2);
        assert_eq!(&*b, b"cdef");
        b.extend_from_slice(b"gh");
        assert_eq!(&*b, b"cdefgh");
        b.consume(5);
        assert_eq!(&*b, b"h");
        // Compacted before growing: the consumed part is longer.
        b.extend_from_slice(b"ij");
        assert_eq!(&*b, b"hij");
        b.consume(100);
        assert!(b.is_empty());
        let room = b.room(8);
        room[..3].copy_from_slice(b"xyz");
        b.filled(8, 3);
        assert_eq!(&*b, b"xyz");
        b.prepend(b"uvw".to_vec());
        assert_eq!(&*b, b"uvwxyz");
        b.consume(6);
        b.release();
        assert!(b.is_empty());
    }

    #[test]
    fn pieces_taken_one_by_one_come_in_order() {
        // 1,000 pieces of 64 bytes out of one buffer.
        let mut b = InBuf::default();
        let data: Vec<u8> = (0..64_000u32).map(|i| i as u8).collect();
        b.extend_from_slice(&data);
        for i in 0..1000 {
            assert_eq!(b.first(), Some(&((i * 64) as u8)));
            b.consume(64);
        }
        assert!(b.is_empty());
    }
}
