//! Which transfers resume, and how much of a partial counts. A file of
//! [`RESUME_MIN`] bytes or more is received into a partial named after its
//! version (see [`super::names::partial_name`]) that survives a cut
//! transfer; the next transfer of the same version sends only the rest.
//! Smaller files are simply sent again: resuming them would save less than
//! the round trip costs.
//!
//! A partial expires [`PARTIAL_MAX_AGE`] after its last write.
//!
//! Pure: sizes and times in, answers out.

/// Files at least this large keep their partial body across an
/// interrupted transfer; smaller ones are simply sent again.
pub const RESUME_MIN: u64 = 1 << 20;

/// A partial not written for this long (seconds: 7 days) is given up:
/// the next sweep removes it, so a cut transfer of a file the client no
/// longer has does not hide its bytes for good.
pub const PARTIAL_MAX_AGE: i64 = 7 * 24 * 3600;

/// Whether a partial last written at `mtime` (seconds) has expired at
/// `now`.
pub fn expired(mtime: i64, now: i64) -> bool {
    now.saturating_sub(mtime) > PARTIAL_MAX_AGE
}

/// Whether a file of `size` bytes is received into a partial.
pub fn is_resumable(size: u64) -> bool {
    size >= RESUME_MIN
}

/// How many bytes of a file of `size` bytes a partial holds, from what
/// `lstat` says of it (`is_file`, `len`): nothing unless it is a regular
/// file holding some but not more than the whole.
pub fn kept(is_file: bool, len: i64, size: u64) -> Option<u64> {
    let len = u64::try_from(len).ok()?;
    (is_file && len > 0 && len <= size).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_expires_after_seven_days_without_a_write() {
        let now = 1_700_000_000;
        assert!(!expired(now, now));
        assert!(!expired(now - PARTIAL_MAX_AGE, now));
        assert!(expired(now - PARTIAL_MAX_AGE - 1, now));
        // A clock set back is no reason to remove anything.
        assert!(!expired(now + 100, now));
        assert!(expired(i64::MIN, now));
    }

    #[test]
    fn only_large_files_resume() {
        assert!(!is_resumable(RESUME_MIN - 1));
        assert!(is_resumable(RESUME_MIN));
    }

    #[test]
    fn a_partial_counts_when_it_holds_part_of_the_file() {
        assert_eq!(kept(true, 5, 10), Some(5));
        assert_eq!(kept(true, 10, 10), Some(10));
        assert_eq!(kept(true, 0, 10), None);
        assert_eq!(kept(true, 11, 10), None);
        assert_eq!(kept(true, -1, 10), None);
        assert_eq!(kept(false, 5, 10), None);
    }
}
