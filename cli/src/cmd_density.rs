//! `bootflow density`: evaluate a target's log-density (and gradient) at points from a CSV file.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use bootflow_core::run::input::{data_limit, read_text};
use bootflow_core::{Batch, Registry};
use clap::Args;

use crate::target_arg::TargetArgs;

/// Evaluate `log p~` at points read from a CSV file (one point per row).
///
/// Example: `bootflow density --target manywell --set dim=4 --points pts.csv --grad`
#[derive(Args)]
pub struct DensityArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// CSV file with one point per row (`d` numbers); `#` lines and an optional header row of
    /// column names are skipped.
    #[arg(long, value_name = "FILE.csv")]
    pub points: PathBuf,
    /// Also write the gradient (`grad.1 ... grad.d` columns).
    #[arg(long)]
    pub grad: bool,
}

pub fn run(args: &DensityArgs, reg: &Registry) -> Result<()> {
    let target = args.target.build(reg)?;
    let d = target.dim();
    if args.grad && !target.has_grad() {
        bail!("target '{}' has no gradient; leave out --grad", args.target.target);
    }
    let x = read_points(&args.points, d)?;
    let n = x.ncols();
    let mut lp = vec![0.0; n];
    let mut grad = Batch::zeros(d, n);
    if args.grad {
        target.log_prob_grad_batch(&x, &mut lp, &mut grad)?;
    } else {
        target.log_prob_batch(&x, &mut lp)?;
    }
    if let Some(i) = lp.iter().position(|v| v.is_nan()) {
        bail!("{}: log density is NaN at point {} (row {} of the points)", args.points.display(), i + 1, i + 1);
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut header = vec!["log_prob".to_string()];
    if args.grad {
        header.extend((1..=d).map(|i| format!("grad.{i}")));
    }
    writeln!(out, "{}", header.join(","))?;
    for (j, &lp_j) in lp.iter().enumerate() {
        let mut row = vec![fmt(lp_j)];
        if args.grad {
            row.extend(grad.column(j).iter().map(|v| fmt(*v)));
        }
        writeln!(out, "{}", row.join(","))?;
    }
    out.flush()?;
    Ok(())
}

/// Numbers in shortest round-trip form; infinities as `inf`/`-inf`, NaN as `nan`.
pub fn fmt(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v}")
    }
}

/// Reads `d`-column points; errors name the file, line and column.
pub fn read_points(path: &Path, d: usize) -> Result<Batch> {
    let text = read_text(path, "points file", data_limit())?;
    let mut values = Vec::new();
    let mut first_data = true;
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let header = first_data
            && fields.iter().all(|f| f.parse::<f64>().is_err() && f.chars().next().is_some_and(char::is_alphabetic));
        first_data = false;
        if header {
            continue;
        }
        if fields.len() != d {
            bail!(
                "{}:{}: expected {d} columns (the target's dimension), found {}",
                path.display(),
                ln + 1,
                fields.len()
            );
        }
        for (c, f) in fields.iter().enumerate() {
            let v: f64 = f.parse().map_err(|_| {
                anyhow::anyhow!("{}:{}: column {}: '{f}' is not a number", path.display(), ln + 1, c + 1)
            })?;
            if !v.is_finite() {
                bail!("{}:{}: column {}: '{f}' is not a finite number", path.display(), ln + 1, c + 1);
            }
            values.push(v);
        }
    }
    if values.is_empty() {
        bail!("{}: no points", path.display());
    }
    Ok(Batch::from_column_slice(d, values.len() / d, &values))
}
