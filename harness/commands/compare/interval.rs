//! Confidence intervals for `bench compare`: how sure a change is, from the trials both sides
//! measured.
//!
//! A side's number is the median over its trials of each trial's value (as `results.csv` gives
//! it). Its uncertainty has two layers: trials differ from each other (drift, a noisy neighbour),
//! and each trial is a sample of requests. The interval is a hierarchical bootstrap of the ratio
//! candidate / baseline: each replicate draws the trials with replacement, then redraws each drawn
//! trial's value from its own sampling noise, and takes the median; 2,000 replicates give the
//! 2.5th and 97.5th percentiles of the ratio.
//!
//! Redrawing a trial's requests is done without its raw latencies, from its histogram: a
//! bootstrap sample's q-quantile is the original's value at rank j where j ~ Binomial(n, q)
//! (the order-statistic view of resampling), taken here as its normal approximation; a mean moves
//! by its standard error; a request count (throughput) by its Poisson noise. A maximum has no
//! such model and is redrawn from the trials alone.
//!
//! With one trial per side only the request sampling is left, which knows nothing of drift
//! between runs: `bench compare` says so beside the verdict.
//!
//! A comparison makes many judgements at once (every point, model and metric), so the intervals
//! are simultaneous: each is at confidence 1 − 0.05 / m for m judgements (Bonferroni), and the
//! chance that any of them excludes zero by luck alone stays under 5%. The replicates grow with m
//! so that the outer percentiles rest on enough of them.

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::Metric;

/// Replicates per interval at least; more for the far percentiles of many judgements.
pub(crate) const REPLICATES: usize = 2000;

/// The family-wise error rate of a comparison's intervals together.
pub(crate) const ALPHA: f64 = 0.05;

/// One measured trial of one model at one point: its latency histogram (ns) and how long it ran.
#[derive(Debug, Clone)]
pub(crate) struct Trial {
    pub(crate) latency: Histogram<u64>,
    pub(crate) span_s: f64,
}

/// A trial's latencies as a cumulative table, for fast quantiles: `(requests so far, value ns)`
/// per recorded value, in increasing order.
struct Cdf {
    steps: Vec<(u64, u64)>,
}

impl Cdf {
    fn of(h: &Histogram<u64>) -> Cdf {
        let mut total = 0;
        let steps = h
            .iter_recorded()
            .map(|v| {
                total += v.count_at_value();
                (total, h.highest_equivalent(v.value_iterated_to()))
            })
            .collect();
        Cdf { steps }
    }

    /// The value of the request at `rank` (1-based) in increasing order, in ns.
    fn at_rank(&self, rank: u64) -> u64 {
        let i = self.steps.partition_point(|&(c, _)| c < rank);
        self.steps.get(i).or(self.steps.last()).map_or(0, |s| s.1)
    }
}

impl Trial {
    /// The value of `m` (µs, or requests/s) moved by `z` standard errors of its sampling noise,
    /// quantiles read from `cdf` (this trial's).
    fn redrawn(&self, m: Metric, z: f64, cdf: &Cdf) -> Option<f64> {
        let h = &self.latency;
        let n = h.len() as f64;
        if n == 0.0 {
            return None;
        }
        Some(match m {
            Metric::Throughput => {
                if self.span_s <= 0.0 {
                    return None;
                }
                (n + z * n.sqrt()).max(0.0) / self.span_s
            }
            Metric::Max => h.max() as f64 / 1000.0,
            Metric::Mean => (h.mean() + z * h.stdev() / n.sqrt()) / 1000.0,
            _ => {
                let q = m.quantile()?;
                let rank = (n * q + z * (n * q * (1.0 - q)).sqrt())
                    .round()
                    .clamp(1.0, n);
                cdf.at_rank(rank as u64) as f64 / 1000.0
            }
        })
    }
}

/// The median of the trials' values, each redrawn, after drawing the trials with replacement.
fn replicate(
    trials: &[Trial],
    cdfs: &[Cdf],
    m: Metric,
    rng: &mut ChaCha8Rng,
    values: &mut Vec<f64>,
) -> Option<f64> {
    values.clear();
    for _ in 0..trials.len() {
        let k = rng.random_range(0..trials.len());
        values.push(trials[k].redrawn(m, rng.sample(StandardNormal), &cdfs[k])?);
    }
    values.sort_by(f64::total_cmp);
    let k = values.len();
    Some(if k % 2 == 1 {
        values[k / 2]
    } else {
        (values[k / 2 - 1] + values[k / 2]) / 2.0
    })
}

/// The interval of candidate / baseline for `m`, as a change in percent `(low, high)`, at
/// confidence 1 − [`ALPHA`] / `judgements` (simultaneous over a comparison's `judgements`);
/// `None` without trials on both sides or when a replicate's baseline is 0. The same inputs
/// always give the same interval (a fixed seed).
pub(crate) fn change_interval(
    base: &[Trial],
    cand: &[Trial],
    m: Metric,
    judgements: usize,
) -> Option<(f64, f64)> {
    if base.is_empty() || cand.is_empty() {
        return None;
    }
    let tail = ALPHA / judgements.max(1) as f64 / 2.0;
    // At least 20 replicates beyond each outer percentile.
    let replicates = REPLICATES.max((20.0 / tail).ceil() as usize);
    let cdfs = |side: &[Trial]| -> Vec<Cdf> { side.iter().map(|t| Cdf::of(&t.latency)).collect() };
    let (bc, cc) = (cdfs(base), cdfs(cand));
    let mut rng = ChaCha8Rng::seed_from_u64(0x0062_656e_6368);
    let mut ratios = Vec::with_capacity(replicates);
    let mut scratch = Vec::new();
    for _ in 0..replicates {
        let b = replicate(base, &bc, m, &mut rng, &mut scratch)?;
        let c = replicate(cand, &cc, m, &mut rng, &mut scratch)?;
        if b <= 0.0 {
            return None;
        }
        ratios.push(c / b);
    }
    ratios.sort_by(f64::total_cmp);
    let at = |p: f64| ratios[((ratios.len() - 1) as f64 * p).round() as usize];
    Some(((at(tail) - 1.0) * 100.0, (at(1.0 - tail) - 1.0) * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, Exp};

    /// A trial of `n` requests with exponential latencies of mean `mean_us` (seeded).
    fn trial(n: usize, mean_us: f64, seed: u64) -> Trial {
        let mut h = crate::metrics::new_histogram();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let exp = Exp::new(1.0 / mean_us).unwrap();
        for _ in 0..n {
            h.record((exp.sample(&mut rng) * 1000.0) as u64 + 1)
                .unwrap();
        }
        Trial {
            latency: h,
            span_s: n as f64 * mean_us / 1e6,
        }
    }

    #[test]
    fn the_same_distribution_gives_an_interval_around_zero() {
        let a: Vec<Trial> = (0..3).map(|s| trial(5000, 1000.0, s)).collect();
        let b: Vec<Trial> = (10..13).map(|s| trial(5000, 1000.0, s)).collect();
        for m in [Metric::P50, Metric::P99, Metric::Mean, Metric::Throughput] {
            let (lo, hi) = change_interval(&a, &b, m, 1).unwrap();
            assert!(lo < 0.0 && hi > 0.0, "{m:?}: {lo:.2}..{hi:.2}");
            assert!(
                hi - lo < 20.0,
                "{m:?}: {lo:.2}..{hi:.2} is too wide for 15,000 requests"
            );
        }
    }

    #[test]
    fn a_ten_percent_slowdown_lies_inside_an_interval_that_excludes_zero() {
        let a: Vec<Trial> = (0..3).map(|s| trial(20_000, 1000.0, s)).collect();
        let b: Vec<Trial> = (10..13).map(|s| trial(20_000, 1100.0, s)).collect();
        let (lo, hi) = change_interval(&a, &b, Metric::P50, 1).unwrap();
        assert!(lo > 0.0 && lo < 10.0 && hi > 10.0, "p50: {lo:.2}..{hi:.2}");
        let (lo, hi) = change_interval(&a, &b, Metric::Throughput, 1).unwrap();
        assert!(
            hi < 0.0 && lo < -9.0 && hi > -11.0,
            "throughput: {lo:.2}..{hi:.2}"
        );
    }

    #[test]
    fn trials_that_disagree_widen_the_interval() {
        let steady: Vec<Trial> = (0..3).map(|s| trial(5000, 1000.0, s)).collect();
        let drifting = vec![
            trial(5000, 800.0, 20),
            trial(5000, 1000.0, 21),
            trial(5000, 1300.0, 22),
        ];
        let (lo1, hi1) = change_interval(&steady, &steady, Metric::P50, 1).unwrap();
        let (lo2, hi2) = change_interval(&steady, &drifting, Metric::P50, 1).unwrap();
        assert!(
            hi2 - lo2 > 3.0 * (hi1 - lo1),
            "{lo1}..{hi1} against {lo2}..{hi2}"
        );
        assert_eq!(
            change_interval(&steady, &drifting, Metric::P50, 1),
            Some((lo2, hi2)),
            "seeded: the same inputs give the same interval"
        );
    }

    #[test]
    fn more_judgements_widen_each_interval_and_quantiles_match_the_histogram() {
        let a: Vec<Trial> = (0..3).map(|s| trial(5000, 1000.0, s)).collect();
        let b: Vec<Trial> = (10..13).map(|s| trial(5000, 1050.0, s)).collect();
        let (lo1, hi1) = change_interval(&a, &b, Metric::P50, 1).unwrap();
        let (lo60, hi60) = change_interval(&a, &b, Metric::P50, 60).unwrap();
        assert!(
            lo60 < lo1 && hi60 > hi1,
            "{lo1}..{hi1} against {lo60}..{hi60}"
        );
        // The cumulative table gives the histogram's own quantiles.
        let t = &a[0];
        let cdf = Cdf::of(&t.latency);
        for q in [0.5, 0.9, 0.99] {
            let n = t.latency.len();
            let rank = (n as f64 * q).round() as u64;
            let want = t.latency.value_at_quantile(rank as f64 / n as f64);
            assert_eq!(
                cdf.at_rank(rank),
                t.latency.highest_equivalent(want),
                "q {q}"
            );
        }
    }

    #[test]
    fn no_trials_or_no_requests_give_no_interval() {
        let a = vec![trial(100, 1000.0, 1)];
        assert_eq!(change_interval(&a, &[], Metric::P50, 1), None);
        let empty = Trial {
            latency: crate::metrics::new_histogram(),
            span_s: 1.0,
        };
        assert_eq!(change_interval(&a, &[empty], Metric::P50, 1), None);
        let cdf = Cdf::of(&a[0].latency);
        assert_eq!(
            a[0].redrawn(Metric::Max, 0.0, &cdf),
            Some(a[0].latency.max() as f64 / 1000.0)
        );
    }
}
