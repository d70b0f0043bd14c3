//! Tensors as the harness sees them: an element type, a shape and raw little-endian bytes.
//!
//! The parent never runs a model, so it never needs typed arrays: it generates input bytes once per
//! sample, ships them to workers and compares outputs byte for byte. Typed views are made only at the
//! edges (generators, `.npy` files, the ONNX Runtime adapter).

use std::fmt;
use std::path::Path;

use half::f16;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// Element types the harness can generate, send and hand to a runtime: the tensor types ONNX
/// Runtime takes, except complex, 4-bit and float8e8m0.
///
/// Strings have no fixed size: a string tensor's bytes are its elements in order, each as a
/// little-endian `u32` byte length and then its bytes (see [`encode_strings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    F32,
    F64,
    F16,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Bool,
    // Added later, so after the others: the wire protocol numbers variants in order.
    BF16,
    /// float8 with 4 exponent and 3 mantissa bits, NaN but no infinities (ONNX `FLOAT8E4M3FN`).
    F8E4M3FN,
    /// As `F8E4M3FN`, exponent bias 8, one NaN and no negative zero (`FLOAT8E4M3FNUZ`).
    F8E4M3FNUZ,
    /// float8 with 5 exponent and 2 mantissa bits, IEEE-like (`FLOAT8E5M2`).
    F8E5M2,
    /// As `F8E5M2`, exponent bias 16, one NaN and no negative zero (`FLOAT8E5M2FNUZ`).
    F8E5M2FNUZ,
    Str,
}

impl DType {
    /// Every element type, in declaration order.
    pub(crate) const ALL: [DType; 18] = [
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
        DType::BF16,
        DType::F8E4M3FN,
        DType::F8E4M3FNUZ,
        DType::F8E5M2,
        DType::F8E5M2FNUZ,
        DType::Str,
    ];

    /// Bytes per element; 0 for strings, whose elements have no fixed size.
    pub(crate) fn size(self) -> usize {
        match self {
            DType::Str => 0,
            DType::I8
            | DType::U8
            | DType::Bool
            | DType::F8E4M3FN
            | DType::F8E4M3FNUZ
            | DType::F8E5M2
            | DType::F8E5M2FNUZ => 1,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }

    /// The bytes of `shape` elements of this type; `None` for strings (their size depends on the
    /// values) and for a shape too large to address.
    pub(crate) fn byte_len(self, shape: &[i64]) -> Option<usize> {
        if self == DType::Str {
            return None;
        }
        TensorData::checked_numel(shape)?.checked_mul(self.size())
    }

    /// The name users write and read (`float32`, `int64`, ...), as ONNX and numpy spell them.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F8E4M3FN => "float8e4m3fn",
            DType::F8E4M3FNUZ => "float8e4m3fnuz",
            DType::F8E5M2 => "float8e5m2",
            DType::F8E5M2FNUZ => "float8e5m2fnuz",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::Bool => "bool",
            DType::Str => "string",
        }
    }

    pub(crate) fn is_float(self) -> bool {
        matches!(
            self,
            DType::F32
                | DType::F64
                | DType::F16
                | DType::BF16
                | DType::F8E4M3FN
                | DType::F8E4M3FNUZ
                | DType::F8E5M2
                | DType::F8E5M2FNUZ
        )
    }

    /// Maps an ONNX `TensorProto.DataType` code; `None` for types the harness does not support
    /// (complex, 4-bit, float8e8m0).
    pub(crate) fn from_onnx(code: i32) -> Option<DType> {
        Some(match code {
            1 => DType::F32,
            2 => DType::U8,
            3 => DType::I8,
            4 => DType::U16,
            5 => DType::I16,
            6 => DType::I32,
            7 => DType::I64,
            8 => DType::Str,
            9 => DType::Bool,
            10 => DType::F16,
            11 => DType::F64,
            12 => DType::U32,
            13 => DType::U64,
            16 => DType::BF16,
            17 => DType::F8E4M3FN,
            18 => DType::F8E4M3FNUZ,
            19 => DType::F8E5M2,
            20 => DType::F8E5M2FNUZ,
            _ => return None,
        })
    }

    /// The numpy type string of this type (`<f4`), for the types numpy has.
    #[cfg(test)]
    pub(crate) fn numpy_descr(self) -> Option<&'static str> {
        Some(match self {
            DType::F32 => "<f4",
            DType::F64 => "<f8",
            DType::F16 => "<f2",
            DType::I8 => "|i1",
            DType::I16 => "<i2",
            DType::I32 => "<i4",
            DType::I64 => "<i8",
            DType::U8 => "|u1",
            DType::U16 => "<u2",
            DType::U32 => "<u4",
            DType::U64 => "<u8",
            DType::Bool => "|b1",
            DType::BF16
            | DType::F8E4M3FN
            | DType::F8E4M3FNUZ
            | DType::F8E5M2
            | DType::F8E5M2FNUZ
            | DType::Str => return None,
        })
    }

    /// Maps a numpy type string such as `<f4` or `|b1`.
    pub(crate) fn from_numpy(descr: &str) -> Option<DType> {
        let (order, code) = descr.split_at(1.min(descr.len()));
        if order == ">" && !code.ends_with('1') {
            return None; // big-endian multi-byte data: not supported
        }
        Some(match code {
            "f4" => DType::F32,
            "f8" => DType::F64,
            "f2" => DType::F16,
            "i1" => DType::I8,
            "i2" => DType::I16,
            "i4" => DType::I32,
            "i8" => DType::I64,
            "u1" => DType::U8,
            "u2" => DType::U16,
            "u4" => DType::U32,
            "u8" => DType::U64,
            "b1" => DType::Bool,
            _ => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dense tensor: element type, shape and row-major little-endian bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorData {
    pub dtype: DType,
    pub shape: Vec<i64>,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

impl TensorData {
    /// Number of elements of a shape (1 for a scalar); saturates instead of overflowing.
    pub(crate) fn numel(shape: &[i64]) -> usize {
        Self::checked_numel(shape).unwrap_or(usize::MAX)
    }

    /// Number of elements, or `None` when it does not fit in `usize`.
    pub(crate) fn checked_numel(shape: &[i64]) -> Option<usize> {
        shape.iter().try_fold(1usize, |n, &d| {
            n.checked_mul(usize::try_from(d.max(0)).ok()?)
        })
    }

    /// Checks that the byte length agrees with dtype and shape.
    pub(crate) fn check(&self) -> Result<(), String> {
        self.view().check()
    }
}

/// A borrowed tensor: what a runtime reads, whether the bytes came in a frame or live in shared memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorView<'a> {
    pub(crate) dtype: DType,
    pub(crate) shape: &'a [i64],
    pub(crate) bytes: &'a [u8],
}

impl TensorView<'_> {
    /// Checks that the byte length agrees with dtype and shape (for strings, that the bytes hold
    /// exactly one element per position).
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.dtype == DType::Str {
            let n = decode_strings(self.bytes)?.len();
            let want = TensorData::numel(self.shape);
            return if n == want {
                Ok(())
            } else {
                Err(format!(
                    "string tensor {:?} needs {want} strings, got {n}",
                    self.shape
                ))
            };
        }
        let want = TensorData::numel(self.shape).saturating_mul(self.dtype.size());
        if self.bytes.len() != want {
            return Err(format!(
                "tensor of {} {:?} needs {want} bytes, got {}",
                self.dtype,
                self.shape,
                self.bytes.len()
            ));
        }
        Ok(())
    }
}

impl TensorData {
    pub fn view(&self) -> TensorView<'_> {
        TensorView {
            dtype: self.dtype,
            shape: &self.shape,
            bytes: &self.bytes,
        }
    }
}

/// Concatenates `parts` along `axis`, as ONNX's `Concat` does: every part has the same dtype and
/// rank, and the same size on every other axis. Dynamic batching puts requests together this way.
pub(crate) fn concat(parts: &[TensorView<'_>], axis: usize) -> Result<TensorData, String> {
    let first = parts.first().ok_or("nothing to concatenate")?;
    let rank = first.shape.len();
    if axis >= rank {
        return Err(format!(
            "cannot concatenate along axis {axis} of a tensor of rank {rank}"
        ));
    }
    for p in parts {
        p.check()?;
        let same_elsewhere =
            p.shape.len() == rank && (0..rank).all(|k| k == axis || p.shape[k] == first.shape[k]);
        if p.dtype != first.dtype || !same_elsewhere {
            return Err(format!(
                "cannot concatenate {} {:?} and {} {:?} along axis {axis}",
                first.dtype, first.shape, p.dtype, p.shape
            ));
        }
    }
    let mut shape = first.shape.to_vec();
    shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
    // Each part is `outer` blocks of `rows × inner` elements: one block per index of the axes
    // before `axis`. The result takes block k of every part, in order, for each k.
    let outer = TensorData::numel(&first.shape[..axis]);
    let inner = TensorData::numel(&first.shape[axis + 1..]);
    let block = |p: &TensorView<'_>| p.shape[axis].max(0) as usize * inner;
    let bytes = if first.dtype == DType::Str {
        let elements: Vec<Vec<&[u8]>> = parts
            .iter()
            .map(|p| decode_strings(p.bytes))
            .collect::<Result<_, _>>()?;
        let mut all = Vec::new();
        for k in 0..outer {
            for (p, e) in parts.iter().zip(&elements) {
                let b = block(p);
                all.extend_from_slice(&e[k * b..(k + 1) * b]);
            }
        }
        encode_strings(&all)
    } else {
        let size = first.dtype.size();
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.bytes.len()).sum());
        for k in 0..outer {
            for p in parts {
                let b = block(p) * size;
                out.extend_from_slice(&p.bytes[k * b..(k + 1) * b]);
            }
        }
        out
    };
    Ok(TensorData {
        dtype: first.dtype,
        shape,
        bytes,
    })
}

/// How the values of one input are made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Generator {
    /// Uniform in `[low, high)`; for `bool`, true with probability one half.
    Uniform { low: f64, high: f64 },
    /// Normal with the given mean and standard deviation.
    Normal { mean: f64, std: f64 },
    /// Integers uniform in `[low, high)`.
    Int { low: i64, high: i64 },
    /// Every element equals `value`.
    Const { value: f64 },
    /// Samples read from a tensor file (`.pb`, `.npy` or `.npz`): its shape is the input's shape,
    /// or one leading axis of samples followed by the input's shape. Read by
    /// `crate::model::testdata::file_samples`, which knows every format.
    File { path: std::path::PathBuf },
    /// One sample per file, each of exactly the input's shape: an input of a test-data folder,
    /// one file per `test_data_set_N`. Read by `crate::model::testdata::files_samples`.
    Files { paths: Vec<std::path::PathBuf> },
    /// For string inputs: each element drawn uniformly from `values` (one value: a constant).
    Strings { values: Vec<String> },
}

impl Generator {
    /// Whether the values come from files rather than from a seed.
    pub(crate) fn is_file(&self) -> bool {
        matches!(self, Generator::File { .. } | Generator::Files { .. })
    }
}

/// Generates `count` samples of one input. Each sample's values depend only on `seed` and the sample
/// index, so any process that knows the seed makes the same bytes. File generators are read by
/// `crate::model::testdata` (this module does not know every file format), and are an error here.
pub(crate) fn generate(
    generator: &Generator,
    dtype: DType,
    shape: &[i64],
    seed: u64,
    count: usize,
) -> anyhow::Result<Vec<TensorData>> {
    if generator.is_file() {
        anyhow::bail!("file inputs are read by testdata::file_samples, not generated");
    }
    let n = TensorData::numel(shape);
    let mut samples = Vec::with_capacity(count);
    for index in 0..count {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index as u64);
        if let Generator::Strings { values } = generator {
            anyhow::ensure!(
                dtype == DType::Str && !values.is_empty(),
                "the `strings` generator makes string inputs from a list of one or more values"
            );
            let picked: Vec<&str> = (0..n)
                .map(|_| values[rng.random_range(0..values.len())].as_str())
                .collect();
            samples.push(TensorData {
                dtype,
                shape: shape.to_vec(),
                bytes: encode_strings(&picked),
            });
            continue;
        }
        anyhow::ensure!(
            dtype != DType::Str,
            "string inputs take the `strings` generator (a list of values) or a file"
        );
        let values: Vec<f64> = match *generator {
            Generator::Uniform { .. } if dtype == DType::Bool => (0..n)
                .map(|_| f64::from(u8::from(rng.random_bool(0.5))))
                .collect(),
            Generator::Uniform { low, high } => {
                (0..n).map(|_| rng.random_range(low..high)).collect()
            }
            Generator::Normal { mean, std } => {
                let dist = Normal::new(mean, std)
                    .map_err(|e| anyhow::anyhow!("normal(mean={mean}, std={std}): {e}"))?;
                (0..n).map(|_| dist.sample(&mut rng)).collect()
            }
            Generator::Int { low, high } => {
                (0..n).map(|_| rng.random_range(low..high) as f64).collect()
            }
            Generator::Const { value } => vec![value; n],
            Generator::File { .. } | Generator::Files { .. } | Generator::Strings { .. } => {
                unreachable!("handled above")
            }
        };
        samples.push(TensorData {
            dtype,
            shape: shape.to_vec(),
            bytes: encode_values(dtype, &values),
        });
    }
    Ok(samples)
}

/// Converts `f64` values to the little-endian bytes of `dtype` (saturating for integers and
/// float8). Strings have no numeric values: for them it returns no bytes.
pub fn encode_values(dtype: DType, values: &[f64]) -> Vec<u8> {
    fn bytes<T: bytemuck::Pod>(v: Vec<T>) -> Vec<u8> {
        bytemuck::cast_slice(&v).to_vec()
    }
    match dtype {
        DType::F32 => bytes(values.iter().map(|&v| v as f32).collect()),
        DType::F64 => bytes(values.to_vec()),
        DType::F16 => bytes(values.iter().map(|&v| f16::from_f64(v)).collect()),
        DType::BF16 => bytes(values.iter().map(|&v| half::bf16::from_f64(v)).collect()),
        DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ => {
            let table = Float8::of(dtype).table();
            values.iter().map(|&v| Float8::encode(&table, v)).collect()
        }
        DType::Str => Vec::new(),
        DType::I8 => bytes(values.iter().map(|&v| v as i8).collect()),
        DType::I16 => bytes(values.iter().map(|&v| v as i16).collect()),
        DType::I32 => bytes(values.iter().map(|&v| v as i32).collect()),
        DType::I64 => bytes(values.iter().map(|&v| v as i64).collect()),
        DType::U8 => bytes(values.iter().map(|&v| v as u8).collect()),
        DType::U16 => bytes(values.iter().map(|&v| v as u16).collect()),
        DType::U32 => bytes(values.iter().map(|&v| v as u32).collect()),
        DType::U64 => bytes(values.iter().map(|&v| v as u64).collect()),
        DType::Bool => values.iter().map(|&v| u8::from(v != 0.0)).collect(),
    }
}

/// Decodes little-endian bytes of `dtype` to `f64`, for comparisons and summaries. Strings have
/// no numeric values: for them it returns none.
pub fn decode_values(dtype: DType, bytes: &[u8]) -> Vec<f64> {
    fn vals<T: bytemuck::Pod>(b: &[u8], f: impl Fn(T) -> f64) -> Vec<f64> {
        b.chunks_exact(size_of::<T>())
            .map(|c| f(bytemuck::pod_read_unaligned(c)))
            .collect()
    }
    match dtype {
        DType::F32 => vals::<f32>(bytes, f64::from),
        DType::F64 => vals::<f64>(bytes, |v| v),
        DType::F16 => vals::<f16>(bytes, f64::from),
        DType::BF16 => vals::<half::bf16>(bytes, f64::from),
        DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ => {
            let f = Float8::of(dtype);
            bytes.iter().map(|&b| f.decode(b)).collect()
        }
        DType::Str => Vec::new(),
        DType::I8 => vals::<i8>(bytes, f64::from),
        DType::I16 => vals::<i16>(bytes, f64::from),
        DType::I32 => vals::<i32>(bytes, f64::from),
        DType::I64 => vals::<i64>(bytes, |v| v as f64),
        DType::U8 => vals::<u8>(bytes, f64::from),
        DType::U16 => vals::<u16>(bytes, f64::from),
        DType::U32 => vals::<u32>(bytes, f64::from),
        DType::U64 => vals::<u64>(bytes, |v| v as f64),
        DType::Bool => bytes.iter().map(|&b| f64::from(u8::from(b != 0))).collect(),
    }
}

/// The float8 formats of ONNX: exponent and mantissa widths, bias, and how NaN and infinity are
/// spelled (the `FNUZ` variants have a single NaN, 0x80, and no negative zero).
#[derive(Debug, Clone, Copy)]
struct Float8 {
    mantissa_bits: u32,
    bias: i32,
    /// `FNUZ`: 0x80 is the only NaN.
    nan_is_negative_zero: bool,
    /// E5M2: the top exponent holds infinity (mantissa 0) and NaN.
    ieee_top: bool,
}

impl Float8 {
    fn of(dtype: DType) -> Float8 {
        let (mantissa_bits, bias, nan_is_negative_zero, ieee_top) = match dtype {
            DType::F8E4M3FN => (3, 7, false, false),
            DType::F8E4M3FNUZ => (3, 8, true, false),
            DType::F8E5M2 => (2, 15, false, true),
            _ => (2, 16, true, false), // F8E5M2FNUZ
        };
        Float8 {
            mantissa_bits,
            bias,
            nan_is_negative_zero,
            ieee_top,
        }
    }

    /// The value of one byte.
    fn decode(self, b: u8) -> f64 {
        let m_bits = self.mantissa_bits;
        let negative = b & 0x80 != 0;
        let e = i32::from((b & 0x7f) >> m_bits);
        let m = f64::from(b & ((1 << m_bits) - 1));
        let top = (1 << (7 - m_bits)) - 1;
        if self.nan_is_negative_zero && b == 0x80 {
            return f64::NAN;
        }
        if !self.nan_is_negative_zero {
            if self.ieee_top && e == top {
                return if m == 0.0 {
                    if negative {
                        f64::NEG_INFINITY
                    } else {
                        f64::INFINITY
                    }
                } else {
                    f64::NAN
                };
            }
            if !self.ieee_top && e == top && m == f64::from((1u8 << m_bits) - 1) {
                return f64::NAN;
            }
        }
        let scale = f64::from(1u32 << m_bits);
        let magnitude = if e == 0 {
            m / scale * 2f64.powi(1 - self.bias)
        } else {
            (1.0 + m / scale) * 2f64.powi(e - self.bias)
        };
        if negative { -magnitude } else { magnitude }
    }

    /// Every finite non-negative value and its byte, in increasing order.
    fn table(self) -> (Float8, Vec<(f64, u8)>) {
        let mut t: Vec<(f64, u8)> = (0u8..0x80)
            .map(|b| (self.decode(b), b))
            .filter(|(v, _)| v.is_finite())
            .collect();
        t.sort_by(|a, b| a.0.total_cmp(&b.0));
        (self, t)
    }

    /// The nearest value's byte (saturating at the largest finite value; NaN to NaN).
    fn encode((format, table): &(Float8, Vec<(f64, u8)>), v: f64) -> u8 {
        if v.is_nan() {
            return if format.nan_is_negative_zero {
                0x80
            } else {
                0x7f
            };
        }
        let a = v.abs();
        let i = table.partition_point(|(x, _)| *x < a);
        let byte = match (table.get(i.saturating_sub(1)), table.get(i)) {
            (Some(lo), Some(hi)) if a - lo.0 < hi.0 - a => lo.1,
            (_, Some(hi)) => hi.1,
            (Some(lo), None) => lo.1,
            (None, None) => 0,
        };
        if v.is_sign_negative() && !(format.nan_is_negative_zero && byte == 0) {
            byte | 0x80
        } else {
            byte
        }
    }
}

/// A string tensor's bytes: each element as a little-endian `u32` byte length and its bytes.
pub(crate) fn encode_strings<S: AsRef<[u8]>>(values: &[S]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.iter().map(|v| 4 + v.as_ref().len()).sum());
    for v in values {
        let v = v.as_ref();
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// The elements of a string tensor's bytes (see [`encode_strings`]).
pub(crate) fn decode_strings(mut bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
            return Err("a string tensor's bytes end inside a length".into());
        };
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(format!(
                "a string of {len} bytes runs past the tensor's end"
            ));
        }
        out.push(&rest[..len]);
        bytes = &rest[len..];
    }
    Ok(out)
}

/// Reads a whole `.npy` file as one tensor.
pub fn read_npy(path: &Path) -> anyhow::Result<TensorData> {
    use anyhow::Context;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_npy(&bytes).with_context(|| path.display().to_string())
}

/// Decodes the bytes of a `.npy` file (also the members of an `.npz`).
pub(crate) fn parse_npy(bytes: &[u8]) -> anyhow::Result<TensorData> {
    use anyhow::Context;
    let npy = npyz::NpyFile::new(bytes).context("not a valid .npy file")?;
    let descr = npy
        .dtype()
        .descr()
        .trim_matches(|c| c == '\'' || c == '"')
        .to_string();
    let dtype = DType::from_numpy(&descr).with_context(|| {
        format!(
            "numpy dtype `{descr}` is not supported (use float16/32/64, (u)int8-64 or bool, little-endian)"
        )
    })?;
    if npy.order() == npyz::Order::Fortran {
        anyhow::bail!("Fortran-order arrays are not supported; save with np.ascontiguousarray");
    }
    let shape: Vec<i64> = npy.shape().iter().map(|&d| d as i64).collect();
    let n = TensorData::numel(&shape) * dtype.size();
    let data_start = bytes
        .len()
        .checked_sub(n)
        .context("file is shorter than its header says")?;
    Ok(TensorData {
        dtype,
        shape,
        bytes: bytes[data_start..].to_vec(),
    })
}

/// Splits the tensor `all` read from `path` into samples for an input of `dtype` and `shape`: it
/// is one sample of exactly that shape, or a stack of samples along a new leading axis.
pub(crate) fn split_samples(
    all: TensorData,
    path: &Path,
    dtype: DType,
    shape: &[i64],
) -> anyhow::Result<Vec<TensorData>> {
    if all.dtype != dtype {
        anyhow::bail!(
            "{} holds {} but the input is {}; convert it with arr.astype(np.{})",
            path.display(),
            all.dtype,
            dtype,
            dtype.name()
        );
    }
    if all.shape == shape {
        return Ok(vec![all]);
    }
    if all.shape.len() == shape.len() + 1 && all.shape[1..] == *shape && all.shape[0] > 0 {
        let per = TensorData::numel(shape) * dtype.size();
        return Ok(all
            .bytes
            .chunks_exact(per)
            .map(|c| TensorData {
                dtype,
                shape: shape.to_vec(),
                bytes: c.to_vec(),
            })
            .collect());
    }
    anyhow::bail!(
        "{} has shape {:?}; the input needs {:?} (one sample) or [N, {}] (N samples)",
        path.display(),
        all.shape,
        shape,
        shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(shape: &[i64], values: &[f32]) -> TensorData {
        TensorData {
            dtype: DType::F32,
            shape: shape.to_vec(),
            bytes: bytemuck::cast_slice(values).to_vec(),
        }
    }

    #[test]
    fn concat_follows_onnx_concat_on_the_first_and_inner_axes() {
        let a = f32s(&[1, 2], &[1.0, 2.0]);
        let b = f32s(&[2, 2], &[3.0, 4.0, 5.0, 6.0]);
        let rows = concat(&[a.view(), b.view()], 0).unwrap();
        assert_eq!(rows, f32s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        // Axis 1 of [2, 1] and [2, 2]: each row takes its share of both.
        let c = f32s(&[2, 1], &[1.0, 2.0]);
        let d = f32s(&[2, 2], &[3.0, 4.0, 5.0, 6.0]);
        let cols = concat(&[c.view(), d.view()], 1).unwrap();
        assert_eq!(cols, f32s(&[2, 3], &[1.0, 3.0, 4.0, 2.0, 5.0, 6.0]));
        // Strings too, element by element.
        let s = |shape: &[i64], v: &[&str]| TensorData {
            dtype: DType::Str,
            shape: shape.to_vec(),
            bytes: encode_strings(v),
        };
        let joined = concat(
            &[
                s(&[2, 1], &["a", "b"]).view(),
                s(&[2, 1], &["cc", "d"]).view(),
            ],
            1,
        )
        .unwrap();
        assert_eq!(joined, s(&[2, 2], &["a", "cc", "b", "d"]));
        // Mismatches are errors, not garbage.
        assert!(
            concat(&[a.view(), d.view()], 1)
                .unwrap_err()
                .contains("cannot concatenate")
        );
        assert!(concat(&[a.view()], 2).unwrap_err().contains("rank 2"));
        assert!(concat(&[], 0).is_err());
    }

    #[test]
    fn generators_are_deterministic_per_seed_and_index() {
        let g = Generator::Normal {
            mean: 0.0,
            std: 1.0,
        };
        let a = generate(&g, DType::F32, &[2, 3], 7, 3).unwrap();
        let b = generate(&g, DType::F32, &[2, 3], 7, 3).unwrap();
        assert_eq!(a, b);
        assert_ne!(a[0].bytes, a[1].bytes, "samples must differ");
        let c = generate(&g, DType::F32, &[2, 3], 8, 1).unwrap();
        assert_ne!(a[0].bytes, c[0].bytes, "seeds must differ");
        assert_eq!(a[0].bytes.len(), 6 * 4);
    }

    #[test]
    fn int_range_is_half_open_and_typed() {
        let g = Generator::Int { low: 3, high: 5 };
        let s = generate(&g, DType::I64, &[1000], 1, 1).unwrap();
        let v = decode_values(DType::I64, &s[0].bytes);
        assert!(v.iter().all(|&x| x == 3.0 || x == 4.0));
        assert!(v.contains(&3.0) && v.contains(&4.0));
    }

    #[test]
    fn scalar_bool_and_half_inputs() {
        let s = generate(&Generator::Const { value: 2.5 }, DType::F16, &[], 0, 1).unwrap();
        assert_eq!(s[0].bytes.len(), 2);
        assert_eq!(decode_values(DType::F16, &s[0].bytes), vec![2.5]);
        let b = generate(
            &Generator::Uniform {
                low: 0.0,
                high: 1.0,
            },
            DType::Bool,
            &[64],
            0,
            1,
        )
        .unwrap();
        assert!(b[0].bytes.iter().all(|&x| x <= 1));
        assert!(b[0].bytes.contains(&0) && b[0].bytes.contains(&1));
    }

    #[test]
    fn reads_npy_of_every_reference_dtype() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/reference");
        let scalar = read_npy(&dir.join("mixed_inputs/input_scale.npy")).unwrap();
        assert_eq!(
            (scalar.dtype, scalar.shape.as_slice(), scalar.bytes.len()),
            (DType::F32, &[][..], 4)
        );
        let half = read_npy(&dir.join("mixed_inputs/input_x.npy")).unwrap();
        assert_eq!(
            (half.dtype, half.shape.as_slice()),
            (DType::F16, &[2, 4][..])
        );
        let flag = read_npy(&dir.join("mixed_inputs/input_flag.npy")).unwrap();
        assert_eq!(flag.dtype, DType::Bool);
        assert!(flag.bytes.iter().all(|&b| b <= 1));
        let ids = read_npy(&dir.join("encoder_small/input_input_ids.npy")).unwrap();
        assert_eq!(
            (ids.dtype, ids.shape.as_slice()),
            (DType::I64, &[2, 16][..])
        );
        assert!(
            decode_values(DType::I64, &ids.bytes)
                .iter()
                .all(|&v| (0.0..1000.0).contains(&v))
        );
        ids.check().unwrap();
    }

    #[test]
    fn npy_samples_one_or_stacked() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/reference/linear/input_x.npy");
        let g = |dtype, shape: &[i64]| split_samples(read_npy(&path).unwrap(), &path, dtype, shape);
        // The file is [2, 10]: one sample of [2, 10], or two stacked samples of [10].
        assert_eq!(g(DType::F32, &[2, 10]).unwrap().len(), 1);
        let two = g(DType::F32, &[10]).unwrap();
        assert_eq!(two.len(), 2);
        assert_ne!(two[0].bytes, two[1].bytes);
        let err = g(DType::F32, &[5]).unwrap_err().to_string();
        assert!(err.contains("has shape [2, 10]"), "{err}");
        let err = g(DType::I64, &[2, 10]).unwrap_err().to_string();
        assert!(
            err.contains("holds float32 but the input is int64"),
            "{err}"
        );
    }

    #[test]
    fn numpy_type_strings() {
        assert_eq!(DType::from_numpy("<f4"), Some(DType::F32));
        assert_eq!(DType::from_numpy("|b1"), Some(DType::Bool));
        assert_eq!(DType::from_numpy("<f2"), Some(DType::F16));
        assert_eq!(DType::from_numpy(">f4"), None);
        assert_eq!(DType::from_numpy("|S3"), None);
        for d in DType::ALL {
            if let Some(descr) = d.numpy_descr() {
                assert_eq!(DType::from_numpy(descr), Some(d));
            }
        }
    }

    #[test]
    fn float8_values_follow_the_onnx_spec() {
        let v = |d, b| decode_values(d, &[b])[0];
        // E4M3FN: bias 7, largest 448 (0x7e), 0x7f and 0xff are NaN, no infinity.
        assert_eq!(v(DType::F8E4M3FN, 0x38), 1.0);
        assert_eq!(v(DType::F8E4M3FN, 0x7e), 448.0);
        assert_eq!(v(DType::F8E4M3FN, 0x01), 2f64.powi(-9));
        assert!(v(DType::F8E4M3FN, 0x7f).is_nan() && v(DType::F8E4M3FN, 0xff).is_nan());
        assert_eq!(v(DType::F8E4M3FN, 0xb8), -1.0);
        // E4M3FNUZ: bias 8, 0x80 is the one NaN, largest 240.
        assert_eq!(v(DType::F8E4M3FNUZ, 0x40), 1.0);
        assert_eq!(v(DType::F8E4M3FNUZ, 0x7f), 240.0);
        assert!(v(DType::F8E4M3FNUZ, 0x80).is_nan());
        // E5M2: bias 15, IEEE-like: 0x7c is infinity, 0x7b the largest (57344).
        assert_eq!(v(DType::F8E5M2, 0x3c), 1.0);
        assert_eq!(v(DType::F8E5M2, 0x7b), 57344.0);
        assert_eq!(v(DType::F8E5M2, 0x7c), f64::INFINITY);
        assert_eq!(v(DType::F8E5M2, 0xfc), f64::NEG_INFINITY);
        assert!(v(DType::F8E5M2, 0x7d).is_nan());
        // E5M2FNUZ: bias 16, 0x80 NaN, 0x7f the largest (57344).
        assert_eq!(v(DType::F8E5M2FNUZ, 0x40), 1.0);
        assert_eq!(v(DType::F8E5M2FNUZ, 0x7f), 57344.0);
        assert!(v(DType::F8E5M2FNUZ, 0x80).is_nan());
    }

    #[test]
    fn float8_encoding_rounds_to_nearest_saturates_and_round_trips() {
        for d in [
            DType::F8E4M3FN,
            DType::F8E4M3FNUZ,
            DType::F8E5M2,
            DType::F8E5M2FNUZ,
        ] {
            // Every finite code decodes to a value that encodes back to it (but -0 in FNUZ, which
            // has no negative zero and so is the NaN code).
            for b in 0..=255u8 {
                let x = decode_values(d, &[b])[0];
                if x.is_finite() && !(x == 0.0 && b == 0x80) {
                    assert_eq!(encode_values(d, &[x]), vec![b], "{d} {b:#04x} = {x}");
                }
            }
            let max = Float8::of(d).table().1.last().unwrap().0;
            assert_eq!(decode_values(d, &encode_values(d, &[1e9]))[0], max, "{d}");
            assert_eq!(decode_values(d, &encode_values(d, &[-1e9]))[0], -max, "{d}");
            assert!(decode_values(d, &encode_values(d, &[f64::NAN]))[0].is_nan());
        }
        // 1.06 lies between 1.0 and 1.125 in E4M3FN, nearer 1.0; 1.1 nearer 1.125.
        assert_eq!(
            decode_values(DType::F8E4M3FN, &encode_values(DType::F8E4M3FN, &[1.06])),
            [1.0]
        );
        assert_eq!(
            decode_values(DType::F8E4M3FN, &encode_values(DType::F8E4M3FN, &[1.1])),
            [1.125]
        );
    }

    #[test]
    fn bfloat16_generates_and_decodes() {
        let s = generate(&Generator::Const { value: 1.5 }, DType::BF16, &[3], 0, 1).unwrap();
        assert_eq!(s[0].bytes.len(), 6);
        assert_eq!(decode_values(DType::BF16, &s[0].bytes), vec![1.5; 3]);
        assert_eq!(DType::from_onnx(16), Some(DType::BF16));
        assert_eq!(DType::BF16.byte_len(&[2, 3]), Some(12));
    }

    #[test]
    fn strings_are_length_prefixed_and_checked_against_the_shape() {
        let bytes = encode_strings(&["", "héllo", "a b"]);
        assert_eq!(bytes.len(), 3 * 4 + 6 + 3);
        let back = decode_strings(&bytes).unwrap();
        assert_eq!(back, vec![&b""[..], "héllo".as_bytes(), b"a b"]);
        let t = TensorData {
            dtype: DType::Str,
            shape: vec![3],
            bytes: bytes.clone(),
        };
        assert!(t.check().is_ok());
        let wrong_shape = TensorData {
            shape: vec![2],
            ..t.clone()
        };
        assert!(
            wrong_shape
                .check()
                .unwrap_err()
                .contains("needs 2 strings, got 3")
        );
        let cut = TensorData {
            bytes: bytes[..bytes.len() - 1].to_vec(),
            ..t
        };
        assert!(cut.check().unwrap_err().contains("runs past"));
        assert_eq!(DType::Str.byte_len(&[3]), None);
        assert_eq!(DType::from_onnx(8), Some(DType::Str));
    }

    #[test]
    fn string_inputs_draw_from_their_list_and_only_from_it() {
        let g = Generator::Strings {
            values: vec!["cat".into(), "dog".into()],
        };
        let a = generate(&g, DType::Str, &[2, 50], 3, 2).unwrap();
        assert_eq!(a, generate(&g, DType::Str, &[2, 50], 3, 2).unwrap());
        let words = decode_strings(&a[0].bytes).unwrap();
        assert_eq!(words.len(), 100);
        assert!(words.iter().all(|w| *w == b"cat" || *w == b"dog"));
        assert!(words.contains(&&b"cat"[..]) && words.contains(&&b"dog"[..]));
        let err = generate(&Generator::Const { value: 1.0 }, DType::Str, &[1], 0, 1).unwrap_err();
        assert!(err.to_string().contains("`strings` generator"), "{err}");
        let err = generate(&g, DType::F32, &[1], 0, 1).unwrap_err();
        assert!(err.to_string().contains("from a list"), "{err}");
    }
}
