//! The ONNX backend test suite from the pinned `onnx` wheel (requirements/test.txt), through the
//! real binary: `scripts/corpus.py` runs a stratified sample of about 300 of its 1,764 models with
//! `bench run --test-data` in every transfer mode and with ONNX Runtime's Python API, then `bench
//! init --test-data` and a sweep of the scenario it prints. The script exits 1 on a panic, a hang,
//! a model ONNX Runtime runs and matches that bench does not, or a starter that does not run; the
//! whole corpus runs with `scripts/corpus.py` alone (docs/measurements.md has its table).

use std::path::Path;
use std::process::Command;

use crate::common;

#[test]
fn a_stratified_sample_of_the_onnx_backend_suite_runs_and_matches_where_onnx_runtime_does() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("corpus");
    // The script runs `bench` on hundreds of models: this test's turn to load the machine.
    let _turn = common::shared();
    let python = std::env::current_dir().unwrap().join(".venv/bin/python");
    let run = Command::new(&python)
        .args(["scripts/corpus.py", "--bench", env!("CARGO_BIN_EXE_bench")])
        .args(["--sample", "300", "--seed", "1", "--jobs", "2", "--out"])
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh --test", python.display()));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    let rows = common::read_rows(&out.join("corpus.csv"));
    assert!(
        rows.len() >= 285,
        "only {} models ran: {stderr}",
        rows.len()
    );
    let count = |k: &str, v: &str| rows.iter().filter(|r| r[k] == v).count();
    assert_eq!(count("bench", "panic") + count("bench", "hang"), 0);
    // What the script's exit status already says, checked from its table, so a script that
    // stopped checking would fail here.
    for r in rows.iter().filter(|r| r["ort"] == "matched") {
        assert_eq!(r["bench"], "matched", "{r:?}");
        assert_eq!(r["init"], "ran", "{r:?}");
    }
    // The sample reaches every folder, and most of it runs.
    for folder in [
        "node",
        "pytorch-converted",
        "pytorch-operator",
        "simple",
        "light",
    ] {
        assert!(
            rows.iter().any(|r| r["folder"] == folder),
            "no {folder} model"
        );
    }
    assert!(count("bench", "matched") * 10 >= rows.len() * 8, "{stdout}");
    assert!(Path::new(&out.join("corpus.md")).is_file());
}
