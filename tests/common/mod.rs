//! Helpers shared by the end-to-end tests: run the real `bench` binary on a scenario written to a
//! temporary folder and read back its CSV rows by column name.

#![allow(dead_code)] // each test binary uses its own subset

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
    let out = Command::cargo_bin("bench")
        .unwrap()
        .args(["sweep", "--quiet", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        rows: read_rows(&dir.join("results.csv")),
    }
}

/// What any `bench` command printed, and how it exited.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `bench ARGS...` and waits for it.
pub fn bench(args: &[&str]) -> Out {
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

/// Serialises the tests of one test binary that measure time or load the CPU; hold the guard for
/// the whole test: `let _heavy = common::exclusive();`.
///
/// `cargo test` runs a binary's tests on several threads at once (one per core). On the 2-core test
/// machines, a test that measures timing (queueing theory, capacity, open-loop send counts and
/// rates, spin, a kill or timeout that must land inside a point) fails when another test of the
/// same binary takes the cores: a spinning generator, a closed loop at thousands of requests per
/// second, many workers. The tests of that kind hold this guard, so they run one at a time; the
/// others (short, light or untimed) still run beside them. Each test that holds it says why.
/// A test that panics poisons the lock, which says nothing about the next test: it is taken anyway.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
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
pub fn spawn_sweep(scenario: &Path, out: &Path) -> std::process::Child {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("bench"));
    cmd.args(["sweep", "--quiet", "--scenario"])
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    default_signals(&mut cmd).spawn().unwrap()
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

/// Waits until worker `pid` is serving requests, not still loading its models: each request
/// blocks the worker at least once on its channel, while loading a model blocks it a few dozen
/// times at most. A fixed sleep is not enough: on a loaded CI machine loading can outlast it, and a
/// worker killed before the point starts is replaced without losing a request. False after
/// [`EVENT_TIMEOUT`].
pub fn wait_until_serving(pid: i32) -> bool {
    wait_until_served(&[pid], 1000)
}

/// As [`wait_until_serving`], for the first of `pids` to serve (a point with fewer requests in
/// flight than workers may keep some of them idle).
pub fn wait_until_any_serving(pids: &[i32]) -> bool {
    wait_until_served(pids, 1000)
}

/// Waits until one of `pids` has blocked `switches` times (voluntary context switches). 1000 is
/// past any model load ([`wait_until_serving`]); a synthetic model loads without blocking and a
/// worker blocks about 3 times before its first request, so for synthetic models 100 already means
/// serving, and comes sooner at low request rates (an open loop of 200 requests/s on 3 workers
/// blocks each about 170 times a second). False after [`EVENT_TIMEOUT`].
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
    // The pool spawns workers from the current executable unless told otherwise.
    // SAFETY: every test that starts a pool in-process sets the same value, and no test reads it.
    unsafe { std::env::set_var("BENCH_WORKER_EXE", assert_cmd::cargo::cargo_bin("bench")) };
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
