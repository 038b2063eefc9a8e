//! More flow layers for bootflow: autoregressive MAF and IAF on a MADE conditioner,
//! rational-quadratic spline couplings, ActNorm and fixed permutations. All follow
//! docs/conventions.md §0: `forward` maps base `z` to data `x`.
//!
//! ```toml
//! [[flow.layers]]
//! type = "maf"               # or "iaf"; MAF: density one pass, sampling D passes; IAF: the opposite
//! blocks = 4                 # layers in this entry (default 1)
//! hidden = [64, 64]          # MADE hidden widths (default [64, 64])
//! activation = "relu"        # relu | tanh | leaky_relu | elu | silu (default relu)
//! order = "alternating"      # natural | reversed | alternating | random (default alternating)
//! scale_bound = 2.0          # |s_j| <= scale_bound, s = bound * tanh(raw) (default 2)
//!
//! [[flow.layers]]
//! type = "spline"            # rational-quadratic spline couplings
//! couplings = 4              # (default 4)
//! mask = "halves"            # halves | checkerboard (with lattice = L) | random, as for realnvp
//! bins = 8                   # K bins on [-bound, bound], identity outside (default 8)
//! bound = 3.0                # (default 3)
//! hidden = [64, 64]          # conditioner hidden widths (default [64, 64])
//! activation = "relu"
//! precision = "f64"          # f64 | mixed: f32 products in the conditioners (default f64)
//!
//! [[flow.layers]]
//! type = "spline"            # the same with a convolutional conditioner on an L x L lattice
//! mask = "checkerboard"
//! lattice = 16
//! conditioner = "conv"       # mlp (default) | conv: periodic k x k convolutions, 1 -> channels -> outputs
//! channels = [16, 16, 16]    # hidden channels (default [16, 16, 16])
//! kernel = 3                 # odd kernel size (default 3)
//! activation = "leaky_relu"
//!
//! [[flow.layers]]
//! type = "actnorm"           # data-dependent initialisation from its first batch, see `actnorm`
//!
//! [[flow.layers]]
//! type = "permute"
//! order = "random"           # random (from the seed) | reverse (default random)
//! ```
//!
//! Orders: `natural` is `0, 1, ..., D-1`, `reversed` the opposite, `alternating` natural for
//! even blocks and reversed for odd ones, `random` a permutation per block from the entry's seed.
//! Block or coupling `k` draws its weights from stream `k` of the entry's seed. Every
//! conditioner's last layer starts at zero, so fresh `maf`, `iaf` and `spline` layers are the
//! identity; parameters are the conditioner's layers in order (weight matrix column-major, then
//! bias; MADE's masked weights included and held at 0).
//!
//! These layers mix freely with other plugins' layers (e.g. `realnvp`) in one `[flow]`, through
//! the registry. The conditioner network is the shared `bootflow-nn` crate, not a dependency on
//! the realnvp plugin: two plugin libraries linked into one binary would both define the
//! plugin entry symbol.
#![forbid(unsafe_code)]

pub mod actnorm;
pub mod autoregressive;
pub mod made;
pub mod permute;
pub mod rqs;
pub mod spline;

use std::sync::Arc;

use rand::seq::SliceRandom;
use serde::Deserialize;
use serde_json::Value;

use bootflow_core::{Bijection, Error, Registry, Result, Source, rng};
use bootflow_core::{LayerContext, parse_config};
use bootflow_nn::coupling::{CouplingKeys, parse_coupling_config};
use bootflow_nn::mask::splits;
use bootflow_nn::{Activation, Precision};

pub use actnorm::ActNorm;
pub use autoregressive::{Autoregressive, Kind};
pub use permute::{Permutation, PermutationKind};
pub use spline::SplineCoupling;

/// Random streams of orders and permutations start here, above those of weight initialisation.
const ORDER_STREAM: u64 = 1 << 32;

/// Variable order of the blocks of an autoregressive entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    Natural,
    Reversed,
    #[default]
    Alternating,
    Random,
}

/// Config of one `maf` or `iaf` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoregressiveConfig {
    #[serde(default = "one")]
    pub blocks: usize,
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    #[serde(default)]
    pub activation: Activation,
    #[serde(default)]
    pub order: Order,
    #[serde(default = "default_scale_bound")]
    pub scale_bound: f64,
}

/// Config of one `spline` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplineConfig {
    #[serde(default = "default_couplings")]
    pub couplings: usize,
    #[serde(default = "default_bins")]
    pub bins: usize,
    #[serde(default = "default_bound")]
    pub bound: f64,
    #[serde(default)]
    pub precision: Precision,
    /// The mask and conditioner keys every coupling entry takes.
    #[serde(skip)]
    pub coupling: CouplingKeys,
}

impl SplineConfig {
    /// The config of a `spline` entry from its keys (the serde impl alone reads only
    /// the layer's own keys, not the shared [`CouplingKeys`]).
    pub fn parse(config: &Value) -> Result<Self> {
        let (coupling, cfg) = parse_coupling_config::<SplineConfig>("spline", config)?;
        Ok(SplineConfig { coupling, ..cfg })
    }
}

/// Config of one `permute` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermuteConfig {
    #[serde(default)]
    pub order: PermutationKind,
}

/// `actnorm` takes no keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActNormConfig {}

fn one() -> usize {
    1
}
fn default_hidden() -> Vec<usize> {
    vec![64, 64]
}
fn default_scale_bound() -> f64 {
    2.0
}
fn default_couplings() -> usize {
    4
}
fn default_bins() -> usize {
    8
}
fn default_bound() -> f64 {
    3.0
}

/// The coordinate order of block `k`.
pub fn block_order(order: Order, dim: usize, k: usize, seed: u64) -> Vec<usize> {
    let natural: Vec<usize> = (0..dim).collect();
    let reversed: Vec<usize> = (0..dim).rev().collect();
    match order {
        Order::Natural => natural,
        Order::Reversed => reversed,
        Order::Alternating if k.is_multiple_of(2) => natural,
        Order::Alternating => reversed,
        Order::Random => {
            let mut p = natural;
            p.shuffle(&mut rng::stream(seed, ORDER_STREAM + k as u64));
            p
        }
    }
}

/// The blocks of one `maf`/`iaf` entry.
pub fn build_autoregressive(
    kind: Kind,
    dim: usize,
    cfg: &AutoregressiveConfig,
    seed: u64,
) -> Result<Vec<Autoregressive>> {
    if cfg.blocks == 0 {
        return Err(Error::Config("blocks must be at least 1".into()));
    }
    (0..cfg.blocks)
        .map(|k| {
            let mut r = rng::stream(seed, k as u64);
            let order = block_order(cfg.order, dim, k, seed);
            Autoregressive::new(kind, order, &cfg.hidden, cfg.activation, cfg.scale_bound, &mut r)
        })
        .collect()
}

/// The couplings of one `spline` entry.
pub fn build_spline(dim: usize, cfg: &SplineConfig, seed: u64) -> Result<Vec<SplineCoupling>> {
    if cfg.couplings == 0 {
        return Err(Error::Config("couplings must be at least 1".into()));
    }
    splits(cfg.coupling.mask, dim, cfg.coupling.lattice, cfg.couplings, seed)?
        .into_iter()
        .enumerate()
        .map(|(k, split)| {
            let mut r = rng::stream(seed, k as u64);
            let c = &cfg.coupling;
            Ok(spline::spline_coupling(dim, split, cfg.bins, cfg.bound, c, &mut r)?.with_precision(cfg.precision))
        })
        .collect()
}

fn boxed<B: Bijection + 'static>(v: Vec<B>) -> Vec<Box<dyn Bijection>> {
    v.into_iter().map(|l| Box::new(l) as Box<dyn Bijection>).collect()
}

/// Adds the bijections `maf`, `iaf`, `spline`, `actnorm` and `permute` to `reg`.
pub fn register(reg: &mut Registry) -> Result<()> {
    for (name, kind, what) in [
        ("maf", Kind::Maf, "masked autoregressive flow on MADE (one-pass density, sequential sampling)"),
        ("iaf", Kind::Iaf, "inverse autoregressive flow on MADE (one-pass sampling, sequential density)"),
    ] {
        reg.add_bijection(
            name,
            Source::Builtin,
            what,
            Arc::new(move |ctx: &LayerContext, cfg: &Value| {
                let cfg: AutoregressiveConfig = parse_config(name, cfg)?;
                Ok(boxed(build_autoregressive(kind, ctx.dim, &cfg, ctx.seed)?))
            }),
        )?;
    }
    reg.add_bijection(
        "spline",
        Source::Builtin,
        "rational-quadratic spline couplings (one entry = `couplings` layers)",
        Arc::new(|ctx: &LayerContext, cfg: &Value| {
            let cfg = SplineConfig::parse(cfg)?;
            Ok(boxed(build_spline(ctx.dim, &cfg, ctx.seed)?))
        }),
    )?;
    reg.add_bijection(
        "actnorm",
        Source::Builtin,
        "element-wise affine layer initialised from its first batch",
        Arc::new(|ctx: &LayerContext, cfg: &Value| {
            parse_config::<ActNormConfig>("actnorm", cfg)?;
            Ok(vec![Box::new(ActNorm::new(ctx.dim)) as Box<dyn Bijection>])
        }),
    )?;
    reg.add_bijection(
        "permute",
        Source::Builtin,
        "fixed permutation of the coordinates (random from the seed, or reverse)",
        Arc::new(|ctx: &LayerContext, cfg: &Value| {
            let cfg: PermuteConfig = parse_config("permute", cfg)?;
            let mut r = rng::stream(ctx.seed, ORDER_STREAM);
            Ok(vec![Box::new(Permutation::new(cfg.order, ctx.dim, &mut r)?) as Box<dyn Bijection>])
        }),
    )
}

#[cfg(test)]
mod tests;

bootflow_core::export_plugin!(name = "flows", register = register);
