//! Restore is an attack surface too: a broken or malicious server must not
//! make the client write outside DEST, neither with a symlink it sent
//! earlier in the same restore nor with a link already in DEST, and a
//! malformed stream must end the restore with a clear error. The "server"
//! here is a thread on 127.0.0.1 that plays a scripted answer.

#[macro_use]
mod common;

use std::fs;

use common::*;
use rsb::proto::codec::to_vec;
use rsb::proto::{Frame, Meta, Time, WirePath};

fn wp(s: &str) -> WirePath {
    WirePath::new(s.as_bytes().to_vec()).unwrap()
}

fn m(mode: u32) -> Meta {
    Meta {
        mode,
        mtime: Time {
            secs: 1_600_000_000,
            nanos: 0,
        },
        uid: 0,
        gid: 0,
    }
}

fn file(id: u32, path: &str, body: &[u8]) -> Vec<u8> {
    let mut v = to_vec(&Frame::File {
        id,
        path: wp(path),
        meta: m(0o644),
        size: body.len() as u64,
        layout: Default::default(),
    });
    v.extend_from_slice(body);
    v.extend(to_vec(&Frame::FileEnd {
        id,
        crc: crc32c::crc32c(body),
        ok: true,
    }));
    v
}

fn only_entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_symlink_sent_earlier_in_the_restore_is_never_written_through() {
    let s = scratch();
    let outside = s.join("outside");
    fs::create_dir(&outside).unwrap();
    let target = outside.to_str().unwrap().as_bytes().to_vec();
    let (port, h) = fake_restore_server(move |id| {
        let mut v = to_vec(&Frame::Symlink {
            id,
            path: wp("link"),
            target,
            meta: m(0o777),
        });
        // Enough entries for the client to commit a batch, so the link is
        // in place under its final name when the file below it arrives.
        for i in 0..1100 {
            v.extend(file(id, &format!("f{i}"), b"x"));
        }
        v.extend(file(id, "link/evil", b"evil"));
        v.extend(to_vec(&Frame::Dir {
            id,
            path: WirePath::root(),
            meta: m(0o755),
        }));
        v.extend(to_vec(&Frame::Done { id }));
        v
    });
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    let o = Cmd::client()
        .args(argv![
            "-n",
            NAME,
            "127.0.0.1",
            port.to_string(),
            "restore",
            "/x",
            dest
        ])
        .run();
    h.join().unwrap();
    assert!(
        only_entries(&outside).is_empty(),
        "the client wrote outside DEST\n{o}"
    );
    // No real tree holds a link and something beneath it: the entry is
    // refused, named, and the link stays as it was sent.
    o.code_is(1)
        .err_has("x/link/evil")
        .err_has("beneath the symlink");
    assert!(
        fs::symlink_metadata(dest.join("x/link"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "{o}"
    );
    assert!(find_tmp(&dest).is_empty(), "temporary files left in DEST");
}

#[test]
fn a_link_planted_in_dest_is_replaced_not_followed() {
    let s = scratch();
    let outside = s.join("outside");
    fs::create_dir(&outside).unwrap();
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("x")).unwrap();
    let (port, h) = fake_restore_server(|id| {
        let mut v = file(id, "a.txt", b"hello\n");
        v.extend(to_vec(&Frame::Dir {
            id,
            path: WirePath::root(),
            meta: m(0o755),
        }));
        v.extend(to_vec(&Frame::Done { id }));
        v
    });
    let o = Cmd::client()
        .args(argv![
            "-n",
            NAME,
            "127.0.0.1",
            port.to_string(),
            "restore",
            "/x",
            dest
        ])
        .run();
    h.join().unwrap();
    o.ok();
    assert!(
        only_entries(&outside).is_empty(),
        "the client followed the link\n{o}"
    );
    assert!(fs::symlink_metadata(dest.join("x")).unwrap().is_dir());
    assert_eq!(fs::read(dest.join("x/a.txt")).unwrap(), b"hello\n");
}

#[test]
fn hostile_paths_and_garbage_end_the_restore_with_an_error() {
    let s = scratch();
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    // A File frame whose path is "../evil", encoded by hand (WirePath
    // cannot hold it): kind, length, id, path, mode, mtime, size.
    let (port, h) = fake_restore_server(|id| {
        let path = b"../evil";
        let mut p = Vec::new();
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&(path.len() as u32).to_be_bytes());
        p.extend_from_slice(path);
        p.extend_from_slice(&0o644u32.to_be_bytes());
        p.extend_from_slice(&0u64.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&4u64.to_be_bytes());
        let mut v = vec![12u8];
        v.extend_from_slice(&(p.len() as u32).to_be_bytes());
        v.extend(p);
        v.extend_from_slice(b"evil");
        v
    });
    let o = Cmd::client()
        .args(argv![
            "-n",
            NAME,
            "127.0.0.1",
            port.to_string(),
            "restore",
            "/x",
            dest
        ])
        .run();
    h.join().unwrap();
    o.code_is(2).err_has("malformed");
    assert!(!s.join("evil").exists());
    assert!(only_entries(&dest).is_empty(), "{:?}", only_entries(&dest));
}

/// A server's `.rsb-tmp.*` names (a transfer's temporary files, never part
/// of a backup) are refused in every component of every entry's path:
/// named, exit 1, nothing written under such a name, the rest restored.
#[test]
fn restore_refuses_reserved_temporary_names_from_the_server() {
    let s = scratch();
    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    let (port, h) = fake_restore_server(|id| {
        let mut v = file(id, ".rsb-tmp.1234abcd.1", b"planted");
        v.extend(file(id, "d/.rsb-tmp.part.big.5.6", b"planted"));
        v.extend(file(id, ".rsb-tmp.old.9/inner", b"planted"));
        v.extend(to_vec(&Frame::Symlink {
            id,
            path: wp(".rsb-tmp.link"),
            target: b"ok.txt".to_vec(),
            meta: m(0o777),
        }));
        v.extend(to_vec(&Frame::Dir {
            id,
            path: wp(".rsb-tmp.dir"),
            meta: m(0o755),
        }));
        v.extend(file(id, "d/ok.txt", b"fine\n"));
        v.extend(to_vec(&Frame::Dir {
            id,
            path: wp("d"),
            meta: m(0o755),
        }));
        v.extend(to_vec(&Frame::Dir {
            id,
            path: WirePath::root(),
            meta: m(0o755),
        }));
        v.extend(to_vec(&Frame::Done { id }));
        v
    });
    let o = Cmd::client()
        .args(argv![
            "-n",
            NAME,
            "127.0.0.1",
            port.to_string(),
            "restore",
            "/x",
            dest
        ])
        .run();
    h.join().unwrap();
    o.code_is(1);
    // One cause: the first three refusals are named, the rest counted.
    let more = o
        .err()
        .lines()
        .find(|l| l.contains("... and 2 more files"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("the other two refusals are not counted\n{o}"));
    assert!(more.contains("reserved"), "{more}");
    for name in [
        "x/.rsb-tmp.1234abcd.1",
        "x/d/.rsb-tmp.part.big.5.6",
        "x/.rsb-tmp.old.9/inner",
    ] {
        let shown = dest.join(name);
        let line = o
            .err()
            .lines()
            .find(|l| l.contains(&*shown.to_string_lossy()))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{name} is not named\n{o}"));
        assert!(line.contains("reserved"), "{line}");
    }
    assert_eq!(only_entries(&dest.join("x")), ["d"], "{o}");
    assert_eq!(only_entries(&dest.join("x/d")), ["ok.txt"], "{o}");
    assert_eq!(fs::read(dest.join("x/d/ok.txt")).unwrap(), b"fine\n");
}

fn link(id: u32, path: &str, target: &str, size: u64) -> Vec<u8> {
    to_vec(&Frame::Link {
        id,
        path: wp(path),
        target: wp(target),
        meta: m(0o644),
        size,
    })
}

/// The line of standard error that names `p`.
fn line_naming(o: &Output, p: &std::path::Path) -> String {
    let shown = p.to_string_lossy().into_owned();
    o.err()
        .lines()
        .find(|l| l.contains(&*shown))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{shown} is not named\n{o}"))
}

/// A `Link` is made only to a file the restore itself wrote, at the size
/// it wrote: never to a file the user has in DEST, to a name the restore
/// did not write, to a directory, or to a file of another size. Each is
/// refused, named, counted as failed (exit 1), and nothing is linked;
/// a good link in the same stream is made.
#[test]
fn a_link_to_a_file_the_restore_did_not_write_is_refused() {
    let s = scratch();
    let dest = s.join("dest");
    fs::create_dir_all(dest.join("x")).unwrap();
    let mine = dest.join("x/mine.txt");
    fs::write(&mine, b"my secret\n").unwrap();
    let before = fs::metadata(&mine).unwrap();
    let (port, h) = fake_restore_server(|id| {
        let mut v = file(id, "ok", b"fine\n");
        v.extend(link(id, "ok2", "ok", 5));
        // A file the user has in DEST, of its size.
        v.extend(link(id, "steal", "mine.txt", 10));
        // Names the restore never wrote.
        v.extend(link(id, "passwd", "etc/passwd", 5));
        v.extend(link(id, "ghost", "never/sent", 5));
        // A directory it sent.
        v.extend(to_vec(&Frame::Dir {
            id,
            path: wp("d"),
            meta: m(0o755),
        }));
        v.extend(link(id, "todir", "d", 0));
        // A file it wrote, but another size.
        v.extend(link(id, "bigger", "ok", 6));
        v.extend(to_vec(&Frame::Dir {
            id,
            path: WirePath::root(),
            meta: m(0o755),
        }));
        v.extend(to_vec(&Frame::Done { id }));
        v
    });
    let o = Cmd::client()
        .args(argv![
            "-n",
            NAME,
            "127.0.0.1",
            port.to_string(),
            "restore",
            "/x",
            dest
        ])
        .run();
    h.join().unwrap();
    o.code_is(1);
    let x = dest.join("x");
    // Every refusal names the link, says why, and the target.
    for (name, target) in [
        ("steal", "mine.txt"),
        ("passwd", "etc/passwd"),
        ("ghost", "never/sent"),
        ("todir", "d"),
    ] {
        let line = line_naming(&o, &x.join(name));
        assert!(
            line.contains("refused")
                && line.contains("hard link")
                && line.contains("not a file this restore wrote")
                && line.contains(&*x.join(target).to_string_lossy()),
            "{line}"
        );
        assert!(
            fs::symlink_metadata(x.join(name)).is_err(),
            "{name} made\n{o}"
        );
    }
    let line = line_naming(&o, &x.join("bigger"));
    assert!(line.contains("with 5 bytes"), "{line}");
    assert!(!x.join("bigger").exists());
    // The user's file kept its one name and its inode.
    let after = fs::metadata(&mine).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((after.ino(), after.nlink()), (before.ino(), 1));
    assert_eq!(fs::read(&mine).unwrap(), b"my secret\n");
    // The good link was made, and counted as a file received.
    let ok = fs::metadata(x.join("ok")).unwrap();
    let ok2 = fs::metadata(x.join("ok2")).unwrap();
    assert_eq!((ok2.ino(), ok2.nlink()), (ok.ino(), 2));
    o.err_has("restore: 2 files received");
    o.err_has("5 failed");
    assert!(find_tmp(&dest).is_empty(), "temporary files left in DEST");
}

/// A `Link` whose target leaves DEST (`..`, an absolute path) is no valid
/// wire path: the stream is malformed, the restore ends with an error
/// (exit 2) and nothing is linked, inside DEST or out.
#[test]
fn a_link_target_outside_dest_ends_the_restore_and_links_nothing() {
    for (placeholder, hostile) in [
        (&b"xx/outside/victim"[..], &b"../outside/victim"[..]),
        (&b"xoutside/victim"[..], &b"/outside/victim"[..]),
    ] {
        let s = scratch();
        let outside = s.join("outside");
        fs::create_dir(&outside).unwrap();
        let victim = outside.join("victim");
        fs::write(&victim, b"victim").unwrap();
        let dest = s.join("dest");
        fs::create_dir(&dest).unwrap();
        let placeholder = placeholder.to_vec();
        let hostile = hostile.to_vec();
        let (port, h) = fake_restore_server(move |id| {
            let mut v = file(id, "ok", b"fine\n");
            // Encoded valid, then the target's bytes swapped in place.
            let mut l = to_vec(&Frame::Link {
                id,
                path: wp("evil"),
                target: WirePath::new(placeholder.clone()).unwrap(),
                meta: m(0o644),
                size: 6,
            });
            let at = l
                .windows(placeholder.len())
                .position(|w| w == placeholder)
                .unwrap();
            assert_eq!(placeholder.len(), hostile.len());
            l[at..at + hostile.len()].copy_from_slice(&hostile);
            v.extend(l);
            v.extend(to_vec(&Frame::Done { id }));
            v
        });
        let o = Cmd::client()
            .args(argv![
                "-n",
                NAME,
                "127.0.0.1",
                port.to_string(),
                "restore",
                "/x",
                dest
            ])
            .run();
        h.join().unwrap();
        o.code_is(2).err_has("malformed");
        assert_eq!(fs::metadata(&victim).unwrap().len(), 6);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(&victim).unwrap().nlink(), 1, "{o}");
        assert!(!dest.join("x/evil").exists(), "{o}");
        assert!(find_tmp(&dest).is_empty(), "temporary files left in DEST");
    }
}
