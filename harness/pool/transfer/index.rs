//! The `index` transfer: parent and worker hold the same samples, so only a sample index crosses
//! the socket. The worker generates every model's samples at start from the inputs' generators and
//! seeds, bit for bit as the parent did ([`crate::scenario::generate_samples`]); a worker that cannot
//! (the Python torch worker) gets them in its setup instead ([`samples_in_setup`]). Input bytes
//! reach the worker's memory once, not per request. Outputs go back inline.

use super::{Input, Inputs, InputsRef, ModelInputs, NO_ARENA, NO_SAMPLES, Outputs, TransferError};
use crate::model::tensor::{TensorData, TensorView};
use crate::scenario::Runtime;

/// Parent side: the request carries the sample's index.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stager;

impl Stager {
    pub(crate) fn stage(&self, index: usize) -> Staged<'static> {
        Staged::One(index as u32)
    }
}

/// The sample index a request carries, or a batch's sample indices and batch axes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Staged<'a> {
    One(u32),
    Batch {
        samples: &'a [u32],
        axes: &'a [(u32, u32)],
    },
}

impl Staged<'_> {
    pub(crate) fn inputs(&self) -> InputsRef<'_> {
        match self {
            Staged::One(k) => InputsRef::Index(*k),
            Staged::Batch { samples, axes } => InputsRef::Batch { samples, axes },
        }
    }
}

/// Whether a worker of `runtime` needs the samples in its setup: only one that cannot generate
/// them bit for bit as Rust does.
pub(crate) fn samples_in_setup(runtime: Runtime) -> bool {
    match runtime {
        Runtime::Torch => true,
        Runtime::Ort | Runtime::Tract => false,
    }
}

/// Every model's samples, made at setup.
pub(super) type Samples = Vec<Vec<Vec<TensorData>>>;

/// Generates every model's samples, as the parent did.
pub(super) fn generate<'m>(
    models: impl IntoIterator<Item = ModelInputs<'m>>,
) -> Result<Samples, TransferError> {
    models
        .into_iter()
        .map(|m| {
            crate::scenario::generate_samples(m.inputs, m.samples).map_err(|(_, e)| {
                TransferError::Samples {
                    model: m.name.to_string(),
                    message: format!("{e:#}"),
                }
            })
        })
        .collect()
}

/// Which sample of model `m` a request for index `k` means (indices wrap around).
pub(super) fn pick(samples: &Samples, m: usize, k: u32) -> Result<(usize, &[TensorData]), String> {
    let s = samples.get(m).filter(|s| !s.is_empty()).ok_or(NO_SAMPLES)?;
    let k = k as usize % s.len();
    Ok((k, &s[k]))
}

/// Worker side: the samples generated at start; a request's index picks one.
#[derive(Debug)]
pub(crate) struct Resolver {
    samples: Samples,
}

impl Resolver {
    pub(crate) fn open<'m>(
        models: impl IntoIterator<Item = ModelInputs<'m>>,
    ) -> Result<Self, TransferError> {
        Ok(Resolver {
            samples: generate(models)?,
        })
    }

    pub(crate) fn serve(
        &self,
        m: usize,
        inputs: &Inputs,
        run: impl FnOnce(Input<'_>) -> Result<Vec<TensorData>, String>,
    ) -> Result<Outputs, String> {
        match inputs {
            Inputs::Index(k) => {
                let (_, sample) = pick(&self.samples, m, *k)?;
                let views: Vec<TensorView<'_>> = sample.iter().map(TensorData::view).collect();
                run(Input::Views(&views)).map(Outputs::Inline)
            }
            Inputs::Batch { samples, axes } => {
                let picked: Vec<&[TensorData]> = samples
                    .iter()
                    .map(|&k| pick(&self.samples, m, k).map(|(_, s)| s))
                    .collect::<Result<_, _>>()?;
                let joined = super::join_samples(&picked, axes)?;
                let views: Vec<TensorView<'_>> = joined.iter().map(TensorData::view).collect();
                run(Input::Views(&views)).map(Outputs::Inline)
            }
            Inputs::Inline(tensors) => super::pipe::serve_inline(tensors, run),
            Inputs::Shm { .. } => Err(NO_ARENA.into()),
        }
    }
}
