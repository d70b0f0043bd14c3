//! End to end: a tiny real sweep, then `bench report` on its folder. The page must be complete and
//! self-contained, open in headless Chromium without a console message, and the histogram logs
//! must agree with the CSV when read by an independent implementation (python `hdrhistogram`).
//! `bench report --slo` must recommend the point the rule picks, say why the others lost, count
//! cold starts, and exit 0, 1 or 2 as documented; the "choosing a deployment" guide runs as
//! written.

use crate::common;

use std::path::Path;
use std::process::Command;

use assert_cmd::Command as BenchCommand;

/// Two synthetic models and an ensemble, two points (1 and 2 workers), one trial each.
const SCENARIO: &str = "name = \"tiny\"\n\
    [[model]]\nname = \"fast\"\nsynthetic = { mean = \"200us\", wait = \"sleep\" }\n\
    [[model]]\nname = \"slow\"\nsynthetic = { service = \"exponential\", mean = \"600us\", wait = \"sleep\" }\n\
    [workload]\ngroups = { both = [\"fast\", \"slow\"] }\nwarmup_requests = 20\nduration = \"300ms\"\n\
    min_requests = 10\ntrials = 1\n[load]\nconcurrency = 2\n[sweep]\nworkers = [1, 2]\n";

const CHROMIUM: &str = "/usr/bin/chromium";

fn tiny_sweep() -> (tempfile::TempDir, common::Run) {
    let dir = tempfile::tempdir().unwrap();
    let run = common::sweep_in(dir.path(), SCENARIO, &[]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    assert_eq!(run.alls().len(), 2, "{}", run.stderr);
    (dir, run)
}

/// The text between `start` and the next `end` after it.
fn section<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in the page"));
    let rest = &text[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// The trimmed contents of every SVG `<text>` element in `html`.
fn svg_texts(html: &str) -> Vec<String> {
    html.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

#[test]
fn report_writes_a_self_contained_page_and_a_markdown_summary() {
    let (dir, run) = tiny_sweep();
    let html_path = dir.path().join("report.html");
    let md_path = dir.path().join("summary.md");
    assert!(
        html_path.is_file() && md_path.is_file(),
        "`bench sweep` renders the report when it ends"
    );
    std::fs::remove_file(&html_path).unwrap();
    std::fs::remove_file(&md_path).unwrap();

    let out = BenchCommand::cargo_bin("bench")
        .unwrap()
        .arg("report")
        .arg(dir.path())
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains("report.html") && stdout.contains("summary.md"),
        "{stdout}"
    );
    let page = std::fs::read_to_string(&html_path).unwrap();

    // One chart each: the Pareto front, the spectrum, throughput against p99, per-model latency
    // and throughput.
    assert_eq!(page.matches("<svg").count(), 5, "five charts");
    assert_eq!(page.matches("</svg>").count(), 5);
    let spectrum = section(&page, "id=\"spectrum\"", "</figure>");
    let ids: Vec<&str> = run.alls().iter().map(|r| r["point_id"].as_str()).collect();
    for id in &ids {
        assert!(spectrum.contains(id), "the spectrum has a line for {id}");
    }
    let labels = svg_texts(spectrum);
    for tick in ["0%", "90%", "99%"] {
        assert!(
            labels.iter().any(|l| l == tick),
            "no {tick} tick: {labels:?}"
        );
    }

    // The verdict table names every point, with its verdict and throughput.
    let table = section(&page, "id=\"verdicts\"", "</table>");
    for r in run.alls() {
        let id = &r["point_id"];
        let line = table
            .lines()
            .find(|l| l.contains(&format!("<code>{id}</code>")))
            .unwrap_or_else(|| panic!("no verdict row for {id}: {table}"));
        let valid = if r["valid"] == "true" { "yes" } else { "no" };
        assert!(line.contains(&format!("<td>{valid}</td>")), "{line}");
        let rps = format!(">{:.0}<", common::num(r, "throughput_rps"));
        assert!(line.contains(&rps), "{line} lacks {rps}");
    }

    // Per-model charts name every model and the ensemble; the metadata comes from run.json.
    let models = section(&page, "id=\"models\"", "id=\"run\"");
    let labels = svg_texts(models);
    for m in ["fast", "slow", "both"] {
        assert_eq!(
            labels.iter().filter(|l| *l == m).count(),
            2,
            "{m} in both per-model legends"
        );
    }
    let meta = section(&page, "id=\"run\"", "</table>");
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    for key in ["bench_version", "git_commit", "rustc"] {
        assert!(
            meta.contains(info[key].as_str().unwrap()),
            "metadata lacks {key}"
        );
    }
    assert!(meta.contains(info["scenario"]["sha256"].as_str().unwrap()));
    assert!(meta.contains("<th>seed</th><td>0</td>"), "{meta}");

    // Self-contained: nothing to fetch, no script to fail.
    for needle in [
        "http://", "https://", "<script", "<link", "<img", "<iframe", "src=", "@import", "url(",
    ] {
        assert!(!page.contains(needle), "the page contains `{needle}`");
    }

    // summary.md: a GitHub table with a row per point, and the best valid point.
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(md.starts_with("## bench: `tiny`: 2 point(s)"), "{md}");
    assert!(md.contains("| # | point | valid |") && md.contains("|---:|---|"));
    for id in &ids {
        assert!(
            md.contains(&format!("| `{id}` |")),
            "summary lacks {id}: {md}"
        );
    }
    let best = run
        .alls()
        .into_iter()
        .filter(|r| r["valid"] == "true")
        .max_by(|a, b| {
            common::num(a, "throughput_rps").total_cmp(&common::num(b, "throughput_rps"))
        });
    match best {
        Some(b) => assert!(
            md.contains(&format!(
                "**Best valid point by throughput:** `{}`",
                b["point_id"]
            )),
            "{md}"
        ),
        None => assert!(md.contains("**No point is valid.**"), "{md}"),
    }
}

#[test]
fn report_of_a_folder_without_results_exits_2_and_says_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let out = BenchCommand::cargo_bin("bench")
        .unwrap()
        .arg("report")
        .arg(dir.path())
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("results.csv does not exist") && err.contains("bench sweep --out DIR"),
        "{err}"
    );
}

/// Opens `page` in headless Chromium, takes a screenshot and returns (PNG bytes, stderr).
fn chromium_screenshot(page: &Path, png: &Path) -> (Vec<u8>, String) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run `scripts/setup.sh --test` (it installs Debian's chromium)"
    );
    let profile = tempfile::tempdir().unwrap();
    // Chromium loads the CPU and writes to /dev/shm, which a test of this binary watches: it takes
    // its turn (`common::shared`).
    let _turn = common::shared();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Every console message (level included) goes to stderr as `INFO:CONSOLE`.
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1100,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "chromium failed: {stderr}");
    let bytes = std::fs::read(png).unwrap_or_else(|_| panic!("no screenshot: {stderr}"));
    (bytes, stderr)
}

/// Lines of Chromium's log that come from the page's console.
fn console_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

#[test]
fn the_page_opens_in_headless_chromium_without_console_messages() {
    let (dir, _run) = tiny_sweep();
    let page = std::fs::canonicalize(dir.path().join("report.html")).unwrap();
    let png = dir.path().join("shot.png");
    let (bytes, stderr) = chromium_screenshot(&page, &png);
    // A PNG of the window's size, with far more in it than a blank page (about 4 KB).
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1100, 2400));
    assert!(
        bytes.len() > 60_000,
        "the screenshot is nearly blank ({} bytes)",
        bytes.len()
    );
    let console = console_lines(&stderr);
    assert!(console.is_empty(), "console messages: {console:#?}");

    // The check is live: a page that throws is caught.
    let broken = dir.path().join("broken.html");
    let text = std::fs::read_to_string(&page).unwrap().replace(
        "<h1>",
        "<script>throw new Error('report-test')</script><h1>",
    );
    std::fs::write(&broken, text).unwrap();
    let (_, stderr) = chromium_screenshot(
        &std::fs::canonicalize(&broken).unwrap(),
        &dir.path().join("broken.png"),
    );
    let console = console_lines(&stderr);
    assert!(
        console
            .iter()
            .any(|l| l.contains("Uncaught Error: report-test")),
        "a thrown error must show: {stderr}"
    );
}

#[test]
fn hlog_files_decode_with_python_hdrhistogram_and_match_the_csv() {
    let (dir, run) = tiny_sweep();
    // Not canonicalised: the virtualenv's python is a symlink that must keep its own path.
    let python = std::env::current_dir().unwrap().join(".venv/bin/python");
    assert!(
        python.exists(),
        ".venv/bin/python is missing: run `scripts/setup.sh --test`"
    );
    // For each log: every tag's total count, p50 and p99 in ns, as JSON. Ranks differ between
    // implementations: Java and Rust take the value at rank ceil(q × n), the python package at
    // rank round(q × n). The script asks python for the percentile that lands on rank ceil(q × n),
    // so the comparison is exact (with round(), p99 of 182 values would be the 180th, not the
    // 181st).
    let script = r#"
import json, math, sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
out = {}
for path in sys.argv[1:]:
    reader = HistogramLogReader(path, HdrHistogram(1, 3600 * 10**9, 3))
    tags = {}
    while True:
        h = reader.get_next_interval_histogram()
        if h is None:
            break
        assert h.get_tag() not in tags, "one interval per tag with one trial"
        n = h.get_total_count()
        at = lambda q: h.get_value_at_percentile(100.0 * max(math.ceil(q * n), 1) / n)
        tags[h.get_tag()] = [n, at(0.5), at(0.99)]
    out[path] = tags
print(json.dumps(out))
"#;
    let ids: Vec<String> = run.alls().iter().map(|r| r["point_id"].clone()).collect();
    let paths: Vec<String> = ids
        .iter()
        .map(|id| {
            dir.path()
                .join("hlog")
                .join(format!("{id}.hlog"))
                .display()
                .to_string()
        })
        .collect();
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(&paths)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python could not read the logs (is `hdrhistogram` installed? `scripts/setup.sh --test`): {stderr}"
    );
    let decoded: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut compared = 0;
    for (id, path) in ids.iter().zip(&paths) {
        let tags = &decoded[path];
        for row in run.rows.iter().filter(|r| &r["point_id"] == id) {
            let tag = format!("{}.latency", row["model"]);
            let got = tags[&tag]
                .as_array()
                .unwrap_or_else(|| panic!("{path} has no tag {tag}: {tags}"));
            let ns = |col: &str| (common::num(row, col) * 1000.0).round() as u64;
            let want = [
                common::num(row, "requests") as u64,
                ns("latency_p50_us"),
                ns("latency_p99_us"),
            ];
            let got: Vec<u64> = got.iter().map(|v| v.as_u64().unwrap()).collect();
            assert_eq!(got, want, "{id} {tag}: [count, p50 ns, p99 ns]");
            compared += 1;
        }
        // The other metrics are in the log too.
        for metric in ["service", "send_lag", "compute", "overhead"] {
            assert!(
                tags.get(format!("all.{metric}")).is_some(),
                "{path} lacks all.{metric}"
            );
        }
    }
    assert_eq!(compared, 2 * 4, "two points × (fast, slow, both, all)");
}

/// `bench report DIR ARGS...`.
fn report(dir: &Path, args: &[&str]) -> common::Out {
    let mut all = vec!["report", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    common::bench(&all)
}

/// The point the rule picks among `candidates` (the `all` rows that meet every objective): the
/// most throughput; within 2% of it, the least memory, then more throughput, then the earlier.
fn expected_pick<'a>(candidates: &[&'a common::Row]) -> Option<&'a common::Row> {
    let rps = |r: &common::Row| common::num(r, "throughput_rps");
    let top = candidates
        .iter()
        .map(|r| rps(r))
        .fold(f64::NEG_INFINITY, f64::max);
    candidates
        .iter()
        .copied()
        .filter(|r| rps(r) >= top * 0.98)
        .min_by(|a, b| {
            common::num(a, "rss_mib")
                .total_cmp(&common::num(b, "rss_mib"))
                .then(rps(b).total_cmp(&rps(a)))
        })
}

#[test]
fn report_slo_recommends_the_fastest_point_within_the_objectives_and_exits_0() {
    let (dir, run) = tiny_sweep();
    let out = report(
        dir.path(),
        &["--slo", "p99_ms<=10000", "--slo", "slow:p99_ms<=10000"],
    );
    let valid: Vec<&common::Row> = run
        .alls()
        .into_iter()
        .filter(|r| r["valid"] == "true")
        .collect();
    // Exit 0 when a point is recommended; on a loaded machine every point of the tiny sweep can
    // be invalid for its timing, and then none is (exit 1).
    let code = if expected_pick(&valid).is_some() {
        0
    } else {
        1
    };
    assert_eq!(out.code, code, "{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "objectives: p99_ms <= 10000, slow:p99_ms <= 10000 (from the command line; latency \
         objectives count cold starts)"
    );
    let Some(best) = expected_pick(&valid) else {
        // Every point of the tiny sweep invalid on a loaded machine: nothing to recommend.
        assert_eq!(
            lines[1],
            "recommended: none: no point meets every objective"
        );
        return;
    };
    assert!(
        lines[1].starts_with(&format!(
            "recommended: #{} {}: {:.0} req/s",
            best["point"],
            best["point_id"],
            common::num(best, "throughput_rps")
        )),
        "{}",
        out.stdout
    );
    // Every other point says why it lost.
    for r in run.alls() {
        if r["point_id"] == best["point_id"] {
            continue;
        }
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("  #{} {}: ", r["point"], r["point_id"])))
            .unwrap_or_else(|| panic!("no line for {}: {}", r["point_id"], out.stdout));
        let why = if r["valid"] == "true" {
            "meets every objective, but "
        } else {
            "invalid: "
        };
        assert!(line.contains(why), "{line}");
    }

    // The page and the summary lead with it.
    let page = std::fs::read_to_string(dir.path().join("report-slo.html")).unwrap();
    let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("no {needle}"));
    assert!(at("id=\"recommendation\"") < at("id=\"pareto\""));
    assert!(at("id=\"pareto\"") < at("id=\"verdicts\""));
    assert!(page.contains(&format!(
        "<b>Recommended: #{} <code>{}</code></b>",
        best["point"], best["point_id"]
    )));
    let chart = section(&page, "id=\"pareto\"", "</figure>");
    assert!(svg_texts(chart).iter().any(|t| t == "Pareto front"));
    let md = std::fs::read_to_string(dir.path().join("summary-slo.md")).unwrap();
    let lead = md
        .find(&format!(
            "**Recommended:** #{} `{}`",
            best["point"], best["point_id"]
        ))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(lead < md.find("| # |").unwrap(), "{md}");
}

#[test]
fn report_exits_1_when_no_point_meets_the_objectives_and_says_what_each_missed() {
    let (dir, run) = tiny_sweep();
    let out = report(
        dir.path(),
        &[
            "--slo",
            "p99_ms<=0.001",
            "--slo",
            "slow:p99_ms < 0.001",
            "--max-rss-mib",
            "0.5",
        ],
    );
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("\nrecommended: none: no point meets every objective\n"),
        "{}",
        out.stdout
    );
    for r in run.alls() {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("  #{} {}: ", r["point"], r["point_id"])))
            .unwrap_or_else(|| panic!("no line for {}: {}", r["point_id"], out.stdout));
        if r["valid"] == "true" {
            for miss in [
                "p99_ms <= 0.001: ",
                "slow:p99_ms < 0.001: ",
                "rss_mib <= 0.5: ",
            ] {
                assert!(line.contains(miss), "{line} lacks {miss}");
            }
            assert!(line.contains(" over (+"), "by how much: {line}");
        } else {
            assert!(line.contains(": invalid: "), "{line}");
        }
    }
    let md = std::fs::read_to_string(dir.path().join("summary-slo.md")).unwrap();
    assert!(md.contains("**No point meets every objective.**"), "{md}");
    assert!(
        report(dir.path(), &[]).code == 0,
        "without objectives there is nothing to miss"
    );
}

#[test]
fn report_exits_2_on_a_bad_objective_and_says_what_to_write() {
    let (dir, _run) = tiny_sweep();
    for (args, says) in [
        (
            &["--slo", "p99_ms ~ 5"][..],
            "expected `<=`, `<`, `>=`, `>` or `=`",
        ),
        (&["--slo", "p98_ms<=5"], "unknown SLO metric `p98_ms`"),
        (
            &["--slo", "nope:p99_ms<=5"],
            "no model or ensemble group `nope` in these results; use one of: fast, slow, both",
        ),
        (&["--slo", ":p99_ms<=5"], "names no model before `:`"),
        (&["--max-rss-mib", "0"], "`0` is not a number above 0"),
    ] {
        let out = report(dir.path(), args);
        assert_eq!(out.code, 2, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn without_slo_the_report_recommends_for_the_scenarios_slo() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = format!("slo = [\"p99_ms <= 10000\"]\n{SCENARIO}");
    let run = common::sweep_in(dir.path(), &scenario, &[]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(
        info["scenario"]["slo"],
        serde_json::json!(["p99_ms <= 10000"])
    );
    // The sweep's own report already leads with it.
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(page.contains("id=\"recommendation\""));
    let out = report(dir.path(), &[]);
    assert!(
        out.stdout.starts_with(
            "objectives: p99_ms <= 10000 (from the scenario's slo; latency objectives count cold \
             starts)\n"
        ),
        "{}",
        out.stdout
    );
    let any_valid = run.alls().iter().any(|r| r["valid"] == "true");
    assert_eq!(out.code, if any_valid { 0 } else { 1 }, "{}", out.stdout);
    // --slo replaces the scenario's objectives.
    let out = report(dir.path(), &["--slo", "p99_ms<=0.001"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .starts_with("objectives: p99_ms <= 0.001 (from the command line")
    );
}

/// Issue 14: with on-demand placement, a point "met" p99 <= 1.5 s at 265 ms while 7 requests (its
/// cold starts) took up to 966 ms, and the report never mentioned them. One worker holding one of
/// two ONNX models at a time loads a model for about half the requests.
#[test]
fn on_demand_cold_starts_count_in_the_slo_and_appear_in_the_report() {
    let models = common::models_path();
    let scenario = format!(
        "name = \"cold\"\nslo = [\"p99_ms <= 0.001\", \"cold_p99_ms <= 0.001\"]\n\
         [[model]]\nname = \"mlp\"\npath = \"{models}/mlp.onnx\"\ndims = {{ batch = 1 }}\n\
         [[model]]\nname = \"resnet\"\npath = \"{models}/resnet_small.onnx\"\ndims = {{ batch = 1 }}\n\
         [on_demand]\nmax_models = 1\n\
         [workload]\nwarmup_requests = 20\nrequests = 200\nmin_requests = 10\n\
         [sweep]\nplacement = \"on-demand\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let run = common::sweep_in(dir.path(), &scenario, &[]);
    assert_eq!(run.code, 1, "the SLO is missed: {}", run.stderr);
    let all = run.row("all");
    let cold = common::num(all, "cold_starts");
    assert!(cold > 40.0, "about half the requests load a model: {cold}");
    let steady_p99_ms = common::num(all, "latency_p99_us") / 1e3;
    let cold_p50_ms = common::num(all, "cold_start_p50_ms");
    assert!(common::num(all, "cold_start_p99_ms") >= cold_p50_ms);

    // The sweep's check counts the cold starts: with over 1% of the requests cold, p99 is at
    // least the cold starts' median, whatever the steady-state latency.
    assert_eq!(all["slo_met"], "false");
    let checked: f64 = all["reason"]
        .split("SLO missed: p99_ms = ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no p99 miss: {}", all["reason"]));
    assert!(
        // Both sides are rounded to the µs.
        checked + 0.001 >= cold_p50_ms && checked + 0.001 >= steady_p99_ms,
        "p99 checked {checked} ms, steady {steady_p99_ms} ms, cold p50 {cold_p50_ms} ms"
    );
    assert!(
        all["reason"].contains("SLO missed: cold_p99_ms = "),
        "{}",
        all["reason"]
    );
    // What follows needs a point whose only reasons are its SLO. On a loaded machine the closed
    // loop may also lag: then the report calls the point invalid for that, whatever the objectives.
    if !all["reason"]
        .split("; ")
        .all(|r| r.starts_with("SLO missed: "))
    {
        common::assert_valid_timing_aside(all);
        let out = report(dir.path(), &["--slo", "p99_ms<=100000"]);
        assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains(": invalid: "), "{}", out.stdout);
        return;
    }

    // The report checks the same value from the histogram log: an objective just under it is
    // missed, one just over it met (the sweep's reasons were only its SLO).
    let under = format!("{:.3}", checked * 0.98);
    let out = report(dir.path(), &["--slo", &format!("p99_ms<={under}")]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains(&format!("misses p99_ms <= {}: ", shortest(&under))),
        "{}",
        out.stdout
    );
    let over = format!("p99_ms<={:.3}", checked * 1.02);
    assert_eq!(report(dir.path(), &["--slo", &over]).code, 0);
    // Every cold start, warm-up's included, is in the histogram log: the check is exact.
    assert!(
        !out.stderr.contains("not all in its histogram log"),
        "{}",
        out.stderr
    );
    // The cold starts appear beside the verdict, and an objective on them alone can be met.
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let table = section(&page, "id=\"recommendation\"", "</table>");
    assert!(
        table.contains(&format!("{cold} cold starts (p99 ")),
        "{table}"
    );
    let generous = format!(
        "cold_p99_ms<={}",
        common::num(all, "cold_start_max_ms") * 2.0 + 1.0
    );
    let out = report(dir.path(), &["--slo", "p99_ms<=100000", "--slo", &generous]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(", {cold} cold starts (p99 ")),
        "{}",
        out.stdout
    );
}

/// A decimal number as `bench` prints a bound: no trailing zeros, no trailing point.
fn shortest(v: &str) -> &str {
    if v.contains('.') {
        v.trim_end_matches('0').trim_end_matches('.')
    } else {
        v
    }
}

/// Splits a command line of the guide into words: spaces separate, single quotes group.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut word, mut quoted, mut any) = (String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

/// The body of the first fenced block of `md` whose info string is `info`.
fn fenced<'a>(md: &'a str, info: &str) -> &'a str {
    let open = format!("```{info}\n");
    let from = md
        .find(&open)
        .unwrap_or_else(|| panic!("no ```{info} block"))
        + open.len();
    &md[from..from + md[from..].find("```").unwrap()]
}

/// docs/guides/choosing-a-deployment.md: its scenario is `scenarios/deployment.toml`, and its
/// commands, run on a shorter sweep of it, print what the page shows, but for the measured numbers.
#[test]
fn the_choosing_a_deployment_guide_runs_as_written() {
    let guide = std::fs::read_to_string("docs/guides/choosing-a-deployment.md").unwrap();
    let scenario = fenced(&guide, "toml id=deployment");
    assert_eq!(
        scenario,
        std::fs::read_to_string("scenarios/deployment.toml").unwrap(),
        "the guide shows scenarios/deployment.toml as it is"
    );
    let sh: Vec<&str> = fenced(&guide, "sh").lines().collect();
    assert_eq!(
        sh[0],
        "bench sweep --scenario scenarios/deployment.toml --out reports/deployment"
    );
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().display().to_string();
    let sweep = common::bench(&[
        "sweep",
        "--quiet",
        "--scenario",
        "scenarios/deployment.toml",
        "--out",
        &out_dir,
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
    ]);
    assert!(sweep.code == 0 || sweep.code == 1, "{}", sweep.stderr);

    // The shown output: each `$ ` command and the lines it printed.
    let text = fenced(&guide, "text");
    let mut shown: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("$ ") {
            Some(cmd) => shown.push((cmd, Vec::new())),
            None => shown
                .last_mut()
                .expect("output follows a command")
                .1
                .push(line),
        }
    }
    assert_eq!(shown.len(), 2, "two commands shown");
    assert_eq!(shown[0].0, sh[1], "the first is the one the page runs");
    for (cmd, lines) in &shown {
        let args: Vec<String> = words(cmd)
            .into_iter()
            .skip(1)
            .map(|w| w.replace("reports/deployment", &out_dir))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = common::bench(&args);
        let got: Vec<&str> = out.stdout.lines().collect();
        let none = got.get(1) == Some(&"recommended: none: no point meets every objective");
        assert_eq!(
            out.code,
            if none { 1 } else { 0 },
            "{cmd}: {}{}",
            out.stdout,
            out.stderr
        );
        // The page shows one machine's answer; here a point may meet or miss by a few percent,
        // and a report without a winner has one line more (the `none` line and no winner's).
        let page_none = lines.get(1) == Some(&"recommended: none: no point meets every objective");
        if none == page_none {
            assert_eq!(got.len(), lines.len(), "{cmd}:\n{}", out.stdout);
        }
        assert_eq!(got[0], lines[0], "the objectives line");
        assert!(got[1].starts_with("recommended: "), "{}", got[1]);
        // Every point is named once, by number and id, as on the page.
        let ids = |ls: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = ls[1..ls.len() - 2]
                .iter()
                .filter_map(|l| {
                    let l = l.trim_start().trim_start_matches("recommended: ");
                    let (id, _) = l.split_once(": ")?;
                    Some(id.to_string())
                })
                .filter(|id| id.starts_with('#'))
                .collect();
            v.sort();
            v
        };
        assert_eq!(ids(&got), ids(lines), "{cmd}:\n{}", out.stdout);
        assert!(got[got.len() - 2].ends_with("/report-slo.html"));
        assert!(got[got.len() - 1].ends_with("/summary-slo.md"));
    }
}

/// Regression (issue 24): off a terminal (a CI log), a sweep printed nothing per point, only the
/// table at the end; each finished point now gets a line with its verdict and the time left.
/// `--quiet` keeps stderr to warnings.
#[test]
fn off_a_terminal_each_finished_point_prints_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    let sweep = |out: &str, quiet: bool| {
        let _turn = common::shared();
        let mut cmd = BenchCommand::cargo_bin("bench").unwrap();
        cmd.args(["sweep", "--scenario"])
            .arg(&file)
            .arg("--out")
            .arg(dir.path().join(out));
        if quiet {
            cmd.arg("--quiet");
        }
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = sweep("loud", false);
    // `point N/M ID: ...`; other notes about a point (`point ID: 73 requests per trial are too
    // few ...`, when a busy machine slowed it) are not progress lines, and --quiet keeps them.
    let progress = |l: &&str| {
        l.strip_prefix("point ")
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    };
    let lines: Vec<&str> = stderr.lines().filter(progress).collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with("point 1/2 w1-"), "{stderr}");
    assert!(lines[1].starts_with("point 2/2 w2-"), "{stderr}");
    for line in &lines {
        assert!(
            (line.contains(": ok, ") || line.contains(": INVALID, "))
                && line.contains(" req/s, p99 ")
                && line.contains(" took ")
                && line.contains(" in"),
            "{line}"
        );
    }
    assert!(
        lines[0].contains(" left"),
        "the second point is to come: {}",
        lines[0]
    );
    let quiet = sweep("quiet", true);
    assert!(!quiet.lines().any(|l| progress(&l)), "{quiet}");
}

/// Regression (issue 24): a `bench run` of several models named its scenario and folder after the
/// first model alone; the name now joins every model's (`linear+mlp`).
#[test]
fn a_multi_model_run_is_named_after_every_model() {
    let dir = tempfile::tempdir().unwrap();
    let models = common::models_path();
    let _turn = common::shared();
    let out = BenchCommand::cargo_bin("bench")
        .unwrap()
        .current_dir(dir.path())
        .args(["run", "--dry-run"])
        .arg(format!("{models}/linear.onnx"))
        .arg(format!("{models}/mlp.onnx"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let scenario = dir.path().join("reports/linear+mlp/scenario.toml");
    let text = std::fs::read_to_string(&scenario)
        .unwrap_or_else(|e| panic!("{}: {e}\n{stderr}", scenario.display()));
    assert!(text.contains("name = \"linear+mlp\""), "{text}");
}

/// Regression (issue 24): `bench report DIR --slo ...` silently rewrote the sweep's `report.html`
/// and `summary.md`; it now writes `report-slo.html` and `summary-slo.md` beside them, and says so.
#[test]
fn report_slo_writes_beside_the_sweeps_report_not_over_it() {
    let (dir, _run) = tiny_sweep();
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let (page, md) = (read("report.html"), read("summary.md"));
    let out = report(dir.path(), &["--slo", "p99_ms<=10000"]);
    assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
    assert!(read("report.html") == page && read("summary.md") == md);
    let slo_page = String::from_utf8(read("report-slo.html")).unwrap();
    assert!(slo_page.contains("id=\"recommendation\""));
    assert!(
        String::from_utf8(read("summary-slo.md"))
            .unwrap()
            .contains("p99_ms <= 10000")
    );
    assert!(
        out.stdout.contains("report-slo.html") && out.stdout.contains("summary-slo.md"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("left as they were"),
        "says where it wrote: {}",
        out.stderr
    );
}

/// Measures the page in the browser and logs one `LAYOUT {json}` console line: the page's and
/// the window's width, each table's tallest row in lines, the width of each verdict or reason
/// column in ems, the pairs of overlapping texts in the
/// Pareto and throughput charts, how many key entries of each chart lie above the bottom of its
/// data, and the RGB distance of the two nearest line colours of the spectrum and throughput charts.
const MEASURE: &str = r#"<script>
(() => {
  const box = (e) => e.getBoundingClientRect();
  const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
    Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  const rows = [...document.querySelectorAll('tbody')].map((tb) => {
    const line = parseFloat(getComputedStyle(tb.rows[0].cells[0]).lineHeight);
    return Math.max(...[...tb.rows].map((r) => box(r).height)) / line;
  });
  // The width of each verdict or reason column (the last of its table), in ems.
  const tableAfter = (id) => {
    let e = document.getElementById(id);
    while (e && !(e.tagName === 'TABLE' || e.querySelector?.('table'))) e = e.nextElementSibling;
    return e && (e.tagName === 'TABLE' ? e : e.querySelector('table'));
  };
  const why = ['recommendation', 'verdicts'].map(tableAfter).filter((t) => t).map((t) => {
    const c = t.tBodies[0].rows[0].lastElementChild;
    return box(c).width / parseFloat(getComputedStyle(c).fontSize);
  });
  const charts = { pareto: document.querySelector('#pareto + figure svg'),
    spectrum: document.querySelector('#spectrum + figure svg'),
    throughput: document.querySelector('#throughput + figure svg') };
  const overlaps = {};
  for (const name of ['pareto', 'throughput']) {
    const texts = [...charts[name].querySelectorAll('text')].filter((t) => t.textContent.trim());
    const pairs = [];
    texts.forEach((a, i) => texts.slice(i + 1).forEach((b) => {
      if (overlap(box(a), box(b))) pairs.push([a.textContent.trim(), b.textContent.trim()]);
    }));
    overlaps[name] = pairs;
  }
  // A key's entries: the texts that name a point (spectrum), a curve (throughput) or a line.
  const keyText = { pareto: /^(Pareto front|objective: )/, spectrum: /-cpu-/,
    throughput: /^t\d+ (pipe|shm) c\d+$/ };
  const keyOverData = {};
  let nearest = 1000;
  for (const [name, svg] of Object.entries(charts)) {
    const data = [...svg.querySelectorAll('polyline')]
      .filter((l) => l.getAttribute('stroke-width') === '2');
    const keys = [...svg.querySelectorAll('text')]
      .filter((t) => keyText[name].test(t.textContent.trim()));
    const dataBottom = Math.max(...data.map((l) => box(l).bottom));
    keyOverData[name] = keys.length ? keys.filter((t) => box(t).top < dataBottom).length : -1;
    if (name !== 'pareto') {
      const rgb = [...new Set(data.map((l) => l.getAttribute('stroke')))]
        .map((c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)));
      rgb.forEach((a, i) => rgb.slice(i + 1).forEach((b) => {
        nearest = Math.min(nearest, Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]));
      }));
    }
  }
  console.log('LAYOUT ' + JSON.stringify({
    page: document.documentElement.scrollWidth, window: window.innerWidth,
    rows, why, overlaps, keyOverData, nearest }));
})();
</script>"#;

/// Regression (issue 24): at 30 points the page did not read: a squeezed verdict column (rows
/// 5–12 lines tall), a table wider than the page, overlapping Pareto labels, legends over the data
/// and repeated colours. A 32-point sweep whose every point misses its SLO (long reasons, whatever
/// the timing), measured in headless Chromium.
#[test]
fn the_page_reads_well_at_32_points() {
    let scenario = "name = \"thirty-two\"\n\
        slo = [\"p99_ms <= 0.001\", \"throughput_rps >= 1000000000\"]\n\
        [[model]]\nname = \"fast\"\nsynthetic = { mean = \"200us\", wait = \"sleep\" }\n\
        [workload]\nwarmup_requests = 5\nduration = \"100ms\"\nmin_requests = 10\n\
        [load]\nconcurrency = [1, 2, 4, 8]\n\
        [sweep]\nworkers = [1, 2]\ntransfer = [\"pipe\", \"shm\"]\nintra_threads = [1, 2]\n";
    let dir = tempfile::tempdir().unwrap();
    let run = common::sweep_in(dir.path(), scenario, &[]);
    assert_eq!(run.alls().len(), 32, "{}", run.stderr);
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let measured = dir.path().join("measured.html");
    std::fs::write(
        &measured,
        page.replace("</body>", &format!("{MEASURE}</body>")),
    )
    .unwrap();
    let png = dir.path().join("shot.png");
    let (_, stderr) = chromium_screenshot(&std::fs::canonicalize(&measured).unwrap(), &png);
    let line = stderr
        .lines()
        .find_map(|l| l.split_once("LAYOUT ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no LAYOUT line: {stderr}"));
    let json = &line[..line.rfind("}\"").unwrap_or_else(|| panic!("{line}")) + 1];
    let m: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert!(
        m["page"].as_f64() <= m["window"].as_f64(),
        "the page is wider than the window: {m}"
    );
    // The reasons have room: two of them wrap to about three lines (the rows were 12 lines tall).
    // How many reasons a point gets depends on the machine's load; the room does not.
    let why = m["why"].as_array().unwrap();
    assert!(!why.is_empty(), "{m}");
    for ems in why {
        assert!(
            ems.as_f64().unwrap() >= 15.0,
            "a squeezed reason column: {m}"
        );
    }
    for lines in m["rows"].as_array().unwrap() {
        assert!(lines.as_f64().unwrap() <= 8.0, "a row too tall: {m}");
    }
    for chart in ["pareto", "throughput"] {
        assert_eq!(m["overlaps"][chart], serde_json::json!([]), "{chart}: {m}");
    }
    for chart in ["pareto", "spectrum", "throughput"] {
        assert_eq!(
            m["keyOverData"][chart], 0,
            "{chart}'s key over its data: {m}"
        );
    }
    assert!(
        m["nearest"].as_f64().unwrap() > 60.0,
        "two lines of a chart in nearly one colour: {m}"
    );
}
