//! FAB: gradients against finite differences of the frozen surrogates, replay-buffer weight
//! correction, and a short training run.

use serde_json::json;

use crate::flow::Flow;
use crate::flow::affine::ElementwiseAffine;
use crate::model::bijection::Bijection;
use crate::model::objective::Objective;
use crate::registry::Registry;
use crate::testing;
use crate::train::fab::{Fab, surrogate_p, surrogate_p2q};
use crate::train::test_support::{Gaussian, Sinh};

fn flow(seed: u64) -> Flow {
    let mut r = crate::rng::stream(seed, 0);
    let mut layers: Vec<Box<dyn Bijection>> = Vec::new();
    for k in 0..2 {
        let mut l = ElementwiseAffine::new(2);
        testing::randomise_params(&mut l, 0.3, &mut r).unwrap();
        layers.push(Box::new(l));
        if k == 0 {
            layers.push(Box::new(Sinh(2)));
        }
    }
    Flow::new(2, layers).unwrap()
}

fn target() -> Gaussian {
    Gaussian { mu: vec![1.0, -0.5], sigma: vec![0.8, 1.5] }
}

fn fab(form: &str, extra: serde_json::Value) -> Fab {
    let mut cfg = json!({"form": form, "batch": 16, "n_intermediate": 2, "kernel": "rwm",
                         "kernel_config": {"step_size": 0.5}});
    if let (Some(c), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    Fab::from_config(&cfg, &Registry::with_builtins()).unwrap()
}

#[test]
fn gradients_equal_finite_differences_of_the_frozen_surrogates() {
    let f = flow(3);
    let theta = f.params();
    let t = target();
    for form in ["p", "p2q"] {
        // Twin objectives on twin streams: the twin's AIS batch is the one the objective used.
        let out = fab(form, json!({})).estimate(&f, &t, &mut crate::rng::stream(5, 0)).unwrap();
        let ais = fab(form, json!({})).ais_batch(&f, &t, &mut crate::rng::stream(5, 0)).unwrap();
        let mut probe = flow(3);
        let mut surrogate = |p: &[f64]| {
            probe.set_params(p).unwrap();
            match form {
                "p" => surrogate_p(&probe, &ais.x, &ais.log_w, &ais.log_end).unwrap().0,
                _ => surrogate_p2q(&probe, &ais.x, &ais.log_w).unwrap().0,
            }
        };
        assert_eq!(out.loss, surrogate(&theta), "{form}: the loss is the surrogate at theta");
        let idx: Vec<usize> = (0..theta.len()).collect();
        let fd = testing::fd_gradient(&mut surrogate, &theta, &idx, 1e-5);
        let err = testing::rel_error(&out.grad, &fd);
        assert!(err < 1e-6, "{form}: {:?} vs {fd:?} ({err})", out.grad);
        for name in ["ess", "ess_ais", "ais_accept", "step_size"] {
            assert!(out.metrics.iter().any(|(n, v)| n == name && v.is_finite()), "{form}: no {name}");
        }
    }
}

#[test]
fn buffer_draws_are_reweighted_for_staleness_and_their_weights_brought_up_to_date() {
    let mut f = flow(4);
    let t = target();
    let max_w_adjust = 1.5;
    let mut obj = fab(
        "p2q",
        json!({"buffer": {"size": 64, "min": 40, "batches_per_ais": 100, "batch": 8, "max_w_adjust": max_w_adjust}}),
    );
    let mut rng = crate::rng::stream(6, 0);
    obj.estimate(&f, &t, &mut rng).unwrap();
    obj.after_update(&f).unwrap();
    let buffer = |o: &Fab| -> crate::train::buffer::ReplayBuffer {
        serde_json::from_value(o.state()["buffer"].clone()).unwrap()
    };
    let before = buffer(&obj);
    // Three AIS batches of 16 were needed to reach 40 points.
    assert_eq!(before.len(), 48);

    // The flow moves on; the next draw (no AIS is due) sees stale stored log q.
    let mut p = f.params();
    p.iter_mut().enumerate().for_each(|(i, v)| *v += 0.15 * ((i * 7 % 5) as f64 - 2.0));
    f.set_params(&p).unwrap();
    let out = obj.estimate(&f, &t, &mut rng).unwrap();
    let (idx, log_q_now) = obj.last_draw_for_tests();
    let x = before.points(&idx);
    assert_eq!(log_q_now, f.log_q(&x).unwrap());
    let stale: Vec<f64> = before
        .stored_log_q(&idx)
        .iter()
        .zip(&log_q_now)
        .map(|(old, now)| (old - now).exp().min(max_w_adjust))
        .collect();
    assert!(stale.contains(&max_w_adjust) && stale.iter().any(|&s| s < 1.0), "{stale:?}");
    // Loss and gradient: -mean(s_j log q(x_j)) with s frozen, against central differences.
    let m = idx.len() as f64;
    let mut probe = flow(4);
    let mut surrogate = |theta: &[f64]| {
        probe.set_params(theta).unwrap();
        -probe.log_q(&x).unwrap().iter().zip(&stale).map(|(q, s)| s * q).sum::<f64>() / m
    };
    assert!((out.loss - surrogate(&p)).abs() < 1e-12 * out.loss.abs().max(1.0));
    let all: Vec<usize> = (0..p.len()).collect();
    let fd = testing::fd_gradient(&mut surrogate, &p, &all, 1e-5);
    let err = testing::rel_error(&out.grad, &fd);
    assert!(err < 1e-6, "buffer gradient vs finite differences: {err}");

    // An applied step brings each drawn slot's weight to the flow it was drawn under.
    obj.after_update(&f).unwrap();
    let after = buffer(&obj);
    for slot in 0..before.len() {
        let drawn = (0..idx.len()).find(|&j| idx[j] == slot);
        let (w, q) = match drawn {
            Some(j) => (before.log_weights()[slot] + before.stored_log_q(&[slot])[0] - log_q_now[j], log_q_now[j]),
            None => (before.log_weights()[slot], before.stored_log_q(&[slot])[0]),
        };
        assert_eq!((after.log_weights()[slot], after.stored_log_q(&[slot])[0]), (w, q), "slot {slot}");
    }
}

#[test]
fn short_fab_training_fits_a_shifted_scaled_gaussian() {
    // Target N((2, -1), diag(0.5, 2)^2); a single affine layer can match it exactly (training
    // alone: flow.init would fit it before the first step).
    let t = Gaussian { mu: vec![2.0, -1.0], sigma: vec![0.5, 2.0] };
    let reg = Registry::with_builtins();
    let spec: crate::registry::FlowSpec =
        crate::registry::parse_config("flow", &json!({"layers": [{"type": "affine"}], "init": "none"})).unwrap();
    for (form, buffer) in
        [("p", None), ("p2q", None), ("p2q", Some(json!({"size": 4096, "min": 256, "batches_per_ais": 4})))]
    {
        let mut cfg = json!({"form": form, "batch": 64, "n_intermediate": 2, "kernel": "rwm"});
        if let Some(b) = buffer.clone() {
            cfg["buffer"] = b;
        }
        let objective: crate::train::config::Component = serde_json::from_value(json!({"name": "fab"})).unwrap();
        let objective = crate::train::config::Component { params: cfg.as_object().unwrap().clone(), ..objective };
        let train = crate::train::config::TrainConfig { steps: 300, lr: 0.03, ..Default::default() };
        let mut tr =
            crate::train::trainer::Trainer::new(&reg, Box::new(t_clone(&t)), 1, &spec, &objective, &train).unwrap();
        let ess_before = fresh_ess(tr.flow(), &t);
        tr.run().unwrap();
        let ess_after = fresh_ess(tr.flow(), &t);
        // The identity flow covers the target poorly (ESS 0.022); the fitted affine flows reach
        // 0.989 - 0.999. Both numbers are deterministic under the seeds.
        assert!(ess_before < 0.1, "{form} {buffer:?}: start {ess_before}");
        assert!(ess_after > 0.9, "{form} {buffer:?}: {ess_before} -> {ess_after}");
        assert_eq!(tr.skipped_steps(), 0);
    }
}

fn t_clone(t: &Gaussian) -> Gaussian {
    Gaussian { mu: t.mu.clone(), sigma: t.sigma.clone() }
}

/// Kish ESS of 20,000 fresh flow samples.
fn fresh_ess(f: &Flow, t: &Gaussian) -> f64 {
    use crate::Target;
    let (x, log_q) = f.sample_with_log_q(20_000, &mut crate::rng::stream(77, 0)).unwrap();
    let mut log_p = vec![0.0; x.ncols()];
    t.log_prob_batch(&x, &mut log_p).unwrap();
    let log_w: Vec<f64> = log_p.iter().zip(&log_q).map(|(p, q)| p - q).collect();
    crate::diagnostics::importance::kish_ess(&log_w).unwrap()
}

/// `-inf` everywhere: no flow sample is in its support.
struct NoSupport;
impl crate::Target for NoSupport {
    fn dim(&self) -> usize {
        2
    }
    fn log_prob(&self, _x: &[f64]) -> crate::Result<f64> {
        Ok(f64::NEG_INFINITY)
    }
}

#[test]
fn a_buffer_that_cannot_fill_stops_with_the_cause_instead_of_looping() {
    let f = flow(4);
    let mut obj = fab("p2q", json!({"buffer": {"size": 64, "min": 40, "batches_per_ais": 4}}));
    let err = obj.estimate(&f, &NoSupport, &mut crate::rng::stream(6, 0)).unwrap_err();
    // 40 points at 16 per batch: 3 batches when all count, 4 * 3 + 8 = 20 before giving up.
    let msg = err.to_string();
    assert!(msg.contains("holds 0 of the 40 points it needs after 20 AIS batches"), "{msg}");
    assert!(!matches!(err, crate::Error::NonFinite(_)), "a skipped step would retry the fill");
}
