//! Answering one request: the target decoded and routed, the viewer
//! authenticated (HTTP Basic against the secrets file, with the per-address
//! backoff of failed logins), then the page, the file or the plan change;
//! and the response head every answer starts with. The pure rules are
//! [`crate::server::web`]'s; this file only applies them in order.

use std::time::Instant;

use log::{info, warn};

use super::WebConn;
use crate::io::server::Env;
use crate::proto::Time;
use crate::server::peers::{Admit, AuthOutcome};
use crate::server::web::auth::{self, Access, SESSION_COOKIE};
use crate::server::web::date::format_http_date;
use crate::server::web::model::Viewer;
use crate::server::web::request::{cookie, Method, Request};
use crate::server::web::route::{self, Asset, Route, RouteError};
use crate::server::web::{pages, target};

/// The Content-Security-Policy of every page: nothing but this server's
/// own script and style, no frames, forms only to itself.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// A response head's headers: names are ours; values are checked for
/// control characters when written.
pub(super) type Headers = Vec<(&'static str, String)>;

/// One request, as the handlers see it.
pub(super) struct Asked<'a> {
    pub(super) req: &'a Request,
    pub(super) viewer: Viewer,
    /// A `Set-Cookie` to send with pages (a new browser session).
    pub(super) set_cookie: Option<String>,
    /// The wall-clock time of the request.
    pub(super) wall: Time,
}

impl WebConn {
    /// Answers `req` (its body, if any, is `body`).
    pub(super) fn answer(&mut self, env: &Env, req: Request, body: Vec<u8>, now: Instant) {
        let wall = crate::io::clock::now_time();
        let Some(web) = env.web.as_ref() else {
            self.error_answer(404, "no web interface");
            return;
        };
        let t = match target::parse_target(&req.target) {
            Ok(t) => t,
            Err(e) => {
                self.error_answer(400, &format!("bad request target: {e}"));
                return;
            }
        };
        let q = match route::query(&t.query) {
            Ok(q) => q,
            Err(e) => return self.route_error(e),
        };
        if env.config.session.secrets.is_none()
            && !auth::host_allowed(req.host.as_deref(), &web.hosts)
        {
            // DNS rebinding: see `host_allowed`.
            return self.error_answer(
                403,
                "this server answers to its IP addresses and localhost; \
                 give other host names with --http-host, or use --secrets",
            );
        }
        let viewer = match self.authenticate(env, &req, now) {
            Some(v) => v,
            None => return,
        };
        // A browser session for the CSRF token: the cookie's value if it
        // is one of ours, else a new one.
        let (session, set_cookie) = match req
            .cookie
            .as_deref()
            .and_then(|c| cookie(c, SESSION_COOKIE))
            .filter(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            Some(s) => (s.to_string(), None),
            None => {
                let fresh = auth::hex(&crate::io::random_bytes().unwrap_or([0; 32])[..16]);
                let secure = if web.tls.is_some() { "; Secure" } else { "" };
                let header =
                    format!("{SESSION_COOKIE}={fresh}; Path=/; HttpOnly; SameSite=Strict{secure}");
                (fresh, Some(header))
            }
        };
        let mut viewer = viewer;
        if viewer.edits_plans {
            viewer.csrf = Some(auth::csrf_token(&web.csrf_key, &session));
        }
        let route = match route::route(&req.method, &t.segments, t.trailing_slash, &q) {
            Ok(r) => r,
            Err(e) => return self.route_error(e),
        };
        let asked = Asked {
            req: &req,
            viewer,
            set_cookie,
            wall,
        };
        match route {
            Route::Dashboard => {
                let d = self.dashboard(env, &asked.viewer, wall);
                let html = pages::dashboard(&d, &asked.viewer);
                self.page(&asked, 200, "text/html; charset=utf-8", html.into_bytes());
            }
            Route::StatusJson => {
                let d = self.dashboard(env, &asked.viewer, wall);
                let json = pages::status_json(&d);
                self.page(&asked, 200, "application/json", json.into_bytes());
            }
            Route::Metrics => {
                let text = self.metrics_text(env, &asked.viewer, wall);
                self.page(
                    &asked,
                    200,
                    "text/plain; version=0.0.4; charset=utf-8",
                    text.into_bytes(),
                );
            }
            Route::Static(a) => {
                let (kind, text) = match a {
                    Asset::Style => ("text/css; charset=utf-8", pages::STYLE_CSS),
                    Asset::Script => ("text/javascript; charset=utf-8", pages::LIVE_JS),
                };
                self.page(&asked, 200, kind, text.as_bytes().to_vec());
            }
            Route::Browse { name, path, dir } => {
                if !auth::may_see(&asked.viewer, &name) {
                    return self.error_answer(404, "no such client");
                }
                self.browse(env, &asked, &name, &path, dir, &q);
            }
            Route::Files { name, path, tar } => {
                if !auth::may_see(&asked.viewer, &name) {
                    return self.error_answer(404, "no such client");
                }
                self.download(env, &asked, &name, &path, tar, &q);
            }
            Route::SetPlan { name } => self.set_plan(env, &asked, name, &body, &session),
        }
    }

    /// Who sends `req`; `None` when it was answered already (401, 429).
    fn authenticate(&mut self, env: &Env, req: &Request, now: Instant) -> Option<Viewer> {
        let web = env.web.as_ref()?;
        let guard = auth::Guard {
            secrets: env.config.session.secrets.as_deref(),
            admins: &web.admins,
            loopback: web.loopback,
        };
        if guard.secrets.is_none() {
            if let Access::Granted(v) = guard.access(None) {
                return Some(v);
            }
            return None;
        }
        let ip = self.peer.ip();
        let mut peers = web.peers.borrow_mut();
        if let Admit::Backoff { wait, log } = peers.admit(ip, now) {
            if log {
                warn!(
                    "{}: web logins refused for {} s: too many failures",
                    self.peer,
                    wait.as_secs().max(1)
                );
            }
            drop(peers);
            let secs = wait.as_secs().max(1);
            self.respond(
                429,
                vec![("Retry-After", secs.to_string())],
                error_body(
                    429,
                    "Too many failed logins",
                    &format!("try again in {secs} s"),
                ),
                true,
            );
            return None;
        }
        let access = guard.access(req.authorization.as_deref());
        let outcome = match &access {
            Access::Granted(_) => AuthOutcome::Passed,
            Access::Missing => AuthOutcome::None,
            Access::Refused(_) => AuthOutcome::Failed,
        };
        let log = peers.closed(ip, now, outcome);
        drop(peers);
        match access {
            Access::Granted(v) => Some(v),
            Access::Missing => {
                self.unauthorized("credentials required");
                None
            }
            Access::Refused(name) => {
                env.status.borrow_mut().counters.auth_failures += 1;
                if log {
                    warn!(
                        "{}: web login failed for {}",
                        self.peer,
                        name.escape_debug()
                    );
                }
                self.unauthorized("wrong name or secret");
                None
            }
        }
    }

    fn unauthorized(&mut self, why: &str) {
        self.respond(
            401,
            vec![(
                "WWW-Authenticate",
                "Basic realm=\"rsb\", charset=\"UTF-8\"".to_string(),
            )],
            error_body(401, "Unauthorized", why),
            true,
        );
    }

    fn route_error(&mut self, e: RouteError) {
        match e {
            RouteError::NotFound => self.error_answer(404, "no such page"),
            RouteError::Bad(why) => self.error_answer(400, &why),
            RouteError::Method(allow) => self.respond(
                405,
                vec![("Allow", allow.to_string())],
                error_body(
                    405,
                    "Method Not Allowed",
                    &format!("this page takes {allow}"),
                ),
                true,
            ),
        }
    }

    /// A page or an asset: the security headers, the session cookie.
    pub(super) fn page(&mut self, asked: &Asked<'_>, status: u16, kind: &str, body: Vec<u8>) {
        let mut h: Headers = vec![
            ("Content-Type", kind.to_string()),
            ("Cache-Control", "no-store".to_string()),
            ("Content-Security-Policy", CSP.to_string()),
            ("X-Content-Type-Options", "nosniff".to_string()),
            ("X-Frame-Options", "DENY".to_string()),
            ("Referrer-Policy", "same-origin".to_string()),
        ];
        if let Some(c) = &asked.set_cookie {
            h.push(("Set-Cookie", c.clone()));
        }
        let head_only = matches!(asked.req.method, Method::Head);
        self.respond_body(status, h, body, head_only);
    }

    /// An error page with `status`.
    pub(super) fn error_answer(&mut self, status: u16, detail: &str) {
        let body = error_body(status, reason(status), detail);
        let close =
            status == 400 || status == 408 || status == 413 || status == 431 || status >= 500;
        self.respond(status, Vec::new(), body, close);
    }

    /// An answer with an HTML body; `close` ends the connection after it.
    pub(super) fn respond(&mut self, status: u16, mut h: Headers, body: Vec<u8>, close: bool) {
        h.push(("Content-Type", "text/html; charset=utf-8".to_string()));
        h.push(("Cache-Control", "no-store".to_string()));
        h.push(("Content-Security-Policy", CSP.to_string()));
        h.push(("X-Content-Type-Options", "nosniff".to_string()));
        if close {
            self.close_after = true;
        }
        self.respond_body(status, h, body, false);
    }

    /// Queues a head with `Content-Length` of `body`, then the body
    /// (none for HEAD).
    pub(super) fn respond_body(&mut self, status: u16, h: Headers, body: Vec<u8>, head_only: bool) {
        let head = self.head(status, &h, Some(body.len() as u64));
        self.out.push_bytes(head);
        if !head_only && !self.head_request {
            self.out.push_bytes(body);
        }
    }

    /// The bytes of a response head: the status line, `Date`, `Server`,
    /// the headers, `Content-Length` if known, `Connection: close` when
    /// this answer is the last. Counts the status.
    pub(super) fn head(&mut self, status: u16, h: &Headers, len: Option<u64>) -> Vec<u8> {
        self.status_counted(status);
        let mut s = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        s.push_str(&format!(
            "Date: {}\r\nServer: rsb/{}\r\n",
            format_http_date(crate::io::clock::now_secs()),
            env!("CARGO_PKG_VERSION")
        ));
        for (name, value) in h {
            s.push_str(name);
            s.push_str(": ");
            // Every value is built here from checked parts; a control
            // character can still never split the head.
            s.extend(value.chars().map(|c| if c.is_control() { ' ' } else { c }));
            s.push_str("\r\n");
        }
        if let Some(n) = len {
            s.push_str(&format!("Content-Length: {n}\r\n"));
        }
        if self.close_after {
            s.push_str("Connection: close\r\n");
        }
        s.push_str("\r\n");
        s.into_bytes()
    }

    fn status_counted(&mut self, status: u16) {
        self.statuses.push(status);
    }

    /// `POST /plans[/NAME]`: sets or deletes a plan, then back to `/`.
    fn set_plan(
        &mut self,
        env: &Env,
        asked: &Asked<'_>,
        name: Option<String>,
        body: &[u8],
        session: &str,
    ) {
        let Some(web) = env.web.as_ref() else {
            return;
        };
        if !asked.viewer.edits_plans {
            let why = if env.config.session.secrets.is_some() {
                "only --admin names may change plans"
            } else {
                "plans may be changed only through a web port on loopback, or with --secrets and --admin"
            };
            return self.error_answer(403, why);
        }
        let req = asked.req;
        let scheme = if web.tls.is_some() { "https" } else { "http" };
        if !auth::is_same_origin(
            req.origin.as_deref(),
            req.referer.as_deref(),
            req.host.as_deref(),
            scheme,
        ) {
            return self.error_answer(
                403,
                "the form must come from this server's own page (Origin)",
            );
        }
        let form = match crate::server::web::request::parse_form(body) {
            Ok(f) => f,
            Err(e) => return self.error_answer(400, &format!("bad form: {e}")),
        };
        let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        if !field("csrf").is_some_and(|t| auth::is_csrf(&web.csrf_key, session, t)) {
            return self.error_answer(403, "missing or stale form token: reload the page");
        }
        let name = match name.or_else(|| field("name").map(|n| n.trim().to_string())) {
            Some(n) if crate::proto::is_valid_client_name(&n) => n,
            _ => {
                return self.error_answer(
                    400,
                    "a client name is 1 to 64 of A-Z a-z 0-9 . _ - (not .rsb-...)",
                )
            }
        };
        let plan = if field("delete").is_some() {
            None
        } else {
            let f = crate::server::web::model::PlanForm {
                paths: field("paths").unwrap_or("").to_string(),
                excludes: field("excludes").unwrap_or("").to_string(),
                schedule: field("schedule").unwrap_or("watch").to_string(),
                interval: field("interval").unwrap_or("").to_string(),
                bwlimit: field("bwlimit").unwrap_or("").to_string(),
            };
            match crate::server::plans::from_form(&f) {
                Ok(p) => Some(p),
                Err(e) => return self.error_answer(400, &format!("plan for {name}: {e}")),
            }
        };
        let who = asked.viewer.name.as_deref().unwrap_or("(loopback)");
        let troubled = env.plans.borrow().trouble().is_some();
        if troubled {
            // The hand-edited file has errors: writing it whole would drop
            // what the server could not read. (`set` reads it again first,
            // so a fix just made is seen there.)
            let mut book = env.plans.borrow_mut();
            if book.reload_now() {
                env.actions
                    .borrow_mut()
                    .push(crate::io::server::LoopAction::PlansChanged);
            }
            if let Some(t) = book.trouble().map(str::to_string) {
                drop(book);
                return self.respond(
                    409,
                    Vec::new(),
                    error_body(409, "Conflict", &format!("plans not changed: {t}")),
                    false,
                );
            }
        }
        let result = env.plans.borrow_mut().set(&name, plan.clone());
        match result {
            Ok(()) => {
                info!(
                    "{}: plan for {name} {} by {who}",
                    self.peer,
                    if plan.is_some() { "set" } else { "removed" }
                );
                env.actions
                    .borrow_mut()
                    .push(crate::io::server::LoopAction::PlansChanged);
                self.respond_body(303, vec![("Location", "/".to_string())], Vec::new(), false);
            }
            Err(e) if env.plans.borrow().trouble().is_some() => {
                // The file went bad (a hand edit) since the check above:
                // `set` read it again and wrote nothing. Agents hear of
                // what that read changed.
                env.actions
                    .borrow_mut()
                    .push(crate::io::server::LoopAction::PlansChanged);
                self.respond(
                    409,
                    Vec::new(),
                    error_body(409, "Conflict", &format!("plans not changed: {e}")),
                    false,
                );
            }
            Err(e) => self.error_answer(500, &format!("cannot save the plans: {e}")),
        }
    }
}

/// An error page's bytes.
pub(super) fn error_body(status: u16, title: &str, detail: &str) -> Vec<u8> {
    pages::error_page(status, title, detail).into_bytes()
}

/// The reason phrase of a status.
pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}
