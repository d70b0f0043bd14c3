//! Dynamic batching end to end (`[batching]`): checked against the closed form of full batches,
//! both idle policies, and real ONNX models through every transfer mode that batches.

use crate::common;

use crate::common::{Row, num, sweep};

/// The `all` row of the point whose id contains every one of `parts`.
fn point<'a>(rows: &'a [Row], parts: &[&str]) -> &'a Row {
    rows.iter()
        .find(|r| r["model"] == "all" && parts.iter().all(|p| r["point_id"].contains(p)))
        .unwrap_or_else(|| panic!("no point with {parts:?}"))
}

fn within(got: f64, want: f64, pct: f64) -> bool {
    (got - want).abs() <= want * pct / 100.0
}

/// At 20 requests/s, evenly spaced, each request is alone in its queue: with `idle = "wait"` it
/// waits out `max_delay` (20 ms) before it goes; with `send` an idle worker takes it at once.
#[test]
fn the_wait_policy_holds_a_lone_request_for_max_delay_and_send_does_not() {
    let scenario = "[[model]]\nname = \"m\"\nsynthetic = { mean = \"1ms\", wait = \"sleep\" }\n\
                    [workload]\nwarmup_requests = 4\nduration = \"2s\"\nmin_requests = 20\n\
                    [load]\nkind = \"open\"\narrival = \"constant\"\nrate = 20\n\
                    [batching]\nmax_batch = 8\nmax_delay = \"20ms\"\nidle = [\"wait\", \"send\"]\n";
    let run = sweep(scenario, &[]);
    // On a busy test machine the generator may honestly fall behind; nothing else may fail.
    run.assert_ok_timing_aside();
    let wait = point(&run.rows, &["-mb8-d20ms-r"]);
    let send = point(&run.rows, &["-mb8-d20ms-send-"]);
    let waited_ms = num(wait, "queue_wait_p50_us") / 1e3;
    assert!((19.0..30.0).contains(&waited_ms), "{wait:?}");
    assert!(num(wait, "latency_p50_us") / 1e3 > 20.0, "{wait:?}");
    assert!(num(send, "queue_wait_p50_us") / 1e3 < 5.0, "{send:?}");
    assert!(num(send, "latency_p50_us") / 1e3 < 15.0, "{send:?}");
    for r in [wait, send] {
        assert_eq!(num(r, "batch_size_max"), 1.0, "{r:?}");
        assert_eq!(r["batch_idle"], if r == wait { "wait" } else { "send" });
        assert_eq!(r["max_delay_us"], "20000");
    }
}

/// A real model joins requests along its batch dim in the parent (`pipe`, `shm`) or in the worker
/// (`index`), and runs them as one: no request fails, runs hold several requests, and a scenario
/// without `[batching]` leaves the columns empty.
#[test]
fn real_models_run_joined_requests_with_every_transfer_that_batches() {
    let models = common::models_path();
    let scenario = format!(
        "[[model]]\nname = \"mlp\"\npath = \"{models}/mlp.onnx\"\ndims = {{ batch = 1 }}\n\
         [[model]]\nname = \"resnet_small\"\npath = \"{models}/resnet_small.onnx\"\ndims = {{ batch = 1 }}\n\
         [workload]\nwarmup_requests = 20\nduration = \"500ms\"\n\
         [load]\nconcurrency = 8\n\
         [sweep]\ntransfer = [\"pipe\", \"shm\", \"index\"]\n\
         [batching]\nmax_batch = 4\nmax_delay = \"5ms\"\n"
    );
    let run = sweep(&scenario, &[]);
    run.assert_ok_timing_aside();
    common::assert_accounted(&run);
    for transfer in ["pipe", "shm", "index"] {
        for model in ["mlp", "resnet_small"] {
            let r = run
                .rows
                .iter()
                .find(|r| r["model"] == model && r["transfer"] == transfer)
                .unwrap();
            assert_eq!(num(r, "errors"), 0.0, "{r:?}");
            assert!(num(r, "batch_size_mean") > 1.5, "{transfer} {model}: {r:?}");
            assert!(num(r, "batch_size_max") <= 4.0, "{r:?}");
        }
    }
    let plain = sweep(
        &scenario.replace("[batching]\nmax_batch = 4\nmax_delay = \"5ms\"\n", ""),
        &["--duration", "300ms"],
    );
    plain.assert_ok_timing_aside();
    let r = plain.rows.iter().find(|r| r["model"] == "all").unwrap();
    for column in [
        "max_batch",
        "batch_size_mean",
        "queue_wait_p50_us",
        "runs_per_s",
    ] {
        assert_eq!(r[column], "", "{column} without [batching]");
    }
    assert!(!r["point_id"].contains("-mb"), "{r:?}");
}

/// The tests that measure time: they take `common::exclusive()`, and `scripts/test.sh` runs them
/// by themselves after the others (`-- ::alone::`).
mod alone {
    use super::*;

    /// A synthetic model whose run of `b` requests sleeps `a + b × per_sample` (10 ms + 2.5 ms × b).
    /// In a closed loop of `C = k × B` clients and `max_batch = B` with one worker, every run is full:
    /// `B` clients send together, the batch leaves full, and the next `B` queue behind it. So the
    /// throughput is `B / (a + b·B)` and, by Little's law, the mean latency `C / throughput` =
    /// `k × (a + b·B)`. Without batching (`max_batch = 1`) it is `1 / (a + b)` and `C × (a + b)`.
    /// Each must match within 15%, in every transfer mode that batches.
    #[test]
    fn dynamic_batching_matches_the_closed_form_of_full_batches() {
        let _heavy = common::exclusive();
        let scenario = "[[model]]\nname = \"m\"\n\
                    synthetic = { mean = \"10ms\", per_sample = \"2500us\", wait = \"sleep\" }\n\
                    [workload]\nwarmup_requests = 16\nduration = \"1s\"\nmin_requests = 40\n\
                    [load]\nconcurrency = [4, 8]\n\
                    [sweep]\ntransfer = [\"pipe\", \"shm\", \"index\"]\n\
                    [batching]\nmax_batch = [1, 4]\nmax_delay = \"50ms\"\n";
        let run = sweep(scenario, &[]);
        run.assert_ok_timing_aside();
        common::assert_accounted(&run);
        let (a, b) = (10.0, 2.5); // ms
        for transfer in ["pipe", "shm", "index"] {
            for (batch, clients) in [(1.0, 4.0), (1.0, 8.0), (4.0, 4.0), (4.0, 8.0)] {
                let r = point(
                    &run.rows,
                    &[transfer, &format!("-mb{batch}-"), &format!("-c{clients}")],
                );
                // The closed form over the run time the worker measured: a sleeping model oversleeps
                // on a loaded machine (64-67 req/s where 80 was nominal, beside three busy loops), and
                // that is the machine's time, not the batcher's. The nominal time bounds it from below.
                let nominal_ms = a + b * batch;
                let run_ms = num(r, "compute_mean_us") / 1e3;
                let id = &r["point_id"];
                assert!(
                    run_ms >= nominal_ms * 0.97,
                    "{id}: runs took {run_ms:.2} ms, under the model's {nominal_ms} ms"
                );
                let throughput = batch / run_ms * 1e3;
                let latency_ms = clients / throughput * 1e3;
                assert!(
                    within(num(r, "throughput_rps"), throughput, 15.0),
                    "{id}: {} req/s, the closed form says {throughput:.1}",
                    r["throughput_rps"]
                );
                assert!(
                    within(num(r, "latency_mean_us") / 1e3, latency_ms, 15.0),
                    "{id}: mean latency {} µs, the closed form says {latency_ms:.1} ms",
                    r["latency_mean_us"]
                );
                // Every run full, and as many runs as the batches say.
                assert_eq!(num(r, "batch_size_max"), batch, "{id}");
                assert!(num(r, "batch_size_mean") > batch - 0.1, "{id}: {r:?}");
                assert!(
                    within(num(r, "runs_per_s"), throughput / batch, 15.0),
                    "{id}: {r:?}"
                );
            }
        }
    }
}
