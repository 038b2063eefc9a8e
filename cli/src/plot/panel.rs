//! One 2-D panel: a log-density shown as filled contour bands, with sample points on top.
//! Both the 2-D target figure and the pairwise-marginal grid are made of these panels.

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Drawn, axes, palette};

/// A log-density on a regular grid of cell centres over `x_range x y_range`.
/// `values[iy * nx + ix]`; `-inf`/NaN cells are left unpainted.
#[derive(Clone, Debug)]
pub struct LogDensityGrid {
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub nx: usize,
    pub ny: usize,
    pub values: Vec<f64>,
    /// Number of filled contour bands.
    pub levels: usize,
    /// Bands cover `[max - depth, max]`; lower values are left white.
    pub depth: f64,
}

impl LogDensityGrid {
    const DEFAULT_LEVELS: usize = 12;
    const DEFAULT_DEPTH: f64 = 25.0;

    /// Evaluates `log_density` at the centres of an `nx x ny` grid.
    pub fn evaluate(
        x_range: (f64, f64),
        y_range: (f64, f64),
        (nx, ny): (usize, usize),
        log_density: impl Fn(&[f64]) -> f64,
    ) -> Self {
        let (dx, dy) = ((x_range.1 - x_range.0) / nx as f64, (y_range.1 - y_range.0) / ny as f64);
        let mut values = Vec::with_capacity(nx * ny);
        let mut point = [0.0; 2];
        for iy in 0..ny {
            point[1] = y_range.0 + (iy as f64 + 0.5) * dy;
            for ix in 0..nx {
                point[0] = x_range.0 + (ix as f64 + 0.5) * dx;
                values.push(log_density(&point));
            }
        }
        LogDensityGrid { x_range, y_range, nx, ny, values, levels: Self::DEFAULT_LEVELS, depth: Self::DEFAULT_DEPTH }
    }

    /// Wraps precomputed values (`values[iy * nx + ix]`).
    pub fn from_values(
        x_range: (f64, f64),
        y_range: (f64, f64),
        nx: usize,
        ny: usize,
        values: Vec<f64>,
    ) -> anyhow::Result<Self> {
        if nx == 0 || ny == 0 || values.len() != nx * ny {
            return Err(anyhow!("log-density grid: {} values for a {nx}x{ny} grid", values.len()));
        }
        Ok(LogDensityGrid {
            x_range,
            y_range,
            nx,
            ny,
            values,
            levels: Self::DEFAULT_LEVELS,
            depth: Self::DEFAULT_DEPTH,
        })
    }

    pub fn with_bands(mut self, levels: usize, depth: f64) -> Self {
        self.levels = levels.max(1);
        self.depth = depth;
        self
    }

    /// Band index of every cell (None: unpainted), relative to the largest finite value.
    fn bands(&self) -> Vec<Option<usize>> {
        let max = self.values.iter().copied().filter(|v| v.is_finite()).fold(f64::NEG_INFINITY, f64::max);
        let depth = if self.depth > 0.0 { self.depth } else { Self::DEFAULT_DEPTH };
        let floor = max - depth;
        let levels = self.levels.max(1);
        self.values
            .iter()
            .map(|&v| {
                (v.is_finite() && v >= floor).then(|| (((v - floor) / depth * levels as f64) as usize).min(levels - 1))
            })
            .collect()
    }
}

/// A panel: axes ranges, an optional log-density underneath and sample points.
#[derive(Clone, Debug)]
pub struct SamplePanel<'a> {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub density: Option<&'a LogDensityGrid>,
    pub points: &'a [(f64, f64)],
}

pub(crate) fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &SamplePanel) -> Drawn<DB> {
    let (x0, x1) = ordered(panel.x_range);
    let (y0, y1) = ordered(panel.y_range);
    let mut chart = axes::chart(area, &panel.title, (x0, x1), (y0, y1))?;
    axes::draw_axes(&mut chart, &panel.x_label, &panel.y_label, false)?;

    if let Some(grid) = panel.density {
        chart.draw_series(band_rectangles(grid))?;
    }
    let inside = |&&(x, y): &&(f64, f64)| x >= x0 && x <= x1 && y >= y0 && y <= y1;
    chart.draw_series(panel.points.iter().filter(inside).map(|&p| Circle::new(p, 2, palette::POINTS.filled())))?;
    Ok(())
}

/// Merges each row's runs of equal band into one rectangle: a few thousand shapes instead of
/// one per cell, which keeps both rendering and the SVG small.
fn band_rectangles(grid: &LogDensityGrid) -> Vec<Rectangle<(f64, f64)>> {
    let bands = grid.bands();
    let dx = (grid.x_range.1 - grid.x_range.0) / grid.nx as f64;
    let dy = (grid.y_range.1 - grid.y_range.0) / grid.ny as f64;
    let mut shapes = Vec::new();
    for iy in 0..grid.ny {
        let row = &bands[iy * grid.nx..(iy + 1) * grid.nx];
        let (ylo, yhi) = (grid.y_range.0 + iy as f64 * dy, grid.y_range.0 + (iy + 1) as f64 * dy);
        let mut start = 0;
        while start < grid.nx {
            let mut end = start + 1;
            while end < grid.nx && row[end] == row[start] {
                end += 1;
            }
            if let Some(level) = row[start] {
                let (xlo, xhi) = (grid.x_range.0 + start as f64 * dx, grid.x_range.0 + end as f64 * dx);
                let colour = palette::band(level, grid.levels);
                shapes.push(Rectangle::new([(xlo, ylo), (xhi, yhi)], colour.filled()));
            }
            start = end;
        }
    }
    shapes
}

fn ordered((a, b): (f64, f64)) -> (f64, f64) {
    if a <= b { (a, b) } else { (b, a) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_evaluates_at_cell_centres_row_by_row() {
        let g = LogDensityGrid::evaluate((0.0, 4.0), (0.0, 2.0), (4, 2), |p| 10.0 * p[1] + p[0]);
        assert_eq!(g.values, vec![5.5, 6.5, 7.5, 8.5, 15.5, 16.5, 17.5, 18.5]);
    }

    #[test]
    fn bands_span_depth_below_the_maximum() {
        let g =
            LogDensityGrid::from_values((0.0, 1.0), (0.0, 1.0), 5, 1, vec![0.0, -1.0, -2.5, -4.0, f64::NEG_INFINITY])
                .unwrap()
                .with_bands(4, 3.0);
        // floor = -3: 0 -> top band, -1 -> (2/3*4)=2, -2.5 -> 0, -4 and -inf unpainted.
        assert_eq!(g.bands(), vec![Some(3), Some(2), Some(0), None, None]);
    }

    #[test]
    fn zero_levels_set_directly_paint_one_band() {
        let mut g = LogDensityGrid::from_values((0.0, 1.0), (0.0, 1.0), 2, 1, vec![0.0, -1.0]).unwrap();
        g.levels = 0;
        assert_eq!(g.bands(), vec![Some(0), Some(0)]);
    }

    #[test]
    fn runs_of_equal_bands_merge_into_one_rectangle() {
        let g = LogDensityGrid::from_values((0.0, 4.0), (0.0, 1.0), 4, 1, vec![0.0, 0.0, f64::NAN, 0.0]).unwrap();
        assert_eq!(band_rectangles(&g).len(), 2);
    }

    #[test]
    fn mismatched_values_are_refused() {
        assert!(LogDensityGrid::from_values((0.0, 1.0), (0.0, 1.0), 3, 3, vec![0.0; 8]).is_err());
    }
}
