//! Turns a point's measured phases into rows and verdicts: one row per model, per ensemble group
//! and `all`, each the median across trials, and why a point is invalid.

use crate::load::{FirstRuns, OutputChecks, PhaseResult, Stopped};
use crate::metrics::{self, Percentiles, Record, Summary, spread};
use crate::pool::worker::pool::WorkerInfo;
use crate::report::{Row, Timings};
use crate::scenario::{Point, Scenario, slo};

/// How the reason for a lagging generator begins.
pub(crate) const LAG_REASON: &str = "the generator fell behind";

/// The verdict on send lag: more than 1% of sends later than [`metrics::LAG_LIMIT`] makes a point
/// invalid. When the host stole 1% of the CPU time or more meanwhile, the reason says so: its
/// stalls delay every send of the VM, whatever the generator does.
/// The advice names `--realtime` only when it is not in force already (`realtime`).
fn lag_reason(lagged_pct: f64, steal_pct: Option<f64>, realtime: bool) -> Option<String> {
    if lagged_pct <= 1.0 {
        return None;
    }
    let host = match steal_pct {
        Some(s) if s >= 1.0 => {
            format!(", while the host took {s:.1}% of the CPU time (cpu_steal_pct)")
        }
        _ => String::new(),
    };
    let advice = if realtime {
        "even under --realtime: free the machine's CPUs, or lower the load"
    } else {
        "on a shared machine, try --realtime"
    };
    Some(format!(
        "{LAG_REASON}: {lagged_pct:.1}% of sends lagged over {} ms{host} ({advice})",
        metrics::LAG_LIMIT.as_millis()
    ))
}

/// The reason a row's own failed requests give (none without): each row names only its own, so a
/// model whose requests all succeeded is not blamed for another model's failures.
fn failed_reason(errors: u64) -> Option<String> {
    (errors > 0).then(|| format!("{errors} failed request(s)"))
}

/// A point's verdict before its rows are made.
pub(crate) struct Verdict {
    /// Why the point is invalid; empty when valid.
    pub(crate) reasons: Vec<String>,
    /// The generator fell behind its schedule: a fault of the measurement, not of the point.
    pub(crate) lagged: bool,
    /// Whether the scenario's SLO was met (`None` without one).
    pub(crate) slo_met: Option<bool>,
}

/// Why a point is invalid, from its `all` summaries (one per trial), phases, the values its SLO is
/// checked against (cold starts counted, see [`measured`]) and the CPU time the host stole
/// meanwhile.
pub(crate) fn verdict(
    scenario: &Scenario,
    trials: &[PhaseResult],
    all: &[Summary],
    measured: &slo::Measured,
    steal_pct: Option<f64>,
) -> Verdict {
    let mut reasons = Vec::new();
    let errors: u64 = all.iter().map(|s| s.errors).sum();
    reasons.extend(failed_reason(errors));
    if let Some(t) = trials.iter().position(|t| t.stable == Some(false)) {
        reasons.push(format!(
            "not stable within {} windows (trial {})",
            trials[t].windows,
            t + 1
        ));
    }
    let fewest = all.iter().map(|s| s.requests).min().unwrap_or(0);
    if let Some(min) = scenario.workload.min_requests()
        && fewest < min
    {
        let capped = trials.iter().any(|t| t.stopped == Stopped::MaxDuration);
        reasons.push(match scenario.workload.cap() {
            Some(cap) if capped => format!(
                "fewer requests than the minimum: {fewest} < {min} within max_duration {} \
                 (raise --max-duration, or lower --min-requests)",
                humantime::format_duration(cap)
            ),
            _ => format!("fewer requests than the minimum: {fewest} < {min}"),
        });
    }
    let lagged_pct = all.iter().map(|s| s.lagged_pct).fold(0.0, f64::max);
    let lag = lag_reason(
        lagged_pct,
        steal_pct,
        crate::load::timer::realtime_in_force(),
    );
    let lagged = lag.is_some();
    reasons.extend(lag);
    if trials.iter().any(|t| t.overloaded) {
        reasons.push(format!(
            "more than {} requests in flight: the workers cannot keep up with the rate",
            scenario.load.max_in_flight
        ));
    }
    let slo_met =
        (!scenario.slo.is_empty()).then(|| slo::check(&scenario.slo, measured, &mut reasons));
    Verdict {
        reasons,
        lagged,
        slo_met,
    }
}

/// The percentiles reported in the CSV below p99.9, with the requests each needs: a `q` percentile
/// of `n` requests has at least one request above it only when `n × (1 - q) >= 1`. (p99.9 needs
/// 1,000, more than the default minimum of 100: its column is documented as such.)
const PERCENTILE_NEEDS: [(&str, u64); 3] = [("p90", 10), ("p95", 20), ("p99", 100)];

/// A note for a point whose trials measured too few requests for some of its percentiles: the
/// user's `requests = N`, or a measurement cut short. `None` when every percentile up to p99 is
/// supported (or nothing was measured).
pub(crate) fn percentile_note(point: &Point, trials: &[PhaseResult]) -> Option<String> {
    let fewest = trials.iter().map(|t| t.result.all.ok()).min()?;
    let short: Vec<String> = PERCENTILE_NEEDS
        .iter()
        .filter(|(_, need)| fewest < *need)
        .map(|(p, need)| format!("{p} needs {need}"))
        .collect();
    (fewest > 0 && !short.is_empty()).then(|| {
        format!(
            "point {}: {fewest} requests per trial are too few for every percentile ({}): \
             such a column is close to the slowest request's latency",
            point.id,
            short.join(", ")
        )
    })
}

/// A note for a point whose measurement ran on past its duration for its minimum: why a `--duration
/// 2s` took longer, and which flags set that. `None` when no trial did.
pub(crate) fn run_on_note(
    scenario: &Scenario,
    point: &Point,
    trials: &[PhaseResult],
) -> Option<String> {
    let w = &scenario.workload;
    let ran_on = trials.iter().filter(|t| t.stopped == Stopped::MinRequests);
    let longest = ran_on.map(|t| t.span).max()?;
    Some(format!(
        "point {}: measured {:.1} s, past its duration, for min_requests = {} successful requests \
         (at most max_duration = {}; set with --min-requests and --max-duration)",
        point.id,
        longest.as_secs_f64(),
        w.min_requests().unwrap_or(0),
        humantime::format_duration(w.cap().unwrap_or_default())
    ))
}

/// The `stopped_by` cell: what ended the point's trials, the most telling of them when they
/// differ (the cap or an overload over a plain duration).
fn stopped_by(trials: &[PhaseResult]) -> String {
    trials
        .iter()
        .map(|t| t.stopped)
        .max()
        .map_or("", Stopped::name)
        .to_string()
}

/// The values an SLO is checked against: `median`'s (the median across trials), with every cold
/// start counted into the latency ([`metrics::with_cold_starts`]: `latency`, every trial's requests
/// added, and `cold`, the cold starts of warm-up and trials), and the cold starts' own p99.
pub(crate) fn measured(
    median: &Summary,
    latency: &hdrhistogram::Histogram<u64>,
    cold: &Record,
) -> slo::Measured {
    let base = slo::Measured {
        cold_p99_us: quantile_us(&cold.cold, 0.99).unwrap_or(0.0),
        ..median.measured()
    };
    metrics::with_cold_starts(median.latency, latency, &cold.cold)
        .unwrap_or(median.latency)
        .into_measured(base)
}

/// A quantile of a histogram of nanoseconds, µs; `None` when it is empty.
fn quantile_us(h: &hdrhistogram::Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1e3)
}

/// The median across trials of every field of a summary (sums for `sent`, `errors` and
/// `outputs_inline`).
fn median_summary(v: &[Summary]) -> Summary {
    let med = |f: fn(&Summary) -> f64| metrics::median(&v.iter().map(f).collect::<Vec<_>>());
    let pct =
        |f: fn(&Summary) -> Percentiles| Percentiles::median(&v.iter().map(f).collect::<Vec<_>>());
    Summary {
        sent: v.iter().map(|s| s.sent).sum(),
        requests: med(|s| s.requests as f64).round() as u64,
        errors: v.iter().map(|s| s.errors).sum(),
        throughput_rps: med(|s| s.throughput_rps),
        latency: pct(|s| s.latency),
        service: pct(|s| s.service),
        lag: pct(|s| s.lag),
        compute: pct(|s| s.compute),
        overhead: pct(|s| s.overhead),
        stage: pct(|s| s.stage),
        outputs_inline: v.iter().map(|s| s.outputs_inline).sum(),
        overhead_p10: med(|s| s.overhead_p10),
        lagged_pct: med(|s| s.lagged_pct),
        queue_wait: pct(|s| s.queue_wait),
        batch_size_mean: med(|s| s.batch_size_mean),
        batch_size_p50: med(|s| s.batch_size_p50),
        batch_size_max: med(|s| s.batch_size_max),
        runs_per_s: med(|s| s.runs_per_s),
    }
}

/// A row holding only the point's parameters: the base of every row of the point. The axis
/// columns come from the axes' declarations ([`Row::of_axes`]).
fn point_row(scenario: &Scenario, point: &Point) -> Row {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Row {
        point: point.index,
        point_id: point.id.clone(),
        oversubscribed: crate::scenario::limits::footprint(point).threads > cores,
        arrival: point
            .load
            .rate()
            .map(|_| scenario.load.arrival.name().to_string()),
        model: "all".into(),
        kind: "all".into(),
        input_staging: point.transfer.staging().into(),
        ..Row::of_axes(point)
    }
}

/// The row of a point whose workers could not start (a CUDA point without a usable GPU): it is
/// reported as failed, and the sweep goes on with the other points.
pub(crate) fn failed_row(scenario: &Scenario, point: &Point, why: &str) -> Row {
    Row {
        valid: false,
        reason: format!("workers did not start: {why}"),
        ..point_row(scenario, point)
    }
}

/// One note per model the point's runtime cannot run.
pub(crate) fn unsupported_notes(
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
pub(crate) fn mark_unsupported(
    rows: &mut [Row],
    scenario: &Scenario,
    unsupported: &[Option<String>],
) {
    for r in rows {
        if let Some(why) = unsupported_reason(scenario, &r.kind, &r.model, unsupported) {
            r.valid = false;
            r.reason = format!("{}{}: {why}", crate::report::UNSUPPORTED, r.runtime);
            r.only_lagged = false;
        }
    }
}

/// The rows of a point whose runtime runs nothing of its traffic: every model and group row, and
/// `all`, invalid and saying why.
pub(crate) fn unsupported_rows(
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

/// The workers' resident memory over a point, as the rows report it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory<'a> {
    /// Each worker's at the end of the point, bytes, in worker order.
    pub(crate) rss_per_worker: &'a [u64],
    /// The highest total resident memory of the workers at one moment, bytes (sampled).
    pub(crate) peak_rss_bytes: Option<u64>,
}

/// Picks one traffic target's record (a model's, a group's or `all`) out of a phase.
type Pick<'p> = &'p dyn Fn(&PhaseResult) -> &Record;

/// Builds the point's rows: one per model, one per ensemble group, then `all`.
pub(crate) fn rows(
    scenario: &Scenario,
    point: &Point,
    workers: &[WorkerInfo],
    warm: Option<&PhaseResult>,
    trials: &[PhaseResult],
    memory: Memory<'_>,
    steal_pct: Option<f64>,
) -> Vec<Row> {
    let mut p = PointRows {
        scenario,
        point,
        warm,
        trials,
        memory,
        steal_pct,
        reasons: Vec::new(),
        lagged: false,
        slo_met: None,
    };
    let checked = p.judge();
    let loads = Loads { workers };
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
    let mut out = Vec::new();
    for (i, m) in scenario.models.iter().enumerate() {
        out.push(Row {
            outputs_checked: checked[i],
            model_load_rss_mib: loads.rss_mib_of(&m.name),
            ..p.row(
                (&m.name, "model"),
                &|t| &t.result.models[i],
                Some(&first_runs[i]),
                loads.ms_of(&m.name),
            )
        });
    }
    for (g, group) in scenario.workload.groups.iter().enumerate() {
        let load_ms = group
            .members
            .iter()
            .map(|&m| loads.ms_of(&scenario.models[m].name))
            .fold(0.0, f64::max);
        out.push(Row {
            outputs_checked: group.members.iter().all(|&m| checked[m]),
            ..p.row(
                (&group.name, "group"),
                &|t| &t.result.groups[g],
                None,
                load_ms,
            )
        });
    }
    out.push(Row {
        outputs_checked: !checked.is_empty() && checked.iter().all(|&c| c),
        ..p.row(
            ("all", "all"),
            &|t| &t.result.all,
            Some(&all_first),
            loads.worker_ms(),
        )
    });
    out
}

/// What the workers reported loading: time and memory per model.
struct Loads<'a> {
    workers: &'a [WorkerInfo],
}

impl Loads<'_> {
    /// The slowest load of `model` across the workers, ms.
    fn ms_of(&self, model: &str) -> f64 {
        self.workers
            .iter()
            .flat_map(|w| w.loads.iter().filter(|l| l.model == model))
            .map(|l| l.load_ns)
            .max()
            .unwrap_or(0) as f64
            / 1e6
    }

    /// What holding the model cost each worker that loaded it at start: the largest of them, MiB.
    fn rss_mib_of(&self, model: &str) -> Option<f64> {
        self.workers
            .iter()
            .flat_map(|w| w.loads.iter().filter(|l| l.model == model))
            .map(|l| l.rss_bytes)
            .max()
            .map(mib)
    }

    /// The longest time one worker spent loading its models, ms.
    fn worker_ms(&self) -> f64 {
        self.workers
            .iter()
            .map(|w| w.loads.iter().map(|l| l.load_ns).sum::<u64>())
            .max()
            .unwrap_or(0) as f64
            / 1e6
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// One point's phases and verdict: what every row of the point is made from.
struct PointRows<'a> {
    scenario: &'a Scenario,
    point: &'a Point,
    warm: Option<&'a PhaseResult>,
    trials: &'a [PhaseResult],
    memory: Memory<'a>,
    steal_pct: Option<f64>,
    /// Why the point is invalid ([`PointRows::judge`]).
    reasons: Vec<String>,
    lagged: bool,
    slo_met: Option<bool>,
}

impl PointRows<'_> {
    /// Each trial's summary of one target.
    fn summaries(&self, pick: Pick<'_>) -> Vec<Summary> {
        self.trials
            .iter()
            .map(|t| Summary::of(pick(t), t.span))
            .collect()
    }

    /// One target's record across warm-up and every trial (first runs and cold starts).
    fn merged(&self, pick: Pick<'_>) -> Record {
        let mut r = Record::default();
        for t in self.warm.into_iter().chain(self.trials) {
            r.merge(pick(t));
        }
        r
    }

    /// Sets the point's verdict from its `all` summaries and its expected-output checks (across
    /// warm-up and every trial: a mismatch makes the point invalid, so it can never report fast
    /// wrong answers); returns which models had their outputs checked.
    fn judge(&mut self) -> Vec<bool> {
        let all = self.summaries(&|t| &t.result.all);
        let all_merged = self.merged(&|t| &t.result.all);
        // Latency across every trial (warm-up left out).
        let mut all_latency = metrics::new_histogram();
        for t in self.trials {
            all_latency
                .add(&t.result.all.latency)
                .expect("histograms with equal bounds merge");
        }
        let slo_measured = measured(&median_summary(&all), &all_latency, &all_merged);
        let v = verdict(
            self.scenario,
            self.trials,
            &all,
            &slo_measured,
            self.steal_pct,
        );
        (self.reasons, self.lagged, self.slo_met) = (v.reasons, v.lagged, v.slo_met);
        // Failed requests are each row's own ([`PointRows::row`]), not the point's.
        let failed = failed_reason(all.iter().map(|s| s.errors).sum());
        self.reasons.retain(|r| Some(r) != failed.as_ref());
        let mut checks = vec![OutputChecks::default(); self.scenario.models.len()];
        for phase in self.warm.into_iter().chain(self.trials) {
            for (a, b) in checks.iter_mut().zip(&phase.checks) {
                a.merge(b);
            }
        }
        self.reasons.extend(
            checks
                .iter()
                .filter_map(|c| c.mismatch.as_ref())
                .map(|m| format!("wrong outputs: {m}")),
        );
        checks.iter().map(|c| c.checked > 0).collect()
    }

    /// The row of one target (`(name, kind)`): its counts, timings and cold starts, with the
    /// point's parameters, memory and verdict.
    fn row(
        &self,
        (name, kind): (&str, &str),
        pick: Pick<'_>,
        first: Option<&FirstRuns>,
        load_ms: f64,
    ) -> Row {
        let per_trial = self.summaries(pick);
        let every = self.merged(pick);
        let reasons: Vec<String> = failed_reason(per_trial.iter().map(|s| s.errors).sum())
            .into_iter()
            .chain(self.reasons.iter().cloned())
            .collect();
        let mut row = Row {
            model: name.into(),
            kind: kind.into(),
            load_ms,
            rss_mib: mib(self.memory.rss_per_worker.iter().sum()),
            rss_per_worker_mib: self
                .memory
                .rss_per_worker
                .iter()
                .map(|&b| format!("{:.1}", mib(b)))
                .collect::<Vec<_>>()
                .join(";"),
            peak_rss_mib: self.memory.peak_rss_bytes.map(mib),
            cpu_steal_pct: self.steal_pct,
            windows: self.trials.iter().map(|t| t.windows).max().unwrap_or(0),
            stopped_by: stopped_by(self.trials),
            valid: reasons.is_empty(),
            reason: reasons.join("; "),
            only_lagged: self.lagged && reasons.len() == 1,
            slo_met: self.slo_met,
            first_run_ms: first
                .filter(|f| f.count > 0)
                .map(|f| f.max_latency.as_secs_f64() * 1e3),
            ..point_row(self.scenario, self.point)
        };
        self.set_counts(&mut row, &per_trial, &every, pick);
        self.set_cold_starts(&mut row, &every);
        row.set_timings(&per_trial.iter().map(Timings::from).collect::<Vec<_>>());
        row
    }

    /// Requests, throughput and batching. Every request sent lands in exactly one of `requests`,
    /// `errors`, `first_runs`, `cold_starts` and `warmup_requests` (with one trial; see
    /// docs/reference/columns.md): first runs and cold starts are counted wherever they happen,
    /// warm-up included, so `warmup_requests` holds the warm-up's other requests.
    fn set_counts(&self, row: &mut Row, per_trial: &[Summary], every: &Record, pick: Pick<'_>) {
        let m = median_summary(per_trial);
        let (batch, batching) = (self.point.batch, self.point.batching);
        let throughputs: Vec<f64> = per_trial.iter().map(|s| s.throughput_rps).collect();
        let (_, tmin, tmax) = spread(&throughputs).unwrap_or_default();
        let spans: Vec<f64> = self.trials.iter().map(|t| t.span.as_secs_f64()).collect();
        row.trials = self.trials.len();
        row.sent = per_trial.iter().map(|s| s.sent).sum::<u64>()
            + self.warm.map_or(0, |w| pick(w).attempts);
        row.requests = m.requests;
        row.errors = m.errors;
        row.first_runs = every.first_runs;
        row.warmup_requests = self.warm.map_or(0, |w| {
            let r = pick(w);
            r.attempts - r.first_runs - r.cold.len()
        });
        row.duration_s = spread(&spans).map_or(0.0, |s| s.0);
        row.throughput_rps = m.throughput_rps;
        row.throughput_samples_s = batch.map(|b| m.throughput_rps * b as f64);
        row.runs_per_s = batching.map(|_| m.runs_per_s);
        row.batch_size_mean = batching.map(|_| m.batch_size_mean);
        row.batch_size_p50 = batching.map(|_| m.batch_size_p50);
        row.batch_size_max = batching.map(|_| m.batch_size_max);
        row.queue_wait_p50_us = batching.map(|_| m.queue_wait.p50);
        row.queue_wait_p99_us = batching.map(|_| m.queue_wait.p99);
        row.throughput_rps_min = tmin;
        row.throughput_rps_max = tmax;
        row.lagged_sends_pct = m.lagged_pct;
        row.stage_p50_us = m.stage.p50;
        row.stage_p99_us = m.stage.p99;
        row.shm_inline_outputs = m.outputs_inline;
    }

    /// Cold starts, and the model cache of the on-demand placement (empty for the others).
    fn set_cold_starts(&self, row: &mut Row, every: &Record) {
        let on_demand = self.point.placement == crate::scenario::Placement::OnDemand;
        let aged = on_demand && !every.evicted_age.is_empty();
        row.cold_starts = every.cold.len();
        row.cold_start_p50_ms = quantile_us(&every.cold, 0.5).map(|us| us / 1e3);
        row.cold_start_p99_ms = quantile_us(&every.cold, 0.99).map(|us| us / 1e3);
        row.cold_start_max_ms = (!every.cold.is_empty()).then(|| every.cold.max() as f64 / 1e6);
        row.cache_hit_pct = on_demand.then(|| {
            let hits = every.ok() + every.first_runs;
            let asked = hits + every.cold.len();
            if asked == 0 {
                0.0
            } else {
                100.0 * hits as f64 / asked as f64
            }
        });
        row.evictions = on_demand.then_some(every.evictions);
        row.evicted_age_mean_ms = aged.then(|| every.evicted_age.mean() / 1e6);
        row.evicted_age_max_ms = aged.then(|| every.evicted_age.max() as f64 / 1e6);
        row.miss_delay_p50_us = quantile_us(&every.miss_load, 0.5).filter(|_| on_demand);
        row.miss_delay_p99_us = quantile_us(&every.miss_load, 0.99).filter(|_| on_demand);
    }
}

/// A point's CPU cost over its timed trials, as its rows report it (the same on every row: the
/// parent and the workers serve every model together, so their CPU time cannot be split by model).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CpuCost {
    /// The parent's CPU time (load generator and samplers, every thread) per request, µs.
    pub(crate) parent_cpu_us_per_req: Option<f64>,
    /// The workers' CPU time together per request, µs; `None` when it could not be counted.
    pub(crate) worker_cpu_us_per_req: Option<f64>,
    /// Parent and workers together: CPU time over wall time, in cores.
    pub(crate) cores_used: Option<f64>,
}

impl CpuCost {
    /// The cost from the CPU time `cpu` spent over `trials`. Per request means: CPU time per second
    /// of the trials, over requests per second as `throughput_rps` counts them (the `all` record's
    /// successful requests over its measured span, every trial added up). With a fixed stop rule
    /// the span is the trial, so this is the CPU time over the successful requests; with a stable
    /// one the CPU time covers every window of a trial and the requests only the reported ones,
    /// which the rates reconcile.
    pub(crate) fn of(cpu: &metrics::CpuSpent, trials: &[PhaseResult]) -> CpuCost {
        let requests: u64 = trials.iter().map(|t| t.result.all.ok()).sum();
        let span: std::time::Duration = trials.iter().map(|t| t.span).sum();
        CpuCost::from_totals(cpu, requests, span)
    }

    fn from_totals(cpu: &metrics::CpuSpent, requests: u64, span: std::time::Duration) -> CpuCost {
        let wall = cpu.wall.as_secs_f64();
        if wall <= 0.0 {
            return CpuCost::default();
        }
        // CPU seconds per second of the trials: cores.
        let cores = |d: std::time::Duration| d.as_secs_f64() / wall;
        let rps = requests as f64 / span.as_secs_f64().max(1e-9);
        let per_req = |d| (requests > 0).then(|| cores(d) / rps * 1e6);
        CpuCost {
            parent_cpu_us_per_req: per_req(cpu.own),
            worker_cpu_us_per_req: cpu.others.and_then(per_req),
            cores_used: cpu.others.map(|w| cores(cpu.own + w)),
        }
    }

    /// Writes the cost into a row's columns.
    pub(crate) fn set(&self, row: &mut Row) {
        row.parent_cpu_us_per_req = self.parent_cpu_us_per_req;
        row.worker_cpu_us_per_req = self.worker_cpu_us_per_req;
        row.cores_used = self.cores_used;
    }
}

/// One line per kind of failed request: count and first message.
pub(crate) fn error_notes(point: &Point, trials: &[PhaseResult]) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::WindowRecord;
    use crate::metrics::Timing;
    use std::time::Duration;

    /// A phase of a point with one model `m` in a group `g`: `ok` successes, `first` first runs,
    /// `cold` cold starts and `failed` errors, each a request of the model and of the group alike.
    fn phase(ok: u64, first: u64, cold: u64, failed: u64) -> PhaseResult {
        let mut result = WindowRecord::new(1, 1);
        for r in [
            &mut result.models[0],
            &mut result.groups[0],
            &mut result.all,
        ] {
            for _ in 0..ok {
                r.record_ok(ok_timing());
            }
            for _ in 0..cold {
                r.record_cold(Duration::from_millis(30));
            }
            for _ in 0..failed {
                r.record_error("runtime_error", "no", Duration::ZERO);
            }
            r.first_runs = first;
            r.attempts = ok + first + cold + failed;
        }
        PhaseResult {
            result,
            span: Duration::from_secs(1),
            windows: 1,
            stable: None,
            overloaded: false,
            stopped: Stopped::Requests,
            sent: ok + first + cold + failed,
            first_runs: vec![FirstRuns {
                count: first,
                max_latency: Duration::from_millis(20),
                max_compute_ns: 0,
            }],
            checks: vec![OutputChecks::default()],
        }
    }

    /// A successful request of 100 µs, 50 µs of it compute.
    fn ok_timing() -> Timing {
        let t = Duration::from_micros(100);
        Timing {
            latency: t,
            service: t,
            lag: Duration::ZERO,
            compute_ns: 50_000,
        }
    }

    /// The rows of `s`'s first point for one trial: no warm-up, no worker info, no memory, no
    /// steal.
    fn rows_of(s: &Scenario, trial: PhaseResult) -> Vec<Row> {
        rows(
            s,
            &s.points[0],
            &[],
            None,
            &[trial],
            Memory::default(),
            None,
        )
    }

    /// Regression: with warm-up on (the default), the first runs happened in warm-up and were
    /// counted in both `warmup_requests` and `first_runs`, so every row missed the identity.
    #[test]
    fn every_request_sent_is_counted_once_with_and_without_warm_up() {
        let s = crate::scenario::load_bytes(
            b"[[model]]\nname = \"m\"\nsynthetic = { mean = \"1ms\" }\n\
              [workload]\ngroups = { g = [\"m\"] }\nmix = { m = 1, g = 1 }\n",
            std::path::Path::new("s.toml"),
        )
        .unwrap();
        let cases = [
            (Some(phase(40, 2, 1, 0)), phase(100, 0, 3, 1)),
            (Some(phase(40, 0, 0, 2)), phase(100, 2, 0, 0)),
            (None, phase(100, 2, 1, 1)),
        ];
        for (warm, trial) in cases {
            let rows = rows(
                &s,
                &s.points[0],
                &[],
                warm.as_ref(),
                std::slice::from_ref(&trial),
                Memory::default(),
                None,
            );
            assert_eq!(rows.len(), 3);
            for r in &rows {
                assert_eq!(
                    r.requests + r.errors + r.first_runs + r.cold_starts + r.warmup_requests,
                    r.sent,
                    "{} {}: {r:?}",
                    r.kind,
                    r.model
                );
            }
            let all = rows.last().unwrap();
            let warm_sent = warm.as_ref().map_or(0, |w| w.sent);
            assert_eq!(all.sent, warm_sent + trial.sent);
        }
    }

    /// `bench capacity` retries a probe that only the generator's lag made invalid; it must not
    /// retry one with a fault of its own besides (it used to tell them apart by the reason text).
    #[test]
    fn a_point_invalid_only_by_lag_is_marked_so() {
        let s = crate::scenario::load_bytes(
            b"[[model]]\nname = \"m\"\nsynthetic = { mean = \"1ms\" }\n\
              [workload]\ngroups = { g = [\"m\"] }\nmix = { m = 1, g = 1 }\n",
            std::path::Path::new("s.toml"),
        )
        .unwrap();
        let lagging = |mut p: PhaseResult| {
            for r in [
                &mut p.result.models[0],
                &mut p.result.groups[0],
                &mut p.result.all,
            ] {
                r.lagged = r.attempts / 2;
            }
            p
        };
        let all_of = |trial: PhaseResult| rows_of(&s, trial).pop().unwrap();
        let lagged = all_of(lagging(phase(100, 0, 0, 0)));
        assert!(!lagged.valid && lagged.only_lagged, "{lagged:?}");
        let lagged_and_failed = all_of(lagging(phase(100, 0, 0, 3)));
        assert!(
            !lagged_and_failed.valid && !lagged_and_failed.only_lagged,
            "{lagged_and_failed:?}"
        );
        let fine = all_of(phase(100, 0, 0, 0));
        assert!(fine.valid && !fine.only_lagged, "{fine:?}");
    }

    /// Regression (issue 24): "109 failed request(s)" was the reason on every model's row, though
    /// only one model failed; it belongs on that model's row and on `all`.
    #[test]
    fn failed_requests_are_blamed_on_the_failing_model_only() {
        let s = crate::scenario::load_bytes(
            b"[[model]]\nname = \"good\"\nsynthetic = { mean = \"1ms\" }\n\
              [[model]]\nname = \"bad\"\nsynthetic = { mean = \"1ms\" }\n",
            std::path::Path::new("s.toml"),
        )
        .unwrap();
        let mut trial = phase(0, 0, 0, 0);
        trial.result = WindowRecord::new(2, 0);
        trial.checks = vec![OutputChecks::default(); 2];
        trial.first_runs = vec![FirstRuns::default(); 2];
        let ok = ok_timing();
        for _ in 0..200 {
            trial.result.models[0].record_ok(ok);
            trial.result.all.record_ok(ok);
        }
        for _ in 0..7 {
            trial.result.models[1].record_error("runtime_error", "no", Duration::ZERO);
            trial
                .result
                .all
                .record_error("runtime_error", "no", Duration::ZERO);
        }
        let rows = rows_of(&s, trial);
        let reason = |model: &str| {
            let r = rows.iter().find(|r| r.model == model).unwrap();
            r.reason.clone()
        };
        assert!(!reason("good").contains("failed"), "{rows:#?}");
        assert!(
            reason("bad").starts_with("7 failed request(s)"),
            "{rows:#?}"
        );
        assert!(
            reason("all").starts_with("7 failed request(s)"),
            "{rows:#?}"
        );
    }

    #[test]
    fn cpu_cost_is_cpu_time_per_second_over_requests_per_second() {
        let ms = Duration::from_millis;
        let cpu = metrics::CpuSpent {
            wall: ms(2_000),
            own: ms(500),
            others: Some(ms(1_500)),
        };
        // A fixed rule: the span is the trials' wall time, so CPU time over requests.
        let c = CpuCost::from_totals(&cpu, 1_000, ms(2_000));
        assert_eq!(
            (
                c.parent_cpu_us_per_req,
                c.worker_cpu_us_per_req,
                c.cores_used
            ),
            (Some(500.0), Some(1_500.0), Some(1.0))
        );
        // A stable rule reporting the last 0.5 s of the 2 s: its 250 requests ran at the same rate.
        let c = CpuCost::from_totals(&cpu, 250, ms(500));
        assert_eq!(c.parent_cpu_us_per_req, Some(500.0));
        // Workers that could not be counted leave their cost and the total unknown, not low.
        let partial = metrics::CpuSpent {
            others: None,
            ..cpu
        };
        let c = CpuCost::from_totals(&partial, 1_000, ms(2_000));
        assert_eq!(
            (
                c.parent_cpu_us_per_req,
                c.worker_cpu_us_per_req,
                c.cores_used
            ),
            (Some(500.0), None, None)
        );
        // No successful request: no cost per request, the cores all the same.
        let c = CpuCost::from_totals(&cpu, 0, ms(2_000));
        assert_eq!(
            (
                c.parent_cpu_us_per_req,
                c.worker_cpu_us_per_req,
                c.cores_used
            ),
            (None, None, Some(1.0))
        );
        assert_eq!(
            CpuCost::from_totals(&metrics::CpuSpent::zero(), 10, ms(1)),
            CpuCost::default(),
            "no trial ran"
        );
    }

    #[test]
    fn lag_makes_a_point_invalid_above_one_percent_and_names_a_noisy_host() {
        assert_eq!(lag_reason(1.0, Some(9.0), false), None);
        let quiet = lag_reason(2.5, Some(0.4), false).unwrap();
        assert!(
            quiet.starts_with(
                "the generator fell behind: 2.5% of sends lagged over 1 ms (on a shared machine, try --realtime)"
            ),
            "{quiet}"
        );
        assert!(!quiet.contains("host"), "{quiet}");
        assert_eq!(lag_reason(2.5, None, false).unwrap(), quiet);
        let noisy = lag_reason(2.5, Some(4.25), false).unwrap();
        assert!(
            noisy.contains("lagged over 1 ms, while the host took 4.2% of the CPU time (cpu_steal_pct) (on a shared machine, try --realtime"),
            "{noisy}"
        );
        assert!(!noisy.contains(';'), "reasons are joined with `; `");
    }

    /// Regression: with `--realtime` on, a lagging point still advised "try --realtime".
    #[test]
    fn lag_advice_does_not_suggest_realtime_when_it_is_on() {
        let on = lag_reason(2.5, None, true).unwrap();
        assert!(!on.contains("try --realtime"), "{on}");
        assert!(
            on.ends_with("(even under --realtime: free the machine's CPUs, or lower the load)"),
            "{on}"
        );
    }

    /// Regression (issue 24): `requests = 50` was invalid against a minimum of 100 the user never
    /// set. A request count is judged on its requests, a duration against `min_requests`, and a
    /// trial that reached its cap short of the minimum says so with the flags to change.
    #[test]
    fn the_minimum_applies_to_a_duration_and_names_the_cap() {
        let load = |workload: &str| {
            crate::scenario::load_bytes(
                format!("[[model]]\nname = \"m\"\nsynthetic = {{ mean = \"100ms\" }}\n[workload]\ngroups = {{ g = [\"m\"] }}\n{workload}")
                    .as_bytes(),
                std::path::Path::new("s.toml"),
            )
            .unwrap()
        };
        let reason = |s: &Scenario, trial: PhaseResult| {
            let rows = rows_of(s, trial);
            (rows[2].reason.clone(), rows[2].stopped_by.clone())
        };
        let (why, stopped) = reason(&load("requests = 50\n"), phase(50, 0, 0, 0));
        assert_eq!((why.as_str(), stopped.as_str()), ("", "requests"));
        // An explicit minimum still applies to a count.
        let (why, _) = reason(
            &load("requests = 50\nmin_requests = 60\n"),
            phase(50, 0, 0, 0),
        );
        assert_eq!(why, "fewer requests than the minimum: 50 < 60");
        let timed = load("duration = \"2s\"\n");
        let capped = PhaseResult {
            stopped: Stopped::MaxDuration,
            ..phase(40, 0, 0, 0)
        };
        let (why, stopped) = reason(&timed, capped);
        assert_eq!(
            why,
            "fewer requests than the minimum: 40 < 100 within max_duration 1m \
             (raise --max-duration, or lower --min-requests)"
        );
        assert_eq!(stopped, "max_duration");
        let ran_on = PhaseResult {
            stopped: Stopped::MinRequests,
            ..phase(100, 0, 0, 0)
        };
        assert_eq!(
            reason(&timed, ran_on.clone()),
            (String::new(), "min_requests".into())
        );
        let note = run_on_note(&timed, &timed.points[0], &[ran_on]).unwrap();
        assert!(
            note.contains("measured 1.0 s, past its duration, for min_requests = 100 successful requests (at most max_duration = 1m;"),
            "{note}"
        );
        assert_eq!(
            run_on_note(&timed, &timed.points[0], &[phase(100, 0, 0, 0)]),
            None
        );
    }

    #[test]
    fn too_few_requests_for_a_percentile_are_noted() {
        let p = Point::default();
        let note = percentile_note(&p, &[phase(50, 0, 0, 0)]).unwrap();
        assert!(
            note.contains("50 requests per trial are too few for every percentile (p99 needs 100)"),
            "{note}"
        );
        assert_eq!(percentile_note(&p, &[phase(100, 0, 0, 0)]), None);
        // The fewest of the trials.
        let note = percentile_note(&p, &[phase(200, 0, 0, 0), phase(15, 0, 0, 0)]).unwrap();
        assert!(note.contains("15 requests per trial are too few for every percentile (p95 needs 20, p99 needs 100)"), "{note}");
    }
}
