use super::*;
use crate::proto::Time;
use crate::server::web::model::{Space, LATENCY_BOUNDS};

fn sample() -> Metrics {
    let mut commit = Histogram::new(LATENCY_BOUNDS);
    commit.observe(0.003);
    commit.observe(0.003);
    commit.observe(0.2);
    commit.observe(60.0);
    Metrics {
        uptime_secs: 3600,
        rsb_connections: 2,
        web_connections: 1,
        rsb_accepted: 10,
        web_accepted: 7,
        bytes_in: 1_000_000,
        bytes_out: 2_000,
        web_bytes_out: 5_000_000_000,
        backups: 4,
        backup_failures: 1,
        files_committed: 1234,
        http_responses: vec![(200, 5), (206, 2), (404, 1)],
        auth_failures: 3,
        web_crc_checks: 2,
        commit_latency: commit,
        loop_turn: Histogram::new(LATENCY_BOUNDS),
        space: vec![
            (
                "laptop".to_string(),
                Space {
                    current: 100,
                    history: 50,
                    entries: 9,
                    measured: Time::default(),
                },
            ),
            (
                "we\"ird\\name\n".to_string(),
                Space {
                    current: 1,
                    history: 2,
                    entries: 3,
                    measured: Time::default(),
                },
            ),
        ],
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn every_family_has_help_and_type_before_its_samples() {
    let text = render(&sample());
    assert!(text.ends_with('\n'));
    let mut typed: Vec<String> = Vec::new();
    let mut helped: Vec<String> = Vec::new();
    for line in lines(&text) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap().to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let name = words.next().unwrap().to_string();
            let kind = words.next().unwrap();
            assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            }
            assert_eq!(helped.last(), Some(&name), "HELP before TYPE: {line}");
            typed.push(name);
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = typed.last().unwrap();
            let base = name
                .strip_suffix("_bucket")
                .or_else(|| name.strip_suffix("_sum"))
                .or_else(|| name.strip_suffix("_count"))
                .filter(|b| b == family)
                .unwrap_or(name);
            assert_eq!(base, family, "sample under its own family: {line}");
        }
    }
    let mut sorted = typed.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), typed.len(), "each family once");
    assert_eq!(typed.len(), 15);
}

#[test]
fn the_samples_carry_their_values_and_labels() {
    let text = render(&sample());
    let l = lines(&text);
    for want in [
        "rsb_up 1",
        "rsb_uptime_seconds 3600",
        "rsb_connections{kind=\"rsb\"} 2",
        "rsb_connections{kind=\"web\"} 1",
        "rsb_connections_accepted_total{kind=\"rsb\"} 10",
        "rsb_connections_accepted_total{kind=\"web\"} 7",
        "rsb_received_bytes_total 1000000",
        "rsb_sent_bytes_total{kind=\"rsb\"} 2000",
        "rsb_sent_bytes_total{kind=\"web\"} 5000000000",
        "rsb_backups_total{result=\"ok\"} 4",
        "rsb_backups_total{result=\"failed\"} 1",
        "rsb_files_committed_total 1234",
        "rsb_http_responses_total{code=\"200\"} 5",
        "rsb_http_responses_total{code=\"206\"} 2",
        "rsb_http_responses_total{code=\"404\"} 1",
        "rsb_auth_failures_total 3",
        "rsb_web_crc_checks_total 2",
        "rsb_store_bytes{name=\"laptop\",part=\"current\"} 100",
        "rsb_store_bytes{name=\"laptop\",part=\"history\"} 50",
        "rsb_store_entries{name=\"laptop\"} 9",
        "rsb_store_bytes{name=\"we\\\"ird\\\\name\\n\",part=\"current\"} 1",
        "rsb_store_entries{name=\"we\\\"ird\\\\name\\n\"} 3",
    ] {
        assert!(l.contains(&want), "missing {want:?} in\n{text}");
    }
}

#[test]
fn histograms_are_cumulative_and_end_with_inf_sum_count() {
    let text = render(&sample());
    let buckets: Vec<&str> = lines(&text)
        .into_iter()
        .filter(|l| l.starts_with("rsb_commit_duration_seconds"))
        .collect();
    assert_eq!(
        buckets,
        [
            "rsb_commit_duration_seconds_bucket{le=\"0.0001\"} 0",
            "rsb_commit_duration_seconds_bucket{le=\"0.0005\"} 0",
            "rsb_commit_duration_seconds_bucket{le=\"0.001\"} 0",
            "rsb_commit_duration_seconds_bucket{le=\"0.005\"} 2",
            "rsb_commit_duration_seconds_bucket{le=\"0.01\"} 2",
            "rsb_commit_duration_seconds_bucket{le=\"0.05\"} 2",
            "rsb_commit_duration_seconds_bucket{le=\"0.1\"} 2",
            "rsb_commit_duration_seconds_bucket{le=\"0.5\"} 3",
            "rsb_commit_duration_seconds_bucket{le=\"1\"} 3",
            "rsb_commit_duration_seconds_bucket{le=\"5\"} 3",
            "rsb_commit_duration_seconds_bucket{le=\"10\"} 3",
            "rsb_commit_duration_seconds_bucket{le=\"+Inf\"} 4",
            "rsb_commit_duration_seconds_sum 60.206",
            "rsb_commit_duration_seconds_count 4",
        ]
    );
    let empty: Vec<&str> = lines(&text)
        .into_iter()
        .filter(|l| l.starts_with("rsb_loop_turn_duration_seconds_"))
        .skip(11)
        .collect();
    assert_eq!(
        empty,
        [
            "rsb_loop_turn_duration_seconds_bucket{le=\"+Inf\"} 0",
            "rsb_loop_turn_duration_seconds_sum 0",
            "rsb_loop_turn_duration_seconds_count 0",
        ]
    );
}

#[test]
fn floats_and_labels_are_written_as_the_format_reads_them() {
    assert_eq!(float(f64::INFINITY), "+Inf");
    assert_eq!(float(f64::NEG_INFINITY), "-Inf");
    assert_eq!(float(f64::NAN), "NaN");
    assert_eq!(float(0.25), "0.25");
    assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
}

/// `promtool check metrics` (Debian's `prometheus`), when installed.
#[test]
fn promtool_accepts_the_output() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: skipped");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(render(&sample()).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
