//! The 2-D mixtures of the FAB papers, each with its quadratic test function `f` as an observable:
//! `gmm5` (5 components, first paper) and `gmm` (40 equal-weight components, std softplus(1),
//! later paper). Parameters are embedded so the targets need no files at run time.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::mixture::GaussianMixture;
use super::test_function::QuadraticTestFunction;
use crate::error::Result;
use crate::model::target::Target;
use crate::registry::{Registry, Source, parse_config};

const GMM5_CSV: &str = include_str!("../../data/gmm5_workshop.csv");
const GMM40_CSV: &str = include_str!("../../data/gmm40_means.csv");

/// A config with no keys (these targets are fixed).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoKeys {}

/// `gmm5`: the first FAB paper's 5-component mixture with its test function.
pub fn gmm5() -> Result<GaussianMixture> {
    GaussianMixture::from_csv(GMM5_CSV, "gmm5_workshop.csv", None)?.with_test_function(QuadraticTestFunction {
        shift: vec![3.0819922, -0.5868578],
        a: vec![vec![0.9187659, 1.8414954], vec![1.2900482, 1.5822958]],
        b: vec![0.1786062, 0.3511076],
    })
}

/// `softplus(1) = ln(1 + e)`, the common std of the 40 components of `gmm`.
pub fn gmm40_std() -> f64 {
    std::f64::consts::E.ln_1p()
}

/// `gmm`: the later FAB paper's 40-component mixture with its test function.
pub fn gmm40() -> Result<GaussianMixture> {
    GaussianMixture::from_csv(GMM40_CSV, "gmm40_means.csv", Some(gmm40_std()))?.with_test_function(
        QuadraticTestFunction {
            shift: vec![3.0819921, -0.5868578],
            a: vec![vec![0.6148456, 1.2681574], vec![0.9801868, 1.7928895]],
            b: vec![0.4556280, 0.6323063],
        },
    )
}

/// Registers `gmm5` and `gmm`.
pub fn register(reg: &mut Registry) -> Result<()> {
    reg.add_target(
        "gmm5",
        Source::Builtin,
        "5-component 2-D Gaussian mixture of the first FAB paper; observable f (test function)",
        Arc::new(|cfg: &Value| {
            parse_config::<NoKeys>("gmm5", cfg)?;
            Ok(Box::new(gmm5()?) as Box<dyn Target>)
        }),
    )?;
    reg.add_target(
        "gmm",
        Source::Builtin,
        "40-component 2-D Gaussian mixture of the later FAB paper (std softplus(1)); observable f",
        Arc::new(|cfg: &Value| {
            parse_config::<NoKeys>("gmm", cfg)?;
            Ok(Box::new(gmm40()?) as Box<dyn Target>)
        }),
    )
}
