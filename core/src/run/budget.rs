//! Memory budgets: what a command will need, estimated from its sizes before anything is
//! allocated, against a budget (by default half of physical memory; front ends let the user set
//! it, `--max-memory` in the CLI). A size past the budget is refused with the key or flag that
//! asks for most of it, instead of the machine swapping or the kernel's OOM killer ending the
//! process. The estimates are upper bounds of the big buffers (activations with their tapes,
//! parameters with Adam's moments, replay buffer, kept draws), not exact counts.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::registry::FlowSpec;
use crate::train::config::Component;

/// 0: not set, use [`default_budget`].
static MAX_MEMORY: AtomicU64 = AtomicU64::new(0);

/// Physical memory used when it cannot be read (`/proc/meminfo` is Linux's).
const FALLBACK_PHYSICAL: u64 = 8 << 30;

/// Sets the process's memory budget in bytes (the CLI's `--max-memory`).
pub fn set_max_memory(bytes: u64) {
    MAX_MEMORY.store(bytes, Ordering::Relaxed);
}

/// Half of physical memory.
pub fn default_budget() -> u64 {
    physical_memory().unwrap_or(FALLBACK_PHYSICAL) / 2
}

fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The budget in force and how it was set.
pub fn budget() -> (u64, &'static str) {
    match MAX_MEMORY.load(Ordering::Relaxed) {
        0 => (default_budget(), "half of physical memory; --max-memory changes it"),
        b => (b, "set by --max-memory"),
    }
}

/// Parses a size such as `512M`, `8G`, `1.5GiB` or a plain byte count.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.trim().parse().map_err(|_| format!("'{text}' is not a size (e.g. 512M, 8G)"))?;
    let scale: u64 = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("'{text}': unknown unit '{unit}' (use K, M, G or T)")),
    };
    let bytes = value * scale as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("'{text}' is not a positive size"));
    }
    Ok(bytes as u64)
}

/// Bytes as `1.5 GiB`.
pub fn show_bytes(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{v:.0} B") } else { format!("{v:.1} {}", units[u]) }
}

/// What a command needs, as terms each charged to the key or flag that sets its size.
#[derive(Default)]
pub struct Need {
    terms: Vec<(String, f64)>,
}

impl Need {
    /// Adds `bytes` charged to `key`.
    pub fn add(&mut self, key: &str, bytes: f64) {
        self.terms.push((key.to_string(), bytes));
    }

    /// Total bytes.
    pub fn total(&self) -> f64 {
        self.terms.iter().map(|t| t.1).sum()
    }

    /// Refuses a need past the budget, naming the key to lower.
    pub fn check(&self, what: &str) -> Result<()> {
        let (limit, how) = budget();
        let total = self.total();
        if total <= limit as f64 {
            return Ok(());
        }
        // A term past the budget alone is the one to lower (a network too wide for any batch);
        // otherwise the largest.
        let key = match self.terms.iter().find(|t| t.1 > limit as f64) {
            Some((key, _)) => key,
            None => &self.terms.iter().max_by(|a, b| a.1.total_cmp(&b.1)).expect("a need over the budget has terms").0,
        };
        Err(Error::Other(format!(
            "{key}: {what} would need about {} of memory, over the budget of {} ({how}); lower {key}",
            show_bytes(total),
            show_bytes(limit as f64)
        )))
    }
}

const F64: f64 = 8.0;

/// A whole number of a JSON table, as f64 (absent: `default`).
fn number(v: &Value, key: &str, default: f64) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(default)
}

/// Parameters and per-point activations of each of a flow's layers on `dim` coordinates, from
/// their tables, with the key to name for it (`flow.layers[2] (hidden, couplings)`): every layer
/// with `hidden` widths has a network per coupling or block (`couplings`, `blocks`), from `dim`
/// inputs through the widths to up to `dim * (3 bins + 2)` outputs (a spline's); `channels`
/// count as widths of `dim` sites each.
fn layer_sizes(dim: f64, flow: &FlowSpec) -> Vec<(String, f64, f64)> {
    let mut out = Vec::new();
    for (i, layer) in flow.layers.iter().enumerate() {
        let (mut params, mut per_point) = (dim, dim);
        if layer.get("type").and_then(Value::as_str) == Some("cholesky") {
            params = dim * (dim + 3.0) / 2.0;
        }
        let count = number(layer, "couplings", number(layer, "blocks", 1.0)).max(1.0);
        let widths = |key: &str| -> Vec<f64> {
            layer
                .get(key)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        let out_width = dim * (3.0 * number(layer, "bins", 0.0) + 2.0);
        // Conditioned layers without `hidden` get their factory's default widths (64 x 64 or
        // less), which this bound covers.
        let conditioned =
            matches!(layer.get("type").and_then(Value::as_str), Some("realnvp" | "spline" | "maf" | "iaf"));
        let hidden = match widths("hidden") {
            h if h.is_empty() && conditioned => vec![64.0, 64.0],
            h => h,
        };
        if !hidden.is_empty() {
            let mut chain = vec![dim];
            chain.extend(&hidden);
            chain.push(out_width);
            params += count * chain.windows(2).map(|w| (w[0] + 1.0) * w[1]).sum::<f64>();
            per_point += count * chain.iter().sum::<f64>();
        }
        let channels = widths("channels");
        if !channels.is_empty() {
            let k = number(layer, "kernel", 3.0).powi(2);
            let mut chain = vec![1.0];
            chain.extend(&channels);
            chain.push(2.0);
            params += count * chain.windows(2).map(|w| (k * w[0] + 1.0) * w[1]).sum::<f64>();
            // im2col holds each input channel times the kernel size per site.
            per_point += count * dim * chain.iter().map(|c| c * (k + 1.0)).sum::<f64>();
        }
        let keys: Vec<&str> = ["hidden", "channels", "couplings", "blocks", "bins"]
            .into_iter()
            .filter(|k| layer.get(*k).is_some())
            .collect();
        let key = if keys.is_empty() {
            format!("flow.layers[{i}]")
        } else {
            format!("flow.layers[{i}] ({})", keys.join(", "))
        };
        out.push((key, params, per_point));
    }
    out
}

/// Total parameters and per-point activations of a flow.
fn flow_sizes(dim: f64, flow: &FlowSpec) -> (f64, f64) {
    layer_sizes(dim, flow).iter().fold((0.0, 0.0), |(p, a), l| (p + l.1, a + l.2))
}

/// Refuses a dimension whose vectors alone (a few dozen per point: positions, gradients, means,
/// scales) would not fit the budget; `what` names where it came from.
pub fn check_dimension(what: &str, dim: f64) -> Result<()> {
    let mut need = Need::default();
    need.add(what, F64 * 64.0 * dim);
    need.check(&format!("{what} = {dim}"))
}

/// Refuses a dimension whose Hessian (with its Cholesky factor and a copy) would not fit the
/// budget (`--method laplace`).
pub fn check_hessian(dim: usize) -> Result<()> {
    let mut need = Need::default();
    need.add("the target's dimension (its Hessian)", F64 * 3.0 * (dim as f64).powi(2));
    need.check(&format!("--method laplace in {dim} dimensions"))
}

/// Adam's moments, the gradient and a copy of the parameters, beside the parameters.
const PARAM_COPIES: f64 = 5.0;
/// Activations, their tape for the backward pass and the cotangents.
const ACTIVATION_COPIES: f64 = 4.0;
/// A forward pass without a tape (evaluation): its activations and the log-det terms.
const FORWARD_COPIES: f64 = 2.0;
/// One MCMC kernel per AIS step (its tuned state and scratch).
const KERNEL_BYTES: f64 = 4096.0;

/// The memory a training run of `objective` with `flow` on `dim` coordinates needs, and
/// `eval_samples` points per evaluation, checked against the budget.
pub fn check_training(dim: usize, flow: &FlowSpec, objective: &Component, eval_samples: usize) -> Result<()> {
    let dim = dim as f64;
    let o = Value::Object(objective.params.clone());
    let per_point = flow_sizes(dim, flow).1;
    let mut need = Need::default();
    for (key, params, _) in layer_sizes(dim, flow) {
        need.add(&key, F64 * PARAM_COPIES * params);
    }
    let batch = number(&o, "batch", 256.0);
    need.add("objective.batch", F64 * ACTIVATION_COPIES * batch * (per_point + 4.0 * dim));
    let steps = number(&o, "n_intermediate", 0.0);
    need.add("objective.n_intermediate", KERNEL_BYTES * steps);
    if let Some(b) = o.get("buffer") {
        need.add("objective.buffer.size", F64 * number(b, "size", 512_000.0) * (dim + 3.0));
        let draws = number(b, "batch", batch);
        need.add("objective.buffer.batch", F64 * ACTIVATION_COPIES * draws * (per_point + 2.0 * dim));
    }
    // Evaluations draw in chunks of at most 10,000 but keep every weight and exact sample.
    let eval = eval_samples as f64;
    need.add("train.eval_samples", F64 * (eval * (dim + 4.0) + eval.min(10_000.0) * FORWARD_COPIES * per_point));
    need.check("training")
}

/// Names of the flags (CLI) or keys (run configs) that set sampling and evaluation sizes.
#[derive(Clone, Copy)]
pub struct SizeNames {
    /// Chains.
    pub chains: &'static str,
    /// Kept draws per chain.
    pub draws: &'static str,
    /// Evaluation samples.
    pub samples: &'static str,
    /// AIS steps.
    pub ais_steps: &'static str,
}

/// The CLI's flags.
pub const FLAGS: SizeNames =
    SizeNames { chains: "--chains", draws: "--draws", samples: "--samples", ais_steps: "--ais-steps" };

/// The `[sample]` and `[evaluate]` keys of a `bootflow run` config (AIS steps of the two share a
/// name here: `sample.ais_steps` for chains, `evaluate.ais` for the evaluation).
pub const RUN_KEYS: SizeNames = SizeNames {
    chains: "sample.chains",
    draws: "sample.draws",
    samples: "evaluate.samples",
    ais_steps: "sample.ais_steps",
};

/// The memory an evaluation of `samples` flow (and exact target) samples needs with `flow` and
/// `ais_steps` AIS steps.
pub fn check_evaluation(names: SizeNames, dim: usize, flow: &FlowSpec, samples: usize, ais_steps: usize) -> Result<()> {
    let dim = dim as f64;
    let (params, per_point) = flow_sizes(dim, flow);
    let n = samples as f64;
    let mut need = Need::default();
    need.add("flow.layers", F64 * params);
    need.add(names.samples, F64 * (n * (dim + 4.0) + n.min(10_000.0) * FORWARD_COPIES * per_point));
    need.add(names.ais_steps, KERNEL_BYTES * ais_steps as f64);
    need.check("the evaluation")
}

/// The memory `chains` chains of `draws` kept draws with `columns` values each need (the draws
/// are kept for the summary), plus `ais_steps` AIS kernels.
pub fn check_sampling(names: SizeNames, chains: usize, draws: usize, columns: usize, ais_steps: usize) -> Result<()> {
    let mut need = Need::default();
    let (c, d) = (chains as f64, draws as f64);
    // Each draw's values, and the ranks and sorted copies of a quantity the diagnostics build.
    need.add(names.chains, c * 64.0 * 1024.0);
    need.add(names.draws, F64 * c * d * (columns as f64 + 3.0));
    need.add(names.ais_steps, KERNEL_BYTES * ais_steps as f64);
    need.check("sampling")
}

/// Refuses more chain files than the process may open at once (each chain writes its own file).
pub fn check_open_files(name: &str, chains: usize) -> Result<()> {
    let Some(limit) = open_file_limit() else { return Ok(()) };
    // Standard streams, plugin libraries and the summary need some of the limit.
    let usable = limit.saturating_sub(64);
    if chains as u64 > usable {
        return Err(Error::Other(format!(
            "{name} = {chains}: each chain writes its own file, and this process may open only {limit} files \
             (ulimit -n); use at most {usable} chains"
        )));
    }
    Ok(())
}

fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::parse_config;
    use serde_json::json;

    #[test]
    fn sizes_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("8G").unwrap(), 8 << 30);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("2 kb").unwrap(), 2048);
        for bad in ["", "G", "-1G", "1X", "nanG", "0"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(show_bytes(3.0 * (1u64 << 30) as f64), "3.0 GiB");
    }

    fn kl(batch: u64) -> Component {
        let mut c = Component::named("kl");
        c.params.insert("batch".into(), json!(batch));
        c
    }

    #[test]
    fn oversized_keys_are_named_and_shipped_sizes_pass() {
        let flow = |hidden: u64| -> FlowSpec {
            parse_config("flow", &json!({"layers": [{"type": "realnvp", "couplings": 4, "hidden": [hidden, hidden]}]}))
                .unwrap()
        };
        // What the shipped configs ask for fits in 1 GiB.
        set_max_memory(1 << 30);
        check_training(32, &flow(320), &kl(2048), 20_000).unwrap();
        let fab = Component {
            name: "fab".into(),
            params: json!({"batch": 2048, "n_intermediate": 4, "buffer": {"size": 512_000}})
                .as_object()
                .unwrap()
                .clone(),
        };
        check_training(32, &flow(320), &fab, 20_000).unwrap();
        check_sampling(FLAGS, 4, 100_000, 40, 0).unwrap();
        check_evaluation(FLAGS, 256, &flow(128), 100_000, 10).unwrap();

        let msg = |r: Result<()>| r.unwrap_err().to_string();
        assert!(msg(check_training(2, &flow(64), &kl(1_000_000_000), 0)).starts_with("objective.batch: training"));
        let m = msg(check_training(2, &flow(100_000_000), &kl(64), 0));
        assert!(m.starts_with("flow.layers[0] (hidden, couplings): training"), "{m}");
        let mut many = kl(64);
        many.params.insert("n_intermediate".into(), json!(100_000_000u64));
        assert!(msg(check_training(2, &flow(8), &many, 0)).starts_with("objective.n_intermediate: training"));
        let m = msg(check_sampling(FLAGS, 4, 10_000_000_000_000, 3, 0));
        assert!(m.starts_with("--draws: sampling would need about") && m.contains("set by --max-memory"), "{m}");
        assert!(msg(check_evaluation(RUN_KEYS, 2, &flow(8), 100_000, 100_000_000)).starts_with("sample.ais_steps"));
        set_max_memory(0);
        assert!(budget().1.starts_with("half of physical memory"));
    }

    #[test]
    fn more_chains_than_open_files_are_refused() {
        if let Some(limit) = open_file_limit() {
            assert!(check_open_files("--chains", 4).is_ok());
            let err = check_open_files("--chains", limit as usize).unwrap_err().to_string();
            assert!(err.starts_with(&format!("--chains = {limit}: each chain writes its own file")), "{err}");
        }
    }
}
