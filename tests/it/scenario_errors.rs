//! Golden tests of the error messages a user sees for a broken scenario.
//!
//! Every `tests/bad_scenarios/NAME.toml` holds exactly one problem (those in [`SEVERAL`] hold the
//! number given there, all reported in one run), and its sibling `NAME.expected`
//! holds the complete stderr of `bench validate --scenario tests/bad_scenarios/NAME.toml`, run from
//! the package root. The test runs the real binary on every case, checks exit code 2, an empty stdout
//! and stderr equal to the `.expected` file, and that every expected message names a line
//! (`NAME.toml:N:`) and gives a `fix:`. All failing cases are listed together in one failure.
//!
//! Messages about an ONNX file print its canonical, absolute path; the package root in those paths is
//! written as `<ROOT>` in the `.expected` files so that they do not depend on the checkout's location.
//!
//! To add a case, write `tests/bad_scenarios/NAME.toml` (model paths are relative to the fixture,
//! e.g. `../../models/onnx/linear.onnx`), then regenerate the expected output and review the diff:
//!
//! ```sh
//! UPDATE_EXPECTED=1 cargo test --test it scenario_errors::
//! git diff tests/bad_scenarios
//! ```
//!
//! With `UPDATE_EXPECTED=1` the test rewrites every `.expected` file from the binary's actual stderr
//! (exit code and the other checks still apply).

use std::path::{Path, PathBuf};

use assert_cmd::Command;

const DIR: &str = "tests/bad_scenarios";

/// The fewest cases the corpus may hold.
const MIN_CASES: usize = 25;

/// Cases whose single error has no line, and why: both are about the file as a whole.
const NO_LINE: &[(&str, &str)] = &[
    (
        "not_utf8",
        "the file cannot be read as text, so there are no lines",
    ),
    (
        "no_models",
        "the problem is a key that is absent from the whole file",
    ),
];

/// Cases with more than one problem, how many, and why: every problem of a file is reported
/// together, not only the first.
const SEVERAL: &[(&str, usize, &str)] = &[
    (
        "several_problems",
        5,
        "unknown keys (two with the nearest key), a wrong type and a missing model file at once",
    ),
    (
        "misspelt_dim",
        2,
        "a misspelt dim name (with the nearest dim) and the dim it leaves unbound",
    ),
    (
        "batching_bad_values",
        3,
        "a zero max_batch, a max_delay over the limit and an unknown idle policy at once",
    ),
    (
        "batching_with_device_and_batch",
        2,
        "dynamic batching with the static batch axis and with the device transfer",
    ),
    (
        "channel_bad_values",
        3,
        "an unknown channel, an unknown spin policy and a negative longest spin at once",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join(DIR))
        .expect("tests/bad_scenarios exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Replaces the package root (as canonicalized by the binary) with `<ROOT>`.
fn normalize(stderr: &str) -> String {
    let mut s = stderr.to_string();
    for r in [root().canonicalize().unwrap_or_else(|_| root()), root()] {
        s = s.replace(&r.display().to_string(), "<ROOT>");
    }
    s
}

/// Runs one case; returns its problems (empty when it passes).
fn check(name: &str, update: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let toml = format!("{DIR}/{name}.toml");
    let expected_path = root().join(DIR).join(format!("{name}.expected"));
    let out = Command::cargo_bin("bench")
        .expect("the bench binary is built")
        .current_dir(root())
        .args(["validate", "--scenario", &toml])
        .output()
        .expect("bench runs");
    let stderr = normalize(&String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);

    if out.status.code() != Some(2) {
        problems.push(format!("exit code is {:?}, expected 2", out.status.code()));
    }
    if !stdout.is_empty() {
        problems.push(format!("stdout is not empty:\n{stdout}"));
    }

    let expected = if update {
        std::fs::write(&expected_path, &stderr).expect("write the .expected file");
        stderr.clone()
    } else {
        match std::fs::read_to_string(&expected_path) {
            Ok(e) => e,
            Err(err) => {
                problems.push(format!(
                    "cannot read {}: {err} (run with UPDATE_EXPECTED=1 to create it)",
                    expected_path.display()
                ));
                return problems;
            }
        }
    };
    if stderr != expected {
        problems.push(format!(
            "stderr differs from {name}.expected\n--- expected\n{expected}--- actual\n{stderr}---"
        ));
    }

    // Checks on the expected text itself, so a bad golden file cannot be accepted by accident.
    let count = SEVERAL
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or(1, |(_, n, _)| *n);
    let head = if count == 1 {
        "error: the scenario has 1 problem:\n".to_string()
    } else {
        format!("error: the scenario has {count} problems:\n")
    };
    if !expected.starts_with(&head) {
        problems.push(format!(
            "expected output should report exactly {count} problem(s) (one per fixture unless \
             listed in SEVERAL):\n{expected}"
        ));
    }
    let located = format!("{toml}:");
    let has_line = expected.lines().any(|l| {
        l.strip_prefix(&located).is_some_and(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            !digits.is_empty() && rest[digits.len()..].starts_with(':')
        })
    });
    let exempt = NO_LINE.iter().any(|(n, _)| *n == name);
    if !has_line && !exempt {
        problems.push(format!(
            "expected message has no `{toml}:LINE:`:\n{expected}"
        ));
    }
    if has_line && exempt {
        problems.push(
            "listed in NO_LINE but the message now has a line: remove it from NO_LINE".into(),
        );
    }
    if expected.matches("\n  fix: ").count() != count {
        problems.push(format!(
            "expected message has not one `fix:` hint per problem:\n{expected}"
        ));
    }
    problems
}

#[test]
fn bad_scenarios_print_the_expected_errors() {
    let update = std::env::var_os("UPDATE_EXPECTED").is_some_and(|v| v == "1");
    let names = cases();
    let mut failures = Vec::new();

    if names.len() < MIN_CASES {
        failures.push(format!(
            "the corpus has {} cases, fewer than {MIN_CASES}",
            names.len()
        ));
    }
    for (n, _, _) in SEVERAL {
        if !names.iter().any(|c| c == n) {
            failures.push(format!("SEVERAL names `{n}`, which is not a case"));
        }
    }
    for (n, _) in NO_LINE {
        if !names.iter().any(|c| c == n) {
            failures.push(format!("NO_LINE names `{n}`, which is not a case"));
        }
    }
    // Orphaned golden files: a .expected without its .toml.
    for e in std::fs::read_dir(root().join(DIR)).unwrap() {
        let p: PathBuf = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "expected") {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            if !names.contains(&stem) {
                failures.push(format!(
                    "{} has no {stem}.toml",
                    Path::new(DIR).join(p.file_name().unwrap()).display()
                ));
            }
        }
    }
    for name in &names {
        let problems = check(name, update);
        if !problems.is_empty() {
            failures.push(format!("[{name}]\n  {}", problems.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad-scenario cases failed (UPDATE_EXPECTED=1 rewrites the .expected files):\n\n{}",
        failures.len(),
        names.len(),
        failures.join("\n\n")
    );
}
