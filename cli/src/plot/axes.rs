//! Axes shared by every panel: compact tick labels, optional light grid, the embedded font.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{Drawn, FONT};

pub(crate) type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Builds a chart on `area` over `x x y` with a caption and room for the tick labels.
pub(crate) fn chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    x: (f64, f64),
    y: (f64, f64),
) -> Result<Chart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    ChartBuilder::on(area)
        .caption(caption, (FONT, 16))
        .margin(8)
        .margin_right(20)
        .x_label_area_size(34)
        .y_label_area_size(56)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
}

/// Draws axes with descriptions; `grid` adds faint lines at the labelled ticks.
pub(crate) fn draw_axes<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    x_desc: &str,
    y_desc: &str,
    grid: bool,
) -> Drawn<DB> {
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225));
    if !grid {
        mesh.disable_mesh();
    }
    mesh.draw()
}

/// Shortest of `v` with at most four decimals (`50`, not `50.0`; `0.25`, not `0.2500`).
pub(crate) fn tick_label(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e5).contains(&v.abs()) {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(tick_label(50.0), "50");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(-2.0), "-2");
        assert_eq!(tick_label(-0.00001), "-1.0e-5");
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(250000.0), "2.5e5");
    }
}
