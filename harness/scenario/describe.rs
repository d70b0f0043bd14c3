//! The resolved scenario and its points as text: what `bench validate` and `sweep --dry-run` print.

use std::collections::BTreeMap;

use super::{Limit, LoadKind, Scenario, StopRule, Target};

fn limit(l: Limit) -> String {
    match l {
        Limit::Duration(d) => format!("{}", humantime::format_duration(d)),
        Limit::Requests(n) => format!("{n} requests"),
    }
}

fn stop(rule: StopRule) -> String {
    match rule {
        StopRule::Fixed(l) => format!("measure {}", limit(l)),
        StopRule::Stable {
            window,
            tolerance_pct,
            max_windows,
        } => format!(
            "measure {} windows until 3 agree within {tolerance_pct}% (at most {max_windows})",
            humantime::format_duration(window)
        ),
    }
}

/// The settings that decide what a run measured, after the command line's overrides, by key
/// (`workload.trials`, `load.spin`, ...): recorded in `run.json`, and what `bench compare` checks
/// two runs agree on before it compares their numbers. The models and the sweep points are
/// compared apart (the scenario's hash, the point ids). The ONNX Runtime session options and the
/// batch (`sweep.intra_spinning`, `sweep.batch`, ...) appear only when swept away from their
/// defaults, so runs from before those axes still compare with runs that do not use them.
pub(crate) fn effective_settings(s: &Scenario) -> BTreeMap<String, String> {
    let w = &s.workload;
    let target = |t: &Target| match *t {
        Target::Model(m) => s.models[m].name.clone(),
        Target::Group(g) => format!("group {}", w.groups[g].name),
    };
    let mix: Vec<String> = w
        .mix
        .iter()
        .map(|(t, weight)| format!("{}={weight}", target(t)))
        .collect();
    let slo: Vec<String> = s.slo.iter().map(|c| c.to_string()).collect();
    [
        ("seed", s.seed.to_string()),
        ("workload.mix", mix.join(", ")),
        ("workload.warmup", limit(w.warmup)),
        ("workload.stop", stop(w.stop)),
        (
            "workload.min_requests",
            w.min_requests
                .unwrap_or(super::DEFAULT_MIN_REQUESTS)
                .to_string(),
        ),
        ("workload.trials", w.trials.to_string()),
        ("workload.interleave", w.interleave.to_string()),
        (
            "workload.cooldown",
            humantime::format_duration(w.cooldown).to_string(),
        ),
        (
            "workload.request_timeout",
            humantime::format_duration(w.request_timeout).to_string(),
        ),
        ("load.kind", s.load.kind_name().to_string()),
        ("load.arrival", s.load.arrival.name().to_string()),
        ("load.max_in_flight", s.load.max_in_flight.to_string()),
        (
            "load.spin",
            humantime::format_duration(s.load.spin).to_string(),
        ),
        (
            "transfer.shm_budget_mib",
            s.transfer.shm_budget_mib.to_string(),
        ),
        ("transfer.spin", s.transfer.spin.name().to_string()),
        (
            "transfer.spin_max_us",
            s.transfer.spin_max.as_micros().to_string(),
        ),
        ("slo", slo.join(", ")),
    ]
    .into_iter()
    // Recorded only away from its default, so that runs from before the key still compare.
    .chain((w.max_duration != super::DEFAULT_MAX_DURATION).then(|| {
        (
            "workload.max_duration",
            humantime::format_duration(w.max_duration).to_string(),
        )
    }))
    .map(|(k, v)| (k.to_string(), v))
    .chain(super::axes::effective_settings(&s.axes))
    .collect()
}

/// The resolved scenario and its points, as `validate` and `--dry-run` print them.
pub(crate) fn describe(s: &Scenario) -> String {
    let mut out = format!(
        "scenario `{}` ({}), seed {}\n",
        s.name,
        s.file.display(),
        s.seed
    );
    describe_models(s, &mut out);
    describe_measurement(s, &mut out);
    describe_points(s, &mut out);
    out
}

/// A traffic target's weight in the mix (0 when it is not in it).
fn weight(s: &Scenario, t: Target) -> f64 {
    s.workload
        .mix
        .iter()
        .find(|(x, _)| *x == t)
        .map_or(0.0, |(_, w)| *w)
}

/// Each model with its source, torch module and inputs, then each ensemble group.
fn describe_models(s: &Scenario, out: &mut String) {
    use std::fmt::Write;
    for (i, m) in s.models.iter().enumerate() {
        let _ = writeln!(
            out,
            "  model {} (weight {}): {}",
            m.name,
            weight(s, Target::Model(i)),
            m.describe_source()
        );
        if let Some(t) = &m.torch {
            let _ = writeln!(
                out,
                "    torch: {} with {}",
                t.module,
                t.weights.as_ref().map_or_else(
                    || format!("init_seed {}", t.init_seed.unwrap_or_default()),
                    |w| format!("weights {}", w.display())
                )
            );
        }
        for (i, inp) in m.inputs.iter().enumerate() {
            // With the `batch` axis the shapes are those of its first value; say which dim moves.
            let swept: Vec<String> = m
                .batch
                .iter()
                .flat_map(|b| &b.at)
                .filter(|&&(input, _)| input == i)
                .map(|&(_, pos)| format!(" (dim {pos}: sweep.batch)"))
                .collect();
            let _ = writeln!(
                out,
                "    {}: {} {:?}{}, {} sample(s)",
                inp.name,
                inp.dtype,
                inp.shape,
                swept.concat(),
                m.samples.len()
            );
        }
    }
    for (g, group) in s.workload.groups.iter().enumerate() {
        let members: Vec<&str> = group
            .members
            .iter()
            .map(|&m| s.models[m].name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "  group {} (weight {}): {}",
            group.name,
            weight(s, Target::Group(g)),
            members.join(" + ")
        );
    }
}

/// The load loop, warm-up, stopping rule and its minimum, trials, and the SLO.
fn describe_measurement(s: &Scenario, out: &mut String) {
    use std::fmt::Write;
    let w = &s.workload;
    let minimum = match (w.min_requests(), w.cap()) {
        (Some(min), Some(cap)) => format!(
            " (on past it to {min} successful requests, at most {})",
            humantime::format_duration(cap)
        ),
        (Some(min), None) => format!(", at least {min} successful requests"),
        (None, _) => String::new(),
    };
    let _ = writeln!(
        out,
        "  {} loop{}; warm-up {}, {}{minimum}, {} trial(s) per point",
        s.load.kind_name(),
        if s.load.kind == LoadKind::Open {
            format!(" ({} arrivals)", s.load.arrival.name())
        } else {
            String::new()
        },
        limit(w.warmup),
        stop(w.stop),
        w.trials,
    );
    if !s.slo.is_empty() {
        let slo: Vec<String> = s.slo.iter().map(|c| c.to_string()).collect();
        let _ = writeln!(out, "  SLO: {}", slo.join(", "));
    }
}

/// One line per point: its index, id, each axis's value (the axes that leave their defaults out
/// of the id leave them out here too, so the lines of simple sweeps stay short) and what it
/// starts; the largest point's footprint first.
fn describe_points(s: &Scenario, out: &mut String) {
    use std::fmt::Write;
    let largest = s.points.iter().map(super::limits::footprint).fold(
        super::limits::Footprint {
            processes: 0,
            threads: 0,
        },
        |a, f| super::limits::Footprint {
            processes: a.processes.max(f.processes),
            threads: a.threads.max(f.threads),
        },
    );
    let _ = writeln!(
        out,
        "{} point(s); the largest starts {} worker process(es) with {} compute thread(s) at \
         once, on {} usable CPU(s); warm-up and measurement take {} (worker starts aside):",
        s.points.len(),
        largest.processes,
        largest.threads,
        super::limits::usable_cpus(),
        super::budget::sweep_time(s).describe()
    );
    for p in &s.points {
        let footprint = super::limits::footprint(p);
        let _ = writeln!(
            out,
            "  {:>3}  {}  {}  starts {} process(es), {} thread(s), {}",
            p.index,
            p.id,
            super::axes::describe(p, s).join(" "),
            footprint.processes,
            footprint.threads,
            super::budget::point_time(s, p).describe(),
        );
    }
}
