//! The sample plugin loaded in-process through the host loader: every object crosses the C
//! boundary and must behave exactly like the same Rust object used directly.

use bootflow_core::ElementwiseAffine;
use bootflow_core::LayerContext;
use bootflow_core::rng::{self, child_seed};
use bootflow_core::{
    Batch, Bijection, ChainState, Cotangent, Direction, Error, Flow, Kernel, LogDensity, Registry, Target,
    TargetDensity, testing,
};
use bootflow_core::{RandomWalk, RandomWalkConfig};
use bootflow_tests::built;
use fixture_sample_plugin::Gaussian2d;
use serde_json::json;

fn plugin_registry() -> Registry {
    let path = built::library("fixture_sample_plugin");
    let plugin = bootflow_core::plugin::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!((plugin.name.as_str(), plugin.abi), ("sample", bootflow_core::plugin::abi::ABI_VERSION));
    let mut reg = Registry::with_builtins();
    plugin.register_into(&mut reg).unwrap();
    assert_eq!(reg.targets["gauss2d"].source, bootflow_core::Source::Plugin(path));
    reg
}

fn layer_ctx(dim: usize) -> LayerContext {
    LayerContext { dim, index: 0, seed: 1 }
}

fn plugin_affine(reg: &Registry, dim: usize, layers: usize) -> Vec<Box<dyn Bijection>> {
    reg.bijection("sample_affine", &layer_ctx(dim), &json!({ "layers": layers })).unwrap()
}

#[test]
fn affine_layer_passes_the_gradient_checks_through_the_boundary() {
    let reg = plugin_registry();
    let mut r = rng::stream(11, 0);
    let mut layer = plugin_affine(&reg, 3, 1).pop().unwrap();
    testing::randomise_params(layer.as_mut(), 0.5, &mut r).unwrap();
    let z = testing::random_batch(3, 6, &mut r);
    let report = testing::check_bijection(layer.as_mut(), &z, 1e-6, 1e-10).unwrap();
    assert!(report.forward_params > 0.0 || report.inverse_params > 0.0, "measured nothing: {report:?}");

    // Same parameters in-process: identical outputs.
    let p = layer.params();
    let local = ElementwiseAffine::with(p[..3].to_vec(), p[3..].to_vec());
    let (a, b) = (layer.forward(&z, false).unwrap(), local.forward(&z, false).unwrap());
    assert_eq!(a.out, b.out);
    assert_eq!(a.log_det, b.log_det);
}

#[test]
fn flow_of_plugin_layers_passes_check_flow() {
    let reg = plugin_registry();
    let mut r = rng::stream(12, 0);
    let mut layers = plugin_affine(&reg, 2, 2);
    assert_eq!(layers.len(), 2, "one entry expands to two layers");
    for l in &mut layers {
        testing::randomise_params(l.as_mut(), 0.4, &mut r).unwrap();
    }
    // Shards of 3 columns: layers are called from several threads at once.
    let mut flow = Flow::with_base(vec![0.2; 2], vec![1.3; 2], layers).unwrap().with_shard_size(3);
    let x = testing::random_batch(2, 8, &mut r);
    let w: Vec<f64> = (0..8).map(|i| 0.5 + i as f64).collect();
    let report = testing::check_flow(&mut flow, &x, &w, 1e-6).unwrap();
    assert!(report.grad_theta > 0.0, "measured nothing: {report:?}");
}

#[test]
fn tapes_are_only_accepted_by_the_layer_that_recorded_them() {
    let reg = plugin_registry();
    let layers = plugin_affine(&reg, 2, 2);
    let z = Batch::from_column_slice(2, 1, &[0.3, -0.1]);
    let pass = layers[0].forward(&z, true).unwrap();
    let tape = pass.tape.unwrap();
    let g = Batch::from_element(2, 1, 1.0);
    assert!(
        layers[1].vjp(Direction::Forward, &tape, Cotangent::new(&g, &[1.0], None)).is_err(),
        "another layer's tape"
    );
    assert!(
        layers[0].vjp(Direction::Inverse, &tape, Cotangent::new(&g, &[1.0], None)).is_err(),
        "a forward tape in the inverse VJP"
    );
    layers[0].vjp(Direction::Forward, &tape, Cotangent::new(&g, &[1.0], None)).unwrap();
}

#[test]
fn target_matches_the_in_process_object() {
    let reg = plugin_registry();
    let remote = reg.target("gauss2d", &json!({})).unwrap();
    let local = Gaussian2d::default();
    let mut r = rng::stream(13, 0);
    let x = testing::random_batch(2, 9, &mut r);

    assert_eq!((remote.dim(), remote.has_grad(), remote.has_sampler()), (2, true, true));
    assert_eq!(remote.log_z(), local.log_z());
    assert_eq!(remote.observable_names(), vec!["sum".to_string()]);
    assert_eq!(remote.known_means(), local.known_means());
    assert_eq!(remote.test_set(), local.test_set());

    let (mut a, mut b) = (vec![0.0; 9], vec![0.0; 9]);
    let (mut ga, mut gb) = (Batch::zeros(2, 9), Batch::zeros(2, 9));
    remote.log_prob_grad_batch(&x, &mut a, &mut ga).unwrap();
    local.log_prob_grad_batch(&x, &mut b, &mut gb).unwrap();
    assert_eq!((a.clone(), ga.clone()), (b, gb));
    let mut values = vec![0.0; 9];
    remote.log_prob_batch(&x, &mut values).unwrap();
    assert_eq!(values, a);

    // The gradient that crossed the boundary against central differences of values that did too.
    let x0 = x.column(0).iter().copied().collect::<Vec<_>>();
    let mut g = [0.0; 2];
    remote.log_prob_grad(&x0, &mut g).unwrap();
    let mut f = |v: &[f64]| remote.log_prob(v).unwrap();
    let fd = testing::fd_gradient(&mut f, &x0, &[0, 1], testing::FD_STEP);
    assert!(testing::rel_error(&g, &fd) < 1e-6, "{g:?} vs {fd:?}");

    let (mut obs_a, mut obs_b) = ([0.0], [0.0]);
    remote.observables(&x0, &mut obs_a).unwrap();
    local.observables(&x0, &mut obs_b).unwrap();
    assert_eq!(obs_a, obs_b);

    // Samples: the host hands the plugin `child_seed(rng)` and stream 0.
    let (mut r1, mut r2) = (rng::stream(14, 0), rng::stream(14, 0));
    let s_remote = remote.sample(5, &mut r1).unwrap();
    let s_local = local.sample(5, &mut rng::stream(child_seed(&mut r2), 0)).unwrap();
    assert_eq!(s_remote, s_local);
}

#[test]
fn config_errors_keep_their_kind() {
    let reg = plugin_registry();
    match reg.target("gauss2d", &json!({"bogus": 1})) {
        Err(Error::Config(m)) => assert!(m.contains("bogus"), "{m}"),
        other => panic!("expected a config error, got {:?}", other.err()),
    }
}

#[test]
fn kernel_runs_through_the_density_callback_like_the_in_process_kernel() {
    let reg = plugin_registry();
    let cfg = json!({"step_size": 0.8, "target_accept": 0.3});
    let mut remote = reg.kernel("sample_rwm", 2, &cfg).unwrap();
    let mut local = RandomWalk::new(RandomWalkConfig { step_size: 0.8, target_accept: 0.3 }).unwrap();
    let target = Gaussian2d::default();
    let density = TargetDensity(&target);
    let x0 = Batch::zeros(2, 16);
    let mut sa = ChainState::new(&density, x0.clone(), false).unwrap();
    let mut sb = ChainState::new(&density, x0, false).unwrap();
    let (mut r1, mut r2) = (rng::stream(15, 0), rng::stream(15, 0));
    remote.set_adapt(true);
    local.set_adapt(true);
    let mut accepted = 0;
    for _ in 0..20 {
        let a = remote.step(&density, &mut sa, &mut r1).unwrap();
        let b = local.step(&density, &mut sb, &mut rng::stream(child_seed(&mut r2), 0)).unwrap();
        assert_eq!(a.accept_prob, b.accept_prob);
        assert_eq!(a.accepted, b.accepted);
        accepted += a.accepted.iter().filter(|v| **v).count();
    }
    assert!(accepted > 0, "no move was ever accepted: the comparison would be vacuous");
    assert_eq!((&sa.x, &sa.log_p), (&sb.x, &sb.log_p));
    assert_eq!(remote.tuning(), local.tuning());
    assert_eq!(remote.state(), local.state());

    let mut copy = remote.boxed_clone().unwrap();
    assert_eq!(copy.state(), remote.state());
    copy.set_state(&[0.0, 3.0]).unwrap();
    assert_eq!(copy.state(), vec![0.0, 3.0]);
    assert!(matches!(copy.set_state(&[1.0]), Err(Error::Dim(_))));
}

/// A density that always fails, to see the host's error come back through the plugin.
struct Failing;
impl LogDensity for Failing {
    fn dim(&self) -> usize {
        2
    }
    fn eval(&self, _x: &Batch, _out: &mut [f64], _g: Option<&mut Batch>) -> bootflow_core::Result<()> {
        Err(Error::NonFinite("log-density is NaN at sample 0".into()))
    }
}

#[test]
fn host_density_errors_come_back_through_the_kernel() {
    let reg = plugin_registry();
    let mut k = reg.kernel("sample_rwm", 2, &json!(null)).unwrap();
    let mut state = ChainState { x: Batch::zeros(2, 3), log_p: vec![0.0; 3], grad: None };
    let before = state.x.clone();
    match k.step(&Failing, &mut state, &mut rng::stream(1, 0)) {
        Err(Error::NonFinite(m)) => assert!(m.contains("NaN"), "{m}"),
        other => panic!("expected the host's NonFinite error, got {:?}", other.err()),
    }
    assert_eq!(state.x, before, "a failed step leaves the chains untouched");
}

#[test]
fn a_panicking_plugin_returns_an_error_and_poisons_the_object() {
    let reg = plugin_registry();
    let t = reg.target("panics", &json!(null)).unwrap();
    let e = t.log_prob(&[0.0]).unwrap_err().to_string();
    assert!(e.contains("plugin sample") && e.contains("panicked") && e.contains("deliberate panic"), "{e}");
    assert!(e.contains("src/lib.rs"), "the location is part of the message: {e}");
    let again = t.log_prob(&[0.0]).unwrap_err().to_string();
    assert!(again.contains("unusable after an earlier panic"), "{again}");
    // Other objects of the same library are unaffected.
    let g = reg.target("gauss2d", &json!(null)).unwrap();
    assert!(g.log_prob(&[1.0, -2.0]).unwrap().abs() < 1e-15);
}

#[test]
fn library_stays_loaded_while_an_object_lives() {
    let reg = plugin_registry();
    let target = reg.target("gauss2d", &json!({})).unwrap();
    let layer = plugin_affine(&reg, 2, 1).pop().unwrap();
    let z = Batch::from_column_slice(2, 1, &[0.5, 0.25]);
    let tape = layer.forward(&z, true).unwrap().tape.unwrap();
    drop(reg);
    // No registry and no plugin handle left: only the objects keep the library open.
    assert_eq!(target.log_prob(&[1.0, -2.0]).unwrap(), 0.0);
    let g =
        layer.vjp(Direction::Forward, &tape, Cotangent::new(&Batch::from_element(2, 1, 1.0), &[0.0], None)).unwrap();
    assert_eq!(g, Batch::from_element(2, 1, 1.0), "identity layer");
    drop(layer);
    drop(tape);
    assert!(target.log_prob(&[0.0, 0.0]).unwrap() < 0.0);
}

#[test]
fn a_plugin_panic_prints_nothing() {
    // The plugin's own std writes straight to file descriptor 2, past the test harness's
    // capture, so run the panicking test in a child process and read its stderr.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["a_panicking_plugin_returns_an_error_and_poisons_the_object", "--exact", "--test-threads=1"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("1 passed"), "child run failed: {stdout} {stderr}");
    assert!(
        !stderr.contains("deliberate panic") && !stdout.contains("deliberate panic"),
        "panic output leaked: {stderr}"
    );
}
