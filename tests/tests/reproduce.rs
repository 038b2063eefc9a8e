//! `bootflow reproduce` end to end with tiny budgets: every entry runs (cut), the table has a row
//! for every published figure of every entry, marked as cut, and `table.md` holds the same; the
//! used output directory is refused without `--force`; `--list` names every entry.

use std::process::{Command, Output};

use bootflow_core::run::reproduce::{TABLE_FILE, entries};
use bootflow_tests::built;

fn bootflow(args: &[&str]) -> Output {
    Command::new(built::bootflow()).args(args).env("RAYON_NUM_THREADS", "2").output().expect("bootflow runs")
}

#[test]
fn tiny_budgets_run_every_entry_and_the_table_has_every_row() {
    let dir = built::temp_dir("reproduce");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let all = entries().unwrap();
    let run = bootflow(&["reproduce", "--budget-minutes", "0.3", "--out", o]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let table = std::fs::read_to_string(out.join(TABLE_FILE)).unwrap();
    assert!(stdout.contains(&table), "the printed table is the written one:\n{stdout}");
    let rows: Vec<&str> = table.lines().skip(2).collect();
    let figures: usize = all.iter().map(|e| e.figures.len()).sum();
    assert_eq!(rows.len(), figures, "{table}");
    for e in &all {
        for f in &e.figures {
            let row = rows
                .iter()
                .find(|r| r.starts_with(&format!("| {} |", e.name)) && r.contains(&format!("| {} |", f.metric)))
                .unwrap_or_else(|| panic!("no row for {} {}:\n{table}", e.name, f.metric));
            // A cut run's figure is computed but not judged against the published one.
            assert!(row.contains("CUT to") && row.contains(&f.shown) && !row.contains("not computed"), "{row}");
        }
        assert!(out.join(&e.name).join("estimate.json").is_file(), "{}", e.name);
    }
    // The used directory is refused, and --force runs again (one small entry).
    let again = bootflow(&["reproduce", "gmm5", "--budget-minutes", "0.05", "--out", o]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{err}");
    assert!(err.contains("already holds files") && err.lines().count() == 1, "{err}");
    let forced = bootflow(&["reproduce", "gmm5", "--budget-minutes", "0.05", "--out", o, "--force"]);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    let table = std::fs::read_to_string(out.join(TABLE_FILE)).unwrap();
    assert_eq!(table.lines().skip(2).count(), all[0].figures.len(), "{table}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn list_shows_every_entry_and_what_a_budget_gives() {
    let o = bootflow(&["reproduce", "--list", "--budget-minutes", "10"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for e in entries().unwrap() {
        assert!(text.contains(&e.name) && text.contains(&e.config), "{text}");
    }
    assert!(text.contains("cut to") && text.contains("full"), "{text}");
    let bad = bootflow(&["reproduce", "nope", "--list"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(bad.status.code() == Some(2) && err.contains("no entry 'nope'"), "{err}");
    let bad = bootflow(&["reproduce", "--budget-minutes", "0"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(bad.status.code() == Some(2) && err.contains("--budget-minutes 0"), "{err}");
}
