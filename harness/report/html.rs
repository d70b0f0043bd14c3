//! `report.html`: what people look at after a sweep. One self-contained HTML page, with inline SVG
//! charts and no script, font or style fetched from anywhere, drawn from a results folder read back
//! by [`view::load`](super::view::load).

use std::fmt::Write as _;

use super::Row;
use super::choose::{self, Choice, Verdict};
use super::console::{self, human_us};
use super::plots::{self, BarMetric, ParetoPoint, SloLines};
use super::view::{View, date, meta_items};

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
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

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; color: #222; margin: 2rem auto;
  max-width: 1000px; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; }
.sub { color: #555; margin-top: 0; }
div.table { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.85rem; width: 100%; }
th { vertical-align: bottom; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.45rem; text-align: left; vertical-align: top; }
td { white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.why { white-space: normal; min-width: 16rem; width: 100%; }
td code { white-space: nowrap; }
tr.invalid td { background: #fdecea; } tr.best td { background: #e8f5e9; }
p.chosen { background: #e8f5e9; padding: 0.5rem 0.8rem; border-left: 4px solid #008c3c; }
p.none { background: #fdecea; padding: 0.5rem 0.8rem; border-left: 4px solid #c81e1e; }
figure { margin: 0.6rem 0; } svg { max-width: 100%; height: auto; }
figcaption, .note { color: #555; font-size: 0.9rem; }
.warn { color: #8a4b00; } code { font-size: 0.9em; }
";

/// The whole page: its head, the recommendation (when the report has objectives) and the Pareto
/// front, the verdicts, the latency spectra, throughput against latency, the models, the run.
pub(crate) fn html(r: &View) -> anyhow::Result<String> {
    let mut h = String::new();
    head(&mut h, r);
    if r.recommends() {
        recommendation(&mut h, &r.choice, r.scenario_slo);
    }
    pareto_section(&mut h, r)?;
    verdicts(&mut h, r);
    spectrum_section(&mut h, r)?;
    throughput_section(&mut h, r)?;
    models_section(&mut h, r)?;
    run_section(&mut h, r);
    Ok(h)
}

/// A chart's SVG, or an error naming the chart.
fn draw(what: &str, svg: Result<String, Box<dyn std::error::Error>>) -> anyhow::Result<String> {
    svg.map_err(|e| anyhow::anyhow!("cannot draw the {what} chart: {e}"))
}

/// The document's head, the title, how many points are valid and since when, and the view's
/// notes.
fn head(h: &mut String, r: &View) {
    let name = r.name();
    let alls: Vec<&Row> = r.alls().collect();
    let valid = alls.iter().filter(|a| a.valid).count();
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
        .map(|m| date(Some(m.started_unix_s)))
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
}

/// Throughput against p99, one marker per judged point, the Pareto front joined.
fn pareto_section(h: &mut String, r: &View) -> anyhow::Result<()> {
    if r.choice.points.is_empty() {
        return Ok(());
    }
    let _ = writeln!(
        h,
        "<h2 id=\"pareto\">Throughput against p99: the Pareto front</h2>\n<figure>{}<figcaption>\
         One marker per point, labelled with its number and memory (<code>rss_mib</code>, all \
         workers together); a marker's area grows with its memory. Filled blue markers are on \
         the Pareto front (no other valid point has both more throughput and a lower p99), \
         joined by the line; grey ones are valid points off the front; hollow ones are invalid. \
         The p99 counts cold starts.{}</figcaption></figure>",
        draw(
            "Pareto",
            plots::pareto_svg(&pareto_points(&r.choice), slo_lines(&r.choice))
        )?,
        if r.recommends() {
            " Red dashed lines are the objectives; the green ring marks the recommended point."
        } else {
            ""
        }
    );
    Ok(())
}

/// The verdicts: the best valid point when nothing is recommended, and every point's validity,
/// reason, SLO, throughput and latency.
fn verdicts(h: &mut String, r: &View) {
    let alls: Vec<&Row> = r.alls().collect();
    h.push_str("<h2 id=\"verdicts\">Verdicts</h2>\n");
    if r.recommends() {
        // The recommendation above says which point to run; this table says which are valid.
    } else if let Some(best) = r.best() {
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
        return;
    }
    let best_id = r.best().map(|b| b.point_id.clone());
    let classes: Vec<&str> = alls
        .iter()
        .map(|a| {
            if !a.valid {
                "invalid"
            } else if Some(&a.point_id) == best_id.as_ref() {
                "best"
            } else {
                ""
            }
        })
        .collect();
    let col = |head, class, optional, cell: &dyn Fn(&Row) -> String| Column {
        head,
        class,
        optional,
        cells: alls.iter().map(|a| cell(a)).collect(),
    };
    table(
        h,
        &classes,
        vec![
            col("#", "n", false, &|a| a.point.to_string()),
            col("point", "", false, &|a| {
                format!("<code>{}</code>", esc(&a.point_id))
            }),
            col("valid", "", false, &|a| yes_no(a.valid).into()),
            col("SLO met", "", true, &|a| {
                a.slo_met.map_or("", yes_no).into()
            }),
            col("requests/s", "n", false, &|a| {
                format!("{:.0}", a.throughput_rps)
            }),
            col("p50", "n", false, &|a| {
                esc(&console::latency(a, a.latency_p50_us))
            }),
            col("p99", "n", false, &|a| {
                esc(&console::latency(a, a.latency_p99_us))
            }),
            col("p99.9", "n", false, &|a| {
                esc(&console::latency(a, a.latency_p999_us))
            }),
            col("cold starts", "n", true, &|a| a.cold_starts.to_string()),
            col("CPU steal", "n", true, &|a| {
                esc(&console::steal(a.cpu_steal_pct))
            }),
            col("over&shy;subscribed", "", true, &|a| {
                yes_no(a.oversubscribed).into()
            }),
            col("reason", "why", false, &|a| {
                esc(&super::point_reason(&r.rows, a))
            }),
        ],
    );
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A column of a table: its header (HTML), the class of its cells, and each row's cell (HTML).
struct Column {
    head: &'static str,
    class: &'static str,
    /// Left out of the table when no cell of it says anything ([`says_nothing`]).
    optional: bool,
    cells: Vec<String>,
}

/// A cell that says nothing: empty, `none`, `no`, `0` or `0.0%`. A column of them is left out, so
/// that a table of 32 points keeps its room for the reasons.
fn says_nothing(cell: &str) -> bool {
    matches!(cell, "" | "none" | "no" | "0" | "0.0%")
}

/// Writes a table of `columns` (one cell per row each, `row_class` per row), left out the
/// optional columns that say nothing, in a `div.table` that scrolls sideways should the table be
/// wider than the page; the `why` column takes the width left and wraps.
fn table(h: &mut String, row_class: &[&str], columns: Vec<Column>) {
    let columns: Vec<Column> = columns
        .into_iter()
        .filter(|c| !c.optional || !c.cells.iter().all(|cell| says_nothing(cell)))
        .collect();
    h.push_str("<div class=\"table\"><table>\n<thead><tr>");
    for c in &columns {
        let _ = write!(h, "<th>{}</th>", c.head);
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (i, class) in row_class.iter().enumerate() {
        if class.is_empty() {
            h.push_str("<tr>");
        } else {
            let _ = write!(h, "<tr class=\"{class}\">");
        }
        for c in &columns {
            if c.class.is_empty() {
                let _ = write!(h, "<td>{}</td>", c.cells[i]);
            } else {
                let _ = write!(h, "<td class=\"{}\">{}</td>", c.class, c.cells[i]);
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table></div>\n");
}

/// Latency by percentile, one line per point, from the histogram logs.
fn spectrum_section(h: &mut String, r: &View) -> anyhow::Result<()> {
    h.push_str("<h2 id=\"spectrum\">Latency by percentile</h2>\n");
    if r.spectra.is_empty() {
        h.push_str("<p class=\"note\">No histogram log to draw.</p>\n");
        return Ok(());
    }
    let _ = writeln!(
        h,
        "<figure>{}<figcaption>Latency of all requests (every trial together, from \
         <code>hlog/&lt;point&gt;.hlog</code>, tag <code>all.latency</code>) at each percentile, \
         one line per point. The x axis spreads the tail: 90%, 99%, 99.9% are equally far \
         apart. Each line ends at its maximum, drawn at the highest percentile its number of \
         requests can tell apart.</figcaption></figure>",
        draw("percentile", plots::spectrum_svg(&r.spectra))?
    );
    Ok(())
}

/// Throughput against p99, curves of the points that differ only in their worker count.
fn throughput_section(h: &mut String, r: &View) -> anyhow::Result<()> {
    h.push_str("<h2 id=\"throughput\">Throughput against p99 latency</h2>\n");
    let curves = plots::curves(&r.rows);
    if curves.is_empty() {
        h.push_str("<p class=\"note\">No point to draw.</p>\n");
        return Ok(());
    }
    let _ = writeln!(
        h,
        "<figure>{}<figcaption>Each curve joins points that differ only in the worker count \
         (or, with one worker count, in the load); each marker is labelled with that value. \
         Down and to the right is better. Hollow markers are invalid points.</figcaption></figure>",
        draw("throughput", plots::curves_svg(&curves))?
    );
    Ok(())
}

/// Each model's and group's latency and throughput at each point.
fn models_section(h: &mut String, r: &View) -> anyhow::Result<()> {
    h.push_str("<h2 id=\"models\">Per model</h2>\n");
    let (points, bars) = plots::model_bars(&r.rows);
    if bars.is_empty() {
        h.push_str("<p class=\"note\">No model rows with requests.</p>\n");
        return Ok(());
    }
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
    Ok(())
}

/// The run's metadata from run.json, and the page's end.
fn run_section(h: &mut String, r: &View) {
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
}

/// The recommendation section: the objectives, the recommended point (or that none meets them),
/// and a table of every point's verdict with its memory, cold starts, CPU steal and
/// oversubscription.
fn recommendation(h: &mut String, c: &Choice, scenario_slo: bool) {
    h.push_str("<h2 id=\"recommendation\">Recommendation</h2>\n");
    let objectives: Vec<String> = c
        .objectives
        .describe()
        .split(", ")
        .map(|o| format!("<code>{}</code>", esc(o)))
        .collect();
    let _ = writeln!(
        h,
        "<p>Objectives (from {}): {}. Latency objectives count every request, cold starts \
         included; <code>cold_p99_ms</code> is the cold starts' own p99. Among the points that meet \
         them all, the one with the most throughput is recommended; within {}% of the most, the one \
         with the least memory.</p>",
        console::objectives_source(scenario_slo),
        objectives.join(", "),
        choose::TIE_PCT
    );
    match c.chosen() {
        Some(p) => {
            let _ = writeln!(
                h,
                "<p class=\"chosen\"><b>Recommended: {} <code>{}</code></b>: {}.</p>",
                esc(&p.tag()),
                esc(&p.point_id),
                esc(&console::judged(p))
            );
        }
        None => h.push_str(
            "<p class=\"none\"><b>No point meets every objective.</b> The table says what each \
             missed.</p>\n",
        ),
    }
    let classes: Vec<&str> = c
        .points
        .iter()
        .map(|p| match p.verdict {
            Verdict::Chosen => "best",
            Verdict::Invalid(_) | Verdict::Missed(_) => "invalid",
            Verdict::Outdone(_) => "",
        })
        .collect();
    let col = |head, class, optional, cell: &dyn Fn(&choose::Judged) -> String| Column {
        head,
        class,
        optional,
        cells: c.points.iter().map(cell).collect(),
    };
    table(
        h,
        &classes,
        vec![
            col("#", "n", false, &|p| p.point.to_string()),
            col("point", "", false, &|p| {
                format!("<code>{}</code>", esc(&p.point_id))
            }),
            col("requests/s", "n", false, &|p| {
                format!("{:.0}", p.throughput_rps)
            }),
            col("p99 (cold starts counted)", "n", false, &|p| {
                esc(&human_us(p.measured.p99_us))
            }),
            col("memory", "n", false, &|p| format!("{:.0} MiB", p.rss_mib)),
            col("cold starts", "", true, &|p| esc(&console::cold_starts(p))),
            col("CPU steal", "n", true, &|p| {
                esc(&console::steal(p.cpu_steal_pct))
            }),
            col("over&shy;subscribed", "", true, &|p| {
                yes_no(p.oversubscribed).into()
            }),
            col("verdict", "why", false, &|p| esc(&p.verdict.to_string())),
        ],
    );
}

/// The judged points as the Pareto chart draws them.
fn pareto_points(c: &Choice) -> Vec<ParetoPoint> {
    c.points
        .iter()
        .map(|p| ParetoPoint {
            label: p.tag(),
            throughput_rps: p.throughput_rps,
            p99_us: p.measured.p99_us,
            rss_mib: p.rss_mib,
            valid: !matches!(p.verdict, Verdict::Invalid(_)),
            on_front: p.on_front,
            chosen: p.verdict == Verdict::Chosen,
        })
        .collect()
}

/// The objectives the Pareto chart draws as lines.
fn slo_lines(c: &Choice) -> SloLines {
    SloLines {
        p99_us: choose::p99_line(&c.objectives).map(|(v, _)| v),
        throughput_rps: choose::throughput_line(&c.objectives).map(|(v, _)| v),
    }
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
    fn a_folder_without_results_is_an_error_that_says_what_to_give() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", crate::report::render(dir.path()).unwrap_err());
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
        let paths = crate::report::render(dir.path()).unwrap();
        let page = std::fs::read_to_string(&paths[0]).unwrap();
        assert!(page.contains("No point has finished"), "{page}");
        assert!(page.contains("run.json is missing"), "{page}");
        assert!(
            std::fs::read_to_string(&paths[1])
                .unwrap()
                .contains("No point has finished")
        );
    }

    /// Regression (issue 24): at 32 points the verdict column was squeezed to a few words a line
    /// beside columns that said nothing; those are left out, and the reason comes last.
    #[test]
    fn columns_that_say_nothing_are_left_out() {
        let all = |point: usize, cold_starts: u64| crate::report::Row {
            point,
            point_id: format!("w{point}"),
            model: "all".into(),
            kind: "all".into(),
            requests: 100,
            cold_starts,
            valid: false,
            reason: "fewer requests than the minimum: 100 < 1000".into(),
            ..crate::report::Row::default()
        };
        let page = |rows| {
            let view = crate::report::view::tests::view(rows, &choose::Objectives::default());
            html(&view).unwrap()
        };
        let quiet = page(vec![all(0, 0), all(1, 0)]);
        let verdicts = &quiet[quiet.find("id=\"verdicts\"").unwrap()..];
        let head = &verdicts[..verdicts.find("</thead>").unwrap()];
        for gone in ["cold starts", "CPU steal", "subscribed", "SLO met"] {
            assert!(!head.contains(gone), "{gone}: {head}");
        }
        assert!(head.ends_with("<th>reason</th></tr>"), "{head}");
        assert!(
            verdicts
                .contains("<td class=\"why\">fewer requests than the minimum: 100 &lt; 1000</td>"),
            "{verdicts}"
        );
        let cold = page(vec![all(0, 0), all(1, 3)]);
        assert!(cold.contains("<th>cold starts</th>"));
    }

    #[test]
    fn the_page_leads_with_the_recommendation_and_its_pareto_chart() {
        let all = |point: usize, rps: f64, p99_us: f64, rss: f64| crate::report::Row {
            point,
            point_id: format!("w{point}"),
            model: "all".into(),
            kind: "all".into(),
            throughput_rps: rps,
            latency_p99_us: p99_us,
            rss_mib: rss,
            cpu_steal_pct: Some(3.5),
            oversubscribed: point == 2,
            valid: true,
            ..crate::report::Row::default()
        };
        let objectives = choose::Objectives {
            slo: vec![crate::scenario::slo::parse_objective("p99_ms<=6").unwrap()],
            max_rss_mib: None,
        };
        let view = crate::report::view::tests::view(
            vec![
                all(0, 500.0, 2_000.0, 50.0),
                all(1, 900.0, 5_000.0, 80.0),
                all(2, 1200.0, 9_000.0, 80.0),
            ],
            &objectives,
        );
        let page = html(&view).unwrap();
        let at = |needle: &str| {
            page.find(needle)
                .unwrap_or_else(|| panic!("no {needle} in the page"))
        };
        assert!(at("id=\"recommendation\"") < at("id=\"pareto\""));
        assert!(at("id=\"pareto\"") < at("id=\"verdicts\""));
        assert!(
            page.contains(
                "<b>Recommended: #1 <code>w1</code></b>: 900 req/s, p99 5.00 ms, 80 MiB."
            ),
            "{page}"
        );
        let table = &page[at("id=\"recommendation\"")..at("id=\"pareto\"")];
        assert!(
            table.contains(
                "<td class=\"n\">3.5%</td><td>yes</td><td class=\"why\">misses p99_ms &lt;= 6: 9 ms, \
                 3 ms over (+50%)</td>"
            ),
            "steal and oversubscription beside the verdict: {table}"
        );
        let chart = &page[at("id=\"pareto\"")..at("id=\"verdicts\"")];
        for label in ["Pareto front", "objective: p99 6.00 ms", "#1 · 80 MiB"] {
            assert!(chart.contains(label), "no {label} on the chart");
        }
        assert!(
            !page.contains("Highest throughput among valid points"),
            "the recommendation replaces it"
        );
    }
}
