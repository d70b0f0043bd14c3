//! Stage 1 of a model: reading its ONNX file. The path must name an `.onnx` file; its signature
//! (`onnx::read_model_info`, no runtime needed) says the inputs and outputs, and then what bench
//! can run of it: tensors of the types it reads, and only inputs the model has.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::At;
use crate::model::onnx::{self, IoInfo, ModelInfo};
use crate::scenario::error::Errors;
use crate::scenario::parse::did_you_mean;
use crate::scenario::raw::RawInput;

/// The model's file (made absolute) and its signature; `None` after an error when there is no
/// readable `.onnx` file at `path`.
pub(super) fn read(path: Option<&str>, at: &At, e: &mut Errors) -> Option<(PathBuf, ModelInfo)> {
    let (name, key) = (at.name, at.key);
    let Some(rel) = path else {
        e.push(
            key,
            format!("model `{name}` has no `path`"),
            "add `path = \"models/onnx/NAME.onnx\"` (relative to the scenario file)",
        );
        return None;
    };
    let path = at.dir.join(rel);
    if path.is_dir() {
        e.push(
            &key.key("path"),
            format!("model path {} is a folder, not an .onnx file", path.display()),
            "point `path` at the .onnx file inside it (its external weights, if any, stay beside it)",
        );
        return None;
    }
    if !path.is_file() {
        e.push(
            &key.key("path"),
            format!("model file {} does not exist", path.display()),
            "paths are relative to the scenario file's folder; run `bench inspect FILE` to check a model",
        );
        return None;
    }
    let info = match onnx::read_model_info(&path) {
        Ok(i) => i,
        Err(err) => {
            e.push(
                &key.key("path"),
                err.to_string(),
                "re-export the model, or point `path` at a complete .onnx file; `bench inspect FILE` shows what bench reads",
            );
            return None;
        }
    };
    if !external_data_present(&path, &info, at, e) {
        return None;
    }
    let path = path.canonicalize().unwrap_or(path);
    Some((path, info))
}

/// Whether every file the model's weights are kept in (`external_data`'s `location`, relative
/// to the model's folder) is there. ONNX Runtime would only say so when a worker loads the model,
/// in the middle of a sweep; one problem per missing file, naming a tensor it holds.
fn external_data_present(path: &Path, info: &ModelInfo, at: &At, e: &mut Errors) -> bool {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut missing: Vec<(&str, &str, usize)> = Vec::new();
    for (tensor, location) in &info.external_data {
        if dir.join(location).is_file() {
            continue;
        }
        match missing.iter_mut().find(|m| m.1 == location) {
            Some(m) => m.2 += 1,
            None => missing.push((tensor, location, 1)),
        }
    }
    for (tensor, location, n) in &missing {
        let others = match n {
            1 => String::new(),
            n => format!(" (and {} more tensor(s))", n - 1),
        };
        e.push(
            &at.key.key("path"),
            format!(
                "model `{}` keeps the data of tensor `{tensor}`{others} in `{location}`, and {} \
                 does not exist",
                at.name,
                dir.join(location).display()
            ),
            "copy the model with its external-data file(s), keeping them beside the .onnx file \
             as it names them",
        );
    }
    missing.is_empty()
}

/// The inputs a request sets: the graph's inputs, then the graph inputs that are also
/// initializers and that the scenario sets (the others keep their initializer).
pub(super) fn graph_inputs<'a>(
    info: &'a ModelInfo,
    given: &BTreeMap<String, RawInput>,
) -> Vec<&'a IoInfo> {
    info.inputs
        .iter()
        .chain(
            info.initializer_inputs
                .iter()
                .filter(|i| given.contains_key(&i.name)),
        )
        .collect()
}

/// Whether every input and output is a tensor of a type bench reads. An output of another type,
/// and an input or output that is not a tensor, is an error here; an input of a type bench cannot
/// generate is one later, with its generator.
pub(super) fn check_types(info: &ModelInfo, at: &At, e: &mut Errors) -> bool {
    let (name, key) = (at.name, at.key);
    let mut all_tensors = true;
    for io in info.inputs.iter().chain(&info.outputs) {
        if let Err(t) = &io.dtype {
            // Inputs of such a type are refused below, with the generators.
            all_tensors = false;
            if io.kind == onnx::ValueKind::Tensor && info.outputs.contains(io) {
                e.push(
                    &key.key("path"),
                    format!(
                        "output `{}` of model `{name}` has type {t}, which bench cannot read",
                        io.name
                    ),
                    "bench supports float8/16/32/64, bfloat16, (u)int8-64, bool and string tensors",
                );
            }
        }
        if io.kind != onnx::ValueKind::Tensor {
            all_tensors = false;
            let side = if info.inputs.contains(io) {
                "input"
            } else {
                "output"
            };
            e.push(
                &key.key("path"),
                format!(
                    "{side} `{}` of model `{name}` is {}; bench runs models whose inputs and outputs are tensors",
                    io.name,
                    io.a_kind()
                ),
                "export the model with tensor inputs and outputs (e.g. pad a list into one tensor), or leave it out",
            );
        }
    }
    all_tensors
}

/// The scenario's `inputs` entries against the signature: each names an input the model has, and
/// none sets a weight that ONNX Runtime does not let a request set (in files of IR version < 4).
pub(super) fn check_given_inputs(
    info: &ModelInfo,
    graph_inputs: &[&IoInfo],
    given: &BTreeMap<String, RawInput>,
    at: &At,
    e: &mut Errors,
) {
    let (name, key) = (at.name, at.key);
    if info.ir_version < 4 {
        for io in info
            .initializer_inputs
            .iter()
            .filter(|i| given.contains_key(&i.name))
        {
            e.push(
                &key.key("inputs").key(&io.name),
                format!(
                    "input `{}` of model `{name}` is a weight (an initializer) of an IR version {} file, which ONNX Runtime does not let a request set",
                    io.name, info.ir_version
                ),
                "remove the entry: the model uses its stored weight",
            );
        }
    }
    let model_inputs: HashSet<&str> = graph_inputs.iter().map(|i| i.name.as_str()).collect();
    for k in given.keys() {
        if !model_inputs.contains(k.as_str()) {
            let list: Vec<&str> = info.inputs.iter().map(|i| i.name.as_str()).collect();
            e.push(
                &key.key("inputs").key(k),
                format!("model `{name}` has no input `{k}`"),
                format!(
                    "{}its inputs are: {}",
                    did_you_mean(k, &list),
                    list.join(", ")
                ),
            );
        }
    }
}
