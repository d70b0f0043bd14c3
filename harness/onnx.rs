//! Reads a model's inputs and outputs straight from the ONNX protobuf, without ONNX Runtime.
//!
//! The parent validates scenarios and `bench inspect` prints signatures without loading a runtime or
//! holding a model: only the few protobuf fields below are decoded, the rest (weights included) is
//! skipped by `prost`.

use std::fmt;
use std::path::Path;

use crate::tensor::DType;

/// One dimension of an input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Fixed(i64),
    /// A dynamic dimension with a symbolic name such as `batch`.
    Named(String),
    /// A dynamic dimension without a name.
    Unknown,
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

/// Name, element type and shape of a graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct IoInfo {
    pub name: String,
    /// `Err` holds the ONNX type name when the harness cannot generate that type.
    pub dtype: Result<DType, String>,
    pub dims: Vec<Dim>,
}

impl IoInfo {
    pub fn dtype_name(&self) -> String {
        match &self.dtype {
            Ok(d) => d.name().to_string(),
            Err(s) => s.clone(),
        }
    }

    pub fn shape_string(&self) -> String {
        let dims: Vec<String> = self.dims.iter().map(|d| d.to_string()).collect();
        format!("[{}]", dims.join(", "))
    }
}

/// The signature of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub inputs: Vec<IoInfo>,
    pub outputs: Vec<IoInfo>,
    pub opset: Option<i64>,
    pub producer: String,
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
        let tensor = v.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
        let elem = tensor.map_or(0, |t| t.elem_type);
        let dims = tensor
            .and_then(|t| t.shape.as_ref())
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match (&d.dim_value, &d.dim_param) {
                        (Some(v), _) => Dim::Fixed(*v),
                        (None, Some(p)) if !p.is_empty() => Dim::Named(p.clone()),
                        _ => Dim::Unknown,
                    })
                    .collect()
            })
            .unwrap_or_default();
        IoInfo {
            name: v.name.clone(),
            dtype: DType::from_onnx(elem).ok_or_else(|| onnx_type_name(elem)),
            dims,
        }
    };
    Ok(ModelInfo {
        inputs: graph
            .input
            .iter()
            .filter(|v| !initializers.contains(v.name.as_str()))
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
    }

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
        assert_eq!(info.inputs[0].shape_string(), "[batch, 10]");
        assert_eq!(info.inputs[0].dtype, Ok(DType::F32));
        assert_eq!(info.inputs[1].dtype, Err("string".into()));
        assert_eq!(info.outputs[0].dtype, Ok(DType::I64));
        assert_eq!(info.opset, Some(18));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_model_info(b"\xff\xff\xff\xff not onnx").is_err());
        assert!(matches!(parse_model_info(b""), Err(ParseError::NoGraph)));
    }
}
