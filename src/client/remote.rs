//! The server's address as the user writes it on the command line:
//! `HOST`, `HOST PORT`, `HOST:PORT`, `[V6ADDR]:PORT`, `[V6ADDR]` or a bare
//! IPv6 address (`::1`, which has no room for a port). Pure: the name is
//! looked up later, when connecting.

/// The port when none is given.
pub const DEFAULT_PORT: u16 = 5000;

/// The message for a port that is not one.
const BAD_PORT: &str = "PORT must be a number from 1 to 65535";

/// The host and port of `remote` (the `HOST` argument) and `separate` (a
/// `PORT` argument after it, if any). A port given both ways must be the
/// same; otherwise the error says which conflict.
pub fn parse(remote: &str, separate: Option<&str>) -> Result<(String, u16), String> {
    let separate = separate.map(port).transpose()?;
    let (host, inline) = split(remote)?;
    let port = match (inline, separate) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!(
                "two ports given: {a} in '{remote}' and {b} after it"
            ))
        }
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => DEFAULT_PORT,
    };
    Ok((host, port))
}

/// `HOST[:PORT]` into its host and port.
fn split(remote: &str) -> Result<(String, Option<u16>), String> {
    if remote.is_empty() {
        return Err("HOST is empty".to_string());
    }
    if let Some(rest) = remote.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(format!("'{remote}': '[' without its ']'"));
        };
        if !addr.contains(':') {
            return Err(format!("'{remote}': not an IPv6 address in brackets"));
        }
        return match after {
            "" => Ok((addr.to_string(), None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((addr.to_string(), Some(port(p)?))),
                None => Err(format!("'{remote}': expected ':PORT' after ']'")),
            },
        };
    }
    if remote.contains(']') {
        return Err(format!("'{remote}': ']' without its '['"));
    }
    match remote.split_once(':') {
        None => Ok((remote.to_string(), None)),
        // Two colons or more: a bare IPv6 address, without a port.
        Some((_, rest)) if rest.contains(':') => Ok((remote.to_string(), None)),
        Some(("", _)) => Err(format!("'{remote}': HOST is empty")),
        Some((host, p)) => Ok((host.to_string(), Some(port(p)?))),
    }
}

/// A port number, 1 to 65535, in decimal digits only.
fn port(p: &str) -> Result<u16, String> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD_PORT.to_string());
    }
    p.parse::<u16>()
        .ok()
        .filter(|&n| n != 0)
        .ok_or_else(|| BAD_PORT.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(remote: &str, separate: Option<&str>) -> (String, u16) {
        parse(remote, separate).unwrap_or_else(|e| panic!("{remote} {separate:?}: {e}"))
    }

    #[test]
    fn host_colon_port_and_bracketed_v6_are_accepted() {
        let hp = |h: &str, p| (h.to_string(), p);
        assert_eq!(ok("backup.lan", None), hp("backup.lan", 5000));
        assert_eq!(ok("backup.lan", Some("6000")), hp("backup.lan", 6000));
        assert_eq!(ok("backup.lan:6000", None), hp("backup.lan", 6000));
        assert_eq!(ok("10.0.0.1:7", None), hp("10.0.0.1", 7));
        assert_eq!(ok("[::1]:6000", None), hp("::1", 6000));
        assert_eq!(ok("[::1]", None), hp("::1", 5000));
        assert_eq!(ok("[::1]", Some("6000")), hp("::1", 6000));
        assert_eq!(ok("::1", None), hp("::1", 5000));
        assert_eq!(ok("fe80::1:2", Some("9")), hp("fe80::1:2", 9));
        assert_eq!(ok("h:6000", Some("6000")), hp("h", 6000), "the same twice");
    }

    #[test]
    fn conflicting_or_malformed_remotes_are_refused() {
        for (remote, separate) in [
            ("h:6000", Some("6001")),
            ("[::1]:6000", Some("5000")),
            ("h:", None),
            ("h:0", None),
            ("h:65536", None),
            ("h:+5", None),
            ("h:5x", None),
            (":5000", None),
            ("", None),
            ("[::1", None),
            ("[::1]x", None),
            ("[::1]:", None),
            ("[host]:5", None),
            ("h]", None),
            ("h", Some("0")),
            ("h", Some("99999")),
        ] {
            assert!(
                parse(remote, separate).is_err(),
                "{remote:?} {separate:?} accepted"
            );
        }
        assert_eq!(
            parse("h:6000", Some("6001")),
            Err("two ports given: 6000 in 'h:6000' and 6001 after it".to_string())
        );
        assert_eq!(parse("h:0", None), Err(BAD_PORT.to_string()));
    }
}
