//! `bootflow plugins` on real shared libraries: the sample plugin is listed with what it
//! provides; a library of another ABI, a library that is not a plugin and a truncated file are
//! each refused with a reason; the command still exits 0.

use std::path::{Path, PathBuf};
use std::process::Command;

use bootflow_tests::built;
use serde_json::Value;

/// A plugin directory holding the three fixture libraries and a truncated copy of the sample plugin.
fn fixture_dir(name: &str) -> PathBuf {
    let dir = built::temp_dir(name);
    for lib in ["fixture_sample_plugin", "fixture_abi_mismatch", "fixture_not_a_plugin"] {
        let src = built::library(lib);
        std::fs::copy(&src, dir.join(src.file_name().unwrap())).unwrap();
    }
    // The first bytes of a real library: a valid ELF header with everything it announces missing.
    let bytes = std::fs::read(built::library("fixture_sample_plugin")).unwrap();
    let truncated = dir.join(format!("{}truncated{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    std::fs::write(&truncated, &bytes[..4096]).unwrap();
    dir
}

fn plugins_json(dir: &Path) -> (Value, String) {
    let out = Command::new(built::bootflow())
        .args(["plugins", "--json", "--plugin-dir"])
        .arg(dir)
        .env_remove("BOOTFLOW_PLUGIN_PATH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "exit {:?}, stderr: {stderr}", out.status.code());
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    (v, stderr)
}

fn refusal_of<'a>(v: &'a Value, file: &Path) -> &'a str {
    let refused = v["refused"].as_array().expect("refused is a list");
    let hit = refused.iter().find(|r| r["path"].as_str() == Some(file.to_str().unwrap()));
    hit.unwrap_or_else(|| panic!("{} not refused: {v:#}", file.display()))["reason"].as_str().expect("reason text")
}

#[test]
fn lists_the_sample_plugin_and_refuses_the_rest_with_reasons() {
    let dir = fixture_dir("list");
    let (v, stderr) = plugins_json(&dir);
    assert!(stderr.is_empty(), "nothing on stderr, got: {stderr}");

    let plugins = v["plugins"].as_array().expect("plugins is a list");
    let sample = plugins.iter().find(|p| p["name"] == "sample").unwrap_or_else(|| panic!("no sample plugin: {v:#}"));
    for key in ["name", "version", "abi", "path", "provides"] {
        assert!(sample.get(key).is_some(), "key {key} missing: {sample:#}");
    }
    assert_eq!(sample["abi"], bootflow_core::plugin::abi::ABI_VERSION);
    assert_eq!(sample["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        Path::new(sample["path"].as_str().unwrap()),
        dir.join(built::library("fixture_sample_plugin").file_name().unwrap())
    );
    let mut provides: Vec<(String, String)> = sample["provides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(p["description"].as_str().is_some_and(|d| !d.is_empty()), "{p}");
            (p["kind"].as_str().unwrap().to_string(), p["name"].as_str().unwrap().to_string())
        })
        .collect();
    provides.sort();
    let want = [("bijection", "sample_affine"), ("kernel", "sample_rwm"), ("target", "gauss2d"), ("target", "panics")];
    assert_eq!(provides, want.map(|(k, n)| (k.to_string(), n.to_string())));

    let lib = |n: &str| dir.join(built::library(n).file_name().unwrap());
    let abi = refusal_of(&v, &lib("fixture_abi_mismatch"));
    assert!(
        abi.contains("ABI 999") && abi.contains(&format!("ABI {}", bootflow_core::plugin::abi::ABI_VERSION)),
        "names both versions: {abi}"
    );
    let not_plugin = refusal_of(&v, &lib("fixture_not_a_plugin"));
    assert!(not_plugin.contains("not a bootflow plugin"), "{not_plugin}");
    let truncated = dir.join(format!("{}truncated{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    let cut = refusal_of(&v, &truncated);
    assert!(cut.contains("truncated"), "{cut}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn human_table_lists_plugins_and_refusals_and_exits_zero() {
    let dir = fixture_dir("table");
    let out = Command::new(built::bootflow())
        .args(["plugins", "--plugin-dir"])
        .arg(&dir)
        .env_remove("BOOTFLOW_PLUGIN_PATH")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("sample 0.1.0 (ABI {})", bootflow_core::plugin::abi::ABI_VERSION))
            && text.contains("gauss2d"),
        "{text}"
    );
    assert!(text.contains("refused:") && text.contains("wrong ABI"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plugin_path_variable_is_searched_after_explicit_directories() {
    // The same file name in an explicit directory and on BOOTFLOW_PLUGIN_PATH: the explicit one
    // loads, the other is reported as shadowed (a name from the variable must start with libbootflow_).
    let (first, second) = (built::temp_dir("first"), built::temp_dir("second"));
    let name = format!("{}bootflow_sample_copy{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    for d in [&first, &second] {
        std::fs::copy(built::library("fixture_sample_plugin"), d.join(&name)).unwrap();
    }
    let out = Command::new(built::bootflow())
        .args(["plugins", "--json", "--plugin-dir"])
        .arg(&first)
        .env("BOOTFLOW_PLUGIN_PATH", &second)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = v["plugins"].as_array().unwrap().iter().filter_map(|p| p["path"].as_str()).collect();
    assert!(paths.contains(&first.join(&name).to_str().unwrap()), "{v:#}");
    assert!(refusal_of(&v, &second.join(&name)).starts_with("shadowed by"), "{v:#}");
    for d in [first, second] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
