//! Higher-dimensional targets: a grid of pairwise 2-D marginals of chosen coordinates, each with
//! the target's marginal log-density underneath where it is known (e.g. Many Well pairs factorise).

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::panel::{LogDensityGrid, SamplePanel, draw_panel};
use super::{Drawn, Output, Painter, Written, grid_cells, save_both};

/// One panel: coordinates `(i, j)` on the x and y axes.
pub struct PairPanel<'a> {
    pub i: usize,
    pub j: usize,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    /// Log-density of the target's `(x_i, x_j)` marginal, up to a constant.
    pub marginal: Option<&'a dyn Fn(f64, f64) -> f64>,
}

/// Points `(x_i, x_j)` of samples stored column-major, `dim` numbers per sample (the layout of
/// `DMatrix::as_slice`).
pub fn points_from_columns(samples: &[f64], dim: usize, i: usize, j: usize) -> Vec<(f64, f64)> {
    samples.chunks_exact(dim.max(1)).map(|x| (x[i], x[j])).collect()
}

/// Grid cells per axis in every panel's marginal.
const RESOLUTION: usize = 100;

struct PairsPainter<'a> {
    panels: Vec<SamplePanel<'a>>,
    cols: usize,
}

impl Painter for PairsPainter<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        root.fill(&WHITE)?;
        for (area, panel) in grid_cells(root, self.panels.len(), self.cols).iter().zip(&self.panels) {
            draw_panel(area, panel)?;
        }
        Ok(())
    }
}

/// Writes the grid of `panels`, `cols` per row, from `samples` (column-major, `dim` per sample).
pub fn pairs_figure(
    out: &Output,
    samples: &[f64],
    dim: usize,
    panels: &[PairPanel],
    cols: usize,
) -> anyhow::Result<Written> {
    if dim == 0 || !samples.chunks_exact(dim).remainder().is_empty() {
        return Err(anyhow!("figure {}: {} numbers are not samples of dimension {dim}", out.name, samples.len()));
    }
    if panels.is_empty() {
        return Err(anyhow!("figure {}: no coordinate pair to draw", out.name));
    }
    if let Some(p) = panels.iter().find(|p| p.i >= dim || p.j >= dim) {
        return Err(anyhow!("figure {}: pair ({}, {}) is outside dimension {dim}", out.name, p.i, p.j));
    }
    let grids: Vec<Option<LogDensityGrid>> = panels
        .iter()
        .map(|p| {
            p.marginal
                .map(|f| LogDensityGrid::evaluate(p.x_range, p.y_range, (RESOLUTION, RESOLUTION), |x| f(x[0], x[1])))
        })
        .collect();
    let points: Vec<Vec<(f64, f64)>> = panels.iter().map(|p| points_from_columns(samples, dim, p.i, p.j)).collect();
    let sample_panels = panels
        .iter()
        .zip(&grids)
        .zip(&points)
        .map(|((p, grid), pts)| SamplePanel {
            title: format!("x{} vs x{}", p.j + 1, p.i + 1),
            x_label: format!("x{}", p.i + 1),
            y_label: format!("x{}", p.j + 1),
            x_range: p.x_range,
            y_range: p.y_range,
            density: grid.as_ref(),
            points: pts,
        })
        .collect();
    save_both(out, &PairsPainter { panels: sample_panels, cols })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::palette;
    use crate::plot::testing::{check_png, check_svg, scratch_dir};

    /// Double-well log-density of one pair of Many Well coordinates (first of each pair bimodal).
    fn double_well(x: f64, y: f64) -> f64 {
        -x.powi(4) + 6.0 * x * x + 0.5 * x - 0.5 * y * y
    }

    #[test]
    fn pairs_figure_draws_every_panel_with_marginals_and_points() {
        let dim = 4;
        // Deterministic clouds around the wells at x = +-1.7 on coordinates 0 and 2.
        let samples: Vec<f64> = (0..400)
            .flat_map(|k| {
                let s = if k % 3 == 0 { -1.7 } else { 1.7 };
                let u = ((k * 37) % 101) as f64 / 101.0 - 0.5;
                let v = ((k * 61) % 89) as f64 / 89.0 - 0.5;
                [s + 0.6 * u, 1.5 * v, -s - 0.5 * v, 1.5 * u]
            })
            .collect();
        let panels = [
            PairPanel { i: 0, j: 1, x_range: (-3.0, 3.0), y_range: (-3.0, 3.0), marginal: Some(&double_well) },
            PairPanel { i: 2, j: 3, x_range: (-3.0, 3.0), y_range: (-3.0, 3.0), marginal: Some(&double_well) },
            PairPanel { i: 0, j: 2, x_range: (-3.0, 3.0), y_range: (-3.0, 3.0), marginal: None },
        ];
        let written =
            pairs_figure(&Output::new(scratch_dir("pairs"), "pairs", (900, 600)), &samples, dim, &panels, 2).unwrap();
        let png = check_png(&written.png, (900, 600));
        assert!(png.count(palette::POINTS) > 300, "point pixels: {}", png.count(palette::POINTS));
        assert!(png.count(palette::band(11, 12)) > 50, "top band pixels: {}", png.count(palette::band(11, 12)));
        assert!(png.has_text_pixels());
        let svg = check_svg(&written.svg);
        assert!(svg.count("circle") >= 3 * 400 - 50 && svg.count("rect") > 100, "{svg:?}");
    }

    #[test]
    fn bad_shapes_and_pairs_are_errors() {
        let out = Output::new(scratch_dir("pairs_bad"), "p", (300, 300));
        let ok = PairPanel { i: 0, j: 1, x_range: (0.0, 1.0), y_range: (0.0, 1.0), marginal: None };
        assert!(pairs_figure(&out, &[0.0; 5], 2, std::slice::from_ref(&ok), 1).is_err());
        assert!(pairs_figure(&out, &[0.0; 4], 2, &[], 1).is_err());
        let outside = PairPanel { i: 0, j: 2, ..ok };
        assert!(pairs_figure(&out, &[0.0; 4], 2, &[outside], 1).is_err());
    }

    #[test]
    fn points_come_from_the_chosen_rows_of_each_column() {
        assert_eq!(points_from_columns(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 2, 0), vec![(3.0, 1.0), (6.0, 4.0)]);
    }
}
