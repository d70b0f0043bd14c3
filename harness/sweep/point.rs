//! Measures one point: start its pool, warm up, run every trial, shut the pool down, and return
//! what was measured as a [`PointResult`]. The sweep calls it for each point; `bench capacity` for
//! each probe.

use anyhow::Context;

use crate::load::{self, PhaseResult, PhaseRule};
use crate::metrics::{self, Record};
use crate::pool::runtime::ortlib::OrtLib;
use crate::pool::worker::pool::{Pool, Supervision, WorkerInfo};
use crate::report::json;
use crate::report::{Row, hlog};
use crate::scenario::{Limit, Point, Provider, Scenario};

use super::rows::{
    self, error_notes, failed_row, mark_unsupported, unsupported_notes, unsupported_rows,
};
use super::setup;

/// What one point yields.
#[derive(Debug, Default)]
pub(crate) struct PointResult {
    /// One row per model, per group and `all`; empty when cancelled before a trial finished.
    pub(crate) rows: Vec<Row>,
    /// Each worker's start, load times, memory and requests served (for run.json).
    pub(crate) workers: Vec<json::WorkerReport>,
    /// Lines for stderr: failed requests by kind, replaced workers, unsupported models.
    pub(crate) notes: Vec<String>,
    /// The point's histograms as an interval log; `None` when nothing was measured.
    pub(crate) hlog: Option<Vec<u8>>,
}

/// Measures one point: starts its pool, warms up, runs every trial, shuts the pool down. Returns
/// the point's rows (none if cancelled before a trial finished), its workers, notes for stderr and
/// its histogram log. `bench capacity` calls it for each probe; the sweep calls [`measure`] and
/// [`finish`] to interleave the trials of its points.
pub(crate) async fn run(
    scenario: &Scenario,
    ort: Option<&OrtLib>,
    point: &Point,
    cancel: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<PointResult> {
    match measure(scenario, ort, point, cancel, 0..scenario.workload.trials).await? {
        Step::Done(r) => Ok(r),
        Step::Measured(m) => finish(scenario, point, vec![*m]),
    }
}

/// What one pool of a point measured: its warm-up and some of its trials.
#[derive(Debug)]
pub(crate) struct Measured {
    /// The scenario without the models the point's runtime cannot run, when there are such, and
    /// at the point's batch size when it has one.
    narrowed: Option<Scenario>,
    unsupported: Vec<Option<String>>,
    warm: Option<PhaseResult>,
    trials: Vec<PhaseResult>,
    /// When each trial began.
    trial_starts: Vec<std::time::SystemTime>,
    infos: Vec<WorkerInfo>,
    reports: Vec<json::WorkerReport>,
    rss_per_worker: Vec<u64>,
    /// The workers' highest resident memory together at one moment (sampled).
    peak_rss: Option<u64>,
    steal: Option<f64>,
    /// CPU time of the parent and of the workers over the trials (each trial's run alone, not the
    /// cool-downs between them), and the trials' wall time.
    cpu: metrics::CpuSpent,
    devices: Vec<u32>,
    utilisation: Option<crate::metrics::gpu::Utilisation>,
    gpu_memory: Option<std::collections::HashMap<u32, u64>>,
    restarts: (u64, std::time::Duration),
    started: std::time::SystemTime,
    notes: Vec<String>,
}

/// A point's pool after [`measure`]: its measurements, or already the point's whole result (it
/// could not start, or no model of it runs on its runtime).
#[derive(Debug)]
pub(crate) enum Step {
    Measured(Box<Measured>),
    Done(PointResult),
}

/// Starts the point's pool, warms up, runs the trials numbered `trials` (each trial's seed
/// depends on its number, so trial 2 measures the same requests alone or after trial 1) and shuts
/// the pool down.
pub(crate) async fn measure(
    scenario: &Scenario,
    ort: Option<&OrtLib>,
    point: &Point,
    cancel: &tokio::sync::watch::Receiver<bool>,
    trials: std::ops::Range<usize>,
) -> anyhow::Result<Step> {
    let (narrowed, unsupported, mut notes) = match narrow(scenario, point)? {
        Ok(n) => n,
        Err(done) => return Ok(Step::Done(done)),
    };
    let scenario = narrowed.as_ref().unwrap_or(scenario);
    let (pool, devices) = match start_pool(scenario, ort, point, &unsupported).await? {
        Ok(started) => started,
        Err(done) => return Ok(Step::Done(done)),
    };
    let infos: Vec<WorkerInfo> = pool.infos();
    let seed = scenario.seed ^ (point.index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let started = std::time::SystemTime::now();
    // GPU utilisation is sampled over warm-up and trials alike.
    let nvml = (!devices.is_empty()).then(crate::metrics::gpu::Nvml::open);
    // The workers' memory peak, all of them at one moment, over warm-up and trials.
    let rss_peak = crate::metrics::RssPeak::start(
        infos.iter().map(|i| i.pid).collect(),
        std::time::Duration::from_millis(10),
    );
    let sampler = match &nvml {
        Some(Ok(_)) => crate::metrics::gpu::Sampler::start(
            devices.clone(),
            std::time::Duration::from_millis(100),
        ),
        _ => None,
    };
    let phases = run_phases(&pool, scenario, point, seed, trials, cancel).await;
    let restarts = (pool.restarts.get(), pool.restart_max.get());
    let utilisation = sampler.map(crate::metrics::gpu::Sampler::stop);
    // GPU memory is read while the workers still hold it.
    let gpu_memory = match &nvml {
        Some(Ok(n)) => Some(n.memory_by_pid(&infos.iter().map(|i| i.pid).collect::<Vec<_>>())),
        _ => None,
    };
    let peak_rss = rss_peak.stop();
    let ends = pool.shutdown().await;
    let Phases {
        warm,
        trials,
        trial_starts,
        steal,
        cpu,
    } = phases?;
    let (rss_per_worker, reports) = worker_reports(&infos, ends, &mut notes);
    if let Some(Err(why)) = &nvml {
        notes.push(format!("point {}: {why}", point.id));
    }
    Ok(Step::Measured(Box::new(Measured {
        unsupported,
        warm,
        trials,
        trial_starts,
        infos,
        reports,
        rss_per_worker,
        peak_rss,
        steal,
        cpu,
        devices,
        utilisation,
        gpu_memory,
        restarts,
        started,
        notes,
        narrowed,
    })))
}

/// The scenario the point measures: at the point's batch size, when it has one (the shapes are
/// rebound and the samples generated for it here, so the stagers, the workers' own samples
/// (`index`), the shm arena and the rows all see the point's shapes), and without the models its
/// runtime cannot run (an operator tract lacks), which are reported as unsupported while the
/// point measures the others. Returns that scenario (`None`: the point's own), which models are
/// unsupported and why, and notes; or the point's whole result when no model of it runs.
#[allow(clippy::type_complexity)]
fn narrow(
    scenario: &Scenario,
    point: &Point,
) -> anyhow::Result<Result<(Option<Scenario>, Vec<Option<String>>, Vec<String>), PointResult>> {
    let batched = scenario
        .at_batch(point.batch)
        .with_context(|| format!("point {}: the samples at batch {:?}", point.id, point.batch))?;
    let at_batch = batched.as_ref().unwrap_or(scenario);
    let unsupported = crate::pool::runtime::unsupported(at_batch, point.runtime)?;
    let notes = unsupported_notes(at_batch, point, &unsupported);
    if !unsupported.iter().any(Option::is_some) {
        return Ok(Ok((batched, unsupported, notes)));
    }
    let drop: Vec<bool> = unsupported.iter().map(Option::is_some).collect();
    Ok(match at_batch.without(&drop) {
        Some(without) => Ok((Some(without), unsupported, notes)),
        None => Err(PointResult {
            rows: unsupported_rows(at_batch, point, &unsupported),
            workers: Vec::new(),
            notes,
            hlog: None,
        }),
    })
}

/// Starts the point's pool (leaving out the models in `unsupported`); returns it and the GPUs its
/// workers use. A GPU that is missing or unusable fails its points, not the whole sweep: that
/// start's error is the point's result.
async fn start_pool(
    scenario: &Scenario,
    ort: Option<&OrtLib>,
    point: &Point,
    unsupported: &[Option<String>],
) -> anyhow::Result<Result<(Pool, Vec<u32>), PointResult>> {
    let slots = crate::pool::transfer::slot_pool(scenario, point)?;
    let layout = slots.as_ref().map(|s| s.fd.layout());
    let policy = Supervision {
        request_timeout: scenario.workload.request_timeout,
        replace_after_timeouts: scenario.workload.replace_after_timeouts,
    };
    let mut setups = setup::setups(scenario, ort, point, layout);
    setup::leave_out(&mut setups, unsupported);
    let mut devices: Vec<u32> = setups
        .iter()
        .filter_map(|s| s.gpu.as_ref().map(|g| g.device))
        .collect();
    devices.sort_unstable();
    devices.dedup();
    match Pool::start_with(setups, slots, policy).await {
        Ok(mut pool) => {
            if point.placement == crate::scenario::Placement::OnDemand {
                pool.limit_parallel_loads(scenario.parallel_loads);
            }
            Ok(Ok((pool, devices)))
        }
        Err(e) if point.provider == Provider::Cuda => {
            let why = format!("{e:#}");
            let note = format!("point {} failed: {why}", point.id);
            Ok(Err(PointResult {
                rows: vec![failed_row(scenario, point, &why)],
                workers: Vec::new(),
                notes: vec![note],
                hlog: None,
            }))
        }
        Err(e) => Err(e),
    }
}

/// What a pool's phases measured.
struct Phases {
    warm: Option<PhaseResult>,
    trials: Vec<PhaseResult>,
    trial_starts: Vec<std::time::SystemTime>,
    steal: Option<f64>,
    cpu: metrics::CpuSpent,
}

/// The warm-up, then the trials numbered `trials` (until cancelled), with a cool-down between
/// them; the CPU time spent in each trial and the host's steal over all of them.
async fn run_phases(
    pool: &Pool,
    scenario: &Scenario,
    point: &Point,
    seed: u64,
    trials: std::ops::Range<usize>,
    cancel: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Phases> {
    let sending = load::Sending::of(point);
    let warm = match scenario.workload.warmup {
        Limit::Requests(0) => None,
        Limit::Duration(d) if d.is_zero() => None,
        limit => Some(
            load::run_phase(
                pool,
                scenario,
                sending,
                PhaseRule::Fixed(limit),
                seed,
                cancel,
            )
            .await?,
        ),
    };
    let mut done = Vec::new();
    let mut starts = Vec::new();
    let ticks = metrics::cpu_ticks();
    let mut cpu = metrics::CpuSpent::zero();
    let first = trials.start;
    for t in trials {
        if *cancel.borrow() {
            break;
        }
        if t > first && !scenario.workload.cooldown.is_zero() {
            tokio::time::sleep(scenario.workload.cooldown).await;
        }
        let rule = PhaseRule::measure(&scenario.workload);
        starts.push(std::time::SystemTime::now());
        // The CPU clocks are read just around the trial, of the workers serving it then: a worker
        // replaced during the trial has another pid at its end, which leaves the workers' CPU
        // unknown (see `metrics::CpuReading::until`).
        let restarts = pool.restarts.get();
        let before = metrics::CpuReading::now(&pids(pool));
        let phase =
            load::run_phase(pool, scenario, sending, rule, seed ^ (t as u64 + 1), cancel).await?;
        let mut spent = before.until(&metrics::CpuReading::now(&pids(pool)));
        if pool.restarts.get() != restarts {
            spent.others = None;
        }
        cpu.add(&spent);
        done.push(phase);
    }
    let steal = ticks
        .zip(metrics::cpu_ticks())
        .and_then(|(a, b)| metrics::steal_pct(a, b));
    Ok(Phases {
        warm,
        trials: done,
        trial_starts: starts,
        steal,
        cpu,
    })
}

/// Each worker's resident memory at its end and its report for run.json, from what it said at
/// start and at shutdown; a worker that did not shut down cleanly adds a warning to `notes` and
/// counts its memory at start.
fn worker_reports(
    infos: &[WorkerInfo],
    ends: Vec<anyhow::Result<(u64, u64)>>,
    notes: &mut Vec<String>,
) -> (Vec<u64>, Vec<json::WorkerReport>) {
    let mut rss_per_worker = Vec::new();
    let mut reports = Vec::new();
    let mut warnings = Vec::new();
    for (info, end) in infos.iter().zip(ends) {
        let (rss, served) = match end {
            Ok(v) => v,
            Err(e) => {
                warnings.push(format!("warning: {e:#}"));
                (info.rss_ready_bytes, 0)
            }
        };
        rss_per_worker.push(rss);
        reports.push(json::WorkerReport {
            worker: info.id,
            pid: info.pid,
            start_ms: info.start.as_secs_f64() * 1e3,
            load_ms: info
                .loads
                .iter()
                .map(|l| (l.model.clone(), l.load_ns as f64 / 1e6))
                .collect(),
            load_rss_mib: info
                .loads
                .iter()
                .map(|l| (l.model.clone(), mib(l.rss_bytes)))
                .collect(),
            rss_ready_mib: mib(info.rss_ready_bytes),
            rss_end_mib: mib(rss),
            requests_served: served,
            runtime: info.runtime.clone(),
        });
    }
    notes.extend(warnings);
    (rss_per_worker, reports)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The point's result from what its pools measured, in the order they ran: the trials and the
/// warm-ups of all of them, the first pool's workers, each worker's largest memory, the mean CPU
/// steal, the CPU time of every trial and every restart.
pub(crate) fn finish(
    scenario: &Scenario,
    point: &Point,
    rounds: Vec<Measured>,
) -> anyhow::Result<PointResult> {
    let Some((mut m, steal)) = merge_rounds(rounds) else {
        return Ok(PointResult::default());
    };
    let mut notes = std::mem::take(&mut m.notes);
    let scenario = m.narrowed.as_ref().unwrap_or(scenario);
    notes.extend(error_notes(point, &m.trials));
    notes.extend(rows::run_on_note(scenario, point, &m.trials));
    notes.extend(rows::percentile_note(point, &m.trials));
    if m.trials.is_empty() {
        return Ok(PointResult {
            rows: Vec::new(),
            workers: m.reports,
            notes,
            hlog: None,
        });
    }
    let mut rows = rows::rows(
        scenario,
        point,
        &m.infos,
        m.warm.as_ref(),
        &m.trials,
        rows::Memory {
            rss_per_worker: &m.rss_per_worker,
            peak_rss_bytes: m.peak_rss,
        },
        steal,
    );
    mark_unsupported(&mut rows, scenario, &m.unsupported);
    let cpu_cost = rows::CpuCost::of(&m.cpu, &m.trials);
    if cpu_cost.worker_cpu_us_per_req.is_none() && cpu_cost.parent_cpu_us_per_req.is_some() {
        notes.push(format!(
            "point {}: the workers' CPU time is unknown (a worker was replaced or exited during a \
             trial), so worker_cpu_us_per_req and cores_used are left empty",
            point.id
        ));
    }
    for r in &mut rows {
        set_gpu_columns(r, &m);
        cpu_cost.set(r);
        r.worker_restarts = m.restarts.0;
        r.restart_ms_max = (m.restarts.0 > 0).then_some(m.restarts.1.as_secs_f64() * 1e3);
    }
    if m.restarts.0 > 0 {
        notes.push(format!(
            "point {}: {} worker(s) replaced",
            point.id, m.restarts.0
        ));
    }
    // The log starts with the first trial, as the intervals count from it.
    let first = m.trial_starts.first().copied().unwrap_or(m.started);
    let hlog = encode_hlog(
        scenario,
        point,
        first,
        m.warm.as_ref(),
        &m.trials,
        &m.trial_starts,
    )?;
    Ok(PointResult {
        rows,
        workers: m.reports,
        notes,
        hlog: Some(hlog),
    })
}

/// The rounds of a point as one measurement, in the order they ran, and the mean CPU steal over
/// them; `None` when there was none.
fn merge_rounds(rounds: impl IntoIterator<Item = Measured>) -> Option<(Measured, Option<f64>)> {
    let mut rounds = rounds.into_iter();
    let mut m = rounds.next()?;
    let mut steals: Vec<f64> = m.steal.into_iter().collect();
    for r in rounds {
        // Every pool warmed up: all of it is counted (warm-up requests, first runs, cold starts).
        match (&mut m.warm, &r.warm) {
            (Some(w), Some(o)) => w.absorb(o),
            (None, Some(o)) => m.warm = Some(o.clone()),
            _ => {}
        }
        m.trials.extend(r.trials);
        m.trial_starts.extend(r.trial_starts);
        for (a, b) in m.rss_per_worker.iter_mut().zip(&r.rss_per_worker) {
            *a = (*a).max(*b);
        }
        steals.extend(r.steal);
        m.cpu.add(&r.cpu);
        m.restarts = (m.restarts.0 + r.restarts.0, m.restarts.1.max(r.restarts.1));
        m.notes.extend(r.notes);
    }
    let steal = (!steals.is_empty()).then(|| steals.iter().sum::<f64>() / steals.len() as f64);
    Some((m, steal))
}

/// A row's GPU columns: the GPUs the point's workers used, their memory per worker and together,
/// and the devices' utilisation over the point.
fn set_gpu_columns(r: &mut Row, m: &Measured) {
    r.gpus = m
        .devices
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(";");
    if let Some(memory) = &m.gpu_memory {
        let per: Vec<u64> = m
            .infos
            .iter()
            .map(|i| memory.get(&i.pid).copied().unwrap_or(0))
            .collect();
        r.gpu_mem_mib = Some(mib(per.iter().sum()));
        r.gpu_mem_per_worker_mib = per
            .iter()
            .map(|&b| format!("{:.1}", mib(b)))
            .collect::<Vec<_>>()
            .join(";");
    }
    if let Some(u) = m.utilisation.filter(|u| u.samples > 0) {
        r.gpu_util_mean_pct = Some(u.mean_pct);
        r.gpu_util_max_pct = Some(u.max_pct);
    }
}

/// The pids of the pool's workers now, in worker order (a replaced worker's successor has its
/// place).
fn pids(pool: &Pool) -> Vec<u32> {
    pool.infos().iter().map(|i| i.pid).collect()
}

/// The point's histograms, every trial, as an interval log (see [`hlog`]): each trial's interval
/// starts when it began, from `started`, so interleaved trials show where they ran. The warm-up's
/// cold starts go into the first trial's `cold_start` histograms, so the log holds every cold start
/// the `cold_starts` column counts, and a report can check an SLO with all of them.
fn encode_hlog(
    scenario: &Scenario,
    point: &Point,
    started: std::time::SystemTime,
    warm: Option<&PhaseResult>,
    trials: &[PhaseResult],
    trial_starts: &[std::time::SystemTime],
) -> anyhow::Result<Vec<u8>> {
    let names: Vec<&str> = scenario
        .models
        .iter()
        .map(|m| m.name.as_str())
        .chain(scenario.workload.groups.iter().map(|g| g.name.as_str()))
        .chain(["all"])
        .collect();
    // In `names`' order.
    fn records(t: &PhaseResult) -> Vec<&Record> {
        t.result
            .models
            .iter()
            .chain(&t.result.groups)
            .chain([&t.result.all])
            .collect()
    }
    // The first trial's records with the warm-up's cold starts added, when it had any.
    let first: Option<Vec<Record>> = match (trials.first(), warm) {
        (Some(t), Some(w)) if records(w).iter().any(|r| !r.cold.is_empty()) => Some(
            records(t)
                .into_iter()
                .zip(records(w))
                .map(|(r, w)| {
                    let mut r = r.clone();
                    r.cold
                        .add(&w.cold)
                        .expect("histograms with equal bounds merge");
                    r
                })
                .collect(),
        ),
        _ => None,
    };
    let mut intervals = Vec::new();
    for (i, (t, at)) in trials.iter().zip(trial_starts).enumerate() {
        let start = at.duration_since(started).unwrap_or_default();
        let recs: Vec<&Record> = match (i, &first) {
            (0, Some(first)) => first.iter().collect(),
            _ => records(t),
        };
        intervals.push(hlog::Interval {
            start,
            span: t.span,
            records: names.iter().copied().zip(recs).collect(),
        });
    }
    let mut out = Vec::new();
    hlog::encode(&mut out, &point.id, started, &intervals)?;
    Ok(out)
}
