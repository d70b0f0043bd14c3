//! Measurements: HdrHistograms of integer nanoseconds, and the summaries drawn from them.
//!
//! Every request is timed four ways, each in its own histogram:
//! - `latency`: from the intended send time to the reply. In an open loop the intended time comes
//!   from the arrival schedule, so a late send or a stalled worker shows up here: no coordinated
//!   omission. In a closed loop the intended time is the actual send time.
//! - `service`: from the actual send to the reply (queueing in the socket and worker included).
//! - `lag`: from the intended to the actual send: how far the generator fell behind its schedule.
//! - `compute`: the worker's time inside the runtime's run call.
//!
//! Beside them, `stage`: the parent's copy of a request's inputs before the send (into a
//! shared-memory slot for `shm`). It is transfer cost, so it counts in service time and not in send
//! lag: the send is taken to begin when the copy does.
//!
//! `latency - compute` is what the harness and queueing add.
//!
//! And what a point costs in CPU: the CPU clocks of the parent and of each worker process, read
//! around each timed trial ([`CpuReading`], [`CpuSpent`]).

pub mod gpu;

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::scenario::slo::Measured;

/// Significant digits kept by every histogram (0.1% resolution).
pub(crate) const SIGFIG: u8 = 3;
/// The largest value a histogram tracks: one hour in nanoseconds. Larger values are recorded as this.
pub(crate) const MAX_NS: u64 = 3_600_000_000_000;
/// A send later than this after its intended time counts as lagged.
pub(crate) const LAG_LIMIT: Duration = Duration::from_millis(1);

/// A histogram of nanoseconds from 1 ns to one hour. Fixed bounds, so histograms from different
/// points, runs or machines always merge.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, SIGFIG).expect("valid histogram bounds")
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The times of one successful request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub latency: Duration,
    pub service: Duration,
    pub lag: Duration,
    pub compute_ns: u64,
}

/// How the parent staged one successful request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Staging {
    /// The parent's copy of the inputs before the send (zero when nothing is copied then).
    pub(crate) copy: Duration,
    /// The outputs came back inline because they outgrew their shared-memory room.
    pub(crate) outputs_inline: bool,
    /// Dynamic batching: how long the request waited in its model's queue for its batch to leave.
    pub(crate) queue_wait: Option<Duration>,
}

/// What one model, group or the whole point saw.
#[derive(Debug, Clone)]
pub struct Record {
    pub(crate) latency: Histogram<u64>,
    pub(crate) service: Histogram<u64>,
    pub(crate) lag: Histogram<u64>,
    pub(crate) compute: Histogram<u64>,
    /// Service time minus compute, per request: the transport to and from the worker plus the time
    /// spent queued behind other requests.
    pub(crate) overhead: Histogram<u64>,
    /// Cold starts (on-demand placement): latency of the requests that had to load their model
    /// first. Never mixed into `latency`.
    pub(crate) cold: Histogram<u64>,
    /// The parent's input copies ([`Staging::copy`]) of successful requests that had one.
    pub(crate) stage: Histogram<u64>,
    /// On-demand placement, the model cache: the load each miss waited for in its worker (the
    /// delay a miss adds).
    pub(crate) miss_load: Histogram<u64>,
    /// On-demand placement: models evicted (on the evicted model's record and `all`), and each one's
    /// age at eviction, from the reply that loaded it to the reply that said it was evicted, as the
    /// parent saw them (a model loaded before the point's first phase has no age).
    pub(crate) evictions: u64,
    pub(crate) evicted_age: Histogram<u64>,
    /// Successful `shm` requests whose outputs outgrew their slot and came back inline.
    pub(crate) outputs_inline: u64,
    /// Dynamic batching: each successful request's wait in its model's queue ([`Staging`]).
    pub(crate) queue_wait: Histogram<u64>,
    /// Dynamic batching: the size of each run sent, one value per run (a request count, not ns).
    pub(crate) batch_sizes: Histogram<u64>,
    /// Sends that lagged more than [`LAG_LIMIT`] (failed requests included).
    pub(crate) lagged: u64,
    /// Every request recorded: successes, failures, first runs and cold starts.
    pub(crate) attempts: u64,
    /// First runs of a session in a worker (top-level: an ensemble request counts once), kept out
    /// of every histogram.
    pub(crate) first_runs: u64,
    /// Failed requests by kind (`runtime_error`, `worker_lost`).
    pub(crate) errors: BTreeMap<String, u64>,
    /// The first error message of each kind, for the console.
    pub(crate) first_error: BTreeMap<String, String>,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            latency: new_histogram(),
            service: new_histogram(),
            lag: new_histogram(),
            compute: new_histogram(),
            overhead: new_histogram(),
            cold: new_histogram(),
            stage: new_histogram(),
            miss_load: new_histogram(),
            evictions: 0,
            evicted_age: new_histogram(),
            outputs_inline: 0,
            queue_wait: new_histogram(),
            batch_sizes: new_histogram(),
            lagged: 0,
            attempts: 0,
            first_runs: 0,
            errors: BTreeMap::new(),
            first_error: BTreeMap::new(),
        }
    }
}

impl Record {
    pub fn record_ok(&mut self, t: Timing) {
        self.latency.saturating_record(ns(t.latency).max(1));
        self.service.saturating_record(ns(t.service).max(1));
        self.lag.saturating_record(ns(t.lag).max(1));
        self.compute.saturating_record(t.compute_ns.max(1));
        self.overhead
            .saturating_record(ns(t.service).saturating_sub(t.compute_ns).max(1));
        if t.lag > LAG_LIMIT {
            self.lagged += 1;
        }
    }

    /// How a successful request was staged; record it with [`Record::record_ok`].
    pub(crate) fn record_staging(&mut self, s: Staging) {
        if !s.copy.is_zero() {
            self.stage.saturating_record(ns(s.copy).max(1));
        }
        self.outputs_inline += u64::from(s.outputs_inline);
        if let Some(w) = s.queue_wait {
            self.queue_wait.saturating_record(ns(w).max(1));
        }
    }

    /// Dynamic batching: one run of `size` requests went to a worker.
    pub(crate) fn record_run(&mut self, size: usize) {
        self.batch_sizes.saturating_record(size.max(1) as u64);
    }

    pub(crate) fn record_cold(&mut self, latency: Duration) {
        self.cold.saturating_record(ns(latency).max(1));
    }

    pub(crate) fn record_error(&mut self, kind: &str, message: &str, lag: Duration) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
        self.first_error
            .entry(kind.to_string())
            .or_insert_with(|| message.to_string());
        if lag > LAG_LIMIT {
            self.lagged += 1;
        }
    }

    /// Successful requests.
    pub(crate) fn ok(&self) -> u64 {
        self.latency.len()
    }

    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Successful and failed requests.
    pub(crate) fn sent(&self) -> u64 {
        self.ok() + self.error_count()
    }

    pub(crate) fn merge(&mut self, other: &Record) {
        for (a, b) in [
            (&mut self.latency, &other.latency),
            (&mut self.service, &other.service),
            (&mut self.lag, &other.lag),
            (&mut self.compute, &other.compute),
            (&mut self.overhead, &other.overhead),
            (&mut self.cold, &other.cold),
            (&mut self.stage, &other.stage),
            (&mut self.queue_wait, &other.queue_wait),
            (&mut self.batch_sizes, &other.batch_sizes),
            (&mut self.miss_load, &other.miss_load),
            (&mut self.evicted_age, &other.evicted_age),
        ] {
            a.add(b).expect("histograms with equal bounds merge");
        }
        self.evictions += other.evictions;
        self.lagged += other.lagged;
        self.outputs_inline += other.outputs_inline;
        self.attempts += other.attempts;
        self.first_runs += other.first_runs;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.first_error {
            self.first_error
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
    }
}

/// Percentiles of a histogram, in microseconds (fractional: the histograms hold nanoseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub(crate) p90: f64,
    pub(crate) p95: f64,
    pub p99: f64,
    pub(crate) p999: f64,
    pub max: f64,
    pub(crate) mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p95: us(h.value_at_quantile(0.95)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: h.mean() / 1000.0,
        }
    }

    /// The median of each field across `v` (one per trial); zeros for none. The fields' medians
    /// may come from different trials.
    pub(crate) fn median(v: &[Percentiles]) -> Percentiles {
        let m = |f: fn(&Percentiles) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
        Percentiles {
            p50: m(|p| p.p50),
            p90: m(|p| p.p90),
            p95: m(|p| p.p95),
            p99: m(|p| p.p99),
            p999: m(|p| p.p999),
            max: m(|p| p.max),
            mean: m(|p| p.mean),
        }
    }

    /// The latency fields of `m` set to these values.
    pub(crate) fn into_measured(self, m: Measured) -> Measured {
        Measured {
            p50_us: self.p50,
            p90_us: self.p90,
            p95_us: self.p95,
            p99_us: self.p99,
            p999_us: self.p999,
            max_us: self.max,
            mean_us: self.mean,
            ..m
        }
    }

    /// Each field paired with the quantile it stands for (`max` as 1), in rising order, `mean`
    /// left out.
    fn quantiles(&self) -> [(f64, f64); 6] {
        [
            (0.50, self.p50),
            (0.90, self.p90),
            (0.95, self.p95),
            (0.99, self.p99),
            (0.999, self.p999),
            (1.0, self.max),
        ]
    }

    /// Each field with `other`'s where that is larger.
    fn max_with(self, other: Percentiles) -> Percentiles {
        Percentiles {
            p50: self.p50.max(other.p50),
            p90: self.p90.max(other.p90),
            p95: self.p95.max(other.p95),
            p99: self.p99.max(other.p99),
            p999: self.p999.max(other.p999),
            max: self.max.max(other.max),
            mean: self.mean.max(other.mean),
        }
    }
}

/// The latency an SLO checks, cold starts counted: `steady` (the `latency_*` columns: the median
/// across trials, cold starts left out), or where it is larger, the same statistic over every
/// measured request (`latency`, all trials added) together with every cold start (`cold`, warm-up
/// included). Cold starts can only make a point slower, never faster. Without cold starts this is
/// `steady`; `None` when the histograms cannot be added (one read from a foreign log).
pub(crate) fn with_cold_starts(
    steady: Percentiles,
    latency: &Histogram<u64>,
    cold: &Histogram<u64>,
) -> Option<Percentiles> {
    if cold.is_empty() {
        return Some(steady);
    }
    let mut all = new_histogram();
    all.add(latency).ok()?;
    all.add(cold).ok()?;
    Some(steady.max_with(Percentiles::of(&all)))
}

/// [`with_cold_starts`] where only a row's numbers are at hand (no histogram log): `requests`
/// measured requests with the `steady` percentiles, and `cold` cold starts, each taken to be as slow
/// as the slowest (`cold_max_us`) and slower than every other request. A percentile whose rank falls
/// among the cold starts is then `cold_max_us`; one whose rank stays among the measured requests
/// moves up to the quantile the cold starts push it to, read from the next `steady` field at or
/// above it (p99 of 10,000 requests with 7 cold starts: quantile 0.9907, read from p99.9). The mean
/// adds the cold starts at `cold_max_us`. Never below `steady`.
pub(crate) fn with_cold_starts_bound(
    steady: Percentiles,
    requests: u64,
    cold: u64,
    cold_max_us: f64,
) -> Percentiles {
    if cold == 0 {
        return steady;
    }
    let (n, total) = (requests as f64, (requests + cold) as f64);
    let at = |q: f64| {
        let rank = (q * total).ceil();
        if rank > n {
            return cold_max_us;
        }
        let q = rank / n;
        steady
            .quantiles()
            .iter()
            .find(|(at, _)| *at >= q - 1e-12)
            .map_or(steady.max, |(_, v)| *v)
    };
    steady.max_with(Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p95: at(0.95),
        p99: at(0.99),
        p999: at(0.999),
        max: cold_max_us,
        mean: (n * steady.mean + cold as f64 * cold_max_us) / total,
    })
}

/// The numbers reported for one record over one measured span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Summary {
    /// Every request sent: successes, failures, first runs and cold starts.
    pub(crate) sent: u64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) throughput_rps: f64,
    pub(crate) latency: Percentiles,
    pub(crate) service: Percentiles,
    pub(crate) lag: Percentiles,
    pub(crate) compute: Percentiles,
    pub(crate) overhead: Percentiles,
    /// The parent's input copies (see [`Staging`]).
    pub(crate) stage: Percentiles,
    /// Requests whose `shm` outputs came back inline.
    pub(crate) outputs_inline: u64,
    /// 10th percentile of the overhead, µs: close to the bare transport cost whenever the queue is
    /// often empty.
    pub(crate) overhead_p10: f64,
    /// Percent of sends that lagged more than [`LAG_LIMIT`].
    pub(crate) lagged_pct: f64,
    /// Dynamic batching: each request's wait in its model's queue.
    pub(crate) queue_wait: Percentiles,
    /// Dynamic batching: requests per run sent (mean, p50, max); zero without batching.
    pub(crate) batch_size_mean: f64,
    pub(crate) batch_size_p50: f64,
    pub(crate) batch_size_max: f64,
    /// Dynamic batching: runs sent per second (each carrying a batch of requests).
    pub(crate) runs_per_s: f64,
}

/// The highest total resident memory of a set of processes, sampled on its own thread: a point's
/// memory peak with every worker counted at the same moment (two workers loading models at the
/// same time show here, where each worker's own peak would not).
pub(crate) struct RssPeak {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Option<u64>>,
}

impl RssPeak {
    /// Samples the resident memory of `pids` (`/proc/PID/statm`) every `every`, from now until
    /// [`RssPeak::stop`].
    pub(crate) fn start(pids: Vec<u32>, every: Duration) -> RssPeak {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = None;
            loop {
                let now: Option<u64> = pids.iter().map(|&p| rss_of(p)).sum();
                peak = peak.max(now);
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    return peak;
                }
                std::thread::sleep(every);
            }
        });
        RssPeak { stop, thread }
    }

    /// Stops sampling (after one last sample) and returns the peak, bytes; `None` when no sample
    /// could read every process.
    pub(crate) fn stop(self) -> Option<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().ok().flatten()
    }
}

/// The resident memory of process `pid`, bytes (`/proc/PID/statm`).
fn rss_of(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// The machine's CPU time so far, from `/proc/stat`: ticks stolen by the hypervisor, and all ticks,
/// over every CPU. `None` where the kernel does not report stolen time.
pub(crate) fn cpu_ticks() -> Option<(u64, u64)> {
    use procfs::CurrentSI;
    let t = procfs::KernelStats::current().ok()?.total;
    let steal = t.steal?;
    let total = t.user
        + t.nice
        + t.system
        + t.idle
        + t.iowait.unwrap_or(0)
        + t.irq.unwrap_or(0)
        + t.softirq.unwrap_or(0)
        + steal;
    Some((steal, total))
}

/// The percent of CPU time stolen between two [`cpu_ticks`] readings; `None` if no time passed.
pub(crate) fn steal_pct(before: (u64, u64), after: (u64, u64)) -> Option<f64> {
    let total = after.1.checked_sub(before.1).filter(|t| *t > 0)?;
    Some(100.0 * after.0.saturating_sub(before.0) as f64 / total as f64)
}

/// The CPU time this process has used so far, every thread of it (`CLOCK_PROCESS_CPUTIME_ID`,
/// user and system, ns precision).
pub(crate) fn own_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant every Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    duration_of(ts)
}

/// The CPU time process `pid` has used so far, every thread of it, user and system: its CPU clock
/// (`clock_getcpuclockid`, ns precision), else `utime + stime` of `/proc/PID/stat` (clock ticks,
/// 10 ms). `None` when the process is gone or cannot be read, and for a pid no process can have.
pub(crate) fn cpu_time_of(pid: u32) -> Option<Duration> {
    // The kernel encodes a pid's clock as `!pid << 3` in a 32-bit clock id: a pid above Linux's
    // largest (`PID_MAX_LIMIT`, 2^22) wraps to another clock (`i32::MAX` gives this process's own),
    // and 0 means the caller.
    if pid == 0 || pid > 1 << 22 {
        return None;
    }
    let pid_t = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid, writable clockid_t; a pid that does not exist is an error code.
    let rc = unsafe { libc::clock_getcpuclockid(pid_t, &mut clock) };
    if rc == 0 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; `clock` came from clock_getcpuclockid (a
        // process that exited since makes this fail, not misbehave).
        if unsafe { libc::clock_gettime(clock, &mut ts) } == 0 {
            return Some(duration_of(ts));
        }
    }
    stat_cpu_time(pid)
}

fn duration_of(ts: libc::timespec) -> Duration {
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// `utime + stime` of `/proc/PID/stat`, converted from clock ticks.
fn stat_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = stat_ticks(&stat)?;
    // SAFETY: sysconf only reads a system constant.
    let per_s = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|t| *t > 0)?;
    Some(Duration::from_nanos(
        u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(per_s)).ok()?,
    ))
}

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces and parentheses itself, so fields are counted after the last `)`.
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is the first, so utime (14) is the 12th.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The CPU time of this process (the parent: load generator, samplers) and of a set of others (a
/// point's workers) at one moment: one end of a span measured with [`CpuReading::until`].
#[derive(Debug, Clone)]
pub(crate) struct CpuReading {
    at: std::time::Instant,
    own: Duration,
    /// Each other process's pid and CPU time (`None`: it could not be read).
    others: Vec<(u32, Option<Duration>)>,
}

impl CpuReading {
    /// Reads the CPU time of this process and of `pids` now.
    pub(crate) fn now(pids: &[u32]) -> CpuReading {
        CpuReading {
            at: std::time::Instant::now(),
            own: own_cpu_time(),
            others: pids.iter().map(|&p| (p, cpu_time_of(p))).collect(),
        }
    }

    /// The CPU time used from this reading to `later`. The others' is known only when `later`
    /// read the same processes and every one of them both times: a process replaced in between
    /// (another pid), or gone, leaves it unknown rather than counting part of the work.
    pub(crate) fn until(&self, later: &CpuReading) -> CpuSpent {
        let same = self.others.len() == later.others.len()
            && self
                .others
                .iter()
                .zip(&later.others)
                .all(|(a, b)| a.0 == b.0);
        let others = same
            .then(|| {
                self.others
                    .iter()
                    .zip(&later.others)
                    .map(|(a, b)| Some(b.1?.saturating_sub(a.1?)))
                    .sum::<Option<Duration>>()
            })
            .flatten();
        CpuSpent {
            wall: later.at.saturating_duration_since(self.at),
            own: later.own.saturating_sub(self.own),
            others,
        }
    }
}

/// CPU time used over a span (or several, added up), and the span's wall time.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct CpuSpent {
    pub(crate) wall: Duration,
    /// This process's.
    pub(crate) own: Duration,
    /// The other processes' together; `None` when some could not be counted.
    pub(crate) others: Option<Duration>,
}

impl CpuSpent {
    /// Nothing yet: the start of a sum of spans with [`CpuSpent::add`].
    pub(crate) fn zero() -> CpuSpent {
        CpuSpent {
            others: Some(Duration::ZERO),
            ..CpuSpent::default()
        }
    }

    /// Adds another span: the others' time stays known only if it is known in both.
    pub(crate) fn add(&mut self, o: &CpuSpent) {
        self.wall += o.wall;
        self.own += o.own;
        self.others = self.others.zip(o.others).map(|(a, b)| a + b);
    }
}

impl Summary {
    /// The values an SLO is checked against, before cold starts are counted in (see
    /// [`with_cold_starts`]).
    pub(crate) fn measured(&self) -> Measured {
        let l = &self.latency;
        Measured {
            p50_us: l.p50,
            p90_us: l.p90,
            p95_us: l.p95,
            p99_us: l.p99,
            p999_us: l.p999,
            max_us: l.max,
            mean_us: l.mean,
            throughput_rps: self.throughput_rps,
            requests: self.requests,
            errors: self.errors,
            cold_p99_us: 0.0,
        }
    }

    pub(crate) fn of(r: &Record, span: Duration) -> Summary {
        let secs = span.as_secs_f64().max(1e-9);
        let sent = r.sent();
        Summary {
            sent: r.attempts,
            requests: r.ok(),
            errors: r.error_count(),
            throughput_rps: r.ok() as f64 / secs,
            latency: Percentiles::of(&r.latency),
            service: Percentiles::of(&r.service),
            lag: Percentiles::of(&r.lag),
            compute: Percentiles::of(&r.compute),
            overhead: Percentiles::of(&r.overhead),
            stage: Percentiles::of(&r.stage),
            outputs_inline: r.outputs_inline,
            overhead_p10: if r.overhead.is_empty() {
                0.0
            } else {
                r.overhead.value_at_quantile(0.10) as f64 / 1000.0
            },
            lagged_pct: if sent == 0 {
                0.0
            } else {
                100.0 * r.lagged as f64 / sent as f64
            },
            queue_wait: Percentiles::of(&r.queue_wait),
            batch_size_mean: r.batch_sizes.mean(),
            batch_size_p50: if r.batch_sizes.is_empty() {
                0.0
            } else {
                r.batch_sizes.value_at_quantile(0.5) as f64
            },
            batch_size_max: r.batch_sizes.max() as f64,
            runs_per_s: r.batch_sizes.len() as f64 / secs,
        }
    }
}

/// Median, minimum and maximum of values (the median of an even count is the mean of the middle
/// two). `None` for no values.
pub(crate) fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((median, v[0], v[n - 1]))
}

/// The median of values, as [`spread`] takes it; 0 for none.
pub(crate) fn median(values: &[f64]) -> f64 {
    spread(values).map_or(0.0, |s| s.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist_us(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = new_histogram();
        for v in values {
            h.record(v * 1000).unwrap();
        }
        h
    }

    #[test]
    fn the_memory_peak_of_this_process_is_at_least_its_memory_now() {
        let peak = RssPeak::start(vec![std::process::id()], Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        let now = rss_of(std::process::id()).unwrap();
        let peak = peak.stop().unwrap();
        assert!(peak > 0 && peak >= now / 2, "peak {peak}, now {now}");
        let gone = RssPeak::start(vec![u32::MAX], Duration::from_millis(1)).stop();
        assert_eq!(
            gone, None,
            "a process that does not exist has no memory to sum"
        );
    }

    #[test]
    fn cold_starts_count_in_the_latency_an_slo_checks() {
        // 1,000 requests of 1..=1000 µs and 20 cold starts of 900 ms: p99 over all 1,020
        // requests is a cold start, p50 barely moves.
        let latency = hist_us(1..=1000);
        let steady = Percentiles::of(&latency);
        let cold = hist_us([900_000; 20]);
        let p = with_cold_starts(steady, &latency, &cold).unwrap();
        assert!((p.p99 - 900_000.0).abs() < 900.0, "{p:?}");
        assert!(p.p50 >= steady.p50 && p.p50 < 520.0, "{p:?}");
        assert!((p.max - 900_000.0).abs() < 900.0);
        assert!(p.mean > 17_000.0, "{p:?}");
        // No cold starts: the steady values, as they were.
        assert_eq!(
            with_cold_starts(steady, &latency, &new_histogram()),
            Some(steady)
        );
        // Never below the steady values (the median across trials can exceed the pooled value).
        let high = Percentiles {
            p50: 10_000.0,
            ..steady
        };
        assert_eq!(
            with_cold_starts(high, &latency, &cold).unwrap().p50,
            10_000.0
        );
    }

    #[test]
    fn without_histograms_cold_starts_are_placed_at_the_top() {
        let steady = Percentiles {
            p50: 1.0,
            p90: 2.0,
            p95: 3.0,
            p99: 4.0,
            p999: 5.0,
            max: 6.0,
            mean: 1.5,
        };
        assert_eq!(with_cold_starts_bound(steady, 10_000, 0, 900.0), steady);
        // 7 cold starts among 10,000: p99 moves to quantile 0.9907, read from p99.9, and p99.9 to
        // 0.9997, read from the maximum; only the maximum is a cold start.
        let p = with_cold_starts_bound(steady, 10_000, 7, 900.0);
        assert_eq!(
            (p.p50, p.p90, p.p99, p.p999, p.max),
            (2.0, 3.0, 5.0, 6.0, 900.0)
        );
        assert!((p.mean - (10_000.0 * 1.5 + 7.0 * 900.0) / 10_007.0).abs() < 1e-9);
        // 200 cold starts of 1,200 requests: everything from p90 up is a cold start.
        let p = with_cold_starts_bound(steady, 1_000, 200, 900.0);
        assert_eq!((p.p50, p.p90), (2.0, 900.0));
        // Only cold starts.
        assert_eq!(with_cold_starts_bound(steady, 0, 3, 900.0).p50, 900.0);
    }

    #[test]
    fn steal_is_the_stolen_share_of_all_cpu_time_between_two_readings() {
        assert_eq!(steal_pct((10, 1_000), (30, 1_400)), Some(5.0));
        assert_eq!(steal_pct((10, 1_000), (10, 1_000)), None, "no time passed");
        assert_eq!(
            steal_pct((10, 1_000), (10, 900)),
            None,
            "counters went back"
        );
        // This machine's counters: total ticks grow while time passes, steal never exceeds them.
        let Some(a) = cpu_ticks() else {
            return; // a kernel without steal accounting: the column stays empty
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let b = cpu_ticks().unwrap();
        assert!(b.1 > a.1 && b.0 >= a.0 && b.0 <= b.1, "{a:?} -> {b:?}");
        let pct = steal_pct(a, b).unwrap();
        assert!((0.0..=100.0).contains(&pct), "{pct}");
    }

    /// This thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`): what a spin loop is known to have used.
    fn thread_cpu_time() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid, writable timespec and a constant clock id.
        assert_eq!(
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) },
            0
        );
        duration_of(ts)
    }

    #[test]
    fn the_own_cpu_clock_grows_by_the_time_spent_spinning() {
        let spin = Duration::from_millis(100);
        let (wall, own, thread) = (std::time::Instant::now(), own_cpu_time(), thread_cpu_time());
        // Spin until this thread has had 100 ms of CPU, however busy the machine is.
        while thread_cpu_time() - thread < spin {
            std::hint::spin_loop();
        }
        let used = own_cpu_time() - own;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        // The process clock counts this thread's spin; other tests' threads run meanwhile, but
        // no process uses more than its cores for the wall time.
        assert!(used >= spin, "{used:?}");
        assert!(
            used <= wall.elapsed() * cores + Duration::from_millis(20),
            "{used:?} in {:?}",
            wall.elapsed()
        );
    }

    #[test]
    fn a_child_process_cpu_clock_is_readable_and_grows_until_it_is_gone() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let first = cpu_time_of(pid).expect("a running child's CPU time");
        // Wait (sleeping) until the child has had 50 ms of CPU.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut now = first;
        while now - first < Duration::from_millis(50) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            now = cpu_time_of(pid).expect("still running");
        }
        assert!(
            now - first >= Duration::from_millis(50),
            "{first:?} -> {now:?}"
        );
        // The fallback, /proc/PID/stat in clock ticks, reads the same clock, coarser.
        let stat = stat_cpu_time(pid).unwrap();
        let clock = cpu_time_of(pid).unwrap();
        assert!(
            stat <= clock + Duration::from_millis(20) && clock <= stat + Duration::from_millis(50),
            "stat {stat:?}, clock {clock:?}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(cpu_time_of(pid), None, "a reaped child is gone");
    }

    #[test]
    fn a_pid_that_is_no_process_has_no_cpu_time() {
        // pid_max itself is never given out (pids go up to pid_max - 1).
        let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(cpu_time_of(pid_max), None);
        // Regression: i32::MAX's clock id wrapped to this process's own CPU clock.
        assert_eq!(cpu_time_of(i32::MAX as u32), None);
        assert_eq!(cpu_time_of(u32::MAX), None, "not even a pid_t");
        assert_eq!(cpu_time_of(0), None, "0 would be this process");
    }

    #[test]
    fn stat_ticks_are_counted_after_the_command_name() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 1 1 0";
        assert_eq!(stat_ticks(line), Some(10));
        assert_eq!(stat_ticks("42 (x) S 1"), None, "truncated");
    }

    #[test]
    fn workers_cpu_is_known_only_when_the_same_ones_were_read_at_both_ends() {
        let ms = Duration::from_millis;
        let at = std::time::Instant::now();
        let reading = |own: u64, others: &[(u32, Option<u64>)]| CpuReading {
            at,
            own: ms(own),
            others: others.iter().map(|&(p, t)| (p, t.map(ms))).collect(),
        };
        let before = reading(10, &[(1, Some(100)), (2, Some(200))]);
        let spent = before.until(&reading(30, &[(1, Some(150)), (2, Some(260))]));
        assert_eq!((spent.own, spent.others), (ms(20), Some(ms(110))));
        let replaced = before.until(&reading(30, &[(1, Some(150)), (3, Some(5))]));
        assert_eq!((replaced.own, replaced.others), (ms(20), None));
        let gone = before.until(&reading(30, &[(1, Some(150)), (2, None)]));
        assert_eq!(gone.others, None);
        let fewer = before.until(&reading(30, &[(1, Some(150))]));
        assert_eq!(fewer.others, None);

        let mut sum = CpuSpent::zero();
        sum.add(&spent);
        sum.add(&spent);
        assert_eq!((sum.own, sum.others), (ms(40), Some(ms(220))));
        sum.add(&replaced);
        assert_eq!((sum.own, sum.others), (ms(60), None), "one unknown span");
    }

    fn timing(latency_us: u64, compute_ns: u64) -> Timing {
        Timing {
            latency: Duration::from_micros(latency_us),
            service: Duration::from_micros(latency_us),
            lag: Duration::ZERO,
            compute_ns,
        }
    }

    #[test]
    fn percentiles_are_ordered_and_in_microseconds() {
        let mut r = Record::default();
        for i in 1..=1000u64 {
            r.record_ok(timing(i, i * 500));
        }
        let p = Percentiles::of(&r.latency);
        assert!((p.p50 - 500.0).abs() / 500.0 < 0.01, "{p:?}");
        assert!((p.p99 - 990.0).abs() / 990.0 < 0.01, "{p:?}");
        assert!(
            p.p50 <= p.p90
                && p.p90 <= p.p95
                && p.p95 <= p.p99
                && p.p99 <= p.p999
                && p.p999 <= p.max
        );
        let c = Percentiles::of(&r.compute);
        assert!((c.p50 - 250.0).abs() / 250.0 < 0.01, "{c:?}");
    }

    #[test]
    fn merge_adds_counts_errors_and_lag() {
        let mut a = Record::default();
        let mut b = Record::default();
        a.record_ok(timing(10, 5_000));
        b.record_ok(Timing {
            lag: Duration::from_millis(2),
            ..timing(20, 5_000)
        });
        b.record_error("worker_lost", "gone", Duration::ZERO);
        b.record_staging(Staging {
            copy: Duration::from_micros(700),
            outputs_inline: true,
            queue_wait: Some(Duration::from_micros(300)),
        });
        b.record_run(3);
        a.record_run(1);
        a.record_staging(Staging::default());
        a.merge(&b);
        assert_eq!((a.queue_wait.len(), a.batch_sizes.len()), (1, 2));
        let s = Summary::of(&a, Duration::from_secs(2));
        assert_eq!((s.batch_size_mean, s.batch_size_max), (2.0, 3.0));
        assert_eq!(s.runs_per_s, 1.0);
        assert!((s.queue_wait.p50 - 300.0).abs() < 1.0, "{:?}", s.queue_wait);
        assert_eq!(
            (a.stage.len(), a.outputs_inline),
            (1, 1),
            "no copy, no record"
        );
        assert_eq!((a.ok(), a.error_count(), a.sent(), a.lagged), (2, 1, 3, 1));
        assert_eq!(a.first_error["worker_lost"], "gone");
        let s = Summary::of(&a, Duration::from_secs(2));
        assert_eq!(s.throughput_rps, 1.0);
        assert!((s.lagged_pct - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            Percentiles::of(&Record::default().latency),
            Percentiles::default()
        );
    }

    #[test]
    fn spread_is_median_min_max() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(spread(&[]), None);
        assert_eq!((median(&[4.0, 1.0, 2.0, 3.0]), median(&[])), (2.5, 0.0));
    }

    #[test]
    fn percentiles_median_is_taken_field_by_field() {
        let p = |x: f64, max: f64| Percentiles {
            p50: x,
            p99: 2.0 * x,
            max,
            ..Percentiles::default()
        };
        let m = Percentiles::median(&[p(1.0, 90.0), p(3.0, 10.0), p(2.0, 50.0)]);
        assert_eq!((m.p50, m.p99, m.max, m.mean), (2.0, 4.0, 50.0, 0.0));
        assert_eq!(Percentiles::median(&[]), Percentiles::default());
    }
}
