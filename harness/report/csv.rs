//! `results.csv`: long format, one row per point × model plus one `all` row per point.

use std::path::{Path, PathBuf};

use super::{Row, write_atomic};

/// Accumulates rows and rewrites the file after each point.
pub(crate) struct CsvReport {
    path: PathBuf,
    rows: Vec<Row>,
}

impl CsvReport {
    pub(crate) fn new(path: &Path) -> CsvReport {
        CsvReport {
            path: path.to_path_buf(),
            rows: Vec::new(),
        }
    }

    /// Continues an existing file: its rows are kept (a missing file starts empty). The file is
    /// read as every results folder is ([`crate::report::results::read_rows`]).
    pub(crate) fn resume(path: &Path) -> anyhow::Result<CsvReport> {
        let rows = match crate::report::results::read_rows(path) {
            Ok(table) => table.rows,
            Err(crate::report::results::ReadError::Missing { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(CsvReport {
            path: path.to_path_buf(),
            rows,
        })
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Adds one point's rows and rewrites the file (temp file, then rename).
    pub(crate) fn append(&mut self, rows: Vec<Row>) -> anyhow::Result<()> {
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
        w.serialize(r.rounded())?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// The column names, in order (the field names of [`Row`]).
pub fn header() -> Vec<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.serialize(Row::default())
        .expect("a default row serialises");
    let bytes = w.into_inner().expect("in-memory writer");
    let text = String::from_utf8(bytes).expect("CSV is UTF-8");
    text.lines()
        .next()
        .unwrap_or_default()
        .split(',')
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user reads the columns in docs/reference/columns.md, never in the source: its table names
    /// every column, and nothing that is not one. (`tests/docs.rs` checks the same file end to end.)
    #[test]
    fn the_columns_reference_documents_every_column() {
        // The first cell of each table row names its columns: "| `a`, `b` | unit | meaning |".
        let named: std::collections::BTreeSet<&str> =
            include_str!("../../docs/reference/columns.md")
                .lines()
                .filter(|l| l.starts_with("| `"))
                .filter_map(|l| l.split(" |").next())
                .flat_map(|cell| cell.split('`').skip(1).step_by(2))
                .collect();
        let header = header();
        let missing: Vec<&String> = header
            .iter()
            .filter(|c| !named.contains(c.as_str()))
            .collect();
        let extra: Vec<&&str> = named
            .iter()
            .filter(|n| !header.iter().any(|c| c == *n))
            .collect();
        assert!(missing.is_empty(), "undocumented CSV columns: {missing:?}");
        assert!(
            extra.is_empty(),
            "documented but not CSV columns: {extra:?}"
        );
    }

    fn row() -> Row {
        Row {
            point_id: "w1-t1-pipe-cpu-c1".into(),
            model: "all".into(),
            duration_s: 1.23456,
            latency_p50_us: 1.0,
            ..Row::default()
        }
    }

    #[test]
    fn header_matches_the_serialised_fields() {
        let bytes = to_csv(&[row()]).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let first = text.lines().next().unwrap();
        assert_eq!(first, header().join(","));
        assert!(header().iter().any(|h| h == "latency_p99_us") && header().len() > 40);
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
