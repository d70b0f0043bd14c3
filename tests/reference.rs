//! ONNX Runtime reproduces the outputs PyTorch computed for the committed reference inputs
//! (`models/reference/<model>/`, written by `scripts/export_models.py`). Needs no torch: the PyTorch
//! outputs are committed as `.npy` files.

use std::path::Path;

use bench::runtime::Model;
use bench::runtime::ort::{OrtModel, SessionOptions};
use bench::tensor::{DType, decode_values, read_npy};

const MODELS: [&str; 5] = [
    "linear",
    "mlp",
    "resnet_small",
    "encoder_small",
    "mixed_inputs",
];

#[test]
fn onnx_runtime_matches_pytorch_reference_outputs() {
    let lib = bench::runtime::ortlib::locate(None).expect("ONNX Runtime: run scripts/setup.sh");
    let mut report = Vec::new();
    for name in MODELS {
        let onnx = Path::new("models/onnx").join(format!("{name}.onnx"));
        let refdir = Path::new("models/reference").join(name);
        let info = bench::onnx::read_model_info(&onnx).unwrap();
        let inputs: Vec<_> = info
            .inputs
            .iter()
            .map(|i| read_npy(&refdir.join(format!("input_{}.npy", i.name))).unwrap())
            .collect();
        for (t, i) in inputs.iter().zip(&info.inputs) {
            assert_eq!(
                Ok(t.dtype),
                i.dtype,
                "{name}: reference input {} has the model's type",
                i.name
            );
        }
        let mut model = OrtModel::load(
            &lib.path,
            &onnx,
            SessionOptions {
                intra_threads: 1,
                gpu: None,
            },
        )
        .unwrap();
        let views: Vec<_> = inputs.iter().map(|t| t.view()).collect();
        let outputs = model.run(&views).unwrap();
        assert_eq!(outputs.len(), info.outputs.len(), "{name}");
        for (got, o) in outputs.iter().zip(&info.outputs) {
            let want = read_npy(&refdir.join(format!("output_{}.npy", o.name))).unwrap();
            assert_eq!(got.shape, want.shape, "{name}.{}: shape", o.name);
            assert_eq!(got.dtype, want.dtype, "{name}.{}: dtype", o.name);
            let (g, w) = (
                decode_values(got.dtype, &got.bytes),
                decode_values(want.dtype, &want.bytes),
            );
            let (atol, rtol) = if got.dtype == DType::F16 {
                (1e-2, 1e-2)
            } else {
                (1e-4, 1e-3)
            };
            let worst = g
                .iter()
                .zip(&w)
                .map(|(a, b)| (a - b).abs() - rtol * b.abs())
                .fold(f64::NEG_INFINITY, f64::max);
            assert!(!g.is_empty(), "{name}.{}: empty output", o.name);
            assert!(
                worst <= atol,
                "{name}.{}: differs from PyTorch by {worst:e} beyond rtol",
                o.name
            );
            report.push(format!("{name}.{}: ok", o.name));
        }
    }
    assert_eq!(report.len(), MODELS.len());
}
