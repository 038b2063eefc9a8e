//! Statistical tests of the `hmc` kernel: a correlated Gaussian through the chain driver, AIS
//! with HMC transitions, exact resume from the saved state, and divergences.

use bootflow_core::rng::{fill_normal, stream};
use bootflow_core::testing::{fd_gradient, rel_error};
use bootflow_core::{Annealer, Spacing};
use bootflow_core::{Batch, ChainState, Kernel, LogDensity, Registry, Result};
use bootflow_core::{ChainConfig, ChainRun, run_chains};
use nalgebra::{DMatrix, DVector};
use serde_json::json;

use crate::kernel::HMC_STATE_LEN;
use crate::{AdaptMode, Hmc, HmcConfig};

const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// `N(mu, Sigma)` with `Sigma = Q diag(lambda) Q^T`, Q a random rotation and the eigenvalues
/// spread geometrically from 1 to the condition number (40 for [`Correlated::new`]).
pub(crate) struct Correlated {
    mu: DVector<f64>,
    sigma: DMatrix<f64>,
    precision: DMatrix<f64>,
}

impl Correlated {
    pub(crate) fn new(d: usize, seed: u64) -> Self {
        Self::with_condition(d, seed, 40.0)
    }

    pub(crate) fn with_condition(d: usize, seed: u64, condition: f64) -> Self {
        let mut rng = stream(seed, 0);
        let mut a = DMatrix::zeros(d, d);
        fill_normal(&mut rng, a.as_mut_slice());
        let q = a.qr().q();
        let lambda = DVector::from_fn(d, |i, _| condition.powf(i as f64 / (d - 1) as f64));
        let sigma = &q * DMatrix::from_diagonal(&lambda) * q.transpose();
        let precision = &q * DMatrix::from_diagonal(&lambda.map(|l| 1.0 / l)) * q.transpose();
        let mu = DVector::from_fn(d, |i, _| 0.5 * i as f64 - 2.0);
        Self { mu, sigma, precision }
    }

    pub(crate) fn sigma(&self) -> &DMatrix<f64> {
        &self.sigma
    }

    pub(crate) fn diagonal(mu: &[f64], var: &[f64]) -> Self {
        let var = DVector::from_column_slice(var);
        Self {
            mu: DVector::from_column_slice(mu),
            sigma: DMatrix::from_diagonal(&var),
            precision: DMatrix::from_diagonal(&var.map(|v| 1.0 / v)),
        }
    }
}

impl LogDensity for Correlated {
    fn dim(&self) -> usize {
        self.mu.len()
    }
    fn eval(&self, x: &Batch, out: &mut [f64], grad: Option<&mut Batch>) -> Result<()> {
        let mut centred = x.clone();
        for mut c in centred.column_iter_mut() {
            c -= &self.mu;
        }
        let g = -(&self.precision * &centred);
        for (j, o) in out.iter_mut().enumerate() {
            *o = 0.5 * centred.column(j).dot(&g.column(j));
        }
        if let Some(dst) = grad {
            dst.copy_from(&g);
        }
        Ok(())
    }
}

#[test]
fn correlated_gaussian_gradient_matches_central_differences() {
    let t = Correlated::new(10, 1);
    let x: Vec<f64> = (0..10).map(|i| 0.3 * i as f64 - 1.0).collect();
    let mut lp = [0.0];
    let mut g = Batch::zeros(10, 1);
    t.eval(&Batch::from_column_slice(10, 1, &x), &mut lp, Some(&mut g)).unwrap();
    let mut f = |y: &[f64]| {
        let mut o = [0.0];
        t.eval(&Batch::from_column_slice(10, 1, y), &mut o, None).unwrap();
        o[0]
    };
    let fd = fd_gradient(&mut f, &x, &(0..10).collect::<Vec<_>>(), 1e-4);
    assert!(rel_error(g.as_slice(), &fd) < 1e-8);
}

/// Runs `n_chains` chains through the driver and checks every mean and variance of `target`.
/// The chains are independent, so the spread of the per-chain averages estimates the standard
/// error (MCSE) of their mean, autocorrelation included; each moment must lie within 4 MCSE
/// (with 20 comparisons a false failure at 4 sigma has probability about 1e-3).
pub(crate) fn check_moments(
    kernel: &mut dyn Kernel,
    target: &Correlated,
    n_chains: usize,
    n_draws: usize,
    seed: u64,
) -> ChainRun {
    let d = target.mu.len();
    let chain_cfg = ChainConfig { n_chains, n_warmup: 500, n_draws, init_scale: 1.0 };
    // Per chain: sums of x_i and of (x_i - mu_i)^2.
    let mut first = DMatrix::<f64>::zeros(d, n_chains);
    let mut second = DMatrix::<f64>::zeros(d, n_chains);
    let run = run_chains(kernel, target, &chain_cfg, None, &mut stream(seed, 0), |draw| {
        for (j, c) in draw.state.x.column_iter().enumerate() {
            for i in 0..d {
                first[(i, j)] += c[i];
                second[(i, j)] += (c[i] - target.mu[i]).powi(2);
            }
        }
        Ok(())
    })
    .unwrap();
    let within = |sums: &DMatrix<f64>, i: usize, truth: f64, scale: f64, what: &str| {
        let per_chain: Vec<f64> = sums.row(i).iter().map(|s| s / n_draws as f64).collect();
        let k = n_chains as f64;
        let mean = per_chain.iter().sum::<f64>() / k;
        let mcse = (per_chain.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (k - 1.0) / k).sqrt();
        assert!((mean - truth).abs() < 4.0 * mcse, "{what} {i}: {mean} +- {mcse}, truth {truth}");
        // The MCSE must be small against the scale of the moment for the check to have teeth.
        assert!(mcse < 0.05 * scale, "{what} {i}: MCSE {mcse} too large");
    };
    for i in 0..d {
        let var = target.sigma[(i, i)];
        within(&first, i, target.mu[i], var.sqrt(), "mean");
        within(&second, i, var, var, "variance");
    }
    // Early dual-averaging steps (mu = ln(10 eps0)) may diverge; the frozen step must not.
    assert_eq!(kernel.tuning()[1], run.tuning[1], "divergences after warm-up");
    run
}

#[test]
fn samples_a_correlated_gaussian_and_adapts_to_the_target_acceptance() {
    let target = Correlated::new(10, 1);
    let cfg = HmcConfig { step_size: 0.05, jitter: 0.2, target_accept: 0.8, ..HmcConfig::default() };
    let mut kernel = Hmc::new(10, cfg).unwrap();
    let run = check_moments(&mut kernel, &target, 32, 1000, 2);
    // 32 chains x 1000 draws of acceptance probabilities: the mean is known to about 0.002,
    // so 0.05 measures the adaptation, not the noise.
    assert!((run.mean_accept - 0.8).abs() < 0.05, "acceptance {}", run.mean_accept);
    assert!(run.tuning[0].1 > 0.05, "the step should have grown from 0.05: {:?}", run.tuning);
}

/// Scales 0.1, 1 and 10: identity mass limits the step by the narrowest scale (0.1); with the mass
/// set to the precision every direction has unit scale, so the adapted step grows about tenfold.
#[test]
fn a_diagonal_mass_matching_the_precision_allows_a_much_larger_step() {
    let var = [0.01, 1.0, 100.0];
    let target = Correlated::diagonal(&[1.0, -2.0, 3.0], &var);
    let adapted = |mass: Option<Vec<f64>>| {
        let cfg = HmcConfig { n_leapfrog: 5, step_size: 0.05, jitter: 0.3, mass, ..HmcConfig::default() };
        let mut kernel = Hmc::new(3, cfg).unwrap();
        let chain_cfg = ChainConfig { n_chains: 16, n_warmup: 300, n_draws: 1, init_scale: 0.1 };
        run_chains(&mut kernel, &target, &chain_cfg, None, &mut stream(3, 0), |_| Ok(())).unwrap().tuning[0].1
    };
    let (plain, matched) = (adapted(None), adapted(Some(var.iter().map(|v| 1.0 / v).collect())));
    assert!(matched > 5.0 * plain, "steps {matched} vs {plain}");
    let cfg = HmcConfig {
        n_leapfrog: 5,
        jitter: 0.3,
        mass: Some(var.iter().map(|v| 1.0 / v).collect()),
        ..HmcConfig::default()
    };
    check_moments(&mut Hmc::new(3, cfg).unwrap(), &target, 16, 500, 4);
}

/// With `adapt_mass` HMC learns the variances of the previous test's kind of target (over four
/// orders of magnitude) in warm-up, as `nuts` does, and samples it; the kernel resumes bit for bit
/// from its state mid-adaptation.
#[test]
fn hmc_mass_adaptation_learns_the_variances() {
    let d = 12;
    let var: Vec<f64> = (0..d).map(|i| 10f64.powf(-2.0 + 4.0 * i as f64 / (d - 1) as f64)).collect();
    let target = Correlated::diagonal(&vec![0.5; d], &var);
    let cfg = HmcConfig { step_size: 0.01, jitter: 0.3, adapt_mass: true, ..HmcConfig::default() };
    let mut k = Hmc::new(d, cfg.clone()).unwrap();
    check_moments(&mut k, &target, 16, 1000, 41);
    for (i, (learned, truth)) in k.metric().values().iter().zip(&var).enumerate() {
        assert!((learned / truth - 1.0).abs() < 0.3, "coordinate {i}: inverse mass {learned}, variance {truth}");
    }
    assert!(k.step_size() > 0.3, "a learned metric allows steps near the unit scale: {}", k.step_size());

    let mut a = Hmc::new(d, cfg.clone()).unwrap();
    let mut state = ChainState::new(&target, Batch::from_element(d, 4, 0.5), true).unwrap();
    let mut rng = stream(8, 0);
    a.set_adapt(true);
    for _ in 0..120 {
        a.step(&target, &mut state, &mut rng).unwrap();
    }
    let mut b = Hmc::new(d, cfg).unwrap();
    b.set_state(&a.state()).unwrap();
    let (mut sa, mut sb, mut rb) = (state.clone(), state, rng.clone());
    for _ in 0..40 {
        a.step(&target, &mut sa, &mut rng).unwrap();
        b.step(&target, &mut sb, &mut rb).unwrap();
    }
    assert_eq!(sa.x, sb.x);
    assert_eq!(a.state(), b.state());
}

/// Normalised isotropic Gaussian N(0, s^2 I) in 2-D.
struct Broad(f64);
impl LogDensity for Broad {
    fn dim(&self) -> usize {
        2
    }
    fn eval(&self, x: &Batch, out: &mut [f64], grad: Option<&mut Batch>) -> Result<()> {
        let s2 = self.0 * self.0;
        for (o, c) in out.iter_mut().zip(x.column_iter()) {
            *o = -0.5 * c.norm_squared() / s2 - LN_2PI - 2.0 * self.0.ln();
        }
        if let Some(g) = grad {
            g.copy_from(&(x / -s2));
        }
        Ok(())
    }
}

/// Normalised mixture of three unit-variance Gaussians in 2-D.
struct Mixture;
const MEANS: [[f64; 2]; 3] = [[-4.0, 0.0], [3.0, 3.0], [2.0, -5.0]];
const WEIGHTS: [f64; 3] = [0.5, 0.3, 0.2];
impl LogDensity for Mixture {
    fn dim(&self) -> usize {
        2
    }
    fn eval(&self, x: &Batch, out: &mut [f64], mut grad: Option<&mut Batch>) -> Result<()> {
        for (j, c) in x.column_iter().enumerate() {
            let parts: Vec<f64> = MEANS
                .iter()
                .zip(WEIGHTS)
                .map(|(m, w)| w * (-0.5 * ((c[0] - m[0]).powi(2) + (c[1] - m[1]).powi(2)) - LN_2PI).exp())
                .collect();
            let p: f64 = parts.iter().sum();
            out[j] = p.ln();
            if let Some(g) = grad.as_deref_mut() {
                for i in 0..2 {
                    g[(i, j)] = parts.iter().zip(MEANS).map(|(q, m)| q * (m[i] - c[i])).sum::<f64>() / p;
                }
            }
        }
        Ok(())
    }
}

#[test]
fn mixture_gradient_matches_central_differences() {
    for x in [[0.3, -1.2], [2.5, 2.0], [-3.0, 0.7]] {
        let mut lp = [0.0];
        let mut g = Batch::zeros(2, 1);
        Mixture.eval(&Batch::from_column_slice(2, 1, &x), &mut lp, Some(&mut g)).unwrap();
        let mut f = |y: &[f64]| {
            let mut o = [0.0];
            Mixture.eval(&Batch::from_column_slice(2, 1, y), &mut o, None).unwrap();
            o[0]
        };
        assert!(rel_error(g.as_slice(), &fd_gradient(&mut f, &x, &[0, 1], 1e-5)) < 1e-7);
    }
}

fn lse(v: &[f64]) -> f64 {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + v.iter().map(|a| (a - m).exp()).sum::<f64>().ln()
}

/// AIS from N(0, 5^2) to the normalised mixture with one HMC transition per intermediate
/// distribution, the step sizes first tuned by the `simple` rule over 40 small AIS runs and then
/// frozen. log Z = 0 must lie within 3 delta-method standard errors of the estimate.
#[test]
fn ais_with_hmc_transitions_recovers_log_z_of_a_normalised_mixture() {
    let cfg = HmcConfig {
        n_leapfrog: 5,
        step_size: 0.5,
        adapt: AdaptMode::Simple,
        target_accept: 0.65,
        ..HmcConfig::default()
    };
    ais_recovers_log_z(&Hmc::new(2, cfg).unwrap());
}

/// The same with one NUTS transition per intermediate distribution (its step sizes tuned by dual
/// averaging over the 40 runs): NUTS serves inside AIS as well.
#[test]
fn ais_with_nuts_transitions_recovers_log_z_of_a_normalised_mixture() {
    let cfg = crate::NutsConfig { step_size: 0.5, adapt_mass: false, ..crate::NutsConfig::default() };
    ais_recovers_log_z(&crate::Nuts::new(2, cfg).unwrap());
}

fn ais_recovers_log_z(kernel: &dyn Kernel) {
    let mut ais = Annealer::new(kernel, 20, Spacing::Linear).unwrap();
    let mut rng = stream(11, 0);
    let start = Broad(5.0);
    let draw = |n: usize, rng: &mut bootflow_core::Rng| {
        let mut x0 = Batch::zeros(2, n);
        fill_normal(rng, x0.as_mut_slice());
        x0 *= 5.0;
        let mut l0 = vec![0.0; n];
        start.eval(&x0, &mut l0, None).unwrap();
        (x0, l0)
    };
    ais.set_adapt(true);
    for _ in 0..40 {
        let (x0, l0) = draw(64, &mut rng);
        ais.run(&start, &Mixture, x0, &l0, &mut rng).unwrap();
    }
    ais.set_adapt(false);
    let n = 4000;
    let (x0, l0) = draw(n, &mut rng);
    let out = ais.run(&start, &Mixture, x0, &l0, &mut rng).unwrap();
    let log_z = lse(&out.log_w) - (n as f64).ln();
    let ess = (2.0 * lse(&out.log_w) - lse(&out.log_w.iter().map(|w| 2.0 * w).collect::<Vec<_>>())).exp() / n as f64;
    let se = ((1.0 / ess - 1.0) / n as f64).sqrt();
    assert!(log_z.abs() < 3.0 * se, "log Z {log_z} +- {se}");
    assert!(se < 0.05, "annealing should give a precise estimate: ESS {ess}");
    let mean_acc = out.acceptance.iter().sum::<f64>() / out.acceptance.len() as f64;
    assert!(mean_acc > 0.4, "tuned transitions should accept often: {:?}", out.acceptance);
}

#[test]
fn saved_state_resumes_exactly() {
    let target = Correlated::new(4, 3);
    let cfg = HmcConfig { jitter: 0.3, ..HmcConfig::default() };
    let mut a = Hmc::new(4, cfg.clone()).unwrap();
    let mut rng = stream(4, 0);
    let mut x = Batch::zeros(4, 6);
    fill_normal(&mut rng, x.as_mut_slice());
    let mut st = ChainState::new(&target, x, true).unwrap();
    a.set_adapt(true);
    for _ in 0..30 {
        a.step(&target, &mut st, &mut rng).unwrap();
    }
    let mut b = Hmc::new(4, cfg).unwrap();
    b.set_state(&a.state()).unwrap();
    let (mut st_b, mut rng_b) = (st.clone(), rng.clone());
    for _ in 0..20 {
        let sa = a.step(&target, &mut st, &mut rng).unwrap();
        let sb = b.step(&target, &mut st_b, &mut rng_b).unwrap();
        assert_eq!(sa.accept_prob, sb.accept_prob);
    }
    assert_eq!(st.x, st_b.x);
    assert_eq!(a.state(), b.state());
    a.set_adapt(false);
    b.set_adapt(false);
    assert_eq!(a.step_size(), b.step_size());
    assert!(b.set_state(&[1.0, 2.0]).is_err());
}

/// `-inf` beyond `x_0 > 1`, NaN gradient below `x_0 < -3`.
struct Walled;
impl LogDensity for Walled {
    fn dim(&self) -> usize {
        1
    }
    fn eval(&self, x: &Batch, out: &mut [f64], grad: Option<&mut Batch>) -> Result<()> {
        let mut grad = grad;
        for j in 0..x.ncols() {
            let v = x[(0, j)];
            out[j] = if v > 1.0 { f64::NEG_INFINITY } else { -0.5 * v * v };
            if let Some(g) = grad.as_deref_mut() {
                g[(0, j)] = if v < -3.0 { f64::NAN } else { -v };
            }
        }
        Ok(())
    }
}

#[test]
fn non_finite_proposals_are_rejected_and_counted_as_divergences() {
    let mut k = Hmc::new(1, HmcConfig { step_size: 0.5, n_leapfrog: 8, ..HmcConfig::default() }).unwrap();
    let mut rng = stream(6, 0);
    let mut st = ChainState::new(&Walled, Batch::zeros(1, 50), true).unwrap();
    let mut rejected = 0;
    for _ in 0..40 {
        let s = k.step(&Walled, &mut st, &mut rng).unwrap();
        rejected += s.accepted.iter().filter(|a| !**a).count();
        assert!(st.log_p.iter().all(|v| v.is_finite()));
        assert!(st.x.iter().all(|v| (-3.0..=1.0).contains(v)));
    }
    assert!(k.divergences() > 0 && k.divergences() as usize <= rejected, "{} {rejected}", k.divergences());
}

#[test]
fn registry_builds_the_kernel_and_rejects_bad_configs() {
    let mut reg = Registry::new();
    crate::register(&mut reg).unwrap();
    let k = reg.kernel("hmc", 2, &json!({"adapt": "simple", "mass": [1.0, 4.0], "jitter": 0.4})).unwrap();
    assert!((k.tuning()[0].1 - 0.1).abs() < 1e-15, "{:?}", k.tuning());
    let k = reg.kernel("hmc", 2, &json!({"adapt_mass": true, "metric": "dense"})).unwrap();
    // The step size, the switch and the divergences; the metric; the adaptation's counters, mean
    // and co-moments.
    assert_eq!(k.state().len(), HMC_STATE_LEN + 4 + (4 + 2 + 4));
    for bad in [
        json!({"mass": [1.0]}),
        json!({"mass": [1.0, -1.0]}),
        json!({"jitter": 1.5}),
        json!({"n_leapfrog": 0}),
        json!({"n_leapfrog": 1024}),
        json!({"adapt": "nuts"}),
        json!({"step": 0.1}),
        json!({"metric": "full"}),
        json!({"adapt": "simple", "adapt_mass": true}),
    ] {
        assert!(reg.kernel("hmc", 2, &bad).is_err(), "{bad}");
    }
}

/// Unnormalised standard normal in 2-D with its gradient.
struct StdNormal;
impl bootflow_core::Target for StdNormal {
    fn dim(&self) -> usize {
        2
    }
    fn log_prob(&self, x: &[f64]) -> Result<f64> {
        Ok(-0.5 * (x[0] * x[0] + x[1] * x[1]))
    }
    fn has_grad(&self) -> bool {
        true
    }
    fn log_prob_grad(&self, x: &[f64], g: &mut [f64]) -> Result<f64> {
        g.iter_mut().zip(x).for_each(|(g, v)| *g = -v);
        self.log_prob(x)
    }
}

/// MIS with AIS-refined proposals whose transitions are HMC steps on the path from a too-broad
/// flow N(0, 1.5^2 I) to N(0, I): the moments must lie within 4 MCSE (the spread of 16
/// independent chains' means) and the acceptance must beat plain MIS, whose rate (about 0.62)
/// is known to about 0.003 from 16 x 1999 proposals.
#[test]
fn mis_with_hmc_annealed_proposals_samples_the_target() {
    use bootflow_core::{MisConfig, Proposal, run_mis};
    let flow = bootflow_core::Flow::with_base(vec![0.0; 2], vec![1.5; 2], vec![]).unwrap();
    let kernel = Hmc::new(2, HmcConfig { n_leapfrog: 3, step_size: 0.5, ..HmcConfig::default() }).unwrap();
    let cfg = |proposal| MisConfig { n_chains: 16, n_draws: 2000, batch: 100, keep_draws: true, proposal };
    let ais = Proposal::Ais { kernel: &kernel, n_intermediate: 4, spacing: Spacing::Linear };
    let res = run_mis(&flow, &StdNormal, &cfg(ais), 21, |_| Ok(())).unwrap();
    let plain = run_mis(&flow, &StdNormal, &cfg(Proposal::Flow), 21, |_| Ok(())).unwrap();
    assert!(res.acceptance > plain.acceptance + 0.05, "AIS {} vs plain {}", res.acceptance, plain.acceptance);
    let k = 16.0;
    for i in 0..2 {
        for (power, truth) in [(1, 0.0), (2, 1.0)] {
            let per_chain: Vec<f64> = res
                .chains
                .iter()
                .map(|c| c.draws.as_ref().unwrap().row(i).iter().map(|v| v.powi(power)).sum::<f64>() / 2000.0)
                .collect();
            let mean = per_chain.iter().sum::<f64>() / k;
            let mcse = (per_chain.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (k - 1.0) / k).sqrt();
            assert!((mean - truth).abs() < 4.0 * mcse && mcse < 0.05, "E[x_{i}^{power}] = {mean} +- {mcse}");
        }
    }
}

/// [`Correlated`] as a target.
struct CorrelatedTarget(Correlated);
impl bootflow_core::Target for CorrelatedTarget {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn log_prob(&self, x: &[f64]) -> Result<f64> {
        let mut out = [0.0];
        self.0.eval(&Batch::from_column_slice(x.len(), 1, x), &mut out, None)?;
        Ok(out[0])
    }
    fn has_grad(&self) -> bool {
        true
    }
    fn log_prob_grad(&self, x: &[f64], g: &mut [f64]) -> Result<f64> {
        let mut out = [0.0];
        let mut grad = Batch::zeros(x.len(), 1);
        self.0.eval(&Batch::from_column_slice(x.len(), 1, x), &mut out, Some(&mut grad))?;
        g.copy_from_slice(grad.as_slice());
        Ok(out[0])
    }
}

/// `flow.init = "warmup"` fits the mean and covariance of 8 x 250 NUTS draws of a correlated
/// Gaussian (condition number 40): the mean within 5 standard errors of the 2000 draws in every
/// coordinate, the covariance within 15 % (Frobenius norm; the relative error of a covariance
/// from 2000 independent draws is about 3 %).
#[test]
fn flow_init_warmup_fits_the_gaussian_of_a_nuts_run() {
    use bootflow_core::{FlowSpec, parse_config};
    let mut reg = Registry::with_builtins();
    crate::register(&mut reg).unwrap();
    let target = CorrelatedTarget(Correlated::new(5, 4));
    let spec: FlowSpec = parse_config("flow", &json!({"layers": [], "init": "warmup"})).unwrap();
    let init = bootflow_core::initialise(&reg, &target, &spec, 2).unwrap();
    assert!(init.note.as_deref().unwrap().starts_with("warmup"), "{:?}", init.note);
    let layer = &init.spec.layers[0];
    let shift: Vec<f64> = serde_json::from_value(layer["shift"].clone()).unwrap();
    let rows: Vec<Vec<f64>> = serde_json::from_value(layer["lower"].clone()).unwrap();
    let l = DMatrix::from_fn(5, 5, |i, j| if j <= i { rows[i][j] } else { 0.0 });
    let fitted = &l * l.transpose();
    let sigma = target.0.sigma();
    for (i, m) in shift.iter().enumerate() {
        let se = (sigma[(i, i)] / 2000.0).sqrt();
        assert!((m - target.0.mu[i]).abs() < 5.0 * se, "mean {i}: {m} vs {} (se {se})", target.0.mu[i]);
    }
    let rel = (&fitted - sigma).norm() / sigma.norm();
    assert!(rel < 0.15, "covariance off by {rel}:\n{fitted}\nvs\n{sigma}");
}
