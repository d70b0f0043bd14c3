//! `bench run`'s and `bench init`'s flag values: parsed (clap calls the `parse_*` functions), and
//! aimed at models. A value is aimed at an input or dim by name in every model, or at one model as
//! `MODEL:NAME`; `--test-data` at the only model or at `MODEL=DIR`.

use std::path::PathBuf;

/// A flag value aimed at an input or dim by name, in every model that has it, or in one model
/// when written `MODEL:NAME` (MODEL being a model name `bench run` gave, its file stem). A name
/// that itself holds a colon (`input_1:0`, as tf2onnx writes) stays whole unless the part before
/// the first colon is a model name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scoped<T> {
    /// `NAME` or `MODEL:NAME`, as written.
    pub(crate) target: String,
    pub(crate) value: T,
    /// The whole flag value, for messages.
    pub(crate) text: String,
}

/// What `--input NAME=VALUE|FILE|KIND:A:B` sets: the generators `const`, `file`, `int`, `uniform`
/// and `normal` of the scenario format.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InputValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    /// `int:LOW:HIGH`: integers uniform in `[LOW, HIGH)`, e.g. token ids below a vocabulary size.
    IntRange(i64, i64),
    /// `uniform:LOW:HIGH`: uniform in `[LOW, HIGH)`.
    Uniform(f64, f64),
    /// `normal:MEAN:STD`.
    Normal(f64, f64),
    /// A tensor file (`.npy`, `.npz`, ONNX `TensorProto` `.pb`) of one sample, or of samples
    /// stacked on a leading axis.
    File(PathBuf),
}

/// The file extensions `--input` takes as a file, as `testdata::read_tensor_file` reads them.
const TENSOR_FILES: [&str; 3] = [".npy", ".npz", ".pb"];

/// `--dims NAME=SIZE`: a named dim's size, at least 1. The name is everything before the last
/// `=`, so dotted names (`p2o.DynamicDimension.0=2`) need no quoting.
pub(crate) fn parse_dim(s: &str) -> Result<Scoped<i64>, String> {
    let (name, size) = split_last(s, "NAME=SIZE, e.g. batch=1")?;
    if name.contains('=') {
        // `--dims M1=120,M2=160`: one flag per dim, as `--shape` and `--input` take them.
        let each: Vec<String> = s
            .split([',', ' '])
            .filter(|p| !p.trim().is_empty())
            .map(|p| format!("--dims {}", p.trim()))
            .collect();
        return Err(format!(
            "one dim per `--dims`: repeat the flag, e.g. `{}`",
            each.join(" ")
        ));
    }
    let size: i64 = size
        .trim()
        .parse()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| {
            format!("the size `{size}` must be a whole number of 1 or more, e.g. {name}=1")
        })?;
    Ok(Scoped {
        target: name.to_string(),
        value: size,
        text: s.to_string(),
    })
}

/// `--shape INPUT=1x3x224x224`: the input's full shape by position (`x` or `,` between sizes, each
/// 0 or more).
pub(crate) fn parse_shape(s: &str) -> Result<Scoped<Vec<i64>>, String> {
    let (name, shape) = split_last(s, "INPUT=SHAPE, e.g. x=1x3x224x224")?;
    let dims: Option<Vec<i64>> = shape
        .split(['x', 'X', ','])
        .map(|d| d.trim().parse::<i64>().ok().filter(|&n| n >= 0))
        .collect();
    match dims {
        Some(dims) if !shape.trim().is_empty() => Ok(Scoped {
            target: name.to_string(),
            value: dims,
            text: s.to_string(),
        }),
        _ => Err(format!(
            "the shape `{shape}` must be sizes of 0 or more joined by `x`, e.g. {name}=1x3x224x224"
        )),
    }
}

/// `--input NAME=VALUE|FILE`: every element equal to VALUE (a number, `true` or `false`), or the
/// samples of a tensor file (`.npy`, `.npz`, `.pb`). The name is everything before the first `=`,
/// so a file name may hold one.
pub(crate) fn parse_input(s: &str) -> Result<Scoped<InputValue>, String> {
    let Some((name, v)) = s.split_once('=').filter(|(n, _)| !n.trim().is_empty()) else {
        return Err(
            "write INPUT=VALUE or INPUT=FILE, e.g. mask=true, x=sample.npy or x=input_0.pb".into(),
        );
    };
    if let Some(value) = parse_generator(name, v.trim())? {
        return Ok(Scoped {
            target: name.to_string(),
            value,
            text: s.to_string(),
        });
    }
    let value = match v.trim() {
        "true" => InputValue::Bool(true),
        "false" => InputValue::Bool(false),
        t if t.parse::<i64>().is_ok() => InputValue::Int(t.parse().unwrap_or_default()),
        t if t.parse::<f64>().is_ok_and(f64::is_finite) => {
            InputValue::Float(t.parse().unwrap_or_default())
        }
        t if TENSOR_FILES
            .iter()
            .any(|e| t.to_ascii_lowercase().ends_with(e)) =>
        {
            InputValue::File(PathBuf::from(t))
        }
        t => {
            return Err(format!(
                "`{t}` is neither a number, true/false, nor a tensor file (.npy, .npz, .pb): \
                 write {name}=0.5, {name}=true, {name}=FILE.npy or a generator: \
                 {name}=int:0:30522, {name}=uniform:0:1, {name}=normal:0:1"
            ));
        }
    };
    Ok(Scoped {
        target: name.to_string(),
        value,
        text: s.to_string(),
    })
}

/// `KIND:A:B`, the scenario's generators on the command line: `int:LOW:HIGH` (LOW < HIGH),
/// `uniform:LOW:HIGH` (LOW < HIGH) and `normal:MEAN:STD` (STD >= 0). `None` for a value of another
/// form; an error for one of these kinds with bad numbers.
fn parse_generator(name: &str, v: &str) -> Result<Option<InputValue>, String> {
    let Some((kind, rest)) = v.split_once(':') else {
        return Ok(None);
    };
    let kind = kind.trim();
    if !["int", "uniform", "normal"].contains(&kind) {
        return Ok(None);
    }
    let form = match kind {
        "int" => "int:LOW:HIGH, integers in [LOW, HIGH), e.g. int:0:30522",
        "uniform" => "uniform:LOW:HIGH, e.g. uniform:-1:1",
        _ => "normal:MEAN:STD, e.g. normal:0:1",
    };
    let bad = || format!("`{name}={v}`: write {name}={form}");
    let (a, b) = rest.split_once(':').ok_or_else(bad)?;
    let value = if kind == "int" {
        let (low, high): (i64, i64) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if low >= high {
            return Err(format!("`{name}={v}`: LOW must be below HIGH ({form})"));
        }
        InputValue::IntRange(low, high)
    } else {
        let (a, b): (f64, f64) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if !a.is_finite() || !b.is_finite() {
            return Err(bad());
        }
        match kind {
            "uniform" if a < b => InputValue::Uniform(a, b),
            "uniform" => return Err(format!("`{name}={v}`: LOW must be below HIGH ({form})")),
            _ if b >= 0.0 => InputValue::Normal(a, b),
            _ => return Err(format!("`{name}={v}`: STD must be 0 or more ({form})")),
        }
    };
    Ok(Some(value))
}

/// `--test-data [MODEL=]DIR`: a test-data folder (`test_data_set_N/input_K.pb`, `output_K.pb`),
/// for the only model, or for model MODEL. The target is empty when no model is named.
pub(crate) fn parse_test_data(s: &str) -> Result<Scoped<PathBuf>, String> {
    if s.trim().is_empty() {
        return Err("write DIR or MODEL=DIR, e.g. --test-data node/test_relu".into());
    }
    let (target, dir) = match s.split_once('=') {
        Some((m, d)) if !m.is_empty() && !m.contains('/') && !d.is_empty() => (m, d),
        _ => ("", s),
    };
    Ok(Scoped {
        target: target.to_string(),
        value: PathBuf::from(dir),
        text: s.to_string(),
    })
}

/// Each model's test-data folder from `--test-data` flags (absolute), or the problems: a flag
/// that names no model, a folder that is not one, one model given two.
pub(super) fn test_data_per_model(
    flags: &[Scoped<PathBuf>],
    names: &[String],
) -> Result<Vec<Option<PathBuf>>, Vec<String>> {
    let mut out = vec![None; names.len()];
    let mut problems = Vec::new();
    for f in flags {
        let m = if f.target.is_empty() {
            if names.len() != 1 {
                problems.push(format!(
                    "--test-data {}: there are {} models; aim it at one: --test-data MODEL=DIR (models: {})",
                    f.text,
                    names.len(),
                    names.join(", ")
                ));
                continue;
            }
            0
        } else if let Some(m) = names.iter().position(|n| *n == f.target) {
            m
        } else {
            problems.push(format!(
                "--test-data {}: no model is named `{}`; the models are {}",
                f.text,
                f.target,
                names.join(", ")
            ));
            continue;
        };
        if !f.value.is_dir() {
            problems.push(format!(
                "--test-data {}: {} is not a folder; give the folder that holds test_data_set_N folders",
                f.text,
                f.value.display()
            ));
            continue;
        }
        if out[m].is_some() {
            problems.push(format!(
                "--test-data {}: model `{}` has a test-data folder already",
                f.text, names[m]
            ));
            continue;
        }
        out[m] = Some(f.value.canonicalize().unwrap_or_else(|_| f.value.clone()));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn split_last<'a>(s: &'a str, form: &str) -> Result<(&'a str, &'a str), String> {
    s.rsplit_once('=')
        .filter(|(n, _)| !n.trim().is_empty())
        .ok_or_else(|| format!("write {form}"))
}

/// Which models a scoped flag aims at: one (`MODEL:NAME`, MODEL a model name) or all, and NAME.
pub(super) fn aim<'a>(target: &'a str, names: &[String]) -> (Option<usize>, &'a str) {
    if let Some((m, rest)) = target.split_once(':')
        && let Some(i) = names.iter().position(|n| n == m)
    {
        return (Some(i), rest);
    }
    (None, target)
}
