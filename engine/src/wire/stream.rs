//! A chunk's encoding sent and received a piece at a time, so that neither side holds a second copy
//! of a large chunk: [`PieceEncoder`] writes the bytes of [`encode_chunk`](super::encode_chunk) one
//! bounded piece after another straight from the array, and [`ChunkAssembler`] writes arriving bytes
//! straight into the array being received.
//!
//! Before this, a worker serving a 16 MiB chunk encoded all of it first (16 MiB more), and the
//! receiver gathered all the pieces (16 MiB) before decoding them into a new array (16 MiB): three
//! copies of every chunk in flight, none of them counted by the memory limits. Now the only copy is
//! the received array itself, plus one piece on each side.
//!
//! The bytes on the wire are unchanged, and the receiver trusts nothing about them: an encoding that
//! is not the layout [`encode_chunk`](super::encode_chunk) writes (a partial, another encoder's field
//! order, a bool or malformed array) is gathered whole and handed to
//! [`decode_chunk`](super::decode_chunk), which checks everything.
//!
//! A region of an array (the part of a source chunk a rechunk task reads) is encoded the same way
//! as the array that region cuts out ([`PieceEncoder::region`]), written straight from the whole
//! array's contiguous runs ([`RegionRuns`]) without copying the region first.

use std::ops::Range;
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

use super::chunk::{Reader, array_prefix, encode_chunk, len_key, write_elements};
use super::{dtype_of, usizes_of, wire};
use crate::data::{ArrayData, ChunkValue};
use crate::error::Result;
use crate::meta::DType;

/// The bytes of a chunk's encoding, produced a piece at a time.
#[derive(Debug)]
pub struct PieceEncoder {
    source: Source,
    /// Bytes of the whole encoding.
    total_len: usize,
    /// Bytes produced so far.
    sent: usize,
}

#[derive(Debug)]
enum Source {
    /// An array chunk in C order: its prefix (fields before the elements) and its elements, written
    /// as they are asked for.
    Array {
        value: Arc<ChunkValue>,
        /// A C-order copy, only for an array that is not in C order already (rare: chunks are made
        /// in C order).
        ordered: Option<ArrayData>,
        prefix: Vec<u8>,
    },
    /// Anything else (a reduction's partial: small) encoded whole.
    Encoded(Vec<u8>),
    /// A region of an array chunk in C order: the encoding of the array the region cuts out, its
    /// elements written from the whole array's runs as they are asked for.
    Region {
        value: Arc<ChunkValue>,
        prefix: Vec<u8>,
        runs: RegionRuns,
        /// What is left of the run being written (flat element indices of the whole array).
        pending: Range<usize>,
    },
}

impl PieceEncoder {
    pub fn new(value: Arc<ChunkValue>) -> PieceEncoder {
        let source = match &*value {
            ChunkValue::Array(a) => {
                let in_c_order = crate::with_array!(a, x => x.is_standard_layout());
                let ordered = (!in_c_order).then(|| a.clone().into_standard_layout());
                let prefix = array_prefix(a);
                Source::Array {
                    value,
                    ordered,
                    prefix,
                }
            }
            other => Source::Encoded(encode_chunk(other)),
        };
        let total_len = match &source {
            Source::Array { value, prefix, .. } => prefix.len() + value.nbytes(),
            Source::Encoded(bytes) => bytes.len(),
            Source::Region { .. } => unreachable!("made by PieceEncoder::region"),
        };
        PieceEncoder {
            source,
            total_len,
            sent: 0,
        }
    }

    /// The encoding of the array that `region` (a range per axis) cuts out of `value`, as
    /// [`PieceEncoder::new`] would write it for that copy, without making the copy when the array is
    /// in C order. A region that does not lie inside the array, or of a chunk that is not an array,
    /// is an error naming the region and shape.
    pub fn region(
        value: Arc<ChunkValue>,
        region: &[Range<usize>],
    ) -> std::result::Result<PieceEncoder, String> {
        let ChunkValue::Array(a) = &*value else {
            return Err(format!(
                "region {region:?} asked of a chunk that is not an array"
            ));
        };
        let runs = RegionRuns::new(a.shape(), region)?;
        if !crate::with_array!(a, x => x.is_standard_layout()) {
            // Rare (chunks are made in C order): copy just the region, which comes out in C order.
            let part = a.region(region).map_err(|e| e.to_string())?;
            return Ok(PieceEncoder::new(Arc::new(ChunkValue::Array(part))));
        }
        let shape: Vec<usize> = region.iter().map(|r| r.len()).collect();
        let prefix = super::array_encoding_prefix(a.dtype(), &shape);
        let total_len = prefix.len() + runs.elements() * a.dtype().size();
        Ok(PieceEncoder {
            source: Source::Region {
                value,
                prefix,
                runs,
                pending: 0..0,
            },
            total_len,
            sent: 0,
        })
    }

    /// Bytes of the whole encoding: what [`encode_chunk`](super::encode_chunk) returns for the chunk.
    pub fn total_len(&self) -> usize {
        self.total_len
    }

    /// Whether every byte has been produced.
    pub fn is_done(&self) -> bool {
        self.sent == self.total_len
    }

    /// The next bytes of the encoding, at most `max` of them (taken as at least 32, so that a whole
    /// element fits); empty once done. Pieces after the prefix hold whole elements.
    pub fn next_piece(&mut self, max: usize) -> Vec<u8> {
        let max = max.max(32);
        let piece = match &mut self.source {
            Source::Encoded(bytes) => {
                let end = bytes.len().min(self.sent + max);
                bytes[self.sent..end].to_vec()
            }
            Source::Array {
                value,
                ordered,
                prefix,
            } => {
                let a = ordered.as_ref().unwrap_or_else(|| array(value));
                let size = a.dtype().size();
                let mut out = Vec::with_capacity(max);
                let data_start = if self.sent < prefix.len() {
                    let end = prefix.len().min(self.sent + max);
                    out.extend_from_slice(&prefix[self.sent..end]);
                    if end < prefix.len() {
                        self.sent += out.len();
                        return out;
                    }
                    0
                } else {
                    self.sent - prefix.len()
                };
                let first = data_start / size;
                let room = (max - out.len()) / size;
                let last = a.len().min(first + room);
                write_range(a, first, last, &mut out);
                out
            }
            Source::Region {
                value,
                prefix,
                runs,
                pending,
            } => {
                let a = array(value);
                let size = a.dtype().size();
                let mut out = Vec::with_capacity(max);
                if self.sent < prefix.len() {
                    let end = prefix.len().min(self.sent + max);
                    out.extend_from_slice(&prefix[self.sent..end]);
                    if end < prefix.len() {
                        self.sent += out.len();
                        return out;
                    }
                }
                let mut room = (max - out.len()) / size;
                while room > 0 {
                    if pending.start >= pending.end {
                        match runs.next() {
                            Some(run) => *pending = run,
                            None => break,
                        }
                    }
                    let take = room.min(pending.len());
                    write_range(a, pending.start, pending.start + take, &mut out);
                    pending.start += take;
                    room -= take;
                }
                out
            }
        };
        self.sent += piece.len();
        piece
    }
}

/// The elements of a region of an array kept in C order (in memory or in a file), as contiguous
/// runs of the whole array's flat element indices, in the region's C order. Trailing axes the region
/// covers whole merge into one run: a region of whole rows of a 2-D chunk is a single run.
#[derive(Clone, Debug)]
pub struct RegionRuns {
    /// Per outer axis (those iterated, before the innermost partial one): its range and stride.
    outer: Vec<(Range<usize>, usize)>,
    /// Flat index of the region's first element, before the outer axes' offsets.
    base: usize,
    /// Elements per run.
    run: usize,
    /// Outer index of the next run; None when all are done.
    next: Option<Vec<usize>>,
    elements: usize,
}

impl RegionRuns {
    /// The runs of `region` (a range per axis) of an array of `shape`; an error names both when the
    /// region does not lie inside the array.
    pub fn new(shape: &[usize], region: &[Range<usize>]) -> std::result::Result<Self, String> {
        if region.len() != shape.len()
            || region
                .iter()
                .zip(shape)
                .any(|(r, &n)| r.start > r.end || r.end > n)
        {
            return Err(format!(
                "region {region:?} does not lie inside a chunk of shape {shape:?}"
            ));
        }
        let elements = region.iter().map(|r| r.len()).product::<usize>();
        // Strides of a C-order array, in elements.
        let mut strides = vec![1usize; shape.len()];
        for axis in (0..shape.len().saturating_sub(1)).rev() {
            strides[axis] = strides[axis + 1] * shape[axis + 1];
        }
        // The innermost axis the region does not cover whole bounds the runs; the axes inside it
        // are whole, so one run spans them.
        let mut inner = shape.len();
        let mut run = 1;
        while inner > 0 {
            inner -= 1;
            run *= region[inner].len();
            if region[inner] != (0..shape[inner]) {
                break;
            }
        }
        let base = region.get(inner).map_or(0, |r| r.start * strides[inner]);
        let outer: Vec<(Range<usize>, usize)> = region[..inner]
            .iter()
            .cloned()
            .zip(strides.iter().copied())
            .collect();
        let next = (elements > 0).then(|| outer.iter().map(|(r, _)| r.start).collect());
        Ok(RegionRuns {
            outer,
            base,
            run,
            next,
            elements,
        })
    }

    /// Elements in the region.
    pub fn elements(&self) -> usize {
        self.elements
    }
}

impl Iterator for RegionRuns {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        let index = self.next.as_mut()?;
        let start = self.base
            + index
                .iter()
                .zip(&self.outer)
                .map(|(i, (_, stride))| i * stride)
                .sum::<usize>();
        // The next outer index, last axis fastest; done when the first axis runs out.
        let mut axis = index.len();
        loop {
            if axis == 0 {
                self.next = None;
                break;
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < self.outer[axis].0.end {
                break;
            }
            index[axis] = self.outer[axis].0.start;
        }
        Some(start..start + self.run)
    }
}

fn array(value: &ChunkValue) -> &ArrayData {
    match value {
        ChunkValue::Array(a) => a,
        _ => unreachable!("Source::Array and Source::Region hold array chunks"),
    }
}

/// Appends elements `first..last` (in C order) as little-endian bytes.
fn write_range(a: &ArrayData, first: usize, last: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + (last - first) * a.dtype().size(), 0);
    write_elements(a, first..last, &mut out[start..]);
}

/// The most bytes the fields before an array's elements take: two keys and lengths, a dtype and a
/// shape of up to 64 dimensions, each at most a 10-byte varint.
const MAX_PREFIX: usize = 2 * 11 + 11 + 2 + 11 + 64 * 10;

/// A chunk received a piece at a time: array elements go straight into the array (zeroed up front,
/// then overwritten), so a large chunk is never held twice.
#[derive(Debug)]
pub struct ChunkAssembler {
    /// The length the sender announced.
    total_len: usize,
    /// Bytes received so far.
    received: usize,
    state: State,
}

#[derive(Debug)]
enum State {
    /// The first bytes, until the prefix can be read.
    Head(Vec<u8>),
    /// An array in the fast layout: elements are copied into `array` at `filled` bytes in.
    Array { array: ArrayData, filled: usize },
    /// Any other encoding, gathered whole for [`decode_chunk`](super::decode_chunk).
    Whole(Vec<u8>),
}

/// What a finished [`ChunkAssembler`] holds.
// One per received chunk, moved straight to its consumer and never stored in bulk: boxing the
// larger variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Assembled {
    /// The chunk, decoded as it arrived.
    Value(ChunkValue),
    /// An encoding in another layout, to decode with [`decode_chunk`](super::decode_chunk).
    Encoded(Vec<u8>),
}

impl ChunkAssembler {
    /// A chunk whose encoding the sender says is `total_len` bytes. An announced length this process
    /// cannot hold is an error, not an abort.
    pub fn new(total_len: u64) -> Result<ChunkAssembler> {
        let total_len = usize::try_from(total_len)
            .ok()
            .filter(|&n| isize::try_from(n).is_ok())
            .ok_or_else(|| {
                wire(format!(
                    "a chunk of {total_len} bytes, more than this process can hold"
                ))
            })?;
        let mut head = Vec::new();
        head.try_reserve_exact(total_len.min(MAX_PREFIX))
            .map_err(|_| wire(format!("a chunk of {total_len} bytes: out of memory")))?;
        Ok(ChunkAssembler {
            total_len,
            received: 0,
            state: State::Head(head),
        })
    }

    /// Takes the next bytes of the encoding.
    pub fn push(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() > self.total_len - self.received {
            return Err(wire(format!(
                "a chunk announced as {} bytes sent more",
                self.total_len
            )));
        }
        self.received += bytes.len();
        match &mut self.state {
            State::Head(head) => {
                head.extend_from_slice(bytes);
                if head.len() >= MAX_PREFIX.min(self.total_len) {
                    let head = std::mem::take(head);
                    self.state = self.start(head)?;
                }
            }
            State::Array { array, filled } => {
                let dst = bytes_of(array).expect("a fast-layout dtype");
                dst[*filled..*filled + bytes.len()].copy_from_slice(bytes);
                *filled += bytes.len();
            }
            State::Whole(all) => all.extend_from_slice(bytes),
        }
        Ok(())
    }

    /// Leaves the head state with the first bytes in hand: an array in the fast layout gets its
    /// array (the bytes after the prefix go in), anything else is gathered whole.
    fn start(&self, head: Vec<u8>) -> Result<State> {
        if let Some((dtype, shape, data_at)) = fast_layout(&head, self.total_len)
            && let Some(mut array) = zeroed(dtype, &shape, self.total_len - data_at)?
        {
            let rest = &head[data_at..];
            bytes_of(&mut array).expect("a fast-layout dtype")[..rest.len()].copy_from_slice(rest);
            return Ok(State::Array {
                array,
                filled: rest.len(),
            });
        }
        let mut all = Vec::new();
        all.try_reserve_exact(self.total_len).map_err(|_| {
            wire(format!(
                "a chunk of {} bytes: more than this process can hold",
                self.total_len
            ))
        })?;
        all.extend_from_slice(&head);
        Ok(State::Whole(all))
    }

    /// The chunk, once every announced byte has arrived.
    pub fn finish(mut self) -> Result<Assembled> {
        if self.received != self.total_len {
            return Err(wire(format!(
                "a chunk announced {} bytes and {} arrived",
                self.total_len, self.received
            )));
        }
        if let State::Head(head) = &mut self.state {
            let head = std::mem::take(head);
            self.state = self.start(head)?;
        }
        Ok(match self.state {
            State::Head(_) => unreachable!("left above"),
            State::Array { mut array, .. } => {
                from_little_endian(&mut array);
                Assembled::Value(ChunkValue::Array(array))
            }
            State::Whole(all) => Assembled::Encoded(all),
        })
    }
}

/// dtype, shape and where the elements start, when `head` begins the layout
/// [`encode_chunk`](super::encode_chunk) writes for an array of a dtype that can be filled in place:
/// one `array` field spanning the whole encoding, with `dtype` and `shape` before the elements, and
/// the elements last, running to the end.
fn fast_layout(head: &[u8], total_len: usize) -> Option<(DType, Vec<usize>, usize)> {
    let mut r = Reader(head);
    if r.byte()? != len_key(1) {
        return None;
    }
    let inner = r.len()?;
    let inner_at = head.len() - r.0.len();
    if inner_at.checked_add(inner)? != total_len {
        return None;
    }
    let (mut dtype, mut shape) = (None, None);
    loop {
        match r.byte()? {
            0x08 if dtype.is_none() => dtype = Some(r.varint()? as i32),
            0x12 if shape.is_none() => {
                shape = Some(r.packed_varints()?);
            }
            0x1a => {
                let n = r.len()?;
                let data_at = head.len() - r.0.len();
                // The elements must run exactly to the end: nothing may follow them.
                if data_at.checked_add(n)? != total_len {
                    return None;
                }
                let dtype = dtype_of(dtype.unwrap_or(0)).ok()?;
                let shape = usizes_of(&shape.unwrap_or_default(), "array dimension").ok()?;
                return Some((dtype, shape, data_at));
            }
            _ => return None,
        }
    }
}

/// A zeroed array of `dtype` and `shape` whose elements take exactly `nbytes`; `None` for a dtype
/// that is not filled in place. An allocation that fails is an
/// error, not an abort.
fn zeroed(dtype: DType, shape: &[usize], nbytes: usize) -> Result<Option<ArrayData>> {
    let len = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|len| len.checked_mul(dtype.size()) == Some(nbytes))
        .ok_or_else(|| {
            wire(format!(
                "{dtype} array of shape {shape:?} does not take the {nbytes} bytes sent"
            ))
        })?;
    fn make<T: Clone + Default>(shape: &[usize], len: usize) -> Result<ArrayD<T>> {
        let mut v = Vec::new();
        v.try_reserve_exact(len).map_err(|_| {
            wire(format!(
                "an array of shape {shape:?}: more than this process can hold"
            ))
        })?;
        v.resize(len, T::default());
        Ok(ArrayD::from_shape_vec(IxDyn(shape), v).expect("length checked"))
    }
    Ok(Some(match dtype {
        // bool's bytes must be checked to be 0 or 1; complex has no byte view here.
        DType::Bool | DType::C128 => return Ok(None),
        DType::I64 => ArrayData::I64(make(shape, len)?),
        DType::I32 => ArrayData::I32(make(shape, len)?),
        DType::U8 => ArrayData::U8(make(shape, len)?),
        DType::U64 => ArrayData::U64(make(shape, len)?),
        DType::F32 => ArrayData::F32(make(shape, len)?),
        DType::F64 => ArrayData::F64(make(shape, len)?),
    }))
}

/// The elements of an array made by [`zeroed`], as bytes.
fn bytes_of(a: &mut ArrayData) -> Option<&mut [u8]> {
    macro_rules! view {
        ($($v:ident),*) => {
            match a {
                $(ArrayData::$v(x) => Some(bytemuck::cast_slice_mut(
                    x.as_slice_mut().expect("made in C order"),
                )),)*
                ArrayData::Bool(_) | ArrayData::C128(_) => None,
            }
        };
    }
    view!(I64, I32, U8, U64, F32, F64)
}

/// The bytes went in as they came, little-endian: on a big-endian machine each element is turned
/// around.
fn from_little_endian(a: &mut ArrayData) {
    if cfg!(target_endian = "little") {
        return;
    }
    macro_rules! swap {
        ($($v:ident: $t:ty),*) => {
            match a {
                $(ArrayData::$v(x) => x.mapv_inplace(<$t>::from_le),)*
                ArrayData::F32(x) => x.mapv_inplace(|v| f32::from_bits(u32::from_le(v.to_bits()))),
                ArrayData::F64(x) => x.mapv_inplace(|v| f64::from_bits(u64::from_le(v.to_bits()))),
                ArrayData::Bool(_) | ArrayData::U8(_) | ArrayData::C128(_) => {}
            }
        };
    }
    swap!(I64: i64, I32: i32, U64: u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Moments;
    use crate::wire::decode_chunk;
    use ndarray::Dimension;
    use proptest::prelude::*;

    fn sample(dtype: DType, shape: &[usize]) -> ArrayData {
        let f = ArrayD::from_shape_fn(IxDyn(shape), |i| {
            i.slice().iter().fold(0.0, |acc, &k| acc * 7.0 + k as f64) - 3.5
        });
        ArrayData::F64(f).cast(dtype)
    }

    /// Sends `value` in pieces of at most `max` bytes and receives them re-split at `cuts`.
    fn round_trip(value: ChunkValue, max: usize, cuts: &[usize]) -> (Vec<u8>, ChunkValue) {
        let mut encoder = PieceEncoder::new(Arc::new(value));
        let mut bytes = Vec::new();
        loop {
            let piece = encoder.next_piece(max);
            if piece.is_empty() {
                break;
            }
            assert!(piece.len() <= max.max(32));
            bytes.extend_from_slice(&piece);
        }
        assert!(encoder.is_done());
        assert_eq!(bytes.len(), encoder.total_len());
        let mut assembler = ChunkAssembler::new(bytes.len() as u64).unwrap();
        let mut at = 0;
        for &c in cuts.iter().chain([&bytes.len()]) {
            let c = c.min(bytes.len()).max(at);
            assembler.push(&bytes[at..c]).unwrap();
            at = c;
        }
        let value = match assembler.finish().unwrap() {
            Assembled::Value(v) => v,
            Assembled::Encoded(e) => decode_chunk(&e).unwrap(),
        };
        (bytes, value)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The pieces are exactly `encode_chunk`'s bytes, and any re-splitting of them gives back the
        /// chunk, for every dtype, rank (0-d and empty included) and piece size.
        #[test]
        fn pieces_are_encode_chunk_s_bytes_and_assemble_back_to_the_chunk(
            dtype in proptest::sample::select(DType::ALL.to_vec()),
            shape in proptest::collection::vec(0usize..9, 0..4),
            max in 1usize..300,
            cuts in proptest::collection::vec(0usize..3000, 0..6),
            transposed in any::<bool>(),
        ) {
            let mut a = sample(dtype, &shape);
            if transposed {
                a = crate::map_array!(a, x => x.reversed_axes());
            }
            let mut cuts = cuts;
            cuts.sort();
            let value = ChunkValue::Array(a.clone());
            let (bytes, back) = round_trip(value.clone(), max, &cuts);
            prop_assert_eq!(&bytes, &encode_chunk(&value));
            prop_assert_eq!(back, value);
        }
    }

    #[test]
    fn a_partial_goes_whole_and_decodes() {
        let m = ChunkValue::Moments(Moments {
            count: ArrayD::from_elem(IxDyn(&[2]), 3.0),
            mean: ArrayD::from_elem(IxDyn(&[2]), 1.5),
            m2: Some(ArrayD::from_elem(IxDyn(&[2]), 0.25)),
        });
        let (bytes, back) = round_trip(m.clone(), 7, &[1, 2, 30]);
        assert_eq!(bytes, encode_chunk(&m));
        assert_eq!(back, m);
    }

    #[test]
    fn an_empty_encoding_is_one_empty_piece_s_worth() {
        // A 0-d float64 zero: proto3 leaves every default field out, so nothing but the frame.
        let v = ChunkValue::Array(ArrayData::F64(ArrayD::from_elem(IxDyn(&[]), 0.0)));
        let (bytes, back) = round_trip(v.clone(), 64, &[]);
        assert_eq!(bytes, encode_chunk(&v));
        assert_eq!(back, v);
    }

    #[test]
    fn lengths_that_do_not_add_up_are_errors() {
        let v = ChunkValue::Array(sample(DType::F64, &[4, 4]));
        let bytes = encode_chunk(&v);
        // More bytes than announced.
        let mut a = ChunkAssembler::new(10).unwrap();
        assert!(a.push(&bytes).is_err());
        // Fewer.
        let mut a = ChunkAssembler::new(bytes.len() as u64).unwrap();
        a.push(&bytes[..bytes.len() - 1]).unwrap();
        assert!(a.finish().is_err());
        // A shape that does not take the bytes sent: the prefix says 4×4, the data 128 bytes, but
        // the dtype byte is changed to float32 (4 bytes each).
        let mut bad = bytes.clone();
        let at = bad.iter().position(|&b| b == 0x08).unwrap();
        bad[at + 1] = crate::wire::pb::DType::from(DType::F32) as u8;
        let mut a = ChunkAssembler::new(bad.len() as u64).unwrap();
        let err = a.push(&bad).and_then(|_| a.finish().map(|_| ()));
        assert!(err.is_err(), "{err:?}");
    }

    #[test]
    fn an_impossible_length_is_an_error_not_an_abort() {
        assert!(ChunkAssembler::new(u64::MAX).is_err());
        // A prefix claiming 2^59 float64 elements (4 EiB) in a message that claims as many bytes:
        // the allocation is refused with an error when the prefix is read.
        let varint = |mut v: u64, out: &mut Vec<u8>| {
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        };
        let data = 1u64 << 62;
        let mut fields = vec![0x08, crate::wire::pb::DType::from(DType::F64) as u8, 0x12];
        let mut dim = Vec::new();
        varint(1 << 59, &mut dim);
        fields.push(dim.len() as u8);
        fields.extend_from_slice(&dim);
        fields.push(len_key(3));
        varint(data, &mut fields);
        let inner = fields.len() as u64 + data;
        let mut head = vec![len_key(1)];
        varint(inner, &mut head);
        let total = head.len() as u64 + inner;
        head.extend_from_slice(&fields);
        head.resize(MAX_PREFIX, 0);
        let mut a = ChunkAssembler::new(total).unwrap();
        let err = a.push(&head).unwrap_err();
        assert!(
            err.to_string().contains("more than this process can hold"),
            "{err}"
        );
    }
}
