//! Serde types that mirror the scenario TOML one to one. Every field is optional here; defaults and
//! checks live in `resolve`, so the error for a bad value can name its key and line.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::axes::values::Knob;
use super::session::{knob_type, with_session_knobs};

/// A value that may be written as one item or as a list of items (a sweep axis).
///
/// Read by hand rather than as an untagged enum: serde's untagged error cannot say which type it
/// wanted, and `max_delay = 5` and `max_batch = "eight"` both read "one value or a list of
/// values". This one names the type expected and the value found (the key and line come from
/// the reader).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(d)?;
        let wrong = |found: &toml::Value| {
            serde::de::Error::custom(format!(
                "expected {}, got {}",
                one_or_many_of::<T>(),
                describe_value(found)
            ))
        };
        match value {
            toml::Value::Array(items) => items
                .into_iter()
                .map(|v| T::deserialize(v.clone()).map_err(|_| wrong(&v)))
                .collect::<Result<Vec<T>, D::Error>>()
                .map(OneOrMany::Many),
            v => T::deserialize(v.clone())
                .map(OneOrMany::One)
                .map_err(|_| wrong(&v)),
        }
    }
}

/// What a [`OneOrMany<T>`] takes, in words, with an example.
fn one_or_many_of<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    match name.rsplit("::").next().unwrap_or(name) {
        "i64" | "u64" | "i32" | "u32" | "usize" => {
            "a whole number or a list of them, e.g. `8` or `[4, 8]`"
        }
        "f64" | "f32" => "a number or a list of them, e.g. `0.5` or `[0.5, 1.0]`",
        "String" => "a string in quotes or a list of them, e.g. `\"2ms\"` or `[\"pipe\", \"shm\"]`",
        "bool" => "`true`, `false` or a list of them, e.g. `[true, false]`",
        _ => "one value or a list of values, e.g. `2` or `[1, 2]`, `\"pipe\"` or `[\"pipe\"]`",
    }
}

/// A TOML value as a message quotes it: `the string "eight"`, `the number 5`.
fn describe_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Integer(n) => format!("the number {n}"),
        toml::Value::Float(x) => format!("the number {x}"),
        toml::Value::Boolean(b) => format!("`{b}`"),
        toml::Value::Datetime(d) => format!("the date {d}"),
        toml::Value::Array(_) => "a list inside the list".to_string(),
        toml::Value::Table(_) => "a table".to_string(),
    }
}

impl<T: Clone> OneOrMany<T> {
    pub(crate) fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub(crate) name: Option<String>,
    pub(crate) seed: Option<u64>,
    pub(crate) samples: Option<i64>,
    #[serde(default)]
    pub(crate) model: Vec<RawModel>,
    pub(crate) workload: Option<RawWorkload>,
    pub(crate) load: Option<RawLoad>,
    pub(crate) sweep: Option<RawSweep>,
    pub(crate) slo: Option<OneOrMany<String>>,
    pub(crate) on_demand: Option<RawOnDemand>,
    pub(crate) cuda: Option<RawCuda>,
    pub(crate) torch: Option<RawTorch>,
    pub(crate) parity: Option<RawParity>,
    pub(crate) transfer: Option<RawTransfer>,
    pub(crate) batching: Option<RawBatching>,
    /// `[replicas]`: model name → workers holding it, for `placement = "replicas"`.
    pub(crate) replicas: Option<BTreeMap<String, i64>>,
}

/// `[batching]`: dynamic batching (`scenario::batching`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBatching {
    pub(crate) max_batch: Option<OneOrMany<i64>>,
    pub(crate) max_delay: Option<OneOrMany<String>>,
    pub(crate) idle: Option<OneOrMany<String>>,
}

/// `[torch]`: settings of the torch runtime.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTorch {
    pub(crate) python_path: Option<OneOrMany<String>>,
}

/// `[parity]`: tolerances of `bench parity`, with per-model overrides in `[parity.models.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawParity {
    pub(crate) atol: Option<f64>,
    pub(crate) rtol: Option<f64>,
    #[serde(default)]
    pub(crate) models: BTreeMap<String, RawTolerance>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCuda {
    pub(crate) gpus: Option<RawGpus>,
    pub(crate) conv_algo_search: Option<String>,
    pub(crate) arena_extend_strategy: Option<String>,
    pub(crate) gpu_mem_limit_mib: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "`\"round-robin\"` or a list of CUDA device ids, e.g. `[0, 1]`"
)]
pub(crate) enum RawGpus {
    Named(String),
    List(Vec<i64>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTolerance {
    pub(crate) atol: Option<f64>,
    pub(crate) rtol: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOnDemand {
    pub(crate) max_models: Option<i64>,
    pub(crate) memory_budget_mib: Option<f64>,
    pub(crate) parallel_loads: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    pub(crate) name: Option<String>,
    pub(crate) path: Option<String>,
    #[serde(default)]
    pub(crate) dims: BTreeMap<String, i64>,
    #[serde(default)]
    pub(crate) inputs: BTreeMap<String, RawInput>,
    pub(crate) synthetic: Option<RawSynthetic>,
    /// The torch runtime: `package.module:Class`, and `weights` (a state_dict) or `init_seed`.
    pub(crate) module: Option<String>,
    pub(crate) weights: Option<String>,
    pub(crate) init_seed: Option<u64>,
    /// A test-data folder (`test_data_set_N/input_K.pb`, `output_K.pb`): the inputs become the
    /// samples, the outputs are checked.
    pub(crate) test_data: Option<String>,
    /// `[model.check]`: tolerances of the expected-output check.
    pub(crate) check: Option<RawTolerance>,
    /// Which dim the `batch` sweep axis binds: a dim name, or an input axis index.
    pub(crate) batch_dim: Option<RawBatchDim>,
}

/// `batch_dim`: a named dim (`"N"`) or the position of the batch dim in the inputs (`0`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(
    untagged,
    expecting = "a dim name or an input axis index, e.g. `batch_dim = \"N\"` or `batch_dim = 0`"
)]
pub(crate) enum RawBatchDim {
    Name(String),
    Axis(i64),
}

/// A model with no ONNX file whose service time follows a distribution (for calibration and tests).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSynthetic {
    pub(crate) service: Option<String>,
    pub(crate) mean: Option<String>,
    /// Added to the service time per request of a run (dynamic batching's `a + b × batch`).
    pub(crate) per_sample: Option<String>,
    pub(crate) wait: Option<String>,
    pub(crate) stall: Option<RawStall>,
    /// Stop answering for good this long after the first request (for timeout tests).
    pub(crate) hang_after: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStall {
    pub(crate) after: Option<String>,
    pub(crate) pause: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInput {
    pub(crate) shape: Option<Vec<i64>>,
    pub(crate) generator: Option<RawGenerator>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum RawGenerator {
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
pub(crate) enum ConstValue {
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl ConstValue {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            ConstValue::Bool(b) => f64::from(u8::from(b)),
            ConstValue::Int(i) => i as f64,
            ConstValue::Float(f) => f,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkload {
    pub(crate) mix: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    pub(crate) groups: BTreeMap<String, Vec<String>>,
    pub(crate) warmup: Option<String>,
    pub(crate) warmup_requests: Option<i64>,
    pub(crate) stop: Option<String>,
    pub(crate) duration: Option<String>,
    pub(crate) requests: Option<i64>,
    pub(crate) min_requests: Option<i64>,
    pub(crate) max_duration: Option<String>,
    pub(crate) window: Option<String>,
    pub(crate) tolerance_pct: Option<f64>,
    pub(crate) max_windows: Option<i64>,
    pub(crate) trials: Option<i64>,
    pub(crate) request_timeout: Option<String>,
    pub(crate) replace_after_timeouts: Option<i64>,
    pub(crate) interleave: Option<bool>,
    pub(crate) cooldown: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTransfer {
    pub(crate) shm_budget_mib: Option<i64>,
    pub(crate) spin: Option<String>,
    pub(crate) spin_max_us: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLoad {
    pub(crate) kind: Option<String>,
    pub(crate) concurrency: Option<OneOrMany<i64>>,
    pub(crate) rate: Option<OneOrMany<f64>>,
    pub(crate) arrival: Option<String>,
    pub(crate) trace: Option<String>,
    pub(crate) max_in_flight: Option<i64>,
    pub(crate) spin: Option<String>,
}

/// Declares `RawSweep` with a field for each session knob (`scenario/session.rs`), after
/// `runtime`: serde's list of known keys, which the message about an unknown key gives, keeps its
/// order.
macro_rules! raw_sweep {
    ({ $(#[$attr:meta])* $vis:vis struct RawSweep { $($before:tt)* } { $($after:tt)* } }
     $( $knob:ident $declaration:tt )*) => {
        $(#[$attr])*
        $vis struct RawSweep {
            $($before)*
            $( $vis $knob: Option<OneOrMany<<knob_type::$knob as Knob>::Raw>>, )*
            $($after)*
        }
    };
}

with_session_knobs!(raw_sweep! {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RawSweep {
        pub(crate) workers: Option<OneOrMany<i64>>,
        pub(crate) transfer: Option<OneOrMany<String>>,
        pub(crate) channel: Option<OneOrMany<String>>,
        pub(crate) placement: Option<OneOrMany<String>>,
        pub(crate) pin: Option<OneOrMany<String>>,
        pub(crate) intra_threads: Option<OneOrMany<i64>>,
        pub(crate) provider: Option<OneOrMany<String>>,
        pub(crate) runtime: Option<OneOrMany<String>>,
    }
    // The session knobs' fields go here.
    {
        pub(crate) batch: Option<OneOrMany<i64>>,
        pub(crate) worker_concurrency: Option<OneOrMany<i64>>,
    }
});
