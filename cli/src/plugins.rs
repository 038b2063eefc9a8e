//! The registry every command uses: built-ins plus every plugin found on the search path.

use std::path::PathBuf;

use bootflow_core::Registry;
use bootflow_core::plugin::{Discovery, discover, search_path};

/// Built-in components and every loadable plugin from `--plugin-dir` directories,
/// `BOOTFLOW_PLUGIN_PATH` and the executable's directory. Files that cannot be loaded (or whose
/// names clash) are listed in the returned [`Discovery`], never fatal.
pub fn registry(plugin_dirs: &[PathBuf]) -> anyhow::Result<(Registry, Discovery)> {
    // A directory the user named must exist: a typo would otherwise go unnoticed until a
    // component it should have provided is missing.
    for dir in plugin_dirs {
        if !dir.is_dir() {
            let why = if dir.exists() { "is not a directory" } else { "does not exist" };
            anyhow::bail!("--plugin-dir {}: {why}", dir.display());
        }
    }
    let mut reg = Registry::with_builtins();
    let mut found = discover(&search_path(plugin_dirs));
    found.register_all(&mut reg);
    Ok((reg, found))
}
