//! Which scalar type a conditioner's products run in.

use serde::{Deserialize, Deserializer, de::Error as _};

/// `F64`: every product in f64 (the default). `Mixed`: the conditioner's products, activations
/// and backward pass in f32, from an f32 copy of the f64 parameters; its inputs, outputs and
/// parameter gradients stay f64, and so does everything outside the conditioner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// Everything in f64.
    #[default]
    F64,
    /// Products, activations and their backward pass in f32 from an f32 copy of the weights.
    Mixed,
}

impl Precision {
    /// The config name (`f64`, `mixed`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::F64 => "f64",
            Precision::Mixed => "mixed",
        }
    }
}

/// A network's parameters: the f64 vector the optimiser owns and, under [`Precision::Mixed`],
/// its f32 copy, rounded whenever the parameters are set (once per update, not once per pass).
#[derive(Clone, Debug)]
pub(crate) struct Weights {
    pub(crate) f64: Vec<f64>,
    /// Empty unless the precision is mixed.
    pub(crate) f32: Vec<f32>,
    pub(crate) precision: Precision,
}

impl Weights {
    /// `params` in f64 passes.
    pub(crate) fn new(params: Vec<f64>) -> Self {
        Weights { f64: params, f32: Vec::new(), precision: Precision::F64 }
    }

    /// The same weights for passes in `precision`.
    pub(crate) fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self.refresh_f32();
        self
    }

    /// Replaces the parameters; the caller checks the length.
    pub(crate) fn set(&mut self, p: &[f64]) {
        self.f64.copy_from_slice(p);
        self.refresh_f32();
    }

    fn refresh_f32(&mut self) {
        self.f32.clear();
        if self.precision == Precision::Mixed {
            self.f32.extend(self.f64.iter().map(|v| *v as f32));
        }
    }
}

/// Accepts `"f64"` or `"mixed"`; every error names the key.
impl<'de> Deserialize<'de> for Precision {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d).map_err(|e| D::Error::custom(format!("precision: {e}")))?;
        match s.as_str() {
            "f64" => Ok(Precision::F64),
            "mixed" => Ok(Precision::Mixed),
            other => Err(D::Error::custom(format!("precision must be \"f64\" or \"mixed\", got \"{other}\""))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_names_and_names_the_key_on_errors() {
        let p: Precision = serde_json::from_value(serde_json::json!("mixed")).unwrap();
        assert_eq!(p, Precision::Mixed);
        assert_eq!(serde_json::from_value::<Precision>(serde_json::json!("f64")).unwrap(), Precision::F64);
        for bad in [serde_json::json!("f32"), serde_json::json!(3)] {
            let msg = serde_json::from_value::<Precision>(bad).unwrap_err().to_string();
            assert!(msg.contains("precision"), "{msg}");
        }
    }
}
