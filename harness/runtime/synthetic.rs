//! The synthetic runtime: no model, only a service time drawn from a known distribution, passed by
//! spinning on the clock or sleeping. With it, tests check the harness against queueing theory and
//! `bench calibrate` measures the harness alone (a zero service time).

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};

use super::Model;
use crate::scenario::{ServiceDistribution, SyntheticSpec, WaitMode};
use crate::tensor::{TensorData, TensorView};

pub struct SyntheticModel {
    spec: SyntheticSpec,
    rng: ChaCha8Rng,
    first_request: Option<Instant>,
    stalled: bool,
}

impl SyntheticModel {
    pub fn new(spec: SyntheticSpec, seed: u64) -> SyntheticModel {
        SyntheticModel {
            spec,
            rng: ChaCha8Rng::seed_from_u64(seed),
            first_request: None,
            stalled: false,
        }
    }

    fn service_time(&mut self, batch: u64) -> Duration {
        let mean = self.spec.mean_ns as f64;
        let per_sample = (self.spec.per_sample_ns * batch) as f64;
        let ns = match self.spec.distribution {
            ServiceDistribution::Fixed => mean,
            ServiceDistribution::Exponential if mean > 0.0 => {
                Exp::new(1.0 / mean).map_or(mean, |d| d.sample(&mut self.rng))
            }
            ServiceDistribution::Exponential => 0.0,
        };
        Duration::from_nanos((ns + per_sample) as u64)
    }
}

/// Waits `d` by spinning on the monotonic clock or by sleeping.
pub fn wait(d: Duration, mode: WaitMode) {
    if d.is_zero() {
        return;
    }
    match mode {
        WaitMode::Sleep => std::thread::sleep(d),
        WaitMode::Spin => {
            let end = Instant::now() + d;
            while Instant::now() < end {
                std::hint::spin_loop();
            }
        }
    }
}

impl Model for SyntheticModel {
    fn run(&mut self, inputs: &[TensorView<'_>]) -> Result<Vec<TensorData>, String> {
        // With `per_sample`, the one input's length is the run's batch.
        let batch = inputs
            .first()
            .and_then(|x| x.shape.first())
            .map_or(1, |&b| b.max(0) as u64);
        let d = self.service_time(batch);
        wait(d, self.spec.wait);
        Ok(Vec::new())
    }

    fn pause_before(&mut self) -> Option<Duration> {
        let first = *self.first_request.get_or_insert_with(Instant::now);
        if self
            .spec
            .hang_after_ns
            .is_some_and(|h| first.elapsed() >= Duration::from_nanos(h))
        {
            return Some(Duration::from_secs(3600)); // a hung model: the parent's timeout must catch it
        }
        let stall = self.spec.stall?;
        if !self.stalled && first.elapsed() >= Duration::from_nanos(stall.after_ns) {
            self.stalled = true;
            return Some(Duration::from_nanos(stall.pause_ns));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Stall;

    fn spec(distribution: ServiceDistribution, mean_us: u64) -> SyntheticSpec {
        SyntheticSpec {
            distribution,
            mean_ns: mean_us * 1000,
            per_sample_ns: 0,
            wait: WaitMode::Spin,
            stall: None,
            hang_after_ns: None,
        }
    }

    #[test]
    fn fixed_service_time_is_exact_and_exponential_has_its_mean() {
        let mut m = SyntheticModel::new(spec(ServiceDistribution::Fixed, 200), 1);
        assert!((0..100).all(|_| m.service_time(1) == Duration::from_micros(200)));
        let mut m = SyntheticModel::new(spec(ServiceDistribution::Exponential, 200), 1);
        let mean = (0..20_000)
            .map(|_| m.service_time(1).as_nanos() as f64)
            .sum::<f64>()
            / 20_000.0;
        assert!(
            (mean - 200_000.0).abs() / 200_000.0 < 0.03,
            "mean {mean} ns"
        );
    }

    #[test]
    fn a_run_of_b_requests_takes_mean_plus_b_per_sample() {
        let mut s = spec(ServiceDistribution::Fixed, 200);
        s.per_sample_ns = 50_000;
        let mut m = SyntheticModel::new(s, 1);
        assert_eq!(m.service_time(1), Duration::from_micros(250));
        assert_eq!(m.service_time(8), Duration::from_micros(600));
        let x = TensorData {
            dtype: crate::tensor::DType::F32,
            shape: vec![4],
            bytes: vec![0; 16],
        };
        let t0 = Instant::now();
        m.run(&[x.view()]).unwrap();
        assert!(t0.elapsed() >= Duration::from_micros(400));
    }

    #[test]
    fn spinning_waits_at_least_the_service_time() {
        let mut m = SyntheticModel::new(spec(ServiceDistribution::Fixed, 300), 1);
        let t0 = Instant::now();
        m.run(&[]).unwrap();
        assert!(t0.elapsed() >= Duration::from_micros(300));
    }

    #[test]
    fn the_stall_happens_once_after_its_delay() {
        let mut s = spec(ServiceDistribution::Fixed, 0);
        s.stall = Some(Stall {
            after_ns: 20_000_000,
            pause_ns: 5_000_000,
        });
        let mut m = SyntheticModel::new(s, 1);
        assert_eq!(m.pause_before(), None, "not before `after`");
        std::thread::sleep(Duration::from_millis(25));
        assert_eq!(m.pause_before(), Some(Duration::from_millis(5)));
        assert_eq!(m.pause_before(), None, "only once");
    }
}
