//! `bench` measures how to run several ONNX models side by side on one machine: how many worker
//! processes, how many threads each, how tensors travel, which provider.
//!
//! # Layout
//!
//! The modules follow the pipeline: scenario → sweep points → worker pool → load generator →
//! histograms → reporters. Each depends only on those before it (`tests/architecture.rs` checks
//! that no two modules need each other).
//!
//! - [`cli`]: the command line, with typed values.
//! - [`commands`]: one function per subcommand: the glue from the command line to the pipeline.
//! - [`signals`]: SIGINT and SIGTERM, taken from `main`'s first instruction.
//! - [`scenario`]: the TOML file, resolved and checked against the models; sweep expansion.
//! - [`starter`]: writes scenario files from ONNX models: `bench init`'s starter, `bench run`'s
//!   scenario from its flags.
//! - [`onnx`]: reads model signatures from ONNX files without a runtime.
//! - [`tensor`]: element types, tensors as bytes, input generators and `.npy` files.
//! - [`testdata`]: inputs and expected outputs from files (`.pb`, `.npy`, `.npz`, ONNX test-data
//!   folders), and the check of a model's outputs against the expected ones.
//! - [`protocol`]: the parent–worker wire format: handshake and length-prefixed frames.
//! - [`transfer`]: how tensors travel between parent and worker, one file per transfer mode.
//! - [`runtime`]: runtimes that execute a model inside a worker (ONNX Runtime, tract, synthetic,
//!   torch), their one factory, and finding ONNX Runtime's library.
//! - [`worker`]: the worker process's main loop and the parent's pool of workers.
//! - [`timer`]: precise sleeps for the open loop (timerfd) and the CPU wake-up latency hold.
//! - [`batcher`]: dynamic batching: the policy, and the per-model queues the load generator's
//!   requests wait in to run together.
//! - [`load`]: the load generator: closed and open loops, stop rules, one phase at a time.
//! - [`metrics`]: HdrHistograms of latency, service time, send lag, compute and overhead, and
//!   their percentiles; the CPU time of the parent and the workers.
//! - [`gpu`]: GPU memory and utilisation through NVML, loaded at run time.
//! - [`sweep`]: runs a sweep point by point (resume, signals), turns each point into rows and
//!   verdicts, and feeds the reporters.
//! - [`report`]: CSV, JSON metadata, histogram logs, the console summary, and the HTML and
//!   Markdown reports; and the one reader of a results folder (`report::results`), for report,
//!   merge, compare and `--resume`.
//! - [`shard`]: which points of a sweep one machine runs (`--shard I/N`).
//! - [`merge`]: combines result folders of several machines into one.
//! - [`calibrate`]: measures the floor (in-process run, bare socket round trip) beside the pool.
//! - [`compare`]: matches two results row by row and flags regressions beyond threshold and noise.
//! - [`capacity`]: searches each configuration's highest rate within an SLO and names the best.
//! - [`outdir`]: output folders: a used one is refused unless resumed or forced, and `--force`
//!   clears only the files bench writes there.
//! - [`parity`]: runs one batch per model through every runtime and compares with PyTorch.

pub mod batcher;
pub mod calibrate;
pub mod capacity;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod gpu;
pub mod load;
pub mod merge;
pub mod metrics;
pub mod onnx;
pub mod outdir;
pub mod parity;
pub mod protocol;
pub mod report;
pub mod runtime;
pub mod scenario;
pub mod shard;
pub mod signals;
pub mod starter;
pub mod sweep;
pub mod tensor;
pub mod testdata;
pub mod timer;
pub mod transfer;
pub mod worker;

use anyhow::Context;

use cli::{Cli, Command};

/// Exit codes: 0 all good, 1 finished with failed requests (or `compare` found a regression, or
/// `capacity` found no rate within the SLO, or `report` no point that meets its objectives), 2
/// could not run, 128+signal when interrupted.
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

/// Runs one command: the worker roles here, every user command in [`commands`].
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ort_lib = cli.ort_lib.as_deref();
    match cli.command {
        Command::Worker {
            fd,
            id,
            shm_fd,
            channel_fd,
        } => {
            worker::child::main(fd, shm_fd, channel_fd).with_context(|| format!("worker {id}"))?;
            Ok(ExitCode::Ok)
        }
        Command::Echo {
            fd,
            size,
            channel_fd,
        } => {
            worker::child::echo_main(fd, size, channel_fd)?;
            Ok(ExitCode::Ok)
        }
        Command::Sweep(args) => commands::sweep(args, ort_lib),
        Command::Run(args) => commands::run(*args, ort_lib),
        Command::Init(args) => commands::init(args),
        Command::Capacity(args) => commands::capacity(args, ort_lib),
        Command::Validate(args) => commands::validate(args),
        Command::Parity(args) => commands::parity(args, ort_lib),
        Command::Inspect(args) => commands::inspect(args),
        Command::Report(args) => commands::report(args),
        Command::Merge(args) => commands::merge(args),
        Command::Compare(args) => commands::compare(args),
        Command::Calibrate(args) => commands::calibrate(args, ort_lib),
        Command::Completions(args) => commands::completions(args.shell),
    }
}
