//! The summary table printed when a sweep ends: one line per point (its `all` row), with human
//! units; and the recommendation `bench report` prints.

use std::fmt::Write as _;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::Row;
use super::choose::{Choice, Judged};

/// Formats microseconds for people: µs below 1 ms, ms below 1 s, s above.
pub(crate) fn human_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

/// A judged point in a few words: `812 req/s, p99 5.21 ms, 412 MiB`, then its cold starts when it
/// had any: `, 7 cold starts (p99 950 ms, max 966 ms)`. The p99 counts the cold starts.
pub(crate) fn judged(p: &Judged) -> String {
    let mut s = format!(
        "{:.0} req/s, p99 {}, {:.0} MiB",
        p.throughput_rps,
        human_us(p.measured.p99_us),
        p.rss_mib
    );
    if p.cold_starts > 0 {
        let _ = write!(s, ", {}", cold_starts(p));
    }
    s
}

/// `7 cold starts (p99 950 ms, max 966 ms)`, or `none`.
pub(crate) fn cold_starts(p: &Judged) -> String {
    if p.cold_starts == 0 {
        return "none".into();
    }
    let ms = |v: Option<f64>| v.map_or_else(|| "?".into(), |ms| human_us(ms * 1e3));
    format!(
        "{} cold start{} (p99 {}, max {})",
        p.cold_starts,
        if p.cold_starts == 1 { "" } else { "s" },
        ms(p.cold_p99_ms),
        ms(p.cold_max_ms)
    )
}

/// CPU steal (`cpu_steal_pct`) for a table cell: `1.2%`, empty where the kernel did not say.
pub(crate) fn steal(pct: Option<f64>) -> String {
    pct.map_or_else(String::new, |p| format!("{p:.1}%"))
}

/// Where a report's objectives come from, in words.
pub(crate) fn objectives_source(scenario_slo: bool) -> &'static str {
    if scenario_slo {
        "the scenario's slo"
    } else {
        "the command line"
    }
}

/// The recommendation `bench report` prints: the objectives, the recommended point (or that none
/// meets them), then why each other point lost.
pub(crate) fn recommendation(c: &Choice, scenario_slo: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "objectives: {} (from {}; latency objectives count cold starts)",
        c.objectives.describe(),
        objectives_source(scenario_slo)
    );
    match c.chosen() {
        Some(p) => {
            let _ = writeln!(s, "recommended: {} {}: {}", p.tag(), p.point_id, judged(p));
        }
        None => s.push_str("recommended: none: no point meets every objective\n"),
    }
    for p in c
        .points
        .iter()
        .filter(|p| Some(p.point) != c.chosen().map(|c| c.point))
    {
        let _ = writeln!(s, "  {} {}: {}", p.tag(), p.point_id, p.verdict);
    }
    s
}

/// The summary table of the `all` rows: one line per point; the point id names its workers,
/// threads, transfer and provider. A sweep with the `batch` axis gets a `samples/s` column beside
/// `req/s`. `cores` is `cores_used`: what the point's throughput cost in CPU (empty where unknown).
pub(crate) fn summary(rows: &[Row]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    let batched = rows
        .iter()
        .any(|r| r.model == "all" && r.throughput_samples_s.is_some());
    let mut header = vec!["point", "load", "req/s"];
    if batched {
        header.push("samples/s");
    }
    header.extend([
        "p50",
        "p99",
        "p99.9",
        "compute p50",
        "errors",
        "RSS MiB",
        "cores",
        "verdict",
    ]);
    t.set_header(header);
    for r in rows.iter().filter(|r| r.model == "all") {
        let mut cells = vec![
            r.point_id.clone(),
            match (r.concurrency, r.rate_rps) {
                (Some(c), _) => format!("{c} in flight"),
                (None, Some(rate)) => format!("{rate} req/s"),
                _ => String::new(),
            },
            format!("{:.0}", r.throughput_rps),
        ];
        if batched {
            cells.push(
                r.throughput_samples_s
                    .map_or_else(String::new, |s| format!("{s:.0}")),
            );
        }
        cells.extend([
            human_us(r.latency_p50_us),
            human_us(r.latency_p99_us),
            human_us(r.latency_p999_us),
            human_us(r.compute_p50_us),
            r.errors.to_string(),
            format!("{:.0}", r.rss_mib),
            r.cores_used.map_or_else(String::new, |c| format!("{c:.2}")),
            verdict(rows, r),
        ]);
        t.add_row(cells);
    }
    t.to_string()
}

/// The verdict of point `all`, naming the models its runtime could not run (their rows are
/// invalid while the point measured the rest).
fn verdict(rows: &[Row], all: &Row) -> String {
    if all.valid {
        let left_out = super::left_out(rows, all);
        if left_out.is_empty() {
            "valid".to_string()
        } else {
            format!("valid; {left_out}")
        }
    } else {
        format!("INVALID: {}", super::point_reason(rows, all))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_names_the_models_a_runtime_left_out() {
        let row = |model: &str, kind: &str, valid: bool, reason: &str| Row {
            point_id: "p-tract".into(),
            runtime: "tract".into(),
            model: model.into(),
            kind: kind.into(),
            valid,
            reason: reason.into(),
            ..Row::default()
        };
        let rows = [
            row("mlp", "model", true, ""),
            row("det", "model", false, "unsupported by tract: no Det"),
            row("all", "all", true, ""),
        ];
        assert_eq!(verdict(&rows, &rows[2]), "valid; unsupported by tract: det");
        assert_eq!(verdict(&rows[..1], &rows[0]), "valid");
        let table = summary(&rows);
        assert!(table.contains("unsupported by tract: det"), "{table}");
    }

    #[test]
    fn a_batch_sweep_shows_samples_per_second() {
        let row = |batch: Option<usize>| Row {
            point_id: "p".into(),
            model: "all".into(),
            kind: "all".into(),
            valid: true,
            throughput_rps: 100.0,
            batch,
            throughput_samples_s: batch.map(|b| 100.0 * b as f64),
            cores_used: Some(1.256),
            ..Row::default()
        };
        let table = summary(&[row(Some(8))]);
        assert!(
            table.contains("samples/s") && table.contains("800"),
            "{table}"
        );
        assert!(!summary(&[row(None)]).contains("samples/s"));
        assert!(table.contains("cores") && table.contains("1.26"), "{table}");
    }

    #[test]
    fn human_units() {
        assert_eq!(human_us(12.4), "12 µs");
        assert_eq!(human_us(1_500.0), "1.50 ms");
        assert_eq!(human_us(2_500_000.0), "2.50 s");
    }
}
