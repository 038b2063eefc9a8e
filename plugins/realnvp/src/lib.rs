//! RealNVP affine coupling layers for bootflow.
//!
//! One registry entry `realnvp` expands to `couplings` affine coupling layers
//! `y_a = x_a * exp(s) + t`, `y_f = x_f`, where `(s, t)` come from a dense conditioner network of
//! the frozen coordinates `x_f` and the log-scale is bounded, `s = scale_bound * tanh(raw_s)`
//! (a fixed bound, not a learned amplitude). The conditioner's last layer starts at zero, so a
//! fresh entry is the identity map.
//!
//! ```toml
//! [[flow.layers]]
//! type = "realnvp"
//! couplings = 8            # number of coupling layers (default 8)
//! hidden = [256, 256]      # hidden widths of each conditioner (default [64, 64])
//! activation = "relu"      # relu | tanh | leaky_relu | elu | silu (default relu)
//! mask = "checkerboard"    # halves | checkerboard | random | none (default halves), see `mask`
//! lattice = 8              # side L of the L x L lattice, checkerboard only (dim = L * L)
//! scale_bound = 2.0        # |s| <= scale_bound per coordinate (default 2)
//! init_scale = 0.0         # last-layer weight std times sqrt(fan_in); 0 = identity start
//! precision = "f64"        # f64 | mixed: f32 products in the conditioners (default f64)
//! conditioner = "mlp"      # mlp (default) | conv: on a checkerboard lattice, periodic k x k
//!                          # convolutions 1 -> channels -> 2 (im2col products); then instead
//!                          # of `hidden`: channels = [16, 16, 16] and kernel = 3 (the defaults)
//! ```
//!
//! From Rust (the same config as JSON):
//!
//! ```
//! use bootflow_core::Registry;
//! use bootflow_core::{FlowSpec, parse_config};
//! let mut reg = Registry::new();
//! bootflow_realnvp::register(&mut reg).unwrap();
//! let layers = serde_json::json!({"layers": [{"type": "realnvp", "couplings": 4, "hidden": [32]}]});
//! let spec: FlowSpec = parse_config("flow", &layers).unwrap();
//! let flow = reg.flow(2, &spec, 7).unwrap();
//! assert_eq!(flow.layers().len(), 4);
//! ```
//!
//! Coupling `k` of an entry initialises its weights from stream `k` of the entry's seed
//! (`LayerContext::seed`), and `random` masks come from the same seed, so a config and a seed
//! always rebuild the same flow.
//!
//! `precision = "mixed"` runs each conditioner's products, activations and backward pass in
//! f32 from an f32 copy of the parameters (refreshed at every parameter update); the parameters,
//! their gradients, the bounded log-scale, the affine map and the log-determinant stay f64. Parameters of a coupling are its conditioner's layers in order,
//! each a column-major weight matrix followed by its bias.
#![forbid(unsafe_code)]

pub mod coupling;

pub use bootflow_nn::{activation, mask, mlp, precision};

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use bootflow_core::LayerContext;
use bootflow_core::{Bijection, Error, Registry, Result, Source, rng};
use bootflow_nn::coupling::{CouplingKeys, parse_coupling_config};

pub use activation::Activation;
pub use coupling::AffineCoupling;
pub use mask::{MaskKind, Split};
pub use precision::Precision;

/// Config of one `realnvp` entry (see the crate docs).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealNvpConfig {
    #[serde(default = "default_couplings")]
    pub couplings: usize,
    #[serde(default = "default_scale_bound")]
    pub scale_bound: f64,
    #[serde(default)]
    pub init_scale: f64,
    #[serde(default)]
    pub precision: Precision,
    /// The mask and conditioner keys every coupling entry takes.
    #[serde(skip)]
    pub coupling: CouplingKeys,
}

impl RealNvpConfig {
    /// The config of a `realnvp` entry from its keys (the serde impl alone reads only
    /// the layer's own keys, not the shared [`CouplingKeys`]).
    pub fn parse(config: &Value) -> Result<Self> {
        let (coupling, cfg) = parse_coupling_config::<RealNvpConfig>("realnvp", config)?;
        Ok(RealNvpConfig { coupling, ..cfg })
    }
}

fn default_couplings() -> usize {
    8
}
fn default_scale_bound() -> f64 {
    2.0
}

/// The coupling layers of one entry on `dim` coordinates, seeded by `seed`.
pub fn build(dim: usize, cfg: &RealNvpConfig, seed: u64) -> Result<Vec<AffineCoupling>> {
    if cfg.couplings == 0 {
        return Err(Error::Config("couplings must be at least 1".into()));
    }
    let splits = mask::splits(cfg.coupling.mask, dim, cfg.coupling.lattice, cfg.couplings, seed)?;
    splits
        .into_iter()
        .enumerate()
        .map(|(k, split)| {
            let mut r = rng::stream(seed, k as u64);
            let layer = coupling::affine_coupling(dim, split, &cfg.coupling, cfg.scale_bound, cfg.init_scale, &mut r)?;
            Ok(layer.with_precision(cfg.precision))
        })
        .collect()
}

/// Adds the bijection `realnvp` to `reg`.
pub fn register(reg: &mut Registry) -> Result<()> {
    reg.add_bijection(
        "realnvp",
        Source::Builtin,
        "RealNVP affine coupling layers with bounded log-scale (one entry = `couplings` layers)",
        Arc::new(|ctx: &LayerContext, cfg: &Value| {
            let cfg = RealNvpConfig::parse(cfg)?;
            Ok(build(ctx.dim, &cfg, ctx.seed)?.into_iter().map(|l| Box::new(l) as Box<dyn Bijection>).collect())
        }),
    )
}

#[cfg(test)]
mod tests;

bootflow_core::export_plugin!(name = "realnvp", register = register);
