//! The lattice action in both normalisations, written once as
//! `S = sum_x [ -hop sum_mu phi_x phi_{x+mu} + quad phi_x^2 + quartic phi_x^4 ]`
//! on an L x L periodic lattice, sites numbered row-major (`x = row * L + col`).

use serde::Deserialize;

/// Which convention `m2` and `lambda` refer to.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Normalisation {
    /// `S = sum_x [-2 sum_mu phi_x phi_{x+mu} + (4 + m2) phi_x^2 + lambda phi_x^4]`.
    #[default]
    Tutorial,
    /// `S = sum_x [(1/2) sum_mu (phi_{x+mu} - phi_x)^2 + (m2/2) phi_x^2 + (lambda/4!) phi_x^4]`,
    /// i.e. hop 1, quad 2 + m2/2, quartic lambda/24 in two dimensions.
    Standard,
}

/// Coefficients of the action in the common form of the module docs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Couplings {
    pub hop: f64,
    pub quad: f64,
    pub quartic: f64,
}

impl Couplings {
    pub fn new(norm: Normalisation, m2: f64, lambda: f64) -> Self {
        match norm {
            Normalisation::Tutorial => Self { hop: 2.0, quad: 4.0 + m2, quartic: lambda },
            Normalisation::Standard => Self { hop: 1.0, quad: 2.0 + 0.5 * m2, quartic: lambda / 24.0 },
        }
    }
}

/// Neighbours of a site in the + and - directions of both axes.
#[inline]
fn neighbours(l: usize, x: usize) -> [usize; 4] {
    let (r, c) = (x / l, x % l);
    let right = r * l + if c + 1 == l { 0 } else { c + 1 };
    let down = if r + 1 == l { c } else { (r + 1) * l + c };
    let left = r * l + if c == 0 { l - 1 } else { c - 1 };
    let up = if r == 0 { (l - 1) * l + c } else { (r - 1) * l + c };
    [right, down, left, up]
}

/// `sum_{x,mu} phi_x phi_{x+mu}` (each nearest-neighbour bond once).
pub fn bond_sum(l: usize, phi: &[f64]) -> f64 {
    (0..phi.len())
        .map(|x| {
            let [right, down, ..] = neighbours(l, x);
            phi[x] * (phi[right] + phi[down])
        })
        .sum()
}

/// The action `S(phi)`.
pub fn action(c: &Couplings, l: usize, phi: &[f64]) -> f64 {
    let local: f64 = phi
        .iter()
        .map(|p| {
            let p2 = p * p;
            c.quad * p2 + c.quartic * p2 * p2
        })
        .sum();
    local - c.hop * bond_sum(l, phi)
}

/// The action, writing `dS/dphi` into `grad`:
/// `dS/dphi_x = -hop sum_mu (phi_{x+mu} + phi_{x-mu}) + 2 quad phi_x + 4 quartic phi_x^3`.
pub fn action_grad(c: &Couplings, l: usize, phi: &[f64], grad: &mut [f64]) -> f64 {
    let mut s = 0.0;
    for (x, g) in grad.iter_mut().enumerate() {
        let [right, down, left, up] = neighbours(l, x);
        let p = phi[x];
        let p2 = p * p;
        s += -c.hop * p * (phi[right] + phi[down]) + c.quad * p2 + c.quartic * p2 * p2;
        *g = -c.hop * (phi[right] + phi[down] + phi[left] + phi[up]) + 2.0 * c.quad * p + 4.0 * c.quartic * p * p2;
    }
    s
}
