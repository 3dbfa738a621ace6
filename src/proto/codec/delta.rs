//! The delta frames' encoding (see [`super::super`]'s `Need`, `Signature`
//! and `FileDelta`): a signature's pieces, and a `FileDelta`'s runs, each
//! checked against the sizes they claim before anything is built.

use super::{DecodeError, Reader, Writer};
use crate::proto::frame::{CopyRange, Frame};
use crate::proto::{MAX_DELTA_COPIES, MAX_SIGNATURE};

/// A `Signature`: a non-empty piece of at most its total, the total at
/// most [`MAX_SIGNATURE`].
pub(super) fn decode_signature(r: &mut Reader<'_>) -> Result<Frame, DecodeError> {
    let (id, index, total, chunk) = (
        r.u32("id")?,
        r.u32("index")?,
        r.u32("total")?,
        r.bytes("chunk")?,
    );
    if total > MAX_SIGNATURE || chunk.is_empty() || chunk.len() > total as usize {
        return Err(DecodeError::Invalid("chunk"));
    }
    Ok(Frame::Signature {
        id,
        index,
        total,
        chunk,
    })
}

/// A `FileDelta`: from an offset of at most its size, at most
/// [`MAX_DELTA_COPIES`] runs, each non-empty, ascending and apart in
/// `offset..size`, inside `0..basis`.
pub(super) fn decode_file_delta(r: &mut Reader<'_>) -> Result<Frame, DecodeError> {
    let (id, path, meta, size, basis, offset) = (
        r.u32("id")?,
        r.path()?,
        r.meta()?,
        r.u64("size")?,
        r.u64("basis")?,
        r.u64("offset")?,
    );
    if offset > size {
        return Err(DecodeError::Invalid("offset"));
    }
    let n = r.u32("copies")?;
    if n > MAX_DELTA_COPIES {
        return Err(DecodeError::Invalid("copies"));
    }
    let mut copies = Vec::with_capacity(n as usize);
    let mut end = offset;
    for _ in 0..n {
        let c = CopyRange {
            dst: r.u64("copy")?,
            src: r.u64("copy")?,
            len: r.u64("copy")?,
        };
        let dst_end = c.dst.checked_add(c.len);
        let src_end = c.src.checked_add(c.len);
        if c.len == 0
            || c.dst < end
            || dst_end.is_none_or(|x| x > size)
            || src_end.is_none_or(|x| x > basis)
        {
            return Err(DecodeError::Invalid("copy"));
        }
        end = dst_end.unwrap_or(size);
        copies.push(c);
    }
    Ok(Frame::FileDelta {
        id,
        path,
        meta,
        size,
        basis,
        offset,
        copies,
    })
}

/// Writes a `Signature` or `FileDelta` payload (nothing for other frames).
pub(super) fn encode(frame: &Frame, w: &mut Writer<'_>) {
    match frame {
        Frame::Signature {
            id,
            index,
            total,
            chunk,
        } => {
            w.u32(*id);
            w.u32(*index);
            w.u32(*total);
            w.bytes(chunk);
        }
        Frame::FileDelta {
            id,
            path,
            meta,
            size,
            basis,
            offset,
            copies,
        } => {
            w.u32(*id);
            w.bytes(path.as_bytes());
            w.meta(meta);
            w.u64(*size);
            w.u64(*basis);
            w.u64(*offset);
            w.u32(copies.len() as u32);
            for c in copies {
                w.u64(c.dst);
                w.u64(c.src);
                w.u64(c.len);
            }
        }
        _ => {}
    }
}
