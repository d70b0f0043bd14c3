//! `bench merge`: combines the result folders of several machines into one folder that reads like a
//! single sweep's (`results.csv`, `run.json`, `hlog/`).
//!
//! Two cases, which can mix:
//! - **Shards** (`bench sweep --shard I/N` on N machines): each point was run once; its rows and its
//!   histogram log are taken as they are.
//! - **The same point on several machines** (to scale the load beyond one machine): the point's
//!   histogram logs are concatenated, and its rows are recomputed from them. Percentiles are exact:
//!   trial `t` of every machine is added into one histogram (HdrHistograms merge losslessly), each
//!   merged trial gives percentiles, and the row holds their median across trials, as a single run's
//!   row does. Throughput is the sum of the machines' throughputs. See [`merge_rows`] for every column.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;

use crate::metrics::{Percentiles, median, new_histogram};
use crate::report::json::{Host, RunInfo, SCHEMA_VERSION, SourceInfo};
use crate::report::results::{CSV_FILE, JSON_FILE, Results};
use crate::report::{Row, Timings, hlog, write_atomic};
use crate::scenario::shard::ShardInfo;

/// One input folder.
struct Source {
    dir: PathBuf,
    info: RunInfo,
    results: Results,
}

impl Source {
    fn load(dir: &Path) -> anyhow::Result<Source> {
        anyhow::ensure!(
            dir.is_dir(),
            "{} is not a folder: give the --out folders of `bench sweep` runs",
            dir.display()
        );
        for p in [dir.join(JSON_FILE), dir.join(CSV_FILE)] {
            anyhow::ensure!(
                p.is_file(),
                "{} is missing: is {} a results folder of `bench sweep` (results.csv, run.json, hlog/)?",
                p.display(),
                dir.display()
            );
        }
        let results = Results::open(dir)?;
        let info = results.run_info()?;
        Ok(Source {
            dir: dir.to_path_buf(),
            info,
            results,
        })
    }

    fn rows(&self) -> &[Row] {
        &self.results.rows
    }

    fn hash(&self) -> &str {
        &self.info.scenario.sha256
    }

    fn shard(&self) -> Option<&ShardInfo> {
        self.info.shard.as_ref()
    }

    fn shard_name(&self) -> String {
        self.shard()
            .map_or_else(|| "whole sweep".into(), |s| format!("shard {}", s.shard()))
    }
}

/// Merges the result folders `dirs` into `out` (which must not exist yet, or be empty). Errors when
/// the folders come from different scenario files, unless `force`.
pub(crate) fn merge(dirs: &[PathBuf], out: &Path, force: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        !dirs.is_empty(),
        "give at least one results folder to merge"
    );
    let sources = dirs
        .iter()
        .map(|d| Source::load(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    check_out(dirs, out)?;
    check_scenarios(&sources, force)?;
    let order = points_in_order(&sources);
    check_logs(&sources, &order)?;
    // Every input is read and every sum computed before anything is written: a broken input leaves
    // no half-merged --out behind.
    let merged = merge_points(&sources, &order, out)?;
    write_logs(out, merged.logs)?;
    let csv_path = out.join("results.csv");
    write_atomic(&csv_path, &crate::report::csv::to_csv(&merged.rows)?)
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
    let merged_indexes: BTreeSet<usize> = order.iter().map(|(_, index, _)| *index).collect();
    let info = run_info(&sources, &merged_indexes);
    let json_path = out.join("run.json");
    write_atomic(&json_path, &serde_json::to_vec_pretty(&info)?)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    tell(
        &sources,
        &info,
        &merged_indexes,
        (order.len(), merged.repeated),
        out,
    );
    println!("results: {}", csv_path.display());
    // The merged report is a view of the files just written: failing to draw it loses nothing.
    match crate::report::render(out) {
        Ok(paths) => println!("report: {}", paths[0].display()),
        Err(e) => eprintln!("warning: no report: {e:#}; retry with `bench report DIR`"),
    }
    Ok(())
}

/// Every point of the inputs, in sweep order (by index, then id): its id, its index and the
/// sources that ran it.
fn points_in_order(sources: &[Source]) -> Vec<(String, usize, Vec<usize>)> {
    let mut points: BTreeMap<String, (usize, Vec<usize>)> = BTreeMap::new();
    for (s, src) in sources.iter().enumerate() {
        for r in src.rows() {
            let e = points
                .entry(r.point_id.clone())
                .or_insert((r.point, vec![]));
            e.0 = e.0.min(r.point);
            if !e.1.contains(&s) {
                e.1.push(s);
            }
        }
    }
    let mut order: Vec<(String, usize, Vec<usize>)> = points
        .into_iter()
        .map(|(id, (index, from))| (id, index, from))
        .collect();
    order.sort_by_key(|(id, index, _)| (*index, id.clone()));
    order
}

/// A point run by several inputs is recomputed from their histogram logs: checks they all have
/// one before anything is written.
fn check_logs(sources: &[Source], order: &[(String, usize, Vec<usize>)]) -> anyhow::Result<()> {
    for (id, _, from) in order.iter().filter(|(_, _, from)| from.len() > 1) {
        for &s in from {
            let path = hlog::path(&sources[s].dir, id);
            anyhow::ensure!(
                path.is_file(),
                "point {id} was run in {} of the folders, and its percentiles are recomputed from \
                 their histogram logs, but {} is missing; merge only folders written by a `bench \
                 sweep` that writes hlog/",
                from.len(),
                path.display()
            );
        }
    }
    Ok(())
}

/// The merged folder's rows and histogram logs, computed before anything is written.
struct Merged {
    rows: Vec<Row>,
    logs: Vec<(PathBuf, LogOut)>,
    /// Points run in more than one input.
    repeated: usize,
}

/// Each point's rows and log: taken as they are from the one input that ran it, or recomputed
/// from the histogram logs of the several that did.
fn merge_points(
    sources: &[Source],
    order: &[(String, usize, Vec<usize>)],
    out: &Path,
) -> anyhow::Result<Merged> {
    let mut merged = Merged {
        rows: Vec::new(),
        logs: Vec::new(),
        repeated: 0,
    };
    for (id, _, from) in order {
        let per_source: Vec<Vec<&Row>> = from
            .iter()
            .map(|&s| {
                sources[s]
                    .rows()
                    .iter()
                    .filter(|r| &r.point_id == id)
                    .collect()
            })
            .collect();
        if let [only] = from.as_slice() {
            merged
                .rows
                .extend(per_source[0].iter().map(|r| (*r).clone()));
            let log = hlog::path(&sources[*only].dir, id);
            if log.is_file() {
                merged.logs.push((hlog::path(out, id), LogOut::Copy(log)));
            } else {
                eprintln!(
                    "warning: {} has no histogram log for point {id}; the merged folder has none either",
                    sources[*only].dir.display()
                );
            }
            continue;
        }
        merged.repeated += 1;
        let logs = from
            .iter()
            .map(|&s| {
                let path = sources[s].results.hlog_path(id);
                let log = crate::report::results::read_hlog(&path)?;
                Ok((path, log))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        merged.rows.extend(
            merge_rows(&per_source, &logs)
                .with_context(|| format!("point {id}: cannot add its histograms"))?,
        );
        let names: Vec<&Source> = from.iter().map(|&s| &sources[s]).collect();
        let logs: Vec<hlog::Log> = logs.into_iter().map(|(_, log)| log).collect();
        let bytes = merge_logs(id, &names, &logs)?;
        merged
            .logs
            .push((hlog::path(out, id), LogOut::Bytes(bytes)));
    }
    Ok(merged)
}

/// Writes the merged folder's histogram logs.
fn write_logs(out: &Path, logs: Vec<(PathBuf, LogOut)>) -> anyhow::Result<()> {
    std::fs::create_dir_all(hlog::dir(out))
        .with_context(|| format!("cannot create {}", hlog::dir(out).display()))?;
    for (path, log) in logs {
        match log {
            LogOut::Copy(from) => std::fs::copy(&from, &path)
                .map(drop)
                .with_context(|| format!("cannot copy {}", from.display()))?,
            LogOut::Bytes(bytes) => write_atomic(&path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?,
        }
    }
    Ok(())
}

/// Says what was merged: each input, a warning when they come from different commits or when
/// points of the sweep are in none of them, and how many points were merged (`counts`: all of
/// them, and those run in more than one input).
fn tell(
    sources: &[Source],
    info: &RunInfo,
    merged_indexes: &BTreeSet<usize>,
    (points, repeated): (usize, usize),
    out: &Path,
) {
    for src in sources {
        println!(
            "input {}: {} point(s), {}, host {}, commit {}{}",
            src.dir.display(),
            src.results.point_ids().len(),
            src.shard_name(),
            src.info.host.hostname,
            src.info.git_commit,
            if src.info.interrupted {
                ", interrupted"
            } else {
                ""
            }
        );
    }
    let commits: BTreeSet<&str> = sources.iter().map(|s| s.info.git_commit.as_str()).collect();
    if commits.len() > 1 {
        eprintln!(
            "warning: the inputs were built from different commits ({}); compare their numbers with care",
            commits.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let total = info.points_total;
    let missing: Vec<String> = (0..total)
        .filter(|i| !merged_indexes.contains(i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "warning: {} of the sweep's {total} point(s) are in no input (indexes {}): a shard that \
             did not run or did not finish? Merge again once it has",
            missing.len(),
            missing.join(", ")
        );
    }
    println!(
        "merged {points} point(s) of {total}{} into {}",
        if repeated > 0 {
            format!(", {repeated} of them run in more than one input (histograms added)")
        } else {
            String::new()
        },
        out.display()
    );
}

/// A histogram log of the merged folder: an input's, copied as it is, or several added up.
enum LogOut {
    Copy(PathBuf),
    Bytes(Vec<u8>),
}

/// The output folder is new or empty, and is none of the inputs.
fn check_out(dirs: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    if let Ok(o) = out.canonicalize() {
        for d in dirs {
            anyhow::ensure!(
                d.canonicalize().ok().as_ref() != Some(&o),
                "--out {} is one of the inputs; merge into a new folder",
                out.display()
            );
        }
    }
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .with_context(|| format!("--out {} is not a readable folder", out.display()))?
            .next()
            .is_none();
        anyhow::ensure!(
            empty,
            "--out {} is not empty; merge into a new folder, or remove it first",
            out.display()
        );
    }
    Ok(())
}

/// All inputs come from one scenario file (by its SHA-256), unless forced.
fn check_scenarios(sources: &[Source], force: bool) -> anyhow::Result<()> {
    let hashes: BTreeSet<&str> = sources.iter().map(Source::hash).collect();
    if hashes.len() > 1 {
        let list: Vec<String> = sources
            .iter()
            .map(|s| {
                format!(
                    "  {}: scenario `{}` ({}), sha256 {}",
                    s.dir.display(),
                    s.info.scenario.name,
                    s.info.scenario.file,
                    s.hash()
                )
            })
            .collect();
        if force {
            eprintln!(
                "warning: --force: merging results of {} different scenario files:\n{}",
                hashes.len(),
                list.join("\n")
            );
        } else {
            anyhow::bail!(
                "the folders come from different scenarios, so their points may not measure the same \
                 thing:\n{}\nmerge folders of one scenario file, or pass --force to merge anyway",
                list.join("\n")
            );
        }
    }
    Ok(())
}

/// The rows of one point that several inputs ran, one row per model, group and `all`, in the first
/// input's order. `per_source[i]` are input `i`'s rows of the point and `logs[i]` its histogram log
/// (with its file, which an error names).
///
/// - Percentiles, means and maxima of latency, service time, send lag, compute and overhead, and
///   `requests`: from the merged histograms, trial by trial, then the median across trials
///   (`latency_p99_us_min`/`_max`: the spread of the merged trials' p99).
/// - `throughput_rps`, `_min`, `_max`, `rss_mib`: sums over the inputs (the machines served the load
///   together). `rss_per_worker_mib`: every input's workers, in input order.
/// - `sent`, `errors`, `first_runs`, `warmup_requests`, `cold_starts`, `worker_restarts`: sums.
/// - `duration_s`, `cpu_steal_pct`, `first_run_ms`, `cold_start_p50_ms`, `cold_start_max_ms`,
///   `load_ms`, `restart_ms_max`, `windows`, `trials`: the largest of the inputs.
/// - `lagged_sends_pct`: the mean of the inputs' weighted by requests sent.
/// - `parent_cpu_us_per_req`, `worker_cpu_us_per_req`: the CPU time of every machine's processes
///   over the requests of all of them: the inputs' values weighted by their `all` row's
///   `throughput_rps` (CPU µs per second added up, over requests per second added up).
///   `cores_used`: the sum over the inputs (the machines' cores together). Each is empty when an
///   input's is (unknown there, or a folder of before the columns): a sum missing a machine would
///   mislead. Point-wide, as in a single run: the same on every row of the point.
/// - `valid`: every input's was; `reason`: each input's reasons; `slo_met`: every input met its
///   SLOs. Verdicts and SLOs are not re-evaluated on the merged numbers.
pub(crate) fn merge_rows(
    per_source: &[Vec<&Row>],
    logs: &[(PathBuf, hlog::Log)],
) -> anyhow::Result<Vec<Row>> {
    let trials = hlog::add_trials(logs)?;
    let mut names: Vec<&str> = Vec::new();
    for rows in per_source {
        for r in rows {
            if !names.contains(&r.model.as_str()) {
                names.push(&r.model);
            }
        }
    }
    let cpu = merge_cpu(per_source);
    Ok(names
        .into_iter()
        .map(|name| {
            let rows: Vec<&Row> = per_source
                .iter()
                .flat_map(|rs| rs.iter().copied().filter(|r| r.model == name))
                .collect();
            Row {
                parent_cpu_us_per_req: cpu.0,
                worker_cpu_us_per_req: cpu.1,
                cores_used: cpu.2,
                ..merge_model(name, &rows, &trials)
            }
        })
        .collect())
}

/// The CPU columns of a point that several inputs ran (see [`merge_rows`]), from each input's
/// `all` row (its first row where it has none): `(parent_cpu_us_per_req, worker_cpu_us_per_req,
/// cores_used)`.
fn merge_cpu(per_source: &[Vec<&Row>]) -> (Option<f64>, Option<f64>, Option<f64>) {
    let alls: Vec<&Row> = per_source
        .iter()
        .filter_map(|rs| rs.iter().find(|r| r.kind == "all").or(rs.first()).copied())
        .collect();
    let rps: f64 = alls.iter().map(|r| r.throughput_rps).sum();
    // CPU µs per second of each input, added up, over the inputs' requests per second.
    let per_req = |f: fn(&Row) -> Option<f64>| {
        alls.iter()
            .map(|r| f(r).map(|us| us * r.throughput_rps))
            .sum::<Option<f64>>()
            .filter(|_| rps > 0.0)
            .map(|us_per_s| us_per_s / rps)
    };
    (
        per_req(|r| r.parent_cpu_us_per_req),
        per_req(|r| r.worker_cpu_us_per_req),
        alls.iter().map(|r| r.cores_used).sum(),
    )
}

fn merge_model(name: &str, rows: &[&Row], trials: &[hlog::Trial]) -> Row {
    let first = rows[0];
    let empty = new_histogram();
    // Each merged trial's timings, as a single run's trial gives them (see `metrics::Summary::of`).
    let timings: Vec<Timings> = trials
        .iter()
        .map(|t| {
            let hist = |metric: &str| t.get(&hlog::tag(name, metric)).unwrap_or(&empty);
            let overhead = hist("overhead");
            Timings {
                latency: Percentiles::of(hist("latency")),
                service: Percentiles::of(hist("service")),
                send_lag: Percentiles::of(hist("send_lag")),
                compute: Percentiles::of(hist("compute")),
                overhead: Percentiles::of(overhead),
                overhead_p10: if overhead.is_empty() {
                    0.0
                } else {
                    overhead.value_at_quantile(0.10) as f64 / 1000.0
                },
            }
        })
        .collect();
    let requests: Vec<f64> = trials
        .iter()
        .map(|t| t.get(&hlog::tag(name, "latency")).map_or(0, |h| h.len()) as f64)
        .collect();
    let sum_u = |f: &dyn Fn(&Row) -> u64| rows.iter().map(|r| f(r)).sum::<u64>();
    let sum_f = |f: &dyn Fn(&Row) -> f64| rows.iter().map(|r| f(r)).sum::<f64>();
    let max_f = |f: &dyn Fn(&Row) -> f64| rows.iter().map(|r| f(r)).fold(0.0, f64::max);
    let max_opt = |f: &dyn Fn(&Row) -> Option<f64>| {
        rows.iter()
            .filter_map(|r| f(r))
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
    };
    let weight = |r: &Row| (r.requests + r.errors) as f64;
    let weights = sum_f(&weight);
    let mut reasons: Vec<&str> = Vec::new();
    for r in rows {
        for reason in r.reason.split("; ").filter(|s| !s.is_empty()) {
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
    }
    let mut row = Row {
        oversubscribed: rows.iter().any(|r| r.oversubscribed),
        trials: rows.iter().map(|r| r.trials).max().unwrap_or(0),
        sent: sum_u(&|r| r.sent),
        requests: if trials.is_empty() {
            sum_u(&|r| r.requests)
        } else {
            median(&requests).round() as u64
        },
        errors: sum_u(&|r| r.errors),
        first_runs: sum_u(&|r| r.first_runs),
        warmup_requests: sum_u(&|r| r.warmup_requests),
        duration_s: max_f(&|r| r.duration_s),
        throughput_rps: sum_f(&|r| r.throughput_rps),
        throughput_rps_min: sum_f(&|r| r.throughput_rps_min),
        throughput_rps_max: sum_f(&|r| r.throughput_rps_max),
        lagged_sends_pct: if weights > 0.0 {
            sum_f(&|r| r.lagged_sends_pct * weight(r)) / weights
        } else {
            0.0
        },
        first_run_ms: max_opt(&|r| r.first_run_ms),
        cold_starts: sum_u(&|r| r.cold_starts),
        cold_start_p50_ms: max_opt(&|r| r.cold_start_p50_ms),
        cold_start_max_ms: max_opt(&|r| r.cold_start_max_ms),
        load_ms: max_f(&|r| r.load_ms),
        rss_mib: sum_f(&|r| r.rss_mib),
        rss_per_worker_mib: rows
            .iter()
            .map(|r| r.rss_per_worker_mib.as_str())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(";"),
        cpu_steal_pct: max_opt(&|r| r.cpu_steal_pct),
        worker_restarts: sum_u(&|r| r.worker_restarts),
        restart_ms_max: max_opt(&|r| r.restart_ms_max),
        windows: rows.iter().map(|r| r.windows).max().unwrap_or(0),
        valid: rows.iter().all(|r| r.valid),
        reason: reasons.join("; "),
        slo_met: rows.iter().filter_map(|r| r.slo_met).reduce(|a, b| a && b),
        ..first.clone()
    };
    row.set_timings(&timings);
    row
}

/// One log holding every interval of `logs` (the same point run by `sources`), tags unchanged, on
/// one time line: starts are rebased from each log's BaseTime to the earliest.
fn merge_logs(point_id: &str, sources: &[&Source], logs: &[hlog::Log]) -> anyhow::Result<Vec<u8>> {
    let bases: Vec<SystemTime> = logs
        .iter()
        .map(|l| {
            l.base_time
                .or(l.start_time)
                .unwrap_or(SystemTime::UNIX_EPOCH)
        })
        .collect();
    let base = bases
        .iter()
        .min()
        .copied()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut entries: Vec<hlog::Entry> = Vec::new();
    for (log, b) in logs.iter().zip(&bases) {
        let shift = b.duration_since(base).unwrap_or_default();
        entries.extend(log.entries.iter().map(|e| hlog::Entry {
            start: e.start + shift,
            ..e.clone()
        }));
    }
    entries.sort_by_key(|e| e.start);
    let mut comments = vec![
        format!(
            "bench point {point_id}, merged from {} runs; values in nanoseconds",
            sources.len()
        ),
        "tags are <model|group|all>.<metric>".to_string(),
    ];
    for (i, s) in sources.iter().enumerate() {
        comments.push(format!(
            "source {i}: {} (host {}, {}, commit {})",
            s.dir.display(),
            s.info.host.hostname,
            s.shard_name(),
            s.info.git_commit
        ));
    }
    let mut out = Vec::new();
    hlog::encode_entries(&mut out, &comments, base, &entries)?;
    Ok(out)
}

/// The merged `run.json`: the first input's, with the fields that differ between inputs combined,
/// and `sources` listing each input (folder, host, shard, commit, points).
fn run_info(sources: &[Source], merged: &BTreeSet<usize>) -> RunInfo {
    // The distinct values of a field, joined, in input order.
    let distinct = |f: &dyn Fn(&RunInfo) -> &str| -> String {
        let mut seen: Vec<&str> = Vec::new();
        for s in sources {
            let v = f(&s.info);
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        seen.join(", ")
    };
    // A field every input agrees on, else none.
    fn agreed<T: PartialEq + Clone>(
        sources: &[Source],
        f: impl Fn(&RunInfo) -> Option<T>,
    ) -> Option<T> {
        let first = f(&sources[0].info);
        sources
            .iter()
            .all(|s| f(&s.info) == first)
            .then_some(first)
            .flatten()
    }
    let mut info = sources[0].info.clone();
    info.schema_version = SCHEMA_VERSION;
    info.bench_version = distinct(&|i| &i.bench_version);
    info.git_commit = distinct(&|i| &i.git_commit);
    info.rustc = distinct(&|i| &i.rustc);
    info.ort_version = distinct(&|i| &i.ort_version);
    info.ort_library = distinct(&|i| &i.ort_library);
    if sources.iter().any(|s| s.info.host != sources[0].info.host) {
        info.host = Host {
            hostname: distinct(&|i| &i.host.hostname),
            cpu_model: distinct(&|i| &i.host.cpu_model),
            logical_cores: sources
                .iter()
                .map(|s| s.info.host.logical_cores)
                .max()
                .unwrap_or(0),
            os: distinct(&|i| &i.host.os),
        };
    }
    // The merge's own command; the inputs' commands stay in their folders.
    info.command = std::env::args().collect();
    info.settings = agreed(sources, |i| Some(i.settings.clone())).unwrap_or_default();
    info.overrides = agreed(sources, |i| Some(i.overrides.clone())).unwrap_or_default();
    info.started_unix_s = sources
        .iter()
        .map(|s| s.info.started_unix_s)
        .min()
        .unwrap_or(0);
    let finished: Vec<Option<u64>> = sources.iter().map(|s| s.info.finished_unix_s).collect();
    info.finished_unix_s = if finished.contains(&None) {
        None
    } else {
        finished.into_iter().flatten().max()
    };
    // The whole sweep's size: shards know it; whole sweeps say it in points_total.
    let total = sources
        .iter()
        .map(|s| s.shard().map_or(s.info.points_total, |sh| sh.sweep_points))
        .max()
        .unwrap_or(0);
    info.points_total = total.max(merged.len());
    info.points_done = merged.len();
    info.interrupted = sources.iter().any(|s| s.info.interrupted);
    info.cpu_dma_latency_us = agreed(sources, |i| i.cpu_dma_latency_us);
    info.realtime = agreed(sources, |i| i.realtime.clone());
    info.generator_spin_us = agreed(sources, |i| i.generator_spin_us);
    info.dropped_point = None;
    info.shard = None;
    let mut points = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        for p in &s.info.points {
            let mut p = p.clone();
            p.source = Some(i);
            points.push(p);
        }
    }
    points.sort_by_key(|p| p.point);
    info.points = points;
    info.sources = sources
        .iter()
        .map(|s| SourceInfo {
            dir: s.dir.display().to_string(),
            hostname: s.info.host.hostname.clone(),
            shard: s.shard().map(ShardInfo::shard),
            git_commit: s.info.git_commit.clone(),
            bench_version: s.info.bench_version.clone(),
            scenario_sha256: s.hash().to_string(),
            started_unix_s: s.info.started_unix_s,
            finished_unix_s: s.info.finished_unix_s,
            interrupted: s.info.interrupted,
            dropped_point: s.info.dropped_point.clone(),
            points: s.results.point_ids(),
        })
        .collect();
    info.merged_unix_s = Some(crate::report::json::unix_now());
    info
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Record, Timing};
    use std::time::Duration;

    /// A log of one point with one interval per trial, each trial's `all` latencies in µs.
    fn log(trials: &[&[u64]]) -> (PathBuf, hlog::Log) {
        let records: Vec<Record> = trials
            .iter()
            .map(|values| {
                let mut r = Record::default();
                for &v in *values {
                    r.record_ok(Timing {
                        latency: Duration::from_micros(v),
                        service: Duration::from_micros(v),
                        lag: Duration::ZERO,
                        compute_ns: v * 500,
                    });
                }
                r
            })
            .collect();
        let intervals: Vec<hlog::Interval> = records
            .iter()
            .enumerate()
            .map(|(t, r)| hlog::Interval {
                start: Duration::from_secs(t as u64),
                span: Duration::from_secs(1),
                records: vec![("all", r)],
            })
            .collect();
        let mut buf = Vec::new();
        hlog::encode(&mut buf, "p", SystemTime::UNIX_EPOCH, &intervals).unwrap();
        ("p.hlog".into(), hlog::decode_log(&buf).unwrap())
    }

    fn row(throughput: f64, requests: u64, valid: bool, reason: &str) -> Row {
        Row {
            point_id: "p".into(),
            model: "all".into(),
            kind: "all".into(),
            trials: 2,
            sent: requests + 10,
            requests,
            throughput_rps: throughput,
            throughput_rps_min: throughput - 1.0,
            throughput_rps_max: throughput + 1.0,
            rss_mib: 10.0,
            rss_per_worker_mib: "10.0".into(),
            valid,
            reason: reason.into(),
            ..Row::default()
        }
    }

    #[test]
    fn a_repeated_point_merges_trial_by_trial_and_takes_the_median() {
        let a = log(&[&[100; 10], &[300; 10]]);
        let b = log(&[&[200; 30], &[400; 10]]);
        let (ra, rb) = (
            row(100.0, 20, true, ""),
            row(50.0, 20, false, "1 failed request(s)"),
        );
        let rows = merge_rows(&[vec![&ra], vec![&rb]], &[a, b]).unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        let near = |x: f64, y: f64| (x - y).abs() / y < 0.002;
        // Trial 0: 10 × 100 µs + 30 × 200 µs (p50 200); trial 1: 10 × 300 + 10 × 400 (p50 300).
        // The median of the merged trials is 250; pooling every trial would give 200.
        assert!(near(r.latency_p50_us, 250.0), "{}", r.latency_p50_us);
        assert!(near(r.latency_p99_us, 300.0), "{}", r.latency_p99_us);
        assert!(near(r.latency_p99_us_min, 200.0) && near(r.latency_p99_us_max, 400.0));
        assert!(near(r.compute_p50_us, 125.0), "{}", r.compute_p50_us);
        assert_eq!(r.requests, 30, "median of 40 and 20");
        assert_eq!((r.sent, r.throughput_rps), (60, 150.0));
        assert_eq!((r.throughput_rps_min, r.throughput_rps_max), (148.0, 152.0));
        assert_eq!(
            (r.rss_mib, r.rss_per_worker_mib.as_str()),
            (20.0, "10.0;10.0")
        );
        assert!(!r.valid);
        assert_eq!(r.reason, "1 failed request(s)");
        assert_eq!(
            (r.point_id.as_str(), r.kind.as_str(), r.trials),
            ("p", "all", 2)
        );
    }

    #[test]
    fn cpu_cost_merges_as_every_machine_cpu_over_every_machine_requests() {
        let cpu = |throughput: f64, parent: f64, worker: Option<f64>, cores: f64| Row {
            parent_cpu_us_per_req: Some(parent),
            worker_cpu_us_per_req: worker,
            cores_used: Some(cores),
            ..row(throughput, 100, true, "")
        };
        let model = |r: &Row| Row {
            model: "m".into(),
            kind: "model".into(),
            throughput_rps: r.throughput_rps / 2.0,
            ..r.clone()
        };
        // 100 req/s at 30 + 200 µs each (0.023 cores), 300 req/s at 10 + 100 µs (0.033 cores).
        let (a, b) = (
            cpu(100.0, 30.0, Some(200.0), 0.023),
            cpu(300.0, 10.0, Some(100.0), 0.033),
        );
        let (ma, mb) = (model(&a), model(&b));
        let rows = merge_rows(
            &[vec![&ma, &a], vec![&mb, &b]],
            &[log(&[&[100; 10]]), log(&[&[100; 10]])],
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        for r in &rows {
            // (30 × 100 + 10 × 300) / 400 and (200 × 100 + 100 × 300) / 400, on every row.
            assert_eq!(r.parent_cpu_us_per_req, Some(15.0), "{}", r.model);
            assert_eq!(r.worker_cpu_us_per_req, Some(125.0), "{}", r.model);
            assert!((r.cores_used.unwrap() - 0.056).abs() < 1e-9, "{r:?}");
        }
        // An input whose workers' CPU is unknown, or a folder of before the columns: unknown.
        let unknown = cpu(300.0, 10.0, None, 0.033);
        let old = row(300.0, 100, true, "");
        for other in [&unknown, &old] {
            let rows = merge_rows(
                &[vec![&a], vec![other]],
                &[log(&[&[100; 10]]), log(&[&[100; 10]])],
            )
            .unwrap();
            assert_eq!(rows[0].worker_cpu_us_per_req, None);
        }
        let rows = merge_rows(
            &[vec![&a], vec![&old]],
            &[log(&[&[100; 10]]), log(&[&[100; 10]])],
        )
        .unwrap();
        assert_eq!(
            (rows[0].parent_cpu_us_per_req, rows[0].cores_used),
            (None, None)
        );
    }

    #[test]
    fn trials_are_told_apart_by_their_start() {
        let a = log(&[&[100; 4], &[100; 6], &[100; 8]]);
        let trials = hlog::add_trials(&[a]).unwrap();
        let counts: Vec<u64> = trials.iter().map(|t| t["all.latency"].len()).collect();
        assert_eq!(counts, [4, 6, 8]);
    }
}
