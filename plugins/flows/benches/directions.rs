//! Cost per sample of the forward (sampling, base -> data) and inverse (density) passes of MAF,
//! IAF and a spline coupling, dims 2, 16, 64, batch 256, one thread. MAF's inverse and IAF's
//! forward are one network pass; their other direction takes one pass per coordinate.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use bootflow_core::{Bijection, rng, testing};
use bootflow_flows::{AutoregressiveConfig, Kind, SplineConfig, build_autoregressive, build_spline};
use bootflow_nn::Activation;
use bootflow_nn::coupling::CouplingKeys;
use bootflow_nn::mask::MaskKind;

const BATCH: usize = 256;
const HIDDEN: [usize; 2] = [64, 64];

fn layer(name: &str, dim: usize) -> Box<dyn Bijection> {
    let mut l: Box<dyn Bijection> = match name {
        "spline" => {
            let cfg = SplineConfig {
                couplings: 1,
                bins: 8,
                bound: 3.0,
                precision: Default::default(),
                coupling: CouplingKeys {
                    hidden: Some(HIDDEN.to_vec()),
                    activation: Activation::Relu,
                    mask: MaskKind::Halves,
                    lattice: None,
                    ..Default::default()
                },
            };
            Box::new(build_spline(dim, &cfg, 1).expect("valid config").remove(0))
        }
        _ => {
            let kind = if name == "maf" { Kind::Maf } else { Kind::Iaf };
            let cfg = AutoregressiveConfig {
                blocks: 1,
                hidden: HIDDEN.to_vec(),
                activation: Activation::Relu,
                order: bootflow_flows::Order::Natural,
                scale_bound: 2.0,
            };
            Box::new(build_autoregressive(kind, dim, &cfg, 1).expect("valid config").remove(0))
        }
    };
    testing::randomise_params(l.as_mut(), 0.1, &mut rng::stream(2, 0)).expect("parameter count");
    l
}

fn directions(c: &mut Criterion) {
    let mut g = c.benchmark_group("directions");
    g.sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    g.throughput(Throughput::Elements(BATCH as u64));
    for name in ["maf", "iaf", "spline"] {
        for dim in [2, 16, 64] {
            let l = layer(name, dim);
            let z = testing::random_batch(dim, BATCH, &mut rng::stream(3, 0));
            let x = l.forward(&z, false).expect("forward").out;
            g.bench_with_input(BenchmarkId::new(format!("{name}/forward"), dim), &z, |b, z| {
                b.iter(|| black_box(l.forward(z, false).expect("forward")))
            });
            g.bench_with_input(BenchmarkId::new(format!("{name}/inverse"), dim), &x, |b, x| {
                b.iter(|| black_box(l.inverse(x, false).expect("inverse")))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, directions);
criterion_main!(benches);
