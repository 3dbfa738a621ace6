//! Reading a namespace's history as a person would: the published
//! batches, their indexes, and an inventory of a tree (inode, mode, size,
//! times, content) to show that nothing was rewritten.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rsb::store::history::{parse_batch_name, parse_index, INDEX_NAME};

/// The published batches of namespace `ns`, oldest first.
pub fn batches(ns: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(ns.join(".rsb-tmp.history")) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| parse_batch_name(e.file_name().as_bytes()).is_some())
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// The paths a batch's index lists.
pub fn index_of(batch: &Path) -> Vec<String> {
    let bytes = fs::read(batch.join(std::ffi::OsStr::from_bytes(INDEX_NAME))).unwrap();
    parse_index(&bytes)
        .unwrap_or_else(|| panic!("{batch:?}: not an index"))
        .iter()
        .map(|p| String::from_utf8_lossy(p.as_bytes()).into_owned())
        .collect()
}

/// Inode, mode, size, mtime, ctime (seconds, nanoseconds), content crc32c.
pub type Facts = (u64, u32, u64, i64, i64, i64, u32);

/// Every entry under `dir` (not following links) with its inode, mode,
/// size, mtime, ctime and, for files, a crc32c of the content: two equal
/// maps mean nothing was rewritten, renamed or touched.
pub fn inventory(dir: &Path) -> BTreeMap<PathBuf, Facts> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let md = fs::symlink_metadata(&p).unwrap();
            let crc = if md.is_file() {
                crc32c::crc32c(&fs::read(&p).unwrap())
            } else {
                0
            };
            out.insert(
                p.strip_prefix(dir).unwrap().to_path_buf(),
                (
                    md.ino(),
                    md.mode(),
                    md.size(),
                    md.mtime(),
                    md.ctime(),
                    md.ctime_nsec(),
                    crc,
                ),
            );
            if md.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

/// The paths whose facts differ between two inventories (or that only
/// one has), for a short failure message.
pub fn inventory_diff(a: &BTreeMap<PathBuf, Facts>, b: &BTreeMap<PathBuf, Facts>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, fa) in a {
        match b.get(p) {
            None => out.push(format!("{p:?}: gone")),
            Some(fb) if fa != fb => out.push(format!("{p:?}: {fa:?} -> {fb:?}")),
            Some(_) => {}
        }
    }
    out.extend(
        b.keys()
            .filter(|p| !a.contains_key(*p))
            .map(|p| format!("{p:?}: new")),
    );
    out
}
