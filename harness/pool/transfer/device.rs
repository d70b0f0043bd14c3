//! The `device` transfer (CUDA only): as [`super::index`], and the worker copies every
//! sample of a model into GPU memory once, when the model loads ([`Resolver::to_stage`], then the
//! runtime's `Model::stage`). A request runs the staged sample by its index (IoBinding) and its
//! outputs stay on the GPU: the compute-only floor. The parent's side is the `index` mode's.

use super::index::{self, Samples};
use super::{Input, Inputs, ModelInputs, NO_ARENA, Outputs, TransferError};
use crate::model::tensor::TensorData;
use crate::scenario::Runtime;

/// Parent side: as `index`, the request carries the sample's index.
pub(crate) use index::{Staged, Stager};

/// Whether a worker of `runtime` needs the samples in its setup: never, since only the Rust
/// workers stage on a device.
pub(crate) fn samples_in_setup(runtime: Runtime) -> bool {
    match runtime {
        Runtime::Ort | Runtime::Tract | Runtime::Torch => false,
    }
}

/// Worker side: the samples generated at start, to stage when each model loads.
#[derive(Debug)]
pub(crate) struct Resolver {
    samples: Samples,
}

impl Resolver {
    pub(crate) fn open<'m>(
        models: impl IntoIterator<Item = ModelInputs<'m>>,
    ) -> Result<Self, TransferError> {
        Ok(Resolver {
            samples: index::generate(models)?,
        })
    }

    /// Model `m`'s samples, for the runtime to copy to the device as the model loads.
    pub(crate) fn to_stage(&self, m: usize) -> Option<&[Vec<TensorData>]> {
        self.samples.get(m).map(Vec::as_slice)
    }

    pub(crate) fn serve(
        &self,
        m: usize,
        inputs: &Inputs,
        run: impl FnOnce(Input<'_>) -> Result<Vec<TensorData>, String>,
    ) -> Result<Outputs, String> {
        match inputs {
            Inputs::Index(k) => {
                let (k, _) = index::pick(&self.samples, m, *k)?;
                run(Input::Staged(k)).map(Outputs::Inline)
            }
            Inputs::Inline(tensors) => super::pipe::serve_inline(tensors, run),
            Inputs::Shm { .. } => Err(NO_ARENA.into()),
            Inputs::Batch { .. } => {
                Err("the device transfer keeps single samples on the GPU: it cannot batch".into())
            }
        }
    }
}
