//! The files a sweep writes as it goes, behind one small trait: each [`Reporter`] hears of every
//! finished point and of the end, and the sweep talks to one [`Reporters`] fan-out. A new output
//! file is a reporter added here, not another call in the sweep loop.
//!
//! Every reporter writes as soon as it hears (temp file + rename), so a crash or a signal keeps
//! every finished point: `results.csv` ([`CsvReporter`]), `hlog/<point>.hlog` ([`HlogReporter`])
//! and `run.json` ([`RunJsonReporter`], last, so that it never names a point whose rows are not
//! written yet).

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::csv::CsvReport;
use super::json::{PointInfo, RunInfo, WorkerReport, unix_now};
use super::{Row, hlog, write_atomic};

/// One measured point, as the reporters receive it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PointOutput<'a> {
    pub(crate) index: usize,
    pub(crate) id: &'a str,
    pub(crate) rows: &'a [Row],
    pub(crate) workers: &'a [WorkerReport],
    /// The point's histograms as an interval log.
    pub(crate) hlog: Option<&'a [u8]>,
    /// The parent's resident memory after the point, in MiB.
    pub(crate) parent_rss_mib: f64,
}

/// How the sweep ended, as the reporters receive it.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunEnd {
    pub(crate) interrupted: bool,
    /// The point in progress when a signal came: measured in part, so not reported.
    pub(crate) dropped_point: Option<String>,
}

/// Something that writes a sweep's results as they come.
pub(crate) trait Reporter {
    fn point(&mut self, p: &PointOutput<'_>) -> anyhow::Result<()>;
    fn end(&mut self, end: &RunEnd) -> anyhow::Result<()>;
}

/// `results.csv`, rewritten after each point.
pub(crate) struct CsvReporter(pub CsvReport);

impl Reporter for CsvReporter {
    fn point(&mut self, p: &PointOutput<'_>) -> anyhow::Result<()> {
        self.0.append(p.rows.to_vec())
    }
    fn end(&mut self, _: &RunEnd) -> anyhow::Result<()> {
        Ok(())
    }
}

/// `hlog/<point>.hlog`, one file per point.
pub(crate) struct HlogReporter {
    pub(crate) out_dir: PathBuf,
}

impl Reporter for HlogReporter {
    fn point(&mut self, p: &PointOutput<'_>) -> anyhow::Result<()> {
        let Some(bytes) = p.hlog else {
            return Ok(());
        };
        let dir = hlog::dir(&self.out_dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = hlog::path(&self.out_dir, p.id);
        write_atomic(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    }
    fn end(&mut self, _: &RunEnd) -> anyhow::Result<()> {
        Ok(())
    }
}

/// `run.json`: the run's metadata, with one entry per finished point.
pub(crate) struct RunJsonReporter {
    pub(crate) path: PathBuf,
    pub(crate) info: RunInfo,
}

impl RunJsonReporter {
    /// Writes the metadata as it stands (so a run that dies early still says what it was).
    pub(crate) fn write(&self) -> anyhow::Result<()> {
        write_json(&self.path, &self.info)
    }
}

impl Reporter for RunJsonReporter {
    fn point(&mut self, p: &PointOutput<'_>) -> anyhow::Result<()> {
        self.info.points.push(PointInfo {
            point: p.index,
            point_id: p.id.to_string(),
            worker_concurrency: p.rows.first().map_or(1, |r| r.worker_concurrency),
            workers: p.workers.to_vec(),
            parent_rss_mib: p.parent_rss_mib,
            source: None,
            session: p
                .rows
                .first()
                .map(Row::session_settings)
                .unwrap_or_default(),
        });
        self.info.points_done += 1;
        self.write()
    }
    fn end(&mut self, end: &RunEnd) -> anyhow::Result<()> {
        self.info.interrupted = end.interrupted;
        self.info.dropped_point = end.dropped_point.clone();
        self.info.finished_unix_s = Some(unix_now());
        self.write()
    }
}

/// Every reporter of a sweep, told in order.
pub(crate) struct Reporters(pub Vec<Box<dyn Reporter>>);

impl Reporters {
    /// The files of a sweep into `out_dir`: hlog, then results.csv, then run.json.
    pub(crate) fn sweep_files(
        out_dir: &Path,
        csv: CsvReport,
        info: RunInfo,
    ) -> anyhow::Result<Reporters> {
        let json = RunJsonReporter {
            path: out_dir.join("run.json"),
            info,
        };
        json.write()?;
        Ok(Reporters(vec![
            Box::new(HlogReporter {
                out_dir: out_dir.to_path_buf(),
            }),
            Box::new(CsvReporter(csv)),
            Box::new(json),
        ]))
    }

    pub(crate) fn point(&mut self, p: &PointOutput<'_>) -> anyhow::Result<()> {
        self.0.iter_mut().try_for_each(|r| r.point(p))
    }

    pub(crate) fn end(&mut self, end: &RunEnd) -> anyhow::Result<()> {
        self.0.iter_mut().try_for_each(|r| r.end(end))
    }
}

fn write_json(path: &Path, info: &RunInfo) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(info)?;
    write_atomic(path, &bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it hears, to check the fan-out's order.
    struct Log(std::rc::Rc<std::cell::RefCell<Vec<String>>>, &'static str);

    impl Reporter for Log {
        fn point(&mut self, p: &PointOutput<'_>) -> anyhow::Result<()> {
            self.0.borrow_mut().push(format!("{} {}", self.1, p.id));
            Ok(())
        }
        fn end(&mut self, e: &RunEnd) -> anyhow::Result<()> {
            self.0
                .borrow_mut()
                .push(format!("{} end {}", self.1, e.interrupted));
            Ok(())
        }
    }

    #[test]
    fn every_reporter_hears_every_point_in_order() {
        let heard = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut r = Reporters(vec![
            Box::new(Log(heard.clone(), "a")),
            Box::new(Log(heard.clone(), "b")),
        ]);
        let p = PointOutput {
            index: 0,
            id: "w1",
            rows: &[],
            workers: &[],
            hlog: None,
            parent_rss_mib: 0.0,
        };
        r.point(&p).unwrap();
        r.end(&RunEnd {
            interrupted: true,
            dropped_point: None,
        })
        .unwrap();
        assert_eq!(
            *heard.borrow(),
            ["a w1", "b w1", "a end true", "b end true"]
        );
    }

    #[test]
    fn the_files_of_a_point_are_written_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let info: RunInfo = serde_json::from_str(
            r#"{"bench_version":"x","git_commit":"x","rustc":"x","ort_version":"x","ort_library":"",
                "host":{"hostname":"h","cpu_model":"c","logical_cores":2,"os":"linux"},"scenario":{"name":"s","file":"s.toml","sha256":"00","seed":0,"models":[]},
                "started_unix_s":0,"points_total":1,"points_done":0,"interrupted":false,"points":[]}"#,
        )
        .unwrap();
        let csv = CsvReport::new(&dir.path().join("results.csv"));
        let mut r = Reporters::sweep_files(dir.path(), csv, info).unwrap();
        let row = Row {
            point_id: "w1".into(),
            model: "all".into(),
            ..Row::default()
        };
        r.point(&PointOutput {
            index: 0,
            id: "w1",
            rows: std::slice::from_ref(&row),
            workers: &[],
            hlog: Some(b"#[hlog]\n"),
            parent_rss_mib: 1.0,
        })
        .unwrap();
        let read = crate::report::results::read_run_info(&dir.path().join("run.json")).unwrap();
        assert_eq!(read.points_done, 1);
        assert_eq!(read.points[0].point_id, "w1");
        assert!(dir.path().join("hlog/w1.hlog").is_file());
        let rows = crate::report::results::read_rows(&dir.path().join("results.csv")).unwrap();
        assert_eq!(rows.rows.len(), 1);
        r.end(&RunEnd {
            interrupted: true,
            dropped_point: Some("w2".into()),
        })
        .unwrap();
        let read = crate::report::results::read_run_info(&dir.path().join("run.json")).unwrap();
        assert!(read.interrupted && read.finished_unix_s.is_some());
        assert_eq!(read.dropped_point.as_deref(), Some("w2"));
    }
}
