//! The server's side of the handshake: the client's `Hello` (version, flags,
//! name), the `Challenge` and the client's `Proof` when the server has
//! secrets, and the `Welcome` that ends it.
//!
//! Pure: the secrets are given in the config and the challenge in
//! [`ServerSession::new`]; the MACs come from [`crate::auth`]. It must not
//! touch a socket, a file, a clock or a random source. A failed
//! authentication looks the same to the client whatever its cause; only
//! the log learns which it was ([`ServerSession::auth_failure`]).

use super::{ServerSession, State};
use crate::proto::{self, ErrorCode, Frame};
use crate::server::command::Command;

/// Why a `Hello` is refused, if it is: the error code and the message.
#[must_use]
pub fn hello_refusal(version: u16, flags: u32, name: &str) -> Option<(ErrorCode, String)> {
    if version != proto::VERSION {
        Some((
            ErrorCode::Version,
            format!(
                "protocol version {version} not supported (this server speaks {})",
                proto::VERSION
            ),
        ))
    } else if flags != 0 {
        Some((
            ErrorCode::Version,
            format!("unknown hello flags {flags:#x}"),
        ))
    } else if !proto::is_valid_client_name(name) {
        Some((
            ErrorCode::BadName,
            format!(
                "invalid client name '{}'",
                proto::path::escape(name.as_bytes())
            ),
        ))
    } else {
        None
    }
}

/// The `Welcome` flags for a server that is `read_only`, with a client
/// that `authenticated`.
#[must_use]
pub fn welcome_flags(read_only: bool, authenticated: bool) -> u32 {
    let mut flags = 0;
    if read_only {
        flags |= proto::WELCOME_READ_ONLY;
    }
    if authenticated {
        flags |= proto::WELCOME_AUTHENTICATED;
    }
    flags
}

impl ServerSession {
    /// The first frame, `Hello`: welcomed at once without secrets, else
    /// challenged.
    pub(super) fn handle_hello(&mut self, version: u16, name: String, flags: u32, nonce: Vec<u8>) {
        if let Some((code, message)) = hello_refusal(version, flags, &name) {
            self.fail(code, message);
        } else if self.config.secrets.is_some() {
            self.push(&Frame::Challenge {
                nonce: self.nonce.to_vec(),
            });
            self.state = State::AwaitProof {
                name,
                client_nonce: nonce,
            };
        } else {
            self.welcome(name, Vec::new());
        }
    }

    /// The client's `Proof` (the state is `AwaitProof`).
    pub(super) fn handle_proof(&mut self, mac: &[u8]) {
        let State::AwaitProof { name, client_nonce } =
            std::mem::replace(&mut self.state, State::Ready)
        else {
            return;
        };
        self.check_proof(name, client_nonce, mac);
    }

    /// Accepts the client as `name`; `proof` is the server's own proof
    /// (empty without secrets).
    fn welcome(&mut self, name: String, proof: Vec<u8>) {
        self.name = Some(name.clone());
        self.state = State::Ready;
        self.deadline = None;
        self.commands.push_back(Command::OpenNamespace { name });
        let flags = welcome_flags(self.config.read_only, !proof.is_empty());
        self.push(&Frame::Welcome {
            version: proto::VERSION,
            flags,
            proof,
            store: self.config.store,
        });
    }

    /// Checks the client's `Proof`. Every failure looks the same to the
    /// client; the log learns which it was.
    fn check_proof(&mut self, name: String, client_nonce: Vec<u8>, mac: &[u8]) {
        let Some(secrets) = self.config.secrets.clone() else {
            return;
        };
        let (key, known) = secrets.key(&name);
        // The MAC is computed even for a malformed nonce or an unknown name,
        // so the work done does not tell them apart.
        let good = key.is_client_proof(mac, &name, &client_nonce, &self.nonce);
        let why = if !known {
            Some("unknown name")
        } else if mac.is_empty() {
            Some("the client has no secret")
        } else if !crate::auth::is_nonce(&client_nonce) {
            Some("bad client nonce")
        } else if !good {
            Some("wrong secret")
        } else {
            None
        };
        match why {
            Some(why) => {
                self.fail(ErrorCode::Auth, format!("authentication failed for {name}"));
                self.auth_failure = Some((name, why));
            }
            None => {
                let proof = key.server_proof(&name, &client_nonce, &self.nonce);
                self.welcome(name, proof.to_vec());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::proto::WirePath;
    use crate::server::session::SessionConfig;
    use crate::testing::frames::{bytes, hello};
    use crate::testing::server::{drain_commands, sent_frames};

    #[test]
    fn bad_names_versions_and_auth_are_refused() {
        let now = Instant::now();
        for (frame, code) in [
            (hello(".."), ErrorCode::BadName),
            (hello("a/b"), ErrorCode::BadName),
            (hello(""), ErrorCode::BadName),
            (
                Frame::Hello {
                    version: proto::VERSION + 1,
                    name: "a".into(),
                    flags: 0,
                    nonce: vec![],
                },
                ErrorCode::Version,
            ),
            (
                // Version 1 entries carried no owners.
                Frame::Hello {
                    version: 1,
                    name: "a".into(),
                    flags: 0,
                    nonce: vec![],
                },
                ErrorCode::Version,
            ),
            (
                Frame::Hello {
                    version: proto::VERSION,
                    name: "a".into(),
                    flags: 1,
                    nonce: vec![],
                },
                ErrorCode::Version,
            ),
        ] {
            let mut s = ServerSession::new(SessionConfig::default(), now, [0; 32]);
            s.handle_input(now, &bytes(&[frame]));
            assert!(s.is_closing());
            match &sent_frames(&mut s)[..] {
                [Frame::Error { code: c, .. }] => assert_eq!(*c, code),
                other => panic!("{other:?}"),
            }
            assert!(drain_commands(&mut s).is_empty());
        }
    }

    #[test]
    fn welcome_flags_say_read_only_and_authenticated() {
        assert_eq!(welcome_flags(false, false), 0);
        assert_eq!(welcome_flags(true, false), proto::WELCOME_READ_ONLY);
        assert_eq!(
            welcome_flags(true, true),
            proto::WELCOME_READ_ONLY | proto::WELCOME_AUTHENTICATED
        );
    }

    fn with_secrets(now: Instant, nonce: [u8; 32]) -> ServerSession {
        let secrets = crate::auth::Secrets::parse(b"laptop:pw\n", [7; 32]).unwrap();
        ServerSession::new(
            SessionConfig {
                secrets: Some(Arc::new(secrets)),
                ..SessionConfig::default()
            },
            now,
            nonce,
        )
    }

    fn hello_nonce(name: &str, nonce: &[u8]) -> Frame {
        Frame::Hello {
            version: proto::VERSION,
            name: name.into(),
            flags: 0,
            nonce: nonce.to_vec(),
        }
    }

    /// Says hello as `name` with `secret`, answers the challenge, and
    /// returns what the server sent after the proof.
    fn authenticate(s: &mut ServerSession, name: &str, secret: &[u8], nc: &[u8]) -> Vec<Frame> {
        let now = Instant::now();
        s.handle_input(now, &bytes(&[hello_nonce(name, nc)]));
        let ns = match &sent_frames(s)[..] {
            [Frame::Challenge { nonce }] => nonce.clone(),
            other => panic!("{other:?}"),
        };
        assert!(
            drain_commands(s).is_empty(),
            "nothing is opened before the proof"
        );
        let mac = crate::auth::Key::from_secret(secret).client_proof(name, nc, &ns);
        s.handle_input(now, &bytes(&[Frame::Proof { mac: mac.to_vec() }]));
        sent_frames(s)
    }

    #[test]
    fn a_right_proof_is_welcomed_with_the_servers_own_proof() {
        let mut s = with_secrets(Instant::now(), [5; 32]);
        let out = authenticate(&mut s, "laptop", b"pw", &[1; 32]);
        let [Frame::Welcome { flags, proof, .. }] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(*flags, proto::WELCOME_AUTHENTICATED);
        assert!(crate::auth::Key::from_secret(b"pw")
            .is_server_proof(proof, "laptop", &[1; 32], &[5; 32]));
        assert_eq!(
            drain_commands(&mut s),
            vec![Command::OpenNamespace {
                name: "laptop".into()
            }]
        );
    }

    #[test]
    fn every_failed_proof_looks_the_same_to_the_client() {
        for (name, secret, nc, why) in [
            ("laptop", &b"wrong"[..], &[1u8; 32][..], "wrong secret"),
            ("nobody", b"pw", &[1; 32], "unknown name"),
            ("laptop", b"pw", &[1; 5], "bad client nonce"),
        ] {
            let mut s = with_secrets(Instant::now(), [5; 32]);
            let out = authenticate(&mut s, name, secret, nc);
            match &out[..] {
                [Frame::Error {
                    code: ErrorCode::Auth,
                    message,
                }] => assert_eq!(message, &format!("authentication failed for {name}")),
                other => panic!("{other:?}"),
            }
            assert!(s.is_closing());
            assert!(drain_commands(&mut s).is_empty());
            assert_eq!(s.auth_failure(), Some((name, why)));
        }
        // No secret at all: an empty proof.
        let mut s = with_secrets(Instant::now(), [5; 32]);
        s.handle_input(Instant::now(), &bytes(&[hello_nonce("laptop", &[])]));
        sent_frames(&mut s);
        s.handle_input(Instant::now(), &bytes(&[Frame::Proof { mac: vec![] }]));
        assert!(matches!(
            sent_frames(&mut s)[..],
            [Frame::Error {
                code: ErrorCode::Auth,
                ..
            }]
        ));
    }

    #[test]
    fn a_replayed_proof_fails_against_a_new_challenge() {
        let nc = [1; 32];
        let mut first = with_secrets(Instant::now(), [5; 32]);
        first.handle_input(Instant::now(), &bytes(&[hello_nonce("laptop", &nc)]));
        sent_frames(&mut first);
        let mac = crate::auth::Key::from_secret(b"pw").client_proof("laptop", &nc, &[5; 32]);
        let mut second = with_secrets(Instant::now(), [6; 32]);
        second.handle_input(Instant::now(), &bytes(&[hello_nonce("laptop", &nc)]));
        sent_frames(&mut second);
        second.handle_input(
            Instant::now(),
            &bytes(&[Frame::Proof { mac: mac.to_vec() }]),
        );
        assert!(second.is_closing());
        assert!(drain_commands(&mut second).is_empty());
    }

    #[test]
    fn requests_before_the_proof_are_refused() {
        let mut s = with_secrets(Instant::now(), [5; 32]);
        s.handle_input(Instant::now(), &bytes(&[hello_nonce("laptop", &[1; 32])]));
        sent_frames(&mut s);
        s.handle_input(
            Instant::now(),
            &bytes(&[Frame::List {
                id: 1,
                path: WirePath::root(),
            }]),
        );
        assert!(s.is_closing());
        assert!(drain_commands(&mut s).is_empty());
    }

    #[test]
    fn a_silent_prover_hits_the_handshake_deadline() {
        let t0 = Instant::now();
        let mut s = with_secrets(t0, [5; 32]);
        s.handle_input(t0, &bytes(&[hello_nonce("laptop", &[1; 32])]));
        sent_frames(&mut s);
        let d = s.poll_timeout().unwrap();
        assert!(d <= t0 + Duration::from_secs(5));
        s.handle_timeout(d);
        assert!(s.is_closing());
    }
}
