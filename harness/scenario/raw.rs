//! Serde types that mirror the scenario TOML one to one. Every field is optional here; defaults and
//! checks live in `resolve`, so the error for a bad value can name its key and line.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::axes::values::Knob;
use super::session::{knob_type, with_session_knobs};

/// A value that may be written as one item or as a list of items (a sweep axis).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(
    untagged,
    expecting = "one value or a list of values, e.g. `2` or `[1, 2]`, `\"pipe\"` or `[\"pipe\"]`"
)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Option<String>,
    pub seed: Option<u64>,
    pub samples: Option<i64>,
    #[serde(default)]
    pub model: Vec<RawModel>,
    pub workload: Option<RawWorkload>,
    pub load: Option<RawLoad>,
    pub sweep: Option<RawSweep>,
    pub slo: Option<OneOrMany<String>>,
    pub on_demand: Option<RawOnDemand>,
    pub cuda: Option<RawCuda>,
    pub torch: Option<RawTorch>,
    pub parity: Option<RawParity>,
    pub transfer: Option<RawTransfer>,
    pub batching: Option<RawBatching>,
    /// `[replicas]`: model name → workers holding it, for `placement = "replicas"`.
    pub replicas: Option<BTreeMap<String, i64>>,
}

/// `[batching]`: dynamic batching (`scenario::batching`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBatching {
    pub max_batch: Option<OneOrMany<i64>>,
    pub max_delay: Option<OneOrMany<String>>,
    pub idle: Option<OneOrMany<String>>,
}

/// `[torch]`: settings of the torch runtime.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTorch {
    pub python_path: Option<OneOrMany<String>>,
}

/// `[parity]`: tolerances of `bench parity`, with per-model overrides in `[parity.models.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParity {
    pub atol: Option<f64>,
    pub rtol: Option<f64>,
    #[serde(default)]
    pub models: BTreeMap<String, RawTolerance>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCuda {
    pub gpus: Option<RawGpus>,
    pub conv_algo_search: Option<String>,
    pub arena_extend_strategy: Option<String>,
    pub gpu_mem_limit_mib: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "`\"round-robin\"` or a list of CUDA device ids, e.g. `[0, 1]`"
)]
pub enum RawGpus {
    Named(String),
    List(Vec<i64>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTolerance {
    pub atol: Option<f64>,
    pub rtol: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOnDemand {
    pub max_models: Option<i64>,
    pub memory_budget_mib: Option<f64>,
    pub parallel_loads: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: Option<String>,
    pub path: Option<String>,
    #[serde(default)]
    pub dims: BTreeMap<String, i64>,
    #[serde(default)]
    pub inputs: BTreeMap<String, RawInput>,
    pub synthetic: Option<RawSynthetic>,
    /// The torch runtime: `package.module:Class`, and `weights` (a state_dict) or `init_seed`.
    pub module: Option<String>,
    pub weights: Option<String>,
    pub init_seed: Option<u64>,
    /// A test-data folder (`test_data_set_N/input_K.pb`, `output_K.pb`): the inputs become the
    /// samples, the outputs are checked.
    pub test_data: Option<String>,
    /// `[model.check]`: tolerances of the expected-output check.
    pub check: Option<RawTolerance>,
    /// Which dim the `batch` sweep axis binds: a dim name, or an input axis index.
    pub batch_dim: Option<RawBatchDim>,
}

/// `batch_dim`: a named dim (`"N"`) or the position of the batch dim in the inputs (`0`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(
    untagged,
    expecting = "a dim name or an input axis index, e.g. `batch_dim = \"N\"` or `batch_dim = 0`"
)]
pub enum RawBatchDim {
    Name(String),
    Axis(i64),
}

/// A model with no ONNX file whose service time follows a distribution (for calibration and tests).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSynthetic {
    pub service: Option<String>,
    pub mean: Option<String>,
    /// Added to the service time per request of a run (dynamic batching's `a + b × batch`).
    pub per_sample: Option<String>,
    pub wait: Option<String>,
    pub stall: Option<RawStall>,
    /// Stop answering for good this long after the first request (for timeout tests).
    pub hang_after: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStall {
    pub after: Option<String>,
    pub pause: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    pub shape: Option<Vec<i64>>,
    pub generator: Option<RawGenerator>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RawGenerator {
    Uniform {
        low: Option<f64>,
        high: Option<f64>,
    },
    Normal {
        mean: Option<f64>,
        std: Option<f64>,
    },
    Int {
        low: Option<i64>,
        high: Option<i64>,
    },
    Const {
        value: ConstValue,
    },
    /// A tensor file: `.pb`, `.npy` or `.npz`; `npy` is the older name of the same kind.
    #[serde(alias = "npy")]
    File {
        path: String,
    },
    /// For string inputs: each element drawn from `values`.
    Strings {
        values: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ConstValue {
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl ConstValue {
    pub fn as_f64(self) -> f64 {
        match self {
            ConstValue::Bool(b) => f64::from(u8::from(b)),
            ConstValue::Int(i) => i as f64,
            ConstValue::Float(f) => f,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub mix: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    pub warmup: Option<String>,
    pub warmup_requests: Option<i64>,
    pub stop: Option<String>,
    pub duration: Option<String>,
    pub requests: Option<i64>,
    pub min_requests: Option<i64>,
    pub window: Option<String>,
    pub tolerance_pct: Option<f64>,
    pub max_windows: Option<i64>,
    pub trials: Option<i64>,
    pub request_timeout: Option<String>,
    pub replace_after_timeouts: Option<i64>,
    pub interleave: Option<bool>,
    pub cooldown: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransfer {
    pub shm_budget_mib: Option<i64>,
    pub spin: Option<String>,
    pub spin_max_us: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    pub kind: Option<String>,
    pub concurrency: Option<OneOrMany<i64>>,
    pub rate: Option<OneOrMany<f64>>,
    pub arrival: Option<String>,
    pub trace: Option<String>,
    pub max_in_flight: Option<i64>,
    pub spin: Option<String>,
}

/// Declares `RawSweep` with a field for each session knob (`scenario/session.rs`), after
/// `runtime`: serde's list of known keys, which the message about an unknown key gives, keeps its
/// order.
macro_rules! raw_sweep {
    ({ $(#[$attr:meta])* pub struct RawSweep { $($before:tt)* } { $($after:tt)* } }
     $( $knob:ident $declaration:tt )*) => {
        $(#[$attr])*
        pub struct RawSweep {
            $($before)*
            $( pub $knob: Option<OneOrMany<<knob_type::$knob as Knob>::Raw>>, )*
            $($after)*
        }
    };
}

with_session_knobs!(raw_sweep! {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawSweep {
        pub workers: Option<OneOrMany<i64>>,
        pub transfer: Option<OneOrMany<String>>,
        pub channel: Option<OneOrMany<String>>,
        pub placement: Option<OneOrMany<String>>,
        pub pin: Option<OneOrMany<String>>,
        pub intra_threads: Option<OneOrMany<i64>>,
        pub provider: Option<OneOrMany<String>>,
        pub runtime: Option<OneOrMany<String>>,
    }
    // The session knobs' fields go here.
    {
        pub batch: Option<OneOrMany<i64>>,
        pub worker_concurrency: Option<OneOrMany<i64>>,
    }
});
