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

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rand::SeedableRng;
use rand::distr::{Distribution, weighted::WeightedIndex};
use rand_chacha::ChaCha8Rng;
use rand_distr::Exp;

use crate::batcher::{self, Batcher, Joined};
use crate::metrics::{Record, Staging, Timing};
use crate::scenario::{Arrival, Limit, LoadPoint, Point, Scenario, StopRule, Target, Transfer};
use crate::timer::PreciseTimer;
use crate::transfer::Stager;
use crate::worker::pool::{Pool, Reply};

/// Records of one window: per model, per group and all requests together.
#[derive(Debug, Clone)]
pub struct WindowRecord {
    pub models: Vec<Record>,
    pub groups: Vec<Record>,
    /// Top-level requests: a single-model request or a whole ensemble request, counted once.
    pub all: Record,
}

impl WindowRecord {
    pub fn new(models: usize, groups: usize) -> WindowRecord {
        WindowRecord {
            models: vec![Record::default(); models],
            groups: vec![Record::default(); groups],
            all: Record::default(),
        }
    }

    pub fn merge(&mut self, other: &WindowRecord) {
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
pub struct FirstRuns {
    pub count: u64,
    /// The slowest first run: send to reply.
    pub max_latency: Duration,
    /// The slowest first run: inside the runtime.
    pub max_compute_ns: u64,
}

impl FirstRuns {
    pub fn merge(&mut self, o: &FirstRuns) {
        self.count += o.count;
        self.max_latency = self.max_latency.max(o.max_latency);
        self.max_compute_ns = self.max_compute_ns.max(o.max_compute_ns);
    }
}

/// The expected-output checks of one model in one phase (see [`crate::testdata::compare`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputChecks {
    /// Runs compared with their sample's expected outputs.
    pub checked: u64,
    /// The first mismatch: model, output, sample, worker, the worst element and the tolerance.
    pub mismatch: Option<String>,
}

impl OutputChecks {
    pub fn merge(&mut self, o: &OutputChecks) {
        self.checked += o.checked;
        if self.mismatch.is_none() {
            self.mismatch.clone_from(&o.mismatch);
        }
    }
}

/// What one phase (warm-up or a measured trial) produced.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    /// The reported records: every window for a fixed rule, the last three for a stable one.
    pub result: WindowRecord,
    /// The span the reported records cover, for throughput.
    pub span: Duration,
    /// Windows measured (1 for a fixed rule).
    pub windows: usize,
    /// `Some(false)` when a stable rule gave up at its window limit.
    pub stable: Option<bool>,
    /// An open loop exceeded its in-flight limit and stopped early.
    pub overloaded: bool,
    /// Top-level requests sent (including those that failed and first runs).
    pub sent: u64,
    pub first_runs: Vec<FirstRuns>,
    /// Per model: outputs checked against the expected ones in this phase.
    pub checks: Vec<OutputChecks>,
}

impl PhaseResult {
    /// Adds another phase of the same kind (the warm-ups of a point's pools, when its trials run
    /// in rounds): its requests, first runs, cold starts and output checks are counted with these.
    pub fn absorb(&mut self, o: &PhaseResult) {
        self.result.merge(&o.result);
        self.span += o.span;
        self.windows += o.windows;
        self.overloaded |= o.overloaded;
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
pub enum PhaseRule {
    /// Warm-up, or a fixed measurement.
    Fixed(Limit),
    Stable {
        window: Duration,
        tolerance_pct: f64,
        max_windows: usize,
    },
}

impl From<StopRule> for PhaseRule {
    fn from(s: StopRule) -> PhaseRule {
        match s {
            StopRule::Fixed(l) => PhaseRule::Fixed(l),
            StopRule::Stable {
                window,
                tolerance_pct,
                max_windows,
            } => PhaseRule::Stable {
                window,
                tolerance_pct,
                max_windows,
            },
        }
    }
}

/// How a phase sends its requests: the point's load, transfer mode and dynamic batching.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sending {
    pub load: LoadPoint,
    pub transfer: Transfer,
    /// `None`, or a policy with `max_batch` 1: every request runs alone.
    pub batching: Option<batcher::Policy>,
}

impl Sending {
    pub fn of(point: &Point) -> Sending {
        Sending {
            load: point.load,
            transfer: point.transfer,
            batching: point.batching,
        }
    }
}

/// A request waiting in a model's batching queue.
struct Queued {
    /// The sample it sends.
    index: usize,
    intended: Instant,
    hint: usize,
}

/// What one model call returns: its outcome, when its send began and when its reply arrived.
type Called = (Outcome, Instant, Instant);

/// One run sent to a worker, and what its requests' outcomes are made from.
struct Ran {
    reply: Reply,
    /// When the send began: when the parent's copy of the inputs did, for a mode that copies.
    began: Instant,
    done: Instant,
    copy: Duration,
    /// `shm` outputs that outgrew their slot came back inline.
    outputs_inline: bool,
    /// A run of one sample whose outputs missed its expected ones.
    mismatch: Option<String>,
}

/// The outcome of one model call.
enum Outcome {
    Ok(Timing, Staging),
    First,
    /// The worker loaded the model for this request (on-demand placement).
    Cold {
        latency: Duration,
    },
    Err {
        kind: &'static str,
        message: String,
        lag: Duration,
    },
}

/// Shared state of one phase.
struct Phase<'a> {
    pool: &'a Pool,
    scenario: &'a Scenario,
    /// Puts each request's inputs on the wire the point's transfer mode's way.
    stager: Stager<'a>,
    start: Instant,
    window: Option<Duration>,
    windows: RefCell<Vec<WindowRecord>>,
    first_runs: RefCell<Vec<FirstRuns>>,
    checks: RefCell<Vec<OutputChecks>>,
    next_id: Cell<u64>,
    next_sample: Cell<usize>,
    frames: RefCell<Vec<Vec<u8>>>,
    /// Dynamic batching's queues, when the point batches.
    batcher: Option<Batcher<Queued, Called>>,
    /// Per model, the batch axis of each input that has one: `(input, axis)`.
    batch_axes: Vec<Vec<(u32, u32)>>,
    last_done: Cell<Instant>,
    sent: Cell<u64>,
    stop: Cell<bool>,
}

impl<'a> Phase<'a> {
    fn new(
        pool: &'a Pool,
        scenario: &'a Scenario,
        sending: Sending,
        window: Option<Duration>,
    ) -> anyhow::Result<Phase<'a>> {
        let stager = Stager::new(sending.transfer, pool.slots.as_ref())?;
        // A point with `[batching]` sends every request through the queues, `max_batch = 1` too,
        // so that batching and none are measured on the same path.
        let batcher = sending
            .batching
            .map(|p| Batcher::new(p, scenario.models.len()));
        let now = Instant::now();
        Ok(Phase {
            pool,
            scenario,
            stager,
            start: now,
            window,
            windows: RefCell::new(Vec::new()),
            first_runs: RefCell::new(vec![FirstRuns::default(); scenario.models.len()]),
            checks: RefCell::new(vec![OutputChecks::default(); scenario.models.len()]),
            next_id: Cell::new(0),
            next_sample: Cell::new(0),
            frames: RefCell::new(Vec::new()),
            batcher,
            batch_axes: scenario.models.iter().map(|m| m.batch_axes()).collect(),
            last_done: Cell::new(now),
            sent: Cell::new(0),
            stop: Cell::new(false),
        })
    }

    /// The window a completion at `at` belongs to.
    fn with_window<R>(&self, at: Instant, f: impl FnOnce(&mut WindowRecord) -> R) -> R {
        let idx = self.window.map_or(0, |w| {
            (at.saturating_duration_since(self.start).as_nanos() / w.as_nanos().max(1)) as usize
        });
        let mut windows = self.windows.borrow_mut();
        let (m, g) = (
            self.scenario.models.len(),
            self.scenario.workload.groups.len(),
        );
        while windows.len() <= idx {
            windows.push(WindowRecord::new(m, g));
        }
        f(&mut windows[idx])
    }

    /// Calls one model and records the result in that model's record. Returns the outcome, when
    /// the send began (the input copy's start, for a mode that copies before sending) and when the
    /// reply arrived.
    async fn call_model(&self, m: usize, intended: Instant, hint: usize) -> Called {
        let spec = &self.scenario.models[m];
        let k = self.next_sample.get();
        self.next_sample.set(k.wrapping_add(1));
        let index = k % spec.samples.len();
        if let Some(batcher) = &self.batcher {
            return self
                .call_batched(
                    batcher,
                    m,
                    Queued {
                        index,
                        intended,
                        hint,
                    },
                )
                .await;
        }
        let ran = self.send_run(m, hint, &[index]).await;
        // The send begins when the parent's copy of the inputs does, and never before its
        // intended time; a wait for a free slot before it is send lag.
        let began = ran.began.max(intended);
        let lag = began.saturating_duration_since(intended);
        let outcome = self.outcome(m, &ran, intended, began, lag, None);
        self.with_window(ran.done, |w| record(&mut w.models[m], &outcome));
        (outcome, began, ran.done)
    }

    /// Queues a request to model `m` for dynamic batching and records its outcome once its batch
    /// has run (led by this request or another).
    async fn call_batched(
        &self,
        batcher: &Batcher<Queued, Called>,
        m: usize,
        request: Queued,
    ) -> Called {
        let intended = request.intended;
        let joined_at = Instant::now();
        let joined = batcher
            .join(m, request, joined_at, || self.pool.idle_holder(m))
            .await;
        let (outcome, began, done) = match joined {
            Ok(Joined::Done(called)) => called,
            Ok(Joined::Lead(batch)) => {
                let results = self.run_batch(m, &batch.items, &batch.joined).await;
                batcher.worker_freed();
                batch.finish(results)
            }
            Err(e) => (
                Outcome::Err {
                    kind: "runtime_error",
                    message: format!("{e:#}"),
                    lag: joined_at.saturating_duration_since(intended),
                },
                joined_at,
                Instant::now(),
            ),
        };
        self.with_window(done, |w| record(&mut w.models[m], &outcome));
        (outcome, began, done)
    }

    /// Runs one batch of requests to model `m` as one run, and returns each request's outcome,
    /// in order. `joined` says when each reached the queue: its send lag ends there, and its wait
    /// in the queue runs from there to the batch's send.
    async fn run_batch(&self, m: usize, items: &[Queued], joined: &[Instant]) -> Vec<Called> {
        let samples: Vec<usize> = items.iter().map(|q| q.index).collect();
        let ran = self.send_run(m, items[0].hint, &samples).await;
        self.with_window(ran.done, |w| {
            w.models[m].record_run(items.len());
            w.all.record_run(items.len());
        });
        items
            .iter()
            .zip(joined)
            .map(|(q, &at)| {
                let from = at.max(q.intended);
                let lag = at.saturating_duration_since(q.intended);
                let queue_wait = ran.began.saturating_duration_since(from);
                let outcome = self.outcome(m, &ran, q.intended, ran.began, lag, Some(queue_wait));
                (outcome, from, ran.done)
            })
            .collect()
    }

    /// Sends one run of model `m` on `samples` (by number) to a worker and waits for its reply:
    /// one sample as it is, several joined along the batch dim (in the parent for the modes that
    /// carry tensors, in the worker for `index`). Replaces a dead or hung worker, records the
    /// model cache's events, and checks a run of one sample against its expected outputs.
    async fn send_run(&self, m: usize, hint: usize, samples: &[usize]) -> Ran {
        let spec = &self.scenario.models[m];
        let axes = &self.batch_axes[m];
        let tensors: Result<std::borrow::Cow<'_, [crate::tensor::TensorData]>, String> =
            match samples {
                [one] => Ok(std::borrow::Cow::Borrowed(&spec.samples[*one])),
                _ if self.stager.joins_in_parent() => {
                    let parts: Vec<&[crate::tensor::TensorData]> =
                        samples.iter().map(|&k| &spec.samples[k][..]).collect();
                    crate::transfer::join_samples(&parts, axes).map(std::borrow::Cow::Owned)
                }
                _ => Ok(std::borrow::Cow::Borrowed(&[])),
            };
        // What an `index` batch sends instead of tensors (nothing for a run of one).
        let numbers: Vec<u32> = match samples {
            [_] => Vec::new(),
            _ => samples.iter().map(|&k| k as u32).collect(),
        };
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let mut frame = self.frames.borrow_mut().pop().unwrap_or_default();
        // Staging may wait (for a free shared-memory slot): that counts as send lag.
        let staged = match (&tensors, samples) {
            (Ok(t), [one]) => Some(self.stager.stage(t, *one).await),
            (Ok(t), _) => Some(self.stager.stage_batch(t, &numbers, axes).await),
            (Err(_), _) => None,
        };
        // Workers that died with nothing in flight are noticed here, before one is picked.
        self.pool.heal().await;
        let worker = self.pool.pick(m, hint);
        let timeout = self.pool.policy().request_timeout;
        let sent = Instant::now();
        // The parent's copy of the inputs (shm) is transfer cost, not the generator falling
        // behind: the send begins when the copy does.
        let copy = staged.as_ref().map_or(Duration::ZERO, |s| s.copy_time());
        let began = sent.checked_sub(copy).unwrap_or(sent);
        // On-demand placement: a run that will make its worker load a model first waits for a
        // load permit (`[on_demand] parallel_loads`), held until its reply; the wait is part of
        // the miss's service time, not send lag.
        let load_permit = match &self.pool.load_permits {
            Some(permits) if !worker.holds(m) => permits.acquire().await.ok(),
            _ => None,
        };
        let reply = match (&tensors, staged.as_ref().map(|s| s.inputs())) {
            (Err(why), _) => Reply::Failed(format!("cannot join the batch's inputs: {why}")),
            (_, Some(Ok(inputs))) => {
                worker
                    .call_within(id, m as u32, inputs, &mut frame, timeout)
                    .await
            }
            (_, Some(Err(why))) => Reply::Failed(why),
            (Ok(_), None) => unreachable!("staged whenever the inputs joined"),
        };
        let done = Instant::now();
        drop(load_permit);
        if let Reply::Done(run) = &reply {
            self.record_cache(worker.info.pid, m, run.cold_load_ns, &run.evicted, done);
        }
        // Each worker's first run of each sample is checked against the expected outputs, before
        // the staged inputs go (the `shm` outputs are in their slot). A joined run's outputs
        // belong to several samples and are not checked.
        let mismatch = match (&reply, &staged, samples) {
            (Reply::Done(run), Some(s), [one]) => {
                self.check_outputs(worker.info.pid, m, *one, s, &run.outputs)
            }
            _ => None,
        };
        // A dead or hung worker is replaced; the run waits for that, then reports its failure.
        self.pool.after_reply(worker.info.id as usize, &reply).await;
        let outputs_inline = match (&reply, &staged) {
            (Reply::Done(run), Some(s)) => s.outputs_fell_back(&run.outputs),
            _ => false,
        };
        // Only now may the staged inputs go (a shared-memory slot back to the pool).
        drop(staged);
        self.frames.borrow_mut().push(frame);
        self.last_done.set(self.last_done.get().max(done));
        Ran {
            reply,
            began,
            done,
            copy,
            outputs_inline,
            mismatch,
        }
    }

    /// The outcome of one request of `ran` to model `m`: its latency runs from `intended`, its
    /// service time from `began`; `lag` is its send lag and `queue_wait` its wait in a batching
    /// queue. A first run also counts in the model's first runs.
    fn outcome(
        &self,
        m: usize,
        ran: &Ran,
        intended: Instant,
        began: Instant,
        lag: Duration,
        queue_wait: Option<Duration>,
    ) -> Outcome {
        let done = ran.done;
        match &ran.reply {
            Reply::Done(_) if ran.mismatch.is_some() => Outcome::Err {
                kind: "output_mismatch",
                message: ran.mismatch.clone().unwrap_or_default(),
                lag,
            },
            Reply::Done(run) if run.cold_load_ns.is_some() => Outcome::Cold {
                latency: done.saturating_duration_since(intended),
            },
            Reply::Done(run) if run.first => {
                self.first_runs.borrow_mut()[m].merge(&FirstRuns {
                    count: 1,
                    max_latency: done - began,
                    max_compute_ns: run.compute_ns,
                });
                Outcome::First
            }
            Reply::Done(run) => Outcome::Ok(
                Timing {
                    latency: done.saturating_duration_since(intended),
                    service: done - began,
                    lag,
                    compute_ns: run.compute_ns,
                },
                Staging {
                    copy: ran.copy,
                    outputs_inline: ran.outputs_inline,
                    queue_wait,
                },
            ),
            Reply::Failed(message) => Outcome::Err {
                kind: "runtime_error",
                message: message.clone(),
                lag,
            },
            Reply::Lost(message) => Outcome::Err {
                kind: "worker_lost",
                message: message.clone(),
                lag,
            },
            Reply::TimedOut(t) => Outcome::Err {
                kind: "timeout",
                message: format!("no answer within {t:?}"),
                lag,
            },
        }
    }

    /// On-demand placement: records what a reply says about worker `pid`'s model cache: the load
    /// a miss for model `m` waited for, and the models it evicted with their age (since the reply
    /// that loaded each in this point).
    fn record_cache(
        &self,
        pid: u32,
        m: usize,
        cold_load_ns: Option<u64>,
        evicted: &[u32],
        done: Instant,
    ) {
        let mut loaded = self.pool.loaded_at.borrow_mut();
        for &e in evicted {
            let age = loaded
                .remove(&(pid, e as usize))
                .map(|t| done.saturating_duration_since(t));
            self.with_window(done, |w| {
                let all = &mut w.all;
                all.evictions += 1;
                if let Some(age) = age {
                    all.evicted_age
                        .saturating_record((age.as_nanos() as u64).max(1));
                }
                if let Some(r) = w.models.get_mut(e as usize) {
                    r.evictions += 1;
                    if let Some(age) = age {
                        r.evicted_age
                            .saturating_record((age.as_nanos() as u64).max(1));
                    }
                }
            });
        }
        if let Some(ns) = cold_load_ns {
            loaded.insert((pid, m), done);
            self.with_window(done, |w| {
                w.models[m].miss_load.saturating_record(ns.max(1));
                w.all.miss_load.saturating_record(ns.max(1));
            });
        }
    }

    /// Checks a reply's outputs against sample `index`'s expected outputs, the first time worker
    /// `pid` answers that sample in this point; returns the mismatch. The comparison runs on this
    /// thread, but once per worker and sample, so mostly in warm-up.
    fn check_outputs(
        &self,
        pid: u32,
        m: usize,
        index: usize,
        staged: &crate::transfer::Staged<'_>,
        outputs: &crate::transfer::Outputs,
    ) -> Option<String> {
        let spec = &self.scenario.models[m];
        let want = spec.expected.get(index).filter(|w| !w.is_empty())?;
        if !self.pool.checked.borrow_mut().insert((pid, m, index)) {
            return None;
        }
        let names: Vec<String> = spec.outputs.iter().map(|o| o.name.clone()).collect();
        let result = match staged.outputs(outputs) {
            Ok(None) => return None,
            Ok(Some(got)) => {
                crate::testdata::compare(&got, &names, want, spec.check.rtol, spec.check.atol)
                    .map_err(|mm| format!("output `{}`: {}", mm.output, mm.message))
            }
            Err(why) => Err(why),
        };
        let mut checks = self.checks.borrow_mut();
        checks[m].checked += 1;
        let why = result.err()?;
        let message = format!(
            "model `{}` sample {index} (worker pid {pid}) {why}",
            spec.name
        );
        checks[m].mismatch.get_or_insert_with(|| message.clone());
        Some(message)
    }

    /// Sends one top-level request and records it; returns `false` if a worker was lost.
    async fn request(&self, target: Target, intended: Instant, hint: usize) -> bool {
        self.sent.set(self.sent.get() + 1);
        let (outcome, done) = match target {
            Target::Model(m) => {
                let (o, _, done) = self.call_model(m, intended, hint).await;
                (o, done)
            }
            Target::Group(g) => {
                let members = &self.scenario.workload.groups[g].members;
                let results = futures::future::join_all(
                    members
                        .iter()
                        .enumerate()
                        .map(|(i, &m)| self.call_model(m, intended, hint + i)),
                )
                .await;
                let done = Instant::now();
                let first_sent = results.iter().map(|(_, s, _)| *s).min().unwrap_or(intended);
                let lag = first_sent.saturating_duration_since(intended);
                let mut compute_ns = 0;
                // The members' copies run one after another on this thread.
                let mut staging = Staging::default();
                let mut err = None;
                let mut first = false;
                let mut cold = false;
                for (o, _, _) in results {
                    match o {
                        Outcome::Ok(t, s) => {
                            compute_ns = compute_ns.max(t.compute_ns);
                            staging.copy += s.copy;
                            staging.outputs_inline |= s.outputs_inline;
                        }
                        Outcome::First => first = true,
                        Outcome::Cold { .. } => cold = true,
                        Outcome::Err { kind, message, .. } => {
                            err.get_or_insert((kind, message));
                        }
                    }
                }
                let o = match (err, first) {
                    (Some((kind, message)), _) => Outcome::Err { kind, message, lag },
                    (None, _) if cold => Outcome::Cold {
                        latency: done.saturating_duration_since(intended),
                    },
                    (None, true) => Outcome::First,
                    (None, false) => Outcome::Ok(
                        Timing {
                            latency: done.saturating_duration_since(intended),
                            service: done - first_sent,
                            lag,
                            compute_ns,
                        },
                        staging,
                    ),
                };
                self.with_window(done, |w| record(&mut w.groups[g], &o));
                (o, done)
            }
        };
        self.with_window(done, |w| record(&mut w.all, &outcome));
        // Stop only when no worker is left to send to (a replacement failed to start).
        self.pool.any_alive()
    }

    fn finish(
        self,
        rule: PhaseRule,
        stable: Option<(bool, usize)>,
        overloaded: bool,
    ) -> PhaseResult {
        let windows = self.windows.into_inner();
        let (m, g) = (
            self.scenario.models.len(),
            self.scenario.workload.groups.len(),
        );
        let mut result = WindowRecord::new(m, g);
        let (span, count, stable_flag) = match (rule, stable) {
            (PhaseRule::Stable { window, .. }, Some((ok, ended))) => {
                // The three windows before the one in which the stop was decided.
                let lo = ended.saturating_sub(3);
                for w in windows.iter().take(ended).skip(lo) {
                    result.merge(w);
                }
                (window * (ended - lo) as u32, ended, Some(ok))
            }
            _ => {
                for w in &windows {
                    result.merge(w);
                }
                (
                    self.last_done.get().saturating_duration_since(self.start),
                    1,
                    None,
                )
            }
        };
        PhaseResult {
            result,
            span,
            windows: count,
            stable: stable_flag,
            overloaded,
            sent: self.sent.get(),
            first_runs: self.first_runs.into_inner(),
            checks: self.checks.into_inner(),
        }
    }
}

fn record(r: &mut Record, o: &Outcome) {
    r.attempts += 1;
    match o {
        Outcome::Ok(t, s) => {
            r.record_ok(*t);
            r.record_staging(*s);
        }
        Outcome::First => r.first_runs += 1,
        Outcome::Cold { latency } => r.record_cold(*latency),
        Outcome::Err { kind, message, lag } => r.record_error(kind, message, *lag),
    }
}

/// Whether the throughput and p99 latency of `windows` agree within `tolerance_pct`.
pub fn agree(windows: &[WindowRecord], window: Duration, tolerance_pct: f64) -> bool {
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

/// Draws what each request asks for, from the scenario's weighted mix.
struct Picker {
    targets: Vec<Target>,
    weights: WeightedIndex<f64>,
}

impl Picker {
    fn new(s: &Scenario) -> anyhow::Result<Picker> {
        let weights = WeightedIndex::new(s.workload.mix.iter().map(|(_, w)| *w))
            .map_err(|e| anyhow::anyhow!("invalid mix weights: {e}"))?;
        Ok(Picker {
            targets: s.workload.mix.iter().map(|(t, _)| *t).collect(),
            weights,
        })
    }
    fn pick(&self, rng: &mut ChaCha8Rng) -> Target {
        self.targets[self.weights.sample(rng)]
    }
}

/// Inter-arrival times of an open loop, in nanoseconds.
struct Arrivals<'a> {
    arrival: &'a Arrival,
    mean_ns: f64,
    exp: Option<Exp<f64>>,
    next_trace: usize,
}

impl<'a> Arrivals<'a> {
    fn new(arrival: &'a Arrival, rate: f64) -> Arrivals<'a> {
        let mean_ns = 1e9 / rate;
        Arrivals {
            arrival,
            mean_ns,
            exp: Exp::new(1.0 / mean_ns).ok(),
            next_trace: 0,
        }
    }
    fn next(&mut self, rng: &mut ChaCha8Rng) -> u64 {
        match self.arrival {
            Arrival::Constant => self.mean_ns as u64,
            Arrival::Poisson => self.exp.map_or(self.mean_ns, |e| e.sample(rng)) as u64,
            Arrival::Trace(t) => {
                let v = t[self.next_trace % t.len()];
                self.next_trace += 1;
                v
            }
        }
    }
}

/// Runs one phase of `load` against `pool`.
///
/// `seed` fixes the model choices and arrival times; `cancel` stops issuing new requests (those in
/// flight still complete).
pub async fn run_phase(
    pool: &Pool,
    scenario: &Scenario,
    sending: Sending,
    rule: PhaseRule,
    seed: u64,
    cancel: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<PhaseResult> {
    let picker = Picker::new(scenario)?;
    let window = match rule {
        PhaseRule::Stable { window, .. } => Some(window),
        PhaseRule::Fixed(_) => None,
    };
    let phase = Phase::new(pool, scenario, sending, window)?;
    let request_limit = match rule {
        PhaseRule::Fixed(Limit::Requests(n)) => Some(n),
        _ => None,
    };
    let may_send = |issued: u64| {
        !phase.stop.get() && !*cancel.borrow() && request_limit.is_none_or(|n| issued < n)
    };

    // Ends the phase on time, or when the stable rule is met or gives up.
    let stable_outcome = Cell::new(None);
    let monitor = async {
        match rule {
            PhaseRule::Fixed(Limit::Duration(d)) => {
                tokio::time::sleep_until((phase.start + d).into()).await
            }
            PhaseRule::Fixed(Limit::Requests(_)) => std::future::pending::<()>().await,
            PhaseRule::Stable {
                window,
                tolerance_pct,
                max_windows,
            } => {
                for k in 1..=max_windows {
                    tokio::time::sleep_until((phase.start + window * k as u32).into()).await;
                    if k >= 3 {
                        let windows = phase.windows.borrow();
                        let last: Vec<WindowRecord> = (k - 3..k)
                            .map(|i| {
                                windows
                                    .get(i)
                                    .cloned()
                                    .unwrap_or_else(|| WindowRecord::new(0, 0))
                            })
                            .collect();
                        if agree(&last, window, tolerance_pct) {
                            stable_outcome.set(Some((true, k)));
                            break;
                        }
                    }
                    if k == max_windows {
                        stable_outcome.set(Some((false, k)));
                    }
                }
            }
        }
        phase.stop.set(true);
    };

    let overloaded = Cell::new(false);
    match sending.load {
        LoadPoint::Closed { concurrency } => {
            let issued = Cell::new(0u64);
            let client = |c: usize| {
                let (phase, picker, issued, may_send) = (&phase, &picker, &issued, &may_send);
                async move {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    rng.set_stream(c as u64);
                    while may_send(issued.get()) {
                        issued.set(issued.get() + 1);
                        let target = picker.pick(&mut rng);
                        if !phase.request(target, Instant::now(), c).await {
                            break; // the worker is gone: stop rather than spin on a dead socket
                        }
                    }
                }
            };
            let clients = futures::future::join_all((0..concurrency).map(client));
            tokio::pin!(clients);
            tokio::select! {
                _ = &mut clients => {}
                _ = monitor => { clients.await; }
            }
        }
        LoadPoint::Open { rate } => {
            let max_in_flight = scenario.load.max_in_flight;
            let mut arrivals = Arrivals::new(&scenario.load.arrival, rate);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut timer = PreciseTimer::new()?;
            let mut in_flight = FuturesUnordered::new();
            let mut issued = 0u64;
            let mut next_ns: u64 = 0;
            let deadline = match rule {
                PhaseRule::Fixed(Limit::Duration(d)) => Some(phase.start + d),
                _ => None,
            };
            let spin = scenario.load.spin;
            // With a fixed duration the schedule itself ends at the deadline. The monitor's stop,
            // which can fire first after a stall, must not drop sends that were due before it:
            // they are the ones that waited longest.
            let may_send = |issued: u64| {
                if deadline.is_some() {
                    !*cancel.borrow()
                } else {
                    may_send(issued)
                }
            };
            let schedule = async {
                loop {
                    let next = phase.start + Duration::from_nanos(next_ns);
                    if !may_send(issued) || deadline.is_some_and(|d| next >= d) {
                        break;
                    }
                    let now = Instant::now();
                    if now >= next {
                        let mut intended = next;
                        while intended <= now
                            && may_send(issued)
                            && deadline.is_none_or(|d| intended < d)
                        {
                            issued += 1;
                            in_flight.push(phase.request(
                                picker.pick(&mut rng),
                                intended,
                                issued as usize,
                            ));
                            next_ns += arrivals.next(&mut rng);
                            intended = phase.start + Duration::from_nanos(next_ns);
                        }
                        if in_flight.len() > max_in_flight {
                            overloaded.set(true);
                            break;
                        }
                    } else if next - now <= spin {
                        // The last `spin` before a send: busy-wait instead of sleeping, since a
                        // halted vCPU can wake milliseconds late. Yielding lets the runtime poll
                        // the workers' sockets, so replies keep being timed while it spins.
                        tokio::select! {
                            biased;
                            Some(_) = in_flight.next(), if !in_flight.is_empty() => {}
                            _ = tokio::task::yield_now() => {}
                        }
                    } else {
                        timer.arm(next - spin)?;
                        tokio::select! {
                            biased;
                            r = timer.fired() => r?,
                            Some(_) = in_flight.next(), if !in_flight.is_empty() => {}
                        }
                    }
                }
                while in_flight.next().await.is_some() {}
                anyhow::Ok(())
            };
            tokio::pin!(schedule);
            tokio::select! {
                r = &mut schedule => r?,
                _ = monitor => schedule.await?,
            }
        }
    }
    let stable = stable_outcome.get();
    Ok(phase.finish(rule, stable, overloaded.get()))
}
