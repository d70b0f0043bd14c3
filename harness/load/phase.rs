//! One phase's shared state and what one request does: pick a worker, stage the inputs, send,
//! wait for the reply, turn it into an outcome and record it in its window. A request to a model
//! may wait in a dynamic-batching queue first; a request to a group fans out to its members.
//!
//! It lives apart from the loops that issue the requests (`loops.rs`): those decide *when* a
//! request goes; this file decides what sending one means and how it is counted, the same for
//! both loops.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use crate::load::batcher::{Batcher, Joined};
use crate::metrics::{Record, Staging, Timing};
use crate::pool::transfer::Stager;
use crate::pool::worker::pool::{Pool, Reply};
use crate::scenario::{Scenario, Target};

use super::{FirstRuns, OutputChecks, PhaseResult, PhaseRule, Sending, Stopped, WindowRecord};

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
pub(super) struct Phase<'a> {
    pool: &'a Pool,
    scenario: &'a Scenario,
    /// Puts each request's inputs on the wire the point's transfer mode's way.
    stager: Stager<'a>,
    pub(super) start: Instant,
    window: Option<Duration>,
    pub(super) windows: RefCell<Vec<WindowRecord>>,
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
    pub(super) stop: Cell<bool>,
    /// What ended the phase, set by whoever decided it (the monitor or the open loop's schedule);
    /// `None`: its rule's plain end.
    pub(super) ended: Cell<Option<Stopped>>,
}

impl<'a> Phase<'a> {
    pub(super) fn new(
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
            ended: Cell::new(None),
        })
    }

    /// Whether a measurement running on past its duration has what it runs on for: `samples`
    /// top-level successes (the minimum its stop rule counts), or a failed top-level request, which
    /// makes the point invalid whatever else it measures (a model that fails every request would
    /// otherwise run to the cap).
    pub(super) fn has_enough(&self, samples: u64) -> bool {
        let windows = self.windows.borrow();
        windows.iter().any(|w| w.all.error_count() > 0)
            || windows.iter().map(|w| w.all.ok()).sum::<u64>() >= samples
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
        let tensors: Result<std::borrow::Cow<'_, [crate::model::tensor::TensorData]>, String> =
            match samples {
                [one] => Ok(std::borrow::Cow::Borrowed(&spec.samples[*one])),
                _ if self.stager.joins_in_parent() => {
                    let parts: Vec<&[crate::model::tensor::TensorData]> =
                        samples.iter().map(|&k| &spec.samples[k][..]).collect();
                    crate::pool::transfer::join_samples(&parts, axes).map(std::borrow::Cow::Owned)
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
        staged: &crate::pool::transfer::Staged<'_>,
        outputs: &crate::pool::transfer::Outputs,
    ) -> Option<String> {
        let spec = &self.scenario.models[m];
        let want = spec.expected.get(index).filter(|w| !w.is_empty())?;
        if !self.pool.checked.borrow_mut().insert((pid, m, index)) {
            return None;
        }
        let names: Vec<String> = spec.outputs.iter().map(|o| o.name.clone()).collect();
        let result = match staged.outputs(outputs) {
            Ok(None) => return None,
            Ok(Some(got)) => crate::model::testdata::compare(
                &got,
                &names,
                want,
                spec.check.rtol,
                spec.check.atol,
            )
            .map_err(|mm| format!("output `{}`: {}", mm.output, mm.message)),
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
    pub(super) async fn request(&self, target: Target, intended: Instant, hint: usize) -> bool {
        self.sent.set(self.sent.get() + 1);
        let (outcome, done) = match target {
            Target::Model(m) => {
                let (o, _, done) = self.call_model(m, intended, hint).await;
                (o, done)
            }
            Target::Group(g) => self.call_group(g, intended, hint).await,
        };
        self.with_window(done, |w| record(&mut w.all, &outcome));
        // Stop only when no worker is left to send to (a replacement failed to start).
        self.pool.any_alive()
    }

    /// Calls every member of group `g` at once and records the ensemble's outcome in the group's
    /// record; it completes with the last member's reply. Returns the outcome and that time.
    async fn call_group(&self, g: usize, intended: Instant, hint: usize) -> (Outcome, Instant) {
        let members = &self.scenario.workload.groups[g].members;
        let results = futures::future::join_all(
            members
                .iter()
                .enumerate()
                .map(|(i, &m)| self.call_model(m, intended, hint + i)),
        )
        .await;
        let done = Instant::now();
        let o = ensemble(results, intended, done);
        self.with_window(done, |w| record(&mut w.groups[g], &o));
        (o, done)
    }

    pub(super) fn finish(
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
        let stopped = match (rule, self.ended.get(), stable_flag) {
            _ if overloaded => Stopped::MaxInFlight,
            // The requests in flight at the cap can still bring the count to the minimum.
            (PhaseRule::Enough { samples, .. }, Some(Stopped::MaxDuration), _)
                if result.all.ok() >= samples =>
            {
                Stopped::MinRequests
            }
            (_, Some(s), _) => s,
            (PhaseRule::Fixed(crate::scenario::Limit::Requests(_)), None, _) => Stopped::Requests,
            (_, None, Some(true)) => Stopped::Stable,
            (_, None, Some(false)) => Stopped::MaxWindows,
            (_, None, None) => Stopped::Duration,
        };
        PhaseResult {
            result,
            span,
            windows: count,
            stable: stable_flag,
            overloaded,
            stopped,
            sent: self.sent.get(),
            first_runs: self.first_runs.into_inner(),
            checks: self.checks.into_inner(),
        }
    }
}

/// An ensemble request's outcome from its members' (`done` is when the last one answered): the
/// first member's error, else a cold start if any member had one, else a first run if any member's
/// was, else the ensemble's timing: sent with its first member, its compute the longest member's.
fn ensemble(results: Vec<Called>, intended: Instant, done: Instant) -> Outcome {
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
    match (err, first) {
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
