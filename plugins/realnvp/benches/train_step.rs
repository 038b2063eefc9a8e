//! One reverse-KL training step of a 16-D RealNVP flow (8 couplings, hidden 256 x 256,
//! batch 1024) next to a plain GEMM of similar shape, both single-threaded: the flow runs as one
//! shard (one thread), and matrixmultiply is single-threaded. GFLOP/s count only matrix products
//! (2 m n k each): the forward pass, and the backward products for dX and dW.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nalgebra::DMatrix;

use bootflow_core::{Batch, Flow, Rng, rng};
use bootflow_nn::coupling::CouplingKeys;
use bootflow_realnvp::{Activation, MaskKind, Precision, RealNvpConfig};

const DIM: usize = 16;
const COUPLINGS: usize = 8;
const HIDDEN: [usize; 2] = [256, 256];
const BATCH: usize = 1024;
const GEMM: (usize, usize, usize) = (256, 256, 1024);

fn flow() -> Flow {
    let cfg = RealNvpConfig {
        couplings: COUPLINGS,
        coupling: CouplingKeys {
            hidden: Some(HIDDEN.to_vec()),
            activation: Activation::Relu,
            mask: MaskKind::Halves,
            lattice: None,
            ..Default::default()
        },
        scale_bound: 2.0,
        init_scale: 0.5,
        precision: Precision::F64,
    };
    let layers = bootflow_realnvp::build(DIM, &cfg, 1).expect("valid config");
    let layers = layers.into_iter().map(|l| Box::new(l) as Box<dyn bootflow_core::Bijection>).collect();
    Flow::new(DIM, layers).expect("layers fit").with_shard_size(BATCH)
}

/// Matrix-product flops of one step: per coupling, one GEMM per layer forward and two backward.
fn step_flops() -> f64 {
    let mut widths = vec![DIM / 2];
    widths.extend(HIDDEN);
    widths.push(DIM);
    let per_column: usize = widths.windows(2).map(|w| w[0] * w[1]).sum();
    (3 * 2 * BATCH * per_column * COUPLINGS) as f64
}

fn gemm_flops() -> f64 {
    (2 * GEMM.0 * GEMM.1 * GEMM.2) as f64
}

/// Sample with log q, standard-Gaussian target and its gradient, and the reverse-KL parameter
/// gradient `d/dtheta mean_i [log q(x_i) - log p(x_i)]` at fixed base draws.
fn train_step(flow: &Flow, r: &mut Rng) -> (f64, Vec<f64>) {
    let path = flow.sample_path(BATCH, r).expect("sample");
    let n = BATCH as f64;
    let log_p: Vec<f64> = path.x.column_iter().map(|c| -0.5 * c.norm_squared()).collect();
    let g_x: Batch = &path.x / n; // d(-log p)/dx / N
    let loss = path.log_q.iter().zip(&log_p).map(|(a, b)| a - b).sum::<f64>() / n;
    let grad = flow.backprop_path(&path, &g_x, &vec![1.0 / n; BATCH]).expect("backprop");
    (loss, grad)
}

fn plain_gemm(c: &mut DMatrix<f64>, a: &DMatrix<f64>, b: &DMatrix<f64>) {
    c.gemm(1.0, a, b, 0.0);
}

/// Seconds taken by `f`.
fn seconds(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(c: &mut Criterion) {
    let flow = flow();
    let mut r = rng::stream(2, 0);
    let a = DMatrix::from_fn(GEMM.0, GEMM.1, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
    let b = DMatrix::from_fn(GEMM.1, GEMM.2, |i, j| ((i * 5 + j * 2) % 13) as f64 - 6.0);
    let mut out = DMatrix::zeros(GEMM.0, GEMM.2);

    let mut g = c.benchmark_group("realnvp");
    g.sample_size(10);
    g.throughput(Throughput::Elements(step_flops() as u64));
    g.bench_function("train_step_16d_8x256x256_b1024", |bch| bch.iter(|| black_box(train_step(&flow, &mut r))));
    g.throughput(Throughput::Elements(gemm_flops() as u64));
    g.bench_function("gemm_256x256x1024", |bch| bch.iter(|| plain_gemm(black_box(&mut out), &a, &b)));
    g.finish();

    // Interleaved rounds: one step, then plain GEMMs for about as long. Both rates of a round
    // see the same machine load, so the per-round ratio is robust on a shared machine.
    let reps = (seconds(|| drop(black_box(train_step(&flow, &mut r)))) / seconds(|| plain_gemm(&mut out, &a, &b)))
        .ceil()
        .max(1.0) as usize;
    let (mut steps, mut gemms, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..9 {
        let t_step = seconds(|| drop(black_box(train_step(&flow, &mut r))));
        let t_gemm = seconds(|| (0..reps).for_each(|_| plain_gemm(black_box(&mut out), &a, &b))) / reps as f64;
        let (rate_step, rate_gemm) = (step_flops() / t_step / 1e9, gemm_flops() / t_gemm / 1e9);
        steps.push(rate_step);
        gemms.push(rate_gemm);
        ratios.push(rate_step / rate_gemm);
    }
    println!(
        "single thread, medians of 9 interleaved rounds: train step {:.2} GFLOP/s ({:.3} GFLOP per step), \
         plain gemm {:.2} GFLOP/s, step/gemm {:.0} % (rounds: {:.0}..{:.0} %)",
        median(steps),
        step_flops() / 1e9,
        median(gemms),
        100.0 * median(ratios.clone()),
        100.0 * ratios.iter().copied().fold(f64::INFINITY, f64::min),
        100.0 * ratios.iter().copied().fold(0.0, f64::max),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
