//! Reduction kernels: accumulators that a blockwise program feeds tile by tile ([`Accumulator`]), the
//! merge of partials between tree levels ([`combine`]), and finalization. Sums use several independent
//! lanes so they vectorize; mean, var and std carry (count, mean, M2) merged with Chan et al.'s update
//! instead of a sum of squares.

use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

use super::elementwise::{Buf, nan_max, nan_min};
use crate::data::{ArgPartial, ArrayData, ChunkValue, Moments};
use crate::error::{Error, Result};
use crate::graph::ArrayMeta;
use crate::meta::DType;
use crate::ops::{Finalize, ReduceCombine, Reduction};

pub use super::simd::{sum_f64, sum_sq_dev_f64 as sum_sq_dev};

/// The first `n` values of a tile as f64, converting into `scratch` unless they already are.
fn tile_f64<'a>(buf: &'a Buf, n: usize, scratch: &'a mut Vec<f64>) -> &'a [f64] {
    match buf {
        Buf::F64(x) => &x[..n],
        other => {
            scratch.clear();
            match other {
                Buf::F32(x) => scratch.extend(x[..n].iter().map(|&v| v as f64)),
                Buf::I64(x) => scratch.extend(x[..n].iter().map(|&v| v as f64)),
                Buf::I32(x) => scratch.extend(x[..n].iter().map(|&v| v as f64)),
                Buf::U8(x) => scratch.extend(x[..n].iter().map(|&v| v as f64)),
                Buf::U64(x) => scratch.extend(x[..n].iter().map(|&v| v as f64)),
                Buf::Bool(x) => scratch.extend(x[..n].iter().map(|&v| v as u8 as f64)),
                Buf::F64(_) => unreachable!("handled above"),
                Buf::C128(_) => unreachable!("the program rule refuses reductions of complex"),
            }
            &scratch[..n]
        }
    }
}

/// Chan et al.'s merge of (count, mean, M2) of `b` into `a`.
#[inline]
fn merge_moments(na: &mut f64, ma: &mut f64, m2a: Option<&mut f64>, nb: f64, mb: f64, m2b: f64) {
    if nb == 0.0 {
        return;
    }
    let n = *na + nb;
    let delta = mb - *ma;
    let new_mean = *ma + delta * (nb / n);
    if let Some(m2a) = m2a {
        *m2a += m2b + delta * delta * (*na * nb / n);
    }
    *ma = new_mean;
    *na = n;
}

/// Whether candidate `(bv, bi)` beats `(av, ai)` for argmin (`is_min`) or argmax: strictly better,
/// or the first NaN, or equal with a smaller index.
#[inline]
fn arg_better<T: PartialOrd + Copy>(av: T, ai: i64, bv: T, bi: i64, is_min: bool) -> bool {
    #[allow(clippy::eq_op)]
    let a_nan = av != av;
    #[allow(clippy::eq_op)]
    let b_nan = bv != bv;
    if ai < 0 {
        return true;
    }
    if a_nan || b_nan {
        return b_nan && (!a_nan || bi < ai);
    }
    let strictly = if is_min { bv < av } else { bv > av };
    strictly || (bv == av && bi < ai)
}

/// Typed storage for min/max and argmin/argmax values.
#[derive(Debug)]
pub enum Values {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    U8(Vec<u8>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Values {
    fn new(dtype: DType, n: usize, min: bool) -> Values {
        match dtype {
            DType::Bool => Values::Bool(vec![min; n]),
            DType::I64 => Values::I64(vec![if min { i64::MAX } else { i64::MIN }; n]),
            DType::I32 => Values::I32(vec![if min { i32::MAX } else { i32::MIN }; n]),
            DType::U8 => Values::U8(vec![if min { u8::MAX } else { u8::MIN }; n]),
            DType::U64 => Values::U64(vec![if min { u64::MAX } else { u64::MIN }; n]),
            DType::F32 => Values::F32(vec![
                if min {
                    f32::INFINITY
                } else {
                    f32::NEG_INFINITY
                };
                n
            ]),
            DType::F64 => Values::F64(vec![
                if min {
                    f64::INFINITY
                } else {
                    f64::NEG_INFINITY
                };
                n
            ]),
            DType::C128 => unreachable!("the program rule refuses reductions of complex"),
        }
    }

    fn into_array(self, shape: &[usize]) -> ArrayData {
        let s = IxDyn(shape);
        match self {
            Values::Bool(v) => ArrayData::Bool(ArrayD::from_shape_vec(s, v).expect("shape")),
            Values::I64(v) => ArrayData::I64(ArrayD::from_shape_vec(s, v).expect("shape")),
            Values::I32(v) => ArrayData::I32(ArrayD::from_shape_vec(s, v).expect("shape")),
            Values::U8(v) => ArrayData::U8(ArrayD::from_shape_vec(s, v).expect("shape")),
            Values::U64(v) => ArrayData::U64(ArrayD::from_shape_vec(s, v).expect("shape")),
            Values::F32(v) => ArrayData::F32(ArrayD::from_shape_vec(s, v).expect("shape")),
            Values::F64(v) => ArrayData::F64(ArrayD::from_shape_vec(s, v).expect("shape")),
        }
    }
}

/// Running state of one chunk's partial reduction, one slot per output position.
#[derive(Debug)]
pub enum Accumulator {
    SumF(Vec<f64>),
    /// Integer sums and products accumulate the bits of int64 (wrapping): the same bits as numpy's
    /// int64 or uint64 accumulator, so the partial is cast (reinterpreted) to `out` at the end.
    SumI(Vec<i64>, DType),
    ProdF(Vec<f64>),
    ProdI(Vec<i64>, DType),
    MinMax {
        values: Values,
        is_min: bool,
    },
    AnyAll {
        values: Vec<bool>,
        is_any: bool,
    },
    /// `sum` holds the running sum while feeding when `m2` is None (mean), and the running mean
    /// otherwise (var, std).
    Moments {
        count: Vec<f64>,
        sum: Vec<f64>,
        m2: Option<Vec<f64>>,
        scratch: Vec<f64>,
    },
    Arg {
        values: Values,
        index: Vec<i64>,
        is_min: bool,
    },
}

impl Accumulator {
    /// An accumulator with `n` output positions for inputs of `dtype`.
    pub fn new(reduction: Reduction, dtype: DType, n: usize) -> Accumulator {
        let float = dtype.is_float();
        match reduction {
            Reduction::Sum if float => Accumulator::SumF(vec![0.0; n]),
            Reduction::Sum => Accumulator::SumI(vec![0; n], reduction.result_dtype(dtype)),
            Reduction::Prod if float => Accumulator::ProdF(vec![1.0; n]),
            Reduction::Prod => Accumulator::ProdI(vec![1; n], reduction.result_dtype(dtype)),
            Reduction::Min | Reduction::Max => Accumulator::MinMax {
                values: Values::new(dtype, n, reduction == Reduction::Min),
                is_min: reduction == Reduction::Min,
            },
            Reduction::Any => Accumulator::AnyAll {
                values: vec![false; n],
                is_any: true,
            },
            Reduction::All => Accumulator::AnyAll {
                values: vec![true; n],
                is_any: false,
            },
            Reduction::Mean | Reduction::Var | Reduction::Std => Accumulator::Moments {
                count: vec![0.0; n],
                sum: vec![0.0; n],
                m2: (reduction != Reduction::Mean).then(|| vec![0.0; n]),
                scratch: Vec::new(),
            },
            Reduction::ArgMin | Reduction::ArgMax => Accumulator::Arg {
                values: Values::new(dtype, n, reduction == Reduction::ArgMin),
                index: vec![-1; n],
                is_min: reduction == Reduction::ArgMin,
            },
        }
    }

    /// Reduces the first `n` values of a tile into output position `pos`. For argmin/argmax, element
    /// `j` of the tile has index `index0 + j·index_step` along the reduced axes.
    pub fn feed_reduced(&mut self, pos: usize, buf: &Buf, n: usize, index0: i64, index_step: i64) {
        match self {
            Accumulator::SumF(acc) => {
                let mut scratch = Vec::new();
                acc[pos] += sum_f64(tile_f64(buf, n, &mut scratch));
            }
            Accumulator::SumI(acc, _) => {
                acc[pos] = match buf {
                    Buf::I64(x) => x[..n].iter().fold(acc[pos], |s, &v| s.wrapping_add(v)),
                    Buf::I32(x) => x[..n]
                        .iter()
                        .fold(acc[pos], |s, &v| s.wrapping_add(v as i64)),
                    Buf::U8(x) => x[..n]
                        .iter()
                        .fold(acc[pos], |s, &v| s.wrapping_add(v as i64)),
                    Buf::U64(x) => x[..n]
                        .iter()
                        .fold(acc[pos], |s, &v| s.wrapping_add(v as i64)),
                    Buf::Bool(x) => acc[pos] + x[..n].iter().filter(|&&v| v).count() as i64,
                    _ => unreachable!("integer sums read integers"),
                }
            }
            Accumulator::ProdF(acc) => {
                let mut scratch = Vec::new();
                acc[pos] *= tile_f64(buf, n, &mut scratch).iter().product::<f64>();
            }
            Accumulator::ProdI(acc, _) => {
                acc[pos] = match buf {
                    Buf::I64(x) => x[..n].iter().fold(acc[pos], |s, &v| s.wrapping_mul(v)),
                    Buf::I32(x) => x[..n]
                        .iter()
                        .fold(acc[pos], |s, &v| s.wrapping_mul(v as i64)),
                    Buf::U8(x) => x[..n]
                        .iter()
                        .fold(acc[pos], |s, &v| s.wrapping_mul(v as i64)),
                    Buf::U64(x) => x[..n]
                        .iter()
                        .fold(acc[pos], |s, &v| s.wrapping_mul(v as i64)),
                    Buf::Bool(x) => acc[pos] * x[..n].iter().all(|&v| v) as i64,
                    _ => unreachable!("integer products read integers"),
                }
            }
            Accumulator::MinMax { values, is_min } => {
                let is_min = *is_min;
                match (values, buf) {
                    (Values::F64(a), Buf::F64(x)) => {
                        a[pos] = x[..n].iter().fold(a[pos], |m, &v| {
                            if is_min {
                                nan_min!(m, v)
                            } else {
                                nan_max!(m, v)
                            }
                        })
                    }
                    (Values::F32(a), Buf::F32(x)) => {
                        a[pos] = x[..n].iter().fold(a[pos], |m, &v| {
                            if is_min {
                                nan_min!(m, v)
                            } else {
                                nan_max!(m, v)
                            }
                        })
                    }
                    (Values::I64(a), Buf::I64(x)) => {
                        a[pos] = x[..n]
                            .iter()
                            .fold(a[pos], |m, &v| if is_min { m.min(v) } else { m.max(v) })
                    }
                    (Values::I32(a), Buf::I32(x)) => {
                        a[pos] = x[..n]
                            .iter()
                            .fold(a[pos], |m, &v| if is_min { m.min(v) } else { m.max(v) })
                    }
                    (Values::U8(a), Buf::U8(x)) => {
                        a[pos] = x[..n]
                            .iter()
                            .fold(a[pos], |m, &v| if is_min { m.min(v) } else { m.max(v) })
                    }
                    (Values::U64(a), Buf::U64(x)) => {
                        a[pos] = x[..n]
                            .iter()
                            .fold(a[pos], |m, &v| if is_min { m.min(v) } else { m.max(v) })
                    }
                    (Values::Bool(a), Buf::Bool(x)) => {
                        a[pos] = if is_min {
                            a[pos] && x[..n].iter().all(|&v| v)
                        } else {
                            a[pos] || x[..n].iter().any(|&v| v)
                        }
                    }
                    _ => unreachable!("min/max keep the input dtype"),
                }
            }
            Accumulator::AnyAll { values, is_any } => {
                let hit = match buf {
                    Buf::Bool(x) => {
                        if *is_any {
                            x[..n].iter().any(|&v| v)
                        } else {
                            x[..n].iter().all(|&v| v)
                        }
                    }
                    _ => unreachable!("any/all read bool"),
                };
                values[pos] = if *is_any {
                    values[pos] || hit
                } else {
                    values[pos] && hit
                };
            }
            Accumulator::Moments {
                count,
                sum,
                m2,
                scratch,
            } => {
                let x = tile_f64(buf, n, scratch);
                let s = sum_f64(x);
                match m2 {
                    None => {
                        sum[pos] += s;
                        count[pos] += n as f64;
                    }
                    Some(m2) => {
                        let mean_t = s / n as f64;
                        let m2_t = sum_sq_dev(x, mean_t);
                        merge_moments(
                            &mut count[pos],
                            &mut sum[pos],
                            Some(&mut m2[pos]),
                            n as f64,
                            mean_t,
                            m2_t,
                        );
                    }
                }
            }
            Accumulator::Arg {
                values,
                index,
                is_min,
            } => {
                let is_min = *is_min;
                macro_rules! scan {
                    ($a:ident, $x:ident) => {{
                        let (mut bv, mut bi) = ($a[pos], index[pos]);
                        for (j, &v) in $x[..n].iter().enumerate() {
                            let i = index0 + j as i64 * index_step;
                            if arg_better(bv, bi, v, i, is_min) {
                                bv = v;
                                bi = i;
                            }
                        }
                        $a[pos] = bv;
                        index[pos] = bi;
                    }};
                }
                match (values, buf) {
                    (Values::F64(a), Buf::F64(x)) => scan!(a, x),
                    (Values::F32(a), Buf::F32(x)) => scan!(a, x),
                    (Values::I64(a), Buf::I64(x)) => scan!(a, x),
                    (Values::I32(a), Buf::I32(x)) => scan!(a, x),
                    (Values::U8(a), Buf::U8(x)) => scan!(a, x),
                    (Values::U64(a), Buf::U64(x)) => scan!(a, x),
                    (Values::Bool(a), Buf::Bool(x)) => scan!(a, x),
                    _ => unreachable!("argmin/argmax keep the input dtype"),
                }
            }
        }
    }

    /// Adds a precomputed sum of `n` values into position `pos` (sum and mean only).
    pub fn feed_sum(&mut self, pos: usize, sum: f64, n: usize) {
        match self {
            Accumulator::SumF(acc) => acc[pos] += sum,
            Accumulator::Moments {
                count,
                sum: s,
                m2: None,
                ..
            } => {
                s[pos] += sum;
                count[pos] += n as f64;
            }
            _ => unreachable!("only float sums and means take precomputed sums"),
        }
    }

    /// Reduces element `j` of a tile into position `pos0 + j`, for the first `n` elements (the tile runs
    /// along axes that are kept). For argmin/argmax every element has index `index`.
    pub fn feed_elementwise(&mut self, pos0: usize, buf: &Buf, n: usize, index: i64) {
        macro_rules! each {
            ($acc:expr, $x:expr, |$a:ident, $v:ident| $body:expr) => {
                for (a, &v) in $acc[pos0..pos0 + n].iter_mut().zip(&$x[..n]) {
                    let ($a, $v) = (a, v);
                    $body;
                }
            };
        }
        match self {
            Accumulator::SumF(acc) => {
                let mut scratch = Vec::new();
                let x = tile_f64(buf, n, &mut scratch);
                each!(acc, x, |a, v| *a += v);
            }
            Accumulator::SumI(acc, _) => match buf {
                Buf::I64(x) => each!(acc, x, |a, v| *a = a.wrapping_add(v)),
                Buf::I32(x) => each!(acc, x, |a, v| *a = a.wrapping_add(v as i64)),
                Buf::U8(x) => each!(acc, x, |a, v| *a = a.wrapping_add(v as i64)),
                Buf::U64(x) => each!(acc, x, |a, v| *a = a.wrapping_add(v as i64)),
                Buf::Bool(x) => each!(acc, x, |a, v| *a += v as i64),
                _ => unreachable!("integer sums read integers"),
            },
            Accumulator::ProdF(acc) => {
                let mut scratch = Vec::new();
                let x = tile_f64(buf, n, &mut scratch);
                each!(acc, x, |a, v| *a *= v);
            }
            Accumulator::ProdI(acc, _) => match buf {
                Buf::I64(x) => each!(acc, x, |a, v| *a = a.wrapping_mul(v)),
                Buf::I32(x) => each!(acc, x, |a, v| *a = a.wrapping_mul(v as i64)),
                Buf::U8(x) => each!(acc, x, |a, v| *a = a.wrapping_mul(v as i64)),
                Buf::U64(x) => each!(acc, x, |a, v| *a = a.wrapping_mul(v as i64)),
                Buf::Bool(x) => each!(acc, x, |a, v| *a *= v as i64),
                _ => unreachable!("integer products read integers"),
            },
            Accumulator::MinMax { values, is_min } => {
                let is_min = *is_min;
                match (values, buf) {
                    (Values::F64(acc), Buf::F64(x)) => each!(acc, x, |a, v| *a = if is_min {
                        nan_min!(*a, v)
                    } else {
                        nan_max!(*a, v)
                    }),
                    (Values::F32(acc), Buf::F32(x)) => each!(acc, x, |a, v| *a = if is_min {
                        nan_min!(*a, v)
                    } else {
                        nan_max!(*a, v)
                    }),
                    (Values::I64(acc), Buf::I64(x)) => each!(acc, x, |a, v| *a =
                        if is_min { (*a).min(v) } else { (*a).max(v) }),
                    (Values::I32(acc), Buf::I32(x)) => each!(acc, x, |a, v| *a =
                        if is_min { (*a).min(v) } else { (*a).max(v) }),
                    (Values::U8(acc), Buf::U8(x)) => each!(acc, x, |a, v| *a =
                        if is_min { (*a).min(v) } else { (*a).max(v) }),
                    (Values::U64(acc), Buf::U64(x)) => each!(acc, x, |a, v| *a =
                        if is_min { (*a).min(v) } else { (*a).max(v) }),
                    (Values::Bool(acc), Buf::Bool(x)) => {
                        each!(acc, x, |a, v| *a = if is_min { *a && v } else { *a || v })
                    }
                    _ => unreachable!("min/max keep the input dtype"),
                }
            }
            Accumulator::AnyAll { values, is_any } => {
                let is_any = *is_any;
                match buf {
                    Buf::Bool(x) => each!(values, x, |a, v| *a =
                        if is_any { *a || v } else { *a && v }),
                    _ => unreachable!("any/all read bool"),
                }
            }
            Accumulator::Moments {
                count,
                sum,
                m2,
                scratch,
            } => {
                let x = tile_f64(buf, n, scratch);
                match m2 {
                    None => {
                        each!(sum, x, |a, v| *a += v);
                        count[pos0..pos0 + n].iter_mut().for_each(|c| *c += 1.0);
                    }
                    Some(m2) => {
                        for (j, &v) in x.iter().enumerate() {
                            let p = pos0 + j;
                            let c = count[p] + 1.0;
                            let delta = v - sum[p];
                            sum[p] += delta / c;
                            m2[p] += delta * (v - sum[p]);
                            count[p] = c;
                        }
                    }
                }
            }
            Accumulator::Arg {
                values,
                index: idx,
                is_min,
            } => {
                let is_min = *is_min;
                macro_rules! scan {
                    ($a:ident, $x:ident) => {
                        for j in 0..n {
                            let p = pos0 + j;
                            if arg_better($a[p], idx[p], $x[j], index, is_min) {
                                $a[p] = $x[j];
                                idx[p] = index;
                            }
                        }
                    };
                }
                match (values, buf) {
                    (Values::F64(a), Buf::F64(x)) => scan!(a, x),
                    (Values::F32(a), Buf::F32(x)) => scan!(a, x),
                    (Values::I64(a), Buf::I64(x)) => scan!(a, x),
                    (Values::I32(a), Buf::I32(x)) => scan!(a, x),
                    (Values::U8(a), Buf::U8(x)) => scan!(a, x),
                    (Values::U64(a), Buf::U64(x)) => scan!(a, x),
                    (Values::Bool(a), Buf::Bool(x)) => scan!(a, x),
                    _ => unreachable!("argmin/argmax keep the input dtype"),
                }
            }
        }
    }

    /// The partial, shaped `shape` (the chunk's shape with reduced axes of length 1).
    pub fn finish(self, shape: &[usize]) -> ChunkValue {
        let s = || IxDyn(shape);
        let arr = |v: Vec<f64>| ArrayD::from_shape_vec(s(), v).expect("accumulator shape");
        match self {
            Accumulator::SumF(v) | Accumulator::ProdF(v) => {
                ChunkValue::Array(ArrayData::F64(arr(v)))
            }
            Accumulator::SumI(v, out) | Accumulator::ProdI(v, out) => ChunkValue::Array(
                ArrayData::I64(ArrayD::from_shape_vec(s(), v).expect("accumulator shape"))
                    .cast(out),
            ),
            Accumulator::MinMax { values, .. } => ChunkValue::Array(values.into_array(shape)),
            Accumulator::AnyAll { values, .. } => ChunkValue::Array(ArrayData::Bool(
                ArrayD::from_shape_vec(s(), values).expect("accumulator shape"),
            )),
            Accumulator::Moments { count, sum, m2, .. } => {
                let mean = match m2 {
                    None => sum
                        .iter()
                        .zip(&count)
                        .map(|(&s, &c)| if c > 0.0 { s / c } else { 0.0 })
                        .collect(),
                    Some(_) => sum,
                };
                ChunkValue::Moments(Moments {
                    count: arr(count),
                    mean: arr(mean),
                    m2: m2.map(arr),
                })
            }
            Accumulator::Arg { values, index, .. } => ChunkValue::Arg(ArgPartial {
                value: values.into_array(shape),
                index: ArrayD::from_shape_vec(s(), index).expect("accumulator shape"),
            }),
        }
    }
}

/// Merges partial `b` into `a` (both of the same shape), `a` holding the earlier blocks.
fn merge(reduction: Reduction, a: &mut ChunkValue, b: &ChunkValue) -> Result<()> {
    let a_kind = a.kind();
    let mismatch = || Error::InvalidArgument {
        op: reduction.name(),
        reason: format!(
            "cannot merge a {} partial into a {a_kind} partial",
            b.kind()
        ),
    };
    match (a, b) {
        (ChunkValue::Array(a), ChunkValue::Array(b)) => {
            macro_rules! zip {
                ($x:ident, $y:ident, |$p:ident, $q:ident| $body:expr) => {
                    $x.zip_mut_with($y, |$p, &$q| $body)
                };
            }
            use Reduction::*;
            match (reduction, a, b) {
                (Sum, ArrayData::F64(x), ArrayData::F64(y)) => zip!(x, y, |p, q| *p += q),
                (Sum, ArrayData::F32(x), ArrayData::F32(y)) => zip!(x, y, |p, q| *p += q),
                (Sum, ArrayData::I64(x), ArrayData::I64(y)) => {
                    zip!(x, y, |p, q| *p = p.wrapping_add(q))
                }
                (Prod, ArrayData::F64(x), ArrayData::F64(y)) => zip!(x, y, |p, q| *p *= q),
                (Prod, ArrayData::I64(x), ArrayData::I64(y)) => {
                    zip!(x, y, |p, q| *p = p.wrapping_mul(q))
                }
                (Sum, ArrayData::U64(x), ArrayData::U64(y)) => {
                    zip!(x, y, |p, q| *p = p.wrapping_add(q))
                }
                (Prod, ArrayData::U64(x), ArrayData::U64(y)) => {
                    zip!(x, y, |p, q| *p = p.wrapping_mul(q))
                }
                (Min, ArrayData::I32(x), ArrayData::I32(y)) => zip!(x, y, |p, q| *p = (*p).min(q)),
                (Max, ArrayData::I32(x), ArrayData::I32(y)) => zip!(x, y, |p, q| *p = (*p).max(q)),
                (Min, ArrayData::U8(x), ArrayData::U8(y)) => zip!(x, y, |p, q| *p = (*p).min(q)),
                (Max, ArrayData::U8(x), ArrayData::U8(y)) => zip!(x, y, |p, q| *p = (*p).max(q)),
                (Min, ArrayData::U64(x), ArrayData::U64(y)) => zip!(x, y, |p, q| *p = (*p).min(q)),
                (Max, ArrayData::U64(x), ArrayData::U64(y)) => zip!(x, y, |p, q| *p = (*p).max(q)),
                (Min, ArrayData::F64(x), ArrayData::F64(y)) => {
                    zip!(x, y, |p, q| *p = nan_min!(*p, q))
                }
                (Min, ArrayData::F32(x), ArrayData::F32(y)) => {
                    zip!(x, y, |p, q| *p = nan_min!(*p, q))
                }
                (Min, ArrayData::I64(x), ArrayData::I64(y)) => zip!(x, y, |p, q| *p = (*p).min(q)),
                (Min | All, ArrayData::Bool(x), ArrayData::Bool(y)) => {
                    zip!(x, y, |p, q| *p = *p && q)
                }
                (Max, ArrayData::F64(x), ArrayData::F64(y)) => {
                    zip!(x, y, |p, q| *p = nan_max!(*p, q))
                }
                (Max, ArrayData::F32(x), ArrayData::F32(y)) => {
                    zip!(x, y, |p, q| *p = nan_max!(*p, q))
                }
                (Max, ArrayData::I64(x), ArrayData::I64(y)) => zip!(x, y, |p, q| *p = (*p).max(q)),
                (Max | Any, ArrayData::Bool(x), ArrayData::Bool(y)) => {
                    zip!(x, y, |p, q| *p = *p || q)
                }
                _ => return Err(mismatch()),
            }
        }
        (ChunkValue::Moments(a), ChunkValue::Moments(b)) => {
            let n = a.count.len();
            let (ac, am) = (
                a.count.as_slice_mut().expect("owned"),
                a.mean.as_slice_mut().expect("owned"),
            );
            let (bc, bm) = (
                b.count.as_slice().expect("owned"),
                b.mean.as_slice().expect("owned"),
            );
            match (a.m2.as_mut(), b.m2.as_ref()) {
                (Some(am2), Some(bm2)) => {
                    let am2 = am2.as_slice_mut().expect("owned");
                    let bm2 = bm2.as_slice().expect("owned");
                    for i in 0..n {
                        merge_moments(
                            &mut ac[i],
                            &mut am[i],
                            Some(&mut am2[i]),
                            bc[i],
                            bm[i],
                            bm2[i],
                        );
                    }
                }
                (None, None) => {
                    for i in 0..n {
                        merge_moments(&mut ac[i], &mut am[i], None, bc[i], bm[i], 0.0);
                    }
                }
                _ => return Err(mismatch()),
            }
        }
        (ChunkValue::Arg(a), ChunkValue::Arg(b)) => {
            let is_min = reduction == Reduction::ArgMin;
            let ai = a.index.as_slice_mut().expect("owned");
            let bi = b.index.as_slice().expect("owned");
            macro_rules! pick {
                ($x:ident, $y:ident) => {{
                    let xs = $x.as_slice_mut().expect("owned");
                    let ys = $y.as_slice().expect("owned");
                    for i in 0..xs.len() {
                        if bi[i] >= 0 && arg_better(xs[i], ai[i], ys[i], bi[i], is_min) {
                            xs[i] = ys[i];
                            ai[i] = bi[i];
                        }
                    }
                }};
            }
            match (&mut a.value, &b.value) {
                (ArrayData::F64(x), ArrayData::F64(y)) => pick!(x, y),
                (ArrayData::F32(x), ArrayData::F32(y)) => pick!(x, y),
                (ArrayData::I64(x), ArrayData::I64(y)) => pick!(x, y),
                (ArrayData::I32(x), ArrayData::I32(y)) => pick!(x, y),
                (ArrayData::U8(x), ArrayData::U8(y)) => pick!(x, y),
                (ArrayData::U64(x), ArrayData::U64(y)) => pick!(x, y),
                (ArrayData::Bool(x), ArrayData::Bool(y)) => pick!(x, y),
                _ => return Err(mismatch()),
            }
        }
        _ => return Err(mismatch()),
    }
    Ok(())
}

/// Turns a merged partial into the reduction's value, shaped `shape`.
fn finalize(
    reduction: Reduction,
    f: Finalize,
    partial: ChunkValue,
    shape: &[usize],
) -> Result<ArrayData> {
    let reshape = |a: ArrayData| -> Result<ArrayData> {
        Ok(
            crate::map_array!(a, x => x.into_shape_with_order(IxDyn(shape)).map_err(|e| Error::ShapeMismatch {
            op: reduction.name(),
            reason: e.to_string(),
        })?),
        )
    };
    let out = match partial {
        ChunkValue::Array(a) => a.cast(f.dtype),
        ChunkValue::Moments(m) => {
            let values = match (reduction, m.m2) {
                (Reduction::Mean, _) => m
                    .mean
                    .iter()
                    .zip(m.count.iter())
                    .map(|(&mean, &c)| if c > 0.0 { mean } else { f64::NAN })
                    .collect::<Vec<_>>(),
                (Reduction::Var | Reduction::Std, Some(m2)) => m2
                    .iter()
                    .zip(m.count.iter())
                    .map(|(&m2, &c)| {
                        let var = m2 / (c - f.ddof).max(0.0);
                        if reduction == Reduction::Std {
                            var.sqrt()
                        } else {
                            var
                        }
                    })
                    .collect(),
                _ => {
                    return Err(Error::InvalidArgument {
                        op: reduction.name(),
                        reason: "partial has no second moment".into(),
                    });
                }
            };
            ArrayData::F64(ArrayD::from_shape_vec(m.count.raw_dim(), values).expect("same shape"))
                .cast(f.dtype)
        }
        ChunkValue::Arg(a) => ArrayData::I64(a.index),
    };
    reshape(out)
}

/// A combine layer's block: merge the partials of its group in order, then finalize if it is the last
/// level.
pub fn combine(
    c: &ReduceCombine,
    meta: &ArrayMeta,
    block: &[u32],
    deps: &[Arc<ChunkValue>],
) -> Result<ChunkValue> {
    let (first, rest) = deps.split_first().ok_or_else(|| Error::InvalidArgument {
        op: c.reduction.name(),
        reason: "nothing to combine".into(),
    })?;
    let mut acc = (**first).clone();
    for d in rest {
        // A merge is one pass over a partial; a group may hold many large ones.
        crate::exec::cancel::checkpoint()?;
        merge(c.reduction, &mut acc, d)?;
    }
    match c.finalize {
        None => Ok(acc),
        Some(f) => Ok(ChunkValue::Array(finalize(
            c.reduction,
            f,
            acc,
            &meta.chunks.block_shape(block),
        )?)),
    }
}
