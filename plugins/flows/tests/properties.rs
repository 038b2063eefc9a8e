//! Property tests of the flows plugin's layers: MAF, IAF, rational-quadratic spline couplings,
//! permutations and ActNorm, built through the registry with random configs, shapes (batches of
//! 0 columns included) and parameters, and flows stacking them.
//!
//! Every property runs a fixed number of cases from a fixed proptest seed (ChaCha), with no
//! failure persistence, no forking and no timeout, and none of the config is taken from the
//! environment, so a run is the same on every machine and writes no files. A failure reports
//! the minimal (shrunk) case.

use proptest::prelude::*;
use serde_json::{Value, json};

use bootflow_core::testing::properties::*;
use bootflow_core::{Batch, Bijection, Direction, Registry, rng, testing};
use bootflow_core::{FlowSpec, parse_config};
use bootflow_flows::ActNorm;

// ---------------------------------------------------------------------------------------------
// Layers through the registry (the builders behind `maf`, `iaf`, `spline`, `permute`, `actnorm`)

fn registry() -> Registry {
    let mut reg = Registry::new();
    bootflow_flows::register(&mut reg).unwrap();
    reg
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
