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

pub mod arena;

pub use arena::{
    ALIGN, ArenaFd, ShmArena, ShmError, ShmLayout, ShmSlot, TensorPlacement, align_up,
    clear_cloexec_in_child, copy_tensors, plan, read_tensor, read_tensor_mut, region_len_for,
    write_tensors,
};

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::{Input, Inputs, InputsRef, NO_SAMPLES, Outputs, TransferError};
use crate::scenario::{LoadPoint, ModelSource, ModelSpec, Point, Scenario};
use crate::tensor::{TensorData, TensorView};

/// Output room per slot when an output's size is unknown before running: 16 MiB.
pub const UNKNOWN_OUTPUT_BYTES: usize = 16 << 20;

/// The most slots an open-loop point gets (per member of the widest group); requests beyond wait.
const MAX_OPEN_LOOP_SLOTS: usize = 1024;

/// Bytes of a model's outputs for one request, from the ONNX signature with the dims its inputs
/// bound; `None` when an output dim cannot be known before running.
fn output_bytes(m: &ModelSpec) -> Option<usize> {
    use crate::onnx::Dim;
    let mut bound = std::collections::HashMap::new();
    for (spec, io) in m.inputs.iter().zip(
        crate::onnx::read_model_info(match &m.source {
            ModelSource::Onnx(p) => p,
            ModelSource::Synthetic(_) => return Some(0),
        })
        .ok()?
        .inputs,
    ) {
        for (d, &v) in io.dims.iter().zip(&spec.shape) {
            if let Dim::Named(n) = d {
                bound.insert(n.clone(), v);
            }
        }
    }
    let mut tensors = Vec::new();
    for o in &m.outputs {
        let dtype = o.dtype.clone().ok()?;
        let shape: Option<Vec<i64>> = o
            .dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => Some(*n),
                Dim::Named(n) => bound.get(n).copied(),
                Dim::Unknown => None,
            })
            .collect();
        tensors.push((dtype, shape?));
    }
    region_len_for(tensors.iter().map(|(d, s)| (*d, s.as_slice()))).ok()
}

/// The shared-memory slots of an `shm` point: one per request that can be in flight (closed loop:
/// concurrency × the largest fan-out; open loop: up to 1,024, and requests beyond wait), each sized
/// for the largest sample and the largest outputs.
pub fn slot_pool(scenario: &Scenario, point: &Point) -> Result<SlotPool, ShmError> {
    let fanout = scenario
        .workload
        .groups
        .iter()
        .map(|g| g.members.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let slots = match point.load {
        LoadPoint::Closed { concurrency } => concurrency * fanout,
        LoadPoint::Open { .. } => scenario.load.max_in_flight.min(MAX_OPEN_LOOP_SLOTS) * fanout,
    };
    let mut input = 0;
    let mut output = 0;
    for m in &scenario.models {
        for s in &m.samples {
            input = input.max(region_len_for(
                s.iter().map(|t| (t.dtype, t.shape.as_slice())),
            )?);
        }
        output = output.max(output_bytes(m).unwrap_or(UNKNOWN_OUTPUT_BYTES));
    }
    let layout = ShmLayout::new(slots, input.max(1), output.max(1))?;
    Ok(SlotPool::new(ShmArena::create(layout)?))
}

/// Shared-memory slots of the `shm` transfer, each owned by one request in flight. A request that
/// finds none free waits (the wait shows as send lag); slots are never allocated per request.
///
/// It lives on the parent's single thread (hence the `RefCell`), beside the pool of workers, which
/// passes [`SlotPool::fd`] to every worker it starts.
pub struct SlotPool {
    pub fd: ArenaFd,
    free: std::cell::RefCell<Vec<ShmSlot>>,
    released: tokio::sync::Notify,
}

impl std::fmt::Debug for SlotPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotPool")
            .field("fd", &self.fd)
            .field("free", &self.free.borrow().len())
            .finish()
    }
}

impl SlotPool {
    pub fn new(arena: ShmArena) -> SlotPool {
        let (fd, slots) = arena.split();
        SlotPool {
            fd,
            free: std::cell::RefCell::new(slots),
            released: tokio::sync::Notify::new(),
        }
    }

    /// A free slot, waiting for one when all are in use.
    pub async fn acquire(&self) -> ShmSlot {
        loop {
            if let Some(s) = self.free.borrow_mut().pop() {
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
}

/// Parent side: takes a slot from the pool for each request.
#[derive(Debug, Clone, Copy)]
pub struct Stager<'a> {
    slots: &'a SlotPool,
}

impl<'a> Stager<'a> {
    pub fn new(slots: &'a SlotPool) -> Self {
        Stager { slots }
    }

    /// Takes a slot (waiting when none is free) and writes `sample` into it once.
    pub async fn stage(&self, sample: &[TensorData]) -> Staged<'a> {
        let mut slot = self.slots.acquire().await;
        let placed = slot.write_inputs(sample);
        Staged {
            slots: self.slots,
            slot: Some(slot),
            placed,
        }
    }
}

/// A request's slot with its inputs written (or the reason they did not fit). Dropping it gives
/// the slot back to the pool: hold it until the worker's reply, as the arena's contract requires.
#[derive(Debug)]
pub struct Staged<'a> {
    slots: &'a SlotPool,
    /// `Some` until dropped.
    slot: Option<ShmSlot>,
    placed: Result<Vec<TensorPlacement>, ShmError>,
}

impl Staged<'_> {
    pub fn inputs(&self) -> Result<InputsRef<'_>, String> {
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
    pub fn slot(&self) -> &ShmSlot {
        self.slot.as_ref().expect("held until dropped")
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
pub struct Resolver {
    arena: ShmArena,
}

impl Resolver {
    /// Maps the arena inherited as `fd` with the setup's `layout`.
    pub fn open(layout: Option<ShmLayout>, fd: Option<RawFd>) -> Result<Self, TransferError> {
        let layout = layout.ok_or(TransferError::NoLayout)?;
        let fd = fd.ok_or(TransferError::NoArenaFd)?;
        // SAFETY: as for the worker's socket, the parent made this descriptor for this process
        // (`--shm-fd`), and nothing else in this process owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let arena = ShmArena::open(owned, layout).map_err(TransferError::Arena)?;
        Ok(Resolver { arena })
    }

    /// Serves a request from its slot: views over the inputs in the mapping, no copy; the outputs
    /// are written into the slot's output region and only their descriptors go back.
    pub fn serve(
        &mut self,
        inputs: &Inputs,
        run: impl FnOnce(Input<'_>) -> Result<Vec<TensorData>, String>,
    ) -> Result<Outputs, String> {
        let (slot, tensors) = match inputs {
            Inputs::Shm { slot, tensors } => (*slot as usize, tensors),
            Inputs::Inline(tensors) => return super::pipe::serve_inline(tensors, run),
            Inputs::Index(_) => return Err(NO_SAMPLES.into()),
        };
        let mut views = Vec::with_capacity(tensors.len());
        for p in tensors {
            let bytes = self.arena.read_input(slot, p).map_err(|e| e.to_string())?;
            views.push(TensorView {
                dtype: p.dtype,
                shape: &p.shape,
                bytes,
            });
        }
        let outputs = run(Input::Views(&views))?;
        let placed = self
            .arena
            .write_outputs(slot, &outputs)
            .map_err(|e| e.to_string())?;
        Ok(Outputs::Shm(placed))
    }
}
