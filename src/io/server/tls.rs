//! TLS for the web interface: the server's certificate (loaded from the
//! files `--tls-cert`/`--tls-key` name, or made once under the root) and
//! one [`TlsSession`] per connection, a rustls `ServerConnection` driven
//! over a non-blocking socket.
//!
//! Owns the certificate files under `ROOT/.rsb-tls/` and the TLS records
//! of a connection; it must not parse HTTP, decide what a connection does
//! next, or register anything with the loop's `Poll`: the web connection
//! (`web_conn/`) calls it when its socket is ready and keeps its own
//! interest. Through TLS there is no sendfile: the connection reads (pread)
//! a body into a buffer and hands it to [`TlsSession::write_plain`].
//!
//! # Call order for one connection
//! ```text
//! let tls = Tls::load(cert, key)?;         // or Tls::self_signed(root, &names)?
//! log fingerprint: tls.fingerprint()       // once, at start
//! // accepted a socket:
//! let mut s = tls.session()?;
//! // on readable (edge-triggered: call again while progress.more):
//! let p = s.read_plain(&mut sock, &mut request_bytes, room)?;   // Err: close
//! // after every read_plain and write_plain, and on writable:
//! if s.wants_write() { s.flush(&mut sock)?; }        // Ok(false): wait for writable
//! // answering, a body chunk at a time:
//! let took = s.write_plain(&chunk[sent..])?;          // 0: buffer full, flush first
//! // ending: after p.eof, or to close after an answer:
//! s.send_close_notify(); s.flush(&mut sock)?;  // then close the socket
//! ```
//! The ciphertext a session holds is bounded ([`SEND_BUFFER`]): when the
//! peer reads slowly `write_plain` takes less, and the body loop waits for
//! writable like a short sendfile. What a session reads is bounded by the
//! caller's `max`, and rustls holds at most one record's worth of
//! plaintext, so a peer that sends without reading costs nothing more.

use std::fmt;
use std::fs;
use std::io::{self, BufRead, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use log::{info, warn};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

use crate::io::error::FsError;

#[cfg(test)]
mod tests;

/// The most ciphertext (and, during the handshake, plaintext) a session
/// queues before [`TlsSession::write_plain`] takes less than offered:
/// enough to keep a fast peer's window full between two writable events.
pub const SEND_BUFFER: usize = 256 * 1024;

/// The folder under the root that holds the self-signed certificate.
pub const TLS_DIR: &str = ".rsb-tls";

/// Why TLS could not be set up, or a session made. A peer's bad
/// handshake is never one of these: it is an error of that connection's
/// [`TlsSession::read_plain`] only.
#[derive(Debug)]
pub enum TlsError {
    /// A file or folder could not be read, made or written.
    Fs(FsError),
    /// A PEM file held nothing usable: its path and why.
    Pem {
        /// The file as given.
        path: String,
        /// What was wrong with it.
        cause: String,
    },
    /// rustls refused the certificate chain or the key.
    Rejected {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// rustls's reason.
        cause: rustls::Error,
    },
    /// The self-signed certificate could not be made.
    Generate(rcgen::Error),
    /// A session could not be made from the configuration.
    Session(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Fs(e) => write!(f, "{e}"),
            TlsError::Pem { path, cause } => write!(f, "read {path}: {cause}"),
            TlsError::Rejected { cert, key, cause } => {
                write!(f, "use certificate {cert} with key {key}: {cause}")
            }
            TlsError::Generate(e) => write!(f, "make a self-signed certificate: {e}"),
            TlsError::Session(e) => write!(f, "start a TLS session: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

impl From<FsError> for TlsError {
    fn from(e: FsError) -> TlsError {
        TlsError::Fs(e)
    }
}

/// The server's TLS configuration: its certificate chain and key, shared
/// by every session, and the certificate's SHA-256 fingerprint.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ServerConfig>,
    fingerprint: String,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads a PEM certificate chain (the server's certificate first) and
    /// its PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let chain = read_chain(cert)?;
        let private = read_key(key)?;
        Tls::from_der(chain, private, cert, key)
    }

    /// The server's own certificate under `dir/.rsb-tls/`, made the first
    /// time (for `names`: IP addresses and DNS names; unusable ones are
    /// left out) and loaded as it is at every later start, so that a
    /// fingerprint a user accepted stays valid. A half-made pair (a crash
    /// between the two files) is made again; a damaged one is an error,
    /// never silently replaced.
    pub fn self_signed(dir: &Path, names: &[String]) -> Result<Tls, TlsError> {
        let tls_dir = dir.join(TLS_DIR);
        make_private_dir(dir, &tls_dir)?;
        let cert = tls_dir.join("cert.pem");
        let key = tls_dir.join("key.pem");
        if is_file(&cert)? && is_file(&key)? {
            warn_if_open(&key);
            return Tls::load(&cert, &key);
        }
        let (cert_pem, key_pem) = generate(names)?;
        // The key first: a cert.pem is only ever beside its own key.
        write_atomic(&tls_dir, "key.pem", key_pem.as_bytes(), 0o600)?;
        write_atomic(&tls_dir, "cert.pem", cert_pem.as_bytes(), 0o644)?;
        let tls = Tls::load(&cert, &key)?;
        info!(
            "made a self-signed certificate {} (SHA-256 {})",
            cert.display(),
            tls.fingerprint
        );
        Ok(tls)
    }

    /// The certificate's SHA-256 fingerprint, `AB:CD:...` in uppercase as
    /// browsers and `openssl x509 -fingerprint -sha256` show it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A new session for one accepted connection.
    pub fn session(&self) -> Result<TlsSession, TlsError> {
        let mut conn = ServerConnection::new(self.config.clone()).map_err(TlsError::Session)?;
        conn.set_buffer_limit(Some(SEND_BUFFER));
        Ok(TlsSession { conn })
    }

    fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Tls, TlsError> {
        let rejected = |cause| TlsError::Rejected {
            cert: cert_path.display().to_string(),
            key: key_path.display().to_string(),
            cause,
        };
        let fingerprint = match chain.first() {
            Some(leaf) => fingerprint_of(leaf),
            None => return Err(pem_error(cert_path, "no certificate in the file")),
        };
        // The provider is named, not taken from a process default, so that
        // no other crate's choice can change it.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(rejected)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(rejected)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
            fingerprint,
        })
    }
}

/// What one [`TlsSession::read_plain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Progress {
    /// Plaintext bytes appended to `out`.
    pub read: usize,
    /// TLS bytes taken from the socket (records of the handshake
    /// included, so that a handshake's first byte can start a clock).
    pub received: usize,
    /// The peer will send nothing more (close_notify, or a TCP end
    /// without one); everything it sent before is in `out`.
    pub eof: bool,
    /// Stopped at `max` before the socket was drained: call again without
    /// waiting for readiness (edge-triggered, no new event will come).
    pub more: bool,
    /// Records are waiting to be sent (handshake messages, or answers
    /// queued earlier): call [`TlsSession::flush`].
    pub wants_write: bool,
}

/// One connection's TLS state over a non-blocking socket (any `Read +
/// Write` that returns `WouldBlock`). It never blocks and never loops
/// beyond what the socket takes.
pub struct TlsSession {
    conn: ServerConnection,
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("wants_write", &self.conn.wants_write())
            .finish_non_exhaustive()
    }
}

impl TlsSession {
    /// Reads TLS records from `sock` until it would block, the peer ended,
    /// or `max` plaintext bytes were appended to `out`; processes them
    /// (the handshake included) and appends the plaintext. An error
    /// (a bad handshake, a forged record, a socket error) ends this
    /// connection: the alert that says why has been tried once on `sock`.
    pub fn read_plain<S: Read + Write>(
        &mut self,
        sock: &mut S,
        out: &mut Vec<u8>,
        max: usize,
    ) -> io::Result<Progress> {
        let start = out.len();
        let mut received = 0;
        let mut eof = false;
        let mut more = false;
        loop {
            let got = out.len().saturating_sub(start);
            let room = max.saturating_sub(got);
            if room == 0 {
                more = true;
                break;
            }
            // What rustls holds is taken first: its plaintext buffer is
            // small, and read_tls refuses to read while it is full.
            match self.take_plain(out, room) {
                Taken::Some => continue,
                Taken::End => {
                    eof = true;
                    break;
                }
                Taken::Nothing => {}
            }
            match self.conn.read_tls(sock) {
                Ok(n) => received += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // On a TCP end (Ok(0) above) this still runs: it decides
            // whether the end was clean, which take_plain then reports.
            if let Err(e) = self.conn.process_new_packets() {
                // The last gasp: the alert that tells the peer why.
                let _ = self.conn.write_tls(sock);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        Ok(Progress {
            read: out.len().saturating_sub(start),
            received,
            eof,
            more,
            wants_write: self.conn.wants_write(),
        })
    }

    /// Queues plaintext to send, at most what fits under [`SEND_BUFFER`]
    /// of queued records; returns how much it took (0: the buffer is
    /// full, [`TlsSession::flush`] and wait for writable). Before the
    /// handshake ends the plaintext waits, under the same bound. An error
    /// is the fatal error the connection already had.
    pub fn write_plain(&mut self, data: &[u8]) -> io::Result<usize> {
        self.conn.writer().write(data)
    }

    /// Writes queued records to `sock` until it would block; true when
    /// nothing is left queued.
    pub fn flush<S: Write>(&mut self, sock: &mut S) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Records are queued for the socket.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// The handshake has not finished yet.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Queues the close_notify alert (then [`TlsSession::flush`] and close
    /// the socket); nothing can be sent after it.
    pub fn send_close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    /// The protocol agreed by ALPN (`http/1.1`), if the client asked for
    /// one.
    #[cfg(test)]
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// Moves at most `room` bytes of the plaintext rustls holds to `out`.
    fn take_plain(&mut self, out: &mut Vec<u8>, room: usize) -> Taken {
        let mut reader = self.conn.reader();
        let taken = match reader.fill_buf() {
            // An empty chunk from fill_buf is a clean close_notify.
            Ok([]) => return Taken::End,
            Ok(chunk) => {
                let part = chunk.get(..room).unwrap_or(chunk);
                out.extend_from_slice(part);
                part.len()
            }
            // A TCP end without close_notify: for HTTP, whose messages
            // carry their own length, just an end.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Taken::End,
            Err(_) => return Taken::Nothing,
        };
        reader.consume(taken);
        Taken::Some
    }
}

/// What [`TlsSession::take_plain`] found.
enum Taken {
    Some,
    Nothing,
    End,
}

fn pem_error(path: &Path, cause: impl fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        cause: cause.to_string(),
    }
}

/// An error of the PEM reader: a failed open or read keeps its errno.
fn from_pem(path: &Path, e: pem::Error) -> TlsError {
    match e {
        pem::Error::Io(e) => TlsError::Fs(FsError::io("read", path.display().to_string(), e)),
        e => pem_error(path, e),
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| from_pem(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| from_pem(path, e))?;
    if chain.is_empty() {
        return Err(pem_error(path, "no certificate in the file"));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::NoItemsFound => pem_error(
            path,
            "no private key in the file (PKCS#8, RSA or EC PEM expected)",
        ),
        e => from_pem(path, e),
    })
}

/// `AB:CD:...`: SHA-256 of the DER certificate.
fn fingerprint_of(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// A new key pair and a certificate for `names`, both in PEM.
fn generate(names: &[String]) -> Result<(String, String), TlsError> {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "rsb-server");
    for name in names {
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let san = match name.parse::<IpAddr>() {
            // A wildcard bind address names no host a browser could ask for.
            Ok(ip) if ip.is_unspecified() => continue,
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => match name.to_string().try_into() {
                Ok(dns) => SanType::DnsName(dns),
                Err(_) => {
                    warn!("self-signed certificate: {name:?} is not a host name, left out");
                    continue;
                }
            },
        };
        if !params.subject_alt_names.contains(&san) {
            params.subject_alt_names.push(san);
        }
    }
    let key = KeyPair::generate().map_err(TlsError::Generate)?;
    let cert = params.self_signed(&key).map_err(TlsError::Generate)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// True for a regular file, false when nothing is there; anything else
/// (a symbolic link, a folder) is an error rather than something to
/// follow or replace.
fn is_file(path: &Path) -> Result<bool, TlsError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(true),
        Ok(_) => {
            Err(FsError::other("open", path.display().to_string(), "not a regular file").into())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(FsError::io("stat", path.display().to_string(), e).into()),
    }
}

/// `dir/.rsb-tls` as a folder only its owner can enter (made 0700 when
/// missing; a symbolic link there is refused).
fn make_private_dir(parent: &Path, dir: &Path) -> Result<(), TlsError> {
    let shown = dir.display().to_string();
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => sync_dir(parent)?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(FsError::io("mkdir", shown, e).into()),
    }
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_dir() => Ok(()),
        Ok(_) => Err(FsError::other("open", shown, "not a folder").into()),
        Err(e) => Err(FsError::io("stat", shown, e).into()),
    }
}

/// Warns when the key of the self-signed certificate can be read by
/// others (an edit by hand); it is still used.
fn warn_if_open(key: &Path) {
    if let Ok(m) = fs::metadata(key) {
        if m.mode() & 0o077 != 0 {
            warn!(
                "{}: readable by others (mode {:o}); chmod 600 it",
                key.display(),
                m.mode() & 0o777
            );
        }
    }
}

/// Writes `dir/name` whole or not at all: a temporary file, fsync,
/// rename, fsync of the folder.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let target = dir.join(name);
    let temp: PathBuf = dir.join(format!("{name}.tmp.{}", std::process::id()));
    let shown = temp.display().to_string();
    // A temporary file of an earlier crash of a process with this id.
    let _ = fs::remove_file(&temp);
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
            .map_err(|e| FsError::io("create", shown.clone(), e))?;
        // The umask may have taken bits that a certificate needs.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| FsError::io("chmod", shown.clone(), e))?;
        file.write_all(bytes)
            .map_err(|e| FsError::io("write", shown.clone(), e))?;
        file.sync_all()
            .map_err(|e| FsError::io("fsync", shown.clone(), e))?;
        fs::rename(&temp, &target).map_err(|e| FsError::io("rename", shown.clone(), e))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), TlsError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FsError::io("fsync", dir.display().to_string(), e).into())
}
