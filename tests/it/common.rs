//! Helpers shared by the end-to-end tests: run the real `bench` binary on a scenario written to a
//! temporary folder and read back its CSV rows by column name; take turns between tests that
//! measure time and tests that load the machine ([`exclusive`], [`shared`]); and judge a run
//! whose verdict may have flipped on timing alone ([`assert_ok_timing_aside`]).

use std::collections::HashMap;
use std::path::Path;

use assert_cmd::Command;

/// One row of `results.csv`, by column name.
pub type Row = HashMap<String, String>;

/// What a `bench sweep` run left behind.
pub struct Run {
    pub code: i32,
    pub stderr: String,
    pub rows: Vec<Row>,
}

impl Run {
    /// What a finished `bench sweep` (or `run`) with its output in `dir` left behind.
    pub fn of(out: &std::process::Output, dir: &Path) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
            rows: read_rows(&dir.join("results.csv")),
        }
    }

    /// [`assert_ok_timing_aside`] on this run.
    pub fn assert_ok_timing_aside(&self) {
        assert_ok_timing_aside(self.code, &self.rows, &self.stderr);
    }

    /// The (first) row of `model` (`all` for the point's total).
    pub fn row(&self, model: &str) -> &Row {
        self.rows
            .iter()
            .find(|r| r["model"] == model)
            .unwrap_or_else(|| panic!("no row {model}"))
    }

    pub fn num(&self, model: &str, k: &str) -> f64 {
        num(self.row(model), k)
    }

    /// The `all` row of every point, in point order.
    pub fn alls(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| r["model"] == "all").collect()
    }
}

pub fn num(row: &Row, k: &str) -> f64 {
    let v = &row[k];
    v.parse().unwrap_or_else(|_| panic!("{k} = {v:?}"))
}

/// `requests + errors + first_runs + cold_starts + warmup_requests == sent` on every row: every
/// request sent is counted once (docs/reference/columns.md; rows of one trial).
pub fn assert_accounted(run: &Run) {
    for r in &run.rows {
        let parts = [
            "requests",
            "errors",
            "first_runs",
            "cold_starts",
            "warmup_requests",
        ]
        .map(|k| num(r, k))
        .iter()
        .sum::<f64>();
        assert_eq!(
            parts,
            num(r, "sent"),
            "{} {}: every request sent is accounted for",
            r["point_id"],
            r["model"]
        );
    }
}

/// Whether every reason in `reason` (a `reason` cell, `; `-separated) is one that a loaded machine
/// gives a point whose requests all succeeded with the right outputs: the generator fell behind,
/// not stable, too few requests within the duration, too many requests in flight for the rate, or
/// a latency or throughput objective missed. Failed requests, wrong outputs, an error objective,
/// workers that did not start and unsupported models are not. True for an empty cell.
pub fn timing_only(reason: &str) -> bool {
    reason.is_empty() || reason.split("; ").all(is_timing_reason)
}

/// One reason of [`timing_only`]. The texts are `bench`'s (`harness/sweep/rows.rs`, `verdict`, and
/// `harness/scenario/slo.rs`, `check`).
fn is_timing_reason(reason: &str) -> bool {
    let slo_on_time = reason
        .strip_prefix("SLO missed: ")
        .is_some_and(|miss| !miss.starts_with("error_pct "));
    reason.starts_with("the generator fell behind: ")
        || reason.starts_with("not stable within ")
        || reason.starts_with("fewer requests than the minimum: ")
        || (reason.starts_with("more than ") && reason.contains(" requests in flight"))
        || slo_on_time
}

/// Asserts that `row`'s point is valid, or invalid only for timing ([`timing_only`]).
///
/// For tests of columns, folders, flags or outputs: on a loaded machine the verdict of a point
/// flips on timing alone, which is not what they check. A test whose subject is the verdict
/// asserts `valid` itself.
pub fn assert_valid_timing_aside(row: &Row) {
    assert!(
        row["valid"] == "true" || timing_only(&row["reason"]),
        "{} {}: invalid for more than timing: {}",
        row["point_id"],
        row["model"],
        row["reason"]
    );
}

/// Asserts that a `bench sweep` or `bench run` that wrote `rows` finished as a sound run would:
/// exit 0, or exit 1 ("some points are invalid") where every invalid point is invalid only for
/// timing ([`assert_valid_timing_aside`]). `log` is its stderr, shown on failure.
///
/// What the same tests asserted before (`code == 0`) failed on a loaded machine: a closed loop
/// judged "the generator fell behind: 5.3% of sends lagged over 1 ms" (`tests/it/shard.rs`), a
/// point of `tests/it/knobs.rs` "invalid" beside other work.
pub fn assert_ok_timing_aside(code: i32, rows: &[Row], log: &str) {
    match code {
        0 => {}
        1 => {
            assert!(
                rows.iter().any(|r| r["valid"] != "true"),
                "exit 1, but no point is invalid: {log}"
            );
            for r in rows {
                assert_valid_timing_aside(r);
            }
            let mut reasons: Vec<&str> = rows.iter().map(|r| r["reason"].as_str()).collect();
            reasons.retain(|r| !r.is_empty());
            reasons.dedup();
            eprintln!("exit 1 accepted, invalid for timing only: {reasons:?}");
        }
        _ => panic!("exit {code}: {log}"),
    }
}

/// Reads `results.csv` (no rows if it does not exist).
pub fn read_rows(path: &Path) -> Vec<Row> {
    let Ok(mut r) = csv::Reader::from_path(path) else {
        return Vec::new();
    };
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|rec| {
            header
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Writes `scenario` into `dir` and runs `bench sweep --quiet` on it with its output in `dir`.
pub fn sweep_in(dir: &Path, scenario: &str, extra: &[&str]) -> Run {
    let file = dir.join("s.toml");
    std::fs::write(&file, scenario).unwrap();
    let _turn = shared();
    let out = Command::cargo_bin("bench")
        .unwrap()
        .args(["sweep", "--quiet", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    Run::of(&out, dir)
}

/// What any `bench` command printed, and how it exited.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `bench ARGS...` and waits for it.
pub fn bench(args: &[&str]) -> Out {
    let _turn = shared();
    let out = Command::cargo_bin("bench")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// As [`sweep_in`], in a fresh temporary folder.
pub fn sweep(scenario: &str, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    sweep_in(dir.path(), scenario, extra)
}

/// The absolute path of the bundled ONNX models.
pub fn models_path() -> String {
    std::fs::canonicalize("models/onnx")
        .unwrap()
        .display()
        .to_string()
}

/// Children of process `pid`, from /proc.
pub fn children(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Whether process `pid` is gone (or a zombie about to be reaped by init).
pub fn is_gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
}

/// The turn-taking of tests that measure time and tests that load the machine.
///
/// `cargo test` runs the tests of this binary on several threads at once (one per core). On the
/// 2-core test machines, a test that measures timing (queueing theory, capacity, open-loop send
/// counts and rates, spin, a kill or timeout that must land inside a point) fails when another
/// test takes the cores: a spinning generator, a closed loop at thousands of requests per second,
/// many workers. As separate binaries, such a test shared the machine only with the tests of its
/// own file; in one binary it would share it with any test. So:
///
/// - a test of that kind holds [`exclusive`] for its whole run, and says why;
/// - every helper here that starts `bench` ([`bench`], [`sweep_in`], [`spawn_sweep`], the in-process
///   pools) holds [`shared`] while its processes run, and so does a test that starts heavy
///   processes itself (a script that sweeps, Python running models).
///
/// While a test holds `exclusive`, no other test's sweep runs: theirs wait for it, and it waits for
/// the sweeps already running to end (the lock prefers a waiting writer, so it is not starved).
/// Tests that start nothing (parsing, docs, the source checks) still run beside it. The guard marks
/// its thread, so the helpers that test calls do not wait for themselves; a thread that such a test
/// starts must not start `bench` through them.
static TURNS: std::sync::RwLock<()> = std::sync::RwLock::new(());

std::thread_local! {
    /// Whether this thread holds [`exclusive`].
    static ALONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What [`exclusive`] returns: while it lives, no other test of this binary runs a sweep.
pub struct Exclusive {
    _turn: std::sync::RwLockWriteGuard<'static, ()>,
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        ALONE.with(|a| a.set(false));
    }
}

/// Waits until no other test runs `bench`, and keeps it so until the guard is dropped; hold it
/// for the whole test: `let _heavy = common::exclusive();`. See [`TURNS`].
///
/// A test that panics poisons the lock, which says nothing about the next test: it is taken anyway.
pub fn exclusive() -> Exclusive {
    let turn = TURNS.write().unwrap_or_else(|e| e.into_inner());
    ALONE.with(|a| a.set(true));
    Exclusive { _turn: turn }
}

/// Waits while a test holds [`exclusive`], then lets this one load the machine beside the other
/// non-exclusive tests until the guard is dropped; `None` (nothing to wait for) on the thread of a
/// test that holds `exclusive` itself. See [`TURNS`].
pub fn shared() -> Option<std::sync::RwLockReadGuard<'static, ()>> {
    if ALONE.with(|a| a.get()) {
        return None;
    }
    Some(TURNS.read().unwrap_or_else(|e| e.into_inner()))
}

/// Gives the child that `cmd` starts the default actions for SIGINT and SIGTERM, unblocked.
///
/// A test that signals a child sets what the signal does there itself, instead of depending on
/// what `cargo test` inherited: a non-interactive shell starts background jobs
/// (`scripts/test.sh &`, `nohup … &`) with SIGINT *ignored*, and an ignored signal stays ignored
/// across `fork` and `exec`. `bench` replaces the disposition as its first instruction
/// (`bench::signals`), but a signal sent between `exec` and that instruction would still be lost.
/// With the default action it ends `bench` instead, which a shell reports as 128 + the signal.
pub fn default_signals(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between `fork` and `exec`, where only
    // async-signal-safe functions may be called. It calls only `signal`, `sigemptyset`,
    // `sigaddset` and `pthread_sigmask` (all async-signal-safe, signal-safety(7)) and reads
    // `errno`; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in [libc::SIGINT, libc::SIGTERM] {
                if libc::signal(sig, libc::SIG_DFL) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
                libc::sigaddset(&mut set, sig);
            }
            match libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) {
                0 => Ok(()),
                e => Err(std::io::Error::from_raw_os_error(e)),
            }
        })
    }
}

/// Starts `bench sweep --quiet` on `scenario` with its output in `out`, in the background, stdin
/// and stdout null and stderr piped, for tests that signal it or its workers while it runs. SIGINT
/// and SIGTERM have their default actions in it whatever this process inherited
/// ([`default_signals`]).
pub fn spawn_sweep(scenario: &Path, out: &Path) -> Spawned {
    let turn = shared();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("bench"));
    cmd.args(["sweep", "--quiet", "--scenario"])
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    Spawned {
        child: default_signals(&mut cmd).spawn().unwrap(),
        _turn: turn,
    }
}

/// A `bench` that [`spawn_sweep`] started: the child (`id`, `wait`, through `Deref`), and the
/// test's turn to load the machine ([`shared`]) while it runs.
pub struct Spawned {
    child: std::process::Child,
    _turn: Option<std::sync::RwLockReadGuard<'static, ()>>,
}

impl std::ops::Deref for Spawned {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.child
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.child
    }
}

impl Spawned {
    /// Waits for `bench` to exit and collects its stderr (`Child::wait_with_output`).
    pub fn wait_with_output(self) -> std::process::Output {
        self.child.wait_with_output().unwrap()
    }
}

/// Sweeps `scenario` (a point of two workers or more) into `dir` in the background, kills its
/// second worker (SIGKILL) once that worker serves requests (has blocked `serving` times:
/// [`ONNX_SERVING`] or [`SYNTHETIC_SERVING`]), and returns what the sweep left when it ended, with
/// the pids of the point's first two workers. `what` names the case in messages.
pub fn kill_a_worker(dir: &Path, scenario: &str, serving: u64, what: &str) -> (Run, Vec<i32>) {
    let file = dir.join("s.toml");
    std::fs::write(&file, scenario).unwrap();
    let child = spawn_sweep(&file, dir);
    let workers = wait_for_children(child.id(), 2);
    assert_eq!(workers.len(), 2, "{what}: two workers started");
    assert!(
        wait_until_served(&workers[1..2], serving),
        "{what}: the worker serves"
    );
    // SAFETY: signalling a worker process of our own child.
    unsafe { libc::kill(workers[1], libc::SIGKILL) };
    (Run::of(&child.wait_with_output(), dir), workers)
}

/// How long the tests wait for an event of a run (a worker, a row) before they give up: far more
/// than any of them takes on a busy machine, so reaching it means a hang, not slowness.
pub const EVENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Calls `event` every 10 ms until it returns `Some` (returned) or [`EVENT_TIMEOUT`] has passed
/// (`None`).
pub fn wait_for<T>(mut event: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    loop {
        if let Some(found) = event() {
            return Some(found);
        }
        if start.elapsed() > EVENT_TIMEOUT {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The ids of the points `results.csv` in `out` holds so far (it is rewritten whole, temp file then
/// rename, so a read never sees half a point).
pub fn points_written(out: &Path) -> std::collections::BTreeSet<String> {
    read_rows(&out.join("results.csv"))
        .into_iter()
        .map(|r| r["point_id"].clone())
        .collect()
}

/// Waits until process `pid` has `n` children and returns them (fewer after [`EVENT_TIMEOUT`]).
pub fn wait_for_children(pid: u32, n: usize) -> Vec<i32> {
    wait_for(|| Some(children(pid)).filter(|c| c.len() >= n)).unwrap_or_else(|| children(pid))
}

/// Voluntary context switches of every thread of process `pid` (0 once it is gone).
fn voluntary_switches(pid: i32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// The voluntary context switches after which a worker of ONNX models is serving requests, not
/// still loading its models ([`wait_until_served`]): each request blocks the worker at least once
/// on its channel, while loading a model blocks it a few dozen times at most. A fixed sleep is not
/// enough: on a loaded CI machine loading can outlast it, and a worker killed before the point
/// starts is replaced without losing a request.
pub const ONNX_SERVING: u64 = 1000;

/// As [`ONNX_SERVING`], for a worker of synthetic models: they load without blocking and a worker
/// blocks about 3 times before its first request, so 100 already means serving. It comes sooner:
/// an open loop of 200 requests/s on 3 workers blocks each about 170 times a second, and a
/// short point on a loaded machine may end before a worker blocks 1000 times.
pub const SYNTHETIC_SERVING: u64 = 100;

/// Waits until one of `pids` has blocked `switches` times (voluntary context switches;
/// [`ONNX_SERVING`] or [`SYNTHETIC_SERVING`]); a point with fewer requests in flight than workers
/// may keep some of them idle. False after [`EVENT_TIMEOUT`].
pub fn wait_until_served(pids: &[i32], switches: u64) -> bool {
    wait_for(|| {
        pids.iter()
            .any(|&pid| voluntary_switches(pid) >= switches)
            .then_some(())
    })
    .is_some()
}

/// Runs every sample of every model once through `pool` in `transfer` mode, then shuts the pool
/// down; returns the output bytes per (model, sample).
pub async fn every_output(
    pool: bench::pool::worker::pool::Pool,
    s: &bench::scenario::Scenario,
    transfer: bench::scenario::Transfer,
) -> Vec<Vec<Vec<u8>>> {
    use bench::pool::protocol::{Finished, Outputs};
    use bench::pool::worker::pool::{InputsRef, Reply};
    use bench::scenario::Transfer;
    let mut frame = Vec::new();
    let mut all = Vec::new();
    for (m, spec) in s.models.iter().enumerate() {
        let mut per_sample = Vec::new();
        for (k, sample) in spec.samples.iter().enumerate() {
            let worker = pool.pick(m, 0);
            let mut slot = match &pool.slots {
                Some(slots) => Some(slots.acquire().await),
                None => None,
            };
            let placed = slot.as_mut().map(|sl| sl.write_inputs(sample).unwrap());
            let inputs = match (&slot, &placed) {
                (Some(sl), Some(tensors)) => InputsRef::Shm {
                    slot: sl.index() as u32,
                    tensors,
                },
                _ if transfer == Transfer::Index => InputsRef::Index(k as u32),
                _ => InputsRef::Inline(sample),
            };
            let reply = worker
                .call((m * 1000 + k) as u64, m as u32, inputs, &mut frame)
                .await;
            let bytes: Vec<u8> = match reply {
                Reply::Done(Finished {
                    outputs: Outputs::Inline(out),
                    ..
                }) => out.iter().flat_map(|t| t.bytes.clone()).collect(),
                Reply::Done(Finished {
                    outputs: Outputs::Shm(placements),
                    ..
                }) => {
                    let sl = slot.as_ref().expect("shm outputs come in a slot");
                    placements
                        .iter()
                        .flat_map(|p| sl.read_output(p).unwrap().to_vec())
                        .collect()
                }
                other => panic!("{transfer:?} {}: {other:?}", spec.name),
            };
            assert!(!bytes.is_empty());
            if let (Some(slots), Some(sl)) = (&pool.slots, slot) {
                slots.release(sl);
            }
            per_sample.push(bytes);
        }
        all.push(per_sample);
    }
    for r in pool.shutdown().await {
        r.unwrap();
    }
    all
}

/// Outputs per (model, sample) of three transfer modes are bit-identical, and differ between
/// samples (so the comparison is not vacuous).
pub fn assert_same_outputs(
    s: &bench::scenario::Scenario,
    pipe: &[Vec<Vec<u8>>],
    shm: &[Vec<Vec<u8>>],
    index: &[Vec<Vec<u8>>],
) {
    assert_eq!(pipe.len(), s.models.len());
    for (m, spec) in s.models.iter().enumerate() {
        assert_eq!(
            pipe[m], shm[m],
            "{}: shm outputs differ from pipe",
            spec.name
        );
        assert_eq!(
            pipe[m], index[m],
            "{}: index outputs differ from pipe",
            spec.name
        );
        assert!(
            pipe[m].windows(2).any(|w| w[0] != w[1]),
            "{}: all samples gave the same output",
            spec.name
        );
    }
}

/// The bundled models, each with committed PyTorch reference data under `models/reference/`.
pub const BUNDLED_MODELS: [&str; 5] = [
    "linear",
    "mlp",
    "resnet_small",
    "encoder_small",
    "mixed_inputs",
];

/// A bundled model's ONNX file.
pub fn onnx_path(name: &str) -> std::path::PathBuf {
    Path::new("models/onnx").join(format!("{name}.onnx"))
}

/// What PyTorch computed for a bundled model (`scripts/export_models.py` wrote it): the model's
/// signature, and the reference inputs and outputs in the model's order.
pub struct Reference {
    pub name: String,
    pub info: bench::model::onnx::ModelInfo,
    pub inputs: Vec<bench::model::tensor::TensorData>,
    pub outputs: Vec<bench::model::tensor::TensorData>,
}

pub fn reference(name: &str) -> Reference {
    let info = bench::model::onnx::read_model_info(&onnx_path(name)).unwrap();
    let dir = Path::new("models/reference").join(name);
    let read = |kind: &str,
                io: &[bench::model::onnx::IoInfo]|
     -> Vec<bench::model::tensor::TensorData> {
        io.iter()
            .map(|i| {
                bench::model::tensor::read_npy(&dir.join(format!("{kind}_{}.npy", i.name))).unwrap()
            })
            .collect()
    };
    Reference {
        name: name.into(),
        inputs: read("input", &info.inputs),
        outputs: read("output", &info.outputs),
        info,
    }
}

impl Reference {
    /// Asserts that `got` has the reference's outputs, types and shapes, every element within
    /// `atol + rtol * |want|` (1e-4 and 1e-3; 1e-2 and 1e-2 for float16). Returns the largest
    /// absolute difference.
    pub fn assert_matches(&self, got: &[bench::model::tensor::TensorData]) -> f64 {
        use bench::model::tensor::{DType, decode_values};
        let name = &self.name;
        assert_eq!(got.len(), self.outputs.len(), "{name}: output count");
        let mut max_abs = 0f64;
        for ((got, want), o) in got.iter().zip(&self.outputs).zip(&self.info.outputs) {
            assert_eq!(got.shape, want.shape, "{name}.{}: shape", o.name);
            assert_eq!(got.dtype, want.dtype, "{name}.{}: dtype", o.name);
            let (atol, rtol) = if got.dtype == DType::F16 {
                (1e-2, 1e-2)
            } else {
                (1e-4, 1e-3)
            };
            let (g, w) = (
                decode_values(got.dtype, &got.bytes),
                decode_values(want.dtype, &want.bytes),
            );
            assert!(!g.is_empty(), "{name}.{}: empty output", o.name);
            for (a, b) in g.iter().zip(&w) {
                assert!(a.is_finite(), "{name}.{}: non-finite output {a}", o.name);
                let excess = (a - b).abs() - rtol * b.abs();
                assert!(
                    excess <= atol,
                    "{name}.{}: {a} differs from PyTorch's {b} by more than {atol} + {rtol} × |{b}|",
                    o.name
                );
                max_abs = max_abs.max((a - b).abs());
            }
        }
        max_abs
    }
}

/// Points the pools that tests start in-process at the `bench` binary: a pool spawns its workers
/// from the current executable (this test binary) unless `BENCH_WORKER_EXE` says otherwise.
fn worker_exe_is_bench() {
    static SET: std::sync::Once = std::sync::Once::new();
    // SAFETY: set once for the whole binary, to the same value whichever test comes first; the
    // tests read the environment only through `std::env` and `std::process::Command`, which take
    // the standard library's environment lock that `set_var` takes too.
    SET.call_once(|| unsafe {
        std::env::set_var("BENCH_WORKER_EXE", assert_cmd::cargo::cargo_bin("bench"))
    });
}

/// Starts one worker of `runtime` (one thread, replicate placement) on the models of `s`, runs
/// every sample of every model once through it in `transfer` mode, and shuts it down. Returns what
/// the worker said runs its models, and the output bytes per (model, sample).
pub async fn outputs_through(
    s: &bench::scenario::Scenario,
    runtime: bench::scenario::Runtime,
    transfer: bench::scenario::Transfer,
    channel: bench::scenario::Channel,
) -> (String, Vec<Vec<Vec<u8>>>) {
    use bench::scenario::{Point, Transfer};
    worker_exe_is_bench();
    let p = Point {
        id: "test".into(),
        transfer,
        channel,
        runtime,
        ..Point::default()
    };
    let ort =
        bench::pool::runtime::ortlib::locate(None).expect("ONNX Runtime: run scripts/setup.sh");
    let slots =
        (transfer == Transfer::Shm).then(|| bench::pool::transfer::shm::slot_pool(s, &p).unwrap());
    let layout = slots.as_ref().map(|s| s.fd.layout());
    let pool = bench::pool::worker::pool::Pool::start(
        bench::sweep::setup::setups(s, Some(&ort), &p, layout),
        slots,
    )
    .await
    .unwrap();
    let name = pool.infos()[0].runtime.clone();
    (name, every_output(pool, s, transfer).await)
}

/// Runs every sample of every model of `s` through one worker of `runtime` in each transfer mode
/// (`pipe`, `shm`, `index`) over `channel` and asserts the outputs are bit-identical; returns the
/// worker's runtime and the outputs.
pub fn assert_transfers_agree_over(
    s: &bench::scenario::Scenario,
    runtime: bench::scenario::Runtime,
    channel: bench::scenario::Channel,
) -> (String, Vec<Vec<Vec<u8>>>) {
    use bench::scenario::Transfer;
    let _turn = shared();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (name, pipe) = rt.block_on(outputs_through(s, runtime, Transfer::Pipe, channel));
    let (_, shm) = rt.block_on(outputs_through(s, runtime, Transfer::Shm, channel));
    let (_, index) = rt.block_on(outputs_through(s, runtime, Transfer::Index, channel));
    assert_same_outputs(s, &pipe, &shm, &index);
    (name, pipe)
}

/// [`assert_transfers_agree_over`] the socket channel.
pub fn assert_transfers_agree(
    s: &bench::scenario::Scenario,
    runtime: bench::scenario::Runtime,
) -> String {
    assert_transfers_agree_over(s, runtime, bench::scenario::Channel::Socket).0
}

/// The reasons [`timing_only`] lets pass are the ones timing alone gives; a fault is never one.
#[test]
fn timing_only_tells_a_loaded_machine_from_a_fault() {
    for timing in [
        "",
        "the generator fell behind: 5.3% of sends lagged over 1 ms (on a shared machine, try --realtime)",
        "not stable within 3 windows (trial 1)",
        "fewer requests than the minimum: 20 < 50",
        "more than 50 requests in flight: the workers cannot keep up with the rate",
        "SLO missed: p99_ms = 3.000 (needs p99_ms <= 1)",
        "fewer requests than the minimum: 90 < 100; the generator fell behind: 2.0% of sends lagged",
    ] {
        assert!(timing_only(timing), "{timing}");
    }
    for fault in [
        "3 failed request(s)",
        "wrong outputs: y differs",
        "SLO missed: error_pct = 5.000 (needs error_pct <= 1)",
        "workers did not start: no GPU",
        "unsupported by tract: tract does not implement operator Det",
        "the generator fell behind: 2.0% of sends lagged; 1 failed request(s)",
    ] {
        assert!(!timing_only(fault), "{fault}");
    }
}
