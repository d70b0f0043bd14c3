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
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        /// Hold this CPU wake-up latency limit (µs, usually 0) through the Linux PM QoS interface
        /// `/dev/cpu_dma_latency` while the sweep runs, as cyclictest does. On VMs whose idle vCPUs
        /// halt, it removes most millisecond-long timer overshoots that make an open loop's sends
        /// lag. It changes the machine for the workers too, so it is off by default; needs root.
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
