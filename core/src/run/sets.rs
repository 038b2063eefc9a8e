//! `--set key=value` arguments: values are read as TOML values (`3`, `0.5`, `true`, `"text"`,
//! `[1, 2]`), and anything that is not valid TOML is taken as a bare string (`--set normalisation=standard`).

use serde_json::Value;

use crate::error::{Error, Result};

/// Splits `key=value` and parses the value.
pub fn parse_set(arg: &str) -> Result<(String, Value)> {
    let Some((key, raw)) = arg.split_once('=') else {
        return Err(Error::Other(format!("--set {arg}: expected key=value")));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(Error::Other(format!("--set {arg}: empty key")));
    }
    Ok((key.to_string(), parse_value(raw.trim())))
}

/// A TOML value, or the text itself when it is not one.
pub fn parse_value(raw: &str) -> Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => serde_json::to_value(t.remove("v").expect("key v")).unwrap_or(Value::String(raw.into())),
        Err(_) => Value::String(raw.to_string()),
    }
}

/// Sets `value` at a dotted `path` inside `root` (creating tables on the way).
pub fn set_path(root: &mut Value, path: &str, value: Value) -> Result<()> {
    let mut cur = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            return Err(Error::Other(format!("--set {path}: '{}' is not a table", parts[..i].join("."))));
        }
        let map = cur.as_object_mut().expect("checked");
        if i + 1 == parts.len() {
            map.insert(p.to_string(), value);
            return Ok(());
        }
        cur = map.entry(p.to_string()).or_insert_with(|| Value::Object(Default::default()));
    }
    unreachable!("split yields at least one part")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_numbers_strings_and_paths() {
        assert_eq!(parse_set("dim=32").unwrap(), ("dim".into(), json!(32)));
        assert_eq!(parse_set("m2=-4.5").unwrap().1, json!(-4.5));
        assert_eq!(parse_set("normalisation=standard").unwrap().1, json!("standard"));
        assert_eq!(parse_set("hidden=[80, 80]").unwrap().1, json!([80, 80]));
        assert!(parse_set("novalue").is_err());
        let mut v = json!({"train": {"steps": 10}});
        set_path(&mut v, "train.steps", json!(200)).unwrap();
        set_path(&mut v, "flow.base_std", json!(2.0)).unwrap();
        assert_eq!(v, json!({"train": {"steps": 200}, "flow": {"base_std": 2.0}}));
        assert!(set_path(&mut v, "train.steps.x", json!(1)).is_err());
    }
}
