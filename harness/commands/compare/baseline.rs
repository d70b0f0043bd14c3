//! Named baselines, kept as criterion keeps them: `bench sweep --save-baseline NAME` copies a
//! run's results (`results.csv`, `run.json`, `hlog/`) to `ROOT/SCENARIO/NAME/`, and `--baseline
//! NAME` (of `bench sweep` and `bench compare`) compares a run against that copy. The root is
//! `reports/baselines` unless `--baselines DIR` says otherwise; a CI job caches or commits it.
//!
//! Saving again keeps the runs it replaces, the last [`KEEP`] of them, in `NAME/earlier/1/` (the
//! most recent) to `NAME/earlier/KEEP/`. Their spread is the run-to-run noise that trials within
//! one run cannot show: a loaded machine shifts a whole run, all its trials together.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::report::hlog;
use crate::report::results::{CSV_FILE, JSON_FILE};

/// Where baselines live when `--baselines` does not say.
pub(crate) const DEFAULT_ROOT: &str = "reports/baselines";

/// Earlier runs kept beside a baseline.
pub(crate) const KEEP: usize = 4;

/// The files of one run in a baseline folder.
const RUN_FILES: [&str; 3] = [CSV_FILE, JSON_FILE, hlog::DIR];

/// Checks a baseline's name: letters, digits, `-`, `_` and `.`, not starting with a dot, so that
/// it is one folder name everywhere.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "baseline name `{name}` may use only letters, digits, `-`, `_` and `.` (not first), e.g. `main`"
        ))
    }
}

/// The folder of baseline `name` of scenario `scenario`.
pub(crate) fn path(root: &Path, scenario: &str, name: &str) -> PathBuf {
    root.join(scenario).join(name)
}

/// Copies the results in `results` into baseline `name` of `scenario`. A baseline of that name
/// becomes its most recent earlier run (of at most [`KEEP`]); the new folder is written beside the
/// old and renamed over it. Returns its folder.
pub(crate) fn save(
    results: &Path,
    root: &Path,
    scenario: &str,
    name: &str,
) -> anyhow::Result<PathBuf> {
    check_name(name).map_err(anyhow::Error::msg)?;
    let dest = path(root, scenario, name);
    let parent = dest.parent().unwrap_or(root);
    std::fs::create_dir_all(parent)
        .with_context(|| format!("--save-baseline: cannot create {}", parent.display()))?;
    let tmp = parent.join(format!(".{name}.saving"));
    let _ = std::fs::remove_dir_all(&tmp);
    let copy = || -> anyhow::Result<()> {
        std::fs::create_dir_all(&tmp)?;
        for f in [CSV_FILE, JSON_FILE] {
            std::fs::copy(results.join(f), tmp.join(f))
                .with_context(|| format!("cannot copy {}", results.join(f).display()))?;
        }
        let logs = hlog::dir(results);
        if logs.is_dir() {
            let into = hlog::dir(&tmp);
            std::fs::create_dir_all(&into)?;
            for entry in std::fs::read_dir(&logs)? {
                let entry = entry?;
                std::fs::copy(entry.path(), into.join(entry.file_name()))?;
            }
        }
        if dest.join(CSV_FILE).is_file() {
            let earlier = tmp.join("earlier");
            for k in (1..KEEP).rev() {
                let from = dest.join("earlier").join(k.to_string());
                if from.is_dir() {
                    std::fs::create_dir_all(&earlier)?;
                    std::fs::rename(&from, earlier.join((k + 1).to_string()))?;
                }
            }
            let last = earlier.join("1");
            std::fs::create_dir_all(&last)?;
            for f in RUN_FILES {
                if dest.join(f).exists() {
                    std::fs::rename(dest.join(f), last.join(f))?;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::rename(&tmp, &dest)?;
        Ok(())
    };
    copy()
        .with_context(|| format!("--save-baseline: cannot save {}", dest.display()))
        .inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&tmp);
        })?;
    Ok(dest)
}

/// The earlier runs kept with the baseline in `dir`, most recent first.
pub(crate) fn earlier(dir: &Path) -> Vec<PathBuf> {
    (1..=KEEP)
        .map(|k| dir.join("earlier").join(k.to_string()))
        .filter(|d| d.join(CSV_FILE).is_file())
        .collect()
}

/// The folder of a saved baseline, or an error that lists the baselines saved for the scenario.
pub(crate) fn find(root: &Path, scenario: &str, name: &str) -> anyhow::Result<PathBuf> {
    check_name(name).map_err(anyhow::Error::msg)?;
    let dir = path(root, scenario, name);
    if dir.join(CSV_FILE).is_file() {
        return Ok(dir);
    }
    let mut saved: Vec<String> = std::fs::read_dir(root.join(scenario))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().join(CSV_FILE).is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    saved.sort();
    anyhow::bail!(
        "no baseline `{name}` of scenario `{scenario}` in {}; {}",
        root.display(),
        if saved.is_empty() {
            "save one with `bench sweep --scenario FILE --save-baseline NAME`".to_string()
        } else {
            format!("its baselines are: {}", saved.join(", "))
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_folder() {
        assert!(check_name("main").is_ok());
        assert!(check_name("v1.2_rc-3").is_ok());
        for bad in ["", ".hidden", "a/b", "..", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn save_replaces_and_find_lists_what_there_is() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        std::fs::create_dir_all(hlog::dir(&run)).unwrap();
        std::fs::write(run.join(CSV_FILE), "point_id,model\n").unwrap();
        std::fs::write(run.join(JSON_FILE), "{}").unwrap();
        std::fs::write(hlog::dir(&run).join("p.hlog"), "x").unwrap();
        let root = tmp.path().join("baselines");
        let saved = save(&run, &root, "nightly", "main").unwrap();
        assert_eq!(saved, root.join("nightly/main"));
        assert!(hlog::dir(&saved).join("p.hlog").is_file());
        // Saving again keeps the run it replaces as the most recent earlier one, and no other
        // file: a stale one goes.
        std::fs::write(saved.join("stale"), "").unwrap();
        save(&run, &root, "nightly", "main").unwrap();
        assert!(!saved.join("stale").exists());
        assert_eq!(earlier(&saved), [saved.join("earlier/1")]);
        assert!(hlog::dir(&saved.join("earlier/1")).join("p.hlog").is_file());
        for _ in 0..KEEP + 2 {
            save(&run, &root, "nightly", "main").unwrap();
        }
        assert_eq!(earlier(&saved).len(), KEEP, "the last KEEP runs, no more");
        assert!(!saved.join(format!("earlier/{}", KEEP + 1)).exists());
        assert_eq!(find(&root, "nightly", "main").unwrap(), saved);
        let err = find(&root, "nightly", "other").unwrap_err().to_string();
        assert!(err.contains("its baselines are: main"), "{err}");
        let err = find(&root, "ensemble", "main").unwrap_err().to_string();
        assert!(err.contains("--save-baseline NAME"), "{err}");
        // A run without results saves nothing and leaves no half-written folder.
        let empty = tmp.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(save(&empty, &root, "nightly", "broken").is_err());
        assert!(!root.join("nightly/broken").exists());
        assert!(!root.join("nightly/.broken.saving").exists());
    }
}
