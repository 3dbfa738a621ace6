//! Exclude patterns (`-x/--exclude`, `--exclude-from`, `backup --exclude`),
//! pure: which entries of a walk are left out, decided from an entry's
//! path relative to the backed-up root (bytes, no leading `/`) and whether
//! it is a directory. Must not touch the file system: the walk
//! (`io/client/walk.rs`) asks, and never opens what is excluded.
//!
//! # The rules
//! * `*` matches any run of bytes except `/`; `?` one byte except `/`.
//! * `[...]` one byte of a class, never `/`: single bytes and ranges
//!   (`[a-z0-9_]`), negated by a leading `!` or `^` (`[!.]`); a `]` right
//!   after the `[` (or the negation) is a member (`[]x]`), a `-` first or
//!   last is one too. Classes are of bytes, not characters: `[é]` is the
//!   set of the two bytes of `é` in UTF-8. Named classes (`[[:alpha:]]`)
//!   are not supported.
//! * `**` matches any run of bytes, `/` included; `**/` matches zero or
//!   more whole directories, so `**/x` matches `x` at the top too, and
//!   `a/**/b` matches `a/b`, `a/x/b` and `a/x/y/b`.
//! * A backslash takes the next byte literally (`\*`, `\[`, `\\`).
//! * A pattern with a `/` in it (other than trailing ones) is matched
//!   against the whole path relative to the backed-up root: `src/*.o`
//!   matches `src/a.o` but not `lib/src/a.o`. A leading `/` anchors a
//!   pattern at the root without requiring another slash (`/build`
//!   matches `build` at the top only) and is dropped.
//! * A pattern without a `/` is matched against the entry's name at any
//!   depth: `*.tmp` matches `a.tmp`, `x/y/a.tmp`.
//! * A trailing `/` matches directories only: `cache/` leaves out every
//!   directory named `cache` (with everything beneath it) and keeps a file
//!   named `cache`.
//! * An excluded directory is not opened, so nothing beneath it is sent,
//!   whatever other patterns say. The root of a walk and its ancestors are
//!   never excluded: the user named them.
//! * An empty pattern, one of slashes alone, a `[` without its `]`, a
//!   reversed range (`[z-a]`), a lone backslash at the end and a pattern
//!   longer than [`MAX_PATTERN`] bytes are errors ([`PatternError`]).
//!
//! Matching simulates the pattern as a small automaton over the path's
//! bytes (the set of pattern positions reachable so far), so it takes at
//! most (bytes of the path + 1) × (tokens of the pattern + 1) steps: no
//! backtracking, however many stars (`*a*a*a*b` on a long name of `a`s is
//! as fast as any).

use std::fmt;

/// Longest pattern accepted, in bytes (a path's longest, Linux `PATH_MAX`).
pub const MAX_PATTERN: usize = crate::proto::MAX_PATH;

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// Nothing to match: empty, or slashes alone.
    Empty(Vec<u8>),
    /// A `[` without the `]` that ends its class.
    UnterminatedClass(Vec<u8>),
    /// A range whose first byte comes after its last (`[z-a]`).
    ReversedRange(Vec<u8>),
    /// A backslash with no byte after it.
    TrailingBackslash(Vec<u8>),
    /// Longer than [`MAX_PATTERN`].
    TooLong(usize),
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |p: &[u8]| crate::proto::path::escape(p);
        match self {
            PatternError::Empty(p) if p.is_empty() => f.write_str("empty exclude pattern"),
            PatternError::Empty(p) => {
                write!(f, "exclude pattern '{}' has nothing to match", shown(p))
            }
            PatternError::UnterminatedClass(p) => {
                write!(
                    f,
                    "exclude pattern '{}': '[' without a closing ']'",
                    shown(p)
                )
            }
            PatternError::ReversedRange(p) => write!(
                f,
                "exclude pattern '{}': a range's first byte comes after its last",
                shown(p)
            ),
            PatternError::TrailingBackslash(p) => write!(
                f,
                "exclude pattern '{}' ends with a lone backslash",
                shown(p)
            ),
            PatternError::TooLong(n) => write!(
                f,
                "exclude pattern of {n} bytes is longer than {MAX_PATTERN} bytes"
            ),
        }
    }
}

impl std::error::Error for PatternError {}

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// This byte.
    Byte(u8),
    /// `?`: any byte but `/`.
    Any,
    /// `[...]`: a byte of the set (`/` never in it).
    Class(Box<[u64; 4]>),
    /// `*`: any run without `/`.
    Star,
    /// `**`: any run.
    Globstar,
    /// The start of `**/`: reads nothing, and either skips the whole
    /// `**/` (no directory) or goes on to the [`Token::Dirs`] after it.
    MaybeDirs,
    /// The rest of `**/`: any run, then a `/`.
    Dirs,
}

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    tokens: Vec<Token>,
    /// A trailing `/`: directories only.
    dir_only: bool,
    /// Matched against the whole relative path, not the name.
    whole_path: bool,
}

/// A set of exclude patterns, compiled: see the module's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Excludes {
    patterns: Vec<Pattern>,
}

impl Excludes {
    /// Compiles `patterns`; the first invalid one is the error.
    pub fn new<I, P>(patterns: I) -> Result<Excludes, PatternError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        let patterns = patterns
            .into_iter()
            .map(|p| compile(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Excludes { patterns })
    }

    /// True when it holds no pattern (nothing is excluded).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when the entry at `rel` (relative to the backed-up root, no
    /// leading `/`; a directory when `is_dir`) is left out. Whether its
    /// ancestors are is not looked at: see [`Self::excluded_beneath`].
    #[must_use]
    pub fn excluded(&self, rel: &[u8], is_dir: bool) -> bool {
        let name = match rel.iter().rposition(|&b| b == b'/') {
            Some(slash) => rel.get(slash + 1..).unwrap_or_default(),
            None => rel,
        };
        self.patterns.iter().any(|p| {
            (is_dir || !p.dir_only) && matches(&p.tokens, if p.whole_path { rel } else { name })
        })
    }

    /// True when `rel` or one of the directories above it (below the
    /// root) is excluded: what a walk would never reach. For changes seen
    /// beneath the root (watch mode) rather than walked to.
    #[must_use]
    pub fn excluded_beneath(&self, rel: &[u8], is_dir: bool) -> bool {
        let ancestors = rel
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .filter_map(|(i, _)| rel.get(..i));
        for dir in ancestors {
            if !dir.is_empty() && self.excluded(dir, true) {
                return true;
            }
        }
        !rel.is_empty() && self.excluded(rel, is_dir)
    }
}

/// The patterns of an `--exclude-from` file: one a line, `\n` or `\r\n`
/// ended; blank lines and lines whose first byte is `#` are ignored. Other
/// bytes are kept as they are (a name may end in a space).
pub fn parse_list(text: &[u8]) -> Vec<Vec<u8>> {
    text.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.trim_ascii().is_empty() && !l.starts_with(b"#"))
        .map(<[u8]>::to_vec)
        .collect()
}

/// Compiles one pattern.
fn compile(raw: &[u8]) -> Result<Pattern, PatternError> {
    if raw.len() > MAX_PATTERN {
        return Err(PatternError::TooLong(raw.len()));
    }
    let body = raw.strip_prefix(b"/");
    let anchored = body.is_some();
    let mut body = body.unwrap_or(raw);
    while let Some(rest) = body.strip_prefix(b"/") {
        body = rest;
    }
    let mut dir_only = false;
    while ends_with_plain_slash(body) {
        body = body.get(..body.len() - 1).unwrap_or_default();
        dir_only = true;
    }
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        i += 1;
        match b {
            b'\\' => match body.get(i) {
                Some(&next) => {
                    tokens.push(Token::Byte(next));
                    i += 1;
                }
                None => return Err(PatternError::TrailingBackslash(raw.to_vec())),
            },
            b'?' => tokens.push(Token::Any),
            b'*' => {
                let mut stars = 1;
                while body.get(i) == Some(&b'*') {
                    stars += 1;
                    i += 1;
                }
                if stars == 1 {
                    tokens.push(Token::Star);
                } else if body.get(i) == Some(&b'/') {
                    tokens.push(Token::MaybeDirs);
                    tokens.push(Token::Dirs);
                    i += 1;
                } else {
                    tokens.push(Token::Globstar);
                }
            }
            b'[' => {
                let (set, end) = class(body, i, raw)?;
                tokens.push(Token::Class(Box::new(set)));
                i = end;
            }
            _ => tokens.push(Token::Byte(b)),
        }
    }
    if tokens.is_empty() {
        return Err(PatternError::Empty(raw.to_vec()));
    }
    let whole_path = anchored
        || tokens
            .iter()
            .any(|t| matches!(t, Token::Byte(b'/') | Token::Dirs));
    Ok(Pattern {
        tokens,
        dir_only,
        whole_path,
    })
}

/// True when `body` ends with a `/` that no backslash escapes (an even
/// run of backslashes before it).
fn ends_with_plain_slash(body: &[u8]) -> bool {
    let Some(rest) = body.strip_suffix(b"/") else {
        return false;
    };
    let backslashes = rest.iter().rev().take_while(|&&b| b == b'\\').count();
    backslashes % 2 == 0
}

/// Reads a class starting right after its `[` at `start`: its set and
/// where the pattern goes on after its `]`.
fn class(body: &[u8], start: usize, raw: &[u8]) -> Result<([u64; 4], usize), PatternError> {
    let unterminated = || PatternError::UnterminatedClass(raw.to_vec());
    let mut i = start;
    let negated = matches!(body.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut set = [0u64; 4];
    let mut first = true;
    loop {
        let mut b = *body.get(i).ok_or_else(unterminated)?;
        i += 1;
        if b == b']' && !first {
            break;
        }
        first = false;
        if b == b'\\' {
            b = *body.get(i).ok_or_else(unterminated)?;
            i += 1;
        }
        let mut hi = b;
        if body.get(i) == Some(&b'-') && body.get(i + 1).is_some_and(|&n| n != b']') {
            i += 1;
            hi = *body.get(i).ok_or_else(unterminated)?;
            i += 1;
            if hi == b'\\' {
                hi = *body.get(i).ok_or_else(unterminated)?;
                i += 1;
            }
            if hi < b {
                return Err(PatternError::ReversedRange(raw.to_vec()));
            }
        }
        for m in b..=hi {
            set[usize::from(m >> 6)] |= 1 << (m & 63);
        }
    }
    if negated {
        for w in &mut set {
            *w = !*w;
        }
    }
    set[usize::from(b'/' >> 6)] &= !(1 << (b'/' & 63));
    Ok((set, i))
}

/// True when class `set` holds byte `b`.
fn in_class(set: &[u64; 4], b: u8) -> bool {
    set[usize::from(b >> 6)] & (1 << (b & 63)) != 0
}

/// States of patterns this short are simulated on the stack.
const STACK_WORDS: usize = 4;

/// True when `tokens` match the whole of `text`.
fn matches(tokens: &[Token], text: &[u8]) -> bool {
    let mut steps = 0;
    run(tokens, text, &mut steps)
}

/// The automaton: state `i` means `tokens[..i]` matched the bytes read so
/// far. `steps` counts the token visits (the tests bound it).
fn run(tokens: &[Token], text: &[u8], steps: &mut u64) -> bool {
    let words = (tokens.len() + 1).div_ceil(64);
    let mut stack = [[0u64; STACK_WORDS]; 2];
    let mut heap;
    let (cur, next): (&mut [u64], &mut [u64]) = if words <= STACK_WORDS {
        let [a, b] = &mut stack;
        (&mut a[..words], &mut b[..words])
    } else {
        heap = vec![0u64; 2 * words];
        heap.split_at_mut(words)
    };
    set_bit(cur, 0);
    close(tokens, cur);
    for &b in text {
        next.fill(0);
        let mut any = false;
        for (i, t) in tokens.iter().enumerate() {
            if !bit(cur, i) {
                continue;
            }
            *steps += 1;
            let (stay, advance) = match t {
                Token::Byte(want) => (false, b == *want),
                Token::Any => (false, b != b'/'),
                Token::Class(set) => (false, in_class(set, b)),
                Token::Star => (b != b'/', false),
                Token::Globstar => (true, false),
                Token::MaybeDirs => (false, false),
                Token::Dirs => (true, b == b'/'),
            };
            if stay {
                set_bit(next, i);
                any = true;
            }
            if advance {
                set_bit(next, i + 1);
                any = true;
            }
        }
        if !any {
            return false;
        }
        close(tokens, next);
        cur.copy_from_slice(next);
    }
    bit(cur, tokens.len())
}

/// Adds the states reachable without reading a byte: past every star (it
/// may match nothing) and past a whole `**/`; they only lead forward, so
/// one pass in order suffices.
fn close(tokens: &[Token], states: &mut [u64]) {
    for (i, t) in tokens.iter().enumerate() {
        if !bit(states, i) {
            continue;
        }
        match t {
            Token::Star | Token::Globstar => set_bit(states, i + 1),
            Token::MaybeDirs => {
                set_bit(states, i + 1);
                set_bit(states, i + 2);
            }
            _ => {}
        }
    }
}

fn bit(states: &[u64], i: usize) -> bool {
    states.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn set_bit(states: &mut [u64], i: usize) {
    if let Some(w) = states.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

#[cfg(test)]
mod tests;
