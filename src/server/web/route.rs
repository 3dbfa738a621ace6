//! Which page or file a request names: the route of its decoded target and
//! method, and the query parameters each route reads. Pure; the target is
//! already split and percent-decoded ([`super::target`]) and its segments
//! checked like wire paths, so a route only reads them.
//!
//! | target | methods | what |
//! |---|---|---|
//! | `/` | GET, HEAD | the dashboard |
//! | `/status.json` | GET, HEAD | the dashboard's live data |
//! | `/metrics` | GET, HEAD | Prometheus text |
//! | `/static/style.css`, `/static/live.js` | GET, HEAD | the assets |
//! | `/browse/NAME/PATH/` | GET, HEAD | a directory listing (`?at`, `?sort`, `?order`) |
//! | `/browse/NAME/PATH` | GET, HEAD | a file's versions |
//! | `/files/NAME/PATH` | GET, HEAD | a download (`?at`; `?format=tar` for a directory) |
//! | `/plans`, `/plans/NAME` | POST | set or delete a plan |

use super::model::{Sort, SortBy};
use super::request::Method;
use crate::proto;

/// The assets served from the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    /// `/static/style.css`.
    Style,
    /// `/static/live.js`.
    Script,
}

/// What a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`.
    Dashboard,
    /// `/status.json`.
    StatusJson,
    /// `/metrics`.
    Metrics,
    /// `/static/...`.
    Static(Asset),
    /// `/browse/NAME/PATH[/]`.
    Browse {
        /// The client name.
        name: String,
        /// The path's segments beneath the namespace (none: its root).
        path: Vec<Vec<u8>>,
        /// The target ended with `/`: a directory is asked for.
        dir: bool,
    },
    /// `/files/NAME/PATH[/]`.
    Files {
        /// The client name.
        name: String,
        /// The path's segments.
        path: Vec<Vec<u8>>,
        /// `?format=tar`.
        tar: bool,
    },
    /// `POST /plans[/NAME]`: the name from the path, or from the form.
    SetPlan {
        /// The name in the path, if any.
        name: Option<String>,
    },
}

/// Why no route: the status to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// 404.
    NotFound,
    /// 405, with the methods the target allows.
    Method(&'static str),
    /// 400, with why.
    Bad(String),
}

/// The query parameters the routes read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `at=TIME`, as given.
    pub at: Option<String>,
    /// `sort=` and `order=`.
    pub sort: Sort,
    /// `format=tar`.
    pub tar: bool,
}

/// Reads the query parameters; unknown ones are ignored, known ones with
/// a bad value refused.
pub fn query(pairs: &[(String, String)]) -> Result<Query, RouteError> {
    let mut q = Query::default();
    for (k, v) in pairs {
        match k.as_str() {
            "at" if !v.is_empty() => q.at = Some(v.clone()),
            "at" => {}
            "sort" => {
                q.sort.by = match v.as_str() {
                    "name" => SortBy::Name,
                    "size" => SortBy::Size,
                    "mtime" => SortBy::Mtime,
                    "kind" | "type" => SortBy::Kind,
                    _ => return Err(RouteError::Bad(format!("sort: unknown key '{v}'"))),
                }
            }
            "order" => {
                q.sort.descending = match v.as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => return Err(RouteError::Bad("order: asc or desc".into())),
                }
            }
            "format" => match v.as_str() {
                "tar" => q.tar = true,
                _ => return Err(RouteError::Bad(format!("format: only tar, not '{v}'"))),
            },
            _ => {}
        }
    }
    Ok(q)
}

/// The route of a decoded target.
pub fn route(
    method: &Method,
    segments: &[Vec<u8>],
    trailing_slash: bool,
    q: &Query,
) -> Result<Route, RouteError> {
    let read = matches!(method, Method::Get | Method::Head);
    let first = segments.first().map(|s| s.as_slice());
    let only = segments.len() == 1 && !trailing_slash;
    let page = |r: Route| {
        if read {
            Ok(r)
        } else {
            Err(RouteError::Method("GET, HEAD"))
        }
    };
    match first {
        None => page(Route::Dashboard),
        Some(b"status.json") if only => page(Route::StatusJson),
        Some(b"metrics") if only => page(Route::Metrics),
        Some(b"static") if segments.len() == 2 && !trailing_slash => {
            match segments.get(1).map(|s| s.as_slice()) {
                Some(b"style.css") => page(Route::Static(Asset::Style)),
                Some(b"live.js") => page(Route::Static(Asset::Script)),
                _ => Err(RouteError::NotFound),
            }
        }
        Some(b"browse") | Some(b"files") => {
            let Some(name) = segments.get(1) else {
                return Err(RouteError::NotFound);
            };
            let name = client_name(name)?;
            let path = segments.get(2..).unwrap_or_default().to_vec();
            if first == Some(b"browse") {
                // `/browse/NAME` is the namespace's root, a directory.
                let dir = trailing_slash || path.is_empty();
                page(Route::Browse { name, path, dir })
            } else {
                page(Route::Files {
                    name,
                    path,
                    tar: q.tar,
                })
            }
        }
        Some(b"plans") if segments.len() <= 2 && !trailing_slash => {
            if !matches!(method, Method::Post) {
                return Err(RouteError::Method("POST"));
            }
            let name = segments.get(1).map(|n| client_name(n)).transpose()?;
            Ok(Route::SetPlan { name })
        }
        _ => Err(RouteError::NotFound),
    }
}

/// A client name from a path segment: a name no client can have names no
/// namespace.
pub fn client_name(segment: &[u8]) -> Result<String, RouteError> {
    std::str::from_utf8(segment)
        .ok()
        .filter(|n| proto::is_valid_client_name(n))
        .map(str::to_string)
        .ok_or(RouteError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<Vec<u8>> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect()
    }

    fn get(p: &str) -> Result<Route, RouteError> {
        route(
            &Method::Get,
            &segs(p),
            p.ends_with('/') && p != "/",
            &Query::default(),
        )
    }

    #[test]
    fn pages() {
        assert_eq!(get("/"), Ok(Route::Dashboard));
        assert_eq!(get("/metrics"), Ok(Route::Metrics));
        assert_eq!(get("/status.json"), Ok(Route::StatusJson));
        assert_eq!(get("/static/live.js"), Ok(Route::Static(Asset::Script)));
        assert_eq!(get("/static/x.js"), Err(RouteError::NotFound));
        assert_eq!(get("/metrics/"), Err(RouteError::NotFound));
        assert_eq!(get("/nothing"), Err(RouteError::NotFound));
        assert_eq!(
            route(&Method::Post, &segs("/metrics"), false, &Query::default()),
            Err(RouteError::Method("GET, HEAD"))
        );
    }

    #[test]
    fn browse_and_files() {
        assert_eq!(
            get("/browse/laptop/"),
            Ok(Route::Browse {
                name: "laptop".into(),
                path: vec![],
                dir: true
            })
        );
        assert_eq!(
            get("/browse/laptop"),
            Ok(Route::Browse {
                name: "laptop".into(),
                path: vec![],
                dir: true
            })
        );
        assert_eq!(
            get("/browse/laptop/etc/hosts"),
            Ok(Route::Browse {
                name: "laptop".into(),
                path: segs("etc/hosts"),
                dir: false
            })
        );
        let q = query(&[("format".into(), "tar".into())]).unwrap();
        assert_eq!(
            route(&Method::Head, &segs("/files/a/etc"), true, &q),
            Ok(Route::Files {
                name: "a".into(),
                path: segs("etc"),
                tar: true
            })
        );
        assert_eq!(get("/files/.rsb-plans/x"), Err(RouteError::NotFound));
        assert_eq!(get("/files/a b/x"), Err(RouteError::NotFound));
        assert_eq!(get("/browse"), Err(RouteError::NotFound));
    }

    #[test]
    fn plans_take_posts_only() {
        assert_eq!(
            route(
                &Method::Post,
                &segs("/plans/laptop"),
                false,
                &Query::default()
            ),
            Ok(Route::SetPlan {
                name: Some("laptop".into())
            })
        );
        assert_eq!(
            route(&Method::Post, &segs("/plans"), false, &Query::default()),
            Ok(Route::SetPlan { name: None })
        );
        assert_eq!(get("/plans/laptop"), Err(RouteError::Method("POST")));
    }

    #[test]
    fn queries() {
        let q = query(&[
            ("sort".into(), "size".into()),
            ("order".into(), "desc".into()),
            ("at".into(), "2d".into()),
            ("utm".into(), "x".into()),
        ])
        .unwrap();
        assert_eq!(q.sort.by, SortBy::Size);
        assert!(q.sort.descending);
        assert_eq!(q.at.as_deref(), Some("2d"));
        assert!(query(&[("sort".into(), "evil".into())]).is_err());
        assert!(query(&[("format".into(), "zip".into())]).is_err());
    }
}
