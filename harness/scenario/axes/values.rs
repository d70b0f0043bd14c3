//! The kinds of value an axis holds, and how a scenario's text becomes a list of them.
//!
//! Every axis list is read the same way: one value or a list, each listed once, each checked, the
//! default when the key is absent (and after an error, so the rest of the scenario still
//! resolves and every problem is reported in one pass). The kinds are few: integers ≥ 1, `true`
//! and `false`, and a name out of an enum's `ALL`. [`AxisValue`] says how a value is written back:
//! in a scenario (`bench run`'s `scenario.toml`, error messages) and in lists (`run.json`).
//! [`Knob`] says the rest for the types of ONNX Runtime's session knobs, whose typed homes are
//! declared from one list (`scenario/session.rs`): how `[sweep]` writes a value, how
//! `results.csv` holds one, and how one is read back from its text.

use std::fmt::{Debug, Display};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::FlagValue;
use crate::scenario::raw::OneOrMany;
use crate::scenario::{
    BatchPolicy, Channel, Errors, ExecutionMode, GraphOptimization, KeyPath, LoadPoint, Pin,
    Placement, Provider, Runtime, Transfer,
};

/// A value of an axis, as text.
pub trait AxisValue: Copy + PartialEq + Sync + 'static {
    /// As a list in `run.json` and `validate` shows it: `2`, `false`, `basic`, `mb8-d2ms`.
    fn text(self) -> String;
    /// As a scenario file writes it: `2`, `false`, `"basic"`.
    fn toml(self) -> String {
        self.text()
    }
}

impl AxisValue for usize {
    fn text(self) -> String {
        self.to_string()
    }
}

impl AxisValue for bool {
    fn text(self) -> String {
        self.to_string()
    }
}

impl AxisValue for Option<usize> {
    fn text(self) -> String {
        self.map_or_else(String::new, |v| v.to_string())
    }
}

impl AxisValue for Option<BatchPolicy> {
    fn text(self) -> String {
        self.map_or_else(String::new, |p| p.id())
    }
}

impl AxisValue for LoadPoint {
    fn text(self) -> String {
        match self {
            LoadPoint::Closed { concurrency } => concurrency.to_string(),
            LoadPoint::Open { rate } => rate.to_string(),
        }
    }
}

/// The type of a session knob (`scenario/session.rs`): `bool`, `usize` or a [`Named`] enum.
pub trait Knob: AxisValue {
    /// One value as `[sweep]` writes it: the `RawSweep` field holds one or a list of them.
    type Raw: Clone + Debug + Display + PartialEq + DeserializeOwned;
    /// One value as a `results.csv` column holds it (the `Row` field): files are read leniently,
    /// so an enum's column is its name as text.
    type Cell: Clone + Debug + Default + Display + PartialEq + Serialize + DeserializeOwned;
    /// The values of its `bench run` flag.
    const FLAG: FlagValue;
    /// Several values, the default among them, for the tests' large expansion.
    #[cfg(test)]
    const EXAMPLES: &'static [Self];
    fn cell(self) -> Self::Cell;
    /// The value of its [`text`](AxisValue::text), `None` for text no scenario could give.
    fn parse(text: &str) -> Option<Self>;
}

/// How a [`Knob`]'s values are read from the scenario (apart from [`Knob`], whose other parts the
/// typed homes outside `scenario` use).
pub(in crate::scenario) trait ReadKnob: Knob {
    /// The scenario's values, checked, each listed once; `default` when absent.
    fn resolve(
        raw: Option<&OneOrMany<Self::Raw>>,
        key: &KeyPath,
        default: Self,
        e: &mut Errors,
    ) -> Vec<Self>;
}

/// Integers from 1 up, the values of counts such as `workers`.
pub(crate) const POSITIVE: FlagValue = FlagValue::Ints {
    min: 1,
    max: u32::MAX as i64,
};

impl Knob for usize {
    type Raw = i64;
    type Cell = usize;
    const FLAG: FlagValue = POSITIVE;
    #[cfg(test)]
    const EXAMPLES: &'static [usize] = &[1, 2];
    fn cell(self) -> usize {
        self
    }
    fn parse(text: &str) -> Option<usize> {
        text.parse().ok().filter(|&n| n >= 1)
    }
}

impl ReadKnob for usize {
    fn resolve(
        raw: Option<&OneOrMany<i64>>,
        key: &KeyPath,
        d: usize,
        e: &mut Errors,
    ) -> Vec<usize> {
        positive_axis(raw, key, d, e)
    }
}

impl Knob for bool {
    type Raw = bool;
    type Cell = bool;
    const FLAG: FlagValue = FlagValue::Bools;
    #[cfg(test)]
    const EXAMPLES: &'static [bool] = &[true, false];
    fn cell(self) -> bool {
        self
    }
    fn parse(text: &str) -> Option<bool> {
        text.parse().ok()
    }
}

impl ReadKnob for bool {
    fn resolve(raw: Option<&OneOrMany<bool>>, key: &KeyPath, d: bool, e: &mut Errors) -> Vec<bool> {
        bool_axis(raw, key, d, e)
    }
}

/// An enum whose values are named in the scenario; `ALL` lists them, the default first.
pub(crate) trait Named: Copy + PartialEq + 'static {
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
    /// Every name, for messages and the `bench run` flag's possible values.
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.name()).collect()
    }
}

macro_rules! named {
    ($($t:ty),* $(,)?) => {$(
        impl Named for $t {
            const ALL: &'static [Self] = &<$t>::ALL;
            fn name(self) -> &'static str {
                <$t>::name(self)
            }
        }
        impl AxisValue for $t {
            fn text(self) -> String {
                self.name().to_string()
            }
            fn toml(self) -> String {
                format!("\"{}\"", self.name())
            }
        }
        impl Knob for $t {
            type Raw = String;
            type Cell = String;
            const FLAG: FlagValue = FlagValue::Names(<$t as Named>::names);
            #[cfg(test)]
            const EXAMPLES: &'static [Self] = &<$t>::ALL;
            fn cell(self) -> String {
                self.name().to_string()
            }
            fn parse(text: &str) -> Option<Self> {
                <$t>::ALL.into_iter().find(|v| v.name() == text)
            }
        }
        impl ReadKnob for $t {
            fn resolve(
                raw: Option<&OneOrMany<String>>,
                key: &KeyPath,
                default: Self,
                e: &mut Errors,
            ) -> Vec<Self> {
                named_axis(raw, key, default, e)
            }
        }
    )*};
}

named!(
    Transfer,
    Channel,
    Placement,
    Pin,
    Provider,
    Runtime,
    GraphOptimization,
    ExecutionMode,
);

/// The key's last part: `workers` for `sweep.workers`.
fn last(key: &KeyPath) -> String {
    let path = key.to_string();
    path.rsplit('.').next().unwrap_or(&path).to_string()
}

/// Integers ≥ 1: one or a list, each listed once; `default` when absent.
pub(in crate::scenario) fn positive_axis(
    raw: Option<&OneOrMany<i64>>,
    key: &KeyPath,
    default: usize,
    e: &mut Errors,
) -> Vec<usize> {
    distinct_axis(raw, key, default, &format!("[{default}]"), e, |v| {
        usize::try_from(v).ok().filter(|&v| v >= 1).ok_or((
            format!("values must be at least 1, got {v}"),
            "remove zero and negative values",
        ))
    })
}

/// An axis of `true` and `false`: one value or a list, each listed once.
pub(in crate::scenario) fn bool_axis(
    raw: Option<&OneOrMany<bool>>,
    key: &KeyPath,
    default: bool,
    e: &mut Errors,
) -> Vec<bool> {
    distinct_axis(raw, key, default, "[true, false]", e, Ok)
}

/// One value or a list, each listed once and each taken by `check` (or refused with its message
/// and fix); `default` when absent, empty or all refused. `example` is a list for the fix.
fn distinct_axis<R: Clone + Display, T: PartialEq + Copy>(
    raw: Option<&OneOrMany<R>>,
    key: &KeyPath,
    default: T,
    example: &str,
    e: &mut Errors,
    check: impl Fn(R) -> Result<T, (String, &'static str)>,
) -> Vec<T> {
    let Some(raw) = raw else { return vec![default] };
    let values = raw.to_vec();
    if values.is_empty() {
        e.push(
            key,
            "the list is empty, so the sweep has no points",
            format!("give at least one value, e.g. `{} = {example}`", last(key)),
        );
        return vec![default];
    }
    let mut out = Vec::new();
    for v in values {
        match check(v.clone()) {
            Err((message, fix)) => e.push(key, message, fix),
            Ok(t) if out.contains(&t) => e.push(
                key,
                format!("value {v} is listed twice"),
                "list each value once",
            ),
            Ok(t) => out.push(t),
        }
    }
    if out.is_empty() { vec![default] } else { out }
}

/// Names out of `T::ALL`: one or a list, each listed once; `default` when absent. An unknown
/// name is refused with the nearest known one.
pub(in crate::scenario) fn named_axis<T: Named>(
    raw: Option<&OneOrMany<String>>,
    key: &KeyPath,
    default: T,
    e: &mut Errors,
) -> Vec<T> {
    let Some(raw) = raw else { return vec![default] };
    let values = raw.to_vec();
    if values.is_empty() {
        e.push(
            key,
            "the list is empty, so the sweep has no points",
            format!(
                "give at least one value, e.g. `{} = [\"{}\"]`",
                last(key),
                default.name()
            ),
        );
        return vec![default];
    }
    let known = T::names();
    let mut out = Vec::new();
    for v in values {
        match T::ALL.iter().find(|t| t.name() == v) {
            Some(&t) if out.contains(&t) => e.push(
                key,
                format!("`{v}` is listed twice"),
                "list each value once",
            ),
            Some(&t) => out.push(t),
            None => e.push(
                key,
                format!("unknown value `{v}`"),
                format!(
                    "{}use one of: {}",
                    crate::scenario::parse::did_you_mean(&v, &known),
                    known.join(", ")
                ),
            ),
        }
    }
    if out.is_empty() { vec![default] } else { out }
}
