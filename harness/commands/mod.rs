//! The subcommands: the command line ([`cli`]) and one function per subcommand here, the glue
//! between the typed command line and the pipeline. Each takes its parsed arguments, runs, and
//! says how the process should exit; the subcommands that are more than glue have a file of
//! their own:
//!
//! - [`starter`]: writes scenario files from ONNX models: `bench init`'s starter, `bench run`'s
//!   scenario from its flags.
//! - [`calibrate`](mod@calibrate): measures the floor (in-process run, bare socket round trip) beside the pool.
//! - [`capacity`](mod@capacity): searches each configuration's highest rate within an SLO and names the best.
//! - [`compare`](mod@compare): matches two results row by row and flags regressions beyond threshold and noise.
//! - [`merge`](mod@merge): combines result folders of several machines into one.
//! - [`parity`](mod@parity): runs one batch per model through every runtime and compares with PyTorch.

pub mod calibrate;
pub mod capacity;
pub mod cli;
pub mod compare;
pub mod merge;
pub mod parity;
pub mod starter;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::commands::cli::{
    CalibrateArgs, CapacityArgs, CompareArgs, InitArgs, InspectArgs, MergeArgs, ParityArgs,
    ReportArgs, RunArgs, RunFlags, SweepArgs, ValidateArgs,
};
use crate::load::timer;
use crate::pool::runtime::ortlib::{self, OrtLib};
use crate::report::outdir;
use crate::scenario::shard;
use crate::scenario::{self, Scenario};
use crate::{ExitCode, report, sweep};

/// ONNX Runtime for a scenario: located when some model is an ONNX file that some point runs under
/// `ort`, or when `--ort-lib` names a library; otherwise not needed (synthetic models, tract or
/// torch only). The one rule every command that runs a scenario follows.
pub(crate) fn ort_for(s: &Scenario, ort_lib: Option<&Path>) -> anyhow::Result<Option<OrtLib>> {
    let needed = s.has_onnx() && s.axes.runtime.contains(&scenario::Runtime::Ort);
    Ok(if needed || ort_lib.is_some() {
        Some(ortlib::locate(ort_lib)?)
    } else {
        None
    })
}

/// Applies the stop rule's flags (`--duration`, `--requests`, `--min-requests`, `--max-duration`,
/// `--stable` with `--window`, `--tolerance-pct` and `--max-windows`, `--warmup`,
/// `--warmup-requests`) and `--spin` over the scenario (flags win over the file).
fn apply_run_flags(s: &mut Scenario, run: &RunFlags) {
    if let Some(d) = run.warmup {
        s.workload.warmup = scenario::Limit::Duration(d);
    }
    if let Some(n) = run.warmup_requests {
        s.workload.warmup = scenario::Limit::Requests(n);
    }
    if let Some(d) = run.duration {
        s.workload.stop = scenario::StopRule::Fixed(scenario::Limit::Duration(d));
    }
    if let Some(n) = run.requests {
        s.workload.stop = scenario::StopRule::Fixed(scenario::Limit::Requests(n));
    }
    if run.stable {
        let base = match s.workload.stop {
            stable @ scenario::StopRule::Stable { .. } => stable,
            scenario::StopRule::Fixed(_) => scenario::StopRule::STABLE,
        };
        let scenario::StopRule::Stable {
            window,
            tolerance_pct,
            max_windows,
        } = base
        else {
            unreachable!("a stable rule")
        };
        s.workload.stop = scenario::StopRule::Stable {
            window: run.window.unwrap_or(window),
            tolerance_pct: run.tolerance_pct.unwrap_or(tolerance_pct),
            max_windows: run.max_windows.map_or(max_windows, |n| n as usize),
        };
    }
    if let Some(n) = run.min_requests {
        s.workload.min_requests = Some(n);
    }
    if let Some(d) = run.max_duration {
        s.workload.max_duration = d;
    }
    if let Some(spin) = run.spin {
        s.load.spin = spin;
    }
}

/// Prepares the machine for measuring: enters `--realtime` (for the rest of the command) and holds
/// `--cpu-dma-latency` until the returned file is dropped (the kernel drops the request when the
/// file closes).
fn hold_qos(run: &RunFlags) -> anyhow::Result<Option<std::fs::File>> {
    if let Some(who) = run.realtime {
        timer::enter_realtime(who)?;
    }
    run.cpu_dma_latency
        .map(timer::hold_cpu_dma_latency)
        .transpose()
}

fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Where and how a sweep runs, once its scenario is loaded: what `bench sweep` and `bench run`
/// share.
struct SweepPlan<'a> {
    out_dir: PathBuf,
    resume: bool,
    /// `--force`: points past the limits run too (the output folder is claimed before).
    force: bool,
    shard: Option<shard::Shard>,
    dry_run: bool,
    run: &'a RunFlags,
}

/// `bench sweep`.
pub(crate) fn sweep(args: SweepArgs, ort_lib: Option<&Path>) -> anyhow::Result<ExitCode> {
    let s = scenario::load(args.scenario.path())?;
    let name = s.name.clone();
    // A missing baseline is found out before the sweep, not after it.
    let against = match &args.named.baseline {
        Some(b) if !args.dry_run => Some(compare::baseline::find(&args.named.baselines, &name, b)?),
        _ => None,
    };
    let out_dir = args
        .resume
        .clone()
        .or(args.out.clone())
        .unwrap_or_else(|| PathBuf::from("reports").join(&s.name));
    if args.resume.is_none() && !args.dry_run {
        s.check_limits(args.force.force)?;
        outdir::claim(
            &out_dir,
            outdir::Writer::Sweep,
            args.force.force,
            &out_name(&out_dir, args.out.is_some()),
            Some(&format!("--resume {}", out_dir.display())),
        )?;
    }
    let created = !out_dir.exists();
    let plan = SweepPlan {
        out_dir: out_dir.clone(),
        resume: args.resume.is_some(),
        force: args.force.force,
        shard: args.shard,
        dry_run: args.dry_run,
        run: &args.run,
    };
    let code = run_sweep(s, plan, ort_lib);
    if code.is_err() && args.resume.is_none() && !args.dry_run {
        discarded(&out_dir, outdir::Writer::Sweep, created);
    }
    let code = code?;
    if args.dry_run || matches!(code, ExitCode::Signal(_)) {
        return Ok(code);
    }
    // Compared first, then saved: `--baseline main --save-baseline main` judges this run against
    // the last one, then keeps it.
    let verdict = match against {
        Some(base) => {
            println!();
            let settings = CompareArgs {
                results: Vec::new(),
                named: args.named.clone(),
                metrics: "throughput,p50,p99".into(),
                threshold: 10.0,
                min_change_us: compare::DEFAULT_MIN_CHANGE_US,
                markdown: None,
                all: false,
                allow_different: false,
                json_smaller: None,
                json_bigger: None,
                save_baseline: None,
            };
            compare_runs(&base, &out_dir, &settings)?
        }
        None => ExitCode::Ok,
    };
    if let Some(b) = &args.save_baseline {
        let dir = compare::baseline::save(&out_dir, &args.named.baselines, &name, b)?;
        eprintln!("bench: saved as baseline `{b}` in {}", dir.display());
    }
    Ok(if verdict == ExitCode::Ok {
        code
    } else {
        verdict
    })
}

/// `bench run`: the flags become `OUT/scenario.toml`, which is then swept as `bench sweep` would
/// sweep it, so `bench sweep --scenario OUT/scenario.toml` repeats the run.
pub(crate) fn run(args: RunArgs, ort_lib: Option<&Path>) -> anyhow::Result<ExitCode> {
    use toml::Value;
    let name = run_name(&starter::model_names(&args.models));
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&name));
    let mut settings: Vec<(&'static str, String, Value)> = Vec::new();
    let duration =
        |d: std::time::Duration| Value::String(humantime::format_duration(d).to_string());
    // The run flags go into the file too, so that the file alone repeats the run.
    if let Some(d) = args.run.duration {
        settings.push(("workload", "duration".into(), duration(d)));
    }
    if let Some(n) = args.run.requests {
        settings.push(("workload", "requests".into(), Value::Integer(n.try_into()?)));
    }
    if let Some(n) = args.run.min_requests {
        settings.push((
            "workload",
            "min_requests".into(),
            Value::Integer(n.try_into()?),
        ));
    }
    if let Some(d) = args.run.max_duration {
        settings.push(("workload", "max_duration".into(), duration(d)));
    }
    if args.run.stable {
        settings.push(("workload", "stop".into(), Value::String("stable".into())));
    }
    if let Some(d) = args.run.window {
        settings.push(("workload", "window".into(), duration(d)));
    }
    if let Some(p) = args.run.tolerance_pct {
        settings.push(("workload", "tolerance_pct".into(), Value::Float(p)));
    }
    if let Some(n) = args.run.max_windows {
        settings.push((
            "workload",
            "max_windows".into(),
            Value::Integer(n.try_into()?),
        ));
    }
    if let Some(d) = args.run.warmup {
        settings.push(("workload", "warmup".into(), duration(d)));
    }
    if let Some(n) = args.run.warmup_requests {
        settings.push((
            "workload",
            "warmup_requests".into(),
            Value::Integer(n.try_into()?),
        ));
    }
    // Each axis flag becomes its scenario key, as the axis declares it.
    for (key, values) in &args.axes.given {
        settings.extend(key.settings(values));
    }
    if let Some(spin) = args.run.spin {
        settings.push(("load", "spin".into(), duration(spin)));
    }
    // One block per table: the tables in the order they first appear.
    let mut tables: Vec<&str> = Vec::new();
    for (t, _, _) in &settings {
        if !tables.contains(t) {
            tables.push(t);
        }
    }
    settings.sort_by_key(|(t, _, _)| tables.iter().position(|x| x == t));
    let spec = starter::RunSpec {
        dims: args.dims.clone(),
        shapes: args.shapes.clone(),
        inputs: args.inputs.clone(),
        test_data: args.test_data.clone(),
        name,
        settings,
        command: command_line(),
    };
    let (text, notes) = starter::run(&args.models, &spec)?;
    for n in &notes {
        eprintln!("bench: {n}");
    }
    // Even a dry run writes scenario.toml: into a folder of an earlier run's results, it would
    // no longer be the scenario they come from.
    outdir::claim(
        &out_dir,
        outdir::Writer::Run,
        args.force.force,
        &out_name(&out_dir, args.out.is_some()),
        None,
    )?;
    let created = !out_dir.exists();
    let file = out_dir.join(outdir::RUN_SCENARIO);
    let plan = SweepPlan {
        out_dir: out_dir.clone(),
        resume: false,
        force: args.force.force,
        shard: None,
        dry_run: args.dry_run,
        run: &args.run,
    };
    let code = std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("--out: cannot create {}", out_dir.display()))
        .and_then(|()| {
            report::write_atomic(&file, text.as_bytes())
                .with_context(|| format!("--out: cannot write {}", file.display()))
        })
        .and_then(|()| {
            eprintln!(
                "bench: wrote {}; repeat with `bench sweep --scenario {} --out NEW_DIR`",
                file.display(),
                file.display()
            );
            scenario::load(&file).map_err(anyhow::Error::from)
        })
        .and_then(|s| run_sweep(s, plan, ort_lib));
    // A run refused or failed before its first point leaves nothing behind, its scenario.toml
    // included: the folder stays free for the fixed run, and holds no file that looks like one.
    if code.is_err() {
        discarded(&out_dir, outdir::Writer::Run, created);
    }
    code
}

/// After a failed run: removes what it wrote into `dir` when it measured nothing, and says so.
fn discarded(dir: &Path, writer: outdir::Writer, created: bool) {
    let removed = outdir::discard_unmeasured(dir, writer, created);
    if !removed.is_empty() {
        eprintln!(
            "bench: nothing was measured; removed {} from {}",
            removed.join(", "),
            dir.display()
        );
    }
}

/// The output folder as messages name it: the flag when given, else the default it is.
fn out_name(dir: &Path, given: bool) -> String {
    if given {
        format!("--out {}", dir.display())
    } else {
        format!("the output folder {} (the default --out)", dir.display())
    }
}

/// The name of a `bench run` of these models (its scenario's `name` and default folder): the
/// models' names joined with `+` (`mlp+det`), or for more than three, the first two and how many
/// more (`mlp+det+3-more`). A run of several models used to take the first one's name alone.
fn run_name(models: &[String]) -> String {
    const NAMED: usize = 3;
    if models.len() <= NAMED {
        models.join("+")
    } else {
        format!("{}+{}-more", models[..2].join("+"), models.len() - 2)
    }
}

/// This process's command line, quoted where a shell would need it, for a file's header.
fn command_line() -> String {
    let words: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect();
    format!("bench {}", words.join(" "))
}

/// `bench init`: the starter on stdout, what to bind on stderr.
pub(crate) fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let (text, notes) = starter::init(&args.models, &args.test_data)?;
    print!("{text}");
    for n in &notes {
        eprintln!("bench init: {n}");
    }
    Ok(ExitCode::Ok)
}

/// Runs a loaded scenario's sweep (or lists its points): the one body of `sweep` and `run`.
fn run_sweep(
    mut s: Scenario,
    plan: SweepPlan<'_>,
    ort_lib: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    apply_run_flags(&mut s, plan.run);
    // A shard runs its share of the points, keeping their indexes and ids.
    let shard = plan.shard.map(|sh| shard::ShardInfo::new(sh, &s.points));
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
    // Checked here too for `--dry-run` and `bench run`, which list or run the points as a sweep.
    s.check_limits(plan.force)?;
    note_random_scalars(&s);
    if plan.dry_run {
        print!("{}", scenario::describe(&s));
        warn_of_the_stop_rule(&s);
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
    let ort = ort_for(&s, ort_lib)?;
    let out_dir = plan.out_dir;
    let _qos = hold_qos(plan.run)?;
    let opts = sweep::SweepOptions {
        out_dir: out_dir.clone(),
        progress: !plan.run.quiet,
        cpu_dma_latency_us: plan.run.cpu_dma_latency,
        realtime: plan.run.realtime.map(|r| r.name().to_string()),
        resume: plan.resume,
        shard: shard.clone(),
        overrides: plan.run.overrides(),
    };
    let mut runtime_note = match &ort {
        Some(o) => format!("ONNX Runtime {} ({})", o.version, o.source),
        None if s.has_onnx() => "ONNX Runtime not needed".to_string(),
        None => "synthetic models only".to_string(),
    };
    if s.axes.runtime != [scenario::Runtime::Ort] {
        let names: Vec<&str> = s.axes.runtime.iter().map(|r| r.name()).collect();
        runtime_note = format!("runtimes {}, {runtime_note}", names.join(", "));
    }
    let most = |f: fn(&scenario::limits::Footprint) -> usize| {
        s.points
            .iter()
            .map(|p| f(&scenario::limits::footprint(p)))
            .max()
            .unwrap_or(0)
    };
    eprintln!(
        "bench: {} point(s) of scenario `{}`{}, each starting up to {} worker process(es) and {} \
         compute thread(s), {runtime_note}, results in {}",
        s.points.len(),
        s.name,
        shard.as_ref().map_or_else(String::new, |sh| format!(
            " (shard {} of {} points)",
            sh.shard(),
            sh.sweep_points
        )),
        most(|f| f.processes),
        most(|f| f.threads),
        out_dir.display()
    );
    // How long the stop rule makes it take: a slow model's `--duration 2s` runs on for its
    // minimum, and the user should know before the wait.
    eprintln!(
        "bench: warm-up and measurement take {} (worker starts aside; see `--dry-run`)",
        scenario::budget::sweep_time(&s).describe()
    );
    let (outcome, rows) = current_thread()?.block_on(sweep::sweep(&s, ort.as_ref(), &opts))?;
    println!("{}", report::console::summary(&rows));
    println!("results: {}", out_dir.join("results.csv").display());
    // The report is a view of the files just written: failing to draw it loses nothing.
    match report::render(&out_dir) {
        Ok(paths) => println!("report: {}", paths[0].display()),
        Err(e) => eprintln!("warning: no report: {e:#}; retry with `bench report DIR`"),
    }
    if let Err(e) = compare::write_run_benchmark_json(&out_dir) {
        eprintln!("warning: no benchmark JSON: {e:#}; retry with `bench report DIR`");
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

/// `bench capacity`.
pub(crate) fn capacity(args: CapacityArgs, ort_lib: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut s = scenario::load(args.scenario.path())?;
    apply_run_flags(&mut s, &args.run);
    let slo = if args.slo.is_empty() {
        s.slo.clone()
    } else {
        args.slo
            .iter()
            .map(|t| {
                scenario::slo::parse(t).map_err(|e| {
                    anyhow::anyhow!("--slo {t:?}: {e}; write objectives like --slo p99_ms=50")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let opts = capacity::CapacityOptions {
        slo,
        search: capacity::SearchOptions {
            min_rate: args.min_rate,
            max_rate: args.max_rate,
            precision_pct: args.precision,
            max_probes: args.max_probes,
        },
        start_rate: args.start_rate,
        out_dir: args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("reports").join(format!("{}-capacity", s.name))),
        progress: !args.run.quiet,
    };
    capacity::check(&s, &opts)?;
    s.check_limits(args.force.force)?;
    outdir::claim(
        &opts.out_dir,
        outdir::Writer::Capacity,
        args.force.force,
        &out_name(&opts.out_dir, args.out.is_some()),
        None,
    )?;
    let ort = ort_for(&s, ort_lib)?;
    let _qos = hold_qos(&args.run)?;
    eprintln!(
        "bench: capacity of {} configuration(s) of scenario `{}`, probes in {}",
        capacity::configs(&s).len(),
        s.name,
        opts.out_dir.join(capacity::CSV_FILE).display()
    );
    let c = current_thread()?.block_on(capacity::run(&s, ort.as_ref(), &opts))?;
    print!("{}", capacity::render(&c, &opts.slo));
    println!(
        "probes: {}",
        opts.out_dir.join(capacity::CSV_FILE).display()
    );
    Ok(match (c.interrupted, c.best) {
        (Some(sig), _) => {
            eprintln!("interrupted: the probes so far are in capacity.csv");
            ExitCode::Signal(sig)
        }
        (None, Some(_)) => ExitCode::Ok,
        (None, None) => ExitCode::Failures,
    })
}

/// `bench validate`.
pub(crate) fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let s = scenario::load(args.scenario.path())?;
    s.check_limits(args.force)?;
    note_random_scalars(&s);
    print!("{}", scenario::describe(&s));
    warn_of_the_stop_rule(&s);
    Ok(ExitCode::Ok)
}

/// Says on stderr which scalar inputs are drawn at random (likely parameters to set).
fn note_random_scalars(s: &Scenario) {
    if let Some(n) = scenario::random_scalars_notice(&s.models) {
        for line in n.lines() {
            eprintln!("note: {line}");
        }
    }
}

/// Warns on stderr of a stop rule that cannot reach its minimum (`validate`, `--dry-run`).
fn warn_of_the_stop_rule(s: &Scenario) {
    for w in scenario::budget::warnings(s) {
        eprintln!("warning: {w}");
    }
}

/// `bench parity`: every runtime of the scenario against PyTorch.
pub(crate) fn parity(args: ParityArgs, ort_lib: Option<&Path>) -> anyhow::Result<ExitCode> {
    let s = scenario::load(args.scenario.path())?;
    let ort = ortlib::locate(ort_lib)?;
    let rows = current_thread()?.block_on(parity::run(&s, Some(&ort)))?;
    println!("{}", parity::render(&rows));
    Ok(if !rows.iter().any(parity::ParityRow::mismatch) {
        ExitCode::Ok
    } else {
        eprintln!("parity: some outputs differ from PyTorch beyond the [parity] tolerances");
        ExitCode::Failures
    })
}

/// `bench inspect`.
pub(crate) fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    for (i, m) in args.models.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", crate::model::onnx::describe(m)?);
    }
    Ok(ExitCode::Ok)
}

/// `bench report`: exit 1 when there are objectives and no point meets them all.
pub(crate) fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let asked = report::choose::Objectives {
        slo: args.slo,
        max_rss_mib: args.max_rss_mib,
    };
    refuse_broken_results(&args.dir)?;
    let r = report::render_with(&args.dir, &asked)?;
    // Beside the report, the run's numbers for github-action-benchmark (not listed: the two
    // report files end the output, and scripts read them there).
    compare::write_run_benchmark_json(&args.dir)?;
    if !asked.is_empty() {
        eprintln!(
            "bench report: the report for these objectives is in {} and {}; the sweep's {} and {} \
             are left as they were",
            report::HTML_SLO_FILE,
            report::SUMMARY_SLO_FILE,
            report::HTML_FILE,
            report::SUMMARY_FILE
        );
    }
    print!("{}", r.text);
    for path in &r.paths {
        println!("{}", path.display());
    }
    Ok(if r.recommends && r.choice.chosen.is_none() {
        ExitCode::Failures
    } else {
        ExitCode::Ok
    })
}

/// What `bench report` refuses with exit 2 (docs/reference/exit-codes.md), before it writes
/// anything: an empty `results.csv`, which no sweep leaves (it writes the header first), and a
/// `run.json` that is there but unreadable, which holds the scenario's objectives that decide the
/// exit code. A missing `run.json` (a CSV from elsewhere) and a broken histogram log only leave
/// their part out, with a warning.
fn refuse_broken_results(dir: &Path) -> anyhow::Result<()> {
    use report::results::{CSV_FILE, JSON_FILE, ReadError, read_run_info};
    let csv = dir.join(CSV_FILE);
    if std::fs::read(&csv).is_ok_and(|b| b.iter().all(u8::is_ascii_whitespace)) {
        anyhow::bail!(
            "{} is empty: it is not a results.csv written by `bench sweep`; give `bench report` \
             the folder of a run that wrote its results",
            csv.display()
        );
    }
    match read_run_info(&dir.join(JSON_FILE)) {
        Ok(_) | Err(ReadError::Missing { .. }) => Ok(()),
        Err(e) => Err(anyhow::anyhow!(
            "{e}; move it aside to report without the run's metadata and objectives"
        )),
    }
}

/// `bench merge`.
pub(crate) fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    merge::merge(&args.dirs, &args.out, args.force)?;
    Ok(ExitCode::Ok)
}

/// `bench compare`: exit 1 on a regression.
pub(crate) fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let (base, cand) = match (args.results.as_slice(), &args.named.baseline) {
        ([b, c], None) => (b.clone(), c.clone()),
        ([c], Some(name)) => {
            let scenario = scenario_of(c).context("--baseline")?;
            (
                compare::baseline::find(&args.named.baselines, &scenario, name)?,
                c.clone(),
            )
        }
        ([_, _], Some(_)) => {
            anyhow::bail!("give BASELINE and CANDIDATE, or --baseline NAME and CANDIDATE, not both")
        }
        _ => anyhow::bail!("give BASELINE and CANDIDATE, or --baseline NAME and CANDIDATE"),
    };
    let verdict = compare_runs(&base, &cand, &args)?;
    if let Some(b) = &args.save_baseline {
        let dir = if cand.is_dir() {
            cand.clone()
        } else {
            cand.parent().unwrap_or(Path::new(".")).to_path_buf()
        };
        let scenario = scenario_of(&dir).context("--save-baseline")?;
        let saved = compare::baseline::save(&dir, &args.named.baselines, &scenario, b)?;
        eprintln!("bench: saved as baseline `{b}` in {}", saved.display());
    }
    Ok(verdict)
}

/// The scenario name in the `run.json` of a results folder (or of the folder of a results.csv).
fn scenario_of(results: &Path) -> anyhow::Result<String> {
    let dir = if results.is_dir() {
        results
    } else {
        results.parent().unwrap_or(Path::new("."))
    };
    let info = report::results::read_run_info(&dir.join(report::results::JSON_FILE))
        .with_context(|| format!("cannot tell the scenario of {}", results.display()))?;
    Ok(info.scenario.name)
}

/// Compares two results as `bench compare` does, with `args`' settings.
fn compare_runs(
    base_path: &Path,
    cand_path: &Path,
    args: &CompareArgs,
) -> anyhow::Result<ExitCode> {
    let metrics = compare::Metric::parse_list(&args.metrics)
        .map_err(|e| anyhow::anyhow!("--metrics: {e}"))?;
    let mut base = compare::load(base_path, "baseline", &metrics)?;
    // A named baseline's earlier runs give the spread between runs.
    if base_path.is_dir() {
        for dir in compare::baseline::earlier(base_path) {
            match report::results::Results::open(&dir) {
                Ok(r) => base.history.push(r.rows),
                Err(e) => eprintln!("warning: {e}; that earlier run is left out"),
            }
        }
    }
    let cand = compare::load(cand_path, "candidate", &metrics)?;
    for w in base.warnings.iter().chain(&cand.warnings) {
        eprintln!("warning: {w}");
    }
    let differences = match (&base.info, &cand.info) {
        (Some(b), Some(c)) => compare::differences(b, c),
        _ => Vec::new(),
    };
    if !differences.is_empty() {
        let list = differences.join("\n  ");
        anyhow::ensure!(
            args.allow_different,
            "the two runs are not comparable:\n  {list}\n\
             compare runs of one scenario with the same settings on the same kind of machine, \
             or pass --allow-different to compare them anyway"
        );
    }
    let opts = compare::Options {
        metrics,
        threshold_pct: args.threshold,
        min_change_us: args.min_change_us,
    };
    let mut c = compare::compare(&base, &cand, &opts)?;
    c.differences = differences;
    print!("{}", c.render(args.all));
    let outputs = [
        ("--markdown", &args.markdown, c.markdown()),
        (
            "--json-smaller",
            &args.json_smaller,
            c.benchmark_json(false),
        ),
        ("--json-bigger", &args.json_bigger, c.benchmark_json(true)),
    ];
    for (flag, path, text) in outputs {
        if let Some(path) = path {
            std::fs::write(path, text)
                .with_context(|| format!("{flag}: cannot write {}", path.display()))?;
        }
    }
    Ok(if c.has_regression() {
        ExitCode::Failures
    } else {
        ExitCode::Ok
    })
}

/// `bench calibrate`: the floor, the generator's ceiling, or transfer throughput.
pub(crate) fn calibrate(args: CalibrateArgs, ort_lib: Option<&Path>) -> anyhow::Result<ExitCode> {
    use crate::pool::transfer::throughput;
    anyhow::ensure!(args.iterations > 0, "--iterations must be at least 1");
    if args.transfer {
        let rows = throughput::measure(&throughput::default_sizes(), throughput::DEFAULT_REPS)?;
        print!("{}", throughput::render(&rows));
        return write_csv(args.csv.as_deref(), &rows);
    }
    if args.generator {
        let rows = calibrate::ceiling(&[1, 8, 64], std::time::Duration::from_secs(3))?;
        print!("{}", calibrate::render_ceiling(&rows));
        return write_csv(args.csv.as_deref(), &rows);
    }
    let ort = ortlib::locate(ort_lib)?;
    let (model, _temp) = calibrate::model_file(args.model.as_deref())?;
    let rows = calibrate::calibrate(&ort, &model, args.iterations)?;
    print!("{}", calibrate::render(&rows));
    write_csv(args.csv.as_deref(), &rows)
}

/// `--csv`: the rows as CSV, when asked for.
fn write_csv<T: serde::Serialize>(path: Option<&Path>, rows: &[T]) -> anyhow::Result<ExitCode> {
    if let Some(path) = path {
        let mut w = ::csv::Writer::from_path(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        for r in rows {
            w.serialize(r)?;
        }
        w.flush()?;
    }
    Ok(ExitCode::Ok)
}

/// `bench completions SHELL`.
pub(crate) fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    clap_complete::generate(
        shell,
        &mut crate::commands::cli::Cli::command(),
        "bench",
        &mut std::io::stdout(),
    );
    Ok(ExitCode::Ok)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_run_is_named_after_its_models() {
        let names =
            |n: &[&str]| super::run_name(&n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(names(&["yolo"]), "yolo");
        assert_eq!(names(&["a", "b", "c"]), "a+b+c");
        assert_eq!(names(&["a", "b", "c", "d", "e"]), "a+b+3-more");
    }
}
