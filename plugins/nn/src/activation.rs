//! Element-wise activations of the conditioner's hidden layers, with derivatives.

use serde::Deserialize;

use crate::real::Real;

/// Slope of `leaky_relu` for negative inputs.
const LEAKY_SLOPE: f64 = 0.01;

/// Activation of the hidden layers of a conditioner network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(0, x)`.
    #[default]
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `x` for `x > 0`, else `0.01 x`.
    LeakyRelu,
    /// `x` for `x > 0`, else `exp(x) - 1`.
    Elu,
    /// `x * sigmoid(x)`.
    Silu,
}

fn sigmoid<T: Real>(a: T) -> T {
    T::ONE / (T::ONE + (-a).exp())
}

impl Activation {
    /// `f(a)`, in the scalar type of the pass.
    #[inline]
    pub fn apply<T: Real>(self, a: T) -> T {
        match self {
            Activation::Relu => a.max(T::ZERO),
            Activation::Tanh => a.tanh(),
            Activation::LeakyRelu => {
                if a > T::ZERO {
                    a
                } else {
                    T::from_f64(LEAKY_SLOPE) * a
                }
            }
            Activation::Elu => {
                if a > T::ZERO {
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
    pub fn derivative<T: Real>(self, a: T, h: T) -> T {
        match self {
            Activation::Relu => {
                if h > T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Activation::Tanh => T::ONE - h * h,
            Activation::LeakyRelu => {
                if h > T::ZERO {
                    T::ONE
                } else {
                    T::from_f64(LEAKY_SLOPE)
                }
            }
            Activation::Elu => {
                if h > T::ZERO {
                    T::ONE
                } else {
                    h + T::ONE
                }
            }
            Activation::Silu => {
                let s = sigmoid(a);
                s + h * (T::ONE - s)
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
