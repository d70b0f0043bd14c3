//! The shared-memory arena of the `shm` transfer mode: inputs are written once into a slot, only the
//! slot id crosses the socket, and the worker reads the tensors through its own mapping of the same
//! pages, without a copy.
//!
//! # Why a `memfd`
//!
//! The arena is an anonymous file from `memfd_create(2)`, mapped `MAP_SHARED` by the parent and by
//! each worker. It has no name in `/dev/shm` or anywhere else: the kernel frees it when the last
//! descriptor and the last mapping are gone. So no exit path can leak it (normal end, error, Ctrl-C,
//! a worker killed with `SIGKILL`, the parent itself killed) and there is nothing to unlink. It is
//! also not bounded by the size of `/dev/shm` (64 MiB in a default Docker container).
//!
//! The descriptor is created close-on-exec, so a worker gets it only when its spawner clears the flag
//! in the child between `fork` and `exec` ([`clear_cloexec_in_child`], as `worker::spawn::spawn_self`
//! does for the socket). The worker learns the descriptor's number and the [`ShmLayout`] from the
//! parent and maps it with [`ShmArena::open`], which checks the file's size against the layout. A
//! Python worker maps the same descriptor with `mmap.mmap(fd, layout.total_len())` and makes numpy or
//! torch views over it (`np.frombuffer(m, dtype, count, offset)`); `/proc/<parent pid>/fd/<fd>` also
//! names it for a process that did not inherit it.
//!
//! The parent seals the file's size (`F_SEAL_SHRINK | F_SEAL_GROW`), so no worker can truncate it
//! under the parent's mapping (which would turn the parent's next access into `SIGBUS`).
//!
//! # Layout
//!
//! The arena holds `slots` slots back to back. Each slot has an input region and then an output
//! region, each starting at a multiple of [`ALIGN`] (64 bytes: a cache line, and enough for any
//! element type and for AVX-512 loads). Tensors inside a region are placed back to back, each again
//! at a multiple of [`ALIGN`], and described by a [`TensorPlacement`] (dtype, shape, offset within
//! the region, byte length), which is what crosses the socket. Because the mapping is page aligned,
//! a region offset that is a multiple of 64 gives a pointer aligned for every element type, so the
//! worker can cast the bytes to `&[f32]` and hand ONNX Runtime a tensor view over the mapping.
//!
//! # Memory
//!
//! Nothing is touched ahead of use. The `memfd` starts as a hole of the layout's size, and neither
//! side maps it with `MAP_POPULATE`, so a page of the arena is allocated when a process first writes
//! it (the parent writing a request's inputs, a worker writing its outputs) and not before; a worker
//! reading a page faults in the page the parent already allocated. A slot's pages are therefore
//! first touched by the first request that uses the slot, and a slot never used costs only address
//! space. An open loop's 1,024 slots cost what its requests in flight touch, and an output room of
//! 16 MiB costs the bytes the outputs actually fill. [`ShmArena::split`] hands the parent its slots
//! one at a time, lowest index first, so a parent that reuses a freed slot before taking a new one
//! touches as many slots as it ever had requests in flight. The first request on each slot pays its
//! page faults; warm-up absorbs them.
//!
//! # Safety contract
//!
//! A slot is owned by exactly one request in flight. The parent writes the inputs into the slot
//! before sending the slot id, and reads the outputs only after the worker's reply; the worker reads
//! the inputs and writes the outputs only between receiving the id and sending the reply. The socket
//! messages order those accesses (a send happens before the matching receive), so no byte is ever
//! accessed by two processes at once. Inside a process, Rust's borrows keep it so: [`ShmArena`] hands
//! out `&mut` only through `&mut self`, and [`ShmArena::split`] gives each slot to one [`ShmSlot`]
//! value. Nothing here can stop a misbehaving peer from writing into a slot it does not own; that
//! would corrupt data, but every descriptor read back is bounds-checked, so it cannot make this
//! process read outside the mapping.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};
use serde::{Deserialize, Serialize};

use crate::model::tensor::{DType, TensorData};

/// Alignment of every region and of every tensor inside a region, in bytes.
pub(crate) const ALIGN: usize = 64;

/// The name the arena's `memfd` shows in `/proc/<pid>/fd` and `/proc/<pid>/maps`. It is only a label:
/// nothing can open the file by it.
const MEMFD_NAME: &std::ffi::CStr = c"bench-shm";

/// What can go wrong with the arena or with a tensor descriptor.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("invalid shared-memory layout: {0}")]
    Layout(String),
    #[error("{call} failed for the shared-memory arena: {error}")]
    Sys {
        call: &'static str,
        error: io::Error,
    },
    #[error(
        "the shared-memory file holds {actual} bytes but the layout {layout} needs {expected}; parent and worker must use the same layout"
    )]
    SizeMismatch {
        expected: u64,
        actual: u64,
        layout: String,
    },
    #[error("no shared-memory slot {slot}: the arena has {slots} slot(s)")]
    NoSuchSlot { slot: usize, slots: usize },
    #[error(
        "the tensors need {needed} bytes but the slot region holds {available}; size the slots from the largest tensors"
    )]
    DoesNotFit { needed: u64, available: usize },
    #[error("tensor {index}: {message}")]
    BadTensor { index: usize, message: String },
    #[error("tensor descriptor (offset {offset}, {len} bytes) in a {region}-byte region: {reason}")]
    BadPlacement {
        offset: u64,
        len: u64,
        region: usize,
        reason: String,
    },
}

/// Rounds `n` up to a multiple of [`ALIGN`]; `None` on overflow.
pub(crate) fn align_up(n: usize) -> Option<usize> {
    Some(n.checked_add(ALIGN - 1)? & !(ALIGN - 1))
}

/// How an arena is cut into slots. Both processes must use the same layout; it crosses the socket
/// as three integers and is checked again when deserialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawLayout", into = "RawLayout")]
pub struct ShmLayout {
    slots: usize,
    input_bytes: usize,
    output_bytes: usize,
    /// Distance between the starts of two consecutive slots; a multiple of [`ALIGN`], never zero.
    stride: usize,
}

/// The wire form of [`ShmLayout`].
#[derive(Serialize, Deserialize)]
struct RawLayout {
    slots: u64,
    input_bytes: u64,
    output_bytes: u64,
}

impl TryFrom<RawLayout> for ShmLayout {
    type Error = ShmError;
    fn try_from(r: RawLayout) -> Result<Self, ShmError> {
        let size = |v: u64, what: &str| {
            usize::try_from(v).map_err(|_| ShmError::Layout(format!("{what} {v} is too large")))
        };
        ShmLayout::new(
            size(r.slots, "slot count")?,
            size(r.input_bytes, "input size")?,
            size(r.output_bytes, "output size")?,
        )
    }
}

impl From<ShmLayout> for RawLayout {
    fn from(l: ShmLayout) -> Self {
        RawLayout {
            slots: l.slots as u64,
            input_bytes: l.input_bytes as u64,
            output_bytes: l.output_bytes as u64,
        }
    }
}

impl std::fmt::Display for ShmLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} slot(s) of {} input + {} output bytes",
            self.slots, self.input_bytes, self.output_bytes
        )
    }
}

impl ShmLayout {
    /// `slots` slots, each with an input region of `input_bytes` and an output region of
    /// `output_bytes`. Fails for zero slots or when the total does not fit in the address space.
    pub(crate) fn new(
        slots: usize,
        input_bytes: usize,
        output_bytes: usize,
    ) -> Result<Self, ShmError> {
        if slots == 0 {
            return Err(ShmError::Layout(
                "it needs at least one slot (one per request in flight)".into(),
            ));
        }
        let too_large = || {
            ShmError::Layout(format!(
                "{slots} slot(s) of {input_bytes} input + {output_bytes} output bytes do not fit in memory"
            ))
        };
        let stride = align_up(input_bytes)
            .zip(align_up(output_bytes))
            .and_then(|(i, o)| i.checked_add(o))
            .ok_or_else(too_large)?
            .max(ALIGN); // never an empty file: mmap refuses a zero length
        let total = stride.checked_mul(slots).ok_or_else(too_large)?;
        if total > isize::MAX as usize {
            return Err(too_large());
        }
        Ok(ShmLayout {
            slots,
            input_bytes,
            output_bytes,
            stride,
        })
    }

    pub(crate) fn slots(&self) -> usize {
        self.slots
    }

    #[cfg(test)]
    pub(crate) fn input_bytes(&self) -> usize {
        self.input_bytes
    }

    #[cfg(test)]
    pub(crate) fn output_bytes(&self) -> usize {
        self.output_bytes
    }

    /// Bytes from the start of one slot to the start of the next.
    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    /// The size of the whole arena, in bytes.
    pub(crate) fn total_len(&self) -> usize {
        self.stride * self.slots // checked in `new`
    }

    fn check_slot(&self, slot: usize) -> Result<usize, ShmError> {
        if slot < self.slots {
            Ok(slot * self.stride)
        } else {
            Err(ShmError::NoSuchSlot {
                slot,
                slots: self.slots,
            })
        }
    }

    /// Where slot `slot`'s input region lies in the arena.
    pub(crate) fn slot_input_range(&self, slot: usize) -> Result<Range<usize>, ShmError> {
        let start = self.check_slot(slot)?;
        Ok(start..start + self.input_bytes)
    }

    /// Where slot `slot`'s output region lies in the arena.
    pub(crate) fn slot_output_range(&self, slot: usize) -> Result<Range<usize>, ShmError> {
        let start = self.check_slot(slot)? + self.stride - align_up(self.output_bytes).unwrap_or(0);
        Ok(start..start + self.output_bytes)
    }
}

/// Where one tensor lies inside a slot's input or output region. This, not the bytes, is what
/// crosses the socket in the `shm` mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorPlacement {
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<i64>,
    /// From the start of the region, in bytes.
    pub(crate) offset: u64,
    /// In bytes: the product of the shape times the element size (for strings, their encoded
    /// length, which the reader checks when it decodes them).
    pub(crate) len: u64,
}

impl TensorPlacement {
    /// The byte range of this tensor in a region of `region_len` bytes, after checking that the
    /// descriptor agrees with itself and fits: shape and length match, the offset is aligned for the
    /// element type, and the bytes lie inside the region. Never panics.
    pub(crate) fn range_in(&self, region_len: usize) -> Result<Range<usize>, ShmError> {
        let bad = |reason: String| ShmError::BadPlacement {
            offset: self.offset,
            len: self.len,
            region: region_len,
            reason,
        };
        if let Some(d) = self.shape.iter().find(|&&d| d < 0) {
            return Err(bad(format!(
                "negative dimension {d} in shape {:?}",
                self.shape
            )));
        }
        if self.dtype != DType::Str {
            let want = self
                .dtype
                .byte_len(&self.shape)
                .ok_or_else(|| bad(format!("shape {:?} is too large", self.shape)))?;
            if want as u64 != self.len {
                return Err(bad(format!(
                    "{} {:?} needs {want} bytes",
                    self.dtype, self.shape
                )));
            }
        }
        if !self.offset.is_multiple_of(self.dtype.size().max(1) as u64) {
            return Err(bad(format!("offset is not aligned for {}", self.dtype)));
        }
        let end = self
            .offset
            .checked_add(self.len)
            .filter(|&e| e <= region_len as u64)
            .ok_or_else(|| bad("it does not fit in the region".into()))?;
        Ok(self.offset as usize..end as usize)
    }
}

/// Places tensors of the given types and shapes back to back in a region of `region_len` bytes, each
/// at a multiple of [`ALIGN`], without copying anything: for a worker that lets the runtime write its
/// outputs straight into the region. Fails when a shape is invalid or the tensors do not fit, and
/// for strings, whose size the shape does not tell.
pub(crate) fn plan<'a>(
    region_len: usize,
    tensors: impl IntoIterator<Item = (DType, &'a [i64])>,
) -> Result<Vec<TensorPlacement>, ShmError> {
    place(
        region_len,
        tensors
            .into_iter()
            .map(|(dtype, shape)| (dtype, shape, None)),
    )
}

/// [`plan`] for tensors in hand: each takes its own byte length, so strings are placed too.
fn plan_for(region_len: usize, tensors: &[TensorData]) -> Result<Vec<TensorPlacement>, ShmError> {
    place(
        region_len,
        tensors
            .iter()
            .map(|t| (t.dtype, t.shape.as_slice(), Some(t.bytes.len()))),
    )
}

/// The bytes a region needs to hold `tensors` as [`write_tensors`] places them.
pub(crate) fn region_len_of(tensors: &[TensorData]) -> Result<usize, ShmError> {
    let placed = plan_for(usize::MAX, tensors)?;
    let end = placed.last().map_or(0, |p| p.offset.saturating_add(p.len));
    usize::try_from(end).map_err(|_| ShmError::Layout(format!("{end} bytes do not fit in memory")))
}

fn place<'a>(
    region_len: usize,
    tensors: impl IntoIterator<Item = (DType, &'a [i64], Option<usize>)>,
) -> Result<Vec<TensorPlacement>, ShmError> {
    let mut cursor: u64 = 0;
    let mut out = Vec::new();
    for (index, (dtype, shape, given)) in tensors.into_iter().enumerate() {
        let bad = |message: String| ShmError::BadTensor { index, message };
        if let Some(d) = shape.iter().find(|&&d| d < 0) {
            return Err(bad(format!("negative dimension {d} in shape {shape:?}")));
        }
        let len = match given {
            Some(n) => n,
            None if dtype == DType::Str => {
                return Err(bad(format!(
                    "a string tensor {shape:?} has no size before its values exist"
                )));
            }
            None => dtype
                .byte_len(shape)
                .ok_or_else(|| bad(format!("{dtype} {shape:?} is too large")))?,
        } as u64;
        let Some(offset) = cursor.checked_next_multiple_of(ALIGN as u64) else {
            return Err(bad("the tensors do not fit in memory".into()));
        };
        cursor = offset.saturating_add(len);
        out.push(TensorPlacement {
            dtype,
            shape: shape.to_vec(),
            offset,
            len,
        });
    }
    if cursor > region_len as u64 {
        return Err(ShmError::DoesNotFit {
            needed: cursor,
            available: region_len,
        });
    }
    Ok(out)
}

/// The bytes a region needs to hold tensors of these types and shapes as [`plan`] places them
/// (alignment padding included): for sizing the slots from a scenario's largest inputs and outputs.
pub(crate) fn region_len_for<'a>(
    tensors: impl IntoIterator<Item = (DType, &'a [i64])>,
) -> Result<usize, ShmError> {
    let placed = plan(usize::MAX, tensors)?;
    let end = placed.last().map_or(0, |p| p.offset.saturating_add(p.len));
    usize::try_from(end).map_err(|_| ShmError::Layout(format!("{end} bytes do not fit in memory")))
}

/// Copies `tensors` back to back into `region` (each at a multiple of [`ALIGN`]) and returns where
/// each went. Checks everything before writing anything, so on error the region is untouched.
pub(crate) fn write_tensors(
    region: &mut [u8],
    tensors: &[TensorData],
) -> Result<Vec<TensorPlacement>, ShmError> {
    for (index, t) in tensors.iter().enumerate() {
        t.check()
            .map_err(|message| ShmError::BadTensor { index, message })?;
    }
    let placements = plan_for(region.len(), tensors)?;
    for (t, p) in tensors.iter().zip(&placements) {
        let start = p.offset as usize; // fits: `plan` checked it against the region
        region[start..start + t.bytes.len()].copy_from_slice(&t.bytes);
    }
    Ok(placements)
}

/// The bytes `placement` describes in `region`: a view, no copy. An error, never a panic, for a
/// descriptor that does not fit or does not agree with itself.
pub(crate) fn read_tensor<'a>(
    region: &'a [u8],
    placement: &TensorPlacement,
) -> Result<&'a [u8], ShmError> {
    Ok(&region[placement.range_in(region.len())?])
}

/// Mutable twin of [`read_tensor`], for a runtime that writes an output in place.
#[cfg(test)]
pub(crate) fn read_tensor_mut<'a>(
    region: &'a mut [u8],
    placement: &TensorPlacement,
) -> Result<&'a mut [u8], ShmError> {
    let range = placement.range_in(region.len())?;
    Ok(&mut region[range])
}

/// Copies the tensors `placements` describe out of `region`, for the parts of the harness that keep
/// owned [`TensorData`] (output checks).
pub(crate) fn copy_tensors(
    region: &[u8],
    placements: &[TensorPlacement],
) -> Result<Vec<TensorData>, ShmError> {
    placements
        .iter()
        .map(|p| {
            Ok(TensorData {
                dtype: p.dtype,
                shape: p.shape.clone(),
                bytes: read_tensor(region, p)?.to_vec(),
            })
        })
        .collect()
}

/// Clears `FD_CLOEXEC` on `fd`, so the descriptor survives `exec`. Only `fcntl`, which is
/// async-signal-safe, so it may run in a `pre_exec` hook between `fork` and `exec`; that is the only
/// place it should run, because clearing the flag in the parent would leak the descriptor into every
/// process the parent starts meanwhile, from any thread.
pub(crate) fn clear_cloexec_in_child(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl with F_GETFD/F_SETFD reads and writes no memory of ours; on a bad descriptor it
    // fails with EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A new anonymous, zero-filled, close-on-exec `memfd` of `len` bytes whose size is sealed, so that
/// no process that maps it can shrink it under another's mapping (which would turn that one's next
/// access into `SIGBUS`). `name` is only a label in `/proc/<pid>/fd`. On failure, the call that
/// failed and why.
pub(crate) fn sealed_memfd(
    name: &std::ffi::CStr,
    len: u64,
) -> Result<File, (&'static str, io::Error)> {
    let last = |call| (call, io::Error::last_os_error());
    // SAFETY: a valid NUL-terminated name and flags; the result is checked.
    let raw =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw == -1 {
        return Err(last("memfd_create"));
    }
    // SAFETY: `raw` is a descriptor we just created and own alone.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    file.set_len(len).map_err(|error| ("ftruncate", error))?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on our own descriptor; it touches no memory of ours.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } == -1 {
        return Err(last("fcntl(F_ADD_SEALS)"));
    }
    Ok(file)
}

/// The file and its mapping, shared by the arena's handles; dropping the last handle unmaps and
/// closes it (fields drop in order: the mapping first).
struct Mapping {
    map: MmapRaw,
    file: File,
}

impl Mapping {
    fn new(file: File, layout: &ShmLayout) -> Result<Arc<Mapping>, ShmError> {
        // No `populate`: a page is faulted in (and, in the parent, allocated) when a request first
        // touches it, so untouched slots cost nothing. See "Memory" in the module docs.
        let map = MmapOptions::new()
            .len(layout.total_len())
            .map_raw(&file)
            .map_err(|error| ShmError::Sys {
                call: "mmap",
                error,
            })?;
        Ok(Arc::new(Mapping { map, file }))
    }

    /// # Safety
    /// `range` lies inside the mapping (callers take it from the layout the mapping was made with),
    /// and no `&mut` to an overlapping range exists in this process while the slice lives.
    unsafe fn slice(&self, range: Range<usize>) -> &[u8] {
        debug_assert!(range.end <= self.map.len());
        // SAFETY: in bounds of a live mapping (see above); u8 has no alignment or validity needs.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(range.start), range.len()) }
    }

    /// # Safety
    /// As [`Mapping::slice`], and no other reference to an overlapping range exists in this process
    /// while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice_mut(&self, range: Range<usize>) -> &mut [u8] {
        debug_assert!(range.end <= self.map.len());
        // SAFETY: as in `slice`; exclusivity is the caller's promise.
        unsafe {
            std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(range.start), range.len())
        }
    }
}

/// A shared-memory arena: the parent creates it with [`ShmArena::create`], a worker maps the same
/// file with [`ShmArena::open`]. See the [module docs](self) for the safety contract.
pub(crate) struct ShmArena {
    shared: Arc<Mapping>,
    layout: ShmLayout,
}

impl std::fmt::Debug for ShmArena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmArena")
            .field("fd", &self.raw_fd())
            .field("layout", &self.layout)
            .finish()
    }
}

impl ShmArena {
    /// Parent side: a new anonymous, zero-filled, close-on-exec `memfd` of the layout's size, its
    /// size sealed, mapped shared; its pages are allocated when first written.
    pub(crate) fn create(layout: ShmLayout) -> Result<Self, ShmError> {
        let file = sealed_memfd(MEMFD_NAME, layout.total_len() as u64)
            .map_err(|(call, error)| ShmError::Sys { call, error })?;
        Ok(ShmArena {
            shared: Mapping::new(file, &layout)?,
            layout,
        })
    }

    /// Worker side: maps the arena file `fd` (inherited from the parent, or a duplicate) with the
    /// parent's `layout`. Fails with [`ShmError::SizeMismatch`] when the file's size is not the
    /// layout's, which means the two sides disagree about the layout or `fd` is the wrong descriptor.
    ///
    /// A worker that received the number on its command line makes the `OwnedFd` as `child.rs` does
    /// for its socket: `unsafe { OwnedFd::from_raw_fd(n) }`, sound because the parent passed that
    /// descriptor to this process alone.
    pub(crate) fn open(fd: OwnedFd, layout: ShmLayout) -> Result<Self, ShmError> {
        let file = File::from(fd);
        let meta = file.metadata().map_err(|error| ShmError::Sys {
            call: "fstat",
            error,
        })?;
        if !meta.is_file() || meta.len() != layout.total_len() as u64 {
            return Err(ShmError::SizeMismatch {
                expected: layout.total_len() as u64,
                actual: meta.len(),
                layout: layout.to_string(),
            });
        }
        Ok(ShmArena {
            shared: Mapping::new(file, &layout)?,
            layout,
        })
    }

    /// The arena's descriptor, to duplicate or to pass to a child (it stays close-on-exec here).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.shared.file.as_fd()
    }

    /// The descriptor's number: a child that inherits it (see [`clear_cloexec_in_child`]) has it
    /// under the same number.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.shared.file.as_raw_fd()
    }

    /// Slot `slot`'s input region.
    pub(crate) fn input(&self, slot: usize) -> Result<&[u8], ShmError> {
        let r = self.layout.slot_input_range(slot)?;
        // SAFETY: the range comes from our layout; `&self` excludes the `&mut` accessors.
        Ok(unsafe { self.shared.slice(r) })
    }

    /// Slot `slot`'s input region, to write into.
    pub(crate) fn input_mut(&mut self, slot: usize) -> Result<&mut [u8], ShmError> {
        let r = self.layout.slot_input_range(slot)?;
        // SAFETY: the range comes from our layout; `&mut self` makes the borrow exclusive.
        Ok(unsafe { self.shared.slice_mut(r) })
    }

    /// Slot `slot`'s output region.
    #[cfg(test)]
    pub(crate) fn output(&self, slot: usize) -> Result<&[u8], ShmError> {
        let r = self.layout.slot_output_range(slot)?;
        // SAFETY: as in `input`.
        Ok(unsafe { self.shared.slice(r) })
    }

    /// Slot `slot`'s output region, to write into.
    pub(crate) fn output_mut(&mut self, slot: usize) -> Result<&mut [u8], ShmError> {
        let r = self.layout.slot_output_range(slot)?;
        // SAFETY: as in `input_mut`.
        Ok(unsafe { self.shared.slice_mut(r) })
    }

    /// Copies `tensors` into slot `slot`'s input region; see [`write_tensors`].
    #[cfg(test)]
    pub(crate) fn write_inputs(
        &mut self,
        slot: usize,
        tensors: &[TensorData],
    ) -> Result<Vec<TensorPlacement>, ShmError> {
        write_tensors(self.input_mut(slot)?, tensors)
    }

    /// Copies `tensors` into slot `slot`'s output region (the worker's reply); see [`write_tensors`].
    pub(crate) fn write_outputs(
        &mut self,
        slot: usize,
        tensors: &[TensorData],
    ) -> Result<Vec<TensorPlacement>, ShmError> {
        write_tensors(self.output_mut(slot)?, tensors)
    }

    /// Copies `tensors` into slot `slot`'s output region through a shared reference: the worker's
    /// reply when it serves several requests at once (`worker_concurrency`), each from its own
    /// thread and slot.
    ///
    /// # Safety
    /// Until this returns, nothing else in this process reads or writes slot `slot`'s output
    /// region (the worker's resolver claims the slot first, see `shm::Resolver::serve_shared`).
    pub(crate) unsafe fn write_outputs_claimed(
        &self,
        slot: usize,
        tensors: &[TensorData],
    ) -> Result<Vec<TensorPlacement>, ShmError> {
        let r = self.layout.slot_output_range(slot)?;
        // SAFETY: the range comes from our layout; the caller holds the slot's output region
        // alone, and the input views of any slot lie in other, disjoint ranges.
        write_tensors(unsafe { self.shared.slice_mut(r) }, tensors)
    }

    /// A view of one input tensor of slot `slot`, checked against the region.
    pub(crate) fn read_input(&self, slot: usize, p: &TensorPlacement) -> Result<&[u8], ShmError> {
        read_tensor(self.input(slot)?, p)
    }

    /// A view of one output tensor of slot `slot`, checked against the region.
    #[cfg(test)]
    pub(crate) fn read_output(&self, slot: usize, p: &TensorPlacement) -> Result<&[u8], ShmError> {
        read_tensor(self.output(slot)?, p)
    }

    /// Splits the arena into a handle that keeps the descriptor for spawning workers, and the
    /// slots, each handed out once, lowest index first, when the iterator is advanced: a parent
    /// takes a slot only when a request needs one, so the slots it ever uses are as many as its
    /// requests in flight at most. The mapping lives until the last handle is dropped.
    pub(crate) fn split(self) -> (ArenaFd, Slots) {
        (
            ArenaFd {
                shared: self.shared.clone(),
                layout: self.layout,
            },
            Slots {
                shared: self.shared,
                layout: self.layout,
                next: 0,
            },
        )
    }
}

/// The slots of a split arena not handed out yet ([`ShmArena::split`]). Each index is yielded once,
/// so each slot has one owner, as the safety contract asks.
pub(crate) struct Slots {
    shared: Arc<Mapping>,
    layout: ShmLayout,
    next: usize,
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slots")
            .field("handed_out", &self.next)
            .field("slots", &self.layout.slots)
            .finish()
    }
}

impl Slots {
    /// Slots handed out so far.
    pub(crate) fn handed_out(&self) -> usize {
        self.next
    }
}

impl Iterator for Slots {
    type Item = ShmSlot;

    fn next(&mut self) -> Option<ShmSlot> {
        if self.next >= self.layout.slots {
            return None;
        }
        let index = self.next;
        self.next += 1;
        Some(ShmSlot {
            shared: self.shared.clone(),
            layout: self.layout,
            index,
        })
    }
}

/// The arena's descriptor after [`ShmArena::split`]: what the parent needs to start more workers.
#[derive(Clone)]
pub struct ArenaFd {
    shared: Arc<Mapping>,
    layout: ShmLayout,
}

impl std::fmt::Debug for ArenaFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArenaFd")
            .field("fd", &self.raw_fd())
            .field("layout", &self.layout)
            .finish()
    }
}

impl ArenaFd {
    pub fn layout(&self) -> ShmLayout {
        self.layout
    }

    #[cfg(test)]
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.shared.file.as_fd()
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.shared.file.as_raw_fd()
    }
}

/// Exclusive use of one slot of a parent's arena (see [`ShmArena::split`]). Not `Clone`: holding it
/// is owning the slot.
pub struct ShmSlot {
    shared: Arc<Mapping>,
    layout: ShmLayout,
    index: usize,
}

impl std::fmt::Debug for ShmSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmSlot")
            .field("index", &self.index)
            .finish()
    }
}

impl ShmSlot {
    /// The slot id to send to the worker.
    pub fn index(&self) -> usize {
        self.index
    }

    fn input_range(&self) -> Range<usize> {
        let start = self.index * self.layout.stride;
        start..start + self.layout.input_bytes
    }

    fn output_range(&self) -> Range<usize> {
        let end = (self.index + 1) * self.layout.stride;
        let start = end - align_up(self.layout.output_bytes).unwrap_or(0);
        start..start + self.layout.output_bytes
    }

    #[cfg(test)]
    pub(crate) fn input(&self) -> &[u8] {
        // SAFETY: our slot's range; only this value touches it in this process, and `&self`
        // excludes `input_mut`.
        unsafe { self.shared.slice(self.input_range()) }
    }

    pub(crate) fn input_mut(&mut self) -> &mut [u8] {
        // SAFETY: our slot's range; `&mut self` on the slot's only handle makes it exclusive.
        unsafe { self.shared.slice_mut(self.input_range()) }
    }

    /// The output region, to read after the worker's reply.
    pub(crate) fn output(&self) -> &[u8] {
        // SAFETY: as in `input`.
        unsafe { self.shared.slice(self.output_range()) }
    }

    /// Copies `tensors` into this slot's input region; see [`write_tensors`].
    pub fn write_inputs(
        &mut self,
        tensors: &[TensorData],
    ) -> Result<Vec<TensorPlacement>, ShmError> {
        write_tensors(self.input_mut(), tensors)
    }

    /// A view of one output tensor, checked against the region.
    pub fn read_output(&self, p: &TensorPlacement) -> Result<&[u8], ShmError> {
        read_tensor(self.output(), p)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    use proptest::prelude::*;

    use super::*;

    fn tensor(dtype: DType, shape: &[i64], seed: u8) -> TensorData {
        let n = TensorData::numel(shape) * dtype.size();
        TensorData {
            dtype,
            shape: shape.to_vec(),
            bytes: (0..n)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
                .collect(),
        }
    }

    fn dup(arena: &ShmArena) -> OwnedFd {
        arena.fd().try_clone_to_owned().unwrap()
    }

    /// `/dev/shm` entries that could be ours.
    fn dev_shm_bench_entries() -> Vec<String> {
        let Ok(dir) = std::fs::read_dir("/dev/shm") else {
            return Vec::new();
        };
        let mut v: Vec<String> = dir
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("bench"))
            .collect();
        v.sort();
        v
    }

    proptest! {
        #[test]
        fn layout_regions_are_aligned_disjoint_and_in_bounds(
            slots in 1usize..40,
            input in 0usize..5000,
            output in 0usize..5000,
        ) {
            let l = ShmLayout::new(slots, input, output).unwrap();
            let mut regions = Vec::new();
            for s in 0..slots {
                let i = l.slot_input_range(s).unwrap();
                let o = l.slot_output_range(s).unwrap();
                prop_assert_eq!(i.len(), input);
                prop_assert_eq!(o.len(), output);
                regions.push(i);
                regions.push(o);
            }
            for r in &regions {
                prop_assert_eq!(r.start % ALIGN, 0, "region {:?} is not aligned", r);
                prop_assert!(r.end <= l.total_len(), "region {:?} past {}", r, l.total_len());
            }
            regions.retain(|r| !r.is_empty());
            regions.sort_by_key(|r| r.start);
            for w in regions.windows(2) {
                prop_assert!(w[0].end <= w[1].start, "{:?} overlaps {:?}", w[0], w[1]);
            }
            prop_assert!(l.total_len() > 0 && l.total_len().is_multiple_of(ALIGN));
            let no_slot = matches!(l.slot_input_range(slots), Err(ShmError::NoSuchSlot { .. }));
            prop_assert!(no_slot);
            // The layout survives the wire.
            let back: ShmLayout = postcard::from_bytes(&postcard::to_allocvec(&l).unwrap()).unwrap();
            prop_assert_eq!(back, l);
        }

        #[test]
        fn any_descriptor_is_checked_never_panics(
            offset in prop_oneof![0u64..300, Just(u64::MAX), Just(u64::MAX - 3)],
            len in prop_oneof![0u64..300, Just(u64::MAX)],
            shape in prop::collection::vec(prop_oneof![-2i64..40, Just(i64::MAX)], 0..4),
            dtype in prop::sample::select(vec![DType::U8, DType::F32, DType::F64]),
        ) {
            let region = [0u8; 256];
            let p = TensorPlacement { dtype, shape, offset, len };
            if let Ok(bytes) = read_tensor(&region, &p) {
                prop_assert_eq!(bytes.len() as u64, len);
                prop_assert!(offset + len <= 256);
            }
        }
    }

    #[test]
    fn layout_rejects_zero_slots_and_overflow() {
        assert!(matches!(
            ShmLayout::new(0, 64, 64),
            Err(ShmError::Layout(_))
        ));
        assert!(matches!(
            ShmLayout::new(2, usize::MAX - 10, 0),
            Err(ShmError::Layout(_))
        ));
        assert!(matches!(
            ShmLayout::new(usize::MAX / 64, 128, 0),
            Err(ShmError::Layout(_))
        ));
        // Empty regions still make a mappable file.
        assert_eq!(ShmLayout::new(3, 0, 0).unwrap().total_len(), 3 * ALIGN);
        let wire = postcard::to_allocvec(&RawLayout {
            slots: 0,
            input_bytes: 1,
            output_bytes: 1,
        })
        .unwrap();
        assert!(postcard::from_bytes::<ShmLayout>(&wire).is_err());
    }

    #[test]
    fn tensors_round_trip_through_a_slot() {
        let layout = ShmLayout::new(2, 4096, 1024).unwrap();
        let mut arena = ShmArena::create(layout).unwrap();
        let inputs = vec![
            tensor(DType::F32, &[2, 3], 1),
            tensor(DType::I64, &[5], 2),
            tensor(DType::F16, &[], 3),      // scalar
            tensor(DType::Bool, &[0, 4], 4), // empty
            tensor(DType::U8, &[7], 5),
        ];
        let placed = arena.write_inputs(1, &inputs).unwrap();
        assert_eq!(placed.len(), inputs.len());
        for (t, p) in inputs.iter().zip(&placed) {
            assert_eq!(p.offset % ALIGN as u64, 0);
            assert_eq!(
                (p.dtype, &p.shape, p.len),
                (t.dtype, &t.shape, t.bytes.len() as u64)
            );
            assert_eq!(arena.read_input(1, p).unwrap(), &t.bytes[..]);
        }
        assert_eq!(
            copy_tensors(arena.input(1).unwrap(), &placed).unwrap(),
            inputs
        );
        assert!(
            arena.input(0).unwrap().iter().all(|&b| b == 0),
            "slot 0 untouched"
        );

        let outputs = vec![tensor(DType::F64, &[3, 4], 9)];
        let placed = arena.write_outputs(1, &outputs).unwrap();
        assert_eq!(
            arena.read_output(1, &placed[0]).unwrap(),
            &outputs[0].bytes[..]
        );
        // The descriptors survive the wire.
        let wire = postcard::to_allocvec(&placed).unwrap();
        assert_eq!(
            postcard::from_bytes::<Vec<TensorPlacement>>(&wire).unwrap(),
            placed
        );
    }

    #[test]
    fn too_large_or_inconsistent_tensors_are_refused_before_writing() {
        let mut arena = ShmArena::create(ShmLayout::new(1, 100, 0).unwrap()).unwrap();
        let big = [tensor(DType::U8, &[10], 1), tensor(DType::F32, &[10], 2)]; // 64 + 40 > 100
        match arena.write_inputs(0, &big) {
            Err(ShmError::DoesNotFit { needed, available }) => {
                assert_eq!((needed, available), (104, 100));
            }
            other => panic!("expected DoesNotFit, got {other:?}"),
        }
        let mut lying = tensor(DType::F32, &[4], 1);
        lying.bytes.pop();
        assert!(matches!(
            arena.write_inputs(0, &[tensor(DType::U8, &[3], 1), lying]),
            Err(ShmError::BadTensor { index: 1, .. })
        ));
        assert!(
            arena.input(0).unwrap().iter().all(|&b| b == 0),
            "nothing written"
        );
        assert!(matches!(
            arena.input(1),
            Err(ShmError::NoSuchSlot { slot: 1, slots: 1 })
        ));
        let e = plan(1 << 20, [(DType::F32, &[i64::MAX, 4][..])]).unwrap_err();
        assert!(matches!(e, ShmError::BadTensor { index: 0, .. }), "{e}");
        let huge = [i64::MAX];
        let e = region_len_for([(DType::U8, &huge[..]); 3]).unwrap_err();
        assert!(matches!(e, ShmError::BadTensor { index: 2, .. }), "{e}");
    }

    #[test]
    fn region_len_counts_the_padding() {
        let (a, b) = ([10i64], [2i64, 3]);
        assert_eq!(region_len_for([]).unwrap(), 0);
        assert_eq!(region_len_for([(DType::U8, &a[..])]).unwrap(), 10);
        // 10 bytes, padding to 64, then 6 f64s.
        let need = region_len_for([(DType::U8, &a[..]), (DType::F64, &b[..])]).unwrap();
        assert_eq!(need, 64 + 48);
        let t = [tensor(DType::U8, &a, 0), tensor(DType::F64, &b, 1)];
        let mut exact = ShmArena::create(ShmLayout::new(1, need, 0).unwrap()).unwrap();
        exact.write_inputs(0, &t).unwrap();
        let mut short = ShmArena::create(ShmLayout::new(1, need - 1, 0).unwrap()).unwrap();
        assert!(short.write_inputs(0, &t).is_err());
    }

    #[test]
    fn out_of_bounds_descriptors_are_errors() {
        let region = [0u8; 256];
        let p = |offset: u64, len: u64, shape: &[i64]| TensorPlacement {
            dtype: DType::F32,
            shape: shape.to_vec(),
            offset,
            len,
        };
        assert_eq!(read_tensor(&region, &p(64, 16, &[4])).unwrap().len(), 16);
        assert_eq!(read_tensor(&region, &p(240, 16, &[4])).unwrap().len(), 16);
        for (bad, why) in [
            (p(256, 16, &[4]), "it does not fit"),
            (p(244, 16, &[4]), "it does not fit"),
            (p(u64::MAX - 3, 16, &[4]), "it does not fit"),
            (p(0, 12, &[4]), "needs 16 bytes"),
            (p(2, 16, &[4]), "not aligned for float32"),
            (p(0, 0, &[-1]), "negative dimension"),
            (p(0, 16, &[i64::MAX, i64::MAX]), "too large"),
        ] {
            let e = read_tensor(&region, &bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let mut region = [0u8; 8];
        assert!(read_tensor_mut(&mut region, &p(0, 16, &[4])).is_err());
    }

    #[test]
    fn two_mappings_of_one_memfd_share_bytes() {
        let layout = ShmLayout::new(2, 1000, 500).unwrap();
        let mut parent = ShmArena::create(layout).unwrap();
        let mut worker = ShmArena::open(dup(&parent), layout).unwrap();
        let inputs = [tensor(DType::F32, &[10, 10], 7)];
        let placed = parent.write_inputs(1, &inputs).unwrap();
        assert_eq!(
            worker.read_input(1, &placed[0]).unwrap(),
            &inputs[0].bytes[..]
        );
        let outputs = [tensor(DType::I32, &[3], 8)];
        let placed = worker.write_outputs(1, &outputs).unwrap();
        drop(worker); // the parent's mapping keeps the pages
        assert_eq!(
            parent.read_output(1, &placed[0]).unwrap(),
            &outputs[0].bytes[..]
        );
    }

    #[test]
    fn open_checks_the_size_against_the_layout() {
        let parent = ShmArena::create(ShmLayout::new(2, 1000, 500).unwrap()).unwrap();
        let wrong = ShmLayout::new(3, 1000, 500).unwrap();
        let e = ShmArena::open(dup(&parent), wrong).unwrap_err();
        assert!(matches!(e, ShmError::SizeMismatch { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("holds 3072 bytes") && msg.contains("needs 4608"),
            "{msg}"
        );
        // Not a file at all.
        let (sock, _other) = std::os::unix::net::UnixStream::pair().unwrap();
        let e = ShmArena::open(OwnedFd::from(sock), wrong).unwrap_err();
        assert!(matches!(e, ShmError::SizeMismatch { .. }), "{e}");
    }

    /// A worker must not be able to shrink the file under the parent's mapping (the parent's next
    /// access would be SIGBUS).
    #[test]
    fn arena_size_is_sealed() {
        let layout = ShmLayout::new(1, 4096, 0).unwrap();
        let parent = ShmArena::create(layout).unwrap();
        let f = File::from(dup(&parent));
        assert!(f.set_len(0).is_err(), "shrinking must fail");
        assert!(f.set_len(1 << 20).is_err(), "growing must fail");
        assert_eq!(f.metadata().unwrap().len(), 4096);
    }

    /// memfd is anonymous: it never appears in /dev/shm, so no exit path (SIGKILL included) can leave
    /// a segment behind, and it is close-on-exec until a spawner clears the flag in the child.
    #[test]
    fn memfd_leaves_nothing_in_dev_shm() {
        let before = dev_shm_bench_entries();
        let arena = ShmArena::create(ShmLayout::new(4, 1 << 16, 1 << 16).unwrap()).unwrap();
        let link = std::fs::read_link(format!("/proc/self/fd/{}", arena.raw_fd())).unwrap();
        assert!(
            link.to_string_lossy().starts_with("/memfd:bench-shm"),
            "{}",
            link.display()
        );
        // SAFETY: F_GETFD on a descriptor we own.
        let flags = unsafe { libc::fcntl(arena.raw_fd(), libc::F_GETFD) };
        assert_ne!(
            flags & libc::FD_CLOEXEC,
            0,
            "must be close-on-exec in the parent"
        );
        assert_eq!(dev_shm_bench_entries(), before, "while mapped");
        drop(arena);
        assert_eq!(dev_shm_bench_entries(), before, "after drop");
    }

    /// Runs `program args`, giving it the arena's descriptor the way a worker gets it.
    fn run_with_fd(arena: &ShmArena, program: &str, args: &[String]) -> std::io::Result<Vec<u8>> {
        let fd = arena.raw_fd();
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stderr(Stdio::inherit());
        // SAFETY: the hook only calls fcntl, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || clear_cloexec_in_child(fd));
        }
        let out = cmd.output()?;
        assert!(out.status.success(), "{program} {args:?}: {}", out.status);
        Ok(out.stdout)
    }

    /// A real second process reads what the parent wrote and writes a reply the parent sees.
    #[test]
    fn a_child_process_shares_the_arena_through_its_inherited_fd() {
        let layout = ShmLayout::new(2, 256, 256).unwrap();
        let mut arena = ShmArena::create(layout).unwrap();
        arena.input_mut(1).unwrap()[..5].copy_from_slice(b"hello");
        let fd = arena.raw_fd();
        let in_at = layout.slot_input_range(1).unwrap().start;
        let out_at = layout.slot_output_range(1).unwrap().start;
        // /proc/self/fd/N of the child names the inherited descriptor, not the parent's.
        let script = format!(
            "head -c {end} /proc/self/fd/{fd} | tail -c 5 && \
             printf world | dd of=/proc/self/fd/{fd} bs=1 seek={out_at} conv=notrunc status=none",
            end = in_at + 5
        );
        let got = run_with_fd(&arena, "sh", &["-c".into(), script]).unwrap();
        assert_eq!(got, b"hello");
        assert_eq!(&arena.output(1).unwrap()[..5], b"world");
        assert_eq!(arena.output(0).unwrap(), &[0u8; 256][..]);
    }

    /// The later Python worker maps the inherited descriptor with `mmap.mmap(fd, size)`. Skipped when
    /// there is no `python3`.
    #[test]
    fn python_maps_the_inherited_fd() {
        if Command::new("python3")
            .arg("-c")
            .arg("pass")
            .output()
            .is_err()
        {
            eprintln!("skipped: no python3");
            return;
        }
        let layout = ShmLayout::new(1, 64, 64).unwrap();
        let mut arena = ShmArena::create(layout).unwrap();
        let placed = arena
            .write_inputs(0, &[tensor(DType::U8, &[4], 40)])
            .unwrap();
        let (fd, total) = (arena.raw_fd(), layout.total_len());
        let (i, o) = (
            layout.slot_input_range(0).unwrap().start + placed[0].offset as usize,
            layout.slot_output_range(0).unwrap().start,
        );
        let code = format!(
            "import mmap, sys\n\
             m = mmap.mmap({fd}, {total})\n\
             sys.stdout.write(','.join(str(b) for b in m[{i}:{i} + 4]))\n\
             m[{o}:{o} + 3] = b'py!'\n"
        );
        let got = run_with_fd(&arena, "python3", &["-c".into(), code]).unwrap();
        let want: Vec<String> = arena.input(0).unwrap()[..4]
            .iter()
            .map(|b| b.to_string())
            .collect();
        assert_eq!(String::from_utf8(got).unwrap(), want.join(","));
        assert_eq!(&arena.output(0).unwrap()[..3], b"py!");
    }

    /// Bytes of the arena file that hold pages: a `memfd` starts as a hole.
    fn allocated(arena_fd: BorrowedFd<'_>) -> u64 {
        use std::os::unix::fs::MetadataExt;
        File::from(arena_fd.try_clone_to_owned().unwrap())
            .metadata()
            .unwrap()
            .blocks()
            * 512
    }

    /// Regression (issue 13): the parent populated the whole arena at creation, 16 MiB of output
    /// room × 1,024 slots for an open loop, before any worker started.
    #[test]
    fn slots_cost_nothing_until_a_request_touches_them() {
        let layout = ShmLayout::new(1024, 1 << 20, 16 << 20).unwrap();
        let arena = ShmArena::create(layout).unwrap();
        let worker = ShmArena::open(dup(&arena), layout).unwrap();
        assert_eq!(
            allocated(arena.fd()),
            0,
            "17 GiB of address space, no pages"
        );
        let (fd, mut slots) = arena.split();
        let mut first = slots.next().unwrap();
        assert_eq!((first.index(), slots.handed_out()), (0, 1));
        first
            .write_inputs(&[tensor(DType::U8, &[100_000], 1)])
            .unwrap();
        let touched = allocated(fd.fd());
        assert!(
            (100_000..=100_000 + 2 * 4096).contains(&touched),
            "{touched} bytes after writing 100,000"
        );
        // A worker reading the inputs shares the parent's pages; its outputs add only their bytes.
        assert_eq!(worker.input(0).unwrap()[1], 32);
        let mut worker = worker;
        worker
            .write_outputs(0, &[tensor(DType::F32, &[10], 2)])
            .unwrap();
        assert!(allocated(fd.fd()) <= touched + 4096);
    }

    #[test]
    fn split_gives_each_slot_one_owner() {
        fn is_send<T: Send>() {}
        is_send::<ShmSlot>();
        is_send::<ArenaFd>();
        let layout = ShmLayout::new(3, 100, 100).unwrap();
        let arena = ShmArena::create(layout).unwrap();
        let worker = ShmArena::open(dup(&arena), layout).unwrap();
        let (fd, slots) = arena.split();
        let mut slots: Vec<ShmSlot> = slots.collect();
        assert_eq!(fd.layout(), layout);
        for s in &mut slots {
            let t = tensor(DType::U8, &[10], s.index() as u8);
            let p = s.write_inputs(std::slice::from_ref(&t)).unwrap();
            assert_eq!(worker.read_input(s.index(), &p[0]).unwrap(), &t.bytes[..]);
        }
        for s in &slots {
            assert_eq!(s.input()[1], 31u8.wrapping_add(s.index() as u8));
            assert_eq!(s.input().len(), 100);
            assert_eq!(s.output().len(), 100);
        }
        drop(fd);
        drop(slots); // the last handle unmaps; the worker's mapping is its own
        assert_eq!(worker.input(2).unwrap()[0], 2);
    }
}
