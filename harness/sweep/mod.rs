//! Runs a sweep: for each point, start its worker pool, warm up, measure, shut the pool down and hand
//! the point's rows to the reporters before the next point starts.
//!
//! - this file: the loop over points, `--resume`, signals; each point's files go out through the
//!   reporters of [`crate::report::writer`] as soon as it is measured;
//! - [`point`]: measures one point and returns a typed [`point::PointResult`] (also used by
//!   `bench capacity` for each probe);
//! - [`rows`]: turns a point's phases into CSV rows and verdicts;
//! - [`progress`]: what a person sees meanwhile (a bar with the time left, or a line per point);
//! - [`setup`]: what each worker of a point is told to load and how.

pub mod point;
pub mod progress;
pub mod rows;
pub mod setup;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::pool::runtime::ortlib::OrtLib;
use crate::report::Row;
use crate::report::csv::CsvReport;
use crate::report::json::{self, Host, RunInfo, ScenarioInfo};
use crate::report::writer::{PointOutput, Reporters, RunEnd};
use crate::scenario::shard::ShardInfo;
use crate::scenario::{Point, Scenario};

/// How a sweep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
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
pub(crate) struct SweepOptions {
    pub(crate) out_dir: PathBuf,
    pub(crate) progress: bool,
    /// The PM QoS CPU wake-up latency held during the sweep, if any (recorded in run.json).
    pub(crate) cpu_dma_latency_us: Option<u32>,
    /// `--realtime`: who ran under SCHED_FIFO (recorded in run.json).
    pub(crate) realtime: Option<String>,
    /// Keep the points already in `out_dir` and run only the others.
    pub(crate) resume: bool,
    /// `--shard`: the scenario's points are already this shard's (recorded in run.json).
    pub(crate) shard: Option<ShardInfo>,
    /// The command-line flags that overrode the scenario, by name (recorded in run.json).
    pub(crate) overrides: std::collections::BTreeMap<String, String>,
}

/// Runs every point of `scenario`, writing `results.csv` and `run.json` under `opts.out_dir`.
pub(crate) async fn sweep(
    scenario: &Scenario,
    ort: Option<&OrtLib>,
    opts: &SweepOptions,
) -> anyhow::Result<(Outcome, Vec<Row>)> {
    let (mut reporters, mut all_rows, done) = open_reporters(scenario, ort, opts)?;
    let mut end = RunEnd::default();

    let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
    let signal = tokio::spawn(crate::signals::wait(cancel_tx));

    // With interleaved trials, each point runs one trial per round on a fresh pool; a point's row
    // is written once its last round is done.
    let trials = scenario.workload.trials;
    let rounds = if scenario.workload.interleave && trials > 1 {
        trials
    } else {
        1
    };
    let todo: Vec<&Point> = scenario
        .points
        .iter()
        .filter(|p| !done.contains(&p.id))
        .collect();
    let per_step = if rounds > 1 { 1 } else { trials };
    let expected = progress::Eta::expected_step(scenario, per_step);
    let mut bar = progress::Progress::new(opts.progress, todo.len(), rounds, expected);
    warn_oversubscribed(&todo, &bar);
    let mut outcome = Outcome::Clean;
    let mut measured: Vec<Vec<point::Measured>> = todo.iter().map(|_| Vec::new()).collect();
    let mut finished: Vec<bool> = vec![false; todo.len()];
    'rounds: for round in 0..rounds {
        for (k, point) in todo.iter().enumerate() {
            if *cancel.borrow() {
                break 'rounds;
            }
            if finished[k] {
                bar.skip();
                continue;
            }
            bar.start(if rounds > 1 {
                format!("trial {}/{rounds} of {}", round + 1, point.id)
            } else {
                point.id.clone()
            });
            if round > 0 && !scenario.workload.cooldown.is_zero() {
                tokio::time::sleep(scenario.workload.cooldown).await;
            }
            let which = if rounds > 1 {
                round..round + 1
            } else {
                0..trials
            };
            let step = point::measure(scenario, ort, point, &cancel, which)
                .await
                .with_context(|| format!("sweep point {} ({})", point.index, point.id))?;
            let result = match step {
                point::Step::Done(r) => Some(r),
                point::Step::Measured(m) => {
                    measured[k].push(*m);
                    (round + 1 == rounds)
                        .then(|| point::finish(scenario, point, std::mem::take(&mut measured[k])))
                        .transpose()?
                }
            };
            if *cancel.borrow() {
                // The point was cut short: its numbers would mislead, so it is dropped (run.json says so).
                end.dropped_point = Some(point.id.clone());
                break 'rounds;
            }
            bar.done(&point.id, result.as_ref().map(|r| &r.rows[..]));
            let Some(result) = result else {
                continue;
            };
            finished[k] = true;
            if !report_point(&mut reporters, point, result, &bar, &mut all_rows)? {
                outcome = Outcome::Invalid;
            }
        }
    }
    bar.finish();
    signal.abort();
    let signal = signal.await.ok().flatten();
    if let Some(sig) = signal.or_else(|| cancel.borrow().then_some(libc::SIGINT)) {
        outcome = Outcome::Interrupted(sig);
        end.interrupted = true;
    }
    reporters.end(&end)?;
    Ok((outcome, all_rows))
}

/// The sweep's reporters on `opts.out_dir`, the rows already there and the ids of the points
/// they hold: none for a new sweep; with `--resume`, the finished points of an earlier run of
/// the same scenario (and shard).
fn open_reporters(
    scenario: &Scenario,
    ort: Option<&OrtLib>,
    opts: &SweepOptions,
) -> anyhow::Result<(Reporters, Vec<Row>, HashSet<String>)> {
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create the output folder {}", opts.out_dir.display()))?;
    let csv_path = opts.out_dir.join("results.csv");
    let json_path = opts.out_dir.join("run.json");
    let mut info = run_info(scenario, ort);
    info.cpu_dma_latency_us = opts.cpu_dma_latency_us;
    info.realtime = opts.realtime.clone();
    info.shard = opts.shard.clone();
    info.overrides = opts.overrides.clone();
    // Resuming keeps the finished points of an earlier run of the same scenario.
    let (mut csv, done) = if opts.resume {
        let earlier = crate::report::results::read_run_info(&json_path).with_context(|| {
            format!(
                "--resume: {} has no readable run.json",
                opts.out_dir.display()
            )
        })?;
        let hash = &earlier.scenario.sha256;
        anyhow::ensure!(
            *hash == scenario.hash,
            "--resume: the results in {} come from a different scenario file (sha256 {hash}); \
             resume with the same file, or sweep into a new --out",
            opts.out_dir.display()
        );
        check_resumed_shard(&opts.out_dir, earlier.shard.as_ref(), opts.shard.as_ref())?;
        let csv = CsvReport::resume(&csv_path)?;
        let done: HashSet<String> = csv.rows().iter().map(|r| r.point_id.clone()).collect();
        info.points = earlier.points;
        info.points.retain(|p| done.contains(&p.point_id));
        info.points_done = info.points.len();
        (csv, done)
    } else {
        (CsvReport::new(&csv_path), Default::default())
    };
    csv.append(Vec::new())?;
    let all_rows = csv.rows().to_vec();
    let reporters = Reporters::sweep_files(&opts.out_dir, csv, info)?;
    Ok((reporters, all_rows, done))
}

/// Warns, before anything runs, of each point that starts more threads than the machine has
/// logical cores (it is measured anyway, and its rows say so).
fn warn_oversubscribed(todo: &[&Point], bar: &progress::Progress) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for point in todo {
        if crate::scenario::limits::footprint(point).threads > cores {
            let concurrent = if point.worker_concurrency > 1 {
                format!(" × {} concurrent requests", point.worker_concurrency)
            } else {
                String::new()
            };
            bar.suspend(|| {
                eprintln!(
                    "warning: point {}: {} workers{concurrent} × {} intra-op threads exceed the {cores} logical cores \
                     (measured anyway; the CSV flags it as oversubscribed)",
                    point.id, point.workers, point.intra_threads
                )
            });
        }
    }
}

/// Hands one finished point to the reporters (its notes to stderr, its files to the output
/// folder) and keeps its rows in `all_rows`. Returns whether every row of it is valid.
fn report_point(
    reporters: &mut Reporters,
    point: &Point,
    result: point::PointResult,
    bar: &progress::Progress,
    all_rows: &mut Vec<Row>,
) -> anyhow::Result<bool> {
    let point::PointResult {
        rows,
        workers,
        notes,
        hlog,
    } = result;
    for note in notes {
        bar.suspend(|| eprintln!("{note}"));
    }
    let valid = rows.iter().all(|r| r.valid);
    reporters.point(&PointOutput {
        index: point.index,
        id: &point.id,
        rows: &rows,
        workers: &workers,
        hlog: hlog.as_deref(),
        parent_rss_mib: crate::pool::worker::child::rss_bytes() as f64 / (1024.0 * 1024.0),
    })?;
    all_rows.extend(rows);
    Ok(valid)
}

/// A sharded sweep resumes only as the same shard (the folder's points belong to it).
fn check_resumed_shard(
    dir: &Path,
    was: Option<&ShardInfo>,
    now: Option<&ShardInfo>,
) -> anyhow::Result<()> {
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

fn run_info(s: &Scenario, ort: Option<&OrtLib>) -> RunInfo {
    RunInfo {
        schema_version: json::SCHEMA_VERSION,
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
            slo: s.slo.iter().map(ToString::to_string).collect(),
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
        realtime: None,
        generator_spin_us: Some(s.load.spin.as_micros() as u64),
        dropped_point: None,
        shard: None,
        sources: Vec::new(),
        merged_unix_s: None,
        command: std::env::args().collect(),
        overrides: Default::default(),
        settings: crate::scenario::effective_settings(s),
    }
}
