//! Stage 5 of a model: the checks that no single stage can make, because they need what several
//! gave (the expected outputs and `[model.check]`, the inputs' files and the `batch` axis, every
//! input's shape and `samples`), and then the samples themselves, generated now so that a bad
//! input file is reported before any worker starts.

use super::At;
use super::dims::BoundBatch;
use super::test_data::TestInputs;
use crate::model::tensor::{Generator, TensorData};
use crate::scenario::error::Errors;
use crate::scenario::raw::RawTolerance;
use crate::scenario::samples::{MAX_SAMPLE_BYTES, MAX_SAMPLES_BYTES, generate_samples};
use crate::scenario::source::KeyPath;
use crate::scenario::spec::{CHECK_TOLERANCE, InputSpec, Tolerance};
use crate::scenario::values::check_tolerance;

/// `[model.check]`: the tolerances of the expected-output check, which needs expected outputs
/// (from the test data) to check.
pub(super) fn resolve_check(
    raw: Option<&RawTolerance>,
    test: Option<&TestInputs>,
    at: &At,
    e: &mut Errors,
) -> Tolerance {
    let Some(c) = raw else {
        return CHECK_TOLERANCE;
    };
    let ckey = at.key.key("check");
    if test.is_none_or(|t| t.expected.iter().all(Vec::is_empty)) {
        e.push(
            &ckey,
            format!("model `{}` has no expected outputs to check", at.name),
            "give it a `test_data` folder with output_K.pb files, or remove [model.check]",
        );
    }
    Tolerance {
        atol: check_tolerance(c.atol, CHECK_TOLERANCE.atol, &ckey.key("atol"), e),
        rtol: check_tolerance(c.rtol, CHECK_TOLERANCE.rtol, &ckey.key("rtol"), e),
    }
}

/// Whether the `batch` axis can rebind every input that holds the batch dim: an input read from a
/// file keeps the shape it was saved with (an error at its generator when not).
pub(super) fn files_keep_their_batch(
    inputs: &[InputSpec],
    batch: &BoundBatch,
    at: &At,
    e: &mut Errors,
) -> bool {
    let BoundBatch::Static { binding, .. } = batch else {
        return true;
    };
    for &(i, _) in &binding.at {
        if matches!(
            inputs[i].generator,
            Generator::File { .. } | Generator::Files { .. }
        ) {
            e.push(
                &at.key.key("inputs").key(&inputs[i].name).key("generator"),
                format!(
                    "input `{}` of model `{}` is read from a file, at the shape it was \
                     saved with, so `sweep.batch` cannot rebind its batch dim",
                    inputs[i].name, at.name
                ),
                "generate the input (`uniform`, `normal`, `int`, `const`), or remove `batch` \
                 from [sweep]",
            );
            return false;
        }
    }
    true
}

/// Whether the samples fit the memory guards before they are generated: one sample, and all
/// samples together. Errors point at the largest input, where the oversized dim most likely is.
pub(super) fn samples_fit_memory(
    inputs: &[InputSpec],
    samples: usize,
    at: &At,
    e: &mut Errors,
) -> bool {
    let (name, key) = (at.name, at.key);
    let input_bytes = |i: &InputSpec| {
        TensorData::checked_numel(&i.shape).and_then(|n| n.checked_mul(i.dtype.size()))
    };
    let largest = inputs
        .iter()
        .max_by_key(|i| input_bytes(i).unwrap_or(usize::MAX))
        .map_or(key.clone(), |i| key.key("inputs").key(&i.name).key("shape"));
    let sample_bytes = inputs.iter().try_fold(0usize, |acc, i| {
        TensorData::checked_numel(&i.shape)?
            .checked_mul(i.dtype.size())?
            .checked_add(acc)
    });
    let total = sample_bytes.and_then(|b| b.checked_mul(samples));
    match (sample_bytes, total) {
        (Some(b), _) if b > MAX_SAMPLE_BYTES => {
            e.push(
                &largest,
                format!(
                    "one sample of model `{name}` is {} MiB, more than the {} MiB limit",
                    b >> 20,
                    MAX_SAMPLE_BYTES >> 20
                ),
                "check the shapes and `dims`: a size may be far larger than meant",
            );
            false
        }
        (None, _) => {
            e.push(
                &largest,
                format!("the input shapes of model `{name}` are too large to address"),
                "check the shapes and `dims`",
            );
            false
        }
        (Some(b), t) if t.is_none_or(|t| t > MAX_SAMPLES_BYTES) => {
            e.push(
                &KeyPath::default().key("samples"),
                format!(
                    "{samples} samples of model `{name}` ({} bytes each) need more than the {} MiB limit",
                    b,
                    MAX_SAMPLES_BYTES >> 20
                ),
                "lower `samples`",
            );
            false
        }
        _ => true,
    }
}

/// The model's samples; an error at the failing input's generator (or at `test_data`, whose files
/// the inputs are) when one cannot be made.
pub(super) fn generate(
    inputs: &[InputSpec],
    samples: usize,
    from_test_data: bool,
    at: &At,
    e: &mut Errors,
) -> Option<Vec<Vec<TensorData>>> {
    match generate_samples(inputs, samples) {
        Ok(s) => Some(s),
        Err((i, err)) => {
            let ikey = if from_test_data {
                at.key.key("test_data")
            } else {
                at.key.key("inputs").key(&inputs[i].name).key("generator")
            };
            e.push(&ikey, format!("{err:#}"), "fix the generator or its file");
            None
        }
    }
}
