//! ONNX Runtime through the `ort` crate: one environment per process, one session per model.
//!
//! Inputs are handed to ONNX Runtime as views over the received bytes (no copy) when the bytes are
//! aligned for their element type; outputs are copied out once into the reply.

use std::path::Path;
use std::sync::OnceLock;

use ort::session::{Session, SessionInputValue, builder::GraphOptimizationLevel};
use ort::value::{DynTensorValueType, TensorElementType, TensorRef};

use super::Model;
use crate::tensor::{DType, TensorData, TensorView};

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Starts ONNX Runtime from the library at `lib` (once per process; later calls reuse it).
pub fn environment(lib: &Path) -> Result<&'static ort::environment::Environment, String> {
    ENVIRONMENT
        .get_or_init(|| {
            let builder =
                ort::init_from(lib).map_err(|e| format!("cannot load ONNX Runtime: {e}"))?;
            builder
                .with_name("bench")
                .with_telemetry(false)
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The version string of the loaded ONNX Runtime build.
pub fn build_info() -> String {
    ort::info().to_string()
}

/// Session options a worker applies to every model.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    pub intra_threads: usize,
}

fn build_session(
    env: &ort::environment::Environment,
    path: &Path,
    opts: SessionOptions,
) -> ort::Result<Session> {
    Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::All)?
        .with_intra_threads(opts.intra_threads)?
        .with_inter_threads(1)?
        .commit_from_file(path)
}

/// A model loaded into an ONNX Runtime session.
pub struct OrtModel {
    session: Session,
    inputs: Vec<String>,
    outputs: Vec<String>,
}

impl OrtModel {
    pub fn load(lib: &Path, path: &Path, opts: SessionOptions) -> Result<OrtModel, String> {
        let env = environment(lib)?;
        let session = build_session(env, path, opts).map_err(|e| e.to_string())?;
        let inputs = session
            .inputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let outputs = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        Ok(OrtModel {
            session,
            inputs,
            outputs,
        })
    }
}

fn element_type(d: DType) -> TensorElementType {
    match d {
        DType::F32 => TensorElementType::Float32,
        DType::F64 => TensorElementType::Float64,
        DType::F16 => TensorElementType::Float16,
        DType::I8 => TensorElementType::Int8,
        DType::I16 => TensorElementType::Int16,
        DType::I32 => TensorElementType::Int32,
        DType::I64 => TensorElementType::Int64,
        DType::U8 => TensorElementType::Uint8,
        DType::U16 => TensorElementType::Uint16,
        DType::U32 => TensorElementType::Uint32,
        DType::U64 => TensorElementType::Uint64,
        DType::Bool => TensorElementType::Bool,
    }
}

fn dtype_of(t: TensorElementType) -> Option<DType> {
    [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::Bool,
    ]
    .into_iter()
    .find(|&d| element_type(d) == t)
}

/// A view over `t`'s bytes as an ONNX Runtime tensor. Zero-copy when aligned; otherwise the bytes are
/// copied into a typed buffer that the returned value owns.
fn input_value<'a>(t: &TensorView<'a>) -> ort::Result<SessionInputValue<'a>> {
    fn view<'a, T: bytemuck::Pod + ort::value::PrimitiveTensorElementType + std::fmt::Debug>(
        t: &TensorView<'a>,
    ) -> ort::Result<SessionInputValue<'a>> {
        match bytemuck::try_cast_slice::<u8, T>(t.bytes) {
            Ok(s) => Ok(TensorRef::from_array_view((t.shape.to_vec(), s))?.into()),
            Err(_) => {
                let owned: Vec<T> = bytemuck::pod_collect_to_vec(t.bytes);
                Ok(ort::value::Tensor::from_array((t.shape.to_vec(), owned))?.into())
            }
        }
    }
    match t.dtype {
        DType::F32 => view::<f32>(t),
        DType::F64 => view::<f64>(t),
        DType::F16 => view::<half::f16>(t),
        DType::I8 => view::<i8>(t),
        DType::I16 => view::<i16>(t),
        DType::I32 => view::<i32>(t),
        DType::I64 => view::<i64>(t),
        DType::U8 => view::<u8>(t),
        DType::U16 => view::<u16>(t),
        DType::U32 => view::<u32>(t),
        DType::U64 => view::<u64>(t),
        DType::Bool => {
            let owned: Vec<bool> = t.bytes.iter().map(|&b| b != 0).collect();
            Ok(ort::value::Tensor::from_array((t.shape.to_vec(), owned))?.into())
        }
    }
}

impl Model for OrtModel {
    fn run(&mut self, inputs: &[TensorView<'_>]) -> Result<Vec<TensorData>, String> {
        if inputs.len() != self.inputs.len() {
            return Err(format!(
                "model takes {} inputs ({}), request has {}",
                self.inputs.len(),
                self.inputs.join(", "),
                inputs.len()
            ));
        }
        let mut values = Vec::with_capacity(inputs.len());
        for (name, t) in self.inputs.iter().zip(inputs) {
            t.check()?;
            let v = input_value(t).map_err(|e| format!("input `{name}`: {e}"))?;
            values.push((name.as_str(), v));
        }
        let outputs = self.session.run(values).map_err(|e| e.to_string())?;
        let mut result = Vec::with_capacity(self.outputs.len());
        for name in &self.outputs {
            let value = outputs
                .get(name)
                .ok_or_else(|| format!("output `{name}` missing"))?;
            let tensor = value
                .view()
                .downcast::<DynTensorValueType>()
                .map_err(|e| format!("output `{name}` is not a tensor: {e}"))?;
            let dtype = dtype_of(*tensor.data_type()).ok_or_else(|| {
                format!(
                    "output `{name}` has unsupported type {:?}",
                    tensor.data_type()
                )
            })?;
            let shape: Vec<i64> = tensor.shape().iter().copied().collect();
            let len = TensorData::numel(&shape) * dtype.size();
            let ptr = tensor.data_ptr().cast::<u8>();
            let bytes = if len == 0 || ptr.is_null() {
                Vec::new()
            } else {
                // SAFETY: a CPU tensor of `shape` and `dtype` owns `len` contiguous bytes at `ptr`,
                // valid while `outputs` lives.
                unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
            };
            result.push(TensorData {
                dtype,
                shape,
                bytes,
            });
        }
        Ok(result)
    }
}
