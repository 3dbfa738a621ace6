//! The grammar of the hidden names a store keeps beside the entries it
//! shows. The wire protocol reserves every name that starts with
//! [`TMP_PREFIX`] (`.rsb-tmp.`: no request may name one, no listing shows
//! one; see [`crate::proto::path`], the one home of that prefix); this file
//! says what the names inside that reserved space are:
//!
//! * `.rsb-tmp.<salt>.<n>`: an entry being staged by the process whose
//!   salt it is ([`tmp_name`]), a directory tree being built to replace a
//!   file or link, or the entry such a commit just replaced; stale once
//!   that process is gone ([`is_stale_tmp`]).
//! * `.rsb-tmp.part.<hash>.<size>.<secs>.<nanos>`: the body of a large file
//!   kept from an interrupted transfer, to be resumed ([`partial_name`]).
//! * `.rsb-tmp.names`: the namespace's owner names
//!   ([`crate::store::accounts`]), at its root, never swept.
//! * `.rsb-tmp.old.<salt>.<n>`: a previous version moved aside for the
//!   entry replacing it where the file system cannot exchange two names
//!   ([`old_name`]), never swept: after a crash it may be the only copy.
//! * `.rsb-tmp.sigs/` ([`SIGS_DIR`]): at a namespace's root, the block
//!   signatures of stored files (BLAKE3 per block), so a changed file can
//!   be sent as a delta without re-reading its old version; a cache, safe
//!   to delete, never swept (its own bounds trim it, see
//!   `io/store/sigcache.rs`).
//!
//! Pure: names in, names and answers out. Making a salt (a clock read and
//! the pid) is the shell's job.

use crate::proto::path::TMP_PREFIX;
use crate::proto::Meta;

/// Every partial's name starts with this.
pub const PART_PREFIX: &[u8] = b".rsb-tmp.part.";

/// Every displaced previous version's name starts with this.
pub const OLD_PREFIX: &[u8] = b".rsb-tmp.old.";

/// The signature cache's directory at the root of a namespace.
pub const SIGS_DIR: &[u8] = b".rsb-tmp.sigs";

/// `prefix` followed by `rest`: every name here is built from one of the
/// prefixes above, never spelled again.
fn prefixed(prefix: &[u8], rest: std::fmt::Arguments<'_>) -> Vec<u8> {
    use std::io::Write;
    let mut name = Vec::with_capacity(prefix.len() + 40);
    name.extend_from_slice(prefix);
    // Formatting into a Vec cannot fail.
    let _ = name.write_fmt(rest);
    name
}

/// The `n`th temporary name of the process with this salt.
pub fn tmp_name(salt: u64, n: u64) -> Vec<u8> {
    prefixed(TMP_PREFIX, format_args!("{salt:x}.{n}"))
}

/// The `n`th name for a displaced previous version of the process with this
/// salt.
pub fn old_name(salt: u64, n: u64) -> Vec<u8> {
    prefixed(OLD_PREFIX, format_args!("{salt:x}.{n}"))
}

/// FNV-1a: a stable 64-bit hash of a name, for partial file names.
fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| {
        (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The name of the partial of file `name` with this size and mtime: the
/// stamp is part of it, so a partial of an older version never matches.
pub fn partial_name(name: &[u8], size: u64, meta: &Meta) -> Vec<u8> {
    prefixed(
        PART_PREFIX,
        format_args!(
            "{:016x}.{size}.{}.{}",
            fnv64(name),
            meta.mtime.secs,
            meta.mtime.nanos
        ),
    )
}

/// What the partials of every version of file `name` start with.
pub fn partials_prefix(name: &[u8]) -> Vec<u8> {
    prefixed(PART_PREFIX, format_args!("{:016x}.", fnv64(name)))
}

/// True for a temporary entry another process made and can no longer
/// need: `.rsb-tmp.<salt>.<n>` with a salt not `ours` (its process died,
/// or it is an earlier run). Partials (`.rsb-tmp.part.*`, kept to resume)
/// and displaced previous versions (`.rsb-tmp.old.*`) are not stale.
pub fn is_stale_tmp(name: &[u8], ours: u64) -> bool {
    let Some(rest) = name.strip_prefix(TMP_PREFIX) else {
        return false;
    };
    let mut parts = rest.split(|&b| b == b'.');
    let (Some(s), Some(n), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let hex = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
    };
    !n.is_empty() && n.iter().all(u8::is_ascii_digit) && hex(s).is_some_and(|s| s != ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::path::is_tmp_name;
    use crate::proto::Time;

    fn meta(secs: i64, nanos: u32) -> Meta {
        Meta {
            mode: 0o644,
            mtime: Time { secs, nanos },
            uid: 0,
            gid: 0,
        }
    }

    #[test]
    fn every_hidden_name_is_reserved_on_the_wire() {
        assert!(PART_PREFIX.starts_with(TMP_PREFIX) && OLD_PREFIX.starts_with(TMP_PREFIX));
        for n in [
            tmp_name(0x1f, 3),
            old_name(0x1f, 3),
            partial_name(b"a.bin", 10, &meta(1, 2)),
            partials_prefix(b"a.bin"),
            SIGS_DIR.to_vec(),
        ] {
            assert!(is_tmp_name(&n), "{}", String::from_utf8_lossy(&n));
        }
        assert_eq!(tmp_name(0x1f, 3), b".rsb-tmp.1f.3");
        assert_eq!(old_name(0x1f, 3), b".rsb-tmp.old.1f.3");
        assert!(old_name(1, 2).starts_with(OLD_PREFIX));
    }

    #[test]
    fn a_partial_is_named_after_its_version() {
        let p = partial_name(b"a.bin", 10, &meta(1, 2));
        assert!(p.starts_with(&partials_prefix(b"a.bin")));
        assert!(p.starts_with(PART_PREFIX));
        assert!(p.ends_with(b".10.1.2"));
        assert_ne!(p, partial_name(b"a.bin", 10, &meta(1, 3)));
        assert_ne!(p, partial_name(b"a.bin", 11, &meta(1, 2)));
        assert!(!p.starts_with(&partials_prefix(b"b.bin")));
        // The hash is part of the on-disk format: partials left by an
        // earlier version of the program must still be found.
        assert_eq!(partials_prefix(b""), b".rsb-tmp.part.cbf29ce484222325.");
    }

    #[test]
    fn only_other_processes_plain_temporary_names_are_stale() {
        let ours = 0xabc;
        assert!(!is_stale_tmp(&tmp_name(ours, 7), ours));
        assert!(is_stale_tmp(&tmp_name(0x1f, 7), ours));
        assert!(!is_stale_tmp(&old_name(0x1f, 7), ours));
        assert!(is_stale_tmp(b".rsb-tmp.1f.3", ours));
        for keep in [
            &b".rsb-tmp.part.00ff.10.1.2"[..],
            b".rsb-tmp.old.1f.3",
            b".rsb-tmp.1f.",
            b".rsb-tmp.1f.3.4",
            b".rsb-tmp.zz.3",
            // The namespace's table of owner names is never a leftover.
            crate::store::accounts::NAMES_FILE,
            // Nor is the signature cache.
            SIGS_DIR,
            b"rsb-tmp.1f.3",
            b"a.txt",
        ] {
            assert!(
                !is_stale_tmp(keep, ours),
                "{}",
                String::from_utf8_lossy(keep)
            );
        }
    }
}
