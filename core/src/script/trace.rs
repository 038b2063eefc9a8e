//! A flat list of elementary operations recorded from a script, its forward replay and its
//! reverse sweep.
//!
//! Node `i` holds one operation on earlier nodes (`a`, `b`) and an inline constant `c`; the first
//! `dim` nodes are the inputs. The same [`apply`] computes a node's value while recording and
//! while replaying, so both paths give bit-identical values. The reverse sweep skips zero
//! adjoints and zero local derivatives, so an underflowed branch (`exp` of a very negative
//! number inside `ln`, giving `-inf`) contributes nothing instead of `0 * inf = NaN`.

/// One elementary operation. Suffix `C`: the second operand is the inline constant `c`;
/// prefix `C`: the constant is the first operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Op {
    Input,
    Const,
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Min,
    Max,
    AddC,
    MulC,
    DivC,
    PowC,
    PowI,
    MinC,
    MaxC,
    CSub,
    CDiv,
    CPow,
    Neg,
    Exp,
    Ln,
    Log10,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Tanh,
    Sinh,
    Cosh,
    Abs,
    Sigmoid,
    Softplus,
    Log1p,
    Expm1,
}

/// A recorded operation with its operands.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    pub op: Op,
    pub a: u32,
    pub b: u32,
    pub c: f64,
}

/// Numerically stable logistic function.
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Numerically stable `ln(1 + e^x)`.
pub(crate) fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `min` choosing the first operand on ties (the sweep uses the same rule).
fn pick_min(a: f64, b: f64) -> f64 {
    if b < a { b } else { a }
}

fn pick_max(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}

/// `a^n` with the common small powers inlined; the same products, in the same order, as
/// `f64::powi`'s repeated squaring, so the result is identical, just without the call.
#[inline(always)]
fn powi(a: f64, n: i32) -> f64 {
    match n {
        0 => 1.0,
        1 => a,
        2 => a * a,
        3 => a * (a * a),
        4 => {
            let s = a * a;
            s * s
        }
        _ => a.powi(n),
    }
}

/// Value of `op` on operand values `a`, `b` and constant `c` (`Input` is never applied).
#[inline(always)]
pub(crate) fn apply(op: Op, a: f64, b: f64, c: f64) -> f64 {
    match op {
        Op::Input | Op::Const => c,
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
        Op::Pow => a.powf(b),
        Op::Min => pick_min(a, b),
        Op::Max => pick_max(a, b),
        Op::AddC => a + c,
        Op::MulC => a * c,
        Op::DivC => a / c,
        Op::PowC => a.powf(c),
        Op::PowI => powi(a, c as i32),
        Op::MinC => pick_min(a, c),
        Op::MaxC => pick_max(a, c),
        Op::CSub => c - a,
        Op::CDiv => c / a,
        Op::CPow => c.powf(a),
        Op::Neg => -a,
        Op::Exp => a.exp(),
        Op::Ln => a.ln(),
        Op::Log10 => a.log10(),
        Op::Sqrt => a.sqrt(),
        Op::Sin => a.sin(),
        Op::Cos => a.cos(),
        Op::Tan => a.tan(),
        Op::Tanh => a.tanh(),
        Op::Sinh => a.sinh(),
        Op::Cosh => a.cosh(),
        Op::Abs => a.abs(),
        Op::Sigmoid => sigmoid(a),
        Op::Softplus => softplus(a),
        Op::Log1p => a.ln_1p(),
        Op::Expm1 => a.exp_m1(),
    }
}

/// Whether `op` reads operand `b`.
fn is_binary(op: Op) -> bool {
    matches!(op, Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow | Op::Min | Op::Max)
}

/// Whether `op` reads operand `a`.
fn is_unary_or_binary(op: Op) -> bool {
    !matches!(op, Op::Input | Op::Const)
}

#[inline(always)]
fn push(adj: &mut [f64], i: u32, g: f64, d: f64) {
    if d != 0.0 {
        adj[i as usize] += g * d;
    }
}

/// Reverse sweep: given every node's value, writes `d vals[out] / d input_k` into `grad`.
/// `adj` is scratch of the tape's length.
pub(crate) fn sweep(nodes: &[Node], vals: &[f64], out: usize, adj: &mut [f64], grad: &mut [f64]) {
    adj[..=out].fill(0.0);
    adj[out] = 1.0;
    for i in (0..=out).rev() {
        let g = adj[i];
        if g == 0.0 {
            continue;
        }
        let Node { op, a, b, c } = nodes[i];
        let v = vals[i];
        let va = vals[a as usize];
        let vb = vals[b as usize];
        match op {
            Op::Input | Op::Const => {}
            Op::Add => {
                push(adj, a, g, 1.0);
                push(adj, b, g, 1.0);
            }
            Op::Sub => {
                push(adj, a, g, 1.0);
                push(adj, b, g, -1.0);
            }
            Op::Mul => {
                push(adj, a, g, vb);
                push(adj, b, g, va);
            }
            Op::Div => {
                push(adj, a, g, 1.0 / vb);
                push(adj, b, g, -v / vb);
            }
            Op::Pow => {
                push(adj, a, g, vb * va.powf(vb - 1.0));
                // d/db a^b = a^b ln a exists only for a > 0.
                if va > 0.0 {
                    push(adj, b, g, v * va.ln());
                }
            }
            Op::Min => push(adj, if vb < va { b } else { a }, g, 1.0),
            Op::Max => push(adj, if vb > va { b } else { a }, g, 1.0),
            Op::AddC => push(adj, a, g, 1.0),
            Op::MulC => push(adj, a, g, c),
            Op::DivC => push(adj, a, g, 1.0 / c),
            Op::PowC => push(adj, a, g, c * va.powf(c - 1.0)),
            Op::PowI => push(adj, a, g, c * powi(va, c as i32 - 1)),
            Op::MinC => push(adj, a, g, if c < va { 0.0 } else { 1.0 }),
            Op::MaxC => push(adj, a, g, if c > va { 0.0 } else { 1.0 }),
            Op::CSub => push(adj, a, g, -1.0),
            Op::CDiv => push(adj, a, g, -v / va),
            Op::CPow => push(adj, a, g, v * c.ln()),
            Op::Neg => push(adj, a, g, -1.0),
            Op::Exp => push(adj, a, g, v),
            Op::Ln => push(adj, a, g, 1.0 / va),
            Op::Log10 => push(adj, a, g, 1.0 / (va * std::f64::consts::LN_10)),
            Op::Sqrt => push(adj, a, g, 0.5 / v),
            Op::Sin => push(adj, a, g, va.cos()),
            Op::Cos => push(adj, a, g, -va.sin()),
            Op::Tan => push(adj, a, g, 1.0 + v * v),
            Op::Tanh => push(adj, a, g, 1.0 - v * v),
            Op::Sinh => push(adj, a, g, va.cosh()),
            Op::Cosh => push(adj, a, g, va.sinh()),
            Op::Abs => push(
                adj,
                a,
                g,
                if va > 0.0 {
                    1.0
                } else if va < 0.0 {
                    -1.0
                } else {
                    0.0
                },
            ),
            Op::Sigmoid => push(adj, a, g, v * (1.0 - v)),
            Op::Softplus => push(adj, a, g, sigmoid(va)),
            Op::Log1p => push(adj, a, g, 1.0 / (1.0 + va)),
            Op::Expm1 => push(adj, a, g, v + 1.0),
        }
    }
    grad.copy_from_slice(&adj[..grad.len()]);
}

/// A traced `log_prob`: replayed natively for every point.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    nodes: Vec<Node>,
    dim: usize,
    out: usize,
}

impl Program {
    /// A program from a recorded tape whose first `dim` nodes are the inputs, keeping only the
    /// nodes that `out` depends on.
    pub fn new(nodes: &[Node], dim: usize, out: usize) -> Program {
        let mut live = vec![false; out + 1];
        live[..dim.min(out + 1)].fill(true);
        live[out] = true;
        for i in (dim..=out).rev() {
            let n = nodes[i];
            if live[i] && is_unary_or_binary(n.op) {
                live[n.a as usize] = true;
                if is_binary(n.op) {
                    live[n.b as usize] = true;
                }
            }
        }
        let mut new_index = vec![0u32; out + 1];
        let mut kept = Vec::with_capacity(out + 1);
        for i in 0..dim {
            new_index[i] = i as u32;
            kept.push(nodes[i]);
        }
        for i in dim..=out {
            if live[i] {
                let mut n = nodes[i];
                n.a = new_index[n.a as usize];
                n.b = new_index[n.b as usize];
                new_index[i] = kept.len() as u32;
                kept.push(n);
            }
        }
        let out = new_index[out] as usize;
        Program { nodes: kept, dim, out }
    }

    /// Number of nodes (scratch length for [`Program::value`] and [`Program::value_grad`]).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Fills `vals` with every node's value at `x` and returns the output.
    pub fn value(&self, x: &[f64], vals: &mut [f64]) -> f64 {
        vals[..self.dim].copy_from_slice(x);
        for i in self.dim..self.nodes.len() {
            let n = self.nodes[i];
            vals[i] = apply(n.op, vals[n.a as usize], vals[n.b as usize], n.c);
        }
        vals[self.out]
    }

    /// Value and gradient at `x`; `vals` and `adj` are scratch of length [`Program::len`].
    pub fn value_grad(&self, x: &[f64], grad: &mut [f64], vals: &mut [f64], adj: &mut [f64]) -> f64 {
        let v = self.value(x, vals);
        sweep(&self.nodes, vals, self.out, adj, grad);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: Op, a: u32, b: u32, c: f64) -> Node {
        Node { op, a, b, c }
    }

    #[test]
    fn dead_nodes_are_dropped_and_replay_matches_formula() {
        // y = exp(x0) * x1 + 2, plus an unused sin(x0).
        let nodes = [
            node(Op::Input, 0, 0, 0.0),
            node(Op::Input, 1, 0, 0.0),
            node(Op::Sin, 0, 0, 0.0),
            node(Op::Exp, 0, 0, 0.0),
            node(Op::Mul, 3, 1, 0.0),
            node(Op::AddC, 4, 0, 2.0),
        ];
        let p = Program::new(&nodes, 2, 5);
        assert_eq!(p.len(), 5);
        let (mut vals, mut adj, mut g) = (vec![0.0; 5], vec![0.0; 5], [0.0; 2]);
        let v = p.value_grad(&[0.3, -1.5], &mut g, &mut vals, &mut adj);
        assert_eq!(v, 0.3f64.exp() * -1.5 + 2.0);
        assert_eq!(g, [0.3f64.exp() * -1.5, 0.3f64.exp()]);
    }

    #[test]
    fn underflowed_log_sum_exp_gives_minus_infinity_and_no_nan_gradient() {
        // ln(exp(-x0^2 * 1e3) + exp(-x1^2 * 1e3)) at a point where both terms underflow.
        let nodes = [
            node(Op::Input, 0, 0, 0.0),
            node(Op::Input, 1, 0, 0.0),
            node(Op::PowI, 0, 0, 2.0),
            node(Op::MulC, 2, 0, -1e3),
            node(Op::Exp, 3, 0, 0.0),
            node(Op::PowI, 1, 0, 2.0),
            node(Op::MulC, 5, 0, -1e3),
            node(Op::Exp, 6, 0, 0.0),
            node(Op::Add, 4, 7, 0.0),
            node(Op::Ln, 8, 0, 0.0),
        ];
        let p = Program::new(&nodes, 2, 9);
        let (mut vals, mut adj, mut g) = (vec![0.0; p.len()], vec![0.0; p.len()], [0.0; 2]);
        let v = p.value_grad(&[40.0, -50.0], &mut g, &mut vals, &mut adj);
        assert_eq!(v, f64::NEG_INFINITY);
        assert!(g.iter().all(|d| !d.is_nan()), "{g:?}");
    }

    #[test]
    fn inlined_small_powers_equal_powi() {
        let mut r = crate::rng::stream(3, 0);
        let mut xs = [0.0; 200];
        crate::rng::fill_normal(&mut r, &mut xs);
        for x in xs.map(|v| v * 7.0) {
            for n in -1..=6 {
                assert_eq!(powi(x, n).to_bits(), x.powi(n).to_bits(), "{x}^{n}");
            }
        }
    }

    #[test]
    fn stable_sigmoid_and_softplus() {
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(800.0), 1.0);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(softplus(800.0), 800.0);
        assert_eq!(softplus(-800.0), 0.0);
    }
}
