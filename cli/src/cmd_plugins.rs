//! `bootflow plugins`: what was found on the plugin search path, what each plugin provides, and
//! why any file was refused. Refused files are information, not failure: the exit status is 0.

use std::path::PathBuf;

use bootflow_core::plugin::Discovery;
use serde_json::{Value, json};

/// Prints the plugins found from `plugin_dirs` (and the other search directories).
pub fn run(plugin_dirs: &[PathBuf], as_json: bool) -> anyhow::Result<()> {
    let (_, found) = crate::plugins::registry(plugin_dirs)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&to_json(&found))?);
    } else {
        print!("{}", table(&found));
    }
    Ok(())
}

/// `{"plugins": [{name, version, abi, path, provides: [{kind, name, description}]}], "refused": [{path, reason}]}`.
pub fn to_json(found: &Discovery) -> Value {
    let plugins: Vec<Value> = found
        .plugins
        .iter()
        .map(|p| {
            let provides: Vec<Value> = p
                .provides
                .iter()
                .map(|f| json!({"kind": f.kind.as_str(), "name": f.name, "description": f.description}))
                .collect();
            json!({"name": p.name, "version": p.version, "abi": p.abi, "path": p.path.display().to_string(),
                   "provides": provides})
        })
        .collect();
    let refused: Vec<Value> =
        found.refused.iter().map(|r| json!({"path": r.path.display().to_string(), "reason": r.reason})).collect();
    json!({"plugins": plugins, "refused": refused})
}

/// A plain-text table: one block per plugin with its components, then the refused files.
pub fn table(found: &Discovery) -> String {
    let mut s = String::new();
    if found.plugins.is_empty() {
        s.push_str("no plugins found\n");
    }
    for p in &found.plugins {
        s.push_str(&format!("{} {} (ABI {})  {}\n", p.name, p.version, p.abi, p.path.display()));
        let width = p.provides.iter().map(|f| f.name.len()).max().unwrap_or(0);
        for f in &p.provides {
            s.push_str(&format!("  {:<10} {:<width$}  {}\n", f.kind.as_str(), f.name, f.description));
        }
    }
    if !found.refused.is_empty() {
        s.push_str("\nrefused:\n");
        for r in &found.refused {
            s.push_str(&format!("  {}: {}\n", r.path.display(), r.reason));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use bootflow_core::plugin::Refused;

    #[test]
    fn empty_search_prints_both_lists_and_refusals() {
        let found = Discovery {
            plugins: Vec::new(),
            refused: vec![Refused { path: "/x/libbootflow_a.so".into(), reason: "wrong ABI".into() }],
        };
        let v = to_json(&found);
        assert_eq!(v["plugins"], json!([]));
        assert_eq!(v["refused"], json!([{"path": "/x/libbootflow_a.so", "reason": "wrong ABI"}]));
        let t = table(&found);
        assert!(t.starts_with("no plugins found\n") && t.contains("/x/libbootflow_a.so: wrong ABI"), "{t}");
    }
}
