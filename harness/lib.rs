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
//! - [`report`]: CSV, JSON metadata and the console summary.
//! - [`driver`]: runs a sweep point by point and feeds the reporters.
//! - [`calibrate`]: measures the floor (in-process run, bare socket round trip) beside the pool.
//! - [`parity`]: runs one batch per model through every runtime and compares with PyTorch.

pub mod calibrate;
pub mod cli;
pub mod driver;
pub mod load;
pub mod metrics;
pub mod onnx;
pub mod parity;
pub mod protocol;
pub mod report;
pub mod runtime;
pub mod scenario;
pub mod tensor;
pub mod timer;
pub mod transfer;
pub mod worker;

use std::path::PathBuf;

use anyhow::Context;

use cli::{Cli, Command};

/// Exit codes: 0 all good, 1 finished with failed requests, 2 could not run, 128+signal when
/// interrupted.
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
        Command::Inspect { models } => {
            for (i, m) in models.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print!("{}", inspect(m)?);
            }
            Ok(ExitCode::Ok)
        }
        Command::Parity { scenario } => {
            let s = scenario::load(&scenario)?;
            let ort = runtime::ortlib::locate(cli.ort_lib.as_deref())?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let rows = rt.block_on(parity::run(&s, Some(&ort)))?;
            println!("{}", parity::render(&rows));
            Ok(if rows.iter().all(|r| r.ok) {
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
            quiet,
            cpu_dma_latency,
            resume,
        } => {
            let mut s = scenario::load(&scenario)?;
            if let Some(d) = duration {
                let d = humantime::parse_duration(&d)
                    .with_context(|| format!("--duration {d}: not a duration like 5s or 500ms"))?;
                anyhow::ensure!(!d.is_zero(), "--duration must be longer than zero");
                s.workload.stop = scenario::StopRule::Fixed(scenario::Limit::Duration(d));
            }
            if let Some(n) = requests {
                anyhow::ensure!(n > 0, "--requests must be at least 1");
                s.workload.stop = scenario::StopRule::Fixed(scenario::Limit::Requests(n));
            }
            if dry_run {
                print!("{}", describe(&s));
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
            let opts = driver::SweepOptions {
                out_dir: out_dir.clone(),
                progress: !quiet,
                cpu_dma_latency_us: cpu_dma_latency,
                resume: resume.is_some(),
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
                "bench: {} point(s) of scenario `{}`, {runtime_note}, results in {}",
                s.points.len(),
                s.name,
                out_dir.display()
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (outcome, rows) = rt.block_on(driver::sweep(&s, ort.as_ref(), &opts))?;
            println!("{}", driver::summary(&rows));
            println!("results: {}", out_dir.join("results.csv").display());
            Ok(match outcome {
                driver::Outcome::Clean => ExitCode::Ok,
                driver::Outcome::Invalid => {
                    eprintln!("some points are invalid: see the `valid` and `reason` columns");
                    ExitCode::Failures
                }
                driver::Outcome::Interrupted(sig) => {
                    eprintln!(
                        "interrupted: finished points are in the results; the point in progress was dropped"
                    );
                    ExitCode::Signal(sig)
                }
            })
        }
    }
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
