//! Value and gradient of the 32-D Many Well script: traced replay against the per-point
//! interpreter fallback, with the formula written directly in Rust as the native reference.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;

use bootflow_core::ScriptTarget;
use bootflow_core::testing::random_batch;
use bootflow_core::{Batch, Target, rng};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn many_well(x: &[f64], g: &mut [f64]) -> f64 {
    let (a, b, c) = (-0.5, -6.0, 1.0);
    let mut s = 0.0;
    for i in 0..x.len() / 2 {
        let (w, y) = (x[2 * i], x[2 * i + 1]);
        s -= a * w + b * w * w + c * w.powi(4) + 0.5 * y * y;
        g[2 * i] = -(a + 2.0 * b * w + 4.0 * c * w.powi(3));
        g[2 * i + 1] = -y;
    }
    s
}

fn load() -> ScriptTarget {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/manywell.rhai");
    ScriptTarget::from_file(&path, &BTreeMap::new()).expect("manywell.rhai loads")
}

fn bench(c: &mut Criterion) {
    let traced = load();
    let interpreted = load().without_tracing();
    let x = random_batch(32, 1024, &mut rng::stream(1, 0));
    let point = x.column(0).into_owned();
    let mut grad = vec![0.0; 32];

    let mut group = c.benchmark_group("manywell32_value_grad_per_point");
    group.throughput(Throughput::Elements(1));
    group.bench_function("native_rust", |b| b.iter(|| many_well(black_box(point.as_slice()), &mut grad)));
    group.bench_function("traced_replay", |b| {
        b.iter(|| traced.log_prob_grad(black_box(point.as_slice()), &mut grad).unwrap())
    });
    group.bench_function("interpreter", |b| {
        b.iter(|| interpreted.log_prob_grad(black_box(point.as_slice()), &mut grad).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("manywell32_value_grad_batch1024");
    group.throughput(Throughput::Elements(1024));
    let (mut out, mut g) = (vec![0.0; 1024], Batch::zeros(32, 1024));
    group.bench_function("traced_replay", |b| b.iter(|| traced.log_prob_grad_batch(black_box(&x), &mut out, &mut g)));
    group.sample_size(10);
    group
        .bench_function("interpreter", |b| b.iter(|| interpreted.log_prob_grad_batch(black_box(&x), &mut out, &mut g)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
