//! Warnings for results that should not be trusted, written where the user looks: a `warnings`
//! list in `summary.json` (and `estimate.json`), lines on standard output, a section of
//! `report.md`. Each names the figure, its value and the limit it crossed. The limits are the
//! usual rules of thumb: R-hat above 1.01 and bulk ESS below 100 (Vehtari et al., 2021; see
//! docs/metrics.md), a flow ESS below 1 % (importance weights dominated by a few samples), MIS
//! acceptance below 0.1 (most proposals wasted), divergent HMC or NUTS transitions after warm-up
//! (the `divergences` of a sampling run's tuning), a Laplace approximation of a target with several
//! modes, and a forward ESS near 0 beside a high flow ESS (the
//! flow misses mass the target has: its own samples cannot show that).

use crate::diagnostics::eval::FlowEval;
use crate::output::summary::Summary;

/// The key of the list in `summary.json` and `estimate.json`.
pub const KEY: &str = "warnings";

/// R-hat above this: the chains have not mixed.
pub const RHAT_MAX: f64 = 1.01;
/// Bulk ESS below this: too few effective draws for the mean and its error.
pub const BULK_ESS_MIN: f64 = 100.0;
/// Flow (Kish) ESS fraction below this.
pub const FLOW_ESS_MIN: f64 = 0.01;
/// Acceptance rate below this.
pub const ACCEPT_MIN: f64 = 0.1;
/// Forward ESS fraction below this while the flow ESS is at least [`HIGH_FLOW_ESS`].
pub const FORWARD_ESS_MIN: f64 = 0.01;
/// A flow ESS that looks trustworthy on its own.
pub const HIGH_FLOW_ESS: f64 = 0.1;

/// Quantities listed by name in one warning (a lattice has hundreds).
const NAMED: usize = 4;

fn listed(names: &[&str]) -> String {
    let mut s = names.iter().take(NAMED).copied().collect::<Vec<_>>().join(", ");
    if names.len() > NAMED {
        s += &format!(" and {} more", names.len() - NAMED);
    }
    s
}

/// Warnings on a chain summary: acceptance, R-hat, bulk ESS.
pub fn for_chains(s: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(a) = s.acceptance
        && a < ACCEPT_MIN
    {
        out.push(format!(
            "{} acceptance is {a:.3}, below {ACCEPT_MIN}: most proposals are rejected and the chains barely move",
            s.method
        ));
    }
    let divergences = s.extra.get("tuning").and_then(|t| t.get("divergences")).and_then(serde_json::Value::as_f64);
    if let Some(n) = divergences
        && n > 0.0
    {
        out.push(format!(
            "{n:.0} divergent transitions after warm-up: the sampler cannot follow the target's curvature there, so \
             the draws may miss part of it; raise target_accept (a smaller step) or reparametrise"
        ));
    }
    let worst = |pick: &dyn Fn(f64) -> bool, value: &dyn Fn(&crate::output::summary::QuantitySummary) -> f64| {
        let names: Vec<&str> = s.quantities.0.iter().filter(|(_, q)| pick(value(q))).map(|(n, _)| n.as_str()).collect();
        let extreme = s.quantities.0.iter().map(|(_, q)| value(q)).filter(|v| pick(*v));
        (names, extreme.collect::<Vec<f64>>())
    };
    if s.chains >= 2 {
        let (names, values) = worst(&|r| r > RHAT_MAX, &|q| q.rhat);
        if !names.is_empty() {
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            out.push(format!(
                "R-hat up to {max:.3} (above {RHAT_MAX}) for {}: the chains disagree, so the estimates are not yet reliable",
                listed(&names)
            ));
        }
    }
    let (names, values) = worst(&|e| e < BULK_ESS_MIN, &|q| q.ess_bulk);
    if !names.is_empty() {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        out.push(format!(
            "bulk ESS down to {min:.0} (below {BULK_ESS_MIN:.0}) for {}: too few effective draws; run longer chains",
            listed(&names)
        ));
    }
    out
}

/// Warnings on a flow's evaluation: its ESS, and a forward ESS near 0 beside a high one.
pub fn for_flow(e: &FlowEval) -> Vec<String> {
    let mut out = Vec::new();
    // NaN (no usable weight) warns too.
    if e.ess.is_nan() || e.ess < FLOW_ESS_MIN {
        out.push(format!(
            "flow ESS is {:.4} %, below {} %: a few samples carry the importance weights, so log Z and reweighted \
             estimates are unreliable",
            100.0 * e.ess,
            100.0 * FLOW_ESS_MIN
        ));
    }
    if let Some(f) = e.forward_ess
        && f < FORWARD_ESS_MIN
        && e.ess >= HIGH_FLOW_ESS
    {
        out.push(format!(
            "forward ESS is {:.4} % while the flow ESS is {:.1} %: the flow misses mass the target has (its own samples \
             cannot show it)",
            100.0 * f,
            100.0 * e.ess
        ));
    }
    out
}

/// Warnings on the importance weights of a sampling run's fresh proposals (`mis`, `mis-ais`).
pub fn for_importance(s: &Summary) -> Vec<String> {
    match &s.importance {
        Some(i) if i.ess.is_nan() || i.ess < FLOW_ESS_MIN => vec![format!(
            "importance ESS of the proposals is {:.4} %, below {} %: a few samples carry the weights, so log Z is \
             unreliable",
            100.0 * i.ess,
            100.0 * FLOW_ESS_MIN
        )],
        _ => Vec::new(),
    }
}

/// Warnings on a Laplace run: the mode search found more than one mode, and the Gaussian at the
/// best one cannot see the others (its own weights cannot show the missing mass).
pub fn for_laplace(s: &Summary) -> Vec<String> {
    let modes = s.extra.get("laplace").and_then(|l| l.get("modes_found")).and_then(serde_json::Value::as_u64);
    match modes {
        Some(n) if n > 1 => vec![format!(
            "the mode search found {n} modes and the Laplace approximation sits at the best one only: the draws miss \
             the others, and neither its ESS nor its log Z can show it"
        )],
        _ => Vec::new(),
    }
}

/// Warnings on a training run: skipped steps.
pub fn for_training(steps: u64, skipped: u64) -> Vec<String> {
    if skipped == 0 {
        return Vec::new();
    }
    vec![format!(
        "{skipped} of {steps} training steps were skipped for a non-finite loss or gradient: the target or the flow gives \
         non-finite values where the flow samples"
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::summary::{Quantities, QuantitySummary};

    fn quantity(rhat: f64, ess_bulk: f64) -> QuantitySummary {
        QuantitySummary { mean: 0.0, sd: 1.0, mcse_mean: 0.01, ess_bulk, ess_tail: ess_bulk, rhat, tau_int: 1.0 }
    }

    #[test]
    fn each_limit_warns_just_past_it_and_not_before() {
        let mut s = Summary::new("mis", 4, 1000, 0, 1.0);
        s.acceptance = Some(0.1);
        s.quantities = Quantities(vec![("x0".into(), quantity(1.01, 100.0)), ("x1".into(), quantity(1.0, 400.0))]);
        assert!(for_chains(&s).is_empty(), "{:?}", for_chains(&s));
        s.acceptance = Some(0.099);
        s.quantities = Quantities(
            (0..6)
                .map(|i| (format!("x{i}"), quantity(if i < 5 { 1.02 + 0.01 * i as f64 } else { 1.0 }, 99.0)))
                .collect(),
        );
        let w = for_chains(&s);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].starts_with("mis acceptance is 0.099, below 0.1"), "{}", w[0]);
        assert!(w[1].starts_with("R-hat up to 1.060 (above 1.01) for x0, x1, x2, x3 and 1 more"), "{}", w[1]);
        assert!(w[2].starts_with("bulk ESS down to 99 (below 100) for x0, x1, x2, x3 and 2 more"), "{}", w[2]);
        s.chains = 1;
        assert!(!for_chains(&s).iter().any(|w| w.contains("R-hat")), "one chain has no between-chain R-hat");
        s.extra.insert("tuning".into(), serde_json::json!({"step_size": 0.1, "divergences": 0.0}));
        assert!(!for_chains(&s).iter().any(|w| w.contains("divergent")));
        s.extra.insert("tuning".into(), serde_json::json!({"step_size": 0.1, "divergences": 616.0}));
        assert!(for_chains(&s).iter().any(|w| w.starts_with("616 divergent transitions after warm-up")));

        let json = serde_json::json!({"samples": 10, "ess": 0.0099, "log_z": 0.0, "log_z_se": 0.1, "log_z_exact": null,
            "ess_ais": null, "log_z_ais": null, "log_z_ais_se": null, "ais_accept": null, "forward_ess": 0.5,
            "mean_log_q_target_samples": null, "mean_log_q_target_samples_se": null, "test_mean_log_q": null,
            "bias": [], "seconds": 0.0});
        let mut e: FlowEval = serde_json::from_value(json).unwrap();
        assert!(for_flow(&e)[0].starts_with("flow ESS is 0.9900 %, below 1 %"), "{:?}", for_flow(&e));
        e.ess = f64::NAN;
        assert_eq!(for_flow(&e).len(), 1, "an undefined ESS warns");
        e.ess = 0.9;
        e.forward_ess = Some(0.0099);
        assert!(for_flow(&e)[0].starts_with("forward ESS is 0.9900 % while the flow ESS is 90.0 %"));
        e.forward_ess = Some(0.01);
        assert!(for_flow(&e).is_empty());
        assert!(for_importance(&s).is_empty());
        s.importance = Some(crate::output::summary::ImportanceSummary { ess: 0.002, log_z: 0.0, log_z_se: 1.0 });
        assert!(for_importance(&s)[0].starts_with("importance ESS of the proposals is 0.2000 %"));
        assert!(for_laplace(&s).is_empty());
        s.extra.insert("laplace".into(), serde_json::json!({"modes_found": 1}));
        assert!(for_laplace(&s).is_empty());
        s.extra.insert("laplace".into(), serde_json::json!({"modes_found": 2}));
        assert!(for_laplace(&s)[0].starts_with("the mode search found 2 modes"));
        assert!(for_training(100, 0).is_empty());
        assert!(for_training(100, 3)[0].starts_with("3 of 100 training steps were skipped"));
    }
}
