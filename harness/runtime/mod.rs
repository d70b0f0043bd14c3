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
}
