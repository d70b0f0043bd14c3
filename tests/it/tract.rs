//! The tract runtime reproduces the outputs PyTorch computed for the committed reference inputs
//! (`models/reference/<model>/`), refuses requests it was not compiled for, and tells a model it
//! cannot run (unsupported) from a file that is no model at all.
//!
//! End to end: a sweep over `runtime = ["ort", "tract"]` runs tract workers in every transfer mode,
//! measures what tract runs and reports each model it cannot run as unsupported without stopping;
//! and every transfer mode gives bit-identical tract outputs.
//!
//! Built only with the cargo feature `tract` (`scripts/test.sh` turns it on).

use std::path::{Path, PathBuf};

use crate::common;

use bench::model::tensor::{DType, Generator, TensorData, decode_values};
use bench::pool::runtime::Model;
use bench::pool::runtime::tract::{TractError, TractModel, TractOptions};
use bench::scenario::InputSpec;
use prost::Message;
use tract_onnx::pb;

const ONE_THREAD: TractOptions = TractOptions { intra_threads: 1 };

use crate::common::onnx_path;

/// The reference of bundled model `name`, and the input specs that bind its inputs.
fn reference_inputs(name: &str) -> (common::Reference, Vec<InputSpec>) {
    let reference = common::reference(name);
    let specs = reference
        .info
        .inputs
        .iter()
        .zip(&reference.inputs)
        .map(|(i, t)| spec(&i.name, t.dtype, &t.shape))
        .collect();
    (reference, specs)
}

fn spec(name: &str, dtype: DType, shape: &[i64]) -> InputSpec {
    InputSpec {
        name: name.into(),
        dtype,
        shape: shape.to_vec(),
        generator: Generator::Const { value: 0.0 },
        seed: 0,
    }
}

fn run(model: &mut TractModel, inputs: &[TensorData]) -> Vec<TensorData> {
    let views: Vec<_> = inputs.iter().map(|t| t.view()).collect();
    model.run(&views).unwrap()
}

#[test]
fn tract_matches_pytorch_reference_outputs_for_every_bundled_model() {
    let mut report = Vec::new();
    for name in common::BUNDLED_MODELS {
        let (reference, specs) = reference_inputs(name);
        let mut model = TractModel::load(name, &onnx_path(name), &specs, ONE_THREAD)
            .unwrap_or_else(|e| panic!("{e}"));
        let outputs = run(&mut model, &reference.inputs);
        let max_abs = reference.assert_matches(&outputs);
        // The compiled plan is reusable: a second request gives the same bytes.
        assert_eq!(
            run(&mut model, &reference.inputs),
            outputs,
            "{name}: second run"
        );
        report.push(format!("{name}: max abs diff {max_abs:.2e}"));
    }
    println!("tract vs PyTorch: {}", report.join("; "));
    assert_eq!(report.len(), common::BUNDLED_MODELS.len());
}

/// Names of this process's threads that tract's intra-op pool started.
fn tract_pool_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("tract-"))
        .count()
}

#[test]
fn tract_with_three_intra_threads_starts_them_and_gives_the_reference_outputs() {
    for name in ["mlp", "resnet_small"] {
        let (reference, specs) = reference_inputs(name);
        let mut model = TractModel::load(
            name,
            &onnx_path(name),
            &specs,
            TractOptions { intra_threads: 3 },
        )
        .unwrap();
        // The other tests run tract on the calling thread: these are this model's. Each thread
        // names itself once it runs: wait for that, not for a delay a busy machine can outlast.
        common::wait_for(|| (tract_pool_threads() >= 3).then_some(()));
        assert!(tract_pool_threads() >= 3, "{name}: the pool's threads");
        reference.assert_matches(&run(&mut model, &reference.inputs));
    }
}

#[test]
fn tract_binds_the_scenario_shape_and_refuses_other_requests() {
    // linear.onnx takes x: float32 [batch, 10]; bind batch = 3.
    let specs = [spec("x", DType::F32, &[3, 10])];
    let mut model = TractModel::load("linear", &onnx_path("linear"), &specs, ONE_THREAD).unwrap();
    let ones = TensorData {
        dtype: DType::F32,
        shape: vec![3, 10],
        bytes: bench::model::tensor::encode_values(DType::F32, &[1.0; 30]),
    };
    let out = run(&mut model, std::slice::from_ref(&ones));
    assert_eq!(out[0].shape, vec![3, 1]);
    let y = decode_values(DType::F32, &out[0].bytes);
    assert!(y.iter().all(|&v| v == y[0]), "same row, same output: {y:?}");

    let two_rows = TensorData {
        dtype: DType::F32,
        shape: vec![2, 10],
        bytes: bench::model::tensor::encode_values(DType::F32, &[1.0; 20]),
    };
    let err = model.run(&[two_rows.view()]).unwrap_err();
    assert!(err.contains("optimised for F32 [3, 10]"), "{err}");
    let err = model.run(&[]).unwrap_err();
    assert!(
        err.contains("model takes 1 inputs (x), request has 0"),
        "{err}"
    );
}

#[test]
fn inputs_that_do_not_fit_the_model_are_input_errors() {
    let f32 = |shape: &[i64]| spec("x", DType::F32, shape);
    let cases: [(&str, Vec<InputSpec>, &str); 6] = [
        (
            "linear",
            vec![f32(&[1, 11])],
            "input `x` is declared float32 [batch, 10], the scenario gives float32 [1, 11]: \
             axis 1 must be 10",
        ),
        (
            "linear",
            vec![spec("x", DType::I64, &[1, 10])],
            "the scenario gives int64 [1, 10]: the element type must be float32",
        ),
        ("linear", vec![f32(&[10])], "the rank must be 2"),
        ("linear", vec![], "input `x` is not given a type and shape"),
        (
            "linear",
            vec![f32(&[1, 10]), spec("z", DType::F32, &[1])],
            "the model has no input `z`; its inputs are x",
        ),
        (
            "encoder_small",
            vec![
                spec("input_ids", DType::I64, &[2, 16]),
                spec("attention_mask", DType::Bool, &[3, 16]),
            ],
            "input `attention_mask` is declared bool [batch, seq], the scenario gives bool [3, 16]: \
             `batch` is 2 in input `input_ids`",
        ),
    ];
    for (name, specs, want) in cases {
        let err = TractModel::load(name, &onnx_path(name), &specs, ONE_THREAD).unwrap_err();
        assert!(matches!(err, TractError::Inputs { .. }), "{err:?}");
        assert!(!err.is_unsupported());
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("model `{name}`: ")) && msg.contains(want),
            "{msg}"
        );
    }
}

/// A one-node ONNX model `y = op(x)` on a float32 [2, 2] input with a float32 output.
fn one_node_model(op_type: &str, domain: &str) -> Vec<u8> {
    let float = |name: &str, dims: &[i64]| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| pb::tensor_shape_proto::Dimension {
                            value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut opsets = vec![pb::OperatorSetIdProto {
        domain: String::new(),
        version: 18,
    }];
    if !domain.is_empty() {
        opsets.push(pb::OperatorSetIdProto {
            domain: domain.into(),
            version: 1,
        });
    }
    pb::ModelProto {
        ir_version: 10,
        opset_import: opsets,
        producer_name: "bench tests".into(),
        graph: Some(pb::GraphProto {
            name: "g".into(),
            node: vec![pb::NodeProto {
                name: "the_node".into(),
                op_type: op_type.into(),
                domain: domain.into(),
                input: vec!["x".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![float("x", &[2, 2])],
            output: vec![float("y", &[])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn load_bytes(dir: &Path, file: &str, bytes: &[u8]) -> Result<TractModel, TractError> {
    let path = dir.join(file);
    std::fs::write(&path, bytes).unwrap();
    TractModel::load(file, &path, &[spec("x", DType::F32, &[2, 2])], ONE_THREAD)
}

#[test]
fn an_operator_tract_lacks_is_unsupported_and_named() {
    let dir = tempfile::tempdir().unwrap();
    // `Det` is a standard ONNX operator (opset 11) that tract does not implement.
    let err = load_bytes(dir.path(), "det.onnx", &one_node_model("Det", "")).unwrap_err();
    assert!(err.is_unsupported(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("model `det.onnx` is not supported by tract: ")
            && msg.contains("tract does not implement operator Det (node `the_node`)")
            && msg.ends_with("run it with ONNX Runtime (runtime = \"ort\")"),
        "{msg}"
    );
    // A custom-domain operator is named with its domain.
    let err = load_bytes(
        dir.path(),
        "custom.onnx",
        &one_node_model("Foo", "com.example"),
    )
    .unwrap_err();
    assert!(err.is_unsupported(), "{err:?}");
    assert!(
        err.to_string()
            .contains("operator com.example.Foo (node `the_node`)"),
        "{err}"
    );
    // The same graph with an operator tract has loads and runs: the fixture itself is sound.
    let mut model = load_bytes(dir.path(), "sum.onnx", &one_node_model("ReduceSum", "")).unwrap();
    let x = TensorData {
        dtype: DType::F32,
        shape: vec![2, 2],
        bytes: bench::model::tensor::encode_values(DType::F32, &[1.0, 2.0, 3.0, 4.0]),
    };
    let y = run(&mut model, &[x]);
    assert_eq!(decode_values(DType::F32, &y[0].bytes), vec![10.0]);
}

#[test]
fn a_file_that_is_not_a_model_is_not_onnx_not_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "garbage.onnx",
            b"\xff\xff\xff\xff this is not protobuf",
            "not a valid protobuf ModelProto",
        ),
        ("empty.onnx", b"", "it has no graph"),
        // A truncated real model: a prefix of linear.onnx.
        (
            "truncated.onnx",
            &std::fs::read(onnx_path("linear")).unwrap()[..200],
            "not a valid protobuf ModelProto",
        ),
    ];
    for (file, bytes, want) in cases {
        let err = load_bytes(dir.path(), file, bytes).unwrap_err();
        assert!(matches!(err, TractError::NotOnnx { .. }), "{file}: {err:?}");
        assert!(!err.is_unsupported());
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("model `{file}`: "))
                && msg.contains(&format!("{file} is not an ONNX model ("))
                && msg.contains(want)
                && msg.ends_with("check the path or re-export the model"),
            "{msg}"
        );
    }
    let err =
        TractModel::load("missing", &dir.path().join("missing.onnx"), &[], ONE_THREAD).unwrap_err();
    assert!(matches!(err, TractError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot read"), "{err}");
}

/// Writes the one-node model `op_type` as `file` in `dir`; returns its path.
fn write_model(dir: &Path, file: &str, op_type: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, one_node_model(op_type, "")).unwrap();
    path
}

#[test]
fn a_sweep_measures_what_tract_runs_and_reports_what_it_cannot_as_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    // ONNX Runtime runs `Det`; tract does not.
    let det = write_model(dir.path(), "det.onnx", "Det");
    let linear = std::fs::canonicalize(onnx_path("linear")).unwrap();
    let scenario = format!(
        "[[model]]\nname = \"linear\"\npath = \"{}\"\ndims = {{ batch = 1 }}\n\
         [[model]]\nname = \"det\"\npath = \"{}\"\n\
         [workload]\ngroups = {{ both = [\"linear\", \"det\"] }}\n\
         mix = {{ linear = 1, det = 1, both = 1 }}\nwarmup_requests = 5\nrequests = 300\nmin_requests = 20\n\
         [sweep]\nruntime = [\"ort\", \"tract\"]\ntransfer = [\"pipe\", \"shm\", \"index\"]\n",
        linear.display(),
        det.display()
    );
    let run = common::sweep_in(dir.path(), &scenario, &[]);
    // The unsupported rows make the run exit 1, but every point ran.
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.alls().len(), 6, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "model `det` is unsupported by tract and left out of the traffic: \
             tract does not implement operator Det (node `the_node`)"
        ),
        "{}",
        run.stderr
    );
    for r in &run.rows {
        let (runtime, model) = (r["runtime"].as_str(), r["model"].as_str());
        let requests = common::num(r, "requests");
        match (runtime, model) {
            ("ort", _) | ("tract", "linear" | "all") => {
                common::assert_valid_timing_aside(r);
                assert!(requests >= 20.0, "{runtime} {model}: {requests}");
            }
            ("tract", "det") => {
                assert_eq!(r["valid"], "false");
                assert_eq!(
                    r["reason"],
                    "unsupported by tract: tract does not implement operator Det (node `the_node`)"
                );
                assert_eq!(requests, 0.0, "no request went to det");
            }
            ("tract", "both") => {
                assert_eq!(r["valid"], "false");
                assert!(
                    r["reason"].starts_with("unsupported by tract: member `det`: "),
                    "{}",
                    r["reason"]
                );
                assert_eq!(requests, 0.0);
            }
            other => panic!("unexpected row {other:?}"),
        }
    }
    // Under tract the mix is linear alone: `all` counts exactly linear's requests.
    for point in run.alls().iter().filter(|r| r["runtime"] == "tract") {
        let linear = run
            .rows
            .iter()
            .find(|r| r["point_id"] == point["point_id"] && r["model"] == "linear")
            .unwrap();
        assert_eq!(
            point["requests"], linear["requests"],
            "{}",
            point["point_id"]
        );
        assert_eq!(common::num(point, "errors"), 0.0);
    }
    // The verdict tables name what was left out.
    let summary = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert_eq!(
        summary.matches("unsupported by tract: det |").count(),
        3,
        "{summary}"
    );
    // The workers said what ran the models.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    let runtimes: Vec<&str> = json["points"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["workers"].as_array().unwrap())
        .map(|w| w["runtime"].as_str().unwrap())
        .collect();
    assert_eq!(runtimes.len(), 6, "{runtimes:?}");
    assert_eq!(
        runtimes.iter().filter(|r| **r == "tract 0.23.9").count(),
        3,
        "{runtimes:?}"
    );
}

#[test]
fn a_tract_point_with_nothing_it_can_run_is_reported_without_starting_workers() {
    let dir = tempfile::tempdir().unwrap();
    let det = write_model(dir.path(), "det.onnx", "Det");
    let scenario = format!(
        "[[model]]\nname = \"det\"\npath = \"{}\"\n\
         [workload]\nrequests = 50\n[sweep]\nruntime = \"tract\"\n",
        det.display()
    );
    let run = common::sweep_in(dir.path(), &scenario, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.row("det")["reason"],
        "unsupported by tract: tract does not implement operator Det (node `the_node`)"
    );
    assert_eq!(
        run.row("all")["reason"],
        "not measured: tract runs no model or group of the mix"
    );
    assert_eq!(run.row("all")["valid"], "false");
}

#[test]
fn every_transfer_mode_gives_bit_identical_tract_outputs() {
    let s = bench::scenario::load(Path::new("scenarios/runtimes.toml")).unwrap();
    let runtime = common::assert_transfers_agree(&s, bench::scenario::Runtime::Tract);
    assert_eq!(runtime, "tract 0.23.9");
}

#[test]
fn a_tract_point_on_cuda_fails_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let linear = std::fs::canonicalize(onnx_path("linear")).unwrap();
    let scenario = format!(
        "[[model]]\nname = \"linear\"\npath = \"{}\"\ndims = {{ batch = 1 }}\n\
         [workload]\nrequests = 100\n[sweep]\nruntime = \"tract\"\nprovider = [\"cuda\", \"cpu\"]\n",
        linear.display()
    );
    let run = common::sweep_in(dir.path(), &scenario, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let alls = run.alls();
    assert_eq!(alls.len(), 2, "{}", run.stderr);
    let of = |provider: &str| *alls.iter().find(|r| r["provider"] == provider).unwrap();
    let (cuda, cpu) = (of("cuda"), of("cpu"));
    assert_eq!(cuda["valid"], "false");
    assert!(
        cuda["reason"].contains("provider cuda is not supported by tract"),
        "{}",
        cuda["reason"]
    );
    common::assert_valid_timing_aside(cpu);
}
