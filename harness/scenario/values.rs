//! The readers of one value that every table shares: a duration, a count with a lower bound, a
//! tolerance. Each returns the value (or the default) and, for a bad one, pushes an error naming
//! the key, with an example written with the key's own name.
//!
//! They live apart from the tables so that a table's file (the workload, the load, a model's
//! synthetic service time, the parity tolerances) needs nothing of another table's file.

use std::time::Duration;

use super::error::Errors;
use super::source::{KeyPath, Seg};

/// Parses a duration such as `5s`, `500ms` or `1m 30s`.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|err| err.to_string())
}

/// A duration key: `Some` when valid; pushes an error otherwise.
pub(super) fn duration_key(
    value: &str,
    key: &KeyPath,
    allow_zero: bool,
    e: &mut Errors,
) -> Option<Duration> {
    match parse_duration(value) {
        Ok(d) if allow_zero || !d.is_zero() => Some(d),
        Ok(_) => {
            e.push(
                key,
                "must be longer than zero",
                format!("e.g. `{} = \"5s\"`", last_key(key)),
            );
            None
        }
        Err(err) => {
            e.push(
                key,
                format!("`{value}` is not a duration ({err})"),
                format!("write it like `{} = \"5s\"` or \"500ms\"", last_key(key)),
            );
            None
        }
    }
}

/// An integer key with a lower bound.
pub(super) fn count_key(
    value: Option<i64>,
    key: &KeyPath,
    least: i64,
    default: u64,
    e: &mut Errors,
) -> u64 {
    match value {
        None => default,
        Some(n) if n >= least => n as u64,
        Some(n) => {
            e.push(
                key,
                format!("must be at least {least}, got {n}"),
                format!("e.g. `{} = {default}`", last_key(key)),
            );
            default
        }
    }
}

/// A tolerance (`atol`, `rtol`): a finite number from 0, `default` when absent.
pub(super) fn check_tolerance(
    value: Option<f64>,
    default: f64,
    key: &KeyPath,
    e: &mut Errors,
) -> f64 {
    match value {
        None => default,
        Some(v) if v >= 0.0 && v.is_finite() => v,
        Some(v) => {
            e.push(
                key,
                format!("a tolerance must be a finite number >= 0, got {v}"),
                "e.g. `atol = 1e-4`, `rtol = 1e-3`",
            );
            default
        }
    }
}

/// The last name of a key path (`duration` of `workload.duration`), for examples in fixes.
pub(super) fn last_key(key: &KeyPath) -> String {
    match key.0.last() {
        Some(Seg::Key(k)) => k.clone(),
        _ => key.to_string(),
    }
}
