//! The report's charts: the data shaping (percentile spectra from histograms, curves over worker
//! counts, bars per model) as plain, tested functions, and the drawing with `plotters`' SVG backend
//! into strings that the HTML page inlines. The Pareto chart draws what [`super::choose`] decided.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use plotters::coord::combinators::{BindKeyPoints, IntoLogRange};
use plotters::prelude::*;

use super::Row;
use super::console::human_us;
use super::layout::{self, FONT, KeyEntry, Label, Rect, Swatch, color};

/// A latency spectrum: `(1 / (1 - q), latency µs)` pairs, x rising, as HdrHistogram's
/// "percentile distribution" plot draws them.
pub(crate) type Spectrum = Vec<(f64, f64)>;

/// Steps per halving of the distance to 100% (HdrHistogram's `ticksPerHalfDistance`).
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// A histogram of nanoseconds as a percentile spectrum. The x value `1 / (1 - q)` turns the
/// percentile `q` into a log scale where 90%, 99%, 99.9% are evenly spaced. A histogram of `n`
/// values cannot resolve beyond the percentile `1 - 1/n`, so the maximum is drawn there.
pub(crate) fn spectrum(h: &Histogram<u64>) -> Spectrum {
    if h.is_empty() {
        return Vec::new();
    }
    let cap = h.len() as f64;
    let mut out: Spectrum = Vec::new();
    for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        let q = v.quantile_iterated_to();
        if q >= 1.0 {
            break;
        }
        let x = 1.0 / (1.0 - q);
        if x >= cap {
            break;
        }
        out.push((x, v.value_iterated_to() as f64 / 1000.0));
    }
    out.push((cap, h.max() as f64 / 1000.0));
    out
}

/// The x value of a percentile (`99.9` -> 1000).
#[cfg(test)]
pub(crate) fn percentile_x(pct: f64) -> f64 {
    1.0 / (1.0 - pct / 100.0)
}

/// The percentile an x value stands for, as an axis label (`1000` -> "99.9%").
pub(crate) fn percentile_label(x: f64) -> String {
    let pct = 100.0 * (1.0 - 1.0 / x);
    let decimals = (x.log10().round() as i32 - 2).max(0) as usize;
    format!("{pct:.decimals$}%")
}

/// One point on a throughput-latency curve.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CurvePoint {
    /// The value this point adds along the curve (`w2`, or `c4` when workers do not vary).
    pub(crate) step: String,
    pub(crate) point_id: String,
    pub(crate) throughput_rps: f64,
    pub(crate) p99_us: f64,
    pub(crate) valid: bool,
}

/// Points of a sweep that differ only in one axis, in that axis's order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Curve {
    /// The values the curve's points share, among those that vary in the sweep (`shm partition`).
    pub(crate) label: String,
    pub(crate) points: Vec<CurvePoint>,
}

/// The values of a point that name it, as `(axis, value)` pairs, each axis in the sweep order.
fn axes(r: &Row) -> [(&'static str, String); 10] {
    [
        ("workers", format!("w{}", r.workers)),
        ("intra_threads", format!("t{}", r.intra_threads)),
        ("worker_concurrency", format!("k{}", r.worker_concurrency)),
        ("transfer", r.transfer.clone()),
        ("channel", r.channel.clone()),
        ("placement", r.placement.clone()),
        ("pin", format!("pin {}", r.pin)),
        ("provider", r.provider.clone()),
        (
            "load",
            match (r.concurrency, r.rate_rps) {
                (Some(c), _) => format!("c{c}"),
                (None, Some(rate)) => format!("r{rate}"),
                _ => String::new(),
            },
        ),
        ("session", session_label(r)),
    ]
}

/// The session options and batch of a row that are not the defaults, as the point id spells them
/// (`nospin b8`); `session defaults` when there are none (a label only when this axis varies).
fn session_label(r: &Row) -> String {
    // The knobs' id fragments, with spaces: `opt basic`, `par`, `i2`, `nospin`.
    let mut parts: Vec<String> = r
        .session_knobs()
        .fragments()
        .iter()
        .map(|f| f.replace('-', " "))
        .collect();
    if let Some(b) = r.batch {
        parts.push(format!("b{b}"));
    }
    if let (Some(b), Some(d)) = (r.max_batch, r.max_delay_us) {
        let idle = match r.batch_idle.as_deref() {
            Some("send") => " send",
            _ => "",
        };
        parts.push(format!("mb{b} d{d}us{idle}"));
    }
    if parts.is_empty() {
        "session defaults".into()
    } else {
        parts.join(" ")
    }
}

/// Groups the `all` rows into throughput-against-p99 curves: one curve per combination of the
/// other axes (transfer mode, placement, threads, load, ...), traced over the worker counts. When
/// the sweep has a single worker count, the curves are traced over the load instead. Curves are
/// labelled with the values that vary in the sweep only.
pub(crate) fn curves(rows: &[Row]) -> Vec<Curve> {
    let alls: Vec<&Row> = rows.iter().filter(|r| r.kind == "all").collect();
    let varies = |i: usize| {
        let first = alls.first().map(|r| axes(r)[i].1.clone());
        alls.iter().any(|r| Some(&axes(r)[i].1) != first.as_ref())
    };
    let load = axes(&Row::default())
        .iter()
        .position(|(name, _)| *name == "load")
        .expect("the load is an axis");
    let along = if !varies(0) && varies(load) { load } else { 0 };
    let n = alls.first().map_or(0, |r| axes(r).len());
    let shown: Vec<usize> = (0..n).filter(|&i| i != along && varies(i)).collect();
    let mut out: Vec<Curve> = Vec::new();
    for r in &alls {
        let a = axes(r);
        let label = if shown.is_empty() {
            "all points".to_string()
        } else {
            shown
                .iter()
                .map(|&i| a[i].1.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let p = CurvePoint {
            step: a[along].1.clone(),
            point_id: r.point_id.clone(),
            throughput_rps: r.throughput_rps,
            p99_us: r.latency_p99_us,
            valid: r.valid,
        };
        match out.iter_mut().find(|c| c.label == label) {
            Some(c) => c.points.push(p),
            None => out.push(Curve {
                label,
                points: vec![p],
            }),
        }
    }
    let order = |r: &Row| {
        if along == 0 {
            r.workers as f64
        } else {
            r.concurrency
                .map_or(r.rate_rps.unwrap_or(0.0), |c| c as f64)
        }
    };
    let key: BTreeMap<&str, f64> = alls
        .iter()
        .map(|r| (r.point_id.as_str(), order(r)))
        .collect();
    for c in &mut out {
        c.points
            .sort_by(|a, b| key[a.point_id.as_str()].total_cmp(&key[b.point_id.as_str()]));
    }
    out
}

/// One model's (or group's) numbers at every point, in point order; `None` where it did not run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelBars {
    pub(crate) model: String,
    /// Per point: `(p50 µs, p99 µs, throughput req/s)`.
    pub(crate) values: Vec<Option<(f64, f64, f64)>>,
}

/// The point ids in order, and the per-model numbers of each (models and groups, not `all`).
pub(crate) fn model_bars(rows: &[Row]) -> (Vec<String>, Vec<ModelBars>) {
    let points = point_ids(rows);
    let mut models: Vec<ModelBars> = Vec::new();
    for r in rows.iter().filter(|r| r.kind != "all" && r.requests > 0) {
        let i = points
            .iter()
            .position(|p| *p == r.point_id)
            .expect("listed");
        let m = match models.iter_mut().position(|m| m.model == r.model) {
            Some(m) => m,
            None => {
                models.push(ModelBars {
                    model: r.model.clone(),
                    values: vec![None; points.len()],
                });
                models.len() - 1
            }
        };
        models[m].values[i] = Some((r.latency_p50_us, r.latency_p99_us, r.throughput_rps));
    }
    (points, models)
}

/// The point ids of the rows, each once, in order of appearance.
pub(crate) fn point_ids(rows: &[Row]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        if !out.contains(&r.point_id) {
            out.push(r.point_id.clone());
        }
    }
    out
}

const WIDTH: u32 = 960;

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Finishes an SVG string for inlining: HTML needs no namespace declaration, and leaving it out
/// keeps the page free of any URL.
fn inline(svg: String) -> String {
    svg.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "")
}

/// Powers of ten between `lo` and `hi` (inclusive), for log-axis ticks.
fn decades(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut v = 10f64.powf(lo.log10().floor());
    while v <= hi * 1.000_001 {
        if v >= lo * 0.999_999 {
            out.push(v);
        }
        v *= 10.0;
    }
    out
}

/// Ticks for a log axis of latencies: 1, 2, 5 × powers of ten, thinned to at most ~8.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
        decade *= 10.0;
    }
    if out.len() > 8 {
        out = decades(lo, hi);
    }
    if out.len() < 2 {
        out = vec![lo, hi];
    }
    out
}

/// The latency spectra, one line per point, as an SVG string.
pub(crate) fn spectrum_svg(spectra: &[(String, Spectrum)]) -> DrawResult<String> {
    let drawn: Vec<&(String, Spectrum)> = spectra.iter().filter(|(_, s)| !s.is_empty()).collect();
    let x_max = drawn
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.0))
        .fold(100.0f64, f64::max);
    let (y_lo, y_hi) = drawn
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.1))
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
    let (y_lo, y_hi) = if drawn.is_empty() {
        (1.0, 1000.0)
    } else {
        ((y_lo * 0.8).max(0.001), (y_hi * 1.25).max(y_lo * 2.0))
    };
    let height = 480;
    let key: Vec<KeyEntry> = drawn
        .iter()
        .enumerate()
        .map(|(i, (name, _))| KeyEntry {
            label: name.clone(),
            color: color(i),
            swatch: Swatch::Line,
        })
        .collect();
    let key_px = layout::key_height(&key, WIDTH);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height + key_px)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, below) = root.split_vertically(height);
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(
                (1.0..x_max)
                    .log_scale()
                    .with_key_points(decades(1.0, x_max)),
                (y_lo..y_hi)
                    .log_scale()
                    .with_key_points(log_ticks(y_lo, y_hi)),
            )?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| human_us(*y))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        for (i, (_, s)) in drawn.iter().enumerate() {
            chart.draw_series(LineSeries::new(s.iter().copied(), color(i).stroke_width(2)))?;
        }
        layout::draw_key(&below, &key)?;
        root.present()?;
    }
    Ok(inline(svg))
}

/// Throughput against p99 latency, one curve per [`Curve`], as an SVG string. Each marker is
/// labelled with its step (`w2`); invalid points are hollow.
/// The log-scale latency axis's range for `values` (µs; zeros left out), widened by `pad` below
/// and above, and at least a factor of 2; 1 µs to 1 ms without values.
fn latency_range(values: impl Iterator<Item = f64>, (below, above): (f64, f64)) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
    if hi == 0.0 {
        (1.0, 1000.0)
    } else {
        ((lo * below).max(0.001), (hi * above).max(lo * 2.0))
    }
}

/// The axes of a chart of p99 latency (log scale, µs) against throughput, with its grid drawn.
#[allow(clippy::type_complexity)]
fn throughput_latency_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    x_hi: f64,
    (y_lo, y_hi): (f64, f64),
    y_desc: &str,
) -> DrawResult<
    ChartContext<
        'a,
        SVGBackend<'b>,
        Cartesian2d<
            plotters::coord::types::RangedCoordf64,
            plotters::coord::combinators::WithKeyPoints<
                plotters::coord::combinators::LogCoord<f64>,
            >,
        >,
    >,
> {
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(
            0.0..x_hi,
            (y_lo..y_hi)
                .log_scale()
                .with_key_points(log_ticks(y_lo, y_hi)),
        )?;
    chart
        .configure_mesh()
        .x_desc("throughput (requests/s)")
        .y_desc(y_desc)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| human_us(*y))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(WHITE)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;
    Ok(chart)
}

pub(crate) fn curves_svg(curves: &[Curve]) -> DrawResult<String> {
    let pts = || curves.iter().flat_map(|c| c.points.iter());
    let x_hi = pts().map(|p| p.throughput_rps).fold(1.0f64, f64::max) * 1.12;
    let (y_lo, y_hi) = latency_range(pts().map(|p| p.p99_us), (0.7, 1.4));
    let key: Vec<KeyEntry> = curves
        .iter()
        .enumerate()
        .map(|(i, c)| KeyEntry {
            label: c.label.clone(),
            color: color(i),
            swatch: Swatch::Line,
        })
        .collect();
    let (height, key_px) = (440, layout::key_height(&key, WIDTH));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height + key_px)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, below) = root.split_vertically(height);
        let mut chart = throughput_latency_chart(&plot, x_hi, (y_lo, y_hi), "p99 latency")?;
        let at = |p: &CurvePoint| (p.throughput_rps, p.p99_us.max(y_lo));
        let marks: Vec<_> = pts().map(|p| (at(p), 5, p.step.clone())).collect();
        let mut placed = place_labels(&chart, &marks).into_iter();
        for (i, curve) in curves.iter().enumerate() {
            let c = color(i);
            chart.draw_series(LineSeries::new(
                curve.points.iter().map(at),
                c.stroke_width(2),
            ))?;
            let labels: Vec<_> = placed.by_ref().take(curve.points.len()).collect();
            chart.draw_series(curve.points.iter().zip(labels).map(|(p, label)| {
                let style = if p.valid {
                    c.filled()
                } else {
                    c.stroke_width(2)
                };
                EmptyElement::at(at(p)) + Circle::new((0, 0), 5, style) + label_text(&p.step, label)
            }))?;
        }
        layout::draw_key(&below, &key)?;
        root.present()?;
    }
    Ok(inline(svg))
}

/// Where the labels of markers go (each `(coordinate, radius px, text)`), in the chart's plotting
/// area: see [`layout::place_labels`].
fn place_labels<DB: DrawingBackend, CT: CoordTranslate<From = (f64, f64)>>(
    chart: &ChartContext<'_, DB, CT>,
    marks: &[((f64, f64), i32, String)],
) -> Vec<Option<(i32, i32)>> {
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let bounds = Rect {
        x0: xs.start,
        y0: ys.start,
        x1: xs.end,
        y1: ys.end,
    };
    let labels: Vec<Label> = marks
        .iter()
        .map(|(at, radius, text)| Label {
            at: chart.as_coord_spec().translate(at),
            radius: *radius,
            text: text.clone(),
        })
        .collect();
    layout::place_labels(&labels, bounds)
}

/// A marker's label at its placed offset; nothing where it had no room.
fn label_text(text: &str, offset: Option<(i32, i32)>) -> Text<'static, (i32, i32), String> {
    match offset {
        Some(o) => Text::new(text.to_string(), o, (FONT, 12).into_font()),
        None => Text::new(String::new(), (0, 0), (FONT, 12).into_font()),
    }
}

/// One point on the Pareto chart of throughput against p99.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParetoPoint {
    /// What the marker is labelled with (`#3`).
    pub(crate) label: String,
    pub(crate) throughput_rps: f64,
    /// Cold starts counted.
    pub(crate) p99_us: f64,
    pub(crate) rss_mib: f64,
    pub(crate) valid: bool,
    /// No other valid point has both more throughput and less p99.
    pub(crate) on_front: bool,
    /// The recommended point.
    pub(crate) chosen: bool,
}

/// Objectives drawn across the Pareto chart: a p99 bound (µs) as a horizontal line, a throughput
/// bound (req/s) as a vertical one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct SloLines {
    pub(crate) p99_us: Option<f64>,
    pub(crate) throughput_rps: Option<f64>,
}

/// The radius of a point's marker: its area grows with its memory, from 4 px (none) to 16 px (the
/// most of the chart).
pub(crate) fn marker_radius(rss_mib: f64, most_mib: f64) -> i32 {
    if most_mib <= 0.0 {
        return 6;
    }
    (4.0 + 12.0 * (rss_mib.max(0.0) / most_mib).sqrt()).round() as i32
}

const SLO_RED: RGBColor = RGBColor(200, 30, 30);
const CHOSEN_GREEN: RGBColor = RGBColor(0, 140, 60);

/// Throughput against p99 (cold starts counted), one marker per point sized by its memory: the
/// Pareto front filled and joined by a line, the other valid points light, invalid points hollow,
/// the recommended point ringed, and the objectives as red dashed lines. As an SVG string.
pub(crate) fn pareto_svg(points: &[ParetoPoint], lines: SloLines) -> DrawResult<String> {
    let x_hi = points
        .iter()
        .map(|p| p.throughput_rps)
        .chain(lines.throughput_rps)
        .fold(1.0f64, f64::max)
        * 1.15;
    let (y_lo, y_hi) = latency_range(
        points.iter().map(|p| p.p99_us).chain(lines.p99_us),
        (0.6, 1.6),
    );
    let most_mib = points.iter().map(|p| p.rss_mib).fold(0.0f64, f64::max);
    let front_color = color(0);
    let line = |label: String, color| KeyEntry {
        label,
        color,
        swatch: Swatch::Line,
    };
    let mut key = vec![line("Pareto front".into(), front_color)];
    key.extend(
        lines
            .p99_us
            .map(|b| line(format!("objective: p99 {}", human_us(b)), SLO_RED)),
    );
    key.extend(
        lines
            .throughput_rps
            .map(|b| line(format!("objective: {b:.0} req/s"), SLO_RED)),
    );
    let (height, key_px) = (460, layout::key_height(&key, WIDTH));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height + key_px)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, below) = root.split_vertically(height);
        let mut chart = throughput_latency_chart(
            &plot,
            x_hi,
            (y_lo, y_hi),
            "p99 latency, cold starts counted",
        )?;
        let at = |p: &ParetoPoint| (p.throughput_rps, p.p99_us.max(y_lo));
        let mut front: Vec<&ParetoPoint> = points.iter().filter(|p| p.on_front).collect();
        front.sort_by(|a, b| a.throughput_rps.total_cmp(&b.throughput_rps));
        chart.draw_series(LineSeries::new(
            front.iter().map(|p| at(p)),
            front_color.stroke_width(2),
        ))?;
        if let Some(bound) = lines.p99_us {
            chart.draw_series(DashedLineSeries::new(
                [(0.0, bound), (x_hi, bound)],
                6,
                4,
                SLO_RED.stroke_width(2),
            ))?;
        }
        if let Some(bound) = lines.throughput_rps {
            chart.draw_series(DashedLineSeries::new(
                [(bound, y_lo), (bound, y_hi)],
                6,
                4,
                SLO_RED.stroke_width(2),
            ))?;
        }
        // Labels by priority: the recommended point, the front, the other valid points, the
        // invalid ones; a label with no room is left out (the tables name every point).
        let rank = |p: &ParetoPoint| (!p.chosen, !p.on_front, !p.valid);
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_by_key(|&i| rank(&points[i]));
        let text = |p: &ParetoPoint| {
            if p.chosen || p.on_front {
                format!("{} · {:.0} MiB", p.label, p.rss_mib)
            } else {
                p.label.clone()
            }
        };
        let marks: Vec<_> = order
            .iter()
            .map(|&i| {
                let p = &points[i];
                (at(p), marker_radius(p.rss_mib, most_mib) + 4, text(p))
            })
            .collect();
        let mut labels = vec![None; points.len()];
        for (&i, o) in order.iter().zip(place_labels(&chart, &marks)) {
            labels[i] = o;
        }
        let other = color(6);
        chart.draw_series(points.iter().zip(labels).map(|(p, label)| {
            let r = marker_radius(p.rss_mib, most_mib);
            let style = if !p.valid {
                other.stroke_width(2)
            } else if p.on_front {
                front_color.mix(0.85).filled()
            } else {
                other.mix(0.45).filled()
            };
            let ring = if p.chosen {
                CHOSEN_GREEN.stroke_width(3)
            } else {
                TRANSPARENT.stroke_width(0)
            };
            EmptyElement::at(at(p))
                + Circle::new((0, 0), r, style)
                + Circle::new((0, 0), r + 4, ring)
                + label_text(&text(p), label)
        }))?;
        layout::draw_key(&below, &key)?;
        root.present()?;
    }
    Ok(inline(svg))
}

/// Which number of a model a bar chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BarMetric {
    /// p99 as a light bar with p50 as a dark bar inside it, on a log axis.
    Latency,
    Throughput,
}

/// Horizontal grouped bars: one group per point (top to bottom in point order), one bar per model.
pub(crate) fn model_bars_svg(
    points: &[String],
    models: &[ModelBars],
    metric: BarMetric,
) -> DrawResult<String> {
    let n = points.len().max(1);
    let m = models.len().max(1);
    let row_px = (m as u32 * 12 + 10).max(26);
    let height = 90 + n as u32 * row_px;
    let key: Vec<KeyEntry> = models
        .iter()
        .enumerate()
        .map(|(j, b)| KeyEntry {
            label: b.model.clone(),
            color: color(j),
            swatch: Swatch::Box,
        })
        .collect();
    let key_px = layout::key_height(&key, WIDTH);
    let label_px = points.iter().map(|p| p.len()).max().unwrap_or(4) as u32 * 7 + 16;
    let vals = || models.iter().flat_map(|b| b.values.iter().flatten());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height + key_px)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, below) = root.split_vertically(height);
        // Point i's group spans y in [n-1-i, n-i] thousandths, so the first point is at the top.
        // (Integer coordinates: plotters formats custom ticks of integer axes only.)
        const UNIT: i32 = 1000;
        let n_i = n as i32;
        let y_keys: Vec<i32> = (0..n_i).map(|i| i * UNIT + UNIT / 2).collect();
        let id_at = |y: &i32| {
            let i = n_i - 1 - y.div_euclid(UNIT);
            points
                .get(usize::try_from(i).unwrap_or(usize::MAX))
                .cloned()
                .unwrap_or_default()
        };
        let slot = UNIT * 8 / 10 / m as i32;
        let bar = |i: usize, j: usize| {
            let top = (n_i - i as i32) * UNIT - UNIT / 10 - j as i32 * slot;
            (top - slot * 9 / 10, top)
        };
        let mut builder = ChartBuilder::on(&plot);
        builder
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(label_px);
        match metric {
            BarMetric::Latency => {
                let lo = vals()
                    .map(|v| v.0)
                    .filter(|v| *v > 0.0)
                    .fold(f64::INFINITY, f64::min);
                let hi = vals().map(|v| v.1).fold(0.0f64, f64::max);
                let (lo, hi) = if hi == 0.0 {
                    (1.0, 1000.0)
                } else {
                    let lo = (lo * 0.5).max(0.001);
                    (lo, hi.max(lo * 2.0) * 1.1)
                };
                let mut chart = builder.build_cartesian_2d(
                    (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)),
                    (0..n_i * UNIT).with_key_points(y_keys),
                )?;
                chart
                    .configure_mesh()
                    .x_desc("latency: p50 (dark) and p99 (light)")
                    .x_label_formatter(&|x| human_us(*x))
                    .y_label_formatter(&id_at)
                    .label_style((FONT, 12))
                    .axis_desc_style((FONT, 14))
                    .light_line_style(WHITE)
                    .bold_line_style(BLACK.mix(0.08))
                    .draw()?;
                for (j, b) in models.iter().enumerate() {
                    let c = color(j);
                    let mut rects = Vec::new();
                    for (i, v) in b.values.iter().enumerate() {
                        if let Some((p50, p99, _)) = v {
                            let (y0, y1) = bar(i, j);
                            rects.push(Rectangle::new(
                                [(lo, y0), (p99.max(lo), y1)],
                                c.mix(0.35).filled(),
                            ));
                            rects.push(Rectangle::new([(lo, y0), (p50.max(lo), y1)], c.filled()));
                        }
                    }
                    chart.draw_series(rects)?;
                }
            }
            BarMetric::Throughput => {
                let hi = vals().map(|v| v.2).fold(1.0f64, f64::max) * 1.05;
                let mut chart =
                    builder.build_cartesian_2d(0.0..hi, (0..n_i * UNIT).with_key_points(y_keys))?;
                chart
                    .configure_mesh()
                    .x_desc("throughput (requests/s)")
                    .x_label_formatter(&|x| format!("{x:.0}"))
                    .y_label_formatter(&id_at)
                    .label_style((FONT, 12))
                    .axis_desc_style((FONT, 14))
                    .light_line_style(WHITE)
                    .bold_line_style(BLACK.mix(0.08))
                    .draw()?;
                for (j, b) in models.iter().enumerate() {
                    let c = color(j);
                    let rects = b.values.iter().enumerate().filter_map(|(i, v)| {
                        v.map(|(_, _, rps)| {
                            let (y0, y1) = bar(i, j);
                            Rectangle::new([(0.0, y0), (rps, y1)], c.filled())
                        })
                    });
                    chart.draw_series(rects)?;
                }
            }
        }
        layout::draw_key(&below, &key)?;
        root.present()?;
    }
    Ok(inline(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_us: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = crate::metrics::new_histogram();
        for v in values_us {
            h.record(v * 1000).unwrap();
        }
        h
    }

    #[test]
    fn a_spectrum_follows_the_histograms_percentiles() {
        let h = hist(1..=10_000);
        let s = spectrum(&h);
        assert!(s.windows(2).all(|w| w[0].0 < w[1].0), "x rises: {s:?}");
        assert!(
            s.windows(2).all(|w| w[0].1 <= w[1].1),
            "latency never falls"
        );
        assert_eq!(s[0], (1.0, h.value_at_quantile(0.0) as f64 / 1000.0));
        // The last point is the maximum, drawn where 1/n of the values remain.
        assert_eq!(*s.last().unwrap(), (10_000.0, h.max() as f64 / 1000.0));
        // Every point reads the histogram at its own percentile.
        for &(x, y) in &s[..s.len() - 1] {
            let q = 1.0 - 1.0 / x;
            let want = h.value_at_quantile(q) as f64 / 1000.0;
            assert!((y - want).abs() <= want * 0.002, "at q={q}: {y} vs {want}");
        }
        // 90%, 99% and 99.9% lie between the points around them (HdrHistogram's ticks halve the
        // distance to 100%, so only 90% is a tick itself).
        for pct in [90.0, 99.0, 99.9] {
            let x = percentile_x(pct);
            let after = s.iter().position(|p| p.0 >= x - 1e-9 * x).expect("covered");
            let want = h.value_at_quantile(pct / 100.0) as f64 / 1000.0;
            assert!((want - 100.0 * pct).abs() / want < 0.002);
            assert!(
                s[after.saturating_sub(1)].1 <= want && want <= s[after].1,
                "p{pct}"
            );
        }
        assert!(s.len() > 20 && s.len() < 200, "{} points", s.len());
    }

    #[test]
    fn spectra_of_tiny_and_empty_histograms() {
        assert!(spectrum(&crate::metrics::new_histogram()).is_empty());
        let one = spectrum(&hist([250]));
        assert_eq!(one.last().unwrap().0, 1.0);
        assert!(one.iter().all(|p| (p.1 - 250.0).abs() < 0.5), "{one:?}");
    }

    #[test]
    fn percentile_labels() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(1e5), "99.999%");
        assert!((percentile_x(99.0) - 100.0).abs() < 1e-9);
    }

    fn all_row(id: &str, workers: usize, transfer: &str, c: usize, rps: f64) -> Row {
        Row {
            point_id: id.into(),
            workers,
            intra_threads: 1,
            transfer: transfer.into(),
            placement: "replicate".into(),
            pin: "none".into(),
            provider: "cpu".into(),
            concurrency: Some(c),
            model: "all".into(),
            kind: "all".into(),
            throughput_rps: rps,
            latency_p99_us: 1e6 / rps,
            valid: true,
            ..Row::knob_defaults()
        }
    }

    #[test]
    fn curves_trace_worker_counts_per_transfer_mode() {
        // Sweep order: workers, then transfer; a model row in between is ignored.
        let mut model = all_row("w1-pipe", 1, "pipe", 4, 1.0);
        model.kind = "model".into();
        let rows = vec![
            all_row("w1-pipe", 1, "pipe", 4, 100.0),
            model,
            all_row("w1-shm", 1, "shm", 4, 110.0),
            all_row("w2-pipe", 2, "pipe", 4, 190.0),
            all_row("w2-shm", 2, "shm", 4, 215.0),
            all_row("w4-pipe", 4, "pipe", 4, 300.0),
            all_row("w4-shm", 4, "shm", 4, 390.0),
        ];
        let c = curves(&rows);
        let labels: Vec<&str> = c.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            ["pipe", "shm"],
            "only the axes that vary label a curve"
        );
        let steps: Vec<&str> = c[1].points.iter().map(|p| p.step.as_str()).collect();
        assert_eq!(steps, ["w1", "w2", "w4"]);
        assert_eq!(c[1].points[2].throughput_rps, 390.0);
        assert_eq!(c[1].points[2].point_id, "w4-shm");
    }

    /// The session label spells the knobs away from their defaults as the id does, with spaces;
    /// a column this build cannot read counts as the default.
    #[test]
    fn the_session_label_spells_the_knobs_as_the_id_does() {
        let mut r = all_row("p", 1, "pipe", 4, 100.0);
        assert_eq!(session_label(&r), "session defaults");
        r.graph_optimization = "basic".into();
        r.execution_mode = "parallel".into();
        r.inter_threads = 2;
        r.prepacking = false;
        assert_eq!(session_label(&r), "opt basic par i2 noprepack");
        r.graph_optimization = "level9".into();
        assert_eq!(session_label(&r), "par i2 noprepack");
    }

    /// Regression guard: points that differ only in a session option (or the batch) are separate
    /// curves, labelled by it, not one curve with two points per worker count.
    #[test]
    fn session_options_and_batch_split_the_curves() {
        let mut rows = Vec::new();
        for (spin, batch) in [(true, None), (false, None), (true, Some(8))] {
            for w in [1, 2] {
                let mut r = all_row("p", w, "pipe", 4, 100.0 * w as f64);
                r.intra_spinning = spin;
                r.batch = batch;
                rows.push(r);
            }
        }
        let c = curves(&rows);
        let labels: Vec<&str> = c.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["session defaults", "nospin", "b8"]);
        assert!(c.iter().all(|c| c.points.len() == 2));
    }

    #[test]
    fn curves_trace_the_load_when_workers_do_not_vary() {
        let rows = vec![
            all_row("c8", 2, "pipe", 8, 300.0),
            all_row("c1", 2, "pipe", 1, 100.0),
            all_row("c4", 2, "pipe", 4, 250.0),
        ];
        let c = curves(&rows);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].label, "all points");
        let steps: Vec<&str> = c[0].points.iter().map(|p| p.step.as_str()).collect();
        assert_eq!(steps, ["c1", "c4", "c8"], "sorted by the load");
    }

    #[test]
    fn model_bars_hold_each_model_at_each_point() {
        let mut rows = Vec::new();
        for (i, id) in ["p0", "p1"].iter().enumerate() {
            for (name, kind) in [("a", "model"), ("b", "model"), ("all", "all")] {
                if name == "b" && i == 0 {
                    continue; // b did not run at p0
                }
                rows.push(Row {
                    point_id: id.to_string(),
                    model: name.into(),
                    kind: kind.into(),
                    requests: 10,
                    latency_p50_us: 10.0 * (i + 1) as f64,
                    latency_p99_us: 20.0 * (i + 1) as f64,
                    throughput_rps: 5.0,
                    ..Row::default()
                });
            }
        }
        let (points, bars) = model_bars(&rows);
        assert_eq!(points, ["p0", "p1"]);
        let names: Vec<&str> = bars.iter().map(|b| b.model.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            bars[0].values,
            [Some((10.0, 20.0, 5.0)), Some((20.0, 40.0, 5.0))]
        );
        assert_eq!(bars[1].values, [None, Some((20.0, 40.0, 5.0))]);
    }

    #[test]
    fn charts_render_to_inline_svg_without_urls() {
        let rows = vec![
            all_row("w1-pipe", 1, "pipe", 4, 100.0),
            all_row("w2-pipe", 2, "pipe", 4, 190.0),
        ];
        let svgs = [
            spectrum_svg(&[("w1-pipe".into(), spectrum(&hist(1..=500)))]).unwrap(),
            curves_svg(&curves(&rows)).unwrap(),
            model_bars_svg(
                &["w1-pipe".into()],
                &[ModelBars {
                    model: "mlp".into(),
                    values: vec![Some((10.0, 30.0, 80.0))],
                }],
                BarMetric::Latency,
            )
            .unwrap(),
            // No data at all still draws empty axes.
            spectrum_svg(&[]).unwrap(),
            curves_svg(&[]).unwrap(),
            model_bars_svg(&[], &[], BarMetric::Throughput).unwrap(),
        ];
        for s in &svgs {
            assert!(
                s.starts_with("<svg") && s.trim_end().ends_with("</svg>"),
                "{s}"
            );
            assert!(!s.contains("http"), "{s}");
        }
        assert!(svgs[0].contains("99%") && svgs[0].contains("w1-pipe"));
        assert!(svgs[1].contains(">w2<") || svgs[1].contains("w2"));
        assert!(svgs[2].contains("mlp") && svgs[2].contains("w1-pipe"));
    }

    #[test]
    fn pareto_markers_grow_with_memory_and_objectives_are_drawn() {
        assert_eq!(marker_radius(0.0, 100.0), 4);
        assert_eq!(marker_radius(100.0, 100.0), 16);
        assert_eq!(
            marker_radius(25.0, 100.0),
            10,
            "area, not radius, is proportional"
        );
        assert_eq!(marker_radius(5.0, 0.0), 6);
        let p = |label: &str, rps: f64, p99: f64, on_front: bool, chosen: bool| ParetoPoint {
            label: label.into(),
            throughput_rps: rps,
            p99_us: p99,
            rss_mib: 40.0,
            valid: true,
            on_front,
            chosen,
        };
        let svg = pareto_svg(
            &[
                p("#0", 100.0, 900.0, true, false),
                p("#1", 300.0, 2_000.0, true, true),
                p("#2", 200.0, 5_000.0, false, false),
            ],
            SloLines {
                p99_us: Some(3_000.0),
                throughput_rps: Some(150.0),
            },
        )
        .unwrap();
        assert!(svg.starts_with("<svg") && !svg.contains("http"), "{svg}");
        for label in [
            "Pareto front",
            "objective: p99 3.00 ms",
            "objective: 150 req/s",
            "#1 · 40 MiB",
        ] {
            assert!(svg.contains(label), "no {label}: {svg}");
        }
        // Nothing to draw still draws the axes.
        assert!(
            pareto_svg(&[], SloLines::default())
                .unwrap()
                .starts_with("<svg")
        );
    }
}
