//! `summary.md`: the verdicts as a GitHub-flavoured Markdown table, for a CI job's summary page
//! (`cat summary.md >> "$GITHUB_STEP_SUMMARY"`).

use std::fmt::Write as _;

use super::console::human_us;
use super::json::RunInfo;
use super::view::{View, date};

/// A table cell: pipes and line breaks would end the cell or the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// One line naming what produced the results.
pub fn meta_line(meta: &RunInfo) -> String {
    let s = &meta.scenario;
    let mut parts = Vec::new();
    parts.push(format!(
        "scenario `{}`{}, seed {}",
        s.name,
        match s.sha256.get(..12) {
            Some(short) => format!(" (sha256 {short}…)"),
            None => String::new(),
        },
        s.seed
    ));
    parts.push(format!(
        "bench {} (commit {})",
        meta.bench_version, meta.git_commit
    ));
    parts.push(format!("ONNX Runtime {}", meta.ort_version));
    parts.push(format!(
        "{}: {}, {} logical cores",
        meta.host.hostname, meta.host.cpu_model, meta.host.logical_cores
    ));
    parts.push(format!("started {}", date(Some(meta.started_unix_s))));
    if meta.interrupted {
        parts.push("**interrupted**".into());
    }
    parts.join(" · ")
}

/// The whole summary.
pub fn markdown(r: &View) -> String {
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
        let r = View {
            dir: "reports/x".into(),
            rows: vec![
                all(0, "w1-c1", 100.0, true, ""),
                all(1, "w2-c1", 900.0, false, "SLO missed: p99_ms | 3 > 2"),
                all(2, "w2-c4", 400.0, true, ""),
            ],
            meta: Some(crate::report::view::tests::run_info()),
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
