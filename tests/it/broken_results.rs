//! End to end: results folders with a broken file (a truncated or garbage histogram log, a histogram
//! that cannot be added, a `run.json` or `results.csv` that is not one) fed to `bench merge`,
//! `bench report`, `bench compare` and `bench sweep --resume`. Each says which file is broken and
//! never panics. The folders are written here through the library, with a `run.json` as the first
//! versions wrote it (no `schema_version`), so no sweep has to run.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bench::metrics::{Record, Timing};
use bench::report::{Row, hlog};

use crate::common::bench;

/// Runs `bench ARGS` and checks it could not run (exit 2) because of `file`, without a panic.
fn fails_naming(args: &[&str], file: &Path, says: &str) -> String {
    let out = bench(args);
    let name = file.display().to_string();
    assert_eq!(out.code, 2, "{args:?}\n{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&name) && out.stderr.contains(says),
        "{args:?}: the message should name {name} and say {says:?}:\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out.stderr
}

/// A run.json as bench wrote it before `schema_version`, `generator_spin_us`, `shard`.
const OLD_RUN_JSON: &str = r#"{
  "bench_version": "0.1.0", "git_commit": "abc1234", "rustc": "rustc 1.92.0",
  "ort_version": "not loaded", "ort_library": "",
  "host": { "hostname": "h", "cpu_model": "cpu", "logical_cores": 2, "os": "linux" },
  "scenario": { "name": "broken", "file": "s.toml", "sha256": "00ff", "seed": 0, "models": [] },
  "started_unix_s": 1700000000, "finished_unix_s": 1700000010,
  "points_total": 1, "points_done": 1, "interrupted": false,
  "points": [ { "point": 0, "point_id": "w1-c1", "workers": [] } ],
  "cpu_dma_latency_us": null, "dropped_point": null
}"#;

const POINT: &str = "w1-c1";

/// A results folder with one point (`all` only, two trials) and its histogram log.
fn folder(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(hlog::dir(dir)).unwrap();
    let records: Vec<Record> = [[100u64, 200, 300], [150, 250, 350]]
        .iter()
        .map(|values| {
            let mut r = Record::default();
            for &v in values {
                r.record_ok(Timing {
                    latency: Duration::from_micros(v),
                    service: Duration::from_micros(v),
                    lag: Duration::ZERO,
                    compute_ns: v * 500,
                });
            }
            r
        })
        .collect();
    let intervals: Vec<hlog::Interval> = records
        .iter()
        .enumerate()
        .map(|(t, r)| hlog::Interval {
            start: Duration::from_secs(t as u64),
            span: Duration::from_secs(1),
            records: vec![("all", r)],
        })
        .collect();
    let mut log = Vec::new();
    hlog::encode(&mut log, POINT, SystemTime::UNIX_EPOCH, &intervals).unwrap();
    std::fs::write(hlog::path(dir, POINT), log).unwrap();
    let row = Row {
        point_id: POINT.into(),
        model: "all".into(),
        kind: "all".into(),
        runtime: "ort".into(),
        trials: 2,
        sent: 6,
        requests: 3,
        throughput_rps: 3.0,
        throughput_rps_min: 3.0,
        throughput_rps_max: 3.0,
        latency_p50_us: 225.0,
        latency_p99_us: 325.0,
        latency_p99_us_min: 300.0,
        latency_p99_us_max: 350.0,
        valid: true,
        ..Row::default()
    };
    let csv = bench::report::csv::to_csv(&[row]).unwrap();
    std::fs::write(dir.join("results.csv"), csv).unwrap();
    std::fs::write(dir.join("run.json"), OLD_RUN_JSON).unwrap();
    hlog::path(dir, POINT)
}

/// Two folders that ran the same point, so `bench merge` adds their histogram logs.
fn two_folders(tmp: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    folder(&a);
    folder(&b);
    (a, b)
}

fn merge_args<'a>(a: &'a Path, b: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]
}

/// A log whose one histogram holds 10 hours: a valid log, but beyond the one hour a bench histogram
/// holds, so it cannot be added to one.
fn log_beyond_range() -> Vec<u8> {
    let mut h =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 100 * 3_600_000_000_000, 3).unwrap();
    h.record(10 * 3_600_000_000_000).unwrap();
    let entry = hlog::Entry {
        tag: "all.latency".into(),
        start: Duration::ZERO,
        span: Duration::from_secs(1),
        histogram: h,
    };
    let mut out = Vec::new();
    hlog::encode_entries(
        &mut out,
        &["foreign".into()],
        SystemTime::UNIX_EPOCH,
        &[entry],
    )
    .unwrap();
    out
}

/// The first bytes of a valid log, cut in the middle of its first histogram line.
fn truncated_log(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let line = text.find("Tag=").expect("a histogram line");
    text.as_bytes()[..line + 60].to_vec()
}

#[test]
fn merge_of_good_old_folders_works_and_writes_the_current_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_folders(tmp.path());
    let out = tmp.path().join("m");
    let m = bench(&merge_args(&a, &b, &out));
    assert_eq!(m.code, 0, "{}", m.stderr);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        info["schema_version"],
        bench::report::json::SCHEMA_VERSION,
        "{info}"
    );
    assert_eq!(info["sources"].as_array().unwrap().len(), 2);
    // The merged folder reads back as every folder does.
    let r = bench(&["report", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn merge_names_a_truncated_garbage_or_unaddable_histogram_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_folders(tmp.path());
    let log = hlog::path(&b, POINT);
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "truncated",
            truncated_log(&log),
            "is not a readable histogram log",
        ),
        (
            "garbage",
            b"\x00\x01garbage\nTag=x,y\n\xff".to_vec(),
            "is not a readable histogram log",
        ),
        (
            "beyond range",
            log_beyond_range(),
            "the histogram `all.latency` cannot be added",
        ),
    ];
    for (what, bytes, says) in cases {
        std::fs::write(&log, bytes).unwrap();
        let out = tmp.path().join(format!("m-{}", what.replace(' ', "-")));
        fails_naming(&merge_args(&a, &b, &out), &log, says);
        assert!(!out.exists(), "{what}: nothing written");
    }
}

#[test]
fn merge_names_a_malformed_run_json_or_results_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_folders(tmp.path());
    let json = b.join("run.json");
    for (i, text) in ["{ \"bench_version\": ", "{\"scenario\": 3}", "[]"]
        .into_iter()
        .enumerate()
    {
        std::fs::write(&json, text).unwrap();
        let out = tmp.path().join(format!("mj{i}"));
        fails_naming(
            &merge_args(&a, &b, &out),
            &json,
            "is not a run.json bench can read",
        );
    }
    std::fs::write(&json, OLD_RUN_JSON).unwrap();

    let csv = b.join("results.csv");
    let good = std::fs::read_to_string(&csv).unwrap();
    let bad = good.replacen(",225.0,", ",fast,", 1);
    assert_ne!(bad, good);
    std::fs::write(&csv, &bad).unwrap();
    let err = fails_naming(
        &merge_args(&a, &b, &tmp.path().join("mc")),
        &csv,
        "line 2, column",
    );
    assert!(
        err.contains("(`latency_p50_us`): cannot read \"fast\""),
        "{err}"
    );
}

#[test]
fn report_names_a_malformed_results_csv_and_leaves_out_broken_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    let log = folder(&dir);
    let dir_arg = dir.to_str().unwrap();

    // A broken histogram log leaves its part of the page out, saying which file.
    for bytes in [truncated_log(&log), log_beyond_range()] {
        std::fs::write(&log, bytes).unwrap();
        let out = bench(&["report", dir_arg]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("warning: report: {}", log.display()))
                && out.stderr.contains("has no latency spectrum"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    // The documented exit codes (docs/reference/exit-codes.md): 1 when no point meets the
    // objectives, 0 when one does.
    let out = bench(&["report", dir_arg, "--slo", "p99_ms <= 0.000001"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let out = bench(&["report", dir_arg, "--slo", "p99_ms <= 1000000"]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // Regression: a broken run.json (it holds the scenario's objectives, which decide the exit
    // code) gave exit 0 where the docs promise 2.
    let json = dir.join("run.json");
    let good_json = std::fs::read(&json).unwrap();
    std::fs::write(&json, "{ not json").unwrap();
    fails_naming(
        &["report", dir_arg],
        &json,
        "is not a run.json bench can read",
    );
    std::fs::write(&json, good_json).unwrap();

    // A broken results.csv stops the report.
    let csv = dir.join("results.csv");
    let good = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, good.replacen(",true,", ",maybe,", 1)).unwrap();
    let err = fails_naming(&["report", dir_arg], &csv, "line 2, column");
    assert!(
        err.contains("(`oversubscribed`)") || err.contains("(`valid`)"),
        "{err}"
    );
    std::fs::write(&csv, format!("{}\nw1-c2,all\n", good.trim_end())).unwrap();
    fails_naming(&["report", dir_arg], &csv, "line 3: 2 field(s)");
    // Regression: a 0-byte results.csv gave exit 0 and an empty report.
    std::fs::write(&csv, "").unwrap();
    fails_naming(&["report", dir_arg], &csv, "is empty");
}

#[test]
fn compare_names_a_malformed_results_csv_and_warns_about_a_broken_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_folders(tmp.path());
    let (a_arg, b_arg) = (a.to_str().unwrap(), b.to_str().unwrap());

    // A broken log beside the CSV only loses the trial ranges it would give (p50 has none in the
    // CSV), with a warning naming it.
    let log = hlog::path(&b, POINT);
    for bytes in [truncated_log(&log), log_beyond_range()] {
        std::fs::write(&log, bytes).unwrap();
        let out = bench(&["compare", a_arg, b_arg]);
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    std::fs::write(&log, b"garbage").unwrap();
    let out = bench(&["compare", a_arg, b_arg]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "warning: {} is not a readable histogram log",
            log.display()
        )),
        "{}",
        out.stderr
    );

    let csv = b.join("results.csv");
    let good = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, good.replacen(",3.0,", ",many,", 1)).unwrap();
    let err = fails_naming(&["compare", a_arg, b_arg], &csv, "line 2, column");
    assert!(err.contains("candidate"), "{err}");
    std::fs::write(&csv, "point_id,model,trials\n\"w1-c1,all,2\n").unwrap();
    fails_naming(&["compare", b_arg, a_arg], &csv, "baseline");
}

#[test]
fn resume_names_a_malformed_run_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    folder(&dir);
    let scenario = tmp.path().join("s.toml");
    std::fs::write(
        &scenario,
        "[[model]]\nname = \"a\"\nsynthetic = { mean = \"100us\", wait = \"sleep\" }\n\
         [workload]\nwarmup_requests = 10\nrequests = 50\n",
    )
    .unwrap();
    let json = dir.join("run.json");
    std::fs::write(&json, "{\"scenario\": {\"sha256\": 7}}").unwrap();
    let args = [
        "sweep",
        "--quiet",
        "--scenario",
        scenario.to_str().unwrap(),
        "--resume",
        dir.to_str().unwrap(),
    ];
    let err = fails_naming(&args, &json, "is not a run.json bench can read");
    assert!(err.contains("--resume:"), "{err}");
    // A run.json of another scenario says so.
    std::fs::write(&json, OLD_RUN_JSON).unwrap();
    let out = bench(&args);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("come from a different scenario file (sha256 00ff)"),
        "{}",
        out.stderr
    );
}
