//! `bootflow new-plugin` end to end: the scaffolded crate builds and passes its own tests with a
//! plain `cargo`, `bootflow` finds the library through `BOOTFLOW_PLUGIN_PATH`, lists it, and
//! trains a flow on its example target.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bootflow_tests::built;
use serde_json::Value;

fn bootflow(args: &[&str], plugin_path: Option<&Path>) -> Output {
    let mut cmd = Command::new(built::bootflow());
    cmd.args(args);
    match plugin_path {
        Some(p) => cmd.env("BOOTFLOW_PLUGIN_PATH", p),
        None => cmd.env_remove("BOOTFLOW_PLUGIN_PATH"),
    };
    cmd.output().expect("run bootflow")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cargo SUBCOMMAND` in `crate_dir` with its own target directory. Offline first (the
/// workspace's dependencies are in the local cache, and its lock file pins the same versions);
/// with network access as a fallback.
fn cargo(crate_dir: &Path, target_dir: &Path, subcommand: &str) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let attempt = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.arg(subcommand).arg("--quiet").current_dir(crate_dir).env("CARGO_TARGET_DIR", target_dir);
        // Debug info is not needed here and costs link time.
        cmd.env("CARGO_PROFILE_DEV_DEBUG", "0");
        if offline {
            cmd.arg("--offline");
        }
        cmd.output().expect("run cargo")
    };
    let out = attempt(true);
    if out.status.success() {
        return;
    }
    let online = attempt(false);
    assert!(
        online.status.success(),
        "cargo {subcommand} failed in {}\noffline: {}\nonline: {}{}",
        crate_dir.display(),
        text(&out.stderr),
        text(&online.stdout),
        text(&online.stderr)
    );
}

/// The run config: reverse KL (g2 estimator) with the built-in affine layer, a few steps.
const RUN_CONFIG: &str = r#"
seed = 3
[target]
name = "itest-banana"
a = 1.0
b = 0.5
[flow]
layers = [{ type = "affine" }]
[objective]
name = "kl"
estimator = "g2"
batch = 128
[train]
steps = 30
lr = 0.01
log_every = 10
"#;

#[test]
fn scaffolded_plugin_builds_loads_and_trains() {
    let tmp = built::temp_dir("new-plugin");
    let crate_dir = tmp.join("bootflow-itest");
    let dir_arg = crate_dir.to_str().expect("UTF-8 temp path");

    let out = bootflow(&["new-plugin", "itest", "--dir", dir_arg], None);
    assert!(out.status.success(), "new-plugin failed: {}", text(&out.stderr));
    for f in ["Cargo.toml", "README.md", "src/lib.rs", "src/banana.rs"] {
        assert!(crate_dir.join(f).is_file(), "{f} not written");
    }
    // A second scaffold into the same directory is refused with one line, leaving it intact.
    let lib_rs = std::fs::read_to_string(crate_dir.join("src/lib.rs")).unwrap();
    let again = bootflow(&["new-plugin", "itest", "--dir", dir_arg], None);
    assert_eq!(again.status.code(), Some(2));
    let err = text(&again.stderr);
    assert!(err.starts_with("error: ") && err.contains("already exists") && err.lines().count() == 1, "{err}");
    assert_eq!(std::fs::read_to_string(crate_dir.join("src/lib.rs")).unwrap(), lib_rs);

    let lock = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    std::fs::copy(&lock, crate_dir.join("Cargo.lock")).expect("copy the workspace lock file");
    let target_dir = tmp.join("target");
    cargo(&crate_dir, &target_dir, "test");
    cargo(&crate_dir, &target_dir, "build");
    let lib_dir = target_dir.join("debug");
    let lib = lib_dir.join(format!("{}bootflow_itest{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    assert!(lib.is_file(), "{} not built", lib.display());

    let listed = bootflow(&["plugins", "--json"], Some(&lib_dir));
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let v: Value = serde_json::from_slice(&listed.stdout).expect("plugins --json prints JSON");
    let plugin = v["plugins"]
        .as_array()
        .expect("plugins is a list")
        .iter()
        .find(|p| p["name"] == "itest")
        .unwrap_or_else(|| panic!("itest not listed: {v:#}"));
    assert_eq!(Path::new(plugin["path"].as_str().unwrap()), lib);
    assert_eq!(plugin["provides"][0]["kind"], "target");
    assert_eq!(plugin["provides"][0]["name"], "itest-banana");

    let config = tmp.join("run.toml");
    std::fs::write(&config, RUN_CONFIG).unwrap();
    let run_dir = tmp.join("run");
    let trained = bootflow(&["train", config.to_str().unwrap(), "--out", run_dir.to_str().unwrap()], Some(&lib_dir));
    assert!(trained.status.success(), "train failed: {}", text(&trained.stderr));
    for f in ["checkpoint.json", "summary.json", "metrics.csv"] {
        assert!(run_dir.join(f).is_file(), "{f} missing");
    }
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["steps"], 30);
    // One affine layer on 2-D (a scale and a shift per coordinate), and the cholesky layer the
    // default flow.init fits (two log-diagonal entries, one below the diagonal, two shifts).
    assert_eq!(summary["n_params"], 4 + 5, "{summary}");
    assert!(summary["flow_init"].as_str().unwrap().starts_with("laplace"), "{summary}");
    let metrics = std::fs::read_to_string(run_dir.join("metrics.csv")).unwrap();
    let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
    let loss_col = header.iter().position(|h| *h == "loss").expect("loss column");
    let losses: Vec<f64> =
        metrics.lines().skip(1).map(|l| l.split(',').nth(loss_col).unwrap().parse().expect("a number")).collect();
    assert_eq!(losses.len(), 3, "{metrics}");
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");

    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn completions_and_help_of_the_real_binary() {
    let help = bootflow(&["--help"], None);
    assert!(help.status.success());
    let help = text(&help.stdout);
    // The commands are the indented lines of the "Commands:" section.
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.contains(&"new-plugin") && commands.contains(&"completions"), "{help}");
    for c in &commands {
        let out = bootflow(&[c, "--help"], None);
        assert!(out.status.success(), "`bootflow {c} --help` exited {:?}", out.status.code());
        assert!(text(&out.stdout).contains("Example:"), "`bootflow {c} --help` has no example");
    }
    let bash = bootflow(&["completions", "bash"], None);
    assert!(bash.status.success());
    let script = text(&bash.stdout);
    for c in &commands {
        assert!(script.contains(c), "{c} missing from the bash completions");
    }
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = bootflow(&["completions", shell], None);
        assert!(out.status.success() && out.stdout.len() > 100, "completions {shell}");
    }
}
