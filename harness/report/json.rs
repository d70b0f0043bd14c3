//! `run.json`: what produced the results, so a number can be traced to its build, host and inputs.
//!
//! The types are read back as well as written ([`crate::report::results`]): fields added after the first
//! version carry a `#[serde(default)]` so older folders still load, and fields this version does not
//! know are ignored, so a newer bench's folder loads too.

use serde::{Deserialize, Serialize};

/// The version of `run.json`'s layout this bench writes. Files without `schema_version` (written
/// before it existed) read as version 1; raise it when a field changes meaning or is removed.
pub const SCHEMA_VERSION: u32 = 1;

fn schema_v1() -> u32 {
    1
}

/// The run's metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunInfo {
    /// [`SCHEMA_VERSION`] when written; 1 for files from before the field.
    #[serde(default = "schema_v1")]
    pub(crate) schema_version: u32,
    pub(crate) bench_version: String,
    pub(crate) git_commit: String,
    pub(crate) rustc: String,
    pub(crate) ort_version: String,
    pub(crate) ort_library: String,
    pub(crate) host: Host,
    pub(crate) scenario: ScenarioInfo,
    pub(crate) started_unix_s: u64,
    pub(crate) finished_unix_s: Option<u64>,
    pub(crate) points_total: usize,
    pub(crate) points_done: usize,
    pub(crate) interrupted: bool,
    /// Per finished point: what each worker reported.
    #[serde(default)]
    pub(crate) points: Vec<PointInfo>,
    /// `--cpu-dma-latency`: the CPU wake-up latency limit held during the run, µs.
    #[serde(default)]
    pub(crate) cpu_dma_latency_us: Option<u32>,
    /// `--realtime`: `generator` or `all` ran under SCHED_FIFO; absent when neither did.
    #[serde(default)]
    pub(crate) realtime: Option<String>,
    /// `[load] spin` (or `--spin`): how long an open loop busy-waited before each send, µs. Absent
    /// from files of before the option, and in a merge of runs that differ in it.
    #[serde(default)]
    pub(crate) generator_spin_us: Option<u64>,
    /// The point that was running when the run was interrupted; it was dropped, not reported.
    #[serde(default)]
    pub(crate) dropped_point: Option<String>,
    /// `--shard I/N`: which share of the sweep this run holds, and that share's point indexes.
    /// `points_total` then counts the shard's points; `shard.sweep_points` the whole sweep's.
    #[serde(default)]
    pub(crate) shard: Option<crate::scenario::shard::ShardInfo>,
    /// `bench merge`: the folders merged, one entry per input (absent from a sweep's file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) sources: Vec<SourceInfo>,
    /// `bench merge`: when the merged folder was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) merged_unix_s: Option<u64>,
    /// The command line that made the run, word by word (absent from older files).
    #[serde(default)]
    pub(crate) command: Vec<String>,
    /// The flags that overrode the scenario file (`--duration`, `--warmup`, ...), by flag name.
    #[serde(default)]
    pub(crate) overrides: std::collections::BTreeMap<String, String>,
    /// The settings the run measured with, after the overrides
    /// (`scenario::effective_settings`): what `bench compare` checks two runs agree on.
    #[serde(default)]
    pub(crate) settings: std::collections::BTreeMap<String, String>,
}

/// One input folder of `bench merge`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct SourceInfo {
    pub(crate) dir: String,
    pub(crate) hostname: String,
    /// The input's shard, when it held one.
    pub(crate) shard: Option<crate::scenario::shard::Shard>,
    pub(crate) git_commit: String,
    pub(crate) bench_version: String,
    pub(crate) scenario_sha256: String,
    pub(crate) started_unix_s: u64,
    pub(crate) finished_unix_s: Option<u64>,
    pub(crate) interrupted: bool,
    pub(crate) dropped_point: Option<String>,
    /// The ids of the points the input holds, in its order.
    pub(crate) points: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PointInfo {
    pub(crate) point: usize,
    pub(crate) point_id: String,
    /// Requests each worker ran at the same time (`[sweep] worker_concurrency`; 1 in files from
    /// before the key).
    #[serde(default = "one")]
    pub(crate) worker_concurrency: usize,
    pub(crate) workers: Vec<WorkerReport>,
    /// The parent's own resident memory when the point ended, MiB.
    #[serde(default)]
    pub(crate) parent_rss_mib: f64,
    /// `bench merge`: the index of the input (in `sources`) the point comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) source: Option<usize>,
    /// The values of the axes that `run.json` records per point, by their key here: the ONNX
    /// Runtime session options the point's workers set (`intra_spinning`, `prepacking`, ...), its
    /// `batch` and its `batching.*` policy where it has them; each axis declares its keys
    /// (`crate::scenario::axes`, via [`crate::report::Row::session_settings`]). Absent from files
    /// of before the options.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(crate) session: std::collections::BTreeMap<String, String>,
}

/// One worker of one point: start-up cost, per-model load time and resident memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WorkerReport {
    pub(crate) worker: u32,
    pub(crate) pid: u32,
    /// Spawn to ready (all models loaded), milliseconds.
    pub(crate) start_ms: f64,
    /// Model name to session creation time, milliseconds.
    pub(crate) load_ms: std::collections::BTreeMap<String, f64>,
    /// Model name to the worker's resident-memory growth while it loaded the model, MiB.
    #[serde(default)]
    pub(crate) load_rss_mib: std::collections::BTreeMap<String, f64>,
    /// Resident memory once its models were loaded, MiB.
    pub(crate) rss_ready_mib: f64,
    /// Resident memory at the end of the point, MiB.
    pub(crate) rss_end_mib: f64,
    pub(crate) requests_served: u64,
    /// What ran the models, as the worker reported it (e.g. `PyTorch 2.15.0 (Python 3.11.7)`).
    #[serde(default)]
    pub(crate) runtime: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Host {
    pub(crate) hostname: String,
    pub(crate) cpu_model: String,
    pub(crate) logical_cores: usize,
    pub(crate) os: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ScenarioInfo {
    pub(crate) name: String,
    pub(crate) file: String,
    pub(crate) sha256: String,
    pub(crate) seed: u64,
    pub(crate) models: Vec<ModelInfo>,
    /// The scenario's `slo`, one objective per entry in its syntax (`p99_ms <= 50`): what
    /// `bench report` recommends a point for without `--slo`. Empty without an SLO, and in files of
    /// before the field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) slo: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ModelInfo {
    pub(crate) name: String,
    pub(crate) path: String,
    /// `name: dtype [shape]` per input.
    pub(crate) inputs: Vec<String>,
    /// Per input: the seed its samples were generated from.
    pub(crate) input_seeds: Vec<u64>,
}

impl Host {
    pub(crate) fn detect() -> Host {
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

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn one() -> usize {
    1
}
