//! How tensor bytes travel between the parent and a worker, one file per transfer mode.
//!
//! A mode has two halves, and both live in its file:
//!
//! - a parent-side **stager**: what the load generator does to put one request's inputs on the
//!   wire, and to clean up after the reply;
//! - a worker-side **resolver**: what the worker does to turn the request's [`Inputs`] into the
//!   tensor views it hands the runtime, and how the outputs go back.
//!
//! The modes:
//!
//! - [`pipe`]: the bytes ride inside the frames of [`crate::pool::protocol`]; the baseline.
//! - [`shm`]: inputs are written once into a slot of a shared-memory arena and only the slot id
//!   crosses; the worker reads a view over its own mapping of the same pages, and outputs come back
//!   through the slot's output region.
//! - [`index`]: the worker generates the same samples from the same seeds at start; only the sample
//!   index crosses.
//! - [`device`]: as `index`, and the worker stages every sample on the GPU when the model loads.
//!
//! Beside the modes, [`channel`] is how their messages travel: the worker's socket, or (the `spin`
//! channel) two rings in shared memory that each side spins on briefly before it parks.
//!
//! [`Stager`] and [`Resolver`] dispatch to them with exhaustive `match`es over the scenario's
//! [`Transfer`], so a new mode is a new file here plus a variant there, and the compiler names
//! every place that must learn about it. [`throughput`] measures `pipe` against `shm` against a
//! plain `memcpy`.
//!
//! Imports go one way: `protocol` carries the wire forms defined here ([`Inputs`], [`Outputs`],
//! [`shm::ShmLayout`], [`shm::TensorPlacement`]); this module knows
//! `tensor`, `scenario` and `onnx`, never `protocol`, `worker`, `load` or `sweep`.

use std::os::fd::RawFd;

use serde::{Deserialize, Serialize};

use crate::model::tensor::{TensorData, TensorView};
use crate::scenario::{InputSpec, Point, Runtime, Scenario, Transfer};

pub mod channel;
pub mod device;
pub mod index;
pub mod pipe;
pub mod shm;
pub mod throughput;

use shm::{ShmError, ShmLayout, SlotPool, TensorPlacement};

/// A request's inputs, by transfer mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Inputs {
    /// The tensors themselves (`pipe`).
    Inline(Vec<TensorData>),
    /// Tensors placed in a shared-memory slot (`shm`).
    Shm {
        slot: u32,
        tensors: Vec<TensorPlacement>,
    },
    /// A sample the worker generated at start (`index`, `device`).
    Index(u32),
    /// Dynamic batching with `index`: the worker joins these samples into one run, each input
    /// with a batch axis along it (`axes`: `(input, axis)`, see [`join_samples`]).
    Batch {
        samples: Vec<u32>,
        axes: Vec<(u32, u32)>,
    },
}

/// The borrowed twin of [`Inputs`], so a sample is encoded without being cloned. Same variant
/// order; a test in `worker::pool` checks that both encode alike.
#[derive(Debug, Clone, Copy, Serialize)]
pub enum InputsRef<'a> {
    Inline(&'a [TensorData]),
    Shm {
        slot: u32,
        tensors: &'a [TensorPlacement],
    },
    Index(u32),
    Batch {
        samples: &'a [u32],
        axes: &'a [(u32, u32)],
    },
}

/// A reply's outputs, by transfer mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outputs {
    Inline(Vec<TensorData>),
    /// Written into the request's slot.
    Shm(Vec<TensorPlacement>),
}

/// What can stop a transfer mode from being set up, on either side.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransferError {
    #[error("the shm transfer needs the pool's shared-memory slots; start the pool with them")]
    NoSlots,
    #[error("shm transfer without --shm-fd")]
    NoArenaFd,
    #[error("shm transfer without a shared-memory layout in the setup")]
    NoLayout,
    #[error("cannot map the shared-memory arena: {0}")]
    Arena(ShmError),
    #[error("cannot generate inputs: {message}")]
    Samples { model: String, message: String },
}

impl TransferError {
    /// The model the error is about, when it is about one.
    pub(crate) fn model(&self) -> Option<&str> {
        match self {
            TransferError::Samples { model, .. } => Some(model),
            TransferError::NoSlots
            | TransferError::NoArenaFd
            | TransferError::NoLayout
            | TransferError::Arena(_) => None,
        }
    }
}

/// The shared-memory slots a point's pool needs: `Some` only for the modes that stage inputs in an
/// arena. The pool passes the arena's descriptor to every worker it starts.
pub(crate) fn slot_pool(scenario: &Scenario, point: &Point) -> Result<Option<SlotPool>, ShmError> {
    match point.transfer {
        Transfer::Shm => shm::slot_pool(scenario, point).map(Some),
        Transfer::Pipe | Transfer::Index | Transfer::Device => Ok(None),
    }
}

/// Whether a worker of `runtime` gets the samples themselves in its setup (once, at start): a torch
/// worker cannot generate them bit for bit as Rust does, so it gets them for the `index` transfer.
pub(crate) fn samples_in_setup(transfer: Transfer, runtime: Runtime) -> bool {
    match transfer {
        Transfer::Index => index::samples_in_setup(runtime),
        Transfer::Device => device::samples_in_setup(runtime),
        Transfer::Pipe | Transfer::Shm => false,
    }
}

/// The parent's side of a point's transfer mode: one per load phase.
#[derive(Debug)]
pub(crate) enum Stager<'a> {
    Pipe(pipe::Stager),
    Shm(shm::Stager<'a>),
    Index(index::Stager),
    Device(device::Stager),
}

/// One request's inputs, staged: what the request frame carries, and whatever must be held until
/// the reply (a shared-memory slot, released when this is dropped).
#[derive(Debug)]
pub(crate) enum Staged<'a> {
    Pipe(pipe::Staged<'a>),
    Shm(shm::Staged<'a>),
    Index(index::Staged<'a>),
    Device(device::Staged<'a>),
}

impl<'a> Stager<'a> {
    /// The stager of `transfer`; `slots` are the pool's shared-memory slots (see [`slot_pool`]).
    pub(crate) fn new(
        transfer: Transfer,
        slots: Option<&'a SlotPool>,
    ) -> Result<Self, TransferError> {
        Ok(match transfer {
            Transfer::Pipe => Stager::Pipe(pipe::Stager),
            Transfer::Shm => Stager::Shm(shm::Stager::new(slots.ok_or(TransferError::NoSlots)?)),
            Transfer::Index => Stager::Index(index::Stager),
            Transfer::Device => Stager::Device(device::Stager),
        })
    }

    /// Whether a batched run needs its samples joined in the parent ([`Stager::stage_batch`]):
    /// the modes that carry tensors; `index` sends the sample numbers and the worker joins them.
    pub(crate) fn joins_in_parent(&self) -> bool {
        match self {
            Stager::Pipe(_) | Stager::Shm(_) => true,
            Stager::Index(_) | Stager::Device(_) => false,
        }
    }

    /// Stages one run of several requests (dynamic batching): `joined`, their samples joined by
    /// [`join_samples`], for the modes that carry tensors, or the sample numbers and batch axes
    /// for the worker to join. May wait for a free slot, as [`Stager::stage`].
    pub(crate) async fn stage_batch<'s>(
        &'s self,
        joined: &'s [TensorData],
        samples: &'s [u32],
        axes: &'s [(u32, u32)],
    ) -> Staged<'s> {
        match self {
            Stager::Pipe(s) => Staged::Pipe(s.stage(joined)),
            Stager::Shm(s) => Staged::Shm(s.stage(joined).await),
            Stager::Index(_) | Stager::Device(_) => {
                Staged::Index(index::Staged::Batch { samples, axes })
            }
        }
    }

    /// Stages sample number `index`, `sample`, for one request. May wait (for a free slot): the
    /// caller counts the wait as send lag. Hold the result until the reply has arrived.
    pub(crate) async fn stage<'s>(&'s self, sample: &'s [TensorData], index: usize) -> Staged<'s> {
        match self {
            Stager::Pipe(s) => Staged::Pipe(s.stage(sample)),
            Stager::Shm(s) => Staged::Shm(s.stage(sample).await),
            Stager::Index(s) => Staged::Index(s.stage(index)),
            Stager::Device(s) => Staged::Device(s.stage(index)),
        }
    }
}

impl Staged<'_> {
    /// How long the parent took to copy the inputs for this request (into a shared-memory slot);
    /// zero for the modes that copy nothing before the send (`pipe` encodes the bytes into the
    /// request frame as it sends it). Transfer cost: the caller counts it in service time.
    pub(crate) fn copy_time(&self) -> std::time::Duration {
        match self {
            Staged::Shm(s) => s.copy_time(),
            Staged::Pipe(_) | Staged::Index(_) | Staged::Device(_) => std::time::Duration::ZERO,
        }
    }

    /// Whether `outputs`, this request's reply, came back inline although the mode returns them
    /// elsewhere: an `shm` output larger than its slot's room.
    pub(crate) fn outputs_fell_back(&self, outputs: &Outputs) -> bool {
        match self {
            Staged::Shm(_) => matches!(outputs, Outputs::Inline(_)),
            Staged::Pipe(_) | Staged::Index(_) | Staged::Device(_) => false,
        }
    }

    /// What the request frame carries; `Err` (the request's failure) when the inputs could not be
    /// staged.
    pub(crate) fn inputs(&self) -> Result<InputsRef<'_>, String> {
        match self {
            Staged::Pipe(s) => Ok(s.inputs()),
            Staged::Shm(s) => s.inputs(),
            Staged::Index(s) => Ok(s.inputs()),
            Staged::Device(s) => Ok(s.inputs()),
        }
    }
}

impl Staged<'_> {
    /// The outputs of this request's reply as tensors, for the expected-output check: inline as
    /// they came, or copied out of the request's shared-memory slot. `None` when the mode sends no
    /// outputs back (`device`: they stay in GPU memory).
    pub(crate) fn outputs<'o>(
        &self,
        outputs: &'o Outputs,
    ) -> Result<Option<std::borrow::Cow<'o, [TensorData]>>, String> {
        use std::borrow::Cow;
        match (self, outputs) {
            (Staged::Device(_), _) => Ok(None),
            (Staged::Shm(s), Outputs::Shm(placed)) => shm::copy_tensors(s.slot().output(), placed)
                .map(|v| Some(Cow::Owned(v)))
                .map_err(|e| format!("cannot read the outputs from the slot: {e}")),
            (Staged::Pipe(_) | Staged::Shm(_) | Staged::Index(_), Outputs::Inline(v)) => {
                Ok(Some(Cow::Borrowed(v)))
            }
            (Staged::Pipe(_) | Staged::Index(_), Outputs::Shm(_)) => {
                Err("outputs in a shared-memory slot, but the request had none".into())
            }
        }
    }
}

/// What the worker hands the runtime for one request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input<'a> {
    /// Views of the input tensors, wherever their bytes are.
    Views(&'a [TensorView<'a>]),
    /// The staged sample `k` (see [`Resolver::to_stage`]), already on the device.
    Staged(usize),
}

/// One model's inputs as the worker's setup names them, for the modes that generate samples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModelInputs<'a> {
    pub(crate) name: &'a str,
    pub(crate) inputs: &'a [InputSpec],
    pub(crate) samples: usize,
}

/// The worker's side of its transfer mode: made once at setup, then asked to serve each request.
#[derive(Debug)]
pub(crate) enum Resolver {
    Pipe(pipe::Resolver),
    Shm(shm::Resolver),
    Index(index::Resolver),
    Device(device::Resolver),
}

impl Resolver {
    /// The resolver of `transfer`. `shm` is the arena's layout from the setup and `shm_fd` the
    /// descriptor inherited with `--shm-fd` (the `shm` mode maps it and takes ownership of it);
    /// `models` are every model of the setup, in order (the `index` and `device` modes generate
    /// their samples here, from the same seeds as the parent).
    pub(crate) fn open<'m>(
        transfer: Transfer,
        shm: Option<ShmLayout>,
        shm_fd: Option<RawFd>,
        models: impl IntoIterator<Item = ModelInputs<'m>>,
    ) -> Result<Resolver, TransferError> {
        Ok(match transfer {
            Transfer::Pipe => Resolver::Pipe(pipe::Resolver),
            Transfer::Shm => Resolver::Shm(shm::Resolver::open(shm, shm_fd)?),
            Transfer::Index => Resolver::Index(index::Resolver::open(models)?),
            Transfer::Device => Resolver::Device(device::Resolver::open(models)?),
        })
    }

    /// The samples to stage on the device when model `m` loads (`device` mode), else `None`.
    pub(crate) fn to_stage(&self, m: usize) -> Option<&[Vec<TensorData>]> {
        match self {
            Resolver::Device(r) => r.to_stage(m),
            Resolver::Pipe(_) | Resolver::Shm(_) | Resolver::Index(_) => None,
        }
    }

    /// Serves one request to model `m`: resolves `inputs`, calls `run` once with what the runtime
    /// gets, and returns its outputs the way the inputs came.
    pub(crate) fn serve(
        &mut self,
        m: usize,
        inputs: &Inputs,
        run: impl FnOnce(Input<'_>) -> Result<Vec<TensorData>, String>,
    ) -> Result<Outputs, String> {
        match self {
            Resolver::Pipe(r) => r.serve(inputs, run),
            Resolver::Shm(r) => r.serve(inputs, run),
            Resolver::Index(r) => r.serve(m, inputs, run),
            Resolver::Device(r) => r.serve(m, inputs, run),
        }
    }
}

/// The inputs of one run of several requests (dynamic batching): for each input with a batch axis
/// (`axes`: `(input, axis)`), the samples' tensors joined along it, in order; an input without one
/// is shared by the whole batch and taken from the first sample.
pub(crate) fn join_samples(
    samples: &[&[TensorData]],
    axes: &[(u32, u32)],
) -> Result<Vec<TensorData>, String> {
    let first = samples.first().ok_or("a batch of no samples")?;
    (0..first.len())
        .map(|j| match axes.iter().find(|(i, _)| *i as usize == j) {
            Some(&(_, axis)) => {
                let parts: Vec<TensorView<'_>> = samples
                    .iter()
                    .map(|s| {
                        s.get(j)
                            .map(TensorData::view)
                            .ok_or("samples differ in inputs")
                    })
                    .collect::<Result<_, _>>()?;
                crate::model::tensor::concat(&parts, axis as usize)
            }
            None => Ok(first[j].clone()),
        })
        .collect()
}

impl Resolver {
    /// As [`Resolver::serve`], from one of several threads that serve requests of one worker at
    /// once (`worker_concurrency`): each request reads its own inputs (`shm`: its own slot, claimed
    /// while it runs) and writes its own outputs.
    pub(crate) fn serve_shared(
        &self,
        m: usize,
        inputs: &Inputs,
        run: impl FnOnce(Input<'_>) -> Result<Vec<TensorData>, String>,
    ) -> Result<Outputs, String> {
        match self {
            Resolver::Pipe(r) => r.serve(inputs, run),
            Resolver::Shm(r) => r.serve_shared(inputs, run),
            Resolver::Index(r) => r.serve(m, inputs, run),
            Resolver::Device(r) => r.serve(m, inputs, run),
        }
    }
}

/// What a worker answers to a shared-memory request when it has no arena.
const NO_ARENA: &str = "a shared-memory request, but this worker has no arena";
/// What a worker answers to an index request when it generated no samples.
const NO_SAMPLES: &str = "the index transfer has no samples here";

#[cfg(test)]
mod tests {
    use std::os::fd::IntoRawFd;

    use futures::FutureExt;

    use super::*;
    use crate::model::tensor::DType;

    fn sample() -> Vec<TensorData> {
        vec![
            TensorData {
                dtype: DType::F32,
                shape: vec![2],
                bytes: vec![0, 0, 128, 63, 0, 0, 0, 64],
            },
            TensorData {
                dtype: DType::U8,
                shape: vec![3],
                bytes: vec![7, 8, 9],
            },
        ]
    }

    /// A runtime that returns its inputs.
    fn echo(input: Input<'_>) -> Result<Vec<TensorData>, String> {
        match input {
            Input::Views(views) => Ok(views
                .iter()
                .map(|v| TensorData {
                    dtype: v.dtype,
                    shape: v.shape.to_vec(),
                    bytes: v.bytes.to_vec(),
                })
                .collect()),
            Input::Staged(k) => Err(format!("nothing staged, asked for {k}")),
        }
    }

    /// What a request frame carries, decoded as the worker sees it.
    fn on_the_wire(inputs: InputsRef<'_>) -> Inputs {
        postcard::from_bytes(&postcard::to_allocvec(&inputs).unwrap()).unwrap()
    }

    #[test]
    fn shm_round_trip_from_stager_to_resolver_and_back() {
        let layout = ShmLayout::new(1, 4096, 4096).unwrap();
        let slots = SlotPool::new(shm::ShmArena::create(layout).unwrap());
        let fd = slots.fd.fd().try_clone_to_owned().unwrap().into_raw_fd();
        let mut resolver = Resolver::open(Transfer::Shm, Some(layout), Some(fd), []).unwrap();
        let stager = Stager::new(Transfer::Shm, Some(&slots)).unwrap();
        let sample = sample();
        let staged = stager.stage(&sample, 0).now_or_never().unwrap();
        let inputs = on_the_wire(staged.inputs().unwrap());
        assert!(matches!(inputs, Inputs::Shm { slot: 0, .. }), "{inputs:?}");
        let Outputs::Shm(placed) = resolver.serve(0, &inputs, echo).unwrap() else {
            panic!("shm outputs come back through the slot");
        };
        let Staged::Shm(s) = &staged else {
            unreachable!()
        };
        assert_eq!(
            shm::copy_tensors(s.slot().output(), &placed).unwrap(),
            sample
        );
        // The only slot is held until the staged request is dropped.
        assert!(slots.acquire().now_or_never().is_none());
        drop(staged);
        assert!(slots.acquire().now_or_never().is_some());
    }

    /// Outputs larger than the slot's output room (a size only known after running) come back
    /// inline for that request instead of failing it, and the stager says so.
    #[test]
    fn shm_outputs_that_outgrow_their_room_come_back_inline() {
        let layout = ShmLayout::new(1, 4096, 64).unwrap(); // the sample echoed needs 64 + 3 bytes
        let slots = SlotPool::new(shm::ShmArena::create(layout).unwrap());
        let fd = slots.fd.fd().try_clone_to_owned().unwrap().into_raw_fd();
        let mut resolver = Resolver::open(Transfer::Shm, Some(layout), Some(fd), []).unwrap();
        let stager = Stager::new(Transfer::Shm, Some(&slots)).unwrap();
        let sample = sample();
        let staged = stager.stage(&sample, 0).now_or_never().unwrap();
        let inputs = on_the_wire(staged.inputs().unwrap());
        let outputs = resolver.serve(0, &inputs, echo).unwrap();
        assert_eq!(outputs, Outputs::Inline(sample.clone()));
        assert!(staged.outputs_fell_back(&outputs));
        assert!(
            !staged.copy_time().is_zero(),
            "the copy into the slot is timed"
        );
        // Outputs that fit go through the slot, as before.
        let small = |_: Input<'_>| Ok(vec![sample[1].clone()]);
        let fits = resolver.serve(0, &inputs, small).unwrap();
        assert!(matches!(fits, Outputs::Shm(_)), "{fits:?}");
        assert!(!staged.outputs_fell_back(&fits));
        // Only the shm mode copies before the send or can fall back.
        let pipe = Stager::new(Transfer::Pipe, None).unwrap();
        let p = pipe.stage(&sample, 0).now_or_never().unwrap();
        assert!(p.copy_time().is_zero() && !p.outputs_fell_back(&outputs));
    }

    /// A slot is taken only when a request needs one, and a freed slot is reused first, so the
    /// slots touched are as many as the requests that were in flight at once.
    #[test]
    fn slots_are_taken_as_requests_need_them() {
        let slots =
            SlotPool::new(shm::ShmArena::create(ShmLayout::new(1024, 64, 64).unwrap()).unwrap());
        assert_eq!(slots.used(), 0);
        for _ in 0..10 {
            let s = slots.acquire().now_or_never().unwrap();
            assert_eq!(s.index(), 0);
            slots.release(s);
        }
        let a = slots.acquire().now_or_never().unwrap();
        let b = slots.acquire().now_or_never().unwrap();
        assert_eq!((a.index(), b.index(), slots.used()), (0, 1, 2));
    }

    /// `worker_concurrency`: two threads serve two slots at once, and a slot named by a second
    /// request while the first still runs from it is refused, not shared.
    #[test]
    fn shm_concurrent_requests_each_hold_their_own_slot() {
        let layout = ShmLayout::new(2, 4096, 4096).unwrap();
        let slots = SlotPool::new(shm::ShmArena::create(layout).unwrap());
        let fd = slots.fd.fd().try_clone_to_owned().unwrap().into_raw_fd();
        let resolver = Resolver::open(Transfer::Shm, Some(layout), Some(fd), []).unwrap();
        let stager = Stager::new(Transfer::Shm, Some(&slots)).unwrap();
        let sample = sample();
        let a = stager.stage(&sample, 0).now_or_never().unwrap();
        let b = stager.stage(&sample, 1).now_or_never().unwrap();
        let (ia, ib) = (
            on_the_wire(a.inputs().unwrap()),
            on_the_wire(b.inputs().unwrap()),
        );
        let barrier = std::sync::Barrier::new(2);
        let run = |inputs: &Inputs| {
            resolver.serve_shared(0, inputs, |input| {
                barrier.wait(); // both runs are inside their slot at once
                echo(input)
            })
        };
        let (ra, rb) = std::thread::scope(|s| {
            let (run, ia, ib) = (&run, &ia, &ib);
            let ta = s.spawn(move || run(ia));
            let tb = s.spawn(move || run(ib));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        for (staged, reply) in [(&a, ra.unwrap()), (&b, rb.unwrap())] {
            let Outputs::Shm(placed) = reply else {
                panic!("outputs through the slot")
            };
            let Staged::Shm(s) = staged else {
                unreachable!()
            };
            assert_eq!(
                shm::copy_tensors(s.slot().output(), &placed).unwrap(),
                sample
            );
        }
        // The same slot named again while a run holds it.
        let err = resolver
            .serve_shared(0, &ia, |_| {
                resolver.serve_shared(0, &ia, echo).map(|_| vec![])
            })
            .unwrap_err();
        assert!(err.contains("already in use"), "{err}");
        // Released after each request.
        assert!(resolver.serve_shared(0, &ia, echo).is_ok());
    }

    #[test]
    fn pipe_sends_the_bytes_and_every_mode_serves_them_inline() {
        let stager = Stager::new(Transfer::Pipe, None).unwrap();
        let sample = sample();
        let staged = stager.stage(&sample, 5).now_or_never().unwrap();
        let inputs = on_the_wire(staged.inputs().unwrap());
        assert_eq!(inputs, Inputs::Inline(sample.clone()));
        for transfer in [Transfer::Pipe, Transfer::Index, Transfer::Device] {
            let mut r = Resolver::open(transfer, None, None, []).unwrap();
            assert_eq!(
                r.serve(0, &inputs, echo).unwrap(),
                Outputs::Inline(sample.clone()),
                "{transfer:?}"
            );
        }
    }

    /// A batch joined in the parent (`pipe`) and one joined by the worker from its own samples
    /// (`index`) reach the runtime as the same tensors.
    #[test]
    fn a_batch_is_joined_alike_in_the_parent_and_in_an_index_worker() {
        use crate::model::tensor::{Generator, concat};
        let inputs = [
            InputSpec {
                name: "x".into(),
                dtype: DType::F32,
                shape: vec![1, 3],
                generator: Generator::Uniform {
                    low: 0.0,
                    high: 1.0,
                },
                seed: 7,
            },
            InputSpec {
                name: "scale".into(),
                dtype: DType::F32,
                shape: vec![1],
                generator: Generator::Const { value: 2.0 },
                seed: 8,
            },
        ];
        let samples = crate::scenario::generate_samples(&inputs, 4).unwrap();
        let axes = [(0, 0)];
        let picked: Vec<&[TensorData]> = [2usize, 0, 3].iter().map(|&k| &samples[k][..]).collect();
        let joined = join_samples(&picked, &axes).unwrap();
        let x: Vec<TensorView<'_>> = picked.iter().map(|s| s[0].view()).collect();
        assert_eq!(joined[0], concat(&x, 0).unwrap());
        assert_eq!(joined[0].shape, [3, 3]);
        assert_eq!(
            joined[1], samples[2][1],
            "an input without a batch axis is shared"
        );

        let pipe = Stager::new(Transfer::Pipe, None).unwrap();
        assert!(pipe.joins_in_parent());
        let staged = pipe
            .stage_batch(&joined, &[2, 0, 3], &axes)
            .now_or_never()
            .unwrap();
        let mut r = Resolver::open(Transfer::Pipe, None, None, []).unwrap();
        let from_parent = r
            .serve(0, &on_the_wire(staged.inputs().unwrap()), echo)
            .unwrap();

        let index = Stager::new(Transfer::Index, None).unwrap();
        assert!(!index.joins_in_parent());
        let staged = index
            .stage_batch(&[], &[2, 0, 3], &axes)
            .now_or_never()
            .unwrap();
        let wire = on_the_wire(staged.inputs().unwrap());
        assert_eq!(
            wire,
            Inputs::Batch {
                samples: vec![2, 0, 3],
                axes: vec![(0, 0)]
            }
        );
        let model = ModelInputs {
            name: "m",
            inputs: &inputs,
            samples: 4,
        };
        let mut r = Resolver::open(Transfer::Index, None, None, [model]).unwrap();
        assert_eq!(r.serve(0, &wire, echo).unwrap(), from_parent);
        // A worker that keeps samples on a device cannot batch them, and says so.
        let mut d = Resolver::open(Transfer::Device, None, None, [model]).unwrap();
        assert!(
            d.serve(0, &wire, echo)
                .unwrap_err()
                .contains("cannot batch")
        );
    }

    #[test]
    fn a_request_in_a_mode_the_worker_was_not_set_up_for_is_refused() {
        let shm = Inputs::Shm {
            slot: 0,
            tensors: Vec::new(),
        };
        let mut pipe = Resolver::open(Transfer::Pipe, None, None, []).unwrap();
        assert_eq!(pipe.serve(0, &shm, echo).unwrap_err(), NO_ARENA);
        assert_eq!(
            pipe.serve(0, &Inputs::Index(1), echo).unwrap_err(),
            NO_SAMPLES
        );
        // No models: no samples to pick from.
        let mut index = Resolver::open(Transfer::Index, None, None, []).unwrap();
        assert_eq!(
            index.serve(0, &Inputs::Index(1), echo).unwrap_err(),
            NO_SAMPLES
        );
        // The index stager sends the index, for `index` and `device` alike.
        for transfer in [Transfer::Index, Transfer::Device] {
            let stager = Stager::new(transfer, None).unwrap();
            let staged = stager.stage(&[], 3).now_or_never().unwrap();
            assert_eq!(on_the_wire(staged.inputs().unwrap()), Inputs::Index(3));
        }
        // The shm modes need their slots and their arena.
        assert!(matches!(
            Stager::new(Transfer::Shm, None),
            Err(TransferError::NoSlots)
        ));
        assert!(matches!(
            Resolver::open(Transfer::Shm, None, Some(0), []),
            Err(TransferError::NoLayout)
        ));
    }
}
