//! Scenarios: the TOML file a user writes, checked and resolved before anything is spawned.
//!
//! Two stages: [`raw`] mirrors the file (serde, unknown keys rejected), then [`load`] resolves it into
//! a [`Scenario`] with no optional fields: absolute paths, shapes with every dynamic dim bound and
//! checked against the ONNX file, generated input samples, typed durations and the sweep axes. Every
//! problem becomes a [`ScenarioError`] naming the file, line and key, and saying how to fix it; all
//! problems found are reported together.

pub mod raw;
pub mod source;
pub mod sweep;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use sha2::Digest;

use crate::onnx::{self, Dim, IoInfo};
use crate::tensor::{self, DType, Generator, TensorData};
use raw::{OneOrMany, RawGenerator, RawScenario};
pub use source::{KeyPath, SourceMap};
pub use sweep::{Point, expand};

/// The largest single sample (all inputs of one model) the parent will generate: 1 GiB.
pub const MAX_SAMPLE_BYTES: usize = 1 << 30;
/// The most memory all generated samples of one model may take: 4 GiB.
pub const MAX_SAMPLES_BYTES: usize = 4 << 30;

/// How tensors travel between the load generator and a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transfer {
    /// Tensor bytes inside the frames on the worker's socket: the copy-through-a-queue baseline.
    Pipe,
}

impl Transfer {
    pub const ALL: [Transfer; 1] = [Transfer::Pipe];
    pub fn name(self) -> &'static str {
        match self {
            Transfer::Pipe => "pipe",
        }
    }
    /// Whether input bytes cross to the worker for every request (`per_request`) or once (`once`).
    pub fn staging(self) -> &'static str {
        match self {
            Transfer::Pipe => "per_request",
        }
    }
}

/// Where a worker runs its models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Cpu,
}

impl Provider {
    pub const ALL: [Provider; 1] = [Provider::Cpu];
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
        }
    }
}

/// A phase's length: wall time or a number of completed requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    Duration(#[serde(with = "duration_secs")] Duration),
    Requests(u64),
}

mod duration_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// One input of a model, fully resolved.
#[derive(Debug, Clone)]
pub struct InputSpec {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<i64>,
    pub generator: Generator,
    pub seed: u64,
}

/// One model of the scenario.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub name: String,
    pub path: PathBuf,
    pub inputs: Vec<InputSpec>,
    pub outputs: Vec<IoInfo>,
    /// `samples[i][j]` is sample `i` of input `j`.
    pub samples: Vec<Vec<TensorData>>,
}

/// What load to apply at every point.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Relative weight of each model, by model index; weights sum to more than zero.
    pub mix: Vec<f64>,
    pub warmup: Limit,
    pub measure: Limit,
}

/// The values of each sweep axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Axes {
    pub workers: Vec<usize>,
    pub intra_threads: Vec<usize>,
    pub transfer: Vec<Transfer>,
    pub provider: Vec<Provider>,
    pub concurrency: Vec<usize>,
}

/// A checked scenario: only this reaches the worker pool.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub file: PathBuf,
    /// SHA-256 of the scenario file's bytes, hex.
    pub hash: String,
    pub seed: u64,
    pub models: Vec<ModelSpec>,
    pub workload: Workload,
    pub axes: Axes,
    pub points: Vec<Point>,
}

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  fix: {}", self.hint)?;
        }
        Ok(())
    }
}

/// All problems found in a scenario file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "the scenario has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n{e}")?;
        }
        Ok(())
    }
}

/// Collects errors with their lines while resolving.
struct Errors<'a> {
    file: &'a Path,
    map: &'a SourceMap,
    list: Vec<ScenarioError>,
}

impl Errors<'_> {
    fn push(&mut self, key: &KeyPath, message: impl Into<String>, hint: impl Into<String>) {
        self.list.push(ScenarioError {
            file: self.file.to_path_buf(),
            line: self.map.line_of(key),
            key: key.to_string(),
            message: message.into(),
            hint: hint.into(),
        });
    }
}

/// Reads, parses and resolves a scenario file.
pub fn load(file: &Path) -> Result<Scenario, ScenarioErrors> {
    let one = |line, message: String, hint: &str| {
        ScenarioErrors(vec![ScenarioError {
            file: file.to_path_buf(),
            line,
            key: String::new(),
            message,
            hint: hint.to_string(),
        }])
    };
    let bytes = std::fs::read(file).map_err(|e| {
        one(
            None,
            format!("cannot read the scenario file: {e}"),
            "check the path given to --scenario",
        )
    })?;
    let text = String::from_utf8(bytes.clone()).map_err(|_| {
        one(
            None,
            "the file is not UTF-8 text".into(),
            "save it as UTF-8 TOML",
        )
    })?;
    let map = SourceMap::new(&text);
    let raw: RawScenario = toml::from_str(&text).map_err(|e| {
        let offset = e.span().map(|s| s.start);
        let key = offset
            .and_then(|o| map.key_at(o))
            .map(|k| k.to_string())
            .unwrap_or_default();
        ScenarioErrors(vec![ScenarioError {
            file: file.to_path_buf(),
            line: offset.map(|o| map.line_of_offset(o)),
            key: key.clone(),
            message: e.message().trim().replace('\n', " "),
            hint: if key.is_empty() {
                "see the scenario reference in README.md for the keys and their types".into()
            } else {
                format!("see `{key}` in the scenario reference in README.md for its type")
            },
        }])
    })?;
    let hash = hex(&sha2::Sha256::digest(&bytes));
    let mut errors = Errors {
        file,
        map: &map,
        list: Vec::new(),
    };
    let scenario = resolve(raw, file, hash, &mut errors);
    match scenario {
        Some(s) if errors.list.is_empty() => Ok(s),
        _ => Err(ScenarioErrors(errors.list)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A seed for one input, derived from the scenario seed and the model and input names, so adding a
/// model does not change the data of the others.
pub fn input_seed(seed: u64, model: &str, input: &str) -> u64 {
    let mut h = sha2::Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(model.as_bytes());
    h.update([0]);
    h.update(input.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

fn resolve(raw: RawScenario, file: &Path, hash: String, e: &mut Errors) -> Option<Scenario> {
    let root = KeyPath::default();
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = raw.name.unwrap_or_else(|| {
        file.file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
    });
    let seed = raw.seed.unwrap_or(0);
    let samples = match raw.samples {
        None => 8,
        Some(n) if n >= 1 => n as usize,
        Some(n) => {
            e.push(
                &root.key("samples"),
                format!("must be at least 1, got {n}"),
                "set `samples = 8` (distinct input samples generated per model)",
            );
            1
        }
    };

    if raw.model.is_empty() {
        e.push(
            &root.key("model"),
            "the scenario has no models",
            "add a [[model]] table with `name` and `path` (an .onnx file)",
        );
    }
    let declared: Vec<String> = raw.model.iter().filter_map(|m| m.name.clone()).collect();
    let mut models = Vec::new();
    let mut names = HashSet::new();
    for (i, m) in raw.model.into_iter().enumerate() {
        let key = root.key("model").index(i);
        if let Some(spec) = resolve_model(m, &key, dir, seed, samples, e) {
            if !names.insert(spec.name.clone()) {
                e.push(
                    &key.key("name"),
                    format!("model name `{}` is used twice", spec.name),
                    "give each [[model]] a unique name",
                );
            }
            models.push(spec);
        }
    }

    let workload = resolve_workload(raw.workload, &models, &declared, e);
    let axes = resolve_axes(raw.sweep.as_ref(), workload.1.clone(), e);
    let points = match expand(&axes) {
        Ok(p) => p,
        Err(n) => {
            e.push(
                &root.key("sweep"),
                format!(
                    "the sweep expands to {n} points, more than the limit of {}",
                    sweep::MAX_POINTS
                ),
                "split the sweep into several scenarios or shorten the axis lists",
            );
            Vec::new()
        }
    };
    Some(Scenario {
        name,
        file: file.to_path_buf(),
        hash,
        seed,
        models,
        workload: workload.0,
        axes,
        points,
    })
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

fn resolve_model(
    m: raw::RawModel,
    key: &KeyPath,
    dir: &Path,
    seed: u64,
    samples: usize,
    e: &mut Errors,
) -> Option<ModelSpec> {
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
    let Some(rel) = m.path else {
        e.push(
            key,
            format!("model `{name}` has no `path`"),
            "add `path = \"models/onnx/NAME.onnx\"` (relative to the scenario file)",
        );
        return None;
    };
    let path = dir.join(&rel);
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

    let model_inputs: HashSet<&str> = info.inputs.iter().map(|i| i.name.as_str()).collect();
    for k in m.inputs.keys() {
        if !model_inputs.contains(k.as_str()) {
            let list: Vec<&str> = info.inputs.iter().map(|i| i.name.as_str()).collect();
            e.push(
                &key.key("inputs").key(k),
                format!("model `{name}` has no input `{k}`"),
                format!("its inputs are: {}", list.join(", ")),
            );
        }
    }
    let named: HashSet<&str> = info
        .inputs
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
                    format!("its named dims are: {}", list.join(", "))
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

    let mut inputs = Vec::new();
    for io in &info.inputs {
        let ikey = key.key("inputs").key(&io.name);
        let raw_input = m.inputs.get(&io.name);
        let dtype = match io.dtype {
            Ok(d) => d,
            Err(ref t) => {
                e.push(
                    &ikey,
                    format!(
                        "input `{}` of model `{name}` has type {t}, which bench cannot generate",
                        io.name
                    ),
                    "bench supports float16/32/64, (u)int8-64 and bool inputs",
                );
                continue;
            }
        };
        let shape = resolve_shape(
            io,
            raw_input.and_then(|r| r.shape.as_deref()),
            &m.dims,
            &name,
            &ikey,
            e,
        );
        let generator = resolve_generator(
            raw_input.and_then(|r| r.generator.clone()),
            dtype,
            dir,
            &ikey.key("generator"),
            e,
        );
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
    if inputs.len() != info.inputs.len() {
        return None;
    }
    // A named dim has one size across the model's inputs, whether it came from `dims` or a shape.
    let mut bound: BTreeMap<&str, (i64, String)> = m
        .dims
        .iter()
        .map(|(k, &v)| (k.as_str(), (v, "`dims`".to_string())))
        .collect();
    for (input, io) in inputs.iter().zip(&info.inputs) {
        for (pos, d) in io.dims.iter().enumerate() {
            let Dim::Named(n) = d else { continue };
            let size = input.shape[pos];
            match bound.get(n.as_str()) {
                Some((v, from)) if *v != size => {
                    e.push(
                        &key.key("inputs").key(&input.name).key("shape"),
                        format!(
                            "dim `{n}` is {size} in input `{}` but {v} in {from}; a named dim has one size per model",
                            input.name
                        ),
                        format!("use {v} for `{n}` everywhere, or change it in {from}"),
                    );
                    return None;
                }
                Some(_) => {}
                None => {
                    bound.insert(n, (size, format!("input `{}`", input.name)));
                }
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
    // Generate the samples now, so a bad .npy file is reported before any worker starts.
    let mut per_input = Vec::new();
    for input in &inputs {
        match tensor::generate(
            &input.generator,
            input.dtype,
            &input.shape,
            input.seed,
            samples,
        ) {
            Ok(s) => per_input.push(s),
            Err(err) => {
                e.push(
                    &key.key("inputs").key(&input.name).key("generator"),
                    format!("{err:#}"),
                    "fix the generator or its file",
                );
                return None;
            }
        }
    }
    let count = per_input.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let samples = (0..count)
        .map(|i| per_input.iter().map(|s| s[i % s.len()].clone()).collect())
        .collect();
    Some(ModelSpec {
        name,
        path,
        inputs,
        outputs: info.outputs,
        samples,
    })
}

fn resolve_shape(
    io: &IoInfo,
    given: Option<&[i64]>,
    dims: &BTreeMap<String, i64>,
    model: &str,
    key: &KeyPath,
    e: &mut Errors,
) -> Option<Vec<i64>> {
    let input = &io.name;
    if let Some(given) = given {
        let skey = key.key("shape");
        if given.len() != io.dims.len() {
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
        for (pos, (&g, d)) in given.iter().zip(&io.dims).enumerate() {
            let bad = match d {
                Dim::Fixed(n) => g != *n,
                _ => g < 1,
            };
            if bad {
                e.push(
                    &skey,
                    format!(
                        "shape {given:?} contradicts input `{input}` of model `{model}`, which is {}: dim {pos} is {g}",
                        io.shape_string()
                    ),
                    match d {
                        Dim::Fixed(n) => format!("dim {pos} must be {n}"),
                        _ => format!("dim {pos} is dynamic: give it a size of at least 1"),
                    },
                );
                return None;
            }
        }
        return Some(given.to_vec());
    }
    let mut shape = Vec::with_capacity(io.dims.len());
    for (pos, d) in io.dims.iter().enumerate() {
        match d {
            Dim::Fixed(n) if *n >= 0 => shape.push(*n),
            Dim::Named(n) if dims.contains_key(n) => shape.push(dims[n]),
            Dim::Named(n) => {
                e.push(
                    key,
                    format!(
                        "dynamic dim `{n}` (position {pos}) of input `{input}` of model `{model}` {} is unbound",
                        io.shape_string()
                    ),
                    format!("bind it for the model with `dims = {{ {n} = 1 }}`, or give `inputs.{input}.shape`"),
                );
                return None;
            }
            _ => {
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

fn resolve_generator(
    raw: Option<RawGenerator>,
    dtype: DType,
    dir: &Path,
    key: &KeyPath,
    e: &mut Errors,
) -> Option<Generator> {
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
        RawGenerator::Npy { path } => {
            let p = dir.join(&path);
            if !p.is_file() {
                e.push(
                    key,
                    format!("npy file {} does not exist", p.display()),
                    "paths are relative to the scenario file's folder",
                );
                return None;
            }
            Generator::Npy { path: p }
        }
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

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|err| err.to_string())
}

fn resolve_workload(
    raw: Option<raw::RawWorkload>,
    models: &[ModelSpec],
    declared: &[String],
    e: &mut Errors,
) -> (Workload, Vec<usize>) {
    let key = KeyPath::default().key("workload");
    let raw = raw.unwrap_or(raw::RawWorkload {
        mix: None,
        concurrency: None,
        warmup: None,
        warmup_requests: None,
        duration: None,
        requests: None,
    });
    let mut mix = vec![1.0; models.len()];
    if let Some(m) = &raw.mix {
        mix = vec![0.0; models.len()];
        for (name, &w) in m {
            match models.iter().position(|s| &s.name == name) {
                Some(i) if w >= 0.0 && w.is_finite() => mix[i] = w,
                Some(_) => e.push(
                    &key.key("mix").key(name),
                    format!("weight must be a finite number >= 0, got {w}"),
                    "weights are relative, e.g. `mix = { a = 3, b = 1 }`",
                ),
                // A declared model that failed to resolve already has its own error.
                None if declared.contains(name) => {}
                None => e.push(
                    &key.key("mix").key(name),
                    format!("`{name}` is not a model of this scenario"),
                    format!("the models are: {}", declared.join(", ")),
                ),
            }
        }
        let weights_ok = m.values().all(|w| *w >= 0.0 && w.is_finite());
        if weights_ok && !models.is_empty() && mix.iter().sum::<f64>() <= 0.0 {
            e.push(
                &key.key("mix"),
                "the mix gives every model weight 0",
                "give at least one model a positive weight",
            );
        }
    }
    let concurrency = positive_axis(raw.concurrency.as_ref(), &key.key("concurrency"), 1, e);
    let limit = |dur: &Option<String>,
                 req: Option<i64>,
                 dk: &str,
                 rk: &str,
                 default: Limit,
                 e: &mut Errors|
     -> Limit {
        match (dur, req) {
            (Some(_), Some(_)) => {
                e.push(
                    &key.key(rk),
                    format!("set either `{dk}` or `{rk}`, not both"),
                    format!("remove one of `{dk}` and `{rk}`"),
                );
                default
            }
            (Some(s), None) => match parse_duration(s) {
                Ok(d) if !d.is_zero() || dk == "warmup" => Limit::Duration(d),
                Ok(_) => {
                    e.push(
                        &key.key(dk),
                        "must be longer than zero",
                        format!("e.g. `{dk} = \"5s\"`"),
                    );
                    default
                }
                Err(err) => {
                    e.push(
                        &key.key(dk),
                        format!("`{s}` is not a duration ({err})"),
                        format!("write it like `{dk} = \"5s\"` or \"500ms\""),
                    );
                    default
                }
            },
            (None, Some(n)) if n >= 1 || (n == 0 && rk == "warmup_requests") => {
                Limit::Requests(n as u64)
            }
            (None, Some(n)) => {
                let least = if rk == "warmup_requests" { 0 } else { 1 };
                e.push(
                    &key.key(rk),
                    format!("must be at least {least}, got {n}"),
                    format!("e.g. `{rk} = 1000`"),
                );
                default
            }
            (None, None) => default,
        }
    };
    let warmup = limit(
        &raw.warmup,
        raw.warmup_requests,
        "warmup",
        "warmup_requests",
        Limit::Duration(Duration::from_secs(1)),
        e,
    );
    let measure = limit(
        &raw.duration,
        raw.requests,
        "duration",
        "requests",
        Limit::Duration(Duration::from_secs(5)),
        e,
    );
    (
        Workload {
            mix,
            warmup,
            measure,
        },
        concurrency,
    )
}

fn positive_axis(
    raw: Option<&OneOrMany<i64>>,
    key: &KeyPath,
    default: usize,
    e: &mut Errors,
) -> Vec<usize> {
    let Some(raw) = raw else { return vec![default] };
    let values = raw.to_vec();
    if values.is_empty() {
        e.push(
            key,
            "the list is empty, so the sweep has no points",
            format!(
                "give at least one value, e.g. `{} = [{default}]`",
                last_key(key)
            ),
        );
        return vec![default];
    }
    let mut out = Vec::new();
    for v in values {
        if v < 1 {
            e.push(
                key,
                format!("values must be at least 1, got {v}"),
                "remove zero and negative values",
            );
        } else if out.contains(&(v as usize)) {
            e.push(
                key,
                format!("value {v} is listed twice"),
                "list each value once",
            );
        } else {
            out.push(v as usize);
        }
    }
    if out.is_empty() { vec![default] } else { out }
}

fn last_key(key: &KeyPath) -> String {
    match key.0.last() {
        Some(source::Seg::Key(k)) => k.clone(),
        _ => key.to_string(),
    }
}

fn named_axis<T: Copy + PartialEq>(
    raw: Option<&OneOrMany<String>>,
    key: &KeyPath,
    all: &[T],
    name: fn(T) -> &'static str,
    later: &[(&str, &str)],
    e: &mut Errors,
) -> Vec<T> {
    let Some(raw) = raw else { return vec![all[0]] };
    let values = raw.to_vec();
    if values.is_empty() {
        e.push(
            key,
            "the list is empty, so the sweep has no points",
            format!(
                "give at least one value, e.g. `{} = [\"{}\"]`",
                last_key(key),
                name(all[0])
            ),
        );
        return vec![all[0]];
    }
    let known: Vec<&str> = all.iter().map(|&t| name(t)).collect();
    let mut out = Vec::new();
    for v in values {
        match all.iter().find(|&&t| name(t) == v) {
            Some(&t) if out.contains(&t) => e.push(
                key,
                format!("`{v}` is listed twice"),
                "list each value once",
            ),
            Some(&t) => out.push(t),
            None => match later.iter().find(|(n, _)| *n == v) {
                Some((_, why)) => e.push(
                    key,
                    format!("`{v}` is not available in this version of bench: {why}"),
                    format!("use one of: {}", known.join(", ")),
                ),
                None => e.push(
                    key,
                    format!("unknown value `{v}`"),
                    format!("use one of: {}", known.join(", ")),
                ),
            },
        }
    }
    if out.is_empty() { vec![all[0]] } else { out }
}

fn resolve_axes(raw: Option<&raw::RawSweep>, concurrency: Vec<usize>, e: &mut Errors) -> Axes {
    let key = KeyPath::default().key("sweep");
    Axes {
        workers: positive_axis(
            raw.and_then(|r| r.workers.as_ref()),
            &key.key("workers"),
            1,
            e,
        ),
        intra_threads: positive_axis(
            raw.and_then(|r| r.intra_threads.as_ref()),
            &key.key("intra_threads"),
            1,
            e,
        ),
        transfer: named_axis(
            raw.and_then(|r| r.transfer.as_ref()),
            &key.key("transfer"),
            &Transfer::ALL,
            Transfer::name,
            &[
                ("shm", "shared-memory transfer is not built yet"),
                ("index", "index-only transfer is not built yet"),
                ("device", "GPU-resident transfer needs the CUDA provider"),
            ],
            e,
        ),
        provider: named_axis(
            raw.and_then(|r| r.provider.as_ref()),
            &key.key("provider"),
            &Provider::ALL,
            Provider::name,
            &[("cuda", "the CUDA execution provider is not built yet")],
            e,
        ),
        concurrency,
    }
}

#[cfg(test)]
mod tests;
