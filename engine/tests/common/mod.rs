//! Shared helpers for the integration tests: deterministic test data, chunkings to run every case on,
//! numpy-style oracles written directly against ndarray, and `assert_array_eq`, which checks shape,
//! dtype and values (exact for integers and bools, relative + absolute tolerance for floats, NaN equal
//! to NaN).
//!
//! Nothing here calls into tessera's kernels: the oracles are plain ndarray code over whole arrays.

#![allow(dead_code)]

use std::fmt::Debug;

use ndarray::{ArrayD, Axis, Dimension, IxDyn, SliceInfoElem};
use tessera::{Array, ArrayData, ChunkSpec, DType, Element};

// ---------------------------------------------------------------------------------------------
// deterministic data

/// SplitMix64, used only to make test data.
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        TestRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x1234_5678_9ABC_DEF0)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [lo, hi).
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }
}

/// Element types tests generate data for.
pub trait Gen: Element {
    /// A value drawn from `rng`: floats in [-10, 10) rounded to 1/64 (so some ties and exact zeros
    /// occur), ints in [-20, 20), bools fair.
    fn draw(rng: &mut TestRng) -> Self;
}

impl Gen for f64 {
    fn draw(rng: &mut TestRng) -> Self {
        (rng.unit() * 1280.0 - 640.0).round() / 64.0
    }
}
impl Gen for f32 {
    fn draw(rng: &mut TestRng) -> Self {
        ((rng.unit() * 1280.0 - 640.0).round() / 64.0) as f32
    }
}
impl Gen for i64 {
    fn draw(rng: &mut TestRng) -> Self {
        rng.int(-20, 20)
    }
}
impl Gen for i32 {
    fn draw(rng: &mut TestRng) -> Self {
        rng.int(-20, 20) as i32
    }
}
impl Gen for u8 {
    fn draw(rng: &mut TestRng) -> Self {
        rng.int(0, 40) as u8
    }
}
impl Gen for u64 {
    fn draw(rng: &mut TestRng) -> Self {
        rng.int(0, 40) as u64
    }
}
impl Gen for bool {
    fn draw(rng: &mut TestRng) -> Self {
        rng.next_u64() & 1 == 1
    }
}

/// Deterministic test data of `shape`.
pub fn sample<T: Gen>(shape: &[usize], seed: u64) -> ArrayD<T> {
    let mut rng = TestRng::new(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || T::draw(&mut rng))
}

/// Deterministic floats in [lo, hi) (not rounded).
pub fn gen_range(shape: &[usize], seed: u64, lo: f64, hi: f64) -> ArrayD<f64> {
    let mut rng = TestRng::new(seed);
    ArrayD::from_shape_simple_fn(IxDyn(shape), || lo + rng.unit() * (hi - lo))
}

/// Deterministic positive floats in [0.1, 10).
pub fn gen_positive(shape: &[usize], seed: u64) -> ArrayD<f64> {
    gen_range(shape, seed, 0.1, 10.0)
}

/// `0, 1, 2, …` in C order, as i64.
pub fn iota(shape: &[usize]) -> ArrayD<i64> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n as i64).collect()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// chunkings

/// The chunkings every case runs on, with a name for messages:
/// - regular: two or more equal chunks (a divisor of the axis where there is one);
/// - irregular: blocks of about 2/7 of the axis, leaving a smaller last chunk;
/// - ragged: explicit sizes 1, 2, 3, … (irregular in the middle too);
/// - single: one chunk;
/// - larger: a block larger than the array.
pub fn chunkings(shape: &[usize]) -> Vec<(&'static str, ChunkSpec)> {
    let regular: Vec<usize> = shape
        .iter()
        .map(|&n| {
            if n <= 1 {
                1
            } else {
                (2..n).find(|d| n % d == 0).map_or(n.div_ceil(2), |d| n / d)
            }
        })
        .collect();
    let irregular: Vec<usize> = shape.iter().map(|&n| (n * 2 / 7).max(1)).collect();
    let ragged: Vec<Vec<usize>> = shape.iter().map(|&n| ragged_axis(n)).collect();
    let larger: Vec<usize> = shape.iter().map(|&n| n * 2 + 3).collect();
    vec![
        ("regular", ChunkSpec::Block(regular)),
        ("irregular", ChunkSpec::Block(irregular)),
        ("ragged", ChunkSpec::Explicit(ragged)),
        ("single", ChunkSpec::Block(shape.to_vec())),
        ("larger", ChunkSpec::Block(larger)),
    ]
}

/// Sizes 1, 2, 3, … adding up to `n` (the last one cut short); `[0]` for an empty axis.
pub fn ragged_axis(n: usize) -> Vec<usize> {
    if n == 0 {
        return vec![0];
    }
    let mut out = Vec::new();
    let (mut left, mut k) = (n, 1);
    while left > 0 {
        let c = k.min(left);
        out.push(c);
        left -= c;
        k += 1;
    }
    out
}

/// Shapes of every rank from 0 to 4 used by the "every rank" tests.
pub fn shapes_0_to_4() -> Vec<Vec<usize>> {
    vec![
        vec![],
        vec![17],
        vec![37, 23],
        vec![5, 6, 7],
        vec![3, 4, 5, 6],
    ]
}

// ---------------------------------------------------------------------------------------------
// comparison

/// Tolerances for float comparisons: `|a - e| <= atol + rtol * |e|`.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub rtol: f64,
    pub atol: f64,
}

pub const TOL_F64: Tol = Tol {
    rtol: 1e-10,
    atol: 1e-12,
};
pub const TOL_F32: Tol = Tol {
    rtol: 1e-5,
    atol: 1e-6,
};
pub const EXACT: Tol = Tol {
    rtol: 0.0,
    atol: 0.0,
};

/// Element comparison used by [`assert_array_eq`].
pub trait Compare: Element + Debug {
    fn default_tol() -> Tol;
    fn close(actual: Self, expected: Self, tol: Tol) -> bool;
}

impl Compare for f64 {
    fn default_tol() -> Tol {
        TOL_F64
    }
    fn close(a: f64, e: f64, tol: Tol) -> bool {
        if a.is_nan() || e.is_nan() {
            return a.is_nan() && e.is_nan();
        }
        if a.is_infinite() || e.is_infinite() {
            return a == e;
        }
        (a - e).abs() <= tol.atol + tol.rtol * e.abs()
    }
}
impl Compare for f32 {
    fn default_tol() -> Tol {
        TOL_F32
    }
    fn close(a: f32, e: f32, tol: Tol) -> bool {
        f64::close(a as f64, e as f64, tol)
    }
}
impl Compare for i64 {
    fn default_tol() -> Tol {
        EXACT
    }
    fn close(a: i64, e: i64, _tol: Tol) -> bool {
        a == e
    }
}
impl Compare for i32 {
    fn default_tol() -> Tol {
        EXACT
    }
    fn close(a: i32, e: i32, _tol: Tol) -> bool {
        a == e
    }
}
impl Compare for u8 {
    fn default_tol() -> Tol {
        EXACT
    }
    fn close(a: u8, e: u8, _tol: Tol) -> bool {
        a == e
    }
}
impl Compare for u64 {
    fn default_tol() -> Tol {
        EXACT
    }
    fn close(a: u64, e: u64, _tol: Tol) -> bool {
        a == e
    }
}
impl Compare for bool {
    fn default_tol() -> Tol {
        EXACT
    }
    fn close(a: bool, e: bool, _tol: Tol) -> bool {
        a == e
    }
}

/// Asserts that computed data has `expected`'s dtype, shape and values (default tolerance).
#[track_caller]
pub fn assert_array_eq<T: Compare>(actual: &ArrayData, expected: &ArrayD<T>) {
    assert_array_close(actual, expected, T::default_tol());
}

/// [`assert_array_eq`] with explicit float tolerances.
#[track_caller]
pub fn assert_array_close<T: Compare>(actual: &ArrayData, expected: &ArrayD<T>, tol: Tol) {
    assert_eq!(
        actual.dtype(),
        T::DTYPE,
        "dtype: got {}, expected {}",
        actual.dtype(),
        T::DTYPE
    );
    assert_eq!(actual.shape(), expected.shape(), "shape");
    let a = T::view(actual).expect("dtype checked");
    let mut bad = Vec::new();
    for ((idx, &x), &e) in a.indexed_iter().zip(expected.iter()) {
        if !T::close(x, e, tol) {
            bad.push((format!("{:?}", idx.slice()), x, e));
        }
    }
    if !bad.is_empty() {
        let first: Vec<String> = bad
            .iter()
            .take(8)
            .map(|(i, x, e)| format!("  at {i}: got {x:?}, expected {e:?}"))
            .collect();
        panic!(
            "{} of {} elements differ (tol {tol:?}):\n{}",
            bad.len(),
            a.len(),
            first.join("\n")
        );
    }
}

/// Bit-for-bit equality of two computed arrays (floats compared by their bits).
#[track_caller]
pub fn assert_bits_eq(a: &ArrayData, b: &ArrayData) {
    assert_eq!(a.dtype(), b.dtype(), "dtype");
    assert_eq!(a.shape(), b.shape(), "shape");
    match (a, b) {
        (ArrayData::F64(x), ArrayData::F64(y)) => {
            for (i, (p, q)) in x.iter().zip(y.iter()).enumerate() {
                assert_eq!(p.to_bits(), q.to_bits(), "flat index {i}: {p} vs {q}");
            }
        }
        (ArrayData::F32(x), ArrayData::F32(y)) => {
            for (i, (p, q)) in x.iter().zip(y.iter()).enumerate() {
                assert_eq!(p.to_bits(), q.to_bits(), "flat index {i}: {p} vs {q}");
            }
        }
        _ => assert_eq!(a, b),
    }
}

/// Computes `arr` and checks it against `expected`: the lazy array's shape and dtype metadata first,
/// then the computed data. Also checks that the chunk grid tiles the shape.
#[track_caller]
pub fn check<T: Compare>(arr: &Array, expected: &ArrayD<T>) {
    check_tol(arr, expected, T::default_tol())
}

/// [`check`] with explicit tolerances.
#[track_caller]
pub fn check_tol<T: Compare>(arr: &Array, expected: &ArrayD<T>, tol: Tol) {
    assert_eq!(arr.shape(), expected.shape(), "lazy shape of {arr:?}");
    assert_eq!(arr.dtype(), T::DTYPE, "lazy dtype of {arr:?}");
    assert_eq!(arr.chunks().shape(), arr.shape(), "chunks of {arr:?}");
    let got = arr
        .compute_dyn()
        .unwrap_or_else(|e| panic!("computing {arr:?} failed: {e}"));
    assert_array_close(&got, expected, tol);
}

// ---------------------------------------------------------------------------------------------
// oracles

/// numpy's broadcast shape, written out independently.
pub fn np_broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let get = |s: &[usize], i: usize| -> usize {
        let pad = rank - s.len();
        if i < pad { 1 } else { s[i - pad] }
    };
    (0..rank)
        .map(|i| {
            let (x, y) = (get(a, i), get(b, i));
            if x == y || y == 1 {
                Some(x)
            } else if x == 1 {
                Some(y)
            } else {
                None
            }
        })
        .collect()
}

/// Broadcasts to `shape` and copies.
pub fn bcast<T: Clone>(a: &ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    a.broadcast(IxDyn(shape))
        .unwrap_or_else(|| panic!("oracle cannot broadcast {:?} to {shape:?}", a.shape()))
        .to_owned()
}

/// Elementwise `f` over two broadcast arrays.
pub fn zip_with<A: Clone, B: Clone, R>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    f: impl Fn(A, B) -> R,
) -> ArrayD<R> {
    let shape = np_broadcast_shape(a.shape(), b.shape()).expect("oracle shapes broadcast");
    let a = bcast(a, &shape);
    let b = bcast(b, &shape);
    ndarray::Zip::from(&a)
        .and(&b)
        .map_collect(|x, y| f(x.clone(), y.clone()))
}

/// Elementwise `f` over three broadcast arrays.
pub fn zip3_with<A: Clone, B: Clone, C: Clone, R>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    c: &ArrayD<C>,
    f: impl Fn(A, B, C) -> R,
) -> ArrayD<R> {
    let ab = np_broadcast_shape(a.shape(), b.shape()).expect("oracle shapes broadcast");
    let shape = np_broadcast_shape(&ab, c.shape()).expect("oracle shapes broadcast");
    let (a, b, c) = (bcast(a, &shape), bcast(b, &shape), bcast(c, &shape));
    ndarray::Zip::from(&a)
        .and(&b)
        .and(&c)
        .map_collect(|x, y, z| f(x.clone(), y.clone(), z.clone()))
}

/// Applies `f` to every lane of the reduced `axes` (each lane in C order over those axes) and returns
/// the array over the kept axes (with the reduced axes as length 1 when `keepdims`).
pub fn reduce_lanes<T: Clone, R>(
    a: &ArrayD<T>,
    axes: &[usize],
    keepdims: bool,
    f: impl Fn(&[T]) -> R,
) -> ArrayD<R> {
    let ndim = a.ndim();
    let kept: Vec<usize> = (0..ndim).filter(|x| !axes.contains(x)).collect();
    let mut reduced: Vec<usize> = axes.to_vec();
    reduced.sort_unstable();
    let perm: Vec<usize> = kept.iter().chain(&reduced).copied().collect();
    let permuted = a.view().permuted_axes(IxDyn(&perm));
    let flat: Vec<T> = permuted.iter().cloned().collect();
    let lane: usize = reduced.iter().map(|&x| a.shape()[x]).product();
    let kept_shape: Vec<usize> = kept.iter().map(|&x| a.shape()[x]).collect();
    let outer: usize = kept_shape.iter().product();
    let values: Vec<R> = (0..outer)
        .map(|i| f(&flat[i * lane..(i + 1) * lane]))
        .collect();
    let shape: Vec<usize> = if keepdims {
        (0..ndim)
            .map(|x| if axes.contains(&x) { 1 } else { a.shape()[x] })
            .collect()
    } else {
        kept_shape
    };
    ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap()
}

/// numpy's argmin/argmax over one lane: index of the best value, the first one on ties, the first NaN
/// if there is one.
pub fn arg_best(lane: &[f64], is_min: bool) -> i64 {
    if let Some(i) = lane.iter().position(|v| v.is_nan()) {
        return i as i64;
    }
    let mut best = 0;
    for (i, &v) in lane.iter().enumerate() {
        let better = if is_min {
            v < lane[best]
        } else {
            v > lane[best]
        };
        if better {
            best = i;
        }
    }
    best as i64
}

/// NaN-propagating min or max of a lane.
pub fn nan_extreme(lane: &[f64], is_min: bool) -> f64 {
    if lane.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    lane.iter().copied().fold(
        if is_min {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        },
        |m, v| if is_min { m.min(v) } else { m.max(v) },
    )
}

/// Two-pass variance of a lane with `ddof`.
pub fn two_pass_var(lane: &[f64], ddof: f64) -> f64 {
    let n = lane.len() as f64;
    let mean = lane.iter().sum::<f64>() / n;
    let ss: f64 = lane.iter().map(|v| (v - mean) * (v - mean)).sum();
    ss / (n - ddof)
}

/// Converts ndarray slice elements to numpy's semantics for ndarray's own `slice`: bounds clamped to
/// the axis (ndarray panics on out-of-range bounds where numpy clamps), and `..` for axes the
/// elements do not mention.
pub fn clamp_slice(info: &[SliceInfoElem], shape: &[usize]) -> Vec<SliceInfoElem> {
    let mut out = Vec::with_capacity(shape.len());
    for (axis, &n) in shape.iter().enumerate() {
        let n = n as isize;
        let clamp = |v: isize| -> isize {
            let v = if v < 0 { v + n } else { v };
            v.clamp(0, n)
        };
        out.push(match info.get(axis) {
            None => SliceInfoElem::Slice {
                start: 0,
                end: None,
                step: 1,
            },
            Some(SliceInfoElem::Slice { start, end, step }) => {
                let lo = clamp(*start);
                let hi = end.map_or(n, clamp).max(lo);
                SliceInfoElem::Slice {
                    start: lo,
                    end: Some(hi),
                    step: *step,
                }
            }
            Some(other) => *other,
        });
    }
    out
}

/// ndarray's own `slice`, with numpy's clamping of out-of-range bounds.
pub fn oracle_slice<T: Clone>(a: &ArrayD<T>, info: &[SliceInfoElem]) -> ArrayD<T> {
    let info = clamp_slice(info, a.shape());
    a.slice(info.as_slice()).to_owned()
}

/// Reshape in C order.
pub fn oracle_reshape<T: Clone>(a: &ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), a.iter().cloned().collect()).unwrap()
}

/// Matrix product by the textbook triple loop.
pub fn oracle_matmul<T>(a: &ArrayD<T>, b: &ArrayD<T>) -> ArrayD<T>
where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
{
    let (n, k) = (a.shape()[0], a.shape()[1]);
    let m = b.shape()[1];
    assert_eq!(b.shape()[0], k);
    ArrayD::from_shape_fn(IxDyn(&[n, m]), |ix| {
        let (i, j) = (ix[0], ix[1]);
        let mut s = T::default();
        for p in 0..k {
            s = s + a[[i, p]] * b[[p, j]];
        }
        s
    })
}

/// numpy's floored remainder for floats (`np.remainder`): the result has the divisor's sign.
pub fn np_rem_f64(a: f64, b: f64) -> f64 {
    if b == 0.0 || !a.is_finite() || b.is_nan() {
        return f64::NAN;
    }
    if b.is_infinite() {
        // numpy: x % inf is x for x of inf's sign (or zero), inf otherwise.
        return if a == 0.0 || (a > 0.0) == (b > 0.0) {
            a
        } else {
            b
        };
    }
    let r = if b > 0.0 {
        a.rem_euclid(b)
    } else {
        -((-a).rem_euclid(-b))
    };
    // rem_euclid can round up to exactly |b| for tiny negative inputs; numpy gives a result in range.
    if r == b { 0.0 } else { r }
}

/// numpy's integer remainder: floored, 0 for a zero divisor.
pub fn np_rem_i64(a: i64, b: i64) -> i64 {
    if b == 0 {
        0
    } else if b > 0 {
        a.rem_euclid(b)
    } else {
        -((-a).rem_euclid(-b))
    }
}

/// Moves an axis of a 1-D-or-more array to position 0 (for oracles built on lanes).
pub fn lane_axis_first<T: Clone>(a: &ArrayD<T>, axis: usize) -> ArrayD<T> {
    let mut perm: Vec<usize> = vec![axis];
    perm.extend((0..a.ndim()).filter(|&x| x != axis));
    a.view().permuted_axes(IxDyn(&perm)).to_owned()
}

/// ndarray concatenate of owned arrays.
pub fn oracle_concat<T: Clone>(arrays: &[ArrayD<T>], axis: usize) -> ArrayD<T> {
    let views: Vec<_> = arrays.iter().map(|a| a.view()).collect();
    ndarray::concatenate(Axis(axis), &views).unwrap()
}

/// ndarray stack of owned arrays.
pub fn oracle_stack<T: Clone>(arrays: &[ArrayD<T>], axis: usize) -> ArrayD<T> {
    let views: Vec<_> = arrays.iter().map(|a| a.view()).collect();
    ndarray::stack(Axis(axis), &views).unwrap()
}

// ---------------------------------------------------------------------------------------------
// conversions written out for oracles (numpy astype semantics)

pub fn as_f64<T: Element>(a: &ArrayD<T>) -> ArrayD<f64> {
    a.mapv(|v| match v.into_scalar() {
        tessera::Scalar::Bool(b) => {
            if b {
                1.0
            } else {
                0.0
            }
        }
        tessera::Scalar::I64(i) => i as f64,
        tessera::Scalar::I32(i) => i as f64,
        tessera::Scalar::U8(i) => i as f64,
        tessera::Scalar::U64(i) => i as f64,
        tessera::Scalar::F32(f) => f as f64,
        tessera::Scalar::F64(f) => f,
        tessera::Scalar::C128(c) => c.re,
    })
}

pub fn as_f32<T: Element>(a: &ArrayD<T>) -> ArrayD<f32> {
    as_f64(a).mapv(|v| v as f32)
}

pub fn dtype_of<T: Element>() -> DType {
    T::DTYPE
}

/// numpy's `astype(float64)` of dynamically typed data.
pub fn data_f64(a: &ArrayData) -> ArrayD<f64> {
    match a {
        ArrayData::Bool(x) => x.mapv(|v| if v { 1.0 } else { 0.0 }),
        ArrayData::I64(x) => x.mapv(|v| v as f64),
        ArrayData::I32(x) => x.mapv(|v| v as f64),
        ArrayData::U8(x) => x.mapv(|v| v as f64),
        ArrayData::U64(x) => x.mapv(|v| v as f64),
        ArrayData::F32(x) => x.mapv(|v| v as f64),
        ArrayData::F64(x) => x.clone(),
        ArrayData::C128(x) => x.mapv(|v| v.re),
    }
}

/// numpy's `astype(int64)` of dynamically typed data (floats truncate toward zero).
pub fn data_i64(a: &ArrayData) -> ArrayD<i64> {
    match a {
        ArrayData::Bool(x) => x.mapv(|v| if v { 1 } else { 0 }),
        ArrayData::I64(x) => x.clone(),
        ArrayData::I32(x) => x.mapv(|v| v as i64),
        ArrayData::U8(x) => x.mapv(|v| v as i64),
        ArrayData::U64(x) => x.mapv(|v| v as i64),
        ArrayData::F32(x) => x.mapv(|v| v.trunc() as i64),
        ArrayData::F64(x) => x.mapv(|v| v.trunc() as i64),
        ArrayData::C128(x) => x.mapv(|v| v.re.trunc() as i64),
    }
}

/// numpy's `astype(bool)`: non-zero (and NaN) is true.
pub fn data_bool(a: &ArrayData) -> ArrayD<bool> {
    match a {
        ArrayData::Bool(x) => x.clone(),
        ArrayData::I64(x) => x.mapv(|v| v != 0),
        ArrayData::I32(x) => x.mapv(|v| v != 0),
        ArrayData::U8(x) => x.mapv(|v| v != 0),
        ArrayData::U64(x) => x.mapv(|v| v != 0),
        ArrayData::F32(x) => x.mapv(|v| v != 0.0),
        ArrayData::F64(x) => x.mapv(|v| v != 0.0),
        ArrayData::C128(x) => x.mapv(|v| v.re != 0.0 || v.im != 0.0),
    }
}

/// Asserts computed data equals expected dynamically typed data (default tolerances).
#[track_caller]
pub fn assert_data_eq(actual: &ArrayData, expected: &ArrayData) {
    match expected {
        ArrayData::Bool(e) => assert_array_eq(actual, e),
        ArrayData::I64(e) => assert_array_eq(actual, e),
        ArrayData::I32(e) => assert_array_eq(actual, e),
        ArrayData::U8(e) => assert_array_eq(actual, e),
        ArrayData::U64(e) => assert_array_eq(actual, e),
        ArrayData::F32(e) => assert_array_eq(actual, e),
        ArrayData::F64(e) => assert_array_eq(actual, e),
        ArrayData::C128(_) => assert_eq!(actual, expected),
    }
}

/// [`check`] for dynamically typed expected data.
#[track_caller]
pub fn check_data(arr: &Array, expected: &ArrayData) {
    match expected {
        ArrayData::Bool(e) => check(arr, e),
        ArrayData::I64(e) => check(arr, e),
        ArrayData::I32(e) => check(arr, e),
        ArrayData::U8(e) => check(arr, e),
        ArrayData::U64(e) => check(arr, e),
        ArrayData::F32(e) => check(arr, e),
        ArrayData::F64(e) => check(arr, e),
        ArrayData::C128(_) => assert_eq!(&arr.compute_dyn().unwrap(), expected),
    }
}

/// Test data of a dtype.
pub fn sample_data(dtype: DType, shape: &[usize], seed: u64) -> ArrayData {
    match dtype {
        DType::Bool => ArrayData::Bool(sample(shape, seed)),
        DType::I64 => ArrayData::I64(sample(shape, seed)),
        DType::I32 => ArrayData::I32(sample(shape, seed)),
        DType::U8 => ArrayData::U8(sample(shape, seed)),
        DType::U64 => ArrayData::U64(sample(shape, seed)),
        DType::F32 => ArrayData::F32(sample(shape, seed)),
        DType::F64 => ArrayData::F64(sample(shape, seed)),
        DType::C128 => {
            let (re, im) = (
                sample::<f64>(shape, seed),
                sample::<f64>(shape, seed ^ 0x5eed),
            );
            ArrayData::C128(
                ndarray::Zip::from(&re)
                    .and(&im)
                    .map_collect(|&a, &b| tessera::Complex64::new(a, b)),
            )
        }
    }
}

pub const DTYPES: [DType; 4] = [DType::Bool, DType::I64, DType::F32, DType::F64];

/// Runs `f`, prefixing any panic message with `ctx` (for loops over many cases).
#[track_caller]
pub fn in_context<R>(ctx: impl std::fmt::Display, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            panic!("{ctx}:\n{msg}");
        }
    }
}
