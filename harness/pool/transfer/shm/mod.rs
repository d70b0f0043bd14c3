//! The `shm` transfer: inputs are written once into a slot of a shared-memory arena, only the slot
//! id and the tensors' descriptors cross the socket, and the worker hands the runtime views over its
//! own mapping of the same pages. Outputs come back through the slot's output region.
//!
//! - [`arena`]: the arena itself (an anonymous `memfd` mapped by both processes), its slot layout,
//!   the descriptors that say where each tensor lies in a slot, and the safety contract that makes
//!   sharing the pages sound.
//! - Here: the mode. The parent sizes one slot per request that can be in flight ([`slot_pool`]) and
//!   keeps them in a [`SlotPool`]; a request takes a slot, writes its inputs and holds the slot
//!   until the reply ([`Stager`], [`Staged`]). The worker maps the inherited descriptor at setup and
//!   serves each request from its slot ([`Resolver`]).
//!
//! Each slot is owned by one request in flight, which is what the arena's safety contract asks for:
//! a [`ShmSlot`] is not `Clone`, the pool hands it to one request, and the request gives it back only
//! after the worker's reply.
//!
//! # Sizing, and outputs whose size is only known after running
//!
//! A slot's input room is the largest sample's, and its output room the largest outputs' that the
//! ONNX signature sizes before running ([`output_bytes`]). An export often leaves an output dim
//! symbolic (a detector's box count, a recogniser's sequence length); such an output gets whatever
//! the scenario's memory budget (`[transfer] shm_budget_mib`) leaves per slot, up to
//! [`UNKNOWN_OUTPUT_BYTES`](scenario_shm::UNKNOWN_OUTPUT_BYTES) ([`size_layout`]). That room is address space, not memory: the arena's
//! pages are allocated when first written (see the arena's "Memory"), so a slot costs the bytes its
//! requests really wrote, and what an output really needs is learned by the pages it fills, with no
//! first run to wait for and nothing to resize. When outputs outgrow their room anyway, the worker
//! sends that reply's outputs inline, the `pipe` way ([`Resolver::serve`]), the request succeeds, and
//! the parent counts it (`shm_inline_outputs`). So no output can fail a request for its size, and no
//! arena holds more than its budget: `bench validate` refuses a point whose slots × (input + known
//! output room) do not fit (`scenario::shm`).
//!
//! The parent's copy of the inputs into the slot is timed apart ([`Staged::copy_time`]): it is
//! transfer cost, reported as `stage_*` and counted in service time, never as send lag.

pub mod arena;

pub(crate) use arena::{
    ALIGN, ArenaFd, ShmArena, ShmError, ShmLayout, ShmSlot, TensorPlacement, align_up,
    clear_cloexec_in_child, copy_tensors, read_tensor, region_len_for, region_len_of,
};

use std::cell::RefCell;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Input, Inputs, InputsRef, NO_SAMPLES, Outputs, TransferError};
use crate::model::tensor::{TensorData, TensorView};
use crate::scenario::shm as scenario_shm;
use crate::scenario::{ModelSpec, Point, Scenario};

/// Bytes of a model's outputs for one request as [`plan`](arena::plan) places them, from the ONNX signature with
/// the dims its inputs bound: `(known, unknown)`, where `known` is the room the outputs of known size
/// need and `unknown` says whether any output's size is only known after running.
pub(crate) fn output_bytes(m: &ModelSpec) -> Result<(usize, bool), ShmError> {
    let shapes = scenario_shm::output_shapes(m);
    let unknown = shapes.iter().any(Option::is_none);
    let known = shapes.iter().flatten();
    let room = region_len_for(known.map(|(d, s)| (*d, s.as_slice())))?;
    // Outputs of known size are placed first, so unknown ones start at an aligned offset after them.
    Ok((
        if unknown {
            align_up(room).unwrap_or(room)
        } else {
            room
        },
        unknown,
    ))
}

/// The shared-memory slots of an `shm` point: one per request that can be in flight (see
/// [`scenario_shm::slots`]), each with room for the largest sample and the largest outputs of
/// known size; outputs of unknown size get what the scenario's memory budget leaves, at most
/// [`UNKNOWN_OUTPUT_BYTES`](scenario_shm::UNKNOWN_OUTPUT_BYTES). Fails when even the known room does not fit the budget (`bench
/// validate` refuses such a point first).
pub fn slot_pool(scenario: &Scenario, point: &Point) -> Result<SlotPool, ShmError> {
    let slots = scenario_shm::slots(
        point.load,
        scenario.load.max_in_flight,
        scenario_shm::fanout(&scenario.workload),
    );
    let mut input = 0;
    let mut known = 0;
    let mut unknown = false;
    for m in &scenario.models {
        for s in &m.samples {
            input = input.max(region_len_of(s)?);
        }
        let (k, u) = output_bytes(m)?;
        known = known.max(k);
        unknown |= u;
    }
    // A batched run carries up to `max_batch` requests' samples, and as many outputs.
    let per_run = point.batching.map_or(1, |p| p.max_batch) as u64;
    input = input.saturating_mul(per_run as usize);
    known = known.saturating_mul(per_run as usize);
    let budget = scenario.transfer.shm_budget_mib.saturating_mul(1 << 20);
    let mut need = scenario_shm::need(
        &scenario.models,
        &scenario.workload,
        &scenario.load,
        point.load,
    );
    need.input = need.input.saturating_mul(per_run);
    need.known_output = need.known_output.saturating_mul(per_run);
    if !need.fits(budget) {
        return Err(ShmError::Layout(format!(
            "{} slot(s) of {} input + {} known output bytes need {} bytes, over the [transfer] \
             shm_budget_mib of {} MiB; lower the concurrency or max_in_flight, raise the budget, \
             or use transfer = \"pipe\"",
            need.slots,
            need.input,
            need.known_output,
            need.total(),
            scenario.transfer.shm_budget_mib
        )));
    }
    let layout = size_layout(slots, input, known, unknown, budget)?;
    Ok(SlotPool::new(ShmArena::create(layout)?))
}

/// The layout of `slots` slots with `input` bytes of input room and `known` bytes of output room
/// for outputs of known size, plus, when some output's size is `unknown` before running, what the
/// budget leaves (at most [`UNKNOWN_OUTPUT_BYTES`](scenario_shm::UNKNOWN_OUTPUT_BYTES)). The budget itself is checked on the tensors'
/// bytes ([`scenario_shm::Need`]), as `bench validate` checks it; the 64-byte alignment of each
/// region may add a little to it.
pub(crate) fn size_layout(
    slots: usize,
    input: usize,
    known: usize,
    unknown: bool,
    budget: u64,
) -> Result<ShmLayout, ShmError> {
    let per_slot = ShmLayout::new(1, input, known)?.stride() as u64;
    let extra = if unknown {
        let room = scenario_shm::unknown_room(budget, slots, per_slot) as usize;
        room & !(ALIGN - 1)
    } else {
        0
    };
    ShmLayout::new(slots, input, known + extra)
}

/// Shared-memory slots of the `shm` transfer, each owned by one request in flight. A request that
/// finds none free waits (the wait shows as send lag); slots are never allocated per request.
///
/// A freed slot is reused before a new one is taken, and new ones are taken lowest index first, so
/// the slots ever used, whose pages are the only ones touched, are as many as the requests that were
/// ever in flight at once.
///
/// It lives on the parent's single thread (hence the `RefCell`), beside the pool of workers, which
/// passes [`SlotPool::fd`] to every worker it starts.
pub struct SlotPool {
    pub fd: ArenaFd,
    /// Slots given back, the most recently used last (its pages are the warmest).
    free: RefCell<Vec<ShmSlot>>,
    /// Slots not used yet.
    unused: RefCell<arena::Slots>,
    released: tokio::sync::Notify,
}

impl std::fmt::Debug for SlotPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotPool")
            .field("fd", &self.fd)
            .field("free", &self.free.borrow().len())
            .field("used", &self.used())
            .finish()
    }
}

impl SlotPool {
    pub(crate) fn new(arena: ShmArena) -> SlotPool {
        let (fd, unused) = arena.split();
        SlotPool {
            fd,
            free: RefCell::new(Vec::new()),
            unused: RefCell::new(unused),
            released: tokio::sync::Notify::new(),
        }
    }

    /// A free slot, waiting for one when all are in use.
    pub async fn acquire(&self) -> ShmSlot {
        loop {
            if let Some(s) = self.free.borrow_mut().pop() {
                return s;
            }
            if let Some(s) = self.unused.borrow_mut().next() {
                return s;
            }
            self.released.notified().await;
        }
    }

    /// Gives a slot back once its request's reply has arrived.
    pub fn release(&self, slot: ShmSlot) {
        self.free.borrow_mut().push(slot);
        self.released.notify_one();
    }

    /// Slots used so far: the most requests that were in flight at once, up to the arena's slots.
    pub(crate) fn used(&self) -> usize {
        self.unused.borrow().handed_out()
    }
}

/// Parent side: takes a slot from the pool for each request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stager<'a> {
    slots: &'a SlotPool,
}

impl<'a> Stager<'a> {
    pub(crate) fn new(slots: &'a SlotPool) -> Self {
        Stager { slots }
    }

    /// Takes a slot (waiting when none is free) and writes `sample` into it once. The copy is
    /// timed apart from the wait: it is transfer cost, the wait is not.
    pub(crate) async fn stage(&self, sample: &[TensorData]) -> Staged<'a> {
        let mut slot = self.slots.acquire().await;
        let start = Instant::now();
        let placed = slot.write_inputs(sample);
        Staged {
            slots: self.slots,
            slot: Some(slot),
            placed,
            copy: start.elapsed(),
        }
    }
}

/// A request's slot with its inputs written (or the reason they did not fit). Dropping it gives
/// the slot back to the pool: hold it until the worker's reply, as the arena's contract requires.
#[derive(Debug)]
pub(crate) struct Staged<'a> {
    slots: &'a SlotPool,
    /// `Some` until dropped.
    slot: Option<ShmSlot>,
    placed: Result<Vec<TensorPlacement>, ShmError>,
    /// How long writing the inputs into the slot took.
    copy: Duration,
}

impl Staged<'_> {
    pub(crate) fn inputs(&self) -> Result<InputsRef<'_>, String> {
        let slot = self.slot.as_ref().expect("held until dropped");
        match &self.placed {
            Ok(tensors) => Ok(InputsRef::Shm {
                slot: slot.index() as u32,
                tensors,
            }),
            Err(e) => Err(format!("inputs do not fit the shared-memory slot: {e}")),
        }
    }

    /// The slot, to read the outputs from after the reply.
    pub(crate) fn slot(&self) -> &ShmSlot {
        self.slot.as_ref().expect("held until dropped")
    }

    /// How long the parent took to copy the inputs into the slot.
    pub(crate) fn copy_time(&self) -> Duration {
        self.copy
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.slots.release(slot);
        }
    }
}

/// Worker side: the worker's own mapping of the parent's arena.
#[derive(Debug)]
pub(crate) struct Resolver {
    arena: ShmArena,
    /// One flag per slot, set while a thread serves a request from it (`worker_concurrency`): a
    /// slot named by two requests in flight at once is refused, never written by two threads.
    busy: Vec<AtomicBool>,
}

/// The reply to a request whose `outputs` were `written` into its slot. Outputs larger than the
/// slot's output room (an output whose size was unknown before running) go back inline, the
/// `pipe` way, and the parent counts it.
fn reply(
    written: Result<Vec<TensorPlacement>, ShmError>,
    outputs: Vec<TensorData>,
) -> Result<Outputs, String> {
    match written {
        Ok(placed) => Ok(Outputs::Shm(placed)),
        Err(ShmError::DoesNotFit { .. }) => Ok(Outputs::Inline(outputs)),
        Err(e) => Err(e.to_string()),
    }
}

/// Clears a slot's busy flag when its request is served.
struct Claim<'a>(&'a AtomicBool);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Resolver {
    /// Maps the arena inherited as `fd` with the setup's `layout`.
    pub(crate) fn open(
        layout: Option<ShmLayout>,
        fd: Option<RawFd>,
    ) -> Result<Self, TransferError> {
        let layout = layout.ok_or(TransferError::NoLayout)?;
        let fd = fd.ok_or(TransferError::NoArenaFd)?;
        // SAFETY: as for the worker's socket, the parent made this descriptor for this process
        // (`--shm-fd`), and nothing else in this process owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let arena = ShmArena::open(owned, layout).map_err(TransferError::Arena)?;
        let busy = (0..layout.slots())
            .map(|_| AtomicBool::new(false))
            .collect();
        Ok(Resolver { arena, busy })
    }

    /// As [`Resolver::serve`], from one of several threads serving requests at once. The parent
    /// gives each request in flight its own slot and takes it back only after the reply; the slot
    /// is claimed here as well, so a slot reused while a run still reads it is an error for that
    /// request rather than two threads in one region.
    pub(crate) fn serve_shared(
        &self,
        inputs: &Inputs,
        run: impl FnOnce(Input<'_>) -> Result<Vec<TensorData>, String>,
    ) -> Result<Outputs, String> {
        let (slot, tensors) = match inputs {
            Inputs::Shm { slot, tensors } => (*slot as usize, tensors),
            Inputs::Inline(tensors) => return super::pipe::serve_inline(tensors, run),
            Inputs::Index(_) | Inputs::Batch { .. } => return Err(NO_SAMPLES.into()),
        };
        let flag = self
            .busy
            .get(slot)
            .ok_or_else(|| format!("no slot {slot} in the shared-memory arena"))?;
        if flag.swap(true, Ordering::Acquire) {
            return Err(format!(
                "shared-memory slot {slot} is already in use by another request in flight"
            ));
        }
        let _claim = Claim(flag);
        let outputs = run(Input::Views(&self.input_views(slot, tensors)?))?;
        // SAFETY: this thread holds the slot's claim until `_claim` drops, after the write, so no
        // other thread of this process touches its output region meanwhile.
        let written = unsafe { self.arena.write_outputs_claimed(slot, &outputs) };
        reply(written, outputs)
    }

    /// Views over a request's inputs in slot `slot` of the mapping: no copy.
    fn input_views<'a>(
        &'a self,
        slot: usize,
        tensors: &'a [TensorPlacement],
    ) -> Result<Vec<TensorView<'a>>, String> {
        tensors
            .iter()
            .map(|p| {
                let bytes = self.arena.read_input(slot, p).map_err(|e| e.to_string())?;
                Ok(TensorView {
                    dtype: p.dtype,
                    shape: &p.shape,
                    bytes,
                })
            })
            .collect()
    }

    /// Serves a request from its slot: views over the inputs in the mapping, no copy; the outputs
    /// are written into the slot's output region and only their descriptors go back.
    pub(crate) fn serve(
        &mut self,
        inputs: &Inputs,
        run: impl FnOnce(Input<'_>) -> Result<Vec<TensorData>, String>,
    ) -> Result<Outputs, String> {
        let (slot, tensors) = match inputs {
            Inputs::Shm { slot, tensors } => (*slot as usize, tensors),
            Inputs::Inline(tensors) => return super::pipe::serve_inline(tensors, run),
            Inputs::Index(_) | Inputs::Batch { .. } => return Err(NO_SAMPLES.into()),
        };
        let outputs = run(Input::Views(&self.input_views(slot, tensors)?))?;
        let written = self.arena.write_outputs(slot, &outputs);
        reply(written, outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_outputs_get_the_room_the_budget_leaves() {
        let mib = 1u64 << 20;
        // Known outputs only: exactly their room, whatever the budget.
        let l = size_layout(4, 1000, 500, false, 8192 * mib).unwrap();
        assert_eq!(
            (l.slots(), l.input_bytes(), l.output_bytes()),
            (4, 1000, 500)
        );
        // An unknown output: up to 16 MiB on top of the known room.
        let l = size_layout(4, 1000, 512, true, 8192 * mib).unwrap();
        assert_eq!(
            l.output_bytes(),
            512 + scenario_shm::UNKNOWN_OUTPUT_BYTES as usize
        );
        // ... or what the budget leaves, aligned, so the arena stays within it.
        let l = size_layout(1024, 1 << 20, 0, true, 2048 * mib).unwrap();
        assert_eq!(l.output_bytes(), 1 << 20);
        assert!(l.total_len() as u64 <= 2048 * mib);
        let l = size_layout(100, 1000, 64, true, 100_000).unwrap();
        assert_eq!(
            l.output_bytes(),
            64,
            "nothing left: every unknown output goes inline"
        );
        let l = size_layout(3, 100, 0, true, 10_000).unwrap();
        assert_eq!(l.output_bytes() % ALIGN, 0);
        assert!(l.total_len() <= 10_000, "{l}");
    }
}
