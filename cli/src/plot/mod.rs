//! Figures of a run, each written both as `NAME.svg` and `NAME.png`.
//!
//! Every figure is drawn from plain data (numbers, closures, CSV) by one painter that is generic
//! over the plotters backend, so the SVG and the PNG are the same drawing. Text is rendered with
//! DejaVu Sans compiled into the binary (the `dejavu` crate) through plotters' `ab_glyph` feature:
//! no system font, fontconfig or freetype is needed on the machine that draws.

mod axes;
mod chains;
mod density;
mod gradvar;
mod pairs;
mod palette;
mod panel;
mod report;
mod training;

pub use chains::{ChainQuantity, autocorrelation, chain_figure, histogram_figure};
pub use density::{DensityFigure, density_figure};
pub use gradvar::{gradvar_figure, read_gradvar_csv};
pub use pairs::{PairPanel, pairs_figure, points_from_columns};
pub use panel::LogDensityGrid;
pub use report::{Report, ReportRow, format_estimate, summary_text, write_report};
pub use training::training_figure;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Where a figure goes: `DIR/NAME.svg` and `DIR/NAME.png`, `width x height` pixels.
#[derive(Clone, Debug)]
pub struct Output {
    pub dir: PathBuf,
    pub name: String,
    pub size: (u32, u32),
}

impl Output {
    pub fn new(dir: impl Into<PathBuf>, name: impl Into<String>, size: (u32, u32)) -> Self {
        Output { dir: dir.into(), name: name.into(), size }
    }
}

/// The two files written for one figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub svg: PathBuf,
    pub png: PathBuf,
}

/// Result of drawing on one backend; the error type is the backend's own.
pub(crate) type Drawn<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A drawing that can be made on any plotters backend.
pub(crate) trait Painter {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB>;
}

/// The family every figure asks plotters for; registered once with the embedded font.
pub(crate) const FONT: &str = "sans-serif";

fn register_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok());
    if ok { Ok(()) } else { Err(anyhow!("the embedded DejaVu Sans font could not be parsed")) }
}

/// Largest width or height accepted (the PNG is drawn in memory first).
const MAX_SIDE: u32 = 8192;

/// Paints `painter` into `out.dir/out.name.{svg,png}`, creating the directory if needed.
pub(crate) fn save_both(out: &Output, painter: &impl Painter) -> anyhow::Result<Written> {
    register_font()?;
    let (w, h) = out.size;
    if !(16..=MAX_SIDE).contains(&w) || !(16..=MAX_SIDE).contains(&h) {
        return Err(anyhow!("figure {}: size {w}x{h} is outside 16..={MAX_SIDE} pixels a side", out.name));
    }
    std::fs::create_dir_all(&out.dir).with_context(|| format!("creating {}", out.dir.display()))?;
    let fail = |what: &str, e: &dyn std::fmt::Display| anyhow!("drawing {} ({what}): {e}", out.name);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, out.size).into_drawing_area();
        painter.paint(&root).map_err(|e| fail("svg", &e))?;
        root.present().map_err(|e| fail("svg", &e))?;
    }
    let svg_path = out.dir.join(format!("{}.svg", out.name));
    std::fs::write(&svg_path, svg).with_context(|| format!("writing {}", svg_path.display()))?;

    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, out.size).into_drawing_area();
        painter.paint(&root).map_err(|e| fail("png", &e))?;
        root.present().map_err(|e| fail("png", &e))?;
    }
    let png_path = out.dir.join(format!("{}.png", out.name));
    write_png(&png_path, out.size, &rgb).with_context(|| format!("writing {}", png_path.display()))?;
    Ok(Written { svg: svg_path, png: png_path })
}

fn write_png(path: &Path, (w, h): (u32, u32), rgb: &[u8]) -> anyhow::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(())
}

/// Splits `root` into a grid of `n` cells, `cols` wide (the last row may be partly empty).
pub(crate) fn grid_cells<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    n: usize,
    cols: usize,
) -> Vec<DrawingArea<DB, Shift>> {
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols).max(1);
    let mut cells = root.split_evenly((rows, cols));
    cells.truncate(n);
    cells
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_outside_the_accepted_range_are_errors() {
        let grid = LogDensityGrid::evaluate((0.0, 1.0), (0.0, 1.0), (2, 2), |_| 0.0);
        let fig =
            DensityFigure { grid: &grid, panels: vec![("a".into(), &[])], x_label: "x".into(), y_label: "y".into() };
        let dir = testing::scratch_dir("sizes");
        for size in [(8, 100), (100, 0), (100, MAX_SIDE + 1)] {
            assert!(density_figure(&Output::new(&dir, "s", size), &fig).is_err(), "{size:?}");
        }
        assert!(density_figure(&Output::new(&dir, "s", (64, 64)), &fig).is_ok());
    }
}
