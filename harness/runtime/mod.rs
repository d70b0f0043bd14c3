//! Runtimes execute one model inside a worker. The pool, the load generator and the reports do not
//! know which runtime ran; only the worker does.
//!
//! - [`ort`]: ONNX Runtime through the `ort` crate (the default).
//! - [`ortlib`]: finding and checking the ONNX Runtime shared library, in the parent, before anything
//!   is spawned.
//! - [`synthetic`]: no model, a known service-time distribution (calibration and queueing tests).
//! - [`torch`]: the original PyTorch modules, in a Python worker; here, finding its interpreter.

pub mod ort;
pub mod ortlib;
pub mod synthetic;
pub mod torch;

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
