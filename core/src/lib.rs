//! bootflow-core: the traits every bootflow component implements (targets, bijections, MCMC
//! kernels, training objectives), the concrete normalizing [`Flow`], the samplers (AIS, MIS,
//! random walk), training (FAB, reverse and forward KL, path gradients), diagnostics, the run
//! pipeline ([`run`]), the plugin SDK and loader ([`plugin`]), and Rhai script targets.
//!
//! Batches are column-major `nalgebra::DMatrix<f64>` of shape `(dim, batch)`: one column per
//! sample. The modules are private; what they offer is re-exported below, grouped by idea.
//! Namespaces that are an API of their own stay public: [`plugin`] (the C boundary and the SDK
//! macro), [`run`] (the pipeline front ends drive), [`rng`] (seeded streams), [`shard`] (how
//! batches are split) and, with the `testing` feature, `testing` (finite-difference checks).
//!
//! ```
//! use bootflow_core::{rng, Bijection, ElementwiseAffine, Flow};
//! let flow = Flow::new(2, vec![Box::new(ElementwiseAffine::new(2)) as Box<dyn Bijection>]).unwrap();
//! let mut r = rng::stream(7, 0);
//! let (x, log_q) = flow.sample_with_log_q(4, &mut r).unwrap();
//! assert_eq!(x.ncols(), 4);
//! let again = flow.log_q(&x).unwrap();
//! assert!((log_q[0] - again[0]).abs() < 1e-12);
//! ```

#![warn(missing_docs)]

mod diagnostics;
mod error;
mod flow;
mod mcmc;
mod memory;
mod model;
mod output;
pub mod plugin;
mod registry;
pub mod rng;
pub mod run;
mod script;
pub mod shard;
mod targets;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod train;

// Model traits.
pub use model::bijection::{Bijection, Cotangent, Direction, Pass, Tape, score_by_opposite_pass};
pub use model::density::FlowDensity;
pub use model::kernel::{ChainState, Kernel, StepStats};
pub use model::objective::{Objective, ObjectiveOutput};
pub use model::target::{LogDensity, Target, TargetDensity};

// The flow.
pub use flow::affine::ElementwiseAffine;
pub use flow::cholesky::CholeskyAffine;
pub use flow::{Flow, InverseGrads, InverseRecord, PathSample, ScoredPass};

// Samplers.
pub use mcmc::ais::{Annealer, Spacing};
pub use mcmc::chains::{ChainConfig, ChainRun, run_chains};
pub use mcmc::mis::{MisConfig, Proposal, run_mis};
pub use mcmc::rwm::{RandomWalk, RandomWalkConfig};

// Training.
pub use train::buffer::ReplayBuffer;
pub use train::checkpoint::{CHECKPOINT_FILE, Checkpoint};
pub use train::config::{Component, RunConfig, TrainConfig};
pub use train::fab::FabConfig;
pub use train::init::{Initialised, initialise};
pub use train::observer::{Observer, Progress as TrainingProgress};
pub use train::trainer::Trainer;

// Diagnostics and evaluation.
pub use diagnostics::eval::{BiasStats, FlowEval};
pub use diagnostics::lag_products::centred_lag_products_direct;
pub use diagnostics::log_z_batches::{BatchErrors, LogZBatches, log_z_batches};
pub use diagnostics::warnings;
pub use diagnostics::{
    LogZ, SnisEstimate, TauInt, ess_bulk, ess_mean, ess_tail, forward_ess, kish_ess, log_sum_exp, log_z, mcse_mean,
    mis_acceptance, rhat, snis, tau_int,
};

// Output files.
pub use output::chain_sink::{ChainDraws, Draws, chain_path};
pub use output::chains::{ChainCsv, read_chain_csv};
pub use output::metrics::{Metrics, read_metrics_csv};
pub use output::summary::{QuantitySummary, Summary};

// Registry, targets and scripts.
pub use registry::{FlowInit, FlowSpec, LayerContext, Registry, Source, parse_config};
pub use script::ScriptTarget;

// Errors and the process.
pub use error::{Error, Result, check_dim};
pub use memory::keep_freed_memory;
pub use rng::Rng;

/// Column-major batch: one sample per column.
pub type Batch = nalgebra::DMatrix<f64>;
