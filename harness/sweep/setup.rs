//! What each worker of a point is told: which models it loads (by placement), its runtime, threads,
//! provider, pinning and transfer. `bench parity` builds its workers from here too.

use crate::protocol::{GpuSetup, Setup, SetupModel};
use crate::runtime::ortlib::OrtLib;
use crate::scenario::{Pin, Placement, Point, Provider, Scenario};
use crate::transfer::shm::ShmLayout;

/// The worker setups for one point: which models each worker loads (by placement), its pinning,
/// and the shared-memory layout when the transfer is `shm`.
pub fn setups(
    scenario: &Scenario,
    ort: Option<&OrtLib>,
    point: &Point,
    shm: Option<ShmLayout>,
) -> Vec<Setup> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let visible_gpus = if point.provider == Provider::Cuda && scenario.cuda.gpus.is_empty() {
        crate::gpu::visible_devices()
    } else {
        1
    };
    let assignment = point.placement.assign(point.workers, scenario.models.len());
    // A worker that cannot generate the samples itself gets them in its setup (once, at start).
    let send_samples = crate::transfer::samples_in_setup(point.transfer, point.runtime);
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
            pin_cpu: (point.pin == Pin::Cores).then_some((w % cores) as u32),
            gpu: (point.provider == Provider::Cuda).then(|| GpuSetup {
                device: scenario.cuda.device_of(w, visible_gpus),
                conv_algo_search: scenario.cuda.conv_algo_search,
                arena_extend_strategy: scenario.cuda.arena_extend_strategy,
                gpu_mem_limit_bytes: scenario.cuda.gpu_mem_limit_bytes,
            }),
        })
        .collect()
}

/// Takes the models the runtime cannot run out of every worker's preload: they get no requests,
/// so no worker loads them.
pub fn leave_out(setups: &mut [Setup], unsupported: &[Option<String>]) {
    for setup in setups {
        setup.preload.retain(|&m| unsupported[m as usize].is_none());
    }
}
