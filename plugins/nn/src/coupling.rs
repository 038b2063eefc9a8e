//! What every coupling layer shares: the frozen coordinates go through a dense conditioner
//! whose outputs parametrise an element-wise transform of the active coordinates. A coupling
//! layer supplies only that transform ([`CouplingTransform`]); gathering the frozen rows, the
//! conditioner's passes, the tape, the dimension checks and the frozen rows' share of the input
//! cotangent live here once.

use std::fmt::Debug;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use bootflow_core::check_dim;
use bootflow_core::parse_config;
use bootflow_core::{Batch, Bijection, Cotangent, Direction, Error, Pass, Result, Rng, Tape};

use crate::activation::Activation;
use crate::conditioner::{Conditioner, ConditionerKind, ConditionerTape, ConvShape};
use crate::mask::{MaskKind, Split};
use crate::mlp::Mlp;
use crate::precision::Precision;

/// The element-wise map of a coupling's active coordinates, given the conditioner's outputs.
pub trait CouplingTransform: Clone + Debug + Send + Sync + 'static {
    /// What a recorded pass keeps for its backward step.
    type Record: Send + Sync + 'static;

    /// Name of the layer in error messages.
    const NAME: &'static str;

    /// Conditioner outputs per active coordinate.
    fn outputs_per_coordinate(&self) -> usize;

    /// The raw row of output `c` of active coordinate `i` when `active` coordinates are active.
    fn raw_row(&self, active: usize, i: usize, c: usize) -> usize;

    /// Maps the active rows of `pass.out` (a copy of the pass input) with the conditioner
    /// outputs `raw` (`outputs_per_coordinate * active.len()` rows, one column per sample) and
    /// adds each column's log-determinant into `pass.log_det`. Returns the record when
    /// `at.record` is set.
    fn apply(&self, at: Site<'_>, raw: Batch, pass: &mut Pass) -> Option<Self::Record>;

    /// Backward step of [`apply`](Self::apply): `g_in` holds the output cotangent and gets the
    /// input cotangent in its active rows; `g_raw` (zeros, shaped like `raw`) gets the
    /// cotangent of the conditioner outputs.
    fn backward(&self, at: Site<'_>, rec: &Self::Record, g_log_det: &[f64], g_in: &mut Batch, g_raw: &mut Batch);

    /// [`apply`](Self::apply) recorded (`at.record` is set), with the fast path gradient's step
    /// on the active rows: `score` holds the incoming score in its active rows and gets the
    /// outgoing one, `(score - d log|det| / dx) / f'`; `g_raw` (zeros, shaped like `raw`) gets the
    /// conditioner-output cotangent of [`backward`](Self::backward) for the outgoing score as
    /// output cotangent and log-det cotangent 1.
    fn apply_with_score(
        &self,
        at: Site<'_>,
        raw: Batch,
        pass: &mut Pass,
        score: &mut Batch,
        g_raw: &mut Batch,
    ) -> Option<Self::Record>;
}

/// Where a transform runs: the pass's direction, the rows it transforms, and whether the pass
/// is recorded.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    /// Direction of the pass.
    pub direction: Direction,
    /// The active coordinates, in increasing order.
    pub active: &'a [usize],
    /// Whether the pass keeps a tape.
    pub record: bool,
}

/// A coupling layer: conditioner network on the frozen rows, `T` on the active rows.
#[derive(Clone, Debug)]
pub struct Coupling<T> {
    dim: usize,
    split: Split,
    net: Conditioner,
    transform: T,
}

/// What a pass keeps: its direction and batch size, the conditioner's tape and the transform's.
struct CouplingTape<R> {
    direction: Direction,
    n: usize,
    net: ConditionerTape,
    record: R,
}

/// Rows `rows` of `b`, in that order.
pub fn gather(b: &Batch, rows: &[usize]) -> Batch {
    let mut out = Batch::zeros(rows.len(), b.ncols());
    if rows.is_empty() {
        return out;
    }
    for (o, c) in out.as_mut_slice().chunks_exact_mut(rows.len()).zip(b.as_slice().chunks_exact(b.nrows())) {
        o.iter_mut().zip(rows).for_each(|(v, &i)| *v = c[i]);
    }
    out
}

impl<T: CouplingTransform> Coupling<T> {
    /// A coupling on `dim` coordinates split by `split`, its conditioner as `keys` say (dense
    /// on the frozen coordinates, or convolutional on the lattice of a checkerboard mask).
    /// Weights of the hidden layers are drawn from `rng`; the last layer's standard deviation is
    /// `init_scale / sqrt(fan_in)` (0 makes a fresh coupling the identity).
    pub fn new(
        dim: usize,
        split: Split,
        keys: &CouplingKeys,
        init_scale: f64,
        transform: T,
        rng: &mut Rng,
    ) -> Result<Self> {
        if split.active.is_empty() || split.frozen.len() + split.active.len() != dim {
            return Err(Error::Config(format!("coupling split {split:?} is not a partition of {dim} coordinates")));
        }
        let per = transform.outputs_per_coordinate();
        let da = split.active.len();
        let net = match keys.conditioner {
            ConditionerKind::Mlp => {
                if keys.channels.is_some() || keys.kernel.is_some() {
                    return Err(Error::Config(
                        "'channels' and 'kernel' are keys of conditioner = \"conv\"; the dense conditioner takes 'hidden'"
                            .into(),
                    ));
                }
                let hidden = keys.hidden();
                if split.frozen.is_empty() && !hidden.is_empty() {
                    return Err(Error::Config(
                        "mask = \"none\" conditions on nothing, so hidden layers would see no input: set hidden = []"
                            .into(),
                    ));
                }
                if hidden.contains(&0) {
                    return Err(Error::Config("hidden widths must be positive".into()));
                }
                let mut widths = vec![split.frozen.len()];
                widths.extend_from_slice(hidden);
                widths.push(da * per);
                Conditioner::Dense(Mlp::new(&widths, keys.activation, init_scale, rng))
            }
            ConditionerKind::Conv => {
                let shape = keys.conv_shape(dim)?;
                let raw_row = |i, c| transform.raw_row(da, i, c);
                Conditioner::conv(shape, keys.activation, init_scale, &split.frozen, &split.active, per, raw_row, rng)
            }
        };
        Ok(Self { dim, split, net, transform })
    }

    /// The same coupling with its conditioner running in `precision`; the transform and the
    /// log-determinant stay f64 either way.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.net = self.net.with_precision(precision);
        self
    }

    /// The frozen/active split of this coupling.
    pub fn split(&self) -> &Split {
        &self.split
    }

    /// The transform of the active coordinates.
    pub fn transform(&self) -> &T {
        &self.transform
    }

    /// The conditioner outputs for `input` (all `dim` rows).
    pub fn conditioner(&self, input: &Batch) -> Batch {
        self.net.forward(gather(input, &self.split.frozen), false).0
    }

    /// The conditioner's and the transform's records of a pass recorded by a coupling of this
    /// kind: what tests read to keep finite differences away from kinks and saturation.
    pub fn recorded<'t>(&self, tape: &'t Tape) -> Option<(&'t ConditionerTape, &'t T::Record)> {
        tape.get::<CouplingTape<T::Record>>().map(|t| (&t.net, &t.record))
    }

    /// Smallest |pre-activation| of the conditioner in a recorded pass.
    pub fn min_abs_pre_activation(&self, tape: &ConditionerTape) -> Result<f64> {
        self.net.min_abs_pre_activation(tape)
    }

    /// Adds `sign` times the conditioner's input cotangent `g_frozen` into the frozen rows of `g`.
    fn add_frozen(&self, g: &mut Batch, g_frozen: &Batch, sign: f64) {
        let (d, df) = (self.dim, self.split.frozen.len());
        for (col, gf) in g.as_mut_slice().chunks_exact_mut(d).zip(g_frozen.as_slice().chunks_exact(df)) {
            self.split.frozen.iter().zip(gf).for_each(|(&row, v)| col[row] += sign * v);
        }
    }

    /// `check_dim` for `part` of this layer, naming it only when the check fails (passes run
    /// on every shard: no message is built on the way).
    fn check(&self, part: &str, got: usize, want: usize) -> Result<()> {
        if got == want { Ok(()) } else { check_dim(&format!("{} {part}", T::NAME), got, want) }
    }
}

impl<T: CouplingTransform> Bijection for Coupling<T> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn pass(&self, direction: Direction, input: &Batch, record: bool) -> Result<Pass> {
        self.check("input rows", input.nrows(), self.dim)?;
        let (raw, net) = self.net.forward(gather(input, &self.split.frozen), record);
        let mut pass = Pass { out: input.clone(), log_det: vec![0.0; input.ncols()], tape: None };
        let rec = self.transform.apply(Site { direction, active: &self.split.active, record }, raw, &mut pass);
        pass.tape = match (net, rec) {
            (Some(net), Some(record)) => Some(Tape::new(CouplingTape { direction, n: input.ncols(), net, record })),
            _ => None,
        };
        Ok(pass)
    }

    /// The transform's backward step, then the conditioner's, whose input cotangent is added
    /// into the frozen rows.
    fn vjp(&self, direction: Direction, tape: &Tape, g: Cotangent<'_>) -> Result<Batch> {
        let t = tape
            .get::<CouplingTape<T::Record>>()
            .ok_or_else(|| Error::Other(format!("{} given a foreign tape", T::NAME)))?;
        if t.direction != direction {
            return Err(Error::Other(format!("{} tape recorded in the other direction", T::NAME)));
        }
        let n = t.n;
        self.check("cotangent rows", g.out.nrows(), self.dim)?;
        self.check("cotangent columns", g.out.ncols(), n)?;
        self.check("log-det cotangent length", g.log_det.len(), n)?;
        if let Some(gp) = g.params.as_deref() {
            self.check("parameter cotangent length", gp.len(), self.net.n_params())?;
        }
        let active = &self.split.active;
        let mut g_in = g.out.clone();
        let mut g_raw = Batch::zeros(active.len() * self.transform.outputs_per_coordinate(), n);
        let at = Site { direction, active, record: true };
        self.transform.backward(at, &t.record, g.log_det, &mut g_in, &mut g_raw);
        let g_frozen = self.net.backward(&t.net, g_raw, g.params)?;
        if !self.split.frozen.is_empty() {
            self.add_frozen(&mut g_in, &g_frozen, 1.0);
        }
        Ok(g_in)
    }

    /// The score of the active rows from the transform, then the frozen rows' correction
    /// `-C^T g_raw` from one input-only backward step of the conditioner: one pass, no second
    /// pass in the opposite direction.
    fn pass_with_score(
        &self,
        direction: Direction,
        input: &Batch,
        score: &Batch,
        record: bool,
    ) -> Result<(Pass, Batch)> {
        self.check("input rows", input.nrows(), self.dim)?;
        self.check("score rows", score.nrows(), self.dim)?;
        self.check("score columns", score.ncols(), input.ncols())?;
        let n = input.ncols();
        let (raw, net) = self.net.forward(gather(input, &self.split.frozen), true);
        let mut pass = Pass { out: input.clone(), log_det: vec![0.0; n], tape: None };
        let at = Site { direction, active: &self.split.active, record: true };
        let mut s = score.clone();
        let mut g_raw = Batch::zeros(self.split.active.len() * self.transform.outputs_per_coordinate(), n);
        let rec = self.transform.apply_with_score(at, raw, &mut pass, &mut s, &mut g_raw);
        let (Some(net), Some(rec)) = (net, rec) else {
            return Err(Error::Other(format!("{} recorded no tape", T::NAME)));
        };
        if !self.split.frozen.is_empty() {
            let g_frozen = self.net.backward(&net, g_raw, None)?;
            self.add_frozen(&mut s, &g_frozen, -1.0);
        }
        if record {
            pass.tape = Some(Tape::new(CouplingTape { direction, n, net, record: rec }));
        }
        Ok((pass, s))
    }

    fn n_params(&self) -> usize {
        self.net.n_params()
    }

    fn params(&self) -> Vec<f64> {
        self.net.params().to_vec()
    }

    fn load_params(&mut self, params: &[f64]) -> Result<()> {
        self.net.set_params(params);
        Ok(())
    }
}

/// The keys every coupling entry takes (`realnvp`, `spline`): which coordinates each coupling
/// transforms, and the conditioner network.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouplingKeys {
    /// `mlp` (default) or `conv`.
    #[serde(default)]
    pub conditioner: ConditionerKind,
    /// Hidden widths of a dense conditioner (default `[64, 64]`).
    #[serde(default)]
    pub hidden: Option<Vec<usize>>,
    /// Hidden channels of a convolutional conditioner (default `[16, 16, 16]`).
    #[serde(default)]
    pub channels: Option<Vec<usize>>,
    /// Kernel size of a convolutional conditioner, odd (default 3).
    #[serde(default)]
    pub kernel: Option<usize>,
    /// Activation of the hidden layers.
    #[serde(default)]
    pub activation: Activation,
    /// Mask family.
    #[serde(default)]
    pub mask: MaskKind,
    /// Side `L` of the lattice of a checkerboard mask.
    #[serde(default)]
    pub lattice: Option<usize>,
}

impl CouplingKeys {
    /// A dense conditioner with `hidden` widths and `activation`, halves masks.
    pub fn dense(hidden: &[usize], activation: Activation) -> Self {
        CouplingKeys { hidden: Some(hidden.to_vec()), activation, ..Default::default() }
    }

    /// The dense conditioner's hidden widths.
    pub fn hidden(&self) -> &[usize] {
        self.hidden.as_deref().unwrap_or(&DEFAULT_HIDDEN)
    }

    /// The convolutional conditioner's shape on `dim` coordinates, checked.
    fn conv_shape(&self, dim: usize) -> Result<ConvShape<'_>> {
        if self.hidden.is_some() {
            return Err(Error::Config(
                "'hidden' is a key of the dense conditioner; conditioner = \"conv\" takes 'channels' and 'kernel'"
                    .into(),
            ));
        }
        let side = match (self.mask, self.lattice) {
            (MaskKind::Checkerboard, Some(l)) if l.checked_mul(l) == Some(dim) => l,
            _ => {
                return Err(Error::Config(
                    "conditioner = \"conv\" needs mask = \"checkerboard\" with 'lattice' = L (dimension L * L)".into(),
                ));
            }
        };
        let kernel = self.kernel.unwrap_or(3);
        if kernel.is_multiple_of(2) || kernel > side {
            return Err(Error::Config(format!("kernel must be odd and at most the lattice side {side}, got {kernel}")));
        }
        let channels = self.channels.as_deref().unwrap_or(&DEFAULT_CHANNELS);
        if channels.contains(&0) || channels.len() > MAX_CONV_LAYERS {
            return Err(Error::Config(format!(
                "channels must be positive, at most {MAX_CONV_LAYERS} hidden layers, got {channels:?}"
            )));
        }
        Ok(ConvShape { side, kernel, channels })
    }
}

const DEFAULT_HIDDEN: [usize; 2] = [64, 64];
const DEFAULT_CHANNELS: [usize; 3] = [16, 16, 16];
/// Hidden convolutions beyond this are a config mistake, not a network.
const MAX_CONV_LAYERS: usize = 64;

const COUPLING_KEYS: [&str; 7] = ["conditioner", "hidden", "channels", "kernel", "activation", "mask", "lattice"];

/// Parses the config of a coupling entry `what`: the shared [`CouplingKeys`] and the layer's own
/// keys `T`, each refusing keys it does not know.
pub fn parse_coupling_config<T: DeserializeOwned>(what: &str, config: &Value) -> Result<(CouplingKeys, T)> {
    let mut own = match config {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        other => return Err(Error::Config(format!("{what}: expected a table of keys, got {other}"))),
    };
    let shared: Map<String, Value> = COUPLING_KEYS.iter().filter_map(|k| own.remove_entry(*k)).collect();
    Ok((parse_config(what, &Value::Object(shared))?, parse_config(what, &Value::Object(own))?))
}
