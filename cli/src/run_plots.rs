//! The figures and the report of a run directory, drawn only from the files in it (config,
//! metrics, checkpoint, chains, summary), so `bootflow plot RUN_DIR` redraws what `bootflow run`
//! drew: training curves; for a 2-D target its density with flow samples and with flow + AIS
//! samples, otherwise pairwise marginals of a few coordinate pairs of flow samples; traces and
//! autocorrelations of a few chain quantities; the magnetisation histogram where chains have `M`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bootflow_core::Annealer;
use bootflow_core::Checkpoint;
use bootflow_core::FlowDensity;
use bootflow_core::Summary;
use bootflow_core::chain_path;
use bootflow_core::read_metrics_csv;
use bootflow_core::run::estimate::ais_config;
use bootflow_core::run::sample::load_flow;
use bootflow_core::run::{RunSpec, build_target};
use bootflow_core::{Batch, Flow, Registry, Target, TargetDensity, rng};
use bootflow_core::{ChainCsv, read_chain_csv};

use crate::plot::{
    ChainQuantity, DensityFigure, LogDensityGrid, Output, PairPanel, Report, ReportRow, chain_figure, density_figure,
    gradvar_figure, histogram_figure, pairs_figure, read_gradvar_csv, training_figure, write_report,
};

/// Flow samples drawn for the sample figures.
const FIGURE_SAMPLES: usize = 2000;
/// Stream of those samples (chains and evaluation use others).
const FIGURE_STREAM: u64 = 0xF16;
/// Intermediate distributions of the AIS figure when the config asks for none.
const DEFAULT_AIS_STEPS: usize = 4;
/// Chain quantities traced, and coordinate pairs drawn for higher-dimensional targets.
const MAX_TRACED: usize = 3;
const MAX_PAIRS: usize = 4;

/// Every chain file of the run, in chain order.
pub fn read_chains(dir: &Path) -> Result<Vec<ChainCsv>> {
    let mut chains = Vec::new();
    while chain_path(dir, chains.len()).is_file() {
        chains.push(read_chain_csv(&chain_path(dir, chains.len()))?);
    }
    Ok(chains)
}

/// `(lo, hi)` of the finite values, widened by 10 % on each side (a unit range if there are none).
fn padded(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return (-1.0, 1.0);
    }
    let pad = ((hi - lo) * 0.1).max(1e-3);
    (lo - pad, hi + pad)
}

/// `FIGURE_SAMPLES` flow samples, and the same samples moved by AIS towards the target.
fn flow_and_ais_samples(
    dir: &Path,
    run: &RunSpec,
    flow: &Flow,
    target: &dyn Target,
    reg: &Registry,
) -> Result<(Batch, Batch)> {
    let mut r = rng::stream(run.train.seed, FIGURE_STREAM);
    let (x, log_q) = flow.sample_with_log_q(FIGURE_SAMPLES, &mut r)?;
    let c = Checkpoint::read(dir)?;
    let steps = run.evaluate.ais.filter(|k| *k > 0).unwrap_or(DEFAULT_AIS_STEPS);
    let ais = ais_config(&c, Some(steps), reg)?.context("AIS settings for the figure")?;
    let kernel = reg.kernel(&ais.kernel, flow.dim(), &ais.kernel_config)?;
    let mut annealer = Annealer::new(kernel.as_ref(), ais.n_intermediate, ais.spacing)?;
    if let Some(s) = &ais.kernel_state {
        annealer.set_state(s)?;
    }
    annealer.set_adapt(ais.adapt);
    let moved = annealer.run(&FlowDensity(flow), &TargetDensity(target), x.clone(), &log_q, &mut r)?;
    Ok((x, moved.x))
}

fn pairs(x: &Batch) -> Vec<(f64, f64)> {
    x.column_iter().map(|c| (c[0], c[1])).collect()
}

/// The sample figure: target density with flow and flow + AIS samples (2-D), else pairwise
/// marginals of flow samples.
fn sample_figure(dir: &Path, run: &RunSpec, target: &dyn Target, reg: &Registry) -> Result<PathBuf> {
    let flow = load_flow(reg, dir)?;
    let dim = flow.dim();
    if dim == 2 {
        let (x, moved) = flow_and_ais_samples(dir, run, &flow, target, reg)?;
        let (a, b) = (pairs(&x), pairs(&moved));
        let xr = padded(a.iter().chain(&b).map(|p| p.0));
        let yr = padded(a.iter().chain(&b).map(|p| p.1));
        let grid = LogDensityGrid::evaluate(xr, yr, (120, 120), |p| target.log_prob(p).unwrap_or(f64::NAN));
        let fig = DensityFigure {
            grid: &grid,
            panels: vec![("flow samples".into(), &a), ("flow + AIS samples".into(), &b)],
            x_label: "x.1".into(),
            y_label: "x.2".into(),
        };
        return Ok(density_figure(&Output::new(dir, "density", (1000, 500)), &fig)?.png);
    }
    let mut r = rng::stream(run.train.seed, FIGURE_STREAM);
    let (x, _) = flow.sample_with_log_q(FIGURE_SAMPLES, &mut r)?;
    let panels: Vec<PairPanel> = (0..MAX_PAIRS)
        .map(|k| (2 * k, 2 * k + 1))
        .filter(|&(_, j)| j < dim)
        .map(|(i, j)| PairPanel {
            i,
            j,
            x_range: padded(x.row(i).iter().copied()),
            y_range: padded(x.row(j).iter().copied()),
            marginal: None,
        })
        .collect();
    Ok(pairs_figure(&Output::new(dir, "pairs", (900, 900)), x.as_slice(), dim, &panels, 2)?.png)
}

/// Traces of the target's observables (or the first coordinates) and the magnetisation histogram.
fn chain_figures(dir: &Path, chains: &[ChainCsv]) -> Result<Vec<PathBuf>> {
    let Some(first) = chains.first() else { return Ok(Vec::new()) };
    let observables: Vec<&String> =
        first.columns.iter().filter(|c| !c.ends_with("__") && !c.starts_with("x.")).collect();
    let coords: Vec<&String> = first.columns.iter().filter(|c| c.starts_with("x.")).collect();
    let picked: Vec<&String> = observables.into_iter().chain(coords).take(MAX_TRACED).collect();
    let series: Vec<(String, Vec<Vec<f64>>)> =
        picked.iter().map(|n| (n.to_string(), chains.iter().filter_map(|c| c.column(n)).collect())).collect();
    let quantities: Vec<ChainQuantity> = series
        .iter()
        .map(|(n, s)| ChainQuantity { name: n.clone(), chains: s.iter().map(Vec::as_slice).collect() })
        .collect();
    let mut out = Vec::new();
    if first.rows.len() >= 2 {
        let size = (1000, 300 * quantities.len() as u32);
        out.push(chain_figure(&Output::new(dir, "chains", size), &quantities, 50)?.png);
    }
    if first.columns.iter().any(|c| c == "M") {
        let m: Vec<f64> = chains.iter().filter_map(|c| c.column("M")).flatten().collect();
        out.push(histogram_figure(&Output::new(dir, "magnetisation", (700, 450)), "M", &m, 60)?.png);
    }
    Ok(out)
}

/// Estimates and facts of the summary for the report.
fn report_of(summary: &Summary, figures: Vec<PathBuf>, title: String) -> Report {
    let mut rows = Vec::new();
    let names = summary.quantities.0.iter();
    let (obs, coords): (Vec<_>, Vec<_>) = names.partition(|(n, _)| !n.starts_with("x."));
    for (name, q) in obs.into_iter().chain(coords.into_iter().take(4)) {
        let error = q.mcse_mean.is_finite().then_some(q.mcse_mean);
        rows.push(ReportRow { label: format!("<{name}>"), value: q.mean, error });
    }
    let mut facts = vec![
        ("method".to_string(), format!("{} ({} chains x {} draws)", summary.method, summary.chains, summary.draws)),
        ("sampling time".to_string(), format!("{:.1} s", summary.seconds)),
    ];
    if let Some(a) = summary.acceptance {
        facts.push(("acceptance".into(), format!("{a:.3}")));
    }
    for (name, q) in &summary.quantities.0 {
        if !name.starts_with("x.") {
            facts.push((
                format!("tau_int({name})"),
                format!("{:.2} (ESS bulk {:.0}, R-hat {:.3})", q.tau_int, q.ess_bulk, q.rhat),
            ));
        }
    }
    if let Some(i) = &summary.importance {
        facts.push(("importance ESS (Kish)".into(), format!("{:.4}", i.ess)));
        facts.push(("log Z (importance)".into(), crate::plot::format_estimate(i.log_z, Some(i.log_z_se))));
    }
    for key in ["train", "flow"] {
        if let Some(serde_json::Value::Object(m)) = summary.extra.get(key) {
            for (k, v) in m {
                match v.as_f64() {
                    Some(x) => facts.push((format!("{key} {k}"), crate::plot::format_estimate(x, None))),
                    None if !v.is_null() => facts.push((format!("{key} {k}"), v.to_string())),
                    None => {}
                }
            }
        }
    }
    Report { title, rows, facts, figures, warnings: crate::progress::recorded_warnings(summary) }
}

/// The training curves, and the gradient-variance figure where the run measured it.
fn training_figures(dir: &Path) -> Vec<(&'static str, Result<Vec<PathBuf>>)> {
    let training = || -> Result<Vec<PathBuf>> {
        let metrics = read_metrics_csv(&dir.join("metrics.csv"))?;
        Ok(vec![training_figure(&Output::new(dir, "training", (900, 600)), &metrics)?.png])
    };
    let mut out = vec![("training", training())];
    let csv = dir.join("gradvar.csv");
    if csv.is_file() {
        let drawn = read_gradvar_csv(&csv)
            .and_then(|series| gradvar_figure(&Output::new(dir, "gradvar", (900, 550)), &series))
            .map(|w| vec![w.png]);
        out.push(("gradient-variance", drawn));
    }
    out
}

/// What `bootflow plot DIR` drew: the figures, and the report of a `bootflow run` directory.
pub enum Drawing {
    /// A directory written by `bootflow run`: every figure and `report.md`.
    Run(Report),
    /// A directory written by `bootflow train`: its training figures.
    Training(Vec<PathBuf>),
}

/// Whether `dir` holds a training run and no sampling: `bootflow train`'s summary (it has
/// `n_params`, a sampling summary has `method`), or none yet while training runs.
fn holds_training_only(dir: &Path) -> bool {
    if !(dir.join("checkpoint.json").is_file() && dir.join("metrics.csv").is_file()) {
        return false;
    }
    match std::fs::read_to_string(dir.join("summary.json")) {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
            .is_ok_and(|v| v.get("n_params").is_some() && v.get("method").is_none()),
    }
}

/// Draws the figures of a run directory (`bootflow run` or `bootflow train`).
pub fn draw(dir: &Path, reg: &Registry) -> Result<Drawing> {
    if holds_training_only(dir) {
        let mut figures = Vec::new();
        for (what, drawn) in training_figures(dir) {
            figures.extend(drawn.with_context(|| format!("the {what} figure of {}", dir.display()))?);
        }
        return Ok(Drawing::Training(figures));
    }
    draw_run(dir, reg).map(Drawing::Run)
}

/// Draws every figure of the run in `dir` and writes `report.md`; returns the report.
pub fn draw_run(dir: &Path, reg: &Registry) -> Result<Report> {
    let run = RunSpec::from_file(&dir.join("config.toml"), &[])?;
    // Read first: a directory `bootflow run` did not write (a `train` run has no MIS summary)
    // is refused before any figure is drawn into it.
    let summary = Summary::read(&dir.join("summary.json"))
        .map_err(|e| anyhow::anyhow!("{} is not a directory written by `bootflow run` ({e})", dir.display()))?;
    let target = build_target(reg, &run.train.target.name, &run.train.target.params.clone().into_iter().collect())?;
    // A figure that cannot be drawn (e.g. a run too short to log any metric) is reported and
    // left out; the others and the report are still written.
    let mut figures = Vec::new();
    let mut keep = |what: &str, drawn: Result<Vec<PathBuf>>| match drawn {
        Ok(f) => figures.extend(f),
        Err(e) => eprintln!("warning: no {what} figure: {e:#}"),
    };
    for (what, drawn) in training_figures(dir) {
        keep(what, drawn);
    }
    keep("sample", sample_figure(dir, &run, target.as_ref(), reg).map(|f| vec![f]));
    keep("chain", read_chains(dir).and_then(|c| chain_figures(dir, &c)));
    let report = report_of(&summary, figures, format!("bootflow run: {}", run.train.target.name));
    write_report(dir, &report)?;
    Ok(report)
}
