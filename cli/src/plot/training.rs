//! Training curves from the metrics CSV written during training: loss, ESS, skipped steps and
//! AIS acceptance against the step number, one panel per column that has any value.

use std::path::Path;

use anyhow::anyhow;
use bootflow_core::Metrics;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Drawn, Output, Painter, Written, axes, grid_cells, palette, save_both};

/// Finite `(step, value)` pairs of one column of `m` (rows lacking either are left out).
fn curve(m: &Metrics, name: &str) -> Vec<(f64, f64)> {
    let (Some(steps), Some(values)) = (m.column("step"), m.column(name)) else {
        return Vec::new();
    };
    steps
        .iter()
        .zip(values)
        .filter_map(|(s, v)| Some((s.as_ref().copied()?, v.as_ref().copied()?)))
        .filter(|(s, v)| s.is_finite() && v.is_finite())
        .collect()
}

/// Panels in drawing order: column name and title.
const PANELS: [(&str, &str); 4] = [
    ("loss", "loss"),
    ("ess", "ESS (fraction of samples)"),
    ("skipped_steps", "skipped steps (cumulative)"),
    ("ais_accept", "AIS acceptance"),
];

struct Curves {
    panels: Vec<(&'static str, Vec<(f64, f64)>)>,
}

impl Painter for Curves {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        root.fill(&WHITE)?;
        let cells = grid_cells(root, self.panels.len(), 2);
        for (k, (area, (title, curve))) in cells.iter().zip(&self.panels).enumerate() {
            draw_curve(area, title, "step", curve, palette::series(k))?;
        }
        Ok(())
    }
}

/// Writes one panel per metric column that holds a value; an error if none does.
pub fn training_figure(out: &Output, metrics: &Metrics) -> anyhow::Result<Written> {
    if metrics.column("step").is_none() {
        return Err(anyhow!("metrics have no step column"));
    }
    let panels: Vec<_> = PANELS
        .iter()
        .map(|&(name, title)| (title, curve(metrics, name)))
        .filter(|(_, curve)| !curve.is_empty())
        .collect();
    if panels.is_empty() {
        return Err(anyhow!("metrics hold no value of {}", PANELS.map(|p| p.0).join(", ")));
    }
    save_both(out, &Curves { panels })
}

/// A line plot of `points` (x ascending) with axes fitted to the data.
pub(crate) fn draw_curve<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    points: &[(f64, f64)],
    colour: RGBColor,
) -> Drawn<DB> {
    let x = padded_range(points.iter().map(|p| p.0), 0.0);
    let y = padded_range(points.iter().map(|p| p.1), 0.05);
    let mut chart = axes::chart(area, title, x, y)?;
    axes::draw_axes(&mut chart, x_label, "", true)?;
    chart.draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))?;
    Ok(())
}

/// Range of finite `values`, widened by `pad` of its width (or by 0.5 if it is a single value).
pub(crate) fn padded_range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let width = hi - lo;
    if width <= f64::EPSILON * lo.abs().max(1.0) { (lo - 0.5, hi + 0.5) } else { (lo - pad * width, hi + pad * width) }
}

#[cfg(test)]
mod tests {
    use bootflow_core::read_metrics_csv;

    use super::*;
    use crate::plot::testing::{check_png, check_svg, scratch_dir};

    fn metrics_text(with_ais: bool) -> String {
        let mut text = String::from("step,seconds,loss,ess,grad_norm,skipped_steps,ais_accept,step_size\n");
        for s in 0..300 {
            let loss = 5.0 * (-(s as f64) / 80.0).exp() + 0.1 * ((s * 7) % 5) as f64;
            let ess = 1.0 - (-(s as f64) / 100.0).exp();
            let ais = if with_ais { format!("{:.3}", 0.6 + 0.1 * (s as f64 / 50.0).sin()) } else { String::new() };
            // Evaluation-only columns are filled every 10th step.
            let ess = if s % 10 == 0 { format!("{ess:.4}") } else { String::new() };
            text += &format!("{s},{:.2},{loss:.4},{ess},1.5,{},{ais},0.1\n", s as f64 * 0.01, s / 100);
        }
        text
    }

    #[test]
    fn curves_leave_out_empty_cells() {
        let m = Metrics::parse("step,loss,ess\n0,1.5,\n1,,0.25\n").unwrap();
        assert_eq!(curve(&m, "ess"), vec![(1.0, 0.25)]);
        assert_eq!(curve(&m, "loss"), vec![(0.0, 1.5)]);
    }

    #[test]
    fn metrics_file_is_read_and_a_missing_one_is_named() {
        let dir = scratch_dir("metrics_file");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.csv");
        std::fs::write(&path, metrics_text(true)).unwrap();
        let m = read_metrics_csv(&path).unwrap();
        assert_eq!(m.names.len(), 8);
        assert_eq!(m.column("step").unwrap().len(), 300);
        let err = format!("{:#}", read_metrics_csv(&dir.join("absent.csv")).unwrap_err());
        assert!(err.contains("absent.csv"), "{err}");
    }

    #[test]
    fn training_figure_has_one_panel_per_filled_column() {
        let dir = scratch_dir("training");
        let all = Metrics::parse(&metrics_text(true)).unwrap();
        let written = training_figure(&Output::new(&dir, "training", (900, 600)), &all).unwrap();
        let png = check_png(&written.png, (900, 600));
        for k in 0..4 {
            assert!(png.count(palette::series(k)) > 100, "panel {k}: {}", png.count(palette::series(k)));
        }
        assert!(png.has_text_pixels());
        let svg = check_svg(&written.svg);
        assert!(svg.count("polyline") >= 4 && svg.count("text") > 10, "{svg:?}");

        // Without AIS the fourth panel is skipped.
        let no_ais = Metrics::parse(&metrics_text(false)).unwrap();
        let written = training_figure(&Output::new(&dir, "training3", (900, 600)), &no_ais).unwrap();
        let png = check_png(&written.png, (900, 600));
        assert!(png.count(palette::series(2)) > 100);
        assert_eq!(png.count(palette::series(3)), 0);
    }

    #[test]
    fn metrics_without_values_are_an_error() {
        let out = Output::new(scratch_dir("training_empty"), "t", (300, 300));
        assert!(training_figure(&out, &Metrics::parse("step,loss\n0,\n1,\n").unwrap()).is_err());
        assert!(training_figure(&out, &Metrics::parse("loss\n1\n").unwrap()).is_err());
    }

    #[test]
    fn ranges_are_padded_and_never_empty() {
        assert_eq!(padded_range([1.0, 3.0].into_iter(), 0.5), (0.0, 4.0));
        assert_eq!(padded_range([2.0, 2.0].into_iter(), 0.1), (1.5, 2.5));
        assert_eq!(padded_range([f64::NAN].into_iter(), 0.1), (0.0, 1.0));
    }
}
