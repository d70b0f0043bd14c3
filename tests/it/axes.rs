//! The sweep axes seen from outside, guarding their one declaration (`harness/scenario/axes/`):
//! every bundled scenario still expands to the points it always did, with the same ids (recorded in
//! `tests/fixtures/point_ids/NAME.txt` by the build before the declaration existed), and a sweep
//! still writes the columns of `results.csv` in the recorded order
//! (`tests/fixtures/results_header.csv`), new ones only appended.

use crate::common;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The point ids `bench validate` lists: the second word of each line after the line that counts
/// the points.
fn listed_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|l| !l.contains("point(s); the largest starts"))
        .skip(1)
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let index = words.next()?;
            index.parse::<usize>().ok()?;
            words.next().map(String::from)
        })
        .collect()
}

/// The scenario a fixture was recorded from: `scenarios/NAME.toml` or `tests/scenarios/NAME.toml`.
fn scenario_of(fixture: &Path) -> PathBuf {
    let name = fixture.file_stem().unwrap().to_str().unwrap();
    ["scenarios", "tests/scenarios"]
        .iter()
        .map(|dir| root().join(dir).join(format!("{name}.toml")))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no scenario for fixture {}", fixture.display()))
}

fn sweeps_tract(scenario: &Path) -> bool {
    std::fs::read_to_string(scenario)
        .unwrap()
        .lines()
        .any(|l| l.starts_with("runtime") && l.contains("\"tract\""))
}

/// Every recorded scenario lists the same points, with the same ids, in the same order. (A build
/// without tract refuses the scenario that sweeps it; `tests/sweep.rs` checks that message.)
#[test]
fn validate_lists_the_recorded_point_ids_of_every_scenario() {
    let dir = root().join("tests/fixtures/point_ids");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 16, "{fixtures:?}");
    let mut problems = Vec::new();
    for fixture in &fixtures {
        let scenario = scenario_of(fixture);
        if !cfg!(feature = "tract") && sweeps_tract(&scenario) {
            continue;
        }
        let out = common::bench(&["validate", "--scenario", scenario.to_str().unwrap()]);
        if out.code != 0 {
            problems.push(format!("{}: {}", scenario.display(), out.stderr));
            continue;
        }
        let want: Vec<String> = std::fs::read_to_string(fixture)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        let got = listed_ids(&out.stdout);
        if got != want {
            problems.push(format!(
                "{}: ids {got:?}, recorded {want:?}",
                scenario.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A sweep writes the recorded columns, in their order; a column added since the recording may
/// stand anywhere (beside its kin), but only if it is listed in `added`.
#[test]
fn a_sweep_writes_the_recorded_columns_in_order() {
    // Columns added since the fixture was recorded: `prepacking` and any later session knob (each
    // beside the other session options), taken from the knobs' one list.
    let fixture =
        std::fs::read_to_string(root().join("tests/fixtures/results_header.csv")).unwrap();
    let added: Vec<&str> = bench::scenario::SessionKnobs::NAMES
        .iter()
        .copied()
        .filter(|k| !fixture.trim().split(',').any(|c| c == *k))
        .collect();
    assert!(added.contains(&"prepacking"), "{added:?}");
    let recorded: Vec<String> =
        std::fs::read_to_string(root().join("tests/fixtures/results_header.csv"))
            .unwrap()
            .trim()
            .split(',')
            .map(String::from)
            .collect();
    let dir = tempfile::tempdir().unwrap();
    let out = common::bench(&[
        "sweep",
        "--quiet",
        "--scenario",
        root().join("scenarios/ensemble.toml").to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
        "--duration",
        "200ms",
        "--warmup",
        "0s",
        "--shard",
        "0/8",
    ]);
    let text = std::fs::read_to_string(dir.path().join("results.csv"))
        .unwrap_or_else(|e| panic!("no results.csv ({e}): {}", out.stderr));
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    for column in &added {
        assert!(
            header.contains(column),
            "added column `{column}` is missing"
        );
    }
    let old: Vec<&str> = header
        .iter()
        .copied()
        .filter(|c| !added.contains(c))
        .collect();
    assert_eq!(
        old, recorded,
        "the recorded columns, in their order, and no other"
    );
}

/// `bench run --dry-run` with a flag for every scenario key of every axis: each lands in the
/// `scenario.toml` it writes, under its table, and in the points it lists.
#[test]
fn bench_run_has_a_flag_for_every_axis_key() {
    let runs: [(&[&str], &[&str]); 2] = [
        (
            &[
                "--workers",
                "1,2",
                "--intra-threads",
                "1",
                "--graph-optimization",
                "basic",
                "--execution-mode",
                "parallel",
                "--inter-threads",
                "2",
                "--intra-spinning",
                "false",
                "--cpu-arena",
                "false",
                "--memory-pattern",
                "false",
                "--prepacking",
                "true,false",
                "--transfer",
                "shm",
                "--channel",
                "spin",
                "--channel-spin",
                "always",
                "--spin-max-us",
                "50",
                "--placement",
                "replicate,replicas",
                "--replicas",
                "mlp=1",
                "--pin",
                "cores",
                "--provider",
                "cpu",
                "--batch",
                "1,2",
                "--rate",
                "100",
                "--worker-concurrency",
                "2",
                "--runtime",
                "ort",
            ],
            &[
                "w1-t1-opt-basic-par-i2-nospin-noarena-nomempat-noprepack-shm-spin-replicas-pin-cpu-b2-r100-k2",
                "prepacking=false",
                "channel=spin (spins up to 50us)",
                "placement=replicas",
                "batch=2 rate=100/s worker_concurrency=2",
            ],
        ),
        (
            &[
                "--max-batch",
                "1,4",
                "--max-delay",
                "2ms",
                "--batch-idle",
                "send",
                "--concurrency",
                "2",
            ],
            &[
                "w1-t1-pipe-cpu-mb4-d2ms-send-c2",
                "max_batch=4 max_delay=2ms idle=send",
            ],
        ),
    ];
    // A session knob added after this test was written gets its flag here, at its default, from
    // the knobs' one list.
    let mut first: Vec<String> = runs[0].0.iter().map(|s| s.to_string()).collect();
    for (name, text) in bench::scenario::SessionKnobs::DEFAULT.settings() {
        let flag = format!("--{}", name.replace('_', "-"));
        if !first.contains(&flag) {
            first.extend([flag, text]);
        }
    }
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let runs = [(first.as_slice(), runs[0].1), runs[1]];
    let mut given = std::collections::BTreeSet::new();
    for (flags, listed) in runs {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut args = vec![
            "run",
            "models/onnx/mlp.onnx",
            "--dims",
            "batch=1",
            "--dry-run",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(flags);
        let run = common::bench(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        for part in listed {
            assert!(
                run.stdout.contains(part),
                "`{part}` not listed:\n{}",
                run.stdout
            );
        }
        let text = std::fs::read_to_string(out.join("scenario.toml")).unwrap();
        let scenario: toml::Table = toml::from_str(&text).unwrap();
        for pair in flags.chunks(2) {
            let flag = pair[0].trim_start_matches("--");
            given.insert(flag.to_string());
            let (table, key) = match flag {
                "channel-spin" => ("transfer", "spin"),
                "spin-max-us" => ("transfer", "spin_max_us"),
                "replicas" => ("replicas", "mlp"),
                "max-batch" | "max-delay" => ("batching", &*flag.replace('-', "_")),
                "batch-idle" => ("batching", "idle"),
                "rate" | "concurrency" => ("load", flag),
                _ => ("sweep", &*flag.replace('-', "_")),
            };
            assert!(
                scenario.get(table).and_then(|t| t.get(key)).is_some(),
                "--{flag}: no [{table}] {key} in\n{text}"
            );
        }
    }
    // Every axis flag of `bench run --help` was given above.
    let help = common::bench(&["run", "--help"]).stdout;
    let start = help.find("--workers").unwrap();
    let end = help.find("--out").unwrap();
    for line in help[start..end].lines() {
        let flag = line.split_whitespace().next().unwrap_or("");
        if let Some(flag) = flag.strip_prefix("--") {
            assert!(given.contains(flag), "--{flag} is not tested");
        }
    }
}
