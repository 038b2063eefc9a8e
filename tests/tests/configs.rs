//! Every reproduction config in `scripts/` parses into the run config and builds its target, flow,
//! objective and (for FAB) AIS kernel with the full registry: built-ins plus the plugin libraries
//! of this build. A config that drifts from the code fails here, not in a long run.

use std::path::PathBuf;

use bootflow_core::FabConfig;
use bootflow_core::Registry;
use bootflow_core::RunConfig;
use bootflow_core::parse_config;
use bootflow_core::plugin::{SearchDir, discover};
use bootflow_core::rng;
use bootflow_tests::built;

fn full_registry() -> Registry {
    let mut reg = Registry::with_builtins();
    let mut found = discover(&[SearchDir { path: built::profile_dir(), explicit: true }]);
    found.register_all(&mut reg);
    for (kind, names, name) in [
        ("bijection", reg.bijections.contains_key("realnvp"), "realnvp"),
        ("kernel", reg.kernels.contains_key("hmc"), "hmc"),
        ("target", reg.targets.contains_key("manywell"), "manywell"),
        ("target", reg.targets.contains_key("phi4"), "phi4"),
    ] {
        assert!(
            names,
            "{kind} '{name}' not loaded from {}: run `cargo build --workspace` first",
            built::profile_dir().display()
        );
    }
    reg
}

fn scripts() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

/// Reads a config the way `bootflow train` does: TOML table, then JSON value, then the run config.
fn read(path: &PathBuf) -> RunConfig {
    let text = std::fs::read_to_string(path).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value = serde_json::to_value(table).unwrap();
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// 100 exact draws of `target` in a plain CSV file named after the config; its path.
fn exact_draws_csv(target: &dyn bootflow_core::Target, config: &std::path::Path) -> String {
    let x = target.sample(100, &mut rng::stream(1, 0)).unwrap();
    let rows: Vec<String> =
        x.column_iter().map(|c| c.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",")).collect();
    let file = built::temp_dir("config-samples").join(format!("{}.csv", config.file_stem().unwrap().to_string_lossy()));
    std::fs::write(&file, rows.join("\n")).unwrap();
    file.display().to_string()
}

#[test]
fn every_script_config_builds_with_the_full_registry() {
    let reg = full_registry();
    let configs = scripts();
    assert!(configs.len() >= 11, "expected the reproduction configs, found {configs:?}");
    for path in &configs {
        let ctx = |e: bootflow_core::Error| format!("{}: {e}", path.display());
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with('#'), "{}: needs a header comment with its published figure", path.display());
        let cfg = read(path);
        // Script targets are named relative to the repository root, where the README runs them.
        let name = if cfg.target.name.ends_with(".rhai") {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(&cfg.target.name).display().to_string()
        } else {
            cfg.target.name.clone()
        };
        let params: std::collections::BTreeMap<_, _> = cfg.target.params.clone().into_iter().collect();
        let target = bootflow_core::run::target::build_target(&reg, &name, &params).map_err(ctx).unwrap();
        let flow = reg.flow(target.dim(), &cfg.flow, cfg.seed).map_err(ctx).unwrap();
        let mut objective = cfg.objective.config();
        if objective.get("samples").is_some() {
            // The training set its header says how to write: here exact draws as plain CSV.
            objective["samples"] = exact_draws_csv(target.as_ref(), path).into();
        }
        let built = reg.objective(&cfg.objective.name, &objective).map_err(ctx).unwrap();
        built.check_target(target.as_ref()).map_err(ctx).unwrap();
        if cfg.objective.name == "fab" {
            let fab: FabConfig = parse_config("fab", &cfg.objective.config()).map_err(ctx).unwrap();
            reg.kernel(&fab.kernel, target.dim(), &fab.kernel_config).map_err(ctx).unwrap();
        }
        // The flow and the target agree on the dimension and give finite weights at flow samples.
        let (x, log_q) = flow.sample_with_log_q(8, &mut rng::stream(cfg.seed, 0)).map_err(ctx).unwrap();
        let mut log_p = vec![0.0; 8];
        target.log_prob_batch(&x, &mut log_p).map_err(ctx).unwrap();
        assert!(log_q.iter().chain(&log_p).all(|v| v.is_finite()), "{}: {log_q:?} {log_p:?}", path.display());
        assert!(cfg.train.steps > 0 && cfg.train.checkpoint_every > 0, "{}", path.display());
    }
}
