//! `/metrics` in the Prometheus text exposition format 0.0.4: every
//! family with its `# HELP` and `# TYPE`, counters ending in `_total`,
//! histograms as cumulative `_bucket{le=...}` lines with `+Inf`, `_sum`
//! and `_count`. Must not: gather anything (the shell fills [`Metrics`]).

use std::fmt::Write;

use super::model::{Histogram, Metrics};

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The text of `/metrics`.
pub fn render(m: &Metrics) -> String {
    let mut out = Out::default();
    out.family("rsb_up", "gauge", "1 while the server runs.");
    out.sample("rsb_up", &[], "1");
    out.family(
        "rsb_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    out.sample("rsb_uptime_seconds", &[], &m.uptime_secs.to_string());

    out.family("rsb_connections", "gauge", "Connections open now, by kind.");
    out.sample(
        "rsb_connections",
        &[("kind", "rsb")],
        &m.rsb_connections.to_string(),
    );
    out.sample(
        "rsb_connections",
        &[("kind", "web")],
        &m.web_connections.to_string(),
    );
    out.family(
        "rsb_connections_accepted_total",
        "counter",
        "Connections accepted since the start, by kind.",
    );
    out.sample(
        "rsb_connections_accepted_total",
        &[("kind", "rsb")],
        &m.rsb_accepted.to_string(),
    );
    out.sample(
        "rsb_connections_accepted_total",
        &[("kind", "web")],
        &m.web_accepted.to_string(),
    );

    out.family(
        "rsb_received_bytes_total",
        "counter",
        "Bytes read from backup-protocol connections.",
    );
    out.sample("rsb_received_bytes_total", &[], &m.bytes_in.to_string());
    out.family(
        "rsb_sent_bytes_total",
        "counter",
        "Bytes written to connections, by kind.",
    );
    out.sample(
        "rsb_sent_bytes_total",
        &[("kind", "rsb")],
        &m.bytes_out.to_string(),
    );
    out.sample(
        "rsb_sent_bytes_total",
        &[("kind", "web")],
        &m.web_bytes_out.to_string(),
    );

    out.family(
        "rsb_backups_total",
        "counter",
        "Backups ended, by result (failed: with failed files or an error).",
    );
    out.sample(
        "rsb_backups_total",
        &[("result", "ok")],
        &m.backups.to_string(),
    );
    out.sample(
        "rsb_backups_total",
        &[("result", "failed")],
        &m.backup_failures.to_string(),
    );
    out.family(
        "rsb_files_committed_total",
        "counter",
        "Files committed to the store.",
    );
    out.sample(
        "rsb_files_committed_total",
        &[],
        &m.files_committed.to_string(),
    );
    out.family(
        "rsb_http_responses_total",
        "counter",
        "HTTP responses sent, by status code.",
    );
    for (code, n) in &m.http_responses {
        out.sample(
            "rsb_http_responses_total",
            &[("code", &code.to_string())],
            &n.to_string(),
        );
    }
    out.family(
        "rsb_auth_failures_total",
        "counter",
        "Failed logins, backup protocol and web.",
    );
    out.sample("rsb_auth_failures_total", &[], &m.auth_failures.to_string());
    out.family(
        "rsb_web_crc_checks_total",
        "counter",
        "Whole stored files read to check their crc32c before a range of them was sent.",
    );
    out.sample(
        "rsb_web_crc_checks_total",
        &[],
        &m.web_crc_checks.to_string(),
    );

    out.histogram(
        "rsb_commit_duration_seconds",
        "How long committing a file took.",
        &m.commit_latency,
    );
    out.histogram(
        "rsb_loop_turn_duration_seconds",
        "How long one turn of the event loop took.",
        &m.loop_turn,
    );

    out.family(
        "rsb_store_bytes",
        "gauge",
        "Bytes a client's namespace holds, in the current tree and in history.",
    );
    for (name, space) in &m.space {
        out.sample(
            "rsb_store_bytes",
            &[("name", name), ("part", "current")],
            &space.current.to_string(),
        );
        out.sample(
            "rsb_store_bytes",
            &[("name", name), ("part", "history")],
            &space.history.to_string(),
        );
    }
    out.family(
        "rsb_store_entries",
        "gauge",
        "Entries in a client's current tree.",
    );
    for (name, space) in &m.space {
        out.sample(
            "rsb_store_entries",
            &[("name", name)],
            &space.entries.to_string(),
        );
    }
    out.text
}

/// A label value with `\`, `"` and line feeds escaped, as the format asks.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A float as the format writes one: `+Inf`, `-Inf`, `NaN` or Rust's
/// shortest round-trip decimal (which Go's `ParseFloat` reads).
pub fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

#[derive(Default)]
struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // HELP text escapes `\` and line feeds (never quotes).
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: &str) {
        self.text.push_str(name);
        if !labels.is_empty() {
            let parts: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(self.text, "{{{}}}", parts.join(","));
        }
        let _ = writeln!(self.text, " {value}");
    }

    fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, bound) in h.bounds.iter().enumerate() {
            cumulative = cumulative.saturating_add(h.counts.get(i).copied().unwrap_or(0));
            self.sample(&bucket, &[("le", &float(*bound))], &cumulative.to_string());
        }
        let total = h.count();
        self.sample(&bucket, &[("le", "+Inf")], &total.to_string());
        self.sample(&format!("{name}_sum"), &[], &float(h.sum));
        self.sample(&format!("{name}_count"), &[], &total.to_string());
    }
}

#[cfg(test)]
mod tests;
