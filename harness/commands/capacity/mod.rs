//! `bench capacity`: how much load can each configuration take within an SLO, and which
//! configuration takes the most?
//!
//! A configuration is a sweep point without its load: workers × threads × transfer × placement ×
//! pin × provider. For each one, [`Search`] looks for the highest open-loop rate that meets the SLO:
//! it brackets (doubling up from a start rate until a probe fails, or halving down until one meets)
//! and then bisects to a relative precision, within a probe budget. Every probe is a full
//! measurement of one point at one rate through the sweep's own path (`sweep::point::run`): the
//! scenario's warm-up, stop rule, trials and verdict.
//!
//! A probe that fails says one of two things, and they are kept apart. The configuration is too
//! slow at that rate (an objective missed on a sound measurement, the workers not keeping up,
//! failed requests), or the measurement could not be trusted (the generator fell behind its
//! schedule, or the host stole more than [`STEAL_LIMIT_PCT`] of the CPU time): "could not measure
//! precisely here" is not "cannot serve". An unreliable probe is measured again, up to
//! [`RETRIES`] times; one that stays unreliable bounds the search like a failure, and the answer
//! says so. A configuration whose open-loop probes all fail this way, but whose closed-loop
//! estimate met the SLO, gets that estimate as a lower bound rather than no answer.
//!
//! The answer is the configuration with the most throughput within the SLO; within 2% of the most,
//! the one with the least memory.
//!
//! This file holds the search, the judging of a probe and the answer, each a pure function;
//! `probes.rs` drives them with the sweep's point runner ([`run`]).

use std::path::{Path, PathBuf};

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::{Deserialize, Serialize};

use crate::report::{Row, write_atomic};
use crate::scenario::slo::{self, Constraint};
use crate::scenario::{Arrival, LoadPoint, Point, Scenario};

mod probes;
pub(crate) use probes::run;

/// How the rate search proceeds and when it stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SearchOptions {
    /// The lowest rate tried, requests/s. Failing there ends the search with no answer.
    pub(crate) min_rate: f64,
    /// The highest rate tried, requests/s.
    pub(crate) max_rate: f64,
    /// Stop when the lowest failing rate is within this many percent above the highest meeting one.
    pub(crate) precision_pct: f64,
    /// Probes per configuration (the closed-loop estimate not counted).
    pub(crate) max_probes: usize,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            min_rate: 1.0,
            max_rate: 1_000_000.0,
            precision_pct: 5.0,
            max_probes: 12,
        }
    }
}

/// Which phase of the search a probe belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Step {
    /// The closed-loop probe that estimates the start rate.
    Estimate,
    /// Doubling or halving until one rate meets the SLO and one fails.
    Bracket,
    /// Halving the interval between the two.
    Bisect,
}

/// Why a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The highest meeting rate and the lowest failing one are within the precision.
    Converged,
    /// The probe budget ran out first; the answer is the highest rate that met.
    Budget,
    /// Even the lowest rate (`min_rate`) failed: there is no answer.
    FailsAtMin,
    /// The highest rate (`max_rate`) met: the capacity is at least that.
    MeetsAtMax,
}

/// The bracketing and bisection over rates, as a state machine: ask [`Search::next`] for the rate to
/// probe, report the outcome with [`Search::record`], until `next` returns `None`. Pure, so it is
/// tested on functions with a known answer.
#[derive(Debug, Clone)]
pub(crate) struct Search {
    opts: SearchOptions,
    /// The highest rate that met the SLO.
    lo: Option<f64>,
    /// The lowest rate that failed it.
    hi: Option<f64>,
    next: Option<(f64, Step)>,
    probes: usize,
    end: Option<End>,
}

/// Rates are rounded so that point ids stay readable: whole requests/s from 100 up, tenths below.
pub(crate) fn round_rate(r: f64) -> f64 {
    if r >= 100.0 {
        r.round()
    } else {
        (r * 10.0).round() / 10.0
    }
}

impl Search {
    /// A search that starts at `start` requests/s (clamped to the allowed range).
    pub(crate) fn new(start: f64, opts: SearchOptions) -> Search {
        let start = round_rate(start.clamp(opts.min_rate, opts.max_rate));
        Search {
            opts,
            lo: None,
            hi: None,
            next: Some((start, Step::Bracket)),
            probes: 0,
            end: None,
        }
    }

    /// The next rate to probe, and why; `None` once the search has ended.
    pub(crate) fn next(&self) -> Option<(f64, Step)> {
        self.next
    }

    /// Records whether `rate` met the SLO and picks the next rate.
    pub(crate) fn record(&mut self, rate: f64, met: bool) {
        self.probes += 1;
        if met {
            self.lo = Some(self.lo.map_or(rate, |l: f64| l.max(rate)));
        } else {
            self.hi = Some(self.hi.map_or(rate, |h: f64| h.min(rate)));
        }
        let o = self.opts;
        let (next, end) = match (self.lo, self.hi) {
            (Some(l), None) if l >= o.max_rate => (None, Some(End::MeetsAtMax)),
            (Some(l), None) => (
                Some((round_rate((l * 2.0).min(o.max_rate)), Step::Bracket)),
                None,
            ),
            (None, Some(h)) if h <= o.min_rate => (None, Some(End::FailsAtMin)),
            (None, Some(h)) => (
                Some((round_rate((h / 2.0).max(o.min_rate)), Step::Bracket)),
                None,
            ),
            (Some(l), Some(h)) => {
                let mid = round_rate((l + h) / 2.0);
                if (h - l) / l * 100.0 <= o.precision_pct || mid <= l || mid >= h {
                    (None, Some(End::Converged))
                } else {
                    (Some((mid, Step::Bisect)), None)
                }
            }
            (None, None) => unreachable!("a probe was just recorded"),
        };
        let (next, end) = match (next, end) {
            (Some(_), None) if self.probes >= o.max_probes => (None, Some(End::Budget)),
            other => other,
        };
        self.next = next;
        self.end = end;
    }

    /// The highest rate that met the SLO.
    pub(crate) fn best(&self) -> Option<f64> {
        self.lo
    }

    /// The lowest rate that failed it.
    pub(crate) fn lowest_failing(&self) -> Option<f64> {
        self.hi
    }

    /// Why the search ended; `None` while it runs.
    pub(crate) fn end(&self) -> Option<End> {
        self.end
    }

    pub(crate) fn probes(&self) -> usize {
        self.probes
    }
}

/// The file `bench capacity` writes into its output folder.
pub(crate) const CSV_FILE: &str = crate::report::outdir::CAPACITY_CSV;

/// One line of `capacity.csv`: one probe of one configuration. Times are in µs and every float
/// has three decimals, as in `results.csv` ([`ProbeRow::rounded`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProbeRow {
    /// The configuration: the point id without its load, e.g. `w2-t1-shm-partition-cpu`.
    pub(crate) config: String,
    /// The configuration's axis columns as `results.csv` has them, in its order (workers,
    /// transfer, runtime, the session options, batch, batching, ...; the load's are the probe's
    /// own, below), from the axes' declarations ([`crate::scenario::axes::config_cells`]). Written
    /// between `config` and `probe` (`ProbeRow::record`).
    #[serde(skip)]
    pub(crate) axes: Vec<(&'static str, serde_json::Value)>,
    /// 1, 2, … within the configuration; 0 is the closed-loop estimate.
    pub(crate) probe: usize,
    pub(crate) step: Step,
    /// `open`, or `closed` for the estimate.
    pub(crate) load: String,
    /// The estimate: requests in flight.
    pub(crate) concurrency: Option<usize>,
    /// The offered rate, requests/s (open loop).
    pub(crate) rate_rps: Option<f64>,
    /// Completed requests per second in the measured window (median across trials).
    pub(crate) throughput_rps: f64,
    pub(crate) latency_p50_us: f64,
    pub(crate) latency_p99_us: f64,
    pub(crate) latency_p999_us: f64,
    pub(crate) errors: u64,
    /// Resident memory of all workers together at the end of the probe.
    pub(crate) rss_mib: f64,
    /// Whether the probe is a valid measurement (the sweep's verdict, SLO aside).
    pub(crate) valid: bool,
    /// The measurement could not be trusted (the generator lagged, or the host stole CPU time)
    /// while the workers kept up: not a verdict on the configuration. Retried.
    pub(crate) unreliable: bool,
    /// Whether the measured values meet every objective of the SLO.
    pub(crate) slo_met: bool,
    /// `valid` and `slo_met`: the rate is within capacity. Empty for the estimate.
    pub(crate) met: Option<bool>,
    /// `true` on the probe that gives the configuration's capacity (its highest meeting rate).
    pub(crate) chosen: bool,
    /// Why the probe is invalid, and each objective missed.
    pub(crate) reason: String,
}

impl ProbeRow {
    /// The row with every float rounded to three decimals, as `results.csv` writes them
    /// ([`crate::report::Row::rounded`]); a test checks that the list names every float column.
    pub(crate) fn rounded(&self) -> ProbeRow {
        let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
        let mut r = self.clone();
        for v in [
            &mut r.throughput_rps,
            &mut r.latency_p50_us,
            &mut r.latency_p99_us,
            &mut r.latency_p999_us,
            &mut r.rss_mib,
        ] {
            *v = r3(*v);
        }
        r.rate_rps = r.rate_rps.map(r3);
        r
    }

    /// The row's CSV header and cells: `config`, the axis columns, then the probe's own columns
    /// (serde's, as `csv` writes them).
    fn record(&self) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        let mut w = ::csv::Writer::from_writer(Vec::new());
        w.serialize(self)?;
        let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut r = ::csv::Reader::from_reader(bytes.as_slice());
        let mut names: Vec<String> = r.headers()?.iter().map(String::from).collect();
        let mut cells: Vec<String> = match r.records().next() {
            Some(record) => record?.iter().map(String::from).collect(),
            None => anyhow::bail!("a probe row serialises to no record"),
        };
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        names.splice(1..1, self.axes.iter().map(|(c, _)| c.to_string()));
        cells.splice(1..1, self.axes.iter().map(|(_, v)| text(v)));
        Ok((names, cells))
    }
}

/// A configuration's axis columns, in `results.csv`'s order.
fn axis_columns(point: &Point) -> Vec<(&'static str, serde_json::Value)> {
    let header = crate::report::csv::header();
    let mut cells = crate::scenario::axes::config_cells(point);
    cells.sort_by_key(|(c, _)| header.iter().position(|h| h == c));
    cells
}

/// One configuration's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConfigResult {
    pub(crate) config: String,
    pub(crate) point: Point,
    /// The highest rate that met the SLO, with its probe.
    pub(crate) capacity: Option<ProbeRow>,
    /// The lowest rate that failed, if any was probed.
    pub(crate) lowest_failing: Option<f64>,
    pub(crate) end: End,
    pub(crate) probes: usize,
    /// Why the lowest failing rate failed.
    pub(crate) failing_reason: String,
    /// Rates whose probes stayed unreliable after their retries (they bound the search as
    /// failures), in probe order.
    pub(crate) unreliable: Vec<f64>,
    /// No open-loop rate met the SLO, but the closed-loop estimate did: its throughput is a lower
    /// bound of the capacity.
    pub(crate) lower_bound: Option<ProbeRow>,
}

impl ConfigResult {
    /// How sure the answer is, and why, in a few words.
    pub(crate) fn confidence(&self) -> String {
        match (&self.capacity, &self.lower_bound, self.unreliable.first()) {
            (Some(_), _, None) => "measured".into(),
            (Some(_), _, Some(r)) => format!(
                "measured; {} probe(s) not measurable (first at {} req/s): capacity may be higher",
                self.unreliable.len(),
                grouped(*r)
            ),
            (None, Some(_), _) => {
                "lower bound from the closed loop: no open-loop probe could be measured".into()
            }
            (None, None, Some(r)) => format!(
                "unknown: {} probe(s) not measurable (first at {} req/s)",
                self.unreliable.len(),
                grouped(*r)
            ),
            (None, None, None) => "too slow at every rate tried".into(),
        }
    }

    /// The capacity in requests/s: the highest open-loop rate that met the SLO, else the
    /// closed-loop lower bound.
    pub(crate) fn rate(&self) -> Option<f64> {
        self.capacity
            .as_ref()
            .and_then(|p| p.rate_rps)
            .or_else(|| self.lower_bound.as_ref().map(|p| p.throughput_rps))
    }
}

/// Settings from the command line.
#[derive(Debug, Clone)]
pub(crate) struct CapacityOptions {
    pub(crate) slo: Vec<Constraint>,
    pub(crate) search: SearchOptions,
    /// Skip the closed-loop estimate and start every search here.
    pub(crate) start_rate: Option<f64>,
    pub(crate) out_dir: PathBuf,
    pub(crate) progress: bool,
}

/// How a capacity run ended.
#[derive(Debug, Clone)]
pub(crate) struct Capacity {
    pub(crate) results: Vec<ConfigResult>,
    /// The search settings used (`min_rate` may have been raised; see [`min_rate_floor`]).
    pub(crate) search: SearchOptions,
    /// The index in `results` of the best configuration, if any met the SLO.
    pub(crate) best: Option<usize>,
    /// Stopped by this signal.
    pub(crate) interrupted: Option<i32>,
}

/// The configurations of a scenario: its points with the load axis removed, in sweep order. Each
/// comes back as its first point; the id is that point's id without the load.
pub(crate) fn configs(scenario: &Scenario) -> Vec<(String, Point)> {
    let mut out: Vec<(String, Point)> = Vec::new();
    for p in &scenario.points {
        // The load's part of the id, wherever it is (a runtime or worker_concurrency part may
        // follow it).
        let load = p.load.id();
        let id =
            p.id.split('-')
                .filter(|part| *part != load)
                .collect::<Vec<_>>()
                .join("-");
        if !out.iter().any(|(c, _)| *c == id) {
            out.push((id, p.clone()));
        }
    }
    out
}

/// Checks that the scenario can be searched by rate.
pub(crate) fn check(scenario: &Scenario, opts: &CapacityOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        !opts.slo.is_empty(),
        "capacity needs an SLO to search against: pass --slo p99_ms=50 (or add `slo = \"p99_ms <= 50\"` to {})",
        scenario.file.display()
    );
    anyhow::ensure!(
        !matches!(scenario.load.arrival, Arrival::Trace(_)),
        "{}: `arrival = \"trace\"` sets its own rate, so capacity cannot search over rates; \
         use `arrival = \"poisson\"` or `\"constant\"`",
        scenario.file.display()
    );
    let s = opts.search;
    anyhow::ensure!(
        s.min_rate > 0.0 && s.min_rate.is_finite() && s.max_rate >= s.min_rate,
        "--min-rate must be > 0 and at most --max-rate (got {} and {})",
        s.min_rate,
        s.max_rate
    );
    anyhow::ensure!(
        s.precision_pct > 0.0 && s.precision_pct.is_finite(),
        "--precision must be a percentage > 0, e.g. 5"
    );
    anyhow::ensure!(s.max_probes >= 1, "--max-probes must be at least 1");
    if let Some(r) = opts.start_rate {
        anyhow::ensure!(
            r > 0.0 && r.is_finite(),
            "--start-rate must be > 0 requests/s"
        );
    }
    Ok(())
}

/// The lowest rate at which a probe can be valid: a duration-based probe runs on past its
/// duration to reach `min_requests`, but no longer than its cap (`max_duration`), so a probe at a
/// rate below `min_requests / cap` cannot reach the minimum. It keeps a 25% margin for the
/// randomness of Poisson arrivals. `None` when the stop rule is not a duration or there is no
/// minimum.
pub(crate) fn min_rate_floor(scenario: &Scenario) -> Option<f64> {
    let w = &scenario.workload;
    let (min, cap) = (w.min_requests()?, w.cap()?);
    let r = 1.25 * min as f64 / cap.as_secs_f64().max(1e-9);
    Some((r * 10.0).ceil() / 10.0)
}

/// The share of the offered rate an open-loop probe must complete, or it counts as overloaded: the
/// workers did not keep up, whatever the latency of the requests that did finish. It allows 10%
/// plus three standard deviations of a Poisson count of `rate × duration_s` arrivals, so that a
/// short probe is not failed by the randomness of its own schedule.
pub(crate) fn kept_up_floor(rate: f64, duration_s: f64) -> f64 {
    let expected = (rate * duration_s).max(1.0);
    (0.9 - 3.0 / expected.sqrt()).max(0.0)
}

/// Judges one probe from its `all` row: the row's verdict (measured without the SLO), the
/// completed share of the offered rate, and each objective.
pub(crate) fn judge(
    config: &str,
    point: &Point,
    probe: usize,
    step: Step,
    all: &Row,
    slo: &[Constraint],
) -> ProbeRow {
    let mut reasons: Vec<String> = if all.reason.is_empty() {
        Vec::new()
    } else {
        vec![all.reason.clone()]
    };
    // Whether the measurement itself was sound, lag aside: no failed request, enough requests,
    // stable, not overloaded (the sweep's other reasons).
    let mut sound = all.valid || all.only_lagged;
    let mut kept_up = all.errors == 0;
    if let LoadPoint::Open { rate } = point.load {
        let floor = kept_up_floor(rate, all.duration_s);
        if all.throughput_rps < floor * rate {
            sound = false;
            kept_up = false;
            reasons.push(format!(
                "completed {:.0} req/s of the {rate} offered (below {:.0}%): the workers cannot keep up",
                all.throughput_rps,
                floor * 100.0
            ));
        }
    }
    let steal = all.cpu_steal_pct.unwrap_or(0.0);
    if steal > STEAL_LIMIT_PCT && all.lagged_sends_pct <= 1.0 {
        reasons.push(format!(
            "the host took {steal:.1}% of the CPU time (cpu_steal_pct, over {STEAL_LIMIT_PCT}%)"
        ));
    }
    let disturbed = all.lagged_sends_pct > 1.0 || steal > STEAL_LIMIT_PCT;
    let slo_met = slo::check(slo, &all.measured(), &mut reasons);
    // Latency runs from the intended send time, so a lagging generator or stolen CPU time only
    // makes it worse: objectives met anyway are met. Objectives missed then mean nothing, unless
    // the workers visibly could not keep up, or the objectives fail even on the service time
    // (from the actual send), which no lag inflates.
    let service = Row {
        latency_p50_us: all.service_p50_us.min(all.latency_p50_us),
        latency_p99_us: all.service_p99_us.min(all.latency_p99_us),
        latency_mean_us: all.service_mean_us.min(all.latency_mean_us),
        ..all.clone()
    };
    let serves = slo::check(slo, &service.measured(), &mut Vec::new());
    let unreliable = sound && kept_up && disturbed && !slo_met && serves;
    let valid = all.valid && kept_up;
    ProbeRow {
        config: config.to_string(),
        axes: axis_columns(point),
        probe,
        step,
        load: match point.load {
            LoadPoint::Closed { .. } => "closed".into(),
            LoadPoint::Open { .. } => "open".into(),
        },
        concurrency: point.load.concurrency(),
        rate_rps: point.load.rate(),
        throughput_rps: all.throughput_rps,
        latency_p50_us: all.latency_p50_us,
        latency_p99_us: all.latency_p99_us,
        latency_p999_us: all.latency_p999_us,
        errors: all.errors,
        rss_mib: all.rss_mib,
        valid,
        unreliable,
        slo_met,
        met: (step != Step::Estimate).then_some(sound && slo_met),
        chosen: false,
        reason: reasons.join("; "),
    }
}

/// The best configuration: the most capacity; among those within `tie_pct` percent of it, the least
/// memory (then the most capacity).
pub(crate) fn best(results: &[ConfigResult], tie_pct: f64) -> Option<usize> {
    let cap = |r: &ConfigResult| r.rate();
    let top = results
        .iter()
        .filter_map(cap)
        .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))))?;
    results
        .iter()
        .enumerate()
        .filter(|(_, r)| cap(r).is_some_and(|c| c >= top * (1.0 - tie_pct / 100.0)))
        .min_by(|(_, a), (_, b)| {
            let rss = |r: &ConfigResult| {
                r.capacity
                    .as_ref()
                    .or(r.lower_bound.as_ref())
                    .map_or(f64::INFINITY, |p| p.rss_mib)
            };
            rss(a)
                .total_cmp(&rss(b))
                .then(cap(b).unwrap().total_cmp(&cap(a).unwrap()))
        })
        .map(|(i, _)| i)
}

/// Within this many percent of the most throughput, the configuration with less memory wins.
pub(crate) const TIE_PCT: f64 = 2.0;

/// More CPU time than this taken by the host during a probe makes its measurement unreliable.
pub(crate) const STEAL_LIMIT_PCT: f64 = 5.0;

/// How many times an unreliable probe is measured again before it counts against its rate.
pub(crate) const RETRIES: usize = 2;

fn write_csv(path: &Path, rows: &[ProbeRow]) -> anyhow::Result<()> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    for (i, r) in rows.iter().enumerate() {
        let (names, cells) = r.rounded().record()?;
        if i == 0 {
            w.write_record(&names)?;
        }
        w.write_record(&cells)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    write_atomic(path, &bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// A configuration in words: `2 workers × 1 thread, shm, partition`.
pub(crate) fn describe(p: &Point) -> String {
    let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    let mut s = format!(
        "{} × {}, {}",
        plural(p.workers, "worker"),
        plural(p.intra_threads, "thread"),
        p.transfer.name()
    );
    for extra in [
        (p.channel != crate::scenario::Channel::Socket).then(|| p.channel.name()),
        (p.placement != crate::scenario::Placement::Replicate).then(|| p.placement.name()),
        (p.pin != crate::scenario::Pin::None).then_some("pinned"),
        Some(p.provider.name()),
    ]
    .into_iter()
    .flatten()
    {
        s.push_str(", ");
        s.push_str(extra);
    }
    s
}

/// Rates for the console: thousands separators from 100 up (4310 → `4,310`), tenths below.
fn grouped(v: f64) -> String {
    if v.abs() < 100.0 {
        return format!("{}", (v * 10.0).round() / 10.0);
    }
    let n = v.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The console answer: a table with one line per configuration, then the best one in a sentence.
pub(crate) fn render(c: &Capacity, slo: &[Constraint]) -> String {
    let search = &c.search;
    let slo_text: Vec<String> = slo.iter().map(|c| c.to_string()).collect();
    let slo_text = slo_text.join(", ");
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "configuration",
        "capacity req/s",
        "p99 there",
        "first failing req/s",
        "RSS MiB",
        "probes",
        "search",
        "how sure",
    ]);
    for r in &c.results {
        let cap = r.capacity.as_ref().or(r.lower_bound.as_ref());
        t.add_row(vec![
            r.config.clone(),
            match (&r.capacity, &r.lower_bound) {
                (None, Some(_)) => format!("≥ {}", grouped(r.rate().unwrap_or(0.0))),
                _ => r.rate().map_or("none".into(), grouped),
            },
            cap.map_or(String::new(), |p| {
                format!("{:.2} ms", p.latency_p99_us / 1e3)
            }),
            r.lowest_failing.map_or("-".into(), grouped),
            cap.map_or(String::new(), |p| format!("{:.0}", p.rss_mib)),
            r.probes.to_string(),
            match r.end {
                End::Converged => format!("within {}%", search.precision_pct),
                End::Budget => "probe budget spent".into(),
                End::FailsAtMin => format!("fails at {} req/s", search.min_rate),
                End::MeetsAtMax => format!("meets at --max-rate {}", search.max_rate),
            },
            r.confidence(),
        ]);
    }
    let mut out = format!("capacity within {slo_text}:\n{t}\n");
    for r in c.results.iter().filter(|r| r.rate().is_none()) {
        let lowest = r.lowest_failing.map_or("-".into(), grouped);
        out.push_str(&if r.end == End::FailsAtMin && r.unreliable.is_empty() {
            format!(
                "{}: no rate meets the SLO: it fails even at the lowest rate tried, {lowest} req/s: {}\n",
                r.config, r.failing_reason
            )
        } else {
            format!(
                "{}: no rate meets the SLO ({}); the lowest failing rate, {lowest} req/s: {}\n",
                r.config,
                r.confidence(),
                r.failing_reason
            )
        });
    }
    for r in c.results.iter().filter(|r| r.lower_bound.is_some()) {
        out.push_str(&format!(
            "{}: every open-loop probe failed to measure ({}), but the closed loop met the SLO \
             at {} req/s: the capacity is at least that\n",
            r.config,
            r.failing_reason,
            grouped(r.rate().unwrap_or(0.0))
        ));
    }
    match c.best {
        Some(i) => {
            let r = &c.results[i];
            let p = r
                .capacity
                .as_ref()
                .or(r.lower_bound.as_ref())
                .expect("the best has a capacity");
            out.push_str(&format!(
                "best: {}: {}{} req/s at p99 {} ms ({:.0} MiB)\n",
                describe(&r.point),
                if r.capacity.is_none() { "≥ " } else { "" },
                grouped(r.rate().unwrap_or(0.0)),
                if p.latency_p99_us >= 10_000.0 {
                    format!("{:.0}", p.latency_p99_us / 1e3)
                } else {
                    format!("{:.2}", p.latency_p99_us / 1e3)
                },
                p.rss_mib
            ));
        }
        None if !c.results.is_empty() => {
            out.push_str("no configuration meets the SLO at any rate tried\n");
        }
        None => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Runs a search against a monotone system whose capacity is `cap`.
    fn run_search(start: f64, cap: f64, opts: SearchOptions) -> (Search, Vec<(f64, Step)>) {
        let mut s = Search::new(start, opts);
        let mut probed = Vec::new();
        while let Some((rate, step)) = s.next() {
            probed.push((rate, step));
            s.record(rate, rate <= cap);
            assert!(probed.len() <= opts.max_probes, "the budget holds");
        }
        (s, probed)
    }

    #[test]
    fn brackets_up_then_bisects_to_the_precision() {
        let (s, probed) = run_search(100.0, 437.0, SearchOptions::default());
        let rates: Vec<f64> = probed.iter().map(|p| p.0).collect();
        assert_eq!(&rates[..4], [100.0, 200.0, 400.0, 800.0], "doubling");
        assert!(probed[4..].iter().all(|p| p.1 == Step::Bisect));
        assert_eq!(s.end(), Some(End::Converged));
        let (lo, hi) = (s.best().unwrap(), s.lowest_failing().unwrap());
        assert!(lo <= 437.0 && hi > 437.0, "{lo} {hi}");
        assert!((hi - lo) / lo <= 0.05, "{lo} {hi}");
    }

    #[test]
    fn brackets_down_when_the_start_fails() {
        let (s, probed) = run_search(1000.0, 180.0, SearchOptions::default());
        assert_eq!(
            probed.iter().take(4).map(|p| p.0).collect::<Vec<_>>(),
            [1000.0, 500.0, 250.0, 125.0]
        );
        assert_eq!(s.end(), Some(End::Converged));
        assert!(s.best().unwrap() <= 180.0 && s.best().unwrap() >= 180.0 / 1.05);
    }

    #[test]
    fn failing_at_the_lowest_rate_ends_without_an_answer() {
        let opts = SearchOptions {
            min_rate: 10.0,
            ..SearchOptions::default()
        };
        let (s, probed) = run_search(100.0, 3.0, opts);
        assert_eq!(s.end(), Some(End::FailsAtMin));
        assert_eq!(s.best(), None);
        assert_eq!(
            probed.iter().map(|p| p.0).collect::<Vec<_>>(),
            [100.0, 50.0, 25.0, 12.5, 10.0],
            "the last probe is the lowest rate itself"
        );
        let c = Capacity {
            results: vec![ConfigResult {
                config: "w1-t1-pipe-cpu".into(),
                point: test_point(1),
                capacity: None,
                lowest_failing: s.lowest_failing(),
                end: End::FailsAtMin,
                probes: s.probes(),
                unreliable: Vec::new(),
                lower_bound: None,
                failing_reason: "SLO missed: p99_ms = 3.000 (needs p99_ms <= 1)".into(),
            }],
            search: opts,
            best: None,
            interrupted: None,
        };
        let text = render(&c, &[slo::parse("p99_ms <= 1").unwrap()]);
        assert!(
            text.contains("w1-t1-pipe-cpu: no rate meets the SLO: it fails even at the lowest rate tried, 10 req/s: SLO missed: p99_ms = 3.000"),
            "{text}"
        );
        assert!(text.contains("no configuration meets the SLO"), "{text}");
    }

    #[test]
    fn the_budget_and_the_highest_rate_end_a_search() {
        let opts = SearchOptions {
            max_probes: 3,
            ..SearchOptions::default()
        };
        let (s, probed) = run_search(100.0, 1e9, opts);
        assert_eq!((s.end(), probed.len()), (Some(End::Budget), 3));
        assert_eq!(s.best(), Some(400.0));
        let opts = SearchOptions {
            max_rate: 300.0,
            ..SearchOptions::default()
        };
        let (s, probed) = run_search(100.0, 1e9, opts);
        assert_eq!(s.end(), Some(End::MeetsAtMax));
        assert_eq!(probed.last().unwrap().0, 300.0);
    }

    proptest! {
        #[test]
        fn converges_on_any_monotone_system(cap in 2.0f64..100_000.0, start in 1.0f64..200_000.0) {
            let opts = SearchOptions { max_probes: 40, ..SearchOptions::default() };
            let (s, _) = run_search(start, cap, opts);
            prop_assert_eq!(s.end(), Some(End::Converged));
            let lo = s.best().unwrap();
            let hi = s.lowest_failing().unwrap();
            prop_assert!(lo <= cap && hi > cap);
            // Within the precision, or as close as the rounding of rates allows.
            let step = if lo >= 100.0 { 1.0 } else { 0.1 };
            prop_assert!((hi - lo) / lo <= 0.05 || hi - lo <= step + 1e-9, "{} {}", lo, hi);
        }
    }

    fn test_point(workers: usize) -> Point {
        Point {
            id: format!("w{workers}-t1-pipe-cpu-c1"),
            workers,
            ..Point::default()
        }
    }

    fn all_row(rps: f64, p99_us: f64) -> Row {
        Row {
            model: "all".into(),
            kind: "all".into(),
            valid: true,
            throughput_rps: rps,
            latency_p99_us: p99_us,
            requests: 1000,
            duration_s: 2.0,
            ..Row::default()
        }
    }

    /// Regression: capacity.csv had latencies in ms with every digit of the float
    /// (`6.563839999999999`) while results.csv has µs with three decimals. Every float column,
    /// found through the row's serde form, comes out of `rounded` with three decimals, and the
    /// latencies are the `all` row's, in µs.
    #[test]
    fn capacity_csv_is_in_us_with_three_decimals_like_results_csv() {
        let mut p = test_point(1);
        p.load = LoadPoint::Open { rate: 500.0 };
        let row = judge(
            "c",
            &p,
            1,
            Step::Bracket,
            &all_row(498.0, 6_563.839_999),
            &[],
        );
        assert_eq!(row.latency_p99_us, 6_563.839_999);
        let (row, floats) = crate::report::with_floats_set(&row);
        assert!(floats.contains(&"latency_p99_us".to_string()), "{floats:?}");
        assert!(floats.len() >= 6, "{floats:?}");
        let out = serde_json::to_value(row.rounded()).unwrap();
        let unrounded: Vec<&String> = floats.iter().filter(|k| out[*k] != 1.235).collect();
        assert!(unrounded.is_empty(), "not rounded: {unrounded:?}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("capacity.csv");
        write_csv(&path, &[row]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines().next().unwrap().contains(",latency_p99_us,"),
            "{text}"
        );
        assert!(!text.contains("1.234567"), "{text}");
    }

    /// capacity.csv carries the configuration's axis columns as results.csv has them (runtime,
    /// session options, batching, ...), in its order, between `config` and `probe`.
    #[test]
    fn capacity_csv_has_the_axis_columns_of_results_csv() {
        let mut p = test_point(2);
        p.load = LoadPoint::Open { rate: 500.0 };
        p.session.prepacking = false;
        let row = judge("c", &p, 1, Step::Bracket, &all_row(498.0, 1_000.0), &[]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("capacity.csv");
        write_csv(&path, &[row]).unwrap();
        let rows: Vec<std::collections::HashMap<String, String>> = ::csv::Reader::from_path(&path)
            .unwrap()
            .deserialize()
            .map(Result::unwrap)
            .collect();
        let header: Vec<String> = ::csv::Reader::from_path(&path)
            .unwrap()
            .headers()
            .unwrap()
            .iter()
            .map(String::from)
            .collect();
        let results = crate::report::csv::header();
        let axis: Vec<&String> = results
            .iter()
            .filter(|c| crate::scenario::axes::columns().contains(&c.as_str()))
            .filter(|c| !["load", "concurrency", "rate_rps"].contains(&c.as_str()))
            .collect();
        assert_eq!(header[0], "config");
        assert_eq!(header[1..=axis.len()].iter().collect::<Vec<_>>(), axis);
        assert_eq!(header[axis.len() + 1], "probe");
        for (column, want) in [
            ("workers", "2"),
            ("runtime", "ort"),
            ("prepacking", "false"),
            ("graph_optimization", "all"),
            ("max_batch", ""),
            ("rate_rps", "500.0"),
        ] {
            assert_eq!(rows[0][column], want, "{column}");
        }
    }

    #[test]
    fn a_probe_meets_only_when_valid_and_within_every_objective() {
        let mut p = test_point(1);
        p.load = LoadPoint::Open { rate: 500.0 };
        let slo = [slo::parse("p99_ms=50").unwrap()];
        let ok = judge("c", &p, 1, Step::Bracket, &all_row(498.0, 40_000.0), &slo);
        assert_eq!((ok.valid, ok.slo_met, ok.met), (true, true, Some(true)));
        let slow = judge("c", &p, 1, Step::Bracket, &all_row(498.0, 60_000.0), &slo);
        assert_eq!(slow.met, Some(false));
        assert!(
            slow.reason.contains("SLO missed: p99_ms = 60.000"),
            "{}",
            slow.reason
        );
        // An invalid measurement never meets, even with a good p99.
        let mut unstable = all_row(498.0, 1_000.0);
        unstable.valid = false;
        unstable.reason = "not stable within 10 windows (trial 1)".into();
        let r = judge("c", &p, 1, Step::Bracket, &unstable, &slo);
        assert_eq!((r.valid, r.slo_met, r.met), (false, true, Some(false)));
        // Completing far less than offered is overload, whatever the latency says.
        let behind = judge("c", &p, 1, Step::Bracket, &all_row(300.0, 1_000.0), &slo);
        assert_eq!((behind.valid, behind.met), (false, Some(false)));
        assert!(
            behind.reason.contains("cannot keep up"),
            "{}",
            behind.reason
        );
    }

    #[test]
    fn a_lagging_generator_or_stolen_cpu_is_unreliable_not_too_slow() {
        let mut p = test_point(1);
        p.load = LoadPoint::Open { rate: 500.0 };
        let slo = [slo::parse("p99_ms=20").unwrap()];
        // The generator lagged and p99 (from the intended send times) missed: that says nothing.
        let mut lagged = all_row(498.0, 30_000.0);
        lagged.valid = false;
        lagged.lagged_sends_pct = 12.0;
        lagged.reason = format!("{}: 12.0% of sends lagged", crate::sweep::rows::LAG_REASON);
        lagged.only_lagged = true;
        let r = judge("c", &p, 1, Step::Bracket, &lagged, &slo);
        assert!(r.unreliable && r.met == Some(false), "{r:?}");
        // Lag only inflates latency: objectives met despite it are met.
        let mut met_anyway = lagged.clone();
        met_anyway.latency_p99_us = 5_000.0;
        let r = judge("c", &p, 1, Step::Bracket, &met_anyway, &slo);
        assert!(!r.unreliable && r.met == Some(true), "{r:?}");
        // Another problem besides the lag makes the probe unsound, whatever the latency.
        let mut unstable = met_anyway.clone();
        unstable.reason = format!("{}; not stable within 10 windows (trial 1)", lagged.reason);
        unstable.only_lagged = false;
        assert_eq!(
            judge("c", &p, 1, Step::Bracket, &unstable, &slo).met,
            Some(false)
        );
        // The same miss with the workers far behind the rate is a verdict: too slow.
        let mut behind = lagged.clone();
        behind.throughput_rps = 200.0;
        let r = judge("c", &p, 1, Step::Bracket, &behind, &slo);
        assert!(!r.unreliable && r.met == Some(false), "{r:?}");
        // An objective the service time alone misses (no lag inflates it) is a verdict too.
        let mut slow_service = lagged.clone();
        slow_service.service_p99_us = 25_000.0;
        let r = judge("c", &p, 1, Step::Bracket, &slow_service, &slo);
        assert!(!r.unreliable && r.met == Some(false), "{r:?}");
        // Stolen CPU time beyond the limit: a miss is not measurable, a pass still passes.
        let mut stolen = all_row(498.0, 30_000.0);
        stolen.cpu_steal_pct = Some(STEAL_LIMIT_PCT + 3.0);
        let r = judge("c", &p, 1, Step::Bracket, &stolen, &slo);
        assert!(r.unreliable && r.met == Some(false), "{r:?}");
        assert!(r.reason.contains("cpu_steal_pct"), "{}", r.reason);
        stolen.latency_p99_us = 5_000.0;
        assert_eq!(
            judge("c", &p, 1, Step::Bracket, &stolen, &slo).met,
            Some(true)
        );
    }

    #[test]
    fn answers_say_how_sure_they_are_and_a_closed_loop_that_meets_is_a_lower_bound() {
        let measured = result("a", 100.0, 10.0);
        assert_eq!(measured.confidence(), "measured");
        let mut partly = result("b", 100.0, 10.0);
        partly.unreliable = vec![400.0];
        assert!(partly.confidence().contains("capacity may be higher"));
        let mut bound = result("c", 100.0, 10.0);
        bound.lower_bound = bound.capacity.take().map(|mut r| {
            r.throughput_rps = 700.0;
            r
        });
        bound.unreliable = vec![350.0, 175.0];
        assert_eq!(bound.rate(), Some(700.0));
        assert!(
            bound
                .confidence()
                .starts_with("lower bound from the closed loop")
        );
        // A lower bound competes like a measured capacity.
        assert_eq!(best(&[measured.clone(), bound.clone()], TIE_PCT), Some(1));
        let mut none = result("d", 100.0, 10.0);
        none.capacity = None;
        none.unreliable = vec![50.0];
        assert_eq!(none.rate(), None);
        assert!(none.confidence().starts_with("unknown"));
        let text = render(
            &Capacity {
                results: vec![measured, bound, none],
                search: SearchOptions::default(),
                best: Some(1),
                interrupted: None,
            },
            &[],
        );
        assert!(text.contains("≥ 700"), "{text}");
        assert!(text.contains("the capacity is at least that"), "{text}");
        assert!(
            text.contains("best: ") && text.contains("≥ 700 req/s"),
            "{text}"
        );
    }

    fn result(config: &str, rate: f64, rss: f64) -> ConfigResult {
        let mut p = test_point(1);
        p.load = LoadPoint::Open { rate };
        let mut row = judge(config, &p, 1, Step::Bisect, &all_row(rate, 1.0), &[]);
        row.rss_mib = rss;
        ConfigResult {
            config: config.into(),
            point: test_point(1),
            capacity: Some(row),
            lowest_failing: None,
            end: End::Converged,
            probes: 1,
            failing_reason: String::new(),
            unreliable: Vec::new(),
            lower_bound: None,
        }
    }

    #[test]
    fn the_best_has_the_most_throughput_and_memory_breaks_near_ties() {
        let a = result("a", 1000.0, 70.0);
        let b = result("b", 990.0, 35.0); // within 2%: less memory wins
        let c = result("c", 900.0, 10.0); // not within 2%
        let mut none = result("d", 1.0, 1.0);
        none.capacity = None;
        assert_eq!(
            best(&[a.clone(), b.clone(), c.clone(), none], TIE_PCT),
            Some(1)
        );
        assert_eq!(best(&[a.clone(), c.clone()], TIE_PCT), Some(0));
        assert_eq!(best(&[], TIE_PCT), None);
        let cap = Capacity {
            results: vec![a, b],
            search: SearchOptions::default(),
            best: Some(1),
            interrupted: None,
        };
        let text = render(&cap, &[]);
        assert!(
            text.contains("best: 1 worker × 1 thread, pipe, cpu: 990 req/s"),
            "{text}"
        );
    }

    fn scenario(extra: &str) -> Scenario {
        let text = format!("[[model]]\nname = \"m\"\nsynthetic = {{ mean = \"1ms\" }}\n{extra}");
        crate::scenario::load_bytes(text.as_bytes(), Path::new("s.toml")).unwrap()
    }

    #[test]
    fn configurations_drop_the_load_axis() {
        let s = scenario(
            "[load]\nconcurrency = [1, 4]\n[sweep]\nworkers = [1, 2]\ntransfer = [\"pipe\", \"shm\"]\n",
        );
        assert_eq!(s.points.len(), 8);
        let ids: Vec<String> = configs(&s).into_iter().map(|(id, _)| id).collect();
        assert_eq!(
            ids,
            [
                "w1-t1-pipe-cpu",
                "w1-t1-shm-cpu",
                "w2-t1-pipe-cpu",
                "w2-t1-shm-cpu"
            ]
        );
    }

    #[test]
    fn checks_and_the_lowest_useful_rate() {
        let s = scenario("[workload]\nduration = \"2s\"\nmax_duration = \"4s\"\n");
        // 100 requests (the default minimum) within the 4 s cap need 25 req/s; 25% margin.
        assert_eq!(min_rate_floor(&s), Some(31.3));
        // The default cap is 1 minute; a duration longer than the cap is the cap.
        let s = scenario("[workload]\nduration = \"2s\"\n");
        assert_eq!(min_rate_floor(&s), Some(2.1));
        let long = scenario("[workload]\nduration = \"100s\"\n");
        assert_eq!(min_rate_floor(&long), Some(1.3));
        assert_eq!(
            min_rate_floor(&scenario("[workload]\nrequests = 500\n")),
            None
        );
        let opts = CapacityOptions {
            slo: Vec::new(),
            search: SearchOptions::default(),
            start_rate: None,
            out_dir: PathBuf::new(),
            progress: false,
        };
        let e = check(&s, &opts).unwrap_err().to_string();
        assert!(e.contains("capacity needs an SLO"), "{e}");
        let opts = CapacityOptions {
            slo: vec![slo::parse("p99_ms=5").unwrap()],
            search: SearchOptions {
                precision_pct: 0.0,
                ..SearchOptions::default()
            },
            ..opts
        };
        assert!(
            check(&s, &opts)
                .unwrap_err()
                .to_string()
                .contains("--precision")
        );
    }

    #[test]
    fn words_and_numbers() {
        assert_eq!(grouped(4310.4), "4,310");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(62.5), "62.5");
        assert_eq!(grouped(1_234_567.0), "1,234,567");
        let mut p = test_point(2);
        p.transfer = crate::scenario::Transfer::Shm;
        p.placement = crate::scenario::Placement::Partition;
        assert_eq!(describe(&p), "2 workers × 1 thread, shm, partition, cpu");
        assert_eq!(round_rate(437.6), 438.0);
        assert_eq!(round_rate(12.34), 12.3);
    }
}
