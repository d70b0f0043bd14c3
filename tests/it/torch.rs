//! The torch runtime end to end: the original PyTorch modules in Python workers, beside ONNX
//! Runtime, on the bundled models.
//!
//! - A sweep over runtime × transfer runs both runtimes with every transfer mode and labels the rows.
//! - Every transfer mode gives bit-identical torch outputs for the same sample.
//! - `bench parity` passes on the bundled models, and fails (exit 1) with absurdly tight tolerances
//!   or with weights built from another seed.
//! - A Python without torch fails with a message that says how to install it.
//! - The own-model guide's export snippet runs on torch 2.15 (the dynamo exporter), and the guide's
//!   `bench inspect` and `bench run` lines work on what it wrote.
//!
//! These tests need torch in `.venv` (`scripts/setup.sh --torch`; `scripts/test.sh` installs it).

use std::path::{Path, PathBuf};

use crate::common;

use assert_cmd::Command;
use bench::scenario::{self, Runtime};

const FIXTURE: &str = "tests/scenarios/torch.toml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fixture with some of its lines replaced, written into `dir` with its paths made absolute.
fn fixture_in(dir: &Path, edit: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(root().join(FIXTURE)).unwrap();
    let abs = root().display().to_string();
    text = text.replace("\"../../", &format!("\"{abs}/"));
    text = text.replace(
        "python_path = \"../..\"",
        &format!("python_path = \"{abs}\""),
    );
    for (from, to) in edit {
        assert!(text.contains(from), "the fixture has no `{from}`");
        text = text.replace(from, to);
    }
    let file = dir.join("s.toml");
    std::fs::write(&file, text).unwrap();
    file
}

fn bench() -> Command {
    let mut c = Command::cargo_bin("bench").unwrap();
    c.current_dir(root());
    c
}

#[test]
fn a_sweep_runs_ort_and_torch_side_by_side_with_every_transfer() {
    // Python workers loading torch: this test's turn to load the machine (`common::shared`).
    let _turn = common::shared();
    let dir = tempfile::tempdir().unwrap();
    let file = fixture_in(dir.path(), &[]);
    let out = bench()
        .args(["sweep", "--quiet", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rows = common::read_rows(&dir.path().join("results.csv"));
    common::assert_ok_timing_aside(out.status.code().unwrap_or(-1), &rows, &stderr);
    let alls: Vec<_> = rows.iter().filter(|r| r["model"] == "all").collect();
    let ids: Vec<&str> = alls.iter().map(|r| r["point_id"].as_str()).collect();
    // The runtime varies fastest; ort's ids are those of a sweep without the axis.
    assert_eq!(
        ids,
        [
            "w1-t1-pipe-cpu-c2",
            "w1-t1-pipe-cpu-c2-torch",
            "w1-t1-shm-cpu-c2",
            "w1-t1-shm-cpu-c2-torch",
            "w1-t1-index-cpu-c2",
            "w1-t1-index-cpu-c2-torch",
        ]
    );
    for r in &rows {
        let id = &r["point_id"];
        let runtime = if id.ends_with("-torch") {
            "torch"
        } else {
            "ort"
        };
        assert_eq!(r["runtime"], runtime, "{id}");
        common::assert_valid_timing_aside(r);
        assert_eq!(r["errors"], "0", "{id} {}", r["model"]);
        if r["kind"] == "model" {
            assert!(common::num(r, "requests") > 0.0, "{id} {}", r["model"]);
            assert!(
                common::num(r, "compute_p50_us") > 0.0,
                "{id} {}",
                r["model"]
            );
        }
    }
    // The workers say which runtime they ran.
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(run["points"].as_array().unwrap().len(), 6);
}

#[test]
fn every_transfer_mode_gives_bit_identical_torch_outputs() {
    let s = scenario::load(&root().join(FIXTURE)).unwrap();
    let runtime = common::assert_transfers_agree(&s, Runtime::Torch);
    assert!(runtime.starts_with("PyTorch 2."), "{runtime}");
}

#[test]
#[cfg_attr(
    not(feature = "tract"),
    ignore = "scenarios/runtimes.toml sweeps tract: run with --features tract (scripts/test.sh does)"
)]
fn parity_passes_on_the_bundled_models() {
    // Python workers loading torch: this test's turn to load the machine (`common::shared`).
    let _turn = common::shared();
    let out = bench()
        .args(["parity", "--scenario", "scenarios/runtimes.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for model in [
        "linear",
        "mlp",
        "resnet_small",
        "encoder_small",
        "mixed_inputs",
    ] {
        for runtime in ["ort", "tract"] {
            let line = stdout
                .lines()
                .find(|l| {
                    l.contains(&format!(" {model} ")) && l.contains(&format!("{runtime} vs torch"))
                })
                .unwrap_or_else(|| panic!("no {runtime} row for {model}:\n{stdout}"));
            assert!(line.contains(" ok "), "{line}");
        }
    }
    assert!(!stdout.contains("MISMATCH"), "{stdout}");
}

#[test]
fn parity_fails_with_absurdly_tight_tolerances() {
    // Python workers loading torch: this test's turn to load the machine (`common::shared`).
    let _turn = common::shared();
    // ONNX Runtime's kernels and PyTorch's differ in the last bits (resnet_small, mlp, encoder_small).
    let dir = tempfile::tempdir().unwrap();
    let file = fixture_in(
        dir.path(),
        &[("atol = 1e-4\nrtol = 1e-3", "atol = 0\nrtol = 0")],
    );
    let out = bench()
        .args(["parity", "--scenario"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.lines().any(|l| l.contains("MISMATCH")), "{stdout}");
}

#[test]
fn parity_fails_when_the_weights_come_from_another_seed() {
    // Python workers loading torch: this test's turn to load the machine (`common::shared`).
    let _turn = common::shared();
    let dir = tempfile::tempdir().unwrap();
    // The MLP built from seed 1 has other weights than the ONNX file (exported from seed 0).
    let file = fixture_in(
        dir.path(),
        &[(
            "module = \"models.zoo:MLP\"\nweights = ",
            "module = \"models.zoo:MLP\"\ninit_seed = 1\n# weights = ",
        )],
    );
    let out = bench()
        .args(["parity", "--scenario"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for l in stdout.lines().filter(|l| l.contains("ort vs torch")) {
        let mismatch = l.contains("MISMATCH");
        assert_eq!(mismatch, l.contains(" mlp "), "{l}");
    }
}

#[test]
fn a_python_without_torch_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    // A bare virtualenv: no torch, no numpy.
    let venv = dir.path().join("venv");
    let made = std::process::Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success(), "python3 -m venv failed");
    let file = fixture_in(
        dir.path(),
        &[("runtime = [\"ort\", \"torch\"]", "runtime = \"torch\"")],
    );
    let out = bench()
        .env("BENCH_PYTHON", venv.join("bin/python"))
        .args(["sweep", "--quiet", "--scenario"])
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("PyTorch is not installed"), "{stderr}");
    assert!(stderr.contains("scripts/setup.sh --torch"), "{stderr}");
    assert!(stderr.contains("pip install torch==2.15.0"), "{stderr}");
}

/// The fenced blocks of `lang` in the section of `guide` that starts with the heading `section`.
fn blocks_in_section(guide: &str, section: &str, lang: &str) -> Vec<String> {
    let start = guide
        .find(section)
        .unwrap_or_else(|| panic!("no `{section}`"));
    let rest = &guide[start + section.len()..];
    let body = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut blocks = Vec::new();
    // The open block: its language, its fence's indent (a block in a list item is indented), text.
    let mut open: Option<(String, usize, String)> = None;
    for line in body.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match open.take() {
            None if trimmed.starts_with("```") => {
                open = Some((trimmed[3..].trim().to_string(), indent, String::new()));
            }
            None => {}
            Some((l, _, text)) if trimmed.starts_with("```") && l == lang => blocks.push(text),
            Some(_) if trimmed.starts_with("```") => {}
            Some((l, fence, mut text)) => {
                text.push_str(line.get(indent.min(fence)..).unwrap_or(""));
                text.push('\n');
                open = Some((l, fence, text));
            }
        }
    }
    blocks
}

/// Regression: the own-model guide's export snippet (`dynamic_axes`, an example batch of 1) failed
/// on torch 2.15 without `onnxscript`, and where it ran, the batch of 1 was specialised: the
/// output said `[1, 2]` for `[batch, 2]`. The snippet runs as the guide gives it, with a `MyModel`
/// of token ids; then the guide's `bench inspect` shows the dims by name in the outputs too, and
/// its `bench run` lines run the model at two sizes.
#[test]
fn the_guides_export_snippet_runs_and_bench_runs_what_it_wrote() {
    // torch in Python, then bench: this test's turn to load the machine (`common::shared`).
    let _turn = common::shared();
    let guide = std::fs::read_to_string(root().join("docs/guides/own-model.md")).unwrap();
    let section = "## 1. Export it to ONNX";
    let python = blocks_in_section(&guide, section, "python");
    assert_eq!(python.len(), 1, "one export snippet: {python:?}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models/onnx")).unwrap();
    let model = "import torch\n\n\
        class MyModel(torch.nn.Module):\n\
        \x20   def __init__(self):\n\
        \x20       super().__init__()\n\
        \x20       self.emb = torch.nn.Embedding(30522, 8)\n\
        \x20       self.head = torch.nn.Linear(8, 2)\n\n\
        \x20   def forward(self, input_ids):\n\
        \x20       return self.head(self.emb(input_ids).mean(dim=1))\n\n";
    let script = dir.path().join("export.py");
    std::fs::write(&script, format!("{model}{}", python[0])).unwrap();
    let out = std::process::Command::new(root().join(".venv/bin/python"))
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the guide's export failed (torch and onnxscript come from `scripts/setup.sh --torch`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let onnx = dir.path().join("models/onnx/my_model.onnx");
    assert!(onnx.is_file(), "the snippet writes {}", onnx.display());
    assert!(
        dir.path().join("models/onnx/my_model.onnx.data").is_file(),
        "the guide says the weights go to my_model.onnx.data"
    );
    let sh = blocks_in_section(&guide, section, "sh");
    let commands: Vec<&str> = sh
        .iter()
        .flat_map(|b| b.lines())
        .map(|l| l.split(" #").next().unwrap().trim())
        .filter(|l| l.starts_with("bench "))
        .collect();
    assert!(
        commands.iter().any(|c| c.starts_with("bench inspect"))
            && commands
                .iter()
                .filter(|c| c.starts_with("bench run"))
                .count()
                >= 2,
        "{commands:?}"
    );
    for command in commands {
        let args: Vec<&str> = command.split_whitespace().skip(1).collect();
        let mut bench = Command::cargo_bin("bench").unwrap();
        bench.args(&args);
        if args[0] == "run" {
            bench.arg("--quiet");
        }
        let out = bench.current_dir(dir.path()).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if args[0] == "inspect" {
            assert!(out.status.success(), "{command}: {stderr}");
            assert!(
                stdout.contains("input_ids  int64    [batch, seq]"),
                "{command}: {stdout}"
            );
            assert!(
                stdout.contains("logits  float32  [batch, 2]"),
                "the batch dim is not specialised to the example's: {stdout}"
            );
            continue;
        }
        let at = args.iter().position(|a| *a == "--out");
        let results = dir
            .path()
            .join(at.map_or("reports/my_model", |i| args[i + 1]))
            .join("results.csv");
        let rows = common::read_rows(&results);
        common::assert_ok_timing_aside(out.status.code().unwrap_or(-1), &rows, &stderr);
        for r in &rows {
            assert_eq!(r["errors"], "0", "{command}: {r:?}");
        }
    }
}
