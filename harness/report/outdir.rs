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
use crate::report::{HTML_FILE, HTML_SLO_FILE, SUMMARY_FILE, SUMMARY_SLO_FILE, hlog};

/// The file `bench capacity` writes into its output folder.
pub(crate) const CAPACITY_CSV: &str = "capacity.csv";

/// The command that writes into the folder: each writes its own files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writer {
    /// `bench sweep`: results.csv, run.json, hlog/, report.html, summary.md, the benchmark JSON.
    Sweep,
    /// `bench run`: as `Sweep`, and the scenario.toml it writes from its flags.
    Run,
    /// `bench capacity`: capacity.csv.
    Capacity,
}

/// The run's latencies (µs) as JSON for github-action-benchmark's tool `customSmallerIsBetter`,
/// which `sweep`, `run` and `report` write into the results folder.
pub(crate) const SMALLER_FILE: &str = "benchmark-smaller.json";
/// The run's throughput (requests/s) for the tool `customBiggerIsBetter`.
pub(crate) const BIGGER_FILE: &str = "benchmark-bigger.json";

/// The scenario file `bench run` writes into its output folder.
pub(crate) const RUN_SCENARIO: &str = "scenario.toml";

/// How a scenario file written by `bench run` begins (its header names the command line).
const RUN_HEADER: &str = "# Written by `bench run";

/// What `bench run` writes in its folder: a sweep's files, then the scenario from its flags (last,
/// so a sweep's list is this one without it).
const RUN_FILES: [&str; 9] = [
    CSV_FILE,
    JSON_FILE,
    HTML_FILE,
    SUMMARY_FILE,
    SMALLER_FILE,
    BIGGER_FILE,
    HTML_SLO_FILE,
    SUMMARY_SLO_FILE,
    RUN_SCENARIO,
];

impl Writer {
    /// The files the command writes, by name, in the folder itself.
    fn files(self) -> &'static [&'static str] {
        match self {
            Writer::Sweep => &RUN_FILES[..RUN_FILES.len() - 1],
            Writer::Run => &RUN_FILES,
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

/// Whether `dir` holds a point that `writer` measured: a row under the header of its results
/// file, or a histogram log. A run that failed before its first point was measured (a model
/// ONNX Runtime rejects, a worker that cannot start) leaves a header-only `results.csv` and a
/// `run.json`; those hold nothing to keep, so they do not claim the folder.
pub(crate) fn measured(dir: &Path, writer: Writer) -> bool {
    let has_row = |file: &str| {
        std::fs::read_to_string(dir.join(file)).is_ok_and(|text| {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .nth(1)
                .is_some()
        })
    };
    let table = match writer {
        Writer::Sweep | Writer::Run => CSV_FILE,
        Writer::Capacity => CAPACITY_CSV,
    };
    has_row(table)
        || (writer.writes_hlog()
            && hlog_files(&hlog::dir(dir))
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "hlog")))
}

/// After a run that failed: when it measured nothing, removes what it wrote into `dir` (the
/// header-only results, `run.json`, `bench run`'s `scenario.toml`, temporary files), and `dir`
/// itself when the run `created` it and nothing else is left there. A folder with a measured
/// point keeps everything. Returns what it removed, by name.
pub(crate) fn discard_unmeasured(dir: &Path, writer: Writer, created: bool) -> Vec<String> {
    if measured(dir, writer) {
        return Vec::new();
    }
    let removed = clear(dir, writer).unwrap_or_default();
    if created {
        // Only an empty folder goes: anything else in it is not this run's.
        let _ = std::fs::remove_dir(hlog::dir(dir));
        let _ = std::fs::remove_dir(dir);
    }
    removed
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
    if !measured(dir, writer) {
        // An earlier run that failed before measuring a point: nothing to keep or mix.
        let removed = clear(dir, writer)
            .with_context(|| format!("cannot clear an earlier run's files in {what}"))?;
        eprintln!(
            "bench: removed the files of an earlier run that measured nothing ({}) from {}",
            removed.join(", "),
            dir.display()
        );
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
        // A header and a row: a measured point, for the results files.
        std::fs::write(p, "h\nx\n").unwrap();
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
            HTML_SLO_FILE,
            SUMMARY_SLO_FILE,
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
            HTML_SLO_FILE,
            SUMMARY_SLO_FILE,
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

    /// Regression: a `bench run` whose model failed to load left a header-only `results.csv` and
    /// `run.json`, and the fixed re-run was refused as if they held results.
    #[test]
    fn a_folder_whose_run_measured_nothing_is_free_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join(CSV_FILE), "point,point_id,valid\n").unwrap();
        std::fs::write(d.join(JSON_FILE), "{}").unwrap();
        std::fs::write(d.join(RUN_SCENARIO), "# Written by `bench run m.onnx`.\n").unwrap();
        std::fs::create_dir_all(hlog::dir(d)).unwrap();
        std::fs::write(hlog::dir(d).join(".w1.hlog.tmp12"), "half").unwrap();
        touch(&d.join("notes.txt"));
        assert!(!measured(d, Writer::Run));
        claim(d, Writer::Run, false, "--out d", None).unwrap();
        for gone in [CSV_FILE, JSON_FILE, RUN_SCENARIO] {
            assert!(!d.join(gone).exists(), "{gone}");
        }
        assert!(d.join("notes.txt").exists());
        // An empty results file too; a capacity.csv with its header only.
        std::fs::write(d.join(CSV_FILE), "").unwrap();
        claim(d, Writer::Sweep, false, "--out d", None).unwrap();
        std::fs::write(d.join(CAPACITY_CSV), "config,capacity_rps\n\n").unwrap();
        claim(d, Writer::Capacity, false, "--out d", None).unwrap();
        // One row, or one histogram log, is a measured point.
        std::fs::write(d.join(CSV_FILE), "point,valid\n0,true\n").unwrap();
        assert!(measured(d, Writer::Sweep));
        assert!(claim(d, Writer::Sweep, false, "--out d", None).is_err());
        std::fs::write(d.join(CSV_FILE), "point,valid\n").unwrap();
        touch(&hlog::dir(d).join("w1.hlog"));
        assert!(measured(d, Writer::Sweep));
    }

    #[test]
    fn a_failed_run_removes_what_it_wrote_only_when_it_measured_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(CSV_FILE), "point,valid\n").unwrap();
        std::fs::write(out.join(RUN_SCENARIO), "# Written by `bench run m.onnx`.\n").unwrap();
        let removed = discard_unmeasured(&out, Writer::Run, true);
        assert_eq!(removed, [CSV_FILE, RUN_SCENARIO]);
        assert!(!out.exists(), "the folder the run created goes when empty");
        // A folder that was there stays; a measured point keeps everything.
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(RUN_SCENARIO), "# Written by `bench run m.onnx`.\n").unwrap();
        discard_unmeasured(&out, Writer::Run, false);
        assert!(out.exists() && !out.join(RUN_SCENARIO).exists());
        std::fs::write(out.join(CSV_FILE), "point,valid\n0,true\n").unwrap();
        std::fs::write(out.join(RUN_SCENARIO), "# Written by `bench run m.onnx`.\n").unwrap();
        assert!(discard_unmeasured(&out, Writer::Run, true).is_empty());
        assert!(out.join(CSV_FILE).exists() && out.join(RUN_SCENARIO).exists());
    }
}
