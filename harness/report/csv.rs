//! `results.csv`: long format, one row per point × model plus one `all` row per point.

use std::path::{Path, PathBuf};

use super::{Row, write_atomic};

/// Accumulates rows and rewrites the file after each point.
pub struct CsvReport {
    path: PathBuf,
    rows: Vec<Row>,
}

impl CsvReport {
    pub fn new(path: &Path) -> CsvReport {
        CsvReport {
            path: path.to_path_buf(),
            rows: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Adds one point's rows and rewrites the file (temp file, then rename).
    pub fn append(&mut self, rows: Vec<Row>) -> anyhow::Result<()> {
        self.rows.extend(rows);
        let bytes = to_csv(&self.rows)?;
        write_atomic(&self.path, &bytes)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", self.path.display()))
    }
}

/// Serialises rows with a header line; floats keep three decimals.
pub fn to_csv(rows: &[Row]) -> anyhow::Result<Vec<u8>> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        w.write_record(header())?;
    }
    for r in rows {
        let mut r = r.clone();
        for v in [
            &mut r.duration_s,
            &mut r.throughput_rps,
            &mut r.latency_p50_us,
            &mut r.latency_p90_us,
            &mut r.latency_p95_us,
            &mut r.latency_p99_us,
            &mut r.latency_p999_us,
            &mut r.latency_max_us,
            &mut r.latency_mean_us,
            &mut r.compute_p50_us,
            &mut r.compute_p99_us,
            &mut r.compute_mean_us,
            &mut r.load_ms,
            &mut r.rss_mib,
        ] {
            *v = (*v * 1000.0).round() / 1000.0;
        }
        w.serialize(r)?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// The column names, in order.
pub fn header() -> Vec<&'static str> {
    vec![
        "point",
        "point_id",
        "workers",
        "intra_threads",
        "transfer",
        "provider",
        "concurrency",
        "model",
        "input_staging",
        "requests",
        "errors",
        "warmup_requests",
        "duration_s",
        "throughput_rps",
        "latency_p50_us",
        "latency_p90_us",
        "latency_p95_us",
        "latency_p99_us",
        "latency_p999_us",
        "latency_max_us",
        "latency_mean_us",
        "compute_p50_us",
        "compute_p99_us",
        "compute_mean_us",
        "load_ms",
        "rss_mib",
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            point: 0,
            point_id: "w1-t1-pipe-cpu-c1".into(),
            workers: 1,
            intra_threads: 1,
            transfer: "pipe".into(),
            provider: "cpu".into(),
            concurrency: 1,
            model: "all".into(),
            input_staging: "per_request".into(),
            requests: 10,
            errors: 0,
            warmup_requests: 2,
            duration_s: 1.23456,
            throughput_rps: 8.1,
            latency_p50_us: 1.0,
            latency_p90_us: 2.0,
            latency_p95_us: 3.0,
            latency_p99_us: 4.0,
            latency_p999_us: 5.0,
            latency_max_us: 6.0,
            latency_mean_us: 2.5,
            compute_p50_us: 0.5,
            compute_p99_us: 1.5,
            compute_mean_us: 0.75,
            load_ms: 12.0,
            rss_mib: 40.0,
        }
    }

    #[test]
    fn header_matches_the_serialised_fields() {
        let bytes = to_csv(&[row()]).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let first = text.lines().next().unwrap();
        assert_eq!(first, header().join(","));
        assert!(text.lines().nth(1).unwrap().contains(",1.235,"), "{text}");
        let empty = String::from_utf8(to_csv(&[]).unwrap()).unwrap();
        assert_eq!(empty.trim_end(), header().join(","));
    }

    #[test]
    fn append_rewrites_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut rep = CsvReport::new(&dir.path().join("results.csv"));
        rep.append(vec![row()]).unwrap();
        rep.append(vec![row(), row()]).unwrap();
        let text = std::fs::read_to_string(rep.path()).unwrap();
        assert_eq!(text.lines().count(), 4);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
