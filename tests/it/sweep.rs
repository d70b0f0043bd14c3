//! End to end: the real `bench` binary sweeps the bundled models with 1 and 2 workers, and the CSV
//! it writes is checked for schema and sanity.

use crate::common;

use std::path::Path;

use assert_cmd::Command;

fn bench() -> Command {
    Command::cargo_bin("bench").expect("the bench binary is built")
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut r = csv::Reader::from_path(path).expect("results.csv exists");
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r.records().map(|r| r.unwrap()).collect();
    (header, rows)
}

#[test]
fn sweep_writes_sane_results_for_one_and_two_workers() {
    let out = tempfile::tempdir().unwrap();
    let run = common::bench(&[
        "sweep",
        "--quiet",
        "--scenario",
        "tests/scenarios/small.toml",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let results = common::read_rows(&out.path().join("results.csv"));
    common::assert_ok_timing_aside(run.code, &results, &run.stderr);
    let stdout = run.stdout;
    assert!(
        stdout.contains("w1-t1-pipe-cpu-c2") && stdout.contains("w2-t1-pipe-cpu-c2"),
        "{stdout}"
    );

    let (header, rows) = read_csv(&out.path().join("results.csv"));
    assert_eq!(header, bench::report::csv::header());
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    let num = |r: &csv::StringRecord, name: &str| -> f64 {
        r[col(name)]
            .parse()
            .unwrap_or_else(|_| panic!("{name} = {}", &r[col(name)]))
    };

    // 2 points × (5 models + all).
    assert_eq!(rows.len(), 12);
    let models: Vec<&str> = rows.iter().map(|r| &r[col("model")]).collect();
    assert_eq!(
        &models[..6],
        [
            "linear",
            "mlp",
            "resnet_small",
            "encoder_small",
            "mixed_inputs",
            "all"
        ]
    );
    for r in &rows {
        let what = format!("{} {}", &r[col("point_id")], &r[col("model")]);
        assert_eq!(num(r, "errors"), 0.0, "{what}");
        assert!(num(r, "requests") > 0.0, "{what}");
        assert!(num(r, "throughput_rps") > 0.0, "{what}");
        let lat: Vec<f64> = ["p50", "p90", "p95", "p99", "p999", "max"]
            .iter()
            .map(|p| num(r, &format!("latency_{p}_us")))
            .collect();
        assert!(lat[0] > 0.0, "{what}");
        assert!(
            lat.windows(2).all(|w| w[0] <= w[1]),
            "{what}: percentiles out of order {lat:?}"
        );
        assert!(
            num(r, "compute_p50_us") <= lat[0],
            "{what}: compute p50 above latency p50"
        );
        assert!(
            num(r, "compute_p99_us") <= lat[3],
            "{what}: compute p99 above latency p99"
        );
        assert!(num(r, "compute_p50_us") > 0.0, "{what}");
        assert!(num(r, "load_ms") > 0.0, "{what}");
        assert!(num(r, "rss_mib") > 1.0, "{what}");
        assert_eq!(&r[col("input_staging")], "per_request");
        // The point's CPU cost: every process did work for every request.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        for c in [
            "parent_cpu_us_per_req",
            "worker_cpu_us_per_req",
            "cores_used",
        ] {
            let v = num(r, c);
            assert!(v.is_finite() && v > 0.0, "{what}: {c} = {v}");
        }
        assert!(num(r, "cores_used") <= cores + 0.5, "{what}");
    }
    let all: Vec<_> = rows.iter().filter(|r| &r[col("model")] == "all").collect();
    assert_eq!(num(all[0], "requests"), 150.0, "the request limit is exact");
    assert_eq!(num(all[0], "workers"), 1.0);
    assert_eq!(num(all[1], "workers"), 2.0);
    assert!(
        num(all[1], "rss_mib") > num(all[0], "rss_mib"),
        "two workers hold more memory than one"
    );
    // The per-model rows add up to the `all` row.
    let sum: f64 = rows[..5].iter().map(|r| num(r, "requests")).sum();
    assert_eq!(sum, num(all[0], "requests"));

    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(meta["points_done"], 2);
    assert_eq!(meta["interrupted"], false);
    assert_eq!(meta["ort_version"], "1.31.1");
    assert_eq!(meta["scenario"]["sha256"].as_str().unwrap().len(), 64);
    assert!(meta["host"]["logical_cores"].as_u64().unwrap() >= 1);
    assert!(meta["rustc"].as_str().unwrap().starts_with("rustc "));
    let workers = meta["points"][1]["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "the second point has two workers");
    for w in workers {
        assert_eq!(
            w["load_ms"].as_object().unwrap().len(),
            5,
            "a load time per model: {w}"
        );
        assert!(w["rss_ready_mib"].as_f64().unwrap() > 1.0);
        assert!(w["requests_served"].as_u64().unwrap() > 0);
    }
}

/// The CPU cost columns measure what the processes did: a synthetic model that spins for its
/// service time costs its worker at least about that much CPU time per request, one that sleeps
/// far less, and `cores_used` is the same CPU time over the wall time.
#[test]
fn cpu_cost_per_request_sees_a_spinning_worker() {
    let dir = tempfile::tempdir().unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mut worker_us = Vec::new();
    for wait in ["spin", "sleep"] {
        let out = dir.path().join(wait);
        std::fs::create_dir_all(&out).unwrap();
        let scenario = format!(
            "[[model]]\nname = \"m\"\nsynthetic = {{ mean = \"2ms\", wait = \"{wait}\" }}\n\
             [workload]\nwarmup_requests = 10\nrequests = 150\n[load]\nconcurrency = 1\n"
        );
        let run = common::sweep_in(&out, &scenario, &[]);
        run.assert_ok_timing_aside();
        for model in ["m", "all"] {
            let num = |k: &str| run.num(model, k);
            let (parent, worker, used) = (
                num("parent_cpu_us_per_req"),
                num("worker_cpu_us_per_req"),
                num("cores_used"),
            );
            let what =
                format!("{wait} {model}: parent {parent} µs, worker {worker} µs, {used} cores");
            assert!(parent > 0.0 && worker > 0.0 && used > 0.0, "{what}");
            // The parent sleeps while its one request is served: less than the service time.
            assert!(parent < 2_000.0, "{what}");
            assert!(used <= cores + 0.5, "{what}");
            // One trial, a fixed rule: the cores are the CPU time per request at the throughput.
            let from_rate = (parent + worker) * num("throughput_rps") / 1e6;
            assert!(
                (used - from_rate).abs() <= 0.02 * used + 0.002,
                "{what}, {from_rate}"
            );
        }
        worker_us.push(run.num("all", "worker_cpu_us_per_req"));
    }
    let (spin, sleep) = (worker_us[0], worker_us[1]);
    // Spinning occupies the CPU for the 2 ms (less only if the machine preempts the worker).
    assert!(spin >= 1_000.0, "spin: {spin} µs per request");
    assert!(
        sleep < 1_000.0 && sleep < spin / 2.0,
        "sleep: {sleep} µs, spin {spin} µs"
    );
}

/// Writes a scenario into `dir`; `{models}` in `body` stands for the absolute models/onnx folder.
fn scenario_file(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let models = std::fs::canonicalize("models/onnx").unwrap();
    let path = dir.join(name);
    std::fs::write(
        &path,
        body.replace("{models}", &models.display().to_string()),
    )
    .unwrap();
    path
}

#[test]
fn dry_run_and_validate_list_points_without_running() {
    for args in [
        vec![
            "sweep",
            "--dry-run",
            "--scenario",
            "scenarios/ensemble.toml",
        ],
        vec!["validate", "--scenario", "scenarios/ensemble.toml"],
    ] {
        let out = bench()
            .args(&args)
            .env("ORT_DYLIB_PATH", "/nonexistent")
            .assert()
            .success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(text.contains("8 point(s)"), "{text}");
        assert!(text.contains("w2-t2-pipe-cpu-c4"), "{text}");
        assert!(text.contains("input_ids: int64 [1, 32]"), "{text}");
    }
}

/// Every bundled scenario validates; in a build without the tract runtime, one that sweeps tract
/// fails with the message that says how to rebuild (`scripts/test.sh` builds the tests with it).
#[test]
fn every_bundled_scenario_validates() {
    for entry in std::fs::read_dir("scenarios").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let sweeps_tract = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .any(|l| l.starts_with("runtime") && l.contains("\"tract\""));
        if !cfg!(feature = "tract") && sweeps_tract {
            bench()
                .arg("validate")
                .arg("--scenario")
                .arg(&path)
                .assert()
                .code(2)
                .stderr(predicates::str::contains(
                    "this build of bench has no tract runtime",
                ));
            continue;
        }
        let out = bench()
            .arg("validate")
            .arg("--scenario")
            .arg(&path)
            .assert()
            .success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(
            text.contains("point(s); the largest starts"),
            "{}: {text}",
            path.display()
        );
    }
}

#[test]
fn inspect_prints_names_types_and_dynamic_dims() {
    let out = bench()
        .args([
            "inspect",
            "models/onnx/encoder_small.onnx",
            "models/onnx/mixed_inputs.onnx",
        ])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = squeeze(&text);
    for want in [
        "input_ids int64 [batch, seq]",
        "attention_mask bool [batch, seq]",
        "logits float32 [batch, 2]",
        "x float16 [batch, 4]",
        "scale float32 []",
        "flag bool [batch]",
    ] {
        assert!(text.contains(want), "missing `{want}` in {text}");
    }
}

/// Regression: the cause of an error was printed twice, e.g. "cannot read x.onnx: No such file or
/// directory (os error 2): No such file or directory (os error 2)".
#[test]
fn errors_say_their_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"not onnx").unwrap();
    let missing = dir.path().join("missing.onnx");
    for (file, cause) in [
        (&missing, "No such file or directory"),
        (&garbage, "failed to decode Protobuf message"),
    ] {
        let out = common::bench(&["inspect", file.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert_eq!(out.stderr.matches(cause).count(), 1, "{}", out.stderr);
        assert_eq!(out.stderr.matches("error:").count(), 1, "{}", out.stderr);
    }
}

#[test]
fn missing_or_wrong_onnx_runtime_exits_2_with_a_fix() {
    let out = bench()
        .args([
            "sweep",
            "--scenario",
            "tests/scenarios/small.toml",
            "--ort-lib",
            "/nonexistent/libonnxruntime.so.1.31.1",
        ])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("does not exist") && err.contains("fix:"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so.1.31.1");
    std::fs::write(&fake, "not a library").unwrap();
    let out = bench()
        .args(["sweep", "--scenario", "tests/scenarios/small.toml"])
        .env("ORT_DYLIB_PATH", &fake)
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("could not be loaded") && err.contains("ORT_DYLIB_PATH"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn failed_requests_are_counted_reported_and_exit_1() {
    // Token ids beyond the vocabulary pass validation (the range is not in the ONNX signature) but
    // ONNX Runtime rejects them: every request fails with a runtime error, and the sweep goes on.
    let out = tempfile::tempdir().unwrap();
    let scenario = scenario_file(
        out.path(),
        "bad_ids.toml",
        "[[model]]\nname = \"encoder\"\npath = \"{models}/encoder_small.onnx\"\ndims = { batch = 1, seq = 8 }\n\
         inputs.input_ids.generator = { kind = \"int\", low = 5000, high = 6000 }\n\
         inputs.attention_mask.generator = { kind = \"const\", value = true }\n\
         [[model]]\nname = \"linear\"\npath = \"{models}/linear.onnx\"\ndims = { batch = 1 }\n\
         [workload]\nwarmup_requests = 0\nrequests = 200\n",
    );
    let assert = bench()
        .args(["sweep", "--quiet", "--scenario"])
        .arg(&scenario)
        .arg("--out")
        .arg(out.path())
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(err.contains("runtime_error error(s), first:"), "{err}");
    let (header, rows) = read_csv(&out.path().join("results.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let get = |model: &str, c: &str| -> u64 {
        rows.iter().find(|r| &r[col("model")] == model).unwrap()[col(c)]
            .parse()
            .unwrap()
    };
    assert!(get("encoder", "errors") > 0);
    assert_eq!(get("encoder", "requests"), 0);
    assert!(get("linear", "requests") > 0, "the other model still ran");
    assert_eq!(get("linear", "errors"), 0);
    // Every request sent is accounted for; a session's first run is counted apart from the steady
    // state (warm-up is off here, so linear's first run falls in the measurement).
    assert_eq!(get("linear", "first_runs"), 1);
    assert_eq!(
        get("all", "requests") + get("all", "errors") + get("all", "first_runs"),
        200
    );
    let all = rows.iter().find(|r| &r[col("model")] == "all").unwrap();
    assert_eq!(&all[col("valid")], "false", "errors make the point invalid");
    assert!(
        all[col("reason")].contains("failed request"),
        "{:?}",
        &all[col("reason")]
    );
}

#[test]
fn an_onnx_runtime_of_the_wrong_version_exits_2_with_a_fix() {
    // A stand-in library that exports OrtGetApiBase and says it is ONNX Runtime 1.20.0.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("fake_ort.c");
    std::fs::write(
        &src,
        "typedef struct { const void *(*GetApi)(unsigned); const char *(*GetVersionString)(void); } OrtApiBase;\n\
         static const char *version(void) { return \"1.20.0\"; }\n\
         static const void *api(unsigned v) { (void)v; return 0; }\n\
         static OrtApiBase base = { api, version };\n\
         const OrtApiBase *OrtGetApiBase(void) { return &base; }\n",
    )
    .unwrap();
    let lib = dir.path().join("libonnxruntime.so.1.20.0");
    let cc = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status();
    let Ok(status) = cc else {
        panic!("a C compiler (cc) is needed for this test");
    };
    assert!(status.success(), "cc failed");
    let out = bench()
        .args([
            "sweep",
            "--scenario",
            "tests/scenarios/small.toml",
            "--ort-lib",
        ])
        .arg(&lib)
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("is ONNX Runtime 1.20.0, but bench needs 1.31.x"),
        "{err}"
    );
    assert!(err.contains("fix:") && !err.contains("panicked"), "{err}");
}

/// Trials run in rounds by default: every point's trial 1, then every point's trial 2, each on a
/// fresh pool, so drift hits all points alike; `interleave = false` runs a point's trials back to
/// back. A `cooldown` pauses before each trial after the first. The histogram logs carry when each
/// trial began, which shows the order.
#[test]
fn trials_are_interleaved_across_points_unless_asked_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let cooldown = std::time::Duration::from_millis(150);
    for (interleave, expect_interleaved) in [("", true), ("interleave = false\n", false)] {
        let scenario = format!(
            "name = \"rounds\"\n[[model]]\nname = \"m\"\nsynthetic = {{ mean = \"200us\", wait = \"sleep\" }}\n\
             [workload]\nwarmup_requests = 5\nrequests = 30\nmin_requests = 1\ntrials = 3\n\
             cooldown = \"150ms\"\n{interleave}\
             [load]\nconcurrency = [1, 2]\n"
        );
        let out = dir.path().join(format!("r{expect_interleaved}"));
        std::fs::create_dir_all(&out).unwrap();
        let run = common::sweep_in(&out, &scenario, &[]);
        run.assert_ok_timing_aside();
        // When each trial of each point began.
        let starts = |id: &str| -> Vec<std::time::SystemTime> {
            let log = bench::report::hlog::read_log(&out.join(format!("hlog/{id}.hlog"))).unwrap();
            let t0 = log.start_time.unwrap();
            let mut v: Vec<_> = log
                .entries
                .iter()
                .filter(|e| e.tag == "all.latency")
                .map(|e| t0 + e.start)
                .collect();
            v.dedup();
            v
        };
        let (a, b) = (starts("w1-t1-pipe-cpu-c1"), starts("w1-t1-pipe-cpu-c2"));
        assert_eq!((a.len(), b.len()), (3, 3));
        let rows = common::read_rows(&out.join("results.csv"));
        assert!(rows.iter().all(|r| r["trials"] == "3"), "{rows:?}");
        if expect_interleaved {
            for k in 0..3 {
                assert!(a[k] < b[k], "trial {k}: {a:?} {b:?}");
                if k + 1 < 3 {
                    assert!(b[k] < a[k + 1], "round {k} ends before round {}", k + 1);
                }
            }
            // A cooldown before each trial after the first round's.
            assert!(
                a[1].duration_since(b[0]).unwrap() >= cooldown,
                "{a:?} {b:?}"
            );
        } else {
            assert!(a[2] < b[0], "c1's trials all come first: {a:?} {b:?}");
            assert!(a[1].duration_since(a[0]).unwrap() >= cooldown, "{a:?}");
        }
    }
}

/// Regression: `--out` on a used folder kept the `hlog/` files of another scenario's points, which
/// `bench report`, `merge` and `compare` then read as this run's. A used folder is refused unless
/// resumed or forced; `--force` clears only what bench writes there.
#[test]
fn a_used_out_folder_is_refused_unless_resumed_or_forced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let model = "[[model]]\nname = \"m\"\nsynthetic = { mean = \"100us\", wait = \"sleep\" }\n\
                 [workload]\nwarmup_requests = 0\nrequests = 20\nmin_requests = 1\n";
    let first = format!("{model}[load]\nconcurrency = [1, 2]\n");
    let second = format!("{model}[load]\nconcurrency = 3\n");
    let sweep = |body: &str, extra: &[&str]| {
        let file = dir.path().join("s.toml");
        std::fs::write(&file, body).unwrap();
        let mut args = vec!["sweep", "--quiet", "--scenario", file.to_str().unwrap()];
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        common::bench(&args)
    };
    let logs = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(out.join("hlog"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let results = || common::read_rows(&out.join("results.csv"));
    let run = sweep(&first, &[]);
    common::assert_ok_timing_aside(run.code, &results(), &run.stderr);
    assert_eq!(logs(), ["w1-t1-pipe-cpu-c1.hlog", "w1-t1-pipe-cpu-c2.hlog"]);
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    // Another scenario into the same folder: refused, nothing touched.
    let refused = sweep(&second, &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("holds the results of an earlier run (results.csv, run.json, hlog/)"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--resume") && refused.stderr.contains("--force"));
    assert_eq!(logs().len(), 2);
    // Forced: only the new scenario's point is left, and the user's file.
    let forced = sweep(&second, &["--force"]);
    common::assert_ok_timing_aside(forced.code, &results(), &forced.stderr);
    assert_eq!(logs(), ["w1-t1-pipe-cpu-c3.hlog"]);
    let ids = common::points_written(&out);
    assert_eq!(ids.into_iter().collect::<Vec<_>>(), ["w1-t1-pipe-cpu-c3"]);
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    // Resuming the same scenario is what a used folder is for.
    let resumed = common::bench(&[
        "sweep",
        "--quiet",
        "--scenario",
        dir.path().join("s.toml").to_str().unwrap(),
        "--resume",
        out.to_str().unwrap(),
    ]);
    common::assert_ok_timing_aside(resumed.code, &results(), &resumed.stderr);
    // bench capacity: its folder holds capacity.csv.
    let cap_out = dir.path().join("cap");
    std::fs::create_dir_all(&cap_out).unwrap();
    // A measured configuration: a header-only file holds no result, and claims nothing.
    std::fs::write(
        cap_out.join("capacity.csv"),
        "point_id,capacity_rps\nw1-t1-pipe-cpu,100\n",
    )
    .unwrap();
    let cap = common::bench(&[
        "capacity",
        "--scenario",
        dir.path().join("s.toml").to_str().unwrap(),
        "--slo",
        "p99_ms=50",
        "--out",
        cap_out.to_str().unwrap(),
    ]);
    assert_eq!(cap.code, 2, "{}", cap.stderr);
    assert!(
        cap.stderr
            .contains("holds the results of an earlier run (capacity.csv)"),
        "{}",
        cap.stderr
    );
}

/// Regression: `workers = 10000` passed `bench validate`, then spawned workers for four minutes
/// before failing. Validation, `--dry-run` and the sweep say what the largest point starts and
/// refuse it up front, naming the key; `--force` lifts the limit.
#[test]
fn a_point_past_the_process_limit_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "[[model]]\nname = \"m\"\nsynthetic = { mean = \"1ms\" }\n[sweep]\nworkers = [1, 10000]\n",
    )
    .unwrap();
    let s = file.to_str().unwrap();
    let out = dir.path().join("out");
    for args in [
        vec!["validate", "--scenario", s],
        vec!["sweep", "--dry-run", "--scenario", s],
        vec!["sweep", "--scenario", s, "--out", out.to_str().unwrap()],
    ] {
        let started = std::time::Instant::now();
        let run = common::bench(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(
                "s.toml:5: `sweep.workers`: point w10000-t1-pipe-cpu-c1 would start 10000 worker \
                 processes, more than the limit of 256"
            ),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("pass --force"), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
    assert!(!out.exists(), "nothing was started or written");
    let forced = common::bench(&["validate", "--scenario", s, "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(
        forced
            .stdout
            .contains("the largest starts 10000 worker process(es) with 10000 compute thread(s)"),
        "{}",
        forced.stdout
    );
    assert!(
        forced
            .stdout
            .contains("starts 10000 process(es), 10000 thread(s)"),
        "{}",
        forced.stdout
    );
}

/// The tests that measure time: they take `common::exclusive()`, and `scripts/test.sh` runs them
/// by themselves after the others (`-- ::alone::`).
mod alone {
    use super::*;

    #[test]
    fn sigint_keeps_finished_points_reaps_workers_and_exits_130() {
        // Exclusive: up to 3 workers × 2 intra-op threads on the 2-core test machines, the heaviest test
        // of this module; it must not run beside another that loads the CPU.
        let _heavy = common::exclusive();
        let out = tempfile::tempdir().unwrap();
        let scenario = scenario_file(
            out.path(),
            "long.toml",
            "[[model]]\nname = \"linear\"\npath = \"{models}/linear.onnx\"\ndims = { batch = 1 }\n\
         [workload]\nwarmup_requests = 0\nduration = \"400ms\"\n[sweep]\nworkers = [1, 2, 3]\n\
         intra_threads = [1, 2]\n",
        );
        // SIGINT and SIGTERM have their default actions in the child whatever cargo inherited.
        let mut child = common::spawn_sweep(&scenario, out.path());
        let pid = child.id();
        // Wait until a point is written, then until workers of a later point run: children not listed
        // before the first point was written (the rows are read after the children; each worker of
        // the first point lives for the whole point, listed every 10 ms, so none is missed).
        let (mut seen, mut first) = (Vec::new(), Vec::new());
        let written = common::wait_for(|| {
            let now = common::children(pid);
            seen.extend(&now);
            if !common::points_written(out.path()).is_empty() {
                return Some(());
            }
            first.extend(now);
            None
        });
        let later = common::wait_for(|| {
            let now = common::children(pid);
            seen.extend(&now);
            Some(()).filter(|_| now.iter().any(|w| !first.contains(w)))
        });
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
        let status = child.wait().unwrap();
        assert!(written.is_some(), "a point was written");
        assert!(later.is_some(), "workers of a later point were running");
        assert_eq!(status.code(), Some(130), "exit code after SIGINT");
        for w in seen {
            assert!(
                common::is_gone(w),
                "worker {w} outlived the interrupted sweep"
            );
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join("run.json")).unwrap()).unwrap();
        assert_eq!(meta["interrupted"], true);
        let done = meta["points_done"].as_u64().unwrap();
        assert!(
            (1..6).contains(&done),
            "some but not all points finished: {done}"
        );
        let (_, rows) = read_csv(&out.path().join("results.csv"));
        assert_eq!(
            rows.len() as u64,
            done * 2,
            "finished points stay, each with its model row and `all`"
        );
    }
}
