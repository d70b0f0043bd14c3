//! Scenarios: the TOML file a user writes, checked and resolved before anything is spawned.
//!
//! Two stages: `raw` mirrors the file (serde, unknown keys rejected; `parse` reads it, finding every
//! unknown key and wrong type at once), then [`load`] resolves it into a [`Scenario`] with no
//! optional fields: absolute paths, shapes with every dynamic dim bound and checked against the
//! ONNX file, generated input samples, typed durations and the sweep axes. Every problem becomes a
//! [`ScenarioError`] naming the file, line and key, and saying how to fix it; all problems found
//! are reported together.

pub mod axes;
pub mod batch;
pub mod batching;
pub use batching::{BatchPolicy, IdlePolicy};
mod model;
pub use model::generate_samples;
mod describe;
pub use describe::{describe, effective_settings};
pub mod limits;
mod parse;
mod raw;
pub mod session;
pub mod shm;
pub mod slo;
pub mod source;
pub mod sweep;
mod torch;
mod workload;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::onnx::IoInfo;
use crate::tensor::{DType, Generator, TensorData};
pub use axes::Axes;
use raw::RawScenario;
pub use session::{ExecutionMode, GraphOptimization, SessionKnobs};
pub use source::{KeyPath, SourceMap};
pub use sweep::{Point, expand};
pub use workload::MAX_SPIN;

/// The largest single sample (all inputs of one model) the parent will generate: 1 GiB.
pub const MAX_SAMPLE_BYTES: usize = 1 << 30;
/// The most memory all generated samples of one model may take: 4 GiB.
pub const MAX_SAMPLES_BYTES: usize = 4 << 30;

/// How tensors travel between the load generator and a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transfer {
    /// Tensor bytes inside the frames on the worker's socket: the copy-through-a-queue baseline.
    Pipe,
    /// Inputs written once into a shared-memory slot; only the slot id crosses the socket, and the
    /// worker hands ONNX Runtime a view over its mapping. Outputs come back through the slot.
    Shm,
    /// The worker generates the same samples itself at start; only a sample index crosses.
    Index,
    /// CUDA only: as `index`, and the worker copies every sample into GPU memory once and binds it
    /// (IoBinding); outputs stay on the GPU. The compute-only floor.
    Device,
}

impl Transfer {
    pub const ALL: [Transfer; 4] = [
        Transfer::Pipe,
        Transfer::Shm,
        Transfer::Index,
        Transfer::Device,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Transfer::Pipe => "pipe",
            Transfer::Shm => "shm",
            Transfer::Index => "index",
            Transfer::Device => "device",
        }
    }
    /// Whether input bytes cross to the worker for every request (`per_request`), once to its host
    /// memory (`once`), or once to the GPU (`device`).
    pub fn staging(self) -> &'static str {
        match self {
            Transfer::Pipe | Transfer::Shm => "per_request",
            Transfer::Index => "once",
            Transfer::Device => "device",
        }
    }
}

/// How requests and replies travel between the parent and a worker (the transfer mode says what
/// they carry; see `transfer::channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Frames on the worker's Unix socket; a side that waits sleeps in the kernel.
    Socket,
    /// Frames through two shared-memory rings; a side that waits spins for a short, adaptive time
    /// before it parks on the socket (`[transfer] spin`, `spin_max_us`).
    Spin,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Socket, Channel::Spin];
    pub fn name(self) -> &'static str {
        match self {
            Channel::Socket => "socket",
            Channel::Spin => "spin",
        }
    }
}

/// When the `spin` channel may spin (`[transfer] spin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpinWhen {
    /// Only while the point's busy threads (the parent, and each worker's
    /// `worker_concurrency × intra_threads`) fit in the CPUs this process may use; otherwise
    /// spinning would take a core from a peer, and both sides park at once.
    Auto,
    /// Always, even on more threads than cores.
    Always,
}

impl SpinWhen {
    pub fn name(self) -> &'static str {
        match self {
            SpinWhen::Auto => "auto",
            SpinWhen::Always => "always",
        }
    }
}

/// Which worker holds which model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Every worker loads every model.
    Replicate,
    /// Each model is loaded by an even share of the workers.
    Partition,
    /// One worker per model (the point's worker count is the model count).
    Dedicated,
    /// A worker loads a model the first time it is asked for it, evicting the least recently used
    /// model beyond its cap.
    OnDemand,
    /// Each worker holds exactly one model, and each model as many workers as `[replicas]` gives
    /// it (the point's worker count is their sum).
    Replicas,
}

impl Placement {
    pub const ALL: [Placement; 5] = [
        Placement::Replicate,
        Placement::Partition,
        Placement::Dedicated,
        Placement::OnDemand,
        Placement::Replicas,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Placement::Replicate => "replicate",
            Placement::Partition => "partition",
            Placement::Dedicated => "dedicated",
            Placement::OnDemand => "on-demand",
            Placement::Replicas => "replicas",
        }
    }

    /// The models each of `workers` workers loads at start (model indices), for `models` models.
    /// On-demand workers start empty. `replicas` is each model's worker count under `[replicas]`
    /// (used by the `replicas` placement only): model 0's workers first, then model 1's, and so on.
    pub fn assign(self, workers: usize, models: usize, replicas: &[usize]) -> Vec<Vec<usize>> {
        match self {
            Placement::Replicas => replicas
                .iter()
                .enumerate()
                .flat_map(|(m, &n)| std::iter::repeat_n(vec![m], n))
                .collect(),
            Placement::Replicate => vec![(0..models).collect(); workers],
            Placement::OnDemand => vec![Vec::new(); workers],
            Placement::Dedicated => (0..workers)
                .map(|w| if w < models { vec![w] } else { Vec::new() })
                .collect(),
            Placement::Partition if workers >= models => {
                (0..workers).map(|w| vec![w % models]).collect()
            }
            Placement::Partition => (0..workers)
                .map(|w| (0..models).filter(|m| m % workers == w).collect())
                .collect(),
        }
    }
}

/// CPU pinning of workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pin {
    /// The scheduler places workers.
    None,
    /// Worker `i` is pinned to CPU `i mod cores`.
    Cores,
}

impl Pin {
    pub const ALL: [Pin; 2] = [Pin::None, Pin::Cores];
    pub fn name(self) -> &'static str {
        match self {
            Pin::None => "none",
            Pin::Cores => "cores",
        }
    }
}

/// Caps of the on-demand placement, per worker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OnDemandCaps {
    /// Models held at once; loading one more evicts the least recently used.
    pub max_models: Option<usize>,
    /// Estimated memory of the models held (each model's resident-memory growth when it loaded).
    pub memory_budget_bytes: Option<u64>,
}

/// Where a worker runs its models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Cpu,
    /// ONNX Runtime's CUDA execution provider, registered so that a failure is an error, never a
    /// silent fall-back to the CPU.
    Cuda,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::Cpu, Provider::Cuda];
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
        }
    }
}

/// The `[cuda]` settings, applied to every CUDA point.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CudaSpec {
    /// Devices for the workers, by CUDA device id; empty means round-robin over every visible device.
    pub gpus: Vec<u32>,
    pub conv_algo_search: ConvAlgoSearch,
    pub arena_extend_strategy: ArenaExtend,
    /// The CUDA memory arena's limit per worker, in bytes.
    pub gpu_mem_limit_bytes: Option<u64>,
}

impl CudaSpec {
    /// The device of worker `w`, given how many devices are visible (used for round-robin).
    pub fn device_of(&self, w: usize, visible: usize) -> u32 {
        if self.gpus.is_empty() {
            (w % visible.max(1)) as u32
        } else {
            self.gpus[w % self.gpus.len()]
        }
    }
}

/// cuDNN's convolution algorithm search (`cudnn_conv_algo_search`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvAlgoSearch {
    /// Benchmark every algorithm on the first run (ONNX Runtime's default).
    #[default]
    Exhaustive,
    Heuristic,
    /// The implicit-precomputed-GEMM algorithm, no search.
    Default,
}

impl ConvAlgoSearch {
    pub const ALL: [ConvAlgoSearch; 3] = [
        ConvAlgoSearch::Exhaustive,
        ConvAlgoSearch::Heuristic,
        ConvAlgoSearch::Default,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ConvAlgoSearch::Exhaustive => "exhaustive",
            ConvAlgoSearch::Heuristic => "heuristic",
            ConvAlgoSearch::Default => "default",
        }
    }
}

/// How the CUDA memory arena grows (`arena_extend_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArenaExtend {
    #[default]
    NextPowerOfTwo,
    SameAsRequested,
}

impl ArenaExtend {
    pub const ALL: [ArenaExtend; 2] = [ArenaExtend::NextPowerOfTwo, ArenaExtend::SameAsRequested];
    pub fn name(self) -> &'static str {
        match self {
            ArenaExtend::NextPowerOfTwo => "next_power_of_two",
            ArenaExtend::SameAsRequested => "same_as_requested",
        }
    }
}

/// What runs the models inside a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// ONNX Runtime on the `.onnx` file, in the Rust worker (the default).
    Ort,
    /// The original PyTorch module, in a Python worker (`harness/python/bench_worker.py`).
    Torch,
    /// tract, a pure-Rust ONNX runtime.
    Tract,
}

impl Runtime {
    pub const ALL: [Runtime; 3] = [Runtime::Ort, Runtime::Torch, Runtime::Tract];
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Ort => "ort",
            Runtime::Torch => "torch",
            Runtime::Tract => "tract",
        }
    }

    /// Why this build of bench cannot run `self`, and how to fix it; `None` when it can. Only tract
    /// can be missing: it is the cargo feature `tract`.
    pub fn missing_in_this_build(self) -> Option<(&'static str, &'static str)> {
        match self {
            Runtime::Ort | Runtime::Torch => None,
            Runtime::Tract => (!cfg!(feature = "tract")).then_some((
                "this build of bench has no tract runtime (it is the cargo feature `tract`, off by default)",
                "rebuild with `cargo build --release --features tract` (`scripts/run.sh --tract` does it), \
                 or remove \"tract\" from `sweep.runtime`",
            )),
        }
    }
}

/// How the torch runtime builds a model: the PyTorch module and where its weights come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TorchSpec {
    /// `package.module:Attr`: a module class (or any callable returning an `nn.Module`).
    pub module: String,
    /// A `state_dict` saved with `torch.save`, loaded into the module.
    pub weights: Option<PathBuf>,
    /// Or: build with this seed (`Attr.make(seed)` when it has one, else `torch.manual_seed`).
    pub init_seed: Option<u64>,
    /// Folders put in front of Python's `sys.path` (absolute).
    pub python_path: Vec<PathBuf>,
}

/// Tolerances of `bench parity`: an output matches when `|x - torch| <= atol + rtol * |torch|`
/// element by element.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            atol: 1e-4,
            rtol: 1e-3,
        }
    }
}

/// The default tolerance of the expected-output check: float32 round-off across kernels and
/// thread counts, well below any real error.
pub const CHECK_TOLERANCE: Tolerance = Tolerance {
    atol: 1e-5,
    rtol: 1e-3,
};

/// A phase's length: wall time or a number of completed requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    Duration(#[serde(with = "duration_secs")] Duration),
    Requests(u64),
}

mod duration_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// One input of a model, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<i64>,
    pub generator: Generator,
    pub seed: u64,
}

/// Where a model's outputs come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelSource {
    /// An ONNX file, run by ONNX Runtime in the worker.
    Onnx(PathBuf),
    /// No model at all: the worker waits a drawn service time and answers with no outputs.
    Synthetic(SyntheticSpec),
}

/// How long a synthetic model takes per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceDistribution {
    Fixed,
    Exponential,
}

/// How a synthetic model passes its service time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitMode {
    /// Busy-wait on the clock: occupies a CPU like real inference, and is precise.
    Spin,
    /// Sleep: frees the CPU; precise only to the scheduler's wake-up latency.
    Sleep,
}

/// A synthetic model: a known service-time distribution instead of an ONNX file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SyntheticSpec {
    pub distribution: ServiceDistribution,
    pub mean_ns: u64,
    /// Added per request of a run: a run of `b` requests takes `mean + per_sample × b`. A model
    /// with it takes one input, `x` (float32, `[batch]`), whose length is the run's batch.
    pub per_sample_ns: u64,
    pub wait: WaitMode,
    /// One pause of `pause_ns`, taken `after_ns` after the worker's first request, outside any
    /// measured compute time (a stand-in for a stop-the-world hiccup).
    pub stall: Option<Stall>,
    /// Stop answering for good this long after the worker's first request.
    pub hang_after_ns: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall {
    pub after_ns: u64,
    pub pause_ns: u64,
}

/// One model of the scenario.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub name: String,
    pub source: ModelSource,
    pub inputs: Vec<InputSpec>,
    pub outputs: Vec<IoInfo>,
    /// `samples[i][j]` is sample `i` of input `j` (one empty sample for a synthetic model).
    pub samples: Vec<Vec<TensorData>>,
    /// The PyTorch module for the torch runtime (`module`, `weights` or `init_seed`).
    pub torch: Option<TorchSpec>,
    /// `bench parity`'s tolerance for this model's outputs.
    pub parity: Tolerance,
    /// Expected outputs from the model's test data: `expected[i]` lists (output index, tensor) for
    /// sample `i`; empty when there is nothing to check.
    pub expected: Vec<Vec<(usize, TensorData)>>,
    /// The tolerance of the expected-output check (`[model.check]`).
    pub check: Tolerance,
    /// Where the `batch` axis binds the model's batch dim; `None` without the axis.
    pub batch: Option<batch::BatchBinding>,
}

impl ModelSpec {
    /// The batch axis of each input that has one, as `(input, axis)`: where dynamic batching
    /// joins requests.
    pub fn batch_axes(&self) -> Vec<(u32, u32)> {
        self.batch.as_ref().map_or_else(Vec::new, |b| {
            b.at.iter().map(|&(i, a)| (i as u32, a as u32)).collect()
        })
    }

    /// The bytes of one sample with the batch dim bound to `batch` (`None` when too large to
    /// address).
    pub fn sample_bytes_at(&self, batch: usize) -> Option<usize> {
        let mut shapes: Vec<Vec<i64>> = self.inputs.iter().map(|i| i.shape.clone()).collect();
        if let Some(b) = &self.batch {
            b.apply(&mut shapes, batch);
        }
        self.inputs
            .iter()
            .zip(&shapes)
            .try_fold(0usize, |acc, (i, s)| {
                TensorData::checked_numel(s)?
                    .checked_mul(i.dtype.size())?
                    .checked_add(acc)
            })
    }

    /// This model with its batch dim bound to `batch` and its samples generated at that shape
    /// (the same seeds, so the same values where the shapes agree); itself when it has no batch
    /// binding or is at that batch already.
    pub fn at_batch(&self, batch: usize) -> anyhow::Result<ModelSpec> {
        let Some(binding) = &self.batch else {
            return Ok(self.clone());
        };
        let mut shapes: Vec<Vec<i64>> = self.inputs.iter().map(|i| i.shape.clone()).collect();
        binding.apply(&mut shapes, batch);
        if self.inputs.iter().zip(&shapes).all(|(i, s)| i.shape == *s) {
            return Ok(self.clone());
        }
        let mut m = ModelSpec {
            samples: Vec::new(),
            ..self.clone()
        };
        for (i, s) in m.inputs.iter_mut().zip(shapes) {
            i.shape = s;
        }
        m.samples = generate_samples(&m.inputs, self.samples.len()).map_err(|(i, e)| {
            e.context(format!(
                "model `{}`, input `{}` at batch {batch}",
                m.name, m.inputs[i].name
            ))
        })?;
        Ok(m)
    }

    /// Whether any sample has expected outputs to check against.
    pub fn has_expected(&self) -> bool {
        self.expected.iter().any(|e| !e.is_empty())
    }
}

impl ModelSpec {
    /// The ONNX file, or `synthetic` for a synthetic model.
    pub fn describe_source(&self) -> String {
        match &self.source {
            ModelSource::Onnx(p) => p.display().to_string(),
            ModelSource::Synthetic(s) => format!(
                "synthetic {:?} service, mean {} µs, {:?}",
                s.distribution,
                s.mean_ns / 1000,
                s.wait
            )
            .to_lowercase(),
        }
    }
}

/// What one request asks for: one model, or every member of an ensemble group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Model(usize),
    Group(usize),
}

/// An ensemble: a request to the group fans out to every member; it completes with the last.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    /// Model indices.
    pub members: Vec<usize>,
}

/// When a measurement ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StopRule {
    /// A duration or a request count.
    Fixed(Limit),
    /// Windows of `window`; stop once throughput and p99 of the last 3 windows agree within
    /// `tolerance_pct` percent; give up (invalid) after `max_windows`.
    Stable {
        window: Duration,
        tolerance_pct: f64,
        max_windows: usize,
    },
}

/// What load to apply at every point, and how to measure it.
#[derive(Debug, Clone)]
pub struct Workload {
    /// What requests ask for, with relative weights (all finite, >= 0, summing to more than 0).
    pub mix: Vec<(Target, f64)>,
    pub groups: Vec<Group>,
    pub warmup: Limit,
    pub stop: StopRule,
    /// A point with fewer measured requests is invalid.
    pub min_requests: u64,
    /// Measured repetitions per point.
    pub trials: usize,
    /// A request without an answer by then fails as `timeout`.
    pub request_timeout: Duration,
    /// After this many timeouts in a row, the worker is killed and replaced.
    pub replace_after_timeouts: u32,
    /// With several trials: run the sweep's points' trials in rounds (every point's trial 1, then
    /// every point's trial 2, ...), each on a fresh pool after its own warm-up, so drift over the
    /// run hits every point alike. Otherwise a point's trials run back to back on one pool.
    pub interleave: bool,
    /// A pause before each trial after the first (lets a machine's clocks and caches settle).
    pub cooldown: Duration,
}

/// Closed or open loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadKind {
    Closed,
    Open,
}

/// How an open loop spaces its requests.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival {
    /// Exponential inter-arrival times (a Poisson process) at the point's rate.
    Poisson,
    /// Equal inter-arrival times at the point's rate.
    Constant,
    /// Inter-arrival times from a file, in nanoseconds, cycled.
    Trace(Vec<u64>),
}

impl Arrival {
    pub fn name(&self) -> &'static str {
        match self {
            Arrival::Poisson => "poisson",
            Arrival::Constant => "constant",
            Arrival::Trace(_) => "trace",
        }
    }
}

/// The `[load]` settings that are not sweep axes.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    pub kind: LoadKind,
    pub arrival: Arrival,
    /// Open loop: more requests in flight than this stops the measurement (the point is invalid).
    pub max_in_flight: usize,
    /// Open loop: how long before each send the generator busy-waits instead of sleeping.
    pub spin: Duration,
}

impl LoadSpec {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            LoadKind::Closed => "closed",
            LoadKind::Open => "open",
        }
    }
}

/// The load at one sweep point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadPoint {
    /// Requests in flight.
    Closed { concurrency: usize },
    /// Target requests per second (ignored by a trace, which has its own times).
    Open { rate: f64 },
}

impl LoadPoint {
    pub fn concurrency(&self) -> Option<usize> {
        match self {
            LoadPoint::Closed { concurrency } => Some(*concurrency),
            LoadPoint::Open { .. } => None,
        }
    }
    pub fn rate(&self) -> Option<f64> {
        match self {
            LoadPoint::Open { rate } => Some(*rate),
            LoadPoint::Closed { .. } => None,
        }
    }
    /// Short form used in point ids: `c4`, `r500`.
    pub fn id(&self) -> String {
        match self {
            LoadPoint::Closed { concurrency } => format!("c{concurrency}"),
            LoadPoint::Open { rate } => format!("r{rate}"),
        }
    }
}

/// A checked scenario: only this reaches the worker pool.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub file: PathBuf,
    /// SHA-256 of the scenario file's bytes, hex.
    pub hash: String,
    pub seed: u64,
    pub models: Vec<ModelSpec>,
    pub workload: Workload,
    pub load: LoadSpec,
    pub slo: Vec<slo::Constraint>,
    pub on_demand: OnDemandCaps,
    /// `[on_demand] parallel_loads`: how many workers may load a model at the same time (1: one
    /// at a time, the default).
    pub parallel_loads: usize,
    /// `[replicas]`: workers per model, by model index, for `placement = "replicas"` (empty
    /// without the table).
    pub replicas: Vec<usize>,
    pub cuda: CudaSpec,
    pub transfer: TransferSpec,
    pub axes: Axes,
    pub points: Vec<Point>,
    /// The points past a limit on what one point may start ([`limits`]), one problem per limit:
    /// a command refuses to run them unless forced ([`Scenario::check_limits`]).
    pub over_limit: Vec<ScenarioError>,
}

/// `[transfer]`: settings of the transfer modes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransferSpec {
    /// The most memory an `shm` point's arena may come to hold, MiB (see [`shm`]).
    pub shm_budget_mib: u64,
    /// When the `spin` channel spins.
    pub spin: SpinWhen,
    /// The longest a side of the `spin` channel spins before it parks.
    pub spin_max: std::time::Duration,
}

/// The `spin` channel's longest spin by default: longer than a small model's run (so the parent
/// sees the reply of a 200 µs model without a wake-up), short enough that a missed wait costs
/// little.
pub const DEFAULT_SPIN_MAX_US: u64 = 1000;
/// The longest spin a scenario may ask for.
pub const MAX_SPIN_MAX_US: u64 = 100_000;

impl TransferSpec {
    /// How long the `spin` channel's sides may spin at `point`: zero (park at once) for the
    /// `socket` channel, and for `spin = "auto"` when the point's busy threads outnumber `cpus`.
    pub fn spin_max_at(&self, point: &Point, cpus: usize) -> std::time::Duration {
        if point.channel != Channel::Spin {
            return std::time::Duration::ZERO;
        }
        let busy = 1 + point.workers * point.worker_concurrency * point.intra_threads;
        match self.spin {
            SpinWhen::Auto if busy > cpus => std::time::Duration::ZERO,
            _ => self.spin_max,
        }
    }
}

impl Scenario {
    /// This scenario with every model at the point's batch size (see [`ModelSpec::at_batch`]);
    /// `None` when the point has no batch (the scenario runs as it is).
    pub fn at_batch(&self, batch: Option<usize>) -> anyhow::Result<Option<Scenario>> {
        let Some(b) = batch else { return Ok(None) };
        let models = self
            .models
            .iter()
            .map(|m| m.at_batch(b))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Some(Scenario {
            models,
            ..self.clone()
        }))
    }

    /// Whether some model is an ONNX file (not synthetic).
    pub fn has_onnx(&self) -> bool {
        self.models
            .iter()
            .any(|m| matches!(m.source, ModelSource::Onnx(_)))
    }

    /// `Err` with the problems of [`Scenario::over_limit`] unless `force` (`--force`) or there are
    /// none.
    pub fn check_limits(&self, force: bool) -> Result<(), ScenarioErrors> {
        if force || self.over_limit.is_empty() {
            Ok(())
        } else {
            Err(ScenarioErrors(self.over_limit.clone()))
        }
    }

    /// This scenario with the models marked in `drop` left out of the traffic: their weight in the
    /// mix, and that of every group with one of them as a member, becomes 0. Model indices do not
    /// change. `None` when nothing would be left to send.
    pub fn without(&self, drop: &[bool]) -> Option<Scenario> {
        let mut s = self.clone();
        for (target, weight) in &mut s.workload.mix {
            let gone = match *target {
                Target::Model(m) => drop[m],
                Target::Group(g) => s.workload.groups[g].members.iter().any(|&m| drop[m]),
            };
            if gone {
                *weight = 0.0;
            }
        }
        s.workload.mix.iter().any(|&(_, w)| w > 0.0).then_some(s)
    }

    /// The name of a mix target: a model or a group.
    pub fn target_name(&self, t: Target) -> &str {
        match t {
            Target::Model(m) => &self.models[m].name,
            Target::Group(g) => &self.workload.groups[g].name,
        }
    }
}

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  fix: {}", self.hint)?;
        }
        Ok(())
    }
}

/// All problems found in a scenario file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "the scenario has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n{e}")?;
        }
        Ok(())
    }
}

/// Collects errors with their lines while resolving.
struct Errors<'a> {
    file: &'a Path,
    map: &'a SourceMap,
    list: Vec<ScenarioError>,
}

impl Errors<'_> {
    fn push(&mut self, key: &KeyPath, message: impl Into<String>, hint: impl Into<String>) {
        self.list.push(ScenarioError {
            file: self.file.to_path_buf(),
            line: self.map.line_of(key),
            key: key.to_string(),
            message: message.into(),
            hint: hint.into(),
        });
    }
}

/// Reads, parses and resolves a scenario file.
pub fn load(file: &Path) -> Result<Scenario, ScenarioErrors> {
    let one = |line, message: String, hint: &str| {
        ScenarioErrors(vec![ScenarioError {
            file: file.to_path_buf(),
            line,
            key: String::new(),
            message,
            hint: hint.to_string(),
        }])
    };
    let bytes = std::fs::read(file).map_err(|e| {
        one(
            None,
            format!("cannot read the scenario file: {e}"),
            "check the path given to --scenario",
        )
    })?;
    load_bytes(&bytes, file)
}

/// The dotted dim name written unquoted in `dims` (`p2o.DynamicDimension.0 = 1`), which TOML read
/// as a table `p2o` and serde then refused as "invalid type: map".
fn unquoted_dotted_dim(
    text: &str,
    line: Option<usize>,
    key: &str,
    message: &str,
) -> Option<String> {
    let (_, first) = key.split_once(".dims.")?;
    if !message.starts_with("invalid type: map") {
        return None;
    }
    let line = text.lines().nth(line?.checked_sub(1)?)?;
    let at = line.find(&format!("{first}."))?;
    let name: String = line[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '=' && *c != ',' && *c != '}')
        .collect();
    Some(name)
}

/// Parses and resolves scenario bytes as if read from `file` (paths resolve against its folder).
pub fn load_bytes(bytes: &[u8], file: &Path) -> Result<Scenario, ScenarioErrors> {
    let one = |line, message: String, hint: &str| {
        ScenarioErrors(vec![ScenarioError {
            file: file.to_path_buf(),
            line,
            key: String::new(),
            message,
            hint: hint.to_string(),
        }])
    };
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
        one(
            None,
            "the file is not UTF-8 text".into(),
            "save it as UTF-8 TOML",
        )
    })?;
    let map = SourceMap::new(&text);
    let parsed = parse::parse(&text, &map);
    let mut list: Vec<ScenarioError> = parsed
        .problems
        .iter()
        .map(|p| key_problem(p, &text, &map, file))
        .collect();
    let scopes = parsed.scopes();
    let scenario = parsed.raw.and_then(|raw| {
        let hash = hex(&sha2::Sha256::digest(bytes));
        let mut errors = Errors {
            file,
            map: &map,
            list: Vec::new(),
        };
        let scenario = resolve(raw, file, hash, &mut errors);
        // What is left of a part with a key problem is not checked again: a removed key would
        // come back as a derived problem.
        list.extend(
            errors
                .list
                .into_iter()
                .filter(|e| !parse::in_scopes(&e.key, &scopes)),
        );
        scenario
    });
    match scenario {
        Some(s) if list.is_empty() => Ok(s),
        _ => {
            // In file order; problems without a line (about the whole file) last.
            list.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
            Err(ScenarioErrors(list))
        }
    }
}

/// A problem of the file's keys or types as the user reads it: file, line, key, what is wrong and
/// what to do.
fn key_problem(p: &parse::Problem, text: &str, map: &SourceMap, file: &Path) -> ScenarioError {
    let line = p
        .key
        .as_ref()
        .and_then(|k| map.line_of(k))
        .or_else(|| p.offset.map(|o| map.line_of_offset(o)));
    let key = p.key.as_ref().map(|k| k.to_string()).unwrap_or_default();
    let hint = if let Some(u) = &p.unknown {
        let table = match p.key.as_ref().map(|k| &k.0[..k.0.len().saturating_sub(1)]) {
            Some(parent) if !parent.is_empty() => {
                format!("the keys of `{}` are", KeyPath(parent.to_vec()))
            }
            _ => "the top-level keys are".to_string(),
        };
        let known = if u.known.is_empty() {
            format!("{table} none")
        } else {
            format!("{table}: {}", u.known.join(", "))
        };
        match &u.nearest {
            Some(n) => format!("rename it `{n}`; {known}"),
            None => {
                format!("remove it or correct its name; {known} (see docs/reference/scenario.md)")
            }
        }
    } else if let Some(dotted) = unquoted_dotted_dim(text, line, &key, &p.message) {
        format!(
            "a dim name with dots must be quoted, or TOML reads the dots as nested tables: \
             `dims = {{ \"{dotted}\" = 1 }}`"
        )
    } else if key.is_empty() {
        "see docs/reference/scenario.md for the keys and their types".into()
    } else {
        format!("see `{key}` in docs/reference/scenario.md for its type")
    };
    ScenarioError {
        file: file.to_path_buf(),
        line,
        key,
        message: p.message.clone(),
        hint,
    }
}

/// `[transfer]`: `shm_budget_mib` from 1 MiB to [`shm::MAX_BUDGET_MIB`], default
/// [`shm::DEFAULT_BUDGET_MIB`].
fn resolve_transfer(raw: raw::RawTransfer, key: &KeyPath, e: &mut Errors) -> TransferSpec {
    let shm_budget_mib = match raw.shm_budget_mib {
        None => shm::DEFAULT_BUDGET_MIB,
        Some(n) if (1..=shm::MAX_BUDGET_MIB as i64).contains(&n) => n as u64,
        Some(n) => {
            e.push(
                &key.key("shm_budget_mib"),
                format!("must be from 1 to {}, got {n}", shm::MAX_BUDGET_MIB),
                format!(
                    "set `shm_budget_mib = {}` (MiB the shm arena may come to hold)",
                    shm::DEFAULT_BUDGET_MIB
                ),
            );
            shm::DEFAULT_BUDGET_MIB
        }
    };
    let spin = match raw.spin.as_deref() {
        None | Some("auto") => SpinWhen::Auto,
        Some("always") => SpinWhen::Always,
        Some(other) => {
            e.push(
                &key.key("spin"),
                format!("unknown value `{other}`"),
                "use `auto` (spin only while the point's threads fit the CPUs) or `always`",
            );
            SpinWhen::Auto
        }
    };
    let spin_max_us = match raw.spin_max_us {
        None => DEFAULT_SPIN_MAX_US,
        Some(n) if (0..=MAX_SPIN_MAX_US as i64).contains(&n) => n as u64,
        Some(n) => {
            e.push(
                &key.key("spin_max_us"),
                format!("must be from 0 to {MAX_SPIN_MAX_US}, got {n}"),
                format!("set `spin_max_us = {DEFAULT_SPIN_MAX_US}` (0 never spins)"),
            );
            DEFAULT_SPIN_MAX_US
        }
    };
    TransferSpec {
        shm_budget_mib,
        spin,
        spin_max: std::time::Duration::from_micros(spin_max_us),
    }
}

/// Why `worker_concurrency` above 1 cannot combine with the other axes: each reason names the axis
/// value that runs one request per worker at a time.
fn worker_concurrency_conflicts(axes: &Axes, key: &KeyPath, e: &mut Errors) {
    if !axes.worker_concurrency.iter().any(|&k| k > 1) {
        return;
    }
    let mut why = Vec::new();
    for r in &axes.runtime {
        match r {
            Runtime::Ort => {}
            Runtime::Tract => why.push(
                "runtime `tract` runs one request per worker at a time (its plans are not shared \
                 between threads here)",
            ),
            Runtime::Torch => why.push(
                "runtime `torch` runs one request per worker at a time (its Python worker has one \
                 thread)",
            ),
        }
    }
    if axes.transfer.contains(&Transfer::Device) {
        why.push(
            "transfer `device` runs through one IoBinding per sample, which two runs at once \
             cannot share",
        );
    }
    if axes.placement.contains(&Placement::OnDemand) {
        why.push(
            "placement `on-demand` loads and evicts models while it serves, one request at a time",
        );
    }
    for w in why {
        e.push(
            key,
            format!("worker_concurrency above 1 cannot run here: {w}"),
            "sweep that value in a separate scenario, or keep `worker_concurrency = 1`",
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A seed for one input, derived from the scenario seed and the model and input names, so adding a
/// model does not change the data of the others.
pub fn input_seed(seed: u64, model: &str, input: &str) -> u64 {
    let mut h = sha2::Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(model.as_bytes());
    h.update([0]);
    h.update(input.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

fn resolve(raw: RawScenario, file: &Path, hash: String, e: &mut Errors) -> Option<Scenario> {
    let root = KeyPath::default();
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = raw.name.unwrap_or_else(|| {
        file.file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
    });
    let seed = raw.seed.unwrap_or(0);
    let samples = match raw.samples {
        None => 8,
        Some(n) if n >= 1 => n as usize,
        Some(n) => {
            e.push(
                &root.key("samples"),
                format!("must be at least 1, got {n}"),
                "set `samples = 8` (distinct input samples generated per model)",
            );
            1
        }
    };

    if raw.model.is_empty() {
        e.push(
            &root.key("model"),
            "the scenario has no models",
            "add a [[model]] table with `name` and `path` (an .onnx file)",
        );
    }
    let declared: Vec<String> = raw.model.iter().filter_map(|m| m.name.clone()).collect();
    let mut models = Vec::new();
    let mut names = HashSet::new();
    let mut torch_keys = Vec::new();
    // The models are resolved at the first batch size; each point rebinds its own. Dynamic
    // batching needs each model's batch dim found, but bound to nothing.
    let first_batch = raw
        .sweep
        .as_ref()
        .and_then(|s| s.batch.as_ref())
        .and_then(|b| b.to_vec().into_iter().find(|&v| v >= 1))
        .map(|v| v as usize);
    let batching_axis = batching::resolve(raw.batching.as_ref(), e);
    let batch_use = match first_batch {
        Some(b) => model::BatchUse::Static(b),
        None if batching::batches(&batching_axis) => model::BatchUse::Dynamic,
        None => model::BatchUse::Off,
    };
    for (i, mut m) in raw.model.into_iter().enumerate() {
        let key = root.key("model").index(i);
        let keys = torch::ModelKeys::take(&mut m, key.clone());
        if let Some(spec) = model::resolve_model(m, &key, dir, seed, samples, batch_use, e) {
            torch_keys.push(keys);
            if !names.insert(spec.name.clone()) {
                e.push(
                    &key.key("name"),
                    format!("model name `{}` is used twice", spec.name),
                    "give each [[model]] a unique name",
                );
            }
            models.push(spec);
        }
    }

    let workload =
        workload::resolve_workload(raw.workload.unwrap_or_default(), &models, &declared, e);
    let max_in_flight_set = raw.load.as_ref().is_some_and(|l| l.max_in_flight.is_some());
    let (load, load_points) = workload::resolve_load(raw.load.unwrap_or_default(), dir, e);
    let transfer = resolve_transfer(raw.transfer.unwrap_or_default(), &root.key("transfer"), e);
    let slo = slo::resolve(raw.slo.as_ref(), &root.key("slo"), e);
    let axes = axes::resolve(
        axes::Sources {
            sweep: raw.sweep.as_ref(),
            load: load_points,
            batching: batching_axis,
        },
        e,
    );
    batching::refuse_combinations(
        &axes.batching,
        first_batch.is_some(),
        &axes.transfer,
        &axes.runtime,
        e,
    );
    torch::resolve(
        &mut models,
        torch_keys,
        raw.torch,
        raw.parity,
        &axes.runtime,
        dir,
        e,
    );
    let (on_demand, parallel_loads) = workload::resolve_on_demand(raw.on_demand, &axes, e);
    let replicas = workload::resolve_replicas(raw.replicas, &models, &axes, e);
    let replica_workers: usize = replicas.iter().sum();
    if axes.placement.contains(&Placement::Replicas)
        && !replicas.is_empty()
        && replicas.iter().all(|&n| n > 0)
        && !axes.workers.contains(&replica_workers)
    {
        e.push(
            &root.key("sweep").key("workers"),
            format!(
                "`replicas` runs one worker per replica ({}), so it needs `workers` to include \
                 {replica_workers}",
                models
                    .iter()
                    .zip(&replicas)
                    .map(|(m, n)| format!("{} {n}", m.name))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
            format!(
                "add {replica_workers} to `sweep.workers` (other counts run the other placements \
                 only), or change `[replicas]`"
            ),
        );
    }
    let cuda = workload::resolve_cuda(raw.cuda, &axes, e);
    let models_len = models.len();
    if axes.placement.contains(&Placement::Dedicated)
        && !axes.workers.contains(&models_len)
        && models_len > 0
    {
        e.push(
            &root.key("sweep").key("placement"),
            format!("`dedicated` runs one worker per model, so it needs `workers` to include {models_len}"),
            format!("add {models_len} to `sweep.workers`, or remove `dedicated`"),
        );
    }
    worker_concurrency_conflicts(&axes, &root.key("sweep").key("worker_concurrency"), e);
    if axes.channel.contains(&Channel::Spin) && axes.runtime.contains(&Runtime::Torch) {
        e.push(
            &root.key("sweep").key("channel"),
            "channel `spin` with runtime `torch`: the Python worker speaks only the socket channel",
            "sweep `channel` over the ort and tract runtimes only, or drop `spin`",
        );
    }
    let points = match expand(&axes) {
        Ok(p) => p,
        Err(n) => {
            e.push(
                &root.key("sweep"),
                format!(
                    "the sweep expands to {n} points, more than the limit of {}",
                    sweep::MAX_POINTS
                ),
                "split the sweep into several scenarios or shorten the axis lists",
            );
            Vec::new()
        }
    };
    let points: Vec<Point> = {
        // Dedicated placement runs one worker per model: its points with another count are not
        // run (validate lists what was dropped).
        let m = models_len;
        points
            .into_iter()
            .filter(|p| p.placement != Placement::Dedicated || p.workers == m)
            // So does `replicas`, with the sum of `[replicas]`.
            .filter(|p| p.placement != Placement::Replicas || p.workers == replica_workers)
            // GPU-resident inputs exist only on the GPU.
            .filter(|p| p.transfer != Transfer::Device || p.provider == Provider::Cuda)
            .enumerate()
            .map(|(i, mut p)| {
                p.index = i;
                p
            })
            .collect()
    };
    let batch_key = root.key("sweep").key("batch");
    for &b in axes.batch.iter().flatten() {
        for m in &models {
            let bytes = m.sample_bytes_at(b);
            let over = match bytes {
                None => true,
                Some(n) => n > MAX_SAMPLE_BYTES || n.saturating_mul(samples) > MAX_SAMPLES_BYTES,
            };
            if over {
                e.push(
                    &batch_key,
                    format!(
                        "at batch {b}, the samples of model `{}` need more than the limits of \
                         {} MiB per sample and {} MiB in all",
                        m.name,
                        MAX_SAMPLE_BYTES >> 20,
                        MAX_SAMPLES_BYTES >> 20
                    ),
                    "lower the largest `batch` value, or `samples`",
                );
            }
        }
    }
    // The shm arena is sized from the samples, so each batch size is checked with its own.
    for &b in &axes.batch {
        let at: Vec<Point> = points.iter().filter(|p| p.batch == b).cloned().collect();
        if !at.iter().any(|p| p.transfer == Transfer::Shm) {
            continue;
        }
        let rebound;
        let ms = match b {
            None => &models,
            // Samples too large were refused above; nothing to size then.
            Some(_) if !e.list.is_empty() => continue,
            Some(b) => match models
                .iter()
                .map(|m| m.at_batch(b))
                .collect::<anyhow::Result<Vec<_>>>()
            {
                Ok(ms) => {
                    rebound = ms;
                    &rebound
                }
                Err(err) => {
                    e.push(&batch_key, format!("{err:#}"), "fix the input's generator");
                    continue;
                }
            },
        };
        for p in shm::check(
            ms,
            &workload,
            &load,
            &at,
            transfer.shm_budget_mib,
            max_in_flight_set,
        ) {
            e.push(&p.key, p.message, p.hint);
        }
    }
    let over_limit = limits::check(&points, limits::usable_cpus())
        .into_iter()
        .map(|o| {
            let key = root.key("sweep").key(o.key);
            ScenarioError {
                file: file.to_path_buf(),
                line: e.map.line_of(&key),
                key: key.to_string(),
                message: o.message,
                hint: o.hint,
            }
        })
        .collect();
    Some(Scenario {
        over_limit,
        name,
        file: file.to_path_buf(),
        hash,
        seed,
        models,
        workload,
        load,
        slo,
        on_demand,
        parallel_loads,
        replicas,
        cuda,
        transfer,
        points,
        axes,
    })
}

#[cfg(test)]
mod tests;
