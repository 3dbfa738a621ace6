//! The rules of `past.rs` against a simulated history: a random sequence of
//! writes, directory creations, type changes and deletions, each committed
//! as the store commits (the replaced entry moved whole into a batch at its
//! own path, holders above it), and the tree resolved at every time checked
//! against a snapshot taken then.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn wp(s: &str) -> WirePath {
    WirePath::new(s.as_bytes().to_vec()).unwrap()
}

fn at(secs: i64, nanos: u32) -> Time {
    Time { secs, nanos }
}

/// One stored entry: the version it is and when it was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    id: u32,
    dir: bool,
    born: Time,
}

/// What was current after an event: path -> (version id, is a dir).
type Snapshot = BTreeMap<WirePath, (u32, bool)>;

/// Paths to entries, the root left out.
type Tree = BTreeMap<WirePath, Node>;

#[derive(Default)]
struct Sim {
    current: Tree,
    indexes: Vec<BatchIndex>,
    kept: Vec<Tree>,
    next_id: u32,
    /// After event t: what was current (path -> (id, dir)).
    snapshots: Vec<(i64, Snapshot)>,
    /// Every version id each path ever had, oldest first.
    history: BTreeMap<WirePath, Vec<u32>>,
}

impl Holdings for Sim {
    fn batches(&self) -> &[BatchIndex] {
        &self.indexes
    }
    fn stored_at(&self, loc: Loc, path: &WirePath) -> Option<Time> {
        if path.is_root() {
            return Some(at(0, 0));
        }
        self.tree(loc).get(path).map(|n| n.born)
    }
    fn names(&self, loc: Loc, dir: &WirePath) -> Vec<Vec<u8>> {
        let tree = self.tree(loc);
        if !dir.is_root() && !tree.get(dir).is_some_and(|n| n.dir) {
            return Vec::new();
        }
        tree.keys()
            .filter(|p| p.parent().as_ref() == Some(dir) || (dir.is_root() && p.parent().is_none()))
            .filter_map(|p| p.file_name().map(<[u8]>::to_vec))
            .collect()
    }
}

const PATHS: &[&str] = &["a", "d", "d/x", "d/e", "d/e/z", "f"];

impl Sim {
    fn tree(&self, loc: Loc) -> &Tree {
        match loc {
            Loc::Current => &self.current,
            Loc::Batch(i) => &self.kept[i],
        }
    }

    /// Moves `p` and everything beneath it into a new batch at time t.5.
    fn keep(&mut self, p: &WirePath, t: i64) {
        let moved: Vec<WirePath> = self
            .current
            .keys()
            .filter(|k| is_within(k, p))
            .cloned()
            .collect();
        let mut tree = Tree::new();
        for k in moved {
            let n = self.current.remove(&k).unwrap();
            tree.insert(k, n);
        }
        let mut up = p.parent();
        while let Some(h) = up {
            if h.is_root() {
                break;
            }
            tree.insert(
                h.clone(),
                Node {
                    id: u32::MAX,
                    dir: true,
                    born: at(t, 500),
                },
            );
            up = h.parent();
        }
        let index = BatchIndex {
            time: at(t, 500),
            kept: vec![p.clone()],
        };
        self.indexes.push(index);
        self.kept.push(tree);
    }

    fn create(&mut self, p: &WirePath, dir: bool, t: i64) {
        let id = self.next_id;
        self.next_id += 1;
        self.current.insert(
            p.clone(),
            Node {
                id,
                dir,
                born: at(t, 250),
            },
        );
        self.history.entry(p.clone()).or_default().push(id);
    }

    /// Event `t`: 0 write a file, 1 make a directory, 2 delete.
    fn apply(&mut self, op: u8, p: &WirePath, t: i64) {
        // Ancestors must be directories: a file in the way is replaced.
        let mut chain = Vec::new();
        let mut up = p.parent();
        while let Some(a) = up {
            if a.is_root() {
                break;
            }
            up = a.parent();
            chain.push(a);
        }
        if op != 2 {
            for a in chain.into_iter().rev() {
                match self.current.get(&a) {
                    Some(n) if n.dir => {}
                    Some(_) => return, // one change per commit: skip
                    None => self.create(&a, true, t),
                }
            }
        }
        let here = self.current.get(p).copied();
        match (op, here) {
            (2, Some(_)) => self.keep(p, t),
            (2, None) => {}
            (1, Some(n)) if n.dir => {}
            (_, Some(_)) => {
                self.keep(p, t);
                self.create(p, op == 1, t);
            }
            (_, None) => self.create(p, op == 1, t),
        }
        let snap = self
            .current
            .iter()
            .map(|(k, n)| (k.clone(), (n.id, n.dir)))
            .collect();
        self.snapshots.push((t, snap));
    }

    /// The tree at `t` as the rules resolve it.
    fn resolve(&self, t: Time) -> BTreeMap<WirePath, (u32, bool)> {
        let mut out = BTreeMap::new();
        let mut stack = vec![WirePath::root()];
        while let Some(d) = stack.pop() {
            for (name, loc) in children_at(self, t, &d) {
                let p = d.join(&name).unwrap();
                let n = self.tree(loc)[&p];
                assert_ne!(n.id, u32::MAX, "a holder shown as a version: {p}");
                out.insert(p.clone(), (n.id, n.dir));
                if n.dir {
                    stack.push(p);
                }
            }
        }
        out
    }
}

fn simulate(ops: &[(u8, usize)]) -> Sim {
    let mut sim = Sim {
        next_id: 1,
        ..Sim::default()
    };
    for (i, &(op, p)) in ops.iter().enumerate() {
        sim.apply(op % 3, &wp(PATHS[p % PATHS.len()]), i as i64 + 1);
    }
    sim
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_tree_at_each_time_is_the_snapshot_of_then(
        ops in proptest::collection::vec((0u8..3, 0usize..6), 0..24)
    ) {
        let sim = simulate(&ops);
        let empty = BTreeMap::new();
        prop_assert_eq!(sim.resolve(at(0, 999)), empty.clone());
        prop_assert_eq!(sim.resolve(at(1, 0)), empty);
        for (t, snap) in &sim.snapshots {
            prop_assert_eq!(&sim.resolve(at(*t, 999)), snap, "after event {}", t);
            prop_assert_eq!(&sim.resolve(at(*t + 1, 0)), snap, "before event {}", t + 1);
        }
    }

    #[test]
    fn every_version_is_listed_once_newest_first(
        ops in proptest::collection::vec((0u8..3, 0usize..6), 0..24)
    ) {
        let sim = simulate(&ops);
        for p in PATHS.iter().map(|p| wp(p)) {
            let ids: Vec<u32> = versions_of(&sim, &p)
                .into_iter()
                .map(|loc| sim.tree(loc)[&p].id)
                .collect();
            let mut want = sim.history.get(&p).cloned().unwrap_or_default();
            want.reverse();
            prop_assert_eq!(ids, want, "{}", p);
            let gone = gone_beneath(&sim, &p, usize::MAX);
            let want: Vec<WirePath> = sim
                .history
                .keys()
                .filter(|g| is_within(g, &p) && **g != p && !sim.current.contains_key(*g))
                .cloned()
                .collect();
            prop_assert_eq!(gone, want, "{}", p);
        }
    }
}

#[test]
fn within_covers_and_touches() {
    assert!(is_within(&wp("a/b"), &wp("a")));
    assert!(is_within(&wp("a"), &wp("a")));
    assert!(is_within(&wp("a"), &WirePath::root()));
    assert!(!is_within(&wp("ab"), &wp("a")));
    assert!(!is_within(&wp("a"), &wp("a/b")));
    let b = BatchIndex {
        time: at(5, 0),
        kept: vec![wp("d/e")],
    };
    assert!(covers(&b, &wp("d/e/z")));
    assert!(!covers(&b, &wp("d")));
    assert!(touches(&b, &wp("d")));
    assert!(touches(&b, &wp("d/e/z")));
    assert!(!touches(&b, &wp("a")));
}

#[test]
fn a_modify_delete_recreate_sequence_resolves_at_each_step() {
    // write a (1), modify (2), delete (3), write again (4).
    let sim = simulate(&[(0, 0), (0, 0), (2, 0), (0, 0)]);
    let a = wp("a");
    let id_at = |t| version_at(&sim, at(t, 999), &a).map(|l| sim.tree(l)[&a].id);
    assert_eq!(version_at(&sim, at(0, 0), &a), None);
    assert_eq!(id_at(1), Some(1));
    assert_eq!(id_at(2), Some(2));
    assert_eq!(id_at(3), None);
    assert_eq!(id_at(4), Some(3));
    assert_eq!(versions_of(&sim, &a).len(), 3);
    assert_eq!(
        gone_beneath(&sim, &WirePath::root(), usize::MAX),
        Vec::<WirePath>::new()
    );
}
