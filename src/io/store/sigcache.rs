//! TEMPORARY stand-in until the helper's cache lands.
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use nix::sys::stat::FileStat;

use crate::delta::Signature;
use crate::io::delta_io::{fs_block, sign_file};

pub struct SigCache {
    _dir: OwnedFd,
}

impl SigCache {
    pub fn open(_ns_root: BorrowedFd<'_>, _create: bool) -> io::Result<SigCache> {
        Err(io::Error::other("no cache yet"))
    }
}

pub fn signature_of(
    _cache: Option<&SigCache>,
    fd: BorrowedFd<'_>,
    st: &FileStat,
) -> io::Result<Signature> {
    let size = st.st_size.max(0) as u64;
    sign_file(fd, size, crate::delta::block_size(size, fs_block(fd)))
}
