//! The example scripts and the compiled plugins define the same targets: values and gradients
//! agree to 1e-12 relative on random points.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bootflow_core::ScriptTarget;
use bootflow_core::{Batch, Registry, Target, rng, testing};
use bootflow_tests::built;
use serde_json::{Value, json};

fn plugin_target(lib: &str, name: &str, cfg: Value) -> Box<dyn Target> {
    let plugin = bootflow_core::plugin::load(&built::library(lib)).unwrap();
    let mut reg = Registry::new();
    plugin.register_into(&mut reg).unwrap();
    reg.target(name, &cfg).unwrap()
}

fn script(name: &str, params: &[(&str, Value)]) -> ScriptTarget {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(name);
    let params: BTreeMap<String, Value> = params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    ScriptTarget::from_file(&path, &params).unwrap()
}

fn agree(a: &dyn Target, b: &dyn Target, x: &Batch) {
    let (d, n) = x.shape();
    let (mut la, mut lb) = (vec![0.0; n], vec![0.0; n]);
    let (mut ga, mut gb) = (Batch::zeros(d, n), Batch::zeros(d, n));
    a.log_prob_grad_batch(x, &mut la, &mut ga).unwrap();
    b.log_prob_grad_batch(x, &mut lb, &mut gb).unwrap();
    let rel = |u: f64, v: f64| (u - v).abs() / u.abs().max(v.abs()).max(1e-300);
    let worst_value = la.iter().zip(&lb).map(|(u, v)| rel(*u, *v)).fold(0.0, f64::max);
    assert!(worst_value < 1e-12, "values differ: {worst_value}");
    for j in 0..n {
        let scale = ga.column(j).amax().max(1e-300);
        let worst = (ga.column(j) - gb.column(j)).amax() / scale;
        assert!(worst < 1e-12, "gradients differ at point {j}: {worst}");
    }
}

#[test]
fn manywell_script_equals_the_manywell_plugin() {
    let plugin = plugin_target("bootflow_manywell", "manywell", json!({"dim": 32}));
    let script = script("manywell.rhai", &[("DIM", json!(32))]);
    let mut r = rng::stream(1, 0);
    let mut x = testing::random_batch(32, 1000, &mut r);
    x *= 1.5;
    agree(plugin.as_ref(), &script, &x);
}

#[test]
fn phi4_script_equals_the_phi4_plugin_on_a_4x4_lattice() {
    let plugin = plugin_target("bootflow_phi4", "phi4", json!({"L": 4, "m2": -4.0, "lambda": 8.0}));
    let script = script("phi4.rhai", &[("L", json!(4)), ("m2", json!(-4.0)), ("lambda", json!(8.0))]);
    let mut r = rng::stream(2, 0);
    let x = testing::random_batch(16, 1000, &mut r);
    agree(plugin.as_ref(), &script, &x);
}
