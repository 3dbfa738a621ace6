//! Paths on the wire. A [`WirePath`] is a relative path made of plain name
//! components: no leading `/`, no empty, `.` or `..` component, no NUL, at
//! most [`MAX_PATH`] bytes with components of at most [`MAX_NAME`] bytes.
//! The empty path names the root of whatever the request is relative to.
//! Validation happens once, when a path is decoded, so the rest of the
//! program never sees a hostile path.

use std::fmt;

use super::{MAX_NAME, MAX_PATH};

/// Names starting with this are the temporary files of a transfer in
/// progress; listings never show them and no request may name them.
pub const TMP_PREFIX: &[u8] = b".rsb-tmp.";

/// Why a path with a [`TMP_PREFIX`] component is refused, in words: the
/// server's answer and the client's own warning say the same.
pub const RESERVED_MESSAGE: &str = "names starting with .rsb-tmp. are reserved";

/// True for names reserved for temporary files.
pub fn is_tmp_name(name: &[u8]) -> bool {
    name.starts_with(TMP_PREFIX)
}

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Starts with `/`.
    Absolute,
    /// Has an empty component (`a//b`, trailing `/`).
    EmptyComponent,
    /// Has a `.` component.
    Dot,
    /// Has a `..` component.
    DotDot,
    /// Contains a NUL byte.
    Nul,
    /// Longer than [`MAX_PATH`].
    TooLong,
    /// A component longer than [`MAX_NAME`].
    NameTooLong,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::Absolute => "path is absolute",
            PathError::EmptyComponent => "path has an empty component",
            PathError::Dot => "path has a '.' component",
            PathError::DotDot => "path has a '..' component",
            PathError::Nul => "path contains a NUL byte",
            PathError::TooLong => "path is too long",
            PathError::NameTooLong => "path has a component longer than 255 bytes",
        })
    }
}

/// A validated relative path (see the module docs).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct WirePath(Vec<u8>);

impl WirePath {
    /// The empty path: the root of the request.
    pub fn root() -> WirePath {
        WirePath(Vec::new())
    }

    /// Validates `bytes` as a wire path.
    pub fn new(bytes: Vec<u8>) -> Result<WirePath, PathError> {
        if bytes.is_empty() {
            return Ok(WirePath(bytes));
        }
        if bytes.len() > MAX_PATH {
            return Err(PathError::TooLong);
        }
        if bytes.contains(&0) {
            return Err(PathError::Nul);
        }
        if bytes[0] == b'/' {
            return Err(PathError::Absolute);
        }
        for comp in bytes.split(|&b| b == b'/') {
            match comp {
                b"" => return Err(PathError::EmptyComponent),
                b"." => return Err(PathError::Dot),
                b".." => return Err(PathError::DotDot),
                c if c.len() > MAX_NAME => return Err(PathError::NameTooLong),
                _ => {}
            }
        }
        Ok(WirePath(bytes))
    }

    /// Builds a wire path from a local absolute or relative path by dropping
    /// leading `/`, `.` components and empty components. `..` is refused.
    pub fn from_local(bytes: &[u8]) -> Result<WirePath, PathError> {
        let mut out = Vec::with_capacity(bytes.len());
        for comp in bytes.split(|&b| b == b'/') {
            match comp {
                b"" | b"." => continue,
                b".." => return Err(PathError::DotDot),
                c => {
                    if !out.is_empty() {
                        out.push(b'/');
                    }
                    out.extend_from_slice(c);
                }
            }
        }
        WirePath::new(out)
    }

    /// True when a component is a reserved temporary name.
    pub fn is_reserved(&self) -> bool {
        self.components().any(is_tmp_name)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True for the empty (root) path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The components, in order.
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|&b| b == b'/').filter(|c| !c.is_empty())
    }

    /// The last component, or `None` for the root.
    pub fn file_name(&self) -> Option<&[u8]> {
        self.components().last()
    }

    /// The path without its last component (root for a one-component path).
    pub fn parent(&self) -> Option<WirePath> {
        if self.0.is_empty() {
            return None;
        }
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => Some(WirePath(self.0[..i].to_vec())),
            None => Some(WirePath::root()),
        }
    }

    /// `self/name`, validated.
    pub fn join(&self, name: &[u8]) -> Result<WirePath, PathError> {
        let mut v = self.0.clone();
        if !v.is_empty() {
            v.push(b'/');
        }
        v.extend_from_slice(name);
        if name.contains(&b'/') {
            return Err(PathError::EmptyComponent);
        }
        WirePath::new(v)
    }

    /// `self/rel` for a relative wire path.
    pub fn join_path(&self, rel: &WirePath) -> Result<WirePath, PathError> {
        if rel.is_root() {
            return Ok(self.clone());
        }
        if self.is_root() {
            return Ok(rel.clone());
        }
        let mut v = self.0.clone();
        v.push(b'/');
        v.extend_from_slice(&rel.0);
        WirePath::new(v)
    }
}

impl fmt::Debug for WirePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for WirePath {
    /// Shown as an absolute path, escaping bytes that are not printable UTF-8.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("/")?;
        f.write_str(&escape(&self.0))
    }
}

/// Renders a byte string for a message: valid UTF-8 as is, control characters
/// and invalid bytes as `\xNN`, so a newline in a name cannot forge a line.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                for b in c.to_string().bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[u8]) -> Result<WirePath, PathError> {
        WirePath::new(s.to_vec())
    }

    #[test]
    fn accepts_plain_paths() {
        assert!(p(b"").unwrap().is_root());
        assert!(p(b"a").is_ok());
        assert!(p(b"home/ann/a b\tc\nd").is_ok());
        assert!(p("é/ü".as_bytes()).is_ok());
        assert!(p(b"a/\xff\xfe").is_ok());
        assert!(p(b"...").is_ok());
        assert!(p(b"..a/b..").is_ok());
    }

    #[test]
    fn refuses_hostile_paths() {
        assert_eq!(p(b"/etc/passwd"), Err(PathError::Absolute));
        assert_eq!(p(b".."), Err(PathError::DotDot));
        assert_eq!(p(b"../x"), Err(PathError::DotDot));
        assert_eq!(p(b"a/../x"), Err(PathError::DotDot));
        assert_eq!(p(b"a/.."), Err(PathError::DotDot));
        assert_eq!(p(b"."), Err(PathError::Dot));
        assert_eq!(p(b"a/./b"), Err(PathError::Dot));
        assert_eq!(p(b"a//b"), Err(PathError::EmptyComponent));
        assert_eq!(p(b"a/"), Err(PathError::EmptyComponent));
        assert_eq!(p(b"a\0b"), Err(PathError::Nul));
        assert_eq!(p(&vec![b'a'; 256]), Err(PathError::NameTooLong));
        let long = [b"a/".repeat(2048), b"b".to_vec()].concat();
        assert_eq!(p(&long), Err(PathError::TooLong));
    }

    #[test]
    fn from_local_strips_root_and_dots() {
        assert_eq!(
            WirePath::from_local(b"/home/./ann//x").unwrap().as_bytes(),
            b"home/ann/x"
        );
        assert!(WirePath::from_local(b"/").unwrap().is_root());
        assert_eq!(WirePath::from_local(b"/a/../b"), Err(PathError::DotDot));
    }

    #[test]
    fn parent_and_join() {
        let a = p(b"a/b/c").unwrap();
        assert_eq!(a.parent().unwrap().as_bytes(), b"a/b");
        assert_eq!(a.file_name().unwrap(), b"c");
        assert!(p(b"a").unwrap().parent().unwrap().is_root());
        assert!(WirePath::root().parent().is_none());
        assert_eq!(WirePath::root().join(b"x").unwrap().as_bytes(), b"x");
        assert!(a.join(b"..").is_err());
        assert!(a.join(b"x/y").is_err());
        assert_eq!(
            a.join_path(&p(b"d/e").unwrap()).unwrap().as_bytes(),
            b"a/b/c/d/e"
        );
    }

    #[test]
    fn escape_controls() {
        assert_eq!(escape(b"a\nb"), "a\\x0ab");
        assert_eq!(escape(b"\xff"), "\\xff");
        assert_eq!(escape("é".as_bytes()), "é");
    }
}
