//! Runtimes execute one model inside a worker. The pool, the load generator and the reports do not
//! know which runtime ran; only the worker does.
//!
//! - [`ort`]: ONNX Runtime through the `ort` crate (the default).
//! - [`ortlib`]: finding and checking the ONNX Runtime shared library, in the parent, before anything
//!   is spawned.
//! - [`tract`]: tract, the pure-Rust ONNX engine, in process (cargo feature `tract`).
//! - [`synthetic`]: no model, a known service-time distribution (calibration and queueing tests).
//! - [`torch`]: the original PyTorch modules, in a Python worker; here, finding its interpreter.

pub mod ort;
pub mod ortlib;
pub mod synthetic;
pub mod torch;
#[cfg(feature = "tract")]
pub mod tract;

use crate::tensor::{TensorData, TensorView};

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
}

/// Why a scenario that asks for tract cannot run in this build, and how to fix it; `None` when
/// this build has tract (cargo feature `tract`).
pub fn tract_missing() -> Option<(&'static str, &'static str)> {
    (!cfg!(feature = "tract")).then_some((
        "this build of bench has no tract runtime (it is the cargo feature `tract`, off by default)",
        "rebuild with `cargo build --release --features tract` (`scripts/run.sh --tract` does it), \
         or remove \"tract\" from `sweep.runtime`",
    ))
}

/// Which models of `s` a worker of `runtime` cannot run, each with why (`None` for a model it
/// runs). Only tract leaves models out: ONNX Runtime runs any valid file, and a model the torch
/// runtime cannot import is a scenario error. A point leaves these models out of its traffic and
/// reports them as unsupported (see `sweep::point::run`).
///
/// Errors: the build has no tract, or a file is not a model or does not take the scenario's inputs
/// (wrong for every runtime, so the scenario must change).
pub fn unsupported(
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
        let (why, fix) = tract_missing().expect("no tract feature");
        anyhow::bail!("{why}\n  fix: {fix}")
    }
}
