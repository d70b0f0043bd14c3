//! `bench run`'s flags bound to the models they aim at: each model's dims (`--dims`), input
//! shapes (`--shape`) and input values (`--input`). A flag that reaches no model is a problem that
//! names the flag and what it could have aimed at; every problem is collected, so the user sees
//! them all at once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::model::onnx::{Dim, ModelInfo};

use super::flags::{InputValue, Scoped, aim};
use super::models::{named_dims, settable};

/// Each model's flags, by model index.
pub(super) struct Bound {
    /// `--dims`: named dim to size.
    pub(super) dims: Vec<BTreeMap<String, i64>>,
    /// `--shape`: input to its shape, with the flag's text for messages.
    pub(super) shapes: Vec<BTreeMap<String, (Vec<i64>, String)>>,
    /// `--input`: input to its value (a file made absolute).
    pub(super) values: Vec<BTreeMap<String, InputValue>>,
}

impl Bound {
    /// Binds every flag to the models it aims at; one that reaches no model adds a problem.
    pub(super) fn of(
        spec: &super::RunSpec,
        names: &[String],
        infos: &[(PathBuf, ModelInfo)],
        problems: &mut Vec<String>,
    ) -> Bound {
        Bound {
            dims: bind_dims(&spec.dims, names, infos, problems),
            shapes: bind_shapes(&spec.shapes, names, infos, problems),
            values: bind_values(&spec.inputs, names, infos, problems),
        }
    }

    /// Model `m`'s named dims as the flags bind them: `--dims`, and the sizes a `--shape` gives
    /// the named dims at its positions, as `scenario::load` reads them. A shape of the wrong rank,
    /// or one that contradicts `--dims`, adds a problem; `many` says there are other models to aim
    /// the flag away from.
    pub(super) fn dims_of(
        &self,
        m: usize,
        info: &ModelInfo,
        name: &str,
        many: bool,
        problems: &mut Vec<String>,
    ) -> BTreeMap<String, i64> {
        let mut bound = self.dims[m].clone();
        for io in info.inputs.iter().filter(|i| i.rank_known) {
            let Some((shape, text)) = self.shapes[m].get(&io.name) else {
                continue;
            };
            if shape.len() != io.dims.len() {
                problems.push(format!(
                    "--shape {text}: input `{}` of model `{name}` has rank {} {}; give {} sizes{}",
                    io.name,
                    io.dims.len(),
                    io.shape_string(),
                    io.dims.len(),
                    if many {
                        format!(
                            ", or aim the flag at one model: --shape MODEL:{}=...",
                            io.name
                        )
                    } else {
                        String::new()
                    }
                ));
            }
            for (pos, (d, &size)) in io.dims.iter().zip(shape).enumerate() {
                if let Dim::Named(n) = d {
                    if let Some(&v) = self.dims[m].get(n)
                        && v != size
                    {
                        problems.push(format!(
                            "--dims {n}={v} contradicts --shape {text}, which gives `{n}` \
                             (dim {pos} of input `{}`) the size {size}; give it one size",
                            io.name
                        ));
                    }
                    bound.entry(n.clone()).or_insert(size);
                }
            }
        }
        bound
    }
}

/// `--dims`: each model's named dims, from the flags that aim at a dim it has.
fn bind_dims(
    flags: &[Scoped<i64>],
    names: &[String],
    infos: &[(PathBuf, ModelInfo)],
    problems: &mut Vec<String>,
) -> Vec<BTreeMap<String, i64>> {
    let mut dims: Vec<BTreeMap<String, i64>> = vec![BTreeMap::new(); infos.len()];
    for b in flags {
        let (only, name) = aim(&b.target, names);
        let mut hit = false;
        for (m, (_, info)) in infos.iter().enumerate() {
            if only.is_none_or(|o| o == m) && named_dims(info).iter().any(|n| n == name) {
                dims[m].insert(name.to_string(), b.value);
                hit = true;
            }
        }
        if !hit {
            let known: Vec<String> = infos
                .iter()
                .zip(names)
                .filter(|(_, n)| only.is_none_or(|o| names[o] == **n))
                .map(|((_, info), n)| {
                    let d = named_dims(info);
                    format!(
                        "{n}: {}",
                        if d.is_empty() {
                            "none".into()
                        } else {
                            d.join(", ")
                        }
                    )
                })
                .collect();
            problems.push(format!(
                "--dims {}: no model has a dynamic dim named `{name}`; the named dims are {}. \
                 Unnamed dims (-1, ?) are set with --shape INPUT=1x3x224x224 instead",
                b.text,
                known.join("; ")
            ));
        }
    }
    dims
}

/// `--shape`: each model's input shapes, with the flag's text for messages.
fn bind_shapes(
    flags: &[Scoped<Vec<i64>>],
    names: &[String],
    infos: &[(PathBuf, ModelInfo)],
    problems: &mut Vec<String>,
) -> Vec<BTreeMap<String, (Vec<i64>, String)>> {
    let mut shapes: Vec<BTreeMap<String, (Vec<i64>, String)>> = vec![BTreeMap::new(); infos.len()];
    for b in flags {
        let name = aim(&b.target, names).1.to_string();
        match aimed_inputs(&b.target, names, infos) {
            Ok(hits) => hits.into_iter().for_each(|m| {
                drop(shapes[m].insert(name.clone(), (b.value.clone(), b.text.clone())))
            }),
            Err(known) => problems.push(no_input("--shape", &b.text, &name, &known)),
        }
    }
    shapes
}

/// `--input`: each model's input values; a file must exist, and is made absolute.
fn bind_values(
    flags: &[Scoped<InputValue>],
    names: &[String],
    infos: &[(PathBuf, ModelInfo)],
    problems: &mut Vec<String>,
) -> Vec<BTreeMap<String, InputValue>> {
    let mut values: Vec<BTreeMap<String, InputValue>> = vec![BTreeMap::new(); infos.len()];
    for b in flags {
        let name = aim(&b.target, names).1.to_string();
        let value = match &b.value {
            InputValue::File(p) if !p.is_file() => {
                problems.push(format!(
                    "--input {}: no such file {}; give a .npy, .npz or .pb file of the input's dtype and shape",
                    b.text,
                    p.display()
                ));
                continue;
            }
            InputValue::File(p) => InputValue::File(p.canonicalize().unwrap_or_else(|_| p.clone())),
            v => v.clone(),
        };
        match aimed_inputs(&b.target, names, infos) {
            Ok(hits) => hits
                .into_iter()
                .for_each(|m| drop(values[m].insert(name.clone(), value.clone()))),
            Err(known) => problems.push(no_input("--input", &b.text, &name, &known)),
        }
    }
    values
}

/// The models an input flag aims at, or (none) the inputs of those it could have aimed at.
fn aimed_inputs(
    target: &str,
    names: &[String],
    infos: &[(PathBuf, ModelInfo)],
) -> Result<Vec<usize>, String> {
    let (only, name) = aim(target, names);
    let hits: Vec<usize> = infos
        .iter()
        .enumerate()
        .filter(|(m, (_, info))| {
            only.is_none_or(|o| o == *m) && settable(info).any(|i| i.name == name)
        })
        .map(|(m, _)| m)
        .collect();
    if !hits.is_empty() {
        return Ok(hits);
    }
    let known: Vec<String> = infos
        .iter()
        .zip(names)
        .enumerate()
        .filter(|(m, _)| only.is_none_or(|o| o == *m))
        .map(|(_, ((_, info), n))| {
            let i: Vec<&str> = info.inputs.iter().map(|i| i.name.as_str()).collect();
            format!("{n}: {}", i.join(", "))
        })
        .collect();
    Err(known.join("; "))
}

fn no_input(flag: &str, text: &str, name: &str, known: &str) -> String {
    format!(
        "{flag} {text}: no model has an input `{name}`; the inputs are {known} \
         (`bench inspect MODEL.onnx` lists them; MODEL:INPUT=... aims at one model)"
    )
}
