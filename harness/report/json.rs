//! `run.json`: what produced the results, so a number can be traced to its build, host and inputs.

use serde::Serialize;

/// The run's metadata.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub bench_version: String,
    pub git_commit: String,
    pub rustc: String,
    pub ort_version: String,
    pub ort_library: String,
    pub host: Host,
    pub scenario: ScenarioInfo,
    pub started_unix_s: u64,
    pub finished_unix_s: Option<u64>,
    pub points_total: usize,
    pub points_done: usize,
    pub interrupted: bool,
    /// Per finished point: what each worker reported.
    pub points: Vec<PointInfo>,
    /// `--cpu-dma-latency`: the CPU wake-up latency limit held during the run, µs.
    pub cpu_dma_latency_us: Option<u32>,
    /// `[load] spin` (or `--spin`): how long an open loop busy-waited before each send, µs.
    #[serde(default)]
    pub generator_spin_us: u64,
    /// The point that was running when the run was interrupted; it was dropped, not reported.
    pub dropped_point: Option<String>,
    /// `--shard I/N`: which share of the sweep this run holds, and that share's point indexes.
    /// `points_total` then counts the shard's points; `shard.sweep_points` the whole sweep's.
    pub shard: Option<crate::shard::ShardInfo>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PointInfo {
    pub point: usize,
    pub point_id: String,
    pub workers: Vec<WorkerReport>,
    /// The parent's own resident memory when the point ended, MiB.
    #[serde(default)]
    pub parent_rss_mib: f64,
}

/// One worker of one point: start-up cost, per-model load time and resident memory.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct WorkerReport {
    pub worker: u32,
    pub pid: u32,
    /// Spawn to ready (all models loaded), milliseconds.
    pub start_ms: f64,
    /// Model name to session creation time, milliseconds.
    pub load_ms: std::collections::BTreeMap<String, f64>,
    /// Resident memory once its models were loaded, MiB.
    pub rss_ready_mib: f64,
    /// Resident memory at the end of the point, MiB.
    pub rss_end_mib: f64,
    pub requests_served: u64,
    /// What ran the models, as the worker reported it (e.g. `PyTorch 2.15.0 (Python 3.11.7)`).
    #[serde(default)]
    pub runtime: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub hostname: String,
    pub cpu_model: String,
    pub logical_cores: usize,
    pub os: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: String,
    pub sha256: String,
    pub seed: u64,
    pub models: Vec<ModelInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub path: String,
    /// `name: dtype [shape]` per input.
    pub inputs: Vec<String>,
    /// Per input: the seed its samples were generated from.
    pub input_seeds: Vec<u64>,
}

impl Host {
    pub fn detect() -> Host {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string());
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_or_else(|_| "unknown".to_string(), |s| s.trim().to_string());
        let os = std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(
            |_| std::env::consts::OS.to_string(),
            |s| format!("{} {}", std::env::consts::OS, s.trim()),
        );
        Host {
            hostname,
            cpu_model,
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os,
        }
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
