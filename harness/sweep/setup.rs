//! What each worker of a point is told: which models it loads (by placement), its runtime, threads,
//! provider, pinning and transfer. `bench parity` builds its workers from here too.
//!
//! Pinning stays inside the CPUs this process was given (`taskset`, a cgroup cpuset, the Kubernetes
//! CPU manager): worker `w` gets the `w`-th of them in turn, never a CPU outside the set.

use crate::pool::protocol::{GpuSetup, Setup, SetupModel};
use crate::pool::runtime::ortlib::OrtLib;
use crate::pool::transfer::shm::ShmLayout;
use crate::scenario::{Pin, Placement, Point, Provider, Scenario};

/// The worker setups for one point: which models each worker loads (by placement), its pinning,
/// and the shared-memory layout when the transfer is `shm`.
pub fn setups(
    scenario: &Scenario,
    ort: Option<&OrtLib>,
    point: &Point,
    shm: Option<ShmLayout>,
) -> Vec<Setup> {
    let allowed = if point.pin == Pin::Cores {
        allowed_cpus()
    } else {
        Vec::new()
    };
    let visible_gpus = if point.provider == Provider::Cuda && scenario.cuda.gpus.is_empty() {
        crate::metrics::gpu::visible_devices()
    } else {
        1
    };
    let assignment =
        point
            .placement
            .assign(point.workers, scenario.models.len(), &scenario.replicas);
    // A worker that cannot generate the samples itself gets them in its setup (once, at start).
    let send_samples = crate::pool::transfer::samples_in_setup(point.transfer, point.runtime);
    let models: Vec<SetupModel> = scenario
        .models
        .iter()
        .map(|m| SetupModel {
            data: if send_samples {
                m.samples.clone()
            } else {
                Vec::new()
            },
            ..SetupModel::of(m)
        })
        .collect();
    let spin_max = scenario
        .transfer
        .spin_max_at(point, crate::scenario::limits::usable_cpus());
    assignment
        .into_iter()
        .enumerate()
        .map(|(w, preload)| Setup {
            worker: w as u32,
            ort_lib: ort.map(|o| o.path.clone()).unwrap_or_default(),
            runtime: point.runtime,
            intra_threads: point.intra_threads as u32,
            provider: point.provider,
            transfer: point.transfer,
            models: models.clone(),
            preload: preload.into_iter().map(|m| m as u32).collect(),
            on_demand: (point.placement == Placement::OnDemand).then_some(scenario.on_demand),
            shm,
            pin_cpu: (point.pin == Pin::Cores)
                .then(|| pin_cpu(w, &allowed))
                .flatten(),
            gpu: (point.provider == Provider::Cuda).then(|| GpuSetup {
                device: scenario.cuda.device_of(w, visible_gpus),
                conv_algo_search: scenario.cuda.conv_algo_search,
                arena_extend_strategy: scenario.cuda.arena_extend_strategy,
                gpu_mem_limit_bytes: scenario.cuda.gpu_mem_limit_bytes,
            }),
            session: point.session,
            worker_concurrency: point.worker_concurrency as u32,
            channel: point.channel,
            spin_max_ns: spin_max.as_nanos() as u64,
        })
        .collect()
}

/// The CPUs this process may run on, in order: its affinity mask (`sched_getaffinity`), which
/// `taskset`, a cgroup cpuset or the Kubernetes CPU manager narrow. Where it cannot be read, the
/// first `available_parallelism` CPUs.
pub fn allowed_cpus() -> Vec<u32> {
    // SAFETY: cpu_set_t is plain data (a bit mask), so all zeroes is a valid empty set;
    // sched_getaffinity writes at most `size_of::<cpu_set_t>()` bytes into it, and CPU_ISSET only
    // reads it, for indexes below CPU_SETSIZE.
    let from_mask = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .map(|c| c as u32)
                .collect()
        } else {
            Vec::new()
        }
    };
    if from_mask.is_empty() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..n as u32).collect()
    } else {
        from_mask
    }
}

/// The CPU worker `w` is pinned to: the allowed CPUs in turn (`None` if there are none).
fn pin_cpu(w: usize, allowed: &[u32]) -> Option<u32> {
    (!allowed.is_empty()).then(|| allowed[w % allowed.len()])
}

/// Takes the models the runtime cannot run out of every worker's preload: they get no requests,
/// so no worker loads them.
pub(crate) fn leave_out(setups: &mut [Setup], unsupported: &[Option<String>]) {
    for setup in setups {
        setup.preload.retain(|&m| unsupported[m as usize].is_none());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: workers were pinned to CPUs 0, 1, … whatever set the process was given, so
    /// under `taskset -c 2,3` worker 0 ran on CPU 0.
    #[test]
    fn workers_are_pinned_to_the_allowed_cpus_in_turn() {
        let allowed = [2, 3, 7];
        let pins: Vec<Option<u32>> = (0..5).map(|w| pin_cpu(w, &allowed)).collect();
        assert_eq!(pins, [Some(2), Some(3), Some(7), Some(2), Some(3)]);
        assert_eq!(pin_cpu(0, &[]), None);
    }

    /// Replicas: each worker is told to load its one model, so requests for a model can only be
    /// routed to its replicas (the pool routes to the workers that hold a model); and every
    /// worker is told how many requests to run at once.
    #[test]
    fn replicas_setups_load_one_model_per_worker_and_carry_worker_concurrency() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "[[model]]\nname = \"a\"\nsynthetic = { mean = \"1ms\" }\n\
             [[model]]\nname = \"b\"\nsynthetic = { mean = \"1ms\" }\n\
             [sweep]\nworkers = 3\nplacement = \"replicas\"\nworker_concurrency = 2\n\
             [replicas]\na = 1\nb = 2\n",
        )
        .unwrap();
        let s = crate::scenario::load(&file).unwrap();
        let setups = setups(&s, None, &s.points[0], None);
        let preload: Vec<Vec<u32>> = setups.iter().map(|s| s.preload.clone()).collect();
        assert_eq!(preload, [vec![0], vec![1], vec![1]]);
        assert!(setups.iter().all(|s| s.worker_concurrency == 2));
        assert!(
            setups.iter().all(|s| s.models.len() == 2),
            "requests name models by index"
        );
    }

    #[test]
    fn the_allowed_cpus_are_this_threads_affinity() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]), "{cpus:?}");
        let n = std::thread::available_parallelism().unwrap().get();
        assert!(cpus.len() >= n, "{cpus:?} against {n} available");
    }
}
