//! Array data and chunk values on the wire, and the chunk codec: [`encode_chunk`] writes what prost
//! writes for a `ChunkValue` without an intermediate message, and [`decode_chunk`] reads array
//! chunks in place.

use std::ops::Range;

use ndarray::{ArrayD, IxDyn};
use prost::Message;

use super::pb;
use super::{dtype_of, required, u64s, usizes_of, wire};
use crate::data::{ArgPartial, ArrayData, ChunkValue, Moments};
use crate::error::{Error, Result};
use crate::meta::DType;

// ---------------------------------------------------------------------------------------------
// array data and chunks

/// Writes elements `range` of `a` (counted in C order) as `N`-byte little-endian values. The loop
/// over fixed-size chunks of a slice compiles to straight vector code: no per-element bounds checks
/// or pushes.
fn put_le<T: Copy, const N: usize>(
    a: &ArrayD<T>,
    range: Range<usize>,
    le: impl Fn(T) -> [u8; N],
    out: &mut [u8],
) {
    let (dst, _) = out.as_chunks_mut::<N>();
    match a.as_slice() {
        Some(s) => dst.iter_mut().zip(&s[range]).for_each(|(d, &x)| *d = le(x)),
        None => dst
            .iter_mut()
            .zip(a.iter().skip(range.start).take(range.len()))
            .for_each(|(d, &x)| *d = le(x)),
    }
}

/// Reads `N`-byte little-endian values; `data.len()` is a multiple of `N` (checked by the caller).
fn get_le<T, const N: usize>(data: &[u8], le: impl Fn([u8; N]) -> T) -> Vec<T> {
    let (src, _) = data.as_chunks::<N>();
    src.iter().map(|b| le(*b)).collect()
}

/// Writes elements `range` of `a` (in C order) into `out`, which is exactly
/// `range.len() * dtype.size()` bytes.
pub(super) fn write_elements(a: &ArrayData, range: Range<usize>, out: &mut [u8]) {
    let r = range;
    match a {
        ArrayData::Bool(x) => put_le(x, r, |b: bool| [b as u8], out),
        ArrayData::I64(x) => put_le(x, r, i64::to_le_bytes, out),
        ArrayData::I32(x) => put_le(x, r, i32::to_le_bytes, out),
        ArrayData::U8(x) => put_le(x, r, u8::to_le_bytes, out),
        ArrayData::U64(x) => put_le(x, r, u64::to_le_bytes, out),
        ArrayData::F32(x) => put_le(x, r, f32::to_le_bytes, out),
        ArrayData::F64(x) => put_le(x, r, f64::to_le_bytes, out),
        ArrayData::C128(x) => put_le(
            x,
            r,
            |v: num_complex::Complex64| {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&v.re.to_le_bytes());
                b[8..].copy_from_slice(&v.im.to_le_bytes());
                b
            },
            out,
        ),
    }
}

/// An array from its wire parts, checking that the bytes fit dtype and shape.
fn array_from_parts(dtype: i32, shape: &[u64], data: &[u8]) -> Result<ArrayData> {
    let dtype = dtype_of(dtype)?;
    let shape = usizes_of(shape, "array dimension")?;
    let len = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| wire(format!("array shape {shape:?} has too many elements")))?;
    let nbytes = len
        .checked_mul(dtype.size())
        .ok_or_else(|| wire(format!("array shape {shape:?} has too many elements")))?;
    if data.len() != nbytes {
        return Err(wire(format!(
            "{dtype} array of shape {shape:?} needs {nbytes} bytes, the message has {}",
            data.len()
        )));
    }
    let dim = IxDyn(&shape);
    let shaped = |e: ndarray::ShapeError| wire(format!("array of shape {shape:?}: {e}"));
    Ok(match dtype {
        DType::Bool => {
            if let Some(b) = data.iter().find(|&&b| b > 1) {
                return Err(wire(format!("bool array holds the byte {b}, not 0 or 1")));
            }
            let v = data.iter().map(|&b| b != 0).collect();
            ArrayData::Bool(ArrayD::from_shape_vec(dim, v).map_err(shaped)?)
        }
        DType::I64 => ArrayData::I64(
            ArrayD::from_shape_vec(dim, get_le(data, i64::from_le_bytes)).map_err(shaped)?,
        ),
        DType::I32 => ArrayData::I32(
            ArrayD::from_shape_vec(dim, get_le(data, i32::from_le_bytes)).map_err(shaped)?,
        ),
        DType::U8 => ArrayData::U8(ArrayD::from_shape_vec(dim, data.to_vec()).map_err(shaped)?),
        DType::U64 => ArrayData::U64(
            ArrayD::from_shape_vec(dim, get_le(data, u64::from_le_bytes)).map_err(shaped)?,
        ),
        DType::F32 => ArrayData::F32(
            ArrayD::from_shape_vec(dim, get_le(data, f32::from_le_bytes)).map_err(shaped)?,
        ),
        DType::F64 => ArrayData::F64(
            ArrayD::from_shape_vec(dim, get_le(data, f64::from_le_bytes)).map_err(shaped)?,
        ),
        DType::C128 => ArrayData::C128(
            ArrayD::from_shape_vec(
                dim,
                get_le(data, |b: [u8; 16]| {
                    let re = f64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
                    let im = f64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
                    num_complex::Complex64::new(re, im)
                }),
            )
            .map_err(shaped)?,
        ),
    })
}

impl From<&ArrayData> for pb::ArrayData {
    fn from(a: &ArrayData) -> Self {
        let mut data = vec![0u8; a.len() * a.dtype().size()];
        write_elements(a, 0..a.len(), &mut data);
        pb::ArrayData {
            dtype: pb::DType::from(a.dtype()) as i32,
            shape: u64s(a.shape()),
            data,
        }
    }
}

impl TryFrom<pb::ArrayData> for ArrayData {
    type Error = Error;
    fn try_from(a: pb::ArrayData) -> Result<Self> {
        array_from_parts(a.dtype, &a.shape, &a.data)
    }
}

pub(super) fn f64_array(a: &ArrayD<f64>) -> pb::ArrayData {
    (&ArrayData::F64(a.clone())).into()
}

fn typed<T: crate::data::Element>(a: pb::ArrayData, what: &str) -> Result<ArrayD<T>> {
    ArrayData::try_from(a)?
        .into_typed()
        .map_err(|e| wire(format!("{what}: {e}")))
}

impl From<&ChunkValue> for pb::ChunkValue {
    fn from(v: &ChunkValue) -> Self {
        use pb::chunk_value::Value;
        pb::ChunkValue {
            value: Some(match v {
                ChunkValue::Array(a) => Value::Array(a.into()),
                ChunkValue::Moments(m) => Value::Moments(pb::Moments {
                    count: Some(f64_array(&m.count)),
                    mean: Some(f64_array(&m.mean)),
                    m2: m.m2.as_ref().map(f64_array),
                }),
                ChunkValue::Arg(a) => Value::Arg(pb::ArgPartial {
                    value: Some((&a.value).into()),
                    index: Some((&ArrayData::I64(a.index.clone())).into()),
                }),
            }),
        }
    }
}

impl TryFrom<pb::ChunkValue> for ChunkValue {
    type Error = Error;
    fn try_from(v: pb::ChunkValue) -> Result<Self> {
        use pb::chunk_value::Value;
        Ok(match required(v.value, "chunk value")? {
            Value::Array(a) => ChunkValue::Array(a.try_into()?),
            Value::Moments(m) => {
                let count: ArrayD<f64> = typed(required(m.count, "moments count")?, "count")?;
                let mean: ArrayD<f64> = typed(required(m.mean, "moments mean")?, "mean")?;
                let m2 = m.m2.map(|a| typed::<f64>(a, "m2")).transpose()?;
                // The merge kernels index all three by position.
                if mean.shape() != count.shape()
                    || m2.as_ref().is_some_and(|x| x.shape() != count.shape())
                {
                    return Err(wire(format!(
                        "moments of different shapes: count {:?}, mean {:?}, m2 {:?}",
                        count.shape(),
                        mean.shape(),
                        m2.as_ref().map(|x| x.shape())
                    )));
                }
                ChunkValue::Moments(Moments { count, mean, m2 })
            }
            Value::Arg(a) => {
                let value = ArrayData::try_from(required(a.value, "arg value")?)?;
                let index: ArrayD<i64> = typed(required(a.index, "arg index")?, "index")?;
                if value.shape() != index.shape() {
                    return Err(wire(format!(
                        "argmin/argmax partial with values of shape {:?} and indices of shape {:?}",
                        value.shape(),
                        index.shape()
                    )));
                }
                ChunkValue::Arg(ArgPartial { value, index })
            }
        })
    }
}

/// Appends `v` as a protobuf varint.
fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Key byte of a length-delimited field with a tag below 16.
pub(super) const fn len_key(tag: u8) -> u8 {
    (tag << 3) | 2
}

/// A chunk as the bytes of an encoded [`pb::ChunkValue`], what workers stream to each other.
///
/// Array chunks (the bulk of the traffic) are framed by hand so that the elements are converted once,
/// straight into the output buffer; the bytes are exactly what prost would write for the same message.
/// Partials, which are small, go through prost.
pub fn encode_chunk(v: &ChunkValue) -> Vec<u8> {
    let ChunkValue::Array(a) = v else {
        return pb::ChunkValue::from(v).encode_to_vec();
    };
    let prefix = array_prefix(a);
    // A zeroed allocation of this size comes fresh from the OS, already zero: unlike growing a Vec
    // and filling it, the elements below are the only pass over the memory.
    let mut out = vec![0u8; prefix.len() + a.len() * a.dtype().size()];
    out[..prefix.len()].copy_from_slice(&prefix);
    write_elements(a, 0..a.len(), &mut out[prefix.len()..]);
    out
}

/// The bytes of an array chunk's encoding that come before its elements: the `array` field's key and
/// length, `dtype` and `shape` (fields 1 and 2 of ArrayData), and the key and length of `data`
/// (field 3), which is last in tag order — the order prost writes — so the elements can follow.
pub(super) fn array_prefix(a: &ArrayData) -> Vec<u8> {
    array_encoding_prefix(a.dtype(), a.shape())
}

/// The bytes [`encode_chunk`] writes before the elements of an array chunk of `dtype` and `shape`:
/// the whole encoding is these, then the elements in C order, little-endian. With it an array kept
/// outside memory (a worker's spill file holds exactly those elements) is sent a piece at a time
/// without being read back whole.
pub fn array_encoding_prefix(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let head = pb::ArrayData {
        dtype: pb::DType::from(dtype) as i32,
        shape: u64s(shape),
        data: Vec::new(),
    }
    .encode_to_vec();
    let n = shape.iter().product::<usize>() * dtype.size();
    // proto3 leaves out an empty bytes field.
    let data_field = if n == 0 {
        0
    } else {
        1 + varint_len(n as u64) + n
    };
    let inner = head.len() + data_field;
    let mut prefix = Vec::with_capacity(32 + head.len());
    prefix.push(len_key(1));
    put_varint(inner as u64, &mut prefix);
    prefix.extend_from_slice(&head);
    if n > 0 {
        prefix.push(len_key(3));
        put_varint(n as u64, &mut prefix);
    }
    prefix
}

/// Chunks of at least this many bytes are encoded and decoded on tokio's blocking pool, off the
/// async thread that also serves fetches and heartbeats. Smaller ones (a reduction's partials are a
/// few bytes) are handled in place: handing them to another thread would cost more than the work.
pub const BLOCKING_CODEC_BYTES: usize = 64 << 10;

/// The chunk in bytes made by [`encode_chunk`] (or any encoder of [`pb::ChunkValue`]).
pub fn decode_chunk(bytes: &[u8]) -> Result<ChunkValue> {
    if let Some(v) = decode_array_chunk(bytes) {
        return v;
    }
    let msg = pb::ChunkValue::decode(bytes)
        .map_err(|e| wire(format!("chunk of {} bytes: {e}", bytes.len())))?;
    msg.try_into()
}

/// The fast path of [`decode_chunk`]: an array chunk in the layout [`encode_chunk`] writes (one
/// `array` field; in it `dtype`, packed `shape` and `data` at most once each, in any order) is
/// converted straight from `bytes`, where prost would first copy the data into a message (twice, in
/// prost 0.14). `None` for anything else — other fields, repeated fields that protobuf would merge,
/// truncated input — which prost then decodes with the full semantics and error reporting.
fn decode_array_chunk(bytes: &[u8]) -> Option<Result<ChunkValue>> {
    let mut outer = Reader(bytes);
    if outer.byte()? != len_key(1) {
        return None;
    }
    let len = outer.len()?;
    let mut r = Reader(outer.take(len)?);
    if !outer.0.is_empty() {
        return None;
    }
    let (mut dtype, mut shape, mut data) = (None, None, None);
    while !r.0.is_empty() {
        match r.byte()? {
            // Field 1, varint. An int32 is sign-extended to 64 bits on the wire; prost truncates.
            0x08 if dtype.is_none() => dtype = Some(r.varint()? as i32),
            0x12 if shape.is_none() => {
                shape = Some(r.packed_varints()?);
            }
            0x1a if data.is_none() => {
                let n = r.len()?;
                data = Some(r.take(n)?);
            }
            _ => return None,
        }
    }
    Some(
        array_from_parts(
            dtype.unwrap_or(0),
            &shape.unwrap_or_default(),
            data.unwrap_or(&[]),
        )
        .map(ChunkValue::Array),
    )
}

/// Reads protobuf primitives off the front of a slice; `None` when the input ends early or a
/// varint is malformed.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    pub(super) fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// A packed repeated varint field's values (the field's key already read).
    pub(super) fn packed_varints(&mut self) -> Option<Vec<u64>> {
        let n = self.len()?;
        let mut packed = Reader(self.take(n)?);
        let mut values = Vec::new();
        while !packed.0.is_empty() {
            values.push(packed.varint()?);
        }
        Some(values)
    }

    pub(super) fn len(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }

    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use ndarray::{ArrayD, IxDyn};
    use prost::Message;

    use super::*;
    use crate::data::{ArgPartial, ArrayData, ChunkValue, Moments};
    use crate::wire::pb;
    use crate::wire::testing::*;
    use crate::wire::{decode_chunk, encode_chunk};

    // -----------------------------------------------------------------------------------------
    // chunks

    /// What a spill file holds (the elements, little-endian in C order) after the prefix is the
    /// encoding, byte for byte, for every dtype, a shape out of C order, 0-d and empty arrays.
    #[test]
    fn the_prefix_and_the_elements_are_the_encoding() {
        for chunk in sample_chunks() {
            let ChunkValue::Array(a) = &chunk else {
                continue;
            };
            let mut elements = vec![0u8; a.len() * a.dtype().size()];
            write_elements(a, 0..a.len(), &mut elements);
            let mut bytes = array_encoding_prefix(a.dtype(), a.shape());
            bytes.extend_from_slice(&elements);
            assert!(
                bytes == encode_chunk(&chunk),
                "{} {:?}",
                a.dtype(),
                a.shape()
            );
        }
    }

    fn sample_chunks() -> Vec<ChunkValue> {
        let f = ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| i[0] as f64 - 0.5 * i[1] as f64);
        let mut out: Vec<ChunkValue> = all_dtypes()
            .into_iter()
            .map(|d| ChunkValue::Array(ArrayData::F64(f.clone()).cast(d)))
            .collect();
        // Not in standard layout, 0-d, and empty.
        out.push(ChunkValue::Array(ArrayData::F32(
            f.mapv(|v| v as f32).reversed_axes(),
        )));
        out.push(ChunkValue::Array(ArrayData::I64(ArrayD::from_elem(
            IxDyn(&[]),
            -3,
        ))));
        out.push(ChunkValue::Array(ArrayData::Bool(ArrayD::from_elem(
            IxDyn(&[0, 5]),
            true,
        ))));
        out.push(ChunkValue::Array(ArrayData::F64(ArrayD::from_elem(
            IxDyn(&[2]),
            f64::NAN,
        ))));
        for m2 in [None, Some(f.clone())] {
            out.push(ChunkValue::Moments(Moments {
                count: f.mapv(|v| v.abs() + 1.0),
                mean: f.clone(),
                m2,
            }));
        }
        out.push(ChunkValue::Arg(ArgPartial {
            value: ArrayData::F64(f.clone()),
            index: f.mapv(|v| (v * 2.0) as i64),
        }));
        out
    }

    #[test]
    fn encode_chunk_writes_what_prost_writes() {
        for v in sample_chunks() {
            let fast = encode_chunk(&v);
            assert_eq!(fast, pb::ChunkValue::from(&v).encode_to_vec(), "{v:?}");
            let back = decode_chunk(&fast).unwrap();
            assert_eq!(
                decode_array_chunk(&fast).is_some(),
                matches!(v, ChunkValue::Array(_))
            );
            // Through the wire bytes again: NaN-safe equality.
            assert_eq!(encode_chunk(&back), fast);
            if let (ChunkValue::Array(a), ChunkValue::Array(b)) = (&v, &back) {
                assert_eq!(a.shape(), b.shape());
                assert!(crate::with_array!(b, x => x.is_standard_layout()));
            }
        }
    }

    #[test]
    fn decode_chunk_reads_any_encoding_of_the_message() {
        let a = ArrayData::F32(ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| {
            i[0] as f32 + i[1] as f32 / 8.0
        }));
        let want = ChunkValue::Array(a.clone());
        let msg = pb::ArrayData::from(&a);
        let frame = |inner: Vec<u8>| {
            let mut bytes = vec![len_key(1)];
            put_varint(inner.len() as u64, &mut bytes);
            bytes.extend(inner);
            bytes
        };
        let dtype = |out: &mut Vec<u8>| {
            out.push(0x08);
            put_varint(msg.dtype as u64, out);
        };
        let data = |out: &mut Vec<u8>| {
            out.push(len_key(3));
            put_varint(msg.data.len() as u64, out);
            out.extend(&msg.data);
        };
        let mut packed = Vec::new();
        msg.shape.iter().for_each(|&d| put_varint(d, &mut packed));

        // Fields in reverse order, shape packed: the fast path reads it.
        let mut inner = Vec::new();
        data(&mut inner);
        inner.push(len_key(2));
        put_varint(packed.len() as u64, &mut inner);
        inner.extend(&packed);
        dtype(&mut inner);
        let bytes = frame(inner);
        assert!(decode_array_chunk(&bytes).is_some());
        assert_eq!(decode_chunk(&bytes).unwrap(), want);

        // Shape unpacked (one key per element, which parsers must accept): prost reads it.
        let mut inner = Vec::new();
        dtype(&mut inner);
        for &d in &msg.shape {
            inner.push(0x10);
            put_varint(d, &mut inner);
        }
        data(&mut inner);
        let bytes = frame(inner);
        assert!(decode_array_chunk(&bytes).is_none());
        assert_eq!(decode_chunk(&bytes).unwrap(), want);

        // The array split over two fields, which protobuf merges: prost reads it.
        let mut first = Vec::new();
        dtype(&mut first);
        let mut second = pb::ArrayData {
            dtype: 0,
            ..msg.clone()
        }
        .encode_to_vec();
        let mut bytes = frame(first);
        bytes.append(&mut frame(std::mem::take(&mut second)));
        assert!(decode_array_chunk(&bytes).is_none());
        assert_eq!(decode_chunk(&bytes).unwrap(), want);

        // Both paths agree on what is wrong with a negative dtype (a ten-byte varint).
        let mut inner = Vec::new();
        inner.push(0x08);
        put_varint(-1i64 as u64, &mut inner);
        let bytes = frame(inner);
        assert!(decode_array_chunk(&bytes).is_some());
        assert!(what(decode_chunk(&bytes).unwrap_err()).contains("unknown dtype value -1"));
        let slow = ChunkValue::try_from(pb::ChunkValue::decode(bytes.as_slice()).unwrap());
        assert!(what(slow.unwrap_err()).contains("unknown dtype value -1"));
    }

    #[test]
    fn eight_megabyte_chunks_encode_and_decode_quickly() {
        let n = 1 << 20;
        let v = ChunkValue::Array(ArrayData::F64(ArrayD::from_shape_fn(
            IxDyn(&[1024, 1024]),
            |i| (i[0] * 1024 + i[1]) as f64 * 0.5,
        )));
        let start = Instant::now();
        let bytes = encode_chunk(&v);
        let encoded = start.elapsed();
        let back = decode_chunk(&bytes).unwrap();
        let decoded = start.elapsed() - encoded;
        assert!(bytes.len() > 8 * n && bytes.len() < 8 * n + 32);
        assert_eq!(back, v);
        eprintln!("8 MiB f64 chunk: encode {encoded:?}, decode {decoded:?}");
        if std::env::var_os("TESSERA_WIRE_BENCH").is_some() {
            let min = |f: &mut dyn FnMut()| {
                (0..20)
                    .map(|_| {
                        let t = Instant::now();
                        f();
                        t.elapsed()
                    })
                    .min()
                    .unwrap()
            };
            let copy = min(&mut || drop(std::hint::black_box(bytes.clone())));
            let enc = min(&mut || drop(std::hint::black_box(encode_chunk(&v))));
            let dec = min(&mut || drop(std::hint::black_box(decode_chunk(&bytes))));
            let prost = min(&mut || {
                drop(std::hint::black_box(pb::ChunkValue::decode(
                    bytes.as_slice(),
                )))
            });
            eprintln!(
                "best of 20: memcpy {copy:?}, encode {enc:?}, decode {dec:?}, prost decode {prost:?}"
            );
        }
        // Generous for a loaded test machine; a per-element allocation would blow through it.
        assert!(encoded.as_secs_f64() < 2.0 && decoded.as_secs_f64() < 2.0);
    }
}
