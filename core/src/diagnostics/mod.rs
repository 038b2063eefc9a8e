//! Statistics of samples and chains: importance-weight quality and log Z, integrated
//! autocorrelation times (Wolff's Gamma method), and the multi-chain convergence diagnostics
//! (rank-normalised split R-hat, bulk/tail ESS, MCSE) as defined by Vehtari et al. (2021) and
//! computed by ArviZ.

pub mod autocorr;
pub mod convergence;
pub mod importance;
pub mod lag_products;
pub mod normal_quantile;

pub use autocorr::{TauInt, tau_int};
pub use convergence::{ess_bulk, ess_mean, ess_tail, mcse_mean, rhat};
pub use importance::{LogZ, SnisEstimate, forward_ess, kish_ess, log_z, snis};
