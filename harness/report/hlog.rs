//! HdrHistogram interval logs (`.hlog`, the V2 compressed format every HdrHistogram
//! implementation reads): one file per sweep point under `hlog/`, so percentiles can be recomputed
//! exactly, merged across trials or machines, and plotted by other tools.
//!
//! Each measured trial is one interval per tag. A tag is `<name>.<metric>`, where `name` is a model,
//! an ensemble group or `all`, and `metric` is one of [`METRICS`]. Values are nanoseconds.

use std::collections::{BTreeMap, BTreeSet};
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
pub(crate) const METRICS: [&str; 6] = [
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

/// The name of the folder of a results directory that holds the logs.
pub(crate) const DIR: &str = "hlog";

/// The folder of a results directory that holds the logs.
pub fn dir(results: &Path) -> PathBuf {
    results.join(DIR)
}

/// The log file of one point.
pub fn path(results: &Path, point_id: &str) -> PathBuf {
    dir(results).join(format!("{}.hlog", file_safe(point_id)))
}

/// A tag is `name.metric`; characters a tag cannot hold (',', ' ', line breaks) become '_'.
pub(crate) fn tag(name: &str, metric: &str) -> String {
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

/// Writes the Java implementation's header lines: version, comments, StartTime and BaseTime (both
/// `started`), and the column legend.
fn header(out: &mut Vec<u8>, comments: &[String], started: SystemTime) -> anyhow::Result<()> {
    writeln!(out, "#[Histogram log format version 1.3]")?;
    let mut builder = IntervalLogWriterBuilder::new();
    for c in comments {
        builder.add_comment(c);
    }
    builder.with_start_time(started).with_base_time(started);
    // The legend goes after the header comments, as the Java writer puts it.
    let mut head = Vec::new();
    builder.begin_log_with(&mut head, &mut V2DeflateSerializer::new())?;
    out.extend_from_slice(&head);
    writeln!(
        out,
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    )?;
    Ok(())
}

/// Encodes a log: the Java implementation's header lines, then one line per non-empty histogram.
pub fn encode(
    out: &mut Vec<u8>,
    point_id: &str,
    started: SystemTime,
    intervals: &[Interval],
) -> anyhow::Result<()> {
    header(
        out,
        &[
            format!("bench point {point_id}; values in nanoseconds"),
            "tags are <model|group|all>.<metric>".into(),
        ],
        started,
    )?;
    let mut serializer = V2DeflateSerializer::new();
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

/// Encodes histograms read back from logs (for instance several machines' logs of one point, when
/// `bench merge` joins them): `comments`, then every entry as it is, its start relative to `base`.
pub fn encode_entries(
    out: &mut Vec<u8>,
    comments: &[String],
    base: SystemTime,
    entries: &[Entry],
) -> anyhow::Result<()> {
    header(out, comments, base)?;
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new().begin_log_with(out, &mut serializer)?;
    for e in entries {
        let tag = Tag::new(&e.tag);
        writer
            .write_histogram(&e.histogram, e.start, e.span, tag)
            .map_err(|err| anyhow::anyhow!("cannot encode histogram {}: {err:?}", e.tag))?;
    }
    Ok(())
}

/// One histogram read back from a log.
#[derive(Debug, Clone)]
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

pub(crate) fn decode(bytes: &[u8]) -> anyhow::Result<Vec<Entry>> {
    Ok(decode_log(bytes)?.entries)
}

/// A whole log: its StartTime and BaseTime headers, when present, and every interval. Interval
/// starts are relative to `base_time` (the logs `bench` writes always have one).
pub struct Log {
    pub start_time: Option<SystemTime>,
    pub(crate) base_time: Option<SystemTime>,
    pub entries: Vec<Entry>,
}

/// Reads a whole log, headers included.
pub fn read_log(path: &Path) -> anyhow::Result<Log> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode_log(&bytes)
        .with_context(|| format!("{} is not a readable histogram log", path.display()))
}

pub(crate) fn decode_log(bytes: &[u8]) -> anyhow::Result<Log> {
    use base64::Engine as _;
    let mut deserializer = Deserializer::new();
    let mut out = Vec::new();
    let (mut start_time, mut base_time) = (None, None);
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| anyhow::anyhow!("malformed log line: {e:?}"))?;
        match entry {
            LogEntry::StartTime(d) => start_time = Some(SystemTime::UNIX_EPOCH + d),
            LogEntry::BaseTime(d) => base_time = Some(SystemTime::UNIX_EPOCH + d),
            LogEntry::Interval(h) => {
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
    }
    Ok(Log {
        start_time,
        base_time,
        entries: out,
    })
}

/// Adds `h` into `into`, losslessly. Histograms this bench writes always add; one read from a
/// foreign log may hold values beyond the fixed range of [`crate::metrics::new_histogram`] (one
/// hour), and is then an error, not a panic.
pub(crate) fn add(into: &mut Histogram<u64>, h: &Histogram<u64>, tag: &str) -> anyhow::Result<()> {
    into.add(h).map_err(|e| {
        anyhow::anyhow!(
            "the histogram `{tag}` cannot be added ({e:?}): its values reach {} ns, beyond the \
             {} ns a bench histogram holds",
            h.max(),
            crate::metrics::MAX_NS
        )
    })
}

/// Adds every interval with the same tag into one histogram, losslessly.
pub fn totals(entries: &[Entry]) -> anyhow::Result<BTreeMap<String, Histogram<u64>>> {
    let mut out: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for e in entries {
        let total = out
            .entry(e.tag.clone())
            .or_insert_with(crate::metrics::new_histogram);
        add(total, &e.histogram, &e.tag)?;
    }
    Ok(out)
}

/// Histograms of one trial, by tag.
pub(crate) type Trial = BTreeMap<String, Histogram<u64>>;

/// Adds trial `t` of every log into trial `t` of the result: the same point run on several
/// machines, trial by trial. A log's trials are its intervals, told apart by their start (a trial
/// with no non-empty histogram is not in the log at all). Each log comes with its file, which an
/// error names.
pub(crate) fn add_trials(logs: &[(PathBuf, Log)]) -> anyhow::Result<Vec<Trial>> {
    let mut trials: Vec<Trial> = Vec::new();
    for (path, log) in logs {
        let starts: BTreeSet<Duration> = log.entries.iter().map(|e| e.start).collect();
        let starts: Vec<Duration> = starts.into_iter().collect();
        for e in &log.entries {
            // Every entry's start is in `starts`: its position is the trial.
            let t = starts.binary_search(&e.start).unwrap_or_else(|i| i);
            if trials.len() <= t {
                trials.resize_with(t + 1, Trial::new);
            }
            let total = trials[t]
                .entry(e.tag.clone())
                .or_insert_with(crate::metrics::new_histogram);
            add(total, &e.histogram, &e.tag).with_context(|| format!("{}", path.display()))?;
        }
    }
    Ok(trials)
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
        let total = &totals(&entries).unwrap()["all.latency"];
        assert_eq!(total.len(), 6);
        assert_eq!(total.max(), a.latency.max());
        // Empty histograms (no cold starts here) are not written.
        assert!(entries.iter().all(|e| !e.tag.ends_with("cold_start")));
    }

    #[test]
    fn entries_re_encode_losslessly_with_their_base_time() {
        let a = record(&[10, 20, 30, 4000]);
        let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut buf = Vec::new();
        let intervals = [Interval {
            start: Duration::from_millis(250),
            span: Duration::from_millis(1500),
            records: vec![("all", &a)],
        }];
        encode(&mut buf, "p", started, &intervals).unwrap();
        let log = decode_log(&buf).unwrap();
        assert_eq!(
            (log.start_time, log.base_time),
            (Some(started), Some(started))
        );
        let mut again = Vec::new();
        let later = started + Duration::from_secs(5);
        encode_entries(&mut again, &["merged".into()], later, &log.entries).unwrap();
        let back = decode_log(&again).unwrap();
        assert_eq!(back.base_time, Some(later));
        assert!(String::from_utf8(again).unwrap().contains("\n#merged\n"));
        assert_eq!(back.entries.len(), log.entries.len());
        for (x, y) in back.entries.iter().zip(&log.entries) {
            assert_eq!((&x.tag, x.start, x.span), (&y.tag, y.start, y.span));
            assert_eq!(x.histogram, y.histogram);
        }
    }

    /// A foreign log may hold a histogram wider than a bench histogram's hour: adding it is an
    /// error naming the tag (and, trial by trial, the file), never a panic.
    #[test]
    fn a_histogram_beyond_the_hour_is_an_error_not_a_panic() {
        let hour = crate::metrics::MAX_NS;
        let mut wide = Histogram::<u64>::new_with_bounds(1, 10 * hour, 3).unwrap();
        wide.record(5 * hour).unwrap();
        let entry = Entry {
            tag: "all.latency".into(),
            start: Duration::ZERO,
            span: Duration::from_secs(1),
            histogram: wide,
        };
        let e = totals(std::slice::from_ref(&entry)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the histogram `all.latency` cannot be added"),
            "{e}"
        );
        let log = Log {
            start_time: None,
            base_time: None,
            entries: vec![entry],
        };
        let e = add_trials(&[(PathBuf::from("x/p.hlog"), log)]).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("x/p.hlog: the histogram"),
            "{e:#}"
        );
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
