//! Reporters turn measured points into files and console output. Measurement hands them plain
//! [`Row`]s and [`RunInfo`](json::RunInfo); they never see histograms being recorded.
//!
//! - [`csv`]: `results.csv`, one row per point × model plus an `all` row, rewritten atomically
//!   after every point so a crash keeps every finished point.
//! - [`json`]: `run.json`, the run's metadata (versions, host, seeds, scenario hash, commit).
//! - [`hlog`]: `hlog/<point>.hlog`, every histogram of every trial, as HdrHistogram interval logs.
//! - [`console`]: the summary table printed at the end.
//! - [`html`], [`plots`], [`summary`]: `report.html` (charts as inline SVG) and `summary.md`,
//!   rendered by [`render`] from a results directory that [`view`] reads back.
//! - [`layout`]: what keeps those charts legible at many points: distinct colours, keys below the
//!   plots, labels that do not overlap.
//! - [`choose`]: "which deployment?": the point with the most throughput that meets every
//!   objective, and why each other point lost; the report leads with it.
//!
//! - [`writer`]: the [`writer::Reporter`] trait and the one fan-out a sweep writes its files
//!   through, point by point.
//! - [`results`]: reads a results folder (any version's) back: `run.json`, `results.csv` (one
//!   lenient reader), `hlog/`. Report, merge, compare and `--resume` all read through it.

pub mod outdir;

pub mod choose;
pub mod console;
pub mod csv;
pub mod hlog;
pub mod html;
pub mod json;
pub mod layout;
pub mod plots;
pub mod results;
pub mod summary;
pub mod view;
pub mod writer;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::metrics::{Percentiles, Summary, spread, with_cold_starts_bound};
use crate::scenario::SessionKnobs;
use crate::scenario::axes::values::Knob;
use crate::scenario::session::{knob_type, with_session_knobs};
use crate::scenario::slo::Measured;

/// The file names [`render`] writes into the results directory.
pub(crate) const HTML_FILE: &str = "report.html";
pub(crate) const SUMMARY_FILE: &str = "summary.md";
/// The files `bench report --slo`/`--max-rss-mib` writes instead, beside the sweep's own: a
/// recommendation for objectives given later must not replace what the sweep wrote.
pub(crate) const HTML_SLO_FILE: &str = "report-slo.html";
pub(crate) const SUMMARY_SLO_FILE: &str = "summary-slo.md";

/// Writes `report.html` and `summary.md` into `results_dir` and returns their paths; they
/// recommend a point for the scenario's SLO, if it had one. Notes about parts that could not be
/// read go to stderr as warnings.
pub(crate) fn render(results_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    Ok(render_with(results_dir, &choose::Objectives::default())?.paths)
}

/// What [`render_with`] wrote and recommended.
pub(crate) struct Rendered {
    pub(crate) paths: Vec<PathBuf>,
    /// Every point judged, and the recommended one.
    pub(crate) choice: choose::Choice,
    /// Whether there were objectives to recommend a point for.
    pub(crate) recommends: bool,
    /// The recommendation as console lines (empty without objectives).
    pub(crate) text: String,
}

/// [`render`] for the objectives `asked` (`bench report --slo ... --max-rss-mib N`); without
/// `--slo`, the scenario's `slo` from `run.json` applies (see [`view::objectives`]). Objectives
/// asked for go to [`HTML_SLO_FILE`] and [`SUMMARY_SLO_FILE`], leaving the sweep's own report as
/// it was.
pub(crate) fn render_with(
    results_dir: &Path,
    asked: &choose::Objectives,
) -> anyhow::Result<Rendered> {
    let view = view::load(results_dir, asked)?;
    for note in &view.notes {
        eprintln!("warning: report: {note}");
    }
    let (html_file, md_file) = if asked.is_empty() {
        (HTML_FILE, SUMMARY_FILE)
    } else {
        (HTML_SLO_FILE, SUMMARY_SLO_FILE)
    };
    let html_path = results_dir.join(html_file);
    let page = html::html(&view)?;
    write_atomic(&html_path, page.as_bytes())
        .with_context(|| format!("cannot write {}", html_path.display()))?;
    let md_path = results_dir.join(md_file);
    write_atomic(&md_path, summary::markdown(&view).as_bytes())
        .with_context(|| format!("cannot write {}", md_path.display()))?;
    let recommends = view.recommends();
    Ok(Rendered {
        paths: vec![html_path, md_path],
        text: if recommends {
            console::recommendation(&view.choice, view.scenario_slo)
        } else {
            String::new()
        },
        choice: view.choice,
        recommends,
    })
}

/// Declares [`Row`] with a column for each session knob (`scenario/session.rs`), where those
/// columns always stood: after `runtime`. The csv crate writes a struct's fields as columns but
/// not a nested struct's, so the knobs are fields of `Row` itself.
macro_rules! row_with_knob_columns {
    ({ $(#[$attr:meta])* $vis:vis struct Row { $($before:tt)* } { $($after:tt)* } }
     $( $knob:ident $declaration:tt )*) => {
        $(#[$attr])*
        $vis struct Row {
            $($before)*
            $(
                #[doc = concat!(
                    "The session knob `", stringify!($knob), "` at the point (`[sweep] ",
                    stringify!($knob), "`); files from before the column read as its default."
                )]
                $vis $knob: <knob_type::$knob as Knob>::Cell,
            )*
            $($after)*
        }

        impl Row {
            /// The row whose cells stand in for the columns a file lacks: the session knobs at
            /// their defaults (what bench set before each was a column), the rest as in
            /// `Row::default()` (a field with a `serde(default)` of its own takes that instead).
            pub(crate) fn knob_defaults() -> Row {
                let knobs = SessionKnobs::DEFAULT;
                Row {
                    $( $knob: knobs.$knob.cell(), )*
                    ..Row::default()
                }
            }

            /// The point's session knobs, read back from their columns (a value this build does
            /// not know reads as the knob's default).
            pub(crate) fn session_knobs(&self) -> SessionKnobs {
                let mut knobs = SessionKnobs::DEFAULT;
                $(
                    if let Some(v) = <knob_type::$knob as Knob>::parse(&self.$knob.to_string()) {
                        knobs.$knob = v;
                    }
                )*
                knobs
            }
        }
    };
}

// The struct is written at the left margin, as it was before the macro, so its history reads on.
with_session_knobs! { row_with_knob_columns! {
/// One line of results: one model, ensemble group or `all` at one sweep point. Field names are the
/// CSV columns; each time or size column carries its unit in its name. With several trials, a
/// number is the median across trials; `_min` and `_max` columns give the spread. Read back, a
/// column the file lacks takes its default ([`crate::report::results::read_rows`]): a session
/// knob's ([`Row::knob_defaults`]), else its field's or `Row::default()`'s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default = "Row::knob_defaults")]
pub struct Row {
    pub point: usize,
    pub point_id: String,
    pub workers: usize,
    pub intra_threads: usize,
    /// Requests each worker runs at the same time, from its own threads on shared sessions
    /// (files from before the column read as 1).
    #[serde(default = "one")]
    pub worker_concurrency: usize,
    pub transfer: String,
    /// How requests and replies travelled: `socket` or `spin` (files from before the column read
    /// as `socket`).
    #[serde(default = "socket")]
    pub channel: String,
    pub placement: String,
    pub pin: String,
    pub provider: String,
    /// What ran the models: `ort`, `torch` or `tract` (files from before the column read as `ort`).
    #[serde(default = "ort")]
    pub runtime: String,
}
// The session knobs' columns go here.
{
    /// The size the `batch` axis bound every model's batch dim to; empty without the axis.
    #[serde(default)]
    pub batch: Option<usize>,
    /// Dynamic batching (`[batching]`): the most requests per run, the longest wait of a batch's
    /// oldest request (µs) and the idle policy; empty without `[batching]`.
    #[serde(default)]
    pub max_batch: Option<usize>,
    #[serde(default)]
    pub max_delay_us: Option<u64>,
    #[serde(default)]
    pub batch_idle: Option<String>,
    /// Compute threads (workers × worker_concurrency × intra_threads) exceed the logical cores.
    pub oversubscribed: bool,
    /// `closed` or `open`.
    pub load: String,
    /// Closed loop: requests in flight.
    pub concurrency: Option<usize>,
    /// Open loop: target requests per second.
    pub rate_rps: Option<f64>,
    /// Open loop: `poisson`, `constant` or `trace`.
    pub arrival: Option<String>,
    pub model: String,
    /// `model`, `group` (an ensemble) or `all`.
    pub kind: String,
    /// `per_request` when inputs cross to the worker with every request, `once` when staged at start.
    pub input_staging: String,
    pub trials: usize,
    /// Requests sent in warm-up and every trial: `requests` (per trial) + `errors` + `first_runs` +
    /// `cold_starts` + `warmup_requests` accounts for each of them.
    pub sent: u64,
    pub requests: u64,
    pub errors: u64,
    pub first_runs: u64,
    pub warmup_requests: u64,
    pub duration_s: f64,
    pub throughput_rps: f64,
    /// With the `batch` axis: samples per second, `throughput_rps × batch` (an ensemble request
    /// runs `batch` samples through each member); empty without the axis.
    #[serde(default)]
    pub throughput_samples_s: Option<f64>,
    /// Dynamic batching: runs sent per second, and requests per run (mean, median, largest);
    /// each request's wait in its model's queue (µs). Empty without `[batching]`.
    #[serde(default)]
    pub runs_per_s: Option<f64>,
    #[serde(default)]
    pub batch_size_mean: Option<f64>,
    #[serde(default)]
    pub batch_size_p50: Option<f64>,
    #[serde(default)]
    pub batch_size_max: Option<f64>,
    #[serde(default)]
    pub queue_wait_p50_us: Option<f64>,
    #[serde(default)]
    pub queue_wait_p99_us: Option<f64>,
    pub throughput_rps_min: f64,
    pub throughput_rps_max: f64,
    pub latency_p50_us: f64,
    pub latency_p90_us: f64,
    pub latency_p95_us: f64,
    pub latency_p99_us: f64,
    pub latency_p999_us: f64,
    pub latency_max_us: f64,
    pub latency_mean_us: f64,
    pub latency_p99_us_min: f64,
    pub latency_p99_us_max: f64,
    pub service_p50_us: f64,
    pub service_p99_us: f64,
    pub service_mean_us: f64,
    pub send_lag_p50_us: f64,
    pub send_lag_p99_us: f64,
    pub send_lag_max_us: f64,
    pub send_lag_mean_us: f64,
    pub lagged_sends_pct: f64,
    /// Percent of the machine's CPU time (all CPUs) that the hypervisor took over the measured
    /// trials (`steal` in `/proc/stat`); empty where the kernel does not report it.
    #[serde(default)]
    pub cpu_steal_pct: Option<f64>,
    /// The point's CPU cost over its timed trials (warm-up and cool-downs left out), the same on
    /// every row of the point: the parent's CPU time (every thread) and the workers' together, µs
    /// per successful request as `throughput_rps` counts them, and both together over the trials'
    /// wall time, in cores. The workers' are empty when a worker was replaced during a trial (see
    /// docs/reference/columns.md); all three in files of before the columns.
    #[serde(default)]
    pub parent_cpu_us_per_req: Option<f64>,
    #[serde(default)]
    pub worker_cpu_us_per_req: Option<f64>,
    #[serde(default)]
    pub cores_used: Option<f64>,
    pub compute_p50_us: f64,
    pub compute_p99_us: f64,
    pub compute_mean_us: f64,
    pub overhead_p10_us: f64,
    pub overhead_p50_us: f64,
    pub overhead_p99_us: f64,
    pub overhead_mean_us: f64,
    /// The parent's copy of a request's inputs before the send (`shm`: into the slot), µs; part of
    /// service time, never of send lag. 0 where nothing is copied then.
    #[serde(default)]
    pub stage_p50_us: f64,
    #[serde(default)]
    pub stage_p99_us: f64,
    /// `shm`: requests (across trials) whose outputs outgrew their slot and came back inline.
    #[serde(default)]
    pub shm_inline_outputs: u64,
    pub first_run_ms: Option<f64>,
    /// On-demand placement: requests that loaded their model first (warm-up included), and their
    /// latency.
    pub cold_starts: u64,
    pub cold_start_p50_ms: Option<f64>,
    /// Absent from files of before the column.
    #[serde(default)]
    pub cold_start_p99_ms: Option<f64>,
    pub cold_start_max_ms: Option<f64>,
    /// On-demand placement, the model cache (warm-up included; empty for other placements): the
    /// percent of successful requests that found their model loaded, models evicted (on a model
    /// row: times that model was evicted), their age at eviction in ms (mean and max, since the
    /// reply that loaded it, as the parent saw them), and the delay a miss adds: its worker's
    /// model load, µs (p50, p99).
    #[serde(default)]
    pub cache_hit_pct: Option<f64>,
    #[serde(default)]
    pub evictions: Option<u64>,
    #[serde(default)]
    pub evicted_age_mean_ms: Option<f64>,
    #[serde(default)]
    pub evicted_age_max_ms: Option<f64>,
    #[serde(default)]
    pub miss_delay_p50_us: Option<f64>,
    #[serde(default)]
    pub miss_delay_p99_us: Option<f64>,
    pub load_ms: f64,
    /// Model rows: the resident-memory growth of a worker while it loaded this model at start,
    /// MiB (the largest across the workers that loaded it; at least the model file's size). Empty
    /// on group and `all` rows, and where no worker loaded it at start (on-demand).
    #[serde(default)]
    pub model_load_rss_mib: Option<f64>,
    pub rss_mib: f64,
    /// Each worker's resident memory at the end of the point, MiB, `;`-separated in worker order.
    pub rss_per_worker_mib: String,
    /// The highest resident memory of all workers together at one moment, sampled every 10 ms
    /// over warm-up and trials, MiB: with on-demand placement, what loading (in parallel or not)
    /// and evicting cost at its worst. Empty where unknown.
    #[serde(default)]
    pub peak_rss_mib: Option<f64>,
    /// CUDA points: the device of each worker, `;`-separated (empty on CPU).
    #[serde(default)]
    pub gpus: String,
    /// CUDA points: GPU memory the workers held at the end of the point, MiB, from NVML (empty
    /// without NVML).
    #[serde(default)]
    pub gpu_mem_mib: Option<f64>,
    #[serde(default)]
    pub gpu_mem_per_worker_mib: String,
    /// CUDA points: GPU utilisation (percent of time a kernel ran) sampled every 100 ms over the
    /// point, mean and peak across its devices.
    #[serde(default)]
    pub gpu_util_mean_pct: Option<f64>,
    #[serde(default)]
    pub gpu_util_max_pct: Option<f64>,
    /// Workers replaced after a crash or repeated timeouts, and the slowest replacement.
    pub worker_restarts: u64,
    pub restart_ms_max: Option<f64>,
    pub windows: usize,
    /// The outputs were checked against the expected outputs of the model's test data (each
    /// worker's first run of each sample); a group or `all` when every member was. A mismatch makes
    /// the point invalid.
    #[serde(default)]
    pub outputs_checked: bool,
    pub valid: bool,
    pub reason: String,
    /// Invalid only because the generator fell behind its schedule: the measurement's fault, not
    /// the point's (`bench capacity` retries such a probe). Not a CSV column: `reason` says it.
    #[serde(skip)]
    pub only_lagged: bool,
    pub slo_met: Option<bool>,
    /// What ended the measurement (see docs/reference/columns.md): `duration`, `min_requests` (it
    /// ran past the duration to reach the minimum), `max_duration` (the cap, short of it),
    /// `requests`, `stable`, `max_windows`, `max_in_flight` or `cancelled`; empty in files of
    /// before the column.
    #[serde(default)]
    pub stopped_by: String,
}
}}

/// The `channel` of rows written before the column: every request went over the socket then.
pub(crate) fn socket() -> String {
    "socket".into()
}

fn ort() -> String {
    "ort".into()
}

fn one() -> usize {
    1
}

/// The timings of one trial of a model, group or `all`, µs: what the `latency_*`, `service_*`,
/// `send_lag_*`, `compute_*` and `overhead_*` columns are drawn from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Timings {
    pub(crate) latency: Percentiles,
    pub(crate) service: Percentiles,
    pub(crate) send_lag: Percentiles,
    pub(crate) compute: Percentiles,
    pub(crate) overhead: Percentiles,
    /// 10th percentile of the overhead.
    pub(crate) overhead_p10: f64,
}

impl From<&Summary> for Timings {
    fn from(s: &Summary) -> Timings {
        Timings {
            latency: s.latency,
            service: s.service,
            send_lag: s.lag,
            compute: s.compute,
            overhead: s.overhead,
            overhead_p10: s.overhead_p10,
        }
    }
}

impl Row {
    /// Sets the timing columns from each trial's timings: every column is the median across
    /// trials, and `latency_p99_us_min`/`_max` the range of the trials' p99. No trials set zeros.
    pub(crate) fn set_timings(&mut self, trials: &[Timings]) {
        let median = |f: fn(&Timings) -> Percentiles| {
            Percentiles::median(&trials.iter().map(f).collect::<Vec<_>>())
        };
        let (lat, service, lag, compute, overhead) = (
            median(|t| t.latency),
            median(|t| t.service),
            median(|t| t.send_lag),
            median(|t| t.compute),
            median(|t| t.overhead),
        );
        let (_, p99_min, p99_max) =
            spread(&trials.iter().map(|t| t.latency.p99).collect::<Vec<_>>()).unwrap_or_default();
        self.latency_p50_us = lat.p50;
        self.latency_p90_us = lat.p90;
        self.latency_p95_us = lat.p95;
        self.latency_p99_us = lat.p99;
        self.latency_p999_us = lat.p999;
        self.latency_max_us = lat.max;
        self.latency_mean_us = lat.mean;
        self.latency_p99_us_min = p99_min;
        self.latency_p99_us_max = p99_max;
        self.service_p50_us = service.p50;
        self.service_p99_us = service.p99;
        self.service_mean_us = service.mean;
        self.send_lag_p50_us = lag.p50;
        self.send_lag_p99_us = lag.p99;
        self.send_lag_max_us = lag.max;
        self.send_lag_mean_us = lag.mean;
        self.compute_p50_us = compute.p50;
        self.compute_p99_us = compute.p99;
        self.compute_mean_us = compute.mean;
        self.overhead_p10_us =
            crate::metrics::median(&trials.iter().map(|t| t.overhead_p10).collect::<Vec<_>>());
        self.overhead_p50_us = overhead.p50;
        self.overhead_p99_us = overhead.p99;
        self.overhead_mean_us = overhead.mean;
    }

    /// A row holding only a point's axis columns (workers, transfer, the session options, batch,
    /// load, ...), each filled as the axis's declaration says ([`crate::scenario::axes`]).
    pub(crate) fn of_axes(point: &crate::scenario::Point) -> Row {
        let cells = crate::scenario::axes::cells(point);
        // Every declared column is a field of `Row` (a test in `scenario::axes` checks it), so
        // this cannot fail for a point the sweep made.
        serde_json::from_value(serde_json::Value::Object(cells))
            .expect("every axis column is a column of Row")
    }

    /// The point's values of the axes that `run.json` records per point (the ONNX Runtime session
    /// options, the batch, the batching policy), by their key there; an empty cell is left out.
    pub(crate) fn session_settings(&self) -> std::collections::BTreeMap<String, String> {
        let row = serde_json::to_value(self).unwrap_or_default();
        crate::scenario::axes::run_json_columns()
            .into_iter()
            .filter_map(|(column, key)| {
                let text = match &row[column] {
                    serde_json::Value::Null => return None,
                    serde_json::Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                Some((key.to_string(), text))
            })
            .collect()
    }

    /// The latency columns (cold starts left out), µs.
    pub(crate) fn latency(&self) -> Percentiles {
        Percentiles {
            p50: self.latency_p50_us,
            p90: self.latency_p90_us,
            p95: self.latency_p95_us,
            p99: self.latency_p99_us,
            p999: self.latency_p999_us,
            max: self.latency_max_us,
            mean: self.latency_mean_us,
        }
    }

    /// The values an SLO is checked against, before cold starts are counted into the latency:
    /// throughput, requests, errors, and the cold starts' own p99 (their maximum in files of before
    /// the `cold_start_p99_ms` column).
    pub(crate) fn measured_steady(&self) -> Measured {
        self.latency().into_measured(Measured {
            throughput_rps: self.throughput_rps,
            requests: self.requests,
            errors: self.errors,
            cold_p99_us: self
                .cold_start_p99_ms
                .or(self.cold_start_max_ms)
                .map_or(0.0, |ms| ms * 1e3),
            ..Measured::default()
        })
    }

    /// The values an SLO is checked against, from the row alone, cold starts counted by
    /// [`with_cold_starts_bound`] (each as slow as the slowest); without cold starts, the columns as
    /// they are. With the histograms at hand, the sweep and `bench report` count cold starts exactly
    /// instead ([`crate::metrics::with_cold_starts`]). The row's columns are read at the call, so a
    /// caller may change them first (`bench capacity` checks the service time this way).
    pub(crate) fn measured(&self) -> Measured {
        let latency = with_cold_starts_bound(
            self.latency(),
            self.requests * self.trials.max(1) as u64,
            self.cold_starts,
            self.cold_start_max_ms.unwrap_or(0.0) * 1e3,
        );
        latency.into_measured(self.measured_steady())
    }

    /// The row with every float rounded to three decimals (nanosecond resolution for µs columns).
    /// A test checks that the lists name every float column. A NaN stays NaN: the row is written,
    /// never lost.
    pub(crate) fn rounded(&self) -> Row {
        let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
        let mut r = self.clone();
        for v in [
            &mut r.duration_s,
            &mut r.throughput_rps,
            &mut r.throughput_rps_min,
            &mut r.throughput_rps_max,
            &mut r.latency_p50_us,
            &mut r.latency_p90_us,
            &mut r.latency_p95_us,
            &mut r.latency_p99_us,
            &mut r.latency_p999_us,
            &mut r.latency_max_us,
            &mut r.latency_mean_us,
            &mut r.latency_p99_us_min,
            &mut r.latency_p99_us_max,
            &mut r.service_p50_us,
            &mut r.service_p99_us,
            &mut r.service_mean_us,
            &mut r.send_lag_p50_us,
            &mut r.send_lag_p99_us,
            &mut r.send_lag_max_us,
            &mut r.send_lag_mean_us,
            &mut r.lagged_sends_pct,
            &mut r.compute_p50_us,
            &mut r.compute_p99_us,
            &mut r.compute_mean_us,
            &mut r.overhead_p10_us,
            &mut r.overhead_p50_us,
            &mut r.overhead_p99_us,
            &mut r.overhead_mean_us,
            &mut r.stage_p50_us,
            &mut r.stage_p99_us,
            &mut r.load_ms,
            &mut r.rss_mib,
        ] {
            *v = r3(*v);
        }
        for v in [
            &mut r.rate_rps,
            &mut r.throughput_samples_s,
            &mut r.runs_per_s,
            &mut r.batch_size_mean,
            &mut r.batch_size_p50,
            &mut r.batch_size_max,
            &mut r.queue_wait_p50_us,
            &mut r.queue_wait_p99_us,
            &mut r.cpu_steal_pct,
            &mut r.parent_cpu_us_per_req,
            &mut r.worker_cpu_us_per_req,
            &mut r.cores_used,
            &mut r.first_run_ms,
            &mut r.cold_start_p50_ms,
            &mut r.cold_start_p99_ms,
            &mut r.cold_start_max_ms,
            &mut r.cache_hit_pct,
            &mut r.evicted_age_mean_ms,
            &mut r.evicted_age_max_ms,
            &mut r.miss_delay_p50_us,
            &mut r.miss_delay_p99_us,
            &mut r.model_load_rss_mib,
            &mut r.peak_rss_mib,
            &mut r.gpu_mem_mib,
            &mut r.gpu_util_mean_pct,
            &mut r.gpu_util_max_pct,
            &mut r.restart_ms_max,
        ] {
            *v = v.map(r3);
        }
        r
    }
}

/// How the reason of a row of a model the point's runtime could not run begins:
/// `unsupported by RUNTIME: why` (see `sweep::point::run`).
pub(crate) const UNSUPPORTED: &str = "unsupported by ";

/// The models of `all`'s point that its runtime could not run, as `unsupported by RUNTIME: a, b`;
/// empty when there are none. Their rows are invalid while the point measured the other models.
pub(crate) fn left_out(rows: &[Row], all: &Row) -> String {
    let names: Vec<&str> = rows
        .iter()
        .filter(|r| r.point_id == all.point_id && r.kind == "model")
        .filter(|r| r.reason.starts_with(UNSUPPORTED))
        .map(|r| r.model.as_str())
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("{UNSUPPORTED}{}: {}", all.runtime, names.join(", "))
    }
}

/// The reason cell of a point in the verdict tables: why its `all` row is invalid, and the models
/// its runtime left out.
pub(crate) fn point_reason(rows: &[Row], all: &Row) -> String {
    let left_out = left_out(rows, all);
    match (all.reason.is_empty(), left_out.is_empty()) {
        (_, true) => all.reason.clone(),
        (true, false) => left_out,
        (false, false) => format!("{}; {left_out}", all.reason),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then a rename. A
/// write or rename that fails (a full disk, a file size limit) removes the temporary file: the
/// folder is left as it was.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// For tests of CSV rows: `value` with every float field set to 1.234567, and those fields'
/// names, found through its serde form (an optional field counts when it takes a number).
#[cfg(test)]
pub(crate) fn with_floats_set<T: Serialize + serde::de::DeserializeOwned>(
    value: &T,
) -> (T, Vec<String>) {
    let mut v = serde_json::to_value(value).unwrap();
    let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    let mut floats = Vec::new();
    for k in keys {
        let before = v[&k].clone();
        if before.is_f64() || before.is_null() {
            v[&k] = serde_json::json!(1.234_567);
            if serde_json::from_value::<T>(v.clone()).is_ok() {
                floats.push(k);
            } else {
                v[&k] = before;
            }
        }
    }
    (serde_json::from_value(v).unwrap(), floats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::axes;

    /// Every column an axis declares is a column of `results.csv`, and a row made from a point
    /// holds each cell as declared: a column the `Row` lacks, or fills otherwise, fails here,
    /// never silently.
    #[test]
    fn every_axis_column_is_a_results_column_filled_as_declared() {
        let header = csv::header();
        for c in axes::columns() {
            assert!(header.iter().any(|h| h == c), "no results.csv column `{c}`");
        }
        for p in axes::example_points() {
            let row = serde_json::to_value(Row::of_axes(&p)).unwrap();
            for (column, cell) in axes::cells(&p) {
                assert_eq!(row[&column], cell, "{column} at {}", p.id);
            }
        }
    }

    /// A row's session knobs read back as its point's, and a file without the knobs' columns
    /// reads as their defaults.
    #[test]
    fn a_rows_session_knobs_are_its_points() {
        for p in axes::example_points() {
            assert_eq!(Row::of_axes(&p).session_knobs(), p.session, "{}", p.id);
        }
        let old: Row = serde_json::from_value(serde_json::json!({"point_id": "w1"})).unwrap();
        assert_eq!(old.session_knobs(), crate::scenario::SessionKnobs::DEFAULT);
    }

    /// `run.json` records the session options of every point, and the batch and batching policy
    /// where a point has them.
    #[test]
    fn run_json_records_the_session_options_and_the_batching() {
        let row = Row::of_axes(&crate::scenario::Point::default());
        let keys: Vec<String> = row.session_settings().into_keys().collect();
        // Every declared knob, in the BTreeMap's order; those of the first release among them.
        let mut knobs = crate::scenario::SessionKnobs::NAMES.to_vec();
        knobs.sort_unstable();
        assert_eq!(keys, knobs);
        for knob in [
            "cpu_arena",
            "execution_mode",
            "graph_optimization",
            "inter_threads",
            "intra_spinning",
            "memory_pattern",
            "prepacking",
        ] {
            assert!(keys.iter().any(|k| k == knob), "{knob}");
        }
        let p = axes::example_points()
            .into_iter()
            .find(|p| p.batch.is_some() && p.batching.is_some())
            .expect("an example point with a batch and a batching policy");
        let s = Row::of_axes(&p).session_settings();
        let policy = p.batching.unwrap();
        assert_eq!(s["batch"], p.batch.unwrap().to_string());
        assert_eq!(
            s["batching.max_delay_us"],
            policy.max_delay.as_micros().to_string()
        );
        assert_eq!(s["batching.idle"], policy.idle.name());
    }

    /// Every float column, found through the row's serde form (optional ones by trying a number),
    /// comes out of `rounded` with at most three decimals.
    #[test]
    fn rounded_names_every_float_column() {
        let (row, floats) = with_floats_set(&Row::default());
        assert!(floats.len() >= 39, "{floats:?}");
        let out = serde_json::to_value(row.rounded()).unwrap();
        let unrounded: Vec<&String> = floats.iter().filter(|k| out[*k] != 1.235).collect();
        assert!(unrounded.is_empty(), "not rounded: {unrounded:?}");
    }

    /// `set_timings` reaches every timing column, found through the row's serde form, and takes
    /// each one's median across trials.
    #[test]
    fn set_timings_sets_every_timing_column_to_the_median() {
        let p = |x: f64| Percentiles {
            p50: x,
            p90: x,
            p95: x,
            p99: x,
            p999: x,
            max: x,
            mean: x,
        };
        let t = |x: f64| Timings {
            latency: p(x),
            service: p(x),
            send_lag: p(x),
            compute: p(x),
            overhead: p(x),
            overhead_p10: x,
        };
        let mut row = Row::default();
        row.set_timings(&[t(3.0), t(1.0), t(2.0)]);
        let v = serde_json::to_value(&row).unwrap();
        let timing = ["latency_", "service_", "send_lag_", "compute_", "overhead_"];
        let mut columns = 0;
        for (k, value) in v.as_object().unwrap() {
            if timing.iter().any(|t| k.starts_with(t)) {
                let want = match k.as_str() {
                    "latency_p99_us_min" => 1.0,
                    "latency_p99_us_max" => 3.0,
                    _ => 2.0,
                };
                assert_eq!(value.as_f64(), Some(want), "{k}");
                columns += 1;
            }
        }
        assert_eq!(columns, 23);
        let mut none = row.clone();
        none.set_timings(&[]);
        assert_eq!((none.latency_p50_us, none.latency_p99_us_max), (0.0, 0.0));
    }

    /// The case from a row alone: p99 265 ms over 600 requests, and 7 cold starts of up
    /// to 966 ms.
    #[test]
    fn measured_counts_cold_starts_from_the_row() {
        let row = Row {
            trials: 1,
            requests: 600,
            latency_p99_us: 265_000.0,
            latency_p999_us: 270_000.0,
            latency_max_us: 280_000.0,
            cold_starts: 7,
            cold_start_p99_ms: Some(960.0),
            cold_start_max_ms: Some(966.0),
            ..Row::default()
        };
        assert_eq!(row.measured_steady().p99_us, 265_000.0);
        let m = row.measured();
        assert_eq!(
            (m.p99_us, m.max_us, m.cold_p99_us),
            (966_000.0, 966_000.0, 960_000.0)
        );
        // The columns are read when asked: a caller may change them first.
        let service = Row {
            latency_p99_us: 100_000.0,
            cold_starts: 0,
            ..row.clone()
        };
        assert_eq!(service.measured().p99_us, 100_000.0);
        // A file of before `cold_start_p99_ms`: the cold starts' maximum stands in.
        let old = Row {
            cold_start_p99_ms: None,
            ..row
        };
        assert_eq!(old.measured().cold_p99_us, 966_000.0);
    }

    #[test]
    fn a_nan_is_kept_not_lost() {
        let r = Row {
            latency_p50_us: f64::NAN,
            ..Row::default()
        };
        assert!(r.rounded().latency_p50_us.is_nan());
    }

    #[test]
    fn rounding_reaches_every_float_column_and_leaves_the_rest() {
        let row = Row {
            latency_p50_us: 417.123_456,
            cpu_steal_pct: Some(10.206_718_346),
            worker_cpu_us_per_req: Some(81.234_56),
            cores_used: Some(1.000_49),
            gpu_util_mean_pct: Some(0.000_4),
            rate_rps: Some(62.5),
            requests: 123_456_789,
            point_id: "w1-t1-pipe-cpu-c1".into(),
            ..Row::default()
        };
        let r = row.rounded();
        assert_eq!(r.latency_p50_us, 417.123);
        assert_eq!(r.cpu_steal_pct, Some(10.207));
        assert_eq!(
            (r.worker_cpu_us_per_req, r.cores_used),
            (Some(81.235), Some(1.0))
        );
        assert_eq!(r.gpu_util_mean_pct, Some(0.0));
        assert_eq!(r.rate_rps, Some(62.5));
        assert_eq!(r.first_run_ms, None);
        assert_eq!(
            (r.requests, r.point_id.as_str()),
            (123_456_789, "w1-t1-pipe-cpu-c1")
        );
    }

    /// Regression: a report that could not be written (a full disk) left `.report.html.tmpNNNN`
    /// in the results folder.
    #[test]
    fn a_failed_atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A folder in the way: the temporary file is written, the rename fails.
        let target = dir.path().join("report.html");
        std::fs::create_dir_all(target.join("in-the-way")).unwrap();
        assert!(write_atomic(&target, b"<html>").is_err());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["report.html"], "only the folder that was there");
        write_atomic(&dir.path().join("ok.md"), b"x").unwrap();
        assert_eq!(std::fs::read(dir.path().join("ok.md")).unwrap(), b"x");
    }
}
