//! The synthetic runtime: no model, only a service time drawn from a known distribution, passed by
//! spinning on the clock or sleeping. With it, tests check the harness against queueing theory and
//! `bench calibrate` measures the harness alone (a zero service time).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};

use super::{Model, SharedRun};
use crate::model::tensor::{TensorData, TensorView};
use crate::scenario::{ServiceDistribution, SyntheticSpec, WaitMode};

/// A synthetic model. Its state sits behind a mutex held only to draw a service time or decide a
/// pause, never while waiting, so `worker_concurrency` threads wait out their service times at
/// the same time, as they would run a real model.
pub(crate) struct SyntheticModel {
    spec: SyntheticSpec,
    state: Mutex<State>,
}

struct State {
    rng: ChaCha8Rng,
    first_request: Option<Instant>,
    stalled: bool,
}

impl SyntheticModel {
    pub(crate) fn new(spec: SyntheticSpec, seed: u64) -> SyntheticModel {
        SyntheticModel {
            spec,
            state: Mutex::new(State {
                rng: ChaCha8Rng::seed_from_u64(seed),
                first_request: None,
                stalled: false,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A thread that panicked while drawing left nothing half-written worth refusing.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn service_time(&self, batch: u64) -> Duration {
        let mean = self.spec.mean_ns as f64;
        let per_sample = (self.spec.per_sample_ns * batch) as f64;
        let ns = match self.spec.distribution {
            ServiceDistribution::Fixed => mean,
            ServiceDistribution::Exponential if mean > 0.0 => {
                Exp::new(1.0 / mean).map_or(mean, |d| d.sample(&mut self.state().rng))
            }
            ServiceDistribution::Exponential => 0.0,
        };
        Duration::from_nanos((ns + per_sample) as u64)
    }
}

/// Waits `d` by spinning on the monotonic clock or by sleeping.
pub(crate) fn wait(d: Duration, mode: WaitMode) {
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

impl SharedRun for SyntheticModel {
    fn run_shared(&self, inputs: &[TensorView<'_>]) -> Result<Vec<TensorData>, String> {
        // With `per_sample`, the one input's length is the run's batch.
        let batch = inputs
            .first()
            .and_then(|x| x.shape.first())
            .map_or(1, |&b| b.max(0) as u64);
        let d = self.service_time(batch);
        wait(d, self.spec.wait);
        Ok(Vec::new())
    }

    fn pause_before_shared(&self) -> Option<Duration> {
        let mut state = self.state();
        let first = *state.first_request.get_or_insert_with(Instant::now);
        if self
            .spec
            .hang_after_ns
            .is_some_and(|h| first.elapsed() >= Duration::from_nanos(h))
        {
            return Some(Duration::from_secs(3600)); // a hung model: the parent's timeout must catch it
        }
        let stall = self.spec.stall?;
        if !state.stalled && first.elapsed() >= Duration::from_nanos(stall.after_ns) {
            state.stalled = true;
            return Some(Duration::from_nanos(stall.pause_ns));
        }
        None
    }
}

impl Model for SyntheticModel {
    fn run(&mut self, inputs: &[TensorView<'_>]) -> Result<Vec<TensorData>, String> {
        self.run_shared(inputs)
    }

    fn pause_before(&mut self) -> Option<Duration> {
        self.pause_before_shared()
    }

    fn shared(&self) -> Option<&dyn SharedRun> {
        Some(self)
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
        let m = SyntheticModel::new(spec(ServiceDistribution::Fixed, 200), 1);
        assert!((0..100).all(|_| m.service_time(1) == Duration::from_micros(200)));
        let m = SyntheticModel::new(spec(ServiceDistribution::Exponential, 200), 1);
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
            dtype: crate::model::tensor::DType::F32,
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

    /// `worker_concurrency`: k threads spinning on one shared model for the same service time
    /// finish together, not one after the other (the state's lock is not held while waiting).
    #[test]
    fn threads_wait_out_their_service_times_at_the_same_time_on_one_model() {
        let mut s = spec(ServiceDistribution::Fixed, 50_000);
        s.wait = WaitMode::Sleep;
        let m = SyntheticModel::new(s, 1);
        let shared = m.shared().expect("the synthetic runtime runs concurrently");
        let t0 = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| shared.run_shared(&[]).unwrap());
            }
        });
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(
            took < Duration::from_millis(150),
            "4 runs of 50 ms took {took:?}"
        );
    }
}
