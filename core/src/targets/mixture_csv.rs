//! Reads Gaussian-mixture parameters from CSV text: one component per row, a header naming the
//! columns `weight` (optional: equal weights), `mean_*` (one per axis) and `std_*` (optional,
//! one per axis). Blank lines and lines starting with `#` are ignored.

use crate::error::{Error, Result};

/// Components read from a CSV file: `(weights, means, stds)`, `stds` empty when the file has
/// no `std_*` columns.
pub struct CsvComponents {
    pub weights: Vec<f64>,
    pub means: Vec<Vec<f64>>,
    pub stds: Vec<Vec<f64>>,
}

/// Parses the CSV `text`; `origin` names it in error messages.
pub fn parse(text: &str, origin: &str) -> Result<CsvComponents> {
    let mut lines =
        text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let (_, header) = lines.next().ok_or_else(|| Error::Config(format!("{origin}: no header line")))?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let cols = |prefix: &str| -> Vec<usize> {
        names.iter().enumerate().filter(|(_, n)| n.starts_with(prefix)).map(|(i, _)| i).collect()
    };
    let (mean_cols, std_cols) = (cols("mean_"), cols("std_"));
    let weight_col = names.iter().position(|n| *n == "weight");
    if let Some(n) = names.iter().find(|n| **n != "weight" && !n.starts_with("mean_") && !n.starts_with("std_")) {
        return Err(Error::Config(format!("{origin}: unknown column '{n}' (expected weight, mean_*, std_*)")));
    }
    if mean_cols.is_empty() {
        return Err(Error::Config(format!("{origin}: no mean_* columns")));
    }
    if !std_cols.is_empty() && std_cols.len() != mean_cols.len() {
        return Err(Error::Config(format!(
            "{origin}: {} std_* columns for {} mean_* columns",
            std_cols.len(),
            mean_cols.len()
        )));
    }
    let mut out = CsvComponents { weights: Vec::new(), means: Vec::new(), stds: Vec::new() };
    for (line_no, line) in lines {
        let fields = line
            .split(',')
            .map(|f| f.trim().parse::<f64>())
            .collect::<std::result::Result<Vec<f64>, _>>()
            .map_err(|e| Error::Config(format!("{origin}:{line_no}: {e}")))?;
        if fields.len() != names.len() {
            return Err(Error::Config(format!(
                "{origin}:{line_no}: {} fields, header has {}",
                fields.len(),
                names.len()
            )));
        }
        out.weights.push(weight_col.map_or(1.0, |c| fields[c]));
        out.means.push(mean_cols.iter().map(|&c| fields[c]).collect());
        if !std_cols.is_empty() {
            out.stds.push(std_cols.iter().map(|&c| fields[c]).collect());
        }
    }
    if out.means.is_empty() {
        return Err(Error::Config(format!("{origin}: no components")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_columns_and_reports_bad_lines() {
        let c = parse("# comment\nweight,mean_x,mean_y,std_x,std_y\n1,2,3,4,5\n\n2,0,0,1,1\n", "t.csv").unwrap();
        assert_eq!(c.weights, vec![1.0, 2.0]);
        assert_eq!(c.means[0], vec![2.0, 3.0]);
        assert_eq!(c.stds[1], vec![1.0, 1.0]);
        let e = parse("mean_x\n1\nzz\n", "t.csv").err().unwrap().to_string();
        assert!(e.contains("t.csv:3"), "{e}");
        let e = parse("mean_x,colour\n1,2\n", "t.csv").err().unwrap().to_string();
        assert!(e.contains("unknown column 'colour'"), "{e}");
        let e = parse("mean_x,mean_y\n1\n", "t.csv").err().unwrap().to_string();
        assert!(e.contains("1 fields, header has 2"), "{e}");
    }
}
