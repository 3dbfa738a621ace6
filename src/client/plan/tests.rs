//! The planner's tests: order, manifests, the need answer, batches, links.

use super::*;
use crate::testing::frames::{meta, wp};

fn entry(kind: EntryKind, p: &str) -> LocalEntry {
    LocalEntry {
        local: PathBuf::from(format!("/{p}")),
        wire: wp(p),
        kind,
        meta: meta(),
        size: if kind == EntryKind::File { 10 } else { 0 },
        target: Vec::new(),
        rdev: 0,
        inode: None,
        xattrs: None,
    }
}

/// A wire path as written in these tests, without the leading `/` of
/// its `Display`.
fn name(p: &WirePath) -> String {
    String::from_utf8_lossy(p.as_bytes()).into_owned()
}

/// A valid path of 3,818 bytes.
fn long_path() -> String {
    vec!["x".repeat(200); 19].join("/")
}

fn dir(p: &str) -> LocalEntry {
    entry(EntryKind::Dir, p)
}

fn file(p: &str) -> LocalEntry {
    entry(EntryKind::File, p)
}

/// Runs walks (pre-order lists) through an [`Order`] as the driver does.
fn ordered(walks: &[Vec<LocalEntry>]) -> (Vec<String>, Vec<String>) {
    let mut order = Order::new();
    let (mut out, mut reserved) = (Vec::new(), Vec::new());
    for w in walks {
        for e in w.iter().cloned() {
            while let Some(d) = order.pop_closed() {
                out.push(name(&d.wire));
            }
            match order.place(e) {
                Placed::Ready(e) => out.push(name(&e.wire)),
                Placed::Held => {}
                Placed::Reserved(e) => reserved.push(name(&e.wire)),
            }
        }
        order.end_walk();
        while let Some(d) = order.pop_closed() {
            out.push(name(&d.wire));
        }
    }
    (out, reserved)
}

#[test]
fn directories_come_after_their_contents() {
    let walk = vec![
        dir("a"),
        file("a/f1"),
        dir("a/sub"),
        file("a/sub/f2"),
        file("a/f3"),
    ];
    let (out, _) = ordered(&[walk, vec![dir("b"), file("b/x")]]);
    // A directory closed by an entry goes right after that entry.
    assert_eq!(out, ["a/f1", "a/sub/f2", "a/f3", "a/sub", "a", "b/x", "b"]);
    for (i, p) in out.iter().enumerate() {
        for later in &out[i + 1..] {
            assert!(
                !contains(&wp(p), &wp(later)),
                "{later} after its directory {p}"
            );
        }
    }
}

#[test]
fn reserved_names_and_their_contents_are_not_placed() {
    let walk = vec![
        dir("a"),
        dir("a/.rsb-tmp.x"),
        file("a/.rsb-tmp.x/f"),
        file("a/g"),
    ];
    let (out, reserved) = ordered(&[walk]);
    assert_eq!(out, ["a/g", "a"]);
    assert_eq!(reserved, ["a/.rsb-tmp.x", "a/.rsb-tmp.x/f"]);
}

#[test]
fn contains_is_strict_and_by_component() {
    assert!(contains(&WirePath::root(), &wp("a")));
    assert!(!contains(&WirePath::root(), &WirePath::root()));
    assert!(contains(&wp("a"), &wp("a/b")));
    assert!(!contains(&wp("a"), &wp("a")));
    assert!(!contains(&wp("a"), &wp("ab")));
    assert!(!contains(&wp("a/b"), &wp("a")));
}

#[test]
fn a_manifest_is_bounded_by_entries_and_bytes() {
    let mut m = Manifest::new();
    assert!(m.is_empty());
    for i in 0..MANIFEST_ENTRIES {
        assert!(!m.is_full());
        m.push(file(&format!("f{i}")));
    }
    assert!(m.is_full());
    let mut m = Manifest::new();
    let long = long_path();
    while !m.is_full() {
        m.push(file(&long));
    }
    assert!(m.frame_entries().len() < MANIFEST_ENTRIES);
    assert_eq!(m.frame_entries()[0].path, wp(&long));
    assert_eq!(m.frame_entries()[0].size, 10);
}

#[test]
fn manifests_in_flight_and_output_are_bounded() {
    let mut p = Plan::new();
    assert!(p.wants_manifest(0, false));
    assert!(!p.wants_manifest(0, true), "not while a body is on its way");
    assert!(!p.wants_manifest(HIGH_WATER, false));
    for id in 0..MANIFESTS_IN_FLIGHT as u32 {
        let mut m = Manifest::new();
        m.push(file("f"));
        p.handle_asked(id, m);
    }
    assert!(!p.wants_manifest(0, false));
    p.handle_need(&[1], &[], &[], Vec::new());
    assert!(p.wants_manifest(0, false));
    p.handle_walked();
    assert!(!p.wants_manifest(0, false));
}

/// A plan with one manifest of these entries asked and answered.
fn answered(entries: Vec<LocalEntry>, bits: &[u8], resume: &[(u32, u64)]) -> (Plan, u64) {
    let mut p = Plan::new();
    let mut m = Manifest::new();
    for e in entries {
        m.push(e);
    }
    p.handle_asked(7, m);
    p.handle_walked();
    let unchanged = p.handle_need(bits, &[], resume, Vec::new());
    (p, unchanged)
}

/// Drains [`Plan::next`], recording each entry as sent.
fn drain(p: &mut Plan) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut id = 100;
    loop {
        match p.next(0) {
            Next::Send {
                entry, resume_at, ..
            } => {
                out.push((name(&entry.wire), resume_at));
                id += 1;
                p.handle_sent(id, entry.wire, entry.kind, entry.size);
            }
            Next::Update { entry } => {
                out.push((format!("UPDATE {}", name(&entry.wire)), 0));
                id += 1;
                p.handle_updated(id, entry);
            }
            Next::Commit => out.push(("COMMIT".into(), 0)),
            Next::Closed { path, whole, keep } => {
                let keep: Vec<String> = keep
                    .iter()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect();
                let keep = if keep.is_empty() {
                    String::new()
                } else {
                    format!(" keep {}", keep.join(","))
                };
                out.push((format!("CLOSED {} {whole}{keep}", name(&path)), 0));
                id += 1;
                p.handle_sent_closed(id, path);
            }
            Next::Wait => return out,
        }
    }
}

fn linked(p: &str, ino: u64) -> LocalEntry {
    LocalEntry {
        inode: Some((1, ino)),
        ..file(p)
    }
}

#[test]
fn later_names_of_an_inode_become_links_to_the_first() {
    let mut o = Order::new();
    let mut placed = Vec::new();
    for e in [
        linked("a/one", 5),
        linked("a/two", 5),
        file("b/other"),
        linked("b/three", 5),
        linked("b/x", 6),
    ] {
        if let Placed::Ready(e) = o.place(e) {
            placed.push((name(&e.wire), e.kind, String::from_utf8(e.target).unwrap()));
        }
    }
    let (f, l) = (EntryKind::File, EntryKind::HardLink);
    assert_eq!(
        placed,
        [
            ("a/one".into(), f, String::new()),
            ("a/two".into(), l, "a/one".into()),
            ("b/other".into(), f, String::new()),
            ("b/three".into(), l, "a/one".into()),
            ("b/x".into(), f, String::new()),
        ]
    );
    // Past the bound, new inodes are plain files.
    let mut o = Order::new();
    for i in 0..MAX_LINK_GROUPS as u64 {
        o.first_names.insert((9, i), wp("z"));
    }
    for p in ["c/1", "c/2"] {
        let Placed::Ready(e) = o.place(linked(p, 77)) else {
            panic!("not placed")
        };
        assert_eq!((e.kind, e.inode), (EntryKind::File, None));
    }
}

#[test]
fn a_link_goes_when_needed_or_when_its_target_was_sent() {
    let link = |p: &str| LocalEntry {
        kind: EntryKind::HardLink,
        target: b"a/one".to_vec(),
        ..linked(p, 5)
    };
    // Nothing needed: nothing goes.
    let entries = vec![linked("a/one", 5), link("b/two")];
    let (mut p, _) = answered(entries.clone(), &[0b00], &[]);
    assert!(drain(&mut p).is_empty());
    // Only the target needed: the link goes after it.
    let (mut p, _) = answered(entries.clone(), &[0b01], &[]);
    assert_eq!(drain(&mut p), [("a/one".into(), 0), ("b/two".into(), 0)]);
    // Only the link needed.
    let (mut p, _) = answered(entries, &[0b10], &[]);
    assert_eq!(drain(&mut p), [("b/two".into(), 0)]);
}

#[test]
fn the_need_answer_picks_entries_and_resume_offsets() {
    // Entries 0 (d/f) and 2 (d/h) needed, 1 (d/g) unchanged, 3 (d) not.
    let entries = vec![file("d/f"), file("d/g"), file("d/h"), dir("d")];
    let (mut p, unchanged) = answered(entries, &[0b0101], &[(2, 4)]);
    assert_eq!(unchanged, 1);
    assert!(!p.wants_final_commit(false), "entries still to send");
    // d goes too: something was sent into it.
    assert_eq!(
        drain(&mut p),
        [("d/f".into(), 0), ("d/h".into(), 4), ("d".into(), 0)]
    );
    assert!(p.wants_final_commit(false));
    assert!(
        !p.wants_final_commit(true),
        "not while a body is on its way"
    );
}

#[test]
fn an_unchanged_directory_with_unchanged_contents_is_not_sent() {
    let entries = vec![file("d/f"), dir("d"), file("e/g"), dir("e")];
    let (mut p, unchanged) = answered(entries, &[0b0100], &[]);
    assert_eq!(unchanged, 1);
    assert_eq!(drain(&mut p), [("e/g".into(), 0), ("e".into(), 0)]);
}

#[test]
fn a_sent_directory_dirties_its_parent() {
    let entries = vec![file("a/b/f"), dir("a/b"), dir("a"), dir("z")];
    let (mut p, _) = answered(entries, &[0b0001], &[]);
    let sent: Vec<String> = drain(&mut p).into_iter().map(|(s, _)| s).collect();
    assert_eq!(sent, ["a/b/f", "a/b", "a"]);
}

#[test]
fn a_commit_follows_every_commit_every_entries() {
    let n = COMMIT_EVERY as usize + 3;
    let entries: Vec<LocalEntry> = (0..n).map(|i| file(&format!("f{i}"))).collect();
    let mut p = Plan::new();
    // The manifest limit does not matter to the planner itself.
    let mut m = Manifest::new();
    for e in entries {
        m.push(e);
    }
    p.handle_asked(1, m);
    p.handle_need(&vec![0xff; n.div_ceil(8)], &[], &[], Vec::new());
    let out = drain(&mut p);
    let commits: Vec<usize> = out
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| s == "COMMIT")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(commits, [COMMIT_EVERY as usize]);
    assert_eq!(out.len(), n + 1);
}

#[test]
fn a_full_batch_waits_for_a_commit_slot() {
    let mut p = Plan::new();
    for i in 0..COMMIT_EVERY {
        p.handle_sent(i + 1, wp("f"), EntryKind::File, 1);
    }
    assert_eq!(p.next(COMMITS_IN_FLIGHT), Next::Wait);
    assert_eq!(p.next(COMMITS_IN_FLIGHT - 1), Next::Commit);
    assert_eq!(p.next(COMMITS_IN_FLIGHT), Next::Wait, "nothing queued");
}

#[test]
fn body_bytes_also_fill_a_batch() {
    let mut p = Plan::new();
    assert_eq!(p.next(0), Next::Wait);
    p.handle_sent(1, wp("a"), EntryKind::File, COMMIT_BYTES - 1);
    assert_eq!(p.next(0), Next::Wait);
    p.handle_sent(2, wp("b"), EntryKind::File, 1);
    assert_eq!(p.next(0), Next::Commit, "64 MiB of bodies commit at once");
    assert_eq!(p.next(0), Next::Wait, "the count starts again");
}

#[test]
fn path_bytes_also_fill_a_batch() {
    let mut p = Plan::new();
    let long = wp(&long_path());
    let mut i = 0;
    while p.next(0) != Next::Commit {
        i += 1;
        p.handle_sent(i, long.clone(), EntryKind::File, 1);
    }
    assert_eq!(
        i as usize,
        COMMIT_PATH_BYTES.div_ceil(long.as_bytes().len())
    );
}

#[test]
fn closed_directories_also_fill_a_batch() {
    let mut p = Plan::new();
    for i in 1..COMMIT_CLOSED {
        p.handle_sent_closed(i, wp(&format!("d{i}")));
    }
    assert_eq!(p.next(0), Next::Wait);
    p.handle_sent_closed(COMMIT_CLOSED, wp("last"));
    assert_eq!(
        p.next(0),
        Next::Commit,
        "an unchanged tree's directories are listed while the walk goes on"
    );
    assert_eq!(p.next(0), Next::Wait, "the count starts again");
    p.handle_sent_closed(COMMIT_CLOSED + 1, wp("next"));
    assert_eq!(p.next(0), Next::Wait);
}

/// Each commit a directory count triggers may delete, and so cost a
/// `syncfs`: the count doubles after each, up to `COMMIT_CLOSED_MAX`, and
/// commits for other reasons leave it as it is.
#[test]
fn the_closed_count_of_a_batch_doubles_up_to_its_bound() {
    let mut p = Plan::new();
    let mut id = 0;
    let mut commits_at = Vec::new();
    let mut directories = 0u32;
    while directories < 10_000 {
        id += 1;
        directories += 1;
        p.handle_sent_closed(id, wp(&format!("d{directories}")));
        if p.next(0) == Next::Commit {
            commits_at.push(directories);
        }
    }
    let mut want = Vec::new();
    let (mut at, mut limit) = (0, COMMIT_CLOSED);
    while at + limit <= 10_000 {
        at += limit;
        want.push(at);
        limit = (limit * 2).min(COMMIT_CLOSED_MAX);
    }
    assert_eq!(commits_at, want);
    assert_eq!(&want[..6], &[32, 96, 224, 480, 992, 2016]);
    assert_eq!(want.len(), 13, "and one more at the end of the run");

    // A batch filled by its entries keeps the count where it was.
    let mut p = Plan::new();
    for i in 1..=COMMIT_EVERY {
        p.handle_sent(i, wp(&format!("f{i}")), EntryKind::File, 1);
    }
    assert_eq!(p.next(0), Next::Commit);
    for i in 1..COMMIT_CLOSED {
        p.handle_sent_closed(COMMIT_EVERY + i, wp(&format!("d{i}")));
    }
    assert_eq!(p.next(0), Next::Wait);
    p.handle_sent_closed(COMMIT_EVERY + COMMIT_CLOSED, wp("last"));
    assert_eq!(p.next(0), Next::Commit);
}

#[test]
fn commits_count_what_they_made_durable() {
    let mut p = Plan::new();
    p.handle_sent(1, wp("d/f"), EntryKind::File, 5);
    p.handle_sent(2, wp("d/l"), EntryKind::Symlink, 0);
    p.handle_sent(3, wp("d/g"), EntryKind::File, 7);
    p.handle_sent(4, wp("d"), EntryKind::Dir, 0);
    assert_eq!(p.handle_failed(3, &wp("server/path")).unwrap(), "/d/g");
    assert_eq!(
        p.handle_failed(9, &wp("server/path")).unwrap(),
        "/server/path"
    );
    p.handle_final_commit(5);
    assert_eq!(
        p.handle_committed(5),
        Committed {
            files: 1,
            reused: 0,
            links: 1,
            specials: 0,
            updated: 0,
            bytes: 5,
            changed: 0,
            finished: true
        }
    );
    assert_eq!(p.handle_committed(6), Committed::default());
}

#[test]
fn the_progress_total_is_what_the_server_asked_for() {
    let mut p = Plan::new();
    let mut m = Manifest::new();
    let (mut a, mut b) = (file("a"), file("b"));
    a.size = 10;
    b.size = 100;
    m.push(a);
    m.push(b);
    m.push(entry(EntryKind::Dir, "d"));
    p.handle_asked(1, m);
    // Only `b` (and the directory) needed, 40 bytes of it kept.
    p.handle_need(&[0b110], &[], &[(1, 40)], Vec::new());
    assert_eq!(p.needed_bytes(), 60);
}

#[test]
fn resume_only_into_the_version_the_server_saw() {
    let e = file("f");
    assert_eq!(resume_offset(&e, e.meta, e.size, 4), 4);
    assert_eq!(resume_offset(&e, e.meta, e.size + 1, 4), 0);
    let mut other = e.meta;
    other.mode = 0o600;
    assert_eq!(resume_offset(&e, other, e.size, 4), 0);
}

#[test]
fn a_file_that_keeps_changing_is_read_three_times_then_kept_as_last_read() {
    let (mut p, _) = answered(vec![file("d/log"), dir("d")], &[0b11], &[]);
    let mut id = 10;
    let mut verdicts = Vec::new();
    loop {
        let (entry, reads) = match p.next(0) {
            Next::Send { entry, reads, .. } if entry.kind == EntryKind::File => (entry, reads),
            Next::Send { entry, .. } => {
                // The directory goes only after the file's last read.
                assert_eq!(name(&entry.wire), "d");
                id += 1;
                p.handle_sent(id, entry.wire, entry.kind, 0);
                break;
            }
            other => panic!("{other:?}"),
        };
        id += 1;
        p.handle_sent(id, entry.wire.clone(), entry.kind, entry.size);
        verdicts.push(p.handle_changed(id, entry, reads, false));
    }
    assert_eq!(verdicts, [Changed::Retry, Changed::Retry, Changed::Keep]);
    assert_eq!(verdicts.len() as u32, READS_OF_A_CHANGING_FILE);
    // The server drops the two bodies ended as not good: expected.
    assert_eq!(p.handle_failed(11, &wp("d/log")), None);
    assert_eq!(p.handle_failed(12, &wp("d/log")), None);
    assert!(p.wants_final_commit(false));
    p.handle_final_commit(20);
    assert_eq!(
        p.handle_committed(20),
        Committed {
            files: 1,
            reused: 0,
            links: 0,
            specials: 0,
            updated: 0,
            bytes: 10,
            changed: 1,
            finished: true
        }
    );
    // A later failure of the same id is a real one.
    assert!(p.handle_failed(11, &wp("d/log")).is_some());
}

#[test]
fn a_file_that_keeps_shrinking_fails() {
    let (mut p, _) = answered(vec![file("f")], &[0b1], &[]);
    let mut last = None;
    for id in 1..=READS_OF_A_CHANGING_FILE {
        let Next::Send { entry, reads, .. } = p.next(0) else {
            panic!("nothing to send");
        };
        assert_eq!(reads, id - 1);
        p.handle_sent(id, entry.wire.clone(), entry.kind, entry.size);
        last = Some(p.handle_changed(id, entry, reads, true));
    }
    assert_eq!(last, Some(Changed::Fail));
    assert_eq!(p.next(0), Next::Wait);
    assert_eq!(p.handle_failed(3, &wp("f")).as_deref(), Some("/f"));
}

/// A plan with one manifest asked and answered with both bitmaps.
fn answered_meta(entries: Vec<LocalEntry>, bits: &[u8], meta: &[u8]) -> (Plan, u64) {
    let mut p = Plan::new();
    let mut m = Manifest::new();
    for e in entries {
        m.push(e);
    }
    p.handle_asked(7, m);
    p.handle_walked();
    let unchanged = p.handle_need(bits, meta, &[], Vec::new());
    (p, unchanged)
}

/// Issue 10: an entry of which the server needs only the metadata goes
/// as an `Update`: no body, its directory not sent for it, counted as
/// updated and not as a file sent.
#[test]
fn a_meta_only_need_gives_an_update_and_no_body() {
    let mut big = file("d/big");
    big.size = 2 << 20;
    let mut link = entry(EntryKind::Symlink, "d/l");
    link.target = b"big".to_vec();
    let (mut p, unchanged) = answered_meta(
        vec![big, link, file("d/same"), dir("d")],
        &[0b0000],
        &[0b0011],
    );
    assert_eq!(unchanged, 1, "only d/same is unchanged");
    assert_eq!(p.needed_bytes(), 0, "no body is asked for");
    let mut sent = Vec::new();
    let mut id = 0;
    loop {
        match p.next(0) {
            Next::Update { entry } => {
                id += 1;
                sent.push((name(&entry.wire), update_kind(entry.kind)));
                p.handle_updated(id, entry);
            }
            Next::Send { entry, .. } => panic!("{} sent whole", name(&entry.wire)),
            Next::Commit => panic!("commit"),
            Next::Closed { path, .. } => panic!("{} closed", name(&path)),
            Next::Wait => break,
        }
    }
    // The directory is not sent: nothing was written into it.
    assert_eq!(
        sent,
        [
            ("d/big".to_string(), EntryKind::File),
            ("d/l".to_string(), EntryKind::Symlink)
        ]
    );
    assert!(p.wants_final_commit(false));
    p.handle_final_commit(9);
    assert_eq!(
        p.handle_committed(9),
        Committed {
            updated: 2,
            finished: true,
            ..Committed::default()
        }
    );
}

/// A later name of a file goes as an `Update` of the file it is stored
/// as, unless its first name was sent whole this run (then it is linked
/// again); a directory, FIFO or device whose metadata alone differs goes
/// whole (no body either); a bit set in both bitmaps sends the entry
/// whole (the session refuses such an answer before it gets here).
#[test]
fn meta_only_links_directories_and_specials() {
    let mut hard = linked("b/second", 5);
    hard.kind = EntryKind::HardLink;
    hard.target = b"a/first".to_vec();
    let fifo = entry(EntryKind::Fifo, "b/p");
    let (mut p, _) = answered_meta(
        vec![hard.clone(), fifo, file("b/both"), dir("b")],
        &[0b0100],
        &[0b1111],
    );
    let out = drain(&mut p);
    assert_eq!(
        out.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["UPDATE b/second", "b/p", "b/both", "b"]
    );
    assert_eq!(update_kind(EntryKind::HardLink), EntryKind::File);
    assert!(has_update(EntryKind::Symlink) && !has_update(EntryKind::Dir));
    // The first name sent whole this run: the later one is linked.
    let first = linked("a/first", 5);
    let (mut p, _) = answered_meta(vec![first, hard], &[0b01], &[0b10]);
    let out = drain(&mut p);
    assert_eq!(
        out.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["a/first", "b/second"]
    );
}

/// A failed `Update` (the stored copy went between the manifest and the
/// commit) is not the user's concern: the entry goes whole, in a batch
/// after the final commit that failed it, which is then not the last.
#[test]
fn a_failed_update_sends_the_entry_whole_after_its_commit() {
    let mut big = file("d/big");
    big.size = 1000;
    let (mut p, _) = answered_meta(vec![big], &[0], &[1]);
    let Next::Update { entry } = p.next(0) else {
        panic!("no update");
    };
    p.handle_updated(1, entry);
    assert_eq!(p.next(0), Next::Wait);
    assert!(p.wants_final_commit(false));
    p.handle_final_commit(2);
    assert_eq!(p.handle_failed(1, &wp("d/big")), None, "not reported");
    assert_eq!(p.needed_bytes(), 1000);
    let done = p.handle_committed(2);
    assert!(!done.finished, "{done:?}");
    assert_eq!(done.updated, 0);
    let Next::Send { entry, .. } = p.next(0) else {
        panic!("not sent whole");
    };
    assert_eq!(name(&entry.wire), "d/big");
    p.handle_sent(3, entry.wire, entry.kind, entry.size);
    assert!(p.wants_final_commit(false));
    p.handle_final_commit(4);
    // The whole file failing too is reported.
    assert_eq!(p.handle_failed(3, &wp("x")).as_deref(), Some("/d/big"));
    assert!(p.handle_committed(4).finished);
}

/// A walk's `Closed` belongs to that walk's entry of the directory: an
/// ancestor entry of the same path from an earlier walk never carries it,
/// and it is handed out only once the entry (after everything beneath it)
/// is placed.
#[test]
fn a_walks_closed_goes_with_its_own_entry_of_the_directory() {
    let mut o = Order::new();
    // Walk 1 names a and a/b as ancestors of a/b/f.
    assert_eq!(o.place(dir("a")), Placed::Held);
    assert_eq!(o.place(dir("a/b")), Placed::Held);
    assert!(matches!(o.place(file("a/b/f")), Placed::Ready(_)));
    o.end_walk();
    while o.pop_closed().is_some() {}
    assert!(o.take_walked().is_empty(), "ancestors close nothing");
    // Walk 2 walks a: a/b is closed by the walk before a/c comes.
    assert_eq!(o.place(dir("a")), Placed::Held);
    assert_eq!(o.place(dir("a/b")), Placed::Held);
    assert!(matches!(o.place(file("a/b/g")), Placed::Ready(_)));
    let whole = |keep: &[&str]| Walked {
        whole: true,
        keep: keep.iter().map(|k| k.as_bytes().to_vec()).collect(),
    };
    o.handle_walked_dir(&wp("a/b"), whole(&["x.tmp"]));
    assert!(o.take_walked().is_empty(), "a/b's entry is not out yet");
    assert!(matches!(o.place(file("a/c")), Placed::Ready(_)));
    assert_eq!(o.pop_closed().map(|d| name(&d.wire)), Some("a/b".into()));
    assert_eq!(o.take_walked(), vec![(wp("a/b"), whole(&["x.tmp"]))]);
    o.handle_walked_dir(&wp("a"), Walked::default());
    o.end_walk();
    assert_eq!(o.pop_closed().map(|d| name(&d.wire)), Some("a".into()));
    assert_eq!(o.take_walked(), vec![(wp("a"), Walked::default())]);
}

/// Issue 12: the names a directory's excludes left out go with its
/// `Closed`, once its entry is reached, needed or not.
#[test]
fn kept_names_go_with_the_directorys_closed() {
    let mut p = Plan::new();
    let entries = vec![file("d/a"), dir("d"), file("e/b"), dir("e")];
    let mut m = Manifest::new();
    for e in entries {
        m.push(e);
    }
    let keep = |names: &[&str]| Walked {
        whole: true,
        keep: names.iter().map(|k| k.as_bytes().to_vec()).collect(),
    };
    p.handle_closed(wp("d"), keep(&["x.tmp", "cache"]));
    p.handle_closed(wp("e"), keep(&[]));
    p.handle_asked(1, m);
    // Only d/a is needed: d goes (dirty), e does not, both are closed.
    p.handle_need(&[0b0000_0001], &[0], &[], Vec::new());
    p.handle_walked();
    let out: Vec<String> = drain(&mut p).into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        out,
        [
            "d/a",
            "d",
            "CLOSED d true keep x.tmp,cache",
            "CLOSED e true"
        ]
    );
}
