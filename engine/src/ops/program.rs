//! Blockwise programs: the op behind sources (random, full, arange, linspace), elementwise math and
//! partial reductions. A [`Program`] is a small SSA expression over leaves — input chunks or generated
//! values — evaluated over a chunk of its *domain*, optionally reduced at the end. Output block `b` reads
//! block `b` of every input (block 0 on axes where the input is broadcast), which is what lets the
//! optimizer fuse chains of them into one task per chunk.

use smallvec::SmallVec;

use crate::graph::{ArrayMeta, Block, Tokenizer};
use crate::meta::{Chunks, DType, Scalar};
use crate::ops::elementwise::ElemFunc;
use crate::ops::reduce::{ReduceSink, Reduction, check_axes, partial_chunks};
use crate::ops::{Derived, InputMeta, RuleResult};

/// Which distribution a random source draws, with its parameters. Float parameters are kept as bits
/// ([`ParamF64`]) so that a distribution is `Eq + Hash` and its token is exact. Location and scale
/// (`normal(loc, scale)`, `gamma(shape, scale)`, `exponential(scale)`) are applied by elementwise
/// math on the standard draw, so they fuse like any other arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// Uniform on [0, 1).
    Uniform,
    /// Standard normal.
    StandardNormal,
    /// Integers in `[low, high]` (both inclusive), unbiased.
    Integers { low: i64, high: i64 },
    /// Exponential with scale 1.
    StandardExponential,
    /// Gamma with the given shape and scale 1.
    StandardGamma { shape: ParamF64 },
    /// Beta(a, b).
    Beta { a: ParamF64, b: ParamF64 },
    /// Poisson with mean `lam`.
    Poisson { lam: ParamF64 },
    /// Binomial: successes in `n` trials of probability `p`.
    Binomial { n: u64, p: ParamF64 },
    /// A random permutation of `0..n`: element `i` (for `i < n`; a leaf holds at most `n`) is the
    /// image of `i`, so the first `k` elements are a sample of `k` without replacement.
    Permutation { n: u64 },
}

/// An f64 parameter held by its bits (so that it can be hashed and compared exactly).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParamF64(u64);

impl ParamF64 {
    pub fn new(v: f64) -> Self {
        Self(v.to_bits())
    }
    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
    pub fn bits(self) -> u64 {
        self.0
    }
}

impl std::fmt::Debug for ParamF64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// The largest Poisson mean accepted: draws stay far inside int64 and the rejection sampler's
/// constants stay accurate.
pub const POISSON_MAX_LAM: f64 = 1e15;

impl Distribution {
    /// The distribution's stable code: its stream number under a seed (so that distributions drawn
    /// with one seed are independent) and its number on the wire.
    pub fn code(self) -> u64 {
        match self {
            Distribution::Uniform => 0,
            Distribution::StandardNormal => 1,
            Distribution::Integers { .. } => 2,
            Distribution::StandardExponential => 3,
            Distribution::StandardGamma { .. } => 4,
            Distribution::Beta { .. } => 5,
            Distribution::Poisson { .. } => 6,
            Distribution::Binomial { .. } => 7,
            Distribution::Permutation { .. } => 8,
        }
    }

    /// numpy's name of the distribution.
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Uniform => "random",
            Distribution::StandardNormal => "standard_normal",
            Distribution::Integers { .. } => "integers",
            Distribution::StandardExponential => "standard_exponential",
            Distribution::StandardGamma { .. } => "standard_gamma",
            Distribution::Beta { .. } => "beta",
            Distribution::Poisson { .. } => "poisson",
            Distribution::Binomial { .. } => "binomial",
            Distribution::Permutation { .. } => "permutation",
        }
    }

    /// The parameters as they travel: two words (unused ones zero).
    pub fn params(self) -> [u64; 2] {
        match self {
            Distribution::Uniform
            | Distribution::StandardNormal
            | Distribution::StandardExponential => [0, 0],
            Distribution::Integers { low, high } => [low as u64, high as u64],
            Distribution::StandardGamma { shape } => [shape.bits(), 0],
            Distribution::Beta { a, b } => [a.bits(), b.bits()],
            Distribution::Poisson { lam } => [lam.bits(), 0],
            Distribution::Binomial { n, p } => [n, p.bits()],
            Distribution::Permutation { n } => [n, 0],
        }
    }

    /// The distribution with this code and these parameters (the inverse of [`Self::code`] and
    /// [`Self::params`]); the parameters are checked by [`Self::check`].
    pub fn from_code(code: u64, params: [u64; 2]) -> Option<Self> {
        let f = |w: u64| ParamF64(w);
        Some(match code {
            0 => Distribution::Uniform,
            1 => Distribution::StandardNormal,
            2 => Distribution::Integers {
                low: params[0] as i64,
                high: params[1] as i64,
            },
            3 => Distribution::StandardExponential,
            4 => Distribution::StandardGamma {
                shape: f(params[0]),
            },
            5 => Distribution::Beta {
                a: f(params[0]),
                b: f(params[1]),
            },
            6 => Distribution::Poisson { lam: f(params[0]) },
            7 => Distribution::Binomial {
                n: params[0],
                p: f(params[1]),
            },
            8 => Distribution::Permutation { n: params[0] },
            _ => return None,
        })
    }

    /// Whether the distribution draws values of `dtype`: uniform and normal in f64 or f32, the other
    /// continuous ones in f64, the discrete ones in int64 (numpy's defaults).
    pub fn dtype_ok(self, dtype: DType) -> bool {
        match self {
            Distribution::Uniform | Distribution::StandardNormal => dtype.is_float(),
            Distribution::StandardExponential
            | Distribution::StandardGamma { .. }
            | Distribution::Beta { .. } => dtype == DType::F64,
            Distribution::Integers { .. }
            | Distribution::Poisson { .. }
            | Distribution::Binomial { .. }
            | Distribution::Permutation { .. } => dtype == DType::I64,
        }
    }

    /// Whether the parameters are in the distribution's domain (numpy's conditions), with a message
    /// naming the parameter when not.
    pub fn check(self) -> Result<(), String> {
        let positive = |name: &str, v: ParamF64| {
            let v = v.get();
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!(
                    "{}: {name} must be finite and > 0, not {v}",
                    self.name()
                ))
            }
        };
        match self {
            Distribution::Integers { low, high } if low > high => Err(format!(
                "integers: low {low} must be below high {}",
                high as i128 + 1
            )),
            Distribution::StandardGamma { shape } => positive("shape", shape),
            Distribution::Beta { a, b } => positive("a", a).and(positive("b", b)),
            Distribution::Poisson { lam } => {
                let v = lam.get();
                if (0.0..=POISSON_MAX_LAM).contains(&v) {
                    Ok(())
                } else {
                    Err(format!(
                        "poisson: lam must be in [0, {POISSON_MAX_LAM:e}], not {v}"
                    ))
                }
            }
            Distribution::Binomial { n, p } => {
                let v = p.get();
                if !(0.0..=1.0).contains(&v) {
                    Err(format!("binomial: p must be in [0, 1], not {v}"))
                } else if n > i64::MAX as u64 {
                    Err(format!("binomial: n {n} does not fit int64"))
                } else {
                    Ok(())
                }
            }
            Distribution::Permutation { n } if n > i64::MAX as u64 => {
                Err(format!("permutation: n {n} does not fit int64"))
            }
            _ => Ok(()),
        }
    }
}

/// Where a leaf's values come from.
#[derive(Clone, Debug, PartialEq)]
pub enum LeafKind {
    /// The chunk of the layer's `n`-th input.
    Input(usize),
    /// Counter-based random values: element `i` (flat C-order index in the leaf's shape) depends only
    /// on the seed and `i`.
    Random { seed: u64, dist: Distribution },
    /// The same value everywhere.
    Full(Scalar),
    /// `start + i·step` at flat index `i`.
    Arange { start: f64, step: f64 },
    /// numpy's linspace: `start + i·step`, and exactly `stop` at the last index when `endpoint`.
    Linspace {
        start: f64,
        stop: f64,
        step: f64,
        num: u64,
        endpoint: bool,
    },
}

/// A value the program reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    pub kind: LeafKind,
    /// The leaf's shape, padded on the left with 1s to the domain's rank; a 1 where the domain is
    /// longer means the leaf is broadcast along that axis.
    pub shape: Vec<usize>,
    /// The leaf array's own rank (`shape` without the padding).
    pub rank: usize,
    pub dtype: DType,
    /// Generated leaves only: empty for values in the leaf array's own axis order; otherwise domain
    /// axis `d` runs along axis `axes[d]` of the generated array (whose shape is `shape` permuted
    /// back), so a transposed source is generated in place instead of copied. A permuted leaf has
    /// `rank` equal to the domain's.
    pub axes: Vec<usize>,
    /// Generated leaves only: `None` for a whole generated array; otherwise the leaf array is a
    /// strided window of a larger generated array, so a slice of a source generates only the
    /// elements it keeps.
    pub window: Option<LeafWindow>,
}

/// A strided window of a generated array: element `j` (per axis of the leaf array's own order) is
/// element `start + step·j` of the generated array of shape `source`, whose flat C-order index is
/// what the values depend on. Slicing a source and generating the window give the same bits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeafWindow {
    /// Shape of the whole generated array, in the leaf array's own axis order.
    pub source: Vec<usize>,
    /// First element taken, per axis.
    pub start: Vec<usize>,
    /// Distance between taken elements, per axis (at least 1).
    pub step: Vec<usize>,
}

impl Leaf {
    /// Number of elements of the generated array the leaf's values are indexed in (the window's
    /// source when there is one).
    pub fn generated_len(&self) -> usize {
        match &self.window {
            Some(w) => w.source.iter().product(),
            None => self.shape.iter().product(),
        }
    }

    /// The leaf array's own shape (its axis order, without the padding).
    pub fn own_shape(&self) -> Vec<usize> {
        if self.axes.is_empty() {
            self.shape[self.shape.len() - self.rank..].to_vec()
        } else {
            let mut own = vec![0; self.shape.len()];
            for (d, &a) in self.axes.iter().enumerate() {
                own[a] = self.shape[d];
            }
            own
        }
    }
}

/// One step: apply `func` to earlier values (leaves are values `0..leaves.len()`, then instructions).
#[derive(Clone, Debug, PartialEq)]
pub struct Instr {
    pub func: ElemFunc,
    pub args: SmallVec<[u32; 3]>,
    pub dtype: DType,
}

/// A blockwise program over a chunked domain.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// The chunk grid the program is evaluated over (its output's, unless it reduces).
    pub domain: Chunks,
    pub leaves: Vec<Leaf>,
    pub instrs: Vec<Instr>,
    /// The value the program produces.
    pub output: u32,
    pub reduce: Option<ReduceSink>,
}

impl Program {
    /// A program with one generated leaf: a source array.
    pub fn source(kind: LeafKind, chunks: Chunks, dtype: DType) -> Self {
        Program {
            leaves: vec![Leaf {
                kind,
                shape: chunks.shape(),
                rank: chunks.ndim(),
                dtype,
                axes: Vec::new(),
                window: None,
            }],
            domain: chunks,
            instrs: Vec::new(),
            output: 0,
            reduce: None,
        }
    }

    /// dtype of a value.
    pub fn value_dtype(&self, v: u32) -> DType {
        let v = v as usize;
        if v < self.leaves.len() {
            self.leaves[v].dtype
        } else {
            self.instrs[v - self.leaves.len()].dtype
        }
    }

    /// Number of layer inputs the program reads.
    pub fn num_inputs(&self) -> usize {
        self.leaves
            .iter()
            .filter_map(|l| match l.kind {
                LeafKind::Input(i) => Some(i + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Output block `block` reads, for every input leaf, the same block (0 where it is broadcast).
    pub fn deps(&self, block: &[u32], out: &mut Vec<(usize, Block)>) {
        let mut leaves: SmallVec<[(usize, &Leaf); 4]> = self
            .leaves
            .iter()
            .filter_map(|l| match l.kind {
                LeafKind::Input(i) => Some((i, l)),
                _ => None,
            })
            .collect();
        leaves.sort_by_key(|(i, _)| *i);
        let domain_shape = self.domain.shape();
        for (i, leaf) in leaves {
            let b: Block = block
                .iter()
                .zip(&leaf.shape)
                .zip(&domain_shape)
                .map(|((&b, &l), &d)| if l == 1 && d != 1 { 0 } else { b })
                .collect();
            // The leaf's own rank may be smaller than the domain's: drop the padding.
            let b: Block = b[b.len() - leaf.rank..].iter().copied().collect();
            out.push((i, b));
        }
    }

    pub(crate) fn tokenize(&self, t: &mut Tokenizer) {
        for leaf in &self.leaves {
            t.usizes(&leaf.shape);
            t.u64(leaf.rank as u64);
            t.dtype(leaf.dtype);
            match &leaf.kind {
                LeafKind::Input(i) => {
                    t.u64(1);
                    t.u64(*i as u64);
                }
                LeafKind::Random { seed, dist } => {
                    t.u64(2);
                    t.u64(*seed);
                    t.u64(dist.code());
                    // Nothing more for the parameter-free ones, so their tokens are what they were.
                    if dist.params() != [0, 0] {
                        t.u64(dist.params()[0]);
                        t.u64(dist.params()[1]);
                    }
                }
                LeafKind::Full(s) => {
                    t.u64(3);
                    t.bytes(&s.token_bytes());
                }
                LeafKind::Arange { start, step } => {
                    t.u64(4);
                    t.f64(*start);
                    t.f64(*step);
                }
                LeafKind::Linspace {
                    start,
                    stop,
                    step,
                    num,
                    endpoint,
                } => {
                    t.u64(5);
                    t.f64(*start);
                    t.f64(*stop);
                    t.f64(*step);
                    t.u64(*num);
                    t.u64(*endpoint as u64);
                }
            }
            // Nothing for unpermuted leaves, so their tokens are what they always were.
            if !leaf.axes.is_empty() {
                t.u64(6);
                t.usizes(&leaf.axes);
            }
            if let Some(w) = &leaf.window {
                t.u64(7);
                t.usizes(&w.source);
                t.usizes(&w.start);
                t.usizes(&w.step);
            }
        }
        for ins in &self.instrs {
            t.u64(ins.func.code());
            t.dtype(ins.dtype);
            t.u64(ins.args.len() as u64);
            for &a in &ins.args {
                t.u64(a as u64);
            }
        }
        t.u64(self.output as u64);
        for axis in self.domain.sizes() {
            t.usizes(axis);
        }
        if let Some(r) = &self.reduce {
            t.u64(r.reduction.code() as u64);
            t.usizes(&r.axes);
        }
    }

    pub(crate) fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .leaves
            .iter()
            .filter_map(|l| {
                let name = match &l.kind {
                    LeafKind::Input(_) => return None,
                    LeafKind::Random { dist, .. } => match dist {
                        Distribution::Uniform => "random-uniform".to_string(),
                        Distribution::StandardNormal => "random-standardnormal".to_string(),
                        d => format!("random-{}", d.name()),
                    },
                    LeafKind::Full(s) => format!("full({s})"),
                    LeafKind::Arange { .. } => "arange".into(),
                    LeafKind::Linspace { .. } => "linspace".into(),
                };
                let name = if l.axes.is_empty() {
                    name
                } else {
                    format!("{name}{:?}", l.axes)
                };
                Some(match &l.window {
                    Some(w) => format!(
                        "{name}[window {:?}+{:?}·i of {:?}]",
                        w.start, w.step, w.source
                    ),
                    None => name,
                })
            })
            .collect();
        parts.extend(self.instrs.iter().map(|i| i.func.name().to_string()));
        if let Some(r) = &self.reduce {
            parts.push(format!("{}-partial", r.reduction.name()));
        }
        parts.join(" → ")
    }
}

impl Program {
    /// The program's domain (or one partial per chunk of it, when it reduces) and the dtype of its
    /// output (or of its reduction), after checking its leaves against its inputs and its
    /// instructions against the typing rules.
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let p = self;
        p.domain
            .well_formed()
            .map_err(|r| format!("program domain {}: {r}", p.domain))?;
        let nd = p.domain.ndim();
        let full = p.domain.shape();
        let mut read_by: Vec<Option<usize>> = vec![None; inputs.len()];
        for (li, leaf) in p.leaves.iter().enumerate() {
            if leaf.shape.len() != nd || leaf.rank > nd {
                return Err(format!(
                    "leaf {li} has shape {:?} and rank {}, but the domain has rank {nd}",
                    leaf.shape, leaf.rank
                ));
            }
            let pad = nd - leaf.rank;
            if leaf.shape[..pad].iter().any(|&d| d != 1)
                || leaf
                    .shape
                    .iter()
                    .zip(&full)
                    .any(|(&l, &d)| l != 1 && l != d)
            {
                return Err(format!(
                    "leaf {li} of shape {:?} and rank {} does not broadcast to the domain shape {full:?}",
                    leaf.shape, leaf.rank
                ));
            }
            if !leaf.axes.is_empty() {
                let mut seen = vec![false; nd];
                let permutation = leaf.axes.len() == nd
                    && leaf.rank == nd
                    && leaf
                        .axes
                        .iter()
                        .all(|&a| a < nd && !std::mem::replace(&mut seen[a], true));
                if !permutation || matches!(leaf.kind, LeafKind::Input(_)) {
                    return Err(format!(
                        "leaf {li} has axes {:?}: only a generated leaf of the domain's rank {nd} may \
                     permute its axes, and only with a permutation of 0..{nd}",
                        leaf.axes
                    ));
                }
            }
            if let Some(w) = &leaf.window {
                let own = leaf.own_shape();
                let fits = w.source.len() == own.len()
                    && w.start.len() == own.len()
                    && w.step.len() == own.len()
                    && (0..own.len()).all(|a| {
                        w.step[a] >= 1
                            && (own[a] == 0
                                || w.start[a]
                                    .checked_add(w.step[a].saturating_mul(own[a] - 1))
                                    .is_some_and(|last| last < w.source[a]))
                    });
                if matches!(leaf.kind, LeafKind::Input(_) | LeafKind::Full(_)) || !fits {
                    return Err(format!(
                        "leaf {li} has window start {:?} step {:?} in {:?}: only a generated leaf may \
                         have a window, with steps ≥ 1 and every element of its shape {own:?} inside",
                        w.start, w.step, w.source
                    ));
                }
            }
            match &leaf.kind {
                LeafKind::Input(i) => {
                    let Some(input) = inputs.get(*i) else {
                        return Err(format!(
                            "leaf {li} reads input {i}, but the layer has {} inputs",
                            inputs.len()
                        ));
                    };
                    if let Some(other) = read_by[*i].replace(li) {
                        return Err(format!(
                            "input {i} is read by both leaf {other} and leaf {li}"
                        ));
                    }
                    let m = input.meta;
                    if m.dtype != leaf.dtype {
                        return Err(format!(
                            "leaf {li} reads input {} of dtype {} as {}",
                            input.id, m.dtype, leaf.dtype
                        ));
                    }
                    if m.shape().as_slice() != &leaf.shape[pad..] {
                        return Err(format!(
                            "leaf {li} has shape {:?} and rank {}, but its input {} has shape {:?}",
                            leaf.shape,
                            leaf.rank,
                            input.id,
                            m.shape()
                        ));
                    }
                    for (a, (&l, &d)) in leaf.shape.iter().zip(&full).enumerate().skip(pad) {
                        let broadcast = l == 1 && d != 1;
                        if !broadcast && m.chunks.axis(a - pad) != p.domain.axis(a) {
                            return Err(format!(
                                "input {} is chunked {:?} along its axis {}, but the domain {:?} along axis {a}",
                                input.id,
                                m.chunks.axis(a - pad),
                                a - pad,
                                p.domain.axis(a)
                            ));
                        }
                    }
                }
                LeafKind::Full(s) if s.dtype() != leaf.dtype => {
                    return Err(format!(
                        "leaf {li} is the {} constant {s} but has dtype {}",
                        s.dtype(),
                        leaf.dtype
                    ));
                }
                LeafKind::Random { dist, .. } if !dist.dtype_ok(leaf.dtype) => {
                    return Err(format!(
                        "leaf {li} draws {} values but has dtype {}",
                        dist.name(),
                        leaf.dtype
                    ));
                }
                LeafKind::Random { dist, .. } if dist.check().is_err() => {
                    return Err(format!("leaf {li}: {}", dist.check().unwrap_err()));
                }
                LeafKind::Random {
                    dist: Distribution::Permutation { n },
                    ..
                } if leaf.generated_len() as u64 > *n => {
                    return Err(format!(
                        "leaf {li} holds {} elements of a permutation of {n}",
                        leaf.generated_len()
                    ));
                }
                LeafKind::Linspace { .. } if !leaf.dtype.is_float() => {
                    return Err(format!(
                        "leaf {li} generates floats but has dtype {}",
                        leaf.dtype
                    ));
                }
                // Generated ranges are int64 or float; the other integer types are built from an
                // int64 range (`creation::arange`).
                LeafKind::Arange { .. }
                    if matches!(
                        leaf.dtype,
                        DType::Bool | DType::C128 | DType::I32 | DType::U8 | DType::U64
                    ) =>
                {
                    return Err(format!("leaf {li} is an arange of dtype {}", leaf.dtype));
                }
                LeafKind::Arange { start, step } if leaf.dtype == DType::I64 => {
                    // The kernel computes `start + i·step` in int64 for every flat index `i` of the leaf;
                    // the largest `i` bounds both the product and the sum.
                    let n: usize = leaf.generated_len();
                    let last = (n.max(1) - 1) as i128 * (*step as i64) as i128;
                    let end = (*start as i64) as i128 + last;
                    if i64::try_from(last).is_err() || i64::try_from(end).is_err() {
                        return Err(format!(
                            "leaf {li}: an int64 arange from {start} by {step} over {n} elements overflows"
                        ));
                    }
                }
                _ => {}
            }
        }
        if let Some(i) = read_by.iter().position(Option::is_none) {
            return Err(format!(
                "input {i} ({}) is read by no leaf of the program",
                inputs[i].id
            ));
        }
        let nleaves = p.leaves.len();
        for (k, ins) in p.instrs.iter().enumerate() {
            let defined = nleaves + k;
            if let Some(&a) = ins.args.iter().find(|&&a| a as usize >= defined) {
                return Err(format!(
                    "instruction {k} ({}) reads value {a}, which is not defined before it (values 0..{defined})",
                    ins.func.name()
                ));
            }
            let args: Vec<DType> = ins.args.iter().map(|&a| p.value_dtype(a)).collect();
            ins.func
                .check_typing(&args, ins.dtype)
                .map_err(|r| format!("instruction {k} ({}): {r}", ins.func.name()))?;
        }
        let nvalues = nleaves + p.instrs.len();
        if p.output as usize >= nvalues {
            return Err(format!(
                "the program's output is value {}, but it defines {nvalues}",
                p.output
            ));
        }
        let out_dtype = p.value_dtype(p.output);
        match &p.reduce {
            None => Ok(Derived::new(
                p.domain.clone(),
                out_dtype,
                "the program's domain",
                "the program's output",
            )),
            Some(r) => {
                check_axes(&r.axes, nd, "reduced axes")?;
                if out_dtype.is_complex() {
                    // `Array::sum`/`mean` reduce the real and imaginary parts separately; the
                    // reduction kernels themselves only read real values.
                    return Err(format!(
                        "{} reads real values, but the program computes {out_dtype}",
                        r.reduction.name()
                    ));
                }
                if r.domain_shape != full {
                    return Err(format!(
                        "the reduction's domain shape {:?} is not the domain's {full:?}",
                        r.domain_shape
                    ));
                }
                if matches!(r.reduction, Reduction::Any | Reduction::All)
                    && out_dtype != DType::Bool
                {
                    return Err(format!(
                        "{} reduces bool values, but the program computes {out_dtype}",
                        r.reduction.name()
                    ));
                }
                let mut d = Derived::new(
                    partial_chunks(&p.domain, &r.axes),
                    r.reduction.result_dtype(out_dtype),
                    "one partial per chunk of the domain",
                    "",
                );
                d.dtype_rule = format!("{} of {out_dtype}", r.reduction.name());
                Ok(d)
            }
        }
    }
}

/// Metadata of what a program produces when it does not reduce.
pub fn program_meta(p: &Program) -> ArrayMeta {
    ArrayMeta {
        chunks: p.domain.clone(),
        dtype: p.value_dtype(p.output),
    }
}
