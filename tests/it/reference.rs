//! ONNX Runtime reproduces the outputs PyTorch computed for the committed reference inputs
//! (`models/reference/<model>/`, written by `scripts/export_models.py`). Needs no torch: the PyTorch
//! outputs are committed as `.npy` files.

use crate::common;

use bench::pool::runtime::Model;
use bench::pool::runtime::ort::{OrtModel, SessionOptions};
use bench::scenario::{ExecutionMode, GraphOptimization, SessionKnobs};

#[test]
fn onnx_runtime_matches_pytorch_reference_outputs() {
    let lib =
        bench::pool::runtime::ortlib::locate(None).expect("ONNX Runtime: run scripts/setup.sh");
    let mut report = Vec::new();
    for name in common::BUNDLED_MODELS {
        let reference = common::reference(name);
        for (t, i) in reference.inputs.iter().zip(&reference.info.inputs) {
            assert_eq!(
                Ok(t.dtype),
                i.dtype,
                "{name}: reference input {} has the model's type",
                i.name
            );
        }
        let options = SessionOptions {
            intra_threads: 1,
            gpu: None,
            knobs: SessionKnobs::default(),
        };
        let mut model = OrtModel::load(&lib.path, &common::onnx_path(name), options).unwrap();
        let views: Vec<_> = reference.inputs.iter().map(|t| t.view()).collect();
        let max_abs = reference.assert_matches(&model.run(&views).unwrap());
        report.push(format!("{name}: max abs diff {max_abs:.2e}"));
        // `worker_concurrency`: the same session run from two threads at once gives the same
        // outputs.
        let shared = model
            .shared()
            .expect("ONNX Runtime runs concurrently on one session");
        std::thread::scope(|s| {
            let runs: Vec<_> = (0..2)
                .map(|_| s.spawn(|| shared.run_shared(&views).unwrap()))
                .collect();
            for r in runs {
                reference.assert_matches(&r.join().unwrap());
            }
        });
    }
    println!("ONNX Runtime vs PyTorch: {}", report.join("; "));
    assert_eq!(report.len(), common::BUNDLED_MODELS.len());
}

/// The session options of the `[sweep]` axes change how ONNX Runtime runs a model, never what it
/// computes: every bundled model matches PyTorch with each setting away from its default (no graph
/// optimisation, parallel execution with 2 inter-op threads, no spinning, no CPU arena, no memory
/// pattern), and a session with them all loads at once.
#[test]
fn every_session_option_keeps_the_reference_outputs() {
    let lib =
        bench::pool::runtime::ortlib::locate(None).expect("ONNX Runtime: run scripts/setup.sh");
    let d = SessionKnobs::default();
    let variants = [
        SessionKnobs {
            graph_optimization: GraphOptimization::Disable,
            ..d
        },
        SessionKnobs {
            graph_optimization: GraphOptimization::Basic,
            ..d
        },
        SessionKnobs {
            graph_optimization: GraphOptimization::Extended,
            ..d
        },
        SessionKnobs {
            execution_mode: ExecutionMode::Parallel,
            inter_threads: 2,
            ..d
        },
        SessionKnobs {
            intra_spinning: false,
            cpu_arena: false,
            memory_pattern: false,
            ..d
        },
    ];
    for name in common::BUNDLED_MODELS {
        let reference = common::reference(name);
        let views: Vec<_> = reference.inputs.iter().map(|t| t.view()).collect();
        for knobs in variants {
            let options = SessionOptions {
                intra_threads: 2,
                gpu: None,
                knobs,
            };
            let mut model = OrtModel::load(&lib.path, &common::onnx_path(name), options)
                .unwrap_or_else(|e| panic!("{name} with {knobs:?}: {e}"));
            reference.assert_matches(&model.run(&views).unwrap());
        }
    }
}
