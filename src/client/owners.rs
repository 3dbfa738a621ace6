//! Whose a restored entry is on this machine: the owner and group ids the
//! server sent, mapped by name where the name was sent and exists here
//! (rsync's rule), else kept as numbers, and numbers always with
//! `--numeric-ids`; and the one line that says how many entries could not
//! be given their owner.
//!
//! Pure: ids, names and a lookup in, ids and text out. Looking a name up
//! on the system (`getpwnam_r`, `getgrnam_r`) is the shell's.

use crate::proto::owners::{Book, UNKNOWN_ID};
use crate::proto::Meta;

/// The local id for the sender's `id`, whose name the sender gave as
/// `name` (`None`: none): `lookup(name)` when that names an account here,
/// else `id`. `numeric` keeps `id` always; [`UNKNOWN_ID`] stays unknown.
pub fn local_id(
    id: u32,
    name: Option<&[u8]>,
    numeric: bool,
    lookup: impl FnOnce(&[u8]) -> Option<u32>,
) -> u32 {
    if numeric || id == UNKNOWN_ID {
        return id;
    }
    name.and_then(lookup).unwrap_or(id)
}

/// `meta` with its owner and group mapped to this machine's ids by
/// [`local_id`], with the names in `book`.
pub fn local_meta(
    meta: Meta,
    book: &Book,
    numeric: bool,
    user: impl FnOnce(&[u8]) -> Option<u32>,
    group: impl FnOnce(&[u8]) -> Option<u32>,
) -> Meta {
    Meta {
        uid: local_id(meta.uid, book.user(meta.uid), numeric, user),
        gid: local_id(meta.gid, book.group(meta.gid), numeric, group),
        ..meta
    }
}

/// The notice for `n` restored entries that keep the restorer's owner
/// (said once, at the end of a restore), or `None` for none.
pub fn kept_notice(n: u64) -> Option<String> {
    let entries = if n == 1 {
        "entry keeps"
    } else {
        "entries keep"
    };
    (n > 0).then(|| {
        format!(
            "{n} restored {entries} your ownership, without set-user-ID and set-group-ID bits: only root can give files to other users"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Time;

    fn local(name: &[u8]) -> Option<u32> {
        match name {
            b"ann" => Some(2001),
            b"staff" => Some(50),
            _ => None,
        }
    }

    /// Issue 10: a name that exists here wins over the number; a name
    /// unknown here, or none, leaves the number.
    #[test]
    fn ids_map_by_name_where_the_name_exists_here() {
        assert_eq!(local_id(1000, Some(b"ann"), false, local), 2001);
        assert_eq!(local_id(1000, Some(b"bob"), false, local), 1000);
        assert_eq!(local_id(1000, None, false, local), 1000);
        let never = |_: &[u8]| -> Option<u32> { panic!("--numeric-ids looks nothing up") };
        assert_eq!(local_id(1000, Some(b"ann"), true, never), 1000);
        assert_eq!(local_id(UNKNOWN_ID, Some(b"ann"), false, never), UNKNOWN_ID);
    }

    #[test]
    fn a_meta_maps_through_the_names_heard() {
        let mut book = Book::new();
        book.learn(vec![(1000, b"ann".to_vec())], vec![(20, b"staff".to_vec())]);
        let m = Meta {
            mode: 0o4755,
            mtime: Time { secs: 3, nanos: 4 },
            uid: 1000,
            gid: 20,
        };
        let got = local_meta(m, &book, false, local, local);
        assert_eq!(
            (got.uid, got.gid, got.mode, got.mtime),
            (2001, 50, m.mode, m.mtime)
        );
        assert_eq!(local_meta(m, &book, true, local, local), m);
        // An id the sender did not name is not looked up.
        let other = Meta {
            uid: 7,
            gid: 8,
            ..m
        };
        let never = |_: &[u8]| -> Option<u32> { panic!("no name was sent") };
        assert_eq!(local_meta(other, &book, false, never, never), other);
    }

    #[test]
    fn the_notice_counts_once() {
        assert_eq!(kept_notice(0), None);
        assert!(kept_notice(1)
            .unwrap()
            .starts_with("1 restored entry keeps your ownership"));
        assert!(kept_notice(3)
            .unwrap()
            .starts_with("3 restored entries keep your ownership"));
    }
}
