//! `bench compare`: did a change make things slower? Two results of the same scenario (a baseline
//! and a candidate) are matched row by row, by point id and model, and each chosen metric is judged.
//!
//! A change counts as a regression only when it is worse than the threshold and statistically
//! significant: the 95% confidence interval of the change, a bootstrap over both sides' trials and
//! their requests ([`interval`]), lies wholly on the worse side of zero. Results folders carry what
//! that needs in `hlog/` (a histogram per trial). A bare `results.csv` has only each metric's
//! trial range; then the noise band stands in: the union of both sides' ranges, relative to each
//! median, and a change must also be wider than it. With one trial and no histograms there is
//! neither, and only the threshold applies; the output says so.
//!
//! [`compare`] is a pure function over [`Row`]s; [`load`] reads a side from disk and the render
//! functions make the console table and the markdown for a CI job summary.
//!
//! - this file: the types, [`differences`] and [`compare`], which matches the rows;
//! - `judge.rs`: one metric's noise and verdict;
//! - `render.rs`: the console table, the Markdown and the benchmark JSON;
//! - `read.rs`: one side read from a results folder;
//! - [`interval`]: the bootstrap confidence interval; [`baseline`]: named baselines.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::report::Row;
use crate::report::console::human_us;
use crate::report::json::RunInfo;

pub mod baseline;
pub mod interval;
mod judge;
mod read;
mod render;
pub(crate) use interval::{Trial, change_interval};
pub(crate) use read::load;
pub(crate) use render::write_run_benchmark_json;

use judge::{judge, noise, runs_band};

/// A metric that can be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Metric {
    Throughput,
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
    Mean,
}

impl Metric {
    pub(crate) const ALL: [Metric; 8] = [
        Metric::Throughput,
        Metric::P50,
        Metric::P90,
        Metric::P95,
        Metric::P99,
        Metric::P999,
        Metric::Max,
        Metric::Mean,
    ];

    /// The name used by `--metrics`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Metric::Throughput => "throughput",
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::P999 => "p999",
            Metric::Max => "max",
            Metric::Mean => "mean",
        }
    }

    /// The `results.csv` column holding the value (the median across trials).
    pub(crate) fn column(self) -> &'static str {
        match self {
            Metric::Throughput => "throughput_rps",
            Metric::P50 => "latency_p50_us",
            Metric::P90 => "latency_p90_us",
            Metric::P95 => "latency_p95_us",
            Metric::P99 => "latency_p99_us",
            Metric::P999 => "latency_p999_us",
            Metric::Max => "latency_max_us",
            Metric::Mean => "latency_mean_us",
        }
    }

    /// The columns holding the trial range (minimum, maximum), where `results.csv` has them.
    pub(crate) fn range_columns(self) -> Option<(&'static str, &'static str)> {
        match self {
            Metric::Throughput => Some(("throughput_rps_min", "throughput_rps_max")),
            Metric::P99 => Some(("latency_p99_us_min", "latency_p99_us_max")),
            _ => None,
        }
    }

    /// Parses one name of `--metrics`: `throughput` (or `throughput_rps`), `p50` … `p999`
    /// (or `p99.9`), `max`, `mean`, or the CSV column name.
    pub(crate) fn parse(s: &str) -> Result<Metric, String> {
        let t = s.trim().to_ascii_lowercase();
        let t = match t.as_str() {
            "p99.9" => "p999",
            "rps" => "throughput",
            other => other,
        };
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == t || m.column() == t)
            .ok_or_else(|| {
                let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown metric `{}`; use one or more of: {}",
                    s.trim(),
                    names.join(", ")
                )
            })
    }

    /// Parses a comma-separated list such as `throughput,p50,p99,p999` (duplicates dropped).
    pub(crate) fn parse_list(s: &str) -> Result<Vec<Metric>, String> {
        let mut out = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let m = Metric::parse(part)?;
            if !out.contains(&m) {
                out.push(m);
            }
        }
        if out.is_empty() {
            return Err("--metrics is empty; e.g. `--metrics throughput,p50,p99`".into());
        }
        Ok(out)
    }

    fn higher_is_better(self) -> bool {
        self == Metric::Throughput
    }

    /// The value in a row: requests/s for throughput, µs for latencies.
    pub(crate) fn value(self, r: &Row) -> f64 {
        match self {
            Metric::Throughput => r.throughput_rps,
            Metric::P50 => r.latency_p50_us,
            Metric::P90 => r.latency_p90_us,
            Metric::P95 => r.latency_p95_us,
            Metric::P99 => r.latency_p99_us,
            Metric::P999 => r.latency_p999_us,
            Metric::Max => r.latency_max_us,
            Metric::Mean => r.latency_mean_us,
        }
    }

    fn row_range(self, r: &Row) -> Option<(f64, f64)> {
        match self {
            Metric::Throughput => Some((r.throughput_rps_min, r.throughput_rps_max)),
            Metric::P99 => Some((r.latency_p99_us_min, r.latency_p99_us_max)),
            _ => None,
        }
    }

    /// The quantile of the latency histogram behind a percentile metric.
    fn quantile(self) -> Option<f64> {
        match self {
            Metric::P50 => Some(0.50),
            Metric::P90 => Some(0.90),
            Metric::P95 => Some(0.95),
            Metric::P99 => Some(0.99),
            Metric::P999 => Some(0.999),
            _ => None,
        }
    }

    fn format(self, v: f64) -> String {
        match self {
            Metric::Throughput => format!("{v:.0} req/s"),
            _ => human_us(v),
        }
    }
}

/// One side of a comparison: the rows of a `results.csv`, and the trial ranges of metrics the CSV
/// keeps no range for, read from the `hlog/` folder beside it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Side {
    /// The `results.csv` file the rows come from.
    pub(crate) file: PathBuf,
    pub(crate) rows: Vec<Row>,
    /// `(point_id, model, metric)` → the minimum and maximum across trials.
    pub(crate) ranges: HashMap<(String, String, Metric), (f64, f64)>,
    /// `(point_id, model)` → each trial's latency histogram, from `hlog/`: what the confidence
    /// intervals are computed from.
    pub(crate) trials: HashMap<(String, String), Vec<Trial>>,
    /// Problems that did not stop the comparison (an unreadable histogram log).
    pub(crate) warnings: Vec<String>,
    /// The folder's `run.json`, when there is one.
    pub(crate) info: Option<RunInfo>,
    /// Earlier runs of a named baseline (most recent first): their rows give the spread between
    /// runs, which trials within one run cannot show.
    pub(crate) history: Vec<Vec<Row>>,
}

impl Side {
    /// A side with only the rows (the CSV's own ranges for throughput and p99).
    pub(crate) fn of_rows(file: impl Into<PathBuf>, rows: Vec<Row>) -> Side {
        Side {
            file: file.into(),
            rows,
            ..Side::default()
        }
    }

    /// The trial range of `m` in row `r`, or why there is none.
    fn range(&self, r: &Row, m: Metric) -> Result<(f64, f64), Noise> {
        if r.trials < 2 {
            return Err(Noise::OneTrial);
        }
        m.row_range(r)
            .or_else(|| {
                self.ranges
                    .get(&(r.point_id.clone(), r.model.clone(), m))
                    .copied()
            })
            .ok_or(Noise::NotRecorded)
    }
}

/// How uncertain one comparison is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Noise {
    /// The 95% confidence interval of the change, in percent (from `trials` trials a side at
    /// the fewest).
    Interval { low: f64, high: f64, trials: usize },
    /// The width of the union of both sides' trial ranges, in percent of each side's median.
    Measured(f64),
    /// Both sides measured one trial: there is no band.
    OneTrial,
    /// The trials' range of this metric was not recorded (no CSV column and no `hlog/` folder).
    NotRecorded,
}

/// What a comparison found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verdict {
    /// Worse than both the threshold and the noise band.
    Regression,
    /// Better than both the threshold and the noise band.
    Improvement,
    /// Beyond the threshold, but within the noise band.
    WithinNoise,
    /// Within the threshold.
    WithinThreshold,
}

impl Verdict {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Verdict::Regression => "REGRESSION",
            Verdict::Improvement => "improvement",
            Verdict::WithinNoise => "within noise",
            Verdict::WithinThreshold => "within threshold",
        }
    }
}

/// One metric of one matched row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub(crate) point_id: String,
    pub(crate) model: String,
    pub(crate) metric: Metric,
    pub(crate) baseline: f64,
    pub(crate) candidate: f64,
    /// `(candidate − baseline) / baseline` in percent; `None` when the baseline is 0.
    pub(crate) change_pct: Option<f64>,
    pub(crate) noise: Noise,
    /// Where the baseline's runs (a named baseline's history) say this metric may fall by
    /// chance: a change inside it is noise.
    pub(crate) runs_band: Option<RunsBand>,
    pub(crate) verdict: Verdict,
    /// Says when a side's point is invalid (its numbers are less trustworthy).
    pub(crate) note: String,
}

/// The 95% prediction interval of one more run from a named baseline's runs, in percent of the
/// baseline's value (see `runs_band`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RunsBand {
    pub(crate) low: f64,
    pub(crate) high: f64,
    /// The baseline run and its earlier runs that had this row.
    pub(crate) runs: usize,
}

/// Settings of a comparison.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) metrics: Vec<Metric>,
    /// A change must be worse than this many percent to count.
    pub(crate) threshold_pct: f64,
    /// A latency must also move by at least this many microseconds to count: smaller moves are
    /// below the scheduling noise of a shared machine.
    pub(crate) min_change_us: f64,
}

/// The default of `--min-change-us`: about half of what waking an idle peer costs on a 2-vCPU
/// VM (70–95 µs), so a tail that moves by less than one scheduler wake-up is not a regression.
pub(crate) const DEFAULT_MIN_CHANGE_US: f64 = 50.0;

impl Default for Options {
    fn default() -> Self {
        Options {
            metrics: vec![Metric::Throughput, Metric::P50, Metric::P99],
            threshold_pct: 10.0,
            min_change_us: DEFAULT_MIN_CHANGE_US,
        }
    }
}

/// The whole comparison.
#[derive(Debug, Clone)]
pub(crate) struct Comparison {
    pub(crate) baseline: PathBuf,
    pub(crate) candidate: PathBuf,
    pub(crate) threshold_pct: f64,
    pub(crate) min_change_us: f64,
    pub(crate) metrics: Vec<Metric>,
    /// In the baseline's row order, then by metric.
    pub(crate) changes: Vec<Change>,
    /// `(point_id, model)` only in the candidate.
    pub(crate) added: Vec<(String, String)>,
    /// `(point_id, model)` only in the baseline.
    pub(crate) missing: Vec<(String, String)>,
    /// How the runs differ ([`differences`]), when compared anyway (`--allow-different`).
    pub(crate) differences: Vec<String>,
}

impl Comparison {
    pub(crate) fn count(&self, v: Verdict) -> usize {
        self.changes.iter().filter(|c| c.verdict == v).count()
    }

    pub(crate) fn has_regression(&self) -> bool {
        self.count(Verdict::Regression) > 0
    }
}

/// What makes two runs' numbers not comparable: a different scenario file, other effective
/// settings (trials, warm-up, stop rule, load, ...: `scenario::effective_settings`), another ONNX
/// Runtime, another CPU model or core count. One line per difference, baseline first.
pub(crate) fn differences(base: &RunInfo, cand: &RunInfo) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, b: String, c: String| {
        if b != c {
            out.push(format!("{what}: {b} (baseline) against {c} (candidate)"));
        }
    };
    let short = |h: &str| h.chars().take(12).collect::<String>();
    differ(
        "scenario",
        format!(
            "`{}` sha256 {}",
            base.scenario.name,
            short(&base.scenario.sha256)
        ),
        format!(
            "`{}` sha256 {}",
            cand.scenario.name,
            short(&cand.scenario.sha256)
        ),
    );
    if !base.settings.is_empty() && !cand.settings.is_empty() {
        let keys: std::collections::BTreeSet<&String> =
            base.settings.keys().chain(cand.settings.keys()).collect();
        for k in keys {
            let get = |i: &RunInfo| i.settings.get(k).cloned().unwrap_or_else(|| "unset".into());
            differ(k, get(base), get(cand));
        }
    }
    differ(
        "ONNX Runtime",
        base.ort_version.clone(),
        cand.ort_version.clone(),
    );
    differ(
        "CPU model",
        base.host.cpu_model.clone(),
        cand.host.cpu_model.clone(),
    );
    differ(
        "logical cores",
        base.host.logical_cores.to_string(),
        cand.host.logical_cores.to_string(),
    );
    out
}

/// Why two results cannot be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum CompareError {
    #[error(
        "the baseline and the candidate have no point in common (baseline points: {baseline}; candidate points: {candidate}): \
         compare results of the same scenario, whose point ids match"
    )]
    NoCommonPoints { baseline: String, candidate: String },
    #[error("{file}: point {point_id} has two `{model}` rows; compare the results of one sweep")]
    Duplicate {
        file: String,
        point_id: String,
        model: String,
    },
    #[error("--threshold must be a number of percent >= 0, got {0}")]
    Threshold(f64),
    #[error("--min-change-us must be a number of microseconds >= 0, got {0}")]
    MinChange(f64),
}

/// The distinct point ids of a side, in order.
fn point_ids(side: &Side) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::new();
    for r in &side.rows {
        if !ids.contains(&r.point_id.as_str()) {
            ids.push(&r.point_id);
        }
    }
    ids
}

/// Compares `candidate` against `baseline`: rows are matched by point id and model.
pub(crate) fn compare(
    baseline: &Side,
    candidate: &Side,
    opts: &Options,
) -> Result<Comparison, CompareError> {
    if !(opts.threshold_pct.is_finite() && opts.threshold_pct >= 0.0) {
        return Err(CompareError::Threshold(opts.threshold_pct));
    }
    if !(opts.min_change_us.is_finite() && opts.min_change_us >= 0.0) {
        return Err(CompareError::MinChange(opts.min_change_us));
    }
    let b_index = index_rows(baseline)?;
    let c_index = index_rows(candidate)?;
    check_common_points(baseline, candidate)?;
    let mut changes = Vec::new();
    let mut missing = Vec::new();
    // The judgements this comparison makes: its intervals are simultaneous over all of them.
    let judgements = baseline
        .rows
        .iter()
        .filter(|b| c_index.contains_key(&(b.point_id.clone(), b.model.clone())))
        .count()
        * opts.metrics.len();
    for b in &baseline.rows {
        let key = (b.point_id.clone(), b.model.clone());
        let Some(&ci) = c_index.get(&key) else {
            missing.push(key);
            continue;
        };
        let c = &candidate.rows[ci];
        for &m in &opts.metrics {
            changes.push(change_of(baseline, candidate, (b, c), m, judgements, opts));
        }
    }
    let added = candidate
        .rows
        .iter()
        .filter(|r| !b_index.contains_key(&(r.point_id.clone(), r.model.clone())))
        .map(|r| (r.point_id.clone(), r.model.clone()))
        .collect();
    Ok(Comparison {
        baseline: baseline.file.clone(),
        candidate: candidate.file.clone(),
        threshold_pct: opts.threshold_pct,
        min_change_us: opts.min_change_us,
        metrics: opts.metrics.clone(),
        changes,
        added,
        missing,
        differences: Vec::new(),
    })
}

/// Each row's place in `side`, by `(point_id, model)`; two rows of one key are an error.
fn index_rows(side: &Side) -> Result<HashMap<(String, String), usize>, CompareError> {
    let mut map = HashMap::new();
    for (i, r) in side.rows.iter().enumerate() {
        if map
            .insert((r.point_id.clone(), r.model.clone()), i)
            .is_some()
        {
            return Err(CompareError::Duplicate {
                file: side.file.display().to_string(),
                point_id: r.point_id.clone(),
                model: r.model.clone(),
            });
        }
    }
    Ok(map)
}

/// Two sides with no point in common are results of different scenarios: an error that lists
/// both sides' points.
fn check_common_points(baseline: &Side, candidate: &Side) -> Result<(), CompareError> {
    let (bp, cp) = (point_ids(baseline), point_ids(candidate));
    if bp.iter().any(|p| cp.contains(p)) {
        return Ok(());
    }
    let list = |v: Vec<&str>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    Err(CompareError::NoCommonPoints {
        baseline: list(bp),
        candidate: list(cp),
    })
}

/// Metric `m` of the matched rows `(b, c)`, judged: its change, its noise (the bootstrap
/// interval over both sides' trials, simultaneous over `judgements`, else the trials' band), the
/// baseline's runs' band, and the verdict, with a note when either row is invalid.
fn change_of(
    baseline: &Side,
    candidate: &Side,
    (b, c): (&Row, &Row),
    m: Metric,
    judgements: usize,
    opts: &Options,
) -> Change {
    let note = match (b.valid, c.valid) {
        (true, true) => String::new(),
        (false, true) => "baseline invalid".into(),
        (true, false) => "candidate invalid".into(),
        (false, false) => "both invalid".into(),
    };
    let (bv, cv) = (m.value(b), m.value(c));
    let change_pct = (bv > 0.0).then(|| (cv - bv) / bv * 100.0);
    let key = (b.point_id.clone(), b.model.clone());
    let noise = match (baseline.trials.get(&key), candidate.trials.get(&key)) {
        (Some(bt), Some(ct)) => {
            change_interval(bt, ct, m, judgements).map(|(low, high)| Noise::Interval {
                low,
                high,
                trials: bt.len().min(ct.len()),
            })
        }
        _ => None,
    }
    .unwrap_or_else(|| noise(baseline, b, candidate, c, m));
    let runs_band = runs_band(b, &baseline.history, m);
    let verdict = match change_pct {
        None => Verdict::WithinThreshold,
        Some(p) => judge(m, p, cv - bv, noise, runs_band, opts),
    };
    Change {
        point_id: b.point_id.clone(),
        model: b.model.clone(),
        metric: m,
        baseline: bv,
        candidate: cv,
        change_pct,
        noise,
        runs_band,
        verdict,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use judge::student_t_975;

    fn row(point: &str, model: &str, rps: f64, p99: f64) -> Row {
        Row {
            point_id: point.into(),
            model: model.into(),
            trials: 1,
            valid: true,
            throughput_rps: rps,
            throughput_rps_min: rps,
            throughput_rps_max: rps,
            latency_p50_us: p99 / 2.0,
            latency_p99_us: p99,
            latency_p99_us_min: p99,
            latency_p99_us_max: p99,
            ..Row::default()
        }
    }

    fn with_trials(mut r: Row, rps: (f64, f64), p99: (f64, f64)) -> Row {
        r.trials = 3;
        (r.throughput_rps_min, r.throughput_rps_max) = rps;
        (r.latency_p99_us_min, r.latency_p99_us_max) = p99;
        r
    }

    fn side(rows: Vec<Row>) -> Side {
        Side::of_rows("results.csv", rows)
    }

    fn verdicts(c: &Comparison) -> Vec<(Metric, Verdict)> {
        c.changes.iter().map(|c| (c.metric, c.verdict)).collect()
    }

    #[test]
    fn one_trial_uses_the_threshold_only_and_says_so() {
        let base = side(vec![row("p", "all", 1000.0, 2000.0)]);
        let cand = side(vec![row("p", "all", 850.0, 2150.0)]);
        let c = compare(&base, &cand, &Options::default()).unwrap();
        assert_eq!(
            verdicts(&c),
            [
                (Metric::Throughput, Verdict::Regression),
                (Metric::P50, Verdict::WithinThreshold),
                (Metric::P99, Verdict::WithinThreshold),
            ]
        );
        assert_eq!(c.changes[0].change_pct, Some(-15.0));
        assert_eq!(c.changes[0].noise, Noise::OneTrial);
        assert!(c.has_regression());
        assert!(c.noise_notes()[0].contains("only the 10% threshold applies"));
        assert!(c.render(false).contains("REGRESSION"));
    }

    #[test]
    fn a_change_within_the_trials_noise_is_not_a_regression() {
        // Baseline trials span −10%…+10% of the median: a band of 20% once unioned with the
        // candidate's −5%…+5%.
        let base = side(vec![with_trials(
            row("p", "all", 1000.0, 2000.0),
            (900.0, 1100.0),
            (1900.0, 2100.0),
        )]);
        let cand = side(vec![with_trials(
            row("p", "all", 850.0, 2500.0),
            (807.5, 892.5),
            (2400.0, 2600.0),
        )]);
        let c = compare(&base, &cand, &Options::default()).unwrap();
        let t = &c.changes[0];
        assert_eq!(t.noise, Noise::Measured(20.0));
        assert_eq!(t.verdict, Verdict::WithinNoise, "−15% is inside a 20% band");
        // p99: +25% against a band of max(5, 4) − min(−5, −4) = 10%: a regression.
        let p99 = c.changes.iter().find(|c| c.metric == Metric::P99).unwrap();
        assert!(matches!(p99.noise, Noise::Measured(w) if (w - 10.0).abs() < 1e-9));
        assert_eq!(p99.verdict, Verdict::Regression);
        // p50 has no range in the CSV and there is no hlog/: threshold only, and said so.
        let p50 = c.changes.iter().find(|c| c.metric == Metric::P50).unwrap();
        assert_eq!(p50.noise, Noise::NotRecorded);
        assert!(c.noise_notes().iter().any(|n| n.contains("for p50")));
    }

    #[test]
    fn improvements_and_direction_per_metric() {
        let base = side(vec![row("p", "all", 1000.0, 2000.0)]);
        let cand = side(vec![row("p", "all", 1200.0, 1000.0)]);
        let c = compare(&base, &cand, &Options::default()).unwrap();
        assert_eq!(
            verdicts(&c),
            [
                (Metric::Throughput, Verdict::Improvement),
                (Metric::P50, Verdict::Improvement),
                (Metric::P99, Verdict::Improvement),
            ]
        );
        assert!(!c.has_regression());
        // Higher latency is worse; higher throughput is better.
        let worse = side(vec![row("p", "all", 1000.0, 2400.0)]);
        let c = compare(&base, &worse, &Options::default()).unwrap();
        assert_eq!(c.count(Verdict::Regression), 2, "p50 and p99");
    }

    #[test]
    fn the_threshold_is_strict_and_configurable() {
        let base = side(vec![row("p", "all", 1000.0, 2000.0)]);
        let cand = side(vec![row("p", "all", 900.0, 2000.0)]);
        let at10 = compare(&base, &cand, &Options::default()).unwrap();
        assert_eq!(at10.changes[0].verdict, Verdict::WithinThreshold);
        let at5 = Options {
            threshold_pct: 5.0,
            ..Options::default()
        };
        let c = compare(&base, &cand, &at5).unwrap();
        assert_eq!(c.changes[0].verdict, Verdict::Regression);
        let bad = Options {
            threshold_pct: -1.0,
            ..Options::default()
        };
        assert_eq!(
            compare(&base, &cand, &bad).unwrap_err(),
            CompareError::Threshold(-1.0)
        );
        let bad = Options {
            min_change_us: f64::NAN,
            ..Options::default()
        };
        assert!(matches!(
            compare(&base, &cand, &bad).unwrap_err(),
            CompareError::MinChange(v) if v.is_nan()
        ));
    }

    #[test]
    fn rows_only_on_one_side_are_added_or_missing_not_regressions() {
        let base = side(vec![
            row("a", "all", 1000.0, 2000.0),
            row("b", "all", 1000.0, 2000.0),
        ]);
        let cand = side(vec![
            row("a", "all", 1000.0, 2000.0),
            row("c", "all", 10.0, 9e9),
        ]);
        let c = compare(&base, &cand, &Options::default()).unwrap();
        assert_eq!(c.missing, [("b".to_string(), "all".to_string())]);
        assert_eq!(c.added, [("c".to_string(), "all".to_string())]);
        assert!(!c.has_regression());
        assert_eq!(c.changes.len(), 3);
        assert!(
            c.headline().contains("1 row added, 1 missing"),
            "{}",
            c.headline()
        );
    }

    #[test]
    fn no_common_point_or_duplicate_rows_are_errors() {
        let base = side(vec![row("a", "all", 1.0, 1.0)]);
        let cand = side(vec![row("b", "all", 1.0, 1.0)]);
        let e = compare(&base, &cand, &Options::default()).unwrap_err();
        assert!(e.to_string().contains("no point in common"), "{e}");
        let dup = side(vec![row("a", "all", 1.0, 1.0), row("a", "all", 1.0, 1.0)]);
        assert!(matches!(
            compare(&dup, &base, &Options::default()),
            Err(CompareError::Duplicate { .. })
        ));
    }

    #[test]
    fn a_change_counts_only_beyond_the_threshold_and_with_an_interval_clear_of_zero() {
        let i = |low, high| Noise::Interval {
            low,
            high,
            trials: 3,
        };
        let opts = Options::default();
        // A baseline of 1 ms: a change of p percent moves a latency by 10·p µs.
        let judge = |m, p: f64, noise, runs| judge(m, p, 10.0 * p, noise, runs, &opts);
        // Latency: +15% with [+11, +19] is a regression; with [-2, +30] it is not significant.
        assert_eq!(
            judge(Metric::P99, 15.0, i(11.0, 19.0), None),
            Verdict::Regression
        );
        assert_eq!(
            judge(Metric::P99, 15.0, i(-2.0, 30.0), None),
            Verdict::WithinNoise
        );
        // Significant but within the threshold is no regression either.
        assert_eq!(
            judge(Metric::P99, 5.0, i(4.0, 6.0), None),
            Verdict::WithinThreshold
        );
        assert_eq!(
            judge(Metric::P50, -15.0, i(-19.0, -11.0), None),
            Verdict::Improvement
        );
        // Throughput: higher is better, so a clear drop is the regression.
        assert_eq!(
            judge(Metric::Throughput, -15.0, i(-19.0, -11.0), None),
            Verdict::Regression
        );
        assert_eq!(
            judge(Metric::Throughput, 15.0, i(11.0, 19.0), None),
            Verdict::Improvement
        );
        assert_eq!(
            judge(Metric::Throughput, -15.0, i(-30.0, 1.0), None),
            Verdict::WithinNoise
        );
        // A significant change inside the prediction interval of the baseline's runs is noise.
        let runs = Some(RunsBand {
            low: -12.0,
            high: 18.0,
            runs: 5,
        });
        assert_eq!(
            judge(Metric::P99, 15.0, i(11.0, 19.0), runs),
            Verdict::WithinNoise
        );
        assert_eq!(
            judge(Metric::P99, 25.0, i(21.0, 29.0), runs),
            Verdict::Regression
        );
        assert_eq!(
            judge(Metric::Throughput, -15.0, i(-19.0, -11.0), runs),
            Verdict::Regression,
            "the interval is not symmetric: −15% is below its −12%"
        );
        // Without trials only the threshold applies; a band must be beaten too.
        assert_eq!(
            judge(Metric::P99, 15.0, Noise::OneTrial, None),
            Verdict::Regression
        );
        assert_eq!(
            judge(Metric::P99, 15.0, Noise::Measured(20.0), None),
            Verdict::WithinNoise
        );
    }

    #[test]
    fn a_latency_that_moves_by_less_than_the_floor_is_within_threshold() {
        let sure = Noise::Interval {
            low: 20.0,
            high: 40.0,
            trials: 3,
        };
        let opts = Options::default();
        // 127 → 151 µs: +19%, significant, but 24 µs is under the 50 µs floor.
        assert_eq!(
            judge(Metric::P99, 18.9, 24.0, sure, None, &opts),
            Verdict::WithinThreshold
        );
        assert_eq!(
            judge(Metric::P99, 18.9, 60.0, sure, None, &opts),
            Verdict::Regression
        );
        // The floor is for latencies only; `--min-change-us 0` turns it off.
        let off = Options {
            min_change_us: 0.0,
            ..Options::default()
        };
        assert_eq!(
            judge(Metric::P99, 18.9, 24.0, sure, None, &off),
            Verdict::Regression
        );
        let drop = Noise::Interval {
            low: -40.0,
            high: -20.0,
            trials: 3,
        };
        assert_eq!(
            judge(Metric::Throughput, -30.0, -3.0, drop, None, &opts),
            Verdict::Regression
        );
    }

    #[test]
    fn the_baselines_runs_give_a_prediction_interval() {
        let b = row("p", "all", 100.0, 1000.0);
        assert_eq!(runs_band(&b, &[], Metric::P99), None);
        let history = vec![
            vec![row("p", "all", 100.0, 1100.0)],
            vec![row("other", "all", 100.0, 5000.0)],
            vec![row("p", "all", 100.0, 900.0)],
        ];
        // p99 of 1000, 1100 and 900 µs.
        let r = runs_band(&b, &history, Metric::P99).unwrap();
        assert_eq!(r.runs, 3);
        let logs = [1000f64.ln(), 1100f64.ln(), 900f64.ln()];
        let mean = logs.iter().sum::<f64>() / 3.0;
        let s = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        let half = 4.303 * s * (4.0f64 / 3.0).sqrt();
        let high = ((mean + half).exp() / 1000.0 - 1.0) * 100.0;
        assert!((r.high - high).abs() < 1e-9, "{r:?}");
        // With two degrees of freedom the interval is wide: about ±40% for a 10% spread.
        assert!(r.low < -30.0 && r.high > 40.0, "{r:?}");
        // More runs with the same spread narrow it.
        let more: Vec<Vec<Row>> = [1100.0, 900.0, 1100.0, 900.0, 1000.0]
            .iter()
            .map(|&v| vec![row("p", "all", 100.0, v)])
            .collect();
        let narrower = runs_band(&b, &more, Metric::P99).unwrap();
        assert_eq!(narrower.runs, 6);
        assert!(narrower.high < r.high / 2.0, "{narrower:?} against {r:?}");
    }

    #[test]
    fn student_t_matches_its_table_and_tends_to_the_normal() {
        assert_eq!(student_t_975(1), 12.706);
        assert!((student_t_975(11) - 2.201).abs() < 1e-3);
        assert!((student_t_975(15) - 2.131).abs() < 1e-3);
        assert!((student_t_975(30) - 2.042).abs() < 1e-3);
        assert!((student_t_975(1000) - 1.962).abs() < 1e-3);
        assert!(student_t_975(0).is_infinite());
    }

    #[test]
    fn runs_differ_in_scenario_settings_runtime_and_cpu() {
        let a = crate::report::view::tests::run_info();
        assert!(differences(&a, &a).is_empty());
        let mut b = a.clone();
        b.scenario.sha256 = "ffffffffffffffff".into();
        b.settings.insert("workload.trials".into(), "1".into());
        b.ort_version = "1.30.0".into();
        b.host.logical_cores = 16;
        let d = differences(&a, &b);
        assert_eq!(d.len(), 4, "{d:?}");
        assert!(d[0].starts_with("scenario: `demo` sha256 0123456789ab (baseline) against"));
        assert_eq!(d[1], "workload.trials: 3 (baseline) against 1 (candidate)");
        assert_eq!(
            d[2],
            "ONNX Runtime: 1.31.1 (baseline) against 1.30.0 (candidate)"
        );
        assert_eq!(d[3], "logical cores: 2 (baseline) against 16 (candidate)");
        // A run.json from before settings were recorded: they are not compared.
        let mut old = a.clone();
        old.settings.clear();
        assert!(differences(&old, &a).is_empty());
    }

    #[test]
    fn metrics_parse() {
        assert_eq!(
            Metric::parse_list("throughput,p50,p99,p999").unwrap(),
            [Metric::Throughput, Metric::P50, Metric::P99, Metric::P999]
        );
        assert_eq!(
            Metric::parse_list("p99.9, latency_p99_us,p99").unwrap(),
            [Metric::P999, Metric::P99]
        );
        let e = Metric::parse_list("p98").unwrap_err();
        assert!(
            e.contains("unknown metric `p98`") && e.contains("throughput"),
            "{e}"
        );
        assert!(Metric::parse_list(" , ").is_err());
    }

    #[test]
    fn markdown_names_regressions_and_keeps_every_row_collapsed() {
        let base = side(vec![
            row("p", "all", 1000.0, 2000.0),
            row("p", "m", 1000.0, 2000.0),
        ]);
        let mut slow = row("p", "all", 700.0, 2000.0);
        slow.valid = false;
        let cand = side(vec![slow, row("p", "m", 1000.0, 2000.0)]);
        let c = compare(&base, &cand, &Options::default()).unwrap();
        let md = c.markdown();
        assert!(md.starts_with("## bench compare: 1 regression\n"), "{md}");
        assert!(md.contains("| p | all | throughput | 1000 req/s | 700 req/s | -30.0% | none (1 trial) | **REGRESSION (candidate invalid)** |"), "{md}");
        assert!(md.contains("<details><summary>All 6 comparisons</summary>"));
        assert!(md.contains("> No noise band"));
    }

    #[test]
    fn loads_by_column_name_and_reports_missing_columns() {
        let dir = tempfile::tempdir().unwrap();
        // A file with extra columns, columns in another order and some of this version's missing.
        let csv = "model,point_id,extra,trials,valid,throughput_rps,throughput_rps_min,throughput_rps_max,\
                   latency_p50_us,latency_p99_us,latency_p99_us_min,latency_p99_us_max\n\
                   all,w1,x,1,true,100.5,100.5,100.5,50,90,90,90\n";
        std::fs::write(dir.path().join("results.csv"), csv).unwrap();
        let s = load(dir.path(), "baseline", &Options::default().metrics).unwrap();
        assert_eq!(s.rows.len(), 1);
        assert_eq!(
            (s.rows[0].point_id.as_str(), s.rows[0].throughput_rps),
            ("w1", 100.5)
        );
        let e = load(dir.path(), "baseline", &[Metric::P999]).unwrap_err();
        assert!(
            format!("{e:#}").contains("lacks the column(s) latency_p999_us"),
            "{e:#}"
        );
        let e = load(&dir.path().join("nope"), "candidate", &[]).unwrap_err();
        assert!(
            format!("{e:#}").contains("candidate") && format!("{e:#}").contains("does not exist"),
            "{e:#}"
        );
        let empty = tempfile::tempdir().unwrap();
        let e = load(empty.path(), "baseline", &[]).unwrap_err();
        assert!(format!("{e:#}").contains("holds no results.csv"), "{e:#}");
    }

    /// Regression: github-action-benchmark's JSON came only from `compare`; a run's own numbers
    /// are written without a baseline, by `sweep`, `run` and `report`.
    #[test]
    fn a_runs_benchmark_json_has_its_latencies_and_throughput_without_a_baseline() {
        let mut failed = row("p1", "m", 0.0, 0.0);
        (failed.requests, failed.errors, failed.valid) = (0, 5, false);
        failed.reason = "5 failed request(s)".into();
        let mut ok = with_trials(row("p0", "m", 100.0, 900.0), (90.0, 110.0), (800.0, 1000.0));
        ok.requests = 300;
        let rows = vec![ok, failed];
        let read = |bigger| -> Vec<serde_json::Value> {
            serde_json::from_str(&render::run_benchmark_json(&rows, bigger)).unwrap()
        };
        let smaller = read(false);
        let names: Vec<&str> = smaller
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["p0/m/p50", "p0/m/p99"],
            "no latency without a success"
        );
        assert_eq!(smaller[1]["unit"], "us");
        assert_eq!(smaller[1]["value"], 900.0);
        assert_eq!(smaller[1]["extra"], "3 trial(s); valid");
        assert!(smaller[1]["range"].as_str().unwrap().contains('…'));
        let bigger = read(true);
        assert_eq!(bigger.len(), 2);
        assert_eq!(bigger[0]["name"], "p0/m/throughput");
        assert_eq!(bigger[0]["unit"], "req/s");
        assert_eq!(
            bigger[1]["extra"],
            "1 trial(s); INVALID: 5 failed request(s)"
        );
    }
}
