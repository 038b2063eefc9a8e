//! Training with mixed-precision conditioners reaches the same flow quality as f64: the same
//! seeded flow, trained by reverse KL and by FAB on a 4-D two-component Gaussian mixture, has a
//! flow ESS (Kish, 65,536 fresh samples) that agrees between the two precisions within Monte-Carlo
//! error.

use serde_json::{Value, json};

use bootflow_core::Registry;
use bootflow_core::Trainer;
use bootflow_core::kish_ess;
use bootflow_core::rng;
use bootflow_core::{Component, TrainConfig};
use bootflow_core::{FlowSpec, parse_config};

/// Fresh samples for each ESS estimate, split into `BATCHES` batches for its standard error.
const SAMPLES: usize = 65_536;
const BATCHES: usize = 64;

/// Standard errors allowed between the two estimates (see `assert_same_quality`).
const TOLERANCE_SE: f64 = 4.0;

fn registry() -> Registry {
    let mut reg = Registry::with_builtins();
    bootflow_realnvp::register(&mut reg).expect("realnvp registers");
    reg
}

/// Two overlapping, unequal, anisotropic components: both objectives keep both modes, and the
/// trained flows stay well short of ESS 1, so a worse flow shows. The mixture is centred away
/// from the origin, so the couplings must learn shifts, which need the conditioners' biases.
fn target(reg: &Registry) -> Box<dyn bootflow_core::Target> {
    let cfg = json!({"weights": [0.6, 0.4], "means": [[3.2, -1.5, 0.2, 2.9], [0.8, -1.0, 1.8, 2.1]],
                     "stds": [[0.6, 1.0, 0.8, 0.5], [0.9, 0.5, 0.6, 1.1]]});
    reg.target("mixture", &cfg).expect("mixture target")
}

/// Flow ESS estimate and its standard error by batch means: Kish's fraction on the whole sample,
/// and `sd(batch fractions) / sqrt(BATCHES)`, since a fraction from `SAMPLES / BATCHES` points
/// has `BATCHES` times the variance of one from all `SAMPLES` (the estimator's variance falls
/// as `1/n`).
fn flow_ess(t: &Trainer, seed: u64) -> (f64, f64) {
    let mut r = rng::stream(seed, 1);
    let (x, log_q) = t.flow().sample_with_log_q(SAMPLES, &mut r).expect("samples");
    let mut log_p = vec![0.0; SAMPLES];
    t.target().log_prob_batch(&x, &mut log_p).expect("target density");
    let log_w: Vec<f64> = log_p.iter().zip(&log_q).map(|(p, q)| p - q).collect();
    let ess = kish_ess(&log_w).expect("ess");
    let parts: Vec<f64> = log_w.chunks(SAMPLES / BATCHES).map(|c| kish_ess(c).expect("ess")).collect();
    let mean = parts.iter().sum::<f64>() / BATCHES as f64;
    let var = parts.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (BATCHES - 1) as f64;
    (ess, (var / BATCHES as f64).sqrt())
}

/// ESS and its standard error after `steps` steps of `objective` with conditioners in `precision`.
fn trained_ess(objective: &Value, precision: &str, steps: u64) -> (f64, f64) {
    let reg = registry();
    let layers = json!({"layers": [{"type": "realnvp", "couplings": 6, "hidden": [32, 32],
                                    "init_scale": 0.0, "precision": precision}]});
    let spec: FlowSpec = parse_config("flow", &layers).expect("flow spec");
    let obj: Component = serde_json::from_value(objective.clone()).expect("objective");
    let train = TrainConfig { lr: 3e-3, clip_norm: Some(50.0), log_every: u64::MAX, ..Default::default() };
    let mut t = Trainer::new(&reg, target(&reg), 11, &spec, &obj, &train).expect("trainer");
    t.run_for(steps).expect("training");
    flow_ess(&t, 12)
}

/// If mixed precision changes nothing beyond rounding, the two estimates differ by Monte-Carlo
/// error with standard error `sqrt(se_f64^2 + se_mixed^2)` (conservative: both draw the same base
/// points, which correlates them positively), and 4 of those bound it with probability > 0.9999.
fn assert_same_quality(objective: Value, steps: u64) {
    let (a, se_a) = trained_ess(&objective, "f64", steps);
    let (b, se_b) = trained_ess(&objective, "mixed", steps);
    let se = se_a.hypot(se_b);
    eprintln!("{objective}: ESS f64 {a:.4} +- {se_a:.4}, mixed {b:.4} +- {se_b:.4}");
    assert!(a > 0.2 && a < 0.97, "{objective}: f64 flow ESS {a} outside the informative range");
    assert!((a - b).abs() < TOLERANCE_SE * se, "{objective}: ESS f64 {a} vs mixed {b}, se {se}");
}

#[test]
fn reverse_kl_reaches_the_same_ess_in_both_precisions() {
    assert_same_quality(json!({"name": "kl", "estimator": "g3", "batch": 256}), 300);
}

#[test]
fn fab_reaches_the_same_ess_in_both_precisions() {
    let fab = json!({"name": "fab", "form": "p", "batch": 256, "n_intermediate": 2, "kernel": "rwm", "adapt": true});
    assert_same_quality(fab, 300);
}
