//! This process's temporary names: the salt that tells them from every
//! other process's, and the counter that tells them apart. The grammar of
//! the names is [`crate::store::names`]'s; this file supplies the impure
//! parts (a clock read and the pid, once per process).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::names;

/// Distinguishes the temporary names of all stagers of this process.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Distinguishes this process's temporary names from those of other
/// processes. The pid alone is not enough: in a container a restarted
/// server may get the same pid as its killed predecessor, so the start
/// time of the process is in too.
pub fn salt() -> u64 {
    static SALT: OnceLock<u64> = OnceLock::new();
    *SALT.get_or_init(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ (u64::from(std::process::id()) << 32)
    })
}

/// A fresh temporary name, `.rsb-tmp.<salt>.<n>`; a sweep removes those
/// of other (dead) processes.
pub fn fresh_tmp() -> Vec<u8> {
    names::tmp_name(salt(), NEXT_TMP.fetch_add(1, Ordering::Relaxed))
}

/// A fresh name for a displaced previous version, `.rsb-tmp.old.*`:
/// never swept, since after a crash it may be the only copy.
pub fn fresh_old() -> Vec<u8> {
    names::old_name(salt(), NEXT_TMP.fetch_add(1, Ordering::Relaxed))
}

/// True for a temporary entry of another process ([`names::is_stale_tmp`]
/// against this process's salt).
pub fn is_stale(name: &[u8]) -> bool {
    names::is_stale_tmp(name, salt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::path::is_tmp_name;

    #[test]
    fn temporary_names_are_unique_and_hidden() {
        let a = fresh_tmp();
        let b = fresh_tmp();
        assert_ne!(a, b);
        assert!(is_tmp_name(&a) && is_tmp_name(&b));
    }

    #[test]
    fn only_other_processes_plain_temporary_names_are_stale() {
        let ours = String::from_utf8(fresh_tmp()).unwrap();
        assert!(!is_stale(ours.as_bytes()));
        assert!(!is_stale(&fresh_old()));
        assert!(is_stale(b".rsb-tmp.1f.3"));
        // Which other names are never stale is the grammar's rule, tested
        // in `crate::store::names`; here only this process's salt matters.
    }
}
