//! HdrHistogram interval logs (`.hlog`, the V2 compressed format every HdrHistogram
//! implementation reads): one file per sweep point under `hlog/`, so percentiles can be recomputed
//! exactly, merged across trials or machines, and plotted by other tools.
//!
//! Each measured trial is one interval per tag. A tag is `<name>.<metric>`, where `name` is a model,
//! an ensemble group or `all`, and `metric` is one of [`METRICS`]. Values are nanoseconds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use crate::metrics::Record;

/// The recorded metrics, in the order they are written, with the [`Record`] field each comes from.
pub const METRICS: [&str; 6] = [
    "latency",
    "service",
    "send_lag",
    "compute",
    "overhead",
    "cold_start",
];

fn histogram<'a>(r: &'a Record, metric: &str) -> &'a Histogram<u64> {
    match metric {
        "latency" => &r.latency,
        "service" => &r.service,
        "send_lag" => &r.lag,
        "compute" => &r.compute,
        "overhead" => &r.overhead,
        "cold_start" => &r.cold,
        other => unreachable!("unknown metric {other}"),
    }
}

/// The folder of a results directory that holds the logs.
pub fn dir(results: &Path) -> PathBuf {
    results.join("hlog")
}

/// The log file of one point.
pub fn path(results: &Path, point_id: &str) -> PathBuf {
    dir(results).join(format!("{}.hlog", file_safe(point_id)))
}

/// A tag is `name.metric`; characters a tag cannot hold (',', ' ', line breaks) become '_'.
pub fn tag(name: &str, metric: &str) -> String {
    format!("{name}.{metric}")
        .chars()
        .map(|c| {
            if matches!(c, ',' | ' ' | '\r' | '\n') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One trial of a point: when it started (since the point's first trial) and what it recorded,
/// as `(name, record)` pairs.
pub struct Interval<'a> {
    pub start: Duration,
    pub span: Duration,
    pub records: Vec<(&'a str, &'a Record)>,
}

/// Encodes a log: the Java implementation's header lines, then one line per non-empty histogram.
pub fn encode(
    out: &mut Vec<u8>,
    point_id: &str,
    started: SystemTime,
    intervals: &[Interval],
) -> anyhow::Result<()> {
    writeln!(out, "#[Histogram log format version 1.3]")?;
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment(&format!("bench point {point_id}; values in nanoseconds"))
        .add_comment("tags are <model|group|all>.<metric>")
        .with_start_time(started)
        .with_base_time(started);
    // The legend goes after the header comments, as the Java writer puts it.
    let mut header = Vec::new();
    builder.begin_log_with(&mut header, &mut serializer)?;
    out.extend_from_slice(&header);
    writeln!(
        out,
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    )?;
    let mut writer = IntervalLogWriterBuilder::new().begin_log_with(out, &mut serializer)?;
    for iv in intervals {
        for (name, record) in &iv.records {
            for metric in METRICS {
                let h = histogram(record, metric);
                if h.is_empty() {
                    continue;
                }
                let t = tag(name, metric);
                writer
                    .write_histogram(h, iv.start, iv.span, Tag::new(&t))
                    .map_err(|e| anyhow::anyhow!("cannot encode histogram {t}: {e:?}"))?;
            }
        }
    }
    Ok(())
}

/// One histogram read back from a log.
pub struct Entry {
    pub tag: String,
    pub start: Duration,
    pub span: Duration,
    pub histogram: Histogram<u64>,
}

/// Reads every interval histogram of a log.
pub fn read(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode(&bytes).with_context(|| format!("{} is not a readable histogram log", path.display()))
}

pub fn decode(bytes: &[u8]) -> anyhow::Result<Vec<Entry>> {
    use base64::Engine as _;
    let mut deserializer = Deserializer::new();
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| anyhow::anyhow!("malformed log line: {e:?}"))?;
        if let LogEntry::Interval(h) = entry {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(h.encoded_histogram())
                .context("an interval's histogram is not base64")?;
            let histogram: Histogram<u64> = deserializer
                .deserialize(&mut raw.as_slice())
                .map_err(|e| anyhow::anyhow!("cannot decode a histogram: {e:?}"))?;
            out.push(Entry {
                tag: h.tag().map(|t| t.as_str().to_string()).unwrap_or_default(),
                start: h.start_timestamp(),
                span: h.duration(),
                histogram,
            });
        }
    }
    Ok(out)
}

/// Adds every interval with the same tag into one histogram, losslessly.
pub fn totals(entries: &[Entry]) -> std::collections::BTreeMap<String, Histogram<u64>> {
    let mut out: std::collections::BTreeMap<String, Histogram<u64>> = Default::default();
    for e in entries {
        out.entry(e.tag.clone())
            .or_insert_with(crate::metrics::new_histogram)
            .add(&e.histogram)
            .expect("histograms of the same range add");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Timing;

    fn record(values_us: &[u64]) -> Record {
        let mut r = Record::default();
        for &v in values_us {
            r.record_ok(Timing {
                latency: Duration::from_micros(v),
                service: Duration::from_micros(v / 2 + 1),
                lag: Duration::ZERO,
                compute_ns: v * 100,
            });
        }
        r
    }

    #[test]
    fn logs_round_trip_per_tag_and_trial() {
        let a = record(&[10, 20, 30, 4000]);
        let b = record(&[15, 25]);
        let intervals = [
            Interval {
                start: Duration::ZERO,
                span: Duration::from_millis(1500),
                records: vec![("mlp", &a), ("all", &a)],
            },
            Interval {
                start: Duration::from_millis(1500),
                span: Duration::from_millis(700),
                records: vec![("mlp", &b), ("all", &b)],
            },
        ];
        let mut buf = Vec::new();
        encode(&mut buf, "w1-t1-pipe", SystemTime::UNIX_EPOCH, &intervals).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.starts_with("#[Histogram log format version 1.3]\n"));
        assert!(text.contains("Tag=mlp.latency,"));
        let entries = decode(&buf).unwrap();
        let lat: Vec<&Entry> = entries.iter().filter(|e| e.tag == "mlp.latency").collect();
        assert_eq!(lat.len(), 2);
        assert_eq!(lat[0].histogram, a.latency);
        assert_eq!(lat[1].start, Duration::from_millis(1500));
        assert_eq!(lat[1].span, Duration::from_millis(700));
        let total = &totals(&entries)["all.latency"];
        assert_eq!(total.len(), 6);
        assert_eq!(total.max(), a.latency.max());
        // Empty histograms (no cold starts here) are not written.
        assert!(entries.iter().all(|e| !e.tag.ends_with("cold_start")));
    }

    #[test]
    fn tags_and_file_names_are_sanitised() {
        assert_eq!(tag("my model,v2", "latency"), "my_model_v2.latency");
        assert_eq!(
            path(Path::new("r"), "w1-t1-pipe/r500"),
            Path::new("r/hlog/w1-t1-pipe_r500.hlog")
        );
    }
}
