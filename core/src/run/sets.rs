//! `--set key=value` arguments: values are read as TOML values (`3`, `0.5`, `true`, `"text"`,
//! `[1, 2]`); a bare word or path (letters, digits, `_ - . /`, not starting with a digit or sign)
//! is taken as a string (`--set normalisation=standard`). Anything else that is not TOML (`1e-3x`,
//! `[1,`) is refused, as are NaN and infinities.

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
    let raw = raw.trim();
    let value = parse_value(raw).map_err(|why| Error::Config(format!("--set {key}={raw}: {why}")))?;
    Ok((key.to_string(), value))
}

/// Whether `raw` is a bare word or path, taken as a string.
fn is_bare_word(raw: &str) -> bool {
    let mut chars = raw.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '.' || c == '/')
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        && !["nan", "inf"].contains(&raw.to_ascii_lowercase().as_str())
}

/// A TOML value (or a bare word as a string); the reason when it is neither or not finite.
pub fn parse_value(raw: &str) -> std::result::Result<Value, String> {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => {
            let v = t.remove("v").expect("key v");
            if let Some(path) = first_non_finite(&v, "") {
                let at = if path.is_empty() { String::new() } else { format!(" (at {path})") };
                return Err(format!("not a finite number{at}"));
            }
            serde_json::to_value(v).map_err(|e| e.to_string())
        }
        Err(_) if is_bare_word(raw) => Ok(Value::String(raw.to_string())),
        Err(_) => Err("not a TOML value (quote a string: key=\"text\")".into()),
    }
}

/// The dotted path of the first NaN or infinite float inside `v`, if any (JSON cannot hold them:
/// they would silently become `null`).
pub fn first_non_finite(v: &toml::Value, path: &str) -> Option<String> {
    let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match v {
        toml::Value::Float(f) if !f.is_finite() => Some(path.to_string()),
        toml::Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| first_non_finite(x, &format!("{path}[{i}]"))),
        toml::Value::Table(t) => t.iter().find_map(|(k, x)| first_non_finite(x, &join(k))),
        _ => None,
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
        assert_eq!(parse_set("target=scripts/phi4.rhai").unwrap().1, json!("scripts/phi4.rhai"));
        for bad in ["train.lr=1e-3x", "hidden=[1,", "train.lr=nan", "train.lr=inf", "x=-nan", "x=[1.0, inf]", "x=a b"] {
            let err = parse_set(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("invalid config: --set {bad}:")), "{bad}: {err}");
        }
        let mut v = json!({"train": {"steps": 10}});
        set_path(&mut v, "train.steps", json!(200)).unwrap();
        set_path(&mut v, "flow.base_std", json!(2.0)).unwrap();
        assert_eq!(v, json!({"train": {"steps": 200}, "flow": {"base_std": 2.0}}));
        assert!(set_path(&mut v, "train.steps.x", json!(1)).is_err());
    }
}
