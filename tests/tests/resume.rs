//! A training run killed with SIGKILL and continued with `--resume` ends with exactly the
//! parameters of a run that was never interrupted (FAB with HMC inside AIS and a RealNVP flow:
//! the checkpoint must carry flow, optimiser, RNG and the AIS kernels' tuned step sizes).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bootflow_tests::built;
use serde_json::Value;

const CONFIG: &str = include_str!("../configs/resume-fab.toml");

fn train(config: &Path, out: &Path, resume: bool) -> Command {
    let mut c = Command::new(built::bootflow());
    c.arg("train").arg(config).arg("--out").arg(out).stdout(Stdio::null()).stderr(Stdio::null());
    if resume {
        c.arg("--resume");
    }
    c
}

fn checkpoint(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("checkpoint.json")).expect("checkpoint.json");
    serde_json::from_str(&text).expect("checkpoint parses")
}

#[test]
fn killed_and_resumed_training_ends_bit_identical() {
    let dir = built::temp_dir("resume");
    let config = dir.join("run.toml");
    std::fs::write(&config, CONFIG).unwrap();

    let whole = dir.join("whole");
    assert!(train(&config, &whole, false).status().unwrap().success());

    let broken = dir.join("broken");
    let mut child = train(&config, &broken, false).spawn().unwrap();
    let start = Instant::now();
    while !broken.join("checkpoint.json").is_file() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let stopped_at = checkpoint(&broken)["step"].as_u64().unwrap();
    assert!(stopped_at < 1500, "the run finished before it could be killed");

    assert!(train(&config, &broken, true).status().unwrap().success());
    let (a, b) = (checkpoint(&whole), checkpoint(&broken));
    assert_eq!(b["step"], 1500);
    assert_eq!(a["params"], b["params"], "resumed after step {stopped_at}: parameters differ");
    assert_eq!(a["objective_state"], b["objective_state"]);
}
