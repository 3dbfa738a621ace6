//! The plans file on disk, `DIR/.rsb-plans`: a [`PlanBook`] reads it at
//! start (a missing file is no plans), notices a hand edit with a cheap
//! `stat` at most every [`CHECK_EVERY`] (the loop asks), and writes it
//! whole and atomically when a plan is set (a temporary file in DIR,
//! fsync, rename over the file, fsync DIR), so a crash leaves the old file
//! or the new one, never half of one. The format, its checks and its
//! errors are the pure [`crate::server::plans`]'s; this file only moves
//! bytes and logs. It must not decide who may see or set a plan: the
//! session (an agent gets its own name's) and the web side do.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::{info, warn};

use crate::io::error::FsError;
use crate::server::plans::{self, Plan};

/// The file's name in the backup root (a reserved name: no client can
/// have it, see [`crate::proto::RESERVED_NAME_PREFIX`]).
pub(crate) const FILE: &str = ".rsb-plans";
/// The temporary name a new version is written under before its rename.
const TEMP: &str = ".rsb-plans.tmp";
/// How often the file is looked at for a hand edit.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(2);
/// A plans file larger than this is refused (10,000 plans of a few lines).
const MAX_FILE: u64 = 64 << 20;

/// What `stat` says of the file: a change of any means it was edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// The plans, as the file holds them.
pub(crate) struct PlanBook {
    path: PathBuf,
    dir: PathBuf,
    plans: BTreeMap<String, Plan>,
    /// The file as last read; `None`: there was none.
    stamp: Option<Stamp>,
    generation: u64,
    read_only: bool,
    /// Why the file as last read cannot be written over: it could not be
    /// read, or some of its blocks are wrong. Writing it whole from the
    /// plans understood would drop what a person wrote and the server
    /// could not read, so `set` refuses until the file is fixed.
    trouble: Option<String>,
    /// When the file is looked at next.
    next_check: Instant,
}

impl PlanBook {
    /// The plans of `root/.rsb-plans` (none when it is missing; a file that
    /// cannot be read is logged and counts as none until it can). A
    /// `read_only` book serves plans and refuses to set them.
    pub(crate) fn open(root: &Path, read_only: bool, now: Instant) -> PlanBook {
        let mut book = PlanBook {
            path: root.join(FILE),
            dir: root.to_path_buf(),
            plans: BTreeMap::new(),
            stamp: None,
            generation: 0,
            read_only,
            trouble: None,
            next_check: now + CHECK_EVERY,
        };
        book.reload();
        if !book.plans.is_empty() {
            info!(
                "plans: {} read from {}",
                crate::client::ui::count(book.plans.len() as u64, "plan", "plans"),
                book.path.display()
            );
        }
        book
    }

    /// The plan of `name`, if it has one.
    pub(crate) fn get(&self, name: &str) -> Option<&Plan> {
        self.plans.get(name)
    }

    /// Every name with a plan, in order.
    // The web side (the dashboard's plan form) calls it.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.plans.keys().map(String::as_str)
    }

    /// The plan of `name` as a `Plan` frame carries it: its block, or
    /// nothing.
    pub(crate) fn text_of(&self, name: &str) -> Vec<u8> {
        self.get(name)
            .map(|p| plans::format_block(name, p).into_bytes())
            .unwrap_or_default()
    }

    /// Why plans cannot be set now (the file has errors or cannot be
    /// read), if so.
    pub(crate) fn trouble(&self) -> Option<&str> {
        self.trouble.as_deref()
    }

    /// Changes whenever any plan does (a set, or a hand edit read back).
    #[cfg(test)]
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// When the loop should call [`Self::reload_if_changed`] next.
    pub(crate) fn next_check(&self) -> Instant {
        self.next_check
    }

    /// Looks at the file if [`CHECK_EVERY`] went by since the last look,
    /// and reads it again if it changed; true when a plan changed (the
    /// loop then tells the agents).
    pub(crate) fn reload_if_changed(&mut self, now: Instant) -> bool {
        if now < self.next_check {
            return false;
        }
        self.next_check = now + CHECK_EVERY;
        let stamp = match fs::symlink_metadata(&self.path) {
            Ok(m) => Some(Stamp::of(&m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                warn!(
                    "plans: stat {}: {}",
                    self.path.display(),
                    crate::io::describe(&e)
                );
                return false;
            }
        };
        if stamp == self.stamp {
            return false;
        }
        self.reload()
    }

    /// Reads the file again now if it changed; true when a plan changed.
    pub(crate) fn reload_now(&mut self) -> bool {
        self.next_check = Instant::now();
        self.reload_if_changed(self.next_check)
    }

    /// Sets (`Some`) or removes (`None`) the plan of `name` and writes the
    /// file. The file is read again first, so a hand edit not yet noticed
    /// is kept (its comments are not: the server writes the file whole,
    /// and says so in its header).
    // The web side (the dashboard's plan form) calls it.
    pub(crate) fn set(&mut self, name: &str, plan: Option<Plan>) -> Result<(), FsError> {
        let shown = self.path.display().to_string();
        if self.read_only {
            return Err(FsError::other(
                "write",
                shown,
                "the server is read-only (-r): plans cannot be changed",
            ));
        }
        if !crate::proto::is_valid_client_name(name) {
            return Err(FsError::invalid(
                "write",
                shown,
                format!("'{name}' is not a client name"),
            ));
        }
        if let Some(p) = &plan {
            p.validate()
                .map_err(|e| FsError::invalid("write", shown.clone(), e))?;
        }
        self.reload_now();
        if let Some(t) = &self.trouble {
            return Err(FsError::other("write", shown, t.clone()));
        }
        let mut next = self.plans.clone();
        match plan {
            Some(p) => next.insert(name.to_string(), p),
            None => next.remove(name),
        };
        if next == self.plans && self.stamp.is_some() {
            return Ok(());
        }
        self.write(&plans::format(&next))?;
        if next != self.plans {
            self.generation += 1;
        }
        self.plans = next;
        info!("plans: plan of {name} set, {shown} written");
        Ok(())
    }

    /// Writes `text` as the new file: temporary file, fsync, rename,
    /// fsync of the directory.
    fn write(&mut self, text: &str) -> Result<(), FsError> {
        let temp = self.dir.join(TEMP);
        let shown_temp = temp.display().to_string();
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&temp)
            .map_err(|e| FsError::io("create", shown_temp.clone(), e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| FsError::io("write", shown_temp.clone(), e))?;
        f.sync_all()
            .map_err(|e| FsError::io("fsync", shown_temp.clone(), e))?;
        drop(f);
        fs::rename(&temp, &self.path).map_err(|e| {
            let _ = fs::remove_file(&temp);
            FsError::io("rename", self.path.display().to_string(), e)
        })?;
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| FsError::io("fsync", self.dir.display().to_string(), e))?;
        self.stamp = fs::symlink_metadata(&self.path).ok().map(|m| Stamp::of(&m));
        Ok(())
    }

    /// Reads the file again; true when the plans changed. Errors in it
    /// are logged, a line each; its good blocks are kept.
    fn reload(&mut self) -> bool {
        let shown = self.path.display();
        let (text, stamp) = match read_bounded(&self.path) {
            Ok(Some((text, stamp))) => (text, Some(stamp)),
            Ok(None) => (Vec::new(), None),
            Err(e) => {
                warn!("plans: {e}: keeping the plans read before");
                self.trouble = Some(format!("{e}: fix it by hand, then set plans again"));
                return false;
            }
        };
        self.stamp = stamp;
        let (next, errors) = plans::parse(&text);
        for e in &errors {
            warn!("plans: {shown}: {e} (that plan is left out)");
        }
        self.trouble = errors.first().map(|e| {
            format!(
                "{shown} has {} ({e}{}): fix it by hand, then set plans again",
                crate::client::ui::count(errors.len() as u64, "error", "errors"),
                if errors.len() > 1 { ", ..." } else { "" }
            )
        });
        if next == self.plans {
            return false;
        }
        info!(
            "plans: {shown} changed: {}",
            crate::client::ui::count(next.len() as u64, "plan", "plans")
        );
        self.plans = next;
        self.generation += 1;
        true
    }
}

/// The file's bytes and stamp, `None` when it does not exist; refused when
/// it is not a regular file or is over [`MAX_FILE`].
fn read_bounded(path: &Path) -> Result<Option<(Vec<u8>, Stamp)>, FsError> {
    use std::io::Read;
    let shown = || path.display().to_string();
    let f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FsError::io("open", shown(), e)),
    };
    let m = f.metadata().map_err(|e| FsError::io("stat", shown(), e))?;
    if !m.is_file() {
        return Err(FsError::other("open", shown(), "not a regular file"));
    }
    if m.len() > MAX_FILE {
        return Err(FsError::other(
            "open",
            shown(),
            format!("{} bytes: at most {MAX_FILE}", m.len()),
        ));
    }
    let mut text = Vec::new();
    f.take(MAX_FILE)
        .read_to_end(&mut text)
        .map_err(|e| FsError::io("read", shown(), e))?;
    Ok(Some((text, Stamp::of(&m))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::plans::Schedule;

    fn plan(path: &str) -> Plan {
        Plan {
            paths: vec![path.as_bytes().to_vec()],
            excludes: vec![],
            schedule: Schedule::Every { secs: 60 },
            bwlimit: None,
        }
    }

    #[test]
    fn a_file_with_a_bad_block_is_never_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE);
        let text = "[laptop]\npath /home\nevery 1h\n\n[server2]\npath /etc\nevry 1h\n";
        fs::write(&file, text).unwrap();
        let now = Instant::now();
        let mut book = PlanBook::open(dir.path(), false, now);
        assert!(book.get("laptop").is_some());
        assert!(book.get("server2").is_none());
        let why = book.trouble().unwrap().to_string();
        assert!(why.contains("fix it by hand"), "{why}");
        let e = book.set("desk", Some(plan("/srv"))).unwrap_err();
        assert!(e.to_string().contains("fix it by hand"), "{e}");
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            text,
            "the file is untouched"
        );
        assert!(book.get("desk").is_none());
        // Fixed by hand: setting works again and keeps server2.
        fs::write(&file, text.replace("evry", "every")).unwrap();
        book.set("desk", Some(plan("/srv"))).unwrap();
        assert!(book.trouble().is_none());
        let back = fs::read_to_string(&file).unwrap();
        assert!(
            back.contains("[server2]") && back.contains("[desk]"),
            "{back}"
        );
    }

    #[test]
    fn a_missing_file_is_no_plans_and_set_writes_one_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let mut book = PlanBook::open(dir.path(), false, t0);
        assert_eq!(book.names().count(), 0);
        assert_eq!(book.text_of("a"), b"");
        let g = book.generation();
        book.set("a", Some(plan("/x"))).unwrap();
        assert_ne!(book.generation(), g);
        assert_eq!(book.text_of("a"), b"[a]\npath /x\nevery 1m\n");
        let text = fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(text.starts_with("# rsb plans"), "{text}");
        assert!(!dir.path().join(TEMP).exists());
        let again = PlanBook::open(dir.path(), false, t0);
        assert_eq!(again.get("a"), Some(&plan("/x")));
        // The same plan again changes nothing.
        let g = book.generation();
        book.set("a", Some(plan("/x"))).unwrap();
        assert_eq!(book.generation(), g);
        book.set("a", None).unwrap();
        assert_eq!(book.get("a"), None);
        assert_ne!(book.generation(), g);
        assert!(book.set("../x", Some(plan("/x"))).is_err());
    }

    #[test]
    fn a_hand_edit_is_read_at_the_next_check_and_kept_by_a_set() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let mut book = PlanBook::open(dir.path(), false, t0);
        fs::write(
            dir.path().join(FILE),
            "[b]\npath /y\nwatch 2s\n[bad]\nwatch 1s\n",
        )
        .unwrap();
        assert!(!book.reload_if_changed(t0), "not before the check is due");
        assert!(book.reload_if_changed(t0 + CHECK_EVERY));
        assert_eq!(book.names().collect::<Vec<_>>(), ["b"]);
        assert!(!book.reload_if_changed(t0 + CHECK_EVERY * 2), "unchanged");
        // An edit not yet seen is read before a set writes the file.
        fs::write(dir.path().join(FILE), "[c]\npath /z\nevery 1h\n").unwrap();
        book.set("a", Some(plan("/x"))).unwrap();
        assert_eq!(book.names().collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn a_read_only_server_serves_plans_and_refuses_to_set_them() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE), "[a]\npath /x\nevery 1m\n").unwrap();
        let mut book = PlanBook::open(dir.path(), true, Instant::now());
        assert_eq!(book.get("a"), Some(&plan("/x")));
        let e = book.set("a", None).unwrap_err().to_string();
        assert!(e.contains("read-only"), "{e}");
        assert!(e.contains(".rsb-plans"), "{e}");
        assert_eq!(book.get("a"), Some(&plan("/x")));
    }
}
