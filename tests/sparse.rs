//! Sparse files: their holes are neither sent nor allocated, in the store
//! or after a restore, and their contents still come back bit for bit.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use common::*;

const MIB: u64 = 1 << 20;

/// Writes `runs` (offset, length) of data into a new file of `size` bytes
/// whose every other byte is a hole; returns the data bytes written.
fn sparse_file(p: &Path, size: u64, runs: &[(u64, u64)]) -> u64 {
    let f = fs::File::create(p).unwrap();
    let mut n = 0;
    for (i, &(at, len)) in runs.iter().enumerate() {
        let data: Vec<u8> = (0..len).map(|k| (k as u8) ^ (i as u8 + 1)).collect();
        f.write_all_at(&data, at).unwrap();
        n += len;
    }
    f.set_len(size).unwrap();
    n
}

fn allocated(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().blocks() * 512
}

/// The bytes moved by a command, from its summary line.
fn moved(o: &Output, cmd: &str) -> u64 {
    summary_bytes(&o.err(), cmd).unwrap_or_else(|| panic!("no summary\n{o}"))
}

#[test]
fn sparse_files_round_trip_without_their_holes_on_the_wire_in_the_store_or_restored() {
    let srv = Server::start(&[]);
    let s = scratch();
    let src = s.join("src");
    fs::create_dir(&src).unwrap();
    // Holes at both ends and in the middle; one large file (offered in a
    // restore), one small, one that is all hole, one dense.
    let mut data = sparse_file(
        &src.join("disk.img"),
        256 * MIB,
        &[(MIB, 300 * 1024), (100 * MIB, MIB + 7)],
    );
    data += sparse_file(&src.join("small"), 600 * 1024, &[(200 * 1024, 4096)]);
    data += sparse_file(&src.join("hole"), 8 * MIB, &[]);
    fs::write(src.join("dense"), vec![5u8; 100_000]).unwrap();
    data += 100_000;
    if allocated(&src.join("disk.img")) > 4 * MIB {
        eprintln!("this file system makes no holes; skipped");
        return;
    }
    let logical = 256 * MIB + 600 * 1024 + 8 * MIB + 100_000;
    // The file system rounds each run of data to its blocks.
    let slack = 8 * 65536;

    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    let sent = moved(&o, "backup");
    assert!(
        (data..data + slack).contains(&sent),
        "backup sent {sent} bytes for {data} bytes of data ({logical} logical)\n{o}"
    );
    let stored = srv.store(NAME, &src);
    assert_same_tree(&src, &stored);
    for name in ["disk.img", "small", "hole"] {
        let (a, b) = (allocated(&src.join(name)), allocated(&stored.join(name)));
        assert!(
            b <= a + slack,
            "{name}: {b} bytes allocated in the store, {a} at the source"
        );
    }
    assert_eq!(fs::metadata(stored.join("hole")).unwrap().len(), 8 * MIB);
    srv.client(argv!["verify"]).run().ok();

    let dest = s.join("dest");
    fs::create_dir(&dest).unwrap();
    let o = srv.client(argv!["restore", src, dest]).run();
    o.ok();
    let got = moved(&o, "restore");
    assert!(
        (data..data + slack).contains(&got),
        "restore received {got} bytes for {data} bytes of data\n{o}"
    );
    let back = dest.join("src");
    assert_same_tree(&src, &back);
    for name in ["disk.img", "small", "hole"] {
        let (a, b) = (allocated(&src.join(name)), allocated(&back.join(name)));
        assert!(
            b <= a + slack,
            "{name}: {b} bytes allocated after the restore, {a} at the source"
        );
    }

    // Unchanged: nothing goes again. A changed byte in a hole makes data
    // there, and the file is sent again with its new layout.
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    assert_eq!(moved(&o, "backup"), 0, "{o}");
    let f = fs::OpenOptions::new()
        .write(true)
        .open(src.join("disk.img"))
        .unwrap();
    f.write_all_at(b"new", 200 * MIB).unwrap();
    drop(f);
    let o = srv.client(argv!["backup", src]).run();
    o.ok();
    let sent = moved(&o, "backup");
    assert!(sent < 2 * MIB + slack, "{sent}\n{o}");
    assert_same_tree(&src, &stored);
}
