//! Flow quality after training in f64 and in mixed precision: each peer row (by default the two
//! batch-1024 rows on the 16-D Many Well) is trained from the same seed with f64 and with
//! mixed-precision conditioners, then its flow ESS (Kish) is estimated on fresh samples with a
//! batch-means standard error.
//!
//! `cargo bench -p bootflow-realnvp --bench precision_ess [-- ROW ...] [--steps N] [--lr LR]
//! [--samples N] [--threads T]` (defaults: 300 steps, lr 1e-3, 65,536 samples, 2 threads).

mod peer_rows;

use std::time::Instant;

use bootflow_core::Trainer;
use bootflow_core::kish_ess;
use bootflow_core::rng;

use peer_rows::{ROWS, registry, trainer};

/// Sub-batches of the standard error.
const BATCHES: usize = 64;

/// Kish ESS fraction of `n` fresh samples and its standard error, `sd(batch fractions) /
/// sqrt(BATCHES)` (a fraction's variance falls as `1/n`).
fn flow_ess(t: &Trainer, n: usize) -> (f64, f64) {
    let mut r = rng::stream(1, 1);
    let (x, log_q) = t.flow().sample_with_log_q(n, &mut r).expect("samples");
    let mut log_p = vec![0.0; n];
    t.target().log_prob_batch(&x, &mut log_p).expect("target density");
    let log_w: Vec<f64> = log_p.iter().zip(&log_q).map(|(p, q)| p - q).collect();
    let parts: Vec<f64> = log_w.chunks(n / BATCHES).map(|c| kish_ess(c).expect("ess")).collect();
    let mean = parts.iter().sum::<f64>() / parts.len() as f64;
    let var = parts.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (parts.len() - 1) as f64;
    (kish_ess(&log_w).expect("ess"), (var / parts.len() as f64).sqrt())
}

fn main() {
    bootflow_core::keep_freed_memory();
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let (mut names, mut steps, mut lr, mut samples, mut threads) = (Vec::new(), 300u64, 1e-3, 65_536usize, 2usize);
    while let Some(a) = args.next() {
        let mut value = || args.next().expect("a value after the flag");
        match a.as_str() {
            "--steps" => steps = value().parse().expect("a step count"),
            "--lr" => lr = value().parse().expect("a learning rate"),
            "--samples" => samples = value().parse().expect("a sample count"),
            "--threads" => threads = value().parse().expect("a thread count"),
            _ => names.push(a),
        }
    }
    if names.is_empty() {
        names = vec!["kl-d16-b1024".into(), "fab-d16-b1024".into()];
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
    let reg = registry();
    println!("{steps} steps, lr {lr}, {samples} samples, {threads} threads");
    println!("{:<16} {:<6} {:>10} {:>10} {:>8}", "row", "prec", "flow_ess", "se", "train_s");
    for row in ROWS.iter().filter(|r| names.iter().any(|n| r.name.contains(n.as_str()))) {
        for precision in ["f64", "mixed"] {
            let start = Instant::now();
            let (ess, se) = pool.install(|| {
                let mut t = trainer(&reg, row, None, precision, lr);
                t.run_for(steps).expect("training");
                flow_ess(&t, samples)
            });
            let secs = start.elapsed().as_secs_f64();
            println!("{:<16} {precision:<6} {ess:>10.5} {se:>10.5} {secs:>8.1}", row.name);
        }
    }
}
