//! The web interface's pure half: what a request asks, what the answer is,
//! and the pages, in bytes and strings. Nothing here touches a socket, a
//! file or a clock; the connection that reads requests and writes answers
//! (with sendfile for file bodies) is [`crate::io::server`]'s `web_conn`.
//!
//! * [`request`]: one HTTP/1.1 request head parsed (httparse), bounded;
//!   the headers rsb acts on; `application/x-www-form-urlencoded` bodies;
//! * [`target`]: the request target: percent-decoded path segments,
//!   validated like wire paths, and the query;
//! * [`route`]: which page or file a target names;
//! * [`range`]: the preconditions of RFC 9110 section 13.2.2 and byte
//!   ranges: what a download answers (200, 206, 304, 412, 416);
//! * [`date`]: HTTP dates (IMF-fixdate out; the three forms in);
//! * [`mime`]: `Content-Type` by file name extension;
//! * [`auth`]: HTTP Basic credentials, the per-session CSRF token;
//! * [`model`]: what the pages show, filled in by the shell;
//! * [`html`]: escaping and URL building; [`pages`]: the pages;
//! * [`tar`]: ustar/pax headers of a directory's tar stream;
//! * [`metrics`]: the Prometheus text format of `/metrics`;
//! * [`checks`]: the whole-file checks range answers wait for, one per
//!   file in flight, capped.

pub mod auth;
pub mod checks;
pub mod date;
pub mod html;
pub mod metrics;
pub mod mime;
pub mod model;
pub mod pages;
pub mod range;
pub mod request;
pub mod route;
pub mod tar;
pub mod target;
