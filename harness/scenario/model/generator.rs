//! Part of stage 4 of a model: each input's generator, checked against the input's element type.
//! An input without one gets the default for its type: uniform in [0, 1) for floats and bools,
//! `int` in [0, 2) for integers; a string input needs its values listed.

use std::path::Path;

use crate::model::tensor::{DType, Generator};
use crate::scenario::error::Errors;
use crate::scenario::raw::{ConstValue, RawGenerator};
use crate::scenario::source::KeyPath;

const STRINGS: &str = "e.g. `{ kind = \"strings\", values = [\"hello\", \"world\"] }`";

/// The generator of an input of type `dtype`; `None` after an error at `key`.
pub(super) fn resolve_generator(
    raw: Option<RawGenerator>,
    dtype: DType,
    dir: &Path,
    key: &KeyPath,
    e: &mut Errors,
) -> Option<Generator> {
    if !fits_strings(raw.as_ref(), dtype, key, e) {
        return None;
    }
    let Some(raw) = raw else {
        return Some(if dtype.is_float() || dtype == DType::Bool {
            Generator::Uniform {
                low: 0.0,
                high: 1.0,
            }
        } else {
            Generator::Int { low: 0, high: 2 }
        });
    };
    match raw {
        RawGenerator::Uniform { low, high } => uniform(low, high, key, e),
        RawGenerator::Normal { mean, std } => normal(mean, std, key, e),
        RawGenerator::Int { low, high } => int(low, high, dtype, key, e),
        RawGenerator::Const { value } => constant(value, dtype, key, e),
        RawGenerator::File { path } => {
            let p = dir.join(&path);
            if !p.is_file() {
                e.push(
                    key,
                    format!("input file {} does not exist", p.display()),
                    "paths are relative to the scenario file's folder",
                );
                return None;
            }
            Some(Generator::File { path: p })
        }
        RawGenerator::Strings { values } => Some(Generator::Strings { values }),
    }
}

/// Strings go with string inputs only, and a string input takes its values from a list (or a
/// file); an error at `key` otherwise.
fn fits_strings(raw: Option<&RawGenerator>, dtype: DType, key: &KeyPath, e: &mut Errors) -> bool {
    match raw {
        Some(RawGenerator::File { .. }) => true,
        Some(RawGenerator::Strings { values }) if dtype != DType::Str || values.is_empty() => {
            e.push(
                key,
                if values.is_empty() {
                    "`strings` needs one or more values".to_string()
                } else {
                    format!("`strings` makes string inputs; this input is {dtype}")
                },
                if values.is_empty() {
                    STRINGS.to_string()
                } else {
                    "use uniform, normal, int or const for numbers".to_string()
                },
            );
            false
        }
        Some(RawGenerator::Strings { .. }) => true,
        _ if dtype == DType::Str => {
            e.push(
                key,
                "a string input takes its values from a list",
                format!("{STRINGS}, or a tensor file"),
            );
            false
        }
        _ => true,
    }
}

fn uniform(
    low: Option<f64>,
    high: Option<f64>,
    key: &KeyPath,
    e: &mut Errors,
) -> Option<Generator> {
    let (low, high) = (low.unwrap_or(0.0), high.unwrap_or(1.0));
    if low >= high || !(high - low).is_finite() {
        e.push(
            key,
            format!("uniform needs low < high and a finite high - low, got low = {low:?}, high = {high:?}"),
            "e.g. `{ kind = \"uniform\", low = 0.0, high = 1.0 }`",
        );
        return None;
    }
    Some(Generator::Uniform { low, high })
}

fn normal(mean: Option<f64>, std: Option<f64>, key: &KeyPath, e: &mut Errors) -> Option<Generator> {
    let (mean, std) = (mean.unwrap_or(0.0), std.unwrap_or(1.0));
    if std <= 0.0 || !std.is_finite() || !mean.is_finite() {
        e.push(
            key,
            format!("normal needs a finite mean and std > 0, got mean = {mean}, std = {std}"),
            "e.g. `{ kind = \"normal\", mean = 0.0, std = 1.0 }`",
        );
        return None;
    }
    Some(Generator::Normal { mean, std })
}

/// Integers in `[low, high)`, which the input's type must hold.
fn int(
    low: Option<i64>,
    high: Option<i64>,
    dtype: DType,
    key: &KeyPath,
    e: &mut Errors,
) -> Option<Generator> {
    let (low, high) = (low.unwrap_or(0), high.unwrap_or(2));
    if low >= high {
        e.push(
            key,
            format!("int needs low < high (high is exclusive), got low = {low}, high = {high}"),
            "e.g. `{ kind = \"int\", low = 0, high = 1000 }` for token ids below 1000",
        );
        return None;
    }
    if dtype == DType::Bool || (!dtype.is_float() && !fits(dtype, low, high - 1)) {
        e.push(
            key,
            format!("int range [{low}, {high}) does not fit the input's type {dtype}"),
            format!("choose a range that {dtype} can hold"),
        );
        return None;
    }
    Some(Generator::Int { low, high })
}

/// One value everywhere; a bool input takes `true` or `false`.
fn constant(value: ConstValue, dtype: DType, key: &KeyPath, e: &mut Errors) -> Option<Generator> {
    if dtype == DType::Bool && !matches!(value, ConstValue::Bool(_)) {
        e.push(
            key,
            format!(
                "input is bool, so `value` must be true or false, got {}",
                value.as_f64()
            ),
            "write `value = true`",
        );
        return None;
    }
    Some(Generator::Const {
        value: value.as_f64(),
    })
}

fn fits(dtype: DType, low: i64, high: i64) -> bool {
    let (min, max): (i128, i128) = match dtype {
        DType::I8 => (i8::MIN.into(), i8::MAX.into()),
        DType::I16 => (i16::MIN.into(), i16::MAX.into()),
        DType::I32 => (i32::MIN.into(), i32::MAX.into()),
        DType::U8 => (0, u8::MAX.into()),
        DType::U16 => (0, u16::MAX.into()),
        DType::U32 => (0, u32::MAX.into()),
        DType::U64 => (0, u64::MAX.into()),
        _ => (i64::MIN.into(), i64::MAX.into()),
    };
    (min..=max).contains(&i128::from(low)) && (min..=max).contains(&i128::from(high))
}
