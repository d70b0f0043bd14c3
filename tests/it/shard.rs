//! End to end: a sweep split with `--shard` and put back together with `bench merge`, the same point
//! run twice and merged, and the errors of both (synthetic models, short runs).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::{Row, read_rows, sweep_in};
use bench::metrics::Percentiles;
use bench::report::hlog;
use serde_json::Value;

/// Five points (concurrency 1 to 5), two models: three shards of 2, 2 and 1 points.
const SCENARIO: &str = "[[model]]\nname = \"a\"\nsynthetic = { mean = \"100us\", wait = \"sleep\" }\n\
                        [[model]]\nname = \"b\"\nsynthetic = { mean = \"200us\", wait = \"sleep\" }\n\
                        [workload]\nwarmup_requests = 10\nrequests = 120\n\
                        [load]\nconcurrency = [1, 2, 3, 4, 5]\n";

/// One point.
const ONE_POINT: &str = "[[model]]\nname = \"a\"\nsynthetic = { mean = \"100us\", wait = \"sleep\" }\n\
                         [[model]]\nname = \"b\"\nsynthetic = { service = \"exponential\", mean = \"300us\", wait = \"sleep\" }\n\
                         [workload]\nwarmup_requests = 10\nrequests = 150\n[load]\nconcurrency = 2\n";

use crate::common::{Out, bench};

fn merge(dirs: &[&Path], out: &Path, extra: &[&str]) -> Out {
    let mut args: Vec<String> = vec!["merge".into()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out".into(), out.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    bench(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn run_json(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap()
}

/// The point ids a `--dry-run` lists, in order.
fn dry_run_ids(scenario: &Path, extra: &[&str]) -> (Vec<String>, String) {
    let mut args = vec![
        "sweep",
        "--dry-run",
        "--scenario",
        scenario.to_str().unwrap(),
    ];
    args.extend(extra);
    let out = bench(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids = out
        .stdout
        .lines()
        .filter(|l| l.contains(" workers="))
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    (ids, out.stdout)
}

/// Every histogram of a results folder, added up by point file and tag.
fn hlog_totals(dir: &Path) -> BTreeMap<(String, String), hdrhistogram::Histogram<u64>> {
    let mut out = BTreeMap::new();
    for f in std::fs::read_dir(hlog::dir(dir)).unwrap().flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        for (tag, h) in hlog::totals(&hlog::read(&f.path()).unwrap()).unwrap() {
            out.insert((name.clone(), tag), h);
        }
    }
    out
}

fn ids_of(rows: &[Row]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for r in rows {
        if !ids.contains(&r["point_id"]) {
            ids.push(r["point_id"].clone());
        }
    }
    ids
}

#[test]
fn three_shards_merge_into_the_whole_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let shards: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("s{i}"))).collect();
    for (i, dir) in shards.iter().enumerate() {
        std::fs::create_dir(dir).unwrap();
        let run = sweep_in(dir, SCENARIO, &["--shard", &format!("{i}/3")]);
        run.assert_ok_timing_aside();
        assert!(run.stderr.contains(&format!("(shard {i}/3 of 5 points)")));
    }
    let scenario = shards[0].join("s.toml");
    let (all_ids, _) = dry_run_ids(&scenario, &[]);
    assert_eq!(all_ids.len(), 5);

    // --dry-run lists only the shard's points: indexes 1 and 4 of 5.
    let (ids, text) = dry_run_ids(&scenario, &["--shard", "1/3"]);
    assert_eq!(ids, [all_ids[1].clone(), all_ids[4].clone()]);
    assert!(
        text.contains("shard 1/3: 2 of the sweep's 5 point(s)"),
        "{text}"
    );

    // Each shard ran exactly its points, and run.json says which.
    for (i, dir) in shards.iter().enumerate() {
        let info = run_json(dir);
        let expected: Vec<usize> = (0..5).filter(|p| p % 3 == i).collect();
        assert_eq!(info["shard"]["index"], i);
        assert_eq!(info["shard"]["count"], 3);
        assert_eq!(info["shard"]["sweep_points"], 5);
        assert_eq!(
            info["shard"]["points"],
            serde_json::to_value(&expected).unwrap()
        );
        assert_eq!(info["points_total"], expected.len());
        let rows = read_rows(&dir.join("results.csv"));
        let ran: Vec<usize> = ids_of(&rows)
            .iter()
            .map(|id| all_ids.iter().position(|x| x == id).unwrap())
            .collect();
        assert_eq!(ran, expected);
    }

    let out_dir = tmp.path().join("merged");
    let dirs: Vec<&Path> = shards.iter().map(PathBuf::as_path).collect();
    let m = merge(&dirs, &out_dir, &[]);
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert_eq!(
        m.stdout.lines().filter(|l| l.starts_with("input ")).count(),
        3
    );
    assert!(m.stdout.contains("shard 2/3"), "{}", m.stdout);
    assert!(
        m.stdout.contains("merged 5 point(s) of 5 into"),
        "{}",
        m.stdout
    );

    // (a) The merged points are the unsharded sweep's, in sweep order.
    let merged = read_rows(&out_dir.join("results.csv"));
    assert_eq!(ids_of(&merged), all_ids);
    // The merged folder gets its own report, covering every point.
    let html = std::fs::read_to_string(out_dir.join("report.html")).expect("merged report");
    for id in &all_ids {
        assert!(
            html.contains(id.as_str()),
            "{id} missing from the merged report"
        );
    }
    assert!(out_dir.join("summary.md").exists());

    // (c) The merged rows are the union of the shards' rows, ordered by point.
    let mut union: Vec<Row> = shards
        .iter()
        .flat_map(|d| read_rows(&d.join("results.csv")))
        .collect();
    union.sort_by_key(|r| r["point"].parse::<usize>().unwrap());
    assert_eq!(merged, union);

    // (b) Every histogram count is the sum of the shards' (each point in exactly one shard).
    let merged_h = hlog_totals(&out_dir);
    let mut sum: BTreeMap<(String, String), u64> = BTreeMap::new();
    for d in &shards {
        for (k, h) in hlog_totals(d) {
            *sum.entry(k).or_default() += h.len();
        }
    }
    assert_eq!(merged_h.len(), 5 * 3 * 5, "5 points × 3 names × 5 metrics");
    let counts: BTreeMap<(String, String), u64> =
        merged_h.iter().map(|(k, h)| (k.clone(), h.len())).collect();
    assert_eq!(counts, sum);
    for r in merged.iter().filter(|r| r["model"] == "all") {
        let key = (format!("{}.hlog", r["point_id"]), "all.latency".to_string());
        assert_eq!(counts[&key].to_string(), r["requests"], "{key:?}");
    }

    // run.json lists the sources and counts the whole sweep.
    let info = run_json(&out_dir);
    assert_eq!(info["points_total"], 5);
    assert_eq!(info["points_done"], 5);
    assert_eq!(info["shard"], Value::Null);
    let sources = info["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 3);
    for (i, s) in sources.iter().enumerate() {
        assert_eq!(s["shard"]["index"], i);
        assert_eq!(s["shard"]["count"], 3);
        assert!(s["git_commit"].is_string() && s["hostname"].is_string());
    }
    assert_eq!(info["points"].as_array().unwrap().len(), 5);
    assert_eq!(
        info["scenario"]["sha256"],
        run_json(&shards[0])["scenario"]["sha256"]
    );

    // Merging an incomplete set says what is missing.
    let partial = merge(&dirs[..2], &tmp.path().join("partial"), &[]);
    assert_eq!(partial.code, 0, "{}", partial.stderr);
    assert!(
        partial
            .stderr
            .contains("1 of the sweep's 5 point(s) are in no input (indexes 2)"),
        "{}",
        partial.stderr
    );
}

#[test]
fn merging_two_runs_of_the_same_point_adds_their_histograms_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for d in [&a, &b] {
        std::fs::create_dir(d).unwrap();
        let run = sweep_in(d, ONE_POINT, &[]);
        run.assert_ok_timing_aside();
    }
    let out_dir = tmp.path().join("m");
    let m = merge(&[&a, &b], &out_dir, &[]);
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(
        m.stdout.contains("1 of them run in more than one input"),
        "{}",
        m.stdout
    );

    // The log keeps every interval of both runs, tags unchanged, and their sums are exact.
    let file = |d: &Path| {
        let f = std::fs::read_dir(hlog::dir(d))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        hlog::read(&f.path()).unwrap()
    };
    let (ea, eb, em) = (file(&a), file(&b), file(&out_dir));
    assert_eq!(em.len(), ea.len() + eb.len());
    let totals = |e: &[hlog::Entry]| hlog::totals(e).unwrap();
    let (ta, tb, tm) = (totals(&ea), totals(&eb), totals(&em));
    assert_eq!(
        tm.keys().collect::<BTreeSet<_>>(),
        ta.keys().chain(tb.keys()).collect()
    );
    for (tag, h) in &tm {
        let (x, y) = (&ta[tag], &tb[tag]);
        assert_eq!(h.len(), x.len() + y.len(), "{tag}");
        assert_eq!(h.max(), x.max().max(y.max()), "{tag}");
        assert_eq!(h.min(), x.min().min(y.min()), "{tag}");
        let mut sum = x.clone();
        sum.add(y).unwrap();
        assert_eq!(h, &sum, "{tag}: the merged histogram is the exact sum");
    }

    // One set of rows for the point, recomputed from the merged histograms.
    let (ra, rb, rm) = (
        read_rows(&a.join("results.csv")),
        read_rows(&b.join("results.csv")),
        read_rows(&out_dir.join("results.csv")),
    );
    let models: Vec<&str> = rm.iter().map(|r| r["model"].as_str()).collect();
    assert_eq!(models, ["a", "b", "all"]);
    let num = |r: &Row, k: &str| -> f64 { r[k].parse().unwrap() };
    for (i, row) in rm.iter().enumerate() {
        let name = &row["model"];
        let lat = Percentiles::of(&tm[&format!("{name}.latency")]);
        let close = |x: f64, y: f64| (x - y).abs() < 0.0011;
        assert!(close(num(row, "latency_p99_us"), lat.p99), "{name}");
        assert!(close(num(row, "latency_p50_us"), lat.p50), "{name}");
        assert!(close(num(row, "latency_max_us"), lat.max), "{name}");
        assert_eq!(
            num(row, "latency_max_us"),
            num(&ra[i], "latency_max_us").max(num(&rb[i], "latency_max_us"))
        );
        let c = Percentiles::of(&tm[&format!("{name}.compute")]);
        assert!(close(num(row, "compute_p99_us"), c.p99), "{name}");
        for k in ["requests", "sent", "errors", "warmup_requests"] {
            assert_eq!(num(row, k), num(&ra[i], k) + num(&rb[i], k), "{name} {k}");
        }
        assert!(
            close(
                num(row, "throughput_rps"),
                num(&ra[i], "throughput_rps") + num(&rb[i], "throughput_rps")
            ),
            "{name}: throughput is the sum"
        );
        // The CPU cost is point-wide: the machines' cores add up, and the CPU per request of
        // both together lies between each one's.
        assert!(
            close(
                num(row, "cores_used"),
                num(&ra[i], "cores_used") + num(&rb[i], "cores_used")
            ),
            "{name}: cores are the sum"
        );
        for k in ["parent_cpu_us_per_req", "worker_cpu_us_per_req"] {
            let (x, y) = (num(&ra[i], k), num(&rb[i], k));
            let v = num(row, k);
            assert!(
                x.min(y) - 0.0011 <= v && v <= x.max(y) + 0.0011,
                "{name} {k}: {v} not between {x} and {y}"
            );
        }
    }

    let info = run_json(&out_dir);
    assert_eq!(info["sources"].as_array().unwrap().len(), 2);
    assert_eq!(info["sources"][0]["shard"], Value::Null);
    let sources: Vec<&Value> = info["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["source"])
        .collect();
    assert_eq!(sources, [0, 1]);
}

#[test]
fn a_shard_resumes_only_as_the_same_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = sweep_in(dir, SCENARIO, &["--shard", "0/2"]);
    first.assert_ok_timing_aside();
    let ids = ids_of(&first.rows);
    assert_eq!(ids.len(), 3, "indexes 0, 2, 4");
    // Keep only the first point, as if the shard had been interrupted after it.
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    let kept: Vec<&str> = csv
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || l.contains(&format!(",{},", ids[0])))
        .map(|(_, l)| l)
        .collect();
    std::fs::write(dir.join("results.csv"), kept.join("\n") + "\n").unwrap();
    let file = dir.join("s.toml");
    let resume = |extra: &[&str]| {
        let mut args = vec![
            "sweep",
            "--quiet",
            "--scenario",
            file.to_str().unwrap(),
            "--resume",
            dir.to_str().unwrap(),
        ];
        args.extend(extra);
        bench(&args)
    };
    let whole = resume(&[]);
    assert_eq!(whole.code, 2);
    assert!(
        whole
            .stderr
            .contains("holds shard 0/2 of the sweep; resume it with --shard 0/2"),
        "{}",
        whole.stderr
    );
    let other = resume(&["--shard", "1/2"]);
    assert_eq!(other.code, 2);
    assert!(other.stderr.contains("resume it with --shard 0/2"));

    let again = resume(&["--shard", "0/2"]);
    let rows = read_rows(&dir.join("results.csv"));
    common::assert_ok_timing_aside(again.code, &rows, &again.stderr);
    assert_eq!(ids_of(&rows), ids, "the shard's points, and only them");
    assert_eq!(rows[..3], first.rows[..3], "the finished point is kept");
    let info = run_json(dir);
    assert_eq!(info["points_done"], 3);
    assert_eq!(info["shard"]["index"], 0);

    // A whole sweep does not resume as a shard.
    let whole_dir = tmp.path().join("whole");
    std::fs::create_dir(&whole_dir).unwrap();
    std::fs::write(
        whole_dir.join("run.json"),
        std::fs::read_to_string(dir.join("run.json"))
            .unwrap()
            .replace("\"shard\": {", "\"shard\": null, \"was\": {"),
    )
    .unwrap();
    let out = bench(&[
        "sweep",
        "--quiet",
        "--scenario",
        file.to_str().unwrap(),
        "--resume",
        whole_dir.to_str().unwrap(),
        "--shard",
        "0/2",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("holds a whole sweep, not a shard; resume it without --shard"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_shards_and_merges_exit_2_with_a_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, ONE_POINT).unwrap();
    for (shard, says) in [
        ("3/3", "shard index 3 is out of range for 3 shard(s)"),
        ("0/0", "the shard count must be at least 1"),
        ("2", "is not I/N"),
        ("x/2", "the shard index `x` is not a whole number"),
    ] {
        let out = bench(&[
            "sweep",
            "--dry-run",
            "--scenario",
            file.to_str().unwrap(),
            "--shard",
            shard,
        ]);
        assert_eq!(out.code, 2, "{shard}");
        assert!(out.stderr.contains(says), "{shard}: {}", out.stderr);
    }

    // Two runs of different scenario files.
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (d, seed) in [(&a, 1), (&b, 2)] {
        std::fs::create_dir(d).unwrap();
        let run = sweep_in(d, &format!("seed = {seed}\n{ONE_POINT}"), &[]);
        run.assert_ok_timing_aside();
    }
    let refused = merge(&[&a, &b], &tmp.path().join("m1"), &[]);
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .stderr
            .contains("the folders come from different scenarios")
            && refused.stderr.contains("pass --force to merge anyway")
            && refused.stderr.contains(&a.display().to_string()),
        "{}",
        refused.stderr
    );
    assert!(!tmp.path().join("m1").exists(), "nothing written");
    let forced = merge(&[&a, &b], &tmp.path().join("m2"), &["--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(
        forced
            .stderr
            .contains("--force: merging results of 2 different scenario files")
    );
    assert_eq!(read_rows(&tmp.path().join("m2/results.csv")).len(), 3);

    // A folder that does not exist, one that is not a results folder, an output in use.
    let missing = merge(&[&a, &tmp.path().join("nope")], &tmp.path().join("m3"), &[]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("nope is not a folder"),
        "{}",
        missing.stderr
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let not_results = merge(&[&empty], &tmp.path().join("m4"), &[]);
    assert_eq!(not_results.code, 2);
    assert!(
        not_results.stderr.contains("run.json is missing: is")
            && not_results
                .stderr
                .contains("a results folder of `bench sweep`"),
        "{}",
        not_results.stderr
    );
    let busy = merge(&[&a], &tmp.path().join("m2"), &[]);
    assert_eq!(busy.code, 2);
    assert!(busy.stderr.contains("is not empty"), "{}", busy.stderr);
    let into_input = merge(&[&a], &a, &[]);
    assert_eq!(into_input.code, 2);
    assert!(into_input.stderr.contains("is one of the inputs"));
    let none = bench(&["merge", "--out", tmp.path().join("m5").to_str().unwrap()]);
    assert_eq!(none.code, 2, "clap: DIR is required");

    // A point in two folders needs both histogram logs; nothing is written without them.
    for f in std::fs::read_dir(hlog::dir(&b)).unwrap().flatten() {
        std::fs::remove_file(f.path()).unwrap();
    }
    let no_log = merge(&[&a, &b], &tmp.path().join("m6"), &["--force"]);
    assert_eq!(no_log.code, 2);
    assert!(
        no_log.stderr.contains("was run in 2 of the folders")
            && no_log.stderr.contains(".hlog is missing"),
        "{}",
        no_log.stderr
    );
    assert!(!tmp.path().join("m6").exists());
}

#[test]
fn the_cluster_scripts_are_valid_shell() {
    for script in ["scripts/slurm-sweep.sh", "scripts/run.sh"] {
        let out = std::process::Command::new("bash")
            .args(["-n", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let slurm = std::fs::read_to_string("scripts/slurm-sweep.sh").unwrap();
    for needed in [
        "#SBATCH --array=0-",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "--shard \"$index/$count\"",
        "--dependency=\"afterany:$SLURM_ARRAY_JOB_ID\"",
        "merge",
    ] {
        assert!(slurm.contains(needed), "slurm-sweep.sh lacks {needed}");
    }
    let k8s = std::fs::read_to_string("scripts/k8s-sweep-job.yaml").unwrap();
    for needed in [
        "completionMode: Indexed",
        "completions: 4",
        "--shard \"${JOB_COMPLETION_INDEX}/${SHARDS}\"",
        "name: bench-sweep-${RUN}",
        "name: bench-merge-${RUN}",
        "bench merge \"${shards[@]}\"",
    ] {
        assert!(k8s.contains(needed), "k8s-sweep-job.yaml lacks {needed}");
    }
    assert!(!k8s.contains('\t'), "YAML forbids tabs in indentation");
}

/// The shell scripts of the YAML file's containers (`args: - |` blocks), in order, dedented.
fn yaml_scripts(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut scripts = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim() != "- |" {
            continue;
        }
        let indent = l.len() - l.trim_start().len();
        let body: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|b| b.trim().is_empty() || b.len() - b.trim_start().len() > indent)
            .copied()
            .collect();
        let strip = body
            .iter()
            .filter(|b| !b.trim().is_empty())
            .map(|b| b.len() - b.trim_start().len())
            .min()
            .unwrap_or(0);
        let text: Vec<&str> = body.iter().map(|b| b.get(strip..).unwrap_or("")).collect();
        scripts.push(text.join("\n") + "\n");
    }
    scripts
}

/// The point ids of a merged folder.
fn merged_ids(dir: &Path) -> BTreeSet<String> {
    read_rows(&dir.join("results.csv"))
        .into_iter()
        .map(|r| r["point_id"].clone())
        .collect()
}

/// Regression: re-running the Kubernetes and Slurm examples found the last run's
/// `shard-<i>/run.json`, "resumed" it (or failed on a different scenario), and merged every
/// `shard-*` folder, an earlier run's included, as the new result. Two runs of different scenarios
/// (3 shards, then 2) into the same results volume: each run's merge holds its own points only.
#[test]
fn rerunning_the_cluster_examples_never_republishes_old_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let bench_exe = assert_cmd::cargo::cargo_bin("bench");
    let model = "[[model]]\nname = \"a\"\nsynthetic = { mean = \"100us\", wait = \"sleep\" }\n\
                 [workload]\nwarmup_requests = 0\nrequests = 20\nmin_requests = 1\n";
    let first = t.join("first.toml");
    std::fs::write(&first, format!("{model}[load]\nconcurrency = [1, 2, 3]\n")).unwrap();
    let second = t.join("second.toml");
    std::fs::write(&second, format!("{model}[load]\nconcurrency = [4, 5]\n")).unwrap();
    let ids = |c: &[u32]| -> BTreeSet<String> {
        c.iter().map(|c| format!("w1-t1-pipe-cpu-c{c}")).collect()
    };
    // The scripts run sweeps: this test loads the machine like a sweep (`common::shared`).
    let _turn = common::shared();
    // Runs `script` in bash; its exit code and stderr.
    let run = |script: &str, env: &[(&str, String)], cwd: &Path| {
        let out = std::process::Command::new("bash")
            .args(["-c", script])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(cwd)
            .output()
            .unwrap();
        let log = format!("{script}\n{}", String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), log)
    };
    let sh = |script: &str, env: &[(&str, String)], cwd: &Path| {
        let (code, log) = run(script, env, cwd);
        assert_eq!(code, 0, "{log}");
    };

    // Slurm: a repository with the release binary, and an sbatch that only records its arguments.
    let repo = t.join("repo");
    std::fs::create_dir_all(repo.join("target/release")).unwrap();
    std::os::unix::fs::symlink(&bench_exe, repo.join("target/release/bench")).unwrap();
    let bin = t.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("sbatch"),
        format!("#!/bin/sh\necho \"$@\" >> {}/sbatch.log\n", t.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("sbatch"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let slurm = std::fs::canonicalize("scripts/slurm-sweep.sh").unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let results = t.join("slurm-results");
    for (job, scenario, count, want) in [
        ("101", &first, 3, ids(&[1, 2, 3])),
        ("102", &second, 2, ids(&[4, 5])),
    ] {
        for task in 0..count {
            let env = [
                ("PATH", path.clone()),
                ("SLURM_SUBMIT_DIR", repo.display().to_string()),
                ("SLURM_ARRAY_TASK_ID", task.to_string()),
                ("SLURM_ARRAY_TASK_COUNT", count.to_string()),
                ("SLURM_ARRAY_JOB_ID", job.to_string()),
                ("BENCH_RESULTS", results.display().to_string()),
            ];
            let script = format!("bash {} {}", slurm.display(), scenario.display());
            // A task exits with `bench sweep`'s code: 1 when a point is invalid, which on a loaded
            // machine can be its timing alone (a closed loop judged "the generator fell behind").
            let (code, log) = run(&script, &env, &repo);
            let shard = results.join(job).join(format!("shard-{task}"));
            common::assert_ok_timing_aside(code, &read_rows(&shard.join("results.csv")), &log);
        }
        // The merge job the first task queued.
        let log = std::fs::read_to_string(t.join("sbatch.log")).unwrap();
        let wrap = log.lines().last().unwrap().split("--wrap ").nth(1).unwrap();
        sh(wrap, &[], &repo);
        let merged = results.join(job).join("merged");
        assert_eq!(merged_ids(&merged), want, "slurm job {job}");
    }

    // Kubernetes: the containers' scripts, on a local folder for the shared volume.
    let yaml = std::fs::read_to_string("scripts/k8s-sweep-job.yaml").unwrap();
    let volume = t.join("volume");
    let scripts: Vec<String> = yaml_scripts(&yaml)
        .into_iter()
        .map(|s| {
            s.replace("/results", &volume.display().to_string())
                .replace("target/release/bench", &bench_exe.display().to_string())
                .replace(".venv/bin/python", "python3")
        })
        .collect();
    let [pod, wait, merge] = scripts.as_slice() else {
        panic!("three container scripts: {scripts:?}")
    };
    std::fs::create_dir_all(&volume).unwrap();
    for (run, scenario, shards, want) in [
        ("20261201-010000", &first, 3, ids(&[1, 2, 3])),
        ("20261201-020000", &second, 2, ids(&[4, 5])),
    ] {
        let env = |i: usize| {
            vec![
                ("RUN", run.to_string()),
                ("SHARDS", shards.to_string()),
                ("SCENARIO", scenario.display().to_string()),
                ("JOB_COMPLETION_INDEX", i.to_string()),
            ]
        };
        for i in 0..shards {
            sh(pod, &env(i), t);
        }
        // A replaced pod resumes its shard.
        sh(pod, &env(0), t);
        sh(wait, &env(0), t);
        sh(merge, &env(0), t);
        assert_eq!(
            merged_ids(&volume.join(run).join("merged")),
            want,
            "k8s run {run}"
        );
    }
}
