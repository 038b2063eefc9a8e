//! A training set read from the user's files (forward KL on samples): CmdStan-style chain CSVs
//! (bootflow's own: columns `x.1 .. x.D`; Stan's: every column not ending in `__`), plain CSV
//! (one sample per row, an optional header line) or `.npy` (a float array `n x D`, or `n`
//! when `D = 1`, C or Fortran order). A glob reads every matching file in name order; the first
//! file sets the dimension `D`, and every other file must agree.

use std::path::{Path, PathBuf};

use crate::Batch;
use crate::error::{Error, Result};
use crate::output::chains::parse_chain_csv;
use crate::run::budget::Need;

/// Bytes in memory per byte of CSV text, at most (a number takes at least two characters with
/// its separator and becomes 8 bytes), and a little for parsing.
const CSV_EXPANSION: f64 = 6.0;

/// The files a path or glob names, in name order; an error names the pattern when none match.
pub fn expand(pattern: &str) -> Result<Vec<PathBuf>> {
    let paths = glob::glob(pattern).map_err(|e| Error::Config(format!("samples: '{pattern}' is not a glob: {e}")))?;
    let mut files: Vec<PathBuf> = paths.filter_map(|p| p.ok()).filter(|p| p.is_file()).collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Config(format!("samples: no file matches '{pattern}'")));
    }
    Ok(files)
}

/// Every sample of the files `pattern` names, `D x n`, checked against the memory budget before
/// any is read.
pub fn read_samples(pattern: &str) -> Result<Batch> {
    let files = expand(pattern)?;
    let mut need = Need::default();
    for f in &files {
        let bytes = std::fs::metadata(f).map(|m| m.len() as f64).unwrap_or(0.0);
        let npy = f.extension().is_some_and(|e| e == "npy");
        need.add("objective.samples", if npy { bytes } else { CSV_EXPANSION * bytes });
    }
    need.check("reading the training samples")?;
    let (mut values, mut dim) = (Vec::new(), None);
    for f in &files {
        let part = if f.extension().is_some_and(|e| e == "npy") { read_npy(f, dim) } else { read_csv(f, dim) };
        let (d, part) = part.map_err(|e| Error::Config(format!("samples: {}: {e}", f.display())))?;
        dim = Some(d);
        values.extend(part);
    }
    let dim = dim.unwrap_or(1);
    let n = values.len() / dim;
    if n == 0 {
        return Err(Error::Config(format!("samples: '{pattern}' holds no samples")));
    }
    let batch = Batch::from_vec(dim, n, values);
    if let Some(k) = batch.iter().position(|v| !v.is_finite()) {
        return Err(Error::Config(format!(
            "samples: '{pattern}': sample {} has a non-finite coordinate {}",
            k / dim + 1,
            batch.as_slice()[k]
        )));
    }
    Ok(batch)
}

/// What one file holds: its dimension and its samples, column-major.
type FileSamples = std::result::Result<(usize, Vec<f64>), String>;

/// The samples of one CSV file: a chain file by its columns, a plain one by rows. `dim` is the
/// dimension the files before it set.
fn read_csv(path: &Path, dim: Option<usize>) -> FileSamples {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let numeric = |l: &str| l.split(',').all(|v| v.trim().parse::<f64>().is_ok());
    if first.starts_with('#') || first.contains("__") {
        return read_chain(&text, dim);
    }
    let (mut out, mut dim) = (Vec::new(), dim);
    let rows = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    for (k, (line_no, line)) in rows.enumerate() {
        if k == 0 && !numeric(line) {
            continue; // a header
        }
        let row: Vec<f64> = line
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| format!("line {}: not a row of numbers", line_no + 1))?;
        let d = *dim.get_or_insert(row.len());
        if row.len() != d {
            return Err(format!("line {}: {} columns where the samples have {d} coordinates", line_no + 1, row.len()));
        }
        out.extend(row);
    }
    Ok((dim.unwrap_or(1), out))
}

/// A CmdStan-style chain: the columns `x.1, x.2, ...` when there are any (bootflow's own, which
/// also hold observables), otherwise every column not ending in `__` (Stan's).
fn read_chain(text: &str, dim: Option<usize>) -> FileSamples {
    let chain = parse_chain_csv(text).map_err(|e| e.to_string())?;
    let at = |i: usize| chain.columns.iter().position(|c| *c == format!("x.{i}"));
    let named: Vec<usize> = (1..).map_while(at).collect();
    let cols = if named.is_empty() {
        (0..chain.columns.len()).filter(|&k| !chain.columns[k].ends_with("__")).collect()
    } else {
        named
    };
    let d = dim.unwrap_or(cols.len());
    if cols.len() != d || d == 0 {
        return Err(format!(
            "{} coordinate columns (x.1, ... or not ending in __) where the samples have {d}",
            cols.len()
        ));
    }
    Ok((d, chain.rows.iter().flat_map(|r| cols.iter().map(move |&k| r[k])).collect()))
}

/// A float64 or float32 `.npy` array of `n x D` (or `n` for `D = 1`), column-major out.
fn read_npy(path: &Path, dim: Option<usize>) -> FileSamples {
    let open = || -> std::result::Result<npyz::NpyFile<std::io::BufReader<std::fs::File>>, String> {
        let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
        npyz::NpyFile::new(std::io::BufReader::new(f)).map_err(|e| format!("not a .npy file: {e}"))
    };
    let npy = open()?;
    let shape = npy.shape().to_vec();
    let order = npy.order();
    let (n, d) = match shape[..] {
        [n] => (n as usize, 1),
        [n, d] => (n as usize, d as usize),
        _ => return Err(format!("array of shape {shape:?}; expected (n, D) or (n,)")),
    };
    if dim.is_some_and(|want| want != d) || d == 0 {
        return Err(format!("array of shape {shape:?}: {d} columns where the samples have {}", dim.unwrap_or(1)));
    }
    let flat: Vec<f64> = match npy.into_vec::<f64>() {
        Ok(v) => v,
        Err(_) => open()?
            .into_vec::<f32>()
            .map_err(|e| format!("expected a float64 or float32 array: {e}"))?
            .into_iter()
            .map(f64::from)
            .collect(),
    };
    // Column-major dim x n is the row-major (C) layout of n x dim.
    Ok((
        d,
        match order {
            npyz::Order::C => flat,
            npyz::Order::Fortran => (0..n * d).map(|k| flat[(k % d) * n + k / d]).collect(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bootflow-sample-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A `.npy` file of `shape` with `data` in `fortran` or C order, written by hand.
    fn write_npy(path: &Path, shape: &[usize], data: &[f64], fortran: bool) {
        let dims: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
        let tuple = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
        let mut header = format!(
            "{{'descr': '<f8', 'fortran_order': {}, 'shape': {tuple}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        data.iter().for_each(|v| bytes.extend(v.to_le_bytes()));
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn every_format_gives_the_same_samples() {
        let d = dir("formats");
        // Samples (1, 2), (3, 4), (5, 6).
        std::fs::write(d.join("plain.csv"), "a,b\n1,2\n3,4\n5,6\n").unwrap();
        std::fs::write(
            d.join("chain.csv"),
            "# method = hmc\nlp__,accept_stat__,x.1,x.2,E\n0,1,1,2,9\n0,1,3,4,9\n0,1,5,6,9\n",
        )
        .unwrap();
        std::fs::write(
            d.join("stan.csv"),
            "# Stan\nlp__,accept_stat__,stepsize__,mu,tau\n0,1,0.1,1,2\n0,1,0.1,3,4\n0,1,0.1,5,6\n",
        )
        .unwrap();
        write_npy(&d.join("c.npy"), &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], false);
        write_npy(&d.join("f.npy"), &[3, 2], &[1.0, 3.0, 5.0, 2.0, 4.0, 6.0], true);
        for f in ["plain.csv", "chain.csv", "stan.csv", "c.npy", "f.npy"] {
            let b = read_samples(d.join(f).to_str().unwrap()).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(b.as_slice(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "{f}");
        }
        // A glob reads every match in name order.
        let all = read_samples(d.join("*.npy").to_str().unwrap()).unwrap();
        assert_eq!(all.ncols(), 6);
        write_npy(&d.join("one.npy"), &[2], &[7.0, 8.0], false);
        assert_eq!(read_samples(d.join("one.npy").to_str().unwrap()).unwrap().as_slice(), &[7.0, 8.0]);
    }

    #[test]
    fn bad_files_are_refused_with_file_and_reason() {
        let d = dir("bad");
        let cases = [
            ("short.csv", "1,2\n3\n", "line 2: 1 columns where the samples have 2"),
            ("text.csv", "1,2\nx,y\n", "line 2: not a row of numbers"),
            ("nan.csv", "1,2\nnan,4\n", "non-finite"),
            ("empty.csv", "a,b\n", "holds no samples"),
            ("stan.csv", "lp__,accept_stat__\n0,1\n", "0 coordinate columns"),
            ("bad.npy", "not numpy", "not a .npy file"),
        ];
        for (f, text, want) in cases {
            std::fs::write(d.join(f), text).unwrap();
            let e = read_samples(d.join(f).to_str().unwrap()).unwrap_err().to_string();
            assert!(e.contains(want) && (e.contains(f) || want == "holds no samples"), "{f}: {e}");
        }
        let e = read_samples(d.join("none-*.csv").to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("no file matches"), "{e}");
        // The first file of a glob sets the dimension; a later one with another is refused.
        let g = dir("mixed");
        std::fs::write(g.join("a.csv"), "1,2\n3,4\n").unwrap();
        std::fs::write(g.join("b.csv"), "1,2,3\n").unwrap();
        let e = read_samples(g.join("*.csv").to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("b.csv") && e.contains('3') && e.contains('2'), "{e}");
    }
}
