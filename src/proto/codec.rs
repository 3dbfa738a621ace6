//! Frame encoding and decoding. [`decode`] never panics on any input: it
//! returns [`Decoded::Partial`] until a whole frame is buffered, and an error
//! for anything malformed, oversized, unknown or with trailing bytes.

use std::fmt;

use super::frame::{
    EntryKind, ErrorCode, Extent, Frame, Layout, ListItem, ManifestEntry, Meta, Time, VersionItem,
};
use super::kind::Kind;
use super::path::{PathError, WirePath};
use super::xattrs::{Xattrs, MAX_XATTRS};
use super::{HEADER_LEN, MAGIC, MAX_EXTENTS, MAX_MESSAGE, MAX_PAYLOAD};

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
        Kind::Link => {
            let (id, path, target) = (r.u32("id")?, r.path()?, r.link_path()?);
            if target.as_bytes().is_empty() || target == path {
                return Err(DecodeError::Invalid("target"));
            }
            Frame::Link {
                id,
                path,
                target,
                meta: r.meta()?,
                size: r.u64("size")?,
            }
        }
        Kind::At => Frame::At {
            secs: r.u64("secs")? as i64,
            nanos: r.nanos("nanos")?,
        },
        Kind::Versions => Frame::Versions {
            id: r.u32("id")?,
            path: r.path()?,
        },
        Kind::Version => {
            let (id, path) = (r.u32("id")?, r.path()?);
            let kind = EntryKind::from_u8(r.u8("kind")?)
                .filter(|k| *k != EntryKind::HardLink)
                .ok_or(DecodeError::Invalid("kind"))?;
            Frame::Version {
                id,
                item: VersionItem {
                    path,
                    kind,
                    size: r.u64("size")?,
                    meta: r.meta()?,
                    stored: r.time("stored")?,
                    until: r.time("until")?,
                    held: r.u64("held")?,
                },
            }
        }
        Kind::Update => {
            let (id, path) = (r.u32("id")?, r.path()?);
            let kind = EntryKind::from_u8(r.u8("kind")?)
                .filter(|k| matches!(k, EntryKind::File | EntryKind::Symlink))
                .ok_or(DecodeError::Invalid("kind"))?;
            Frame::Update {
                id,
                path,
                kind,
                meta: r.meta()?,
                size: r.u64("size")?,
            }
        }
        Kind::File => {
            let (id, path, meta, size) = (r.u32("id")?, r.path()?, r.meta()?, r.u64("size")?);
            Frame::File {
                id,
                path,
                meta,
                size,
                layout: r.layout(size, 0)?,
            }
        }
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
        Kind::Agent => Frame::Agent { id: r.u32("id")? },
        Kind::Plan => Frame::Plan {
            text: r.bytes("text")?,
        },
        Kind::Closed => {
            let id = r.u32("id")?;
            let path = r.path()?;
            let whole = match r.u8("whole")? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::Invalid("whole")),
            };
            let keep = r.keep()?;
            // Names to keep mean nothing where nothing is deleted.
            if !whole && !keep.is_empty() {
                return Err(DecodeError::Invalid("keep"));
            }
            Frame::Closed {
                id,
                path,
                whole,
                keep,
            }
        }
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
                    xattrs: r.xattr_digest(kind)?,
                });
            }
            Frame::Manifest { id, entries }
        }
        Kind::Need => {
            let id = r.u32("id")?;
            let bits = r.bytes("bits")?;
            let meta = r.bytes("meta")?;
            if meta.len() != bits.len() {
                return Err(DecodeError::Invalid("meta"));
            }
            let n = r.u32("count")?;
            if n as usize > r.buf.len() / 12 {
                return Err(DecodeError::Invalid("count"));
            }
            let mut resume = Vec::with_capacity(n as usize);
            for _ in 0..n {
                resume.push((r.u32("index")?, r.u64("offset")?));
            }
            let n = r.u32("count")?;
            if n as usize > r.buf.len() / 4 {
                return Err(DecodeError::Invalid("count"));
            }
            let mut delta: Vec<u32> = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let i = r.u32("index")?;
                if delta.last().is_some_and(|&p| p >= i) {
                    return Err(DecodeError::Invalid("index"));
                }
                delta.push(i);
            }
            Frame::Need {
                id,
                bits,
                meta,
                resume,
                delta,
            }
        }
        Kind::Signature => delta::decode_signature(r)?,
        Kind::FileDelta => delta::decode_file_delta(r)?,
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
                layout: r.layout(size, offset)?,
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
        Kind::Names => Frame::Names {
            users: r.names("users")?,
            groups: r.names("groups")?,
        },
        Kind::Xattrs => Frame::Xattrs {
            id: r.u32("id")?,
            path: r.path()?,
            attrs: r.xattrs()?,
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

    /// A hard link's target: a wire path like an entry's, named `target`.
    fn link_path(&mut self) -> Result<WirePath, DecodeError> {
        WirePath::new(self.bytes("target")?).map_err(DecodeError::Path)
    }

    fn link_target(&mut self) -> Result<Vec<u8>, DecodeError> {
        let t = self.bytes("target")?;
        if t.len() > super::MAX_PATH || t.contains(&0) {
            return Err(DecodeError::Invalid("target"));
        }
        Ok(t)
    }

    /// A body's layout: 0 (dense) or 1 and the extents, which must be
    /// ascending, apart, non-empty and inside `offset..size`.
    fn layout(&mut self, size: u64, offset: u64) -> Result<Layout, DecodeError> {
        match self.u8("layout")? {
            0 => Ok(Layout::Dense),
            1 => {
                let n = self.u32("extents")?;
                if n > MAX_EXTENTS {
                    return Err(DecodeError::Invalid("extents"));
                }
                let mut extents = Vec::with_capacity(n as usize);
                let mut end = offset;
                for _ in 0..n {
                    let e = Extent {
                        offset: self.u64("extent")?,
                        len: self.u64("extent")?,
                    };
                    let next = e.offset.checked_add(e.len);
                    if e.len == 0 || e.offset < end || next.is_none_or(|x| x > size) {
                        return Err(DecodeError::Invalid("extent"));
                    }
                    end = next.unwrap_or(size);
                    extents.push(e);
                }
                Ok(Layout::Sparse(extents))
            }
            _ => Err(DecodeError::Invalid("layout")),
        }
    }

    /// A count and that many (id, name) pairs. Nothing is reserved from
    /// the count: each pair takes at least 9 bytes of a bounded payload.
    fn names(&mut self, what: &'static str) -> Result<Vec<(u32, Vec<u8>)>, DecodeError> {
        let n = self.u32(what)?;
        let mut out = Vec::new();
        for _ in 0..n {
            let id = self.u32(what)?;
            let name = self.bytes(what)?;
            if !super::owners::is_valid_name(&name) {
                return Err(DecodeError::Invalid(what));
            }
            out.push((id, name));
        }
        Ok(out)
    }

    /// A `Closed`'s names to keep: a count and that many names, each a
    /// valid component of a path (1 to [`super::MAX_NAME`] bytes, no `/`
    /// or NUL, not `.` or `..`). Nothing is reserved from the count: each
    /// name takes at least 5 bytes of a bounded payload.
    fn keep(&mut self) -> Result<Vec<Vec<u8>>, DecodeError> {
        let n = self.u32("keep")?;
        let mut out = Vec::new();
        for _ in 0..n {
            let name = self.bytes("keep")?;
            if !is_name(&name) {
                return Err(DecodeError::Invalid("keep"));
            }
            out.push(name);
        }
        Ok(out)
    }

    /// A count and that many (name, value) pairs, sorted by name and
    /// within every bound of [`super::xattrs`]. Nothing is reserved from
    /// the count: each pair takes at least 8 bytes of a bounded payload.
    fn xattrs(&mut self) -> Result<Xattrs, DecodeError> {
        let n = self.u32("xattrs")?;
        if n as usize > MAX_XATTRS {
            return Err(DecodeError::Invalid("xattrs"));
        }
        let mut pairs = Vec::new();
        for _ in 0..n {
            let name = self.bytes("xattr name")?;
            let value = self.bytes("xattr value")?;
            pairs.push((name, value));
        }
        Xattrs::from_sorted(pairs).map_err(|_| DecodeError::Invalid("xattrs"))
    }

    /// The xattr digest that follows a file's or directory's manifest
    /// entry; other kinds have none on the wire (0).
    fn xattr_digest(&mut self, kind: EntryKind) -> Result<u64, DecodeError> {
        if has_xattrs(kind) {
            self.u64("xattrs")
        } else {
            Ok(0)
        }
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

    fn nanos(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let nanos = self.u32(what)?;
        if nanos >= 1_000_000_000 {
            return Err(DecodeError::Invalid(what));
        }
        Ok(nanos)
    }

    fn time(&mut self, what: &'static str) -> Result<Time, DecodeError> {
        let secs = self.u64(what)? as i64;
        Ok(Time {
            secs,
            nanos: self.nanos(what)?,
        })
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
            uid: self.u32("uid")?,
            gid: self.u32("gid")?,
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
        Frame::Link {
            id,
            path,
            target,
            meta,
            size,
        } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.bytes(target.as_bytes());
            w.meta(meta);
            w.u64(*size);
        }
        Frame::Update {
            id,
            path,
            kind,
            meta,
            size,
        } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.raw(&[*kind as u8]);
            w.meta(meta);
            w.u64(*size);
        }
        Frame::File {
            id,
            path,
            meta,
            size,
            layout,
        } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.meta(meta);
            w.u64(*size);
            w.layout(layout);
        }
        Frame::FileEnd { id, crc, ok } => {
            w.u32(*id);
            w.u32(*crc);
            w.raw(&[u8::from(!*ok)]);
        }
        Frame::Closed {
            id,
            path,
            whole,
            keep,
        } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.raw(&[u8::from(*whole)]);
            w.u32(keep.len() as u32);
            for name in keep {
                w.bytes(name);
            }
        }
        Frame::Plan { text } => w.bytes(text),
        Frame::Commit { id }
        | Frame::Agent { id }
        | Frame::Committed { id }
        | Frame::Done { id }
        | Frame::Skip { id } => w.u32(*id),
        Frame::Failed { id, path, message } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.message(message);
        }
        Frame::At { secs, nanos } => {
            w.u64(*secs as u64);
            w.u32(*nanos);
        }
        Frame::Version { id, item } => {
            w.u32(*id);
            w.bytes(item.path.as_bytes());
            w.raw(&[item.kind as u8]);
            w.u64(item.size);
            w.meta(&item.meta);
            for t in [item.stored, item.until] {
                w.u64(t.secs as u64);
                w.u32(t.nanos);
            }
            w.u64(item.held);
        }
        Frame::List { id, path }
        | Frame::Restore { id, path }
        | Frame::Verify { id, path }
        | Frame::Versions { id, path } => {
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
                if has_xattrs(e.kind) {
                    w.u64(e.xattrs);
                }
            }
        }
        Frame::Need {
            id,
            bits,
            meta,
            resume,
            delta,
        } => {
            w.u32(*id);
            w.bytes(bits);
            w.bytes(meta);
            w.u32(resume.len() as u32);
            for (i, off) in resume {
                w.u32(*i);
                w.u64(*off);
            }
            w.u32(delta.len() as u32);
            for i in delta {
                w.u32(*i);
            }
        }
        Frame::Signature { .. } | Frame::FileDelta { .. } => delta::encode(frame, &mut w),
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
            layout,
        } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.meta(meta);
            w.u64(*size);
            w.u64(*offset);
            w.layout(layout);
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
        Frame::Names { users, groups } => {
            w.names(users);
            w.names(groups);
        }
        Frame::Xattrs { id, path, attrs } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.u32(attrs.len() as u32);
            for (name, value) in attrs.pairs() {
                w.bytes(name);
                w.bytes(value);
            }
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
    fn layout(&mut self, layout: &Layout) {
        match layout {
            Layout::Dense => self.raw(&[0]),
            Layout::Sparse(extents) => {
                self.raw(&[1]);
                self.u32(extents.len() as u32);
                for e in extents {
                    self.u64(e.offset);
                    self.u64(e.len);
                }
            }
        }
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
        self.u32(m.uid);
        self.u32(m.gid);
    }
    /// The caller keeps the list within a frame (see
    /// [`super::owners::Announced`], at most two names per entry).
    fn names(&mut self, list: &[(u32, Vec<u8>)]) {
        self.u32(list.len() as u32);
        for (id, name) in list {
            self.u32(*id);
            self.bytes(name);
        }
    }
}

/// Whether a manifest entry of `kind` carries an xattr digest: rsb keeps
/// the extended attributes of files and directories only.
pub fn has_xattrs(kind: EntryKind) -> bool {
    matches!(kind, EntryKind::File | EntryKind::Dir)
}

/// True when `name` may be a component of a wire path: 1 to
/// [`super::MAX_NAME`] bytes, no `/` or NUL, not `.` or `..`.
pub fn is_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= super::MAX_NAME
        && name != b"."
        && name != b".."
        && !name.contains(&b'/')
        && !name.contains(&0)
}

/// True when a `Closed` of `path` keeping `keep` encodes within
/// [`MAX_PAYLOAD`]; a sender whose names do not fit sends it not whole
/// instead (deleting nothing there).
pub fn closed_fits(path: &WirePath, keep: &[Vec<u8>]) -> bool {
    // id, path's length, whole, count; then a length and each name.
    let fixed = 4 + 4 + path.as_bytes().len() + 1 + 4;
    keep.iter()
        .try_fold(fixed, |n, name| n.checked_add(4 + name.len()))
        .is_some_and(|n| n <= MAX_PAYLOAD as usize)
}

/// Encodes one frame into a fresh buffer.
pub fn to_vec(frame: &Frame) -> Vec<u8> {
    let mut v = Vec::new();
    encode(frame, &mut v);
    v
}

mod delta;

#[cfg(test)]
mod tests;
