//! One registry of factories keyed by name for everything chosen at run time: targets,
//! bijections, kernels and objectives. Built-ins, plugins and scripts register into the same
//! registry, so callers never know where an implementation came from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::model::bijection::Bijection;
use crate::model::kernel::Kernel;
use crate::model::objective::Objective;
use crate::model::target::Target;

/// Where a registered implementation comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Compiled into bootflow itself.
    Builtin,
    /// Provided by the plugin library at this path.
    Plugin(PathBuf),
    /// Defined by the script file at this path.
    Script(PathBuf),
}

impl Source {
    /// `builtin`, `plugin` or `script`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Builtin => "builtin",
            Source::Plugin(_) => "plugin",
            Source::Script(_) => "script",
        }
    }
}

/// What a bijection factory knows about the slot it fills.
#[derive(Clone, Copy, Debug)]
pub struct LayerContext {
    /// Dimension of the flow.
    pub dim: usize,
    /// Position of this entry in the flow's layer list.
    pub index: usize,
    /// Seed for random initialisation and random masks/permutations of this entry.
    pub seed: u64,
}

pub type TargetFactory = Arc<dyn Fn(&Value) -> Result<Box<dyn Target>> + Send + Sync>;
/// A bijection entry may expand to several layers (e.g. `realnvp` with `couplings = 10`).
pub type BijectionFactory = Arc<dyn Fn(&LayerContext, &Value) -> Result<Vec<Box<dyn Bijection>>> + Send + Sync>;
pub type KernelFactory = Arc<dyn Fn(usize, &Value) -> Result<Box<dyn Kernel>> + Send + Sync>;
pub type ObjectiveFactory = Arc<dyn Fn(&Value, &Registry) -> Result<Box<dyn Objective>> + Send + Sync>;

/// A registered factory with its provenance.
#[derive(Clone)]
pub struct Entry<F> {
    pub factory: F,
    pub source: Source,
    pub description: String,
}

/// Name → factory maps, one per kind of component.
#[derive(Clone, Default)]
pub struct Registry {
    /// Target factories, keyed by name.
    pub targets: BTreeMap<String, Entry<TargetFactory>>,
    /// Bijection factories, keyed by name (the `type` of a flow layer entry).
    pub bijections: BTreeMap<String, Entry<BijectionFactory>>,
    /// MCMC kernel factories, keyed by name.
    pub kernels: BTreeMap<String, Entry<KernelFactory>>,
    /// Training objective factories, keyed by name.
    pub objectives: BTreeMap<String, Entry<ObjectiveFactory>>,
}

fn insert<F>(map: &mut BTreeMap<String, Entry<F>>, kind: &str, name: &str, entry: Entry<F>) -> Result<()> {
    if let Some(old) = map.get(name) {
        return Err(Error::Config(format!(
            "{kind} '{name}' from {} is already provided by {}",
            describe(&entry.source),
            describe(&old.source)
        )));
    }
    map.insert(name.to_string(), entry);
    Ok(())
}

fn describe(s: &Source) -> String {
    match s {
        Source::Builtin => "bootflow itself".into(),
        Source::Plugin(p) => format!("plugin {}", p.display()),
        Source::Script(p) => format!("script {}", p.display()),
    }
}

fn get<'a, F>(map: &'a BTreeMap<String, Entry<F>>, kind: &'static str, name: &str) -> Result<&'a Entry<F>> {
    map.get(name).ok_or_else(|| Error::unknown(kind, name, map.keys().map(String::as_str)))
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the components built into core.
    pub fn with_builtins() -> Self {
        let mut r = Self::new();
        r.add_bijection(
            "affine",
            Source::Builtin,
            "element-wise affine layer x = z exp(s) + t (keys: scale, shift: initial values, a number or a list)",
            Arc::new(|ctx: &LayerContext, cfg: &Value| {
                Ok(vec![
                    Box::new(crate::flow::affine::ElementwiseAffine::from_config(ctx.dim, cfg)?) as Box<dyn Bijection>
                ])
            }),
        )
        .expect("empty registry");
        r.add_bijection(
            "cholesky",
            Source::Builtin,
            "full affine layer x = L z + t, L lower triangular (keys: shift, lower: its rows; flow.init writes one)",
            Arc::new(|ctx: &LayerContext, cfg: &Value| {
                Ok(vec![
                    Box::new(crate::flow::cholesky::CholeskyAffine::from_config(ctx.dim, cfg)?) as Box<dyn Bijection>
                ])
            }),
        )
        .expect("distinct built-in bijections");
        crate::mcmc::register(&mut r).expect("built-in kernels have distinct names");
        crate::targets::register(&mut r).expect("built-in targets have distinct names");
        crate::train::register(&mut r).expect("built-in objectives have distinct names");
        r
    }

    /// Registers a target factory under `name`; fails if the name is taken (the error names both sources).
    pub fn add_target(&mut self, name: &str, source: Source, description: &str, factory: TargetFactory) -> Result<()> {
        insert(&mut self.targets, "target", name, Entry { factory, source, description: description.into() })
    }
    /// Registers a bijection factory under `name`; fails if the name is taken.
    pub fn add_bijection(
        &mut self,
        name: &str,
        source: Source,
        description: &str,
        factory: BijectionFactory,
    ) -> Result<()> {
        insert(&mut self.bijections, "bijection", name, Entry { factory, source, description: description.into() })
    }
    /// Registers a kernel factory under `name`; fails if the name is taken.
    pub fn add_kernel(&mut self, name: &str, source: Source, description: &str, factory: KernelFactory) -> Result<()> {
        insert(&mut self.kernels, "kernel", name, Entry { factory, source, description: description.into() })
    }
    /// Registers an objective factory under `name`; fails if the name is taken.
    pub fn add_objective(
        &mut self,
        name: &str,
        source: Source,
        description: &str,
        factory: ObjectiveFactory,
    ) -> Result<()> {
        insert(&mut self.objectives, "objective", name, Entry { factory, source, description: description.into() })
    }

    /// Builds target `name` from `config`; an unknown name is an error listing the known ones.
    pub fn target(&self, name: &str, config: &Value) -> Result<Box<dyn Target>> {
        (get(&self.targets, "target", name)?.factory)(config)
    }
    /// Builds the layers of bijection entry `name` for the slot `ctx` from `config`.
    pub fn bijection(&self, name: &str, ctx: &LayerContext, config: &Value) -> Result<Vec<Box<dyn Bijection>>> {
        (get(&self.bijections, "bijection", name)?.factory)(ctx, config)
    }
    /// Builds kernel `name` for a `dim`-dimensional density from `config`.
    pub fn kernel(&self, name: &str, dim: usize, config: &Value) -> Result<Box<dyn Kernel>> {
        (get(&self.kernels, "kernel", name)?.factory)(dim, config)
    }
    /// Builds objective `name` from `config`; its factory may look up other components in `self`.
    pub fn objective(&self, name: &str, config: &Value) -> Result<Box<dyn Objective>> {
        (get(&self.objectives, "objective", name)?.factory)(config, self)
    }

    /// Builds a flow of dimension `dim` from its config (see [`FlowSpec`]); entry `k` of the
    /// layer list is seeded with `seed + k`, so the same config and seed give the same flow.
    pub fn flow(&self, dim: usize, spec: &FlowSpec, seed: u64) -> Result<Flow> {
        let mut layers = Vec::new();
        for (index, layer) in spec.layers.iter().enumerate() {
            let name = layer
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Config(format!("flow.layers[{index}] needs a string key 'type'")))?;
            let mut cfg = layer.clone();
            if let Some(m) = cfg.as_object_mut() {
                m.remove("type");
            }
            let ctx = LayerContext { dim, index, seed: seed.wrapping_add(index as u64) };
            let made = self.bijection(name, &ctx, &cfg).map_err(|e| match e {
                Error::Config(m) => Error::Config(format!("flow.layers[{index}] ({name}): {m}")),
                other => Error::Other(format!("flow.layers[{index}]: {other}")),
            })?;
            layers.extend(made);
        }
        let flow = Flow::with_base(vec![0.0; dim], vec![spec.base_std; dim], layers)?;
        Ok(match spec.shard {
            Some(s) => flow.with_shard_size(s),
            None => flow,
        })
    }
}

/// A flow: base standard deviation and a list of layer tables, each with a `type` naming a
/// registered bijection plus that bijection's own keys.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlowSpec {
    /// Standard deviation of the base `N(0, base_std^2 I)` in every coordinate (default 1).
    #[serde(default = "one")]
    pub base_std: f64,
    /// Layer entries in flow order: each a table with a `type` key plus that bijection's keys.
    pub layers: Vec<Value>,
    /// Columns per parallel shard (results depend on it, never on the thread count).
    #[serde(default)]
    pub shard: Option<usize>,
    /// How training sets the flow's scale before the first step (see [`FlowInit`]; absent, the
    /// default of [`crate::initialise`]). A trained run's record holds the layer it added instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<FlowInit>,
}

/// `flow.init`: an affine layer at the data end of the flow (a [`cholesky`] layer) from a
/// Gaussian fitted to the target before training, so the layers before it see standardised
/// coordinates.
///
/// [`cholesky`]: crate::flow::cholesky::CholeskyAffine
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FlowInit {
    /// The Laplace approximation at the modes `bootflow optimize` finds (moment-matched over
    /// them when there are several).
    Laplace,
    /// The mean and covariance of a short NUTS run.
    Warmup,
    /// No layer: the flow as configured.
    None,
}

fn one() -> f64 {
    1.0
}

/// Deserialises a component's config, turning serde's message into `Error::Config` that names
/// `what`. `null` is read as an empty table.
pub fn parse_config<T: DeserializeOwned>(what: &str, config: &Value) -> Result<T> {
    let v = if config.is_null() { Value::Object(Default::default()) } else { config.clone() };
    // The error names the key inside the component ("hidden[0]: invalid value ...").
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            Error::Config(format!("{what}: {inner}"))
        } else {
            Error::Config(format!("{what}: {path}: {inner}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_flows_and_reports_unknown_names() {
        let r = Registry::with_builtins();
        let spec: FlowSpec =
            parse_config("flow", &json!({"layers": [{"type": "affine"}, {"type": "affine"}]})).unwrap();
        let f = r.flow(3, &spec, 1).unwrap();
        assert_eq!(f.n_params(), 12);
        let bad: FlowSpec = parse_config("flow", &json!({"layers": [{"type": "nope"}]})).unwrap();
        let msg = r.flow(3, &bad, 1).err().unwrap().to_string();
        assert!(msg.contains("flow.layers[0]: unknown bijection 'nope'") && msg.contains("affine"), "{msg}");
        let extra: FlowSpec = parse_config("flow", &json!({"layers": [{"type": "affine", "width": 3}]})).unwrap();
        let msg = r.flow(3, &extra, 1).err().unwrap().to_string();
        assert!(msg.contains("flow.layers[0] (affine)") && msg.contains("width"), "{msg}");
    }

    #[test]
    fn refuses_duplicate_names() {
        let mut r = Registry::with_builtins();
        let f = r.bijections["affine"].factory.clone();
        let e = r.add_bijection("affine", Source::Plugin("x.so".into()), "", f).unwrap_err();
        assert!(e.to_string().contains("already provided"));
    }
}
