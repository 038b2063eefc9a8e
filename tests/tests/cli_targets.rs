//! `bootflow targets` and `bootflow density` on the real binary, including every kind of bad
//! input: each must exit with status 2 and one line naming the cause (for scripts `file:line:col`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bootflow_tests::built;

fn bootflow(args: &[&str]) -> Output {
    Command::new(built::bootflow()).args(args).output().expect("run bootflow")
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Exit status 2 and a single stderr line containing every piece of `expect`.
fn fails_with(out: &Output, expect: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line expected: {err}");
    for e in expect {
        assert!(err.contains(e), "'{e}' missing from: {err}");
    }
}

#[test]
fn targets_lists_builtins_plugins_and_scripts() {
    let dir = scripts();
    let out = bootflow(&["targets", "--json", "--scripts", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["targets"].as_array().unwrap();
    let find =
        |n: &str| rows.iter().find(|r| r["name"].as_str().unwrap().ends_with(n)).unwrap_or_else(|| panic!("{n}"));
    assert_eq!(find("gmm5")["source"], "builtin");
    assert_eq!(find("manywell")["source"], "plugin");
    assert_eq!(find("manywell")["dim"], 32);
    assert_eq!(find("manywell")["has_exact_sampler"], true);
    assert_eq!(find("phi4")["has_gradient"], true);
    assert_eq!(find("funnel.rhai")["source"], "script");
    assert!(find("gmm")["known_log_z"].as_f64().unwrap().abs() < 1e-12);
}

#[test]
fn density_writes_values_and_gradients() {
    let dir = built::temp_dir("density-ok");
    let pts = write(&dir, "p.csv", "x.1,x.2\n0.5,1\n# comment\n1.7,0\n");
    let out = bootflow(&["density", "--target", "double-well", "--points", &pts, "--grad"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "log_prob,grad.1,grad.2");
    // log p~(0.5, 1) = -(a x + b x^2 + c x^4) - y^2/2 with a=-0.5, b=-6, c=1.
    let v: Vec<f64> = lines[1].split(',').map(|s| s.parse().unwrap()).collect();
    assert!((v[0] - 1.1875).abs() < 1e-12 && (v[1] - 6.0).abs() < 1e-12 && (v[2] + 1.0).abs() < 1e-12, "{v:?}");
    assert_eq!(lines.len(), 3);
}

#[test]
fn minus_infinity_is_accepted_and_nan_is_reported() {
    let dir = built::temp_dir("density-inf");
    let pts = write(&dir, "p.csv", "0.5\n-1\n");
    let s = write(
        &dir,
        "halfline.rhai",
        "const DIM = 1;\nfn log_prob(x) { if x[0] < 0.0 { -1.0 / 0.0 } else { -x[0] } }\n",
    );
    let out = bootflow(&["density", "--target", &s, "--points", &pts]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "log_prob\n-0.5\n-inf\n");
    let s = write(&dir, "nan.rhai", "const DIM = 1;\nfn log_prob(x) { sqrt(x[0]) }\n");
    fails_with(&bootflow(&["density", "--target", &s, "--points", &pts]), &["NaN", "point 2"]);
}

#[test]
fn script_errors_name_file_line_and_column() {
    let dir = built::temp_dir("density-scripts");
    let pts = write(&dir, "p.csv", "0.5\n");
    let cases = [
        ("syntax.rhai", "const DIM = 1;\nfn log_prob(x) { x[0] + }\n", "syntax.rhai:2:"),
        ("unknown_fn.rhai", "const DIM = 1;\nfn log_prob(x) { frobnicate(x[0]) }\n", "unknown_fn.rhai:2:"),
        ("missing.rhai", "const DIM = 1;\nfn other(x) { 0.0 }\n", "missing.rhai:1:1"),
        ("string.rhai", "const DIM = 1;\nfn log_prob(x) { \"high\" }\n", "string.rhai:2:"),
    ];
    for (name, text, pos) in cases {
        let s = write(&dir, name, text);
        fails_with(&bootflow(&["density", "--target", &s, "--points", &pts]), &[pos]);
    }
}

#[test]
fn an_endless_loop_is_stopped_by_the_operation_limit() {
    let dir = built::temp_dir("density-loop");
    let pts = write(&dir, "p.csv", "0.5\n");
    let s = write(&dir, "loop.rhai", "const DIM = 1;\nfn log_prob(x) { let s = 0.0; loop { s += 1.0; } s }\n");
    let start = Instant::now();
    let out = bootflow(&["density", "--target", &s, "--points", &pts]);
    fails_with(&out, &["loop.rhai:", "operations"]);
    // The limit is about 0.3 s of work in an optimised build (debug builds are ~10x slower). The
    // bound only tells a stopped script from a hung one: other tests share the cores.
    let bound = if cfg!(debug_assertions) { Duration::from_secs(60) } else { Duration::from_secs(10) };
    assert!(start.elapsed() < bound, "took {:?}", start.elapsed());
}

#[test]
fn bad_points_files_unknown_targets_and_parameters_exit_2() {
    let dir = built::temp_dir("density-bad");
    let wide = write(&dir, "wide.csv", "1,2,3\n");
    fails_with(
        &bootflow(&["density", "--target", "double-well", "--points", &wide]),
        &["wide.csv:1", "expected 2 columns"],
    );
    let word = write(&dir, "word.csv", "1,2\n1,abc\n");
    fails_with(
        &bootflow(&["density", "--target", "double-well", "--points", &word]),
        &["word.csv:2", "'abc' is not a number"],
    );
    let ok = write(&dir, "ok.csv", "1,2\n");
    fails_with(
        &bootflow(&["density", "--target", "no-such-target", "--points", &ok]),
        &["unknown target 'no-such-target'"],
    );
    fails_with(&bootflow(&["density", "--target", "manywell", "--set", "wells=3", "--points", &ok]), &["wells"]);
    let mw = scripts().join("manywell.rhai");
    fails_with(
        &bootflow(&["density", "--target", mw.to_str().unwrap(), "--set", "wells=3", "--points", &ok]),
        &["unknown parameter 'wells'"],
    );
    fails_with(
        &bootflow(&["density", "--target", "double-well", "--points", "/no/such/file.csv"]),
        &["/no/such/file.csv"],
    );
}
