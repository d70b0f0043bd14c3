//! How a comparison reads: the one-line headline, the notes on its noise, the console table,
//! the Markdown for a CI job's summary and the JSON for benchmark dashboards. The comparison
//! itself (`mod.rs`) decides every verdict; this file only says them. The same JSON of one run,
//! with no baseline, is what `sweep`, `run` and `report` write beside `results.csv`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{Change, Comparison, Metric, Noise, Verdict};
use crate::report::{Row, results::Results, write_atomic};

use crate::report::outdir::{BIGGER_FILE, SMALLER_FILE};

/// The metrics of a run's benchmark JSON: those `bench compare` compares by default.
const RUN_METRICS: [Metric; 3] = [Metric::Throughput, Metric::P50, Metric::P99];

/// One run's numbers in the JSON that github-action-benchmark reads, as
/// [`Comparison::benchmark_json`] writes a candidate's, without a baseline: with `bigger`,
/// throughput (requests/s); otherwise p50 and p99 (µs). One entry per row (each point's models
/// and `all`) and metric, named `POINT/MODEL/METRIC`, the trials' range as `range` where the row
/// has one, and the verdict as `extra`. A row with no successful request has no latency: left out.
pub(crate) fn run_benchmark_json(rows: &[Row], bigger: bool) -> String {
    let mut entries: Vec<serde_json::Value> = Vec::new();
    for r in rows {
        for m in RUN_METRICS
            .iter()
            .filter(|m| (**m == Metric::Throughput) == bigger)
        {
            let value = m.value(r);
            if !value.is_finite() || (!bigger && r.requests == 0) {
                continue;
            }
            let range = match m.row_range(r) {
                Some((low, high)) if r.trials > 1 => {
                    format!("{} … {}", m.format(low), m.format(high))
                }
                _ => String::new(),
            };
            let verdict = if r.valid {
                "valid".to_string()
            } else {
                format!("INVALID: {}", r.reason)
            };
            entries.push(serde_json::json!({
                "name": format!("{}/{}/{}", r.point_id, r.model, m.name()),
                "unit": if bigger { "req/s" } else { "us" },
                "value": (value * 1000.0).round() / 1000.0,
                "range": range,
                "extra": format!("{} trial(s); {verdict}", r.trials),
            }));
        }
    }
    serde_json::to_string_pretty(&entries).unwrap_or_default() + "\n"
}

/// Writes [`SMALLER_FILE`] and [`BIGGER_FILE`] from the `results.csv` in `dir`; returns their paths.
pub(crate) fn write_run_benchmark_json(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let results = Results::open(dir)?;
    let mut paths = Vec::new();
    for (file, bigger) in [(SMALLER_FILE, false), (BIGGER_FILE, true)] {
        let path = dir.join(file);
        write_atomic(&path, run_benchmark_json(&results.rows, bigger).as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

impl Comparison {
    /// One line: the counts of each verdict, and the rows added and missing.
    pub(crate) fn headline(&self) -> String {
        let n = |v| self.count(v);
        let plural =
            |k: usize, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
        let rows: HashSet<(&str, &str)> = self
            .changes
            .iter()
            .map(|c| (c.point_id.as_str(), c.model.as_str()))
            .collect();
        format!(
            "{}, {}, {} unchanged ({} within the threshold, {} within the noise) over {} matched; {} added, {} missing",
            plural(n(Verdict::Regression), "regression", "regressions"),
            plural(n(Verdict::Improvement), "improvement", "improvements"),
            n(Verdict::WithinThreshold) + n(Verdict::WithinNoise),
            n(Verdict::WithinThreshold),
            n(Verdict::WithinNoise),
            plural(rows.len(), "row", "rows"),
            plural(self.added.len(), "row", "rows"),
            self.missing.len(),
        )
    }

    /// Sentences about the noise band: where there was none, only the threshold applied.
    pub(crate) fn noise_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let single = self
            .changes
            .iter()
            .filter(|c| matches!(c.noise, Noise::Interval { trials: 1, .. }))
            .count();
        if single > 0 {
            notes.push(format!(
                "{single} interval(s) come from 1 trial a side: they hold the requests' sampling \
                 noise, not the drift between runs. Set `trials = 3` (or more) under [workload] \
                 for intervals that do."
            ));
        }
        let one_trial = self
            .changes
            .iter()
            .filter(|c| c.noise == Noise::OneTrial)
            .count();
        if one_trial == self.changes.len() && one_trial > 0 {
            notes.push(format!(
                "No noise band: each side measured 1 trial per point, so only the {}% threshold applies. \
                 Set `trials = 3` (or more) under [workload] to measure one.",
                self.threshold_pct
            ));
        } else if one_trial > 0 {
            notes.push(format!(
                "{one_trial} comparison(s) have no noise band (1 trial on both sides): only the {}% threshold applies to them.",
                self.threshold_pct
            ));
        }
        let mut unrecorded: Vec<&str> = self
            .changes
            .iter()
            .filter(|c| c.noise == Noise::NotRecorded)
            .map(|c| c.metric.name())
            .collect();
        unrecorded.dedup();
        let unrecorded: Vec<&str> = unrecorded
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !unrecorded.is_empty() {
            notes.push(format!(
                "No trial range recorded for {}: results.csv keeps one for throughput and p99 only, and \
                 no hlog/ folder was beside it. Only the {}% threshold applies to {}. Compare results \
                 directories (with their hlog/) to get one.",
                unrecorded.join(", "),
                self.threshold_pct,
                if unrecorded.len() == 1 { "it" } else { "them" }
            ));
        }
        notes
    }

    /// The changes to show: every one with `all`, otherwise regressions and improvements.
    fn shown(&self, all: bool) -> Vec<&Change> {
        let mut v: Vec<&Change> = self
            .changes
            .iter()
            .filter(|c| all || matches!(c.verdict, Verdict::Regression | Verdict::Improvement))
            .collect();
        // Regressions first, then improvements, then the rest; stable within each.
        v.sort_by_key(|c| c.verdict);
        v
    }

    /// The console report: a table (regressions and improvements, or everything with `all`), the
    /// notes and the headline.
    pub(crate) fn render(&self, all: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "baseline:  {}\ncandidate: {}\nthreshold {}%, metrics {}",
            self.baseline.display(),
            self.candidate.display(),
            self.threshold_pct,
            self.metric_names()
        );
        if !self.differences.is_empty() {
            let _ = writeln!(
                out,
                "WARNING: the runs differ, so their numbers may not be comparable:\n  {}",
                self.differences.join("\n  ")
            );
        }
        let shown = self.shown(all);
        if !shown.is_empty() {
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header(HEADER);
            for c in &shown {
                t.add_row(cells(c));
            }
            let _ = writeln!(out, "{t}");
        }
        let hidden = self.changes.len() - shown.len();
        if hidden > 0 {
            let _ = writeln!(
                out,
                "{hidden} unchanged comparison(s) not shown (--all shows every one)"
            );
        }
        for (what, list) in [("added", &self.added), ("missing", &self.missing)] {
            if !list.is_empty() {
                let _ = writeln!(out, "{what} (not compared): {}", row_list(list));
            }
        }
        for n in self.noise_notes() {
            let _ = writeln!(out, "note: {n}");
        }
        let _ = writeln!(out, "{}", self.headline());
        out
    }

    /// Markdown for a CI job summary: the headline, the regressions and improvements, notes, and
    /// every comparison in a collapsed section.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let regressions = self.count(Verdict::Regression);
        let _ = writeln!(
            out,
            "## bench compare: {}\n",
            if regressions == 0 {
                "no regression".to_string()
            } else {
                format!(
                    "{regressions} regression{}",
                    if regressions == 1 { "" } else { "s" }
                )
            }
        );
        let _ = writeln!(
            out,
            "Baseline `{}`, candidate `{}`. A change counts when it is worse (or better) than both the \
             {}% threshold (and {} µs for a latency) and the noise band measured by the trials. Metrics: {}.\n",
            self.baseline.display(),
            self.candidate.display(),
            self.threshold_pct,
            self.min_change_us,
            self.metric_names()
        );
        let _ = writeln!(out, "{}\n", self.headline());
        if !self.differences.is_empty() {
            let _ = writeln!(
                out,
                "> **The runs differ**, so their numbers may not be comparable:\n"
            );
            for d in &self.differences {
                let _ = writeln!(out, "> - {}", md_escape(d));
            }
            out.push('\n');
        }
        for n in self.noise_notes() {
            let _ = writeln!(out, "> {n}\n");
        }
        let shown = self.shown(false);
        if !shown.is_empty() {
            let _ = writeln!(out, "{}", markdown_table(&shown));
        }
        for (what, list) in [("Added", &self.added), ("Missing", &self.missing)] {
            if !list.is_empty() {
                let _ = writeln!(
                    out,
                    "{what} rows (not compared): {}\n",
                    md_escape(&row_list(list))
                );
            }
        }
        let every: Vec<&Change> = self.changes.iter().collect();
        let _ = writeln!(
            out,
            "<details><summary>All {} comparisons</summary>\n\n{}\n</details>",
            every.len(),
            markdown_table(&every)
        );
        out
    }

    /// The candidate's numbers in the JSON that github-action-benchmark reads: with `bigger`,
    /// throughput (tool `customBiggerIsBetter`, requests/s); otherwise the latency metrics (tool
    /// `customSmallerIsBetter`, µs). One entry per point, model and metric, named
    /// `POINT/MODEL/METRIC`, its interval or band as `range` and the verdict in `extra`.
    pub(crate) fn benchmark_json(&self, bigger: bool) -> String {
        let entries: Vec<serde_json::Value> = self
            .changes
            .iter()
            .filter(|c| (c.metric == Metric::Throughput) == bigger)
            .map(|c| {
                let range = match c.noise {
                    Noise::Interval { low, high, .. } => format!("{low:+.1}% … {high:+.1}%"),
                    Noise::Measured(w) => format!("± {:.1}%", w / 2.0),
                    Noise::OneTrial | Noise::NotRecorded => String::new(),
                };
                serde_json::json!({
                    "name": format!("{}/{}/{}", c.point_id, c.model, c.metric.name()),
                    "unit": if bigger { "req/s" } else { "us" },
                    "value": (c.candidate * 1000.0).round() / 1000.0,
                    "range": range,
                    "extra": format!(
                        "baseline {}; change {}; {}",
                        c.metric.format(c.baseline),
                        c.change_pct.map_or_else(|| "n/a".into(), |p| format!("{p:+.1}%")),
                        c.verdict.name()
                    ),
                })
            })
            .collect();
        serde_json::to_string_pretty(&entries).unwrap_or_default() + "\n"
    }

    fn metric_names(&self) -> String {
        self.metrics
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

const HEADER: [&str; 8] = [
    "point",
    "model",
    "metric",
    "baseline",
    "candidate",
    "change",
    "95% interval / noise band",
    "verdict",
];

fn cells(c: &Change) -> Vec<String> {
    let mut verdict = c.verdict.name().to_string();
    if !c.note.is_empty() {
        verdict.push_str(&format!(" ({})", c.note));
    }
    vec![
        c.point_id.clone(),
        c.model.clone(),
        c.metric.name().into(),
        c.metric.format(c.baseline),
        c.metric.format(c.candidate),
        c.change_pct
            .map_or_else(|| "n/a".into(), |p| format!("{p:+.1}%")),
        match (c.noise, c.runs_band) {
            (Noise::Interval { low, high, .. }, Some(r)) => format!(
                "{low:+.1}% … {high:+.1}%; {} runs {:+.1}% … {:+.1}%",
                r.runs, r.low, r.high
            ),
            (_, Some(r)) => format!("{} runs {:+.1}% … {:+.1}%", r.runs, r.low, r.high),
            (Noise::Interval { low, high, .. }, None) => format!("{low:+.1}% … {high:+.1}%"),
            (Noise::Measured(w), None) => format!("band {w:.1}%"),
            (Noise::OneTrial, None) => "none (1 trial)".into(),
            (Noise::NotRecorded, None) => "not recorded".into(),
        },
        verdict,
    ]
}

fn markdown_table(changes: &[&Change]) -> String {
    let mut out = format!("| {} |\n|", HEADER.join(" | "));
    for _ in HEADER {
        out.push_str("---|");
    }
    out.push('\n');
    for c in changes {
        let mut cells = cells(c);
        if c.verdict == Verdict::Regression {
            cells[7] = format!("**{}**", cells[7]);
        }
        let cells: Vec<String> = cells.iter().map(|s| md_escape(s)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn row_list(list: &[(String, String)]) -> String {
    list.iter()
        .map(|(p, m)| format!("{p}/{m}"))
        .collect::<Vec<_>>()
        .join(", ")
}
