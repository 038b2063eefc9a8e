//! A 2-D target: its log-density as filled contours, once per sample set (e.g. flow samples and
//! flow + AIS samples side by side).

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::panel::{LogDensityGrid, SamplePanel, draw_panel};
use super::{Drawn, Output, Painter, Written, grid_cells, save_both};

/// The target on a grid and one `(title, points)` per panel, drawn left to right.
#[derive(Clone, Debug)]
pub struct DensityFigure<'a> {
    pub grid: &'a LogDensityGrid,
    pub panels: Vec<(String, &'a [(f64, f64)])>,
    pub x_label: String,
    pub y_label: String,
}

impl Painter for DensityFigure<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        root.fill(&WHITE)?;
        for (area, (title, points)) in grid_cells(root, self.panels.len(), self.panels.len()).iter().zip(&self.panels) {
            let panel = SamplePanel {
                title: title.clone(),
                x_label: self.x_label.clone(),
                y_label: self.y_label.clone(),
                x_range: self.grid.x_range,
                y_range: self.grid.y_range,
                density: Some(self.grid),
                points,
            };
            draw_panel(area, &panel)?;
        }
        Ok(())
    }
}

/// Writes the figure; at least one panel is needed.
pub fn density_figure(out: &Output, figure: &DensityFigure) -> anyhow::Result<Written> {
    if figure.panels.is_empty() {
        return Err(anyhow!("figure {}: no sample panel to draw", out.name));
    }
    save_both(out, figure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::palette;
    use crate::plot::testing::{check_png, check_svg, scratch_dir, two_clouds};

    #[test]
    fn density_figure_shows_bands_and_points_in_both_formats() {
        let dir = scratch_dir("density");
        let log_p = |x: &[f64]| -> f64 {
            let a = -0.5 * ((x[0] - 1.5).powi(2) + (x[1] - 1.0).powi(2)) / 0.3;
            let b = -0.5 * ((x[0] + 1.5).powi(2) + (x[1] + 1.0).powi(2)) / 0.3;
            a.max(b) + (1.0 + (-(a - b).abs()).exp()).ln()
        };
        let grid = LogDensityGrid::evaluate((-4.0, 4.0), (-4.0, 4.0), (150, 150), log_p);
        let (flow, ais) = two_clouds();
        let fig = DensityFigure {
            grid: &grid,
            panels: vec![("flow".into(), &flow), ("flow + AIS".into(), &ais)],
            x_label: "x1".into(),
            y_label: "x2".into(),
        };
        let written = density_figure(&Output::new(&dir, "target", (1000, 500)), &fig).unwrap();
        let png = check_png(&written.png, (1000, 500));
        assert!(png.count(palette::POINTS) > 200, "point pixels: {}", png.count(palette::POINTS));
        // Low, middle and top bands all present.
        for level in [1, 6, 11] {
            assert!(png.count(palette::band(level, 12)) > 100, "band {level}: {}", png.count(palette::band(level, 12)));
        }
        assert!(png.has_text_pixels(), "no dark text or axis pixels");
        let svg = check_svg(&written.svg);
        assert!(svg.count("circle") > 200 && svg.count("rect") > 100 && svg.count("text") > 4, "{svg:?}");
    }

    /// Run with `cargo test --release -p bootflow contour_figure_is_fast -- --ignored`:
    /// debug builds are an order of magnitude slower than what users run.
    #[test]
    #[ignore]
    fn contour_figure_is_fast() {
        let start = std::time::Instant::now();
        let grid = LogDensityGrid::evaluate((-4.0, 4.0), (-4.0, 4.0), (150, 150), |x| {
            -0.5 * (x[0] * x[0] + 4.0 * x[1] * x[1]) + (3.0 * x[0]).sin()
        });
        let (flow, _) = two_clouds();
        let fig = DensityFigure {
            grid: &grid,
            panels: vec![("flow".into(), &flow)],
            x_label: "x1".into(),
            y_label: "x2".into(),
        };
        density_figure(&Output::new(scratch_dir("fast"), "fast", (600, 600)), &fig).unwrap();
        let seconds = start.elapsed().as_secs_f64();
        eprintln!("600x600 contour figure, 150x150 cells, svg + png: {seconds:.3} s");
        assert!(seconds < 1.0, "{seconds} s");
    }

    #[test]
    fn density_figure_without_panels_is_an_error() {
        let grid = LogDensityGrid::evaluate((0.0, 1.0), (0.0, 1.0), (2, 2), |_| 0.0);
        let fig = DensityFigure { grid: &grid, panels: vec![], x_label: String::new(), y_label: String::new() };
        assert!(density_figure(&Output::new(scratch_dir("empty"), "t", (100, 100)), &fig).is_err());
    }
}
