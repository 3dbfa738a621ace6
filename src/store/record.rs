//! The checksum record kept beside every stored file, and what re-reading
//! the file says about it. The record is the text of the extended attribute
//! `user.rsb.crc32c` (`v1 crc32c=1a2b3c4d size=12345`, readable with
//! `getfattr`); [`crate::io::store`] reads and writes the attribute, this
//! file owns its format and its meaning.
//!
//! Pure: bytes in, a record out; a size and a crc in, a verdict out.

/// What was recorded when a file was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// crc32c of the whole file.
    pub crc: u32,
    /// Its size then.
    pub size: u64,
}

impl Recorded {
    /// The attribute's value.
    pub fn encode(&self) -> String {
        format!("v1 crc32c={:08x} size={}", self.crc, self.size)
    }

    /// Parses an attribute's value; anything but a well-formed `v1` record
    /// is nothing (a value that is not ours to read).
    pub fn decode(b: &[u8]) -> Option<Recorded> {
        let s = std::str::from_utf8(b).ok()?;
        let mut words = s.split(' ');
        if words.next()? != "v1" {
            return None;
        }
        let crc = u32::from_str_radix(words.next()?.strip_prefix("crc32c=")?, 16).ok()?;
        let size = words.next()?.strip_prefix("size=")?.parse().ok()?;
        if words.next().is_some() {
            return None;
        }
        Some(Recorded { crc, size })
    }

    /// The recorded crc32c, if it is for a file of `size` bytes: a record
    /// for another size says nothing about what is there now.
    pub fn crc_for(&self, size: u64) -> Option<u32> {
        (self.size == size).then_some(self.crc)
    }

    /// What a verify says of a file that now has `size` bytes and crc32c
    /// `crc`: `None` when it matches, else why it is damaged.
    pub fn damage(&self, size: u64, crc: u32) -> Option<String> {
        if self.size != size {
            return Some(format!(
                "size changed: stored {} bytes, now {size}",
                self.size
            ));
        }
        if self.crc != crc {
            return Some(format!(
                "content changed: crc32c was {:08x}, is now {crc:08x}",
                self.crc
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_round_trips_and_junk_is_nothing() {
        let r = Recorded {
            crc: 0x1a2b_3c4d,
            size: 12345,
        };
        assert_eq!(r.encode(), "v1 crc32c=1a2b3c4d size=12345");
        assert_eq!(Recorded::decode(r.encode().as_bytes()), Some(r));
        for junk in [
            &b""[..],
            b"v2 crc32c=1 size=1",
            b"v1 crc32c=zz size=1",
            b"v1 crc32c=1 size=-1",
            b"v1 crc32c=1 size=1 x",
            b"v1 crc=1 size=1",
        ] {
            assert_eq!(Recorded::decode(junk), None);
        }
    }

    #[test]
    fn a_record_speaks_only_for_its_size() {
        let r = Recorded { crc: 7, size: 3 };
        assert_eq!(r.crc_for(3), Some(7));
        assert_eq!(r.crc_for(4), None);
    }

    #[test]
    fn damage_names_size_before_content() {
        let r = Recorded { crc: 0xab, size: 3 };
        assert_eq!(r.damage(3, 0xab), None);
        assert_eq!(
            r.damage(4, 0xab).as_deref(),
            Some("size changed: stored 3 bytes, now 4")
        );
        assert_eq!(
            r.damage(4, 1).as_deref(),
            Some("size changed: stored 3 bytes, now 4")
        );
        assert_eq!(
            r.damage(3, 1).as_deref(),
            Some("content changed: crc32c was 000000ab, is now 00000001")
        );
    }
}
