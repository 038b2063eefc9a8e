//! `flow.init`: before the first step, a Gaussian `N(m, S)` is fitted to the target and a
//! [`CholeskyAffine`] layer `x = L y + m` (`L L^T = S`) goes at the data end of the flow, so the
//! layers before it work on standardised coordinates and a spline's bounds need no hand tuning.
//!
//! - `laplace`: the modes `bootflow optimize` finds, each with the Laplace covariance (minus the
//!   inverse Hessian); several modes are moment-matched as a mixture weighted by each mode's
//!   Laplace evidence `p~(mode) sqrt(det S_k)`.
//! - `warmup`: the mean and covariance of a short NUTS run (the hmc plugin's kernel, with its
//!   own mass adaptation), regularised towards a small multiple of the identity as Stan does.
//! - absent: `laplace` where the target has a gradient and the search finds one mode (none where
//!   it finds several), falling back to `warmup` when the target has no mode with a
//!   negative-definite Hessian (an unbounded density such as a centred hierarchical model's
//!   funnel); `none` without a gradient, above 1024 dimensions, and for flows with lattice layers
//!   (checkerboard masks, conv conditioners), whose site layout a dense map would mix. When
//!   neither fit succeeds the default fits nothing and says why.
//!
//! The resolved layer replaces `init` in the spec the run records, so a checkpoint rebuilds
//! the same flow and a resumed run does not fit again. Its `note` says what was chosen.

use nalgebra::DMatrix;
use serde_json::json;

use crate::Batch;
use crate::error::{Error, Result, ResultExt};
use crate::flow::cholesky::CholeskyAffine;
use crate::mcmc::chains::{ChainConfig, run_chains};
use crate::model::target::{Target, TargetDensity};
use crate::registry::{FlowInit, FlowSpec, Registry};
use crate::rng;
use crate::run::laplace::Laplace;
use crate::run::optimize::{OptimizeConfig, find_modes};
use crate::run::progress::Quiet;

/// Chains, warm-up and kept transitions of the `warmup` fit: 250 warm-up transitions end where
/// a mass-adaptation window does (75 + 25 + 50 + 100).
const WARMUP_CHAINS: usize = 8;
const WARMUP_STEPS: usize = 250;
const WARMUP_DRAWS: usize = 250;
/// Above this dimension the default fits nothing (a `d x d` factor, `d^2 / 2` parameters).
const DEFAULT_MAX_DIM: usize = 1024;
/// Mixed into the run seed for the fit's own streams (the mode search's starts, the NUTS chains).
const INIT_SEED: u64 = 0x696e_6974;

/// A flow spec with its `init` resolved.
pub struct Initialised {
    /// The spec to build and record: `init` cleared, the fitted layer (if any) appended.
    pub spec: FlowSpec,
    /// What was chosen, for the run's output (`None` when nothing was fitted).
    pub note: Option<String>,
}

/// Resolves `flow.init` for a fresh run on `target`: fits `N(m, S)` and appends the
/// `cholesky` layer `x = L y + m` (`L L^T = S`) at the data end of the flow. `laplace` fits the
/// modes L-BFGS finds (moment-matched over several), `warmup` the draws of a short NUTS run
/// (needs the hmc plugin's `nuts` kernel in `registry`), `none` nothing. Absent: `laplace` where
/// the target has a gradient and one mode, then `warmup` where it has no mode, and nothing on
/// several modes, without a gradient, above 1024 dimensions, for lattice layers, or when
/// neither fit succeeds. The
/// returned spec has `init` cleared; its note says what was chosen.
pub fn initialise(registry: &Registry, target: &dyn Target, spec: &FlowSpec, seed: u64) -> Result<Initialised> {
    let out = FlowSpec { init: None, ..spec.clone() };
    let seed = seed ^ INIT_SEED;
    let fit = match spec.init {
        Some(FlowInit::None) => return Ok(Initialised { spec: out, note: None }),
        Some(FlowInit::Laplace) => laplace_fit(target, seed).context("flow.init = \"laplace\"")?,
        Some(FlowInit::Warmup) => warmup_fit(registry, target, seed).context("flow.init = \"warmup\"")?,
        None => {
            if let Some(why) = default_is_none(target, spec) {
                return Ok(Initialised { spec: out, note: Some(format!("none ({why})")) });
            }
            match laplace_fit(target, seed) {
                // One Gaussian moment-matched over several modes mis-scales a multimodal flow
                // (Many Well 16-D, FAB, 200 steps: flow ESS 0.0004 against 0.07 without it).
                Ok(f) if f.modes > 1 => {
                    let note = format!(
                        "none (the default on a target with several modes: {} found; give init = \"laplace\" to moment-match them)",
                        f.modes
                    );
                    return Ok(Initialised { spec: out, note: Some(note) });
                }
                Ok(f) => f,
                Err(why) => match warmup_fit(registry, target, seed) {
                    Ok(mut f) => {
                        f.note = format!("{} (the default laplace found no Gaussian: {why})", f.note);
                        f
                    }
                    // The default never stops a run the flow alone could make: it says why it fitted nothing.
                    Err(nuts) => {
                        let note = format!("none (the default found no Gaussian: laplace: {why}; warmup: {nuts})");
                        return Ok(Initialised { spec: out, note: Some(note) });
                    }
                },
            }
        }
    };
    let mut out = out;
    out.layers.push(fit.layer()?.to_config(&fit.note));
    Ok(Initialised { spec: out, note: Some(fit.note) })
}

/// Why the default fits nothing for this target and flow, if it does not.
fn default_is_none(target: &dyn Target, spec: &FlowSpec) -> Option<String> {
    if !target.has_grad() {
        return Some("the default: the target has no gradient".into());
    }
    if target.dim() > DEFAULT_MAX_DIM {
        return Some(format!("the default above {DEFAULT_MAX_DIM} dimensions: give flow.init to fit one"));
    }
    let lattice = spec.layers.iter().any(|l| {
        l.get("mask").and_then(serde_json::Value::as_str) == Some("checkerboard")
            || l.get("conditioner").and_then(serde_json::Value::as_str) == Some("conv")
    });
    lattice.then(|| "the default for lattice layers, whose site layout a dense affine map would mix".into())
}

/// A Gaussian fitted to the target, and how.
struct Fit {
    mean: Vec<f64>,
    covariance: DMatrix<f64>,
    note: String,
    /// Modes the Gaussian was matched over (1 for `warmup`).
    modes: usize,
}

impl Fit {
    /// The mean and covariance of the draws (columns of `x`), the covariance regularised as
    /// Stan regularises its metric: `(n / (n + 5)) C + 1e-3 (5 / (n + 5)) I`.
    fn of_draws(x: &Batch, note: String) -> Self {
        let (d, n) = (x.nrows(), x.ncols() as f64);
        let mean = x.column_mean();
        let centred = x - &mean * nalgebra::RowDVector::from_element(x.ncols(), 1.0);
        let shrink = n / (n + 5.0);
        let covariance =
            (&centred * centred.transpose()) * (shrink / (n - 1.0)) + DMatrix::identity(d, d) * (1e-3 * (1.0 - shrink));
        Fit { mean: mean.iter().copied().collect(), covariance, note, modes: 1 }
    }

    fn layer(&self) -> Result<CholeskyAffine> {
        let chol = nalgebra::Cholesky::new(self.covariance.clone()).ok_or_else(|| {
            Error::NonFinite(format!("{}: the fitted covariance is not positive definite", self.note))
        })?;
        CholeskyAffine::new(chol.l(), self.mean.clone())
    }
}

/// The Laplace fit over the modes found (see the module docs).
fn laplace_fit(target: &dyn Target, seed: u64) -> Result<Fit> {
    crate::run::budget::check_hessian(target.dim())?;
    let search = OptimizeConfig { seed, ..Default::default() };
    let found = find_modes(target, &search, &Quiet)?;
    let mut parts = Vec::new();
    let mut refused = None;
    for m in &found.modes {
        match Laplace::at(target, m.x.clone(), m.log_p) {
            Ok(l) => parts.push(l),
            Err(e) => refused = Some(e),
        }
    }
    if parts.is_empty() {
        return Err(match (refused, found.failed.first()) {
            (Some(e), _) => e,
            (None, Some(f)) => Error::Other(format!("no start of {} reached a mode: {}", found.starts, f.why)),
            (None, None) => Error::Bug("the mode search returned nothing".into()),
        });
    }
    let log_evidence: Vec<f64> = parts.iter().map(|l| l.log_p_mode + 0.5 * l.log_det_covariance()).collect();
    let top = log_evidence.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_evidence.iter().map(|e| (e - top).exp()).collect();
    let total: f64 = w.iter().sum();
    let d = target.dim();
    let mut mean = vec![0.0; d];
    for (l, wk) in parts.iter().zip(&w) {
        mean.iter_mut().zip(&l.mode).for_each(|(m, x)| *m += wk / total * x);
    }
    let mut covariance = DMatrix::zeros(d, d);
    for (l, wk) in parts.iter().zip(&w) {
        let dev = nalgebra::DVector::from_iterator(d, l.mode.iter().zip(&mean).map(|(x, m)| x - m));
        covariance += (l.covariance()? + &dev * dev.transpose()) * (wk / total);
    }
    let note = if parts.len() == 1 {
        format!("laplace at the mode (log p~ = {:.4}) found from {} starts", parts[0].log_p_mode, found.starts)
    } else {
        format!("laplace, moment-matched over {} modes found from {} starts", parts.len(), found.starts)
    };
    Ok(Fit { mean, covariance, note, modes: parts.len() })
}

/// The config of the `cholesky` layer at the regularised mean and covariance of the draws
/// (columns of `x`), with `note` saying where they came from.
pub(crate) fn draws_layer(x: &Batch, note: &str) -> Result<serde_json::Value> {
    let fit = Fit::of_draws(x, note.to_string());
    Ok(fit.layer()?.to_config(&fit.note))
}

/// The fit to a short NUTS run (see the module docs).
fn warmup_fit(registry: &Registry, target: &dyn Target, seed: u64) -> Result<Fit> {
    if !target.has_grad() {
        return Err(Error::Unsupported("NUTS needs the target's gradient, which this target does not provide".into()));
    }
    let d = target.dim();
    crate::run::budget::check_hessian(d)?;
    let mut kernel = registry.kernel("nuts", d, &json!({})).context(
        "the warm-up runs NUTS, the hmc plugin's kernel (load it with --plugin or from the plugin directory)",
    )?;
    let cfg = ChainConfig { n_chains: WARMUP_CHAINS, n_warmup: WARMUP_STEPS, n_draws: WARMUP_DRAWS, init_scale: 1.0 };
    let mut draws = Batch::zeros(d, WARMUP_CHAINS * WARMUP_DRAWS);
    let density = TargetDensity(target);
    run_chains(kernel.as_mut(), &density, &cfg, None, &mut rng::stream(seed, 0), |draw| {
        draws.columns_mut(draw.index * WARMUP_CHAINS, WARMUP_CHAINS).copy_from(&draw.state.x);
        Ok(())
    })?;
    let note = format!("warmup: mean and covariance of {WARMUP_CHAINS} NUTS chains x {WARMUP_DRAWS} draws");
    Ok(Fit::of_draws(&draws, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::bijection::Bijection;
    use crate::registry::parse_config;
    use crate::train::test_support::Gaussian;

    /// `N(m, S)` with `S = C C^T`, `C = [[2, 0], [1.5, 0.5]]` (correlation 0.95), or an equal
    /// mixture of it and its mirror image `N(-m, S)` when `mirrored`.
    struct Correlated {
        mirrored: bool,
    }
    const M: [f64; 2] = [4.0, -1.0];
    const C: [[f64; 2]; 2] = [[2.0, 0.0], [1.5, 0.5]];

    fn gaussian_log_p(x: &[f64], m: [f64; 2], grad: &mut [f64]) -> f64 {
        // y = C^-1 (x - m); grad = -C^-T y.
        let y0 = (x[0] - m[0]) / C[0][0];
        let y1 = (x[1] - m[1] - C[1][0] * y0) / C[1][1];
        let v1 = y1 / C[1][1];
        grad[0] = -(y0 - C[1][0] * v1) / C[0][0];
        grad[1] = -v1;
        -0.5 * (y0 * y0 + y1 * y1)
    }

    impl Target for Correlated {
        fn dim(&self) -> usize {
            2
        }
        fn log_prob(&self, x: &[f64]) -> Result<f64> {
            self.log_prob_grad(x, &mut [0.0; 2])
        }
        fn has_grad(&self) -> bool {
            true
        }
        fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
            let a = gaussian_log_p(x, M, grad);
            if !self.mirrored {
                return Ok(a);
            }
            let mut gb = [0.0; 2];
            let b = gaussian_log_p(x, [-M[0], -M[1]], &mut gb);
            let top = a.max(b);
            let (wa, wb) = ((a - top).exp(), (b - top).exp());
            for i in 0..2 {
                grad[i] = (wa * grad[i] + wb * gb[i]) / (wa + wb);
            }
            Ok(top + (wa + wb).ln())
        }
    }

    fn identity_flow() -> FlowSpec {
        parse_config("flow", &json!({"layers": [{"type": "affine"}]})).unwrap()
    }

    #[test]
    fn the_test_target_has_the_gradient_of_its_density() {
        let t = Correlated { mirrored: true };
        for x in [[0.3, -0.2], [4.5, -0.5], [-3.0, 2.0]] {
            let mut g = [0.0; 2];
            t.log_prob_grad(&x, &mut g).unwrap();
            for i in 0..2 {
                let (mut hi, mut lo) = (x, x);
                hi[i] += 1e-6;
                lo[i] -= 1e-6;
                let fd = (t.log_prob(&hi).unwrap() - t.log_prob(&lo).unwrap()) / 2e-6;
                assert!((fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()), "at {x:?}: {fd} vs {}", g[i]);
            }
        }
    }

    /// The default on a Gaussian target fits it exactly: the flow is the target.
    #[test]
    fn laplace_makes_the_flow_the_target_gaussian() {
        let reg = Registry::with_builtins();
        let t = Correlated { mirrored: false };
        let init = initialise(&reg, &t, &identity_flow(), 3).unwrap();
        assert!(init.note.as_deref().unwrap().starts_with("laplace at the mode"), "{:?}", init.note);
        assert_eq!(init.spec.layers.len(), 2);
        assert_eq!(init.spec.init, None);
        let flow = reg.flow(2, &init.spec, 3).unwrap();
        let (x, log_q) = flow.sample_with_log_q(200, &mut rng::stream(1, 0)).unwrap();
        let log_z = (C[0][0] * C[1][1]).ln() + (2.0 * std::f64::consts::PI).ln();
        for (j, lq) in log_q.iter().enumerate() {
            let lp = t.log_prob(x.column(j).as_slice()).unwrap();
            assert!((lp - lq - log_z).abs() < 1e-6, "draw {j}: log p~ - log q = {}, log Z = {log_z}", lp - lq);
        }
    }

    /// Two mirrored modes: the Gaussian of their equal mixture's mean and covariance.
    #[test]
    fn several_modes_are_moment_matched() {
        let reg = Registry::with_builtins();
        let spec = FlowSpec { init: Some(FlowInit::Laplace), ..identity_flow() };
        let init = initialise(&reg, &Correlated { mirrored: true }, &spec, 0).unwrap();
        assert!(init.note.as_deref().unwrap().contains("over 2 modes"), "{:?}", init.note);
        // The default fits nothing there: one Gaussian over several modes mis-scales a flow.
        let default = initialise(&reg, &Correlated { mirrored: true }, &identity_flow(), 0).unwrap();
        assert_eq!(default.spec.layers.len(), 1);
        assert!(default.note.as_deref().unwrap().contains("several modes: 2 found"), "{:?}", default.note);
        let mut cfg = init.spec.layers[1].clone();
        assert_eq!(cfg.as_object_mut().unwrap().remove("type"), Some(json!("cholesky")));
        let layer = CholeskyAffine::from_config(2, &cfg).unwrap();
        let p = layer.params();
        // Mean 0; covariance S + m m^T.
        let s: [[f64; 2]; 2] = [[4.0 + 16.0, 3.0 - 4.0], [3.0 - 4.0, 2.5 + 1.0]];
        let l00 = s[0][0].sqrt();
        let l10 = s[1][0] / l00;
        let l11 = (s[1][1] - l10 * l10).sqrt();
        let expected = [l00.ln(), l11.ln(), l10, 0.0, 0.0];
        for (got, want) in p.iter().zip(expected) {
            assert!((got - want).abs() < 1e-4, "{p:?} vs {expected:?}");
        }
    }

    #[test]
    fn the_default_fits_nothing_without_a_gradient_or_on_a_lattice() {
        struct NoGrad;
        impl Target for NoGrad {
            fn dim(&self) -> usize {
                2
            }
            fn log_prob(&self, x: &[f64]) -> Result<f64> {
                Ok(-0.5 * x[0] * x[0] - 0.5 * x[1] * x[1])
            }
        }
        let reg = Registry::with_builtins();
        let init = initialise(&reg, &NoGrad, &identity_flow(), 0).unwrap();
        assert_eq!(init.spec, identity_flow());
        assert!(init.note.unwrap().contains("no gradient"));
        let lattice: FlowSpec =
            parse_config("flow", &json!({"layers": [{"type": "affine", "mask": "checkerboard"}]})).unwrap();
        let g = Gaussian { mu: vec![0.0; 2], sigma: vec![1.0; 2] };
        let init = initialise(&reg, &g, &lattice, 0).unwrap();
        assert_eq!(init.spec.layers.len(), 1);
        assert!(init.note.unwrap().contains("lattice"));
        let none = FlowSpec { init: Some(FlowInit::None), ..identity_flow() };
        let init = initialise(&reg, &g, &none, 0).unwrap();
        assert_eq!((init.spec.layers.len(), init.note), (1, None));
    }

    /// Asked for, `warmup` needs NUTS, which core alone does not have: a clear error.
    #[test]
    fn warmup_without_the_hmc_plugin_says_where_nuts_comes_from() {
        let reg = Registry::with_builtins();
        let spec = FlowSpec { init: Some(FlowInit::Warmup), ..identity_flow() };
        let e = initialise(&reg, &Correlated { mirrored: false }, &spec, 0).err().unwrap();
        let mut e: (String, Option<&dyn std::error::Error>) = (e.to_string(), std::error::Error::source(&e));
        while let Some(inner) = e.1 {
            e = (format!("{}: {inner}", e.0), inner.source());
        }
        let e = e.0;
        assert!(e.contains("flow.init = \"warmup\"") && e.contains("hmc plugin"), "{e}");
    }
}
