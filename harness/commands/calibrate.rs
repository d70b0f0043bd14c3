//! `bench calibrate`: the floor under every number `bench` reports, measured side by side in one run.
//!
//! Loops over the same model and input, one request at a time:
//! 1. `in_process`: `Session::run` in this process, no IPC at all;
//! 2. `socket_rtt`: a bare round trip of a small message to an echo process over a Unix socket, the
//!    cheapest possible inter-process hop (mostly the cost of waking the peer);
//! 3. `spin_rtt`: the same round trip through the `spin` channel's rings, both sides spinning;
//! 4. `pool`: the real worker pool (1 worker, `pipe` transfer, `socket` channel) with its framing,
//!    routing and tokio; `pool_overhead` is its latency minus the worker's compute time, per
//!    request;
//! 5. `pool_spin` and `pool_spin_overhead`: the same over the `spin` channel, with the default
//!    longest spin.
//!
//! The ratio `pool_overhead p50 / socket_rtt p50` says how much the harness adds beyond the floor;
//! `pool_spin p50 / in_process p50` how close the spin channel comes to running in process.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::metrics::{Percentiles, new_histogram};
use crate::model::tensor::{self, DType, Generator, TensorData};
use crate::pool::protocol::{Setup, SetupModel};
use crate::pool::runtime::Model;
use crate::pool::runtime::ort::{OrtModel, SessionOptions};
use crate::pool::runtime::ortlib::OrtLib;
use crate::pool::worker::pool::{InputsRef, Reply, Worker, spawn_self};
use crate::scenario::{Channel, DEFAULT_SPIN_MAX_US, ModelSource};

/// The bundled Linear(10, 1), the default model: built into the binary, so that `bench calibrate`
/// needs no checkout and runs from any folder.
const LINEAR_ONNX: &[u8] = include_bytes!("../../models/onnx/linear.onnx");

/// The model to calibrate with: `given`, or the built-in Linear(10, 1) written to a temporary
/// file that goes when the returned guard drops (the workers load models from files).
pub(crate) fn model_file(given: Option<&Path>) -> anyhow::Result<(PathBuf, Option<TempModel>)> {
    if let Some(p) = given {
        return Ok((p.to_path_buf(), None));
    }
    let path = std::env::temp_dir().join(format!("bench-calibrate-{}.onnx", std::process::id()));
    std::fs::write(&path, LINEAR_ONNX)
        .with_context(|| format!("cannot write the built-in model to {}", path.display()))?;
    Ok((path.clone(), Some(TempModel(path))))
}

/// Removes the built-in model's temporary file when dropped.
pub(crate) struct TempModel(PathBuf);

impl Drop for TempModel {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One line of the calibration table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CalibrationRow {
    pub(crate) loop_name: String,
    pub(crate) iterations: u64,
    pub(crate) p50_us: f64,
    pub(crate) p90_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) mean_us: f64,
}

fn row(name: &str, h: &Histogram<u64>) -> CalibrationRow {
    let p = Percentiles::of(h);
    CalibrationRow {
        loop_name: name.into(),
        iterations: h.len(),
        p50_us: p.p50,
        p90_us: p.p90,
        p99_us: p.p99,
        mean_us: p.mean,
    }
}

/// Inputs for a model with every dynamic dim bound to 1, from the default generators.
fn inputs_for(model: &Path) -> anyhow::Result<Vec<TensorData>> {
    let info = crate::model::onnx::read_model_info(model)?;
    info.inputs
        .iter()
        .map(|i| {
            let dtype = i
                .dtype
                .clone()
                .map_err(|t| anyhow::anyhow!("input {} has unsupported type {t}", i.name))?;
            let shape: Vec<i64> = i
                .dims
                .iter()
                .map(|d| {
                    if let crate::model::onnx::Dim::Fixed(n) = d {
                        *n
                    } else {
                        1
                    }
                })
                .collect();
            let g = if dtype == DType::Str {
                Generator::Strings {
                    values: vec!["bench".into()],
                }
            } else if dtype.is_float() {
                Generator::Uniform {
                    low: 0.0,
                    high: 1.0,
                }
            } else {
                Generator::Int { low: 0, high: 2 }
            };
            Ok(tensor::generate(&g, dtype, &shape, 1, 1)?.remove(0))
        })
        .collect()
}

/// Runs the three loops with `iterations` timed requests each (after a tenth as many warm-up ones).
pub(crate) fn calibrate(
    ort: &OrtLib,
    model: &Path,
    iterations: u64,
) -> anyhow::Result<Vec<CalibrationRow>> {
    let inputs = inputs_for(model)?;
    let views: Vec<crate::model::tensor::TensorView<'_>> =
        inputs.iter().map(TensorData::view).collect();
    let warm = (iterations / 10).max(10);

    // 1. In process.
    let mut m = OrtModel::load(
        &ort.path,
        model,
        SessionOptions {
            intra_threads: 1,
            gpu: None,
            knobs: Default::default(),
        },
    )
    .map_err(anyhow::Error::msg)?;
    let mut in_process = new_histogram();
    for i in 0..warm + iterations {
        let t0 = Instant::now();
        m.run(&views).map_err(anyhow::Error::msg)?;
        if i >= warm {
            in_process.saturating_record(t0.elapsed().as_nanos() as u64);
        }
    }
    drop(m);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (rtt, spin_rtt, socket, spin) = rt.block_on(async {
        // 2. and 3. Bare round trips to an echo process, over the socket and the spin channel.
        const MSG: usize = 64;
        let rtt = echo_round_trips(Channel::Socket, MSG, warm, iterations).await?;
        let spin_rtt = echo_round_trips(Channel::Spin, MSG, warm, iterations).await?;

        // 4. The worker pool, over each channel.
        let setup = Setup::single(
            ort.path.clone(),
            SetupModel {
                name: "model".into(),
                source: ModelSource::Onnx(model.to_path_buf()),
                inputs: Vec::new(),
                samples: 1,
                torch: None,
                data: Vec::new(),
            },
        );
        let socket = pool_loop(setup.clone(), &inputs, warm, iterations).await?;
        let spin = pool_loop(
            Setup {
                channel: Channel::Spin,
                spin_max_ns: DEFAULT_SPIN_MAX_US * 1000,
                ..setup
            },
            &inputs,
            warm,
            iterations,
        )
        .await?;
        anyhow::Ok((rtt, spin_rtt, socket, spin))
    })?;
    let ((latency, overhead), (spin_latency, spin_overhead)) = (socket, spin);
    Ok(vec![
        row("in_process", &in_process),
        row("socket_rtt", &rtt),
        row("spin_rtt", &spin_rtt),
        row("pool", &latency),
        row("pool_overhead", &overhead),
        row("pool_spin", &spin_latency),
        row("pool_spin_overhead", &spin_overhead),
    ])
}

/// Round trips of `size` bytes to an echo process over `channel`. Through the `spin` channel both
/// sides spin (the parent for as long as it takes, the peer up to `child::ECHO_SPIN` between
/// messages).
async fn echo_round_trips(
    channel: Channel,
    size: usize,
    warm: u64,
    iterations: u64,
) -> anyhow::Result<Histogram<u64>> {
    use crate::pool::transfer::channel::{
        ChannelFile, Direction, RING_BYTES, RingReader, RingWriter,
    };
    let mut args = vec!["echo".to_string(), "--size".into(), size.to_string()];
    let file = match channel {
        Channel::Socket => None,
        Channel::Spin => Some(ChannelFile::create(RING_BYTES)?),
    };
    let fds: Vec<_> = file.iter().map(|f| f.raw_fd()).collect();
    if let Some(fd) = fds.first() {
        args.extend(["--channel-fd".to_string(), fd.to_string()]);
    }
    let (mut child, sock) = spawn_self(&args, Stdio::inherit(), &fds)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let (mut tx, mut rx): (Box<dyn Write>, Box<dyn Read>) = match &file {
        None => (Box::new(sock.try_clone()?), Box::new(sock)),
        Some(f) => (
            Box::new(RingWriter::new(
                f.producer(Direction::ToWorker),
                sock.try_clone()?,
            )),
            Box::new(RingReader::new(
                f.consumer(Direction::ToParent),
                sock,
                Duration::from_secs(1),
            )),
        ),
    };
    let mut h = new_histogram();
    let mut msg = vec![7u8; size];
    for i in 0..warm + iterations {
        let t0 = Instant::now();
        tx.write_all(&msg)?;
        rx.read_exact(&mut msg)
            .with_context(|| format!("echo peer over the {} channel", channel.name()))?;
        if i >= warm {
            h.saturating_record(t0.elapsed().as_nanos() as u64);
        }
    }
    drop((tx, rx));
    let _ = child.wait().await;
    Ok(h)
}

/// One worker started with `setup`, sent one request at a time: its latency and its overhead
/// (latency minus the worker's compute time) per request.
async fn pool_loop(
    setup: Setup,
    inputs: &[TensorData],
    warm: u64,
    iterations: u64,
) -> anyhow::Result<(Histogram<u64>, Histogram<u64>)> {
    let worker = Worker::start(setup, None).await?;
    let mut latency = new_histogram();
    let mut overhead = new_histogram();
    let mut frame = Vec::new();
    for i in 0..warm + iterations {
        let t0 = Instant::now();
        let reply = worker
            .call(i, 0, InputsRef::Inline(inputs), &mut frame)
            .await;
        let dt = t0.elapsed().as_nanos() as u64;
        match reply {
            Reply::Done(run) if i >= warm => {
                latency.saturating_record(dt);
                overhead.saturating_record(dt.saturating_sub(run.compute_ns).max(1));
            }
            Reply::Done(_) => {}
            Reply::Failed(e) | Reply::Lost(e) => anyhow::bail!("pool request failed: {e}"),
            Reply::TimedOut(t) => anyhow::bail!("pool request timed out after {t:?}"),
        }
    }
    worker.shutdown().await?;
    Ok((latency, overhead))
}

/// The console text: the table and the ratios that matter.
pub(crate) fn render(rows: &[CalibrationRow]) -> String {
    use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "loop",
        "iterations",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "mean µs",
    ]);
    for r in rows {
        t.add_row(vec![
            r.loop_name.clone(),
            r.iterations.to_string(),
            format!("{:.1}", r.p50_us),
            format!("{:.1}", r.p90_us),
            format!("{:.1}", r.p99_us),
            format!("{:.1}", r.mean_us),
        ]);
    }
    let p50 = |n: &str| {
        rows.iter()
            .find(|r| r.loop_name == n)
            .map_or(f64::NAN, |r| r.p50_us)
    };
    format!(
        "{t}\npool overhead p50 / bare socket round trip p50: {:.2}x\npool latency p50 / in-process run p50: {:.2}x (socket), {:.2}x (spin)\n",
        p50("pool_overhead") / p50("socket_rtt"),
        p50("pool") / p50("in_process"),
        p50("pool_spin") / p50("in_process"),
    )
}

/// The generator's own ceiling: the highest request rate the parent sustains through one worker
/// whose model takes no time, and the parent's CPU time per request.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Ceiling {
    /// `socket` or `spin`.
    pub(crate) channel: String,
    pub(crate) concurrency: usize,
    pub(crate) requests: u64,
    pub(crate) seconds: f64,
    pub(crate) requests_per_s: f64,
    /// Parent CPU (user + system) per request, µs.
    pub(crate) parent_cpu_us_per_request: f64,
    /// Parent CPU use over the run, in cores.
    pub(crate) parent_cores: f64,
    pub(crate) latency_p50_us: f64,
    pub(crate) latency_p99_us: f64,
}

/// Drives a zero-time synthetic model closed-loop with each concurrency for `duration`, over each
/// channel (the `spin` channel with its default longest spin).
pub(crate) fn ceiling(concurrencies: &[usize], duration: Duration) -> anyhow::Result<Vec<Ceiling>> {
    let dir = std::env::temp_dir().join(format!("bench-ceiling-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("ceiling.toml");
    std::fs::write(
        &file,
        "[[model]]\nname = \"zero\"\nsynthetic = { service = \"fixed\", mean = \"0s\", wait = \"spin\" }\n\
         [workload]\nwarmup_requests = 0\n",
    )?;
    let scenario = crate::scenario::load(&file).map_err(|e| anyhow::anyhow!("{e}"));
    let _ = std::fs::remove_dir_all(&dir);
    let scenario = scenario?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut out = Vec::new();
        for channel in Channel::ALL {
            let setup = Setup {
                channel,
                spin_max_ns: DEFAULT_SPIN_MAX_US * 1000,
                ..Setup::single(Default::default(), SetupModel::of(&scenario.models[0]))
            };
            out.extend(ceiling_over(setup, &scenario, concurrencies, duration).await?);
        }
        Ok(out)
    })
}

/// [`ceiling`] over one worker started with `setup`.
async fn ceiling_over(
    setup: Setup,
    scenario: &crate::scenario::Scenario,
    concurrencies: &[usize],
    duration: Duration,
) -> anyhow::Result<Vec<Ceiling>> {
    let channel = setup.channel.name().to_string();
    let worker = Worker::start(setup, None).await?;
    let pool = crate::pool::worker::pool::Pool::of(vec![worker]);
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let mut out = Vec::new();
    for &c in concurrencies {
        let sending = crate::load::Sending {
            load: crate::scenario::LoadPoint::Closed { concurrency: c },
            transfer: crate::scenario::Transfer::Pipe,
            batching: None,
        };
        // A short warm-up at the same concurrency, then the timed run.
        let warm = crate::load::PhaseRule::Fixed(crate::scenario::Limit::Duration(
            Duration::from_millis(300),
        ));
        crate::load::run_phase(&pool, scenario, sending, warm, 1, &cancel).await?;
        let cpu0 = crate::metrics::own_cpu_time();
        let rule = crate::load::PhaseRule::Fixed(crate::scenario::Limit::Duration(duration));
        let r = crate::load::run_phase(&pool, scenario, sending, rule, 2, &cancel).await?;
        let cpu = crate::metrics::own_cpu_time() - cpu0;
        let n = r.result.all.ok();
        let secs = r.span.as_secs_f64();
        let p = Percentiles::of(&r.result.all.latency);
        out.push(Ceiling {
            channel: channel.clone(),
            concurrency: c,
            requests: n,
            seconds: secs,
            requests_per_s: n as f64 / secs,
            parent_cpu_us_per_request: cpu.as_secs_f64() * 1e6 / n.max(1) as f64,
            parent_cores: cpu.as_secs_f64() / secs,
            latency_p50_us: p.p50,
            latency_p99_us: p.p99,
        });
    }
    for r in pool.shutdown().await {
        r?;
    }
    Ok(out)
}

/// The console text for the ceiling.
pub(crate) fn render_ceiling(rows: &[Ceiling]) -> String {
    use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "channel",
        "in flight",
        "requests/s",
        "parent CPU µs/request",
        "parent cores",
        "p50 µs",
        "p99 µs",
    ]);
    for r in rows {
        t.add_row(vec![
            r.channel.clone(),
            r.concurrency.to_string(),
            format!("{:.0}", r.requests_per_s),
            format!("{:.2}", r.parent_cpu_us_per_request),
            format!("{:.2}", r.parent_cores),
            format!("{:.1}", r.latency_p50_us),
            format!("{:.1}", r.latency_p99_us),
        ]);
    }
    let best = |channel: &str| {
        rows.iter()
            .filter(|r| r.channel == channel)
            .map(|r| r.requests_per_s)
            .fold(0.0, f64::max)
    };
    format!(
        "{t}\nharness ceiling (zero-time model, 1 worker, pipe): {:.0} requests/s over the socket, {:.0} over the spin channel\n",
        best("socket"),
        best("spin")
    )
}
