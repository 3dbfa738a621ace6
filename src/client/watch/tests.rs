//! The debouncer's tests, on a virtual clock.

use super::*;
use crate::testing::clock::Clock;

const SEC: Duration = Duration::from_secs(1);

fn limits() -> Limits {
    Limits::for_delay(2 * SEC)
}

fn deb() -> Debouncer {
    Debouncer::new(vec![b"/w".to_vec(), b"/v".to_vec()], limits())
}

fn shown(batch: &[Target]) -> Vec<String> {
    batch
        .iter()
        .map(|t| format!("{:?} {}", t.change, String::from_utf8_lossy(&t.path)))
        .collect()
}

#[test]
fn a_change_is_due_after_the_delay_of_quiet() {
    let clock = Clock::new();
    let mut d = deb();
    assert_eq!(d.deadline(), None);
    d.note(0, b"/w/a", Change::Entry, clock.now());
    assert_eq!(d.deadline(), Some(clock.now() + 2 * SEC));
    clock.advance(SEC);
    assert!(d.take_due(clock.now()).is_empty(), "not quiet long enough");
    clock.advance(SEC);
    assert_eq!(shown(&d.take_due(clock.now())), ["Entry /w/a"]);
    assert!(d.is_empty());
    assert_eq!(d.deadline(), None);
}

#[test]
fn every_event_starts_the_wait_again_until_the_hold_runs_out() {
    let clock = Clock::new();
    let mut d = deb();
    let start = clock.now();
    // Written every half second for five seconds: not due while written.
    for _ in 0..10 {
        d.note(0, b"/w/busy", Change::Entry, clock.now());
        clock.advance(SEC / 2);
        assert!(d.take_due(clock.now()).is_empty());
    }
    clock.advance(SEC + SEC / 2);
    assert_eq!(shown(&d.take_due(clock.now())), ["Entry /w/busy"]);
    // Written for ever: due once held for max_hold.
    let mut taken_at = None;
    for _ in 0..200 {
        d.note(0, b"/w/log", Change::Entry, clock.now());
        clock.advance(SEC / 2);
        if !d.take_due(clock.now()).is_empty() {
            taken_at = Some(clock.now());
            break;
        }
    }
    let held = taken_at.expect("never due") - start - 5 * SEC - 2 * SEC;
    assert!(held <= limits().max_hold + SEC, "held {held:?}");
    assert!(held >= limits().max_hold - SEC, "held {held:?}");
}

#[test]
fn a_batch_holds_only_the_quiet_paths() {
    let clock = Clock::new();
    let mut d = deb();
    d.note(0, b"/w/old", Change::Entry, clock.now());
    clock.advance(SEC);
    d.note(0, b"/w/new", Change::Entry, clock.now());
    clock.advance(SEC);
    assert_eq!(shown(&d.take_due(clock.now())), ["Entry /w/old"]);
    assert_eq!(d.deadline(), Some(clock.now() + SEC), "exact after a take");
    clock.advance(SEC);
    assert_eq!(shown(&d.take_due(clock.now())), ["Entry /w/new"]);
}

#[test]
fn deeper_changes_cover_shallower_ones() {
    let clock = Clock::new();
    let mut d = deb();
    let now = clock.now();
    d.note(0, b"/w/a", Change::Entry, now);
    d.note(0, b"/w/a", Change::Listing, now);
    d.note(0, b"/w/a/f", Change::Entry, now);
    d.note(0, b"/w/a/sub/g", Change::Entry, now);
    d.note(0, b"/w/t", Change::Tree, now);
    d.note(0, b"/w/t/x/y", Change::Listing, now);
    d.note(0, b"/w/t/x/y/z", Change::Entry, now);
    d.note(0, b"/w/a2", Change::Entry, now);
    d.note(1, b"/v", Change::Entry, now);
    clock.advance(2 * SEC);
    assert_eq!(
        shown(&d.take_due(clock.now())),
        [
            "Entry /v",
            "Listing /w/a",
            "Entry /w/a/sub/g",
            "Entry /w/a2",
            "Tree /w/t"
        ]
    );
}

#[test]
fn a_rescan_is_due_at_once_and_covers_the_root() {
    let clock = Clock::new();
    let mut d = deb();
    d.note(0, b"/w/a", Change::Entry, clock.now());
    d.note(1, b"/v/b", Change::Entry, clock.now());
    d.rescan(0, clock.now());
    assert_eq!(d.deadline(), Some(clock.now()));
    assert_eq!(shown(&d.take_due(clock.now())), ["Tree /w"]);
    assert!(d.take_due(clock.now()).is_empty());
    assert_eq!(d.len(), 1, "/w/a went with the rescan, /v/b waits");
    clock.advance(2 * SEC);
    assert_eq!(shown(&d.take_due(clock.now())), ["Entry /v/b"]);
}

#[test]
fn a_failed_batch_comes_back_due_at_once_with_what_came_since() {
    let clock = Clock::new();
    let mut d = deb();
    d.note(0, b"/w/a", Change::Entry, clock.now());
    clock.advance(2 * SEC);
    let batch = d.take_due(clock.now());
    d.note(0, b"/w/a", Change::Listing, clock.now());
    d.note(0, b"/w/b", Change::Entry, clock.now());
    d.put_back(batch, clock.now());
    assert_eq!(shown(&d.take_due(clock.now())), ["Listing /w/a"]);
    clock.advance(2 * SEC);
    assert_eq!(shown(&d.take_due(clock.now())), ["Entry /w/b"]);
}

#[test]
fn past_the_bound_a_root_becomes_one_rescan() {
    let clock = Clock::new();
    let small = Limits {
        max_paths: 10,
        ..limits()
    };
    let mut d = Debouncer::new(vec![b"/w".to_vec(), b"/v".to_vec()], small);
    d.note(1, b"/v/x", Change::Entry, clock.now());
    let mut collapsed = 0;
    for i in 0..100 {
        let p = format!("/w/f{i}");
        if d.note(0, p.as_bytes(), Change::Entry, clock.now()) == Noted::Collapsed {
            collapsed += 1;
        }
    }
    assert!(collapsed >= 1);
    assert!(d.len() <= 10, "{} pending", d.len());
    clock.advance(2 * SEC);
    let batch = shown(&d.take_due(clock.now()));
    assert!(batch.contains(&"Tree /w".to_string()), "{batch:?}");
    assert!(
        batch.iter().all(|t| !t.starts_with("Entry /w/")),
        "{batch:?}"
    );
    assert!(batch.contains(&"Entry /v/x".to_string()), "{batch:?}");

    // By bytes too.
    let tiny = Limits {
        max_bytes: 64,
        ..limits()
    };
    let mut d = Debouncer::new(vec![b"/w".to_vec()], tiny);
    for i in 0..100 {
        let p = format!("/w/a-rather-long-name-{i}");
        d.note(0, p.as_bytes(), Change::Entry, clock.now());
    }
    assert!(d.len() <= 3, "{} pending", d.len());
}

#[test]
fn the_bound_filled_by_other_roots_rescans_them_too() {
    let clock = Clock::new();
    let small = Limits {
        max_paths: 4,
        ..limits()
    };
    let mut d = Debouncer::new(vec![b"/w".to_vec(), b"/v".to_vec()], small);
    for i in 0..4 {
        d.note(1, format!("/v/{i}").as_bytes(), Change::Entry, clock.now());
    }
    assert_eq!(
        d.note(0, b"/w/x", Change::Entry, clock.now()),
        Noted::Collapsed
    );
    clock.advance(2 * SEC);
    assert_eq!(shown(&d.take_due(clock.now())), ["Tree /v", "Tree /w"]);
}

#[test]
fn parents_of_paths() {
    assert_eq!(parent(b"/a/b"), Some(&b"/a"[..]));
    assert_eq!(parent(b"/a"), Some(&b"/"[..]));
    assert_eq!(parent(b"/"), None);
    assert_eq!(parent(b"a"), None);
}

#[test]
fn the_root_slash_is_covered_like_any_directory() {
    let clock = Clock::new();
    let mut d = Debouncer::new(vec![b"/".to_vec()], limits());
    d.rescan(0, clock.now());
    d.note(0, b"/etc/x", Change::Entry, clock.now() - 2 * SEC);
    assert_eq!(shown(&d.take_due(clock.now())), ["Tree /"]);
}
