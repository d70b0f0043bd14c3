//! The verdict on one metric of one matched pair of rows: how noisy it is (the trials' range, or
//! the baseline's earlier runs' prediction interval) and whether its change is a regression, an
//! improvement or within the threshold.

use crate::report::Row;

use super::{Metric, Noise, Options, RunsBand, Side, Verdict};

/// The relative range `(low, high)` of a side, in percent of its median.
fn relative(median: f64, (lo, hi): (f64, f64)) -> Option<(f64, f64)> {
    (median > 0.0).then(|| {
        (
            (lo - median) / median * 100.0,
            (hi - median) / median * 100.0,
        )
    })
}

/// The noise band of one metric of a matched pair of rows.
pub(super) fn noise(base: &Side, b: &Row, cand: &Side, c: &Row, m: Metric) -> Noise {
    let sides = [
        base.range(b, m).map(|r| relative(m.value(b), r)),
        cand.range(c, m).map(|r| relative(m.value(c), r)),
    ];
    let measured: Vec<(f64, f64)> = sides
        .iter()
        .filter_map(|s| s.as_ref().ok().copied().flatten())
        .collect();
    if measured.is_empty() {
        // `NotRecorded` wins over `OneTrial`: more trials alone would not give a band.
        return if sides.contains(&Err(Noise::NotRecorded)) {
            Noise::NotRecorded
        } else {
            Noise::OneTrial
        };
    }
    let lo = measured.iter().map(|r| r.0).fold(0.0, f64::min);
    let hi = measured.iter().map(|r| r.1).fold(0.0, f64::max);
    Noise::Measured(hi - lo)
}

/// Where the baseline's runs say a new run's `m` may fall by chance: the 95% prediction interval
/// of one more run from the baseline run `b` and its `history` (the same point and model in each
/// earlier run), in percent of `b`'s value; `None` with fewer than 2 runs.
///
/// The runs' values are taken as log-normal (a run's shift is a factor, not an offset): with mean
/// μ and standard deviation s of their logarithms over n runs, one more run falls within
/// μ ± t(n−1) · s · √(1 + 1/n) with 95% probability. Student's t keeps two or three runs honest:
/// their s is itself uncertain, so the interval is wide until the history grows.
pub(super) fn runs_band(b: &Row, history: &[Vec<Row>], m: Metric) -> Option<RunsBand> {
    let mut values = vec![m.value(b)];
    for run in history {
        if let Some(r) = run
            .iter()
            .find(|r| r.point_id == b.point_id && r.model == b.model)
        {
            values.push(m.value(r));
        }
    }
    let n = values.len();
    if n < 2 || values.iter().any(|&v| v <= 0.0 || !v.is_finite()) {
        return None;
    }
    let logs: Vec<f64> = values.iter().map(|v| v.ln()).collect();
    let mean = logs.iter().sum::<f64>() / n as f64;
    let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = student_t_975(n - 1) * var.sqrt() * (1.0 + 1.0 / n as f64).sqrt();
    let relative = |log_bound: f64| (log_bound.exp() / values[0] - 1.0) * 100.0;
    Some(RunsBand {
        low: relative(mean - half),
        high: relative(mean + half),
        runs: n,
    })
}

/// The 97.5th percentile of Student's t with `df` degrees of freedom (the two-sided 95% point).
pub(super) fn student_t_975(df: usize) -> f64 {
    const TABLE: [f64; 10] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    ];
    match df {
        0 => f64::INFINITY,
        1..=10 => TABLE[df - 1],
        _ => {
            // Cornish–Fisher expansion around the normal point; within 0.001 of the exact value
            // from 11 degrees of freedom on.
            let (z, d) = (1.959_964_f64, df as f64);
            z + (z.powi(3) + z) / (4.0 * d)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d.powi(2))
                + (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z)
                    / (384.0 * d.powi(3))
        }
    }
}

/// The verdict on a change of `p` percent in `m`, `delta` in its unit (µs for latencies):
/// beyond the threshold (and, for a latency, beyond `min_change_us`), outside the baseline's
/// runs' prediction interval, and beyond the noise (an interval wholly on one side of zero, or a
/// change wider than the band).
pub(super) fn judge(
    m: Metric,
    p: f64,
    delta: f64,
    noise: Noise,
    runs: Option<RunsBand>,
    opts: &Options,
) -> Verdict {
    // In "worse" terms: positive is worse, for every metric.
    let worse = if m.higher_is_better() { -p } else { p };
    if worse.abs() <= opts.threshold_pct {
        return Verdict::WithinThreshold;
    }
    if !m.higher_is_better() && delta.abs() < opts.min_change_us {
        return Verdict::WithinThreshold;
    }
    if runs.is_some_and(|r| (r.low..=r.high).contains(&p)) {
        return Verdict::WithinNoise;
    }
    let significant = match noise {
        Noise::Interval { low, high, .. } => {
            let (low, high) = if m.higher_is_better() {
                (-high, -low)
            } else {
                (low, high)
            };
            if worse > 0.0 { low > 0.0 } else { high < 0.0 }
        }
        Noise::Measured(band) => worse.abs() > band,
        Noise::OneTrial | Noise::NotRecorded => true,
    };
    match (significant, worse > 0.0) {
        (false, _) => Verdict::WithinNoise,
        (true, true) => Verdict::Regression,
        (true, false) => Verdict::Improvement,
    }
}
