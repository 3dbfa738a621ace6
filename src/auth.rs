//! Authentication, pure: the secrets file's format, keys, and the two
//! proofs of the challenge-response handshake (see [`crate::proto`]'s
//! "Handshake"). No file, socket, clock or random source here: the I/O shell
//! reads the files and supplies the nonces.
//!
//! The MAC is keyed BLAKE3. A name's key is `derive_key(KEY_CONTEXT,
//! secret)`, so a secret of any length gives a 32-byte key. The client's
//! proof is `keyed_hash(key, "rsb client proof" || name || Nc || Ns)`, the
//! server's the same with "rsb server proof": the two can never be swapped,
//! and each covers both sides' fresh nonces, so a recorded proof is useless
//! on any other connection. Proofs are compared in constant time.

use std::collections::HashMap;
use std::fmt;

use crate::proto::{self, NONCE_LEN};

/// Length of a proof.
pub const MAC_LEN: usize = 32;
/// Domain separation for key derivation (BLAKE3 `derive_key` context).
const KEY_CONTEXT: &str = "rsb 2026-11-21 secret to authentication key";

/// A key derived from one name's secret.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl Key {
    /// The key for `secret`.
    pub fn from_secret(secret: &[u8]) -> Key {
        Key(blake3::derive_key(KEY_CONTEXT, secret))
    }

    fn mac(&self, label: &[u8], name: &str, client: &[u8], server: &[u8]) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(label);
        // Lengths first, so no two different inputs run together into the
        // same bytes.
        for part in [name.as_bytes(), client, server] {
            h.update(&(part.len() as u32).to_be_bytes());
            h.update(part);
        }
        h.finalize()
    }

    /// The client's proof for `name` over the client's and the server's
    /// nonces.
    pub fn client_proof(&self, name: &str, client: &[u8], server: &[u8]) -> [u8; MAC_LEN] {
        *self
            .mac(b"rsb client proof", name, client, server)
            .as_bytes()
    }

    /// The server's proof over the same values.
    pub fn server_proof(&self, name: &str, client: &[u8], server: &[u8]) -> [u8; MAC_LEN] {
        *self
            .mac(b"rsb server proof", name, client, server)
            .as_bytes()
    }

    /// True when `secret` is the secret this key was made from (HTTP Basic
    /// credentials carry the secret itself), in constant time.
    pub fn is_secret(&self, secret: &[u8]) -> bool {
        let other = blake3::derive_key(KEY_CONTEXT, secret);
        blake3::Hash::from(self.0) == other
    }

    /// Checks a client proof, in constant time.
    pub fn is_client_proof(&self, mac: &[u8], name: &str, client: &[u8], server: &[u8]) -> bool {
        is_mac(self.mac(b"rsb client proof", name, client, server), mac)
    }

    /// Checks a server proof, in constant time.
    pub fn is_server_proof(&self, mac: &[u8], name: &str, client: &[u8], server: &[u8]) -> bool {
        is_mac(self.mac(b"rsb server proof", name, client, server), mac)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

fn is_mac(want: blake3::Hash, got: &[u8]) -> bool {
    // `Hash`'s equality with a 32-byte array is constant-time.
    <[u8; MAC_LEN]>::try_from(got).is_ok_and(|got| want == got)
}

/// The server's table of names and keys (`--secrets FILE`).
#[derive(Clone)]
pub struct Secrets {
    keys: HashMap<String, Key>,
    /// Used for names not in the table, so that an unknown name costs the
    /// same work and fails the same way as a wrong secret.
    decoy: Key,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} names)", self.keys.len())
    }
}

/// A line of a secrets file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl Secrets {
    /// Parses `name:secret` lines: `#` starts a comment line, blank lines
    /// are skipped, the secret is everything after the first `:` (trailing
    /// `\r` removed). `decoy` must be random: it keys the proofs checked for
    /// unknown names.
    pub fn parse(text: &[u8], decoy: [u8; 32]) -> Result<Secrets, ParseError> {
        let mut keys = HashMap::new();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let err = |message: String| ParseError {
                line: i + 1,
                message,
            };
            if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(err("expected name:secret".into()));
            };
            let (name, secret) = (&line[..colon], &line[colon + 1..]);
            let name = std::str::from_utf8(name)
                .ok()
                .filter(|n| proto::is_valid_client_name(n))
                .ok_or_else(|| {
                    err(format!(
                        "invalid client name '{}'",
                        proto::path::escape(name)
                    ))
                })?;
            if secret.is_empty() {
                return Err(err(format!("empty secret for {name}")));
            }
            if keys
                .insert(name.to_string(), Key::from_secret(secret))
                .is_some()
            {
                return Err(err(format!("{name} is listed twice")));
            }
        }
        Ok(Secrets {
            keys,
            decoy: Key(decoy),
        })
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no name is listed.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key to check `name`'s proof with, and whether the name is known.
    /// An unknown name gets the decoy key, so callers do the same work
    /// either way and fail only at the comparison.
    pub fn key(&self, name: &str) -> (&Key, bool) {
        match self.keys.get(name) {
            Some(k) => (k, true),
            None => (&self.decoy, false),
        }
    }
}

/// The client's secret: the first line of its secret file, without the line
/// ending. `None` when that line is empty.
pub fn client_secret(text: &[u8]) -> Option<&[u8]> {
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (!line.is_empty()).then_some(line)
}

/// True when `nonce` has the length a handshake nonce must have.
pub fn is_nonce(nonce: &[u8]) -> bool {
    nonce.len() == NONCE_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    const NC: [u8; 32] = [1; 32];
    const NS: [u8; 32] = [2; 32];

    #[test]
    fn proofs_check_out_only_with_the_same_key_name_and_nonces() {
        let k = Key::from_secret(b"s3cret");
        let p = k.client_proof("laptop", &NC, &NS);
        assert!(k.is_client_proof(&p, "laptop", &NC, &NS));
        assert!(!Key::from_secret(b"s3cret ").is_client_proof(&p, "laptop", &NC, &NS));
        assert!(!k.is_client_proof(&p, "laptop2", &NC, &NS));
        assert!(!k.is_client_proof(&p, "laptop", &NS, &NC));
        assert!(!k.is_client_proof(&p, "laptop", &NC, &[3; 32]));
        assert!(!k.is_client_proof(&p[..31], "laptop", &NC, &NS));
        assert!(!k.is_client_proof(&[], "laptop", &NC, &NS));
        // A client proof is not a server proof, nor the other way round.
        assert!(!k.is_server_proof(&p, "laptop", &NC, &NS));
        let s = k.server_proof("laptop", &NC, &NS);
        assert!(k.is_server_proof(&s, "laptop", &NC, &NS));
        assert_ne!(s, p);
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        let k = Key::from_secret(b"x");
        assert_ne!(
            k.client_proof("ab", b"c", b""),
            k.client_proof("a", b"bc", b"")
        );
    }

    #[test]
    fn secrets_file_format() {
        let s =
            Secrets::parse(b"# comment\n\nlaptop:pw one\r\nlab-2:a:b:c\n   \n", [9; 32]).unwrap();
        assert_eq!(s.len(), 2);
        let (k, known) = s.key("laptop");
        assert!(known);
        assert!(k.is_client_proof(
            &Key::from_secret(b"pw one").client_proof("laptop", &NC, &NS),
            "laptop",
            &NC,
            &NS
        ));
        let (k, _) = s.key("lab-2");
        assert!(k.is_client_proof(
            &Key::from_secret(b"a:b:c").client_proof("lab-2", &NC, &NS),
            "lab-2",
            &NC,
            &NS
        ));
        let (_, known) = s.key("nobody");
        assert!(!known);
    }

    #[test]
    fn bad_secrets_files_name_the_line() {
        for (text, line, what) in [
            (&b"laptop"[..], 1, "expected name:secret"),
            (b"ok:1\nbad name:x", 2, "invalid client name"),
            (b"a:\n", 1, "empty secret"),
            (b"a:1\n#\na:2", 3, "listed twice"),
            (b"../x:1", 1, "invalid client name"),
        ] {
            let e = Secrets::parse(text, [0; 32]).unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.message.contains(what), "{e}");
        }
    }

    #[test]
    fn client_secret_is_the_first_line() {
        assert_eq!(client_secret(b"abc\nignored\n"), Some(&b"abc"[..]));
        assert_eq!(client_secret(b"abc\r\n"), Some(&b"abc"[..]));
        assert_eq!(client_secret(b"abc"), Some(&b"abc"[..]));
        assert_eq!(client_secret(b"\nabc"), None);
        assert_eq!(client_secret(b""), None);
    }
}
