//! Targets written as Rhai scripts, differentiated automatically.
//!
//! A script defines `fn log_prob(x)` over an array `x` and declares `const DIM = N;` at top level.
//! Every parameter is visible to the script as a constant of that name and overrides the
//! script's own declaration of it (so `const L = 4;` is a default); a parameter the script never
//! mentions as an identifier is an error (see the `lex` module).
//!
//! ```
//! use std::collections::BTreeMap;
//! use bootflow_core::{ScriptTarget, Target};
//! let src = "const DIM = 2; const S = 1.0; fn log_prob(x) { -(x[0] * x[0] + x[1] * x[1]) / (2.0 * S * S) }";
//! let params = BTreeMap::from([("S".to_string(), serde_json::json!(2.0))]);
//! let t = ScriptTarget::from_source("gauss.rhai", src, &params).unwrap();
//! let mut g = [0.0; 2];
//! let lp = t.log_prob_grad(&[1.0, -2.0], &mut g).unwrap();
//! assert_eq!((lp, g), (-5.0 / 8.0, [-0.25, 0.5]));
//! assert!(t.is_traced());
//! ```
//!
//! Gradients: `log_prob` is evaluated once on traced numbers (module `number`), which records the
//! computation as a flat list of operations (module `trace`); that list is then replayed natively for
//! every point (value, then a reverse sweep for the gradient), in parallel over fixed-size column
//! shards. A script whose control flow depends on `x` (a comparison of a traced value, or its
//! conversion to a plain number) cannot be replayed: this is detected while tracing, one note is
//! printed to stderr, [`ScriptTarget::fallback_reason`] says why, and every point is then
//! evaluated through the interpreter with the same traced numbers and swept on its own tape.
//! An optional `fn grad_log_prob(x)` (plain numbers in, an array of `DIM` numbers out) replaces
//! the automatic gradient. Scripts run sandboxed (module `sandbox`, limits re-exported here).

mod lex;
mod number;
#[cfg(test)]
mod register;
mod sandbox;
#[cfg(test)]
mod tests;
mod trace;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use rhai::{AST, Array, CallFnOptions, Dynamic, Engine, EvalAltResult, Scope};
use serde_json::Value;

use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::target::Target;

pub use sandbox::MAX_ARRAY;

use number::{Recorder, record_with};
use sandbox::{Constants, eval_error, parse_error};
use trace::Program;

/// Columns per parallel shard of a batch.
const SHARD: usize = 64;

/// How `log_prob` is evaluated.
enum Mode {
    /// Replay of the operation list traced once.
    Traced(Program),
    /// Per point through the interpreter; the reason tracing failed.
    PerPoint(String),
}

/// A target defined by a Rhai script.
pub struct ScriptTarget {
    file: String,
    engine: Engine,
    ast: AST,
    dim: usize,
    mode: Mode,
    has_grad_override: bool,
    /// `file:line:col` of the definitions of `log_prob` and `grad_log_prob`.
    log_prob_at: String,
    grad_at: String,
}

impl std::fmt::Debug for ScriptTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptTarget").field("file", &self.file).field("dim", &self.dim).finish_non_exhaustive()
    }
}

fn defines(ast: &AST, name: &str) -> bool {
    ast.iter_functions().any(|f| f.name == name && f.params.len() == 1)
}

impl ScriptTarget {
    /// Loads the script at `path`; errors name the file as given.
    pub fn from_file(path: &Path, params: &BTreeMap<String, Value>) -> Result<ScriptTarget> {
        let source = crate::run::input::read_text(path, "script", crate::run::input::TEXT_LIMIT)?;
        ScriptTarget::from_source(&path.display().to_string(), &source, params)
    }

    /// Compiles `source` (named `file` in errors), runs its top level, and traces `log_prob`.
    pub fn from_source(file: &str, source: &str, params: &BTreeMap<String, Value>) -> Result<ScriptTarget> {
        let idents = lex::identifiers(source);
        for name in params.keys() {
            if !idents.iter().any(|i| &i.name == name) {
                return Err(Error::Config(format!("unknown parameter '{name}': {file} never mentions it")));
            }
        }
        let params = params.iter().map(|(k, v)| Ok((k.clone(), sandbox::to_dynamic(k, v)?))).collect::<Result<_>>()?;
        let constants = Arc::new(Constants { params, globals: OnceLock::new() });
        let engine = sandbox::engine(constants.clone());
        let ast = engine.compile(source).map_err(|e| parse_error(file, &e))?;
        let def_at = |name: &str| {
            let (l, c) = lex::fn_definition(&idents, name).unwrap_or((1, 1));
            format!("{file}:{l}:{c}")
        };
        if !defines(&ast, "log_prob") {
            return Err(Error::Script(format!("{}: the script defines no `fn log_prob(x)`", def_at("log_prob"))));
        }

        let mut scope = Scope::new();
        sandbox::with_time_budget(|| engine.run_ast_with_scope(&mut scope, &ast)).map_err(|e| eval_error(file, e))?;
        let mut globals: BTreeMap<String, Dynamic> =
            scope.iter_raw().filter(|(_, constant, _)| *constant).map(|(n, _, v)| (n.to_string(), v.clone())).collect();
        globals.extend(constants.params.clone());
        let dim = script_dim(file, &idents, globals.get("DIM"))?;
        constants.globals.set(globals).map_err(|_| Error::Other("script constants set twice".into()))?;

        let mut target = ScriptTarget {
            file: file.to_string(),
            engine,
            has_grad_override: defines(&ast, "grad_log_prob"),
            ast,
            dim,
            mode: Mode::PerPoint(String::new()),
            log_prob_at: def_at("log_prob"),
            grad_at: def_at("grad_log_prob"),
        };
        target.mode = target.trace()?;
        if let Mode::PerPoint(reason) = &target.mode {
            eprintln!("note: {reason}; {file} falls back to per-point evaluation through the interpreter");
        }
        Ok(target)
    }

    /// Whether `log_prob` is replayed from a trace (false: per-point interpreter fallback).
    pub fn is_traced(&self) -> bool {
        matches!(self.mode, Mode::Traced(_))
    }

    /// Why tracing failed (`file:line:col` of the data-dependent operation and what it was).
    pub fn fallback_reason(&self) -> Option<&str> {
        match &self.mode {
            Mode::PerPoint(r) => Some(r),
            Mode::Traced(_) => None,
        }
    }

    /// Whether the script's own `grad_log_prob` supplies gradients.
    pub fn has_grad_override(&self) -> bool {
        self.has_grad_override
    }

    /// The same target evaluated per point through the interpreter even where tracing worked
    /// (to cross-check or time the traced replay).
    pub fn without_tracing(mut self) -> ScriptTarget {
        if self.is_traced() {
            self.mode = Mode::PerPoint("tracing switched off".into());
        }
        self
    }

    fn call(&self, name: &str, args: Array) -> std::result::Result<Dynamic, Box<EvalAltResult>> {
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        sandbox::with_time_budget(|| {
            self.engine.call_fn_with_options(options, &mut Scope::new(), &self.ast, name, (args,))
        })
    }

    /// Evaluates `log_prob` on traced numbers at `x`: the recorded tape and its output node.
    fn record(&self, x: &[f64], strict: bool) -> (std::result::Result<usize, Error>, Recorder) {
        let rec = Recorder::new(x, strict);
        let args = rec.inputs();
        let (result, mut rec) = record_with(rec, || self.call("log_prob", args));
        let out = match result {
            Ok(v) => rec.output(&v).ok_or_else(|| {
                Error::Script(format!("{}: log_prob returned a {}, expected a number", self.log_prob_at, v.type_name()))
            }),
            Err(e) => Err(eval_error(&self.file, e)),
        };
        (out, rec)
    }

    fn trace(&self) -> Result<Mode> {
        let (out, rec) = self.record(&vec![0.0; self.dim], true);
        match out {
            _ if rec.branched => {
                let reason = match out {
                    Err(Error::Script(m)) => m.replacen("Runtime error: ", "", 1),
                    _ => format!("{}: log_prob catches a data-dependent branch", self.log_prob_at),
                };
                Ok(Mode::PerPoint(reason))
            }
            Ok(out) => Ok(Mode::Traced(Program::new(&rec.nodes, self.dim, out))),
            Err(e) => Err(e),
        }
    }

    /// Value (and gradient into `grad`, if given) at one point, with reusable scratch.
    fn eval_point(&self, x: &[f64], grad: Option<&mut [f64]>, scratch: &mut Scratch) -> Result<f64> {
        check_dim("script target input", x.len(), self.dim)?;
        match grad {
            None => self.value(x, scratch),
            Some(g) if self.has_grad_override => {
                let v = self.value(x, scratch)?;
                self.grad_override(x, g)?;
                Ok(v)
            }
            Some(g) => self.value_and_ad_grad(x, g, scratch),
        }
    }

    fn value(&self, x: &[f64], scratch: &mut Scratch) -> Result<f64> {
        match &self.mode {
            Mode::Traced(p) => {
                scratch.resize(p.len());
                Ok(p.value(x, &mut scratch.vals))
            }
            Mode::PerPoint(_) => {
                let (out, rec) = self.record(x, false);
                Ok(rec.vals[out?])
            }
        }
    }

    fn value_and_ad_grad(&self, x: &[f64], grad: &mut [f64], scratch: &mut Scratch) -> Result<f64> {
        match &self.mode {
            Mode::Traced(p) => {
                scratch.resize(p.len());
                Ok(p.value_grad(x, grad, &mut scratch.vals, &mut scratch.adj))
            }
            Mode::PerPoint(_) => {
                let (out, rec) = self.record(x, false);
                let out = out?;
                scratch.resize(rec.nodes.len());
                trace::sweep(&rec.nodes, &rec.vals, out, &mut scratch.adj, grad);
                Ok(rec.vals[out])
            }
        }
    }

    /// The script's `grad_log_prob(x)` into `grad`.
    fn grad_override(&self, x: &[f64], grad: &mut [f64]) -> Result<()> {
        let args: Array = x.iter().map(|&v| Dynamic::from_float(v)).collect();
        let result = self.call("grad_log_prob", args).map_err(|e| eval_error(&self.file, e))?;
        let bad = |what: String| Error::Script(format!("{}: grad_log_prob returned {what}", self.grad_at));
        let items = result.into_array().map_err(|t| bad(format!("a {t}, expected an array")))?;
        if items.len() != self.dim {
            return Err(bad(format!("{} values, expected DIM = {}", items.len(), self.dim)));
        }
        for (g, item) in grad.iter_mut().zip(items) {
            *g = item
                .as_float()
                .or_else(|_| item.as_int().map(|i| i as f64))
                .map_err(|t| bad(format!("an array holding a {t}, expected numbers")))?;
        }
        Ok(())
    }

    /// Runs `eval_point` over the columns of `x` in parallel shards.
    fn eval_batch(&self, x: &Batch, out: &mut [f64], grad: Option<&mut Batch>) -> Result<()> {
        let d = self.dim;
        check_dim("sample dimension", x.nrows(), d)?;
        check_dim("output length", out.len(), x.ncols())?;
        let xs = x.as_slice().par_chunks(d * SHARD).zip(out.par_chunks_mut(SHARD));
        let results: Vec<Result<()>> = match grad {
            Some(g) => {
                check_dim("gradient rows", g.nrows(), d)?;
                check_dim("gradient columns", g.ncols(), x.ncols())?;
                xs.zip(g.as_mut_slice().par_chunks_mut(d * SHARD))
                    .map(|((xc, oc), gc)| {
                        let mut scratch = Scratch::default();
                        for ((o, xj), gj) in oc.iter_mut().zip(xc.chunks(d)).zip(gc.chunks_mut(d)) {
                            *o = self.eval_point(xj, Some(gj), &mut scratch)?;
                        }
                        Ok(())
                    })
                    .collect()
            }
            None => xs
                .map(|(xc, oc)| {
                    let mut scratch = Scratch::default();
                    for (o, xj) in oc.iter_mut().zip(xc.chunks(d)) {
                        *o = self.eval_point(xj, None, &mut scratch)?;
                    }
                    Ok(())
                })
                .collect(),
        };
        results.into_iter().collect()
    }
}

/// Scratch buffers of one thread: node values and adjoints.
#[derive(Default)]
struct Scratch {
    vals: Vec<f64>,
    adj: Vec<f64>,
}

impl Scratch {
    fn resize(&mut self, n: usize) {
        if self.vals.len() < n {
            self.vals.resize(n, 0.0);
            self.adj.resize(n, 0.0);
        }
    }
}

thread_local! {
    /// Scratch of single-point calls, so that they do not allocate.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// `DIM` must be a positive integer.
fn script_dim(file: &str, idents: &[lex::Ident], dim: Option<&Dynamic>) -> Result<usize> {
    let pos = idents.iter().find(|i| i.name == "DIM").map_or((1, 1), |i| (i.line, i.col));
    let here = format!("{file}:{}:{}", pos.0, pos.1);
    let dim = dim.ok_or_else(|| Error::Script(format!("{here}: the script declares no `const DIM = N;`")))?;
    match dim.as_int() {
        Ok(n) if n >= 1 && (n as usize) <= MAX_ARRAY => Ok(n as usize),
        _ => Err(Error::Script(format!("{here}: DIM must be an integer from 1 to {MAX_ARRAY}, got {dim}"))),
    }
}

impl Target for ScriptTarget {
    fn dim(&self) -> usize {
        self.dim
    }

    fn log_prob(&self, x: &[f64]) -> Result<f64> {
        SCRATCH.with_borrow_mut(|s| self.eval_point(x, None, s))
    }

    fn has_grad(&self) -> bool {
        true
    }

    fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        check_dim("gradient length", grad.len(), self.dim)?;
        SCRATCH.with_borrow_mut(|s| self.eval_point(x, Some(grad), s))
    }

    fn log_prob_batch(&self, x: &Batch, out: &mut [f64]) -> Result<()> {
        self.eval_batch(x, out, None)
    }

    fn log_prob_grad_batch(&self, x: &Batch, out: &mut [f64], grad: &mut Batch) -> Result<()> {
        self.eval_batch(x, out, Some(grad))
    }
}
