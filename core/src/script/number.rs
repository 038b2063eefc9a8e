//! The differentiable number type scripts compute with, and its registration in Rhai.
//!
//! A [`Number`] is a value plus the index of the tape node that produced it. Every operator and
//! math function on it appends one node to the tape of the current thread (see [`record_with`]),
//! so evaluating `log_prob` once yields the whole computation as a flat list.
//!
//! In strict (tracing) mode a comparison of a traced number, or its conversion to a plain number,
//! marks the recording as data-dependent and stops it: the list would only be valid on one side
//! of the branch. In per-point mode the same calls simply use the value.
//!
//! Naming follows Rhai's own floats: `ln` is the natural logarithm and `log` is base 10.

use std::cell::RefCell;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FLOAT, INT};

use super::trace::{Node, Op, apply, sigmoid, softplus};

/// A traced number: its value and the tape node holding it.
#[derive(Clone, Copy, Debug)]
pub struct Number {
    id: u32,
    value: f64,
}

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Longest tape one evaluation may record (bounds memory: 24 MiB of nodes).
pub(crate) const MAX_NODES: usize = 1 << 20;

/// The tape being recorded on this thread.
pub(crate) struct Recorder {
    pub nodes: Vec<Node>,
    pub vals: Vec<f64>,
    strict: bool,
    /// Set when a strict recording met a data-dependent operation.
    pub branched: bool,
}

thread_local! {
    static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

impl Recorder {
    /// A tape whose first nodes are the inputs `x`.
    pub fn new(x: &[f64], strict: bool) -> Recorder {
        let nodes = (0..x.len()).map(|i| Node { op: Op::Input, a: 0, b: 0, c: i as f64 }).collect();
        Recorder { nodes, vals: x.to_vec(), strict, branched: false }
    }

    /// The script's array argument: one traced number per input.
    pub fn inputs(&self) -> Array {
        self.vals.iter().enumerate().map(|(i, &v)| Dynamic::from(Number { id: i as u32, value: v })).collect()
    }

    /// Index of the node holding a script result (a traced number, or a plain number appended
    /// as a constant node); `None` for anything else.
    pub fn output(&mut self, result: &Dynamic) -> Option<usize> {
        if let Some(n) = result.clone().try_cast::<Number>() {
            return Some(n.id as usize);
        }
        let c = result.as_float().ok().or_else(|| result.as_int().ok().map(|i| i as f64))?;
        self.nodes.push(Node { op: Op::Const, a: 0, b: 0, c });
        self.vals.push(c);
        Some(self.nodes.len() - 1)
    }
}

/// Runs `f` with `rec` as this thread's tape and returns the tape afterwards.
pub(crate) fn record_with<R>(rec: Recorder, f: impl FnOnce() -> R) -> (R, Recorder) {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            RECORDER.with_borrow_mut(|r| *r = None);
        }
    }
    RECORDER.with_borrow_mut(|r| *r = Some(rec));
    let reset = Reset;
    let out = f();
    let rec = RECORDER.with_borrow_mut(|r| r.take());
    drop(reset);
    (out, rec.expect("recorder installed above"))
}

fn push(op: Op, a: Number, b: Number, c: f64) -> Res<Number> {
    let value = apply(op, a.value, b.value, c);
    RECORDER.with_borrow_mut(|r| {
        let r = r.as_mut().ok_or("a traced number was used outside an evaluation of log_prob")?;
        if r.nodes.len() >= MAX_NODES {
            return Err(format!("log_prob records more than {MAX_NODES} operations").into());
        }
        r.nodes.push(Node { op, a: a.id, b: b.id, c });
        r.vals.push(value);
        Ok(Number { id: (r.nodes.len() - 1) as u32, value })
    })
}

/// A data-dependent use of a traced value: allowed per point, stops a strict recording.
fn data_dependent(what: &str) -> Res<()> {
    RECORDER.with_borrow_mut(|r| match r {
        Some(r) if r.strict => {
            r.branched = true;
            Err(format!("{what} of a traced number depends on the data").into())
        }
        _ => Ok(()),
    })
}

fn unary(op: Op, a: Number) -> Res<Number> {
    push(op, a, a, 0.0)
}

fn with_const(op: Op, a: Number, c: f64) -> Res<Number> {
    push(op, a, a, c)
}

/// How a binary operator records each combination of traced and plain operands.
struct Binary {
    name: &'static str,
    both: Op,
    /// `traced op float` and `traced op int` (the constant possibly transformed).
    right: fn(f64) -> (Op, f64),
    right_int: fn(f64) -> (Op, f64),
    /// `constant op traced`.
    left: fn(f64) -> (Op, f64),
}

fn register_binary(engine: &mut Engine, b: Binary) {
    let (both, right, right_int, left) = (b.both, b.right, b.right_int, b.left);
    engine.register_fn(b.name, move |a: Number, b: Number| push(both, a, b, 0.0));
    engine.register_fn(b.name, move |a: Number, c: FLOAT| {
        let (op, c) = right(c);
        with_const(op, a, c)
    });
    engine.register_fn(b.name, move |a: Number, c: INT| {
        let (op, c) = right_int(c as f64);
        with_const(op, a, c)
    });
    engine.register_fn(b.name, move |c: FLOAT, a: Number| {
        let (op, c) = left(c);
        with_const(op, a, c)
    });
    engine.register_fn(b.name, move |c: INT, a: Number| {
        let (op, c) = left(c as f64);
        with_const(op, a, c)
    });
}

fn binaries() -> Vec<Binary> {
    let pow = |c: f64| (Op::PowC, c);
    let pow_int = |c: f64| (Op::PowI, c);
    let cpow = |c: f64| (Op::CPow, c);
    let add = |c: f64| (Op::AddC, c);
    let mul = |c: f64| (Op::MulC, c);
    let sub = |c: f64| (Op::AddC, -c);
    let min = |c: f64| (Op::MinC, c);
    let max = |c: f64| (Op::MaxC, c);
    vec![
        Binary { name: "+", both: Op::Add, right: add, right_int: add, left: add },
        Binary { name: "-", both: Op::Sub, right: sub, right_int: sub, left: |c| (Op::CSub, c) },
        Binary { name: "*", both: Op::Mul, right: mul, right_int: mul, left: mul },
        Binary {
            name: "/",
            both: Op::Div,
            right: |c| (Op::DivC, c),
            right_int: |c| (Op::DivC, c),
            left: |c| (Op::CDiv, c),
        },
        Binary { name: "**", both: Op::Pow, right: pow, right_int: pow_int, left: cpow },
        Binary { name: "pow", both: Op::Pow, right: pow, right_int: pow_int, left: cpow },
        Binary { name: "min", both: Op::Min, right: min, right_int: min, left: min },
        Binary { name: "max", both: Op::Max, right: max, right_int: max, left: max },
    ]
}

const UNARY: [(&str, Op); 15] = [
    ("exp", Op::Exp),
    ("ln", Op::Ln),
    ("log", Op::Log10),
    ("sqrt", Op::Sqrt),
    ("sin", Op::Sin),
    ("cos", Op::Cos),
    ("tan", Op::Tan),
    ("tanh", Op::Tanh),
    ("sinh", Op::Sinh),
    ("cosh", Op::Cosh),
    ("abs", Op::Abs),
    ("sigmoid", Op::Sigmoid),
    ("softplus", Op::Softplus),
    ("log1p", Op::Log1p),
    ("expm1", Op::Expm1),
];

fn register_comparisons(engine: &mut Engine) {
    type Cmp = fn(f64, f64) -> bool;
    let ops: [(&str, Cmp); 6] = [
        ("==", |a, b| a == b),
        ("!=", |a, b| a != b),
        ("<", |a, b| a < b),
        ("<=", |a, b| a <= b),
        (">", |a, b| a > b),
        (">=", |a, b| a >= b),
    ];
    for (name, f) in ops {
        let check = move |a: f64, b: f64| data_dependent("a comparison").map(|_| f(a, b));
        engine.register_fn(name, move |a: Number, b: Number| check(a.value, b.value));
        engine.register_fn(name, move |a: Number, b: FLOAT| check(a.value, b));
        engine.register_fn(name, move |a: Number, b: INT| check(a.value, b as f64));
        engine.register_fn(name, move |a: FLOAT, b: Number| check(a, b.value));
        engine.register_fn(name, move |a: INT, b: Number| check(a as f64, b.value));
    }
}

/// `sum` of an array of traced and plain numbers.
fn sum(items: Array) -> Res<Dynamic> {
    let mut plain = 0.0;
    let mut traced: Option<Number> = None;
    for item in items {
        if let Some(n) = item.clone().try_cast::<Number>() {
            traced = Some(match traced {
                Some(t) => push(Op::Add, t, n, 0.0)?,
                None => n,
            });
        } else if let Ok(f) = item.as_float() {
            plain += f;
        } else if let Ok(i) = item.as_int() {
            plain += i as f64;
        } else {
            return Err(format!("sum: cannot add a value of type {}", item.type_name()).into());
        }
    }
    Ok(match traced {
        Some(t) if plain != 0.0 => Dynamic::from(with_const(Op::AddC, t, plain)?),
        Some(t) => Dynamic::from(t),
        None => Dynamic::from_float(plain),
    })
}

/// Registers [`Number`] with its operators and functions, plus the plain-number versions of
/// the functions Rhai lacks, so scripts behave the same on traced and plain numbers.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Number>("number");
    for b in binaries() {
        register_binary(engine, b);
    }
    engine.register_fn("-", |a: Number| unary(Op::Neg, a));
    engine.register_fn("+", |a: Number| a);
    for (name, op) in UNARY {
        engine.register_fn(name, move |a: Number| unary(op, a));
    }
    register_comparisons(engine);
    engine.register_fn("to_float", |a: Number| data_dependent("conversion").map(|_| a.value));
    engine.register_fn("to_int", |a: Number| data_dependent("conversion").map(|_| a.value as INT));
    engine.register_fn("sum", sum);

    engine.register_fn("pow", |a: FLOAT, b: FLOAT| a.powf(b));
    engine.register_fn("pow", |a: FLOAT, b: INT| a.powi(b as i32));
    engine.register_fn("pow", |a: INT, b: FLOAT| (a as f64).powf(b));
    engine.register_fn("sigmoid", sigmoid);
    engine.register_fn("softplus", softplus);
    engine.register_fn("log1p", |a: FLOAT| a.ln_1p());
    engine.register_fn("expm1", |a: FLOAT| a.exp_m1());
}
