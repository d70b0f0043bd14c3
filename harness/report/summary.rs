//! `summary.md`: the verdicts as a GitHub-flavoured Markdown table, for a CI job's summary page
//! (`cat summary.md >> "$GITHUB_STEP_SUMMARY"`).

use std::fmt::Write as _;

use super::choose::Verdict;
use super::console::{self, human_us};
use super::json::RunInfo;
use super::view::{View, date};

/// A table cell: pipes and line breaks would end the cell or the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// One line naming what produced the results.
pub(crate) fn meta_line(meta: &RunInfo) -> String {
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

/// The recommendation: the objectives, the recommended point (or that none meets them), and each
/// point's verdict beside its memory, cold starts, CPU steal and oversubscription.
fn recommendation(md: &mut String, r: &View) {
    let c = &r.choice;
    let objectives: Vec<String> = c
        .objectives
        .describe()
        .split(", ")
        .map(|o| format!("`{o}`"))
        .collect();
    match c.chosen() {
        Some(p) => {
            let _ = writeln!(
                md,
                "**Recommended:** {} `{}`: {}.\n",
                p.tag(),
                cell(&p.point_id),
                console::judged(p)
            );
        }
        None => md.push_str("**No point meets every objective.**\n\n"),
    }
    let _ = writeln!(
        md,
        "Objectives (from {}): {}. Latency objectives count cold starts.\n",
        console::objectives_source(r.scenario_slo),
        objectives.join(", ")
    );
    md.push_str(
        "| # | point | requests/s | p99 (cold starts counted) | memory | cold starts | CPU steal \
         | oversubscribed | verdict |\n",
    );
    md.push_str("|---:|---|---:|---:|---:|---|---:|---|---|\n");
    for p in &c.points {
        let verdict = match &p.verdict {
            Verdict::Chosen => "**recommended**".to_string(),
            v => cell(&v.to_string()),
        };
        let _ = writeln!(
            md,
            "| {} | `{}` | {:.0} | {} | {:.0} MiB | {} | {} | {} | {verdict} |",
            p.point,
            cell(&p.point_id),
            p.throughput_rps,
            human_us(p.measured.p99_us),
            p.rss_mib,
            console::cold_starts(p),
            console::steal(p.cpu_steal_pct),
            if p.oversubscribed { "yes" } else { "no" }
        );
    }
    md.push('\n');
}

/// The whole summary.
pub(crate) fn markdown(r: &View) -> String {
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
    if r.recommends() {
        recommendation(&mut md, r);
    }
    match r.best() {
        // The recommendation above says which point to run.
        _ if r.recommends() => {}
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
    md.push_str(
        "| # | point | valid | reason | SLO met | requests/s | p50 | p99 | p99.9 | cold starts \
         | CPU steal | oversubscribed |\n",
    );
    md.push_str("|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|---|\n");
    for a in alls {
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            a.point,
            cell(&a.point_id),
            if a.valid { "yes" } else { "**no**" },
            cell(&super::point_reason(&r.rows, a)),
            a.slo_met.map_or("", |m| if m { "yes" } else { "no" }),
            a.throughput_rps,
            console::latency(a, a.latency_p50_us),
            console::latency(a, a.latency_p99_us),
            console::latency(a, a.latency_p999_us),
            a.cold_starts,
            console::steal(a.cpu_steal_pct),
            if a.oversubscribed { "yes" } else { "no" }
        );
    }
    md.push_str("\nCharts: `report.html` in the results folder.\n");
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Row;
    use crate::report::choose::Objectives;

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
            requests: 1_000,
            ..Row::default()
        }
    }

    /// Regression (issue 24): a point with no successful request showed `0 µs` percentiles.
    #[test]
    fn a_point_with_no_success_has_no_latency() {
        let mut failed = all(0, "w1-c1", 0.0, false, "109 failed request(s)");
        (failed.requests, failed.errors) = (0, 109);
        let md = markdown(&crate::report::view::tests::view(
            vec![failed],
            &Objectives::default(),
        ));
        assert!(md.contains("| 0 | – | – | – |"), "{md}");
    }

    #[test]
    fn the_summary_has_a_table_row_per_point_and_the_best_valid_one() {
        let r = crate::report::view::tests::view(
            vec![
                all(0, "w1-c1", 100.0, true, ""),
                all(1, "w2-c1", 900.0, false, "SLO missed: p99_ms | 3 > 2"),
                all(2, "w2-c4", 400.0, true, ""),
            ],
            &Objectives::default(),
        );
        let md = markdown(&r);
        assert!(
            !md.contains("Recommended"),
            "no objectives, no recommendation: {md}"
        );
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
        assert!(md.contains("| 1 | `w2-c1` | **no** | SLO missed: p99_ms \\| 3 > 2 | no | 900 | 500 µs | 2.50 ms | 9.00 ms | 0 |  | no |"), "{md}");
        let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(
            table.len(),
            2 + 3,
            "header, separator and one row per point"
        );
        assert!(
            table
                .iter()
                .all(|l| l.matches('|').count() - l.matches("\\|").count() == 13),
            "thirteen cell borders per line: {table:?}"
        );
    }

    #[test]
    fn the_summary_leads_with_the_recommendation() {
        let mut steal = all(1, "w2-c4", 900.0, true, "");
        steal.cpu_steal_pct = Some(4.25);
        steal.oversubscribed = true;
        steal.latency_p99_us = 7_210.0;
        steal.rss_mib = 812.0;
        let mut cold = all(2, "w2-c8", 400.0, true, "");
        cold.cold_starts = 7;
        cold.requests = 10_000;
        cold.trials = 1;
        cold.cold_start_p99_ms = Some(950.0);
        cold.cold_start_max_ms = Some(966.0);
        cold.rss_mib = 412.0;
        // Without a log, p99 with 7 cold starts among 10,000 requests is read from p99.9.
        cold.latency_p999_us = 3_000.0;
        let r = crate::report::view::tests::view(
            vec![
                all(0, "w1-c1", 100.0, false, "3 failed request(s)"),
                steal,
                cold,
            ],
            &Objectives {
                slo: vec![crate::scenario::slo::parse_objective("p99_ms<=6").unwrap()],
                max_rss_mib: None,
            },
        );
        let md = markdown(&r);
        let lead = md.find("**Recommended:**").expect("a recommendation");
        assert!(
            lead < md.find("| # |").unwrap(),
            "it comes before every table: {md}"
        );
        assert!(
            md.contains(
                "**Recommended:** #2 `w2-c8`: 400 req/s, p99 3.00 ms, 412 MiB, 7 cold starts (p99 \
                 950.00 ms, max 966.00 ms).\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("Objectives (from the command line): `p99_ms <= 6`."),
            "{md}"
        );
        assert!(
            md.contains(
                "| 1 | `w2-c4` | 900 | 7.21 ms | 812 MiB | none | 4.2% | yes | misses p99_ms <= 6: \
                 7.21 ms, 1.21 ms over (+20%) |"
            ),
            "{md}"
        );
        assert!(md.contains("| no | invalid: 3 failed request(s) |"), "{md}");
        assert!(
            !md.contains("Best valid point"),
            "the recommendation replaces it: {md}"
        );
        let mut big = all(0, "w1-c1", 100.0, true, "");
        big.rss_mib = 10.0;
        let none = crate::report::view::tests::view(
            vec![big],
            &Objectives {
                slo: Vec::new(),
                max_rss_mib: Some(5.0),
            },
        );
        assert!(markdown(&none).contains("**No point meets every objective.**"));
    }
}
