//! Writes scenario files from ONNX models, for people who start from a model rather than from a
//! scenario: `bench init` prints a commented starter, and `bench run` turns its flags into the
//! scenario it then sweeps (and keeps beside the results, so the run can be repeated and edited).
//!
//! Both read each model's signature (`crate::onnx`), decide every input's shape and generator,
//! and render the same TOML. They differ in who binds the dynamic dims: `init` guesses 1 and
//! marks each guess `# bind me`, so the file validates at once and says what to set; `run` takes
//! `--dims` and `--shape`, binds only a batch-like dim by itself (to 1, with a note), and refuses
//! any other unbound dim with the flag that binds it. The text is checked by `scenario::load`
//! like any hand-written scenario, so nothing here decides what is valid.
//!
//! Dims follow ONNX Runtime, as `onnx::Dim` reads them: a named dim (`batch`,
//! `p2o.DynamicDimension.0`) has one size across a model's inputs and is bound in `dims`; an
//! anonymous one (`-1`, `?`, `None`, `unk__N`) is its own, so its input gets a full `shape`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::onnx::{self, Dim, IoInfo, ModelInfo};
use crate::tensor::DType;

/// A flag value aimed at an input or dim by name, in every model that has it, or in one model
/// when written `MODEL:NAME` (MODEL being a model name `bench run` gave, its file stem). A name
/// that itself holds a colon (`input_1:0`, as tf2onnx writes) stays whole unless the part before
/// the first colon is a model name.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoped<T> {
    /// `NAME` or `MODEL:NAME`, as written.
    pub target: String,
    pub value: T,
    /// The whole flag value, for messages.
    pub text: String,
}

/// What `--input NAME=VALUE|FILE` sets: the generators `const` and `file` of the scenario format.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A tensor file (`.npy`, `.npz`, ONNX `TensorProto` `.pb`) of one sample, or of samples
    /// stacked on a leading axis.
    File(PathBuf),
}

/// The file extensions `--input` takes as a file, as `testdata::read_tensor_file` reads them.
const TENSOR_FILES: [&str; 3] = [".npy", ".npz", ".pb"];

/// `--dims NAME=SIZE`: a named dim's size, at least 1. The name is everything before the last
/// `=`, so dotted names (`p2o.DynamicDimension.0=2`) need no quoting.
pub fn parse_dim(s: &str) -> Result<Scoped<i64>, String> {
    let (name, size) = split_last(s, "NAME=SIZE, e.g. batch=1")?;
    let size: i64 = size
        .trim()
        .parse()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| {
            format!("the size `{size}` must be a whole number of 1 or more, e.g. {name}=1")
        })?;
    Ok(Scoped {
        target: name.to_string(),
        value: size,
        text: s.to_string(),
    })
}

/// `--shape INPUT=1x3x224x224`: the input's full shape by position (`x` or `,` between sizes, each
/// 0 or more).
pub fn parse_shape(s: &str) -> Result<Scoped<Vec<i64>>, String> {
    let (name, shape) = split_last(s, "INPUT=SHAPE, e.g. x=1x3x224x224")?;
    let dims: Option<Vec<i64>> = shape
        .split(['x', 'X', ','])
        .map(|d| d.trim().parse::<i64>().ok().filter(|&n| n >= 0))
        .collect();
    match dims {
        Some(dims) if !shape.trim().is_empty() => Ok(Scoped {
            target: name.to_string(),
            value: dims,
            text: s.to_string(),
        }),
        _ => Err(format!(
            "the shape `{shape}` must be sizes of 0 or more joined by `x`, e.g. {name}=1x3x224x224"
        )),
    }
}

/// `--input NAME=VALUE|FILE`: every element equal to VALUE (a number, `true` or `false`), or the
/// samples of a tensor file (`.npy`, `.npz`, `.pb`). The name is everything before the first `=`,
/// so a file name may hold one.
pub fn parse_input(s: &str) -> Result<Scoped<InputValue>, String> {
    let Some((name, v)) = s.split_once('=').filter(|(n, _)| !n.trim().is_empty()) else {
        return Err(
            "write INPUT=VALUE or INPUT=FILE, e.g. mask=true, x=sample.npy or x=input_0.pb".into(),
        );
    };
    let value = match v.trim() {
        "true" => InputValue::Bool(true),
        "false" => InputValue::Bool(false),
        t if t.parse::<i64>().is_ok() => InputValue::Int(t.parse().unwrap_or_default()),
        t if t.parse::<f64>().is_ok_and(f64::is_finite) => {
            InputValue::Float(t.parse().unwrap_or_default())
        }
        t if TENSOR_FILES
            .iter()
            .any(|e| t.to_ascii_lowercase().ends_with(e)) =>
        {
            InputValue::File(PathBuf::from(t))
        }
        t => {
            return Err(format!(
                "`{t}` is neither a number, true/false, nor a tensor file (.npy, .npz, .pb): \
                 write {name}=0.5, {name}=true or {name}=FILE.npy"
            ));
        }
    };
    Ok(Scoped {
        target: name.to_string(),
        value,
        text: s.to_string(),
    })
}

/// `--test-data [MODEL=]DIR`: a test-data folder (`test_data_set_N/input_K.pb`, `output_K.pb`),
/// for the only model, or for model MODEL. The target is empty when no model is named.
pub fn parse_test_data(s: &str) -> Result<Scoped<PathBuf>, String> {
    if s.trim().is_empty() {
        return Err("write DIR or MODEL=DIR, e.g. --test-data node/test_relu".into());
    }
    let (target, dir) = match s.split_once('=') {
        Some((m, d)) if !m.is_empty() && !m.contains('/') && !d.is_empty() => (m, d),
        _ => ("", s),
    };
    Ok(Scoped {
        target: target.to_string(),
        value: PathBuf::from(dir),
        text: s.to_string(),
    })
}

/// Each model's test-data folder from `--test-data` flags (absolute), or the problems: a flag
/// that names no model, a folder that is not one, one model given two.
fn test_data_per_model(
    flags: &[Scoped<PathBuf>],
    names: &[String],
) -> Result<Vec<Option<PathBuf>>, Vec<String>> {
    let mut out = vec![None; names.len()];
    let mut problems = Vec::new();
    for f in flags {
        let m = if f.target.is_empty() {
            if names.len() != 1 {
                problems.push(format!(
                    "--test-data {}: there are {} models; aim it at one: --test-data MODEL=DIR (models: {})",
                    f.text,
                    names.len(),
                    names.join(", ")
                ));
                continue;
            }
            0
        } else if let Some(m) = names.iter().position(|n| *n == f.target) {
            m
        } else {
            problems.push(format!(
                "--test-data {}: no model is named `{}`; the models are {}",
                f.text,
                f.target,
                names.join(", ")
            ));
            continue;
        };
        if !f.value.is_dir() {
            problems.push(format!(
                "--test-data {}: {} is not a folder; give the folder that holds test_data_set_N folders",
                f.text,
                f.value.display()
            ));
            continue;
        }
        if out[m].is_some() {
            problems.push(format!(
                "--test-data {}: model `{}` has a test-data folder already",
                f.text, names[m]
            ));
            continue;
        }
        out[m] = Some(f.value.canonicalize().unwrap_or_else(|_| f.value.clone()));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The inputs that a test-data folder gives a model, as `scenario::load` matches its files: by
/// the tensor's name when it has one, else by position among the graph inputs. Read from the
/// first set; the scenario checks that every set agrees.
fn test_data_inputs(dir: &Path, info: &ModelInfo) -> anyhow::Result<Vec<String>> {
    let sets = crate::testdata::read_test_data(dir)?;
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
fn dims_left(info: &ModelInfo, given: &[String]) -> Vec<String> {
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

fn split_last<'a>(s: &'a str, form: &str) -> Result<(&'a str, &'a str), String> {
    s.rsplit_once('=')
        .filter(|(n, _)| !n.trim().is_empty())
        .ok_or_else(|| format!("write {form}"))
}

/// Whether a dim's name says it is a batch: `batch`, `batch_size`, `N`, `bs` and the like. Such a
/// dim gets 1 (one sample per request) when nothing binds it.
pub fn batch_like(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("batch") || matches!(n.as_str(), "n" | "b" | "bs")
}

/// One model as it will be written.
#[derive(Debug, Clone)]
struct Draft {
    name: String,
    path: PathBuf,
    /// A test-data folder: it gives the inputs it holds, their shapes and the expected outputs.
    test_data: Option<PathBuf>,
    /// `bench inspect`'s text, shown as comments.
    signature: String,
    /// Named dims in order of first use: size and an optional comment.
    dims: Vec<(String, i64, Option<String>)>,
    inputs: Vec<InputDraft>,
    /// Said in the file, above the model, and on stderr.
    warnings: Vec<String>,
}

#[derive(Debug, Clone)]
struct InputDraft {
    name: String,
    /// `float32 [batch, 16]`.
    describe: String,
    shape: Option<(Vec<i64>, Option<String>)>,
    generator: Option<(String, Option<String>)>,
}

/// `key` as a TOML key: bare when it can be, else a quoted string (dotted dim names must be).
fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        toml_str(key)
    }
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
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
pub fn model_names(paths: &[PathBuf]) -> Vec<String> {
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
fn proposed_generator(io: &IoInfo, dtype: DType) -> (String, Option<String>) {
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

fn read_info(path: &Path, what: &str) -> anyhow::Result<(PathBuf, ModelInfo)> {
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
fn settable(info: &ModelInfo) -> impl Iterator<Item = &IoInfo> {
    info.inputs.iter().chain(&info.initializer_inputs)
}

fn named_dims(info: &ModelInfo) -> Vec<String> {
    dims_left(info, &[])
}

fn warnings_of(info: &ModelInfo) -> Vec<String> {
    let mut w = Vec::new();
    for (side, list) in [("input", &info.inputs), ("output", &info.outputs)] {
        for io in list {
            if io.kind != onnx::ValueKind::Tensor {
                w.push(format!(
                    "{side} `{}` is {}: bench runs models whose inputs and outputs are tensors",
                    io.name,
                    io.kind.a_name()
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

/// `bench init`: a commented starter scenario for `models`, on stdout's behalf. Returns the text and
/// one line per model of what to bind (for stderr).
pub fn init(
    models: &[PathBuf],
    test_data: &[Scoped<PathBuf>],
) -> anyhow::Result<(String, Vec<String>)> {
    let names = model_names(models);
    let test_data =
        test_data_per_model(test_data, &names).map_err(|p| anyhow::anyhow!("{}", p.join("\n")))?;
    let mut drafts = Vec::new();
    let mut notes = Vec::new();
    for ((path, name), test_data) in models.iter().zip(names).zip(test_data) {
        let (abs, info) = read_info(path, "MODEL")?;
        let given = match &test_data {
            Some(dir) => test_data_inputs(dir, &info)
                .unwrap_or_else(|_| info.inputs.iter().map(|i| i.name.clone()).collect()),
            None => Vec::new(),
        };
        let mut d = Draft {
            signature: onnx::describe(path)?,
            name,
            path: abs,
            test_data,
            dims: Vec::new(),
            inputs: Vec::new(),
            warnings: warnings_of(&info),
        };
        // An input with unnamed dims gets a full shape, which binds its named dims too (a shape
        // wins over `dims`): those are set there, once, not also in `[model.dims]`.
        let shaped: Vec<String> = info
            .inputs
            .iter()
            .filter(|i| !given.contains(&i.name))
            .filter(|i| i.rank_known && i.dims.contains(&Dim::Unknown))
            .map(|i| i.name.clone())
            .collect();
        let in_shapes = dims_left(
            &info,
            &info
                .inputs
                .iter()
                .map(|i| i.name.clone())
                .filter(|n| !shaped.contains(n))
                .collect::<Vec<_>>(),
        );
        for n in dims_left(&info, &given)
            .into_iter()
            .filter(|n| !in_shapes.contains(n))
        {
            let why = if batch_like(&n) {
                "bind me: a batch dim; 1 is one sample per request".to_string()
            } else {
                format!("bind me: the size of dim `{n}`")
            };
            d.dims.push((n, 1, Some(why)));
        }
        for io in info.inputs.iter().filter(|i| !given.contains(&i.name)) {
            let shape = if !io.rank_known {
                Some((
                    vec![1],
                    Some("bind me: unknown rank; give the full shape".into()),
                ))
            } else if io.dims.contains(&Dim::Unknown) {
                let dynamic: Vec<String> = io
                    .dims
                    .iter()
                    .enumerate()
                    .filter_map(|(i, x)| match x {
                        Dim::Named(n) => Some(format!("{i} (`{n}`)")),
                        Dim::Unknown => Some(format!("{i} (unnamed)")),
                        Dim::Fixed(_) => None,
                    })
                    .collect();
                let shape = io
                    .dims
                    .iter()
                    .map(|x| match x {
                        Dim::Fixed(n) => *n,
                        _ => 1,
                    })
                    .collect();
                Some((
                    shape,
                    Some(format!(
                        "bind me: dynamic dim{} {}; 1 is a guess",
                        if dynamic.len() == 1 { "" } else { "s" },
                        dynamic.join(", ")
                    )),
                ))
            } else {
                None
            };
            d.inputs.push(InputDraft {
                name: io.name.clone(),
                describe: format!("{} {}", io.dtype_name(), io.shape_string()),
                shape,
                generator: io.dtype.as_ref().ok().map(|&t| proposed_generator(io, t)),
            });
        }
        let binds = d.dims.len() + d.inputs.iter().filter(|i| i.shape.is_some()).count();
        notes.push(format!(
            "{}: {}",
            d.name,
            if binds == 0 {
                "no dynamic dims; runs as it is".to_string()
            } else {
                format!("{binds} value(s) marked `# bind me` (set to 1)")
            }
        ));
        notes.extend(
            d.warnings
                .iter()
                .map(|w| format!("{}: warning: {w}", d.name)),
        );
        drafts.push(d);
    }
    let header = [
        "Starter scenario written by `bench init`.".to_string(),
        "Values marked `# bind me` are guesses (1): set the sizes you will serve, then".to_string(),
        "  bench validate --scenario THIS_FILE     # checks it against the models".to_string(),
        "  bench sweep --scenario THIS_FILE        # runs it".to_string(),
        "Paths are absolute; a relative path is read from this file's folder.".to_string(),
        "Every key: docs/reference/scenario.md".to_string(),
    ];
    let tail = "\n# Sweep axes: one value or a list each (docs/reference/scenario.md#sweep).\n\
                [sweep]\nworkers = 1\nintra_threads = 1\ntransfer = \"pipe\"\n\n\
                [load]\nkind = \"closed\"\nconcurrency = 1\n";
    Ok((render(&header, "", &drafts, tail), notes))
}

/// Everything `bench run` turns into a scenario besides the models.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    pub dims: Vec<Scoped<i64>>,
    pub shapes: Vec<Scoped<Vec<i64>>>,
    pub inputs: Vec<Scoped<InputValue>>,
    /// `--test-data [MODEL=]DIR`.
    pub test_data: Vec<Scoped<PathBuf>>,
    /// The top-level `name`.
    pub name: String,
    /// `(table, key, value)` lines after the models, e.g. `("sweep", "workers", [1, 2])`, in
    /// order; tables are written once each, in order of first use.
    pub settings: Vec<(&'static str, String, toml::Value)>,
    /// The command line, for the file's header.
    pub command: String,
}

/// Which models a scoped flag aims at: one (`MODEL:NAME`, MODEL a model name) or all, and NAME.
fn aim<'a>(target: &'a str, names: &[String]) -> (Option<usize>, &'a str) {
    if let Some((m, rest)) = target.split_once(':')
        && let Some(i) = names.iter().position(|n| n == m)
    {
        return (Some(i), rest);
    }
    (None, target)
}

/// `bench run`: the scenario text for `models` and `spec`, and notes for stderr (dims bound by
/// default). Errors name the flag to fix, all at once.
pub fn run(models: &[PathBuf], spec: &RunSpec) -> anyhow::Result<(String, Vec<String>)> {
    let names = model_names(models);
    let mut infos = Vec::new();
    let mut problems = Vec::new();
    for p in models {
        match read_info(p, "MODEL") {
            Ok(x) => infos.push(x),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("\n"));
    }
    let mut notes = Vec::new();
    let test_data = test_data_per_model(&spec.test_data, &names).unwrap_or_else(|p| {
        problems.extend(p);
        vec![None; names.len()]
    });
    // The inputs each model's test data gives.
    let mut given: Vec<Vec<String>> = vec![Vec::new(); models.len()];
    for (m, dir) in test_data.iter().enumerate() {
        if let Some(dir) = dir {
            // A folder that cannot be read gives every input: `scenario::load` then says what is
            // wrong with it, after what is wrong with the model.
            given[m] = test_data_inputs(dir, &infos[m].1)
                .unwrap_or_else(|_| infos[m].1.inputs.iter().map(|i| i.name.clone()).collect());
        }
    }

    // Bind every flag to the models it aims at; one that reaches no model is an error.
    let mut dims: Vec<BTreeMap<String, i64>> = vec![BTreeMap::new(); models.len()];
    for b in &spec.dims {
        let (only, name) = aim(&b.target, &names);
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
                .zip(&names)
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
    // Each input's shape, with the flag's text for messages.
    let mut shapes: Vec<BTreeMap<String, (Vec<i64>, String)>> = vec![BTreeMap::new(); models.len()];
    for b in &spec.shapes {
        let name = aim(&b.target, &names).1.to_string();
        match aimed_inputs(&b.target, &names, &infos) {
            Ok(hits) => hits.into_iter().for_each(|m| {
                drop(shapes[m].insert(name.clone(), (b.value.clone(), b.text.clone())))
            }),
            Err(known) => problems.push(no_input("--shape", &b.text, &name, &known)),
        }
    }
    let mut values: Vec<BTreeMap<String, InputValue>> = vec![BTreeMap::new(); models.len()];
    for b in &spec.inputs {
        let name = aim(&b.target, &names).1.to_string();
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
        match aimed_inputs(&b.target, &names, &infos) {
            Ok(hits) => hits
                .into_iter()
                .for_each(|m| drop(values[m].insert(name.clone(), value.clone()))),
            Err(known) => problems.push(no_input("--input", &b.text, &name, &known)),
        }
    }

    let mut drafts = Vec::new();
    for (m, ((path, info), name)) in infos.iter().zip(&names).enumerate() {
        // A shape binds the named dims at its positions, as `scenario::load` does.
        let mut bound = dims[m].clone();
        for io in info.inputs.iter().filter(|i| i.rank_known) {
            if let Some((shape, text)) = shapes[m].get(&io.name) {
                if shape.len() != io.dims.len() {
                    problems.push(format!(
                        "--shape {text}: input `{}` of model `{name}` has rank {} {}; give {} sizes{}",
                        io.name,
                        io.dims.len(),
                        io.shape_string(),
                        io.dims.len(),
                        if models.len() > 1 {
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
                        if let Some(&v) = dims[m].get(n)
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
        }
        let mut d = Draft {
            name: name.clone(),
            path: path.clone(),
            test_data: test_data[m].clone(),
            signature: onnx::describe(path)?,
            dims: Vec::new(),
            inputs: Vec::new(),
            warnings: warnings_of(info),
        };
        for n in dims_left(info, &given[m]) {
            if let Some(&v) = dims[m].get(&n) {
                d.dims.push((n, v, None));
            } else if bound.contains_key(&n) {
                // Bound by a --shape; scenario::load takes it from there.
            } else if batch_like(&n) {
                notes.push(format!(
                    "{name}: dim `{n}` = 1 (a batch dim; set it with --dims {n}=N)"
                ));
                d.dims.push((
                    n,
                    1,
                    Some("a batch dim, bound to 1 by default (--dims)".into()),
                ));
            } else {
                problems.push(format!(
                    "model `{name}`: dynamic dim `{n}` is unbound; bind it with --dims {n}=SIZE"
                ));
            }
        }
        for io in info.inputs.iter().filter(|i| !given[m].contains(&i.name)) {
            let shape = shapes[m].get(&io.name).map(|(s, _)| s);
            if shape.is_none() && (!io.rank_known || io.dims.contains(&Dim::Unknown)) {
                let example = if io.rank_known {
                    let guess: Vec<i64> = io
                        .dims
                        .iter()
                        .map(|x| match x {
                            Dim::Fixed(n) => *n,
                            Dim::Named(n) => bound.get(n).copied().unwrap_or(1),
                            Dim::Unknown => 1,
                        })
                        .collect();
                    join_x(&guess)
                } else {
                    "1x3x224x224".into()
                };
                problems.push(format!(
                    "model `{name}`: input `{}` is {} {}, with {}; give its full shape, e.g. --shape {}={example}",
                    io.name,
                    io.dtype_name(),
                    io.shape_string(),
                    if io.rank_known {
                        "dims that have no name (so --dims cannot bind them)"
                    } else {
                        "an unknown rank"
                    },
                    io.name,
                ));
            }
            d.inputs.push(input_draft(
                io,
                shape.cloned(),
                values[m].get(&io.name),
                false,
            ));
        }
        // Weights listed as inputs are written only when --input or --shape sets them.
        for io in &info.initializer_inputs {
            let shape = shapes[m].get(&io.name).map(|(s, _)| s);
            let value = values[m].get(&io.name);
            if shape.is_some() || value.is_some() {
                d.inputs
                    .push(input_draft(io, shape.cloned(), value, value.is_none()));
            }
        }
        drafts.push(d);
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "cannot build a scenario from the flags:\n  {}",
            problems.join("\n  ")
        );
    }
    let header = [
        format!("Written by `{}`.", spec.command),
        "Repeat or edit the run: bench sweep --scenario THIS_FILE --out NEW_DIR".to_string(),
        "Every key: docs/reference/scenario.md".to_string(),
    ];
    let mut tail = String::new();
    let mut table = "";
    for (t, k, v) in &spec.settings {
        if *t != table {
            let _ = write!(tail, "\n[{t}]\n");
            table = t;
        }
        let _ = writeln!(tail, "{k} = {v}");
    }
    let top = format!("name = {}\n", toml_str(&spec.name));
    Ok((render(&header, &top, &drafts, &tail), notes))
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

fn input_draft(
    io: &IoInfo,
    shape: Option<Vec<i64>>,
    value: Option<&InputValue>,
    weight_shape_only: bool,
) -> InputDraft {
    let generator = match value {
        Some(v) => Some((generator_toml(v), None)),
        None if weight_shape_only => None,
        None => io.dtype.as_ref().ok().map(|&t| proposed_generator(io, t)),
    };
    InputDraft {
        name: io.name.clone(),
        describe: format!("{} {}", io.dtype_name(), io.shape_string()),
        shape: shape.map(|s| (s, None)),
        generator,
    }
}

fn generator_toml(v: &InputValue) -> String {
    match v {
        InputValue::Bool(b) => format!(r#"{{ kind = "const", value = {b} }}"#),
        InputValue::Int(i) => format!(r#"{{ kind = "const", value = {i} }}"#),
        InputValue::Float(f) => format!(
            r#"{{ kind = "const", value = {} }}"#,
            toml::Value::Float(*f)
        ),
        InputValue::File(p) => format!(
            r#"{{ kind = "file", path = {} }}"#,
            toml_str(&p.display().to_string())
        ),
    }
}

fn join_x(shape: &[i64]) -> String {
    shape
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

/// `value   # comment`, or `value` alone.
fn with_comment(line: String, comment: &Option<String>) -> String {
    match comment {
        Some(c) => format!("{line}   # {c}\n"),
        None => format!("{line}\n"),
    }
}

fn render(header: &[String], top: &str, drafts: &[Draft], tail: &str) -> String {
    let mut s = String::new();
    for h in header {
        let _ = writeln!(s, "# {h}");
    }
    s.push_str(top);
    for d in drafts {
        s.push('\n');
        for w in &d.warnings {
            let _ = writeln!(
                s,
                "# WARNING: {w}; `bench validate` will refuse this model."
            );
        }
        let _ = writeln!(s, "[[model]]");
        let _ = writeln!(s, "name = {}", toml_str(&d.name));
        let _ = writeln!(s, "path = {}", toml_str(&d.path.display().to_string()));
        if let Some(t) = &d.test_data {
            let _ = writeln!(
                s,
                "test_data = {}   # gives the inputs it holds, their shapes, and the expected outputs",
                toml_str(&t.display().to_string())
            );
        }
        for line in d.signature.lines().skip(1) {
            let _ = writeln!(s, "#{line}");
        }
        if !d.dims.is_empty() {
            let _ = writeln!(s, "\n[model.dims]");
            for (n, v, c) in &d.dims {
                s.push_str(&with_comment(format!("{} = {v}", toml_key(n)), c));
            }
        }
        for i in &d.inputs {
            if i.shape.is_none() && i.generator.is_none() {
                continue;
            }
            let _ = writeln!(
                s,
                "\n[model.inputs.{}]   # {}",
                toml_key(&i.name),
                i.describe
            );
            if let Some((shape, c)) = &i.shape {
                let list: Vec<String> = shape.iter().map(i64::to_string).collect();
                s.push_str(&with_comment(format!("shape = [{}]", list.join(", ")), c));
            }
            if let Some((g, c)) = &i.generator {
                s.push_str(&with_comment(format!("generator = {g}"), c));
            }
        }
    }
    s.push_str(tail);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values_parse_with_dotted_and_colon_names() {
        let d = parse_dim("p2o.DynamicDimension.0=2").unwrap();
        assert_eq!((d.target.as_str(), d.value), ("p2o.DynamicDimension.0", 2));
        let s = parse_shape("ocr:x=1x3x48x192").unwrap();
        assert_eq!((s.target.as_str(), s.value), ("ocr:x", vec![1, 3, 48, 192]));
        assert_eq!(parse_shape("x=2,0").unwrap().value, vec![2, 0]);
        assert_eq!(
            parse_input("mask=true").unwrap().value,
            InputValue::Bool(true)
        );
        assert_eq!(
            parse_input("w=0.25").unwrap().value,
            InputValue::Float(0.25)
        );
        assert_eq!(parse_input("ids=3").unwrap().value, InputValue::Int(3));
        assert_eq!(
            parse_input("x=a=b.npy").unwrap().value,
            InputValue::File("a=b.npy".into())
        );
        for bad in ["x", "=1", "x=0", "x=two"] {
            assert!(parse_dim(bad).is_err(), "{bad}");
        }
        for bad in ["x=", "x=1xx3", "x=1x-1", "1x3"] {
            assert!(parse_shape(bad).is_err(), "{bad}");
        }
        assert!(parse_input("x=soon").is_err());
    }

    #[test]
    fn a_scope_names_a_model_only_when_one_has_that_name() {
        let names = vec!["ocr".to_string(), "tf".to_string()];
        assert_eq!(aim("ocr:x", &names), (Some(0), "x"));
        assert_eq!(aim("input_1:0", &names), (None, "input_1:0"));
        assert_eq!(aim("tf:input_1:0", &names), (Some(1), "input_1:0"));
    }

    #[test]
    fn model_names_come_from_stems_and_are_unique() {
        let paths: Vec<PathBuf> = ["a/mlp.onnx", "b/mlp.onnx", "c/my model.onnx"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(model_names(&paths), ["mlp", "mlp_2", "my_model"]);
    }

    #[test]
    fn keys_are_quoted_when_toml_would_split_them() {
        assert_eq!(toml_key("batch"), "batch");
        assert_eq!(
            toml_key("p2o.DynamicDimension.0"),
            "\"p2o.DynamicDimension.0\""
        );
        assert_eq!(toml_key("input_1:0"), "\"input_1:0\"");
    }

    #[test]
    fn batch_like_names() {
        for b in ["batch", "batch_size", "N", "BatchSize", "bs"] {
            assert!(batch_like(b), "{b}");
        }
        for n in ["seq", "p2o.DynamicDimension.0", "height"] {
            assert!(!batch_like(n), "{n}");
        }
    }
}
