//! End to end: a tiny real sweep, then `bench report` on its folder. The page must be complete and
//! self-contained, open in headless Chromium without a console message, and the histogram logs
//! must agree with the CSV when read by an independent implementation (python `hdrhistogram`).

mod common;

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

    // One chart each: the spectrum, throughput against p99, per-model latency and throughput.
    assert_eq!(page.matches("<svg").count(), 4, "four charts");
    assert_eq!(page.matches("</svg>").count(), 4);
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
