//! `bootflow sample --method flow-mcmc` on a two-mode mixture whose modes lie sixteen standard
//! deviations apart: NUTS alone keeps each chain in the mode it starts in; with the global moves
//! of the flow trained during warm-up every chain visits both modes in the right proportion.

use std::path::{Path, PathBuf};
use std::process::Command;

use bootflow_core::read_chain_csv;
use bootflow_tests::built;
use serde_json::Value;

/// `0.3 N((-8, 0), I) + 0.7 N((8, 0), I)`: the first coordinate has mean 3.2 and variance
/// 1 + 64 - 3.2^2 = 54.76.
const MIXTURE: [&str; 6] =
    ["--target", "mixture", "--set", "means=[[-8.0, 0.0], [8.0, 0.0]]", "--set", "weights=[0.3, 0.7]"];
const MEAN: f64 = 3.2;
const SD: f64 = 7.4;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bootflow-flow-mcmc-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn sample(method: &str, out: &Path) -> Value {
    let mut args: Vec<&str> = vec!["sample"];
    args.extend(MIXTURE);
    let out_s = out.to_str().unwrap();
    args.extend(["--method", method, "--chains", "8", "--draws", "1000", "--warmup", "400", "--seed", "1"]);
    args.extend(["--init-scale", "6", "--out", out_s]);
    let o = Command::new(built::bootflow()).args(&args).output().expect("run bootflow");
    assert!(o.status.success(), "{method}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

/// Each chain's fraction of draws in the right-hand mode.
fn right_hand_fractions(out: &Path) -> Vec<f64> {
    (1..=8)
        .map(|c| {
            let x = read_chain_csv(&out.join(format!("chain_{c}.csv"))).unwrap().column("x.1").unwrap();
            x.iter().filter(|v| **v > 0.0).count() as f64 / x.len() as f64
        })
        .collect()
}

#[test]
fn flow_mcmc_moves_every_chain_between_modes_nuts_cannot_cross() {
    let out = scratch("flow");
    let s = sample("flow-mcmc", &out);
    let x = &s["quantities"]["x.1"];
    let (mean, mcse, rhat) =
        (x["mean"].as_f64().unwrap(), x["mcse_mean"].as_f64().unwrap(), x["rhat"].as_f64().unwrap());
    assert!((mean - MEAN).abs() < 4.0 * mcse, "mean {mean} +- {mcse}, exact {MEAN}");
    assert!((x["sd"].as_f64().unwrap() / SD - 1.0).abs() < 0.1, "{x}");
    assert!(rhat < 1.01, "R-hat {rhat}");
    let global = s["flow_mcmc"]["global_accept"].as_f64().unwrap();
    assert!(global > 0.3, "global moves accepted {global}: {}", s["flow_mcmc"]);
    for (c, f) in right_hand_fractions(&out).iter().enumerate() {
        assert!((0.5..0.9).contains(f), "chain {}: {f} of its draws in the 0.7-weight mode", c + 1);
    }

    // The same chains with NUTS alone never cross: each stays where it started.
    let out = scratch("nuts");
    let s = sample("nuts", &out);
    let stuck = right_hand_fractions(&out);
    assert!(stuck.iter().all(|f| *f == 0.0 || *f == 1.0), "{stuck:?}");
    assert!(s["quantities"]["x.1"]["rhat"].as_f64().unwrap() > 1.2, "{}", s["quantities"]["x.1"]);
}
