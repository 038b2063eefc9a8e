//! Scripts as registry entries: a script file becomes a target factory whose config table holds
//! the script's parameters.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::ScriptTarget;
use crate::error::{Error, Result};
use crate::model::target::Target;
use crate::registry::{Registry, Source};

#[cfg(test)]
/// Registers the script at `path` as target `name`. Its description is the first line of the
/// script's header comment; the factory passes every key of its config table as a parameter.
pub fn register_script(reg: &mut Registry, name: &str, path: &Path) -> Result<()> {
    let source = crate::run::input::read_text(path, "script", crate::run::input::TEXT_LIMIT)?;
    let description = source
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("//"))
        .map_or_else(|| format!("script {}", path.display()), |l| l.trim().to_string());
    let file = path.to_path_buf();
    reg.add_target(
        name,
        Source::Script(file.clone()),
        &description,
        Arc::new(move |config: &Value| {
            let params: BTreeMap<String, Value> = match config {
                Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                Value::Null => BTreeMap::new(),
                other => {
                    return Err(Error::Config(format!(
                        "parameters of {} must be a table, got {other}",
                        file.display()
                    )));
                }
            };
            Ok(Box::new(ScriptTarget::from_file(&file, &params)?) as Box<dyn Target>)
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_script_takes_its_parameters_from_the_config() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/manywell.rhai");
        let mut reg = Registry::new();
        register_script(&mut reg, "manywell_script", &path).unwrap();
        let entry = &reg.targets["manywell_script"];
        assert_eq!(entry.source, Source::Script(path.clone()));
        assert!(entry.description.starts_with("Many Well"), "{}", entry.description);
        assert_eq!(reg.target("manywell_script", &serde_json::json!({"DIM": 8})).unwrap().dim(), 8);
        assert_eq!(reg.target("manywell_script", &Value::Null).unwrap().dim(), 32);
        assert!(reg.target("manywell_script", &serde_json::json!({"DIMM": 8})).is_err());
        assert!(reg.target("manywell_script", &serde_json::json!(3)).is_err());
    }
}
