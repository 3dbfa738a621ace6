//! Issue 13, the web interface end to end: the real `rsb-server --http
//! 127.0.0.1:0` with trees backed up by the real `rsb-client`, driven by
//! curl (the real HTTP client) and by raw `TcpStream`s where a test needs
//! exact bytes on the wire (pipelining, hostile targets, idle and slow
//! peers). Statuses, headers and bytes are checked, never just "it ran".
//!
//! One binary for every web concern (CI links it once); each concern is a
//! module under `tests/web/`:
//! * `http`: the helpers (curl, a raw connection, URL and HTML bits);
//! * `files`: downloads: ranges, preconditions, HEAD, multipart, resume,
//!   `?at=`;
//! * `tar`: a directory as a tar stream, extracted by GNU tar;
//! * `hostile`: hostile names escaped in pages and never in a header;
//! * `guards`: what a review found: a foreign `Host` (DNS rebinding),
//!   error answers to HEAD, plans over a file with errors, a flooding
//!   lingerer;
//! * `traversal`: targets that leave the namespace, stored symlinks;
//! * `auth`: Basic credentials, namespaces, admins, the login rate limit;
//! * `conns`: keep-alive, pipelining, 1,000 idle connections, a slow
//!   reader beside a backup, `--http-max`;
//! * `tls`: HTTPS with a given certificate and a self-signed one (made
//!   once, its fingerprint logged), bad certificate files, bad and
//!   stalled handshakes;
//! * `plans`: the plan forms (CSRF, Origin) and an agent following them;
//! * `pages`: the dashboard, `/status.json`, `/metrics`, listings, errors;
//! * `bounds`: shared whole-file checks and their cap, the stall deadline
//!   of a waiting range, a huge directory's listing cut.
//!
//! Every wait is bounded: curl runs with `--max-time`, sockets with
//! timeouts, processes through `tests/common`'s bounded waits.

#[macro_use]
mod common;

mod web {
    pub mod http;

    mod auth;
    mod bounds;
    mod conns;
    mod files;
    mod guards;
    mod hostile;
    mod pages;
    mod plans;
    mod tar;
    mod tls;
    mod traversal;
}
