//! Inputs and expected outputs from files: tensor files of any format bench reads (`TensorProto`
//! `.pb`, `.npy`, `.npz`), test-data folders in the layout of the ONNX backend tests and of
//! `onnxruntime_perf_test` (`test_data_set_N/input_K.pb`, `output_K.pb`), and the comparison of a
//! model's outputs with the expected ones.
//!
//! It sits above [`crate::model::onnx`] (the `TensorProto` decoder) and [`crate::model::tensor`] (`.npy`), which
//! do not know each other. The scenario reads the files here when it resolves a model, a worker of
//! the `index` transfer reads the same files again at start, and the load generator checks each
//! worker's first run of each sample with [`compare`], so a benchmark never reports fast wrong
//! answers.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::model::onnx::{self, NamedTensor};
use crate::model::tensor::{self, DType, TensorData};

/// Reads every tensor of a file, by extension: `.pb` (one `TensorProto`, with its name), `.npy`
/// (one array, unnamed) or `.npz` (its arrays, named as saved).
pub(crate) fn read_tensor_file(path: &Path) -> anyhow::Result<Vec<NamedTensor>> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pb" => Ok(vec![onnx::read_tensor_proto(path)?]),
        "npy" => Ok(vec![NamedTensor {
            name: String::new(),
            tensor: tensor::read_npy(path)?,
        }]),
        "npz" => read_npz(path),
        _ => bail!(
            "{}: bench reads tensors from .pb (ONNX TensorProto), .npy and .npz files",
            path.display()
        ),
    }
}

/// The samples of input `input` (of `dtype` and `shape`) in one file: the file's tensor (in an
/// `.npz`, the array named as the input, or its only array) holds one sample of exactly that
/// shape, or a stack of samples along a new leading axis.
pub(crate) fn file_samples(
    path: &Path,
    input: &str,
    dtype: DType,
    shape: &[i64],
) -> anyhow::Result<Vec<TensorData>> {
    let all = pick(read_tensor_file(path)?, path, input)?;
    tensor::split_samples(all, path, dtype, shape)
}

/// One sample per file, each of exactly `dtype` and `shape` (a test-data input over its sets).
pub(crate) fn files_samples(
    paths: &[PathBuf],
    input: &str,
    dtype: DType,
    shape: &[i64],
) -> anyhow::Result<Vec<TensorData>> {
    paths
        .iter()
        .map(|p| {
            let t = pick(read_tensor_file(p)?, p, input)?;
            if t.dtype != dtype || t.shape != shape {
                bail!(
                    "{} holds {} {:?}; input `{input}` takes {dtype} {shape:?}",
                    p.display(),
                    t.dtype,
                    t.shape
                );
            }
            Ok(t)
        })
        .collect()
}

/// The tensor of a file meant for `input`: the only one, or in an `.npz` the one named `input`.
fn pick(mut all: Vec<NamedTensor>, path: &Path, input: &str) -> anyhow::Result<TensorData> {
    if all.len() == 1 {
        return Ok(all.remove(0).tensor);
    }
    let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
    match all.iter().position(|t| t.name == input) {
        Some(i) => Ok(all.swap_remove(i).tensor),
        None => bail!(
            "{} holds {} arrays ({}) and none is named `{input}`",
            path.display(),
            all.len(),
            names.join(", ")
        ),
    }
}

/// Reads an `.npz` (a zip of `.npy` files, stored or deflated, as `np.savez` and
/// `np.savez_compressed` write them). Only what numpy writes is read: no encryption, no
/// multi-disk archives.
pub(crate) fn read_npz(path: &Path) -> anyhow::Result<Vec<NamedTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let entries = zip_entries(&bytes).with_context(|| {
        format!(
            "{} is not a valid .npz file (a zip of .npy arrays)",
            path.display()
        )
    })?;
    let mut out = Vec::new();
    for (name, data) in entries {
        let Some(stem) = name.strip_suffix(".npy") else {
            continue;
        };
        let tensor = tensor::parse_npy(&data)
            .with_context(|| format!("{}: array `{stem}`", path.display()))?;
        out.push(NamedTensor {
            name: stem.to_string(),
            tensor,
        });
    }
    if out.is_empty() {
        bail!("{} holds no .npy arrays", path.display());
    }
    Ok(out)
}

/// The files of a zip archive: name and uncompressed bytes, from its central directory.
fn zip_entries(b: &[u8]) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let u16_at = |at: usize| -> anyhow::Result<usize> {
        let s = b.get(at..at + 2).context("truncated")?;
        Ok(u16::from_le_bytes([s[0], s[1]]) as usize)
    };
    let u32_at = |at: usize| -> anyhow::Result<u64> {
        let s = b.get(at..at + 4).context("truncated")?;
        Ok(u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])))
    };
    let u64_at = |at: usize| -> anyhow::Result<u64> {
        let s = b.get(at..at + 8).context("truncated")?;
        Ok(u64::from_le_bytes(s.try_into().expect("8 bytes")))
    };
    // The end-of-central-directory record is the last thing in the file, before a comment.
    let eocd = (0..b.len().saturating_sub(21))
        .rev()
        .take(65536 + 22)
        .find(|&i| b[i..].starts_with(&[0x50, 0x4b, 0x05, 0x06]))
        .context("no end-of-central-directory record")?;
    let count = u16_at(eocd + 10)?;
    let mut at = u32_at(eocd + 16)? as usize;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        if u32_at(at)? != 0x0201_4b50 {
            bail!("bad central directory entry");
        }
        let method = u16_at(at + 10)?;
        let mut csize = u32_at(at + 20)?;
        let mut full = u32_at(at + 24)?;
        let (n, e, c) = (u16_at(at + 28)?, u16_at(at + 30)?, u16_at(at + 32)?);
        let mut local = u32_at(at + 42)?;
        let name =
            String::from_utf8_lossy(b.get(at + 46..at + 46 + n).context("truncated")?).into_owned();
        // Zip64: sizes and offset that overflow 32 bits are in extra field 1, in this order.
        let mut x = at + 46 + n;
        while x + 4 <= at + 46 + n + e {
            let (id, len) = (u16_at(x)?, u16_at(x + 2)?);
            if id == 1 {
                let mut f = x + 4;
                for v in [&mut full, &mut csize, &mut local] {
                    if *v == 0xffff_ffff {
                        *v = u64_at(f)?;
                        f += 8;
                    }
                }
            }
            x += 4 + len;
        }
        at += 46 + n + e + c;
        let local = local as usize;
        if u32_at(local)? != 0x0403_4b50 {
            bail!("bad local header of `{name}`");
        }
        let start = local + 30 + u16_at(local + 26)? + u16_at(local + 28)?;
        let raw = b
            .get(start..start + csize as usize)
            .with_context(|| format!("`{name}` is truncated"))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => {
                use std::io::Read;
                let mut v = Vec::with_capacity(full as usize);
                flate2::read::DeflateDecoder::new(raw)
                    .read_to_end(&mut v)
                    .with_context(|| format!("`{name}` does not inflate"))?;
                v
            }
            m => bail!(
                "`{name}` uses zip compression method {m}; save with np.savez or np.savez_compressed"
            ),
        };
        if data.len() as u64 != full {
            bail!("`{name}` is {} bytes, its header says {full}", data.len());
        }
        out.push((name, data));
    }
    Ok(out)
}

/// One test-data set: `input_K.pb` and `output_K.pb` files in K order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TestSet {
    pub(crate) dir: PathBuf,
    pub(crate) inputs: Vec<(PathBuf, NamedTensor)>,
    pub(crate) outputs: Vec<(PathBuf, NamedTensor)>,
}

/// Reads a test-data folder: the folder holding `test_data_set_*` folders (in number order), or
/// one such set folder itself (it holds `input_*.pb`).
pub(crate) fn read_test_data(dir: &Path) -> anyhow::Result<Vec<TestSet>> {
    let numbered = |dir: &Path, prefix: &str, suffix: &str| -> anyhow::Result<Vec<PathBuf>> {
        let mut found: Vec<(u64, PathBuf)> = Vec::new();
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if let Some(k) = name
                .as_deref()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|n| n.strip_suffix(suffix))
                .and_then(|k| k.parse().ok())
            {
                found.push((k, path));
            }
        }
        found.sort();
        Ok(found.into_iter().map(|(_, p)| p).collect())
    };
    let mut sets = numbered(dir, "test_data_set_", "")?;
    sets.retain(|p| p.is_dir());
    if sets.is_empty() {
        if numbered(dir, "input_", ".pb")?.is_empty() && numbered(dir, "output_", ".pb")?.is_empty()
        {
            bail!(
                "{} holds neither test_data_set_N folders nor input_K.pb files",
                dir.display()
            );
        }
        sets.push(dir.to_path_buf());
    }
    sets.into_iter()
        .map(|set| {
            let read = |files: Vec<PathBuf>| -> anyhow::Result<Vec<(PathBuf, NamedTensor)>> {
                files
                    .into_iter()
                    .map(|p| Ok((p.clone(), onnx::read_tensor_proto(&p)?)))
                    .collect()
            };
            // A model without inputs has sets of outputs only.
            let inputs = read(numbered(&set, "input_", ".pb")?)?;
            let outputs = read(numbered(&set, "output_", ".pb")?)?;
            if inputs.is_empty() && outputs.is_empty() {
                bail!("{} holds no input_K.pb or output_K.pb files", set.display());
            }
            Ok(TestSet {
                outputs,
                inputs,
                dir: set,
            })
        })
        .collect()
}

/// Why a model's outputs differ from the expected ones.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mismatch {
    /// The output's name.
    pub(crate) output: String,
    pub(crate) message: String,
}

/// Compares a run's `outputs` (in the model's output order, named `names`) with `expected`
/// (model output index, tensor). Floats match when `|got - want| <= atol + rtol * |want|` (NaN
/// matches NaN, an infinity the same infinity); integers and bools match exactly. On a mismatch,
/// names the output, how many elements differ and the worst one.
pub(crate) fn compare(
    outputs: &[TensorData],
    names: &[String],
    expected: &[(usize, TensorData)],
    rtol: f64,
    atol: f64,
) -> Result<(), Mismatch> {
    for (i, want) in expected {
        let name = names.get(*i).cloned().unwrap_or_else(|| format!("#{i}"));
        let fail = |message: String| {
            Err(Mismatch {
                output: name.clone(),
                message,
            })
        };
        let Some(got) = outputs.get(*i) else {
            return fail(format!(
                "the model returned {} outputs, none at position {i}",
                outputs.len()
            ));
        };
        if got.dtype != want.dtype || got.shape != want.shape {
            return fail(format!(
                "is {} {:?}, expected {} {:?}",
                got.dtype, got.shape, want.dtype, want.shape
            ));
        }
        if want.dtype == DType::Str {
            let (g, w) = (
                tensor::decode_strings(&got.bytes).map_err(|m| Mismatch {
                    output: name.clone(),
                    message: m,
                })?,
                tensor::decode_strings(&want.bytes).map_err(|m| Mismatch {
                    output: name.clone(),
                    message: m,
                })?,
            );
            let bad: Vec<usize> = (0..w.len().max(g.len()))
                .filter(|&k| g.get(k) != w.get(k))
                .collect();
            if let Some(&k) = bad.first() {
                let show = |v: Option<&&[u8]>| {
                    v.map_or("nothing".to_string(), |b| {
                        format!("{:?}", String::from_utf8_lossy(b))
                    })
                };
                return fail(format!(
                    "{} of {} strings differ; first: element {k} is {}, expected {} (strings compare exactly)",
                    bad.len(),
                    w.len(),
                    show(g.get(k)),
                    show(w.get(k))
                ));
            }
            continue;
        }
        let (g, w) = (
            tensor::decode_values(got.dtype, &got.bytes),
            tensor::decode_values(want.dtype, &want.bytes),
        );
        let float = want.dtype.is_float();
        let mut bad = 0usize;
        // The worst element: the largest ratio of its difference to its tolerance.
        let mut worst: Option<(usize, f64)> = None;
        for (k, (&a, &b)) in g.iter().zip(&w).enumerate() {
            let ok = if float {
                (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= atol + rtol * b.abs()
            } else {
                a == b
            };
            if !ok {
                bad += 1;
                let tol = if float { atol + rtol * b.abs() } else { 0.0 };
                let ratio = if tol > 0.0 && (a - b).is_finite() {
                    (a - b).abs() / tol
                } else {
                    f64::INFINITY
                };
                if worst.is_none_or(|(_, r)| ratio > r) {
                    worst = Some((k, ratio));
                }
            }
        }
        if let Some((k, _)) = worst {
            let tolerance = if float {
                format!("tolerance atol {atol:e} + rtol {rtol:e} × |expected|")
            } else {
                format!("{} compares exactly", want.dtype)
            };
            return fail(format!(
                "{bad} of {} elements differ; worst: element {k} is {}, expected {} ({tolerance})",
                w.len(),
                g[k],
                w[k]
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models")
    }

    #[test]
    fn npz_stored_and_deflated_hold_named_arrays() {
        for f in ["both.npz", "both_compressed.npz"] {
            let all = read_npz(&fixtures().join("tensors").join(f)).unwrap();
            let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, ["x", "y"], "{f}");
            assert_eq!(all[0].tensor.dtype, DType::F32);
            assert_eq!(all[0].tensor.shape, [2, 3]);
            assert_eq!(
                tensor::decode_values(DType::I64, &all[1].tensor.bytes),
                [0.0, 1.0, 2.0, 3.0]
            );
        }
        let npz = fixtures().join("tensors/both.npz");
        let y = file_samples(&npz, "y", DType::I64, &[4]).unwrap();
        assert_eq!(y.len(), 1);
        let err = file_samples(&npz, "z", DType::I64, &[4]).unwrap_err();
        assert!(err.to_string().contains("none is named `z`"), "{err:#}");
        // Stacked: x [2, 3] is two samples of [3].
        assert_eq!(file_samples(&npz, "x", DType::F32, &[3]).unwrap().len(), 2);
    }

    #[test]
    fn a_test_data_folder_or_one_set() {
        let root = fixtures().join("testdata/linear");
        let sets = read_test_data(&root).unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].inputs[0].1.name, "x");
        assert_eq!(sets[0].inputs[0].1.tensor.shape, [2, 10]);
        assert_eq!(sets[1].outputs.len(), 1);
        let one = read_test_data(&root.join("test_data_set_1")).unwrap();
        assert_eq!(one, sets[1..]);
        let err = read_test_data(&fixtures().join("tensors")).unwrap_err();
        assert!(
            err.to_string().contains("neither test_data_set_N"),
            "{err:#}"
        );
    }

    #[test]
    fn compare_uses_tolerances_for_floats_and_exact_integers() {
        let f = |v: &[f32]| TensorData {
            dtype: DType::F32,
            shape: vec![v.len() as i64],
            bytes: bytemuck::cast_slice(v).to_vec(),
        };
        let names = vec!["y".to_string()];
        let want = vec![(0, f(&[1.0, 100.0, f32::NAN]))];
        assert!(
            compare(
                &[f(&[1.000001, 100.05, f32::NAN])],
                &names,
                &want,
                1e-3,
                1e-5
            )
            .is_ok()
        );
        let m = compare(&[f(&[1.1, 100.0, f32::NAN])], &names, &want, 1e-3, 1e-5).unwrap_err();
        assert_eq!(m.output, "y");
        assert!(
            m.message.starts_with(
                "1 of 3 elements differ; worst: element 0 is 1.100000023841858, expected 1"
            ),
            "{}",
            m.message
        );
        let m = compare(&[f(&[1.0])], &names, &want, 1e-3, 1e-5).unwrap_err();
        assert!(m.message.contains("expected float32 [3]"), "{}", m.message);
        let i = |v: &[i64]| TensorData {
            dtype: DType::I64,
            shape: vec![v.len() as i64],
            bytes: bytemuck::cast_slice(v).to_vec(),
        };
        let m = compare(&[i(&[1, 3])], &names, &[(0, i(&[1, 2]))], 1.0, 1.0).unwrap_err();
        assert!(
            m.message.contains("int64 compares exactly"),
            "{}",
            m.message
        );
    }
}
