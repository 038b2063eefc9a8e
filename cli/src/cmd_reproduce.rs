//! `bootflow reproduce [NAME...]`: runs the shipped reproductions (all, or those named), shortest
//! first, and prints our figures next to the published ones as a markdown table, also written to
//! `OUT/table.md` after each entry (each entry's run directory is `OUT/NAME`). `--list` shows
//! what would run and for how long; `--budget-minutes` bounds the whole command.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use bootflow_core::Registry;
use bootflow_core::run::outdir::prepare;
use bootflow_core::run::reproduce::{Entry, Outcome, Plan, TABLE_FILE, plan, run_entry, select, table, write_table};

use crate::Interrupted;
use crate::progress::Stderr;

/// Arguments of `bootflow reproduce`.
#[derive(clap::Args)]
pub struct ReproduceArgs {
    /// Entries to run (default: all; `--list` names them).
    pub names: Vec<String>,
    /// Wall-time budget of the whole command in minutes: entries that fit run in full, shortest
    /// first; the rest share what is left and are marked as cut in the table.
    #[arg(long, value_name = "N")]
    pub budget_minutes: Option<f64>,
    /// Show the entries, their full time on the development machine and what the budget gives
    /// each, without running anything.
    #[arg(long)]
    pub list: bool,
    /// Output directory: one run directory per entry and table.md.
    #[arg(long, short, default_value = "reproduce")]
    pub out: PathBuf,
    /// Replace earlier runs in the entries' directories (only files bootflow wrote).
    #[arg(long)]
    pub force: bool,
}

/// Runs `bootflow reproduce` with the components in `registry`.
pub fn run(args: &ReproduceArgs, registry: &Registry) -> Result<()> {
    if let Some(b) = args.budget_minutes
        && !(b.is_finite() && b > 0.0)
    {
        bail!("--budget-minutes {b}: expected a positive number of minutes");
    }
    let entries = select(&args.names)?;
    if args.list {
        print!("{}", list(&entries, args.budget_minutes));
        return Ok(());
    }
    // Every directory is checked before anything runs: a refused one leaves all untouched.
    for e in &entries {
        prepare(&args.out.join(&e.name), args.force, "--out")?;
    }
    let start = Instant::now();
    let mut left = entries;
    let mut done: Vec<Outcome> = Vec::new();
    while !left.is_empty() {
        let budget = args.budget_minutes.map(|b| b - start.elapsed().as_secs_f64() / 60.0);
        let plans = plan(&left, budget);
        let next = (0..left.len()).min_by(|&a, &b| left[a].minutes.total_cmp(&left[b].minutes)).unwrap_or(0);
        let entry = left.remove(next);
        let how = match plans[next] {
            Plan::Full => format!("full, about {:.1} min", entry.minutes),
            Plan::Cut(m) => format!("cut to {m:.2} of {:.1} min", entry.minutes),
        };
        eprintln!("reproduce {} ({how}): {}", entry.name, entry.what);
        let outcome = run_entry(&entry, plans[next], &args.out.join(&entry.name), true, registry, &Stderr)?;
        if crate::progress::interrupted() {
            return Err(Interrupted(format!(
                "interrupted during {}; the table of the entries done is in {}",
                entry.name,
                args.out.join(TABLE_FILE).display()
            ))
            .into());
        }
        done.push(outcome);
        write_table(&args.out, &table(&done))?;
    }
    print!("{}", table(&done));
    println!("(table written to {})", args.out.join(TABLE_FILE).display());
    Ok(())
}

/// The `--list` table.
fn list(entries: &[Entry], budget: Option<f64>) -> String {
    let plans = plan(entries, budget);
    let mut out = String::from("entry            full time  with this budget   config                what\n");
    for (e, p) in entries.iter().zip(plans) {
        let given = match p {
            Plan::Full => "full".to_string(),
            Plan::Cut(m) => format!("cut to {m:.2} min"),
        };
        out += &format!("{:<16} {:>6.1} min  {given:<18} scripts/{:<20}  {}\n", e.name, e.minutes, e.config, e.what);
    }
    let total: f64 = entries.iter().map(|e| e.minutes).sum();
    out += &format!("total {total:.0} min in full (measured on a 2-core machine)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_names_every_entry_and_the_cut_ones() {
        let entries = select(&[]).unwrap();
        let text = list(&entries, Some(10.0));
        for e in &entries {
            assert!(text.contains(&e.name) && text.contains(&e.config), "{text}");
        }
        assert!(text.contains("full") && text.contains("cut to"), "{text}");
    }
}
