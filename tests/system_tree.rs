//! Issue 10's proof: a tree with every kind of thing a file system holds
//! (owners, set-id bits, a hard-link group across directories, extended
//! attributes of each namespace, a file capability, an access ACL and a
//! directory's default ACL, a sparse file with holes at both ends and in
//! the middle, a FIFO, a character device, a socket) is backed up and
//! restored, and rsync (`-aHAXn --numeric-ids --checksum
//! --itemize-changes`) finds no difference: with a root server and with
//! one run as an ordinary user. Run as root (CI is); skipped otherwise.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use common::*;

/// The user the unprivileged server runs as.
const NOBODY: u32 = 65534;

const MIB: u64 = 1 << 20;

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {p:?}: {e}"));
}

/// Builds the tree under `root`/src and returns its path.
fn system_tree(root: &Path) -> PathBuf {
    let src = root.join("src");
    for d in ["etc", "bin", "home/ann", "srv/share", "var/lib", "dev"] {
        fs::create_dir_all(src.join(d)).unwrap();
    }
    let t = (1_700_000_000, 123_456_789);
    // Owners: a file of a named user (daemon, 1), one of ids nobody has.
    fs::write(src.join("home/ann/notes"), b"ann's notes\n").unwrap();
    chown(&src.join("home/ann/notes"), 1000, 1000);
    chown(&src.join("home/ann"), 1000, 1000);
    fs::write(src.join("var/lib/state"), b"state").unwrap();
    chown(&src.join("var/lib/state"), 1, 1);
    fs::write(src.join("var/lib/orphan"), b"nobody's").unwrap();
    chown(&src.join("var/lib/orphan"), 4321, 8765);
    // Set-user-ID and set-group-ID, on a file and a directory.
    fs::write(src.join("bin/su"), b"\x7fELF pretend").unwrap();
    chmod(&src.join("bin/su"), 0o4755);
    fs::write(src.join("bin/wall"), b"\x7fELF pretend too").unwrap();
    chown(&src.join("bin/wall"), 0, 5);
    chmod(&src.join("bin/wall"), 0o2755);
    chown(&src.join("srv/share"), 0, 100);
    chmod(&src.join("srv/share"), 0o2775);
    // A hard-link group across directories.
    fs::write(src.join("etc/driver"), vec![3u8; 70_000]).unwrap();
    fs::hard_link(src.join("etc/driver"), src.join("bin/driver")).unwrap();
    fs::hard_link(src.join("etc/driver"), src.join("var/lib/driver.bak")).unwrap();
    // Extended attributes of each namespace, a capability, ACLs.
    fs::write(src.join("bin/ping"), b"\x7fELF ping").unwrap();
    tool(
        "setcap",
        &[
            "cap_net_raw+ep",
            &src.join("bin/ping").display().to_string(),
        ],
    );
    set_xattr(&src.join("home/ann/notes"), "user.mime_type", b"text/plain");
    set_xattr(&src.join("home/ann/notes"), "trusted.md5", b"0123");
    set_xattr(&src.join("home/ann/notes"), "security.test", b"label");
    set_xattr(&src.join("etc"), "user.dir", b"etc");
    tool(
        "setfacl",
        &[
            "-m",
            "u:1000:rw,g:100:r",
            &src.join("etc/driver").display().to_string(),
        ],
    );
    tool(
        "setfacl",
        &[
            "-m",
            "u:1000:rwx",
            "-d",
            "-m",
            "u:1000:rwx,g:100:rx",
            &src.join("srv/share").display().to_string(),
        ],
    );
    // A sparse file: holes at both ends and in the middle.
    let f = fs::File::create(src.join("var/lib/disk.img")).unwrap();
    f.write_all_at(&[0xa5; 8192], MIB).unwrap();
    f.write_all_at(&[0x5a; 4096], 2 * MIB).unwrap();
    f.set_len(3 * MIB).unwrap();
    drop(f);
    // A FIFO, a character device, a socket.
    mknod(
        &src.join("dev/fifo"),
        SFlag::S_IFIFO,
        Mode::from_bits_truncate(0o620),
        0,
    )
    .unwrap();
    mknod(
        &src.join("dev/null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .unwrap();
    chmod(&src.join("dev/null"), 0o666);
    drop(std::os::unix::net::UnixListener::bind(src.join("dev/sock")).unwrap());
    // A symlink, then times last (deepest first).
    std::os::unix::fs::symlink("../etc/driver", src.join("bin/link")).unwrap();
    for p in [
        "home/ann/notes",
        "var/lib/state",
        "var/lib/orphan",
        "bin/su",
        "bin/wall",
        "etc/driver",
        "bin/ping",
        "var/lib/disk.img",
        "dev/fifo",
        "dev/null",
        "dev/sock",
        "bin/link",
        "home/ann",
        "home",
        "srv/share",
        "srv",
        "var/lib",
        "var",
        "etc",
        "bin",
        "dev",
        "",
    ] {
        set_mtime(&src.join(p), t);
    }
    src
}

fn allocated(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().blocks() * 512
}

fn everything_comes_back(srv: &Server) {
    let s = scratch();
    let src = system_tree(s.path());
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    let stored = srv.store(NAME, &src);
    // The link group is one inode in the store; the sparse file's holes
    // are not allocated there.
    let ino = |p: &str| fs::symlink_metadata(stored.join(p)).unwrap().ino();
    assert_eq!(ino("etc/driver"), ino("bin/driver"));
    assert_eq!(ino("etc/driver"), ino("var/lib/driver.bak"));
    assert!(allocated(&stored.join("var/lib/disk.img")) <= 256 * 1024);

    // Unchanged: nothing is sent again.
    srv.client(argv!["backup", src]).run().sent_nothing();

    let dest = s.join("restored");
    fs::create_dir(&dest).unwrap();
    srv.client(argv!["restore", src, dest]).run().ok();
    let back = dest.join("src");
    assert_eq!(
        rsync_diff_with(&["-aHAXn"], &src, &back),
        "",
        "rsync finds differences between {} and {}",
        src.display(),
        back.display()
    );
    assert!(allocated(&back.join("var/lib/disk.img")) <= 256 * 1024);
}

#[test]
fn a_whole_system_tree_comes_back_as_it_was() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: owners, devices and trusted.* need root");
        return;
    }
    everything_comes_back(&Server::start(&[]));
}

#[test]
fn a_whole_system_tree_comes_back_from_a_server_that_is_not_root() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: a server run as another user needs root");
        return;
    }
    everything_comes_back(&Server::start_as_user(NOBODY, &[]));
}
