//! `bench` measures how to run several ONNX models side by side on one machine: how many worker
//! processes, how many threads each, how tensors travel, which provider.
//!
//! # Layout
//!
//! The folders follow the pipeline: scenario → sweep points → worker pool → load generator →
//! histograms → reporters, with the models' input and output below them and the subcommands above.
//! Each depends only on those before it (`tests/architecture.rs` checks that no two modules need
//! each other).
//!
//! - [`signals`]: SIGINT and SIGTERM, taken from `main`'s first instruction.
//! - [`model`]: the models' input and output without a runtime: ONNX signatures, tensors and
//!   input generators, test data and the check of outputs against expected ones.
//! - [`scenario`]: the TOML file, resolved and checked against the models; the sweep axes (one
//!   declaration each), their expansion into points, and which points one machine runs (`shard`).
//! - [`pool`]: the worker pool: the wire protocol, the worker process and the parent's pool,
//!   how tensors travel (transfer modes, channels), and the runtimes that run a model in a worker.
//! - [`load`]: the load generator: closed and open loops, stop rules, one phase at a time; the
//!   dynamic batcher's queues; precise sleeps for the open loop (`timer`).
//! - [`metrics`]: HdrHistograms of latency, service time, send lag, compute and overhead, and
//!   their percentiles; the CPU time of the parent and the workers; GPU memory and utilisation.
//! - [`sweep`]: runs a sweep point by point (resume, signals), turns each point into rows and
//!   verdicts, and feeds the reporters.
//! - [`report`]: CSV, JSON metadata, histogram logs, the console summary, and the HTML and
//!   Markdown reports; the one reader of a results folder (`report::results`), for report,
//!   merge, compare and `--resume`; and output folders (`report::outdir`).
//! - [`commands`]: the command line (`commands::cli`) and one function per subcommand, with the
//!   subcommands that are more than glue: `starter`, `calibrate`, `capacity`, `compare`,
//!   `merge`, `parity`.

// The library exists for the binary and its tests: most items are `pub(crate)`, and the crate's
// docs are read with `cargo doc --document-private-items` (as `.ci/run` builds them), where the
// module headers' links to crate-private items resolve.
#![allow(rustdoc::private_intra_doc_links)]

pub mod commands;
pub mod load;
pub mod metrics;
pub mod model;
pub mod pool;
pub mod report;
pub mod scenario;
pub mod signals;
pub mod sweep;

use anyhow::Context;

use commands::cli::{Cli, Command};

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
            pool::worker::child::main(fd, shm_fd, channel_fd)
                .with_context(|| format!("worker {id}"))?;
            Ok(ExitCode::Ok)
        }
        Command::Echo {
            fd,
            size,
            channel_fd,
        } => {
            pool::worker::child::echo_main(fd, size, channel_fd)?;
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
