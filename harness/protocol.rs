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

use crate::scenario::{
    ArenaExtend, ConvAlgoSearch, InputSpec, ModelSource, OnDemandCaps, Provider, Transfer,
};
use crate::tensor::TensorData;
use crate::transfer::shm::{ShmLayout, TensorPlacement};

pub const MAGIC: [u8; 4] = *b"BNCH";
/// Bumped on every incompatible change to the messages below.
pub const PROTOCOL_VERSION: u32 = 3;
/// Frames larger than this are refused rather than allocated (1 GiB).
pub const MAX_FRAME: u32 = 1 << 30;

/// The build a worker was compiled from: parent and worker must match exactly.
pub fn build_version() -> String {
    format!("{} {}", env!("CARGO_PKG_VERSION"), env!("BENCH_GIT_COMMIT"))
}

/// The first message on every connection, sent by the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub magic: [u8; 4],
    pub protocol: u32,
    pub build: String,
    pub pid: u32,
}

impl Hello {
    pub fn ours() -> Hello {
        Hello {
            magic: MAGIC,
            protocol: PROTOCOL_VERSION,
            build: build_version(),
            pid: std::process::id(),
        }
    }

    /// Checks a peer's hello against this build.
    pub fn check(&self) -> Result<(), ProtocolError> {
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
pub struct SetupModel {
    pub name: String,
    pub source: ModelSource,
    /// The inputs and their generators: with the `index` transfer the worker makes the samples
    /// itself, bit for bit as the parent would.
    pub inputs: Vec<InputSpec>,
    pub samples: u32,
}

impl SetupModel {
    pub fn of(m: &crate::scenario::ModelSpec) -> SetupModel {
        SetupModel {
            name: m.name.clone(),
            source: m.source.clone(),
            inputs: m.inputs.clone(),
            samples: m.samples.len() as u32,
        }
    }
}

/// What a worker loads and how it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    pub worker: u32,
    pub ort_lib: PathBuf,
    pub intra_threads: u32,
    pub provider: Provider,
    pub transfer: Transfer,
    /// Every model of the scenario, by scenario index (requests name models by this index).
    pub models: Vec<SetupModel>,
    /// The models to load at start.
    pub preload: Vec<u32>,
    /// Set for the on-demand placement: load models when first asked, within these caps.
    pub on_demand: Option<OnDemandCaps>,
    /// The shared-memory arena's layout (`shm` transfer); its descriptor is passed with `--shm-fd`.
    pub shm: Option<ShmLayout>,
    /// Pin the worker to this CPU.
    pub pin_cpu: Option<u32>,
    /// The CUDA provider's device and options (`provider = "cuda"`).
    pub gpu: Option<GpuSetup>,
}

/// Where and how a CUDA worker runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSetup {
    /// CUDA device id, passed in the provider options (never through `CUDA_VISIBLE_DEVICES`).
    pub device: u32,
    pub conv_algo_search: ConvAlgoSearch,
    pub arena_extend_strategy: ArenaExtend,
    pub gpu_mem_limit_bytes: Option<u64>,
}

impl Setup {
    /// One worker holding one model, `pipe` transfer: for calibration.
    pub fn single(ort_lib: PathBuf, model: SetupModel) -> Setup {
        Setup {
            worker: 0,
            ort_lib,
            intra_threads: 1,
            provider: Provider::Cpu,
            transfer: Transfer::Pipe,
            models: vec![model],
            preload: vec![0],
            on_demand: None,
            shm: None,
            pin_cpu: None,
            gpu: None,
        }
    }
}

/// A request's inputs, by transfer mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Inputs {
    /// The tensors themselves (`pipe`).
    Inline(Vec<TensorData>),
    /// Tensors placed in a shared-memory slot (`shm`).
    Shm {
        slot: u32,
        tensors: Vec<TensorPlacement>,
    },
    /// A sample the worker generated at start (`index`).
    Index(u32),
}

/// A reply's outputs, by transfer mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outputs {
    Inline(Vec<TensorData>),
    /// Written into the request's slot.
    Shm(Vec<TensorPlacement>),
}

/// Load time of one model in one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLoad {
    pub model: String,
    pub load_ns: u64,
}

/// Parent to worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
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

/// Worker to parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
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
    Done {
        id: u64,
        /// Time inside the runtime's run call, in nanoseconds.
        compute_ns: u64,
        /// The first run of this model's session in this worker (warm-up effects included).
        first: bool,
        /// On-demand placement: the model was loaded for this request, taking this long.
        cold_load_ns: Option<u64>,
        /// On-demand placement: models evicted to make room.
        evicted: Vec<u32>,
        outputs: Outputs,
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

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    #[error("truncated frame: expected {expected} bytes, got {got} before the connection closed")]
    Truncated { expected: usize, got: usize },
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit (corrupt stream?)")]
    TooLarge(u32),
    #[error("undecodable frame: {0}")]
    Decode(#[from] postcard::Error),
    #[error("not a bench worker: bad magic {0:?}")]
    BadMagic([u8; 4]),
    #[error(
        "version mismatch: parent has {ours}, worker has {theirs}; rebuild so both come from one binary"
    )]
    VersionMismatch { ours: String, theirs: String },
    #[error("unexpected message: {0}")]
    Unexpected(String),
}

/// Encodes `msg` as one frame into `buf` (cleared first), reusing its allocation.
pub fn encode_into<T: Serialize>(msg: &T, buf: &mut Vec<u8>) -> Result<(), ProtocolError> {
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
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtocolError> {
    let mut buf = Vec::new();
    encode_into(msg, &mut buf)?;
    Ok(buf)
}

/// Decodes one frame's payload.
pub fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, ProtocolError> {
    Ok(postcard::from_bytes(payload)?)
}

fn frame_len(header: [u8; 4]) -> Result<usize, ProtocolError> {
    let len = u32::from_le_bytes(header);
    if len > MAX_FRAME {
        return Err(ProtocolError::TooLarge(len));
    }
    Ok(len as usize)
}

/// Reads one frame's payload into `buf`. `Ok(false)` is a clean end of stream before a frame.
pub fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<bool, ProtocolError> {
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
pub async fn read_frame_async(
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
pub fn write_msg<T: Serialize>(
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
    use crate::tensor::DType;
    use proptest::prelude::*;

    fn tensor() -> impl Strategy<Value = TensorData> {
        (
            prop::collection::vec(0i64..5, 0..4),
            prop::sample::select(vec![DType::F32, DType::I64, DType::F16, DType::Bool]),
        )
            .prop_flat_map(|(shape, dtype)| {
                let n = TensorData::numel(&shape) * dtype.size();
                prop::collection::vec(any::<u8>(), n).prop_map(move |bytes| TensorData {
                    dtype,
                    shape: shape.clone(),
                    bytes,
                })
            })
    }

    fn placement() -> impl Strategy<Value = TensorPlacement> {
        (
            prop::collection::vec(0i64..5, 0..3),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(shape, offset, len)| TensorPlacement {
                dtype: DType::F32,
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
            (
                any::<u32>(),
                "[a-z/.]{0,20}",
                1u32..8,
                prop::collection::vec(("[a-z_]{1,8}", "[a-z/.]{1,20}"), 0..4),
                any::<Option<u32>>(),
                prop::sample::select(Transfer::ALL.to_vec()),
                any::<Option<(u32, Option<u64>)>>(),
            )
                .prop_map(|(worker, lib, t, m, pin_cpu, transfer, gpu)| {
                    ToWorker::Setup(Setup {
                        worker,
                        ort_lib: lib.into(),
                        intra_threads: t,
                        provider: if gpu.is_some() {
                            Provider::Cuda
                        } else {
                            Provider::Cpu
                        },
                        gpu: gpu.map(|(device, gpu_mem_limit_bytes)| GpuSetup {
                            device,
                            conv_algo_search: ConvAlgoSearch::Heuristic,
                            arena_extend_strategy: ArenaExtend::SameAsRequested,
                            gpu_mem_limit_bytes,
                        }),
                        transfer,
                        preload: (0..m.len() as u32).collect(),
                        models: m
                            .into_iter()
                            .map(|(name, path)| SetupModel {
                                name,
                                source: ModelSource::Onnx(path.into()),
                                inputs: Vec::new(),
                                samples: 8,
                            })
                            .collect(),
                        on_demand: Some(OnDemandCaps {
                            max_models: Some(2),
                            memory_budget_bytes: None,
                        }),
                        shm: ShmLayout::new(4, 4096, 1024).ok(),
                        pin_cpu,
                    })
                }),
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
                        compute_ns,
                        first,
                        cold_load_ns,
                        evicted,
                        outputs,
                    }
                }),
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
