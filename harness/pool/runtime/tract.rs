//! tract, the pure-Rust ONNX engine (`tract-onnx`), in the worker's own process: for users who cannot
//! ship ONNX Runtime's C++ library.
//!
//! tract compiles a model for fixed input shapes: [`TractModel::load`] binds each input to the
//! element type and shape the scenario gives, then optimises the graph for them. A request of any
//! other shape is refused. Loading tells four failures apart, because the caller treats them
//! differently: the file cannot be read, the file is not an ONNX model (bad for every runtime), the
//! scenario's inputs do not fit the model (fix the scenario), or it is a model that tract cannot run
//! (an operator it lacks, a construct it cannot type). Only that last one,
//! [`TractError::Unsupported`], marks the model unsupported by this runtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tract_onnx::pb;
use tract_onnx::prelude::{
    DatumType, Framework, InferenceFact, InferenceModel, InferenceModelExt, RunOptions, Symbol,
    TDim, TValue, TVec, Tensor, TypedRunnableModel, TypedSimpleState,
};
use tract_onnx::tract_hir::internal::{Factoid, GenericFactoid, ShapeFactoid};

use super::Model;
use crate::model::tensor::{DType, TensorData, TensorView};
use crate::scenario::InputSpec;

/// Why a model could not be loaded into tract.
#[derive(Debug, thiserror::Error)]
pub enum TractError {
    /// The file could not be read.
    #[error("model `{model}`: cannot read {}: {err}", path.display())]
    Read {
        model: String,
        path: PathBuf,
        err: std::io::Error,
    },
    /// The file is not an ONNX model: no runtime can load it.
    #[error(
        "model `{model}`: {} is not an ONNX model ({reason}); check the path or re-export the model",
        path.display()
    )]
    NotOnnx {
        model: String,
        path: PathBuf,
        reason: String,
    },
    /// A valid ONNX model that tract cannot run: an operator it does not implement, a type or shape
    /// it cannot infer. Another runtime may run it.
    #[error(
        "model `{model}` is not supported by tract: {reason}; run it with ONNX Runtime (runtime = \"ort\")"
    )]
    Unsupported { model: String, reason: String },
    /// The inputs the scenario gives do not fit the model's declared inputs.
    #[error("model `{model}`: {reason}")]
    Inputs { model: String, reason: String },
}

impl TractError {
    /// Whether this means "tract cannot run this model" (mark it unsupported and go on) rather than
    /// a bad file or bad inputs (the user must fix the scenario).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, TractError::Unsupported { .. })
    }
}

/// Options a worker applies to every tract model.
#[derive(Debug, Clone, Copy)]
pub struct TractOptions {
    /// Threads for one operator (matrix products, large element-wise and reduction ops) through a
    /// private pool of this many threads; 1 (or 0) runs everything on the calling thread.
    pub intra_threads: usize,
}

/// A model optimised by tract for the input shapes of the scenario.
pub struct TractModel {
    state: TypedSimpleState,
    /// Name, element type and shape of each input, in the model's input order.
    inputs: Vec<(String, DatumType, Vec<usize>)>,
}

impl std::fmt::Debug for TractModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractModel")
            .field("inputs", &self.inputs)
            .finish_non_exhaustive()
    }
}

/// The tract element type of a harness dtype; `None` for those this adapter does not hand to
/// tract (bfloat16, float8, strings).
fn datum_type(d: DType) -> Option<DatumType> {
    Some(match d {
        DType::F32 => DatumType::F32,
        DType::F64 => DatumType::F64,
        DType::F16 => DatumType::F16,
        DType::I8 => DatumType::I8,
        DType::I16 => DatumType::I16,
        DType::I32 => DatumType::I32,
        DType::I64 => DatumType::I64,
        DType::U8 => DatumType::U8,
        DType::U16 => DatumType::U16,
        DType::U32 => DatumType::U32,
        DType::U64 => DatumType::U64,
        DType::Bool => DatumType::Bool,
        DType::BF16
        | DType::F8E4M3FN
        | DType::F8E4M3FNUZ
        | DType::F8E5M2
        | DType::F8E5M2FNUZ
        | DType::Str => return None,
    })
}

/// The harness dtype of a tract element type; `None` for tract-only types (strings, quantized, ...).
fn dtype_of(t: DatumType) -> Option<DType> {
    Some(match t {
        DatumType::F32 => DType::F32,
        DatumType::F64 => DType::F64,
        DatumType::F16 => DType::F16,
        DatumType::I8 => DType::I8,
        DatumType::I16 => DType::I16,
        DatumType::I32 => DType::I32,
        DatumType::I64 => DType::I64,
        DatumType::U8 => DType::U8,
        DatumType::U16 => DType::U16,
        DatumType::U32 => DType::U32,
        DatumType::U64 => DType::U64,
        DatumType::Bool => DType::Bool,
        _ => return None,
    })
}

/// The operators of `graph` (and of its subgraphs) that tract has no implementation for, as
/// `OpType (node `name`)`, in graph order.
fn unimplemented_ops(graph: &pb::GraphProto, known: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
    for node in &graph.node {
        if !known(&node.op_type) {
            let domain = if node.domain.is_empty() || node.domain == "ai.onnx" {
                String::new()
            } else {
                format!("{}.", node.domain)
            };
            out.push(format!("{domain}{} (node `{}`)", node.op_type, node.name));
        }
        for attr in &node.attribute {
            for g in attr.g.iter().chain(&attr.graphs) {
                unimplemented_ops(g, known, out);
            }
        }
    }
}

/// Binds an input declared as `declared` to tensors of `dt` and `shape`. Checks the element type,
/// the rank and every fixed axis; records the size each named axis (`batch`, `seq`) takes in
/// `symbols`, which must agree across inputs. Returns the input's fact: named axes stay named, so
/// that the shapes the graph declares in those names still agree until the names are given sizes,
/// and axes of unknown size take the given size.
fn bind(
    declared: &InferenceFact,
    dt: DatumType,
    shape: &[usize],
    input: &str,
    symbols: &mut HashMap<Symbol, (i64, String)>,
) -> Result<InferenceFact, String> {
    if let Some(want) = declared.datum_type.concretize().filter(|&d| d != dt) {
        return Err(format!("the element type must be {}", dt_name(want)));
    }
    let dims: Vec<_> = declared.shape.dims().collect();
    if dims.len() != shape.len() && !(declared.shape.is_open() && dims.len() < shape.len()) {
        return Err(format!("the rank must be {}", dims.len()));
    }
    let mut bound = TVec::new();
    for (axis, &n) in shape.iter().enumerate() {
        let size = i64::try_from(n).map_err(|_| format!("axis {axis} is too large"))?;
        let dim = match dims.get(axis).and_then(|d| d.concretize()) {
            None => TDim::Val(size),
            Some(TDim::Val(v)) if v != size => {
                return Err(format!("axis {axis} must be {v}"));
            }
            Some(TDim::Sym(sym)) => {
                let (was, by) = symbols
                    .entry(sym.clone())
                    .or_insert_with(|| (size, input.to_string()));
                if *was != size {
                    return Err(format!("`{sym}` is {was} in input `{by}`"));
                }
                TDim::Sym(sym)
            }
            Some(d) => d,
        };
        bound.push(GenericFactoid::Only(dim));
    }
    Ok(InferenceFact::dt_shape(dt, ShapeFactoid::closed(bound)))
}

/// A declared input as users read it: `float32 [batch, 10]`.
fn describe(fact: &InferenceFact) -> String {
    let dt = fact
        .datum_type
        .concretize()
        .map_or_else(|| "any type".to_string(), dt_name);
    let dims: Vec<String> = fact
        .shape
        .dims()
        .map(|d| d.concretize().map_or_else(|| "?".into(), |d| d.to_string()))
        .collect();
    let open = if fact.shape.is_open() { ", ..." } else { "" };
    format!("{dt} [{}{open}]", dims.join(", "))
}

/// The harness's name of a tract element type (`float32`), or tract's own for the others.
fn dt_name(dt: DatumType) -> String {
    dtype_of(dt).map_or_else(|| format!("{dt:?}"), |d| d.name().to_string())
}

/// An error chain on one line: `outer: cause: root cause`.
fn chain(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

impl TractModel {
    /// Loads the ONNX model at `path` (called `name` in messages), binds its inputs to the element
    /// types and shapes of `inputs` (matched by name; every model input must be given), optimises it
    /// for them and prepares it to run.
    pub fn load(
        name: &str,
        path: &Path,
        inputs: &[InputSpec],
        opts: TractOptions,
    ) -> Result<TractModel, TractError> {
        let blame = Blame { name, path };
        let mut model = parse(&blame)?;
        let (bound, symbols) = bind_inputs(&mut model, inputs, &blame)?;
        let state = optimise(model, symbols, opts, &blame)?;
        Ok(TractModel {
            state,
            inputs: bound,
        })
    }
}

/// The model a load is about, to name in its errors.
struct Blame<'a> {
    name: &'a str,
    path: &'a Path,
}

impl Blame<'_> {
    fn unsupported(&self, reason: String) -> TractError {
        TractError::Unsupported {
            model: self.name.to_string(),
            reason,
        }
    }

    fn bad_inputs(&self, reason: String) -> TractError {
        TractError::Inputs {
            model: self.name.to_string(),
            reason,
        }
    }

    fn not_onnx(&self, reason: String) -> TractError {
        TractError::NotOnnx {
            model: self.name.to_string(),
            path: self.path.to_path_buf(),
            reason,
        }
    }
}

/// Reads and parses the model file into tract's graph. Tells a file that cannot be read, one that
/// is not an ONNX model, and a model that uses operators tract does not implement apart.
fn parse(blame: &Blame) -> Result<InferenceModel, TractError> {
    let path = blame.path;
    let bytes = std::fs::read(path).map_err(|err| TractError::Read {
        model: blame.name.to_string(),
        path: path.to_path_buf(),
        err,
    })?;
    let onnx = tract_onnx::onnx();
    let proto = onnx
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| blame.not_onnx(format!("not a valid protobuf ModelProto: {}", chain(&e))))?;
    let Some(graph) = &proto.graph else {
        return Err(blame.not_onnx("it has no graph".into()));
    };
    if graph.node.is_empty() && graph.output.is_empty() {
        return Err(blame.not_onnx("its graph is empty".into()));
    }

    // Unknown operators parse into placeholders that fail only later, deep in type inference:
    // name them all up front instead.
    let mut missing = Vec::new();
    let known = |op: &str| onnx.op_register.0.contains_key(op);
    unimplemented_ops(graph, &known, &mut missing);
    if !missing.is_empty() {
        return Err(blame.unsupported(format!(
            "tract does not implement operator{} {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    }

    let dir = path.parent().and_then(Path::to_str);
    let parsed = onnx
        .parse(&proto, dir)
        .map_err(|e| blame.unsupported(format!("cannot build the graph: {}", chain(&e))))?;
    if !parsed.unresolved_inputs.is_empty() {
        return Err(blame.not_onnx(format!(
            "nodes read tensors that nothing produces: {}",
            parsed.unresolved_inputs.join(", ")
        )));
    }
    Ok(parsed.model)
}

/// What binding the inputs gives: each input's name, element type and shape in the model's
/// order, and each named axis's size with the input that gave it.
type Bound = (
    Vec<(String, DatumType, Vec<usize>)>,
    HashMap<Symbol, (i64, String)>,
);

/// Binds every model input to the scenario's concrete type and shape (see [`bind`]); an input the
/// model lacks, or one it has that the scenario does not give, is the scenario's error.
fn bind_inputs(
    model: &mut InferenceModel,
    inputs: &[InputSpec],
    blame: &Blame,
) -> Result<Bound, TractError> {
    let outlets = model
        .input_outlets()
        .map_err(|e| blame.unsupported(chain(&e)))?
        .to_vec();
    let names: Vec<String> = outlets
        .iter()
        .map(|o| model.node(o.node).name.clone())
        .collect();
    let given: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    if let Some(extra) = given.iter().find(|g| !names.iter().any(|n| n == *g)) {
        return Err(blame.bad_inputs(format!(
            "the model has no input `{extra}`; its inputs are {}",
            names.join(", ")
        )));
    }
    let mut bound = Vec::with_capacity(names.len());
    let mut symbols = HashMap::new();
    for (ix, input_name) in names.iter().enumerate() {
        let spec = inputs
            .iter()
            .find(|i| &i.name == input_name)
            .ok_or_else(|| {
                blame.bad_inputs(format!(
                    "input `{input_name}` is not given a type and shape (tract needs every input's)"
                ))
            })?;
        let shape = spec
            .shape
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<Vec<usize>, _>>()
            .map_err(|_| {
                blame.bad_inputs(format!(
                    "input `{input_name}`: shape {:?} has a negative dimension",
                    spec.shape
                ))
            })?;
        let dt = datum_type(spec.dtype).ok_or_else(|| {
            blame.unsupported(format!(
                "input `{input_name}` is {}, which bench does not hand to tract",
                spec.dtype
            ))
        })?;
        let declared = model
            .input_fact(ix)
            .map_err(|e| blame.unsupported(chain(&e)))?;
        let fact = bind(declared, dt, &shape, input_name, &mut symbols).map_err(|why| {
            blame.bad_inputs(format!(
                "input `{input_name}` is declared {}, the scenario gives {} {:?}: {why}",
                describe(declared),
                spec.dtype,
                spec.shape
            ))
        })?;
        model
            .set_input_fact(ix, fact)
            .map_err(|e| blame.unsupported(chain(&e)))?;
        bound.push((input_name.clone(), dt, shape));
    }
    Ok((bound, symbols))
}

/// Types the graph with its named axes, then gives them the scenario's sizes, optimises for
/// those, checks that every output has an element type the harness handles, and prepares the
/// plan to run on `opts.intra_threads` threads.
fn optimise(
    model: InferenceModel,
    symbols: HashMap<Symbol, (i64, String)>,
    opts: TractOptions,
    blame: &Blame,
) -> Result<TypedSimpleState, TractError> {
    let unsupported = |e: anyhow::Error| blame.unsupported(chain(&e));
    let typed = model.into_typed().map_err(unsupported)?;
    let sizes: HashMap<Symbol, TDim> = symbols
        .into_iter()
        .map(|(sym, (n, _))| (sym, TDim::Val(n)))
        .collect();
    let optimized = typed
        .set_symbols(&sizes)
        .and_then(|m| m.into_optimized())
        .map_err(unsupported)?;
    for (ix, o) in optimized
        .output_outlets()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let fact = optimized.outlet_fact(*o).map_err(unsupported)?;
        if dtype_of(fact.datum_type).is_none() && fact.datum_type != DatumType::TDim {
            return Err(blame.unsupported(format!(
                "output #{ix} has element type {:?}, which the harness does not handle",
                fact.datum_type
            )));
        }
    }
    let run_options = RunOptions {
        executor: executor(opts.intra_threads).map_err(|why| blame.unsupported(why))?,
        ..RunOptions::default()
    };
    let plan: std::sync::Arc<TypedRunnableModel> = optimized
        .into_runnable_with_options(&run_options)
        .map_err(unsupported)?;
    plan.spawn().map_err(unsupported)
}

/// The executor for `threads` intra-op threads: `None` (tract's default, the calling thread) for
/// one, a private rayon pool otherwise.
fn executor(threads: usize) -> Result<Option<tract_onnx::prelude::multithread::Executor>, String> {
    use tract_onnx::prelude::multithread::Executor;
    if threads <= 1 {
        return Ok(Some(Executor::SingleThread));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("tract-{i}"))
        .build()
        .map_err(|e| format!("cannot start {threads} intra-op threads: {e}"))?;
    Ok(Some(Executor::MultiThread(std::sync::Arc::new(pool))))
}

/// A tract tensor holding a copy of `t`'s bytes (tract aligns its buffers for SIMD).
fn to_tensor(t: &TensorView<'_>, dt: DatumType, shape: &[usize]) -> Result<Tensor, String> {
    if t.dtype == DType::Bool {
        // Any non-zero byte is true; tract's `bool` must hold exactly 0 or 1.
        let owned: Vec<u8> = t.bytes.iter().map(|&b| u8::from(b != 0)).collect();
        // SAFETY: every byte is 0 or 1, a valid `bool`.
        return unsafe { Tensor::from_raw_dt(dt, shape, &owned) }.map_err(|e| chain(&e));
    }
    // SAFETY: numeric element types accept any bit pattern; the length was checked by `check`.
    unsafe { Tensor::from_raw_dt(dt, shape, t.bytes) }.map_err(|e| chain(&e))
}

/// A harness tensor with a copy of a tract output.
fn from_tensor(index: usize, t: &Tensor) -> Result<TensorData, String> {
    let t = if t.datum_type() == DatumType::TDim {
        // Shape arithmetic that ends in an output: plain integers by then.
        std::borrow::Cow::Owned(
            t.cast_to::<i64>()
                .map_err(|e| format!("output #{index}: {}", chain(&e)))?
                .into_owned(),
        )
    } else {
        std::borrow::Cow::Borrowed(t)
    };
    let dtype = dtype_of(t.datum_type()).ok_or_else(|| {
        format!(
            "output #{index} has element type {:?}, which the harness does not handle",
            t.datum_type()
        )
    })?;
    let bytes = t
        .try_as_plain_ram()
        .map_err(|e| format!("output #{index}: {}", chain(&e)))?
        .as_bytes()
        .to_vec();
    Ok(TensorData {
        dtype,
        shape: t.shape().iter().map(|&d| d as i64).collect(),
        bytes,
    })
}

impl Model for TractModel {
    fn run(&mut self, inputs: &[TensorView<'_>]) -> Result<Vec<TensorData>, String> {
        if inputs.len() != self.inputs.len() {
            return Err(format!(
                "model takes {} inputs ({}), request has {}",
                self.inputs.len(),
                self.inputs
                    .iter()
                    .map(|i| i.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                inputs.len()
            ));
        }
        let mut values = tract_onnx::prelude::TVec::with_capacity(inputs.len());
        for ((name, dt, shape), t) in self.inputs.iter().zip(inputs) {
            t.check()?;
            if datum_type(t.dtype) != Some(*dt)
                || !t
                    .shape
                    .iter()
                    .map(|&d| d as usize)
                    .eq(shape.iter().copied())
            {
                return Err(format!(
                    "input `{name}`: the model was optimised for {dt:?} {shape:?}, request has {} {:?}",
                    t.dtype, t.shape
                ));
            }
            let tensor = to_tensor(t, *dt, shape).map_err(|e| format!("input `{name}`: {e}"))?;
            values.push(TValue::from(tensor));
        }
        let outputs = self.state.run(values).map_err(|e| chain(&e))?;
        outputs
            .iter()
            .enumerate()
            .map(|(i, t)| from_tensor(i, t))
            .collect()
    }
}

/// Whether tract runs the model at `path` with `inputs`: `Ok(None)` when it loads, `Ok(Some(why))`
/// when tract cannot run it ([`TractError::Unsupported`]; `why` names the operators or quotes
/// tract). Any other failure is an error: the file or the scenario is wrong for every runtime.
///
/// The parent asks this before a tract point starts, so a point can leave such models out instead
/// of failing. The answer is remembered per file and inputs for the life of the process: a sweep
/// or a capacity search asks again for every point.
pub(crate) fn support(
    name: &str,
    path: &Path,
    inputs: &[InputSpec],
) -> Result<Option<String>, TractError> {
    type Key = (PathBuf, String);
    static KNOWN: std::sync::Mutex<Option<HashMap<Key, Option<String>>>> =
        std::sync::Mutex::new(None);
    let shapes: Vec<String> = inputs
        .iter()
        .map(|i| format!("{}:{}{:?}", i.name, i.dtype, i.shape))
        .collect();
    let key = (path.to_path_buf(), shapes.join(","));
    if let Some(known) = KNOWN
        .lock()
        .expect("tract support cache")
        .get_or_insert_with(HashMap::new)
        .get(&key)
    {
        return Ok(known.clone());
    }
    let answer = match TractModel::load(name, path, inputs, TractOptions { intra_threads: 1 }) {
        Ok(_) => None,
        Err(TractError::Unsupported { reason, .. }) => Some(reason),
        Err(e) => return Err(e),
    };
    KNOWN
        .lock()
        .expect("tract support cache")
        .get_or_insert_with(HashMap::new)
        .insert(key, answer.clone());
    Ok(answer)
}
