//! A results folder read back: `run.json` (typed, any schema version), `results.csv` (one lenient
//! reader that matches columns by name) and `hlog/<point>.hlog`.
//!
//! `bench report`, `bench merge`, `bench compare` and `bench sweep --resume` all read folders through
//! this module, so a folder written by another version of bench loads the same way everywhere, and a
//! broken file (a truncated log, a cell that is not a number, a `run.json` that is not one) is a
//! [`ReadError`] naming the file, never a panic. Callers branch on [`ReadError::Missing`]: a report
//! leaves out a missing `run.json` with a note, while a merge cannot go on without it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::report::Row;
use crate::report::hlog;
use crate::report::json::RunInfo;

/// The file names of a results folder.
pub(crate) const CSV_FILE: &str = "results.csv";
pub(crate) const JSON_FILE: &str = "run.json";

/// Columns without which a line of `results.csv` means nothing. Every other column may be missing
/// (a file of another version of bench): it takes its default.
pub(crate) const REQUIRED_COLUMNS: [&str; 2] = ["point_id", "model"];

/// Why part of a results folder could not be read. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("{} is missing", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read {}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{} is not a run.json bench can read: {err}", path.display())]
    RunInfo {
        path: PathBuf,
        err: serde_json::Error,
    },
    #[error(
        "{} lacks the column(s) {}: it is not a results.csv written by `bench sweep`",
        path.display(),
        columns.join(", ")
    )]
    Columns { path: PathBuf, columns: Vec<String> },
    #[error(
        "{} line {line}, column {column} (`{name}`): cannot read {value:?}: {why}; was it written by \
         another version of bench?",
        path.display()
    )]
    Cell {
        path: PathBuf,
        line: u64,
        /// 1-based, as editors count.
        column: usize,
        name: String,
        value: String,
        why: String,
    },
    #[error("{} line {line}: {why}", path.display())]
    Line {
        path: PathBuf,
        line: u64,
        why: String,
    },
    #[error("{} is not a readable histogram log: {why}", path.display())]
    Hlog { path: PathBuf, why: String },
}

fn read_file(path: &Path) -> Result<Vec<u8>, ReadError> {
    std::fs::read(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => ReadError::Missing {
            path: path.to_path_buf(),
        },
        _ => ReadError::Io {
            path: path.to_path_buf(),
            err,
        },
    })
}

/// Reads a `run.json`. Fields this version does not know are ignored; a file without
/// `schema_version` reads as version 1.
pub(crate) fn read_run_info(path: &Path) -> Result<RunInfo, ReadError> {
    let bytes = read_file(path)?;
    serde_json::from_slice(&bytes).map_err(|err| ReadError::RunInfo {
        path: path.to_path_buf(),
        err,
    })
}

/// The rows of a `results.csv`, and the columns its header names.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Row>,
}

impl Table {
    /// Which of `names` the file has no column for.
    pub(crate) fn lacking<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        names
            .into_iter()
            .filter(|n| !self.columns.iter().any(|c| c == n))
            .collect()
    }
}

/// Reads a `results.csv`: columns are matched by name, in any order; columns this version does not
/// know are ignored, and columns it knows that the file lacks take their defaults (only
/// [`REQUIRED_COLUMNS`] must be there). An empty file has no rows.
pub(crate) fn read_rows(path: &Path) -> Result<Table, ReadError> {
    let bytes = read_file(path)?;
    parse_rows(path, &bytes)
}

fn parse_rows(path: &Path, bytes: &[u8]) -> Result<Table, ReadError> {
    let line_error = |line: u64, why: String| ReadError::Line {
        path: path.to_path_buf(),
        line,
        why,
    };
    let mut reader = ::csv::Reader::from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| line_error(1, e.to_string()))?
        .clone();
    let columns: Vec<String> = header.iter().map(String::from).collect();
    let mut table = Table {
        columns,
        rows: Vec::new(),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(table);
    }
    let lacking = table.lacking(REQUIRED_COLUMNS);
    if !lacking.is_empty() {
        return Err(ReadError::Columns {
            path: path.to_path_buf(),
            columns: lacking.into_iter().map(String::from).collect(),
        });
    }
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            let why = match e.kind() {
                ::csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("{len} field(s) where the header has {expected_len}"),
                _ => e.to_string(),
            };
            line_error(line, why)
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let row: Row = record.deserialize(Some(&header)).map_err(|e| {
            let field = match e.kind() {
                ::csv::ErrorKind::Deserialize { err, .. } => {
                    err.field().map(|f| (f as usize, err.kind().to_string()))
                }
                _ => None,
            };
            match field {
                Some((i, why)) => ReadError::Cell {
                    path: path.to_path_buf(),
                    line,
                    column: i + 1,
                    name: header.get(i).unwrap_or_default().to_string(),
                    value: record.get(i).unwrap_or_default().to_string(),
                    why,
                },
                None => line_error(line, e.to_string()),
            }
        })?;
        table.rows.push(row);
    }
    Ok(table)
}

/// A results folder: its `results.csv` read, its `run.json` and histogram logs on demand.
#[derive(Debug, Clone)]
pub(crate) struct Results {
    /// The folder (the one holding the CSV file).
    pub(crate) dir: PathBuf,
    /// The columns the CSV file has.
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Row>,
}

impl Results {
    /// Reads the folder `dir`: its `results.csv` must be there ([`ReadError::Missing`] otherwise).
    pub(crate) fn open(dir: &Path) -> Result<Results, ReadError> {
        Results::from_csv(&dir.join(CSV_FILE))
    }

    /// Reads a results CSV file under any name; the folder holding it is the results folder.
    pub(crate) fn from_csv(file: &Path) -> Result<Results, ReadError> {
        let table = read_rows(file)?;
        Ok(Results {
            dir: file.parent().unwrap_or(Path::new(".")).to_path_buf(),
            columns: table.columns,
            rows: table.rows,
        })
    }

    /// The folder's `run.json`.
    pub(crate) fn run_info(&self) -> Result<RunInfo, ReadError> {
        read_run_info(&self.dir.join(JSON_FILE))
    }

    /// The distinct point ids of the rows, in order.
    pub(crate) fn point_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for r in &self.rows {
            if !ids.contains(&r.point_id) {
                ids.push(r.point_id.clone());
            }
        }
        ids
    }

    /// Where the histogram log of a point is (or would be).
    pub(crate) fn hlog_path(&self, point_id: &str) -> PathBuf {
        hlog::path(&self.dir, point_id)
    }

    /// The histogram log of a point; `None` when the folder has none for it.
    pub(crate) fn hlog(&self, point_id: &str) -> Result<Option<hlog::Log>, ReadError> {
        let path = self.hlog_path(point_id);
        match read_hlog(&path) {
            Ok(log) => Ok(Some(log)),
            Err(ReadError::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every histogram of a point's log added up by tag (all trials together); `None` when the
    /// folder has no log for it.
    pub(crate) fn hlog_totals(
        &self,
        point_id: &str,
    ) -> Result<Option<BTreeMap<String, Histogram<u64>>>, ReadError> {
        let Some(log) = self.hlog(point_id)? else {
            return Ok(None);
        };
        hlog::totals(&log.entries)
            .map(Some)
            .map_err(|e| ReadError::Hlog {
                path: self.hlog_path(point_id),
                why: format!("{e:#}"),
            })
    }
}

/// Reads a histogram log, headers included.
pub(crate) fn read_hlog(path: &Path) -> Result<hlog::Log, ReadError> {
    let bytes = read_file(path)?;
    hlog::decode_log(&bytes).map_err(|e| ReadError::Hlog {
        path: path.to_path_buf(),
        why: format!("{e:#}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Table, ReadError> {
        parse_rows(Path::new("r/results.csv"), text.as_bytes())
    }

    #[test]
    fn rows_read_by_column_name_with_defaults_for_missing_columns() {
        let t = parse("model,extra,point_id,latency_p50_us,rate_rps\nall,x,w1,12.5,\n").unwrap();
        assert_eq!(t.rows.len(), 1);
        let r = &t.rows[0];
        assert_eq!(
            (r.point_id.as_str(), r.model.as_str(), r.latency_p50_us),
            ("w1", "all", 12.5)
        );
        assert_eq!(r.rate_rps, None);
        assert_eq!(r.runtime, "ort", "files from before the runtime column");
        // Files from before the session-option and batch columns: what bench set then.
        assert_eq!(
            (
                r.graph_optimization.as_str(),
                r.execution_mode.as_str(),
                r.inter_threads,
                r.intra_spinning,
                r.cpu_arena,
                r.memory_pattern
            ),
            ("all", "sequential", 1, true, true, true)
        );
        assert_eq!((r.batch, r.throughput_samples_s), (None, None));
        assert_eq!(
            (
                r.parent_cpu_us_per_req,
                r.worker_cpu_us_per_req,
                r.cores_used
            ),
            (None, None, None),
            "files from before the CPU cost columns"
        );
        assert_eq!(t.lacking(["trials", "model"]), ["trials"]);
    }

    #[test]
    fn a_written_file_reads_back_as_it_was() {
        let row = Row {
            point_id: "w1-t1-pipe-cpu-c1".into(),
            model: "all".into(),
            kind: "all".into(),
            runtime: "tract".into(),
            latency_p99_us: 417.125,
            cpu_steal_pct: Some(1.5),
            parent_cpu_us_per_req: Some(12.5),
            worker_cpu_us_per_req: Some(250.125),
            cores_used: Some(1.75),
            valid: true,
            ..Row::default()
        };
        let bytes = crate::report::csv::to_csv(std::slice::from_ref(&row)).unwrap();
        let t = parse_rows(Path::new("x.csv"), &bytes).unwrap();
        assert_eq!(t.rows, [row]);
        assert_eq!(t.columns, crate::report::csv::header());
    }

    /// A results folder of before the CPU cost columns loads everywhere (report, merge, compare,
    /// `--resume`): its rows read with the columns empty, the rest as written.
    #[test]
    fn a_folder_of_before_the_cpu_columns_loads_with_them_empty() {
        const NEW: [&str; 3] = [
            "parent_cpu_us_per_req",
            "worker_cpu_us_per_req",
            "cores_used",
        ];
        let row = Row {
            point_id: "w1-t1-pipe-cpu-c1".into(),
            model: "all".into(),
            kind: "all".into(),
            throughput_rps: 812.5,
            cpu_steal_pct: Some(0.5),
            valid: true,
            ..Row::default()
        };
        // Today's file without the three columns, as the version before them wrote it.
        let mut w = ::csv::Writer::from_writer(Vec::new());
        let header = crate::report::csv::header();
        let keep: Vec<usize> = (0..header.len())
            .filter(|&i| !NEW.contains(&header[i].as_str()))
            .collect();
        w.write_record(keep.iter().map(|&i| &header[i])).unwrap();
        let bytes = crate::report::csv::to_csv(std::slice::from_ref(&row)).unwrap();
        for record in ::csv::Reader::from_reader(&bytes[..]).into_records() {
            let record = record.unwrap();
            w.write_record(keep.iter().map(|&i| &record[i])).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CSV_FILE), w.into_inner().unwrap()).unwrap();
        let r = Results::open(dir.path()).unwrap();
        assert_eq!(r.rows, [row], "the new columns read as empty");
        assert_eq!(r.columns.len(), header.len() - NEW.len());
        let resumed = crate::report::csv::CsvReport::resume(&dir.path().join(CSV_FILE)).unwrap();
        assert_eq!(resumed.rows().len(), 1);
    }

    #[test]
    fn a_bad_cell_names_the_file_line_and_column() {
        let e = parse("point_id,model,latency_p50_us\nw1,all,1\nw2,all,fast\n").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(
                "r/results.csv line 3, column 3 (`latency_p50_us`): cannot read \"fast\""
            ),
            "{msg}"
        );
        let e = parse("point_id,model\nw1,all,extra\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("r/results.csv line 2: 3 field(s)"),
            "{e}"
        );
        let e = parse("a,b\n1,2\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("lacks the column(s) point_id, model"),
            "{e}"
        );
        assert!(parse("").unwrap().rows.is_empty());
    }

    #[test]
    fn run_info_tolerates_unknown_fields_and_reads_old_files_as_version_1() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JSON_FILE);
        // A file from before schema_version, generator_spin_us, shard and points.
        std::fs::write(
            &path,
            r#"{"bench_version":"0.1.0","git_commit":"abc","rustc":"r","ort_version":"1.20",
               "ort_library":"","host":{"hostname":"h","cpu_model":"c","logical_cores":2,"os":"l"},
               "scenario":{"name":"s","file":"s.toml","sha256":"00","seed":1,"models":[]},
               "started_unix_s":5,"finished_unix_s":null,"points_total":2,"points_done":1,
               "interrupted":false,"something_new":[1,2]}"#,
        )
        .unwrap();
        let info = read_run_info(&path).unwrap();
        assert_eq!(info.schema_version, 1);
        assert_eq!(
            (
                info.generator_spin_us,
                info.points.len(),
                info.shard.is_none()
            ),
            (None, 0, true)
        );
        // What this version writes reads back.
        let mut again = info.clone();
        again.schema_version = crate::report::json::SCHEMA_VERSION;
        std::fs::write(&path, serde_json::to_vec(&again).unwrap()).unwrap();
        assert_eq!(read_run_info(&path).unwrap().scenario.sha256, "00");

        std::fs::write(&path, "{\"bench_version\": 3").unwrap();
        let e = read_run_info(&path).unwrap_err();
        assert!(
            e.to_string()
                .contains("run.json is not a run.json bench can read"),
            "{e}"
        );
        let e = read_run_info(&dir.path().join("nope.json")).unwrap_err();
        assert!(matches!(e, ReadError::Missing { .. }), "{e}");
    }

    #[test]
    fn a_broken_log_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CSV_FILE),
            "point_id,model\nw1,all\nw2,all\n",
        )
        .unwrap();
        let r = Results::open(dir.path()).unwrap();
        assert_eq!(r.point_ids(), ["w1", "w2"]);
        assert!(r.hlog("w1").unwrap().is_none());
        std::fs::create_dir(hlog::dir(dir.path())).unwrap();
        std::fs::write(
            r.hlog_path("w1"),
            "#[StartTime: 1.000 (seconds since epoch)]\nTag=all.latency,0.000,1.000,1.0,HISTFAAAAgarbage\n",
        )
        .unwrap();
        let e = r.hlog_totals("w1").unwrap_err();
        assert!(
            e.to_string()
                .contains("w1.hlog is not a readable histogram log"),
            "{e}"
        );
    }
}
