//! `summary.md`: the verdicts as a GitHub-flavoured Markdown table, for a CI job's summary page
//! (`cat summary.md >> "$GITHUB_STEP_SUMMARY"`).

use std::fmt::Write as _;

use serde_json::Value;

use super::console::human_us;
use super::html::{Results, date, meta_str};

/// A table cell: pipes and line breaks would end the cell or the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// One line naming what produced the results.
pub fn meta_line(meta: &Value) -> String {
    let s = |p: &str| meta_str(meta, p);
    let mut parts = Vec::new();
    let sha = s("/scenario/sha256");
    parts.push(format!(
        "scenario `{}`{}, seed {}",
        s("/scenario/name"),
        if sha.len() >= 12 {
            format!(" (sha256 {}…)", &sha[..12])
        } else {
            String::new()
        },
        s("/scenario/seed")
    ));
    parts.push(format!(
        "bench {} (commit {})",
        s("/bench_version"),
        s("/git_commit")
    ));
    parts.push(format!("ONNX Runtime {}", s("/ort_version")));
    parts.push(format!(
        "{}: {}, {} logical cores",
        s("/host/hostname"),
        s("/host/cpu_model"),
        s("/host/logical_cores")
    ));
    let started = date(meta.pointer("/started_unix_s").and_then(Value::as_u64));
    if !started.is_empty() {
        parts.push(format!("started {started}"));
    }
    if meta.pointer("/interrupted") == Some(&Value::Bool(true)) {
        parts.push("**interrupted**".into());
    }
    parts.join(" · ")
}

/// The whole summary.
pub fn markdown(r: &Results) -> String {
    let alls: Vec<_> = r.alls().collect();
    let valid = alls.iter().filter(|a| a.valid).count();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## bench: `{}`: {} point(s), {valid} valid\n",
        r.name(),
        alls.len()
    );
    if let Some(meta) = &r.meta {
        let _ = writeln!(md, "{}\n", meta_line(meta));
    }
    for note in &r.notes {
        let _ = writeln!(md, "> Note: {}\n", cell(note));
    }
    if alls.is_empty() {
        md.push_str("No point has finished: results.csv has no rows.\n");
        return md;
    }
    match r.best() {
        Some(b) => {
            let _ = writeln!(
                md,
                "**Best valid point by throughput:** `{}`: {:.0} requests/s, p50 {}, p99 {}.\n",
                b.point_id,
                b.throughput_rps,
                human_us(b.latency_p50_us),
                human_us(b.latency_p99_us)
            );
        }
        None => md.push_str("**No point is valid.**\n\n"),
    }
    md.push_str("| # | point | valid | reason | SLO met | requests/s | p50 | p99 | p99.9 |\n");
    md.push_str("|---:|---|---|---|---|---:|---:|---:|---:|\n");
    for a in alls {
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {:.0} | {} | {} | {} |",
            a.point,
            cell(&a.point_id),
            if a.valid { "yes" } else { "**no**" },
            cell(&super::point_reason(&r.rows, a)),
            a.slo_met.map_or("", |m| if m { "yes" } else { "no" }),
            a.throughput_rps,
            human_us(a.latency_p50_us),
            human_us(a.latency_p99_us),
            human_us(a.latency_p999_us)
        );
    }
    md.push_str("\nCharts: `report.html` in the results folder.\n");
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Row;

    fn all(point: usize, id: &str, rps: f64, valid: bool, reason: &str) -> Row {
        Row {
            point,
            point_id: id.into(),
            model: "all".into(),
            kind: "all".into(),
            throughput_rps: rps,
            latency_p50_us: 500.0,
            latency_p99_us: 2_500.0,
            latency_p999_us: 9_000.0,
            valid,
            reason: reason.into(),
            slo_met: Some(valid),
            ..Row::default()
        }
    }

    #[test]
    fn the_summary_has_a_table_row_per_point_and_the_best_valid_one() {
        let r = Results {
            dir: "reports/x".into(),
            rows: vec![
                all(0, "w1-c1", 100.0, true, ""),
                all(1, "w2-c1", 900.0, false, "SLO missed: p99_ms | 3 > 2"),
                all(2, "w2-c4", 400.0, true, ""),
            ],
            meta: Some(serde_json::json!({
                "scenario": { "name": "demo", "sha256": "0123456789abcdef0123", "seed": 42 },
                "bench_version": "0.1.0", "git_commit": "abc1234", "ort_version": "1.31.1",
                "host": { "hostname": "h", "cpu_model": "EPYC", "logical_cores": 2 },
                "started_unix_s": 86400,
            })),
            spectra: Vec::new(),
            notes: Vec::new(),
        };
        let md = markdown(&r);
        assert!(
            md.starts_with("## bench: `demo`: 3 point(s), 2 valid\n"),
            "{md}"
        );
        assert!(
            md.contains(
                "scenario `demo` (sha256 0123456789ab…), seed 42 · bench 0.1.0 (commit abc1234) · \
                 ONNX Runtime 1.31.1 · h: EPYC, 2 logical cores · started 1970-01-02T00:00:00Z"
            ),
            "{md}"
        );
        // The faster point is invalid, so the best is the fastest valid one.
        assert!(md.contains("**Best valid point by throughput:** `w2-c4`: 400 requests/s, p50 500 µs, p99 2.50 ms."), "{md}");
        assert!(md.contains("| 1 | `w2-c1` | **no** | SLO missed: p99_ms \\| 3 > 2 | no | 900 | 500 µs | 2.50 ms | 9.00 ms |"), "{md}");
        let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(
            table.len(),
            2 + 3,
            "header, separator and one row per point"
        );
        assert!(
            table
                .iter()
                .all(|l| l.matches('|').count() - l.matches("\\|").count() == 10),
            "ten cell borders per line: {table:?}"
        );
    }
}
