//! One g3 (reparameterisation) reverse-KL training step of the lattice paper's flow at L = 16:
//! 16 affine couplings on checkerboard masks with convolutional conditioners
//! (1 -> 16 -> 16 -> 16 -> 2 channels, 3 x 3 kernels, periodic padding, leaky ReLU), batch 1024
//! in the training's default shards of 256, on one thread, next to a plain GEMM of the shape of
//! one hidden convolution's product (16 x 144 times 144 x 65536, a shard's im2col columns), also
//! on one thread, in the precision of the step's products (f64, or f32 for `mixed`). GFLOP/s count only the convolutions' matrix products (2 m n k each: forward,
//! and the backward products for the input and the weights); the step's time also holds the
//! unfolding, the activations, the affine map and its log-determinant.
//!
//! The target is a standard Gaussian on the 256 sites: its gradient costs nothing next to the
//! flow, as phi^4's nearest-neighbour action does.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use nalgebra::DMatrix;

use bootflow_core::{Batch, Flow, Rng, rng};
use bootflow_nn::conditioner::ConditionerKind;
use bootflow_nn::coupling::CouplingKeys;
use bootflow_realnvp::{Activation, MaskKind, Precision, RealNvpConfig};

const SIDE: usize = 16;
const DIM: usize = SIDE * SIDE;
const COUPLINGS: usize = 16;
const CHANNELS: [usize; 3] = [16, 16, 16];
const KERNEL: usize = 3;
const BATCH: usize = 1024;
const SHARD: usize = 256;
/// Interleaved rounds of one step and plain GEMMs: a step takes tens of seconds on one core.
const ROUNDS: usize = 3;
const GEMM: (usize, usize, usize) = (16, 16 * KERNEL * KERNEL, SHARD * DIM);

fn flow(precision: Precision) -> Flow {
    let cfg = RealNvpConfig {
        couplings: COUPLINGS,
        coupling: CouplingKeys {
            conditioner: ConditionerKind::Conv,
            channels: Some(CHANNELS.to_vec()),
            kernel: Some(KERNEL),
            activation: Activation::LeakyRelu,
            mask: MaskKind::Checkerboard,
            lattice: Some(SIDE),
            ..Default::default()
        },
        scale_bound: 2.0,
        init_scale: 0.5,
        precision,
    };
    let layers = bootflow_realnvp::build(DIM, &cfg, 1).expect("valid config");
    let layers = layers.into_iter().map(|l| Box::new(l) as Box<dyn bootflow_core::Bijection>).collect();
    Flow::new(DIM, layers).expect("layers fit").with_shard_size(SHARD)
}

/// Matrix-product flops of one step: per convolution, one product forward and two backward.
fn step_flops() -> f64 {
    let mut channels = vec![1];
    channels.extend(CHANNELS);
    channels.push(2);
    let per_site: usize = channels.windows(2).map(|w| w[0] * w[1] * KERNEL * KERNEL).sum();
    (3 * 2 * BATCH * DIM * per_site * COUPLINGS) as f64
}

fn gemm_flops() -> f64 {
    (2 * GEMM.0 * GEMM.1 * GEMM.2) as f64
}

/// Sample with log q, standard-Gaussian target, and the g3 parameter gradient
/// `d/dtheta mean_i [log q(x_i) - log p(x_i)]` at fixed base draws.
fn train_step(flow: &Flow, r: &mut Rng) -> (f64, Vec<f64>) {
    let path = flow.sample_path(BATCH, r).expect("sample");
    let n = BATCH as f64;
    let log_p: Vec<f64> = path.x.column_iter().map(|c| -0.5 * c.norm_squared()).collect();
    let g_x: Batch = &path.x / n;
    let loss = path.log_q.iter().zip(&log_p).map(|(a, b)| a - b).sum::<f64>() / n;
    let grad = flow.backprop_path(&path, &g_x, &vec![1.0 / n; BATCH]).expect("backprop");
    (loss, grad)
}

/// Plain products of the GEMM shape in the precision of the step's products.
struct Plain {
    f64: (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>),
    f32: (DMatrix<f32>, DMatrix<f32>, DMatrix<f32>),
}

impl Plain {
    fn new() -> Self {
        let a = DMatrix::from_fn(GEMM.0, GEMM.1, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let b = DMatrix::from_fn(GEMM.1, GEMM.2, |i, j| ((i * 5 + j * 2) % 13) as f64 - 6.0);
        let (a32, b32) = (a.map(|v| v as f32), b.map(|v| v as f32));
        Plain { f64: (a, b, DMatrix::zeros(GEMM.0, GEMM.2)), f32: (a32, b32, DMatrix::zeros(GEMM.0, GEMM.2)) }
    }

    fn run(&mut self, precision: Precision) {
        match precision {
            Precision::F64 => {
                let (a, b, c) = &mut self.f64;
                c.gemm(1.0, a, b, 0.0);
                black_box(c);
            }
            Precision::Mixed => {
                let (a, b, c) = &mut self.f32;
                c.gemm(1.0, a, b, 0.0);
                black_box(c);
            }
        }
    }
}

fn seconds(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(_: &mut Criterion) {
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a one-thread pool");
    let mut plain = Plain::new();
    for precision in [Precision::F64, Precision::Mixed] {
        let flow = flow(precision);
        let mut r = rng::stream(2, 0);
        let name = precision.name();
        // Interleaved rounds: one step, then plain GEMMs for about as long, so that both rates
        // of a round see the same machine load.
        let step = |r: &mut Rng| one.install(|| drop(black_box(train_step(&flow, r))));
        let reps = (seconds(|| step(&mut r)) / seconds(|| plain.run(precision))).ceil().max(1.0) as usize;
        let (mut steps, mut gemms, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let t_step = seconds(|| step(&mut r));
            let t_gemm = seconds(|| (0..reps).for_each(|_| plain.run(precision))) / reps as f64;
            let (rate_step, rate_gemm) = (step_flops() / t_step / 1e9, gemm_flops() / t_gemm / 1e9);
            steps.push(rate_step);
            gemms.push(rate_gemm);
            ratios.push(rate_step / rate_gemm);
        }
        println!(
            "{name}, single thread, medians of {ROUNDS} interleaved rounds: g3 step {:.2} GFLOP/s ({:.1} GFLOP, {:.2} s per \
             step), plain {name} gemm {}x{}x{} {:.2} GFLOP/s, step/gemm {:.0} % (rounds: {:.0}..{:.0} %)",
            median(steps.clone()),
            step_flops() / 1e9,
            step_flops() / 1e9 / median(steps),
            GEMM.0,
            GEMM.1,
            GEMM.2,
            median(gemms),
            100.0 * median(ratios.clone()),
            100.0 * ratios.iter().copied().fold(f64::INFINITY, f64::min),
            100.0 * ratios.iter().copied().fold(0.0, f64::max),
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
