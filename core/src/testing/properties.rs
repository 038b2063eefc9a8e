//! Property-test helpers (with the `testing` feature, on proptest): a runner whose cases come
//! from a fixed seed whatever the environment, and round-trip, log-determinant and flow checks
//! of bijections whose tolerance is `TOL` relative plus a multiple of the measured rounding
//! floor of the way back (see [`ulp_noise`]).

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRng, TestRunner};
use serde_json::Value;

use crate::{Batch, Bijection, Direction, Flow, LayerContext, Registry, rng, testing};

// ---------------------------------------------------------------------------------------------
// Deterministic runner

/// A runner with `cases` cases from a fixed seed, independent of every `PROPTEST_*` variable.
pub fn runner(cases: u32, salt: u8) -> TestRunner {
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
pub fn check<S: Strategy>(
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
// Bijection checks

/// Relative tolerance of round trips and log-det sums.
pub const TOL: f64 = 1e-9;

/// The other direction.
pub fn opposite(d: Direction) -> Direction {
    match d {
        Direction::Forward => Direction::Inverse,
        Direction::Inverse => Direction::Forward,
    }
}

/// `b` with coordinate `(i, j)` moved by `steps` units in the last place, for every column.
pub fn nudge(b: &Batch, i: usize, steps: f64) -> Batch {
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
pub fn ulp_noise(b: &Batch, f: &dyn Fn(&Batch) -> Vec<f64>) -> Vec<f64> {
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
pub const NOISE: f64 = 4.0;

/// A pass in `dir` then one in the opposite direction: shapes, finiteness, the round trip
/// (`F^-1(F(z)) = z` or `F(F^-1(x)) = x`) and `log|det| + log|det of the way back| = 0`, each
/// within `TOL` relative plus `NOISE` times the way back's rounding noise floor at the
/// intermediate point (see `ulp_noise`); also that a recorded pass gives the same values as an
/// unrecorded one.
pub fn round_trip(layer: &dyn Bijection, input: &Batch, dir: Direction) -> Result<(), TestCaseError> {
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
pub fn both_round_trips(layer: &dyn Bijection, z: &Batch) -> Result<(), TestCaseError> {
    round_trip(layer, z, Direction::Forward)?;
    round_trip(layer, z, Direction::Inverse)
}

/// A `dim x n` normal batch times `scale`.
pub fn inputs(dim: usize, n: usize, scale: f64, r: &mut crate::Rng) -> Batch {
    testing::random_batch(dim, n, r) * scale
}

/// The layers of one registry entry.
pub fn build(reg: &Registry, name: &str, dim: usize, seed: u64, cfg: &Value) -> Vec<Box<dyn Bijection>> {
    reg.bijection(name, &LayerContext { dim, index: 0, seed }, cfg)
        .unwrap_or_else(|e| panic!("building {name} on {dim} coordinates from {cfg}: {e}"))
}

/// Randomises every layer of an entry and checks both round trips of each, then of the stack.
pub fn check_entry(
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
pub fn flow_log_q_agrees(flow: &Flow, n: usize, seed: u64) -> Result<(), TestCaseError> {
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
