//! Runtimes execute one model inside a worker. The pool, the load generator and the reports do not
//! know which runtime ran; only the worker does.
//!
//! - [`ort`]: ONNX Runtime through the `ort` crate (the default).
//! - [`ortlib`]: finding and checking the ONNX Runtime shared library, in the parent, before anything
//!   is spawned.
//! - `tract`: tract, the pure-Rust ONNX engine, in process (cargo feature `tract`).
//! - [`synthetic`]: no model, a known service-time distribution (calibration and queueing tests).
//! - [`torch`]: the original PyTorch modules, in a Python worker; here, finding its interpreter.
//!
//! [`load`] is the one factory: a worker asks it for each model of its setup. A new runtime is a
//! file here, a `scenario::Runtime` variant, and the arms the compiler then asks for.

pub mod ort;
pub mod ortlib;
pub mod synthetic;
pub mod torch;
#[cfg(feature = "tract")]
pub mod tract;

use crate::model::tensor::{TensorData, TensorView};
use crate::pool::protocol::{Setup, SetupModel};
use crate::scenario::{ModelSource, Provider, Runtime};

/// What a tract worker reports as its runtime (the `tract-onnx` release `Cargo.toml` pins).
const TRACT_VERSION: &str = "tract 0.23.9";

/// A loaded model that can be run repeatedly.
pub trait Model: Send {
    /// Runs the model on `inputs` (in the model's input order) and returns its outputs in the
    /// model's output order.
    fn run(&mut self, inputs: &[TensorView<'_>]) -> Result<Vec<TensorData>, String>;

    /// A pause the worker takes before this request, outside the measured compute time. Only the
    /// synthetic runtime's stall uses it.
    fn pause_before(&mut self) -> Option<std::time::Duration> {
        None
    }

    /// The `device` transfer: copies every sample (each a list of inputs in the model's order) into
    /// the device's memory once, so [`Model::run_staged`] moves no input bytes.
    fn stage(&mut self, _samples: &[Vec<TensorData>]) -> Result<(), String> {
        Err("this runtime cannot keep inputs on a device (the `device` transfer needs provider = \"cuda\")".into())
    }

    /// Runs staged sample `k`; its outputs stay on the device, so none are returned.
    fn run_staged(&mut self, _k: usize) -> Result<Vec<TensorData>, String> {
        Err("no inputs are staged on a device".into())
    }

    /// This model's run that several threads may call at once on the same loaded model
    /// (`[sweep] worker_concurrency`), or `None` when the runtime runs one request at a time.
    fn shared(&self) -> Option<&dyn SharedRun> {
        None
    }
}

/// A loaded model that several threads of one worker run at the same time, sharing its weights
/// and sessions: the worker's side of `worker_concurrency`.
pub trait SharedRun: Sync {
    /// As [`Model::run`], from any thread, while other threads run the same model.
    fn run_shared(&self, inputs: &[TensorView<'_>]) -> Result<Vec<TensorData>, String>;

    /// As [`Model::pause_before`].
    fn pause_before_shared(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Which models of `s` a worker of `runtime` cannot run, each with why (`None` for a model it
/// runs). Only tract leaves models out: ONNX Runtime runs any valid file, and a model the torch
/// runtime cannot import is a scenario error. A point leaves these models out of its traffic and
/// reports them as unsupported (see `sweep::point::run`).
///
/// Errors: the build has no tract, or a file is not a model or does not take the scenario's inputs
/// (wrong for every runtime, so the scenario must change).
pub(crate) fn unsupported(
    s: &crate::scenario::Scenario,
    runtime: crate::scenario::Runtime,
) -> anyhow::Result<Vec<Option<String>>> {
    if runtime != crate::scenario::Runtime::Tract {
        return Ok(vec![None; s.models.len()]);
    }
    #[cfg(feature = "tract")]
    {
        s.models
            .iter()
            .map(|m| match &m.source {
                crate::scenario::ModelSource::Onnx(path) => {
                    tract::support(&m.name, path, &m.inputs).map_err(anyhow::Error::from)
                }
                crate::scenario::ModelSource::Synthetic(_) => Ok(None),
            })
            .collect()
    }
    #[cfg(not(feature = "tract"))]
    {
        let (why, fix) = runtime.missing_in_this_build().expect("no tract feature");
        anyhow::bail!("{why}\n  fix: {fix}")
    }
}

/// Why a worker of `setup` cannot start at all (before any model loads), e.g. tract on a GPU.
pub(crate) fn refuse(setup: &Setup) -> Option<String> {
    match (setup.runtime, setup.provider) {
        (Runtime::Tract, Provider::Cuda) => Some(format!(
            "provider {} is not supported by tract, which runs on the CPU only; use provider = \"cpu\" for tract",
            setup.provider.name()
        )),
        (Runtime::Tract, Provider::Cpu) | (Runtime::Ort | Runtime::Torch, _) => None,
    }
}

/// Loads model `m` of `setup` in the runtime the setup names: the one factory of runtimes.
pub(crate) fn load(setup: &Setup, m: usize) -> Result<Box<dyn Model>, String> {
    let spec = setup
        .models
        .get(m)
        .ok_or_else(|| format!("no model #{m}"))?;
    match (&spec.source, setup.runtime) {
        (ModelSource::Synthetic(syn), _) => Ok(Box::new(synthetic::SyntheticModel::new(
            *syn,
            u64::from(setup.worker) << 32 | m as u64,
        ))),
        (ModelSource::Onnx(path), Runtime::Ort) => {
            let opts = ort::SessionOptions {
                intra_threads: setup.intra_threads as usize,
                gpu: setup.gpu.clone(),
                knobs: setup.session,
            };
            let names = spec.inputs.iter().map(|i| i.name.clone()).collect();
            Ok(Box::new(
                ort::OrtModel::load(&setup.ort_lib, path, opts)?.with_input_names(names),
            ))
        }
        (ModelSource::Onnx(path), Runtime::Tract) => {
            tract_model(spec, path, setup.intra_threads as usize)
        }
        (ModelSource::Onnx(_), Runtime::Torch) => {
            Err("the torch runtime runs in harness/python/bench_worker.py, not in bench".into())
        }
    }
}

/// Starts the runtime of `setup` once, even with nothing preloaded (on-demand placement), so a
/// broken library fails the setup rather than the first request; returns its name and version for
/// run.json.
pub(crate) fn start(setup: &Setup) -> Result<String, String> {
    let onnx = setup
        .models
        .iter()
        .any(|m| matches!(m.source, ModelSource::Onnx(_)));
    if !onnx {
        return Ok("synthetic".into());
    }
    match setup.runtime {
        Runtime::Tract => Ok(TRACT_VERSION.to_string()),
        Runtime::Ort => {
            ort::environment(&setup.ort_lib)?;
            Ok(ort::build_info())
        }
        Runtime::Torch => {
            Err("the torch runtime runs in harness/python/bench_worker.py, not in bench".into())
        }
    }
}

/// `spec` loaded into tract, optimised for its inputs' shapes.
#[cfg(feature = "tract")]
fn tract_model(
    spec: &SetupModel,
    path: &std::path::Path,
    intra_threads: usize,
) -> Result<Box<dyn Model>, String> {
    let opts = tract::TractOptions { intra_threads };
    tract::TractModel::load(&spec.name, path, &spec.inputs, opts)
        .map(|m| Box::new(m) as Box<dyn Model>)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "tract"))]
fn tract_model(_: &SetupModel, _: &std::path::Path, _: usize) -> Result<Box<dyn Model>, String> {
    let (why, fix) = Runtime::Tract
        .missing_in_this_build()
        .expect("no tract feature");
    Err(format!("{why}; {fix}"))
}
