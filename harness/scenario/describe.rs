//! The resolved scenario and its points as text: what `bench validate` and `sweep --dry-run` print.

use std::collections::BTreeMap;

use super::{Limit, LoadKind, LoadPoint, Scenario, StopRule, Target};

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
pub fn effective_settings(s: &Scenario) -> BTreeMap<String, String> {
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
        ("workload.min_requests", w.min_requests.to_string()),
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
    .map(|(k, v)| (k.to_string(), v))
    .chain(super::session::settings(&s.axes))
    .chain(batch_setting(s))
    .chain(batching_setting(s))
    .collect()
}

/// `batching` with its policies, only when the scenario has `[batching]`.
fn batching_setting(s: &Scenario) -> Option<(String, String)> {
    let values: Vec<String> = s.axes.batching.iter().flatten().map(|p| p.id()).collect();
    (!values.is_empty()).then(|| ("batching".to_string(), values.join(", ")))
}

/// `sweep.batch` with its values, only when the scenario sweeps it (runs without it record none).
fn batch_setting(s: &Scenario) -> Option<(String, String)> {
    let values: Vec<String> = s
        .axes
        .batch
        .iter()
        .flatten()
        .map(|b| b.to_string())
        .collect();
    (!values.is_empty()).then(|| ("sweep.batch".to_string(), values.join(", ")))
}

/// The resolved scenario and its points, as `validate` and `--dry-run` print them.
pub fn describe(s: &Scenario) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario `{}` ({}), seed {}",
        s.name,
        s.file.display(),
        s.seed
    );
    let weight = |t: Target| {
        s.workload
            .mix
            .iter()
            .find(|(x, _)| *x == t)
            .map_or(0.0, |(_, w)| *w)
    };
    for (i, m) in s.models.iter().enumerate() {
        let _ = writeln!(
            out,
            "  model {} (weight {}): {}",
            m.name,
            weight(Target::Model(i)),
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
            weight(Target::Group(g)),
            members.join(" + ")
        );
    }
    let stop = stop(s.workload.stop);
    let _ = writeln!(
        out,
        "  {} loop{}; warm-up {}, {stop}, {} trial(s) per point, at least {} requests",
        s.load.kind_name(),
        if s.load.kind == LoadKind::Open {
            format!(" ({} arrivals)", s.load.arrival.name())
        } else {
            String::new()
        },
        limit(s.workload.warmup),
        s.workload.trials,
        s.workload.min_requests
    );
    if !s.slo.is_empty() {
        let slo: Vec<String> = s.slo.iter().map(|c| c.to_string()).collect();
        let _ = writeln!(out, "  SLO: {}", slo.join(", "));
    }
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
         once, on {} usable CPU(s):",
        s.points.len(),
        largest.processes,
        largest.threads,
        super::limits::usable_cpus()
    );
    for p in &s.points {
        let load = match p.load {
            LoadPoint::Closed { concurrency } => format!("concurrency={concurrency}"),
            LoadPoint::Open { rate } => format!("rate={rate}/s"),
        };
        // The session options and the batch are listed only where they are not the defaults, as
        // in the id, so the lines of simple sweeps stay as they were.
        let mut extra = String::new();
        let d = crate::scenario::SessionKnobs::default();
        for ((k, v), (_, dv)) in p.session.settings().into_iter().zip(d.settings()) {
            if v != dv {
                extra.push_str(&format!(" {k}={v}"));
            }
        }
        if let Some(b) = p.batch {
            extra.push_str(&format!(" batch={b}"));
        }
        if let Some(b) = p.batching {
            extra.push_str(&format!(
                " max_batch={} max_delay={} idle={}",
                b.max_batch,
                humantime::format_duration(b.max_delay),
                b.idle.name()
            ));
        }
        if p.channel != super::Channel::Socket {
            let spin = s.transfer.spin_max_at(p, super::limits::usable_cpus());
            extra.push_str(&if spin.is_zero() {
                format!(" channel={} (parks at once)", p.channel.name())
            } else {
                format!(
                    " channel={} (spins up to {})",
                    p.channel.name(),
                    humantime::format_duration(spin)
                )
            });
        }
        let load = if p.worker_concurrency == 1 {
            load
        } else {
            format!("{load} worker_concurrency={}", p.worker_concurrency)
        };
        let _ = writeln!(
            out,
            "  {:>3}  {}  workers={} intra_threads={}{extra} transfer={} placement={} pin={} provider={} {load} runtime={}  starts {} process(es), {} thread(s)",
            p.index,
            p.id,
            p.workers,
            p.intra_threads,
            p.transfer.name(),
            p.placement.name(),
            p.pin.name(),
            p.provider.name(),
            p.runtime.name(),
            super::limits::footprint(p).processes,
            super::limits::footprint(p).threads,
        );
    }
    out
}
