//! Resolving `[load]`: a closed loop (requests in flight) or an open one (a target rate, with
//! Poisson, constant or traced arrivals), into the [`LoadSpec`] every point shares and the load
//! points the sweep's `load` axis runs.
//!
//! Each loop kind takes only its own keys: a key of the other kind is an error that says which
//! kind it belongs to, so a scenario never silently ignores a setting.

use std::path::Path;
use std::time::Duration;

use super::axes::values::positive_axis;
use super::error::Errors;
use super::raw::{self, OneOrMany};
use super::source::KeyPath;
use super::spec::{LoadPoint, LoadSpec};
use super::values::{count_key, duration_key};
use super::vocabulary::{Arrival, LoadKind};

/// The longest `[load] spin`: the generator spends up to this long busy-waiting before each send.
pub(crate) const MAX_SPIN: Duration = Duration::from_millis(100);

pub(super) fn resolve_load(
    raw: raw::RawLoad,
    dir: &Path,
    e: &mut Errors,
) -> (LoadSpec, Vec<LoadPoint>) {
    let key = KeyPath::default().key("load");
    let kind = match raw.kind.as_deref() {
        None | Some("closed") => LoadKind::Closed,
        Some("open") => LoadKind::Open,
        Some(other) => {
            e.push(
                &key.key("kind"),
                format!("unknown load kind `{other}`"),
                "use `closed` (fixed requests in flight) or `open` (a target rate)",
            );
            LoadKind::Closed
        }
    };
    let mut spec = LoadSpec {
        kind,
        arrival: Arrival::Poisson,
        max_in_flight: 10_000,
        spin: load_spin(raw.spin.as_deref(), &key, e),
    };
    let points = match kind {
        LoadKind::Closed => closed_points(&raw, &key, e),
        LoadKind::Open => {
            if raw.concurrency.is_some() {
                e.push(
                    &key.key("concurrency"),
                    "`concurrency` applies to a closed loop only",
                    "an open loop sends at `rate` whatever is in flight; remove `concurrency`",
                );
            }
            spec.max_in_flight =
                count_key(raw.max_in_flight, &key.key("max_in_flight"), 1, 10_000, e) as usize;
            spec.arrival = open_arrival(&raw, dir, &key, e);
            open_points(&raw, &spec.arrival, &key, e)
        }
    };
    (spec, points)
}

/// `spin`: how long before each send the open loop busy-waits, at most [`MAX_SPIN`]. Allowed with
/// a closed loop too, which ignores it: `bench capacity` probes such a scenario with open loops.
fn load_spin(raw: Option<&str>, key: &KeyPath, e: &mut Errors) -> Duration {
    let spin = raw
        .and_then(|v| duration_key(v, &key.key("spin"), true, e))
        .unwrap_or(Duration::ZERO);
    if spin > MAX_SPIN {
        e.push(
            &key.key("spin"),
            format!(
                "{} is more than the {} limit",
                humantime::format_duration(spin),
                humantime::format_duration(MAX_SPIN)
            ),
            "a few milliseconds covers a VM's late wake-ups, e.g. `spin = \"2ms\"`",
        );
    }
    spin
}

/// A closed loop's points: one per `concurrency` value; the open loop's keys are refused.
fn closed_points(raw: &raw::RawLoad, key: &KeyPath, e: &mut Errors) -> Vec<LoadPoint> {
    for (k, set) in [
        ("rate", raw.rate.is_some()),
        ("arrival", raw.arrival.is_some()),
        ("trace", raw.trace.is_some()),
        ("max_in_flight", raw.max_in_flight.is_some()),
    ] {
        if set {
            e.push(
                &key.key(k),
                format!("`{k}` applies to an open loop only"),
                "set `kind = \"open\"`, or remove it",
            );
        }
    }
    positive_axis(raw.concurrency.as_ref(), &key.key("concurrency"), 1, e)
        .into_iter()
        .map(|concurrency| LoadPoint::Closed { concurrency })
        .collect()
}

/// An open loop's arrival process: `poisson` (the default), `constant`, or a `trace` file.
fn open_arrival(raw: &raw::RawLoad, dir: &Path, key: &KeyPath, e: &mut Errors) -> Arrival {
    match (raw.arrival.as_deref(), &raw.trace) {
        (None | Some("poisson"), None) => Arrival::Poisson,
        (Some("constant"), None) => Arrival::Constant,
        (None | Some("trace"), Some(t)) => match read_trace(&dir.join(t)) {
            Ok(times) => Arrival::Trace(times),
            Err(msg) => {
                e.push(
                    &key.key("trace"),
                    msg,
                    "a trace file lists inter-arrival times in microseconds, one per line; its \
                     path is relative to the scenario",
                );
                Arrival::Poisson
            }
        },
        (Some("trace"), None) => {
            e.push(
                &key.key("arrival"),
                "`arrival = \"trace\"` needs a `trace` file",
                "add `trace = \"arrivals.txt\"`",
            );
            Arrival::Poisson
        }
        (Some(a @ ("poisson" | "constant")), Some(_)) => {
            e.push(
                &key.key("trace"),
                format!("`trace` conflicts with `arrival = \"{a}\"`"),
                "remove `trace`, or set `arrival = \"trace\"`",
            );
            Arrival::Poisson
        }
        (Some(other), _) => {
            e.push(
                &key.key("arrival"),
                format!("unknown arrival process `{other}`"),
                "use `poisson`, `constant` or `trace`",
            );
            Arrival::Poisson
        }
    }
}

/// An open loop's points: the trace's own mean rate, or one per `rate` value.
fn open_points(
    raw: &raw::RawLoad,
    arrival: &Arrival,
    key: &KeyPath,
    e: &mut Errors,
) -> Vec<LoadPoint> {
    // A trace sets the times, whether or not its file could be read: a broken one has its own
    // error, and asking for a `rate` too would send the user into "`rate` conflicts with a trace".
    let trace_asked = raw.trace.is_some() && matches!(raw.arrival.as_deref(), None | Some("trace"));
    if trace_asked {
        if raw.rate.is_some() {
            e.push(
                &key.key("rate"),
                "`rate` conflicts with a trace, which sets its own times",
                "remove `rate`",
            );
        }
        let Arrival::Trace(times) = arrival else {
            return vec![LoadPoint::Open { rate: 1.0 }];
        };
        let mean_ns = times.iter().sum::<u64>() as f64 / times.len() as f64;
        return vec![LoadPoint::Open {
            rate: (1e9 / mean_ns * 1000.0).round() / 1000.0,
        }];
    }
    let rkey = key.key("rate");
    let Some(rates) = raw.rate.as_ref().map(OneOrMany::to_vec) else {
        e.push(
            key,
            "an open loop needs a target `rate` (requests per second)",
            "e.g. `rate = [100, 200]`",
        );
        return vec![LoadPoint::Open { rate: 1.0 }];
    };
    if rates.is_empty() {
        e.push(
            &rkey,
            "the list is empty, so the sweep has no points",
            "give at least one value, e.g. `rate = [100]`",
        );
    }
    let mut out: Vec<LoadPoint> = Vec::new();
    for r in rates {
        if !(r > 0.0 && r.is_finite() && r <= 10_000_000.0) {
            e.push(
                &rkey,
                format!("rates must be above 0 and at most 10,000,000 per second, got {r}"),
                "e.g. `rate = [100, 200]`",
            );
        } else if out.iter().any(|p| p.rate() == Some(r)) {
            e.push(
                &rkey,
                format!("value {r} is listed twice"),
                "list each value once",
            );
        } else {
            out.push(LoadPoint::Open { rate: r });
        }
    }
    if out.is_empty() {
        vec![LoadPoint::Open { rate: 1.0 }]
    } else {
        out
    }
}

/// Inter-arrival times in microseconds, one per line (`#` comments and blank lines skipped).
fn read_trace(path: &Path) -> Result<Vec<u64>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.parse::<f64>() {
            Ok(us) if us >= 0.0 && us.is_finite() && us < 3.6e9 => {
                out.push((us * 1000.0).round() as u64)
            }
            _ => {
                return Err(format!(
                    "{}:{}: `{line}` is not an inter-arrival time in microseconds (a number >= 0)",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    if out.is_empty() || out.iter().all(|&t| t == 0) {
        return Err(format!(
            "{} holds no positive inter-arrival times",
            path.display()
        ));
    }
    Ok(out)
}
