//! The mode a stored entry has on disk, and the mode it really has. The
//! server keeps every mode a client sends, but does not always put it on
//! the stored entry itself (rsync's "fake super" model):
//!
//! * A server that is not root stores files with owner read and write
//!   (`u+rw`) and directories with owner read, write and search (`u+rwx`)
//!   added, so it can always write the checksum record, read the file
//!   back for a restore or a verify, and put entries into the directory
//!   (a `0444` file, a `0200` file, a `0311` directory).
//! * No server, root or not, puts a client's set-user-ID or set-group-ID
//!   bit on a file it stores: the file is owned by the server's user (a
//!   root server's copy would be set-user-ID root).
//!
//! A restore that cannot give an entry its owner back (a restorer that is
//! not root) clears those two bits ([`without_owner`]), as GNU `cp` does
//! when it cannot keep an owner.
//!
//! When the mode on disk differs from the real one, the real one is kept
//! in the entry's [`MetaRecord`] (`user.rsb.meta`), and every reader (the
//! manifest check, listings, restores) takes the mode from there. So is
//! an owner or group a server that is not root cannot give the entry
//! (its own user owns everything it stores), and the sticky bit
//! ([`RECORDED`]) is set for that too. The owner's names are kept in the
//! same record, by any server, without the sticky bit: only a restore
//! needs them, and it looks for the record on every entry.
//!
//! [`MetaRecord`]: super::record::MetaRecord
//!
//! Pure: modes in, modes out.

use crate::proto::EntryKind;

/// The mode to give a stored `kind` whose real mode is `real`, on a
/// server running as root (`root`) or not.
/// When that differs from `real`, the entry gets a metadata record, and
/// [`RECORDED`] is set on disk too, so that readers look for the record
/// only where there can be one.
pub fn on_disk(real: u32, kind: EntryKind, root: bool) -> u32 {
    let real = real & 0o7777;
    let disk = match kind {
        EntryKind::File if root => real & !SETID,
        EntryKind::File => (real & !SETID) | 0o600,
        EntryKind::Dir if !root => real | 0o700,
        _ => real,
    };
    if disk == real {
        disk
    } else {
        disk | RECORDED
    }
}

/// The sticky bit on a stored entry says it may have a metadata record:
/// one extended-attribute read per entry saved where it has none (every
/// unchanged entry of an incremental backup, every listed one). Harmless
/// in the store: the server owns every entry there, so the sticky bit of a
/// directory restricts nobody, and a file's means nothing on Linux.
pub const RECORDED: u32 = 0o1000;

/// Whether the stored entry whose mode on disk is `disk` may have a
/// metadata record (a real sticky bit also says so: the record is then
/// looked for and not found).
pub fn may_have_record(disk: u32) -> bool {
    disk & RECORDED != 0
}

/// The set-user-ID and set-group-ID bits.
pub const SETID: u32 = 0o6000;

/// The mode a restore gives an entry whose owner it cannot restore: `mode`
/// without [`SETID`], and whether that cleared anything.
pub fn without_owner(mode: u32) -> (u32, bool) {
    let mode = mode & 0o7777;
    (mode & !SETID, mode & SETID != 0)
}

/// The real mode of a stored entry: the recorded one if there is a
/// record, else the mode on disk.
pub fn real(disk: u32, recorded: Option<u32>) -> u32 {
    recorded.unwrap_or(disk) & 0o7777
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_root_server_keeps_owner_access_on_disk() {
        use EntryKind::*;
        for (real, file, dir) in [
            (0o444, 0o1644, 0o1744),
            (0o400, 0o1600, 0o1700),
            (0o000, 0o1600, 0o1700),
            (0o200, 0o1600, 0o1700),
            (0o555, 0o1755, 0o1755),
            (0o311, 0o1711, 0o1711),
            (0o644, 0o644, 0o1744),
            (0o755, 0o755, 0o755),
        ] {
            assert_eq!(on_disk(real, File, false), file, "{real:o}");
            assert_eq!(on_disk(real, Dir, false), dir, "{real:o}");
            assert_eq!(may_have_record(file), file & 0o7777 != real, "{real:o}");
            assert_eq!(on_disk(real, File, true), real, "{real:o}");
            assert_eq!(on_disk(real, Dir, true), real, "{real:o}");
        }
        assert_eq!(on_disk(0o100644, File, false), 0o644);
    }

    /// Issue 9 item 6: a user's set-user-ID file came back set-user-ID
    /// root.
    #[test]
    fn no_stored_file_is_setuid_or_setgid_on_disk() {
        use EntryKind::*;
        assert_eq!(on_disk(0o4755, File, true), 0o1755);
        assert_eq!(on_disk(0o2711, File, true), 0o1711);
        assert_eq!(on_disk(0o6555, File, false), 0o1755);
        assert_eq!(on_disk(0o1755, File, true), 0o1755);
        // A directory's set-group-ID bit gives nobody anything.
        assert_eq!(on_disk(0o2775, Dir, true), 0o2775);
        assert_eq!(without_owner(0o4755), (0o755, true));
        assert_eq!(without_owner(0o2775), (0o775, true));
        assert_eq!(without_owner(0o1777), (0o1777, false));
    }

    #[test]
    fn the_record_says_the_real_mode() {
        assert_eq!(real(0o644, Some(0o444)), 0o444);
        assert_eq!(real(0o755, None), 0o755);
    }
}
