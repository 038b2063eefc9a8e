//! The training steps of the PyTorch peer timing (`benches/peer/torch_step_bench.py`), run through the
//! registry (`realnvp`, `manywell`, `hmc`) and the `Trainer`: one reverse-KL step
//! (reparameterisation, `g3`) or one FAB iteration (form `p`: AIS towards p~ with 2 intermediate
//! distributions, HMC with 1 trajectory of 5 leapfrog steps of size 0.1, surrogate
//! `LSE(log w + log p~ - log q)`), each followed by its Adam update, on Many Well.
//!
//! `cargo bench -p bootflow-realnvp --bench peer_steps [-- ROW ...] [--repeat N] [--threads T]
//! [--shard S] [--precision f64|mixed]` prints the median and minimum milliseconds per step of
//! each row (default: every row, 15 timed steps after 3 warm-up steps, 2 threads, as the peer
//! script; the flow's default shard size unless `--shard`; f64 conditioners unless
//! `--precision mixed`, the `realnvp` entry's `precision` key).

mod peer_rows;

use std::time::Instant;

use bootflow_core::Registry;

use peer_rows::{ROWS, Row, registry, trainer};

const WARMUP: usize = 3;

/// How a row is run: threads are set by the pool around it.
struct Setup {
    repeat: usize,
    shard: Option<usize>,
    precision: String,
}

/// Median and minimum milliseconds of `setup.repeat` steps after the warm-up.
fn time_row(reg: &Registry, row: &Row, setup: &Setup) -> (f64, f64) {
    let mut t = trainer(reg, row, setup.shard, &setup.precision, 1e-4);
    for _ in 0..WARMUP {
        t.step_once().expect("step");
    }
    let mut ms: Vec<f64> = (0..setup.repeat.max(1))
        .map(|_| {
            let start = Instant::now();
            t.step_once().expect("step");
            1e3 * start.elapsed().as_secs_f64()
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[0])
}

fn main() {
    bootflow_core::keep_freed_memory();
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let (mut names, mut threads) = (Vec::new(), 2);
    let mut setup = Setup { repeat: 15, shard: None, precision: "f64".into() };
    while let Some(a) = args.next() {
        if a == "--precision" {
            setup.precision = args.next().expect("f64 or mixed after --precision");
            continue;
        }
        let mut value = || args.next().and_then(|v| v.parse().ok()).expect("a positive number after the flag");
        match a.as_str() {
            "--repeat" => setup.repeat = value(),
            "--threads" => threads = value(),
            "--shard" => setup.shard = Some(value()),
            _ => names.push(a),
        }
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
    let reg = registry();
    let (repeat, precision) = (setup.repeat, &setup.precision);
    println!(
        "{:<16} {:>10} {:>10}   ({threads} threads, {repeat} timed steps, {precision})",
        "row", "median_ms", "min_ms"
    );
    for row in ROWS.iter().filter(|r| names.is_empty() || names.iter().any(|n| r.name.contains(n.as_str()))) {
        let (median, min) = pool.install(|| time_row(&reg, row, &setup));
        println!("{:<16} {median:>10.1} {min:>10.1}", row.name);
    }
}
