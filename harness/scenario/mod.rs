//! Scenarios: the TOML file a user writes, checked and resolved before anything is spawned.
//!
//! Two stages: `raw` mirrors the file (serde, unknown keys rejected; `parse` reads it, finding every
//! unknown key and wrong type at once), then [`load`] resolves it into a [`Scenario`] with no
//! optional fields: absolute paths, shapes with every dynamic dim bound and checked against the
//! ONNX file, generated input samples, typed durations and the sweep axes. Every problem becomes a
//! [`ScenarioError`] naming the file, line and key, and saying how to fix it; all problems found
//! are reported together.
//!
//! The files, by what they do:
//! - the vocabulary: `vocabulary.rs` (every enum a scenario names, with its names), `spec.rs` (the
//!   resolved parts: models, workload, load), and here the [`Scenario`] that gathers them;
//! - the errors: `error.rs`;
//! - reading the TOML: `read.rs` (the front door, [`load`]), `raw.rs`, `parse.rs`, `source.rs`;
//! - resolving it: `resolve.rs` (the stages, in order), `model/` (one `[[model]]` against its ONNX
//!   file), `samples.rs`, `workload.rs`, `load_spec.rs`, `deployment.rs` (`[on_demand]`,
//!   `[replicas]`, `[cuda]`, `[transfer]`), `torch.rs`, `slo.rs`, `session.rs`, `batch.rs`,
//!   `batching.rs`, and `values.rs` (the readers of one value that every table shares);
//! - the sweep: `sweep.rs` (the points), `limits.rs`, `shm.rs`, `budget.rs` (each point's time and
//!   whether its stop rule can reach its minimum), and `describe.rs` for `validate`.

pub mod shard;

pub mod axes;
pub mod batch;
pub mod batching;
pub(crate) use batching::{BatchPolicy, IdlePolicy};
mod deployment;
mod describe;
pub(crate) use describe::{describe, effective_settings};
mod error;
use error::Errors;
pub(crate) use error::{ScenarioError, ScenarioErrors};
pub mod limits;
mod load_spec;
pub(crate) use load_spec::MAX_SPIN;
mod model;
pub(crate) use model::random_scalars_notice;
mod parse;
mod raw;
mod read;
pub use read::{load, load_bytes};
mod resolve;
mod samples;
pub(crate) use samples::generate_samples;
pub(crate) mod budget;
pub mod session;
pub mod shm;
pub mod slo;
pub mod source;
mod spec;
pub use spec::{
    CHECK_TOLERANCE, CudaSpec, DEFAULT_MAX_DURATION, DEFAULT_MIN_REQUESTS, Group, InputSpec, Limit,
    LoadPoint, LoadSpec, ModelSource, ModelSpec, OnDemandCaps, Stall, StopRule, SyntheticSpec,
    Target, Tolerance, TorchSpec, Workload,
};
pub mod sweep;
mod torch;
mod values;
mod vocabulary;
pub use vocabulary::{
    ArenaExtend, Arrival, Channel, ConvAlgoSearch, LoadKind, Pin, Placement, Provider, Runtime,
    ServiceDistribution, SpinWhen, Transfer, WaitMode,
};
mod workload;

use std::path::PathBuf;

pub(crate) use axes::Axes;
pub use session::{ExecutionMode, GraphOptimization, SessionKnobs};
pub(crate) use source::KeyPath;
pub use sweep::{Point, expand};

/// A checked scenario: only this reaches the worker pool.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub(crate) name: String,
    pub(crate) file: PathBuf,
    /// SHA-256 of the scenario file's bytes, hex.
    pub(crate) hash: String,
    pub(crate) seed: u64,
    pub models: Vec<ModelSpec>,
    pub(crate) workload: Workload,
    pub(crate) load: LoadSpec,
    pub(crate) slo: Vec<slo::Constraint>,
    pub(crate) on_demand: OnDemandCaps,
    /// `[on_demand] parallel_loads`: how many workers may load a model at the same time (1: one
    /// at a time, the default).
    pub(crate) parallel_loads: usize,
    /// `[replicas]`: workers per model, by model index, for `placement = "replicas"` (empty
    /// without the table).
    pub(crate) replicas: Vec<usize>,
    pub(crate) cuda: CudaSpec,
    pub(crate) transfer: TransferSpec,
    pub(crate) axes: Axes,
    pub points: Vec<Point>,
    /// The points past a limit on what one point may start ([`limits`]), one problem per limit:
    /// a command refuses to run them unless forced ([`Scenario::check_limits`]).
    pub(crate) over_limit: Vec<ScenarioError>,
}

/// `[transfer]`: settings of the transfer modes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TransferSpec {
    /// The most memory an `shm` point's arena may come to hold, MiB (see [`shm`]).
    pub(crate) shm_budget_mib: u64,
    /// When the `spin` channel spins.
    pub(crate) spin: SpinWhen,
    /// The longest a side of the `spin` channel spins before it parks.
    pub(crate) spin_max: std::time::Duration,
}

/// The `spin` channel's longest spin by default: longer than a small model's run (so the parent
/// sees the reply of a 200 µs model without a wake-up), short enough that a missed wait costs
/// little.
pub(crate) const DEFAULT_SPIN_MAX_US: u64 = 1000;
/// The longest spin a scenario may ask for.
pub(crate) const MAX_SPIN_MAX_US: u64 = 100_000;

impl TransferSpec {
    /// How long the `spin` channel's sides may spin at `point`: zero (park at once) for the
    /// `socket` channel, and for `spin = "auto"` when the point's busy threads outnumber `cpus`.
    pub(crate) fn spin_max_at(&self, point: &Point, cpus: usize) -> std::time::Duration {
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
    pub(crate) fn has_onnx(&self) -> bool {
        self.models
            .iter()
            .any(|m| matches!(m.source, ModelSource::Onnx(_)))
    }

    /// `Err` with the problems of [`Scenario::over_limit`] unless `force` (`--force`) or there are
    /// none.
    pub(crate) fn check_limits(&self, force: bool) -> Result<(), ScenarioErrors> {
        if force || self.over_limit.is_empty() {
            Ok(())
        } else {
            Err(ScenarioErrors(self.over_limit.clone()))
        }
    }

    /// This scenario with the models marked in `drop` left out of the traffic: their weight in the
    /// mix, and that of every group with one of them as a member, becomes 0. Model indices do not
    /// change. `None` when nothing would be left to send.
    pub(crate) fn without(&self, drop: &[bool]) -> Option<Scenario> {
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
    #[cfg(test)]
    pub(crate) fn target_name(&self, t: Target) -> &str {
        match t {
            Target::Model(m) => &self.models[m].name,
            Target::Group(g) => &self.workload.groups[g].name,
        }
    }
}

#[cfg(test)]
mod tests;
