//! MCMC chains: trace plots and autocorrelation of chosen quantities, and histograms (e.g. the
//! magnetisation of phi^4).

use anyhow::anyhow;
use bootflow_core::centred_lag_products_direct;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::training::{draw_curve, padded_range};
use super::{Drawn, Output, Painter, Written, axes, grid_cells, palette, save_both};

/// One quantity recorded along several chains (one series per chain).
#[derive(Clone, Debug)]
pub struct ChainQuantity<'a> {
    pub name: String,
    pub chains: Vec<&'a [f64]>,
}

/// Normalised autocorrelation rho(0..=max_lag), averaged over chains, each chain centred on its
/// own mean (lags capped below the shortest usable chain). Empty if no chain varies.
pub fn autocorrelation(chains: &[&[f64]], max_lag: usize) -> Vec<f64> {
    let usable: Vec<&[f64]> = chains.iter().copied().filter(|c| c.len() > 1).collect();
    let Some(shortest) = usable.iter().map(|c| c.len()).min() else {
        return Vec::new();
    };
    let lags = max_lag.min(shortest - 1);
    let mut sum = vec![0.0; lags + 1];
    let mut counted = 0usize;
    for chain in usable {
        let mean = chain.iter().sum::<f64>() / chain.len() as f64;
        let c = centred_lag_products_direct(chain, mean, lags);
        let gamma0 = c[0];
        if !(gamma0 > 0.0 && gamma0.is_finite()) {
            continue;
        }
        sum.iter_mut().zip(&c).for_each(|(s, v)| *s += v / gamma0);
        counted += 1;
    }
    if counted == 0 {
        return Vec::new();
    }
    sum.iter().map(|s| s / counted as f64).collect()
}

/// At most about `max_points` points tracing `series`: the minimum and maximum of each bucket of
/// consecutive values, in order, so that excursions stay visible after thinning.
fn envelope(series: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let bucket = series.len().div_ceil(max_points.max(2) / 2).max(1);
    if bucket <= 2 {
        return series.iter().enumerate().map(|(i, &v)| (i as f64, v)).collect();
    }
    let mut points = Vec::with_capacity(2 * series.len().div_ceil(bucket));
    for (b, chunk) in series.chunks(bucket).enumerate() {
        let at = |i: usize| ((b * bucket + i) as f64, chunk[i]);
        let (imin, imax) = chunk
            .iter()
            .enumerate()
            .fold((0, 0), |(lo, hi), (i, &v)| (if v < chunk[lo] { i } else { lo }, if v > chunk[hi] { i } else { hi }));
        points.push(at(imin.min(imax)));
        points.push(at(imin.max(imax)));
    }
    points
}

/// Points per chain in a trace panel.
const TRACE_POINTS: usize = 2000;

struct ChainsPainter<'a> {
    quantities: &'a [ChainQuantity<'a>],
    max_lag: usize,
}

impl Painter for ChainsPainter<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        root.fill(&WHITE)?;
        let cells = grid_cells(root, 2 * self.quantities.len(), 2);
        for (q, pair) in self.quantities.iter().zip(cells.chunks(2)) {
            draw_traces(&pair[0], q)?;
            let rho: Vec<(f64, f64)> =
                autocorrelation(&q.chains, self.max_lag).into_iter().enumerate().map(|(t, r)| (t as f64, r)).collect();
            draw_curve(&pair[1], &format!("autocorrelation of {}", q.name), "lag", &rho, palette::series(0))?;
        }
        Ok(())
    }
}

fn draw_traces<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, q: &ChainQuantity) -> Drawn<DB> {
    let traces: Vec<Vec<(f64, f64)>> =
        q.chains.iter().map(|c| envelope(c, TRACE_POINTS).into_iter().filter(|p| p.1.is_finite()).collect()).collect();
    let x = padded_range(traces.iter().flatten().map(|p| p.0), 0.0);
    let y = padded_range(traces.iter().flatten().map(|p| p.1), 0.05);
    let mut chart = axes::chart(area, &format!("trace of {}", q.name), x, y)?;
    axes::draw_axes(&mut chart, "iteration", "", true)?;
    for (k, trace) in traces.into_iter().enumerate() {
        chart.draw_series(LineSeries::new(trace, palette::series(k).stroke_width(1)))?;
    }
    Ok(())
}

/// Writes, per quantity, its traces (one colour per chain) beside its autocorrelation up to
/// `max_lag`. Every quantity needs at least two values in some chain.
pub fn chain_figure(out: &Output, quantities: &[ChainQuantity], max_lag: usize) -> anyhow::Result<Written> {
    if quantities.is_empty() {
        return Err(anyhow!("figure {}: no quantity to trace", out.name));
    }
    if let Some(q) = quantities.iter().find(|q| q.chains.iter().all(|c| c.len() < 2)) {
        return Err(anyhow!("figure {}: quantity {} has no chain of two or more values", out.name, q.name));
    }
    save_both(out, &ChainsPainter { quantities, max_lag })
}

struct HistogramPainter {
    label: String,
    /// `(left edge, right edge, density)` of each bin.
    bars: Vec<(f64, f64, f64)>,
}

impl Painter for HistogramPainter {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
        root.fill(&WHITE)?;
        let (x0, x1) = (self.bars[0].0, self.bars[self.bars.len() - 1].1);
        let top = self.bars.iter().map(|b| b.2).fold(0.0, f64::max) * 1.05;
        let title = format!("histogram of {}", self.label);
        let mut chart = axes::chart(root, &title, (x0, x1), (0.0, top.max(f64::MIN_POSITIVE)))?;
        axes::draw_axes(&mut chart, &self.label, "density", true)?;
        let fill = palette::series(0);
        chart.draw_series(self.bars.iter().map(|&(a, b, d)| Rectangle::new([(a, 0.0), (b, d)], fill.filled())))?;
        Ok(())
    }
}

const MAX_BINS: usize = 10_000;

/// Writes a histogram of the finite `values` in `bins` equal bins, normalised as a density.
pub fn histogram_figure(out: &Output, label: &str, values: &[f64], bins: usize) -> anyhow::Result<Written> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return Err(anyhow!("figure {}: no finite value of {label} to histogram", out.name));
    }
    if !(1..=MAX_BINS).contains(&bins) {
        return Err(anyhow!("figure {}: {bins} bins is outside 1..={MAX_BINS}", out.name));
    }
    let (lo, hi) = padded_range(finite.iter().copied(), 0.0);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for v in &finite {
        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let norm = finite.len() as f64 * width;
    let bars = counts
        .iter()
        .enumerate()
        .map(|(k, &c)| (lo + k as f64 * width, lo + (k + 1) as f64 * width, c as f64 / norm))
        .collect();
    save_both(out, &HistogramPainter { label: label.to_string(), bars })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::testing::{check_png, check_svg, scratch_dir};

    /// Deterministic AR(1) series x_t = a x_{t-1} + e_t with a small LCG for e_t.
    fn ar1(a: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        let mut x = 0.0;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let e = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                x = a * x + e;
                x
            })
            .collect()
    }

    #[test]
    fn autocorrelation_of_ar1_decays_geometrically() {
        let chains: Vec<Vec<f64>> = (0..4).map(|s| ar1(0.8, 50_000, s + 1)).collect();
        let refs: Vec<&[f64]> = chains.iter().map(|c| c.as_slice()).collect();
        let rho = autocorrelation(&refs, 100);
        assert_eq!(rho.len(), 101);
        assert!((rho[0] - 1.0).abs() < 1e-12);
        // Std error of rho(t) from 4 x 50k samples with tau_int = 9 is about sqrt(9/2e5) = 0.007;
        // 0.03 is above 4 of those.
        for t in [1, 2, 5, 10] {
            assert!((rho[t] - 0.8f64.powi(t as i32)).abs() < 0.03, "lag {t}: {}", rho[t]);
        }
    }

    #[test]
    fn autocorrelation_skips_constant_and_short_chains() {
        assert!(autocorrelation(&[&[1.0, 1.0, 1.0], &[2.0]], 5).is_empty());
        let rho = autocorrelation(&[&[1.0, -1.0, 1.0, -1.0], &[3.0; 10]], 100);
        assert_eq!(rho.len(), 4);
        assert!((rho[1] + 0.75).abs() < 1e-12, "{rho:?}");
    }

    #[test]
    fn envelope_keeps_extremes_of_long_series() {
        let mut series = vec![0.0; 100_000];
        series[54_321] = 9.0;
        series[7] = -4.0;
        let pts = envelope(&series, 1000);
        assert!(pts.len() <= 1002);
        assert!(pts.contains(&(54_321.0, 9.0)) && pts.contains(&(7.0, -4.0)));
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(envelope(&[1.0, 2.0], 1000), vec![(0.0, 1.0), (1.0, 2.0)]);
    }

    #[test]
    fn chain_figure_draws_every_chain_and_the_autocorrelation() {
        let chains: Vec<Vec<f64>> = (0..3).map(|s| ar1(0.9, 5000, s + 7)).collect();
        let energy: Vec<Vec<f64>> = chains.iter().map(|c| c.iter().map(|v| v * v).collect()).collect();
        let quantities = [
            ChainQuantity { name: "x1".into(), chains: chains.iter().map(|c| c.as_slice()).collect() },
            ChainQuantity { name: "energy".into(), chains: energy.iter().map(|c| c.as_slice()).collect() },
        ];
        let written =
            chain_figure(&Output::new(scratch_dir("chains"), "chains", (1000, 700)), &quantities, 100).unwrap();
        let png = check_png(&written.png, (1000, 700));
        for k in 0..3 {
            assert!(png.count(palette::series(k)) > 200, "chain {k}: {}", png.count(palette::series(k)));
        }
        assert!(png.has_text_pixels());
        let svg = check_svg(&written.svg);
        assert!(svg.count("polyline") >= 8, "{svg:?}");
        let out = Output::new(scratch_dir("chains_odd"), "c", (300, 300));
        assert!(chain_figure(&out, &[], 10).is_err());
        let short = [ChainQuantity { name: "s".into(), chains: vec![&[1.0]] }];
        assert!(chain_figure(&out, &short, 10).is_err());
        // Constant and non-finite chains still draw (empty autocorrelation, gaps in the trace).
        let odd =
            [ChainQuantity { name: "odd".into(), chains: vec![&[2.0; 50], &[1.0, f64::NAN, 3.0, f64::INFINITY]] }];
        assert!(chain_figure(&out, &odd, 10).is_ok());
    }

    #[test]
    fn histogram_is_a_density_with_visible_bars() {
        // A bimodal magnetisation-like sample.
        let values: Vec<f64> =
            ar1(0.5, 20_000, 3).iter().enumerate().map(|(i, e)| e + if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let written = histogram_figure(&Output::new(scratch_dir("hist"), "m", (600, 400)), "m", &values, 40).unwrap();
        let png = check_png(&written.png, (600, 400));
        assert!(png.count(palette::series(0)) > 5000, "bar pixels: {}", png.count(palette::series(0)));
        assert!(png.has_text_pixels());
        assert!(check_svg(&written.svg).count("rect") >= 40);
        let out = Output::new(scratch_dir("hist_bad"), "m", (300, 300));
        assert!(histogram_figure(&out, "m", &[f64::NAN], 10).is_err());
        assert!(histogram_figure(&out, "m", &[1.0], 0).is_err());
    }
}
