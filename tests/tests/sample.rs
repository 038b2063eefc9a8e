//! `bootflow sample` end to end: the real binary with the real plugin libraries.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bootflow_core::Summary;
use bootflow_core::read_chain_csv;
use bootflow_tests::built;

fn sample(args: &[&str]) -> Output {
    Command::new(built::bootflow()).arg("sample").args(args).output().expect("run bootflow")
}

fn sample_ok(out: &Path, args: &[&str]) -> Summary {
    let o = sample(&[args, &["--out", out.to_str().unwrap()]].concat());
    assert!(o.status.success(), "bootflow sample {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    Summary::read(&out.join("summary.json")).unwrap()
}

#[test]
fn hmc_on_a_gaussian_writes_chain_files_and_a_summary() {
    let dir = built::temp_dir("sample-gaussian");
    let s = sample_ok(
        &dir,
        &[
            "--target", "gaussian", "--set", "dim=3", "--method", "hmc", "--chains", "4", "--draws", "500", "--seed",
            "3",
        ],
    );
    for c in 1..=4 {
        let chain = read_chain_csv(&dir.join(format!("chain_{c}.csv"))).unwrap();
        assert_eq!(chain.columns, ["lp__", "accept_stat__", "x.1", "x.2", "x.3"]);
        assert_eq!(chain.rows.len(), 500);
        assert_eq!(chain.meta("method"), Some("hmc"));
        assert_eq!(chain.meta("seed"), Some("3"));
        assert!(chain.meta("config").is_some_and(|c| c.contains("\"n_leapfrog\":10")));
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for key in ["method", "chains", "draws", "seed", "seconds", "acceptance", "quantities", "importance", "config"] {
        assert!(v.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!((s.method.as_str(), s.chains, s.draws), ("hmc", 4, 500));
    // Standard normal coordinates: each mean within 4 MCSE of 0.
    for name in ["x.1", "x.2", "x.3"] {
        let q = s.quantities.get(name).unwrap();
        assert!(q.mean.abs() < 4.0 * q.mcse_mean, "{name}: {q:?}");
        assert!(q.rhat < 1.05, "{name}: {q:?}");
    }
    let a = s.acceptance.unwrap();
    assert!((0.6..0.95).contains(&a), "dual averaging aims at 0.8, got {a}");
}

#[test]
fn a_killed_sampler_leaves_only_complete_rows() {
    let dir = built::temp_dir("sample-kill");
    let mut child = Command::new(built::bootflow())
        .args(["sample", "--target", "gaussian", "--set", "dim=5", "--method", "rwm", "--chains", "3"])
        .args(["--draws", "10000000", "--warmup", "0", "--out", dir.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = dir.join("chain_1.csv");
    let started = Instant::now();
    while std::fs::read_to_string(&first).map_or(0, |t| t.lines().count()) < 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "no rows after 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL on Unix: no chance to tidy up
    child.wait().unwrap();
    for c in 1..=3 {
        let path = dir.join(format!("chain_{c}.csv"));
        let text = std::fs::read_to_string(&path).unwrap();
        let chain = read_chain_csv(&path).unwrap();
        assert!(!chain.rows.is_empty(), "chain {c} has no rows");
        // Every newline-terminated data line is a complete row: the reader parsed them all
        // (it refuses a short row); only an unterminated last fragment may be dropped.
        let complete_lines = text.split_inclusive('\n').filter(|l| l.ends_with('\n') && !l.starts_with('#')).count();
        assert_eq!(chain.rows.len(), complete_lines - 1, "chain {c}");
        assert!(chain.rows.iter().all(|r| r.len() == 2 + 5 && r.iter().all(|v| v.is_finite())));
    }
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let dir = built::temp_dir("sample-bad");
    let out = dir.to_str().unwrap();
    // The fixture plugin's `panics` target has no gradient (and is never evaluated here).
    let plugins = built::temp_dir("sample-bad-plugins");
    let lib = built::library("fixture_sample_plugin");
    std::fs::copy(&lib, plugins.join(lib.file_name().unwrap())).unwrap();
    let plugin_dir = plugins.to_str().unwrap();
    let cases: [&[&str]; 7] = [
        &["--target", "gaussian", "--method", "slice", "--out", out],
        &["--target", "gaussian", "--method", "hmc", "--chains", "many", "--out", out],
        &["--target", "gaussian", "--method", "mis", "--out", out],
        &["--target", "gaussian", "--method", "hmc", "--chains", "0", "--out", out],
        &["--target", "panics", "--plugin-dir", plugin_dir, "--method", "hmc", "--out", out],
        &["--target", "no-such-target", "--method", "rwm", "--out", out],
        &["--target", "gaussian", "--set", "dim=2", "--method", "hmc", "--kernel-set", "n_leapfrog=0", "--out", out],
    ];
    for args in cases {
        let o = sample(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}

/// Whether `value` is within 3 combined standard errors of `truth`: the run's MCSE and the
/// reference's own error added in quadrature.
fn within_3_combined(name: &str, q: &bootflow_core::QuantitySummary, truth: f64, truth_err: f64) {
    let se = (q.mcse_mean.powi(2) + truth_err.powi(2)).sqrt();
    assert!(q.mcse_mean.is_finite() && q.mcse_mean > 0.0, "{name}: {q:?}");
    assert!(
        (q.mean - truth).abs() < 3.0 * se,
        "{name} = {} +- {}, reference {truth} +- {truth_err}",
        q.mean,
        q.mcse_mean
    );
}

/// The batched HMC setting of the reference runs: 10 leapfrog steps of 0.1 jittered uniformly in
/// [0.06, 0.14], unit mass, many independent chains.
const PHI4_HMC: [&str; 14] = [
    "--target",
    "phi4",
    "--method",
    "hmc",
    "--chains",
    "256",
    "--draws",
    "300",
    "--warmup",
    "200",
    "--kernel-set",
    "step_size=0.1",
    "--kernel-set",
    "jitter=0.4",
];

#[test]
#[cfg_attr(debug_assertions, ignore = "about 4 minutes unoptimised; CI runs the suite with --release")]
fn phi4_hmc_reproduces_the_reference_values() {
    let dir = built::temp_dir("sample-phi4");
    let s = sample_ok(
        &dir,
        &[&PHI4_HMC[..], &["--set", "L=8", "--set", "m2=-4", "--set", "lambda=8", "--seed", "11"]].concat(),
    );
    // docs/targets.md §1.1, L = 8, m2 = -4, lambda = 8 (tutorial normalisation).
    within_3_combined("chi2", s.quantities.get("chi2").unwrap(), 0.7446, 0.0011);
    within_3_combined("abs_M", s.quantities.get("abs_M").unwrap(), 0.08706, 0.00007);
    let a = s.acceptance.unwrap();
    assert!((0.7..0.9).contains(&a), "acceptance {a}");
}

#[test]
#[cfg_attr(debug_assertions, ignore = "about 2 minutes unoptimised; CI runs the suite with --release")]
fn free_field_susceptibility_is_one_over_two_m2() {
    for l in ["L=6", "L=8"] {
        let dir = built::temp_dir(&format!("sample-free-{l}"));
        let s = sample_ok(
            &dir,
            &[&PHI4_HMC[..], &["--set", l, "--set", "m2=0.5", "--set", "lambda=0", "--seed", "5"]].concat(),
        );
        // <M^2>/V = 1 / (2 m2) = 1 exactly; the only error is the run's MCSE.
        within_3_combined(&format!("chi2 at {l}"), s.quantities.get("chi2").unwrap(), 1.0, 0.0);
    }
}

#[test]
fn mis_and_mis_ais_with_a_trained_flow() {
    let dir = built::temp_dir("sample-mis");
    let config = dir.join("train.toml");
    std::fs::write(
        &config,
        // flow.init none: the test wants a flow near the target but not equal to it.
        "seed = 1\n[target]\nname = \"gaussian\"\nmean = [1.0, -2.0]\nstd = [0.5, 2.0]\n\
         [flow]\ninit = \"none\"\nlayers = [{ type = \"affine\" }]\n[objective]\nname = \"kl\"\nestimator = \"g2\"\nbatch = 64\n\
         [train]\nsteps = 40\nlr = 0.05\nlog_every = 10\n",
    )
    .unwrap();
    let run = dir.join("run");
    let o = Command::new(built::bootflow()).arg("train").arg(&config).arg("--out").arg(&run).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let flow = run.join("checkpoint.json");
    let target = ["--target", "gaussian", "--set", "mean=[1.0, -2.0]", "--set", "std=[0.5, 2.0]"];
    for method in ["mis", "mis-ais"] {
        let out = dir.join(method);
        let args = [
            &target[..],
            &[
                "--method",
                method,
                "--ais-steps",
                "4",
                "--chains",
                "4",
                "--draws",
                "1000",
                "--flow",
                flow.to_str().unwrap(),
            ],
        ];
        let s = sample_ok(&out, &args.concat());
        assert_eq!(read_chain_csv(&out.join("chain_4.csv")).unwrap().rows.len(), 1000);
        // Means within 4 MCSE of the target's.
        for (name, truth) in [("x.1", 1.0), ("x.2", -2.0)] {
            let q = s.quantities.get(name).unwrap();
            assert!((q.mean - truth).abs() < 4.0 * q.mcse_mean, "{method} {name}: {q:?}");
        }
        // The target is normalised: log Z = 0 within 4 of its standard errors. The briefly trained
        // flow is close to the target but not equal, so some proposals are refused.
        let imp = s.importance.expect("importance results");
        assert!(imp.log_z.abs() < 4.0 * imp.log_z_se, "{method}: {imp:?}");
        assert!(imp.ess > 0.1 && imp.ess < 0.999, "{method}: {imp:?}");
        let a = s.acceptance.unwrap();
        assert!(a > 0.1 && a < 0.999, "{method}: acceptance {a}");
    }
}
