//! Deletions, decided: which names of a directory the client still has.
//! Every name a manifest carries is noted under its directory
//! ([`Listed`]); a `Closed` frame for a directory read whole hands that
//! set to the shell ([`Command::Delete`]), which at the commit moves every
//! entry the store holds there and the set lacks into history. A directory
//! not read whole (a listing cut short, an entry that could not be read)
//! only drops its set: nothing beneath it is deleted. A whole `Closed`
//! also names what the client has there and left out (its exclude
//! patterns): those names join the set, so what the server holds under
//! them stays.
//!
//! Memory is bounded per connection: the names held (and the paths of
//! their directories), in sets still open and in sets handed to the batch
//! not yet committed, cost at most [`MAX_LISTED_BYTES`]. Past that every
//! set is dropped and, for the rest of the connection, every whole
//! `Closed` is answered with a failure naming the directory: deletions
//! wait for a later run, nothing is deleted by mistake (a name left out
//! may belong to a directory whose own set does not exist yet, since a
//! directory's name comes after everything in it). Names a `Closed` keeps
//! that would pass the bound fail that directory's deletions alone: they
//! belong to no other. A set is one buffer of
//! names, each ended by a NUL (a byte no name holds): noting a name in the
//! loop costs no allocation of its own and no hashing of it; the worker
//! sorts the set when it commits.
//!
//! Must not touch the store: the listing of the stored directory and the
//! moves happen in the shell, at the commit.

use std::collections::HashMap;

use super::{Command, ServerSession};
use crate::proto::{ManifestEntry, WirePath};
use crate::server::command::Names;

/// Bytes the names held may cost, at most, per connection (a name costs
/// its length and [`NAME_COST`]): room for about a million names of 30
/// bytes in the directories of one backup still open or not yet committed.
pub const MAX_LISTED_BYTES: usize = 32 << 20;

/// The bookkeeping of one held name (its NUL).
pub const NAME_COST: usize = 1;

/// The bookkeeping of one directory's set besides its names and its path
/// (its slot in the map, its buffer's header, spare capacity).
pub const SET_COST: usize = 96;

/// What [`Listed::take`] gives for a `Closed`.
#[derive(Debug)]
enum Taken {
    /// The names the client has in the directory: delete the rest.
    Set(Names),
    /// Not read whole: nothing to delete.
    NotWhole,
    /// Names were lost on this connection: no deletion is safe.
    Lost,
    /// The names it keeps would pass [`MAX_LISTED_BYTES`].
    TooMany,
}

/// The names a client's manifests carried, by directory.
#[derive(Debug, Default)]
pub(super) struct Listed {
    sets: HashMap<Vec<u8>, Names>,
    /// Cost of the names in `sets`.
    open: usize,
    /// Cost of the sets handed to the batch since the last commit.
    handed: usize,
    /// Names were left out: from then on this connection deletes nothing
    /// (a lost name may belong to a directory whose set is not even made
    /// yet: a directory's own name comes after everything in it).
    lost: bool,
}

impl Listed {
    /// Notes the name of every entry of a manifest under its directory.
    fn note(&mut self, entries: &[ManifestEntry]) {
        for e in entries {
            let path = e.path.as_bytes();
            let Some(name) = e.path.file_name() else {
                continue;
            };
            let dir = path
                .get(..path.len().saturating_sub(name.len() + 1))
                .unwrap_or_default();
            if self.lost {
                return;
            }
            let new_set = !self.sets.contains_key(dir);
            let cost = name.len() + NAME_COST + if new_set { dir.len() + SET_COST } else { 0 };
            if self.open + self.handed + cost > MAX_LISTED_BYTES {
                // Nothing held any more helps: every set is dropped.
                self.lost = true;
                self.sets = HashMap::new();
                self.open = 0;
                return;
            }
            match self.sets.get_mut(dir) {
                Some(set) => set.push(name),
                None => {
                    let mut set = Names::default();
                    set.push(name);
                    self.sets.insert(dir.to_vec(), set);
                }
            }
            self.open += cost;
        }
    }

    /// Takes the set of `dir` (empty when no manifest named anything in
    /// it) with the names the client's `Closed` keeps added;
    /// [`Taken::Lost`] when names were lost on this connection,
    /// [`Taken::TooMany`] when the kept names would pass the bound (this
    /// directory alone deletes nothing: they belong to no other).
    fn take(&mut self, dir: &WirePath, whole: bool, keep: &[Vec<u8>]) -> Taken {
        let set = self.sets.remove(dir.as_bytes());
        let mut cost = set
            .as_ref()
            .map_or(0, |s| s.cost() + dir.as_bytes().len() + SET_COST);
        self.open = self.open.saturating_sub(cost);
        if !whole {
            return Taken::NotWhole;
        }
        if self.lost {
            return Taken::Lost;
        }
        let mut set = set.unwrap_or_default();
        if set.is_empty() && !keep.is_empty() {
            cost = dir.as_bytes().len() + SET_COST;
        }
        for name in keep {
            cost = cost.saturating_add(name.len() + NAME_COST);
            if self.open + self.handed + cost > MAX_LISTED_BYTES {
                return Taken::TooMany;
            }
            // The decoder let through only names of a path (no NUL, no
            // `/`, never empty), which the set's form relies on.
            if crate::proto::codec::is_name(name) {
                set.push(name);
            }
        }
        self.handed += cost;
        Taken::Set(set)
    }

    /// The batch was committed: the sets it held are gone.
    fn committed(&mut self) {
        self.handed = 0;
    }
}

impl ServerSession {
    /// `Manifest`: its names are noted for the deletions.
    pub(super) fn note_listed(&mut self, entries: &[ManifestEntry]) {
        self.listed.note(entries);
    }

    /// A `Commit` went to the shell: the sets of its deletions are its.
    pub(super) fn listed_committed(&mut self) {
        self.listed.committed();
    }

    /// `Closed`: a directory read whole gives its names, and those the
    /// client keeps there, to the batch.
    pub(super) fn handle_closed(&mut self, id: u32, path: WirePath, whole: bool, keep: &[Vec<u8>]) {
        if !(self.check_id(id) && self.count_entry(&path)) {
            return;
        }
        let taken = self.listed.take(&path, whole, keep);
        if !whole || self.refuse_write(id, &path) {
            return;
        }
        let why = match taken {
            Taken::Set(keep) => return self.commands.push_back(Command::Delete { id, path, keep }),
            Taken::NotWhole => return,
            Taken::Lost => "this connection held",
            Taken::TooMany => "the names kept there would make this connection hold",
        };
        self.push_failed(
            id,
            path,
            format!(
                "deletions not applied: {why} more than {} MiB of names at once (a later run applies them)",
                MAX_LISTED_BYTES >> 20
            ),
        );
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::proto::{EntryKind, Frame, Meta};
    use crate::server::session::SessionConfig;
    use crate::testing::frames::{bytes, wp};
    use crate::testing::server::{drain_commands, sent_frames, welcomed};

    fn entry(path: &str) -> ManifestEntry {
        ManifestEntry {
            kind: EntryKind::File,
            path: wp(path),
            meta: Meta::default(),
            size: 0,
            target: Vec::new(),
            rdev: 0,
            xattrs: 0,
        }
    }

    fn is_set(t: &Taken) -> bool {
        matches!(t, Taken::Set(_))
    }

    fn names(set: &Names) -> Vec<String> {
        set.sorted()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    #[test]
    fn names_are_kept_whole_and_sorted() {
        let mut n = Names::default();
        assert!(n.is_empty() && n.iter().next().is_none());
        for name in [&b"b"[..], b"a\xff", b"ab", b"b"] {
            n.push(name);
        }
        assert_eq!(n.iter().count(), 4);
        assert_eq!(n.sorted(), [&b"ab"[..], b"a\xff", b"b", b"b"]);
        assert_eq!(n.cost(), 10);
        assert!(n.sorted().binary_search(&&b"ab"[..]).is_ok());
        assert!(n.sorted().binary_search(&&b"a"[..]).is_err());
    }

    #[test]
    fn a_whole_directory_hands_the_names_of_every_manifest_to_the_batch() {
        let now = crate::testing::clock::Clock::new().now();
        let mut s = welcomed(SessionConfig::default(), now);
        let frames = [
            Frame::Manifest {
                id: 1,
                entries: vec![entry("d/a"), entry("d/sub/x"), entry("e/z")],
            },
            Frame::Manifest {
                id: 2,
                entries: vec![entry("d/b"), entry("d/sub")],
            },
            Frame::Closed {
                id: 3,
                path: wp("d"),
                whole: true,
                keep: Vec::new(),
            },
        ];
        s.handle_input(now, &bytes(&frames));
        let cmds = drain_commands(&mut s);
        let Some(Command::Delete { id, path, keep }) = cmds.last() else {
            panic!("no delete: {cmds:?}");
        };
        assert_eq!((*id, path), (3, &wp("d")));
        assert_eq!(names(keep), ["a", "b", "sub"]);
        assert!(sent_frames(&mut s).is_empty());
    }

    #[test]
    fn a_directory_not_read_whole_deletes_nothing_and_drops_its_names() {
        let now = crate::testing::clock::Clock::new().now();
        let mut s = welcomed(SessionConfig::default(), now);
        let frames = [
            Frame::Manifest {
                id: 1,
                entries: vec![entry("d/a")],
            },
            Frame::Closed {
                id: 2,
                path: wp("d"),
                whole: false,
                keep: Vec::new(),
            },
        ];
        s.handle_input(now, &bytes(&frames));
        assert!(!drain_commands(&mut s)
            .iter()
            .any(|c| matches!(c, Command::Delete { .. })));
        assert!(s.listed.sets.is_empty());
        assert_eq!(s.listed.open, 0);
        assert!(sent_frames(&mut s).is_empty());
    }

    #[test]
    fn an_empty_directory_read_whole_keeps_nothing() {
        let now = crate::testing::clock::Clock::new().now();
        let mut s = welcomed(SessionConfig::default(), now);
        let frames = [Frame::Closed {
            id: 1,
            path: wp("empty"),
            whole: true,
            keep: Vec::new(),
        }];
        s.handle_input(now, &bytes(&frames));
        let cmds = drain_commands(&mut s);
        assert!(matches!(&cmds[..], [Command::Delete { keep, .. }] if keep.is_empty()));
    }

    #[test]
    fn names_past_the_bound_fail_every_deletion_of_the_connection() {
        let mut l = Listed::default();
        let long = "n".repeat(200);
        let per = 200 + NAME_COST;
        let fit = MAX_LISTED_BYTES / per;
        // The walk root's first child is huge: its own name (noted under
        // the root only after it) is among the names lost.
        let mut entries: Vec<ManifestEntry> = (0..fit + 10)
            .map(|i| entry(&format!("r/big/{i}{long}")))
            .collect();
        entries.push(entry("r/big"));
        l.note(&entries);
        assert!(l.lost);
        assert!(
            l.sets.is_empty() && l.open == 0,
            "everything held is dropped"
        );
        assert!(!is_set(&l.take(&wp("r/big"), true, &[])));
        // Room again, but r's set would lack `big`: still nothing deleted.
        l.note(&[entry("r/z/a"), entry("r/z"), entry("r/y")]);
        assert!(!is_set(&l.take(&wp("r/z"), true, &[])));
        assert!(!is_set(&l.take(&wp("r"), true, &[])));
        l.committed();
        assert!(!is_set(&l.take(&wp("r"), true, &[])));
    }

    #[test]
    fn directory_paths_count_toward_the_bound() {
        let mut l = Listed::default();
        let dir = vec!["d".repeat(249); 16].join("/");
        // Distinct directories of one short name each: their paths cost.
        let n = MAX_LISTED_BYTES / (dir.len() + SET_COST) + 10;
        let entries: Vec<ManifestEntry> = (0..n).map(|i| entry(&format!("{dir}{i}/x"))).collect();
        l.note(&entries);
        assert!(l.lost);
        assert!(l.open <= MAX_LISTED_BYTES);
    }

    #[test]
    fn handed_sets_count_until_the_commit() {
        let mut l = Listed::default();
        assert_eq!(NAME_COST, 1);
        let long = "n".repeat(200);
        let per = 200 + NAME_COST;
        let half = MAX_LISTED_BYTES / per / 2 + 1;
        for round in 0..2 {
            let entries: Vec<ManifestEntry> = (0..half)
                .map(|i| entry(&format!("d{round}/{i}{long}")))
                .collect();
            l.note(&entries);
            let taken = l.take(
                &WirePath::new(format!("d{round}").into_bytes()).unwrap(),
                true,
                &[],
            );
            assert_eq!(is_set(&taken), round == 0, "round {round}");
        }
        // Round 1 overflowed only through what round 0 handed over; the
        // connection deletes nothing more, committed or not.
        l.committed();
        l.note(&[entry("d2/a")]);
        assert!(!is_set(&l.take(&wp("d2"), true, &[])));
    }

    #[test]
    fn a_commit_frees_what_its_batch_held() {
        let mut l = Listed::default();
        let long = "n".repeat(200);
        let half = MAX_LISTED_BYTES / (200 + NAME_COST) / 2 + 1;
        for round in 0..3 {
            let entries: Vec<ManifestEntry> = (0..half)
                .map(|i| entry(&format!("d{round}/{i}{long}")))
                .collect();
            l.note(&entries);
            let dir = WirePath::new(format!("d{round}").into_bytes()).unwrap();
            assert!(is_set(&l.take(&dir, true, &[])), "round {round}");
            l.committed();
        }
        assert!(!l.lost);
    }

    #[test]
    fn a_closed_on_a_read_only_server_is_refused() {
        let now = crate::testing::clock::Clock::new().now();
        let config = SessionConfig {
            read_only: true,
            ..SessionConfig::default()
        };
        let mut s = ServerSession::new(config, now, [0; 32]);
        s.handle_input(now, &bytes(&[crate::testing::frames::hello("a")]));
        drain_commands(&mut s);
        sent_frames(&mut s);
        s.handle_input(
            now,
            &bytes(&[Frame::Closed {
                id: 1,
                path: wp("d"),
                whole: true,
                keep: Vec::new(),
            }]),
        );
        assert!(drain_commands(&mut s).is_empty());
        assert!(matches!(
            &sent_frames(&mut s)[..],
            [Frame::Failed { id: 1, .. }]
        ));
    }

    #[test]
    fn kept_names_join_the_manifests_names() {
        let now = crate::testing::clock::Clock::new().now();
        let mut s = welcomed(SessionConfig::default(), now);
        let frames = [
            Frame::Manifest {
                id: 1,
                entries: vec![entry("d/a")],
            },
            Frame::Closed {
                id: 2,
                path: wp("d"),
                whole: true,
                keep: vec![b"x.tmp".to_vec(), b"cache".to_vec()],
            },
            // A directory no manifest named anything in, keeping names.
            Frame::Closed {
                id: 3,
                path: wp("e"),
                whole: true,
                keep: vec![b"only".to_vec()],
            },
        ];
        s.handle_input(now, &bytes(&frames));
        let deletes: Vec<Vec<String>> = drain_commands(&mut s)
            .iter()
            .filter_map(|c| match c {
                Command::Delete { keep, .. } => Some(names(keep)),
                _ => None,
            })
            .collect();
        assert_eq!(deletes, [vec!["a", "cache", "x.tmp"], vec!["only"]]);
        assert!(sent_frames(&mut s).is_empty());
        let cost = |names: &[&str], dir: &str| {
            names.iter().map(|n| n.len() + NAME_COST).sum::<usize>() + dir.len() + SET_COST
        };
        assert_eq!(
            s.listed.handed,
            cost(&["a", "x.tmp", "cache"], "d") + cost(&["only"], "e")
        );
        assert_eq!(s.listed.open, 0);
    }

    #[test]
    fn kept_names_past_the_bound_fail_that_directory_alone() {
        let mut l = Listed::default();
        let long = vec![b'k'; 250];
        let many = vec![long; MAX_LISTED_BYTES / 251 + 10];
        l.note(&[entry("d/a"), entry("e/b")]);
        assert!(matches!(l.take(&wp("d"), true, &many), Taken::TooMany));
        assert!(!l.lost);
        assert_eq!(l.handed, 0, "nothing of d's is held");
        assert!(is_set(&l.take(&wp("e"), true, &[b"c".to_vec()])));
        // Through the session: a Failed naming the directory.
        let now = crate::testing::clock::Clock::new().now();
        let mut s = welcomed(SessionConfig::default(), now);
        s.listed.handed = MAX_LISTED_BYTES - 10;
        s.handle_closed(1, wp("d"), true, &[b"0123456789ab".to_vec()]);
        assert!(drain_commands(&mut s).is_empty());
        let sent = sent_frames(&mut s);
        assert!(
            matches!(&sent[..], [Frame::Failed { id: 1, path, message }]
                if *path == wp("d") && message.contains("names kept there")),
            "{sent:?}"
        );
    }
}
