//! Runs a sweep: for each point, start its worker pool, warm up, measure, shut the pool down and hand
//! the point's rows to the reporters before the next point starts.

use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::load::{self, FirstRuns, PhaseResult, PhaseRule};
use crate::metrics::{self, Percentiles, Record, Summary, spread};
use crate::protocol::{GpuSetup, Setup, SetupModel};
use crate::report::csv::CsvReport;
use crate::report::json::{self, Host, RunInfo, ScenarioInfo};
use crate::report::{Row, console, hlog, write_atomic};
use crate::runtime::ortlib::OrtLib;
use crate::scenario::{Limit, Pin, Placement, Point, Provider, Runtime, Scenario, Transfer, slo};
use crate::shard::ShardInfo;
use crate::transfer::shm::{ShmArena, ShmLayout, region_len_for};
use crate::worker::pool::{Pool, SlotPool, Supervision, WorkerInfo};

/// How a sweep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every point measured and valid.
    Clean,
    /// Every point measured, but some are invalid (errors, unstable, too few requests, generator
    /// behind, SLO missed).
    Invalid,
    /// Stopped by SIGINT or SIGTERM (the signal number).
    Interrupted(i32),
}

/// Options that come from the command line.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub out_dir: PathBuf,
    pub progress: bool,
    /// The PM QoS CPU wake-up latency held during the sweep, if any (recorded in run.json).
    pub cpu_dma_latency_us: Option<u32>,
    /// Keep the points already in `out_dir` and run only the others.
    pub resume: bool,
    /// `--shard`: the scenario's points are already this shard's (recorded in run.json).
    pub shard: Option<ShardInfo>,
}

/// Runs every point of `scenario`, writing `results.csv` and `run.json` under `opts.out_dir`.
pub async fn sweep(
    scenario: &Scenario,
    ort: Option<&OrtLib>,
    opts: &SweepOptions,
) -> anyhow::Result<(Outcome, Vec<Row>)> {
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create the output folder {}", opts.out_dir.display()))?;
    let csv_path = opts.out_dir.join("results.csv");
    let json_path = opts.out_dir.join("run.json");
    let mut info = run_info(scenario, ort);
    info.cpu_dma_latency_us = opts.cpu_dma_latency_us;
    info.shard = opts.shard.clone();
    // Resuming keeps the finished points of an earlier run of the same scenario.
    let (mut csv, done) = if opts.resume {
        let earlier: serde_json::Value = std::fs::read(&json_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .with_context(|| {
                format!(
                    "--resume: {} has no readable run.json",
                    opts.out_dir.display()
                )
            })?;
        let hash = earlier["scenario"]["sha256"].as_str().unwrap_or_default();
        anyhow::ensure!(
            hash == scenario.hash,
            "--resume: the results in {} come from a different scenario file (sha256 {hash}); \
             resume with the same file, or sweep into a new --out",
            opts.out_dir.display()
        );
        check_resumed_shard(&opts.out_dir, &earlier, opts.shard.as_ref())?;
        let csv = CsvReport::resume(&csv_path)?;
        let done: std::collections::HashSet<String> =
            csv.rows().iter().map(|r| r.point_id.clone()).collect();
        if let Some(points) = earlier.get("points").cloned() {
            info.points = serde_json::from_value(points).unwrap_or_default();
        }
        info.points.retain(|p| done.contains(&p.point_id));
        info.points_done = info.points.len();
        (csv, done)
    } else {
        (CsvReport::new(&csv_path), Default::default())
    };
    csv.append(Vec::new())?;
    write_json(&json_path, &info)?;

    let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
    let signal = tokio::spawn(wait_for_signal(cancel_tx));

    let bar = if opts.progress {
        ProgressBar::new(scenario.points.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} points, ETA {eta}  {msg}",
        )
        .expect("valid template"),
    );
    let mut outcome = Outcome::Clean;
    for point in &scenario.points {
        if *cancel.borrow() {
            break;
        }
        if done.contains(&point.id) {
            bar.inc(1);
            continue;
        }
        bar.set_message(point.id.clone());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if point.workers * point.intra_threads > cores {
            bar.suspend(|| {
                eprintln!(
                    "warning: point {}: {} workers × {} intra-op threads exceed the {cores} logical cores \
                     (measured anyway; the CSV flags it as oversubscribed)",
                    point.id, point.workers, point.intra_threads
                )
            });
        }
        let (rows, workers, notes, hlog) = run_point(scenario, ort, point, &cancel)
            .await
            .with_context(|| format!("sweep point {} ({})", point.index, point.id))?;
        for note in notes {
            bar.suspend(|| eprintln!("{note}"));
        }
        if *cancel.borrow() {
            // The point was cut short: its numbers would mislead, so it is dropped (run.json says so).
            info.dropped_point = Some(point.id.clone());
            break;
        }
        if rows.iter().any(|r| !r.valid) {
            outcome = Outcome::Invalid;
        }
        if let Some(bytes) = hlog {
            write_hlog(&opts.out_dir, &point.id, &bytes)?;
        }
        csv.append(rows)?;
        info.points.push(json::PointInfo {
            point: point.index,
            point_id: point.id.clone(),
            workers,
            parent_rss_mib: crate::worker::child::rss_bytes() as f64 / (1024.0 * 1024.0),
        });
        info.points_done += 1;
        write_json(&json_path, &info)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    signal.abort();
    let signal = signal.await.ok().flatten();
    if let Some(sig) = signal.or_else(|| cancel.borrow().then_some(libc::SIGINT)) {
        outcome = Outcome::Interrupted(sig);
        info.interrupted = true;
    }
    info.finished_unix_s = Some(json::unix_now());
    write_json(&json_path, &info)?;
    Ok((outcome, csv.rows().to_vec()))
}

/// A sharded sweep resumes only as the same shard (the folder's points belong to it).
fn check_resumed_shard(
    dir: &Path,
    earlier: &serde_json::Value,
    now: Option<&ShardInfo>,
) -> anyhow::Result<()> {
    let was: Option<ShardInfo> = serde_json::from_value(earlier["shard"].clone()).unwrap_or(None);
    let (was, now) = (was.map(|s| s.shard()), now.map(|s| s.shard()));
    match (was, now) {
        (a, b) if a == b => Ok(()),
        (Some(a), _) => anyhow::bail!(
            "--resume: {} holds shard {a} of the sweep; resume it with --shard {a}",
            dir.display()
        ),
        (None, _) => anyhow::bail!(
            "--resume: {} holds a whole sweep, not a shard; resume it without --shard",
            dir.display()
        ),
    }
}

pub(crate) async fn wait_for_signal(tx: tokio::sync::watch::Sender<bool>) -> Option<i32> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).ok()?;
    let mut term = signal(SignalKind::terminate()).ok()?;
    let sig = tokio::select! {
        _ = int.recv() => libc::SIGINT,
        _ = term.recv() => libc::SIGTERM,
    };
    let _ = tx.send(true);
    Some(sig)
}

fn write_json(path: &Path, info: &RunInfo) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(info)?;
    write_atomic(path, &bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn run_info(s: &Scenario, ort: Option<&OrtLib>) -> RunInfo {
    RunInfo {
        bench_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: env!("BENCH_GIT_COMMIT").into(),
        rustc: env!("BENCH_RUSTC_VERSION").into(),
        ort_version: ort.map_or_else(
            || "not loaded (no model runs under ort)".into(),
            |o| o.version.clone(),
        ),
        ort_library: ort.map_or_else(String::new, |o| o.path.display().to_string()),
        host: Host::detect(),
        scenario: ScenarioInfo {
            name: s.name.clone(),
            file: s.file.display().to_string(),
            sha256: s.hash.clone(),
            seed: s.seed,
            models: s
                .models
                .iter()
                .map(|m| json::ModelInfo {
                    name: m.name.clone(),
                    path: m.describe_source(),
                    inputs: m
                        .inputs
                        .iter()
                        .map(|i| format!("{}: {} {:?}", i.name, i.dtype, i.shape))
                        .collect(),
                    input_seeds: m.inputs.iter().map(|i| i.seed).collect(),
                })
                .collect(),
        },
        started_unix_s: json::unix_now(),
        finished_unix_s: None,
        points_total: s.points.len(),
        points_done: 0,
        interrupted: false,
        points: Vec::new(),
        cpu_dma_latency_us: None,
        generator_spin_us: s.load.spin.as_micros() as u64,
        dropped_point: None,
        shard: None,
    }
}

/// The worker setups for one point: every worker loads every model.
/// The worker setups for one point: which models each worker loads (by placement), its pinning,
/// and the shared-memory layout when the transfer is `shm`.
pub fn setups(
    scenario: &Scenario,
    ort: Option<&OrtLib>,
    point: &Point,
    shm: Option<ShmLayout>,
) -> Vec<Setup> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let visible_gpus = if point.provider == Provider::Cuda && scenario.cuda.gpus.is_empty() {
        crate::gpu::visible_devices()
    } else {
        1
    };
    let assignment = point.placement.assign(point.workers, scenario.models.len());
    // A torch worker cannot generate the samples bit for bit as Rust does, so with the `index`
    // transfer it gets them in its setup (once, at start).
    let send_samples = point.runtime == Runtime::Torch && point.transfer == Transfer::Index;
    let models: Vec<SetupModel> = scenario
        .models
        .iter()
        .map(|m| SetupModel {
            data: if send_samples {
                m.samples.clone()
            } else {
                Vec::new()
            },
            ..SetupModel::of(m)
        })
        .collect();
    assignment
        .into_iter()
        .enumerate()
        .map(|(w, preload)| Setup {
            worker: w as u32,
            ort_lib: ort.map(|o| o.path.clone()).unwrap_or_default(),
            runtime: point.runtime,
            intra_threads: point.intra_threads as u32,
            provider: point.provider,
            transfer: point.transfer,
            models: models.clone(),
            preload: preload.into_iter().map(|m| m as u32).collect(),
            on_demand: (point.placement == Placement::OnDemand).then_some(scenario.on_demand),
            shm,
            pin_cpu: (point.pin == Pin::Cores).then_some((w % cores) as u32),
            gpu: (point.provider == Provider::Cuda).then(|| GpuSetup {
                device: scenario.cuda.device_of(w, visible_gpus),
                conv_algo_search: scenario.cuda.conv_algo_search,
                arena_extend_strategy: scenario.cuda.arena_extend_strategy,
                gpu_mem_limit_bytes: scenario.cuda.gpu_mem_limit_bytes,
            }),
        })
        .collect()
}

/// Takes the models the runtime cannot run out of every worker's preload: they get no requests,
/// so no worker loads them.
pub fn leave_out(setups: &mut [Setup], unsupported: &[Option<String>]) {
    for setup in setups {
        setup.preload.retain(|&m| unsupported[m as usize].is_none());
    }
}

/// Bytes of a model's outputs for one request, from the ONNX signature with the dims its inputs
/// bound; `None` when an output dim cannot be known before running.
fn output_bytes(m: &crate::scenario::ModelSpec) -> Option<usize> {
    use crate::onnx::Dim;
    let mut bound = std::collections::HashMap::new();
    for (spec, io) in m.inputs.iter().zip(
        crate::onnx::read_model_info(match &m.source {
            crate::scenario::ModelSource::Onnx(p) => p,
            crate::scenario::ModelSource::Synthetic(_) => return Some(0),
        })
        .ok()?
        .inputs,
    ) {
        for (d, &v) in io.dims.iter().zip(&spec.shape) {
            if let Dim::Named(n) = d {
                bound.insert(n.clone(), v);
            }
        }
    }
    let mut tensors = Vec::new();
    for o in &m.outputs {
        let dtype = o.dtype.clone().ok()?;
        let shape: Option<Vec<i64>> = o
            .dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => Some(*n),
                Dim::Named(n) => bound.get(n).copied(),
                Dim::Unknown => None,
            })
            .collect();
        tensors.push((dtype, shape?));
    }
    region_len_for(tensors.iter().map(|(d, s)| (*d, s.as_slice()))).ok()
}

/// Output room per slot when an output's size is unknown before running: 16 MiB.
const UNKNOWN_OUTPUT_BYTES: usize = 16 << 20;

/// The shared-memory slots of an `shm` point: one per request that can be in flight (closed loop:
/// concurrency × the largest fan-out; open loop: up to 1,024, and requests beyond wait), each sized
/// for the largest sample and the largest outputs.
pub fn slot_pool(scenario: &Scenario, point: &Point) -> anyhow::Result<SlotPool> {
    let fanout = scenario
        .workload
        .groups
        .iter()
        .map(|g| g.members.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let slots = match point.load {
        crate::scenario::LoadPoint::Closed { concurrency } => concurrency * fanout,
        crate::scenario::LoadPoint::Open { .. } => scenario.load.max_in_flight.min(1024) * fanout,
    };
    let mut input = 0;
    let mut output = 0;
    for m in &scenario.models {
        for s in &m.samples {
            input = input.max(region_len_for(
                s.iter().map(|t| (t.dtype, t.shape.as_slice())),
            )?);
        }
        output = output.max(output_bytes(m).unwrap_or(UNKNOWN_OUTPUT_BYTES));
    }
    let layout = ShmLayout::new(slots, input.max(1), output.max(1))?;
    Ok(SlotPool::new(ShmArena::create(layout)?))
}

/// Measures one point: starts its pool, warms up, runs every trial, shuts the pool down. Returns
/// the point's rows (none if cancelled before a trial finished), its workers, notes for stderr and
/// its histogram log. The sweep calls it for each point; `bench capacity` for each probe.
pub(crate) async fn run_point(
    scenario: &Scenario,
    ort: Option<&OrtLib>,
    point: &Point,
    cancel: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(
    Vec<Row>,
    Vec<json::WorkerReport>,
    Vec<String>,
    Option<Vec<u8>>,
)> {
    // A model the point's runtime cannot run (an operator tract lacks) is left out of the traffic
    // and reported as unsupported; the point measures the others.
    let unsupported = crate::runtime::unsupported(scenario, point.runtime)?;
    let mut notes = unsupported_notes(scenario, point, &unsupported);
    let narrowed;
    let scenario = if unsupported.iter().any(Option::is_some) {
        let drop: Vec<bool> = unsupported.iter().map(Option::is_some).collect();
        match scenario.without(&drop) {
            Some(s) => {
                narrowed = s;
                &narrowed
            }
            None => {
                let rows = unsupported_rows(scenario, point, &unsupported);
                return Ok((rows, Vec::new(), notes, None));
            }
        }
    } else {
        scenario
    };
    let slots = if point.transfer == Transfer::Shm {
        Some(slot_pool(scenario, point)?)
    } else {
        None
    };
    let layout = slots.as_ref().map(|s| s.fd.layout());
    let policy = Supervision {
        request_timeout: scenario.workload.request_timeout,
        replace_after_timeouts: scenario.workload.replace_after_timeouts,
    };
    let mut setups = setups(scenario, ort, point, layout);
    leave_out(&mut setups, &unsupported);
    let mut devices: Vec<u32> = setups
        .iter()
        .filter_map(|s| s.gpu.as_ref().map(|g| g.device))
        .collect();
    devices.sort_unstable();
    devices.dedup();
    let pool = match Pool::start_with(setups, slots, policy).await {
        Ok(pool) => pool,
        // A GPU that is missing or unusable fails its points, not the whole sweep.
        Err(e) if point.provider == Provider::Cuda => {
            let why = format!("{e:#}");
            let note = format!("point {} failed: {why}", point.id);
            return Ok((
                vec![failed_row(scenario, point, &why)],
                Vec::new(),
                vec![note],
                None,
            ));
        }
        Err(e) => return Err(e),
    };
    let infos: Vec<WorkerInfo> = pool.infos();
    let seed = scenario.seed ^ (point.index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let started = std::time::SystemTime::now();
    // GPU utilisation is sampled over warm-up and trials alike.
    let nvml = (!devices.is_empty()).then(crate::gpu::Nvml::open);
    let sampler = match &nvml {
        Some(Ok(_)) => {
            crate::gpu::Sampler::start(devices.clone(), std::time::Duration::from_millis(100))
        }
        _ => None,
    };
    let phases = async {
        let warm = match scenario.workload.warmup {
            Limit::Requests(0) => None,
            Limit::Duration(d) if d.is_zero() => None,
            limit => Some(
                load::run_phase(
                    &pool,
                    scenario,
                    point.load,
                    point.transfer,
                    PhaseRule::Fixed(limit),
                    seed,
                    cancel,
                )
                .await?,
            ),
        };
        let mut trials = Vec::new();
        let ticks = metrics::cpu_ticks();
        for t in 0..scenario.workload.trials {
            if *cancel.borrow() {
                break;
            }
            let rule = PhaseRule::from(scenario.workload.stop);
            trials.push(
                load::run_phase(
                    &pool,
                    scenario,
                    point.load,
                    point.transfer,
                    rule,
                    seed ^ (t as u64 + 1),
                    cancel,
                )
                .await?,
            );
        }
        let steal = ticks
            .zip(metrics::cpu_ticks())
            .and_then(|(a, b)| metrics::steal_pct(a, b));
        anyhow::Ok((warm, trials, steal))
    }
    .await;
    let restarts = (pool.restarts.get(), pool.restart_max.get());
    let utilisation = sampler.map(crate::gpu::Sampler::stop);
    // GPU memory is read while the workers still hold it.
    let gpu_memory = match &nvml {
        Some(Ok(n)) => Some(n.memory_by_pid(&infos.iter().map(|i| i.pid).collect::<Vec<_>>())),
        _ => None,
    };
    let ends = pool.shutdown().await;
    let (warm, trials, steal) = phases?;
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
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        reports.push(json::WorkerReport {
            worker: info.id,
            pid: info.pid,
            start_ms: info.start.as_secs_f64() * 1e3,
            load_ms: info
                .loads
                .iter()
                .map(|l| (l.model.clone(), l.load_ns as f64 / 1e6))
                .collect(),
            rss_ready_mib: mib(info.rss_ready_bytes),
            rss_end_mib: mib(rss),
            requests_served: served,
            runtime: info.runtime.clone(),
        });
    }
    notes.extend(error_notes(point, &trials));
    notes.extend(warnings);
    if let Some(Err(why)) = &nvml {
        notes.push(format!("point {}: {why}", point.id));
    }
    if trials.is_empty() {
        return Ok((Vec::new(), reports, notes, None));
    }
    let mut rows = rows(
        scenario,
        point,
        &infos,
        warm.as_ref(),
        &trials,
        &rss_per_worker,
        steal,
    );
    mark_unsupported(&mut rows, scenario, &unsupported);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    for r in &mut rows {
        r.gpus = devices
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(";");
        if let Some(memory) = &gpu_memory {
            let per: Vec<u64> = infos
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
        if let Some(u) = utilisation.filter(|u| u.samples > 0) {
            r.gpu_util_mean_pct = Some(u.mean_pct);
            r.gpu_util_max_pct = Some(u.max_pct);
        }
        r.worker_restarts = restarts.0;
        r.restart_ms_max = (restarts.0 > 0).then_some(restarts.1.as_secs_f64() * 1e3);
    }
    if restarts.0 > 0 {
        notes.push(format!(
            "point {}: {} worker(s) replaced",
            point.id, restarts.0
        ));
    }
    let hlog = encode_hlog(scenario, point, started, &trials)?;
    Ok((rows, reports, notes, Some(hlog)))
}

/// The point's histograms, every trial, as an interval log (see [`hlog`]).
fn encode_hlog(
    scenario: &Scenario,
    point: &Point,
    started: std::time::SystemTime,
    trials: &[PhaseResult],
) -> anyhow::Result<Vec<u8>> {
    let mut start = std::time::Duration::ZERO;
    let mut intervals = Vec::new();
    for t in trials {
        let mut records: Vec<(&str, &Record)> = Vec::new();
        for (m, r) in scenario.models.iter().zip(&t.result.models) {
            records.push((&m.name, r));
        }
        for (g, r) in scenario.workload.groups.iter().zip(&t.result.groups) {
            records.push((&g.name, r));
        }
        records.push(("all", &t.result.all));
        intervals.push(hlog::Interval {
            start,
            span: t.span,
            records,
        });
        start += t.span;
    }
    let mut out = Vec::new();
    hlog::encode(&mut out, &point.id, started, &intervals)?;
    Ok(out)
}

fn write_hlog(out_dir: &Path, point_id: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = hlog::path(out_dir, point_id);
    std::fs::create_dir_all(hlog::dir(out_dir))
        .with_context(|| format!("cannot create {}", hlog::dir(out_dir).display()))?;
    write_atomic(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// The verdict on send lag: more than 1% of sends later than [`metrics::LAG_LIMIT`] makes a point
/// invalid. When the host stole 1% of the CPU time or more meanwhile, the reason says so: its
/// stalls delay every send of the VM, whatever the generator does.
fn lag_reason(lagged_pct: f64, steal_pct: Option<f64>) -> Option<String> {
    if lagged_pct <= 1.0 {
        return None;
    }
    let host = match steal_pct {
        Some(s) if s >= 1.0 => {
            format!(", while the host took {s:.1}% of the CPU time (cpu_steal_pct)")
        }
        _ => String::new(),
    };
    Some(format!(
        "the generator fell behind: {lagged_pct:.1}% of sends lagged over {} ms{host} \
         (on a VM, try --spin 2ms or --cpu-dma-latency 0)",
        metrics::LAG_LIMIT.as_millis()
    ))
}

/// Why a point is invalid, from its `all` summaries (one per trial), phases and the CPU time the
/// host stole meanwhile; empty when valid.
pub fn verdict(
    scenario: &Scenario,
    trials: &[PhaseResult],
    all: &[Summary],
    median: &Summary,
    steal_pct: Option<f64>,
) -> (Vec<String>, Option<bool>) {
    let mut reasons = Vec::new();
    let errors: u64 = all.iter().map(|s| s.errors).sum();
    if errors > 0 {
        reasons.push(format!("{errors} failed request(s)"));
    }
    if let Some(t) = trials.iter().position(|t| t.stable == Some(false)) {
        reasons.push(format!(
            "not stable within {} windows (trial {})",
            trials[t].windows,
            t + 1
        ));
    }
    let fewest = all.iter().map(|s| s.requests).min().unwrap_or(0);
    if fewest < scenario.workload.min_requests {
        reasons.push(format!(
            "fewer requests than the minimum: {fewest} < {}",
            scenario.workload.min_requests
        ));
    }
    let lagged = all.iter().map(|s| s.lagged_pct).fold(0.0, f64::max);
    reasons.extend(lag_reason(lagged, steal_pct));
    if trials.iter().any(|t| t.overloaded) {
        reasons.push(format!(
            "more than {} requests in flight: the workers cannot keep up with the rate",
            scenario.load.max_in_flight
        ));
    }
    let slo_met = (!scenario.slo.is_empty())
        .then(|| slo::check(&scenario.slo, &median.measured(), &mut reasons));
    (reasons, slo_met)
}

/// The median across trials of every field of a summary (spread for the fields that have one).
fn median_summary(v: &[Summary]) -> Summary {
    let med = |f: &dyn Fn(&Summary) -> f64| {
        spread(&v.iter().map(f).collect::<Vec<_>>()).map_or(0.0, |s| s.0)
    };
    let pct = |f: &dyn Fn(&Summary) -> &Percentiles| Percentiles {
        p50: med(&|s| f(s).p50),
        p90: med(&|s| f(s).p90),
        p95: med(&|s| f(s).p95),
        p99: med(&|s| f(s).p99),
        p999: med(&|s| f(s).p999),
        max: med(&|s| f(s).max),
        mean: med(&|s| f(s).mean),
    };
    Summary {
        sent: v.iter().map(|s| s.sent).sum(),
        requests: med(&|s| s.requests as f64).round() as u64,
        errors: v.iter().map(|s| s.errors).sum(),
        throughput_rps: med(&|s| s.throughput_rps),
        latency: pct(&|s| &s.latency),
        service: pct(&|s| &s.service),
        lag: pct(&|s| &s.lag),
        compute: pct(&|s| &s.compute),
        overhead: pct(&|s| &s.overhead),
        overhead_p10: med(&|s| s.overhead_p10),
        lagged_pct: med(&|s| s.lagged_pct),
    }
}

/// A row holding only the point's parameters: the base of every row of the point.
fn point_row(scenario: &Scenario, point: &Point) -> Row {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Row {
        point: point.index,
        point_id: point.id.clone(),
        workers: point.workers,
        intra_threads: point.intra_threads,
        transfer: point.transfer.name().into(),
        placement: point.placement.name().into(),
        pin: point.pin.name().into(),
        provider: point.provider.name().into(),
        runtime: point.runtime.name().into(),
        oversubscribed: point.workers * point.intra_threads > cores,
        load: scenario.load.kind_name().into(),
        concurrency: point.load.concurrency(),
        rate_rps: point.load.rate(),
        arrival: point
            .load
            .rate()
            .map(|_| scenario.load.arrival.name().to_string()),
        model: "all".into(),
        kind: "all".into(),
        input_staging: point.transfer.staging().into(),
        ..Row::default()
    }
}

/// The row of a point whose workers could not start (a CUDA point without a usable GPU): it is
/// reported as failed, and the sweep goes on with the other points.
fn failed_row(scenario: &Scenario, point: &Point, why: &str) -> Row {
    Row {
        valid: false,
        reason: format!("workers did not start: {why}"),
        ..point_row(scenario, point)
    }
}

/// One note per model the point's runtime cannot run.
fn unsupported_notes(
    scenario: &Scenario,
    point: &Point,
    unsupported: &[Option<String>],
) -> Vec<String> {
    scenario
        .models
        .iter()
        .zip(unsupported)
        .filter_map(|(m, why)| {
            let why = why.as_ref()?;
            Some(format!(
                "point {}: model `{}` is unsupported by {} and left out of the traffic: {why}",
                point.id,
                m.name,
                point.runtime.name()
            ))
        })
        .collect()
}

/// Why the rows of `model` or `group` `name` stand for nothing the runtime ran: the model is
/// unsupported, or the group has an unsupported member.
fn unsupported_reason(
    scenario: &Scenario,
    kind: &str,
    name: &str,
    unsupported: &[Option<String>],
) -> Option<String> {
    let of = |m: usize| unsupported[m].as_ref();
    match kind {
        "model" => scenario
            .models
            .iter()
            .position(|m| m.name == name)
            .and_then(of)
            .cloned(),
        "group" => {
            let group = scenario.workload.groups.iter().find(|g| g.name == name)?;
            group.members.iter().find_map(|&m| {
                of(m).map(|why| format!("member `{}`: {why}", scenario.models[m].name))
            })
        }
        _ => None,
    }
}

/// Marks the rows of unsupported models, and of groups with an unsupported member, invalid with
/// the reason `unsupported by RUNTIME: ...`. The other rows keep their verdict.
fn mark_unsupported(rows: &mut [Row], scenario: &Scenario, unsupported: &[Option<String>]) {
    for r in rows {
        if let Some(why) = unsupported_reason(scenario, &r.kind, &r.model, unsupported) {
            r.valid = false;
            r.reason = format!("{}{}: {why}", crate::report::UNSUPPORTED, r.runtime);
        }
    }
}

/// The rows of a point whose runtime runs nothing of its traffic: every model and group row, and
/// `all`, invalid and saying why.
fn unsupported_rows(
    scenario: &Scenario,
    point: &Point,
    unsupported: &[Option<String>],
) -> Vec<Row> {
    let not_run = format!(
        "not measured: {} runs no model or group of the mix",
        point.runtime.name()
    );
    let row = |name: &str, kind: &str| Row {
        model: name.into(),
        kind: kind.into(),
        valid: false,
        reason: not_run.clone(),
        ..point_row(scenario, point)
    };
    let mut rows: Vec<Row> = scenario
        .models
        .iter()
        .map(|m| row(&m.name, "model"))
        .chain(
            scenario
                .workload
                .groups
                .iter()
                .map(|g| row(&g.name, "group")),
        )
        .chain(std::iter::once(row("all", "all")))
        .collect();
    mark_unsupported(&mut rows, scenario, unsupported);
    rows
}

/// Builds the point's rows: one per model, one per ensemble group, then `all`.
pub fn rows(
    scenario: &Scenario,
    point: &Point,
    workers: &[WorkerInfo],
    warm: Option<&PhaseResult>,
    trials: &[PhaseResult],
    rss_per_worker: &[u64],
    steal_pct: Option<f64>,
) -> Vec<Row> {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let rss_bytes: u64 = rss_per_worker.iter().sum();
    let rss_list: Vec<String> = rss_per_worker
        .iter()
        .map(|&b| format!("{:.1}", mib(b)))
        .collect();
    let load_of = |model: &str| {
        workers
            .iter()
            .flat_map(|w| w.loads.iter().filter(|l| l.model == model))
            .map(|l| l.load_ns)
            .max()
            .unwrap_or(0) as f64
            / 1e6
    };
    let worker_load = workers
        .iter()
        .map(|w| w.loads.iter().map(|l| l.load_ns).sum::<u64>())
        .max()
        .unwrap_or(0) as f64
        / 1e6;
    let mut first_runs = vec![FirstRuns::default(); scenario.models.len()];
    for phase in warm.into_iter().chain(trials) {
        for (a, b) in first_runs.iter_mut().zip(&phase.first_runs) {
            a.merge(b);
        }
    }
    let all_first = first_runs.iter().fold(FirstRuns::default(), |mut a, b| {
        a.merge(b);
        a
    });
    let summaries = |pick: &dyn Fn(&PhaseResult) -> &Record| -> Vec<Summary> {
        trials
            .iter()
            .map(|t| Summary::of(pick(t), t.span))
            .collect()
    };
    // Cold starts across warm-up and every trial.
    let merged = |pick: &dyn Fn(&PhaseResult) -> &Record| -> Record {
        let mut r = Record::default();
        for t in warm.into_iter().chain(trials) {
            r.merge(pick(t));
        }
        r
    };
    let all = summaries(&|t| &t.result.all);
    let all_median = median_summary(&all);
    let (reasons, slo_met) = verdict(scenario, trials, &all, &all_median, steal_pct);
    let row = |name: &str,
               kind: &str,
               per_trial: &[Summary],
               cold: &Record,
               warm_n: u64,
               first: Option<&FirstRuns>,
               load_ms: f64| {
        let m = median_summary(per_trial);
        let (_, tmin, tmax) = spread(
            &per_trial
                .iter()
                .map(|s| s.throughput_rps)
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
        let (_, pmin, pmax) = spread(&per_trial.iter().map(|s| s.latency.p99).collect::<Vec<_>>())
            .unwrap_or_default();
        Row {
            model: name.into(),
            kind: kind.into(),
            trials: trials.len(),
            sent: per_trial.iter().map(|s| s.sent).sum::<u64>() + warm_n,
            requests: m.requests,
            errors: m.errors,
            first_runs: first.map_or(0, |f| f.count),
            warmup_requests: warm_n,
            duration_s: spread(
                &trials
                    .iter()
                    .map(|t| t.span.as_secs_f64())
                    .collect::<Vec<_>>(),
            )
            .map_or(0.0, |s| s.0),
            throughput_rps: m.throughput_rps,
            throughput_rps_min: tmin,
            throughput_rps_max: tmax,
            latency_p50_us: m.latency.p50,
            latency_p90_us: m.latency.p90,
            latency_p95_us: m.latency.p95,
            latency_p99_us: m.latency.p99,
            latency_p999_us: m.latency.p999,
            latency_max_us: m.latency.max,
            latency_mean_us: m.latency.mean,
            latency_p99_us_min: pmin,
            latency_p99_us_max: pmax,
            service_p50_us: m.service.p50,
            service_p99_us: m.service.p99,
            service_mean_us: m.service.mean,
            send_lag_p50_us: m.lag.p50,
            send_lag_p99_us: m.lag.p99,
            send_lag_max_us: m.lag.max,
            send_lag_mean_us: m.lag.mean,
            lagged_sends_pct: m.lagged_pct,
            compute_p50_us: m.compute.p50,
            compute_p99_us: m.compute.p99,
            compute_mean_us: m.compute.mean,
            overhead_p10_us: m.overhead_p10,
            overhead_p50_us: m.overhead.p50,
            overhead_p99_us: m.overhead.p99,
            overhead_mean_us: m.overhead.mean,
            first_run_ms: first
                .filter(|f| f.count > 0)
                .map(|f| f.max_latency.as_secs_f64() * 1e3),
            cold_starts: cold.cold.len(),
            cold_start_p50_ms: (!cold.cold.is_empty())
                .then(|| cold.cold.value_at_quantile(0.5) as f64 / 1e6),
            cold_start_max_ms: (!cold.cold.is_empty()).then(|| cold.cold.max() as f64 / 1e6),
            load_ms,
            rss_mib: mib(rss_bytes),
            rss_per_worker_mib: rss_list.join(";"),
            cpu_steal_pct: steal_pct,
            windows: trials.iter().map(|t| t.windows).max().unwrap_or(0),
            valid: reasons.is_empty(),
            reason: reasons.join("; "),
            slo_met,
            ..point_row(scenario, point)
        }
    };
    let mut out = Vec::new();
    for (i, m) in scenario.models.iter().enumerate() {
        let warm_n = warm.map_or(0, |w| w.result.models[i].attempts);
        out.push(row(
            &m.name,
            "model",
            &summaries(&|t| &t.result.models[i]),
            &merged(&|t| &t.result.models[i]),
            warm_n,
            Some(&first_runs[i]),
            load_of(&m.name),
        ));
    }
    for (g, group) in scenario.workload.groups.iter().enumerate() {
        let warm_n = warm.map_or(0, |w| w.result.groups[g].attempts);
        let load_ms = group
            .members
            .iter()
            .map(|&m| load_of(&scenario.models[m].name))
            .fold(0.0, f64::max);
        out.push(row(
            &group.name,
            "group",
            &summaries(&|t| &t.result.groups[g]),
            &merged(&|t| &t.result.groups[g]),
            warm_n,
            None,
            load_ms,
        ));
    }
    out.push(row(
        "all",
        "all",
        &all,
        &merged(&|t| &t.result.all),
        warm.map_or(0, |w| w.sent),
        Some(&all_first),
        worker_load,
    ));
    out
}

/// One line per kind of failed request: count and first message.
pub fn error_notes(point: &Point, trials: &[PhaseResult]) -> Vec<String> {
    let mut all = Record::default();
    for t in trials {
        all.merge(&t.result.all);
    }
    all.first_error
        .iter()
        .map(|(kind, msg)| {
            format!(
                "point {}: {} {kind} error(s), first: {msg}",
                point.id, all.errors[kind]
            )
        })
        .collect()
}

/// The console summary for finished rows.
pub fn summary(rows: &[Row]) -> String {
    console::summary(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_makes_a_point_invalid_above_one_percent_and_names_a_noisy_host() {
        assert_eq!(lag_reason(1.0, Some(9.0)), None);
        let quiet = lag_reason(2.5, Some(0.4)).unwrap();
        assert!(
            quiet.starts_with("the generator fell behind: 2.5% of sends lagged over 1 ms (on a VM"),
            "{quiet}"
        );
        assert!(!quiet.contains("host"), "{quiet}");
        assert_eq!(lag_reason(2.5, None).unwrap(), quiet);
        let noisy = lag_reason(2.5, Some(4.25)).unwrap();
        assert!(
            noisy.contains("lagged over 1 ms, while the host took 4.2% of the CPU time (cpu_steal_pct) (on a VM, try --spin 2ms"),
            "{noisy}"
        );
        assert!(!noisy.contains(';'), "reasons are joined with `; `");
    }
}
