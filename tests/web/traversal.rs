//! Targets that try to leave the namespace or the root, sent exactly as
//! written (raw sockets, and curl `--path-as-is`): encoded dots, encoded
//! slashes, NUL, `..`, `//`, an absolute-form target; and symlinks stored
//! in the namespace that point outside (to /etc/passwd, to /etc, up the
//! tree), which the server must never follow, neither for a download nor
//! for a listing. The evidence is bytes: no answer holds /etc/passwd's.

use std::fs;

use super::http::*;
use crate::common::*;

/// The first line of the machine's /etc/passwd: what must never come back.
fn passwd_marker() -> Vec<u8> {
    let p = fs::read("/etc/passwd").expect("read /etc/passwd");
    p.split(|&b| b == b'\n').next().unwrap().to_vec()
}

fn no_passwd(r: &Resp, what: &str) {
    let m = passwd_marker();
    assert!(
        !contains(&r.body, &m) && !contains(&r.head, &m),
        "{what}: /etc/passwd came back\n{}",
        r.show()
    );
}

#[test]
fn traversal_targets_are_refused() {
    let srv = web_server(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    let mut t = Tree::new(&src, 0o755, (1_600_000_000, 0));
    t.file("f.txt", b"inside\n", 0o644, (1_600_000_001, 0))
        .finish();
    backup(&srv, NAME, &src);
    let port = srv.web_port();
    let base = file_url(NAME, &src);
    let ups = "/..".repeat(12);
    // Each must be 400 (a target no path can be).
    let bad: Vec<String> = vec![
        format!("{base}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd"),
        format!("{base}/%2E%2E/f.txt"),
        format!("/files/{NAME}/%2e%2e/%2e%2e/%2e%2e/etc/passwd"),
        format!("/files/%2e%2e/%2e%2e/etc/passwd"),
        format!("{base}{ups}/etc/passwd"),
        format!("/files/{NAME}/../../../../../../../../etc/passwd"),
        format!("{base}/./f.txt"),
        format!("{base}/%2e/f.txt"),
        format!("/files/{NAME}/%2fetc%2fpasswd"),
        format!("{base}/..%2f..%2f..%2f..%2fetc%2fpasswd"),
        format!("{base}/f.txt%00.png"),
        format!("{base}/%00"),
        format!("/browse/{NAME}/%2e%2e/%2e%2e/etc/"),
        format!("/browse/{NAME}/../../etc/"),
        format!("/browse/{NAME}/%2fetc/"),
    ];
    for target in &bad {
        let r = raw_get(port, target.as_bytes(), "");
        assert_eq!(r.status, 400, "{target}\n{}", r.show());
        no_passwd(&r, target);
    }
    // `//` (an empty segment), a backslash form and absolute-form targets:
    // refused (400) or not found (404), never a file outside.
    let host = format!("http://127.0.0.1:{port}");
    let odd: Vec<String> = vec![
        format!("/files/{NAME}//etc/passwd"),
        format!("{base}//f.txt"),
        format!("/files/{NAME}/..\\..\\..\\etc\\passwd"),
        format!("{host}/files/{NAME}/../../../../etc/passwd"),
        format!("{host}/files/{NAME}/%2e%2e/%2e%2e/etc/passwd"),
        format!("http://evil.example/files/{NAME}/%2e%2e/etc/passwd"),
        "/etc/passwd".to_string(),
        "/files/../../../../etc/passwd".to_string(),
        "*".to_string(),
    ];
    for target in &odd {
        let r = raw_get(port, target.as_bytes(), "");
        assert!(matches!(r.status, 400 | 404), "{target}\n{}", r.show());
        no_passwd(&r, target);
    }
    // curl with --path-as-is sends the dots as they are.
    for p in [
        format!("{base}/../../../../../../etc/passwd"),
        format!("/files/{NAME}/../../etc/passwd"),
    ] {
        let r = curl(&["--path-as-is", &url(port, &p)]);
        assert_eq!(r.status, 400, "{p}\n{}", r.show());
        no_passwd(&r, &p);
    }
    // The file itself still comes, plain and encoded.
    let r = raw_get(port, format!("{base}/f.txt").as_bytes(), "");
    r.status_is(200);
    assert_eq!(r.body, b"inside\n");
    let r = raw_get(port, format!("{base}/f%2Etxt").as_bytes(), "");
    r.status_is(200);
    assert_eq!(r.body, b"inside\n");
}

#[test]
fn stored_symlinks_pointing_outside_are_never_followed() {
    let srv = web_server(&[]);
    let tmp = scratch();
    let src = tmp.join("src");
    let ups = "../".repeat(20);
    let mut t = Tree::new(&src, 0o755, (1_600_000_000, 0));
    t.file("f.txt", b"inside\n", 0o644, (1_600_000_001, 0))
        .link("x", "/etc/passwd", (1_600_000_002, 0))
        .link("etc", "/etc", (1_600_000_003, 0))
        .link("up", format!("{ups}etc/passwd"), (1_600_000_004, 0))
        .link("updir", format!("{ups}etc"), (1_600_000_005, 0))
        .link("root", "/", (1_600_000_006, 0))
        .finish();
    backup(&srv, NAME, &src);
    let port = srv.web_port();
    // The store holds the links as links (what the rest relies on).
    assert!(fs::symlink_metadata(srv.store(NAME, &src.join("x")))
        .unwrap()
        .file_type()
        .is_symlink());
    for l in ["x", "up"] {
        let target = file_url(NAME, &src.join(l));
        let r = curl(&["--path-as-is", &url(port, &target)]);
        no_passwd(&r, &target);
        assert!(
            r.status != 200 || r.body.len() < 64,
            "{target}\n{}",
            r.show()
        );
    }
    // Through a symlinked directory: no file, no listing, no tar.
    for (dir, file) in [
        ("etc", "passwd"),
        ("updir", "passwd"),
        ("root", "etc/passwd"),
    ] {
        let target = file_url(NAME, &src.join(dir).join(file));
        let r = curl(&[&url(port, &target)]);
        assert!(matches!(r.status, 400 | 404), "{target}\n{}", r.show());
        no_passwd(&r, &target);
        let listing = dir_url(NAME, &src.join(dir));
        let r = curl(&[&url(port, &listing)]);
        assert!(
            r.status / 100 == 4 || !r.text().contains("passwd"),
            "{listing} lists /etc\n{}",
            r.show()
        );
        assert!(
            r.status != 200 || !r.text().contains("shadow"),
            "{}",
            r.show()
        );
        let tar = format!("{}/?format=tar", file_url(NAME, &src.join(dir)));
        let r = curl(&[&url(port, &tar)]);
        no_passwd(&r, &tar);
        assert!(
            !contains(&r.body, b"shadow") && !contains(&r.body, b"hostname"),
            "{tar} streamed /etc\n{}",
            r.show()
        );
    }
    // A tar of the whole tree holds the links, not their targets.
    let tar = format!("{}/?format=tar", file_url(NAME, &src));
    let r = curl(&[&url(port, &tar)]);
    r.status_is(200);
    no_passwd(&r, &tar);
    assert!(
        contains(&r.body, b"/etc/passwd"),
        "the link's target is missing from the tar"
    );
}
