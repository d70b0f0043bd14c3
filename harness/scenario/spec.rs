//! The resolved scenario's parts, with no optional keys left: each model ([`ModelSpec`], its
//! inputs and where its outputs come from), the workload ([`Workload`]: the mix, warm-up, stop
//! rule and trials), the load ([`LoadSpec`], [`LoadPoint`]) and the settings tables of the
//! placements and providers ([`OnDemandCaps`], [`CudaSpec`]).
//!
//! These are what the rest of the crate reads; only the resolver builds them. [`super::Scenario`]
//! gathers them with the sweep's axes and points. The methods that make samples
//! (`ModelSpec::at_batch`) live with the sample generator in `samples.rs`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::batch;
use super::vocabulary::{
    ArenaExtend, Arrival, ConvAlgoSearch, LoadKind, ServiceDistribution, WaitMode,
};
use crate::model::onnx::IoInfo;
use crate::model::tensor::{DType, Generator, TensorData};

/// Caps of the on-demand placement, per worker.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OnDemandCaps {
    /// Models held at once; loading one more evicts the least recently used.
    pub(crate) max_models: Option<usize>,
    /// Estimated memory of the models held (each model's resident-memory growth when it loaded).
    pub(crate) memory_budget_bytes: Option<u64>,
}

/// The `[cuda]` settings, applied to every CUDA point.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CudaSpec {
    /// Devices for the workers, by CUDA device id; empty means round-robin over every visible device.
    pub(crate) gpus: Vec<u32>,
    pub(crate) conv_algo_search: ConvAlgoSearch,
    pub(crate) arena_extend_strategy: ArenaExtend,
    /// The CUDA memory arena's limit per worker, in bytes.
    pub(crate) gpu_mem_limit_bytes: Option<u64>,
}

impl CudaSpec {
    /// The device of worker `w`, given how many devices are visible (used for round-robin).
    pub(crate) fn device_of(&self, w: usize, visible: usize) -> u32 {
        if self.gpus.is_empty() {
            (w % visible.max(1)) as u32
        } else {
            self.gpus[w % self.gpus.len()]
        }
    }
}

/// How the torch runtime builds a model: the PyTorch module and where its weights come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TorchSpec {
    /// `package.module:Attr`: a module class (or any callable returning an `nn.Module`).
    pub(crate) module: String,
    /// A `state_dict` saved with `torch.save`, loaded into the module.
    pub(crate) weights: Option<PathBuf>,
    /// Or: build with this seed (`Attr.make(seed)` when it has one, else `torch.manual_seed`).
    pub(crate) init_seed: Option<u64>,
    /// Folders put in front of Python's `sys.path` (absolute).
    pub(crate) python_path: Vec<PathBuf>,
}

/// Tolerances of `bench parity`: an output matches when `|x - torch| <= atol + rtol * |torch|`
/// element by element.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    pub(crate) atol: f64,
    pub(crate) rtol: f64,
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
    pub(crate) fn serialize<S: serde::Serializer>(
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

/// A synthetic model: a known service-time distribution instead of an ONNX file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SyntheticSpec {
    pub(crate) distribution: ServiceDistribution,
    pub(crate) mean_ns: u64,
    /// Added per request of a run: a run of `b` requests takes `mean + per_sample × b`. A model
    /// with it takes one input, `x` (float32, `[batch]`), whose length is the run's batch.
    pub(crate) per_sample_ns: u64,
    pub(crate) wait: WaitMode,
    /// One pause of `pause_ns`, taken `after_ns` after the worker's first request, outside any
    /// measured compute time (a stand-in for a stop-the-world hiccup).
    pub(crate) stall: Option<Stall>,
    /// Stop answering for good this long after the worker's first request.
    pub(crate) hang_after_ns: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall {
    pub(crate) after_ns: u64,
    pub(crate) pause_ns: u64,
}

/// One model of the scenario.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub name: String,
    pub source: ModelSource,
    pub inputs: Vec<InputSpec>,
    pub(crate) outputs: Vec<IoInfo>,
    /// The inputs as the ONNX file declares them, in its order (their dims say which named dims
    /// the shapes of `inputs` bind); empty for a synthetic model.
    pub(crate) declared_inputs: Vec<IoInfo>,
    /// `samples[i][j]` is sample `i` of input `j` (one empty sample for a synthetic model).
    pub samples: Vec<Vec<TensorData>>,
    /// The PyTorch module for the torch runtime (`module`, `weights` or `init_seed`).
    pub(crate) torch: Option<TorchSpec>,
    /// `bench parity`'s tolerance for this model's outputs.
    pub(crate) parity: Tolerance,
    /// Expected outputs from the model's test data: `expected[i]` lists (output index, tensor) for
    /// sample `i`; empty when there is nothing to check.
    pub(crate) expected: Vec<Vec<(usize, TensorData)>>,
    /// The tolerance of the expected-output check (`[model.check]`).
    pub(crate) check: Tolerance,
    /// Where the `batch` axis binds the model's batch dim; `None` without the axis.
    pub(crate) batch: Option<batch::BatchBinding>,
}

impl ModelSpec {
    /// The batch axis of each input that has one, as `(input, axis)`: where dynamic batching
    /// joins requests.
    pub(crate) fn batch_axes(&self) -> Vec<(u32, u32)> {
        self.batch.as_ref().map_or_else(Vec::new, |b| {
            b.at.iter().map(|&(i, a)| (i as u32, a as u32)).collect()
        })
    }

    /// The bytes of one sample with the batch dim bound to `batch` (`None` when too large to
    /// address).
    pub(crate) fn sample_bytes_at(&self, batch: usize) -> Option<usize> {
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

    /// Whether any sample has expected outputs to check against.
    #[cfg(test)]
    pub(crate) fn has_expected(&self) -> bool {
        self.expected.iter().any(|e| !e.is_empty())
    }
}

impl ModelSpec {
    /// The ONNX file, or `synthetic` for a synthetic model.
    pub(crate) fn describe_source(&self) -> String {
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
    pub(crate) name: String,
    /// Model indices.
    pub(crate) members: Vec<usize>,
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

impl StopRule {
    /// `stop = "stable"` with every key at its default: 1 s windows, 10%, at most 20 windows.
    pub(crate) const STABLE: StopRule = StopRule::Stable {
        window: Duration::from_secs(1),
        tolerance_pct: 10.0,
        max_windows: 20,
    };
}

/// What load to apply at every point, and how to measure it.
#[derive(Debug, Clone)]
pub struct Workload {
    /// What requests ask for, with relative weights (all finite, >= 0, summing to more than 0).
    pub(crate) mix: Vec<(Target, f64)>,
    pub(crate) groups: Vec<Group>,
    pub(crate) warmup: Limit,
    pub(crate) stop: StopRule,
    /// `min_requests` as the user set it (file or `--min-requests`); `None`: the default, see
    /// [`Workload::min_requests`].
    pub(crate) min_requests: Option<u64>,
    /// `max_duration`: the longest a duration-based measurement runs on to reach its minimum.
    pub(crate) max_duration: Duration,
    /// Measured repetitions per point.
    pub(crate) trials: usize,
    /// A request without an answer by then fails as `timeout`.
    pub(crate) request_timeout: Duration,
    /// After this many timeouts in a row, the worker is killed and replaced.
    pub(crate) replace_after_timeouts: u32,
    /// With several trials: run the sweep's points' trials in rounds (every point's trial 1, then
    /// every point's trial 2, ...), each on a fresh pool after its own warm-up, so drift over the
    /// run hits every point alike. Otherwise a point's trials run back to back on one pool.
    pub(crate) interleave: bool,
    /// A pause before each trial after the first (lets a machine's clocks and caches settle).
    pub(crate) cooldown: Duration,
}

/// The samples a measurement needs by default: the 99th percentile of fewer than 100 requests is
/// their slowest one, not a percentile.
pub const DEFAULT_MIN_REQUESTS: u64 = 100;

/// The default cap of a duration-based measurement that runs on to reach its minimum.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(60);

impl Workload {
    /// The fewest successful requests a trial of a point needs to be valid, `None` for no minimum.
    ///
    /// With a duration (or the stable rule) it is `min_requests`, 100 by default, and the
    /// measurement runs past its duration to reach it ([`Workload::cap`]). A request count is the
    /// user's own choice of sample size: it is judged on those requests alone, unless
    /// `min_requests` is set too.
    pub(crate) fn min_requests(&self) -> Option<u64> {
        let min = match self.stop {
            StopRule::Fixed(Limit::Requests(_)) => self.min_requests,
            _ => Some(self.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS)),
        };
        min.filter(|&n| n > 0)
    }

    /// The longest one trial of a duration-based measurement may run: `max_duration`, or the
    /// duration itself when that is longer; `None` for the other stop rules.
    pub(crate) fn cap(&self) -> Option<Duration> {
        match self.stop {
            StopRule::Fixed(Limit::Duration(d)) => Some(self.max_duration.max(d)),
            _ => None,
        }
    }
}

/// The `[load]` settings that are not sweep axes.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    pub(crate) kind: LoadKind,
    pub(crate) arrival: Arrival,
    /// Open loop: more requests in flight than this stops the measurement (the point is invalid).
    pub(crate) max_in_flight: usize,
    /// Open loop: how long before each send the generator busy-waits instead of sleeping.
    pub(crate) spin: Duration,
}

impl LoadSpec {
    pub(crate) fn kind_name(&self) -> &'static str {
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
    pub(crate) fn concurrency(&self) -> Option<usize> {
        match self {
            LoadPoint::Closed { concurrency } => Some(*concurrency),
            LoadPoint::Open { .. } => None,
        }
    }
    pub(crate) fn rate(&self) -> Option<f64> {
        match self {
            LoadPoint::Open { rate } => Some(*rate),
            LoadPoint::Closed { .. } => None,
        }
    }
    /// Short form used in point ids: `c4`, `r500`.
    pub(crate) fn id(&self) -> String {
        match self {
            LoadPoint::Closed { concurrency } => format!("c{concurrency}"),
            LoadPoint::Open { rate } => format!("r{rate}"),
        }
    }
}
