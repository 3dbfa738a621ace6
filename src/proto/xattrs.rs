//! Extended attributes on the wire: the set an entry carries (a file's or
//! a directory's, POSIX ACLs and file capabilities included, which Linux
//! keeps as `system.posix_acl_*` and `security.capability` attributes),
//! its bounds, and the digest a manifest compares instead of the set.
//!
//! An `Xattrs` frame (id, path, the set) goes right before the entry frame
//! of the same id and path (`File`, `FileFrom`, `Dir`, `Update`; in a
//! restore `File`, `Offer`, `Dir`) that it belongs to; an entry without
//! one has none. A manifest entry carries only the set's [`digest`], so
//! an unchanged set costs eight bytes.
//!
//! Bounds, checked by the codec on every frame: at most [`MAX_XATTRS`]
//! attributes, names 1 to [`MAX_XATTR_NAME`] bytes without NUL in one of
//! the [`NAMESPACES`], no name twice (the set is sorted by name), and at
//! most [`MAX_XATTR_BYTES`] of names and values together. A sender whose
//! file has more does not send a partial set: it sends the file without
//! any and reports the file (see the client's walk).
//!
//! Pure: bytes in, sets and digests out.

/// Most attributes one entry carries.
pub const MAX_XATTRS: usize = 256;

/// Longest attribute name rsb carries: Linux's 255 (`XATTR_NAME_MAX`)
/// less the 11 bytes of the prefix a store keeps every attribute under
/// (`user.rsb.x.`, see `crate::store::record`).
pub const MAX_XATTR_NAME: usize = 244;

/// Most bytes of names and values together one entry carries: with the
/// path and the lengths, an `Xattrs` frame stays under
/// [`super::MAX_PAYLOAD`].
pub const MAX_XATTR_BYTES: usize = 56 * 1024;

/// The name prefixes Linux has; an attribute outside them cannot be set
/// anywhere, so none is accepted.
pub const NAMESPACES: [&[u8]; 4] = [b"user.", b"security.", b"trusted.", b"system."];

/// One entry's extended attributes: `(name, value)` pairs sorted by name,
/// each name once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Xattrs(Vec<(Vec<u8>, Vec<u8>)>);

/// Why a set cannot cross the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XattrError {
    /// More than [`MAX_XATTRS`] attributes.
    TooMany(usize),
    /// More than [`MAX_XATTR_BYTES`] of names and values.
    TooLarge(usize),
    /// A name that is empty, too long, holds a NUL or is in no namespace.
    BadName(Vec<u8>),
    /// A name given twice.
    Duplicate(Vec<u8>),
}

impl std::fmt::Display for XattrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XattrError::TooMany(n) => write!(
                f,
                "{n} extended attributes, more than the {MAX_XATTRS} rsb keeps"
            ),
            XattrError::TooLarge(n) => write!(
                f,
                "{n} bytes of extended attributes, more than the {MAX_XATTR_BYTES} rsb keeps"
            ),
            XattrError::BadName(n) => write!(
                f,
                "extended attribute name {:?} is not one rsb keeps (1 to {MAX_XATTR_NAME} bytes in user., security., trusted. or system.)",
                String::from_utf8_lossy(n)
            ),
            XattrError::Duplicate(n) => write!(
                f,
                "extended attribute {:?} given twice",
                String::from_utf8_lossy(n)
            ),
        }
    }
}

/// Whether `name` may name an attribute: 1 to [`MAX_XATTR_NAME`] bytes,
/// no NUL, in one of the [`NAMESPACES`] with something after the prefix.
pub fn is_valid_name(name: &[u8]) -> bool {
    name.len() <= MAX_XATTR_NAME
        && !name.contains(&0)
        && NAMESPACES
            .iter()
            .any(|p| name.len() > p.len() && name.starts_with(p))
}

impl Xattrs {
    /// The empty set.
    pub fn new() -> Xattrs {
        Xattrs::default()
    }

    /// A set from pairs in any order, checked against every bound.
    pub fn from_pairs(mut pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Xattrs, XattrError> {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        Xattrs::from_sorted(pairs)
    }

    /// A set from pairs that must already be sorted by name (what the
    /// codec reads: a set out of order is malformed).
    pub fn from_sorted(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Xattrs, XattrError> {
        if pairs.len() > MAX_XATTRS {
            return Err(XattrError::TooMany(pairs.len()));
        }
        let bytes: usize = pairs.iter().map(|(n, v)| n.len() + v.len()).sum();
        if bytes > MAX_XATTR_BYTES {
            return Err(XattrError::TooLarge(bytes));
        }
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !is_valid_name(name) {
                return Err(XattrError::BadName(name.clone()));
            }
            if i > 0 && pairs.get(i - 1).is_some_and(|(prev, _)| prev >= name) {
                return Err(XattrError::Duplicate(name.clone()));
            }
        }
        Ok(Xattrs(pairs))
    }

    /// The pairs, sorted by name.
    pub fn pairs(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.0
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The value of `name`, if the set has it.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.0
            .binary_search_by(|(n, _)| n.as_slice().cmp(name))
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, v)| v.as_slice())
    }

    /// The set's digest, see [`digest`].
    pub fn digest(&self) -> u64 {
        digest(&self.0)
    }
}

/// What a manifest carries for a set of `pairs` (sorted by name): 0 for
/// none, else the first eight bytes of the BLAKE3 hash of each name and
/// value with its length before it (so no two sets share an encoding),
/// never 0 (a set that hashes to 0 is 1). A collision would only make an
/// incremental backup skip a changed set, never damage data; at 2^-64 per
/// change it is not a concern.
pub fn digest(pairs: &[(Vec<u8>, Vec<u8>)]) -> u64 {
    if pairs.is_empty() {
        return 0;
    }
    let mut h = blake3::Hasher::new();
    for (name, value) in pairs {
        h.update(&(name.len() as u32).to_le_bytes());
        h.update(name);
        h.update(&(value.len() as u32).to_le_bytes());
        h.update(value);
    }
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.finalize().as_bytes()[..8]);
    match u64::from_le_bytes(first) {
        0 => 1,
        d => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
        (n.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    #[test]
    fn a_set_is_sorted_and_checked() {
        let x = Xattrs::from_pairs(vec![p("user.b", "2"), p("security.capability", "c")])
            .expect("valid");
        assert_eq!(x.pairs()[0].0, b"security.capability");
        assert_eq!(x.get(b"user.b"), Some(&b"2"[..]));
        assert_eq!(x.get(b"user.c"), None);
        assert_eq!(
            Xattrs::from_pairs(vec![p("user.a", "1"), p("user.a", "2")]),
            Err(XattrError::Duplicate(b"user.a".to_vec()))
        );
        assert!(Xattrs::from_sorted(vec![p("user.b", ""), p("user.a", "")]).is_err());
        for bad in ["", "user.", "other.x", "user.a\0b", "userx"] {
            assert_eq!(
                Xattrs::from_pairs(vec![p(bad, "")]),
                Err(XattrError::BadName(bad.as_bytes().to_vec())),
                "{bad:?}"
            );
        }
        let long = format!("user.{}", "a".repeat(MAX_XATTR_NAME - 5));
        assert!(Xattrs::from_pairs(vec![(long.clone().into_bytes(), vec![])]).is_ok());
        assert!(Xattrs::from_pairs(vec![(format!("{long}a").into_bytes(), vec![])]).is_err());
    }

    #[test]
    fn bounds_are_the_documented_ones() {
        let many: Vec<_> = (0..=MAX_XATTRS)
            .map(|i| (format!("user.{i:04}").into_bytes(), vec![]))
            .collect();
        assert_eq!(
            Xattrs::from_pairs(many[..MAX_XATTRS].to_vec()).map(|x| x.len()),
            Ok(MAX_XATTRS)
        );
        assert_eq!(
            Xattrs::from_pairs(many),
            Err(XattrError::TooMany(MAX_XATTRS + 1))
        );
        let value = vec![7u8; MAX_XATTR_BYTES - 6];
        assert!(Xattrs::from_pairs(vec![(b"user.a".to_vec(), value.clone())]).is_ok());
        let mut big = value;
        big.push(0);
        assert_eq!(
            Xattrs::from_pairs(vec![(b"user.a".to_vec(), big)]),
            Err(XattrError::TooLarge(MAX_XATTR_BYTES + 1))
        );
    }

    #[test]
    fn the_digest_tells_sets_apart_and_is_never_zero_for_a_set() {
        assert_eq!(digest(&[]), 0);
        let a = digest(&[p("user.a", "bc")]);
        let b = digest(&[p("user.ab", "c")]);
        let c = digest(&[p("user.a", "bc"), p("user.b", "")]);
        assert!(a != 0 && b != 0 && c != 0);
        assert!(a != b && a != c && b != c);
        assert_eq!(a, digest(&[p("user.a", "bc")]));
    }
}
