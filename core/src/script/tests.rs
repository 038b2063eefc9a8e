//! Tests of script targets: gradients against finite differences, traced replay against the
//! interpreter, the example scripts against direct Rust formulas, and error reporting.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::ScriptTarget;
use crate::Batch;
use crate::error::Error;
use crate::model::target::Target;
use crate::rng::{Rng, fill_normal, stream};
use crate::testing::{FD_STEP, fd_gradient, random_batch, rel_error};

const SCRIPTS: [&str; 6] = ["gmm", "banana", "funnel", "double_well", "manywell", "phi4"];

fn script_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(format!("{name}.rhai"))
}

fn load(name: &str, params: &[(&str, Value)]) -> ScriptTarget {
    let params: BTreeMap<String, Value> = params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    ScriptTarget::from_file(&script_path(name), &params).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn src(source: &str) -> ScriptTarget {
    ScriptTarget::from_source("test.rhai", source, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"))
}

fn src_err(source: &str) -> String {
    ScriptTarget::from_source("bad.rhai", source, &BTreeMap::new()).expect_err("script must be rejected").to_string()
}

fn value_grad(t: &dyn Target, x: &[f64]) -> (f64, Vec<f64>) {
    let mut g = vec![0.0; t.dim()];
    let v = t.log_prob_grad(x, &mut g).unwrap();
    (v, g)
}

fn point(dim: usize, scale: f64, rng: &mut Rng) -> Vec<f64> {
    let mut x = vec![0.0; dim];
    fill_normal(rng, &mut x);
    x.iter_mut().for_each(|v| *v *= scale);
    x
}

/// Worst finite-difference error of the gradient over `n` random points.
fn fd_error(t: &dyn Target, n: usize, scale: f64, rng: &mut Rng) -> f64 {
    let idx: Vec<usize> = (0..t.dim()).collect();
    (0..n)
        .map(|_| {
            let x = point(t.dim(), scale, rng);
            let (v, g) = value_grad(t, &x);
            assert_eq!(v, t.log_prob(&x).unwrap(), "value with and without gradient");
            let mut f = |y: &[f64]| t.log_prob(y).unwrap();
            rel_error(&g, &fd_gradient(&mut f, &x, &idx, FD_STEP))
        })
        .fold(0.0, f64::max)
}

fn rel_diff(a: f64, b: f64) -> f64 {
    if a == b { 0.0 } else { (a - b).abs() / a.abs().max(b.abs()) }
}

#[test]
fn every_example_script_is_traced_and_its_gradient_matches_finite_differences() {
    let mut rng = stream(11, 0);
    for name in SCRIPTS {
        let t = load(name, &[]);
        assert!(t.is_traced(), "{name}: {:?}", t.fallback_reason());
        let err = fd_error(&t, 20, 1.0, &mut rng);
        assert!(err < 1e-6, "{name}: relative gradient error {err:e}");
    }
}

#[test]
fn interpreter_fallback_agrees_with_traced_replay() {
    let mut rng = stream(12, 0);
    for name in SCRIPTS {
        let traced = load(name, &[]);
        let interpreted = load(name, &[]).without_tracing();
        assert!(!interpreted.is_traced());
        for _ in 0..10 {
            let x = point(traced.dim(), 1.5, &mut rng);
            let (v1, g1) = value_grad(&traced, &x);
            let (v2, g2) = value_grad(&interpreted, &x);
            assert!(rel_diff(v1, v2) <= 1e-12, "{name}: {v1} vs {v2}");
            assert_eq!(interpreted.log_prob(&x).unwrap(), v2);
            let worst = g1.iter().zip(&g2).map(|(a, b)| rel_diff(*a, *b)).fold(0.0, f64::max);
            assert!(worst <= 1e-12, "{name}: gradients differ by {worst:e}");
        }
    }
}

/// Many Well, docs/targets.md §4.1, written directly: value and gradient.
fn many_well(x: &[f64], g: &mut [f64]) -> f64 {
    let (a, b, c) = (-0.5, -6.0, 1.0);
    let mut s = 0.0;
    for i in 0..x.len() / 2 {
        let (w, y) = (x[2 * i], x[2 * i + 1]);
        s -= a * w + b * w * w + c * w.powi(4) + 0.5 * y * y;
        g[2 * i] = -(a + 2.0 * b * w + 4.0 * c * w.powi(3));
        g[2 * i + 1] = -y;
    }
    s
}

/// Lattice phi^4, tutorial normalisation (docs/targets.md §1.1), written directly.
fn phi4(x: &[f64], l: usize, m2: f64, lambda: f64, g: &mut [f64]) -> f64 {
    let at = |i: usize, j: usize| (i % l) * l + j % l;
    let mut action = 0.0;
    for i in 0..l {
        for j in 0..l {
            let p = x[at(i, j)];
            let hop = x[at(i + 1, j)] + x[at(i, j + 1)];
            let back = x[at(i + l - 1, j)] + x[at(i, j + l - 1)];
            action += -2.0 * p * hop + (4.0 + m2) * p * p + lambda * p.powi(4);
            g[at(i, j)] = 2.0 * (hop + back) - 2.0 * (4.0 + m2) * p - 4.0 * lambda * p.powi(3);
        }
    }
    -action
}

/// Worst relative difference of value and gradient between `t` and `reference` on 1000 points.
fn compare_with(t: &ScriptTarget, reference: impl Fn(&[f64], &mut [f64]) -> f64, seed: u64) -> f64 {
    let mut rng = stream(seed, 0);
    let x = random_batch(t.dim(), 1000, &mut rng) * 1.5;
    let mut out = vec![0.0; 1000];
    let mut grad = Batch::zeros(t.dim(), 1000);
    t.log_prob_grad_batch(&x, &mut out, &mut grad).unwrap();
    let mut g = vec![0.0; t.dim()];
    let mut worst: f64 = 0.0;
    for (j, &o) in out.iter().enumerate() {
        let v = reference(x.column(j).as_slice(), &mut g);
        worst = worst.max(rel_diff(o, v));
        let scale = g.iter().fold(0.0f64, |m, d| m.max(d.abs()));
        for (a, b) in grad.column(j).iter().zip(&g) {
            worst = worst.max((a - b).abs() / scale);
        }
    }
    worst
}

#[test]
fn manywell_script_matches_the_direct_formula() {
    let t = load("manywell", &[]);
    assert_eq!(t.dim(), 32);
    let worst = compare_with(&t, many_well, 21);
    assert!(worst <= 1e-12, "{worst:e}");
    let small = load("manywell", &[("DIM", json!(8))]);
    assert_eq!(small.dim(), 8);
    assert!(compare_with(&small, many_well, 22) <= 1e-12);
}

#[test]
fn phi4_script_matches_the_direct_action() {
    let t = load("phi4", &[]);
    assert_eq!(t.dim(), 16);
    let worst = compare_with(&t, |x, g| phi4(x, 4, -4.0, 8.0, g), 31);
    assert!(worst <= 1e-12, "{worst:e}");
    let t = load("phi4", &[("L", json!(4)), ("m2", json!(0.5)), ("lambda", json!(1.25))]);
    let worst = compare_with(&t, |x, g| phi4(x, 4, 0.5, 1.25, g), 32);
    assert!(worst <= 1e-12, "{worst:e}");
    // L sets DIM through the script's own `const DIM = L * L;`.
    assert_eq!(load("phi4", &[("L", json!(3))]).dim(), 9);
}

#[test]
fn grad_log_prob_overrides_automatic_differentiation() {
    // A deliberately different gradient shows which one is used.
    let t = src(
        "const DIM = 2;\nfn log_prob(x) { -0.5 * (x[0] * x[0] + x[1] * x[1]) }\nfn grad_log_prob(x) { [42.0, x[1]] }",
    );
    assert!(t.has_grad_override());
    let (v, g) = value_grad(&t, &[1.0, 3.0]);
    assert_eq!((v, g), (-5.0, vec![42.0, 3.0]));
    let mut out = [0.0; 2];
    let mut grad = Batch::zeros(2, 2);
    t.log_prob_grad_batch(&Batch::from_column_slice(2, 2, &[1.0, 3.0, 0.0, 0.0]), &mut out, &mut grad).unwrap();
    assert_eq!(grad.as_slice(), &[42.0, 3.0, 42.0, 0.0]);

    let wrong_len = src("const DIM = 2;\nfn log_prob(x) { 0.0 }\nfn grad_log_prob(x) { [1.0] }");
    let err = wrong_len.log_prob_grad(&[0.0, 0.0], &mut [0.0; 2]).unwrap_err().to_string();
    assert!(err.starts_with("test.rhai:3:4: grad_log_prob returned 1 values, expected DIM = 2"), "{err}");
}

#[test]
fn data_dependent_branching_falls_back_to_per_point_evaluation() {
    // |x0| through `if`, a `while` on a traced value, and a conversion to a plain number.
    let cases = [
        (
            "const DIM = 2;\nfn log_prob(x) {\n  let a = if x[0] > 0.0 { x[0] } else { -x[0] };\n  -a * x[1] * x[1]\n}",
            "test.rhai:3:",
        ),
        (
            "const DIM = 2;\nfn log_prob(x) { let s = x[0]; let n = 0; while s < 3.0 { s += 1.0; n += 1; } s * x[1] }",
            "test.rhai:2:",
        ),
        ("const DIM = 2;\nfn log_prob(x) { let k = to_float(x[0]); k * x[1] * x[1] }", "test.rhai:2:"),
        // A caught comparison is detected too.
        ("const DIM = 2;\nfn log_prob(x) { try { if x[0] > 0.0 {} } catch {} x[0] * x[1] }", "test.rhai:"),
    ];
    let mut rng = stream(41, 0);
    for (source, at) in cases {
        let t = src(source);
        let reason = t.fallback_reason().unwrap_or_else(|| panic!("not detected: {source}"));
        assert!(reason.starts_with(at), "{reason}");
        // A converted value is a constant for the gradient, so finite differences disagree.
        if !source.contains("to_float") {
            assert!(fd_error(&t, 10, 1.0, &mut rng) < 1e-6, "{source}");
        }
    }
    let abs = src(cases[0].0);
    assert_eq!(value_grad(&abs, &[-2.0, 3.0]), (-18.0, vec![9.0, -12.0]));
    assert_eq!(value_grad(&abs, &[2.0, 3.0]), (-18.0, vec![-9.0, -12.0]));
    // The `while` loop runs until s >= 3: from s = 0.5 that is s = 3.5, n = 3.
    let w = src(cases[1].0);
    assert_eq!(value_grad(&w, &[0.5, 2.0]), (7.0, vec![2.0, 3.5]));
    // A converted value is a constant for the gradient.
    let c = src(cases[2].0);
    assert_eq!(value_grad(&c, &[2.0, 3.0]), (18.0, vec![0.0, 12.0]));
}

#[test]
fn minus_infinity_is_a_legal_value_without_nan_gradients() {
    let t = src("const DIM = 2;\nfn log_prob(x) { ln(exp(-1e3 * x[0] * x[0]) + exp(-1e3 * x[1] * x[1])) }");
    assert!(t.is_traced());
    for t in [
        t,
        src("const DIM = 2;\nfn log_prob(x) { ln(exp(-1e3 * x[0] * x[0]) + exp(-1e3 * x[1] * x[1])) }")
            .without_tracing(),
    ] {
        let (v, g) = value_grad(&t, &[40.0, -50.0]);
        assert_eq!(v, f64::NEG_INFINITY);
        assert!(g.iter().all(|d| !d.is_nan()), "{g:?}");
    }
    let outside = src("const DIM = 1;\nfn log_prob(x) { -1.0 / 0.0 }");
    assert_eq!(value_grad(&outside, &[1.0]), (f64::NEG_INFINITY, vec![0.0]));
}

#[test]
fn functions_operators_and_parameters_of_every_kind() {
    let source = "const DIM = 3;
const CENTRE = [0.5, 1];
const NAME = \"x\";
const ON = true;
fn log_prob(x) {
    let s = sum(x) + x.map(|v| v * v).sum() + 2 ** x[0] + pow(x[1], 2.5) + x[1] ** 3 + x[2] ** x[1];
    s += exp(x[0]) + ln(x[1]) + log(x[1]) + sqrt(x[1]) + sin(x[0]) + cos(x[0]) + tan(x[0]) + tanh(x[0]);
    s += sinh(x[0]) + cosh(x[0]) + abs(x[0]) + sigmoid(x[0]) + softplus(x[0]) + log1p(x[1]) + expm1(x[0]);
    s += min(x[0], x[1]) + max(x[0], 0.25) + min(1, x[2]) - (3 - x[0]) / (x[1] / 2) * -x[2];
    if ON && NAME == \"x\" { s - CENTRE[0] * CENTRE[1] } else { s }
}";
    let t = ScriptTarget::from_source("all.rhai", source, &BTreeMap::from([("ON".into(), json!(true))])).unwrap();
    assert!(t.is_traced());
    // Positive x[1], x[2] keep ln, sqrt and pow real.
    let mut rng = stream(51, 0);
    let idx = [0, 1, 2];
    for _ in 0..20 {
        let x: Vec<f64> =
            point(3, 0.3, &mut rng).iter().enumerate().map(|(i, v)| if i == 0 { *v } else { 1.0 + v.abs() }).collect();
        let (v, g) = value_grad(&t, &x);
        let mut f = |y: &[f64]| t.log_prob(y).unwrap();
        let err = rel_error(&g, &fd_gradient(&mut f, &x, &idx, FD_STEP));
        assert!(err < 1e-6, "{err:e} at {x:?}");
        let expected_log = x[1].log10();
        assert!(v.is_finite() && expected_log.is_finite());
    }
    // `log` is base 10 on traced numbers, as on Rhai's floats.
    let l = src("const DIM = 1;\nfn log_prob(x) { log(x[0]) - log(100.0) }");
    assert_eq!(l.log_prob(&[1000.0]).unwrap(), 1.0);
}

#[test]
fn batches_are_sharded_in_parallel_and_match_single_points() {
    let t = load("gmm", &[]);
    let mut rng = stream(61, 0);
    let x = random_batch(2, 300, &mut rng) * 4.0;
    let (mut out, mut grad, mut values) = (vec![0.0; 300], Batch::zeros(2, 300), vec![0.0; 300]);
    t.log_prob_grad_batch(&x, &mut out, &mut grad).unwrap();
    t.log_prob_batch(&x, &mut values).unwrap();
    for j in 0..300 {
        let (v, g) = value_grad(&t, x.column(j).as_slice());
        assert_eq!((out[j], values[j]), (v, v));
        assert_eq!(grad.column(j).as_slice(), &g[..]);
    }
    assert!(t.log_prob(&[0.0]).is_err());
}

#[test]
fn script_errors_name_file_line_and_column() {
    let syntax = src_err("const DIM = 1;\nfn log_prob(x) {\n  x[0] +* 2\n}");
    assert!(syntax.starts_with("bad.rhai:3:"), "{syntax}");
    let unknown = src_err("const DIM = 1;\nfn log_prob(x) {\n  frobnicate(x[0])\n}");
    assert!(unknown.starts_with("bad.rhai:3:3:") && unknown.contains("frobnicate"), "{unknown}");
    let missing = src_err("const DIM = 1;\nfn log_q(x) { 0.0 }");
    assert!(missing.starts_with("bad.rhai:1:1:") && missing.contains("log_prob"), "{missing}");
    let string = src_err("const DIM = 1;\nfn log_prob(x) { \"high\" }");
    assert!(string.starts_with("bad.rhai:2:4: log_prob returned a string"), "{string}");
    let no_dim = src_err("fn log_prob(x) { 0.0 }");
    assert!(no_dim.starts_with("bad.rhai:1:1:") && no_dim.contains("DIM"), "{no_dim}");
    let bad_dim = src_err("const DIM = \"two\";\nfn log_prob(x) { 0.0 }");
    assert!(bad_dim.starts_with("bad.rhai:1:7: DIM must be"), "{bad_dim}");
    let bounds = src_err("const DIM = 3;\nfn log_prob(x) { x[0] + x[5] }");
    assert!(bounds.starts_with("bad.rhai:2:") && bounds.contains("out of bounds"), "{bounds}");
    let thrown = ScriptTarget::from_file(&script_path("manywell"), &BTreeMap::from([("DIM".into(), json!(3))]))
        .unwrap_err()
        .to_string();
    assert!(thrown.contains("manywell.rhai:") && thrown.contains("DIM must be even"), "{thrown}");
    // An error on some points only, raised through the per-point fallback.
    let late = src("const DIM = 1;\nfn log_prob(x) {\n  if x[0] > 1.0 { frobnicate(x[0]) } else { x[0] }\n}");
    assert!(late.log_prob(&[0.0]).is_ok());
    let msg = late.log_prob(&[2.0]).unwrap_err().to_string();
    assert!(msg.starts_with("test.rhai:3:19:") && msg.contains("frobnicate"), "{msg}");
}

#[test]
fn endless_loops_stop_at_the_operation_limit() {
    for source in [
        "const DIM = 1;\nfn log_prob(x) {\n  let i = 0;\n  loop { i += 1; }\n}",
        "const DIM = 1;\nlet i = 0;\nwhile true { i += 1; }\nfn log_prob(x) { x[0] }",
    ] {
        let start = Instant::now();
        let err = src_err(source);
        let elapsed = start.elapsed();
        // Whichever bound comes first stops it: the operation count, or on a loaded machine
        // (an unoptimised build beside other jobs) the wall-clock budget.
        let stopped = err.contains("Too many operations") || err.contains("ran past its time budget");
        assert!(err.starts_with("bad.rhai:") && stopped, "{err}");
        // Measured about 0.3 s in an optimised build and 2.5 s unoptimised (with other builds
        // running); the bounds leave room for a loaded machine.
        let limit = if cfg!(debug_assertions) { Duration::from_secs(20) } else { Duration::from_secs(2) };
        assert!(elapsed < limit, "{elapsed:?}");
    }
}

#[test]
fn unknown_parameters_are_named() {
    let params = BTreeMap::from([("SIGMAA".to_string(), json!(1.0))]);
    let err = ScriptTarget::from_file(&script_path("gmm"), &params).unwrap_err();
    assert!(matches!(err, Error::Config(_)));
    assert!(err.to_string().contains("'SIGMAA'") && err.to_string().contains("gmm.rhai"), "{err}");
    // A name mentioned only in a comment or a string is not a mention.
    let err = ScriptTarget::from_source(
        "c.rhai",
        "// uses S\nconst DIM = 1; fn log_prob(x) { \"S\"; x[0] }",
        &BTreeMap::from([("S".into(), json!(1))]),
    );
    assert!(err.unwrap_err().to_string().contains("'S'"));
}

#[test]
fn parameters_of_every_json_kind_reach_the_script() {
    let source = "const DIM = 1;\nconst W = [1.0];\nconst NAME = \"\";\nconst FLAG = false;\nconst K = 0;
fn log_prob(x) { if FLAG && NAME == \"a\" && type_of(K) == \"i64\" { W[1] * x[0] + K } else { 0.0 } }";
    let params = BTreeMap::from([
        ("W".to_string(), json!([1, 2.5])),
        ("NAME".to_string(), json!("a")),
        ("FLAG".to_string(), json!(true)),
        ("K".to_string(), json!(3)),
    ]);
    let t = ScriptTarget::from_source("p.rhai", source, &params).unwrap();
    assert!(t.is_traced());
    assert_eq!(value_grad(&t, &[2.0]), (8.0, vec![2.5]));
    let defaults = src(source);
    assert_eq!(defaults.log_prob(&[2.0]).unwrap(), 0.0);
}
