//! Resolving the settings tables of the deployment choices: `[on_demand]` (the on-demand
//! placement's caps), `[replicas]` (workers per model for the `replicas` placement), `[cuda]` (the
//! CUDA provider's options) and `[transfer]` (the `shm` arena's budget and the `spin` channel).
//!
//! Each table tunes one value of a sweep axis, so each is read against the resolved axes: a table
//! whose axis value is not swept is an error, as is an axis value that needs a table it lacks.

use std::collections::BTreeMap;

use super::error::Errors;
use super::raw;
use super::source::KeyPath;
use super::spec::{CudaSpec, ModelSpec, OnDemandCaps};
use super::vocabulary::{ArenaExtend, ConvAlgoSearch, Placement, Provider, SpinWhen, Transfer};
use super::{Axes, DEFAULT_SPIN_MAX_US, MAX_SPIN_MAX_US, TransferSpec, shm};

/// `[transfer]`: `shm_budget_mib` from 1 MiB to [`shm::MAX_BUDGET_MIB`], default
/// [`shm::DEFAULT_BUDGET_MIB`].
pub(super) fn resolve_transfer(
    raw: raw::RawTransfer,
    key: &KeyPath,
    e: &mut Errors,
) -> TransferSpec {
    let shm_budget_mib = match raw.shm_budget_mib {
        None => shm::DEFAULT_BUDGET_MIB,
        Some(n) if (1..=shm::MAX_BUDGET_MIB as i64).contains(&n) => n as u64,
        Some(n) => {
            e.push(
                &key.key("shm_budget_mib"),
                format!("must be from 1 to {}, got {n}", shm::MAX_BUDGET_MIB),
                format!(
                    "set `shm_budget_mib = {}` (MiB the shm arena may come to hold)",
                    shm::DEFAULT_BUDGET_MIB
                ),
            );
            shm::DEFAULT_BUDGET_MIB
        }
    };
    let spin = match raw.spin.as_deref() {
        None | Some("auto") => SpinWhen::Auto,
        Some("always") => SpinWhen::Always,
        Some(other) => {
            e.push(
                &key.key("spin"),
                format!("unknown value `{other}`"),
                "use `auto` (spin only while the point's threads fit the CPUs) or `always`",
            );
            SpinWhen::Auto
        }
    };
    let spin_max_us = match raw.spin_max_us {
        None => DEFAULT_SPIN_MAX_US,
        Some(n) if (0..=MAX_SPIN_MAX_US as i64).contains(&n) => n as u64,
        Some(n) => {
            e.push(
                &key.key("spin_max_us"),
                format!("must be from 0 to {MAX_SPIN_MAX_US}, got {n}"),
                format!("set `spin_max_us = {DEFAULT_SPIN_MAX_US}` (0 never spins)"),
            );
            DEFAULT_SPIN_MAX_US
        }
    };
    TransferSpec {
        shm_budget_mib,
        spin,
        spin_max: std::time::Duration::from_micros(spin_max_us),
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
    let gpus = resolve_gpus(raw.gpus, &key.key("gpus"), e);
    let conv_algo_search = ConvAlgoSearch::ALL[named_value(
        raw.conv_algo_search,
        &key.key("conv_algo_search"),
        &ConvAlgoSearch::ALL.map(ConvAlgoSearch::name),
        e,
    )];
    let arena_extend_strategy = ArenaExtend::ALL[named_value(
        raw.arena_extend_strategy,
        &key.key("arena_extend_strategy"),
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

/// `gpus`: `"round-robin"` (the default: empty) or a list of CUDA device ids.
fn resolve_gpus(raw: Option<raw::RawGpus>, key: &KeyPath, e: &mut Errors) -> Vec<u32> {
    match raw {
        None => Vec::new(),
        Some(raw::RawGpus::Named(n)) if n == "round-robin" => Vec::new(),
        Some(raw::RawGpus::Named(n)) => {
            e.push(
                key,
                format!("unknown value `{n}`"),
                "use `\"round-robin\"` (every visible device in turn) or a list of device ids, e.g. `[0, 1]`",
            );
            Vec::new()
        }
        Some(raw::RawGpus::List(ids)) => {
            if ids.is_empty() {
                e.push(
                    key,
                    "the list is empty",
                    "list at least one device id, e.g. `gpus = [0]`, or use `\"round-robin\"`",
                );
            }
            ids.into_iter()
                .filter_map(|id| match u32::try_from(id) {
                    Ok(id) => Some(id),
                    Err(_) => {
                        e.push(
                            key,
                            format!("`{id}` is not a CUDA device id"),
                            "device ids count from 0, as `nvidia-smi -L` lists them",
                        );
                        None
                    }
                })
                .collect()
        }
    }
}

/// The position of `v` among `names` (0, the default, when absent or unknown: unknown is an
/// error that lists the names).
fn named_value(v: Option<String>, key: &KeyPath, names: &[&str], e: &mut Errors) -> usize {
    let Some(v) = v else { return 0 };
    names.iter().position(|n| *n == v).unwrap_or_else(|| {
        e.push(
            key,
            format!("unknown value `{v}`"),
            format!("use one of: {}", names.join(", ")),
        );
        0
    })
}
