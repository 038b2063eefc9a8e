//! Element-wise activations of the conditioner's hidden layers, with derivatives.

use serde::Deserialize;

/// Slope of `leaky_relu` for negative inputs.
const LEAKY_SLOPE: f64 = 0.01;

/// Activation of the hidden layers of a conditioner network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Relu,
    Tanh,
    LeakyRelu,
    Elu,
    Silu,
}

fn sigmoid(a: f64) -> f64 {
    1.0 / (1.0 + (-a).exp())
}

impl Activation {
    /// `f(a)`.
    #[inline]
    pub fn apply(self, a: f64) -> f64 {
        match self {
            Activation::Relu => a.max(0.0),
            Activation::Tanh => a.tanh(),
            Activation::LeakyRelu => {
                if a > 0.0 {
                    a
                } else {
                    LEAKY_SLOPE * a
                }
            }
            Activation::Elu => {
                if a > 0.0 {
                    a
                } else {
                    a.exp_m1()
                }
            }
            Activation::Silu => a * sigmoid(a),
        }
    }

    /// Whether [`Activation::derivative`] needs the pre-activation `a`; the others read only
    /// `h = f(a)`, so a recorded pass need not keep `a`.
    pub fn needs_pre(self) -> bool {
        matches!(self, Activation::Silu)
    }

    /// `f'(a)` from `h = f(a)`; `a` is read only when [`Activation::needs_pre`].
    #[inline]
    pub fn derivative(self, a: f64, h: f64) -> f64 {
        match self {
            Activation::Relu => {
                if h > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Tanh => 1.0 - h * h,
            Activation::LeakyRelu => {
                if h > 0.0 {
                    1.0
                } else {
                    LEAKY_SLOPE
                }
            }
            Activation::Elu => {
                if h > 0.0 {
                    1.0
                } else {
                    h + 1.0
                }
            }
            Activation::Silu => {
                let s = sigmoid(a);
                s + h * (1.0 - s)
            }
        }
    }

    /// Standard deviation of the normal initial weights of a hidden layer: He for the
    /// rectifier family, Glorot for `tanh`.
    pub fn init_std(self, fan_in: usize, fan_out: usize) -> f64 {
        match self {
            Activation::Tanh => (2.0 / (fan_in + fan_out) as f64).sqrt(),
            _ => (2.0 / fan_in as f64).sqrt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_central_differences() {
        let h = 1e-6;
        for act in [Activation::Relu, Activation::Tanh, Activation::LeakyRelu, Activation::Elu, Activation::Silu] {
            // Points away from the kink at 0, on both sides.
            for a in [-2.3, -0.7, -0.05, 0.05, 0.9, 3.1] {
                let fd = (act.apply(a + h) - act.apply(a - h)) / (2.0 * h);
                let an = act.derivative(if act.needs_pre() { a } else { f64::NAN }, act.apply(a));
                assert!((fd - an).abs() < 1e-8, "{act:?} at {a}: {an} vs {fd}");
            }
        }
    }

    #[test]
    fn parses_snake_case_names() {
        let a: Activation = serde_json::from_value(serde_json::json!("leaky_relu")).unwrap();
        assert_eq!(a, Activation::LeakyRelu);
        assert!(serde_json::from_value::<Activation>(serde_json::json!("gelu")).is_err());
    }
}
