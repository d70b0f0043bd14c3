//! `bench` measures how to run several ONNX models side by side on one machine: how many worker
//! processes, how many threads each, how tensors travel, which provider.
//!
//! # Layout
//!
//! The modules follow the pipeline: scenario → sweep points → worker pool → load generator →
//! histograms → reporters.
//!
//! - [`cli`]: the command line.
//! - [`scenario`]: the TOML file, resolved and checked against the models; sweep expansion.
//! - [`onnx`]: reads model signatures from ONNX files without a runtime.
//! - [`tensor`]: element types, tensors as bytes, input generators and `.npy` files.
//! - [`protocol`]: the parent–worker wire format: handshake and length-prefixed frames.
//! - [`worker`]: the worker process's main loop and the parent's pool of workers.
//! - [`runtime`]: runtimes that execute a model inside a worker (ONNX Runtime) and finding its library.
//! - [`load`]: the load generator (closed loop).
//! - [`metrics`]: HdrHistograms of latency and compute time, and their percentiles.
//! - [`report`]: CSV, JSON metadata, histogram logs, the console summary, and the HTML and
//!   Markdown reports.
//! - [`gpu`]: GPU memory and utilisation through NVML, loaded at run time.
//! - [`driver`]: runs a sweep point by point and feeds the reporters.
//! - [`shard`]: which points of a sweep one machine runs (`--shard I/N`).
//! - [`results`]: reads a results folder back (`run.json`, `results.csv`, `hlog/`), for report,
//!   merge, compare and `--resume`.
//! - [`merge`]: combines result folders of several machines into one.
//! - [`calibrate`]: measures the floor (in-process run, bare socket round trip) beside the pool.
//! - [`compare`]: matches two results row by row and flags regressions beyond threshold and noise.
//! - [`capacity`]: searches each configuration's highest rate within an SLO and names the best.
//! - [`parity`]: runs one batch per model through every runtime and compares with PyTorch.

pub mod calibrate;
pub mod capacity;
pub mod cli;
pub mod compare;

pub mod gpu;
pub mod load;
pub mod merge;
pub mod metrics;
pub mod onnx;
pub mod parity;
pub mod protocol;
pub mod report;
pub mod results;
pub mod runtime;
pub mod scenario;
pub mod shard;
pub mod signals;
pub mod sweep;
pub mod tensor;
pub mod timer;
pub mod transfer;
pub mod worker;

use std::path::PathBuf;

use anyhow::Context;

use cli::{Cli, Command};

/// Exit codes: 0 all good, 1 finished with failed requests (or `compare` found a regression, or
/// `capacity` found no rate within the SLO), 2 could not run, 128+signal when interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Ok,
    Failures,
    CouldNotRun,
    Signal(i32),
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(match c {
            ExitCode::Ok => 0,
            ExitCode::Failures => 1,
            ExitCode::CouldNotRun => 2,
            ExitCode::Signal(s) => (128 + s).clamp(0, 255) as u8,
        })
    }
}

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Worker { fd, id, shm_fd } => {
            worker::child::main(fd, shm_fd).with_context(|| format!("worker {id}"))?;
            Ok(ExitCode::Ok)
        }
        Command::Echo { fd, size } => {
            worker::child::echo_main(fd, size)?;
            Ok(ExitCode::Ok)
        }
        Command::Calibrate {
            model,
            iterations,
            csv,
            generator,
            transfer,
        } => {
            if transfer {
                let rows = crate::transfer::throughput::measure(
                    &crate::transfer::throughput::default_sizes(),
                    crate::transfer::throughput::DEFAULT_REPS,
                )?;
                print!("{}", crate::transfer::throughput::render(&rows));
                if let Some(path) = csv {
                    write_rows(&path, &rows)?;
                }
                return Ok(ExitCode::Ok);
            }
            anyhow::ensure!(iterations > 0, "--iterations must be at least 1");
            if generator {
                let rows = calibrate::ceiling(&[1, 8, 64], std::time::Duration::from_secs(3))?;
                print!("{}", calibrate::render_ceiling(&rows));
                if let Some(path) = csv {
                    write_rows(&path, &rows)?;
                }
                return Ok(ExitCode::Ok);
            }
            let ort = runtime::ortlib::locate(cli.ort_lib.as_deref())?;
            let rows = calibrate::calibrate(&ort, &model, iterations)?;
            print!("{}", calibrate::render(&rows));
            if let Some(path) = csv {
                write_rows(&path, &rows)?;
            }
            Ok(ExitCode::Ok)
        }
        Command::Merge { dirs, out, force } => {
            merge::merge(&dirs, &out, force)?;
            Ok(ExitCode::Ok)
        }
        Command::Inspect { models } => {
            for (i, m) in models.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print!("{}", inspect(m)?);
            }
            Ok(ExitCode::Ok)
        }
        Command::Report { dir } => {
            for path in report::render(&dir)? {
                println!("{}", path.display());
            }
            Ok(ExitCode::Ok)
        }
        Command::Compare {
            baseline,
            candidate,
            metrics,
            threshold,
            markdown,
            all,
        } => {
            let metrics = compare::Metric::parse_list(&metrics)
                .map_err(|e| anyhow::anyhow!("--metrics: {e}"))?;
            let base = compare::load(&baseline, "baseline", &metrics)?;
            let cand = compare::load(&candidate, "candidate", &metrics)?;
            for w in base.warnings.iter().chain(&cand.warnings) {
                eprintln!("warning: {w}");
            }
            let opts = compare::Options {
                metrics,
                threshold_pct: threshold,
            };
            let c = compare::compare(&base, &cand, &opts)?;
            print!("{}", c.render(all));
            if let Some(path) = markdown {
                std::fs::write(&path, c.markdown())
                    .with_context(|| format!("--markdown: cannot write {}", path.display()))?;
            }
            Ok(if c.has_regression() {
                ExitCode::Failures
            } else {
                ExitCode::Ok
            })
        }
        Command::Capacity {
            scenario,
            slo,
            out,
            start_rate,
            min_rate,
            max_rate,
            precision,
            max_probes,
            duration,
            requests,
            spin,
            quiet,
            cpu_dma_latency,
        } => {
            let mut s = scenario::load(&scenario)?;
            override_stop(&mut s, duration.as_deref(), requests)?;
            override_spin(&mut s, spin.as_deref())?;
            let slo = if slo.is_empty() {
                s.slo.clone()
            } else {
                slo.iter()
                    .map(|t| {
                        scenario::slo::parse(t).map_err(|e| {
                            anyhow::anyhow!(
                                "--slo {t:?}: {e}; write objectives like --slo p99_ms=50"
                            )
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?
            };
            let opts = capacity::CapacityOptions {
                slo,
                search: capacity::SearchOptions {
                    min_rate,
                    max_rate,
                    precision_pct: precision,
                    max_probes,
                },
                start_rate,
                out_dir: out.unwrap_or_else(|| {
                    PathBuf::from("reports").join(format!("{}-capacity", s.name))
                }),
                progress: !quiet,
            };
            capacity::check(&s, &opts)?;
            let ort = ort_if_needed(&s, cli.ort_lib.as_deref())?;
            let _qos = match cpu_dma_latency {
                Some(us) => Some(hold_cpu_dma_latency(us)?),
                None => None,
            };
            eprintln!(
                "bench: capacity of {} configuration(s) of scenario `{}`, probes in {}",
                capacity::configs(&s).len(),
                s.name,
                opts.out_dir.join("capacity.csv").display()
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let c = rt.block_on(capacity::run(&s, ort.as_ref(), &opts))?;
            print!("{}", capacity::render(&c, &opts.slo));
            println!("probes: {}", opts.out_dir.join("capacity.csv").display());
            Ok(match (c.interrupted, c.best) {
                (Some(sig), _) => {
                    eprintln!("interrupted: the probes so far are in capacity.csv");
                    ExitCode::Signal(sig)
                }
                (None, Some(_)) => ExitCode::Ok,
                (None, None) => ExitCode::Failures,
            })
        }
        Command::Parity { scenario } => {
            let s = scenario::load(&scenario)?;
            let ort = runtime::ortlib::locate(cli.ort_lib.as_deref())?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let rows = rt.block_on(parity::run(&s, Some(&ort)))?;
            println!("{}", parity::render(&rows));
            Ok(if !rows.iter().any(parity::ParityRow::mismatch) {
                ExitCode::Ok
            } else {
                eprintln!(
                    "parity: some outputs differ from PyTorch beyond the [parity] tolerances"
                );
                ExitCode::Failures
            })
        }
        Command::Validate { scenario } => {
            let s = scenario::load(&scenario)?;
            print!("{}", describe(&s));
            Ok(ExitCode::Ok)
        }
        Command::Sweep {
            scenario,
            out,
            dry_run,
            duration,
            requests,
            spin,
            quiet,
            cpu_dma_latency,
            resume,
            shard,
        } => {
            let mut s = scenario::load(&scenario)?;
            override_stop(&mut s, duration.as_deref(), requests)?;
            override_spin(&mut s, spin.as_deref())?;
            // A shard runs its share of the points, keeping their indexes and ids.
            let shard = shard.map(|sh| shard::ShardInfo::new(sh, &s.points));
            if let Some(sh) = &shard {
                s.points = sh.shard().select(&s.points);
                if s.points.is_empty() {
                    eprintln!(
                        "warning: shard {} has no points: the sweep has only {} (use fewer shards)",
                        sh.shard(),
                        sh.sweep_points
                    );
                }
            }
            if dry_run {
                print!("{}", describe(&s));
                if let Some(sh) = &shard {
                    println!(
                        "shard {}: {} of the sweep's {} point(s) (those whose index modulo {} is {})",
                        sh.shard(),
                        sh.points.len(),
                        sh.sweep_points,
                        sh.count,
                        sh.index
                    );
                }
                return Ok(ExitCode::Ok);
            }
            // ONNX Runtime is needed only when some model is an ONNX file.
            let any_onnx = s
                .models
                .iter()
                .any(|m| matches!(m.source, scenario::ModelSource::Onnx(_)));
            let needs_ort = any_onnx && s.axes.runtime.contains(&scenario::Runtime::Ort);
            let ort = if needs_ort || cli.ort_lib.is_some() {
                Some(runtime::ortlib::locate(cli.ort_lib.as_deref())?)
            } else {
                None
            };
            let out_dir = resume
                .clone()
                .or(out)
                .unwrap_or_else(|| PathBuf::from("reports").join(&s.name));
            // Held until the sweep ends (the kernel drops the request when the file closes).
            let _qos = match cpu_dma_latency {
                Some(us) => Some(hold_cpu_dma_latency(us)?),
                None => None,
            };
            let opts = sweep::SweepOptions {
                out_dir: out_dir.clone(),
                progress: !quiet,
                cpu_dma_latency_us: cpu_dma_latency,
                resume: resume.is_some(),
                shard: shard.clone(),
            };
            let mut runtime_note = match &ort {
                Some(o) => format!("ONNX Runtime {} ({})", o.version, o.source),
                None if any_onnx => "ONNX Runtime not needed".to_string(),
                None => "synthetic models only".to_string(),
            };
            if s.axes.runtime != [scenario::Runtime::Ort] {
                let names: Vec<&str> = s.axes.runtime.iter().map(|r| r.name()).collect();
                runtime_note = format!("runtimes {}, {runtime_note}", names.join(", "));
            }
            eprintln!(
                "bench: {} point(s) of scenario `{}`{}, {runtime_note}, results in {}",
                s.points.len(),
                s.name,
                shard.as_ref().map_or_else(String::new, |sh| format!(
                    " (shard {} of {} points)",
                    sh.shard(),
                    sh.sweep_points
                )),
                out_dir.display()
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (outcome, rows) = rt.block_on(sweep::sweep(&s, ort.as_ref(), &opts))?;
            println!("{}", report::console::summary(&rows));
            println!("results: {}", out_dir.join("results.csv").display());
            // The report is a view of the files just written: failing to draw it loses nothing.
            match report::render(&out_dir) {
                Ok(paths) => println!("report: {}", paths[0].display()),
                Err(e) => eprintln!("warning: no report: {e:#}; retry with `bench report DIR`"),
            }
            Ok(match outcome {
                sweep::Outcome::Clean => ExitCode::Ok,
                sweep::Outcome::Invalid => {
                    eprintln!("some points are invalid: see the `valid` and `reason` columns");
                    ExitCode::Failures
                }
                sweep::Outcome::Interrupted(sig) => {
                    eprintln!(
                        "interrupted: finished points are in the results; the point in progress was dropped"
                    );
                    ExitCode::Signal(sig)
                }
            })
        }
    }
}

/// Replaces the scenario's stop rule with `--duration` or `--requests`.
fn override_stop(
    s: &mut scenario::Scenario,
    duration: Option<&str>,
    requests: Option<u64>,
) -> anyhow::Result<()> {
    if let Some(d) = duration {
        let d = humantime::parse_duration(d)
            .with_context(|| format!("--duration {d}: not a duration like 5s or 500ms"))?;
        anyhow::ensure!(!d.is_zero(), "--duration must be longer than zero");
        s.workload.stop = scenario::StopRule::Fixed(scenario::Limit::Duration(d));
    }
    if let Some(n) = requests {
        anyhow::ensure!(n > 0, "--requests must be at least 1");
        s.workload.stop = scenario::StopRule::Fixed(scenario::Limit::Requests(n));
    }
    Ok(())
}

/// Replaces the scenario's `[load] spin` with `--spin`.
fn override_spin(s: &mut scenario::Scenario, spin: Option<&str>) -> anyhow::Result<()> {
    if let Some(v) = spin {
        let d = humantime::parse_duration(v)
            .with_context(|| format!("--spin {v}: not a duration like 2ms or 500us"))?;
        anyhow::ensure!(
            d <= scenario::MAX_SPIN,
            "--spin {v}: more than the {} limit",
            humantime::format_duration(scenario::MAX_SPIN)
        );
        s.load.spin = d;
    }
    Ok(())
}

/// ONNX Runtime, located only when some model is an ONNX file (or a library is named).
fn ort_if_needed(
    s: &scenario::Scenario,
    ort_lib: Option<&std::path::Path>,
) -> anyhow::Result<Option<runtime::ortlib::OrtLib>> {
    let needs = s
        .models
        .iter()
        .any(|m| matches!(m.source, scenario::ModelSource::Onnx(_)));
    Ok(if needs || ort_lib.is_some() {
        Some(runtime::ortlib::locate(ort_lib)?)
    } else {
        None
    })
}

/// Writes serialisable rows as CSV.
fn write_rows<T: serde::Serialize>(path: &std::path::Path, rows: &[T]) -> anyhow::Result<()> {
    let mut w = ::csv::Writer::from_path(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for r in rows {
        w.serialize(r)?;
    }
    w.flush()?;
    Ok(())
}

/// Asks the kernel to keep CPU wake-up latency at most `us` microseconds while the returned file
/// stays open.
fn hold_cpu_dma_latency(us: u32) -> anyhow::Result<std::fs::File> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/cpu_dma_latency")
        .context("--cpu-dma-latency: cannot open /dev/cpu_dma_latency (it needs root); run without the flag")?;
    f.write_all(&(us as i32).to_ne_bytes())
        .context("--cpu-dma-latency: cannot write /dev/cpu_dma_latency")?;
    Ok(f)
}

/// `bench inspect`'s text for one model.
pub fn inspect(path: &std::path::Path) -> anyhow::Result<String> {
    use std::fmt::Write;
    let info = onnx::read_model_info(path)?;
    let mut s = String::new();
    writeln!(s, "{}", path.display())?;
    if let Some(o) = info.opset {
        writeln!(
            s,
            "  opset {o}, produced by {}",
            if info.producer.is_empty() {
                "unknown"
            } else {
                &info.producer
            }
        )?;
    }
    for (title, list) in [("inputs", &info.inputs), ("outputs", &info.outputs)] {
        writeln!(s, "  {title}:")?;
        let width = list.iter().map(|i| i.name.len()).max().unwrap_or(0);
        for io in list {
            writeln!(
                s,
                "    {:width$}  {:8} {}",
                io.name,
                io.dtype_name(),
                io.shape_string()
            )?;
        }
    }
    Ok(s)
}

/// The resolved scenario and its points, as `validate` and `--dry-run` print them.
pub fn describe(s: &scenario::Scenario) -> String {
    use scenario::{Limit, StopRule, Target};
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario `{}` ({}), seed {}",
        s.name,
        s.file.display(),
        s.seed
    );
    let weight = |t: Target| {
        s.workload
            .mix
            .iter()
            .find(|(x, _)| *x == t)
            .map_or(0.0, |(_, w)| *w)
    };
    for (i, m) in s.models.iter().enumerate() {
        let _ = writeln!(
            out,
            "  model {} (weight {}): {}",
            m.name,
            weight(Target::Model(i)),
            m.describe_source()
        );
        if let Some(t) = &m.torch {
            let _ = writeln!(
                out,
                "    torch: {} with {}",
                t.module,
                t.weights.as_ref().map_or_else(
                    || format!("init_seed {}", t.init_seed.unwrap_or_default()),
                    |w| format!("weights {}", w.display())
                )
            );
        }
        for inp in &m.inputs {
            let _ = writeln!(
                out,
                "    {}: {} {:?}, {} sample(s)",
                inp.name,
                inp.dtype,
                inp.shape,
                m.samples.len()
            );
        }
    }
    for (g, group) in s.workload.groups.iter().enumerate() {
        let members: Vec<&str> = group
            .members
            .iter()
            .map(|&m| s.models[m].name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "  group {} (weight {}): {}",
            group.name,
            weight(Target::Group(g)),
            members.join(" + ")
        );
    }
    let limit = |l: Limit| match l {
        Limit::Duration(d) => format!("{}", humantime::format_duration(d)),
        Limit::Requests(n) => format!("{n} requests"),
    };
    let stop = match s.workload.stop {
        StopRule::Fixed(l) => format!("measure {}", limit(l)),
        StopRule::Stable {
            window,
            tolerance_pct,
            max_windows,
        } => format!(
            "measure {} windows until 3 agree within {tolerance_pct}% (at most {max_windows})",
            humantime::format_duration(window)
        ),
    };
    let _ = writeln!(
        out,
        "  {} loop{}; warm-up {}, {stop}, {} trial(s) per point, at least {} requests",
        s.load.kind_name(),
        if s.load.kind == scenario::LoadKind::Open {
            format!(" ({} arrivals)", s.load.arrival.name())
        } else {
            String::new()
        },
        limit(s.workload.warmup),
        s.workload.trials,
        s.workload.min_requests
    );
    if !s.slo.is_empty() {
        let slo: Vec<String> = s.slo.iter().map(|c| c.to_string()).collect();
        let _ = writeln!(out, "  SLO: {}", slo.join(", "));
    }
    let _ = writeln!(out, "{} point(s):", s.points.len());
    for p in &s.points {
        let load = match p.load {
            scenario::LoadPoint::Closed { concurrency } => format!("concurrency={concurrency}"),
            scenario::LoadPoint::Open { rate } => format!("rate={rate}/s"),
        };
        let _ = writeln!(
            out,
            "  {:>3}  {}  workers={} intra_threads={} transfer={} placement={} pin={} provider={} {load} runtime={}",
            p.index,
            p.id,
            p.workers,
            p.intra_threads,
            p.transfer.name(),
            p.placement.name(),
            p.pin.name(),
            p.provider.name(),
            p.runtime.name(),
        );
    }
    out
}
