//! bootflow-core: the traits every bootflow component implements (targets, bijections, MCMC
//! kernels, training objectives), the concrete normalizing [`Flow`], the optimiser, the
//! name-to-factory [`Registry`], seeded random streams, and the run pipeline ([`run`]: train,
//! evaluate, sample and summarise from a run spec) that every front end drives.
//!
//! Batches are column-major `nalgebra::DMatrix<f64>` of shape `(dim, batch)`: one column per
//! sample.
//!
//! ```
//! use bootflow_core::{affine::ElementwiseAffine, rng, Bijection, Flow};
//! let flow = Flow::new(2, vec![Box::new(ElementwiseAffine::new(2)) as Box<dyn Bijection>]).unwrap();
//! let mut r = rng::stream(7, 0);
//! let (x, log_q) = flow.sample_with_log_q(4, &mut r).unwrap();
//! assert_eq!(x.ncols(), 4);
//! let again = flow.log_q(&x).unwrap();
//! assert!((log_q[0] - again[0]).abs() < 1e-12);
//! ```

pub mod affine;
pub mod ais;
pub mod bijection;
pub mod density;
pub mod diagnostics;
pub mod error;
pub mod eval;
pub mod flow;
pub mod kernel;
pub mod mcmc;
pub mod memory;
pub mod objective;
pub mod optim;
pub mod output;
pub mod plugin;
pub mod registry;
pub mod rng;
pub mod run;
pub mod script;
pub mod shard;
pub mod target;
pub mod targets;
pub mod testing;
pub mod train;

pub use bijection::{Bijection, Cotangent, Direction, Pass, Tape};
pub use error::{Error, Result};
pub use flow::{Flow, PathSample};
pub use kernel::{ChainState, Kernel, StepStats};
pub use objective::{Objective, ObjectiveOutput};
pub use registry::{Registry, Source};
pub use rng::Rng;
pub use target::{LogDensity, Target, TargetDensity};

/// Column-major batch: one sample per column.
pub type Batch = nalgebra::DMatrix<f64>;
