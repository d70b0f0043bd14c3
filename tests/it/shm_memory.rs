//! The `shm` transfer with real exports (issue 13): outputs whose size is only known after running,
//! the arena's memory, its budget, and the parent's input copy.
//!
//! - A NonZero output (`[1, nnz]`, `tests/models/wild/nonzero.onnx`) comes back bit-identical to
//!   `pipe`, through the slot when it fits and inline when it outgrows its room (counted in
//!   `shm_inline_outputs`), in a closed and an open loop.
//! - The arena's slots are touched only when used: an open loop's 1,024 slots of 16 MiB output room
//!   leave the parent's and the workers' resident memory small.
//! - A closed loop with a 4.9 MB input is valid: the copy into the slot shows in `stage_*` and in
//!   service time, not as send lag.
//!
//! The validate error for a scenario whose arena cannot fit is a golden case in
//! `tests/bad_scenarios/shm_over_budget.toml`.

use std::path::Path;

use crate::common;

use bench::scenario::{self, Runtime};

fn wild(name: &str) -> String {
    std::fs::canonicalize(Path::new("tests/models/wild").join(name))
        .unwrap()
        .display()
        .to_string()
}

/// The NonZero model on 100,000 floats: `r` (400,000 bytes, sized by the input) and `idx`, about
/// 50,000 int64 indices whose count only running tells.
fn nonzero_scenario(extra: &str) -> String {
    format!(
        r#"
samples = 3

[[model]]
name = "nz"
path = "{}"
dims = {{ n = 100000 }}

[workload]
warmup = "0s"
min_requests = 1
{extra}
"#,
        wild("nonzero.onnx")
    )
}

/// With 1 MiB of budget, a slot holds the input and `r` (800,000 bytes) and leaves 248,576 bytes
/// for `idx`, which needs about 400,000: every reply falls back inline.
const TIGHT: &str = "\n[transfer]\nshm_budget_mib = 1\n";

#[test]
fn outputs_of_unknown_size_are_bit_identical_to_pipe_in_the_slot_or_inline() {
    for budget in ["", TIGHT] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, nonzero_scenario(budget)).unwrap();
        let s = scenario::load(&file).unwrap();
        common::assert_transfers_agree(&s, Runtime::Ort);
    }
}

/// Runs `bench sweep` on `scenario` in `dir` and returns its exit code and the parent's peak
/// resident memory in MiB (`VmHWM`, read until it exits: `parent_rss_mib` in run.json is taken
/// after each point, when its arena is gone).
fn sweep_with_peak_rss(dir: &Path, scenario: &str, extra: &[&str]) -> (i32, f64) {
    let file = dir.join("s.toml");
    std::fs::write(&file, scenario).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("bench"))
        .args(["sweep", "--quiet", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(dir)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0f64;
    loop {
        if let Some(kib) = std::fs::read_to_string(&status).ok().and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        }) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(code) = child.try_wait().unwrap() {
            return (code.code().unwrap_or(-1), peak_kib / 1024.0);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The tests that measure time: they take `common::exclusive()`, and `scripts/test.sh` runs them
/// by themselves after the others (`-- ::alone::`).
mod alone {
    use super::*;

    #[test]
    fn outputs_that_outgrow_their_room_come_back_inline_and_are_counted() {
        let _heavy = common::exclusive();
        let dir = tempfile::tempdir().unwrap();
        let s = nonzero_scenario(&format!(
            "{TIGHT}\n[sweep]\ntransfer = [\"pipe\", \"shm\"]\n"
        ));
        let run = common::sweep_in(dir.path(), &s, &["--requests", "30"]);
        run.assert_ok_timing_aside();
        for r in run.rows.iter().filter(|r| r["model"] == "nz") {
            assert_eq!(r["errors"], "0", "{r:?}");
            common::assert_valid_timing_aside(r);
            let inline = common::num(r, "shm_inline_outputs");
            match r["transfer"].as_str() {
                "shm" => assert_eq!(inline, common::num(r, "requests"), "{r:?}"),
                _ => assert_eq!(inline, 0.0, "{r:?}"),
            }
        }
    }

    /// Regression (issue 13): the parent and every worker populated 1,024 slots × 16 MiB of output
    /// room before any request (17 GB for one detector at 5 req/s). Now an open loop touches the slots
    /// its requests use, and outputs of unknown size fit their room without falling back. Before the
    /// fix, this scenario with `max_in_flight = 64` peaked at 1,094 MiB in the parent and ended at
    /// 1,113 MiB per worker; with 1,024 slots it would need 17 GB.
    #[test]
    fn an_open_loop_touches_only_the_slots_it_uses() {
        let _heavy = common::exclusive();
        let dir = tempfile::tempdir().unwrap();
        let s = nonzero_scenario(
            "\n[load]\nkind = \"open\"\nrate = 50\narrival = \"constant\"\n\n[sweep]\ntransfer = [\"pipe\", \"shm\"]\n",
        );
        let (code, parent_peak_mib) = sweep_with_peak_rss(dir.path(), &s, &["--duration", "1s"]);
        // 1: a loaded machine can make the generator lag; that is not what this test is about.
        assert!(code == 0 || code == 1, "exit code {code}");
        let rows = common::read_rows(&dir.path().join("results.csv"));
        let nz: Vec<_> = rows.iter().filter(|r| r["model"] == "nz").collect();
        assert_eq!(nz.len(), 2);
        for r in &nz {
            assert_eq!(r["errors"], "0", "{r:?}");
            assert!(common::num(r, "requests") >= 20.0, "{r:?}");
            assert_eq!(common::num(r, "shm_inline_outputs"), 0.0, "{r:?}");
            assert!(common::num(r, "rss_mib") < 300.0, "worker RSS: {r:?}");
        }
        // The old arena alone: 1,024 × (0.8 MB + 16 MiB).
        assert!(
            parent_peak_mib < 300.0,
            "parent peak RSS {parent_peak_mib} MiB"
        );
    }

    /// Regression (issue 13): the parent's copy of a 4.9 MB input into the slot counted as send lag,
    /// so every closed-loop `shm` point of a detector was invalid ("generator fell behind") while
    /// `pipe` was valid.
    #[test]
    fn a_large_input_copy_is_transfer_cost_not_send_lag() {
        let _heavy = common::exclusive();
        let scenario = format!(
            r#"
samples = 2

[[model]]
name = "detector"
path = "{}"
dims = {{ height = 640, width = 640 }}

[workload]
warmup = "0s"
min_requests = 1

[sweep]
transfer = ["pipe", "shm"]
"#,
            wild("big_input.onnx")
        );
        let run = common::sweep(&scenario, &["--requests", "100"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let row = |t: &str| {
            run.rows
                .iter()
                .find(|r| r["transfer"] == t && r["model"] == "all")
                .unwrap()
        };
        let (pipe, shm) = (row("pipe"), row("shm"));
        assert_eq!(shm["valid"], "true", "{shm:?}");
        assert_eq!(common::num(pipe, "stage_p50_us"), 0.0, "{pipe:?}");
        let stage = common::num(shm, "stage_p50_us");
        assert!(stage > 50.0, "copying 4.9 MB takes time: {shm:?}");
        assert!(common::num(shm, "lagged_sends_pct") <= 1.0, "{shm:?}");
        assert!(common::num(shm, "send_lag_p50_us") < stage, "{shm:?}");
        assert!(common::num(shm, "service_p50_us") >= stage, "{shm:?}");
    }
}
