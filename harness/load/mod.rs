//! Load generation: closed and open loops, single-model and ensemble requests, windows and
//! stopping rules.
//!
//! Everything runs on the parent's single tokio thread, so the generator adds no cross-thread
//! wake-ups of its own and its state needs no locks.
//!
//! - **Closed loop**: `concurrency` clients, each sending its next request when the previous one is
//!   answered. The intended send time is the actual send time.
//! - **Open loop**: a scheduler computes each request's intended send time from the arrival process
//!   (Poisson, constant or a trace) and sends it then, whatever is in flight: it never waits for a
//!   reply. Latency is measured from the intended time; the time the send actually happened is
//!   recorded too (service time and send lag).
//! - **Ensembles**: a request to a group fans out to every member at once and completes with the
//!   last reply. Each member is also recorded in its own model's histograms, so tail amplification
//!   is visible.
//! - **Input copies**: a mode that copies the inputs before the send (`shm`, into a slot) has the
//!   send begin when the copy does. The copy is transfer cost: it is in service time and in its own
//!   histogram (`stage`), never in send lag, so a 5 MB input does not read as a late generator.
//! - **First runs**: a session's first run in a worker (warm-up effects: allocations, kernel
//!   selection) is counted and timed apart and never enters the steady-state histograms.
//!
//! Requests are recorded by completion time into windows. A fixed stop rule uses one window; the
//! stable rule stops once the last three windows agree.
//!
//! - this file: what a phase yields ([`PhaseResult`]), its rules, and [`run_phase`];
//! - `phase.rs`: one phase's shared state and what one request does, from the worker's finished
//!   run to the outcome recorded in its window;
//! - `loops.rs`: when requests go (the closed loop's clients, the open loop's schedule) and when
//!   the phase ends (the stop rule's monitor).

pub mod batcher;
pub mod timer;

use std::cell::Cell;
use std::time::Duration;

use crate::metrics::Record;
use crate::pool::worker::pool::Pool;
use crate::scenario::{Limit, LoadPoint, Point, Scenario, StopRule, Transfer, Workload};

mod loops;
mod phase;

/// Records of one window: per model, per group and all requests together.
#[derive(Debug, Clone)]
pub(crate) struct WindowRecord {
    pub(crate) models: Vec<Record>,
    pub(crate) groups: Vec<Record>,
    /// Top-level requests: a single-model request or a whole ensemble request, counted once.
    pub(crate) all: Record,
}

impl WindowRecord {
    pub(crate) fn new(models: usize, groups: usize) -> WindowRecord {
        WindowRecord {
            models: vec![Record::default(); models],
            groups: vec![Record::default(); groups],
            all: Record::default(),
        }
    }

    pub(crate) fn merge(&mut self, other: &WindowRecord) {
        for (a, b) in self.models.iter_mut().zip(&other.models) {
            a.merge(b);
        }
        for (a, b) in self.groups.iter_mut().zip(&other.groups) {
            a.merge(b);
        }
        self.all.merge(&other.all);
    }
}

/// First runs of one model's sessions, kept apart from the steady state.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct FirstRuns {
    pub(crate) count: u64,
    /// The slowest first run: send to reply.
    pub(crate) max_latency: Duration,
    /// The slowest first run: inside the runtime.
    pub(crate) max_compute_ns: u64,
}

impl FirstRuns {
    pub(crate) fn merge(&mut self, o: &FirstRuns) {
        self.count += o.count;
        self.max_latency = self.max_latency.max(o.max_latency);
        self.max_compute_ns = self.max_compute_ns.max(o.max_compute_ns);
    }
}

/// The expected-output checks of one model in one phase (see [`crate::model::testdata::compare`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct OutputChecks {
    /// Runs compared with their sample's expected outputs.
    pub(crate) checked: u64,
    /// The first mismatch: model, output, sample, worker, the worst element and the tolerance.
    pub(crate) mismatch: Option<String>,
}

impl OutputChecks {
    pub(crate) fn merge(&mut self, o: &OutputChecks) {
        self.checked += o.checked;
        if self.mismatch.is_none() {
            self.mismatch.clone_from(&o.mismatch);
        }
    }
}

/// What one phase (warm-up or a measured trial) produced.
#[derive(Debug, Clone)]
pub(crate) struct PhaseResult {
    /// The reported records: every window for a fixed rule, the last three for a stable one.
    pub(crate) result: WindowRecord,
    /// The span the reported records cover, for throughput.
    pub(crate) span: Duration,
    /// Windows measured (1 for a fixed rule).
    pub(crate) windows: usize,
    /// `Some(false)` when a stable rule gave up at its window limit.
    pub(crate) stable: Option<bool>,
    /// An open loop exceeded its in-flight limit and stopped early.
    pub(crate) overloaded: bool,
    /// What ended it.
    pub(crate) stopped: Stopped,
    /// Top-level requests sent (including those that failed and first runs).
    pub(crate) sent: u64,
    pub(crate) first_runs: Vec<FirstRuns>,
    /// Per model: outputs checked against the expected ones in this phase.
    pub(crate) checks: Vec<OutputChecks>,
}

impl PhaseResult {
    /// Adds another phase of the same kind (the warm-ups of a point's pools, when its trials run
    /// in rounds): its requests, first runs, cold starts and output checks are counted with these.
    pub(crate) fn absorb(&mut self, o: &PhaseResult) {
        self.result.merge(&o.result);
        self.span += o.span;
        self.windows += o.windows;
        self.overloaded |= o.overloaded;
        self.stopped = self.stopped.max(o.stopped);
        self.sent += o.sent;
        for (a, b) in self.first_runs.iter_mut().zip(&o.first_runs) {
            a.merge(b);
        }
        for (a, b) in self.checks.iter_mut().zip(&o.checks) {
            a.merge(b);
        }
    }
}

/// How long a phase runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PhaseRule {
    /// Warm-up, or a fixed measurement.
    Fixed(Limit),
    /// The default measurement: at least `duration` and at least `samples` successful requests,
    /// whichever comes later, but never past `cap` (a duration from the start, like `duration`).
    Enough {
        duration: Duration,
        samples: u64,
        cap: Duration,
    },
    Stable {
        window: Duration,
        tolerance_pct: f64,
        max_windows: usize,
    },
}

impl PhaseRule {
    /// How a measured trial of `workload` runs: a duration with a minimum runs on to reach it
    /// (within the cap); a request count or a duration without a minimum is fixed.
    pub(crate) fn measure(workload: &Workload) -> PhaseRule {
        match (workload.stop, workload.min_requests(), workload.cap()) {
            (StopRule::Fixed(Limit::Duration(duration)), Some(samples), Some(cap)) => {
                PhaseRule::Enough {
                    duration,
                    samples,
                    cap,
                }
            }
            (StopRule::Fixed(l), _, _) => PhaseRule::Fixed(l),
            (
                StopRule::Stable {
                    window,
                    tolerance_pct,
                    max_windows,
                },
                _,
                _,
            ) => PhaseRule::Stable {
                window,
                tolerance_pct,
                max_windows,
            },
        }
    }
}

/// What ended a phase: the `stopped_by` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) enum Stopped {
    /// Its duration passed (with enough successful requests, where a minimum applies).
    #[default]
    Duration,
    /// Its request count was sent.
    Requests,
    /// Three windows agreed (the stable rule).
    Stable,
    /// It ran past its duration until it had `min_requests` successful requests.
    MinRequests,
    /// The stable rule gave up after `max_windows`.
    MaxWindows,
    /// It reached `max_duration` short of `min_requests`.
    MaxDuration,
    /// An open loop had more than `max_in_flight` requests in flight.
    MaxInFlight,
    /// Cancelled (Ctrl-C), or no worker was left to send to.
    Cut,
}

impl Stopped {
    /// The name in the `stopped_by` column: the scenario key that ended the phase.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stopped::Duration => "duration",
            Stopped::Requests => "requests",
            Stopped::Stable => "stable",
            Stopped::MinRequests => "min_requests",
            Stopped::MaxWindows => "max_windows",
            Stopped::MaxDuration => "max_duration",
            Stopped::MaxInFlight => "max_in_flight",
            Stopped::Cut => "cancelled",
        }
    }
}

/// How a phase sends its requests: the point's load, transfer mode and dynamic batching.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sending {
    pub(crate) load: LoadPoint,
    pub(crate) transfer: Transfer,
    /// `None`, or a policy with `max_batch` 1: every request runs alone.
    pub(crate) batching: Option<batcher::Policy>,
}

impl Sending {
    pub(crate) fn of(point: &Point) -> Sending {
        Sending {
            load: point.load,
            transfer: point.transfer,
            batching: point.batching,
        }
    }
}

/// Whether the throughput and p99 latency of `windows` agree within `tolerance_pct`.
pub(crate) fn agree(windows: &[WindowRecord], window: Duration, tolerance_pct: f64) -> bool {
    let within = |v: Vec<f64>| {
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        lo > 0.0 && (hi - lo) / lo * 100.0 <= tolerance_pct
    };
    let secs = window.as_secs_f64();
    within(windows.iter().map(|w| w.all.ok() as f64 / secs).collect())
        && within(
            windows
                .iter()
                .map(|w| w.all.latency.value_at_quantile(0.99) as f64)
                .collect(),
        )
}

/// Runs one phase of `load` against `pool`.
///
/// `seed` fixes the model choices and arrival times; `cancel` stops issuing new requests (those in
/// flight still complete).
pub(crate) async fn run_phase(
    pool: &Pool,
    scenario: &Scenario,
    sending: Sending,
    rule: PhaseRule,
    seed: u64,
    cancel: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<PhaseResult> {
    let picker = loops::Picker::new(scenario)?;
    let window = match rule {
        PhaseRule::Stable { window, .. } => Some(window),
        PhaseRule::Fixed(_) | PhaseRule::Enough { .. } => None,
    };
    let phase = phase::Phase::new(pool, scenario, sending, window)?;
    let issuer = loops::Issuer {
        phase: &phase,
        picker,
        seed,
        rule,
        cancel,
    };
    let stable = Cell::new(None);
    let open = matches!(sending.load, LoadPoint::Open { .. });
    let monitor = loops::stop_when_due(&phase, rule, open, &stable);
    let overloaded = match sending.load {
        LoadPoint::Closed { concurrency } => {
            issuer.closed(concurrency, monitor).await;
            false
        }
        LoadPoint::Open { rate } => issuer.open(scenario, rate, monitor).await?,
    };
    let mut result = phase.finish(rule, stable.get(), overloaded);
    if *cancel.borrow() {
        result.stopped = Stopped::Cut;
    }
    Ok(result)
}
