//! The command line. Precedence for every setting: built-in defaults < scenario file < flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    version,
    about = "Measure how to run several ONNX models side by side: worker processes, threads, transfer modes"
)]
pub struct Cli {
    /// ONNX Runtime shared library (libonnxruntime.so.1.31.1). Default: ORT_DYLIB_PATH, then the
    /// project's .venv, then python3's onnxruntime package.
    #[arg(long, global = true, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every point of a scenario's sweep and write results.csv and run.json.
    Sweep {
        /// The scenario file (TOML).
        #[arg(long, short)]
        scenario: PathBuf,
        /// Output folder. Default: reports/<scenario name>.
        #[arg(long, short, conflicts_with = "resume")]
        out: Option<PathBuf>,
        /// Continue an interrupted sweep in DIR: keep its finished points, run the others.
        #[arg(long, value_name = "DIR")]
        resume: Option<PathBuf>,
        /// Check the scenario and list the sweep points without running anything.
        #[arg(long)]
        dry_run: bool,
        /// Override the scenario's measured duration per point (e.g. "2s").
        #[arg(long, value_name = "DURATION", conflicts_with = "requests")]
        duration: Option<String>,
        /// Override the scenario's measured request count per point.
        #[arg(long, value_name = "N")]
        requests: Option<u64>,
        /// Override the scenario's `[load] spin` (e.g. "2ms"): an open loop busy-waits this long
        /// before each send instead of sleeping, so a VM's late wake-ups do not delay sends.
        #[arg(long, value_name = "DURATION")]
        spin: Option<String>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        /// Hold this CPU wake-up latency limit (µs, usually 0) through the Linux PM QoS interface
        /// `/dev/cpu_dma_latency` while the sweep runs, as cyclictest does. On VMs whose idle vCPUs
        /// halt, it removes most millisecond-long timer overshoots that make an open loop's sends
        /// lag. It changes the machine for the workers too, so it is off by default; needs root.
        #[arg(long, value_name = "US")]
        cpu_dma_latency: Option<u32>,
        /// Run only shard I of N (0-based): the points whose index modulo N is I, so N machines can
        /// split the sweep; `bench merge` combines their results.
        #[arg(long, value_name = "I/N")]
        shard: Option<crate::shard::Shard>,
    },
    /// Combine result folders (shards of one sweep, or the same points run on several machines)
    /// into one: results.csv, run.json and hlog/.
    Merge {
        /// Result folders written by `bench sweep` (each with results.csv, run.json, hlog/).
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// The merged folder; it must not exist yet, or be empty.
        #[arg(long, short)]
        out: PathBuf,
        /// Merge even when the folders come from different scenario files.
        #[arg(long)]
        force: bool,
    },
    /// Write report.html (charts, verdicts, metadata) and summary.md into a results directory.
    Report {
        /// A folder written by `bench sweep --out DIR`.
        #[arg(value_name = "RESULTS_DIR")]
        dir: PathBuf,
    },
    /// Compare two results of the same scenario, row by row: a metric that got worse by more than
    /// the threshold and the trials' noise band is a regression (exit 1).
    Compare {
        /// The reference: a results.csv, or a results directory holding one.
        baseline: PathBuf,
        /// The results to judge against it.
        candidate: PathBuf,
        /// Metrics to compare, comma-separated: throughput, p50, p90, p95, p99, p999, max, mean.
        #[arg(long, default_value = "throughput,p50,p99")]
        metrics: String,
        /// A change must be worse than this many percent (and than the noise band) to count.
        #[arg(
            long,
            default_value_t = 10.0,
            value_name = "PCT",
            allow_negative_numbers = true
        )]
        threshold: f64,
        /// Also write the comparison as markdown here (e.g. "$GITHUB_STEP_SUMMARY").
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
        /// Show every comparison, not only the regressions and improvements.
        #[arg(long)]
        all: bool,
    },
    /// For each configuration of a scenario (its sweep without the load axis), search the highest
    /// open-loop rate that meets an SLO, and name the best configuration.
    Capacity {
        /// The scenario file (TOML).
        #[arg(long, short)]
        scenario: PathBuf,
        /// An objective, e.g. `p99_ms=50` or "p99_ms <= 50"; repeat for several. Default: the
        /// scenario's `slo`.
        #[arg(long, value_name = "OBJECTIVE")]
        slo: Vec<String>,
        /// Output folder for capacity.csv. Default: `reports/<scenario name>-capacity`.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Start every search at this rate (requests/s) instead of estimating one with a short
        /// closed-loop probe.
        #[arg(long, value_name = "RPS")]
        start_rate: Option<f64>,
        /// The lowest rate tried; failing there means no capacity.
        #[arg(long, value_name = "RPS", default_value_t = 1.0)]
        min_rate: f64,
        /// The highest rate tried.
        #[arg(long, value_name = "RPS", default_value_t = 1_000_000.0)]
        max_rate: f64,
        /// Stop when the lowest failing rate is within this many percent of the highest meeting one.
        #[arg(long, value_name = "PCT", default_value_t = 5.0)]
        precision: f64,
        /// Probes per configuration at most (the closed-loop estimate not counted).
        #[arg(long, value_name = "N", default_value_t = 12)]
        max_probes: usize,
        /// Override the scenario's measured duration per probe (e.g. "2s").
        #[arg(long, value_name = "DURATION", conflicts_with = "requests")]
        duration: Option<String>,
        /// Override the scenario's measured request count per probe.
        #[arg(long, value_name = "N")]
        requests: Option<u64>,
        /// Override the scenario's `[load] spin` (e.g. "2ms"); see `sweep`.
        #[arg(long, value_name = "DURATION")]
        spin: Option<String>,
        /// No line per probe on stderr.
        #[arg(long, short)]
        quiet: bool,
        /// Hold this CPU wake-up latency limit (µs, usually 0) while probing; see `sweep`.
        #[arg(long, value_name = "US")]
        cpu_dma_latency: Option<u32>,
    },
    /// Check a scenario against its models and print the sweep points.
    Validate {
        #[arg(long, short)]
        scenario: PathBuf,
    },
    /// Run one fixed batch per model through every runtime (at least torch and ort) and compare
    /// each output with PyTorch's; exit 1 when one differs beyond the scenario's `[parity]`
    /// tolerances.
    Parity {
        #[arg(long, short)]
        scenario: PathBuf,
    },
    /// Print a model's inputs and outputs: names, element types, shapes (dynamic dims by name).
    Inspect {
        /// One or more .onnx files.
        #[arg(required = true)]
        models: Vec<PathBuf>,
    },
    /// Measure the floor: in-process run, bare process-to-process round trip and the worker pool's
    /// per-request overhead, side by side on one model.
    Calibrate {
        /// The model to run (default: the bundled Linear(10, 1)).
        #[arg(long, default_value = "models/onnx/linear.onnx")]
        model: PathBuf,
        /// Timed requests per loop.
        #[arg(long, default_value_t = 20_000)]
        iterations: u64,
        /// Also write the table as CSV here.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Measure the load generator's own ceiling instead: the most requests per second the parent
        /// drives through one worker whose model takes no time, and its CPU per request.
        #[arg(long, conflicts_with = "transfer")]
        generator: bool,
        /// Measure transfer throughput instead: `pipe` and `shm` against single-thread memcpy, from
        /// 4 KiB to 64 MiB.
        #[arg(long)]
        transfer: bool,
    },
    /// Internal: echo fixed-size messages on an inherited socket (the bare round-trip peer).
    #[command(hide = true)]
    Echo {
        #[arg(long)]
        fd: i32,
        #[arg(long)]
        size: usize,
    },
    /// Internal: run as a worker process on an inherited socket.
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        fd: i32,
        #[arg(long)]
        id: u32,
        /// The shared-memory arena of the `shm` transfer.
        #[arg(long)]
        shm_fd: Option<i32>,
    },
}
