//! `bootflow optimize` and `bootflow sample --method laplace` end to end, on targets whose modes
//! and normalising constants are known in closed form.

use std::path::Path;
use std::process::{Command, Output};

use bootflow_tests::built;
use serde_json::Value;

fn bootflow(args: &[&str]) -> Output {
    Command::new(built::bootflow()).args(args).output().expect("run bootflow")
}

fn json_out(args: &[&str]) -> Value {
    let o = bootflow(args);
    assert!(o.status.success(), "bootflow {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(name).display().to_string()
}

/// The double well's `log p~` along its first coordinate (scripts/double_well.rhai, defaults).
fn double_well(x: f64) -> f64 {
    -(-0.5 * x - 6.0 * x * x + x.powi(4))
}

/// The two wells: the roots of `d/dx log p~ = 0.5 + 12 x - 4 x^3` outside the barrier, by bisection.
fn wells() -> [f64; 2] {
    let slope = |x: f64| 0.5 + 12.0 * x - 4.0 * x.powi(3);
    let root = |mut lo: f64, mut hi: f64| {
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if slope(lo).signum() == slope(mid).signum() { lo = mid } else { hi = mid }
        }
        0.5 * (lo + hi)
    };
    [root(1.0, 3.0), root(-3.0, -1.0)]
}

#[test]
fn optimize_finds_both_wells_of_the_double_well_best_first() {
    let found =
        json_out(&["optimize", "--target", &script("double_well.rhai"), "--starts", "8", "--seed", "2", "--json"]);
    let modes = found["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 2, "{found}");
    let mut starts = 0;
    for (mode, well) in modes.iter().zip(wells()) {
        let x: Vec<f64> = serde_json::from_value(mode["x"].clone()).unwrap();
        assert!((x[0] - well).abs() < 1e-6 && x[1].abs() < 1e-6, "mode {x:?}, expected ({well}, 0)");
        let log_p = mode["log_p"].as_f64().unwrap();
        assert!((log_p - double_well(well)).abs() < 1e-9, "log p~ {log_p} vs {}", double_well(well));
        starts += mode["starts"].as_array().unwrap().len();
    }
    assert_eq!(starts, 8, "every start ends in one of the wells: {found}");
    assert!(found["failed"].as_array().unwrap().is_empty());
}

#[test]
fn laplace_of_a_gaussian_is_exact_and_of_the_double_well_warns() {
    let dir = built::temp_dir("laplace-gaussian");
    let o = bootflow(&[
        "sample",
        "--target",
        "gaussian",
        "--set",
        "mean=[1,-2]",
        "--set",
        "std=[0.5,3]",
        "--method",
        "laplace",
        "--chains",
        "4",
        "--draws",
        "2000",
        "--seed",
        "5",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = summary(&dir);
    // The approximation is the (normalised) target itself: every weight is 1, log Z = 0.
    assert!((s["importance"]["ess"].as_f64().unwrap() - 1.0).abs() < 1e-9, "{}", s["importance"]);
    assert!(s["importance"]["log_z"].as_f64().unwrap().abs() < 1e-7, "{}", s["importance"]);
    let exact_log_det = 2.0 * (0.5f64.ln() + 3f64.ln());
    assert!((s["laplace"]["log_det_covariance"].as_f64().unwrap() - exact_log_det).abs() < 1e-6, "{}", s["laplace"]);
    for (name, mean, sd) in [("x.1", 1.0, 0.5), ("x.2", -2.0, 3.0)] {
        let q = &s["quantities"][name];
        let (m, se) = (q["mean"].as_f64().unwrap(), q["mcse_mean"].as_f64().unwrap());
        assert!((m - mean).abs() < 4.0 * se, "{name}: mean {m} +- {se}, expected {mean}");
        // 8000 independent draws: the sd's standard error is about sd / sqrt(2 * 8000).
        let got = q["sd"].as_f64().unwrap();
        assert!((got / sd - 1.0).abs() < 4.0 / 16000f64.sqrt(), "{name}: sd {got}, expected {sd}");
    }
    assert!(s["warnings"].as_array().unwrap().is_empty(), "{}", s["warnings"]);

    // Two wells: the Gaussian sits in the deeper one, and the summary says what it misses.
    let dir = built::temp_dir("laplace-double-well");
    let o = bootflow(&[
        "sample",
        "--target",
        &script("double_well.rhai"),
        "--method",
        "laplace",
        "--chains",
        "2",
        "--draws",
        "500",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = summary(&dir);
    let mode: Vec<f64> = serde_json::from_value(s["laplace"]["mode"].clone()).unwrap();
    assert!((mode[0] - wells()[0]).abs() < 1e-6, "{mode:?}");
    assert_eq!(s["laplace"]["modes_found"], 2);
    let warned = s["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("found 2 modes"));
    assert!(warned, "{}", s["warnings"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("found 2 modes"), "the warning is printed too");
}
