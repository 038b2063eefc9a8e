//! Reading back the metrics CSV written during training (`metrics.csv`): one column per header
//! name, empty cells as `None`.

use std::path::Path;

use crate::error::{Error, Result, ResultExt};

/// Columns of a metrics CSV; empty cells are `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    /// Header names, in file order.
    pub names: Vec<String>,
    /// One column per name, one cell per row.
    pub columns: Vec<Vec<Option<f64>>>,
}

impl Metrics {
    /// Parses CSV text with a header line; every row must have the header's number of cells.
    pub fn parse(text: &str) -> Result<Self> {
        let line_error = |index: usize, what: String| Error::Other(format!("metrics CSV line {}: {what}", index + 1));
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or_else(|| Error::Other("metrics CSV is empty".into()))?;
        let names: Vec<String> = header.split(',').map(|s| s.trim().to_string()).collect();
        let mut columns = vec![Vec::new(); names.len()];
        for (index, line) in lines {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if cells.len() != names.len() {
                return Err(line_error(index, format!("{} cells, header has {}", cells.len(), names.len())));
            }
            for ((cell, column), name) in cells.iter().zip(&mut columns).zip(&names) {
                let value = if cell.is_empty() {
                    None
                } else {
                    let parsed = cell.parse::<f64>();
                    Some(parsed.map_err(|_| line_error(index, format!("column {name}: {cell:?} is not a number")))?)
                };
                column.push(value);
            }
        }
        Ok(Metrics { names, columns })
    }

    /// The cells of the named column, if the file has it.
    pub fn column(&self, name: &str) -> Option<&[Option<f64>]> {
        self.names.iter().position(|n| n == name).map(|i| self.columns[i].as_slice())
    }
}

/// Reads and parses a metrics CSV file; errors name the file.
pub fn read_metrics_csv(path: &Path) -> Result<Metrics> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Metrics::parse(&text).with_context(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_empty_cells_parses_into_options() {
        let m = Metrics::parse("step,loss,ess\n0,1.5,\n1,,0.25\n").unwrap();
        assert_eq!(m.column("loss").unwrap(), &[Some(1.5), None]);
        assert_eq!(m.column("ess").unwrap(), &[None, Some(0.25)]);
        assert!(m.column("missing").is_none());
    }

    #[test]
    fn malformed_csv_names_the_line() {
        let err = Metrics::parse("step,loss\n0,1\n1,abc\n").unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("loss"), "{err}");
        assert!(Metrics::parse("step,loss\n0\n").is_err());
        assert!(Metrics::parse("").is_err());
    }
}
