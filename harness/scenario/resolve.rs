//! Resolving the raw TOML into a [`Scenario`]: each table in turn (the models, the workload, the
//! load, the settings tables, the axes), then the checks that need several tables at once (a
//! placement against the worker counts, an axis value against another), the sweep's points, and
//! the checks of each point's memory and limits.
//!
//! [`resolve`] reads as that list of stages, in the order their problems are found; each table's
//! own rules live in its file (`model/`, `workload.rs`, `load_spec.rs`, `deployment.rs`, ...). A
//! stage that finds a problem pushes it and goes on with a default, so one run reports every
//! problem of the file.

use std::collections::HashSet;
use std::path::Path;

use super::error::{Errors, ScenarioError};
use super::model::{self, BatchUse};
use super::raw::{RawModel, RawScenario, RawSweep};
use super::samples::{MAX_SAMPLE_BYTES, MAX_SAMPLES_BYTES};
use super::source::KeyPath;
use super::spec::ModelSpec;
use super::sweep::{self, Point, expand};
use super::vocabulary::{Channel, Placement, Provider, Runtime, Transfer};
use super::{
    Axes, Scenario, axes, batching, deployment, limits, load_spec, shm, slo, torch, workload,
};

pub(super) fn resolve(
    raw: RawScenario,
    file: &Path,
    hash: String,
    e: &mut Errors,
) -> Option<Scenario> {
    let root = KeyPath::default();
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = raw.name.unwrap_or_else(|| {
        file.file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
    });
    let seed = raw.seed.unwrap_or(0);
    let samples = sample_count(raw.samples, e);
    let declared = declared_models(&raw.model, e);
    // The models are resolved at the first batch size; each point rebinds its own. Dynamic
    // batching needs each model's batch dim found, but bound to nothing.
    let first_batch = first_batch(raw.sweep.as_ref());
    let batching_axis = batching::resolve(raw.batching.as_ref(), e);
    let batch_use = match first_batch {
        Some(b) => BatchUse::Static(b),
        None if batching::batches(&batching_axis) => BatchUse::Dynamic,
        None => BatchUse::Off,
    };
    let (mut models, torch_keys) = resolve_models(raw.model, dir, seed, samples, batch_use, e);

    let workload =
        workload::resolve_workload(raw.workload.unwrap_or_default(), &models, &declared, e);
    let max_in_flight_set = raw.load.as_ref().is_some_and(|l| l.max_in_flight.is_some());
    let (load, load_points) = load_spec::resolve_load(raw.load.unwrap_or_default(), dir, e);
    let transfer =
        deployment::resolve_transfer(raw.transfer.unwrap_or_default(), &root.key("transfer"), e);
    let slo = slo::resolve(raw.slo.as_ref(), &root.key("slo"), e);
    let axes = axes::resolve(
        axes::Sources {
            sweep: raw.sweep.as_ref(),
            load: load_points,
            batching: batching_axis,
        },
        e,
    );
    batching::refuse_combinations(
        &axes.batching,
        first_batch.is_some(),
        &axes.transfer,
        &axes.runtime,
        e,
    );
    torch::resolve(
        &mut models,
        torch_keys,
        raw.torch,
        raw.parity,
        &axes.runtime,
        dir,
        e,
    );
    let (on_demand, parallel_loads) = deployment::resolve_on_demand(raw.on_demand, &axes, e);
    let replicas = deployment::resolve_replicas(raw.replicas, &models, &axes, e);
    check_replica_workers(&axes, &models, &replicas, e);
    let cuda = deployment::resolve_cuda(raw.cuda, &axes, e);
    check_dedicated_workers(&axes, models.len(), e);
    worker_concurrency_conflicts(&axes, &root.key("sweep").key("worker_concurrency"), e);
    check_spin_channel(&axes, e);
    let points = sweep_points(&axes, models.len(), replicas.iter().sum(), e);

    let mut scenario = Scenario {
        over_limit: Vec::new(),
        name,
        file: file.to_path_buf(),
        hash,
        seed,
        models,
        workload,
        load,
        slo,
        on_demand,
        parallel_loads,
        replicas,
        cuda,
        transfer,
        points,
        axes,
    };
    check_batch_samples(&scenario, samples, e);
    check_shm_budgets(&scenario, max_in_flight_set, e);
    scenario.over_limit = over_limit(&scenario.points, e);
    Some(scenario)
}

/// `samples`: distinct input samples generated per model, at least 1 (default 8).
fn sample_count(raw: Option<i64>, e: &mut Errors) -> usize {
    match raw {
        None => 8,
        Some(n) if n >= 1 => n as usize,
        Some(n) => {
            e.push(
                &KeyPath::default().key("samples"),
                format!("must be at least 1, got {n}"),
                "set `samples = 8` (distinct input samples generated per model)",
            );
            1
        }
    }
}

/// The names the `[[model]]` tables declare (whether or not they resolve), so a later table that
/// names a broken model is not refused a second time.
fn declared_models(raw: &[RawModel], e: &mut Errors) -> Vec<String> {
    if raw.is_empty() {
        e.push(
            &KeyPath::default().key("model"),
            "the scenario has no models",
            "add a [[model]] table with `name` and `path` (an .onnx file)",
        );
    }
    raw.iter().filter_map(|m| m.name.clone()).collect()
}

/// The first valid value of the `batch` axis: the batch size the models are resolved at.
fn first_batch(sweep: Option<&RawSweep>) -> Option<usize> {
    sweep
        .and_then(|s| s.batch.as_ref())
        .and_then(|b| b.to_vec().into_iter().find(|&v| v >= 1))
        .map(|v| v as usize)
}

/// Every `[[model]]` that resolves, each with its torch keys (taken out first: they are checked
/// once the runtimes are known), and every name given once.
fn resolve_models(
    raw: Vec<RawModel>,
    dir: &Path,
    seed: u64,
    samples: usize,
    batch_use: BatchUse,
    e: &mut Errors,
) -> (Vec<ModelSpec>, Vec<torch::ModelKeys>) {
    let mut models = Vec::new();
    let mut names = HashSet::new();
    let mut torch_keys = Vec::new();
    for (i, mut m) in raw.into_iter().enumerate() {
        let key = KeyPath::default().key("model").index(i);
        let keys = torch::ModelKeys::take(&mut m, key.clone());
        if let Some(spec) = model::resolve_model(m, &key, dir, seed, samples, batch_use, e) {
            torch_keys.push(keys);
            if !names.insert(spec.name.clone()) {
                e.push(
                    &key.key("name"),
                    format!("model name `{}` is used twice", spec.name),
                    "give each [[model]] a unique name",
                );
            }
            models.push(spec);
        }
    }
    (models, torch_keys)
}

/// `replicas` runs one worker per replica: the worker counts must include their sum.
fn check_replica_workers(axes: &Axes, models: &[ModelSpec], replicas: &[usize], e: &mut Errors) {
    let replica_workers: usize = replicas.iter().sum();
    if axes.placement.contains(&Placement::Replicas)
        && !replicas.is_empty()
        && replicas.iter().all(|&n| n > 0)
        && !axes.workers.contains(&replica_workers)
    {
        e.push(
            &KeyPath::default().key("sweep").key("workers"),
            format!(
                "`replicas` runs one worker per replica ({}), so it needs `workers` to include \
                 {replica_workers}",
                models
                    .iter()
                    .zip(replicas)
                    .map(|(m, n)| format!("{} {n}", m.name))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
            format!(
                "add {replica_workers} to `sweep.workers` (other counts run the other placements \
                 only), or change `[replicas]`"
            ),
        );
    }
}

/// `dedicated` runs one worker per model: the worker counts must include the model count.
fn check_dedicated_workers(axes: &Axes, models: usize, e: &mut Errors) {
    if axes.placement.contains(&Placement::Dedicated)
        && !axes.workers.contains(&models)
        && models > 0
    {
        e.push(
            &KeyPath::default().key("sweep").key("placement"),
            format!(
                "`dedicated` runs one worker per model, so it needs `workers` to include {models}"
            ),
            format!("add {models} to `sweep.workers`, or remove `dedicated`"),
        );
    }
}

/// Why `worker_concurrency` above 1 cannot combine with the other axes: each reason names the axis
/// value that runs one request per worker at a time.
fn worker_concurrency_conflicts(axes: &Axes, key: &KeyPath, e: &mut Errors) {
    if !axes.worker_concurrency.iter().any(|&k| k > 1) {
        return;
    }
    let mut why = Vec::new();
    for r in &axes.runtime {
        match r {
            Runtime::Ort => {}
            Runtime::Tract => why.push(
                "runtime `tract` runs one request per worker at a time (its plans are not shared \
                 between threads here)",
            ),
            Runtime::Torch => why.push(
                "runtime `torch` runs one request per worker at a time (its Python worker has one \
                 thread)",
            ),
        }
    }
    if axes.transfer.contains(&Transfer::Device) {
        why.push(
            "transfer `device` runs through one IoBinding per sample, which two runs at once \
             cannot share",
        );
    }
    if axes.placement.contains(&Placement::OnDemand) {
        why.push(
            "placement `on-demand` loads and evicts models while it serves, one request at a time",
        );
    }
    for w in why {
        e.push(
            key,
            format!("worker_concurrency above 1 cannot run here: {w}"),
            "sweep that value in a separate scenario, or keep `worker_concurrency = 1`",
        );
    }
}

/// The Python worker of the torch runtime speaks only the socket channel.
fn check_spin_channel(axes: &Axes, e: &mut Errors) {
    if axes.channel.contains(&Channel::Spin) && axes.runtime.contains(&Runtime::Torch) {
        e.push(
            &KeyPath::default().key("sweep").key("channel"),
            "channel `spin` with runtime `torch`: the Python worker speaks only the socket channel",
            "sweep `channel` over the ort and tract runtimes only, or drop `spin`",
        );
    }
}

/// The sweep's points that run, numbered from 0: the expansion of the axes without the
/// combinations that cannot run (numbered again after).
fn sweep_points(axes: &Axes, models: usize, replica_workers: usize, e: &mut Errors) -> Vec<Point> {
    let points = match expand(axes) {
        Ok(p) => p,
        Err(n) => {
            e.push(
                &KeyPath::default().key("sweep"),
                format!(
                    "the sweep expands to {n} points, more than the limit of {}",
                    sweep::MAX_POINTS
                ),
                "split the sweep into several scenarios or shorten the axis lists",
            );
            Vec::new()
        }
    };
    // Dedicated placement runs one worker per model: its points with another count are not
    // run (validate lists what was dropped).
    points
        .into_iter()
        .filter(|p| p.placement != Placement::Dedicated || p.workers == models)
        // So does `replicas`, with the sum of `[replicas]`.
        .filter(|p| p.placement != Placement::Replicas || p.workers == replica_workers)
        // GPU-resident inputs exist only on the GPU.
        .filter(|p| p.transfer != Transfer::Device || p.provider == Provider::Cuda)
        .enumerate()
        .map(|(i, mut p)| {
            p.index = i;
            p
        })
        .collect()
}

/// Each value of the `batch` axis: the samples of every model at that batch within the limits.
fn check_batch_samples(s: &Scenario, samples: usize, e: &mut Errors) {
    let batch_key = KeyPath::default().key("sweep").key("batch");
    for &b in s.axes.batch.iter().flatten() {
        for m in &s.models {
            let bytes = m.sample_bytes_at(b);
            let over = match bytes {
                None => true,
                Some(n) => n > MAX_SAMPLE_BYTES || n.saturating_mul(samples) > MAX_SAMPLES_BYTES,
            };
            if over {
                e.push(
                    &batch_key,
                    format!(
                        "at batch {b}, the samples of model `{}` need more than the limits of \
                         {} MiB per sample and {} MiB in all",
                        m.name,
                        MAX_SAMPLE_BYTES >> 20,
                        MAX_SAMPLES_BYTES >> 20
                    ),
                    "lower the largest `batch` value, or `samples`",
                );
            }
        }
    }
}

/// The shm arena of each `shm` point within `[transfer] shm_budget_mib`. The arena is sized from
/// the samples, so each batch size is checked with its own.
fn check_shm_budgets(s: &Scenario, max_in_flight_set: bool, e: &mut Errors) {
    let batch_key = KeyPath::default().key("sweep").key("batch");
    for &b in &s.axes.batch {
        let at: Vec<Point> = s.points.iter().filter(|p| p.batch == b).cloned().collect();
        if !at.iter().any(|p| p.transfer == Transfer::Shm) {
            continue;
        }
        let rebound;
        let ms = match b {
            None => &s.models,
            // Samples too large were refused above; nothing to size then.
            Some(_) if !e.list.is_empty() => continue,
            Some(b) => match s
                .models
                .iter()
                .map(|m| m.at_batch(b))
                .collect::<anyhow::Result<Vec<_>>>()
            {
                Ok(ms) => {
                    rebound = ms;
                    &rebound
                }
                Err(err) => {
                    e.push(&batch_key, format!("{err:#}"), "fix the input's generator");
                    continue;
                }
            },
        };
        for p in shm::check(
            ms,
            &s.workload,
            &s.load,
            &at,
            s.transfer.shm_budget_mib,
            max_in_flight_set,
        ) {
            e.push(&p.key, p.message, p.hint);
        }
    }
}

/// The points past a limit on what one point may start ([`limits`]), one problem per limit: not
/// errors of the file, but refused by a command unless forced.
fn over_limit(points: &[Point], e: &Errors) -> Vec<ScenarioError> {
    limits::check(points, limits::usable_cpus())
        .into_iter()
        .map(|o| {
            e.at(
                &KeyPath::default().key("sweep").key(o.key),
                o.message,
                o.hint,
            )
        })
        .collect()
}
