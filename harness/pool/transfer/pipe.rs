//! The `pipe` transfer: the tensor bytes ride inside the request and reply frames on the worker's
//! socket. Every byte is copied into the frame, through the kernel's socket buffer and out again:
//! the copy-through-a-queue baseline the other modes are measured against. It needs no setup on
//! either side, and every mode's worker also accepts inline inputs (`serve_inline`).

use super::{Input, Inputs, InputsRef, NO_ARENA, NO_SAMPLES, Outputs};
use crate::model::tensor::{TensorData, TensorView};

/// Parent side: nothing to prepare; the sample is encoded into the request frame.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stager;

impl Stager {
    pub(crate) fn stage<'s>(&self, sample: &'s [TensorData]) -> Staged<'s> {
        Staged(sample)
    }
}

/// The sample, borrowed until its frame is encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Staged<'s>(&'s [TensorData]);

impl Staged<'_> {
    pub(crate) fn inputs(&self) -> InputsRef<'_> {
        InputsRef::Inline(self.0)
    }
}

/// Worker side: views over the tensors decoded from the frame; outputs go back inline.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Resolver;

impl Resolver {
    pub(crate) fn serve(
        &self,
        inputs: &Inputs,
        run: impl FnOnce(Input<'_>) -> Result<Vec<TensorData>, String>,
    ) -> Result<Outputs, String> {
        match inputs {
            Inputs::Inline(tensors) => serve_inline(tensors, run),
            Inputs::Shm { .. } => Err(NO_ARENA.into()),
            Inputs::Index(_) | Inputs::Batch { .. } => Err(NO_SAMPLES.into()),
        }
    }
}

/// Runs `tensors` as they came in the frame and returns the outputs inline: how every mode serves
/// an inline request.
pub(super) fn serve_inline(
    tensors: &[TensorData],
    run: impl FnOnce(Input<'_>) -> Result<Vec<TensorData>, String>,
) -> Result<Outputs, String> {
    let views: Vec<TensorView<'_>> = tensors.iter().map(TensorData::view).collect();
    run(Input::Views(&views)).map(Outputs::Inline)
}
