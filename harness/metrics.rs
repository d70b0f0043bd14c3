//! Measurements: HdrHistograms of integer nanoseconds per model, and the summaries drawn from them.
//!
//! Two histograms per model: end-to-end latency (as the load generator sees it) and compute (the
//! worker's time inside the runtime's run call). Their difference is the harness's own overhead:
//! encoding, the socket, waking the worker and queueing.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Significant digits kept by every histogram (0.1% resolution).
pub const SIGFIG: u8 = 3;
/// The largest value a histogram tracks: one hour in nanoseconds. Larger values are recorded as this.
pub const MAX_NS: u64 = 3_600_000_000_000;

/// A histogram of nanoseconds from 1 ns to one hour. Fixed bounds, so histograms from different
/// points, runs or machines always merge.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, SIGFIG).expect("valid histogram bounds")
}

/// What one model saw during one phase.
#[derive(Debug, Clone)]
pub struct ModelRecord {
    pub latency: Histogram<u64>,
    pub compute: Histogram<u64>,
    /// Failed requests by kind (`runtime_error`, `worker_lost`).
    pub errors: BTreeMap<String, u64>,
    /// The first error message of each kind, for the console.
    pub first_error: BTreeMap<String, String>,
}

impl Default for ModelRecord {
    fn default() -> Self {
        ModelRecord {
            latency: new_histogram(),
            compute: new_histogram(),
            errors: BTreeMap::new(),
            first_error: BTreeMap::new(),
        }
    }
}

impl ModelRecord {
    pub fn record_ok(&mut self, latency: Duration, compute_ns: u64) {
        self.latency.saturating_record(latency.as_nanos() as u64);
        self.compute.saturating_record(compute_ns);
    }

    pub fn record_error(&mut self, kind: &str, message: &str) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
        self.first_error
            .entry(kind.to_string())
            .or_insert_with(|| message.to_string());
    }

    pub fn ok(&self) -> u64 {
        self.latency.len()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn merge(&mut self, other: &ModelRecord) {
        self.latency
            .add(&other.latency)
            .expect("histograms with equal bounds merge");
        self.compute
            .add(&other.compute)
            .expect("histograms with equal bounds merge");
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
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_ordered_and_in_microseconds() {
        let mut r = ModelRecord::default();
        for i in 1..=1000u64 {
            r.record_ok(Duration::from_micros(i), i * 500);
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
    fn merge_adds_counts_and_errors() {
        let mut a = ModelRecord::default();
        let mut b = ModelRecord::default();
        a.record_ok(Duration::from_micros(10), 5_000);
        b.record_ok(Duration::from_micros(20), 5_000);
        b.record_error("worker_lost", "gone");
        a.merge(&b);
        assert_eq!(a.ok(), 2);
        assert_eq!(a.error_count(), 1);
        assert_eq!(a.first_error["worker_lost"], "gone");
        assert_eq!(
            Percentiles::of(&ModelRecord::default().latency),
            Percentiles::default()
        );
    }
}
