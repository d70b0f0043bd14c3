//! Serde types that mirror the scenario TOML one to one. Every field is optional here; defaults and
//! checks live in `resolve`, so the error for a bad value can name its key and line.

use std::collections::BTreeMap;

use serde::Deserialize;

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
    pub sweep: Option<RawSweep>,
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
    Uniform { low: Option<f64>, high: Option<f64> },
    Normal { mean: Option<f64>, std: Option<f64> },
    Int { low: Option<i64>, high: Option<i64> },
    Const { value: ConstValue },
    Npy { path: String },
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub mix: Option<BTreeMap<String, f64>>,
    pub concurrency: Option<OneOrMany<i64>>,
    pub warmup: Option<String>,
    pub warmup_requests: Option<i64>,
    pub duration: Option<String>,
    pub requests: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSweep {
    pub workers: Option<OneOrMany<i64>>,
    pub transfer: Option<OneOrMany<String>>,
    pub intra_threads: Option<OneOrMany<i64>>,
    pub provider: Option<OneOrMany<String>>,
}
