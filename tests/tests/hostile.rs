//! Hostile input against the real release binary: broken and out-of-range configs, `--set`
//! values, Rhai scripts, point files, plugin directories, checkpoints, output and resume
//! directories, and command-line flags. Every case must exit 2 with exactly one stderr line that
//! names what is wrong and where, never panic or die by a signal, finish within 10 s under a
//! 4 GB address-space limit, and leave the prepared run and sample directories untouched. All
//! failing cases are reported together. A new case is one line of `CASES`.
#![cfg(unix)]

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bootflow_tests::built;
use serde_json::{Value, json};

/// Address-space limit of every case, in KiB (`ulimit -v`): about 3.8 GiB, far above what the
/// tiny fixtures need (the control runs in `prepare`, train, FAB train, sample, run, density and
/// estimate, pass under it) and below the machine's memory: an input that makes bootflow ask for
/// more fails an allocation at once instead of swapping.
const MEMORY_LIMIT_KIB: u64 = 4_000_000;
/// Longest a case may take.
const CASE_SECONDS: f64 = 10.0;
/// A case still running after this long is killed (and fails).
const KILL_AFTER: Duration = Duration::from_secs(11);
/// Worker threads for the cases that touch no shared directory.
const WORKERS: usize = 3;

/// One hostile command line: `args` (with `{placeholder}`s for the fixture files), and the
/// substrings that its one stderr line must all contain (placeholders expanded too).
struct Case {
    name: &'static str,
    args: &'static [&'static str],
    expect: &'static [&'static str],
}

const fn c(name: &'static str, args: &'static [&'static str], expect: &'static [&'static str]) -> Case {
    Case { name, args, expect }
}

// Placeholders: {dir} the fixture root; {out} a fresh directory per case; {cfg} a tiny reverse-KL
// train config, {fab} a tiny FAB (HMC kernel, buffer) config, {fab_rwm} the same with an RWM
// kernel, {runcfg} a tiny `bootflow run` config; {run} a finished train run, {smp} a finished
// sample directory, {full} a finished `bootflow run` directory (these three are snapshotted);
// {points} a good points file, {good} a good Rhai script; {c:NAME} config, {s:NAME} script,
// {p:NAME} points and {k:NAME} checkpoint-directory variants (see `prepare`); {d:NAME} plugin or
// output directories; {absent} a path that does not exist.
#[rustfmt::skip]
const CASES: &[Case] = &[
    // Config files: missing, unreadable, not TOML, missing sections, unknown keys, wrong types.
    c("cfg_missing_file", &["train", "{absent}", "--out", "{out}"], &["{absent}"]),
    c("cfg_is_a_directory", &["train", "{d:plugempty}", "--out", "{out}"], &["{d:plugempty}"]),
    c("cfg_bad_toml", &["train", "{c:badtoml}", "--out", "{out}"], &["{c:badtoml}", "line 2"]),
    c("cfg_duplicate_key", &["train", "{c:dup}", "--out", "{out}"], &["{c:dup}", "duplicate key"]),
    c("cfg_empty_file", &["train", "{c:empty}", "--out", "{out}"], &["{c:empty}", "target"]),
    c("cfg_not_utf8", &["train", "{c:binary}", "--out", "{out}"], &["{c:binary}", "UTF-8"]),
    c("cfg_no_target_section", &["train", "{c:no_target}", "--out", "{out}"], &["{c:no_target}", "`target`"]),
    c("cfg_no_flow_section", &["train", "{c:no_flow}", "--out", "{out}"], &["{c:no_flow}", "`flow`"]),
    c("cfg_no_objective_section", &["train", "{c:no_objective}", "--out", "{out}"], &["{c:no_objective}", "`objective`"]),
    c("cfg_target_without_name", &["train", "{c:target_no_name}", "--out", "{out}"], &["target", "`name`"]),
    c("cfg_unknown_top_level_key", &["train", "{c:unknown_top}", "--out", "{out}"], &["{c:unknown_top}", "bogus"]),
    c("cfg_unknown_train_key", &["train", "{c:unknown_train}", "--out", "{out}"], &["{c:unknown_train}", "train.log_evry"]),
    c("cfg_train_array_of_tables", &["train", "{c:train_array}", "--out", "{out}"], &["{c:train_array}", "train"]),
    c("cfg_evaluate_table_in_train_config", &["train", "{runcfg}", "--out", "{out}"], &["{runcfg}", "evaluate"]),
    c("cfg_file_lr_nan", &["train", "{c:lr_nan}", "--out", "{out}"], &["{c:lr_nan}", "train.lr"]),
    c("cfg_file_lr_neg_inf", &["train", "{c:lr_neginf}", "--out", "{out}"], &["{c:lr_neginf}", "train.lr"]),
    c("cfg_file_lr_string", &["train", "{c:lr_string}", "--out", "{out}"], &["{c:lr_string}", "train.lr"]),
    c("cfg_file_lr_negative", &["train", "{c:lr_negative}", "--out", "{out}"], &["{c:lr_negative}", "train.lr"]),
    c("cfg_file_steps_negative", &["train", "{c:steps_negative}", "--out", "{out}"], &["{c:steps_negative}", "train.steps"]),
    c("cfg_file_batch_string", &["train", "{c:batch_string}", "--out", "{out}"], &["objective", "batch"]),
    c("cfg_file_batch_negative", &["train", "{c:batch_negative}", "--out", "{out}"], &["objective", "batch"]),
    c("cfg_file_target_dim_nan", &["train", "{c:dim_nan}", "--out", "{out}"], &["{c:dim_nan}", "target", "dim"]),
    c("cfg_file_layers_empty", &["train", "{c:layers_empty}", "--out", "{out}"], &["{c:layers_empty}", "flow.layers"]),
    c("cfg_file_second_layer_unknown_type", &["train", "{c:layer_unknown}", "--out", "{out}"], &["flow.layers[1]", "nope"]),
    c("cfg_file_layer_without_type", &["train", "{c:layer_no_type}", "--out", "{out}"], &["flow.layers[1]", "type"]),
    c("cfg_file_unknown_target", &["train", "{c:target_unknown}", "--out", "{out}"], &["'nope'"]),
    c("cfg_file_unknown_objective", &["train", "{c:objective_unknown}", "--out", "{out}"], &["objective 'nope'"]),
    // --set syntax and values.
    c("set_without_equals", &["train", "{cfg}", "--out", "{out}", "--set", "train.lr"], &["--set train.lr"]),
    c("set_without_value_argument", &["train", "{cfg}", "--out", "{out}", "--set"], &["--set"]),
    c("set_empty_key", &["train", "{cfg}", "--out", "{out}", "--set", "=3"], &["--set =3"]),
    c("set_empty_value", &["train", "{cfg}", "--out", "{out}", "--set", "train.lr="], &["--set train.lr="]),
    c("set_not_toml", &["train", "{cfg}", "--out", "{out}", "--set", "train.lr=1e-3x"], &["--set train.lr=1e-3x"]),
    c("set_unclosed_array", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=["], &["--set flow.layers=["]),
    c("set_lr_nan", &["train", "{cfg}", "--out", "{out}", "--set", "train.lr=nan"], &["--set train.lr=nan"]),
    c("set_lr_inf", &["train", "{cfg}", "--out", "{out}", "--set", "train.lr=inf"], &["--set train.lr=inf"]),
    c("set_lr_neg_inf", &["train", "{cfg}", "--out", "{out}", "--set", "train.lr=-inf"], &["--set train.lr=-inf"]),
    c("set_nan_inside_array", &["train", "{cfg}", "--out", "{out}", "--set", "target.std=[1.0, nan]"], &["--set target.std=[1.0, nan]"]),
    c("set_unknown_train_key", &["train", "{cfg}", "--out", "{out}", "--set", "train.bogus=1"], &["--set train.bogus=1", "train.bogus"]),
    c("set_unknown_top_key", &["train", "{cfg}", "--out", "{out}", "--set", "bogus=1"], &["--set bogus=1"]),
    c("set_unknown_flow_key", &["train", "{cfg}", "--out", "{out}", "--set", "flow.bogus=1"], &["--set flow.bogus=1", "flow.bogus"]),
    c("set_through_a_number", &["train", "{cfg}", "--out", "{out}", "--set", "train.lr.x=1"], &["--set train.lr.x", "train.lr"]),
    c("set_lr_bare_word", &["train", "{cfg}", "--out", "{out}", "--set", "train.lr=fast"], &["--set train.lr=fast", "train.lr"]),
    c("set_steps_boolean", &["train", "{cfg}", "--out", "{out}", "--set", "train.steps=true"], &["--set train.steps=true", "train.steps"]),
    c("set_train_not_a_table", &["train", "{cfg}", "--out", "{out}", "--set", "train=3"], &["--set train=3"]),
    c("set_target_not_a_table", &["train", "{cfg}", "--out", "{out}", "--set", "target=3"], &["--set target=3"]),
    c("set_target_name_integer", &["train", "{cfg}", "--out", "{out}", "--set", "target.name=3"], &["--set target.name=3", "target.name"]),
    c("set_seed_negative", &["train", "{cfg}", "--out", "{out}", "--set", "seed=-1"], &["--set seed=-1", "seed"]),
    c("set_seed_float", &["train", "{cfg}", "--out", "{out}", "--set", "seed=1.5"], &["--set seed=1.5", "seed"]),
    c("set_seed_string", &["train", "{cfg}", "--out", "{out}", "--set", "seed=\"x\""], &["seed"]),
    // [train] numbers.
    c("train_lr_zero", &["train", "{cfg}", "--out", "{out}", "--set", "train.lr=0"], &["--set train.lr=0", "train.lr"]),
    c("train_lr_negative", &["train", "{cfg}", "--out", "{out}", "--set", "train.lr=-1"], &["--set train.lr=-1", "train.lr"]),
    c("train_lr_final_zero", &["train", "{cfg}", "--out", "{out}", "--set", "train.lr_final=0"], &["train.lr_final"]),
    c("train_lr_final_negative", &["train", "{cfg}", "--out", "{out}", "--set", "train.lr_final=-1e-4"], &["train.lr_final"]),
    c("train_lr_final_nan", &["train", "{cfg}", "--out", "{out}", "--set", "train.lr_final=nan"], &["--set train.lr_final=nan"]),
    c("train_clip_norm_zero", &["train", "{cfg}", "--out", "{out}", "--set", "train.clip_norm=0"], &["train.clip_norm"]),
    c("train_clip_norm_negative", &["train", "{cfg}", "--out", "{out}", "--set", "train.clip_norm=-3"], &["train.clip_norm"]),
    c("train_clip_norm_inf", &["train", "{cfg}", "--out", "{out}", "--set", "train.clip_norm=inf"], &["--set train.clip_norm=inf"]),
    c("train_weight_decay_negative", &["train", "{cfg}", "--out", "{out}", "--set", "train.weight_decay=-0.1"], &["train.weight_decay"]),
    c("train_weight_decay_nan", &["train", "{cfg}", "--out", "{out}", "--set", "train.weight_decay=nan"], &["--set train.weight_decay=nan"]),
    c("train_steps_negative", &["train", "{cfg}", "--out", "{out}", "--set", "train.steps=-1"], &["--set train.steps=-1", "train.steps"]),
    c("train_steps_float", &["train", "{cfg}", "--out", "{out}", "--set", "train.steps=1.5"], &["train.steps"]),
    c("train_steps_string", &["train", "{cfg}", "--out", "{out}", "--set", "train.steps=\"many\""], &["train.steps"]),
    c("train_steps_zero", &["train", "{cfg}", "--out", "{out}", "--set", "train.steps=0"], &["train.steps"]),
    // Memory budgets (--max-memory) and runs that cannot make progress.
    c("max_memory_bad_unit", &["--max-memory", "2X", "train", "{cfg}", "--out", "{out}"], &["--max-memory", "unknown unit"]),
    c("max_memory_zero", &["--max-memory", "0", "train", "{cfg}", "--out", "{out}"], &["--max-memory", "not a positive size"]),
    c("max_memory_too_small_for_batch", &["--max-memory", "1M", "train", "{cfg}", "--out", "{out}", "--set", "objective.batch=100000"], &["objective.batch", "1.0 MiB"]),
    c("max_memory_too_small_for_draws", &["--max-memory", "1M", "sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--draws", "100000", "--out", "{out}"], &["--draws", "set by --max-memory"]),
    c("fab_buffer_size_huge", &["train", "{fab}", "--out", "{out}", "--set", "objective.buffer.size=100000000000", "--set", "objective.buffer.min=32"], &["objective.buffer.size", "memory"]),
    c("run_sample_draws_huge", &["run", "{runcfg}", "--out", "{out}", "--set", "sample.draws=10000000000000"], &["sample.draws", "memory"]),
    c("run_evaluate_samples_huge", &["run", "{runcfg}", "--out", "{out}", "--set", "evaluate.samples=100000000000"], &["evaluate.samples", "memory"]),
    c("train_max_skipped_zero", &["train", "{cfg}", "--out", "{out}", "--set", "train.max_skipped=0"], &["train.max_skipped"]),
    c("train_nan_target_stops_after_skipped_steps", &["train", "{cfg}", "--out", "{out}", "--set", "target={name=\"{s:nanret}\"}", "--set", "train.steps=200", "--set", "train.log_every=1000"], &["50 skipped steps in a row", "train.max_skipped"]),
    c("train_plus_inf_target", &["train", "{cfg}", "--out", "{out}", "--set", "target={name=\"{s:posinf}\"}"], &["{s:posinf}", "+inf"]),
    c("hmc_n_leapfrog_huge", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.n_leapfrog=1000000000"], &["objective.kernel_config", "n_leapfrog must be at most 1023"]),
    c("kernel_set_n_leapfrog_huge", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "hmc", "--kernel-set", "n_leapfrog=1000000000", "--out", "{out}"], &["n_leapfrog must be at most 1023"]),
    c("train_max_seconds_zero", &["train", "{cfg}", "--out", "{out}", "--set", "train.max_seconds=0"], &["train.max_seconds"]),
    c("train_max_seconds_negative", &["train", "{cfg}", "--out", "{out}", "--set", "train.max_seconds=-1"], &["train.max_seconds"]),
    c("train_max_seconds_nan", &["train", "{cfg}", "--out", "{out}", "--set", "train.max_seconds=nan"], &["--set train.max_seconds=nan"]),
    c("train_log_every_zero", &["train", "{cfg}", "--out", "{out}", "--set", "train.log_every=0"], &["train.log_every"]),
    c("train_log_every_negative", &["train", "{cfg}", "--out", "{out}", "--set", "train.log_every=-1"], &["train.log_every"]),
    c("train_checkpoint_every_negative", &["train", "{cfg}", "--out", "{out}", "--set", "train.checkpoint_every=-1"], &["train.checkpoint_every"]),
    c("train_checkpoint_every_float", &["train", "{cfg}", "--out", "{out}", "--set", "train.checkpoint_every=2.5"], &["train.checkpoint_every"]),
    c("train_eval_every_negative", &["train", "{cfg}", "--out", "{out}", "--set", "train.eval_every=-1"], &["train.eval_every"]),
    c("train_eval_samples_negative", &["train", "{cfg}", "--out", "{out}", "--set", "train.eval_samples=-1"], &["train.eval_samples"]),
    c("train_eval_samples_zero", &["train", "{cfg}", "--out", "{out}", "--set", "train.eval_every=1", "--set", "train.eval_samples=0"], &["train.eval_samples"]),
    c("train_eval_samples_one", &["train", "{cfg}", "--out", "{out}", "--set", "train.eval_every=1", "--set", "train.eval_samples=1"], &["train.eval_samples"]),
    c("train_eval_samples_huge", &["train", "{cfg}", "--out", "{out}", "--set", "train.eval_every=1", "--set", "train.eval_samples=1000000000000"], &["train.eval_samples"]),
    // [flow] numbers and layers.
    c("flow_base_std_zero", &["train", "{cfg}", "--out", "{out}", "--set", "flow.base_std=0"], &["flow.base_std"]),
    c("flow_base_std_negative", &["train", "{cfg}", "--out", "{out}", "--set", "flow.base_std=-1"], &["flow.base_std"]),
    c("flow_base_std_inf", &["train", "{cfg}", "--out", "{out}", "--set", "flow.base_std=inf"], &["--set flow.base_std=inf"]),
    c("flow_shard_zero", &["train", "{cfg}", "--out", "{out}", "--set", "flow.shard=0"], &["flow.shard"]),
    c("flow_shard_negative", &["train", "{cfg}", "--out", "{out}", "--set", "flow.shard=-1"], &["flow.shard"]),
    c("flow_layers_not_an_array", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=3"], &["flow.layers"]),
    c("flow_layers_empty", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[]"], &["flow.layers"]),
    c("flow_layer_not_a_table", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[3]"], &["flow.layers[0]"]),
    c("flow_layer_without_type", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{couplings=2}]"], &["flow.layers[0]", "type"]),
    c("flow_layer_type_integer", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=3}]"], &["flow.layers[0]", "type"]),
    c("flow_layer_unknown_type", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"nope\"}]"], &["flow.layers[0]", "nope"]),
    c("realnvp_couplings_zero", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",couplings=0}]"], &["flow.layers[0]", "couplings"]),
    c("realnvp_couplings_negative", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",couplings=-1}]"], &["flow.layers[0]", "couplings"]),
    c("realnvp_couplings_huge", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",couplings=1000000000}]"], &["flow.layers[0]", "couplings"]),
    c("realnvp_hidden_zero", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",hidden=[0]}]"], &["flow.layers[0]", "hidden"]),
    c("realnvp_hidden_negative", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",hidden=[-8]}]"], &["flow.layers[0]", "hidden"]),
    c("realnvp_hidden_string", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",hidden=\"x\"}]"], &["flow.layers[0]", "hidden"]),
    c("realnvp_hidden_huge", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",hidden=[1000000000]}]"], &["flow.layers[0]", "hidden"]),
    c("realnvp_scale_bound_zero", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",scale_bound=0.0}]"], &["flow.layers[0]", "scale_bound"]),
    c("realnvp_scale_bound_negative", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",scale_bound=-1.0}]"], &["flow.layers[0]", "scale_bound"]),
    c("realnvp_init_scale_negative", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",init_scale=-1.0}]"], &["flow.layers[0]", "init_scale"]),
    c("realnvp_activation_unknown", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",activation=\"nope\"}]"], &["flow.layers[0]", "activation"]),
    c("realnvp_mask_unknown", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",mask=\"nope\"}]"], &["flow.layers[0]", "mask"]),
    c("realnvp_checkerboard_without_lattice", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",mask=\"checkerboard\"}]"], &["flow.layers[0]", "lattice"]),
    c("realnvp_lattice_zero", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",mask=\"checkerboard\",lattice=0}]"], &["flow.layers[0]", "lattice"]),
    c("realnvp_lattice_mismatch", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",mask=\"checkerboard\",lattice=3}]"], &["flow.layers[0]", "lattice"]),
    c("realnvp_precision_unknown", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",precision=\"f16\"}]"], &["flow.layers[0]", "precision"]),
    c("realnvp_unknown_key", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"realnvp\",bogus=1}]"], &["flow.layers[0]", "bogus"]),
    c("spline_bins_zero", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"spline\",bins=0}]"], &["flow.layers[0]", "bins"]),
    c("spline_bins_one", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"spline\",bins=1}]"], &["flow.layers[0]", "bins"]),
    c("spline_bins_huge", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"spline\",bins=1000000000}]"], &["flow.layers[0]", "bins"]),
    c("spline_bound_zero", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"spline\",bound=0.0}]"], &["flow.layers[0]", "bound"]),
    c("spline_bound_negative", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"spline\",bound=-1.0}]"], &["flow.layers[0]", "bound"]),
    c("spline_bound_inf", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"spline\",bound=inf}]"], &["--set flow.layers=", "[0].bound"]),
    c("spline_couplings_zero", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"spline\",couplings=0}]"], &["flow.layers[0]", "couplings"]),
    c("spline_unknown_key", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"spline\",knots=4}]"], &["flow.layers[0]", "knots"]),
    c("maf_blocks_zero", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"maf\",blocks=0}]"], &["flow.layers[0]", "blocks"]),
    c("maf_hidden_zero", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"maf\",hidden=[0]}]"], &["flow.layers[0]", "hidden"]),
    c("maf_scale_bound_negative", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"maf\",scale_bound=-1.0}]"], &["flow.layers[0]", "scale_bound"]),
    c("iaf_order_unknown", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"iaf\",order=\"nope\"}]"], &["flow.layers[0]", "order"]),
    c("permute_order_unknown", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"permute\",order=\"nope\"}]"], &["flow.layers[0]", "order"]),
    c("actnorm_unknown_key", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"actnorm\",x=1}]"], &["flow.layers[0]", "`x`"]),
    c("affine_unknown_key", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"affine\",x=1}]"], &["flow.layers[0]", "`x`"]),
    c("affine_scale_string", &["train", "{cfg}", "--out", "{out}", "--set", "flow.layers=[{type=\"affine\",scale=\"x\"}]"], &["flow.layers[0]", "scale"]),
    // [objective]: kl, forward-kl, fab and its buffer.
    c("kl_batch_zero", &["train", "{cfg}", "--out", "{out}", "--set", "objective.batch=0"], &["objective", "batch"]),
    c("kl_batch_one", &["train", "{cfg}", "--out", "{out}", "--set", "objective.batch=1"], &["objective", "batch"]),
    c("kl_batch_negative", &["train", "{cfg}", "--out", "{out}", "--set", "objective.batch=-1"], &["objective", "batch"]),
    c("kl_batch_string", &["train", "{cfg}", "--out", "{out}", "--set", "objective.batch=\"16\""], &["objective", "batch"]),
    c("kl_batch_huge", &["train", "{cfg}", "--out", "{out}", "--set", "objective.batch=1000000000000"], &["objective", "batch"]),
    c("kl_estimator_unknown", &["train", "{cfg}", "--out", "{out}", "--set", "objective.estimator=g9"], &["objective", "estimator"]),
    c("kl_unknown_key", &["train", "{cfg}", "--out", "{out}", "--set", "objective.bogus=1"], &["bogus"]),
    c("objective_unknown_name", &["train", "{cfg}", "--out", "{out}", "--set", "objective.name=nope"], &["objective 'nope'"]),
    c("forward_kl_batch_zero", &["train", "{cfg}", "--out", "{out}", "--set", "objective={name=\"forward-kl\",batch=0}"], &["objective", "batch"]),
    c("forward_kl_with_estimator", &["train", "{cfg}", "--out", "{out}", "--set", "objective.name=forward-kl"], &["estimator"]),
    c("fab_batch_zero", &["train", "{fab}", "--out", "{out}", "--set", "objective.batch=0"], &["objective", "batch"]),
    c("fab_batch_negative", &["train", "{fab}", "--out", "{out}", "--set", "objective.batch=-1"], &["objective", "batch"]),
    c("fab_n_intermediate_negative", &["train", "{fab}", "--out", "{out}", "--set", "objective.n_intermediate=-1"], &["objective", "n_intermediate"]),
    c("fab_n_intermediate_huge", &["train", "{fab}", "--out", "{out}", "--set", "objective.n_intermediate=1000000000"], &["objective", "n_intermediate"]),
    c("fab_form_unknown", &["train", "{fab}", "--out", "{out}", "--set", "objective.form=x"], &["objective", "form"]),
    c("fab_spacing_unknown", &["train", "{fab}", "--out", "{out}", "--set", "objective.spacing=x"], &["objective", "spacing"]),
    c("fab_kernel_unknown", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel=nope"], &["kernel 'nope'"]),
    c("fab_adapt_integer", &["train", "{fab}", "--out", "{out}", "--set", "objective.adapt=3"], &["objective", "adapt"]),
    c("fab_kernel_config_integer", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config=3"], &["objective", "kernel_config"]),
    c("fab_buffer_integer", &["train", "{fab}", "--out", "{out}", "--set", "objective.buffer=3"], &["objective", "buffer"]),
    c("fab_buffer_size_zero", &["train", "{fab}", "--out", "{out}", "--set", "objective.buffer.size=0"], &["objective", "buffer.size"]),
    c("fab_buffer_size_negative", &["train", "{fab}", "--out", "{out}", "--set", "objective.buffer.size=-1"], &["objective", "buffer.size"]),
    c("fab_buffer_min_above_size", &["train", "{fab}", "--out", "{out}", "--set", "objective.buffer.min=1000"], &["objective", "buffer.min"]),
    c("fab_buffer_batches_per_ais_zero", &["train", "{fab}", "--out", "{out}", "--set", "objective.buffer.batches_per_ais=0"], &["objective", "buffer.batches_per_ais"]),
    c("fab_buffer_batch_zero", &["train", "{fab}", "--out", "{out}", "--set", "objective.buffer.batch=0"], &["objective", "buffer.batch"]),
    c("fab_buffer_max_w_adjust_zero", &["train", "{fab}", "--out", "{out}", "--set", "objective.buffer.max_w_adjust=0"], &["objective", "buffer.max_w_adjust"]),
    c("fab_buffer_max_w_adjust_negative", &["train", "{fab}", "--out", "{out}", "--set", "objective.buffer.max_w_adjust=-1"], &["objective", "buffer.max_w_adjust"]),
    c("fab_buffer_max_w_adjust_nan", &["train", "{fab}", "--out", "{out}", "--set", "objective.buffer.max_w_adjust=nan"], &["--set objective.buffer.max_w_adjust=nan"]),
    c("fab_buffer_unknown_key", &["train", "{fab}", "--out", "{out}", "--set", "objective.buffer.bogus=1"], &["bogus"]),
    c("fab_buffer_with_form_p", &["train", "{fab}", "--out", "{out}", "--set", "objective.form=p"], &["buffer", "p2q"]),
    c("hmc_n_leapfrog_zero", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.n_leapfrog=0"], &["objective.kernel_config", "n_leapfrog"]),
    c("hmc_n_leapfrog_negative", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.n_leapfrog=-1"], &["objective.kernel_config", "n_leapfrog"]),
    c("hmc_step_size_zero", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.step_size=0"], &["objective.kernel_config", "step_size"]),
    c("hmc_step_size_negative", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.step_size=-0.1"], &["objective.kernel_config", "step_size"]),
    c("hmc_step_size_inf", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.step_size=inf"], &["--set objective.kernel_config.step_size=inf"]),
    c("hmc_jitter_negative", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.jitter=-1"], &["objective.kernel_config", "jitter"]),
    c("hmc_target_accept_zero", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.target_accept=0"], &["objective.kernel_config", "target_accept"]),
    c("hmc_target_accept_above_one", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.target_accept=1.5"], &["objective.kernel_config", "target_accept"]),
    c("hmc_adapt_unknown", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.adapt=x"], &["objective.kernel_config", "adapt"]),
    c("hmc_adapt_factor_negative", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.adapt_factor=-1"], &["objective.kernel_config", "adapt_factor"]),
    c("hmc_mass_wrong_length", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.mass=[1.0]"], &["objective.kernel_config", "mass"]),
    c("hmc_mass_negative", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.mass=[-1.0, 1.0]"], &["objective.kernel_config", "mass"]),
    c("hmc_unknown_key", &["train", "{fab}", "--out", "{out}", "--set", "objective.kernel_config.bogus=1"], &["bogus"]),
    c("rwm_step_size_negative", &["train", "{fab_rwm}", "--out", "{out}", "--set", "objective.kernel_config.step_size=-1"], &["objective.kernel_config", "step_size"]),
    c("rwm_step_size_zero", &["train", "{fab_rwm}", "--out", "{out}", "--set", "objective.kernel_config.step_size=0"], &["objective.kernel_config", "step_size"]),
    c("rwm_target_accept_two", &["train", "{fab_rwm}", "--out", "{out}", "--set", "objective.kernel_config.target_accept=2"], &["objective.kernel_config", "target_accept"]),
    c("rwm_unknown_key", &["train", "{fab_rwm}", "--out", "{out}", "--set", "objective.kernel_config.n_leapfrog=3"], &["n_leapfrog"]),
    // [target] keys in a run config.
    c("target_unknown_name", &["train", "{cfg}", "--out", "{out}", "--set", "target.name=nope"], &["target 'nope'"]),
    c("target_dim_zero", &["train", "{cfg}", "--out", "{out}", "--set", "target.dim=0"], &["target", "dim"]),
    c("target_dim_negative", &["train", "{cfg}", "--out", "{out}", "--set", "target.dim=-2"], &["target", "dim"]),
    c("target_dim_string", &["train", "{cfg}", "--out", "{out}", "--set", "target.dim=\"two\""], &["target", "dim"]),
    c("target_dim_huge", &["train", "{cfg}", "--out", "{out}", "--set", "target.dim=1000000000"], &["target", "dim"]),
    c("target_std_negative", &["train", "{cfg}", "--out", "{out}", "--set", "target.std=-1"], &["target", "std"]),
    c("target_std_zero", &["train", "{cfg}", "--out", "{out}", "--set", "target.std=0"], &["target", "std"]),
    c("target_mean_wrong_length", &["train", "{cfg}", "--out", "{out}", "--set", "target.mean=[1.0]"], &["target", "mean"]),
    c("target_unknown_key", &["train", "{cfg}", "--out", "{out}", "--set", "target.bogus=1"], &["bogus"]),
    c("target_gradient_not_bool", &["train", "{cfg}", "--out", "{out}", "--set", "target.gradient=3"], &["gradient"]),
    c("target_script_syntax_error", &["train", "{cfg}", "--out", "{out}", "--set", "target={name=\"{s:syntax}\"}"], &["{s:syntax}:3"]),
    c("target_script_throws", &["train", "{cfg}", "--out", "{out}", "--set", "target={name=\"{s:throw}\"}"], &["{s:throw}:2", "boom"]),
    c("target_script_with_dim_key", &["train", "{cfg}", "--out", "{out}", "--set", "target.name={good}"], &["'dim'", "{good}"]),
    // Rhai scripts.
    c("rhai_syntax_error", &["density", "--target", "{s:syntax}", "--points", "{points}"], &["{s:syntax}:3"]),
    c("rhai_index_out_of_bounds", &["density", "--target", "{s:oob}", "--points", "{points}"], &["{s:oob}:2"]),
    c("rhai_returns_string", &["density", "--target", "{s:strret}", "--points", "{points}"], &["{s:strret}", "log_prob"]),
    c("rhai_returns_array", &["density", "--target", "{s:arrret}", "--points", "{points}"], &["{s:arrret}", "log_prob"]),
    c("rhai_throws", &["density", "--target", "{s:throw}", "--points", "{points}"], &["{s:throw}:2", "boom"]),
    c("rhai_infinite_loop", &["density", "--target", "{s:loop}", "--points", "{points}"], &["{s:loop}", "operations"]),
    c("rhai_infinite_while", &["density", "--target", "{s:while}", "--points", "{points}", "--grad"], &["{s:while}", "operations"]),
    c("rhai_unbounded_recursion", &["density", "--target", "{s:recurse}", "--points", "{points}"], &["{s:recurse}"]),
    c("rhai_growing_array", &["density", "--target", "{s:grow}", "--points", "{points}"], &["{s:grow}"]),
    c("rhai_growing_string", &["density", "--target", "{s:strgrow}", "--points", "{points}"], &["{s:strgrow}"]),
    c("rhai_no_dim", &["density", "--target", "{s:nodim}", "--points", "{points}"], &["{s:nodim}", "DIM"]),
    c("rhai_dim_zero", &["density", "--target", "{s:dim0}", "--points", "{points}"], &["{s:dim0}:1", "DIM"]),
    c("rhai_dim_negative", &["density", "--target", "{s:dimneg}", "--points", "{points}"], &["{s:dimneg}:1", "DIM"]),
    c("rhai_dim_string", &["density", "--target", "{s:dimstr}", "--points", "{points}"], &["{s:dimstr}:1", "DIM"]),
    c("rhai_dim_float", &["density", "--target", "{s:dimfloat}", "--points", "{points}"], &["{s:dimfloat}:1", "DIM"]),
    c("rhai_dim_huge", &["density", "--target", "{s:dimhuge}", "--points", "{points}"], &["{s:dimhuge}:1", "DIM"]),
    c("rhai_no_log_prob", &["density", "--target", "{s:nologprob}", "--points", "{points}"], &["{s:nologprob}", "log_prob"]),
    c("rhai_log_prob_without_argument", &["density", "--target", "{s:arity}", "--points", "{points}"], &["{s:arity}", "log_prob"]),
    c("rhai_unknown_function", &["density", "--target", "{s:undef}", "--points", "{points}"], &["{s:undef}:2", "undefined_fn"]),
    c("rhai_unknown_variable", &["density", "--target", "{s:undefvar}", "--points", "{points}"], &["{s:undefvar}:2", "y"]),
    c("rhai_returns_nan", &["density", "--target", "{s:nanret}", "--points", "{points}"], &["{points}", "NaN"]),
    c("rhai_returns_plus_inf", &["density", "--target", "{s:posinf}", "--points", "{points}"], &["{s:posinf}", "+inf"]),
    c("rhai_grad_wrong_length", &["density", "--target", "{s:gradlen}", "--points", "{points}", "--grad"], &["{s:gradlen}:3", "grad_log_prob"]),
    c("rhai_grad_returns_string", &["density", "--target", "{s:gradstr}", "--points", "{points}", "--grad"], &["{s:gradstr}:3", "grad_log_prob"]),
    c("rhai_import", &["density", "--target", "{s:import}", "--points", "{points}"], &["{s:import}:2", "import"]),
    c("rhai_empty_script", &["density", "--target", "{s:empty}", "--points", "{points}"], &["{s:empty}"]),
    c("rhai_not_utf8", &["density", "--target", "{s:binary}", "--points", "{points}"], &["{s:binary}", "UTF-8"]),
    c("rhai_missing_file", &["density", "--target", "{dir}/missing.rhai", "--points", "{points}"], &["{dir}/missing.rhai"]),
    c("rhai_set_unknown_constant", &["density", "--target", "{good}", "--points", "{points}", "--set", "Q=1"], &["'Q'"]),
    c("rhai_set_constant_nan", &["density", "--target", "{good}", "--points", "{points}", "--set", "B=nan"], &["--set B=nan"]),
    c("rhai_runtime_error_in_sample", &["sample", "--target", "{s:throw}", "--method", "rwm", "--chains", "1", "--draws", "2", "--warmup", "1", "--out", "{out}"], &["{s:throw}:2", "boom"]),
    c("rhai_infinite_loop_in_sample", &["sample", "--target", "{s:loop}", "--method", "rwm", "--chains", "1", "--draws", "2", "--warmup", "1", "--out", "{out}"], &["{s:loop}", "operations"]),
    // Point files for density.
    c("points_missing", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{absent}"], &["{absent}"]),
    c("points_is_a_directory", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{d:plugempty}"], &["{d:plugempty}"]),
    c("points_flag_missing", &["density", "--target", "gaussian", "--set", "dim=2"], &["--points"]),
    c("points_three_columns", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:cols3}"], &["{p:cols3}:2", "columns"]),
    c("points_one_column", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:cols1}"], &["{p:cols1}:1", "columns"]),
    c("points_ragged_short_row", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:ragged}"], &["{p:ragged}:2", "columns"]),
    c("points_ragged_long_row", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:ragged2}"], &["{p:ragged2}:2", "columns"]),
    c("points_not_numbers", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:nonnum}"], &["{p:nonnum}:1", "abc"]),
    c("points_empty_file", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:empty}"], &["{p:empty}", "no points"]),
    c("points_header_only", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:header}"], &["{p:header}", "no points"]),
    c("points_comment_only", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:comment}"], &["{p:comment}", "no points"]),
    c("points_second_header", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:header2}"], &["{p:header2}:3", "x1"]),
    c("points_empty_field", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:emptyfield}"], &["{p:emptyfield}:1"]),
    c("points_semicolons", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:semicolon}"], &["{p:semicolon}:1"]),
    c("points_not_utf8", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:binary}"], &["{p:binary}", "UTF-8"]),
    c("points_nan_coordinate", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:nan}"], &["{p:nan}", "1"]),
    c("points_inf_coordinate", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:inf}"], &["{p:inf}:1"]),
    c("points_overflowing_coordinate", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{p:overflow}"], &["{p:overflow}:1"]),
    c("points_dimension_mismatch", &["density", "--target", "gaussian", "--set", "dim=3", "--points", "{points}"], &["{points}:2", "3 columns"]),
    // Targets named on the command line.
    c("density_unknown_target", &["density", "--target", "nope", "--points", "{points}"], &["'nope'"]),
    c("density_empty_target_name", &["density", "--target", "", "--points", "{points}"], &["''"]),
    c("density_gaussian_dim_string", &["density", "--target", "gaussian", "--set", "dim=x", "--points", "{points}"], &["dim"]),
    c("density_gaussian_dim_nan", &["density", "--target", "gaussian", "--set", "dim=nan", "--points", "{points}"], &["--set dim=nan"]),
    c("density_gaussian_dim_huge", &["density", "--target", "gaussian", "--set", "dim=1000000000000", "--points", "{points}"], &["dim"]),
    c("density_gaussian_unknown_key", &["density", "--target", "gaussian", "--set", "bogus=1", "--points", "{points}"], &["bogus"]),
    c("density_gaussian_cov_not_positive_definite", &["density", "--target", "gaussian", "--set", "cov=[[1.0,2.0],[2.0,1.0]]", "--points", "{points}"], &["cov"]),
    c("density_gaussian_cov_ragged", &["density", "--target", "gaussian", "--set", "cov=[[1.0,0.0]]", "--points", "{points}"], &["cov"]),
    c("density_set_without_equals", &["density", "--target", "gaussian", "--set", "nodim", "--points", "{points}"], &["--set nodim"]),
    c("density_gradient_not_bool", &["density", "--target", "gaussian", "--set", "dim=2", "--set", "gradient=3", "--points", "{points}"], &["gradient"]),
    c("density_grad_of_gradient_free_target", &["density", "--target", "gmm5", "--set", "gradient=false", "--points", "{points}", "--grad"], &["--grad"]),
    c("density_manywell_odd_dim", &["density", "--target", "manywell", "--set", "dim=3", "--points", "{points}"], &["dim"]),
    c("density_phi4_lattice_zero", &["density", "--target", "phi4", "--set", "L=0", "--points", "{points}"], &["L"]),
    c("density_phi4_lattice_negative", &["density", "--target", "phi4", "--set", "L=-1", "--points", "{points}"], &["L"]),
    c("density_phi4_normalisation_unknown", &["density", "--target", "phi4", "--set", "normalisation=bogus", "--points", "{points}"], &["normalisation"]),
    c("density_phi4_m2_string", &["density", "--target", "phi4", "--set", "m2=\"x\"", "--points", "{points}"], &["m2"]),
    c("density_phi4_lambda_nan", &["density", "--target", "phi4", "--set", "lambda=nan", "--points", "{points}"], &["--set lambda=nan"]),
    c("density_double_well_dim", &["density", "--target", "double-well", "--set", "dim=-1", "--points", "{points}"], &["dim"]),
    c("density_mixture_without_components", &["density", "--target", "mixture", "--points", "{points}"], &["data"]),
    c("density_mixture_data_missing", &["density", "--target", "mixture", "--set", "data={absent}", "--points", "{points}"], &["{absent}"]),
    c("density_mixture_data_bad_csv", &["density", "--target", "mixture", "--set", "data={p:nonnum}", "--points", "{points}"], &["{p:nonnum}"]),
    c("density_mixture_negative_weight", &["density", "--target", "mixture", "--set", "means=[[0.0,0.0]]", "--set", "weights=[-1.0]", "--points", "{points}"], &["weight"]),
    c("density_mixture_stds_wrong_type", &["density", "--target", "mixture", "--set", "means=[[0.0,0.0]]", "--set", "stds=[0.0]", "--points", "{points}"], &["stds"]),
    c("density_mixture_no_means", &["density", "--target", "mixture", "--set", "means=[]", "--points", "{points}"], &["components"]),
    // Plugin directories and files.
    c("plugin_dir_missing_train", &["train", "{cfg}", "--out", "{out}", "--plugin-dir", "{absent}"], &["--plugin-dir", "{absent}"]),
    c("plugin_dir_missing_density", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{points}", "--plugin-dir", "{absent}"], &["--plugin-dir", "{absent}"]),
    c("plugin_dir_is_a_file", &["density", "--target", "gaussian", "--set", "dim=2", "--points", "{points}", "--plugin-dir", "{cfg}"], &["--plugin-dir", "{cfg}"]),
    c("plugin_dir_flag_without_value", &["train", "{cfg}", "--plugin-dir"], &["--plugin-dir"]),
    c("plugin_unknown_target_with_refused_file", &["density", "--target", "nope", "--points", "{points}", "--plugin-dir", "{d:plugtext}"], &["'nope'"]),
    // Checkpoints for estimate and sample --method mis.
    c("estimate_flow_missing", &["estimate", "--flow", "{absent}"], &["{absent}"]),
    c("estimate_flow_sample_dir", &["estimate", "--flow", "{smp}"], &["{smp}", "checkpoint.json"]),
    c("estimate_flow_is_toml", &["estimate", "--flow", "{cfg}"], &["{cfg}"]),
    c("estimate_checkpoint_corrupt", &["estimate", "--flow", "{k:corrupt}", "--samples", "100"], &["{k:corrupt}/checkpoint.json"]),
    c("estimate_checkpoint_truncated", &["estimate", "--flow", "{k:trunc}", "--samples", "100"], &["{k:trunc}/checkpoint.json"]),
    c("estimate_checkpoint_empty", &["estimate", "--flow", "{k:empty}", "--samples", "100"], &["{k:empty}/checkpoint.json"]),
    c("estimate_checkpoint_array", &["estimate", "--flow", "{k:array}", "--samples", "100"], &["{k:array}/checkpoint.json"]),
    c("estimate_checkpoint_null_param", &["estimate", "--flow", "{k:nullparam}", "--samples", "100"], &["{k:nullparam}/checkpoint.json"]),
    c("estimate_checkpoint_no_flow", &["estimate", "--flow", "{k:noflow}", "--samples", "100"], &["{k:noflow}/checkpoint.json", "flow"]),
    c("estimate_checkpoint_no_params", &["estimate", "--flow", "{k:noparams}", "--samples", "100"], &["{k:noparams}/checkpoint.json", "params"]),
    c("estimate_checkpoint_future_format", &["estimate", "--flow", "{k:format99}", "--samples", "100"], &["{k:format99}/checkpoint.json", "format 99"]),
    c("estimate_checkpoint_wrong_dimension", &["estimate", "--flow", "{k:dim3}", "--samples", "100"], &["{k:dim3}"]),
    c("estimate_checkpoint_dimension_zero", &["estimate", "--flow", "{k:dim0}", "--samples", "100"], &["{k:dim0}"]),
    c("estimate_checkpoint_dimension_huge", &["estimate", "--flow", "{k:dimhuge}", "--samples", "100"], &["{k:dimhuge}"]),
    c("estimate_checkpoint_params_short", &["estimate", "--flow", "{k:short}", "--samples", "100"], &["{k:short}", "params"]),
    c("estimate_checkpoint_params_long", &["estimate", "--flow", "{k:long}", "--samples", "100"], &["{k:long}", "params"]),
    c("estimate_checkpoint_unknown_layer", &["estimate", "--flow", "{k:badlayer}", "--samples", "100"], &["{k:badlayer}", "nope"]),
    c("estimate_checkpoint_negative_base_std", &["estimate", "--flow", "{k:basestd}", "--samples", "100"], &["{k:basestd}", "base_std"]),
    c("estimate_checkpoint_negative_step", &["estimate", "--flow", "{k:negstep}", "--samples", "100"], &["{k:negstep}/checkpoint.json", "step"]),
    c("estimate_samples_zero", &["estimate", "--flow", "{run}", "--samples", "0"], &["--samples"]),
    c("estimate_samples_too_few", &["estimate", "--flow", "{run}", "--samples", "5"], &["--samples 5", "at least 100"]),
    c("estimate_log_z_batches_one", &["estimate", "--flow", "{run}", "--log-z-batches", "1"], &["--log-z-batches 1", "2 to"]),
    c("estimate_log_z_batches_huge", &["estimate", "--flow", "{run}", "--log-z-batches", "100000000000"], &["--log-z-batches 100000000000"]),
    c("estimate_log_z_batches_negative", &["estimate", "--flow", "{run}", "--log-z-batches", "-3"], &["--log-z-batches"]),
    c("estimate_batch_samples_alone", &["estimate", "--flow", "{run}", "--batch-samples", "100"], &["--log-z-batches"]),
    c("estimate_batch_samples_one", &["estimate", "--flow", "{run}", "--log-z-batches", "3", "--batch-samples", "1"], &["--batch-samples 1"]),
    c("estimate_batch_samples_huge", &["estimate", "--flow", "{run}", "--log-z-batches", "3", "--batch-samples", "100000000000"], &["--batch-samples", "memory"]),
    c("reproduce_unknown_entry", &["reproduce", "nope", "--out", "{out}"], &["no entry 'nope'", "gmm5"]),
    c("reproduce_budget_zero", &["reproduce", "gmm5", "--budget-minutes", "0", "--out", "{out}"], &["--budget-minutes 0"]),
    c("reproduce_budget_negative", &["reproduce", "gmm5", "--budget-minutes", "-2", "--out", "{out}"], &["--budget-minutes -2"]),
    c("reproduce_budget_nan", &["reproduce", "gmm5", "--budget-minutes", "nan", "--out", "{out}"], &["--budget-minutes NaN"]),
    c("reproduce_out_is_a_file", &["reproduce", "gmm5", "--out", "{points}"], &["{points}"]),
    c("estimate_flow_not_a_checkpoint", &["estimate", "--flow", "{points}"], &["--flow {points}", "checkpoint.json"]),
    c("estimate_samples_negative", &["estimate", "--flow", "{run}", "--samples", "-1"], &["--samples"]),
    c("estimate_samples_not_a_number", &["estimate", "--flow", "{run}", "--samples", "many"], &["--samples"]),
    c("estimate_samples_huge", &["estimate", "--flow", "{run}", "--samples", "100000000000"], &["--samples"]),
    c("estimate_ais_steps_negative", &["estimate", "--flow", "{run}", "--ais-steps", "-1"], &["--ais-steps"]),
    c("estimate_ais_steps_huge", &["estimate", "--flow", "{run}", "--samples", "100", "--ais-steps", "100000000"], &["--ais-steps"]),
    c("estimate_seed_negative", &["estimate", "--flow", "{run}", "--seed", "-1"], &["--seed"]),
    c("estimate_flow_flag_missing", &["estimate"], &["--flow"]),
    c("mis_checkpoint_corrupt", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "mis", "--flow", "{k:corrupt}", "--out", "{out}"], &["{k:corrupt}/checkpoint.json"]),
    c("mis_checkpoint_truncated", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "mis", "--flow", "{k:trunc}", "--out", "{out}"], &["{k:trunc}/checkpoint.json"]),
    c("mis_checkpoint_wrong_dimension", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "mis", "--flow", "{k:dim3}", "--out", "{out}"], &["{k:dim3}"]),
    c("flow_mcmc_short_warmup", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "flow-mcmc", "--warmup", "10", "--out", "{out}"], &["--warmup 100"]),
    c("flow_mcmc_with_flow", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "flow-mcmc", "--flow", "{run}", "--out", "{out}"], &["--flow"]),
    c("mis_checkpoint_missing", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "mis", "--flow", "{absent}", "--out", "{out}"], &["{absent}"]),
    c("mis_flow_is_a_csv", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "mis", "--flow", "{points}", "--out", "{out}"], &["{points}"]),
    c("mis_flow_and_target_dimensions_differ", &["sample", "--target", "gaussian", "--set", "dim=3", "--method", "mis", "--flow", "{run}", "--out", "{out}"], &["dimension 2", "dimension 3"]),
    c("mis_without_flow", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "mis", "--out", "{out}"], &["--flow"]),
    c("mis_ais_unknown_kernel", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "mis-ais", "--flow", "{run}", "--ais-kernel", "nope", "--out", "{out}"], &["'nope'"]),
    // sample flags.
    c("sample_chains_zero", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--chains", "0", "--out", "{out}"], &["--chains"]),
    c("sample_chains_negative", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--chains", "-1", "--out", "{out}"], &["--chains"]),
    c("sample_chains_not_a_number", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--chains", "x", "--out", "{out}"], &["--chains"]),
    c("sample_chains_overflow", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--chains", "99999999999999999999", "--out", "{out}"], &["--chains"]),
    c("sample_chains_huge", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--chains", "1000000000", "--draws", "10", "--out", "{out}"], &["--chains"]),
    c("sample_draws_zero", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--draws", "0", "--out", "{out}"], &["--draws"]),
    c("sample_draws_negative", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--draws", "-5", "--out", "{out}"], &["--draws"]),
    c("sample_draws_huge", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--chains", "2", "--draws", "1000000000000", "--warmup", "0", "--out", "{out}"], &["--draws"]),
    c("sample_warmup_negative", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--warmup", "-1", "--out", "{out}"], &["--warmup"]),
    c("sample_warmup_not_a_number", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--warmup", "1e3", "--out", "{out}"], &["--warmup"]),
    c("sample_seed_negative", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--seed", "-1", "--out", "{out}"], &["--seed"]),
    c("sample_init_scale_nan", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--init-scale", "nan", "--out", "{out}"], &["--init-scale"]),
    c("sample_init_scale_inf", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--init-scale", "inf", "--out", "{out}"], &["--init-scale"]),
    c("sample_init_scale_negative", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--init-scale", "-1", "--out", "{out}"], &["--init-scale"]),
    c("sample_unknown_method", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "slice", "--out", "{out}"], &["slice", "--method"]),
    c("sample_method_without_value", &["sample", "--target", "gaussian", "--set", "dim=2", "--out", "{out}", "--method"], &["--method"]),
    c("sample_method_missing", &["sample", "--target", "gaussian", "--set", "dim=2", "--out", "{out}"], &["--method"]),
    c("sample_target_missing", &["sample", "--method", "rwm", "--out", "{out}"], &["--target"]),
    c("sample_out_missing", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm"], &["--out"]),
    c("sample_unknown_flag", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--out", "{out}", "--bogus"], &["--bogus"]),
    c("sample_unknown_target", &["sample", "--target", "nope", "--method", "rwm", "--out", "{out}"], &["'nope'"]),
    c("sample_set_empty_value", &["sample", "--target", "gaussian", "--set", "dim=", "--method", "rwm", "--out", "{out}"], &["--set dim="]),
    c("sample_flow_with_rwm", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--flow", "{run}", "--out", "{out}"], &["--flow"]),
    c("sample_hmc_without_gradient", &["sample", "--target", "gmm5", "--set", "gradient=false", "--method", "hmc", "--out", "{out}"], &["gradient"]),
    c("kernel_set_unknown_key", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--kernel-set", "bogus=1", "--out", "{out}"], &["bogus"]),
    c("kernel_set_without_equals", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--kernel-set", "step_size", "--out", "{out}"], &["--kernel-set step_size"]),
    c("kernel_set_nan", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--kernel-set", "step_size=nan", "--out", "{out}"], &["--kernel-set step_size=nan"]),
    c("kernel_set_not_toml", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--kernel-set", "step_size=[1", "--out", "{out}"], &["--kernel-set step_size=[1"]),
    c("kernel_set_rwm_step_size_negative", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--kernel-set", "step_size=-1", "--out", "{out}"], &["step_size"]),
    c("kernel_set_rwm_target_accept_one", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--kernel-set", "target_accept=1", "--out", "{out}"], &["target_accept"]),
    c("kernel_set_hmc_n_leapfrog_zero", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "hmc", "--kernel-set", "n_leapfrog=0", "--out", "{out}"], &["n_leapfrog"]),
    c("kernel_set_hmc_n_leapfrog_negative", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "hmc", "--kernel-set", "n_leapfrog=-3", "--out", "{out}"], &["n_leapfrog"]),
    c("kernel_set_hmc_step_size_zero", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "hmc", "--kernel-set", "step_size=0", "--out", "{out}"], &["step_size"]),
    c("kernel_set_hmc_step_size_string", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "hmc", "--kernel-set", "step_size=x", "--out", "{out}"], &["step_size"]),
    c("kernel_set_hmc_mass_wrong_length", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "hmc", "--kernel-set", "mass=[1.0,2.0,3.0]", "--out", "{out}"], &["mass"]),
    // Output directories.
    c("train_out_used_without_force", &["train", "{cfg}", "--out", "{run}"], &["--out {run}", "--force"]),
    c("train_out_sample_dir_without_force", &["train", "{cfg}", "--out", "{smp}"], &["--out {smp}", "--force"]),
    c("sample_out_used_without_force", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--out", "{smp}"], &["--out {smp}", "--force"]),
    c("sample_out_run_dir_without_force", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "mis", "--flow", "{run}", "--out", "{run}"], &["--out {run}", "--force"]),
    c("run_out_used_without_force", &["run", "{runcfg}", "--out", "{full}"], &["--out {full}", "--force"]),
    c("train_out_is_a_file", &["train", "{cfg}", "--out", "{points}"], &["--out {points}", "not a directory"]),
    c("sample_out_is_a_file", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--out", "{points}"], &["--out {points}", "not a directory"]),
    c("run_out_is_a_file", &["run", "{runcfg}", "--out", "{points}"], &["--out {points}", "not a directory"]),
    c("train_force_foreign_file", &["train", "{cfg}", "--out", "{d:foreign}", "--force"], &["{d:foreign}", "notes.txt"]),
    c("sample_force_foreign_file", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--out", "{d:foreign}", "--force"], &["{d:foreign}", "notes.txt"]),
    c("run_force_foreign_file", &["run", "{runcfg}", "--out", "{d:foreign}", "--force"], &["{d:foreign}", "notes.txt"]),
    c("train_force_with_unknown_target", &["train", "{cfg}", "--out", "{run}", "--force", "--set", "target.name=nope"], &["target 'nope'"]),
    c("train_force_with_bad_batch", &["train", "{cfg}", "--out", "{run}", "--force", "--set", "objective.batch=0"], &["objective", "batch"]),
    c("train_force_with_unknown_layer", &["train", "{cfg}", "--out", "{run}", "--force", "--set", "flow.layers=[{type=\"nope\"}]"], &["flow.layers[0]", "nope"]),
    c("train_force_with_bad_lr", &["train", "{cfg}", "--out", "{run}", "--force", "--set", "train.lr=-1"], &["train.lr"]),
    c("sample_force_with_bad_init_scale", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--init-scale", "nan", "--out", "{smp}", "--force"], &["--init-scale"]),
    c("sample_force_with_unknown_target", &["sample", "--target", "nope", "--method", "rwm", "--out", "{smp}", "--force"], &["'nope'"]),
    c("sample_force_with_bad_kernel_key", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "hmc", "--kernel-set", "n_leapfrog=0", "--out", "{smp}", "--force"], &["n_leapfrog"]),
    c("sample_force_with_missing_flow", &["sample", "--target", "gaussian", "--set", "dim=2", "--method", "mis", "--flow", "{absent}", "--out", "{smp}", "--force"], &["{absent}"]),
    c("run_force_with_unknown_target", &["run", "{runcfg}", "--out", "{full}", "--force", "--set", "target.name=nope"], &["target 'nope'"]),
    c("run_force_with_zero_chains", &["run", "{runcfg}", "--out", "{full}", "--force", "--set", "sample.chains=0"], &["sample.chains"]),
    // Resume.
    c("resume_changes_lr", &["train", "--resume", "{run}", "--set", "train.lr=0.5"], &["--set train.lr=0.5 changes train.lr"]),
    c("resume_changes_seed", &["train", "--resume", "{run}", "--set", "seed=9"], &["--set seed=9 changes seed"]),
    c("resume_changes_target", &["train", "--resume", "{run}", "--set", "target.name=gmm5"], &["changes target.name"]),
    c("resume_changes_target_dim", &["train", "--resume", "{run}", "--set", "target.dim=3"], &["changes target.dim"]),
    c("resume_changes_batch", &["train", "--resume", "{run}", "--set", "objective.batch=32"], &["changes objective.batch"]),
    c("resume_changes_estimator", &["train", "--resume", "{run}", "--set", "objective.estimator=g2"], &["changes objective.estimator"]),
    c("resume_changes_layers", &["train", "--resume", "{run}", "--set", "flow.layers=[{type=\"affine\"}]"], &["changes flow.layers"]),
    c("resume_changes_base_std", &["train", "--resume", "{run}", "--set", "flow.base_std=2.0"], &["changes flow.base_std"]),
    c("resume_adds_lr_final", &["train", "--resume", "{run}", "--set", "train.lr_final=1e-5"], &["changes train.lr_final"]),
    c("resume_adds_clip_norm", &["train", "--resume", "{run}", "--set", "train.clip_norm=1.0"], &["changes train.clip_norm"]),
    c("resume_changes_weight_decay", &["train", "--resume", "{run}", "--set", "train.weight_decay=0.1"], &["changes train.weight_decay"]),
    c("resume_with_other_config_file", &["train", "{fab}", "--resume", "{run}"], &["{fab} changes"]),
    c("resume_missing_dir", &["train", "--resume", "{absent}"], &["--resume {absent}"]),
    c("resume_sample_dir", &["train", "--resume", "{smp}"], &["--resume {smp}"]),
    c("resume_a_file", &["train", "--resume", "{cfg}"], &["--resume {cfg}"]),
    c("resume_and_other_out", &["train", "--resume", "{run}", "--out", "{out}"], &["--resume {run}", "--out"]),
    c("resume_without_dir", &["train", "--resume"], &["--resume"]),
    c("resume_steps_negative", &["train", "--resume", "{run}", "--set", "train.steps=-1"], &["--set train.steps=-1", "train.steps"]),
    c("resume_unknown_key", &["train", "--resume", "{run}", "--set", "train.bogus=1"], &["--set train.bogus=1", "train.bogus"]),
    c("resume_lr_nan", &["train", "--resume", "{run}", "--set", "train.lr=nan"], &["--set train.lr=nan"]),
    c("resume_fewer_steps_than_done", &["train", "--resume", "{run}", "--set", "train.steps=2"], &["train.steps"]),
    c("run_resume_changes_lr", &["run", "--resume", "{full}", "--set", "train.lr=0.5"], &["--set train.lr=0.5 changes train.lr"]),
    c("run_resume_zero_chains", &["run", "--resume", "{full}", "--set", "sample.chains=0"], &["sample.chains"]),
    c("run_resume_bad_method", &["run", "--resume", "{full}", "--set", "sample.method=hmc"], &["sample", "method", "hmc"]),
    c("run_resume_missing_dir", &["run", "--resume", "{absent}"], &["--resume {absent}"]),
    // bootflow run configs.
    c("run_missing_config", &["run", "{absent}", "--out", "{out}"], &["{absent}"]),
    c("run_evaluate_samples_zero", &["run", "{runcfg}", "--out", "{out}", "--set", "evaluate.samples=0"], &["evaluate.samples"]),
    c("run_evaluate_ais_negative", &["run", "{runcfg}", "--out", "{out}", "--set", "evaluate.ais=-1"], &["--set evaluate.ais=-1", "evaluate.ais"]),
    c("run_evaluate_unknown_key", &["run", "{runcfg}", "--out", "{out}", "--set", "evaluate.bogus=1"], &["evaluate.bogus"]),
    c("run_sample_draws_zero", &["run", "{runcfg}", "--out", "{out}", "--set", "sample.draws=0"], &["sample.draws"]),
    c("run_sample_chains_zero", &["run", "{runcfg}", "--out", "{out}", "--set", "sample.chains=0"], &["sample.chains"]),
    c("run_sample_ais_steps_negative", &["run", "{runcfg}", "--out", "{out}", "--set", "sample.ais_steps=-1"], &["sample.ais_steps"]),
    c("run_sample_method_hmc", &["run", "{runcfg}", "--out", "{out}", "--set", "sample.method=hmc"], &["sample", "method", "hmc"]),
    c("run_sample_not_a_table", &["run", "{runcfg}", "--out", "{out}", "--set", "sample=3"], &["[sample]"]),
    c("run_evaluate_not_a_table", &["run", "{runcfg}", "--out", "{out}", "--set", "evaluate=3"], &["[evaluate]"]),
    c("run_lr_negative", &["run", "{runcfg}", "--out", "{out}", "--set", "train.lr=-1"], &["--set train.lr=-1", "train.lr"]),
    // plot.
    c("plot_missing_dir", &["plot", "{absent}"], &["{absent}"]),
    c("plot_a_file", &["plot", "{cfg}"], &["{cfg}"]),
    c("plot_sample_dir", &["plot", "{smp}"], &["{smp}"]),
    c("plot_without_dir", &["plot"], &["RUN_DIR"]),
    c("optimize_starts_zero", &["optimize", "--target", "gmm5", "--starts", "0"], &["--starts 0"]),
    c("optimize_starts_huge", &["optimize", "--target", "gmm5", "--starts", "100000000"], &["--starts 100000000"]),
    c("optimize_init_scale_zero", &["optimize", "--target", "gmm5", "--init-scale", "0"], &["--init-scale 0"]),
    c("optimize_max_iters_zero", &["optimize", "--target", "gmm5", "--max-iters", "0"], &["--max-iters 0"]),
    c("sample_laplace_without_gradient", &["sample", "--target", "gmm5", "--set", "gradient=false", "--method", "laplace", "--out", "{out}"], &["laplace", "gradient"]),
    c("sample_laplace_with_flow", &["sample", "--target", "gmm5", "--method", "laplace", "--flow", "{run}/checkpoint.json", "--out", "{out}"], &["--flow"]),
    c("optimize_unknown_target", &["optimize", "--target", "nope"], &["nope"]),
    c("plot_corrupt_summary", &["plot", "{d:fullbad}"], &["{d:fullbad}/summary.json"]),
    // Other commands and the command line itself.
    c("unknown_command", &["bogus-command"], &["bogus-command"]),
    c("train_without_config", &["train"], &["config"]),
    c("targets_scripts_missing", &["targets", "--scripts", "{absent}"], &["{absent}"]),
    c("targets_scripts_a_file", &["targets", "--scripts", "{cfg}"], &["{cfg}"]),
    c("completions_unknown_shell", &["completions", "nosuchshell"], &["nosuchshell"]),
    c("new_plugin_empty_name", &["new-plugin", ""], &["plugin name"]),
    c("new_plugin_bad_name", &["new-plugin", "bad name!"], &["bad name!"]),
];

const CFG: &str = r#"seed = 1
[target]
name = "gaussian"
dim = 2
[flow]
layers = [{ type = "affine" }, { type = "realnvp", couplings = 2, hidden = [8] }]
[objective]
name = "kl"
estimator = "g3"
batch = 16
[train]
steps = 4
lr = 1e-3
log_every = 2
checkpoint_every = 2
"#;

const FAB: &str = r#"seed = 1
[target]
name = "gaussian"
dim = 2
[flow]
layers = [{ type = "affine" }, { type = "spline", couplings = 2, bins = 4, bound = 5.0, hidden = [8] }]
[objective]
name = "fab"
form = "p2q"
batch = 16
n_intermediate = 1
kernel = "hmc"
kernel_config = { n_leapfrog = 2, step_size = 0.3 }
buffer = { size = 64, min = 32, batches_per_ais = 2, max_w_adjust = 10.0 }
[train]
steps = 4
log_every = 2
"#;

const RUN_TABLES: &str = "[evaluate]\nsamples = 200\n[sample]\nchains = 2\ndraws = 20\n";

/// `text` with `from` replaced by `to`; `from` must occur.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "fixture edit: {from:?} not in the base config");
    text.replacen(from, to, 1)
}

/// Placeholder → path, plus the snapshotted directories.
struct Fixtures {
    dir: PathBuf,
    paths: HashMap<String, String>,
    guarded: Vec<PathBuf>,
}

fn put(paths: &mut HashMap<String, String>, key: &str, path: &Path) {
    paths.insert(key.to_string(), s(path));
}

fn s(p: &Path) -> String {
    p.to_str().expect("UTF-8 temporary path").to_string()
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// The command for `args` under the memory limit, run in the fixture directory.
fn command(dir: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("ulimit -v {MEMORY_LIMIT_KIB}; exec \"$0\" \"$@\""))
        .arg(built::bootflow())
        .args(args)
        .current_dir(dir)
        .env_remove("BOOTFLOW_PLUGIN_PATH")
        // Every thread reserves address space (stack, malloc arena): a fixed thread count keeps
        // the limit meaningful on machines with many cores (results do not depend on it).
        .env("RAYON_NUM_THREADS", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// A control run that must succeed under the memory limit (it also builds a fixture).
fn control(dir: &Path, args: &[&str]) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let o = command(dir, &args).output().unwrap();
    assert!(
        o.status.success(),
        "control run {args:?} failed under ulimit -v {MEMORY_LIMIT_KIB}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn prepare() -> Fixtures {
    let dir = built::temp_dir("hostile");
    let mut paths: HashMap<String, String> = HashMap::new();
    put(&mut paths, "dir", &dir);
    put(&mut paths, "absent", &dir.join("absent"));
    for (key, text) in [("cfg", CFG.to_string()), ("fab", FAB.to_string()), ("runcfg", format!("{CFG}{RUN_TABLES}"))] {
        let path = dir.join(format!("{key}.toml"));
        write(&path, text);
        put(&mut paths, key, &path);
    }
    let fab_rwm = edit(
        FAB,
        "kernel = \"hmc\"\nkernel_config = { n_leapfrog = 2, step_size = 0.3 }",
        "kernel = \"rwm\"\nkernel_config = { step_size = 0.5 }",
    );
    write(&dir.join("fab_rwm.toml"), fab_rwm);
    put(&mut paths, "fab_rwm", &dir.join("fab_rwm.toml"));
    write(&dir.join("points.csv"), "x1,x2\n0.0,1.0\n1.0,2.0\n");
    put(&mut paths, "points", &dir.join("points.csv"));
    let good = "const DIM = 2;\nconst B = 1.0;\nfn log_prob(x) { -0.5 * B * (x[0] * x[0] + x[1] * x[1]) }\n";
    write(&dir.join("good.rhai"), good);
    put(&mut paths, "good", &dir.join("good.rhai"));

    let target_block = "[target]\nname = \"gaussian\"\ndim = 2\n";
    let layers = "layers = [{ type = \"affine\" }, { type = \"realnvp\", couplings = 2, hidden = [8] }]";
    let configs: Vec<(&str, Vec<u8>)> = vec![
        ("badtoml", b"seed = \n[target\n".to_vec()),
        ("dup", format!("{CFG}steps = 5\n").into_bytes()),
        ("empty", Vec::new()),
        ("binary", vec![0xff, 0xfe, b' ', b'x']),
        ("no_target", edit(CFG, target_block, "").into_bytes()),
        ("no_flow", edit(CFG, &format!("[flow]\n{layers}\n"), "").into_bytes()),
        ("no_objective", edit(CFG, "[objective]\nname = \"kl\"\nestimator = \"g3\"\nbatch = 16\n", "").into_bytes()),
        ("target_no_name", edit(CFG, "name = \"gaussian\"\n", "").into_bytes()),
        ("unknown_top", format!("bogus = 1\n{CFG}").into_bytes()),
        ("unknown_train", edit(CFG, "log_every", "log_evry").into_bytes()),
        ("train_array", edit(CFG, "[train]", "[[train]]").into_bytes()),
        ("lr_nan", edit(CFG, "lr = 1e-3", "lr = nan").into_bytes()),
        ("lr_neginf", edit(CFG, "lr = 1e-3", "lr = -inf").into_bytes()),
        ("lr_string", edit(CFG, "lr = 1e-3", "lr = \"fast\"").into_bytes()),
        ("lr_negative", edit(CFG, "lr = 1e-3", "lr = -0.1").into_bytes()),
        ("steps_negative", edit(CFG, "steps = 4", "steps = -4").into_bytes()),
        ("batch_string", edit(CFG, "batch = 16", "batch = \"16\"").into_bytes()),
        ("batch_negative", edit(CFG, "batch = 16", "batch = -16").into_bytes()),
        ("dim_nan", edit(CFG, "dim = 2", "dim = nan").into_bytes()),
        ("layers_empty", edit(CFG, layers, "layers = []").into_bytes()),
        ("layer_unknown", edit(CFG, "type = \"realnvp\"", "type = \"nope\"").into_bytes()),
        ("layer_no_type", edit(CFG, "type = \"realnvp\", ", "").into_bytes()),
        ("target_unknown", edit(CFG, "name = \"gaussian\"", "name = \"nope\"").into_bytes()),
        ("objective_unknown", edit(CFG, "name = \"kl\"", "name = \"nope\"").into_bytes()),
    ];
    for (name, bytes) in configs {
        let path = dir.join("configs").join(format!("{name}.toml"));
        write(&path, bytes);
        put(&mut paths, &format!("c:{name}"), &path);
    }

    let scripts: &[(&str, &str)] = &[
        ("syntax", "const DIM = 2;\nfn log_prob(x) { -0.5 * (x[0] * x[0] + \n}\n"),
        ("oob", "const DIM = 2;\nfn log_prob(x) { x[5] }\n"),
        ("strret", "const DIM = 2;\nfn log_prob(x) { \"hello\" }\n"),
        ("arrret", "const DIM = 2;\nfn log_prob(x) { [1.0, 2.0] }\n"),
        ("throw", "const DIM = 2;\nfn log_prob(x) { throw \"boom\"; }\n"),
        ("loop", "const DIM = 2;\nfn log_prob(x) { loop { } }\n"),
        ("while", "const DIM = 2;\nfn log_prob(x) { let s = 0.0; while true { s += 1.0; } s }\n"),
        ("recurse", "const DIM = 2;\nfn f(n) { f(n + 1) }\nfn log_prob(x) { f(0) }\n"),
        ("grow", "const DIM = 2;\nfn log_prob(x) { let a = []; loop { a.push(1.0); } }\n"),
        ("strgrow", "const DIM = 2;\nfn log_prob(x) { let s = \"a\"; loop { s += s; } }\n"),
        ("nodim", "fn log_prob(x) { -0.5 * x[0] * x[0] }\n"),
        ("dim0", "const DIM = 0;\nfn log_prob(x) { 0.0 }\n"),
        ("dimneg", "const DIM = -3;\nfn log_prob(x) { 0.0 }\n"),
        ("dimstr", "const DIM = \"two\";\nfn log_prob(x) { 0.0 }\n"),
        ("dimfloat", "const DIM = 2.5;\nfn log_prob(x) { 0.0 }\n"),
        ("dimhuge", "const DIM = 2000000000;\nfn log_prob(x) { 0.0 }\n"),
        ("nologprob", "const DIM = 2;\n"),
        ("arity", "const DIM = 2;\nfn log_prob() { 0.0 }\n"),
        ("undef", "const DIM = 2;\nfn log_prob(x) { undefined_fn(x) }\n"),
        ("undefvar", "const DIM = 2;\nfn log_prob(x) { y }\n"),
        ("nanret", "const DIM = 2;\nfn log_prob(x) { 0.0 / 0.0 }\n"),
        ("posinf", "const DIM = 2;\nfn log_prob(x) { 1.0 / 0.0 }\n"),
        ("gradlen", "const DIM = 2;\nfn log_prob(x) { -0.5 * x[0] * x[0] }\nfn grad_log_prob(x) { [1.0] }\n"),
        ("gradstr", "const DIM = 2;\nfn log_prob(x) { -0.5 * x[0] * x[0] }\nfn grad_log_prob(x) { \"g\" }\n"),
        ("import", "const DIM = 2;\nimport \"os\" as os;\nfn log_prob(x) { 0.0 }\n"),
        ("empty", ""),
    ];
    for (name, text) in scripts {
        let path = dir.join("scripts").join(format!("{name}.rhai"));
        write(&path, text);
        put(&mut paths, &format!("s:{name}"), &path);
    }
    write(&dir.join("scripts/binary.rhai"), [0xff, 0xfe, 0x00]);
    put(&mut paths, "s:binary", &dir.join("scripts/binary.rhai"));

    let points: &[(&str, &[u8])] = &[
        ("cols3", b"x1,x2,x3\n1,2,3\n"),
        ("cols1", b"1\n"),
        ("ragged", b"1,2\n3\n"),
        ("ragged2", b"1,2\n1,2,3\n"),
        ("nonnum", b"1,abc\n"),
        ("empty", b""),
        ("header", b"x1,x2\n"),
        ("comment", b"# nothing here\n"),
        ("header2", b"x1,x2\n1,2\nx1,x2\n"),
        ("emptyfield", b"1,,2\n"),
        ("semicolon", b"1;2\n"),
        ("binary", b"\xff\xfe,1\n"),
        ("nan", b"1,nan\n"),
        ("inf", b"1,inf\n"),
        ("overflow", b"1e999,2\n"),
    ];
    for (name, bytes) in points {
        let path = dir.join("points").join(format!("{name}.csv"));
        write(&path, bytes);
        put(&mut paths, &format!("p:{name}"), &path);
    }

    // Plugin and output directories.
    let plugempty = dir.join("plugins-empty");
    std::fs::create_dir_all(&plugempty).unwrap();
    put(&mut paths, "d:plugempty", &plugempty);
    write(&dir.join("plugins-text/libbootflow_fake.so"), "not a library\n");
    put(&mut paths, "d:plugtext", &dir.join("plugins-text"));
    write(&dir.join("foreign/chain_1.csv"), "lp__\n0\n");
    write(&dir.join("foreign/notes.txt"), "mine\n");
    put(&mut paths, "d:foreign", &dir.join("foreign"));

    // Control runs under the memory limit; they also make the prepared directories.
    let (run, smp, full) = (dir.join("run"), dir.join("smp"), dir.join("full"));
    control(&dir, &["train", &paths["cfg"], "--out", &s(&run)]);
    control(&dir, &["train", &paths["fab"], "--out", &s(&dir.join("fabrun"))]);
    let sample = ["sample", "--target", "gaussian", "--set", "dim=2", "--method", "rwm", "--chains", "2"];
    control(&dir, &[&sample[..], &["--draws", "20", "--warmup", "10", "--out", &s(&smp)]].concat());
    control(&dir, &["run", &paths["runcfg"], "--out", &s(&full)]);
    control(&dir, &["density", "--target", &paths["good"], "--points", &paths["points"], "--grad"]);
    control(&dir, &["estimate", "--flow", &s(&dir.join("fabrun")), "--samples", "200"]);
    put(&mut paths, "run", &run);
    put(&mut paths, "smp", &smp);
    put(&mut paths, "full", &full);
    let fullbad = dir.join("fullbad");
    for (name, bytes) in snapshot(&full) {
        write(&fullbad.join(&name), bytes);
    }
    write(&fullbad.join("summary.json"), "{");
    put(&mut paths, "d:fullbad", &fullbad);

    // Checkpoint directories derived from the finished run.
    let text = std::fs::read_to_string(run.join("checkpoint.json")).unwrap();
    let ck: Value = serde_json::from_str(&text).unwrap();
    let edited = |f: &dyn Fn(&mut Value)| {
        let mut v = ck.clone();
        f(&mut v);
        v.to_string()
    };
    let checkpoints: Vec<(&str, String)> = vec![
        ("corrupt", "{not json".into()),
        ("trunc", text[..text.len() / 2].into()),
        ("empty", String::new()),
        ("array", "[1, 2, 3]".into()),
        ("nullparam", edited(&|v| v["params"][0] = Value::Null)),
        (
            "noflow",
            edited(&|v| {
                v.as_object_mut().unwrap().remove("flow");
            }),
        ),
        (
            "noparams",
            edited(&|v| {
                v.as_object_mut().unwrap().remove("params");
            }),
        ),
        ("format99", edited(&|v| v["format"] = json!(99))),
        ("dim3", edited(&|v| v["flow"]["dim"] = json!(3))),
        ("dim0", edited(&|v| v["flow"]["dim"] = json!(0))),
        ("dimhuge", edited(&|v| v["flow"]["dim"] = json!(1_000_000_000_000u64))),
        (
            "short",
            edited(&|v| {
                v["params"].as_array_mut().unwrap().pop();
            }),
        ),
        ("long", edited(&|v| v["params"].as_array_mut().unwrap().push(json!(1.0)))),
        ("badlayer", edited(&|v| v["flow"]["spec"]["layers"][0] = json!({"type": "nope"}))),
        ("basestd", edited(&|v| v["flow"]["spec"]["base_std"] = json!(-1.0))),
        ("negstep", edited(&|v| v["step"] = json!(-1))),
    ];
    let config = std::fs::read(run.join("config.toml")).unwrap();
    for (name, body) in checkpoints {
        let d = dir.join("checkpoints").join(name);
        write(&d.join("checkpoint.json"), body);
        write(&d.join("config.toml"), &config);
        put(&mut paths, &format!("k:{name}"), &d);
    }
    Fixtures { dir, paths, guarded: vec![run, smp, full] }
}

/// Every file of a (flat) directory with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.insert(path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap());
        }
    }
    files
}

fn restore(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Expands every `{key}` of `text` that names a fixture; a leftover `{word}` is a typo.
fn expand(text: &str, fx: &Fixtures, out: &Path) -> String {
    let mut t = text.replace("{out}", &s(out));
    for (key, path) in &fx.paths {
        t = t.replace(&format!("{{{key}}}"), path);
    }
    for (start, _) in t.match_indices('{') {
        let rest = &t[start + 1..];
        let word = &rest[..rest.find('}').unwrap_or(rest.len())];
        let placeholder =
            !word.is_empty() && word.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == ':' || ch == '_');
        assert!(!placeholder, "unknown placeholder {{{word}}} in {text:?}");
    }
    t
}

/// What one case did.
struct Outcome {
    status: Option<ExitStatus>,
    seconds: f64,
    stderr: String,
}

fn run_case(fx: &Fixtures, case: &Case) -> (Vec<String>, Outcome) {
    let out = fx.dir.join("out").join(case.name);
    let args: Vec<String> = case.args.iter().map(|a| expand(a, fx, &out)).collect();
    let start = Instant::now();
    let mut child = command(&fx.dir, &args).spawn().expect("bash runs");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut buf).ok();
        buf
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > KILL_AFTER {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let seconds = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    (args, Outcome { status, seconds, stderr })
}

/// What is wrong with an outcome, if anything.
fn problems(fx: &Fixtures, case: &Case, o: &Outcome) -> Vec<String> {
    let mut p = Vec::new();
    match o.status {
        None => p.push(format!("still running after {} s (killed)", KILL_AFTER.as_secs())),
        Some(st) if st.code() == Some(2) => {}
        Some(st) => match (st.code(), st.signal()) {
            (_, Some(sig)) => p.push(format!("died by signal {sig}")),
            (code, _) => p.push(format!("exit {code:?}, expected 2")),
        },
    }
    let lines: Vec<&str> = o.stderr.lines().collect();
    if lines.len() != 1 {
        p.push(format!("{} stderr lines, expected 1", lines.len()));
    }
    if o.stderr.contains("panicked") {
        p.push("panicked".into());
    }
    let first = lines.iter().find(|l| l.starts_with("error")).or(lines.first()).copied().unwrap_or("");
    for want in case.expect {
        let want = expand(want, fx, &fx.dir.join("out").join(case.name));
        if !first.contains(&want) {
            p.push(format!("stderr does not name {want:?}"));
        }
    }
    if o.seconds > CASE_SECONDS {
        p.push(format!("took {:.1} s", o.seconds));
    }
    p
}

fn report(fx: &Fixtures, case: &Case, args: &[String], o: &Outcome, p: &[String]) -> String {
    let status = match o.status {
        None => "killed".to_string(),
        Some(st) => st.code().map(|c| format!("exit {c}")).unwrap_or_else(|| format!("signal {:?}", st.signal())),
    };
    let shown: Vec<String> = o.stderr.lines().take(4).map(|l| format!("      | {l}")).collect();
    let more = o.stderr.lines().count().saturating_sub(4);
    let cmd = args.iter().map(|a| a.replace(&s(&fx.dir), "$DIR")).collect::<Vec<_>>().join(" ");
    format!(
        "  {}: bootflow {cmd}\n    {status}, {:.2} s; {}\n{}{}",
        case.name,
        o.seconds,
        p.join("; "),
        shown.join("\n"),
        if more > 0 { format!("\n      | ... {more} more lines") } else { String::new() }
    )
    .replace(&s(&fx.dir), "$DIR")
}

#[test]
fn hostile_inputs_exit_2_with_one_line_naming_what_and_where() {
    let started = Instant::now();
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "case names must be unique");
    assert!(CASES.len() >= 150, "the corpus shrank to {} cases", CASES.len());

    let fx = prepare();
    let snapshots: Vec<BTreeMap<String, Vec<u8>>> = fx.guarded.iter().map(|d| snapshot(d)).collect();
    let guarded_keys = ["{run}", "{smp}", "{full}"];
    let (guarded, free): (Vec<&Case>, Vec<&Case>) =
        CASES.iter().partition(|c| c.args.iter().any(|a| guarded_keys.iter().any(|k| a.contains(k))));
    let failures = Mutex::new(Vec::new());

    // Cases that touch no prepared directory run on a few threads.
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                while let Some(case) = free.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let (args, o) = run_case(&fx, case);
                    let p = problems(&fx, case, &o);
                    if !p.is_empty() {
                        failures.lock().unwrap().push((case.name, report(&fx, case, &args, &o, &p)));
                    }
                }
            });
        }
    });
    // Cases that point at the prepared directories run one by one, each checked against the
    // snapshot (and the directory restored when it was touched).
    for case in guarded {
        let (args, o) = run_case(&fx, case);
        let mut p = problems(&fx, case, &o);
        for (dir, files) in fx.guarded.iter().zip(&snapshots) {
            let now = snapshot(dir);
            if &now != files {
                let changed: Vec<&String> = files
                    .keys()
                    .chain(now.keys())
                    .filter(|k| files.get(*k) != now.get(*k))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                p.push(format!("changed {}: {changed:?}", s(dir)));
                restore(dir, files);
            }
        }
        if !p.is_empty() {
            failures.lock().unwrap().push((case.name, report(&fx, case, &args, &o, &p)));
        }
    }

    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    eprintln!(
        "hostile: {} cases, {} failed, {:.1} s (memory limit {MEMORY_LIMIT_KIB} KiB)",
        CASES.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&fx.dir);
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>().join("\n")
    );
}
