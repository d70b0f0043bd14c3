//! Service-level objectives: `p99_ms <= 50`, `throughput_rps >= 1000`, `error_pct <= 0.1`,
//! `cold_p99_ms <= 800`.
//!
//! A point that misses any objective is invalid. The same syntax is accepted wherever an SLO is
//! given (the scenario's `slo` key, command-line flags). `bench report --slo` also takes objectives
//! of one model or ensemble group, `MODEL:METRIC OP NUMBER` ([`Objective`]).
//!
//! Latency objectives count cold starts: whoever builds a [`Measured`] puts in the latency of every
//! request, cold starts included (`metrics::with_cold_starts` from histograms,
//! `Row::measured` from a row alone).

use std::fmt;

use serde::Serialize;

use super::error::Errors;
use super::raw::OneOrMany;
use super::source::KeyPath;

/// A quantity an objective constrains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Metric {
    P50Ms,
    P90Ms,
    P95Ms,
    P99Ms,
    P999Ms,
    MaxMs,
    MeanMs,
    ThroughputRps,
    ErrorPct,
    /// The p99 of the cold starts alone (on-demand placement); 0 without cold starts.
    ColdP99Ms,
}

impl Metric {
    pub(crate) const ALL: [Metric; 10] = [
        Metric::P50Ms,
        Metric::P90Ms,
        Metric::P95Ms,
        Metric::P99Ms,
        Metric::P999Ms,
        Metric::MaxMs,
        Metric::MeanMs,
        Metric::ThroughputRps,
        Metric::ErrorPct,
        Metric::ColdP99Ms,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Metric::P50Ms => "p50_ms",
            Metric::P90Ms => "p90_ms",
            Metric::P95Ms => "p95_ms",
            Metric::P99Ms => "p99_ms",
            Metric::P999Ms => "p999_ms",
            Metric::MaxMs => "max_ms",
            Metric::MeanMs => "mean_ms",
            Metric::ThroughputRps => "throughput_rps",
            Metric::ErrorPct => "error_pct",
            Metric::ColdP99Ms => "cold_p99_ms",
        }
    }

    /// The metric's unit, for messages: `ms`, `req/s` or `%`.
    pub(crate) fn unit(self) -> &'static str {
        match self {
            Metric::ThroughputRps => "req/s",
            Metric::ErrorPct => "%",
            _ => "ms",
        }
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Op {
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = ">")]
    Gt,
}

impl Op {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }
    pub(crate) fn holds(self, actual: f64, bound: f64) -> bool {
        match self {
            Op::Le => actual <= bound,
            Op::Lt => actual < bound,
            Op::Ge => actual >= bound,
            Op::Gt => actual > bound,
        }
    }
}

/// One objective, e.g. `p99_ms <= 50`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Constraint {
    pub(crate) metric: Metric,
    pub(crate) op: Op,
    pub(crate) value: f64,
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.metric.name(),
            self.op.symbol(),
            self.value
        )
    }
}

/// The measured values an SLO is checked against (one point's, or one probe's). The latency
/// fields hold every request's latency, cold starts included.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Measured {
    pub(crate) p50_us: f64,
    pub(crate) p90_us: f64,
    pub(crate) p95_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
    pub(crate) max_us: f64,
    pub(crate) mean_us: f64,
    pub(crate) throughput_rps: f64,
    /// Completed requests.
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// The p99 of the cold starts alone, µs; 0 without cold starts.
    pub(crate) cold_p99_us: f64,
}

impl Measured {
    /// The value of `metric`, in the metric's unit (ms, requests/s or percent of sends).
    pub(crate) fn value(&self, metric: Metric) -> f64 {
        match metric {
            Metric::P50Ms => self.p50_us / 1e3,
            Metric::P90Ms => self.p90_us / 1e3,
            Metric::P95Ms => self.p95_us / 1e3,
            Metric::P99Ms => self.p99_us / 1e3,
            Metric::P999Ms => self.p999_us / 1e3,
            Metric::MaxMs => self.max_us / 1e3,
            Metric::MeanMs => self.mean_us / 1e3,
            Metric::ThroughputRps => self.throughput_rps,
            Metric::ErrorPct => {
                let sent = self.requests + self.errors;
                if sent == 0 {
                    0.0
                } else {
                    100.0 * self.errors as f64 / sent as f64
                }
            }
            Metric::ColdP99Ms => self.cold_p99_us / 1e3,
        }
    }
}

/// Checks every objective against `measured`, adds a reason to `reasons` for each one missed, and
/// says whether all were met.
pub(crate) fn check(slo: &[Constraint], measured: &Measured, reasons: &mut Vec<String>) -> bool {
    let mut met = true;
    for c in slo {
        let actual = measured.value(c.metric);
        if !c.op.holds(actual, c.value) {
            met = false;
            reasons.push(format!(
                "SLO missed: {} = {actual:.3} (needs {c})",
                c.metric.name()
            ));
        }
    }
    met
}

/// Parses `METRIC OP NUMBER` (spaces optional); `METRIC=NUMBER` means `<=` for latencies and errors
/// and `>=` for throughput, as in `--slo p99_ms=50`.
pub(crate) fn parse(text: &str) -> Result<Constraint, String> {
    let t = text.trim();
    if let Some((model, rest)) = t.split_once(':') {
        return Err(format!(
            "`{t}` is an objective of model `{}`: only `bench report --slo` takes those; here \
             write `{}` for the whole point",
            model.trim(),
            rest.trim()
        ));
    }
    let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    let metric = Metric::ALL
        .iter()
        .copied()
        .filter(|m| t.starts_with(m.name()))
        .max_by_key(|m| m.name().len())
        .ok_or_else(|| {
            let word: String = t
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            format!(
                "unknown SLO metric `{word}`; use one of: {}",
                names.join(", ")
            )
        })?;
    let rest = t[metric.name().len()..].trim_start();
    let (op, number) = if let Some(r) = rest.strip_prefix("<=") {
        (Op::Le, r)
    } else if let Some(r) = rest.strip_prefix(">=") {
        (Op::Ge, r)
    } else if let Some(r) = rest.strip_prefix('<') {
        (Op::Lt, r)
    } else if let Some(r) = rest.strip_prefix('>') {
        (Op::Gt, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (
            if metric == Metric::ThroughputRps {
                Op::Ge
            } else {
                Op::Le
            },
            r,
        )
    } else {
        return Err(format!(
            "expected `<=`, `<`, `>=`, `>` or `=` after `{}` in `{t}`",
            metric.name()
        ));
    };
    let number = number.trim();
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("`{number}` is not a number >= 0 in `{t}`"))?;
    Ok(Constraint { metric, op, value })
}

/// One objective of `bench report --slo`: `METRIC OP NUMBER` for the whole point (its `all` row),
/// or `MODEL:METRIC OP NUMBER` for one model or ensemble group (its row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Objective {
    /// The model or group; `None` for the whole point.
    pub(crate) model: Option<String>,
    pub(crate) constraint: Constraint,
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.model {
            Some(m) => write!(f, "{m}:{}", self.constraint),
            None => write!(f, "{}", self.constraint),
        }
    }
}

impl From<Constraint> for Objective {
    fn from(constraint: Constraint) -> Objective {
        Objective {
            model: None,
            constraint,
        }
    }
}

/// Parses an [`Objective`]: [`parse`]'s syntax, optionally after `MODEL:` (metric names hold no
/// `:`, so the first one ends the model's name).
pub(crate) fn parse_objective(text: &str) -> Result<Objective, String> {
    let t = text.trim();
    match t.split_once(':') {
        None => parse(t).map(Objective::from),
        Some((model, rest)) => {
            let model = model.trim();
            if model.is_empty() {
                return Err(format!(
                    "`{t}` names no model before `:`; write `MODEL:METRIC OP NUMBER`, e.g. \
                     `ocr:p99_ms <= 50`, or leave out the `:` for the whole point"
                ));
            }
            Ok(Objective {
                model: Some(model.to_string()),
                constraint: parse(rest)?,
            })
        }
    }
}

/// A number with at most three decimals and no trailing zeros: `7.21`, `6`, `0.125`.
pub(crate) fn short(v: f64) -> String {
    let s = format!("{v:.3}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `actual` with its unit and how far it misses `c`'s bound: `7.21 ms, 1.21 ms over (+20%)` for
/// `p99_ms <= 6`. The percent is left out when the bound is 0.
pub(crate) fn miss(c: &Constraint, actual: f64) -> String {
    let unit = |v: f64| match c.metric.unit() {
        "%" => format!("{}%", short(v)),
        u => format!("{} {u}", short(v)),
    };
    let side = match c.op {
        Op::Le | Op::Lt => "over",
        Op::Ge | Op::Gt => "under",
    };
    let pct = if c.value > 0.0 {
        format!(" ({:+.0}%)", 100.0 * (actual - c.value) / c.value)
    } else {
        String::new()
    };
    format!(
        "{}, {} {side}{pct}",
        unit(actual),
        unit((actual - c.value).abs())
    )
}

pub(super) fn resolve(
    raw: Option<&OneOrMany<String>>,
    key: &KeyPath,
    e: &mut Errors,
) -> Vec<Constraint> {
    let Some(raw) = raw else { return Vec::new() };
    let mut out = Vec::new();
    for (i, text) in raw.to_vec().iter().enumerate() {
        let k = if matches!(raw, OneOrMany::Many(_)) {
            key.index(i)
        } else {
            key.clone()
        };
        match parse(text) {
            Ok(c) => out.push(c),
            Err(msg) => e.push(
                &k,
                msg,
                "write objectives like `slo = [\"p99_ms <= 50\", \"throughput_rps >= 100\"]`",
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(
            parse("p99_ms <= 50").unwrap(),
            Constraint {
                metric: Metric::P99Ms,
                op: Op::Le,
                value: 50.0
            }
        );
        assert_eq!(
            parse("p999_ms<2.5").unwrap().metric,
            Metric::P999Ms,
            "longest metric name wins"
        );
        assert_eq!(parse("throughput_rps >= 1000").unwrap().op, Op::Ge);
        assert_eq!(parse("p99_ms=50").unwrap().op, Op::Le);
        assert_eq!(parse("throughput_rps=10").unwrap().op, Op::Ge);
        assert_eq!(parse("  error_pct <= 0.1 ").unwrap().value, 0.1);
        assert_eq!(parse("p99_ms <= 50").unwrap().to_string(), "p99_ms <= 50");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(
            parse("p98_ms <= 5")
                .unwrap_err()
                .contains("unknown SLO metric `p98_ms`")
        );
        assert!(parse("p99_ms ~ 5").unwrap_err().contains("expected `<=`"));
        assert!(
            parse("p99_ms <= fast")
                .unwrap_err()
                .contains("`fast` is not a number")
        );
        assert!(parse("p99_ms <= -1").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn checks_each_objective_in_its_unit() {
        let m = Measured {
            p99_us: 42_000.0,
            throughput_rps: 900.0,
            requests: 990,
            errors: 10,
            ..Measured::default()
        };
        assert_eq!(m.value(Metric::P99Ms), 42.0);
        assert_eq!(m.value(Metric::ErrorPct), 1.0);
        assert_eq!(Measured::default().value(Metric::ErrorPct), 0.0);
        let slo: Vec<Constraint> = ["p99_ms <= 50", "throughput_rps >= 1000", "error_pct <= 1"]
            .iter()
            .map(|t| parse(t).unwrap())
            .collect();
        let mut reasons = Vec::new();
        assert!(!check(&slo, &m, &mut reasons));
        assert_eq!(
            reasons,
            ["SLO missed: throughput_rps = 900.000 (needs throughput_rps >= 1000)"]
        );
        reasons.clear();
        assert!(check(&slo[..1], &m, &mut reasons) && reasons.is_empty());
    }

    #[test]
    fn objectives_may_name_a_model() {
        let o = parse_objective(" ocr : p99_ms<=50").unwrap();
        assert_eq!(o.model.as_deref(), Some("ocr"));
        assert_eq!(o.constraint, parse("p99_ms <= 50").unwrap());
        assert_eq!(o.to_string(), "ocr:p99_ms <= 50");
        assert_eq!(parse_objective("p99_ms=6").unwrap().model, None);
        assert_eq!(
            parse_objective("p99_ms=6").unwrap().to_string(),
            "p99_ms <= 6"
        );
        assert!(
            parse_objective(":p99_ms=6")
                .unwrap_err()
                .contains("names no model")
        );
        assert!(
            parse_objective("ocr:p98_ms=6")
                .unwrap_err()
                .contains("unknown SLO metric `p98_ms`")
        );
        // Where only whole-point objectives make sense, a model's is refused with the fix.
        let e = parse("ocr:p99_ms <= 50").unwrap_err();
        assert!(
            e.contains("objective of model `ocr`") && e.contains("write `p99_ms <= 50`"),
            "{e}"
        );
    }

    #[test]
    fn cold_starts_have_their_own_objective() {
        let c = parse("cold_p99_ms <= 800").unwrap();
        assert_eq!(c.metric, Metric::ColdP99Ms);
        let m = Measured {
            cold_p99_us: 950_000.0,
            ..Measured::default()
        };
        assert_eq!(m.value(Metric::ColdP99Ms), 950.0);
        let mut reasons = Vec::new();
        assert!(!check(&[c], &m, &mut reasons));
        assert!(
            check(&[c], &Measured::default(), &mut reasons),
            "no cold starts meets it"
        );
    }

    #[test]
    fn misses_say_by_how_much() {
        let c = parse("p99_ms <= 6").unwrap();
        assert_eq!(miss(&c, 7.21), "7.21 ms, 1.21 ms over (+20%)");
        let t = parse("throughput_rps >= 500").unwrap();
        assert_eq!(miss(&t, 412.0), "412 req/s, 88 req/s under (-18%)");
        let e = parse("error_pct <= 0").unwrap();
        assert_eq!(miss(&e, 0.5), "0.5%, 0.5% over");
        assert_eq!(
            (short(2.0), short(0.1254), short(12.5)),
            ("2".into(), "0.125".into(), "12.5".into())
        );
    }

    #[test]
    fn ops_compare() {
        assert!(Op::Le.holds(50.0, 50.0) && !Op::Lt.holds(50.0, 50.0));
        assert!(Op::Ge.holds(50.0, 50.0) && !Op::Gt.holds(50.0, 50.0));
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse(&s);
        }

        #[test]
        fn round_trips(m in prop::sample::select(Metric::ALL.to_vec()), op in prop::sample::select(vec![Op::Le, Op::Lt, Op::Ge, Op::Gt]), v in 0.0f64..1e6) {
            let c = Constraint { metric: m, op, value: v };
            prop_assert_eq!(parse(&c.to_string()).unwrap(), c);
        }
    }
}
