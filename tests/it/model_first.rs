//! Model-first commands, end to end: `bench run MODEL.onnx` sweeps a model with no scenario file
//! and leaves a `scenario.toml` that `bench sweep --scenario` repeats; `bench init MODEL.onnx`
//! prints a starter that validates and runs once its `# bind me` values are set (and already does,
//! with their guesses of 1); a bad flag exits 2 naming the flag and its fix.

use crate::common;

use std::path::{Path, PathBuf};

/// Every ONNX file in `dir`, sorted.
fn onnx_files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    v.sort();
    v
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `bench run` with `args` into `out`, then checks rows for both transfers and that the
/// `scenario.toml` it wrote repeats the same points through `bench sweep --scenario`.
fn run_and_repeat(args: &[&str], out: &Path, models: &[&str]) -> String {
    let mut all = vec!["run", "--quiet", "--out", s(out)];
    all.extend(args);
    let run = common::bench(&all);
    let rows = common::read_rows(&out.join("results.csv"));
    common::assert_ok_timing_aside(run.code, &rows, &run.stderr);
    for transfer in ["pipe", "shm"] {
        for m in models {
            let row = rows
                .iter()
                .find(|r| r["transfer"] == transfer && r["model"] == *m)
                .unwrap_or_else(|| panic!("no row for {m} with {transfer}: {rows:?}"));
            assert_eq!(row["errors"], "0", "{m} {transfer}: {row:?}");
            common::assert_valid_timing_aside(row);
        }
    }
    let scenario = out.join("scenario.toml");
    let text = std::fs::read_to_string(&scenario).expect("bench run writes OUT/scenario.toml");
    let again_dir = out.join("again");
    let again = common::bench(&[
        "sweep",
        "--quiet",
        "--scenario",
        s(&scenario),
        "--out",
        s(&again_dir),
    ]);
    let ids = |rows: &[common::Row]| -> Vec<String> {
        rows.iter().map(|r| r["point_id"].clone()).collect()
    };
    let again_rows = common::read_rows(&again_dir.join("results.csv"));
    common::assert_ok_timing_aside(again.code, &again_rows, &again.stderr);
    assert_eq!(
        ids(&again_rows),
        ids(&rows),
        "the repeat runs the same points"
    );
    text
}

#[test]
fn bench_run_sweeps_a_model_and_keeps_a_scenario_that_repeats_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = run_and_repeat(
        &[
            "models/onnx/mlp.onnx",
            "--dims",
            "batch=2",
            "--transfer",
            "pipe,shm",
            "--channel",
            "socket,spin",
            "--requests",
            "100",
        ],
        dir.path(),
        &["mlp"],
    );
    assert!(text.contains("batch = 2"), "{text}");
    assert!(text.contains("requests = 100"), "{text}");
    assert!(text.contains(r#"transfer = ["pipe", "shm"]"#), "{text}");
    assert!(text.contains(r#"channel = ["socket", "spin"]"#), "{text}");
    let rows = common::read_rows(&dir.path().join("results.csv"));
    assert!(
        rows.iter()
            .any(|r| r["point_id"].contains("-shm-spin-") && r["channel"] == "spin"),
        "{rows:?}"
    );
}

/// `--worker-concurrency` becomes the sweep axis, and its points' ids say so.
#[test]
fn bench_run_sweeps_worker_concurrency_from_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let text = run_and_repeat(
        &[
            "models/onnx/mlp.onnx",
            "--worker-concurrency",
            "1,2",
            "--transfer",
            "pipe,shm",
            "--requests",
            "100",
        ],
        dir.path(),
        &["mlp"],
    );
    assert!(text.contains("worker_concurrency = [1, 2]"), "{text}");
    let rows = common::read_rows(&dir.path().join("results.csv"));
    assert!(
        rows.iter()
            .any(|r| r["point_id"].ends_with("-k2") && r["worker_concurrency"] == "2"),
        "{rows:?}"
    );
}

#[test]
fn bench_run_binds_dotted_dims_and_unnamed_dims_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    let text = run_and_repeat(
        &[
            "tests/models/wild/paddle_dims.onnx",
            "--shape",
            "x=1x3x48x192",
            "--dims",
            "p2o.DynamicDimension.0=2",
            "--transfer",
            "pipe,shm",
            "--requests",
            "100",
        ],
        dir.path(),
        &["paddle_dims"],
    );
    assert!(text.contains(r#""p2o.DynamicDimension.0" = 2"#), "{text}");
    assert!(text.contains("shape = [1, 3, 48, 192]"), "{text}");
}

#[test]
fn bench_run_refuses_bad_flags_with_the_flag_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let paddle = "tests/models/wild/paddle_dims.onnx";
    for (args, says) in [
        (
            vec!["models/onnx/mlp.onnx", "--shape", "x=1xx"],
            vec!["--shape", "1x3x224x224"],
        ),
        (
            vec!["models/onnx/mlp.onnx", "--shape", "nope=1x2"],
            vec!["--shape nope=1x2", "no model has an input `nope`", "mlp: x"],
        ),
        (
            vec!["models/onnx/mlp.onnx", "--dims", "seq=4"],
            vec!["--dims seq=4", "mlp: batch"],
        ),
        (
            vec!["models/onnx/missing.onnx"],
            vec!["models/onnx/missing.onnx", "no such file"],
        ),
        (
            vec![paddle],
            vec![
                "--dims p2o.DynamicDimension.0=SIZE",
                "--shape x=1x3x1x1",
                "input `x`",
            ],
        ),
        (
            vec![
                paddle,
                "--dims",
                "p2o.DynamicDimension.0=2",
                "--shape",
                "x=1x3",
            ],
            vec!["--shape x=1x3", "rank 4"],
        ),
        (
            vec![
                "tests/models/wild/mixed_dims.onnx",
                "--shape",
                "x=1x3x48x100",
                "--dims",
                "p2o.DynamicDimension.1=320",
            ],
            vec![
                "--dims p2o.DynamicDimension.1=320 contradicts --shape x=1x3x48x100",
                "(dim 3 of input `x`) the size 100",
            ],
        ),
        (
            vec!["models/onnx/mlp.onnx", "--transfer", "carrier-pigeon"],
            vec!["--transfer", "pipe"],
        ),
    ] {
        let mut all = vec!["run", "--quiet", "--out", s(&out)];
        all.extend(&args);
        let r = common::bench(&all);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        for want in says {
            assert!(
                r.stderr.contains(want),
                "{args:?}: want {want:?} in {}",
                r.stderr
            );
        }
        assert!(
            !out.join("results.csv").exists(),
            "{args:?} ran anyway: {}",
            r.stderr
        );
    }
}

#[test]
fn bench_init_writes_a_starter_that_validates_for_every_bundled_and_wild_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut runnable = Vec::new();
    for model in onnx_files("models/onnx")
        .into_iter()
        .chain(onnx_files("tests/models/wild"))
    {
        let init = common::bench(&["init", s(&model)]);
        assert_eq!(init.code, 0, "{}: {}", model.display(), init.stderr);
        let file = dir
            .path()
            .join(model.file_name().unwrap())
            .with_extension("toml");
        std::fs::write(&file, &init.stdout).unwrap();
        let v = common::bench(&["validate", "--scenario", s(&file)]);
        if model.ends_with("sequence_output.onnx") || model.ends_with("zipmap.onnx") {
            // bench cannot run a model with a sequence output: init says so, validate refuses.
            assert!(
                init.stdout
                    .contains("# WARNING: output `parts` is a sequence")
                    || init
                        .stdout
                        .contains("# WARNING: output `probabilities` is a sequence"),
                "{}",
                init.stdout
            );
            assert_eq!(v.code, 2, "{}", v.stdout);
            assert!(v.stderr.contains("is a sequence"), "{}", v.stderr);
            continue;
        }
        assert_eq!(
            v.code,
            0,
            "{}:\n{}\n{}",
            model.display(),
            init.stdout,
            v.stderr
        );
        runnable.push(model);
    }
    let text = |m: &str| common::bench(&["init", m]).stdout;
    let paddle = text("tests/models/wild/paddle_dims.onnx");
    assert!(
        paddle.contains(r#""p2o.DynamicDimension.0" = 1   # bind me"#),
        "{paddle}"
    );
    assert!(
        paddle.contains("shape = [1, 3, 1, 1]   # bind me"),
        "{paddle}"
    );
    let unknown = text("tests/models/wild/unknown_rank.onnx");
    assert!(
        unknown.contains("shape = [1]   # bind me: unknown rank"),
        "{unknown}"
    );
    let mlp = text("models/onnx/mlp.onnx");
    assert!(mlp.contains("batch = 1   # bind me: a batch dim"), "{mlp}");
    assert!(
        mlp.contains("#    x  float32  [batch, 64]"),
        "the signature as bench inspect shows it: {mlp}"
    );

    // All of them in one starter, run for real.
    let mut args = vec!["init"];
    args.extend(runnable.iter().map(|p| s(p)));
    let init = common::bench(&args);
    assert_eq!(init.code, 0, "{}", init.stderr);
    let file = dir.path().join("all.toml");
    std::fs::write(&file, &init.stdout).unwrap();
    let out = dir.path().join("out");
    let run = common::bench(&[
        "sweep",
        "--quiet",
        "--scenario",
        s(&file),
        "--out",
        s(&out),
        "--requests",
        "300",
    ]);
    // 300 requests over a dozen models (a random mix): each gets some, and the point is judged on
    // them (a request count has no default minimum); on a loaded machine it may still be invalid
    // for timing (exit 1), but every model must have run without a failed request.
    let rows = common::read_rows(&out.join("results.csv"));
    common::assert_ok_timing_aside(run.code, &rows, &run.stderr);
    for model in &runnable {
        let name = model.file_stem().unwrap().to_str().unwrap();
        let row = rows
            .iter()
            .find(|r| r["model"] == name)
            .unwrap_or_else(|| panic!("no row for {name}: {}", run.stderr));
        assert_eq!(row["errors"], "0", "{name}: {row:?}");
        assert!(common::num(row, "requests") > 0.0, "{name}: {row:?}");
    }
    let all = rows.iter().find(|r| r["model"] == "all").unwrap();
    // Too few requests, or a lag on a loaded machine: nothing else.
    common::assert_valid_timing_aside(all);
}

/// `bench init --test-data` writes `test_data` instead of shapes and generators, and its scenario
/// validates and checks the outputs; `bench run --input NAME=FILE.pb` takes an ONNX tensor file
/// as an input's samples, and `--warmup-requests` goes into the scenario it keeps.
#[test]
fn test_data_and_tensor_files_feed_the_model_first_commands() {
    let data = std::fs::canonicalize("tests/models/testdata/linear").unwrap();
    let model = format!("{}/linear.onnx", common::models_path());
    let init = common::bench(&["init", &model, "--test-data", s(&data)]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    assert!(
        init.stdout
            .contains(&format!("test_data = \"{}\"", data.display())),
        "{}",
        init.stdout
    );
    assert!(!init.stdout.contains("[model.inputs."), "{}", init.stdout);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("init.toml");
    std::fs::write(&file, &init.stdout).unwrap();
    let out = tmp.path().join("init");
    let run = common::bench(&[
        "sweep",
        "--quiet",
        "--scenario",
        s(&file),
        "--requests",
        "5",
        "--out",
        s(&out),
    ]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let rows = common::read_rows(&out.join("results.csv"));
    let row = rows.iter().find(|r| r["model"] == "linear").unwrap();
    assert_eq!(row["outputs_checked"], "true", "{row:?}");
    assert_eq!(row["errors"], "0", "{row:?}");

    let input = data.join("test_data_set_0/input_0.pb");
    let out = tmp.path().join("pb");
    let text = run_and_repeat(
        &[
            &model,
            "--input",
            &format!("x={}", input.display()),
            "--dims",
            "batch=2",
            "--transfer",
            "pipe,shm",
            "--warmup-requests",
            "3",
        ],
        &out,
        &["linear"],
    );
    assert!(text.contains(r#"kind = "file""#), "{text}");
    assert!(text.contains("warmup_requests = 3"), "{text}");
    let two = common::bench(&["run", &model, &model, "--test-data", s(&data), "--dry-run"]);
    assert_eq!(two.code, 2, "{}", two.stderr);
    assert!(
        two.stderr.contains("aim it at one: --test-data MODEL=DIR"),
        "{}",
        two.stderr
    );
}

/// `bench init` on an input with named and unnamed dims proposes one full shape that binds them
/// all, and no separate `dims` entry that the shape would silently override.
#[test]
fn bench_init_binds_an_input_with_named_and_unnamed_dims_in_one_place() {
    let init = common::bench(&["init", "tests/models/wild/mixed_dims.onnx"]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    assert!(!init.stdout.contains("[model.dims]"), "{}", init.stdout);
    assert!(
        init.stdout.contains(
            "shape = [1, 3, 1, 1]   # bind me: dynamic dims 0 (`p2o.DynamicDimension.0`), \
             2 (unnamed), 3 (`p2o.DynamicDimension.1`); 1 is a guess"
        ),
        "{}",
        init.stdout
    );
}

/// `bench run` into the folder of an earlier run is refused (its scenario.toml would no longer be
/// the one its results come from), `--force` replaces the run, and a scenario.toml that `bench
/// run` did not write is never overwritten.
#[test]
fn bench_run_refuses_a_used_out_folder_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let model = format!("{}/linear.onnx", common::models_path());
    let run = |extra: &[&str]| {
        let mut all = vec![
            "run",
            "--quiet",
            model.as_str(),
            "--dims",
            "batch=1",
            "--requests",
            "20",
            "--warmup-requests",
            "0",
            "--out",
            s(&out),
        ];
        all.extend(extra);
        common::bench(&all)
    };
    let first = run(&["--concurrency", "1"]);
    assert!(first.code == 0 || first.code == 1, "{}", first.stderr);
    let again = run(&["--concurrency", "2"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stderr.contains("holds the results of an earlier run"),
        "{}",
        again.stderr
    );
    let text = std::fs::read_to_string(out.join("scenario.toml")).unwrap();
    assert!(
        !text.contains("--concurrency 2"),
        "the earlier scenario stays: {text}"
    );
    let forced = run(&["--concurrency", "2", "--force"]);
    assert!(forced.code == 0 || forced.code == 1, "{}", forced.stderr);
    let ids: Vec<String> = common::read_rows(&out.join("results.csv"))
        .into_iter()
        .map(|r| r["point_id"].clone())
        .collect();
    assert!(ids.iter().all(|id| id.ends_with("-c2")), "{ids:?}");
    // Someone's own scenario.toml is not bench run's to overwrite, even with --force.
    let mine = dir.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("scenario.toml"), "# my scenario\n").unwrap();
    let refused = common::bench(&[
        "run",
        model.as_str(),
        "--dims",
        "batch=1",
        "--out",
        s(&mine),
        "--force",
    ]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("that `bench run` did not write"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read_to_string(mine.join("scenario.toml")).unwrap(),
        "# my scenario\n"
    );
}

/// `linear.onnx` with its operator renamed to one ONNX Runtime does not have: it parses and binds,
/// and fails when the workers load it.
fn unloadable_model(dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(format!("{}/linear.onnx", common::models_path())).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"Gemm" || w == b"MatM")
        .expect("an op type to break");
    bytes[at..at + 4].copy_from_slice(b"Zzzz");
    let broken = dir.join("broken.onnx");
    std::fs::write(&broken, &bytes).unwrap();
    broken
}

/// Regressions: a `bench run` that measured nothing (its model failed to load) left a header-only
/// `results.csv` and `run.json` that refused the fixed re-run ("holds the results of an earlier
/// run ... --force"); a refused run (past the worker limit) left `OUT/scenario.toml` behind.
#[test]
fn a_run_that_measured_nothing_leaves_nothing_and_claims_no_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let broken = unloadable_model(dir.path());
    let base = |model: &Path| -> Vec<String> {
        [
            "run",
            "--quiet",
            s(model),
            "--dims",
            "batch=1",
            "--requests",
            "20",
            "--warmup-requests",
            "0",
            "--out",
            s(&out),
        ]
        .map(String::from)
        .to_vec()
    };
    let bench = |v: &[String]| common::bench(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let failed = bench(&base(&broken));
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("could not load model"),
        "{}",
        failed.stderr
    );
    assert!(
        !out.exists(),
        "the folder the failed run created is gone: {:?}",
        std::fs::read_dir(&out).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
    // The same, into a folder that was there (with someone's file): only bench's files go.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let failed = bench(&base(&broken));
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["notes.txt"]);
    // A refused run writes nothing either.
    let mut refused = base(&PathBuf::from(format!(
        "{}/linear.onnx",
        common::models_path()
    )));
    refused.extend(["--workers".into(), "300".into()]);
    let r = bench(&refused);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("more than the limit"), "{}", r.stderr);
    assert!(!out.join("scenario.toml").exists(), "{}", r.stderr);
    // An earlier failed run's files, as older versions left them, do not refuse the fixed run.
    std::fs::write(out.join("results.csv"), "point,point_id,valid\n").unwrap();
    std::fs::write(out.join("run.json"), "{}").unwrap();
    let fixed = bench(&base(&PathBuf::from(format!(
        "{}/linear.onnx",
        common::models_path()
    ))));
    let rows = common::read_rows(&out.join("results.csv"));
    common::assert_ok_timing_aside(fixed.code, &rows, &fixed.stderr);
    assert!(!rows.is_empty());
    assert!(out.join("scenario.toml").exists() && out.join("notes.txt").exists());
    // The run's numbers for github-action-benchmark, from `run` and again from `report`.
    for again in [false, true] {
        for (file, unit) in [
            ("benchmark-smaller.json", "us"),
            ("benchmark-bigger.json", "req/s"),
        ] {
            let text = std::fs::read_to_string(out.join(file)).unwrap();
            let entries: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
            assert!(
                entries
                    .iter()
                    .any(|e| e["name"].as_str().unwrap().contains("/linear/") && e["unit"] == unit),
                "{file}: {text}"
            );
            if !again {
                std::fs::remove_file(out.join(file)).unwrap();
            }
        }
        if !again {
            let r = common::bench(&["report", s(&out)]);
            assert_eq!(r.code, 0, "{}", r.stderr);
        }
    }
}

/// Regression: the fix for a missing ONNX Runtime said "run `scripts/setup.sh`" to the user of a
/// copied binary, who has no such script; it now says what to install, and the script only in a
/// checkout.
#[test]
fn a_copied_binary_is_told_what_to_install_not_to_run_a_script_it_lacks() {
    let _turn = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("bench");
    std::fs::copy(assert_cmd::cargo::cargo_bin("bench"), &copy).unwrap();
    let missing = [
        "calibrate",
        "--ort-lib",
        "/nonexistent/libonnxruntime.so.1.31.1",
    ];
    let out = std::process::Command::new(&copy)
        .args(missing)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pip install onnxruntime==1.31.1"),
        "{stderr}"
    );
    assert!(!stderr.contains("setup.sh"), "{stderr}");
    let out = common::bench(&missing);
    assert!(
        out.stderr.contains("run `scripts/setup.sh`"),
        "{}",
        out.stderr
    );
}

/// Regression: `--input input_ids=int:0:30522` was refused; the scenario's generators (`int`,
/// `uniform`, `normal`) are flags' values too, and reach `OUT/scenario.toml`.
#[test]
fn bench_run_takes_an_id_range_and_the_other_generators_from_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let model = format!("{}/encoder_small.onnx", common::models_path());
    let run = common::bench(&[
        "run",
        &model,
        "--dims",
        "batch=1",
        "--dims",
        "seq=8",
        "--input",
        "input_ids=int:0:30522",
        "--input",
        "attention_mask=uniform:0:1",
        "--dry-run",
        "--out",
        s(&out),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(out.join("scenario.toml")).unwrap();
    assert!(
        text.contains(r#"generator = { kind = "int", low = 0, high = 30522 }"#),
        "{text}"
    );
    assert!(
        text.contains(r#"generator = { kind = "uniform", low = 0.0, high = 1.0 }"#),
        "{text}"
    );
    let bad = common::bench(&["run", &model, "--input", "input_ids=int:9:3", "--dry-run"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("LOW must be below HIGH"),
        "{}",
        bad.stderr
    );
}

/// Regression: `scripts/nightly.sh` always installed and rebuilt the project, and swept only the
/// bundled scenario. With `--bench` it runs that binary and builds nothing (a `cargo` that fails
/// stands first on PATH), with `--scenario` one's own models; paths are read from the caller's
/// folder; the first run with no baseline becomes it, the next one is compared against it.
#[test]
fn nightly_runs_ones_own_scenario_with_a_given_binary_and_builds_nothing() {
    let _turn = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("mine.toml"),
        format!(
            "[[model]]\nname = \"mine\"\npath = \"{}/linear.onnx\"\ndims = {{ batch = 1 }}\n",
            common::models_path()
        ),
    )
    .unwrap();
    let fake = d.join("bin");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(
        fake.join("cargo"),
        "#!/bin/sh\necho 'cargo ran' >&2\nexit 97\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(fake.join("cargo"))
        .status()
        .unwrap();
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    let script = std::fs::canonicalize("scripts/nightly.sh").unwrap();
    let bin = assert_cmd::cargo::cargo_bin("bench");
    let night = |out: &str| {
        let o = std::process::Command::new("bash")
            .arg(&script)
            .args(["--scenario", "mine.toml", "--baseline", "base", "--bench"])
            .arg(&bin)
            .args(["--out", out, "--requests", "20", "--warmup-requests", "0"])
            .env("PATH", &path)
            .env_remove("GITHUB_STEP_SUMMARY")
            .current_dir(d)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, stderr) = night("run1");
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("cargo ran"), "{stderr}");
    assert!(stderr.contains("this run is the baseline now"), "{stderr}");
    assert!(d.join("base/results.csv").is_file() && d.join("run1/report.html").is_file());
    let (code, stderr) = night("run2");
    assert!(
        code == 0 || code == 1,
        "compared, a timing regression aside: {stderr}"
    );
    assert!(d.join("run2/compare.md").is_file(), "{stderr}");
}
