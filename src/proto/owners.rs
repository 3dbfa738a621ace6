//! Owner names on one connection: which ids a sender has named already
//! ([`Announced`]), and the names a receiver has heard ([`Book`]). Entries
//! carry numeric ids in their [`Meta`]; a `Names` frame, sent before the
//! first entry that uses an id not named yet, says what the sender calls
//! them, so that a restore can map by name (as rsync does) and a store can
//! record the names beside the numbers.
//!
//! Both sides are bounded: a sender names at most [`MAX_NAMES`] ids of
//! each kind per connection (later ones go out as numbers only), and a
//! receiver keeps at most [`MAX_NAMES`] of each (a name for one more id is
//! ignored; a new name for an id it knows replaces the old one).
//!
//! Pure: ids and names in, frames and answers out. Looking names up on the
//! system is the shell's job (the lookups are closures here).

use std::collections::{HashMap, HashSet};

use super::{Frame, Meta};

/// The id of an owner the sender does not know (`(uid_t)-1`, which no
/// account can have: `chown` reads it as "leave unchanged").
pub const UNKNOWN_ID: u32 = u32::MAX;

/// Longest user or group name on the wire.
pub const MAX_OWNER_NAME: usize = 255;

/// Most user ids, and most group ids, named on one connection.
pub const MAX_NAMES: usize = 65_536;

/// Whether `name` may cross the wire: 1 to [`MAX_OWNER_NAME`] bytes, no
/// NUL (user names need not be UTF-8).
pub fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= MAX_OWNER_NAME && !name.contains(&0)
}

/// The sender's side: which ids were looked at already on this
/// connection (named or found to have no name).
///
/// Boxed and made on first use: an idle connection pays one pointer.
#[derive(Debug, Default)]
pub struct Announced {
    seen: Option<Box<[HashSet<u32>; 2]>>,
}

impl Announced {
    /// A fresh connection's: nothing named.
    pub fn new() -> Announced {
        Announced::default()
    }

    /// The `Names` frame to send before an entry with `meta`, if it uses an
    /// id not looked at yet and the sender has a name for it: `user` and
    /// `group` look a name up (`None`: none), each at most once per id.
    /// [`UNKNOWN_ID`] is never named; past [`MAX_NAMES`] ids nothing more
    /// is.
    #[must_use]
    pub fn names_for(
        &mut self,
        meta: &Meta,
        user: impl FnOnce(u32) -> Option<Vec<u8>>,
        group: impl FnOnce(u32) -> Option<Vec<u8>>,
    ) -> Option<Frame> {
        let [users_seen, groups_seen] = &mut **self.seen.get_or_insert_with(Default::default);
        let users = first_look(users_seen, meta.uid, user);
        let groups = first_look(groups_seen, meta.gid, group);
        (!users.is_empty() || !groups.is_empty()).then_some(Frame::Names { users, groups })
    }
}

/// `[(id, name)]` when `id` is new to `seen` and `look` names it validly.
fn first_look(
    seen: &mut HashSet<u32>,
    id: u32,
    look: impl FnOnce(u32) -> Option<Vec<u8>>,
) -> Vec<(u32, Vec<u8>)> {
    if id == UNKNOWN_ID || seen.len() >= MAX_NAMES || !seen.insert(id) {
        return Vec::new();
    }
    look(id)
        .filter(|n| is_valid_name(n))
        .map(|n| vec![(id, n)])
        .unwrap_or_default()
}

/// The receiver's side: the names heard on this connection (boxed and
/// made on first use, as [`Announced`]).
#[derive(Debug, Default, Clone)]
pub struct Book {
    heard: Option<Box<Heard>>,
}

/// Names by user id, then by group id.
type Heard = [HashMap<u32, Vec<u8>>; 2];

impl Book {
    /// An empty book.
    pub fn new() -> Book {
        Book::default()
    }

    /// Takes in the pairs of a `Names` frame (bounded, see the module
    /// docs; invalid names, which the codec refuses anyway, are skipped).
    pub fn learn(&mut self, users: Vec<(u32, Vec<u8>)>, groups: Vec<(u32, Vec<u8>)>) {
        if users.is_empty() && groups.is_empty() {
            return;
        }
        let [u, g] = &mut **self.heard.get_or_insert_with(Default::default);
        learn(u, users);
        learn(g, groups);
    }

    /// The name heard for user `uid`.
    pub fn user(&self, uid: u32) -> Option<&[u8]> {
        self.heard.as_ref()?[0].get(&uid).map(Vec::as_slice)
    }

    /// The name heard for group `gid`.
    pub fn group(&self, gid: u32) -> Option<&[u8]> {
        self.heard.as_ref()?[1].get(&gid).map(Vec::as_slice)
    }

    /// Every name heard: users, then groups, each sorted by id.
    pub fn entries(&self) -> [Vec<(u32, &[u8])>; 2] {
        fn sorted(m: &HashMap<u32, Vec<u8>>) -> Vec<(u32, &[u8])> {
            let mut v: Vec<(u32, &[u8])> = m.iter().map(|(&id, n)| (id, n.as_slice())).collect();
            v.sort_unstable_by_key(|&(id, _)| id);
            v
        }
        match &self.heard {
            Some(h) => [sorted(&h[0]), sorted(&h[1])],
            None => [Vec::new(), Vec::new()],
        }
    }

    /// Takes in every name `other` heard (its names win, within the
    /// bounds); true when that added or changed one.
    pub fn absorb(&mut self, other: &Book) -> bool {
        let [users, groups] = other.entries();
        let new = |pairs: &[(u32, &[u8])], mine: fn(&Book, u32) -> Option<&[u8]>| {
            pairs
                .iter()
                .filter(|&&(id, n)| mine(self, id) != Some(n))
                .map(|&(id, n)| (id, n.to_vec()))
                .collect::<Vec<_>>()
        };
        let (u, g) = (new(&users, Book::user), new(&groups, Book::group));
        let (tu, tg): (Vec<_>, Vec<_>) = (u.clone(), g.clone());
        self.learn(u, g);
        // Past the bounds a new id is not taken.
        tu.iter()
            .any(|(id, n)| self.user(*id) == Some(n.as_slice()))
            || tg
                .iter()
                .any(|(id, n)| self.group(*id) == Some(n.as_slice()))
    }
}

fn learn(map: &mut HashMap<u32, Vec<u8>>, pairs: Vec<(u32, Vec<u8>)>) {
    for (id, name) in pairs {
        if id == UNKNOWN_ID || !is_valid_name(&name) {
            continue;
        }
        if map.len() < MAX_NAMES || map.contains_key(&id) {
            map.insert(id, name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Time;

    fn meta(uid: u32, gid: u32) -> Meta {
        Meta {
            mode: 0o644,
            mtime: Time::default(),
            uid,
            gid,
        }
    }

    fn name(id: u32) -> Option<Vec<u8>> {
        Some(format!("n{id}").into_bytes())
    }

    #[test]
    fn each_id_is_named_once_and_looked_up_once() {
        let mut a = Announced::new();
        assert_eq!(
            a.names_for(&meta(1000, 100), name, name),
            Some(Frame::Names {
                users: vec![(1000, b"n1000".to_vec())],
                groups: vec![(100, b"n100".to_vec())],
            })
        );
        let never = |_| -> Option<Vec<u8>> { panic!("looked up twice") };
        assert_eq!(a.names_for(&meta(1000, 100), never, never), None);
        // A new group, a known user: only the group is named.
        assert_eq!(
            a.names_for(&meta(1000, 5), never, name),
            Some(Frame::Names {
                users: vec![],
                groups: vec![(5, b"n5".to_vec())],
            })
        );
        // An id without a name is not listed, and not asked about again.
        assert_eq!(a.names_for(&meta(7, 5), |_| None, never), None);
        assert_eq!(a.names_for(&meta(7, 5), never, never), None);
        // The unknown id is never looked up; a name that cannot cross the
        // wire is not sent.
        assert_eq!(
            a.names_for(&meta(UNKNOWN_ID, UNKNOWN_ID), never, never),
            None
        );
        let bad = |_| Some(vec![b'x'; 256]);
        assert_eq!(a.names_for(&meta(8, 9), bad, |_| Some(vec![])), None);
    }

    #[test]
    fn a_sender_names_at_most_max_names_ids() {
        let mut a = Announced::new();
        for id in 0..MAX_NAMES as u32 {
            assert!(a.names_for(&meta(id, 0), name, |_| None).is_some());
        }
        let never = |_| -> Option<Vec<u8>> { panic!("past the bound") };
        assert_eq!(a.names_for(&meta(MAX_NAMES as u32, 0), never, never), None);
    }

    #[test]
    fn a_book_keeps_the_latest_name_and_at_most_max_names() {
        let mut b = Book::new();
        b.learn(
            vec![(0, b"root".to_vec()), (UNKNOWN_ID, b"x".to_vec())],
            vec![(0, b"wheel".to_vec()), (1, vec![])],
        );
        assert_eq!(b.user(0), Some(&b"root"[..]));
        assert_eq!(b.user(UNKNOWN_ID), None);
        assert_eq!(b.group(0), Some(&b"wheel"[..]));
        assert_eq!(b.group(1), None);
        b.learn(vec![(0, b"toor".to_vec())], vec![]);
        assert_eq!(b.user(0), Some(&b"toor"[..]));
        b.learn(
            (1..MAX_NAMES as u32 + 10)
                .map(|i| (i, b"u".to_vec()))
                .collect(),
            vec![],
        );
        assert_eq!(b.user(MAX_NAMES as u32 - 1), Some(&b"u"[..]));
        assert_eq!(b.user(MAX_NAMES as u32), None, "past the bound: ignored");
        // A known id still gets its new name.
        b.learn(vec![(0, b"root".to_vec())], vec![]);
        assert_eq!(b.user(0), Some(&b"root"[..]));
    }
}
