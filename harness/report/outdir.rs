//! Output folders: which files `bench` writes into one, whether a folder already holds an earlier
//! run's, and clearing them for `--force`.
//!
//! A sweep into a used folder kept whatever it did not overwrite: the `hlog/` files of another
//! scenario's points, a `report.html` of the old run. Beside the new `results.csv` they mislead
//! `bench report`, `bench merge` and `bench compare`, and a re-run cluster job could publish an
//! old shard as new. So a command refuses a folder that holds results, unless the run continues
//! them (`bench sweep --resume`) or replaces them (`--force`). `--force` removes only the files
//! `bench` writes there, by name (and `hlog/` only of `.hlog` files), never anything else.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::report::results::{CSV_FILE, JSON_FILE};
use crate::report::{HTML_FILE, SUMMARY_FILE, hlog};

/// The file `bench capacity` writes into its output folder.
pub(crate) const CAPACITY_CSV: &str = "capacity.csv";

/// The command that writes into the folder: each writes its own files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    /// `bench sweep`: results.csv, run.json, hlog/, report.html, summary.md.
    Sweep,
    /// `bench run`: as `Sweep`, and the scenario.toml it writes from its flags.
    Run,
    /// `bench capacity`: capacity.csv.
    Capacity,
}

/// The scenario file `bench run` writes into its output folder.
pub(crate) const RUN_SCENARIO: &str = "scenario.toml";

/// How a scenario file written by `bench run` begins (its header names the command line).
const RUN_HEADER: &str = "# Written by `bench run";

impl Writer {
    /// The files the command writes, by name, in the folder itself.
    fn files(self) -> &'static [&'static str] {
        match self {
            Writer::Sweep => &[CSV_FILE, JSON_FILE, HTML_FILE, SUMMARY_FILE],
            Writer::Run => &[CSV_FILE, JSON_FILE, HTML_FILE, SUMMARY_FILE, RUN_SCENARIO],
            Writer::Capacity => &[CAPACITY_CSV],
        }
    }

    /// The files whose presence means the folder holds an earlier run's results.
    fn results(self) -> &'static [&'static str] {
        match self {
            Writer::Sweep | Writer::Run => &[CSV_FILE, JSON_FILE],
            Writer::Capacity => &[CAPACITY_CSV],
        }
    }

    fn writes_hlog(self) -> bool {
        matches!(self, Writer::Sweep | Writer::Run)
    }
}

/// What an earlier run left in `dir` that `writer` would mix with its own: its result files and
/// a non-empty `hlog/`. Empty when `dir` does not exist.
pub(crate) fn earlier_results(dir: &Path, writer: Writer) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = writer
        .results()
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.exists())
        .collect();
    let logs = hlog::dir(dir);
    if writer.writes_hlog() && !hlog_files(&logs).is_empty() {
        found.push(logs);
    }
    found
}

/// The `.hlog` files in `logs` (and the temporary files bench writes them through).
fn hlog_files(logs: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(logs) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| {
                n.ends_with(".hlog") || is_temp_of(&n, |base| base.ends_with(".hlog"))
            })
        })
        .collect()
}

/// Whether `name` is a temporary file `crate::report::write_atomic` writes on the way to a file
/// that `base` accepts: `.NAME.tmpPID`.
fn is_temp_of(name: &str, base: impl Fn(&str) -> bool) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some((target, pid)) = rest.rsplit_once(".tmp") else {
        return false;
    };
    !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && base(target)
}

/// Makes `dir` ready for `writer`: refuses a folder that holds an earlier run's results unless
/// `force`, and with `force` removes the files `writer` writes there, and nothing else. `what`
/// names the folder in messages (`--out reports/x`); `resume_hint` is how to continue the earlier
/// run instead, when the command can.
pub(crate) fn claim(
    dir: &Path,
    writer: Writer,
    force: bool,
    what: &str,
    resume_hint: Option<&str>,
) -> anyhow::Result<()> {
    if writer == Writer::Run {
        check_run_scenario(dir, what)?;
    }
    let found = earlier_results(dir, writer);
    if found.is_empty() {
        return Ok(());
    }
    if !force {
        let names: Vec<String> = found
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .map(|n| if n == "hlog" { "hlog/".into() } else { n })
            .collect();
        let resume = resume_hint.map_or_else(String::new, |h| format!("continue it with {h}, "));
        anyhow::bail!(
            "{what} holds the results of an earlier run ({}); bench does not mix two runs in one \
             folder: {resume}replace them with --force (it removes only the files bench writes \
             there), or choose another folder",
            names.join(", ")
        );
    }
    let removed = clear(dir, writer)
        .with_context(|| format!("--force: cannot clear the earlier results in {what}"))?;
    if !removed.is_empty() {
        eprintln!(
            "bench: --force: removed the earlier run's {} from {}",
            removed.join(", "),
            dir.display()
        );
    }
    Ok(())
}

/// A `scenario.toml` in `bench run`'s folder that `bench run` did not write is someone's own
/// file: `bench run` would overwrite it, so the folder is refused, even with `--force`.
fn check_run_scenario(dir: &Path, what: &str) -> anyhow::Result<()> {
    let file = dir.join(RUN_SCENARIO);
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Ok(());
    };
    anyhow::ensure!(
        text.starts_with(RUN_HEADER),
        "{what} holds a {RUN_SCENARIO} that `bench run` did not write, and `bench run` writes its \
         scenario there: choose another folder (or run that file with `bench sweep --scenario {}`)",
        file.display()
    );
    Ok(())
}

/// Removes the files `writer` writes in `dir` (and their temporary files), and `hlog/`'s `.hlog`
/// files, then `hlog/` if that left it empty. Returns what it removed, by name.
fn clear(dir: &Path, writer: Writer) -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    let files = writer.files();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for path in entries.flatten().map(|e| e.path()) {
            let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            let owned =
                files.contains(&name.as_str()) || is_temp_of(&name, |base| files.contains(&base));
            if owned && path.is_file() {
                std::fs::remove_file(&path)?;
                removed.push(name);
            }
        }
    }
    if writer.writes_hlog() {
        let logs = hlog::dir(dir);
        let files = hlog_files(&logs);
        for f in &files {
            std::fs::remove_file(f)?;
        }
        if !files.is_empty() {
            removed.push(format!("hlog/ ({} file(s))", files.len()));
        }
        // Only an empty folder goes: anything else in it is not bench's.
        let _ = std::fs::remove_dir(&logs);
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x").unwrap();
    }

    #[test]
    fn a_new_or_unrelated_folder_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        claim(&d.join("new"), Writer::Sweep, false, "--out new", None).unwrap();
        touch(&d.join("notes.txt"));
        touch(&d.join("s.toml"));
        std::fs::create_dir_all(hlog::dir(d)).unwrap();
        claim(d, Writer::Sweep, false, "--out d", None).unwrap();
        // A sweep's folder is not a capacity run's, and the other way round.
        touch(&d.join(CSV_FILE));
        claim(d, Writer::Capacity, false, "--out d", None).unwrap();
    }

    /// Regression: a sweep into a used --out kept the hlog/ files of another scenario's points.
    #[test]
    fn a_used_folder_is_refused_unless_forced_and_force_clears_only_benchs_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            CSV_FILE,
            JSON_FILE,
            HTML_FILE,
            SUMMARY_FILE,
            ".results.csv.tmp123",
        ] {
            touch(&d.join(f));
        }
        touch(&hlog::dir(d).join("w9-old-point.hlog"));
        touch(&hlog::dir(d).join("README"));
        for f in [
            "notes.txt",
            "results.csv.bak",
            "capacity.csv",
            ".results.csv.tmpx",
        ] {
            touch(&d.join(f));
        }
        let e = claim(d, Writer::Sweep, false, "--out d", Some("--resume d")).unwrap_err();
        let e = e.to_string();
        assert!(
            e.starts_with(
                "--out d holds the results of an earlier run (results.csv, run.json, hlog/)"
            ),
            "{e}"
        );
        assert!(
            e.contains("continue it with --resume d, replace them with --force"),
            "{e}"
        );
        assert!(d.join(CSV_FILE).exists(), "refusing removes nothing");
        claim(d, Writer::Sweep, true, "--out d", None).unwrap();
        for gone in [
            CSV_FILE,
            JSON_FILE,
            HTML_FILE,
            SUMMARY_FILE,
            ".results.csv.tmp123",
        ] {
            assert!(!d.join(gone).exists(), "{gone}");
        }
        assert!(!hlog::dir(d).join("w9-old-point.hlog").exists());
        for kept in [
            "notes.txt",
            "results.csv.bak",
            "capacity.csv",
            ".results.csv.tmpx",
        ] {
            assert!(d.join(kept).exists(), "{kept} is not bench's sweep file");
        }
        assert!(
            hlog::dir(d).join("README").exists(),
            "hlog/ keeps what is not a log"
        );
        assert!(earlier_results(d, Writer::Sweep).is_empty());
        // A capacity folder: capacity.csv only.
        let e = claim(d, Writer::Capacity, false, "--out d", None).unwrap_err();
        assert!(e.to_string().contains("(capacity.csv)"), "{e}");
        claim(d, Writer::Capacity, true, "--out d", None).unwrap();
        assert!(!d.join("capacity.csv").exists() && d.join("notes.txt").exists());
    }

    #[test]
    fn bench_run_keeps_a_scenario_it_did_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join(RUN_SCENARIO), "# Written by `bench run m.onnx`.\n").unwrap();
        touch(&d.join(CSV_FILE));
        claim(d, Writer::Run, true, "--out d", None).unwrap();
        assert!(!d.join(RUN_SCENARIO).exists() && !d.join(CSV_FILE).exists());
        std::fs::write(d.join(RUN_SCENARIO), "[[model]]\nname = \"mine\"\n").unwrap();
        for force in [false, true] {
            let e = claim(d, Writer::Run, force, "--out d", None).unwrap_err();
            assert!(
                e.to_string().contains("that `bench run` did not write"),
                "{e}"
            );
        }
        assert!(d.join(RUN_SCENARIO).exists());
    }
}
