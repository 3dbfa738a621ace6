//! Exit statuses of both programs, in one table. The man page's EXIT STATUS
//! section repeats it.

/// Everything asked for was done.
pub const OK: i32 = 0;
/// Client: some files failed (each was named on stderr). Server: it could
/// not start (bind, backup root).
pub const PARTIAL: i32 = 1;
/// Bad usage, or no connection (refused, lost, or the server said no).
pub const USAGE: i32 = 2;
/// Client: stopped by SIGINT or SIGTERM during a command (128 + SIGINT, as
/// shells report it); what was not committed was removed.
pub const INTERRUPTED: i32 = 130;
