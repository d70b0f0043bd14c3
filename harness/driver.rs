//! Runs a sweep: for each point, start its worker pool, warm up, measure, shut the pool down and hand
//! the point's rows to the reporters before the next point starts.

use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::load::{self, PhaseResult};
use crate::metrics::{ModelRecord, Percentiles};
use crate::protocol::{Setup, SetupModel};
use crate::report::csv::CsvReport;
use crate::report::json::{self, Host, RunInfo, ScenarioInfo};
use crate::report::{Row, console, write_atomic};
use crate::runtime::ortlib::OrtLib;
use crate::scenario::{Limit, Point, Scenario};
use crate::worker::pool::{Pool, WorkerInfo};

/// How a sweep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every point measured without a failed request.
    Clean,
    /// Every point measured, but some requests failed.
    WithErrors,
    /// Stopped by SIGINT or SIGTERM (the signal number).
    Interrupted(i32),
}

/// Options that come from the command line.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub out_dir: PathBuf,
    pub progress: bool,
}

/// Runs every point of `scenario`, writing `results.csv` and `run.json` under `opts.out_dir`.
pub async fn sweep(
    scenario: &Scenario,
    ort: &OrtLib,
    opts: &SweepOptions,
) -> anyhow::Result<(Outcome, Vec<Row>)> {
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create the output folder {}", opts.out_dir.display()))?;
    let mut csv = CsvReport::new(&opts.out_dir.join("results.csv"));
    csv.append(Vec::new())?;
    let json_path = opts.out_dir.join("run.json");
    let mut info = run_info(scenario, ort);
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
        bar.set_message(point.id.clone());
        let (rows, workers, notes) = run_point(scenario, ort, point, &cancel)
            .await
            .with_context(|| format!("sweep point {} ({})", point.index, point.id))?;
        for note in notes {
            bar.suspend(|| eprintln!("{note}"));
        }
        if *cancel.borrow() {
            // The point was cut short: its numbers would mislead, so it is dropped (run.json says so).
            break;
        }
        if rows.iter().any(|r| r.errors > 0) {
            outcome = Outcome::WithErrors;
        }
        csv.append(rows)?;
        info.points.push(json::PointInfo {
            point: point.index,
            point_id: point.id.clone(),
            workers,
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

async fn wait_for_signal(tx: tokio::sync::watch::Sender<bool>) -> Option<i32> {
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

fn run_info(s: &Scenario, ort: &OrtLib) -> RunInfo {
    RunInfo {
        bench_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: env!("BENCH_GIT_COMMIT").into(),
        rustc: env!("BENCH_RUSTC_VERSION").into(),
        ort_version: ort.version.clone(),
        ort_library: ort.path.display().to_string(),
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
                    path: m.path.display().to_string(),
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
    }
}

/// The worker setups for one point: every worker loads every model.
pub fn setups(scenario: &Scenario, ort: &OrtLib, point: &Point) -> Vec<Setup> {
    (0..point.workers)
        .map(|w| Setup {
            worker: w as u32,
            ort_lib: ort.path.clone(),
            intra_threads: point.intra_threads as u32,
            provider: point.provider,
            models: scenario
                .models
                .iter()
                .map(|m| SetupModel {
                    name: m.name.clone(),
                    path: m.path.clone(),
                })
                .collect(),
        })
        .collect()
}

async fn run_point(
    scenario: &Scenario,
    ort: &OrtLib,
    point: &Point,
    cancel: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(Vec<Row>, Vec<json::WorkerReport>, Vec<String>)> {
    let pool = Pool::start(setups(scenario, ort, point)).await?;
    let infos: Vec<WorkerInfo> = pool.workers.iter().map(|w| w.info.clone()).collect();
    let seed = scenario.seed ^ (point.index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mix = &scenario.workload.mix;
    let phases = async {
        let warm = match scenario.workload.warmup {
            Limit::Requests(0) => None,
            Limit::Duration(d) if d.is_zero() => None,
            limit => Some(
                load::closed_loop(
                    &pool,
                    &scenario.models,
                    mix,
                    point.concurrency,
                    limit,
                    seed,
                    cancel,
                )
                .await?,
            ),
        };
        let measured = load::closed_loop(
            &pool,
            &scenario.models,
            mix,
            point.concurrency,
            scenario.workload.measure,
            seed ^ 1,
            cancel,
        )
        .await?;
        anyhow::Ok((warm, measured))
    }
    .await;
    let ends = pool.shutdown().await;
    let (warm, measured) = phases?;
    let mut end_rss = 0u64;
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
        end_rss += rss;
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
        });
    }
    let mut notes = error_notes(point, &measured);
    notes.extend(warnings);
    let rows = rows(scenario, point, &infos, warm.as_ref(), &measured, end_rss);
    Ok((rows, reports, notes))
}

/// Builds the point's rows: one per model, then `all`.
pub fn rows(
    scenario: &Scenario,
    point: &Point,
    workers: &[WorkerInfo],
    warm: Option<&PhaseResult>,
    measured: &PhaseResult,
    rss_bytes: u64,
) -> Vec<Row> {
    let secs = measured.elapsed.as_secs_f64().max(1e-9);
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
    let row = |model: &str, rec: &ModelRecord, warm_n: u64, load_ms: f64| {
        let lat = Percentiles::of(&rec.latency);
        let comp = Percentiles::of(&rec.compute);
        Row {
            point: point.index,
            point_id: point.id.clone(),
            workers: point.workers,
            intra_threads: point.intra_threads,
            transfer: point.transfer.name().into(),
            provider: point.provider.name().into(),
            concurrency: point.concurrency,
            model: model.into(),
            input_staging: point.transfer.staging().into(),
            requests: rec.ok(),
            errors: rec.error_count(),
            warmup_requests: warm_n,
            duration_s: secs,
            throughput_rps: rec.ok() as f64 / secs,
            latency_p50_us: lat.p50,
            latency_p90_us: lat.p90,
            latency_p95_us: lat.p95,
            latency_p99_us: lat.p99,
            latency_p999_us: lat.p999,
            latency_max_us: lat.max,
            latency_mean_us: lat.mean,
            compute_p50_us: comp.p50,
            compute_p99_us: comp.p99,
            compute_mean_us: comp.mean,
            load_ms,
            rss_mib: rss_bytes as f64 / (1024.0 * 1024.0),
        }
    };
    let mut out = Vec::new();
    let mut all = ModelRecord::default();
    for (i, m) in scenario.models.iter().enumerate() {
        let rec = &measured.models[i];
        all.merge(rec);
        let warm_n = warm.map_or(0, |w| w.models[i].ok() + w.models[i].error_count());
        out.push(row(&m.name, rec, warm_n, load_of(&m.name)));
    }
    out.push(row(
        "all",
        &all,
        warm.map_or(0, PhaseResult::sent),
        worker_load,
    ));
    out
}

/// One line per kind of failed request in a phase: count and first message.
pub fn error_notes(point: &Point, measured: &PhaseResult) -> Vec<String> {
    let mut all = ModelRecord::default();
    for m in &measured.models {
        all.merge(m);
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
