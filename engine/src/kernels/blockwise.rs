//! Evaluates a blockwise [`Program`] over one chunk of its domain, tile by tile: every leaf fills a
//! tile buffer (input chunks are copied, generated values computed from their global index), the
//! instructions run over the buffers, and the result is either written to the output chunk or fed to
//! the program's reduction. Nothing larger than a tile per value is ever held, so
//! `random → elementwise → partial reduction` never materializes a chunk. The evaluator checks for
//! cancellation once per row and within long rows (see [`crate::exec::cancel`]).

use std::borrow::Cow;
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};
use smallvec::SmallVec;

use super::TILE;
use super::elementwise::{self, Buf};
use super::random::{self, RandomKey};
use super::reduce::Accumulator;
use crate::data::{ArrayData, ChunkValue};
use crate::error::Result;
use crate::exec::cancel::checkpoint;
use crate::meta::{DType, Scalar};
use crate::ops::{Distribution, LeafKind, Program};

/// How a leaf provides the values of one row of the domain block.
enum LeafRow<'a> {
    /// Same value along the whole row (a constant, or broadcast along the row's axes).
    Constant,
    /// A contiguous run of an input chunk.
    Slice(&'a ArrayData),
    /// Generated from global indices a fixed step apart (1 unless the leaf's axes are permuted).
    Generated,
}

struct LeafPlan<'a> {
    row: LeafRow<'a>,
    /// Per domain axis, the stride of the leaf's index along that axis (0 where broadcast), in the
    /// leaf's chunk (inputs) or in the whole leaf array (generated values).
    strides: SmallVec<[usize; 4]>,
    /// Whether the leaf uses the global index (generated) or the chunk-local one (inputs).
    global: bool,
    /// Flat index of the leaf's element 0 (non-zero for a window of a generated array).
    origin: usize,
}

fn strides_of(shape: &[usize]) -> SmallVec<[usize; 4]> {
    let mut s: SmallVec<[usize; 4]> = SmallVec::from_elem(0, shape.len());
    let mut acc = 1;
    for a in (0..shape.len()).rev() {
        s[a] = acc;
        acc *= shape[a];
    }
    s
}

/// Tiles evaluated between two cancellation checkpoints within one row (64K elements).
const CHECK_TILES: u32 = 64;

/// Runs `p` for domain block `block`, reading input chunks `deps` (one per layer input, in order).
pub fn run(p: &Program, block: &[u32], deps: &[Arc<ChunkValue>]) -> Result<ChunkValue> {
    let ndim = p.domain.ndim();
    let dshape = p.domain.block_shape(block);
    let doffset = p.domain.block_offset(block);
    let full = p.domain.shape();

    // Kernels produce standard layout, so inputs are normally borrowed as they are.
    let mut inputs: SmallVec<[Cow<'_, ArrayData>; 2]> = SmallVec::new();
    for d in deps {
        let a = d.as_array()?;
        let standard = crate::with_array!(a, x => x.is_standard_layout());
        inputs.push(if standard {
            Cow::Borrowed(a)
        } else {
            Cow::Owned(a.clone().into_standard_layout())
        });
    }
    let broadcast = |leaf: &crate::ops::Leaf, a: usize| leaf.shape[a] == 1 && full[a] != 1;

    let plans: Vec<LeafPlan> = p
        .leaves
        .iter()
        .map(|leaf| {
            let bc = ndim > 0 && broadcast(leaf, ndim - 1);
            match &leaf.kind {
                LeafKind::Input(i) => {
                    let chunk_shape: Vec<usize> = (0..ndim)
                        .map(|a| if broadcast(leaf, a) { 1 } else { dshape[a] })
                        .collect();
                    let mut strides = strides_of(&chunk_shape);
                    for (a, s) in strides.iter_mut().enumerate() {
                        if broadcast(leaf, a) {
                            *s = 0;
                        }
                    }
                    LeafPlan {
                        row: if bc {
                            LeafRow::Constant
                        } else {
                            LeafRow::Slice(inputs[*i].as_ref())
                        },
                        strides,
                        global: false,
                        origin: 0,
                    }
                }
                LeafKind::Full(_) => LeafPlan {
                    row: LeafRow::Constant,
                    strides: SmallVec::from_elem(0, ndim),
                    global: true,
                    origin: 0,
                },
                _ => {
                    let (strides, origin) = generated_strides(leaf, |a| broadcast(leaf, a));
                    LeafPlan {
                        row: if bc {
                            LeafRow::Constant
                        } else {
                            LeafRow::Generated
                        },
                        strides,
                        global: true,
                        origin,
                    }
                }
            }
        })
        .collect();

    // Which trailing axes form one contiguous row.
    let reduced = |a: usize| p.reduce.as_ref().is_some_and(|r| r.axes.contains(&a));
    let mut row_start = ndim.saturating_sub(1);
    if ndim > 0 && !p.reduce.as_ref().is_some_and(|r| r.reduction.is_arg()) {
        while row_start > 0 {
            let a = row_start - 1;
            let last = ndim - 1;
            let ok = reduced(a) == reduced(last)
                && p.leaves.iter().enumerate().all(|(li, leaf)| {
                    let b = broadcast(leaf, a);
                    if b != broadcast(leaf, last) {
                        return false;
                    }
                    match leaf.kind {
                        LeafKind::Input(_) | LeafKind::Full(_) => true,
                        // Global flat indices stay one arithmetic run across rows only if axis `a`
                        // steps exactly over the row (true when the chunk spans the inner axes whole
                        // of an unpermuted leaf).
                        _ => {
                            let g = &plans[li].strides;
                            b || g[a] == g[last] * dshape[a + 1..].iter().product::<usize>()
                        }
                    }
                });
            if !ok {
                break;
            }
            row_start = a;
        }
    }
    let row_len: usize = if ndim == 0 {
        1
    } else {
        dshape[row_start..].iter().product()
    };
    let outer_shape = &dshape[..row_start.min(ndim)];
    let outer_count: usize = outer_shape.iter().product();

    let row_reduced = ndim > 0 && reduced(ndim - 1);
    // `random → sum/mean`: sum each row's uniform values straight from the generator, exactly, without
    // filling a tile; standard normal values tile by tile with the tile path's bits (see below).
    let fused_random_sum = match (&p.leaves[..], p.instrs.is_empty(), &p.reduce) {
        ([leaf], true, Some(r))
            if (row_reduced || ndim == 0)
                && matches!(
                    r.reduction,
                    crate::ops::Reduction::Sum | crate::ops::Reduction::Mean
                )
                && leaf.dtype == DType::F64
                && matches!(plans[0].row, LeafRow::Generated) =>
        {
            match leaf.kind {
                LeafKind::Random {
                    seed,
                    dist: dist @ (Distribution::Uniform | Distribution::StandardNormal),
                } => Some((RandomKey::new(seed, dist.code()), dist)),
                _ => None,
            }
        }
        _ => None,
    };

    let nvalues = p.leaves.len() + p.instrs.len();
    let tile = row_len.clamp(1, TILE);
    // The fused sum never fills a tile: no buffers (tiny tasks are dominated by allocation).
    let mut bufs: Vec<Buf> = if fused_random_sum.is_some() {
        Vec::new()
    } else {
        (0..nvalues as u32)
            .map(|v| Buf::new(p.value_dtype(v), tile))
            .collect()
    };
    for (i, leaf) in p.leaves.iter().enumerate() {
        if let LeafKind::Full(s) = leaf.kind {
            bufs[i].fill(s, tile);
        }
    }

    let out_dtype = p.value_dtype(p.output);
    // Output: either an array of the block's shape or an accumulator over the kept positions.
    let mut out_buf: Option<Buf> = None;
    let mut acc: Option<(Accumulator, Vec<usize>, SmallVec<[usize; 4]>)> = None;
    let mut arg_strides: SmallVec<[i64; 4]> = SmallVec::new();
    match &p.reduce {
        None => out_buf = Some(Buf::new(out_dtype, dshape.iter().product())),
        Some(r) => {
            let pshape: Vec<usize> = (0..ndim)
                .map(|a| if r.axes.contains(&a) { 1 } else { dshape[a] })
                .collect();
            let mut pstrides = strides_of(&pshape);
            for &a in &r.axes {
                pstrides[a] = 0;
            }
            let npos = pshape.iter().product();
            acc = Some((
                Accumulator::new(r.reduction, out_dtype, npos),
                pshape,
                pstrides,
            ));
            // Index strides over the reduced axes of the full domain, for argmin/argmax.
            let mut s: SmallVec<[i64; 4]> = SmallVec::from_elem(0, ndim);
            let mut m = 1i64;
            for a in (0..ndim).rev() {
                if r.axes.contains(&a) {
                    s[a] = m;
                    m *= r.domain_shape[a] as i64;
                }
            }
            arg_strides = s;
        }
    }

    let mut outer_idx: SmallVec<[usize; 4]> = SmallVec::from_elem(0, row_start);
    let mut bases: SmallVec<[usize; 8]> = SmallVec::from_elem(0, p.leaves.len());
    for outer in 0..outer_count {
        // A row is at most a few microseconds of work unless it is long, and long rows check
        // again per segment or every CHECK_TILES tiles below.
        checkpoint()?;
        // Index of the first element of this row, per leaf.
        for (li, plan) in plans.iter().enumerate() {
            let mut base = plan.origin;
            for a in 0..ndim {
                let local = if a < row_start { outer_idx[a] } else { 0 };
                let idx = if plan.global {
                    doffset[a] + local
                } else {
                    local
                };
                base += idx * plan.strides[a];
            }
            bases[li] = base;
        }
        // Constant leaves (broadcast along the row) get their value once per row.
        for (li, leaf) in p.leaves.iter().enumerate() {
            if matches!(plans[li].row, LeafRow::Constant) && !matches!(leaf.kind, LeafKind::Full(_))
            {
                let v = leaf_value(leaf, &plans[li], bases[li], &inputs);
                bufs[li].fill(v, tile);
            }
        }
        let (pos_base, arg_base) = match &acc {
            Some((_, _, pstrides)) => {
                let pos: usize = (0..row_start).map(|a| outer_idx[a] * pstrides[a]).sum();
                let arg: i64 = (0..ndim)
                    .map(|a| {
                        let local = if a < row_start { outer_idx[a] } else { 0 };
                        (doffset[a] + local) as i64 * arg_strides[a]
                    })
                    .sum();
                (pos, arg)
            }
            None => (0, 0),
        };

        if let Some((key, dist)) = fused_random_sum {
            let (Some((a, _, _)), LeafRow::Generated) = (acc.as_mut(), &plans[0].row) else {
                unreachable!("checked when choosing the fused path")
            };
            let step = row_step(&plans[0]);
            if dist == Distribution::Uniform {
                a.feed_sum(
                    pos_base,
                    random::sum_uniform_f64_checked(key, bases[0] as u64, step, row_len as u64)?,
                    row_len,
                );
            } else {
                // One sum per tile, added as the tile path adds its tiles' sums: fusing must not
                // change the result.
                for_each_tile(row_len, tile, |t0, n| {
                    let start = bases[0] as u64 + t0 as u64 * step;
                    let sum = random::sum_standard_normal_f64(key, start, step, n);
                    a.feed_sum(pos_base, sum, n);
                    Ok(())
                })?;
            }
            advance(&mut outer_idx, &dshape[..row_start]);
            continue;
        }
        for_each_tile(row_len, tile, |t0, n| {
            for (li, leaf) in p.leaves.iter().enumerate() {
                match plans[li].row {
                    LeafRow::Constant => {}
                    LeafRow::Slice(data) => copy_slice(data, bases[li] + t0, n, &mut bufs[li]),
                    LeafRow::Generated => {
                        let step = row_step(&plans[li]);
                        let start = bases[li] as u64 + t0 as u64 * step;
                        generate(&leaf.kind, start, step, n, &mut bufs[li])
                    }
                }
            }
            for (k, ins) in p.instrs.iter().enumerate() {
                let out_id = p.leaves.len() + k;
                let mut out = std::mem::replace(&mut bufs[out_id], Buf::Bool(Vec::new()));
                {
                    let args: SmallVec<[&Buf; 3]> =
                        ins.args.iter().map(|&a| &bufs[a as usize]).collect();
                    elementwise::apply(ins.func, &args, &mut out, n);
                }
                bufs[out_id] = out;
            }
            let result = &bufs[p.output as usize];
            if let Some(ob) = out_buf.as_mut() {
                write_tile(ob, outer * row_len + t0, result, n);
            } else if let Some((a, _, _)) = acc.as_mut() {
                if row_reduced {
                    let step = if ndim > 0 { arg_strides[ndim - 1] } else { 0 };
                    a.feed_reduced(pos_base, result, n, arg_base + t0 as i64 * step, step);
                } else {
                    a.feed_elementwise(pos_base + t0, result, n, arg_base);
                }
            }
            Ok(())
        })?;
        advance(&mut outer_idx, &dshape[..row_start]);
    }

    match (out_buf, acc) {
        (Some(b), _) => Ok(ChunkValue::Array(buf_into_array(b, &dshape))),
        (None, Some((a, pshape, _))) => Ok(a.finish(&pshape)),
        (None, None) => unreachable!("a program either writes or reduces"),
    }
}

/// Calls `f(start, len)` for the tiles of at most `tile` elements that cover a row of `row_len`,
/// in order, with a cancellation checkpoint every [`CHECK_TILES`] tiles.
fn for_each_tile(
    row_len: usize,
    tile: usize,
    mut f: impl FnMut(usize, usize) -> Result<()>,
) -> Result<()> {
    let mut t0 = 0;
    let mut tiles = 0u32;
    while t0 < row_len {
        tiles = tiles.wrapping_add(1);
        if tiles.is_multiple_of(CHECK_TILES) {
            checkpoint()?;
        }
        let n = (row_len - t0).min(tile);
        f(t0, n)?;
        t0 += n;
    }
    Ok(())
}

/// Per domain axis, the step of a generated leaf's global flat index (0 where it is broadcast), and
/// the flat index of its element 0: the C-order strides of the leaf's own array (of its window's
/// source, times the window's steps, when it has one), taken in domain order when its axes are
/// permuted.
fn generated_strides(
    leaf: &crate::ops::Leaf,
    broadcast: impl Fn(usize) -> bool,
) -> (SmallVec<[usize; 4]>, usize) {
    let (own_strides, origin) = match &leaf.window {
        None => (strides_of(&leaf.own_shape()), 0),
        Some(w) => {
            let s = strides_of(&w.source);
            let origin = s.iter().zip(&w.start).map(|(s, o)| s * o).sum();
            (s.iter().zip(&w.step).map(|(s, k)| s * k).collect(), origin)
        }
    };
    let pad = leaf.shape.len() - leaf.rank;
    let mut strides: SmallVec<[usize; 4]> = (0..leaf.shape.len())
        .map(|d| match (leaf.axes.is_empty(), d < pad) {
            (true, true) => 0,
            (true, false) => own_strides[d - pad],
            (false, _) => own_strides[leaf.axes[d]],
        })
        .collect();
    for (a, s) in strides.iter_mut().enumerate() {
        if broadcast(a) {
            *s = 0;
        }
    }
    (strides, origin)
}

/// The global index step along a generated leaf's row (the last domain axis).
fn row_step(plan: &LeafPlan) -> u64 {
    plan.strides.last().map_or(1, |&s| s as u64)
}

/// Steps a C-order odometer over `shape`.
fn advance(idx: &mut [usize], shape: &[usize]) {
    for a in (0..shape.len()).rev() {
        idx[a] += 1;
        if idx[a] < shape[a] {
            return;
        }
        idx[a] = 0;
    }
}

fn copy_slice(data: &ArrayData, start: usize, n: usize, buf: &mut Buf) {
    match (data, buf) {
        (ArrayData::F64(a), Buf::F64(b)) => {
            b[..n].copy_from_slice(&a.as_slice().expect("standard")[start..start + n])
        }
        (ArrayData::F32(a), Buf::F32(b)) => {
            b[..n].copy_from_slice(&a.as_slice().expect("standard")[start..start + n])
        }
        (ArrayData::I64(a), Buf::I64(b)) => {
            b[..n].copy_from_slice(&a.as_slice().expect("standard")[start..start + n])
        }
        (ArrayData::I32(a), Buf::I32(b)) => {
            b[..n].copy_from_slice(&a.as_slice().expect("standard")[start..start + n])
        }
        (ArrayData::U8(a), Buf::U8(b)) => {
            b[..n].copy_from_slice(&a.as_slice().expect("standard")[start..start + n])
        }
        (ArrayData::U64(a), Buf::U64(b)) => {
            b[..n].copy_from_slice(&a.as_slice().expect("standard")[start..start + n])
        }
        (ArrayData::Bool(a), Buf::Bool(b)) => {
            b[..n].copy_from_slice(&a.as_slice().expect("standard")[start..start + n])
        }
        (ArrayData::C128(a), Buf::C128(b)) => {
            b[..n].copy_from_slice(&a.as_slice().expect("standard")[start..start + n])
        }
        (a, b) => unreachable!(
            "input chunk of dtype {} read into a {} leaf",
            a.dtype(),
            b.dtype()
        ),
    }
}

/// One value of a leaf (for leaves constant along the row).
fn leaf_value(
    leaf: &crate::ops::Leaf,
    plan: &LeafPlan,
    base: usize,
    inputs: &[Cow<'_, ArrayData>],
) -> Scalar {
    match (&leaf.kind, &plan.row) {
        (LeafKind::Full(s), _) => *s,
        (LeafKind::Input(i), _) => {
            let data: &ArrayData = &inputs[*i];
            let flat = |a: &ArrayData| -> Scalar {
                match a {
                    ArrayData::F64(x) => Scalar::F64(x.as_slice().expect("standard")[base]),
                    ArrayData::F32(x) => Scalar::F32(x.as_slice().expect("standard")[base]),
                    ArrayData::I64(x) => Scalar::I64(x.as_slice().expect("standard")[base]),
                    ArrayData::Bool(x) => Scalar::Bool(x.as_slice().expect("standard")[base]),
                    ArrayData::C128(x) => Scalar::C128(x.as_slice().expect("standard")[base]),
                    ArrayData::I32(x) => Scalar::I32(x.as_slice().expect("standard")[base]),
                    ArrayData::U8(x) => Scalar::U8(x.as_slice().expect("standard")[base]),
                    ArrayData::U64(x) => Scalar::U64(x.as_slice().expect("standard")[base]),
                }
            };
            flat(data)
        }
        (kind, _) => {
            let mut b = Buf::new(leaf.dtype, 1);
            generate(kind, base as u64, 1, 1, &mut b);
            match b {
                Buf::F64(v) => Scalar::F64(v[0]),
                Buf::F32(v) => Scalar::F32(v[0]),
                Buf::I64(v) => Scalar::I64(v[0]),
                Buf::Bool(v) => Scalar::Bool(v[0]),
                Buf::C128(v) => Scalar::C128(v[0]),
                Buf::I32(v) => Scalar::I32(v[0]),
                Buf::U8(v) => Scalar::U8(v[0]),
                Buf::U64(v) => Scalar::U64(v[0]),
            }
        }
    }
}

/// Fills `n` generated values at global flat indices `start + j·step`.
fn generate(kind: &LeafKind, start: u64, step: u64, n: usize, buf: &mut Buf) {
    let index = |j: usize| start + j as u64 * step;
    match (kind, buf) {
        (LeafKind::Random { seed, dist }, buf) => {
            let key = RandomKey::new(*seed, dist.code());
            match (*dist, buf) {
                (Distribution::Uniform, Buf::F64(b)) => {
                    random::fill_uniform_f64(key, start, step, &mut b[..n])
                }
                (Distribution::Uniform, Buf::F32(b)) => {
                    random::fill_uniform_f32(key, start, step, &mut b[..n])
                }
                (Distribution::StandardNormal, Buf::F64(b)) => {
                    random::fill_standard_normal_f64(key, start, step, &mut b[..n])
                }
                (Distribution::StandardNormal, Buf::F32(b)) => {
                    random::fill_standard_normal_f32(key, start, step, &mut b[..n])
                }
                (Distribution::Integers { low, high }, Buf::I64(b)) => {
                    random::fill_integers(key, low, high, start, step, &mut b[..n])
                }
                (Distribution::StandardExponential, Buf::F64(b)) => {
                    random::fill_standard_exponential(key, start, step, &mut b[..n])
                }
                (Distribution::StandardGamma { shape }, Buf::F64(b)) => {
                    random::fill_standard_gamma(key, shape.get(), start, step, &mut b[..n])
                }
                (Distribution::Beta { a, b: beta_b }, Buf::F64(b)) => {
                    random::fill_beta(key, a.get(), beta_b.get(), start, step, &mut b[..n])
                }
                (Distribution::Poisson { lam }, Buf::I64(b)) => {
                    random::fill_poisson(key, lam.get(), start, step, &mut b[..n])
                }
                (Distribution::Binomial { n: trials, p }, Buf::I64(b)) => {
                    random::fill_binomial(key, trials, p.get(), start, step, &mut b[..n])
                }
                (Distribution::Permutation { n: len }, Buf::I64(b)) => {
                    random::fill_permutation(key, len, start, step, &mut b[..n])
                }
                (d, b) => unreachable!("{} values are never {}", d.name(), b.dtype()),
            }
        }
        (LeafKind::Arange { start: s, step: d }, Buf::I64(b)) => {
            let (s, d) = (*s as i64, *d as i64);
            for (j, v) in b[..n].iter_mut().enumerate() {
                *v = s + index(j) as i64 * d;
            }
        }
        (LeafKind::Arange { start: s, step: d }, Buf::F64(b)) => {
            for (j, v) in b[..n].iter_mut().enumerate() {
                *v = s + index(j) as f64 * d;
            }
        }
        (LeafKind::Arange { start: s, step: d }, Buf::F32(b)) => {
            for (j, v) in b[..n].iter_mut().enumerate() {
                *v = (s + index(j) as f64 * d) as f32;
            }
        }
        (
            LeafKind::Linspace {
                start: s,
                stop,
                step: d,
                num,
                endpoint,
            },
            buf,
        ) => {
            let value = |i: u64| {
                if *endpoint && i + 1 == *num && *num > 1 {
                    *stop
                } else {
                    s + i as f64 * d
                }
            };
            match buf {
                Buf::F64(b) => b[..n]
                    .iter_mut()
                    .enumerate()
                    .for_each(|(j, v)| *v = value(index(j))),
                Buf::F32(b) => b[..n]
                    .iter_mut()
                    .enumerate()
                    .for_each(|(j, v)| *v = value(index(j)) as f32),
                b => unreachable!("linspace is float, not {}", b.dtype()),
            }
        }
        (kind, b) => unreachable!("{kind:?} cannot fill a {} leaf", b.dtype()),
    }
}

fn write_tile(out: &mut Buf, at: usize, src: &Buf, n: usize) {
    match (out, src) {
        (Buf::F64(o), Buf::F64(s)) => o[at..at + n].copy_from_slice(&s[..n]),
        (Buf::F32(o), Buf::F32(s)) => o[at..at + n].copy_from_slice(&s[..n]),
        (Buf::I64(o), Buf::I64(s)) => o[at..at + n].copy_from_slice(&s[..n]),
        (Buf::I32(o), Buf::I32(s)) => o[at..at + n].copy_from_slice(&s[..n]),
        (Buf::U8(o), Buf::U8(s)) => o[at..at + n].copy_from_slice(&s[..n]),
        (Buf::U64(o), Buf::U64(s)) => o[at..at + n].copy_from_slice(&s[..n]),
        (Buf::Bool(o), Buf::Bool(s)) => o[at..at + n].copy_from_slice(&s[..n]),
        (Buf::C128(o), Buf::C128(s)) => o[at..at + n].copy_from_slice(&s[..n]),
        _ => unreachable!("output buffer has the program's dtype"),
    }
}

fn buf_into_array(b: Buf, shape: &[usize]) -> ArrayData {
    let s = IxDyn(shape);
    match b {
        Buf::F64(v) => ArrayData::F64(ArrayD::from_shape_vec(s, v).expect("block shape")),
        Buf::F32(v) => ArrayData::F32(ArrayD::from_shape_vec(s, v).expect("block shape")),
        Buf::I64(v) => ArrayData::I64(ArrayD::from_shape_vec(s, v).expect("block shape")),
        Buf::I32(v) => ArrayData::I32(ArrayD::from_shape_vec(s, v).expect("block shape")),
        Buf::U8(v) => ArrayData::U8(ArrayD::from_shape_vec(s, v).expect("block shape")),
        Buf::U64(v) => ArrayData::U64(ArrayD::from_shape_vec(s, v).expect("block shape")),
        Buf::Bool(v) => ArrayData::Bool(ArrayD::from_shape_vec(s, v).expect("block shape")),
        Buf::C128(v) => ArrayData::C128(ArrayD::from_shape_vec(s, v).expect("block shape")),
    }
}

/// The dtype of a generated leaf must be one the generator produces.
pub(crate) fn _dtype_ok(kind: &LeafKind, dtype: DType) -> bool {
    match kind {
        LeafKind::Random { dist, .. } => dist.dtype_ok(dtype),
        LeafKind::Linspace { .. } => dtype.is_float(),
        LeafKind::Arange { .. } => matches!(dtype, DType::I64 | DType::F32 | DType::F64),
        _ => true,
    }
}
