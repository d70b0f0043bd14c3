//! Transfer modes and placements, end to end on the bundled models.
//!
//! - Every transfer mode gives bit-identical outputs for the same sample (the pool is driven directly,
//!   with the real `bench` binary as its workers).
//! - Sweeps over transfer × placement run and report what the CSV promises.
//! - A worker killed in `shm` mode leaves no shared-memory segment behind.
//! - On-demand placement under a cap of one model evicts and reports cold starts apart.
//! - The spin channel runs every transfer mode and placement, and `bench calibrate` measures it
//!   beside the socket.

use std::path::Path;

use crate::common;

use crate::common::{is_gone, models_path};
use bench::scenario::{self, Channel, Runtime};

/// Three bundled models of different input kinds, as scenario text.
fn three_models() -> String {
    let m = models_path();
    format!(
        "[[model]]\nname = \"linear\"\npath = \"{m}/linear.onnx\"\ndims = {{ batch = 1 }}\n\
         [[model]]\nname = \"mlp\"\npath = \"{m}/mlp.onnx\"\ndims = {{ batch = 1 }}\n\
         [[model]]\nname = \"mixed\"\npath = \"{m}/mixed_inputs.onnx\"\ndims = {{ batch = 2 }}\n"
    )
}

#[test]
fn every_transfer_mode_gives_bit_identical_outputs_over_either_channel() {
    let s = scenario::load(Path::new("tests/scenarios/small.toml")).unwrap();
    let (runtime, socket) = common::assert_transfers_agree_over(&s, Runtime::Ort, Channel::Socket);
    assert!(runtime.starts_with("ORT Build Info"), "{runtime}");
    let (_, spin) = common::assert_transfers_agree_over(&s, Runtime::Ort, Channel::Spin);
    assert!(socket == spin, "the spin channel changes no output byte");
}

#[test]
fn pinning_is_a_sweep_axis_recorded_in_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let common::Run { code, stderr, rows } = common::sweep_in(
        dir.path(),
        "[[model]]\nname = \"m\"\nsynthetic = { mean = \"100us\", wait = \"sleep\" }\n\
         [workload]\nwarmup_requests = 0\nrequests = 200\n[load]\nconcurrency = 2\n[sweep]\nworkers = 2\npin = [\"none\", \"cores\"]\n",
        &[],
    );
    common::assert_ok_timing_aside(code, &rows, &stderr);
    let pins: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r["model"] == "all")
        .map(|r| (r["point_id"].as_str(), r["pin"].as_str()))
        .collect();
    assert_eq!(
        pins,
        [
            ("w2-t1-pipe-cpu-c2", "none"),
            ("w2-t1-pipe-pin-cpu-c2", "cores")
        ]
    );
}

/// The CPUs process `pid` may run on, as /proc writes them (`2`, `0-3`, `0,2`).
fn cpus_allowed_list(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Regression: `pin = "cores"` pinned worker `w` to CPU `w`, outside the CPU set the process was
/// given (`taskset`, a cgroup cpuset, the Kubernetes CPU manager). Run under one CPU, the highest
/// this test may use, every worker stays on it.
#[test]
fn pinned_workers_stay_inside_the_cpus_bench_was_given() {
    // It starts `bench` itself: its turn to load the machine (`common::shared`).
    let _turn = common::shared();
    let allowed = bench::sweep::setup::allowed_cpus();
    let only = *allowed.last().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "[[model]]\nname = \"m\"\nsynthetic = { mean = \"1ms\", wait = \"sleep\" }\n\
         [workload]\nwarmup_requests = 0\nduration = \"2s\"\n[load]\nconcurrency = 2\n\
         [sweep]\nworkers = 2\npin = \"cores\"\n",
    )
    .unwrap();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("bench"));
    cmd.args(["sweep", "--quiet", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between `fork` and `exec`; it calls only
    // `sched_setaffinity` (a system call, async-signal-safe) on a set built before the fork, and
    // allocates nothing.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit of the set, an index below CPU_SETSIZE (a CPU this test has).
    unsafe { libc::CPU_SET(only as usize, &mut set) };
    unsafe {
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    let workers = common::wait_for_children(child.id(), 2);
    assert_eq!(workers.len(), 2, "two workers started");
    // A worker pins itself before it answers its setup: once it serves, its mask is final.
    assert!(common::wait_until_served(
        &workers,
        common::SYNTHETIC_SERVING
    ));
    let seen: Vec<String> = workers.iter().map(|&w| cpus_allowed_list(w)).collect();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rows = common::read_rows(&dir.path().join("out/results.csv"));
    // Two workers on one CPU: the verdict may be the lag of a loaded machine.
    common::assert_ok_timing_aside(out.status.code().unwrap_or(-1), &rows, &stderr);
    for (w, list) in workers.iter().zip(&seen) {
        assert!(
            list.is_empty() || *list == only.to_string(),
            "worker {w} may run on CPUs {list}, outside the CPU {only} bench was given"
        );
    }
    assert!(seen.iter().any(|l| !l.is_empty()), "a worker was seen");
}

/// Entries of /dev/shm.
fn dev_shm() -> std::collections::BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn on_demand_with_a_cap_of_one_evicts_and_counts_cold_starts_apart() {
    let dir = tempfile::tempdir().unwrap();
    let models = "[[model]]\nname = \"a\"\nsynthetic = { mean = \"100us\", wait = \"sleep\" }\n\
                  [[model]]\nname = \"b\"\nsynthetic = { mean = \"100us\", wait = \"sleep\" }\n";
    let scenario = format!(
        "{models}[on_demand]\nmax_models = 1\n[workload]\nwarmup_requests = 0\nrequests = 200\nmin_requests = 10\n\
         [sweep]\nplacement = \"on-demand\"\n"
    );
    let common::Run { code, stderr, rows } = common::sweep_in(dir.path(), &scenario, &[]);
    common::assert_ok_timing_aside(code, &rows, &stderr);
    let all = rows.iter().find(|r| r["model"] == "all").unwrap();
    let cold: u64 = all["cold_starts"].parse().unwrap();
    let ok: u64 = all["requests"].parse().unwrap();
    // One worker holding one of two models, with requests mixed at random: about half the requests
    // switch models and load again.
    assert!(cold > 40, "cold starts: {cold}");
    assert_eq!(
        ok + cold,
        200,
        "every request is either steady-state or a cold start"
    );
    assert!(all["cold_start_max_ms"].parse::<f64>().unwrap() > 0.0);
    // Steady-state latency never includes a load.
    assert_eq!(
        all["first_runs"], "0",
        "a cold start is counted as such, not as a first run"
    );

    // Without a cap each model loads once (each run in a folder of its own).
    let scenario = scenario.replace("max_models = 1\n", "max_models = 2\n");
    let uncapped = dir.path().join("uncapped");
    std::fs::create_dir(&uncapped).unwrap();
    let common::Run { code, stderr, rows } = common::sweep_in(&uncapped, &scenario, &[]);
    common::assert_ok_timing_aside(code, &rows, &stderr);
    assert_eq!(
        rows.iter().find(|r| r["model"] == "all").unwrap()["cold_starts"],
        "2"
    );

    // A memory budget smaller than any model keeps one model at a time, like a cap of one.
    let m = models_path();
    let scenario = format!(
        "[[model]]\nname = \"linear\"\npath = \"{m}/linear.onnx\"\ndims = {{ batch = 1 }}\n\
         [[model]]\nname = \"mlp\"\npath = \"{m}/mlp.onnx\"\ndims = {{ batch = 1 }}\n\
         [on_demand]\nmemory_budget_mib = 0.001\n[workload]\nwarmup_requests = 0\nrequests = 100\nmin_requests = 10\n\
         [sweep]\nplacement = \"on-demand\"\n"
    );
    let budget = dir.path().join("budget");
    std::fs::create_dir(&budget).unwrap();
    let common::Run { code, stderr, rows } = common::sweep_in(&budget, &scenario, &[]);
    common::assert_ok_timing_aside(code, &rows, &stderr);
    let cold: u64 = rows.iter().find(|r| r["model"] == "all").unwrap()["cold_starts"]
        .parse()
        .unwrap();
    assert!(cold > 10, "a tiny memory budget evicts: {cold} cold starts");
}

/// Regression: `bench calibrate` worked only from the repository root, where its default model
/// `models/onnx/linear.onnx` is; that model is now built into bench.
#[test]
fn calibrate_runs_from_any_folder() {
    let _turn = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("bench")
        .unwrap()
        .args(["calibrate", "--iterations", "30"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("in_process"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "it writes nothing here"
    );
}

/// `bench calibrate`: the floor loops, the spin channel's included, run side by side in one run.
#[test]
fn calibrate_measures_every_loop_the_spin_channel_included() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("floor.csv");
    let out = common::bench(&[
        "calibrate",
        "--iterations",
        "300",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = common::read_rows(&csv);
    let loops: Vec<&str> = rows.iter().map(|r| r["loop_name"].as_str()).collect();
    assert_eq!(
        loops,
        [
            "in_process",
            "socket_rtt",
            "spin_rtt",
            "pool",
            "pool_overhead",
            "pool_spin",
            "pool_spin_overhead"
        ]
    );
    let p50 = |name: &str| -> f64 {
        rows.iter().find(|r| r["loop_name"] == name).unwrap()["p50_us"]
            .parse()
            .unwrap()
    };
    for r in &rows {
        assert_eq!(r["iterations"], "300", "{}", r["loop_name"]);
        let v = p50(&r["loop_name"]);
        assert!(v.is_finite() && v > 0.0, "{}: {v}", r["loop_name"]);
    }
    // A latency includes its overhead, whatever the machine's speed.
    assert!(p50("pool_overhead") <= p50("pool"));
    assert!(p50("pool_spin_overhead") <= p50("pool_spin"));
    assert!(
        out.stdout.contains("(spin)"),
        "the console names the spin ratio: {}",
        out.stdout
    );
}

/// The tests that measure time: they take `common::exclusive()`, and `scripts/test.sh` runs them
/// by themselves after the others (`-- ::alone::`).
mod alone {
    use super::*;

    /// The spin channel with every transfer mode and placement, spinning even on more threads than
    /// CPUs: every point runs valid and error-free and says which channel it used.
    #[test]
    fn the_spin_channel_runs_every_transfer_mode_and_placement() {
        let _heavy = common::exclusive();
        let dir = tempfile::tempdir().unwrap();
        let scenario = format!(
            "{}\
         [workload]\nwarmup_requests = 20\nrequests = 150\n[load]\nconcurrency = 2\n\
         [transfer]\nspin = \"always\"\nspin_max_us = 100\n\
         [replicas]\nlinear = 1\nmlp = 1\nmixed = 1\n\
         [sweep]\nworkers = 3\nchannel = \"spin\"\ntransfer = [\"pipe\", \"shm\", \"index\"]\n\
         placement = [\"replicate\", \"partition\", \"dedicated\", \"on-demand\", \"replicas\"]\n",
            three_models()
        );
        let common::Run { code, stderr, rows } = common::sweep_in(dir.path(), &scenario, &[]);
        common::assert_ok_timing_aside(code, &rows, &stderr);
        let alls: Vec<_> = rows.iter().filter(|r| r["model"] == "all").collect();
        assert_eq!(alls.len(), 3 * 5);
        for r in &alls {
            let id = &r["point_id"];
            assert!(id.contains("-spin-"), "{id}");
            assert_eq!(r["channel"], "spin", "{id}");
            common::assert_valid_timing_aside(r);
            assert_eq!(r["errors"], "0", "{id}");
            // 150 sent; first runs and on-demand cold starts are not steady-state requests.
            let steady: u64 = r["requests"].parse().unwrap();
            assert!(steady >= 100, "{id}: {steady}");
        }
    }

    #[test]
    fn sweeps_over_transfer_and_placement_report_what_they_ran() {
        // Exclusive: 21 points of 2 or 3 ONNX Runtime workers, the heaviest test of this module; it
        // would starve the kill below of the time it has.
        let _heavy = common::exclusive();
        let dir = tempfile::tempdir().unwrap();
        let scenario = format!(
            "{}\
         [workload]\nwarmup_requests = 30\nrequests = 200\n[load]\nconcurrency = 2\n\
         [sweep]\nworkers = [2, 3]\ntransfer = [\"pipe\", \"shm\", \"index\"]\n\
         placement = [\"replicate\", \"partition\", \"dedicated\", \"on-demand\"]\n",
            three_models()
        );
        let common::Run { code, stderr, rows } = common::sweep_in(dir.path(), &scenario, &[]);
        common::assert_ok_timing_aside(code, &rows, &stderr);
        let alls: Vec<_> = rows.iter().filter(|r| r["model"] == "all").collect();
        // 2 worker counts × 3 transfers × 4 placements, less dedicated with 2 workers for 3 models.
        assert_eq!(alls.len(), 2 * 3 * 4 - 3);
        for r in &alls {
            let id = &r["point_id"];
            common::assert_valid_timing_aside(r);
            assert_eq!(r["errors"], "0", "{id}");
            let staging = if r["transfer"] == "index" {
                "once"
            } else {
                "per_request"
            };
            assert_eq!(r["input_staging"], staging, "{id}");
            let workers: usize = r["workers"].parse().unwrap();
            assert_eq!(r["rss_per_worker_mib"].split(';').count(), workers, "{id}");
            let per_worker: f64 = r["rss_per_worker_mib"]
                .split(';')
                .map(|v| v.parse::<f64>().unwrap())
                .sum();
            assert!(
                (per_worker - r["rss_mib"].parse::<f64>().unwrap()).abs() < 0.5,
                "{id}: the total is the sum"
            );
            let cold: u64 = r["cold_starts"].parse().unwrap();
            if r["placement"] == "on-demand" {
                assert!(
                    cold >= 3,
                    "{id}: every model was loaded on demand at least once"
                );
            } else {
                assert_eq!(cold, 0, "{id}");
            }
        }
        assert!(
            alls.iter()
                .any(|r| r["placement"] == "dedicated" && r["workers"] == "3")
        );
        let cores = std::thread::available_parallelism().unwrap().get();
        for r in &alls {
            let threads: usize = r["workers"].parse::<usize>().unwrap()
                * r["intra_threads"].parse::<usize>().unwrap();
            assert_eq!(
                r["oversubscribed"],
                (threads > cores).to_string(),
                "{}",
                r["point_id"]
            );
        }
        if alls.iter().any(|r| r["oversubscribed"] == "true") {
            assert!(
                stderr.contains("exceed the") && stderr.contains("logical cores"),
                "{stderr}"
            );
        }
    }

    #[test]
    fn a_worker_killed_in_shm_mode_leaves_no_shared_memory_behind() {
        // Exclusive: the kill must land inside the 3 s point, after the worker serves, so that the lost
        // requests show; a starved machine can push it past the end.
        let _heavy = common::exclusive();
        let dir = tempfile::tempdir().unwrap();
        let before = dev_shm();
        let m = models_path();
        let (run, workers) = common::kill_a_worker(
            dir.path(),
            &format!(
                "[[model]]\nname = \"mlp\"\npath = \"{m}/mlp.onnx\"\ndims = {{ batch = 1 }}\n\
             [workload]\nwarmup_requests = 0\nduration = \"3s\"\n[load]\nconcurrency = 2\n\
             [sweep]\nworkers = 2\ntransfer = \"shm\"\n"
            ),
            common::ONNX_SERVING,
            "shm",
        );
        // The lost worker's requests are errors, the point goes on with the other one, and is invalid.
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains("worker_lost"), "{}", run.stderr);
        assert_eq!(
            dev_shm(),
            before,
            "no shared-memory segment is left in /dev/shm"
        );
        for w in workers {
            assert!(is_gone(w), "worker {w} still runs");
        }
    }
}
