//! End to end: ONNX Runtime's session options and the static `batch` axis, swept by the real
//! `bench` binary on the bundled models. Each setting must reach its CSV column and `run.json`, and
//! a batch point must really run its models at that batch.

use crate::common;

use crate::common::{Row, num, sweep_in};

fn scenario(models: &str, sweep: &str) -> String {
    let models_dir = common::models_path();
    format!(
        "{}\n[workload]\nwarmup_requests = 10\nrequests = 60\nmin_requests = 1\n\n\
         [load]\nconcurrency = 2\n\n[sweep]\n{sweep}\n",
        models.replace("MODELS", &models_dir)
    )
}

fn run_json(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

/// Regression guard for the session-option axes: `graph_optimization = ["disable", "all"]` ×
/// `intra_spinning = [true, false]` gives four points, ids marked only away from the defaults,
/// each setting in its own CSV column and in `run.json`'s `points[].session`.
#[test]
fn session_options_reach_the_csv_and_run_json() {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(
        r#"[[model]]
name = "mlp"
path = "MODELS/mlp.onnx"
dims = { batch = 1 }
"#,
        "intra_threads = 2\ngraph_optimization = [\"disable\", \"all\"]\n\
         intra_spinning = [true, false]\nmemory_pattern = false\n",
    );
    let run = sweep_in(dir.path(), &text, &[]);
    run.assert_ok_timing_aside();
    let alls: Vec<&Row> = run.alls();
    let ids: Vec<&str> = alls.iter().map(|r| r["point_id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "w1-t2-opt-disable-nomempat-pipe-cpu-c2",
            "w1-t2-opt-disable-nospin-nomempat-pipe-cpu-c2",
            "w1-t2-nomempat-pipe-cpu-c2",
            "w1-t2-nospin-nomempat-pipe-cpu-c2",
        ]
    );
    let got: Vec<(&str, &str, &str, &str, &str, &str)> = alls
        .iter()
        .map(|r| {
            (
                r["graph_optimization"].as_str(),
                r["intra_spinning"].as_str(),
                r["memory_pattern"].as_str(),
                r["cpu_arena"].as_str(),
                r["execution_mode"].as_str(),
                r["inter_threads"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("disable", "true", "false", "true", "sequential", "1"),
            ("disable", "false", "false", "true", "sequential", "1"),
            ("all", "true", "false", "true", "sequential", "1"),
            ("all", "false", "false", "true", "sequential", "1"),
        ]
    );
    for r in &run.rows {
        assert_eq!(num(r, "errors"), 0.0, "{}", r["point_id"]);
        assert!(num(r, "requests") > 0.0);
        assert_eq!(r["batch"], "", "no batch axis, no batch");
        assert_eq!(r["throughput_samples_s"], "");
    }
    let info = run_json(dir.path());
    let session = &info["points"][1]["session"];
    assert_eq!(session["graph_optimization"], "disable");
    assert_eq!(session["intra_spinning"], "false");
    assert_eq!(session["memory_pattern"], "false");
    assert!(session.get("batch").is_none());
    assert_eq!(info["settings"]["sweep.intra_spinning"], "true, false");
    assert_eq!(info["settings"]["sweep.graph_optimization"], "disable, all");
    assert!(
        info["settings"].get("sweep.cpu_arena").is_none(),
        "an axis left at its default is not recorded, so older runs still compare"
    );
}

/// The parallel execution mode with 2 inter-op threads and the CPU arena off run (ONNX Runtime
/// accepts the options together), and are recorded.
#[test]
fn parallel_execution_and_no_arena_run() {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(
        r#"[[model]]
name = "linear"
path = "MODELS/linear.onnx"
dims = { batch = 1 }
"#,
        "execution_mode = \"parallel\"\ninter_threads = 2\ncpu_arena = false\n",
    );
    let run = sweep_in(dir.path(), &text, &[]);
    run.assert_ok_timing_aside();
    let all = run.row("all");
    assert_eq!(all["point_id"], "w1-t1-par-i2-noarena-pipe-cpu-c2");
    assert_eq!(all["execution_mode"], "parallel");
    assert_eq!(all["inter_threads"], "2");
    assert_eq!(all["cpu_arena"], "false");
    assert_eq!(num(all, "errors"), 0.0);
}

/// A batch sweep: `throughput_samples_s` is `throughput_rps × batch` on every row, and the models
/// really ran at the batch: resnet_small's compute time grows with it, and the outputs that came
/// back have the point's batch size (the expected-output check would fail a wrong shape; here the
/// worker's compute is the evidence).
#[test]
fn batch_points_report_samples_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(
        r#"[[model]]
name = "mlp"
path = "MODELS/mlp.onnx"
dims = { batch = 1 }

[[model]]
name = "resnet_small"
path = "MODELS/resnet_small.onnx"
batch_dim = 0
"#,
        "batch = [1, 8]\ntransfer = [\"pipe\", \"shm\"]\n",
    );
    let run = sweep_in(dir.path(), &text, &[]);
    run.assert_ok_timing_aside();
    let ids: Vec<&str> = run.alls().iter().map(|r| r["point_id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "w1-t1-pipe-cpu-b1-c2",
            "w1-t1-pipe-cpu-b8-c2",
            "w1-t1-shm-cpu-b1-c2",
            "w1-t1-shm-cpu-b8-c2",
        ]
    );
    for r in &run.rows {
        let what = format!("{} {}", r["point_id"], r["model"]);
        let b = num(r, "batch");
        assert!(r["point_id"].contains(&format!("-b{b}-")), "{what}");
        let rps = num(r, "throughput_rps");
        let samples = num(r, "throughput_samples_s");
        assert!(rps > 0.0, "{what}");
        assert!(
            (samples - rps * b).abs() <= 0.01 * b.max(1.0),
            "{what}: {samples} samples/s against {rps} req/s × {b}"
        );
        assert_eq!(num(r, "errors"), 0.0, "{what}");
    }
    let compute = |id: &str| {
        num(
            run.rows
                .iter()
                .find(|r| r["point_id"] == id && r["model"] == "resnet_small")
                .unwrap(),
            "compute_mean_us",
        )
    };
    assert!(
        compute("w1-t1-pipe-cpu-b8-c2") > 2.0 * compute("w1-t1-pipe-cpu-b1-c2"),
        "resnet_small at batch 8 computes longer than at batch 1"
    );
    let info = run_json(dir.path());
    assert_eq!(info["points"][1]["session"]["batch"], "8");
    assert_eq!(info["settings"]["sweep.batch"], "1, 8");
}

/// The samples of a batch point have the point's batch size, and ONNX Runtime answers them with
/// outputs of that batch size: the model runs at the batch, not only the column.
#[test]
fn a_batch_point_runs_the_model_at_its_batch() {
    let s = bench::scenario::load(std::path::Path::new("scenarios/batch.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let lib =
        bench::pool::runtime::ortlib::locate(None).expect("ONNX Runtime: run scripts/setup.sh");
    for b in [1, 4, 16] {
        let at = s.at_batch(Some(b)).unwrap().expect("a batch was given");
        for m in &at.models {
            assert_eq!(
                m.inputs[0].shape[0], b as i64,
                "{} input at batch {b}",
                m.name
            );
            assert_eq!(m.samples[0][0].shape[0], b as i64, "{} sample", m.name);
            let path = match &m.source {
                bench::scenario::ModelSource::Onnx(p) => p.clone(),
                other => panic!("{other:?}"),
            };
            let opts = bench::pool::runtime::ort::SessionOptions {
                intra_threads: 1,
                gpu: None,
                knobs: Default::default(),
            };
            let mut model =
                bench::pool::runtime::ort::OrtModel::load(&lib.path, &path, opts).unwrap();
            let views: Vec<_> = m.samples[0].iter().map(|t| t.view()).collect();
            use bench::pool::runtime::Model;
            let out = model.run(&views).unwrap();
            assert_eq!(out[0].shape[0], b as i64, "{} output at batch {b}", m.name);
        }
    }
    let ids: Vec<&str> = s.points.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "w1-t1-pipe-cpu-b1-c2",
            "w1-t1-pipe-cpu-b4-c2",
            "w1-t1-pipe-cpu-b16-c2"
        ]
    );
}

/// The bundled session-options scenario sweeps intra_threads × intra_spinning as documented.
#[test]
fn the_session_knobs_scenario_sweeps_threads_and_spinning() {
    let s = bench::scenario::load(std::path::Path::new("scenarios/session-knobs.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = s.points.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "w1-t1-pipe-cpu-c2",
            "w1-t1-nospin-pipe-cpu-c2",
            "w1-t2-pipe-cpu-c2",
            "w1-t2-nospin-pipe-cpu-c2"
        ]
    );
}
