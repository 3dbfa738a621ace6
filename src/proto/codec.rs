//! Frame encoding and decoding. [`decode`] never panics on any input: it
//! returns [`Decoded::Partial`] until a whole frame is buffered, and an error
//! for anything malformed, oversized, unknown or with trailing bytes.

use std::fmt;

use super::frame::{EntryKind, ErrorCode, Frame, ListItem, ManifestEntry, Meta, Time};
use super::kind::Kind;
use super::path::{PathError, WirePath};
use super::{HEADER_LEN, MAGIC, MAX_MESSAGE, MAX_PAYLOAD};

/// Why bytes could not be decoded. Every variant is the peer's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The length field exceeds [`MAX_PAYLOAD`].
    TooLarge(u32),
    /// The kind byte names no frame.
    UnknownKind(u8),
    /// The payload ended before a field did.
    Truncated(&'static str),
    /// Bytes left over after the last field.
    Trailing(usize),
    /// A field holds an impossible value.
    Invalid(&'static str),
    /// A path field is not a valid wire path.
    Path(PathError),
    /// `Hello` without the magic bytes: not an rsb client.
    BadMagic,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge(n) => {
                write!(f, "frame of {n} bytes exceeds the {MAX_PAYLOAD}-byte limit")
            }
            DecodeError::UnknownKind(k) => write!(f, "unknown frame kind {k}"),
            DecodeError::Truncated(what) => write!(f, "frame truncated in field {what}"),
            DecodeError::Trailing(n) => write!(f, "{n} trailing bytes after frame"),
            DecodeError::Invalid(what) => write!(f, "invalid value in field {what}"),
            DecodeError::Path(e) => write!(f, "bad path: {e}"),
            DecodeError::BadMagic => f.write_str("not an rsb client (bad magic)"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Result of a successful [`decode`] call.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Not enough bytes yet for a whole frame.
    Partial,
    /// One frame, and how many bytes of the input it used.
    Frame(Frame, usize),
}

/// Decodes the first frame in `buf`.
pub fn decode(buf: &[u8]) -> Result<Decoded, DecodeError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(Decoded::Partial);
    };
    let byte = header[0];
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if len > MAX_PAYLOAD {
        return Err(DecodeError::TooLarge(len));
    }
    // The kind is known from its byte alone, before the payload is in.
    let Some(kind) = Kind::from_byte(byte) else {
        return Err(DecodeError::UnknownKind(byte));
    };
    let total = HEADER_LEN + len as usize;
    let Some(payload) = buf.get(HEADER_LEN..total) else {
        return Ok(Decoded::Partial);
    };
    let mut r = Reader { buf: payload };
    let frame = decode_payload(kind, &mut r)?;
    if !r.buf.is_empty() {
        return Err(DecodeError::Trailing(r.buf.len()));
    }
    Ok(Decoded::Frame(frame, total))
}

fn decode_payload(kind: Kind, r: &mut Reader<'_>) -> Result<Frame, DecodeError> {
    Ok(match kind {
        Kind::Hello => {
            if r.take(4, "magic")? != MAGIC {
                return Err(DecodeError::BadMagic);
            }
            Frame::Hello {
                version: r.u16("version")?,
                name: r.string("name")?,
                flags: r.u32("flags")?,
                nonce: r.token("nonce")?,
            }
        }
        Kind::Welcome => Frame::Welcome {
            version: r.u16("version")?,
            flags: r.u32("flags")?,
            proof: r.token("proof")?,
            store: (r.u64("store")?, r.u64("store")?),
        },
        Kind::Challenge => Frame::Challenge {
            nonce: r.token("nonce")?,
        },
        Kind::Proof => Frame::Proof {
            mac: r.token("mac")?,
        },
        Kind::Error => Frame::Error {
            code: ErrorCode::from_u16(r.u16("code")?),
            message: r.message()?,
        },
        Kind::Dir => Frame::Dir {
            id: r.u32("id")?,
            path: r.path()?,
            meta: r.meta()?,
        },
        Kind::Symlink => Frame::Symlink {
            id: r.u32("id")?,
            path: r.path()?,
            target: r.link_target()?,
            meta: r.meta()?,
        },
        Kind::Special => {
            let id = r.u32("id")?;
            let path = r.path()?;
            let kind = EntryKind::from_u8(r.u8("kind")?)
                .filter(|k| k.is_special())
                .ok_or(DecodeError::Invalid("kind"))?;
            let rdev = r.u64("rdev")?;
            if rdev != 0 && !kind.is_device() {
                return Err(DecodeError::Invalid("rdev"));
            }
            Frame::Special {
                id,
                path,
                kind,
                rdev,
                meta: r.meta()?,
            }
        }
        Kind::File => Frame::File {
            id: r.u32("id")?,
            path: r.path()?,
            meta: r.meta()?,
            size: r.u64("size")?,
        },
        Kind::FileEnd => Frame::FileEnd {
            id: r.u32("id")?,
            crc: r.u32("crc")?,
            ok: match r.u8("status")? {
                0 => true,
                1 => false,
                _ => return Err(DecodeError::Invalid("status")),
            },
        },
        Kind::Commit => Frame::Commit { id: r.u32("id")? },
        Kind::Committed => Frame::Committed { id: r.u32("id")? },
        Kind::Failed => Frame::Failed {
            id: r.u32("id")?,
            path: r.path()?,
            message: r.message()?,
        },
        Kind::List => Frame::List {
            id: r.u32("id")?,
            path: r.path()?,
        },
        Kind::ListEntry => {
            let id = r.u32("id")?;
            let kind = EntryKind::from_u8(r.u8("kind")?).ok_or(DecodeError::Invalid("kind"))?;
            let name = r.bytes("name")?;
            if name.len() > super::MAX_NAME || name.contains(&b'/') || name.contains(&0) {
                return Err(DecodeError::Invalid("name"));
            }
            Frame::ListEntry {
                id,
                item: ListItem {
                    kind,
                    name,
                    meta: r.meta()?,
                    size: r.u64("size")?,
                    target: r.link_target()?,
                    rdev: r.rdev(kind)?,
                },
            }
        }
        Kind::Restore => Frame::Restore {
            id: r.u32("id")?,
            path: r.path()?,
        },
        Kind::Done => Frame::Done { id: r.u32("id")? },
        Kind::Skip => Frame::Skip { id: r.u32("id")? },
        Kind::Manifest => {
            let id = r.u32("id")?;
            let n = r.u32("count")?;
            // Each entry takes at least 30 bytes: a count beyond what the
            // payload can hold is refused before anything is allocated.
            if n as usize > r.buf.len() / 30 {
                return Err(DecodeError::Invalid("count"));
            }
            let mut entries = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let kind = EntryKind::from_u8(r.u8("kind")?).ok_or(DecodeError::Invalid("kind"))?;
                entries.push(ManifestEntry {
                    kind,
                    path: r.path()?,
                    meta: r.meta()?,
                    size: r.u64("size")?,
                    target: r.link_target()?,
                    rdev: r.rdev(kind)?,
                });
            }
            Frame::Manifest { id, entries }
        }
        Kind::Need => {
            let id = r.u32("id")?;
            let bits = r.bytes("bits")?;
            let n = r.u32("count")?;
            if n as usize > r.buf.len() / 12 {
                return Err(DecodeError::Invalid("count"));
            }
            let mut resume = Vec::with_capacity(n as usize);
            for _ in 0..n {
                resume.push((r.u32("index")?, r.u64("offset")?));
            }
            Frame::Need { id, bits, resume }
        }
        Kind::FileFrom => {
            let (id, path, meta, size, offset) = (
                r.u32("id")?,
                r.path()?,
                r.meta()?,
                r.u64("size")?,
                r.u64("offset")?,
            );
            if offset > size {
                return Err(DecodeError::Invalid("offset"));
            }
            Frame::FileFrom {
                id,
                path,
                meta,
                size,
                offset,
            }
        }
        Kind::Offer => Frame::Offer {
            id: r.u32("id")?,
            path: r.path()?,
            meta: r.meta()?,
            size: r.u64("size")?,
        },
        Kind::Want => Frame::Want {
            id: r.u32("id")?,
            offset: r.u64("offset")?,
        },
        Kind::Verify => Frame::Verify {
            id: r.u32("id")?,
            path: r.path()?,
        },
        Kind::Verified => Frame::Verified {
            id: r.u32("id")?,
            files: r.u64("files")?,
            bytes: r.u64("bytes")?,
            damaged: r.u64("damaged")?,
            unchecked: r.u64("unchecked")?,
        },
        Kind::Progress => Frame::Progress {
            id: r.u32("id")?,
            files: r.u64("files")?,
            bytes: r.u64("bytes")?,
        },
    })
}

/// A cursor over a payload that never reads past its end.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    fn bytes(&mut self, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let n = self.u32(what)? as usize;
        Ok(self.take(n, what)?.to_vec())
    }

    /// A nonce or MAC: at most [`super::MAX_TOKEN`] bytes.
    fn token(&mut self, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let t = self.bytes(what)?;
        if t.len() > super::MAX_TOKEN {
            return Err(DecodeError::Invalid(what));
        }
        Ok(t)
    }

    fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes(what)?).map_err(|_| DecodeError::Invalid(what))
    }

    /// An `Error` or `Failed` message: at most [`MAX_MESSAGE`] bytes, as
    /// the encoder cuts them, so that every decoded frame re-encodes to
    /// itself.
    fn message(&mut self) -> Result<String, DecodeError> {
        let m = self.string("message")?;
        if m.len() > MAX_MESSAGE {
            return Err(DecodeError::Invalid("message"));
        }
        Ok(m)
    }

    fn path(&mut self) -> Result<WirePath, DecodeError> {
        WirePath::new(self.bytes("path")?).map_err(DecodeError::Path)
    }

    fn link_target(&mut self) -> Result<Vec<u8>, DecodeError> {
        let t = self.bytes("target")?;
        if t.len() > super::MAX_PATH || t.contains(&0) {
            return Err(DecodeError::Invalid("target"));
        }
        Ok(t)
    }

    /// The device number that follows a device's entry; other kinds
    /// have none on the wire (0).
    fn rdev(&mut self, kind: EntryKind) -> Result<u64, DecodeError> {
        if kind.is_device() {
            self.u64("rdev")
        } else {
            Ok(0)
        }
    }

    fn meta(&mut self) -> Result<Meta, DecodeError> {
        let mode = self.u32("mode")?;
        if mode & !0o7777 != 0 {
            return Err(DecodeError::Invalid("mode"));
        }
        let secs = self.u64("mtime")? as i64;
        let nanos = self.u32("mtime")?;
        if nanos >= 1_000_000_000 {
            return Err(DecodeError::Invalid("mtime"));
        }
        Ok(Meta {
            mode,
            mtime: Time { secs, nanos },
        })
    }
}

/// Appends the encoding of `frame` to `out`.
///
/// Fields that could exceed the payload limit (messages) are cut to
/// [`MAX_MESSAGE`]; paths and names are bounded by construction.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    let start = out.len();
    out.push(frame.kind());
    out.extend_from_slice(&[0; 4]);
    let mut w = Writer { out };
    match frame {
        Frame::Hello {
            version,
            name,
            flags,
            nonce,
        } => {
            w.raw(&MAGIC);
            w.u16(*version);
            w.bytes(name.as_bytes());
            w.u32(*flags);
            w.bytes(nonce);
        }
        Frame::Welcome {
            version,
            flags,
            proof,
            store,
        } => {
            w.u16(*version);
            w.u32(*flags);
            w.bytes(proof);
            w.u64(store.0);
            w.u64(store.1);
        }
        Frame::Challenge { nonce } => w.bytes(nonce),
        Frame::Proof { mac } => w.bytes(mac),
        Frame::Error { code, message } => {
            w.u16(*code as u16);
            w.message(message);
        }
        Frame::Dir { id, path, meta } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.meta(meta);
        }
        Frame::Symlink {
            id,
            path,
            target,
            meta,
        } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.bytes(target);
            w.meta(meta);
        }
        Frame::Special {
            id,
            path,
            kind,
            rdev,
            meta,
        } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.raw(&[*kind as u8]);
            w.u64(*rdev);
            w.meta(meta);
        }
        Frame::File {
            id,
            path,
            meta,
            size,
        } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.meta(meta);
            w.u64(*size);
        }
        Frame::FileEnd { id, crc, ok } => {
            w.u32(*id);
            w.u32(*crc);
            w.raw(&[u8::from(!*ok)]);
        }
        Frame::Commit { id }
        | Frame::Committed { id }
        | Frame::Done { id }
        | Frame::Skip { id } => w.u32(*id),
        Frame::Failed { id, path, message } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.message(message);
        }
        Frame::List { id, path } | Frame::Restore { id, path } | Frame::Verify { id, path } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
        }
        Frame::Manifest { id, entries } => {
            w.u32(*id);
            w.u32(entries.len() as u32);
            for e in entries {
                w.raw(&[e.kind as u8]);
                w.bytes(e.path.as_bytes());
                w.meta(&e.meta);
                w.u64(e.size);
                w.bytes(&e.target);
                w.rdev(e.kind, e.rdev);
            }
        }
        Frame::Need { id, bits, resume } => {
            w.u32(*id);
            w.bytes(bits);
            w.u32(resume.len() as u32);
            for (i, off) in resume {
                w.u32(*i);
                w.u64(*off);
            }
        }
        Frame::Offer {
            id,
            path,
            meta,
            size,
        } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.meta(meta);
            w.u64(*size);
        }
        Frame::Want { id, offset } => {
            w.u32(*id);
            w.u64(*offset);
        }
        Frame::Progress { id, files, bytes } => {
            w.u32(*id);
            w.u64(*files);
            w.u64(*bytes);
        }
        Frame::Verified {
            id,
            files,
            bytes,
            damaged,
            unchecked,
        } => {
            w.u32(*id);
            w.u64(*files);
            w.u64(*bytes);
            w.u64(*damaged);
            w.u64(*unchecked);
        }
        Frame::FileFrom {
            id,
            path,
            meta,
            size,
            offset,
        } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.meta(meta);
            w.u64(*size);
            w.u64(*offset);
        }
        Frame::ListEntry { id, item } => {
            w.u32(*id);
            w.raw(&[item.kind as u8]);
            w.bytes(&item.name);
            w.meta(&item.meta);
            w.u64(item.size);
            w.bytes(&item.target);
            w.rdev(item.kind, item.rdev);
        }
    }
    let len = (out.len() - start - HEADER_LEN) as u32;
    out[start + 1..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }
    fn u16(&mut self, v: u16) {
        self.raw(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.raw(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.raw(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.raw(b);
    }
    fn message(&mut self, m: &str) {
        let mut end = m.len().min(MAX_MESSAGE);
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        self.bytes(&m.as_bytes()[..end]);
    }
    /// A device's number; nothing for other kinds.
    fn rdev(&mut self, kind: EntryKind, rdev: u64) {
        if kind.is_device() {
            self.u64(rdev);
        }
    }
    fn meta(&mut self, m: &Meta) {
        self.u32(m.mode);
        self.u64(m.mtime.secs as u64);
        self.u32(m.mtime.nanos);
    }
}

/// Encodes one frame into a fresh buffer.
pub fn to_vec(frame: &Frame) -> Vec<u8> {
    let mut v = Vec::new();
    encode(frame, &mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::{dev_major, dev_minor, make_dev};

    fn path(s: &str) -> WirePath {
        WirePath::new(s.as_bytes().to_vec()).unwrap()
    }

    fn meta() -> Meta {
        Meta {
            mode: 0o644,
            mtime: Time {
                secs: -5,
                nanos: 999_999_999,
            },
        }
    }

    fn samples() -> Vec<Frame> {
        vec![
            Frame::Hello {
                version: 1,
                name: "laptop".into(),
                flags: 0,
                nonce: vec![],
            },
            Frame::Hello {
                version: 7,
                name: "x".into(),
                flags: 3,
                nonce: vec![1, 2, 3],
            },
            Frame::Welcome {
                version: 1,
                flags: 1,
                proof: vec![],
                store: (0, 0),
            },
            Frame::Welcome {
                version: 1,
                flags: 3,
                proof: vec![9; 32],
                store: (0x803, u64::MAX),
            },
            Frame::Special {
                id: 2,
                path: path("dev/null"),
                kind: EntryKind::CharDev,
                rdev: make_dev(1, 3),
                meta: meta(),
            },
            Frame::Special {
                id: 2,
                path: path("dev/loop0"),
                kind: EntryKind::BlockDev,
                rdev: u64::MAX,
                meta: meta(),
            },
            Frame::Special {
                id: 2,
                path: path("run/fifo"),
                kind: EntryKind::Fifo,
                rdev: 0,
                meta: meta(),
            },
            Frame::Special {
                id: 2,
                path: path("run/sock"),
                kind: EntryKind::Socket,
                rdev: 0,
                meta: meta(),
            },
            Frame::Challenge { nonce: vec![7; 32] },
            Frame::Proof { mac: vec![] },
            Frame::Proof { mac: vec![1; 64] },
            Frame::Verify {
                id: 9,
                path: WirePath::root(),
            },
            Frame::Progress {
                id: 9,
                files: 3,
                bytes: 4,
            },
            Frame::Verified {
                id: 9,
                files: 1,
                bytes: u64::MAX,
                damaged: 2,
                unchecked: 3,
            },
            Frame::Error {
                code: ErrorCode::Busy,
                message: "server busy".into(),
            },
            Frame::Dir {
                id: 1,
                path: path("a/b"),
                meta: meta(),
            },
            Frame::Symlink {
                id: 2,
                path: path("a/l"),
                target: b"../x\xff".to_vec(),
                meta: meta(),
            },
            Frame::File {
                id: 3,
                path: path("a/f\nx"),
                meta: meta(),
                size: u64::MAX,
            },
            Frame::FileEnd {
                id: 3,
                crc: 0xdeadbeef,
                ok: true,
            },
            Frame::FileEnd {
                id: 3,
                crc: 0,
                ok: false,
            },
            Frame::Commit { id: 4 },
            Frame::Committed { id: 4 },
            Frame::Failed {
                id: 5,
                path: WirePath::root(),
                message: "no".into(),
            },
            Frame::List {
                id: 6,
                path: path("home"),
            },
            Frame::ListEntry {
                id: 6,
                item: ListItem {
                    kind: EntryKind::Symlink,
                    name: b"n".to_vec(),
                    meta: meta(),
                    size: 0,
                    target: b"t".to_vec(),
                    rdev: 0,
                },
            },
            Frame::ListEntry {
                id: 6,
                item: ListItem {
                    kind: EntryKind::BlockDev,
                    name: b"sda".to_vec(),
                    meta: meta(),
                    size: 0,
                    target: vec![],
                    rdev: make_dev(8, 0),
                },
            },
            Frame::Restore {
                id: 7,
                path: WirePath::root(),
            },
            Frame::Done { id: 7 },
            Frame::Manifest {
                id: 8,
                entries: vec![
                    ManifestEntry {
                        kind: EntryKind::File,
                        path: path("a/f"),
                        meta: meta(),
                        size: 12,
                        target: vec![],
                        rdev: 0,
                    },
                    ManifestEntry {
                        kind: EntryKind::CharDev,
                        path: path("a/c"),
                        meta: meta(),
                        size: 0,
                        target: vec![],
                        rdev: make_dev(4095, 1 << 20),
                    },
                    ManifestEntry {
                        kind: EntryKind::Socket,
                        path: path("a/s"),
                        meta: meta(),
                        size: 0,
                        target: vec![],
                        rdev: 0,
                    },
                    ManifestEntry {
                        kind: EntryKind::Symlink,
                        path: path("a/l"),
                        meta: meta(),
                        size: 0,
                        target: b"t".to_vec(),
                        rdev: 0,
                    },
                    ManifestEntry {
                        kind: EntryKind::Dir,
                        path: path("a"),
                        meta: meta(),
                        size: 0,
                        target: vec![],
                        rdev: 0,
                    },
                ],
            },
            Frame::Manifest {
                id: 9,
                entries: vec![],
            },
            Frame::Need {
                id: 8,
                bits: vec![0b101],
                resume: vec![],
            },
            Frame::Need {
                id: 8,
                bits: vec![0b1],
                resume: vec![(0, 1 << 40)],
            },
            Frame::FileFrom {
                id: 10,
                path: path("big"),
                meta: meta(),
                size: 100,
                offset: 40,
            },
            Frame::FileFrom {
                id: 11,
                path: path("big"),
                meta: meta(),
                size: 100,
                offset: 100,
            },
            Frame::Offer {
                id: 12,
                path: path("big"),
                meta: meta(),
                size: 1 << 33,
            },
            Frame::Want { id: 12, offset: 77 },
            Frame::Skip { id: 13 },
        ]
    }

    #[test]
    fn every_frame_round_trips() {
        for f in samples() {
            let bytes = to_vec(&f);
            assert_eq!(
                decode(&bytes),
                Ok(Decoded::Frame(f.clone(), bytes.len())),
                "{f:?}"
            );
        }
    }

    #[test]
    fn every_prefix_is_partial() {
        for f in samples() {
            let bytes = to_vec(&f);
            for n in 0..bytes.len() {
                assert_eq!(
                    decode(&bytes[..n]),
                    Ok(Decoded::Partial),
                    "{f:?} prefix {n}"
                );
            }
        }
    }

    #[test]
    fn back_to_back_frames_decode_one_at_a_time() {
        let mut all = Vec::new();
        for f in samples() {
            encode(&f, &mut all);
        }
        let mut off = 0;
        for f in samples() {
            match decode(&all[off..]).unwrap() {
                Decoded::Frame(g, n) => {
                    assert_eq!(g, f);
                    off += n;
                }
                Decoded::Partial => panic!("partial"),
            }
        }
        assert_eq!(off, all.len());
    }

    #[test]
    fn oversized_unknown_and_trailing_rejected() {
        assert_eq!(
            decode(&[12, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::TooLarge(u32::MAX))
        );
        assert_eq!(decode(&[99, 0, 0, 0, 0]), Err(DecodeError::UnknownKind(99)));
        assert_eq!(decode(&[0, 0, 0, 0, 0]), Err(DecodeError::UnknownKind(0)));
        let mut b = to_vec(&Frame::Commit { id: 1 });
        b.push(0);
        b[4] += 1;
        assert_eq!(decode(&b), Err(DecodeError::Trailing(1)));
        // A length that promises less than the fields need.
        let mut b = to_vec(&Frame::Commit { id: 1 });
        b[4] = 2;
        b.truncate(7);
        assert_eq!(decode(&b), Err(DecodeError::Truncated("id")));
    }

    #[test]
    fn bad_fields_rejected() {
        let mut hello = to_vec(&Frame::Hello {
            version: 1,
            name: "a".into(),
            flags: 0,
            nonce: vec![],
        });
        hello[5] = b'X';
        assert_eq!(decode(&hello), Err(DecodeError::BadMagic));
        // Nonces and MACs longer than MAX_TOKEN.
        let long = to_vec(&Frame::Proof { mac: vec![0; 65] });
        assert_eq!(decode(&long), Err(DecodeError::Invalid("mac")));
        let long = to_vec(&Frame::Challenge { nonce: vec![0; 65] });
        assert_eq!(decode(&long), Err(DecodeError::Invalid("nonce")));

        let raw = |kind: u8, payload: &[u8]| {
            let mut v = vec![kind];
            v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            v.extend_from_slice(payload);
            v
        };
        // Path "../x" in a List.
        let mut p = 1u32.to_be_bytes().to_vec();
        p.extend_from_slice(&4u32.to_be_bytes());
        p.extend_from_slice(b"../x");
        assert_eq!(
            decode(&raw(20, &p)),
            Err(DecodeError::Path(PathError::DotDot))
        );
        // Absolute path.
        let mut p = 1u32.to_be_bytes().to_vec();
        p.extend_from_slice(&4u32.to_be_bytes());
        p.extend_from_slice(b"/etc");
        assert_eq!(
            decode(&raw(22, &p)),
            Err(DecodeError::Path(PathError::Absolute))
        );
        // A byte-string length pointing past the payload.
        let mut p = 1u32.to_be_bytes().to_vec();
        p.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&raw(20, &p)), Err(DecodeError::Truncated("path")));
        // Mode with file-type bits; nanos out of range; bad status.
        let mut d = to_vec(&Frame::Dir {
            id: 1,
            path: path("a"),
            meta: meta(),
        });
        let mode_at = 5 + 4 + 4 + 1;
        d[mode_at] = 0xff;
        assert_eq!(decode(&d), Err(DecodeError::Invalid("mode")));
        let mut d = to_vec(&Frame::Dir {
            id: 1,
            path: path("a"),
            meta: meta(),
        });
        let n = d.len();
        d[n - 4] = 0xff;
        assert_eq!(decode(&d), Err(DecodeError::Invalid("mtime")));
        let mut e = to_vec(&Frame::FileEnd {
            id: 1,
            crc: 2,
            ok: true,
        });
        let n = e.len();
        e[n - 1] = 7;
        assert_eq!(decode(&e), Err(DecodeError::Invalid("status")));
        // Non-UTF-8 name in Hello.
        let mut h = to_vec(&Frame::Hello {
            version: 1,
            name: "a".into(),
            flags: 0,
            nonce: vec![],
        });
        h[5 + 4 + 2 + 4] = 0xff;
        assert_eq!(decode(&h), Err(DecodeError::Invalid("name")));
    }

    #[test]
    fn special_entries_refuse_other_kinds_and_stray_device_numbers() {
        let special = |kind: u8, rdev: u64| {
            let mut p = 1u32.to_be_bytes().to_vec();
            p.extend_from_slice(&1u32.to_be_bytes());
            p.push(b'p');
            p.push(kind);
            p.extend_from_slice(&rdev.to_be_bytes());
            p.extend_from_slice(&0o644u32.to_be_bytes());
            p.extend_from_slice(&[0; 12]);
            let mut v = vec![Kind::Special.byte()];
            v.extend_from_slice(&(p.len() as u32).to_be_bytes());
            v.extend_from_slice(&p);
            v
        };
        assert!(matches!(decode(&special(6, 7)), Ok(Decoded::Frame(..))));
        assert!(matches!(decode(&special(4, 0)), Ok(Decoded::Frame(..))));
        for kind in [0, 1, 2, 3, 8, 255] {
            assert_eq!(decode(&special(kind, 0)), Err(DecodeError::Invalid("kind")));
        }
        // A FIFO or socket has no device number.
        assert_eq!(decode(&special(4, 1)), Err(DecodeError::Invalid("rdev")));
        assert_eq!(decode(&special(5, 1)), Err(DecodeError::Invalid("rdev")));
        // A manifest's device entry without its number is truncated.
        let mut m = to_vec(&Frame::Manifest {
            id: 1,
            entries: vec![ManifestEntry {
                kind: EntryKind::CharDev,
                path: path("c"),
                meta: meta(),
                size: 0,
                target: vec![],
                rdev: 1,
            }],
        });
        m.truncate(m.len() - 8);
        let len = (m.len() - HEADER_LEN) as u32;
        m[1..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
        assert_eq!(decode(&m), Err(DecodeError::Truncated("rdev")));
    }

    #[test]
    fn device_numbers_split_as_glibc_does() {
        for (major, minor) in [
            (0, 0),
            (1, 3),
            (8, 17),
            (259, 0),
            (4095, 255),
            (1 << 20, 1 << 19),
        ] {
            let d = make_dev(major, minor);
            assert_eq!((dev_major(d), dev_minor(d)), (major, minor));
        }
        // /dev/null and /dev/sda1 as stat reports them.
        assert_eq!(make_dev(1, 3), 0x103);
        assert_eq!(make_dev(8, 1), 0x801);
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let f = Frame::Failed {
            id: 1,
            path: WirePath::root(),
            message: "é".repeat(2000),
        };
        let b = to_vec(&f);
        match decode(&b).unwrap() {
            Decoded::Frame(Frame::Failed { message, .. }, _) => {
                assert!(message.len() <= MAX_MESSAGE)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_longer_than_the_encoder_writes_are_refused() {
        // Found with fuzz target decode: a 1,100-byte message decoded, and
        // re-encoding the frame cut it, so decode(encode(f)) != f.
        let raw = |kind: u8, head: &[u8], len: usize| {
            let mut p = head.to_vec();
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend(std::iter::repeat_n(b'x', len));
            let mut v = vec![kind];
            v.extend_from_slice(&(p.len() as u32).to_be_bytes());
            v.extend_from_slice(&p);
            v
        };
        let failed_head = [0, 0, 0, 1, 0, 0, 0, 0];
        for (kind, head) in [(3, &[0, 1][..]), (16, &failed_head[..])] {
            let ok = raw(kind, head, MAX_MESSAGE);
            match decode(&ok) {
                Ok(Decoded::Frame(f, n)) => assert_eq!(to_vec(&f).len(), n),
                other => panic!("{other:?}"),
            }
            assert_eq!(
                decode(&raw(kind, head, MAX_MESSAGE + 1)),
                Err(DecodeError::Invalid("message"))
            );
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic xorshift stream of garbage, every prefix.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..2000 {
            let mut buf = Vec::new();
            let n = (x % 64) as usize;
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(x as u8);
            }
            if let Some(k) = buf.first_mut() {
                *k = [1, 2, 3, 10, 11, 12, 13, 16, 20, 21, 22][(x % 11) as usize];
            }
            if buf.len() >= 5 {
                buf[1] = 0;
                buf[2] = 0;
            }
            let _ = decode(&buf);
        }
    }
}
