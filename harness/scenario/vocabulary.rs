//! The scenario's vocabulary: every closed choice a scenario names (a transfer mode, a channel, a
//! placement, a provider, a runtime, a loop kind, ...) as an enum, with the name the TOML file, the
//! point ids and the CSV columns write for each value.
//!
//! It exists so that a choice is declared in one place that depends on nothing else of the
//! scenario: the readers of the file, the resolved types and the rest of the crate all read these
//! names from here. Adding a value means adding it here (and to its `ALL` list); the compiler then
//! points at every `match` that must learn about it.

use serde::{Deserialize, Serialize};

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
    pub(crate) const ALL: [Transfer; 4] = [
        Transfer::Pipe,
        Transfer::Shm,
        Transfer::Index,
        Transfer::Device,
    ];
    pub(crate) fn name(self) -> &'static str {
        match self {
            Transfer::Pipe => "pipe",
            Transfer::Shm => "shm",
            Transfer::Index => "index",
            Transfer::Device => "device",
        }
    }
    /// Whether input bytes cross to the worker for every request (`per_request`), once to its host
    /// memory (`once`), or once to the GPU (`device`).
    pub(crate) fn staging(self) -> &'static str {
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
    pub(crate) const ALL: [Channel; 2] = [Channel::Socket, Channel::Spin];
    pub(crate) fn name(self) -> &'static str {
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
    pub(crate) fn name(self) -> &'static str {
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
    pub(crate) const ALL: [Placement; 5] = [
        Placement::Replicate,
        Placement::Partition,
        Placement::Dedicated,
        Placement::OnDemand,
        Placement::Replicas,
    ];
    pub(crate) fn name(self) -> &'static str {
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
    pub(crate) fn assign(
        self,
        workers: usize,
        models: usize,
        replicas: &[usize],
    ) -> Vec<Vec<usize>> {
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
    pub(crate) const ALL: [Pin; 2] = [Pin::None, Pin::Cores];
    pub(crate) fn name(self) -> &'static str {
        match self {
            Pin::None => "none",
            Pin::Cores => "cores",
        }
    }
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
    pub(crate) const ALL: [Provider; 2] = [Provider::Cpu, Provider::Cuda];
    pub(crate) fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
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
    pub(crate) const ALL: [ConvAlgoSearch; 3] = [
        ConvAlgoSearch::Exhaustive,
        ConvAlgoSearch::Heuristic,
        ConvAlgoSearch::Default,
    ];
    pub(crate) fn name(self) -> &'static str {
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
    pub(crate) const ALL: [ArenaExtend; 2] =
        [ArenaExtend::NextPowerOfTwo, ArenaExtend::SameAsRequested];
    pub(crate) fn name(self) -> &'static str {
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
    pub(crate) const ALL: [Runtime; 3] = [Runtime::Ort, Runtime::Torch, Runtime::Tract];
    pub(crate) fn name(self) -> &'static str {
        match self {
            Runtime::Ort => "ort",
            Runtime::Torch => "torch",
            Runtime::Tract => "tract",
        }
    }

    /// Why this build of bench cannot run `self`, and how to fix it; `None` when it can. Only tract
    /// can be missing: it is the cargo feature `tract`.
    pub(crate) fn missing_in_this_build(self) -> Option<(&'static str, &'static str)> {
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
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Arrival::Poisson => "poisson",
            Arrival::Constant => "constant",
            Arrival::Trace(_) => "trace",
        }
    }
}
