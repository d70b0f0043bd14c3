//! Reliability: worker crashes and hangs during a run. Every request sent is accounted for, the
//! failed worker is replaced, and the run goes on.

mod common;

use common::{Run, children, num};

/// `requests + errors + first_runs + cold_starts + warmup_requests == sent` on every row.
fn assert_accounted(run: &Run) {
    for r in &run.rows {
        let parts = [
            "requests",
            "errors",
            "first_runs",
            "cold_starts",
            "warmup_requests",
        ]
        .map(|k| num(r, k))
        .iter()
        .sum::<f64>();
        assert_eq!(
            parts,
            num(r, "sent"),
            "{} {}: every request sent is accounted for",
            r["point_id"],
            r["model"]
        );
    }
}

#[test]
fn a_killed_worker_is_replaced_in_every_transfer_mode_and_nothing_is_lost() {
    for transfer in ["pipe", "shm", "index"] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            format!(
                "[[model]]\nname = \"m\"\nsynthetic = {{ mean = \"500us\", wait = \"sleep\" }}\n\
                 [workload]\nwarmup_requests = 0\nduration = \"3s\"\n[load]\nconcurrency = 4\n\
                 [sweep]\nworkers = 2\ntransfer = \"{transfer}\"\n"
            ),
        )
        .unwrap();
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("bench"))
            .args(["sweep", "--quiet", "--scenario"])
            .arg(&file)
            .arg("--out")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        let mut workers = Vec::new();
        while workers.len() < 2 && start.elapsed() < std::time::Duration::from_secs(30) {
            std::thread::sleep(std::time::Duration::from_millis(50));
            workers = children(child.id());
        }
        assert_eq!(workers.len(), 2, "{transfer}: two workers started");
        std::thread::sleep(std::time::Duration::from_millis(1000));
        // SAFETY: signalling a worker process of our own child.
        unsafe { libc::kill(workers[1], libc::SIGKILL) };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stderr,
            rows: common::read_rows(&dir.path().join("results.csv")),
        };
        assert_eq!(
            run.code, 1,
            "{transfer}: the lost requests make the point invalid: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("worker_lost"),
            "{transfer}: {}",
            run.stderr
        );
        assert_eq!(run.num("all", "worker_restarts"), 1.0, "{transfer}");
        assert!(run.num("all", "restart_ms_max") > 0.0, "{transfer}");
        assert!(run.num("all", "errors") >= 1.0, "{transfer}");
        // The point went on after the replacement: requests kept completing for two more seconds.
        assert!(
            run.num("all", "requests") > 1000.0,
            "{transfer}: {}",
            run.num("all", "requests")
        );
        assert_accounted(&run);
    }
}

#[test]
fn a_hung_worker_times_out_and_is_replaced() {
    let run = common::sweep(
        "[[model]]\nname = \"m\"\nsynthetic = { mean = \"200us\", wait = \"sleep\", hang_after = \"300ms\" }\n\
         [workload]\nwarmup_requests = 0\nduration = \"2s\"\nrequest_timeout = \"200ms\"\nreplace_after_timeouts = 2\n\
         [load]\nconcurrency = 2\n",
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("timeout error(s)"), "{}", run.stderr);
    // The replacement hangs 300 ms after its own first request too, so it is replaced again.
    assert!(
        run.num("all", "worker_restarts") >= 2.0,
        "{:?}",
        run.row("all")
    );
    assert!(run.row("all")["reason"].contains("failed request"));
    assert_accounted(&run);
}

/// Starts a sweep of `scenario` into `dir`, waits until `points` points are written, sends `signal`
/// and returns the exit code.
fn interrupt_after(
    dir: &std::path::Path,
    scenario: &std::path::Path,
    points: usize,
    signal: i32,
) -> Option<i32> {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("bench"))
        .args(["sweep", "--quiet", "--scenario"])
        .arg(scenario)
        .arg("--out")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let csv = dir.join("results.csv");
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(60) {
        let ids: std::collections::HashSet<String> = common::read_rows(&csv)
            .into_iter()
            .map(|r| r["point_id"].clone())
            .collect();
        if ids.len() >= points {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    child.wait().unwrap().code()
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

    let resumed = assert_cmd::Command::cargo_bin("bench")
        .unwrap()
        .args(["sweep", "--quiet", "--scenario"])
        .arg(&scenario)
        .arg("--resume")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let after = common::read_rows(&out.join("results.csv"));
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
    let other = assert_cmd::Command::cargo_bin("bench")
        .unwrap()
        .args(["sweep", "--quiet", "--scenario"])
        .arg(&scenario)
        .arg("--resume")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr).contains("different scenario file"));
}
