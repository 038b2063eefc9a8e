//! `bootflow run` end to end on a small 2-D config, then `bootflow plot` on its directory.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use bootflow_tests::built;
use serde_json::Value;

const CONFIG: &str = include_str!("../configs/run-small.toml");

/// Decodes `path`, checks its size and that it is not blank (many pixels off the background,
/// several colours).
fn check_png(path: &Path, size: (u32, u32)) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), size, "{}", path.display());
    let px: Vec<&[u8]> = buf[..info.buffer_size()].chunks(info.color_type.samples()).collect();
    let non_white = px.iter().filter(|p| p.iter().take(3).any(|&c| c < 240)).count();
    let colours: HashSet<&[u8]> = px.iter().copied().collect();
    assert!(non_white > px.len() / 100, "{}: only {non_white} drawn pixels", path.display());
    assert!(colours.len() > 5, "{}: {} colours", path.display(), colours.len());
}

fn check_svg(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let drawn = doc
        .descendants()
        .filter(|n| ["path", "polyline", "rect", "circle", "text"].contains(&n.tag_name().name()))
        .count();
    assert!(drawn > 20, "{}: {drawn} elements", path.display());
}

#[test]
fn run_trains_evaluates_samples_and_draws() {
    let dir = built::temp_dir("run-gmm5");
    let config = dir.join("gmm5.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = dir.join("out");
    let o = Command::new(built::bootflow()).arg("run").arg(&config).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("<f>"), "the printed table lists the test function: {table}");
    for f in ["config.toml", "metrics.csv", "checkpoint.json", "chain_1.csv", "chain_2.csv", "report.md"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for key in
        ["method", "chains", "draws", "seed", "seconds", "acceptance", "quantities", "importance", "train", "flow"]
    {
        assert!(v.get(key).is_some(), "summary.json lacks {key}: {v:#}");
    }
    for key in ["steps", "seconds", "skipped_steps", "final_loss"] {
        assert!(v["train"].get(key).is_some(), "train.{key}: {v:#}");
    }
    for key in ["ess", "ess_ais", "forward_ess", "log_z", "log_z_se", "test_mean_log_q"] {
        assert!(v["flow"].get(key).is_some(), "flow.{key}: {v:#}");
    }
    assert_eq!(v["train"]["steps"], 30);
    assert!(v["flow"]["ess"].as_f64().is_some_and(|e| e > 0.0 && e <= 1.0), "{v:#}");
    let figures = [("training", (900, 600)), ("density", (1000, 500)), ("chains", (1000, 900))];
    for (name, size) in figures {
        check_png(&out.join(format!("{name}.png")), size);
        check_svg(&out.join(format!("{name}.svg")));
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("density.png") && report.contains("training.png"), "{report}");

    // `bootflow plot` redraws the same figures from the files alone.
    for (name, _) in figures {
        std::fs::remove_file(out.join(format!("{name}.png"))).unwrap();
    }
    let o = Command::new(built::bootflow()).arg("plot").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (name, size) in figures {
        check_png(&out.join(format!("{name}.png")), size);
    }
}

/// `train.gradvar_every` writes gradvar.csv during `bootflow train`, and `bootflow plot` on the
/// training directory draws the training curves and sqrt(Var) of each estimator.
#[test]
fn plot_of_a_training_run_draws_its_gradient_variances() {
    let dir = built::temp_dir("plot-train");
    let config = dir.join("gmm5.toml");
    let text = CONFIG.split("[evaluate]").next().unwrap().to_string()
        + "gradvar_every = 10\ngradvar_batches = 8\ngradvar_estimators = [\"g1\", \"g3\"]\neval_samples = 500\n";
    std::fs::write(&config, text).unwrap();
    let out = dir.join("out");
    let o = Command::new(built::bootflow()).arg("train").arg(&config).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.join("gradvar.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let steps_and_names: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[2])).collect();
    let expected = [("10", "g1"), ("10", "g3"), ("20", "g1"), ("20", "g3"), ("30", "g1"), ("30", "g3")];
    assert_eq!(steps_and_names, expected, "{csv}");

    let o = Command::new(built::bootflow()).arg("plot").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = String::from_utf8_lossy(&o.stdout);
    for (name, size) in [("training", (900, 600)), ("gradvar", (900, 550))] {
        check_png(&out.join(format!("{name}.png")), size);
        check_svg(&out.join(format!("{name}.svg")));
        assert!(printed.contains(&format!("{name}.png")), "{printed}");
    }
    assert!(!out.join("report.md").exists(), "a training directory has no sampling report");
}
