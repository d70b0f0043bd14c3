//! The summary table printed when a sweep ends: one line per point (its `all` row), with human units.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::Row;

/// Formats microseconds for people: µs below 1 ms, ms below 1 s, s above.
pub fn human_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1_000.0)
    } else {
        format!("{:.2} s", us / 1_000_000.0)
    }
}

/// The summary table of the `all` rows: one line per point; the point id names its workers,
/// threads, transfer and provider.
pub fn summary(rows: &[Row]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "point",
        "load",
        "req/s",
        "p50",
        "p99",
        "p99.9",
        "compute p50",
        "errors",
        "RSS MiB",
        "verdict",
    ]);
    for r in rows.iter().filter(|r| r.model == "all") {
        t.add_row(vec![
            r.point_id.clone(),
            match (r.concurrency, r.rate_rps) {
                (Some(c), _) => format!("{c} in flight"),
                (None, Some(rate)) => format!("{rate} req/s"),
                _ => String::new(),
            },
            format!("{:.0}", r.throughput_rps),
            human_us(r.latency_p50_us),
            human_us(r.latency_p99_us),
            human_us(r.latency_p999_us),
            human_us(r.compute_p50_us),
            r.errors.to_string(),
            format!("{:.0}", r.rss_mib),
            if r.valid {
                "valid".to_string()
            } else {
                format!("INVALID: {}", r.reason)
            },
        ]);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_us(12.4), "12 µs");
        assert_eq!(human_us(1_500.0), "1.50 ms");
        assert_eq!(human_us(2_500_000.0), "2.50 s");
    }
}
