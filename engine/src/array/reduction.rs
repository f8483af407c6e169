//! Reductions: sum, prod, min, max, any, all, mean, var, std, argmin, argmax over all axes or any set of
//! axes, with keepdims and a tree of configurable width (`split_every`). Each becomes a blockwise
//! partial per chunk (fusable with whatever produced the chunk) and a few combine layers.

use super::Array;
use super::elementwise::ProgramBuilder;
use crate::error::{Error, Result};
use crate::meta::DType;
use crate::ops::reduce::{normalize_axes, reduce_table, tree_levels};
use crate::ops::{Finalize, Op, ReduceSink, Reduction};

/// Default number of partials merged per tree node (dask's `split_every`).
pub const DEFAULT_SPLIT_EVERY: usize = 16;

/// Options of a reduction, built like `ReduceOptions::axes([0]).keepdims(true)`.
///
/// ```
/// use tessera::ReduceOptions;
/// let x = tessera::ones::<f64>(&[4, 6], [2, 3]).unwrap();
/// let s = x.sum_with(&ReduceOptions::axes([1]).keepdims(true)).unwrap();
/// assert_eq!(s.shape(), &[4, 1]);
/// assert_eq!(s.compute::<f64>().unwrap().sum(), 24.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceOptions {
    /// Axes to reduce (negative counts from the end); `None` reduces all.
    pub axes: Option<Vec<isize>>,
    /// Keep reduced axes as length-1 axes (numpy's `keepdims=True`).
    pub keepdims: bool,
    /// Partials merged per tree node; at least 2.
    pub split_every: usize,
    /// Delta degrees of freedom for var and std.
    pub ddof: f64,
}

impl Default for ReduceOptions {
    fn default() -> Self {
        ReduceOptions {
            axes: None,
            keepdims: false,
            split_every: DEFAULT_SPLIT_EVERY,
            ddof: 0.0,
        }
    }
}

impl ReduceOptions {
    /// Reduce over every axis.
    pub fn all() -> Self {
        Self::default()
    }

    /// Reduce over the given axes.
    pub fn axes<const N: usize>(axes: [isize; N]) -> Self {
        ReduceOptions {
            axes: Some(axes.to_vec()),
            ..Self::default()
        }
    }

    /// Reduce over one axis.
    pub fn axis(axis: isize) -> Self {
        Self::axes([axis])
    }

    /// Sets `keepdims`: keep reduced axes with length 1.
    pub fn keepdims(mut self, keepdims: bool) -> Self {
        self.keepdims = keepdims;
        self
    }

    /// Sets how many partials one node of the reduction tree merges (at least 2).
    pub fn split_every(mut self, n: usize) -> Self {
        self.split_every = n;
        self
    }

    /// Sets the delta degrees of freedom of `var` and `std` (numpy's `ddof`).
    pub fn ddof(mut self, ddof: f64) -> Self {
        self.ddof = ddof;
        self
    }
}

impl Array {
    /// Sums and means of complex128: the real and imaginary parts reduced separately (what a
    /// complex sum is), then joined as `re + im·i`. (An infinite imaginary sum therefore gives a
    /// NaN real part, where numpy keeps it 0.) Other reductions are refused for complex, as the
    /// ordering ones are in numpy; `prod`, `var` and `std` of complex are not implemented yet.
    fn reduce_complex(&self, reduction: Reduction, opts: &ReduceOptions) -> Result<Array> {
        match reduction {
            Reduction::Sum | Reduction::Mean => {
                let re = self.real()?.reduce(reduction, opts)?;
                let im = self.imag()?.reduce(reduction, opts)?;
                let i = num_complex::Complex64::new(0.0, 1.0);
                use super::elementwise::{Operand, binary};
                use crate::ops::BinaryFn;
                let im = binary(
                    BinaryFn::Mul,
                    im.astype(DType::C128)?.into(),
                    Operand::from(i),
                )?;
                binary(BinaryFn::Add, re.astype(DType::C128)?.into(), im.into())
            }
            other => Err(Error::UnsupportedDType {
                op: other.name(),
                dtype: DType::C128,
            }),
        }
    }

    /// Reduces with `reduction` as `opts` say.
    pub fn reduce(&self, reduction: Reduction, opts: &ReduceOptions) -> Result<Array> {
        self.usable()?;
        if self.dtype().is_complex() {
            return self.reduce_complex(reduction, opts);
        }
        let ndim = self.ndim();
        let axes = match &opts.axes {
            None => (0..ndim).collect(),
            Some(a) => normalize_axes(a, ndim)?,
        };
        if opts.split_every < 2 {
            return Err(Error::InvalidArgument {
                op: reduction.name(),
                reason: format!("split_every must be at least 2, not {}", opts.split_every),
            });
        }
        if reduction.is_arg() && axes.len() != ndim && axes.len() != 1 {
            return Err(Error::InvalidArgument {
                op: reduction.name(),
                reason: format!("reduces over one axis or all of them, not {axes:?}"),
            });
        }
        let reduced_len: usize = axes.iter().map(|&a| self.shape()[a]).product();
        if reduction.needs_elements() && reduced_len == 0 {
            return Err(Error::InvalidArgument {
                op: reduction.name(),
                reason: format!(
                    "zero-size reduction over axes {axes:?} of an array of shape {:?} has no identity",
                    self.shape()
                ),
            });
        }
        let out_dtype = reduction.result_dtype(self.dtype());
        let input_dtype = reduction.input_dtype(self.dtype());

        // The partial: one blockwise task per chunk, reading that chunk.
        let domain = self.chunks().clone();
        let mut b = ProgramBuilder::new(domain.clone());
        let v = b.input(self);
        let v = b.cast(v, input_dtype);
        let partial = b.finish(
            v,
            Some(ReduceSink {
                reduction,
                axes: axes.clone(),
                domain_shape: self.shape().to_vec(),
            }),
        )?;
        tree(
            partial,
            reduction,
            &axes,
            opts.split_every,
            Finalize {
                keepdims: opts.keepdims,
                ddof: opts.ddof,
                dtype: out_dtype,
            },
        )
    }
}

/// Adds the combine layers of a tree reduction on top of a layer of partials.
pub(crate) fn tree(
    partial: Array,
    reduction: Reduction,
    axes: &[usize],
    split_every: usize,
    finalize: Finalize,
) -> Result<Array> {
    let levels = tree_levels(partial.chunks(), reduction, axes, split_every, finalize);
    let mut current = partial;
    for (op, _) in levels {
        current = Array::from_op(Op::ReduceCombine(op), vec![current], None)?;
    }
    Ok(current)
}

/// `Array` methods for the rows of the reduction table that name them: `(all, one axis, with
/// options)`; `-` marks a reduction whose methods are written by hand below.
macro_rules! reduction_methods {
    (() $($(#[$doc:meta])* $v:ident = $code:literal, $name:literal, $typing:ident,
          $needs:literal, $methods:tt;)*) => {
        $(reduction_methods!(@one $v, $methods, $(#[$doc])*);)*
    };
    (@one $v:ident, -, $(#[$doc:meta])*) => {};
    (@one $r:ident, ($name:ident, $axis:ident, $with:ident), $(#[$doc:meta])*) => {
        impl Array {
            $(#[$doc])*
            pub fn $name(&self) -> Result<Array> {
                self.reduce(Reduction::$r, &ReduceOptions::all())
            }

            #[doc = concat!("[`Array::", stringify!($name), "`] over one axis.")]
            pub fn $axis(&self, axis: isize) -> Result<Array> {
                self.reduce(Reduction::$r, &ReduceOptions::axis(axis))
            }

            #[doc = concat!("[`Array::", stringify!($name), "`] with options (axes, keepdims, split_every).")]
            pub fn $with(&self, opts: &ReduceOptions) -> Result<Array> {
                self.reduce(Reduction::$r, opts)
            }
        }
    };
}

reduce_table!(reduction_methods());

impl Array {
    /// Variance with numpy's default `ddof = 0` (divisor `n`).
    ///
    /// ```
    /// let x = tessera::arange(0.0, 4.0, 1.0, [3]).unwrap();
    /// assert_eq!(x.var().unwrap().compute_scalar::<f64>().unwrap(), 1.25);
    /// assert_eq!(x.var_ddof(1.0).unwrap().compute_scalar::<f64>().unwrap(), 5.0 / 3.0);
    /// ```
    pub fn var(&self) -> Result<Array> {
        self.usable()?;
        self.reduce(Reduction::Var, &ReduceOptions::all())
    }

    /// Variance with `ddof` delta degrees of freedom (divisor `n - ddof`).
    pub fn var_ddof(&self, ddof: f64) -> Result<Array> {
        self.usable()?;
        self.reduce(Reduction::Var, &ReduceOptions::all().ddof(ddof))
    }

    /// Variance over one axis with `ddof` delta degrees of freedom.
    pub fn var_axis(&self, axis: isize, ddof: f64) -> Result<Array> {
        self.usable()?;
        self.reduce(Reduction::Var, &ReduceOptions::axis(axis).ddof(ddof))
    }

    /// [`Array::var`] with options; `opts.ddof` is the delta degrees of freedom.
    pub fn var_with(&self, opts: &ReduceOptions) -> Result<Array> {
        self.usable()?;
        self.reduce(Reduction::Var, opts)
    }

    /// Standard deviation with numpy's default `ddof = 0`.
    pub fn std(&self) -> Result<Array> {
        self.usable()?;
        self.reduce(Reduction::Std, &ReduceOptions::all())
    }

    /// Standard deviation with `ddof` delta degrees of freedom.
    pub fn std_ddof(&self, ddof: f64) -> Result<Array> {
        self.usable()?;
        self.reduce(Reduction::Std, &ReduceOptions::all().ddof(ddof))
    }

    /// Standard deviation over one axis with `ddof` delta degrees of freedom.
    pub fn std_axis(&self, axis: isize, ddof: f64) -> Result<Array> {
        self.usable()?;
        self.reduce(Reduction::Std, &ReduceOptions::axis(axis).ddof(ddof))
    }

    /// [`Array::std`] with options.
    pub fn std_with(&self, opts: &ReduceOptions) -> Result<Array> {
        self.usable()?;
        self.reduce(Reduction::Std, opts)
    }
}
