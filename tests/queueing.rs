//! The measurement checked against queueing theory, with the synthetic runtime (no ONNX):
//!
//! - Poisson arrivals into one worker with a fixed service time (M/D/1) at about 50% utilisation:
//!   the measured mean waiting time matches the Pollaczek–Khinchine value within 15%.
//! - A worker that stalls for 500 ms in the middle of an open-loop run: the p99 latency measured from
//!   the intended send time shows the stall as theory predicts, while compute time does not; a closed
//!   loop (coordinated omission) hides it.
//!
//! These tests are timing-sensitive, so they run one at a time (a lock) in their own test binary,
//! which cargo runs alone.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use assert_cmd::Command;

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `bench sweep` on `scenario` (written into a temporary folder) and returns the `all` row.
fn sweep(name: &str, scenario: &str) -> HashMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.toml"));
    std::fs::write(&file, scenario).unwrap();
    let out = Command::cargo_bin("bench")
        .unwrap()
        .args(["sweep", "--quiet", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    all_row(&dir.path().join("results.csv"))
}

fn all_row(csv_path: &Path) -> HashMap<String, String> {
    let mut r = csv::Reader::from_path(csv_path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let all = rows
        .iter()
        .find(|r| &r[header.iter().position(|h| h == "model").unwrap()] == "all")
        .unwrap();
    header
        .into_iter()
        .zip(all.iter().map(String::from))
        .collect()
}

fn num(row: &HashMap<String, String>, k: &str) -> f64 {
    row[k]
        .parse()
        .unwrap_or_else(|_| panic!("{k} = {:?}", row[k]))
}

#[test]
fn md1_mean_wait_matches_pollaczek_khinchine() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The transport cost with no queueing: one request at a time.
    let base = sweep(
        "base",
        "[[model]]\nname = \"svc\"\nsynthetic = { service = \"fixed\", mean = \"4ms\", wait = \"sleep\" }\n\
         [workload]\nwarmup_requests = 20\nrequests = 300\n",
    );
    let overhead_us = num(&base, "service_mean_us") - num(&base, "compute_mean_us");

    // 125 requests/s into a 4 ms server: utilisation about 0.5.
    let open = sweep(
        "md1",
        "seed = 3\n[[model]]\nname = \"svc\"\nsynthetic = { service = \"fixed\", mean = \"4ms\", wait = \"sleep\" }\n\
         [load]\nkind = \"open\"\nrate = 125\narrival = \"poisson\"\n\
         [workload]\nwarmup_requests = 20\nduration = \"40s\"\n",
    );
    let d = num(&open, "compute_mean_us"); // the service time as the worker really delivered it
    let lambda = num(&open, "throughput_rps") / 1e6; // per µs
    let rho = lambda * d;
    let theory_us = rho * d / (2.0 * (1.0 - rho));
    // Waiting time starts when the request reaches the queue: the actual send. The generator's own
    // lateness (send lag) is reported and judged separately.
    let measured_us = num(&open, "service_mean_us") - d - overhead_us;
    eprintln!(
        "M/D/1: rho {rho:.3}, D {d:.0} µs, transport {overhead_us:.0} µs, mean wait measured {measured_us:.0} µs, \
         Pollaczek-Khinchine {theory_us:.0} µs, mean send lag {} µs, lagged sends {}%",
        open["send_lag_mean_us"], open["lagged_sends_pct"]
    );
    assert!((0.4..0.6).contains(&rho), "utilisation {rho}");
    let err = (measured_us - theory_us).abs() / theory_us;
    assert!(
        err < 0.15,
        "mean wait {measured_us:.0} µs vs theory {theory_us:.0} µs: {:.1}% off",
        err * 100.0
    );
}

#[test]
fn a_stall_shows_in_open_loop_latency_but_not_in_compute_or_a_closed_loop() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let model = "[[model]]\nname = \"svc\"\n\
                 synthetic = { service = \"fixed\", mean = \"1ms\", wait = \"sleep\", stall = { after = \"2s\", pause = \"500ms\" } }\n";
    let open = sweep(
        "stall_open",
        &format!(
            "seed = 5\n{model}[load]\nkind = \"open\"\nrate = 100\n[workload]\nwarmup_requests = 0\nduration = \"6s\"\n"
        ),
    );
    // About 50 of 600 requests arrive during the pause; those at its start wait close to 500 ms, so
    // the worst 1% (6 requests) all waited more than 400 ms.
    let p99_ms = num(&open, "latency_p99_us") / 1e3;
    let compute_p99_ms = num(&open, "compute_p99_us") / 1e3;
    eprintln!(
        "open loop: latency p99 {p99_ms:.1} ms, max {:.1} ms, compute p99 {compute_p99_ms:.2} ms",
        num(&open, "latency_max_us") / 1e3
    );
    assert!(
        p99_ms > 350.0,
        "open-loop p99 {p99_ms} ms does not show the 500 ms stall"
    );
    assert!(num(&open, "latency_max_us") / 1e3 > 450.0);
    assert!(
        compute_p99_ms < 20.0,
        "compute p99 {compute_p99_ms} ms: the stall is outside compute"
    );

    let closed = sweep(
        "stall_closed",
        &format!(
            "{model}[load]\nconcurrency = 1\n[workload]\nwarmup_requests = 0\nduration = \"6s\"\n"
        ),
    );
    // One request waits out the pause; the thousands of others do not.
    let closed_p99_ms = num(&closed, "latency_p99_us") / 1e3;
    eprintln!(
        "closed loop: latency p99 {closed_p99_ms:.1} ms, max {:.1} ms",
        num(&closed, "latency_max_us") / 1e3
    );
    assert!(closed_p99_ms < 50.0, "closed-loop p99 {closed_p99_ms} ms");
    assert!(
        num(&closed, "latency_max_us") / 1e3 > 450.0,
        "the one stalled request is still the maximum"
    );
}
