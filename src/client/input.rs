//! What the prompt makes of input that is no command, as pure functions:
//! the message for a mistyped command word, with the command it probably
//! meant, and the terminal codes (arrow keys, control characters) that a
//! line typed on a terminal must not carry into a path.

use crate::proto::path::escape;

/// The message for a first word that is neither a command nor an existing
/// path, e.g. `unknown command 'restor' (did you mean restore?); use
/// 'backup PATH' to back up a path`.
pub fn unknown_command(word: &[u8]) -> String {
    let shown = escape(word);
    let hint = match suggest(word) {
        Some(c) => format!(" (did you mean {c}?)"),
        None if word.contains(&b'/') => " (and no such local path)".to_string(),
        None => String::new(),
    };
    format!("unknown command '{shown}'{hint}; use 'backup PATH' to back up a path")
}

/// The command `word` is probably a typo of: within one edit for short
/// words, two for longer ones, compared case-insensitively.
fn suggest(word: &[u8]) -> Option<&'static str> {
    const WORDS: [&str; 7] = ["backup", "restore", "ls", "verify", "help", "quit", "exit"];
    let word = word.to_ascii_lowercase();
    let limit = if word.len() <= 3 { 1 } else { 2 };
    WORDS
        .iter()
        .map(|c| (edit_distance(&word, c.as_bytes()), *c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions (`quti` is one edit
/// from `quit`). Only used on short words.
fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let mut rows = vec![(0..=b.len()).collect::<Vec<usize>>()];
    for (i, &ca) in a.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let prev = &rows[i];
            let mut d = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(row[j] + 1);
            if i > 0 && j > 0 && a[i - 1] == cb && b[j - 1] == ca {
                d = d.min(rows[i - 1][j - 1] + 1);
            }
            row.push(d);
        }
        rows.push(row);
    }
    rows.last().and_then(|r| r.last()).copied().unwrap_or(0)
}

/// Removes what a terminal sends for keys that do not type a character
/// (arrow keys, function keys: `ESC [ ... final`, `ESC O x`, `ESC x`) and
/// the other control characters but tab. Returns the rest and whether
/// anything was removed. Applied only to lines typed on a terminal: rsb's
/// prompt does no line editing (see the README), so such bytes are never
/// what the user sees on the screen, and must not become paths.
pub fn strip_terminal_codes(line: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(line.len());
    let mut bytes = line.iter().copied().peekable();
    let mut removed = false;
    while let Some(b) = bytes.next() {
        match b {
            0x1b => {
                removed = true;
                match bytes.next() {
                    // CSI: parameters and intermediates, then one final byte.
                    Some(b'[') => {
                        while bytes.next_if(|c| (0x20..=0x3f).contains(c)).is_some() {}
                        bytes.next_if(|c| (0x40..=0x7e).contains(c));
                    }
                    // SS3 (`ESC O A` for an arrow in application mode).
                    Some(b'O') => {
                        bytes.next();
                    }
                    _ => {}
                }
            }
            b'\t' => out.push(b),
            0x00..=0x1f | 0x7f => removed = true,
            _ => out.push(b),
        }
    }
    (out, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_words_only() {
        assert_eq!(suggest(b"restor"), Some("restore"));
        assert_eq!(suggest(b"bakup"), Some("backup"));
        assert_eq!(suggest(b"veryfy"), Some("verify"));
        assert_eq!(suggest(b"l"), Some("ls"));
        assert_eq!(suggest(b"sl"), Some("ls"));
        assert_eq!(suggest(b"EXIT"), Some("exit"));
        assert_eq!(suggest(b"clear"), None);
        assert_eq!(suggest(b"/etc/hosts"), None);
        assert_eq!(suggest(b""), None);
        assert_eq!(edit_distance(b"abc", b"abc"), 0);
        assert_eq!(edit_distance(b"", b"abc"), 3);
        assert_eq!(edit_distance(b"ab", b"ba"), 1);
    }

    #[test]
    fn terminal_escape_sequences_are_stripped() {
        // Up arrow (normal and application mode), F5, Home, a lone ESC.
        for junk in [
            &b"\x1b[A"[..],
            b"\x1bOA",
            b"\x1b[15~",
            b"\x1b[1;5H",
            b"\x1b",
            b"\x7f\x08",
        ] {
            assert_eq!(strip_terminal_codes(junk), (Vec::new(), true), "{junk:?}");
        }
        assert_eq!(
            strip_terminal_codes(b"ls\x1b[D\x1b[Dx"),
            (b"lsx".to_vec(), true)
        );
        assert_eq!(
            strip_terminal_codes(b"ls \tcaf\xc3\xa9 \xff"),
            (b"ls \tcaf\xc3\xa9 \xff".to_vec(), false)
        );
    }
}
