//! The worker pool: worker processes (the same binary, re-executed) that hold the models, the
//! parent's side that starts, feeds and supervises them, and what travels between the two.
//!
//! - [`protocol`]: the parent–worker wire format: handshake and length-prefixed frames.
//! - [`worker`]: the worker process's main loop and the parent's pool of workers.
//! - [`transfer`]: how tensors travel between parent and worker, one file per transfer mode, and
//!   the channels (the worker's socket, or the `spin` channel's shared-memory rings).
//! - [`runtime`]: what runs a model inside a worker (ONNX Runtime, tract, synthetic, torch), their
//!   one factory, and finding ONNX Runtime's library.

pub mod protocol;
pub mod runtime;
pub mod transfer;
pub mod worker;
