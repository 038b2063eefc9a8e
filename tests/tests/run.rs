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
