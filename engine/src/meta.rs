//! Array metadata known without data: element types ([`DType`]) with numpy's promotion rules, scalar
//! operands ([`Scalar`]), and chunk grids ([`Chunks`]) — the per-axis chunk sizes every layer of a graph
//! carries so that its chunk tasks can be derived late, where the graph runs.

use std::fmt;

use num_complex::Complex64;

use crate::data::Element;
use crate::error::{Error, Result};

/// The element type of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// numpy's `bool`.
    Bool,
    /// numpy's `int32`.
    I32,
    /// numpy's `uint8`.
    U8,
    /// numpy's `uint64`.
    U64,
    /// numpy's `int64`.
    I64,
    /// numpy's `float32`.
    F32,
    /// numpy's `float64`.
    F64,
    /// Complex numbers of two float64s (numpy's `complex128`), as [`crate::Complex64`].
    C128,
}

impl DType {
    /// Every dtype, in a fixed order (bool, the integers, the floats, complex128).
    pub const ALL: [DType; 8] = [
        DType::Bool,
        DType::I32,
        DType::U8,
        DType::U64,
        DType::I64,
        DType::F32,
        DType::F64,
        DType::C128,
    ];

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 => 1,
            DType::I64 | DType::U64 | DType::F64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::C128 => 16,
        }
    }

    /// numpy's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I32 => "int32",
            DType::U8 => "uint8",
            DType::U64 => "uint64",
            DType::I64 => "int64",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::C128 => "complex128",
        }
    }

    /// Whether the dtype is `float32` or `float64`.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Whether the type is one of the integer types (bool is not).
    pub fn is_integer(self) -> bool {
        matches!(self, DType::I32 | DType::U8 | DType::U64 | DType::I64)
    }

    /// Whether the type is an unsigned integer type.
    pub fn is_unsigned(self) -> bool {
        matches!(self, DType::U8 | DType::U64)
    }

    /// The range of values of an integer type, as i128 (`None` for bool, floats and complex).
    pub fn int_range(self) -> Option<(i128, i128)> {
        match self {
            DType::I32 => Some((i32::MIN as i128, i32::MAX as i128)),
            DType::U8 => Some((0, u8::MAX as i128)),
            DType::U64 => Some((0, u64::MAX as i128)),
            DType::I64 => Some((i64::MIN as i128, i64::MAX as i128)),
            _ => None,
        }
    }

    /// Whether the type is complex (complex128).
    pub fn is_complex(self) -> bool {
        self == DType::C128
    }

    /// Refuses complex input to an op that needs ordered (real) values, as numpy does for
    /// comparisons, floor, sorting, max/min and friends: the error names the op and the dtype.
    pub fn require_real(self, op: &'static str) -> Result<()> {
        if self.is_complex() {
            return Err(Error::UnsupportedDType { op, dtype: self });
        }
        Ok(())
    }

    /// numpy 2's `result_type` for two array operands. Integers of one signedness take the wider
    /// type; a signed and an unsigned integer take the smallest signed type holding both (uint8 with
    /// int32 is int32), and uint64 with a signed integer is float64 (no integer type holds both).
    /// An integer with float32 stays float32 when float32 holds every value of the integer (uint8)
    /// and is float64 otherwise (int32, int64, uint64). Anything with complex128 is complex128
    /// (numpy 2 gives complex64 for float32 with complex64, a type tessera does not have).
    pub fn promote(a: DType, b: DType) -> DType {
        use DType::*;
        match (a, b) {
            (x, y) if x == y => x,
            (Bool, y) | (y, Bool) => y,
            (C128, _) | (_, C128) => C128,
            (F64, _) | (_, F64) => F64,
            (F32, U8) | (U8, F32) => F32,
            (F32, _) | (_, F32) => F64,
            // Both integers from here on.
            (U64, I32 | I64) | (I32 | I64, U64) => F64,
            (U64, U8) | (U8, U64) => U64,
            (I64, _) | (_, I64) => I64,
            (I32, U8) | (U8, I32) => I32,
            (x, _) => unreachable!("every pair of distinct dtypes is handled above, not {x}"),
        }
    }

    /// The type of `array op scalar` under numpy 2's weak scalar rule: a Python scalar takes the array's
    /// type unless it is of a higher kind (a float scalar with an integer or bool array gives float64,
    /// an int scalar with a bool array gives int64). Every integer scalar is a weak Python int, every
    /// float scalar a weak Python float; whether an int fits the array's type is checked by
    /// [`Scalar::check_fits`].
    pub fn promote_scalar(array: DType, scalar: &Scalar) -> DType {
        match (array, scalar.kind()) {
            (_, ScalarKind::Complex) => DType::C128,
            (d, ScalarKind::Float) if !d.is_float() && d != DType::C128 => DType::F64,
            (DType::Bool, ScalarKind::Int) => DType::I64,
            _ => array,
        }
    }

    /// Type of true division and of float-only math (sqrt, exp …): integers and bools become float64;
    /// complex128 stays complex128.
    pub fn float_result(self) -> DType {
        match self {
            DType::F32 => DType::F32,
            DType::C128 => DType::C128,
            _ => DType::F64,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scalar operand or fill value.
///
/// As an operand of an arithmetic operator or function, a scalar is a weak Python scalar (numpy 2's
/// rule): any integer scalar takes the array's integer type (and must fit it, see
/// [`Scalar::check_fits`]), any float scalar the array's float type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    /// A `bool` value.
    Bool(bool),
    /// A `int32` value.
    I32(i32),
    /// A `uint8` value.
    U8(u8),
    /// A `uint64` value.
    U64(u64),
    /// A `int64` value.
    I64(i64),
    /// A `float32` value.
    F32(f32),
    /// A `float64` value.
    F64(f64),
    /// A `complex128` value.
    C128(Complex64),
}

/// The kind of a scalar under numpy's weak scalar rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScalarKind {
    Bool,
    Int,
    Float,
    Complex,
}

/// Applies an expression to the value inside a [`Scalar`], binding it to `$v` (an [`crate::Element`]).
macro_rules! with_scalar {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            Scalar::Bool($v) => $body,
            Scalar::I32($v) => $body,
            Scalar::U8($v) => $body,
            Scalar::U64($v) => $body,
            Scalar::I64($v) => $body,
            Scalar::F32($v) => $body,
            Scalar::F64($v) => $body,
            Scalar::C128($v) => $body,
        }
    };
}

impl Scalar {
    /// The dtype of the value.
    pub fn dtype(&self) -> DType {
        match self {
            Scalar::Bool(_) => DType::Bool,
            Scalar::I32(_) => DType::I32,
            Scalar::U8(_) => DType::U8,
            Scalar::U64(_) => DType::U64,
            Scalar::I64(_) => DType::I64,
            Scalar::F32(_) => DType::F32,
            Scalar::F64(_) => DType::F64,
            Scalar::C128(_) => DType::C128,
        }
    }

    pub(crate) fn kind(&self) -> ScalarKind {
        match self.dtype() {
            DType::Bool => ScalarKind::Bool,
            DType::F32 | DType::F64 => ScalarKind::Float,
            DType::C128 => ScalarKind::Complex,
            _ => ScalarKind::Int,
        }
    }

    /// The value of an integer (or bool) scalar, exactly; `None` for floats and complex.
    pub fn as_i128(&self) -> Option<i128> {
        match *self {
            Scalar::Bool(v) => Some(v as i128),
            Scalar::I32(v) => Some(v as i128),
            Scalar::U8(v) => Some(v as i128),
            Scalar::U64(v) => Some(v as i128),
            Scalar::I64(v) => Some(v as i128),
            _ => None,
        }
    }

    /// Whether this scalar, as a weak Python int operand, fits `dtype`: numpy 2 raises
    /// `OverflowError` for `uint8_array + 300` or `uint8_array + (-1)` instead of wrapping the
    /// scalar, and so does tessera, with [`Error::ScalarOutOfBounds`] naming the value and dtype.
    /// Floats, bools and complex scalars always fit (they are cast as numpy casts them).
    pub fn check_fits(&self, dtype: DType) -> Result<()> {
        if self.kind() != ScalarKind::Int {
            return Ok(());
        }
        let (Some(v), Some((lo, hi))) = (self.as_i128(), dtype.int_range()) else {
            return Ok(());
        };
        if v < lo || v > hi {
            return Err(Error::ScalarOutOfBounds {
                value: v.to_string(),
                dtype,
            });
        }
        Ok(())
    }

    /// The value as a complex number (real types with a zero imaginary part).
    pub fn as_c128(&self) -> Complex64 {
        with_scalar!(*self, v => Element::to_c128(v))
    }

    /// The real value; a complex one gives its real part, as numpy's `astype` does (with its
    /// `ComplexWarning`).
    pub fn as_f64(&self) -> f64 {
        with_scalar!(*self, v => Element::to_f64(v))
    }

    /// The value as int64, with numpy's `astype` semantics (see [`crate::ArrayData::cast`]).
    pub fn as_i64(&self) -> i64 {
        with_scalar!(*self, v => Element::to_i64(v))
    }

    /// The value as bool (nonzero is `true`).
    pub fn as_bool(&self) -> bool {
        with_scalar!(*self, v => Element::to_bool(v))
    }

    /// The value converted to `dtype` with numpy's `astype` semantics (wrapping between integer
    /// types; see [`crate::ArrayData::cast`] for floats to integers).
    pub fn cast(&self, dtype: DType) -> Scalar {
        with_scalar!(*self, v => match dtype {
            DType::Bool => Scalar::Bool(Element::to_bool(v)),
            DType::I32 => Scalar::I32(Element::to_i32(v)),
            DType::U8 => Scalar::U8(Element::to_u8(v)),
            DType::U64 => Scalar::U64(Element::to_u64(v)),
            DType::I64 => Scalar::I64(Element::to_i64(v)),
            DType::F32 => Scalar::F32(Element::to_f32(v)),
            DType::F64 => Scalar::F64(Element::to_f64(v)),
            DType::C128 => Scalar::C128(Element::to_c128(v)),
        })
    }

    /// Bytes that identify the value exactly, for graph tokens.
    pub(crate) fn token_bytes(&self) -> [u8; 17] {
        let (tag, bits, im) = match *self {
            Scalar::Bool(b) => (0u8, b as u64, 0),
            Scalar::I64(v) => (1, v as u64, 0),
            Scalar::F32(v) => (2, v.to_bits() as u64, 0),
            Scalar::F64(v) => (3, v.to_bits(), 0),
            Scalar::C128(v) => (4, v.re.to_bits(), v.im.to_bits()),
            Scalar::I32(v) => (5, v as u32 as u64, 0),
            Scalar::U8(v) => (6, v as u64, 0),
            Scalar::U64(v) => (7, v, 0),
        };
        let mut out = [0u8; 17];
        out[0] = tag;
        out[1..9].copy_from_slice(&bits.to_le_bytes());
        out[9..].copy_from_slice(&im.to_le_bytes());
        out
    }
}

impl From<f64> for Scalar {
    fn from(v: f64) -> Self {
        Scalar::F64(v)
    }
}
impl From<f32> for Scalar {
    fn from(v: f32) -> Self {
        Scalar::F32(v)
    }
}
impl From<i64> for Scalar {
    fn from(v: i64) -> Self {
        Scalar::I64(v)
    }
}
impl From<i32> for Scalar {
    fn from(v: i32) -> Self {
        Scalar::I32(v)
    }
}
impl From<u8> for Scalar {
    fn from(v: u8) -> Self {
        Scalar::U8(v)
    }
}
impl From<u64> for Scalar {
    fn from(v: u64) -> Self {
        Scalar::U64(v)
    }
}
impl From<Complex64> for Scalar {
    fn from(v: Complex64) -> Self {
        Scalar::C128(v)
    }
}
impl From<bool> for Scalar {
    fn from(v: bool) -> Self {
        Scalar::Bool(v)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(v) => write!(f, "{v}"),
            Scalar::I32(v) => write!(f, "{v}"),
            Scalar::U8(v) => write!(f, "{v}"),
            Scalar::U64(v) => write!(f, "{v}"),
            Scalar::I64(v) => write!(f, "{v}"),
            Scalar::F32(v) => write!(f, "{v}"),
            Scalar::F64(v) => write!(f, "{v}"),
            Scalar::C128(v) => write!(f, "({}{:+}j)", v.re, v.im),
        }
    }
}

/// Default target size of one chunk for [`ChunkSpec::AutoBytes`]: 128 MiB, dask's `array.chunk-size`.
pub const AUTO_CHUNK_BYTES: usize = 128 << 20;

/// How a user asks for chunks.
///
/// Build it from a block shape (`[1000, 1000]` or `vec![..]`), from explicit per-axis sizes
/// (`vec![vec![600, 400], vec![500, 500]]`), or ask for automatic chunks of about a number of bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum ChunkSpec {
    /// The same block shape everywhere; the last block along an axis may be smaller.
    Block(Vec<usize>),
    /// The size of every chunk along every axis.
    Explicit(Vec<Vec<usize>>),
    /// Near-cubic chunks of about this many bytes (the last ones may be smaller).
    AutoBytes(usize),
}

impl ChunkSpec {
    /// Automatic chunks of about [`AUTO_CHUNK_BYTES`].
    pub fn auto() -> Self {
        ChunkSpec::AutoBytes(AUTO_CHUNK_BYTES)
    }
}

impl<const N: usize> From<[usize; N]> for ChunkSpec {
    fn from(v: [usize; N]) -> Self {
        ChunkSpec::Block(v.to_vec())
    }
}
impl From<Vec<usize>> for ChunkSpec {
    fn from(v: Vec<usize>) -> Self {
        ChunkSpec::Block(v)
    }
}
impl From<&[usize]> for ChunkSpec {
    fn from(v: &[usize]) -> Self {
        ChunkSpec::Block(v.to_vec())
    }
}
impl From<Vec<Vec<usize>>> for ChunkSpec {
    fn from(v: Vec<Vec<usize>>) -> Self {
        ChunkSpec::Explicit(v)
    }
}
impl<const N: usize, const M: usize> From<[[usize; M]; N]> for ChunkSpec {
    fn from(v: [[usize; M]; N]) -> Self {
        ChunkSpec::Explicit(v.iter().map(|a| a.to_vec()).collect())
    }
}
impl From<&Chunks> for ChunkSpec {
    fn from(c: &Chunks) -> Self {
        ChunkSpec::Explicit(c.sizes().to_vec())
    }
}

/// The chunk grid of an array: for every axis, the sizes of its chunks in order.
///
/// A 0-D array has no axes and exactly one chunk. An axis of length 0 has a single chunk of size 0, as
/// in dask.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Chunks {
    sizes: Vec<Vec<usize>>,
    /// Start offset of every chunk along every axis, plus the axis length at the end.
    offsets: Vec<Vec<usize>>,
}

impl Chunks {
    /// A chunk grid the engine can index: every axis has chunks (a length-0 axis exactly one, of size 0;
    /// a non-empty axis may hold zero-length chunks, as in dask), block indices fit in `u32`, and
    /// element and chunk counts fit in `usize`.
    pub fn well_formed(&self) -> std::result::Result<(), String> {
        let c = self;
        let mut elems = 1usize;
        let mut blocks = 1usize;
        for (axis, sizes) in c.sizes().iter().enumerate() {
            let len = sizes
                .iter()
                .try_fold(0usize, |acc, &s| acc.checked_add(s))
                .ok_or_else(|| format!("the sizes on axis {axis} overflow"))?;
            match (len, sizes.len()) {
                (_, 0) => return Err(format!("axis {axis} has no chunks")),
                (0, 1) => {}
                (0, _) => {
                    return Err(format!(
                        "axis {axis} has length 0 and must have exactly one chunk"
                    ));
                }
                // Zero-length chunks on a non-empty axis are allowed, as dask allows them.
                _ => {}
            }
            if u32::try_from(sizes.len()).is_err() {
                return Err(format!(
                    "axis {axis} has more chunks than block indices reach"
                ));
            }
            elems = elems
                .checked_mul(len)
                .ok_or("the array has too many elements")?;
            blocks = blocks
                .checked_mul(sizes.len())
                .ok_or("the grid has too many chunks")?;
        }
        Ok(())
    }

    /// Chunks from per-axis sizes, without validation against a shape.
    pub fn from_sizes(sizes: Vec<Vec<usize>>) -> Self {
        let offsets = sizes
            .iter()
            .map(|axis| {
                let mut off = Vec::with_capacity(axis.len() + 1);
                let mut acc = 0;
                off.push(0);
                for &s in axis {
                    // Saturating: a grid decoded from an untrusted message may not add up; the
                    // validator rejects it by its sizes, and nothing may panic before it does.
                    acc = usize::saturating_add(acc, s);
                    off.push(acc);
                }
                off
            })
            .collect();
        Chunks { sizes, offsets }
    }

    /// Resolves a user's [`ChunkSpec`] against a shape, checking it fits.
    pub fn resolve(shape: &[usize], spec: &ChunkSpec, dtype: DType) -> Result<Self> {
        match spec {
            ChunkSpec::Block(block) => {
                if block.len() != shape.len() {
                    return Err(Error::ChunksRank {
                        shape: shape.to_vec(),
                        chunks: format!("{block:?}"),
                    });
                }
                let mut sizes = Vec::with_capacity(shape.len());
                for (axis, (&n, &b)) in shape.iter().zip(block).enumerate() {
                    if b == 0 && n > 0 {
                        return Err(Error::InvalidChunks {
                            shape: shape.to_vec(),
                            reason: format!("chunk size 0 on axis {axis} of length {n}"),
                        });
                    }
                    sizes.push(split_axis(n, b));
                }
                Ok(Chunks::from_sizes(sizes))
            }
            ChunkSpec::Explicit(sizes) => {
                if sizes.len() != shape.len() {
                    return Err(Error::ChunksRank {
                        shape: shape.to_vec(),
                        chunks: format!("{sizes:?}"),
                    });
                }
                for (axis, (&n, axis_sizes)) in shape.iter().zip(sizes).enumerate() {
                    let total: usize = axis_sizes.iter().sum();
                    if total != n {
                        return Err(Error::InvalidChunks {
                            shape: shape.to_vec(),
                            reason: format!(
                                "chunks {axis_sizes:?} on axis {axis} add up to {total}, not {n}"
                            ),
                        });
                    }
                    if n == 0 && axis_sizes.len() != 1 {
                        return Err(Error::InvalidChunks {
                            shape: shape.to_vec(),
                            reason: format!("axis {axis} has length 0 and must have one chunk"),
                        });
                    }
                }
                Ok(Chunks::from_sizes(sizes.clone()))
            }
            ChunkSpec::AutoBytes(bytes) => Ok(Chunks::auto(shape, dtype, *bytes)),
        }
    }

    /// Near-cubic chunks of about `target_bytes`: each axis gets the same block length, capped by the
    /// axis length, and the block is grown on the axes that are not yet whole.
    pub fn auto(shape: &[usize], dtype: DType, target_bytes: usize) -> Self {
        let target_elems = (target_bytes / dtype.size()).max(1) as f64;
        let mut block: Vec<usize> = shape.iter().map(|&n| n.max(1)).collect();
        let total: f64 = block.iter().map(|&n| n as f64).product();
        if total > target_elems {
            // Shrink the free axes to a common length; axes shorter than it stay whole.
            let mut fixed: Vec<bool> = vec![false; shape.len()];
            loop {
                let fixed_prod: f64 = block
                    .iter()
                    .zip(&fixed)
                    .filter(|(_, f)| **f)
                    .map(|(&b, _)| b as f64)
                    .product();
                let free = fixed.iter().filter(|f| !**f).count();
                if free == 0 {
                    break;
                }
                let side = (target_elems / fixed_prod)
                    .powf(1.0 / free as f64)
                    .floor()
                    .max(1.0);
                let mut changed = false;
                for (axis, f) in fixed.iter_mut().enumerate() {
                    if !*f && (shape[axis] as f64) <= side {
                        *f = true;
                        block[axis] = shape[axis].max(1);
                        changed = true;
                    }
                }
                if !changed {
                    for (axis, f) in fixed.iter().enumerate() {
                        if !*f {
                            block[axis] = side as usize;
                        }
                    }
                    break;
                }
            }
        }
        Chunks::from_sizes(
            shape
                .iter()
                .zip(&block)
                .map(|(&n, &b)| split_axis(n, b))
                .collect(),
        )
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.sizes.len()
    }

    /// Chunk sizes per axis.
    pub fn sizes(&self) -> &[Vec<usize>] {
        &self.sizes
    }

    /// Chunk sizes along one axis.
    pub fn axis(&self, axis: usize) -> &[usize] {
        &self.sizes[axis]
    }

    /// Chunk start offsets along one axis, followed by the axis length.
    pub fn axis_offsets(&self, axis: usize) -> &[usize] {
        &self.offsets[axis]
    }

    /// The array shape the chunks tile.
    pub fn shape(&self) -> Vec<usize> {
        self.offsets.iter().map(|o| *o.last().unwrap()).collect()
    }

    /// Number of chunks along every axis.
    pub fn numblocks(&self) -> Vec<usize> {
        self.sizes.iter().map(|s| s.len()).collect()
    }

    /// Total number of chunks, saturating at `usize::MAX` (a grid of 2 chunks on each of 64 axes
    /// has more than `usize` can count).
    pub fn num_chunks(&self) -> usize {
        self.sizes
            .iter()
            .fold(1usize, |acc, s| acc.saturating_mul(s.len()))
    }

    /// Shape of the chunk at a block index.
    pub fn block_shape(&self, block: &[u32]) -> Vec<usize> {
        block
            .iter()
            .enumerate()
            .map(|(axis, &b)| self.sizes[axis][b as usize])
            .collect()
    }

    /// Element offset of the chunk at a block index.
    pub fn block_offset(&self, block: &[u32]) -> Vec<usize> {
        block
            .iter()
            .enumerate()
            .map(|(axis, &b)| self.offsets[axis][b as usize])
            .collect()
    }

    /// Index of the chunk containing element `index` along `axis`.
    pub fn block_of(&self, axis: usize, index: usize) -> usize {
        // The last chunk starting at or before `index`: with zero-length chunks several start at
        // the same offset, and only the last of them holds the element.
        let off = &self.offsets[axis];
        (off.partition_point(|&o| o <= index) - 1).min(self.sizes[axis].len() - 1)
    }

    /// Range of chunk indices along `axis` that intersect the element range `[start, end)`.
    pub fn blocks_in(&self, axis: usize, start: usize, end: usize) -> std::ops::Range<usize> {
        if start >= end {
            return 0..0;
        }
        self.block_of(axis, start)..self.block_of(axis, end - 1) + 1
    }

    /// Largest chunk size in elements.
    pub fn max_chunk_elems(&self) -> usize {
        self.sizes.iter().fold(1usize, |acc, s| {
            acc.saturating_mul(s.iter().copied().max().unwrap_or(1))
        })
    }
}

impl fmt::Display for Chunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.sizes)
    }
}

/// Splits an axis of length `n` into chunks of `block` (the last may be smaller).
pub(crate) fn split_axis(n: usize, block: usize) -> Vec<usize> {
    if n == 0 {
        return vec![0];
    }
    let block = block.min(n).max(1);
    let mut out = vec![block; n / block];
    if !n.is_multiple_of(block) {
        out.push(n % block);
    }
    out
}

/// Iterates over every block index of a grid with `numblocks` blocks per axis, in C order.
pub(crate) fn block_indices(numblocks: &[usize]) -> impl Iterator<Item = Vec<u32>> + '_ {
    let total = numblocks
        .iter()
        .fold(1usize, |acc, &n| acc.saturating_mul(n));
    (0..total).map(move |mut flat| {
        let mut idx = vec![0u32; numblocks.len()];
        for axis in (0..numblocks.len()).rev() {
            idx[axis] = (flat % numblocks[axis]) as u32;
            flat /= numblocks[axis];
        }
        idx
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotion_follows_numpy() {
        use DType::*;
        assert_eq!(DType::promote(Bool, I64), I64);
        assert_eq!(DType::promote(I64, F32), F64);
        assert_eq!(DType::promote(F32, F32), F32);
        assert_eq!(DType::promote(F32, F64), F64);
        assert_eq!(DType::promote_scalar(F32, &Scalar::F64(1.0)), F32);
        assert_eq!(DType::promote_scalar(I64, &Scalar::F64(1.0)), F64);
        assert_eq!(DType::promote_scalar(Bool, &Scalar::I64(1)), I64);
        assert_eq!(DType::promote_scalar(I64, &Scalar::I64(1)), I64);
        assert_eq!(DType::promote(C128, F32), C128);
        assert_eq!(DType::promote(Bool, C128), C128);
        assert_eq!(DType::promote(I64, C128), C128);
        assert_eq!(DType::promote_scalar(C128, &Scalar::F64(1.0)), C128);
        assert_eq!(
            DType::promote_scalar(I64, &Scalar::C128(num_complex::Complex64::new(0.0, 1.0))),
            C128
        );
    }

    #[test]
    fn block_spec_gives_irregular_last_chunk() {
        let c = Chunks::resolve(&[37, 23], &[10, 7].into(), DType::F64).unwrap();
        assert_eq!(c.axis(0), &[10, 10, 10, 7]);
        assert_eq!(c.axis(1), &[7, 7, 7, 2]);
        assert_eq!(c.block_offset(&[3, 3]), vec![30, 21]);
        assert_eq!(c.block_of(0, 29), 2);
        assert_eq!(c.block_of(0, 30), 3);
        assert_eq!(c.blocks_in(1, 6, 15), 0..3);
    }

    #[test]
    fn explicit_chunks_must_add_up() {
        let err = Chunks::resolve(&[10], &vec![vec![3, 3]].into(), DType::F64).unwrap_err();
        assert!(err.to_string().contains("add up to 6, not 10"), "{err}");
        let err = Chunks::resolve(&[10, 4], &[5].into(), DType::F64).unwrap_err();
        assert!(err.to_string().contains("[10, 4]"), "{err}");
    }

    #[test]
    fn auto_chunks_respect_the_byte_target() {
        let c = Chunks::auto(&[10000, 10000], DType::F64, 8_000_000);
        assert_eq!(c.axis(0)[0], 1000);
        assert_eq!(c.axis(1)[0], 1000);
        let c = Chunks::auto(&[5, 1_000_000], DType::F64, 8_000_000);
        assert_eq!(c.axis(0), &[5]);
        assert_eq!(c.axis(1)[0], 200_000);
        let c = Chunks::auto(&[], DType::F64, 8);
        assert_eq!(c.num_chunks(), 1);
    }

    #[test]
    fn zero_length_chunks_are_well_formed_and_never_hold_an_element() {
        let c = Chunks::resolve(&[10], &vec![vec![0, 5, 0, 0, 5, 0]].into(), DType::F64).unwrap();
        assert_eq!(c.well_formed(), Ok(()));
        assert_eq!(c.block_of(0, 0), 1);
        assert_eq!(c.block_of(0, 4), 1);
        assert_eq!(c.block_of(0, 5), 4);
        assert_eq!(c.block_of(0, 9), 4);
        assert_eq!(c.blocks_in(0, 3, 7), 1..5);
        assert!(Chunks::from_sizes(vec![vec![0, 0]]).well_formed().is_err());
    }
}
