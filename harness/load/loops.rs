//! How a phase issues its requests, and when it ends: the closed loop's clients, the open loop's
//! schedule, and the monitor of the stop rule. [`Phase`] says what one request does; this file
//! says when each goes.
//!
//! - **Closed loop**: `concurrency` clients, each sending its next request when the previous one
//!   is answered.
//! - **Open loop**: one scheduler that sends each request at its intended time, whatever is in
//!   flight, woken by a `timerfd` and, for the last `[load] spin` before a send, busy-waiting.

use std::cell::Cell;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rand::SeedableRng;
use rand::distr::{Distribution, weighted::WeightedIndex};
use rand_chacha::ChaCha8Rng;
use rand_distr::Exp;

use crate::load::timer::PreciseTimer;
use crate::scenario::{Arrival, Limit, Scenario, Target};

use super::phase::Phase;
use super::{PhaseRule, Stopped, WindowRecord, agree};

/// Draws what each request asks for, from the scenario's weighted mix.
pub(super) struct Picker {
    targets: Vec<Target>,
    weights: WeightedIndex<f64>,
}

impl Picker {
    pub(super) fn new(s: &Scenario) -> anyhow::Result<Picker> {
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

/// How often a measurement past its duration looks whether it has its minimum: a few
/// milliseconds more than needed, against the tens of milliseconds of the requests it waits for.
const ENOUGH_POLL: Duration = Duration::from_millis(5);

/// Ends the phase (sets its `stop`) on time, once a measurement past its duration has its
/// minimum (or a failed request, which makes the point invalid whatever it measures) or reaches
/// its cap, or when the stable rule is met or gives up; then `stable` holds whether it was met
/// and the window in which that was decided. An open loop's schedule ends a
/// timed phase itself (`open` true): the monitor then waits for nothing but the stable rule.
pub(super) async fn stop_when_due(
    phase: &Phase<'_>,
    rule: PhaseRule,
    open: bool,
    stable: &Cell<Option<(bool, usize)>>,
) {
    match rule {
        PhaseRule::Fixed(Limit::Requests(_)) => std::future::pending::<()>().await,
        PhaseRule::Fixed(Limit::Duration(_)) | PhaseRule::Enough { .. } if open => {
            std::future::pending::<()>().await
        }
        PhaseRule::Fixed(Limit::Duration(d)) => {
            tokio::time::sleep_until((phase.start + d).into()).await
        }
        PhaseRule::Enough {
            duration,
            samples,
            cap,
        } => {
            tokio::time::sleep_until((phase.start + duration).into()).await;
            let cap = phase.start + cap;
            let mut extended = false;
            loop {
                if phase.has_enough(samples) {
                    phase.ended.set(Some(if extended {
                        Stopped::MinRequests
                    } else {
                        Stopped::Duration
                    }));
                    break;
                }
                let now = Instant::now();
                if now >= cap {
                    phase.ended.set(Some(Stopped::MaxDuration));
                    break;
                }
                extended = true;
                tokio::time::sleep_until((now + ENOUGH_POLL).min(cap).into()).await;
            }
        }
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
                        stable.set(Some((true, k)));
                        break;
                    }
                }
                if k == max_windows {
                    stable.set(Some((false, k)));
                }
            }
        }
    }
    phase.stop.set(true);
}

/// Where an open loop's schedule ends by itself: at a fixed time, or past a duration once its
/// successes reach a minimum (or at the cap); the other rules end it through the monitor's `stop`.
#[derive(Clone, Copy)]
enum ScheduleEnd {
    At(Instant),
    Enough {
        at: Instant,
        samples: u64,
        cap: Instant,
    },
}

impl ScheduleEnd {
    fn of(rule: PhaseRule, start: Instant) -> Option<ScheduleEnd> {
        match rule {
            PhaseRule::Fixed(Limit::Duration(d)) => Some(ScheduleEnd::At(start + d)),
            PhaseRule::Enough {
                duration,
                samples,
                cap,
            } => Some(ScheduleEnd::Enough {
                at: start + duration,
                samples,
                cap: start + cap,
            }),
            _ => None,
        }
    }

    /// Whether a send intended at `intended` is past the end; records in the phase why it ended.
    /// Only answered requests count toward the minimum: one in flight may still fail or be a
    /// worker's first run, and the schedule cannot take back the sends it skipped. The overshoot is
    /// the requests in flight when the minimum is met, `rate × latency`: one or two for the slow
    /// models that run on at all.
    fn due(self, phase: &Phase<'_>, intended: Instant) -> bool {
        let ended = match self {
            ScheduleEnd::At(at) => (intended >= at).then_some(Stopped::Duration),
            ScheduleEnd::Enough { at, samples, cap } => {
                if intended < at {
                    None
                } else if phase.has_enough(samples) {
                    // A send went past the duration (marked below): it ran on for the minimum.
                    Some(if phase.ended.get().is_some() {
                        Stopped::MinRequests
                    } else {
                        Stopped::Duration
                    })
                } else if intended >= cap {
                    Some(Stopped::MaxDuration)
                } else {
                    // A send due now goes past the duration: mark the run as running on (the
                    // decision at its end replaces the mark). A later send only waits.
                    if intended <= Instant::now() {
                        phase.ended.set(Some(Stopped::MinRequests));
                    }
                    None
                }
            }
        };
        if let Some(e) = ended {
            phase.ended.set(Some(e));
        }
        ended.is_some()
    }
}

/// What both loops of one phase share: the phase, the weighted mix, the seed and the rules that
/// stop issuing.
pub(super) struct Issuer<'p, 'a> {
    pub(super) phase: &'p Phase<'a>,
    pub(super) picker: Picker,
    pub(super) seed: u64,
    pub(super) rule: PhaseRule,
    /// Stops issuing new requests; those in flight still complete.
    pub(super) cancel: &'p tokio::sync::watch::Receiver<bool>,
}

impl Issuer<'_, '_> {
    /// Whether another request may go after `issued` of them: not stopped, not cancelled, and
    /// under a fixed request count.
    fn may_send(&self, issued: u64) -> bool {
        let limit = match self.rule {
            PhaseRule::Fixed(Limit::Requests(n)) => Some(n),
            _ => None,
        };
        !self.phase.stop.get() && !*self.cancel.borrow() && limit.is_none_or(|n| issued < n)
    }

    /// The closed loop: `concurrency` clients, each with its own stream of the seed's random
    /// choices, until `monitor` ends the phase (the requests in flight then complete) or the
    /// request count is reached.
    pub(super) async fn closed(&self, concurrency: usize, monitor: impl Future<Output = ()>) {
        let issued = Cell::new(0u64);
        let client = |c: usize| {
            let issued = &issued;
            async move {
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                rng.set_stream(c as u64);
                while self.may_send(issued.get()) {
                    issued.set(issued.get() + 1);
                    let target: Target = self.picker.pick(&mut rng);
                    if !self.phase.request(target, Instant::now(), c).await {
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

    /// The open loop at `rate` requests per second, until its schedule ends or `monitor` ends the
    /// phase; every request in flight completes before it returns. Returns whether it stopped
    /// early because more than `[load] max_in_flight` requests were in flight (overloaded).
    pub(super) async fn open(
        &self,
        scenario: &Scenario,
        rate: f64,
        monitor: impl Future<Output = ()>,
    ) -> anyhow::Result<bool> {
        let overloaded = Cell::new(false);
        let schedule = self.schedule(scenario, rate, &overloaded);
        tokio::pin!(schedule);
        tokio::select! {
            r = &mut schedule => r?,
            _ = monitor => schedule.await?,
        }
        Ok(overloaded.get())
    }

    /// Sends each request at its intended time from the arrival process, never waiting for a
    /// reply, then waits for those in flight.
    async fn schedule(
        &self,
        scenario: &Scenario,
        rate: f64,
        overloaded: &Cell<bool>,
    ) -> anyhow::Result<()> {
        let phase = self.phase;
        let max_in_flight = scenario.load.max_in_flight;
        let mut arrivals = Arrivals::new(&scenario.load.arrival, rate);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut timer = PreciseTimer::new()?;
        let mut in_flight = FuturesUnordered::new();
        let mut issued = 0u64;
        let mut next_ns: u64 = 0;
        let end = ScheduleEnd::of(self.rule, phase.start);
        let spin = scenario.load.spin;
        // With a timed end the schedule itself ends the phase. The monitor's stop, which can fire
        // first after a stall, must not drop sends that were due before it: they are the ones that
        // waited longest.
        let may_send = |issued: u64| {
            if end.is_some() {
                !*self.cancel.borrow()
            } else {
                self.may_send(issued)
            }
        };
        loop {
            let next = phase.start + Duration::from_nanos(next_ns);
            if !may_send(issued) || end.is_some_and(|e| e.due(phase, next)) {
                break;
            }
            let now = Instant::now();
            if now >= next {
                let mut intended = next;
                while intended <= now
                    && may_send(issued)
                    && !end.is_some_and(|e| e.due(phase, intended))
                {
                    issued += 1;
                    in_flight.push(phase.request(
                        self.picker.pick(&mut rng),
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
                // The last `spin` before a send: busy-wait instead of sleeping, since a halted
                // vCPU can wake milliseconds late. Yielding lets the runtime poll the workers'
                // sockets, so replies keep being timed while it spins.
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
        Ok(())
    }
}
