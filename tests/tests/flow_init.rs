//! `flow.init` end to end: what the default chooses on a model with a mode and on one without,
//! that the run records the fitted layer (so sampling rebuilds the flow and a resumed run does
//! not fit again), and a bad value.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bootflow_tests::built;
use serde_json::Value;

fn bootflow(args: &[&str]) -> Output {
    Command::new(built::bootflow()).args(args).output().expect("run bootflow")
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(name).display().to_string()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bootflow-flow-init-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A short KL run on `target` with a small spline flow and `extra` config lines in `[flow]`.
fn config(dir: &Path, target: &str, steps: u64, extra: &str) -> PathBuf {
    let path = dir.join("run.toml");
    let text = format!(
        "seed = 3\n[target]\nname = \"{target}\"\n[flow]\n{extra}\nlayers = [{{ type = \"spline\", couplings = 2, \
         bins = 4, bound = 5.0, hidden = [8] }}]\n[objective]\nname = \"kl\"\nestimator = \"g3\"\nbatch = 32\n\
         [train]\nsteps = {steps}\nlr = 1e-3\nlog_every = 5\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn last_layer(run: &Path) -> Value {
    let c: Value = serde_json::from_str(&std::fs::read_to_string(run.join("checkpoint.json")).unwrap()).unwrap();
    c["flow"]["spec"]["layers"].as_array().unwrap().last().unwrap().clone()
}

/// The centred eight schools has no mode (its density grows without bound down the funnel):
/// the default says the Laplace fit failed and fits a NUTS warm-up instead; the run records
/// the layer, MIS rebuilds the flow from it, and `--resume` continues without fitting again.
#[test]
fn the_default_falls_back_to_a_nuts_warmup_where_there_is_no_mode() {
    let dir = scratch("centred");
    let cfg = config(&dir, &script("eight_schools.rhai"), 10, "");
    let run = dir.join("run");
    let o = bootflow(&["train", cfg.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let line = err.lines().find(|l| l.starts_with("flow.init: ")).unwrap_or_else(|| panic!("no flow.init line: {err}"));
    assert!(line.contains("warmup") && line.contains("the default laplace found no Gaussian"), "{line}");
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["flow_init"].as_str(), line.strip_prefix("flow.init: "), "{summary}");
    let layer = last_layer(&run);
    assert_eq!(layer["type"], "cholesky", "{layer}");
    assert!(layer["note"].as_str().unwrap().starts_with("warmup"), "{layer}");
    // log tau's fitted scale is of order one, mu's and the thetas' several units.
    let lower = layer["lower"].as_array().unwrap();
    let diag = |i: usize| lower[i][i].as_f64().unwrap();
    assert!(diag(0) > 1.0 && (0.2..3.0).contains(&diag(1)), "{layer}");

    let mis = dir.join("mis");
    let ckpt = run.join("checkpoint.json");
    let o = bootflow(&[
        "sample",
        "--target",
        &script("eight_schools.rhai"),
        "--method",
        "mis",
        "--flow",
        ckpt.to_str().unwrap(),
        "--chains",
        "2",
        "--draws",
        "50",
        "--out",
        mis.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    let longer = config(&dir, &script("eight_schools.rhai"), 20, "");
    let o = bootflow(&["train", longer.to_str().unwrap(), "--out", run.to_str().unwrap(), "--resume"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("flow.init"), "a resumed run fitted again: {err}");
    assert_eq!(last_layer(&run), layer, "the resumed run changed the recorded layer");
}

/// The non-centred form has a mode: the default is the Laplace fit there; `none` fits nothing
/// and says nothing; a bad value is one line naming the key, exit status 2.
#[test]
fn the_default_is_laplace_where_there_is_a_mode_and_none_or_bad_values_are_honoured() {
    let dir = scratch("noncentred");
    let target = script("eight_schools_noncentred.rhai");
    let run = dir.join("laplace");
    let o = bootflow(&["train", config(&dir, &target, 5, "").to_str().unwrap(), "--out", run.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("flow.init: laplace at the mode"), "{err}");
    assert_eq!(last_layer(&run)["type"], "cholesky");

    let run = dir.join("none");
    let o = bootflow(&[
        "train",
        config(&dir, &target, 5, "init = \"none\"").to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success() && !stderr(&o).contains("flow.init"), "{}", stderr(&o));
    assert_eq!(last_layer(&run)["type"], "spline");

    let run = dir.join("bad");
    let o = bootflow(&[
        "train",
        config(&dir, &target, 5, "init = \"hessian\"").to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("init") && err.contains("laplace"), "{err}");
    assert!(!run.exists(), "a refused config wrote {}", run.display());
}
