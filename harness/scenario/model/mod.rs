//! Resolving one `[[model]]` against its ONNX file, in stages, each in its own file:
//!
//! 1. read the model (`signature.rs`): the path, the signature, and what bench can run of it;
//! 2. bind the dims (`dims.rs`): `dims`, the batch dim, and the named dims the shapes bind;
//! 3. test data (`test_data.rs`): a test-data folder's inputs and expected outputs;
//! 4. inputs and generators (`inputs.rs`, `generator.rs`): each input's type, shape and values;
//! 5. cross-checks (`checks.rs`): what no single stage can see (the expected-output check, files
//!    at a swept batch, the memory the samples take), then the samples themselves.
//!
//! A synthetic model (no ONNX file) takes its own path (`synthetic.rs`). Each stage pushes its
//! problems; a problem that leaves nothing to check further ends the model with `None`.

mod checks;
mod dims;
mod generator;
mod inputs;
mod signature;

pub(crate) use inputs::random_scalars_notice;
mod synthetic;
mod test_data;

use std::path::Path;

use super::error::Errors;
use super::raw::RawModel;
use super::source::KeyPath;
use super::spec::{ModelSource, ModelSpec};

/// What the scenario does with each model's batch dim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BatchUse {
    Off,
    /// `[sweep] batch`: bound to this size (its first value; each point rebinds its own).
    Static(usize),
    /// `[batching]`: found, so requests can be joined along it, and bound to nothing.
    Dynamic,
}

/// The model being resolved, as every stage names it: its name in messages, its key (`model[i]`)
/// for lines, the folder its paths are relative to, and the scenario's seed for its inputs.
struct At<'a> {
    name: &'a str,
    key: &'a KeyPath,
    dir: &'a Path,
    seed: u64,
}

pub(super) fn resolve_model(
    m: RawModel,
    key: &KeyPath,
    dir: &Path,
    seed: u64,
    samples: usize,
    batch_use: BatchUse,
    e: &mut Errors,
) -> Option<ModelSpec> {
    let name = model_name(m.name.as_deref(), key, e)?;
    let at = At {
        name: &name,
        key,
        dir,
        seed,
    };
    if m.synthetic.is_some() {
        synthetic::resolve(m, &at, samples, batch_use, e)
    } else {
        resolve_onnx(m, &at, samples, batch_use, e)
    }
}

/// Model names label rows, hlog tags and file names: letters and digits of any script, `_`, `-`
/// and `.` (no spaces, commas or slashes).
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// The model's `name`, which every later message uses.
fn model_name(name: Option<&str>, key: &KeyPath, e: &mut Errors) -> Option<String> {
    match name {
        Some(n) if valid_name(n) => Some(n.to_string()),
        Some(n) => {
            e.push(
                &key.key("name"),
                format!("model name `{n}` may only use letters, digits, `_`, `-` and `.`"),
                "rename it, e.g. `resnet_small`",
            );
            None
        }
        None => {
            e.push(
                key,
                "this [[model]] has no `name`",
                "add `name = \"...\"`: it labels the model's rows in the results",
            );
            None
        }
    }
}

/// An ONNX model, stage by stage (see the module's header).
fn resolve_onnx(
    m: RawModel,
    at: &At,
    samples: usize,
    batch_use: BatchUse,
    e: &mut Errors,
) -> Option<ModelSpec> {
    let (path, info) = signature::read(m.path.as_deref(), at, e)?;
    let graph_inputs = signature::graph_inputs(&info, &m.inputs);
    let all_tensors = signature::check_types(&info, at, e);
    signature::check_given_inputs(&info, &graph_inputs, &m.inputs, at, e);

    dims::check_dims(&graph_inputs, &m.dims, at, e);
    let batch = dims::bind_batch(&m, &graph_inputs, batch_use, at, e)?;

    // A test-data folder gives every input its files, and so its shape, and the expected outputs.
    // The test data of a model refused above or below for its types would only add noise (a
    // sequence's file is not a tensor's).
    let test = match &m.test_data {
        Some(_) if !all_tensors => None,
        None => None,
        Some(rel) => Some(test_data::resolve(
            &at.dir.join(rel),
            &info,
            &graph_inputs,
            &m.inputs,
            at,
            e,
        )?),
    };
    let given = dims::given_shapes(&m.inputs, test.as_ref(), &batch, &graph_inputs);
    let check = checks::resolve_check(m.check.as_ref(), test.as_ref(), at, e);
    let dims = dims::bind_named_dims(&graph_inputs, &given, &m.dims, &batch, at, e)?;

    let inputs = inputs::resolve_inputs(
        &graph_inputs,
        &m.inputs,
        &given,
        &dims,
        test.as_ref(),
        at,
        e,
    )?;

    if !checks::files_keep_their_batch(&inputs, &batch, at, e)
        || !checks::samples_fit_memory(&inputs, samples, at, e)
    {
        return None;
    }
    let samples = checks::generate(&inputs, samples, test.is_some(), at, e)?;
    Some(ModelSpec {
        name: at.name.to_string(),
        source: ModelSource::Onnx(path),
        inputs,
        outputs: info.outputs,
        declared_inputs: info.inputs,
        samples,
        torch: None,
        parity: Default::default(),
        expected: test.map(|t| t.expected).unwrap_or_default(),
        check,
        batch: batch.binding(),
    })
}
