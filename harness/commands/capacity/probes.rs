//! The capacity run: for each configuration, a closed-loop estimate, then [`Search`]'s probes,
//! each measured through the sweep's own path (`sweep::point::run`), judged, and written to
//! `capacity.csv` at once. The search and the judging are pure functions in `mod.rs`; this file is
//! the I/O that drives them.

use std::path::PathBuf;

use anyhow::Context;

use crate::pool::runtime::ortlib::OrtLib;
use crate::report::Row;
use crate::scenario::{LoadPoint, Point, Scenario};
use crate::sweep;

use super::{
    CSV_FILE, Capacity, CapacityOptions, ConfigResult, ProbeRow, RETRIES, Search, SearchOptions,
    Step, TIE_PCT, best, check, configs, judge, min_rate_floor, write_csv,
};

/// Runs the search for every configuration, writing `capacity.csv` after each probe.
pub(crate) async fn run(
    scenario: &Scenario,
    ort: Option<&OrtLib>,
    opts: &CapacityOptions,
) -> anyhow::Result<Capacity> {
    check(scenario, opts)?;
    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create the output folder {}", opts.out_dir.display()))?;
    // Probes measure without the scenario's SLO: the command's SLO is judged here, apart from
    // the measurement's own validity.
    let mut probe_scenario = scenario.clone();
    probe_scenario.slo.clear();
    let (cancel_tx, cancel) = tokio::sync::watch::channel(false);
    let signal = tokio::spawn(crate::signals::wait(cancel_tx));
    let mut probes = Probes {
        scenario: &probe_scenario,
        ort,
        opts,
        cancel: &cancel,
        csv_path: opts.out_dir.join(CSV_FILE),
        search: opts.search,
        rows: Vec::new(),
    };
    if let Some(floor) = min_rate_floor(scenario).filter(|f| *f > probes.search.min_rate) {
        probes.search.min_rate = floor.min(probes.search.max_rate);
        probes.say(format!(
            "note: the lowest rate tried is {} req/s, not {}: below it a probe cannot reach \
             min_requests = {} within its cap (max_duration)",
            probes.search.min_rate,
            opts.search.min_rate,
            scenario.workload.min_requests().unwrap_or(0)
        ));
    }
    let mut results = Vec::new();
    for (config, template) in configs(scenario) {
        match probes.config(&config, &template).await? {
            Some(result) => results.push(result),
            None => break, // interrupted
        }
    }
    signal.abort();
    let signal = signal.await.ok().flatten();
    let interrupted = signal.or_else(|| cancel.borrow().then_some(libc::SIGINT));
    write_csv(&probes.csv_path, &probes.rows)?;
    let best = best(&results, TIE_PCT);
    Ok(Capacity {
        results,
        search: probes.search,
        best,
        interrupted,
    })
}

/// One capacity run's probes: what each measures with, and every probe's row so far (written to
/// `capacity.csv` after each).
struct Probes<'a> {
    /// The scenario without its SLO.
    scenario: &'a Scenario,
    ort: Option<&'a OrtLib>,
    opts: &'a CapacityOptions,
    cancel: &'a tokio::sync::watch::Receiver<bool>,
    csv_path: PathBuf,
    search: SearchOptions,
    rows: Vec<ProbeRow>,
}

/// A configuration's search as it ended: the meeting probe's row, why the lowest failing rate
/// failed, and the rates that stayed unreliable.
struct Searched {
    search: Search,
    best_row: Option<usize>,
    failing_reason: String,
    unreliable: Vec<f64>,
}

impl Probes<'_> {
    fn say(&self, s: String) {
        if self.opts.progress {
            eprintln!("{s}");
        }
    }

    /// Measures configuration `template` at `load`; returns the point, its `all` row (`None`
    /// when interrupted) and its notes, said at once.
    async fn measure(
        &self,
        config: &str,
        template: &Point,
        load: LoadPoint,
    ) -> anyhow::Result<(Point, Option<Row>)> {
        let point = Point {
            id: format!("{config}-{}", load.id()),
            load,
            ..template.clone()
        };
        let r = sweep::point::run(self.scenario, self.ort, &point, self.cancel)
            .await
            .with_context(|| format!("capacity probe {}", point.id))?;
        r.notes.into_iter().for_each(|n| self.say(n));
        let all = r.rows.into_iter().find(|r| r.kind == "all");
        Ok((point, all))
    }

    fn push(&mut self, row: ProbeRow) -> anyhow::Result<()> {
        self.rows.push(row);
        write_csv(&self.csv_path, &self.rows)
    }

    /// Searches one configuration's capacity; `None` when interrupted.
    async fn config(
        &mut self,
        config: &str,
        template: &Point,
    ) -> anyhow::Result<Option<ConfigResult>> {
        let (start, estimate) = match self.opts.start_rate {
            Some(r) => (r, None),
            None => match self.estimate(config, template).await? {
                Some(found) => found,
                None => return Ok(None),
            },
        };
        let Some(s) = self.search(config, template, start).await? else {
            return Ok(None);
        };
        let Some(end) = s.search.end() else {
            return Ok(None);
        };
        let lower_bound = if s.best_row.is_none() { estimate } else { None };
        // The answer's row: the highest meeting probe, or the estimate that bounds it.
        let answer = s.best_row.or_else(|| {
            lower_bound
                .as_ref()
                .and_then(|e| self.rows.iter().position(|r| r == e))
        });
        if let Some(i) = answer {
            self.rows[i].chosen = true;
            write_csv(&self.csv_path, &self.rows)?;
        }
        Ok(Some(ConfigResult {
            config: config.to_string(),
            point: template.clone(),
            capacity: s.best_row.map(|i| self.rows[i].clone()),
            lowest_failing: s.search.lowest_failing(),
            end,
            probes: s.search.probes(),
            failing_reason: s.failing_reason,
            lower_bound: lower_bound.map(|mut r| {
                r.chosen = true;
                r
            }),
            unreliable: s.unreliable,
        }))
    }

    /// The closed-loop estimate: twice as many requests in flight as workers. Returns the rate
    /// to start the search at (half of what it served) and its row when it met the SLO; `None`
    /// when interrupted.
    async fn estimate(
        &mut self,
        config: &str,
        template: &Point,
    ) -> anyhow::Result<Option<(f64, Option<ProbeRow>)>> {
        let concurrency = (template.workers * 2).max(2);
        let load = LoadPoint::Closed { concurrency };
        let (point, all) = self.measure(config, template, load).await?;
        let Some(all) = all else {
            return Ok(None);
        };
        let row = judge(config, &point, 0, Step::Estimate, &all, &self.opts.slo);
        self.say(format!(
            "{config}: estimate: {concurrency} in flight gave {:.0} req/s (p99 {:.2} ms); starting at half",
            row.throughput_rps,
            row.latency_p99_us / 1e3
        ));
        let start = row.throughput_rps / 2.0;
        let estimate = (row.valid && row.slo_met).then(|| row.clone());
        self.push(row)?;
        let start = if start > 0.0 {
            start
        } else {
            self.search.min_rate
        };
        Ok(Some((start, estimate)))
    }

    /// The rate search from `start`: each probe judged, an unreliable one measured again up to
    /// [`RETRIES`] times before it counts against its rate. `None` when interrupted.
    async fn search(
        &mut self,
        config: &str,
        template: &Point,
        start: f64,
    ) -> anyhow::Result<Option<Searched>> {
        let mut s = Searched {
            search: Search::new(start, self.search),
            best_row: None,
            failing_reason: String::new(),
            unreliable: Vec::new(),
        };
        let mut retried = 0;
        while let Some((rate, step)) = s.search.next() {
            if *self.cancel.borrow() {
                return Ok(None);
            }
            let (point, all) = self
                .measure(config, template, LoadPoint::Open { rate })
                .await?;
            // Cut short: its numbers would mislead.
            let Some(all) = all.filter(|_| !*self.cancel.borrow()) else {
                return Ok(None);
            };
            let probe = s.search.probes() + 1;
            let row = judge(config, &point, probe, step, &all, &self.opts.slo);
            let met = row.met == Some(true);
            self.say(format!(
                "{config}: probe {} ({}) at {rate} req/s: {:.0} req/s, p99 {:.2} ms: {}",
                row.probe,
                match step {
                    Step::Bisect => "bisect",
                    _ => "bracket",
                },
                row.throughput_rps,
                row.latency_p99_us / 1e3,
                if met {
                    "meets the SLO".to_string()
                } else {
                    format!("fails ({})", row.reason)
                }
            ));
            if row.unreliable && retried < RETRIES {
                retried += 1;
                self.say(format!(
                    "{config}: probe at {rate} req/s could not be measured reliably; again ({retried} of {RETRIES})"
                ));
                self.push(row)?;
                continue;
            }
            retried = 0;
            if row.unreliable {
                s.unreliable.push(rate);
            }
            s.search.record(rate, met);
            if !met && s.search.lowest_failing() == Some(rate) {
                s.failing_reason = row.reason.clone();
            }
            self.push(row)?;
            if met && s.search.best() == Some(rate) {
                s.best_row = Some(self.rows.len() - 1);
            }
        }
        Ok(Some(s))
    }
}
