//! Who a web request comes from and what it may do: HTTP Basic credentials
//! checked against the secrets file (the same `name:secret` lines the
//! backup protocol proves knowledge of), `--admin` names, and the guards of
//! a request that changes state (a per-session CSRF token and a same-origin
//! check). Pure: the shell supplies the header values, the server's random
//! key and whether the web port is on loopback.
//!
//! Without `--secrets` nobody logs in: everyone who can reach the port sees
//! every namespace, and plans may be changed only through a loopback port
//! (someone on this machine). With `--secrets` every request needs
//! credentials; a client name sees its own namespace and plan, an admin
//! name everything, and only admins edit plans.
//!
//! The CSRF token is a keyed BLAKE3 hash of the `rsb_session` cookie under
//! a key drawn at every start: a page's forms carry it, and a POST must
//! carry both the cookie and its token (another site can make a browser
//! send the cookie, but cannot read the page to learn the token), from a
//! page of this origin.

use crate::auth::Secrets;

use super::model::Viewer;

/// The cookie that names a browser session.
pub const SESSION_COOKIE: &str = "rsb_session";
/// Longest `Authorization` value looked at.
const MAX_CREDENTIALS: usize = 1024;
/// Domain separation for the CSRF token.
const CSRF_CONTEXT: &[u8] = b"rsb csrf token 2026-12-03";

/// What a request may do, before CSRF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Let in, as `Viewer` says (its `csrf` not filled in yet).
    Granted(Viewer),
    /// No credentials, or malformed ones: 401.
    Missing,
    /// Wrong name or secret (the name tried, for the log): 401.
    Refused(String),
}

/// How the web interface is guarded (fixed at start).
#[derive(Debug, Clone, Copy)]
pub struct Guard<'a> {
    /// `--secrets`, if given.
    pub secrets: Option<&'a Secrets>,
    /// `--admin` names.
    pub admins: &'a [String],
    /// The web port is bound to a loopback address.
    pub loopback: bool,
}

impl Guard<'_> {
    /// Who sends a request with this `Authorization` header.
    pub fn access(&self, authorization: Option<&str>) -> Access {
        let Some(secrets) = self.secrets else {
            return Access::Granted(Viewer {
                name: None,
                sees_all: true,
                edits_plans: self.loopback,
                csrf: None,
            });
        };
        let Some((name, secret)) = authorization.and_then(basic) else {
            return Access::Missing;
        };
        let (key, known) = secrets.key(&name);
        // The decoy key of an unknown name is checked all the same: the
        // answer takes as long whether the name exists or not.
        let good = key.is_secret(&secret);
        if !(known && good) {
            return Access::Refused(name);
        }
        let admin = self.admins.contains(&name);
        Access::Granted(Viewer {
            name: Some(name),
            sees_all: admin,
            edits_plans: admin,
            csrf: None,
        })
    }
}

/// Whether `viewer` may see client `name`'s namespace and plan.
pub fn may_see(viewer: &Viewer, name: &str) -> bool {
    viewer.sees_all || viewer.name.as_deref() == Some(name)
}

/// The name and secret of a `Basic` `Authorization` value (RFC 7617: the
/// scheme case-insensitive, base64 of `name:secret`, the name without a
/// colon).
pub fn basic(header: &str) -> Option<(String, Vec<u8>)> {
    if header.len() > MAX_CREDENTIALS {
        return None;
    }
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64_decode(rest.trim())?;
    let colon = raw.iter().position(|b| *b == b':')?;
    let name = String::from_utf8(raw.get(..colon)?.to_vec()).ok()?;
    let secret = raw.get(colon + 1..)?.to_vec();
    Some((name, secret))
}

/// Decodes standard base64 (RFC 4648 section 4) with its padding; `None`
/// for any other character, a wrong length or bits left over.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let quads = b.len() / 4;
    for (i, q) in b.chunks_exact(4).enumerate() {
        let pad = q.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != quads) {
            return None;
        }
        let mut n: u32 = 0;
        for (j, c) in q.iter().enumerate() {
            let v = if j >= 4 - pad { 0 } else { value(*c)? };
            n = (n << 6) | v;
        }
        let bytes = n.to_be_bytes();
        let keep = 3 - pad;
        // Bits below the last kept byte must be zero (canonical form).
        if pad > 0 && (n & ((1 << (8 * pad)) - 1)) != 0 {
            return None;
        }
        out.extend_from_slice(bytes.get(1..1 + keep)?);
    }
    Some(out)
}

/// Encodes bytes as standard base64 with padding (the tests' credentials,
/// and the header a client would send).
pub fn base64_encode(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut n: u32 = 0;
        for (i, b) in chunk.iter().enumerate() {
            n |= (*b as u32) << (16 - 8 * i);
        }
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(ABC.get(idx).map_or('A', |c| *c as char));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The CSRF token of a browser session.
pub fn csrf_token(key: &[u8; 32], session: &str) -> String {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(CSRF_CONTEXT);
    h.update(session.as_bytes());
    hex(h.finalize().as_bytes().get(..16).unwrap_or_default())
}

/// True when `token` is the CSRF token of `session` (constant time in the
/// token's bytes).
pub fn is_csrf(key: &[u8; 32], session: &str, token: &str) -> bool {
    let want = csrf_token(key, session);
    want.len() == token.len()
        && want
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Whether a state-changing request comes from a page of this server: its
/// `Origin` (or, without one, its `Referer`) must be `scheme://host` with
/// the request's own `Host`. A request with neither is refused: every
/// browser sends `Origin` with a form POST.
pub fn is_same_origin(
    origin: Option<&str>,
    referer: Option<&str>,
    host: Option<&str>,
    scheme: &str,
) -> bool {
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return false;
    };
    let want = format!("{scheme}://{host}");
    match (origin, referer) {
        (Some(o), _) => o.eq_ignore_ascii_case(&want),
        (None, Some(r)) => {
            r.get(..want.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(&want))
                && matches!(r.as_bytes().get(want.len()), None | Some(b'/'))
        }
        (None, None) => false,
    }
}

/// Whether a request's `Host` names this server in a way no other site
/// can: an IP address literal (`192.168.1.4:8080`, `[::1]:8080`),
/// `localhost`, or one of `names` (`--http-host`). Without `--secrets`
/// this is what stops DNS rebinding: a page of `evil.example` whose name
/// the attacker re-points at this server's address would otherwise be
/// same-origin with it, read every backup and post plans, since the
/// browser sends `Host: evil.example`. A request without `Host` (HTTP/1.0)
/// passes: browsers always send one.
pub fn host_allowed(host: Option<&str>, names: &[String]) -> bool {
    let Some(host) = host else {
        return true;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return false;
        }
        return v6.parse::<core::net::Ipv6Addr>().is_ok();
    } else {
        match host.rsplit_once(':') {
            Some((n, port)) if is_port(port) => n,
            Some(_) => return false,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    name.parse::<core::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || names.iter().any(|n| {
            let n = n.strip_suffix('.').unwrap_or(n);
            n.eq_ignore_ascii_case(name)
        })
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets::parse(b"laptop:s3cret\nboss:hunter2\n", [7; 32]).unwrap()
    }

    #[test]
    fn only_addresses_localhost_and_given_names_pass_the_host_check() {
        let names = vec!["backup.lan".to_string()];
        for ok in [
            None,
            Some("127.0.0.1"),
            Some("127.0.0.1:8080"),
            Some("192.168.1.4:80"),
            Some("[::1]:8080"),
            Some("[::1]"),
            Some("[fe80::1]:1"),
            Some("localhost:8080"),
            Some("LOCALHOST"),
            Some("localhost."),
            Some("backup.lan:8443"),
            Some("Backup.LAN."),
        ] {
            assert!(host_allowed(ok, &names), "{ok:?}");
        }
        for bad in [
            "evil.example:8080",
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "backup.lan.evil.example",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[evil]:80",
            "127.0.0.1:",
            "127.0.0.1:80:80",
            "127.0.0.1:http",
            "",
        ] {
            assert!(!host_allowed(Some(bad), &names), "{bad:?}");
        }
        assert!(!host_allowed(Some("backup.lan"), &[]));
    }

    #[test]
    fn base64_round_trips_and_refuses_junk() {
        for s in [&b""[..], b"a", b"ab", b"abc", b"abcd", b"\x00\xff\xfe:x"] {
            let e = base64_encode(s);
            assert_eq!(base64_decode(&e).as_deref(), Some(s), "{e}");
        }
        assert_eq!(base64_encode(b"laptop:s3cret"), "bGFwdG9wOnMzY3JldA==");
        for bad in ["abc", "ab=c", "a===", "====", "ab!d", "YQ==YQ==", "YR=="] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn basic_credentials() {
        let h = format!("Basic {}", base64_encode(b"laptop:a:b"));
        assert_eq!(basic(&h), Some(("laptop".into(), b"a:b".to_vec())));
        let h = format!("basic   {}", base64_encode(b"x:"));
        assert_eq!(basic(&h), Some(("x".into(), vec![])));
        assert_eq!(basic("Bearer abc"), None);
        assert_eq!(basic(&format!("Basic {}", base64_encode(b"nocolon"))), None);
        assert_eq!(basic("Basic"), None);
    }

    #[test]
    fn access_without_secrets_is_open_and_edits_only_on_loopback() {
        let g = Guard {
            secrets: None,
            admins: &[],
            loopback: false,
        };
        let Access::Granted(v) = g.access(None) else {
            panic!()
        };
        assert!(v.sees_all && !v.edits_plans);
        let g = Guard {
            loopback: true,
            ..g
        };
        let Access::Granted(v) = g.access(None) else {
            panic!()
        };
        assert!(v.edits_plans);
    }

    #[test]
    fn access_with_secrets() {
        let s = secrets();
        let admins = vec!["boss".to_string()];
        let g = Guard {
            secrets: Some(&s),
            admins: &admins,
            loopback: true,
        };
        assert_eq!(g.access(None), Access::Missing);
        assert_eq!(g.access(Some("Basic !!")), Access::Missing);
        let cred = |c: &[u8]| format!("Basic {}", base64_encode(c));
        assert_eq!(
            g.access(Some(&cred(b"laptop:wrong"))),
            Access::Refused("laptop".into())
        );
        assert_eq!(
            g.access(Some(&cred(b"nobody:s3cret"))),
            Access::Refused("nobody".into())
        );
        let Access::Granted(v) = g.access(Some(&cred(b"laptop:s3cret"))) else {
            panic!()
        };
        assert!(!v.sees_all && !v.edits_plans);
        assert!(may_see(&v, "laptop") && !may_see(&v, "boss"));
        let Access::Granted(v) = g.access(Some(&cred(b"boss:hunter2"))) else {
            panic!()
        };
        assert!(v.sees_all && v.edits_plans && may_see(&v, "laptop"));
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let k = [1; 32];
        let t = csrf_token(&k, "abc");
        assert_eq!(t.len(), 32);
        assert!(is_csrf(&k, "abc", &t));
        assert!(!is_csrf(&k, "abd", &t));
        assert!(!is_csrf(&[2; 32], "abc", &t));
        assert!(!is_csrf(&k, "abc", ""));
    }

    #[test]
    fn same_origin() {
        let h = Some("127.0.0.1:8080");
        assert!(is_same_origin(
            Some("http://127.0.0.1:8080"),
            None,
            h,
            "http"
        ));
        assert!(!is_same_origin(
            Some("http://evil.example"),
            None,
            h,
            "http"
        ));
        assert!(!is_same_origin(
            Some("https://127.0.0.1:8080"),
            None,
            h,
            "http"
        ));
        assert!(is_same_origin(
            None,
            Some("http://127.0.0.1:8080/"),
            h,
            "http"
        ));
        assert!(!is_same_origin(
            None,
            Some("http://127.0.0.1:80800/"),
            h,
            "http"
        ));
        assert!(!is_same_origin(None, None, h, "http"));
        assert!(!is_same_origin(Some("http://x"), None, None, "http"));
        // An Origin present and foreign wins over a matching Referer.
        assert!(!is_same_origin(
            Some("null"),
            Some("http://127.0.0.1:8080/"),
            h,
            "http"
        ));
    }
}
