//! The web interface's bounds on the work one request makes: ranges of a
//! file not yet checked whole share one check (and at most four files are
//! checked at once, beyond which a range is refused 503 with
//! `Retry-After`), a range waiting for its check has the stall deadline
//! and its check still answers the others, and a listing of a huge
//! directory stops reading at its cap and says so.
//!
//! `RSB_TEST_CRC_DELAY_MS` makes each check hold its worker as reading a
//! big file would, so that requests are sure to overlap.

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use super::http::*;
use crate::common::*;

/// The `rsb_web_crc_checks_total` sample of `/metrics`.
fn checks_total(port: u16) -> u64 {
    let m = curl(&[&url(port, "/metrics")]).text();
    m.lines()
        .find_map(|l| l.strip_prefix("rsb_web_crc_checks_total "))
        .unwrap_or_else(|| panic!("/metrics has no rsb_web_crc_checks_total\n{m}"))
        .trim()
        .parse()
        .expect("a count")
}

/// The `rsb_http_responses_total{code="CODE"}` sample (0 when absent).
fn responses(port: u16, code: u16) -> u64 {
    let m = curl(&[&url(port, "/metrics")]).text();
    let key = format!("rsb_http_responses_total{{code=\"{code}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(key.as_str()))
        .map_or(0, |v| v.trim().parse().expect("a count"))
}

/// A server whose checks each take `delay_ms` more, holding `files`
/// files of 2 MiB (`f0.bin`...) for client `t`.
fn slow_check_server(delay_ms: &str, files: usize) -> (Server, Scratch, Vec<Vec<u8>>) {
    let srv = Server::start_with_env(
        &["--http", "127.0.0.1:0"],
        &[("RSB_TEST_CRC_DELAY_MS", delay_ms)],
    );
    let tmp = scratch();
    let src = tmp.join("src");
    fs::create_dir_all(&src).unwrap();
    let mut contents = Vec::new();
    for i in 0..files {
        write_big(&src.join(format!("f{i}.bin")), 2, 7 + i as u64);
        contents.push(fs::read(src.join(format!("f{i}.bin"))).unwrap());
    }
    backup(&srv, NAME, &src);
    (srv, tmp, contents)
}

#[test]
fn concurrent_ranges_of_one_unchecked_file_share_one_check() {
    let (srv, tmp, contents) = slow_check_server("1500", 1);
    let port = srv.web_port();
    let u = url(port, &file_url(NAME, &tmp.join("src/f0.bin")));
    assert_eq!(checks_total(port), 0);
    let started = Instant::now();
    let spans: Vec<(usize, usize)> = (0..6).map(|i| (i * 300_001, i * 300_001 + 4_095)).collect();
    let handles: Vec<_> = spans
        .iter()
        .map(|&(a, b)| {
            let u = u.clone();
            thread::spawn(move || curl(&["-H", &format!("Range: bytes={a}-{b}"), &u]))
        })
        .collect();
    for (h, &(a, b)) in handles.into_iter().zip(&spans) {
        let r = h.join().unwrap();
        r.status_is(206);
        assert_eq!(
            r.must("content-range"),
            format!("bytes {a}-{b}/{}", contents[0].len())
        );
        assert_eq!(r.body, contents[0][a..=b], "range {a}-{b}");
    }
    let took = started.elapsed();
    // One check of 1.5 s answered all six; six in turn would take 9 s on
    // one reader.
    assert_eq!(checks_total(port), 1, "server log:\n{}", srv.log());
    assert!(took < Duration::from_secs(8), "took {took:?}");
    // The verdict is kept: a later range needs no check.
    let r = curl(&["-H", "Range: bytes=10-19", &u]);
    r.status_is(206);
    assert_eq!(r.body, contents[0][10..20]);
    assert_eq!(checks_total(port), 1);
}

#[test]
fn a_fifth_unchecked_file_is_refused_503_while_four_are_checked() {
    let (srv, tmp, contents) = slow_check_server("3000", 5);
    let port = srv.web_port();
    let urls: Vec<String> = (0..5)
        .map(|i| url(port, &file_url(NAME, &tmp.join(format!("src/f{i}.bin")))))
        .collect();
    let handles: Vec<_> = urls[..4]
        .iter()
        .map(|u| {
            let u = u.clone();
            thread::spawn(move || curl(&["-H", "Range: bytes=100-199", &u]))
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(10), || checks_total(port) == 4),
        "the four checks never started; log:\n{}",
        srv.log()
    );
    let r = curl(&["-H", "Range: bytes=100-199", &urls[4]]);
    r.status_is(503);
    assert_eq!(r.must("retry-after"), "5");
    assert_eq!(checks_total(port), 4, "a refused range started no check");
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.join().unwrap();
        r.status_is(206);
        assert_eq!(r.body, contents[i][100..200], "file {i}");
    }
    assert_eq!(responses(port, 503), 1);
    // Room again: the fifth is checked and answered.
    let r = curl(&["-H", "Range: bytes=100-199", &urls[4]]);
    r.status_is(206);
    assert_eq!(r.body, contents[4][100..200]);
    assert_eq!(checks_total(port), 5);
}

#[test]
fn a_waiting_range_has_the_stall_deadline_and_its_check_answers_others() {
    let srv = Server::start_with_env(
        &["--http", "127.0.0.1:0", "-t", "1"],
        &[("RSB_TEST_CRC_DELAY_MS", "3000")],
    );
    let port = srv.web_port();
    let tmp = scratch();
    let src = tmp.join("src");
    fs::create_dir_all(&src).unwrap();
    write_big(&src.join("f.bin"), 2, 99);
    let content = fs::read(src.join("f.bin")).unwrap();
    backup(&srv, NAME, &src);
    let target = file_url(NAME, &src.join("f.bin"));

    // The first waiter gives up at the stall deadline (1 s), before the
    // 3 s check is back: closed without an answer.
    let mut first = WebConn::connect(port);
    let t0 = Instant::now();
    first.get(target.as_bytes(), "Range: bytes=0-9\r\n");
    assert!(first.closed(), "the waiting connection got an answer");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(2900),
        "closed after {waited:?}, not at the 1 s stall deadline"
    );
    assert_eq!(checks_total(port), 1);
    // The check comes back to no connection; the verdict is kept, the
    // server goes on, and the next range is answered at once from it.
    thread::sleep(Duration::from_millis(2500));
    let t1 = Instant::now();
    let r = curl(&["-H", "Range: bytes=5-14", &url(port, &target)]);
    r.status_is(206);
    assert_eq!(r.body, content[5..15]);
    assert!(t1.elapsed() < Duration::from_millis(2000));
    assert_eq!(checks_total(port), 1, "log:\n{}", srv.log());
}

#[test]
fn a_huge_directory_listing_stops_at_its_cap_and_says_so() {
    let srv = web_server(&[]);
    let port = srv.web_port();
    let tmp = scratch();
    let src = tmp.join("src");
    let wide = src.join("wide");
    fs::create_dir_all(&wide).unwrap();
    for i in 0..20_000 {
        fs::write(wide.join(format!("e{i:05}")), b"").unwrap();
    }
    backup(&srv, NAME, &src);
    let started = Instant::now();
    let r = curl(&[&url(port, &dir_url(NAME, &wide))]);
    let took = started.elapsed();
    r.status_is(200);
    let page = r.text();
    assert!(
        page.contains("The directory holds more than 10000 entries"),
        "no note of the cut\n{}",
        &page[page.len().saturating_sub(2000)..]
    );
    let rows = page.matches(">download</a>").count();
    assert_eq!(rows, 10_000, "rows shown");
    // Bounded: 10,000 rows are about 3.8 MB; all 20,000 would be 7.6.
    assert!(r.body.len() < 5 << 20, "{} bytes", r.body.len());
    println!(
        "listing of 20,000 entries cut at 10,000: {} bytes, {took:?}",
        r.body.len()
    );
    // The names shown are sorted among themselves.
    let names: Vec<&str> = page
        .match_indices(">e")
        .filter_map(|(i, _)| page.get(i + 1..i + 7))
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);

    // Its tar, made 256 entries a turn, still holds every entry.
    let t0 = Instant::now();
    let r = curl(&[&format!("{}?format=tar", url(port, &file_url(NAME, &wide)))]);
    r.status_is(200);
    let tar = tmp.join("wide.tar");
    fs::write(&tar, &r.body).unwrap();
    let o = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let members = String::from_utf8_lossy(&o.stdout).lines().count();
    assert_eq!(members, 20_001, "the directory and its 20,000 files");
    println!(
        "tar of 20,000 empty files: {} bytes, {:?}",
        r.body.len(),
        t0.elapsed()
    );
}

#[test]
fn the_versions_page_sees_a_batch_added_after_it_was_read() {
    let srv = web_server(&[]);
    let port = srv.web_port();
    let tmp = scratch();
    let src = tmp.join("src");
    fs::create_dir_all(&src).unwrap();
    let doc = src.join("doc.txt");
    let page = url(port, &format!("/browse/{NAME}{}", enc_path(&doc)));
    let versions = |want: usize| {
        let r = curl(&[&page]);
        r.status_is(200);
        let got = hrefs(&r.text())
            .into_iter()
            .filter(|h| h.starts_with(&format!("{}?at=", file_url(NAME, &doc))))
            .count();
        assert_eq!(got, want, "{}", r.show());
    };
    for (round, text) in ["one\n", "two, longer\n", "three, longest\n"]
        .iter()
        .enumerate()
    {
        fs::write(&doc, text).unwrap();
        set_mtime(&doc, (1_600_000_000 + round as i64 * 10, 0));
        backup(&srv, NAME, &src);
        // Each backup after the first keeps the one before in history:
        // the page, read (and its history cached) a moment ago, sees it.
        versions(round + 1);
    }
}
