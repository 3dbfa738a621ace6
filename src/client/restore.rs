//! The restore's rules, pure: where a restored tree goes (`cp -a`'s rules
//! for DEST, [`target`]), which of the server's paths are refused ([`map`]),
//! and when received entries are committed. The driver
//! (`io/client/restore.rs`) does the writes, through a confined stager.
//!
//! The server is not trusted. An entry at or beneath a symlink the server
//! sent earlier in the same restore is refused outright ([`Links`]): no
//! real tree holds both, so only a broken or malicious server sends that
//! (rsync's CVE-2024-12087 had this shape). A hard link (`Link`) is
//! accepted only to a regular file this restore wrote or kept whole, at
//! the size it had ([`Written`], [`map_link`]): a server cannot give a
//! file of the user's in DEST, or anything outside it, another name.
//! Nothing here touches the file
//! system: whether a local path is a directory comes in as a function,
//! what stands where an entry goes as a [`Local`].
//!
//! What stands in the way is replaced as `rsync -a` replaces it, except a
//! local directory with contents where the backup has a file or link: that
//! entry is refused unless `restore --force` ([`replace`]).
//!
//! A local file that already is the server's version is not received again
//! ([`unchanged`]), and an unfinished restore's top directory carries a
//! [`marker`] so that running it again converges instead of nesting
//! ([`target`]).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::proto::{EntryKind, Meta, PathError, WirePath, MAX_RESTORE_LINKS};
use crate::store::modes;

use super::plan::{COMMIT_BYTES, COMMIT_EVERY};

/// Where restored entries go: a directory to confine writes to, and the name
/// inside it that the restored path becomes (none: the directory itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The directory every write stays beneath.
    pub dir: PathBuf,
    /// The restored path's name inside it (root: the directory itself).
    pub prefix: WirePath,
}

/// The extended attribute that marks the top directory of a restore while
/// it is unfinished (NUL-terminated for the system call); its value is
/// [`marker`].
pub const MARKER: &[u8] = b"user.rsb.restoring\0";

/// The marker's value for a restore of `source`: `v1 path=/usr/lib`.
pub fn marker(source: &WirePath) -> Vec<u8> {
    let mut v = b"v1 path=/".to_vec();
    v.extend_from_slice(source.as_bytes());
    v
}

/// The target for restoring `source` into `dest` (absolute), as `cp -a`
/// does: into `dest/<basename>` when `dest` is a directory, else as `dest`
/// itself, whose parent must then be a directory. `is_dir` says whether a
/// local path is a directory, following symlinks (as `stat` does).
///
/// One exception makes a re-run converge: a directory `dest` that an
/// unfinished restore of the same `source` made (`unfinished`: it carries
/// that restore's [`marker`], see [`MARKER`]) is that restore's own
/// target, and the re-run restores into it again rather than beside what
/// is there (`dest/<basename>`).
pub fn target(
    source: &WirePath,
    dest: &Path,
    is_dir: impl Fn(&Path) -> bool,
    unfinished: impl Fn(&Path) -> bool,
) -> Result<Target, String> {
    let shown = dest.display().to_string();
    if is_dir(dest) && !unfinished(dest) {
        let prefix = match source.file_name() {
            Some(name) => WirePath::root()
                .join(name)
                .map_err(|e| format!("{shown}: {e}"))?,
            None => WirePath::root(),
        };
        return Ok(Target {
            dir: dest.to_path_buf(),
            prefix,
        });
    }
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(format!("{shown}: not a usable destination"));
    };
    if !is_dir(parent) {
        return Err(format!(
            "{}: {}",
            parent.display(),
            std::io::Error::from(std::io::ErrorKind::NotFound)
        ));
    }
    use std::os::unix::ffi::OsStrExt;
    let prefix = WirePath::root()
        .join(name.as_bytes())
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok(Target {
        dir: parent.to_path_buf(),
        prefix,
    })
}

/// The symlinks written so far in one restore, where they were put.
#[derive(Debug, Default)]
pub struct Links(HashSet<WirePath>);

impl Links {
    /// None yet.
    pub fn new() -> Links {
        Links::default()
    }

    /// A symlink was written at `p`.
    pub fn insert(&mut self, p: WirePath) {
        self.0.insert(p);
    }

    /// The symlink that `p` is, or is beneath.
    pub fn under(&self, p: &WirePath) -> Option<WirePath> {
        if self.0.is_empty() {
            return None;
        }
        let mut cur = Some(p.clone());
        while let Some(c) = cur.filter(|c| !c.is_root()) {
            if self.0.contains(&c) {
                return Some(c);
            }
            cur = c.parent();
        }
        None
    }
}

/// The regular files one restore wrote or kept whole (found already
/// the server's version), where they went beneath the target and their
/// size: the only files a `Link` from the server may name. At most
/// [`MAX_RESTORE_LINKS`] are remembered, the first ones: the server
/// links only to one of the first that many files it sends, so a file it
/// links to is always among them.
///
/// Each is remembered by a 64-bit hash of its path, keyed at random per
/// restore (SipHash, the standard `RandomState`), not by the path: about
/// 30 bytes a file, so a million fit in about 30 MiB. A server cannot aim
/// a path at another's hash without the key; two paths of one restore
/// share a hash with odds of about 2^-25 at a million files, and even
/// then a `Link` names a file of the restore's size beneath the target.
#[derive(Debug, Default)]
pub struct Written {
    files: HashMap<u64, (u64, bool)>,
    key: std::collections::hash_map::RandomState,
}

impl Written {
    /// None yet.
    pub fn new() -> Written {
        Written::default()
    }

    /// A regular file of `size` bytes was written at `p` (staged: in
    /// place once committed), or `kept`: found there already.
    pub fn insert(&mut self, p: WirePath, size: u64, kept: bool) {
        let h = self.hash(&p);
        if self.files.len() < MAX_RESTORE_LINKS || self.files.contains_key(&h) {
            self.files.insert(h, (size, kept));
        }
    }

    /// Something else is going to `p`: it is no file of this restore.
    pub fn remove(&mut self, p: &WirePath) {
        let h = self.hash(p);
        self.files.remove(&h);
    }

    /// The size of the file this restore wrote or kept at `p`.
    pub fn size(&self, p: &WirePath) -> Option<u64> {
        self.files.get(&self.hash(p)).map(|&(size, _)| size)
    }

    /// True when the file at `p` was kept as it was found, not written:
    /// what stands under its name now is that file.
    pub fn kept(&self, p: &WirePath) -> bool {
        self.files.get(&self.hash(p)).is_some_and(|&(_, kept)| kept)
    }

    /// How many are remembered.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// None remembered.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn hash(&self, p: &WirePath) -> u64 {
        use std::hash::BuildHasher;
        self.key.hash_one(p.as_bytes())
    }
}

/// What is wrong with the target of a `Link` from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkProblem {
    /// It makes no valid path beneath the target directory.
    Invalid(PathError),
    /// It has a reserved temporary name in it.
    Reserved,
    /// It is at or beneath a symlink this restore wrote.
    UnderLink(WirePath),
    /// This restore wrote or kept no regular file there.
    NotWritten,
    /// This restore wrote a file of another size there.
    OtherSize {
        /// The size it wrote.
        written: u64,
    },
}

/// Why an entry from the server is not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Its path does not make a valid path beneath the target.
    BadPath {
        /// The path as the server sent it (relative to the restored path).
        rel: WirePath,
        /// Why the joined path is invalid.
        error: PathError,
    },
    /// A component of its path is a reserved temporary name
    /// ([`crate::proto::path::TMP_PREFIX`]): no backup holds one, and
    /// writing it could pass for (or replace) a transfer's own temporary
    /// file.
    Reserved {
        /// Where it would go.
        path: WirePath,
    },
    /// It is at or beneath a symlink sent earlier in this restore.
    UnderLink {
        /// Where it would go.
        path: WirePath,
        /// The symlink.
        link: WirePath,
    },
    /// A file or link where a local directory with contents stands, and
    /// the restore was not told `--force` (see [`replace`]).
    FullDir {
        /// Where it would go.
        path: WirePath,
        /// What the server sent.
        kind: EntryKind,
    },
    /// A hard link whose target is not a file this restore wrote.
    Link {
        /// Where it would go.
        path: WirePath,
        /// Its target: where it maps beneath the target directory, or as
        /// the server sent it when it maps nowhere.
        target: WirePath,
        /// What is wrong with the target.
        problem: LinkProblem,
    },
    /// A file or link where the destination directory itself is.
    AtDest {
        /// Where it would go (the target's root).
        path: WirePath,
        /// What it is.
        kind: EntryKind,
    },
}

impl Refusal {
    /// The failure as reported: the path to name and the cause, local
    /// paths written by `show` (the destination's own rendering).
    pub fn message(
        &self,
        prefix: &WirePath,
        show: impl Fn(&WirePath) -> String,
    ) -> (String, String) {
        match self {
            Refusal::BadPath { rel, error } => (
                show(prefix),
                format!("{}: {error}", String::from_utf8_lossy(rel.as_bytes())),
            ),
            Refusal::UnderLink { path, link } => {
                let how = if link == path { "over" } else { "beneath" };
                (
                    show(path),
                    format!(
                        "refused: the server sent this {how} the symlink {} it sent earlier in this restore",
                        show(link)
                    ),
                )
            }
            Refusal::Reserved { path } => (
                show(path),
                format!(
                    "refused: the server sent a reserved name ({})",
                    crate::proto::path::RESERVED_MESSAGE
                ),
            ),
            Refusal::FullDir { path, kind } => (
                show(path),
                format!(
                    "refused: the backup has a {} here and the local directory is not empty (restore --force replaces it)",
                    kind_word(*kind)
                ),
            ),
            Refusal::Link {
                path,
                target,
                problem,
            } => {
                let shown = match problem {
                    LinkProblem::Invalid(_) => String::from_utf8_lossy(target.as_bytes()).into_owned(),
                    _ => show(target),
                };
                let why = match problem {
                    LinkProblem::Invalid(e) => format!("which is no path beneath the destination: {e}"),
                    LinkProblem::Reserved => format!(
                        "a reserved name ({})",
                        crate::proto::path::RESERVED_MESSAGE
                    ),
                    LinkProblem::UnderLink(link) => {
                        format!("beneath the symlink {} it sent earlier", show(link))
                    }
                    LinkProblem::NotWritten => {
                        "which is not a file this restore wrote".to_string()
                    }
                    LinkProblem::OtherSize { written } => {
                        format!("which this restore wrote with {written} bytes, not the link's")
                    }
                };
                (
                    show(path),
                    format!("refused: the server sent this as a hard link to {shown}, {why}"),
                )
            }
            Refusal::AtDest { path, kind } => {
                let what = if *kind == EntryKind::Symlink {
                    "link"
                } else {
                    "file"
                };
                (
                    show(path),
                    format!("the server sent a {what} where the destination directory is"),
                )
            }
        }
    }
}

fn kind_word(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "directory",
        EntryKind::Symlink => "symlink",
        EntryKind::Fifo => "FIFO",
        EntryKind::Socket => "socket",
        EntryKind::CharDev => "character device",
        EntryKind::BlockDev => "block device",
        EntryKind::HardLink => "hard link",
    }
}

/// What stands locally where a restored entry goes (not following a link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// Nothing (or nothing that can be seen: a path through a symlink,
    /// which the stager replaces without following it).
    Missing,
    /// A regular file, a symlink or anything else that is not a directory.
    NonDir,
    /// A directory with nothing in it (temporary names aside).
    EmptyDir,
    /// A directory with something in it.
    FullDir,
}

/// Whether a restored entry of `kind` may replace what stands at `path`
/// (`local`). A restore puts the backup's version in place of whatever it
/// finds, as `rsync -a` does: a file over a file, a directory over a file
/// or link, a file or link over an empty directory. The one replacement
/// that deletes what the backup never had is a file or link over a
/// directory with contents: that is refused unless `force` (`restore
/// --force`, rsync's `--force`), so a local tree is never silently lost.
pub fn replace(path: &WirePath, kind: EntryKind, local: Local, force: bool) -> Result<(), Refusal> {
    if kind != EntryKind::Dir && local == Local::FullDir && !force {
        return Err(Refusal::FullDir {
            path: path.clone(),
            kind,
        });
    }
    Ok(())
}

/// The path (beneath the target directory) of an entry the server sent at
/// `rel`, or why it is refused: not a valid path beneath the target, a
/// reserved temporary name in it, at or beneath a symlink it sent earlier,
/// or a file or link in place of the destination directory.
pub fn map(
    prefix: &WirePath,
    rel: &WirePath,
    kind: EntryKind,
    links: &Links,
) -> Result<WirePath, Refusal> {
    let path = prefix.join_path(rel).map_err(|error| Refusal::BadPath {
        rel: rel.clone(),
        error,
    })?;
    // Only the server's part: DEST's own name is the user's choice.
    if rel.is_reserved() {
        return Err(Refusal::Reserved { path });
    }
    if let Some(link) = links.under(&path) {
        return Err(Refusal::UnderLink { path, link });
    }
    if path.is_root() && kind != EntryKind::Dir {
        return Err(Refusal::AtDest { path, kind });
    }
    Ok(path)
}

/// The local paths (beneath the target directory) of a hard link the
/// server sent at `rel` to its earlier name `target`, both relative to
/// the restored path, for a file of `size` bytes: the link's own path as
/// [`map`] maps a file's, and the target only when this restore wrote or
/// kept a regular file of that size there ([`Written`]) that no symlink
/// it wrote since stands above. Anything else is refused, never linked:
/// a file of the user's in DEST, a directory, a name outside DEST.
pub fn map_link(
    prefix: &WirePath,
    rel: &WirePath,
    target: &WirePath,
    size: u64,
    links: &Links,
    written: &Written,
) -> Result<(WirePath, WirePath), Refusal> {
    let path = map(prefix, rel, EntryKind::File, links)?;
    let refuse = |target: WirePath, problem| Refusal::Link {
        path: path.clone(),
        target,
        problem,
    };
    let to = match prefix.join_path(target) {
        Ok(to) => to,
        Err(e) => return Err(refuse(target.clone(), LinkProblem::Invalid(e))),
    };
    if target.is_reserved() {
        return Err(refuse(to, LinkProblem::Reserved));
    }
    if let Some(link) = links.under(&to) {
        return Err(refuse(to, LinkProblem::UnderLink(link)));
    }
    match written.size(&to) {
        None => Err(refuse(to, LinkProblem::NotWritten)),
        Some(n) if n != size => Err(refuse(to, LinkProblem::OtherSize { written: n })),
        Some(_) => Ok((path, to)),
    }
}

/// True when a local file (`local`: its size and metadata, `None` when
/// it is not a regular file) is the version the server is about to send
/// (`size`, `meta`): same size, permission bits and mtime to the
/// nanosecond, rsync's quick check, and the owner and group `meta` says
/// (already mapped to this machine's ids). It is then not sent or not
/// written again. A restorer that cannot give owners (`can_chown` false:
/// not root) writes its own and no set-user-ID or set-group-ID bit
/// ([`modes::without_owner`]); a local file like that is what it would
/// write, so a set-user-ID file restored once is not sent again on every
/// re-run.
#[must_use]
pub fn unchanged(local: Option<(u64, Meta)>, size: u64, meta: &Meta, can_chown: bool) -> bool {
    let same = |a: u32, b: u32| a == b || b == crate::proto::owners::UNKNOWN_ID;
    local.is_some_and(|(lsize, lmeta)| {
        let owned = same(lmeta.uid, meta.uid) && same(lmeta.gid, meta.gid);
        lsize == size
            && lmeta.mtime == meta.mtime
            && if owned {
                lmeta.mode & 0o7777 == meta.mode & 0o7777
            } else {
                !can_chown && lmeta.mode & 0o7777 == modes::without_owner(meta.mode).0
            }
    })
}

/// Whether the entries received whole are committed when a restore ends
/// (done, or cut by a signal, a lost connection or a timeout): yes, so a
/// re-run need not fetch them again, unless the server broke the protocol
/// (`protocol_broken`): a stream that is not what the protocol says is
/// not trusted with any of it.
#[must_use]
pub fn commit_when_ended(protocol_broken: bool) -> bool {
    !protocol_broken
}

/// True when the entries received so far (`pending`, holding `bytes` of
/// file bodies) are to be committed now: every [`COMMIT_EVERY`] entries or
/// [`COMMIT_BYTES`], never in the middle of a file.
#[must_use]
pub fn wants_commit(pending: usize, bytes: u64, receiving_file: bool) -> bool {
    (pending >= COMMIT_EVERY as usize || bytes >= COMMIT_BYTES) && !receiving_file
}

/// Why a restored file's body is not kept, if it is not: a write that
/// failed (`write_error`, in words), a server that flagged its copy as bad
/// (`ok` false), or a crc32c of what arrived (`got`) other than the one the
/// server sent (`crc`). `None`: the file is good.
pub fn body_problem(crc: u32, ok: bool, got: u32, write_error: Option<String>) -> Option<String> {
    if let Some(e) = write_error {
        Some(format!("write: {e}"))
    } else if !ok {
        Some("the server did not send a good copy: it changed while it was sent, or it is damaged (see verify)".to_string())
    } else if got != crc {
        Some(format!(
            "crc32c mismatch (sent {crc:08x}, received {got:08x})"
        ))
    } else {
        None
    }
}

/// The notice for `n` extended attributes a restore could not set (or
/// remove) where it wrote (said once, at the end), or `None` for none:
/// `trusted.*` and `security.*` need root, and a file system may keep
/// none.
pub fn xattrs_notice(n: u64) -> Option<String> {
    let what = if n == 1 {
        "extended attribute was"
    } else {
        "extended attributes were"
    };
    (n > 0).then(|| {
        format!(
            "{n} {what} not restored: not permitted (trusted.* and security.* need root) or not supported where the restore wrote (run with -v to see which)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::frames::wp;

    fn dirs(list: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |p: &Path| list.iter().any(|d| Path::new(d) == p)
    }

    #[test]
    fn into_an_existing_directory_goes_under_the_basename() {
        let t = target(
            &wp("home/ann/docs"),
            Path::new("/tmp/out"),
            dirs(&["/tmp/out"]),
            |_| false,
        )
        .unwrap();
        assert_eq!(t.dir, Path::new("/tmp/out"));
        assert_eq!(t.prefix, wp("docs"));
        // The namespace root has no basename: its contents go in DEST.
        let t = target(
            &WirePath::root(),
            Path::new("/tmp/out"),
            dirs(&["/tmp/out"]),
            |_| false,
        )
        .unwrap();
        assert_eq!(t.prefix, WirePath::root());
    }

    #[test]
    fn a_new_name_becomes_the_restored_path() {
        let t = target(
            &wp("home/ann/docs"),
            Path::new("/tmp/copy"),
            dirs(&["/tmp"]),
            |_| false,
        )
        .unwrap();
        assert_eq!(t.dir, Path::new("/tmp"));
        assert_eq!(t.prefix, wp("copy"));
    }

    #[test]
    fn a_rerun_restores_into_the_unfinished_target_it_made_not_beside_it() {
        // `restore /usr/lib /tmp/r` made /tmp/r and was cut: /tmp/r is now a
        // directory carrying the marker, and the re-run goes into it again.
        let marked = |p: &Path| p == Path::new("/tmp/r");
        let t = target(
            &wp("usr/lib"),
            Path::new("/tmp/r"),
            dirs(&["/tmp", "/tmp/r"]),
            marked,
        )
        .unwrap();
        assert_eq!((t.dir.as_path(), t.prefix), (Path::new("/tmp"), wp("r")));
        // Finished (no marker): cp -a's rule, into /tmp/r/lib.
        let t = target(
            &wp("usr/lib"),
            Path::new("/tmp/r"),
            dirs(&["/tmp", "/tmp/r"]),
            |_| false,
        )
        .unwrap();
        assert_eq!(
            (t.dir.as_path(), t.prefix),
            (Path::new("/tmp/r"), wp("lib"))
        );
        assert_eq!(marker(&wp("usr/lib")), b"v1 path=/usr/lib");
        assert_eq!(marker(&WirePath::root()), b"v1 path=/");
    }

    #[test]
    fn an_identical_local_file_is_not_sent_again() {
        use crate::proto::Time;
        let m = |mode, secs, nanos| Meta {
            mode,
            mtime: Time { secs, nanos },
            uid: 1000,
            gid: 100,
        };
        let sent = m(0o644, 100, 5);
        for root in [false, true] {
            assert!(unchanged(Some((7, m(0o644, 100, 5))), 7, &sent, root));
            assert!(unchanged(Some((7, m(0o100644, 100, 5))), 7, &sent, root));
            assert!(!unchanged(None, 7, &sent, root));
            assert!(!unchanged(Some((8, m(0o644, 100, 5))), 7, &sent, root));
            assert!(!unchanged(Some((7, m(0o600, 100, 5))), 7, &sent, root));
            assert!(!unchanged(Some((7, m(0o644, 100, 6))), 7, &sent, root));
            assert!(!unchanged(Some((7, m(0o644, 101, 5))), 7, &sent, root));
        }
        // Another owner: written again by root, who can give it.
        let theirs = Meta { uid: 0, ..sent };
        assert!(!unchanged(Some((7, theirs)), 7, &sent, true));
        assert!(unchanged(Some((7, theirs)), 7, &sent, false));
        let other_group = Meta { gid: 0, ..sent };
        assert!(!unchanged(Some((7, other_group)), 7, &sent, true));
    }

    #[test]
    fn a_missing_parent_is_an_error() {
        let e = target(&wp("a"), Path::new("/no/such/dest"), dirs(&[]), |_| false).unwrap_err();
        assert_eq!(e, "/no/such: entity not found");
        let e = target(&wp("a"), Path::new("/"), dirs(&[]), |_| false).unwrap_err();
        assert_eq!(e, "/: not a usable destination");
    }

    #[test]
    fn an_entry_at_or_beneath_an_earlier_link_is_refused() {
        let mut links = Links::new();
        let prefix = wp("x");
        assert_eq!(
            map(&prefix, &wp("link/evil"), EntryKind::File, &links),
            Ok(wp("x/link/evil"))
        );
        links.insert(wp("x/link"));
        let beneath = map(&prefix, &wp("link/evil"), EntryKind::File, &links).unwrap_err();
        assert_eq!(
            beneath,
            Refusal::UnderLink {
                path: wp("x/link/evil"),
                link: wp("x/link")
            }
        );
        let show = |p: &WirePath| format!("/dest/{}", String::from_utf8_lossy(p.as_bytes()));
        let (path, cause) = beneath.message(&prefix, show);
        assert_eq!(path, "/dest/x/link/evil");
        assert_eq!(
            cause,
            "refused: the server sent this beneath the symlink /dest/x/link it sent earlier in this restore"
        );
        let over = map(&prefix, &wp("link"), EntryKind::Dir, &links).unwrap_err();
        assert!(over
            .message(&prefix, show)
            .1
            .contains("this over the symlink"));
        // A sibling that merely shares the prefix is fine.
        assert_eq!(
            map(&prefix, &wp("linked"), EntryKind::File, &links),
            Ok(wp("x/linked"))
        );
    }

    #[test]
    fn a_hard_link_is_accepted_only_to_a_file_this_restore_wrote() {
        let prefix = wp("x");
        let mut links = Links::new();
        let mut written = Written::new();
        let show = |p: &WirePath| format!("/dest/{}", String::from_utf8_lossy(p.as_bytes()));
        // Nothing written yet: a file already in DEST, or anywhere else, is
        // never given another name.
        for target in ["a/one", "etc/passwd", "d"] {
            let e = map_link(&prefix, &wp("b/two"), &wp(target), 3, &links, &written).unwrap_err();
            assert_eq!(
                e,
                Refusal::Link {
                    path: wp("x/b/two"),
                    target: prefix.join_path(&wp(target)).unwrap(),
                    problem: LinkProblem::NotWritten,
                }
            );
            let (path, cause) = e.message(&prefix, show);
            assert_eq!(path, "/dest/x/b/two");
            assert_eq!(
                cause,
                format!("refused: the server sent this as a hard link to /dest/x/{target}, which is not a file this restore wrote")
            );
        }
        written.insert(wp("x/a/one"), 3, false);
        assert_eq!(
            map_link(&prefix, &wp("b/two"), &wp("a/one"), 3, &links, &written),
            Ok((wp("x/b/two"), wp("x/a/one")))
        );
        // Another size than the file written there.
        let e = map_link(&prefix, &wp("b/two"), &wp("a/one"), 4, &links, &written).unwrap_err();
        assert!(matches!(
            e,
            Refusal::Link {
                problem: LinkProblem::OtherSize { written: 3 },
                ..
            }
        ));
        assert!(e.message(&prefix, show).1.contains("with 3 bytes"));
        // Replaced since by something else: no longer a target.
        written.remove(&wp("x/a/one"));
        assert!(map_link(&prefix, &wp("b/two"), &wp("a/one"), 3, &links, &written).is_err());
        // Beneath a symlink written since, or a reserved name.
        written.insert(wp("x/l/f"), 1, true);
        links.insert(wp("x/l"));
        let e = map_link(&prefix, &wp("g"), &wp("l/f"), 1, &links, &written).unwrap_err();
        assert!(matches!(
            e,
            Refusal::Link {
                problem: LinkProblem::UnderLink(_),
                ..
            }
        ));
        assert!(e
            .message(&prefix, show)
            .1
            .contains("beneath the symlink /dest/x/l"));
        written.insert(wp("x/.rsb-tmp.1.2"), 1, false);
        let e = map_link(&prefix, &wp("g"), &wp(".rsb-tmp.1.2"), 1, &links, &written).unwrap_err();
        assert!(matches!(
            e,
            Refusal::Link {
                problem: LinkProblem::Reserved,
                ..
            }
        ));
        // The link's own path follows the rules of a file's.
        let e = map_link(&prefix, &wp("l/g"), &wp("a/one"), 3, &links, &written).unwrap_err();
        assert!(matches!(e, Refusal::UnderLink { .. }));
        let root = WirePath::root();
        let e = map_link(&root, &root, &wp("a"), 3, &links, &written).unwrap_err();
        assert!(matches!(e, Refusal::AtDest { .. }));
        // A target too long beneath the destination maps nowhere.
        let long = wp(&["n"; 2000].join("/"));
        let e = map_link(&wp(&"p".repeat(200)), &wp("g"), &long, 1, &links, &written).unwrap_err();
        assert!(matches!(
            e,
            Refusal::Link {
                problem: LinkProblem::Invalid(_),
                ..
            }
        ));
        assert!(e.message(&prefix, show).1.contains("no path beneath"));
    }

    #[test]
    fn a_restore_remembers_at_most_the_bound_of_files() {
        let mut w = Written::new();
        for i in 0..MAX_RESTORE_LINKS {
            w.insert(wp(&format!("f{i}")), 1, false);
        }
        assert_eq!(w.len(), MAX_RESTORE_LINKS);
        w.insert(wp("past"), 1, false);
        assert_eq!(w.size(&wp("past")), None);
        assert_eq!(w.len(), MAX_RESTORE_LINKS);
        // One already remembered is updated all the same.
        w.insert(wp("f0"), 2, true);
        assert_eq!(w.size(&wp("f0")), Some(2));
        assert!(w.kept(&wp("f0")) && !w.kept(&wp("f2")));
        w.remove(&wp("f1"));
        w.insert(wp("past"), 1, false);
        assert_eq!(w.size(&wp("past")), Some(1));
        assert!(!w.is_empty());
    }

    #[test]
    fn a_file_or_link_in_place_of_the_destination_is_refused() {
        let links = Links::new();
        let root = WirePath::root();
        assert_eq!(
            map(&root, &root, EntryKind::Dir, &links),
            Ok(WirePath::root())
        );
        let e = map(&root, &root, EntryKind::Symlink, &links).unwrap_err();
        assert_eq!(
            e.message(&root, |_| "/dest".into()),
            (
                "/dest".to_string(),
                "the server sent a link where the destination directory is".to_string()
            )
        );
        let e = map(&root, &root, EntryKind::File, &links).unwrap_err();
        assert!(e
            .message(&root, |_| "/dest".into())
            .1
            .contains("a file where"));
    }

    #[test]
    fn a_path_too_long_beneath_the_target_is_refused_naming_it() {
        let prefix = wp(&"p".repeat(200));
        let rel = wp(&["n"; 2000].join("/"));
        let e = map(&prefix, &rel, EntryKind::File, &Links::new()).unwrap_err();
        assert!(matches!(e, Refusal::BadPath { .. }));
        let (path, cause) = e.message(&prefix, |p| p.to_string());
        assert_eq!(path, prefix.to_string());
        assert!(cause.starts_with("n/n/"), "{cause}");
    }

    #[test]
    fn a_reserved_name_from_the_server_is_refused_in_every_component() {
        let links = Links::new();
        let prefix = wp("x");
        for rel in [".rsb-tmp.1.2", "d/.rsb-tmp.part.f", ".rsb-tmp.old.3/f"] {
            for kind in [EntryKind::File, EntryKind::Dir, EntryKind::Symlink] {
                let e = map(&prefix, &wp(rel), kind, &links).unwrap_err();
                assert_eq!(
                    e,
                    Refusal::Reserved {
                        path: prefix.join_path(&wp(rel)).unwrap()
                    }
                );
                let (path, cause) = e.message(&prefix, |p| p.to_string());
                assert_eq!(path, format!("/x/{rel}"));
                assert!(cause.contains("reserved"), "{cause}");
            }
        }
        // A name that merely contains the prefix is an ordinary name, and
        // DEST's own name is the user's.
        assert_eq!(
            map(&prefix, &wp("a.rsb-tmp.b"), EntryKind::File, &links),
            Ok(wp("x/a.rsb-tmp.b"))
        );
        assert_eq!(
            map(&wp(".rsb-tmp.mine"), &wp("f"), EntryKind::File, &links),
            Ok(wp(".rsb-tmp.mine/f"))
        );
    }

    #[test]
    fn a_file_or_link_over_a_nonempty_local_directory_needs_force() {
        let p = wp("src/a.txt");
        for kind in [EntryKind::File, EntryKind::Symlink] {
            let e = replace(&p, kind, Local::FullDir, false).unwrap_err();
            assert_eq!(
                e,
                Refusal::FullDir {
                    path: p.clone(),
                    kind
                }
            );
            let (path, cause) = e.message(&WirePath::root(), |p| p.to_string());
            assert_eq!(path, "/src/a.txt");
            assert!(
                cause.contains("not empty") && cause.contains("--force"),
                "{cause}"
            );
            assert_eq!(replace(&p, kind, Local::FullDir, true), Ok(()));
            // Anything else is replaced as rsync -a replaces it.
            for local in [Local::Missing, Local::NonDir, Local::EmptyDir] {
                assert_eq!(replace(&p, kind, local, false), Ok(()));
            }
        }
        for local in [
            Local::Missing,
            Local::NonDir,
            Local::EmptyDir,
            Local::FullDir,
        ] {
            assert_eq!(replace(&p, EntryKind::Dir, local, false), Ok(()));
        }
    }

    #[test]
    fn commits_come_every_commit_every_entries_between_files() {
        assert!(!wants_commit(COMMIT_EVERY as usize - 1, 0, false));
        assert!(wants_commit(COMMIT_EVERY as usize, 0, false));
        assert!(!wants_commit(COMMIT_EVERY as usize, 0, true));
        // A large file received whole is committed at once.
        assert!(!wants_commit(2, COMMIT_BYTES - 1, false));
        assert!(wants_commit(2, COMMIT_BYTES, false));
        assert!(!wants_commit(2, COMMIT_BYTES, true));
        // A cut restore keeps what arrived whole, unless the stream broke
        // the protocol.
        assert!(commit_when_ended(false));
        assert!(!commit_when_ended(true));
    }

    #[test]
    fn a_body_is_kept_only_when_written_whole_and_matching() {
        assert_eq!(body_problem(7, true, 7, None), None);
        assert_eq!(
            body_problem(7, true, 7, Some("No space left on device".into())).as_deref(),
            Some("write: No space left on device")
        );
        assert!(body_problem(7, false, 7, None).is_some_and(|m| m.contains("not send a good copy")));
        assert_eq!(
            body_problem(0x0a, true, 0x0b, None).as_deref(),
            Some("crc32c mismatch (sent 0000000a, received 0000000b)")
        );
        // A failed write is named before the server's own verdict.
        assert!(body_problem(1, false, 2, Some("x".into())).is_some_and(|m| m == "write: x"));
    }

    #[test]
    fn a_setuid_file_restored_once_passes_the_quick_check() {
        let stored = Meta {
            mode: 0o4755,
            mtime: crate::proto::Time { secs: 5, nanos: 6 },
            uid: 0,
            gid: 0,
        };
        // Restored by a user who could not give it to root.
        let local = Meta {
            mode: 0o755,
            mtime: crate::proto::Time { secs: 5, nanos: 6 },
            uid: 1000,
            gid: 1000,
        };
        assert!(unchanged(Some((3, local)), 3, &stored, false));
        // Restored by root: its owner and its set-user-ID bit.
        let by_root = Meta {
            uid: 0,
            gid: 0,
            ..stored
        };
        assert!(unchanged(Some((3, by_root)), 3, &stored, true));
        assert!(!unchanged(
            Some((
                3,
                Meta {
                    mode: 0o755,
                    ..by_root
                }
            )),
            3,
            &stored,
            true
        ));
        assert!(!unchanged(
            Some((
                3,
                Meta {
                    mode: 0o700,
                    ..local
                }
            )),
            3,
            &stored,
            false
        ));
    }
}
