//! Reads a model's inputs and outputs straight from the ONNX protobuf, without ONNX Runtime.
//!
//! The parent validates scenarios and `bench inspect` prints signatures without loading a runtime or
//! holding a model: only the few protobuf fields below are decoded, the rest (weights included) is
//! skipped by `prost`.

use std::fmt;
use std::path::Path;

use crate::tensor::DType;

/// One dimension of an input or output, read as ONNX Runtime reads it.
///
/// A dim is fixed only when it has a `dim_value` of 0 or more (0 is a real, zero-size dim). A
/// negative `dim_value` (paddle2onnx writes -1), no value, and a `dim_param` that is empty, `?`,
/// `None` or `unk__N` (names exporters invent for "unknown") are anonymous: each is its own
/// dynamic dim, never tied to another axis. Any other `dim_param` (`batch`, `seq`,
/// `p2o.DynamicDimension.0`) names a dim that has one size across the model's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Fixed(i64),
    /// A dynamic dimension with a symbolic name such as `batch`.
    Named(String),
    /// A dynamic dimension without a (meaningful) name.
    Unknown,
}

impl Dim {
    /// A dim from the protobuf's `dim_value` / `dim_param`, with ONNX Runtime's semantics.
    pub fn from_proto(value: Option<i64>, param: Option<&str>) -> Dim {
        match (value, param) {
            (Some(v), _) if v >= 0 => Dim::Fixed(v),
            (_, Some(p)) if !Dim::is_anonymous_name(p) => Dim::Named(p.to_string()),
            _ => Dim::Unknown,
        }
    }

    /// Names that mean "unknown" rather than a shared symbol: empty, `?`, `None`, `unk__N`.
    pub fn is_anonymous_name(p: &str) -> bool {
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
pub enum ValueKind {
    Tensor,
    Sequence,
    Map,
    Optional,
    SparseTensor,
    /// No type at all in the file.
    Untyped,
}

impl ValueKind {
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::Tensor => "tensor",
            ValueKind::Sequence => "sequence",
            ValueKind::Map => "map",
            ValueKind::Optional => "optional",
            ValueKind::SparseTensor => "sparse tensor",
            ValueKind::Untyped => "untyped value",
        }
    }
}

/// Name, element type and shape of a graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct IoInfo {
    pub name: String,
    /// `Err` holds the ONNX type name when the harness cannot generate that type.
    pub dtype: Result<DType, String>,
    pub dims: Vec<Dim>,
    /// False when the file declares no shape at all (unknown rank): `dims` is then empty and
    /// means nothing, and the user's shape decides the rank.
    pub rank_known: bool,
    pub kind: ValueKind,
}

impl IoInfo {
    pub fn dtype_name(&self) -> String {
        match &self.dtype {
            Ok(d) => d.name().to_string(),
            Err(s) => s.clone(),
        }
    }

    pub fn shape_string(&self) -> String {
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
    pub initializer_inputs: Vec<IoInfo>,
    pub outputs: Vec<IoInfo>,
    pub opset: Option<i64>,
    pub producer: String,
    /// The file's IR version (weights listed as inputs can be fed only from version 4 on).
    pub ir_version: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid ONNX model ({source})")]
    Decode {
        path: String,
        source: prost::DecodeError,
    },
    #[error("{path} is not an ONNX model: it has no graph")]
    NoGraph { path: String },
}

/// Reads the signature of the ONNX model at `path`.
pub fn read_model_info(path: &Path) -> Result<ModelInfo, OnnxError> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_model_info(&bytes).map_err(|e| match e {
        ParseError::Decode(source) => OnnxError::Decode {
            path: path.display().to_string(),
            source,
        },
        ParseError::NoGraph => OnnxError::NoGraph {
            path: path.display().to_string(),
        },
    })
}

#[derive(Debug)]
pub enum ParseError {
    Decode(prost::DecodeError),
    NoGraph,
}

/// Parses the signature from the bytes of an ONNX file.
pub fn parse_model_info(bytes: &[u8]) -> Result<ModelInfo, ParseError> {
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
            dtype: DType::from_onnx(elem).ok_or_else(|| onnx_type_name(elem)),
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
        producer: format!("{} {}", model.producer_name, model.producer_version)
            .trim()
            .to_string(),
        ir_version: model.ir_version,
    })
}

fn onnx_type_name(code: i32) -> String {
    match code {
        8 => "string".into(),
        14 => "complex64".into(),
        15 => "complex128".into(),
        16 => "bfloat16".into(),
        0 => "non-tensor".into(),
        n => format!("onnx-type-{n}"),
    }
}

/// The subset of `onnx.proto` that the harness reads. Field numbers follow the ONNX spec.
mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(string, tag = "3")]
        pub producer_version: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetIdProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetIdProto {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProtoName>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfoProto>,
    }

    /// Only the name of an initializer: its data is skipped.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProtoName {
        #[prost(string, tag = "8")]
        pub name: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfoProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<TypeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeProto {
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TensorTypeProto>,
        /// Only whether it is there: sequences, maps, optionals and sparse tensors are not run.
        #[prost(message, optional, tag = "4")]
        pub sequence_type: Option<Present>,
        #[prost(message, optional, tag = "5")]
        pub map_type: Option<Present>,
        #[prost(message, optional, tag = "8")]
        pub sparse_tensor_type: Option<Present>,
        #[prost(message, optional, tag = "9")]
        pub optional_type: Option<Present>,
    }

    /// A message whose content is skipped: only its presence matters.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Present {}

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorTypeProto {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShapeProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShapeProto {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(int64, optional, tag = "1")]
        pub dim_value: Option<i64>,
        #[prost(string, optional, tag = "2")]
        pub dim_param: Option<String>,
    }
}

/// `bench inspect`'s text for one model: opset, producer, and each input and output.
pub fn describe(path: &Path) -> anyhow::Result<String> {
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
    for (title, list) in [("inputs", &info.inputs), ("outputs", &info.outputs)] {
        writeln!(s, "  {title}:")?;
        let width = list.iter().map(|i| i.name.len()).max().unwrap_or(0);
        for io in list {
            writeln!(
                s,
                "    {:width$}  {:8} {}",
                io.name,
                io.dtype_name(),
                io.shape_string()
            )?;
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

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
                initializer: vec![pb::TensorProtoName { name: "w".into() }],
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
        assert_eq!(info.inputs[1].dtype, Err("string".into()));
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
                sequence_type: Some(pb::Present {}),
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
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_model_info(b"\xff\xff\xff\xff not onnx").is_err());
        assert!(matches!(parse_model_info(b""), Err(ParseError::NoGraph)));
    }
}
