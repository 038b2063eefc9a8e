//! Property tests of core: the element-wise affine bijection and a flow built from it, the
//! column shards, and FAB's replay buffer.
//!
//! Every property runs a fixed number of cases from a fixed proptest seed (ChaCha), with no
//! failure persistence, no forking and no timeout, and none of the config is taken from the
//! environment (`PROPTEST_*` variables are overridden field by field), so a run is the same on
//! every machine and writes no files. A failure reports the minimal (shrunk) case.
//!
//! Random parameters and inputs come from bootflow's own seeded streams: the strategies draw the
//! shape, scales and a seed, and the seed picks the values.

use proptest::prelude::*;

use bootflow_core::ElementwiseAffine;
use bootflow_core::ReplayBuffer;
use bootflow_core::testing::properties::*;
use bootflow_core::{Batch, Bijection, Flow, rng, shard, testing};

// ---------------------------------------------------------------------------------------------
// 1. Element-wise affine layer and flows

/// Shape, parameter scale, input scale and the seed of the values.
/// `a` within `tol` of `b`, relative to `max(|b|, 1)`.
fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

fn layer_case() -> impl Strategy<Value = (usize, usize, f64, f64, u64)> {
    (2usize..8, 0usize..9, 0.0f64..2.0, prop_oneof![Just(1.0), 0.01f64..10.0], any::<u64>())
}

/// Catches: a wrong inverse (e.g. shift applied after the scale), a log-det sign or a missing
/// coordinate in the sum, shape mistakes on empty batches, and taped/untaped passes disagreeing.
#[test]
fn affine_round_trips_and_log_dets_cancel() {
    check("affine round trip", 256, 1, layer_case(), |(dim, n, pscale, xscale, seed)| {
        let mut r = rng::stream(seed, 0);
        let mut layer = ElementwiseAffine::new(dim);
        testing::randomise_params(&mut layer, pscale, &mut r).unwrap();
        let z = inputs(dim, n, xscale, &mut r);
        both_round_trips(&layer, &z)?;
        // log|det| is sum(s) for every column, whatever the input.
        let s: f64 = layer.params()[..dim].iter().sum();
        let fwd = layer.forward(&z, false).unwrap();
        prop_assert!(fwd.log_det.iter().all(|&l| close(l, s, 1e-12)), "log det {:?} vs sum s {}", fwd.log_det, s);
        Ok(())
    });
}

/// `sample_with_log_q` then `log_q` of the samples agree, for stacks of 1..4 affine layers, a
/// random diagonal base and random shard sizes (several shards per batch included). Catches
/// a forward log q with the wrong sign or base term, shards joined out of order, and shard size
/// dependence.
#[test]
fn flow_sample_log_q_matches_log_q() {
    let case = (1usize..8, 0usize..40, 1usize..4, 1usize..12, 0.0f64..1.5, any::<u64>());
    check("flow sample/log q", 256, 2, case, |(dim, n, layers, shard_size, pscale, seed)| {
        let mut r = rng::stream(seed, 0);
        let mut stack: Vec<Box<dyn Bijection>> = Vec::new();
        for _ in 0..layers {
            let mut l = ElementwiseAffine::new(dim);
            testing::randomise_params(&mut l, pscale, &mut r).unwrap();
            stack.push(Box::new(l));
        }
        let mean: Vec<f64> = (0..dim).map(|i| (i as f64 - 1.0) * pscale).collect();
        let std: Vec<f64> = (0..dim).map(|i| 0.5 + 0.25 * i as f64).collect();
        let flow = Flow::with_base(mean, std, stack).unwrap().with_shard_size(shard_size);
        let (x, lq) = flow.sample_with_log_q(n, &mut r).unwrap();
        prop_assert_eq!(x.shape(), (dim, n));
        prop_assert_eq!(lq.len(), n);
        let again = flow.log_q(&x).unwrap();
        prop_assert_eq!(again.len(), n);
        for j in 0..n {
            prop_assert!(lq[j].is_finite() && close(lq[j], again[j], TOL), "column {}: {} vs {}", j, lq[j], again[j]);
        }
        // The same base points through an unsharded flow give the same samples.
        let unsharded = Flow::with_base(
            (0..dim).map(|i| (i as f64 - 1.0) * pscale).collect(),
            (0..dim).map(|i| 0.5 + 0.25 * i as f64).collect(),
            flow.layers()
                .iter()
                .map(|l| {
                    let mut a = ElementwiseAffine::new(dim);
                    a.set_params(&l.params()).unwrap();
                    Box::new(a) as Box<dyn Bijection>
                })
                .collect(),
        )
        .unwrap()
        .with_shard_size(usize::MAX);
        let z = testing::invert_to_base(&flow, &x).unwrap();
        let (x1, lq1) = unsharded.push_forward(&z).unwrap();
        prop_assert!((&x1 - &x).abs().max() <= TOL * x.abs().max().max(1.0), "sharded and unsharded samples differ");
        for j in 0..n {
            prop_assert!(close(lq1[j], lq[j], TOL), "column {}: unsharded log q {} vs {}", j, lq1[j], lq[j]);
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// 2. Shards

/// Batch sizes 0..5000 (small ones often) and shard sizes 0..300 (0 is read as 1) or larger than n.
fn shard_case() -> impl Strategy<Value = (usize, usize)> {
    let n = prop_oneof![0usize..20, 0usize..5000];
    let size = prop_oneof![0usize..300, 1usize..6000];
    (n, size)
}

/// The ranges are non-empty, contiguous, in order, disjoint and cover `0..n` exactly, every one
/// but the last has the shard size, and `map` returns them in that order. Catches an off-by-one
/// in the last shard, a zero shard size looping or dividing by zero, and `map` reordering.
#[test]
fn shard_ranges_cover_every_column_once() {
    check("shard ranges", 1024, 3, shard_case(), |(n, size)| {
        let ranges = shard::ranges(n, size);
        let eff = size.max(1);
        prop_assert_eq!(ranges.len(), n.div_ceil(eff));
        let mut next = 0;
        for (k, &(start, len)) in ranges.iter().enumerate() {
            prop_assert_eq!(start, next, "shard {} starts at {} not {}", k, start, next);
            prop_assert!(len >= 1 && len <= eff, "shard {} has length {}", k, len);
            if k + 1 < ranges.len() {
                prop_assert_eq!(len, eff, "inner shard {} is short", k);
            }
            next = start + len;
        }
        prop_assert_eq!(next, n, "ranges end at {} not {}", next, n);
        let mut seen = vec![0u8; n];
        for &(start, len) in &ranges {
            seen[start..start + len].iter_mut().for_each(|c| *c += 1);
        }
        prop_assert!(seen.iter().all(|&c| c == 1));
        let mapped = shard::map(n, size, Ok).unwrap();
        prop_assert_eq!(mapped, ranges);
        // The default size stays within its documented bounds.
        let ds = shard::default_size(n);
        prop_assert!((shard::MIN_SHARD..=shard::DEFAULT_SHARD).contains(&ds));
        Ok(())
    });
}

/// `concat_columns` of `columns` of every range gives back the batch (also through `map`, as the
/// flow uses it). Catches blocks written at the wrong offset or a column lost at a shard edge.
#[test]
fn shard_columns_concatenate_back_to_the_batch() {
    let case = (1usize..6, prop_oneof![0usize..50, 0usize..1200], 0usize..70, any::<u64>());
    check("shard columns", 256, 4, case, |(rows, n, size, seed)| {
        let b = testing::random_batch(rows, n, &mut rng::stream(seed, 0));
        let parts = shard::ranges(n, size);
        let blocks: Vec<Batch> = parts.iter().map(|&r| shard::columns(&b, r)).collect();
        for (&(_, len), blk) in parts.iter().zip(&blocks) {
            prop_assert_eq!(blk.shape(), (rows, len));
        }
        prop_assert_eq!(&shard::concat_columns(rows, n, &parts, blocks), &b);
        let via_map = shard::map(n, size, |r| Ok(shard::columns(&b, r))).unwrap();
        prop_assert_eq!(&shard::concat_columns(rows, n, &parts, via_map), &b);
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// 3. Replay buffer, against a model

/// One operation on the buffer. Values are small integers (exactly representable sums), so the
/// model can demand exact equality.
#[derive(Clone, Debug)]
enum Op {
    /// Columns with their log w and log q; `None` is a non-finite value (NaN, +inf, -inf by index).
    Push(Vec<(i32, Option<i32>, Option<i32>, u8)>),
    /// A push whose weight list has the wrong length: refused, buffer unchanged.
    PushBadLength(usize),
    Sample(usize, u64),
    /// Slot picks (taken modulo the length, or out of range when `bad`) and new log q values.
    Adjust(Vec<(usize, Option<i32>)>, bool),
}

fn op() -> impl Strategy<Value = Op> {
    let val = -40i32..40;
    let maybe = prop_oneof![8 => val.clone().prop_map(Some), 1 => Just(None)];
    prop_oneof![
        4 => prop::collection::vec((val.clone(), maybe.clone(), maybe.clone(), 0u8..3), 0..12).prop_map(Op::Push),
        1 => (1usize..4).prop_map(Op::PushBadLength),
        2 => (0usize..20, any::<u64>()).prop_map(|(n, s)| Op::Sample(n, s)),
        3 => (prop::collection::vec((0usize..64, maybe), 0..10), prop::bool::weighted(0.1)).prop_map(|(v, b)| Op::Adjust(v, b)),
    ]
}

fn non_finite(k: u8) -> f64 {
    [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][k as usize % 3]
}

/// The model: slots in order `(point, log w, log q)` and the slot written next.
struct Model {
    dim: usize,
    capacity: usize,
    slots: Vec<(Vec<f64>, f64, f64)>,
    next: usize,
}

/// For random capacities, dimensions and sequences of pushes (with non-finite weights and log q
/// among them), draws and weight updates (repeated, out-of-range and non-finite entries
/// included), the buffer matches a model of its documented behaviour after every operation:
/// length `min(finite pushes, capacity)`, never above capacity; oldest entry overwritten first;
/// non-finite entries never stored; drawn indices in range and as many as asked, drawing from
/// an empty buffer an error; `adjust` updating each distinct slot once
/// (`log w += log q_stored - log q_now`, `log q_stored = log q_now`, so `log w + log q` is kept),
/// skipping non-finite results, refusing out-of-range slots without change; points, weights and
/// stored log q exactly as set; `validate` passing; and a serde round trip giving an equal
/// buffer. Catches eviction of the wrong slot, growth past capacity, non-finite weights stored
/// (which would poison the sampling sums), double adjustment of a slot drawn twice, partial
/// updates before an out-of-range error, and checkpoint state that does not round trip.
#[test]
fn replay_buffer_matches_its_model() {
    let case = (1usize..4, 1usize..9, prop::collection::vec(op(), 1..30));
    check("replay buffer", 1024, 5, case, |(dim, capacity, ops)| {
        let mut buf = ReplayBuffer::new(dim, capacity).unwrap();
        let mut m = Model { dim, capacity, slots: Vec::new(), next: 0 };
        let mut counter = 0.0;
        for op in ops {
            match op {
                Op::Push(cols) => {
                    let n = cols.len();
                    let mut x = Batch::zeros(dim, n);
                    let (mut lw, mut lq) = (Vec::new(), Vec::new());
                    for (j, &(base, w, q, k)) in cols.iter().enumerate() {
                        for i in 0..dim {
                            counter += 1.0;
                            x[(i, j)] = base as f64 + counter;
                        }
                        lw.push(w.map_or(non_finite(k), f64::from));
                        lq.push(q.map_or(non_finite(k + 1), f64::from));
                    }
                    buf.push(&x, &lw, &lq).unwrap();
                    for j in 0..n {
                        if lw[j].is_finite() && lq[j].is_finite() {
                            let entry = (x.column(j).iter().cloned().collect(), lw[j], lq[j]);
                            if m.slots.len() < m.capacity {
                                m.slots.push(entry);
                            } else {
                                m.slots[m.next] = entry;
                            }
                            m.next = (m.next + 1) % m.capacity;
                        }
                    }
                }
                Op::PushBadLength(n) => {
                    let before = buf.clone();
                    prop_assert!(buf.push(&Batch::zeros(dim, n), &vec![0.0; n - 1], &vec![0.0; n]).is_err());
                    prop_assert!(buf.push(&Batch::zeros(dim, n), &vec![0.0; n], &vec![0.0; n + 1]).is_err());
                    prop_assert!(buf.push(&Batch::zeros(dim + 1, n), &vec![0.0; n], &vec![0.0; n]).is_err());
                    prop_assert_eq!(&buf, &before, "a refused push changed the buffer");
                }
                Op::Sample(n, seed) => {
                    let drawn = buf.sample(n, &mut rng::stream(seed, 0));
                    if m.slots.is_empty() {
                        prop_assert!(drawn.is_err(), "drawing from an empty buffer succeeded");
                    } else {
                        let idx = drawn.unwrap();
                        prop_assert_eq!(idx.len(), n);
                        prop_assert!(idx.iter().all(|&i| i < m.slots.len()), "index out of range: {:?}", idx);
                        // A draw of the stored points, weights and log q reads the slots drawn.
                        let pts = buf.points(&idx);
                        let lq = buf.stored_log_q(&idx);
                        for (j, &i) in idx.iter().enumerate() {
                            prop_assert_eq!(pts.column(j).iter().cloned().collect::<Vec<_>>(), m.slots[i].0.clone());
                            prop_assert_eq!(lq[j], m.slots[i].2);
                        }
                    }
                }
                Op::Adjust(picks, bad) => {
                    let len = m.slots.len();
                    let mut idx: Vec<usize> = picks.iter().map(|&(i, _)| if len == 0 { i } else { i % len }).collect();
                    let q_now: Vec<f64> = picks.iter().map(|&(_, q)| q.map_or(f64::NAN, f64::from)).collect();
                    if bad && !idx.is_empty() {
                        idx[0] = len + picks[0].0;
                    }
                    let out_of_range = idx.iter().any(|&i| i >= len);
                    let before = buf.clone();
                    let res = buf.adjust(&idx, &q_now);
                    if out_of_range {
                        prop_assert!(res.is_err(), "adjust accepted slot {:?} of {}", idx, len);
                        prop_assert_eq!(&buf, &before, "a refused adjust changed the buffer");
                    } else {
                        res.unwrap();
                        let mut done = vec![false; len];
                        for (&i, &q) in idx.iter().zip(&q_now) {
                            let (_, w_old, q_old) = m.slots[i].clone();
                            let w = w_old + q_old - q;
                            if !done[i] && w.is_finite() {
                                m.slots[i].1 = w;
                                m.slots[i].2 = q;
                                done[i] = true;
                            }
                        }
                        // log w + log q is what adjust keeps, slot by slot (exact: small integers).
                        let slots: Vec<usize> = (0..len).collect();
                        let (qb, qa) = (before.stored_log_q(&slots), buf.stored_log_q(&slots));
                        for i in 0..len {
                            prop_assert_eq!(
                                buf.log_weights()[i] + qa[i],
                                before.log_weights()[i] + qb[i],
                                "slot {}",
                                i
                            );
                        }
                    }
                    prop_assert!(buf.adjust(&idx[..0], &q_now[..0]).is_ok());
                    prop_assert!(buf.adjust(&idx, &[q_now.clone(), vec![0.0]].concat()).is_err());
                }
            }
            // The buffer agrees with the model.
            prop_assert!(buf.len() <= capacity, "length {} above capacity {}", buf.len(), capacity);
            prop_assert_eq!(buf.len(), m.slots.len());
            prop_assert_eq!(buf.is_empty(), m.slots.is_empty());
            prop_assert_eq!(buf.dim(), m.dim);
            let all: Vec<usize> = (0..m.slots.len()).collect();
            let weights: Vec<f64> = m.slots.iter().map(|s| s.1).collect();
            prop_assert_eq!(buf.log_weights(), &weights[..]);
            prop_assert!(buf.log_weights().iter().all(|w| w.is_finite()));
            prop_assert_eq!(buf.stored_log_q(&all), m.slots.iter().map(|s| s.2).collect::<Vec<_>>());
            let pts = buf.points(&all);
            prop_assert_eq!(pts.shape(), (dim, all.len()));
            for (j, s) in m.slots.iter().enumerate() {
                prop_assert_eq!(pts.column(j).iter().cloned().collect::<Vec<_>>(), s.0.clone(), "slot {}", j);
            }
            prop_assert!(buf.validate().is_ok());
        }
        let json = serde_json::to_string(&buf).unwrap();
        let back: ReplayBuffer = serde_json::from_str(&json).unwrap();
        prop_assert!(back.validate().is_ok());
        prop_assert_eq!(&back, &buf, "serde round trip changed the buffer");
        Ok(())
    });
}

/// A buffer refuses zero capacity and zero dimension.
#[test]
fn replay_buffer_refuses_empty_shapes() {
    check("replay buffer shapes", 32, 6, (0usize..4, 0usize..4), |(dim, cap)| {
        prop_assert_eq!(ReplayBuffer::new(dim, cap).is_ok(), dim > 0 && cap > 0);
        Ok(())
    });
}
