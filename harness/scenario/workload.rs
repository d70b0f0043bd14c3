//! Resolving `[workload]` (what requests ask for, warm-up, stopping rule, trials), `[load]`
//! (closed or open loop, arrivals) and the tables beside `[sweep]` (its axes are read in
//! [`super::axes`]).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use super::axes::values::positive_axis;
use super::raw::{self, OneOrMany};
use super::source::Seg;
use super::{
    ArenaExtend, Arrival, Axes, ConvAlgoSearch, CudaSpec, Errors, Group, KeyPath, Limit, LoadKind,
    LoadPoint, LoadSpec, ModelSpec, OnDemandCaps, Placement, Provider, StopRule, Target, Transfer,
    Workload,
};

/// Parses a duration such as `5s`, `500ms` or `1m 30s`.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|err| err.to_string())
}

/// The longest `[load] spin`: the generator spends up to this long busy-waiting before each send.
pub const MAX_SPIN: Duration = Duration::from_millis(100);

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
fn count_key(value: Option<i64>, key: &KeyPath, least: i64, default: u64, e: &mut Errors) -> u64 {
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

pub(super) fn resolve_workload(
    raw: raw::RawWorkload,
    models: &[ModelSpec],
    declared: &[String],
    e: &mut Errors,
) -> Workload {
    let key = KeyPath::default().key("workload");
    let model_index = |name: &str| models.iter().position(|m| m.name == name);

    let mut groups = Vec::new();
    for (name, members) in &raw.groups {
        let gkey = key.key("groups").key(name);
        if declared.contains(name) {
            e.push(
                &gkey,
                format!("group `{name}` has the name of a model"),
                "give the group its own name",
            );
            continue;
        }
        if members.is_empty() {
            e.push(
                &gkey,
                format!("group `{name}` has no members"),
                "list the models it fans out to, e.g. `[\"mlp\", \"resnet_small\"]`",
            );
            continue;
        }
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        for m in members {
            match model_index(m) {
                Some(i) if seen.insert(i) => ids.push(i),
                Some(_) => e.push(
                    &gkey,
                    format!("`{m}` is listed twice in group `{name}`"),
                    "list each member once",
                ),
                None if declared.contains(m) => {}
                None => e.push(
                    &gkey,
                    format!("`{m}` in group `{name}` is not a model of this scenario"),
                    format!("the models are: {}", declared.join(", ")),
                ),
            }
        }
        if ids.len() == members.len() {
            groups.push(Group {
                name: name.clone(),
                members: ids,
            });
        }
    }
    let group_index = |name: &str| groups.iter().position(|g| g.name == name);

    let mix = match &raw.mix {
        None => (0..models.len())
            .map(|i| (Target::Model(i), 1.0))
            .chain((0..groups.len()).map(|g| (Target::Group(g), 1.0)))
            .collect(),
        Some(m) => {
            let mut mix = Vec::new();
            for (name, &w) in m {
                let mkey = key.key("mix").key(name);
                let target = model_index(name)
                    .map(Target::Model)
                    .or_else(|| group_index(name).map(Target::Group));
                match target {
                    Some(t) if w >= 0.0 && w.is_finite() => mix.push((t, w)),
                    Some(_) => e.push(
                        &mkey,
                        format!("weight must be a finite number >= 0, got {w}"),
                        "weights are relative, e.g. `mix = { a = 3, b = 1 }`",
                    ),
                    // A declared model or group that failed to resolve already has its own error.
                    None if declared.contains(name) || raw.groups.contains_key(name) => {}
                    None => {
                        let mut names: Vec<&str> = declared.iter().map(String::as_str).collect();
                        names.extend(raw.groups.keys().map(String::as_str));
                        e.push(
                            &mkey,
                            format!("`{name}` is not a model or group of this scenario"),
                            format!(
                                "{}the models and groups are: {}",
                                super::parse::did_you_mean(name, &names),
                                names.join(", ")
                            ),
                        );
                    }
                }
            }
            let weights_ok = m.values().all(|w| *w >= 0.0 && w.is_finite());
            if weights_ok && !mix.is_empty() && mix.iter().map(|(_, w)| w).sum::<f64>() <= 0.0 {
                e.push(
                    &key.key("mix"),
                    "the mix gives every model weight 0",
                    "give at least one model a positive weight",
                );
            }
            mix
        }
    };

    let warmup = match (&raw.warmup, raw.warmup_requests) {
        (Some(_), Some(_)) => {
            e.push(
                &key.key("warmup_requests"),
                "set either `warmup` or `warmup_requests`, not both",
                "remove one of `warmup` and `warmup_requests`",
            );
            Limit::Requests(0)
        }
        (Some(s), None) => {
            duration_key(s, &key.key("warmup"), true, e).map_or(Limit::Requests(0), Limit::Duration)
        }
        (None, Some(_)) => Limit::Requests(count_key(
            raw.warmup_requests,
            &key.key("warmup_requests"),
            0,
            100,
            e,
        )),
        (None, None) => Limit::Duration(Duration::from_secs(1)),
    };

    let stop_kind = raw.stop.as_deref().unwrap_or("fixed");
    let stop = match stop_kind {
        "fixed" => {
            for (k, set) in [
                ("window", raw.window.is_some()),
                ("tolerance_pct", raw.tolerance_pct.is_some()),
                ("max_windows", raw.max_windows.is_some()),
            ] {
                if set {
                    e.push(
                        &key.key(k),
                        format!("`{k}` applies to `stop = \"stable\"` only"),
                        "remove it, or set `stop = \"stable\"`",
                    );
                }
            }
            StopRule::Fixed(match (&raw.duration, raw.requests) {
                (Some(_), Some(_)) => {
                    e.push(
                        &key.key("requests"),
                        "set either `duration` or `requests`, not both",
                        "remove one of `duration` and `requests`",
                    );
                    Limit::Duration(Duration::from_secs(5))
                }
                (Some(s), None) => Limit::Duration(
                    duration_key(s, &key.key("duration"), false, e)
                        .unwrap_or(Duration::from_secs(5)),
                ),
                (None, Some(_)) => {
                    Limit::Requests(count_key(raw.requests, &key.key("requests"), 1, 1000, e))
                }
                (None, None) => Limit::Duration(Duration::from_secs(5)),
            })
        }
        "stable" => {
            for (k, set) in [
                ("duration", raw.duration.is_some()),
                ("requests", raw.requests.is_some()),
            ] {
                if set {
                    e.push(&key.key(k), format!("`{k}` applies to `stop = \"fixed\"` only"), "a stable measurement runs `window`-long windows until 3 agree, at most `max_windows`");
                }
            }
            let window = raw
                .window
                .as_deref()
                .map_or(Some(Duration::from_secs(1)), |w| {
                    duration_key(w, &key.key("window"), false, e)
                });
            let tolerance_pct = match raw.tolerance_pct {
                None => 10.0,
                Some(t) if t > 0.0 && t.is_finite() => t,
                Some(t) => {
                    e.push(
                        &key.key("tolerance_pct"),
                        format!("must be a percentage above 0, got {t}"),
                        "e.g. `tolerance_pct = 10`",
                    );
                    10.0
                }
            };
            let max_windows =
                count_key(raw.max_windows, &key.key("max_windows"), 3, 20, e) as usize;
            StopRule::Stable {
                window: window.unwrap_or(Duration::from_secs(1)),
                tolerance_pct,
                max_windows,
            }
        }
        other => {
            e.push(
                &key.key("stop"),
                format!("unknown stopping rule `{other}`"),
                "use `fixed` (a duration or request count) or `stable` (windows until 3 agree)",
            );
            StopRule::Fixed(Limit::Duration(Duration::from_secs(5)))
        }
    };
    let min_requests = count_key(raw.min_requests, &key.key("min_requests"), 0, 100, e);
    let trials = count_key(raw.trials, &key.key("trials"), 1, 1, e) as usize;
    let request_timeout = raw
        .request_timeout
        .as_deref()
        .and_then(|t| duration_key(t, &key.key("request_timeout"), false, e))
        .unwrap_or(Duration::from_secs(60));
    let replace_after_timeouts = count_key(
        raw.replace_after_timeouts,
        &key.key("replace_after_timeouts"),
        1,
        3,
        e,
    )
    .min(u64::from(u32::MAX)) as u32;
    let cooldown = raw
        .cooldown
        .as_deref()
        .and_then(|t| duration_key(t, &key.key("cooldown"), true, e))
        .unwrap_or(Duration::ZERO);
    Workload {
        mix,
        groups,
        warmup,
        stop,
        min_requests,
        trials,
        request_timeout,
        replace_after_timeouts,
        interleave: raw.interleave.unwrap_or(true),
        cooldown,
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
    let mut arrival = Arrival::Poisson;
    let mut max_in_flight = 10_000;
    // Allowed with a closed loop too, which ignores it: `bench capacity` probes such a scenario
    // with open loops.
    let spin = raw
        .spin
        .as_deref()
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
    let points = match kind {
        LoadKind::Closed => {
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
        LoadKind::Open => {
            if raw.concurrency.is_some() {
                e.push(
                    &key.key("concurrency"),
                    "`concurrency` applies to a closed loop only",
                    "an open loop sends at `rate` whatever is in flight; remove `concurrency`",
                );
            }
            max_in_flight =
                count_key(raw.max_in_flight, &key.key("max_in_flight"), 1, 10_000, e) as usize;
            arrival = match (raw.arrival.as_deref(), &raw.trace) {
                (None | Some("poisson"), None) => Arrival::Poisson,
                (Some("constant"), None) => Arrival::Constant,
                (None | Some("trace"), Some(t)) => match read_trace(&dir.join(t)) {
                    Ok(times) => Arrival::Trace(times),
                    Err(msg) => {
                        e.push(&key.key("trace"), msg, "a trace file lists inter-arrival times in microseconds, one per line; its path is relative to the scenario");
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
            };
            if let Arrival::Trace(times) = &arrival {
                if raw.rate.is_some() {
                    e.push(
                        &key.key("rate"),
                        "`rate` conflicts with a trace, which sets its own times",
                        "remove `rate`",
                    );
                }
                let mean_ns = times.iter().sum::<u64>() as f64 / times.len() as f64;
                vec![LoadPoint::Open {
                    rate: (1e9 / mean_ns * 1000.0).round() / 1000.0,
                }]
            } else {
                let rkey = key.key("rate");
                let Some(rates) = raw.rate.as_ref().map(OneOrMany::to_vec) else {
                    e.push(
                        &key,
                        "an open loop needs a target `rate` (requests per second)",
                        "e.g. `rate = [100, 200]`",
                    );
                    return (
                        LoadSpec {
                            kind,
                            arrival,
                            max_in_flight,
                            spin,
                        },
                        vec![LoadPoint::Open { rate: 1.0 }],
                    );
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
                            format!(
                                "rates must be above 0 and at most 10,000,000 per second, got {r}"
                            ),
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
        }
    };
    (
        LoadSpec {
            kind,
            arrival,
            max_in_flight,
            spin,
        },
        points,
    )
}

fn last_key(key: &KeyPath) -> String {
    match key.0.last() {
        Some(Seg::Key(k)) => k.clone(),
        _ => key.to_string(),
    }
}

/// The `[on_demand]` table: the workers' caps, and how many workers may load a model at once.
pub(super) fn resolve_on_demand(
    raw: Option<raw::RawOnDemand>,
    axes: &Axes,
    e: &mut Errors,
) -> (OnDemandCaps, usize) {
    let key = KeyPath::default().key("on_demand");
    let Some(raw) = raw else {
        let caps = OnDemandCaps {
            max_models: None,
            memory_budget_bytes: None,
        };
        return (caps, 1);
    };
    let parallel_loads = match raw.parallel_loads {
        None => 1,
        Some(n) if (1..=MAX_REPLICAS).contains(&n) => n as usize,
        Some(n) => {
            e.push(
                &key.key("parallel_loads"),
                format!("must be from 1 to {MAX_REPLICAS}, got {n}"),
                "e.g. `parallel_loads = 2` (workers that may load a model at the same time)",
            );
            1
        }
    };
    if !axes.placement.contains(&Placement::OnDemand) {
        e.push(
            &key,
            "`[on_demand]` applies to `placement = \"on-demand\"` only",
            "add \"on-demand\" to `sweep.placement`, or remove `[on_demand]`",
        );
    }
    let max_models = raw.max_models.map(|n| {
        if n < 1 {
            e.push(
                &key.key("max_models"),
                format!("must be at least 1, got {n}"),
                "e.g. `max_models = 2`",
            );
        }
        n.max(1) as usize
    });
    let memory_budget_bytes = raw.memory_budget_mib.and_then(|m| {
        if m > 0.0 && m.is_finite() {
            Some((m * 1024.0 * 1024.0) as u64)
        } else {
            e.push(
                &key.key("memory_budget_mib"),
                format!("must be a size in MiB above 0, got {m}"),
                "e.g. `memory_budget_mib = 512`",
            );
            None
        }
    });
    let caps = OnDemandCaps {
        max_models,
        memory_budget_bytes,
    };
    (caps, parallel_loads)
}

/// The `[replicas]` table: workers per model (by model index) for `placement = "replicas"`. Every
/// model needs at least one worker, and only the scenario's models may be named. Empty when the
/// table is absent (then `replicas` in the placement axis is an error).
pub(super) fn resolve_replicas(
    raw: Option<BTreeMap<String, i64>>,
    models: &[ModelSpec],
    axes: &Axes,
    e: &mut Errors,
) -> Vec<usize> {
    let key = KeyPath::default().key("replicas");
    let used = axes.placement.contains(&Placement::Replicas);
    let Some(raw) = raw else {
        if used {
            e.push(
                &KeyPath::default().key("sweep").key("placement"),
                "`replicas` needs a `[replicas]` table: how many workers hold each model",
                format!(
                    "add `[replicas]` with one line per model, e.g. `{} = 2`",
                    models.first().map_or("my_model", |m| m.name.as_str())
                ),
            );
        }
        return Vec::new();
    };
    if !used {
        e.push(
            &key,
            "`[replicas]` applies to `placement = \"replicas\"` only",
            "add \"replicas\" to `sweep.placement`, or remove `[replicas]`",
        );
    }
    let mut counts = vec![0usize; models.len()];
    for (name, &n) in &raw {
        let Some(m) = models.iter().position(|m| &m.name == name) else {
            e.push(
                &key.key(name),
                format!("no model is named `{name}`"),
                format!(
                    "name one of the scenario's models: {}",
                    models
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            continue;
        };
        if !(1..=MAX_REPLICAS).contains(&n) {
            e.push(
                &key.key(name),
                format!("must be from 1 to {MAX_REPLICAS} workers, got {n}"),
                format!("e.g. `{name} = 2`"),
            );
            continue;
        }
        counts[m] = n as usize;
    }
    for (m, _) in counts.iter().enumerate().filter(|(_, n)| **n == 0) {
        if !raw.contains_key(&models[m].name) {
            e.push(
                &key,
                format!(
                    "model `{}` has no replicas, so no worker would serve it",
                    models[m].name
                ),
                format!("add `{} = 1` to `[replicas]`", models[m].name),
            );
        }
    }
    counts
}

/// The most workers `[replicas]` gives one model (the process limit still applies to the sum).
const MAX_REPLICAS: i64 = 256;

/// The `[cuda]` table, and the combinations that need the CUDA provider.
pub(super) fn resolve_cuda(raw: Option<raw::RawCuda>, axes: &Axes, e: &mut Errors) -> CudaSpec {
    let key = KeyPath::default().key("cuda");
    let cuda = axes.provider.contains(&Provider::Cuda);
    if axes.transfer.contains(&Transfer::Device) && !cuda {
        e.push(
            &KeyPath::default().key("sweep").key("transfer"),
            "`device` keeps inputs in GPU memory, so it needs the CUDA provider",
            "add \"cuda\" to `sweep.provider`, or remove `device`",
        );
    }
    let Some(raw) = raw else {
        return CudaSpec::default();
    };
    if !cuda {
        e.push(
            &key,
            "`[cuda]` applies to `provider = \"cuda\"` only",
            "add \"cuda\" to `sweep.provider`, or remove `[cuda]`",
        );
    }
    let gpus = match raw.gpus {
        None => Vec::new(),
        Some(raw::RawGpus::Named(n)) if n == "round-robin" => Vec::new(),
        Some(raw::RawGpus::Named(n)) => {
            e.push(
                &key.key("gpus"),
                format!("unknown value `{n}`"),
                "use `\"round-robin\"` (every visible device in turn) or a list of device ids, e.g. `[0, 1]`",
            );
            Vec::new()
        }
        Some(raw::RawGpus::List(ids)) => {
            if ids.is_empty() {
                e.push(
                    &key.key("gpus"),
                    "the list is empty",
                    "list at least one device id, e.g. `gpus = [0]`, or use `\"round-robin\"`",
                );
            }
            ids.into_iter()
                .filter_map(|id| match u32::try_from(id) {
                    Ok(id) => Some(id),
                    Err(_) => {
                        e.push(
                            &key.key("gpus"),
                            format!("`{id}` is not a CUDA device id"),
                            "device ids count from 0, as `nvidia-smi -L` lists them",
                        );
                        None
                    }
                })
                .collect()
        }
    };
    let named = |v: Option<String>, k: &str, names: &[&str], e: &mut Errors| -> usize {
        let Some(v) = v else { return 0 };
        names.iter().position(|n| *n == v).unwrap_or_else(|| {
            e.push(
                &key.key(k),
                format!("unknown value `{v}`"),
                format!("use one of: {}", names.join(", ")),
            );
            0
        })
    };
    let conv_algo_search = ConvAlgoSearch::ALL[named(
        raw.conv_algo_search,
        "conv_algo_search",
        &ConvAlgoSearch::ALL.map(ConvAlgoSearch::name),
        e,
    )];
    let arena_extend_strategy = ArenaExtend::ALL[named(
        raw.arena_extend_strategy,
        "arena_extend_strategy",
        &ArenaExtend::ALL.map(ArenaExtend::name),
        e,
    )];
    let gpu_mem_limit_bytes = raw.gpu_mem_limit_mib.and_then(|m| {
        if m > 0.0 && m.is_finite() {
            Some((m * 1024.0 * 1024.0) as u64)
        } else {
            e.push(
                &key.key("gpu_mem_limit_mib"),
                format!("must be a size in MiB above 0, got {m}"),
                "e.g. `gpu_mem_limit_mib = 4096`",
            );
            None
        }
    });
    CudaSpec {
        gpus,
        conv_algo_search,
        arena_extend_strategy,
        gpu_mem_limit_bytes,
    }
}
