//! A directory's tar stream: the tree walked depth first (names sorted, so
//! the same tree gives the same archive), a few entries ahead of the
//! socket at a time: each entry's header bytes (pax + ustar, built by the
//! pure [`crate::server::web::tar`]), then a regular file's body as a file
//! range (sendfile), then its padding. Memory is bounded by the depth of
//! the tree and the widest directory on the current path, never by its
//! size. Later names of a file stored with several are hard-link entries;
//! symlinks are entries, never followed; devices and FIFOs are entries
//! with their numbers; sockets, which tar cannot hold, are left out.
//!
//! The current tree or the tree at a time, through the same [`View`] the
//! listings use.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use log::warn;

use super::body::{FileRange, Out};
use super::pages::View;
use crate::proto::{EntryKind, WirePath};
use crate::server::web::tar::{entry_header, padding, TarEntry, END};

/// Directory levels descended at most.
const MAX_DEPTH: usize = 4096;
/// First names of files with several names remembered at most.
const MAX_LINKS: usize = 65_536;
/// Entries made per loop turn at most: each is an lstat, its attributes
/// and, for a file, an open, so a tree of empty files (a header each, no
/// body to wait for) cannot hold the loop for thousands of them.
const ENTRIES_PER_TURN: usize = 256;

/// One directory being walked.
struct Frame {
    /// Its path beneath the namespace.
    path: WirePath,
    /// Its member name in the archive, with a trailing `/`.
    member: Vec<u8>,
    /// Its entries still to go: name and where each is stored.
    entries: VecDeque<(Vec<u8>, WirePath)>,
}

/// A tar stream under way (see the module docs).
pub(super) struct TarStream {
    view: View,
    stack: Vec<Frame>,
    /// The top directory: its header is still to go.
    top: Option<(WirePath, WirePath, Vec<u8>)>,
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Entries made since [`TarStream::new_turn`].
    made: usize,
}

impl TarStream {
    /// The tar of the directory `path` (stored at `phys`), its members
    /// under `base/`.
    pub(super) fn new(view: View, path: WirePath, phys: WirePath, base: Vec<u8>) -> TarStream {
        TarStream {
            view,
            stack: Vec::new(),
            top: Some((path, phys, base)),
            links: HashMap::new(),
            made: 0,
        }
    }

    /// A new loop turn: [`ENTRIES_PER_TURN`] more entries may be made.
    pub(super) fn new_turn(&mut self) {
        self.made = 0;
    }

    /// This turn's entries are made: the rest wait for the next turn.
    pub(super) fn turn_over(&self) -> bool {
        self.made >= ENTRIES_PER_TURN
    }

    /// Queues entries until `out` holds `ahead` chunks or the turn's
    /// entries are made. True once the archive's end went in the queue.
    pub(super) fn produce(&mut self, out: &mut Out, ahead: usize) -> bool {
        if let Some((path, phys, base)) = self.top.take() {
            let mut member = base;
            member.push(b'/');
            self.made += 1;
            self.entry(out, path, phys, member, 0);
        }
        while out.len() < ahead && !self.turn_over() {
            let Some(frame) = self.stack.last_mut() else {
                out.push_bytes(END.to_vec());
                return true;
            };
            let Some((name, phys)) = frame.entries.pop_front() else {
                self.stack.pop();
                continue;
            };
            let Ok(path) = frame.path.join(&name) else {
                continue;
            };
            let mut member = frame.member.clone();
            member.extend_from_slice(&name);
            let depth = self.stack.len();
            self.made += 1;
            self.entry(out, path, phys, member, depth);
        }
        false
    }

    /// Queues one entry (a directory's also pushes its frame).
    fn entry(
        &mut self,
        out: &mut Out,
        path: WirePath,
        phys: WirePath,
        mut member: Vec<u8>,
        depth: usize,
    ) {
        let ns = &self.view.ns;
        let Ok(st) = ns.lstat(&phys) else {
            // Gone meanwhile: not in the archive.
            return;
        };
        if crate::io::kind_of(&st) == Some(EntryKind::Dir) && !member.ends_with(b"/") {
            member.push(b'/');
        }
        let Ok(item) = ns.list_item(&phys, b"", &st) else {
            return;
        };
        let (meta, user, group, _) = ns.stored_owner(&phys, &st);
        let mut e = TarEntry {
            path: &member,
            kind: item.kind,
            size: 0,
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            mtime: meta.mtime,
            link: None,
            hard_link: false,
            user: user.as_deref(),
            group: group.as_deref(),
            dev: None,
        };
        match item.kind {
            EntryKind::Dir => {
                out.push_bytes(entry_header(&e));
                if depth >= MAX_DEPTH {
                    warn!("tar: {path}: deeper than {MAX_DEPTH} levels, left out");
                    return;
                }
                let mut entries: Vec<(Vec<u8>, WirePath)> = self.view.children(&path, &phys);
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                self.stack.push(Frame {
                    path,
                    member,
                    entries: entries.into(),
                });
            }
            EntryKind::File | EntryKind::HardLink => {
                let file = match ns.open_stored(&phys) {
                    Ok(f) if f.is_file() => f,
                    _ => return,
                };
                if let Some(inode) = file.linked() {
                    if let Some(first) = self.links.get(&inode) {
                        let first = first.clone();
                        e.link = Some(&first);
                        e.hard_link = true;
                        out.push_bytes(entry_header(&e));
                        return;
                    }
                    if self.links.len() < MAX_LINKS {
                        self.links.insert(inode, member.clone());
                    }
                }
                let size = file.size();
                e.size = size;
                out.push_bytes(entry_header(&e));
                let recorded = file.recorded_crc();
                out.push_file(FileRange::whole(Rc::new(file), recorded));
                out.push_bytes(vec![0; padding(size)]);
            }
            EntryKind::Symlink => {
                e.link = Some(&item.target);
                out.push_bytes(entry_header(&e));
            }
            // tar has no type for a socket: it is left out.
            EntryKind::Socket => {}
            EntryKind::Fifo | EntryKind::CharDev | EntryKind::BlockDev => {
                if matches!(item.kind, EntryKind::CharDev | EntryKind::BlockDev) {
                    let major = nix::sys::stat::major(item.rdev) as u32;
                    let minor = nix::sys::stat::minor(item.rdev) as u32;
                    e.dev = Some((major, minor));
                }
                out.push_bytes(entry_header(&e));
            }
        }
    }
}
