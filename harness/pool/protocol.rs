//! The wire protocol between the parent and its workers: one definition for both sides, since the
//! worker is the same binary.
//!
//! A connection starts with the worker's [`Hello`] (magic, protocol version, build version), then
//! carries length-prefixed frames: a little-endian `u32` payload length, then one `postcard`-encoded
//! message. The readers tell a clean end of stream (at a frame boundary) from a truncated frame.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::model::tensor::TensorData;
use crate::pool::transfer::shm::ShmLayout;
/// A request's inputs and a reply's outputs take a form that depends on the transfer mode, so they
/// are defined with the modes.
pub use crate::pool::transfer::{Inputs, InputsRef, Outputs};
use crate::scenario::{
    ArenaExtend, Channel, ConvAlgoSearch, InputSpec, ModelSource, OnDemandCaps, Provider, Runtime,
    SessionKnobs, TorchSpec, Transfer,
};

pub(crate) const MAGIC: [u8; 4] = *b"BNCH";
/// Bumped on every incompatible change to the messages below (and in
/// `harness/python/bench_protocol.py`, the Python workers' codec of the same messages).
pub(crate) const PROTOCOL_VERSION: u32 = 8;
/// Frames larger than this are refused rather than allocated (1 GiB).
pub(crate) const MAX_FRAME: u32 = 1 << 30;

/// The build a worker was compiled from: parent and worker must match exactly.
pub(crate) fn build_version() -> String {
    format!("{} {}", env!("CARGO_PKG_VERSION"), env!("BENCH_GIT_COMMIT"))
}

/// The first message on every connection, sent by the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub(crate) magic: [u8; 4],
    pub(crate) protocol: u32,
    pub(crate) build: String,
    pub(crate) pid: u32,
}

impl Hello {
    pub(crate) fn ours() -> Hello {
        Hello {
            magic: MAGIC,
            protocol: PROTOCOL_VERSION,
            build: build_version(),
            pid: std::process::id(),
        }
    }

    /// Checks a peer's hello: a worker of `runtime`. A Rust worker is this binary, so its build must
    /// match exactly; a Python worker (torch) has no build, and must speak this protocol version.
    pub(crate) fn check_for(&self, runtime: Runtime) -> Result<(), ProtocolError> {
        match runtime {
            Runtime::Torch => {
                if self.magic != MAGIC {
                    return Err(ProtocolError::BadMagic(self.magic));
                }
                if self.protocol != PROTOCOL_VERSION {
                    return Err(ProtocolError::VersionMismatch {
                        ours: format!("protocol {PROTOCOL_VERSION}"),
                        theirs: format!("protocol {} ({})", self.protocol, self.build),
                    });
                }
                Ok(())
            }
            Runtime::Ort | Runtime::Tract => self.check(),
        }
    }

    /// Checks a peer's hello against this build.
    pub(crate) fn check(&self) -> Result<(), ProtocolError> {
        if self.magic != MAGIC {
            return Err(ProtocolError::BadMagic(self.magic));
        }
        if self.protocol != PROTOCOL_VERSION || self.build != build_version() {
            return Err(ProtocolError::VersionMismatch {
                ours: format!("protocol {PROTOCOL_VERSION}, build {}", build_version()),
                theirs: format!("protocol {}, build {}", self.protocol, self.build),
            });
        }
        Ok(())
    }
}

/// A model a worker may load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SetupModel {
    pub(crate) name: String,
    pub(crate) source: ModelSource,
    /// The inputs and their generators: with the `index` transfer the worker makes the samples
    /// itself, bit for bit as the parent would.
    pub(crate) inputs: Vec<InputSpec>,
    pub(crate) samples: u32,
    /// The PyTorch module, for the torch runtime.
    pub(crate) torch: Option<TorchSpec>,
    /// The samples themselves, for a worker that cannot generate them bit for bit (the torch
    /// worker with the `index` transfer); empty otherwise.
    pub(crate) data: Vec<Vec<TensorData>>,
}

impl SetupModel {
    pub(crate) fn of(m: &crate::scenario::ModelSpec) -> SetupModel {
        SetupModel {
            name: m.name.clone(),
            source: m.source.clone(),
            inputs: m.inputs.clone(),
            samples: m.samples.len() as u32,
            torch: m.torch.clone(),
            data: Vec::new(),
        }
    }
}

/// What a worker loads and how it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    pub(crate) worker: u32,
    pub(crate) ort_lib: PathBuf,
    /// What runs the models (a torch worker is a Python process, not this binary).
    pub(crate) runtime: Runtime,
    pub(crate) intra_threads: u32,
    pub(crate) provider: Provider,
    pub(crate) transfer: Transfer,
    /// Every model of the scenario, by scenario index (requests name models by this index).
    pub(crate) models: Vec<SetupModel>,
    /// The models to load at start.
    pub(crate) preload: Vec<u32>,
    /// Set for the on-demand placement: load models when first asked, within these caps.
    pub(crate) on_demand: Option<OnDemandCaps>,
    /// The shared-memory arena's layout (`shm` transfer); its descriptor is passed with `--shm-fd`.
    pub(crate) shm: Option<ShmLayout>,
    /// Pin the worker to this CPU.
    pub(crate) pin_cpu: Option<u32>,
    /// The CUDA provider's device and options (`provider = "cuda"`).
    pub(crate) gpu: Option<GpuSetup>,
    /// ONNX Runtime's session options (the `[sweep]` keys of `scenario::session`), on the wire as
    /// [`KnobSetting`]s, so that a new knob changes neither the messages nor the Python codec.
    #[serde(with = "knob_settings")]
    pub(crate) session: SessionKnobs,
    /// Requests the worker runs at the same time, from its own threads on the same loaded models
    /// (`[sweep] worker_concurrency`); 1 runs them one at a time, in the order they came.
    pub(crate) worker_concurrency: u32,
    /// How requests and replies travel after the handshake; the `spin` channel's file is passed
    /// with `--channel-fd`.
    pub(crate) channel: Channel,
    /// The longest the worker spins for its next request before it parks, ns (`spin` channel; 0
    /// parks at once).
    pub(crate) spin_max_ns: u64,
}

/// One session knob on the wire: its name and its value as text (`prepacking`, `false`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct KnobSetting {
    pub(crate) name: String,
    pub(crate) value: String,
}

/// `Setup::session` as a list of [`KnobSetting`]s, in the knobs' order ([`SessionKnobs::settings`]).
/// Reading one back refuses a knob or value this build does not know; a knob left out keeps its
/// default (both sides are one build, which the handshake checks).
mod knob_settings {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::KnobSetting;
    use crate::scenario::SessionKnobs;

    pub(crate) fn serialize<S: Serializer>(knobs: &SessionKnobs, s: S) -> Result<S::Ok, S::Error> {
        let settings: Vec<KnobSetting> = knobs
            .settings()
            .into_iter()
            .map(|(name, value)| KnobSetting {
                name: name.to_string(),
                value,
            })
            .collect();
        settings.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SessionKnobs, D::Error> {
        let mut knobs = SessionKnobs::DEFAULT;
        for KnobSetting { name, value } in Vec::<KnobSetting>::deserialize(d)? {
            knobs.set(&name, &value).map_err(D::Error::custom)?;
        }
        Ok(knobs)
    }
}

/// Where and how a CUDA worker runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSetup {
    /// CUDA device id, passed in the provider options (never through `CUDA_VISIBLE_DEVICES`).
    pub(crate) device: u32,
    pub(crate) conv_algo_search: ConvAlgoSearch,
    pub(crate) arena_extend_strategy: ArenaExtend,
    pub(crate) gpu_mem_limit_bytes: Option<u64>,
}

impl Setup {
    /// One worker holding one model, `pipe` transfer: for calibration.
    pub(crate) fn single(ort_lib: PathBuf, model: SetupModel) -> Setup {
        Setup {
            worker: 0,
            ort_lib,
            runtime: Runtime::Ort,
            intra_threads: 1,
            provider: Provider::Cpu,
            transfer: Transfer::Pipe,
            models: vec![model],
            preload: vec![0],
            on_demand: None,
            shm: None,
            pin_cpu: None,
            gpu: None,
            session: SessionKnobs::default(),
            worker_concurrency: 1,
            channel: Channel::Socket,
            spin_max_ns: 0,
        }
    }
}

/// Load time of one model in one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ModelLoad {
    pub(crate) model: String,
    pub(crate) load_ns: u64,
    /// The worker's resident-memory growth while it loaded the model, bytes (at least the model
    /// file's size): what holding the model costs a worker.
    pub(crate) rss_bytes: u64,
}

/// Parent to worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    Setup(Setup),
    /// Run `model` (an index into `Setup::models`) on `inputs`, in the model's input order.
    Run {
        id: u64,
        model: u32,
        inputs: Inputs,
    },
    /// Finish: the worker answers [`FromWorker::Bye`] and exits.
    Shutdown,
}

/// A run a worker finished. It is one value from the worker's serving code, through
/// [`FromWorker::Done`], to the parent's reply (`worker::pool::Reply::Done`) and the load
/// generator's outcome of the request, so no stage copies its fields into a shape of its own.
///
/// On the wire its fields follow `Done`'s `id` in this order, as they did when they were `Done`'s
/// own fields: postcard writes a struct as its fields, so the frame's bytes are the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    /// Time inside the runtime's run call, in nanoseconds.
    pub(crate) compute_ns: u64,
    /// The first run of this model's session in this worker (warm-up effects included).
    pub(crate) first: bool,
    /// On-demand placement: the model was loaded for this request, taking this long.
    pub(crate) cold_load_ns: Option<u64>,
    /// On-demand placement: models evicted to make room.
    pub(crate) evicted: Vec<u32>,
    pub outputs: Outputs,
}

/// Worker to parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    Hello(Hello),
    Ready {
        loads: Vec<ModelLoad>,
        rss_bytes: u64,
        runtime: String,
    },
    SetupFailed {
        model: Option<String>,
        message: String,
    },
    /// Request `id` ran; `run` is what the parent learns from it.
    Done {
        id: u64,
        run: Finished,
    },
    Failed {
        id: u64,
        message: String,
    },
    Bye {
        rss_bytes: u64,
        served: u64,
    },
}

/// What went wrong on a worker's connection. Each message names its cause once: no variant also
/// returns it as `source()`, or `{:#}` would print it twice.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProtocolError {
    #[error("connection error: {0}")]
    Io(io::Error),
    #[error("truncated frame: expected {expected} bytes, got {got} before the connection closed")]
    Truncated { expected: usize, got: usize },
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit (corrupt stream?)")]
    TooLarge(u32),
    #[error("undecodable frame: {0}")]
    Decode(postcard::Error),
    #[error("not a bench worker: bad magic {0:?}")]
    BadMagic([u8; 4]),
    #[error(
        "version mismatch: parent has {ours}, worker has {theirs}; rebuild so both come from one binary"
    )]
    VersionMismatch { ours: String, theirs: String },
    #[error("unexpected message: {0}")]
    Unexpected(String),
}

impl From<io::Error> for ProtocolError {
    fn from(err: io::Error) -> Self {
        ProtocolError::Io(err)
    }
}

impl From<postcard::Error> for ProtocolError {
    fn from(err: postcard::Error) -> Self {
        ProtocolError::Decode(err)
    }
}

/// Encodes `msg` as one frame into `buf` (cleared first), reusing its allocation.
pub(crate) fn encode_into<T: Serialize>(msg: &T, buf: &mut Vec<u8>) -> Result<(), ProtocolError> {
    buf.clear();
    buf.extend_from_slice(&[0; 4]);
    let mut out = postcard::to_extend(msg, std::mem::take(buf))?;
    let len = out.len() - 4;
    if len > MAX_FRAME as usize {
        return Err(ProtocolError::TooLarge(
            u32::try_from(len).unwrap_or(u32::MAX),
        ));
    }
    out[..4].copy_from_slice(&(len as u32).to_le_bytes());
    *buf = out;
    Ok(())
}

/// Encodes `msg` as one frame.
pub(crate) fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtocolError> {
    let mut buf = Vec::new();
    encode_into(msg, &mut buf)?;
    Ok(buf)
}

/// Decodes one frame's payload.
pub(crate) fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, ProtocolError> {
    Ok(postcard::from_bytes(payload)?)
}

pub(crate) fn frame_len(header: [u8; 4]) -> Result<usize, ProtocolError> {
    let len = u32::from_le_bytes(header);
    if len > MAX_FRAME {
        return Err(ProtocolError::TooLarge(len));
    }
    Ok(len as usize)
}

/// Reads one frame's payload into `buf`. `Ok(false)` is a clean end of stream before a frame.
pub(crate) fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<bool, ProtocolError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(ProtocolError::Truncated { expected: 4, got }),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = frame_len(header)?;
    buf.clear();
    let read = r.take(len as u64).read_to_end(buf)?;
    if read < len {
        return Err(ProtocolError::Truncated {
            expected: len,
            got: read,
        });
    }
    Ok(true)
}

/// Async twin of [`read_frame`].
pub(crate) async fn read_frame_async(
    r: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> Result<bool, ProtocolError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut header[got..]).await? {
            0 if got == 0 => return Ok(false),
            0 => return Err(ProtocolError::Truncated { expected: 4, got }),
            n => got += n,
        }
    }
    let len = frame_len(header)?;
    buf.clear();
    buf.reserve(len);
    let read = (&mut *r).take(len as u64).read_to_end(buf).await?;
    if read < len {
        return Err(ProtocolError::Truncated {
            expected: len,
            got: read,
        });
    }
    Ok(true)
}

/// Writes one message as a frame.
pub(crate) fn write_msg<T: Serialize>(
    w: &mut impl Write,
    msg: &T,
    buf: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    encode_into(msg, buf)?;
    w.write_all(buf)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tensor::{DType, Generator};
    use crate::pool::transfer::shm::TensorPlacement;
    use proptest::prelude::*;

    /// Regression: `Io` and `Decode` named their cause and returned it as `source()` too, so a
    /// chain printed with `{:#}` said it twice.
    #[test]
    fn protocol_errors_print_their_cause_once() {
        let io = ProtocolError::from(io::Error::other("pipe burst"));
        let decode = ProtocolError::from(postcard::Error::DeserializeUnexpectedEnd);
        for (e, cause) in [(io, "pipe burst"), (decode, "Hit the end of buffer")] {
            let chain = format!("{:#}", anyhow::Error::from(e).context("worker 0"));
            assert_eq!(chain.matches(cause).count(), 1, "{chain}");
        }
    }

    /// Finite floats of every magnitude, both signs (JSON cannot carry NaN).
    fn float() -> impl Strategy<Value = f64> {
        prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO
    }

    fn generator() -> impl Strategy<Value = Generator> {
        prop_oneof![
            (float(), float()).prop_map(|(low, high)| Generator::Uniform { low, high }),
            (float(), float()).prop_map(|(mean, std)| Generator::Normal { mean, std }),
            (any::<i64>(), any::<i64>()).prop_map(|(low, high)| Generator::Int { low, high }),
            float().prop_map(|value| Generator::Const { value }),
            "[a-zé/._]{0,20}".prop_map(|p| Generator::File { path: p.into() }),
            prop::collection::vec("[a-z/._]{0,12}", 0..3).prop_map(|p| Generator::Files {
                paths: p.into_iter().map(Into::into).collect()
            }),
            prop::collection::vec("\\PC{0,8}", 1..4)
                .prop_map(|values| Generator::Strings { values }),
        ]
    }

    fn input_spec() -> impl Strategy<Value = InputSpec> {
        (
            "[a-z_]{1,8}",
            prop::sample::select(DType::ALL.to_vec()),
            prop::collection::vec(any::<i64>(), 0..4),
            generator(),
            any::<u64>(),
        )
            .prop_map(|(name, dtype, shape, generator, seed)| InputSpec {
                name,
                dtype,
                shape,
                generator,
                seed,
            })
    }

    fn source() -> impl Strategy<Value = ModelSource> {
        use crate::scenario::{ServiceDistribution, Stall, SyntheticSpec, WaitMode};
        prop_oneof![
            "[a-z/.]{1,20}".prop_map(|p| ModelSource::Onnx(p.into())),
            (
                prop::sample::select(vec![
                    ServiceDistribution::Fixed,
                    ServiceDistribution::Exponential
                ]),
                any::<u64>(),
                prop::sample::select(vec![WaitMode::Spin, WaitMode::Sleep]),
                any::<Option<(u64, u64)>>(),
                any::<Option<u64>>(),
            )
                .prop_map(|(distribution, mean_ns, wait, stall, hang_after_ns)| {
                    ModelSource::Synthetic(SyntheticSpec {
                        per_sample_ns: 0,
                        distribution,
                        mean_ns,
                        wait,
                        stall: stall.map(|(after_ns, pause_ns)| Stall { after_ns, pause_ns }),
                        hang_after_ns,
                    })
                }),
        ]
    }

    fn setup_model() -> impl Strategy<Value = SetupModel> {
        (
            "[a-z_.-]{1,12}",
            source(),
            prop::collection::vec(input_spec(), 0..3),
            any::<u32>(),
            prop::option::of((
                "[a-z.]{1,12}:[A-Z][a-z]{0,8}",
                prop::option::of("[a-z/.]{1,20}"),
                any::<Option<u64>>(),
                prop::collection::vec("[a-z/]{1,12}", 0..3),
            )),
            prop::collection::vec(prop::collection::vec(tensor(), 0..3), 0..3),
        )
            .prop_map(|(name, source, inputs, samples, torch, data)| SetupModel {
                name,
                source,
                inputs,
                samples,
                torch: torch.map(|(module, weights, init_seed, path)| TorchSpec {
                    module,
                    weights: weights.map(Into::into),
                    init_seed,
                    python_path: path.into_iter().map(Into::into).collect(),
                }),
                data,
            })
    }

    fn setup() -> impl Strategy<Value = Setup> {
        (
            (
                any::<u32>(),
                "[a-z/.]{0,20}",
                prop::sample::select(Runtime::ALL.to_vec()),
                any::<u32>(),
                prop::sample::select(Transfer::ALL.to_vec()),
            ),
            prop::collection::vec(setup_model(), 0..3),
            prop::collection::vec(any::<u32>(), 0..4),
            any::<Option<(Option<usize>, Option<u64>)>>(),
            prop::option::of((1usize..64, 0usize..1 << 20, 0usize..1 << 20)),
            (
                any::<Option<u32>>(),
                any::<Option<(u32, u8, bool, Option<u64>)>>(),
                // Sessions that between them hold every example value of every knob.
                prop::sample::select(
                    crate::scenario::axes::example_points()
                        .into_iter()
                        .map(|p| p.session)
                        .collect::<Vec<_>>(),
                ),
            ),
        )
            .prop_map(
                |(
                    (worker, lib, runtime, intra_threads, transfer),
                    models,
                    preload,
                    caps,
                    shm,
                    (pin_cpu, gpu, session),
                )| {
                    Setup {
                        worker,
                        ort_lib: lib.into(),
                        runtime,
                        intra_threads,
                        provider: if gpu.is_some() {
                            Provider::Cuda
                        } else {
                            Provider::Cpu
                        },
                        gpu: gpu.map(|(device, search, same, gpu_mem_limit_bytes)| GpuSetup {
                            device,
                            conv_algo_search: ConvAlgoSearch::ALL[search as usize % 3],
                            arena_extend_strategy: if same {
                                ArenaExtend::SameAsRequested
                            } else {
                                ArenaExtend::NextPowerOfTwo
                            },
                            gpu_mem_limit_bytes,
                        }),
                        transfer,
                        models,
                        preload,
                        on_demand: caps.map(|(max_models, memory_budget_bytes)| OnDemandCaps {
                            max_models,
                            memory_budget_bytes,
                        }),
                        shm: shm.and_then(|(n, i, o)| ShmLayout::new(n, i, o).ok()),
                        pin_cpu,
                        session,
                        worker_concurrency: intra_threads.rotate_left(7) % 9,
                        channel: Channel::ALL[worker as usize % 2],
                        spin_max_ns: u64::from(worker) * 1000,
                    }
                },
            )
    }

    fn tensor() -> impl Strategy<Value = TensorData> {
        (
            prop::collection::vec(0i64..5, 0..4),
            prop::sample::select(DType::ALL.to_vec()),
        )
            .prop_flat_map(|(shape, dtype)| {
                let n = TensorData::numel(&shape);
                if dtype == DType::Str {
                    return prop::collection::vec("\\PC{0,6}", n)
                        .prop_map(move |v| TensorData {
                            dtype,
                            shape: shape.clone(),
                            bytes: crate::model::tensor::encode_strings(&v),
                        })
                        .boxed();
                }
                prop::collection::vec(any::<u8>(), n * dtype.size())
                    .prop_map(move |bytes| TensorData {
                        dtype,
                        shape: shape.clone(),
                        bytes,
                    })
                    .boxed()
            })
    }

    fn placement() -> impl Strategy<Value = TensorPlacement> {
        (
            prop::collection::vec(0i64..5, 0..3),
            any::<u64>(),
            any::<u64>(),
            prop::sample::select(DType::ALL.to_vec()),
        )
            .prop_map(|(shape, offset, len, dtype)| TensorPlacement {
                dtype,
                shape,
                offset,
                len,
            })
    }

    fn inputs() -> impl Strategy<Value = Inputs> {
        prop_oneof![
            prop::collection::vec(tensor(), 0..4).prop_map(Inputs::Inline),
            (any::<u32>(), prop::collection::vec(placement(), 0..3))
                .prop_map(|(slot, tensors)| Inputs::Shm { slot, tensors }),
            any::<u32>().prop_map(Inputs::Index),
        ]
    }

    fn to_worker() -> impl Strategy<Value = ToWorker> {
        prop_oneof![
            Just(ToWorker::Shutdown),
            (any::<u64>(), any::<u32>(), inputs()).prop_map(|(id, model, inputs)| ToWorker::Run {
                id,
                model,
                inputs
            }),
            setup().prop_map(ToWorker::Setup),
        ]
    }

    fn from_worker() -> impl Strategy<Value = FromWorker> {
        prop_oneof![
            Just(FromWorker::Hello(Hello::ours())),
            (
                any::<u64>(),
                any::<u64>(),
                any::<bool>(),
                any::<Option<u64>>(),
                prop::collection::vec(any::<u32>(), 0..3),
                prop_oneof![
                    prop::collection::vec(tensor(), 0..3).prop_map(Outputs::Inline),
                    prop::collection::vec(placement(), 0..3).prop_map(Outputs::Shm),
                ]
            )
                .prop_map(|(id, compute_ns, first, cold_load_ns, evicted, outputs)| {
                    FromWorker::Done {
                        id,
                        run: Finished {
                            compute_ns,
                            first,
                            cold_load_ns,
                            evicted,
                            outputs,
                        },
                    }
                }),
            (
                prop::collection::vec(("[a-z_]{1,8}", any::<u64>()), 0..4),
                any::<u64>(),
                ".{0,20}"
            )
                .prop_map(|(loads, rss_bytes, runtime)| FromWorker::Ready {
                    loads: loads
                        .into_iter()
                        .map(|(model, load_ns)| ModelLoad {
                            model,
                            load_ns,
                            rss_bytes: load_ns.rotate_left(13),
                        })
                        .collect(),
                    rss_bytes,
                    runtime,
                }),
            (any::<Option<String>>(), ".{0,40}")
                .prop_map(|(model, message)| FromWorker::SetupFailed { model, message }),
            (any::<u64>(), ".{0,40}").prop_map(|(id, message)| FromWorker::Failed { id, message }),
            (any::<u64>(), any::<u64>())
                .prop_map(|(rss_bytes, served)| FromWorker::Bye { rss_bytes, served }),
        ]
    }

    proptest! {
        #[test]
        fn frames_round_trip(msgs in prop::collection::vec(to_worker(), 1..6), replies in prop::collection::vec(from_worker(), 1..6)) {
            let mut stream = Vec::new();
            let mut buf = Vec::new();
            for m in &msgs { write_msg(&mut stream, m, &mut buf).unwrap(); }
            let mut r = &stream[..];
            for m in &msgs {
                prop_assert!(read_frame(&mut r, &mut buf).unwrap());
                prop_assert_eq!(&decode::<ToWorker>(&buf).unwrap(), m);
            }
            prop_assert!(!read_frame(&mut r, &mut buf).unwrap(), "clean EOF after the last frame");

            let mut stream = Vec::new();
            for m in &replies { write_msg(&mut stream, m, &mut buf).unwrap(); }
            let mut r = &stream[..];
            for m in &replies {
                prop_assert!(read_frame(&mut r, &mut buf).unwrap());
                prop_assert_eq!(&decode::<FromWorker>(&buf).unwrap(), m);
            }
        }

        #[test]
        fn truncation_is_detected(msg in to_worker(), cut in any::<prop::sample::Index>()) {
            let frame = encode(&msg).unwrap();
            let cut = 1 + cut.index(frame.len() - 1); // 1..len: never a clean boundary
            let mut r = &frame[..cut];
            let mut buf = Vec::new();
            let is_truncated = matches!(read_frame(&mut r, &mut buf), Err(ProtocolError::Truncated { .. }));
            prop_assert!(is_truncated);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let mut r = &bytes[..];
            let mut buf = Vec::new();
            while let Ok(true) = read_frame(&mut r, &mut buf) {
                let _ = decode::<ToWorker>(&buf);
                let _ = decode::<FromWorker>(&buf);
            }
            let _ = decode::<ToWorker>(&bytes);
            let _ = decode::<FromWorker>(&bytes);
        }
    }

    #[test]
    fn oversized_length_is_refused_without_allocating() {
        let mut r = &[0xff, 0xff, 0xff, 0xff, 1, 2][..];
        let mut buf = Vec::new();
        assert!(matches!(
            read_frame(&mut r, &mut buf),
            Err(ProtocolError::TooLarge(_))
        ));
    }

    /// serde_json's value of a message, with every float as its bits (`"f64:BITS"`), so values
    /// compare exactly whatever the JSON float parser does.
    fn exact_json(v: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::Number(n) if n.is_f64() => {
                Value::String(format!("f64:{}", n.as_f64().unwrap_or(f64::NAN).to_bits()))
            }
            Value::Array(a) => Value::Array(a.into_iter().map(exact_json).collect()),
            Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, exact_json(v))).collect())
            }
            other => other,
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The Python workers' codec (`harness/python/bench_protocol.py`) decodes every message this
    /// side encodes to the same values (field names, variant names, numbers) and re-encodes it to
    /// the same bytes; it refuses malformed payloads; and it has the same protocol version. Messages:
    /// one of every variant by hand, then generated ones.
    #[test]
    fn python_codec_round_trips_every_message() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut to: Vec<ToWorker> = vec![
            ToWorker::Shutdown,
            ToWorker::Run {
                id: u64::MAX,
                model: 3,
                inputs: Inputs::Index(300),
            },
            ToWorker::Run {
                id: 0,
                model: 0,
                inputs: Inputs::Inline(vec![TensorData {
                    dtype: DType::F32,
                    shape: vec![1, -2, i64::MIN, i64::MAX],
                    bytes: vec![0, 0, 128, 63],
                }]),
            },
        ];
        let mut from: Vec<FromWorker> = vec![
            FromWorker::Hello(Hello::ours()),
            FromWorker::Bye {
                rss_bytes: 1 << 40,
                served: 7,
            },
        ];
        let mut runner = TestRunner::deterministic();
        for _ in 0..150 {
            to.push(to_worker().new_tree(&mut runner).unwrap().current());
            from.push(from_worker().new_tree(&mut runner).unwrap().current());
        }
        let mut input = String::new();
        let mut expected = Vec::new();
        for m in &to {
            let bytes = postcard::to_stdvec(m).unwrap();
            input += &format!("ToWorker {}\n", hex(&bytes));
            expected.push((bytes, exact_json(serde_json::to_value(m).unwrap())));
        }
        for m in &from {
            let bytes = postcard::to_stdvec(m).unwrap();
            input += &format!("FromWorker {}\n", hex(&bytes));
            expected.push((bytes, exact_json(serde_json::to_value(m).unwrap())));
        }
        // Malformed: an overlong varint, a trailing byte, an unknown variant, a message cut short,
        // a bool that is 2 (Done's `first`), an option tag that is 2 (SetupFailed's `model`).
        let bad = [
            "ToWorker 8200",
            "ToWorker 0200",
            "ToWorker 03",
            "FromWorker 0501",
            "FromWorker 03010102000000",
            "FromWorker 020200",
        ];
        for b in bad {
            input += &format!("{b}\n");
        }
        // The codec needs only the standard library: the project's Python if set up, else python3.
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
        let python = if std::path::Path::new(venv).is_file() {
            venv
        } else {
            "python3"
        };
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/harness/python/bench_protocol.py"
        );
        let mut child = std::process::Command::new(python)
            .args([script, "roundtrip"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python));
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(format!("protocol {PROTOCOL_VERSION}").as_str()),
            "PROTOCOL_VERSION differs between protocol.rs and bench_protocol.py"
        );
        for (i, (bytes, json)) in expected.iter().enumerate() {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("no answer for message {i}"));
            let (got_hex, got_json) = line.split_once('\t').unwrap();
            assert_eq!(
                got_hex,
                hex(bytes),
                "message {i} re-encodes differently: {json}"
            );
            let got: serde_json::Value = serde_json::from_str(got_json).unwrap();
            assert_eq!(&got, json, "message {i} decodes to another value");
        }
        for b in bad {
            let line = lines.next().unwrap();
            assert!(line.starts_with("error\t"), "{b} was accepted: {line}");
        }
        assert_eq!(lines.next(), None);
    }

    /// Regression guard for the finished-run type: `Finished` is written as its fields, so a
    /// `Done` frame holds the bytes it held when they were `Done`'s own (protocol 6 unchanged, and
    /// the Python worker's `frame_done` still writes them flat).
    #[test]
    fn a_finished_run_keeps_the_bytes_of_dones_flat_fields() {
        let msg = FromWorker::Done {
            id: 300,
            run: Finished {
                compute_ns: 5,
                first: true,
                cold_load_ns: Some(7),
                evicted: vec![2],
                outputs: Outputs::Inline(Vec::new()),
            },
        };
        // Variant 3, id 300 as a varint, compute_ns, first, Some(7), [2], Outputs::Inline([]).
        let want = [3, 0xac, 0x02, 5, 1, 1, 7, 1, 2, 0, 0];
        assert_eq!(postcard::to_stdvec(&msg).unwrap(), want);
    }

    #[test]
    fn hello_checks_magic_and_version() {
        assert!(Hello::ours().check().is_ok());
        let mut h = Hello::ours();
        h.magic = *b"HTTP";
        assert!(matches!(h.check(), Err(ProtocolError::BadMagic(_))));
        let mut h = Hello::ours();
        h.protocol += 1;
        assert!(matches!(
            h.check(),
            Err(ProtocolError::VersionMismatch { .. })
        ));
    }
}
