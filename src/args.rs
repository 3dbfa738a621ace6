//! Command lines as bytes: `getopts` takes only UTF-8 arguments (any other
//! is "Unrecognized option", even a file name after the options), so both
//! binaries find here where their options end and take the values of the
//! options that are paths as they were given, and hand `getopts` only a
//! lossy copy of the option part to check and explain.
//!
//! The scan follows getopts' own rules: `--` ends the options; `--name=V`
//! or `--name V`; `-abV` or `-ab V` where `b` takes a value (the rest of
//! the word, else the next argument, whatever it looks like); `-` alone is
//! not an option.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The `short` of an option that has only a long name (`--bwlimit`): no
/// argument holds a NUL, so no `-x` matches it. Read such an option's value
/// from getopts (several long-only options would share this key in
/// [`Scanned::value`]).
pub const LONG_ONLY: u8 = 0;

/// An option that takes a value: its short letter and long name.
#[derive(Debug, Clone, Copy)]
pub struct WithValue {
    /// The letter of `-x`, or [`LONG_ONLY`] for an option with no short
    /// form (its values are then found by its long name:
    /// [`Scanned::values_of`]).
    pub short: u8,
    /// The name of `--name`.
    pub long: &'static str,
}

/// What [`scan`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scanned {
    /// Arguments before this index are options (a `--` included); the first
    /// free argument is here, when `stop_at_free`.
    pub options_end: usize,
    /// The value given to each option that takes one, by short letter, as
    /// bytes, in the order given (for an option given once, the last one
    /// wins: getopts refuses repeats of those; repeatable ones keep all).
    pub values: Vec<(u8, OsString)>,
    /// The same values by long name, for the options with no short form.
    pub long_values: Vec<(&'static str, OsString)>,
}

impl Scanned {
    /// The value of option `short`, as given.
    pub fn value(&self, short: u8) -> Option<&OsStr> {
        self.values
            .iter()
            .rev()
            .find(|(s, _)| *s == short)
            .map(|(_, v)| v.as_os_str())
    }

    /// Every value of the option named `--long`, in the order given.
    pub fn values_of<'a>(&'a self, long: &'a str) -> impl Iterator<Item = &'a OsStr> + 'a {
        self.long_values
            .iter()
            .filter(move |(l, _)| *l == long)
            .map(|(_, v)| v.as_os_str())
    }
}

/// Scans `argv` (without the program name). `stop_at_free`: the options end
/// at the first argument that is not one (the client: HOST comes next);
/// otherwise free arguments may come between options (the server).
pub fn scan(argv: &[OsString], with_value: &[WithValue], stop_at_free: bool) -> Scanned {
    let mut out = Scanned::default();
    let mut i = 0;
    while let Some(arg) = argv.get(i) {
        let a = arg.as_bytes();
        i += 1;
        if a == b"--" {
            out.options_end = i;
            return out;
        }
        if let Some(long) = a.strip_prefix(b"--") {
            let (name, attached) = match long.iter().position(|&b| b == b'=') {
                Some(eq) => {
                    let (name, eq_value) = long.split_at(eq);
                    (name, eq_value.get(1..))
                }
                None => (long, None),
            };
            if let Some(o) = with_value.iter().find(|o| o.long.as_bytes() == name) {
                let value = match attached {
                    Some(v) => Some(v.to_vec()),
                    None => take(argv, &mut i),
                };
                if let Some(v) = value {
                    out.long_values
                        .push((o.long, OsString::from_vec(v.clone())));
                    out.values.push((o.short, OsString::from_vec(v)));
                }
            }
        } else if a.len() > 1 && a.starts_with(b"-") {
            for (k, &c) in a.iter().enumerate().skip(1) {
                if let Some(o) = with_value
                    .iter()
                    .find(|o| o.short == c && o.short != LONG_ONLY)
                {
                    let rest = a.get(k + 1..).unwrap_or_default();
                    let value = if rest.is_empty() {
                        take(argv, &mut i)
                    } else {
                        Some(rest.to_vec())
                    };
                    if let Some(v) = value {
                        out.long_values
                            .push((o.long, OsString::from_vec(v.clone())));
                        out.values.push((o.short, OsString::from_vec(v)));
                    }
                    break;
                }
            }
        } else if stop_at_free {
            out.options_end = i - 1;
            return out;
        }
        out.options_end = i;
    }
    out
}

/// The next argument as an option's value.
fn take(argv: &[OsString], i: &mut usize) -> Option<Vec<u8>> {
    let v = argv.get(*i)?.as_bytes().to_vec();
    *i += 1;
    Some(v)
}

/// The arguments as UTF-8 for getopts, bytes that are not replaced with
/// U+FFFD: it then checks and explains the options, and the values that are
/// paths are taken from [`scan`] instead.
pub fn lossy(argv: &[OsString]) -> Vec<String> {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: [WithValue; 2] = [
        WithValue {
            short: b'n',
            long: "name",
        },
        WithValue {
            short: b'k',
            long: "secret-file",
        },
    ];

    fn argv(v: &[&[u8]]) -> Vec<OsString> {
        v.iter().map(|a| OsString::from_vec(a.to_vec())).collect()
    }

    #[test]
    fn options_end_at_the_first_free_argument() {
        let a = argv(&[b"-q", b"-n", b"x", b"host", b"-v", b"caf\xe9"]);
        let s = scan(&a, &OPTS, true);
        assert_eq!(s.options_end, 3);
        assert_eq!(s.value(b'n'), Some(OsStr::new("x")));
        let a = argv(&[b"-qn", b"-v", b"--secret-file=/k\xff", b"--", b"-h"]);
        let s = scan(&a, &OPTS, true);
        assert_eq!(s.options_end, 4);
        assert_eq!(s.value(b'n'), Some(OsStr::new("-v")));
        assert_eq!(s.value(b'k'), Some(OsStr::from_bytes(b"/k\xff")));
        let a = argv(&[b"-kFILE", b"--name", b"n", b"-", b"x"]);
        let s = scan(&a, &OPTS, true);
        assert_eq!(
            (s.options_end, s.value(b'k')),
            (3, Some(OsStr::new("FILE")))
        );
        assert_eq!(scan(&argv(&[b"-n"]), &OPTS, true).options_end, 1);
        assert_eq!(scan(&[], &OPTS, true), Scanned::default());
    }

    /// Issue 12: a repeatable option keeps every value, in order; a
    /// long-only one is keyed by NUL.
    #[test]
    fn repeated_values_are_all_kept() {
        let opts = [
            WithValue {
                short: b'x',
                long: "exclude",
            },
            WithValue {
                short: 0,
                long: "exclude-from",
            },
        ];
        let a = argv(&[
            b"-x",
            b"*.tmp",
            b"-qx\xff",
            b"--exclude=c/",
            b"--exclude-from",
            b"list",
            b"host",
        ]);
        let s = scan(&a, &opts, true);
        assert_eq!(s.options_end, 6);
        let x: Vec<&[u8]> = s
            .values
            .iter()
            .filter(|(k, _)| *k == b'x')
            .map(|(_, v)| v.as_bytes())
            .collect();
        assert_eq!(x, [&b"*.tmp"[..], b"\xff", b"c/"]);
        let lists: Vec<&OsStr> = s.values_of("exclude-from").collect();
        assert_eq!(lists, [OsStr::new("list")]);
    }

    #[test]
    fn a_long_only_option_takes_its_value_and_no_letter_matches_it() {
        let opts = [
            OPTS[0],
            WithValue {
                short: LONG_ONLY,
                long: "bwlimit",
            },
        ];
        let a = argv(&[b"--bwlimit", b"5M", b"-n", b"x", b"host", b"backup"]);
        let s = scan(&a, &opts, true);
        assert_eq!(s.options_end, 4);
        assert_eq!(s.value(LONG_ONLY), Some(OsStr::new("5M")));
        let a = argv(&[b"--bwlimit=5M", b"host"]);
        assert_eq!(scan(&a, &opts, true).options_end, 1);
        // A NUL cannot reach argv; even so it names no option.
        let a = argv(&[b"-\0", b"host"]);
        let s = scan(&a, &opts, true);
        assert_eq!((s.options_end, s.values.len()), (1, 0));
    }

    #[test]
    fn without_stopping_every_value_is_found() {
        let a = argv(&[b"stray", b"-k", b"\xff", b"-v", b"--name=\xfe"]);
        let s = scan(&a, &OPTS, false);
        assert_eq!(s.options_end, 5);
        assert_eq!(s.value(b'k'), Some(OsStr::from_bytes(b"\xff")));
        assert_eq!(s.value(b'n'), Some(OsStr::from_bytes(b"\xfe")));
        assert_eq!(lossy(&a)[2], "\u{fffd}");
    }
}
