//! The one table of frame kinds: for each kind its wire byte, its name, who
//! sends it, and whether raw body bytes follow it. The codec reads and
//! writes kind bytes through it ([`Kind::from_byte`], [`Kind::of`]), and
//! anything else that needs a kind byte asks here instead of spelling the
//! number.
//!
//! The bytes are the wire protocol: changing one breaks every peer. A new
//! kind is one more line in the table (and a `Frame` variant of the same
//! name, which the table's `Kind::of` will not compile without).

use super::frame::Frame;

/// Which side of a connection may send a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// Only the client.
    Client,
    /// Only the server.
    Server,
    /// Either: backup entries go to the server, restored ones come back.
    Both,
}

/// Writes the table once: the `Kind` enum, its bytes and names, and the
/// map from each `Frame` variant (of the same name) to its kind.
macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident = $byte:literal, $from:ident, body: $body:literal;)*) => {
        /// A frame kind, numbered as on the wire.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Kind {
            $($(#[$doc])* $name = $byte,)*
        }

        impl Kind {
            /// Every kind, in wire order.
            pub const ALL: &'static [Kind] = &[$(Kind::$name),*];

            /// The kind with this wire byte, if any.
            #[must_use]
            pub fn from_byte(byte: u8) -> Option<Kind> {
                match byte {
                    $($byte => Some(Kind::$name),)*
                    _ => None,
                }
            }

            /// The kind's name, as the `Frame` variant is called.
            #[must_use]
            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$name => stringify!($name),)*
                }
            }

            /// Who may send it.
            #[must_use]
            pub fn sender(self) -> Sender {
                match self {
                    $(Kind::$name => Sender::$from,)*
                }
            }

            /// True when raw body bytes follow the frame (their count is
            /// in its fields).
            #[must_use]
            pub fn has_body(self) -> bool {
                match self {
                    $(Kind::$name => $body,)*
                }
            }

            /// The kind of `frame`.
            #[must_use]
            pub fn of(frame: &Frame) -> Kind {
                match frame {
                    $(Frame::$name { .. } => Kind::$name,)*
                }
            }
        }
    };
}

kinds! {
    /// Client's first frame.
    Hello = 1, Client, body: false;
    /// The server accepts the client.
    Welcome = 2, Server, body: false;
    /// A fatal error; the connection ends.
    Error = 3, Server, body: false;
    /// The server's nonce, with `--secrets`.
    Challenge = 4, Server, body: false;
    /// The client's answer to the challenge.
    Proof = 5, Client, body: false;
    /// A directory entry.
    Dir = 10, Both, body: false;
    /// A symlink entry.
    Symlink = 11, Both, body: false;
    /// A file entry: `size` body bytes follow.
    File = 12, Both, body: true;
    /// Ends a file body.
    FileEnd = 13, Both, body: false;
    /// Make everything so far durable.
    Commit = 14, Client, body: false;
    /// A commit is durable.
    Committed = 15, Server, body: false;
    /// One request or entry failed.
    Failed = 16, Server, body: false;
    /// List a path.
    List = 20, Client, body: false;
    /// One listed entry.
    ListEntry = 21, Server, body: false;
    /// Send back a path.
    Restore = 22, Client, body: false;
    /// A `List` or `Restore` is complete.
    Done = 23, Server, body: false;
    /// What the client is about to back up.
    Manifest = 24, Client, body: false;
    /// Which manifest entries the server needs.
    Need = 25, Server, body: false;
    /// A file resumed at an offset: `size - offset` body bytes follow.
    FileFrom = 26, Both, body: true;
    /// A large restored file, offered.
    Offer = 27, Server, body: false;
    /// The answer to an `Offer`.
    Want = 28, Client, body: false;
    /// Check stored files against their crc32c.
    Verify = 29, Client, body: false;
    /// A `Verify` is complete.
    Verified = 30, Server, body: false;
    /// How far a `Verify` got.
    Progress = 31, Server, body: false;
    /// The other answer to an `Offer`: send nothing of it.
    Skip = 32, Client, body: false;
    /// A FIFO, socket or device entry.
    Special = 33, Both, body: false;
    /// User and group names of ids that entries use.
    Names = 34, Both, body: false;
    /// The extended attributes of the entry frame that follows.
    Xattrs = 35, Both, body: false;
    /// A hard link: another name of a file already sent.
    Link = 36, Both, body: false;
    /// The metadata of a stored entry whose content is unchanged.
    Update = 37, Client, body: false;
    /// The walk of a directory is over (and whether it read it whole).
    Closed = 38, Client, body: false;
    /// The time the next `List` or `Restore` is answered as of.
    At = 39, Client, body: false;
    /// Every version the server holds of a path.
    Versions = 40, Client, body: false;
    /// One version, in the answer to `Versions`.
    Version = 41, Server, body: false;
    /// The client runs the plan of its name: send it, and on each change.
    Agent = 42, Client, body: false;
    /// The plan of the client's name (empty text: none).
    Plan = 43, Server, body: false;
    /// A piece of the block signature of a file the receiver holds (the
    /// server's after a `Need`, the client's before its `Want`).
    Signature = 44, Both, body: false;
    /// A file sent as copies from the receiver's version and literal
    /// bytes: the literal bytes follow.
    FileDelta = 45, Both, body: true;
}

impl Kind {
    /// The wire byte.
    #[must_use]
    pub fn byte(self) -> u8 {
        self as u8
    }
}

// Here rather than in `frame.rs`, so that the table depends on the frame
// type and not the other way round.
impl Frame {
    /// The wire kind byte (see the table above).
    pub fn kind(&self) -> u8 {
        Kind::of(self).byte()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_maps_back_to_its_kind() {
        for &k in Kind::ALL {
            assert_eq!(Kind::from_byte(k.byte()), Some(k));
        }
        let known = (0..=255u8).filter_map(Kind::from_byte).count();
        assert_eq!(known, Kind::ALL.len());
        assert_eq!(Kind::from_byte(0), None);
        assert_eq!(Kind::from_byte(99), None);
    }

    #[test]
    fn the_table_is_in_wire_order_with_unique_names() {
        assert!(Kind::ALL.windows(2).all(|w| w[0].byte() < w[1].byte()));
        let mut names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len());
    }

    #[test]
    fn bodies_follow_file_headers_from_either_side() {
        let with_body: Vec<Kind> = Kind::ALL.iter().copied().filter(|k| k.has_body()).collect();
        assert_eq!(with_body, [Kind::File, Kind::FileFrom, Kind::FileDelta]);
        assert!(with_body.iter().all(|k| k.sender() == Sender::Both));
        assert_eq!(Kind::Hello.sender(), Sender::Client);
        assert_eq!(Kind::Error.sender(), Sender::Server);
    }
}
