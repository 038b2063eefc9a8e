//! The run report: `report.md` with the estimates, key facts and the figures embedded, and the
//! same table as plain text for the terminal.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// One estimate: `value ± error` (error absent when not known).
#[derive(Clone, Debug, PartialEq)]
pub struct ReportRow {
    pub label: String,
    pub value: f64,
    pub error: Option<f64>,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub title: String,
    pub rows: Vec<ReportRow>,
    /// Already formatted facts, in order: wall time, ESS, acceptance, tau_int, log Z, ...
    pub facts: Vec<(String, String)>,
    /// Image files (PNG) to embed; an SVG beside one is linked too.
    pub figures: Vec<PathBuf>,
    /// Why a result should not be trusted (the run's `summary.json` list).
    pub warnings: Vec<String>,
}

/// `value ± error` with the error to two significant digits and the value to the same decimal
/// place; scientific notation for very large or small magnitudes.
pub fn format_estimate(value: f64, error: Option<f64>) -> String {
    let scientific = |v: f64| v != 0.0 && v.is_finite() && !(1e-4..1e6).contains(&v.abs());
    match error {
        Some(e) if e.is_finite() && e > 0.0 && value.is_finite() => {
            if scientific(value) || scientific(e) {
                return format!("{value:.3e} ± {e:.2e}");
            }
            let decimals = (1 - e.log10().floor() as i32).max(0) as usize;
            format!("{value:.decimals$} ± {e:.decimals$}")
        }
        Some(e) => format!("{} ± {e}", plain(value)),
        None => plain(value),
    }
}

/// Six significant digits without trailing zeros.
fn plain(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return v.to_string();
    }
    if !(1e-4..1e6).contains(&v.abs()) {
        return format!("{v:.5e}");
    }
    let decimals = (5 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// Path of `file` as written in a report inside `dir`: relative where `file` lies under `dir`.
fn link(dir: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(dir).unwrap_or(file);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Writes `dir/report.md` and returns its path.
pub fn write_report(dir: &Path, report: &Report) -> anyhow::Result<PathBuf> {
    let mut md = format!("# {}\n\n", report.title);
    if !report.warnings.is_empty() {
        md += "## Warnings\n\n";
        for w in &report.warnings {
            let _ = writeln!(md, "- {w}");
        }
        md += "\n";
    }
    if !report.rows.is_empty() {
        md += "| quantity | estimate |\n| --- | --- |\n";
        for row in &report.rows {
            let _ = writeln!(md, "| {} | {} |", cell(&row.label), format_estimate(row.value, row.error));
        }
        md += "\n";
    }
    if !report.facts.is_empty() {
        for (key, value) in &report.facts {
            let _ = writeln!(md, "- **{key}**: {value}");
        }
        md += "\n";
    }
    for figure in &report.figures {
        let name = figure.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = writeln!(md, "## {name}\n\n![{name}]({})\n", link(dir, figure));
        let svg = figure.with_extension("svg");
        if figure.extension().is_some_and(|e| e != "svg") && svg.is_file() {
            let _ = writeln!(md, "[vector version]({})\n", link(dir, &svg));
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("report.md");
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The estimates and facts as aligned plain text, for standard output.
pub fn summary_text(report: &Report) -> String {
    let width = report
        .rows
        .iter()
        .map(|r| r.label.chars().count())
        .chain(report.facts.iter().map(|f| f.0.chars().count()))
        .max()
        .unwrap_or(0);
    let mut text = format!("{}\n", report.title);
    for row in &report.rows {
        let _ = writeln!(text, "  {:<width$}  {}", row.label, format_estimate(row.value, row.error));
    }
    for (key, value) in &report.facts {
        let _ = writeln!(text, "  {key:<width$}  {value}");
    }
    for w in &report.warnings {
        let _ = writeln!(text, "warning: {w}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::testing::scratch_dir;

    fn sample_report(dir: &Path) -> Report {
        Report {
            title: "gmm5: FAB + MIS".into(),
            rows: vec![
                ReportRow { label: "E[x1]".into(), value: 0.01234, error: Some(0.0056) },
                ReportRow { label: "log Z".into(), value: -2.3456, error: Some(0.012) },
                ReportRow { label: "a|b".into(), value: 3.0, error: None },
            ],
            facts: vec![("wall time".into(), "12.5 s".into()), ("acceptance".into(), "0.71".into())],
            figures: vec![dir.join("target.png"), dir.join("figs/training.png")],
            warnings: Vec::new(),
        }
    }

    #[test]
    fn estimates_round_to_the_error() {
        assert_eq!(format_estimate(0.01234, Some(0.0056)), "0.0123 ± 0.0056");
        assert_eq!(format_estimate(-2.3456, Some(0.012)), "-2.346 ± 0.012");
        assert_eq!(format_estimate(1234.5, Some(56.0)), "1234 ± 56");
        assert_eq!(format_estimate(3.0, None), "3");
        assert_eq!(format_estimate(0.1 + 0.2, None), "0.3");
        assert_eq!(format_estimate(2.5e8, Some(3e6)), "2.500e8 ± 3.00e6");
        assert_eq!(format_estimate(1.0, Some(f64::NAN)), "1 ± NaN");
    }

    #[test]
    fn report_links_every_figure_and_lists_every_row() {
        let dir = scratch_dir("report");
        std::fs::create_dir_all(dir.join("figs")).unwrap();
        std::fs::write(dir.join("target.svg"), "<svg/>").unwrap();
        let report = sample_report(&dir);
        let text = std::fs::read_to_string(write_report(&dir, &report).unwrap()).unwrap();
        assert!(text.starts_with("# gmm5: FAB + MIS\n"));
        assert!(text.contains("![target](target.png)") && text.contains("[vector version](target.svg)"), "{text}");
        assert!(text.contains("![training](figs/training.png)") && !text.contains("training.svg"), "{text}");
        for row in ["| E[x1] | 0.0123 ± 0.0056 |", "| log Z | -2.346 ± 0.012 |", "| a\\|b | 3 |"] {
            assert!(text.contains(row), "missing {row} in\n{text}");
        }
        assert!(text.contains("- **wall time**: 12.5 s") && text.contains("- **acceptance**: 0.71"));
        assert!(!text.contains("Warnings"));
        let warned = Report { warnings: vec!["flow ESS is 0.5 %, below 1 %".into()], ..report };
        let text = std::fs::read_to_string(write_report(&dir, &warned).unwrap()).unwrap();
        assert!(text.starts_with("# gmm5: FAB + MIS\n\n## Warnings\n\n- flow ESS is 0.5 %, below 1 %\n"), "{text}");
        assert!(summary_text(&warned).ends_with("warning: flow ESS is 0.5 %, below 1 %\n"));
    }

    #[test]
    fn summary_aligns_labels() {
        let text = summary_text(&sample_report(Path::new("run")));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "gmm5: FAB + MIS");
        assert_eq!(lines[1], "  E[x1]       0.0123 ± 0.0056");
        assert_eq!(lines[4], "  wall time   12.5 s");
        assert_eq!(lines.len(), 6);
    }
}
