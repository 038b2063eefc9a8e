//! R-hat, bulk/tail ESS and MCSE agree with ArviZ on committed chain sets.
//! The fixtures come from `fixtures/make_arviz_fixture.py`; Python is not needed to run this.

use bootflow_core::{ess_bulk, ess_mean, ess_tail, mcse_mean, rhat};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn chains_of(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .expect("chain list")
        .iter()
        .map(|c| c.as_array().expect("draws").iter().map(|d| d.as_f64().expect("number")).collect())
        .collect()
}

#[test]
fn diagnostics_match_arviz_within_1e_minus_6() {
    let chains = load("arviz_chains.json");
    let expected = load("arviz_expected.json");
    let sets = expected["sets"].as_object().expect("sets");
    assert!(sets.len() >= 8);
    let mut worst = (0.0f64, String::new());
    for (name, want) in sets {
        let c = chains_of(&chains["sets"][name]);
        let got = [
            ("rhat", rhat(&c).unwrap()),
            ("ess_bulk", ess_bulk(&c).unwrap()),
            ("ess_tail", ess_tail(&c).unwrap()),
            ("ess_mean", ess_mean(&c).unwrap()),
            ("mcse_mean", mcse_mean(&c).unwrap()),
        ];
        for (key, value) in got {
            let w = want[key].as_f64().expect("expected value");
            let rel = (value - w).abs() / w.abs();
            if rel > worst.0 {
                worst = (rel, format!("{name}/{key}"));
            }
            assert!(rel < 1e-6, "{name} {key}: ours {value}, ArviZ {w} (relative {rel:e})");
        }
    }
    println!(
        "ArviZ {}: max relative deviation {:e} at {}",
        expected["arviz_version"].as_str().unwrap_or("?"),
        worst.0,
        worst.1
    );
}
