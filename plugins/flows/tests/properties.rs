//! Property tests of the flows plugin's layers: MAF, IAF, rational-quadratic spline couplings,
//! permutations and ActNorm, built through the registry with random configs, shapes (batches of
//! 0 columns included) and parameters, and flows stacking them.
//!
//! Every property runs a fixed number of cases from a fixed proptest seed (ChaCha), with no
//! failure persistence, no forking and no timeout, and none of the config is taken from the
//! environment, so a run is the same on every machine and writes no files. A failure reports
//! the minimal (shrunk) case.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRng, TestRunner};
use serde_json::{Value, json};

use bootflow_core::{Batch, Bijection, Direction, Flow, Registry, rng, testing};
use bootflow_core::{FlowSpec, LayerContext, parse_config};
use bootflow_flows::ActNorm;

// ---------------------------------------------------------------------------------------------
// Deterministic runner

/// A runner with `cases` cases from a fixed seed, independent of every `PROPTEST_*` variable.
fn runner(cases: u32, salt: u8) -> TestRunner {
    let config = Config {
        cases,
        max_local_rejects: 65_536,
        max_global_rejects: 1024,
        max_flat_map_regens: 1_000_000,
        failure_persistence: None,
        source_file: None,
        test_name: None,
        fork: false,
        timeout: 0,
        max_shrink_time: 0,
        max_shrink_iters: 2048,
        max_default_size_range: 100,
        verbose: 0,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0xB007_F10E),
        ..Config::default()
    };
    let mut seed = [0x5Eu8; 32];
    seed[0] = salt;
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

/// Runs `test` on `cases` values of `strategy`; panics with the minimal failing case.
fn check<S: Strategy>(
    name: &str,
    cases: u32,
    salt: u8,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = runner(cases, salt).run(&strategy, test) {
        panic!("property '{name}' failed: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Bijection checks (a copy of those in core/tests/properties.rs)

/// Relative tolerance of round trips and log-det sums.
const TOL: f64 = 1e-9;

fn opposite(d: Direction) -> Direction {
    match d {
        Direction::Forward => Direction::Inverse,
        Direction::Inverse => Direction::Forward,
    }
}

/// `b` with coordinate `(i, j)` moved by `steps` units in the last place, for every column.
fn nudge(b: &Batch, i: usize, steps: f64) -> Batch {
    let mut c = b.clone();
    for j in 0..c.ncols() {
        let v = c[(i, j)];
        c[(i, j)] = v + steps * v.abs().max(f64::MIN_POSITIVE) * f64::EPSILON;
    }
    c
}

/// How much `f` (per column) moves when one input coordinate moves by one unit in the last
/// place, worst over coordinates and signs: the rounding noise floor of `f` at `b`. A round
/// trip through a strongly contracting map (|log det| ~ 15 per coordinate) cannot come back
/// closer than this, whatever the code does; a genuine bug gives errors far above it.
fn ulp_noise(b: &Batch, f: &dyn Fn(&Batch) -> Vec<f64>) -> Vec<f64> {
    let f0 = f(b);
    let mut worst = vec![0.0f64; f0.len()];
    for i in 0..b.nrows() {
        for s in [1.0, -1.0] {
            for (w, (a, c)) in worst.iter_mut().zip(f(&nudge(b, i, s)).iter().zip(&f0)) {
                *w = w.max(if (a - c).is_finite() { (a - c).abs() } else { f64::INFINITY });
            }
        }
    }
    worst
}

/// Multiple of the rounding noise floor allowed on top of `TOL`.
const NOISE: f64 = 4.0;

/// A pass in `dir` then one in the opposite direction: shapes, finiteness, the round trip
/// (`F^-1(F(z)) = z` or `F(F^-1(x)) = x`) and `log|det| + log|det of the way back| = 0`, each
/// within `TOL` relative plus `NOISE` times the way back's rounding noise floor at the
/// intermediate point (see `ulp_noise`); also that a recorded pass gives the same values as an
/// unrecorded one.
fn round_trip(layer: &dyn Bijection, input: &Batch, dir: Direction) -> Result<(), TestCaseError> {
    let (d, n) = input.shape();
    let there = layer.pass(dir, input, false).map_err(|e| TestCaseError::fail(format!("{dir:?} pass: {e}")))?;
    prop_assert_eq!(there.out.shape(), (d, n), "{:?} output shape", dir);
    prop_assert_eq!(there.log_det.len(), n, "{:?} log-det length", dir);
    prop_assert!(there.out.iter().chain(&there.log_det).all(|v| v.is_finite()), "{:?} pass not finite", dir);
    let back = layer
        .pass(opposite(dir), &there.out, false)
        .map_err(|e| TestCaseError::fail(format!("{:?} pass: {e}", opposite(dir))))?;
    prop_assert_eq!(back.out.shape(), (d, n));
    prop_assert_eq!(back.log_det.len(), n);
    let way_back = |b: &Batch| layer.pass(opposite(dir), b, false).expect("pass");
    let out_noise: Vec<Vec<f64>> =
        (0..d).map(|i| ulp_noise(&there.out, &|b: &Batch| way_back(b).out.row(i).iter().cloned().collect())).collect();
    let ld_noise = ulp_noise(&there.out, &|b: &Batch| way_back(b).log_det);
    for j in 0..n {
        for i in 0..d {
            let (a, b) = (back.out[(i, j)], input[(i, j)]);
            let allowed = TOL * b.abs().max(1.0) + NOISE * out_noise[i][j];
            prop_assert!(
                (a - b).abs() <= allowed,
                "{:?} round trip at ({}, {}): {} vs {} (error {:e}, allowed {:e})",
                dir,
                i,
                j,
                a,
                b,
                (a - b).abs(),
                allowed
            );
        }
        let (a, b) = (there.log_det[j], back.log_det[j]);
        let allowed = TOL * a.abs().max(1.0) + NOISE * ld_noise[j];
        prop_assert!(
            (a + b).abs() <= allowed,
            "{:?} log-det sum at column {}: {} + {} = {:e} (allowed {:e})",
            dir,
            j,
            a,
            b,
            a + b,
            allowed
        );
    }
    let recorded = layer.pass(dir, input, true).map_err(|e| TestCaseError::fail(format!("recorded pass: {e}")))?;
    prop_assert!(recorded.tape.is_some(), "{:?} recorded pass has no tape", dir);
    prop_assert_eq!(&recorded.out, &there.out, "{:?} recorded pass differs from the unrecorded one", dir);
    prop_assert_eq!(&recorded.log_det, &there.log_det);
    Ok(())
}

/// Both round trips of `layer` on `z` (as base points, then as data points).
fn both_round_trips(layer: &dyn Bijection, z: &Batch) -> Result<(), TestCaseError> {
    round_trip(layer, z, Direction::Forward)?;
    round_trip(layer, z, Direction::Inverse)
}

/// A `dim x n` normal batch times `scale`.
fn inputs(dim: usize, n: usize, scale: f64, r: &mut bootflow_core::Rng) -> Batch {
    testing::random_batch(dim, n, r) * scale
}

// ---------------------------------------------------------------------------------------------
// Layers through the registry (the builders behind `maf`, `iaf`, `spline`, `permute`, `actnorm`)

fn registry() -> Registry {
    let mut reg = Registry::new();
    bootflow_flows::register(&mut reg).unwrap();
    reg
}

/// The layers of one registry entry.
fn build(reg: &Registry, name: &str, dim: usize, seed: u64, cfg: &Value) -> Vec<Box<dyn Bijection>> {
    reg.bijection(name, &LayerContext { dim, index: 0, seed }, cfg)
        .unwrap_or_else(|e| panic!("building {name} on {dim} coordinates from {cfg}: {e}"))
}

fn activation() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["relu", "tanh", "leaky_relu", "elu", "silu"])
}

fn hidden() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..9, 0..3)
}

/// Shape, parameter scale, input scale and the seed of the values.
fn shape() -> impl Strategy<Value = (usize, usize, f64, f64, u64)> {
    (2usize..8, 0usize..9, 0.0f64..1.5, prop_oneof![Just(1.0), 0.05f64..6.0], any::<u64>())
}

/// Randomises every layer of an entry and checks both round trips of each, then of the stack.
fn check_entry(
    mut layers: Vec<Box<dyn Bijection>>,
    dim: usize,
    n: usize,
    pscale: f64,
    xscale: f64,
    seed: u64,
) -> Result<(), TestCaseError> {
    let mut r = rng::stream(seed, 1);
    for l in layers.iter_mut() {
        prop_assert_eq!(l.dim(), dim);
        testing::randomise_params(l.as_mut(), pscale, &mut r).unwrap();
    }
    let z = inputs(dim, n, xscale, &mut r);
    for (k, l) in layers.iter().enumerate() {
        both_round_trips(l.as_ref(), &z).map_err(|e| TestCaseError::fail(format!("layer {k}: {e}")))?;
    }
    let flow = Flow::new(dim, layers).unwrap();
    flow_log_q_agrees(&flow, n, seed)
}

/// `sample_with_log_q` then `log_q` agree (and `log_q` is finite) on the flow.
fn flow_log_q_agrees(flow: &Flow, n: usize, seed: u64) -> Result<(), TestCaseError> {
    let (x, lq) = flow.sample_with_log_q(n, &mut rng::stream(seed, 2)).unwrap();
    prop_assert_eq!(x.shape(), (flow.dim(), n));
    let again = flow.log_q(&x).unwrap();
    prop_assert_eq!(again.len(), n);
    let noise = ulp_noise(&x, &|b: &Batch| flow.log_q(b).unwrap());
    for j in 0..n {
        let allowed = TOL * lq[j].abs().max(1.0) + NOISE * noise[j];
        prop_assert!(
            lq[j].is_finite() && (again[j] - lq[j]).abs() <= allowed,
            "flow log q at column {}: sampled {} vs {} (diff {:e}, allowed {:e})",
            j,
            lq[j],
            again[j],
            again[j] - lq[j],
            allowed
        );
    }
    Ok(())
}

/// MAF and IAF blocks (random order, widths, activation and scale bound): both round trips and
/// log-det sums. Catches the sequential direction (MAF sampling, IAF density) solving the
/// coordinates in the wrong order or conditioning on the wrong side, a mask letting a coordinate
/// see itself or a later one (the one-pass inverse then disagrees with the sequential solve), a
/// log-det sign error between the kinds, and the flow's log q disagreeing with sampling.
#[test]
fn autoregressive_round_trips_and_log_dets_cancel() {
    let reg = registry();
    let order = prop::sample::select(vec!["natural", "reversed", "alternating", "random"]);
    let kind = prop::sample::select(vec!["maf", "iaf"]);
    let cfg = (kind, 1usize..4, hidden(), activation(), order, 0.2f64..3.0);
    check(
        "maf/iaf round trip",
        64,
        11,
        (shape(), cfg),
        |((dim, n, ps, xs, seed), (kind, blocks, hidden, act, order, bound))| {
            let cfg =
                json!({"blocks": blocks, "hidden": hidden, "activation": act, "order": order, "scale_bound": bound});
            check_entry(build(&reg, kind, dim, seed, &cfg), dim, n, ps, xs, seed)
        },
    );
}

/// Rational-quadratic spline couplings (random bins, bound, mask, widths): both round trips and
/// log-det sums, with inputs inside and outside `[-bound, bound]`. Catches a wrong root of the
/// inverse's quadratic, a bin search off by one at knots, the identity tails mismatching the
/// spline at the bound, and derivative/log-det errors.
#[test]
fn spline_round_trips_and_log_dets_cancel() {
    let reg = registry();
    let mask = prop::sample::select(vec!["halves", "random", "checkerboard"]);
    let cfg = (1usize..4, 2usize..11, 0.3f64..4.0, hidden(), activation(), mask);
    check(
        "spline round trip",
        64,
        12,
        (shape(), cfg),
        |((dim, n, ps, xs, seed), (couplings, bins, bound, hidden, act, mask))| {
            // The checkerboard mask needs dim = L * L: use it on dim 4 only, halves elsewhere.
            let cfg = if mask == "checkerboard" && dim == 4 {
                json!({"couplings": couplings, "bins": bins, "bound": bound, "hidden": hidden, "activation": act,
                   "mask": "checkerboard", "lattice": 2})
            } else {
                let mask = if mask == "checkerboard" { "halves" } else { mask };
                json!({"couplings": couplings, "bins": bins, "bound": bound, "hidden": hidden, "activation": act, "mask": mask})
            };
            check_entry(build(&reg, "spline", dim, seed, &cfg), dim, n, ps, xs, seed)
        },
    );
}

/// Permutations (random and reverse): round trips, log-det exactly 0, and every output column a
/// rearrangement of its input column. Catches forward and inverse using the same index map
/// (wrong for any permutation that is not an involution) and rows mixed across columns.
#[test]
fn permutation_round_trips_and_keeps_values() {
    let reg = registry();
    let kind = prop::sample::select(vec!["random", "reverse"]);
    check("permutation", 128, 13, (shape(), kind), |((dim, n, _, xs, seed), kind)| {
        let layers = build(&reg, "permute", dim, seed, &json!({"order": kind}));
        prop_assert_eq!(layers.len(), 1);
        let z = inputs(dim, n, xs, &mut rng::stream(seed, 1));
        both_round_trips(layers[0].as_ref(), &z)?;
        for dir in Direction::BOTH {
            let p = layers[0].pass(dir, &z, false).unwrap();
            prop_assert!(p.log_det.iter().all(|&l| l == 0.0));
            for j in 0..n {
                let mut a: Vec<f64> = p.out.column(j).iter().cloned().collect();
                let mut b: Vec<f64> = z.column(j).iter().cloned().collect();
                a.sort_by(f64::total_cmp);
                b.sort_by(f64::total_cmp);
                prop_assert_eq!(a, b, "{:?} column {} is not a rearrangement", dir, j);
            }
        }
        check_entry(layers, dim, n, 1.0, xs, seed)
    });
}

/// ActNorm with random (set) parameters: round trips and log-det sums like any element-wise
/// affine layer. Catches ActNorm's delegation to the affine map going wrong in one direction.
#[test]
fn actnorm_round_trips_and_log_dets_cancel() {
    let reg = registry();
    check("actnorm round trip", 128, 14, shape(), |(dim, n, ps, xs, seed)| {
        check_entry(build(&reg, "actnorm", dim, seed, &Value::Null), dim, n, ps, xs, seed)
    });
}

/// ActNorm initialised from its first batch, in either direction (the batch may have one
/// column, whose standard deviation is floored): the first pass standardises its batch, the
/// round trip then returns the batch, an empty batch does not initialise, and later batches do
/// not move the parameters. Catches initialisation in the wrong direction's convention,
/// re-initialisation on a later batch, and initialisation from an empty batch (NaN parameters).
#[test]
fn actnorm_initialised_from_data_round_trips() {
    let case = (2usize..8, 1usize..9, 0.05f64..6.0, -5.0f64..5.0, any::<u64>(), any::<bool>());
    check("actnorm data init", 128, 15, case, |(dim, n, xs, shift, seed, inverse)| {
        let layer = ActNorm::new(dim);
        layer.pass(Direction::Forward, &Batch::zeros(dim, 0), false).unwrap();
        layer.pass(Direction::Inverse, &Batch::zeros(dim, 0), false).unwrap();
        prop_assert!(!layer.is_initialised().unwrap(), "an empty batch initialised the layer");
        let b = inputs(dim, n, xs, &mut rng::stream(seed, 1)).add_scalar(shift);
        let dir = if inverse { Direction::Inverse } else { Direction::Forward };
        let first = layer.pass(dir, &b, false).unwrap();
        prop_assert!(layer.is_initialised().unwrap());
        let p = layer.params();
        prop_assert!(p.iter().all(|v| v.is_finite()), "parameters {:?}", p);
        if n > 1 {
            for (i, row) in first.out.row_iter().enumerate() {
                let m = row.sum() / n as f64;
                let sd = (row.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64).sqrt();
                // The std is floored at 1e-6: only rows with spread above it come out at 1.
                let in_sd = {
                    let r = b.row(i);
                    let mi = r.sum() / n as f64;
                    (r.iter().map(|v| (v - mi).powi(2)).sum::<f64>() / n as f64).sqrt()
                };
                prop_assert!(m.abs() < 1e-9, "row {} mean {}", i, m);
                if in_sd > 1e-3 {
                    prop_assert!((sd - 1.0).abs() < 1e-9, "row {} std {}", i, sd);
                }
            }
        }
        both_round_trips(&layer, &b)?;
        layer.pass(opposite(dir), &b.scale(3.0), false).unwrap();
        prop_assert_eq!(layer.params(), p, "a later batch moved the parameters");
        Ok(())
    });
}

/// A flow mixing every layer kind of the crate (spline, permute, maf, actnorm, iaf) with random
/// parameters and a random shard size: `sample_with_log_q` then `log_q` agree. Catches a layer
/// whose forward and inverse log-dets disagree only in composition, and shard size dependence.
#[test]
fn mixed_flow_sample_log_q_matches_log_q() {
    let reg = registry();
    let case = (2usize..7, 0usize..24, 1usize..10, 0.0f64..1.0, any::<u64>());
    check("mixed flow", 128, 16, case, |(dim, n, shard_size, ps, seed)| {
        let spec: FlowSpec = parse_config(
            "flow",
            &json!({"layers": [
                {"type": "spline", "couplings": 2, "hidden": [6], "bins": 5},
                {"type": "permute"},
                {"type": "maf", "blocks": 2, "hidden": [6, 5]},
                {"type": "actnorm"},
                {"type": "iaf", "hidden": [7], "order": "random"},
            ]}),
        )
        .unwrap();
        let mut flow = reg.flow(dim, &spec, seed).unwrap().with_shard_size(shard_size);
        let mut p = vec![0.0; flow.n_params()];
        rng::fill_normal(&mut rng::stream(seed, 3), &mut p);
        p.iter_mut().for_each(|v| *v *= ps);
        flow.set_params(&p).unwrap();
        flow_log_q_agrees(&flow, n, seed)?;
        // And log q at points it did not sample.
        let x = inputs(dim, n, 2.0, &mut rng::stream(seed, 4));
        let z = testing::invert_to_base(&flow, &x).unwrap();
        let (x1, lq1) = flow.push_forward(&z).unwrap();
        let lq = flow.log_q(&x).unwrap();
        let x_noise: Vec<Vec<f64>> = (0..dim)
            .map(|i| ulp_noise(&z, &|b: &Batch| flow.push_forward(b).unwrap().0.row(i).iter().cloned().collect()))
            .collect();
        let lq_noise = ulp_noise(&x, &|b: &Batch| flow.log_q(b).unwrap());
        for j in 0..n {
            for i in 0..dim {
                let allowed = TOL * x[(i, j)].abs().max(1.0) + NOISE * x_noise[i][j];
                prop_assert!(
                    (x1[(i, j)] - x[(i, j)]).abs() <= allowed,
                    "flow round trip at ({}, {}): {} vs {} (allowed {:e})",
                    i,
                    j,
                    x1[(i, j)],
                    x[(i, j)],
                    allowed
                );
            }
            let allowed = TOL * lq[j].abs().max(1.0) + NOISE * lq_noise[j];
            prop_assert!(
                (lq1[j] - lq[j]).abs() <= allowed,
                "column {}: {} vs {} (allowed {:e})",
                j,
                lq1[j],
                lq[j],
                allowed
            );
        }
        Ok(())
    });
}
