//! Issue 13, plans: `rsb-client -n NAME HOST PORT agent` runs the plan
//! the server keeps for NAME in `DIR/.rsb-plans` and follows it: a plan
//! there before the start is run (its paths reach the store), a hand edit
//! while the agent runs is followed within seconds (a new path, watch ->
//! every), no plan means waiting until one comes, a removed plan stops the
//! protection with a line saying so, a server killed and started again is
//! found again, and a wrong secret ends the agent with status 2.

#[macro_use]
mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

/// Writes the plans file as a careful editor does (a new file renamed
/// over the old), so the server never reads half of it.
fn write_plans(root: &Path, text: &str) {
    fs::create_dir_all(root).unwrap();
    let tmp = root.join(".rsb-plans.edit");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, root.join(".rsb-plans")).unwrap();
}

/// `rsb-client -n t 127.0.0.1 PORT agent`, running.
fn agent(port: u16) -> Running {
    Cmd::client()
        .args(["-n", NAME, "127.0.0.1", &port.to_string(), "agent"])
        .timeout(Duration::from_secs(120))
        .spawn()
}

/// True once the store holds `abs` with exactly `bytes`.
fn stored(srv: &Server, abs: &Path, bytes: &[u8]) -> bool {
    fs::read(srv.store(NAME, abs)).is_ok_and(|b| b == bytes)
}

/// Waits for `abs` to be stored with `bytes`, or panics with the logs.
fn until_stored(srv: &Server, abs: &Path, bytes: &[u8], client: Running) -> Running {
    if eventually(Duration::from_secs(20), || stored(srv, abs, bytes)) {
        return client;
    }
    let out = client.kill9();
    panic!(
        "{} never reached the store\n{out}\nserver:\n{}",
        abs.display(),
        srv.log()
    );
}

/// SIGTERM: the agent ends by itself with status 0.
fn stop(client: Running) -> Output {
    client.signal(Signal::SIGTERM);
    let out = client.wait(Duration::from_secs(20));
    out.ok();
    out
}

#[test]
fn a_plan_in_the_file_is_run_and_a_hand_edit_is_followed() {
    let tmp = scratch();
    let root = tmp.join("root");
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    fs::create_dir_all(a.join("cache")).unwrap();
    fs::create_dir(&b).unwrap();
    fs::write(a.join("one"), b"first file").unwrap();
    fs::write(a.join("skip.tmp"), b"excluded").unwrap();
    fs::write(a.join("cache/c"), b"excluded too").unwrap();
    fs::write(b.join("two"), b"second root").unwrap();
    write_plans(
        &root,
        &format!(
            "# by hand\n[other]\npath {}\nevery 1h\n\n[t]\npath {}\nexclude *.tmp\nexclude cache/\nwatch 200ms   # quick\n",
            b.display(),
            a.display()
        ),
    );
    let srv = Server::start_at(&root, &[]);
    let client = agent(srv.port());
    let client = until_stored(&srv, &a.join("one"), b"first file", client);
    // Watch mode: a change is sent within the delay.
    fs::write(a.join("later"), b"a change").unwrap();
    let client = until_stored(&srv, &a.join("later"), b"a change", client);
    assert!(!srv.store(NAME, &a.join("skip.tmp")).exists());
    assert!(!srv.store(NAME, &a.join("cache")).exists());
    assert!(
        !srv.store(NAME, &b.join("two")).exists(),
        "another name's plan"
    );
    // A hand edit: a second path, and every instead of watch.
    write_plans(
        &root,
        &format!(
            "[t]\npath {}\npath {}\nexclude *.tmp\nevery 1s\n",
            a.display(),
            b.display()
        ),
    );
    let client = until_stored(&srv, &b.join("two"), b"second root", client);
    // `every 1s`: the next run takes a change along.
    fs::write(b.join("three"), b"by the next run").unwrap();
    let client = until_stored(&srv, &b.join("three"), b"by the next run", client);
    let out = stop(client);
    out.err_has("agent: plan: watch 200ms")
        .err_has("agent: plan changed: every 1s")
        .err_has("backup: ");
    assert!(
        srv.log().contains("plans:") && srv.log().contains("changed"),
        "{}",
        srv.log()
    );
}

#[test]
fn no_plan_waits_then_a_plan_runs_and_its_removal_stops_it() {
    let tmp = scratch();
    let root = tmp.join("root");
    let src = tmp.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"protected").unwrap();
    let srv = Server::start_at(&root, &[]);
    let client = agent(srv.port());
    std::thread::sleep(Duration::from_secs(2));
    assert!(!srv.ns(NAME).join(src.strip_prefix("/").unwrap()).exists());
    write_plans(
        &root,
        &format!("[t]\npath {}\nwatch 100ms\n", src.display()),
    );
    let client = until_stored(&srv, &src.join("f"), b"protected", client);
    // Removed: the agent stops protecting.
    write_plans(&root, "# nothing for t now\n");
    // Removal is picked up within the 2 s reload and ends the watch.
    std::thread::sleep(Duration::from_secs(4));
    fs::write(src.join("after"), b"unprotected").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !srv.store(NAME, &src.join("after")).exists(),
        "sent after its plan was removed"
    );
    let out = stop(client);
    out.err_has("agent: no plan for t yet; waiting")
        .err_has("agent: plan removed: t is no longer protected");
}

#[test]
fn the_server_killed_and_restarted_is_found_again() {
    let tmp = scratch();
    let root = tmp.join("root");
    let (src, more) = (tmp.join("src"), tmp.join("more"));
    fs::create_dir(&src).unwrap();
    fs::create_dir(&more).unwrap();
    fs::write(src.join("f"), b"before").unwrap();
    fs::write(more.join("g"), b"a path added after the restart").unwrap();
    write_plans(
        &root,
        &format!("[t]\npath {}\nwatch 100ms\n", src.display()),
    );
    let srv = Server::start_at(&root, &[]);
    let port = srv.port();
    let client = agent(port);
    let client = until_stored(&srv, &src.join("f"), b"before", client);
    drop(srv); // killed
    fs::write(src.join("while-away"), b"kept for later").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let mut client = client;
    assert!(!client.has_exited(), "the agent ended with its server");
    let srv = Server::start_on(&root, port, &[]);
    // The plan last heard of kept running: its change arrives.
    let client = until_stored(&srv, &src.join("while-away"), b"kept for later", client);
    // And the plan connection is back: an edit is followed.
    write_plans(
        &root,
        &format!(
            "[t]\npath {}\npath {}\nwatch 100ms\n",
            src.display(),
            more.display()
        ),
    );
    let client = until_stored(
        &srv,
        &more.join("g"),
        b"a path added after the restart",
        client,
    );
    let out = stop(client);
    out.err_has("plan connection")
        .err_has("agent: plan changed:");
}

#[test]
fn a_wrong_secret_ends_the_agent_with_status_2() {
    let srv = Server::start_with_secrets("t:right\n", &[]);
    let tmp = scratch();
    let file = write_private(&tmp.join("secret"), "wrong\n");
    let out = srv
        .client_keyed(NAME, &file, argv!["agent"])
        .timeout(Duration::from_secs(20))
        .run();
    out.code_is(2).err_has("authentication failed");
    assert!(out.elapsed < Duration::from_secs(10), "{out}");
}

#[test]
fn agent_is_a_command_of_its_own() {
    let srv = Server::start(&[]);
    srv.client(argv!["agent", "extra"])
        .run()
        .code_is(2)
        .err_has("usage: agent");
    Cmd::client()
        .args([
            "--every",
            "1m",
            "-n",
            NAME,
            "127.0.0.1",
            &srv.port().to_string(),
            "agent",
        ])
        .run()
        .code_is(2)
        .err_has("--every");
    srv.client(argv![])
        .stdin("agent\nquit\n")
        .run()
        .code_is(1)
        .err_has("agent runs as a command of its own");
}
