//! The pages of the web interface as HTML5 strings: the dashboard and its
//! live JSON ([`home`]), a directory listing and a file's versions
//! ([`browse`]), error pages, and the two static files they link. Plain
//! HTML that works without the script; no inline script, style or event
//! handler, since the connection sends a Content-Security-Policy that
//! forbids them; nothing from outside rsb-server.
//!
//! Must not: escape anything by hand (every name and value goes through
//! [`super::html`]), or know how a page was asked for.

mod browse;
mod format;
mod home;

pub use browse::{listing, sort_entries, versions};
pub use home::{dashboard, status_json};

use super::html::{escape, link};
use super::model::Viewer;

/// `/static/style.css`.
pub const STYLE_CSS: &str = include_str!("assets/style.css");

/// `/static/live.js`: polls `/status.json` every 2 s and updates the
/// dashboard's live cells.
pub const LIVE_JS: &str = include_str!("assets/live.js");

/// A whole page around `body` (HTML): the head, the top bar, and the
/// script when `live`.
fn page(title: &str, viewer: Option<&Viewer>, body: &str, live: bool) -> String {
    let mut out = String::with_capacity(body.len() + 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!("<title>{} · rsb</title>\n", escape(title)));
    // An empty icon: the browser asks for no /favicon.ico.
    out.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    out.push_str("<link rel=\"stylesheet\" href=\"/static/style.css\">\n");
    if live {
        out.push_str("<script src=\"/static/live.js\" defer></script>\n");
    }
    out.push_str("</head>\n<body>\n<header class=\"top\">");
    out.push_str(&link("/", "rsb"));
    if let Some(name) = viewer.and_then(|v| v.name.as_deref()) {
        out.push_str(&format!(
            "<span class=\"who\">signed in as {}</span>",
            escape(name)
        ));
    }
    out.push_str("</header>\n<main>\n");
    out.push_str(body);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// The page of an error answer: `status`, `title` and `detail` (all
/// escaped) and a way back.
pub fn error_page(status: u16, title: &str, detail: &str) -> String {
    let body = format!(
        "<h1>{status} {}</h1>\n<p class=\"detail\">{}</p>\n<p>{}</p>\n",
        escape(title),
        escape(detail),
        link("/", "Back to the dashboard")
    );
    page(&format!("{status} {title}"), None, &body, false)
}

#[cfg(test)]
pub(crate) mod tests;
