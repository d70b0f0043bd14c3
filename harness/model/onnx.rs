//! Reads a model's inputs and outputs straight from the ONNX protobuf, without ONNX Runtime.
//!
//! The parent validates scenarios and `bench inspect` prints signatures without loading a runtime or
//! holding a model: only the few protobuf fields below are decoded, the rest (weights included) is
//! skipped by `prost`.

use std::fmt;
use std::path::Path;

use crate::model::tensor::{DType, TensorData};

/// One dimension of an input or output, read as ONNX Runtime reads it.
///
/// A dim is fixed only when it has a `dim_value` of 0 or more (0 is a real, zero-size dim). A
/// negative `dim_value` (paddle2onnx writes -1), no value, and a `dim_param` that is empty, `?`,
/// `None` or `unk__N` (names exporters invent for "unknown") are anonymous: each is its own
/// dynamic dim, never tied to another axis. Any other `dim_param` (`batch`, `seq`,
/// `p2o.DynamicDimension.0`) names a dim that has one size across the model's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dim {
    Fixed(i64),
    /// A dynamic dimension with a symbolic name such as `batch`.
    Named(String),
    /// A dynamic dimension without a (meaningful) name.
    Unknown,
}

impl Dim {
    /// A dim from the protobuf's `dim_value` / `dim_param`, with ONNX Runtime's semantics.
    pub(crate) fn from_proto(value: Option<i64>, param: Option<&str>) -> Dim {
        match (value, param) {
            (Some(v), _) if v >= 0 => Dim::Fixed(v),
            (_, Some(p)) if !Dim::is_anonymous_name(p) => Dim::Named(p.to_string()),
            _ => Dim::Unknown,
        }
    }

    /// Names that mean "unknown" rather than a shared symbol: empty, `?`, `None`, `unk__N`.
    pub(crate) fn is_anonymous_name(p: &str) -> bool {
        let p = p.trim();
        p.is_empty()
            || p == "?"
            || p == "None"
            || p.strip_prefix("unk__")
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Named(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// What kind of value a graph input or output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    Tensor,
    Sequence,
    Map,
    Optional,
    SparseTensor,
    /// No type at all in the file.
    Untyped,
}

impl ValueKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ValueKind::Tensor => "tensor",
            ValueKind::Sequence => "sequence",
            ValueKind::Map => "map",
            ValueKind::Optional => "optional",
            ValueKind::SparseTensor => "sparse tensor",
            ValueKind::Untyped => "untyped value",
        }
    }

    /// The name with its article, for sentences: "a sequence", "an optional".
    pub(crate) fn a_name(self) -> String {
        let n = self.name();
        let article = if n.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {n}")
    }
}

/// Name, element type and shape of a graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct IoInfo {
    pub name: String,
    /// `Err` holds the ONNX type name when the harness cannot generate that type.
    pub dtype: Result<DType, String>,
    pub(crate) dims: Vec<Dim>,
    /// False when the file declares no shape at all (unknown rank): `dims` is then empty and
    /// means nothing, and the user's shape decides the rank.
    pub(crate) rank_known: bool,
    pub(crate) kind: ValueKind,
}

impl IoInfo {
    pub(crate) fn dtype_name(&self) -> String {
        match &self.dtype {
            Ok(d) => d.name().to_string(),
            Err(s) => s.clone(),
        }
    }

    /// What kind of value it is, for sentences: "a tensor", "a sequence (`seq(float32)`)".
    pub(crate) fn a_kind(&self) -> String {
        match self.kind {
            ValueKind::Tensor | ValueKind::Untyped => self.kind.a_name(),
            _ => format!("{} (`{}`)", self.kind.a_name(), self.dtype_name()),
        }
    }

    pub(crate) fn shape_string(&self) -> String {
        if self.kind != ValueKind::Tensor {
            // A sequence, map or optional has no shape of its own: its type says it all.
            return String::new();
        }
        if !self.rank_known {
            return "[unknown rank]".into();
        }
        let dims: Vec<String> = self.dims.iter().map(|d| d.to_string()).collect();
        format!("[{}]", dims.join(", "))
    }
}

/// The signature of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub inputs: Vec<IoInfo>,
    /// Graph inputs that are also initializers (models of IR version < 4 list weights as inputs):
    /// they keep their initializer unless a scenario sets them.
    pub(crate) initializer_inputs: Vec<IoInfo>,
    pub outputs: Vec<IoInfo>,
    pub(crate) opset: Option<i64>,
    /// The opsets of other domains (`ai.onnx.ml`, a vendor's), as the file lists them.
    pub(crate) domain_opsets: Vec<(String, i64)>,
    pub(crate) producer: String,
    /// The file's IR version (weights listed as inputs can be fed only from version 4 on).
    pub(crate) ir_version: i64,
    /// The graph's initializers whose data is in another file: (tensor, `location` as written,
    /// relative to the model's folder).
    pub(crate) external_data: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("cannot read {path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{path} is not a valid ONNX model ({err})")]
    Decode {
        path: String,
        err: prost::DecodeError,
    },
    #[error("{path} is not an ONNX model: it has no graph")]
    NoGraph { path: String },
}

/// Reads the signature of the ONNX model at `path`.
pub fn read_model_info(path: &Path) -> Result<ModelInfo, OnnxError> {
    let bytes = std::fs::read(path).map_err(|err| OnnxError::Io {
        path: path.display().to_string(),
        err,
    })?;
    parse_model_info(&bytes).map_err(|e| match e {
        ParseError::Decode(err) => OnnxError::Decode {
            path: path.display().to_string(),
            err,
        },
        ParseError::NoGraph => OnnxError::NoGraph {
            path: path.display().to_string(),
        },
    })
}

#[derive(Debug)]
pub(crate) enum ParseError {
    Decode(prost::DecodeError),
    NoGraph,
}

/// Parses the signature from the bytes of an ONNX file.
pub(crate) fn parse_model_info(bytes: &[u8]) -> Result<ModelInfo, ParseError> {
    use prost::Message;
    let model = pb::ModelProto::decode(bytes).map_err(ParseError::Decode)?;
    let graph = model.graph.ok_or(ParseError::NoGraph)?;
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let io = |v: &pb::ValueInfoProto| {
        let ty = v.r#type.as_ref();
        let kind = match ty {
            None => ValueKind::Untyped,
            Some(t) if t.tensor_type.is_some() => ValueKind::Tensor,
            Some(t) if t.sequence_type.is_some() => ValueKind::Sequence,
            Some(t) if t.map_type.is_some() => ValueKind::Map,
            Some(t) if t.optional_type.is_some() => ValueKind::Optional,
            Some(t) if t.sparse_tensor_type.is_some() => ValueKind::SparseTensor,
            Some(_) => ValueKind::Untyped,
        };
        let tensor = ty.and_then(|t| t.tensor_type.as_ref());
        let elem = tensor.map_or(0, |t| t.elem_type);
        let dtype = match (kind, ty) {
            (ValueKind::Tensor, _) | (_, None) => {
                DType::from_onnx(elem).ok_or_else(|| onnx_type_name(elem))
            }
            (_, Some(t)) => Err(type_name(t)),
        };
        let shape = tensor.and_then(|t| t.shape.as_ref());
        let dims = shape
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| Dim::from_proto(d.dim_value, d.dim_param.as_deref()))
                    .collect()
            })
            .unwrap_or_default();
        IoInfo {
            name: v.name.clone(),
            dtype,
            dims,
            rank_known: shape.is_some(),
            kind,
        }
    };
    Ok(ModelInfo {
        inputs: graph
            .input
            .iter()
            .filter(|v| !initializers.contains(v.name.as_str()))
            .map(io)
            .collect(),
        initializer_inputs: graph
            .input
            .iter()
            .filter(|v| initializers.contains(v.name.as_str()))
            .map(io)
            .collect(),
        outputs: graph.output.iter().map(io).collect(),
        opset: model
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version),
        domain_opsets: model
            .opset_import
            .iter()
            .filter(|o| !(o.domain.is_empty() || o.domain == "ai.onnx"))
            .map(|o| (o.domain.clone(), o.version))
            .collect(),
        producer: format!("{} {}", model.producer_name, model.producer_version)
            .trim()
            .to_string(),
        ir_version: model.ir_version,
        external_data: graph
            .initializer
            .iter()
            .filter(|t| t.data_location == 1)
            .filter_map(|t| {
                let at = t.external_data.iter().find(|e| e.key == "location")?;
                Some((t.name.clone(), at.value.clone()))
            })
            .collect(),
    })
}

/// Why a tensor file (`TensorProto`, `.pb`) cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TensorFileError {
    #[error("cannot read {path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{path} is not an ONNX TensorProto file ({err})")]
    Decode {
        path: String,
        err: prost::DecodeError,
    },
    #[error("{path}: {message}")]
    Content { path: String, message: String },
}

/// A tensor read from a `TensorProto` file, with the name it was saved under (empty when none).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NamedTensor {
    pub(crate) name: String,
    pub(crate) tensor: TensorData,
}

/// Reads a `TensorProto` file (`input_0.pb`): its name, element type, shape and data.
pub(crate) fn read_tensor_proto(path: &Path) -> Result<NamedTensor, TensorFileError> {
    let bytes = std::fs::read(path).map_err(|err| TensorFileError::Io {
        path: path.display().to_string(),
        err,
    })?;
    parse_tensor_proto(&bytes).map_err(|e| match e {
        TensorParseError::Decode(err) => TensorFileError::Decode {
            path: path.display().to_string(),
            err,
        },
        TensorParseError::Content(message) => TensorFileError::Content {
            path: path.display().to_string(),
            message,
        },
    })
}

#[derive(Debug)]
pub(crate) enum TensorParseError {
    Decode(prost::DecodeError),
    Content(String),
}

/// Decodes the bytes of a `TensorProto` into a dense little-endian tensor. The data is in
/// `raw_data` (little-endian bytes) or in the typed field of its type: `float_data`,
/// `double_data`, `int64_data`, `uint64_data` (uint32, uint64), or `int32_data` (int32 and every
/// type of 16 bits or less: float16 as its bit pattern, bool as 0 or 1).
pub(crate) fn parse_tensor_proto(bytes: &[u8]) -> Result<NamedTensor, TensorParseError> {
    use prost::Message;
    let t = pb::TensorProto::decode(bytes).map_err(TensorParseError::Decode)?;
    let bad = |m: String| Err(TensorParseError::Content(m));
    if t.data_location == 1 || !t.external_data.is_empty() {
        return bad(
            "the tensor's data is in an external file, which bench does not read; save it \
             with its data inside (onnx.numpy_helper.from_array)"
                .into(),
        );
    }
    if t.segment.is_some() {
        return bad("the tensor is split into segments, which bench does not read".into());
    }
    let Some(dtype) = DType::from_onnx(t.data_type) else {
        return bad(format!(
            "element type {} is not supported; bench reads float8/16/32/64, bfloat16, \
             (u)int8-64, bool and string",
            onnx_type_name(t.data_type)
        ));
    };
    if let Some(&d) = t.dims.iter().find(|&&d| d < 0) {
        return bad(format!("dims {:?} hold a negative size {d}", t.dims));
    }
    let Some(numel) = TensorData::checked_numel(&t.dims) else {
        return bad(format!("dims {:?} are too large to address", t.dims));
    };
    if dtype == DType::Str {
        if t.string_data.len() != numel {
            return bad(format!(
                "string {:?} needs {numel} values in string_data; the file has {}",
                t.dims,
                t.string_data.len()
            ));
        }
        return Ok(NamedTensor {
            name: t.name,
            tensor: TensorData {
                dtype,
                shape: t.dims,
                bytes: crate::model::tensor::encode_strings(&t.string_data),
            },
        });
    }
    let want = numel.checked_mul(dtype.size());
    let typed_len = t.float_data.len()
        + t.int32_data.len()
        + t.string_data.len()
        + t.int64_data.len()
        + t.double_data.len()
        + t.uint64_data.len();
    let data = if !t.raw_data.is_empty() || typed_len == 0 {
        if Some(t.raw_data.len()) != want {
            return bad(format!(
                "{} {:?} needs {} bytes of raw_data, the file has {}",
                dtype,
                t.dims,
                want.unwrap_or(usize::MAX),
                t.raw_data.len()
            ));
        }
        t.raw_data
    } else {
        fn le<T: bytemuck::Pod>(v: Vec<T>) -> Vec<u8> {
            bytemuck::cast_slice(&v).to_vec()
        }
        let (field, count, data) = match dtype {
            DType::F32 => ("float_data", t.float_data.len(), le(t.float_data)),
            DType::F64 => ("double_data", t.double_data.len(), le(t.double_data)),
            DType::I64 => ("int64_data", t.int64_data.len(), le(t.int64_data)),
            DType::U32 => (
                "uint64_data",
                t.uint64_data.len(),
                le(t.uint64_data.iter().map(|&v| v as u32).collect()),
            ),
            DType::U64 => ("uint64_data", t.uint64_data.len(), le(t.uint64_data)),
            DType::I32 => ("int32_data", t.int32_data.len(), le(t.int32_data)),
            DType::I16 => (
                "int32_data",
                t.int32_data.len(),
                le(t.int32_data.iter().map(|&v| v as i16).collect()),
            ),
            DType::U16 | DType::F16 | DType::BF16 => (
                "int32_data",
                t.int32_data.len(),
                le(t.int32_data.iter().map(|&v| v as u16).collect()),
            ),
            DType::U8 | DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ => {
                (
                    "int32_data",
                    t.int32_data.len(),
                    t.int32_data.iter().map(|&v| v as u8).collect(),
                )
            }
            DType::Str => unreachable!("strings are read above"),
            DType::I8 => (
                "int32_data",
                t.int32_data.len(),
                t.int32_data.iter().map(|&v| v as i8 as u8).collect(),
            ),
            DType::Bool => (
                "int32_data",
                t.int32_data.len(),
                t.int32_data.iter().map(|&v| u8::from(v != 0)).collect(),
            ),
        };
        if count != numel || count != typed_len {
            return bad(format!(
                "{} {:?} needs {numel} values in {field}; the file has {count} there and {} in \
                 other data fields",
                dtype,
                t.dims,
                typed_len - count
            ));
        }
        data
    };
    Ok(NamedTensor {
        name: t.name,
        tensor: TensorData {
            dtype,
            shape: t.dims,
            bytes: data,
        },
    })
}

/// The ONNX type of a value as a short expression: `float32` for a tensor (inside a container),
/// `seq(map(int64, float32))` for ZipMap's output, `optional(seq(float32))`.
fn type_name(t: &pb::TypeProto) -> String {
    let inner = |e: &Option<Box<pb::TypeProto>>| e.as_deref().map_or("?".to_string(), type_name);
    if let Some(tensor) = &t.tensor_type {
        onnx_elem_name(tensor.elem_type)
    } else if let Some(s) = &t.sequence_type {
        format!("seq({})", inner(&s.elem_type))
    } else if let Some(m) = &t.map_type {
        format!(
            "map({}, {})",
            onnx_elem_name(m.key_type),
            inner(&m.value_type)
        )
    } else if let Some(o) = &t.optional_type {
        format!("optional({})", inner(&o.elem_type))
    } else if let Some(sp) = &t.sparse_tensor_type {
        format!("sparse({})", onnx_elem_name(sp.elem_type))
    } else {
        "untyped".to_string()
    }
}

/// An element type's name, whether or not bench can generate it.
fn onnx_elem_name(code: i32) -> String {
    DType::from_onnx(code).map_or_else(|| onnx_type_name(code), |d| d.name().to_string())
}

fn onnx_type_name(code: i32) -> String {
    match code {
        8 => "string".into(),
        14 => "complex64".into(),
        15 => "complex128".into(),
        16 => "bfloat16".into(),
        17 => "float8e4m3fn".into(),
        18 => "float8e4m3fnuz".into(),
        19 => "float8e5m2".into(),
        20 => "float8e5m2fnuz".into(),
        21 => "uint4".into(),
        22 => "int4".into(),
        23 => "float4e2m1".into(),
        24 => "float8e8m0".into(),
        0 => "non-tensor".into(),
        n => format!("onnx-type-{n}"),
    }
}

/// The subset of `onnx.proto` that the harness reads. Field numbers follow the ONNX spec.
mod pb {
    /// A tensor value (`TensorProto`): the `input_K.pb` / `output_K.pb` files of the ONNX backend
    /// tests and of `onnxruntime_perf_test`. Repeated numbers may come packed or not; `prost`
    /// accepts both, as the protobuf spec requires of a reader.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct TensorProto {
        #[prost(int64, repeated, tag = "1")]
        pub(crate) dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub(crate) data_type: i32,
        /// Only whether it is there: a tensor split into segments is refused.
        #[prost(message, optional, tag = "3")]
        pub(crate) segment: Option<Present>,
        #[prost(float, repeated, tag = "4")]
        pub(crate) float_data: Vec<f32>,
        /// int32, and every type of 16 bits or less (float16 as its bits, bool as 0/1).
        #[prost(int32, repeated, tag = "5")]
        pub(crate) int32_data: Vec<i32>,
        #[prost(bytes = "vec", repeated, tag = "6")]
        pub(crate) string_data: Vec<Vec<u8>>,
        #[prost(int64, repeated, tag = "7")]
        pub(crate) int64_data: Vec<i64>,
        #[prost(string, tag = "8")]
        pub(crate) name: String,
        /// Little-endian element bytes; when set, the typed fields are empty.
        #[prost(bytes = "vec", tag = "9")]
        pub(crate) raw_data: Vec<u8>,
        #[prost(double, repeated, tag = "10")]
        pub(crate) double_data: Vec<f64>,
        /// uint32 and uint64.
        #[prost(uint64, repeated, tag = "11")]
        pub(crate) uint64_data: Vec<u64>,
        #[prost(message, repeated, tag = "13")]
        pub(crate) external_data: Vec<Present>,
        /// 1 (`EXTERNAL`): the data is in another file.
        #[prost(int32, tag = "14")]
        pub(crate) data_location: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct ModelProto {
        #[prost(int64, tag = "1")]
        pub(crate) ir_version: i64,
        #[prost(string, tag = "2")]
        pub(crate) producer_name: String,
        #[prost(string, tag = "3")]
        pub(crate) producer_version: String,
        #[prost(message, optional, tag = "7")]
        pub(crate) graph: Option<GraphProto>,
        #[prost(message, repeated, tag = "8")]
        pub(crate) opset_import: Vec<OperatorSetIdProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct OperatorSetIdProto {
        #[prost(string, tag = "1")]
        pub(crate) domain: String,
        #[prost(int64, tag = "2")]
        pub(crate) version: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct GraphProto {
        #[prost(message, repeated, tag = "5")]
        pub(crate) initializer: Vec<TensorProtoName>,
        #[prost(message, repeated, tag = "11")]
        pub(crate) input: Vec<ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub(crate) output: Vec<ValueInfoProto>,
    }

    /// The name of an initializer and where its data is: the data itself is skipped.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct TensorProtoName {
        #[prost(string, tag = "8")]
        pub(crate) name: String,
        /// `location`, `offset`, `length`, ... of data kept in another file.
        #[prost(message, repeated, tag = "13")]
        pub(crate) external_data: Vec<StringStringEntryProto>,
        /// 1 (`EXTERNAL`): the data is in the file that `external_data` names.
        #[prost(int32, tag = "14")]
        pub(crate) data_location: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct StringStringEntryProto {
        #[prost(string, tag = "1")]
        pub(crate) key: String,
        #[prost(string, tag = "2")]
        pub(crate) value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct ValueInfoProto {
        #[prost(string, tag = "1")]
        pub(crate) name: String,
        #[prost(message, optional, tag = "2")]
        pub(crate) r#type: Option<TypeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct TypeProto {
        #[prost(message, optional, tag = "1")]
        pub(crate) tensor_type: Option<TensorTypeProto>,
        /// Sequences, maps, optionals and sparse tensors are not run: they are read to be named.
        #[prost(message, optional, boxed, tag = "4")]
        pub(crate) sequence_type: Option<Box<SequenceProto>>,
        #[prost(message, optional, boxed, tag = "5")]
        pub(crate) map_type: Option<Box<MapProto>>,
        #[prost(message, optional, tag = "8")]
        pub(crate) sparse_tensor_type: Option<TensorTypeProto>,
        #[prost(message, optional, boxed, tag = "9")]
        pub(crate) optional_type: Option<Box<SequenceProto>>,
    }

    /// `TypeProto.Sequence` and `TypeProto.Optional`, which have the same one field.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct SequenceProto {
        #[prost(message, optional, boxed, tag = "1")]
        pub(crate) elem_type: Option<Box<TypeProto>>,
    }

    /// `TypeProto.Map`: a key element type and a value type.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct MapProto {
        #[prost(int32, tag = "1")]
        pub(crate) key_type: i32,
        #[prost(message, optional, boxed, tag = "2")]
        pub(crate) value_type: Option<Box<TypeProto>>,
    }

    /// A message whose content is skipped: only its presence matters.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Present {}

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct TensorTypeProto {
        #[prost(int32, tag = "1")]
        pub(crate) elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub(crate) shape: Option<TensorShapeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct TensorShapeProto {
        #[prost(message, repeated, tag = "1")]
        pub(crate) dim: Vec<Dimension>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Dimension {
        #[prost(int64, optional, tag = "1")]
        pub(crate) dim_value: Option<i64>,
        #[prost(string, optional, tag = "2")]
        pub(crate) dim_param: Option<String>,
    }
}

/// `bench inspect`'s text for one model: opset, producer, and each input and output.
pub(crate) fn describe(path: &Path) -> anyhow::Result<String> {
    use std::fmt::Write;
    let info = read_model_info(path)?;
    let mut s = String::new();
    writeln!(s, "{}", path.display())?;
    if let Some(o) = info.opset {
        writeln!(
            s,
            "  opset {o}, produced by {}",
            if info.producer.is_empty() {
                "unknown"
            } else {
                &info.producer
            }
        )?;
    }
    for (domain, version) in &info.domain_opsets {
        writeln!(s, "  opset {domain} {version}")?;
    }
    for (title, list) in [("inputs", &info.inputs), ("outputs", &info.outputs)] {
        writeln!(s, "  {title}:")?;
        let width = list.iter().map(|i| i.name.len()).max().unwrap_or(0);
        for io in list {
            let line = format!(
                "    {:width$}  {:8} {}",
                io.name,
                io.dtype_name(),
                io.shape_string()
            );
            writeln!(s, "{}", line.trim_end())?;
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Regression: the errors named their cause in the message and returned it as `source()`
    /// too, so `main`'s `{:#}` printed it twice ("No such file or directory (os error 2): No such
    /// file or directory (os error 2)").
    #[test]
    fn read_errors_print_their_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.onnx");
        std::fs::write(&garbage, b"not onnx").unwrap();
        let missing = dir.path().join("missing.onnx");
        for (path, cause) in [(&missing, "No such file"), (&garbage, "failed to decode")] {
            let chain = format!(
                "{:#}",
                anyhow::Error::from(read_model_info(path).unwrap_err())
            );
            assert_eq!(chain.matches(cause).count(), 1, "{chain}");
            let chain = format!(
                "{:#}",
                anyhow::Error::from(read_tensor_proto(path).unwrap_err())
            );
            assert_eq!(chain.matches(cause).count(), 1, "{chain}");
        }
    }

    fn value(name: &str, elem: i32, dims: Vec<pb::Dimension>) -> pb::ValueInfoProto {
        pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                tensor_type: Some(pb::TensorTypeProto {
                    elem_type: elem,
                    shape: Some(pb::TensorShapeProto { dim: dims }),
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn reads_inputs_outputs_and_skips_initializers() {
        let fixed = |v| pb::Dimension {
            dim_value: Some(v),
            dim_param: None,
        };
        let named = |p: &str| pb::Dimension {
            dim_value: None,
            dim_param: Some(p.into()),
        };
        let model = pb::ModelProto {
            ir_version: 8,
            producer_name: "pytorch".into(),
            producer_version: "2.15".into(),
            graph: Some(pb::GraphProto {
                initializer: vec![pb::TensorProtoName {
                    name: "w".into(),
                    ..Default::default()
                }],
                input: vec![
                    value("x", 1, vec![named("batch"), fixed(10)]),
                    value("w", 1, vec![fixed(10)]),
                    value("s", 8, vec![]),
                ],
                output: vec![value("y", 7, vec![named("batch"), fixed(1)])],
            }),
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 18,
            }],
        };
        let info = parse_model_info(&model.encode_to_vec()).unwrap();
        assert_eq!(info.inputs.len(), 2, "initializer `w` is not an input");
        assert_eq!(info.initializer_inputs.len(), 1);
        assert_eq!(info.initializer_inputs[0].name, "w");
        assert_eq!(info.inputs[0].shape_string(), "[batch, 10]");
        assert_eq!(info.inputs[0].dtype, Ok(DType::F32));
        assert_eq!(info.inputs[1].dtype, Ok(DType::Str));
        assert_eq!(info.outputs[0].dtype, Ok(DType::I64));
        assert_eq!(info.opset, Some(18));
    }

    #[test]
    fn dims_follow_onnx_runtime_semantics() {
        let d = |v: Option<i64>, p: Option<&str>| Dim::from_proto(v, p);
        assert_eq!(d(Some(3), None), Dim::Fixed(3));
        assert_eq!(d(Some(0), None), Dim::Fixed(0), "0 is a real zero-size dim");
        assert_eq!(d(Some(-1), None), Dim::Unknown, "paddle2onnx's -1");
        assert_eq!(d(Some(-1), Some("batch")), Dim::Named("batch".into()));
        assert_eq!(d(None, None), Dim::Unknown);
        for anonymous in ["", "?", "None", "unk__12", " ? "] {
            assert_eq!(d(None, Some(anonymous)), Dim::Unknown, "{anonymous:?}");
        }
        for named in [
            "batch",
            "p2o.DynamicDimension.0",
            "unk__",
            "unk__x",
            "seq_len",
        ] {
            assert_eq!(d(None, Some(named)), Dim::Named(named.into()), "{named:?}");
        }
    }

    #[test]
    fn unknown_rank_and_non_tensor_values_are_told_apart() {
        let untyped_shape = pb::ValueInfoProto {
            name: "x".into(),
            r#type: Some(pb::TypeProto {
                tensor_type: Some(pb::TensorTypeProto {
                    elem_type: 1,
                    shape: None,
                }),
                ..Default::default()
            }),
        };
        let sequence = pb::ValueInfoProto {
            name: "boxes".into(),
            r#type: Some(pb::TypeProto {
                sequence_type: Some(Box::new(pb::SequenceProto {
                    elem_type: Some(Box::new(pb::TypeProto {
                        tensor_type: Some(pb::TensorTypeProto {
                            elem_type: 1,
                            shape: None,
                        }),
                        ..Default::default()
                    })),
                })),
                ..Default::default()
            }),
        };
        let model = pb::ModelProto {
            graph: Some(pb::GraphProto {
                input: vec![untyped_shape],
                output: vec![sequence],
                ..Default::default()
            }),
            ..Default::default()
        };
        let info = parse_model_info(&model.encode_to_vec()).unwrap();
        assert!(!info.inputs[0].rank_known);
        assert_eq!(info.inputs[0].shape_string(), "[unknown rank]");
        assert_eq!(info.inputs[0].kind, ValueKind::Tensor);
        assert_eq!(info.outputs[0].kind, ValueKind::Sequence);
        assert_eq!(info.outputs[0].dtype, Err("seq(float32)".to_string()));
        assert_eq!(info.outputs[0].shape_string(), "");
    }

    /// Regression: an `ai.onnx.ml` model showed no opset for that domain, and ZipMap's output as
    /// `non-tensor [unknown rank]`.
    #[test]
    fn inspect_names_other_domains_and_container_types() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/wild/zipmap.onnx");
        let text = describe(&path).unwrap();
        assert!(text.contains("\n  opset ai.onnx.ml 1\n"), "{text}");
        assert!(
            text.contains("\n    probabilities  seq(map(int64, float32))\n"),
            "{text}"
        );
        let seq =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/wild/sequence_output.onnx");
        assert!(describe(&seq).unwrap().contains("parts  seq(float32)\n"));
    }

    fn tensors() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/tensors")
    }

    /// Every element type, saved by `scripts/make_tensor_fixtures.py` with its bytes in `raw_data`
    /// and in its typed field, decodes to the array numpy saved.
    #[test]
    fn reads_every_element_type_from_raw_and_typed_fields() {
        // The types numpy saves; bfloat16, float8 and strings are read in the tests below.
        for dtype in DType::ALL.into_iter().filter(|d| d.numpy_descr().is_some()) {
            let n = dtype.name();
            let want = crate::model::tensor::read_npy(&tensors().join(format!("{n}.npy"))).unwrap();
            for form in ["raw", "typed"] {
                let got = read_tensor_proto(&tensors().join(format!("{n}_{form}.pb"))).unwrap();
                assert_eq!(got.name, n);
                assert_eq!(got.tensor, want, "{n}_{form}.pb");
            }
        }
        let scalar = read_tensor_proto(&tensors().join("scalar.pb")).unwrap();
        assert_eq!(scalar.name, "s");
        assert_eq!(scalar.tensor.shape, Vec::<i64>::new());
        assert_eq!(scalar.tensor.bytes, 2.5f32.to_le_bytes());
    }

    /// Repeated numbers may be packed (one length-delimited run) or not (one tag per value); a
    /// reader must take both. ONNX packs the data fields and writes `dims` unpacked.
    #[test]
    fn packed_and_unpacked_fields_decode_alike() {
        let floats: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        let mut unpacked = vec![0x08, 0x02, 0x10, 0x01]; // dims: 2 (unpacked), data_type: float
        for f in floats.chunks(4) {
            unpacked.push(0x25); // float_data, fixed32
            unpacked.extend_from_slice(f);
        }
        let mut packed = vec![0x0a, 0x01, 0x02, 0x10, 0x01, 0x22, 0x08]; // dims packed; float_data packed
        packed.extend_from_slice(&floats);
        let a = parse_tensor_proto(&unpacked).unwrap().tensor;
        let b = parse_tensor_proto(&packed).unwrap().tensor;
        assert_eq!(a, b);
        assert_eq!(
            (a.dtype, a.shape.as_slice(), a.bytes),
            (DType::F32, &[2][..], floats)
        );
        // int64_data: varints, unpacked and packed; -1 takes ten bytes.
        let mut unpacked = vec![0x08, 0x02, 0x10, 0x07, 0x38, 0x05, 0x38];
        unpacked.extend_from_slice(&[0xff; 9]);
        unpacked.push(0x01);
        let mut packed = vec![0x08, 0x02, 0x10, 0x07, 0x3a, 11, 0x05];
        packed.extend_from_slice(&[0xff; 9]);
        packed.push(0x01);
        let a = parse_tensor_proto(&unpacked).unwrap().tensor;
        assert_eq!(a, parse_tensor_proto(&packed).unwrap().tensor);
        assert_eq!(
            crate::model::tensor::decode_values(DType::I64, &a.bytes),
            [5.0, -1.0]
        );
    }

    /// bfloat16 and strings as `onnx.helper.make_tensor` saves them (`int32_data`, `string_data`),
    /// and float8 in both fields.
    #[test]
    fn reads_bfloat16_float8_and_strings() {
        let bf = read_tensor_proto(&tensors().join("bfloat16.pb"))
            .unwrap()
            .tensor;
        assert_eq!((bf.dtype, bf.shape.as_slice()), (DType::BF16, &[2][..]));
        assert_eq!(
            crate::model::tensor::decode_values(DType::BF16, &bf.bytes),
            [1.0, 2.0]
        );
        let s = read_tensor_proto(&tensors().join("string.pb"))
            .unwrap()
            .tensor;
        assert_eq!((s.dtype, s.shape.as_slice()), (DType::Str, &[1][..]));
        assert_eq!(
            crate::model::tensor::decode_strings(&s.bytes).unwrap(),
            [b"hi"]
        );
        for (code, dtype) in [
            (17, DType::F8E4M3FN),
            (18, DType::F8E4M3FNUZ),
            (19, DType::F8E5M2),
            (20, DType::F8E5M2FNUZ),
        ] {
            let typed = pb::TensorProto {
                dims: vec![2],
                data_type: code,
                int32_data: vec![0x01, 0x42],
                ..Default::default()
            };
            let raw = pb::TensorProto {
                dims: vec![2],
                data_type: code,
                raw_data: vec![0x01, 0x42],
                ..Default::default()
            };
            for t in [typed, raw] {
                let got = parse_tensor_proto(&t.encode_to_vec()).unwrap().tensor;
                assert_eq!(
                    (got.dtype, got.bytes.as_slice()),
                    (dtype, &[0x01, 0x42][..])
                );
            }
        }
        let short = pb::TensorProto {
            dims: vec![2],
            data_type: 8,
            string_data: vec![b"one".to_vec()],
            ..Default::default()
        };
        let Err(TensorParseError::Content(why)) = parse_tensor_proto(&short.encode_to_vec()) else {
            panic!("a string tensor short of values was accepted");
        };
        assert!(why.contains("needs 2 values in string_data"), "{why}");
    }

    #[test]
    fn unreadable_tensors_say_why() {
        let err = |f: &str| {
            read_tensor_proto(&tensors().join(f))
                .unwrap_err()
                .to_string()
        };
        let complex = pb::TensorProto {
            dims: vec![1],
            data_type: 14,
            raw_data: vec![0; 8],
            ..Default::default()
        };
        let Err(TensorParseError::Content(why)) = parse_tensor_proto(&complex.encode_to_vec())
        else {
            panic!("a complex64 tensor was accepted");
        };
        assert!(
            why.contains("element type complex64 is not supported"),
            "{why}"
        );
        assert!(err("external.pb").contains("in an external file"));
        assert!(err("nothing.pb").starts_with("cannot read"));
        // dims [3] with two floats.
        let short = [0x08, 0x03, 0x10, 0x01, 0x22, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
        let Err(TensorParseError::Content(why)) = parse_tensor_proto(&short) else {
            panic!("a short tensor was accepted");
        };
        assert!(
            why.contains("needs 3 values in float_data; the file has 2"),
            "{why}"
        );
        // dims [2] with 4 bytes of raw_data.
        let raw = [0x08, 0x02, 0x10, 0x01, 0x4a, 0x04, 0, 0, 0, 0];
        let Err(TensorParseError::Content(why)) = parse_tensor_proto(&raw) else {
            panic!("short raw_data was accepted");
        };
        assert!(
            why.contains("needs 8 bytes of raw_data, the file has 4"),
            "{why}"
        );
        assert!(matches!(
            parse_tensor_proto(b"\xff\xff\xff"),
            Err(TensorParseError::Decode(_))
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_model_info(b"\xff\xff\xff\xff not onnx").is_err());
        assert!(matches!(parse_model_info(b""), Err(ParseError::NoGraph)));
    }
}
