//! Stage 4 of a model: its inputs, each with its element type, its shape (given by position, or
//! the model's dims with the named ones bound) and its generator (from the scenario, or the test
//! data's files). Every dim of a resolved shape is a size; a dim left dynamic is an error that
//! says how to bind it.

use std::collections::BTreeMap;

use super::At;
use super::generator::resolve_generator;
use super::test_data::TestInputs;
use crate::model::onnx::{self, Dim, IoInfo};
use crate::model::tensor::{DType, Generator};
use crate::scenario::error::Errors;
use crate::scenario::raw::RawInput;
use crate::scenario::samples::input_seed;
use crate::scenario::source::KeyPath;
use crate::scenario::spec::{InputSpec, ModelSpec};

/// Every input of the model, in the order of `graph_inputs`; `None` when one of them has an error.
pub(super) fn resolve_inputs(
    graph_inputs: &[&IoInfo],
    raw: &BTreeMap<String, RawInput>,
    given_shapes: &BTreeMap<String, Vec<i64>>,
    dims: &BTreeMap<String, i64>,
    test: Option<&TestInputs>,
    at: &At,
    e: &mut Errors,
) -> Option<Vec<InputSpec>> {
    let name = at.name;
    let mut inputs = Vec::new();
    for &io in graph_inputs {
        let ikey = at.key.key("inputs").key(&io.name);
        let raw_input = raw.get(&io.name);
        let dtype = match io.dtype {
            Ok(d) => d,
            // A sequence, map or optional input is refused above, for its kind.
            Err(_) if io.kind != onnx::ValueKind::Tensor => continue,
            Err(ref t) => {
                e.push(
                    &ikey,
                    format!(
                        "input `{}` of model `{name}` has type {t}, which bench cannot generate",
                        io.name
                    ),
                    "bench supports float8/16/32/64, bfloat16, (u)int8-64, bool and string inputs",
                );
                continue;
            }
        };
        let shape = resolve_shape(
            io,
            given_shapes.get(&io.name).map(Vec::as_slice),
            dims,
            name,
            &ikey,
            e,
        );
        let generator = match test.and_then(|t| t.inputs.get(&io.name)) {
            Some((_, _, paths)) => Some(Generator::Files {
                paths: paths.clone(),
            }),
            None => resolve_generator(
                raw_input.and_then(|r| r.generator.clone()),
                dtype,
                at.dir,
                &ikey.key("generator"),
                e,
            ),
        };
        if let (Some(shape), Some(generator)) = (shape, generator) {
            inputs.push(InputSpec {
                seed: input_seed(at.seed, name, &io.name),
                name: io.name.clone(),
                dtype,
                shape,
                generator,
            });
        }
    }
    (inputs.len() == graph_inputs.len()).then_some(inputs)
}

/// The shape of one input: the user's shape by position when given (checked only against fixed
/// dims), else the model's dims with named ones bound from `dims`. Every dim of the result is a
/// size of 0 or more; a dim still dynamic is an error that says how to bind it.
fn resolve_shape(
    io: &IoInfo,
    given: Option<&[i64]>,
    dims: &BTreeMap<String, i64>,
    model: &str,
    key: &KeyPath,
    e: &mut Errors,
) -> Option<Vec<i64>> {
    let input = &io.name;
    let skey = key.key("shape");
    if let Some(given) = given {
        if io.rank_known && given.len() != io.dims.len() {
            e.push(
                &skey,
                format!(
                    "shape {given:?} has rank {}, but input `{input}` of model `{model}` has rank {} {}",
                    given.len(),
                    io.dims.len(),
                    io.shape_string()
                ),
                format!("give {} dims, matching {}", io.dims.len(), io.shape_string()),
            );
            return None;
        }
        let fixed = |pos: usize| match io.dims.get(pos) {
            Some(Dim::Fixed(n)) if io.rank_known => Some(*n),
            _ => None,
        };
        for (pos, &g) in given.iter().enumerate() {
            let problem = match fixed(pos) {
                Some(n) if g != n => Some(format!("dim {pos} must be {n}")),
                Some(_) => None,
                None if g < 0 => Some(format!(
                    "dim {pos} is dynamic: give it a size (0 or more), not {g}"
                )),
                None => None,
            };
            if let Some(fix) = problem {
                e.push(
                    &skey,
                    format!(
                        "shape {given:?} contradicts input `{input}` of model `{model}`, which is {}: dim {pos} is {g}",
                        io.shape_string()
                    ),
                    fix,
                );
                return None;
            }
        }
        return Some(given.to_vec());
    }
    if !io.rank_known {
        e.push(
            key,
            format!("input `{input}` of model `{model}` declares no shape (its rank is unknown)"),
            format!("give its full shape: `inputs.{input}.shape = [...]`"),
        );
        return None;
    }
    let mut shape = Vec::with_capacity(io.dims.len());
    for (pos, d) in io.dims.iter().enumerate() {
        match d {
            Dim::Fixed(n) => shape.push(*n),
            Dim::Named(n) if dims.contains_key(n) => shape.push(dims[n]),
            Dim::Named(n) => {
                e.push(
                    key,
                    format!(
                        "dynamic dim `{n}` (position {pos}) of input `{input}` of model `{model}` {} is unbound",
                        io.shape_string()
                    ),
                    format!(
                        "bind it for the model with `dims = {{ {} = 1 }}`, or give the full shape by position: `inputs.{input}.shape = [...]`",
                        toml_key(n)
                    ),
                );
                return None;
            }
            Dim::Unknown => {
                e.push(
                    key,
                    format!(
                        "dim {pos} of input `{input}` of model `{model}` {} is dynamic and unnamed",
                        io.shape_string()
                    ),
                    format!("give the full shape by position: `inputs.{input}.shape = [...]`"),
                );
                return None;
            }
        }
    }
    Some(shape)
}

/// `name` as a TOML key: bare when it can be, quoted otherwise (a dotted name such as
/// `p2o.DynamicDimension.0` unquoted would make nested tables).
fn toml_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        format!("{name:?}")
    }
}

/// The notice for scalar (rank-0) numeric inputs drawn at random, one line per model: such an
/// input is most often a parameter (a threshold, a frequency range), and a value in [0, 1) or
/// {0, 1} measures a run nobody serves. `None` when every scalar input has its value set.
pub(crate) fn random_scalars_notice(models: &[ModelSpec]) -> Option<String> {
    let drawn = |i: &&InputSpec| {
        i.shape.is_empty()
            && i.dtype != DType::Str
            && matches!(
                i.generator,
                Generator::Uniform { .. } | Generator::Int { .. } | Generator::Normal { .. }
            )
    };
    let lines: Vec<String> = models
        .iter()
        .filter_map(|m| {
            let names: Vec<&str> = m
                .inputs
                .iter()
                .filter(drawn)
                .map(|i| i.name.as_str())
                .collect();
            let first = names.first()?;
            let listed: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            Some(format!(
                "model `{}`: scalar input(s) {} drawn at random; if they are parameters (a \
                 threshold, a frequency), give each its value: `--input {first}=VALUE` (bench run) \
                 or `inputs.{first}.generator = {{ kind = \"const\", value = ... }}` (scenario)",
                m.name,
                listed.join(", ")
            ))
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}
