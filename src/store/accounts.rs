//! The owner names a namespace keeps: one small text file at its root,
//! [`NAMES_FILE`], rather than the names in every stored entry's record
//! (which cost an attribute per file, and on ext4 an extra block per small
//! file where the record no longer fits in the inode).
//!
//! The file reads `v1`, then one line per id, `user 1000 ann` or
//! `group 100 users`, names written as the metadata record writes them
//! (`%XX` for every byte outside `[A-Za-z0-9._-]`). The client's latest
//! name for an id wins. Lines that cannot be read are skipped; at most
//! [`crate::proto::owners::MAX_NAMES`] users and as many groups are kept.
//!
//! Pure: a [`Book`] in, bytes out, and back.

use super::record::{escape_into, unescape};
use crate::proto::owners::Book;

/// The table's name at the namespace root: in the reserved `.rsb-tmp.`
/// space, so no client path can be it and no listing or restore shows
/// it, and outside the grammar of leftovers, so no sweep removes it.
pub const NAMES_FILE: &[u8] = b".rsb-tmp.names";

/// Largest table read (a full one of 65,536 users and as many groups of
/// names of 255 bytes written `%XX` would be larger; such a table is read
/// as far as this).
pub const MAX_NAMES_FILE: usize = 4 << 20;

/// The table's text for `book`.
pub fn encode(book: &Book) -> Vec<u8> {
    let mut s = String::from("v1\n");
    let [users, groups] = book.entries();
    for (word, list) in [("user", users), ("group", groups)] {
        for (id, name) in list {
            s.push_str(word);
            s.push(' ');
            s.push_str(&id.to_string());
            s.push(' ');
            escape_into(&mut s, name);
            s.push('\n');
        }
    }
    s.into_bytes()
}

/// The names a table's text holds; anything else is skipped (a file
/// that is not ours holds none).
pub fn decode(b: &[u8]) -> Book {
    let mut book = Book::new();
    let mut lines = b.split(|&c| c == b'\n');
    if lines.next() != Some(b"v1") {
        return book;
    }
    let (mut users, mut groups) = (Vec::new(), Vec::new());
    for line in lines {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let mut words = line.split(' ');
        let (Some(kind), Some(id), Some(name), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        let (Ok(id), Some(name)) = (id.parse::<u32>(), unescape(name)) else {
            continue;
        };
        match kind {
            "user" => users.push((id, name)),
            "group" => groups.push((id, name)),
            _ => {}
        }
    }
    book.learn(users, groups);
    book
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_round_trips_escaped_and_skips_junk() {
        let mut b = Book::new();
        b.learn(
            vec![(1000, b"ann".to_vec()), (0, b"root".to_vec())],
            vec![(100, b"d\xe9v ops".to_vec())],
        );
        let text = encode(&b);
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            "v1\nuser 0 root\nuser 1000 ann\ngroup 100 d%E9v%20ops\n"
        );
        let back = decode(&text);
        assert_eq!(back.entries(), b.entries());
        let junk = b"v1\nuser x ann\nuser 5\nwho 1 a\nuser 7 a b\nuser 8 a%zz\n\xff\ngroup 9 ok\n";
        let j = decode(junk);
        assert_eq!(j.user(5), None);
        assert_eq!(j.user(8), None);
        assert_eq!(j.group(9), Some(&b"ok"[..]));
        assert_eq!(decode(b"v2\nuser 1 a\n").user(1), None);
        assert_eq!(decode(b"").entries(), Book::new().entries());
    }

    #[test]
    fn the_latest_name_wins_and_only_news_is_a_change() {
        let mut table = decode(b"v1\nuser 1000 ann\ngroup 100 users\n");
        let mut heard = Book::new();
        heard.learn(vec![(1000, b"ann".to_vec())], vec![]);
        assert!(!table.absorb(&heard), "nothing new");
        heard.learn(vec![(1000, b"anna".to_vec())], vec![(5, b"tty".to_vec())]);
        assert!(table.absorb(&heard));
        assert_eq!(table.user(1000), Some(&b"anna"[..]));
        assert_eq!(table.group(5), Some(&b"tty"[..]));
        assert_eq!(table.group(100), Some(&b"users"[..]));
        assert!(!table.absorb(&heard));
    }
}
