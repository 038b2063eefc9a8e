//! Statistics of samples and chains: importance-weight quality and log Z, integrated
//! autocorrelation times (Wolff's Gamma method), and the multi-chain convergence diagnostics
//! (rank-normalised split R-hat, bulk/tail ESS, MCSE) as defined by Vehtari et al. (2021) and
//! computed by ArviZ.
//!
//! ```
//! use bootflow_core::{ess_bulk, kish_ess, rhat, tau_int};
//! let chains: Vec<Vec<f64>> = (0..4).map(|c| (0..100).map(|i| ((i * 7 + c * 3) % 11) as f64).collect()).collect();
//! let r = rhat(&chains).unwrap();
//! let ess = ess_bulk(&chains).unwrap();
//! let tau = tau_int(&chains).unwrap();
//! assert!(r.is_finite() && ess > 0.0 && tau.mean_err > 0.0);
//! assert!((kish_ess(&[0.0, 0.0, 0.0]).unwrap() - 1.0).abs() < 1e-12);
//! ```

pub mod autocorr;
pub mod chain_summary;
pub mod convergence;
pub mod eval;
pub mod importance;
pub mod lag_products;
pub mod log_z_batches;
pub mod normal_quantile;
pub mod warnings;

pub use autocorr::{TauInt, tau_int};
pub use convergence::{ess_bulk, ess_mean, ess_tail, mcse_mean, rhat};
pub use importance::{LogZ, SnisEstimate, forward_ess, kish_ess, log_sum_exp, log_z, mis_acceptance, snis};
