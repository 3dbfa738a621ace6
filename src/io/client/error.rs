//! [`NetError`]: why the client's connection to the server could not be
//! made, was refused or was lost, grouped by cause so that the exit status
//! is chosen by variant ([`NetError::exit_status`]), never by reading the
//! message. `Display` gives the message the user sees after `rsb-client: `.

use std::fmt;

use crate::client::session::SessionError;
use crate::exit;
use crate::proto::ErrorCode;

/// A failed connection. `server` fields hold the address as the user wrote
/// it (`HOST:PORT`, `[::1]:PORT`), for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// The name did not resolve or no address accepted the connection.
    Connect {
        /// The address as shown.
        server: String,
        /// Why, as the OS said it.
        cause: String,
    },
    /// The server ended the connection with an `Error` frame (busy, bad
    /// name, a protocol error it saw, ...).
    Refused {
        /// The address as shown.
        server: String,
        /// The server's reason.
        code: ErrorCode,
        /// What to print after the address (the server's words, escaped,
        /// with a hint where one helps).
        message: String,
    },
    /// Authentication failed: the server refused the client's proof, or
    /// the server could not prove that it knows the secret.
    Auth {
        /// The address as shown.
        server: String,
        /// What to print after the address.
        message: String,
    },
    /// The connection closed or its socket failed.
    Lost {
        /// The address as shown.
        server: String,
        /// What to print after the address.
        cause: String,
    },
    /// The server broke the protocol.
    Protocol {
        /// The address as shown.
        server: String,
        /// What it did.
        message: String,
    },
    /// The server did not answer the handshake, or nothing moved for too
    /// long during a command.
    TimedOut {
        /// The address as shown.
        server: String,
        /// Which wait gave up.
        message: String,
    },
    /// Something local failed (the poll, the random source, the socket's
    /// setup); the message is complete.
    Local(String),
    /// SIGINT or SIGTERM arrived during a command.
    Interrupted,
}

impl NetError {
    /// True for an error that waiting will not mend: the server refused
    /// the client's secret, name or protocol, or the loop itself failed.
    pub fn is_fatal(&self) -> bool {
        match self {
            NetError::Auth { .. } | NetError::Local(_) => true,
            NetError::Refused { code, .. } => {
                matches!(code, ErrorCode::Version | ErrorCode::BadName)
            }
            _ => false,
        }
    }

    /// The error for a session that ended (`None`: it ended without
    /// saying why, which the session never does).
    pub fn from_session(server: &str, e: Option<&SessionError>) -> NetError {
        let server = server.to_string();
        match e {
            Some(SessionError::Refused {
                code: ErrorCode::Auth,
                message,
            }) => NetError::Auth {
                server,
                message: message.clone(),
            },
            Some(SessionError::Refused { code, message }) => NetError::Refused {
                server,
                code: *code,
                message: message.clone(),
            },
            Some(SessionError::AuthFailed(message)) => NetError::Auth {
                server,
                message: message.clone(),
            },
            Some(SessionError::Protocol(message)) => NetError::Protocol {
                server,
                message: message.clone(),
            },
            Some(e @ SessionError::Closed) => NetError::Lost {
                server,
                cause: e.to_string(),
            },
            Some(e @ (SessionError::HelloTimeout | SessionError::NoProgress(_))) => {
                NetError::TimedOut {
                    server,
                    message: e.to_string(),
                }
            }
            None => NetError::Lost {
                server,
                cause: "connection lost".to_string(),
            },
        }
    }

    /// The client's exit status for this failure (see [`crate::exit`]).
    pub fn exit_status(&self) -> i32 {
        match self {
            NetError::Interrupted => exit::INTERRUPTED,
            NetError::Connect { .. }
            | NetError::Refused { .. }
            | NetError::Auth { .. }
            | NetError::Lost { .. }
            | NetError::Protocol { .. }
            | NetError::TimedOut { .. }
            | NetError::Local(_) => exit::USAGE,
        }
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Connect { server, cause } => write!(f, "cannot connect to {server}: {cause}"),
            NetError::Refused {
                server, message, ..
            }
            | NetError::Auth { server, message }
            | NetError::Protocol { server, message }
            | NetError::TimedOut { server, message } => write!(f, "{server}: {message}"),
            NetError::Lost { server, cause } => write!(f, "{server}: {cause}"),
            NetError::Local(message) => f.write_str(message),
            NetError::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl std::error::Error for NetError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_statuses_by_variant() {
        let s = "h:5000";
        let cases = [
            (
                NetError::from_session(s, Some(&SessionError::Closed)),
                "h:5000: connection closed by the server",
            ),
            (
                NetError::from_session(s, Some(&SessionError::HelloTimeout)),
                "h:5000: no answer from the server",
            ),
            (
                NetError::from_session(s, Some(&SessionError::Protocol("malformed".into()))),
                "h:5000: malformed",
            ),
            (
                NetError::from_session(
                    s,
                    Some(&SessionError::Refused {
                        code: ErrorCode::Busy,
                        message: "server busy".into(),
                    }),
                ),
                "h:5000: server busy",
            ),
            (NetError::from_session(s, None), "h:5000: connection lost"),
            (
                NetError::Connect {
                    server: s.into(),
                    cause: "Connection refused".into(),
                },
                "cannot connect to h:5000: Connection refused",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
            assert_eq!(e.exit_status(), exit::USAGE);
        }
        assert!(matches!(
            NetError::from_session(
                s,
                Some(&SessionError::Refused {
                    code: ErrorCode::Auth,
                    message: "authentication failed for box".into()
                })
            ),
            NetError::Auth { .. }
        ));
        assert_eq!(NetError::Interrupted.to_string(), "interrupted");
        assert_eq!(NetError::Interrupted.exit_status(), exit::INTERRUPTED);
    }
}
