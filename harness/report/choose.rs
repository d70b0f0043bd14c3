//! "Which deployment?": the point to run, chosen after the run from objectives the sweep did not
//! need to know (`bench report --slo 'p99_ms<=6' --max-rss-mib 512`), and why every other point
//! lost.
//!
//! The rule, a pure function over a results folder's rows ([`choose`]):
//!
//! 1. A point that is not a valid measurement (failed requests, not stable, the generator fell
//!    behind, a model its runtime left out, ...) loses with that reason. Misses of the scenario's
//!    own SLO (`SLO missed: ...` in `reason`) do not count here: the objectives are checked again.
//! 2. Every objective is checked: one without a model on the point's `all` row, `MODEL:...` on that
//!    model's or ensemble group's row, and `--max-rss-mib` on `rss_mib` (all workers together).
//!    Latency objectives count cold starts ([`Cold`]). A point that misses one loses, with each
//!    miss and by how much.
//! 3. Among the points that meet every objective, those within [`TIE_PCT`] percent of the most
//!    throughput tie; the one with the least memory (`rss_mib`) wins, then the one with more
//!    throughput, then the earlier point. `bench capacity` breaks ties the same way.
//!
//! Beside the verdicts it marks the Pareto front of throughput against p99 (cold starts counted)
//! among the valid points, for the report's chart.

use std::fmt;

use hdrhistogram::Histogram;

use super::Row;
use crate::metrics::{Percentiles, with_cold_starts};
use crate::scenario::slo::{self, Measured, Metric, Objective, Op};

/// Points within this many percent of the most throughput tie, and memory decides (as in
/// `bench capacity`).
pub(crate) const TIE_PCT: f64 = 2.0;

/// What a recommendation is for.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Objectives {
    pub(crate) slo: Vec<Objective>,
    /// The most `rss_mib` a point may hold.
    pub(crate) max_rss_mib: Option<f64>,
}

impl Objectives {
    /// No objective at all: every valid point meets them, and there is nothing to recommend for.
    pub(crate) fn is_empty(&self) -> bool {
        self.slo.is_empty() && self.max_rss_mib.is_none()
    }

    /// The objectives as one line: `p99_ms <= 6, ocr:p99_ms <= 50, rss_mib <= 512`.
    pub(crate) fn describe(&self) -> String {
        let mut parts: Vec<String> = self.slo.iter().map(ToString::to_string).collect();
        if let Some(m) = self.max_rss_mib {
            parts.push(format!("rss_mib <= {}", slo::short(m)));
        }
        parts.join(", ")
    }
}

/// The histograms of one model, group or `all` at one point, every trial added, from its
/// histogram log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Logged<'a> {
    pub(crate) latency: &'a Histogram<u64>,
    /// The cold starts, warm-up included; `None` when the log has none.
    pub(crate) cold: Option<&'a Histogram<u64>>,
}

/// How cold starts came into the latency a row was checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cold {
    /// The row has no cold starts: its latency columns as they are.
    None,
    /// Exactly, from the histogram log: every measured request and every cold start together.
    Exact,
    /// From the row alone (no log, or a log without every cold start): each cold start taken as
    /// slow as the slowest ([`crate::metrics::with_cold_starts_bound`]).
    Bound,
}

/// The values a row is checked against, cold starts counted, and how they were counted.
pub(crate) fn measured(row: &Row, logged: Option<Logged<'_>>) -> (Measured, Cold) {
    if row.cold_starts == 0 {
        return (row.measured_steady(), Cold::None);
    }
    let exact = logged.and_then(|l| {
        let cold = l.cold.filter(|c| c.len() == row.cold_starts)?;
        let latency: Percentiles = with_cold_starts(row.latency(), l.latency, cold)?;
        Some(latency.into_measured(Measured {
            cold_p99_us: cold.value_at_quantile(0.99) as f64 / 1e3,
            ..row.measured_steady()
        }))
    });
    match exact {
        Some(m) => (m, Cold::Exact),
        None => (row.measured(), Cold::Bound),
    }
}

/// Why a point was or was not chosen.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// The recommended point.
    Chosen,
    /// Not a valid measurement: why.
    Invalid(String),
    /// Missed objectives, each with its value and by how much.
    Missed(Vec<String>),
    /// Met every objective, but another point was chosen: why.
    Outdone(String),
}

impl Verdict {
    /// Met every objective (chosen or not).
    pub(crate) fn meets(&self) -> bool {
        matches!(self, Verdict::Chosen | Verdict::Outdone(_))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Chosen => write!(f, "recommended"),
            Verdict::Invalid(why) => write!(f, "invalid: {why}"),
            Verdict::Missed(misses) => write!(f, "misses {}", misses.join("; ")),
            Verdict::Outdone(why) => write!(f, "meets every objective, but {why}"),
        }
    }
}

/// One point, judged.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Judged {
    pub(crate) point: usize,
    pub(crate) point_id: String,
    pub(crate) throughput_rps: f64,
    pub(crate) rss_mib: f64,
    /// The `all` row's values, cold starts counted: what the objectives without a model checked.
    pub(crate) measured: Measured,
    /// How cold starts were counted into `measured` (and into every model objective's values).
    pub(crate) cold: Cold,
    pub(crate) cold_starts: u64,
    /// The cold starts' own p99 and maximum, ms.
    pub(crate) cold_p99_ms: Option<f64>,
    pub(crate) cold_max_ms: Option<f64>,
    pub(crate) cpu_steal_pct: Option<f64>,
    pub(crate) oversubscribed: bool,
    /// A valid point that no other valid point beats on both throughput and p99 (cold starts
    /// counted).
    pub(crate) on_front: bool,
    pub(crate) verdict: Verdict,
}

impl Judged {
    /// `#3`, how the report names a point in a sentence.
    pub(crate) fn tag(&self) -> String {
        format!("#{}", self.point)
    }
}

/// Every point judged against the objectives, in point order, and which one is recommended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Choice {
    pub(crate) objectives: Objectives,
    pub(crate) points: Vec<Judged>,
    /// The index in `points` of the recommended point; `None` when no point meets every objective.
    pub(crate) chosen: Option<usize>,
}

impl Choice {
    pub(crate) fn chosen(&self) -> Option<&Judged> {
        self.chosen.map(|i| &self.points[i])
    }
}

/// The reasons of a row without the misses of the scenario's SLO, which the objectives replace.
fn without_slo(reason: &str) -> String {
    reason
        .split("; ")
        .filter(|r| !r.is_empty() && !r.starts_with("SLO missed: "))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `MiB` with its value: `412 MiB`.
fn mib(v: f64) -> String {
    format!("{} MiB", slo::short((v * 10.0).round() / 10.0))
}

/// Judges every point of `rows` against `objectives`, and picks one (see the module docs).
/// `logged(point_id, name)` gives the histograms of a model, group or `all` at a point from its
/// log, when there is one. An objective naming a model that no row has is an error.
pub(crate) fn choose<'a>(
    rows: &[Row],
    objectives: &Objectives,
    logged: &dyn Fn(&str, &str) -> Option<Logged<'a>>,
) -> anyhow::Result<Choice> {
    let names: Vec<&str> = {
        let mut v: Vec<&str> = Vec::new();
        for r in rows.iter().filter(|r| r.kind != "all") {
            if !v.contains(&r.model.as_str()) {
                v.push(&r.model);
            }
        }
        v
    };
    for o in &objectives.slo {
        if let Some(m) = &o.model
            && !names.contains(&m.as_str())
        {
            anyhow::bail!(
                "--slo `{o}`: no model or ensemble group `{m}` in these results; {}",
                if names.is_empty() {
                    "they have only `all` rows, so write the objective without `MODEL:`".into()
                } else {
                    format!("use one of: {}", names.join(", "))
                }
            );
        }
    }

    let mut points: Vec<Judged> = Vec::new();
    for all in rows.iter().filter(|r| r.kind == "all") {
        let (m, cold) = measured(all, logged(&all.point_id, "all"));
        let invalid = without_slo(&super::point_reason(rows, all));
        let verdict = if !invalid.is_empty() {
            Verdict::Invalid(invalid)
        } else if !all.valid && all.slo_met != Some(false) {
            Verdict::Invalid("marked invalid in results.csv".into())
        } else {
            let mut misses = Vec::new();
            for o in &objectives.slo {
                let c = &o.constraint;
                let value = match &o.model {
                    None => Some(m.value(c.metric)),
                    Some(name) => rows
                        .iter()
                        .find(|r| r.point_id == all.point_id && r.model == *name && r.kind != "all")
                        .map(|r| measured(r, logged(&r.point_id, name)).0.value(c.metric)),
                };
                match value {
                    Some(v) if c.op.holds(v, c.value) => {}
                    Some(v) => misses.push(format!("{o}: {}", slo::miss(c, v))),
                    None => misses.push(format!(
                        "{o}: the point has no `{}` row",
                        o.model.as_deref().unwrap_or("all")
                    )),
                }
            }
            if let Some(limit) = objectives.max_rss_mib
                && all.rss_mib > limit
            {
                misses.push(format!(
                    "rss_mib <= {}: {}, {} over ({:+.0}%)",
                    slo::short(limit),
                    mib(all.rss_mib),
                    mib(all.rss_mib - limit),
                    100.0 * (all.rss_mib - limit) / limit
                ));
            }
            if misses.is_empty() {
                // Decided below, once every point is judged.
                Verdict::Outdone(String::new())
            } else {
                Verdict::Missed(misses)
            }
        };
        points.push(Judged {
            point: all.point,
            point_id: all.point_id.clone(),
            throughput_rps: all.throughput_rps,
            rss_mib: all.rss_mib,
            measured: m,
            cold,
            cold_starts: all.cold_starts,
            cold_p99_ms: (all.cold_starts > 0).then_some(m.cold_p99_us / 1e3),
            cold_max_ms: all.cold_start_max_ms,
            cpu_steal_pct: all.cpu_steal_pct,
            oversubscribed: all.oversubscribed,
            on_front: false,
            verdict,
        });
    }

    mark_front(&mut points);
    let chosen = pick(&points);
    if let Some(c) = chosen {
        let best = points[c].clone();
        let top = points
            .iter()
            .filter(|p| p.verdict.meets())
            .map(|p| p.throughput_rps)
            .fold(0.0, f64::max);
        for (i, p) in points.iter_mut().enumerate() {
            if i == c {
                p.verdict = Verdict::Chosen;
            } else if p.verdict.meets() {
                p.verdict = Verdict::Outdone(outdone(p, &best, top));
            }
        }
    }
    Ok(Choice {
        objectives: objectives.clone(),
        points,
        chosen,
    })
}

/// Whether `p` ties on throughput with the most, `top`.
fn near(p: &Judged, top: f64) -> bool {
    p.throughput_rps >= top * (1.0 - TIE_PCT / 100.0)
}

/// The index of the recommended point among those that meet every objective: within [`TIE_PCT`]
/// of the most throughput, the least memory, then the most throughput, then the earliest.
fn pick(points: &[Judged]) -> Option<usize> {
    let top = points
        .iter()
        .filter(|p| p.verdict.meets())
        .map(|p| p.throughput_rps)
        .fold(f64::NEG_INFINITY, f64::max);
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.verdict.meets() && near(p, top))
        .min_by(|(_, a), (_, b)| {
            a.rss_mib
                .total_cmp(&b.rss_mib)
                .then(b.throughput_rps.total_cmp(&a.throughput_rps))
                .then(a.point.cmp(&b.point))
        })
        .map(|(i, _)| i)
}

/// Why `p`, which meets every objective, lost to `best`; `top` is the most throughput among the
/// points that meet them.
fn outdone(p: &Judged, best: &Judged, top: f64) -> String {
    let rps = |v: f64| format!("{v:.0} req/s");
    if !near(p, top) {
        let less = 100.0 * (1.0 - p.throughput_rps / best.throughput_rps.max(f64::MIN_POSITIVE));
        return format!(
            "serves {}, {less:.0}% less than {} ({})",
            rps(p.throughput_rps),
            best.tag(),
            rps(best.throughput_rps)
        );
    }
    if p.rss_mib > best.rss_mib {
        format!(
            "its {} is within {TIE_PCT}% of the most throughput, a tie, and {} holds less memory \
             ({} against {})",
            rps(p.throughput_rps),
            best.tag(),
            mib(best.rss_mib),
            mib(p.rss_mib)
        )
    } else if p.throughput_rps < best.throughput_rps {
        format!(
            "it ties with {} on memory ({}), and {} serves more ({} against {})",
            best.tag(),
            mib(p.rss_mib),
            best.tag(),
            rps(best.throughput_rps),
            rps(p.throughput_rps)
        )
    } else {
        format!(
            "it ties with {} on throughput and memory, and the earlier point is recommended",
            best.tag()
        )
    }
}

/// Marks the valid points that no other valid point beats on both throughput and p99: at least as
/// good on both and better on one.
fn mark_front(points: &mut [Judged]) {
    let valid = |p: &Judged| !matches!(p.verdict, Verdict::Invalid(_));
    let pairs: Vec<Option<(f64, f64)>> = points
        .iter()
        .map(|p| valid(p).then_some((p.throughput_rps, p.measured.p99_us)))
        .collect();
    for (i, p) in points.iter_mut().enumerate() {
        let Some((t, l)) = pairs[i] else { continue };
        p.on_front = !pairs.iter().enumerate().any(|(j, q)| {
            j != i && q.is_some_and(|(tq, lq)| tq >= t && lq <= l && (tq > t || lq < l))
        });
    }
}

/// A latency objective without a model that can be drawn on the chart of throughput against p99:
/// `p99_ms` on the `all` row, as `(bound µs, op)`.
pub(crate) fn p99_line(objectives: &Objectives) -> Option<(f64, Op)> {
    objectives
        .slo
        .iter()
        .filter(|o| o.model.is_none() && o.constraint.metric == Metric::P99Ms)
        .map(|o| (o.constraint.value * 1e3, o.constraint.op))
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

/// A throughput objective without a model, as `(bound req/s, op)`: a vertical line on the chart.
pub(crate) fn throughput_line(objectives: &Objectives) -> Option<(f64, Op)> {
    objectives
        .slo
        .iter()
        .filter(|o| o.model.is_none() && o.constraint.metric == Metric::ThroughputRps)
        .map(|o| (o.constraint.value, o.constraint.op))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;

    /// The `all` row of point `point`.
    fn all(point: usize, rps: f64, p99_ms: f64, rss: f64) -> Row {
        Row {
            point,
            point_id: format!("p{point}"),
            model: "all".into(),
            kind: "all".into(),
            trials: 1,
            requests: 10_000,
            throughput_rps: rps,
            latency_p50_us: p99_ms * 500.0,
            latency_p90_us: p99_ms * 800.0,
            latency_p95_us: p99_ms * 900.0,
            latency_p99_us: p99_ms * 1e3,
            latency_p999_us: p99_ms * 1.5e3,
            latency_max_us: p99_ms * 2e3,
            latency_mean_us: p99_ms * 600.0,
            rss_mib: rss,
            valid: true,
            ..Row::default()
        }
    }

    fn model(of: &Row, name: &str, p99_ms: f64) -> Row {
        Row {
            model: name.into(),
            kind: "model".into(),
            latency_p99_us: p99_ms * 1e3,
            ..of.clone()
        }
    }

    fn objectives(slo: &[&str], max_rss_mib: Option<f64>) -> Objectives {
        Objectives {
            slo: slo
                .iter()
                .map(|t| slo::parse_objective(t).unwrap())
                .collect(),
            max_rss_mib,
        }
    }

    fn no_log<'a>(_: &str, _: &str) -> Option<Logged<'a>> {
        None
    }

    fn run(rows: &[Row], o: &Objectives) -> Choice {
        choose(rows, o, &no_log).unwrap()
    }

    fn verdicts(c: &Choice) -> Vec<String> {
        c.points.iter().map(|p| p.verdict.to_string()).collect()
    }

    #[test]
    fn the_most_throughput_within_the_objectives_wins_and_each_other_point_says_why() {
        let rows = [
            all(0, 500.0, 4.0, 100.0),
            all(1, 900.0, 7.2, 100.0),
            all(2, 800.0, 5.0, 100.0),
        ];
        let c = run(&rows, &objectives(&["p99_ms<=6"], None));
        assert_eq!(c.chosen().unwrap().point, 2);
        assert_eq!(
            verdicts(&c),
            [
                "meets every objective, but serves 500 req/s, 38% less than #2 (800 req/s)",
                "misses p99_ms <= 6: 7.2 ms, 1.2 ms over (+20%)",
                "recommended",
            ]
        );
    }

    #[test]
    fn near_ties_go_to_less_memory_then_throughput_then_the_earlier_point() {
        // #1 has the most throughput; #2 is within 2% of it with less memory; #0 is not within 2%.
        let rows = [
            all(0, 950.0, 4.0, 10.0),
            all(1, 1000.0, 4.0, 300.0),
            all(2, 985.0, 4.0, 200.0),
            all(3, 990.0, 4.0, 200.0),
        ];
        let c = run(&rows, &objectives(&["p99_ms<=6"], None));
        assert_eq!(
            c.chosen().unwrap().point,
            3,
            "less memory, then more throughput"
        );
        let v = verdicts(&c);
        assert!(v[0].contains("serves 950 req/s, 4% less than #3"), "{v:?}");
        assert!(
            v[1].contains("within 2% of the most throughput, a tie, and #3 holds less memory (200 MiB against 300 MiB)"),
            "{v:?}"
        );
        assert!(
            v[2].contains("ties with #3 on memory (200 MiB), and #3 serves more"),
            "{v:?}"
        );
        // Equal in everything: the earlier point.
        let twins = [all(0, 1000.0, 4.0, 50.0), all(1, 1000.0, 4.0, 50.0)];
        let c = run(&twins, &objectives(&["p99_ms<=6"], None));
        assert_eq!(c.chosen().unwrap().point, 0);
        assert!(verdicts(&c)[1].contains("the earlier point is recommended"));
    }

    #[test]
    fn a_memory_limit_rules_points_out_and_says_by_how_much() {
        let rows = [all(0, 1000.0, 4.0, 812.0), all(1, 600.0, 4.0, 400.0)];
        let c = run(&rows, &objectives(&[], Some(512.0)));
        assert_eq!(c.chosen().unwrap().point, 1);
        assert_eq!(
            verdicts(&c)[0],
            "misses rss_mib <= 512: 812 MiB, 300 MiB over (+59%)"
        );
        assert_eq!(c.objectives.describe(), "rss_mib <= 512");
        let c = run(&rows, &objectives(&[], Some(100.0)));
        assert_eq!(c.chosen, None, "no point fits");
    }

    #[test]
    fn model_objectives_check_that_models_row() {
        let a0 = all(0, 1000.0, 4.0, 100.0);
        let a1 = all(1, 700.0, 4.0, 100.0);
        let rows = [
            model(&a0, "ocr", 61.3),
            model(&a0, "det", 3.0),
            a0.clone(),
            model(&a1, "ocr", 40.0),
            model(&a1, "det", 3.0),
            a1.clone(),
        ];
        let c = run(&rows, &objectives(&["p99_ms<=6", "ocr:p99_ms<=50"], None));
        assert_eq!(c.chosen().unwrap().point, 1);
        assert_eq!(
            verdicts(&c)[0],
            "misses ocr:p99_ms <= 50: 61.3 ms, 11.3 ms over (+23%)"
        );
        let e = choose(&rows, &objectives(&["cls:p99_ms<=5"], None), &no_log).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--slo `cls:p99_ms <= 5`: no model or ensemble group `cls` in these results; use one \
             of: ocr, det"
        );
    }

    #[test]
    fn invalid_points_lose_with_their_reason_but_not_for_the_scenarios_slo() {
        let mut failed = all(0, 2000.0, 1.0, 10.0);
        failed.valid = false;
        failed.reason =
            "3 failed request(s); SLO missed: p99_ms = 1.000 (needs p99_ms <= 0.5)".into();
        // Invalid only for the scenario's own SLO: the objectives given now decide.
        let mut slo_only = all(1, 900.0, 5.0, 10.0);
        slo_only.valid = false;
        slo_only.slo_met = Some(false);
        slo_only.reason = "SLO missed: p99_ms = 5.000 (needs p99_ms <= 2)".into();
        let c = run(&[failed, slo_only], &objectives(&["p99_ms<=6"], None));
        assert_eq!(verdicts(&c)[0], "invalid: 3 failed request(s)");
        assert_eq!(c.chosen().unwrap().point, 1);
    }

    #[test]
    fn cold_starts_count_in_latency_objectives_and_have_their_own() {
        // The case: p99 265 ms without the 7 cold starts of up to 966 ms, 600 requests.
        let mut cold = all(0, 100.0, 265.0, 10.0);
        cold.requests = 600;
        cold.cold_starts = 7;
        cold.cold_start_p99_ms = Some(960.0);
        cold.cold_start_max_ms = Some(966.0);
        // From the row alone, 7 of 607 requests reach past p99: the cold starts set it.
        let c = run(
            std::slice::from_ref(&cold),
            &objectives(&["p99_ms<=300"], None),
        );
        assert_eq!(c.points[0].cold, Cold::Bound);
        assert_eq!(c.points[0].measured.p99_us, 966_000.0);
        assert_eq!(
            verdicts(&c)[0],
            "misses p99_ms <= 300: 966 ms, 666 ms over (+222%)"
        );
        let c = run(
            std::slice::from_ref(&cold),
            &objectives(&["cold_p99_ms<=900"], None),
        );
        assert!(
            verdicts(&c)[0].starts_with("misses cold_p99_ms <= 900: 960 ms"),
            "{c:?}"
        );

        // With the log: exactly. 600 requests of 1..=600 µs (p99 594 µs) and 7 cold starts.
        let mut latency = new_histogram();
        for v in 1..=600u64 {
            latency.record(v * 1000).unwrap();
        }
        let mut colds = new_histogram();
        for v in [900u64, 910, 920, 930, 940, 950, 966] {
            colds.record(v * 1_000_000).unwrap();
        }
        let mut row = all(0, 100.0, 0.594, 10.0);
        row.requests = 600;
        row.cold_starts = 7;
        row.cold_start_max_ms = Some(966.0);
        let logged = |_: &str, _: &str| {
            Some(Logged {
                latency: &latency,
                cold: Some(&colds),
            })
        };
        let c = choose(
            std::slice::from_ref(&row),
            &objectives(&["p99_ms<=1"], None),
            &logged,
        )
        .unwrap();
        let p = &c.points[0];
        assert_eq!(p.cold, Cold::Exact);
        // 607 requests: p99's rank 601 is the first cold start.
        assert!((p.measured.p99_us - 900_000.0).abs() < 1_000.0, "{p:?}");
        assert!((p.cold_p99_ms.unwrap() - 966.0).abs() < 1.0, "{p:?}");
        assert!(p.measured.p50_us < 400.0, "p50 barely moves: {p:?}");
        assert!(matches!(p.verdict, Verdict::Missed(_)));
        // A log that lacks some cold starts (written before they were logged) is not trusted.
        row.cold_starts = 9;
        let c = choose(
            std::slice::from_ref(&row),
            &objectives(&["p99_ms<=1"], None),
            &logged,
        )
        .unwrap();
        assert_eq!(c.points[0].cold, Cold::Bound);
        // Without cold starts, the row's values as they are.
        let plain = all(0, 100.0, 4.0, 10.0);
        let c = run(
            std::slice::from_ref(&plain),
            &objectives(&["p99_ms<=6"], None),
        );
        assert_eq!(
            (c.points[0].cold, c.points[0].measured.p99_us),
            (Cold::None, 4_000.0)
        );
    }

    #[test]
    fn the_pareto_front_holds_the_valid_points_nothing_beats_on_both() {
        let mut invalid = all(3, 5000.0, 0.5, 10.0);
        invalid.valid = false;
        invalid.reason = "not stable".into();
        let rows = [
            all(0, 500.0, 2.0, 10.0),
            all(1, 900.0, 5.0, 10.0),
            all(2, 800.0, 6.0, 10.0), // #1 beats it on both
            invalid,
        ];
        let c = run(&rows, &Objectives::default());
        let front: Vec<bool> = c.points.iter().map(|p| p.on_front).collect();
        assert_eq!(front, [true, true, false, false]);
        // No objective: every valid point meets them, the fastest is chosen.
        assert_eq!(c.chosen().unwrap().point, 1);
    }

    #[test]
    fn chart_lines_come_from_whole_point_objectives() {
        let o = objectives(
            &[
                "p99_ms<=6",
                "p99_ms<=8",
                "ocr:p99_ms<=2",
                "throughput_rps>=100",
            ],
            None,
        );
        assert_eq!(p99_line(&o), Some((6_000.0, Op::Le)));
        assert_eq!(throughput_line(&o), Some((100.0, Op::Ge)));
        assert_eq!(p99_line(&Objectives::default()), None);
    }
}
