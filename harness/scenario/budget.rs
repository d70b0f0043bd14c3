//! What a scenario's stop rule promises before anything runs: how long each point takes (its
//! warm-ups and trials), and whether its measurement can reach its minimum at all. `bench
//! validate` and `--dry-run` print both (`describe.rs`), so that a stop rule which makes every
//! point invalid (`requests = 10` under `min_requests = 100`, an open loop too slow for its cap,
//! `min_requests = 1000000000000`) is found before a sweep spends its time on it.
//!
//! A point's time is known where its request rate is: an open loop's rate (a trace's mean), or a
//! closed loop of synthetic models, whose service time is declared. A closed loop of real models
//! takes between the duration and the cap; nothing here runs a model to find out.

use std::time::Duration;

use super::{Limit, LoadPoint, ModelSource, Point, Scenario, StopRule, Target};

/// More requests per second than any point of this harness has served (its own overhead is a few
/// µs per request): a minimum that needs more within its time cannot be reached.
const UNREACHABLE_RPS: f64 = 1e6;

/// A span of time known exactly (`lo == hi`), within bounds, or from below only (`hi` `None`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Span {
    pub(crate) lo: Duration,
    pub(crate) hi: Option<Duration>,
}

impl Span {
    fn exact(d: Duration) -> Span {
        Span { lo: d, hi: Some(d) }
    }

    fn add(self, o: Span) -> Span {
        Span {
            lo: self.lo + o.lo,
            hi: self.hi.zip(o.hi).map(|(a, b)| a + b),
        }
    }

    fn times(self, n: u32) -> Span {
        Span {
            lo: self.lo * n,
            hi: self.hi.map(|h| h * n),
        }
    }

    /// `about 12s`, `5s to 30s`, or `at least 5s`, rounded to what a reader plans with.
    pub(crate) fn describe(self) -> String {
        let round = |d: Duration| match d.as_secs_f64() {
            s if s < 10.0 => format!("{s:.1}s").replace(".0s", "s"),
            s => humantime::format_duration(Duration::from_secs(s.round() as u64)).to_string(),
        };
        match self.hi {
            Some(hi) if round(hi) == round(self.lo) => format!("about {}", round(hi)),
            Some(hi) => format!("{} to {}", round(self.lo), round(hi)),
            None => format!("at least {}", round(self.lo)),
        }
    }
}

/// The successful requests per second point `p` can be expected to serve, where that is known
/// before running: an open loop's rate (a trace's mean), or a closed loop of synthetic models (its
/// requests in flight, at most the workers' slots, over the mix's mean service time). `None` for
/// anything with an ONNX model in a closed loop.
pub(crate) fn expected_rate(s: &Scenario, p: &Point) -> Option<f64> {
    match p.load {
        LoadPoint::Open { rate } => Some(match &s.load.arrival {
            super::Arrival::Trace(t) if !t.is_empty() => {
                let mean_ns = t.iter().sum::<u64>() as f64 / t.len() as f64;
                1e9 / mean_ns.max(1.0)
            }
            _ => rate,
        }),
        LoadPoint::Closed { concurrency } => {
            let service = |m: usize| match &s.models[m].source {
                ModelSource::Synthetic(x) => {
                    let batch = p.batch.unwrap_or(1) as u64;
                    Some((x.mean_ns + x.per_sample_ns * batch) as f64 / 1e9)
                }
                ModelSource::Onnx(_) => None,
            };
            let (mut weighted, mut total) = (0.0, 0.0);
            for (t, w) in &s.workload.mix {
                let secs = match *t {
                    Target::Model(m) => service(m)?,
                    Target::Group(g) => s.workload.groups[g]
                        .members
                        .iter()
                        .map(|&m| service(m))
                        .try_fold(0.0, |a: f64, x| x.map(|x| a.max(x)))?,
                };
                weighted += w * secs;
                total += w;
            }
            let slots = concurrency.min(p.workers * p.worker_concurrency).max(1);
            let mean = weighted / total.max(f64::MIN_POSITIVE);
            (mean > 0.0).then(|| slots as f64 / mean)
        }
    }
}

/// How long one `limit` (a warm-up) takes at `rate`.
fn limit_time(limit: Limit, rate: Option<f64>) -> Span {
    match (limit, rate) {
        (Limit::Duration(d), _) => Span::exact(d),
        (Limit::Requests(n), Some(r)) => Span::exact(Duration::from_secs_f64(n as f64 / r)),
        (Limit::Requests(_), None) => Span {
            lo: Duration::ZERO,
            hi: None,
        },
    }
}

/// How long one measured trial takes at `rate`: a duration that runs on to its minimum takes
/// `min_requests / rate`, at least the duration and at most the cap.
pub(crate) fn trial_time(s: &Scenario, rate: Option<f64>) -> Span {
    let w = &s.workload;
    match (w.stop, w.min_requests(), w.cap()) {
        (StopRule::Fixed(Limit::Duration(d)), Some(min), Some(cap)) => match rate {
            Some(r) => Span::exact(Duration::from_secs_f64(min as f64 / r).clamp(d, cap)),
            None => Span {
                lo: d,
                hi: Some(cap),
            },
        },
        (StopRule::Fixed(limit), _, _) => limit_time(limit, rate),
        (
            StopRule::Stable {
                window,
                max_windows,
                ..
            },
            _,
            _,
        ) => Span {
            lo: window * 3,
            hi: Some(window * max_windows as u32),
        },
    }
}

/// How long point `p` takes: its warm-ups (one per trial when trials run in rounds), its trials
/// and the cool-downs between them. Worker start and model load are not counted.
pub(crate) fn point_time(s: &Scenario, p: &Point) -> Span {
    let w = &s.workload;
    let rate = expected_rate(s, p);
    let trials = w.trials.max(1) as u32;
    let warm_ups = if w.interleave { trials } else { 1 };
    limit_time(w.warmup, rate)
        .times(warm_ups)
        .add(trial_time(s, rate).times(trials))
        .add(Span::exact(w.cooldown * (trials - 1)))
}

/// The sweep's whole time, from its points'.
pub(crate) fn sweep_time(s: &Scenario) -> Span {
    s.points
        .iter()
        .map(|p| point_time(s, p))
        .fold(Span::exact(Duration::ZERO), Span::add)
}

/// Warnings about a stop rule that cannot reach its minimum: a request count below an explicit
/// `min_requests`, and points whose rate cannot give the minimum within the cap (a duration) or
/// within three windows (the stable rule). Each says what to change.
pub(crate) fn warnings(s: &Scenario) -> Vec<String> {
    let w = &s.workload;
    let Some(min) = w.min_requests() else {
        return Vec::new();
    };
    // The time the minimum must fit in, and the keys that set it.
    let (time, keys) = match (w.stop, w.cap()) {
        (StopRule::Fixed(Limit::Requests(n)), _) => {
            return (n < min)
                .then(|| {
                    format!(
                        "`requests = {n}` is fewer than `min_requests = {min}`: every point will be \
                         invalid; remove `min_requests` (a request count is judged on its own \
                         requests) or ask for at least {min} requests"
                    )
                })
                .into_iter()
                .collect();
        }
        (_, Some(cap)) => (
            cap,
            "raise `max_duration` (--max-duration) or lower `min_requests` (--min-requests)",
        ),
        (StopRule::Stable { window, .. }, _) => (
            window * 3,
            "lengthen `window` or lower `min_requests` (the reported windows are the last three)",
        ),
        (StopRule::Fixed(Limit::Duration(d)), None) => (d, "lower `min_requests`"),
    };
    let secs = time.as_secs_f64().max(1e-9);
    let time = humantime::format_duration(time);
    if min as f64 / secs > UNREACHABLE_RPS {
        return vec![format!(
            "`min_requests = {min}` within {time} needs more than {UNREACHABLE_RPS:e} requests/s, \
             which no point serves: every point will be invalid; {keys}"
        )];
    }
    let short: Vec<(&Point, f64)> = s
        .points
        .iter()
        .filter_map(|p| Some((p, expected_rate(s, p)?)))
        .filter(|(_, r)| r * secs < min as f64)
        .collect();
    match short.as_slice() {
        [] => Vec::new(),
        [(p, r), ..] => vec![format!(
            "{} point(s) cannot reach `min_requests = {min}` within {time} (point {} serves about \
             {:.0} requests in it, at {r:.1} requests/s): they will be invalid; {keys}, or raise \
             the rate",
            short.len(),
            p.id,
            r * secs
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(text: &str) -> Scenario {
        crate::scenario::load_bytes(text.as_bytes(), std::path::Path::new("s.toml")).unwrap()
    }

    const SLOW: &str = "[[model]]\nname = \"m\"\nsynthetic = { mean = \"100ms\" }\n";

    #[test]
    fn a_point_runs_past_its_duration_to_its_minimum_within_the_cap() {
        // 10 requests/s: 100 requests take 10 s, past the 2 s duration.
        let s = scenario(&format!(
            "{SLOW}[workload]\nwarmup = \"1s\"\nduration = \"2s\"\n"
        ));
        assert_eq!(expected_rate(&s, &s.points[0]), Some(10.0));
        assert_eq!(point_time(&s, &s.points[0]).describe(), "about 11s");
        // The cap bounds it.
        let s = scenario(&format!(
            "{SLOW}[workload]\nwarmup = \"1s\"\nduration = \"2s\"\nmax_duration = \"5s\"\ntrials = 2\n"
        ));
        assert_eq!(point_time(&s, &s.points[0]).describe(), "about 12s");
        // A closed loop of ONNX models takes between the duration and the cap.
        let span = Span {
            lo: Duration::from_secs(2),
            hi: Some(Duration::from_secs(30)),
        };
        assert_eq!(span.describe(), "2s to 30s");
    }

    #[test]
    fn a_stop_rule_that_cannot_reach_its_minimum_is_named() {
        let w = |s: &str| warnings(&scenario(&format!("{SLOW}[workload]\n{s}")));
        // The user's own count is judged on its own: no minimum, no warning.
        assert!(w("requests = 10\n").is_empty());
        let got = w("requests = 10\nmin_requests = 100\n");
        assert!(
            got[0].contains("`requests = 10` is fewer than `min_requests = 100`"),
            "{got:?}"
        );
        let got = w("min_requests = 1000000000000\n");
        assert!(got[0].contains("no point serves"), "{got:?}");
        // 10 requests/s for at most 5 s: 50 requests.
        let got = w("duration = \"1s\"\nmax_duration = \"5s\"\n");
        assert!(
            got[0].contains("1 point(s) cannot reach `min_requests = 100` within 5s")
                && got[0].contains("about 50 requests"),
            "{got:?}"
        );
        assert!(
            w("duration = \"1s\"\n").is_empty(),
            "100 requests fit in 60 s"
        );
        // An open loop at 2 requests/s, stable windows of 1 s: 6 requests in the last three.
        let got = warnings(&scenario(&format!(
            "{SLOW}[load]\nkind = \"open\"\nrate = 2\n[workload]\nstop = \"stable\"\n"
        )));
        assert!(got[0].contains("within 3s"), "{got:?}");
    }

    /// `run.json` records the cap only away from its default, so that runs from before the key
    /// still compare with runs that leave it alone.
    #[test]
    fn the_cap_is_a_setting_only_away_from_its_default() {
        let settings = |w: &str| {
            crate::scenario::effective_settings(&scenario(&format!("{SLOW}[workload]\n{w}")))
        };
        assert!(!settings("duration = \"2s\"\n").contains_key("workload.max_duration"));
        assert_eq!(
            settings("duration = \"2s\"\nmax_duration = \"5m\"\n")["workload.max_duration"],
            "5m"
        );
    }
}
