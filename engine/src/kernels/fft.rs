//! FFT lane kernels for [`FftOp`]: every lane of a block along the op's axis transformed by a
//! `rustfft` plan (complex) or a `realfft` plan (real input or output), scaled by the norm.
//!
//! Lanes are transformed a tile at a time. A tile is a few lanes copied (cut or zero-padded to
//! the transform's input length, cast to f64 or complex on the way) into one contiguous buffer,
//! transformed there, and written to the output scaled. When the axis is not the last, a tile is
//! a few neighbouring columns (`TILE_ROW_BYTES` of source per row): the copies in and out are
//! cache-blocked transpositions that move whole cache lines, where copying one strided lane at a
//! time touched a cache line per element. When the axis is the last, lanes are already contiguous
//! and a tile is as many whole lanes as fit `TILE_POINTS`. A complex tile is transformed in one
//! `rustfft` call (it runs every consecutive lane of a buffer), so per-call costs are paid once
//! per tile.
//!
//! A complex transform (`fft`, `ifft`) of real input runs as a real-input transform: the spectrum
//! of real samples is Hermitian, so half of it is computed and the other half written as the
//! conjugate mirror — half the work of a complex transform of the samples cast to complex.
//!
//! Plans (the chosen algorithm and its twiddles) are made once per (transform, length) for the
//! process and shared by every block and thread, within `PLAN_CACHE_POINTS`. The output is
//! written once per element into memory that is never zero-filled first.
//!
//! Tiling changes no value: each lane's result depends only on that lane and the plan, so local
//! and cluster results stay equal bit for bit whatever the tile sizes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hash;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex, OnceLock};

use ndarray::{ArrayD, IxDyn};
use num_complex::Complex64;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

use crate::data::{ArrayData, Element};
use crate::error::{Error, Result};
use crate::ops::fft::{FftKind, FftOp};

/// Bytes of source per row of a tile when lanes are strided: a tile is as many neighbouring
/// columns as make two cache lines of source (16 float64, 8 complex128; between 8 and 16
/// columns), so each strided row read brings whole lines. A tile's buffers for a 10⁴-point
/// transform (16 lanes of samples and of half spectra) are 2.6 MB. On fft_10000, 8 and 16 float64
/// columns measured the same (one run each on a loaded machine): the gather is still ~13% of the
/// workload, bound by a TLB miss per row (rows 8 kB apart); wider tiles or huge pages are the
/// next things to try.
const TILE_ROW_BYTES: usize = 128;

/// Columns per tile when lanes are strided, for source elements of type `S`.
fn tile_columns<S>() -> usize {
    (TILE_ROW_BYTES / std::mem::size_of::<S>().max(1)).clamp(8, 16)
}

/// Rows ahead of the one being copied whose lines are prefetched in the strided gather and
/// scatter. Rows are a page or more apart, where the hardware prefetchers do not follow; asking
/// for row i + 8 while copying row i hides most of the miss latency. On fft_10000 (one run each,
/// load 6–7, AVX-512 Xeon) it cut the process's CPU time by ~8 %; 8 and 16 rows ahead measured
/// the same, and tiles of 32–128 float64 columns were no faster than 16 with or without it.
const PREFETCH_ROWS: usize = 8;

/// Asks for the cache lines of `len` elements from `p` on (a hint: never faults).
#[inline(always)]
fn prefetch<T>(p: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let bytes = len * std::mem::size_of::<T>();
        let mut off = 0;
        while off < bytes {
            // SAFETY: prefetch is a hint and never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>().wrapping_add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// Points per tile when lanes are contiguous: enough short lanes per `rustfft` call that per-call
/// costs vanish, few enough that the tile's buffers stay in L2.
const TILE_POINTS: usize = 1 << 15;

/// Budget of the process's plan cache, in transform points summed over the cached plans (a plan
/// holds about its length in twiddles): past it the cache is emptied before the next plan goes
/// in, so lengths read from messages cannot grow it without bound. A plan longer than the budget
/// serves its block and is not kept.
const PLAN_CACHE_POINTS: usize = 1 << 23;

/// The output block of `op` for the input block `x`.
pub fn transform(op: &FftOp, x: &ArrayData) -> Result<ArrayData> {
    if op.axis >= x.shape().len() {
        return Err(Error::ShapeMismatch {
            op: op.name(),
            reason: format!("block of shape {:?} has no axis {}", x.shape(), op.axis),
        });
    }
    if op.n == 0 {
        return Err(Error::InvalidArgument {
            op: op.name(),
            reason: "a transform of 0 points is invalid".into(),
        });
    }
    let geom = Geometry::of(x.shape(), op.axis);
    let mut shape = x.shape().to_vec();
    shape[op.axis] = op.out_len();
    let shape = IxDyn(&shape);
    let scale = op.norm.scale(op.kind, op.n);
    let unsupported = |x: &ArrayData| Error::UnsupportedDType {
        op: op.name(),
        dtype: x.dtype(),
    };
    Ok(match op.kind {
        FftKind::Forward | FftKind::Inverse | FftKind::RealForward => {
            let v = match x {
                ArrayData::C128(a) if op.kind != FftKind::RealForward => {
                    complex_lanes(op, &contiguous(a), geom, scale)
                }
                ArrayData::C128(_) => return Err(unsupported(x)),
                ArrayData::F64(a) => real_forward_lanes(op, &contiguous(a), geom, scale),
                ArrayData::F32(a) => real_forward_lanes(op, &contiguous(a), geom, scale),
                ArrayData::I64(a) => real_forward_lanes(op, &contiguous(a), geom, scale),
                ArrayData::I32(a) => real_forward_lanes(op, &contiguous(a), geom, scale),
                ArrayData::U8(a) => real_forward_lanes(op, &contiguous(a), geom, scale),
                ArrayData::U64(a) => real_forward_lanes(op, &contiguous(a), geom, scale),
                ArrayData::Bool(a) => real_forward_lanes(op, &contiguous(a), geom, scale),
            };
            ArrayData::C128(ArrayD::from_shape_vec(shape, v).expect("one value per element"))
        }
        FftKind::RealInverse => {
            let ArrayData::C128(a) = x else {
                return Err(unsupported(x));
            };
            let v = real_inverse_lanes(op, &contiguous(a), geom, scale);
            ArrayData::F64(ArrayD::from_shape_vec(shape, v).expect("one value per element"))
        }
    })
}

/// The block's elements in row-major order: borrowed when it is laid out so already.
fn contiguous<T: Clone>(a: &ArrayD<T>) -> Cow<'_, [T]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().cloned().collect()),
    }
}

fn complex_lanes(op: &FftOp, src: &[Complex64], g: Geometry, scale: f64) -> Vec<Complex64> {
    let n = op.n;
    let plan = complex_plan(op.kind.is_inverse(), n);
    let mut scratch = vec![Complex64::default(); plan.get_outofplace_scratch_len()];
    transform_lanes(
        src,
        g,
        Widths {
            load: n,
            result: n,
            out: n,
        },
        |v| v,
        |input, result, _| plan.process_outofplace_with_scratch(input, result, &mut scratch),
        |lane, i| lane[i] * scale,
    )
}

/// `rfft` of real lanes, or `fft`/`ifft` of them: the half spectrum from a real-input plan, then
/// for a complex transform the other half as its conjugate mirror (and all of it conjugated for
/// `ifft`, since the inverse transform of real samples is the conjugate of the forward one).
fn real_forward_lanes<S: Element>(
    op: &FftOp,
    src: &[S],
    g: Geometry,
    scale: f64,
) -> Vec<Complex64> {
    let n = op.n;
    let m = n / 2 + 1;
    let plan = real_forward_plan(n);
    let mut scratch = vec![Complex64::default(); plan.get_scratch_len()];
    let run = |input: &mut [f64], result: &mut [Complex64], lanes: usize| {
        for (x, y) in input
            .chunks_exact_mut(n)
            .zip(result.chunks_exact_mut(m))
            .take(lanes)
        {
            plan.process_with_scratch(x, y, &mut scratch)
                .expect("lanes have the plan's lengths");
        }
    };
    let widths = Widths {
        load: n,
        result: m,
        out: op.out_len(),
    };
    match op.kind {
        FftKind::RealForward => {
            transform_lanes(src, g, widths, S::to_f64, run, |lane, i| lane[i] * scale)
        }
        FftKind::Forward => transform_lanes(src, g, widths, S::to_f64, run, |lane, i| {
            let v = if i < m { lane[i] } else { lane[n - i].conj() };
            v * scale
        }),
        FftKind::Inverse => transform_lanes(src, g, widths, S::to_f64, run, |lane, i| {
            let v = if i < m { lane[i].conj() } else { lane[n - i] };
            v * scale
        }),
        FftKind::RealInverse => unreachable!("irfft reads complex lanes"),
    }
}

fn real_inverse_lanes(op: &FftOp, src: &[Complex64], g: Geometry, scale: f64) -> Vec<f64> {
    let n = op.n;
    let m = n / 2 + 1;
    let plan = real_inverse_plan(n);
    let mut scratch = vec![Complex64::default(); plan.get_scratch_len()];
    transform_lanes(
        src,
        g,
        Widths {
            load: m,
            result: n,
            out: n,
        },
        |v| v,
        |input: &mut [Complex64], result: &mut [f64], lanes| {
            for (x, y) in input
                .chunks_exact_mut(m)
                .zip(result.chunks_exact_mut(n))
                .take(lanes)
            {
                // numpy (pocketfft) ignores the imaginary parts of the zero frequency and, for
                // an even length, of the Nyquist one; realfft refuses them, so they go here.
                x[0].im = 0.0;
                if n.is_multiple_of(2) {
                    x[m - 1].im = 0.0;
                }
                plan.process_with_scratch(x, y, &mut scratch)
                    .expect("lanes have the plan's lengths, edge terms real");
            }
        },
        |lane, i| lane[i] * scale,
    )
}

/// The block as `outer` groups of `inner` interleaved lanes of `len` elements: element `i` of
/// lane `(p, q)` is at `(p·len + i)·inner + q` in row-major order.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    outer: usize,
    len: usize,
    inner: usize,
}

impl Geometry {
    fn of(shape: &[usize], axis: usize) -> Self {
        Geometry {
            outer: shape[..axis].iter().product(),
            len: shape[axis],
            inner: shape[axis + 1..].iter().product(),
        }
    }
}

/// Points per lane: loaded into the transform's input buffer, in its result buffer, and in the
/// output block.
#[derive(Clone, Copy, Debug)]
struct Widths {
    load: usize,
    result: usize,
    out: usize,
}

/// Where a tile's lanes are: in the source block (element `i` of lane `b` at
/// `src + b·src_lane + i·src_step`) and in the output block (likewise with `dst`).
#[derive(Clone, Copy, Debug)]
struct Tile {
    lanes: usize,
    src: usize,
    src_lane: usize,
    src_step: usize,
    dst: usize,
    dst_lane: usize,
    dst_step: usize,
}

/// The tiles covering every lane of the block exactly once, and the most lanes any tile has.
fn tiles(g: Geometry, w: Widths, columns: usize) -> (usize, Box<dyn Iterator<Item = Tile>>) {
    if g.inner == 1 {
        let per = (TILE_POINTS / w.load.max(w.result)).clamp(1, g.outer.max(1));
        let (outer, len, out) = (g.outer, g.len, w.out);
        let it = (0..outer).step_by(per).map(move |p| Tile {
            lanes: per.min(outer - p),
            src: p * len,
            src_lane: len,
            src_step: 1,
            dst: p * out,
            dst_lane: out,
            dst_step: 1,
        });
        (per, Box::new(it))
    } else {
        let per = columns.min(g.inner).max(1);
        let Geometry { outer, len, inner } = g;
        let out = w.out;
        let it = (0..outer).flat_map(move |p| {
            (0..inner).step_by(per).map(move |q| Tile {
                lanes: per.min(inner - q),
                src: p * len * inner + q,
                src_lane: 1,
                src_step: inner,
                dst: p * out * inner + q,
                dst_lane: 1,
                dst_step: inner,
            })
        });
        (per, Box::new(it))
    }
}

/// Transforms every lane of the row-major block `src` of geometry `g`: per tile, loads the lanes
/// (each cut or zero-padded to `w.load`, cast by `load`), lets `run` transform the tile's `lanes`
/// input lanes into as many result lanes of `w.result`, and writes element `i` of each output lane
/// as `value(result lane, i)` for `i < w.out`. Returns the output block in row-major order.
fn transform_lanes<S: Copy, I: Copy + Default, R: Copy + Default, D>(
    src: &[S],
    g: Geometry,
    w: Widths,
    load: impl Fn(S) -> I,
    mut run: impl FnMut(&mut [I], &mut [R], usize),
    value: impl Fn(&[R], usize) -> D,
) -> Vec<D> {
    let total = g.outer * w.out * g.inner;
    let (per, tiles) = tiles(g, w, tile_columns::<S>());
    let mut input = vec![I::default(); per * w.load];
    let mut result = vec![R::default(); per * w.result];
    let mut out = Vec::with_capacity(total);
    let dst = &mut out.spare_capacity_mut()[..total];
    advise_huge_pages(dst);
    let mut written = 0;
    for t in tiles {
        gather(src, &t, g.len, &mut input, w.load, &load);
        run(
            &mut input[..t.lanes * w.load],
            &mut result[..t.lanes * w.result],
            t.lanes,
        );
        scatter(&result, w.result, &t, w.out, dst, &value);
        written += t.lanes * w.out;
    }
    assert_eq!(written, total, "the tiles cover the block");
    // SAFETY: the tiles partition the block's lanes (`tiles`), and `scatter` writes all `w.out`
    // elements of every lane of its tile, so each of the `total` elements has been written.
    unsafe { out.set_len(total) };
    out
}

/// Asks Linux to back the large output buffer `buf` (not yet touched) with transparent huge
/// pages. The output is written once into fresh memory, so every 4 KiB page costs a fault on
/// first touch: on fft_10000 page faults were ~25 % of the process's CPU time (two 80 MB blocks
/// per task). With 2 MiB pages there are 512 times fewer faults. Only the 2 MiB-aligned part of
/// the buffer is advised; the call is a hint (an error, or THP set to `never`, changes nothing,
/// and no value depends on it).
fn advise_huge_pages<T>(buf: &mut [MaybeUninit<T>]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = std::mem::size_of_val(buf);
        if bytes < 4 * HUGE {
            return;
        }
        let start = buf.as_mut_ptr() as usize;
        let (lo, hi) = (start.next_multiple_of(HUGE), (start + bytes) & !(HUGE - 1));
        if hi > lo {
            // SAFETY: [lo, hi) lies inside `buf`, which this function borrows mutably and which
            // holds no values yet; MADV_HUGEPAGE changes how pages are backed, never their
            // contents, and its result is deliberately ignored.
            unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

/// Copies the tile's lanes into `buf` (lane `b` at `b·width`), cut or zero-padded to `width`.
fn gather<S: Copy, I: Copy + Default>(
    src: &[S],
    t: &Tile,
    len: usize,
    buf: &mut [I],
    width: usize,
    load: &impl Fn(S) -> I,
) {
    let copy = len.min(width);
    if t.src_step == 1 {
        for (b, lane) in buf.chunks_exact_mut(width).take(t.lanes).enumerate() {
            let s = &src[t.src + b * t.src_lane..][..copy];
            for (d, &v) in lane.iter_mut().zip(s) {
                *d = load(v);
            }
            lane[copy..].fill(I::default());
        }
    } else {
        // Element i of the tile's lanes is one contiguous run of the source: read it whole.
        debug_assert_eq!(t.src_lane, 1);
        for i in 0..copy {
            let ahead = t.src + (i + PREFETCH_ROWS) * t.src_step;
            prefetch(src.as_ptr().wrapping_add(ahead), t.lanes);
            let row = &src[t.src + i * t.src_step..][..t.lanes];
            for (b, &v) in row.iter().enumerate() {
                buf[b * width + i] = load(v);
            }
        }
        for lane in buf.chunks_exact_mut(width).take(t.lanes) {
            lane[copy..].fill(I::default());
        }
    }
}

/// Writes element `i < out` of each of the tile's output lanes as `value(result lane, i)`.
fn scatter<R, D>(
    result: &[R],
    width: usize,
    t: &Tile,
    out: usize,
    dst: &mut [MaybeUninit<D>],
    value: &impl Fn(&[R], usize) -> D,
) {
    if t.dst_step == 1 {
        for (b, lane) in result.chunks_exact(width).take(t.lanes).enumerate() {
            let d = &mut dst[t.dst + b * t.dst_lane..][..out];
            for (i, d) in d.iter_mut().enumerate() {
                d.write(value(lane, i));
            }
        }
    } else {
        // Element i of the tile's output lanes is one contiguous run: write it whole.
        debug_assert_eq!(t.dst_lane, 1);
        for i in 0..out {
            let ahead = t.dst + (i + PREFETCH_ROWS) * t.dst_step;
            prefetch(dst.as_ptr().wrapping_add(ahead), t.lanes);
            let row = &mut dst[t.dst + i * t.dst_step..][..t.lanes];
            for (d, lane) in row.iter_mut().zip(result.chunks_exact(width)) {
                d.write(value(lane, i));
            }
        }
    }
}

/// Plans of one transform family by length (and direction), within `PLAN_CACHE_POINTS`.
struct PlanCache<K, P> {
    plans: HashMap<K, P>,
    points: usize,
}

fn cached<K: Hash + Eq, P: Clone>(
    cache: &OnceLock<Mutex<PlanCache<K, P>>>,
    key: K,
    n: usize,
    make: impl FnOnce() -> P,
) -> P {
    let cache = cache.get_or_init(|| {
        Mutex::new(PlanCache {
            plans: HashMap::new(),
            points: 0,
        })
    });
    // A panic while the lock was held left at worst a missing entry: the cache stays usable.
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = c.plans.get(&key) {
        return p.clone();
    }
    let plan = make();
    if n <= PLAN_CACHE_POINTS {
        if c.points + n > PLAN_CACHE_POINTS {
            c.plans.clear();
            c.points = 0;
        }
        c.points += n;
        c.plans.insert(key, plan.clone());
    }
    plan
}

type ComplexPlans = PlanCache<(bool, usize), Arc<dyn Fft<f64>>>;
type RealForwardPlans = PlanCache<usize, Arc<dyn RealToComplex<f64>>>;
type RealInversePlans = PlanCache<usize, Arc<dyn ComplexToReal<f64>>>;

fn complex_plan(inverse: bool, n: usize) -> Arc<dyn Fft<f64>> {
    static PLANS: OnceLock<Mutex<ComplexPlans>> = OnceLock::new();
    cached(&PLANS, (inverse, n), n, || {
        let mut planner = FftPlanner::new();
        if inverse {
            planner.plan_fft_inverse(n)
        } else {
            planner.plan_fft_forward(n)
        }
    })
}

fn real_forward_plan(n: usize) -> Arc<dyn RealToComplex<f64>> {
    static PLANS: OnceLock<Mutex<RealForwardPlans>> = OnceLock::new();
    cached(&PLANS, n, n, || RealFftPlanner::new().plan_fft_forward(n))
}

fn real_inverse_plan(n: usize) -> Arc<dyn ComplexToReal<f64>> {
    static PLANS: OnceLock<Mutex<RealInversePlans>> = OnceLock::new();
    cached(&PLANS, n, n, || RealFftPlanner::new().plan_fft_inverse(n))
}
