//! Inputs and expected outputs from test-data folders (`test_data_set_N/input_K.pb`,
//! `output_K.pb`) run end to end: the outputs of each worker's first run of each sample are
//! checked in every transfer mode, a wrong expected output makes the point invalid with a reason
//! that names it, and a test-data file that contradicts the model is a validate error naming the
//! file. The fixtures are made by `scripts/make_tensor_fixtures.py`; some tests run ONNX backend test
//! cases from the pinned `onnx` wheel (requirements/test.txt), which `scripts/test.sh` installs.

use crate::common;

use std::path::PathBuf;

fn fixtures() -> PathBuf {
    std::fs::canonicalize("tests/models/testdata").unwrap()
}

fn linear() -> String {
    format!("{}/linear.onnx", common::models_path())
}

/// The row of `model` at the point with `transfer`.
fn row<'a>(run: &'a common::Run, transfer: &str, model: &str) -> &'a common::Row {
    run.rows
        .iter()
        .find(|r| r["transfer"] == transfer && r["model"] == model)
        .unwrap_or_else(|| panic!("no row for {model} with {transfer}: {}", run.stderr))
}

#[test]
fn test_data_outputs_are_checked_in_every_transfer_mode() {
    let scenario = format!(
        r#"
[[model]]
name = "lin"
path = "{}"
test_data = "{}/linear"

[workload]
warmup_requests = 4
min_requests = 1

[sweep]
transfer = ["pipe", "shm", "index"]
"#,
        linear(),
        fixtures().display()
    );
    let run = common::sweep(&scenario, &["--requests", "20"]);
    run.assert_ok_timing_aside();
    for transfer in ["pipe", "shm", "index"] {
        for model in ["lin", "all"] {
            let r = row(&run, transfer, model);
            assert_eq!(r["outputs_checked"], "true", "{transfer} {model}: {r:?}");
            common::assert_valid_timing_aside(r);
            assert_eq!(r["errors"], "0", "{transfer} {model}: {r:?}");
        }
    }
}

#[test]
fn a_wrong_expected_output_makes_the_point_invalid_and_says_where() {
    let scenario = format!(
        r#"
[[model]]
name = "lin"
path = "{}"
test_data = "{}/linear_wrong/test_data_set_0"

[workload]
warmup_requests = 2
min_requests = 1

[sweep]
transfer = ["pipe", "shm", "index"]
"#,
        linear(),
        fixtures().display()
    );
    let run = common::sweep(&scenario, &["--requests", "10"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for transfer in ["pipe", "shm", "index"] {
        let r = row(&run, transfer, "lin");
        assert_eq!(r["valid"], "false", "{transfer}: {r:?}");
        assert_eq!(r["outputs_checked"], "true", "{transfer}: {r:?}");
        let reason = &r["reason"];
        for part in [
            "wrong outputs: model `lin` sample 0 (worker pid ",
            "output `y`: 1 of 2 elements differ; worst: element 1 is ",
            "(tolerance atol 1e-5 + rtol 1e-3 × |expected|)",
        ] {
            assert!(
                reason.contains(part),
                "{transfer}: {part:?} not in {reason}"
            );
        }
    }
}

#[test]
fn a_test_data_file_that_contradicts_a_fixed_dim_is_a_validate_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("test_data_set_0");
    std::fs::create_dir(&set).unwrap();
    // An unnamed float32 [2, 3] TensorProto: dims 2 and 3, data_type 1, 24 bytes of raw_data.
    let mut pb = vec![0x08, 0x02, 0x08, 0x03, 0x10, 0x01, 0x4a, 24];
    pb.extend_from_slice(&[0; 24]);
    std::fs::write(set.join("input_0.pb"), pb).unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        format!(
            "[[model]]\nname = \"lin\"\npath = \"{}\"\ntest_data = \"test_data_set_0\"\n",
            linear()
        ),
    )
    .unwrap();
    let out = common::bench(&["validate", "--scenario", file.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    let want = format!(
        "{}/input_0.pb has shape [2, 3], which contradicts input `x` of model `lin` [batch, 10]: dim 1 is 3, the model fixes it at 10",
        std::fs::canonicalize(&set).unwrap().display()
    );
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    assert!(out.stderr.contains("model[0].test_data"), "{}", out.stderr);
}

/// The ONNX backend test suite's `node` case `name`. The pinned `onnx` (requirements/test.txt)
/// ships it, so a missing one fails.
fn node_case(name: &str) -> PathBuf {
    let dir = backend_data()
        .unwrap_or_else(|why| panic!("{why}; run scripts/setup.sh --test"))
        .join("node")
        .join(name);
    assert!(
        dir.join("model.onnx").is_file(),
        "{} is missing",
        dir.display()
    );
    dir
}

/// `onnx/backend/test/data` in the installed `onnx` wheel.
fn backend_data() -> Result<PathBuf, String> {
    // Not canonicalized: .venv/bin/python is a link to the system python, which would not see the
    // virtualenv's packages.
    let python = std::env::current_dir()
        .map_err(|e| e.to_string())?
        .join(".venv/bin/python");
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import onnx, os; print(os.path.dirname(onnx.__file__))",
        ])
        .output()
        .map_err(|e| format!("cannot run .venv/bin/python: {e}"))?;
    if !out.status.success() {
        return Err("the onnx package is not installed in .venv".into());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("backend/test/data"))
}

#[test]
fn an_onnx_backend_test_case_runs_with_its_test_data_in_every_transfer_mode() {
    let case = node_case("test_relu");
    let scenario = format!(
        r#"
[[model]]
name = "relu"
path = "{c}/model.onnx"
test_data = "{c}"

[workload]
warmup_requests = 2
min_requests = 1

[sweep]
transfer = ["pipe", "shm", "index"]
"#,
        c = case.display()
    );
    let run = common::sweep(&scenario, &["--requests", "10"]);
    run.assert_ok_timing_aside();
    for transfer in ["pipe", "shm", "index"] {
        let r = row(&run, transfer, "relu");
        assert_eq!(r["outputs_checked"], "true", "{transfer}: {r:?}");
        common::assert_valid_timing_aside(r);
    }
}

/// String, bfloat16 and float8 tensors, and a model without inputs, from the ONNX backend suite:
/// `bench run --test-data` runs each in every transfer mode and checks its outputs.
#[test]
fn strings_bfloat16_float8_and_no_inputs_run_and_match_in_every_transfer_mode() {
    for name in [
        "test_string_concat",
        "test_regex_full_match_basic",
        "test_cast_FLOAT_to_BFLOAT16",
        "test_cast_FLOAT8E4M3FN_to_FLOAT",
        "test_cast_FLOAT_to_FLOAT8E5M2",
        "test_dequantizelinear_e4m3fn",
        "test_constant",
    ] {
        let case = node_case(name);
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("r");
        let c = case.to_str().unwrap();
        let o = common::bench(&[
            "run",
            &format!("{c}/model.onnx"),
            "--test-data",
            c,
            "--transfer",
            "pipe,shm,index",
            "--requests",
            "4",
            "--warmup",
            "0s",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.code == 0 || o.code == 1, "{name}: {}", o.stderr);
        let rows = common::read_rows(&out.join("results.csv"));
        for transfer in ["pipe", "shm", "index"] {
            let r = rows
                .iter()
                .find(|r| r["transfer"] == transfer && r["model"] == "model")
                .unwrap_or_else(|| panic!("{name}: no {transfer} row"));
            assert_eq!(r["outputs_checked"], "true", "{name} {transfer}: {r:?}");
            assert_eq!(r["errors"], "0", "{name} {transfer}: {r:?}");
            assert!(
                !r["reason"].contains("wrong outputs"),
                "{name} {transfer}: {r:?}"
            );
        }
    }
}

/// A string input takes its values from a `strings` list; a numeric generator for it, or
/// `strings` for a number input, is refused with the fix.
#[test]
fn string_inputs_are_generated_from_a_list_and_other_generators_are_refused() {
    let case = node_case("test_string_concat");
    let model = format!("{}/model.onnx", case.display());
    let good = format!(
        r#"
[[model]]
name = "concat"
path = "{model}"
inputs.x = {{ shape = [2], generator = {{ kind = "strings", values = ["ab", "ünï"] }} }}
inputs.y = {{ shape = [2], generator = {{ kind = "strings", values = ["c"] }} }}

[workload]
warmup_requests = 0
min_requests = 1

[sweep]
transfer = ["pipe", "shm"]
"#
    );
    let run = common::sweep(&good, &["--requests", "5"]);
    run.assert_ok_timing_aside();
    for transfer in ["pipe", "shm"] {
        assert_eq!(
            row(&run, transfer, "concat")["errors"],
            "0",
            "{}",
            run.stderr
        );
    }
    let bad = format!(
        r#"
[[model]]
name = "concat"
path = "{model}"
inputs.x = {{ shape = [2], generator = {{ kind = "uniform" }} }}
inputs.y = {{ shape = [2], generator = {{ kind = "strings", values = [] }} }}
"#
    );
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, bad).unwrap();
    let v = common::bench(&["validate", "--scenario", file.to_str().unwrap()]);
    assert_eq!(v.code, 2, "{}", v.stderr);
    assert!(
        v.stderr
            .contains("a string input takes its values from a list"),
        "{}",
        v.stderr
    );
    assert!(
        v.stderr.contains("`strings` needs one or more values"),
        "{}",
        v.stderr
    );
}
