//! `bench compare` end to end: a synthetic slowdown must be flagged, with a confidence interval
//! that excludes no change, a run against itself must not, runs that are not comparable are
//! refused unless `--allow-different`, and bad input exits 2 with a message that says what is
//! wrong.

use crate::common;

use std::path::Path;

use assert_cmd::Command;

/// One worker, one request in flight, a fixed service time of `mean`, 3 trials. The model sleeps
/// rather than spins: on a busy 2-core test machine a spinning worker is preempted so often that its
/// p50 moves by 40% from trial to trial; a sleeping one moves by a few percent.
fn scenario(mean: &str) -> String {
    format!(
        "name = \"slowdown\"\n[[model]]\nname = \"m\"\nsynthetic = {{ mean = \"{mean}\", wait = \"sleep\" }}\n\
         [workload]\nwarmup_requests = 20\nrequests = 100\ntrials = 3\n"
    )
}

fn compare(base: &Path, cand: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("bench")
        .unwrap()
        .arg("compare")
        .arg(base)
        .arg(cand)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

const HEADER: &str = "point_id,model,trials,valid,throughput_rps,throughput_rps_min,throughput_rps_max,\
                      latency_p50_us,latency_p99_us,latency_p99_us_min,latency_p99_us_max";

#[test]
fn bad_input_exits_2_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    std::fs::write(
        &a,
        format!("{HEADER}\nw1-c1,all,1,true,100,100,100,50,90,90,90\n"),
    )
    .unwrap();

    let (code, _, err) = compare(&a, &dir.path().join("missing"), &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("candidate") && err.contains("does not exist"),
        "{err}"
    );

    let other = dir.path().join("other.csv");
    std::fs::write(
        &other,
        format!("{HEADER}\nw2-c1,all,1,true,100,100,100,50,90,90,90\n"),
    )
    .unwrap();
    let (code, _, err) = compare(&a, &other, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("no point in common"), "{err}");

    let narrow = dir.path().join("narrow.csv");
    std::fs::write(&narrow, "point_id,model\nw1-c1,all\n").unwrap();
    let (code, _, err) = compare(&narrow, &a, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("baseline") && err.contains("lacks the column(s) trials"),
        "{err}"
    );

    let (code, _, err) = compare(&a, &a, &["--metrics", "p98"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown metric `p98`"), "{err}");

    // The same file with a 20% lower throughput: flagged with the default metrics, not with p99 only.
    let slower = dir.path().join("slower.csv");
    std::fs::write(
        &slower,
        format!("{HEADER}\nw1-c1,all,1,true,80,80,80,50,90,90,90\n"),
    )
    .unwrap();
    assert_eq!(compare(&a, &slower, &[]).0, 1);
    assert_eq!(compare(&a, &slower, &["--metrics", "p99"]).0, 0);
    assert_eq!(compare(&a, &slower, &["--threshold", "25"]).0, 0);

    // A p99 of 90 → 135 µs (+50%) moves by 45 µs: under the 50 µs floor unless it is lowered.
    let tail = dir.path().join("tail.csv");
    std::fs::write(
        &tail,
        format!("{HEADER}\nw1-c1,all,1,true,100,100,100,50,135,135,135\n"),
    )
    .unwrap();
    let (code, out, _) = compare(&a, &tail, &["--metrics", "p99", "--all"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("within threshold"), "{out}");
    assert_eq!(
        compare(&a, &tail, &["--metrics", "p99", "--min-change-us", "40"]).0,
        1
    );
    let (code, _, err) = compare(&a, &tail, &["--min-change-us", "-1"]);
    assert_eq!(code, 2);
    assert!(err.contains("--min-change-us"), "{err}");
}

/// `run.json` records the command line, the flags that overrode the scenario and the effective
/// settings; two runs of one scenario with other overrides are refused by `bench compare`, with
/// each setting that differs.
#[test]
fn runs_with_other_settings_are_refused_and_run_json_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let text = scenario("1ms");
    for (d, extra) in [
        (&a, vec![]),
        (&b, vec!["--requests", "120", "--warmup", "0s"]),
    ] {
        std::fs::create_dir_all(d).unwrap();
        let run = common::sweep_in(d, &text, &extra);
        run.assert_ok_timing_aside();
    }
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("run.json")).unwrap()).unwrap();
    let command: Vec<&str> = info["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        command.contains(&"sweep") && command.contains(&"--requests"),
        "{command:?}"
    );
    assert_eq!(info["overrides"]["--requests"], "120");
    assert_eq!(info["overrides"]["--warmup"], "0s");
    assert_eq!(info["settings"]["workload.stop"], "measure 120 requests");
    assert_eq!(info["settings"]["workload.trials"], "3");
    let (code, _, err) = compare(&a, &b, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("workload.stop: measure 100 requests (baseline) against measure 120 requests (candidate)"),
        "{err}"
    );
    assert!(
        err.contains("workload.warmup: 20 requests (baseline) against 0s (candidate)"),
        "{err}"
    );
    assert!(!err.contains("scenario:"), "the same scenario file: {err}");
}

/// Named baselines: `--save-baseline` keeps a run under BASELINES/SCENARIO/NAME, `sweep
/// --baseline` and `compare --baseline` compare against it, a missing one is an error before the
/// sweep that lists the saved ones, and the JSON for github-action-benchmark holds every metric.
#[test]
fn named_baselines_and_benchmark_json() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("baselines");
    let file = dir.path().join("s.toml");
    std::fs::write(&file, scenario("1ms")).unwrap();
    let bench = |args: &[&str]| {
        let mut all = vec!["sweep", "--quiet", "--scenario", file.to_str().unwrap()];
        all.extend(["--baselines", root.to_str().unwrap()]);
        all.extend(args);
        common::bench(&all)
    };
    let first = dir.path().join("first");
    let run = bench(&["--out", first.to_str().unwrap(), "--save-baseline", "main"]);
    let rows = |d: &Path| common::read_rows(&d.join("results.csv"));
    common::assert_ok_timing_aside(run.code, &rows(&first), &run.stderr);
    assert!(root.join("slowdown/main/results.csv").is_file());
    assert!(root.join("slowdown/main/hlog").is_dir());

    let missing = bench(&[
        "--out",
        dir.path().join("x").to_str().unwrap(),
        "--baseline",
        "nope",
    ]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("its baselines are: main"),
        "{}",
        missing.stderr
    );
    assert!(!dir.path().join("x").exists(), "refused before the sweep");

    let second = dir.path().join("second");
    let run = bench(&["--out", second.to_str().unwrap(), "--baseline", "main"]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    assert!(run.stdout.contains("baseline:  "), "{}", run.stdout);
    assert!(run.stdout.contains("over 2 rows matched"), "{}", run.stdout);

    // Saving again keeps the first run beside the new one: their spread enters the verdicts.
    let third = dir.path().join("third");
    let run = bench(&["--out", third.to_str().unwrap(), "--save-baseline", "main"]);
    common::assert_ok_timing_aside(run.code, &rows(&third), &run.stderr);
    assert!(root.join("slowdown/main/earlier/1/results.csv").is_file());
    // `bench compare --baseline main SECOND ...`.
    let against_main = |extra: &[&str]| {
        let mut all = vec!["compare", "--baselines", root.to_str().unwrap()];
        all.extend(["--baseline", "main", second.to_str().unwrap()]);
        all.extend(extra);
        common::bench(&all)
    };
    let out = against_main(&["--all"]);
    assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
    assert!(out.stdout.contains("; 2 runs "), "{}", out.stdout);

    let (small, big) = (dir.path().join("small.json"), dir.path().join("big.json"));
    let out = against_main(&[
        "--json-smaller",
        small.to_str().unwrap(),
        "--json-bigger",
        big.to_str().unwrap(),
    ]);
    assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
    let read = |p: &Path| -> Vec<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let (small, big) = (read(&small), read(&big));
    assert_eq!(small.len(), 4, "p50 and p99 of m and all: {small:?}");
    assert_eq!(big.len(), 2, "{big:?}");
    for e in small.iter().chain(&big) {
        assert!(e["value"].as_f64().unwrap() > 0.0, "{e}");
        assert!(e["range"].as_str().unwrap().contains('…'), "{e}");
    }
    assert_eq!(small[0]["unit"], "us");
    assert_eq!(big[0]["unit"], "req/s");
    assert_eq!(big[0]["name"], "w1-t1-pipe-cpu-c1/m/throughput");

    let both = common::bench(&["compare", "--baseline", "main", "a", "b"]);
    assert_eq!(both.code, 2);
    assert!(both.stderr.contains("not both"), "{}", both.stderr);
}

/// The tests that measure time: they take `common::exclusive()`, and `scripts/test.sh` runs them
/// by themselves after the others (`-- ::alone::`).
mod alone {
    use super::*;

    /// Regression test for `bench compare`: two scenarios that differ only in the synthetic model's
    /// service time (5 ms, then 6.5 ms: 30% slower) must be flagged, naming the metric; a run compared
    /// with itself must not.
    #[test]
    fn regression_compare_flags_a_30pct_slower_service_time() {
        // Exclusive: it measures latency, and a 30% change must stand out of the trials' spread.
        let _heavy = common::exclusive();
        let dir = tempfile::tempdir().unwrap();
        let (base, slow) = (dir.path().join("base"), dir.path().join("slow"));
        for (d, mean) in [(&base, "5ms"), (&slow, "6500us")] {
            std::fs::create_dir_all(d).unwrap();
            let run = common::sweep_in(d, &scenario(mean), &[]);
            run.assert_ok_timing_aside();
        }
        // The two scenarios differ (the service time): refused, naming the difference.
        let (code, _, err) = compare(&base, &slow, &[]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("the two runs are not comparable")
                && err.contains("scenario: `slowdown` sha256"),
            "{err}"
        );
        assert!(err.contains("--allow-different"), "{err}");
        let md = dir.path().join("summary.md");
        let (code, out, err) = compare(
            &base,
            &slow,
            &["--markdown", md.to_str().unwrap(), "--allow-different"],
        );
        assert_eq!(code, 1, "a 30% slowdown is a regression\n{out}\n{err}");
        assert!(out.contains("WARNING: the runs differ"), "{out}");
        // Latency p50 grows by about 30% (the service time dominates it); its 95% interval comes
        // from the trials' histograms in the hlog/ folder of each results directory, and excludes 0.
        let p50 = out
            .lines()
            .find(|l| l.contains(" all ") && l.contains(" p50 "))
            .unwrap_or_else(|| panic!("no p50 line for `all`:\n{out}"));
        assert!(p50.contains("REGRESSION"), "{p50}");
        let interval: Vec<f64> = p50
            .split(['│', '┆'])
            .find(|c| c.contains('…'))
            .unwrap_or_else(|| panic!("no interval in {p50}"))
            .split('…')
            .map(|x| x.trim().trim_end_matches('%').parse().unwrap())
            .collect();
        assert!(
            interval[0] > 10.0 && interval[0] < 30.0 && interval[1] > 30.0 - 5.0,
            "{p50}"
        );
        let md = std::fs::read_to_string(&md).unwrap();
        assert!(md.starts_with("## bench compare: "), "{md}");
        assert!(
            md.contains("**REGRESSION**") && md.contains("| w1-t1-pipe-cpu-c1 | all | p50 |"),
            "{md}"
        );

        // The same run against itself: every change is 0.
        let (code, out, err) = compare(&base, &base, &["--all"]);
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(!out.contains("WARNING"), "{out}");
        assert!(out.contains("0 regressions, 0 improvements"), "{out}");
        assert!(!out.contains("REGRESSION"), "{out}");
        // A results.csv works as well as its directory; the faster side improves.
        let (code, out, _) = compare(&slow.join("results.csv"), &base, &["--allow-different"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("improvement"), "{out}");
    }
}
