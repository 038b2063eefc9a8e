//! Paths of artefacts built by `cargo build --workspace` (the `bootflow` binary, plugin
//! libraries), found from the running test executable: `target/<profile>/deps/<test>` →
//! `target/<profile>/`. The tests need that build to have run first, with the same profile.

use std::path::PathBuf;

/// `target/<profile>/`, the directory holding the binary and the libraries.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let deps = exe.parent().expect("test executable lives in a directory");
    let dir = if deps.file_name().is_some_and(|n| n == "deps") { deps.parent().expect("profile dir") } else { deps };
    dir.to_path_buf()
}

fn existing(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.is_file(),
        "{what} not found at {}: run `cargo build --workspace` (same profile as the tests) before `cargo test`",
        path.display()
    );
    path
}

/// The `bootflow` executable.
pub fn bootflow() -> PathBuf {
    existing(profile_dir().join(format!("bootflow{}", std::env::consts::EXE_SUFFIX)), "the bootflow binary")
}

/// The shared library of the crate whose `[lib] name` is `lib_name` (e.g. `fixture_sample_plugin`).
pub fn library(lib_name: &str) -> PathBuf {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    existing(profile_dir().join(format!("{DLL_PREFIX}{lib_name}{DLL_SUFFIX}")), "a plugin library")
}

/// A fresh empty directory under the system temporary directory, unique to `name` and this process.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bootflow-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}
