//! `precision` of a `realnvp` entry through the real binary and plugin library: `mixed` trains,
//! any other value exits 2 with one line naming the key.

use std::process::Command;

use bootflow_tests::built;

fn config(precision: &str) -> String {
    format!(
        r#"
seed = 1
[target]
name = "gmm5"
[flow]
layers = [{{ type = "realnvp", couplings = 2, hidden = [8], precision = "{precision}" }}]
[objective]
name = "kl"
estimator = "g3"
batch = 32
[train]
steps = 3
"#
    )
}

fn train(precision: &str, dir: &std::path::Path) -> std::process::Output {
    let cfg = dir.join(format!("{precision}.toml"));
    std::fs::write(&cfg, config(precision)).unwrap();
    let out = dir.join(precision);
    Command::new(built::bootflow())
        .args(["train", cfg.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .expect("run bootflow")
}

#[test]
fn mixed_trains_and_a_bad_value_is_a_config_error() {
    let dir = built::temp_dir("mixed-precision");
    let ok = train("mixed", &dir);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(dir.join("mixed/checkpoint.json").exists());
    let bad = train("f32", &dir);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("precision") && err.contains("f32") && err.contains("flow.layers[0]"), "{err}");
}
