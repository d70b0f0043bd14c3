//! `report.html` and `summary.md`: what people look at after a sweep. [`render`] reads a results
//! directory (`results.csv`, `run.json`, `hlog/*.hlog`) and writes one self-contained HTML page,
//! with inline SVG charts and no script, font or style fetched from anywhere, and a Markdown
//! summary for CI job pages (`$GITHUB_STEP_SUMMARY`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use super::console::human_us;
use super::plots::{self, BarMetric, Spectrum};
use super::{Row, hlog, summary, write_atomic};

/// The file names [`render`] writes into the results directory.
pub const HTML_FILE: &str = "report.html";
pub const SUMMARY_FILE: &str = "summary.md";

/// A results directory, read back.
pub struct Results {
    pub dir: PathBuf,
    pub rows: Vec<Row>,
    /// `run.json`, when present and readable.
    pub meta: Option<Value>,
    /// Per point with a histogram log: its id and the spectrum of `all.latency`.
    pub spectra: Vec<(String, Spectrum)>,
    /// What could not be read, said on the page and on stderr.
    pub notes: Vec<String>,
}

impl Results {
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
            .and_then(|m| m.pointer("/scenario/name"))
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| {
                self.dir
                    .file_name()
                    .map_or("results".into(), |n| n.to_string_lossy().into_owned())
            })
    }
}

/// Reads a results directory. `results.csv` is required; a missing or unreadable `run.json` or
/// histogram log only leaves its part out, with a note.
pub fn load(dir: &Path) -> anyhow::Result<Results> {
    let csv_path = dir.join("results.csv");
    anyhow::ensure!(
        csv_path.is_file(),
        "{} does not exist: give `bench report` the folder a `bench sweep --out DIR` wrote",
        csv_path.display()
    );
    let rows = super::csv::CsvReport::resume(&csv_path)?.rows().to_vec();
    let mut notes = Vec::new();
    let json_path = dir.join("run.json");
    let meta = match std::fs::read(&json_path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                notes.push(format!(
                    "{} is not valid JSON ({e}): the run's metadata is left out",
                    json_path.display()
                ));
                None
            }
        },
        Err(_) => {
            notes.push(format!(
                "{} is missing: the run's metadata is left out",
                json_path.display()
            ));
            None
        }
    };
    let mut spectra = Vec::new();
    let tag = hlog::tag("all", "latency");
    for id in plots::point_ids(&rows) {
        let path = hlog::path(dir, &id);
        if !path.exists() {
            notes.push(format!(
                "{} is missing: point {id} has no latency spectrum",
                path.display()
            ));
            continue;
        }
        match hlog::read(&path) {
            Ok(entries) => match hlog::totals(&entries).get(&tag) {
                Some(h) => spectra.push((id, plots::spectrum(h))),
                None => notes.push(format!(
                    "{} has no `{tag}` histogram: point {id} has no latency spectrum",
                    path.display()
                )),
            },
            Err(e) => notes.push(format!("{e:#}: point {id} has no latency spectrum")),
        }
    }
    Ok(Results {
        dir: dir.to_path_buf(),
        rows,
        meta,
        spectra,
        notes,
    })
}

/// Writes `report.html` and `summary.md` into `results_dir` and returns their paths. Notes about
/// parts that could not be read go to stderr as warnings.
pub fn render(results_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let results = load(results_dir)?;
    for note in &results.notes {
        eprintln!("warning: report: {note}");
    }
    let html_path = results_dir.join(HTML_FILE);
    let page = html(&results)?;
    write_atomic(&html_path, page.as_bytes())
        .with_context(|| format!("cannot write {}", html_path.display()))?;
    let md_path = results_dir.join(SUMMARY_FILE);
    write_atomic(&md_path, summary::markdown(&results).as_bytes())
        .with_context(|| format!("cannot write {}", md_path.display()))?;
    Ok(vec![html_path, md_path])
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A `run.json` value at a JSON pointer, as text (empty when absent).
pub fn meta_str(meta: &Value, pointer: &str) -> String {
    match meta.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// A Unix time in seconds as an RFC 3339 date (UTC).
pub fn date(unix_s: Option<u64>) -> String {
    unix_s.map_or_else(String::new, |s| {
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s))
            .to_string()
    })
}

/// The run's metadata as labelled lines, in the order the page shows them.
pub fn meta_items(meta: &Value) -> Vec<(&'static str, String)> {
    let s = |p: &str| meta_str(meta, p);
    let mut items = vec![
        ("scenario", s("/scenario/name")),
        ("scenario file", s("/scenario/file")),
        ("scenario SHA-256", s("/scenario/sha256")),
        ("seed", s("/scenario/seed")),
        (
            "started",
            date(meta.pointer("/started_unix_s").and_then(Value::as_u64)),
        ),
        (
            "finished",
            date(meta.pointer("/finished_unix_s").and_then(Value::as_u64)),
        ),
        (
            "points",
            format!(
                "{} of {} done{}",
                s("/points_done"),
                s("/points_total"),
                if meta.pointer("/interrupted") == Some(&Value::Bool(true)) {
                    format!(", interrupted (dropped: {})", s("/dropped_point"))
                } else {
                    String::new()
                }
            ),
        ),
        ("bench", s("/bench_version")),
        ("git commit", s("/git_commit")),
        ("rustc", s("/rustc")),
        ("ONNX Runtime", s("/ort_version")),
        ("ONNX Runtime library", s("/ort_library")),
        ("host", s("/host/hostname")),
        ("CPU", s("/host/cpu_model")),
        ("logical cores", s("/host/logical_cores")),
        ("OS", s("/host/os")),
        ("CPU wake-up latency limit (µs)", s("/cpu_dma_latency_us")),
        (
            "open-loop spin before each send (µs)",
            s("/generator_spin_us"),
        ),
    ];
    if let Some(models) = meta.pointer("/scenario/models").and_then(Value::as_array) {
        for m in models {
            let inputs: Vec<String> = m["inputs"]
                .as_array()
                .into_iter()
                .flatten()
                .zip(m["input_seeds"].as_array().into_iter().flatten())
                .map(|(i, seed)| format!("{} (seed {seed})", i.as_str().unwrap_or_default()))
                .collect();
            let mut line = meta_str(m, "/path");
            if !inputs.is_empty() {
                let _ = write!(line, "; {}", inputs.join(", "));
            }
            items.push(("model", format!("{}: {line}", meta_str(m, "/name"))));
        }
    }
    items.retain(|(_, v)| !v.is_empty());
    items
}

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; color: #222; margin: 2rem auto;
  max-width: 1000px; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9rem; }
th { white-space: nowrap; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td code { white-space: nowrap; }
tr.invalid td { background: #fdecea; } tr.best td { background: #e8f5e9; }
figure { margin: 0.6rem 0; } svg { max-width: 100%; height: auto; }
figcaption, .note { color: #555; font-size: 0.9rem; }
.warn { color: #8a4b00; } code { font-size: 0.9em; }
";

/// The whole page.
pub fn html(r: &Results) -> anyhow::Result<String> {
    let draw = |what: &str, svg: Result<String, Box<dyn std::error::Error>>| {
        svg.map_err(|e| anyhow::anyhow!("cannot draw the {what} chart: {e}"))
    };
    let name = r.name();
    let alls: Vec<&Row> = r.alls().collect();
    let valid = alls.iter().filter(|a| a.valid).count();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>bench report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&name)
    );
    let _ = writeln!(h, "<h1>bench report: {}</h1>", esc(&name));
    let when = r
        .meta
        .as_ref()
        .map(|m| date(m.pointer("/started_unix_s").and_then(Value::as_u64)))
        .unwrap_or_default();
    let _ = writeln!(
        h,
        "<p class=\"sub\">{} point(s), {valid} valid{}</p>",
        alls.len(),
        if when.is_empty() {
            String::new()
        } else {
            format!(", started {}", esc(&when))
        }
    );
    for note in &r.notes {
        let _ = writeln!(h, "<p class=\"note warn\">Note: {}</p>", esc(note));
    }

    // Verdicts.
    h.push_str("<h2 id=\"verdicts\">Verdicts</h2>\n");
    if let Some(best) = r.best() {
        let _ = writeln!(
            h,
            "<p>Highest throughput among valid points: <b>{}</b>, {:.0} requests/s, p50 {}, p99 {}.</p>",
            esc(&best.point_id),
            best.throughput_rps,
            esc(&human_us(best.latency_p50_us)),
            esc(&human_us(best.latency_p99_us))
        );
    } else if !alls.is_empty() {
        h.push_str("<p class=\"warn\">No point is valid.</p>\n");
    }
    if alls.is_empty() {
        h.push_str("<p class=\"warn\">No point has finished: results.csv has no rows.</p>\n");
    } else {
        h.push_str(
            "<table>\n<thead><tr><th>#</th><th>point</th><th>valid</th><th>reason</th>\
             <th>SLO met</th><th>requests/s</th><th>p50</th><th>p99</th><th>p99.9</th></tr></thead>\n<tbody>\n",
        );
        let best_id = r.best().map(|b| b.point_id.clone());
        for a in &alls {
            let class = if !a.valid {
                " class=\"invalid\""
            } else if Some(&a.point_id) == best_id.as_ref() {
                " class=\"best\""
            } else {
                ""
            };
            let _ = writeln!(
                h,
                "<tr{class}><td class=\"n\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>\
                 <td>{}</td><td class=\"n\">{:.0}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td></tr>",
                a.point,
                esc(&a.point_id),
                if a.valid { "yes" } else { "no" },
                esc(&super::point_reason(&r.rows, a)),
                a.slo_met.map_or("", |m| if m { "yes" } else { "no" }),
                a.throughput_rps,
                esc(&human_us(a.latency_p50_us)),
                esc(&human_us(a.latency_p99_us)),
                esc(&human_us(a.latency_p999_us)),
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }

    // Percentile spectra.
    h.push_str("<h2 id=\"spectrum\">Latency by percentile</h2>\n");
    if r.spectra.is_empty() {
        h.push_str("<p class=\"note\">No histogram log to draw.</p>\n");
    } else {
        let _ = writeln!(
            h,
            "<figure>{}<figcaption>Latency of all requests (every trial together, from \
             <code>hlog/&lt;point&gt;.hlog</code>, tag <code>all.latency</code>) at each percentile, \
             one line per point. The x axis spreads the tail: 90%, 99%, 99.9% are equally far \
             apart. Each line ends at its maximum, drawn at the highest percentile its number of \
             requests can tell apart.</figcaption></figure>",
            draw("percentile", plots::spectrum_svg(&r.spectra))?
        );
    }

    // Throughput against p99.
    h.push_str("<h2 id=\"throughput\">Throughput against p99 latency</h2>\n");
    let curves = plots::curves(&r.rows);
    if curves.is_empty() {
        h.push_str("<p class=\"note\">No point to draw.</p>\n");
    } else {
        let _ = writeln!(
            h,
            "<figure>{}<figcaption>Each curve joins points that differ only in the worker count \
             (or, with one worker count, in the load); each marker is labelled with that value. \
             Down and to the right is better. Hollow markers are invalid points.</figcaption></figure>",
            draw("throughput", plots::curves_svg(&curves))?
        );
    }

    // Per model.
    h.push_str("<h2 id=\"models\">Per model</h2>\n");
    let (points, bars) = plots::model_bars(&r.rows);
    if bars.is_empty() {
        h.push_str("<p class=\"note\">No model rows with requests.</p>\n");
    } else {
        let _ = writeln!(
            h,
            "<figure>{}<figcaption>Latency of each model and ensemble group at each point: p50 is \
             the dark bar, p99 the light bar behind it (log axis).</figcaption></figure>\n\
             <figure>{}<figcaption>Completed requests per second of each model and group at each \
             point.</figcaption></figure>",
            draw(
                "per-model latency",
                plots::model_bars_svg(&points, &bars, BarMetric::Latency)
            )?,
            draw(
                "per-model throughput",
                plots::model_bars_svg(&points, &bars, BarMetric::Throughput)
            )?
        );
    }

    // Metadata.
    h.push_str("<h2 id=\"run\">Run</h2>\n");
    match &r.meta {
        Some(meta) => {
            h.push_str("<table>\n<tbody>\n");
            for (k, v) in meta_items(meta) {
                let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
            }
            h.push_str("</tbody>\n</table>\n");
        }
        None => h.push_str("<p class=\"note\">No run.json.</p>\n"),
    }
    let _ = writeln!(
        h,
        "<p class=\"note\">From <code>{}</code>. Written by bench {}.</p>\n</body>\n</html>",
        esc(&r.dir.display().to_string()),
        env!("CARGO_PKG_VERSION")
    );
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn metadata_lines_skip_what_is_absent() {
        let meta = serde_json::json!({
            "bench_version": "0.1.0",
            "git_commit": "abc1234",
            "started_unix_s": 0,
            "points_done": 2, "points_total": 3, "interrupted": true, "dropped_point": "w2",
            "scenario": { "name": "s", "seed": 7, "models": [
                { "name": "mlp", "path": "m.onnx", "inputs": ["x: float32 [1, 64]"], "input_seeds": [99] }
            ] },
            "cpu_dma_latency_us": null,
        });
        let items = meta_items(&meta);
        let get = |k: &str| {
            items
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("seed"), Some("7"));
        assert_eq!(get("started"), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            get("points"),
            Some("2 of 3 done, interrupted (dropped: w2)")
        );
        assert_eq!(
            get("model"),
            Some("mlp: m.onnx; x: float32 [1, 64] (seed 99)")
        );
        assert_eq!(get("CPU wake-up latency limit (µs)"), None);
        assert_eq!(get("host"), None);
    }

    #[test]
    fn a_folder_without_results_is_an_error_that_says_what_to_give() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", render(dir.path()).unwrap_err());
        assert!(
            err.contains("results.csv does not exist") && err.contains("bench sweep --out"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_results_file_still_renders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("results.csv"),
            super::super::csv::to_csv(&[]).unwrap(),
        )
        .unwrap();
        let paths = render(dir.path()).unwrap();
        let page = std::fs::read_to_string(&paths[0]).unwrap();
        assert!(page.contains("No point has finished"), "{page}");
        assert!(page.contains("run.json is missing"), "{page}");
        assert!(
            std::fs::read_to_string(&paths[1])
                .unwrap()
                .contains("No point has finished")
        );
    }
}
