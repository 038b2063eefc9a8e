//! Chains as CmdStan-style CSV, one file per chain, so ArviZ, pandas and CmdStan tools read them:
//! `#` comment lines (`key = value`, the config as one line of JSON), a header row
//! `lp__,accept_stat__,x.1,...,x.d,<observables>`, then one row per draw.
//!
//! Each row is formatted into a buffer and handed to the OS in one `write_all`, so a run killed
//! at any moment leaves only complete rows (plus at most one partial last line, which the reader
//! ignores). Numbers are written in shortest round-trip form; non-finite values as `inf`, `-inf`,
//! `nan`.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What the comment header of a chain file records.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainMeta {
    /// Sampling method, e.g. `mis` or `hmc`.
    pub method: String,
    /// The run's seed, written as `# seed = ...`.
    pub seed: u64,
    /// Index of this chain in the run (0-based).
    pub chain: usize,
    /// The run's configuration, written as one line of JSON.
    pub config: serde_json::Value,
}

/// The column names of a chain file for a `dim`-dimensional sample and named observables.
pub fn column_names(dim: usize, observables: &[String]) -> Result<Vec<String>> {
    let mut names = vec!["lp__".to_string(), "accept_stat__".to_string()];
    names.extend((1..=dim).map(|i| format!("x.{i}")));
    for name in observables {
        let bad = name.is_empty() || name.chars().any(|c| c == ',' || c == '"' || c.is_whitespace());
        if bad || name.starts_with('#') {
            return Err(Error::Config(format!("observable name {name:?} cannot be a CSV column name")));
        }
        if names.contains(name) {
            return Err(Error::Config(format!("observable name '{name}' is used twice")));
        }
        names.push(name.clone());
    }
    Ok(names)
}

/// Appends `v` in shortest round-trip form, spelled as CmdStan and pandas read it.
pub fn push_number(buf: &mut String, v: f64) {
    // Writing to a String cannot fail.
    let _ = if v.is_nan() {
        buf.write_str("nan")
    } else if v.is_infinite() {
        buf.write_str(if v > 0.0 { "inf" } else { "-inf" })
    } else if v == 0.0 || (1e-5..1e16).contains(&v.abs()) {
        write!(buf, "{v}")
    } else {
        // Plain notation of 1e300 would be 301 characters.
        write!(buf, "{v:e}")
    };
}

/// Writes one chain file row by row.
pub struct ChainWriter {
    file: File,
    path: PathBuf,
    line: String,
    dim: usize,
    n_observables: usize,
}

impl ChainWriter {
    /// Creates (truncates) `path` and writes the comment header and the column names.
    pub fn create(path: &Path, meta: &ChainMeta, dim: usize, observables: &[String]) -> Result<Self> {
        let columns = column_names(dim, observables)?;
        let mut head = String::new();
        let _ = writeln!(head, "# bootflow chain");
        let _ = writeln!(head, "# method = {}", meta.method.replace('\n', " "));
        let _ = writeln!(head, "# seed = {}", meta.seed);
        let _ = writeln!(head, "# chain = {}", meta.chain);
        // Compact JSON escapes newlines inside strings, so it stays on one line.
        let _ = writeln!(head, "# config = {}", meta.config);
        let _ = writeln!(head, "{}", columns.join(","));
        let mut file = File::create(path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        file.write_all(head.as_bytes()).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        Ok(Self { file, path: path.to_path_buf(), line: String::new(), dim, n_observables: observables.len() })
    }

    /// Appends one draw as one complete line.
    pub fn write_draw(&mut self, lp: f64, accept_stat: f64, x: &[f64], observables: &[f64]) -> Result<()> {
        crate::error::check_dim("chain row: coordinates", x.len(), self.dim)?;
        crate::error::check_dim("chain row: observables", observables.len(), self.n_observables)?;
        self.line.clear();
        push_number(&mut self.line, lp);
        self.line.push(',');
        push_number(&mut self.line, accept_stat);
        for &v in x.iter().chain(observables) {
            self.line.push(',');
            push_number(&mut self.line, v);
        }
        self.line.push('\n');
        self.file
            .write_all(self.line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }
}

/// A chain file read back.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainCsv {
    /// Comment lines without their leading `#` and surrounding spaces.
    pub comments: Vec<String>,
    /// Header names in file order: `lp__`, `accept_stat__`, `x.1 ... x.d`, then observables.
    pub columns: Vec<String>,
    /// One row per complete draw line, `columns.len()` values each.
    pub rows: Vec<Vec<f64>>,
}

impl ChainCsv {
    /// The draws of one column.
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let j = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(|r| r[j]).collect())
    }

    /// The value of a `key = value` comment line.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.comments.iter().find_map(|c| {
            let (k, v) = c.split_once('=')?;
            (k.trim() == key).then(|| v.trim())
        })
    }
}

/// Parses chain CSV text: `#` lines anywhere are comments, the first other line is the header, a
/// last line without its newline (a write cut short) is ignored.
pub fn parse_chain_csv(text: &str) -> Result<ChainCsv> {
    let complete = match text.rfind('\n') {
        Some(i) => &text[..i],
        None => "",
    };
    let mut comments = Vec::new();
    let mut columns: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (lineno, line) in complete.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(c) = line.strip_prefix('#') {
            comments.push(c.trim().to_string());
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let Some(cols) = &columns else {
            columns = Some(line.split(',').map(|s| s.trim().to_string()).collect());
            continue;
        };
        let row = line
            .split(',')
            .map(|s| s.trim().parse::<f64>())
            .collect::<std::result::Result<Vec<f64>, _>>()
            .map_err(|e| Error::Other(format!("chain CSV line {}: {e}", lineno + 1)))?;
        if row.len() != cols.len() {
            return Err(Error::Dim(format!(
                "chain CSV line {}: {} values for {} columns",
                lineno + 1,
                row.len(),
                cols.len()
            )));
        }
        rows.push(row);
    }
    let columns = columns.ok_or_else(|| Error::Other("chain CSV has no header row".into()))?;
    Ok(ChainCsv { comments, columns, rows })
}

/// Reads a chain file written by `ChainWriter` (or CmdStan).
pub fn read_chain_csv(path: &Path) -> Result<ChainCsv> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    parse_chain_csv(&text).map_err(|e| Error::Other(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bootflow-chains-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn numbers_round_trip_exactly() {
        let values = [0.0, -0.0, 1.0, 0.1, -2.5e-300, 1e300, 123456.789, 1e-5, 9.99e15, 1e16, f64::MIN_POSITIVE];
        for v in values {
            let mut s = String::new();
            push_number(&mut s, v);
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{v} -> {s}");
            assert!(s.len() < 26, "{s}");
        }
        for (v, want) in [(f64::NAN, "nan"), (f64::INFINITY, "inf"), (f64::NEG_INFINITY, "-inf")] {
            let mut s = String::new();
            push_number(&mut s, v);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn written_file_reads_back() {
        let path = temp_path("roundtrip.csv");
        let meta = ChainMeta {
            method: "mis".into(),
            seed: 42,
            chain: 3,
            config: serde_json::json!({"target": "gmm", "note": "two\nlines"}),
        };
        let obs = vec!["chi2".to_string()];
        let mut w = ChainWriter::create(&path, &meta, 2, &obs).unwrap();
        w.write_draw(-1.5, 1.0, &[0.25, -3.0], &[7.0]).unwrap();
        w.write_draw(f64::NEG_INFINITY, 0.0, &[1e-300, f64::NAN], &[f64::INFINITY]).unwrap();
        assert!(w.write_draw(0.0, 0.0, &[1.0], &[1.0]).is_err());
        drop(w);
        let csv = read_chain_csv(&path).unwrap();
        assert_eq!(csv.columns, ["lp__", "accept_stat__", "x.1", "x.2", "chi2"]);
        assert_eq!(csv.rows.len(), 2);
        assert_eq!(csv.rows[0], [-1.5, 1.0, 0.25, -3.0, 7.0]);
        assert_eq!(csv.rows[1][0], f64::NEG_INFINITY);
        assert!(csv.rows[1][3].is_nan());
        assert_eq!(csv.column("chi2").unwrap(), [7.0, f64::INFINITY]);
        assert_eq!(csv.meta("seed"), Some("42"));
        assert_eq!(csv.meta("chain"), Some("3"));
        let config: serde_json::Value = serde_json::from_str(csv.meta("config").unwrap()).unwrap();
        assert_eq!(config, meta.config);
    }

    #[test]
    fn truncated_last_line_is_ignored_but_corrupt_rows_are_errors() {
        let text = "# c\nlp__,accept_stat__,x.1\n1,1,2\n3,0.5,4\n5,0.2";
        let csv = parse_chain_csv(text).unwrap();
        assert_eq!(csv.rows, vec![vec![1.0, 1.0, 2.0], vec![3.0, 0.5, 4.0]]);
        assert!(parse_chain_csv("lp__,x.1\n1,2,3\n").is_err());
        assert!(parse_chain_csv("lp__,x.1\n1,abc\n").is_err());
        assert!(parse_chain_csv("# only comments\n").is_err());
    }

    #[test]
    fn bad_observable_names_are_rejected() {
        for bad in ["", "a,b", "x.1", "lp__", "has space", "#x"] {
            assert!(column_names(1, &[bad.to_string()]).is_err(), "{bad:?}");
        }
        assert!(column_names(1, &["m".to_string(), "m".to_string()]).is_err());
        assert_eq!(column_names(1, &["abs_m".to_string()]).unwrap(), ["lp__", "accept_stat__", "x.1", "abs_m"]);
    }
}
