//! The rough edges of a first hour (issue 24): a closed stdout, a folder given as a model, a
//! comma in `--dims`, what `bench init` says and writes. Each test guards one message or exit
//! code that was wrong.

use crate::common;

use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

/// Runs `bench ARGS` with a stdout whose reader is already gone, as `bench ... | true` gives it
/// when `true` exits first: (exit code, stderr).
fn with_closed_stdout(args: &[&str]) -> (i32, String) {
    use std::os::fd::FromRawFd;
    let _turn = common::shared();
    let mut fds = [0; 2];
    // SAFETY: `pipe` fills two fresh descriptors; the read end is closed at once and the write end
    // is owned by the `OwnedFd` that becomes the child's stdout.
    let write_end = unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        libc::close(fds[0]);
        std::os::fd::OwnedFd::from_raw_fd(fds[1])
    };
    let out = Command::cargo_bin("bench")
        .unwrap()
        .args(args)
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Regression: `bench inspect a.onnx | true` panicked on the broken pipe (exit 101, a backtrace).
#[test]
fn a_closed_stdout_ends_every_printing_command_silently_with_0() {
    for args in [
        vec!["inspect", "models/onnx/mlp.onnx"],
        vec!["completions", "zsh"],
        vec!["init", "models/onnx/mlp.onnx"],
        vec!["validate", "--scenario", "scenarios/batch.toml"],
    ] {
        let (code, stderr) = with_closed_stdout(&args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}

/// Regression: `bench run` on a folder said "no such file", where `validate` says "is a folder";
/// `--dims M1=120,M2=160` said "no dynamic dim named `M1=120,M2`" instead of asking for one flag
/// per dim.
#[test]
fn bench_run_says_what_is_wrong_with_a_folder_and_a_comma_in_dims() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let r = common::bench(&["run", "models/onnx", "--dry-run", "--out", out]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("models/onnx is a folder, not an .onnx file"),
        "{}",
        r.stderr
    );
    let r = common::bench(&[
        "run",
        "models/onnx/mlp.onnx",
        "--dims",
        "batch=2,seq=3",
        "--out",
        out,
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("repeat the flag, e.g. `--dims batch=2 --dims seq=3`"),
        "{}",
        r.stderr
    );
}

/// Regression: the note on a batch dim bound to 1 said `--dims batch=N` for `--dims batch=SIZE`.
#[test]
fn bench_run_names_the_flag_of_a_batch_dim_as_the_help_does() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let r = common::bench(&["run", "models/onnx/mlp.onnx", "--dry-run", "--out", out]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("set it with --dims batch=SIZE"),
        "{}",
        r.stderr
    );
}

/// Regression: `bench init` said "set the `# bind me` values" when there were none, and "no
/// dynamic dims" for a model whose dims its test data binds.
#[test]
fn bench_init_says_nothing_is_to_bind_only_when_nothing_is() {
    let data = std::fs::canonicalize("tests/models/testdata/linear").unwrap();
    let data = data.to_str().unwrap();
    let init = common::bench(&["init", "models/onnx/linear.onnx", "--test-data", data]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    assert!(
        init.stderr
            .contains("linear: nothing to bind: the test data gives its inputs"),
        "{}",
        init.stderr
    );
    for wrong in ["no dynamic dims", "set the `# bind me` values"] {
        assert!(!init.stderr.contains(wrong), "{wrong}: {}", init.stderr);
    }
    assert!(
        init.stdout.contains("# Nothing to bind: it runs as it is"),
        "{}",
        init.stdout
    );
    let init = common::bench(&["init", "models/onnx/mlp.onnx"]);
    assert!(
        init.stderr.contains("set the `# bind me` values"),
        "{}",
        init.stderr
    );
}

/// `bench init` shows where the SLO and `[workload]` go, commented out, and the scenario still
/// validates once they are uncommented.
#[test]
fn bench_init_writes_slo_and_workload_commented_out_and_valid() {
    let init = common::bench(&["init", "models/onnx/mlp.onnx", "models/onnx/linear.onnx"]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    for line in [
        "# slo = [\"p99_ms <= 50\"]",
        "# [workload]",
        "# groups = { together = [\"mlp\", \"linear\"] }",
        "# mix = { mlp = 1, linear = 1 }",
        "# duration = \"5s\"",
    ] {
        assert!(init.stdout.contains(line), "{line}: {}", init.stdout);
    }
    let uncommented: String = init
        .stdout
        .lines()
        .map(|l| {
            let keys = [
                "[workload]",
                "groups",
                "mix",
                "warmup",
                "duration",
                "trials",
                "slo",
            ];
            match l.strip_prefix("# ") {
                Some(rest) if keys.iter().any(|k| rest.starts_with(k)) => rest,
                _ => l,
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(uncommented.contains("\n[workload]\n"), "{uncommented}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("init.toml");
    std::fs::write(&file, uncommented).unwrap();
    let v = common::bench(&["validate", "--scenario", file.to_str().unwrap()]);
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert!(v.stdout.contains("SLO: p99_ms <= 50"), "{}", v.stdout);
}

/// Regression: a pitch estimator's rank-0 `fmin`/`fmax` were drawn uniform in [0, 1) unmarked:
/// `bench init` gives each a constant to set, marked `# set me`, and says so.
#[test]
fn bench_init_marks_scalar_inputs_as_parameters_to_set() {
    let init = common::bench(&["init", "tests/models/wild/scalar_params.onnx"]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    for p in ["fmin", "fmax"] {
        assert!(
            init.stdout.contains(&format!(
                "[model.inputs.{p}]   # float32 []\ngenerator = {{ kind = \"const\", value = 1.0 }}   # set me: a scalar, likely a parameter"
            )),
            "{p}: {}",
            init.stdout
        );
        assert!(
            init.stderr
                .contains(&format!("input `{p}` is a scalar, likely a parameter")),
            "{p}: {}",
            init.stderr
        );
    }
    assert!(
        !init
            .stdout
            .contains("[model.inputs.x]   # float32 [n]\ngenerator = { kind = \"const\""),
        "only scalars: {}",
        init.stdout
    );
    // The starter validates as it is, and its constants are no scalars drawn at random.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("init.toml");
    std::fs::write(&file, &init.stdout).unwrap();
    let v = common::bench(&["validate", "--scenario", file.to_str().unwrap()]);
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert!(!v.stderr.contains("drawn at random"), "{}", v.stderr);
    // Drawn at random, they are noticed by validate too.
    let random = init.stdout.replace(
        "{ kind = \"const\", value = 1.0 }",
        "{ kind = \"uniform\" }",
    );
    std::fs::write(&file, random).unwrap();
    let v = common::bench(&["validate", "--scenario", file.to_str().unwrap()]);
    assert!(
        v.stderr
            .contains("scalar input(s) `fmin`, `fmax` drawn at random"),
        "{}",
        v.stderr
    );
}

/// Regression: `bench run` and `bench sweep` drew a scalar parameter input in [0, 1) without a
/// word; they say so, naming the inputs and the flag and key that give their values.
#[test]
fn a_sweep_notices_scalar_inputs_drawn_at_random() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let model = "tests/models/wild/scalar_params.onnx";
    let r = common::bench(&["run", model, "--dry-run", "--out", out]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "note: model `scalar_params`: scalar input(s) `fmin`, `fmax` drawn at random; \
             if they are parameters (a threshold, a frequency), give each its value: \
             `--input fmin=VALUE` (bench run)"
        ),
        "{}",
        r.stderr
    );
    let given = common::bench(&[
        "run",
        model,
        "--dry-run",
        "--force",
        "--out",
        out,
        "--input",
        "fmin=50",
        "--input",
        "fmax=500",
    ]);
    assert_eq!(given.code, 0, "{}", given.stderr);
    assert!(
        !given.stderr.contains("drawn at random"),
        "{}",
        given.stderr
    );
}

/// Regression: `scripts/setup.sh` (which `scripts/test.sh` runs) gave up at once when another
/// package install held the dpkg lock. Its Debian installer waits for the lock, says which process
/// holds it, and goes on once it is free. The lock file and apt-get are stand-ins here (the
/// variables exist for this test), so nothing needs root.
#[test]
fn setup_waits_for_another_package_install_then_goes_on() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("lock-frontend");
    let log = dir.path().join("apt.log");
    let apt = dir.path().join("apt-get");
    std::fs::write(
        &apt,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&apt, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .unwrap();
    // A POSIX write lock, as dpkg and apt-get take it.
    // SAFETY: a zeroed `flock` struct filled before use, on a descriptor this test owns.
    let ok = unsafe {
        let mut fl: libc::flock = std::mem::zeroed();
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        libc::fcntl(held.as_raw_fd(), libc::F_SETLK, &fl)
    };
    assert_eq!(ok, 0, "cannot lock {}", lock.display());
    let child = Command::new("bash")
        .args(["-c", ". scripts/lib/debian.sh && debian_install chromium"])
        .env("BENCH_DPKG_LOCK", &lock)
        .env("BENCH_APT_GET", &apt)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let hold = std::time::Duration::from_millis(1500);
    std::thread::sleep(hold);
    assert!(!log.exists(), "apt-get ran while the lock was held");
    drop(held);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(start.elapsed() >= hold);
    assert!(
        stderr.contains(&format!(
            "setup: waiting for another package install to finish: {} is held by process {}",
            lock.display(),
            std::process::id()
        )),
        "{stderr}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls
            .contains("-o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends chromium"),
        "{calls}"
    );
}

/// Regression: past `ulimit -f`, SIGXFSZ killed `bench` itself while it wrote its results (exit
/// 153, not a documented code). It ignores the signal, so the write fails with EFBIG, reported
/// naming the file and the limit, with exit 2.
#[test]
fn a_write_past_the_file_size_limit_is_an_error_not_a_signal() {
    let _turn = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    // A synthetic model: its workers write no file, so only the parent meets the limit (its
    // histogram log of 300 requests is over 2 KiB).
    std::fs::write(
        &scenario,
        "[[model]]\nname = \"m\"\nsynthetic = { mean = \"100us\", wait = \"sleep\" }\n\
         [workload]\nwarmup_requests = 0\nrequests = 300\n",
    )
    .unwrap();
    let bench = assert_cmd::cargo::cargo_bin("bench");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -f 2; exec {} sweep --quiet --scenario {} --out {}",
            bench.display(),
            scenario.display(),
            dir.path().join("out").display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(
        stderr.contains("fix: a file reached the file size limit (`ulimit -f` is 2)"),
        "{stderr}"
    );
}

/// Regression: a worker that died of SIGXFSZ (past `ulimit -f`) showed as "the worker closed its
/// connection" or "Connection reset by peer"; its requests now say how it ended. The signal is
/// sent here, as the kernel would send it.
#[test]
fn a_worker_killed_by_sigxfsz_is_reported_with_its_signal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "[[model]]\nname = \"m\"\nsynthetic = { mean = \"2ms\", wait = \"sleep\" }\n\
         [workload]\nwarmup_requests = 0\nduration = \"3s\"\n[load]\nconcurrency = 2\n\
         [sweep]\nworkers = 2\n",
    )
    .unwrap();
    let child = common::spawn_sweep(&file, dir.path());
    let workers = common::wait_for_children(child.id(), 2);
    assert_eq!(workers.len(), 2, "two workers started");
    assert!(common::wait_until_served(
        &workers[1..2],
        common::SYNTHETIC_SERVING
    ));
    // SAFETY: signalling a worker process of our own child.
    unsafe { libc::kill(workers[1], libc::SIGXFSZ) };
    let out = child.wait_with_output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("killed by SIGXFSZ") && stderr.contains("file size limit exceeded"),
        "{stderr}"
    );
}
