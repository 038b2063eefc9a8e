//! Golden results: seeded training runs, sampling and estimates through the real binary and
//! plugin libraries must reproduce the recorded digests bit for bit. A refactor changes no
//! result; a change that is meant to change results records new digests on purpose with
//! `BOOTFLOW_BLESS=1 cargo test --release -p bootflow-tests --test golden`.
//!
//! A digest is FNV-1a over the exact JSON text of everything a run decides (parameters,
//! optimiser and objective state, random streams, chains, summaries), with wall-clock times
//! left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bootflow_tests::built;
use serde_json::Value;

const DIGESTS: &str = "golden/digests.txt";

const KL_BASE: &str = include_str!("../configs/golden-kl.toml");

const SPLINE_FAB: &str = include_str!("../configs/golden-spline-fab.toml");

const MAF_KL: &str = include_str!("../configs/golden-maf-kl-rhai.toml");

const RUN: &str = include_str!("../configs/golden-run.toml");

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// `value` without the keys that hold wall-clock times or machine paths.
fn without_clock(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !["second", "time", "elapsed", "path", "threads", "per_sec"].iter().any(|w| k.contains(w))
                })
                .map(|(k, v)| (k.clone(), without_clock(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_clock).collect()),
        v => v.clone(),
    }
}

fn json_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The data rows of every `chain_*.csv` in `dir` (comment lines hold times and paths).
fn chain_rows(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("chain_"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no chains in {}", dir.display());
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn bootflow(cwd: &Path, args: &[&str]) -> String {
    let out = Command::new(built::bootflow())
        .args(args)
        .current_dir(cwd)
        .env("BOOTFLOW_PLUGIN_PATH", built::profile_dir())
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("run bootflow");
    assert!(out.status.success(), "bootflow {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// What a training run decides: everything in its checkpoint but the wall-clock time.
fn checkpoint_digest(work: &Path, dir: &Path) -> u64 {
    let mut c = json_file(&dir.join("checkpoint.json"));
    c.as_object_mut().unwrap().remove("elapsed_seconds");
    fnv1a(&c.to_string().replace(work.to_str().unwrap(), "WORK"))
}

fn train(work: &Path, name: &str, config: &str, sets: &[&str]) -> (PathBuf, u64) {
    let cfg = work.join(format!("{name}.toml"));
    std::fs::write(&cfg, config).unwrap();
    let dir = work.join(name);
    let mut args = vec!["train", cfg.to_str().unwrap(), "--out", dir.to_str().unwrap()];
    for s in sets {
        args.extend(["--set", s]);
    }
    bootflow(work, &args);
    let d = checkpoint_digest(work, &dir);
    (dir, d)
}

/// Digest of a JSON value with the run's own directory written as `WORK` (it holds the process id).
fn json_digest(work: &Path, value: &Value) -> u64 {
    fnv1a(&without_clock(value).to_string().replace(work.to_str().unwrap(), "WORK"))
}

fn sample_digest(work: &Path, dir: &Path) -> u64 {
    fnv1a(&chain_rows(dir)) ^ json_digest(work, &json_file(&dir.join("summary.json")))
}

fn recorded() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIGESTS);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once(' ').expect("`name digest` lines");
            (k.to_string(), v.trim().to_string())
        })
        .collect()
}

#[test]
fn seeded_runs_reproduce_their_recorded_digests() {
    let work = built::temp_dir("golden");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::create_dir_all(work.join("scripts")).unwrap();
    std::fs::copy(repo.join("scripts/banana.rhai"), work.join("scripts/banana.rhai")).unwrap();
    let mut got: BTreeMap<String, u64> = BTreeMap::new();

    let gmm5 = std::fs::read_to_string(repo.join("scripts/gmm5-fab.toml")).unwrap();
    let (fab_dir, d) = train(&work, "gmm5-fab", &gmm5, &["train.steps=30", "train.checkpoint_every=10"]);
    got.insert("train.gmm5-fab".into(), d);
    for est in ["g1", "g2", "g3", "path", "fast-path"] {
        let set = format!("objective.estimator=\"{est}\"");
        got.insert(format!("train.kl-{est}"), train(&work, &format!("kl-{est}"), KL_BASE, &[&set]).1);
    }
    got.insert(
        "train.forward-kl".into(),
        train(&work, "forward-kl", &KL_BASE.replace("name = \"kl\"\nestimator = \"g3\"", "name = \"forward-kl\""), &[])
            .1,
    );
    got.insert("train.spline-fab-buffer".into(), train(&work, "spline", SPLINE_FAB, &[]).1);
    got.insert("train.maf-kl-rhai".into(), train(&work, "maf", MAF_KL, &[]).1);

    let ckpt = fab_dir.join("checkpoint.json");
    let estimate =
        bootflow(&work, &["estimate", "--flow", ckpt.to_str().unwrap(), "--samples", "3000", "--seed", "4", "--json"]);
    got.insert("estimate.gmm5-fab".into(), json_digest(&work, &serde_json::from_str(&estimate).unwrap()));

    let samples: [(&str, Vec<&str>); 4] = [
        ("hmc", vec!["--target", "manywell", "--set", "dim=4", "--method", "hmc", "--warmup", "50"]),
        ("rwm", vec!["--target", "gmm5", "--method", "rwm", "--warmup", "50", "--init-scale", "3"]),
        ("mis", vec!["--target", "gmm5", "--method", "mis", "--flow", ckpt.to_str().unwrap()]),
        (
            "mis-ais",
            vec!["--target", "gmm5", "--method", "mis-ais", "--ais-steps", "2", "--flow", ckpt.to_str().unwrap()],
        ),
    ];
    for (name, extra) in samples {
        let dir = work.join(format!("sample-{name}"));
        let mut args = vec!["sample", "--chains", "3", "--draws", "150", "--seed", "7", "--out", dir.to_str().unwrap()];
        args.extend(extra);
        bootflow(&work, &args);
        got.insert(format!("sample.{name}"), sample_digest(&work, &dir));
    }

    let run_cfg = work.join("run.toml");
    std::fs::write(&run_cfg, RUN).unwrap();
    let run_dir = work.join("run");
    bootflow(&work, &["run", run_cfg.to_str().unwrap(), "--out", run_dir.to_str().unwrap()]);
    got.insert("run.train".into(), checkpoint_digest(&work, &run_dir));
    got.insert("run.sample".into(), sample_digest(&work, &run_dir));

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIGESTS);
    if std::env::var_os("BOOTFLOW_BLESS").is_some() {
        let mut text =
            String::from("# Digests of tests/tests/golden.rs; re-record only for a change meant to change results.\n");
        got.iter().for_each(|(k, v)| text.push_str(&format!("{k} {v:016x}\n")));
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = recorded();
    let mismatched: Vec<String> = got
        .iter()
        .filter(|(k, v)| want.get(*k) != Some(&format!("{v:016x}")))
        .map(|(k, v)| format!("{k}: {v:016x} (recorded {})", want.get(k).map_or("none", |s| s.as_str())))
        .collect();
    assert!(mismatched.is_empty(), "results changed:\n{}", mismatched.join("\n"));
    assert_eq!(want.len(), got.len(), "recorded digests without a case: {want:?}");
    let _ = std::fs::remove_dir_all(&work);
}
