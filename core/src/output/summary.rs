//! `summary.json`: what a sampling run estimated, with its diagnostics.
//!
//! ```json
//! {"method": "mis", "chains": 4, "draws": 1000, "seed": 1, "seconds": 2.5, "acceptance": 0.7,
//!  "quantities": {"x.1": {"mean": .., "sd": .., "mcse_mean": .., "ess_bulk": .., "ess_tail": ..,
//!                         "rhat": .., "tau_int": ..}, ...},
//!  "importance": {"ess": .., "log_z": .., "log_z_se": ..} | null}
//! ```
//!
//! Quantities keep their column order (`x.1 ... x.d`, then observables). Undefined numbers (too
//! few draws or chains, non-finite draws) are written as `null`. Other top-level objects (a
//! training summary, the flow's description) go in [`Summary::extra`] and sit beside these keys.
//!
//! `tau_int` is Wolff's Gamma method, convention A (1/2 for independent draws), with the chains
//! as replicas of one series (common mean, lag products pooled over chains). The statistics are
//! computed in `crate::diagnostics::chain_summary`.

use std::path::Path;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// f64 fields that are `null` in JSON when NaN or infinite (JSON has no such numbers).
mod null_when_undefined {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() { s.serialize_f64(*v) } else { s.serialize_none() }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Estimates and diagnostics of one scalar quantity over all chains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantitySummary {
    /// Mean over all draws of all chains.
    #[serde(with = "null_when_undefined")]
    pub mean: f64,
    /// Standard deviation over all draws (divisor `N - 1`).
    #[serde(with = "null_when_undefined")]
    pub sd: f64,
    /// Monte Carlo standard error of `mean`.
    #[serde(with = "null_when_undefined")]
    pub mcse_mean: f64,
    /// Bulk effective sample size (rank-normalised, in draws over all chains).
    #[serde(with = "null_when_undefined")]
    pub ess_bulk: f64,
    /// Tail effective sample size: the smaller of the 5 % and 95 % quantile ESS.
    #[serde(with = "null_when_undefined")]
    pub ess_tail: f64,
    /// Rank-normalised split R-hat, the larger of bulk and tail R-hat (near 1 at convergence).
    #[serde(with = "null_when_undefined")]
    pub rhat: f64,
    /// Integrated autocorrelation time in draws (Wolff, convention A: 1/2 for independent draws).
    #[serde(with = "null_when_undefined")]
    pub tau_int: f64,
}

/// Named quantity summaries in column order (a JSON object whose key order is kept).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Quantities(pub Vec<(String, QuantitySummary)>);

impl Quantities {
    /// The summary of the quantity named `name` (a chain-file column name), if present.
    pub fn get(&self, name: &str) -> Option<&QuantitySummary> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, q)| q)
    }
}

impl Serialize for Quantities {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, q) in &self.0 {
            map.serialize_entry(name, q)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Quantities {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Quantities;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of quantity summaries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Quantities, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, QuantitySummary>()? {
                    out.push(entry);
                }
                Ok(Quantities(out))
            }
        }
        d.deserialize_map(InOrder)
    }
}

/// Importance-sampling results of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportanceSummary {
    /// Kish ESS fraction.
    #[serde(with = "null_when_undefined")]
    pub ess: f64,
    /// Importance-sampling estimate of `ln Z` of the unnormalised target.
    #[serde(with = "null_when_undefined")]
    pub log_z: f64,
    /// Delta-method standard error of `log_z`.
    #[serde(with = "null_when_undefined")]
    pub log_z_se: f64,
}

impl ImportanceSummary {
    /// Kish ESS and the log Z estimate of importance log weights.
    pub fn from_log_weights(log_w: &[f64]) -> Result<Self> {
        let z = crate::diagnostics::log_z(log_w)?;
        Ok(Self { ess: z.ess, log_z: z.log_z, log_z_se: z.se })
    }
}

/// The whole `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Sampling method name, e.g. `mis` or `hmc`.
    pub method: String,
    /// Number of chains.
    pub chains: usize,
    /// Draws per chain.
    pub draws: usize,
    /// The run's seed.
    pub seed: u64,
    /// Wall-clock seconds of the sampling.
    #[serde(with = "null_when_undefined")]
    pub seconds: f64,
    /// Mean acceptance rate (null for methods without accept/reject).
    pub acceptance: Option<f64>,
    /// Per-quantity estimates and diagnostics, keyed by chain-file column name, in column order.
    pub quantities: Quantities,
    /// Null unless the run did importance sampling.
    pub importance: Option<ImportanceSummary>,
    /// Further top-level objects, e.g. `"train"` and `"flow"` of a full run.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Summary {
    /// A summary without quantities, importance results or extras yet.
    pub fn new(method: &str, chains: usize, draws: usize, seed: u64, seconds: f64) -> Self {
        Self {
            method: method.to_string(),
            chains,
            draws,
            seed,
            seconds,
            acceptance: None,
            quantities: Quantities::default(),
            importance: None,
            extra: serde_json::Map::new(),
        }
    }

    /// Writes pretty JSON to `path` atomically: a temporary file in the same directory, synced,
    /// then renamed over `path`, so readers never see a half-written summary.
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Bug(format!("summary to JSON: {e}")))?;
        let name = path.file_name().ok_or_else(|| Error::Config(format!("{} is not a file path", path.display())))?;
        let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(format!("writing {}", path.display()), e)
        })
    }

    /// Reads a summary back.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        serde_json::from_str(&text).map_err(|e| Error::Other(format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::chain_summary::summarize_rows;
    use crate::diagnostics::chain_summary::tests::normal_chains;

    fn temp_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bootflow-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn json_has_the_agreed_shape_and_key_order() {
        let names: Vec<String> = (1..=11).map(|i| format!("x.{i}")).chain(["chi2".to_string()]).collect();
        let rows = normal_chains(2, 50, names.len(), 3);
        let mut s = Summary::new("mis", 2, 50, 3, 1.25);
        s.acceptance = Some(0.5);
        s.quantities = summarize_rows(&names, &rows).unwrap();
        s.extra.insert("train".into(), serde_json::json!({"steps": 10}));
        let v = serde_json::to_value(&s).unwrap();
        for key in ["method", "chains", "draws", "seed", "seconds", "acceptance", "quantities", "importance", "train"] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert!(v["importance"].is_null());
        for key in ["mean", "sd", "mcse_mean", "ess_bulk", "ess_tail", "rhat", "tau_int"] {
            assert!(v["quantities"]["chi2"][key].is_number(), "{key}");
        }
        // Column order survives (a sorted map would put x.10 before x.2).
        let text = serde_json::to_string(&s).unwrap();
        let pos = |k: &str| text.find(&format!("\"{k}\":{{")).unwrap();
        assert!(pos("x.1") < pos("x.2") && pos("x.2") < pos("x.10") && pos("x.11") < pos("chi2"));
        let back: Summary = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn undefined_numbers_are_null_and_read_back_as_nan() {
        let mut s = Summary::new("hmc", 1, 3, 0, f64::NAN);
        s.quantities = summarize_rows(&["x.1".to_string()], &[vec![vec![1.0], vec![2.0], vec![4.0]]]).unwrap();
        s.importance = Some(ImportanceSummary { ess: 0.5, log_z: f64::NEG_INFINITY, log_z_se: 0.1 });
        // Weights (1, 3): Kish 0.8, log Z = ln 2.
        let from_w = ImportanceSummary::from_log_weights(&[0.0, 3f64.ln()]).unwrap();
        assert!((from_w.ess - 0.8).abs() < 1e-14 && (from_w.log_z - 2f64.ln()).abs() < 1e-14);
        let v = serde_json::to_value(&s).unwrap();
        // One chain of 3 draws: R-hat and ESS are undefined, mean and tau_int are not.
        assert!(v["quantities"]["x.1"]["rhat"].is_null());
        assert!(v["quantities"]["x.1"]["ess_bulk"].is_null());
        assert_eq!(v["quantities"]["x.1"]["mean"], serde_json::json!(7.0 / 3.0));
        assert!(v["importance"]["log_z"].is_null());
        assert!(v["seconds"].is_null());
        let back: Summary = serde_json::from_value(v).unwrap();
        assert!(back.quantities.get("x.1").unwrap().rhat.is_nan());
        assert!(back.importance.unwrap().log_z.is_nan());
    }

    #[test]
    fn summary_file_round_trips() {
        let dir = temp_dir();
        let names = vec!["x.1".to_string(), "x.2".to_string(), "r2".to_string()];
        let mut s = Summary::new("mis", 2, 40, 5, 0.1);
        s.quantities = summarize_rows(&names, &normal_chains(2, 40, 3, 5)).unwrap();
        let path = dir.join("summary.json");
        s.write_atomic(&path).unwrap();
        assert!(!dir.join(".summary.json.tmp").exists());
        assert_eq!(Summary::read(&path).unwrap(), s);
    }
}
