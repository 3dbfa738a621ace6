//! The dashboard, `/`, and `/status.json`, the live cells the dashboard's
//! script polls. Both take a client's live cells from [`cells`], so the
//! page and its updates always say the same thing.
//!
//! Must not: decide who sees what (the shell fills [`Dashboard`] with
//! what the viewer may see; the viewer only chooses form or text).

use std::fmt::Write;

use super::format::{ago, human_bytes, iso, since, span, utc};
use super::page;
use crate::server::web::html::{
    browse_dir_url, escape, escape_bytes, link, plan_url, visible, Query,
};
use crate::server::web::model::{ClientRow, Dashboard, PlanForm, Viewer};

/// The live cells of a client, as (key, text): the element of id
/// `c-NAME-KEY` shows the text.
const LIVE: [&str; 9] = [
    "last",
    "ago",
    "files",
    "bytes",
    "result",
    "connected",
    "activity",
    "agent",
    "space",
];

/// A client's live cells, in [`LIVE`]'s order, and its state (`none`,
/// `ok`, `failed`) and whether it is busy now.
fn cells(c: &ClientRow, now: crate::proto::Time) -> ([String; 9], &'static str, bool) {
    let (last, when, files, bytes, result, state) = match &c.last {
        None => (
            "never".to_string(),
            String::new(),
            "—".to_string(),
            "—".to_string(),
            "no backup yet".to_string(),
            "none",
        ),
        Some(run) => {
            let (result, state) = match (&run.error, run.failed) {
                (Some(e), _) => (format!("failed: {}", visible(e.as_bytes())), "failed"),
                (None, 0) => ("ok".to_string(), "ok"),
                (None, 1) => ("1 file failed".to_string(), "failed"),
                (None, n) => (format!("{n} files failed"), "failed"),
            };
            (
                utc(run.ended),
                format!("({})", ago(now, run.ended)),
                run.files.to_string(),
                human_bytes(run.bytes),
                result,
                state,
            )
        }
    };
    let connected = match c.connections {
        0 => "no".to_string(),
        1 => "yes".to_string(),
        n => format!("yes ({n})"),
    };
    let busy = c.activity.iter().any(|a| a.what != "idle");
    let activity = if c.activity.is_empty() {
        "—".to_string()
    } else {
        let parts: Vec<String> = c
            .activity
            .iter()
            .map(|a| {
                if a.what == "idle" {
                    "idle".to_string()
                } else {
                    format!(
                        "{} for {}: {} files, {}",
                        visible(a.what.as_bytes()),
                        span(since(now, a.since)),
                        a.files,
                        human_bytes(a.bytes)
                    )
                }
            })
            .collect();
        parts.join("; ")
    };
    let agent = if c.agent { "connected" } else { "—" }.to_string();
    let space = match &c.space {
        None => "not measured yet".to_string(),
        Some(s) => format!(
            "{} current, {} history, {} entries",
            human_bytes(s.current),
            human_bytes(s.history),
            s.entries
        ),
    };
    (
        [
            last, when, files, bytes, result, connected, activity, agent, space,
        ],
        state,
        busy,
    )
}

/// The dashboard for `viewer`.
pub fn dashboard(d: &Dashboard, viewer: &Viewer) -> String {
    let mut b = String::new();
    b.push_str("<h1>Dashboard <span class=\"live\" id=\"live\"></span></h1>\n");
    if viewer.sees_all {
        server_block(&mut b, d);
    }
    clients_table(&mut b, d);
    plans(&mut b, d, viewer);
    if viewer.sees_all {
        errors(&mut b, d);
    }
    page("Dashboard", Some(viewer), &b, true)
}

fn server_block(b: &mut String, d: &Dashboard) {
    b.push_str("<section>\n<h2>Server</h2>\n<dl class=\"facts\">\n");
    let mut fact = |k: &str, v_html: &str| {
        let _ = writeln!(b, "<dt>{}</dt><dd>{v_html}</dd>", escape(k));
    };
    fact("Version", &escape(&d.version));
    fact(
        "Up for",
        &format!(
            "<span id=\"uptime\">{}</span>",
            escape(&span(d.uptime_secs))
        ),
    );
    fact(
        "Root",
        &format!("<code>{}</code>", escape_bytes(d.root.as_bytes())),
    );
    let free = match (d.free_bytes, d.total_bytes) {
        (Some(free), Some(total)) if total > 0 => format!(
            "{} free of {} ({}%)",
            human_bytes(free),
            human_bytes(total),
            u128::from(free) * 100 / u128::from(total)
        ),
        (Some(free), _) => format!("{} free", human_bytes(free)),
        _ => "unknown".to_string(),
    };
    fact("Space", &escape(&free));
    for (k, v) in &d.options {
        fact(k, &escape_bytes(v.as_bytes()));
    }
    b.push_str("</dl>\n</section>\n");
}

fn clients_table(b: &mut String, d: &Dashboard) {
    b.push_str("<section>\n<h2>Clients</h2>\n");
    if d.clients.is_empty() {
        b.push_str("<p class=\"empty\">No client has backed up here yet.</p>\n</section>\n");
        return;
    }
    b.push_str(
        "<div class=\"wrap\"><table class=\"grid clients\">\n<thead><tr>\
<th>Client</th><th>Last backup</th><th class=\"num\" title=\"files, directories and other entries stored\">Entries</th><th class=\"num\">Bytes</th>\
<th>Result</th><th>Connected</th><th>Activity</th><th>Agent</th><th>Space</th>\
</tr></thead>\n<tbody>\n",
    );
    for c in &d.clients {
        let (texts, state, busy) = cells(c, d.now);
        let id = escape(&c.name);
        let cell = |key: &str| -> String {
            let i = LIVE.iter().position(|k| *k == key).unwrap_or(0);
            let text = texts.get(i).map(String::as_str).unwrap_or("");
            format!("<span id=\"c-{id}-{key}\">{}</span>", escape(text))
        };
        let when = format!(
            "{} <span class=\"ago\">{}</span>",
            cell("last"),
            cell("ago")
        );
        let _ = writeln!(
            b,
            "<tr id=\"client-{id}\" data-client=\"{id}\" data-state=\"{state}\" data-busy=\"{}\">\
<th scope=\"row\">{}</th><td>{when}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
<td class=\"result\">{}</td><td>{}</td><td class=\"activity\">{}</td><td>{}</td><td>{}</td></tr>",
            u8::from(busy),
            link(
                &browse_dir_url(&c.name, b"", &Query::default()),
                &escape_bytes(c.name.as_bytes())
            ),
            cell("files"),
            cell("bytes"),
            cell("result"),
            cell("connected"),
            cell("activity"),
            cell("agent"),
            cell("space"),
        );
    }
    b.push_str("</tbody></table></div>\n");
    b.push_str("<p class=\"note\" id=\"live-note\" hidden>A client appeared: reload the page to see it.</p>\n");
    b.push_str("</section>\n");
}

fn plans(b: &mut String, d: &Dashboard, viewer: &Viewer) {
    let csrf = viewer.csrf.as_deref().filter(|_| viewer.edits_plans);
    b.push_str("<section>\n<h2>Plans</h2>\n");
    b.push_str(
        "<p class=\"note\">What each client's <code>rsb-client agent</code> backs up, and when.</p>\n",
    );
    b.push_str("<div class=\"plans\">\n");
    for c in &d.clients {
        let name = escape_bytes(c.name.as_bytes());
        let _ = writeln!(
            b,
            "<article class=\"plan\" id=\"plan-{}\">\n<h3>{name}</h3>",
            escape(&c.name)
        );
        match (csrf, &c.plan) {
            (Some(token), plan) => {
                let empty = PlanForm::default();
                plan_form(
                    b,
                    &plan_url(&c.name),
                    token,
                    plan.as_ref().unwrap_or(&empty),
                    None,
                );
                if plan.is_some() {
                    let _ = writeln!(
                        b,
                        "<form method=\"post\" action=\"{}\" class=\"delete\">{}\
<input type=\"hidden\" name=\"delete\" value=\"1\">\
<button type=\"submit\" class=\"danger\">Delete plan</button></form>",
                        escape(&plan_url(&c.name)),
                        hidden_csrf(token)
                    );
                }
            }
            (None, Some(plan)) => plan_text(b, plan),
            (None, None) => b.push_str("<p class=\"empty\">No plan.</p>\n"),
        }
        b.push_str("</article>\n");
    }
    if let Some(token) = csrf {
        b.push_str("<article class=\"plan new\">\n<h3>A plan for a new client</h3>\n");
        plan_form(b, "/plans", token, &PlanForm::default(), Some(""));
        b.push_str("</article>\n");
    } else if d.clients.is_empty() {
        b.push_str("<p class=\"empty\">No plans.</p>\n");
    }
    b.push_str("</div>\n</section>\n");
}

fn hidden_csrf(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(token)
    )
}

/// A textarea's content: escaped, after a line feed, since the HTML parser
/// drops one line feed right after `<textarea>` and the value's own first
/// one would be lost.
fn textarea(name: &str, value: &str, rows: u8) -> String {
    format!(
        "<textarea name=\"{name}\" rows=\"{rows}\" spellcheck=\"false\">\n{}</textarea>",
        escape(value)
    )
}

/// The plan form; `new_name` adds the `name` field (the form that adds a
/// plan).
fn plan_form(b: &mut String, action: &str, token: &str, p: &PlanForm, new_name: Option<&str>) {
    let _ = writeln!(
        b,
        "<form method=\"post\" action=\"{}\" class=\"plan-form\">{}",
        escape(action),
        hidden_csrf(token)
    );
    if let Some(n) = new_name {
        let _ = writeln!(
            b,
            "<label>Client name <input name=\"name\" value=\"{}\" required \
pattern=\"[A-Za-z0-9._\\-]+\" maxlength=\"64\" autocomplete=\"off\"></label>",
            escape(n)
        );
    }
    let _ = writeln!(
        b,
        "<label>Paths, one per line {}</label>",
        textarea("paths", &p.paths, 3)
    );
    let _ = writeln!(
        b,
        "<label>Excludes, one per line {}</label>",
        textarea("excludes", &p.excludes, 2)
    );
    let every = p.schedule == "every";
    let _ = writeln!(
        b,
        "<div class=\"row\"><label>Schedule <select name=\"schedule\">\
<option value=\"watch\"{}>watch: each change</option>\
<option value=\"every\"{}>every: a whole run per period</option></select></label>",
        if every { "" } else { " selected" },
        if every { " selected" } else { "" }
    );
    let _ = writeln!(
        b,
        "<label>Interval <input name=\"interval\" value=\"{}\" placeholder=\"2s or 1h\" size=\"6\"></label>",
        escape(&p.interval)
    );
    let _ = writeln!(
        b,
        "<label>Bandwidth limit <input name=\"bwlimit\" value=\"{}\" placeholder=\"none\" size=\"6\"></label></div>",
        escape(&p.bwlimit)
    );
    let label = if new_name.is_some() {
        "Add plan"
    } else {
        "Save plan"
    };
    let _ = writeln!(b, "<button type=\"submit\">{label}</button>\n</form>");
}

fn plan_text(b: &mut String, p: &PlanForm) {
    let list = |text: &str| -> String {
        let items: Vec<String> = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| format!("<li><code>{}</code></li>", escape_bytes(l.as_bytes())))
            .collect();
        if items.is_empty() {
            "none".to_string()
        } else {
            format!("<ul>{}</ul>", items.join(""))
        }
    };
    let bw = if p.bwlimit.is_empty() {
        "none"
    } else {
        &p.bwlimit
    };
    let _ = writeln!(
        b,
        "<dl class=\"facts\"><dt>Paths</dt><dd>{}</dd><dt>Excludes</dt><dd>{}</dd>\
<dt>Schedule</dt><dd>{} {}</dd><dt>Bandwidth limit</dt><dd>{}</dd></dl>",
        list(&p.paths),
        list(&p.excludes),
        escape_bytes(p.schedule.as_bytes()),
        escape_bytes(p.interval.as_bytes()),
        escape_bytes(bw.as_bytes())
    );
}

fn errors(b: &mut String, d: &Dashboard) {
    b.push_str("<section>\n<h2>Recent errors</h2>\n");
    if d.errors.is_empty() {
        b.push_str("<p class=\"empty\">None.</p>\n</section>\n");
        return;
    }
    b.push_str("<ul class=\"errors\">\n");
    for e in &d.errors {
        let _ = writeln!(
            b,
            "<li><time datetime=\"{}\">{}</time> <span>{}</span></li>",
            iso(e.at),
            utc(e.at),
            escape_bytes(e.text.as_bytes())
        );
    }
    b.push_str("</ul>\n</section>\n");
}

/// `/status.json`: `{"uptime": TEXT, "clients": [{"name", "state",
/// "busy", "cells": {KEY: TEXT}}]}`, every string escaped for JSON and
/// for a page (RFC 8259, plus `<`, `>`, `&` and U+2028/U+2029 as `\uXXXX`).
pub fn status_json(d: &Dashboard) -> String {
    let mut out = String::from("{\"uptime\":");
    out.push_str(&json_string(&span(d.uptime_secs)));
    out.push_str(",\"clients\":[");
    for (i, c) in d.clients.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let (texts, state, busy) = cells(c, d.now);
        let _ = write!(
            out,
            "{{\"name\":{},\"state\":\"{state}\",\"busy\":{busy},\"cells\":{{",
            json_string(&c.name)
        );
        for (j, (key, text)) in LIVE.iter().zip(texts.iter()).enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{key}\":{}", json_string(text));
        }
        out.push_str("}}");
    }
    out.push_str("]}");
    out
}

/// `s` as a JSON string: `"` and `\` escaped, every control character as
/// `\u00XX`, and `<`, `>`, `&`, U+2028, U+2029 as `\uXXXX` so the text
/// can close no script tag and breaks no older parser.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20
                || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\u{7f}') =>
            {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
