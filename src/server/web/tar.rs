//! The bytes of a directory's tar stream (`?format=tar`): one header per
//! entry (a POSIX ustar block, preceded by a pax extended header when the
//! entry does not fit ustar), the padding after a body, and the end.
//!
//! The connection walks the directory and, per entry, sends
//! [`entry_header`], then [`body_size`] bytes of the file with sendfile,
//! then [`padding`] zero bytes; after the last entry, [`END`]. Must not:
//! read a file, or see anything but the entry it is given.
//!
//! Names are bytes. POSIX wants pax `path` and `linkpath` values in
//! UTF-8; a name that is not is written as its bytes all the same (GNU
//! tar extracts it byte for byte, as the tests check; bsdtar too). POSIX's
//! `hdrcharset=BINARY` marker is left out: GNU tar 1.34 warns that it does
//! not know it. A strict reader could still refuse or transcode such a
//! name.

use crate::proto::{EntryKind, Time};

/// The size of a tar block; every header and every padded body is a
/// multiple of it.
pub const BLOCK: usize = 512;

/// The end of an archive: two zero blocks.
pub const END: [u8; 1024] = [0; 1024];

/// One entry of the stream, as the walk found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarEntry<'a> {
    /// Relative, `/`-separated, no leading `/` (nor a trailing one: a
    /// directory's `/` is added here).
    pub path: &'a [u8],
    /// Its type.
    pub kind: EntryKind,
    /// A regular file's size (ignored for every other type).
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Modification time.
    pub mtime: Time,
    /// A symlink's target, or a hard link's first name in the archive.
    pub link: Option<&'a [u8]>,
    /// A later name of a file already in the archive: a link entry, no
    /// body.
    pub hard_link: bool,
    /// Owner name.
    pub user: Option<&'a [u8]>,
    /// Group name.
    pub group: Option<&'a [u8]>,
    /// A device's major and minor numbers.
    pub dev: Option<(u32, u32)>,
}

/// The largest value of an octal field of `width` bytes (one is the NUL).
fn octal_max(width: usize) -> u64 {
    (1u64 << (3 * (width - 1))) - 1
}

const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
const ID_LEN: usize = 32;

/// The typeflag of an entry; `None` for a socket, which tar cannot hold.
fn typeflag(e: &TarEntry) -> Option<u8> {
    if e.hard_link {
        return Some(b'1');
    }
    Some(match e.kind {
        EntryKind::File => b'0',
        EntryKind::HardLink => b'1',
        EntryKind::Symlink => b'2',
        EntryKind::CharDev => b'3',
        EntryKind::BlockDev => b'4',
        EntryKind::Dir => b'5',
        EntryKind::Fifo => b'6',
        EntryKind::Socket => return None,
    })
}

/// The bytes of the body that follow the header: a regular file's size,
/// 0 for everything else (a hard link's data is its first name's).
pub fn body_size(e: &TarEntry) -> u64 {
    if e.kind == EntryKind::File && !e.hard_link {
        e.size
    } else {
        0
    }
}

/// Zero bytes after a body of `size` bytes, to the next block.
pub fn padding(size: u64) -> usize {
    // The remainder is below 512, so the cast is exact.
    let rem = (size % BLOCK as u64) as usize;
    (BLOCK - rem) % BLOCK
}

/// The header of `e`: a pax extended header (typeflag `x`) when something
/// does not fit ustar, then the ustar block. Empty for a socket (tar has
/// no type for one: the walk leaves it out).
pub fn entry_header(e: &TarEntry) -> Vec<u8> {
    let Some(flag) = typeflag(e) else {
        return Vec::new();
    };
    let mut path = e.path.to_vec();
    if e.kind == EntryKind::Dir && !e.hard_link && path.last() != Some(&b'/') {
        path.push(b'/');
    }
    let size = body_size(e);
    let mut pax = Pax::default();
    let mut block = [0u8; BLOCK];

    match split_ustar(&path) {
        Some((prefix, name)) => {
            put(&mut block, 0, NAME_LEN, name);
            put(&mut block, 345, PREFIX_LEN, prefix);
        }
        None => {
            pax.record(b"path", &path);
            put(
                &mut block,
                0,
                NAME_LEN,
                &fallback_name(&path, e.kind == EntryKind::Dir),
            );
        }
    }
    put_octal(&mut block, 100, 8, u64::from(e.mode & 0o7777));
    put_id(&mut block, &mut pax, 108, b"uid", e.uid);
    put_id(&mut block, &mut pax, 116, b"gid", e.gid);
    if size > octal_max(12) {
        pax.record(b"size", size.to_string().as_bytes());
        put_octal(&mut block, 124, 12, 0);
    } else {
        put_octal(&mut block, 124, 12, size);
    }
    let secs_fit = u64::try_from(e.mtime.secs).is_ok_and(|s| s <= octal_max(12));
    if e.mtime.nanos != 0 || !secs_fit {
        pax.record(b"mtime", pax_time(e.mtime).as_bytes());
    }
    // A reader without pax gets the whole seconds, or 0 out of range.
    put_octal(
        &mut block,
        136,
        12,
        u64::try_from(e.mtime.secs).unwrap_or(0).min(octal_max(12)),
    );
    block[156] = flag;
    if let Some(link) = e.link.filter(|_| matches!(flag, b'1' | b'2')) {
        if fits_field(link, NAME_LEN) {
            put(&mut block, 157, NAME_LEN, link);
        } else {
            pax.record(b"linkpath", link);
            put(&mut block, 157, NAME_LEN, &fallback_name(link, false));
        }
    }
    put(&mut block, 257, 6, b"ustar\0");
    put(&mut block, 263, 2, b"00");
    put_name(&mut block, &mut pax, 265, b"uname", e.user);
    put_name(&mut block, &mut pax, 297, b"gname", e.group);
    if let Some((major, minor)) = e.dev.filter(|_| matches!(flag, b'3' | b'4')) {
        put_dev(&mut block, &mut pax, 329, b"SCHILY.devmajor", major);
        put_dev(&mut block, &mut pax, 337, b"SCHILY.devminor", minor);
    }
    checksum(&mut block);

    let mut out = Vec::with_capacity(3 * BLOCK);
    if !pax.body.is_empty() {
        out.extend_from_slice(&pax.header(&path, e.mtime));
        out.extend_from_slice(&pax.body);
        out.resize(out.len() + padding(pax.body.len() as u64), 0);
    }
    out.extend_from_slice(&block);
    out
}

/// Bytes a ustar text field of `width` holds as they are: ASCII, no NUL,
/// at most `width` of them.
fn fits_field(b: &[u8], width: usize) -> bool {
    b.len() <= width && b.iter().all(|c| c.is_ascii() && *c != 0)
}

/// `path` as ustar's `(prefix, name)`, split at a `/`, if it fits.
fn split_ustar(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if !path.iter().all(|c| c.is_ascii() && *c != 0) {
        return None;
    }
    if path.len() <= NAME_LEN {
        return Some((&[], path));
    }
    // The longest prefix that fits leaves the shortest name; any split
    // that fits will do, so try from the right of the prefix's room.
    let limit = PREFIX_LEN.min(path.len().saturating_sub(1));
    (1..=limit).rev().find_map(|i| {
        if path.get(i) != Some(&b'/') {
            return None;
        }
        let (prefix, rest) = (path.get(..i)?, path.get(i + 1..)?);
        let name_ok = !rest.is_empty() && rest != b"/" && rest.len() <= NAME_LEN;
        name_ok.then_some((prefix, rest))
    })
}

/// What a reader without pax sees in the name field of an entry whose
/// real name is in a pax record: its last 99 bytes or so, non-ASCII as
/// `_`, a directory's `/` kept.
fn fallback_name(path: &[u8], dir: bool) -> Vec<u8> {
    let mut name: Vec<u8> = path
        .iter()
        .map(|c| if c.is_ascii() && *c != 0 { *c } else { b'_' })
        .collect();
    if name.len() > NAME_LEN {
        let keep = if dir { NAME_LEN - 1 } else { NAME_LEN };
        let cut = name.len() - keep;
        name.drain(..cut);
        if dir && name.last() != Some(&b'/') {
            name.push(b'/');
        }
    }
    name
}

/// Copies `bytes` into the field of `width` at `at`; what would spill
/// into the next field is cut (the callers check lengths first: this only
/// keeps a mistake from corrupting a neighbour).
fn put(block: &mut [u8; BLOCK], at: usize, width: usize, bytes: &[u8]) {
    let bytes = bytes.get(..width).unwrap_or(bytes);
    if let Some(field) = block.get_mut(at..at + bytes.len()) {
        field.copy_from_slice(bytes);
    }
}

/// `value` in octal, zero-padded to `width - 1` digits and a NUL.
fn put_octal(block: &mut [u8; BLOCK], at: usize, width: usize, value: u64) {
    let text = format!("{value:0w$o}", w = width - 1);
    put(block, at, width, text.as_bytes());
}

fn put_id(block: &mut [u8; BLOCK], pax: &mut Pax, at: usize, key: &[u8], id: u32) {
    if u64::from(id) > octal_max(8) {
        pax.record(key, id.to_string().as_bytes());
        put_octal(block, at, 8, 0);
    } else {
        put_octal(block, at, 8, u64::from(id));
    }
}

fn put_dev(block: &mut [u8; BLOCK], pax: &mut Pax, at: usize, key: &[u8], n: u32) {
    if u64::from(n) > octal_max(8) {
        pax.record(key, n.to_string().as_bytes());
        put_octal(block, at, 8, 0);
    } else {
        put_octal(block, at, 8, u64::from(n));
    }
}

fn put_name(block: &mut [u8; BLOCK], pax: &mut Pax, at: usize, key: &[u8], name: Option<&[u8]>) {
    let Some(name) = name else { return };
    if fits_field(name, ID_LEN) {
        put(block, at, ID_LEN, name);
    } else {
        pax.record(key, name);
    }
}

/// The header checksum: the byte sum with the field itself as spaces, in
/// six octal digits, a NUL and a space.
fn checksum(block: &mut [u8; BLOCK]) {
    put(block, 148, 8, b"        ");
    let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
    put(block, 148, 8, format!("{sum:06o}\0 ").as_bytes());
}

/// A time as a pax decimal: `-1.5` s is secs -2 and nanos 500000000.
fn pax_time(t: Time) -> String {
    if t.secs < 0 && t.nanos > 0 {
        // -(|secs| - 1) - (1 - nanos/1e9): the same instant, signed once.
        let whole = i128::from(t.secs) + 1;
        format!("-{}.{:09}", -whole, 1_000_000_000 - t.nanos)
    } else {
        format!("{}.{:09}", t.secs, t.nanos)
    }
}

/// The records of one pax extended header.
#[derive(Debug, Default)]
struct Pax {
    body: Vec<u8>,
}

impl Pax {
    /// Adds `LEN key=value\n`, LEN counting the whole record, its own
    /// digits included.
    fn record(&mut self, key: &[u8], value: &[u8]) {
        self.push(key, value);
    }

    fn push(&mut self, key: &[u8], value: &[u8]) {
        let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = rest + 1;
        while len.to_string().len() + rest != len {
            len = len.to_string().len() + rest;
        }
        self.body.extend_from_slice(len.to_string().as_bytes());
        self.body.push(b' ');
        self.body.extend_from_slice(key);
        self.body.push(b'=');
        self.body.extend_from_slice(value);
        self.body.push(b'\n');
    }

    /// The `x` block that announces the records, named after the entry
    /// as GNU tar names its own (`PaxHeaders/NAME`).
    fn header(&self, path: &[u8], mtime: Time) -> [u8; BLOCK] {
        let mut block = [0u8; BLOCK];
        let base = path
            .split(|b| *b == b'/')
            .rfind(|s| !s.is_empty())
            .unwrap_or(b"entry");
        let mut name = b"PaxHeaders/".to_vec();
        name.extend(
            base.iter()
                .map(|c| if c.is_ascii_graphic() { *c } else { b'_' })
                .take(NAME_LEN - name.len()),
        );
        put(&mut block, 0, NAME_LEN, &name);
        put_octal(&mut block, 100, 8, 0o644);
        put_octal(&mut block, 108, 8, 0);
        put_octal(&mut block, 116, 8, 0);
        put_octal(&mut block, 124, 12, self.body.len() as u64);
        put_octal(
            &mut block,
            136,
            12,
            u64::try_from(mtime.secs).unwrap_or(0).min(octal_max(12)),
        );
        block[156] = b'x';
        put(&mut block, 257, 6, b"ustar\0");
        put(&mut block, 263, 2, b"00");
        checksum(&mut block);
        block
    }
}

#[cfg(test)]
pub(crate) mod tests;
