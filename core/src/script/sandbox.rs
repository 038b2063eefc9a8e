//! The Rhai engine scripts run in: resource limits, no modules or `eval`, parameters as
//! constants, and script errors turned into `file:line:col: message`.
//!
//! A script is untrusted input. Rhai's standard library has no file or network access; on top
//! of that the module resolver is removed and `import`/`eval` are disabled, `print` and `debug`
//! go to stderr (stdout may carry results), and every evaluation is bounded in operations,
//! call depth, expression depth and string/array/map size.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rhai::module_resolvers::DummyModuleResolver;
use rhai::{Dynamic, Engine, EvalAltResult, OptimizationLevel, ParseError, Position};
use serde_json::Value;

use crate::error::{Error, Result};

use super::number;

/// Operations one evaluation may perform: an endless loop stops after about 0.3 s in an
/// optimised build, while a `log_prob` of a hundred thousand terms still fits.
pub const MAX_OPERATIONS: u64 = 5_000_000;
/// Nested function calls (recursion depth).
pub const MAX_CALL_LEVELS: usize = 32;
/// Expression nesting at top level and inside functions.
pub const MAX_EXPR_DEPTH: (usize, usize) = (64, 64);
/// Characters in a string.
pub const MAX_STRING: usize = 4096;
/// Elements in an array (the argument `x` is one).
pub const MAX_ARRAY: usize = 1 << 20;
/// Entries in an object map.
pub const MAX_MAP: usize = 1024;
/// Wall-clock seconds one evaluation (the top level, or one call of `log_prob`) may take. The
/// operation count alone does not bound time: an array grown by `push` in a loop copies itself
/// on every push, so a million operations can take minutes.
pub const MAX_SECONDS: f64 = 2.0;
/// Operations between two looks at the clock.
const CLOCK_EVERY: u64 = 256;

thread_local! {
    /// When the evaluation running on this thread must stop.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` (one evaluation) with the [`MAX_SECONDS`] budget on this thread.
pub(crate) fn with_time_budget<T>(f: impl FnOnce() -> T) -> T {
    let before = DEADLINE.with(|d| d.replace(Some(Instant::now() + Duration::from_secs_f64(MAX_SECONDS))));
    let out = f();
    DEADLINE.with(|d| d.set(before));
    out
}

fn past_deadline() -> bool {
    DEADLINE.with(|d| d.get().is_some_and(|t| Instant::now() > t))
}

/// Names the script sees as constants.
///
/// While the top level runs (it computes `DIM` and other constants), a parameter overrides
/// every read of its name, including the script's own `const NAME = default;`. Afterwards the
/// resolved top-level constants, with parameters taking precedence, are visible by name inside
/// every function (Rhai functions cannot otherwise see top-level constants), unless the function
/// declares a local of the same name.
pub(crate) struct Constants {
    pub params: BTreeMap<String, Dynamic>,
    pub globals: OnceLock<BTreeMap<String, Dynamic>>,
}

/// A sandboxed engine with the traced number type registered and `constants` visible.
pub(crate) fn engine(constants: Arc<Constants>) -> Engine {
    let mut e = Engine::new();
    e.set_module_resolver(DummyModuleResolver::new());
    e.disable_symbol("import");
    e.disable_symbol("export");
    e.disable_symbol("eval");
    e.set_max_modules(0);
    e.set_max_operations(MAX_OPERATIONS);
    e.set_max_call_levels(MAX_CALL_LEVELS);
    e.set_max_expr_depths(MAX_EXPR_DEPTH.0, MAX_EXPR_DEPTH.1);
    e.set_max_string_size(MAX_STRING);
    e.set_max_array_size(MAX_ARRAY);
    e.set_max_map_size(MAX_MAP);
    e.on_progress(|ops| (ops.is_multiple_of(CLOCK_EVERY) && past_deadline()).then(|| Dynamic::from("time budget")));
    // Constant folding would bake a script's default constants into expressions before a
    // parameter could override them.
    e.set_optimization_level(OptimizationLevel::None);
    e.on_print(|s| eprintln!("{s}"));
    e.on_debug(|s, _, pos| eprintln!("[{pos}] {s}"));
    number::register(&mut e);
    #[allow(deprecated)] // `on_var` is marked volatile, not deprecated.
    e.on_var(move |name, index, _| {
        Ok(match constants.globals.get() {
            None => constants.params.get(name).cloned(),
            Some(globals) if index == 0 => globals.get(name).cloned(),
            Some(_) => None,
        })
    });
    e
}

/// A parameter value as a Rhai value: integers stay integers, other numbers are floats, arrays
/// and objects convert element-wise.
pub(crate) fn to_dynamic(name: &str, v: &Value) -> Result<Dynamic> {
    Ok(match v {
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(items) => {
            Dynamic::from_array(items.iter().map(|x| to_dynamic(name, x)).collect::<Result<Vec<_>>>()?)
        }
        Value::Object(map) => {
            let mut m = rhai::Map::new();
            for (k, x) in map {
                m.insert(k.as_str().into(), to_dynamic(name, x)?);
            }
            Dynamic::from_map(m)
        }
        Value::Null => return Err(Error::Config(format!("script parameter '{name}' is null"))),
    })
}

/// `file:line:col` of a Rhai position (`1:1` where Rhai gives none).
pub(crate) fn at(file: &str, pos: Position) -> String {
    format!("{file}:{}:{}", pos.line().unwrap_or(1), pos.position().unwrap_or(1))
}

/// A script error at the innermost position Rhai reports (the failing expression, not the call
/// of `log_prob`).
pub(crate) fn eval_error(file: &str, mut err: Box<EvalAltResult>) -> Error {
    let mut pos = err.position();
    let mut function = None;
    while let EvalAltResult::ErrorInFunctionCall(name, _, inner, _) = *err {
        function = Some(name);
        err = inner;
        if !err.position().is_none() {
            pos = err.position();
        }
    }
    err.clear_position();
    let what = match *err {
        EvalAltResult::ErrorTerminated(..) => format!(
            "ran past its time budget of {MAX_SECONDS} s (an endless loop, or an array grown element by element?)"
        ),
        _ => err.to_string(),
    };
    // Limits hit inside a function carry no position of their own: name the function instead.
    match (pos.is_none(), function) {
        (true, Some(f)) => Error::Script(format!("{file}: in fn {f}: {what}")),
        _ => Error::Script(format!("{}: {what}", at(file, pos))),
    }
}

/// A syntax error with its position.
pub(crate) fn parse_error(file: &str, err: &ParseError) -> Error {
    Error::Script(format!("{}: syntax error: {}", at(file, err.position()), err.err_type()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine_with(params: &[(&str, Dynamic)]) -> (Engine, Arc<Constants>) {
        let params = params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let c = Arc::new(Constants { params, globals: OnceLock::new() });
        (engine(c.clone()), c)
    }

    #[test]
    fn parameters_override_top_level_defaults_and_reach_functions() {
        let (e, c) = engine_with(&[("L", Dynamic::from_int(8))]);
        let ast = e
            .compile("const L = 4; const DIM = L * L; const s = 5.0; fn f(x) { let s = 1.0; s + x + DIM + L }")
            .unwrap();
        let mut scope = rhai::Scope::new();
        e.run_ast_with_scope(&mut scope, &ast).unwrap();
        let mut globals: BTreeMap<String, Dynamic> =
            scope.iter_raw().filter(|(_, constant, _)| *constant).map(|(n, _, v)| (n.to_string(), v.clone())).collect();
        globals.extend(c.params.clone());
        c.globals.set(globals).unwrap();
        assert_eq!(c.globals.get().unwrap()["DIM"].as_int().unwrap(), 64);
        let v: f64 = e.call_fn(&mut rhai::Scope::new(), &ast, "f", (1.0,)).unwrap();
        // The local `s` wins over the top-level constant `s`; L and DIM come from the parameter.
        assert_eq!(v, 1.0 + 1.0 + 64.0 + 8.0);
    }

    #[test]
    fn modules_and_eval_are_unavailable() {
        let (e, _) = engine_with(&[]);
        assert!(e.compile("import \"std\" as s;").is_err());
        assert!(e.compile("eval(\"1\")").is_err());
    }

    #[test]
    fn errors_carry_file_line_and_column() {
        let (e, _) = engine_with(&[]);
        let err = e.compile("let a = ;").unwrap_err();
        let msg = parse_error("t.rhai", &err).to_string();
        assert!(msg.starts_with("t.rhai:1:9: syntax error"), "{msg}");
        let ast = e.compile("fn f(x) {\n  nope(x)\n}").unwrap();
        let err = e.call_fn::<Dynamic>(&mut rhai::Scope::new(), &ast, "f", (1.0,)).unwrap_err();
        let msg = eval_error("t.rhai", err).to_string();
        assert!(msg.starts_with("t.rhai:2:3: Function not found: nope"), "{msg}");
    }
}
