//! Is a manifest entry the same as what is stored? The server answers each
//! entry of a backup's manifest from an `lstat` alone (and a `readlink` for
//! a link), never opening a file: the entry is unchanged when the stored
//! entry has the same type, mode and mtime, and for a file the same size,
//! for a link the same target. Anything else (missing, another type, any
//! difference) is needed.
//!
//! Pure: the shell hands over what `lstat` said as a [`StoredStat`] and a
//! way to read the link's target, which is only asked for when everything
//! else matched (one syscall saved per changed link).

use crate::proto::{EntryKind, ManifestEntry, Meta};

/// What `lstat` says of a stored entry, as far as the comparison goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredStat {
    /// File, directory or link; `None` for anything rsb does not store.
    pub kind: Option<EntryKind>,
    /// Mode bits and mtime.
    pub meta: Meta,
    /// `st_size` as the kernel reports it (signed there).
    pub size: i64,
}

/// Whether `entry` is what is stored, as `stored` describes it; `target`
/// reads the stored link's target (`None`: unreadable, so not the same).
pub fn unchanged(
    entry: &ManifestEntry,
    stored: &StoredStat,
    target: impl FnOnce() -> Option<Vec<u8>>,
) -> bool {
    stored.kind == Some(entry.kind)
        && stored.meta == entry.meta
        && match entry.kind {
            EntryKind::File => u64::try_from(stored.size).is_ok_and(|n| n == entry.size),
            EntryKind::Symlink => target().is_some_and(|t| t == entry.target),
            EntryKind::Dir => true,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Time, WirePath};

    fn meta(mode: u32, secs: i64) -> Meta {
        Meta {
            mode,
            mtime: Time { secs, nanos: 5 },
        }
    }

    fn entry(kind: EntryKind, size: u64, target: &[u8]) -> ManifestEntry {
        ManifestEntry {
            kind,
            path: WirePath::new(b"a/b".to_vec()).unwrap(),
            meta: meta(0o644, 100),
            size,
            target: target.to_vec(),
        }
    }

    fn stat(kind: Option<EntryKind>, size: i64) -> StoredStat {
        StoredStat {
            kind,
            meta: meta(0o644, 100),
            size,
        }
    }

    fn no_link() -> Option<Vec<u8>> {
        panic!("the target is read only for a link whose stat matched")
    }

    #[test]
    fn a_file_is_unchanged_with_the_same_type_size_mode_and_mtime() {
        let e = entry(EntryKind::File, 10, b"");
        assert!(unchanged(&e, &stat(Some(EntryKind::File), 10), no_link));
        assert!(!unchanged(&e, &stat(Some(EntryKind::File), 11), no_link));
        assert!(!unchanged(&e, &stat(Some(EntryKind::File), -1), no_link));
        assert!(!unchanged(&e, &stat(Some(EntryKind::Dir), 10), no_link));
        assert!(!unchanged(&e, &stat(None, 10), no_link));
        let mut other = stat(Some(EntryKind::File), 10);
        other.meta.mode = 0o600;
        assert!(!unchanged(&e, &other, no_link));
        other.meta = meta(0o644, 100);
        other.meta.mtime.nanos = 6;
        assert!(!unchanged(&e, &other, no_link));
    }

    #[test]
    fn a_link_is_compared_by_its_target_last() {
        let e = entry(EntryKind::Symlink, 0, b"../x");
        let st = stat(Some(EntryKind::Symlink), 4);
        assert!(unchanged(&e, &st, || Some(b"../x".to_vec())));
        assert!(!unchanged(&e, &st, || Some(b"../y".to_vec())));
        assert!(!unchanged(&e, &st, || None));
        let mut moved = st;
        moved.meta.mtime.secs = 1;
        assert!(!unchanged(&e, &moved, no_link));
    }

    #[test]
    fn a_directory_needs_only_its_type_mode_and_mtime() {
        let e = entry(EntryKind::Dir, 0, b"");
        assert!(unchanged(&e, &stat(Some(EntryKind::Dir), 4096), no_link));
        assert!(!unchanged(&e, &stat(Some(EntryKind::Symlink), 0), no_link));
    }
}
