//! Property tests of the RealNVP affine couplings, built through the registry with random
//! configs (masks, widths, activations, scale bounds, initial scales, f64 and mixed precision),
//! shapes (batches of 0 columns included) and parameters, and flows stacking them.
//!
//! Every property runs a fixed number of cases from a fixed proptest seed (ChaCha), with no
//! failure persistence, no forking and no timeout, and none of the config is taken from the
//! environment, so a run is the same on every machine and writes no files. A failure reports
//! the minimal (shrunk) case.

use proptest::prelude::*;
use serde_json::json;

use bootflow_core::testing::properties::*;
use bootflow_core::{Direction, Registry, rng};

// ---------------------------------------------------------------------------------------------
// RealNVP couplings through the registry

fn registry() -> Registry {
    let mut reg = Registry::new();
    bootflow_realnvp::register(&mut reg).unwrap();
    reg
}

/// Shape, parameter scale, input scale and the seed of the values.
fn shape() -> impl Strategy<Value = (usize, usize, f64, f64, u64)> {
    (2usize..8, 0usize..9, 0.0f64..1.5, prop_oneof![Just(1.0), 0.05f64..6.0], any::<u64>())
}

/// RealNVP affine couplings (random masks, widths, activation, scale bound, initial scale and
/// precision): both round trips and log-det sums, and the flow's sampled log q against its
/// density. Catches the inverse using `exp(s)` where it needs `exp(-s)` or shifting in the
/// wrong order, the conditioner reading an active coordinate (the inverse then sees different
/// inputs from the forward), a log-det sign or a coordinate missing from its sum, the f32
/// conditioner copy going stale or differing between directions in mixed precision, and
/// masks that are not partitions.
#[test]
fn realnvp_round_trips_and_log_dets_cancel() {
    let reg = registry();
    let activation = prop::sample::select(vec!["relu", "tanh", "leaky_relu", "elu", "silu"]);
    let mask = prop::sample::select(vec!["halves", "random", "checkerboard"]);
    let precision = prop::sample::select(vec!["f64", "mixed"]);
    let hidden = prop::collection::vec(1usize..9, 0..3);
    let cfg = (1usize..5, hidden, activation, mask, 0.2f64..3.0, prop_oneof![Just(0.0), 0.0f64..1.0], precision);
    check(
        "realnvp round trip",
        256,
        21,
        (shape(), cfg),
        |((dim, n, ps, xs, seed), (couplings, hidden, act, mask, bound, init, precision))| {
            let mut cfg = json!({"couplings": couplings, "hidden": hidden, "activation": act, "scale_bound": bound,
                                 "init_scale": init, "precision": precision});
            // The checkerboard mask needs dim = L * L: use it on dim 4 only, halves elsewhere.
            if mask == "checkerboard" && dim == 4 {
                cfg["mask"] = json!("checkerboard");
                cfg["lattice"] = json!(2);
            } else {
                cfg["mask"] = json!(if mask == "checkerboard" { "halves" } else { mask });
            }
            check_entry(build(&reg, "realnvp", dim, seed, &cfg), dim, n, ps, xs, seed)
        },
    );
}

/// Freshly built couplings (no randomised parameters) with `init_scale = 0` are the identity
/// with zero log-det, whatever the config. Catches a last layer not starting at zero.
#[test]
fn fresh_realnvp_is_the_identity() {
    let reg = registry();
    check("fresh realnvp", 32, 22, (shape(), 1usize..4), |((dim, n, _, xs, seed), couplings)| {
        let layers = build(&reg, "realnvp", dim, seed, &json!({"couplings": couplings, "hidden": [5]}));
        let z = inputs(dim, n, xs, &mut rng::stream(seed, 1));
        for l in &layers {
            for dir in Direction::BOTH {
                let p = l.pass(dir, &z, false).unwrap();
                prop_assert_eq!(&p.out, &z);
                prop_assert!(p.log_det.iter().all(|&v| v == 0.0));
            }
        }
        Ok(())
    });
}
