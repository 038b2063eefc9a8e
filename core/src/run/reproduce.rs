//! `bootflow reproduce`: the shipped reproduction configs, run one after the other, with our
//! figures next to the published ones. The entries, their published figures and sources live in
//! `docs/reproduce.toml`; the binary embeds that file and the configs it names, so the command
//! works from any directory.
//!
//! A time budget is spent shortest entry first: an entry whose full time fits in what is left
//! runs in full; from the first that does not, every remaining entry gets an equal share of what
//! is left and runs *cut* — its training stops at that share (less the estimate's part), its
//! buffer fills to the same fraction, its estimate uses that fraction of the samples — and its
//! rows say so, since a cut run's figures are not comparable to the published ones.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;

use crate::Registry;
use crate::error::{Error, Result, ResultExt};
use crate::run::estimate::{Estimate, EstimateRequest, estimate};
use crate::run::progress::RunProgress;
use crate::run::spec::RunSpec;
use crate::run::train::{Start, train};
use crate::run::{build_target, outdir};

/// The entries file, embedded.
const ENTRIES: &str = include_str!("../../../docs/reproduce.toml");

/// The configs the entries name, embedded: `(file name in scripts/, text)`.
const CONFIGS: [(&str, &str); 8] = [
    ("gmm5-fab.toml", include_str!("../../../scripts/gmm5-fab.toml")),
    ("gmm-fab-buffer.toml", include_str!("../../../scripts/gmm-fab-buffer.toml")),
    ("gmm-fab-logz.toml", include_str!("../../../scripts/gmm-fab-logz.toml")),
    ("gmm-fab.toml", include_str!("../../../scripts/gmm-fab.toml")),
    ("manywell16-fab.toml", include_str!("../../../scripts/manywell16-fab.toml")),
    ("manywell32-fab.toml", include_str!("../../../scripts/manywell32-fab.toml")),
    ("funnel-fab.toml", include_str!("../../../scripts/funnel-fab.toml")),
    ("phi4-l8-g3.toml", include_str!("../../../scripts/phi4-l8-g3.toml")),
];

/// The markdown table written into the output directory.
pub const TABLE_FILE: &str = "table.md";

/// Share of a cut entry's time given to training; the rest is the estimate's.
const TRAIN_SHARE: f64 = 0.75;
/// Fewest estimate samples of a cut entry: two runs of the bias estimate (1000 samples each).
const MIN_CUT_SAMPLES: usize = 2000;
/// Fewest samples per log Z batch of a cut entry.
const MIN_CUT_BATCH: usize = 200;

/// Which way a figure is better.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Larger is better (ESS, mean log q).
    Higher,
    /// Smaller is better (errors, biases).
    Lower,
    /// Closer to the value is better, within the published error.
    Closer,
}

/// One published figure.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    /// What is compared (see `docs/reproduce.toml`).
    pub metric: String,
    /// The published value.
    pub value: f64,
    /// Its standard error, for `better = "closer"`.
    #[serde(default)]
    pub error: f64,
    /// Which way is better.
    pub better: Better,
    /// The figure as its source states it.
    pub shown: String,
    /// Where it is published.
    pub source: String,
}

/// One reproduction.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Name on the command line.
    pub name: String,
    /// One line on what it reproduces.
    pub what: String,
    /// The config's file name in `scripts/`.
    pub config: String,
    /// Full wall time on the development machine, minutes.
    pub minutes: f64,
    /// Estimate samples.
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// `[K, M]` of the log Z protocol, if the entry reports it.
    #[serde(default)]
    pub log_z_batches: Option<[usize; 2]>,
    /// The published figures.
    pub figures: Vec<Figure>,
}

fn default_samples() -> usize {
    100_000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntriesFile {
    entry: Vec<Entry>,
}

impl Entry {
    /// The embedded text of the entry's config.
    pub fn config_text(&self) -> Result<&'static str> {
        CONFIGS
            .iter()
            .find(|(f, _)| *f == self.config)
            .map(|(_, t)| *t)
            .ok_or_else(|| Error::Bug(format!("reproduce entry {}: config {} is not embedded", self.name, self.config)))
    }
}

/// Every entry, in the file's order.
pub fn entries() -> Result<Vec<Entry>> {
    let file: EntriesFile = toml::from_str(ENTRIES).map_err(|e| Error::Bug(format!("docs/reproduce.toml: {e}")))?;
    Ok(file.entry)
}

/// The entries named (all when `names` is empty), in the file's order; an unknown name is an
/// error listing the known ones.
pub fn select(names: &[String]) -> Result<Vec<Entry>> {
    let all = entries()?;
    if let Some(bad) = names.iter().find(|n| !all.iter().any(|e| &e.name == *n)) {
        let known: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
        return Err(Error::Config(format!("reproduce: no entry '{bad}' (entries: {})", known.join(", "))));
    }
    Ok(all.into_iter().filter(|e| names.is_empty() || names.contains(&e.name)).collect())
}

/// How much of an entry runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Plan {
    /// The whole entry.
    Full,
    /// Cut to this many minutes.
    Cut(f64),
}

impl Plan {
    /// The fraction of the full entry this plan runs.
    pub fn fraction(self, entry: &Entry) -> f64 {
        match self {
            Plan::Full => 1.0,
            Plan::Cut(m) => (m / entry.minutes).min(1.0),
        }
    }
}

/// The plan of each of `entries` (their order is kept) under `budget` minutes left (`None`:
/// no budget): shortest first, full while the full entry fits in what is left; from the first
/// that does not, equal shares of what is left.
pub fn plan(entries: &[Entry], budget: Option<f64>) -> Vec<Plan> {
    let Some(mut left) = budget else { return vec![Plan::Full; entries.len()] };
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| entries[a].minutes.total_cmp(&entries[b].minutes));
    let mut plans = vec![Plan::Full; entries.len()];
    for (k, &i) in order.iter().enumerate() {
        if entries[i].minutes <= left {
            left -= entries[i].minutes;
            continue;
        }
        let share = left.max(0.0) / (order.len() - k) as f64;
        order[k..].iter().for_each(|&j| plans[j] = Plan::Cut(share));
        break;
    }
    plans
}

/// The `--set` overrides that cut `entry`'s config to `fraction` of its time (none when full).
fn cut_sets(entry: &Entry, spec: &RunSpec, plan: Plan) -> Vec<String> {
    let Plan::Cut(minutes) = plan else { return Vec::new() };
    let fraction = plan.fraction(entry);
    let mut sets = vec![format!("train.max_seconds={:?}", (minutes * 60.0 * TRAIN_SHARE).max(0.1))];
    if let Some(min) = spec.table.pointer("/objective/buffer/min").and_then(Value::as_u64) {
        let batch = spec.table.pointer("/objective/batch").and_then(Value::as_u64).unwrap_or(1);
        let cut = ((min as f64 * fraction) as u64).clamp(batch.min(min), min);
        sets.push(format!("objective.buffer.min={cut}"));
    }
    sets
}

/// What one entry gave.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The entry.
    pub entry: Entry,
    /// How much of it ran.
    pub plan: Plan,
    /// Its estimate.
    pub estimate: Estimate,
    /// Its run directory.
    pub dir: PathBuf,
    /// Wall time of training and estimate, seconds.
    pub seconds: f64,
}

/// Trains `entry` (as planned) into `dir` and estimates it; `dir` must be new or empty, or
/// hold only bootflow's files when `force` is set.
pub fn run_entry(
    entry: &Entry,
    plan: Plan,
    dir: &Path,
    force: bool,
    registry: &Registry,
    progress: &dyn RunProgress,
) -> Result<Outcome> {
    let start = Instant::now();
    let text = entry.config_text()?;
    let full = RunSpec::from_toml_str(text, &[]).with_context(|| format!("reproduce entry {}", entry.name))?;
    let spec = RunSpec::from_toml_str(text, &cut_sets(entry, &full, plan))
        .with_context(|| format!("reproduce entry {}", entry.name))?;
    let cfg = spec.train;
    outdir::prepare(dir, force, "--out")?;
    let params = cfg.target.params.clone().into_iter().collect();
    let target = build_target(registry, &cfg.target.name, &params)
        .with_context(|| format!("reproduce entry {}: building the target", entry.name))?;
    train(&cfg, target, dir, Start::Fresh, registry, progress)
        .with_context(|| format!("reproduce entry {}: training", entry.name))?;
    let fraction = plan.fraction(entry);
    let scaled = |n: usize, floor: usize| ((n as f64 * fraction) as usize).max(floor).min(n);
    let req = EstimateRequest {
        flow: dir.to_path_buf(),
        samples: scaled(entry.samples, MIN_CUT_SAMPLES),
        ais_steps: None,
        seed: 0,
        log_z_batches: entry.log_z_batches.map(|[k, m]| (k, scaled(m, MIN_CUT_BATCH))),
    };
    let estimate = estimate(&req, registry).with_context(|| format!("reproduce entry {}: estimate", entry.name))?;
    Ok(Outcome { entry: entry.clone(), plan, estimate, dir: dir.to_path_buf(), seconds: start.elapsed().as_secs_f64() })
}

/// Our value of `metric` in an estimate, with its standard error where there is one.
pub fn our_value(metric: &str, e: &Estimate) -> Option<(f64, Option<f64>)> {
    let ev = &e.eval;
    let bias = |name: &str, ais: bool| {
        ev.bias.iter().find(|b| b.name == name).and_then(|b| if ais { b.ais.as_ref() } else { b.flow.as_ref() })
    };
    match metric {
        "ess" => Some((ev.ess, None)),
        "ess_ais" => ev.ess_ais.map(|v| (v, None)),
        "mean_log_q_target_samples" => ev.mean_log_q_target_samples.map(|v| (v, ev.mean_log_q_target_samples_se)),
        "test_mean_log_q" => ev.test_mean_log_q.map(|v| (v, None)),
        "log_z" => Some((ev.log_z, Some(ev.log_z_se))),
        "log_z_ais" => ev.log_z_ais.map(|v| (v, ev.log_z_ais_se)),
        "log_z_mae" => e.log_z_batches.as_ref().map(|b| (b.flow.mean_abs_error, Some(b.flow.se))),
        "log_z_mae_ais" => {
            e.log_z_batches.as_ref().and_then(|b| b.ais.as_ref()).map(|a| (a.mean_abs_error, Some(a.se)))
        }
        m => match m.split_once(':') {
            Some(("bias", name)) => bias(name, false).map(|s| (s.bias, None)),
            Some(("bias_ais", name)) => bias(name, true).map(|s| (s.bias, None)),
            _ => None,
        },
    }
}

/// Whether ours beats the published figure: "yes", "no", or for `closer`, whether the two
/// agree within three combined standard errors.
fn verdict(f: &Figure, ours: f64, se: Option<f64>) -> &'static str {
    match f.better {
        Better::Higher if ours >= f.value => "yes",
        Better::Lower if ours <= f.value => "yes",
        Better::Higher | Better::Lower => "no",
        Better::Closer => {
            let err = (f.error.powi(2) + se.unwrap_or(0.0).powi(2)).sqrt();
            if (ours - f.value).abs() <= 3.0 * err { "agrees" } else { "differs" }
        }
    }
}

/// A figure in the form its metric is read: percentages for ESS and biases.
fn show(metric: &str, v: f64, se: Option<f64>) -> String {
    let pct = metric.starts_with("ess") || metric.starts_with("bias");
    let digits = if metric.starts_with("log_z_mae") { 5 } else { 4 };
    match (pct, se) {
        (true, _) => format!("{:.1} %", 100.0 * v),
        (false, Some(s)) => format!("{v:.digits$} +- {s:.digits$}"),
        (false, None) => format!("{v:.digits$}"),
    }
}

/// The markdown comparison table: one row per published figure of every outcome.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| entry | run | figure | bootflow | published | ours at least as good | source |\n|---|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        let run = match o.plan {
            Plan::Full => format!("full, {:.1} min", o.seconds / 60.0),
            Plan::Cut(m) => format!("CUT to {m:.2} of {:.1} min: not comparable", o.entry.minutes),
        };
        for f in &o.entry.figures {
            let (ours, good) = match our_value(&f.metric, &o.estimate) {
                Some((v, se)) => (show(&f.metric, v, se), verdict(f, v, se)),
                None => ("not computed".into(), "-"),
            };
            let good = if matches!(o.plan, Plan::Cut(_)) { "-" } else { good };
            out += &format!(
                "| {} | {run} | {} | {ours} | {} | {good} | {} |\n",
                o.entry.name, f.metric, f.shown, f.source
            );
        }
    }
    out
}

/// Writes the table into `dir` as [`TABLE_FILE`].
pub fn write_table(dir: &Path, table: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join(TABLE_FILE), table).with_context(|| format!("writing {TABLE_FILE} in {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_parses_and_its_config_is_embedded() {
        let all = entries().unwrap();
        assert!(all.len() >= 8);
        let mut names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "entry names are unique");
        for e in &all {
            RunSpec::from_toml_str(e.config_text().unwrap(), &[]).unwrap_or_else(|err| panic!("{}: {err}", e.name));
            assert!(e.minutes > 0.0 && !e.figures.is_empty(), "{}", e.name);
        }
        let embedded: Vec<&str> = CONFIGS.iter().map(|c| c.0).collect();
        assert!(embedded.iter().all(|c| all.iter().any(|e| e.config == *c)), "an embedded config no entry uses");
    }

    #[test]
    fn unknown_names_are_refused_with_the_known_ones() {
        let msg = select(&["gmm6".into()]).unwrap_err().to_string();
        assert!(msg.contains("no entry 'gmm6'") && msg.contains("gmm5, gmm40"), "{msg}");
        assert_eq!(select(&["funnel".into(), "gmm5".into()]).unwrap().len(), 2);
    }

    fn entry(name: &str, minutes: f64) -> Entry {
        Entry {
            name: name.into(),
            what: String::new(),
            config: String::new(),
            minutes,
            samples: 100_000,
            log_z_batches: None,
            figures: vec![],
        }
    }

    #[test]
    fn the_budget_runs_short_entries_in_full_and_shares_the_rest() {
        let e = [entry("long", 60.0), entry("short", 3.0), entry("mid", 10.0)];
        assert_eq!(plan(&e, None), vec![Plan::Full; 3]);
        assert_eq!(plan(&e, Some(100.0)), vec![Plan::Full; 3]);
        // 3 and 10 fit in 20; 60 gets the 7 left.
        assert_eq!(plan(&e, Some(20.0)), vec![Plan::Cut(7.0), Plan::Full, Plan::Full]);
        // 3 fits in 10; 10 does not fit in 7: both remaining share it.
        assert_eq!(plan(&e, Some(10.0)), vec![Plan::Cut(3.5), Plan::Full, Plan::Cut(3.5)]);
        let tiny = plan(&e, Some(0.03));
        assert!(tiny.iter().all(|p| matches!(p, Plan::Cut(m) if (*m - 0.01).abs() < 1e-12)), "{tiny:?}");
    }

    #[test]
    fn cutting_scales_training_time_and_the_buffer_fill() {
        let all = entries().unwrap();
        let mw = all.iter().find(|e| e.name == "manywell32").unwrap();
        let spec = RunSpec::from_toml_str(mw.config_text().unwrap(), &[]).unwrap();
        assert!(cut_sets(mw, &spec, Plan::Full).is_empty());
        let sets = cut_sets(mw, &spec, Plan::Cut(mw.minutes / 10.0));
        assert_eq!(sets[0], format!("train.max_seconds={:?}", mw.minutes * 6.0 * TRAIN_SHARE));
        let min = spec.table.pointer("/objective/buffer/min").unwrap().as_u64().unwrap();
        assert_eq!(sets[1], format!("objective.buffer.min={}", min / 10));
        // Cut runs still parse.
        RunSpec::from_toml_str(mw.config_text().unwrap(), &sets).unwrap();
    }
}
