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

/// A latency cell of `row`: [`human_us`], or `–` when the row has no successful request (its
/// percentiles are then 0 in the CSV, which is no latency at all).
pub(crate) fn latency(row: &Row, us: f64) -> String {
    if row.requests == 0 {
        NO_LATENCY.into()
    } else {
        human_us(us)
    }
}

/// What a latency cell shows when nothing succeeded.
pub(crate) const NO_LATENCY: &str = "–";

/// The summary table: one line per point (its `all` row) and, when the scenario has several models
/// (or ensemble groups), one line per model and group above it, since an `all` row mixes models of
/// very different cost (memory and cores, the point's, only on `all`). The point id names its workers, threads, transfer and provider. A sweep
/// with the `batch` axis gets a `samples/s` column beside `req/s`. The load is the id's last part
/// (`c4`: 4 requests in flight; `r500`: 500 req/s). `cores` is `cores_used`: what the point's throughput cost in CPU
/// (empty where unknown).
///
/// The verdict cell is short (`ok`, `INVALID [1]`); the reasons follow the table, numbered, each
/// once with the points it applies to. See [`Notes`].
pub(crate) fn summary(rows: &[Row]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    let alls: Vec<&Row> = rows.iter().filter(|r| r.model == "all").collect();
    let batched = alls.iter().any(|r| r.throughput_samples_s.is_some());
    let per_model = rows.iter().any(|r| r.kind != "all" && r.kind != "model")
        || rows
            .iter()
            .filter(|r| r.kind == "model")
            .map(|r| &r.model)
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1;
    let mut header = vec!["point"];
    if per_model {
        header.push("model");
    }
    header.push("req/s");
    if batched {
        header.push("samples/s");
    }
    header.extend([
        "p50", "p99", "p99.9", "compute", "errors", "RSS MiB", "cores", "verdict",
    ]);
    t.set_header(header);
    let mut notes = Notes::default();
    for all in &alls {
        let members: Vec<&Row> = if per_model {
            rows.iter()
                .filter(|r| r.point_id == all.point_id && r.kind != "all")
                .chain(std::iter::once(*all))
                .collect()
        } else {
            vec![*all]
        };
        for (i, r) in members.iter().enumerate() {
            let mut cells = vec![if i == 0 {
                r.point_id.clone()
            } else {
                String::new()
            }];
            if per_model {
                cells.push(r.model.clone());
            }
            cells.push(format!("{:.0}", r.throughput_rps));
            if batched {
                cells.push(
                    r.throughput_samples_s
                        .map_or_else(String::new, |s| format!("{s:.0}")),
                );
            }
            let reason = if r.kind == "all" {
                super::point_reason(rows, r)
            } else {
                r.reason.clone()
            };
            cells.extend([
                latency(r, r.latency_p50_us),
                latency(r, r.latency_p99_us),
                latency(r, r.latency_p999_us),
                latency(r, r.compute_p50_us),
                r.errors.to_string(),
                // Memory and CPU are the point's, shown once, on its `all` row.
                point_wide(r, format!("{:.0}", r.rss_mib)),
                point_wide(
                    r,
                    r.cores_used.map_or_else(String::new, |c| format!("{c:.2}")),
                ),
                notes.verdict(r.valid, &reason, &r.point_id),
            ]);
            t.add_row(cells);
        }
    }
    let mut out = t.to_string();
    out.push_str(&notes.to_string());
    out
}

/// A cell of a value of the whole point: `cell` on the `all` row, empty on a model's or group's.
fn point_wide(r: &Row, cell: String) -> String {
    if r.kind == "all" { cell } else { String::new() }
}

/// The reasons below the summary table, numbered in the order first met; the table's verdict cells
/// cite them by number. Reasons that differ only in their numbers (`fewer requests than the
/// minimum: 89 < 100` and `... 95 < 100`) are one note, which gives each point's numbers.
#[derive(Default)]
struct Notes {
    /// Each kind of reason (its text with the numbers left out) and where it applies: the point,
    /// and the reason's text there.
    reasons: Vec<(String, Vec<(String, String)>)>,
}

impl Notes {
    /// The most points a note names before it only counts the rest.
    const NAMED: usize = 3;
    /// The width the notes are wrapped to, characters.
    const WIDTH: usize = 100;

    /// The verdict cell of a row of point `who`: `ok` or `INVALID`, then the numbers of its
    /// reasons (`reason` is the row's reasons joined with `; `, possibly empty): `INVALID [1,2]`.
    fn verdict(&mut self, valid: bool, reason: &str, who: &str) -> String {
        let mut numbers = Vec::new();
        for part in reason.split("; ").filter(|p| !p.is_empty()) {
            let kind: String = part
                .chars()
                .filter(|c| !c.is_ascii_digit() && *c != '.')
                .collect();
            let k = match self.reasons.iter().position(|(r, _)| *r == kind) {
                Some(k) => k,
                None => {
                    self.reasons.push((kind, Vec::new()));
                    self.reasons.len() - 1
                }
            };
            let at = &mut self.reasons[k].1;
            if !at.iter().any(|(w, _)| w == who) {
                at.push((who.to_string(), part.to_string()));
            }
            numbers.push((k + 1).to_string());
        }
        let word = if valid { "ok" } else { "INVALID" };
        if numbers.is_empty() {
            word.into()
        } else {
            format!("{word} [{}]", numbers.join(","))
        }
    }

    /// One note: `fewer requests than the minimum: 89 < 100 (p1), 95 < 100 (p2)` when the numbers
    /// differ, `not stable within 10 windows (p1, p2)` when they do not; at most
    /// [`Notes::NAMED`] points named, the rest counted.
    fn note(at: &[(String, String)]) -> (String, bool) {
        let named = &at[..at.len().min(Self::NAMED)];
        let more = match at.len() - named.len() {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        let first = &at[0].1;
        if at.iter().all(|(_, text)| text == first) {
            let who: Vec<&str> = named.iter().map(|(w, _)| w.as_str()).collect();
            return (
                format!("{first} ({}{more})", who.join(", ")),
                !more.is_empty(),
            );
        }
        // The text all of them begin with, to the last `: `, said once.
        let head = match first.rfind(": ") {
            Some(i) if at.iter().all(|(_, t)| t.starts_with(&first[..i + 2])) => &first[..i + 2],
            _ => "",
        };
        let each: Vec<String> = named
            .iter()
            .map(|(w, text)| format!("{} ({w})", &text[head.len()..]))
            .collect();
        (format!("{head}{}{more}", each.join(", ")), !more.is_empty())
    }
}

impl std::fmt::Display for Notes {
    /// `[1] fewer requests than the minimum: 89 < 100 (w1-t1-pipe-cpu-c1)`, one line per note,
    /// wrapped to [`Notes::WIDTH`], then where to read every reason when a note left points out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut elided = false;
        for (k, (_, at)) in self.reasons.iter().enumerate() {
            let (note, cut) = Self::note(at);
            elided |= cut;
            for line in wrap(&format!("[{}] {note}", k + 1), Self::WIDTH) {
                write!(f, "\n{line}")?;
            }
        }
        if elided {
            write!(
                f,
                "\nEvery point's reasons in full: the `reason` column of results.csv."
            )?;
        }
        Ok(())
    }
}

/// `text` cut at spaces into lines of at most `width` characters (a longer word stands alone),
/// the lines after the first indented by four spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let line = lines.last_mut().expect("one line at least");
        if !line.trim().is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(format!("    {word}"));
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
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
            requests: 100,
            ..Row::default()
        };
        let rows = [
            row("mlp", "model", true, ""),
            row("det", "model", false, "unsupported by tract: no Det"),
            row("all", "all", true, ""),
        ];
        let table = summary(&rows);
        assert!(table.contains("ok [2]"), "{table}");
        assert!(
            table.contains("[2] unsupported by tract: det (p-tract)"),
            "{table}"
        );
    }

    /// A sweep of 32 points as `bench sweep` prints it, each invalid for a reason of its own
    /// kind, or valid.
    fn sweep_rows(models: &[&str]) -> Vec<Row> {
        let mut rows = Vec::new();
        for w in 1..=4 {
            for c in [1, 2, 4, 8, 16, 32, 64, 128] {
                let point_id = format!("w{w}-t1-pipe-cpu-c{c}");
                let (valid, reason) = match c {
                    1 => (false, "fewer requests than the minimum: 9 < 100".to_string()),
                    128 => (
                        false,
                        "the generator fell behind: 3.2% of sends lagged over 1 ms \
                         (on a shared machine, try --realtime); not stable within 10 windows (trial 1)"
                            .to_string(),
                    ),
                    _ => (true, String::new()),
                };
                let row = |model: &str, kind: &str| Row {
                    point_id: point_id.clone(),
                    model: model.into(),
                    kind: kind.into(),
                    concurrency: Some(c),
                    valid,
                    reason: reason.clone(),
                    requests: 1_000,
                    throughput_rps: 12_345.0,
                    latency_p50_us: 1_234.0,
                    latency_p99_us: 123_456.0,
                    latency_p999_us: 1_234_567.0,
                    compute_p50_us: 999.0,
                    errors: 0,
                    rss_mib: 1_234.0,
                    cores_used: Some(3.25),
                    ..Row::default()
                };
                rows.extend(models.iter().map(|m| row(m, "model")));
                rows.push(row("all", "all"));
            }
        }
        rows
    }

    fn widest(table: &str) -> usize {
        table.lines().map(|l| l.chars().count()).max().unwrap_or(0)
    }

    /// Regression (issue 24): the verdict cell held every reason in full, and the table was about
    /// 230 columns wide; the reasons now follow the table, once each, numbered.
    #[test]
    fn the_table_fits_a_terminal_with_the_reasons_below_it() {
        let table = summary(&sweep_rows(&["mobilenet"]));
        assert!(
            widest(&table) <= 120,
            "{} columns:\n{table}",
            widest(&table)
        );
        assert!(table.contains("┆ ok "), "{table}");
        assert!(table.contains("INVALID [1]"), "{table}");
        assert!(table.contains("INVALID [2,3]"), "{table}");
        assert_eq!(
            table.matches("fewer requests than the minimum").count(),
            1,
            "{table}"
        );
        assert!(
            table.contains(
                "\n[1] fewer requests than the minimum: 9 < 100 (w1-t1-pipe-cpu-c1, \
                 w2-t1-pipe-cpu-c1,\n    w3-t1-pipe-cpu-c1 and 1 more)\n"
            ),
            "{table}"
        );
        assert!(
            table.contains("[3] not stable within 10 windows"),
            "{table}"
        );
    }

    /// Reasons that differ only in their numbers are one note that gives each point's numbers.
    #[test]
    fn reasons_of_one_kind_share_a_note() {
        let mut notes = Notes::default();
        let why = |n: u32| {
            format!(
                "fewer requests than the minimum: {n} < 100; SLO missed: p99_ms = {n}.5 (needs p99_ms <= 2)"
            )
        };
        assert_eq!(notes.verdict(false, &why(89), "a"), "INVALID [1,2]");
        assert_eq!(notes.verdict(false, &why(95), "b"), "INVALID [1,2]");
        assert_eq!(notes.verdict(true, "", "c"), "ok");
        assert_eq!(
            notes.to_string(),
            "\n[1] fewer requests than the minimum: 89 < 100 (a), 95 < 100 (b)\
             \n[2] SLO missed: p99_ms = 89.5 (needs p99_ms <= 2) (a), p99_ms = 95.5 (needs p99_ms <= 2) (b)"
        );
    }

    /// Regression (issue 24): a multi-model run showed only the `all` rows, which mix models of
    /// very different cost; each point now shows its models' rows above its `all` row.
    #[test]
    fn a_multi_model_sweep_shows_each_model_of_each_point() {
        let table = summary(&sweep_rows(&["mobilenet", "yolo"]));
        assert!(table.contains("model"), "{table}");
        let lines: Vec<&str> = table.lines().filter(|l| l.contains("┆ yolo ")).collect();
        assert_eq!(lines.len(), 32, "{table}");
        assert_eq!(table.matches("w1-t1-pipe-cpu-c2 ").count(), 1, "{table}");
        assert_eq!(
            table.matches("┆ 1234 ").count(),
            32,
            "RSS on the all rows only: {table}"
        );
        assert!(
            widest(&table) <= 130,
            "{} columns:\n{table}",
            widest(&table)
        );
        // One model: no model column.
        assert!(!summary(&sweep_rows(&["m"])).contains("model"));
    }

    /// Regression (issue 24): a point with no successful request printed its percentiles as
    /// `0 µs`; there is no latency to print.
    #[test]
    fn no_successful_request_prints_no_latency() {
        let mut rows = sweep_rows(&["m"]);
        rows.truncate(2);
        for r in &mut rows {
            (r.requests, r.errors, r.latency_p50_us, r.latency_p99_us) = (0, 109, 0.0, 0.0);
        }
        let table = summary(&rows);
        assert!(!table.contains("0 µs"), "{table}");
        assert!(table.contains(&format!("┆ {NO_LATENCY} ")), "{table}");
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
