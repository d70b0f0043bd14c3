//! Reliability: worker crashes and hangs during a run. Every request sent is accounted for, the
//! failed worker is replaced, and the run goes on.

use crate::common;

use crate::common::{Run, assert_accounted, children};

/// What a worker killed mid-point ([`common::kill_a_worker`]) leaves, whatever the case: the point
/// invalid (exit 1) for its lost requests (`worker_lost`), the worker replaced once, and every
/// request sent counted once.
fn assert_lost_and_replaced_once(run: &Run, what: &str) {
    assert_eq!(
        run.code, 1,
        "{what}: the lost requests make the point invalid: {}",
        run.stderr
    );
    assert!(run.stderr.contains("worker_lost"), "{what}: {}", run.stderr);
    // Regression: the message was "the worker closed its connection" or "Connection reset by
    // peer", not how the worker ended.
    assert!(
        run.stderr.contains("killed by SIGKILL"),
        "{what}: {}",
        run.stderr
    );
    assert_eq!(run.num("all", "worker_restarts"), 1.0, "{what}");
    assert_accounted(run);
}

/// Starts a sweep of `scenario` into `dir`, waits until `points` points are written, sends `signal`
/// and returns the exit code.
fn interrupt_after(
    dir: &std::path::Path,
    scenario: &std::path::Path,
    points: usize,
    signal: i32,
) -> Option<i32> {
    let mut child = common::spawn_sweep(scenario, dir);
    let written =
        common::wait_for(|| Some(()).filter(|_| common::points_written(dir).len() >= points));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let code = child.wait().unwrap().code();
    assert!(written.is_some(), "{points} point(s) were written");
    code
}

#[test]
fn sigterm_then_resume_completes_the_sweep_and_keeps_finished_points() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "[[model]]\nname = \"m\"\nsynthetic = { mean = \"200us\", wait = \"sleep\" }\n\
         [workload]\nwarmup_requests = 0\nduration = \"500ms\"\nmin_requests = 10\n[load]\nconcurrency = [1, 2, 3, 4]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    assert_eq!(
        interrupt_after(&out, &scenario, 1, libc::SIGTERM),
        Some(143)
    );
    let before = common::read_rows(&out.join("results.csv"));
    let kept: std::collections::BTreeSet<String> =
        before.iter().map(|r| r["point_id"].clone()).collect();
    assert!((1..4).contains(&kept.len()), "{kept:?}");

    let resume = || {
        common::bench(&[
            "sweep",
            "--quiet",
            "--scenario",
            scenario.to_str().unwrap(),
            "--resume",
            out.to_str().unwrap(),
        ])
    };
    let resumed = resume();
    let after = common::read_rows(&out.join("results.csv"));
    // The points of 500 ms are timed: on a loaded machine one may be invalid for its lag.
    common::assert_ok_timing_aside(resumed.code, &after, &resumed.stderr);
    let ids: Vec<String> = after
        .iter()
        .filter(|r| r["model"] == "all")
        .map(|r| r["point_id"].clone())
        .collect();
    assert_eq!(
        ids,
        [
            "w1-t1-pipe-cpu-c1",
            "w1-t1-pipe-cpu-c2",
            "w1-t1-pipe-cpu-c3",
            "w1-t1-pipe-cpu-c4"
        ]
    );
    // The points finished before the interruption are kept as they were, not measured again.
    assert_eq!(&after[..before.len()], &before[..]);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(meta["points_done"], 4);
    assert_eq!(meta["interrupted"], false);

    // Another scenario cannot be resumed into these results.
    std::fs::write(
        &scenario,
        "[[model]]\nname = \"m\"\nsynthetic = { mean = \"1ms\" }\n",
    )
    .unwrap();
    let other = resume();
    assert_eq!(other.code, 2);
    assert!(other.stderr.contains("different scenario file"));
}

#[test]
fn soak_killing_a_random_worker_every_2s_for_60s_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "[[model]]\nname = \"m\"\nsynthetic = { mean = \"1ms\", wait = \"sleep\" }\n\
         [load]\nkind = \"open\"\nrate = 200\n\
         [workload]\nwarmup_requests = 0\nduration = \"60s\"\n[sweep]\nworkers = 3\n",
    )
    .unwrap();
    let child = common::spawn_sweep(&file, dir.path());
    let pid = child.id();
    let killer = std::thread::spawn(move || {
        let mut kills = 0;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        // The first kill waits until the point runs (a worker serves), not for a delay: a worker
        // killed while the pool starts fails the start, and the sweep with it.
        let workers = common::wait_for_children(pid, 3);
        if workers.len() < 3 || !common::wait_until_served(&workers, common::SYNTHETIC_SERVING) {
            return kills;
        }
        for _ in 0..28 {
            let workers = children(pid);
            if !workers.is_empty() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // SAFETY: signalling a worker process of our own child.
                unsafe { libc::kill(workers[(x % workers.len() as u64) as usize], libc::SIGKILL) };
                kills += 1;
            }
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
        kills
    });
    let out = child.wait_with_output();
    let kills = killer.join().unwrap();
    let run = Run::of(&out, dir.path());
    assert_eq!(
        run.code, 1,
        "the sweep completes; its lost requests make the point invalid: {}",
        run.stderr
    );
    assert!(kills >= 25, "{kills} kills");
    let restarts = run.num("all", "worker_restarts");
    assert!(
        restarts >= f64::from(kills - 2) && restarts <= f64::from(kills),
        "{restarts} restarts for {kills} kills"
    );
    assert!(
        run.num("all", "requests") > 10_000.0,
        "{}",
        run.num("all", "requests")
    );
    assert_accounted(&run);
}

/// When `interrupts_at_any_moment_keep_finished_points_and_leave_no_worker` sends its signal: each
/// moment is an event of the run, never a delay, so it is the same moment on any machine.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// As soon as `bench` runs: maybe before its handler is in place, before it has started anything.
    Start,
    /// While the first point's workers serve its requests.
    Serving,
    /// Once two points are written and the third point's workers have started.
    ThirdPoint,
}

#[test]
fn interrupts_at_any_moment_keep_finished_points_and_leave_no_worker() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "[[model]]\nname = \"m\"\nsynthetic = { mean = \"200us\", wait = \"sleep\" }\n\
         [workload]\nwarmup_requests = 0\nduration = \"700ms\"\nmin_requests = 10\n[load]\nconcurrency = [1, 2, 3]\n[sweep]\nworkers = 2\n",
    )
    .unwrap();
    for (moment, points, signal, code) in [
        (Moment::Start, 0, libc::SIGINT, 130),
        (Moment::Serving, 0, libc::SIGTERM, 143),
        (Moment::ThirdPoint, 2, libc::SIGINT, 130),
    ] {
        let out = dir.path().join(format!("{moment:?}"));
        let mut child = common::spawn_sweep(&scenario, &out);
        let pid = child.id();
        // Every worker seen, to check that none outlives `bench`.
        let mut seen_workers: Vec<i32> = Vec::new();
        let reached = match moment {
            Moment::Start => true,
            Moment::Serving => {
                let workers = common::wait_for_children(pid, 2);
                seen_workers.extend(&workers);
                workers.len() == 2 && common::wait_until_served(&workers, common::SYNTHETIC_SERVING)
            }
            Moment::ThirdPoint => {
                // The workers of the first two points: children listed before the second point was
                // written (the rows are read after the children). Each of them lives for a whole
                // point, listed every 10 ms, so none is missed; a child not among them belongs to
                // the third point.
                let mut earlier = Vec::new();
                let written = common::wait_for(|| {
                    let now = children(pid);
                    seen_workers.extend(&now);
                    if common::points_written(&out).len() >= 2 {
                        return Some(());
                    }
                    earlier.extend(now);
                    None
                });
                written.is_some()
                    && common::wait_for(|| {
                        let now = children(pid);
                        seen_workers.extend(&now);
                        now.into_iter().find(|w| !earlier.contains(w))
                    })
                    .is_some()
            }
        };
        seen_workers.extend(children(pid));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, signal) };
        let status = child.wait().unwrap();
        // A signal that lands before bench has installed its handler ends it the default way, which a
        // shell also reports as 128 + signal.
        let reported = status
            .code()
            .or_else(|| std::os::unix::process::ExitStatusExt::signal(&status).map(|s| 128 + s));
        assert!(reached, "{moment:?}: the moment came");
        assert_eq!(reported, Some(code), "{moment:?}");
        for w in seen_workers {
            assert!(
                common::is_gone(w),
                "{moment:?}: worker {w} was left running"
            );
        }
        let rows = common::read_rows(&out.join("results.csv"));
        let done: std::collections::BTreeSet<String> =
            rows.iter().map(|r| r["point_id"].clone()).collect();
        assert!(
            done.len() >= points && done.len() < 3,
            "{moment:?}: {done:?}"
        );
        let Ok(json) = std::fs::read(out.join("run.json")) else {
            // The signal came before bench had started anything (or installed its handler).
            assert!(done.is_empty(), "{moment:?}");
            continue;
        };
        let meta: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(meta["interrupted"], true, "{moment:?}");
        assert_eq!(
            meta["points_done"].as_u64().unwrap() as usize,
            done.len(),
            "{moment:?}"
        );
        if let Some(dropped) = meta["dropped_point"].as_str() {
            assert!(
                !done.contains(dropped),
                "{moment:?}: a dropped point is not reported"
            );
        }
        // A point whose workers had started when the signal came is the one dropped (the first one
        // unless it finished before the signal; the third cannot have: it lasts 700 ms).
        let started = match moment {
            Moment::Start => None,
            Moment::Serving => done.is_empty().then_some("w2-t1-pipe-cpu-c1"),
            Moment::ThirdPoint => Some("w2-t1-pipe-cpu-c3"),
        };
        if let Some(id) = started {
            assert_eq!(meta["dropped_point"], id, "{moment:?}");
        }
    }
}

#[test]
fn a_model_that_fails_to_load_stops_the_run_naming_worker_model_and_reason() {
    // An ONNX file that parses but names an operator ONNX Runtime does not have.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read("models/onnx/linear.onnx").unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"Gemm" || w == b"MatM")
        .expect("an op type to break");
    bytes[at..at + 4].copy_from_slice(b"Zzzz");
    let broken = dir.path().join("broken.onnx");
    std::fs::write(&broken, &bytes).unwrap();
    let run = common::sweep_in(
        dir.path(),
        &format!(
            "[[model]]\nname = \"broken\"\npath = \"{}\"\ndims = {{ batch = 1 }}\n",
            broken.display()
        ),
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("worker 0 could not load model `broken`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Zzzz"),
        "ONNX Runtime's own message is shown: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    // Nothing was measured: no header-only results are left to refuse the fixed run's folder.
    for f in ["results.csv", "run.json"] {
        assert!(!dir.path().join(f).exists(), "{f}: {}", run.stderr);
    }
    assert!(dir.path().join("s.toml").exists(), "the user's files stay");
}

#[test]
fn a_worker_that_speaks_garbage_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake-worker");
    // Started as `fake-worker worker --id N --fd FD`: writes garbage on the socket and exits.
    std::fs::write(
        &fake,
        "#!/bin/sh\nexec python3 -c 'import os, sys, time; os.write(int(sys.argv[1]), b\"\\xff\\xff\\xff\\x7fgarbage\"); time.sleep(1)' \"$5\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "[[model]]\nname = \"m\"\nsynthetic = { mean = \"1ms\" }\n",
    )
    .unwrap();
    let out = assert_cmd::Command::cargo_bin("bench")
        .unwrap()
        .env("BENCH_WORKER_EXE", &fake)
        .args(["sweep", "--quiet", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("frame of") && stderr.contains("exceeds"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The tests that measure time: they take `common::exclusive()`, and `scripts/test.sh` runs them
/// by themselves after the others (`-- ::alone::`).
mod alone {
    use super::*;

    #[test]
    fn a_killed_worker_is_replaced_in_every_transfer_mode_and_nothing_is_lost() {
        // Exclusive: a closed loop of 4 at 500 µs is thousands of requests a second (CPU-heavy), and
        // the kill must land inside the 3 s point, with two seconds of it left to count requests in.
        let _heavy = common::exclusive();
        // The spin channel spins here even with more threads than CPUs (`spin = "always"`), so the
        // kill lands on a side that may be spinning, not only on one parked on the socket.
        for (mode, channel) in [
            ("pipe", "socket"),
            ("shm", "socket"),
            ("index", "socket"),
            ("pipe", "spin"),
            ("shm", "spin"),
            ("index", "spin"),
        ] {
            let transfer = format!("{mode} over {channel}");
            let dir = tempfile::tempdir().unwrap();
            let (run, _) = common::kill_a_worker(
                dir.path(),
                &format!(
                    "[[model]]\nname = \"m\"\nsynthetic = {{ mean = \"500us\", wait = \"sleep\" }}\n\
                 [workload]\nwarmup_requests = 0\nduration = \"3s\"\n[load]\nconcurrency = 4\n\
                 [transfer]\nspin = \"always\"\n\
                 [sweep]\nworkers = 2\ntransfer = \"{mode}\"\nchannel = \"{channel}\"\n"
                ),
                common::SYNTHETIC_SERVING,
                &transfer,
            );
            assert_lost_and_replaced_once(&run, &transfer);
            assert!(run.num("all", "restart_ms_max") > 0.0, "{transfer}");
            assert!(run.num("all", "errors") >= 1.0, "{transfer}");
            // The killed worker's CPU time went with it: the workers' cost is unknown, not low.
            let all = run.row("all");
            assert_eq!(
                (
                    all["worker_cpu_us_per_req"].as_str(),
                    all["cores_used"].as_str()
                ),
                ("", ""),
                "{transfer}"
            );
            assert!(run.num("all", "parent_cpu_us_per_req") > 0.0, "{transfer}");
            assert!(
                run.stderr.contains("the workers' CPU time is unknown"),
                "{transfer}: {}",
                run.stderr
            );
            // The point went on after the replacement: requests kept completing for two more seconds.
            assert!(
                run.num("all", "requests") > 1000.0,
                "{transfer}: {}",
                run.num("all", "requests")
            );
        }
    }

    /// A worker that runs two requests at once (`worker_concurrency = 2`) is killed with both in
    /// flight, and more queued on its socket: every one of them fails as `worker_lost`, none hangs, the
    /// worker is replaced and the point goes on; every request sent is still counted once.
    #[test]
    fn a_killed_worker_with_concurrent_requests_in_flight_loses_them_all_and_nothing_hangs() {
        let _heavy = common::exclusive();
        for transfer in ["pipe", "shm"] {
            let dir = tempfile::tempdir().unwrap();
            let started = std::time::Instant::now();
            let (run, _) = common::kill_a_worker(
                dir.path(),
                &format!(
                    "[[model]]\nname = \"m\"\nsynthetic = {{ mean = \"5ms\", wait = \"sleep\" }}\n\
                 [workload]\nwarmup_requests = 0\nduration = \"3s\"\n[load]\nconcurrency = 6\n\
                 [sweep]\nworkers = 2\nworker_concurrency = 2\ntransfer = \"{transfer}\"\n"
                ),
                common::SYNTHETIC_SERVING,
                transfer,
            );
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{transfer}: nothing waited for the lost replies"
            );
            assert_lost_and_replaced_once(&run, transfer);
            // Three requests were on the killed worker (6 in flight over 2 workers), two of them
            // running: all are lost, none is left pending.
            assert!(
                run.num("all", "errors") >= 2.0,
                "{transfer}: {}",
                run.stderr
            );
            assert!(run.num("all", "requests") > 100.0, "{transfer}");
            assert_eq!(run.row("all")["worker_concurrency"], "2");
        }
    }

    #[test]
    fn a_hung_worker_times_out_and_is_replaced() {
        // Exclusive: two hang-timeout-replace cycles (each a 300 ms hang, a 200 ms timeout and a worker
        // start) must fit in the 2 s point, which a starved worker start can stretch past.
        let _heavy = common::exclusive();
        for channel in ["socket", "spin"] {
            let run = common::sweep(
                &format!(
                    "[[model]]\nname = \"m\"\nsynthetic = {{ mean = \"200us\", wait = \"sleep\", hang_after = \"300ms\" }}\n\
                 [workload]\nwarmup_requests = 0\nduration = \"2s\"\nrequest_timeout = \"200ms\"\nreplace_after_timeouts = 2\n\
                 [load]\nconcurrency = 2\n[transfer]\nspin = \"always\"\n[sweep]\nchannel = \"{channel}\"\n"
                ),
                &[],
            );
            assert_eq!(run.code, 1, "{channel}: {}", run.stderr);
            assert!(
                run.stderr.contains("timeout error(s)"),
                "{channel}: {}",
                run.stderr
            );
            // The replacement hangs 300 ms after its own first request too, so it is replaced again.
            assert!(
                run.num("all", "worker_restarts") >= 2.0,
                "{channel}: {:?}",
                run.row("all")
            );
            assert!(run.row("all")["reason"].contains("failed request"));
            assert_eq!(run.row("all")["channel"], channel);
            assert_accounted(&run);
        }
    }

    /// SIGINT while the workers serve over the spinning channel: bench stops at once with 130, says
    /// the run was interrupted, and leaves no worker behind (a spinning worker, too, sees its parent
    /// go: the socket ends, and it dies with the parent).
    #[test]
    fn an_interrupt_during_a_spinning_point_leaves_no_worker() {
        let _heavy = common::exclusive();
        let dir = tempfile::tempdir().unwrap();
        let scenario = dir.path().join("s.toml");
        std::fs::write(
            &scenario,
            // The model sleeps, so a serving worker blocks and `wait_until_served` sees it (a worker
            // that spins on both the channel and its model would hardly ever block).
            "[[model]]\nname = \"m\"\nsynthetic = { mean = \"100us\", wait = \"sleep\" }\n\
             [workload]\nwarmup_requests = 0\nduration = \"5s\"\n[load]\nconcurrency = 2\n\
             [transfer]\nspin = \"always\"\n[sweep]\nworkers = 2\nchannel = \"spin\"\ntransfer = \"shm\"\n",
        )
        .unwrap();
        let out = dir.path().join("out");
        let started = std::time::Instant::now();
        let child = common::spawn_sweep(&scenario, &out);
        let pid = child.id();
        let workers = common::wait_for_children(pid, 2);
        assert_eq!(workers.len(), 2, "two workers started");
        assert!(
            common::wait_until_served(&workers, common::SYNTHETIC_SERVING),
            "they serve"
        );
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
        let out_put = child.wait_with_output();
        assert_eq!(
            out_put.status.code(),
            Some(130),
            "{}",
            String::from_utf8_lossy(&out_put.stderr)
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the interrupt did not wait for the 5 s point"
        );
        for w in workers {
            assert!(common::is_gone(w), "worker {w} was left running");
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
        assert_eq!(meta["interrupted"], true);
    }
}
