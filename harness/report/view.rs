//! What `report.html` and `summary.md` both show: a results folder read back for a report (rows,
//! `run.json`, each point's histograms and latency spectrum, every point judged against the
//! objectives, and notes on what could not be read), and the run's metadata as text. Both
//! reporters read this module; neither reads the other.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::Row;
use super::choose::{self, Choice, Logged, Objectives};
use super::hlog;
use super::json::RunInfo;
use super::plots::{self, Spectrum};
use crate::report::results::{ReadError, Results};
use crate::scenario::slo;

/// A results folder as the reports show it.
pub(crate) struct View {
    pub(crate) dir: PathBuf,
    pub(crate) rows: Vec<Row>,
    /// `run.json`, when present and readable.
    pub(crate) meta: Option<RunInfo>,
    /// Per point with a histogram log: its id and the spectrum of `all.latency`.
    pub(crate) spectra: Vec<(String, Spectrum)>,
    /// Every point judged against the objectives (`--slo`, `--max-rss-mib`, else the scenario's
    /// `slo`), and the recommended one.
    pub(crate) choice: Choice,
    /// Whether the objectives are the scenario's (from `run.json`) rather than the command line's.
    pub(crate) scenario_slo: bool,
    /// What could not be read, said on the page and on stderr.
    pub(crate) notes: Vec<String>,
}

impl View {
    /// The `all` rows, one per point, in point order.
    pub(crate) fn alls(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.kind == "all")
    }

    /// Whether the report leads with a recommendation: there are objectives to recommend for.
    pub(crate) fn recommends(&self) -> bool {
        !self.choice.objectives.is_empty()
    }

    /// The valid point with the highest throughput.
    pub(crate) fn best(&self) -> Option<&Row> {
        self.alls()
            .filter(|r| r.valid)
            .max_by(|a, b| a.throughput_rps.total_cmp(&b.throughput_rps))
    }

    /// The scenario's name from `run.json`, else the folder's name.
    pub(crate) fn name(&self) -> String {
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

fn logged<'a>(
    totals: &'a BTreeMap<String, hlog::Trial>,
    point_id: &str,
    name: &str,
) -> Option<Logged<'a>> {
    let totals = totals.get(point_id)?;
    Some(Logged {
        latency: totals.get(&hlog::tag(name, "latency"))?,
        cold: totals.get(&hlog::tag(name, "cold_start")),
    })
}

/// The objectives a report recommends a point for: `asked` (the command line's), with the scenario's
/// `slo` from `run.json` when `asked` has no `--slo`; and whether that was used. An objective in
/// `run.json` this bench cannot read is an error that says to give `--slo`.
pub(crate) fn objectives(
    asked: &Objectives,
    meta: Option<&RunInfo>,
) -> anyhow::Result<(Objectives, bool)> {
    let scenario: &[String] = meta.map_or(&[], |m| &m.scenario.slo);
    if !asked.slo.is_empty() || scenario.is_empty() {
        return Ok((asked.clone(), false));
    }
    let slo = scenario
        .iter()
        .map(|t| {
            slo::parse_objective(t).map_err(|e| {
                anyhow::anyhow!(
                    "run.json: the scenario's objective `{t}` cannot be read ({e}); give the \
                     objectives with --slo"
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((
        Objectives {
            slo,
            max_rss_mib: asked.max_rss_mib,
        },
        true,
    ))
}

/// Reads a results folder and judges its points against `asked` (see [`objectives`]).
/// `results.csv` is required, and a broken one is an error naming the file; a missing or unreadable
/// `run.json` or histogram log only leaves its part out, with a note that names the file.
pub(crate) fn load(dir: &Path, asked: &Objectives) -> anyhow::Result<View> {
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
    let mut all_totals = BTreeMap::new();
    let tag = hlog::tag("all", "latency");
    for id in plots::point_ids(&results.rows) {
        match results.hlog_totals(&id) {
            Ok(None) => notes.push(format!(
                "{} is missing: point {id} has no latency spectrum",
                results.hlog_path(&id).display()
            )),
            Ok(Some(totals)) => {
                match totals.get(&tag) {
                    Some(h) => spectra.push((id.clone(), plots::spectrum(h))),
                    None => notes.push(format!(
                        "{} has no `{tag}` histogram: point {id} has no latency spectrum",
                        results.hlog_path(&id).display()
                    )),
                }
                all_totals.insert(id, totals);
            }
            Err(e) => notes.push(format!("{e}: point {id} has no latency spectrum")),
        }
    }
    let (objectives, scenario_slo) = objectives(asked, meta.as_ref())?;
    let choice = choose::choose(&results.rows, &objectives, &|p, n| {
        logged(&all_totals, p, n)
    })?;
    for p in &choice.points {
        if p.cold == choose::Cold::Bound {
            notes.push(format!(
                "point {}: its {} cold start(s) are not all in its histogram log, so each is \
                 counted as slow as the slowest ({} ms) in its latency",
                p.point_id,
                p.cold_starts,
                p.cold_max_ms.map_or_else(String::new, slo::short)
            ));
        }
    }
    Ok(View {
        dir: dir.to_path_buf(),
        rows: results.rows,
        meta,
        spectra,
        choice,
        scenario_slo,
        notes,
    })
}

/// A Unix time in seconds as an RFC 3339 date (UTC).
pub(crate) fn date(unix_s: Option<u64>) -> String {
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
pub(crate) fn meta_items(meta: &RunInfo) -> Vec<(&'static str, String)> {
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
        (
            "SCHED_FIFO (--realtime)",
            meta.realtime.clone().unwrap_or_else(|| "none".into()),
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

    /// A view of `rows` without histogram logs, with `run_info()` as its run.json, its points
    /// judged against `objectives`.
    pub(crate) fn view(rows: Vec<Row>, objectives: &Objectives) -> View {
        let choice = choose::choose(&rows, objectives, &|_, _| None).unwrap();
        View {
            dir: "reports/x".into(),
            rows,
            meta: Some(run_info()),
            spectra: Vec::new(),
            choice,
            scenario_slo: false,
            notes: Vec::new(),
        }
    }

    #[test]
    fn the_scenarios_slo_applies_unless_the_command_line_gives_one() {
        let mut meta = run_info();
        meta.scenario.slo = vec!["p99_ms <= 50".into()];
        let asked = Objectives {
            slo: Vec::new(),
            max_rss_mib: Some(512.0),
        };
        let (o, from_scenario) = objectives(&asked, Some(&meta)).unwrap();
        assert!(from_scenario);
        assert_eq!(o.describe(), "p99_ms <= 50, rss_mib <= 512");
        let flags = Objectives {
            slo: vec![slo::parse_objective("ocr:p99_ms<=6").unwrap()],
            max_rss_mib: None,
        };
        let (o, from_scenario) = objectives(&flags, Some(&meta)).unwrap();
        assert!(!from_scenario);
        assert_eq!(o.describe(), "ocr:p99_ms <= 6");
        assert_eq!(objectives(&asked, None).unwrap().0, asked);
        meta.scenario.slo = vec!["p98_ms <= 5".into()];
        let e = objectives(&asked, Some(&meta)).unwrap_err().to_string();
        assert!(
            e.contains("`p98_ms <= 5` cannot be read")
                && e.contains("give the objectives with --slo"),
            "{e}"
        );
    }

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
            realtime: None,
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
