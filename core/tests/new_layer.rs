//! A new layer needs only the small surface of `Bijection`: `dim`, its parameters, one `pass`
//! and one `vjp` for both directions. This one, written here and nowhere else, passes the shared
//! finite-difference checks on its own and inside a `Flow`.
//!
//! Softplus-affine: `x_i = softplus(a_i) z_i + b_i`, parameters `[a_1..a_d, b_1..b_d]`,
//! `log|det dF/dz| = sum_i log softplus(a_i)`.

use bootflow_core::{Batch, Bijection, Cotangent, Direction, Error, Flow, Pass, Result, Tape, rng, testing};

struct SoftplusAffine {
    /// `[a_1..a_d, b_1..b_d]`.
    theta: Vec<f64>,
}

impl SoftplusAffine {
    fn a(&self, i: usize) -> f64 {
        self.theta[i]
    }

    fn b(&self, i: usize) -> f64 {
        self.theta[self.dim() + i]
    }

    /// `softplus(a_i)` for every coordinate.
    fn scales(&self) -> Vec<f64> {
        (0..self.dim()).map(|i| softplus(self.a(i))).collect()
    }
}

fn softplus(v: f64) -> f64 {
    if v > 30.0 { v } else { v.exp().ln_1p() }
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// The pass input, for the backward step.
struct Input(Batch);

impl Bijection for SoftplusAffine {
    fn dim(&self) -> usize {
        self.theta.len() / 2
    }

    fn n_params(&self) -> usize {
        self.theta.len()
    }

    fn params(&self) -> Vec<f64> {
        self.theta.clone()
    }

    fn load_params(&mut self, params: &[f64]) -> Result<()> {
        self.theta.copy_from_slice(params);
        Ok(())
    }

    fn pass(&self, direction: Direction, input: &Batch, record: bool) -> Result<Pass> {
        let s = self.scales();
        let out = Batch::from_fn(input.nrows(), input.ncols(), |i, j| match direction {
            Direction::Forward => s[i] * input[(i, j)] + self.b(i),
            Direction::Inverse => (input[(i, j)] - self.b(i)) / s[i],
        });
        let ld = direction.sign() * s.iter().map(|v| v.ln()).sum::<f64>();
        Ok(Pass { out, log_det: vec![ld; input.ncols()], tape: record.then(|| Tape::new(Input(input.clone()))) })
    }

    fn vjp(&self, direction: Direction, tape: &Tape, g: Cotangent<'_>) -> Result<Batch> {
        let input = &tape.get::<Input>().ok_or_else(|| Error::Other("foreign tape".into()))?.0;
        let (d, n) = input.shape();
        let s = self.scales();
        let g_in = Batch::from_fn(d, n, |i, j| match direction {
            Direction::Forward => g.out[(i, j)] * s[i],
            Direction::Inverse => g.out[(i, j)] / s[i],
        });
        if let Some(gp) = g.params {
            let g_ld: f64 = g.log_det.iter().sum();
            for i in 0..d {
                let ds = sigmoid(self.a(i));
                let (mut ga, mut gb) = (direction.sign() * g_ld * ds / s[i], 0.0);
                for j in 0..n {
                    let v = input[(i, j)];
                    match direction {
                        Direction::Forward => {
                            ga += g.out[(i, j)] * v * ds;
                            gb += g.out[(i, j)];
                        }
                        Direction::Inverse => {
                            ga -= g.out[(i, j)] * (v - self.b(i)) * ds / (s[i] * s[i]);
                            gb -= g.out[(i, j)] / s[i];
                        }
                    }
                }
                gp[i] += ga;
                gp[d + i] += gb;
            }
        }
        Ok(g_in)
    }
}

fn layer(d: usize) -> SoftplusAffine {
    SoftplusAffine { theta: vec![0.0; 2 * d] }
}

#[test]
fn a_layer_with_only_the_small_surface_passes_the_bijection_checks() {
    let mut r = rng::stream(11, 0);
    let mut l = layer(4);
    testing::randomise_params(&mut l, 0.8, &mut r).unwrap();
    let z = testing::random_batch(4, 6, &mut r);
    let report = testing::check_bijection(&mut l, &z, 1e-6, 1e-10).unwrap();
    assert!(report.worst_gradient() < 1e-6, "{report:?}");
    // The length check of the provided `set_params` holds for it too.
    assert!(l.set_params(&[0.0; 3]).is_err());
}

#[test]
fn the_new_layer_trains_inside_a_flow_with_exact_gradients() {
    let mut r = rng::stream(12, 0);
    let layers: Vec<Box<dyn Bijection>> = vec![Box::new(layer(3)), Box::new(layer(3))];
    let mut flow = Flow::new(3, layers).unwrap();
    let mut p = flow.params();
    rng::fill_normal(&mut r, &mut p);
    p.iter_mut().for_each(|v| *v *= 0.5);
    flow.set_params(&p).unwrap();
    let x = testing::random_batch(3, 5, &mut r);
    let w: Vec<f64> = (0..5).map(|i| 0.2 + 0.1 * i as f64).collect();
    testing::check_flow(&mut flow, &x, &w, 1e-6).unwrap();
}

#[test]
fn a_wrong_vjp_fails_the_checks() {
    struct Broken(SoftplusAffine);
    impl Bijection for Broken {
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn n_params(&self) -> usize {
            self.0.n_params()
        }
        fn params(&self) -> Vec<f64> {
            self.0.params()
        }
        fn load_params(&mut self, p: &[f64]) -> Result<()> {
            self.0.load_params(p)
        }
        fn pass(&self, direction: Direction, input: &Batch, record: bool) -> Result<Pass> {
            self.0.pass(direction, input, record)
        }
        // Drops the log-determinant's share of the parameter cotangent.
        fn vjp(&self, direction: Direction, tape: &Tape, g: Cotangent<'_>) -> Result<Batch> {
            let zeros = vec![0.0; g.log_det.len()];
            self.0.vjp(direction, tape, Cotangent::new(g.out, &zeros, g.params))
        }
    }
    let mut r = rng::stream(13, 0);
    let mut l = Broken(layer(2));
    testing::randomise_params(&mut l, 0.8, &mut r).unwrap();
    let z = testing::random_batch(2, 4, &mut r);
    assert!(testing::check_bijection(&mut l, &z, 1e-6, 1e-10).is_err());
}
