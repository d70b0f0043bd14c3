//! The CUDA provider where there is no usable GPU (CI and the build machines): a CUDA point fails
//! with its reason in the CSV, never silently on the CPU, and the sweep goes on with the CPU points.
//! The project's ONNX Runtime is the CPU wheel, which has no CUDA execution provider, so this path
//! is the one every machine without `onnxruntime-gpu` takes. `scripts/gpu-check.sh` runs the real
//! thing on a GPU host.

use crate::common;

use crate::common::{models_path, sweep};

#[test]
fn cuda_points_fail_with_their_reason_and_cpu_points_still_run() {
    let scenario = format!(
        r#"
name = "cuda-unavailable"
[[model]]
name = "linear"
path = "{}/linear.onnx"
dims = {{ batch = 1 }}
[workload]
warmup = "100ms"
duration = "300ms"
[sweep]
transfer = ["pipe", "device"]
provider = ["cpu", "cuda"]
[cuda]
gpus = [0]
conv_algo_search = "heuristic"
"#,
        models_path()
    );
    let run = sweep(&scenario, &[]);
    // Invalid points: exit 1, not a crash and not a success.
    assert_eq!(run.code, 1, "{}", run.stderr);
    let alls = run.alls();
    let ids: Vec<&str> = alls.iter().map(|r| r["point_id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "w1-t1-pipe-cpu-c1",
            "w1-t1-pipe-cuda-c1",
            "w1-t1-device-cuda-c1"
        ]
    );
    common::assert_valid_timing_aside(alls[0]);
    assert!(common::num(alls[0], "requests") > 0.0);
    for r in &alls[1..] {
        assert_eq!(r["valid"], "false", "{r:?}");
        assert_eq!(r["provider"], "cuda");
        assert_eq!(r["requests"], "0", "nothing may run on a CPU fall-back");
        assert!(
            r["reason"].contains("CUDA execution provider")
                && r["reason"].contains("onnxruntime-gpu"),
            "{}",
            r["reason"]
        );
    }
    assert_eq!(alls[2]["input_staging"], "device");
    assert!(
        run.stderr.contains("point w1-t1-pipe-cuda-c1 failed"),
        "{}",
        run.stderr
    );
}
