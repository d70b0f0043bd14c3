//! What `report.html` and `summary.md` both show: a results folder read back for a report (rows,
//! `run.json`, each point's latency spectrum, and notes on what could not be read), and the run's
//! metadata as text. Both reporters read this module; neither reads the other.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::Row;
use super::hlog;
use super::json::RunInfo;
use super::plots::{self, Spectrum};
use crate::report::results::{ReadError, Results};

/// A results folder as the reports show it.
pub struct View {
    pub dir: PathBuf,
    pub rows: Vec<Row>,
    /// `run.json`, when present and readable.
    pub meta: Option<RunInfo>,
    /// Per point with a histogram log: its id and the spectrum of `all.latency`.
    pub spectra: Vec<(String, Spectrum)>,
    /// What could not be read, said on the page and on stderr.
    pub notes: Vec<String>,
}

impl View {
    /// The `all` rows, one per point, in point order.
    pub fn alls(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.kind == "all")
    }

    /// The valid point with the highest throughput.
    pub fn best(&self) -> Option<&Row> {
        self.alls()
            .filter(|r| r.valid)
            .max_by(|a, b| a.throughput_rps.total_cmp(&b.throughput_rps))
    }

    /// The scenario's name from `run.json`, else the folder's name.
    pub fn name(&self) -> String {
        self.meta
            .as_ref()
            .map(|m| m.scenario.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| {
                self.dir
                    .file_name()
                    .map_or("results".into(), |n| n.to_string_lossy().into_owned())
            })
    }
}

/// Reads a results folder. `results.csv` is required, and a broken one is an error naming the file;
/// a missing or unreadable `run.json` or histogram log only leaves its part out, with a note that
/// names the file.
pub fn load(dir: &Path) -> anyhow::Result<View> {
    let results = match Results::open(dir) {
        Ok(r) => r,
        Err(ReadError::Missing { path }) => anyhow::bail!(
            "{} does not exist: give `bench report` the folder a `bench sweep --out DIR` wrote",
            path.display()
        ),
        Err(e) => return Err(e.into()),
    };
    let mut notes = Vec::new();
    let meta = match results.run_info() {
        Ok(info) => Some(info),
        Err(e) => {
            notes.push(format!("{e}: the run's metadata is left out"));
            None
        }
    };
    let mut spectra = Vec::new();
    let tag = hlog::tag("all", "latency");
    for id in plots::point_ids(&results.rows) {
        match results.hlog_totals(&id) {
            Ok(None) => notes.push(format!(
                "{} is missing: point {id} has no latency spectrum",
                results.hlog_path(&id).display()
            )),
            Ok(Some(totals)) => match totals.get(&tag) {
                Some(h) => spectra.push((id, plots::spectrum(h))),
                None => notes.push(format!(
                    "{} has no `{tag}` histogram: point {id} has no latency spectrum",
                    results.hlog_path(&id).display()
                )),
            },
            Err(e) => notes.push(format!("{e}: point {id} has no latency spectrum")),
        }
    }
    Ok(View {
        dir: dir.to_path_buf(),
        rows: results.rows,
        meta,
        spectra,
        notes,
    })
}

/// A Unix time in seconds as an RFC 3339 date (UTC).
pub fn date(unix_s: Option<u64>) -> String {
    unix_s.map_or_else(String::new, |s| {
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s))
            .to_string()
    })
}

/// An optional number as text, empty when absent.
fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

/// The run's metadata as labelled lines, in the order the page shows them; empty values left out.
pub fn meta_items(meta: &RunInfo) -> Vec<(&'static str, String)> {
    let s = &meta.scenario;
    let mut items = vec![
        ("scenario", s.name.clone()),
        ("scenario file", s.file.clone()),
        ("scenario SHA-256", s.sha256.clone()),
        ("seed", s.seed.to_string()),
        ("started", date(Some(meta.started_unix_s))),
        ("finished", date(meta.finished_unix_s)),
        (
            "points",
            format!(
                "{} of {} done{}",
                meta.points_done,
                meta.points_total,
                if meta.interrupted {
                    format!(
                        ", interrupted (dropped: {})",
                        meta.dropped_point.as_deref().unwrap_or_default()
                    )
                } else {
                    String::new()
                }
            ),
        ),
        ("bench", meta.bench_version.clone()),
        ("git commit", meta.git_commit.clone()),
        ("rustc", meta.rustc.clone()),
        ("ONNX Runtime", meta.ort_version.clone()),
        ("ONNX Runtime library", meta.ort_library.clone()),
        ("host", meta.host.hostname.clone()),
        ("CPU", meta.host.cpu_model.clone()),
        ("logical cores", meta.host.logical_cores.to_string()),
        ("OS", meta.host.os.clone()),
        (
            "CPU wake-up latency limit (µs)",
            opt(meta.cpu_dma_latency_us),
        ),
        (
            "open-loop spin before each send (µs)",
            opt(meta.generator_spin_us),
        ),
    ];
    for m in &s.models {
        let inputs: Vec<String> = m
            .inputs
            .iter()
            .zip(&m.input_seeds)
            .map(|(i, seed)| format!("{i} (seed {seed})"))
            .collect();
        let mut line = m.path.clone();
        if !inputs.is_empty() {
            let _ = write!(line, "; {}", inputs.join(", "));
        }
        items.push(("model", format!("{}: {line}", m.name)));
    }
    items.retain(|(_, v)| !v.is_empty());
    items
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::json::{Host, ModelInfo, ScenarioInfo};

    /// A run.json with every field set.
    pub(crate) fn run_info() -> RunInfo {
        RunInfo {
            schema_version: crate::report::json::SCHEMA_VERSION,
            bench_version: "0.1.0".into(),
            git_commit: "abc1234".into(),
            rustc: "rustc 1.92".into(),
            ort_version: "1.31.1".into(),
            ort_library: String::new(),
            host: Host {
                hostname: "h".into(),
                cpu_model: "EPYC".into(),
                logical_cores: 2,
                os: "linux".into(),
            },
            scenario: ScenarioInfo {
                name: "demo".into(),
                file: "s.toml".into(),
                sha256: "0123456789abcdef0123".into(),
                seed: 42,
                models: Vec::new(),
                slo: Vec::new(),
            },
            started_unix_s: 86_400,
            finished_unix_s: None,
            points_total: 3,
            points_done: 3,
            interrupted: false,
            points: Vec::new(),
            cpu_dma_latency_us: None,
            generator_spin_us: None,
            dropped_point: None,
            shard: None,
            sources: Vec::new(),
            merged_unix_s: None,
            command: vec!["bench".into(), "sweep".into()],
            overrides: Default::default(),
            settings: [("workload.trials".to_string(), "3".to_string())].into(),
        }
    }

    #[test]
    fn metadata_lines_skip_what_is_absent() {
        let mut meta = run_info();
        meta.started_unix_s = 0;
        meta.scenario.seed = 7;
        (meta.points_done, meta.points_total) = (2, 3);
        meta.interrupted = true;
        meta.dropped_point = Some("w2".into());
        meta.scenario.models = vec![ModelInfo {
            name: "mlp".into(),
            path: "m.onnx".into(),
            inputs: vec!["x: float32 [1, 64]".into()],
            input_seeds: vec![99],
        }];
        let items = meta_items(&meta);
        let get = |k: &str| {
            items
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("seed"), Some("7"));
        assert_eq!(get("started"), Some("1970-01-01T00:00:00Z"));
        assert_eq!(get("finished"), None);
        assert_eq!(
            get("points"),
            Some("2 of 3 done, interrupted (dropped: w2)")
        );
        assert_eq!(
            get("model"),
            Some("mlp: m.onnx; x: float32 [1, 64] (seed 99)")
        );
        assert_eq!(get("CPU wake-up latency limit (µs)"), None);
        assert_eq!(get("ONNX Runtime library"), None);
        assert_eq!(get("host"), Some("h"));
    }
}
