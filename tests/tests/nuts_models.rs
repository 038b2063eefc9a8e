//! `bootflow sample --method nuts` on ordinary Bayesian models written as Rhai scripts: Neal's
//! funnel (non-centred, known answer) and eight schools, centred and non-centred, against the
//! long reference run of docs/targets.md ("Eight schools").

use std::path::Path;
use std::process::Command;

use bootflow_tests::built;
use serde_json::Value;

fn nuts(script: &str, name: &str, extra: &[&str]) -> Value {
    let dir = built::temp_dir(name);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(script);
    let o = Command::new(built::bootflow())
        .args(["sample", "--target", script.to_str().unwrap(), "--method", "nuts", "--chains", "8"])
        .args(extra)
        .args(["--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// `q`'s mean within 4 combined standard errors of `truth +- truth_se`, and (when given) its sd
/// within 4 standard errors of `sd` (the sd's error taken as `sd / sqrt(2 ESS)`).
fn check(s: &Value, name: &str, truth: f64, truth_se: f64, sd: Option<f64>) {
    let q = &s["quantities"][name];
    let se = f(&q["mcse_mean"]).hypot(truth_se);
    assert!((f(&q["mean"]) - truth).abs() < 4.0 * se, "{name}: mean {} +- {se}, expected {truth}", q["mean"]);
    if let Some(sd) = sd {
        let tol = 4.0 * sd / (2.0 * f(&q["ess_bulk"])).sqrt();
        assert!((f(&q["sd"]) - sd).abs() < tol, "{name}: sd {}, expected {sd} +- {tol}", q["sd"]);
    }
}

#[test]
fn the_non_centred_funnel_has_its_exact_moments() {
    let s = nuts("funnel_noncentred.rhai", "nuts-funnel", &["--draws", "1000", "--seed", "2"]);
    check(&s, "x.1", 0.0, 0.0, Some(3.0));
    for i in 2..=10 {
        check(&s, &format!("x.{i}"), 0.0, 0.0, Some(1.0));
    }
    assert_eq!(f(&s["tuning"]["divergences"]), 0.0, "{}", s["tuning"]);
}

#[test]
fn eight_schools_non_centred_matches_the_reference_and_centred_reports_its_divergences() {
    let s =
        nuts("eight_schools_noncentred.rhai", "nuts-8s-nc", &["--draws", "2000", "--warmup", "1000", "--seed", "3"]);
    // docs/targets.md, "Eight schools": mu 4.3879(55), sd 3.3216; log tau 0.8027(29), sd 1.1692.
    check(&s, "x.1", 4.3879, 0.0055, Some(3.3216));
    check(&s, "x.2", 0.8027, 0.0029, Some(1.1692));
    let centred = nuts("eight_schools.rhai", "nuts-8s-c", &["--draws", "2000", "--warmup", "1000", "--seed", "3"]);
    let divergences = f(&centred["tuning"]["divergences"]);
    assert!(divergences > 0.0, "the centred funnel's neck makes NUTS diverge: {}", centred["tuning"]);
    let warned = centred["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().starts_with(&format!("{divergences:.0} divergent transitions after warm-up")));
    assert!(warned, "{}", centred["warnings"]);
}
