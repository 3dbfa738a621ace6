//! This machine's users and groups, as the client asks about them: the
//! names of the ids a backup sends (for its `Names` frames), the ids of the
//! names a restore received (for [`crate::client::owners::local_id`]).
//! Each id or name is looked up once per run (`getpwuid_r`, `getgrgid_r`,
//! `getpwnam_r`, `getgrnam_r` through nix) and the answer kept, found or
//! not. A name that is not valid UTF-8 is neither sent nor looked up (the
//! id is used).

use std::cell::RefCell;
use std::collections::HashMap;

use nix::unistd::{Gid, Group, Uid, User};

/// The cache (see the module docs); asked through `&self`, so that a
/// user and a group lookup can be handed out together.
#[derive(Debug, Default)]
pub struct Accounts {
    user_names: RefCell<HashMap<u32, Option<Vec<u8>>>>,
    group_names: RefCell<HashMap<u32, Option<Vec<u8>>>>,
    uids: RefCell<HashMap<Vec<u8>, Option<u32>>>,
    gids: RefCell<HashMap<Vec<u8>, Option<u32>>>,
}

/// A name nix read lossily (`U+FFFD` in it) is not the real one.
fn exact(name: String) -> Option<Vec<u8>> {
    (!name.contains('\u{fffd}')).then(|| name.into_bytes())
}

impl Accounts {
    /// An empty cache.
    pub fn new() -> Accounts {
        Accounts::default()
    }

    /// The name of user `uid` here.
    pub fn user_name(&self, uid: u32) -> Option<Vec<u8>> {
        self.user_names
            .borrow_mut()
            .entry(uid)
            .or_insert_with(|| {
                User::from_uid(Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .and_then(|u| exact(u.name))
            })
            .clone()
    }

    /// The name of group `gid` here.
    pub fn group_name(&self, gid: u32) -> Option<Vec<u8>> {
        self.group_names
            .borrow_mut()
            .entry(gid)
            .or_insert_with(|| {
                Group::from_gid(Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .and_then(|g| exact(g.name))
            })
            .clone()
    }

    /// The uid of the user called `name` here.
    pub fn uid_of(&self, name: &[u8]) -> Option<u32> {
        if let Some(found) = self.uids.borrow().get(name) {
            return *found;
        }
        let found = std::str::from_utf8(name)
            .ok()
            .and_then(|n| User::from_name(n).ok().flatten())
            .map(|u| u.uid.as_raw());
        self.uids.borrow_mut().insert(name.to_vec(), found);
        found
    }

    /// The gid of the group called `name` here.
    pub fn gid_of(&self, name: &[u8]) -> Option<u32> {
        if let Some(found) = self.gids.borrow().get(name) {
            return *found;
        }
        let found = std::str::from_utf8(name)
            .ok()
            .and_then(|n| Group::from_name(n).ok().flatten())
            .map(|g| g.gid.as_raw());
        self.gids.borrow_mut().insert(name.to_vec(), found);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_both_ways_and_answers_are_kept() {
        let a = Accounts::new();
        assert_eq!(a.user_name(0).as_deref(), Some(&b"root"[..]));
        assert_eq!(a.uid_of(b"root"), Some(0));
        assert_eq!(a.gid_of(b"root"), Some(0));
        assert_eq!(a.group_name(0).as_deref(), Some(&b"root"[..]));
        assert_eq!(a.uid_of(b"no-such-user-rsb"), None);
        assert_eq!(a.uid_of(b"\xff"), None);
        assert_eq!(a.uids.borrow().len(), 3);
        assert_eq!(a.user_name(u32::MAX - 7), None);
    }
}
