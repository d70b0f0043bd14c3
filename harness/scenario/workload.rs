//! Resolving `[workload]` (what requests ask for, warm-up, stopping rule, trials), `[load]`
//! (closed or open loop, arrivals) and the tables beside `[sweep]` (its axes are read in
//! [`super::axes`]).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use super::error::Errors;
use super::raw;
use super::source::KeyPath;
use super::spec::{Group, Limit, ModelSpec, StopRule, Target, Workload};
// `batching.rs` reads `duration_key` here.
use super::values::count_key;
pub(super) use super::values::duration_key;

pub(super) fn resolve_workload(
    raw: raw::RawWorkload,
    models: &[ModelSpec],
    declared: &[String],
    e: &mut Errors,
) -> Workload {
    let key = KeyPath::default().key("workload");
    let groups = resolve_groups(&raw.groups, models, declared, &key, e);
    let mix = resolve_mix(&raw, models, &groups, declared, &key, e);
    let warmup = resolve_warmup(&raw, &key, e);
    let stop = resolve_stop(&raw, &key, e);
    let min_requests = raw.min_requests.map(|_| {
        count_key(
            raw.min_requests,
            &key.key("min_requests"),
            0,
            super::spec::DEFAULT_MIN_REQUESTS,
            e,
        )
    });
    let max_duration = resolve_max_duration(&raw, stop, &key, e);
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
        max_duration,
        trials,
        request_timeout,
        replace_after_timeouts,
        interleave: raw.interleave.unwrap_or(true),
        cooldown,
    }
}

/// `[workload.groups]`: ensembles of the scenario's models, each member once. A group naming a
/// model that failed to resolve is left out quietly (the model has its own error).
fn resolve_groups(
    raw: &BTreeMap<String, Vec<String>>,
    models: &[ModelSpec],
    declared: &[String],
    key: &KeyPath,
    e: &mut Errors,
) -> Vec<Group> {
    let mut groups = Vec::new();
    for (name, members) in raw {
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
            match models.iter().position(|x| x.name == *m) {
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
    groups
}

/// `mix`: what requests ask for, with relative weights; every model and group once, weight 1,
/// when absent.
fn resolve_mix(
    raw: &raw::RawWorkload,
    models: &[ModelSpec],
    groups: &[Group],
    declared: &[String],
    key: &KeyPath,
    e: &mut Errors,
) -> Vec<(Target, f64)> {
    let Some(m) = &raw.mix else {
        return (0..models.len())
            .map(|i| (Target::Model(i), 1.0))
            .chain((0..groups.len()).map(|g| (Target::Group(g), 1.0)))
            .collect();
    };
    let mut mix = Vec::new();
    for (name, &w) in m {
        let mkey = key.key("mix").key(name);
        let target = models
            .iter()
            .position(|x| x.name == *name)
            .map(Target::Model)
            .or_else(|| {
                groups
                    .iter()
                    .position(|g| g.name == *name)
                    .map(Target::Group)
            });
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

/// `warmup` (a duration) or `warmup_requests` (a count), not both; one second by default.
fn resolve_warmup(raw: &raw::RawWorkload, key: &KeyPath, e: &mut Errors) -> Limit {
    match (&raw.warmup, raw.warmup_requests) {
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
    }
}

/// `stop`: `fixed` (the default) or `stable`, each with only its own keys.
fn resolve_stop(raw: &raw::RawWorkload, key: &KeyPath, e: &mut Errors) -> StopRule {
    match raw.stop.as_deref().unwrap_or("fixed") {
        "fixed" => fixed_stop(raw, key, e),
        "stable" => stable_stop(raw, key, e),
        other => {
            e.push(
                &key.key("stop"),
                format!("unknown stopping rule `{other}`"),
                "use `fixed` (a duration or request count) or `stable` (windows until 3 agree)",
            );
            StopRule::Fixed(Limit::Duration(Duration::from_secs(5)))
        }
    }
}

/// `stop = "fixed"`: a `duration` or a `requests` count, not both; five seconds by default.
fn fixed_stop(raw: &raw::RawWorkload, key: &KeyPath, e: &mut Errors) -> StopRule {
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
            duration_key(s, &key.key("duration"), false, e).unwrap_or(Duration::from_secs(5)),
        ),
        (None, Some(_)) => {
            Limit::Requests(count_key(raw.requests, &key.key("requests"), 1, 1000, e))
        }
        (None, None) => Limit::Duration(Duration::from_secs(5)),
    })
}

/// `max_duration`: the cap of a `duration` measurement that runs on to reach `min_requests`; at
/// least the duration. Other stop rules have their own end (a count, or `max_windows`).
fn resolve_max_duration(
    raw: &raw::RawWorkload,
    stop: StopRule,
    key: &KeyPath,
    e: &mut Errors,
) -> Duration {
    let default = super::spec::DEFAULT_MAX_DURATION;
    let Some(text) = raw.max_duration.as_deref() else {
        return default;
    };
    let k = key.key("max_duration");
    let Some(cap) = duration_key(text, &k, false, e) else {
        return default;
    };
    match stop {
        StopRule::Fixed(Limit::Duration(d)) if raw.duration.is_some() && cap < d => e.push(
            &k,
            format!(
                "`max_duration` ({}) is shorter than `duration` ({})",
                humantime::format_duration(cap),
                humantime::format_duration(d)
            ),
            "the cap bounds a measurement that runs past `duration`: make it at least as long",
        ),
        StopRule::Fixed(Limit::Duration(_)) => {}
        StopRule::Fixed(Limit::Requests(_)) => e.push(
            &k,
            "`max_duration` applies to a `duration` measurement only",
            "a `requests` measurement runs until its count: remove `max_duration`",
        ),
        StopRule::Stable { .. } => e.push(
            &k,
            "`max_duration` applies to `stop = \"fixed\"` only",
            "the stable rule stops after `max_windows` windows at most",
        ),
    }
    cap
}

/// `stop = "stable"`: `window`-long windows until 3 agree within `tolerance_pct`, at most
/// `max_windows`.
fn stable_stop(raw: &raw::RawWorkload, key: &KeyPath, e: &mut Errors) -> StopRule {
    for (k, set) in [
        ("duration", raw.duration.is_some()),
        ("requests", raw.requests.is_some()),
    ] {
        if set {
            e.push(
                &key.key(k),
                format!("`{k}` applies to `stop = \"fixed\"` only"),
                "a stable measurement runs `window`-long windows until 3 agree, at most `max_windows`",
            );
        }
    }
    let StopRule::Stable {
        window: default_window,
        tolerance_pct: default_tolerance,
        max_windows: default_max,
    } = StopRule::STABLE
    else {
        unreachable!("a stable rule")
    };
    let window = raw.window.as_deref().map_or(Some(default_window), |w| {
        duration_key(w, &key.key("window"), false, e)
    });
    let tolerance_pct = match raw.tolerance_pct {
        None => default_tolerance,
        Some(t) if t > 0.0 && t.is_finite() => t,
        Some(t) => {
            e.push(
                &key.key("tolerance_pct"),
                format!("must be a percentage above 0, got {t}"),
                "e.g. `tolerance_pct = 10`",
            );
            default_tolerance
        }
    };
    let max_windows = count_key(
        raw.max_windows,
        &key.key("max_windows"),
        3,
        default_max as u64,
        e,
    ) as usize;
    StopRule::Stable {
        window: window.unwrap_or(default_window),
        tolerance_pct,
        max_windows,
    }
}
