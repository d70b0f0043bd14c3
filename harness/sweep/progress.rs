//! What a sweep tells a person while it runs, on stderr: on a terminal, a progress bar with the
//! time left; off one (a CI log, a file), a line per finished point, since a bar is not drawn there
//! and minutes of silence look like a hang. `--quiet` turns both off.
//!
//! The time left is [`Eta`]: the mean time of the steps done so far times the steps left, or,
//! before any step is done, the stop rule's own time per step where it is a duration.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::report::Row;
use crate::report::console::{NO_LATENCY, human_us};
use crate::scenario::{Limit, Scenario, StopRule};

/// The time left of a sweep of `total` steps (a step is one point, or one trial of a point when
/// trials are interleaved).
#[derive(Debug, Clone)]
pub(crate) struct Eta {
    total: usize,
    done: usize,
    /// The time the steps done took, together.
    spent: Duration,
    /// What one step should take before any is done, where the scenario says.
    expected: Option<Duration>,
}

impl Eta {
    pub(crate) fn new(total: usize, expected: Option<Duration>) -> Eta {
        Eta {
            total,
            done: 0,
            spent: Duration::ZERO,
            expected,
        }
    }

    /// One more step done, which took `took`.
    pub(crate) fn step(&mut self, took: Duration) {
        self.done += 1;
        self.spent += took;
    }

    /// The time the steps left should take: what the steps done took on average (they measure
    /// this machine, pool starts and warm-ups included), else the expected time per step.
    pub(crate) fn left(&self) -> Option<Duration> {
        let left = u32::try_from(self.total.saturating_sub(self.done)).ok()?;
        let per_step = match self.done {
            0 => self.expected?,
            n => self.spent / u32::try_from(n).ok()?,
        };
        Some(per_step * left)
    }

    /// What one step of `scenario` should take from its warm-up and stop rule where both are
    /// durations: none where either counts requests (its time depends on the model).
    pub(crate) fn expected_step(scenario: &Scenario, trials_per_step: usize) -> Option<Duration> {
        let warmup = match scenario.workload.warmup {
            Limit::Duration(d) => d,
            Limit::Requests(0) => Duration::ZERO,
            Limit::Requests(_) => return None,
        };
        let trial = match scenario.workload.stop {
            StopRule::Fixed(Limit::Duration(d)) => d,
            _ => return None,
        };
        Some(warmup + trial * u32::try_from(trials_per_step).ok()?)
    }
}

/// `1 h 2 min`, `2 min 3 s`, `4.1 s`: a duration as a progress line shows it.
pub(crate) fn short(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The line a finished point gets off a terminal: `point 3/32 w1-t1-pipe-cpu-c4: ok, 812 req/s,
/// p99 5.21 ms, took 4.1 s; 12.3 s in, about 1 min 50 s left`. The verdict is `ok` or `INVALID`
/// (the table at the end says why).
pub(crate) fn point_line(
    (n, of): (usize, usize),
    all: Option<&Row>,
    id: &str,
    took: Duration,
    elapsed: Duration,
    left: Option<Duration>,
) -> String {
    let measured = all.map_or_else(String::new, |a| {
        let p99 = if a.requests == 0 {
            NO_LATENCY.to_string()
        } else {
            human_us(a.latency_p99_us)
        };
        format!(
            " {}, {:.0} req/s, p99 {p99},",
            if a.valid { "ok" } else { "INVALID" },
            a.throughput_rps
        )
    });
    let left = left
        .filter(|l| !l.is_zero())
        .map_or_else(String::new, |l| format!(", about {} left", short(l)));
    format!(
        "point {n}/{of} {id}:{measured} took {}; {} in{left}",
        short(took),
        short(elapsed)
    )
}

/// How a sweep shows its progress.
pub(crate) struct Progress {
    bar: ProgressBar,
    /// Print a line per finished point (shown, and stderr is not a terminal).
    lines: bool,
    eta: Eta,
    started: Instant,
    step_started: Instant,
    /// Finished points, and points in all.
    points: (usize, usize),
}

impl Progress {
    /// Progress over `points` points of `steps_per_point` steps each, each expected to take
    /// `expected` (see [`Eta::expected_step`]); nothing is shown unless `shown`.
    pub(crate) fn new(
        shown: bool,
        points: usize,
        steps_per_point: usize,
        expected: Option<Duration>,
    ) -> Progress {
        let steps = points * steps_per_point;
        let terminal = std::io::stderr().is_terminal();
        let bar = if shown && terminal {
            ProgressBar::new(steps as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {prefix}{msg}",
            )
            .expect("valid template"),
        );
        let now = Instant::now();
        let progress = Progress {
            bar,
            lines: shown && !terminal,
            eta: Eta::new(steps, expected),
            started: now,
            step_started: now,
            points: (0, points),
        };
        progress.show_left();
        progress
    }

    /// The bar's `about 2 min left · ` prefix.
    fn show_left(&self) {
        self.bar.set_prefix(
            self.eta
                .left()
                .map_or_else(String::new, |l| format!("about {} left · ", short(l))),
        );
    }

    /// A step begins: `what` names it on the bar.
    pub(crate) fn start(&mut self, what: String) {
        self.step_started = Instant::now();
        self.bar.set_message(what);
    }

    /// A step was skipped (its point already finished): it counts as done and took nothing.
    pub(crate) fn skip(&mut self) {
        self.eta.total = self.eta.total.saturating_sub(1);
        self.bar.inc(1);
    }

    /// The step begun last is done; `finished` holds the point's rows when it was the point's last
    /// step.
    pub(crate) fn done(&mut self, id: &str, finished: Option<&[Row]>) {
        self.eta.step(self.step_started.elapsed());
        self.bar.inc(1);
        self.show_left();
        let Some(rows) = finished else {
            return;
        };
        self.points.0 += 1;
        if self.lines {
            let all = rows.iter().find(|r| r.kind == "all");
            eprintln!(
                "{}",
                point_line(
                    self.points,
                    all,
                    id,
                    self.step_started.elapsed(),
                    self.started.elapsed(),
                    self.eta.left(),
                )
            );
        }
    }

    /// Runs `f` (which prints) with the bar out of the way.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_is_the_mean_step_times_the_steps_left() {
        let s = Duration::from_secs;
        let mut eta = Eta::new(4, Some(s(10)));
        assert_eq!(
            eta.left(),
            Some(s(40)),
            "before any step: the expected time"
        );
        eta.step(s(2));
        eta.step(s(4));
        assert_eq!(eta.left(), Some(s(6)), "two steps left at 3 s each");
        eta.step(s(3));
        eta.step(s(3));
        assert_eq!(eta.left(), Some(Duration::ZERO));
        assert_eq!(Eta::new(3, None).left(), None, "nothing to go by");
    }

    #[test]
    fn a_stop_rule_of_durations_gives_the_expected_step() {
        let load = |extra: &str| {
            crate::scenario::load_bytes(
                format!("[[model]]\nname = \"m\"\nsynthetic = {{ mean = \"1ms\" }}\n{extra}")
                    .as_bytes(),
                std::path::Path::new("s.toml"),
            )
            .unwrap()
        };
        let s = load("[workload]\nwarmup = \"1s\"\nduration = \"2s\"\n");
        assert_eq!(
            Eta::expected_step(&s, 3),
            Some(Duration::from_secs(7)),
            "warm-up and three trials"
        );
        let s = load("[workload]\nwarmup = \"1s\"\nrequests = 500\n");
        assert_eq!(Eta::expected_step(&s, 1), None);
    }

    #[test]
    fn a_point_line_is_short_and_says_what_is_left() {
        let all = Row {
            kind: "all".into(),
            model: "all".into(),
            valid: true,
            requests: 10,
            throughput_rps: 812.4,
            latency_p99_us: 5_210.0,
            ..Row::default()
        };
        let s = Duration::from_millis;
        assert_eq!(
            point_line(
                (3, 32),
                Some(&all),
                "w1-t1-pipe-cpu-c4",
                s(4_100),
                s(12_300),
                Some(s(123_000))
            ),
            "point 3/32 w1-t1-pipe-cpu-c4: ok, 812 req/s, p99 5.21 ms, took 4.1 s; 12.3 s in, \
             about 2 min 3 s left"
        );
        let failed = Row {
            valid: false,
            requests: 0,
            ..all
        };
        let line = point_line((1, 1), Some(&failed), "p", s(1), s(1), None);
        assert!(line.contains("INVALID") && line.contains("p99 –"), "{line}");
        assert!(!line.contains("left"), "{line}");
        let last = point_line((1, 1), Some(&failed), "p", s(1), s(1), Some(Duration::ZERO));
        assert!(
            !last.contains("left"),
            "nothing left after the last point: {last}"
        );
    }
}
