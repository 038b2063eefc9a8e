//! The gradient-variance figure of a training run (the gradient-estimator paper's Fig. 5):
//! sqrt(Var) of each estimator against training time, one line per estimator, from the
//! `gradvar.csv` that `train.gradvar_every` writes. The variances span orders of magnitude, so
//! the axis is log10.

use std::path::Path;

use anyhow::{Context, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::training::padded_range;
use super::{Drawn, FONT, Output, Painter, Written, axes, palette, save_both};

/// `(training seconds, sqrt(Var))` of each estimator, in the order they first appear.
pub type GradVarSeries = Vec<(String, Vec<(f64, f64)>)>;

/// Reads `gradvar.csv` (header `step,seconds,estimator,variance,sd,...`) into one series per
/// estimator; a malformed row is an error naming its line.
pub fn read_gradvar_csv(path: &Path) -> anyhow::Result<GradVarSeries> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| anyhow!("{} is empty", path.display()))?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |name: &str| {
        names.iter().position(|n| *n == name).ok_or_else(|| anyhow!("{}: no column {name}", path.display()))
    };
    let (seconds, estimator, sd) = (column("seconds")?, column("estimator")?, column("sd")?);
    let mut series: GradVarSeries = Vec::new();
    for (index, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = || anyhow!("{} line {}: {line:?} is not a row of {header:?}", path.display(), index + 1);
        if cells.len() != names.len() {
            return Err(bad());
        }
        let t: f64 = cells[seconds].parse().map_err(|_| bad())?;
        let s: f64 = cells[sd].parse().map_err(|_| bad())?;
        let name = cells[estimator];
        match series.iter_mut().find(|(n, _)| n == name) {
            Some((_, points)) => points.push((t, s)),
            None => series.push((name.to_string(), vec![(t, s)])),
        }
    }
    Ok(series)
}

struct Lines<'a>(&'a GradVarSeries);

impl Painter for Lines<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        root.fill(&WHITE)?;
        let logged: Vec<(&str, Vec<(f64, f64)>)> = self
            .0
            .iter()
            .map(|(n, p)| (n.as_str(), p.iter().filter(|(_, s)| *s > 0.0).map(|&(t, s)| (t, s.log10())).collect()))
            .collect();
        let all = || logged.iter().flat_map(|(_, p)| p.iter());
        let x = padded_range(all().map(|p| p.0), 0.02);
        let y = padded_range(all().map(|p| p.1), 0.08);
        let mut chart = axes::chart(root, "gradient estimators: sqrt(Var) (eq. 45)", x, y)?;
        axes::draw_axes(&mut chart, "training time (s)", "log10 sqrt(Var)", true)?;
        for (k, (name, points)) in logged.iter().enumerate() {
            let colour = palette::series(k);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(200, 200, 200))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        Ok(())
    }
}

/// Writes the figure; an error if no estimator has a positive value.
pub fn gradvar_figure(out: &Output, series: &GradVarSeries) -> anyhow::Result<Written> {
    if !series.iter().any(|(_, p)| p.iter().any(|(_, s)| *s > 0.0)) {
        return Err(anyhow!("gradvar.csv holds no positive sqrt(Var)"));
    }
    save_both(out, &Lines(series))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::testing::{check_png, check_svg, scratch_dir};

    #[test]
    fn one_line_per_estimator_from_the_csv() {
        let dir = scratch_dir("gradvar");
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = String::from("step,seconds,estimator,variance,sd,mean_grad_norm,f_q,signal_sd\n");
        for step in 1..=5 {
            for (k, name) in ["g1", "g2", "g3"].iter().enumerate() {
                let sd = 10f64.powi(-(k as i32)) / step as f64;
                text += &format!("{step},{},{name},{},{sd},1,-3,0.5\n", 2.0 * step as f64, sd * sd);
            }
        }
        let path = dir.join("gradvar.csv");
        std::fs::write(&path, &text).unwrap();
        let series = read_gradvar_csv(&path).unwrap();
        assert_eq!(
            series.iter().map(|(n, p)| (n.as_str(), p.len())).collect::<Vec<_>>(),
            [("g1", 5), ("g2", 5), ("g3", 5)]
        );
        assert_eq!(series[1].1[0], (2.0, 0.1));
        let written = gradvar_figure(&Output::new(&dir, "gradvar", (800, 500)), &series).unwrap();
        let png = check_png(&written.png, (800, 500));
        for k in 0..3 {
            assert!(png.count(palette::series(k)) > 100, "line {k}: {}", png.count(palette::series(k)));
        }
        assert_eq!(png.count(palette::series(3)), 0);
        let svg = check_svg(&written.svg);
        assert!(svg.count("polyline") >= 3, "{svg:?}");

        std::fs::write(&path, text.replace("\n2,4,g1,", "\n2,4,g1,x,")).unwrap();
        let err = format!("{:#}", read_gradvar_csv(&path).unwrap_err());
        assert!(err.contains("gradvar.csv line") && err.contains("2,4,g1,x"), "{err}");
    }
}
