//! `bootflow new-plugin NAME`: writes a plugin crate `bootflow-NAME` that builds on its own
//! (`cargo build`) into `libbootflow_NAME`, with an example target, its tests and a README.
//! The files come from `cli/templates/plugin/`, with `{{...}}` placeholders filled in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The core crate this binary was built from: the default path dependency of a new plugin.
const BUILT_CORE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core");

/// Template files: path inside the new crate, template text.
const TEMPLATES: [(&str, &str); 5] = [
    ("Cargo.toml", include_str!("../templates/plugin/Cargo.toml.tmpl")),
    (".gitignore", include_str!("../templates/plugin/gitignore.tmpl")),
    ("README.md", include_str!("../templates/plugin/README.md.tmpl")),
    ("src/lib.rs", include_str!("../templates/plugin/src/lib.rs.tmpl")),
    ("src/banana.rs", include_str!("../templates/plugin/src/banana.rs.tmpl")),
];

/// Arguments of `bootflow new-plugin`.
#[derive(clap::Args)]
pub struct NewPluginArgs {
    /// Plugin name: lowercase letters, digits, `_` and `-`, starting with a letter.
    pub name: String,
    /// Directory of the new crate (default: ./bootflow-NAME); must not exist yet.
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
    /// The bootflow-core crate to depend on (default: the one this binary was built from).
    #[arg(long, value_name = "PATH")]
    pub core_path: Option<PathBuf>,
}

/// Checks a plugin name: it becomes part of a crate name, a library file name and Rust strings.
pub fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok || name.len() > 64 {
        bail!(
            "invalid plugin name {name:?}: use 1 to 64 lowercase letters, digits, `_` or `-`, starting with a letter"
        );
    }
    Ok(())
}

/// The template `text` with every `{{key}}` of `vars` replaced.
pub fn render(text: &str, vars: &[(&str, String)]) -> String {
    vars.iter().fold(text.to_string(), |acc, (key, value)| acc.replace(&format!("{{{{{key}}}}}"), value))
}

/// Placeholder values for plugin `name` depending on the core crate at `core` (absolute).
fn variables(name: &str, core: &Path) -> Vec<(&'static str, String)> {
    let crate_name = format!("bootflow-{name}");
    vec![
        ("lib_name", crate_name.replace('-', "_")),
        ("crate_name", crate_name),
        ("target_name", format!("{name}-banana")),
        // A TOML string literal, quoted and escaped.
        ("core_path", toml::Value::String(core.display().to_string()).to_string()),
        ("name", name.to_string()),
    ]
}

/// Writes the plugin crate for `name` into `dir`, which must not exist.
pub fn scaffold(name: &str, dir: &Path, core: &Path) -> Result<()> {
    validate_name(name)?;
    if dir.exists() {
        bail!("{} already exists; choose another --dir", dir.display());
    }
    let vars = variables(name, core);
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    // create_dir (not _all) fails if the directory appeared meanwhile: nothing is overwritten.
    std::fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let written = write_files(dir, &vars);
    if written.is_err() {
        // The directory is ours (just created): leave no half-written crate behind.
        let _ = std::fs::remove_dir_all(dir);
    }
    written
}

fn write_files(dir: &Path, vars: &[(&str, String)]) -> Result<()> {
    for (rel, text) in TEMPLATES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, render(text, vars)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The core crate directory: `--core-path` or the built-in one, made absolute and checked.
fn core_dir(arg: Option<&Path>) -> Result<PathBuf> {
    let path = arg.unwrap_or(Path::new(BUILT_CORE_PATH));
    let abs = path.canonicalize().with_context(|| {
        format!("bootflow-core not found at {}; pass --core-path DIR of a bootflow-core checkout", path.display())
    })?;
    if !abs.join("Cargo.toml").is_file() {
        bail!("{} holds no Cargo.toml: --core-path must name the bootflow-core crate directory", abs.display());
    }
    Ok(abs)
}

/// Runs `bootflow new-plugin`.
pub fn run(args: &NewPluginArgs) -> Result<()> {
    validate_name(&args.name)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(format!("bootflow-{}", args.name)));
    if dir.exists() {
        bail!("{} already exists; choose another --dir", dir.display());
    }
    let core = core_dir(args.core_path.as_deref())?;
    scaffold(&args.name, &dir, &core)?;
    let lib = format!("bootflow_{}", args.name.replace('-', "_"));
    println!("created plugin crate bootflow-{} in {}", args.name, dir.display());
    println!("next: cd {} && cargo test && cargo build --release", dir.display());
    println!("then: BOOTFLOW_PLUGIN_PATH={}/target/release bootflow plugins   (loads lib{lib})", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["a", "banana2", "my_plugin", "my-plugin"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "2d", "Upper", "a b", "a/b", "a\"b", "-x", "é", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let vars = variables("my-pl", Path::new("/src/bootflow \"core\""));
        for (rel, text) in TEMPLATES {
            let out = render(text, &vars);
            assert!(!out.contains("{{"), "{rel} keeps a placeholder");
        }
        let manifest = render(TEMPLATES[0].1, &vars);
        let parsed: toml::Table = toml::from_str(&manifest).unwrap();
        assert_eq!(parsed["package"]["name"].as_str(), Some("bootflow-my-pl"));
        let core = &parsed["dependencies"]["bootflow-core"]["path"];
        assert_eq!(core.as_str(), Some("/src/bootflow \"core\""));
        assert!(parsed.contains_key("workspace"));
        let lib = render(TEMPLATES[3].1, &vars);
        assert!(lib.contains("export_plugin!(name = \"my-pl\", register = register)"), "{lib}");
    }

    #[test]
    fn refuses_an_existing_directory() {
        let dir = std::env::temp_dir().join(format!("bootflow-cli-new-plugin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let core = core_dir(None).unwrap();
        scaffold("x", &dir, &core).unwrap();
        assert!(dir.join("src/banana.rs").is_file() && dir.join("README.md").is_file());
        let err = scaffold("x", &dir, &core).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_wrong_core_path_is_named() {
        let missing = std::env::temp_dir().join("bootflow-no-such-core");
        let err = format!("{:#}", core_dir(Some(&missing)).unwrap_err());
        assert!(err.contains("--core-path") && err.contains("bootflow-no-such-core"), "{err}");
        // A directory without a manifest is not a crate.
        let err = format!("{:#}", core_dir(Some(&std::env::temp_dir())).unwrap_err());
        assert!(err.contains("no Cargo.toml"), "{err}");
    }
}
