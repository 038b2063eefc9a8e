//! Output directories. A command writes into a directory that is new or empty, so that the files
//! of two runs are never mixed (a `chain_*.csv` glob over a directory that held a larger run
//! would read chains of both). `--force` empties a used directory first, but only one that holds
//! nothing but files bootflow writes: it never deletes what it did not make.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Whether `name` is a file bootflow writes into a run directory.
pub fn is_bootflow_file(name: &str) -> bool {
    const FIXED: [&str; 9] = [
        "config.toml",
        "metrics.csv",
        "eval.csv",
        "gradvar.csv",
        "checkpoint.json",
        "checkpoint.json.tmp",
        "summary.json",
        "estimate.json",
        "report.md",
    ];
    let chain = name
        .strip_prefix("chain_")
        .and_then(|r| r.strip_suffix(".csv"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let figure = [".png", ".svg"].iter().any(|e| name.ends_with(e));
    FIXED.contains(&name) || name.starts_with("summary.json.") || chain || figure
}

/// A directory `--force` will empty, and its files: emptied by [`empty_forced`] when the command
/// is about to write, so a command that fails on its input first leaves the old run whole.
static PENDING: Mutex<Option<(PathBuf, Vec<PathBuf>)>> = Mutex::new(None);

/// Checks that `dir` is ready for a new run: absent or empty is fine; a used directory is
/// refused unless `force`, which marks it to be emptied (by [`empty_forced`], which the run
/// pipeline calls just before its first write) when everything in it is bootflow's. `flag`
/// names the option that chose the directory in messages (`--out`).
pub fn prepare(dir: &Path, force: bool, flag: &str) -> Result<()> {
    let shown = dir.display();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) if dir.exists() && !dir.is_dir() => {
            return Err(Error::Config(format!("{flag} {shown} is not a directory")));
        }
        Err(e) => return Err(Error::io(format!("{flag} {shown}: reading the directory"), e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("{flag} {shown}: reading the directory"), e))?;
        names.push((entry.file_name().to_string_lossy().into_owned(), entry.path()));
    }
    names.sort();
    let Some((first, _)) = names.first() else { return Ok(()) };
    if !force {
        return Err(Error::Config(format!(
            "{flag} {shown} already holds files (e.g. {first}); pass --force to replace them, or choose another {flag}"
        )));
    }
    if let Some((foreign, _)) = names.iter().find(|(n, p)| !is_bootflow_file(n) || !p.is_file()) {
        return Err(Error::Config(format!(
            "--force: {flag} {shown} holds {foreign}, which bootflow did not write; not emptying it"
        )));
    }
    let files = names.into_iter().map(|(_, p)| p).collect();
    *PENDING.lock().unwrap_or_else(|e| e.into_inner()) = Some((dir.to_path_buf(), files));
    Ok(())
}

/// Empties `dir` if [`prepare`] marked it for `--force`; otherwise does nothing.
pub fn empty_forced(dir: &Path) -> Result<()> {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    if pending.as_ref().is_some_and(|(d, _)| d == dir) {
        let (_, files) = pending.take().expect("checked above");
        for path in &files {
            std::fs::remove_file(path).map_err(|e| Error::io(format!("--force: removing {}", path.display()), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bootflow-outdir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn new_and_empty_directories_are_ready_and_used_ones_are_refused() {
        let dir = fresh("used");
        prepare(&dir.join("absent"), false, "--out").unwrap();
        prepare(&dir, false, "--out").unwrap();
        std::fs::write(dir.join("chain_1.csv"), "x").unwrap();
        std::fs::write(dir.join("summary.json"), "{}").unwrap();
        let err = prepare(&dir, false, "--out").unwrap_err().to_string();
        assert!(err.contains("already holds files (e.g. chain_1.csv)") && err.contains("--force"), "{err}");
        assert!(dir.join("chain_1.csv").exists());
        prepare(&dir, true, "--out").unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2, "emptied before the command writes");
        empty_forced(&dir.join("other")).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        empty_forced(&dir).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn force_never_deletes_what_bootflow_did_not_write() {
        let dir = fresh("foreign");
        std::fs::write(dir.join("summary.json"), "{}").unwrap();
        std::fs::write(dir.join("thesis.tex"), "precious").unwrap();
        let err = prepare(&dir, true, "--out").unwrap_err().to_string();
        assert!(err.contains("thesis.tex, which bootflow did not write"), "{err}");
        assert!(dir.join("summary.json").exists() && dir.join("thesis.tex").exists());
        std::fs::remove_file(dir.join("thesis.tex")).unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        assert!(prepare(&dir, true, "--out").unwrap_err().to_string().contains("sub"));
        let file = dir.join("summary.json");
        assert!(prepare(&file, false, "--out").unwrap_err().to_string().contains("not a directory"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bootflow_files_are_recognised_by_name() {
        for n in ["chain_12.csv", "metrics.csv", "pairs.png", "chains.svg", "report.md", "checkpoint.json.tmp"] {
            assert!(is_bootflow_file(n), "{n}");
        }
        for n in ["chain_.csv", "chain_a.csv", "notes.txt", "data.npy", "config.toml.bak"] {
            assert!(!is_bootflow_file(n), "{n}");
        }
    }
}
