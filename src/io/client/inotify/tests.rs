//! The watcher on real directories: what each kind of event becomes, that
//! a renamed directory's watches follow it, that one moved out is dropped,
//! and that an overflow rescans every root.

use super::*;
use crate::client::watch::{Limits, Target};
use std::fs;
use std::time::Duration;

/// A watcher on `roots`, set up.
fn watcher(roots: &[&Path]) -> Watcher {
    let roots: Vec<Vec<u8>> = roots
        .iter()
        .map(|r| r.as_os_str().as_bytes().to_vec())
        .collect();
    let n = roots.len();
    let d = Debouncer::new(roots, Limits::for_delay(Duration::ZERO));
    let mut w = Watcher::new(
        d,
        Box::new(|_, path: &[u8], _| path.ends_with(b".tmp")),
        None,
        false,
    )
    .expect("inotify");
    for i in 0..n {
        w.watch_root(i, Instant::now());
    }
    w
}

/// Drains and takes everything pending, rendered relative to `base`.
fn taken(w: &mut Watcher, base: &Path) -> Vec<String> {
    // Events are queued synchronously with the calls that make them.
    w.drain(Instant::now());
    let batch: Vec<Target> = w
        .debouncer
        .take_due(Instant::now() + Duration::from_secs(1));
    let base = base.as_os_str().as_bytes();
    batch
        .iter()
        .map(|t| {
            let rel = t.path.strip_prefix(base).unwrap_or(&t.path);
            format!("{:?} {}", t.change, String::from_utf8_lossy(rel))
        })
        .collect()
}

/// The kernel's queue overflowed (the event carries no watch of its own:
/// any will do).
fn overflow(w: &mut Watcher) {
    let any = *w.nodes.keys().next().unwrap();
    w.handle(
        InotifyEvent {
            wd: any,
            mask: AddWatchFlags::IN_Q_OVERFLOW,
            cookie: 0,
            name: None,
        },
        Instant::now(),
    );
}

#[test]
fn each_kind_of_event_is_the_change_it_means() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("r");
    fs::create_dir_all(r.join("a")).unwrap();
    fs::write(r.join("a/f"), b"x").unwrap();
    fs::write(r.join("a/gone"), b"x").unwrap();
    let mut w = watcher(&[&r]);
    assert_eq!(w.watched(), 2);
    fs::write(r.join("a/f"), b"changed").unwrap();
    fs::write(r.join("a/new"), b"new").unwrap();
    fs::write(r.join("a/skip.tmp"), b"excluded").unwrap();
    fs::remove_file(r.join("a/gone")).unwrap();
    assert_eq!(
        taken(&mut w, &r),
        ["Listing /a"],
        "the listing covers its entries"
    );

    nix::sys::stat::fchmodat(
        None,
        &r.join("a"),
        Mode::from_bits_truncate(0o700),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .unwrap();
    fs::write(r.join("a/f"), b"again").unwrap();
    assert_eq!(taken(&mut w, &r), ["Entry /a", "Entry /a/f"]);

    // A tree made at once: watched as soon as its first event is read,
    // and backed up whole.
    fs::create_dir_all(r.join("t/u/v")).unwrap();
    fs::write(r.join("t/u/v/deep"), b"deep").unwrap();
    assert_eq!(taken(&mut w, &r), ["Tree /t"]);
    assert_eq!(w.watched(), 5);
    fs::write(r.join("t/u/v/later"), b"later").unwrap();
    assert_eq!(taken(&mut w, &r), ["Entry /t/u/v/later"]);
}

#[test]
fn a_renamed_directory_is_followed_and_one_moved_out_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("r");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(r.join("a/sub")).unwrap();
    fs::create_dir_all(r.join("b")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    let mut w = watcher(&[&r]);
    assert_eq!(w.watched(), 4);
    fs::rename(r.join("a/sub"), r.join("b/moved")).unwrap();
    assert_eq!(taken(&mut w, &r), ["Listing /a", "Tree /b/moved"]);
    assert_eq!(w.watched(), 4, "the same watch, at its new place");
    fs::write(r.join("b/moved/f"), b"x").unwrap();
    assert_eq!(taken(&mut w, &r), ["Entry /b/moved/f"]);

    fs::create_dir_all(r.join("b/moved/inner/deeper")).unwrap();
    assert_eq!(taken(&mut w, &r), ["Tree /b/moved/inner"]);
    assert_eq!(w.watched(), 6);
    fs::rename(r.join("b/moved"), outside.join("moved")).unwrap();
    assert_eq!(taken(&mut w, &r), ["Listing /b"]);
    assert_eq!(
        w.watched(),
        3,
        "moved out of the watched tree: dropped, its subtree too"
    );
    fs::write(outside.join("moved/f2"), b"x").unwrap();
    assert!(taken(&mut w, &r).is_empty(), "nothing seen outside");
}

#[test]
fn an_overflow_rescans_every_root_and_a_gone_root_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let r1 = tmp.path().join("r1");
    let r2 = tmp.path().join("r2");
    fs::create_dir_all(&r1).unwrap();
    fs::create_dir_all(&r2).unwrap();
    let mut w = watcher(&[&r1, &r2]);
    overflow(&mut w);
    assert_eq!(taken(&mut w, tmp.path()), ["Tree /r1", "Tree /r2"]);

    fs::remove_dir(&r2).unwrap();
    w.drain(Instant::now());
    assert!(!w.is_watching(1));
    assert!(w.is_watching(0));
    fs::create_dir(&r2).unwrap();
    assert_eq!(w.watch_root(1, Instant::now()).dirs, 1);
    assert!(w.is_watching(1));
}

/// Events lost in an overflow (a directory renamed, one made): the
/// overflow sets the watches up again, so what is written into both
/// afterwards is seen under their current names.
#[test]
fn an_overflow_sets_the_watches_up_again() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("r");
    fs::create_dir_all(r.join("b")).unwrap();
    let mut w = watcher(&[&r]);
    fs::rename(r.join("b"), r.join("b2")).unwrap();
    fs::create_dir(r.join("d")).unwrap();
    // The events of both are lost.
    while w.fd.read_events().is_ok_and(|e| !e.is_empty()) {}
    overflow(&mut w);
    assert_eq!(taken(&mut w, &r), ["Tree "]);
    fs::write(r.join("b2/after"), b"x").unwrap();
    fs::write(r.join("d/after"), b"x").unwrap();
    assert_eq!(taken(&mut w, &r), ["Entry /b2/after", "Entry /d/after"]);
}
