//! Issue 10, special files and `--one-file-system`: FIFOs, sockets and
//! character and block devices are backed up and come back as they were
//! (rsync is the judge), whoever the server runs as: a root server stores
//! real nodes, a server that is not root keeps a device as an empty file
//! whose metadata record names it. A non-root client restores what it can
//! and says, once, what it could not. `-o` keeps a backup on one file
//! system, and a store inside the backed-up tree is never backed up into
//! itself.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::stat::{mknod, Mode, SFlag};

use common::*;

/// The user the unprivileged server (and client) runs as.
const NOBODY: u32 = 65534;

fn root_or_skip(what: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped: {what} needs root");
    }
    root
}

/// An extended attribute of `p` (not following a link), as text.
fn xattr(p: &Path, name: &str) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 128];
    // SAFETY: both strings are NUL-terminated; the buffer outlives the call.
    let len =
        unsafe { nix::libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| String::from_utf8_lossy(&buf[..len as usize]).into_owned())
}

fn node(p: &Path, kind: SFlag, mode: u32, major: u64, minor: u64, t: T) {
    mknod(
        p,
        kind,
        Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(major, minor),
    )
    .unwrap_or_else(|e| panic!("mknod {p:?}: {e}"));
    chmod(p, mode);
    set_mtime(p, t);
}

/// A socket file: bound, then the listener dropped (the name stays).
fn socket(p: &Path, mode: u32, t: T) {
    drop(std::os::unix::net::UnixListener::bind(p).unwrap());
    chmod(p, mode);
    set_mtime(p, t);
}

/// A tree with one of each special kind (odd modes, ns mtimes) beside a
/// file, some in a subdirectory.
fn specials_tree(src: &Path) -> Tree {
    let mut tree = Tree::new(src, 0o755, (1_600_000_000, 1));
    tree.file("f", b"plain\n", 0o644, (1_600_000_001, 2))
        .dir("d", 0o750, (1_600_000_002, 3));
    node(
        &src.join("fifo"),
        SFlag::S_IFIFO,
        0o1751,
        0,
        0,
        (1_600_000_003, 4),
    );
    socket(&src.join("sock"), 0o604, (1_600_000_004, 5));
    node(
        &src.join("null"),
        SFlag::S_IFCHR,
        0o620,
        1,
        3,
        (1_600_000_005, 6),
    );
    node(
        &src.join("d/loop"),
        SFlag::S_IFBLK,
        0o660,
        7,
        0,
        (1_600_000_006, 7),
    );
    node(
        &src.join("d/q"),
        SFlag::S_IFIFO,
        0o400,
        0,
        0,
        (1_600_000_007, 8),
    );
    tree.finish();
    tree
}

/// rsync's itemized differences between `a` and `b` (empty: the same).
fn rsync_diff(a: &Path, b: &Path) -> String {
    rsync_diff_with(&["-aHn", "--devices", "--specials"], a, b)
}

fn rdev(p: &Path) -> (u64, u64) {
    let r = fs::symlink_metadata(p).unwrap().rdev();
    (nix::sys::stat::major(r), nix::sys::stat::minor(r))
}

/// Backs the tree up, checks what the store holds and what `ls` and
/// `verify` say, re-runs it (nothing sent), restores it as root and asks
/// rsync whether anything differs.
fn round_trip(srv: &Server, root_server: bool) -> (Scratch, PathBuf) {
    let s = scratch();
    let src = s.join("src");
    specials_tree(&src);
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert!(o.err().contains("1 file and 5 special files sent"), "{o}");
    assert!(!o.err().contains("not supported"), "{o}");

    let stored = srv.store(NAME, &src);
    let ft = |p: &str| fs::symlink_metadata(stored.join(p)).unwrap().file_type();
    assert!(ft("fifo").is_fifo() && ft("d/q").is_fifo());
    assert!(ft("sock").is_socket());
    let disk = |p: &str| fs::symlink_metadata(stored.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(
        (disk("fifo"), disk("sock"), disk("d/q")),
        (0o1751, 0o604, 0o400)
    );
    if root_server {
        assert!(ft("null").is_char_device() && ft("d/loop").is_block_device());
        assert_eq!(
            (rdev(&stored.join("null")), rdev(&stored.join("d/loop"))),
            ((1, 3), (7, 0))
        );
        assert_eq!(disk("null"), 0o620);
        assert_eq!(xattr(&stored.join("null"), "user.rsb.meta"), None);
    } else {
        // Metadata-only stand-ins: empty files, the sticky bit saying there
        // is a record, the record naming the device and its real owner
        // (root's, not the server's).
        for (p, record) in [
            ("null", "v1 mode=0620 uid=0 gid=0 kind=chr rdev=1:3"),
            ("d/loop", "v1 mode=0660 uid=0 gid=0 kind=blk rdev=7:0"),
        ] {
            let md = fs::symlink_metadata(stored.join(p)).unwrap();
            assert!(md.file_type().is_file(), "{p}");
            assert_eq!((md.len(), md.mode() & 0o1000), (0, 0o1000), "{p}");
            assert_eq!(md.uid(), NOBODY);
            assert_eq!(
                xattr(&stored.join(p), "user.rsb.meta").as_deref(),
                Some(record)
            );
        }
    }

    // `ls` shows the type letters and a device's numbers for its size.
    let o = srv.client(argv!["ls", src]).run();
    o.ok();
    for (start, end) in [
        ("prwxr-x--t", " fifo"),
        ("srw----r--", " sock"),
        ("crw--w----       1, 3 ", " null"),
        ("-rw-r--r--          6 ", " f"),
    ] {
        assert!(
            o.out()
                .lines()
                .any(|l| l.starts_with(start) && l.ends_with(end)),
            "no {start}...{end} in:\n{o}"
        );
    }
    let o = srv.client(argv!["ls", src.join("d")]).run();
    assert!(
        o.out()
            .lines()
            .any(|l| l.starts_with("brw-rw----       7, 0 ") && l.ends_with(" loop")),
        "{o}"
    );

    // Verify reads the one file and takes the stand-ins for what they are.
    let o = srv.client(argv!["verify"]).run();
    o.ok();
    assert!(!o.err().contains("no checksum"), "{o}");

    // Unchanged: nothing is sent again.
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert!(o.err().contains("backup: 0 files sent"), "{o}");
    assert!(!o.err().contains("special"), "{o}");

    // Restored as root: real nodes again, and rsync sees no difference.
    let dest = s.join("dest");
    srv.client(argv!["restore", src, dest]).run().ok();
    assert!(fs::symlink_metadata(dest.join("null"))
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(rdev(&dest.join("d/loop")), (7, 0));
    let diff = rsync_diff(&src, &dest);
    assert!(diff.is_empty(), "rsync sees differences:\n{diff}");
    (s, src)
}

/// A change of mode, mtime or device number is sent again, and only it.
fn changes_are_sent(srv: &Server, s: &Scratch, src: &Path) {
    chmod(&src.join("fifo"), 0o600);
    set_mtime(&src.join("sock"), (1_700_000_000, 9));
    fs::remove_file(src.join("d/loop")).unwrap();
    node(
        &src.join("d/loop"),
        SFlag::S_IFBLK,
        0o660,
        7,
        1,
        (1_600_000_006, 7),
    );
    set_mtime(&src.join("d"), (1_600_000_002, 3));
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert!(o.err().contains("0 files and 3 special files sent"), "{o}");
    let dest = s.join("again");
    srv.client(argv!["restore", src, dest]).run().ok();
    let diff = rsync_diff(src, &dest);
    assert!(diff.is_empty(), "rsync sees differences:\n{diff}");
    assert_eq!(rdev(&dest.join("d/loop")), (7, 1));
}

#[test]
fn a_root_server_stores_real_specials_and_gives_them_back() {
    if !root_or_skip("mknod of devices") {
        return;
    }
    let srv = Server::start(&[]);
    let (s, src) = round_trip(&srv, true);
    changes_are_sent(&srv, &s, &src);
}

#[test]
fn a_server_that_is_not_root_keeps_devices_as_records_and_gives_them_back() {
    if !root_or_skip("a server run as another user") {
        return;
    }
    let srv = Server::start_as_user(NOBODY, &[]);
    let (s, src) = round_trip(&srv, false);
    changes_are_sent(&srv, &s, &src);
}

#[test]
fn a_client_that_is_not_root_restores_all_but_the_devices_and_says_so_once() {
    if !root_or_skip("a client run as another user") {
        return;
    }
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    specials_tree(&src);
    srv.client(argv!["backup", src]).run().ok();

    // A destination the unprivileged client may write, reachable by it.
    let base = s.join("nobody");
    fs::create_dir(&base).unwrap();
    std::os::unix::fs::chown(&base, Some(NOBODY), Some(NOBODY)).unwrap();
    chmod(s.path(), 0o711);
    let dest = base.join("dest");
    let o = srv
        .client(argv!["restore", src, dest])
        .as_user(NOBODY)
        .run();
    o.code_is(1);
    for dev in ["null", "d/loop"] {
        assert!(
            o.err()
                .lines()
                .any(|l| l.contains(dev) && l.contains("cannot create device node (needs root)")),
            "{dev} not named:\n{o}"
        );
        assert!(fs::symlink_metadata(dest.join(dev)).is_err(), "{dev} made");
    }
    assert!(
        o.err().contains(
            "rsb-client: 2 device nodes not created: cannot create device node (needs root)"
        ),
        "{o}"
    );
    assert!(o.err().contains("2 failed"), "{o}");
    // The rest is there, as it was.
    let md = |p: &str| fs::symlink_metadata(dest.join(p)).unwrap();
    assert!(md("fifo").file_type().is_fifo() && md("d/q").file_type().is_fifo());
    assert!(md("sock").file_type().is_socket());
    assert_eq!(md("fifo").mode() & 0o7777, 0o1751);
    assert_eq!(fs::read(dest.join("f")).unwrap(), b"plain\n");
    assert_eq!(
        (md("sock").mtime(), md("sock").mtime_nsec()),
        (1_600_000_004, 5)
    );
}

/// A tmpfs mounted for one test, unmounted when it ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Result<Tmpfs, String> {
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn one_file_system_keeps_the_mount_point_and_leaves_its_contents() {
    if !root_or_skip("mount") {
        return;
    }
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 3);
    let mnt = src.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let _disk = match Tmpfs::mount(&mnt) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: cannot mount a tmpfs ({why})");
            return;
        }
    };
    fs::write(mnt.join("other"), b"on another file system\n").unwrap();
    fs::create_dir(mnt.join("deeper")).unwrap();
    fs::write(mnt.join("deeper/x"), b"x").unwrap();

    // Without the option the backup goes across.
    let all = Server::start(&[]);
    all.client(argv!["backup", src]).run().ok();
    assert_eq!(
        fs::read(all.store(NAME, &mnt).join("other")).unwrap(),
        b"on another file system\n"
    );

    // With it, the mount point is an empty directory with its own mode and
    // mtime, and the rest of the tree is all there.
    let one = Server::start(&[]);
    one.client_opts(&["-o"], argv!["backup", src]).run().ok();
    let stored = one.store(NAME, &mnt);
    assert!(stored.is_dir());
    assert_eq!(fs::read_dir(&stored).unwrap().count(), 0);
    let (a, b) = (fs::metadata(&mnt).unwrap(), fs::metadata(&stored).unwrap());
    assert_eq!(
        (a.mode(), a.mtime(), a.mtime_nsec()),
        (b.mode(), b.mtime(), b.mtime_nsec())
    );
    // (`mnt` was compared above: skipped in `a`, it is "extra" in `b`.)
    let diffs: Vec<String> = tree_diff(&src, &one.store(NAME, &src), &[Path::new("mnt")])
        .into_iter()
        .filter(|d| !d.starts_with("\"mnt\": extra in b"))
        .collect();
    assert!(diffs.is_empty(), "{diffs:?}");

    // Named on the command line, the mount is backed up.
    one.client_opts(&["--one-file-system"], argv!["backup", mnt])
        .run()
        .ok();
    assert_eq!(fs::read(stored.join("deeper/x")).unwrap(), b"x");
}

#[test]
fn a_store_inside_the_backed_up_tree_is_never_backed_up_into_itself() {
    let s = scratch();
    let src = s.join("src");
    small_tree(&src, 4);
    let root = src.join("store");
    let srv = Server::start_at(&root, &[]);
    for _ in 0..2 {
        let o = srv.client(argv!["backup", src]).run();
        o.ok();
        assert!(
            o.err()
                .contains(&format!("{}: skipped: the server's store", root.display())),
            "{o}"
        );
    }
    // The namespace holds the tree and nothing of the store itself.
    let stored = srv.store(NAME, &src);
    assert!(!stored.join("store").exists(), "the store went into itself");
    assert_same_tree_except(&src, &stored, &[Path::new("store")]);
}
