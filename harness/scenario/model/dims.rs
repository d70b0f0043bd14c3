//! Stage 2 of a model: binding its dims. `dims` names the model's dynamic dims; the batch dim is
//! found for the `batch` axis and `[batching]` (and bound for the first); a shape given by
//! position (in `inputs` or by the test data) binds the named dims it holds, over `dims`.
//!
//! The result is every named dim's size, for the inputs stage to build each shape from.

use std::collections::{BTreeMap, HashSet};

use super::test_data::TestInputs;
use super::{At, BatchUse};
use crate::model::onnx::{Dim, IoInfo};
use crate::scenario::batch::{self, BatchBinding, BatchDim};
use crate::scenario::error::Errors;
use crate::scenario::parse::did_you_mean;
use crate::scenario::raw::{RawBatchDim, RawInput, RawModel};
use crate::scenario::source::KeyPath;

/// `dims`: each entry names a dynamic dim of the model's inputs and binds it to a size from 1.
pub(super) fn check_dims(
    graph_inputs: &[&IoInfo],
    dims: &BTreeMap<String, i64>,
    at: &At,
    e: &mut Errors,
) {
    let (name, key) = (at.name, at.key);
    let named: HashSet<&str> = named_dims(graph_inputs).into_iter().collect();
    for (d, &v) in dims {
        if !named.contains(d.as_str()) {
            let mut list: Vec<_> = named.iter().copied().collect();
            list.sort();
            e.push(
                &key.key("dims").key(d),
                format!("model `{name}` has no dynamic dim named `{d}`"),
                if list.is_empty() {
                    "this model has no named dynamic dims; remove the entry".to_string()
                } else {
                    format!(
                        "{}its named dims are: {}",
                        did_you_mean(d, &list),
                        list.join(", ")
                    )
                },
            );
        } else if v < 1 {
            e.push(
                &key.key("dims").key(d),
                format!("dim `{d}` must be at least 1, got {v}"),
                "bind it to a positive size, e.g. `batch = 1`",
            );
        }
    }
}

/// The names of the dynamic dims of `inputs`, in input order, with repeats.
fn named_dims<'a>(inputs: &[&'a IoInfo]) -> Vec<&'a str> {
    inputs
        .iter()
        .flat_map(|i| &i.dims)
        .filter_map(|d| match d {
            Dim::Named(n) => Some(n.as_str()),
            _ => None,
        })
        .collect()
}

/// What the batch uses of the scenario made of the model's batch dim.
pub(super) enum BoundBatch {
    /// Neither the `batch` axis nor `[batching]`.
    Off,
    /// The `batch` axis: bound to `size` at `binding`, which binds the dims `names`.
    Static {
        size: usize,
        binding: BatchBinding,
        names: Vec<String>,
    },
    /// `[batching]`: found at `binding`, bound to nothing.
    Dynamic(BatchBinding),
}

impl BoundBatch {
    /// Where the batch dim is, for the resolved model.
    pub(super) fn binding(self) -> Option<BatchBinding> {
        match self {
            BoundBatch::Off => None,
            BoundBatch::Static { binding, .. } | BoundBatch::Dynamic(binding) => Some(binding),
        }
    }
}

/// The model's batch dim, found for both batch uses and bound for the `batch` axis (to its first
/// value: each point rebinds it to its own), over `dims` and over the shapes given by position.
/// `None` after an error when the model has no such dim, or its test data fixes the batch.
pub(super) fn bind_batch(
    m: &RawModel,
    graph_inputs: &[&IoInfo],
    batch_use: BatchUse,
    at: &At,
    e: &mut Errors,
) -> Option<BoundBatch> {
    let (name, key) = (at.name, at.key);
    let batch_dim = resolve_batch_dim(m.batch_dim.as_ref(), &key.key("batch_dim"), e);
    let size = match batch_use {
        BatchUse::Off => return Some(BoundBatch::Off),
        BatchUse::Static(b) => b,
        BatchUse::Dynamic => {
            let (binding, _) =
                batch_places(graph_inputs, &batch_dim, at, batch_key(m, batch_use), e)?;
            return Some(BoundBatch::Dynamic(binding));
        }
    };
    let (binding, names) = batch_places(graph_inputs, &batch_dim, at, batch_key(m, batch_use), e)?;
    if m.test_data.is_some() {
        e.push(
            &key.key("test_data"),
            format!(
                "model `{name}` takes its inputs and expected outputs from `test_data`, \
                 at the batch size they were saved with, so `sweep.batch` cannot rebind them"
            ),
            "remove `test_data` from this model, or `batch` from [sweep]",
        );
        return None;
    }
    Some(BoundBatch::Static {
        size,
        binding,
        names,
    })
}

/// The `batch_dim` key: a dim name or an input axis index (the default: the dim named `batch`).
fn resolve_batch_dim(raw: Option<&RawBatchDim>, key: &KeyPath, e: &mut Errors) -> BatchDim {
    match raw {
        None => BatchDim::default(),
        Some(RawBatchDim::Name(n)) if !n.is_empty() => BatchDim::Name(n.clone()),
        Some(RawBatchDim::Axis(a)) if *a >= 0 => BatchDim::Axis(*a as usize),
        Some(other) => {
            e.push(
                key,
                format!("`batch_dim` must be a dim name or an axis index from 0, got {other:?}"),
                "e.g. `batch_dim = \"N\"` or `batch_dim = 0`",
            );
            BatchDim::default()
        }
    }
}

/// Where the batch uses bind the model: the places of its batch dim, and the dim names that binds.
/// An error naming the model's dynamic dims when it has no such dim (at `batch_dim` when `set`).
/// Which key in the file asks for the batch dim, so that a problem with it names a key the user
/// wrote (with its line): the model's `batch_dim` when set, else `[batching]` or `sweep.batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchKey {
    BatchDim,
    Batching,
    SweepBatch,
}

fn batch_key(m: &RawModel, batch_use: BatchUse) -> BatchKey {
    match batch_use {
        _ if m.batch_dim.is_some() => BatchKey::BatchDim,
        BatchUse::Dynamic => BatchKey::Batching,
        _ => BatchKey::SweepBatch,
    }
}

fn batch_places(
    graph_inputs: &[&IoInfo],
    dim: &BatchDim,
    at: &At,
    asked_by: BatchKey,
    e: &mut Errors,
) -> Option<(BatchBinding, Vec<String>)> {
    let (binding, names) = batch::find(graph_inputs, dim);
    if !binding.at.is_empty() {
        return Some((binding, names));
    }
    let mut named = named_dims(graph_inputs);
    named.sort();
    named.dedup();
    let hint = match dim {
        BatchDim::Name(n) if !named.is_empty() => format!(
            "{}set `batch_dim` in this [[model]] to its batch dim: one of {} (or an input axis \
             index, e.g. `batch_dim = 0`), or leave the model out of a scenario that batches",
            did_you_mean(n, &named),
            named.join(", ")
        ),
        _ => "this model has no dynamic dim to bind (its inputs' shapes are fixed); leave it out \
              of a scenario that batches, or re-export it with a dynamic batch dim"
            .to_string(),
    };
    let (key, what) = match asked_by {
        BatchKey::BatchDim => (
            at.key.key("batch_dim"),
            "`sweep.batch` and `[batching]` use",
        ),
        BatchKey::Batching => (
            KeyPath::default().key("batching"),
            "`[batching]` joins requests along",
        ),
        BatchKey::SweepBatch => (
            KeyPath::default().key("sweep").key("batch"),
            "`sweep.batch` binds",
        ),
    };
    e.push(
        &key,
        format!(
            "{what} {dim} of each model, and model `{}` has none",
            at.name
        ),
        hint,
    );
    None
}

/// The shapes given by position: in `inputs`, then by the test data's files, with the batch dim
/// of the `batch` axis rebound in each.
pub(super) fn given_shapes(
    given: &BTreeMap<String, RawInput>,
    test: Option<&TestInputs>,
    batch: &BoundBatch,
    graph_inputs: &[&IoInfo],
) -> BTreeMap<String, Vec<i64>> {
    let mut shapes: BTreeMap<String, Vec<i64>> = given
        .iter()
        .filter_map(|(n, r)| Some((n.clone(), r.shape.clone()?)))
        .collect();
    if let Some(t) = test {
        shapes.extend(t.inputs.iter().map(|(n, (_, s, _))| (n.clone(), s.clone())));
    }
    if let BoundBatch::Static { size, binding, .. } = batch {
        for &(i, pos) in &binding.at {
            if let Some(d) = shapes
                .get_mut(&graph_inputs[i].name)
                .and_then(|s| s.get_mut(pos))
            {
                *d = *size as i64;
            }
        }
    }
    shapes
}

/// Every named dim's size: from `dims`, then from the shapes given by position (a shape wins over
/// `dims`, and binds the same name in the inputs that have no shape), then the batch axis's.
/// `None` after an error when two shapes give one named dim two sizes.
pub(super) fn bind_named_dims(
    graph_inputs: &[&IoInfo],
    given: &BTreeMap<String, Vec<i64>>,
    dims: &BTreeMap<String, i64>,
    batch: &BoundBatch,
    at: &At,
    e: &mut Errors,
) -> Option<BTreeMap<String, i64>> {
    let mut from_shapes: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for io in graph_inputs.iter().filter(|io| io.rank_known) {
        let Some(given) = given.get(&io.name) else {
            continue;
        };
        for (d, &size) in io.dims.iter().zip(given) {
            let Dim::Named(n) = d else { continue };
            match from_shapes.get(n) {
                Some((v, other)) if *v != size && size >= 1 => {
                    e.push(
                        &at.key.key("inputs").key(&io.name).key("shape"),
                        format!(
                            "dim `{n}` is {size} in input `{}` but {v} in input `{other}`; a named dim has one size per model",
                            io.name
                        ),
                        format!("use {v} for `{n}` in both shapes"),
                    );
                    return None;
                }
                Some(_) => {}
                None => {
                    from_shapes.insert(n.clone(), (size, io.name.clone()));
                }
            }
        }
    }
    let mut dims = dims.clone();
    dims.extend(from_shapes.into_iter().map(|(n, (v, _))| (n, v)));
    if let BoundBatch::Static { size, names, .. } = batch {
        for n in names {
            dims.insert(n.clone(), *size as i64);
        }
    }
    Some(dims)
}
