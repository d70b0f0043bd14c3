//! Resolving one `[[model]]`: its ONNX signature, input shapes, generators and samples.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::batch::{self, BatchBinding, BatchDim};
use super::raw::{self, RawGenerator};
use super::workload::duration_key;
use super::{
    CHECK_TOLERANCE, Errors, InputSpec, KeyPath, MAX_SAMPLE_BYTES, MAX_SAMPLES_BYTES, ModelSource,
    ModelSpec, ServiceDistribution, Stall, SyntheticSpec, Tolerance, WaitMode, input_seed,
};
use crate::onnx::{self, Dim, IoInfo, ModelInfo};
use crate::tensor::{self, DType, Generator, TensorData};
use crate::testdata;

/// Model names label rows, hlog tags and file names: letters and digits of any script, `_`, `-`
/// and `.` (no spaces, commas or slashes).
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// What the scenario does with each model's batch dim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BatchUse {
    Off,
    /// `[sweep] batch`: bound to this size (its first value; each point rebinds its own).
    Static(usize),
    /// `[batching]`: found, so requests can be joined along it, and bound to nothing.
    Dynamic,
}

pub(super) fn resolve_model(
    m: raw::RawModel,
    key: &KeyPath,
    dir: &Path,
    seed: u64,
    samples: usize,
    batch_use: BatchUse,
    e: &mut Errors,
) -> Option<ModelSpec> {
    let batch = match batch_use {
        BatchUse::Static(b) => Some(b),
        BatchUse::Off | BatchUse::Dynamic => None,
    };
    let name = match m.name {
        Some(n) if valid_name(&n) => n,
        Some(n) => {
            e.push(
                &key.key("name"),
                format!("model name `{n}` may only use letters, digits, `_`, `-` and `.`"),
                "rename it, e.g. `resnet_small`",
            );
            return None;
        }
        None => {
            e.push(
                key,
                "this [[model]] has no `name`",
                "add `name = \"...\"`: it labels the model's rows in the results",
            );
            return None;
        }
    };
    if let Some(syn) = m.synthetic {
        for (k, set) in [
            ("path", m.path.is_some()),
            ("dims", !m.dims.is_empty()),
            ("inputs", !m.inputs.is_empty()),
            ("test_data", m.test_data.is_some()),
            ("check", m.check.is_some()),
        ] {
            if set {
                e.push(
                    &key.key(k),
                    format!("a synthetic model has no `{k}`"),
                    "remove it, or remove `synthetic` to run an ONNX file",
                );
            }
        }
        if batch.is_some() {
            e.push(
                &KeyPath::default().key("sweep").key("batch"),
                format!("model `{name}` is synthetic: it has no inputs, so no batch dim to bind"),
                "sweep `batch` in a scenario of ONNX models only, or remove `batch` from [sweep]",
            );
        }
        let spec = resolve_synthetic(syn, &key.key("synthetic"), e)?;
        // Dynamic batching joins requests along an input; give the model one: `x`, a float32
        // `[1]` per request, so a run's length is its batch.
        let (inputs, samples, batch) = if batch_use == BatchUse::Dynamic || spec.per_sample_ns > 0 {
            let x = InputSpec {
                name: "x".into(),
                dtype: DType::F32,
                shape: vec![1],
                generator: Generator::Const { value: 0.0 },
                seed: input_seed(seed, &name, "x"),
            };
            let samples = generate_samples(std::slice::from_ref(&x), samples)
                .map_err(|(_, err)| err)
                .ok()?;
            (vec![x], samples, Some(BatchBinding { at: vec![(0, 0)] }))
        } else {
            (Vec::new(), vec![Vec::new()], None)
        };
        return Some(ModelSpec {
            name,
            source: ModelSource::Synthetic(spec),
            inputs,
            outputs: Vec::new(),
            samples,
            torch: None,
            parity: Default::default(),
            expected: Vec::new(),
            check: CHECK_TOLERANCE,
            batch,
        });
    }
    let Some(rel) = m.path else {
        e.push(
            key,
            format!("model `{name}` has no `path`"),
            "add `path = \"models/onnx/NAME.onnx\"` (relative to the scenario file)",
        );
        return None;
    };
    let path = dir.join(&rel);
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
    let path = path.canonicalize().unwrap_or(path);

    // Graph inputs that are also initializers keep their initializer unless the scenario sets them.
    let graph_inputs: Vec<&IoInfo> = info
        .inputs
        .iter()
        .chain(
            info.initializer_inputs
                .iter()
                .filter(|i| m.inputs.contains_key(&i.name)),
        )
        .collect();
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
                    io.kind.a_name()
                ),
                "export the model with tensor inputs and outputs (e.g. pad a list into one tensor), or leave it out",
            );
        }
    }
    if info.ir_version < 4 {
        for io in info
            .initializer_inputs
            .iter()
            .filter(|i| m.inputs.contains_key(&i.name))
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
    for k in m.inputs.keys() {
        if !model_inputs.contains(k.as_str()) {
            let list: Vec<&str> = info.inputs.iter().map(|i| i.name.as_str()).collect();
            e.push(
                &key.key("inputs").key(k),
                format!("model `{name}` has no input `{k}`"),
                format!(
                    "{}its inputs are: {}",
                    super::parse::did_you_mean(k, &list),
                    list.join(", ")
                ),
            );
        }
    }
    let named: HashSet<&str> = graph_inputs
        .iter()
        .flat_map(|i| &i.dims)
        .filter_map(|d| match d {
            Dim::Named(n) => Some(n.as_str()),
            _ => None,
        })
        .collect();
    for (d, &v) in &m.dims {
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
                        super::parse::did_you_mean(d, &list),
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

    // The `batch` axis binds the batch dim to its first value here (each point rebinds it to its
    // own), over `dims` and over the shapes given by position.
    let batch_dim = resolve_batch_dim(m.batch_dim.as_ref(), &key.key("batch_dim"), e);
    // Both batch uses need the dim found; only the static axis binds it.
    let places = match batch_use {
        BatchUse::Off => None,
        BatchUse::Static(_) | BatchUse::Dynamic => Some(batch_places(
            &graph_inputs,
            &batch_dim,
            &name,
            key,
            m.batch_dim.is_some(),
            e,
        )?),
    };
    let mut dynamic_binding = None;
    let batch_found = match (batch, places) {
        (Some(b), Some((binding, names))) => {
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
            Some((b, binding, names))
        }
        (None, Some((binding, _))) => {
            dynamic_binding = Some(binding);
            None
        }
        (_, None) => None,
    };

    // A test-data folder gives every input its files, and so its shape, and the expected outputs.
    // The test data of a model refused above or below for its types would only add noise (a
    // sequence's file is not a tensor's).
    let test = match &m.test_data {
        Some(_) if !all_tensors => None,
        None => None,
        Some(rel) => Some(resolve_test_data(
            &dir.join(rel),
            &info,
            &graph_inputs,
            &m.inputs,
            &name,
            key,
            e,
        )?),
    };
    let mut given_shapes: BTreeMap<String, Vec<i64>> = m
        .inputs
        .iter()
        .filter_map(|(n, r)| Some((n.clone(), r.shape.clone()?)))
        .collect();
    if let Some(t) = &test {
        given_shapes.extend(t.inputs.iter().map(|(n, (_, s, _))| (n.clone(), s.clone())));
    }
    if let Some((b, binding, _)) = &batch_found {
        for &(i, pos) in &binding.at {
            if let Some(d) = given_shapes
                .get_mut(&graph_inputs[i].name)
                .and_then(|s| s.get_mut(pos))
            {
                *d = *b as i64;
            }
        }
    }
    let check = match &m.check {
        None => CHECK_TOLERANCE,
        Some(c) => {
            let ckey = key.key("check");
            if test
                .as_ref()
                .is_none_or(|t| t.expected.iter().all(Vec::is_empty))
            {
                e.push(
                    &ckey,
                    format!("model `{name}` has no expected outputs to check"),
                    "give it a `test_data` folder with output_K.pb files, or remove [model.check]",
                );
            }
            Tolerance {
                atol: super::torch::check_tolerance(
                    c.atol,
                    CHECK_TOLERANCE.atol,
                    &ckey.key("atol"),
                    e,
                ),
                rtol: super::torch::check_tolerance(
                    c.rtol,
                    CHECK_TOLERANCE.rtol,
                    &ckey.key("rtol"),
                    e,
                ),
            }
        }
    };

    // Named dims that a shape given by position binds: a shape wins over `dims`, and binds the
    // same name in the inputs that have no shape. Two shapes must agree.
    let mut from_shapes: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for io in graph_inputs.iter().filter(|io| io.rank_known) {
        let Some(given) = given_shapes.get(&io.name) else {
            continue;
        };
        for (d, &size) in io.dims.iter().zip(given) {
            let Dim::Named(n) = d else { continue };
            match from_shapes.get(n) {
                Some((v, other)) if *v != size && size >= 1 => {
                    e.push(
                        &key.key("inputs").key(&io.name).key("shape"),
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
    let mut dims = m.dims.clone();
    dims.extend(from_shapes.into_iter().map(|(n, (v, _))| (n, v)));
    if let Some((b, _, names)) = &batch_found {
        for n in names {
            dims.insert(n.clone(), *b as i64);
        }
    }

    let mut inputs = Vec::new();
    for &io in &graph_inputs {
        let ikey = key.key("inputs").key(&io.name);
        let raw_input = m.inputs.get(&io.name);
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
            &dims,
            &name,
            &ikey,
            e,
        );
        let generator = match test.as_ref().and_then(|t| t.inputs.get(&io.name)) {
            Some((_, _, paths)) => Some(Generator::Files {
                paths: paths.clone(),
            }),
            None => resolve_generator(
                raw_input.and_then(|r| r.generator.clone()),
                dtype,
                dir,
                &ikey.key("generator"),
                e,
            ),
        };
        if let (Some(shape), Some(generator)) = (shape, generator) {
            inputs.push(InputSpec {
                seed: input_seed(seed, &name, &io.name),
                name: io.name.clone(),
                dtype,
                shape,
                generator,
            });
        }
    }
    if inputs.len() != graph_inputs.len() {
        return None;
    }
    let batch_binding = batch_found.map(|(_, binding, _)| binding);
    let dynamic = dynamic_binding.is_some();
    let batch_binding = batch_binding.or(dynamic_binding);
    if let Some(binding) = batch_binding.as_ref().filter(|_| !dynamic) {
        for &(i, _) in &binding.at {
            if matches!(
                inputs[i].generator,
                Generator::File { .. } | Generator::Files { .. }
            ) {
                e.push(
                    &key.key("inputs").key(&inputs[i].name).key("generator"),
                    format!(
                        "input `{}` of model `{name}` is read from a file, at the shape it was \
                         saved with, so `sweep.batch` cannot rebind its batch dim",
                        inputs[i].name
                    ),
                    "generate the input (`uniform`, `normal`, `int`, `const`), or remove `batch` \
                     from [sweep]",
                );
                return None;
            }
        }
    }
    // Guard memory before generating: one sample, and all samples together. Errors point at the
    // largest input, where the oversized dim most likely is.
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
            return None;
        }
        (None, _) => {
            e.push(
                &largest,
                format!("the input shapes of model `{name}` are too large to address"),
                "check the shapes and `dims`",
            );
            return None;
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
            return None;
        }
        _ => {}
    }
    // Generate the samples now, so a bad input file is reported before any worker starts.
    let samples = match generate_samples(&inputs, samples) {
        Ok(s) => s,
        Err((i, err)) => {
            let ikey = if test.is_some() {
                key.key("test_data")
            } else {
                key.key("inputs").key(&inputs[i].name).key("generator")
            };
            e.push(&ikey, format!("{err:#}"), "fix the generator or its file");
            return None;
        }
    };
    Some(ModelSpec {
        name,
        source: ModelSource::Onnx(path),
        inputs,
        outputs: info.outputs,
        samples,
        torch: None,
        parity: Default::default(),
        expected: test.map(|t| t.expected).unwrap_or_default(),
        check,
        batch: batch_binding,
    })
}

/// The `batch_dim` key: a dim name or an input axis index (the default: the dim named `batch`).
fn resolve_batch_dim(raw: Option<&raw::RawBatchDim>, key: &KeyPath, e: &mut Errors) -> BatchDim {
    match raw {
        None => BatchDim::default(),
        Some(raw::RawBatchDim::Name(n)) if !n.is_empty() => BatchDim::Name(n.clone()),
        Some(raw::RawBatchDim::Axis(a)) if *a >= 0 => BatchDim::Axis(*a as usize),
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

/// Where the `batch` axis binds model `name` (`batch` is the axis's first value): the places of its
/// batch dim, and the dim names that binds. An error naming the model's dynamic dims when it has
/// no such dim.
fn batch_places(
    graph_inputs: &[&IoInfo],
    dim: &BatchDim,
    name: &str,
    key: &KeyPath,
    set: bool,
    e: &mut Errors,
) -> Option<(BatchBinding, Vec<String>)> {
    let (binding, names) = batch::find(graph_inputs, dim);
    if !binding.at.is_empty() {
        return Some((binding, names));
    }
    let mut named: Vec<&str> = graph_inputs
        .iter()
        .flat_map(|i| &i.dims)
        .filter_map(|d| match d {
            Dim::Named(n) => Some(n.as_str()),
            _ => None,
        })
        .collect();
    named.sort();
    named.dedup();
    let hint = match dim {
        BatchDim::Name(n) if !named.is_empty() => format!(
            "{}set `batch_dim` in this [[model]] to its batch dim: one of {} (or an input axis \
             index, e.g. `batch_dim = 0`), or leave the model out of a scenario that batches",
            super::parse::did_you_mean(n, &named),
            named.join(", ")
        ),
        _ => "this model has no dynamic dim to bind (its inputs' shapes are fixed); leave it out \
              of a scenario that batches, or re-export it with a dynamic batch dim"
            .to_string(),
    };
    e.push(
        &if set {
            key.key("batch_dim")
        } else {
            KeyPath::default().key("sweep").key("batch")
        },
        format!(
            "`sweep.batch` and `[batching]` use {dim} of each model, and model `{name}` has none"
        ),
        hint,
    );
    None
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
pub(super) fn toml_key(name: &str) -> String {
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

fn resolve_generator(
    raw: Option<RawGenerator>,
    dtype: DType,
    dir: &Path,
    key: &KeyPath,
    e: &mut Errors,
) -> Option<Generator> {
    const STRINGS: &str = "e.g. `{ kind = \"strings\", values = [\"hello\", \"world\"] }`";
    match &raw {
        Some(RawGenerator::File { .. }) => {}
        Some(RawGenerator::Strings { values }) if dtype != DType::Str || values.is_empty() => {
            e.push(
                key,
                if values.is_empty() {
                    "`strings` needs one or more values".to_string()
                } else {
                    format!("`strings` makes string inputs; this input is {dtype}")
                },
                if values.is_empty() {
                    STRINGS.to_string()
                } else {
                    "use uniform, normal, int or const for numbers".to_string()
                },
            );
            return None;
        }
        Some(RawGenerator::Strings { .. }) => {}
        _ if dtype == DType::Str => {
            e.push(
                key,
                "a string input takes its values from a list",
                format!("{STRINGS}, or a tensor file"),
            );
            return None;
        }
        _ => {}
    }
    let Some(raw) = raw else {
        return Some(if dtype.is_float() || dtype == DType::Bool {
            Generator::Uniform {
                low: 0.0,
                high: 1.0,
            }
        } else {
            Generator::Int { low: 0, high: 2 }
        });
    };
    let g = match raw {
        RawGenerator::Uniform { low, high } => {
            let (low, high) = (low.unwrap_or(0.0), high.unwrap_or(1.0));
            if low >= high || !(high - low).is_finite() {
                e.push(
                    key,
                    format!("uniform needs low < high and a finite high - low, got low = {low:?}, high = {high:?}"),
                    "e.g. `{ kind = \"uniform\", low = 0.0, high = 1.0 }`",
                );
                return None;
            }
            Generator::Uniform { low, high }
        }
        RawGenerator::Normal { mean, std } => {
            let (mean, std) = (mean.unwrap_or(0.0), std.unwrap_or(1.0));
            if std <= 0.0 || !std.is_finite() || !mean.is_finite() {
                e.push(
                    key,
                    format!(
                        "normal needs a finite mean and std > 0, got mean = {mean}, std = {std}"
                    ),
                    "e.g. `{ kind = \"normal\", mean = 0.0, std = 1.0 }`",
                );
                return None;
            }
            Generator::Normal { mean, std }
        }
        RawGenerator::Int { low, high } => {
            let (low, high) = (low.unwrap_or(0), high.unwrap_or(2));
            if low >= high {
                e.push(
                    key,
                    format!(
                        "int needs low < high (high is exclusive), got low = {low}, high = {high}"
                    ),
                    "e.g. `{ kind = \"int\", low = 0, high = 1000 }` for token ids below 1000",
                );
                return None;
            }
            if dtype == DType::Bool || (!dtype.is_float() && !fits(dtype, low, high - 1)) {
                e.push(
                    key,
                    format!("int range [{low}, {high}) does not fit the input's type {dtype}"),
                    format!("choose a range that {dtype} can hold"),
                );
                return None;
            }
            Generator::Int { low, high }
        }
        RawGenerator::Const { value } => {
            if dtype == DType::Bool && !matches!(value, raw::ConstValue::Bool(_)) {
                e.push(
                    key,
                    format!(
                        "input is bool, so `value` must be true or false, got {}",
                        value.as_f64()
                    ),
                    "write `value = true`",
                );
                return None;
            }
            Generator::Const {
                value: value.as_f64(),
            }
        }
        RawGenerator::File { path } => {
            let p = dir.join(&path);
            if !p.is_file() {
                e.push(
                    key,
                    format!("input file {} does not exist", p.display()),
                    "paths are relative to the scenario file's folder",
                );
                return None;
            }
            Generator::File { path: p }
        }
        RawGenerator::Strings { values } => Generator::Strings { values },
    };
    Some(g)
}

fn fits(dtype: DType, low: i64, high: i64) -> bool {
    let (min, max): (i128, i128) = match dtype {
        DType::I8 => (i8::MIN.into(), i8::MAX.into()),
        DType::I16 => (i16::MIN.into(), i16::MAX.into()),
        DType::I32 => (i32::MIN.into(), i32::MAX.into()),
        DType::U8 => (0, u8::MAX.into()),
        DType::U16 => (0, u16::MAX.into()),
        DType::U32 => (0, u32::MAX.into()),
        DType::U64 => (0, u64::MAX.into()),
        _ => (i64::MIN.into(), i64::MAX.into()),
    };
    (min..=max).contains(&i128::from(low)) && (min..=max).contains(&i128::from(high))
}

fn resolve_synthetic(
    raw: raw::RawSynthetic,
    key: &KeyPath,
    e: &mut Errors,
) -> Option<SyntheticSpec> {
    let distribution = match raw.service.as_deref() {
        None | Some("fixed") => ServiceDistribution::Fixed,
        Some("exponential") => ServiceDistribution::Exponential,
        Some(other) => {
            e.push(
                &key.key("service"),
                format!("unknown service-time distribution `{other}`"),
                "use `fixed` or `exponential`",
            );
            return None;
        }
    };
    let wait = match raw.wait.as_deref() {
        None | Some("spin") => WaitMode::Spin,
        Some("sleep") => WaitMode::Sleep,
        Some(other) => {
            e.push(
                &key.key("wait"),
                format!("unknown wait mode `{other}`"),
                "use `spin` (busy, precise) or `sleep` (idle)",
            );
            return None;
        }
    };
    let mean = match raw.mean.as_deref() {
        Some(m) => duration_key(m, &key.key("mean"), true, e)?,
        None => {
            e.push(key, "a synthetic model needs a `mean` service time", "e.g. `synthetic = { service = \"fixed\", mean = \"1ms\" }`; \"0s\" measures the harness alone");
            return None;
        }
    };
    let per_sample = match raw.per_sample.as_deref() {
        None => std::time::Duration::ZERO,
        Some(p) => duration_key(p, &key.key("per_sample"), true, e)?,
    };
    let stall = match raw.stall {
        None => None,
        Some(s) => {
            let skey = key.key("stall");
            let (Some(after), Some(pause)) = (s.after.as_deref(), s.pause.as_deref()) else {
                e.push(
                    &skey,
                    "a stall needs `after` and `pause`",
                    "e.g. `stall = { after = \"2s\", pause = \"500ms\" }`",
                );
                return None;
            };
            let after = duration_key(after, &skey.key("after"), true, e)?;
            let pause = duration_key(pause, &skey.key("pause"), false, e)?;
            Some(Stall {
                after_ns: after.as_nanos() as u64,
                pause_ns: pause.as_nanos() as u64,
            })
        }
    };
    let hang_after_ns = match raw.hang_after.as_deref() {
        None => None,
        Some(h) => Some(duration_key(h, &key.key("hang_after"), true, e)?.as_nanos() as u64),
    };
    Some(SyntheticSpec {
        distribution,
        mean_ns: mean.as_nanos() as u64,
        per_sample_ns: per_sample.as_nanos() as u64,
        wait,
        stall,
        hang_after_ns,
    })
}

/// The samples of a model: `samples[i][j]` is sample `i` of input `j`. Each input's values depend
/// only on its generator, seed and the sample index, so the parent and a worker (the `index`
/// transfer) make the same bytes. An `.npy` input with N stacked samples sets the count to the
/// largest N; shorter inputs repeat. On error, returns the index of the failing input.
pub fn generate_samples(
    inputs: &[InputSpec],
    count: usize,
) -> Result<Vec<Vec<TensorData>>, (usize, anyhow::Error)> {
    let mut per_input = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let (dtype, shape) = (input.dtype, input.shape.as_slice());
        per_input.push(
            match &input.generator {
                Generator::File { path } => testdata::file_samples(path, &input.name, dtype, shape),
                Generator::Files { paths } => {
                    testdata::files_samples(paths, &input.name, dtype, shape)
                }
                g => tensor::generate(g, dtype, shape, input.seed, count),
            }
            .map_err(|e| (i, e))?,
        );
    }
    let n = per_input.iter().map(Vec::len).max().unwrap_or(1).max(1);
    Ok((0..n)
        .map(|i| per_input.iter().map(|s| s[i % s.len()].clone()).collect())
        .collect())
}

/// What a test-data folder gives a model: per input, its element type, shape and one file per
/// set; per set, the expected outputs (output index, tensor).
struct TestInputs {
    inputs: BTreeMap<String, (DType, Vec<i64>, Vec<PathBuf>)>,
    expected: Vec<Vec<(usize, TensorData)>>,
}

/// Reads model `model`'s test-data folder `dir` and matches its files to the model: an input file
/// by the tensor's name when it has one, else by its position K among the model's inputs; output
/// files likewise. Every set must give every input, with one shape across sets that agrees with
/// the model's fixed dims and binds its named ones. Each error names the file.
fn resolve_test_data(
    dir: &Path,
    info: &ModelInfo,
    graph_inputs: &[&IoInfo],
    given: &BTreeMap<String, raw::RawInput>,
    model: &str,
    mkey: &KeyPath,
    e: &mut Errors,
) -> Option<TestInputs> {
    let key = &mkey.key("test_data");
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if !dir.is_dir() {
        e.push(
            key,
            format!("test-data folder {} does not exist", dir.display()),
            "point `test_data` at the folder holding test_data_set_N folders (relative to the scenario file)",
        );
        return None;
    }
    let sets = match testdata::read_test_data(&dir) {
        Ok(s) => s,
        Err(err) => {
            e.push(key, format!("{err:#}"), "fix or regenerate the file");
            return None;
        }
    };
    for (input, raw) in given {
        if raw.shape.is_some() || raw.generator.is_some() {
            e.push(
                &mkey.key("inputs").key(input),
                format!("input `{input}` of model `{model}` comes from its test data"),
                "remove the entry: the test-data files give its values and shape",
            );
        }
    }
    let names: Vec<&str> = graph_inputs.iter().map(|i| i.name.as_str()).collect();
    let mut inputs: BTreeMap<String, (DType, Vec<i64>, Vec<PathBuf>)> = BTreeMap::new();
    let mut from: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut named_dims: BTreeMap<String, (i64, PathBuf)> = BTreeMap::new();
    let mut expected = Vec::new();
    let mut fail = |msg: String, fix: String| {
        e.push(key, msg, fix);
    };
    for set in &sets {
        let mut seen: HashSet<&str> = HashSet::new();
        for (k, (path, t)) in set.inputs.iter().enumerate() {
            let io = if t.name.is_empty() {
                info.inputs.get(k)
            } else {
                graph_inputs.iter().copied().find(|i| i.name == t.name)
            };
            let Some(io) = io else {
                fail(
                    if t.name.is_empty() {
                        format!(
                            "{} is input {k}, but model `{model}` has {} inputs",
                            path.display(),
                            info.inputs.len()
                        )
                    } else {
                        format!(
                            "{} holds tensor `{}`, but model `{model}` has no such input",
                            path.display(),
                            t.name
                        )
                    },
                    format!("its inputs are: {}", names.join(", ")),
                );
                return None;
            };
            if !seen.insert(io.name.as_str()) {
                fail(
                    format!(
                        "{} gives input `{}` a second time in {}",
                        path.display(),
                        io.name,
                        set.dir.display()
                    ),
                    "give each input once per test_data_set folder".into(),
                );
                return None;
            }
            let t = &t.tensor;
            if io.dtype != Ok(t.dtype) {
                fail(
                    format!(
                        "{} holds {}, but input `{}` of model `{model}` is {}",
                        path.display(),
                        t.dtype,
                        io.name,
                        io.dtype_name()
                    ),
                    "save the tensor with the input's element type".into(),
                );
                return None;
            }
            if io.rank_known {
                let contradiction = if io.dims.len() != t.shape.len() {
                    Some(format!("rank {} against {}", t.shape.len(), io.dims.len()))
                } else {
                    io.dims
                        .iter()
                        .zip(&t.shape)
                        .enumerate()
                        .find_map(|(pos, (d, &size))| match d {
                            Dim::Fixed(n) if *n != size => {
                                Some(format!("dim {pos} is {size}, the model fixes it at {n}"))
                            }
                            Dim::Named(n) => match named_dims.get(n) {
                                Some((v, other)) if *v != size => Some(format!(
                                    "dim `{n}` is {size}, but {v} in {}",
                                    other.display()
                                )),
                                Some(_) => None,
                                None => {
                                    named_dims.insert(n.clone(), (size, path.clone()));
                                    None
                                }
                            },
                            _ => None,
                        })
                };
                if let Some(why) = contradiction {
                    fail(
                        format!(
                            "{} has shape {:?}, which contradicts input `{}` of model `{model}` {}: {why}",
                            path.display(),
                            t.shape,
                            io.name,
                            io.shape_string()
                        ),
                        "fix the test data, or point `test_data` at the model's own".into(),
                    );
                    return None;
                }
            }
            let entry = inputs.entry(io.name.clone()).or_insert_with(|| {
                from.insert(io.name.clone(), path.clone());
                (t.dtype, t.shape.clone(), Vec::new())
            });
            if entry.1 != t.shape {
                fail(
                    format!(
                        "{} has shape {:?}, but {} has {:?}; every set gives input `{}` one shape",
                        path.display(),
                        t.shape,
                        from[&io.name].display(),
                        entry.1,
                        io.name
                    ),
                    "split the sets into two test-data folders (two models)".into(),
                );
                return None;
            }
            entry.2.push(path.clone());
        }
        for io in &info.inputs {
            if !seen.contains(io.name.as_str()) {
                fail(
                    format!(
                        "{} gives no file for input `{}` of model `{model}`",
                        set.dir.display(),
                        io.name
                    ),
                    "add its input_K.pb (named after the input) to every set".into(),
                );
                return None;
            }
        }
        let out_names: Vec<&str> = info.outputs.iter().map(|o| o.name.as_str()).collect();
        let mut want = Vec::new();
        for (k, (path, t)) in set.outputs.iter().enumerate() {
            let i = if t.name.is_empty() {
                (k < info.outputs.len()).then_some(k)
            } else {
                info.outputs.iter().position(|o| o.name == t.name)
            };
            let Some(i) = i else {
                fail(
                    format!(
                        "{} is not an output of model `{model}` (tensor `{}`, position {k})",
                        path.display(),
                        t.name
                    ),
                    format!("its outputs are: {}", out_names.join(", ")),
                );
                return None;
            };
            if let Ok(d) = info.outputs[i].dtype
                && d != t.tensor.dtype
            {
                fail(
                    format!(
                        "{} holds {}, but output `{}` of model `{model}` is {d}",
                        path.display(),
                        t.tensor.dtype,
                        info.outputs[i].name
                    ),
                    "save the expected output with the output's element type".into(),
                );
                return None;
            }
            want.push((i, t.tensor.clone()));
        }
        expected.push(want);
    }
    Some(TestInputs { inputs, expected })
}
