//! GPU memory and utilisation through NVML, for CUDA points. NVML (`libnvidia-ml.so.1`, part of the
//! NVIDIA driver) is opened at run time, so the binary runs on machines without a GPU; there every
//! reading is absent and [`Nvml::open`] says why, for the run's notes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nvml_wrapper::enums::device::UsedGpuMemory;

/// The driver's library; the unversioned `libnvidia-ml.so` exists only with development packages.
const LIB: &str = "libnvidia-ml.so.1";

/// An open NVML handle.
pub(crate) struct Nvml {
    nvml: nvml_wrapper::Nvml,
}

/// Utilisation sampled during a point: mean and peak over every device sampled, in percent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Utilisation {
    pub(crate) mean_pct: f64,
    pub(crate) max_pct: f64,
    pub(crate) samples: usize,
}

impl Nvml {
    /// Opens NVML, or says in one line why GPU memory and utilisation cannot be read.
    pub(crate) fn open() -> Result<Nvml, String> {
        nvml_wrapper::Nvml::builder()
            .lib_path(LIB.as_ref())
            .init()
            .map(|nvml| Nvml { nvml })
            .map_err(|e| {
                format!(
                    "GPU memory and utilisation are not reported: NVML ({LIB}) is unavailable: {e}"
                )
            })
    }

    pub(crate) fn device_count(&self) -> u32 {
        self.nvml.device_count().unwrap_or(0)
    }

    /// GPU memory held by each of `pids`, summed over every device, in bytes. A process that holds
    /// no GPU memory is absent from the map.
    pub(crate) fn memory_by_pid(&self, pids: &[u32]) -> HashMap<u32, u64> {
        let mut out = HashMap::new();
        for i in 0..self.device_count() {
            let Ok(device) = self.nvml.device_by_index(i) else {
                continue;
            };
            for p in device.running_compute_processes().unwrap_or_default() {
                if let (true, UsedGpuMemory::Used(bytes)) =
                    (pids.contains(&p.pid), p.used_gpu_memory)
                {
                    *out.entry(p.pid).or_default() += bytes;
                }
            }
        }
        out
    }

    /// One sample of every listed device's utilisation (percent of the last sample period in which a
    /// kernel ran).
    pub(crate) fn utilisation(&self, devices: &[u32]) -> Vec<u32> {
        devices
            .iter()
            .filter_map(|&i| self.nvml.device_by_index(i).ok()?.utilization_rates().ok())
            .map(|u| u.gpu)
            .collect()
    }
}

/// How many CUDA devices a worker can see, for round-robin assignment: the entries of
/// `CUDA_VISIBLE_DEVICES` when it is set, else NVML's device count, else 1. Worker `w` gets device
/// `w % count`, passed as the provider's `device_id` (indices count within the visible set).
pub(crate) fn visible_devices() -> usize {
    visible_from(
        std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref(),
        || Nvml::open().map(|n| n.device_count() as usize).unwrap_or(0),
    )
}

fn visible_from(env: Option<&str>, nvml: impl FnOnce() -> usize) -> usize {
    match env {
        Some(list) => list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .count()
            .max(1),
        None => nvml().max(1),
    }
}

/// Samples utilisation on a thread until [`Sampler::stop`].
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Utilisation>,
}

impl Sampler {
    pub(crate) fn start(devices: Vec<u32>, every: Duration) -> Option<Sampler> {
        let nvml = Nvml::open().ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut all = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                all.extend(nvml.utilisation(&devices));
                std::thread::sleep(every);
            }
            summarise(&all)
        });
        Some(Sampler { stop, thread })
    }

    pub(crate) fn stop(self) -> Utilisation {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn summarise(samples: &[u32]) -> Utilisation {
    if samples.is_empty() {
        return Utilisation::default();
    }
    Utilisation {
        mean_pct: samples.iter().map(|&s| s as f64).sum::<f64>() / samples.len() as f64,
        max_pct: samples.iter().copied().max().unwrap_or(0) as f64,
        samples: samples.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilisation_is_summarised() {
        let u = summarise(&[10, 30, 80]);
        assert_eq!(u.samples, 3);
        assert!((u.mean_pct - 40.0).abs() < 1e-9);
        assert_eq!(u.max_pct, 80.0);
        assert_eq!(summarise(&[]), Utilisation::default());
    }

    #[test]
    fn visible_devices_follow_the_environment_first() {
        assert_eq!(visible_from(Some("0,1,3"), || 8), 3);
        assert_eq!(visible_from(Some("GPU-5f2c"), || 8), 1);
        assert_eq!(visible_from(None, || 4), 4);
        assert_eq!(visible_from(None, || 0), 1);
    }

    #[test]
    fn without_a_driver_the_reason_names_the_library() {
        // On a machine with the NVIDIA driver this opens; elsewhere the note must say what is missing.
        match Nvml::open() {
            Ok(n) => assert!(n.device_count() > 0),
            Err(why) => assert!(why.contains("libnvidia-ml.so.1"), "{why}"),
        }
    }
}
