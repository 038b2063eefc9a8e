//! The README's tutorial, run as written: its fenced blocks, in order, become one `bash -euo
//! pipefail` session in a fresh directory with the built `bootflow` first on `PATH` (files the
//! reader saves are written by here-documents at their place in the session). Editing the README
//! changes what runs here.
//!
//! Python comes from a virtual environment kept in `target/tutorial-venv`, created on first use
//! with the `python3` on `PATH`; the tutorial's own `pip install` line fills it (a no-op once it
//! has). A machine without `python3 -m venv` fails this test: nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use bootflow_tests::built;
use bootflow_tests::readme_blocks::{Action, Block, section_blocks};

/// Ends every here-document; a file block containing this line is refused.
const EOF_MARK: &str = "BOOTFLOW_TUTORIAL_EOF";

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `target/tutorial-venv`, created if it does not hold a working interpreter.
fn venv() -> PathBuf {
    let dir = built::profile_dir().parent().expect("target directory").join("tutorial-venv");
    let python = dir.join("bin/python3");
    let works = Command::new(&python).args(["-c", "import sys"]).output().is_ok_and(|o| o.status.success());
    if !works {
        let _ = std::fs::remove_dir_all(&dir);
        let made = Command::new("python3").args(["-m", "venv"]).arg(&dir).output();
        match made {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "`python3 -m venv {}` failed (the tutorial needs Python 3 with venv):\n{}",
                dir.display(),
                text(&o)
            ),
            Err(e) => panic!("python3 not found ({e}): the tutorial's ArviZ step needs Python 3 with venv"),
        }
    }
    dir
}

/// The session: each block behind a marker naming it, so a failure names its block.
fn session(blocks: &[Block]) -> String {
    let mut script = String::from("exec 2>&1\n");
    script.push_str("trap 's=$?; [ $s -eq 0 ] || echo \"tutorial: block $BLOCK exited with status $s\"' EXIT\n");
    for (n, block) in blocks.iter().enumerate() {
        script.push_str(&format!("BLOCK='{} (README.md line {})'\n", n + 1, block.line));
        script.push_str("echo \"tutorial: block $BLOCK at ${SECONDS} s\"\n");
        match &block.action {
            Action::Shell => script.push_str(&block.text),
            Action::File(name) => {
                assert!(!block.text.lines().any(|l| l == EOF_MARK), "block at line {} holds {EOF_MARK}", block.line);
                script.push_str(&format!("cat > '{name}' <<'{EOF_MARK}'\n{}{EOF_MARK}\n", block.text));
            }
        }
    }
    script
}

/// `PATH` with `dirs` in front.
fn path_with(dirs: &[&Path]) -> std::ffi::OsString {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let all = dirs.iter().map(|d| d.to_path_buf()).chain(std::env::split_paths(&inherited));
    std::env::join_paths(all).expect("PATH entries without separators")
}

#[test]
fn the_readme_tutorial_runs_as_written() {
    let readme = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let markdown = std::fs::read_to_string(&readme).expect("read README.md");
    let blocks = section_blocks(&markdown, "## Tutorial").unwrap_or_else(|e| panic!("README.md tutorial: {e}"));
    assert!(blocks.iter().any(|b| b.action == Action::Shell), "the tutorial has no `sh` block");

    let venv = venv();
    let bootflow_dir = built::bootflow().parent().expect("binary directory").to_path_buf();
    // The cargo running these tests builds the tutorial's plugin too.
    let cargo = std::env::var_os("CARGO").map(PathBuf::from);
    let cargo_dir = cargo.as_deref().and_then(Path::parent).filter(|d| !d.as_os_str().is_empty());
    let venv_bin = venv.join("bin");
    let path_front: Vec<&Path> =
        [Some(bootflow_dir.as_path()), Some(venv_bin.as_path()), cargo_dir].into_iter().flatten().collect();
    let dir = built::temp_dir("tutorial");
    let script = dir.join(".tutorial.sh");
    std::fs::write(&script, session(&blocks)).expect("write the session script");

    let started = Instant::now();
    let out = Command::new("bash")
        .args(["-euo", "pipefail"])
        .arg(&script)
        .current_dir(&dir)
        .env("PATH", path_with(&path_front))
        .env("VIRTUAL_ENV", &venv)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env_remove("PYTHONHOME")
        // The reader's environment has none of these: the plugin search path is theirs to set,
        // and the plugin crate builds into its own target directory.
        .env_remove("BOOTFLOW_PLUGIN_PATH")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .output()
        .expect("run bash");
    let log = text(&out);
    assert!(
        out.status.success(),
        "the README tutorial failed after {:.0} s in {} (kept for inspection):\n{}",
        started.elapsed().as_secs_f64(),
        dir.display(),
        tail(&log, 12_000)
    );
    // Shown with `--nocapture`: what the reader would see, with the time each block started.
    eprintln!("{log}\nREADME tutorial: {} blocks ran in {:.0} s", blocks.len(), started.elapsed().as_secs_f64());
    std::fs::remove_dir_all(&dir).expect("remove the tutorial directory");
}

/// The last `max` bytes of `s` (at a character boundary).
fn tail(s: &str, max: usize) -> &str {
    let mut from = s.len().saturating_sub(max);
    while !s.is_char_boundary(from) {
        from += 1;
    }
    &s[from..]
}
