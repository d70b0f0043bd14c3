//! ONNX Runtime through the `ort` crate: one environment per process, one session per model.
//!
//! Inputs are handed to ONNX Runtime as views over the received bytes (no copy) when the bytes are
//! aligned for their element type; outputs are copied out once into the reply.

use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::OnceLock;

use ort::session::{Session, SessionInputValue, builder::GraphOptimizationLevel};
use ort::value::{DynTensorValueType, TensorElementType, TensorRef};

use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::IoBinding;

use super::{Model, SharedRun};
use crate::model::tensor::{DType, TensorData, TensorView};
use crate::pool::protocol::GpuSetup;
use crate::scenario::{
    ArenaExtend, ConvAlgoSearch, ExecutionMode, GraphOptimization, SessionKnobs,
};

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Starts ONNX Runtime from the library at `lib` (once per process; later calls reuse it).
pub(crate) fn environment(lib: &Path) -> Result<&'static ort::environment::Environment, String> {
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
pub(crate) fn build_info() -> String {
    ort::info().to_string()
}

/// Session options a worker applies to every model.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub intra_threads: usize,
    /// Run on this GPU with the CUDA execution provider.
    pub gpu: Option<GpuSetup>,
    /// The point's session options (graph optimisation, execution mode, spinning, arena, ...).
    pub knobs: SessionKnobs,
}

/// The CUDA execution provider with the scenario's options. `error_on_failure`: without it a
/// provider that cannot start is only logged and the session silently runs on the CPU.
fn cuda_provider(gpu: &GpuSetup) -> ort::ep::ExecutionProviderDispatch {
    let mut cuda = ort::ep::CUDA::default()
        .with_device_id(gpu.device as i32)
        .with_conv_algorithm_search(match gpu.conv_algo_search {
            ConvAlgoSearch::Exhaustive => ort::ep::cuda::ConvAlgorithmSearch::Exhaustive,
            ConvAlgoSearch::Heuristic => ort::ep::cuda::ConvAlgorithmSearch::Heuristic,
            ConvAlgoSearch::Default => ort::ep::cuda::ConvAlgorithmSearch::Default,
        })
        .with_arena_extend_strategy(match gpu.arena_extend_strategy {
            ArenaExtend::NextPowerOfTwo => ort::ep::ArenaExtendStrategy::NextPowerOfTwo,
            ArenaExtend::SameAsRequested => ort::ep::ArenaExtendStrategy::SameAsRequested,
        });
    if let Some(limit) = gpu.gpu_mem_limit_bytes {
        cuda = cuda.with_memory_limit(limit as usize);
    }
    cuda.build().error_on_failure()
}

/// ONNX Runtime's level for a `graph_optimization` value. `all` is `All`, not `Level3` (the
/// layout level alone).
fn optimization_level(g: GraphOptimization) -> GraphOptimizationLevel {
    match g {
        GraphOptimization::Disable => GraphOptimizationLevel::Disable,
        GraphOptimization::Basic => GraphOptimizationLevel::Level1,
        GraphOptimization::Extended => GraphOptimizationLevel::Level2,
        GraphOptimization::All => GraphOptimizationLevel::All,
    }
}

fn build_session(
    env: &ort::environment::Environment,
    path: &Path,
    opts: &SessionOptions,
) -> ort::Result<Session> {
    let knobs = &opts.knobs;
    let mut builder = Session::builder(env)?
        .with_optimization_level(optimization_level(knobs.graph_optimization))?
        .with_intra_threads(opts.intra_threads)?
        .with_parallel_execution(knobs.execution_mode == ExecutionMode::Parallel)?
        .with_inter_threads(knobs.inter_threads)?
        // `session.intra_op.allow_spinning`: "1" is ONNX Runtime's default; set either way so
        // the run records what it measured, not what a library version happens to default to.
        .with_intra_op_spinning(knobs.intra_spinning)?
        .with_memory_pattern(knobs.memory_pattern)?
        // `session.disable_prepacking`: "0" (prepack) is ONNX Runtime's default; set either way,
        // as spinning is.
        .with_prepacking(knobs.prepacking)?;
    let mut providers = Vec::new();
    if let Some(gpu) = &opts.gpu {
        providers.push(cuda_provider(gpu));
    }
    // The CPU memory arena is on by default. Registering the CPU provider is how `ort` switches it
    // (its `register` calls Enable/DisableCpuMemArena on the session options), so it is
    // registered only to turn the arena off, leaving the default path as it always was.
    if !knobs.cpu_arena {
        providers.push(
            ort::ep::CPU::default()
                .with_arena_allocator(false)
                .build()
                .error_on_failure(),
        );
    }
    if !providers.is_empty() {
        builder = builder.with_execution_providers(providers)?;
    }
    builder.commit_from_file(path)
}

/// A model loaded into an ONNX Runtime session.
pub struct OrtModel {
    session: Session,
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// `inputs` and `outputs` as C strings, for the shared run's direct call.
    c_inputs: Vec<CString>,
    c_outputs: Vec<CString>,
    gpu: Option<GpuSetup>,
    /// The `device` transfer: one binding per sample, inputs in GPU memory, outputs left there.
    /// Behind a mutex only so the model is `Sync` for [`SharedRun`], which never touches it.
    staged: std::sync::Mutex<Vec<IoBinding>>,
}

impl OrtModel {
    pub fn load(lib: &Path, path: &Path, opts: SessionOptions) -> Result<OrtModel, String> {
        let env = environment(lib)?;
        let session = build_session(env, path, &opts).map_err(|e| match &opts.gpu {
            Some(gpu) => format!(
                "the CUDA execution provider cannot run on device {}: {e} (is this ONNX Runtime a \
                 CUDA build (onnxruntime-gpu), with its CUDA and cuDNN libraries on \
                 LD_LIBRARY_PATH, and is there a GPU?)",
                gpu.device
            ),
            None => e.to_string(),
        })?;
        let inputs: Vec<String> = session
            .inputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let outputs: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        Ok(OrtModel {
            session,
            c_inputs: c_names(&inputs)?,
            c_outputs: c_names(&outputs)?,
            inputs,
            outputs,
            gpu: opts.gpu,
            staged: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Feeds the inputs by these names, in this order, instead of the session's own input list: a
    /// scenario may set a graph input that is also an initializer (older exports list weights as
    /// inputs), which the session does not list as required.
    pub(crate) fn with_input_names(mut self, names: Vec<String>) -> OrtModel {
        if !names.is_empty()
            && let Ok(c) = c_names(&names)
        {
            self.c_inputs = c;
            self.inputs = names;
        }
        self
    }

    /// The request's inputs as ONNX Runtime values, views over their bytes where aligned.
    fn input_values<'a>(
        &self,
        inputs: &[TensorView<'a>],
    ) -> Result<Vec<SessionInputValue<'a>>, String> {
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
            values.push(input_value(t).map_err(|e| format!("input `{name}`: {e}"))?);
        }
        Ok(values)
    }

    fn bind(&self, sample: &[TensorData], gpu: &GpuSetup) -> ort::Result<IoBinding> {
        let device = gpu.device as i32;
        let mut binding = self.session.create_binding()?;
        for (name, t) in self.inputs.iter().zip(sample) {
            binding.bind_input(name.as_str(), &device_tensor(&t.view(), device)?)?;
        }
        let memory = MemoryInfo::new(
            AllocationDevice::CUDA,
            device,
            AllocatorType::Device,
            MemoryType::Default,
        )?;
        for name in &self.outputs {
            binding.bind_output_to_device(name.as_str(), &memory)?;
        }
        Ok(binding)
    }
}

/// A copy of `t` in the memory of CUDA device `device`.
fn device_tensor(t: &TensorView<'_>, device: i32) -> ort::Result<ort::value::DynTensor> {
    fn copy<T: bytemuck::Pod + ort::value::PrimitiveTensorElementType + std::fmt::Debug>(
        t: &TensorView<'_>,
        device: i32,
    ) -> ort::Result<ort::value::DynTensor> {
        let host: Vec<T> = bytemuck::pod_collect_to_vec(t.bytes);
        let host = ort::value::Tensor::from_array((t.shape.to_vec(), host))?;
        Ok(host.to(AllocationDevice::CUDA, device)?.upcast())
    }
    match t.dtype {
        DType::F32 => copy::<f32>(t, device),
        DType::F64 => copy::<f64>(t, device),
        DType::F16 => copy::<half::f16>(t, device),
        DType::I8 => copy::<i8>(t, device),
        DType::I16 => copy::<i16>(t, device),
        DType::I32 => copy::<i32>(t, device),
        DType::I64 => copy::<i64>(t, device),
        DType::U8 => copy::<u8>(t, device),
        DType::U16 => copy::<u16>(t, device),
        DType::U32 => copy::<u32>(t, device),
        DType::U64 => copy::<u64>(t, device),
        DType::BF16 => copy::<half::bf16>(t, device),
        DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ => {
            Ok(raw_tensor(t)?.to(AllocationDevice::CUDA, device)?)
        }
        DType::Str => Err(ort::Error::new(
            "string tensors stay in CPU memory; the `device` transfer cannot hold them",
        )),
        DType::Bool => {
            let host: Vec<bool> = t.bytes.iter().map(|&b| b != 0).collect();
            let host = ort::value::Tensor::from_array((t.shape.to_vec(), host))?;
            Ok(host.to(AllocationDevice::CUDA, device)?.upcast())
        }
    }
}

/// A CPU tensor of `t`'s element type holding a copy of its bytes: for the types that have no
/// Rust element type in `ort` (float8).
fn raw_tensor(t: &TensorView<'_>) -> ort::Result<ort::value::DynTensor> {
    let allocator = ort::memory::Allocator::default();
    let mut value =
        ort::value::DynTensor::new(&allocator, element_type(t.dtype), t.shape.to_vec())?;
    if !t.bytes.is_empty() {
        // SAFETY: the new tensor owns numel × 1 bytes for a 1-byte element type, and
        // `TensorView::check` has made `t.bytes` exactly that long.
        unsafe {
            std::ptr::copy_nonoverlapping(
                t.bytes.as_ptr(),
                value.data_ptr_mut().cast::<u8>(),
                t.bytes.len(),
            );
        }
    }
    Ok(value)
}

/// A string tensor from `t`'s encoded elements (ONNX Runtime copies them).
fn string_tensor(t: &TensorView<'_>) -> ort::Result<ort::value::DynTensor> {
    let values = crate::model::tensor::decode_strings(t.bytes).map_err(ort::Error::new)?;
    let values: Vec<String> = values
        .into_iter()
        .map(|v| std::str::from_utf8(v).map(str::to_owned))
        .collect::<Result<_, _>>()
        .map_err(|e| ort::Error::new(format!("a string element is not UTF-8: {e}")))?;
    Ok(ort::value::Tensor::from_string_array((t.shape.to_vec(), &values[..]))?.upcast())
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
        DType::BF16 => TensorElementType::Bfloat16,
        DType::F8E4M3FN => TensorElementType::Float8E4M3FN,
        DType::F8E4M3FNUZ => TensorElementType::Float8E4M3FNUZ,
        DType::F8E5M2 => TensorElementType::Float8E5M2,
        DType::F8E5M2FNUZ => TensorElementType::Float8E5M2FNUZ,
        DType::Str => TensorElementType::String,
    }
}

fn dtype_of(t: TensorElementType) -> Option<DType> {
    DType::ALL.into_iter().find(|&d| element_type(d) == t)
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
        DType::BF16 => view::<half::bf16>(t),
        DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ => {
            Ok(raw_tensor(t)?.into())
        }
        DType::Str => Ok(string_tensor(t)?.into()),
        DType::Bool => {
            let owned: Vec<bool> = t.bytes.iter().map(|&b| b != 0).collect();
            Ok(ort::value::Tensor::from_array((t.shape.to_vec(), owned))?.into())
        }
    }
}

impl Model for OrtModel {
    fn stage(&mut self, samples: &[Vec<TensorData>]) -> Result<(), String> {
        let gpu = self.gpu.clone().ok_or(
            "the `device` transfer keeps inputs in GPU memory: it needs provider = \"cuda\"",
        )?;
        for (k, sample) in samples.iter().enumerate() {
            let binding = self.bind(sample, &gpu).map_err(|e| {
                format!("cannot stage sample {k} on CUDA device {}: {e}", gpu.device)
            })?;
            self.staged
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .push(binding);
        }
        Ok(())
    }

    fn run_staged(&mut self, k: usize) -> Result<Vec<TensorData>, String> {
        let staged = self.staged.get_mut().unwrap_or_else(|p| p.into_inner());
        let binding = staged
            .get(k)
            .ok_or_else(|| format!("sample {k} is not staged"))?;
        let outputs = self
            .session
            .run_binding(binding)
            .map_err(|e| e.to_string())?;
        drop(outputs);
        // The run is asynchronous on the GPU: the request ends when its outputs exist.
        binding.synchronize_outputs().map_err(|e| e.to_string())?;
        Ok(Vec::new())
    }

    fn run(&mut self, inputs: &[TensorView<'_>]) -> Result<Vec<TensorData>, String> {
        let values = self.input_values(inputs)?;
        let named: Vec<(&str, SessionInputValue<'_>)> =
            self.inputs.iter().map(String::as_str).zip(values).collect();
        let outputs = self.session.run(named).map_err(|e| e.to_string())?;
        self.outputs
            .iter()
            .map(|name| {
                let value = outputs
                    .get(name)
                    .ok_or_else(|| format!("output `{name}` missing"))?;
                tensor_data(name, value)
            })
            .collect()
    }

    fn shared(&self) -> Option<&dyn SharedRun> {
        // The device transfer's bindings are not shared between threads (validate refuses it).
        let staged = self.staged.lock().map_or(true, |s| !s.is_empty());
        (!staged).then_some(self as &dyn SharedRun)
    }
}

impl SharedRun for OrtModel {
    /// ONNX Runtime documents `Run` on one session as safe to call from several threads at once;
    /// the `ort` crate still takes `&mut self` for it, so this calls the C API's `Run` itself,
    /// with the same inputs and outputs as [`Model::run`].
    fn run_shared(&self, inputs: &[TensorView<'_>]) -> Result<Vec<TensorData>, String> {
        use ort::AsPointer;
        let values = self.input_values(inputs)?;
        let in_values: Vec<*const ort::sys::OrtValue> = values.iter().map(|v| v.ptr()).collect();
        let in_names: Vec<*const std::ffi::c_char> =
            self.c_inputs.iter().map(|c| c.as_ptr()).collect();
        let out_names: Vec<*const std::ffi::c_char> =
            self.c_outputs.iter().map(|c| c.as_ptr()).collect();
        let mut out_values: Vec<*mut ort::sys::OrtValue> =
            vec![std::ptr::null_mut(); out_names.len()];
        let api = ort::api();
        // SAFETY: the session pointer is this model's live session; every name is a
        // NUL-terminated string held by `self`, and every input value a live `OrtValue` held in
        // `values`, both for the whole call; `out_values` has room for one pointer per output
        // name. ONNX Runtime allows concurrent `Run` calls on one session (it mutates no session
        // state a run can see), which is what `worker_concurrency` does here.
        let status = unsafe {
            (api.Run)(
                self.session.ptr().cast_mut(),
                std::ptr::null(),
                in_names.as_ptr(),
                in_values.as_ptr(),
                in_values.len(),
                out_names.as_ptr(),
                out_names.len(),
                out_values.as_mut_ptr(),
            )
        };
        if !status.0.is_null() {
            // SAFETY: a non-null status from `Run` is an `OrtStatus` we own: its message is a
            // NUL-terminated string valid until the status is released, which we do once, here.
            let message = unsafe {
                let m = CStr::from_ptr((api.GetErrorMessage)(status.0))
                    .to_string_lossy()
                    .into_owned();
                (api.ReleaseStatus)(status.0);
                m
            };
            return Err(message);
        }
        // Take ownership of every output first, so none leaks if one is refused below.
        let owned: Vec<Option<ort::value::DynValue>> = out_values
            .into_iter()
            .map(|p| {
                // SAFETY: `Run` succeeded, so each non-null pointer is a new `OrtValue` that we
                // own, allocated by the session's allocator (the one passed here).
                NonNull::new(p).map(|p| unsafe {
                    ort::value::DynValue::from_ptr(p, Some(self.session.allocator()))
                })
            })
            .collect();
        self.outputs
            .iter()
            .zip(&owned)
            .map(|(name, value)| {
                let value = value
                    .as_ref()
                    .ok_or_else(|| format!("output `{name}` missing"))?;
                tensor_data(name, value)
            })
            .collect()
    }
}

/// `names` as C strings; an error names the one with a NUL byte.
fn c_names(names: &[String]) -> Result<Vec<CString>, String> {
    names
        .iter()
        .map(|n| CString::new(n.as_str()).map_err(|_| format!("name `{n}` holds a NUL byte")))
        .collect()
}

/// One output value copied out as a tensor.
fn tensor_data(name: &str, value: &ort::value::DynValue) -> Result<TensorData, String> {
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
    if dtype == DType::Str {
        let (_, strings) = tensor
            .try_extract_strings()
            .map_err(|e| format!("output `{name}`: {e}"))?;
        return Ok(TensorData {
            dtype,
            shape,
            bytes: crate::model::tensor::encode_strings(&strings),
        });
    }
    let len = TensorData::numel(&shape) * dtype.size();
    let ptr = tensor.data_ptr().cast::<u8>();
    let bytes = if len == 0 || ptr.is_null() {
        Vec::new()
    } else {
        // SAFETY: a CPU tensor of `shape` and `dtype` owns `len` contiguous bytes at `ptr`, valid
        // while `value` lives.
        unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
    };
    Ok(TensorData {
        dtype,
        shape,
        bytes,
    })
}
