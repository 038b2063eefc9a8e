//! The training loop: exact resume from a checkpoint, skipped non-finite steps, output files.

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;

use serde_json::json;

use crate::registry::{FlowSpec, Registry, parse_config};
use crate::train::config::{Component, TrainConfig};
use crate::train::test_support::{Gaussian, NanOnCalls};
use crate::train::trainer::Trainer;

fn target() -> Box<Gaussian> {
    Box::new(Gaussian { mu: vec![1.0, -2.0], sigma: vec![0.6, 1.7] })
}

fn spec() -> FlowSpec {
    parse_config("flow", &json!({"layers": [{"type": "affine"}, {"type": "affine"}]})).unwrap()
}

fn objective(cfg: serde_json::Value) -> Component {
    let mut c: Component = serde_json::from_value(cfg).unwrap();
    c.params.remove("name");
    c
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bootflow-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn resume_is_exact(name: &str, obj: serde_json::Value) {
    let reg = Registry::with_builtins();
    let obj = objective(obj);
    let train = TrainConfig {
        steps: 20,
        lr: 0.02,
        lr_final: Some(0.002),
        clip_norm: Some(5.0),
        log_every: 5,
        ..Default::default()
    };
    let mut whole = Trainer::new(&reg, target(), 11, &spec(), &obj, &train).unwrap();
    whole.run().unwrap();

    let dir = scratch(name);
    let mut first = Trainer::new(&reg, target(), 11, &spec(), &obj, &train).unwrap().write_to(&dir).unwrap();
    first.run_for(10).unwrap();
    first.checkpoint().unwrap();
    let halfway = first.flow().params();
    drop(first);
    let mut second = Trainer::resume(&dir, &reg, target()).unwrap();
    assert_eq!(second.step(), 10);
    assert_eq!(second.flow().params(), halfway);
    second.run().unwrap();
    assert_eq!(second.flow().params(), whole.flow().params(), "{name}: resumed run differs");
    assert_ne!(halfway, whole.flow().params(), "{name}: training changed nothing");

    // metrics.csv was appended across the restart: header plus rows at steps 5, 10, 15, 20.
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let steps: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(csv.lines().next().unwrap(), crate::train::observer::METRICS_HEADER);
    assert_eq!(steps, ["5", "10", "15", "20"], "{csv}");
    let final_ckpt = crate::train::checkpoint::Checkpoint::read(&dir).unwrap();
    assert_eq!(final_ckpt.step, 20);
    assert_eq!(final_ckpt.params, whole.flow().params());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resumed_kl_run_ends_bit_for_bit_where_an_uninterrupted_one_does() {
    resume_is_exact("kl", json!({"name": "kl", "estimator": "path", "batch": 32}));
}

#[test]
fn resumed_fab_run_with_buffer_ends_bit_for_bit_where_an_uninterrupted_one_does() {
    // The buffer, the AIS kernels' adapted step sizes and the AIS counter all cross the restart
    // (batches_per_ais = 3 does not divide the restart step).
    resume_is_exact(
        "fab",
        json!({"name": "fab", "form": "p2q", "batch": 16, "n_intermediate": 2, "kernel": "rwm",
               "buffer": {"size": 100, "min": 40, "batches_per_ais": 3, "batch": 8}}),
    );
    resume_is_exact("fab-p", json!({"name": "fab", "form": "p", "batch": 16, "kernel": "rwm"}));
}

#[test]
fn non_finite_steps_are_skipped_counted_and_change_nothing() {
    let reg = Registry::with_builtins();
    // g2 evaluates the target once per step: calls 2 and 3 are steps 3 and 4.
    let nan_target = Box::new(NanOnCalls {
        inner: Gaussian { mu: vec![1.0, -2.0], sigma: vec![0.6, 1.7] },
        bad_calls: vec![2, 3],
        calls: AtomicUsize::new(0),
    });
    let obj = objective(json!({"name": "kl", "estimator": "g2", "batch": 16}));
    let train = TrainConfig { steps: 6, lr: 0.05, log_every: 1, ..Default::default() };
    let dir = scratch("nan");
    let mut t = Trainer::new(&reg, nan_target, 3, &spec(), &obj, &train).unwrap().write_to(&dir).unwrap();
    let mut before = t.flow().params();
    for step in 1..=6 {
        let out = t.step_once().unwrap();
        let after = t.flow().params();
        if step == 3 || step == 4 {
            assert!(out.loss.is_none() && out.grad_norm.is_none());
            assert_eq!(after, before, "skipped step {step} moved the parameters");
        } else {
            assert!(out.loss.is_some());
            assert_ne!(after, before, "step {step} did not move the parameters");
        }
        before = after;
    }
    assert_eq!(t.skipped_steps(), 2);
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let row4: Vec<&str> = csv.lines().nth(4).unwrap().split(',').collect();
    // step,seconds,loss,ess,grad_norm,skipped_steps,ais_accept,step_size
    assert_eq!((row4[0], row4[2], row4[4], row4[5], row4[6]), ("4", "", "", "2", ""), "{csv}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_of_skipped_steps_stops_training_naming_the_cause() {
    let reg = Registry::with_builtins();
    // Calls 1..=3 are bad: steps 2, 3 and 4 are skipped in a row, and the third of them stops.
    let nan_target = Box::new(NanOnCalls {
        inner: Gaussian { mu: vec![1.0, -2.0], sigma: vec![0.6, 1.7] },
        bad_calls: vec![1, 2, 3],
        calls: AtomicUsize::new(0),
    });
    let obj = objective(json!({"name": "kl", "estimator": "g2", "batch": 16}));
    let train = TrainConfig { steps: 10, lr: 0.05, log_every: 1, max_skipped: 3, ..Default::default() };
    let mut t = Trainer::new(&reg, nan_target, 3, &spec(), &obj, &train).unwrap();
    let err = t.run().unwrap_err().to_string();
    assert!(err.contains("3 skipped steps in a row (steps 2..=4)"), "{err}");
    assert!(err.contains("train.max_skipped"), "{err}");
    assert_eq!(t.step(), 3, "the stopping step is not counted as taken");
    assert_eq!(t.skipped_steps(), 3);
}

#[test]
fn resume_refuses_a_target_of_another_dimension() {
    let reg = Registry::with_builtins();
    let obj = objective(json!({"name": "kl", "batch": 8}));
    let train = TrainConfig { steps: 2, log_every: 1, ..Default::default() };
    let dir = scratch("dim");
    Trainer::new(&reg, target(), 1, &spec(), &obj, &train).unwrap().write_to(&dir).unwrap().run().unwrap();
    let other = Box::new(Gaussian { mu: vec![0.0], sigma: vec![1.0] });
    let err = Trainer::resume(&dir, &reg, other).err().unwrap().to_string();
    assert!(err.contains("dimension"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn periodic_evaluations_are_written_and_change_nothing_trained() {
    let reg = Registry::with_builtins();
    let obj = objective(json!({"name": "kl", "estimator": "path", "batch": 32}));
    let plain = TrainConfig { steps: 12, lr: 0.02, log_every: 4, ..Default::default() };
    let mut whole = Trainer::new(&reg, target(), 5, &spec(), &obj, &plain).unwrap();
    whole.run().unwrap();

    let evaluated = TrainConfig { eval_every: 6, eval_samples: 500, ..plain };
    let dir = scratch("eval");
    let mut t = Trainer::new(&reg, target(), 5, &spec(), &obj, &evaluated).unwrap().write_to(&dir).unwrap();
    t.run().unwrap();
    assert_eq!(t.flow().params(), whole.flow().params(), "evaluating changed the training");
    let csv = std::fs::read_to_string(dir.join("eval.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), crate::train::observer::EVAL_HEADER);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.iter().map(|r| r[0]).collect::<Vec<_>>(), ["6", "12"], "{csv}");
    for r in &rows {
        let ess: f64 = r[2].parse().unwrap();
        assert!(ess > 0.0 && ess <= 1.0, "{csv}");
        // The Gaussian test target has an exact sampler and no test set.
        assert!(r[4].parse::<f64>().unwrap().is_finite() && r[5].is_empty(), "{csv}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_time_budget_stops_training_with_a_checkpoint() {
    let reg = Registry::with_builtins();
    let obj = objective(json!({"name": "kl", "batch": 8}));
    let train = TrainConfig { steps: 1_000_000, max_seconds: Some(0.05), log_every: 1000, ..Default::default() };
    let dir = scratch("budget");
    let mut t = Trainer::new(&reg, target(), 1, &spec(), &obj, &train).unwrap().write_to(&dir).unwrap();
    t.run().unwrap();
    assert!(t.step() > 0 && t.step() < 1_000_000, "{} steps", t.step());
    assert!(t.out_of_time());
    assert_eq!(crate::train::checkpoint::Checkpoint::read(&dir).unwrap().step, t.step());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gradient_variances_are_written_and_change_nothing_trained() {
    let reg = Registry::with_builtins();
    let obj = objective(json!({"name": "kl", "estimator": "path", "batch": 32}));
    let plain = TrainConfig { steps: 12, lr: 0.02, log_every: 4, ..Default::default() };
    let mut whole = Trainer::new(&reg, target(), 5, &spec(), &obj, &plain).unwrap();
    whole.run().unwrap();

    let measured = TrainConfig { gradvar_every: 6, gradvar_batches: 50, eval_samples: 2000, ..plain.clone() };
    let dir = scratch("gradvar");
    let mut t = Trainer::new(&reg, target(), 5, &spec(), &obj, &measured).unwrap().write_to(&dir).unwrap();
    t.run().unwrap();
    assert_eq!(t.flow().params(), whole.flow().params(), "measuring changed the training");
    let csv = std::fs::read_to_string(dir.join("gradvar.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), crate::train::observer::GRADVAR_HEADER);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // The Gaussian has a gradient: every reverse-KL estimator, at steps 6 and 12.
    let keys: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[2])).collect();
    let names = ["g1", "g2", "g3", "path", "fast-path"];
    let expected: Vec<(&str, &str)> = ["6", "12"].iter().flat_map(|s| names.map(|n| (*s, n))).collect();
    assert_eq!(keys, expected, "{csv}");
    let var = |step: &str, name: &str| -> f64 {
        rows.iter().find(|r| r[0] == step && r[2] == name).unwrap()[3].parse().unwrap()
    };
    for r in &rows {
        let (v, sd): (f64, f64) = (r[3].parse().unwrap(), r[4].parse().unwrap());
        assert!(v > 0.0 && (sd - v.sqrt()).abs() <= 1e-15 * sd, "{csv}");
        assert!(r[7].parse::<f64>().unwrap() > 0.0, "signal sd: {csv}");
    }
    // A row is the variance of its estimator's gradients at that step's parameters, drawn from
    // the stream the probe documents (g3 is estimator 2 of ESTIMATORS).
    let mut g3 = reg.objective("kl", &json!({"estimator": "g3", "batch": 32})).unwrap();
    let mut r = crate::rng::stream(5, crate::run::gradvar::PROBE_STREAM + 8 * 12 + 3);
    let (direct, _) =
        crate::run::gradvar::gradient_variance(whole.flow(), whole.target(), g3.as_mut(), 50, &mut r, &|| Ok(()))
            .unwrap();
    assert_eq!(var("12", "g3"), direct, "{csv}");
    assert_ne!(var("6", "g3"), var("12", "g3"), "{csv}");

    // Unknown or unusable estimators are refused before training.
    let bad = TrainConfig { gradvar_estimators: vec!["g4".into()], ..measured.clone() };
    let err = Trainer::new(&reg, target(), 5, &spec(), &obj, &bad).err().unwrap().to_string();
    assert!(err.contains("train.gradvar_estimators") && err.contains("'g4'"), "{err}");
    let one = TrainConfig { gradvar_batches: 1, ..measured };
    let err = Trainer::new(&reg, target(), 5, &spec(), &obj, &one).err().unwrap().to_string();
    assert!(err.contains("train.gradvar_batches"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
