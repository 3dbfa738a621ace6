//! Self-tests of the test harness (no rsb binaries involved): the tree
//! comparison sees every difference it claims to, and `cp -a` copies of the
//! awkward tree compare equal.

#[macro_use]
mod common;

use std::fs;
use std::path::Path;

use common::*;

#[test]
fn awkward_tree_equals_its_cp_a_copy() {
    let s = scratch();
    let src = s.join("src");
    let tree = awkward_tree(&src);
    assert!(tree.bytes > 5 << 20);
    let o = Cmd::new("cp").args(argv!["-a", src, s.join("copy")]).run();
    o.ok();
    assert_same_tree(&src, &s.join("copy"));
}

#[test]
fn tree_diff_sees_every_kind_of_difference() {
    let s = scratch();
    let a = s.join("a");
    small_tree(&a, 1);
    let copy = |name: &str| {
        let b = s.join(name);
        Cmd::new("cp").args(argv!["-a", a, b]).run().ok();
        assert!(tree_diff(&a, &b, &[]).is_empty());
        b
    };
    let b = copy("mtime");
    set_mtime(&b.join("a.txt"), (1_600_000_001, 3));
    assert_eq!(tree_diff(&a, &b, &[]).len(), 1, "nanosecond mtime");
    let b = copy("mode");
    chmod(&b.join("sub/b.bin"), 0o640);
    assert_eq!(tree_diff(&a, &b, &[]).len(), 1, "mode");
    let b = copy("content");
    let mut c = fs::read(b.join("sub/b.bin")).unwrap();
    c[1000] ^= 1;
    fs::write(b.join("sub/b.bin"), c).unwrap();
    set_mtime(&b.join("sub/b.bin"), (1_600_000_003, 4));
    assert_eq!(tree_diff(&a, &b, &[]).len(), 1, "content");
    let b = copy("target");
    fs::remove_file(b.join("sub/l")).unwrap();
    std::os::unix::fs::symlink("../b.txt", b.join("sub/l")).unwrap();
    set_mtime(&b.join("sub/l"), (1_600_000_004, 5));
    set_mtime(&b.join("sub"), (1_600_000_002, 3));
    assert_eq!(tree_diff(&a, &b, &[]).len(), 1, "link target");
    let b = copy("extra");
    fs::write(b.join(".rsb-tmp.x"), "").unwrap();
    set_mtime(&b, (1_600_000_000, 1));
    assert_eq!(tree_diff(&a, &b, &[]), vec!["\".rsb-tmp.x\": extra in b"]);
    assert_eq!(find_tmp(&s.join("extra")), vec![b.join(".rsb-tmp.x")]);
    let d = tree_diff(&b, &a, &[Path::new(".rsb-tmp.x")]);
    assert!(d.iter().all(|l| l.contains("mtime")), "{d:?}");
}

#[test]
fn listening_line_and_summary_parse() {
    assert_eq!(
        parse_listening("rsb-server: INFO: listening on 127.0.0.1:43567, root /b\n"),
        Some(43567)
    );
    assert_eq!(
        parse_listening("rsb-server: INFO: listening on [::1]:5000\n"),
        Some(5000)
    );
    assert_eq!(parse_listening("rsb-server: INFO: other"), None);
    let e = "rsb-client: /x: skipped\nbackup: 12 files sent, 3 unchanged, 1 not supported, 0 failed, 5242897 bytes in 0.42s (11.9 MiB/s)\n";
    assert_eq!(summary_bytes(e, "backup"), Some(5242897));
    assert_eq!(summary_bytes(e, "restore"), None);
}

#[test]
fn garbage_used_by_hostile_tests_is_not_a_valid_frame_prefix() {
    use rsb::proto::decode;
    assert!(decode(&random_bytes(1, 100_000)).is_err());
    for i in 0..50usize {
        let b = random_bytes(i as u64, 64 + i * 37);
        assert!(decode(&b).is_err(), "seed {i} starts a plausible frame");
    }
}
