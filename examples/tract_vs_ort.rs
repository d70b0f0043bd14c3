//! Single-thread, in-process runs per second of each bundled model under tract and under ONNX
//! Runtime, on the committed reference inputs (`models/reference/<model>/`): no worker, no transfer,
//! only `Model::run` in a loop.
//!
//! ```sh
//! cargo run --release --example tract_vs_ort            # 2 s per model and runtime
//! cargo run --release --example tract_vs_ort -- 5 mlp   # 5 s, only mlp
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use bench::model::tensor::{Generator, TensorData, read_npy};
use bench::pool::runtime::Model;
use bench::pool::runtime::ort::{OrtModel, SessionOptions};
use bench::pool::runtime::tract::{TractModel, TractOptions};
use bench::scenario::InputSpec;

const MODELS: [&str; 5] = [
    "linear",
    "mlp",
    "resnet_small",
    "encoder_small",
    "mixed_inputs",
];

/// Runs `model` for `budget` (after 20 warm-up runs) and returns runs per second and the median
/// time of one run.
fn measure(model: &mut dyn Model, inputs: &[TensorData], budget: Duration) -> (f64, Duration) {
    let views: Vec<_> = inputs.iter().map(|t| t.view()).collect();
    for _ in 0..20 {
        model.run(&views).expect("warm-up run");
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget {
        let t0 = Instant::now();
        std::hint::black_box(model.run(&views).expect("run"));
        times.push(t0.elapsed());
    }
    let total = start.elapsed().as_secs_f64();
    times.sort();
    (times.len() as f64 / total, times[times.len() / 2])
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let secs: f64 = args.next().map_or(Ok(2.0), |s| s.parse())?;
    let only: Vec<String> = args.collect();
    let budget = Duration::from_secs_f64(secs);
    let lib = bench::pool::runtime::ortlib::locate(None)?;
    println!(
        "{:<14} {:>12} {:>12} {:>12} {:>12} {:>8}",
        "model", "tract run/s", "tract p50", "ort run/s", "ort p50", "tract/ort"
    );
    for name in MODELS {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let onnx = Path::new("models/onnx").join(format!("{name}.onnx"));
        let refdir = Path::new("models/reference").join(name);
        let info = bench::model::onnx::read_model_info(&onnx)?;
        let inputs = info
            .inputs
            .iter()
            .map(|i| read_npy(&refdir.join(format!("input_{}.npy", i.name))))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let specs: Vec<InputSpec> = info
            .inputs
            .iter()
            .zip(&inputs)
            .map(|(i, t)| InputSpec {
                name: i.name.clone(),
                dtype: t.dtype,
                shape: t.shape.clone(),
                generator: Generator::Const { value: 0.0 },
                seed: 0,
            })
            .collect();
        let mut tract = TractModel::load(name, &onnx, &specs, TractOptions { intra_threads: 1 })?;
        let mut ort = OrtModel::load(
            &lib.path,
            &onnx,
            SessionOptions {
                intra_threads: 1,
                gpu: None,
                knobs: Default::default(),
            },
        )
        .map_err(anyhow::Error::msg)?;
        let (t_rate, t_p50) = measure(&mut tract, &inputs, budget);
        let (o_rate, o_p50) = measure(&mut ort, &inputs, budget);
        println!(
            "{name:<14} {t_rate:>12.0} {:>12} {o_rate:>12.0} {:>12} {:>8.2}",
            format!("{:.1?}", t_p50),
            format!("{:.1?}", o_p50),
            t_rate / o_rate
        );
    }
    Ok(())
}
