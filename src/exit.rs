//! Exit statuses of both programs, in one table. The man page's EXIT STATUS
//! section repeats it.

/// Everything asked for was done.
pub const OK: i32 = 0;
/// Client: some files failed (each was named on stderr). Server: it could
/// not start (bind, backup root).
pub const PARTIAL: i32 = 1;
/// Bad usage, or no connection (refused, lost, or the server said no).
pub const USAGE: i32 = 2;
/// Client: everything was done, but some files kept changing while they were
/// read (the last copy read was stored) or vanished before they could be
/// sent; each was named on stderr. rsync's 24 ("some files vanished") is the
/// model. Any failure outranks it: see [`worse`].
pub const SOURCE_CHANGED: i32 = 24;
/// Client: stopped by SIGINT or SIGTERM during a command (128 + SIGINT, as
/// shells report it); what was not committed was removed.
pub const INTERRUPTED: i32 = 130;

/// The worse of two statuses, for a client that ran several commands or
/// saw several outcomes: interrupted, then no connection or bad usage, then
/// failed files, then changed or vanished files, then success.
#[must_use]
pub fn worse(a: i32, b: i32) -> i32 {
    let rank = |s: i32| match s {
        OK => 0,
        SOURCE_CHANGED => 1,
        PARTIAL => 2,
        USAGE => 3,
        _ => 4,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_outrank_changed_or_vanished_files() {
        assert_eq!(worse(OK, SOURCE_CHANGED), SOURCE_CHANGED);
        assert_eq!(worse(SOURCE_CHANGED, PARTIAL), PARTIAL);
        assert_eq!(worse(PARTIAL, SOURCE_CHANGED), PARTIAL);
        assert_eq!(worse(SOURCE_CHANGED, USAGE), USAGE);
        assert_eq!(worse(USAGE, INTERRUPTED), INTERRUPTED);
        assert_eq!(worse(INTERRUPTED, SOURCE_CHANGED), INTERRUPTED);
        assert_eq!(worse(OK, OK), OK);
    }
}
