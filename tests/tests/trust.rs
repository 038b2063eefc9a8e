//! Runs are never mixed or lost: used output directories are refused (and `--force` replaces
//! them whole), a resumed run refuses a changed key, metrics have no repeated rows after kill -9
//! and resume, and SIGINT on `train` leaves a checkpoint that resumes bit-identically.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bootflow_tests::built;
use serde_json::Value;

const CONFIG: &str = include_str!("../configs/resume-fab.toml");

fn bootflow(args: &[&str]) -> Output {
    Command::new(built::bootflow()).args(args).output().expect("bootflow runs")
}

fn stderr_line(o: &Output) -> String {
    let text = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(text.lines().count(), 1, "expected one stderr line: {text}");
    text
}

fn checkpoint(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("checkpoint.json")).unwrap()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn sample_into_a_used_directory_is_refused_and_force_replaces_it_whole() {
    let dir = built::temp_dir("trust-sample");
    let out = dir.join("out");
    let sample = |chains: &str, force: bool| {
        let mut a = vec!["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--chains", chains];
        a.extend(["--draws", "50", "--warmup", "10", "--out", s(&out)]);
        if force {
            a.push("--force");
        }
        bootflow(&a)
    };
    assert!(sample("4", false).status.success());
    let before = std::fs::read(out.join("summary.json")).unwrap();
    let refused = sample("2", false);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr_line(&refused).contains("already holds files"));
    assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), before, "the earlier run was touched");
    assert!(sample("2", true).status.success());
    assert!(out.join("chain_2.csv").exists() && !out.join("chain_3.csv").exists(), "old chains left beside new ones");
    // A directory with a file bootflow did not write is never emptied.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let kept = sample("2", true);
    assert_eq!(kept.status.code(), Some(2));
    assert!(stderr_line(&kept).contains("notes.txt, which bootflow did not write"));
    assert!(out.join("notes.txt").exists() && out.join("chain_1.csv").exists());
}

#[test]
fn a_resumed_run_refuses_a_changed_key_and_takes_more_steps() {
    let dir = built::temp_dir("trust-resume-key");
    let config = dir.join("run.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = dir.join("out");
    assert!(bootflow(&["train", s(&config), "--out", s(&out), "--set", "train.steps=40"]).status.success());
    let before = std::fs::read(out.join("checkpoint.json")).unwrap();
    for (set, key) in [("train.lr=0.5", "train.lr"), ("seed=9", "seed"), ("objective.batch=16", "objective.batch")] {
        let o = bootflow(&["train", "--resume", s(&out), "--set", set]);
        assert_eq!(o.status.code(), Some(2), "{set}");
        let line = stderr_line(&o);
        assert!(line.contains(&format!("--set {set} changes {key}")), "{set}: {line}");
        assert_eq!(std::fs::read(out.join("checkpoint.json")).unwrap(), before, "{set} touched the run");
    }
    let o = bootflow(&["train", "--resume", s(&out), "--set", "train.steps=60"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(checkpoint(&out)["step"], 60);
    let recorded = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(recorded.contains("steps = 60"), "config.toml not updated: {recorded}");
}

/// Starts `train` and waits until its first periodic checkpoint exists.
fn train_until_checkpoint(config: &Path, out: &Path) -> std::process::Child {
    let child = Command::new(built::bootflow())
        .args(["train", s(config), "--out", s(out)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !out.join("checkpoint.json").is_file() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
    child
}

fn metric_steps(dir: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    text.lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect()
}

#[test]
fn metrics_have_no_repeated_rows_after_kill_and_resume() {
    let dir = built::temp_dir("trust-kill");
    let config = dir.join("run.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = dir.join("out");
    let mut child = train_until_checkpoint(&config, &out);
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(bootflow(&["train", "--resume", s(&out)]).status.success());
    let steps = metric_steps(&out);
    let mut sorted = steps.clone();
    sorted.dedup();
    assert_eq!(steps, sorted, "repeated or unordered rows");
    assert_eq!(steps.last(), Some(&1500));
}

#[test]
fn sigint_on_train_checkpoints_the_step_it_stopped_at_and_resumes_bit_identically() {
    let dir = built::temp_dir("trust-sigint");
    let config = dir.join("run.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let whole = dir.join("whole");
    assert!(bootflow(&["train", s(&config), "--out", s(&whole)]).status.success());
    let out = dir.join("out");
    let child = train_until_checkpoint(&config, &out);
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", String::from_utf8_lossy(&o.stderr));
    let last = String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("").to_string();
    let stopped = checkpoint(&out)["step"].as_u64().unwrap();
    assert!(last.contains(&format!("interrupted at step {stopped}")), "{last}");
    assert!(stopped < 1500, "the run finished before the signal");
    assert!(metric_steps(&out).last().copied().unwrap_or(0) <= stopped);
    assert!(bootflow(&["train", "--resume", s(&out)]).status.success());
    let (a, b) = (checkpoint(&whole), checkpoint(&out));
    assert_eq!(a["params"], b["params"], "resumed after step {stopped}: parameters differ");
}

#[test]
fn a_script_target_is_recorded_by_absolute_path_and_hash_and_refused_once_changed() {
    let dir = built::temp_dir("trust-script");
    let script = dir.join("gauss.rhai");
    let text = "const DIM = 2; fn log_prob(x) { -0.5 * (x[0] * x[0] + x[1] * x[1]) }";
    std::fs::write(&script, text).unwrap();
    let config = dir.join("run.toml");
    std::fs::write(
        &config,
        "seed = 1\n[target]\nname = \"gauss.rhai\"\n[flow]\nlayers = [{ type = \"affine\" }]\n\
         [objective]\nname = \"kl\"\nbatch = 16\n[train]\nsteps = 20\nlog_every = 10\n",
    )
    .unwrap();
    // Trained from the script's directory with a relative path...
    let o =
        Command::new(built::bootflow()).current_dir(&dir).args(["train", "run.toml", "--out", "out"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.join("out");
    let recorded = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(recorded.contains(s(&script.canonicalize().unwrap())) && recorded.contains("script_sha256"), "{recorded}");
    // ...evaluated from another directory, and resumed with the config that started it.
    let elsewhere = Command::new(built::bootflow())
        .current_dir(std::env::temp_dir())
        .args(["estimate", "--flow", s(&out), "--samples", "200"])
        .output()
        .unwrap();
    assert!(elsewhere.status.success(), "{}", String::from_utf8_lossy(&elsewhere.stderr));
    let again = Command::new(built::bootflow())
        .current_dir(&dir)
        .args(["train", "run.toml", "--resume", "out", "--set", "train.steps=30"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    // A changed script is refused by estimate and by resume, and the run is left as it was.
    std::fs::write(&script, text.replace("0.5", "0.25")).unwrap();
    let before = std::fs::read(out.join("checkpoint.json")).unwrap();
    for args in [
        vec!["estimate", "--flow", s(&out), "--samples", "200"],
        vec!["train", "--resume", s(&out), "--set", "train.steps=40"],
    ] {
        let o = bootflow(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr_line(&o).contains("has changed since the run recorded it"), "{args:?}");
    }
    assert_eq!(std::fs::read(out.join("checkpoint.json")).unwrap(), before);
}
