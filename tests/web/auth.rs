//! The web interface with `--secrets` and `--admin`: every request needs
//! Basic credentials of the secrets file (401 with `WWW-Authenticate:
//! Basic realm="rsb"` without them or with wrong ones); a client name sees
//! its own namespace and nobody else's (404, as if it did not exist), on
//! pages, downloads, tars and `/status.json`; an admin sees all; repeated
//! failures from one address are answered 429 with `Retry-After`, and
//! logged with the peer.

use std::path::{Path, PathBuf};

use super::http::*;
use crate::common::*;

const ALICE: &str = "alicebox";
const BOB: &str = "bobbox";
const BOSS: &str = "bossadmin";
const SECRETS: &str =
    "alicebox:alice-s3cr3t-horse\nbobbox:bob-s3cr3t-battery\nbossadmin:boss-s3cr3t-staple\n";

fn creds(name: &str) -> String {
    let secret = SECRETS
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap();
    format!("{name}:{secret}")
}

/// A secured server with a backup of a small tree by alicebox and one by
/// bobbox; returns it with each tree's root.
fn secured() -> (Server, Scratch, PathBuf, PathBuf) {
    let srv = Server::start_with_secrets(SECRETS, &["--http", "127.0.0.1:0", "--admin", BOSS]);
    let tmp = scratch();
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    for (name, dir, seed) in [(ALICE, &a, 1), (BOB, &b, 2)] {
        small_tree(dir, seed);
        let key = write_private(
            &tmp.join(format!("{name}.key")),
            format!("{}\n", creds(name).split_once(':').unwrap().1),
        );
        srv.client_keyed(name, &key, argv!["backup", dir])
            .run()
            .ok();
    }
    (srv, tmp, a, b)
}

fn get_as(port: u16, who: Option<&str>, path: &str) -> Resp {
    let u = url(port, path);
    match who {
        Some(c) => curl(&["-u", c, &u]),
        None => curl(&[&u]),
    }
}

fn a_txt(dir: &Path) -> PathBuf {
    dir.join("a.txt")
}

#[test]
fn credentials_are_needed_and_each_name_sees_only_its_own() {
    let (srv, _tmp, a, b) = secured();
    let port = srv.web_port();
    let (alice, bob, boss) = (creds(ALICE), creds(BOB), creds(BOSS));
    let alice_file = file_url(ALICE, &a_txt(&a));
    let bob_file = file_url(BOB, &a_txt(&b));

    // No credentials: 401 everywhere. Wrong ones, an unknown name, an
    // empty secret: 401 (three failures only, under any sane rate limit).
    let wrong = format!("{ALICE}:not-the-secret");
    let empty = format!("{ALICE}:");
    let listing = dir_url(ALICE, &a);
    let mut asks: Vec<(Option<&str>, &str)> =
        ["/", "/status.json", "/metrics", &alice_file, &listing]
            .into_iter()
            .map(|p| (None, p))
            .collect();
    asks.push((Some(&wrong), "/"));
    asks.push((Some("nobody:x"), &alice_file));
    asks.push((Some(&empty), "/status.json"));
    for (who, path) in asks {
        let r = get_as(port, who, path);
        assert_eq!(r.status, 401, "{who:?} {path}\n{}", r.show());
        let wa = r.must("www-authenticate");
        assert!(wa.starts_with("Basic realm=\"rsb\""), "{wa:?}");
        assert!(
            !contains(&r.body, b"hello 1"),
            "{who:?} {path}: content leaked"
        );
    }
    // Its own namespace: 200 with the bytes, the listing, the tar.
    let r = get_as(port, Some(&alice), &alice_file);
    r.status_is(200);
    assert_eq!(r.body, b"hello 1\n");
    get_as(port, Some(&alice), &dir_url(ALICE, &a)).status_is(200);
    let r = get_as(
        port,
        Some(&alice),
        &format!("{}/?format=tar", file_url(ALICE, &a)),
    );
    r.status_is(200);
    assert!(contains(&r.body, b"hello 1\n"));

    // Another's: 404, as for a name that does not exist, and no bytes.
    for path in [
        bob_file.clone(),
        dir_url(BOB, &b),
        format!("/browse/{BOB}/"),
        format!("{}/?format=tar", file_url(BOB, &b)),
        format!("/browse/{BOB}{}", enc_path(&a_txt(&b))),
    ] {
        let r = get_as(port, Some(&alice), &path);
        assert_eq!(r.status, 404, "alicebox GET {path}\n{}", r.show());
        assert!(!contains(&r.body, b"hello 2"), "{path}: bob's bytes leaked");
    }
    let unknown = get_as(port, Some(&alice), "/browse/nosuchname/");
    unknown.status_is(404);

    // The admin sees everything.
    for (path, bytes) in [(&alice_file, &b"hello 1\n"[..]), (&bob_file, b"hello 2\n")] {
        let r = get_as(port, Some(&boss), path);
        r.status_is(200);
        assert_eq!(r.body, bytes);
    }
    get_as(port, Some(&boss), &dir_url(BOB, &b)).status_is(200);

    // The dashboard and the live data: all names for the admin, only its
    // own for a client.
    for path in ["/", "/status.json"] {
        let r = get_as(port, Some(&boss), path);
        r.status_is(200);
        assert!(
            r.text().contains(ALICE) && r.text().contains(BOB),
            "{}",
            r.show()
        );
        let r = get_as(port, Some(&alice), path);
        r.status_is(200);
        assert!(r.text().contains(ALICE), "{path}\n{}", r.show());
        assert!(
            !r.text().contains(BOB),
            "alicebox's {path} names bobbox\n{}",
            r.show()
        );
        let r = get_as(port, Some(&bob), path);
        r.status_is(200);
        assert!(!r.text().contains(ALICE), "bobbox's {path} names alicebox");
    }
    // The secret never comes back in a page.
    let r = get_as(port, Some(&boss), "/");
    assert!(!r.text().contains("s3cr3t"), "a secret in the dashboard");
}

#[test]
fn repeated_failed_logins_from_one_address_get_429() {
    let srv = Server::start_with_secrets(SECRETS, &["--http", "127.0.0.1:0", "--admin", BOSS]);
    let port = srv.web_port();
    let mut statuses = Vec::new();
    let mut limited = None;
    for i in 0..60 {
        let r = get_as(port, Some(&format!("{ALICE}:wrong-{i}")), "/");
        statuses.push(r.status);
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 401, "attempt {i}\n{}", r.show());
    }
    let r = limited.unwrap_or_else(|| panic!("no 429 after 60 failures: {statuses:?}"));
    assert_eq!(statuses[0], 401, "{statuses:?}");
    let retry: u64 = r
        .must("retry-after")
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After is not seconds\n{}", r.show()));
    assert!(retry >= 1, "{}", r.show());
    // While limited, even good credentials are held off from this address.
    let r = get_as(port, Some(&creds(ALICE)), "/");
    assert_eq!(r.status, 429, "{}", r.show());
    // The failures are in the log with the peer.
    let log = srv.log();
    assert!(
        log.lines().any(|l| l.contains(ALICE)
            && l.contains("127.0.0.1")
            && l.to_lowercase().contains("fail")),
        "no failed-login line naming the peer:\n{log}"
    );
}
