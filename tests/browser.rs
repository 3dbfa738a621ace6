//! The web interface in a real browser: Debian's headless Chromium loads
//! the dashboard and a directory listing of a real `rsb-server --http
//! 127.0.0.1:0` holding two clients' backups (`laptop`, twice, and `nas`),
//! runs the dashboard's `live.js`, and gives back its DOM (`--dump-dom`) and
//! a screenshot (`--screenshot`) of each page.
//!
//! The DOM must hold both clients with their last-backup cells, the
//! live badge that only a successful poll of `/status.json` by the script
//! fills in, every entry of the listing (a hostile name as text, no
//! element from it), each file's download link and each directory's tar
//! link. Each screenshot must be a PNG of the window's size and hold more
//! than a blank page's.
//!
//! `RSB_SCREENSHOTS=DIR` copies the screenshots to `DIR/dashboard.png` and
//! `DIR/listing.png` (the README's are made so). Without
//! `/usr/bin/chromium` the test says it skips, unless
//! `RSB_REQUIRE_CHROMIUM=1` (CI sets it), when it fails.
//!
//! Every Chromium run is bounded ([`CHROMIUM_MAX`]): its process group is
//! killed at the bound, and after every run, so no helper outlives it.

#[macro_use]
mod common;

// The web tests' helpers (URLs, `href` scans); not all of them are used here.
#[allow(dead_code)]
#[path = "web/http.rs"]
mod http;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use http::*;

/// Debian's Chromium (its launcher script).
const CHROMIUM: &str = "/usr/bin/chromium";
/// The flags of every run: headless, no sandbox (the tests run as root),
/// nothing fetched from anywhere but the server under test.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];
/// The virtual time a page gets before its DOM or picture is taken:
/// `live.js` polls first after 2 s, then every 2 s.
const VIRTUAL_TIME: &str = "--virtual-time-budget=5000";
/// The window, and so the screenshot's size.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;
/// The bound on one Chromium run.
const CHROMIUM_MAX: Duration = Duration::from_secs(60);

/// The hostile name of the listing: markup, an ampersand and quotes.
const HOSTILE: &str = "a <b> & \"c\".txt";

/// What one Chromium run left: its stdout (the DOM for `--dump-dom`), its
/// stderr, and how long it took.
struct Run {
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
}

/// Runs Chromium with [`FLAGS`], a fresh profile under `work/tag` and
/// `args`; panics if it runs past [`CHROMIUM_MAX`] or fails.
fn chromium(work: &Path, tag: &str, args: &[String]) -> Run {
    use nix::sys::signal::{killpg, Signal};
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    use nix::unistd::Pid;
    use std::os::unix::process::CommandExt;

    let dir = work.join(tag);
    fs::create_dir(&dir).unwrap();
    let out_path = dir.join("stdout");
    let err_path = dir.join("stderr");
    let mut cmd = Command::new(CHROMIUM);
    cmd.args(FLAGS)
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        // Whatever Chromium writes outside its profile stays here too.
        .env("HOME", &dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .stdin(Stdio::null())
        // Files, not pipes: a helper that outlived the browser would hold
        // a pipe open.
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {CHROMIUM}: {e}"));
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    // Waits for the launcher to exit without reaping it, so its process
    // group's id stays ours while the group is killed.
    let exited = loop {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(pid), flags) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => break true,
            Err(e) => panic!("waitid on chromium: {e}"),
        }
        if start.elapsed() > CHROMIUM_MAX {
            break false;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = killpg(pid, Signal::SIGKILL);
    let status = child.wait().unwrap();
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&fs::read(&err_path).unwrap()).into_owned();
    assert!(
        exited,
        "chromium {args:?} still ran after {CHROMIUM_MAX:?}; killed. stderr:\n{stderr}"
    );
    assert!(
        status.success(),
        "chromium {args:?}: {status}; stderr:\n{stderr}"
    );
    eprintln!("chromium {tag}: {} ms", elapsed.as_millis());
    Run {
        stdout: fs::read(&out_path).unwrap(),
        stderr,
        elapsed,
    }
}

/// The page at `url` as Chromium's DOM after [`VIRTUAL_TIME`].
fn dump_dom(work: &Path, tag: &str, url: &str) -> String {
    let run = chromium(
        work,
        tag,
        &[
            VIRTUAL_TIME.to_string(),
            "--dump-dom".to_string(),
            url.to_string(),
        ],
    );
    let dom = String::from_utf8(run.stdout).expect("a UTF-8 DOM");
    assert!(
        dom.contains("</html>"),
        "no DOM from {url}; stderr:\n{}",
        run.stderr
    );
    dom
}

/// A screenshot of the page at `url` after [`VIRTUAL_TIME`], as PNG
/// bytes, and how long it took.
fn screenshot(work: &Path, tag: &str, url: &str) -> (Vec<u8>, Duration) {
    let file = work.join(format!("{tag}.png"));
    let run = chromium(
        work,
        tag,
        &[
            VIRTUAL_TIME.to_string(),
            format!("--screenshot={}", file.display()),
            format!("--window-size={WIDTH},{HEIGHT}"),
            url.to_string(),
        ],
    );
    let png = fs::read(&file)
        .unwrap_or_else(|e| panic!("no screenshot of {url} ({e}); stderr:\n{}", run.stderr));
    (png, run.elapsed)
}

/// A PNG's width and height, from its signature and IHDR chunk (the first
/// chunk, by the PNG specification); panics if `png` is not one.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 33, "{} bytes are no PNG", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "no PNG signature");
    assert_eq!(&png[8..12], &13u32.to_be_bytes(), "IHDR is not 13 bytes");
    assert_eq!(&png[12..16], b"IHDR", "the first chunk is not IHDR");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// The element of `id` in `dom`: its start tag and the text up to the
/// next tag (enough for the cells and the badge, which hold text only).
fn by_id<'a>(dom: &'a str, id: &str) -> (&'a str, &'a str) {
    let needle = format!("id=\"{id}\"");
    let at = dom
        .find(&needle)
        .unwrap_or_else(|| panic!("no element of id {id:?} in the DOM:\n{dom}"));
    let open = dom[..at].rfind('<').unwrap();
    let close = at + dom[at..].find('>').unwrap();
    let text_end = close + 1 + dom[close + 1..].find('<').unwrap();
    (&dom[open..=close], &dom[close + 1..text_end])
}

/// `s` as Chromium serializes a text node: `&`, `<`, `>` as entities.
fn as_text_node(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A laptop's home: documents, photos, a project, dotfiles, a symlink and
/// the hostile name; sizes from a few bytes to 600 KiB.
fn laptop_tree(home: &Path) -> Tree {
    let t0 = 1_714_000_000; // April 2024
    let mut t = Tree::new(home, 0o755, (t0, 0));
    t.file(
        ".bashrc",
        &text_bytes("export EDITOR=vi\n", 60),
        0o644,
        (t0 - 86_400 * 400, 0),
    )
    .file(
        "notes.txt",
        &text_bytes("buy milk; call the plumber\n", 40),
        0o644,
        (t0 + 3_600, 0),
    )
    .file(
        "todo.md",
        b"- back up the nas\n- renew the certificate\n",
        0o644,
        (t0 + 7_200, 0),
    )
    .file(HOSTILE, b"a name that is markup\n", 0o644, (t0 + 60, 0))
    .dir("Documents", 0o755, (t0 + 10_000, 0))
    .file(
        "Documents/report-2024.pdf",
        &random_bytes(1, 190_000),
        0o644,
        (t0 + 9_000, 0),
    )
    .file(
        "Documents/taxes.ods",
        &random_bytes(2, 41_000),
        0o600,
        (t0 + 8_000, 0),
    )
    .dir("Photos", 0o755, (t0 + 20_000, 0))
    .file(
        "Photos/holiday-001.jpg",
        &random_bytes(3, 600_000),
        0o644,
        (t0 + 19_000, 0),
    )
    .file(
        "Photos/holiday-002.jpg",
        &random_bytes(4, 420_000),
        0o644,
        (t0 + 19_500, 0),
    )
    .dir("projects", 0o755, (t0 + 30_000, 0))
    .dir("projects/rsb", 0o755, (t0 + 30_000, 0))
    .file(
        "projects/rsb/Cargo.toml",
        b"[package]\nname = \"rsb\"\n",
        0o644,
        (t0 + 29_000, 0),
    )
    .link(
        "latest-report",
        "Documents/report-2024.pdf",
        (t0 + 9_500, 0),
    )
    .finish();
    t
}

/// A NAS's media share: music, films, a database.
fn nas_tree(share: &Path) -> Tree {
    let t0 = 1_712_000_000;
    let mut t = Tree::new(share, 0o755, (t0, 0));
    t.dir("music", 0o755, (t0 + 100, 0))
        .file(
            "music/track-01.flac",
            &random_bytes(5, 700_000),
            0o644,
            (t0 + 50, 0),
        )
        .dir("films", 0o755, (t0 + 200, 0))
        .file(
            "films/README",
            b"films live on the other disk\n",
            0o644,
            (t0 + 150, 0),
        )
        .file(
            "library.db",
            &random_bytes(6, 300_000),
            0o640,
            (t0 + 300, 0),
        )
        .finish();
    t
}

/// Client `name`'s space cell in `/status.json` once the server measured
/// it (within 20 s).
fn measured_space(port: u16, name: &str) -> String {
    let status = url(port, "/status.json");
    let start = Instant::now();
    loop {
        let r = curl(&[&status]);
        r.status_is(200);
        let json = r.text();
        let client = format!("\"name\":{name:?}");
        let at = json
            .find(&client)
            .unwrap_or_else(|| panic!("no {name} in {json}"));
        let key = "\"space\":\"";
        let from = at + json[at..].find(key).unwrap() + key.len();
        let space = &json[from..from + json[from..].find('"').unwrap()];
        if space != "not measured yet" {
            return space.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name}'s space not measured after 20 s: {json}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// `line` repeated `n` times.
fn text_bytes(line: &str, n: usize) -> Vec<u8> {
    line.repeat(n).into_bytes()
}

#[test]
fn chromium_loads_the_dashboard_and_a_listing() {
    if !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var("RSB_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "RSB_REQUIRE_CHROMIUM=1 but {CHROMIUM} is missing (apt-get install chromium)"
        );
        eprintln!("skipping: chromium not installed ({CHROMIUM} is missing)");
        return;
    }
    let started = Instant::now();
    let store = scratch();
    let root = store.join("root");
    let srv = Server::start_at(&root, &["--http", "127.0.0.1:0"]);
    let tmp = scratch();
    let home = tmp.join("laptop/home/ann");
    let share = tmp.join("nas/srv/media");
    laptop_tree(&home);
    nas_tree(&share);
    // Twice for the laptop, a file changed between, so it has history.
    backup(&srv, "laptop", &home);
    fs::write(home.join("notes.txt"), text_bytes("and the dentist\n", 90)).unwrap();
    backup(&srv, "laptop", &home);
    backup(&srv, "nas", &share);
    // A server measures its namespaces 2 s after it starts, then every
    // 15 minutes: a restarted one shows the space of these backups (and
    // keeps their last runs in DIR/.rsb-status). Stopped as a service
    // manager does, with SIGTERM: the last client's close may still be
    // on its way to the loop when its client exits, and a stopping server
    // handles it before it exits (a SIGKILL here raced it and lost nas's
    // last run, which the server writes when a connection closes).
    srv.stop();
    let srv = Server::start_at(&root, &["--http", "127.0.0.1:0"]);
    let port = srv.web_port();
    for name in ["laptop", "nas"] {
        let space = measured_space(port, name);
        assert!(
            space.contains(" current, ") && space.ends_with(" entries"),
            "{name}'s space: {space}"
        );
        // The laptop's old notes.txt is in its history.
        assert_eq!(
            space.contains(" 0 B history"),
            name == "nas",
            "{name}'s space: {space}"
        );
    }

    let work_dir = scratch();
    let work = work_dir.path();
    let dashboard = url(port, "/");
    let listing = url(port, &dir_url("laptop", &home));

    // The dashboard: both clients, their last backups, and the badge that
    // live.js fills in only after it polled /status.json and applied it.
    let served = curl(&[&dashboard]);
    served.status_is(200);
    let served = served.text();
    let (badge, text) = by_id(&served, "live");
    assert!(
        !badge.contains("data-state") && text.is_empty(),
        "the server's page already has a live badge: {badge}{text}"
    );
    let dom = dump_dom(work, "dashboard-dom", &dashboard);
    for name in ["laptop", "nas"] {
        by_id(&dom, &format!("client-{name}"));
        let (_, last) = by_id(&dom, &format!("c-{name}-last"));
        assert!(
            last.len() == "2024-05-01 12:34:56 UTC".len()
                && last.ends_with(" UTC")
                && last.starts_with("20"),
            "{name}'s last backup: {last:?}"
        );
        let (_, result) = by_id(&dom, &format!("c-{name}-result"));
        assert_eq!(result, "ok", "{name}'s result");
        let (_, files) = by_id(&dom, &format!("c-{name}-files"));
        assert!(files.parse::<u64>().is_ok(), "{name}'s files: {files:?}");
        assert!(
            hrefs(&dom).contains(&format!("/browse/{name}/")),
            "no link to {name}'s namespace"
        );
    }
    let (badge, text) = by_id(&dom, "live");
    assert!(
        badge.contains("data-state=\"live\"") && text == "live",
        "live.js did not poll /status.json (or failed): {badge}{text}"
    );

    // The listing: every entry as text, a download link per file, a tar
    // link per directory, and the hostile name as text only.
    let dom = dump_dom(work, "listing-dom", &listing);
    let links = hrefs(&dom);
    for dir in ["Documents", "Photos", "projects"] {
        assert!(
            dom.contains(&format!(">{dir}/</a>")),
            "no {dir}/ in the listing"
        );
        let tar = format!("{}/?format=tar", file_url("laptop", &home.join(dir)));
        assert!(links.contains(&tar), "no {tar} in the listing");
    }
    for file in [".bashrc", "notes.txt", "todo.md", HOSTILE] {
        let shown = format!(">{}</a>", as_text_node(file));
        assert!(dom.contains(&shown), "no {shown} in the listing:\n{dom}");
        let download = file_url("laptop", &home.join(file));
        assert!(links.contains(&download), "no {download} in the listing");
    }
    assert!(
        dom.contains(">latest-report</a>"),
        "no symlink in the listing"
    );
    assert!(
        links.contains(&format!("{}/?format=tar", file_url("laptop", &home))),
        "no tar link for the whole directory"
    );
    assert!(
        !dom.contains("<b>") && !dom.contains("<b "),
        "the hostile name made an element:\n{dom}"
    );

    // The pictures: PNGs of the window's size, more than a blank page.
    let (blank, _) = screenshot(work, "blank", "about:blank");
    assert_eq!(
        png_size(&blank),
        (WIDTH, HEIGHT),
        "about:blank's screenshot"
    );
    let mut taken = Vec::new();
    for (tag, page) in [("dashboard", &dashboard), ("listing", &listing)] {
        let (png, elapsed) = screenshot(work, tag, page);
        assert_eq!(png_size(&png), (WIDTH, HEIGHT), "{tag}'s screenshot");
        assert!(
            png.len() > 4 * blank.len(),
            "{tag}'s screenshot ({} bytes) is hardly more than a blank page's ({} bytes)",
            png.len(),
            blank.len()
        );
        eprintln!(
            "{tag}.png: {} bytes in {} ms",
            png.len(),
            elapsed.as_millis()
        );
        taken.push((tag, png));
    }
    if let Some(dir) = std::env::var_os("RSB_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        fs::create_dir_all(&dir).unwrap();
        for (tag, png) in &taken {
            let to = dir.join(format!("{tag}.png"));
            fs::write(&to, png).unwrap_or_else(|e| panic!("write {to:?}: {e}"));
            eprintln!("wrote {}", to.display());
        }
    }
    eprintln!("browser test: {} ms in all", started.elapsed().as_millis());
}
