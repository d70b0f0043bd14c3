//! The command line. Precedence for every setting: built-in defaults < scenario file < flags.
//!
//! Values arrive typed: durations are parsed here (humantime), so the commands never see strings.
//! Flags that several subcommands share are declared once ([`RunFlags`]).

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::commands::starter::{self, InputValue, Scoped};
use crate::scenario::axes::{self, FlagValue, Key};

/// `bench --version`: the crate version and the commit it was built from.
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BENCH_GIT_COMMIT"),
    ")"
);

/// The most an open loop may spin before a send (`[load] spin`, `--spin`).
pub(crate) use crate::scenario::MAX_SPIN;

/// A duration like `5s`, `500ms` or `2m`, longer than zero.
pub(crate) fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("not a duration like 5s or 500ms ({e})"))?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

/// A percentage above 0, like `10` or `2.5`.
pub(crate) fn positive_pct(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p > 0.0 && p.is_finite() => Ok(p),
        _ => Err("not a percentage above 0, like 10".into()),
    }
}

/// A spin budget like `2ms` or `500us`, at most [`MAX_SPIN`].
pub(crate) fn spin_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("not a duration like 2ms or 500us ({e})"))?;
    if d > MAX_SPIN {
        return Err(format!(
            "more than the {} limit",
            humantime::format_duration(MAX_SPIN)
        ));
    }
    Ok(d)
}

/// The flags of every command that measures points (`sweep`, `capacity`).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct RunFlags {
    /// The measured duration per point (e.g. "2s"), over the scenario's. A point with fewer than
    /// --min-requests successes by then runs on until it has them, up to --max-duration.
    #[arg(long, value_name = "DURATION", conflicts_with = "requests", value_parser = positive_duration)]
    pub(crate) duration: Option<Duration>,
    /// The measured request count per point, over the scenario's. The point is judged on these
    /// requests (no `min_requests` unless one is given too).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) requests: Option<u64>,
    /// The successful requests a point needs, over the scenario's `min_requests` (default 100):
    /// a measurement by duration runs past its duration until it has them, up to
    /// --max-duration; with fewer, the point is invalid. 0: no minimum.
    #[arg(long, value_name = "N")]
    pub(crate) min_requests: Option<u64>,
    /// The longest a measurement by duration runs on to reach --min-requests (e.g. "1m"), per
    /// trial, over the scenario's `max_duration` (default 1m).
    #[arg(long, value_name = "DURATION", conflicts_with = "requests", value_parser = positive_duration)]
    pub(crate) max_duration: Option<Duration>,
    /// Measure with the stable rule (`stop = "stable"`): windows until throughput and p99 of the
    /// last 3 agree, instead of a duration or a request count.
    #[arg(long, conflicts_with_all = ["duration", "requests", "max_duration"])]
    pub(crate) stable: bool,
    /// The stable rule's window (e.g. "2s"; default 1s), over the scenario's.
    #[arg(long, value_name = "DURATION", requires = "stable", value_parser = positive_duration)]
    pub(crate) window: Option<Duration>,
    /// The stable rule's agreement: the last 3 windows within this percentage (default 10).
    #[arg(long, value_name = "PCT", requires = "stable", value_parser = positive_pct)]
    pub(crate) tolerance_pct: Option<f64>,
    /// The stable rule's cap: give up (an invalid point) after this many windows (default 20).
    #[arg(long, value_name = "N", requires = "stable", value_parser = clap::value_parser!(u64).range(3..))]
    pub(crate) max_windows: Option<u64>,
    /// The warm-up before each point (e.g. "1s"; "0s" for none), over the scenario's.
    #[arg(long, value_name = "DURATION", conflicts_with = "warmup_requests", value_parser = humantime::parse_duration)]
    pub(crate) warmup: Option<Duration>,
    /// The warm-up as a request count (0 for none), over the scenario's.
    #[arg(long, value_name = "N")]
    pub(crate) warmup_requests: Option<u64>,
    /// The open loop's spin (e.g. "2ms"), over the scenario's `[load] spin`: it busy-waits this long
    /// before each send instead of sleeping, so a VM's late wake-ups do not delay sends.
    #[arg(long, value_name = "DURATION", value_parser = spin_duration)]
    pub(crate) spin: Option<Duration>,
    /// No progress output on stderr.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Hold this CPU wake-up latency limit (µs, usually 0) through the Linux PM QoS interface
    /// `/dev/cpu_dma_latency` while measuring, as cyclictest does. On VMs whose idle vCPUs halt, it
    /// removes most millisecond-long timer overshoots that make an open loop's sends lag. It
    /// changes the machine for the workers too, so it is off by default; needs root.
    #[arg(long, value_name = "US")]
    pub(crate) cpu_dma_latency: Option<u32>,
    /// Run the load generator (`generator`, the default of the bare flag) or the workers as well
    /// (`all`) under the real-time policy SCHED_FIFO, so that builds and other neighbours on a
    /// shared machine cannot delay the sends. Needs root, CAP_SYS_NICE or `ulimit -r 1`.
    #[arg(
        long,
        value_name = "WHO",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "generator",
        value_parser = PossibleValuesParser::new(["generator", "all"]).map(|s| crate::load::timer::Realtime::parse(&s).expect("a possible value"))
    )]
    pub(crate) realtime: Option<crate::load::timer::Realtime>,
}

impl RunFlags {
    /// The flags given that override the scenario file, by flag name, as written in `run.json`.
    pub(crate) fn overrides(&self) -> std::collections::BTreeMap<String, String> {
        let d = |d: &Duration| humantime::format_duration(*d).to_string();
        [
            ("--duration", self.duration.as_ref().map(d)),
            ("--requests", self.requests.map(|n| n.to_string())),
            ("--min-requests", self.min_requests.map(|n| n.to_string())),
            ("--max-duration", self.max_duration.as_ref().map(d)),
            ("--stable", self.stable.then(|| "true".to_string())),
            ("--window", self.window.as_ref().map(d)),
            ("--tolerance-pct", self.tolerance_pct.map(|p| p.to_string())),
            ("--max-windows", self.max_windows.map(|n| n.to_string())),
            ("--warmup", self.warmup.as_ref().map(d)),
            (
                "--warmup-requests",
                self.warmup_requests.map(|n| n.to_string()),
            ),
            ("--spin", self.spin.as_ref().map(d)),
            (
                "--cpu-dma-latency",
                self.cpu_dma_latency.map(|n| n.to_string()),
            ),
            ("--realtime", self.realtime.map(|r| r.name().to_string())),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v?)))
        .collect()
    }
}

const SWEEP_EXAMPLES: &str = "Examples:
  bench sweep --scenario scenarios/ensemble.toml
  bench sweep -s scenarios/nightly.toml --save-baseline main
  bench sweep -s scenarios/nightly.toml --baseline main
  bench sweep -s scenarios/ensemble.toml --out /tmp/r --duration 2s
  bench sweep -s scenarios/ensemble.toml --dry-run
  bench sweep -s scenarios/ensemble.toml --shard 0/4 --out shard0
  bench sweep -s scenarios/ensemble.toml --resume reports/ensemble";
const RUN_EXAMPLES: &str = "Examples:
  bench run models/onnx/mlp.onnx --dims batch=1
  bench run model.onnx --shape x=1x3x224x224 --workers 1,2 --transfer pipe,shm
  bench run ocr.onnx --shape x=1x3x48x192 --dims p2o.DynamicDimension.0=2 --duration 2s
  bench run a.onnx b.onnx --dims a:batch=4 --input mask=true --rate 100,200 --out reports/ab
  bench sweep --scenario reports/mlp/scenario.toml --out reports/mlp-2    # repeat a run";
const INIT_EXAMPLES: &str = "Examples:
  bench init models/onnx/encoder_small.onnx > my.toml
  bench init a.onnx b.onnx > my.toml && bench validate --scenario my.toml";
const MERGE_EXAMPLES: &str = "Examples:
  bench merge shard0 shard1 shard2 shard3 --out merged";
const REPORT_EXAMPLES: &str = "Examples:
  bench report reports/ensemble
  bench report reports/ensemble --slo 'p99_ms<=6' --max-rss-mib 512
  bench report reports/ocr --slo 'p99_ms<=20' --slo 'det:p99_ms<=50' --slo 'cold_p99_ms<=800'

Exit codes: 0 written, and a point meets every objective (or none was given); 1 written, but no
point meets them; 2 bad input (an objective that does not parse or names no model in the results,
a folder without results.csv).";
const COMPARE_EXAMPLES: &str = "Examples:
  bench compare reports/baseline reports/nightly
  bench compare --baseline main reports/nightly --json-smaller latency.json --json-bigger rps.json
  bench compare reports/baseline reports/nightly --metrics throughput,p99 --threshold 15
  bench compare old/results.csv new/results.csv --markdown \"$GITHUB_STEP_SUMMARY\"";
const CAPACITY_EXAMPLES: &str = "Examples:
  bench capacity --scenario scenarios/ensemble.toml --slo p99_ms=50
  bench capacity -s scenarios/ensemble.toml --slo 'p99_ms <= 20' --spin 2ms --duration 2s";
const VALIDATE_EXAMPLES: &str = "Examples:
  bench validate scenarios/ensemble.toml
  bench validate --scenario scenarios/ensemble.toml --force";
const PARITY_EXAMPLES: &str = "Examples:
  bench parity --scenario scenarios/runtimes.toml";
const INSPECT_EXAMPLES: &str = "Examples:
  bench inspect models/onnx/resnet_small.onnx models/onnx/encoder_small.onnx";
const CALIBRATE_EXAMPLES: &str = "Examples:
  bench calibrate
  bench calibrate --model models/onnx/mlp.onnx --iterations 5000 --csv floor.csv
  bench calibrate --generator
  bench calibrate --transfer";
const COMPLETIONS_EXAMPLES: &str = "Examples:
  bench completions bash > ~/.local/share/bash-completion/completions/bench
  bench completions zsh > ~/.zfunc/_bench
  bench completions fish > ~/.config/fish/completions/bench.fish";

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    version = VERSION,
    about = "Measure how to run several ONNX models side by side: worker processes, threads, transfer modes",
    after_help = "Docs: docs/README.md. Exit codes: 0 ok, 1 finished with failures or regressions, \
                  2 could not run, 128+N interrupted by signal N."
)]
pub struct Cli {
    /// ONNX Runtime shared library (libonnxruntime.so.1.31.1). Default: ORT_DYLIB_PATH, then the
    /// project's .venv, then python3's onnxruntime package.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) ort_lib: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run every point of a scenario's sweep and write results.csv and run.json.
    #[command(after_help = SWEEP_EXAMPLES)]
    Sweep(SweepArgs),
    /// Sweep ONNX files without a scenario file: the flags become `OUT/scenario.toml`, which
    /// `bench sweep --scenario` repeats; then the same results as `sweep`.
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// Print a commented starter scenario for ONNX files: every input with its type and shape, a
    /// generator for each, and `# bind me` on each size to set.
    #[command(after_help = INIT_EXAMPLES)]
    Init(InitArgs),
    /// Combine result folders (shards of one sweep, or the same points run on several machines)
    /// into one: results.csv, run.json and hlog/.
    #[command(after_help = MERGE_EXAMPLES)]
    Merge(MergeArgs),
    /// Write report.html (charts, verdicts, metadata) and summary.md into a results directory;
    /// with objectives, recommend the point with the most throughput that meets them all.
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
    /// Compare two results of the same scenario, row by row: a metric that got worse by more than
    /// the threshold and the trials' noise band is a regression (exit 1).
    #[command(after_help = COMPARE_EXAMPLES)]
    Compare(CompareArgs),
    /// For each configuration of a scenario (its sweep without the load axis), search the highest
    /// open-loop rate that meets an SLO, and name the best configuration.
    #[command(after_help = CAPACITY_EXAMPLES)]
    Capacity(CapacityArgs),
    /// Check a scenario against its models and print the sweep points.
    #[command(after_help = VALIDATE_EXAMPLES)]
    Validate(ValidateArgs),
    /// Run one fixed batch per model through every runtime (at least torch and ort) and compare
    /// each output with PyTorch's; exit 1 when one differs beyond the scenario's `[parity]`
    /// tolerances.
    #[command(after_help = PARITY_EXAMPLES)]
    Parity(ParityArgs),
    /// Print a model's inputs and outputs: names, element types, shapes (dynamic dims by name).
    ///
    /// The opset of each operator domain the model imports comes first (`opset 18`, then `opset
    /// ai.onnx.ml 1`). A value that is no tensor shows its type, e.g. `seq(map(int64, float32))`
    /// for a classifier's ZipMap output; bench runs only models of tensors.
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Measure the floor: in-process run, bare process-to-process round trips (socket and spin
    /// channel) and the worker pool's per-request overhead, side by side on one model.
    #[command(after_help = CALIBRATE_EXAMPLES)]
    Calibrate(CalibrateArgs),
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Internal: echo fixed-size messages on an inherited socket (the bare round-trip peer).
    #[command(hide = true)]
    Echo {
        #[arg(long)]
        fd: i32,
        #[arg(long)]
        size: usize,
        /// Echo through this `spin` channel file instead of the socket (the socket then carries
        /// only doorbells).
        #[arg(long)]
        channel_fd: Option<i32>,
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
        /// The `spin` channel's file.
        #[arg(long)]
        channel_fd: Option<i32>,
    },
}

/// `--force`: what `sweep`, `run` and `capacity` refuse without it, they do with it.
#[derive(Debug, Clone, Copy, Default, Args)]
pub(crate) struct ForceFlag {
    /// Run anyway: replace the results of an earlier run in the output folder (only the files
    /// bench writes there go), and start points past the limits on worker processes (256) and
    /// compute threads (8 per CPU).
    #[arg(long)]
    pub(crate) force: bool,
}

/// The scenario file of `sweep`, `capacity`, `validate` and `parity`: a path, as `run`, `inspect`
/// and `report` take theirs, or `--scenario FILE` (`-s`), one of the two.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct ScenarioFile {
    /// The scenario file (TOML); or give it with --scenario.
    #[arg(value_name = "SCENARIO")]
    file: Option<PathBuf>,
    /// The scenario file (TOML).
    #[arg(long = "scenario", short = 's', value_name = "FILE")]
    flag: Option<PathBuf>,
}

impl ScenarioFile {
    /// The file, however it was given.
    pub(crate) fn path(&self) -> &std::path::Path {
        // The group makes one of the two required.
        self.file
            .as_deref()
            .or(self.flag.as_deref())
            .unwrap_or(std::path::Path::new(""))
    }
}

/// The arguments of `bench sweep`.
#[derive(Debug, Clone, Args)]
pub(crate) struct SweepArgs {
    #[command(flatten)]
    pub(crate) scenario: ScenarioFile,
    /// Output folder. Default: `reports/<scenario name>`. A folder holding an earlier run's
    /// results is refused: continue it with --resume, or replace it with --force.
    #[arg(long, short, conflicts_with = "resume")]
    pub(crate) out: Option<PathBuf>,
    /// Continue an interrupted sweep in DIR: keep its finished points, run the others.
    #[arg(long, value_name = "DIR")]
    pub(crate) resume: Option<PathBuf>,
    /// Check the scenario and list the sweep points without running anything.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) force: ForceFlag,
    #[command(flatten)]
    pub(crate) run: RunFlags,
    /// Run only shard I of N (0-based): the points whose index modulo N is I, so N machines can
    /// split the sweep; `bench merge` combines their results.
    #[arg(long, value_name = "I/N")]
    pub(crate) shard: Option<crate::scenario::shard::Shard>,
    /// Keep this run as the named baseline NAME of its scenario (BASELINES/SCENARIO/NAME/), for a
    /// later `--baseline NAME`.
    #[arg(long, value_name = "NAME", value_parser = |s: &str| crate::commands::compare::baseline::check_name(s).map(|()| s.to_string()))]
    pub(crate) save_baseline: Option<String>,
    #[command(flatten)]
    pub(crate) named: BaselineFlags,
}

/// The arguments of `bench run`. Each list flag takes one value or a comma list, a sweep axis
/// named as in the scenario's `[sweep]`, `[load]` and `[batching]`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// The ONNX files, run side by side; each is a model named after its file stem.
    #[arg(required = true, value_name = "MODEL.onnx")]
    pub(crate) models: Vec<PathBuf>,
    /// Bind a named dynamic dim (as `bench inspect` shows it), e.g. `batch=1` or
    /// `p2o.DynamicDimension.0=2`, in every model that has it; `MODEL:NAME=SIZE` for one model.
    /// One dim per flag, repeated for several (`--dims a=1 --dims b=2`). A batch-like dim left
    /// unbound is 1.
    #[arg(long = "dims", value_name = "NAME=SIZE", value_parser = starter::parse_dim)]
    pub(crate) dims: Vec<Scoped<i64>>,
    /// An input's full shape, e.g. `x=1x3x224x224`, for inputs with unnamed (-1, ?) dims or an
    /// unknown rank; in every model with that input, or `MODEL:INPUT=SHAPE` for one. Repeatable.
    #[arg(long = "shape", value_name = "INPUT=SHAPE", value_parser = starter::parse_shape)]
    pub(crate) shapes: Vec<Scoped<Vec<i64>>>,
    /// Fill an input with a constant (`mask=true`, `scale=0.5`), a tensor file's samples
    /// (`x=sample.npy`, `.npz`, ONNX `.pb`) or a generator (`input_ids=int:0:30522` for ids in
    /// [0, 30522), `x=uniform:-1:1`, `x=normal:0:1`), in every model with that input, or
    /// `MODEL:INPUT=...`. Repeatable.
    /// Default: uniform in [0, 1) for floats, 0 or 1 for integer ids, 1 for masks.
    #[arg(long = "input", value_name = "INPUT=VALUE|FILE|GEN", value_parser = starter::parse_input)]
    pub(crate) inputs: Vec<Scoped<InputValue>>,
    /// A test-data folder (`test_data_set_N/input_K.pb`, `output_K.pb`, as the ONNX backend tests
    /// and `onnxruntime_perf_test` lay them out): its inputs become the samples, and each worker's
    /// first run of each is checked against its outputs. `MODEL=DIR` for one of several models.
    #[arg(long = "test-data", value_name = "[MODEL=]DIR", value_parser = starter::parse_test_data)]
    pub(crate) test_data: Vec<Scoped<PathBuf>>,
    /// The sweep axes: one flag per scenario key of each axis, declared with the axis.
    #[command(flatten)]
    pub(crate) axes: AxisFlags,
    /// Output folder: the results, and `scenario.toml`. Default: `reports/<models' stems joined by +>`.
    /// A folder holding an earlier run's results is refused unless --force.
    #[arg(long, short)]
    pub(crate) out: Option<PathBuf>,
    /// Write `OUT/scenario.toml` and list the sweep points without running anything.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) force: ForceFlag,
    #[command(flatten)]
    pub(crate) run: RunFlags,
}

/// `bench run`'s flags for the sweep axes: one per scenario key of every axis, each with its value
/// name and `--help` line as the axis declares them ([`crate::scenario::axes`]), so an axis added
/// there has its flag here without a line of this file.
#[derive(Debug, Clone, Default)]
pub(crate) struct AxisFlags {
    /// The flags given, each with its values (checked as the axis says), in the axes' order.
    pub(crate) given: Vec<(&'static Key, Vec<String>)>,
}

impl AxisFlags {
    /// The values given to `--FLAG`, if it was.
    #[cfg(test)]
    pub(crate) fn values(&self, flag: &str) -> Option<&[String]> {
        self.given
            .iter()
            .find(|(k, _)| k.flag == flag)
            .map(|(_, v)| v.as_slice())
    }
}

/// A key's flag: one value or a comma list, checked when parsed.
fn axis_arg(key: &'static Key) -> Arg {
    let arg = Arg::new(key.flag)
        .long(key.flag)
        .value_name(key.value_name)
        .help(key.help.strip_suffix('.').unwrap_or(key.help));
    let arg = match key.value {
        FlagValue::Names(names) => arg.value_parser(PossibleValuesParser::new(names())),
        FlagValue::Bools => arg.value_parser(PossibleValuesParser::new(["true", "false"])),
        _ => arg.value_parser(move |s: &str| key.check(s)),
    };
    let arg = if key.list {
        arg.value_delimiter(',').action(ArgAction::Append)
    } else {
        arg.action(ArgAction::Set)
    };
    match key.conflicts {
        Some(other) => arg.conflicts_with(other),
        None => arg,
    }
}

impl Args for AxisFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        axes::keys().fold(cmd, |cmd, key| cmd.arg(axis_arg(key)))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for AxisFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = AxisFlags::default();
        flags.update_from_arg_matches(m)?;
        Ok(flags)
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        for key in axes::keys() {
            if let Some(values) = m.get_many::<String>(key.flag) {
                self.given.retain(|(k, _)| k.flag != key.flag);
                self.given.push((key, values.cloned().collect()));
            }
        }
        Ok(())
    }
}

/// The arguments of `bench init`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InitArgs {
    /// The ONNX files; each is a model named after its file stem.
    #[arg(required = true, value_name = "MODEL.onnx")]
    pub(crate) models: Vec<PathBuf>,
    /// A test-data folder for the model (`MODEL=DIR` for one of several), as `bench run` takes
    /// it: the scenario reads its inputs and checks the outputs.
    #[arg(long = "test-data", value_name = "[MODEL=]DIR", value_parser = starter::parse_test_data)]
    pub(crate) test_data: Vec<Scoped<PathBuf>>,
}

/// The arguments of `bench merge`.
#[derive(Debug, Clone, Args)]
pub(crate) struct MergeArgs {
    /// Result folders written by `bench sweep` (each with results.csv, run.json, hlog/).
    #[arg(required = true, value_name = "DIR")]
    pub(crate) dirs: Vec<PathBuf>,
    /// The merged folder; it must not exist yet, or be empty.
    #[arg(long, short)]
    pub(crate) out: PathBuf,
    /// Merge even when the folders come from different scenario files.
    #[arg(long)]
    pub(crate) force: bool,
}

/// The arguments of `bench report`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReportArgs {
    /// A folder written by `bench sweep --out DIR`.
    #[arg(value_name = "RESULTS_DIR")]
    pub(crate) dir: PathBuf,
    /// An objective the recommended point must meet: `p99_ms<=6` for the whole point,
    /// `MODEL:p99_ms<=50` for one model or ensemble group, `cold_p99_ms<=800` for cold starts
    /// alone. Repeat for several. Latency objectives count cold starts. Default: the scenario's
    /// `slo`.
    #[arg(long, value_name = "OBJECTIVE", value_parser = crate::scenario::slo::parse_objective)]
    pub(crate) slo: Vec<crate::scenario::slo::Objective>,
    /// The most memory the recommended point may hold: `rss_mib`, all its workers together.
    #[arg(long, value_name = "MIB", value_parser = positive_number)]
    pub(crate) max_rss_mib: Option<f64>,
}

/// A finite number above 0.
pub(crate) fn positive_number(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| format!("`{s}` is not a number above 0"))
}

/// Named baselines (`--save-baseline`, `--baseline`), shared by `sweep` and `compare`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct BaselineFlags {
    /// Compare against the saved baseline NAME of the run's scenario (see --save-baseline); a
    /// regression exits 1.
    #[arg(long, value_name = "NAME")]
    pub(crate) baseline: Option<String>,
    /// Where named baselines are kept, as BASELINES/SCENARIO/NAME/.
    #[arg(long, value_name = "DIR", default_value = crate::commands::compare::baseline::DEFAULT_ROOT)]
    pub(crate) baselines: PathBuf,
}

/// The arguments of `bench compare`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CompareArgs {
    /// BASELINE CANDIDATE: each a results.csv, or a results directory holding one. With
    /// --baseline NAME, only CANDIDATE.
    #[arg(required = true, num_args = 1..=2, value_name = "RESULTS")]
    pub(crate) results: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) named: BaselineFlags,
    /// Also write the candidate's latencies (µs) as JSON for github-action-benchmark, tool
    /// `customSmallerIsBetter`, each with its change and interval.
    #[arg(long, value_name = "FILE")]
    pub(crate) json_smaller: Option<PathBuf>,
    /// Also write the candidate's throughput (requests/s) as JSON for github-action-benchmark,
    /// tool `customBiggerIsBetter`.
    #[arg(long, value_name = "FILE")]
    pub(crate) json_bigger: Option<PathBuf>,
    /// After comparing, keep CANDIDATE as the named baseline NAME of its scenario (the one it
    /// replaces becomes an earlier run), as `bench sweep --save-baseline` would.
    #[arg(long, value_name = "NAME", value_parser = |s: &str| crate::commands::compare::baseline::check_name(s).map(|()| s.to_string()))]
    pub(crate) save_baseline: Option<String>,
    /// Metrics to compare, comma-separated: throughput, p50, p90, p95, p99, p999, max, mean.
    #[arg(long, default_value = "throughput,p50,p99")]
    pub(crate) metrics: String,
    /// A change must be worse than this many percent (and than the noise band) to count.
    #[arg(
        long,
        default_value_t = 10.0,
        value_name = "PCT",
        allow_negative_numbers = true
    )]
    pub(crate) threshold: f64,
    /// A latency must also move by at least this many microseconds to count (0 turns it off):
    /// smaller moves of a tail are scheduling noise on a shared VM.
    #[arg(
        long,
        default_value_t = crate::commands::compare::DEFAULT_MIN_CHANGE_US,
        value_name = "US",
        allow_negative_numbers = true
    )]
    pub(crate) min_change_us: f64,
    /// Also write the comparison as markdown here (e.g. "$GITHUB_STEP_SUMMARY").
    #[arg(long, value_name = "FILE")]
    pub(crate) markdown: Option<PathBuf>,
    /// Show every comparison, not only the regressions and improvements.
    #[arg(long)]
    pub(crate) all: bool,
    /// Compare runs whose scenario, effective settings, ONNX Runtime or CPU differ (refused
    /// otherwise, exit 2); the differences are printed above the table.
    #[arg(long)]
    pub(crate) allow_different: bool,
}

/// The arguments of `bench capacity`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CapacityArgs {
    #[command(flatten)]
    pub(crate) scenario: ScenarioFile,
    /// An objective, e.g. `p99_ms=50` or "p99_ms <= 50"; repeat for several. Default: the
    /// scenario's `slo`.
    #[arg(long, value_name = "OBJECTIVE")]
    pub(crate) slo: Vec<String>,
    /// Output folder for capacity.csv. Default: `reports/<scenario name>-capacity`. A folder
    /// holding an earlier capacity.csv is refused unless --force.
    #[arg(long, short)]
    pub(crate) out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) force: ForceFlag,
    /// Start every search at this rate (requests/s) instead of estimating one with a short
    /// closed-loop probe.
    #[arg(long, value_name = "RPS")]
    pub(crate) start_rate: Option<f64>,
    /// The lowest rate tried; failing there means no capacity.
    #[arg(long, value_name = "RPS", default_value_t = 1.0)]
    pub(crate) min_rate: f64,
    /// The highest rate tried.
    #[arg(long, value_name = "RPS", default_value_t = 1_000_000.0)]
    pub(crate) max_rate: f64,
    /// Stop when the lowest failing rate is within this many percent of the highest meeting one.
    #[arg(long, value_name = "PCT", default_value_t = 5.0)]
    pub(crate) precision: f64,
    /// Probes per configuration at most (the closed-loop estimate not counted).
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub(crate) max_probes: usize,
    #[command(flatten)]
    pub(crate) run: RunFlags,
}

/// The arguments of `bench validate`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ValidateArgs {
    #[command(flatten)]
    pub(crate) scenario: ScenarioFile,
    /// Accept points past the limits on worker processes (256) and compute threads (8 per CPU),
    /// as `bench sweep --force` runs them.
    #[arg(long)]
    pub(crate) force: bool,
}

/// The arguments of `bench parity`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ParityArgs {
    #[command(flatten)]
    pub(crate) scenario: ScenarioFile,
}

/// The arguments of `bench inspect`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InspectArgs {
    /// One or more .onnx files.
    #[arg(required = true)]
    pub(crate) models: Vec<PathBuf>,
}

/// The arguments of `bench calibrate`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CalibrateArgs {
    /// The model to run. Default: the bundled Linear(10, 1) (`models/onnx/linear.onnx`, built
    /// into bench, so that calibrate runs from any folder).
    #[arg(long, value_name = "MODEL.onnx")]
    pub(crate) model: Option<PathBuf>,
    /// Timed requests per loop.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) iterations: u64,
    /// Also write the table as CSV here.
    #[arg(long)]
    pub(crate) csv: Option<PathBuf>,
    /// Measure the load generator's own ceiling instead: the most requests per second the parent
    /// drives through one worker whose model takes no time, and its CPU per request, over the
    /// socket and over the spin channel.
    #[arg(long, conflicts_with = "transfer")]
    pub(crate) generator: bool,
    /// Measure transfer throughput instead: `pipe` and `shm` against single-thread memcpy, from
    /// 4 KiB to 64 MiB.
    #[arg(long)]
    pub(crate) transfer: bool,
}

/// The arguments of `bench completions`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    pub(crate) shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_visible_subcommand_has_an_example() {
        for sub in Cli::command()
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
        {
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.starts_with("Examples:\n  bench "),
                "`bench {}` has no example: {help:?}",
                sub.get_name()
            );
        }
    }

    #[test]
    fn durations_are_typed_and_checked_when_parsed() {
        let cli = Cli::try_parse_from([
            "bench",
            "sweep",
            "-s",
            "x.toml",
            "--duration",
            "1500ms",
            "--spin",
            "2ms",
        ])
        .unwrap();
        let Command::Sweep(SweepArgs { run, .. }) = cli.command else {
            panic!("not sweep")
        };
        assert_eq!(run.duration, Some(Duration::from_millis(1500)));
        assert_eq!(run.spin, Some(Duration::from_millis(2)));
        for (flag, value, says) in [
            ("--duration", "0s", "must be longer than zero"),
            ("--duration", "soon", "not a duration like 5s"),
            ("--spin", "1s", "more than the 100ms limit"),
            ("--requests", "0", "0 is not in 1.."),
        ] {
            let err = Cli::try_parse_from(["bench", "capacity", "-s", "x.toml", flag, value])
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{flag} {value}: {err}");
        }
    }

    #[test]
    fn sweep_run_and_capacity_share_the_run_flags() {
        let cmd = Cli::command();
        let flags = |name: &str| -> Vec<String> {
            cmd.find_subcommand(name)
                .unwrap()
                .get_arguments()
                .filter_map(|a| a.get_long().map(str::to_string))
                .collect()
        };
        for cmd in ["sweep", "run", "capacity"] {
            let have = flags(cmd);
            for f in ["duration", "requests", "spin", "quiet", "cpu-dma-latency"] {
                assert!(have.iter().any(|x| x == f), "{cmd} --{f}");
            }
        }
    }

    #[test]
    fn run_takes_sweep_axes_as_comma_lists_and_dotted_dims() {
        let cli = Cli::try_parse_from([
            "bench",
            "run",
            "ocr.onnx",
            "--dims",
            "p2o.DynamicDimension.0=2",
            "--workers",
            "1,2,4",
            "--transfer",
            "pipe,shm",
            "--concurrency",
            "1,8",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.dims[0].target, "p2o.DynamicDimension.0");
        let values = |flag: &str| args.axes.values(flag).unwrap().to_vec();
        assert_eq!(values("workers"), ["1", "2", "4"]);
        assert_eq!(values("transfer"), ["pipe", "shm"]);
        assert_eq!(values("concurrency"), ["1", "8"]);
        for bad in [
            vec!["--transfer", "pigeon"],
            vec!["--workers", "0"],
            vec!["--rate", "100", "--concurrency", "2"],
            vec!["--dims", "batch"],
        ] {
            let mut argv = vec!["bench", "run", "m.onnx"];
            argv.extend(&bad);
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }

    /// Regression: `bench validate FILE` was refused: the scenario came only with `--scenario`,
    /// while `run`, `inspect` and `report` take a path.
    #[test]
    fn every_scenario_command_takes_a_path_or_the_flag_but_not_both() {
        for sub in ["sweep", "capacity", "validate", "parity"] {
            let path = |argv: &[&str]| -> PathBuf {
                let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
                match cli.command {
                    Command::Sweep(a) => a.scenario.path().to_path_buf(),
                    Command::Capacity(a) => a.scenario.path().to_path_buf(),
                    Command::Validate(a) => a.scenario.path().to_path_buf(),
                    Command::Parity(a) => a.scenario.path().to_path_buf(),
                    _ => panic!("{sub}"),
                }
            };
            assert_eq!(path(&["bench", sub, "s.toml"]), PathBuf::from("s.toml"));
            assert_eq!(
                path(&["bench", sub, "--scenario", "s.toml"]),
                PathBuf::from("s.toml")
            );
            assert_eq!(
                path(&["bench", sub, "-s", "s.toml"]),
                PathBuf::from("s.toml")
            );
            for bad in [
                vec!["bench", sub],
                vec!["bench", sub, "a.toml", "-s", "b.toml"],
            ] {
                assert!(Cli::try_parse_from(&bad).is_err(), "{bad:?}");
            }
        }
    }

    #[test]
    fn the_version_names_the_commit() {
        assert!(VERSION.contains("(commit "), "{VERSION}");
    }
}
