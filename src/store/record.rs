//! The records kept beside stored entries, as the text of extended
//! attributes readable with `getfattr`; [`crate::io::store`] reads and
//! writes the attributes, this file owns their format and meaning:
//!
//! * [`Recorded`], `user.rsb.crc32c` on every stored file
//!   (`v1 crc32c=1a2b3c4d size=12345`), and what re-reading the file says
//!   about it;
//! * [`MetaRecord`], `user.rsb.meta` on a stored file or directory whose
//!   mode or owner on disk is not its real one, or whose owner's names the
//!   client sent (`v1 mode=0444 uid=1000 gid=100 user=ann group=users`):
//!   see [`super::modes`] for when that is.
//!   It also says, with `xattrs=` and the set's digest, that the entry
//!   has extended attributes of the client's, each kept as
//!   `user.rsb.x.<name>` ([`stored_xattr_name`]).
//!   It also stands on the empty regular file that replaces a device a
//!   server not running as root cannot make (`v1 mode=0660 kind=blk
//!   rdev=8:1`: the kind, and the device's major and minor numbers).
//!
//! Pure: bytes in, a record out; a size and a crc in, a verdict out.

use crate::proto::{dev_major, dev_minor, make_dev, EntryKind};

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

/// The real metadata of an entry whose mode or owner on disk is not its
/// real one, and the owner's names where the client sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaRecord {
    /// The permission bits the client sent (`0o7777` at most), set-user-ID
    /// and set-group-ID included.
    pub mode: u32,
    /// The real owner, when it is not the one on disk.
    pub uid: Option<u32>,
    /// The real group, when it is not the one on disk.
    pub gid: Option<u32>,
    /// The owner's name on the client, if it sent one.
    pub user: Option<Vec<u8>>,
    /// The group's name on the client, if it sent one.
    pub group: Option<Vec<u8>>,
    /// What the entry really is and its device number, when it is a
    /// metadata-only stand-in for a special file (`kind=` and `rdev=`).
    pub special: Option<(EntryKind, u64)>,
    /// The [`crate::proto::xattrs::digest`] of the client's extended
    /// attributes kept on the entry, 0 for none (`xattrs=`, 16 hex digits).
    pub xattrs: u64,
}

/// The prefix every extended attribute of a client's is stored under: a
/// client's own `user.rsb.crc32c` is `user.rsb.x.user.rsb.crc32c` in the
/// store, never rsb's record.
pub const XATTR_PREFIX: &[u8] = b"user.rsb.x.";

/// The name a client's attribute `name` is stored under.
pub fn stored_xattr_name(name: &[u8]) -> Vec<u8> {
    let mut n = Vec::with_capacity(XATTR_PREFIX.len() + name.len());
    n.extend_from_slice(XATTR_PREFIX);
    n.extend_from_slice(name);
    n
}

/// The client's name of a stored attribute, if it is one of a client's.
pub fn client_xattr_name(stored: &[u8]) -> Option<&[u8]> {
    stored.strip_prefix(XATTR_PREFIX).filter(|n| !n.is_empty())
}

/// The `kind=` word of each special kind.
const KIND_WORDS: [(EntryKind, &str); 4] = [
    (EntryKind::CharDev, "chr"),
    (EntryKind::BlockDev, "blk"),
    (EntryKind::Fifo, "fifo"),
    (EntryKind::Socket, "sock"),
];

impl MetaRecord {
    /// A record of `mode` alone.
    pub fn mode(mode: u32) -> MetaRecord {
        MetaRecord {
            mode,
            ..MetaRecord::default()
        }
    }

    /// The attribute's value: `v1 mode=0644`, then `uid=N gid=N` where
    /// known, then `user=NAME group=NAME` with every byte outside
    /// `[A-Za-z0-9._-]` written `%XX`.
    pub fn encode(&self) -> String {
        let mut s = format!("v1 mode={:04o}", self.mode & 0o7777);
        if let Some(u) = self.uid {
            s.push_str(&format!(" uid={u}"));
        }
        if let Some(g) = self.gid {
            s.push_str(&format!(" gid={g}"));
        }
        for (key, name) in [("user", &self.user), ("group", &self.group)] {
            if let Some(n) = name {
                s.push(' ');
                s.push_str(key);
                s.push('=');
                escape_into(&mut s, n);
            }
        }
        if let Some((kind, rdev)) = self.special {
            if let Some((_, word)) = KIND_WORDS.iter().find(|(k, _)| *k == kind) {
                s.push_str(&format!(
                    " kind={word} rdev={}:{}",
                    dev_major(rdev),
                    dev_minor(rdev)
                ));
            }
        }
        if self.xattrs != 0 {
            s.push_str(&format!(" xattrs={:016x}", self.xattrs));
        }
        s
    }

    /// Parses an attribute's value. Words after the `v1` that it does not
    /// know are skipped, so a later version can add fields that this one
    /// ignores; anything without a well-formed mode, or with a field twice
    /// or malformed, is nothing.
    pub fn decode(b: &[u8]) -> Option<MetaRecord> {
        let s = std::str::from_utf8(b).ok()?;
        let mut words = s.split(' ');
        if words.next()? != "v1" {
            return None;
        }
        let mut mode = None;
        let mut r = MetaRecord::default();
        let (mut kind, mut rdev) = (None, None);
        for w in words {
            let (key, value) = w.split_once('=').unwrap_or((w, ""));
            match key {
                "mode" => {
                    let m = u32::from_str_radix(value, 8).ok()?;
                    if m > 0o7777 || mode.replace(m).is_some() {
                        return None;
                    }
                }
                "uid" => once(&mut r.uid, value.parse().ok()?)?,
                "gid" => once(&mut r.gid, value.parse().ok()?)?,
                "user" => once(&mut r.user, unescape(value)?)?,
                "group" => once(&mut r.group, unescape(value)?)?,
                "kind" => {
                    let k = KIND_WORDS.iter().find(|(_, word)| *word == value)?.0;
                    once(&mut kind, k)?;
                }
                "rdev" => {
                    let (major, minor) = value.split_once(':')?;
                    let (major, minor): (u64, u64) = (major.parse().ok()?, minor.parse().ok()?);
                    if major >= 1 << 32 || minor >= 1 << 32 {
                        return None;
                    }
                    once(&mut rdev, make_dev(major, minor))?;
                }
                "xattrs" => {
                    let d = u64::from_str_radix(value, 16).ok()?;
                    if d == 0 || value.len() != 16 || r.xattrs != 0 {
                        return None;
                    }
                    r.xattrs = d;
                }
                _ => {}
            }
        }
        r.special = match (kind, rdev) {
            (None, None) => None,
            (Some(k), Some(d)) if k.is_device() => Some((k, d)),
            (Some(k), None) if !k.is_device() => Some((k, 0)),
            _ => return None,
        };
        r.mode = mode?;
        Some(r)
    }
}

/// Sets `slot` to `v` unless it was set: `None` for a field given twice.
fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    slot.replace(v).is_none().then_some(())
}

/// Whether `b` stands for itself in a recorded name.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

pub(crate) fn escape_into(s: &mut String, name: &[u8]) {
    for &b in name {
        if is_plain(b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
}

/// A recorded name back to its bytes: only plain bytes and `%XX`, 1 to
/// [`crate::proto::owners::MAX_OWNER_NAME`] bytes, no NUL.
pub(crate) fn unescape(v: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(v.len());
    let mut bytes = v.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
        } else if is_plain(b) {
            out.push(b);
        } else {
            return None;
        }
    }
    crate::proto::owners::is_valid_name(&out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meta_record_round_trips_and_skips_words_it_does_not_know() {
        let r = MetaRecord::mode(0o4755);
        assert_eq!(r.encode(), "v1 mode=4755");
        assert_eq!(MetaRecord::decode(r.encode().as_bytes()), Some(r));
        assert_eq!(
            MetaRecord::decode(b"v1 mode=0000"),
            Some(MetaRecord::mode(0))
        );
        assert_eq!(
            MetaRecord::decode(b"v1 size=3 mode=0444 acl=x"),
            Some(MetaRecord::mode(0o444))
        );
        for junk in [
            &b""[..],
            b"v1",
            b"v2 mode=0644",
            b"v1 mode=9",
            b"v1 mode=17777",
            b"v1 mode=0644 mode=0600",
            b"v1 crc32c=1 size=1",
            b"v1 mode=0644 uid=-1",
            b"v1 mode=0644 uid=1 uid=1",
            b"v1 mode=0644 gid=4294967296",
            b"v1 mode=0644 user=",
            b"v1 mode=0644 user=a%2",
            b"v1 mode=0644 user=a%zz",
            b"v1 mode=0644 user=a%00",
            b"v1 mode=0644 user=a+b",
            b"v1 mode=0644 group=a group=b",
        ] {
            assert_eq!(MetaRecord::decode(junk), None, "{junk:?}");
        }
    }

    /// Issue 10: owners and their names are kept in the record of a
    /// server that cannot set them on disk, names escaped.
    #[test]
    fn owners_and_names_are_recorded_escaped() {
        let r = MetaRecord {
            mode: 0o644,
            uid: Some(1000),
            gid: Some(0),
            user: Some(b"ann".to_vec()),
            group: Some(b"d\xe9v ops%".to_vec()),
            ..Default::default()
        };
        assert_eq!(
            r.encode(),
            "v1 mode=0644 uid=1000 gid=0 user=ann group=d%E9v%20ops%25"
        );
        assert_eq!(MetaRecord::decode(r.encode().as_bytes()), Some(r.clone()));
        let names_only = MetaRecord {
            user: Some(b"x.y_z-9".to_vec()),
            ..MetaRecord::mode(0o755)
        };
        assert_eq!(names_only.encode(), "v1 mode=0755 user=x.y_z-9");
        assert_eq!(
            MetaRecord::decode(names_only.encode().as_bytes()),
            Some(names_only)
        );
        let long = MetaRecord {
            user: Some(vec![0xff; 255]),
            ..MetaRecord::mode(0o644)
        };
        assert_eq!(MetaRecord::decode(long.encode().as_bytes()), Some(long));
        assert!(
            MetaRecord::decode(format!("v1 mode=0644 user={}", "a".repeat(256)).as_bytes())
                .is_none()
        );
    }

    /// Issue 10: a record says the entry has the client's xattrs, and
    /// their stored names never meet rsb's own.
    #[test]
    fn the_xattr_digest_is_recorded_and_stored_names_are_prefixed() {
        let r = MetaRecord {
            xattrs: 0x0123_4567_89ab_cdef,
            ..MetaRecord::mode(0o644)
        };
        assert_eq!(r.encode(), "v1 mode=0644 xattrs=0123456789abcdef");
        assert_eq!(MetaRecord::decode(r.encode().as_bytes()), Some(r));
        for junk in [
            &b"v1 mode=0644 xattrs=0000000000000000"[..],
            b"v1 mode=0644 xattrs=12",
            b"v1 mode=0644 xattrs=0123456789abcdef xattrs=0123456789abcdef",
            b"v1 mode=0644 xattrs=zz23456789abcdef",
        ] {
            assert_eq!(MetaRecord::decode(junk), None, "{junk:?}");
        }
        assert_eq!(
            stored_xattr_name(b"user.rsb.crc32c"),
            b"user.rsb.x.user.rsb.crc32c"
        );
        assert_eq!(
            client_xattr_name(b"user.rsb.x.security.capability"),
            Some(&b"security.capability"[..])
        );
        assert_eq!(client_xattr_name(b"user.rsb.crc32c"), None);
        assert_eq!(client_xattr_name(b"user.rsb.x."), None);
    }

    #[test]
    fn a_device_stand_in_records_its_kind_and_number() {
        let r = MetaRecord {
            mode: 0o660,
            special: Some((EntryKind::BlockDev, make_dev(8, 1))),
            ..Default::default()
        };
        assert_eq!(r.encode(), "v1 mode=0660 kind=blk rdev=8:1");
        assert_eq!(MetaRecord::decode(r.encode().as_bytes()), Some(r));
        let big = MetaRecord {
            mode: 0o600,
            special: Some((EntryKind::CharDev, make_dev(4000, 1 << 20))),
            ..Default::default()
        };
        assert_eq!(big.encode(), "v1 mode=0600 kind=chr rdev=4000:1048576");
        assert_eq!(MetaRecord::decode(big.encode().as_bytes()), Some(big));
        // The owner's words anywhere between.
        assert_eq!(
            MetaRecord::decode(b"v1 kind=chr uid=0 mode=0666 rdev=1:3 user=root"),
            Some(MetaRecord {
                mode: 0o666,
                uid: Some(0),
                user: Some(b"root".to_vec()),
                special: Some((EntryKind::CharDev, make_dev(1, 3))),
                ..Default::default()
            })
        );
        assert_eq!(
            MetaRecord::decode(b"v1 mode=0644 kind=fifo"),
            Some(MetaRecord {
                mode: 0o644,
                special: Some((EntryKind::Fifo, 0)),
                ..Default::default()
            })
        );
        for junk in [
            &b"v1 mode=0644 kind=chr"[..],
            b"v1 mode=0644 rdev=1:3",
            b"v1 mode=0644 kind=fifo rdev=1:3",
            b"v1 mode=0644 kind=dir rdev=1:3",
            b"v1 mode=0644 kind=chr rdev=1",
            b"v1 mode=0644 kind=chr rdev=x:3",
            b"v1 mode=0644 kind=chr rdev=4294967296:0",
            b"v1 mode=0644 kind=chr kind=blk rdev=1:3",
            b"v1 mode=0644 kind=chr rdev=1:3 rdev=1:3",
            b"v1 kind=chr rdev=1:3",
        ] {
            assert_eq!(MetaRecord::decode(junk), None, "{junk:?}");
        }
    }

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
