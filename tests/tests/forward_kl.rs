//! Forward KL from sample files end to end: exact draws written by `bootflow sample --method
//! exact`, a flow trained on them with both forward-KL estimators (held-out mean log q in
//! metrics.csv), `bootflow gradvar` on the result, and the bad inputs of each step.

use std::path::Path;
use std::process::{Command, Output};

use bootflow_core::{Summary, read_chain_csv};
use bootflow_tests::built;
use serde_json::Value;

const MEAN: [f64; 2] = [1.5, -0.5];
const STD: [f64; 2] = [0.7, 2.0];

fn bootflow(args: &[&str]) -> Output {
    Command::new(built::bootflow()).args(args).output().expect("run bootflow")
}

fn ok(args: &[&str]) -> Output {
    let o = bootflow(args);
    assert!(o.status.success(), "bootflow {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// Exit status 2 and one stderr line containing every piece of `expect`.
fn fails_with(args: &[&str], expect: &[&str]) {
    let o = bootflow(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "bootflow {args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line expected: {err}");
    for e in expect {
        assert!(err.contains(e), "'{e}' missing from: {err}");
    }
}

fn target_sets() -> Vec<String> {
    vec!["--set".into(), format!("mean={MEAN:?}"), "--set".into(), format!("std={STD:?}")]
}

fn exact_draws(out: &Path, chains: &str, draws: &str) -> Summary {
    let mut args: Vec<String> = ["sample", "--target", "gaussian", "--method", "exact"].map(String::from).to_vec();
    args.extend(target_sets());
    args.extend(
        ["--chains", chains, "--draws", draws, "--seed", "5", "--out", out.to_str().unwrap()].map(String::from),
    );
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    Summary::read(&out.join("summary.json")).unwrap()
}

fn config(dir: &Path, samples: &Path, estimator: &str) -> String {
    let p = dir.join(format!("forward-{estimator}.toml"));
    let glob = samples.join("chain_*.csv");
    std::fs::write(
        &p,
        format!(
            "seed = 2\n[target]\nname = \"gaussian\"\nmean = {MEAN:?}\nstd = {STD:?}\n\
             [flow]\ninit = \"none\"\nlayers = [{{ type = \"affine\" }}]\n\
             [objective]\nname = \"forward-kl\"\nestimator = \"{estimator}\"\nbatch = 64\nsamples = \"{}\"\n\
             [train]\nsteps = 400\nlr = 0.05\nlog_every = 100\n",
            glob.display()
        ),
    )
    .unwrap();
    p.display().to_string()
}

/// The last logged held-out mean log q of a run.
fn last_test_mean_log_q(run: &Path) -> f64 {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "test_mean_log_q").expect("a test_mean_log_q column");
    text.lines().last().unwrap().split(',').nth(col).unwrap().parse().unwrap()
}

#[test]
fn exact_draws_train_a_flow_with_both_forward_estimators() {
    let dir = built::temp_dir("forward-kl");
    let samples = dir.join("exact");
    let s = exact_draws(&samples, "4", "1000");
    assert_eq!((s.method.as_str(), s.chains, s.draws, s.acceptance), ("exact", 4, 1000, Some(1.0)));
    for (i, name) in ["x.1", "x.2"].into_iter().enumerate() {
        let q = s.quantities.get(name).unwrap();
        assert!((q.mean - MEAN[i]).abs() < 4.0 * q.mcse_mean, "{name}: {q:?}");
        // Independent draws: an ESS near the draw count.
        assert!(q.ess_bulk > 3000.0, "{name}: {q:?}");
    }
    let chain = read_chain_csv(&samples.join("chain_2.csv")).unwrap();
    assert_eq!(chain.columns, ["lp__", "accept_stat__", "x.1", "x.2"]);
    assert_eq!((chain.rows.len(), chain.meta("method")), (1000, Some("exact")));

    // -E_p[log p] is the entropy: the best mean log q any flow can reach on held-out draws.
    let best = -STD.iter().map(|s| 0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E * s * s).ln()).sum::<f64>();
    for estimator in ["ml", "path"] {
        let run = dir.join(format!("run-{estimator}"));
        ok(&["train", &config(&dir, &samples, estimator), "--out", run.to_str().unwrap()]);
        let got = last_test_mean_log_q(&run);
        // 400 held-out draws: the standard error of their mean log p is about 0.05.
        assert!((got - best).abs() < 0.2, "{estimator}: held-out mean log q {got}, best {best}");
    }

    let run = dir.join("run-ml");
    let out = ok(&[
        "gradvar",
        run.to_str().unwrap(),
        "--estimators",
        "g2,path,fast-path,ml,forward-path",
        "--batches",
        "40",
        "--samples",
        "2000",
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["step"].as_u64(), v["batch"].as_u64(), v["params"].as_u64()), (Some(400), Some(64), Some(4)));
    let rows = v["estimators"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["estimator"].as_str().unwrap()).collect();
    assert_eq!(names, ["g2", "path", "fast-path", "ml", "forward-path"]);
    for r in rows {
        let var = r["variance"].as_f64().unwrap();
        assert!(var > 0.0 && var.is_finite() && (r["sd"].as_f64().unwrap() - var.sqrt()).abs() < 1e-15, "{r}");
    }
    // Near q = p the path estimators are below the score-function and ML ones.
    let var = |i: usize| rows[i]["variance"].as_f64().unwrap();
    assert!(var(1) < 0.5 * var(0) && var(2) < 0.5 * var(0) && var(4) < 0.1 * var(3), "{rows:?}");
    assert!(v["signal_sd"].as_f64().unwrap() < 0.2, "{v}");

    let run_arg = run.to_str().unwrap();
    fails_with(&["gradvar", run_arg, "--estimators", "g2,g4"], &["--estimators", "g4"]);
    fails_with(&["gradvar", run_arg, "--batches", "1"], &["--batches 1"]);
    fails_with(&["gradvar", "/nonexistent/run"], &["/nonexistent/run"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_inputs_of_exact_sampling_and_sample_files_fail_in_one_line() {
    let dir = built::temp_dir("forward-kl-bad");
    let out = dir.join("phi4");
    let o = out.to_str().unwrap();
    fails_with(&["sample", "--target", "phi4", "--method", "exact", "--out", o], &["exact", "no exact sampler"]);
    assert!(!out.join("summary.json").exists());
    fails_with(
        &["sample", "--target", "gaussian", "--method", "exact", "--flow", "x.json", "--out", o],
        &["--flow is only used by"],
    );

    // Three-dimensional draws for a two-dimensional target; then no file at all.
    let three = dir.join("three");
    ok(&[
        "sample",
        "--target",
        "gaussian",
        "--set",
        "dim=3",
        "--method",
        "exact",
        "--draws",
        "50",
        "--out",
        three.to_str().unwrap(),
    ]);
    let run = dir.join("run");
    fails_with(
        &["train", &config(&dir, &three, "ml"), "--out", run.to_str().unwrap()],
        &["forward-kl samples", "3", "2"],
    );
    fails_with(
        &["train", &config(&dir, &dir.join("none"), "ml"), "--out", run.to_str().unwrap()],
        &["samples", "no file matches"],
    );
    assert!(!run.join("checkpoint.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
