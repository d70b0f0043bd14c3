//! `bench capacity` end to end with the synthetic runtime, where the answer is known in advance.

use crate::common;

use assert_cmd::Command;

/// One worker whose model spins for a fixed 1 ms: it cannot serve more than 1,000 requests/s.
const ONE_MS: &str = "name = \"one-ms\"\n[[model]]\nname = \"m\"\nsynthetic = { mean = \"1ms\", wait = \"spin\" }\n\
                      [workload]\nwarmup = \"200ms\"\n";

fn capacity(scenario: &str, extra: &[&str]) -> (i32, String, String, Vec<common::Row>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, scenario).unwrap();
    let mut cmd = Command::cargo_bin("bench").unwrap();
    cmd.args(["capacity", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .args(extra);
    // As in tests/it/queueing.rs: spin before sends, and hold CPU wake-ups short when allowed, so
    // open-loop sends keep time.
    cmd.args(["--spin", "2ms"]);
    if unsafe { libc::geteuid() } == 0 && std::path::Path::new("/dev/cpu_dma_latency").exists() {
        cmd.args(["--cpu-dma-latency", "0"]);
    }
    let _turn = common::shared();
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
        common::read_rows(&dir.path().join("capacity.csv")),
    )
}

#[test]
fn without_an_slo_it_exits_2_and_says_how_to_give_one() {
    let (code, _, err, _) = capacity(ONE_MS, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("capacity needs an SLO") && err.contains("--slo p99_ms=50"),
        "{err}"
    );
}

/// The tests that measure time: they take `common::exclusive()`, and `scripts/test.sh` runs them
/// by themselves after the others (`-- ::alone::`).
mod alone {
    use super::*;

    /// The answer of a 1-worker, 1 ms system is predictable: below 1,000 requests/s (the worker cannot
    /// do more), above 400 (at 40% utilisation the p99 of an M/D/1 queue is a few ms, far within 10 ms).
    ///
    /// On a busy 2-core test machine the generator may honestly fall behind its schedule. Such a probe
    /// is invalid and must fail, which can pull the answer below 400: then the lower bound is not
    /// checked, but everything else is.
    #[test]
    fn one_worker_with_a_1ms_service_time_takes_between_400_and_1000_per_second() {
        // Exclusive: a spinning worker and a spinning generator, and an answer that is a measured rate.
        let _heavy = common::exclusive();
        let (code, out, err, rows) = capacity(
            ONE_MS,
            &[
                "--slo",
                "p99_ms=10",
                "--duration",
                "2s",
                "--precision",
                "10",
            ],
        );
        assert!(code == 0 || code == 1, "{out}\n{err}");
        // The closed-loop estimate, then open-loop probes, each auditable.
        assert_eq!(rows[0]["step"], "estimate");
        assert_eq!(rows[0]["load"], "closed");
        assert_eq!(rows[0]["met"], "");
        let probes: Vec<&common::Row> = rows.iter().filter(|r| r["step"] != "estimate").collect();
        assert!(probes.len() >= 2, "{rows:?}");
        assert!(probes.iter().all(|p| p["load"] == "open"));
        // Whatever the machine: a meeting probe is valid, within the SLO and below 1,000/s; an invalid
        // probe never meets.
        for p in &probes {
            let rate = common::num(p, "rate_rps");
            // A probe meets when its objectives hold on a sound measurement; a lagging generator
            // only makes latency worse, so it does not stop a probe that meets anyway.
            let lag_only = p["reason"]
                .split("; ")
                .all(|r| r.starts_with("the generator fell behind") || r.starts_with("SLO missed"));
            assert_eq!(
                p["met"] == "true",
                (p["valid"] == "true" || lag_only) && p["slo_met"] == "true",
                "{p:?}"
            );
            // A probe could not be measured only while the workers kept up.
            if p["unreliable"] == "true" {
                assert!(!p["reason"].contains("cannot keep up"), "{p:?}");
            }
            if p["met"] == "true" {
                assert!(common::num(p, "latency_p99_us") <= 10_000.0, "{p:?}");
                assert!(
                    rate < 1000.0,
                    "1 ms per request cannot serve {rate}/s: {p:?}"
                );
            }
        }
        let lagged = probes
            .iter()
            .any(|p| p["reason"].contains("the generator fell behind"));
        // Whatever the machine, the closed loop (925 req/s here, p99 a few ms) meets the SLO, so
        // there is an answer: measured, or the estimate as a lower bound when no open-loop probe
        // could be measured.
        assert_eq!(code, 0, "{out}\n{err}");
        if out.contains("best: 1 worker × 1 thread, pipe, cpu: ≥ ") {
            assert_eq!(
                rows[0]["chosen"], "true",
                "the estimate bounds the answer: {rows:?}"
            );
            assert!(probes.iter().all(|p| p["met"] != "true"), "{rows:?}");
            assert!(out.contains("the capacity is at least that"), "{out}");
            return;
        }
        let chosen: Vec<&&common::Row> = probes.iter().filter(|r| r["chosen"] == "true").collect();
        assert_eq!(chosen.len(), 1, "{rows:?}");
        let cap = common::num(chosen[0], "rate_rps");
        assert!(
            probes
                .iter()
                .all(|p| p["met"] != "true" || common::num(p, "rate_rps") <= cap),
            "the chosen probe is the highest that met: {rows:?}"
        );
        assert!(
            probes
                .iter()
                .any(|p| p["met"] == "false" && common::num(p, "rate_rps") > cap),
            "the search saw a failure above the answer: {rows:?}"
        );
        // The answer names the chosen rate, rounded as people read it (62.5, or 4,310).
        let said: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("best: 1 worker × 1 thread, pipe, cpu: "))
            .and_then(|l| l.split_once(" req/s at p99"))
            .map(|(rate, _)| rate.replace(',', "").parse().unwrap())
            .unwrap_or_else(|| panic!("no best line: {out}"));
        assert!((said - cap).abs() <= 0.5, "says {said}, chose {cap}: {out}");
        if !lagged {
            assert!(
                (400.0..1000.0).contains(&cap),
                "capacity {cap}\n{out}\n{err}"
            );
        }
    }

    #[test]
    fn failing_at_the_lowest_rate_is_reported_and_exits_1() {
        // Exclusive: a spinning worker and generator; beside the test above they would share its cores.
        let _heavy = common::exclusive();
        let scenario = format!("{ONE_MS}min_requests = 0\n");
        let (code, out, err, rows) = capacity(
            &scenario,
            &[
                "--slo",
                "p99_ms <= 0.5",
                "--start-rate",
                "80",
                "--min-rate",
                "20",
                "--duration",
                "300ms",
            ],
        );
        assert_eq!(code, 1, "{out}\n{err}");
        assert!(
            out.contains("w1-t1-pipe-cpu: no rate meets the SLO: it fails even at the lowest rate tried, 20 req/s"),
            "{out}"
        );
        let rates: Vec<f64> = rows.iter().map(|r| common::num(r, "rate_rps")).collect();
        assert_eq!(rates, [80.0, 40.0, 20.0], "no estimate with --start-rate");
        assert!(
            rows.iter()
                .all(|r| r["met"] == "false" && r["reason"].contains("SLO missed: p99_ms"))
        );
    }
}
