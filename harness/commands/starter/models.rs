//! What the starters read from a model file: its signature, the names it gets, the dims left to
//! bind, the inputs a test-data folder gives, and the generator each input is proposed.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::model::onnx::{self, Dim, IoInfo, ModelInfo};
use crate::model::tensor::DType;

/// The inputs that a test-data folder gives a model, as `scenario::load` matches its files: by
/// the tensor's name when it has one, else by position among the graph inputs. Read from the
/// first set; the scenario checks that every set agrees.
pub(super) fn test_data_inputs(dir: &Path, info: &ModelInfo) -> anyhow::Result<Vec<String>> {
    let sets = crate::model::testdata::read_test_data(dir)?;
    Ok(sets
        .first()
        .map(|set| {
            set.inputs
                .iter()
                .enumerate()
                .filter_map(|(k, (_, t))| {
                    if t.name.is_empty() {
                        info.inputs.get(k).map(|i| i.name.clone())
                    } else {
                        Some(t.name.clone())
                    }
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The named dims of `info` that only inputs outside `given` use: the ones left to bind when a
/// test-data folder gives (and so shapes) the inputs in `given`.
pub(super) fn dims_left(info: &ModelInfo, given: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for io in info.inputs.iter().filter(|i| !given.contains(&i.name)) {
        for d in &io.dims {
            if let Dim::Named(n) = d
                && !names.contains(n)
            {
                names.push(n.clone());
            }
        }
    }
    names
}

/// Whether a dim's name says it is a batch: `batch`, `batch_size`, `N`, `bs` and the like. Such a
/// dim gets 1 (one sample per request) when nothing binds it.
pub(crate) fn batch_like(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("batch") || matches!(n.as_str(), "n" | "b" | "bs")
}

/// A model name from a file stem: the characters a scenario allows, others as `_`.
fn stem_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "model".into()
    } else {
        name
    }
}

/// Model names from the files' stems, made unique by a suffix (`mlp`, `mlp_2`).
pub(crate) fn model_names(paths: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for p in paths {
        let base = stem_name(p);
        let mut name = base.clone();
        let mut k = 2;
        while names.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        names.push(name);
    }
    names
}

/// The proposed generator of an input, as TOML, with what to check.
pub(super) fn proposed_generator(io: &IoInfo, dtype: DType) -> (String, Option<String>) {
    let lower = io.name.to_ascii_lowercase();
    if dtype == DType::Str {
        (
            r#"{ kind = "strings", values = ["hello", "world"] }"#.into(),
            Some("each element drawn from these; put in the texts you serve".into()),
        )
    } else if dtype == DType::Bool {
        (
            r#"{ kind = "const", value = true }"#.into(),
            Some("a mask that keeps everything; `uniform` gives random true/false".into()),
        )
    } else if dtype.is_float() {
        (
            r#"{ kind = "uniform", low = 0.0, high = 1.0 }"#.into(),
            None,
        )
    } else if lower.contains("mask") {
        (
            r#"{ kind = "const", value = 1 }"#.into(),
            Some("a mask that keeps everything".into()),
        )
    } else {
        (
            r#"{ kind = "int", low = 0, high = 2 }"#.into(),
            Some("ids: raise `high` (exclusive) to the vocabulary or class count".into()),
        )
    }
}

pub(super) fn read_info(path: &Path, what: &str) -> anyhow::Result<(PathBuf, ModelInfo)> {
    // The same words as `validate` (`scenario::model::signature::read`) for the same mistake.
    if path.is_dir() {
        anyhow::bail!(
            "{what} {} is a folder, not an .onnx file; point at the .onnx file inside it (its external weights, if any, stay beside it)",
            path.display()
        );
    }
    if !path.is_file() {
        anyhow::bail!(
            "{what} {}: no such file; give the path of an .onnx file (`bench inspect FILE` shows what bench reads)",
            path.display()
        );
    }
    let info = onnx::read_model_info(path)
        .with_context(|| format!("{what} {}: re-export it, or check the file", path.display()))?;
    let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    Ok((abs, info))
}

/// The inputs a scenario may set: graph inputs, and weights listed as inputs (fed only if set).
pub(super) fn settable(info: &ModelInfo) -> impl Iterator<Item = &IoInfo> {
    info.inputs.iter().chain(&info.initializer_inputs)
}

pub(super) fn named_dims(info: &ModelInfo) -> Vec<String> {
    dims_left(info, &[])
}

pub(super) fn warnings_of(info: &ModelInfo) -> Vec<String> {
    let mut w = Vec::new();
    for (side, list) in [("input", &info.inputs), ("output", &info.outputs)] {
        for io in list {
            if io.kind != onnx::ValueKind::Tensor {
                w.push(format!(
                    "{side} `{}` is {}: bench runs models whose inputs and outputs are tensors",
                    io.name,
                    io.a_kind()
                ));
            } else if side == "input"
                && let Err(t) = &io.dtype
            {
                w.push(format!(
                    "input `{}` has type {t}, which bench cannot generate",
                    io.name
                ));
            }
        }
    }
    w
}
