//! Reporters turn measured points into files and console output. Measurement hands them plain
//! [`Row`]s and [`RunInfo`]; they never see histograms being recorded.
//!
//! - [`csv`]: `results.csv`, one row per point × model plus an `all` row, rewritten atomically
//!   after every point so a crash keeps every finished point.
//! - [`json`]: `run.json`, the run's metadata (versions, host, seeds, scenario hash, commit).
//! - [`console`]: the summary table printed at the end.

pub mod console;
pub mod csv;
pub mod json;

use serde::Serialize;

/// One line of results: one model (or `all`) at one sweep point. Field names are the CSV columns;
/// each time or size column carries its unit in its name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub point: usize,
    pub point_id: String,
    pub workers: usize,
    pub intra_threads: usize,
    pub transfer: String,
    pub provider: String,
    pub concurrency: usize,
    pub model: String,
    /// `per_request` when inputs cross to the worker with every request, `once` when staged at start.
    pub input_staging: String,
    pub requests: u64,
    pub errors: u64,
    pub warmup_requests: u64,
    pub duration_s: f64,
    pub throughput_rps: f64,
    pub latency_p50_us: f64,
    pub latency_p90_us: f64,
    pub latency_p95_us: f64,
    pub latency_p99_us: f64,
    pub latency_p999_us: f64,
    pub latency_max_us: f64,
    pub latency_mean_us: f64,
    pub compute_p50_us: f64,
    pub compute_p99_us: f64,
    pub compute_mean_us: f64,
    pub load_ms: f64,
    pub rss_mib: f64,
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then a rename.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
