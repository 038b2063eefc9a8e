//! Where plugins are looked for, and what was found.
//!
//! Directories, in order: every `--plugin-dir`, then each entry of `BOOTFLOW_PLUGIN_PATH`
//! (separated like `PATH`: `:` on Unix, `;` on Windows), then the directory of the running
//! executable. Opening a library runs its code, so candidates are chosen by name:
//! - in a directory given explicitly with `--plugin-dir`, every file with the platform's
//!   shared-library suffix (`.so`, `.dylib`, `.dll`): the user pointed at it on purpose;
//! - in the other directories, only files named `libbootflow_*` (`bootflow_*.dll` on Windows),
//!   so that a directory full of unrelated libraries is never opened wholesale.
//!
//! A file name already loaded from an earlier directory is skipped as shadowed (like `PATH`).
//! Nothing here fails: every file that is not loaded is reported with a reason.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::host::{Plugin, load};
use crate::registry::Registry;

/// Environment variable with extra plugin directories.
pub const PATH_VAR: &str = "BOOTFLOW_PLUGIN_PATH";

/// A directory to search and whether the user named it explicitly.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchDir {
    /// Directory whose files are candidates (subdirectories are not searched).
    pub path: PathBuf,
    /// Given with `--plugin-dir`: every shared library in it is a candidate, not only `libbootflow_*`.
    pub explicit: bool,
}

/// A file (or directory) that was not loaded, and why.
#[derive(Clone, Debug)]
pub struct Refused {
    /// The file or directory that was skipped.
    pub path: PathBuf,
    /// Human-readable reason (load error, shadowed by an earlier file, unreadable directory, ...).
    pub reason: String,
}

/// The outcome of a search: loaded plugins in search order, and everything refused.
#[derive(Clone, Default)]
pub struct Discovery {
    /// Loaded plugins, in search order.
    pub plugins: Vec<Plugin>,
    /// Every file or directory not loaded, with its reason.
    pub refused: Vec<Refused>,
}

/// The search path for explicit directories `explicit`, the value of [`PATH_VAR`] and the
/// running executable.
pub fn search_path(explicit: &[PathBuf]) -> Vec<SearchDir> {
    let env = std::env::var_os(PATH_VAR).unwrap_or_default();
    let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
    let mut dirs: Vec<SearchDir> = explicit.iter().map(|p| SearchDir { path: p.clone(), explicit: true }).collect();
    dirs.extend(
        std::env::split_paths(&env)
            .filter(|p| !p.as_os_str().is_empty())
            .map(|path| SearchDir { path, explicit: false }),
    );
    dirs.extend(exe_dir.map(|path| SearchDir { path, explicit: false }));
    dirs
}

/// Whether `name` is a candidate file name (see the module docs).
pub fn is_candidate(name: &str, explicit: bool) -> bool {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    name.ends_with(DLL_SUFFIX) && (explicit || name.starts_with(&format!("{DLL_PREFIX}bootflow_")))
}

/// Loads every candidate of `dirs`, in order. Directories are visited once each; a missing
/// explicit directory is reported, a missing implicit one is skipped.
pub fn discover(dirs: &[SearchDir]) -> Discovery {
    let mut found = Discovery::default();
    let mut seen_dirs = Vec::new();
    let mut loaded_names: HashMap<std::ffi::OsString, PathBuf> = HashMap::new();
    for dir in dirs {
        let key = dir.path.canonicalize().unwrap_or_else(|_| dir.path.clone());
        if seen_dirs.contains(&key) {
            continue;
        }
        seen_dirs.push(key);
        let entries = match std::fs::read_dir(&dir.path) {
            Ok(e) => e,
            Err(e) => {
                if dir.explicit {
                    found
                        .refused
                        .push(Refused { path: dir.path.clone(), reason: format!("cannot read directory: {e}") });
                }
                continue;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| is_candidate(n, dir.explicit))
            })
            .collect();
        files.sort();
        for path in files {
            let name = path.file_name().expect("a listed file has a name").to_os_string();
            if let Some(first) = loaded_names.get(&name) {
                let reason = format!("shadowed by {}", first.display());
                found.refused.push(Refused { path, reason });
                continue;
            }
            match load(&path) {
                Ok(p) => {
                    loaded_names.insert(name, path);
                    found.plugins.push(p);
                }
                Err(e) => found.refused.push(Refused { path, reason: e.to_string() }),
            }
        }
    }
    found
}

impl Discovery {
    /// Registers every plugin into `reg`, in search order. A plugin providing a name that is
    /// already taken (by a built-in or an earlier plugin) is moved to the refused list whole.
    pub fn register_all(&mut self, reg: &mut Registry) {
        let plugins = std::mem::take(&mut self.plugins);
        for p in plugins {
            match p.register_into(reg) {
                Ok(()) => self.plugins.push(p),
                Err(e) => self.refused.push(Refused { path: p.path.clone(), reason: format!("name clash: {e}") }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_the_naming_rule() {
        use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
        let ours = format!("{DLL_PREFIX}bootflow_phi4{DLL_SUFFIX}");
        let other = format!("{DLL_PREFIX}z{DLL_SUFFIX}");
        assert!(is_candidate(&ours, false) && is_candidate(&ours, true));
        assert!(!is_candidate(&other, false) && is_candidate(&other, true));
        assert!(!is_candidate("bootflow_notes.txt", true));
    }

    #[test]
    fn explicit_directories_come_first_and_missing_ones_are_reported() {
        let dirs = search_path(&[PathBuf::from("/nonexistent/bootflow-a")]);
        assert_eq!(dirs[0], SearchDir { path: "/nonexistent/bootflow-a".into(), explicit: true });
        assert!(!dirs.last().unwrap().explicit, "the executable's directory comes last");
        let d = discover(&dirs[..1]);
        assert!(d.plugins.is_empty());
        assert_eq!(d.refused.len(), 1);
        assert!(d.refused[0].reason.starts_with("cannot read directory"), "{:?}", d.refused);
    }
}
