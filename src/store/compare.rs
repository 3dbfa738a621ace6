//! Is a manifest entry the same as what is stored? The server answers each
//! entry of a backup's manifest from an `lstat` alone (and a `readlink` for
//! a link), never opening a file, with a [`Verdict`]: `Same` when the
//! stored entry has the same type, mode, owner, group and mtime, and for a
//! file the same size, for a link the same target, for a device the same
//! device number; `MetaOnly` when a file's size and mtime or a link's
//! target are the same but its metadata is not (a `chmod` or `chown`: only
//! the metadata need cross the wire); `Content` for anything else
//! (missing, another type, other content).
//!
//! A device a server not running as root keeps as an empty file with a
//! metadata record (see [`super::record`]) is compared as the device it
//! stands for: the shell reads the record and says so in [`StoredStat`].
//!
//! A file's or directory's extended attributes are compared by digest:
//! the manifest's against the one in the stored entry's metadata record
//! (none without a record); a difference is metadata too.
//!
//! The mode compared is the entry's real one: the one in its metadata
//! record when it has one (see [`super::modes`]), else the one on disk.
//!
//! Pure: the shell hands over what `lstat` said as a [`StoredStat`], a
//! way to read the link's target and a way to read the recorded mode,
//! which are only asked for when everything else matched (one syscall
//! saved per changed entry).

use super::modes;
use super::record::MetaRecord;
use crate::proto::owners::UNKNOWN_ID;
use crate::proto::{EntryKind, ManifestEntry, Meta};

/// What `lstat` says of a stored entry, as far as the comparison goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredStat {
    /// What the stored entry is (for a metadata-only stand-in, what it
    /// stands for); `None` for anything rsb does not store.
    pub kind: Option<EntryKind>,
    /// Mode bits and mtime.
    pub meta: Meta,
    /// `st_size` as the kernel reports it (signed there).
    pub size: i64,
    /// A device's number (0 for other kinds).
    pub rdev: u64,
}

/// What a manifest check makes of an entry (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// What is stored is this entry: nothing to send.
    Same,
    /// The content is the one stored (a file of the same size and mtime,
    /// a link of the same target), the metadata not (mode, owner, group,
    /// a link's mtime): only the metadata is sent, as an `Update`.
    MetaOnly,
    /// Missing, another kind, or another content: the entry is sent whole.
    Content,
}

/// Whether `entry` is what is stored, as `stored` describes it: [`verdict`]
/// says `Same`.
pub fn unchanged(
    entry: &ManifestEntry,
    stored: &StoredStat,
    target: impl FnOnce() -> Option<Vec<u8>>,
    recorded: impl FnOnce() -> Option<MetaRecord>,
) -> bool {
    verdict(entry, stored, target, recorded) == Verdict::Same
}

/// What `entry` is, compared with what is stored as `stored` describes
/// it; `target` reads the stored link's target (`None`: unreadable, so
/// not the same), `recorded` the metadata record of a stored file or
/// directory (`None`: no record). The extended attributes of a file or
/// directory are compared by the digest the manifest carries and the
/// record keeps (none without a record; another name of a file has its
/// first name's).
///
/// A regular file's content is judged by its size and mtime, a link's by
/// its target: with those the same, another mode (the real one, from the
/// record), owner or group is `MetaOnly`, and for a link another mtime
/// too (a link's mode is always `0777` on Linux and is not compared). A
/// directory, FIFO, socket or device is `Content` whenever anything
/// differs: its frame carries no body, so sending it whole costs what an
/// `Update` would (a stored directory is not re-made, its metadata is
/// applied in place at the commit).
pub fn verdict(
    entry: &ManifestEntry,
    stored: &StoredStat,
    target: impl FnOnce() -> Option<Vec<u8>>,
    recorded: impl FnOnce() -> Option<MetaRecord>,
) -> Verdict {
    // Another name of a file is stored as a file (the shell checks that
    // it is the same inode as the stored first name).
    let kind = match entry.kind {
        EntryKind::HardLink => EntryKind::File,
        k => k,
    };
    if stored.kind != Some(kind) {
        return Verdict::Content;
    }
    let same_mtime = stored.meta.mtime == entry.meta.mtime;
    let (content, meta) = match entry.kind {
        EntryKind::File | EntryKind::HardLink => {
            if !(same_mtime && u64::try_from(stored.size).is_ok_and(|n| n == entry.size)) {
                return Verdict::Content;
            }
            (true, same_meta(entry, stored, recorded))
        }
        EntryKind::Symlink => {
            let meta = same_mtime && same_owner(entry.meta, stored.meta.uid, stored.meta.gid);
            // The target is the link's content: read last, once its
            // kind matched.
            if target().is_none_or(|t| t != entry.target) {
                return Verdict::Content;
            }
            (true, meta)
        }
        EntryKind::CharDev | EntryKind::BlockDev => (
            stored.rdev == entry.rdev && same_mtime && same_meta(entry, stored, recorded),
            true,
        ),
        EntryKind::Dir | EntryKind::Fifo | EntryKind::Socket => {
            (same_mtime && same_meta(entry, stored, recorded), true)
        }
    };
    match (content, meta) {
        (false, _) => Verdict::Content,
        (true, false) => Verdict::MetaOnly,
        (true, true) => Verdict::Same,
    }
}

/// Whether the real mode (from the record where the stored mode says
/// there may be one) and owner of the stored entry are `entry`'s.
fn same_meta(
    entry: &ManifestEntry,
    stored: &StoredStat,
    recorded: impl FnOnce() -> Option<MetaRecord>,
) -> bool {
    let rec = modes::may_have_record(stored.meta.mode)
        .then(recorded)
        .flatten();
    let uid = rec.as_ref().and_then(|r| r.uid).unwrap_or(stored.meta.uid);
    let gid = rec.as_ref().and_then(|r| r.gid).unwrap_or(stored.meta.gid);
    let xattrs =
        entry.kind == EntryKind::HardLink || rec.as_ref().map_or(0, |r| r.xattrs) == entry.xattrs;
    modes::real(stored.meta.mode, rec.map(|r| r.mode)) == entry.meta.mode & 0o7777
        && same_owner(entry.meta, uid, gid)
        && xattrs
}

/// Whether `entry`'s owner and group are `uid` and `gid`, an unknown id on
/// either side matching any.
fn same_owner(entry: Meta, uid: u32, gid: u32) -> bool {
    let same = |a: u32, b: u32| a == b || a == UNKNOWN_ID || b == UNKNOWN_ID;
    same(entry.uid, uid) && same(entry.gid, gid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Time, WirePath};

    fn meta(mode: u32, secs: i64) -> Meta {
        Meta {
            mode,
            mtime: Time { secs, nanos: 5 },
            uid: 1000,
            gid: 100,
        }
    }

    fn entry(kind: EntryKind, size: u64, target: &[u8]) -> ManifestEntry {
        ManifestEntry {
            kind,
            path: WirePath::new(b"a/b".to_vec()).unwrap(),
            meta: meta(0o644, 100),
            size,
            target: target.to_vec(),
            rdev: 0,
            xattrs: 0,
        }
    }

    fn stat(kind: Option<EntryKind>, size: i64) -> StoredStat {
        StoredStat {
            kind,
            meta: meta(0o644, 100),
            size,
            rdev: 0,
        }
    }

    fn no_link() -> Option<Vec<u8>> {
        panic!("the target is read only for a link whose stat matched")
    }

    fn none() -> Option<MetaRecord> {
        None
    }

    fn no_record() -> Option<MetaRecord> {
        panic!("the record is read only for an entry whose stat matched")
    }

    #[test]
    fn another_name_of_a_file_compares_as_the_stored_file() {
        let mut e = entry(EntryKind::HardLink, 7, b"a/first");
        assert!(unchanged(
            &e,
            &stat(Some(EntryKind::File), 7),
            no_link,
            none
        ));
        assert!(!unchanged(
            &e,
            &stat(Some(EntryKind::File), 8),
            no_link,
            none
        ));
        assert!(!unchanged(
            &e,
            &stat(Some(EntryKind::Symlink), 7),
            no_link,
            none
        ));
        e.meta.mtime.secs += 1;
        assert!(!unchanged(
            &e,
            &stat(Some(EntryKind::File), 7),
            no_link,
            none
        ));
    }

    #[test]
    fn specials_compare_kind_mode_mtime_and_device_number() {
        let mut e = entry(EntryKind::CharDev, 0, b"");
        e.rdev = 0x103;
        let mut st = stat(Some(EntryKind::CharDev), 0);
        st.rdev = 0x103;
        assert!(unchanged(&e, &st, no_link, no_record));
        assert!(!unchanged(
            &e,
            &StoredStat { rdev: 0x104, ..st },
            no_link,
            no_record
        ));
        let blk = StoredStat {
            kind: Some(EntryKind::BlockDev),
            ..st
        };
        assert!(!unchanged(&e, &blk, no_link, no_record));
        let mut later = st;
        later.meta.mtime.secs += 1;
        assert!(!unchanged(&e, &later, no_link, no_record));
        let mut chmod = st;
        chmod.meta.mode = 0o600;
        assert!(!unchanged(&e, &chmod, no_link, no_record));
        // A stand-in (its kind and number from the record) with its mode
        // recorded.
        let mut stand_in = st;
        stand_in.meta.mode = 0o1644;
        e.meta.mode = 0o660;
        assert!(unchanged(&e, &stand_in, no_link, || {
            Some(crate::store::record::MetaRecord::mode(0o660))
        }));
        for kind in [EntryKind::Fifo, EntryKind::Socket] {
            let e = entry(kind, 0, b"");
            assert!(unchanged(&e, &stat(Some(kind), 0), no_link, no_record));
            assert!(!unchanged(
                &e,
                &stat(Some(EntryKind::File), 0),
                no_link,
                no_record
            ));
        }
    }

    /// Issue 9 item 4: the real mode of an entry stored with owner access
    /// added is its recorded one.
    #[test]
    fn the_recorded_mode_is_the_one_compared() {
        let mut e = entry(EntryKind::File, 10, b"");
        e.meta.mode = 0o444;
        // Stored as 0644 with the sticky bit that says it has a record.
        let mut st = stat(Some(EntryKind::File), 10);
        st.meta.mode = 0o1644;
        assert!(unchanged(&e, &st, no_link, || Some(MetaRecord::mode(
            0o444
        ))));
        assert!(!unchanged(&e, &st, no_link, || Some(MetaRecord::mode(
            0o400
        ))));
        assert!(!unchanged(&e, &st, no_link, none));
        e.meta.mode = 0o644;
        assert!(!unchanged(&e, &st, no_link, || Some(MetaRecord::mode(
            0o444
        ))));
        // Without the sticky bit there is no record to read.
        let st = stat(Some(EntryKind::File), 10);
        assert!(unchanged(&e, &st, no_link, no_record));
        e.meta.mode = 0o444;
        assert!(!unchanged(&e, &st, no_link, no_record));
        let d = entry(EntryKind::Dir, 0, b"");
        let mut ds = stat(Some(EntryKind::Dir), 1);
        ds.meta.mode = 0o1711;
        assert!(!unchanged(&d, &ds, no_link, || Some(MetaRecord::mode(
            0o311
        ))));
        // A stat that differs already answers.
        assert!(!unchanged(
            &e,
            &stat(Some(EntryKind::File), 11),
            no_link,
            no_record
        ));
    }

    #[test]
    fn a_file_is_unchanged_with_the_same_type_size_mode_and_mtime() {
        let e = entry(EntryKind::File, 10, b"");
        assert!(unchanged(
            &e,
            &stat(Some(EntryKind::File), 10),
            no_link,
            none
        ));
        assert!(!unchanged(
            &e,
            &stat(Some(EntryKind::File), 11),
            no_link,
            none
        ));
        assert!(!unchanged(
            &e,
            &stat(Some(EntryKind::File), -1),
            no_link,
            none
        ));
        assert!(!unchanged(
            &e,
            &stat(Some(EntryKind::Dir), 10),
            no_link,
            none
        ));
        assert!(!unchanged(&e, &stat(None, 10), no_link, none));
        let mut other = stat(Some(EntryKind::File), 10);
        other.meta.mode = 0o600;
        assert!(!unchanged(&e, &other, no_link, none));
        other.meta = meta(0o644, 100);
        other.meta.mtime.nanos = 6;
        assert!(!unchanged(&e, &other, no_link, none));
    }

    #[test]
    fn a_link_is_compared_by_its_target_last() {
        let e = entry(EntryKind::Symlink, 0, b"../x");
        let st = stat(Some(EntryKind::Symlink), 4);
        assert!(unchanged(&e, &st, || Some(b"../x".to_vec()), none));
        assert!(!unchanged(&e, &st, || Some(b"../y".to_vec()), none));
        assert!(!unchanged(&e, &st, || None, none));
        let mut moved = st;
        moved.meta.mtime.secs = 1;
        assert!(!unchanged(&e, &moved, || Some(b"../x".to_vec()), none));
        // A link's mode is not compared (always 0777 on Linux).
        let mut mode = st;
        mode.meta.mode = 0o777;
        assert!(unchanged(&e, &mode, || Some(b"../x".to_vec()), none));
    }

    /// Issue 10: a chown-only change is a change; the owner compared is
    /// the recorded one on a server that cannot set it on disk.
    #[test]
    fn a_changed_owner_or_group_is_needed() {
        let e = entry(EntryKind::File, 10, b"");
        let st = stat(Some(EntryKind::File), 10);
        assert!(unchanged(&e, &st, no_link, no_record));
        for (uid, gid) in [(1001, 100), (1000, 101), (0, 0)] {
            let mut o = st;
            (o.meta.uid, o.meta.gid) = (uid, gid);
            assert!(!unchanged(&e, &o, no_link, no_record), "{uid}:{gid}");
        }
        // Stored by uid 65534 with a record of the real owner.
        let mut fake = st;
        (fake.meta.uid, fake.meta.gid, fake.meta.mode) = (65534, 65534, 0o1644);
        let rec = |uid, gid| MetaRecord {
            uid: Some(uid),
            gid: Some(gid),
            ..MetaRecord::mode(0o644)
        };
        assert!(unchanged(&e, &fake, no_link, || Some(rec(1000, 100))));
        assert!(!unchanged(&e, &fake, no_link, || Some(rec(1000, 7))));
        assert!(!unchanged(&e, &fake, no_link, || Some(MetaRecord::mode(
            0o644
        ))));
        // A directory too; a link's owner is its lstat's, unless unknown.
        let d = entry(EntryKind::Dir, 0, b"");
        let mut ds = stat(Some(EntryKind::Dir), 1);
        ds.meta.uid = 0;
        assert!(!unchanged(&d, &ds, no_link, no_record));
        let l = entry(EntryKind::Symlink, 0, b"t");
        let mut ls = stat(Some(EntryKind::Symlink), 1);
        ls.meta.gid = 0;
        assert!(!unchanged(&l, &ls, || Some(b"t".to_vec()), no_record));
        (ls.meta.uid, ls.meta.gid) = (UNKNOWN_ID, UNKNOWN_ID);
        assert!(unchanged(&l, &ls, || Some(b"t".to_vec()), no_record));
    }

    #[test]
    fn a_directory_needs_only_its_type_mode_and_mtime() {
        let e = entry(EntryKind::Dir, 0, b"");
        assert!(unchanged(
            &e,
            &stat(Some(EntryKind::Dir), 4096),
            no_link,
            none
        ));
        assert!(!unchanged(
            &e,
            &stat(Some(EntryKind::Symlink), 0),
            no_link,
            none
        ));
    }

    /// Issue 10: a change of metadata alone is `MetaOnly`, a change of
    /// content `Content`, whatever else changed with it.
    #[test]
    fn the_verdict_table() {
        use Verdict::{Content, MetaOnly, Same};
        let file = entry(EntryKind::File, 10, b"");
        let st = stat(Some(EntryKind::File), 10);
        let v = |e: &ManifestEntry, st: &StoredStat| verdict(e, st, no_link, none);
        assert_eq!(v(&file, &st), Same);
        let mut mode = st;
        mode.meta.mode = 0o600;
        assert_eq!(v(&file, &mode), MetaOnly, "mode differs");
        let mut uid = st;
        uid.meta.uid = 0;
        assert_eq!(v(&file, &uid), MetaOnly, "uid differs");
        let mut gid = st;
        gid.meta.gid = 0;
        assert_eq!(v(&file, &gid), MetaOnly, "gid differs");
        assert_eq!(v(&file, &stat(Some(EntryKind::File), 11)), Content, "size");
        let mut mtime = mode;
        mtime.meta.mtime.nanos += 1;
        assert_eq!(v(&file, &mtime), Content, "mtime differs, mode too");
        assert_eq!(v(&file, &stat(Some(EntryKind::Dir), 10)), Content, "kind");
        assert_eq!(v(&file, &stat(None, 10)), Content, "missing");
        // The recorded mode and owner are the ones compared.
        let mut rec = st;
        rec.meta.mode = 0o1644;
        let recorded = |mode| move || Some(MetaRecord::mode(mode));
        assert_eq!(verdict(&file, &rec, no_link, recorded(0o644)), Same);
        assert_eq!(
            verdict(&file, &rec, no_link, recorded(0o444)),
            MetaOnly,
            "record mode differs"
        );
        let owned = || {
            Some(MetaRecord {
                uid: Some(7),
                ..MetaRecord::mode(0o644)
            })
        };
        assert_eq!(verdict(&file, &rec, no_link, owned), MetaOnly);
        // Another name of a file: as the file.
        let hard = entry(EntryKind::HardLink, 10, b"a/first");
        assert_eq!(v(&hard, &mode), MetaOnly);
        assert_eq!(v(&hard, &stat(Some(EntryKind::File), 9)), Content);
        // A link: its target is its content.
        let link = entry(EntryKind::Symlink, 0, b"t");
        let lst = stat(Some(EntryKind::Symlink), 1);
        let t = |t: &'static [u8]| move || Some(t.to_vec());
        assert_eq!(verdict(&link, &lst, t(b"t"), none), Same);
        assert_eq!(verdict(&link, &lst, t(b"u"), none), Content);
        let mut lown = lst;
        lown.meta.uid = 0;
        assert_eq!(verdict(&link, &lown, t(b"t"), none), MetaOnly);
        assert_eq!(verdict(&link, &lown, t(b"u"), none), Content);
        let mut lmoved = lst;
        lmoved.meta.mtime.secs += 1;
        assert_eq!(verdict(&link, &lmoved, t(b"t"), none), MetaOnly);
        // Bodiless kinds go whole whatever differs.
        let dir = entry(EntryKind::Dir, 0, b"");
        let mut dmode = stat(Some(EntryKind::Dir), 4096);
        assert_eq!(v(&dir, &dmode), Same);
        dmode.meta.mode = 0o700;
        assert_eq!(v(&dir, &dmode), Content);
        let mut dev = entry(EntryKind::CharDev, 0, b"");
        dev.rdev = 5;
        let mut dst = stat(Some(EntryKind::CharDev), 0);
        dst.rdev = 5;
        assert_eq!(v(&dev, &dst), Same);
        dst.meta.uid = 0;
        assert_eq!(v(&dev, &dst), Content);
        // Extended attributes: a digest the record does not give turns a
        // file's Same into MetaOnly, a directory's into Content (its frame
        // has no body), and never matters for another name of a file.
        let mut xfile = file.clone();
        xfile.xattrs = 5;
        assert_eq!(v(&xfile, &st), MetaOnly);
        let marked = |mode: u32| {
            let mut m = stat(Some(EntryKind::File), 10);
            m.meta.mode = mode | crate::store::modes::RECORDED;
            m
        };
        let digest = |d: u64| {
            move || {
                Some(MetaRecord {
                    xattrs: d,
                    ..MetaRecord::mode(0o644)
                })
            }
        };
        assert_eq!(verdict(&xfile, &marked(0o644), no_link, digest(5)), Same);
        assert_eq!(
            verdict(&xfile, &marked(0o644), no_link, digest(6)),
            MetaOnly
        );
        assert_eq!(verdict(&file, &marked(0o644), no_link, digest(6)), MetaOnly);
        assert_eq!(v(&xfile, &stat(Some(EntryKind::File), 11)), Content);
        let mut xdir = dir.clone();
        xdir.xattrs = 5;
        assert_eq!(v(&xdir, &stat(Some(EntryKind::Dir), 0)), Content);
        let mut xlink = xfile.clone();
        xlink.kind = EntryKind::HardLink;
        assert_eq!(v(&xlink, &st), Same);
    }
}
