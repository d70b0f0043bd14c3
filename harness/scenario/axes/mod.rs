//! One declaration per sweep axis: the list that expansion, point ids, the CSV columns, `run.json`,
//! `bench validate` and `bench run`'s flags all read.
//!
//! A sweep axis used to be written into about ten places: its scenario key and parser, the
//! `Point` field, the id fragment, the CSV column, `run.json`, validate's listing, the `bench run`
//! flag, the size guard, and the docs. The compiler named three of them. Here each axis is one
//! item of [`list`], an `Axis` value (as each of ripgrep's flags is one item of its
//! `flags/defs.rs` that the parser, `--help` and the man page all read) that says:
//!
//! - its scenario keys ([`Key`]: table, key) and for each the `bench run` flag, its value name and
//!   its `--help` line;
//! - its default, and how its values are read from the scenario (`resolve`, with the error messages
//!   of [`values`]);
//! - where its value lives in the typed [`Axes`] and [`Point`] (`place`): the rest of the crate
//!   keeps reading `point.workers` and `point.session.cpu_arena`;
//! - its point-id fragment, and when it is left out (`id` returns `None` for the default, so ids
//!   from before an axis existed stay the same);
//! - its CSV columns and a point's cells in them (`results.csv` and `capacity.csv`), its
//!   `run.json` keys per point and in the effective settings, and its part of validate's line;
//! - whether it is an ONNX Runtime session option (`ort_only`: refused with other runtimes).
//!
//! The axes are generic over their value type (`Axis<T>`), and one object-safe trait,
//! `AnyAxis`, lets `list::ALL` hold them all; the functions of this module walk that list. The
//! list's order is the sweep's order (the last axis varies fastest) and the order of the id's
//! fragments. Tests here expand every axis over several values at once and require unique ids, and
//! check the declarations against the typed defaults, the raw keys and the scenario
//! reference; `report`'s tests check them against `results.csv`'s columns.
//!
//! What the list cannot do for a new axis: the typed field of [`Axes`] and of [`Point`], its
//! `RawSweep` field (serde needs one to refuse unknown keys with the nearest known one) and its
//! `Row` column (a serde struct, as the lenient reader needs) are still written by hand. Each is a
//! line or two, and the compiler (`place!`) or a test fails until it is there: `tests.rs` here for
//! the raw key and the scenario reference, `report`'s tests for the column.
//!
//! ONNX Runtime's session knobs go one step further, because they are many and alike: each is one
//! item of a list in `scenario/session.rs`, whose expansions declare every typed home above
//! ([`SessionKnobs`](super::SessionKnobs), the `Axes` field, the `RawSweep` field, the `Row`
//! column) and, in `knobs.rs`, the knob's `Axis`; the workers get the knobs as text pairs, so
//! the wire never changes for one.

mod knobs;
pub mod list;
pub mod values;

use serde_json::Value;

use super::raw::RawSweep;
use super::{BatchPolicy, Errors, KeyPath, LoadPoint, Scenario};
pub use list::{Axes, Point};
use values::AxisValue;

/// How a `bench run` flag's values are checked, and written into the scenario it writes.
#[derive(Debug, Clone, Copy)]
pub enum FlagValue {
    /// Integers from `min` to `max`.
    Ints { min: i64, max: i64 },
    /// Numbers above 0 (requests per second).
    Rates,
    /// `true` or `false`.
    Bools,
    /// One of these names.
    Names(fn() -> Vec<&'static str>),
    /// Durations such as `2ms`, written as strings.
    Durations,
    /// `NAME=N` pairs (N ≥ 1), each a key of the table (`[replicas]`).
    Pairs,
}

/// One scenario key of an axis, and the `bench run` flag that sets it.
#[derive(Debug)]
pub(crate) struct Key {
    /// The table, e.g. `sweep`.
    pub(crate) table: &'static str,
    /// The key in it, e.g. `workers`; empty for a table of `NAME = N` lines ([`FlagValue::Pairs`]).
    pub(crate) key: &'static str,
    /// The long flag, without the dashes.
    pub(crate) flag: &'static str,
    pub(crate) value_name: &'static str,
    /// The flag's line in `bench run --help`.
    pub(crate) help: &'static str,
    pub(crate) value: FlagValue,
    /// A comma list (a sweep axis), or one value.
    pub(crate) list: bool,
    /// Another key of the same table this flag sets too, with its TOML value (`--rate` sets
    /// `kind = "open"`).
    pub(crate) also: Option<(&'static str, &'static str)>,
    /// A flag this one cannot be given with.
    pub(crate) conflicts: Option<&'static str>,
}

/// The flag of a `[sweep]` key that takes a comma list.
pub(in crate::scenario) const fn sweep_key(
    key: &'static str,
    flag: &'static str,
    value_name: &'static str,
    value: FlagValue,
    help: &'static str,
) -> Key {
    Key {
        table: "sweep",
        key,
        flag,
        value_name,
        help,
        value,
        list: true,
        also: None,
        conflicts: None,
    }
}

impl Key {
    /// Checks one value of the flag as given; `Ok` with the text to keep.
    pub(crate) fn check(&self, s: &str) -> Result<String, String> {
        let s = s.trim();
        match self.value {
            FlagValue::Ints { min, max } => match s.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(s.to_string()),
                _ => Err(format!("`{s}` is not an integer from {min} to {max}")),
            },
            FlagValue::Rates => match s.parse::<f64>() {
                Ok(r) if r > 0.0 && r.is_finite() => Ok(s.to_string()),
                _ => Err(format!("`{s}` is not a number above 0")),
            },
            FlagValue::Bools => match s {
                "true" | "false" => Ok(s.to_string()),
                _ => Err(format!("`{s}` is not `true` or `false`")),
            },
            FlagValue::Names(names) => {
                let names = names();
                if names.contains(&s) {
                    Ok(s.to_string())
                } else {
                    Err(format!("`{s}` is not one of {}", names.join(", ")))
                }
            }
            FlagValue::Durations => humantime::parse_duration(s)
                .map(|_| s.to_string())
                .map_err(|e| format!("`{s}` is not a duration like 2ms ({e})")),
            FlagValue::Pairs => match s.split_once('=') {
                Some((name, n)) if !name.is_empty() && n.parse::<u32>().is_ok_and(|n| n >= 1) => {
                    Ok(s.to_string())
                }
                _ => Err(format!("`{s}` is not NAME=N with N at least 1")),
            },
        }
    }

    /// The scenario lines `(table, key, value)` for the flag's values (each already
    /// [`checked`](Key::check)), as `bench run` writes them.
    pub(crate) fn settings(&self, values: &[String]) -> Vec<(&'static str, String, toml::Value)> {
        use toml::Value as T;
        let one = |s: &str| match self.value {
            FlagValue::Ints { .. } => T::Integer(s.parse().unwrap_or_default()),
            FlagValue::Rates => T::Float(s.parse().unwrap_or_default()),
            FlagValue::Bools => T::Boolean(s == "true"),
            FlagValue::Names(_) | FlagValue::Durations | FlagValue::Pairs => T::String(s.into()),
        };
        let mut out = Vec::new();
        if let Some((key, value)) = self.also {
            out.push((self.table, key.to_string(), T::String(value.into())));
        }
        if let FlagValue::Pairs = self.value {
            for (name, n) in values.iter().filter_map(|v| v.split_once('=')) {
                let key = if name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    name.to_string()
                } else {
                    T::String(name.into()).to_string()
                };
                out.push((self.table, key, T::Integer(n.parse().unwrap_or_default())));
            }
            return out;
        }
        let value = match values {
            [v] => one(v),
            _ => T::Array(values.iter().map(|v| one(v)).collect()),
        };
        out.push((self.table, self.key.to_string(), value));
        out
    }
}

/// Where an axis's values live: its list in [`Axes`] and its value in a [`Point`].
pub(in crate::scenario) struct Place<T> {
    pub(crate) values: fn(&Axes) -> &Vec<T>,
    pub(crate) values_mut: fn(&mut Axes) -> &mut Vec<T>,
    pub(crate) get: fn(&Point) -> T,
    pub(crate) set: fn(&mut Point, T),
}

/// `place!(axes_field, point.path)`: the [`Place`] of an axis whose list is `Axes::axes_field` and
/// whose value is `Point::point.path`.
macro_rules! place {
    ($list:ident, $($field:ident).+) => {
        $crate::scenario::axes::Place {
            values: |a| &a.$list,
            values_mut: |a| &mut a.$list,
            get: |p| p.$($field).+,
            set: |p, v| p.$($field).+ = v,
        }
    };
}
pub(in crate::scenario) use place;

/// What an axis's values are read from: the `[sweep]` table, and the axes other tables resolve
/// (`[load]`'s concurrency or rate, `[batching]`'s policies).
pub(in crate::scenario) struct Sources<'a> {
    pub(crate) sweep: Option<&'a RawSweep>,
    pub(crate) load: Vec<LoadPoint>,
    pub(crate) batching: Vec<Option<BatchPolicy>>,
}

impl Sources<'_> {
    /// A `[sweep]` key's raw value, if the table and key are there.
    pub(crate) fn sweep<V>(&self, key: fn(&RawSweep) -> &Option<V>) -> Option<&V> {
        self.sweep.and_then(|r| key(r).as_ref())
    }
}

/// One sweep axis, declared once (see the module's header for what each part feeds).
pub(in crate::scenario) struct Axis<T: AxisValue> {
    /// The axis's name, as validate's line and the messages name it.
    pub(crate) name: &'static str,
    /// Its scenario keys with their `bench run` flags; the first is the key its errors name.
    pub(crate) keys: &'static [Key],
    /// The value of a scenario that does not set it: what bench measured before the axis existed.
    pub(crate) default: T,
    pub(crate) place: Place<T>,
    /// Reads the values (`key` is the first key's path; `default` the axis's).
    pub(crate) resolve: fn(&Sources, &KeyPath, T, &mut Errors) -> Vec<T>,
    /// The point id's fragment, `None` to leave the value out of the id.
    pub(crate) id: fn(T) -> Option<String>,
    /// The CSV columns, and a value's cells in them (JSON `null` for an empty cell).
    pub(crate) columns: &'static [&'static str],
    pub(crate) cells: fn(T) -> Vec<Value>,
    /// `run.json`'s keys for the columns, one each, in each point's `session` (empty: not
    /// recorded there; an empty cell is left out).
    pub(crate) run_json: &'static [&'static str],
    /// The key of the effective settings (`run.json`'s `settings`, which `bench compare` checks)
    /// that lists the values when they are not just the default.
    pub(crate) effective: Option<&'static str>,
    /// The axis's part of validate's line for a point, `None` to leave it out.
    pub(crate) describe: fn(T, &Point, &Scenario) -> Option<String>,
    /// An ONNX Runtime session option: a value other than the default is refused in a sweep that
    /// also runs tract or torch.
    pub(crate) ort_only: bool,
    /// Several values, for the tests' large expansion (the default among them).
    #[cfg(test)]
    pub(crate) examples: &'static [T],
}

/// An [`Axis`] of any value type: what the functions of this module walk.
pub(in crate::scenario) trait AnyAxis: Sync {
    fn name(&self) -> &'static str;
    fn keys(&self) -> &'static [Key];
    fn columns(&self) -> &'static [&'static str];
    fn run_json(&self) -> &'static [&'static str];
    fn len(&self, axes: &Axes) -> usize;
    fn resolve(&self, src: &Sources, axes: &mut Axes, e: &mut Errors);
    /// Sets the point's value to the axis's `i`-th.
    fn pick(&self, axes: &Axes, i: usize, p: &mut Point);
    fn id(&self, p: &Point) -> Option<String>;
    fn cells(&self, p: &Point) -> Vec<Value>;
    fn describe(&self, p: &Point, s: &Scenario) -> Option<String>;
    /// The first value other than the default, as the scenario writes it.
    fn swept_away(&self, axes: &Axes) -> Option<String>;
    fn effective(&self, axes: &Axes) -> Option<(String, String)>;
    fn ort_only(&self) -> bool;
    /// Sets the axis to its default alone.
    #[cfg(test)]
    #[cfg(test)]
    fn use_default(&self, axes: &mut Axes);
    /// Sets the axis to its first `keep` examples.
    #[cfg(test)]
    fn use_examples(&self, axes: &mut Axes, keep: usize);
}

impl<T: AxisValue> AnyAxis for Axis<T> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn keys(&self) -> &'static [Key] {
        self.keys
    }
    fn columns(&self) -> &'static [&'static str] {
        self.columns
    }
    fn run_json(&self) -> &'static [&'static str] {
        self.run_json
    }
    fn len(&self, axes: &Axes) -> usize {
        (self.place.values)(axes).len()
    }
    fn resolve(&self, src: &Sources, axes: &mut Axes, e: &mut Errors) {
        let first = &self.keys[0];
        let key = KeyPath::default().key(first.table).key(first.key);
        *(self.place.values_mut)(axes) = (self.resolve)(src, &key, self.default, e);
    }
    fn pick(&self, axes: &Axes, i: usize, p: &mut Point) {
        (self.place.set)(p, (self.place.values)(axes)[i]);
    }
    fn id(&self, p: &Point) -> Option<String> {
        (self.id)((self.place.get)(p))
    }
    fn cells(&self, p: &Point) -> Vec<Value> {
        (self.cells)((self.place.get)(p))
    }
    fn describe(&self, p: &Point, s: &Scenario) -> Option<String> {
        (self.describe)((self.place.get)(p), p, s)
    }
    fn swept_away(&self, axes: &Axes) -> Option<String> {
        (self.place.values)(axes)
            .iter()
            .find(|&&v| v != self.default)
            .map(|v| v.toml())
    }
    fn effective(&self, axes: &Axes) -> Option<(String, String)> {
        let key = self.effective?;
        let values = (self.place.values)(axes);
        (values != &[self.default]).then(|| {
            let texts: Vec<String> = values.iter().map(|v| v.text()).collect();
            (key.to_string(), texts.join(", "))
        })
    }
    fn ort_only(&self) -> bool {
        self.ort_only
    }
    #[cfg(test)]
    fn use_default(&self, axes: &mut Axes) {
        *(self.place.values_mut)(axes) = vec![self.default];
    }
    #[cfg(test)]
    fn use_examples(&self, axes: &mut Axes, keep: usize) {
        *(self.place.values_mut)(axes) = self.examples.iter().copied().take(keep).collect();
    }
}

impl Axes {
    /// Every axis at its default alone: the one point `w1-t1-pipe-cpu-c1`.
    #[cfg(test)]
    pub(crate) fn single() -> Axes {
        let mut axes = Axes::default();
        for axis in list::ALL {
            axis.use_default(&mut axes);
        }
        axes
    }
}

/// The number of points the axes expand to (saturating: a guard compares it with a limit).
pub(crate) fn size(axes: &Axes) -> usize {
    list::ALL
        .iter()
        .fold(1usize, |n, a| n.saturating_mul(a.len(axes)))
}

/// Each axis's number of values, in the list's order.
pub(crate) fn lens(axes: &Axes) -> Vec<usize> {
    list::ALL.iter().map(|a| a.len(axes)).collect()
}

/// The point holding each axis's value at `at` (one index per axis, in the list's order); its id
/// is set, its index is 0.
pub(crate) fn point_at(axes: &Axes, at: &[usize]) -> Point {
    let mut p = Point::unnamed();
    for (axis, &i) in list::ALL.iter().zip(at) {
        axis.pick(axes, i, &mut p);
    }
    p.id = id(&p);
    p
}

/// A point's id: the axes' fragments in the list's order, joined with `-`, e.g.
/// `w1-t2-nospin-pipe-cpu-c4`.
pub(crate) fn id(p: &Point) -> String {
    let parts: Vec<String> = list::ALL.iter().filter_map(|a| a.id(p)).collect();
    parts.join("-")
}

/// Every axis column of a point with its cell, by column name, as `results.csv` writes them.
pub(crate) fn cells(p: &Point) -> serde_json::Map<String, Value> {
    list::ALL
        .iter()
        .flat_map(|a| a.columns().iter().copied().zip(a.cells(p)))
        .map(|(c, v)| (c.to_string(), v))
        .collect()
}

/// The cells of the axes that make a configuration, every axis but the load (which `bench
/// capacity` searches), in the list's order.
pub(crate) fn config_cells(p: &Point) -> Vec<(&'static str, Value)> {
    list::ALL
        .iter()
        .filter(|a| a.name() != list::LOAD.name)
        .flat_map(|a| a.columns().iter().copied().zip(a.cells(p)))
        .collect()
}

/// The CSV columns that `run.json` records per point, each with its key there.
pub(crate) fn run_json_columns() -> Vec<(&'static str, &'static str)> {
    list::ALL
        .iter()
        .flat_map(|a| {
            a.columns()
                .iter()
                .copied()
                .zip(a.run_json().iter().copied())
        })
        .collect()
}

/// Every scenario key with its `bench run` flag, in the list's order.
pub(crate) fn keys() -> impl Iterator<Item = &'static Key> {
    list::ALL.iter().flat_map(|a| a.keys().iter())
}

/// The parts of validate's line for a point: `workers=2`, `transfer=shm`, ... (the axes that
/// leave themselves out at their defaults say nothing).
pub(crate) fn describe(p: &Point, s: &Scenario) -> Vec<String> {
    list::ALL.iter().filter_map(|a| a.describe(p, s)).collect()
}

/// The effective settings the axes add (`sweep.intra_spinning = "true, false"`, ...): only for
/// those swept away from their defaults, so runs from before an axis existed still compare.
pub(crate) fn effective_settings(axes: &Axes) -> Vec<(String, String)> {
    list::ALL.iter().filter_map(|a| a.effective(axes)).collect()
}

/// Points that between them hold every example value of every axis (the `i`-th point holds each
/// axis's `i mod n`-th example): for the tests of what reads the axes.
#[cfg(test)]
pub fn example_points() -> Vec<Point> {
    let mut axes = Axes::single();
    for axis in list::ALL {
        axis.use_examples(&mut axes, usize::MAX);
    }
    let lens = lens(&axes);
    (0..lens.iter().copied().max().unwrap_or(1))
        .map(|i| point_at(&axes, &lens.iter().map(|&n| i % n).collect::<Vec<_>>()))
        .collect()
}

/// Every axis's CSV columns, in the list's order.
#[cfg(test)]
pub fn columns() -> Vec<&'static str> {
    list::ALL
        .iter()
        .flat_map(|a| a.columns().iter().copied())
        .collect()
}

/// Reads every axis, then refuses the combinations no point could run.
pub(in crate::scenario) fn resolve(src: Sources, e: &mut Errors) -> Axes {
    let mut axes = Axes::default();
    for axis in list::ALL {
        axis.resolve(&src, &mut axes, e);
    }
    refuse_other_runtimes(&axes, e);
    list::refuse_combinations(&axes, e);
    axes
}

/// Refuses session options other than the defaults on a sweep that runs tract or torch: they are
/// ONNX Runtime's, and those runtimes have nothing to set them on.
pub(in crate::scenario) fn refuse_other_runtimes(axes: &Axes, e: &mut Errors) {
    use super::Runtime;
    let others: Vec<&str> = axes
        .runtime
        .iter()
        .filter(|&&r| r != Runtime::Ort)
        .map(|r| r.name())
        .collect();
    if others.is_empty() {
        return;
    }
    for axis in list::ALL.iter().filter(|a| a.ort_only()) {
        let Some(v) = axis.swept_away(axes) else {
            continue;
        };
        let k = axis.keys()[0].key;
        e.push(
            &KeyPath::default().key("sweep").key(k),
            format!(
                "`{k} = {v}` is an ONNX Runtime session option, and this sweep also runs {} \
                 (`sweep.runtime`), which has no such setting",
                others.join(" and ")
            ),
            format!(
                "sweep `{k}` in a scenario whose `runtime` is \"ort\" only, or remove {} from \
                 `sweep.runtime`",
                others
                    .iter()
                    .map(|o| format!("\"{o}\""))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        );
    }
}

#[cfg(test)]
mod tests;
