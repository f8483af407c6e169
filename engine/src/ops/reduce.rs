//! Reductions as a tree: a blockwise partial per chunk (a [`ReduceSink`] at the end of a blockwise
//! program), then [`ReduceCombine`] layers that merge groups of at most `split_every` partials along the
//! reduced axes, the last of which finalizes (divides, takes the square root, drops axes). Each
//! reduction is a row of `reduce_table!` (name, wire code, result-dtype rule, methods).

use crate::error::{Error, Result};
use crate::graph::{ArrayMeta, Block, Layer};
use crate::meta::{Chunks, DType};
use crate::ops::{Derived, Holds, InputMeta, RuleResult, one_input};

/// How a reduction's result dtype follows from its input's, as numpy's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceTyping {
    /// Bool and the signed integers accumulate in int64, the unsigned ones in uint64 (numpy's
    /// platform integers); floats keep their dtype (sum, prod).
    Widen,
    /// Keeps the dtype (min, max).
    Keep,
    /// Reads its input as bool and gives bool (any, all).
    Bool,
    /// Float64, or float32 for float32 input (mean, var, std).
    Float,
    /// An int64 index (argmin, argmax).
    Index,
}

/// The reduction table: one row per reduction —
/// `Variant = wire code, "numpy name", typing, needs elements, Array methods` — expanded by
/// `$callback`. The methods are `(all, one axis, with options)`, or `-` for reductions written by
/// hand (var and std take `ddof`). The enum, its names, typing and wire codes are generated here;
/// the methods in `array::reduction`; the kernel is an arm of the exhaustive matches in
/// `kernels::reduce`. Wire codes are the discriminants: the compiler refuses a duplicate.
macro_rules! reduce_table {
    ($callback:ident ( $($args:tt)* )) => {
        $callback! {
            ( $($args)* )
            /// Sum of the elements (bool and int64 give int64).
            Sum = 0, "sum", Widen, false, (sum, sum_axis, sum_with);
            /// Product of the elements.
            Prod = 1, "prod", Widen, false, (prod, prod_axis, prod_with);
            /// Smallest element (NaN if any is NaN).
            Min = 2, "min", Keep, true, (min, min_axis, min_with);
            /// Largest element (NaN if any is NaN).
            Max = 3, "max", Keep, true, (max, max_axis, max_with);
            /// Whether any element is true (non-zero).
            Any = 4, "any", Bool, false, (any, any_axis, any_with);
            /// Whether all elements are true (non-zero).
            All = 5, "all", Bool, false, (all, all_axis, all_with);
            /// Arithmetic mean (float64, or float32 for float32 input).
            Mean = 6, "mean", Float, false, (mean, mean_axis, mean_with);
            /// Variance; the divisor is `n - ddof`, given when finalizing.
            Var = 7, "var", Float, false, -;
            /// Standard deviation; `sqrt` of [`Reduction::Var`].
            Std = 8, "std", Float, false, -;
            /// Flat index of the smallest element (the first one on ties or NaN).
            ArgMin = 9, "argmin", Index, true, (argmin, argmin_axis, argmin_with);
            /// Flat index of the largest element (the first one on ties or NaN).
            ArgMax = 10, "argmax", Index, true, (argmax, argmax_axis, argmax_with);
        }
    };
}
pub(crate) use reduce_table;

macro_rules! define_reductions {
    (() $($(#[$doc:meta])* $v:ident = $code:literal, $name:literal, $typing:ident,
          $needs:literal, $methods:tt;)*) => {
        /// What a reduction computes (rows of `reduce_table!`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reduction {
            $($(#[$doc])* $v = $code,)*
        }

        impl Reduction {
            /// Every reduction, in table order.
            pub const ALL: &[Reduction] = &[$(Reduction::$v),*];

            /// numpy's name for the reduction.
            pub fn name(self) -> &'static str {
                match self {
                    $(Reduction::$v => $name,)*
                }
            }

            /// How the result dtype follows from the input's.
            pub fn typing(self) -> ReduceTyping {
                match self {
                    $(Reduction::$v => ReduceTyping::$typing,)*
                }
            }

            /// Whether the reduction needs at least one element (numpy raises for an empty min,
            /// max, argmin).
            pub fn needs_elements(self) -> bool {
                match self {
                    $(Reduction::$v => $needs,)*
                }
            }

            /// The reduction's stable code on the wire (and in tokens).
            pub fn code(self) -> i32 {
                self as i32
            }

            /// The reduction with wire code `code`, if there is one.
            pub fn from_code(code: i32) -> Option<Self> {
                match code {
                    $($code => Some(Reduction::$v),)*
                    _ => None,
                }
            }
        }
    };
}

reduce_table!(define_reductions());

impl Reduction {
    /// numpy's result dtype for an input of `dtype`.
    pub fn result_dtype(self, dtype: DType) -> DType {
        match self.typing() {
            ReduceTyping::Widen => match dtype {
                DType::Bool | DType::I32 | DType::I64 => DType::I64,
                DType::U8 | DType::U64 => DType::U64,
                d => d,
            },
            ReduceTyping::Keep => dtype,
            ReduceTyping::Bool => DType::Bool,
            ReduceTyping::Float => dtype.float_result(),
            ReduceTyping::Index => DType::I64,
        }
    }

    /// The dtype the reduction reads its input as.
    pub fn input_dtype(self, dtype: DType) -> DType {
        match self.typing() {
            ReduceTyping::Bool => DType::Bool,
            _ => dtype,
        }
    }

    /// Whether the reduction gives indices.
    pub fn is_arg(self) -> bool {
        self.typing() == ReduceTyping::Index
    }
}

/// The partial reduction at the end of a blockwise program: reduce the program's output over `axes`
/// of its domain, keeping them as length 1.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceSink {
    pub reduction: Reduction,
    /// Reduced axes of the program's domain, sorted.
    pub axes: Vec<usize>,
    /// The domain's full shape: argmin and argmax report indices in it.
    pub domain_shape: Vec<usize>,
}

/// How the last combine step finalizes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Finalize {
    pub keepdims: bool,
    pub ddof: f64,
    /// Result dtype.
    pub dtype: DType,
}

/// Merges groups of partials along the reduced axes.
///
/// The input is a grid of partials, one per chunk along the reduced axes (each of length 1 there). Output
/// block `b` merges input blocks `b[a]·group[a] .. (b[a]+1)·group[a]` along every reduced axis `a`. With
/// `finalize`, the group covers the whole axis and the result is the reduction's value.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceCombine {
    pub reduction: Reduction,
    pub axes: Vec<usize>,
    /// Group size along each reduced axis (same order as `axes`).
    pub group: Vec<usize>,
    pub finalize: Option<Finalize>,
}

impl ReduceCombine {
    /// Output chunk grid for an input grid of partials (`input` has 1-long chunks on reduced axes).
    pub fn output_chunks(&self, input: &Chunks) -> Chunks {
        let mut sizes = Vec::with_capacity(input.ndim());
        for axis in 0..input.ndim() {
            match self.axes.iter().position(|&a| a == axis) {
                None => sizes.push(input.axis(axis).to_vec()),
                Some(_) if self.finalize.is_some() => {
                    if self.finalize.is_some_and(|f| f.keepdims) {
                        sizes.push(vec![1]);
                    }
                }
                Some(i) => {
                    let n = input.axis(axis).len().div_ceil(self.group[i]);
                    sizes.push(vec![1; n]);
                }
            }
        }
        Chunks::from_sizes(sizes)
    }

    /// Input blocks merged into output block `block`, in C order.
    pub fn deps(&self, input: &ArrayMeta, block: &[u32], out: &mut Vec<(usize, Block)>) {
        let nb = input.chunks.numblocks();
        let ndim = nb.len();
        // Per input axis: the range of input blocks read.
        let mut ranges: Vec<(u32, u32)> = Vec::with_capacity(ndim);
        let mut out_axis = 0;
        let keep = self.finalize.is_none_or(|f| f.keepdims);
        for (axis, &n) in nb.iter().enumerate() {
            match self.axes.iter().position(|&a| a == axis) {
                None => {
                    ranges.push((block[out_axis], block[out_axis] + 1));
                    out_axis += 1;
                }
                Some(i) => {
                    if self.finalize.is_some() {
                        ranges.push((0, n as u32));
                        if keep {
                            out_axis += 1;
                        }
                    } else {
                        let g = self.group[i] as u32;
                        let start = block[out_axis] * g;
                        ranges.push((start, (start + g).min(n as u32)));
                        out_axis += 1;
                    }
                }
            }
        }
        let mut idx: Block = ranges.iter().map(|r| r.0).collect();
        if ranges.iter().any(|r| r.0 >= r.1) {
            return;
        }
        loop {
            out.push((0, idx.clone()));
            let mut axis = ndim;
            loop {
                if axis == 0 {
                    return;
                }
                axis -= 1;
                idx[axis] += 1;
                if idx[axis] < ranges[axis].1 {
                    break;
                }
                idx[axis] = ranges[axis].0;
            }
        }
    }
}

impl ReduceCombine {
    /// Merging its input's partials: the input must hold partials of this reduction over these
    /// axes (or matmul's products, for a sum over axis 2), 1 long along them.
    pub(crate) fn output_meta(&self, inputs: &[InputMeta<'_>]) -> RuleResult<Derived> {
        let c = self;
        let input = one_input(inputs, "a combine step")?;
        let m = input.meta;
        check_axes(&c.axes, m.ndim(), "combined axes")?;
        if c.group.len() != c.axes.len() || c.group.contains(&0) {
            return Err(format!(
                "group sizes {:?} must be at least 1, one per combined axis {:?}",
                c.group, c.axes
            ));
        }
        match &input.holds {
            Holds::Partial { reduction, axes } if *reduction == c.reduction && *axes == c.axes => {}
            Holds::Products if c.reduction == Reduction::Sum && c.axes == [2] => {}
            Holds::Partial { reduction, axes } => {
                return Err(format!(
                    "combines {} over {:?}, but its input {} holds {} partials over {axes:?}",
                    c.reduction.name(),
                    c.axes,
                    input.id,
                    reduction.name()
                ));
            }
            _ => {
                return Err(format!(
                    "combines {} over {:?}, but its input {} holds no partials of that",
                    c.reduction.name(),
                    c.axes,
                    input.id
                ));
            }
        }
        if let Some(&a) = c
            .axes
            .iter()
            .find(|&&a| m.chunks.axis(a).iter().any(|&s| s != 1))
        {
            return Err(format!(
                "its input {} is chunked {:?} along combined axis {a}, where partials are 1 long",
                input.id,
                m.chunks.axis(a)
            ));
        }
        if let Some(f) = c.finalize
            && f.dtype != m.dtype
        {
            return Err(format!(
                "finalizes to {}, but its input {} holds partials of dtype {}",
                f.dtype, input.id, m.dtype
            ));
        }
        Ok(Derived::new(
            c.output_chunks(&m.chunks),
            m.dtype,
            "combining its input",
            "keeping its input's dtype",
        ))
    }
}

/// Axes of an `ndim` array, strictly increasing.
pub(crate) fn check_axes(axes: &[usize], ndim: usize, what: &str) -> RuleResult<()> {
    if let Some(&a) = axes.iter().find(|&&a| a >= ndim) {
        return Err(format!(
            "{what} {axes:?} include axis {a}, out of range for rank {ndim}"
        ));
    }
    if axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("{what} {axes:?} are not sorted and distinct"));
    }
    Ok(())
}

/// Normalizes user axes (negative counts from the end) to sorted, unique axes of an `ndim` array.
pub fn normalize_axes(axes: &[isize], ndim: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let axis = normalize_axis(a, ndim)?;
        if out.contains(&axis) {
            return Err(Error::DuplicateAxis {
                axis,
                axes: axes.to_vec(),
            });
        }
        out.push(axis);
    }
    out.sort_unstable();
    Ok(out)
}

/// Normalizes one axis.
pub fn normalize_axis(axis: isize, ndim: usize) -> Result<usize> {
    let n = ndim as isize;
    if axis < -n || axis >= n {
        return Err(Error::AxisOutOfBounds { axis, ndim });
    }
    Ok(if axis < 0 { axis + n } else { axis } as usize)
}

/// Layers of a tree reduction over `axes` of `input` (a layer whose chunks are partials, one per
/// chunk along the reduced axes): combine layers until every reduced axis has at most its group size of
/// blocks, then the finalizing layer. Returns the ops with their output chunk grids, in order.
pub fn tree_levels(
    partial: &Chunks,
    reduction: Reduction,
    axes: &[usize],
    split_every: usize,
    finalize: Finalize,
) -> Vec<(ReduceCombine, Chunks)> {
    // Like dask, an integer split_every is shared among the reduced axes.
    let per_axis = if axes.is_empty() {
        split_every
    } else {
        ((split_every as f64).powf(1.0 / axes.len() as f64).floor() as usize).max(2)
    };
    let group = vec![per_axis; axes.len()];
    let mut levels = Vec::new();
    let mut current = partial.clone();
    while axes.iter().any(|&a| current.axis(a).len() > per_axis) {
        let op = ReduceCombine {
            reduction,
            axes: axes.to_vec(),
            group: group.clone(),
            finalize: None,
        };
        current = op.output_chunks(&current);
        levels.push((op.clone(), current.clone()));
    }
    let op = ReduceCombine {
        reduction,
        axes: axes.to_vec(),
        group: axes.iter().map(|&a| current.axis(a).len()).collect(),
        finalize: Some(finalize),
    };
    let out = op.output_chunks(&current);
    levels.push((op, out));
    levels
}

/// Chunk grid of the partials of `domain` reduced over `axes`: one 1-long chunk per chunk on reduced
/// axes.
pub fn partial_chunks(domain: &Chunks, axes: &[usize]) -> Chunks {
    Chunks::from_sizes(
        (0..domain.ndim())
            .map(|a| {
                if axes.contains(&a) {
                    vec![1; domain.axis(a).len()]
                } else {
                    domain.axis(a).to_vec()
                }
            })
            .collect(),
    )
}

/// Describes a combine layer for DOT output.
pub(crate) fn describe(layer: &Layer, c: &ReduceCombine) -> String {
    format!(
        "{}{} over {:?}",
        c.reduction.name(),
        if c.finalize.is_some() { "" } else { "-combine" },
        c.axes
    ) + &format!(" ({})", layer.meta.dtype)
}
