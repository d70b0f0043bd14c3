//! What keeps the report's charts legible at many points (a sweep of 32 is common): a colour per
//! series as far from the others as a palette allows, the key below the plot instead of over the
//! data, and marker labels placed where they overlap no other label, or left out. The charts of
//! [`super::plots`] draw through these; the placement is a pure function, tested on its own.

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

/// The charts' font family.
pub(crate) const FONT: &str = "sans-serif";

/// The first colours: Okabe-Ito hues that stay apart for colour-blind readers.
const BASE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(120, 120, 120),
    RGBColor(240, 228, 66),
];

/// How many colours the palette holds before it repeats.
pub(crate) const COLORS: usize = 64;

/// The colour of series `i`: [`BASE`], then each next colour the one of a grid of hues, saturations
/// and lightnesses that is farthest (RGB distance) from every colour before it. The first 40 stay
/// more than 60 apart, so 32 lines of one chart are told apart (a repeating palette of 8 or 10
/// made a 32-point chart ambiguous).
pub(crate) fn color(i: usize) -> RGBColor {
    static PALETTE: OnceLock<Vec<RGBColor>> = OnceLock::new();
    let palette = PALETTE.get_or_init(|| {
        let mut grid = Vec::new();
        for hue in (0..360).step_by(10) {
            for lightness in [0.3, 0.45, 0.6, 0.72] {
                for saturation in [0.6, 0.95] {
                    let (r, g, b) = HSLColor(f64::from(hue) / 360.0, saturation, lightness).rgb();
                    grid.push(RGBColor(r, g, b));
                }
            }
        }
        let mut chosen = BASE.to_vec();
        while chosen.len() < COLORS {
            let farthest = grid
                .iter()
                .map(|c| {
                    (
                        chosen
                            .iter()
                            .map(|d| distance(*c, *d))
                            .fold(f64::MAX, f64::min),
                        c,
                    )
                })
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, c)| *c)
                .expect("a grid of colours");
            chosen.push(farthest);
        }
        chosen
    });
    palette[i % palette.len()]
}

/// The RGB distance of two colours.
pub(crate) fn distance(a: RGBColor, b: RGBColor) -> f64 {
    let d = |x: u8, y: u8| (f64::from(x) - f64::from(y)).powi(2);
    (d(a.0, b.0) + d(a.1, b.1) + d(a.2, b.2)).sqrt()
}

/// What an entry of a key shows beside its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Swatch {
    Line,
    Box,
}

/// An entry of a chart's key.
#[derive(Debug, Clone)]
pub(crate) struct KeyEntry {
    pub(crate) label: String,
    pub(crate) color: RGBColor,
    pub(crate) swatch: Swatch,
}

/// The key's font size, and a width per character of it that no label of the report exceeds.
const KEY_FONT: u32 = 12;
const CHAR_PX: i32 = 7;
const KEY_ROW_PX: u32 = 18;
const SWATCH_PX: i32 = 28;

/// The key's columns: each as wide as the longest label, as many as `width` holds.
fn key_columns(entries: &[KeyEntry], width: u32) -> (usize, i32) {
    let widest = entries
        .iter()
        .map(|e| e.label.chars().count())
        .max()
        .unwrap_or(0) as i32;
    let column = SWATCH_PX + widest * CHAR_PX + 16;
    let columns = ((width as i32 - 24) / column).max(1) as usize;
    (columns, column)
}

/// The height of the strip below a chart that holds its key at `width` pixels.
pub(crate) fn key_height(entries: &[KeyEntry], width: u32) -> u32 {
    if entries.is_empty() {
        return 0;
    }
    let (columns, _) = key_columns(entries, width);
    entries.len().div_ceil(columns) as u32 * KEY_ROW_PX + 12
}

/// Draws the key into `area` (the strip of [`key_height`] below the chart), in columns filled row
/// by row.
pub(crate) fn draw_key(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    entries: &[KeyEntry],
) -> Result<(), Box<dyn std::error::Error>> {
    let (width, _) = area.dim_in_pixel();
    let (columns, column) = key_columns(entries, width);
    for (k, e) in entries.iter().enumerate() {
        let x = 24 + (k % columns) as i32 * column;
        let y = 6 + (k / columns) as i32 * KEY_ROW_PX as i32 + KEY_ROW_PX as i32 / 2;
        match e.swatch {
            Swatch::Line => area.draw(&PathElement::new(
                vec![(x, y), (x + 20, y)],
                e.color.stroke_width(3),
            ))?,
            Swatch::Box => area.draw(&Rectangle::new(
                [(x + 3, y - 5), (x + 17, y + 5)],
                e.color.filled(),
            ))?,
        }
        area.draw(&Text::new(
            e.label.clone(),
            (x + SWATCH_PX, y - 7),
            (FONT, KEY_FONT).into_font(),
        ))?;
    }
    Ok(())
}

/// A rectangle in pixels, corners included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rect {
    pub(crate) x0: i32,
    pub(crate) y0: i32,
    pub(crate) x1: i32,
    pub(crate) y1: i32,
}

impl Rect {
    pub(crate) fn overlaps(&self, o: &Rect) -> bool {
        self.x0 <= o.x1 && o.x0 <= self.x1 && self.y0 <= o.y1 && o.y0 <= self.y1
    }

    fn inside(&self, o: &Rect) -> bool {
        self.x0 >= o.x0 && self.x1 <= o.x1 && self.y0 >= o.y0 && self.y1 <= o.y1
    }
}

/// A marker that wants a label: its centre and radius in pixels, and the label's text (drawn in a
/// 12 px font).
#[derive(Debug, Clone)]
pub(crate) struct Label {
    pub(crate) at: (i32, i32),
    pub(crate) radius: i32,
    pub(crate) text: String,
}

/// The label's box when its top-left corner is `offset` from its marker's centre.
fn label_box(l: &Label, (dx, dy): (i32, i32)) -> Rect {
    let w = l.text.chars().count() as i32 * CHAR_PX;
    Rect {
        x0: l.at.0 + dx,
        y0: l.at.1 + dy,
        x1: l.at.0 + dx + w,
        y1: l.at.1 + dy + 15,
    }
}

/// Where each label goes, as the offset of its top-left corner from its marker's centre, or `None`
/// when every place beside its marker would overlap a label placed before it or leave `bounds`.
/// Labels come in priority order: the first ones get the first choice. A place over another
/// marker is taken only when no free place is left.
pub(crate) fn place_labels(labels: &[Label], bounds: Rect) -> Vec<Option<(i32, i32)>> {
    let markers: Vec<Rect> = labels
        .iter()
        .map(|l| Rect {
            x0: l.at.0 - l.radius,
            y0: l.at.1 - l.radius,
            x1: l.at.0 + l.radius,
            y1: l.at.1 + l.radius,
        })
        .collect();
    let mut placed: Vec<Rect> = Vec::new();
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let (r, w) = (l.radius, l.text.chars().count() as i32 * CHAR_PX);
            let offsets = [
                (r + 3, -r - 13),
                (r + 4, -7),
                (r + 3, r - 1),
                (-w - r - 3, -r - 13),
                (-w - r - 4, -7),
                (-w - r - 3, r - 1),
                (-w / 2, -r - 17),
                (-w / 2, r + 2),
            ];
            let fits = |o: &(i32, i32)| {
                let b = label_box(l, *o);
                b.inside(&bounds) && !placed.iter().any(|p| p.overlaps(&b))
            };
            let clear = |o: &(i32, i32)| {
                let b = label_box(l, *o);
                !markers
                    .iter()
                    .enumerate()
                    .any(|(j, m)| j != i && m.overlaps(&b))
            };
            let best = offsets
                .iter()
                .find(|o| fits(o) && clear(o))
                .or_else(|| offsets.iter().find(|o| fits(o)))
                .copied();
            if let Some(o) = best {
                placed.push(label_box(l, o));
            }
            best
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forty_colours_stay_apart() {
        let colors: Vec<RGBColor> = (0..40).map(color).collect();
        for (i, a) in colors.iter().enumerate() {
            for (j, b) in colors.iter().enumerate().skip(i + 1) {
                assert!(distance(*a, *b) > 60.0, "colours {i} and {j}: {a:?} {b:?}");
            }
        }
        assert_eq!(color(0), BASE[0]);
    }

    #[test]
    fn the_key_takes_as_many_rows_as_its_columns_need() {
        let entries: Vec<KeyEntry> = (0..32)
            .map(|i| KeyEntry {
                label: format!("w{}-t1-pipe-cpu-c{i}", i % 4),
                color: color(i),
                swatch: Swatch::Line,
            })
            .collect();
        let (columns, column) = key_columns(&entries, 960);
        assert!(
            columns >= 4 && columns as i32 * column <= 960 - 24,
            "{columns} × {column}"
        );
        assert_eq!(
            key_height(&entries, 960),
            32usize.div_ceil(columns) as u32 * KEY_ROW_PX + 12
        );
        assert_eq!(key_height(&[], 960), 0);
    }

    /// Regression (issue 24): the Pareto chart of 32 points drew every label beside its marker,
    /// one over another.
    #[test]
    fn labels_never_overlap_and_the_first_ones_win() {
        let bounds = Rect {
            x0: 0,
            y0: 0,
            x1: 400,
            y1: 300,
        };
        // 32 markers crowded into a 60 × 40 pixel patch.
        let labels: Vec<Label> = (0..32)
            .map(|i| Label {
                at: (100 + (i * 7) % 60, 100 + (i * 13) % 40),
                radius: 6,
                text: format!("#{i} · 22 MiB"),
            })
            .collect();
        let placed = place_labels(&labels, bounds);
        assert!(placed[0].is_some() && placed[1].is_some());
        let boxes: Vec<Rect> = labels
            .iter()
            .zip(&placed)
            .filter_map(|(l, o)| o.map(|o| label_box(l, o)))
            .collect();
        assert!(boxes.len() < 32, "not all of them fit");
        for (i, a) in boxes.iter().enumerate() {
            assert!(a.inside(&bounds), "{a:?}");
            for b in &boxes[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} and {b:?}");
            }
        }
        // Alone, a label sits above and to the right of its marker.
        assert_eq!(place_labels(&labels[..1], bounds), vec![Some((9, -19))]);
    }
}
