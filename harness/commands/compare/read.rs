//! Reading one side of a comparison from disk: its `results.csv` by column name (only the columns
//! the comparison needs must be there), its `run.json`, and the per-trial histograms of its
//! `hlog/` folder, which the confidence intervals and the trial ranges are computed from.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;

use crate::report::hlog;
use crate::report::results::Results;

use super::{Metric, Side, Trial};

/// Reads one side: `path` is a `results.csv` or a results directory holding one. `label` names the
/// side in messages (`baseline`, `candidate`). Only the columns the comparison needs must be
/// present; others may be missing or extra (results of another version of bench).
pub(crate) fn load(path: &Path, label: &str, metrics: &[Metric]) -> anyhow::Result<Side> {
    let fix = "pass a results.csv, or a results directory written by `bench sweep --out DIR`";
    anyhow::ensure!(
        path.exists(),
        "{label} {} does not exist: {fix}",
        path.display()
    );
    let file = if path.is_dir() {
        path.join("results.csv")
    } else {
        path.to_path_buf()
    };
    anyhow::ensure!(
        file.is_file(),
        "{label} {} holds no results.csv: {fix}",
        path.display()
    );
    // Rows are read by column name; columns this version has and the file lacks take the defaults.
    let mut results = Results::from_csv(&file).with_context(|| label.to_string())?;
    let mut required = vec!["point_id", "model", "trials", "valid"];
    for m in metrics {
        required.push(m.column());
        if let Some((lo, hi)) = m.range_columns() {
            required.extend([lo, hi]);
        }
    }
    let lacking: Vec<&str> = required
        .into_iter()
        .filter(|c| !results.columns.iter().any(|h| h == c))
        .collect();
    anyhow::ensure!(
        lacking.is_empty(),
        "{label} {} lacks the column(s) {}: it is not a results.csv written by `bench sweep` \
         (or one from a version too old to compare); {fix}",
        file.display(),
        lacking.join(", ")
    );
    anyhow::ensure!(
        !results.rows.is_empty(),
        "{label} {} has no rows: the sweep measured no point",
        file.display()
    );
    let mut side = Side::of_rows(file.clone(), std::mem::take(&mut results.rows));
    match results.run_info() {
        Ok(info) => side.info = Some(info),
        Err(crate::report::results::ReadError::Missing { .. }) => side.warnings.push(format!(
            "{label} has no run.json beside {}: whether the two runs are comparable is not checked",
            file.display()
        )),
        Err(e) => return Err(e).with_context(|| label.to_string()),
    }
    let wanted: Vec<Metric> = metrics
        .iter()
        .copied()
        .filter(|m| m.range_columns().is_none())
        .collect();
    if hlog::dir(&results.dir).is_dir() {
        read_trials(&mut side, &results, &wanted);
    }
    Ok(side)
}

/// Fills `side.trials` from each point's histogram log (one interval per trial): one latency
/// histogram per trial and model. From them, for rows of two trials or more, `side.ranges` gets
/// each of `metrics`' minimum and maximum across the trials. Each log is read once.
fn read_trials(side: &mut Side, results: &Results, metrics: &[Metric]) {
    let mut done = HashSet::new();
    for r in &side.rows {
        if !done.insert(r.point_id.clone()) {
            continue;
        }
        let log = match results.hlog(&r.point_id) {
            Ok(Some(log)) => log,
            Ok(None) => continue,
            Err(e) => {
                side.warnings.push(format!(
                    "{e}; its trials are not used (no interval, no trial ranges)"
                ));
                continue;
            }
        };
        for model in side.rows.iter().filter(|x| x.point_id == r.point_id) {
            let tag = hlog::tag(&model.model, "latency");
            let trials: Vec<Trial> = log
                .entries
                .iter()
                .filter(|e| e.tag == tag)
                .map(|e| Trial {
                    latency: e.histogram.clone(),
                    span_s: e.span.as_secs_f64(),
                })
                .collect();
            if model.trials >= 2 && trials.len() >= 2 {
                for &m in metrics {
                    let values: Vec<f64> = trials
                        .iter()
                        .map(|t| {
                            let h = &t.latency;
                            match m.quantile() {
                                Some(q) => h.value_at_quantile(q) as f64 / 1000.0,
                                None if m == Metric::Max => h.max() as f64 / 1000.0,
                                None => h.mean() / 1000.0,
                            }
                        })
                        .collect();
                    if let Some((_, lo, hi)) = crate::metrics::spread(&values) {
                        side.ranges
                            .insert((model.point_id.clone(), model.model.clone(), m), (lo, hi));
                    }
                }
            }
            if !trials.is_empty() {
                side.trials
                    .insert((model.point_id.clone(), model.model.clone()), trials);
            }
        }
    }
}
